//! openraft's storage for the metadata quorum, in the broker's RocksDB metadata store.
//!
//! | key | value |
//! |---|---|
//! | `raft/log/{index:020}` | one log entry (JSON) |
//! | `raft/vote`, `raft/committed`, `raft/purged` | the vote, the committed and last purged log ids |
//! | `raft/snapshot/meta`, `raft/snapshot/data` | the last snapshot: its log id and membership, and the image as records |
//!
//! Entries and the vote are written in synced batches before openraft hears they are
//! stored. The state machine is the in-memory image behind an [`Applier`]: a restart loads
//! the snapshot and openraft replays the committed log after it.

// openraft's storage traits fix the error type, `StorageError`, which is large.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Applier, TypeConfig};
use crate::meta_store::{MetaStore, StoreError};
use crate::metadata::records::MetadataRecord;

type NodeId = u64;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

const LOG_PREFIX: &str = "raft/log/";
/// Sorts after every `raft/log/` key.
const LOG_END: &str = "raft/log0";
const VOTE_KEY: &str = "raft/vote";
const COMMITTED_KEY: &str = "raft/committed";
const PURGED_KEY: &str = "raft/purged";
const SNAPSHOT_META_KEY: &str = "raft/snapshot/meta";
const SNAPSHOT_DATA_KEY: &str = "raft/snapshot/data";

fn log_key(index: u64) -> String {
    format!("{LOG_PREFIX}{index:020}")
}

fn io_error(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

fn read<T: DeserializeOwned>(
    store: &dyn MetaStore,
    key: &str,
) -> std::result::Result<Option<T>, AnyError> {
    match store.get(key).map_err(io_error)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_error(format!("{key}: {e}"))),
        None => Ok(None),
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("raft state serializes")
}

/// Whether the store holds any quorum state: a new store, or one from before the metadata
/// log, has none.
pub fn has_quorum_state(store: &dyn MetaStore) -> std::result::Result<bool, StoreError> {
    Ok(store.get(VOTE_KEY)?.is_some() || store.last_with_prefix(LOG_PREFIX)?.is_some())
}

/// The raft log and vote.
#[derive(Clone)]
pub struct LogStore {
    store: Arc<dyn MetaStore>,
}

impl LogStore {
    pub fn new(store: Arc<dyn MetaStore>) -> LogStore {
        LogStore { store }
    }

    fn delete_range(&self, start: &str, end: &str) -> std::result::Result<(), StoreError> {
        let writes: Vec<(String, Option<Vec<u8>>)> = self
            .store
            .scan_range(start, end)?
            .into_iter()
            .map(|(key, _)| (key, None))
            .collect();
        self.store.write_batch_synced(&writes)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => log_key(i + 1),
            Bound::Excluded(i) => log_key(*i),
            Bound::Unbounded => LOG_END.to_string(),
        };
        let pairs = self
            .store
            .scan_range(&log_key(start), &end)
            .map_err(|e| StorageIOError::read_logs(io_error(e)))?;
        pairs
            .iter()
            .map(|(key, value)| {
                serde_json::from_slice(value)
                    .map_err(|e| StorageIOError::read_logs(io_error(format!("{key}: {e}"))).into())
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let purged: Option<LogId<NodeId>> =
            read(&*self.store, PURGED_KEY).map_err(StorageIOError::read_logs)?;
        let last = match self
            .store
            .last_with_prefix(LOG_PREFIX)
            .map_err(|e| StorageIOError::read_logs(io_error(e)))?
        {
            Some((key, value)) => {
                let entry: Entry<TypeConfig> = serde_json::from_slice(&value)
                    .map_err(|e| StorageIOError::read_logs(io_error(format!("{key}: {e}"))))?;
                Some(entry.log_id)
            }
            None => purged,
        };
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        self.store
            .write_batch_synced(&[(VOTE_KEY.to_string(), Some(json(vote)))])
            .map_err(|e| StorageIOError::write_vote(io_error(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        read(&*self.store, VOTE_KEY).map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        // Not synced: a lost one only means more to replay after the next election.
        self.store
            .write_batch(&[(COMMITTED_KEY.to_string(), Some(json(&committed)))])
            .map_err(|e| StorageIOError::write(io_error(e)).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(read::<Option<LogId<NodeId>>>(&*self.store, COMMITTED_KEY)
            .map_err(StorageIOError::read)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let writes: Vec<(String, Option<Vec<u8>>)> = entries
            .into_iter()
            .map(|entry| (log_key(entry.log_id.index), Some(json(&entry))))
            .collect();
        let result = self
            .store
            .write_batch_synced(&writes)
            .map_err(|e| std::io::Error::other(e.to_string()));
        let failed = result.as_ref().err().map(|e| e.to_string());
        callback.log_io_completed(result);
        match failed {
            Some(e) => Err(StorageIOError::write_logs(io_error(e)).into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        tracing::info!(from = log_id.index, "truncating the metadata log");
        self.delete_range(&log_key(log_id.index), LOG_END)
            .map_err(|e| StorageIOError::write_logs(io_error(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        // The purge point first: a crash between the two leaves entries below it, which
        // are skipped, never a hole that looks like entries.
        self.store
            .write_batch_synced(&[(PURGED_KEY.to_string(), Some(json(&Some(log_id))))])
            .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
        self.delete_range(LOG_PREFIX, &log_key(log_id.index + 1))
            .map_err(|e| StorageIOError::write_logs(io_error(e)))?;
        tracing::info!(up_to = log_id.index, "metadata log purged");
        Ok(())
    }
}

/// Bytes of records committed since this node's last snapshot, for the snapshot policy.
pub struct SinceSnapshot {
    bytes: AtomicU64,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub max_bytes: u64,
    /// Woken when `bytes` reaches `max_bytes`.
    pub due: tokio::sync::Notify,
}

impl SinceSnapshot {
    pub fn new(max_bytes: u64) -> SinceSnapshot {
        SinceSnapshot {
            bytes: AtomicU64::new(0),
            max_bytes,
            due: tokio::sync::Notify::new(),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    fn add(&self, bytes: u64) {
        let total = self.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if total >= self.max_bytes {
            self.due.notify_one();
        }
    }

    fn reset(&self) {
        self.bytes.store(0, Ordering::Release);
    }
}

/// The state machine: committed batches go to the [`Applier`] (the image and its
/// publisher); snapshots are the image as records.
pub struct StateMachine {
    store: Arc<dyn MetaStore>,
    applier: Arc<dyn Applier>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    since_snapshot: Arc<SinceSnapshot>,
}

type Meta = SnapshotMeta<NodeId, BasicNode>;

impl StateMachine {
    /// Loads the last snapshot, if any, into the applier.
    pub fn open(
        store: Arc<dyn MetaStore>,
        applier: Arc<dyn Applier>,
        since_snapshot: Arc<SinceSnapshot>,
    ) -> std::result::Result<StateMachine, StoreError> {
        let mut machine = StateMachine {
            store,
            applier,
            last_applied: None,
            membership: StoredMembership::default(),
            since_snapshot,
        };
        if let Some((meta, records)) = machine.read_snapshot()? {
            machine
                .applier
                .install(meta.last_log_id.map_or(0, |id| id.index), &records);
            machine.last_applied = meta.last_log_id;
            machine.membership = meta.last_membership;
        }
        Ok(machine)
    }

    fn read_snapshot(
        &self,
    ) -> std::result::Result<Option<(Meta, Vec<MetadataRecord>)>, StoreError> {
        let meta: Option<Meta> = read(&*self.store, SNAPSHOT_META_KEY)
            .map_err(|e| StoreError(format!("metadata snapshot: {e}")))?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        let records: Vec<MetadataRecord> = read(&*self.store, SNAPSHOT_DATA_KEY)
            .map_err(|e| StoreError(format!("metadata snapshot: {e}")))?
            .ok_or_else(|| StoreError("metadata snapshot: meta without data".into()))?;
        Ok(Some((meta, records)))
    }
}

fn write_snapshot(store: &dyn MetaStore, meta: &Meta, data: &[u8]) -> Result<()> {
    store
        .write_batch_synced(&[
            (SNAPSHOT_META_KEY.to_string(), Some(json(meta))),
            (SNAPSHOT_DATA_KEY.to_string(), Some(data.to_vec())),
        ])
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), io_error(e)).into())
}

/// Captures the image when openraft asks for a snapshot; builds and stores it.
pub struct SnapshotBuilder {
    store: Arc<dyn MetaStore>,
    records: Vec<MetadataRecord>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let data = json(&self.records);
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: match self.last_applied {
                Some(id) => format!("{}-{}", id.leader_id.term, id.index),
                None => "empty".to_string(),
            },
        };
        write_snapshot(&*self.store, &meta, &data)?;
        tracing::info!(records = self.records.len(), index = ?self.last_applied.map(|id| id.index), "metadata snapshot written");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            // Every entry moves the image's offset, the quorum's own (blank, membership)
            // too: a snapshot of the image is then exactly the log up to its offset.
            match &entry.payload {
                EntryPayload::Blank => self.applier.apply(entry.log_id.index, &[]),
                EntryPayload::Normal(batch) => {
                    self.applier.apply(entry.log_id.index, &batch.records);
                    self.since_snapshot.add(json(batch).len() as u64);
                }
                EntryPayload::Membership(membership) => {
                    self.applier.apply(entry.log_id.index, &[]);
                    self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                }
            }
            self.last_applied = Some(entry.log_id);
            responses.push(());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.since_snapshot.reset();
        SnapshotBuilder {
            store: Arc::clone(&self.store),
            records: self.applier.snapshot(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let data = snapshot.into_inner();
        let records: Vec<MetadataRecord> = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), io_error(e)))?;
        write_snapshot(&*self.store, meta, &data)?;
        self.applier
            .install(meta.last_log_id.map_or(0, |id| id.index), &records);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.since_snapshot.reset();
        tracing::info!(index = ?meta.last_log_id.map(|id| id.index), "installed a metadata snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let meta: Option<Meta> = read(&*self.store, SNAPSHOT_META_KEY)
            .map_err(|e| StorageIOError::read_snapshot(None, e))?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        let data = self
            .store
            .get(SNAPSHOT_DATA_KEY)
            .map_err(|e| StorageIOError::read_snapshot(None, io_error(e)))?
            .unwrap_or_default();
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
