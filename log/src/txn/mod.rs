//! Transactions: atomic writes across partitions plus offset commits, and the coordinator that
//! decides them. The protocol is described in `txn/coordinator.rs`; the API is
//! [`TransactionalProducer`].

pub(crate) mod coordinator;
mod transactional_producer;

pub use coordinator::{TXN_TOPIC, TxnDescription, TxnStatus};
pub use transactional_producer::{GroupMetadata, TransactionalConfig, TransactionalProducer};
