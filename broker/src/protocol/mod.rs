//! The Kafka wire protocol: the only module that touches kafka-protocol's plumbing.
//!
//! It owns the API version table, request/response framing, record batch validation and
//! codecs, and the table of Kafka error codes. Everything above it works with decoded
//! messages and typed errors.

pub mod api;
pub mod compression;
pub mod error;
pub mod records;

pub use error::ErrorCode;
