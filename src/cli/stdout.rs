//! Standard output for every command, and telling a reader that went away from a failure.
//!
//! `weir consume t | head -1` closes the pipe while weir still writes; the next write fails with
//! `BrokenPipe` (Rust ignores SIGPIPE). That is the reader's choice, not an error: the command
//! stops and weir exits 0 without a message. The failure reaches `main` wrapped in whatever error
//! type did the writing (io, serde_json, Arrow), and some of those keep only the message (Arrow's
//! CSV writer) or hide the io error from `source()` (serde_json). So the write is tagged where it
//! happens: [`Stdout`] turns `BrokenPipe` into an io error carrying [`StdoutClosed`], and
//! [`is_stdout_closed`] looks for that tag. A broken pipe anywhere else (a socket, a child
//! process) stays an error.

use std::io::{self, Write};

/// Why a write to standard output failed: its reader closed the pipe.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// Locked standard output whose `BrokenPipe` errors carry [`StdoutClosed`].
pub struct Stdout(io::StdoutLock<'static>);

impl Stdout {
    pub fn lock() -> Stdout {
        Stdout(io::stdout().lock())
    }
}

fn tag(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(tag)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(tag)
    }
}

/// Whether `e` is, or was caused by, a write to a [`Stdout`] whose reader went away.
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tagged_broken_pipe_counts() {
        let tagged = tag(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(tagged.kind(), io::ErrorKind::BrokenPipe);
        assert!(is_stdout_closed(&anyhow::Error::new(tagged)));
        // Through serde_json's error (converted back) and Arrow's, with context on top.
        let json = serde_json::Error::io(tag(io::Error::from(io::ErrorKind::BrokenPipe)));
        let e = anyhow::Error::new(io::Error::from(json)).context("printing");
        assert!(is_stdout_closed(&e));
        let arrow = weir::sql::datafusion::arrow::error::ArrowError::from(tag(io::Error::from(
            io::ErrorKind::BrokenPipe,
        )));
        assert!(is_stdout_closed(&anyhow::Error::new(arrow)));
        // A broken pipe that did not come from standard output is an error.
        let other = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(!is_stdout_closed(&anyhow::Error::new(other)));
        let other = tag(io::Error::from(io::ErrorKind::NotFound));
        assert!(!is_stdout_closed(&anyhow::Error::new(other)));
    }
}
