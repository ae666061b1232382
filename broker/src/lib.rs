//! Weir: a broker that speaks Apache Kafka's wire protocol.
//!
//! Dependencies run one way, top to bottom: `server` (connections) -> `handlers` (decode,
//! call one subsystem, encode) -> `group` / `metadata` / `replication` -> `log` -> `meta_store`.
//! `protocol` is the only module that knows kafka-protocol's plumbing and Kafka's error
//! codes; `config` is read by all.

#[cfg(feature = "rocksdb")]
pub mod broker;
pub mod channel;
pub mod config;
pub mod group;
#[cfg(feature = "rocksdb")]
pub mod handlers;
pub mod log;
pub mod meta_properties;
pub mod meta_store;
pub mod metadata;
pub mod protocol;
pub mod replication;
#[cfg(feature = "rocksdb")]
pub mod server;
pub mod sync;

/// The time seam: every timestamp the broker takes comes from here.
#[derive(Debug, Clone, Default)]
pub struct Clock;

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
