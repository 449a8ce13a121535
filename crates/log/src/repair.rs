//! Repair: cutting a damaged partition back to its longest intact prefix.
//!
//! Opening a partition refuses to drop data silently: damage that is not a torn tail (a bad
//! batch followed by intact ones, a damaged closed segment, a gap between segments) is a
//! [`LogError::Corrupt`]. After power loss with [`crate::Durability::Interval`] or
//! [`crate::Durability::None`], or real disk damage, an operator can decide to lose the
//! records from the first damage on: [`crate::Log::repair_partition`] scans every segment in
//! full (CRCs included), truncates the segment with the first damage there, deletes all later
//! segments, and logs what it removed. Opening the partition then succeeds.

use std::path::Path;

use crate::error::{LogError, Result};
use crate::fsio::{is_not_found, list_segments, segment_name, sync_dir, INDEX_EXT, LOG_EXT};
use crate::index::IndexCursor;
use crate::segment::{scan, SegmentReader};
use crate::writer::{remove_if_exists, take_lock};

/// What [`crate::Log::repair_partition`] found and removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepairReport {
    /// The first offset removed (the partition's end offset afterwards), if anything was.
    pub removed_from_offset: Option<u64>,
    /// The damage found, naming the file and byte position, if any.
    pub damage: Option<String>,
    /// Bytes removed (truncated or in deleted segments).
    pub removed_bytes: u64,
    /// Segments deleted entirely.
    pub removed_segments: usize,
}

/// Repairs the partition in `dir` (see the module docs). Takes the partition's lock.
pub(crate) fn repair(dir: &Path, topic: &str, partition: u32) -> Result<RepairReport> {
    let _lock = take_lock(dir, topic, partition)?;
    let bases = list_segments(dir).map_err(|e| LogError::io("list", dir, e))?;
    let mut report = RepairReport::default();
    let Some(&first) = bases.first() else { return Ok(report) };
    let mut expected = first;
    // (index into bases of the first segment to delete, truncation of the one before it)
    let mut cut: Option<(usize, Option<(u64, u64)>)> = None;
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(segment_name(base, LOG_EXT));
        if base != expected {
            report.damage = Some(format!(
                "gap: the segment before {} ends at offset {expected}, but this one starts at offset {base}",
                path.display()
            ));
            report.removed_from_offset = Some(expected);
            cut = Some((i, None));
            break;
        }
        let mut reader = match SegmentReader::open(&path, base) {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(LogError::io("open", &path, e)),
        };
        let result = scan(&mut reader, 0, base, None, IndexCursor::new(u64::MAX, 0))
            .map_err(|e| LogError::io("read", &path, e))?;
        if let Some(stop) = result.stop {
            report.damage = Some(format!(
                "{} at byte position {} (offset {}): {}",
                path.display(),
                stop.position,
                stop.offset,
                stop.reason
            ));
            report.removed_from_offset = Some(stop.offset);
            report.removed_bytes += reader.file_len() - stop.position;
            cut = Some((i + 1, Some((base, stop.position))));
            break;
        }
        expected = result.next_offset;
    }
    let Some((delete_from, truncate)) = cut else { return Ok(report) };
    if let Some((base, position)) = truncate {
        let path = dir.join(segment_name(base, LOG_EXT));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        file.set_len(position).map_err(|e| LogError::io("truncate", &path, e))?;
        file.sync_all().map_err(|e| LogError::io("fsync", &path, e))?;
        // Its index may point past the cut: rebuilt when the partition is next opened.
        remove_if_exists(&dir.join(segment_name(base, INDEX_EXT)))?;
    }
    for &base in &bases[delete_from..] {
        let path = dir.join(segment_name(base, LOG_EXT));
        report.removed_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        remove_if_exists(&path)?;
        remove_if_exists(&dir.join(segment_name(base, INDEX_EXT)))?;
        report.removed_segments += 1;
    }
    sync_dir(dir)?;
    tracing::warn!(
        topic,
        partition,
        "repaired partition: removed offsets from {} on ({} bytes, {} whole segments) because of {}",
        report.removed_from_offset.unwrap_or(expected),
        report.removed_bytes,
        report.removed_segments,
        report.damage.as_deref().unwrap_or("damage")
    );
    Ok(report)
}
