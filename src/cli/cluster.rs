//! Commands as Kafka clients: the cluster from `--bootstrap` or `$WEIR_BOOTSTRAP`. weir's topic
//! settings as Kafka topic configs (and back) are `weir_cluster::configs`.

use anyhow::Result;
use weir_client::{ClientConfig, Error as ClientError};

use super::usage;

const BOOTSTRAP_ENV: &str = "WEIR_BOOTSTRAP";

/// The cluster to talk to, if `--bootstrap` or `$WEIR_BOOTSTRAP` names one; a bad list is a
/// usage error.
pub fn resolve(flag: Option<String>) -> Result<Option<ClientConfig>> {
    let chosen = flag.or_else(|| std::env::var(BOOTSTRAP_ENV).ok().filter(|v| !v.is_empty()));
    let Some(bootstrap) = chosen else {
        return Ok(None);
    };
    if let Err(ClientError::Config { reason, .. }) = weir_client::parse_bootstrap(&bootstrap) {
        usage!("--bootstrap: {reason}");
    }
    Ok(Some(ClientConfig::new(bootstrap)))
}
