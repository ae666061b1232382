//! One log segment: a `.log` file of batches and its sparse `.index` and `.timeindex`.
//!
//! The index formats are Kafka's: `.index` entries are (relative offset: i32, position:
//! i32) and `.timeindex` entries are (timestamp: i64, relative offset: i32), big-endian.
//! Both are kept in memory for lookups and appended to their files as they grow; on an
//! unclean start the active segment's are rebuilt from the log itself.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::protocol::records::{BatchHeader, BATCH_HEADER_BYTES, LOG_OVERHEAD};

use super::{segment_file_name, LogError};

const INDEX_ENTRY_BYTES: usize = 8;
const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// How much of a segment's files to trust when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// After a clean shutdown: load the index files, reading only the batches after the
    /// last entry; rebuild from the log if they do not fit it.
    TrustIndexes,
    /// After a crash, for segments that were complete: rebuild the indexes from the batch
    /// headers (an index may be stale, e.g. a clean installed just before the crash).
    RescanHeaders,
    /// The active segment after a crash, or a freshly cleaned one: validate every batch's
    /// CRC, truncate a torn tail, rebuild the indexes.
    Recover,
}

/// A segment's state before an append, to undo it if the append fails.
#[derive(Debug, Clone, Copy)]
struct AppendMark {
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
    max_timestamp_batch_offset: i64,
    bytes_since_index_entry: u32,
    index_len: usize,
    time_index_len: usize,
}

/// The whole batches at the start of a segment file, as a scan found them.
#[derive(Debug, Clone)]
pub struct ScannedBatches {
    pub base_offset: i64,
    /// Each batch's header and position, in order.
    pub batches: Vec<(BatchHeader, u64)>,
    /// Bytes of whole (and, if validated, intact) batches; anything after is a torn tail.
    pub valid_bytes: u64,
}

/// Walks the batches of a segment file from the start, stopping at the first one that is
/// torn, out of order, or (with `validate`) fails its CRC. Reads only; takes no lock.
pub fn scan_batches(
    file: &File,
    base_offset: i64,
    file_len: u64,
    validate: bool,
) -> ScannedBatches {
    let mut position = 0u64;
    let mut header_buf = [0u8; BATCH_HEADER_BYTES];
    let mut batch_buf = Vec::new();
    let mut batches = Vec::new();
    let mut expected_offset = base_offset;
    while position + BATCH_HEADER_BYTES as u64 <= file_len {
        if file.read_exact_at(&mut header_buf, position).is_err() {
            break;
        }
        let Ok(header) = BatchHeader::parse(&header_buf) else {
            break;
        };
        let total = header.total_bytes() as u64;
        if position + total > file_len || header.base_offset < expected_offset {
            break;
        }
        if validate {
            batch_buf.resize(total as usize, 0);
            if file.read_exact_at(&mut batch_buf, position).is_err()
                || crate::protocol::records::validate_stored_batch(&batch_buf, &header).is_err()
            {
                break;
            }
        }
        batches.push((header, position));
        expected_offset = header.last_offset() + 1;
        position += total;
    }
    ScannedBatches {
        base_offset,
        batches,
        valid_bytes: position,
    }
}

/// A batch's header and where it sits in its segment.
#[derive(Debug, Clone, Copy)]
pub struct BatchLocation {
    pub header: BatchHeader,
    pub position: u64,
}

pub struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    log: Arc<File>,
    /// Bytes of whole batches in the log file.
    size: u64,
    /// The offset after the last batch of this segment.
    pub next_offset: i64,
    index: Vec<(u32, u32)>,
    index_file: File,
    time_index: Vec<(i64, u32)>,
    time_index_file: File,
    bytes_since_index_entry: u32,
    /// The largest timestamp in the segment, and the last offset of the batch that holds
    /// it (Kafka's shallowOffsetOfMaxTimestampSoFar, which the time index records).
    pub max_timestamp: i64,
    pub max_timestamp_batch_offset: i64,
    /// When the segment was created (ms since the epoch), for `segment.ms` rolls.
    pub created_ms: i64,
    /// Bytes of a torn or corrupt tail cut off when the segment was opened.
    pub torn_bytes: u64,
}

impl Segment {
    /// Creates an empty segment at `base_offset`.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> Result<Segment, LogError> {
        Self::with_files(dir, base_offset, true, now_ms)
    }

    /// Opens an existing segment the way `mode` says.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        mode: OpenMode,
        index_interval_bytes: u32,
    ) -> Result<Segment, LogError> {
        let mut segment = Self::with_files(dir, base_offset, false, 0)?;
        segment.created_ms = modified_ms(&segment.log);
        let loaded =
            mode == OpenMode::TrustIndexes && segment.load_indexes(index_interval_bytes)?;
        if !loaded {
            segment.rebuild(mode == OpenMode::Recover, index_interval_bytes)?;
        }
        Ok(segment)
    }

    /// After a clean shutdown: loads the index files instead of scanning the log, reading
    /// only the batches after the last index entry. Returns false (and loads nothing) if
    /// the files do not fit together, so the caller rebuilds from the log instead.
    fn load_indexes(&mut self, index_interval_bytes: u32) -> Result<bool, LogError> {
        let read = |file: &File, suffix: &str| -> Result<Vec<u8>, LogError> {
            let len = file.metadata().map_err(|e| self.io(suffix, e))?.len() as usize;
            let mut bytes = vec![0u8; len];
            file.read_exact_at(&mut bytes, 0)
                .map_err(|e| self.io(suffix, e))?;
            Ok(bytes)
        };
        let index = read(&self.index_file, ".index")?;
        let time_index = read(&self.time_index_file, ".timeindex")?;
        let size = self.log.metadata().map_err(|e| self.io(".log", e))?.len();
        if index.len() % INDEX_ENTRY_BYTES != 0 || time_index.len() % TIME_INDEX_ENTRY_BYTES != 0 {
            return Ok(false);
        }
        let entries: Vec<(u32, u32)> = index
            .chunks_exact(INDEX_ENTRY_BYTES)
            .map(|e| {
                let rel = u32::from_be_bytes(e[..4].try_into().expect("4 bytes"));
                let pos = u32::from_be_bytes(e[4..].try_into().expect("4 bytes"));
                (rel, pos)
            })
            .collect();
        let times: Vec<(i64, u32)> = time_index
            .chunks_exact(TIME_INDEX_ENTRY_BYTES)
            .map(|e| {
                let ts = i64::from_be_bytes(e[..8].try_into().expect("8 bytes"));
                let rel = u32::from_be_bytes(e[8..].try_into().expect("4 bytes"));
                (ts, rel)
            })
            .collect();
        let ordered = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && times.windows(2).all(|w| w[0].0 <= w[1].0)
            && entries.last().is_none_or(|(_, pos)| (*pos as u64) < size);
        if !ordered || (size > 0 && entries.is_empty()) {
            return Ok(false);
        }
        self.size = size;
        self.index = entries;
        self.time_index = times;
        if let Some((ts, rel)) = self.time_index.last() {
            self.max_timestamp = *ts;
            self.max_timestamp_batch_offset = self.base_offset + *rel as i64;
        }
        // Both indexes must name the last offset of the batch they point at, as Kafka's do
        // (weir before 2026-12 keyed offset entries by base offset, and time entries by the
        // newest batch rather than the one holding the max timestamp): otherwise rebuild.
        if !self.last_index_entries_fit()? {
            return Ok(false);
        }
        // Walk the batches after the last index entry to find the segment's end. An index
        // that does not point at batch boundaries is stale: rebuild instead.
        let mut position = self.index.last().map(|(_, pos)| *pos as u64).unwrap_or(0);
        self.next_offset = self.base_offset;
        let mut tail_bytes = 0u32;
        loop {
            let header = match self.header_at(position) {
                Ok(Some(header)) => header,
                Ok(None) => break,
                Err(LogError::Batch(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            if position + header.total_bytes() as u64 > size {
                return Ok(false);
            }
            self.next_offset = header.last_offset() + 1;
            if header.max_timestamp > self.max_timestamp {
                self.max_timestamp = header.max_timestamp;
                self.max_timestamp_batch_offset = header.last_offset();
            }
            tail_bytes = tail_bytes.saturating_add(header.total_bytes() as u32);
            position += header.total_bytes() as u64;
        }
        if position != size {
            return Ok(false);
        }
        // Entries are added every index_interval_bytes; continue the count from here.
        self.bytes_since_index_entry = tail_bytes.min(index_interval_bytes);
        Ok(true)
    }

    /// Whether the last offset index entry points at a batch ending at its offset, and the
    /// last time index entry names the last offset of a batch with its timestamp.
    fn last_index_entries_fit(&self) -> Result<bool, LogError> {
        let ends_at = |position: u64, offset: i64| match self.header_at(position) {
            Ok(Some(header)) => Ok(Some(header).filter(|h| h.last_offset() == offset)),
            Ok(None) | Err(LogError::Batch(_)) => Ok(None),
            Err(e) => Err(e),
        };
        if let Some(&(rel, pos)) = self.index.last() {
            if ends_at(pos as u64, self.base_offset + rel as i64)?.is_none() {
                return Ok(false);
            }
        }
        if let Some(&(ts, rel)) = self.time_index.last() {
            let offset = self.base_offset + rel as i64;
            let fits = match self.find_batch(offset) {
                Ok(Some(location)) => {
                    location.header.last_offset() == offset && location.header.max_timestamp == ts
                }
                Ok(None) | Err(LogError::Batch(_)) => false,
                Err(e) => return Err(e),
            };
            if !fits {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Opens (or creates) the three files of a segment; indexes start empty.
    fn with_files(
        dir: &Path,
        base_offset: i64,
        create: bool,
        created_ms: i64,
    ) -> Result<Segment, LogError> {
        let log = open_rw(&dir.join(segment_file_name(base_offset, ".log")), create)?;
        let index_file = open_rw(&dir.join(segment_file_name(base_offset, ".index")), create)?;
        let time_index_file = open_rw(
            &dir.join(segment_file_name(base_offset, ".timeindex")),
            create,
        )?;
        Ok(Segment {
            base_offset,
            dir: dir.to_path_buf(),
            log: Arc::new(log),
            size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            index_file,
            time_index: Vec::new(),
            time_index_file,
            bytes_since_index_entry: 0,
            max_timestamp: -1,
            max_timestamp_batch_offset: -1,
            created_ms,
            torn_bytes: 0,
        })
    }

    /// Scans the log file, truncating at the first batch that is torn (or, with
    /// `validate`, fails its CRC), and rebuilds both indexes.
    fn rebuild(&mut self, validate: bool, index_interval_bytes: u32) -> Result<(), LogError> {
        let file_len = self.log.metadata().map_err(|e| self.io(".log", e))?.len();
        let scan = scan_batches(&self.log, self.base_offset, file_len, validate);
        if scan.valid_bytes < file_len {
            tracing::warn!(
                segment = %self.dir.join(segment_file_name(self.base_offset, ".log")).display(),
                valid_bytes = scan.valid_bytes,
                file_bytes = file_len,
                "truncating torn or corrupt tail of log segment"
            );
            self.log
                .set_len(scan.valid_bytes)
                .map_err(|e| self.io(".log", e))?;
            self.torn_bytes = file_len - scan.valid_bytes;
        }
        self.index_scanned(&scan, index_interval_bytes)
    }

    /// Opens a segment whose batches were scanned beforehand (a cleaned segment, scanned
    /// by the cleaner outside the partition lock): only the index files are written here.
    pub fn open_scanned(
        dir: &Path,
        scan: &ScannedBatches,
        index_interval_bytes: u32,
    ) -> Result<Segment, LogError> {
        let mut segment = Self::with_files(dir, scan.base_offset, false, 0)?;
        let size = segment
            .log
            .metadata()
            .map_err(|e| segment.io(".log", e))?
            .len();
        if size != scan.valid_bytes {
            return Err(segment.io(
                ".log",
                std::io::Error::other("the segment changed since it was scanned"),
            ));
        }
        segment.created_ms = modified_ms(&segment.log);
        segment.index_scanned(scan, index_interval_bytes)?;
        Ok(segment)
    }

    fn index_scanned(
        &mut self,
        scan: &ScannedBatches,
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        self.index.clear();
        self.time_index.clear();
        self.bytes_since_index_entry = 0;
        self.max_timestamp = -1;
        self.max_timestamp_batch_offset = -1;
        for (header, position) in &scan.batches {
            self.note_batch(
                header,
                *position,
                header.total_bytes() as u32,
                index_interval_bytes,
            );
        }
        self.size = scan.valid_bytes;
        self.next_offset = scan
            .batches
            .last()
            .map_or(self.base_offset, |(h, _)| h.last_offset() + 1);
        self.rewrite_index_files()
    }

    fn rewrite_index_files(&mut self) -> Result<(), LogError> {
        let mut index = Vec::with_capacity(self.index.len() * INDEX_ENTRY_BYTES);
        for (rel, pos) in &self.index {
            index.extend_from_slice(&rel.to_be_bytes());
            index.extend_from_slice(&pos.to_be_bytes());
        }
        let mut time_index = Vec::with_capacity(self.time_index.len() * TIME_INDEX_ENTRY_BYTES);
        for (ts, rel) in &self.time_index {
            time_index.extend_from_slice(&ts.to_be_bytes());
            time_index.extend_from_slice(&rel.to_be_bytes());
        }
        for (file, bytes, suffix) in [
            (&self.index_file, index, ".index"),
            (&self.time_index_file, time_index, ".timeindex"),
        ] {
            file.set_len(0).map_err(|e| self.io(suffix, e))?;
            file.write_all_at(&bytes, 0)
                .map_err(|e| self.io(suffix, e))?;
        }
        Ok(())
    }

    /// Updates the in-memory indexes for a batch at `position`; returns whether index
    /// entries were added (and so must be written).
    fn note_batch(
        &mut self,
        header: &BatchHeader,
        position: u64,
        bytes: u32,
        index_interval_bytes: u32,
    ) -> bool {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_batch_offset = header.last_offset();
        }
        self.bytes_since_index_entry = self.bytes_since_index_entry.saturating_add(bytes);
        if self.bytes_since_index_entry < index_interval_bytes && position != 0 {
            return false;
        }
        self.bytes_since_index_entry = 0;
        // Kafka's offset index maps a batch's last offset to its position (and its reader,
        // kafka-dump-log.sh, checks that); a lookup takes the last entry at or below the
        // target and scans on from there. The time index maps the largest timestamp so far
        // to the last offset of the batch holding it.
        let relative = (header.last_offset() - self.base_offset) as u32;
        self.index.push((relative, position as u32));
        if self.max_timestamp_batch_offset >= self.base_offset
            && self
                .time_index
                .last()
                .is_none_or(|(ts, _)| self.max_timestamp > *ts)
        {
            let at = (self.max_timestamp_batch_offset - self.base_offset) as u32;
            self.time_index.push((self.max_timestamp, at));
        }
        true
    }

    /// Appends a batch whose base offset was assigned, as its patched head and the rest.
    /// Writes go to the page cache; the flush policy decides when they are fsynced.
    ///
    /// A failed append leaves nothing behind: the files are cut back to where they were
    /// and the in-memory state restored. If the file system was full the error is
    /// [`LogError::NoSpace`]; any other error, or a cut that fails, is returned as the
    /// I/O error it is, and the caller takes the directory offline.
    pub fn append(
        &mut self,
        head: &[u8],
        rest: &[u8],
        header: &BatchHeader,
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        let before = self.append_mark();
        let Err(error) = self.write_batch(head, rest, header, index_interval_bytes) else {
            return Ok(());
        };
        self.roll_back(before)?;
        Err(error.out_of_space_as_no_space())
    }

    fn append_mark(&self) -> AppendMark {
        AppendMark {
            size: self.size,
            next_offset: self.next_offset,
            max_timestamp: self.max_timestamp,
            max_timestamp_batch_offset: self.max_timestamp_batch_offset,
            bytes_since_index_entry: self.bytes_since_index_entry,
            index_len: self.index.len(),
            time_index_len: self.time_index.len(),
        }
    }

    /// Undoes a failed append: files cut back to their length before it, state restored.
    fn roll_back(&mut self, mark: AppendMark) -> Result<(), LogError> {
        self.size = mark.size;
        self.next_offset = mark.next_offset;
        self.max_timestamp = mark.max_timestamp;
        self.max_timestamp_batch_offset = mark.max_timestamp_batch_offset;
        self.bytes_since_index_entry = mark.bytes_since_index_entry;
        self.index.truncate(mark.index_len);
        self.time_index.truncate(mark.time_index_len);
        self.log
            .set_len(mark.size)
            .map_err(|e| self.io(".log", e))?;
        self.index_file
            .set_len((mark.index_len * INDEX_ENTRY_BYTES) as u64)
            .map_err(|e| self.io(".index", e))?;
        self.time_index_file
            .set_len((mark.time_index_len * TIME_INDEX_ENTRY_BYTES) as u64)
            .map_err(|e| self.io(".timeindex", e))
    }

    fn write_batch(
        &mut self,
        head: &[u8],
        rest: &[u8],
        header: &BatchHeader,
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        let position = self.size;
        self.log
            .write_all_at(head, position)
            .map_err(|e| self.io(".log", e))?;
        self.log
            .write_all_at(rest, position + head.len() as u64)
            .map_err(|e| self.io(".log", e))?;
        let bytes = (head.len() + rest.len()) as u64;
        self.size += bytes;
        self.next_offset = header.last_offset() + 1;
        let index_len = self.index.len();
        let time_len = self.time_index.len();
        if self.note_batch(header, position, bytes as u32, index_interval_bytes) {
            self.write_new_index_entries(index_len, time_len)?;
        }
        Ok(())
    }

    fn write_new_index_entries(
        &mut self,
        index_from: usize,
        time_from: usize,
    ) -> Result<(), LogError> {
        let mut entry = Vec::with_capacity(TIME_INDEX_ENTRY_BYTES);
        for (rel, pos) in &self.index[index_from..] {
            entry.extend_from_slice(&rel.to_be_bytes());
            entry.extend_from_slice(&pos.to_be_bytes());
        }
        self.index_file
            .write_all(&entry)
            .map_err(|e| self.io(".index", e))?;
        entry.clear();
        for (ts, rel) in &self.time_index[time_from..] {
            entry.extend_from_slice(&ts.to_be_bytes());
            entry.extend_from_slice(&rel.to_be_bytes());
        }
        self.time_index_file
            .write_all(&entry)
            .map_err(|e| self.io(".timeindex", e))
    }

    /// Called when the segment stops being active: the time index gets its final entry,
    /// as Kafka does on roll, so it always ends with the segment's max timestamp.
    pub fn seal(&mut self) -> Result<(), LogError> {
        if self.max_timestamp_batch_offset >= self.base_offset
            && self
                .time_index
                .last()
                .is_none_or(|(ts, _)| self.max_timestamp > *ts)
        {
            let from = self.time_index.len();
            self.time_index.push((
                self.max_timestamp,
                (self.max_timestamp_batch_offset - self.base_offset) as u32,
            ));
            self.write_new_index_entries(self.index.len(), from)?;
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The log file's modification time (ms since the epoch; 0 if unknown), which Kafka's
    /// ListOffsets v0 compares times with.
    pub fn last_modified_ms(&self) -> i64 {
        modified_ms(&self.log)
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// A handle on the log file for reads and fsyncs outside the partition lock.
    pub fn file(&self) -> Arc<File> {
        Arc::clone(&self.log)
    }

    /// The position from which to scan for `offset`: the last index entry at or below it.
    pub fn lookup_position(&self, offset: i64) -> u64 {
        let relative = (offset - self.base_offset).max(0) as u32;
        match self.index.partition_point(|(rel, _)| *rel <= relative) {
            0 => 0,
            i => self.index[i - 1].1 as u64,
        }
    }

    /// The position from which to scan for the first timestamp at or after `target_ms`.
    pub fn lookup_time_position(&self, target_ms: i64) -> u64 {
        match self.time_index.partition_point(|(ts, _)| *ts < target_ms) {
            0 => 0,
            i => self.lookup_position(self.base_offset + self.time_index[i - 1].1 as i64 + 1),
        }
    }

    /// Finds the first batch whose last offset is at or after `offset`, scanning headers
    /// from the index position.
    pub fn find_batch(&self, offset: i64) -> Result<Option<BatchLocation>, LogError> {
        let mut position = self.lookup_position(offset);
        while let Some(header) = self.header_at(position)? {
            if header.last_offset() >= offset {
                return Ok(Some(BatchLocation { header, position }));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// The header of the batch at `position`, or None at the end of the segment.
    pub fn header_at(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        if position + BATCH_HEADER_BYTES as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_BYTES];
        self.log
            .read_exact_at(&mut buf, position)
            .map_err(|e| self.io(".log", e))?;
        BatchHeader::parse(&buf).map(Some).map_err(LogError::from)
    }

    /// Reads the whole batch at `location`.
    pub fn read_batch(&self, location: &BatchLocation) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; location.header.total_bytes()];
        self.log
            .read_exact_at(&mut buf, location.position)
            .map_err(|e| self.io(".log", e))?;
        Ok(buf)
    }

    /// Renames the segment's files to `<name>.deleted`, as Kafka does before removing
    /// them after `file.delete.delay.ms`. Readers holding the file keep reading it.
    pub fn mark_deleted(&self) -> Vec<PathBuf> {
        let mut marked = Vec::new();
        for suffix in [".log", ".index", ".timeindex"] {
            let path = self.dir.join(segment_file_name(self.base_offset, suffix));
            let doomed = path.with_file_name(format!(
                "{}.deleted",
                segment_file_name(self.base_offset, suffix)
            ));
            match std::fs::rename(&path, &doomed) {
                Ok(()) => marked.push(doomed),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not mark a segment file deleted")
                }
            }
        }
        marked
    }

    fn io(&self, suffix: &str, source: std::io::Error) -> LogError {
        LogError::io(
            &self.dir.join(segment_file_name(self.base_offset, suffix)),
            source,
        )
    }
}

/// Removes a segment's files at once: during recovery, a segment after a torn one, whose
/// batches can no longer follow the log's end.
pub fn delete_files(dir: &Path, base_offset: i64) -> Result<(), LogError> {
    for suffix in [".log", ".index", ".timeindex"] {
        let path = dir.join(segment_file_name(base_offset, suffix));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LogError::io(&path, e)),
        }
    }
    Ok(())
}

/// A file's modification time in ms since the epoch (0 if unknown).
fn modified_ms(file: &File) -> i64 {
    file.metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn open_rw(path: &Path, create: bool) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .append(path.extension().is_some_and(|e| e != "log"))
        .create(create || path.extension().is_some_and(|e| e != "log"))
        .truncate(false)
        .open(path)
        .map_err(|e| LogError::io(path, e))
}

/// Walks whole batches in `bytes` read from `start` and returns how many bytes of them to
/// send: whole batches only, none at or beyond `max_offset`, at most `max_bytes` unless the
/// first batch alone is larger.
pub fn whole_batches_len(bytes: &[u8], max_offset: i64, max_bytes: usize) -> usize {
    let mut position = 0usize;
    while position + LOG_OVERHEAD <= bytes.len() {
        let Ok(header) = BatchHeader::parse(&bytes[position..]) else {
            break;
        };
        let end = position + header.total_bytes();
        if header.base_offset >= max_offset
            || end > bytes.len()
            || (position > 0 && end > max_bytes)
        {
            break;
        }
        position = end;
    }
    position
}
