//! The credentials file: the SCRAM entries of every user, managed by the operator with
//! `weir user add|remove|list` (or any editor), read by `weir serve --users FILE`.
//!
//! One line per user and mechanism; `#` starts a comment:
//! ```text
//! alice SCRAM-SHA-256 iterations=4096 salt=<base64> stored_key=<base64> server_key=<base64>
//! alice SCRAM-SHA-512 iterations=4096 salt=<base64> stored_key=<base64> server_key=<base64>
//! ```
//! No password is kept. The server notices a changed file at the next login, so users added or
//! removed take effect without a restart (established sessions stay, as in Kafka).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::scram::{ITERATIONS_MAX, ITERATIONS_MIN, Mechanism, ScramCredential};
use super::{FileError, read_file};

/// The longest user name accepted, in bytes.
pub const USER_NAME_BYTES_MAX: usize = 255;
/// The largest credentials file read, in bytes.
pub const CREDENTIALS_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// A credentials file that cannot be used, or a user that cannot be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The file cannot be read or written, or does not parse.
    #[error(transparent)]
    File(#[from] FileError),
    /// A user name that cannot be used.
    #[error("bad user name '{0}': {1}")]
    BadName(String, &'static str),
    /// An iteration count out of bounds.
    #[error("iterations must be from {ITERATIONS_MIN} to {ITERATIONS_MAX}, got {0}")]
    BadIterations(u32),
}

/// Every user's credentials, by name and mechanism.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    users: HashMap<String, Vec<ScramCredential>>,
}

/// Whether `name` can be a user name: printable, no whitespace, not too long.
pub fn check_user_name(name: &str) -> Result<(), CredentialsError> {
    let bad = |why| Err(CredentialsError::BadName(name.to_string(), why));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > USER_NAME_BYTES_MAX {
        return bad("it is longer than 255 bytes");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it holds whitespace or control characters");
    }
    if name.starts_with('#') {
        return bad("it starts with '#'");
    }
    Ok(())
}

impl Credentials {
    /// Reads a credentials file; a missing file is an error (the operator named it).
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let text = read_file(path, CREDENTIALS_FILE_BYTES_MAX)?;
        Credentials::parse(path, &text)
    }

    /// Reads a credentials file, or nothing if there is none yet (for `weir user add`).
    pub fn load_or_empty(path: &Path) -> Result<Credentials, CredentialsError> {
        match Credentials::load(path) {
            Err(CredentialsError::File(FileError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Credentials::default())
            }
            other => other,
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Credentials, CredentialsError> {
        let mut users: HashMap<String, Vec<ScramCredential>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let parse_error =
                |reason: String| CredentialsError::File(FileError::parse(path, i + 1, reason));
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(name), Some(mechanism)) = (words.next(), words.next()) else {
                return Err(parse_error("expected NAME MECHANISM FIELDS...".into()));
            };
            check_user_name(name).map_err(|e| parse_error(e.to_string()))?;
            let mechanism = Mechanism::from_name(mechanism).ok_or_else(|| {
                parse_error(format!(
                    "unknown mechanism '{mechanism}' (SCRAM-SHA-256 or SCRAM-SHA-512)"
                ))
            })?;
            let mut fields: HashMap<&str, &str> = HashMap::new();
            for word in words {
                let (k, v) = word
                    .split_once('=')
                    .ok_or_else(|| parse_error(format!("'{word}' is not KEY=VALUE")))?;
                fields.insert(k, v);
            }
            let field = |k: &str| {
                fields
                    .get(k)
                    .copied()
                    .ok_or_else(|| parse_error(format!("no {k}=")))
            };
            let bytes = |k: &str| {
                B64.decode(field(k)?)
                    .map_err(|e| parse_error(format!("{k}: {e}")))
            };
            let iterations: u32 = field("iterations")?
                .parse()
                .map_err(|e| parse_error(format!("iterations: {e}")))?;
            if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
                return Err(parse_error(
                    CredentialsError::BadIterations(iterations).to_string(),
                ));
            }
            let credential = ScramCredential {
                mechanism,
                iterations,
                salt: bytes("salt")?,
                stored_key: bytes("stored_key")?,
                server_key: bytes("server_key")?,
            };
            let hash_bytes = match mechanism {
                Mechanism::Sha256 => 32,
                Mechanism::Sha512 => 64,
            };
            if credential.stored_key.len() != hash_bytes
                || credential.server_key.len() != hash_bytes
            {
                return Err(parse_error(format!(
                    "{} keys are {hash_bytes} bytes",
                    mechanism.name()
                )));
            }
            let entries = users.entry(name.to_string()).or_default();
            if entries.iter().any(|c| c.mechanism == mechanism) {
                return Err(parse_error(format!(
                    "a second {} entry for '{name}'",
                    mechanism.name()
                )));
            }
            entries.push(credential);
        }
        Ok(Credentials { users })
    }

    /// A user's credential for one mechanism.
    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<&ScramCredential> {
        self.users
            .get(user)?
            .iter()
            .find(|c| c.mechanism == mechanism)
    }

    /// Whether SASL PLAIN with `password` is right for `user` (checked against the user's
    /// SCRAM-SHA-256 entry, or SHA-512 if that is the only one).
    pub fn check_plain(&self, user: &str, password: &str) -> bool {
        let Some(entries) = self.users.get(user) else {
            // As slow as a real check, so that timing does not tell who exists.
            let dummy =
                ScramCredential::with_salt(Mechanism::Sha256, "", vec![0; 16], ITERATIONS_MIN);
            let _ = dummy.matches_password(password);
            return false;
        };
        entries
            .first()
            .is_some_and(|c| c.matches_password(password))
    }

    /// The user names, sorted.
    pub fn users(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.users.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Sets `user`'s password (both mechanisms, fresh salts); true if the user was new.
    pub fn set_password(
        &mut self,
        user: &str,
        password: &str,
        iterations: u32,
    ) -> Result<bool, CredentialsError> {
        check_user_name(user)?;
        if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&iterations) {
            return Err(CredentialsError::BadIterations(iterations));
        }
        let mut entries = Vec::with_capacity(2);
        for m in Mechanism::ALL {
            entries.push(
                ScramCredential::new(m, password, iterations)
                    .map_err(|e| FileError::io(Path::new("<random salt>"), e))?,
            );
        }
        Ok(self.users.insert(user.to_string(), entries).is_none())
    }

    /// Removes a user; true if there was one.
    pub fn remove(&mut self, user: &str) -> bool {
        self.users.remove(user).is_some()
    }

    /// Writes the file whole: a temporary file beside it, fsynced, renamed over it, so that a
    /// server reading it never sees half a file. Readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), CredentialsError> {
        let io = |source| CredentialsError::File(FileError::io(path, source));
        let mut text = String::from(
            "# weir SCRAM credentials (weir user add|remove|list): \
             NAME MECHANISM iterations= salt= stored_key= server_key=\n",
        );
        for name in self.users() {
            for c in &self.users[name] {
                text.push_str(&format!("{name} {} {}\n", c.mechanism.name(), c.fields()));
            }
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .ok_or_else(|| io(std::io::Error::other("not a file path")))?;
        let tmp = dir.join(format!(".{}.tmp", file_name.to_string_lossy()));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_added_saved_and_loaded_log_in_with_their_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let mut c = Credentials::load_or_empty(&path).unwrap();
        assert!(c.set_password("alice", "a-pw", ITERATIONS_MIN).unwrap());
        assert!(c.set_password("bob", "b-pw", ITERATIONS_MIN).unwrap());
        assert!(!c.set_password("bob", "b-pw2", ITERATIONS_MIN).unwrap());
        c.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("a-pw") && !text.contains("b-pw"), "{text}");
        let loaded = Credentials::load(&path).unwrap();
        assert_eq!(loaded, c);
        assert!(loaded.check_plain("alice", "a-pw"));
        assert!(!loaded.check_plain("alice", "b-pw"));
        assert!(loaded.check_plain("bob", "b-pw2"));
        assert!(!loaded.check_plain("carol", "a-pw"));
        assert!(loaded.get("bob", Mechanism::Sha512).is_some());
        let mut c = loaded;
        assert!(c.remove("alice"));
        c.save(&path).unwrap();
        assert_eq!(Credentials::load(&path).unwrap().users(), vec!["bob"]);
    }

    #[test]
    fn a_bad_line_is_an_error_with_its_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        for (text, needle) in [
            ("alice\n", "expected NAME"),
            ("alice SCRAM-MD5 iterations=4096\n", "unknown mechanism"),
            (
                "alice SCRAM-SHA-256 iterations=10 salt=AA== stored_key=AA== server_key=AA==\n",
                "iterations",
            ),
            (
                "alice SCRAM-SHA-256 iterations=4096 salt=!! stored_key=AA== server_key=AA==\n",
                "salt",
            ),
            (
                "alice SCRAM-SHA-256 iterations=4096 salt=AA== stored_key=AA== server_key=AA==\n",
                "32 bytes",
            ),
            (
                "# ok\n\nalice SCRAM-SHA-256 iterations=4096 salt=AA==\n",
                ":3:",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Credentials::load(&path).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        assert!(matches!(
            Credentials::load(&dir.path().join("none")),
            Err(CredentialsError::File(FileError::Io { .. }))
        ));
    }

    #[test]
    fn user_names_with_spaces_or_nothing_are_refused() {
        for bad in ["", "a b", "a\tb", "#x", &"x".repeat(256)] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_user_name("svc-ad_clicks@prod").is_ok());
    }
}
