//! A raw Kafka protocol client over a blocking socket, for tests that need exact requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::Broker;

pub struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub fn connect(broker: &Broker) -> Client {
        let stream = TcpStream::connect(broker.bootstrap()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream,
            correlation: 0,
        }
    }

    /// Sends one request and decodes its response at the same version.
    pub fn call(&mut self, key: ApiKey, version: i16, body: &RequestKind) -> ResponseKind {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("matrix")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&buf);
        self.stream.write_all(&frame).unwrap();
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .unwrap_or_else(|e| panic!("{key:?} v{version}: no response ({e})"));
        let mut payload = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut payload).unwrap();
        let mut payload = Bytes::from(payload);
        let header_version = if key == ApiKey::ApiVersions {
            0
        } else {
            key.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut payload, header_version).unwrap();
        assert_eq!(
            header.correlation_id, self.correlation,
            "{key:?} v{version}"
        );
        let response = ResponseKind::decode(key, &mut payload, version)
            .unwrap_or_else(|e| panic!("{key:?} v{version}: response does not decode: {e}"));
        assert!(payload.is_empty(), "{key:?} v{version}: trailing bytes");
        response
    }
}
