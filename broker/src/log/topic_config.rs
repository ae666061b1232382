//! Topic-level configs: Kafka's names, their broker-level synonyms and defaults, and the
//! typed view a partition log reads.

use std::collections::BTreeMap;

use crate::config::{BrokerConfig, ConfigType};
use crate::protocol::records::Compression;

/// One topic config key and where its default comes from.
#[derive(Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    /// The broker key whose value is this config's default, as Kafka's synonyms.
    pub broker_synonym: Option<&'static str>,
    pub kind: ConfigType,
    /// Kafka's default when no broker key sets it.
    pub default: &'static str,
    pub doc: &'static str,
}

const fn topic(
    name: &'static str,
    broker_synonym: Option<&'static str>,
    kind: ConfigType,
    default: &'static str,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_synonym,
        kind,
        default,
        doc,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// The topic configs of Apache Kafka 4.1 (without tiered-storage internals).
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic(
        "follower.replication.throttled.replicas",
        None,
        List,
        "",
        "Replicas whose log replication is throttled on the follower side.",
    ),
    topic(
        "leader.replication.throttled.replicas",
        None,
        List,
        "",
        "Replicas whose log replication is throttled on the leader side.",
    ),
    topic(
        "local.retention.bytes",
        Some("log.local.retention.bytes"),
        Long,
        "-2",
        "Local log size kept when tiered storage is enabled.",
    ),
    topic(
        "local.retention.ms",
        Some("log.local.retention.ms"),
        Long,
        "-2",
        "Local log age kept when tiered storage is enabled.",
    ),
    topic(
        "remote.log.copy.disable",
        None,
        Boolean,
        "false",
        "Stop copying segments to tiered storage.",
    ),
    topic(
        "remote.log.delete.on.disable",
        None,
        Boolean,
        "false",
        "Delete tiered data when tiered storage is turned off.",
    ),
    topic(
        "remote.storage.enable",
        None,
        Boolean,
        "false",
        "Tiered storage for this topic (not supported by this broker).",
    ),
    topic(
        "cleanup.policy",
        Some("log.cleanup.policy"),
        List,
        "delete",
        "delete, compact, or both.",
    ),
    topic(
        "compression.type",
        Some("compression.type"),
        Str,
        "producer",
        "Final compression type of the topic.",
    ),
    topic(
        "compression.gzip.level",
        Some("compression.gzip.level"),
        Int,
        "-1",
        "Gzip level when recompressing.",
    ),
    topic(
        "compression.lz4.level",
        Some("compression.lz4.level"),
        Int,
        "9",
        "LZ4 level when recompressing.",
    ),
    topic(
        "compression.zstd.level",
        Some("compression.zstd.level"),
        Int,
        "3",
        "Zstd level when recompressing.",
    ),
    topic(
        "delete.retention.ms",
        Some("log.cleaner.delete.retention.ms"),
        Long,
        "86400000",
        "How long tombstones are kept.",
    ),
    topic(
        "file.delete.delay.ms",
        Some("log.segment.delete.delay.ms"),
        Long,
        "60000",
        "Delay before a file is deleted.",
    ),
    topic(
        "flush.messages",
        Some("log.flush.interval.messages"),
        Long,
        "9223372036854775807",
        "Messages between forced fsyncs.",
    ),
    topic(
        "flush.ms",
        Some("log.flush.interval.ms"),
        Long,
        "9223372036854775807",
        "Time between forced fsyncs.",
    ),
    topic(
        "index.interval.bytes",
        Some("log.index.interval.bytes"),
        Int,
        "4096",
        "Bytes between offset index entries.",
    ),
    topic(
        "max.compaction.lag.ms",
        Some("log.cleaner.max.compaction.lag.ms"),
        Long,
        "9223372036854775807",
        "Maximum time a message stays uncompacted.",
    ),
    topic(
        "max.message.bytes",
        Some("message.max.bytes"),
        Int,
        "1048588",
        "Largest record batch size allowed.",
    ),
    topic(
        "message.timestamp.after.max.ms",
        Some("log.message.timestamp.after.max.ms"),
        Long,
        "3600000",
        "Largest allowed lead of a timestamp.",
    ),
    topic(
        "message.timestamp.before.max.ms",
        Some("log.message.timestamp.before.max.ms"),
        Long,
        "9223372036854775807",
        "Largest allowed lag of a timestamp.",
    ),
    topic(
        "message.timestamp.type",
        Some("log.message.timestamp.type"),
        Str,
        "CreateTime",
        "CreateTime or LogAppendTime.",
    ),
    topic(
        "min.cleanable.dirty.ratio",
        Some("log.cleaner.min.cleanable.ratio"),
        Double,
        "0.5",
        "Dirty ratio that triggers cleaning.",
    ),
    topic(
        "min.compaction.lag.ms",
        Some("log.cleaner.min.compaction.lag.ms"),
        Long,
        "0",
        "Minimum time a message stays uncompacted.",
    ),
    topic(
        "min.insync.replicas",
        Some("min.insync.replicas"),
        Int,
        "1",
        "Minimum ISR size for acks=all.",
    ),
    topic(
        "preallocate",
        Some("log.preallocate"),
        Boolean,
        "false",
        "Preallocate segment files.",
    ),
    topic(
        "retention.bytes",
        Some("log.retention.bytes"),
        Long,
        "-1",
        "Maximum partition size before deletion.",
    ),
    topic(
        "retention.ms",
        Some("log.retention.ms"),
        Long,
        "604800000",
        "Maximum age of a segment before deletion.",
    ),
    topic(
        "segment.bytes",
        Some("log.segment.bytes"),
        Int,
        "1073741824",
        "Segment file size.",
    ),
    topic(
        "segment.index.bytes",
        Some("log.index.size.max.bytes"),
        Int,
        "10485760",
        "Offset index size.",
    ),
    topic(
        "segment.jitter.ms",
        Some("log.roll.jitter.ms"),
        Long,
        "0",
        "Random jitter subtracted from segment.ms.",
    ),
    topic(
        "segment.ms",
        Some("log.roll.ms"),
        Long,
        "604800000",
        "Time before a segment is rolled.",
    ),
    topic(
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
        Boolean,
        "false",
        "Allow leaders outside the ISR.",
    ),
];

/// Kafka 4's floor for `segment.bytes` and `log.segment.bytes` (KIP-1030).
pub const SEGMENT_BYTES_MIN: i64 = 1024 * 1024;
/// Kafka's internal topic config that allows smaller segments, for tests only. It is
/// accepted on create and alter but never listed by DescribeConfigs.
pub const INTERNAL_SEGMENT_BYTES: &str = "internal.segment.bytes";

/// The typed, effective configs of one topic: its overrides over the broker's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// Only the keys set on the topic itself.
    pub overrides: BTreeMap<String, String>,
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub max_message_bytes: i32,
    /// None: keep the producer's codec.
    pub compression: Option<Compression>,
    pub log_append_time: bool,
    pub index_interval_bytes: u32,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub compact: bool,
    /// `cleanup.policy` includes `delete`: retention applies.
    pub delete: bool,
    pub min_insync_replicas: i32,
    /// -1: no time limit.
    pub retention_ms: i64,
    /// -1: no size limit.
    pub retention_bytes: i64,
    pub file_delete_delay_ms: i64,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
}

impl TopicConfig {
    /// Parses a `compression.type` value: Some(None) for `producer`.
    pub fn parse_compression(value: &str) -> Option<Option<Compression>> {
        match value.trim() {
            "producer" => Some(None),
            "uncompressed" | "none" => Some(Some(Compression::None)),
            "gzip" => Some(Some(Compression::Gzip)),
            "snappy" => Some(Some(Compression::Snappy)),
            "lz4" => Some(Some(Compression::Lz4)),
            "zstd" => Some(Some(Compression::Zstd)),
            _ => None,
        }
    }

    /// Checks a topic config key and value as CreateTopics and AlterConfigs do.
    pub fn validate(key: &str, value: &str) -> Result<(), String> {
        if key == INTERNAL_SEGMENT_BYTES {
            return match value.trim().parse::<i64>() {
                Ok(v) if (14..=i32::MAX as i64).contains(&v) => Ok(()),
                _ => Err(format!(
                    "Invalid value {value} for configuration {key}: Value must be at least 14"
                )),
            };
        }
        let def = TOPIC_CONFIGS
            .iter()
            .find(|d| d.name == key)
            .ok_or_else(|| format!("Unknown topic config name: {key}"))?;
        def.kind
            .validate(value)
            .map_err(|_| format!("Invalid value {value} for configuration {key}"))?;
        let bad = |why: &str| {
            Err(format!(
                "Invalid value {value} for configuration {key}: {why}"
            ))
        };
        match key {
            "compression.type" if Self::parse_compression(value).is_none() => {
                bad("String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")
            }
            "message.timestamp.type" if value != "CreateTime" && value != "LogAppendTime" => {
                bad("String must be one of: CreateTime, LogAppendTime")
            }
            "cleanup.policy"
                if value
                    .split(',')
                    .any(|p| !matches!(p.trim(), "delete" | "compact")) =>
            {
                bad("String must be one of: compact, delete")
            }
            "segment.bytes" if value.parse::<i64>().is_ok_and(|v| v < SEGMENT_BYTES_MIN) => {
                bad("Value must be at least 1048576")
            }
            "max.message.bytes" | "min.insync.replicas" | "index.interval.bytes"
                if value.parse::<i64>().is_ok_and(|v| v < 0) =>
            {
                bad("Value must be at least 0")
            }
            _ => Ok(()),
        }
    }

    /// The effective value of `key` for a topic with `overrides`, and whether the topic set it.
    pub fn effective(
        broker: &BrokerConfig,
        overrides: &BTreeMap<String, String>,
        key: &str,
    ) -> Option<(String, bool)> {
        if let Some(v) = overrides.get(key) {
            return Some((v.clone(), true));
        }
        let def = TOPIC_CONFIGS.iter().find(|d| d.name == key)?;
        Some((broker_default(broker, def), false))
    }

    /// Builds the typed view from a topic's overrides and the broker's defaults.
    pub fn resolve(broker: &BrokerConfig, overrides: BTreeMap<String, String>) -> TopicConfig {
        let value = |key: &str| {
            Self::effective(broker, &overrides, key)
                .map(|(v, _)| v)
                .unwrap_or_default()
        };
        let long = |key: &str, fallback: i64| value(key).trim().parse::<i64>().unwrap_or(fallback);
        TopicConfig {
            segment_bytes: overrides
                .get(INTERNAL_SEGMENT_BYTES)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or_else(|| long("segment.bytes", 1 << 30))
                .max(14) as u64,
            segment_ms: long("segment.ms", 604_800_000),
            max_message_bytes: long("max.message.bytes", 1_048_588) as i32,
            compression: Self::parse_compression(&value("compression.type")).flatten(),
            log_append_time: value("message.timestamp.type") == "LogAppendTime",
            index_interval_bytes: long("index.interval.bytes", 4096).max(1) as u32,
            flush_messages: long("flush.messages", i64::MAX).max(1),
            flush_ms: long("flush.ms", i64::MAX).max(0),
            compact: value("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "compact"),
            delete: value("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "delete"),
            min_insync_replicas: long("min.insync.replicas", 1) as i32,
            retention_ms: long("retention.ms", 604_800_000),
            retention_bytes: long("retention.bytes", -1),
            file_delete_delay_ms: long("file.delete.delay.ms", 60_000).max(0),
            delete_retention_ms: long("delete.retention.ms", 86_400_000).max(0),
            min_compaction_lag_ms: long("min.compaction.lag.ms", 0).max(0),
            min_cleanable_dirty_ratio: value("min.cleanable.dirty.ratio")
                .trim()
                .parse()
                .unwrap_or(0.5),
            overrides,
        }
    }
}

/// The broker-level default of a topic config, honouring Kafka's hours/minutes synonyms.
pub fn broker_default(broker: &BrokerConfig, def: &TopicConfigDef) -> String {
    let explicit = |key: &str| broker.value(key).map(|(v, _)| v.to_string());
    match def.name {
        "retention.ms" => explicit("log.retention.ms")
            .or_else(|| {
                broker
                    .get_i64("log.retention.minutes")
                    .map(|m| (m * 60_000).to_string())
            })
            .or_else(|| {
                broker
                    .get_i64("log.retention.hours")
                    .map(|h| (h * 3_600_000).to_string())
            })
            .unwrap_or_else(|| def.default.to_string()),
        "segment.ms" => explicit("log.roll.ms")
            .or_else(|| {
                broker
                    .get_i64("log.roll.hours")
                    .map(|h| (h * 3_600_000).to_string())
            })
            .unwrap_or_else(|| def.default.to_string()),
        "flush.ms" => explicit("log.flush.interval.ms")
            .or_else(|| explicit("log.flush.scheduler.interval.ms"))
            .unwrap_or_else(|| def.default.to_string()),
        _ => def
            .broker_synonym
            .and_then(explicit)
            .unwrap_or_else(|| def.default.to_string()),
    }
}
