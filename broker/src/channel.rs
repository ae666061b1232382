//! A Kafka-protocol client to another node of the cluster: the metadata quorum's traffic,
//! broker registration and heartbeats, and admin requests forwarded to the active
//! controller all travel through it.
//!
//! One request at a time per channel, each with a deadline; any failure drops the
//! connection, and the next call connects again.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response a channel reads (a metadata snapshot chunk is far smaller).
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// Why a call to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    /// `sent`: the request was written (the peer may act on it) before time ran out.
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout {
        addr: String,
        timeout: Duration,
        sent: bool,
    },
    #[error("{addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

pub struct Channel {
    addr: String,
    client_id: &'static str,
    stream: Option<TcpStream>,
    correlation_id: i32,
}

impl Channel {
    pub fn new(addr: impl Into<String>, client_id: &'static str) -> Channel {
        Channel {
            addr: addr.into(),
            client_id,
            stream: None,
            correlation_id: 0,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends a request whose body is already encoded and returns the response body. The
    /// request header is version 1 (no tagged fields), the response header version 0.
    pub async fn call_raw(
        &mut self,
        api_key: i16,
        api_version: i16,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, ChannelError> {
        let mut frame = BytesMut::with_capacity(body.len() + 32);
        frame.put_i32(0);
        frame.put_i16(api_key);
        frame.put_i16(api_version);
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        frame.put_i32(correlation_id);
        frame.put_i16(self.client_id.len() as i16);
        frame.put_slice(self.client_id.as_bytes());
        frame.put_slice(body);
        let mut response = self.exchange(frame, timeout).await?;
        if response.len() < 4 || response.get_i32() != correlation_id {
            self.stream = None;
            return Err(self.protocol("the answer does not match the request"));
        }
        Ok(response)
    }

    /// Sends a Kafka request and decodes its response.
    pub async fn call(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, ChannelError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)));
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        header
            .encode(&mut frame, key.request_header_version(version))
            .and_then(|()| request.encode(&mut frame, version))
            .map_err(|e| self.protocol(format!("cannot encode {key:?} v{version}: {e}")))?;
        let mut response = self.exchange(frame, timeout).await?;
        let header = ResponseHeader::decode(&mut response, key.response_header_version(version))
            .map_err(|e| self.protocol(format!("{key:?} v{version} response header: {e}")))?;
        if header.correlation_id != correlation_id {
            self.stream = None;
            return Err(self.protocol("the answer does not match the request"));
        }
        ResponseKind::decode(key, &mut response, version)
            .map_err(|e| self.protocol(format!("{key:?} v{version} response: {e}")))
    }

    /// Writes one length-prefixed frame (its first four bytes are filled in here) and
    /// reads one back, within `timeout`.
    async fn exchange(
        &mut self,
        mut frame: BytesMut,
        timeout: Duration,
    ) -> Result<Bytes, ChannelError> {
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        let mut sent = false;
        let result = tokio::time::timeout(timeout, async {
            if self.stream.is_none() {
                let stream = TcpStream::connect(&self.addr).await?;
                let _ = stream.set_nodelay(true);
                self.stream = Some(stream);
            }
            let stream = self.stream.as_mut().expect("connected above");
            stream.write_all(&frame).await?;
            sent = true;
            let size = stream.read_i32().await?;
            if size < 0 || size as usize > MAX_RESPONSE_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response of {size} bytes"),
                ));
            }
            let mut body = vec![0; size as usize];
            stream.read_exact(&mut body).await?;
            Ok(Bytes::from(body))
        })
        .await;
        match result {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(source)) => {
                self.stream = None;
                Err(ChannelError::Io {
                    addr: self.addr.clone(),
                    source,
                })
            }
            Err(_) => {
                self.stream = None;
                Err(ChannelError::Timeout {
                    addr: self.addr.clone(),
                    timeout,
                    sent,
                })
            }
        }
    }

    fn protocol(&self, reason: impl Into<String>) -> ChannelError {
        ChannelError::Protocol {
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }
}
