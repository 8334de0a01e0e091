//! The figures a bench prints: one `name: value` line each (the contract of `weir bench`),
//! printed together at the end so that a failure still shows what was measured before it.

use std::io::{self, Write};

use super::stdout::Stdout;

/// Lines printed at the end, so that a failure still shows what was measured before it.
#[derive(Default)]
pub(crate) struct Report {
    lines: Vec<(String, String)>,
}

impl Report {
    pub(crate) fn line(&mut self, name: &str, value: impl std::fmt::Display) {
        self.lines.push((name.to_string(), value.to_string()));
    }

    pub(crate) fn print(&self) -> io::Result<()> {
        let mut out = Stdout::lock();
        for (name, value) in &self.lines {
            writeln!(out, "{name}: {value}")?;
        }
        out.flush()
    }
}
