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

use super::cleaner::{CleanPlan, CleanSource, CleanedSegment, CLEANED_SUFFIX, SWAP_SUFFIX};
use super::producer_state::{ProducerState, SequenceCheck};
use super::segment::{delete_files, whole_batches_len, OpenMode, Segment};
use super::{segment_file_name, LogError, TopicConfig};

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
    /// The log start offset from `log-start-offset-checkpoint`, if recorded.
    pub log_start_offset: Option<i64>,
    /// The recovery point from `recovery-point-offset-checkpoint`: everything below it was
    /// fsynced. After an unclean shutdown every segment that reaches past it is recovered.
    pub recovery_point: Option<i64>,
}

/// Where to read fetched bytes from, decided under the lock.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    file: Arc<File>,
    position: u64,
    length: usize,
    max_offset: i64,
    max_bytes: usize,
    first_batch_bytes: usize,
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
    /// Shared so that each produce reads it without copying the overrides map.
    config: Arc<TopicConfig>,
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
        let swapped = finish_interrupted_cleaning(dir)?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
            let entry = entry.map_err(|e| LogError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|b| b.parse::<i64>().ok())
            {
                bases.push(base);
            } else if name.ends_with(".deleted") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();
        let interval = options.config.index_interval_bytes;
        let recovery_point = options.recovery_point.unwrap_or(0);
        let mut segments = BTreeMap::new();
        // After a crash, what recovery read above the recovery point may still be only in
        // the page cache: those segments are fsynced by the first flush, before the
        // recovery point may pass them.
        let mut unflushed_files = Vec::new();
        for (i, base) in bases.iter().enumerate() {
            // A segment ends where the next one starts; the last one has no known end.
            let flushed_whole = bases.get(i + 1).is_some_and(|end| *end <= recovery_point);
            let mode = if swapped.contains(base) {
                OpenMode::Recover
            } else if options.clean_shutdown {
                OpenMode::TrustIndexes
            } else if flushed_whole {
                OpenMode::RescanHeaders
            } else {
                OpenMode::Recover
            };
            let segment = Segment::open(dir, *base, mode, interval)?;
            let recovered = mode == OpenMode::Recover && !options.clean_shutdown;
            if recovered {
                unflushed_files.push(segment.file());
            }
            let torn = segment.torn_bytes > 0;
            segments.insert(*base, segment);
            if !recovered && torn {
                tracing::error!(
                    dir = %dir.display(),
                    segment = base,
                    "a segment below the recovery point had a corrupt tail; later segments kept"
                );
            }
            if recovered && torn && i + 1 < bases.len() {
                // As Kafka's recovery does: what follows a torn segment cannot follow the
                // log's new end, so it goes (it was never flushed, or it would be below
                // the recovery point).
                tracing::warn!(
                    dir = %dir.display(),
                    segment = base,
                    later = bases.len() - i - 1,
                    "deleting the segments after a torn one"
                );
                for later in &bases[i + 1..] {
                    delete_files(dir, *later)?;
                }
                break;
            }
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0, now_ms)?);
        }
        write_leader_epoch_checkpoint(dir, options.leader_epoch)?;
        let first_base = *segments.keys().next().expect("one segment");
        let log_end_offset = segments
            .values()
            .next_back()
            .expect("one segment")
            .next_offset;
        let log_start_offset = options
            .log_start_offset
            .unwrap_or(first_base)
            .clamp(first_base, log_end_offset);
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            segments,
            log_start_offset,
            config: Arc::new(options.config),
            producers: ProducerState::default(),
            leader_epoch: options.leader_epoch,
            unflushed_messages: 0,
            unflushed_files,
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

    pub fn config(&self) -> &Arc<TopicConfig> {
        &self.config
    }

    pub fn set_config(&mut self, config: TopicConfig) {
        self.config = Arc::new(config);
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
        let validated = records::validate_produced(&records)?;
        let header = validated.header;
        let total = header.total_bytes();
        if total > config.max_message_bytes.max(0) as usize {
            return Err(LogError::MessageTooLarge {
                size: total,
                max: config.max_message_bytes,
            });
        }
        // Compacted topics need a key on every record, as Kafka's validator demands.
        if config.compact && !validated.keyless.is_empty() {
            return Err(LogError::CompactedWithoutKey {
                indexes: validated.keyless,
            });
        }
        let raw = records.slice(..total);
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
        let batches = vec![(batch, header)];
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
                // Kafka answers a retried batch with the original's offsets and, as its log
                // append time, the timestamp it kept for that batch, whatever the topic's
                // timestamp type.
                result.log_append_time_ms = original.timestamp_ms;
                result.last_offset = original.last_offset;
                continue;
            }
            result.rolled |= self
                .maybe_roll(batch.len() as u64, now_ms)
                // A failed roll changes nothing that matters: the old segment stays
                // active, and an empty new segment file left behind is valid at the end.
                .map_err(LogError::out_of_space_as_no_space)?;
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
            assert_eq!(
                self.log_end_offset(),
                header.last_offset() + 1,
                "offsets must stay dense"
            );
            self.unflushed_messages += header.record_count as i64;
            if self.unflushed_files.is_empty() {
                self.unflushed_files.push(self.active().file());
            }
            if header.has_producer_id() {
                self.producers.append(&header);
            }
            if result.base_offset < 0 {
                result.base_offset = base_offset;
            }
            result.last_offset = header.last_offset();
            result.record_count += header.record_count as i64;
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
        self.roll(now_ms)?;
        Ok(true)
    }

    /// Seals the active segment and starts a new one at the log end offset.
    fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        let base = self.active().next_offset;
        self.active_mut().seal()?;
        let segment = Segment::create(&self.dir, base, now_ms)?;
        self.unflushed_files.push(segment.file());
        self.segments.insert(base, segment);
        Ok(())
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

    /// DeleteRecords: moves the log start offset up to `offset`, which the caller checked
    /// is at most the high watermark. Whole segments below it go at the next retention pass.
    pub fn advance_log_start_offset(&mut self, offset: i64) -> i64 {
        self.log_start_offset = self.log_start_offset.max(offset.min(self.log_end_offset()));
        self.log_start_offset
    }

    /// Retention: deletes the oldest segments that are wholly below the log start offset,
    /// older than `retention.ms`, or beyond `retention.bytes`, as Kafka does (a prefix of
    /// the log; the active segment too, after rolling a new one). Their files are renamed
    /// `.deleted`; the caller removes them after `file.delete.delay.ms`.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<Vec<PathBuf>, LogError> {
        let config = Arc::clone(&self.config);
        let mut remaining_bytes = self.size_bytes();
        let active_base = self.active().base_offset;
        let mut doomed = Vec::new();
        for segment in self.segments.values() {
            // A clean can empty a segment; it holds nothing and must not block the prefix.
            let emptied = segment.is_empty() && segment.base_offset != active_base;
            let below_start = segment.next_offset <= self.log_start_offset && !segment.is_empty();
            let too_old = config.delete
                && config.retention_ms >= 0
                && segment.max_timestamp >= 0
                && segment.max_timestamp < now_ms.saturating_sub(config.retention_ms);
            let too_big = config.delete
                && config.retention_bytes >= 0
                && remaining_bytes.saturating_sub(segment.size()) as i64 >= config.retention_bytes
                && !segment.is_empty();
            if !(emptied || below_start || too_old || too_big) {
                break;
            }
            remaining_bytes -= segment.size();
            doomed.push(segment.base_offset);
        }
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        if doomed.len() == self.segments.len() {
            self.roll(now_ms)?;
        }
        let mut files = Vec::new();
        for base in doomed {
            if let Some(segment) = self.segments.remove(&base) {
                files.extend(segment.mark_deleted());
            }
        }
        let first_base = *self
            .segments
            .keys()
            .next()
            .expect("a log always has a segment");
        self.log_start_offset = self.log_start_offset.max(first_base);
        Ok(files)
    }

    /// Plans a clean of this compacted log, or None if it has nothing worth cleaning.
    pub fn plan_clean(
        &self,
        now_ms: i64,
        cleaned_up_to: i64,
        high_watermark: i64,
    ) -> Option<CleanPlan> {
        let config = &self.config;
        if !config.compact {
            return None;
        }
        let active_base = self.active().base_offset;
        let lag_horizon = now_ms.saturating_sub(config.min_compaction_lag_ms);
        let sources: Vec<&Segment> = self
            .segments
            .values()
            .take_while(|s| {
                s.base_offset != active_base
                    && s.next_offset <= high_watermark
                    && s.max_timestamp <= lag_horizon
            })
            .filter(|s| !s.is_empty())
            .collect();
        let total: u64 = sources.iter().map(|s| s.size()).sum();
        let dirty: u64 = sources
            .iter()
            .filter(|s| s.next_offset > cleaned_up_to)
            .map(|s| s.size())
            .sum();
        if total == 0
            || dirty == 0
            || (dirty as f64 / total as f64) < config.min_cleanable_dirty_ratio
        {
            return None;
        }
        Some(CleanPlan {
            dir: self.dir.clone(),
            end_offset: sources
                .last()
                .map(|s| s.next_offset)
                .unwrap_or(cleaned_up_to),
            sources: sources
                .into_iter()
                .map(|s| CleanSource {
                    base_offset: s.base_offset,
                    file: s.file(),
                    size: s.size(),
                })
                .collect(),
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
        })
    }

    /// Swaps cleaned segments in (step 2 of a clean). A segment deleted by retention while
    /// it was being cleaned is skipped and its swap file removed.
    pub fn install_cleaned(&mut self, cleaned: Vec<CleanedSegment>) -> Result<(), LogError> {
        let active_base = self.active().base_offset;
        let interval = self.config.index_interval_bytes;
        for segment in cleaned {
            if segment.base_offset == active_base
                || !self.segments.contains_key(&segment.base_offset)
            {
                let _ = std::fs::remove_file(&segment.swap_path);
                continue;
            }
            let log_path = self
                .dir
                .join(segment_file_name(segment.base_offset, ".log"));
            std::fs::rename(&segment.swap_path, &log_path)
                .map_err(|e| LogError::io(&log_path, e))?;
            let reopened = Segment::open_scanned(&self.dir, &segment.scan, interval)?;
            self.segments.insert(segment.base_offset, reopened);
        }
        Ok(())
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
                first_batch_bytes: location.header.total_bytes(),
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

    /// ListOffsets v0's answer, by Kafka 3's `legacyFetchOffsetsBefore`: the start of each
    /// segment (never below the log start) with the time it was last written, and the log
    /// end offset "now" if the active segment has data; from the latest entry (LATEST), the
    /// first (EARLIEST) or the latest written at or before `timestamp`, up to `max_num`
    /// offsets going back, largest first.
    pub fn offsets_before(&self, timestamp: i64, max_num: i32, now_ms: i64) -> Vec<i64> {
        let mut entries: Vec<(i64, i64)> = self
            .segments
            .values()
            .map(|s| {
                (
                    s.base_offset.max(self.log_start_offset),
                    s.last_modified_ms(),
                )
            })
            .collect();
        if self
            .segments
            .values()
            .next_back()
            .is_some_and(|s| !s.is_empty())
        {
            entries.push((self.log_end_offset(), now_ms));
        }
        let start = match timestamp {
            -1 => entries.len().checked_sub(1),
            -2 => (!entries.is_empty()).then_some(0),
            t => entries.iter().rposition(|&(_, modified)| modified <= t),
        };
        let Some(start) = start else {
            return Vec::new();
        };
        let count = (max_num.max(0) as usize).min(start + 1);
        let mut offsets: Vec<i64> = entries[start + 1 - count..=start]
            .iter()
            .map(|&(offset, _)| offset)
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets
    }

    /// Forgets producers idle for longer than `producer.id.expiration.ms`, so producer
    /// state stays bounded however many producers come and go.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.expire(now_ms, expiration_ms);
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
    /// The size of the first batch, which the plan reads whole even above `max_bytes`.
    pub fn first_batch_bytes(&self) -> usize {
        self.first_batch_bytes
    }

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

/// Completes a clean that a crash interrupted: a complete `.log.swap` replaces its
/// `.log`; an incomplete `.log.cleaned` is deleted. Returns the bases that were swapped,
/// whose indexes must be rebuilt.
fn finish_interrupted_cleaning(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut swapped = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(CLEANED_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        } else if let Some(base) = name
            .strip_suffix(SWAP_SUFFIX)
            .and_then(|b| b.parse::<i64>().ok())
        {
            let log_path = dir.join(segment_file_name(base, ".log"));
            std::fs::rename(entry.path(), &log_path).map_err(|e| LogError::io(&log_path, e))?;
            tracing::info!(segment = %log_path.display(), "installed a cleaned segment left by an interrupted clean");
            swapped.push(base);
        }
    }
    Ok(swapped)
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
            log_start_offset: None,
            recovery_point: None,
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
            options(config(&[("internal.segment.bytes", "200")]), true),
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

    /// Checks a segment's index files as kafka-dump-log.sh does: every offset entry names
    /// the last offset of the batch at its position; every time entry names the last
    /// offset of a batch whose max timestamp is the entry's timestamp.
    fn assert_indexes_are_kafkas(dir: &Path, base: i64) {
        let log = std::fs::read(dir.join(segment_file_name(base, ".log"))).unwrap();
        let mut batches = Vec::new();
        let mut position = 0;
        while position < log.len() {
            let header = BatchHeader::parse(&log[position..]).unwrap();
            batches.push((position, header));
            position += header.total_bytes();
        }
        let index = std::fs::read(dir.join(segment_file_name(base, ".index"))).unwrap();
        assert!(!index.is_empty());
        for entry in index.chunks_exact(8) {
            let offset = base + u32::from_be_bytes(entry[..4].try_into().unwrap()) as i64;
            let at = u32::from_be_bytes(entry[4..].try_into().unwrap()) as usize;
            let (_, header) = batches
                .iter()
                .find(|(p, _)| *p == at)
                .expect("a batch boundary");
            assert_eq!(
                header.last_offset(),
                offset,
                "offset entry at position {at}"
            );
        }
        let times = std::fs::read(dir.join(segment_file_name(base, ".timeindex"))).unwrap();
        assert!(!times.is_empty());
        for entry in times.chunks_exact(12) {
            let ts = i64::from_be_bytes(entry[..8].try_into().unwrap());
            let offset = base + u32::from_be_bytes(entry[8..].try_into().unwrap()) as i64;
            let (_, header) = batches
                .iter()
                .find(|(_, h)| h.last_offset() == offset)
                .expect("a batch ends at the time entry's offset");
            assert_eq!(header.max_timestamp, ts, "time entry for offset {offset}");
        }
    }

    #[test]
    fn indexes_are_kafkas_also_with_timestamps_going_backwards() {
        let dir = tempfile::tempdir().unwrap();
        let topic_config = || {
            config(&[
                ("internal.segment.bytes", "600"),
                ("index.interval.bytes", "1"),
            ])
        };
        let mut log =
            PartitionLog::open(dir.path(), options(topic_config(), true), None, 0).unwrap();
        for (i, ts) in [5_000, 9_000, 7_000, 8_000, 9_500, 3_000, 12_000, 11_000]
            .into_iter()
            .cycle()
            .take(24)
            .enumerate()
        {
            let key = format!("k{i}");
            keyed(&mut log, &[(&key, Some("value")), ("x", Some("y"))], ts);
        }
        assert!(log.segments.len() > 2);
        let bases: Vec<i64> = log.segments.keys().copied().collect();
        for base in &bases {
            assert_indexes_are_kafkas(dir.path(), *base);
        }
        // After a clean shutdown the indexes are loaded as they are; after one written by
        // an older weir (offset entries keyed by base offset), they are rebuilt.
        drop(log);
        let first = dir.path().join(segment_file_name(bases[0], ".index"));
        let mut old = std::fs::read(&first).unwrap();
        old.truncate(8);
        old[..4].copy_from_slice(&0u32.to_be_bytes());
        std::fs::write(&first, &old).unwrap();
        let log = PartitionLog::open(dir.path(), options(topic_config(), true), None, 0).unwrap();
        for base in log.segments.keys() {
            assert_indexes_are_kafkas(dir.path(), *base);
        }
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
            Err(LogError::CompactedWithoutKey { indexes }) if indexes == [0]
        ));
        assert_eq!(log.log_end_offset(), 0);
    }

    fn keyed(
        log: &mut PartitionLog,
        entries: &[(&str, Option<&str>)],
        timestamp_ms: i64,
    ) -> LogAppend {
        let records: Vec<records::KeyValue> = entries
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.map(str::as_bytes)))
            .collect();
        let batch = records::build_keyed_batch(&records, timestamp_ms, (-1, -1, -1)).freeze();
        let prepared = PartitionLog::prepare(log.config(), batch, timestamp_ms).unwrap();
        log.append(prepared, timestamp_ms).unwrap()
    }

    /// Every (offset, key, value) readable from the start of the log.
    /// The stored bytes of the batches in `[from, to)`.
    fn read_raw(log: &PartitionLog, from: i64, to: i64) -> Bytes {
        log.plan_read(from, to, 1 << 20)
            .unwrap()
            .unwrap()
            .read()
            .unwrap()
            .records
    }

    fn read_all(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while let Some(plan) = log
            .plan_read(offset, log.log_end_offset(), 1 << 20)
            .unwrap()
        {
            let data = plan.read().unwrap().records;
            let mut rest = &data[..];
            while !rest.is_empty() {
                let header = BatchHeader::parse(rest).unwrap();
                let batch = &rest[..header.total_bytes()];
                records::validate_stored_batch(batch, &header).unwrap();
                let inflated = records::inflate_records(batch, &header).unwrap();
                records::walk_records(
                    &inflated,
                    header.record_count,
                    records::OffsetDeltas::Increasing,
                    |r| {
                        let o = header.base_offset + r.offset_delta as i64;
                        if o >= offset {
                            let text = |b: Option<&[u8]>| {
                                b.map(|b| String::from_utf8(b.to_vec()).unwrap())
                            };
                            out.push((o, text(r.key).unwrap(), text(r.value)));
                        }
                        Ok(())
                    },
                )
                .unwrap();
                offset = header.last_offset() + 1;
                rest = &rest[header.total_bytes()..];
            }
        }
        out
    }

    #[test]
    fn retention_by_size_and_delete_records_move_the_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&[
            ("internal.segment.bytes", "150"),
            ("retention.bytes", "400"),
        ]);
        let mut log = PartitionLog::open(dir.path(), options(config, true), None, 0).unwrap();
        for _ in 0..30 {
            append(&mut log, &[b"0123456789"], (-1, -1, -1)).unwrap();
        }
        let before = log.segments.len();
        let deleted = log.apply_retention(5).unwrap();
        assert!(
            !deleted.is_empty()
                && deleted
                    .iter()
                    .all(|p| p.exists() && p.to_string_lossy().ends_with(".deleted"))
        );
        assert!(log.segments.len() < before);
        assert!(log.size_bytes() <= 400 + 150);
        let start = log.log_start_offset();
        assert!(start > 0);
        assert!(matches!(
            log.plan_read(0, 30, 100),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.advance_log_start_offset(25), 25);
        assert!(
            log.apply_retention(5).unwrap().len() >= 3,
            "segments below the new start go"
        );
        assert_eq!(log.log_start_offset(), 25);
        assert!(matches!(
            log.plan_read(24, 30, 100),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert!(log.plan_read(25, 30, 100).unwrap().is_some());
    }

    #[test]
    fn retention_by_time_rolls_and_deletes_everything_expired() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&[("retention.ms", "1000")]);
        let mut log = PartitionLog::open(dir.path(), options(config, true), None, 0).unwrap();
        append(&mut log, &[b"old"], (-1, -1, -1)).unwrap(); // timestamp 1000
        assert!(
            log.apply_retention(1500).unwrap().is_empty(),
            "not yet expired"
        );
        assert!(!log.apply_retention(5000).unwrap().is_empty());
        assert_eq!(log.log_start_offset(), 1);
        assert_eq!(log.log_end_offset(), 1, "offsets continue after retention");
        assert_eq!(
            append(&mut log, &[b"new"], (-1, -1, -1))
                .unwrap()
                .base_offset,
            1
        );
    }

    #[test]
    fn compaction_keeps_the_latest_value_per_key_and_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&[
            ("cleanup.policy", "compact"),
            ("internal.segment.bytes", "120"),
            ("delete.retention.ms", "100"),
        ]);
        let mut log = PartitionLog::open(dir.path(), options(config, true), None, 0).unwrap();
        keyed(&mut log, &[("a", Some("a1")), ("b", Some("b1"))], 1000); // 0, 1
        keyed(&mut log, &[("a", Some("a2")), ("c", Some("c1"))], 1000); // 2, 3
        keyed(&mut log, &[("b", None)], 1000); // 4: tombstone, old
        keyed(&mut log, &[("c", Some("c2"))], 9000); // 5
        keyed(&mut log, &[("d", Some("d1"))], 9000); // 6: active segment
        assert!(log.segments.len() >= 3);
        let plan = log
            .plan_clean(10_000, 0, log.log_end_offset())
            .expect("dirty enough");
        let cleaned = crate::log::cleaner::clean(&plan).unwrap();
        log.install_cleaned(cleaned).unwrap();
        let got = read_all(&log);
        let expect: Vec<(i64, String, Option<String>)> = vec![
            (2, "a".into(), Some("a2".into())),
            (5, "c".into(), Some("c2".into())),
            (6, "d".into(), Some("d1".into())),
        ];
        assert_eq!(got, expect, "latest per key, tombstone gone, offsets kept");
        assert_eq!(log.log_end_offset(), 7);
        // Reopening (indexes rebuilt from the cleaned files) reads the same.
        drop(log);
        let log =
            PartitionLog::open(dir.path(), options(config_compact(), false), None, 0).unwrap();
        assert_eq!(read_all(&log), expect);
    }

    fn config_compact() -> TopicConfig {
        config(&[
            ("cleanup.policy", "compact"),
            ("internal.segment.bytes", "120"),
        ])
    }

    #[test]
    fn an_interrupted_clean_leaves_old_or_new_never_half() {
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            PartitionLog::open(dir.path(), options(config_compact(), true), None, 0).unwrap();
        keyed(&mut log, &[("k", Some("v1")), ("j", Some("x"))], 1000);
        keyed(&mut log, &[("k", Some("v2")), ("j", Some("y"))], 1000);
        keyed(&mut log, &[("z", Some("z"))], 1000);
        let plan = log.plan_clean(2000, 0, log.log_end_offset()).unwrap();
        let cleaned = crate::log::cleaner::clean(&plan).unwrap();
        // Crash after the first segment's swap file was complete, before it was installed,
        // with a half-written clean of another segment lying around.
        let half = dir.path().join(format!(
            "{}{}",
            crate::log::segment_file_name(999, ""),
            crate::log::cleaner::CLEANED_SUFFIX
        ));
        std::fs::write(&half, b"torn").unwrap();
        drop(log);
        assert!(cleaned[0].swap_path.exists());
        let log =
            PartitionLog::open(dir.path(), options(config_compact(), false), None, 0).unwrap();
        assert!(!half.exists(), "incomplete clean discarded");
        assert!(!cleaned[0].swap_path.exists(), "complete swap installed");
        let got = read_all(&log);
        let latest_k = got.iter().rfind(|(_, k, _)| k == "k").unwrap();
        assert_eq!(latest_k.2.as_deref(), Some("v2"));
        let offsets: Vec<i64> = got.iter().map(|(o, _, _)| *o).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets increase: {offsets:?}"
        );
        assert_eq!(log.log_end_offset(), 5);
    }

    #[test]
    fn a_clean_reopen_loads_indexes_and_a_damaged_index_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let config = || {
            config(&[
                ("internal.segment.bytes", "400"),
                ("index.interval.bytes", "100"),
            ])
        };
        let mut log = PartitionLog::open(dir.path(), options(config(), true), None, 0).unwrap();
        for i in 0..60i64 {
            let values: Vec<Vec<u8>> = (0..(i % 3 + 1))
                .map(|j| format!("v{i}-{j}").into_bytes())
                .collect();
            let refs: Vec<&[u8]> = values.iter().map(|v| &v[..]).collect();
            let batch = records::build_batch(&refs, 1_000 + i * 10, (-1, -1, -1)).freeze();
            let prepared = PartitionLog::prepare(log.config(), batch, 0).unwrap();
            log.append(prepared, 0).unwrap();
        }
        log.close().unwrap();
        let leo = log.log_end_offset();
        let size = log.size_bytes();
        let max = log.max_timestamp().unwrap();
        let by_time = log.lookup_timestamp(1_305).unwrap();
        let segments = log.segments.len();
        let tail = read_raw(&log, leo - 3, leo);
        drop(log);
        for damage in [false, true] {
            if damage {
                let index = dir.path().join("00000000000000000000.index");
                let len = std::fs::metadata(&index).unwrap().len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&index)
                    .unwrap()
                    .set_len(len - 3)
                    .unwrap();
            }
            let mut log = PartitionLog::open(dir.path(), options(config(), true), None, 0).unwrap();
            assert_eq!(log.segments.len(), segments);
            assert_eq!(log.log_end_offset(), leo, "damaged index: {damage}");
            assert_eq!(log.size_bytes(), size);
            assert_eq!(log.max_timestamp().unwrap(), max);
            assert_eq!(log.lookup_timestamp(1_305).unwrap(), by_time);
            assert_eq!(
                log.plan_read(leo - 3, leo, 1 << 20)
                    .unwrap()
                    .unwrap()
                    .read()
                    .unwrap()
                    .records,
                tail
            );
            log.close().unwrap();
        }
        let mut log = PartitionLog::open(dir.path(), options(config(), true), None, 0).unwrap();
        let next = append(&mut log, &[b"after"], (-1, -1, -1)).unwrap();
        assert_eq!(next.base_offset, leo, "appends continue densely");
    }

    #[test]
    fn a_stale_index_never_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let config = || config(&[("internal.segment.bytes", "300")]);
        let mut log = PartitionLog::open(dir.path(), options(config(), true), None, 0).unwrap();
        for _ in 0..12 {
            append(&mut log, &[b"0123456789", b"abcdefghij"], (-1, -1, -1)).unwrap();
        }
        log.close().unwrap();
        let leo = log.log_end_offset();
        let all = read_raw(&log, 0, leo);
        drop(log);
        // As if a clean had installed new content and crashed before rewriting the index:
        // entries that are ordered and in range but point into the middle of a batch.
        let mut stale = Vec::new();
        for (rel, pos) in [(0u32, 0u32), (1, 7)] {
            stale.extend_from_slice(&rel.to_be_bytes());
            stale.extend_from_slice(&pos.to_be_bytes());
        }
        for clean_shutdown in [true, false] {
            std::fs::write(dir.path().join("00000000000000000000.index"), &stale).unwrap();
            let log =
                PartitionLog::open(dir.path(), options(config(), clean_shutdown), None, 0).unwrap();
            assert_eq!(log.log_end_offset(), leo);
            let read = read_raw(&log, 0, leo);
            assert_eq!(read, all, "clean shutdown: {clean_shutdown}");
            assert!(log.plan_read(1, leo, 1 << 20).unwrap().is_some());
        }
    }

    /// One step of the model test below.
    #[derive(Debug, Clone)]
    enum Op {
        /// A batch of records with these keys (0..8) and fresh values.
        Append(Vec<u8>),
        Tombstone(u8),
        Roll,
        /// DeleteRecords to this share (of 255) of the way from log start to log end.
        DeleteRecords(u8),
        Retention,
        Compact,
        Restart,
        /// A crash that tears the active segment this many bytes (mod its size) short.
        Crash(u16),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => proptest::collection::vec(0u8..8, 1..6).prop_map(Op::Append),
            1 => (0u8..8).prop_map(Op::Tombstone),
            1 => Just(Op::Roll),
            1 => any::<u8>().prop_map(Op::DeleteRecords),
            1 => Just(Op::Retention),
            1 => Just(Op::Compact),
            1 => Just(Op::Restart),
            1 => any::<u16>().prop_map(Op::Crash),
        ]
    }

    /// What the log must hold: every record appended and not torn off, by offset.
    #[derive(Debug, Default)]
    struct Model {
        records: BTreeMap<i64, (String, Option<String>)>,
        next_offset: i64,
        log_start: i64,
        /// Below this offset compaction may have removed records; above it none.
        cleaned_up_to: i64,
        values: usize,
    }

    impl Model {
        fn check(&self, log: &PartitionLog) {
            assert_eq!(log.log_end_offset(), self.next_offset, "log end offset");
            assert_eq!(log.log_start_offset(), self.log_start, "log start offset");
            let read = read_all(log);
            assert!(read.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
            for (offset, key, value) in &read {
                assert!(*offset >= self.log_start, "a record below the log start");
                let expected = self.records.get(offset).expect("a record the model has");
                assert_eq!((key, value), (&expected.0, &expected.1), "offset {offset}");
            }
            let present: std::collections::BTreeSet<i64> = read.iter().map(|r| r.0).collect();
            let dense_from = self.cleaned_up_to.max(self.log_start);
            for offset in dense_from..self.next_offset {
                assert!(
                    present.contains(&offset),
                    "offset {offset} missing where dense"
                );
            }
            let mut latest: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
            for (offset, (key, value)) in self.records.range(self.log_start..) {
                latest.insert(key, (*offset, value.is_some()));
            }
            for (key, (offset, live)) in latest {
                assert!(
                    !live || present.contains(&offset),
                    "latest value of {key} lost"
                );
            }
        }
    }

    fn apply(dir: &Path, log: &mut Option<PartitionLog>, model: &mut Model, op: Op, now_ms: i64) {
        let reopen = |clean: bool, model: &Model| {
            let mut options = options(config_model(), clean);
            options.log_start_offset = Some(model.log_start);
            PartitionLog::open(dir, options, None, now_ms).unwrap()
        };
        let current = log.as_mut().unwrap();
        match op {
            Op::Append(keys) => {
                let entries: Vec<(String, String)> = keys
                    .iter()
                    .map(|k| {
                        model.values += 1;
                        (format!("k{k}"), format!("v{}", model.values))
                    })
                    .collect();
                let borrowed: Vec<(&str, Option<&str>)> = entries
                    .iter()
                    .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                    .collect();
                let appended = keyed(current, &borrowed, 1_000);
                assert_eq!(appended.base_offset, model.next_offset, "dense on append");
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    model
                        .records
                        .insert(model.next_offset + i as i64, (k, Some(v)));
                }
                model.next_offset = appended.last_offset + 1;
            }
            Op::Tombstone(k) => {
                let key = format!("k{k}");
                let appended = keyed(current, &[(key.as_str(), None)], 1_000);
                model.records.insert(appended.base_offset, (key, None));
                model.next_offset = appended.last_offset + 1;
            }
            Op::Roll => {
                if !current.active().is_empty() {
                    current.roll(now_ms).unwrap();
                }
            }
            Op::DeleteRecords(share) => {
                let span = model.next_offset - model.log_start;
                let target = model.log_start + span * share as i64 / 255;
                let expected = model.log_start.max(target);
                model.log_start = current.advance_log_start_offset(target);
                assert_eq!(model.log_start, expected);
            }
            Op::Retention => {
                current.apply_retention(now_ms).unwrap();
                model.log_start = current.log_start_offset();
            }
            Op::Compact => {
                let leo = current.log_end_offset();
                if let Some(plan) = current.plan_clean(now_ms, 0, leo) {
                    let cleaned = crate::log::cleaner::clean(&plan).unwrap();
                    current.install_cleaned(cleaned).unwrap();
                    model.cleaned_up_to = model.cleaned_up_to.max(plan.end_offset);
                }
            }
            Op::Restart => {
                current.close().unwrap();
                *log = None;
                *log = Some(reopen(true, model));
            }
            Op::Crash(cut) => {
                let active = dir.join(segment_file_name(current.active().base_offset, ".log"));
                *log = None;
                let len = std::fs::metadata(&active).unwrap().len();
                let torn = len - (cut as u64 % (len + 1));
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&active)
                    .unwrap()
                    .set_len(torn)
                    .unwrap();
                let recovered = reopen(false, model);
                let leo = recovered.log_end_offset();
                assert!(leo <= model.next_offset, "recovery invents nothing");
                model.records.retain(|offset, _| *offset < leo);
                model.next_offset = leo;
                model.log_start = model.log_start.min(leo);
                *log = Some(recovered);
            }
        }
    }

    fn config_model() -> TopicConfig {
        config(&[
            ("cleanup.policy", "compact,delete"),
            ("internal.segment.bytes", "400"),
            ("delete.retention.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Random appends, rolls, deletions, retention, compaction, clean restarts and torn
        /// crashes against a model: reads return what was appended, offsets are dense where
        /// nothing was compacted, the latest value of every key survives compaction, and a
        /// crash recovers to a prefix of what was written.
        #[test]
        fn the_log_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let mut log = Some(
                PartitionLog::open(dir.path(), options(config_model(), true), None, 0).unwrap(),
            );
            let mut model = Model::default();
            for (step, op) in ops.into_iter().enumerate() {
                apply(dir.path(), &mut log, &mut model, op, 10_000 + step as i64);
                model.check(log.as_ref().unwrap());
            }
        }
    }
}
