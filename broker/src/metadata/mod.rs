//! Cluster metadata: the image every request reads, and the controller that changes it.
//!
//! Metadata is a log of Kafka-shaped records ([`records`]) committed by a quorum
//! ([`quorum`], openraft with its log in the broker's RocksDB store). Every node replays the
//! committed records into its [`MetadataImage`] ([`image`]), swapped whole so a request sees
//! one consistent view, and its publisher ([`publisher`]) opens, grows, reconfigures or
//! removes the partitions it hosts. The [`Controller`] serializes admin requests, turns
//! each into records with the pure decisions of [`controller`], and answers once they are
//! committed and applied. One node is a quorum of one voter.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

pub mod controller;
pub mod group_config;
pub mod image;
pub mod lifecycle;
mod migration;
pub mod publisher;
pub mod quorum;
pub mod records;

pub use image::{BrokerInfo, MetadataImage, TopicImage};

use crate::channel::{Channel, ChannelError};
use crate::config::BrokerConfig;
use crate::log::LogError;
use crate::meta_store::{MetaStore, StoreError};
use crate::protocol::ErrorCode;
use crate::replication::ReplicaManager;
use crate::sync::MutexExt;
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
    /// Sent to the controller, or proposed to the quorum, without an answer in time: the
    /// change may still be made (Kafka's REQUEST_TIMED_OUT).
    #[error("The request timed out.")]
    RequestTimedOut,
    #[error("{0}")]
    StaleBrokerEpoch(String),
    #[error("{0}")]
    BrokerIdNotRegistered(String),
    #[error("{0}")]
    DuplicateBrokerRegistration(String),
    #[error("{0}")]
    Quorum(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] LogError),
}

impl From<QuorumError> for MetadataError {
    fn from(e: QuorumError) -> MetadataError {
        match e {
            QuorumError::NotLeader => MetadataError::NotController,
            QuorumError::TimedOut => MetadataError::RequestTimedOut,
            QuorumError::Failed(reason) => MetadataError::Quorum(reason),
        }
    }
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
            MetadataError::RequestTimedOut => ErrorCode::RequestTimedOut,
            MetadataError::StaleBrokerEpoch(_) => ErrorCode::StaleBrokerEpoch,
            MetadataError::BrokerIdNotRegistered(_) => ErrorCode::BrokerIdNotRegistered,
            MetadataError::DuplicateBrokerRegistration(_) => ErrorCode::DuplicateBrokerRegistration,
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

/// The broker resource a dynamic config change names: all brokers, or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    ClusterDefault,
    /// One broker's own configs, by node id.
    Broker(i32),
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
    /// When each broker was last heard from (register or heartbeat), on the leader.
    contacts: std::sync::Mutex<HashMap<i32, Instant>>,
    /// Idle connections to other nodes' controller listeners, by node id.
    channels: std::sync::Mutex<HashMap<i32, Vec<(Channel, Instant)>>>,
    /// This broker's registration with the active controller (a cluster only).
    lifecycle: lifecycle::Lifecycle,
}

/// A partition's leadership as this node's image has it.
#[derive(Debug, Clone, Copy)]
pub struct Leadership {
    pub this_node_leads: bool,
    /// The leader epoch clients' views are checked against.
    pub leader_epoch: i32,
}

/// How long a pooled connection to the controller may sit idle and still be used.
const POOLED_CHANNEL_MAX_IDLE: Duration = Duration::from_secs(60);

/// How long a forwarded request or a broker's call to the controller may take.
const CONTROLLER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

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
        let client = config.client_endpoints().next();
        let listener_name = client.as_ref().map(|l| l.name.clone()).unwrap_or_default();
        let brokers = client
            .map(|l| BrokerInfo {
                node_id: config.node_id,
                host: l.host,
                port: l.port as i32,
                rack: config.get("broker.rack").map(str::to_string),
            })
            .into_iter()
            .collect();
        let image = MetadataImage {
            cluster_id: cluster_id.clone(),
            controller_id: config.node_id,
            // A lone node is its only broker; in a cluster, brokers register.
            brokers: if config.is_cluster() {
                Vec::new()
            } else {
                brokers
            },
            listener_name,
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
            snapshot_max_bytes: config
                .get_i64("metadata.log.max.record.bytes.between.snapshots")
                .unwrap_or(20 * 1024 * 1024)
                .max(1) as u64,
            snapshot_interval_ms: config
                .get_i64("metadata.log.max.snapshot.interval.ms")
                .unwrap_or(3_600_000)
                .max(0) as u64,
            voters: config
                .voters
                .iter()
                .map(|v| (v.node_id, v.address()))
                .collect(),
        };
        let applier = Arc::clone(&view) as Arc<dyn quorum::Applier>;
        let quorum: Box<dyn Quorum> = if config.is_controller {
            Box::new(
                RaftQuorum::start(&settings, Arc::clone(&store), applier)
                    .await
                    .map_err(|e| MetadataError::Quorum(format!("{e:#}")))?,
            )
        } else {
            // A broker-only node follows the log the voters commit.
            let voters = if settings.voters.is_empty() {
                // Ids unknown until a bootstrap server answers.
                (1..)
                    .map(|i: i32| -i)
                    .zip(config.quorum_bootstrap.iter().cloned())
                    .collect()
            } else {
                settings.voters.clone()
            };
            Box::new(quorum::observer::ObserverQuorum::start(
                settings.cluster_id.clone(),
                voters,
                applier,
            ))
        };
        if !config.is_cluster() {
            // A lone voter leads at once, with everything it holds applied.
            view.finish_replay();
        }
        let controller = Controller {
            config,
            view,
            quorum,
            changes: tokio::sync::Mutex::new(()),
            producer_ids: tokio::sync::Mutex::new((0, 0)),
            contacts: std::sync::Mutex::new(HashMap::new()),
            channels: std::sync::Mutex::new(HashMap::new()),
            lifecycle: lifecycle::Lifecycle::default(),
        };
        migration::migrate(&controller, &*store).await?;
        if !controller.is_cluster() {
            controller.view.set_aside_strays();
        }
        Ok(controller)
    }

    /// Leaves the quorum.
    pub async fn shutdown(&self) {
        self.quorum.shutdown().await;
    }

    /// Waits until the quorum has a leader and this node has applied what it holds.
    pub async fn wait_ready(&self) {
        self.quorum.wait_ready().await;
        // Caught up with the log: what it says now is published once (see the view).
        if !self.view.is_published() {
            self.view.finish_replay();
            self.view.set_aside_strays();
        }
    }

    /// Answers a quorum message from another voter.
    pub async fn quorum_rpc(&self, body: bytes::Bytes) -> Vec<u8> {
        self.quorum.handle_rpc(body).await
    }

    /// Serves a broker-only node's fetch of the metadata log (a body of an
    /// [`quorum::observer::OBSERVER_FETCH_API_KEY`] frame): the committed batches after
    /// what it has, held for a moment when there are none, or this node's image when its
    /// log no longer reaches back that far.
    pub async fn serve_observer(&self, body: bytes::Bytes) -> Vec<u8> {
        use quorum::observer::{FetchRequest, FetchResponse, LONG_POLL, MAX_BATCHES};
        let answer = |response: &FetchResponse| {
            serde_json::to_vec(response).expect("fetch answers serialize")
        };
        let request: FetchRequest = match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => {
                return answer(&FetchResponse {
                    refused: Some(format!("unreadable fetch: {e}")),
                    ..FetchResponse::default()
                })
            }
        };
        let cluster_id = self.image().cluster_id.clone();
        if request.cluster_id != cluster_id {
            tracing::warn!(theirs = %request.cluster_id, ours = %cluster_id, "refusing a metadata fetch from another cluster");
            return answer(&FetchResponse {
                refused: Some(format!(
                    "this node belongs to cluster {cluster_id}, not {}",
                    request.cluster_id
                )),
                ..FetchResponse::default()
            });
        }
        if !self.is_cluster() {
            // A lone combined node keeps its brokers to itself.
            return answer(&FetchResponse {
                refused: Some("this node is a single node, not the voter of a cluster".into()),
                ..FetchResponse::default()
            });
        }
        let mut voters: Vec<(i32, String)> = self
            .config
            .voters
            .iter()
            .map(|v| (v.node_id, v.address()))
            .collect();
        if voters.is_empty() {
            // The only voter, known to its brokers by a bootstrap address.
            if let Some(own) = self
                .config
                .listeners
                .iter()
                .find(|l| Some(&l.name) == self.config.controller_listener.as_ref())
            {
                voters.push((self.config.node_id, format!("{}:{}", own.host, own.port)));
            }
        }
        let deadline = Instant::now() + LONG_POLL;
        loop {
            let leader = self.quorum_state().leader;
            let answer_with = |applied, batches, snapshot| {
                answer(&FetchResponse {
                    leader,
                    applied,
                    batches,
                    snapshot,
                    voters: voters.clone(),
                    refused: None,
                })
            };
            match self.quorum.committed_since(request.from, MAX_BATCHES).await {
                quorum::Committed::Batches { applied, batches }
                    if !batches.is_empty() || Instant::now() >= deadline =>
                {
                    return answer_with(applied, batches, None);
                }
                quorum::Committed::Purged => {
                    // The image holds everything up to its offset, which is past the
                    // purge point.
                    let image = self.image();
                    return answer_with(
                        image.offset,
                        Vec::new(),
                        Some((image.offset, image.to_records())),
                    );
                }
                quorum::Committed::NotReady if Instant::now() >= deadline => {
                    return answer_with(0, Vec::new(), None);
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// The quorum's leader, term and progress as this node sees them.
    pub fn quorum_state(&self) -> quorum::QuorumState {
        self.quorum.state()
    }

    /// Takes the right to decide: one decision at a time, and in a cluster only on the
    /// active controller, with every earlier decision applied here.
    async fn begin(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, MetadataError> {
        let guard = self.changes.lock().await;
        // In a cluster: still the leader, with everything committed applied. Alone too:
        // a proposal that timed out (a stalled disk) is applied before the next decision.
        self.quorum.linearize().await?;
        Ok(guard)
    }

    /// Whether this node is one of several voters.
    pub fn is_cluster(&self) -> bool {
        self.config.is_cluster()
    }

    /// Whether this node leads a partition, as the image says (a lone node leads all it
    /// hosts). Clients that ask another broker get NOT_LEADER_OR_FOLLOWER and refresh.
    pub fn leads(&self, topic: &str, partition: i32) -> bool {
        self.leadership(topic, partition)
            .is_some_and(|l| l.this_node_leads)
    }

    /// A partition's leadership in the image, from one read of it; None if the partition
    /// does not exist.
    pub fn leadership(&self, topic: &str, partition: i32) -> Option<Leadership> {
        let image = self.image();
        let state = image
            .topic(topic)?
            .partition_states
            .get(usize::try_from(partition).ok()?)?;
        Some(Leadership {
            this_node_leads: !self.is_cluster() || state.leader == self.config.node_id,
            leader_epoch: state.leader_epoch,
        })
    }

    /// Whether this node is the active controller.
    pub fn is_leader(&self) -> bool {
        self.quorum_state().leader == Some(self.config.node_id)
    }

    /// The controller listener address of a voter.
    fn voter_address(&self, node_id: i32) -> Option<String> {
        self.config
            .voters
            .iter()
            .find(|v| v.node_id == node_id)
            .map(crate::config::Voter::address)
            .or_else(|| {
                let learned = self.quorum_state().addresses;
                learned
                    .into_iter()
                    .find(|(id, _)| *id == node_id)
                    .map(|(_, address)| address)
            })
    }

    /// Sends a request to the active controller's controller listener and returns its
    /// answer (admin requests forwarded by a broker, a broker's registration and
    /// heartbeats). NotController when no leader is known.
    pub async fn call_controller(
        &self,
        key: kafka_protocol::messages::ApiKey,
        version: i16,
        request: &kafka_protocol::messages::RequestKind,
    ) -> Result<kafka_protocol::messages::ResponseKind, MetadataError> {
        let leader = self
            .quorum_state()
            .leader
            .ok_or(MetadataError::NotController)?;
        let address = self
            .voter_address(leader)
            .ok_or(MetadataError::NotController)?;
        // A connection idle for long may have been closed by the controller
        // (`connections.max.idle.ms`): only recently used ones are taken again.
        let pooled = {
            let mut channels = self.channels.lock_or_recover();
            let idle = channels.entry(leader).or_default();
            idle.retain(|(_, used)| used.elapsed() < POOLED_CHANNEL_MAX_IDLE);
            idle.pop().map(|(channel, _)| channel)
        };
        let mut channel = pooled.unwrap_or_else(|| Channel::new(address, "weir-controller-client"));
        let answer = channel
            .call(key, version, request, CONTROLLER_CALL_TIMEOUT)
            .await
            .map_err(|e: ChannelError| {
                tracing::debug!(leader, error = %e, "cannot reach the active controller");
                match e {
                    // Sent, and no answer: the controller may still act on it.
                    ChannelError::Timeout { sent: true, .. } => MetadataError::RequestTimedOut,
                    _ => MetadataError::NotController,
                }
            })?;
        self.channels
            .lock_or_recover()
            .entry(leader)
            .or_default()
            .push((channel, Instant::now()));
        Ok(answer)
    }

    /// Registers a broker (BrokerRegistration, on the active controller): fenced until its
    /// heartbeats show it caught up. Returns its broker epoch.
    pub async fn register_broker(
        &self,
        input: controller::BrokerRegistrationInput,
    ) -> Result<i64, MetadataError> {
        let _guard = self.begin().await?;
        let image = self.image();
        let session = self.session_timeout();
        let live = self
            .contacts
            .lock_or_recover()
            .get(&input.broker_id)
            .is_some_and(|t| t.elapsed() < session);
        let epoch = image.offset as i64 + 1;
        let broker_id = input.broker_id;
        let records = controller::register_broker(&image, input, epoch, live)?;
        self.commit(records).await?;
        self.contacts
            .lock_or_recover()
            .insert(broker_id, Instant::now());
        tracing::info!(broker_id, epoch, "registered broker");
        Ok(epoch)
    }

    /// A broker's heartbeat (BrokerHeartbeat, on the active controller).
    pub async fn broker_heartbeat(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        metadata_offset: i64,
        want_fence: bool,
        want_shut_down: bool,
    ) -> Result<controller::HeartbeatOutcome, MetadataError> {
        // Heard from, even if this heartbeat waits behind another decision (a heartbeat
        // of a registration that is not the current one keeps no session alive).
        let current = self
            .image()
            .registrations
            .get(&broker_id)
            .is_some_and(|r| r.epoch == broker_epoch);
        if current && self.is_leader() {
            self.contacts
                .lock_or_recover()
                .insert(broker_id, Instant::now());
        }
        let _guard = self.begin().await?;
        let mut outcome = controller::broker_heartbeat(
            &self.image(),
            broker_id,
            broker_epoch,
            metadata_offset,
            want_fence,
            want_shut_down,
        )?;
        self.contacts
            .lock_or_recover()
            .insert(broker_id, Instant::now());
        let records = std::mem::take(&mut outcome.records);
        if !records.is_empty() {
            self.commit(records).await?;
            tracing::info!(
                broker_id,
                fenced = outcome.is_fenced,
                shutting_down = outcome.should_shut_down,
                "broker state changed"
            );
        }
        Ok(outcome)
    }

    pub(crate) fn session_timeout(&self) -> Duration {
        Duration::from_millis(
            self.config
                .get_i64("broker.session.timeout.ms")
                .unwrap_or(9_000)
                .max(1) as u64,
        )
    }

    /// On the active controller, fences one broker whose session expired (Kafka fences
    /// one stale broker at a time). A controller that has just become active counts every
    /// broker as heard from now.
    pub async fn fence_stale_brokers(&self, leading_since: &mut Option<u64>) {
        let state = self.quorum_state();
        if state.leader != Some(self.config.node_id) {
            *leading_since = None;
            return;
        }
        let image = self.image();
        if *leading_since != Some(state.term) {
            *leading_since = Some(state.term);
            let now = Instant::now();
            let mut contacts = self.contacts.lock_or_recover();
            for id in image.registrations.keys() {
                contacts.insert(*id, now);
            }
            return;
        }
        let session = self.session_timeout();
        let stale = {
            let contacts = self.contacts.lock_or_recover();
            image
                .registrations
                .iter()
                .filter(|(_, r)| !r.fenced)
                .map(|(id, _)| *id)
                .find(|id| contacts.get(id).is_none_or(|t| t.elapsed() >= session))
        };
        let Some(broker_id) = stale else {
            return;
        };
        let Ok(_guard) = self.begin().await else {
            return;
        };
        // A heartbeat may have arrived while this waited for the right to decide.
        let still_stale = self
            .contacts
            .lock_or_recover()
            .get(&broker_id)
            .is_none_or(|t| t.elapsed() >= session);
        if !still_stale {
            return;
        }
        let records = controller::fence_broker(&self.image(), broker_id);
        if !records.is_empty() {
            match self.commit(records).await {
                Ok(()) => tracing::info!(
                    broker_id,
                    session_ms = session.as_millis() as u64,
                    "fenced broker: no heartbeat within the session timeout"
                ),
                Err(e) => tracing::warn!(broker_id, error = %e, "could not fence a broker"),
            }
        }
    }

    /// Commits records and returns once this node has applied them.
    async fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), MetadataError> {
        if records.is_empty() {
            return Ok(());
        }
        let index = self.quorum.propose(records).await?;
        assert!(
            self.image().offset >= index,
            "a committed batch is applied before the quorum answers"
        );
        Ok(())
    }

    /// The committed metadata as this node has applied it.
    pub fn view(&self) -> Arc<MetadataView> {
        Arc::clone(&self.view)
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
        let _guard = self.begin().await?;
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
        let _guard = self.begin().await?;
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
        let _guard = self.begin().await?;
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
        let _guard = self.begin().await?;
        let resource_name = match scope {
            BrokerScope::ClusterDefault => String::new(),
            BrokerScope::Broker(id) => id.to_string(),
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

    /// Checks a new topic and, unless `validate_only`, creates it. On a broker that is not
    /// the active controller (auto-creation, the offsets topic) it asks the controller.
    pub async fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicImage>, MetadataError> {
        if self.is_cluster() && !self.is_leader() {
            return self.create_topic_remotely(topic, validate_only).await;
        }
        let _guard = self.begin().await?;
        let (created, records) =
            controller::create_topic(&self.image(), &self.broker_view(), topic, Uuid::new_v4())?;
        if validate_only {
            return Ok(Arc::new(created));
        }
        self.commit(records).await?;
        Ok(self.committed_topic(created))
    }

    async fn create_topic_remotely(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<Arc<TopicImage>, MetadataError> {
        use kafka_protocol::messages::create_topics_request::{
            CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
        };
        use kafka_protocol::messages::{
            ApiKey, BrokerId, CreateTopicsRequest, RequestKind, ResponseKind, TopicName,
        };
        use kafka_protocol::protocol::StrBytes;
        let name = topic.name.clone();
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(CONTROLLER_CALL_TIMEOUT.as_millis() as i32)
            .with_validate_only(validate_only)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.name)))
                .with_num_partitions(topic.partitions)
                .with_replication_factor(topic.replication_factor)
                .with_assignments(
                    topic
                        .assignments
                        .into_iter()
                        .map(|(index, brokers)| {
                            CreatableReplicaAssignment::default()
                                .with_partition_index(index)
                                .with_broker_ids(brokers.into_iter().map(BrokerId).collect())
                        })
                        .collect(),
                )
                .with_configs(
                    topic
                        .configs
                        .into_iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k))
                                .with_value(Some(StrBytes::from_string(v)))
                        })
                        .collect(),
                )]);
        let ResponseKind::CreateTopics(answer) = self
            .call_controller(ApiKey::CreateTopics, 7, &RequestKind::CreateTopics(request))
            .await?
        else {
            return Err(MetadataError::NotController);
        };
        let result = answer.topics.first().ok_or(MetadataError::NotController)?;
        let message = result
            .error_message
            .as_deref()
            .unwrap_or_default()
            .to_string();
        let code = result.error_code;
        let refused = match code {
            0 => None,
            36 => Some(MetadataError::TopicAlreadyExists(name.clone())),
            41 => Some(MetadataError::NotController),
            17 => Some(MetadataError::InvalidTopic(message)),
            37 => Some(MetadataError::InvalidPartitions(message)),
            38 => Some(MetadataError::InvalidReplicationFactor(message)),
            39 => Some(MetadataError::InvalidReplicaAssignment(message)),
            40 => Some(MetadataError::InvalidConfig(message)),
            42 => Some(MetadataError::InvalidRequest(message)),
            _ => Some(MetadataError::Quorum(format!(
                "the controller refused to create {name}: error {code} {message}"
            ))),
        };
        if let Some(e) = refused {
            return Err(e);
        }
        // Answer once this node's image has the topic too.
        let deadline = Instant::now() + CONTROLLER_CALL_TIMEOUT;
        loop {
            if let Some(topic) = self.image().topic(&name) {
                return Ok(Arc::clone(topic));
            }
            if validate_only || Instant::now() > deadline {
                return Err(MetadataError::UnknownTopicOrPartition);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Deletes a topic by name.
    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicImage>, MetadataError> {
        let _guard = self.begin().await?;
        let (deleted, records) = controller::delete_topic(&self.image(), &self.config, name)?;
        self.commit(records).await?;
        Ok(Arc::new(deleted))
    }

    /// Hands out a new producer id, from a block of them taken from the controller (in a
    /// cluster, with AllocateProducerIds unless this node is the active controller).
    pub async fn allocate_producer_id(&self) -> Result<i64, MetadataError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            let (start, len) = if self.is_cluster() && !self.is_leader() {
                self.allocate_producer_block_remotely().await?
            } else {
                self.allocate_producer_block(self.config.node_id).await?
            };
            *ids = (start, start + len);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Commits the next block of producer ids to `broker_id`: (first id, count).
    pub async fn allocate_producer_block(
        &self,
        broker_id: i32,
    ) -> Result<(i64, i64), MetadataError> {
        self.allocate_producer_block_for(broker_id, None).await
    }

    /// AllocateProducerIds from a broker, which must be registered with this epoch.
    pub async fn allocate_producer_block_for(
        &self,
        broker_id: i32,
        broker_epoch: Option<i64>,
    ) -> Result<(i64, i64), MetadataError> {
        let _guard = self.begin().await?;
        let image = self.image();
        if let Some(epoch) = broker_epoch {
            match image.registrations.get(&broker_id) {
                None => {
                    return Err(MetadataError::BrokerIdNotRegistered(format!(
                        "Broker {broker_id} is not registered."
                    )))
                }
                Some(r) if r.epoch != epoch => {
                    return Err(MetadataError::StaleBrokerEpoch(format!(
                        "Expected broker epoch {}, but got broker epoch {epoch}",
                        r.epoch
                    )))
                }
                Some(_) => {}
            }
        }
        let start = image.next_producer_id;
        let record = controller::allocate_producer_ids(&image, broker_id, PRODUCER_ID_BLOCK);
        self.commit(vec![record]).await?;
        Ok((start, PRODUCER_ID_BLOCK))
    }

    async fn allocate_producer_block_remotely(&self) -> Result<(i64, i64), MetadataError> {
        use kafka_protocol::messages::{
            AllocateProducerIdsRequest, ApiKey, BrokerId, RequestKind, ResponseKind,
        };
        if self.lifecycle.epoch() < 0 {
            // Not registered yet: the client retries.
            return Err(MetadataError::NotController);
        }
        let request = RequestKind::AllocateProducerIds(
            AllocateProducerIdsRequest::default()
                .with_broker_id(BrokerId(self.config.node_id))
                .with_broker_epoch(self.lifecycle.epoch()),
        );
        match self
            .call_controller(ApiKey::AllocateProducerIds, 0, &request)
            .await?
        {
            ResponseKind::AllocateProducerIds(r) if r.error_code == 0 => {
                Ok((r.producer_id_start.0, i64::from(r.producer_id_len)))
            }
            _ => Err(MetadataError::NotController),
        }
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
                BrokerScope::Broker(1),
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
