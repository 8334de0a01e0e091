//! The bytes the server holds for clients: request frames read but not yet handled, and fetch
//! responses read from the log but not yet written to the socket. Each is counted twice, against
//! the connection's share and against the server's pool (`buffer_bytes_max`), and given back when
//! the request is handled or the reply written. So a client that sends without reading, or asks
//! for huge fetches, holds at most its share, and all clients together at most the pool; what
//! would go past it waits (a frame is not read) or is put off (a fetch returns fewer records).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The server's pool: `buffer_bytes_max`, never less than one connection's share.
pub(crate) fn server_pool(config: &crate::ServerConfig) -> Arc<Semaphore> {
    let bytes = config
        .buffer_bytes_max
        .max(config.connection_buffer_bytes())
        .min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(bytes))
}

/// A connection's share and the server's pool.
#[derive(Clone)]
pub(crate) struct Pools {
    server: Arc<Semaphore>,
    connection: Arc<Semaphore>,
}

/// Bytes held in both pools; given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    server: Option<OwnedSemaphorePermit>,
    connection: Option<OwnedSemaphorePermit>,
}

/// Bytes as permits: a semaphore counts at most `u32::MAX` per acquisition.
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Pools {
    pub(crate) fn new(server: Arc<Semaphore>, connection_bytes: usize) -> Pools {
        Pools {
            server,
            connection: Arc::new(Semaphore::new(connection_bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Waits until `bytes` fit both pools (the connection's first, so that a connection over
    /// its share does not queue on the server's pool ahead of others).
    pub(crate) async fn acquire(&self, bytes: usize) -> Held {
        let n = permits(bytes);
        let connection = self.connection.clone().acquire_many_owned(n).await.ok();
        let server = self.server.clone().acquire_many_owned(n).await.ok();
        Held { server, connection }
    }

    /// `bytes` from both pools if they are free now.
    pub(crate) fn try_acquire(&self, bytes: usize) -> Option<Held> {
        let n = permits(bytes);
        let connection = self.connection.clone().try_acquire_many_owned(n).ok()?;
        let server = self.server.clone().try_acquire_many_owned(n).ok()?;
        Some(Held {
            server: Some(server),
            connection: Some(connection),
        })
    }
}

impl Held {
    /// Nothing held.
    pub(crate) fn none() -> Held {
        Held {
            server: None,
            connection: None,
        }
    }

    /// How many bytes this holds.
    pub(crate) fn bytes(&self) -> usize {
        self.server.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Gives back all but `bytes`.
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        for permit in [&mut self.server, &mut self.connection]
            .into_iter()
            .flatten()
        {
            let extra = permit.num_permits().saturating_sub(bytes);
            drop(permit.split(extra));
        }
    }

    /// Adds `other`'s bytes to these.
    pub(crate) fn merge(&mut self, other: Held) {
        for (mine, theirs) in [
            (&mut self.server, other.server),
            (&mut self.connection, other.connection),
        ] {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge(t),
                (None, t) => *mine = t,
                (Some(_), None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_when_dropped_shrunk_or_merged() {
        let server = Arc::new(Semaphore::new(100));
        let a = Pools::new(server.clone(), 60);
        let b = Pools::new(server.clone(), 60);
        let mut held = a.try_acquire(50).unwrap();
        assert!(a.try_acquire(20).is_none(), "over the connection's share");
        let other = b.try_acquire(50).unwrap();
        assert!(b.try_acquire(1).is_none(), "the pool is spent");
        held.shrink_to(10);
        assert_eq!(held.bytes(), 10);
        assert_eq!(server.available_permits(), 40);
        let more = a.try_acquire(40).unwrap();
        held.merge(more);
        assert_eq!(held.bytes(), 50);
        drop(held);
        drop(other);
        assert_eq!(server.available_permits(), 100);
    }
}
