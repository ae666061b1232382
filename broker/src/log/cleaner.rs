//! Log compaction for `cleanup.policy=compact`: keep the latest record of every key.
//!
//! A clean covers whole, inactive segments below the high watermark whose records are older
//! than `min.compaction.lag.ms`; the active segment is never touched. It runs in two steps:
//!
//! 1. [`clean`], outside the partition lock (the segments it reads are immutable): build a
//!    map of each key's latest offset over the segments, then write each segment's kept
//!    records to `<base>.log.cleaned`, fsync it, and rename it to `<base>.log.swap`.
//! 2. `PartitionLog::install_cleaned`, under the lock: rename each `.swap` over its
//!    `.log` (atomic) and reopen the segment, which rebuilds its indexes.
//!
//! A crash leaves either a `.cleaned` file (incomplete: deleted on start-up) or a `.swap`
//! (complete: installed on start-up), so the partition is always the old data or the new.
//! Offsets never change: a kept record keeps its offset and batches keep their base offset
//! and offset span, so gaps appear where records were removed. A tombstone (null value) is
//! removed once it is older than `delete.retention.ms`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::protocol::records::{self, BatchHeader, OffsetDeltas, BATCH_HEADER_BYTES};

use super::segment::{scan_batches, ScannedBatches};
use super::{segment_file_name, LogError};

/// One segment to clean, captured under the lock.
#[derive(Debug, Clone)]
pub struct CleanSource {
    pub base_offset: i64,
    pub file: Arc<File>,
    pub size: u64,
}

/// What to clean, decided under the partition lock.
#[derive(Debug, Clone)]
pub struct CleanPlan {
    pub dir: PathBuf,
    pub sources: Vec<CleanSource>,
    /// The offset after the last cleaned segment: the new cleaner checkpoint.
    pub end_offset: i64,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
}

/// A cleaned segment ready to be swapped in, with its batches already scanned (CRCs
/// checked) so that installing it under the partition lock only writes index files.
#[derive(Debug, Clone)]
pub struct CleanedSegment {
    pub base_offset: i64,
    pub swap_path: PathBuf,
    pub scan: ScannedBatches,
}

/// Suffix of a cleaned segment being written.
pub const CLEANED_SUFFIX: &str = ".log.cleaned";
/// Suffix of a cleaned segment complete and waiting to replace its `.log`.
pub const SWAP_SUFFIX: &str = ".log.swap";

/// Calls `visit` with every whole batch of a segment file, in order.
fn for_each_batch(
    source: &CleanSource,
    mut visit: impl FnMut(&[u8], &BatchHeader) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut position = 0u64;
    let mut header_buf = [0u8; BATCH_HEADER_BYTES];
    let mut batch = Vec::new();
    let io = |e| LogError::io(Path::new("segment being cleaned"), e);
    while position + BATCH_HEADER_BYTES as u64 <= source.size {
        source
            .file
            .read_exact_at(&mut header_buf, position)
            .map_err(io)?;
        let header = BatchHeader::parse(&header_buf)?;
        batch.resize(header.total_bytes(), 0);
        source
            .file
            .read_exact_at(&mut batch, position)
            .map_err(io)?;
        visit(&batch, &header)?;
        position += header.total_bytes() as u64;
    }
    Ok(())
}

/// Builds each key's latest offset over the plan's segments.
fn latest_offsets(plan: &CleanPlan) -> Result<HashMap<Vec<u8>, i64>, LogError> {
    let mut latest = HashMap::new();
    for source in &plan.sources {
        for_each_batch(source, |batch, header| {
            if header.is_control() {
                return Ok(());
            }
            let inflated = records::inflate_records(batch, header)?;
            records::walk_records(
                &inflated,
                header.record_count,
                OffsetDeltas::Increasing,
                |r| {
                    if let Some(key) = r.key {
                        latest.insert(key.to_vec(), header.base_offset + r.offset_delta as i64);
                    }
                    Ok(())
                },
            )?;
            Ok(())
        })?;
    }
    Ok(latest)
}

/// Cleans the planned segments into `.swap` files (step 1 above). A clean that fails
/// leaves no `.cleaned` or `.swap` file behind; one that ran out of space is [`LogError::NoSpace`]
/// (the log is untouched, so the directory stays online and the clean is tried again).
pub fn clean(plan: &CleanPlan) -> Result<Vec<CleanedSegment>, LogError> {
    let latest = latest_offsets(plan)?;
    let mut cleaned = Vec::with_capacity(plan.sources.len());
    for source in &plan.sources {
        let cleaned_path = plan.dir.join(format!(
            "{}{CLEANED_SUFFIX}",
            segment_file_name(source.base_offset, "")
        ));
        match clean_segment(plan, source, &latest, &cleaned_path) {
            Ok(segment) => cleaned.push(segment),
            Err(e) => {
                let _ = std::fs::remove_file(&cleaned_path);
                for done in &cleaned {
                    let _ = std::fs::remove_file(&done.swap_path);
                }
                return Err(e.out_of_space_as_no_space());
            }
        }
    }
    Ok(cleaned)
}

fn clean_segment(
    plan: &CleanPlan,
    source: &CleanSource,
    latest: &HashMap<Vec<u8>, i64>,
    cleaned_path: &Path,
) -> Result<CleanedSegment, LogError> {
    let tombstone_horizon = plan.now_ms.saturating_sub(plan.delete_retention_ms);
    {
        let io = |e| LogError::io(cleaned_path, e);
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(cleaned_path)
            .map_err(io)?;
        for_each_batch(source, |batch, header| {
            if header.is_control() {
                return out.write_all(batch).map_err(io);
            }
            let inflated = records::inflate_records(batch, header)?;
            let mut kept: Vec<&[u8]> = Vec::with_capacity(header.record_count.max(0) as usize);
            let mut max_timestamp = -1;
            let mut dropped = false;
            records::walk_records(
                &inflated,
                header.record_count,
                OffsetDeltas::Increasing,
                |r| {
                    let offset = header.base_offset + r.offset_delta as i64;
                    let timestamp = header.record_timestamp(r.timestamp_delta);
                    let superseded = r
                        .key
                        .is_some_and(|k| latest.get(k).is_some_and(|l| *l > offset));
                    let expired_tombstone = r.value.is_none() && timestamp < tombstone_horizon;
                    if superseded || expired_tombstone {
                        dropped = true;
                    } else {
                        kept.push(r.raw);
                        max_timestamp = max_timestamp.max(timestamp);
                    }
                    Ok(())
                },
            )?;
            match (dropped, kept.is_empty()) {
                (false, _) => out.write_all(batch).map_err(io),
                (true, true) => Ok(()),
                (true, false) => {
                    let rebuilt = records::rebuild_retained(batch, header, &kept, max_timestamp)?;
                    out.write_all(&rebuilt).map_err(io)
                }
            }
        })?;
        out.sync_all().map_err(io)?;
    }
    let written = std::fs::metadata(cleaned_path)
        .map_err(|e| LogError::io(cleaned_path, e))?
        .len();
    let file = File::open(cleaned_path).map_err(|e| LogError::io(cleaned_path, e))?;
    let scan = scan_batches(&file, source.base_offset, written, true);
    if scan.valid_bytes != written {
        // Kept batches are copied as stored: a source batch damaged on disk ends up here.
        return Err(LogError::Batch(records::BatchError::Corrupt(
            "a segment being cleaned holds a batch that does not validate",
        )));
    }
    let swap_path = plan.dir.join(format!(
        "{}{SWAP_SUFFIX}",
        segment_file_name(source.base_offset, "")
    ));
    std::fs::rename(cleaned_path, &swap_path).map_err(|e| LogError::io(&swap_path, e))?;
    Ok(CleanedSegment {
        base_offset: source.base_offset,
        swap_path,
        scan,
    })
}
