//! The bytes the server holds for clients: request frames read but not yet handled, and fetch
//! replies read from the log but not yet written to the socket. Each is counted against the
//! connection's share and against the server's pool (`buffer_bytes_max`), and given back when
//! the request is handled or the reply written.
//!
//! Three rules keep one client from starving the others:
//! - a connection holds at most its share (room for its largest request or fetch reply);
//! - a connection has at most one fetch reply in memory: its next fetch reads the log only once
//!   the previous reply is written, so a client that does not read holds one reply, not one per
//!   request in flight;
//! - a fetch takes at most the free pool divided by two more than the number of other
//!   connections holding bytes: with k clients that stopped reading, a fraction 1/(k+1) of the
//!   pool stays free, and the clients that read go on with smaller fetches instead of none.
//!
//! What would go past the pool waits (a frame is not read) or is put off (a fetch returns fewer
//! records, or only offsets).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The server's pool: `buffer_bytes_max`, never less than one connection's share.
pub(crate) fn server_pool(config: &crate::ServerConfig) -> Arc<ServerPool> {
    let bytes = config
        .buffer_bytes_max
        .max(config.connection_buffer_bytes())
        .min(Semaphore::MAX_PERMITS);
    Arc::new(ServerPool {
        bytes: Arc::new(Semaphore::new(bytes)),
        holding: AtomicUsize::new(0),
    })
}

/// The bytes every connection shares, and how many connections hold some now.
pub(crate) struct ServerPool {
    bytes: Arc<Semaphore>,
    holding: AtomicUsize,
}

impl ServerPool {
    /// Bytes free now.
    pub(crate) fn free(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// One connection's view: its share, the server's pool, and its one fetch-reply slot.
#[derive(Clone)]
pub(crate) struct Pools {
    server: Arc<ServerPool>,
    connection: Arc<Semaphore>,
    /// Bytes this connection holds (to count it among the holders).
    held: Arc<AtomicUsize>,
    fetch_slot: Arc<Semaphore>,
}

/// Bytes held in both pools, and possibly the connection's fetch slot; given back when dropped.
pub(crate) struct Held {
    server: Option<OwnedSemaphorePermit>,
    connection: Option<OwnedSemaphorePermit>,
    fetch_slot: Option<OwnedSemaphorePermit>,
    owner: Option<(Arc<ServerPool>, Arc<AtomicUsize>)>,
}

/// Bytes as permits: a semaphore counts at most `u32::MAX` per acquisition.
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Pools {
    pub(crate) fn new(server: Arc<ServerPool>, connection_bytes: usize) -> Pools {
        Pools {
            server,
            connection: Arc::new(Semaphore::new(connection_bytes.min(Semaphore::MAX_PERMITS))),
            held: Arc::new(AtomicUsize::new(0)),
            fetch_slot: Arc::new(Semaphore::new(1)),
        }
    }

    fn held(&self, server: OwnedSemaphorePermit, connection: OwnedSemaphorePermit) -> Held {
        let n = server.num_permits();
        if n > 0 && self.held.fetch_add(n, Ordering::AcqRel) == 0 {
            self.server.holding.fetch_add(1, Ordering::AcqRel);
        }
        Held {
            server: Some(server),
            connection: Some(connection),
            fetch_slot: None,
            owner: Some((self.server.clone(), self.held.clone())),
        }
    }

    /// Waits until `bytes` fit both pools (the connection's share first, so that a connection
    /// over its share does not queue on the server's pool ahead of others).
    pub(crate) async fn acquire(&self, bytes: usize) -> Held {
        let n = permits(bytes);
        let (Ok(connection), Ok(server)) = (
            self.connection.clone().acquire_many_owned(n).await,
            self.server.bytes.clone().acquire_many_owned(n).await,
        ) else {
            // The semaphores are never closed.
            return Held::none();
        };
        self.held(server, connection)
    }

    /// `bytes` from both pools if they are free now.
    pub(crate) fn try_acquire(&self, bytes: usize) -> Option<Held> {
        let n = permits(bytes);
        let connection = self.connection.clone().try_acquire_many_owned(n).ok()?;
        let server = self.server.bytes.clone().try_acquire_many_owned(n).ok()?;
        Some(self.held(server, connection))
    }

    /// Waits until this connection's previous fetch reply is written.
    pub(crate) async fn fetch_turn(&self) -> Held {
        let mut held = Held::none();
        held.fetch_slot = self.fetch_slot.clone().acquire_owned().await.ok();
        held
    }

    /// The most one fetch may take now: the free pool over two more than the other connections
    /// that hold bytes, which leaves 1/(k+1) of the pool free while k connections hold theirs.
    pub(crate) fn fair_share(&self) -> usize {
        let holding = self.server.holding.load(Ordering::Acquire);
        let others = if self.held.load(Ordering::Acquire) > 0 {
            holding.saturating_sub(1)
        } else {
            holding
        };
        self.server.free() / (others + 2)
    }
}

impl Held {
    /// Nothing held.
    pub(crate) fn none() -> Held {
        Held {
            server: None,
            connection: None,
            fetch_slot: None,
            owner: None,
        }
    }

    /// How many bytes this holds.
    pub(crate) fn bytes(&self) -> usize {
        self.server.as_ref().map_or(0, |p| p.num_permits())
    }

    fn released(&self, n: usize) {
        if let Some((server, held)) = &self.owner
            && n > 0
            && held.fetch_sub(n, Ordering::AcqRel) == n
        {
            server.holding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Gives back all but `bytes`.
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        let extra = self.bytes().saturating_sub(bytes);
        for permit in [&mut self.server, &mut self.connection]
            .into_iter()
            .flatten()
        {
            drop(permit.split(extra));
        }
        self.released(extra);
    }

    /// Adds `other`'s bytes (and its fetch slot) to these.
    pub(crate) fn merge(&mut self, mut other: Held) {
        let moved = other.bytes();
        for (mine, theirs) in [
            (&mut self.server, other.server.take()),
            (&mut self.connection, other.connection.take()),
        ] {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge(t),
                (None, t) => *mine = t,
                (Some(_), None) => {}
            }
        }
        if self.fetch_slot.is_none() {
            self.fetch_slot = other.fetch_slot.take();
        }
        match (&self.owner, other.owner.take()) {
            // Both count against the same connection: the moved bytes stay counted once.
            (Some(_), Some(_)) => {}
            (None, owner) => self.owner = owner,
            (Some(_), None) => debug_assert_eq!(moved, 0),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.released(self.bytes());
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("bytes", &self.bytes())
            .field("fetch_slot", &self.fetch_slot.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(bytes: usize) -> Arc<ServerPool> {
        Arc::new(ServerPool {
            bytes: Arc::new(Semaphore::new(bytes)),
            holding: AtomicUsize::new(0),
        })
    }

    #[test]
    fn bytes_come_back_when_dropped_shrunk_or_merged() {
        let server = pool(100);
        let a = Pools::new(server.clone(), 60);
        let b = Pools::new(server.clone(), 60);
        let mut held = a.try_acquire(50).unwrap();
        assert!(a.try_acquire(20).is_none(), "over the connection's share");
        let other = b.try_acquire(50).unwrap();
        assert!(b.try_acquire(1).is_none(), "the pool is spent");
        assert_eq!(server.holding.load(Ordering::Acquire), 2);
        held.shrink_to(10);
        assert_eq!(held.bytes(), 10);
        assert_eq!(server.free(), 40);
        let more = a.try_acquire(40).unwrap();
        held.merge(more);
        assert_eq!(held.bytes(), 50);
        drop(held);
        assert_eq!(server.holding.load(Ordering::Acquire), 1);
        drop(other);
        assert_eq!(server.free(), 100);
        assert_eq!(server.holding.load(Ordering::Acquire), 0);
    }

    /// k connections that each keep one fetch's worth leave 1/(k+1) of the pool free.
    #[test]
    fn connections_that_keep_their_bytes_leave_a_share_for_the_others() {
        let server = pool(1 << 20);
        let mut kept = Vec::new();
        for k in 1..=50usize {
            let c = Pools::new(server.clone(), 1 << 20);
            let share = c.fair_share();
            kept.push(c.try_acquire(share).unwrap());
            assert!(
                server.free() >= (1 << 20) / (k + 1) - k,
                "after {k}: {}",
                server.free()
            );
        }
        let reader = Pools::new(server.clone(), 1 << 20);
        assert!(reader.fair_share() > 0);
        drop(kept);
        assert_eq!(server.free(), 1 << 20);
    }
}
