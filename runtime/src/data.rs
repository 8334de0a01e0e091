//! What may flow through a stream, and what may key one.

use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What may flow through a stream.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// What may key a stream: hashed to route records to tasks, and kept in state snapshots.
pub trait Key: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}
impl<K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Key for K {}

/// What may cross a keyed exchange. In one process an exchange hands records over in memory;
/// on a cluster it is a repartition topic, so records are serialized (as Kafka Streams asks a
/// serde of every repartitioned type, and Flink a serializer of every type).
pub trait ExchangeData: Data + Serialize + DeserializeOwned {}
impl<T: Data + Serialize + DeserializeOwned> ExchangeData for T {}
