//! `weir user add|remove|list`: the SCRAM credentials file `weir serve --users FILE` reads.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use weir::server::auth::credentials::Credentials;
use weir::server::auth::scram::{ITERATIONS_MAX, ITERATIONS_MIN};

use super::usage;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user, or set a user's password: a salted SCRAM-SHA-256 and SCRAM-SHA-512 entry
    /// (no password is stored). The password is read from standard input, one line, without
    /// echo on a terminal.
    Add(AddArgs),
    /// Remove a user (sessions already open stay, as in Kafka)
    Remove(FileArgs),
    /// List the users
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The user name
    name: String,
    /// The credentials file (created if missing, readable by its owner only)
    #[arg(long, value_name = "FILE")]
    users: PathBuf,
    /// PBKDF2 iterations
    #[arg(long, default_value_t = ITERATIONS_MIN, value_name = "N")]
    iterations: u32,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The user name
    name: String,
    /// The credentials file
    #[arg(long, value_name = "FILE")]
    users: PathBuf,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The credentials file
    #[arg(long, value_name = "FILE")]
    users: PathBuf,
}

pub fn run(cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add(a) => {
            if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&a.iterations) {
                usage!("--iterations must be from {ITERATIONS_MIN} to {ITERATIONS_MAX}");
            }
            if let Err(e) = weir::server::auth::credentials::check_user_name(&a.name) {
                usage!("{e}");
            }
            let mut credentials = Credentials::load_or_empty(&a.users)?;
            let password = read_password(&a.name)?;
            if password.is_empty() {
                usage!("the password is empty");
            }
            let new = credentials.set_password(&a.name, &password, a.iterations)?;
            credentials.save(&a.users)?;
            let verb = if new {
                "added"
            } else {
                "changed the password of"
            };
            println!("{verb} {} in {}", a.name, a.users.display());
            Ok(())
        }
        UserCommand::Remove(a) => {
            let mut credentials = Credentials::load(&a.users)?;
            if !credentials.remove(&a.name) {
                anyhow::bail!("no user '{}' in {}", a.name, a.users.display());
            }
            credentials.save(&a.users)?;
            println!("removed {} from {}", a.name, a.users.display());
            Ok(())
        }
        UserCommand::List(a) => {
            let credentials = Credentials::load(&a.users)?;
            let mut out = std::io::stdout().lock();
            for name in credentials.users() {
                writeln!(out, "{name}")?;
            }
            Ok(())
        }
    }
}

/// One line of standard input; on a terminal, asked for with echo off.
fn read_password(name: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let echo = if terminal {
        eprint!("password for {name}: ");
        EchoOff::new()
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    drop(echo);
    if terminal {
        eprintln!();
    }
    read.context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The terminal's echo, turned off while it lives.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: tcgetattr and tcsetattr on stdin with a termios we own; failures leave the
        // terminal as it was and return None.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(EchoOff(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
        }
    }
}
