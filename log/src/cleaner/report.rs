//! [`CleanerReport`]: what a cleaning round did, summed over its partitions.

/// What a cleaning round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerReport {
    /// Closed segments retention deleted whole.
    pub segments_deleted: usize,
    /// Bytes given back to the file system, by retention and compaction.
    pub bytes_freed: u64,
    /// Closed segments compaction rewrote.
    pub segments_compacted: usize,
    /// Records compaction dropped (superseded by a newer record of their key, or expired
    /// tombstones).
    pub records_removed: u64,
}

impl std::ops::AddAssign for CleanerReport {
    fn add_assign(&mut self, other: CleanerReport) {
        self.segments_deleted += other.segments_deleted;
        self.bytes_freed += other.bytes_freed;
        self.segments_compacted += other.segments_compacted;
        self.records_removed += other.records_removed;
    }
}
