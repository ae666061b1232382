//! The metadata image: what every request reads, built only from committed metadata records.
//!
//! Records are replayed in log order into a [`MetadataDelta`] over the current image; the
//! delta yields the next image (swapped whole, so a request sees one consistent view) and
//! tells the publisher what changed: topics created, grown, reconfigured or removed, and
//! dynamic broker configs. A snapshot is the image written back as records
//! ([`MetadataImage::to_records`]), so a node that starts from one replays the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use super::records::{
    resource, BrokerEndpoint, ConfigRecord, FeatureLevelRecord, MetadataRecord,
    PartitionChangeRecord, PartitionRecord, ProducerIdsRecord, RegisterBrokerRecord, TopicRecord,
    NO_LEADER, NO_LEADER_CHANGE,
};

/// A broker as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// A registered broker (from RegisterBrokerRecord and its changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl BrokerRegistration {
    /// The broker as clients see it, at its endpoint for `listener` (else its first).
    pub fn info(&self, node_id: i32, listener: &str) -> Option<BrokerInfo> {
        let endpoint = self
            .endpoints
            .iter()
            .find(|e| e.name == listener)
            .or_else(|| self.endpoints.first())?;
        Some(BrokerInfo {
            node_id,
            host: endpoint.host.clone(),
            port: endpoint.port as i32,
            rack: self.rack.clone(),
        })
    }
}

/// One partition's replicas, leader and epochs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub eligible_leader_replicas: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

impl PartitionImage {
    /// The leader, if it is one of the `live` brokers.
    pub fn live_leader(&self, live: &[i32]) -> Option<i32> {
        live.contains(&self.leader).then_some(self.leader)
    }

    /// The replicas on brokers that are not `live`.
    pub fn offline_replicas(&self, live: &[i32]) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !live.contains(r))
            .collect()
    }

    fn from_record(record: &PartitionRecord) -> PartitionImage {
        PartitionImage {
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            removing_replicas: record.removing_replicas.clone(),
            adding_replicas: record.adding_replicas.clone(),
            leader: record.leader,
            leader_recovery_state: record.leader_recovery_state,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
            eligible_leader_replicas: record.eligible_leader_replicas.clone(),
            last_known_elr: record.last_known_elr.clone(),
        }
    }

    /// Applies a change as Kafka's `PartitionRegistration.merge` does: the partition epoch
    /// always moves on, the leader epoch when the leader changes.
    fn merge(&mut self, change: &PartitionChangeRecord) {
        if let Some(isr) = &change.isr {
            self.isr = isr.clone();
        }
        if let Some(replicas) = &change.replicas {
            self.replicas = replicas.clone();
        }
        if let Some(removing) = &change.removing_replicas {
            self.removing_replicas = removing.clone();
        }
        if let Some(adding) = &change.adding_replicas {
            self.adding_replicas = adding.clone();
        }
        if let Some(state) = change.leader_recovery_state {
            self.leader_recovery_state = state;
        }
        if change.leader != NO_LEADER_CHANGE {
            self.leader = change.leader;
            self.leader_epoch += 1;
        }
        self.partition_epoch += 1;
        self.check();
    }

    /// What every committed partition state satisfies: a non-empty ISR of replicas, and a
    /// leader, if any, from the ISR.
    fn check(&self) {
        assert!(
            !self.isr.is_empty() && self.isr.iter().all(|r| self.replicas.contains(r)),
            "ISR {:?} is not a non-empty subset of replicas {:?}",
            self.isr,
            self.replicas
        );
        assert!(
            self.leader == NO_LEADER || self.isr.contains(&self.leader),
            "leader {} is not in ISR {:?}",
            self.leader,
            self.isr
        );
    }
}

/// A topic as the image holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    /// How many partitions the topic has (`partition_states.len()`).
    pub partitions: i32,
    /// The replica count of partition 0, as Kafka's tools report a topic's factor.
    pub replication_factor: i16,
    /// The topic's own configs (those set on it, not broker defaults).
    pub configs: BTreeMap<String, String>,
    pub partition_states: Vec<PartitionImage>,
}

/// One consistent view of the cluster.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_ids: HashMap<Uuid, String>,
    /// Dynamic broker configs by resource name: "" for the cluster default, else a node id.
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Configs set on consumer groups, by group id.
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Producer ids below this one have been handed out.
    pub next_producer_id: i64,
    pub features: BTreeMap<String, i16>,
    /// Brokers registered with the controller (a cluster; a lone node does not register).
    pub registrations: BTreeMap<i32, BrokerRegistration>,
    /// The listener whose endpoints clients are given (the same name on every node).
    pub listener_name: String,
    /// The metadata log index of the last record in this image (0: none).
    pub offset: u64,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_ids
            .get(id)
            .and_then(|name| self.topics.get(name))
    }

    /// Whether any record has shaped this image beyond the fixed feature levels: a store
    /// from before the metadata log is migrated only into an image that is still empty.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
            && self.broker_configs.is_empty()
            && self.group_configs.is_empty()
            && self.next_producer_id == 0
    }

    /// The dynamic broker configs of one resource ("" = cluster default).
    pub fn broker_config(&self, resource_name: &str) -> BTreeMap<String, String> {
        self.broker_configs
            .get(resource_name)
            .cloned()
            .unwrap_or_default()
    }

    /// The image as records that rebuild it from an empty one: the snapshot's contents.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        for (name, level) in &self.features {
            records.push(MetadataRecord::FeatureLevelRecord(FeatureLevelRecord {
                name: name.clone(),
                feature_level: *level,
            }));
        }
        for (name, configs) in &self.broker_configs {
            records.extend(ConfigRecord::set_all(resource::BROKER, name, configs));
        }
        for (name, configs) in &self.group_configs {
            records.extend(ConfigRecord::set_all(resource::GROUP, name, configs));
        }
        for (id, r) in &self.registrations {
            records.push(MetadataRecord::RegisterBrokerRecord(RegisterBrokerRecord {
                broker_id: *id,
                incarnation_id: r.incarnation_id,
                broker_epoch: r.epoch,
                end_points: r.endpoints.clone(),
                rack: r.rack.clone(),
                fenced: r.fenced,
                in_controlled_shutdown: r.in_controlled_shutdown,
            }));
        }
        for topic in self.topics.values() {
            records.push(MetadataRecord::TopicRecord(TopicRecord {
                name: topic.name.clone(),
                topic_id: topic.id,
            }));
            records.extend(ConfigRecord::set_all(
                resource::TOPIC,
                &topic.name,
                &topic.configs,
            ));
            for (index, p) in topic.partition_states.iter().enumerate() {
                records.push(MetadataRecord::PartitionRecord(PartitionRecord {
                    partition_id: index as i32,
                    topic_id: topic.id,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                    adding_replicas: p.adding_replicas.clone(),
                    leader: p.leader,
                    leader_recovery_state: p.leader_recovery_state,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    eligible_leader_replicas: p.eligible_leader_replicas.clone(),
                    last_known_elr: p.last_known_elr.clone(),
                }));
            }
        }
        if self.next_producer_id > 0 {
            records.push(MetadataRecord::ProducerIdsRecord(ProducerIdsRecord {
                broker_id: self.controller_id,
                broker_epoch: 0,
                next_producer_id: self.next_producer_id,
            }));
        }
        records
    }
}

/// What a batch of records changed, for the publisher.
#[derive(Debug, Default)]
pub struct MetadataDelta {
    /// Topics created or given partitions (by id), in the new image.
    pub grown: BTreeSet<Uuid>,
    /// Topics whose own configs changed (by id), in the new image.
    pub reconfigured: BTreeSet<Uuid>,
    /// Topics removed, as they were.
    pub removed: Vec<Arc<TopicImage>>,
    /// Whether dynamic broker configs changed.
    pub broker_configs: bool,
    /// Whether broker registrations changed.
    pub brokers: bool,
}

impl MetadataImage {
    /// Replays one committed record at log index `offset`. A record that names a topic the
    /// image does not have means the log is not the one the controller wrote: that stops
    /// the node rather than serve a view no controller decided.
    pub fn replay(&mut self, record: &MetadataRecord, offset: u64, delta: &mut MetadataDelta) {
        assert!(
            offset >= self.offset,
            "metadata records replay in log order ({offset} after {})",
            self.offset
        );
        self.offset = offset;
        match record {
            MetadataRecord::TopicRecord(r) => {
                assert!(
                    !self.topics.contains_key(&r.name) && !self.topic_ids.contains_key(&r.topic_id),
                    "TopicRecord for a topic that exists: {} ({})",
                    r.name,
                    r.topic_id
                );
                self.topic_ids.insert(r.topic_id, r.name.clone());
                self.topics.insert(
                    r.name.clone(),
                    Arc::new(TopicImage {
                        name: r.name.clone(),
                        id: r.topic_id,
                        partitions: 0,
                        replication_factor: 0,
                        configs: BTreeMap::new(),
                        partition_states: Vec::new(),
                    }),
                );
                delta.grown.insert(r.topic_id);
            }
            MetadataRecord::PartitionRecord(r) => {
                let topic = self.topic_mut(&r.topic_id, "PartitionRecord");
                assert_eq!(
                    r.partition_id,
                    topic.partition_states.len() as i32,
                    "partitions of {} are created densely, in order",
                    topic.name
                );
                let partition = PartitionImage::from_record(r);
                partition.check();
                topic.partition_states.push(partition);
                topic.partitions = topic.partition_states.len() as i32;
                topic.replication_factor = topic.partition_states[0].replicas.len() as i16;
                delta.grown.insert(r.topic_id);
            }
            MetadataRecord::PartitionChangeRecord(r) => {
                let topic = self.topic_mut(&r.topic_id, "PartitionChangeRecord");
                let name = topic.name.clone();
                let partition = topic
                    .partition_states
                    .get_mut(r.partition_id as usize)
                    .unwrap_or_else(|| {
                        panic!(
                            "PartitionChangeRecord for {name}-{} which does not exist",
                            r.partition_id
                        )
                    });
                partition.merge(r);
                topic.replication_factor = topic.partition_states[0].replicas.len() as i16;
                delta.grown.insert(r.topic_id);
            }
            MetadataRecord::RemoveTopicRecord(r) => {
                let name = self.topic_ids.remove(&r.topic_id).unwrap_or_else(|| {
                    panic!("RemoveTopicRecord for unknown topic id {}", r.topic_id)
                });
                let removed = self.topics.remove(&name).expect("topic ids index topics");
                delta.grown.remove(&r.topic_id);
                delta.reconfigured.remove(&r.topic_id);
                delta.removed.push(removed);
            }
            MetadataRecord::ConfigRecord(r) => {
                let set = |configs: &mut BTreeMap<String, String>| match &r.value {
                    Some(value) => {
                        configs.insert(r.name.clone(), value.clone());
                    }
                    None => {
                        configs.remove(&r.name);
                    }
                };
                match r.resource_type {
                    resource::TOPIC => {
                        let id = self
                            .topics
                            .get(&r.resource_name)
                            .unwrap_or_else(|| {
                                panic!("ConfigRecord for unknown topic {}", r.resource_name)
                            })
                            .id;
                        set(&mut self.topic_mut(&id, "ConfigRecord").configs);
                        delta.reconfigured.insert(id);
                    }
                    resource::BROKER => {
                        let configs = self
                            .broker_configs
                            .entry(r.resource_name.clone())
                            .or_default();
                        set(configs);
                        if configs.is_empty() {
                            self.broker_configs.remove(&r.resource_name);
                        }
                        delta.broker_configs = true;
                    }
                    resource::GROUP => {
                        let configs = self
                            .group_configs
                            .entry(r.resource_name.clone())
                            .or_default();
                        set(configs);
                        if configs.is_empty() {
                            self.group_configs.remove(&r.resource_name);
                        }
                    }
                    other => tracing::warn!(
                        resource_type = other,
                        "ignoring a ConfigRecord for a resource type this broker does not keep"
                    ),
                }
            }
            MetadataRecord::ProducerIdsRecord(r) => {
                assert!(
                    r.next_producer_id > self.next_producer_id,
                    "producer id blocks only move forward ({} after {})",
                    r.next_producer_id,
                    self.next_producer_id
                );
                self.next_producer_id = r.next_producer_id;
            }
            MetadataRecord::FeatureLevelRecord(r) => {
                self.features.insert(r.name.clone(), r.feature_level);
            }
            MetadataRecord::RegisterBrokerRecord(r) => {
                self.registrations.insert(
                    r.broker_id,
                    BrokerRegistration {
                        epoch: r.broker_epoch,
                        incarnation_id: r.incarnation_id,
                        endpoints: r.end_points.clone(),
                        rack: r.rack.clone(),
                        fenced: r.fenced,
                        in_controlled_shutdown: r.in_controlled_shutdown,
                    },
                );
                self.refresh_brokers();
                delta.brokers = true;
            }
            MetadataRecord::BrokerRegistrationChangeRecord(r) => {
                let registration = self.registrations.get_mut(&r.broker_id).unwrap_or_else(|| {
                    panic!(
                        "BrokerRegistrationChangeRecord for unregistered broker {}",
                        r.broker_id
                    )
                });
                assert_eq!(
                    registration.epoch, r.broker_epoch,
                    "a registration change names the broker's current epoch"
                );
                match r.fenced {
                    1 => registration.fenced = true,
                    -1 => registration.fenced = false,
                    _ => {}
                }
                match r.in_controlled_shutdown {
                    1 => registration.in_controlled_shutdown = true,
                    -1 => registration.in_controlled_shutdown = false,
                    _ => {}
                }
                self.refresh_brokers();
                delta.brokers = true;
            }
            MetadataRecord::NoOpRecord => {}
        }
    }

    /// The brokers clients are told about: every unfenced registered broker, at its
    /// endpoint for [`listener_name`](Self::listener_name).
    fn refresh_brokers(&mut self) {
        self.brokers = self
            .registrations
            .iter()
            .filter(|(_, r)| !r.fenced)
            .filter_map(|(id, r)| r.info(*id, &self.listener_name))
            .collect();
    }

    /// Every broker that is registered and not fenced, in id order.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers.iter().map(|b| b.node_id).collect()
    }

    fn topic_mut(&mut self, id: &Uuid, record: &str) -> &mut TopicImage {
        let name = self
            .topic_ids
            .get(id)
            .unwrap_or_else(|| panic!("{record} for unknown topic id {id}"));
        Arc::make_mut(self.topics.get_mut(name).expect("topic ids index topics"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::{RemoveTopicRecord, LEADER_RECOVERED};

    fn partition(topic_id: Uuid, partition_id: i32) -> MetadataRecord {
        MetadataRecord::PartitionRecord(PartitionRecord {
            partition_id,
            topic_id,
            replicas: vec![1],
            isr: vec![1],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: LEADER_RECOVERED,
            leader_epoch: 0,
            partition_epoch: 0,
            eligible_leader_replicas: vec![],
            last_known_elr: vec![],
        })
    }

    fn replay_all(image: &mut MetadataImage, records: &[MetadataRecord]) -> MetadataDelta {
        let mut delta = MetadataDelta::default();
        for (i, record) in records.iter().enumerate() {
            image.replay(record, image.offset + i as u64 + 1, &mut delta);
        }
        delta
    }

    #[test]
    fn records_build_topics_and_a_snapshot_rebuilds_the_same_image() {
        let id = Uuid::from_u128(1);
        let mut image = MetadataImage::default();
        let delta = replay_all(
            &mut image,
            &[
                MetadataRecord::TopicRecord(TopicRecord {
                    name: "t".into(),
                    topic_id: id,
                }),
                MetadataRecord::ConfigRecord(ConfigRecord {
                    resource_type: resource::TOPIC,
                    resource_name: "t".into(),
                    name: "retention.ms".into(),
                    value: Some("1000".into()),
                }),
                partition(id, 0),
                partition(id, 1),
                MetadataRecord::ConfigRecord(ConfigRecord {
                    resource_type: resource::BROKER,
                    resource_name: String::new(),
                    name: "log.retention.ms".into(),
                    value: Some("5".into()),
                }),
                MetadataRecord::ProducerIdsRecord(ProducerIdsRecord {
                    broker_id: 1,
                    broker_epoch: 0,
                    next_producer_id: 1000,
                }),
                MetadataRecord::PartitionChangeRecord(PartitionChangeRecord {
                    partition_id: 1,
                    topic_id: id,
                    isr: None,
                    leader: 1,
                    replicas: None,
                    removing_replicas: None,
                    adding_replicas: None,
                    leader_recovery_state: None,
                }),
            ],
        );
        assert!(delta.grown.contains(&id) && delta.reconfigured.contains(&id));
        assert!(delta.broker_configs);
        let topic = image.topic("t").unwrap();
        assert_eq!((topic.partitions, topic.replication_factor), (2, 1));
        assert_eq!(
            (
                topic.partition_states[1].leader_epoch,
                topic.partition_states[1].partition_epoch
            ),
            (1, 1)
        );

        let mut rebuilt = MetadataImage::default();
        replay_all(&mut rebuilt, &image.to_records());
        assert_eq!(rebuilt.topics, image.topics);
        assert_eq!(rebuilt.broker_configs, image.broker_configs);
        assert_eq!(rebuilt.next_producer_id, 1000);

        let delta = replay_all(
            &mut rebuilt,
            &[MetadataRecord::RemoveTopicRecord(RemoveTopicRecord {
                topic_id: id,
            })],
        );
        assert_eq!(delta.removed.len(), 1);
        assert!(rebuilt.topics.is_empty() && rebuilt.topic_ids.is_empty());
    }

    #[test]
    #[should_panic(expected = "unknown topic id")]
    fn a_record_for_an_unknown_topic_stops_the_node() {
        let mut image = MetadataImage::default();
        replay_all(&mut image, &[partition(Uuid::from_u128(9), 0)]);
    }
}
