//! The Kafka wire protocol: the only module that touches kafka-protocol's plumbing.
//!
//! It owns the API version table, request/response framing, record batch validation and
//! codecs, and the table of Kafka error codes. Everything above it works with decoded
//! messages and typed errors.

pub mod api;
pub mod compression;
pub mod error;
pub mod legacy;
pub mod legacy_records;
pub mod records;

pub use error::ErrorCode;

/// The topics in a classic consumer's subscription (`ConsumerProtocolSubscription`, the
/// member metadata of protocol type "consumer"), or None when it cannot be read.
pub fn consumer_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut bytes = bytes::Bytes::copy_from_slice(metadata);
    if bytes.len() < 2 {
        return None;
    }
    // The version leads; newer versions are read as the newest we know, as Kafka does.
    let version = i16::from_be_bytes([bytes[0], bytes[1]]).clamp(0, 3);
    bytes::Buf::advance(&mut bytes, 2);
    let subscription = ConsumerProtocolSubscription::decode(&mut bytes, version).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
}
