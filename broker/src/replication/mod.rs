//! Partition replicas hosted by this broker: their logs, high watermarks and the acks policy.
//!
//! A [`Partition`] owns its log behind a lock and publishes its offsets in atomics so that
//! Metadata, ListOffsets and fetch planning read them without the lock. With one replica the
//! ISR is the leader alone and the high watermark follows the log end offset at append;
//! replication extends this type (follower fetchers, ISR tracking) without changing its
//! callers.
//!
//! Durability follows Kafka's flush policy: with `flush.messages`/`flush.ms` at their
//! defaults nothing waits for an fsync. When the policy makes a flush due, the partition's
//! flusher task fsyncs once for every append that arrived meanwhile (group commit), and
//! produces wait for it before they are acknowledged.

pub mod fetch_session;
pub mod log_dir;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::log::checkpoint::{self, Checkpoint};
use crate::log::{
    FetchedData, LogAppend, LogError, LogOptions, PartitionLog, ProducerState, ReadPlan,
    TimestampLookup, TopicConfig,
};
use crate::meta_store::MetaStore;
use crate::protocol::ErrorCode;
use crate::sync::{MutexExt, RwLockExt};
use log_dir::LogDirHealth;

/// Why a produce to a partition failed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("acks must be -1, 0 or 1, got {0}")]
    InvalidRequiredAcks(i16),
    #[error("in-sync replicas {isr} are fewer than min.insync.replicas {min}")]
    NotEnoughReplicas { isr: i32, min: i32 },
    #[error("the write was not made durable within the request timeout")]
    Timeout,
}

impl ProduceError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ProduceError::Log(e) => e.code(),
            ProduceError::InvalidRequiredAcks(_) => ErrorCode::InvalidRequiredAcks,
            ProduceError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            ProduceError::Timeout => ErrorCode::RequestTimedOut,
        }
    }
}

/// One partition replica on this broker.
pub struct Partition {
    pub topic: Arc<str>,
    pub topic_id: Uuid,
    pub index: i32,
    log: Mutex<PartitionLog>,
    high_watermark: AtomicI64,
    log_start_offset: AtomicI64,
    /// Woken on every append, for long-polling fetches.
    appended: Notify,
    /// The offset below which everything is fsynced.
    flushed: watch::Sender<i64>,
    flush_requested: Notify,
    deleted: AtomicBool,
    health: Arc<LogDirHealth>,
}

impl Partition {
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// With one replica the log end offset is the high watermark.
    pub fn log_end_offset(&self) -> i64 {
        self.high_watermark()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// The last stable offset; with no transactions yet it is the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        self.high_watermark()
    }

    /// A future that resolves on the next append; enable it before checking for data.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub fn config(&self) -> Arc<TopicConfig> {
        Arc::clone(self.lock().config())
    }

    pub fn set_config(&self, config: TopicConfig) {
        self.lock().set_config(config);
    }

    pub fn size_bytes(&self) -> u64 {
        self.lock().size_bytes()
    }

    /// The partition log. A panic while it was held may have left it half-changed (an
    /// invariant assertion is such a panic), so a poisoned lock takes the log directory
    /// offline: nothing more is served or acknowledged from it, and the broker stops and
    /// recovers from what is on disk. Callers check the directory's health under the lock.
    fn lock(&self) -> std::sync::MutexGuard<'_, PartitionLog> {
        self.log.lock().unwrap_or_else(|poisoned| {
            self.health.fail(&format!(
                "a panic while holding the log of {}-{}",
                self.topic, self.index
            ));
            poisoned.into_inner()
        })
    }

    /// Validates and appends `records` (synchronously, so a connection's produces append
    /// in request order). Returns the append and, if the flush policy demands it, the
    /// offset that must be fsynced before the produce is acknowledged.
    pub fn append(
        &self,
        records: Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<(LogAppend, Option<i64>), ProduceError> {
        if !matches!(acks, -1..=1) {
            return Err(ProduceError::InvalidRequiredAcks(acks));
        }
        let config = self.config();
        if acks == -1 && config.min_insync_replicas > 1 {
            return Err(ProduceError::NotEnoughReplicas {
                isr: 1,
                min: config.min_insync_replicas,
            });
        }
        let prepared = PartitionLog::prepare(&config, records, now_ms)?;
        let (append, flush_due) = {
            let mut log = self.lock();
            // Checked under the lock, so no append follows the directory's failure.
            self.health.check()?;
            let append = log
                .append(prepared, now_ms)
                .map_err(|e| self.health.note(e))?;
            let leo = log.log_end_offset();
            self.high_watermark.store(leo, Ordering::Release);
            let (start, high_watermark) = (self.log_start_offset(), self.high_watermark());
            assert!(
                start <= high_watermark && high_watermark <= leo,
                "log start {start} <= high watermark {high_watermark} <= log end {leo} broken"
            );
            (append, log.flush_due(now_ms))
        };
        if append.record_count > 0 {
            self.appended.notify_waiters();
        }
        if append.rolled {
            self.request_flush();
        }
        let wait_for = flush_due.then(|| {
            self.flush_requested.notify_one();
            append.last_offset + 1
        });
        Ok((append, wait_for))
    }

    /// The offset below which the log is fsynced.
    pub fn recovery_point(&self) -> i64 {
        *self.flushed.borrow()
    }

    /// Asks the flusher for an fsync without waiting for it: after a roll, so the sealed
    /// segment is on disk soon and recovery after a crash need not read it (as Kafka
    /// flushes a segment when it rolls).
    pub fn request_flush(&self) {
        self.flush_requested.notify_one();
    }

    /// Waits until everything below `offset` is fsynced, or the timeout. A directory that
    /// goes offline meanwhile fails the wait: that write is never acknowledged.
    pub async fn wait_flushed(&self, offset: i64, timeout: Duration) -> Result<(), ProduceError> {
        let mut flushed = self.flushed.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            tokio::select! {
                reached = flushed.wait_for(|f| *f >= offset) => reached.is_ok(),
                _ = self.health.offline() => false,
            }
        })
        .await;
        self.health.check()?;
        match reached {
            Ok(true) => Ok(()),
            _ => Err(ProduceError::Timeout),
        }
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high watermark).
    pub fn delete_records(&self, offset: i64) -> Result<i64, ErrorCode> {
        let high_watermark = self.high_watermark();
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        let mut log = self.lock();
        if self.health.is_offline() {
            return Err(ErrorCode::KafkaStorageError);
        }
        let start = log.advance_log_start_offset(target);
        drop(log);
        self.log_start_offset.store(start, Ordering::Release);
        Ok(start)
    }

    /// One retention pass; returns the files marked for deletion and their delay.
    fn apply_retention(&self, now_ms: i64) -> Result<(Vec<PathBuf>, i64), LogError> {
        let mut log = self.lock();
        self.health.check()?;
        let files = log
            .apply_retention(now_ms)
            .map_err(|e| self.health.note(e))?;
        self.log_start_offset
            .store(log.log_start_offset(), Ordering::Release);
        Ok((files, log.config().file_delete_delay_ms))
    }

    /// One clean of a compacted partition, if it has enough dirty data. Blocking: run it
    /// off the async threads. Returns the new cleaner checkpoint.
    fn clean(&self, now_ms: i64, cleaned_up_to: i64) -> Result<Option<i64>, LogError> {
        let Some(plan) = self
            .lock()
            .plan_clean(now_ms, cleaned_up_to, self.high_watermark())
        else {
            return Ok(None);
        };
        let cleaned = crate::log::clean_segments(&plan).map_err(|e| self.health.note(e))?;
        let mut log = self.lock();
        self.health.check()?;
        log.install_cleaned(cleaned)
            .map_err(|e| self.health.note(e))?;
        tracing::info!(topic = %self.topic, partition = self.index, up_to = plan.end_offset, "cleaned log");
        Ok(Some(plan.end_offset))
    }

    /// Plans a read from `offset` up to `max_offset` (exclusive).
    pub fn plan_read(
        &self,
        offset: i64,
        max_offset: i64,
        max_bytes: usize,
    ) -> Result<Option<ReadPlan>, LogError> {
        let log = self.lock();
        self.health.check()?;
        let (start, high_watermark) = (self.log_start_offset(), self.high_watermark());
        let leo = log.log_end_offset();
        assert!(
            start <= high_watermark && high_watermark <= leo,
            "log start {start} <= high watermark {high_watermark} <= log end {leo} broken"
        );
        log.plan_read(offset, max_offset, max_bytes)
            .map_err(|e| self.health.note(e))
    }

    /// Reads a planned range (outside the partition lock).
    pub fn read(&self, plan: ReadPlan) -> Result<FetchedData, LogError> {
        self.health.check()?;
        plan.read().map_err(|e| self.health.note(e))
    }

    pub fn lookup_timestamp(&self, target_ms: i64) -> Result<Option<TimestampLookup>, LogError> {
        let log = self.lock();
        self.health.check()?;
        log.lookup_timestamp(target_ms)
            .map_err(|e| self.health.note(e))
    }

    /// ListOffsets v0 (Kafka 3's `legacyFetchOffsetsForTimestamp`): the log's offsets
    /// before `timestamp`; for a consumer, those above the high watermark replaced by the
    /// high watermark.
    pub fn offsets_before(
        &self,
        timestamp: i64,
        max_num: i32,
        now_ms: i64,
        consumer: bool,
    ) -> Result<Vec<i64>, LogError> {
        let log = self.lock();
        self.health.check()?;
        let offsets = log.offsets_before(timestamp, max_num, now_ms);
        if !consumer {
            return Ok(offsets);
        }
        let high_watermark = self.high_watermark();
        Ok(match offsets.iter().position(|&o| o <= high_watermark) {
            Some(0) => offsets,
            Some(first) => std::iter::once(high_watermark)
                .chain(offsets[first..].iter().copied())
                .collect(),
            None if offsets.is_empty() => offsets,
            None => vec![high_watermark],
        })
    }

    pub fn max_timestamp(&self) -> Result<Option<TimestampLookup>, LogError> {
        let log = self.lock();
        self.health.check()?;
        log.max_timestamp().map_err(|e| self.health.note(e))
    }

    fn producer_checkpoint(&self) -> (i64, Vec<u8>) {
        self.lock().producer_checkpoint()
    }

    /// Fsyncs what the flush policy left unflushed; the group-commit step.
    /// A failed fsync takes the directory offline: the pages it could not write may be
    /// gone, so neither this flush nor any later one may acknowledge a write.
    async fn flush_once(self: &Arc<Self>, now_ms: i64) {
        if self.health.is_offline() {
            return;
        }
        let (files, offset) = self.lock().begin_flush(now_ms);
        let result =
            tokio::task::spawn_blocking(move || files.iter().try_for_each(|f| f.sync_data())).await;
        match result {
            Ok(Ok(())) if !self.health.is_offline() => {
                self.flushed.send_if_modified(|f| {
                    let advanced = offset > *f;
                    *f = (*f).max(offset);
                    advanced
                });
            }
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.health.fail(&format!(
                "fsync of {}-{} failed: {e}",
                self.topic, self.index
            )),
            Err(e) => self.health.fail(&format!(
                "fsync of {}-{} did not complete: {e}",
                self.topic, self.index
            )),
        }
    }

    /// The partition's flusher: one fsync at a time, each covering every append before it.
    async fn run_flusher(self: Arc<Self>, clock: crate::Clock) {
        while !self.is_deleted() {
            self.flush_requested.notified().await;
            if self.is_deleted() {
                break;
            }
            self.flush_once(clock.now_ms()).await;
        }
    }
}

/// Identifies a partition by topic name and index.
pub type TopicPartition = (Arc<str>, i32);

/// The partitions of one topic that this node holds a replica of.
#[derive(Clone)]
struct HostedTopic {
    id: Uuid,
    partitions: BTreeMap<i32, Arc<Partition>>,
}

/// All partitions hosted here: in a cluster, the replicas the metadata assigns to this
/// node; on a lone node, every partition.
pub struct ReplicaManager {
    log_dir: PathBuf,
    store: Arc<dyn MetaStore>,
    clock: crate::Clock,
    partitions: RwLock<HashMap<Arc<str>, HostedTopic>>,
    health: Arc<LogDirHealth>,
    clean_shutdown: bool,
    /// Recorded log start offsets, as read at start-up (`log-start-offset-checkpoint`).
    log_starts: Checkpoint,
    /// Recovery points as read at start-up (`recovery-point-offset-checkpoint`).
    recovery_points: Checkpoint,
    /// How far each compacted partition has been cleaned (`cleaner-offset-checkpoint`).
    cleaned_up_to: Mutex<Checkpoint>,
    /// Whether the partitions of the metadata image are open. Until then (a cluster node
    /// catching up with the metadata log) the checkpoint files are left as they are.
    opened: AtomicBool,
}

impl ReplicaManager {
    pub fn new(
        log_dir: &Path,
        store: Arc<dyn MetaStore>,
        clock: crate::Clock,
        clean_shutdown: bool,
    ) -> ReplicaManager {
        ReplicaManager {
            log_dir: log_dir.to_path_buf(),
            store,
            clock,
            partitions: RwLock::new(HashMap::new()),
            health: Arc::new(LogDirHealth::new(log_dir)),
            clean_shutdown,
            log_starts: checkpoint::read(&log_dir.join(checkpoint::LOG_START_OFFSET_CHECKPOINT)),
            recovery_points: checkpoint::read(
                &log_dir.join(checkpoint::RECOVERY_POINT_OFFSET_CHECKPOINT),
            ),
            cleaned_up_to: Mutex::new(checkpoint::read(
                &log_dir.join(checkpoint::CLEANER_OFFSET_CHECKPOINT),
            )),
            opened: AtomicBool::new(false),
        }
    }

    /// Records that the partitions of the metadata image are open (see `opened`).
    pub fn set_opened(&self) {
        self.opened.store(true, Ordering::Release);
    }

    /// Renames partition directories that no topic of the metadata image owns to
    /// `<dir>.<id>-stray`, as Kafka does with stray logs: what a deletion committed just
    /// before a crash left behind. Nothing is deleted, and a topic created again under the
    /// same name starts clean.
    pub fn quarantine_strays(&self) {
        let Ok(entries) = std::fs::read_dir(&self.log_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir()
                || name.starts_with("__weir_meta")
                || name.ends_with("-delete")
                || name.ends_with("-stray")
            {
                continue;
            }
            let Some((topic, index)) = name
                .rsplit_once('-')
                .and_then(|(t, i)| Some((t, i.parse::<i32>().ok()?)))
            else {
                continue;
            };
            if self.partition(topic, index).is_some() {
                continue;
            }
            let stray = self
                .log_dir
                .join(format!("{name}.{}-stray", Uuid::new_v4().simple()));
            match std::fs::rename(entry.path(), &stray) {
                Ok(()) => {
                    let _ = self.store.delete(&producer_state_key(topic, index));
                    tracing::warn!(dir = %name, renamed = %stray.display(), "a partition directory this node holds no replica of was set aside");
                }
                Err(e) => {
                    tracing::warn!(dir = %name, error = %e, "could not set aside a stray partition directory")
                }
            }
        }
    }

    /// Whether the partitions of the metadata image were opened.
    pub fn is_opened(&self) -> bool {
        self.opened.load(Ordering::Acquire)
    }

    /// The log directory's health, shared by every partition in it.
    pub fn health(&self) -> &Arc<LogDirHealth> {
        &self.health
    }

    /// The partitions of a topic hosted here, by index, if any is.
    pub fn topic(&self, topic: &str) -> Option<Vec<Arc<Partition>>> {
        let hosted = self.partitions.read_or_recover();
        Some(hosted.get(topic)?.partitions.values().cloned().collect())
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let hosted = self.partitions.read_or_recover();
        hosted.get(topic)?.partitions.get(&index).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read_or_recover()
            .values()
            .flat_map(|t| t.partitions.values())
            .cloned()
            .collect()
    }

    /// Opens (creating if needed) the given partitions of a topic, those not open yet.
    /// Returns how many were opened.
    pub fn host_topic(
        &self,
        topic: &str,
        topic_id: Uuid,
        indexes: &[i32],
        config: &TopicConfig,
    ) -> Result<usize, LogError> {
        let name: Arc<str> = Arc::from(topic);
        let mut hosted = self.partitions.read_or_recover().get(topic).cloned();
        if let Some(other) = hosted.as_ref().filter(|t| t.id != topic_id) {
            return Err(LogError::InconsistentTopicId {
                path: self
                    .log_dir
                    .join(crate::log::partition_dir_name(topic, 0))
                    .display()
                    .to_string(),
                expected: topic_id.to_string(),
                found: other.id.to_string(),
            });
        }
        let hosted = hosted.get_or_insert_with(|| HostedTopic {
            id: topic_id,
            partitions: BTreeMap::new(),
        });
        let mut opened = 0;
        let mut failed = None;
        for &index in indexes {
            if hosted.partitions.contains_key(&index) {
                continue;
            }
            match self.open_partition(&name, topic_id, index, config) {
                Ok(partition) => {
                    hosted.partitions.insert(index, partition);
                    opened += 1;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // Callers are serialized (the metadata publisher), so nothing changed the map
        // since it was read.
        if opened > 0 {
            self.partitions
                .write_or_recover()
                .insert(name, hosted.clone());
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(opened),
        }
    }

    fn open_partition(
        &self,
        topic: &Arc<str>,
        topic_id: Uuid,
        index: i32,
        config: &TopicConfig,
    ) -> Result<Arc<Partition>, LogError> {
        let dir = self
            .log_dir
            .join(crate::log::partition_dir_name(topic, index));
        let set_aside = match check_partition_metadata(&dir, topic_id) {
            Ok(()) => false,
            // (Only for another valid id: an unreadable file is refused as before.)
            Err(LogError::InconsistentTopicId { found, .. }) if !found.is_empty() => {
                // The directory of a topic of the same name that was deleted while this
                // node was away (the metadata names one topic per name): set aside, as
                // Kafka does with stray logs, and the partition starts empty, with none
                // of the old topic's offsets or producer state.
                let stray = self.log_dir.join(format!(
                    "{}.{}-stray",
                    crate::log::partition_dir_name(topic, index),
                    Uuid::new_v4().simple()
                ));
                std::fs::rename(&dir, &stray).map_err(|source| LogError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                let _ = self.store.delete(&producer_state_key(topic, index));
                tracing::warn!(dir = %dir.display(), renamed = %stray.display(), found, "a partition directory of another topic id was set aside");
                true
            }
            Err(e) => return Err(e),
        };
        let checkpoint = self
            .store
            .get(&producer_state_key(topic, index))
            .ok()
            .flatten()
            .and_then(|bytes| decode_checkpoint(&bytes));
        let key = (topic.to_string(), index);
        let recovery_point = self
            .recovery_points
            .get(&key)
            .copied()
            .filter(|_| !set_aside);
        let options = LogOptions {
            config: config.clone(),
            clean_shutdown: self.clean_shutdown,
            leader_epoch: 0,
            log_start_offset: self.log_starts.get(&key).copied().filter(|_| !set_aside),
            recovery_point,
        };
        let log = PartitionLog::open(&dir, options, checkpoint, self.clock.now_ms())?;
        if let Err(e) = write_partition_metadata(&dir, topic_id) {
            // The log is usable; the file is written on the next open.
            tracing::warn!(error = %e, "could not write partition.metadata");
        }
        let leo = log.log_end_offset();
        // After a clean shutdown everything was fsynced; after a crash only what is below
        // the recovery point is known to be, whatever recovery read back from the cache.
        let flushed = if self.clean_shutdown {
            leo
        } else {
            recovery_point.unwrap_or(0).min(leo)
        };
        let partition = Arc::new(Partition {
            topic: Arc::clone(topic),
            topic_id,
            index,
            high_watermark: AtomicI64::new(leo),
            log_start_offset: AtomicI64::new(log.log_start_offset()),
            log: Mutex::new(log),
            appended: Notify::new(),
            flushed: watch::Sender::new(flushed),
            flush_requested: Notify::new(),
            deleted: AtomicBool::new(false),
            health: Arc::clone(&self.health),
        });
        tokio::spawn(Arc::clone(&partition).run_flusher(self.clock.clone()));
        if !self.clean_shutdown {
            partition.request_flush();
        }
        Ok(partition)
    }

    /// Stops hosting a topic; its directories are renamed `<dir>.<id>-delete` at once and
    /// removed after `file.delete.delay.ms`, as Kafka does. Only the topic with this id: a
    /// later topic of the same name is not touched.
    pub fn remove_topic(&self, topic: &str, topic_id: Uuid, delete_delay_ms: i64) {
        let partitions = {
            let mut hosted = self.partitions.write_or_recover();
            match hosted.get(topic) {
                Some(t) if t.id == topic_id => hosted.remove(topic),
                _ => None,
            }
        };
        let Some(partitions) = partitions else {
            return;
        };
        for partition in partitions.partitions.into_values() {
            partition.deleted.store(true, Ordering::Release);
            partition.flush_requested.notify_one();
            partition.appended.notify_waiters();
            let _ = self
                .store
                .delete(&producer_state_key(topic, partition.index));
            let dir = self
                .log_dir
                .join(crate::log::partition_dir_name(topic, partition.index));
            let doomed = self.log_dir.join(format!(
                "{}.{}-delete",
                crate::log::partition_dir_name(topic, partition.index),
                partition.topic_id.simple()
            ));
            if let Err(e) = std::fs::rename(&dir, &doomed) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not mark a deleted partition directory");
                continue;
            }
            let delay = Duration::from_millis(delete_delay_ms.max(0) as u64);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) = tokio::fs::remove_dir_all(&doomed).await {
                    tracing::warn!(dir = %doomed.display(), error = %e, "could not remove a deleted partition directory");
                }
            });
        }
        // A topic created again under this name must not inherit these offsets.
        self.checkpoint_recovery_points();
        self.checkpoint_log_start_offsets();
    }

    /// Applies new topic configs to a hosted topic's live partitions.
    pub fn reconfigure(&self, topic: &str, config: &TopicConfig) {
        for partition in self.topic(topic).unwrap_or_default() {
            partition.set_config(config.clone());
        }
    }

    /// Writes Kafka's `recovery-point-offset-checkpoint`: per partition, the offset below
    /// which its log is fsynced, so that recovery after a crash checks only what is above.
    pub fn checkpoint_recovery_points(&self) {
        self.write_checkpoint(
            checkpoint::RECOVERY_POINT_OFFSET_CHECKPOINT,
            Partition::recovery_point,
        );
    }

    /// Writes Kafka's `log-start-offset-checkpoint` for every hosted partition.
    pub fn checkpoint_log_start_offsets(&self) {
        self.write_checkpoint(
            checkpoint::LOG_START_OFFSET_CHECKPOINT,
            Partition::log_start_offset,
        );
    }

    /// Writes one of Kafka's per-partition offset checkpoint files for every hosted partition.
    fn write_checkpoint(&self, file: &str, offset: fn(&Partition) -> i64) {
        if !self.is_opened() {
            // Not every partition is open yet: the file read at start-up stands.
            return;
        }
        let offsets: Checkpoint = self
            .all()
            .iter()
            .map(|p| ((p.topic.to_string(), p.index), offset(p)))
            .collect();
        let path = self.log_dir.join(file);
        if let Err(e) = checkpoint::write(&path, &offsets) {
            tracing::warn!(file = %path.display(), error = %e, "could not write a checkpoint");
        }
    }

    /// One retention pass over every partition (`log.retention.check.interval.ms`).
    pub fn retention_pass(&self, producer_expiration_ms: i64) {
        let now = self.clock.now_ms();
        let mut moved = false;
        for partition in self.all() {
            partition
                .lock()
                .expire_producers(now, producer_expiration_ms);
            let before = partition.log_start_offset();
            match partition.apply_retention(now) {
                Ok((files, _)) if files.is_empty() => {}
                Ok((files, delay_ms)) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, files = files.len(), "retention deleted segments");
                    delete_later(files, delay_ms);
                }
                Err(e) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "retention failed")
                }
            }
            moved |= partition.log_start_offset() != before;
        }
        if moved {
            self.checkpoint_log_start_offsets();
        }
    }

    /// One cleaner pass over compacted partitions (`log.cleaner.backoff.ms`). Blocking.
    pub fn cleaner_pass(&self) {
        let now = self.clock.now_ms();
        for partition in self.all() {
            if !partition.config().compact || partition.is_deleted() {
                continue;
            }
            let key = (partition.topic.to_string(), partition.index);
            let cleaned_up_to = self
                .cleaned_up_to
                .lock_or_recover()
                .get(&key)
                .copied()
                .unwrap_or(0);
            match partition.clean(now, cleaned_up_to) {
                Ok(Some(end)) => {
                    // Only the cleaner writes this map; copy it so no lock is held over the fsync.
                    let offsets = {
                        let mut offsets = self.cleaned_up_to.lock_or_recover();
                        offsets.insert(key, end);
                        offsets.clone()
                    };
                    let path = self.log_dir.join(checkpoint::CLEANER_OFFSET_CHECKPOINT);
                    if let Err(e) = checkpoint::write(&path, &offsets) {
                        tracing::warn!(file = %path.display(), error = %e, "could not write the cleaner checkpoint");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "cleaning failed")
                }
            }
        }
    }

    /// Starts the retention checker and (if enabled) the log cleaner.
    pub fn spawn_log_tasks(
        self: &Arc<Self>,
        retention_check_ms: i64,
        cleaner_backoff_ms: Option<i64>,
        producer_expiration_ms: i64,
        recovery_point_checkpoint_ms: i64,
    ) {
        let replicas = Arc::downgrade(self);
        tokio::spawn(async move {
            let period = Duration::from_millis(recovery_point_checkpoint_ms.max(1) as u64);
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(replicas) = replicas.upgrade() else {
                    break;
                };
                let write = move || replicas.checkpoint_recovery_points();
                if tokio::task::spawn_blocking(write).await.is_err() {
                    tracing::error!("recovery point checkpoint panicked");
                }
            }
        });
        let replicas = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval(Duration::from_millis(retention_check_ms.max(1) as u64));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(replicas) = replicas.upgrade() else {
                    break;
                };
                let pass = move || replicas.retention_pass(producer_expiration_ms);
                if tokio::task::spawn_blocking(pass).await.is_err() {
                    tracing::error!("retention pass panicked");
                }
            }
        });
        let Some(backoff_ms) = cleaner_backoff_ms else {
            return;
        };
        let replicas = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(backoff_ms.max(1) as u64)).await;
                let Some(replicas) = replicas.upgrade() else {
                    break;
                };
                if tokio::task::spawn_blocking(move || replicas.cleaner_pass())
                    .await
                    .is_err()
                {
                    tracing::error!("cleaner pass panicked");
                }
            }
        });
    }

    /// Writes every partition's producer state checkpoint.
    pub fn checkpoint_producer_state(&self) {
        for partition in self.all() {
            self.checkpoint_partition(&partition);
        }
    }

    /// Writes one partition's producer state checkpoint (after a roll, and at shutdown).
    pub fn checkpoint_partition(&self, partition: &Partition) {
        let (offset, state) = partition.producer_checkpoint();
        let mut value = offset.to_be_bytes().to_vec();
        value.extend_from_slice(&state);
        if let Err(e) = self.store.put(
            &producer_state_key(&partition.topic, partition.index),
            &value,
        ) {
            tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "producer state checkpoint failed");
        }
    }

    /// Flushes partitions whose `flush.ms` has passed; run by a periodic task.
    pub fn flush_due_partitions(&self) {
        let now = self.clock.now_ms();
        for partition in self.all() {
            if partition.lock().flush_due(now) {
                partition.flush_requested.notify_one();
            }
        }
    }

    /// Clean shutdown: fsync every log, seal active segments and checkpoint producer state.
    /// Returns whether the logs are clean: false if the directory is offline.
    pub async fn shutdown(&self) -> bool {
        if self.health.is_offline() || !self.is_opened() {
            return false;
        }
        let now = self.clock.now_ms();
        for partition in self.all() {
            partition.flush_once(now).await;
            if let Err(e) = partition.lock().close() {
                tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "closing a log failed");
            }
        }
        self.checkpoint_producer_state();
        self.checkpoint_log_start_offsets();
        self.checkpoint_recovery_points();
        !self.health.is_offline()
    }
}

/// Removes files marked `.deleted` once `file.delete.delay.ms` has passed.
fn delete_later(files: Vec<PathBuf>, delay_ms: i64) {
    let delay = Duration::from_millis(delay_ms.max(0) as u64);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        for file in files {
            if let Err(e) = tokio::fs::remove_file(&file).await {
                tracing::warn!(file = %file.display(), error = %e, "could not remove a deleted segment file");
            }
        }
    });
}

fn producer_state_key(topic: &str, partition: i32) -> String {
    format!("producer_state/{topic}/{partition}")
}

fn decode_checkpoint(bytes: &[u8]) -> Option<(i64, ProducerState)> {
    let (offset, state) = bytes.split_first_chunk::<8>()?;
    Some((i64::from_be_bytes(*offset), ProducerState::decode(state)?))
}

/// Kafka's `partition.metadata`: the topic id a partition directory belongs to.
const PARTITION_METADATA: &str = "partition.metadata";

/// Refuses a partition directory that records another topic id than `topic_id` (a topic
/// deleted and created again under the same name, seen out of order).
fn check_partition_metadata(dir: &std::path::Path, topic_id: Uuid) -> Result<(), LogError> {
    let path = dir.join(PARTITION_METADATA);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let expected = crate::meta_properties::base64_uuid(topic_id);
    let found = text
        .lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    if found != expected {
        return Err(LogError::InconsistentTopicId {
            path: path.display().to_string(),
            expected,
            found,
        });
    }
    Ok(())
}

/// Writes `partition.metadata` as Kafka does (`version: 0`, `topic_id: <base64>`), once.
fn write_partition_metadata(dir: &std::path::Path, topic_id: Uuid) -> Result<(), LogError> {
    let path = dir.join(PARTITION_METADATA);
    if path.exists() {
        return Ok(());
    }
    let io = |source| LogError::Io {
        path: path.display().to_string(),
        source,
    };
    let temp = dir.join("partition.metadata.tmp");
    let text = format!(
        "version: 0\ntopic_id: {}\n",
        crate::meta_properties::base64_uuid(topic_id)
    );
    let file = std::fs::File::create(&temp).map_err(io)?;
    std::io::Write::write_all(&mut &file, text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, &path).map_err(io)
}
