//! Keyed exchanges: the sending side ([`sender`]) hashes each record's key to a downstream task
//! and ships records in batches over bounded channels ([`channels`]); the receiving side
//! ([`receiver`]) merges its inputs, keeps the watermark over them with a
//! [`crate::watermark::WatermarkValve`] and aligns checkpoint barriers.

mod channels;
mod keys;
mod receiver;
mod repartition;
mod sender;

pub(crate) use channels::Channels;
pub use keys::{MakeKey, RouteFn, TaskKeyFn};
pub(crate) use receiver::ReceiverTask;
pub(crate) use repartition::{
    RepartitionReader, RepartitionSender, topic_name as repartition_topic,
};
pub(crate) use sender::Sender;
