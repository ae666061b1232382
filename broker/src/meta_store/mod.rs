//! The broker's local metadata store: a small ordered key-value interface.
//!
//! RocksDB backs it in the broker ([`rocks::RocksStore`]); unit tests use [`MemoryStore`].
//! It holds what the broker must remember across restarts that is not record data: the
//! cluster id, topics with their ids and configs, the producer id block, producer state
//! checkpoints, and the materialized view of `__consumer_offsets` (group records and how far
//! each partition was applied). Keys are namespaced by a prefix (`topic/`,
//! `producer_state/`, `group-record/`, ...).

#[cfg(feature = "rocksdb")]
pub mod rocks;

use crate::sync::MutexExt;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A failed read or write of the metadata store.
#[derive(Debug, thiserror::Error)]
#[error("metadata store: {0}")]
pub struct StoreError(pub String);

/// An ordered key-value store. `put` and `delete` are durable when they return;
/// `write_batch` is atomic but not synced, for views that a log can rebuild.
pub trait MetaStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Puts (Some) and deletes (None) applied atomically, without waiting for an fsync: a
    /// crash may lose the latest batches (never part of one, never a later one without an
    /// earlier one), so callers keep in the batch how far their source log was applied.
    fn write_batch(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError>;
    /// Puts and deletes applied atomically and durable when this returns: the metadata
    /// quorum's log and vote.
    fn write_batch_synced(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError>;
    /// Pairs with `start <= key < end`, in key order.
    fn scan_range(&self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// The pair with the greatest key that starts with `prefix`.
    fn last_with_prefix(&self, prefix: &str) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// All pairs whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// An in-memory store for tests of the layers above.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MetaStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.lock_or_recover().get(key).cloned())
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.map
            .lock_or_recover()
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map.lock_or_recover().remove(key);
        Ok(())
    }

    fn write_batch(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        let mut map = self.map.lock_or_recover();
        for (key, value) in writes {
            match value {
                Some(v) => map.insert(key.clone(), v.clone()),
                None => map.remove(key),
            };
        }
        Ok(())
    }

    fn write_batch_synced(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        self.write_batch(writes)
    }

    fn scan_range(&self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let map = self.map.lock_or_recover();
        Ok(map
            .range(start.to_string()..end.to_string())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn last_with_prefix(&self, prefix: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let map = self.map.lock_or_recover();
        Ok(map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .last()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let map = self.map.lock_or_recover();
        Ok(map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
