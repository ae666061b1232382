//! Moves a metadata store from before the metadata log into it, once.
//!
//! Weir once kept topics, dynamic broker and group configs and the producer id block as
//! plain keys of its RocksDB store (`topic/`, `broker_config/`, `group_config/`,
//! `producer_ids/next_block`). On the first start with the metadata log they become one
//! committed batch of records, the way a new cluster's bootstrap batch would describe
//! them (every partition on this node, leader epoch 0), and the old keys are deleted. A
//! crash between the two is finished on the next start: the image is then no longer empty,
//! so only the deletion is repeated. Log directories are not touched.

use std::collections::BTreeMap;

use serde::Deserialize;
use uuid::Uuid;

use super::controller::partition_record;
use super::records::{resource, ConfigRecord, MetadataRecord, ProducerIdsRecord, TopicRecord};
use super::{broker_dynamic_type, Controller, MetadataError};
use crate::meta_store::{MetaStore, StoreError};

const PREFIXES: [&str; 4] = ["topic/", "broker_config/", "group_config/", "producer_ids/"];

/// A topic as the store kept it before the metadata log.
#[derive(Deserialize)]
struct StoredTopic {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

fn damaged(what: &str, e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Store(StoreError(format!("damaged {what}: {e}")))
}

pub(super) async fn migrate(
    controller: &Controller,
    store: &dyn MetaStore,
) -> Result<(), MetadataError> {
    let mut legacy = Vec::new();
    for prefix in PREFIXES {
        legacy.extend(store.scan_prefix(prefix)?);
    }
    if legacy.is_empty() {
        return Ok(());
    }
    if controller.config.is_cluster() {
        return Err(MetadataError::Store(StoreError(
            "this data directory is from before the metadata log: start it once as a single node to move its topics into the log, then join the cluster".into(),
        )));
    }
    if controller.image().is_empty() {
        let node_id = controller.config.node_id;
        let mut records = Vec::new();
        let mut topics = 0;
        for (key, value) in &legacy {
            if let Some(group) = key.strip_prefix("group_config/") {
                let set: BTreeMap<String, String> =
                    serde_json::from_slice(value).map_err(|e| damaged("group configs", e))?;
                records.extend(ConfigRecord::set_all(resource::GROUP, group, &set));
            } else if let Some(scope) = key.strip_prefix("broker_config/") {
                let resource_name = match scope {
                    "default" => String::new(),
                    _ => node_id.to_string(),
                };
                let mut set: BTreeMap<String, String> =
                    serde_json::from_slice(value).map_err(|e| damaged("broker configs", e))?;
                // Weir once took synonyms such as log.retention.hours as dynamic; Kafka
                // does not, and a stored one would make every later change fail.
                set.retain(|key, value| {
                    let dynamic = broker_dynamic_type(key).is_some();
                    if !dynamic {
                        tracing::warn!(key = %key, value = %value, "dropping a stored dynamic broker config that is not dynamic");
                    }
                    dynamic
                });
                records.extend(ConfigRecord::set_all(
                    resource::BROKER,
                    &resource_name,
                    &set,
                ));
            } else if key == "producer_ids/next_block" {
                let next = <[u8; 8]>::try_from(value.as_slice())
                    .map(i64::from_be_bytes)
                    .map_err(|_| damaged("producer id block", "not 8 bytes"))?;
                if next > 0 {
                    records.push(MetadataRecord::ProducerIdsRecord(ProducerIdsRecord {
                        broker_id: node_id,
                        broker_epoch: 0,
                        next_producer_id: next,
                    }));
                }
            } else if key.starts_with("topic/") {
                let topic: StoredTopic =
                    serde_json::from_slice(value).map_err(|e| damaged("topic record", e))?;
                topics += 1;
                records.push(MetadataRecord::TopicRecord(TopicRecord {
                    name: topic.name.clone(),
                    topic_id: topic.id,
                }));
                records.extend(ConfigRecord::set_all(
                    resource::TOPIC,
                    &topic.name,
                    &topic.configs,
                ));
                for partition_id in 0..topic.partitions {
                    records.push(MetadataRecord::PartitionRecord(partition_record(
                        topic.id,
                        partition_id,
                        vec![node_id],
                    )));
                }
            }
        }
        // Topics before the configs that name them.
        records.sort_by_key(|r| match r {
            MetadataRecord::TopicRecord(_) => 0,
            _ => 1,
        });
        let count = records.len();
        controller.commit(records).await?;
        tracing::info!(
            topics,
            records = count,
            "moved the metadata store's topics and configs into the metadata log"
        );
    }
    let deletes: Vec<(String, Option<Vec<u8>>)> =
        legacy.into_iter().map(|(key, _)| (key, None)).collect();
    store.write_batch_synced(&deletes)?;
    Ok(())
}
