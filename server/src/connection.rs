//! One client connection: length-prefixed frames in, replies out in request order.
//!
//! A reader task reads frames into a channel of `in_flight_requests_max` slots; this task
//! dispatches each (the parts whose order matters, appends, run at once, in order) and keeps the
//! replies still being computed (fsync waits, long polls, group joins) in a queue, writing each
//! as soon as it and everything before it is ready. A client that does not read its replies
//! blocks the write, which stops the dispatching, which fills the channel, which stops the
//! reading: the server waits rather than buffers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::Shared;
use crate::api;
use crate::auth::Session;
use crate::memory::{Held, Pools};
use crate::reply::Reply;

/// Why a connection was closed by the server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("request of {bytes} bytes exceeds request_bytes_max ({max})")]
    TooLarge { bytes: i64, max: usize },
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(i64),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("unsupported version {version} of API {api}")]
    UnsupportedVersion { api: &'static str, version: i16 },
    #[error("cannot decode {api} v{version}: {reason}")]
    Decode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("cannot encode the {api} v{version} response: {reason}")]
    Encode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("a request handler failed: {0}")]
    Handler(String),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("not authenticated within authentication_ms_max")]
    AuthenticationTimeout,
    #[error(
        "{api} before authenticating (SASL is on: only ApiVersions, SaslHandshake and SaslAuthenticate are served until then)"
    )]
    Unauthenticated { api: &'static str },
    #[error("SASL authentication failed for principal '{principal}'")]
    AuthenticationFailed { principal: String },
    #[error(
        "a reply of {bytes} bytes was not taken within stall_ms_max ({ms} ms): the client does not read"
    )]
    SlowReader { bytes: usize, ms: u64 },
    #[error("a request of {bytes} bytes did not arrive whole within stall_ms_max ({ms} ms)")]
    SlowSender { bytes: usize, ms: u64 },
}

/// A reply in the making: ready (None for requests that get no reply, produce with acks=0), a
/// task computing it, or a task computing one that holds buffer bytes until written (a fetch).
pub(crate) enum Pending {
    Ready(Option<Bytes>),
    Task(JoinHandle<Result<Option<Bytes>, ConnError>>),
    Held(JoinHandle<Result<(Reply, Held), ConnError>>),
}

/// The smallest request: api key, version, correlation id, client-id length.
const REQUEST_HEADER_BYTES_MIN: i64 = 10;

pub(crate) async fn serve<S>(
    socket: S,
    peer: std::net::SocketAddr,
    shared: &Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    authenticate_by: tokio::time::Instant,
) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read, mut write) = tokio::io::split(socket);
    let mut session = Session::new(&shared.security);
    let pools = Pools::new(
        shared.buffers.clone(),
        shared.config.connection_buffer_bytes(),
    );
    let in_flight_max = shared.config.in_flight_requests_max.max(1);
    let (frames_tx, mut frames) = mpsc::channel(in_flight_max);
    let authenticated = Arc::new(AtomicBool::new(session.authenticated));
    let reader = tokio::spawn(read_frames(
        read,
        Limits {
            request_bytes_max: shared.config.request_bytes_max,
            stall_ms_max: shared.config.stall_ms_max,
            authenticated: authenticated.clone(),
        },
        pools.clone(),
        frames_tx,
    ));
    let write_max = Duration::from_millis(shared.config.stall_ms_max);
    let idle_max = Duration::from_millis(shared.config.connection_idle_ms_max);
    let mut idle_since = tokio::time::Instant::now();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut stopping = false;
    let mut failure: Option<ConnError> = None;
    let mut input_done = false;
    loop {
        if (stopping || input_done) && pending.is_empty() {
            break;
        }
        tokio::select! {
            reply = next_reply(&mut pending), if !pending.is_empty() => {
                match reply {
                    Ok(Some((mut reply, held))) => {
                        let bytes = reply.remaining();
                        match tokio::time::timeout(write_max, write.write_all_buf(&mut reply)).await {
                            Ok(written) => written?,
                            Err(_) => {
                                failure = Some(ConnError::SlowReader {
                                    bytes,
                                    ms: shared.config.stall_ms_max,
                                });
                                break;
                            }
                        }
                        drop(held);
                        idle_since = tokio::time::Instant::now();
                    }
                    Ok(None) => idle_since = tokio::time::Instant::now(),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            frame = frames.recv(), if !input_done && !stopping && pending.len() < in_flight_max => {
                match frame {
                    Some(Ok((frame, held))) => match api::dispatch(shared, peer, &mut session, &pools, frame) {
                        Ok(p) => {
                            // Handled: the request's bytes are the log's or the reply's now.
                            drop(held);
                            if session.authenticated {
                                authenticated.store(true, Ordering::Relaxed);
                            }
                            idle_since = tokio::time::Instant::now();
                            pending.push_back(p);
                            if session.close_after_reply {
                                // A failed authentication: its reply, then nothing more.
                                failure = Some(ConnError::AuthenticationFailed {
                                    principal: session.attempted.clone(),
                                });
                                input_done = true;
                            }
                        }
                        Err(e) => {
                            // Answer what came before, then close.
                            failure = Some(e);
                            input_done = true;
                        }
                    },
                    Some(Err(e)) => {
                        failure = Some(e);
                        input_done = true;
                    }
                    None => input_done = true,
                }
            }
            _ = stopped.changed(), if !stopping => stopping = true,
            _ = tokio::time::sleep_until(idle_since + idle_max), if pending.is_empty() => {
                // Idle: nothing asked, nothing owed. Closed quietly, as Kafka does.
                break;
            }
            _ = tokio::time::sleep_until(authenticate_by), if !session.authenticated => {
                failure = Some(ConnError::AuthenticationTimeout);
                break;
            }
        }
    }
    reader.abort();
    let _ = write.shutdown().await;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Waits for the oldest reply, with the buffer bytes it holds. Cancel-safe: the reply leaves
/// the queue only once complete.
async fn next_reply(pending: &mut VecDeque<Pending>) -> Result<Option<(Reply, Held)>, ConnError> {
    let handler_failed = |e: tokio::task::JoinError| ConnError::Handler(e.to_string());
    let reply = match pending.front_mut() {
        None => return Ok(None),
        Some(Pending::Ready(bytes)) => Ok(bytes.take().map(|b| (Reply::from(b), Held::none()))),
        Some(Pending::Task(task)) => match task.await {
            Ok(r) => r.map(|b| b.map(|b| (Reply::from(b), Held::none()))),
            Err(e) => Err(handler_failed(e)),
        },
        Some(Pending::Held(task)) => match task.await {
            Ok(r) => r.map(Some),
            Err(e) => Err(handler_failed(e)),
        },
    };
    pending.pop_front();
    reply
}

/// The body length a frame's prefix announces, if it is within the limits.
pub(crate) fn frame_length(prefix: [u8; 4], request_bytes_max: usize) -> Result<usize, ConnError> {
    let len = i64::from(i32::from_be_bytes(prefix));
    if len < REQUEST_HEADER_BYTES_MIN {
        Err(ConnError::TooShort(len))
    } else if len as u64 > request_bytes_max as u64 {
        Err(ConnError::TooLarge {
            bytes: len,
            max: request_bytes_max,
        })
    } else {
        Ok(len as usize)
    }
}

/// The largest frame a connection may send before it has authenticated (Kafka's
/// `sasl.server.max.receive.size`): SASL messages and ApiVersions are small.
const UNAUTHENTICATED_REQUEST_BYTES_MAX: usize = 512 * 1024;

/// What the frame reader enforces.
struct Limits {
    request_bytes_max: usize,
    stall_ms_max: u64,
    /// Set by the connection once SASL has succeeded (or from the start without SASL).
    authenticated: Arc<AtomicBool>,
}

/// Reads length-prefixed frames until the peer closes, a frame breaks a limit, or the
/// connection's task goes away. The length is checked, and its bytes taken from the buffer
/// pools, before the buffer is allocated.
async fn read_frames<S: AsyncRead>(
    mut read: ReadHalf<S>,
    limits: Limits,
    pools: Pools,
    frames: mpsc::Sender<Result<(Bytes, Held), ConnError>>,
) {
    loop {
        let mut prefix = [0u8; 4];
        match read.read_exact(&mut prefix).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                let _ = frames.send(Err(e.into())).await;
                return;
            }
        }
        let request_bytes_max = if limits.authenticated.load(Ordering::Relaxed) {
            limits.request_bytes_max
        } else {
            limits
                .request_bytes_max
                .min(UNAUTHENTICATED_REQUEST_BYTES_MAX)
        };
        let len = match frame_length(prefix, request_bytes_max) {
            Ok(len) => len,
            Err(e) => {
                let _ = frames.send(Err(e)).await;
                return;
            }
        };
        let held = pools.acquire(len).await;
        let mut body = BytesMut::zeroed(len);
        let stall = Duration::from_millis(limits.stall_ms_max);
        match tokio::time::timeout(stall, read.read_exact(&mut body)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let _ = frames.send(Err(e.into())).await;
                return;
            }
            Err(_) => {
                let _ = frames
                    .send(Err(ConnError::SlowSender {
                        bytes: len,
                        ms: limits.stall_ms_max,
                    }))
                    .await;
                return;
            }
        }
        if frames.send(Ok((body.freeze(), held))).await.is_err() {
            return;
        }
    }
}
