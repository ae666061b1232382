//! The records of the cluster metadata log: Kafka's KRaft record types
//! (`metadata/src/main/resources/common/metadata/*.json` in Apache Kafka), with their
//! names and fields. Every change of cluster metadata is a batch of these records,
//! committed by the quorum and then replayed into the [`MetadataImage`] on every node.
//!
//! They travel and rest as tagged JSON (`{"type":"TopicRecord",...}`): the volume is small
//! and a dump is readable. Kafka's own tools cannot read this log either way, since it is
//! not a Kafka `__cluster_metadata` partition.
//!
//! [`MetadataImage`]: super::image::MetadataImage

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Kafka's `LeaderRecoveryState`: RECOVERED (0) or RECOVERING (1) after an unclean election.
pub const LEADER_RECOVERED: i8 = 0;
/// `PartitionChangeRecord.Leader` when the leader does not change.
pub const NO_LEADER_CHANGE: i32 = -2;
/// `PartitionRecord.Leader` when the partition has no leader.
pub const NO_LEADER: i32 = -1;

/// Kafka's `ConfigResource.Type` codes, as ConfigRecord stores them.
pub mod resource {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const GROUP: i8 = 32;
}

/// One record of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    TopicRecord(TopicRecord),
    PartitionRecord(PartitionRecord),
    PartitionChangeRecord(PartitionChangeRecord),
    RemoveTopicRecord(RemoveTopicRecord),
    ConfigRecord(ConfigRecord),
    ProducerIdsRecord(ProducerIdsRecord),
    FeatureLevelRecord(FeatureLevelRecord),
    RegisterBrokerRecord(RegisterBrokerRecord),
    BrokerRegistrationChangeRecord(BrokerRegistrationChangeRecord),
    NoOpRecord,
}

/// A topic is created (Kafka's TopicRecord, api key 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: Uuid,
}

/// A partition as created (Kafka's PartitionRecord, api key 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    #[serde(default)]
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    #[serde(default)]
    pub eligible_leader_replicas: Vec<i32>,
    #[serde(default)]
    pub last_known_elr: Vec<i32>,
}

/// A change of one partition (Kafka's PartitionChangeRecord, api key 5): absent fields do
/// not change, and `leader` is [`NO_LEADER_CHANGE`] when the leader stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionChangeRecord {
    pub partition_id: i32,
    pub topic_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isr: Option<Vec<i32>>,
    #[serde(default = "no_leader_change")]
    pub leader: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removing_replicas: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adding_replicas: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_recovery_state: Option<i8>,
}

fn no_leader_change() -> i32 {
    NO_LEADER_CHANGE
}

/// A topic is deleted, with its partitions and configs (Kafka's RemoveTopicRecord, 9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTopicRecord {
    pub topic_id: Uuid,
}

/// One config key of one resource is set, or deleted when `value` is None (Kafka's
/// ConfigRecord, api key 4). Broker resources are named by node id; "" is the
/// cluster-wide default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigRecord {
    pub resource_type: i8,
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

impl ConfigRecord {
    /// Sets (Some) or deletes (None) one key of one resource.
    pub fn record(
        resource_type: i8,
        resource_name: &str,
        name: &str,
        value: Option<&str>,
    ) -> MetadataRecord {
        MetadataRecord::ConfigRecord(ConfigRecord {
            resource_type,
            resource_name: resource_name.to_string(),
            name: name.to_string(),
            value: value.map(str::to_string),
        })
    }

    /// The records that set every key of `configs` on one resource.
    pub fn set_all<'a>(
        resource_type: i8,
        resource_name: &'a str,
        configs: &'a std::collections::BTreeMap<String, String>,
    ) -> impl Iterator<Item = MetadataRecord> + 'a {
        configs
            .iter()
            .map(move |(k, v)| ConfigRecord::record(resource_type, resource_name, k, Some(v)))
    }
}

/// A block of producer ids is handed to a broker: ids below `next_producer_id` are taken
/// (Kafka's ProducerIdsRecord, api key 15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProducerIdsRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub next_producer_id: i64,
}

/// A feature's finalized level (Kafka's FeatureLevelRecord, api key 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FeatureLevelRecord {
    pub name: String,
    pub feature_level: i16,
}

/// One listener a broker registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// A broker registers (Kafka's RegisterBrokerRecord, api key 0). Its epoch is the offset
/// of this record in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterBrokerRecord {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    pub broker_epoch: i64,
    pub end_points: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

/// A registered broker is fenced, unfenced or enters controlled shutdown (Kafka's
/// BrokerRegistrationChangeRecord, api key 17; 1 = yes, -1 = no, 0 = unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BrokerRegistrationChangeRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    #[serde(default)]
    pub fenced: i8,
    #[serde(default)]
    pub in_controlled_shutdown: i8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_tagged_json_with_kafka_field_names() {
        let id = Uuid::from_u128(7);
        let records = vec![
            MetadataRecord::TopicRecord(TopicRecord {
                name: "t".into(),
                topic_id: id,
            }),
            MetadataRecord::PartitionChangeRecord(PartitionChangeRecord {
                partition_id: 0,
                topic_id: id,
                isr: Some(vec![1]),
                leader: NO_LEADER_CHANGE,
                replicas: None,
                removing_replicas: None,
                adding_replicas: None,
                leader_recovery_state: None,
            }),
            MetadataRecord::NoOpRecord,
        ];
        let json = serde_json::to_string(&records).unwrap();
        assert!(
            json.contains(r#""type":"TopicRecord","Name":"t","TopicId""#),
            "{json}"
        );
        assert!(
            !json.contains("Replicas"),
            "absent changes are not written: {json}"
        );
        let back: Vec<MetadataRecord> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, records);
    }
}
