//! Cluster metadata: the image every request reads, and the controller that changes it.
//!
//! The [`MetadataImage`] is immutable and swapped whole, so a Metadata request sees one
//! consistent view. The [`Controller`] turns admin requests into topic records, persists
//! them in the metadata store, swaps in a new image and publishes the change to the
//! [`ReplicaManager`], which opens or removes partition logs. In a single-node cluster the
//! store is the record of truth; a quorum (KRaft-style) takes that role when there are
//! several nodes, with the same image and publisher.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod group_config;

use crate::config::BrokerConfig;
use crate::log::{LogError, TopicConfig};
use crate::meta_store::{MetaStore, StoreError};
use crate::protocol::ErrorCode;
use crate::replication::ReplicaManager;
use crate::sync::{MutexExt, RwLockExt};

/// The longest topic name Kafka accepts.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;
/// The most metadata records one user operation may produce, as Kafka's controller
/// (`QuorumController.MAX_RECORDS_PER_USER_OP`): a topic is one record, plus one per
/// partition and one per config. A request that needs more is refused whole.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;
/// The most partitions one CreateTopics request may create (Kafka 4's
/// `ReplicationControlManager.MAX_PARTITIONS_PER_BATCH`, KAFKA-17870).
pub const MAX_PARTITIONS_PER_BATCH: usize = 10_000;
/// Producer ids are handed out in blocks, one store write per block.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// A topic as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// A broker as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// One consistent view of the cluster.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: BTreeMap<String, Arc<TopicRecord>>,
    pub topic_ids: HashMap<Uuid, String>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicRecord>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicRecord>> {
        self.topic_ids
            .get(id)
            .and_then(|name| self.topics.get(name))
    }
}

/// Why a metadata change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    #[error("Topic deletion is disabled.")]
    TopicDeletionDisabled,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Unable to perform excessively large batch operation.")]
    ExcessivelyLargeOperation,
    #[error("Excessively large number of partitions per request.")]
    ExcessivelyManyPartitions,
    /// Kafka's CreatePartitions answers a topic that overflows the per-operation record
    /// limit with UNKNOWN_SERVER_ERROR and no message.
    #[error("")]
    GrowthOverflow,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] LogError),
}

impl MetadataError {
    pub fn code(&self) -> ErrorCode {
        match self {
            MetadataError::InvalidTopic(_) => ErrorCode::InvalidTopicException,
            MetadataError::TopicAlreadyExists(_) => ErrorCode::TopicAlreadyExists,
            MetadataError::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
            MetadataError::InvalidReplicationFactor(_) => ErrorCode::InvalidReplicationFactor,
            MetadataError::InvalidReplicaAssignment(_) => ErrorCode::InvalidReplicaAssignment,
            MetadataError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            MetadataError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            MetadataError::UnknownTopicId => ErrorCode::UnknownTopicId,
            MetadataError::TopicDeletionDisabled => ErrorCode::TopicDeletionDisabled,
            MetadataError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            MetadataError::ExcessivelyLargeOperation => ErrorCode::PolicyViolation,
            MetadataError::ExcessivelyManyPartitions => ErrorCode::PolicyViolation,
            MetadataError::GrowthOverflow => ErrorCode::UnknownServerError,
            MetadataError::Store(_) => ErrorCode::UnknownServerError,
            MetadataError::Log(e) => e.code(),
        }
    }
}

/// Checks a topic name as Kafka's `Topic.validate` does.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    if name.is_empty() {
        return Err(MetadataError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(MetadataError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return Err(MetadataError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(MetadataError::InvalidTopic(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// One change of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
    /// Adds a value to a list config (if absent).
    Append(String, String),
    /// Removes a value from a list config.
    Subtract(String, String),
}

/// The broker resource a dynamic config change names: all brokers, or this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    ClusterDefault,
    ThisBroker,
}

impl BrokerScope {
    fn store_key(self) -> &'static str {
        match self {
            BrokerScope::ClusterDefault => "broker_config/default",
            BrokerScope::ThisBroker => "broker_config/node",
        }
    }
}

/// A topic creation request, after decoding.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: `num.partitions`.
    pub partitions: i32,
    /// -1: `default.replication.factor`.
    pub replication_factor: i16,
    /// Explicit assignment: partition index to broker ids.
    pub assignments: BTreeMap<i32, Vec<i32>>,
    pub configs: BTreeMap<String, String>,
}

/// The single-node controller: owns topic records and producer id blocks.
pub struct Controller {
    config: Arc<BrokerConfig>,
    store: Arc<dyn MetaStore>,
    replicas: Arc<ReplicaManager>,
    image: RwLock<Arc<MetadataImage>>,
    /// Serializes changes, so two creates of one name cannot both succeed.
    changes: Mutex<()>,
    producer_ids: Mutex<(i64, i64)>,
    /// The static config with dynamic broker configs laid over it.
    effective: RwLock<Arc<BrokerConfig>>,
    dynamic: Mutex<[BTreeMap<String, String>; 2]>,
    /// Group configs set for each group (resource type GROUP), by group id.
    group_configs: RwLock<BTreeMap<String, BTreeMap<String, String>>>,
}

const GROUP_CONFIG_PREFIX: &str = "group_config/";

impl Controller {
    /// Loads the persisted topics and opens their partitions.
    pub fn start(
        config: Arc<BrokerConfig>,
        store: Arc<dyn MetaStore>,
        replicas: Arc<ReplicaManager>,
    ) -> Result<Controller, MetadataError> {
        let cluster_id = match store.get("cluster/id")? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => {
                // The broker records the formatted id first (meta_properties); a store
                // used on its own gets a new one.
                let id = crate::meta_properties::random_id();
                store.put("cluster/id", id.as_bytes())?;
                id
            }
        };
        let brokers = config
            .advertised_listeners
            .iter()
            .take(1)
            .map(|l| BrokerInfo {
                node_id: config.node_id,
                host: if l.host.is_empty() || l.host == "0.0.0.0" {
                    "localhost".into()
                } else {
                    l.host.clone()
                },
                port: l.port as i32,
            })
            .collect();
        let mut image = MetadataImage {
            cluster_id,
            controller_id: config.node_id,
            brokers,
            ..MetadataImage::default()
        };
        let load = |scope: BrokerScope| -> Result<BTreeMap<String, String>, MetadataError> {
            let mut configs: BTreeMap<String, String> = match store.get(scope.store_key())? {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                    MetadataError::Store(StoreError(format!("damaged broker configs: {e}")))
                })?,
                None => BTreeMap::new(),
            };
            // Weir once took synonyms such as log.retention.hours as dynamic; Kafka does
            // not, and a stored one would make every later change of the scope fail.
            configs.retain(|key, value| {
                let dynamic = broker_dynamic_type(key).is_some();
                if !dynamic {
                    tracing::warn!(key = %key, value = %value, ?scope, "dropping a stored dynamic broker config that is not dynamic");
                }
                dynamic
            });
            Ok(configs)
        };
        let dynamic = [
            load(BrokerScope::ClusterDefault)?,
            load(BrokerScope::ThisBroker)?,
        ];
        let effective = Arc::new(config.with_dynamic(&dynamic[0], &dynamic[1]));
        let mut group_configs = BTreeMap::new();
        for (key, value) in store.scan_prefix(GROUP_CONFIG_PREFIX)? {
            let configs: BTreeMap<String, String> = serde_json::from_slice(&value)
                .map_err(|e| StoreError(format!("damaged group configs: {e}")))?;
            group_configs.insert(key[GROUP_CONFIG_PREFIX.len()..].to_string(), configs);
        }
        for (_, value) in store.scan_prefix("topic/")? {
            let record: TopicRecord = serde_json::from_slice(&value)
                .map_err(|e| StoreError(format!("damaged topic record: {e}")))?;
            let topic_config = TopicConfig::resolve(&effective, record.configs.clone());
            replicas.host_topic(&record.name, record.id, record.partitions, &topic_config)?;
            image.topic_ids.insert(record.id, record.name.clone());
            image.topics.insert(record.name.clone(), Arc::new(record));
        }
        Ok(Controller {
            config,
            store,
            replicas,
            image: RwLock::new(Arc::new(image)),
            changes: Mutex::new(()),
            producer_ids: Mutex::new((0, 0)),
            effective: RwLock::new(effective),
            dynamic: Mutex::new(dynamic),
            group_configs: RwLock::new(group_configs),
        })
    }

    /// The configs set for a group (none set: empty). The group need not exist.
    pub fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.group_configs
            .read_or_recover()
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes a group's configs (AlterConfigs replaces them all, IncrementalAlterConfigs
    /// applies `ops`), checked against Kafka 4.1's group config keys and the broker's
    /// bounds, then stored before they apply.
    pub fn alter_group_configs(
        &self,
        group: &str,
        replace: Option<BTreeMap<String, String>>,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        if group.is_empty() {
            return Err(MetadataError::InvalidRequest(
                "Group name must not be empty".into(),
            ));
        }
        let _guard = self.changes.lock_or_recover();
        let broker = self.broker_view();
        let mut configs = replace.unwrap_or_else(|| self.group_configs(group));
        for op in ops {
            apply_op(
                &mut configs,
                op,
                |key| group_config::definition(key).map(|d| d.default_value(&broker).to_string()),
                |_| Some(crate::config::ConfigType::Int),
            )?;
        }
        // Kafka reads numbers with surrounding blanks trimmed; keep the value as read.
        for value in configs.values_mut() {
            *value = value.trim().to_string();
        }
        for (key, value) in &configs {
            group_config::validate(key, value, &broker)?;
        }
        if validate_only {
            return Ok(());
        }
        let key = format!("{GROUP_CONFIG_PREFIX}{group}");
        if configs.is_empty() {
            self.store.delete(&key)?;
        } else {
            self.store.put(
                &key,
                &serde_json::to_vec(&configs).expect("configs serialize"),
            )?;
        }
        let mut all = self.group_configs.write_or_recover();
        if configs.is_empty() {
            all.remove(group);
        } else {
            all.insert(group.to_string(), configs);
        }
        tracing::info!(group, "group configs changed");
        Ok(())
    }

    /// The broker config in force: static layers plus dynamic broker configs.
    pub fn broker_view(&self) -> Arc<BrokerConfig> {
        Arc::clone(&self.effective.read_or_recover())
    }

    /// Kafka's two size checks on a CreateTopics request, over all its topics together:
    /// at most [`MAX_PARTITIONS_PER_BATCH`] partitions, and at most
    /// [`MAX_RECORDS_PER_USER_OP`] records (one per topic, partition and config). Counted
    /// before validation, so a huge request is refused cheaply and whole.
    pub fn check_create_size<'a>(
        &self,
        topics: impl Iterator<Item = &'a NewTopic>,
    ) -> Result<(), MetadataError> {
        let (mut partitions, mut records) = (0usize, 0usize);
        for topic in topics {
            let count = match (topic.assignments.len(), topic.partitions) {
                (0, -1) => self.config.num_partitions.max(0) as usize,
                (0, n) => n.max(0) as usize,
                (assigned, _) => assigned,
            };
            partitions = partitions.saturating_add(count);
            records = records.saturating_add(1 + count + topic.configs.len());
        }
        if partitions > MAX_PARTITIONS_PER_BATCH {
            return Err(MetadataError::ExcessivelyManyPartitions);
        }
        if records > MAX_RECORDS_PER_USER_OP {
            return Err(MetadataError::ExcessivelyLargeOperation);
        }
        Ok(())
    }

    /// The records a CreatePartitions request has used so far plus growing `topic` to
    /// `count` partitions (one record per new partition), or the error Kafka gives the
    /// topic that would overflow [`MAX_RECORDS_PER_USER_OP`]. Such a topic is not grown.
    pub fn count_growth(
        &self,
        used: usize,
        topic: &str,
        count: i32,
    ) -> Result<usize, MetadataError> {
        let current = self.image().topic(topic).map_or(0, |t| t.partitions);
        let total = used.saturating_add(count.saturating_sub(current).max(0) as usize);
        if total > MAX_RECORDS_PER_USER_OP {
            return Err(MetadataError::GrowthOverflow);
        }
        Ok(total)
    }

    /// Grows a topic to `count` partitions (CreatePartitions); never shrinks one.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Arc<TopicRecord>, MetadataError> {
        let _guard = self.changes.lock_or_recover();
        let record = self.existing_topic(name)?;
        if count < record.partitions {
            return Err(MetadataError::InvalidPartitions(format!(
                "Topic currently has {} partitions, which is higher than the requested {count}.",
                record.partitions
            )));
        }
        if count == record.partitions {
            return Err(MetadataError::InvalidPartitions(format!(
                "Topic already has {} partitions.",
                record.partitions
            )));
        }
        if let Some(assignments) = &assignments {
            if assignments.len() as i32 != count - record.partitions {
                return Err(MetadataError::InvalidReplicaAssignment(format!(
                    "Increasing the number of partitions by {} but {} assignments provided.",
                    count - record.partitions,
                    assignments.len()
                )));
            }
            let node = self.config.node_id;
            if assignments.iter().any(|a| a.len() != 1 || a[0] != node) {
                return Err(MetadataError::InvalidReplicaAssignment(
                    "The manual partition assignment includes a broker that is not registered or a repeated broker.".into(),
                ));
            }
        }
        let grown = TopicRecord {
            partitions: count,
            ..TopicRecord::clone(&record)
        };
        if validate_only {
            return Ok(Arc::new(grown));
        }
        let topic_config = TopicConfig::resolve(&self.broker_view(), grown.configs.clone());
        self.store.put(
            &format!("topic/{name}"),
            &serde_json::to_vec(&grown).expect("record serializes"),
        )?;
        self.replicas
            .host_topic(name, grown.id, count, &topic_config)?;
        let grown = Arc::new(grown);
        self.publish(|image| {
            image.topics.insert(name.to_string(), Arc::clone(&grown));
        });
        tracing::info!(topic = %name, partitions = count, "added partitions");
        Ok(grown)
    }

    /// Changes a topic's configs (AlterConfigs replaces them all; IncrementalAlterConfigs
    /// applies `ops`), validates the result, persists it and applies it to live partitions.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        replace: Option<BTreeMap<String, String>>,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let _guard = self.changes.lock_or_recover();
        let record = self.existing_topic(name)?;
        let broker = self.broker_view();
        let mut configs = replace.unwrap_or_else(|| record.configs.clone());
        for op in ops {
            apply_op(
                &mut configs,
                op,
                |key| TopicConfig::effective(&broker, &record.configs, key).map(|(v, _)| v),
                |key| {
                    crate::log::TOPIC_CONFIGS
                        .iter()
                        .find(|d| d.name == key)
                        .map(|d| d.kind)
                },
            )?;
        }
        for (key, value) in &configs {
            TopicConfig::validate(key, value).map_err(MetadataError::InvalidConfig)?;
        }
        if validate_only {
            return Ok(());
        }
        let updated = TopicRecord {
            configs,
            ..TopicRecord::clone(&record)
        };
        self.store.put(
            &format!("topic/{name}"),
            &serde_json::to_vec(&updated).expect("record serializes"),
        )?;
        self.replicas.reconfigure(
            name,
            &TopicConfig::resolve(&broker, updated.configs.clone()),
        );
        let updated = Arc::new(updated);
        self.publish(|image| {
            image.topics.insert(name.to_string(), Arc::clone(&updated));
        });
        tracing::info!(topic = %name, "topic configs changed");
        Ok(())
    }

    /// Changes dynamic broker configs. Only broker-level defaults of topic configs (such
    /// as `log.retention.ms`, `message.max.bytes`) can change without a restart.
    pub fn alter_broker_configs(
        &self,
        scope: BrokerScope,
        replace: Option<BTreeMap<String, String>>,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let _guard = self.changes.lock_or_recover();
        let mut dynamic = self.dynamic.lock_or_recover();
        let slot = match scope {
            BrokerScope::ClusterDefault => 0,
            BrokerScope::ThisBroker => 1,
        };
        let current = self.broker_view();
        let mut configs = replace.unwrap_or_else(|| dynamic[slot].clone());
        for op in ops {
            apply_op(
                &mut configs,
                op,
                |key| current.get(key).map(str::to_string),
                broker_dynamic_type,
            )?;
        }
        for (key, value) in &configs {
            let kind = broker_dynamic_type(key).ok_or_else(|| {
                MetadataError::InvalidConfig(format!(
                    "Cannot update these configs dynamically: Set({key})"
                ))
            })?;
            kind.validate(value).map_err(|_| {
                MetadataError::InvalidConfig(format!(
                    "Invalid value {value} for configuration {key}"
                ))
            })?;
            if let Some(topic_key) = topic_key_of_broker_key(key) {
                TopicConfig::validate(topic_key, value).map_err(MetadataError::InvalidConfig)?;
            }
            if LIVE_BROKER_KEYS.contains(&key.as_str())
                && value.trim().parse::<i64>().is_ok_and(|v| v < 0)
            {
                return Err(MetadataError::InvalidConfig(format!(
                    "Invalid value {value} for configuration {key}: Value must be at least 0"
                )));
            }
        }
        if validate_only {
            return Ok(());
        }
        self.store.put(
            scope.store_key(),
            &serde_json::to_vec(&configs).expect("configs serialize"),
        )?;
        dynamic[slot] = configs;
        let effective = Arc::new(self.config.with_dynamic(&dynamic[0], &dynamic[1]));
        *self.effective.write_or_recover() = Arc::clone(&effective);
        for record in self.image().topics.values() {
            self.replicas.reconfigure(
                &record.name,
                &TopicConfig::resolve(&effective, record.configs.clone()),
            );
        }
        tracing::info!(?scope, "dynamic broker configs changed");
        Ok(())
    }

    fn existing_topic(&self, name: &str) -> Result<Arc<TopicRecord>, MetadataError> {
        self.image()
            .topic(name)
            .cloned()
            .ok_or(MetadataError::UnknownTopicOrPartition)
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read_or_recover())
    }

    /// Checks a new topic and, unless `validate_only`, creates it.
    pub fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicRecord>, MetadataError> {
        let _guard = self.changes.lock_or_recover();
        validate_topic_name(&topic.name)?;
        if self.image().topic(&topic.name).is_some() {
            return Err(MetadataError::TopicAlreadyExists(topic.name));
        }
        let record = self.check_new_topic(topic)?;
        if validate_only {
            return Ok(Arc::new(record));
        }
        let topic_config = TopicConfig::resolve(&self.broker_view(), record.configs.clone());
        self.store.put(
            &format!("topic/{}", record.name),
            &serde_json::to_vec(&record).expect("record serializes"),
        )?;
        self.replicas
            .host_topic(&record.name, record.id, record.partitions, &topic_config)?;
        let record = Arc::new(record);
        self.publish(|image| {
            image.topic_ids.insert(record.id, record.name.clone());
            image
                .topics
                .insert(record.name.clone(), Arc::clone(&record));
        });
        tracing::info!(topic = %record.name, partitions = record.partitions, "created topic");
        Ok(record)
    }

    fn check_new_topic(&self, topic: NewTopic) -> Result<TopicRecord, MetadataError> {
        let node_id = self.config.node_id;
        let (partitions, replication_factor) = if topic.assignments.is_empty() {
            let partitions = if topic.partitions == -1 {
                self.config.num_partitions
            } else {
                topic.partitions
            };
            let replication_factor = if topic.replication_factor == -1 {
                self.config.default_replication_factor
            } else {
                topic.replication_factor
            };
            if partitions <= 0 {
                return Err(MetadataError::InvalidPartitions(
                    "Number of partitions must be larger than 0.".into(),
                ));
            }
            if replication_factor <= 0 {
                return Err(MetadataError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0.".into(),
                ));
            }
            if replication_factor > 1 {
                return Err(MetadataError::InvalidReplicationFactor(format!(
                    "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only 1 broker(s) are registered."
                )));
            }
            (partitions, replication_factor)
        } else {
            if topic.partitions != -1 || topic.replication_factor != -1 {
                return Err(MetadataError::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            let expected: Vec<i32> = (0..topic.assignments.len() as i32).collect();
            if topic.assignments.keys().copied().collect::<Vec<_>>() != expected {
                return Err(MetadataError::InvalidReplicaAssignment(
                    "Partitions should be a consecutive 0-based integer sequence".into(),
                ));
            }
            for replicas in topic.assignments.values() {
                if replicas.is_empty()
                    || replicas.iter().any(|r| *r != node_id)
                    || replicas.len() > 1
                {
                    return Err(MetadataError::InvalidReplicaAssignment(format!(
                        "The manual partition assignment includes a broker that is not registered or a repeated broker: {replicas:?}"
                    )));
                }
            }
            (topic.assignments.len() as i32, 1)
        };
        for (key, value) in &topic.configs {
            TopicConfig::validate(key, value).map_err(MetadataError::InvalidConfig)?;
        }
        Ok(TopicRecord {
            name: topic.name,
            id: Uuid::new_v4(),
            partitions,
            replication_factor,
            configs: topic.configs,
        })
    }

    /// Deletes a topic by name.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicRecord>, MetadataError> {
        let _guard = self.changes.lock_or_recover();
        if !self.config.delete_topic_enable {
            return Err(MetadataError::TopicDeletionDisabled);
        }
        let record = self.existing_topic(name)?;
        self.store.delete(&format!("topic/{name}"))?;
        self.publish(|image| {
            image.topics.remove(name);
            image.topic_ids.remove(&record.id);
        });
        let delay =
            TopicConfig::effective(&self.broker_view(), &record.configs, "file.delete.delay.ms")
                .and_then(|(v, _)| v.parse().ok())
                .unwrap_or(60_000);
        self.replicas.remove_topic(name, delay);
        tracing::info!(topic = %name, "deleted topic");
        Ok(record)
    }

    fn publish(&self, change: impl FnOnce(&mut MetadataImage)) {
        let mut guard = self.image.write_or_recover();
        let mut next = MetadataImage::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// Hands out a new producer id, persisting a block of them at a time.
    pub fn allocate_producer_id(&self) -> Result<i64, MetadataError> {
        let mut ids = self.producer_ids.lock_or_recover();
        if ids.0 >= ids.1 {
            let start = match self.store.get("producer_ids/next_block")? {
                Some(bytes) if bytes.len() == 8 => {
                    i64::from_be_bytes(bytes.try_into().expect("8 bytes"))
                }
                _ => 0,
            };
            let end = start + PRODUCER_ID_BLOCK;
            self.store
                .put("producer_ids/next_block", &end.to_be_bytes())?;
            *ids = (start, end);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }
}

/// The topic config whose broker-level default `key` is.
fn topic_key_of_broker_key(key: &str) -> Option<&'static str> {
    crate::log::TOPIC_CONFIGS
        .iter()
        .find(|d| {
            d.broker_synonym == Some(key)
                || (d.name == "retention.ms" && key.starts_with("log.retention."))
                || (d.name == "segment.ms" && key == "log.roll.hours")
        })
        .map(|d| d.name)
}

/// The type of a broker key that may change dynamically, or None if it cannot: the broker
/// defaults of topic configs (applied live), and Kafka's other dynamic keys that this
/// broker does not read (kept and described, without effect). Keys it reads at start-up
/// only stay read-only.
/// Broker keys read from the config in force whenever they are used, so a dynamic change
/// applies at once.
const LIVE_BROKER_KEYS: &[&str] = &["max.connections.per.ip"];

pub(crate) fn broker_dynamic_type(key: &str) -> Option<crate::config::ConfigType> {
    // Only a topic config's own broker key is dynamic (Kafka's DynamicLogConfig): its
    // other synonyms (`log.retention.hours`, `log.roll.hours`, ...) are read-only.
    let primary = crate::log::TOPIC_CONFIGS
        .iter()
        .any(|d| d.broker_synonym == Some(key));
    if primary {
        return crate::config::BROKER_CONFIGS
            .iter()
            .find(|d| d.name == key)
            .map(|d| d.kind)
            .or_else(|| {
                crate::log::TOPIC_CONFIGS
                    .iter()
                    .find(|d| d.broker_synonym == Some(key))
                    .map(|d| d.kind)
            });
    }
    // Keys this broker reads and applies live (the connection acceptor reads the value in
    // force for each new connection).
    if LIVE_BROKER_KEYS.contains(&key) {
        return crate::config::kafka_broker_key(key).map(|k| k.kind);
    }
    let read_here = crate::config::BROKER_CONFIGS.iter().any(|d| d.name == key);
    crate::config::kafka_broker_key(key)
        .filter(|k| k.dynamic && !read_here)
        .map(|k| k.kind)
}

/// Applies one incremental change to a config map.
fn apply_op(
    configs: &mut BTreeMap<String, String>,
    op: &ConfigOp,
    effective: impl Fn(&str) -> Option<String>,
    kind: impl Fn(&str) -> Option<crate::config::ConfigType>,
) -> Result<(), MetadataError> {
    let list_of = |key: &str| -> Result<Vec<String>, MetadataError> {
        if kind(key) != Some(crate::config::ConfigType::List) {
            return Err(MetadataError::InvalidConfig(format!(
                "Config value append/subtract is not allowed for config key {key}"
            )));
        }
        let current = configs
            .get(key)
            .cloned()
            .or_else(|| effective(key))
            .unwrap_or_default();
        Ok(current
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect())
    };
    match op {
        ConfigOp::Set(key, value) => {
            configs.insert(key.clone(), value.clone());
        }
        ConfigOp::Delete(key) => {
            configs.remove(key);
        }
        ConfigOp::Append(key, value) => {
            let mut list = list_of(key)?;
            for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                if !list.iter().any(|x| x == v) {
                    list.push(v.to_string());
                }
            }
            configs.insert(key.clone(), list.join(","));
        }
        ConfigOp::Subtract(key, value) => {
            let remove: Vec<&str> = value.split(',').map(str::trim).collect();
            let list: Vec<String> = list_of(key)?
                .into_iter()
                .filter(|x| !remove.contains(&x.as_str()))
                .collect();
            configs.insert(key.clone(), list.join(","));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_checked_as_kafka_does() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a/b", "with space", &"x".repeat(250)] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(MetadataError::InvalidTopic(_))
                ),
                "{bad}"
            );
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    fn start(store: &Arc<crate::meta_store::MemoryStore>, dir: &std::path::Path) -> Controller {
        let config = Arc::new(BrokerConfig::load_from(&[], &[]).unwrap());
        let store: Arc<dyn MetaStore> = Arc::clone(store) as Arc<dyn MetaStore>;
        let replicas = Arc::new(ReplicaManager::new(
            dir,
            Arc::clone(&store),
            crate::Clock,
            true,
        ));
        Controller::start(config, store, replicas).unwrap()
    }

    fn new_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            assignments: BTreeMap::new(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[tokio::test]
    async fn topics_configs_and_ids_survive_a_restart_of_the_controller() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::meta_store::MemoryStore::default());
        let controller = start(&store, dir.path());
        let created = controller
            .create_topic(new_topic("t", 2, &[("retention.ms", "1000")]), false)
            .unwrap();
        controller.create_partitions("t", 4, None, false).unwrap();
        controller
            .alter_topic_configs(
                "t",
                None,
                &[ConfigOp::Append("cleanup.policy".into(), "compact".into())],
                false,
            )
            .unwrap();
        controller
            .alter_broker_configs(
                BrokerScope::ThisBroker,
                None,
                &[ConfigOp::Set("log.retention.ms".into(), "5000".into())],
                false,
            )
            .unwrap();
        let first_id = controller.allocate_producer_id().unwrap();
        drop(controller);

        let controller = start(&store, dir.path());
        let topic = controller.image().topic("t").cloned().unwrap();
        assert_eq!((topic.id, topic.partitions), (created.id, 4));
        assert_eq!(
            topic.configs.get("cleanup.policy").map(String::as_str),
            Some("delete,compact")
        );
        assert_eq!(
            controller.broker_view().get("log.retention.ms"),
            Some("5000")
        );
        assert!(
            controller.allocate_producer_id().unwrap() > first_id,
            "producer ids never repeat"
        );
    }

    #[tokio::test]
    async fn refused_changes_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::meta_store::MemoryStore::default());
        let controller = start(&store, dir.path());
        controller
            .create_topic(new_topic("t", 3, &[]), false)
            .unwrap();
        assert!(matches!(
            controller.create_topic(new_topic("t", 1, &[]), false),
            Err(MetadataError::TopicAlreadyExists(_))
        ));
        assert!(matches!(
            controller.create_partitions("t", 2, None, false),
            Err(MetadataError::InvalidPartitions(_))
        ));
        assert!(matches!(
            controller.create_partitions("t", 3, None, false),
            Err(MetadataError::InvalidPartitions(_))
        ));
        let bad = [ConfigOp::Set("retention.ms".into(), "soon".into())];
        assert!(matches!(
            controller.alter_topic_configs("t", None, &bad, false),
            Err(MetadataError::InvalidConfig(_))
        ));
        let not_a_list = [ConfigOp::Append("retention.ms".into(), "1".into())];
        assert!(matches!(
            controller.alter_topic_configs("t", None, &not_a_list, false),
            Err(MetadataError::InvalidConfig(_))
        ));
        let static_only = [ConfigOp::Set("num.partitions".into(), "9".into())];
        assert!(matches!(
            controller.alter_broker_configs(BrokerScope::ClusterDefault, None, &static_only, false),
            Err(MetadataError::InvalidConfig(_))
        ));
        controller.create_partitions("t", 5, None, true).unwrap();
        let topic = controller.image().topic("t").cloned().unwrap();
        assert_eq!(topic.partitions, 3, "validate_only changed nothing");
        assert!(topic.configs.is_empty());
        assert!(!dir.path().join("t-3").exists());
    }
}
