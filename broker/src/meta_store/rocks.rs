//! The RocksDB-backed [`MetaStore`], in `<log.dirs>/__weir_meta`.
//!
//! Single writes are synced (WAL fsync) because what lands here is what the broker
//! acknowledged as created: a topic, a config change, a producer id block. Batches are the
//! group coordinator's view of `__consumer_offsets`, which that log rebuilds, so they are not.

use std::path::Path;

use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::{MetaStore, StoreError};

pub struct RocksStore {
    db: DB,
}

impl RocksStore {
    pub fn open(path: &Path) -> Result<RocksStore, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_max_background_jobs(1);
        options.set_keep_log_file_num(2);
        options.set_max_log_file_size(1 << 20);
        options.set_write_buffer_size(4 << 20);
        let db = DB::open(&options, path)
            .map_err(|e| StoreError(format!("open {}: {e}", path.display())))?;
        Ok(RocksStore { db })
    }

    /// Reads one key without changing anything in the store's directory: opened read-only,
    /// with RocksDB's info log in the temporary directory. None if there is no store yet.
    /// Start-up reads the cluster id this way, before it decides to open the store at all.
    pub fn peek(path: &Path, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !path.join("CURRENT").exists() {
            return Ok(None);
        }
        let mut options = Options::default();
        options.set_db_log_dir(std::env::temp_dir());
        options.set_keep_log_file_num(1);
        let db = DB::open_for_read_only(&options, path, false)
            .map_err(|e| StoreError(format!("open {} read-only: {e}", path.display())))?;
        db.get(key.as_bytes())
            .map_err(|e| StoreError(e.to_string()))
    }

    fn synced() -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(true);
        options
    }
}

fn batch_of(writes: &[(String, Option<Vec<u8>>)]) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for (key, value) in writes {
        match value {
            Some(v) => batch.put(key.as_bytes(), v),
            None => batch.delete(key.as_bytes()),
        }
    }
    batch
}

impl MetaStore for RocksStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get(key.as_bytes())
            .map_err(|e| StoreError(e.to_string()))
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_opt(key.as_bytes(), value, &Self::synced())
            .map_err(|e| StoreError(e.to_string()))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.db
            .delete_opt(key.as_bytes(), &Self::synced())
            .map_err(|e| StoreError(e.to_string()))
    }

    fn write_batch(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        let batch = batch_of(writes);
        // Written to the WAL without fsync: see the trait. The group coordinator replays
        // `__consumer_offsets` beyond the applied offset each batch carries.
        self.db.write(batch).map_err(|e| StoreError(e.to_string()))
    }

    fn write_batch_synced(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        self.db
            .write_opt(batch_of(writes), &Self::synced())
            .map_err(|e| StoreError(e.to_string()))
    }

    fn scan_range(&self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(start.as_bytes(), Direction::Forward))
        {
            let (key, value) = item.map_err(|e| StoreError(e.to_string()))?;
            if *key >= *end.as_bytes() {
                break;
            }
            out.push((String::from_utf8_lossy(&key).into_owned(), value.to_vec()));
        }
        Ok(out)
    }

    fn last_with_prefix(&self, prefix: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        // Keys with the prefix sort before the prefix with its last byte raised.
        let mut upper = prefix.as_bytes().to_vec();
        let last = upper.last_mut().expect("a non-empty prefix");
        *last += 1;
        for item in self
            .db
            .iterator(IteratorMode::From(&upper, Direction::Reverse))
        {
            let (key, value) = item.map_err(|e| StoreError(e.to_string()))?;
            if *key >= *upper {
                continue;
            }
            return Ok(key
                .starts_with(prefix.as_bytes())
                .then(|| (String::from_utf8_lossy(&key).into_owned(), value.to_vec())));
        }
        Ok(None)
    }

    fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(prefix.as_bytes(), Direction::Forward))
        {
            let (key, value) = item.map_err(|e| StoreError(e.to_string()))?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            out.push((String::from_utf8_lossy(&key).into_owned(), value.to_vec()));
        }
        Ok(out)
    }
}
