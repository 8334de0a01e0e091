//! How a sending task computes the key that routes a record.

use std::sync::Arc;

/// Hashes a key to route it: `task = hash × tasks / 2^64`.
pub type RouteFn<K> = Arc<dyn Fn(&K) -> u64 + Send + Sync>;

/// A key function with state of its own, one per sending task.
pub type TaskKeyFn<T, K> = Box<dyn FnMut(&T) -> K + Send>;

/// Makes a sending task's key function.
pub type MakeKey<T, K> = Arc<dyn Fn() -> TaskKeyFn<T, K> + Send + Sync>;
