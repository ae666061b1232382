//! Group configs (Kafka 4's resource type GROUP, `kafka-configs.sh --entity-type groups`):
//! per-group overrides of the broker's group settings, with Kafka 4.1's keys, defaults and
//! bounds.

use std::collections::BTreeMap;

use super::MetadataError;
use crate::config::BrokerConfig;

/// Kafka's ConfigResource.Type.GROUP.
pub const RESOURCE_GROUP: i8 = 32;

/// How a group config's value is checked.
enum Kind {
    /// An integer within the broker's `min` and `max` keys (either may be absent).
    Bounded {
        min: Option<&'static str>,
        max: Option<&'static str>,
    },
    /// One of a fixed set of words, or a word with a prefix (`by_duration:...`).
    Choice(&'static [&'static str]),
}

/// One group config key: its name, the broker key (or fixed value) its default comes from,
/// and how values are checked.
pub struct GroupConfigDef {
    pub name: &'static str,
    default_key: Option<&'static str>,
    default_value: &'static str,
    kind: Kind,
}

const fn bounded(
    name: &'static str,
    default_key: &'static str,
    min: Option<&'static str>,
    max: Option<&'static str>,
) -> GroupConfigDef {
    GroupConfigDef {
        name,
        default_key: Some(default_key),
        default_value: "",
        kind: Kind::Bounded { min, max },
    }
}

/// Kafka 4.1's group configs, in name order as `kafka-configs.sh --describe --all` lists
/// them.
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    bounded(
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
        Some("group.consumer.min.heartbeat.interval.ms"),
        Some("group.consumer.max.heartbeat.interval.ms"),
    ),
    bounded(
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
        Some("group.consumer.min.session.timeout.ms"),
        Some("group.consumer.max.session.timeout.ms"),
    ),
    GroupConfigDef {
        name: "share.auto.offset.reset",
        default_key: None,
        default_value: "latest",
        kind: Kind::Choice(&["latest", "earliest", "by_duration:"]),
    },
    bounded(
        "share.heartbeat.interval.ms",
        "group.share.heartbeat.interval.ms",
        Some("group.share.min.heartbeat.interval.ms"),
        Some("group.share.max.heartbeat.interval.ms"),
    ),
    GroupConfigDef {
        name: "share.isolation.level",
        default_key: None,
        default_value: "read_uncommitted",
        kind: Kind::Choice(&["read_committed", "read_uncommitted"]),
    },
    bounded(
        "share.record.lock.duration.ms",
        "group.share.record.lock.duration.ms",
        Some("group.share.min.record.lock.duration.ms"),
        Some("group.share.max.record.lock.duration.ms"),
    ),
    bounded(
        "share.session.timeout.ms",
        "group.share.session.timeout.ms",
        Some("group.share.min.session.timeout.ms"),
        Some("group.share.max.session.timeout.ms"),
    ),
    bounded(
        "streams.heartbeat.interval.ms",
        "group.streams.heartbeat.interval.ms",
        Some("group.streams.min.heartbeat.interval.ms"),
        Some("group.streams.max.heartbeat.interval.ms"),
    ),
    bounded(
        "streams.num.standby.replicas",
        "group.streams.num.standby.replicas",
        None,
        Some("group.streams.max.standby.replicas"),
    ),
    bounded(
        "streams.session.timeout.ms",
        "group.streams.session.timeout.ms",
        Some("group.streams.min.session.timeout.ms"),
        Some("group.streams.max.session.timeout.ms"),
    ),
];

/// A broker setting as a group config reads it: the value in force, or Kafka 4.1's default
/// for keys weir keeps no value of (the share and streams group settings).
fn broker_setting<'a>(broker: &'a BrokerConfig, key: &str) -> Option<&'a str> {
    broker
        .get(key)
        .or_else(|| crate::config::kafka_broker_key(key).and_then(|k| k.default))
}

fn broker_int(broker: &BrokerConfig, key: &str) -> Option<i64> {
    broker_setting(broker, key).and_then(|v| v.trim().parse().ok())
}

pub fn definition(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

impl GroupConfigDef {
    /// The type DescribeConfigs reports: numbers for bounded keys, words for the rest.
    pub fn config_type(&self) -> crate::config::ConfigType {
        match self.kind {
            Kind::Bounded { .. } => crate::config::ConfigType::Int,
            Kind::Choice(_) => crate::config::ConfigType::String,
        }
    }

    /// The value a group without an override has: the broker's setting behind it.
    pub fn default_value<'a>(&'a self, broker: &'a BrokerConfig) -> &'a str {
        match self.default_key {
            Some(key) => broker_setting(broker, key).unwrap_or(""),
            None => self.default_value,
        }
    }
}

/// Checks one group config value as Kafka's GroupConfig does, with its messages.
pub fn validate(name: &str, value: &str, broker: &BrokerConfig) -> Result<(), MetadataError> {
    let def = definition(name).ok_or_else(|| {
        MetadataError::InvalidConfig(format!("Unknown group config name: {name}"))
    })?;
    match &def.kind {
        Kind::Bounded { min, max } => {
            let n: i64 = value.parse().map_err(|_| {
                MetadataError::InvalidConfig(format!(
                    "Invalid value {value} for configuration {name}: Not a number of type INT"
                ))
            })?;
            // The type's own lower bound first, as Kafka's ConfigDef checks it, then the
            // broker's bounds.
            let at_least = if name == "streams.num.standby.replicas" {
                0
            } else if name == "share.record.lock.duration.ms" {
                1000
            } else {
                1
            };
            if n < at_least {
                return Err(MetadataError::InvalidConfig(format!(
                    "Invalid value {value} for configuration {name}: Value must be at least {at_least}"
                )));
            }
            if let Some(min) = min.filter(|k| broker_int(broker, k).is_some_and(|m| n < m)) {
                return Err(MetadataError::InvalidConfig(format!(
                    "{name} must be greater than or equal to {min}"
                )));
            }
            if let Some(max) = max.filter(|k| broker_int(broker, k).is_some_and(|m| n > m)) {
                return Err(MetadataError::InvalidConfig(format!(
                    "{name} must be less than or equal to {max}"
                )));
            }
        }
        Kind::Choice(words) => {
            let ok = words.iter().any(|w| match w.strip_suffix(':') {
                Some(prefix) => value
                    .strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with(':')),
                None => value == *w,
            });
            if !ok {
                return Err(MetadataError::InvalidConfig(format!(
                    "Invalid value {value} for configuration {name}"
                )));
            }
        }
    }
    Ok(())
}

/// The session timeout and heartbeat interval a KIP-848 consumer group's members get:
/// the group's overrides over the broker's.
pub fn consumer_timeouts(
    overrides: &BTreeMap<String, String>,
    session_timeout_ms: i64,
    heartbeat_interval_ms: i32,
) -> (i64, i32) {
    let int = |key: &str| overrides.get(key).and_then(|v| v.parse::<i64>().ok());
    (
        int("consumer.session.timeout.ms").unwrap_or(session_timeout_ms),
        int("consumer.heartbeat.interval.ms")
            .map(|v| v as i32)
            .unwrap_or(heartbeat_interval_ms),
    )
}
