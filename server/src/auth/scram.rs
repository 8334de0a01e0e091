//! SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka's KIP-84 use them): the
//! salted credentials kept for a user, and the server's side of one exchange.
//!
//! The server keeps no password: only `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`, with the salt and the iteration count. A
//! client proves it knows the password without sending it; PLAIN (which does send it) is checked
//! against the same entry by deriving the StoredKey from the password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The two SCRAM mechanisms served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Mechanism {
    /// Both, in the order entries are written.
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha256, Mechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism of a SASL name.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes a key of any length");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Mechanism::Sha256 => run::<Hmac<Sha256>>(key, parts),
            Mechanism::Sha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            Mechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

/// Kafka's lowest iteration count for SCRAM credentials, and weir's default.
pub const ITERATIONS_MIN: u32 = 4096;
/// The highest iteration count accepted (Kafka's bound): more only slows every login.
pub const ITERATIONS_MAX: u32 = 16384;

/// One user's salted credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// Which hash.
    pub mechanism: Mechanism,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The random salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential of `password` with a fresh random salt.
    pub fn new(mechanism: Mechanism, password: &str, iterations: u32) -> std::io::Result<Self> {
        let mut salt = vec![0u8; 32];
        getrandom::fill(&mut salt).map_err(std::io::Error::other)?;
        Ok(Self::with_salt(mechanism, password, salt, iterations))
    }

    /// The credential of `password` with a given salt.
    pub fn with_salt(mechanism: Mechanism, password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = mechanism.hmac(&salted, &[b"Client Key"]);
        ScramCredential {
            mechanism,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(&salted, &[b"Server Key"]),
            salt,
        }
    }

    /// Whether `password` is the one this credential was made from (for SASL PLAIN).
    pub fn matches_password(&self, password: &str) -> bool {
        let salted =
            self.mechanism
                .salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = self.mechanism.hmac(&salted, &[b"Client Key"]);
        constant_time_eq(&self.mechanism.hash(&client_key), &self.stored_key)
    }

    /// The credential as the fields of a credentials-file line.
    pub(crate) fn fields(&self) -> String {
        format!(
            "iterations={} salt={} stored_key={} server_key={}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why an exchange failed. The message a client sees never says whether the user exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The client's message does not follow RFC 5802.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Unknown user or wrong password.
    #[error("authentication failed: invalid credentials")]
    InvalidCredentials,
}

/// The server's side of one SCRAM exchange: client-first → server-first, client-final →
/// server-final.
#[derive(Debug)]
pub(crate) struct ScramServer {
    mechanism: Mechanism,
    state: State,
}

#[derive(Debug)]
enum State {
    Start,
    SentFirst {
        user: String,
        credential: Option<ScramCredential>,
        nonce: String,
        client_first_bare: String,
        server_first: String,
    },
    Done,
}

/// What a step produced: a message for the client, and the user once proven.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) reply: Vec<u8>,
    pub(crate) authenticated: Option<String>,
}

impl ScramServer {
    pub(crate) fn new(mechanism: Mechanism) -> Self {
        ScramServer {
            mechanism,
            state: State::Start,
        }
    }

    pub(crate) fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// One client message. `lookup` finds a user's credential for this mechanism.
    pub(crate) fn step(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Step, ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Start => {
                let (user, client_nonce, bare) = parse_client_first(message)?;
                let credential = lookup(&user).filter(|c| c.mechanism == self.mechanism);
                let mut server_nonce = [0u8; 24];
                getrandom::fill(&mut server_nonce)
                    .map_err(|_| ScramError::Malformed("no randomness for a nonce"))?;
                let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
                // An unknown user gets a made-up salt, so that the first reply does not tell
                // who exists; the proof then fails as a wrong password would.
                let (salt, iterations) = match &credential {
                    Some(c) => (c.salt.clone(), c.iterations),
                    None => (
                        self.mechanism.hash(user.as_bytes())[..16].to_vec(),
                        ITERATIONS_MIN,
                    ),
                };
                let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
                self.state = State::SentFirst {
                    user,
                    credential,
                    nonce,
                    client_first_bare: bare.to_string(),
                    server_first: server_first.clone(),
                };
                Ok(Step {
                    reply: server_first.into_bytes(),
                    authenticated: None,
                })
            }
            State::SentFirst {
                user,
                credential,
                nonce,
                client_first_bare,
                server_first,
            } => {
                let (without_proof, proof) = message
                    .rsplit_once(",p=")
                    .ok_or(ScramError::Malformed("client-final has no proof"))?;
                let mut attrs = without_proof.split(',');
                let channel = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("c="))
                    .ok_or(ScramError::Malformed("client-final has no channel binding"))?;
                // "n,," base64: no channel binding, no authorization identity other than the
                // user (an authzid is refused at client-first).
                if channel != "biws" {
                    return Err(ScramError::Malformed("channel binding is not supported"));
                }
                let echoed = attrs
                    .next()
                    .and_then(|a| a.strip_prefix("r="))
                    .ok_or(ScramError::Malformed("client-final has no nonce"))?;
                if echoed != nonce {
                    return Err(ScramError::Malformed("nonce mismatch"));
                }
                let proof = B64
                    .decode(proof)
                    .map_err(|_| ScramError::Malformed("proof is not base64"))?;
                let credential = credential.ok_or(ScramError::InvalidCredentials)?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let m = self.mechanism;
                let client_signature = m.hmac(&credential.stored_key, &[auth_message.as_bytes()]);
                if proof.len() != client_signature.len() {
                    return Err(ScramError::InvalidCredentials);
                }
                let client_key: Vec<u8> = proof
                    .iter()
                    .zip(&client_signature)
                    .map(|(p, s)| p ^ s)
                    .collect();
                if !constant_time_eq(&m.hash(&client_key), &credential.stored_key) {
                    return Err(ScramError::InvalidCredentials);
                }
                let server_signature = m.hmac(&credential.server_key, &[auth_message.as_bytes()]);
                Ok(Step {
                    reply: format!("v={}", B64.encode(server_signature)).into_bytes(),
                    authenticated: Some(user),
                })
            }
            State::Done => Err(ScramError::Malformed("the exchange is over")),
        }
    }
}

/// `n,,n=USER,r=NONCE[,extensions]` → (user, nonce, the bare part after the GS2 header).
fn parse_client_first(message: &str) -> Result<(String, &str, &str), ScramError> {
    let rest = message
        .strip_prefix("n,")
        .ok_or(ScramError::Malformed("channel binding is not supported"))?;
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or(ScramError::Malformed("client-first has no GS2 header"))?;
    let mut attrs = bare.split(',');
    let user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or(ScramError::Malformed("client-first has no user name"))?;
    let user = unescape_name(user)?;
    if let Some(authzid) = authzid.strip_prefix("a=")
        && unescape_name(authzid)? != user
    {
        return Err(ScramError::Malformed(
            "an authorization identity other than the user is not supported",
        ));
    }
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or(ScramError::Malformed("client-first has no valid nonce"))?;
    // Further attributes are extensions (Kafka's `tokenauth=true` among them): delegation
    // tokens are not served, so any extension is refused rather than ignored.
    if attrs.next().is_some() {
        return Err(ScramError::Malformed("SCRAM extensions are not supported"));
    }
    Ok((user, nonce, bare))
}

/// RFC 5802's saslname: `=2C` is ',' and `=3D` is '='; any other '=' is an error.
fn unescape_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in the user name")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's side, written from RFC 5802 independently of the server's code above.
    fn client_final(
        m: Mechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let mut parts = server_first.split(',');
        let nonce = parts.next().unwrap().strip_prefix("r=").unwrap();
        let salt = B64
            .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let i: u32 = parts.next().unwrap()[2..].parse().unwrap();
        let salted = m.salted_password(password.as_bytes(), &salt, i);
        let client_key = m.hmac(&salted, &[b"Client Key"]);
        let stored = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = m.hmac(&stored, &[auth.as_bytes()]);
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_key = m.hmac(&salted, &[b"Server Key"]);
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            m.hmac(&server_key, &[auth.as_bytes()]),
        )
    }

    fn exchange(m: Mechanism, stored_password: &str, tried: &str) -> Result<String, ScramError> {
        let credential = ScramCredential::new(m, stored_password, ITERATIONS_MIN).unwrap();
        let mut server = ScramServer::new(m);
        let bare = "n=al=2Cice,r=fyko+d2lbbFgONRv9qkxdawL";
        let first = server.step(format!("n,,{bare}").as_bytes(), |u| {
            (u == "al,ice").then(|| credential.clone())
        })?;
        let server_first = String::from_utf8(first.reply).unwrap();
        let (final_message, expected_signature) = client_final(m, tried, bare, &server_first);
        let last = server.step(final_message.as_bytes(), |_| unreachable!())?;
        assert_eq!(
            String::from_utf8(last.reply).unwrap(),
            format!("v={}", B64.encode(expected_signature))
        );
        Ok(last.authenticated.unwrap())
    }

    #[test]
    fn a_right_password_authenticates_and_a_wrong_one_does_not() {
        for m in Mechanism::ALL {
            assert_eq!(exchange(m, "s3cret", "s3cret").unwrap(), "al,ice");
            assert_eq!(
                exchange(m, "s3cret", "s3cret!").unwrap_err(),
                ScramError::InvalidCredentials
            );
        }
    }

    /// RFC 7677's test vector for SCRAM-SHA-256 (user "user", password "pencil").
    #[test]
    fn rfc_7677_test_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential =
            ScramCredential::with_salt(Mechanism::Sha256, "pencil", salt.clone(), 4096);
        let mut server = ScramServer::new(Mechanism::Sha256);
        let first = server
            .step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", |_| {
                Some(credential.clone())
            })
            .unwrap();
        let server_first = String::from_utf8(first.reply).unwrap();
        // The server's nonce is random: recompute the RFC's proof over the nonce it chose.
        let (final_message, _) = client_final(
            Mechanism::Sha256,
            "pencil",
            "n=user,r=rOprNGfwEbeRWgbNEkqO",
            &server_first,
        );
        assert!(server.step(final_message.as_bytes(), |_| None).is_ok());
        // And the RFC's own exchange, with its nonce, gives its proof and signature.
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = Mechanism::Sha256.hmac(&credential.server_key, &[auth.as_bytes()]);
        assert_eq!(
            B64.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn plain_passwords_are_checked_against_the_salted_entry() {
        let c = ScramCredential::new(Mechanism::Sha512, "pw", ITERATIONS_MIN).unwrap();
        assert!(c.matches_password("pw"));
        assert!(!c.matches_password("pw "));
    }

    #[test]
    fn malformed_messages_are_refused_not_panicked_on() {
        for bad in [
            &b""[..],
            b"n,,",
            b"y,,n=a,r=b",
            b"n,,n=,r=x",
            b"n,,n=a=1,r=x",
            b"n,,n=a",
            b"n,a=b,n=a,r=x",
            b"\xff",
            b"n,,n=a,r=x,tokenauth=true",
        ] {
            let mut s = ScramServer::new(Mechanism::Sha256);
            assert!(
                matches!(s.step(bad, |_| None), Err(ScramError::Malformed(_))),
                "{bad:?}"
            );
        }
        let mut s = ScramServer::new(Mechanism::Sha256);
        s.step(b"n,,n=a,r=x", |_| None).unwrap();
        assert!(s.step(b"c=biws,r=WRONG,p=AAAA", |_| None).is_err());
    }
}
