//! Window operator configuration and errors.

use serde::{Deserialize, Serialize};

use super::WindowSpec;

/// Errors of the window engine, saying who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// The configuration is invalid (the caller's fault); `field` names the bad field.
    #[error("invalid window config: {field}: {reason}")]
    Config {
        /// The bad field, as a path such as `spec.slide_ms`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A snapshot could not be written or read back (bad bytes, or taken under another config).
    #[error("window state snapshot: {0}")]
    Snapshot(String),
}

/// When a window's results are emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum EmitMode {
    /// Exactly one result per (key, window), when the window closes.
    #[default]
    Final,
    /// The final result as in [`EmitMode::Final`], plus non-final updates: whenever the operator
    /// watermark crosses a multiple of `every_ms` (epoch-aligned), each open window that changed
    /// since its last emission emits its current value; and with allowed lateness > 0, a window
    /// that changed since its last emission also emits when it becomes complete. Driven by
    /// watermarks only, never by wall time, so a replay emits the same updates.
    Early {
        /// Event-time period of the updates, > 0.
        every_ms: i64,
    },
}

/// Configuration of a [`WindowState`](super::WindowState).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// How event time is cut into windows.
    pub spec: WindowSpec,
    /// How long after a window is complete (watermark >= `end - 1`) it stays open for late
    /// records; it closes, firing its final result, when the watermark reaches
    /// `end - 1 + allowed_lateness_ms`. >= 0.
    pub allowed_lateness_ms: i64,
    /// Final results only (the default), or early updates before the final one.
    pub emit: EmitMode,
}

impl WindowConfig {
    /// A configuration with no allowed lateness and final results only.
    pub fn new(spec: WindowSpec) -> Self {
        WindowConfig {
            spec,
            allowed_lateness_ms: 0,
            emit: EmitMode::Final,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), WindowError> {
        self.spec.validate()?;
        if self.allowed_lateness_ms < 0 {
            return Err(WindowError::Config {
                field: "allowed_lateness_ms",
                reason: format!("must be >= 0, is {}", self.allowed_lateness_ms),
            });
        }
        if let EmitMode::Early { every_ms } = self.emit
            && every_ms <= 0
        {
            return Err(WindowError::Config {
                field: "emit.every_ms",
                reason: format!("must be > 0, is {every_ms}"),
            });
        }
        Ok(())
    }
}
