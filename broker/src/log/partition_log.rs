//! The log of one partition: an ordered set of segments, the last one active.
//!
//! Appends come in two steps. [`PartitionLog::prepare`] is pure and runs outside any lock:
//! it validates the batches (CRC, framing, sizes, keys on compacted topics) and applies the
//! topic's `compression.type` and `message.timestamp.type`. [`PartitionLog::append`] runs
//! under the partition lock: it checks producer sequences, assigns offsets and writes.
//! Reads are planned under the lock ([`PartitionLog::plan_read`]) and the bytes read after
//! it is released, because segment files only grow at the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::protocol::records::{self, BatchHeader};

use super::producer_state::{ProducerState, SequenceCheck};
use super::segment::{whole_batches_len, Segment};
use super::{LogError, TopicConfig};

/// The offsets a produce got, and whether it was a retried duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppend {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The LogAppendTime stamped, or -1 for CreateTime topics.
    pub log_append_time_ms: i64,
    pub record_count: i64,
    pub duplicate: bool,
    /// The active segment was rolled by this append.
    pub rolled: bool,
}

/// Batches validated and ready to append. Unless the broker had to rewrite a batch
/// (recompression, LogAppendTime), its bytes are a slice of the request frame: the append
/// writes them from there, patching only the offset and epoch header in a small buffer.
pub struct PreparedAppend {
    batches: Vec<(Bytes, BatchHeader)>,
    log_append_time_ms: i64,
}

/// How a partition log is opened.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub config: TopicConfig,
    /// Whether the last shutdown was clean; if not, the active segment is recovered.
    pub clean_shutdown: bool,
    pub leader_epoch: i32,
}

/// Where to read fetched bytes from, decided under the lock.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    file: Arc<File>,
    position: u64,
    length: usize,
    max_offset: i64,
    max_bytes: usize,
}

/// Whole batches read for a fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchedData {
    pub records: Bytes,
}

/// The result of a timestamp lookup: an offset and the timestamp found there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampLookup {
    pub offset: i64,
    pub timestamp: i64,
}

pub struct PartitionLog {
    dir: PathBuf,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    config: TopicConfig,
    producers: ProducerState,
    leader_epoch: i32,
    unflushed_messages: i64,
    /// Files written since the last fsync (rolled segments and the active one).
    unflushed_files: Vec<Arc<File>>,
    last_flush_ms: i64,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering the active segment after an
    /// unclean shutdown and rebuilding producer state from `checkpoint` plus the batches
    /// written after it.
    pub fn open(
        dir: &Path,
        options: LogOptions,
        checkpoint: Option<(i64, ProducerState)>,
        now_ms: i64,
    ) -> Result<PartitionLog, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
            let entry = entry.map_err(|e| LogError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|b| b.parse::<i64>().ok())
            {
                bases.push(base);
            } else if name.ends_with(".deleted")
                || name.ends_with(".cleaned")
                || name.ends_with(".swap")
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();
        let interval = options.config.index_interval_bytes;
        let mut segments = BTreeMap::new();
        for (i, base) in bases.iter().enumerate() {
            let recover = !options.clean_shutdown && i + 1 == bases.len();
            segments.insert(*base, Segment::open(dir, *base, recover, interval)?);
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0, now_ms)?);
        }
        write_leader_epoch_checkpoint(dir, options.leader_epoch)?;
        let log_start_offset = *segments.keys().next().expect("one segment");
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            segments,
            log_start_offset,
            config: options.config,
            producers: ProducerState::default(),
            leader_epoch: options.leader_epoch,
            unflushed_messages: 0,
            unflushed_files: Vec::new(),
            last_flush_ms: now_ms,
        };
        log.rebuild_producer_state(checkpoint)?;
        Ok(log)
    }

    fn rebuild_producer_state(
        &mut self,
        checkpoint: Option<(i64, ProducerState)>,
    ) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        let (mut from, state) = match checkpoint {
            Some((offset, state)) if offset <= leo && offset >= self.log_start_offset => {
                (offset, state)
            }
            _ => (self.log_start_offset, ProducerState::default()),
        };
        self.producers = state;
        for segment in self.segments.values() {
            if segment.next_offset <= from {
                continue;
            }
            let mut position = segment.lookup_position(from);
            while let Some(header) = segment.header_at(position)? {
                if header.base_offset >= from && header.has_producer_id() {
                    self.producers.record(&header);
                }
                position += header.total_bytes() as u64;
            }
            from = segment.next_offset;
        }
        Ok(())
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: TopicConfig) {
        self.config = config;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }

    /// Validates and transforms a produced record set; touches no state.
    pub fn prepare(
        config: &TopicConfig,
        records: Bytes,
        now_ms: i64,
    ) -> Result<PreparedAppend, LogError> {
        let headers = records::validate_record_set(&records)?;
        let mut batches = Vec::with_capacity(headers.len());
        let mut position = 0usize;
        for header in headers {
            let total = header.total_bytes();
            let raw = records.slice(position..position + total);
            position += total;
            if total > config.max_message_bytes.max(0) as usize {
                return Err(LogError::MessageTooLarge {
                    size: total,
                    max: config.max_message_bytes,
                });
            }
            if config.compact {
                check_keys(&raw, &header)?;
            }
            let recompressed = match config.compression {
                Some(target) if target != header.compression()? => {
                    Some(records::recompress(&raw, &header, target)?)
                }
                _ => None,
            };
            let batch = match (recompressed, config.log_append_time) {
                (None, false) => raw,
                (rewritten, _) => {
                    let mut owned = rewritten.unwrap_or_else(|| BytesMut::from(&raw[..]));
                    if config.log_append_time {
                        records::stamp_log_append_time(&mut owned, now_ms);
                    }
                    owned.freeze()
                }
            };
            let header = BatchHeader::parse(&batch)?;
            batches.push((batch, header));
        }
        Ok(PreparedAppend {
            batches,
            log_append_time_ms: if config.log_append_time { now_ms } else { -1 },
        })
    }

    /// Appends prepared batches: producer sequences checked, offsets assigned, bytes written.
    pub fn append(&mut self, prepared: PreparedAppend, now_ms: i64) -> Result<LogAppend, LogError> {
        // Every batch is checked before any is written, so a refused request appends nothing.
        let mut checks = Vec::with_capacity(prepared.batches.len());
        for (_, header) in &prepared.batches {
            checks.push(if header.has_producer_id() {
                self.producers.check(header)?
            } else {
                SequenceCheck::Append
            });
        }
        let mut result = LogAppend {
            base_offset: -1,
            last_offset: -1,
            log_append_time_ms: prepared.log_append_time_ms,
            record_count: 0,
            duplicate: false,
            rolled: false,
        };
        for ((batch, header), check) in prepared.batches.into_iter().zip(checks) {
            if let SequenceCheck::Duplicate(original) = check {
                result.duplicate = true;
                if result.base_offset < 0 {
                    result.base_offset = original.base_offset;
                }
                result.last_offset = original.last_offset;
                continue;
            }
            result.rolled |= self.maybe_roll(batch.len() as u64, now_ms)?;
            let base_offset = self.log_end_offset();
            let mut head = [0u8; records::PATCHED_HEADER_BYTES];
            head.copy_from_slice(&batch[..records::PATCHED_HEADER_BYTES]);
            records::assign_offset(&mut head, base_offset, self.leader_epoch);
            let header = BatchHeader {
                base_offset,
                ..header
            };
            let interval = self.config.index_interval_bytes;
            let rest = &batch[records::PATCHED_HEADER_BYTES..];
            self.active_mut().append(&head, rest, &header, interval)?;
            debug_assert_eq!(
                self.log_end_offset(),
                header.last_offset() + 1,
                "offsets must stay dense"
            );
            if header.has_producer_id() {
                self.producers.record(&header);
            }
            if result.base_offset < 0 {
                result.base_offset = base_offset;
            }
            result.last_offset = header.last_offset();
            result.record_count += header.record_count as i64;
        }
        if result.record_count > 0 {
            self.unflushed_messages += result.record_count;
            if self.unflushed_files.is_empty() {
                self.unflushed_files.push(self.active().file());
            }
        }
        Ok(result)
    }

    fn maybe_roll(&mut self, incoming_bytes: u64, now_ms: i64) -> Result<bool, LogError> {
        let active = self.active();
        let full = active.size() + incoming_bytes > self.config.segment_bytes;
        let old = now_ms.saturating_sub(active.created_ms) >= self.config.segment_ms;
        if active.is_empty() || !(full || old) {
            return Ok(false);
        }
        let base = active.next_offset;
        self.active_mut().seal()?;
        let segment = Segment::create(&self.dir, base, now_ms)?;
        self.unflushed_files.push(segment.file());
        self.segments.insert(base, segment);
        Ok(true)
    }

    /// Whether the flush policy asks for an fsync now.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        self.unflushed_messages > 0
            && (self.unflushed_messages >= self.config.flush_messages
                || now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms)
    }

    /// Takes the files to fsync and the offset they cover; the caller fsyncs outside the lock.
    pub fn begin_flush(&mut self, now_ms: i64) -> (Vec<Arc<File>>, i64) {
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms;
        let mut files = std::mem::take(&mut self.unflushed_files);
        if files.is_empty() {
            files.push(self.active().file());
        }
        (files, self.log_end_offset())
    }

    /// Plans a read of whole batches from `offset`, none at or beyond `max_offset`.
    pub fn plan_read(
        &self,
        offset: i64,
        max_offset: i64,
        max_bytes: usize,
    ) -> Result<Option<ReadPlan>, LogError> {
        let leo = self.log_end_offset();
        if offset < self.log_start_offset || offset > leo {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        if offset >= max_offset {
            return Ok(None);
        }
        for segment in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            let segment = segment.1;
            if segment.next_offset <= offset {
                continue;
            }
            let Some(location) = segment.find_batch(offset)? else {
                continue;
            };
            let available = (segment.size() - location.position) as usize;
            let length = available.min(max_bytes.max(location.header.total_bytes()));
            return Ok(Some(ReadPlan {
                file: segment.file(),
                position: location.position,
                length,
                max_offset,
                max_bytes,
            }));
        }
        Ok(None)
    }

    /// Finds the first offset whose timestamp is at or after `target_ms`.
    pub fn lookup_timestamp(&self, target_ms: i64) -> Result<Option<TimestampLookup>, LogError> {
        for segment in self.segments.values() {
            if segment.max_timestamp < target_ms {
                continue;
            }
            let mut position = segment.lookup_time_position(target_ms);
            while let Some(header) = segment.header_at(position)? {
                if header.max_timestamp >= target_ms && header.base_offset >= self.log_start_offset
                {
                    let batch =
                        segment.read_batch(&super::segment::BatchLocation { header, position })?;
                    if let Some((offset, timestamp)) =
                        records::find_timestamp(&batch, &header, target_ms)?
                    {
                        return Ok(Some(TimestampLookup { offset, timestamp }));
                    }
                }
                position += header.total_bytes() as u64;
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<TimestampLookup>, LogError> {
        let Some(segment) = self
            .segments
            .values()
            .filter(|s| s.max_timestamp_batch_offset >= 0)
            .max_by_key(|s| s.max_timestamp)
        else {
            return Ok(None);
        };
        let Some(location) = segment.find_batch(segment.max_timestamp_batch_offset)? else {
            return Ok(None);
        };
        let batch = segment.read_batch(&location)?;
        let offset = records::offset_of_max_timestamp(&batch, &location.header)?;
        Ok(Some(TimestampLookup {
            offset,
            timestamp: segment.max_timestamp,
        }))
    }

    /// Producer state for a checkpoint, with the offset it is valid up to.
    pub fn producer_checkpoint(&self) -> (i64, Vec<u8>) {
        (self.log_end_offset(), self.producers.encode())
    }

    /// Prepares a clean close: the active segment's time index gets its final entry.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.active_mut().seal()
    }
}

impl ReadPlan {
    /// Reads the planned bytes (outside the partition lock) and trims them to whole batches.
    pub fn read(self) -> Result<FetchedData, LogError> {
        let mut buf = BytesMut::zeroed(self.length);
        let mut filled = 0;
        while filled < self.length {
            match self
                .file
                .read_at(&mut buf[filled..], self.position + filled as u64)
            {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LogError::io(Path::new("segment"), e)),
            }
        }
        buf.truncate(filled);
        let keep = whole_batches_len(&buf, self.max_offset, self.max_bytes);
        buf.truncate(keep);
        Ok(FetchedData {
            records: buf.freeze(),
        })
    }
}

/// Compacted topics need a key on every record, as Kafka's validator demands.
fn check_keys(batch: &[u8], header: &BatchHeader) -> Result<(), LogError> {
    if header.is_control() {
        return Ok(());
    }
    let inflated = records::inflate_records(batch, header)?;
    let mut missing = false;
    records::walk_records(&inflated, header.record_count, |r| {
        missing |= r.key.is_none();
        Ok(())
    })?;
    if missing {
        return Err(LogError::CompactedWithoutKey);
    }
    Ok(())
}

/// Kafka's `leader-epoch-checkpoint`: version 0, one entry per epoch (epoch start offset).
fn write_leader_epoch_checkpoint(dir: &Path, leader_epoch: i32) -> Result<(), LogError> {
    let path = dir.join("leader-epoch-checkpoint");
    if path.exists() {
        return Ok(());
    }
    std::fs::write(&path, format!("0\n1\n{leader_epoch} 0\n")).map_err(|e| LogError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    fn config(overrides: &[(&str, &str)]) -> TopicConfig {
        let broker = BrokerConfig::load_from(&[], &[]).unwrap();
        let map = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TopicConfig::resolve(&broker, map)
    }

    fn options(config: TopicConfig, clean_shutdown: bool) -> LogOptions {
        LogOptions {
            config,
            clean_shutdown,
            leader_epoch: 0,
        }
    }

    fn append(
        log: &mut PartitionLog,
        values: &[&[u8]],
        producer: (i64, i16, i32),
    ) -> Result<LogAppend, LogError> {
        let batch = records::build_batch(values, 1_000, producer).freeze();
        let prepared = PartitionLog::prepare(log.config(), batch, 5)?;
        log.append(prepared, 5)
    }

    #[test]
    fn offsets_are_dense_across_rolls_and_reads_return_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(
            dir.path(),
            options(config(&[("segment.bytes", "200")]), true),
            None,
            0,
        )
        .unwrap();
        for i in 0..20 {
            let a = append(&mut log, &[b"value-value", b"x"], (-1, -1, -1)).unwrap();
            assert_eq!(a.base_offset, i * 2);
        }
        assert_eq!(log.log_end_offset(), 40);
        assert!(log.segments.len() > 1);
        let data = log.plan_read(7, 40, 1).unwrap().unwrap().read().unwrap();
        let header = BatchHeader::parse(&data.records).unwrap();
        assert_eq!(header.base_offset, 6);
        assert_eq!(data.records.len(), header.total_bytes());
        assert!(log.plan_read(41, 41, 100).is_err());
        assert!(log.plan_read(40, 40, 100).unwrap().is_none());
    }

    #[test]
    fn torn_tail_is_truncated_and_producer_state_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log =
                PartitionLog::open(dir.path(), options(config(&[]), true), None, 0).unwrap();
            append(&mut log, &[b"a"], (9, 0, 0)).unwrap();
            append(&mut log, &[b"b"], (9, 0, 1)).unwrap();
        }
        let log_file = dir.path().join("00000000000000000000.log");
        let len = std::fs::metadata(&log_file).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&log_file)
            .unwrap();
        file.set_len(len - 3).unwrap();
        let mut log = PartitionLog::open(dir.path(), options(config(&[]), false), None, 0).unwrap();
        assert_eq!(log.log_end_offset(), 1);
        // The first batch is a duplicate, the lost one appends again at offset 1.
        assert!(append(&mut log, &[b"a"], (9, 0, 0)).unwrap().duplicate);
        assert_eq!(append(&mut log, &[b"b"], (9, 0, 1)).unwrap().base_offset, 1);
    }

    #[test]
    fn compacted_topics_refuse_records_without_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(
            dir.path(),
            options(config(&[("cleanup.policy", "compact")]), true),
            None,
            0,
        )
        .unwrap();
        assert!(matches!(
            append(&mut log, &[b"v"], (-1, -1, -1)),
            Err(LogError::CompactedWithoutKey)
        ));
        assert_eq!(log.log_end_offset(), 0);
    }
}
