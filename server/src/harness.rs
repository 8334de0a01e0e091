//! Requests answered without a socket: the fuzz target's way in. The bytes are read as a
//! connection's input stream, with the connection's framing, limits and dispatch, so whatever a
//! client could send over TCP can be sent here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use weir_log::Log;

use crate::connection::{ConnError, Pending, frame_length};
use crate::{ServerConfig, Shared, api};

/// A server without a listener: [`RequestHarness::feed`] plays a connection's bytes through
/// the same code as `weir serve`.
pub struct RequestHarness {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
}

impl RequestHarness {
    /// A harness over `log` (which must be writable) with `config`'s limits.
    pub fn new(log: Log, config: ServerConfig) -> std::io::Result<RequestHarness> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            log,
            host: "127.0.0.1".into(),
            port: 9092,
            security: crate::auth::Security::load(
                config.tls.as_ref(),
                config.sasl_users.as_deref(),
                config.acls.as_ref(),
            )
            .map_err(std::io::Error::other)?,
            buffers: crate::memory::server_pool(&config),
            config,
            connections: AtomicUsize::new(0),
        });
        Ok(RequestHarness { runtime, shared })
    }

    /// Reads `bytes` as one connection's input: frame by frame, each answered in order. Returns
    /// the response frames, and why the connection would have been closed, if it would.
    pub fn feed(&self, mut bytes: &[u8]) -> (Vec<Bytes>, Option<String>) {
        let mut replies = Vec::new();
        let mut session = crate::auth::Session::new(&self.shared.security);
        let pools = crate::memory::Pools::new(
            self.shared.buffers.clone(),
            self.shared.config.connection_buffer_bytes(),
        );
        while bytes.len() >= 4 {
            let prefix = [bytes[0], bytes[1], bytes[2], bytes[3]];
            let len = match frame_length(prefix, self.shared.config.request_bytes_max) {
                Ok(len) => len,
                Err(e) => return (replies, Some(e.to_string())),
            };
            let Some(frame) = bytes.get(4..4 + len) else {
                return (replies, Some("the input ends inside a frame".into()));
            };
            bytes = &bytes[4 + len..];
            let shared = self.shared.clone();
            let frame = Bytes::copy_from_slice(frame);
            let session = &mut session;
            let pools = &pools;
            let answered = self.runtime.block_on(async move {
                let peer = SocketAddr::from(([127, 0, 0, 1], 1));
                match api::dispatch(&shared, peer, session, pools, frame)? {
                    Pending::Ready(reply) => Ok(reply),
                    Pending::Task(task) => {
                        task.await.map_err(|e| ConnError::Handler(e.to_string()))?
                    }
                    Pending::Held(task) => task
                        .await
                        .map_err(|e| ConnError::Handler(e.to_string()))?
                        .map(|(reply, _held)| Some(reply.into_bytes())),
                }
            });
            match answered {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => {}
                Err(e) => return (replies, Some(e.to_string())),
            }
        }
        (replies, None)
    }
}
