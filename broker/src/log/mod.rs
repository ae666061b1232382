//! The partition log: segment files, offset and time indexes, producer state, recovery.
//!
//! All record-data file I/O of the broker lives below this module. A partition's data is in
//! `<log.dirs>/<topic>-<partition>/` as Kafka lays it out: segments named by their 20-digit
//! base offset (`.log`, `.index`, `.timeindex`) and a `leader-epoch-checkpoint`, so Kafka's
//! own `kafka-dump-log.sh` reads them. Offsets are dense and strictly increasing; a batch's
//! base offset is the log end offset at its append.

pub mod checkpoint;
pub mod cleaner;
mod partition_log;
mod producer_state;
mod segment;
mod topic_config;

pub use cleaner::{clean as clean_segments, CleanPlan, CleanedSegment};
pub use partition_log::{
    FetchedData, LogAppend, LogOptions, PartitionLog, PreparedAppend, ReadPlan, TimestampLookup,
};
pub use producer_state::{ProducerBatch, ProducerState, ProducerStateError};
pub use topic_config::{
    TopicConfig, TopicConfigDef, INTERNAL_SEGMENT_BYTES, SEGMENT_BYTES_MIN, TOPIC_CONFIGS,
};

use crate::protocol::records::BatchError;
use crate::protocol::ErrorCode;

/// What can go wrong appending to or reading from a partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Producer(#[from] ProducerStateError),
    #[error("offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("batch of {size} bytes is larger than max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: i32 },
    /// Records of a batch for a compacted topic without a key, by their index in the batch
    /// (KIP-467: the client fails exactly those records).
    #[error("{} record(s) of a batch for a compacted topic have no key", .indexes.len())]
    CompactedWithoutKey { indexes: Vec<i32> },
    /// The file system is full: the append was rolled back and nothing of it is stored.
    /// The directory stays online, so reads go on and writes resume once space returns.
    #[error("no space left on the device holding {path}; the write was rolled back")]
    NoSpace { path: String },
    /// The partition directory belongs to another topic of the same name (Kafka's
    /// `partition.metadata` names another topic id).
    #[error("{path} holds topic id {found}, not {expected}")]
    InconsistentTopicId {
        path: String,
        expected: String,
        found: String,
    },
    /// An earlier storage error took the log directory offline.
    #[error("the log directory {dir} is offline after a storage error")]
    DirOffline { dir: String },
}

impl LogError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> LogError {
        LogError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            LogError::Io { .. } => ErrorCode::KafkaStorageError,
            LogError::Batch(BatchError::Corrupt(_)) => ErrorCode::CorruptMessage,
            LogError::Batch(BatchError::InvalidRecord(_)) => ErrorCode::InvalidRecord,
            LogError::Batch(BatchError::UnsupportedCompression(_)) => {
                ErrorCode::UnsupportedCompressionType
            }
            LogError::Batch(BatchError::UnsupportedMagic(_)) => {
                ErrorCode::UnsupportedForMessageFormat
            }
            LogError::Producer(ProducerStateError::OutOfOrderSequence { .. }) => {
                ErrorCode::OutOfOrderSequenceNumber
            }
            LogError::Producer(ProducerStateError::InvalidProducerEpoch { .. }) => {
                ErrorCode::InvalidProducerEpoch
            }
            LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            LogError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            LogError::CompactedWithoutKey { .. } => ErrorCode::InvalidRecord,
            LogError::NoSpace { .. } => ErrorCode::KafkaStorageError,
            LogError::DirOffline { .. } => ErrorCode::KafkaStorageError,
            LogError::InconsistentTopicId { .. } => ErrorCode::InconsistentTopicId,
        }
    }

    /// A write that failed for want of space, as [`LogError::NoSpace`]; any other error
    /// as it is. Only for writes whose effect was undone (or never happened).
    pub fn out_of_space_as_no_space(self) -> LogError {
        match self {
            LogError::Io { path, source } if is_out_of_space(&source) => LogError::NoSpace { path },
            other => other,
        }
    }

    /// Whether this error means the directory's state on disk is in doubt, so it must go
    /// offline (Kafka's LogDirFailureChannel). A full disk whose write was rolled back is
    /// not: nothing of the write is stored.
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, LogError::Io { .. })
    }
}

/// Whether an I/O error says the file system is full (or the quota used up).
fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// The directory name of a partition, as Kafka names it.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// A segment file name: the base offset in 20 digits plus the suffix.
pub fn segment_file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}
