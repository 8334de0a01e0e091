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
//! auth/           TLS, SASL (PLAIN, SCRAM-SHA-256/512) and ACLs; the users and ACL files
//! errors.rs       log errors → Kafka error codes, in one place
//! memory.rs       the bytes held for clients: each connection's share, the server's pool
//! harness.rs      RequestHarness: a connection's bytes answered without a socket (fuzzing)
//! ```
#![warn(missing_docs)]

mod api;
pub mod auth;
mod connection;
mod errors;
mod harness;
mod memory;
mod reply;

pub use auth::{AclConfig, SecurityError, TlsConfig};
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
    /// Where to listen. Loopback by default; any other address needs SASL on (`sasl_users`)
    /// unless `insecure_non_loopback` says otherwise.
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
    /// TLS on the listener with these PEM files; plain TCP when `None`.
    pub tls: Option<TlsConfig>,
    /// SASL on, with the users of this credentials file (see [`auth::credentials`]): every
    /// connection must authenticate before any request other than ApiVersions.
    pub sasl_users: Option<std::path::PathBuf>,
    /// ACLs on, from this file (see [`auth::acl`]); everything allowed when `None`.
    pub acls: Option<AclConfig>,
    /// How long a connection may take from accept to authenticated (the TLS handshake and
    /// SASL), before it is closed.
    pub authentication_ms_max: u64,
    /// Listen on a non-loopback address without SASL: anyone who can reach it gets the data.
    pub insecure_non_loopback: bool,
    /// The bytes all connections together may hold in request frames not yet handled and fetch
    /// replies not yet written (Kafka's `queued.max.request.bytes`, for replies too). Past it,
    /// frames wait to be read and fetches return fewer records. Each connection may hold at
    /// most the larger of `request_bytes_max` and `fetch_response_bytes_max`; the pool is never
    /// smaller than that.
    pub buffer_bytes_max: usize,
    /// How long one reply may take to be written, and one request to arrive whole once its
    /// length is read, before the connection is closed: a client that stops reading, or stops
    /// sending halfway through a request, gives its buffers back after this long.
    pub stall_ms_max: u64,
    /// A connection with no request for this long is closed (Kafka's `connections.max.idle.ms`).
    pub connection_idle_ms_max: u64,
}

impl ServerConfig {
    /// The bytes one connection may hold: room for its largest request or fetch reply.
    pub(crate) fn connection_buffer_bytes(&self) -> usize {
        self.request_bytes_max.max(self.fetch_response_bytes_max)
    }
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
            tls: None,
            sasl_users: None,
            acls: None,
            authentication_ms_max: 10_000,
            insecure_non_loopback: false,
            buffer_bytes_max: 512 * 1024 * 1024,
            stall_ms_max: 60_000,
            connection_idle_ms_max: 10 * 60 * 1000,
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
    /// The users file, the ACL file or the TLS certificate cannot be used.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// A non-loopback listen address without authentication.
    #[error(
        "refusing to listen on {0} without authentication: anyone who can reach it would read \
         and write every topic. Turn SASL on (--users FILE), listen on loopback, or say \
         --insecure-non-loopback"
    )]
    Unauthenticated(SocketAddr),
}

/// What every connection shares: the log, the settings, the advertised endpoint.
pub(crate) struct Shared {
    pub(crate) log: Log,
    pub(crate) config: ServerConfig,
    pub(crate) host: String,
    pub(crate) port: i32,
    /// Connections open now (for the limit).
    pub(crate) connections: AtomicUsize,
    /// TLS, users, ACLs.
    pub(crate) security: auth::Security,
    /// The server's pool of buffer bytes (see [`memory`]).
    pub(crate) buffers: Arc<memory::ServerPool>,
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
        if !config.listen.ip().is_loopback()
            && config.sasl_users.is_none()
            && !config.insecure_non_loopback
        {
            return Err(ServerError::Unauthenticated(config.listen));
        }
        let security = auth::Security::load(
            config.tls.as_ref(),
            config.sasl_users.as_deref(),
            config.acls.as_ref(),
        )?;
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
            host,
            port,
            connections: AtomicUsize::new(0),
            security,
            buffers: memory::server_pool(&config),
            config,
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
                    match serve_connection(socket, peer, &shared, stopped).await {
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

/// One accepted socket: the TLS handshake first if TLS is on (within `authentication_ms_max`),
/// then the Kafka protocol.
async fn serve_connection(
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    stopped: watch::Receiver<bool>,
) -> Result<(), connection::ConnError> {
    socket.set_nodelay(true)?;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(shared.config.authentication_ms_max);
    match &shared.security.tls {
        None => connection::serve(socket, peer, shared, stopped, deadline).await,
        Some(acceptor) => {
            let stream = match tokio::time::timeout_at(deadline, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(connection::ConnError::Tls(e.to_string())),
                Err(_) => return Err(connection::ConnError::AuthenticationTimeout),
            };
            connection::serve(stream, peer, shared, stopped, deadline).await
        }
    }
}
