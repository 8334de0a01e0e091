//! Transactions: atomic writes across partitions plus offset commits, and the coordinator that
//! decides them. See [`coordinator`] for the protocol and [`TransactionalProducer`] for the API.

pub(crate) mod coordinator;
mod producer;

pub use coordinator::{TXN_TOPIC, TxnDescription, TxnFault, TxnStatus};
pub use producer::{GroupMetadata, TransactionalConfig, TransactionalProducer};
