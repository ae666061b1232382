//! The group coordinator: consumer groups (classic and KIP-848) and committed offsets.
//!
//! Groups live in [`ClassicGroup`] and [`ConsumerGroup`], state machines without I/O. This
//! module is their runtime: it finds a group's partition of `__consumer_offsets`
//! (`abs(java_hash(group)) % offsets.topic.num.partitions`, created on first use with
//! Kafka's configs), writes every state change there as Kafka-format records through the
//! normal append path, then applies the records to RocksDB (the materialized view) and to
//! memory, and only then answers. Each write also records how far the log has been
//! applied, so start-up replays whatever the view missed, and a lost view is rebuilt from
//! the log.
//!
//! One lock guards all groups; no I/O but the append (to the page cache, unless the flush
//! policy asks for an fsync, which is awaited outside the lock) and the unsynced store write
//! happens under it. Produce and fetch never take it.

pub mod classic;
pub mod consumer;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::config::BrokerConfig;
use crate::meta_store::MetaStore;
use crate::metadata::{Controller, MetadataError, NewTopic};
use crate::protocol::records::{
    build_keyed_batch, inflate_records, validate_stored_record_set, walk_records, KeyValue,
    OffsetDeltas,
};
use crate::protocol::ErrorCode;
use crate::replication::{Partition, ReplicaManager};
use crate::Clock;

pub use classic::{
    Answer, ClassicGroup, ClassicState, JoinRequest, JoinResult, JoinedMember, MemberDescription,
    SyncRequest, SyncResult, SyncStep,
};
pub use consumer::{ConsumerGroup, HeartbeatRequest, HeartbeatResult};
use records::{GroupMetadataValue, OffsetCommitValue, RecordKey};

/// The internal topic holding group state and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

const RECORD_PREFIX: &str = "group-record/";
const APPLIED_PREFIX: &str = "group-applied/";
/// The longest the timer sleeps without being woken, a backstop only.
const IDLE_TICK_MS: i64 = 1000;

/// Why a group operation failed; each maps to one Kafka error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
    #[error("the group id is not valid")]
    InvalidGroupId,
    #[error("the generation is not the group's current one")]
    IllegalGeneration,
    #[error("the member's protocols do not match the group's")]
    InconsistentGroupProtocol,
    #[error("the member id is not known to the group")]
    UnknownMemberId,
    #[error("the session timeout is outside the broker's bounds")]
    InvalidSessionTimeout,
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("the member must rejoin with the member id given")]
    MemberIdRequired,
    #[error("the group has reached group.max.size")]
    GroupMaxSizeReached,
    #[error("another member with this group.instance.id replaced this one")]
    FencedInstanceId,
    #[error("the group is not empty")]
    NonEmptyGroup,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("the offset metadata is larger than offset.metadata.max.bytes")]
    OffsetMetadataTooLarge,
    #[error("the commit is too large to be written")]
    InvalidCommitOffsetSize,
    #[error("the topic or partition does not exist")]
    UnknownTopicOrPartition,
    #[error("the member epoch is fenced")]
    FencedMemberEpoch,
    #[error("the member epoch is stale")]
    StaleMemberEpoch,
    #[error("the static member's instance id is still in use")]
    UnreleasedInstanceId,
    #[error("the server assignor is not supported")]
    UnsupportedAssignor,
    #[error("the subscription regular expression is not valid")]
    InvalidRegularExpression,
    #[error("the request is not valid")]
    InvalidRequest,
    #[error("the group state could not be written")]
    StorageError,
    #[error("the group's metadata is too large to be written")]
    UnknownServerError,
}

impl GroupError {
    pub fn code(self) -> ErrorCode {
        match self {
            GroupError::CoordinatorNotAvailable => ErrorCode::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ErrorCode::NotCoordinator,
            GroupError::InvalidGroupId => ErrorCode::InvalidGroupId,
            GroupError::IllegalGeneration => ErrorCode::IllegalGeneration,
            GroupError::InconsistentGroupProtocol => ErrorCode::InconsistentGroupProtocol,
            GroupError::UnknownMemberId => ErrorCode::UnknownMemberId,
            GroupError::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
            GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            GroupError::MemberIdRequired => ErrorCode::MemberIdRequired,
            GroupError::GroupMaxSizeReached => ErrorCode::GroupMaxSizeReached,
            GroupError::FencedInstanceId => ErrorCode::FencedInstanceId,
            GroupError::NonEmptyGroup => ErrorCode::NonEmptyGroup,
            GroupError::GroupIdNotFound => ErrorCode::GroupIdNotFound,
            GroupError::GroupSubscribedToTopic => ErrorCode::GroupSubscribedToTopic,
            GroupError::OffsetMetadataTooLarge => ErrorCode::OffsetMetadataTooLarge,
            GroupError::InvalidCommitOffsetSize => ErrorCode::InvalidCommitOffsetSize,
            GroupError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            GroupError::FencedMemberEpoch => ErrorCode::FencedMemberEpoch,
            GroupError::StaleMemberEpoch => ErrorCode::StaleMemberEpoch,
            GroupError::UnreleasedInstanceId => ErrorCode::UnreleasedInstanceId,
            GroupError::UnsupportedAssignor => ErrorCode::UnsupportedAssignor,
            GroupError::InvalidRegularExpression => ErrorCode::InvalidRegularExpression,
            GroupError::InvalidRequest => ErrorCode::InvalidRequest,
            GroupError::StorageError => ErrorCode::KafkaStorageError,
            GroupError::UnknownServerError => ErrorCode::UnknownServerError,
        }
    }
}

/// The bounds a classic group enforces.
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
    pub initial_rebalance_delay_ms: i64,
}

/// The group coordinator's settings, read once from the broker config.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub limits: GroupLimits,
    pub consumer: consumer::ConsumerLimits,
    pub offsets_partitions: i32,
    pub offsets_segment_bytes: i64,
    pub offset_metadata_max_bytes: usize,
    /// How long an answer waits for an fsync of `__consumer_offsets` the flush policy owes.
    pub offsets_commit_timeout_ms: u64,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
}

impl GroupConfig {
    pub fn from_broker(config: &BrokerConfig) -> GroupConfig {
        let int = |key: &str, default: i64| config.get_i64(key).unwrap_or(default);
        let assignors: Vec<String> = config
            .get("group.consumer.assignors")
            .unwrap_or("uniform,range")
            .split(',')
            .map(|a| consumer::assignor_name(a.trim()).to_string())
            .filter(|a| !a.is_empty())
            .collect();
        GroupConfig {
            limits: GroupLimits {
                min_session_timeout_ms: int("group.min.session.timeout.ms", 6000) as i32,
                max_session_timeout_ms: int("group.max.session.timeout.ms", 1_800_000) as i32,
                max_size: int("group.max.size", i32::MAX as i64) as usize,
                initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms", 3000),
            },
            consumer: consumer::ConsumerLimits {
                session_timeout_ms: int("group.consumer.session.timeout.ms", 45_000),
                heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms", 5000) as i32,
                max_size: int("group.consumer.max.size", i32::MAX as i64) as usize,
                assignors,
            },
            offsets_partitions: int("offsets.topic.num.partitions", 50).max(1) as i32,
            offsets_segment_bytes: int("offsets.topic.segment.bytes", 104_857_600),
            offset_metadata_max_bytes: int("offset.metadata.max.bytes", 4096) as usize,
            offsets_commit_timeout_ms: int("offsets.commit.timeout.ms", 5000).max(1) as u64,
            offsets_retention_ms: int("offsets.retention.minutes", 10080) * 60_000,
            offsets_retention_check_interval_ms: int(
                "offsets.retention.check.interval.ms",
                600_000,
            ),
        }
    }
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`, with Java's String hash over
/// UTF-16 code units, so a group lands on the same partition as with Kafka.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32));
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

/// A group of either protocol.
#[derive(Debug)]
pub enum Group {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

impl Group {
    fn is_empty(&self) -> bool {
        match self {
            Group::Classic(g) => g.is_empty(),
            Group::Consumer(g) => g.is_empty(),
        }
    }

    fn state_name(&self) -> &'static str {
        match self {
            Group::Classic(g) => g.state().name(),
            Group::Consumer(g) => g.state_name(),
        }
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        match self {
            Group::Classic(g) => g.next_deadline_ms(),
            Group::Consumer(g) => g.next_deadline_ms(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Group::Classic(_) => "classic",
            Group::Consumer(_) => "consumer",
        }
    }
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    pub group_type: String,
}

/// A classic group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// A partition's committed offset as OffsetFetch returns it.
pub type CommittedOffset = Option<OffsetCommitValue>;

/// A result per partition, by topic.
pub type PartitionResults = Vec<(String, Vec<(i32, Result<(), GroupError>)>)>;

/// Sets every partition still pending (Ok) to `error`.
fn fail_pending(results: &mut PartitionResults, error: GroupError) {
    for (_, partitions) in results.iter_mut() {
        for (_, result) in partitions.iter_mut() {
            if result.is_ok() {
                *result = Err(error);
            }
        }
    }
}

/// Whether the sender of an OffsetCommit may commit for the group, by Kafka 4.1's rules:
/// the group's member and generation (or member epoch) checks; for a group that does not
/// exist, a negative generation makes a simple group (an admin client or `assign()`), and
/// any other is GROUP_ID_NOT_FOUND from OffsetCommit v9 on, ILLEGAL_GENERATION before.
fn validate_committer(
    shard: &mut Shard,
    group_id: &str,
    context: &CommitContext,
    now_ms: i64,
) -> Result<(), GroupError> {
    match shard.groups.get_mut(group_id) {
        Some(Group::Classic(group)) => group.validate_offset_commit(
            now_ms,
            &context.member_id,
            context.group_instance_id.as_deref(),
            context.generation_or_epoch,
        ),
        Some(Group::Consumer(group)) => {
            group.validate_offset_commit(&context.member_id, context.generation_or_epoch)
        }
        None if context.generation_or_epoch < 0 => {
            shard.groups.insert(
                group_id.to_string(),
                Group::Classic(ClassicGroup::new(group_id, now_ms)),
            );
            Ok(())
        }
        None if context.version >= 9 => Err(GroupError::GroupIdNotFound),
        None => Err(GroupError::IllegalGeneration),
    }
}

/// Committed offsets per partition (None: nothing committed), by topic.
pub type FetchedOffsets = Vec<(String, Vec<(i32, CommittedOffset)>)>;

/// One partition to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// Who is committing: the group generation (classic) or member epoch (consumer).
#[derive(Debug, Clone)]
pub struct CommitContext {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_or_epoch: i32,
    /// The OffsetCommit version: v9 changed the answer for a group that does not exist.
    pub version: i16,
}

/// An fsync still owed before an answer, when the flush policy of `__consumer_offsets`
/// asks for one.
pub type FlushOwed = Option<(Arc<Partition>, i64)>;

type TopicOffsets = BTreeMap<(String, i32), OffsetCommitValue>;

struct Shard {
    /// The `__consumer_offsets` partitions this node holds, by partition index: all of
    /// them on a lone node, its replicas in a cluster.
    partitions: BTreeMap<i32, Arc<Partition>>,
    groups: BTreeMap<String, Group>,
    offsets: BTreeMap<String, TopicOffsets>,
    next_retention_check_ms: i64,
}

impl Shard {
    fn empty(config: &GroupConfig, clock: &Clock) -> Shard {
        Shard {
            partitions: BTreeMap::new(),
            groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            next_retention_check_ms: clock.now_ms() + config.offsets_retention_check_interval_ms,
        }
    }

    /// Replays one offset commit record (None: its tombstone) into the committed offsets;
    /// a group whose last offset goes has no entry left.
    fn replay_offset(&mut self, key: &RecordKey, value: Option<OffsetCommitValue>) {
        let RecordKey::OffsetCommit {
            group,
            topic,
            partition,
        } = key
        else {
            return;
        };
        let partition_key = (topic.clone(), *partition);
        match value {
            Some(value) => {
                self.offsets
                    .entry(group.clone())
                    .or_default()
                    .insert(partition_key, value);
            }
            None => {
                if let Some(offsets) = self.offsets.get_mut(group) {
                    offsets.remove(&partition_key);
                    if offsets.is_empty() {
                        self.offsets.remove(group);
                    }
                }
            }
        }
    }
}

/// The key of a committed offset's record.
fn offset_key(group: &str, topic: &str, partition: i32) -> RecordKey {
    RecordKey::OffsetCommit {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
    }
}

pub struct GroupCoordinator {
    config: GroupConfig,
    clock: Clock,
    store: Arc<dyn MetaStore>,
    replicas: Arc<ReplicaManager>,
    catalog: Arc<dyn consumer::TopicCatalog>,
    shard: Mutex<Shard>,
    /// Woken after every operation, which may have set an earlier deadline.
    deadline_changed: tokio::sync::Notify,
}

impl GroupCoordinator {
    /// Loads the groups of an existing `__consumer_offsets` and starts the timer task.
    pub fn start(
        config: GroupConfig,
        clock: Clock,
        store: Arc<dyn MetaStore>,
        replicas: Arc<ReplicaManager>,
        catalog: Arc<dyn consumer::TopicCatalog>,
    ) -> Result<Arc<GroupCoordinator>, GroupError> {
        let coordinator = Arc::new(GroupCoordinator {
            shard: Mutex::new(Shard::empty(&config, &clock)),
            config,
            clock,
            store,
            replicas,
            catalog,
            deadline_changed: tokio::sync::Notify::new(),
        });
        if let Some(partitions) = coordinator.held_offsets_partitions() {
            let mut shard = coordinator.lock();
            coordinator.load(&mut shard, partitions)?;
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            spawn_ticker(Arc::downgrade(&coordinator));
        }
        Ok(coordinator)
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Shard> {
        // Any operation may move a deadline earlier: the timer re-reads them.
        self.deadline_changed.notify_one();
        self.shard()
    }

    /// The shard. A panic in a group operation may have left it half-changed, so a
    /// poisoned lock is answered by rebuilding the shard from what was persisted:
    /// `__consumer_offsets` and its RocksDB view hold every change that was answered,
    /// because records are written before they are applied. Members with a join or sync
    /// in flight get an error and rejoin; nothing committed is lost.
    fn shard(&self) -> MutexGuard<'_, Shard> {
        self.shard.lock().unwrap_or_else(|poisoned| {
            let mut shard = poisoned.into_inner();
            self.shard.clear_poison();
            tracing::error!("a group operation panicked: reloading every group from {OFFSETS_TOPIC}");
            let partitions = std::mem::take(&mut shard.partitions);
            *shard = Shard::empty(&self.config, &self.clock);
            if !partitions.is_empty() {
                if let Err(e) = self.load(&mut shard, partitions) {
                    tracing::error!(error = %e, "cannot reload the groups; they load again on the next FindCoordinator");
                }
            }
            shard
        })
    }

    /// The lock, for an operation that needs `__consumer_offsets` loaded (found through
    /// FindCoordinator first, as clients do): COORDINATOR_NOT_AVAILABLE until then.
    fn lock_loaded(&self) -> Result<MutexGuard<'_, Shard>, GroupError> {
        let shard = self.lock();
        if shard.partitions.is_empty() {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        Ok(shard)
    }

    /// The earliest moment [`GroupCoordinator::tick`] has something to do.
    fn next_deadline_ms(&self) -> i64 {
        let shard = self.shard();
        shard
            .groups
            .values()
            .filter_map(Group::next_deadline_ms)
            .chain([shard.next_retention_check_ms])
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Makes sure `__consumer_offsets` exists and is loaded, creating it on first use as
    /// Kafka does (compacted, `offsets.topic.segment.bytes`).
    pub async fn ensure_offsets_topic(&self, controller: &Controller) -> Result<(), GroupError> {
        if !self.lock().partitions.is_empty() {
            return Ok(());
        }
        if controller.image().topic(OFFSETS_TOPIC).is_none() {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "producer".to_string()),
                (
                    "segment.bytes".to_string(),
                    self.config.offsets_segment_bytes.to_string(),
                ),
            ]);
            let topic = NewTopic {
                name: OFFSETS_TOPIC.to_string(),
                partitions: self.config.offsets_partitions,
                // A lone node: the offsets topic gets the replicas that exist, as Kafka's
                // single-node configs set offsets.topic.replication.factor=1. A cluster
                // uses the setting, and fails until that many brokers registered.
                replication_factor: if controller.is_cluster() {
                    controller
                        .broker_view()
                        .get_i64("offsets.topic.replication.factor")
                        .unwrap_or(3)
                        .clamp(1, i16::MAX as i64) as i16
                } else {
                    1
                },
                assignments: BTreeMap::new(),
                configs,
            };
            match controller.create_topic(topic, false).await {
                Ok(_) | Err(MetadataError::TopicAlreadyExists(_)) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot create {OFFSETS_TOPIC}");
                    return Err(GroupError::CoordinatorNotAvailable);
                }
            }
        }
        if controller.is_cluster() {
            // This node may hold no replica of it: the coordinators are elsewhere.
            return self.load_if_hosted();
        }
        let partitions = self
            .held_offsets_partitions()
            .ok_or(GroupError::CoordinatorNotAvailable)?;
        let mut shard = self.lock();
        if shard.partitions.is_empty() {
            self.load(&mut shard, partitions)?;
        }
        Ok(())
    }

    /// The `__consumer_offsets` partitions this node holds, by index, if any.
    fn held_offsets_partitions(&self) -> Option<BTreeMap<i32, Arc<Partition>>> {
        let held = self.replicas.topic(OFFSETS_TOPIC)?;
        Some(held.into_iter().map(|p| (p.index, p)).collect())
    }

    /// Loads `__consumer_offsets` if this node hosts it and has not loaded it yet: in a
    /// cluster another node may have created it, and this node learns of it from the
    /// metadata log before any client asks it for a coordinator.
    pub fn load_if_hosted(&self) -> Result<(), GroupError> {
        if !self.lock().partitions.is_empty() {
            return Ok(());
        }
        let Some(partitions) = self.held_offsets_partitions() else {
            return Ok(());
        };
        let mut shard = self.lock();
        if shard.partitions.is_empty() {
            self.load(&mut shard, partitions)?;
        }
        Ok(())
    }

    // ---- Loading ----

    fn load(
        &self,
        shard: &mut Shard,
        partitions: BTreeMap<i32, Arc<Partition>>,
    ) -> Result<(), GroupError> {
        for partition in partitions.values() {
            self.replay(partition)?;
        }
        let now_ms = self.clock.now_ms();
        let mut group_values = Vec::new();
        let mut consumer_groups: BTreeMap<String, consumer::StoredConsumerGroup> = BTreeMap::new();
        for (key, value) in self.store.scan_prefix(RECORD_PREFIX).map_err(storage)? {
            let Some(raw_key) = hex_decode(&key[RECORD_PREFIX.len()..]) else {
                continue;
            };
            let key = match RecordKey::decode(&raw_key) {
                Ok(Some(key)) => key,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a stored group record");
                    continue;
                }
            };
            let loaded = match &key {
                RecordKey::OffsetCommit { .. } => {
                    OffsetCommitValue::decode(&value).map(|v| shard.replay_offset(&key, Some(v)))
                }
                RecordKey::GroupMetadata { group } => GroupMetadataValue::decode(&value)
                    .map(|v| group_values.push((group.clone(), v))),
                other => consumer_groups
                    .entry(other.group().to_string())
                    .or_default()
                    .add(other, &value)
                    .map(|_| ()),
            };
            if let Err(e) = loaded {
                tracing::warn!(error = %e, "skipping a stored group record");
            }
        }
        for (group, value) in group_values {
            shard.groups.insert(
                group.clone(),
                Group::Classic(ClassicGroup::restore(&group, &value, now_ms)),
            );
        }
        let topics = consumer::TopicView::from_catalog(self.catalog.as_ref());
        for (group, stored) in consumer_groups {
            if stored.group_epoch.is_none() {
                continue;
            }
            let restored =
                ConsumerGroup::restore(&group, stored, now_ms, &self.config.consumer, &topics);
            shard.groups.insert(group, Group::Consumer(restored));
        }
        let offset_groups: Vec<String> = shard.offsets.keys().cloned().collect();
        for group in offset_groups {
            shard
                .groups
                .entry(group.clone())
                .or_insert_with(|| Group::Classic(ClassicGroup::new(&group, now_ms)));
        }
        tracing::info!(
            groups = shard.groups.len(),
            partitions = partitions.len(),
            "loaded consumer groups"
        );
        shard.partitions = partitions;
        Ok(())
    }

    /// Applies to the store whatever the log holds beyond what was applied.
    fn replay(&self, partition: &Partition) -> Result<(), GroupError> {
        let applied_key = format!("{APPLIED_PREFIX}{}", partition.index);
        let applied = self
            .store
            .get(&applied_key)
            .map_err(storage)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(i64::from_be_bytes)
            .unwrap_or(0);
        let mut next = applied.max(partition.log_start_offset());
        let high_watermark = partition.high_watermark();
        let mut replayed = 0usize;
        while next < high_watermark {
            let plan = partition
                .plan_read(next, high_watermark, 1 << 20)
                .map_err(|e| replay_error(partition, e))?;
            let Some(plan) = plan else { break };
            let data = partition
                .read(plan)
                .map_err(|e| replay_error(partition, e))?
                .records;
            let headers =
                validate_stored_record_set(&data).map_err(|e| replay_error(partition, e))?;
            if headers.is_empty() {
                break;
            }
            let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
            let mut position = 0;
            for header in headers {
                let batch = &data[position..position + header.total_bytes()];
                position += header.total_bytes();
                next = header.last_offset() + 1;
                if header.is_control() {
                    continue;
                }
                let records =
                    inflate_records(batch, &header).map_err(|e| replay_error(partition, e))?;
                walk_records(
                    &records,
                    header.record_count,
                    OffsetDeltas::Increasing,
                    |r| {
                        if let Some(key) = r.key {
                            writes.push((record_store_key(key), r.value.map(<[u8]>::to_vec)));
                            replayed += 1;
                        }
                        Ok(())
                    },
                )
                .map_err(|e| replay_error(partition, e))?;
            }
            writes.push((applied_key.clone(), Some(next.to_be_bytes().to_vec())));
            self.store.write_batch(&writes).map_err(storage)?;
        }
        if replayed > 0 {
            tracing::info!(
                partition = partition.index,
                records = replayed,
                "replayed {OFFSETS_TOPIC} into the group store"
            );
        }
        Ok(())
    }

    // ---- Writing ----

    /// Persists records that change committed offsets, then replays them into memory, so
    /// the offsets in memory change only by their records. (Group records go through
    /// [`GroupCoordinator::persist`] alone: they describe what the state machines hold.)
    fn write(
        &self,
        shard: &mut Shard,
        group_id: &str,
        records: &[(RecordKey, Option<Bytes>)],
    ) -> Result<FlushOwed, GroupError> {
        let flush = self.persist(shard, group_id, records)?;
        for (key, value) in records {
            if !matches!(key, RecordKey::OffsetCommit { .. }) {
                continue;
            }
            match value.as_deref().map(OffsetCommitValue::decode).transpose() {
                Ok(value) => shard.replay_offset(key, value),
                Err(e) => {
                    tracing::error!(error = %e, "an offset record written here does not decode")
                }
            }
        }
        Ok(flush)
    }

    /// Appends records for one group to its partition, applies them to the store, and
    /// returns the fsync still owed (if the flush policy wants one).
    fn persist(
        &self,
        shard: &Shard,
        group_id: &str,
        records: &[(RecordKey, Option<Bytes>)],
    ) -> Result<FlushOwed, GroupError> {
        if records.is_empty() {
            return Ok(None);
        }
        // The partition by the topic's partition count, not by how many are held here.
        let count = self
            .catalog
            .partition_count(OFFSETS_TOPIC)
            .ok_or(GroupError::CoordinatorNotAvailable)?;
        let partition = shard
            .partitions
            .get(&partition_for(group_id, count))
            .ok_or(GroupError::NotCoordinator)?;
        let keys: Vec<Bytes> = records.iter().map(|(k, _)| k.encode()).collect();
        let entries: Vec<KeyValue> = keys
            .iter()
            .zip(records)
            .map(|(k, (_, v))| (Some(&k[..]), v.as_deref()))
            .collect();
        let now_ms = self.clock.now_ms();
        let batch = build_keyed_batch(&entries, now_ms, (-1, -1, -1)).freeze();
        let (append, flush_at) = partition.append(batch, 1, now_ms).map_err(|e| {
            tracing::error!(group = %group_id, error = %e, "cannot write group records");
            match e.code() {
                ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
                    GroupError::InvalidCommitOffsetSize
                }
                _ => GroupError::StorageError,
            }
        })?;
        let mut writes: Vec<(String, Option<Vec<u8>>)> = keys
            .iter()
            .zip(records)
            .map(|(k, (_, v))| (record_store_key(k), v.as_ref().map(|v| v.to_vec())))
            .collect();
        writes.push((
            format!("{APPLIED_PREFIX}{}", partition.index),
            Some((append.last_offset + 1).to_be_bytes().to_vec()),
        ));
        self.store.write_batch(&writes).map_err(storage)?;
        Ok(flush_at.map(|offset| (Arc::clone(partition), offset)))
    }

    fn group_metadata_record(group: &ClassicGroup) -> (RecordKey, Option<Bytes>) {
        (
            RecordKey::GroupMetadata {
                group: group.id.clone(),
            },
            Some(group.metadata_value().encode()),
        )
    }

    // ---- Classic protocol ----

    pub fn join_group(&self, group_id: &str, request: JoinRequest) -> Answer<JoinResult> {
        let member_id = request.member_id.clone();
        let fail = |e| Answer::Now(JoinResult::failed(e, &member_id));
        if group_id.is_empty() {
            return fail(GroupError::InvalidGroupId);
        }
        // As Kafka, a session timeout out of bounds is refused before any group is made.
        let limits = &self.config.limits;
        if request.session_timeout_ms < limits.min_session_timeout_ms
            || request.session_timeout_ms > limits.max_session_timeout_ms
        {
            return fail(GroupError::InvalidSessionTimeout);
        }
        let now_ms = self.clock.now_ms();
        let mut shard = match self.lock_loaded() {
            Ok(shard) => shard,
            Err(e) => return fail(e),
        };
        if let Some(Group::Consumer(g)) = shard.groups.get(group_id) {
            if !g.is_empty() {
                return fail(GroupError::InconsistentGroupProtocol);
            }
            // An empty consumer group becomes a classic one, as Kafka converts it.
            let tombstones = g.tombstones();
            if let Err(e) = self.persist(&shard, group_id, &tombstones) {
                return fail(e);
            }
            shard.groups.remove(group_id);
        }
        let group = shard
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::Classic(ClassicGroup::new(group_id, now_ms)));
        let Group::Classic(group) = group else {
            return fail(GroupError::InconsistentGroupProtocol);
        };
        let answer = group.join(now_ms, &self.config.limits, request);
        if group.take_metadata_changed() {
            let record = Self::group_metadata_record(group);
            if let Err(e) = self.persist(&shard, group_id, &[record]) {
                tracing::warn!(group = %group_id, error = %e, "cannot persist a replaced static member");
            }
        }
        answer
    }

    pub fn sync_group(
        &self,
        group_id: &str,
        request: SyncRequest,
    ) -> (Answer<SyncResult>, FlushOwed) {
        let fail = |e| (Answer::Now(SyncResult::failed(e)), None);
        let now_ms = self.clock.now_ms();
        let mut shard = self.lock();
        let Some(Group::Classic(group)) = shard.groups.get_mut(group_id) else {
            return fail(GroupError::UnknownMemberId);
        };
        match group.sync(now_ms, request) {
            SyncStep::Answer(answer) => (answer, None),
            SyncStep::Persist(rx) => {
                let record = Self::group_metadata_record(group);
                let group_id = group.id.clone();
                let persisted = self.persist(&shard, &group_id, &[record]);
                let Some(Group::Classic(group)) = shard.groups.get_mut(&group_id) else {
                    unreachable!("the group is held under the lock");
                };
                let flush = match persisted {
                    Ok(flush) => {
                        group.finish_sync(now_ms, &self.config.limits, Ok(()));
                        flush
                    }
                    Err(e) => {
                        // As Kafka's storeGroup: a record too large is a server error, a
                        // failed write makes the coordinator unavailable; either way the
                        // group rebalances.
                        let error = match e {
                            GroupError::InvalidCommitOffsetSize => GroupError::UnknownServerError,
                            _ => GroupError::CoordinatorNotAvailable,
                        };
                        group.finish_sync(now_ms, &self.config.limits, Err(error));
                        None
                    }
                };
                (Answer::Later(rx), flush)
            }
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let now_ms = self.clock.now_ms();
        let mut shard = self.lock();
        match shard.groups.get_mut(group_id) {
            Some(Group::Classic(group)) => {
                group.heartbeat(now_ms, member_id, instance_id, generation)
            }
            Some(Group::Consumer(_)) => Err(GroupError::InconsistentGroupProtocol),
            None => Err(GroupError::UnknownMemberId),
        }
    }

    /// LeaveGroup: one result per member; Err for the whole group.
    pub fn leave_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let now_ms = self.clock.now_ms();
        let mut shard = self.lock();
        let group = match shard.groups.get_mut(group_id) {
            Some(Group::Classic(group)) => group,
            Some(Group::Consumer(_)) => return Err(GroupError::InconsistentGroupProtocol),
            // Kafka answers each member of a group it does not know: UNKNOWN_MEMBER_ID.
            None => return Ok(vec![Err(GroupError::UnknownMemberId); members.len()]),
        };
        let before = group.state();
        let results = members
            .iter()
            .map(|(member_id, instance)| {
                group.leave(now_ms, &self.config.limits, member_id, instance.as_deref())
            })
            .collect();
        if before != ClassicState::Empty && group.state() == ClassicState::Empty {
            let record = Self::group_metadata_record(group);
            if let Err(e) = self.persist(&shard, group_id, &[record]) {
                tracing::warn!(group = %group_id, error = %e, "cannot persist the emptied group");
            }
        }
        Ok(results)
    }

    // ---- KIP-848 ----

    /// A KIP-848 heartbeat. `group_configs` are the group's own configs (resource type
    /// GROUP): its session timeout and heartbeat interval win over the broker's.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        group_configs: &BTreeMap<String, String>,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatResult, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let now_ms = self.clock.now_ms();
        let mut shard = self.lock_loaded()?;
        let topics = consumer::TopicView::from_catalog(self.catalog.as_ref());
        let mut conversion = Vec::new();
        match shard.groups.get(group_id) {
            // An empty classic group (offsets only) becomes a consumer group, as Kafka
            // converts empty groups; its classic metadata is tombstoned.
            Some(Group::Classic(g)) if g.is_empty() => {
                conversion.push((
                    RecordKey::GroupMetadata {
                        group: group_id.to_string(),
                    },
                    None,
                ));
                shard.groups.insert(
                    group_id.to_string(),
                    Group::Consumer(ConsumerGroup::new(group_id)),
                );
            }
            Some(_) => {}
            None if request.member_epoch != 0 => return Err(GroupError::UnknownMemberId),
            None => {
                shard.groups.insert(
                    group_id.to_string(),
                    Group::Consumer(ConsumerGroup::new(group_id)),
                );
            }
        }
        let Some(Group::Consumer(group)) = shard.groups.get_mut(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        // Most groups set nothing of their own: only those pay for a copy of the limits.
        let overridden;
        let limits = if group_configs.is_empty() {
            &self.config.consumer
        } else {
            let mut limits = self.config.consumer.clone();
            (limits.session_timeout_ms, limits.heartbeat_interval_ms) =
                crate::metadata::group_config::consumer_timeouts(
                    group_configs,
                    limits.session_timeout_ms,
                    limits.heartbeat_interval_ms,
                );
            overridden = limits;
            &overridden
        };
        let result = group.heartbeat(now_ms, limits, &topics, request);
        let mut changes = conversion;
        changes.extend(group.take_changes());
        self.persist(&shard, group_id, &changes)?;
        result
    }

    /// KIP-848 groups, for ConsumerGroupDescribe.
    pub fn describe_consumer_groups(
        &self,
        group_ids: &[String],
    ) -> Vec<(
        String,
        Result<consumer::ConsumerGroupDescription, GroupError>,
    )> {
        let shard = self.lock();
        let topics = consumer::TopicView::from_catalog(self.catalog.as_ref());
        group_ids
            .iter()
            .map(|id| {
                let result = match shard.groups.get(id) {
                    Some(Group::Consumer(group)) => Ok(group.describe(&topics)),
                    Some(Group::Classic(_)) => Err(GroupError::GroupIdNotFound),
                    None => Err(GroupError::GroupIdNotFound),
                };
                (id.clone(), result)
            })
            .collect()
    }

    // ---- Offsets ----

    /// OffsetCommit: validates the committer, writes the offsets, returns a result per
    /// partition (or an error for the whole request).
    ///
    /// As Kafka's request handler does, partitions that do not exist fail first with
    /// UNKNOWN_TOPIC_OR_PARTITION, whatever the member's generation or epoch; a request
    /// naming only such partitions never reaches the group.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        context: &CommitContext,
        topics: &[(String, Vec<OffsetToCommit>)],
    ) -> Result<(PartitionResults, FlushOwed), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let now_ms = self.clock.now_ms();
        let mut results = self.existing_partitions(topics);
        if results
            .iter()
            .flat_map(|(_, ps)| ps)
            .all(|(_, r)| r.is_err())
        {
            return Ok((results, None));
        }
        let mut shard = self.lock_loaded()?;
        if let Err(e) = validate_committer(&mut shard, group_id, context, now_ms) {
            fail_pending(&mut results, e);
            return Ok((results, None));
        }
        let mut records = Vec::new();
        for ((topic, partitions), (_, topic_results)) in topics.iter().zip(results.iter_mut()) {
            for (p, (_, result)) in partitions.iter().zip(topic_results.iter_mut()) {
                if result.is_err() {
                    continue;
                }
                if p.metadata.len() > self.config.offset_metadata_max_bytes {
                    *result = Err(GroupError::OffsetMetadataTooLarge);
                    continue;
                }
                let value = OffsetCommitValue {
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata.clone(),
                    commit_timestamp_ms: now_ms,
                };
                records.push((
                    offset_key(group_id, topic, p.partition),
                    Some(value.encode()),
                ));
            }
        }
        match self.write(&mut shard, group_id, &records) {
            Ok(flush) => Ok((results, flush)),
            Err(e) => {
                fail_pending(&mut results, e);
                Ok((results, None))
            }
        }
    }

    /// One result per partition of an OffsetCommit: Ok for a partition that exists (still
    /// to be committed), UNKNOWN_TOPIC_OR_PARTITION for one that does not.
    fn existing_partitions(&self, topics: &[(String, Vec<OffsetToCommit>)]) -> PartitionResults {
        topics
            .iter()
            .map(|(topic, partitions)| {
                let count = self.catalog.partition_count(topic);
                let results = partitions
                    .iter()
                    .map(|p| {
                        let exists = count.is_some_and(|c| p.partition >= 0 && p.partition < c);
                        let result = if exists {
                            Ok(())
                        } else {
                            Err(GroupError::UnknownTopicOrPartition)
                        };
                        (p.partition, result)
                    })
                    .collect();
                (topic.clone(), results)
            })
            .collect()
    }

    /// OffsetFetch for one group: the listed partitions, or every committed one (None).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
        member: Option<(&str, i32)>,
    ) -> Result<FetchedOffsets, GroupError> {
        let shard = self.lock_loaded()?;
        if let (Some((member_id, epoch)), Some(Group::Consumer(group))) =
            (member, shard.groups.get(group_id))
        {
            group.validate_offset_fetch(member_id, epoch)?;
        }
        let committed = shard.offsets.get(group_id);
        let out = match topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .iter()
                        .map(|p| {
                            let value =
                                committed.and_then(|c| c.get(&(topic.clone(), *p)).cloned());
                            (*p, value)
                        })
                        .collect();
                    (topic.clone(), found)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, CommittedOffset)>> = BTreeMap::new();
                for ((topic, partition), value) in committed.into_iter().flatten() {
                    by_topic
                        .entry(topic.clone())
                        .or_default()
                        .push((*partition, Some(value.clone())));
                }
                by_topic.into_iter().collect()
            }
        };
        Ok(out)
    }

    /// OffsetDelete: removes committed offsets of partitions the group does not consume.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<(PartitionResults, FlushOwed), GroupError> {
        let mut shard = self.lock_loaded()?;
        // As Kafka's validateOffsetDelete: None means "every topic counts as subscribed".
        let subscribed: Option<BTreeSet<String>> = match shard.groups.get(group_id) {
            None => return Err(GroupError::GroupIdNotFound),
            Some(group) if group.is_empty() => Some(BTreeSet::new()),
            Some(Group::Classic(group)) if group.protocol_type() != Some("consumer") => {
                return Err(GroupError::NonEmptyGroup)
            }
            // Subscriptions that cannot be read count as subscribed to everything.
            Some(Group::Classic(group)) => group
                .subscribed_topics()
                .map(|topics| topics.into_iter().collect()),
            Some(Group::Consumer(group)) => Some(group.subscribed_topic_names()),
        };
        let mut records = Vec::new();
        let mut results = Vec::new();
        for (topic, partitions) in topics {
            let mut topic_results = Vec::new();
            for partition in partitions {
                let result = if subscribed.as_ref().is_none_or(|s| s.contains(topic)) {
                    Err(GroupError::GroupSubscribedToTopic)
                } else {
                    records.push((offset_key(group_id, topic, *partition), None));
                    Ok(())
                };
                topic_results.push((*partition, result));
            }
            results.push((topic.clone(), topic_results));
        }
        let flush = self.write(&mut shard, group_id, &records)?;
        Ok((results, flush))
    }

    // ---- Admin ----

    pub fn list_groups(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let shard = self.lock();
        shard
            .groups
            .iter()
            .filter(|(_, g)| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state_name()))
            })
            .filter(|(_, g)| {
                types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(g.type_name()))
            })
            .map(|(id, g)| GroupListing {
                group_id: id.clone(),
                protocol_type: match g {
                    Group::Classic(c) => c.protocol_type().unwrap_or_default().to_string(),
                    Group::Consumer(_) => "consumer".to_string(),
                },
                state: g.state_name().to_string(),
                group_type: g.type_name().to_string(),
            })
            .collect()
    }

    pub fn describe_groups(
        &self,
        group_ids: &[String],
    ) -> Vec<(String, Result<GroupDescription, GroupError>)> {
        let shard = self.lock();
        group_ids
            .iter()
            .map(|id| {
                let result = match shard.groups.get(id) {
                    Some(Group::Classic(g)) => Ok(GroupDescription {
                        group_id: id.clone(),
                        state: g.state().name().to_string(),
                        protocol_type: g.protocol_type().unwrap_or_default().to_string(),
                        protocol: if g.state() == ClassicState::Stable {
                            g.protocol().unwrap_or_default().to_string()
                        } else {
                            String::new()
                        },
                        members: g.describe_members(),
                    }),
                    // A consumer group described with the classic API: Kafka answers
                    // GROUP_ID_NOT_FOUND ("not a classic group").
                    Some(Group::Consumer(_)) => Err(GroupError::GroupIdNotFound),
                    None => Err(GroupError::GroupIdNotFound),
                };
                (id.clone(), result)
            })
            .collect()
    }

    /// DeleteGroups: only empty groups; their offsets and metadata are tombstoned.
    pub fn delete_groups(&self, group_ids: &[String]) -> Vec<(String, Result<(), GroupError>)> {
        let mut shard = self.lock();
        group_ids
            .iter()
            .map(|id| (id.clone(), self.delete_group(&mut shard, id)))
            .collect()
    }

    fn delete_group(&self, shard: &mut Shard, group_id: &str) -> Result<(), GroupError> {
        if shard.partitions.is_empty() {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        match shard.groups.get(group_id) {
            None => return Err(GroupError::GroupIdNotFound),
            Some(g) if !g.is_empty() => return Err(GroupError::NonEmptyGroup),
            Some(_) => {}
        }
        let mut records: Vec<(RecordKey, Option<Bytes>)> = shard
            .offsets
            .get(group_id)
            .into_iter()
            .flatten()
            .map(|((topic, partition), _)| (offset_key(group_id, topic, *partition), None))
            .collect();
        match shard.groups.get(group_id) {
            Some(Group::Consumer(g)) => records.extend(g.tombstones()),
            _ => records.push((
                RecordKey::GroupMetadata {
                    group: group_id.to_string(),
                },
                None,
            )),
        }
        self.write(shard, group_id, &records)?;
        if let Some(Group::Classic(mut group)) = shard.groups.remove(group_id) {
            group.mark_dead();
        }
        tracing::info!(group = %group_id, "deleted group");
        Ok(())
    }

    // ---- Time ----

    /// Applies deadlines of every group and, when due, offset retention.
    pub fn tick(&self) {
        let now_ms = self.clock.now_ms();
        // Not `lock()`: the timer must not wake itself.
        let mut shard = self.shard();
        if shard.partitions.is_empty() {
            return;
        }
        let mut changed = Vec::new();
        // The timer runs after every operation: only groups with a deadline due are
        // touched, and the topic view is built only if a consumer group needs it.
        let mut topics = None;
        for (id, group) in shard.groups.iter_mut() {
            if group.next_deadline_ms().is_none_or(|d| d > now_ms) {
                continue;
            }
            match group {
                Group::Classic(g) => {
                    if g.tick(now_ms, &self.config.limits) {
                        changed.push((id.clone(), vec![Self::group_metadata_record(g)]));
                    }
                }
                Group::Consumer(g) => {
                    let topics = topics.get_or_insert_with(|| {
                        consumer::TopicView::from_catalog(self.catalog.as_ref())
                    });
                    if g.tick(now_ms, &self.config.consumer, topics) {
                        changed.push((id.clone(), g.take_changes()));
                    }
                }
            }
        }
        for (id, records) in changed {
            if let Err(e) = self.persist(&shard, &id, &records) {
                tracing::warn!(group = %id, error = %e, "cannot persist group changes");
            }
        }
        if now_ms >= shard.next_retention_check_ms {
            shard.next_retention_check_ms =
                now_ms + self.config.offsets_retention_check_interval_ms;
            self.expire_offsets(&mut shard, now_ms);
        }
    }

    /// `offsets.retention.minutes`: offsets of a group that has been empty that long (or,
    /// for groups that never had members, offsets not committed for that long) are
    /// removed, and a group left with nothing is deleted.
    fn expire_offsets(&self, shard: &mut Shard, now_ms: i64) {
        let retention_ms = self.config.offsets_retention_ms;
        let mut expired: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        for (group_id, offsets) in &shard.offsets {
            // When each offset's retention starts, as Kafka's OffsetExpirationCondition:
            // an emptied group's state change; a simple group's commit; in a group with
            // members, the commit of a topic it no longer subscribes to (never for a topic
            // it subscribes to, or when its subscriptions cannot be read).
            let mut subscribed: Option<BTreeSet<String>> = None;
            let base = match shard.groups.get(group_id) {
                Some(Group::Classic(g)) if g.is_empty() && g.protocol_type().is_some() => {
                    Some(g.state_since_ms())
                }
                Some(Group::Classic(g)) if !g.is_empty() => match g.subscribed_topics() {
                    Some(topics) => {
                        subscribed = Some(topics.into_iter().collect());
                        None
                    }
                    None => continue,
                },
                Some(Group::Consumer(g)) if !g.is_empty() => {
                    subscribed = Some(g.subscribed_topic_names());
                    None
                }
                _ => None,
            };
            for (key, value) in offsets {
                if subscribed.as_ref().is_some_and(|s| s.contains(&key.0)) {
                    continue;
                }
                let since = base.unwrap_or(value.commit_timestamp_ms);
                if now_ms - since >= retention_ms {
                    expired
                        .entry(group_id.clone())
                        .or_default()
                        .push(key.clone());
                }
            }
        }
        for (group_id, keys) in expired {
            let records: Vec<(RecordKey, Option<Bytes>)> = keys
                .iter()
                .map(|(topic, partition)| (offset_key(&group_id, topic, *partition), None))
                .collect();
            if let Err(e) = self.write(shard, &group_id, &records) {
                tracing::warn!(group = %group_id, error = %e, "cannot expire offsets");
                continue;
            }
            tracing::info!(group = %group_id, partitions = keys.len(), "expired committed offsets");
            let emptied = !shard.offsets.contains_key(&group_id)
                && shard.groups.get(&group_id).is_some_and(Group::is_empty);
            if emptied {
                let _ = self.delete_group(shard, &group_id);
            }
        }
    }
}

fn spawn_ticker(coordinator: Weak<GroupCoordinator>) {
    tokio::spawn(async move {
        loop {
            let Some(strong) = coordinator.upgrade() else {
                break;
            };
            let now_ms = strong.clock.now_ms();
            let wait_ms = (strong.next_deadline_ms() - now_ms).clamp(0, IDLE_TICK_MS);
            // Sleep to the next deadline, or until an operation may have moved it.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
                _ = strong.deadline_changed.notified() => {}
            }
            strong.tick();
        }
    });
}

fn storage(e: crate::meta_store::StoreError) -> GroupError {
    tracing::error!(error = %e, "group store");
    GroupError::StorageError
}

fn replay_error(partition: &Partition, e: impl std::fmt::Display) -> GroupError {
    tracing::error!(partition = partition.index, error = %e, "cannot replay {OFFSETS_TOPIC}");
    GroupError::CoordinatorNotAvailable
}

fn record_store_key(key: &[u8]) -> String {
    let mut out = String::with_capacity(RECORD_PREFIX.len() + key.len() * 2);
    out.push_str(RECORD_PREFIX);
    for byte in key {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_for_matches_java_string_hash() {
        // Java: "test-group".hashCode() == 627841412 -> % 50 == 12.
        assert_eq!(partition_for("test-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
        // Non-ASCII uses UTF-16 units: "é".hashCode() == 233.
        assert_eq!(partition_for("é", 50), 233 % 50);
    }

    async fn start(
        store: &Arc<crate::meta_store::MemoryStore>,
        dir: &std::path::Path,
    ) -> (Controller, Arc<GroupCoordinator>) {
        let config = Arc::new(BrokerConfig::load_from(&[], &[]).unwrap());
        let store: Arc<dyn MetaStore> = Arc::clone(store) as Arc<dyn MetaStore>;
        let replicas = Arc::new(ReplicaManager::new(dir, Arc::clone(&store), Clock, false));
        let controller = Controller::start(
            Arc::clone(&config),
            Arc::clone(&store),
            Arc::clone(&replicas),
        )
        .await
        .unwrap();
        let groups = GroupCoordinator::start(
            GroupConfig::from_broker(&config),
            Clock,
            store,
            replicas,
            controller.view(),
        )
        .unwrap();
        (controller, groups)
    }

    /// A coordinator with `__consumer_offsets` and two-partition `topics` in place.
    async fn start_with_topics(
        store: &Arc<crate::meta_store::MemoryStore>,
        dir: &std::path::Path,
        topics: &[&str],
    ) -> (Controller, Arc<GroupCoordinator>) {
        let (controller, groups) = start(store, dir).await;
        for name in topics {
            let topic = crate::metadata::NewTopic {
                name: name.to_string(),
                partitions: 2,
                replication_factor: -1,
                assignments: BTreeMap::new(),
                configs: BTreeMap::new(),
            };
            controller.create_topic(topic, false).await.unwrap();
        }
        groups.ensure_offsets_topic(&controller).await.unwrap();
        (controller, groups)
    }

    /// A commit from outside the group to partition 1 of `t`.
    fn commit(groups: &GroupCoordinator, group: &str, offset: i64) {
        commit_to(groups, group, "t", 1, offset);
    }

    fn commit_to(groups: &GroupCoordinator, group: &str, topic: &str, partition: i32, offset: i64) {
        let context = CommitContext {
            member_id: String::new(),
            group_instance_id: None,
            generation_or_epoch: -1,
            version: 9,
        };
        let to_commit = OffsetToCommit {
            partition,
            offset,
            leader_epoch: 0,
            metadata: "meta".into(),
        };
        let (results, _) = groups
            .commit_offsets(group, &context, &[(topic.into(), vec![to_commit])])
            .unwrap();
        assert_eq!(results[0].1[0].1, Ok(()));
    }

    fn committed(groups: &GroupCoordinator, group: &str) -> Option<i64> {
        let found = groups
            .fetch_offsets(group, Some(&[("t".into(), vec![1])]), None)
            .unwrap();
        found[0].1[0].1.as_ref().map(|v| v.offset)
    }

    #[tokio::test]
    async fn a_lost_store_is_rebuilt_from_the_offsets_topic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::meta_store::MemoryStore::default());
        let (controller, groups) = start_with_topics(&store, dir.path(), &["t"]).await;
        commit(&groups, "g1", 10);
        commit(&groups, "g1", 12);
        commit(&groups, "g2", 3);
        assert_eq!(groups.delete_groups(&["g2".into()])[0].1, Ok(()));
        controller.shutdown().await;
        drop((controller, groups));

        // Keep the topics, lose every group record and the applied checkpoints.
        let rebuilt = Arc::new(crate::meta_store::MemoryStore::default());
        for (key, value) in store.scan_prefix("").unwrap() {
            if !key.starts_with(RECORD_PREFIX) && !key.starts_with(APPLIED_PREFIX) {
                rebuilt.put(&key, &value).unwrap();
            }
        }
        let (_controller, groups) = start(&rebuilt, dir.path()).await;
        assert_eq!(committed(&groups, "g1"), Some(12), "latest commit replayed");
        assert_eq!(committed(&groups, "g2"), None, "tombstones replayed too");
        assert_eq!(groups.list_groups(&[], &[]).len(), 1);
        // The view is complete again: a second start replays nothing new.
        assert!(!rebuilt.scan_prefix(APPLIED_PREFIX).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_panic_in_a_group_operation_reloads_the_groups_instead_of_spreading() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::meta_store::MemoryStore::default());
        let (_controller, groups) = start_with_topics(&store, dir.path(), &["t"]).await;
        commit(&groups, "g1", 10);
        let poisoner = Arc::clone(&groups);
        let _ = std::thread::spawn(move || {
            let mut shard = poisoner.shard.lock().unwrap();
            // A half-done change, then the panic an assertion would raise.
            shard.offsets.clear();
            panic!("a bug in the middle of a group operation");
        })
        .join();
        assert!(groups.shard.is_poisoned());
        assert_eq!(committed(&groups, "g1"), Some(10), "reloaded from the log");
        assert!(!groups.shard.is_poisoned());
        commit(&groups, "g1", 11);
        assert_eq!(committed(&groups, "g1"), Some(11));
    }

    #[tokio::test]
    async fn offsets_expire_after_the_retention_and_empty_groups_go_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::meta_store::MemoryStore::default());
        let (controller, groups) = start_with_topics(&store, dir.path(), &["t"]).await;
        commit(&groups, "g1", 10);
        let retention_ms = groups.config.offsets_retention_ms;
        let now_ms = Clock.now_ms();
        {
            let mut shard = groups.lock();
            groups.expire_offsets(&mut shard, now_ms + retention_ms - 60_000);
        }
        assert_eq!(
            committed(&groups, "g1"),
            Some(10),
            "kept inside the retention"
        );
        {
            let mut shard = groups.lock();
            groups.expire_offsets(&mut shard, now_ms + retention_ms + 1);
        }
        assert_eq!(committed(&groups, "g1"), None, "expired");
        assert!(
            groups.list_groups(&[], &[]).is_empty(),
            "the emptied group is deleted"
        );
        // The tombstones are in the store too: a restart does not bring them back.
        controller.shutdown().await;
        drop((controller, groups));
        let (_controller, groups) = start(&store, dir.path()).await;
        assert_eq!(committed(&groups, "g1"), None);
    }

    #[tokio::test]
    async fn a_live_group_keeps_offsets_of_subscribed_topics_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::meta_store::MemoryStore::default());
        let (_controller, groups) = start_with_topics(&store, dir.path(), &["t", "u"]).await;
        // Offsets committed while the group was empty, for t and u.
        commit(&groups, "g", 5);
        commit_to(&groups, "g", "u", 0, 9);
        // A KIP-848 member now subscribes to t only.
        let joined = groups.consumer_heartbeat(
            "g",
            &BTreeMap::new(),
            HeartbeatRequest {
                member_id: "m".into(),
                member_epoch: 0,
                rebalance_timeout_ms: 5000,
                subscribed_topic_names: Some(vec!["t".into()]),
                ..HeartbeatRequest::default()
            },
        );
        assert!(joined.is_ok(), "{joined:?}");
        let later = Clock.now_ms() + groups.config.offsets_retention_ms + 1;
        {
            let mut shard = groups.lock();
            groups.expire_offsets(&mut shard, later);
        }
        assert_eq!(committed(&groups, "g"), Some(5), "t is subscribed: kept");
        let u = groups
            .fetch_offsets("g", Some(&[("u".into(), vec![0])]), None)
            .unwrap();
        assert_eq!(u[0].1[0].1, None, "u is not subscribed: expired");
        assert_eq!(groups.list_groups(&[], &[]).len(), 1, "a live group stays");
    }

    #[test]
    fn store_keys_round_trip() {
        let key = RecordKey::GroupMetadata {
            group: "g/1".into(),
        }
        .encode();
        let stored = record_store_key(&key);
        assert_eq!(
            hex_decode(&stored[RECORD_PREFIX.len()..]).unwrap(),
            key.to_vec()
        );
    }
}
