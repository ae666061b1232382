//! The network server: listeners, connections, request framing and graceful shutdown.
//!
//! Each connection has a reader and a writer. The reader takes length-prefixed frames
//! (at most `socket.request.max.bytes`), decodes them and runs their handlers in order; it
//! hands each reply to the writer through a channel bounded by `queued.max.requests`, so a
//! client that pipelines many requests is paced instead of buffered without limit. The writer
//! awaits pending replies in request order and writes them, flushing when it has nothing
//! more ready, so pipelined responses share system calls.
//!
//! Bad input closes only its own connection, with one log line: an oversized or truncated
//! frame, an unknown API key or version, a body that does not decode.
//!
//! Limits, as Kafka's SocketServer keeps them: `max.connections` in all (at the limit the
//! acceptors wait), `max.connections.per.ip` (a connection above it is closed at once), and
//! `connections.max.idle.ms`: a connection with no whole request read and no response owed
//! for that long is closed, so one that sends half a frame and stalls does not stay open.
//! A client that never reads its responses stops being read once `queued.max.requests`
//! replies wait for it, so its memory stays bounded, and once a response has waited
//! `connections.max.idle.ms` to be written the connection is closed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::handlers::{self, Reply, ResponseFuture};
use crate::metadata::quorum::observer::OBSERVER_FETCH_API_KEY;
use crate::metadata::quorum::RAFT_API_KEY;
use crate::protocol::api::{self, FrameError};
use crate::sync::MutexExt;

const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// A reply on its way to the socket, in request order.
enum Outgoing {
    Ready(Bytes),
    Pending {
        future: ResponseFuture,
        key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    /// An answer encoded by its producer, length prefix included (quorum messages).
    Raw(std::pin::Pin<Box<dyn std::future::Future<Output = Bytes> + Send>>),
    /// Awaited by the reader before the next request, then written as Pending.
    Ordered {
        future: ResponseFuture,
        key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
}

/// A bound listener, and whether it is the controller listener (which also carries the
/// metadata quorum's messages).
pub struct Bound {
    pub listener: TcpListener,
    pub controller: bool,
}

/// Binds every listener; returns the bound addresses (port 0 becomes the real port).
pub async fn bind(broker: &Broker) -> anyhow::Result<Vec<Bound>> {
    let mut listeners = Vec::new();
    for listener in &broker.config.listeners {
        let host = if listener.host.is_empty() {
            "0.0.0.0"
        } else {
            listener.host.as_str()
        };
        let bound = TcpListener::bind((host, listener.port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot bind listener {}://{host}:{}: {e}",
                    listener.name,
                    listener.port
                )
            })?;
        tracing::info!(listener = %listener.name, address = %bound.local_addr()?, "listening");
        listeners.push(Bound {
            listener: bound,
            controller: broker.config.controller_listener.as_ref() == Some(&listener.name),
        });
    }
    Ok(listeners)
}

/// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn run(broker: Arc<Broker>, listeners: Vec<Bound>, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    // max.connections across all listeners: at the limit the acceptors wait, and new
    // connections queue in the listen backlog until one closes, as Kafka's acceptor does.
    let slots = Arc::new(Semaphore::new(
        broker.config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let per_ip = Arc::new(ConnectionsPerIp::default());
    let mut accepts = Vec::new();
    for Bound {
        listener,
        controller,
    } in listeners
    {
        let broker = Arc::clone(&broker);
        let shutdown = shutdown.clone();
        let connections = connections.clone();
        let slots = Arc::clone(&slots);
        let per_ip = Arc::clone(&per_ip);
        accepts.push(tokio::spawn(async move {
            loop {
                let slot = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                };
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            // Dynamic, as in Kafka: the value in force now.
                            let max = broker
                                .controller
                                .broker_view()
                                .get_i64("max.connections.per.ip")
                                .map_or(broker.config.max_connections_per_ip, |m| m.max(0) as usize);
                            let Some(counted) = per_ip.admit(peer.ip(), max) else {
                                tracing::info!(
                                    "Rejected connection from {}, address already has the configured maximum of {} connections.",
                                    peer.ip(),
                                    max
                                );
                                drop(stream);
                                continue;
                            };
                            let serve = serve_connection(Arc::clone(&broker), stream, peer, shutdown.clone(), controller);
                            connections.spawn(async move {
                                serve.await;
                                drop((slot, counted));
                            });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        }));
    }
    shutdown.cancelled().await;
    for accept in accepts {
        let _ = accept.await;
    }
    connections.close();
    connections.wait().await;
}

async fn serve_connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
    controller: bool,
) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(broker.config.socket_request_max_bytes)
        .new_codec();
    let mut frames = FramedRead::with_capacity(reader, codec, 64 * 1024);
    let (tx, rx) = mpsc::channel(broker.config.queued_max_requests);
    let activity = Arc::new(Activity::new());
    // Capped at a year so that the deadline always fits in an Instant.
    let idle_limit = Duration::from_millis(broker.config.connections_max_idle_ms.max(1) as u64)
        .min(Duration::from_secs(365 * 86_400));
    let writer_task = tokio::spawn(write_replies(
        writer,
        rx,
        peer,
        Arc::clone(&activity),
        idle_limit,
    ));
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => break,
            frame = frames.next() => frame,
            _ = tokio::time::sleep_until(activity.next_check(idle_limit)) => {
                if activity.is_idle(idle_limit) {
                    tracing::debug!(%peer, idle_ms = broker.config.connections_max_idle_ms, "closing idle connection");
                    break;
                }
                continue;
            }
        };
        activity.touch();
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame.freeze(),
            Some(Err(e)) => {
                tracing::warn!(%peer, error = %e, "closing connection: unreadable frame");
                break;
            }
        };
        let outgoing = match take_request(&broker, frame, peer, controller) {
            Ok(Some(outgoing)) => outgoing,
            Ok(None) => continue,
            Err(reason) => {
                tracing::warn!(%peer, reason = %reason, "closing connection");
                break;
            }
        };
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        let outgoing = match outgoing {
            Outgoing::Ordered {
                future,
                key,
                version,
                correlation_id,
            } => {
                let response = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    response = future => response,
                };
                Outgoing::Pending {
                    future: Box::pin(std::future::ready(response)),
                    key,
                    version,
                    correlation_id,
                }
            }
            other => other,
        };
        let sent = tokio::select! {
            _ = shutdown.cancelled() => break,
            sent = tx.send(outgoing) => sent,
        };
        if sent.is_err() {
            break;
        }
    }
    // Dropping the sender lets the writer finish what is queued, then close.
    drop(tx);
    let _ = writer_task.await;
}

/// Decodes and handles one frame. Ok(None): nothing to send. Err: close the connection.
fn take_request(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: SocketAddr,
    controller: bool,
) -> Result<Option<Outgoing>, String> {
    let private_key = (frame.len() >= 2).then(|| i16::from_be_bytes([frame[0], frame[1]]));
    if controller && private_key == Some(RAFT_API_KEY) {
        return quorum_message(broker, frame, false).map(Some);
    }
    if controller && private_key == Some(OBSERVER_FETCH_API_KEY) {
        return quorum_message(broker, frame, true).map(Some);
    }
    let (key, version) = api::peek_key_version(&frame).map_err(|e| e.to_string())?;
    if let Err(e) = api::check_version_on(key, version, controller) {
        if key == ApiKey::ApiVersions {
            let header = api::decode_header(key, version, frame).map_err(|e| e.to_string())?;
            let body = ResponseKind::ApiVersions(handlers::unsupported_version_response());
            let bytes = api::encode_response(key, 0, header.correlation_id, &body)
                .map_err(|e| e.to_string())?;
            return Ok(Some(Outgoing::Ready(bytes)));
        }
        return Err(e.to_string());
    }
    let (header, request) =
        api::decode_request(key, version, frame).map_err(|e: FrameError| e.to_string())?;
    let correlation_id = header.correlation_id;
    match handlers::handle(broker, &header, request, peer, controller) {
        Reply::Ready(body) => api::encode_response(key, version, correlation_id, &body)
            .map(|bytes| Some(Outgoing::Ready(bytes)))
            .map_err(|e| format!("cannot encode {key:?} v{version} response: {e}")),
        Reply::Pending(future) => Ok(Some(Outgoing::Pending {
            future,
            key,
            version,
            correlation_id,
        })),
        Reply::Ordered(future) => Ok(Some(Outgoing::Ordered {
            future,
            key,
            version,
            correlation_id,
        })),
        Reply::Silent => Ok(None),
        Reply::Close(reason) => Err(reason),
    }
}

/// A metadata quorum message from another voter: header v1 (key, version, correlation id,
/// client id), then the quorum's own body; answered with the correlation id and its reply.
/// A voter's message (`observer`: a broker-only node's fetch of the metadata log).
fn quorum_message(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    observer: bool,
) -> Result<Outgoing, String> {
    use bytes::Buf;
    if frame.len() < 10 {
        return Err("truncated quorum message".into());
    }
    frame.advance(4);
    let correlation_id = frame.get_i32();
    let client_id_len = frame.get_i16().max(0) as usize;
    if frame.len() < client_id_len {
        return Err("truncated quorum message".into());
    }
    frame.advance(client_id_len);
    let broker = Arc::clone(broker);
    Ok(Outgoing::Raw(Box::pin(async move {
        let reply = if observer {
            broker.controller.serve_observer(frame).await
        } else {
            broker.controller.quorum_rpc(frame).await
        };
        let mut out = bytes::BytesMut::with_capacity(reply.len() + 8);
        out.extend_from_slice(&((reply.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(&correlation_id.to_be_bytes());
        out.extend_from_slice(&reply);
        out.freeze()
    })))
}

async fn write_replies(
    writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
    activity: Arc<Activity>,
    idle_limit: Duration,
) {
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, writer);
    while let Some(outgoing) = rx.recv().await {
        let bytes = match outgoing {
            Outgoing::Ready(bytes) => bytes,
            Outgoing::Raw(future) => future.await,
            Outgoing::Pending {
                future,
                key,
                version,
                correlation_id,
            }
            | Outgoing::Ordered {
                future,
                key,
                version,
                correlation_id,
            } => {
                let body = future.await;
                match api::encode_response(key, version, correlation_id, &body) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        tracing::error!(%peer, api = ?key, version, error = %e, "cannot encode response; closing");
                        return;
                    }
                }
            }
        };
        // A client that stops reading holds the connection only as long as an idle one.
        let written = tokio::time::timeout(idle_limit, async {
            writer.write_all(&bytes).await?;
            if rx.is_empty() {
                writer.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!(%peer, "closing a connection whose client stopped reading");
                return;
            }
        }
        activity.touch();
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}

/// When a connection last read a request or wrote a response, and how many of its
/// requests still owe a response: a connection waiting on a long poll is not idle.
struct Activity {
    start: Instant,
    last_ms: AtomicI64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicI64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as i64;
        self.last_ms.fetch_max(now, Ordering::AcqRel);
    }

    /// When to look again: the idle deadline, or a whole limit from now while a response
    /// is owed (so a long poll is waited out without spinning).
    fn next_check(&self, limit: Duration) -> tokio::time::Instant {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire) as u64);
        let deadline = tokio::time::Instant::from_std(self.start + last + limit);
        let now = tokio::time::Instant::now();
        match (deadline <= now, self.in_flight.load(Ordering::Acquire)) {
            (false, _) => deadline,
            (true, 0) => now,
            (true, _) => now + limit,
        }
    }

    fn is_idle(&self, limit: Duration) -> bool {
        let last = self.last_ms.load(Ordering::Acquire);
        let idle_ms = self.start.elapsed().as_millis() as i64 - last;
        self.in_flight.load(Ordering::Acquire) == 0 && idle_ms >= limit.as_millis() as i64
    }
}

/// Open connections per client address, for `max.connections.per.ip`.
#[derive(Default)]
struct ConnectionsPerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionsPerIp {
    /// Counts a new connection from `ip`, or None if that address has `max` already.
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<CountedConnection> {
        let mut counts = self.counts.lock_or_recover();
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(CountedConnection {
            ip,
            counts: Arc::clone(self),
        })
    }
}

/// One counted connection; dropping it gives its place back.
struct CountedConnection {
    ip: IpAddr,
    counts: Arc<ConnectionsPerIp>,
}

impl Drop for CountedConnection {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock_or_recover();
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}
