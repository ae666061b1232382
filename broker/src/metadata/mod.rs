//! Cluster metadata: the image every request reads, and the controller that changes it.
//!
//! Metadata is a log of Kafka-shaped records ([`records`]) committed by a quorum
//! ([`quorum`], openraft with its log in the broker's RocksDB store). Every node replays the
//! committed records into its [`MetadataImage`] ([`image`]), swapped whole so a request sees
//! one consistent view, and its publisher ([`publisher`]) opens, grows, reconfigures or
//! removes the partitions it hosts. The [`Controller`] serializes admin requests, turns
//! each into records with the pure decisions of [`controller`], and answers once they are
//! committed and applied. One node is a quorum of one voter.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

pub mod controller;
pub mod group_config;
pub mod image;
mod migration;
pub mod publisher;
pub mod quorum;
pub mod records;

pub use image::{BrokerInfo, MetadataImage, TopicImage};

use crate::config::BrokerConfig;
use crate::log::LogError;
use crate::meta_store::{MetaStore, StoreError};
use crate::protocol::ErrorCode;
use crate::replication::ReplicaManager;
use publisher::MetadataView;
use quorum::{Quorum, QuorumError, QuorumSettings, RaftQuorum};
use records::MetadataRecord;

/// The longest topic name Kafka accepts.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;
/// The most metadata records one user operation may produce, as Kafka's controller
/// (`QuorumController.MAX_RECORDS_PER_USER_OP`): a topic is one record, plus one per
/// partition and one per config. A request that needs more is refused whole.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;
/// The most partitions one CreateTopics request may create (Kafka 4's
/// `ReplicationControlManager.MAX_PARTITIONS_PER_BATCH`, KAFKA-17870).
pub const MAX_PARTITIONS_PER_BATCH: usize = 10_000;
/// Producer ids are handed out in blocks, one metadata record per block.
const PRODUCER_ID_BLOCK: i64 = 1000;

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
    #[error("This is not the correct controller for this cluster.")]
    NotController,
    #[error("{0}")]
    Quorum(String),
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
            MetadataError::NotController => ErrorCode::NotController,
            MetadataError::Quorum(_) => ErrorCode::UnknownServerError,
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

/// The controller: decides admin requests against the image, commits the records through
/// the quorum, and answers once they are applied here.
pub struct Controller {
    config: Arc<BrokerConfig>,
    view: Arc<MetadataView>,
    quorum: Box<dyn Quorum>,
    /// Serializes decisions, so each one is made on the image its predecessor produced
    /// (two creates of one name cannot both succeed).
    changes: tokio::sync::Mutex<()>,
    /// The producer ids of the block this node holds: next, end.
    producer_ids: tokio::sync::Mutex<(i64, i64)>,
}

impl Controller {
    /// Starts the metadata quorum, which replays the committed records (opening the
    /// partitions they name), and moves a store from before the metadata log into it.
    pub async fn start(
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
        let image = MetadataImage {
            cluster_id: cluster_id.clone(),
            controller_id: config.node_id,
            brokers,
            ..MetadataImage::default()
        };
        let view = Arc::new(MetadataView::new(Arc::clone(&config), replicas, image));
        let settings = QuorumSettings {
            node_id: config.node_id,
            cluster_id,
            election_timeout_ms: config
                .get_i64("controller.quorum.election.timeout.ms")
                .unwrap_or(1000)
                .max(1) as u64,
        };
        let quorum = RaftQuorum::start_single(
            &settings,
            Arc::clone(&store),
            Arc::clone(&view) as Arc<dyn quorum::Applier>,
        )
        .await
        .map_err(|e| MetadataError::Quorum(format!("{e:#}")))?;
        let controller = Controller {
            config,
            view,
            quorum: Box::new(quorum),
            changes: tokio::sync::Mutex::new(()),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
        };
        migration::migrate(&controller, &*store).await?;
        Ok(controller)
    }

    /// Leaves the quorum.
    pub async fn shutdown(&self) {
        self.quorum.shutdown().await;
    }

    /// Commits records and returns once this node has applied them.
    async fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), MetadataError> {
        if records.is_empty() {
            return Ok(());
        }
        let index = self.quorum.propose(records).await.map_err(|e| match e {
            QuorumError::NotLeader => MetadataError::NotController,
            QuorumError::Failed(reason) => MetadataError::Quorum(reason),
        })?;
        assert!(
            self.image().offset >= index,
            "a committed batch is applied before the quorum answers"
        );
        Ok(())
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.view.image()
    }

    /// The broker config in force: static layers plus dynamic broker configs.
    pub fn broker_view(&self) -> Arc<BrokerConfig> {
        self.view.broker_view()
    }

    /// The configs set for a group (none set: empty). The group need not exist.
    pub fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.image()
            .group_configs
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes a group's configs (AlterConfigs replaces them all, IncrementalAlterConfigs
    /// applies `ops`).
    pub async fn alter_group_configs(
        &self,
        group: &str,
        replace: Option<BTreeMap<String, String>>,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let _guard = self.changes.lock().await;
        let records = controller::alter_group_configs(
            &self.image(),
            &self.broker_view(),
            group,
            replace,
            ops,
        )?;
        if validate_only {
            return Ok(());
        }
        self.commit(records).await?;
        tracing::info!(group, "group configs changed");
        Ok(())
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
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<Arc<TopicImage>, MetadataError> {
        let _guard = self.changes.lock().await;
        let (grown, records) =
            controller::create_partitions(&self.image(), name, count, assignments)?;
        if validate_only {
            return Ok(Arc::new(grown));
        }
        self.commit(records).await?;
        Ok(self.committed_topic(grown))
    }

    /// The topic as the image holds it after a commit (the decision's view if the topic
    /// has since changed again).
    fn committed_topic(&self, decided: TopicImage) -> Arc<TopicImage> {
        self.image()
            .topic_by_id(&decided.id)
            .cloned()
            .unwrap_or_else(|| Arc::new(decided))
    }

    /// Changes a topic's configs (AlterConfigs replaces them all; IncrementalAlterConfigs
    /// applies `ops`), validated, committed and applied to live partitions.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        replace: Option<BTreeMap<String, String>>,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let _guard = self.changes.lock().await;
        let records = controller::alter_topic_configs(
            &self.image(),
            &self.broker_view(),
            name,
            replace,
            ops,
        )?;
        if validate_only {
            return Ok(());
        }
        self.commit(records).await
    }

    /// Changes dynamic broker configs. Only Kafka's dynamic keys can change without a
    /// restart; the broker defaults of topic configs apply to every partition at once.
    pub async fn alter_broker_configs(
        &self,
        scope: BrokerScope,
        replace: Option<BTreeMap<String, String>>,
        ops: &[ConfigOp],
        validate_only: bool,
    ) -> Result<(), MetadataError> {
        let _guard = self.changes.lock().await;
        let resource_name = match scope {
            BrokerScope::ClusterDefault => String::new(),
            BrokerScope::ThisBroker => self.config.node_id.to_string(),
        };
        let records = controller::alter_broker_configs(
            &self.image(),
            &self.broker_view(),
            &resource_name,
            replace,
            ops,
        )?;
        if validate_only {
            return Ok(());
        }
        self.commit(records).await
    }

    /// Checks a new topic and, unless `validate_only`, creates it.
    pub async fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicImage>, MetadataError> {
        let _guard = self.changes.lock().await;
        let (created, records) =
            controller::create_topic(&self.image(), &self.broker_view(), topic, Uuid::new_v4())?;
        if validate_only {
            return Ok(Arc::new(created));
        }
        self.commit(records).await?;
        Ok(self.committed_topic(created))
    }

    /// Deletes a topic by name.
    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicImage>, MetadataError> {
        let _guard = self.changes.lock().await;
        let (deleted, records) = controller::delete_topic(&self.image(), &self.config, name)?;
        self.commit(records).await?;
        Ok(Arc::new(deleted))
    }

    /// Hands out a new producer id, committing a block of them at a time.
    pub async fn allocate_producer_id(&self) -> Result<i64, MetadataError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            let _guard = self.changes.lock().await;
            let image = self.image();
            let start = image.next_producer_id;
            let record =
                controller::allocate_producer_ids(&image, self.config.node_id, PRODUCER_ID_BLOCK);
            self.commit(vec![record]).await?;
            *ids = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }
}

/// The topic config whose broker-level default `key` is.
pub(crate) fn topic_key_of_broker_key(key: &str) -> Option<&'static str> {
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
    if controller::LIVE_BROKER_KEYS.contains(&key) {
        return crate::config::kafka_broker_key(key).map(|k| k.kind);
    }
    let read_here = crate::config::BROKER_CONFIGS.iter().any(|d| d.name == key);
    crate::config::kafka_broker_key(key)
        .filter(|k| k.dynamic && !read_here)
        .map(|k| k.kind)
}

/// Applies one incremental change to a config map.
pub(crate) fn apply_op(
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

    async fn start(
        store: &Arc<crate::meta_store::MemoryStore>,
        dir: &std::path::Path,
    ) -> Controller {
        let config = Arc::new(BrokerConfig::load_from(&[], &[]).unwrap());
        let store: Arc<dyn MetaStore> = Arc::clone(store) as Arc<dyn MetaStore>;
        let replicas = Arc::new(ReplicaManager::new(
            dir,
            Arc::clone(&store),
            crate::Clock,
            true,
        ));
        Controller::start(config, store, replicas).await.unwrap()
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
        let controller = start(&store, dir.path()).await;
        let created = controller
            .create_topic(new_topic("t", 2, &[("retention.ms", "1000")]), false)
            .await
            .unwrap();
        controller
            .create_partitions("t", 4, None, false)
            .await
            .unwrap();
        controller
            .alter_topic_configs(
                "t",
                None,
                &[ConfigOp::Append("cleanup.policy".into(), "compact".into())],
                false,
            )
            .await
            .unwrap();
        controller
            .alter_broker_configs(
                BrokerScope::ThisBroker,
                None,
                &[ConfigOp::Set("log.retention.ms".into(), "5000".into())],
                false,
            )
            .await
            .unwrap();
        let first_id = controller.allocate_producer_id().await.unwrap();
        controller.shutdown().await;
        drop(controller);

        let controller = start(&store, dir.path()).await;
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
            controller.allocate_producer_id().await.unwrap() > first_id,
            "producer ids never repeat"
        );
    }

    #[tokio::test]
    async fn refused_changes_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::meta_store::MemoryStore::default());
        let controller = start(&store, dir.path()).await;
        controller
            .create_topic(new_topic("t", 3, &[]), false)
            .await
            .unwrap();
        assert!(matches!(
            controller.create_topic(new_topic("t", 1, &[]), false).await,
            Err(MetadataError::TopicAlreadyExists(_))
        ));
        assert!(matches!(
            controller.create_partitions("t", 2, None, false).await,
            Err(MetadataError::InvalidPartitions(_))
        ));
        assert!(matches!(
            controller.create_partitions("t", 3, None, false).await,
            Err(MetadataError::InvalidPartitions(_))
        ));
        let bad = [ConfigOp::Set("retention.ms".into(), "soon".into())];
        assert!(matches!(
            controller.alter_topic_configs("t", None, &bad, false).await,
            Err(MetadataError::InvalidConfig(_))
        ));
        let not_a_list = [ConfigOp::Append("retention.ms".into(), "1".into())];
        assert!(matches!(
            controller
                .alter_topic_configs("t", None, &not_a_list, false)
                .await,
            Err(MetadataError::InvalidConfig(_))
        ));
        let static_only = [ConfigOp::Set("num.partitions".into(), "9".into())];
        assert!(matches!(
            controller
                .alter_broker_configs(BrokerScope::ClusterDefault, None, &static_only, false)
                .await,
            Err(MetadataError::InvalidConfig(_))
        ));
        controller
            .create_partitions("t", 5, None, true)
            .await
            .unwrap();
        let topic = controller.image().topic("t").cloned().unwrap();
        assert_eq!(topic.partitions, 3, "validate_only changed nothing");
        assert!(topic.configs.is_empty());
        assert!(!dir.path().join("t-3").exists());
    }
}
