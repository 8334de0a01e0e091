//! Commands as Kafka clients: the cluster from `--bootstrap` or `$WEIR_BOOTSTRAP`. weir's topic
//! settings as Kafka topic configs (and back) are `weir_cluster::configs`.

use anyhow::Result;
use weir_client::{ClientConfig, Error as ClientError};

use super::usage;

const BOOTSTRAP_ENV: &str = "WEIR_BOOTSTRAP";
const COMMAND_CONFIG_ENV: &str = "WEIR_COMMAND_CONFIG";

/// The cluster to talk to, if `--bootstrap` or `$WEIR_BOOTSTRAP` names one, with the client
/// properties of `--command-config` or `$WEIR_COMMAND_CONFIG`; a bad list or file is a usage
/// error.
pub fn resolve(
    flag: Option<String>,
    command_config: Option<std::path::PathBuf>,
) -> Result<Option<ClientConfig>> {
    let chosen = flag.or_else(|| std::env::var(BOOTSTRAP_ENV).ok().filter(|v| !v.is_empty()));
    let Some(bootstrap) = chosen else {
        return Ok(None);
    };
    if let Err(ClientError::Config { reason, .. }) = weir_client::parse_bootstrap(&bootstrap) {
        usage!("--bootstrap: {reason}");
    }
    let command_config = command_config.or_else(|| {
        std::env::var_os(COMMAND_CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(Into::into)
    });
    let config = ClientConfig::new(bootstrap);
    match command_config {
        None => Ok(Some(config)),
        Some(path) => match config.with_properties_file(&path) {
            Ok(config) => Ok(Some(config)),
            Err(ClientError::Config { reason, .. }) => usage!("--command-config: {reason}"),
            Err(e) => Err(e.into()),
        },
    }
}
