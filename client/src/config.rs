//! Settings shared by every client: where the cluster is and how long to wait for it.

use std::time::Duration;

use crate::error::{Error, Result};

/// How to reach a cluster. Plain values; [`ClientConfig::validate`] names a bad field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `HOST:PORT[,HOST:PORT...]`: the brokers to ask for the cluster's metadata first.
    pub bootstrap: String,
    /// Sent with every request (`client.id`), so the cluster's logs name this client.
    pub client_id: String,
    /// How long one request (metadata, admin, offsets, commit) may take before it fails with
    /// [`Error::Timeout`].
    pub request_timeout_ms: u64,
    /// Further librdkafka properties, set after weir's own (so they win): how to reach a secured
    /// cluster (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`,
    /// `ssl.ca.location`, ...), as a Kafka tool's `--command-config` file gives them.
    pub properties: Vec<(String, String)>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            bootstrap: "127.0.0.1:9092".into(),
            client_id: "weir".into(),
            request_timeout_ms: 30_000,
            properties: Vec::new(),
        }
    }
}

impl ClientConfig {
    /// The default settings for the cluster at `bootstrap`.
    pub fn new(bootstrap: impl Into<String>) -> ClientConfig {
        ClientConfig {
            bootstrap: bootstrap.into(),
            ..ClientConfig::default()
        }
    }

    /// Adds the properties of a Java properties file (`key=value` or `key: value` per line,
    /// `#` and `!` start comments), as Kafka's tools read `--command-config`.
    pub fn with_properties_file(mut self, path: &std::path::Path) -> Result<ClientConfig> {
        let field = "properties";
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_error(field, format!("{}: {e}", path.display())))?;
        self.properties
            .extend(parse_properties(&text).map_err(|(line, reason)| {
                config_error(field, format!("{}:{line}: {reason}", path.display()))
            })?);
        Ok(self)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<()> {
        parse_bootstrap(&self.bootstrap)?;
        if self.client_id.is_empty() {
            return Err(config_error("client_id", "must not be empty"));
        }
        if self.request_timeout_ms == 0 {
            return Err(config_error("request_timeout_ms", "must be positive"));
        }
        if let Some((key, _)) = self.properties.iter().find(|(k, _)| k.trim().is_empty()) {
            return Err(config_error("properties", format!("empty key '{key}'")));
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// librdkafka's settings for these values, to which each client adds its own.
    pub(crate) fn rdkafka(&self) -> Result<rdkafka::ClientConfig> {
        self.validate()?;
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", &self.client_id)
            .set("socket.timeout.ms", self.request_timeout_ms.to_string())
            // Only errors reach the log callback, which keeps the last one (see Context) and
            // prints nothing.
            .set("log_level", "3");
        for (key, value) in &self.properties {
            c.set(key, value);
        }
        // librdkafka's own trace (`debug`: fetch, protocol, cgrp, eos, ...) on stderr, for
        // finding where a client waits; off unless asked for.
        if let Some(contexts) = debug_contexts() {
            c.set("debug", contexts)
                .set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        }
        Ok(c)
    }
}

/// The librdkafka debug contexts `WEIR_RDKAFKA_DEBUG` names (`fetch,protocol`, `all`), if set;
/// read once, since every log line asks.
pub(crate) fn debug_contexts() -> Option<&'static str> {
    static CONTEXTS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CONTEXTS
        .get_or_init(|| {
            std::env::var("WEIR_RDKAFKA_DEBUG")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .as_deref()
}

/// The `key=value` (or `key: value`) lines of a Java properties file, or the 1-based number of
/// the first line that is neither, a comment nor blank. Line continuations and escapes are not
/// read: client settings have no use for them.
fn parse_properties(text: &str) -> std::result::Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let at = line
            .find(['=', ':'])
            .ok_or_else(|| (i + 1, format!("'{line}' is not key=value")))?;
        let (key, value) = (line[..at].trim(), line[at + 1..].trim());
        if key.is_empty() {
            return Err((i + 1, "a value without a key".into()));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// Splits `HOST:PORT[,HOST:PORT...]`, refusing an empty list, a missing host or a bad port.
pub fn parse_bootstrap(list: &str) -> Result<Vec<(String, u16)>> {
    let field = "bootstrap";
    if list.trim().is_empty() {
        return Err(config_error(field, "no HOST:PORT given"));
    }
    list.split(',')
        .map(|entry| {
            let entry = entry.trim();
            let (host, port) = entry
                .rsplit_once(':')
                .ok_or_else(|| config_error(field, format!("'{entry}' is not HOST:PORT")))?;
            if host.is_empty() {
                return Err(config_error(field, format!("'{entry}' has no host")));
            }
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| config_error(field, format!("'{entry}' has no valid port")))?;
            Ok((host.to_string(), port))
        })
        .collect()
}

pub(crate) fn config_error(field: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// When a record counts as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// Do not wait for the broker (`acks=0`).
    None,
    /// Wait until the partition leader appended it (`acks=1`).
    #[default]
    Leader,
    /// Wait until every in-sync replica has it (`acks=all`); against `weir serve`, until
    /// fsynced.
    All,
}

impl Acks {
    pub(crate) fn as_rdkafka(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Batch compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// LZ4 frames.
    Lz4,
    /// zstd.
    Zstd,
}

impl Compression {
    pub(crate) fn as_rdkafka(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Which transactional records a consumer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Committed records only, up to the last stable offset.
    #[default]
    ReadCommitted,
    /// Everything up to the high watermark.
    ReadUncommitted,
}

impl Isolation {
    pub(crate) fn as_rdkafka(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists_are_checked() {
        assert_eq!(
            parse_bootstrap("127.0.0.1:9092, kafka-2:19092").unwrap(),
            [
                ("127.0.0.1".to_string(), 9092),
                ("kafka-2".to_string(), 19092)
            ]
        );
        assert_eq!(
            parse_bootstrap("[::1]:9092").unwrap(),
            [("[::1]".to_string(), 9092)]
        );
        for bad in ["", " ", "host", ":9092", "h:0", "h:99999", "h:9092,"] {
            let e = parse_bootstrap(bad).unwrap_err();
            assert!(
                matches!(&e, Error::Config { field, .. } if field == "bootstrap"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn properties_files_read_as_kafka_tools_read_them() {
        let text = "# a comment\n! another\n\nsecurity.protocol=SASL_SSL\n\
                    sasl.mechanism : SCRAM-SHA-512\nsasl.password=a=b:c\n";
        assert_eq!(
            parse_properties(text).unwrap(),
            [
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.mechanism".to_string(), "SCRAM-SHA-512".to_string()),
                ("sasl.password".to_string(), "a=b:c".to_string()),
            ]
        );
        assert_eq!(parse_properties("a=1\nnonsense\n").unwrap_err().0, 2);
        assert_eq!(parse_properties("=1\n").unwrap_err().0, 1);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let mut c = ClientConfig::new("h:1");
        c.validate().unwrap();
        c.request_timeout_ms = 0;
        assert!(
            matches!(c.validate(), Err(Error::Config { field, .. }) if field == "request_timeout_ms")
        );
    }
}
