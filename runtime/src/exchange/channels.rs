//! The bounded channels of one exchange: one per (upstream task, downstream task).

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, bounded};

use crate::data::Key;
use crate::error::{Error, Result};
use crate::event::Message;

/// What travels on an exchange's channel: batches of `(key, record)` and control messages.
pub(crate) type Msg<K, T> = Message<(K, T)>;

/// The channel matrix of one exchange, handed out to tasks as they are built.
pub(crate) struct Channels<K, T> {
    #[allow(clippy::type_complexity)]
    senders: Arc<Mutex<Vec<Option<Vec<crossbeam_channel::Sender<Msg<K, T>>>>>>>,
    #[allow(clippy::type_complexity)]
    receivers: Arc<Mutex<Vec<Option<Vec<Receiver<Msg<K, T>>>>>>>,
}

impl<K, T> Clone for Channels<K, T> {
    fn clone(&self) -> Self {
        Channels {
            senders: self.senders.clone(),
            receivers: self.receivers.clone(),
        }
    }
}

impl<K: Key, T: Send + 'static> Channels<K, T> {
    /// `upstream × downstream` channels of `capacity` messages each.
    pub(crate) fn new(upstream: usize, downstream: usize, capacity: usize) -> Channels<K, T> {
        let mut senders = vec![Vec::with_capacity(downstream); upstream];
        let mut receivers = vec![Vec::with_capacity(upstream); downstream];
        for row in senders.iter_mut() {
            for rx in receivers.iter_mut() {
                let (s, r) = bounded(capacity);
                row.push(s);
                rx.push(r);
            }
        }
        Channels {
            senders: Arc::new(Mutex::new(senders.into_iter().map(Some).collect())),
            receivers: Arc::new(Mutex::new(receivers.into_iter().map(Some).collect())),
        }
    }

    pub(crate) fn senders(&self, task: usize) -> Vec<crossbeam_channel::Sender<Msg<K, T>>> {
        self.senders.lock().unwrap_or_else(|e| e.into_inner())[task]
            .take()
            .expect("each upstream task takes its senders once")
    }

    pub(crate) fn receivers(&self, task: usize) -> Result<Vec<Receiver<Msg<K, T>>>> {
        self.receivers.lock().unwrap_or_else(|e| e.into_inner())[task]
            .take()
            .ok_or_else(|| Error::Internal(format!("receivers of task {task} taken twice")))
    }
}
