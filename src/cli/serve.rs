//! `weir serve`: the Kafka wire protocol over the data directory, until SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use weir::server::{AclConfig, Server, ServerConfig, TlsConfig};

use super::{DataDir, usage};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs --users (or --insecure-non-loopback)
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Host and port clients are told to connect to [default: the listen address]
    #[arg(long, value_name = "HOST:PORT")]
    advertised: Option<String>,
    /// Create unknown topics when a client asks for their metadata (Kafka's auto.create.topics.enable)
    #[arg(long)]
    auto_create_topics: bool,
    /// Partitions of topics created without a count (auto-created, or CreateTopics with -1)
    #[arg(long, default_value_t = 1, value_name = "N")]
    default_partitions: i32,
    /// Largest request accepted, in bytes
    #[arg(long, default_value_t = 100 * 1024 * 1024, value_name = "BYTES")]
    request_bytes_max: usize,
    /// Most client connections open at once
    #[arg(long, default_value_t = 1024, value_name = "N")]
    connections_max: usize,
    /// Bytes all connections together may hold in requests not yet handled and fetch replies not
    /// yet written (each connection at most the larger of --request-bytes-max and 50 MiB)
    #[arg(long, default_value_t = 512 * 1024 * 1024, value_name = "BYTES")]
    buffer_bytes_max: usize,
    /// TLS with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// SASL on (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with the users of FILE (`weir user add`);
    /// every connection must authenticate
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// ACLs on, from FILE: `allow|deny PRINCIPAL OPERATIONS RESOURCE` per line (docs/server.md)
    #[arg(long, value_name = "FILE")]
    acls: Option<PathBuf>,
    /// What a request that no ACL matches gets
    #[arg(long, value_enum, default_value_t = AclDefault::Deny, requires = "acls")]
    acl_default: AclDefault,
    /// Listen on a non-loopback address without SASL: anyone who reaches it reads and writes
    #[arg(long)]
    insecure_non_loopback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AclDefault {
    Allow,
    Deny,
}

pub fn run(dir: &DataDir, args: ServeArgs) -> Result<()> {
    let advertised = match &args.advertised {
        None => None,
        Some(a) => {
            let Some((host, port)) = a.rsplit_once(':') else {
                usage!("--advertised must be HOST:PORT, got '{a}'");
            };
            let Ok(port) = port.parse::<u16>() else {
                usage!("--advertised port must be a number from 0 to 65535, got '{port}'");
            };
            Some((host.to_string(), port))
        }
    };
    if !args.listen.ip().is_loopback() && args.users.is_none() && !args.insecure_non_loopback {
        usage!(
            "refusing to listen on {} without authentication: turn SASL on (--users FILE), \
             listen on loopback, or say --insecure-non-loopback",
            args.listen
        );
    }
    if args.default_partitions <= 0 {
        usage!("--default-partitions must be at least 1");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while shutting down exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .context("installing a signal handler")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing a signal handler")?;
    }
    let config = ServerConfig {
        listen: args.listen,
        advertised,
        auto_create_topics: args.auto_create_topics,
        default_partitions: args.default_partitions,
        request_bytes_max: args.request_bytes_max,
        connections_max: args.connections_max,
        buffer_bytes_max: args.buffer_bytes_max,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert_chain_pem), Some(key_pem)) => Some(TlsConfig {
                cert_chain_pem,
                key_pem,
            }),
            _ => None,
        },
        sasl_users: args.users,
        acls: args.acls.map(|path| AclConfig {
            path,
            allow_if_no_rule: args.acl_default == AclDefault::Allow,
        }),
        insecure_non_loopback: args.insecure_non_loopback,
        ..ServerConfig::default()
    };
    dir.with_writer(true, None, |log| {
        let server = Server::start(log.clone(), config)?;
        // Scripts and tests read this one line to learn the port (with --listen ...:0).
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening: {}", server.local_addr())?;
        out.flush()?;
        drop(out);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("weir serve: shutting down");
        server.shutdown();
        Ok(())
    })
}
