//! Kafka's offset checkpoint files in the log directory: `log-start-offset-checkpoint`,
//! `recovery-point-offset-checkpoint` and `cleaner-offset-checkpoint`, each `0` (version), a count, then one
//! `<topic> <partition> <offset>` line per partition. Written to a temporary file and
//! renamed, so a crash leaves the old or the new file, never half of one.

use std::collections::BTreeMap;
use std::path::Path;

pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub const RECOVERY_POINT_OFFSET_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

/// Offsets per (topic, partition).
pub type Checkpoint = BTreeMap<(String, i32), i64>;

/// Reads a checkpoint file; a missing or damaged one reads as empty.
pub fn read(path: &Path) -> Checkpoint {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Checkpoint::new();
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        tracing::warn!(file = %path.display(), "unknown checkpoint version, ignored");
        return Checkpoint::new();
    }
    let _count = lines.next();
    lines
        .filter_map(|line| {
            let mut parts = line.rsplitn(3, ' ');
            let offset = parts.next()?.parse().ok()?;
            let partition = parts.next()?.parse().ok()?;
            let topic = parts.next()?.to_string();
            Some(((topic, partition), offset))
        })
        .collect()
}

/// Writes a checkpoint file atomically.
pub fn write(path: &Path, offsets: &Checkpoint) -> std::io::Result<()> {
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text)?;
    std::fs::File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_START_OFFSET_CHECKPOINT);
        let mut offsets = Checkpoint::new();
        offsets.insert(("a-b.c".into(), 3), 42);
        offsets.insert(("t".into(), 0), 0);
        write(&path, &offsets).unwrap();
        assert_eq!(read(&path), offsets);
        assert!(read(&dir.path().join("missing")).is_empty());
    }
}
