//! A progress line that suits where it goes. On a terminal it is redrawn in place (`\r`) at every
//! update; anywhere else (a CI log, a pipe, a file) a carriage return does not erase anything, so
//! each update would stay as one more line: there it prints one full line every
//! [`LINE_INTERVAL_MS`] and the last state at the end.

use std::io::{IsTerminal, Stderr, Write};
use std::time::{Duration, Instant};

/// Off a terminal, the least time between two progress lines, in milliseconds.
pub const LINE_INTERVAL_MS: u64 = 5_000;

/// A progress line on a writer (usually standard error). Write errors are ignored: progress is
/// a courtesy, never a reason to fail the work it reports on.
#[derive(Debug)]
pub struct Progress<W: Write> {
    out: W,
    terminal: bool,
    line_interval: Duration,
    /// Off a terminal: when the last line was printed.
    last_line_at: Option<Instant>,
    /// The latest state not printed yet (off a terminal), or drawn but not ended by a newline
    /// (on one).
    pending: Option<String>,
}

impl Progress<Stderr> {
    /// Progress on standard error, redrawn in place only if standard error is a terminal.
    pub fn stderr() -> Progress<Stderr> {
        let stderr = std::io::stderr();
        let terminal = stderr.is_terminal();
        Progress::new(stderr, terminal)
    }
}

impl<W: Write> Progress<W> {
    /// Progress on `out`; `terminal` says whether `\r` redraws the line there.
    pub fn new(out: W, terminal: bool) -> Progress<W> {
        Progress {
            out,
            terminal,
            line_interval: Duration::from_millis(LINE_INTERVAL_MS),
            last_line_at: None,
            pending: None,
        }
    }

    /// Shows `text` (one line, no newline) as the current state.
    pub fn update(&mut self, text: &str) {
        self.update_at(text, Instant::now());
    }

    /// [`Progress::update`] at the moment `now` (tests pass their own clock readings).
    pub fn update_at(&mut self, text: &str, now: Instant) {
        if self.terminal {
            let _ = write!(self.out, "\r{text}");
            let _ = self.out.flush();
            self.pending = Some(String::new());
            return;
        }
        let due = self
            .last_line_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.line_interval);
        if due {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
            self.last_line_at = Some(now);
            self.pending = None;
        } else {
            self.pending = Some(text.to_string());
        }
    }

    /// Ends the progress: on a terminal the redrawn line gets its newline; elsewhere the last
    /// state is printed unless it already was.
    pub fn finish(&mut self) {
        if let Some(text) = self.pending.take() {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }

    /// The writer, for tests.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(progress: Progress<Vec<u8>>) -> String {
        String::from_utf8(progress.into_inner()).expect("UTF-8")
    }

    #[test]
    fn off_a_terminal_one_line_per_interval_and_the_last_state() {
        let mut p = Progress::new(Vec::new(), false);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        p.update_at("1", at(0));
        p.update_at("2", at(1_000));
        p.update_at("3", at(LINE_INTERVAL_MS));
        p.update_at("4", at(LINE_INTERVAL_MS + 1));
        p.update_at("5", at(LINE_INTERVAL_MS + 2));
        p.finish();
        assert_eq!(printed(p), "1\n3\n5\n");
    }

    #[test]
    fn off_a_terminal_the_last_state_is_not_printed_twice() {
        let mut p = Progress::new(Vec::new(), false);
        p.update_at("only", Instant::now());
        p.finish();
        assert_eq!(printed(p), "only\n");
    }

    #[test]
    fn on_a_terminal_every_update_redraws_the_line_and_finish_ends_it() {
        let mut p = Progress::new(Vec::new(), true);
        let t0 = Instant::now();
        p.update_at("a", t0);
        p.update_at("b", t0);
        p.finish();
        assert_eq!(printed(p), "\ra\rb\n");
    }

    #[test]
    fn nothing_shown_means_nothing_to_finish() {
        for terminal in [false, true] {
            let mut p = Progress::new(Vec::new(), terminal);
            p.finish();
            assert_eq!(printed(p), "");
        }
    }
}
