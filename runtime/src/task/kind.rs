//! What drives a task.

/// What drives a task: where its records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskKind {
    /// Reads partitions of a topic, and starts each epoch's barriers: a source's task, or on a
    /// cluster the reader of a repartition topic's partition.
    Source,
    /// Receives the records of an exchange from the upstream stage's tasks, and aligns their
    /// barriers.
    Exchange,
}
