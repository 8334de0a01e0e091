//! The librdkafka callbacks every client of this crate installs: connection errors are kept
//! (to explain a timeout or an unreachable cluster), never printed.

use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

/// Keeps the last error librdkafka reported on its connections.
#[derive(Debug, Default)]
pub(crate) struct Context {
    last_error: Mutex<Option<String>>,
}

impl Context {
    /// The last connection-level error, e.g. `127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9
    /// failed: Connection refused`.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Context {
    fn remember(&self, message: &str) {
        if !message.is_empty() {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message.to_string());
        }
    }
}

impl ClientContext for Context {
    /// librdkafka's error-level log lines (connection refused, name not resolved) arrive here
    /// from its own threads, without any queue being served: the last one is kept, since
    /// consumer error events carry only a code.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if crate::config::debug_contexts().is_some() {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            eprintln!(
                "{}.{:03} rdkafka {fac}: {log_message}",
                at.as_secs(),
                at.subsec_millis()
            );
        }
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
        ) {
            self.remember(log_message);
        }
    }

    fn error(&self, _error: KafkaError, reason: &str) {
        self.remember(reason);
    }
}

impl ConsumerContext for Context {}
