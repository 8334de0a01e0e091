//! Group commit: one background thread fsyncs every segment written since its last round, so a
//! single fsync covers every batch that arrived while the previous one ran. Writers with acks=all
//! ask for a round and wait for it; the same thread runs the slow work of segment rolls (flushing
//! the closed segment, then advancing the recovery point).

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::segment::Segment;
use crate::{Error, Result};

/// Work run after a round's fsyncs. A task that fails runs again in the next round: it may be
/// called more than once.
type Task = Box<dyn FnMut() -> Result<()> + Send>;

#[derive(Default)]
struct State {
    dirty: Vec<Arc<Segment>>,
    /// The addresses of `dirty`'s segments: a request is O(1), not a scan of every segment
    /// written this round (thousands with thousands of partitions).
    dirty_set: HashSet<usize>,
    tasks: Vec<Task>,
    /// Tasks that failed, to run again with the next round (not a round of their own: a task
    /// that keeps failing must not spin the thread).
    retry: Vec<Task>,
    /// Segments of a round whose fsync failed, to fsync again with the next round: a waiter of a
    /// later round may be counting on them (a transaction's markers span rounds, and its
    /// coordinator waits for the last), so a later round succeeds only once they are durable.
    retry_dirty: Vec<Arc<Segment>>,
    started: u64,
    completed: u64,
    /// The last round that failed, with why.
    failed: Option<(u64, String)>,
    shutdown: bool,
    exited: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
}

/// The group-commit thread of one log.
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    /// Starts the thread; a process out of threads gets an error, not a panic.
    pub(crate) fn start() -> Result<Flusher> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("weir-flusher".into())
            .spawn(move || run(&s))
            .map_err(|e| Error::Internal(format!("spawning the flusher thread: {e}")))?;
        Ok(Flusher {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for `segment` to be fsynced; returns the round to wait for.
    pub(crate) fn request(&self, segment: &Arc<Segment>) -> u64 {
        let mut st = self.lock();
        st.mark_dirty(segment);
        self.shared.wake.notify_one();
        st.started + 1
    }

    /// Asks for all of `segments` to be fsynced in one round; returns the round to wait for.
    pub(crate) fn request_all(&self, segments: &[Arc<Segment>]) -> u64 {
        let mut st = self.lock();
        for segment in segments {
            st.mark_dirty(segment);
        }
        self.shared.wake.notify_one();
        st.started + 1
    }

    /// True once `round` completed (successfully or not); never blocks.
    pub(crate) fn is_done(&self, round: u64) -> bool {
        self.lock().completed >= round
    }

    /// Waits until `round` is durable.
    pub(crate) fn wait(&self, round: u64) -> Result<()> {
        let mut st = self.lock();
        while st.completed < round && !st.exited {
            st = self.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.completed < round {
            return Err(Error::Closed);
        }
        match &st.failed {
            Some((r, why)) if *r >= round => Err(Error::NotDurable(why.clone())),
            _ => Ok(()),
        }
    }

    /// Runs `task` on the flusher thread, after the fsyncs already requested.
    pub(crate) fn schedule(&self, task: Task) {
        let mut st = self.lock();
        st.tasks.push(task);
        self.shared.wake.notify_one();
    }

    /// Finishes outstanding work and stops the thread.
    pub(crate) fn shutdown(&self) {
        self.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Most fsyncs in flight at once: devices overlap them, so a round over many partitions takes
/// about as long as one fsync instead of their sum.
const PARALLEL_FSYNCS_MAX: usize = 8;

/// fsyncs every segment, several at a time; returns the first failure.
fn sync_all(dirty: &[Arc<Segment>]) -> Option<String> {
    if dirty.len() <= 1 {
        return dirty
            .first()
            .and_then(|s| s.sync_data().err())
            .map(|e| e.to_string());
    }
    let per_thread = dirty.len().div_ceil(PARALLEL_FSYNCS_MAX);
    std::thread::scope(|scope| {
        let handles: Vec<_> = dirty
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .find_map(|s| s.sync_data().err())
                        .map(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().find_map(|h| {
            h.join()
                .unwrap_or_else(|_| Some("an fsync thread panicked".into()))
        })
    })
}

fn run(shared: &Shared) {
    loop {
        let (dirty, tasks, round) = {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            while st.dirty.is_empty() && st.tasks.is_empty() && !st.shutdown {
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.dirty.is_empty() && st.tasks.is_empty() && st.shutdown {
                st.exited = true;
                shared.done.notify_all();
                return;
            }
            st.started += 1;
            let mut tasks = std::mem::take(&mut st.retry);
            tasks.append(&mut st.tasks);
            let mut dirty = std::mem::take(&mut st.dirty);
            let retried: Vec<_> = std::mem::take(&mut st.retry_dirty)
                .into_iter()
                .filter(|s| !st.dirty_set.contains(&address(s)))
                .collect();
            st.dirty_set.clear();
            dirty.extend(retried);
            (dirty, tasks, st.started)
        };
        let mut failure = sync_all(&dirty);
        let failed_dirty = if failure.is_some() { dirty } else { Vec::new() };
        let mut failed_tasks = Vec::new();
        for mut task in tasks {
            if let Err(e) = task() {
                // A roll's flush makes the closed segment durable: until it succeeds, nothing
                // after it may be acknowledged as durable (a crash would lose the segment's tail
                // and, with it, every later offset). The round fails, and the task runs again.
                eprintln!("weir: background flush task failed (will retry): {e}");
                failure.get_or_insert_with(|| format!("flushing a closed segment: {e}"));
                failed_tasks.push(task);
            }
        }
        let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.completed = round;
        st.retry.append(&mut failed_tasks);
        st.retry_dirty = failed_dirty;
        if let Some(why) = failure {
            st.failed = Some((round, why));
        }
        shared.done.notify_all();
    }
}

impl State {
    fn mark_dirty(&mut self, segment: &Arc<Segment>) {
        if self.dirty_set.insert(address(segment)) {
            self.dirty.push(segment.clone());
        }
    }
}

/// A segment's identity while it is held: its allocation's address.
fn address(segment: &Arc<Segment>) -> usize {
    Arc::as_ptr(segment) as usize
}
