//! Who a connection is and what it may do: TLS on the listener, SASL (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512) before any other request, and ACLs on every topic, group and transactional id
//! a request names. All off by default, and then the server listens on loopback only.
//!
//! ```text
//! credentials.rs  the users file: salted SCRAM entries (`weir user add`), PLAIN checked against them
//! scram.rs        RFC 5802 on the server's side; credentials derived with PBKDF2
//! acl.rs          allow/deny rules per principal, Kafka's precedence, deny by default
//! tls.rs          the operator's PEM certificate chain and key as a rustls acceptor
//! ```

pub mod acl;
pub mod credentials;
pub mod scram;
pub(crate) mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

use crate::api::text;
use crate::errors::{KafkaCode, code};
use acl::Acls;
use credentials::Credentials;
use scram::{Mechanism, ScramError, ScramServer};

/// The principal of a connection that did not authenticate (Kafka's `User:ANONYMOUS`).
pub const ANONYMOUS: &str = "ANONYMOUS";

/// The SASL mechanisms served, as SaslHandshake lists them.
pub const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The largest SASL message accepted, in bytes (a SCRAM or PLAIN message is far smaller).
const SASL_MESSAGE_BYTES_MAX: usize = 16 * 1024;

/// How often a watched file's modification time is looked at, at most.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// TLS with the operator's certificate: PEM files of the chain (leaf first) and its key.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The certificate chain.
    pub cert_chain_pem: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: PathBuf,
}

/// ACLs from a file.
#[derive(Debug, Clone)]
pub struct AclConfig {
    /// The rules (see [`acl`]).
    pub path: PathBuf,
    /// Whether a request no rule matches is allowed; false is deny by default.
    pub allow_if_no_rule: bool,
}

/// An operator's file (the users, the ACLs) that cannot be read or does not parse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

impl FileError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> FileError {
        FileError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn parse(path: &Path, line: usize, reason: impl Into<String>) -> FileError {
        FileError::Parse {
            path: path.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }
}

/// A file of at most `bytes_max` bytes, as text.
pub(crate) fn read_file(path: &Path, bytes_max: u64) -> Result<String, FileError> {
    let len = std::fs::metadata(path)
        .map_err(|e| FileError::io(path, e))?
        .len();
    if len > bytes_max {
        return Err(FileError::io(
            path,
            std::io::Error::other(format!("{len} bytes is over the {bytes_max}-byte limit")),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| FileError::io(path, e))
}

/// Why the security settings could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// The users file.
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    /// The ACL file.
    #[error(transparent)]
    Acls(#[from] FileError),
    /// The certificate or key.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A file the operator edits while the server runs, reloaded when its modification time or
/// size changes; a version that does not parse is reported and the last good one kept.
pub(crate) struct Watched<T> {
    path: PathBuf,
    load: fn(&Path, &T) -> Result<T, SecurityError>,
    state: Mutex<WatchState<T>>,
}

struct WatchState<T> {
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
    value: Arc<T>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl<T> Watched<T> {
    fn new(path: PathBuf, first: T, load: fn(&Path, &T) -> Result<T, SecurityError>) -> Watched<T> {
        Watched {
            state: Mutex::new(WatchState {
                stamp: stamp(&path),
                checked: Instant::now(),
                value: Arc::new(first),
            }),
            path,
            load,
        }
    }

    /// The current version; `fresh` looks at the file now rather than at most once a second.
    pub(crate) fn current(&self, fresh: bool) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if fresh || state.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            state.checked = Instant::now();
            let now = stamp(&self.path);
            if now != state.stamp {
                state.stamp = now;
                match (self.load)(&self.path, &state.value) {
                    Ok(v) => {
                        eprintln!("weir serve: reloaded {}", self.path.display());
                        state.value = Arc::new(v);
                    }
                    Err(e) => eprintln!(
                        "weir serve: keeping the previous {}: {e}",
                        self.path.display()
                    ),
                }
            }
        }
        state.value.clone()
    }
}

/// The server's security, loaded at start.
pub(crate) struct Security {
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) credentials: Option<Watched<Credentials>>,
    pub(crate) acls: Option<Watched<Acls>>,
}

impl Security {
    pub(crate) fn load(
        tls: Option<&TlsConfig>,
        users: Option<&Path>,
        acls: Option<&AclConfig>,
    ) -> Result<Security, SecurityError> {
        let tls = tls.map(tls::acceptor).transpose()?;
        let credentials = match users {
            None => None,
            Some(path) => Some(Watched::new(
                path.to_path_buf(),
                Credentials::load(path)?,
                |p, _| Ok(Credentials::load(p)?),
            )),
        };
        let acls = match acls {
            None => None,
            Some(c) => Some(Watched::new(
                c.path.clone(),
                Acls::load(&c.path, c.allow_if_no_rule)?,
                |p, old| Ok(Acls::load(p, old.allow_if_no_rule)?),
            )),
        };
        Ok(Security {
            tls,
            credentials,
            acls,
        })
    }

    pub(crate) fn sasl(&self) -> bool {
        self.credentials.is_some()
    }
}

/// Where one connection is in authenticating.
pub(crate) struct Session {
    /// Who the connection is: the authenticated user, or [`ANONYMOUS`].
    pub(crate) principal: Arc<str>,
    /// Whether requests other than ApiVersions and SASL's may be served.
    pub(crate) authenticated: bool,
    /// Close the connection once the reply at hand is written (a failed authentication).
    pub(crate) close_after_reply: bool,
    /// The user name the client tried, for the log line of a failure.
    pub(crate) attempted: String,
    exchange: Exchange,
}

enum Exchange {
    /// No SaslHandshake yet.
    None,
    Plain,
    Scram(ScramServer),
    Done,
}

impl Session {
    pub(crate) fn new(security: &Security) -> Session {
        Session {
            principal: Arc::from(ANONYMOUS),
            authenticated: !security.sasl(),
            close_after_reply: false,
            attempted: String::new(),
            exchange: Exchange::None,
        }
    }
}

pub(crate) fn sasl_handshake(
    session: &mut Session,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let mechanisms = SASL_MECHANISMS.iter().map(|m| text(*m)).collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    if !matches!(session.exchange, Exchange::None) {
        session.close_after_reply = true;
        return response.with_error_code(code(KafkaCode::IllegalSaslState));
    }
    session.exchange = match request.mechanism.as_str() {
        "PLAIN" => Exchange::Plain,
        name => match Mechanism::from_name(name) {
            Some(m) => Exchange::Scram(ScramServer::new(m)),
            None => {
                session.close_after_reply = true;
                return response.with_error_code(code(KafkaCode::UnsupportedSaslMechanism));
            }
        },
    };
    response
}

pub(crate) fn sasl_authenticate(
    security: &Security,
    session: &mut Session,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    let failed = |session: &mut Session, code_: KafkaCode, message: String| {
        session.close_after_reply = true;
        session.exchange = Exchange::Done;
        SaslAuthenticateResponse::default()
            .with_error_code(code(code_))
            .with_error_message(Some(text(message)))
    };
    let Some(credentials) = &security.credentials else {
        return failed(
            session,
            KafkaCode::IllegalSaslState,
            "SASL is not enabled on this server".into(),
        );
    };
    if request.auth_bytes.len() > SASL_MESSAGE_BYTES_MAX {
        return failed(
            session,
            KafkaCode::SaslAuthenticationFailed,
            "SASL message too large".into(),
        );
    }
    let bytes: &Bytes = &request.auth_bytes;
    match &mut session.exchange {
        Exchange::None | Exchange::Done => failed(
            session,
            KafkaCode::IllegalSaslState,
            "SaslAuthenticate without a SaslHandshake".into(),
        ),
        Exchange::Plain => match parse_plain(bytes) {
            None => failed(
                session,
                KafkaCode::SaslAuthenticationFailed,
                "malformed PLAIN message".into(),
            ),
            Some((user, password)) => {
                session.attempted = user.clone();
                if credentials.current(true).check_plain(&user, &password) {
                    session.exchange = Exchange::Done;
                    session.authenticated = true;
                    session.principal = Arc::from(user);
                    SaslAuthenticateResponse::default()
                } else {
                    failed(
                        session,
                        KafkaCode::SaslAuthenticationFailed,
                        "Authentication failed: invalid username or password".into(),
                    )
                }
            }
        },
        Exchange::Scram(server) => {
            let current = credentials.current(true);
            let mechanism = server.mechanism();
            let attempted = &mut session.attempted;
            let step = server.step(bytes, |user| {
                *attempted = user.to_string();
                current.get(user, mechanism).cloned()
            });
            match step {
                Ok(step) => {
                    if let Some(user) = step.authenticated {
                        session.exchange = Exchange::Done;
                        session.authenticated = true;
                        session.principal = Arc::from(user);
                    }
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(step.reply))
                }
                Err(ScramError::InvalidCredentials) => failed(
                    session,
                    KafkaCode::SaslAuthenticationFailed,
                    "Authentication failed during authentication due to invalid credentials".into(),
                ),
                Err(e) => failed(session, KafkaCode::SaslAuthenticationFailed, e.to_string()),
            }
        }
    }
}

/// PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`; an authzid other than the user is
/// refused, as Kafka does.
fn parse_plain(message: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(message).ok()?;
    let mut parts = text.split('\0');
    let (authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || (!authzid.is_empty() && authzid != user) {
        return None;
    }
    Some((user.to_string(), password.to_string()))
}
