//! # weir-server
//!
//! `weir serve`: the Kafka wire protocol over one weir [`Log`], so that any Kafka client
//! (librdkafka, kafka-python, the Java client, kcat) produces, fetches, joins consumer groups and
//! runs transactions against it from other processes.
//!
//! The server adds no second implementation of anything the log does: produced record batches
//! are handed to [`Log::append_deferred`] as they arrived (the log validates them and assigns
//! offsets), fetches return the segment bytes as stored, and groups, committed offsets, producer
//! ids and transactions are the log's own coordinators.
//!
//! ## Module map
//! ```text
//! lib.rs          Server, ServerConfig: the listener, the connection limit, shutdown
//! connection.rs   one connection: framing, the request size limit, in-flight requests, ordered replies
//! api/mod.rs      the supported APIs and versions; decode → family handler → encode
//! ├─ metadata.rs  ApiVersions, Metadata, FindCoordinator
//! ├─ produce.rs   Produce
//! ├─ fetch.rs     Fetch (long poll, isolation), ListOffsets
//! ├─ admin.rs     CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, ...
//! ├─ groups.rs    the classic group protocol, OffsetCommit, OffsetFetch, Describe/List/DeleteGroups
//! └─ txn.rs       InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit
//! errors.rs       log errors → Kafka error codes, in one place
//! harness.rs      RequestHarness: a connection's bytes answered without a socket (fuzzing)
//! ```
#![warn(missing_docs)]

mod api;
mod connection;
mod errors;
mod harness;

pub use harness::RequestHarness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use weir_log::Log;

/// The server's settings. Every limit is per server unless its name says otherwise.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Loopback by default: weir serve has no authentication yet.
    pub listen: SocketAddr,
    /// The host and port clients are told to connect to (Metadata, FindCoordinator); the bound
    /// address when `None`.
    pub advertised: Option<(String, u16)>,
    /// The largest request accepted (Kafka's `socket.request.max.bytes`): a length prefix over
    /// it closes the connection before anything is allocated.
    pub request_bytes_max: usize,
    /// Open connections at most; further ones are accepted and closed at once.
    pub connections_max: usize,
    /// Requests one connection may have in flight (read but not yet answered); the connection
    /// stops reading until one is answered.
    pub in_flight_requests_max: usize,
    /// The most record bytes one fetch response carries, whatever the client asks for.
    pub fetch_response_bytes_max: usize,
    /// Whether a Metadata or Produce request for an unknown topic creates it (Kafka's
    /// `auto.create.topics.enable`), with `auto_create_partitions` partitions.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic, and of a CreateTopics request that leaves it to the
    /// server (`num_partitions` -1).
    pub default_partitions: i32,
    /// How long shutdown waits for in-flight requests before closing their connections.
    pub shutdown_grace_ms: u64,
    /// The longest a fetch waits for data (`max_wait_ms` is capped here).
    pub fetch_wait_ms_max: u64,
    /// The longest session and rebalance timeout a group member may ask for (Kafka's
    /// `group.max.session.timeout.ms`): a JoinGroup or SyncGroup waits at most this long.
    pub group_timeout_ms_max: i64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised: None,
            request_bytes_max: 100 * 1024 * 1024,
            connections_max: 1024,
            in_flight_requests_max: 32,
            fetch_response_bytes_max: 50 * 1024 * 1024,
            auto_create_topics: false,
            default_partitions: 1,
            shutdown_grace_ms: 10_000,
            fetch_wait_ms_max: 30_000,
            group_timeout_ms_max: 30 * 60 * 1000,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listen address could not be bound, or the runtime not started.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The log is open read-only: a server must be the data directory's writer.
    #[error("the log is read-only; weir serve needs the data directory's writer lock")]
    ReadOnly,
}

/// What every connection shares: the log, the settings, the advertised endpoint.
pub(crate) struct Shared {
    pub(crate) log: Log,
    pub(crate) config: ServerConfig,
    pub(crate) host: String,
    pub(crate) port: i32,
    /// Connections open now (for the limit).
    pub(crate) connections: AtomicUsize,
}

/// A running server. Dropping it without [`Server::shutdown`] stops it abruptly.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    runtime: tokio::runtime::Runtime,
    accept: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds `config.listen` and serves `log` on a runtime of its own; returns once listening.
    /// The log stays the caller's: close it after [`Server::shutdown`].
    pub fn start(log: Log, config: ServerConfig) -> Result<Server, ServerError> {
        if !log.is_writable() {
            return Err(ServerError::ReadOnly);
        }
        let listen_error = |source| ServerError::Listen {
            addr: config.listen,
            source,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("weir-serve")
            .enable_all()
            .build()
            .map_err(listen_error)?;
        let listener = runtime
            .block_on(TcpListener::bind(config.listen))
            .map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let (host, port) = match &config.advertised {
            Some((host, port)) => (host.clone(), i32::from(*port)),
            None => (addr.ip().to_string(), i32::from(addr.port())),
        };
        let shared = Arc::new(Shared {
            log,
            config,
            host,
            port,
            connections: AtomicUsize::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let accept = runtime.spawn(accept_loop(listener, shared.clone(), stopped));
        Ok(Server {
            addr,
            stop,
            runtime,
            accept,
            shared,
        })
    }

    /// The address the server listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets every connection finish the requests it has read (up to
    /// `shutdown_grace_ms`), then closes them all.
    pub fn shutdown(self) {
        let _ = self.stop.send(true);
        let grace = Duration::from_millis(self.shared.config.shutdown_grace_ms);
        let accept = self.accept;
        self.runtime.block_on(async move {
            // The accept loop waits for its connections; past the grace, they are dropped.
            let _ = tokio::time::timeout(grace, accept).await;
        });
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(shared.config.connections_max));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        eprintln!("weir serve: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    eprintln!(
                        "weir serve: refusing {peer}: connections_max ({}) reached",
                        shared.config.connections_max
                    );
                    drop(socket);
                    continue;
                };
                let shared = shared.clone();
                let stopped = stopped.clone();
                connections.spawn(async move {
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    match connection::serve(socket, peer, &shared, stopped).await {
                        // A client that hangs up mid-reply is not news.
                        Ok(()) | Err(connection::ConnError::Io(_)) => {}
                        Err(e) => eprintln!("weir serve: closed the connection from {peer}: {e}"),
                    }
                    shared.connections.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
            // Reap finished connections so the set does not grow with every client ever seen.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}
