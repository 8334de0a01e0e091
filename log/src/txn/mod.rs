//! Transactions: atomic writes across partitions plus offset commits, and the coordinator that
//! decides them. The protocol is described in `txn/coordinator.rs`; the API is
//! [`TransactionalProducer`] in-process, and for Kafka clients (transaction version 1, through
//! `weir serve`) [`crate::Log::init_transactional_id`] and the calls after it.

pub(crate) mod coordinator;
mod transactional_producer;

pub use coordinator::{TXN_TOPIC, TxnDescription, TxnStatus};
pub use transactional_producer::{GroupMetadata, TransactionalConfig, TransactionalProducer};
