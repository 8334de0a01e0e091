//! Heavy hitters: which keys carry a large share of a stream.
//!
//! [`SpaceSaving`] is the Space-Saving summary (Metwally, Agrawal, El Abbadi, 2005): at most
//! `counters_max` counters, each holding a key, an over-estimate of its count and the most that
//! estimate can be over. When a new key arrives and every counter is taken, the key takes the
//! counter with the smallest count and inherits that count as its error. With `N` counters over
//! a stream of `total` occurrences:
//!
//! - every estimate brackets the truth: `count - error <= true count <= count`;
//! - every key whose true count exceeds `total / N` holds a counter, so no heavy hitter is
//!   missed;
//! - a key without a counter occurred at most [`SpaceSaving::absent_count_max`] times, which is
//!   at most `total / N`.
//!
//! Summaries merge ([`SpaceSaving::merge`]) with the mergeable-summaries rule and keep all three
//! guarantees, so hot keys can be counted on each task and combined.
//!
//! [`HotKeyDetector`] wraps a summary for the per-record path: it samples records, keeps the set
//! of currently hot keys, and answers [`HotKeyDetector::observe`] with one hash lookup for a
//! cold key.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::aggregate::{StableBuildHasher, stable_hash};

/// The most counters one summary may have (slots are indexed by `u32`, and a summary this
/// large is already far past the point where a heavy hitter is "heavy").
pub const SPACE_SAVING_COUNTERS_LIMIT: usize = 1 << 24;

/// A counter's place in the min-heap: its count and error, and which key slot it belongs to.
#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u64,
    error: u64,
    slot: u32,
}

/// A Space-Saving heavy-hitter summary with at most `counters_max` counters.
///
/// Counters live in an indexed binary min-heap ordered by count, with a hash map from key to
/// counter: [`offer`](Self::offer) costs one hash lookup plus `O(log counters_max)` for a new or
/// evicting key, and usually `O(1)` for a frequent key (large counts sit at the heap's leaves).
/// See the [module docs](self) for the guarantees.
///
/// ```
/// use weir_operators::hot_keys::SpaceSaving;
///
/// let mut summary = SpaceSaving::new(2);
/// for key in ["a", "b", "a", "c", "a"] {
///     summary.offer(&key);
/// }
/// assert_eq!(summary.total(), 5);
/// let (count, error) = summary.estimate(&"a").expect("a is a heavy hitter");
/// assert!(count - error <= 3 && 3 <= count);
/// assert!(summary.is_hot(&"a", 0.5));
/// ```
#[derive(Debug, Clone)]
pub struct SpaceSaving<K> {
    counters_max: usize,
    total: u64,
    /// Key of each slot; a slot keeps its key until the key is evicted.
    keys: Vec<K>,
    /// Min-heap by count.
    heap: Vec<Entry>,
    /// Heap position of each slot.
    position: Vec<u32>,
    index: HashMap<K, u32, StableBuildHasher>,
}

impl<K: Hash + Eq + Clone> SpaceSaving<K> {
    /// An empty summary with room for `counters_max` keys (allocated as keys arrive).
    ///
    /// # Panics
    ///
    /// If `counters_max` is 0 or above [`SPACE_SAVING_COUNTERS_LIMIT`].
    pub fn new(counters_max: usize) -> Self {
        assert!(
            (1..=SPACE_SAVING_COUNTERS_LIMIT).contains(&counters_max),
            "counters_max must be in 1..={SPACE_SAVING_COUNTERS_LIMIT}, got {counters_max}"
        );
        SpaceSaving {
            counters_max,
            total: 0,
            keys: Vec::new(),
            heap: Vec::new(),
            position: Vec::new(),
            index: HashMap::default(),
        }
    }

    /// The most keys the summary tracks.
    pub fn counters_max(&self) -> usize {
        self.counters_max
    }

    /// How many keys the summary tracks now.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing has been offered (or everything decayed away).
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The sum of all offered counts.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// An upper bound on the count of any key that has no counter: the smallest count once every
    /// counter is taken, 0 before (then every count is exact).
    pub fn absent_count_max(&self) -> u64 {
        if self.heap.len() < self.counters_max {
            0
        } else {
            self.heap.first().map_or(0, |entry| entry.count)
        }
    }

    /// Counts one occurrence of `key`.
    #[inline]
    pub fn offer(&mut self, key: &K) {
        self.offer_n(key, 1);
    }

    /// Counts `n` occurrences of `key`.
    pub fn offer_n(&mut self, key: &K, n: u64) {
        if n == 0 {
            return;
        }
        self.total = self.total.saturating_add(n);
        if let Some(&slot) = self.index.get(key) {
            let at = self.position[slot as usize] as usize;
            self.heap[at].count = self.heap[at].count.saturating_add(n);
            self.sift_down(at);
        } else if self.heap.len() < self.counters_max {
            let slot = self.keys.len() as u32;
            self.keys.push(key.clone());
            self.position.push(self.heap.len() as u32);
            self.heap.push(Entry {
                count: n,
                error: 0,
                slot,
            });
            self.index.insert(key.clone(), slot);
            self.sift_up(self.heap.len() - 1);
        } else {
            // Evict the smallest counter; the newcomer inherits its count as error.
            let root = &mut self.heap[0];
            root.error = root.count;
            root.count = root.count.saturating_add(n);
            let slot = root.slot;
            let evicted = std::mem::replace(&mut self.keys[slot as usize], key.clone());
            self.index.remove(&evicted);
            self.index.insert(key.clone(), slot);
            self.sift_down(0);
        }
    }

    /// `(count, error)` of `key` if it has a counter: its true count is in
    /// `count - error ..= count`. `None` means at most [`absent_count_max`](Self::absent_count_max).
    pub fn estimate(&self, key: &K) -> Option<(u64, u64)> {
        let slot = *self.index.get(key)?;
        let entry = self.heap[self.position[slot as usize] as usize];
        Some((entry.count, entry.error))
    }

    /// Whether `key` is guaranteed to carry at least `share` of the stream: its lower bound
    /// `count - error` is at least `share * total`.
    pub fn is_hot(&self, key: &K, share: f64) -> bool {
        match self.estimate(key) {
            Some((count, error)) if self.total > 0 => {
                (count - error) as f64 >= share * self.total as f64
            }
            _ => false,
        }
    }

    /// Every counter as `(key, count, error)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, u64, u64)> + '_ {
        self.heap
            .iter()
            .map(|entry| (&self.keys[entry.slot as usize], entry.count, entry.error))
    }

    /// The `n` largest counters as `(key, count, error)`: count descending, then error
    /// ascending, then by the key's stable hash, so the order is deterministic.
    pub fn top(&self, n: usize) -> Vec<(K, u64, u64)> {
        let mut counters: Vec<(&K, u64, u64)> = self.iter().collect();
        counters.sort_by_cached_key(|&(key, count, error)| rank(key, count, error));
        counters
            .into_iter()
            .take(n)
            .map(|(key, count, error)| (key.clone(), count, error))
            .collect()
    }

    /// Halves every count, error and the total (rounding down), dropping keys that reach 0.
    ///
    /// Counts then weigh recent records more than old ones (each call halves the weight of
    /// everything before it), so [`is_hot`](Self::is_hot) follows a stream whose hot keys change,
    /// and keys that went cold free their counters. Call it on a fixed cadence of the stream
    /// rather than the clock: every window close, every checkpoint, or every few
    /// `counters_max` offers. After decaying, the bounds hold for the halved true counts to
    /// within one. Costs `O(counters_max)`.
    pub fn decay(&mut self) {
        let counters = self
            .drain()
            .filter_map(|(key, count, error)| (count >= 2).then_some((key, count / 2, error / 2)))
            .collect();
        let total = self.total / 2;
        self.rebuild(total, counters);
    }

    /// Folds `other` in, keeping the smaller `counters_max` of the two.
    ///
    /// This is the mergeable-summaries merge (Agarwal et al., 2012): a key missing from one
    /// summary is counted there at that summary's [`absent_count_max`](Self::absent_count_max),
    /// as count and as error, counts and errors add, and the largest `counters_max` counters are
    /// kept (ties broken by key hash, so `a.merge(b)` and `b.merge(a)` build the same summary).
    /// All the guarantees of the [module docs](self) hold for the merged stream.
    pub fn merge(&mut self, other: SpaceSaving<K>) {
        let floor_self = self.absent_count_max();
        let floor_other = other.absent_count_max();
        let counters_max = self.counters_max.min(other.counters_max);
        let total = self.total.saturating_add(other.total);

        let mut mine: Vec<(u64, u64, bool)> = vec![(0, 0, false); self.keys.len()];
        for entry in &self.heap {
            mine[entry.slot as usize] = (entry.count, entry.error, false);
        }
        let mut combined = Vec::with_capacity(self.len() + other.len());
        for (key, count, error) in other.into_counters() {
            match self.index.get(&key) {
                Some(&slot) => {
                    let (my_count, my_error, seen) = &mut mine[slot as usize];
                    *my_count = my_count.saturating_add(count);
                    *my_error = my_error.saturating_add(error);
                    *seen = true;
                }
                None => combined.push((
                    key,
                    count.saturating_add(floor_self),
                    error.saturating_add(floor_self),
                )),
            }
        }
        self.index.clear();
        for (key, (count, error, seen)) in std::mem::take(&mut self.keys).into_iter().zip(mine) {
            let floor = if seen { 0 } else { floor_other };
            combined.push((
                key,
                count.saturating_add(floor),
                error.saturating_add(floor),
            ));
        }
        combined.sort_by_cached_key(|(key, count, error)| rank(key, *count, *error));
        combined.truncate(counters_max);
        self.counters_max = counters_max;
        self.rebuild(total, combined);
    }

    /// Takes every counter out as `(key, count, error)`, leaving the summary empty (total kept).
    fn drain(&mut self) -> impl Iterator<Item = (K, u64, u64)> + use<K> {
        self.index.clear();
        self.position.clear();
        let heap = std::mem::take(&mut self.heap);
        let mut keys: Vec<Option<K>> = std::mem::take(&mut self.keys)
            .into_iter()
            .map(Some)
            .collect();
        heap.into_iter().map(move |entry| {
            let key = keys[entry.slot as usize]
                .take()
                .expect("each slot is in the heap once");
            (key, entry.count, entry.error)
        })
    }

    fn into_counters(mut self) -> impl Iterator<Item = (K, u64, u64)> {
        self.drain()
    }

    /// Replaces the contents with `counters` (at most `counters_max`, distinct keys).
    fn rebuild(&mut self, total: u64, counters: Vec<(K, u64, u64)>) {
        debug_assert!(counters.len() <= self.counters_max);
        self.total = total;
        self.keys.clear();
        self.heap.clear();
        self.position.clear();
        self.index.clear();
        // Largest first (as `merge` sorts them), so reversed they are already a heap.
        for (slot, (key, count, error)) in counters.into_iter().rev().enumerate() {
            debug_assert!(error <= count, "a counter's error never exceeds its count");
            self.index.insert(key.clone(), slot as u32);
            self.keys.push(key);
            self.position.push(slot as u32);
            self.heap.push(Entry {
                count,
                error,
                slot: slot as u32,
            });
        }
        for at in (0..self.heap.len() / 2).rev() {
            self.sift_down(at);
        }
        debug_assert_eq!(self.index.len(), self.heap.len(), "keys are distinct");
    }

    #[inline]
    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.position[self.heap[a].slot as usize] = a as u32;
        self.position[self.heap[b].slot as usize] = b as u32;
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.heap[at].count >= self.heap[parent].count {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    #[inline]
    fn sift_down(&mut self, mut at: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * at + 1;
            if left >= len {
                return;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].count < self.heap[left].count {
                right
            } else {
                left
            };
            if self.heap[child].count >= self.heap[at].count {
                return;
            }
            self.swap(at, child);
            at = child;
        }
    }
}

/// Sort key of a counter: largest count first, then smallest error, then key hash.
fn rank<K: Hash>(key: &K, count: u64, error: u64) -> (Reverse<u64>, u64, u64) {
    (Reverse(count), error, stable_hash(key))
}

/// What a summary looks like in a checkpoint: the counters, not the heap or the index.
#[derive(Serialize)]
struct WireRef<'a, K> {
    counters_max: u64,
    total: u64,
    counters: Vec<(&'a K, u64, u64)>,
}

/// The owned form of [`WireRef`], checked before it becomes a summary.
#[derive(Deserialize)]
struct Wire<K> {
    counters_max: u64,
    total: u64,
    counters: Vec<(K, u64, u64)>,
}

impl<K: Serialize> Serialize for SpaceSaving<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireRef {
            counters_max: self.counters_max as u64,
            total: self.total,
            counters: self
                .heap
                .iter()
                .map(|entry| (&self.keys[entry.slot as usize], entry.count, entry.error))
                .collect(),
        }
        .serialize(serializer)
    }
}

impl<'de, K> Deserialize<'de> for SpaceSaving<K>
where
    K: Deserialize<'de> + Hash + Eq + Clone,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::<K>::deserialize(deserializer)?;
        let counters_max = usize::try_from(wire.counters_max)
            .ok()
            .filter(|max| (1..=SPACE_SAVING_COUNTERS_LIMIT).contains(max))
            .ok_or_else(|| D::Error::custom(format!("bad counters_max {}", wire.counters_max)))?;
        if wire.counters.len() > counters_max {
            return Err(D::Error::custom("more counters than counters_max"));
        }
        if wire.counters.iter().any(|(_, count, error)| error > count) {
            return Err(D::Error::custom("a counter's error exceeds its count"));
        }
        let mut seen =
            HashSet::with_capacity_and_hasher(wire.counters.len(), StableBuildHasher::default());
        if !wire.counters.iter().all(|(key, _, _)| seen.insert(key)) {
            return Err(D::Error::custom("duplicate key in summary"));
        }
        drop(seen);
        let mut summary = SpaceSaving::new(counters_max);
        // Serialized in heap order: `rebuild` reverses, so hand it the reverse.
        let mut counters = wire.counters;
        counters.reverse();
        summary.rebuild(wire.total, counters);
        Ok(summary)
    }
}

/// The most keys [`HotKeyConfig::named`] may list.
pub const HOT_KEYS_NAMED_MAX: usize = 4096;
/// The sparsest sampling [`HotKeyConfig::sample_every`] may ask for.
pub const HOT_KEYS_SAMPLE_EVERY_MAX: u64 = 1 << 20;

/// A [`HotKeyConfig`] field that is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("hot-key config: {field} {reason}")]
pub struct ConfigError {
    /// The bad field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Settings of a [`HotKeyDetector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HotKeyConfig<K> {
    /// Counters of the Space-Saving summary; at least `1 / hot_share`, so that every key above
    /// `hot_share` is tracked. Memory is about `counters_max * (2 * key size + 40)` bytes.
    pub counters_max: usize,
    /// A key is hot when it is guaranteed to carry at least this share of the sampled records
    /// (of keys not in `named`), in `(0, 1]`.
    pub hot_share: f64,
    /// Offer one record in this many (on average) to the summary. 1 counts every record; larger
    /// values make `observe` cheaper and detection proportionally slower.
    pub sample_every: u64,
    /// Keys that are always hot, whatever the stream says (known celebrities, test tenants).
    pub named: Vec<K>,
}

impl<K> Default for HotKeyConfig<K> {
    fn default() -> Self {
        HotKeyConfig {
            counters_max: 1024,
            hot_share: 0.01,
            sample_every: 16,
            named: Vec::new(),
        }
    }
}

impl<K> HotKeyConfig<K> {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: String| Err(ConfigError { field, reason });
        if !(1..=SPACE_SAVING_COUNTERS_LIMIT).contains(&self.counters_max) {
            return bad(
                "counters_max",
                format!(
                    "must be in 1..={SPACE_SAVING_COUNTERS_LIMIT}, got {}",
                    self.counters_max
                ),
            );
        }
        if !(self.hot_share > 0.0 && self.hot_share <= 1.0) {
            return bad(
                "hot_share",
                format!("must be in (0, 1], got {}", self.hot_share),
            );
        }
        if (self.counters_max as f64) * self.hot_share < 1.0 {
            return bad(
                "counters_max",
                format!(
                    "must be at least 1 / hot_share = {:.0} so that every hot key is tracked, \
                     got {}",
                    (1.0 / self.hot_share).ceil(),
                    self.counters_max
                ),
            );
        }
        if !(1..=HOT_KEYS_SAMPLE_EVERY_MAX).contains(&self.sample_every) {
            return bad(
                "sample_every",
                format!(
                    "must be in 1..={HOT_KEYS_SAMPLE_EVERY_MAX}, got {}",
                    self.sample_every
                ),
            );
        }
        if self.named.len() > HOT_KEYS_NAMED_MAX {
            return bad(
                "named",
                format!(
                    "lists {} keys, more than {HOT_KEYS_NAMED_MAX}",
                    self.named.len()
                ),
            );
        }
        Ok(())
    }
}

/// Tells, record by record, whether a key is currently hot.
///
/// Every `sample_every`-th record on average is offered to a [`SpaceSaving`] summary and its key
/// re-checked; the set of hot keys is recomputed in full every `counters_max` samples and on
/// [`decay`](Self::decay). No key is hot before the first `counters_max` samples: a share of a
/// handful of records says nothing. [`observe`](Self::observe) itself is a countdown and, while any key is
/// hot, one hash-set lookup. The gaps between samples are pseudo-random (from a fixed seed, so
/// runs repeat) rather than fixed, so a stream that cycles through keys in a fixed order cannot
/// line up with the sampling and hide or fake a hot key.
///
/// Shares are of the records of keys not in `named`: named keys are answered before sampling.
///
/// ```
/// use weir_operators::hot_keys::{HotKeyConfig, HotKeyDetector};
///
/// let mut detector = HotKeyDetector::new(HotKeyConfig {
///     counters_max: 64,
///     hot_share: 0.2,
///     sample_every: 1,
///     named: vec![0u64],
/// })?;
/// let mut hot_seen = false;
/// for i in 0..10_000u64 {
///     let key = if i % 2 == 0 { 7 } else { 100 + i };
///     hot_seen |= detector.observe(&key) && key == 7;
/// }
/// assert!(hot_seen);
/// assert_eq!(detector.hot_keys(), vec![0, 7]);
/// assert!(detector.observe(&0)); // named: always hot
/// # Ok::<(), weir_operators::hot_keys::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HotKeyDetector<K> {
    summary: SpaceSaving<K>,
    hot_share: f64,
    sample_every: u64,
    named: Vec<K>,
    named_set: HashSet<K, StableBuildHasher>,
    hot: HashSet<K, StableBuildHasher>,
    /// Records left before the next sample.
    countdown: u64,
    /// Samples left before the hot set is recomputed in full.
    refresh_countdown: usize,
    /// Whether `counters_max` samples have been taken, so shares mean something.
    warm: bool,
    rng_state: u64,
}

impl<K: Hash + Eq + Clone> HotKeyDetector<K> {
    /// A detector with `config`, once it passes [`HotKeyConfig::validate`].
    pub fn new(config: HotKeyConfig<K>) -> Result<Self, ConfigError> {
        config.validate()?;
        let named_set = config.named.iter().cloned().collect();
        let mut detector = HotKeyDetector {
            summary: SpaceSaving::new(config.counters_max),
            hot_share: config.hot_share,
            sample_every: config.sample_every,
            named: config.named,
            named_set,
            hot: HashSet::default(),
            countdown: 1,
            refresh_countdown: config.counters_max,
            warm: false,
            rng_state: 0x853C_49E6_748F_EA9B,
        };
        detector.countdown = detector.next_gap();
        Ok(detector)
    }

    /// Notes one record of `key`; true when `key` is hot now (named keys always are).
    #[inline]
    pub fn observe(&mut self, key: &K) -> bool {
        if !self.named_set.is_empty() && self.named_set.contains(key) {
            return true;
        }
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = self.next_gap();
            self.sample(key);
        }
        !self.hot.is_empty() && self.hot.contains(key)
    }

    /// Whether `key` is hot now, without counting a record.
    pub fn is_hot(&self, key: &K) -> bool {
        self.named_set.contains(key) || self.hot.contains(key)
    }

    /// The named keys (in configured order), then the detected hot keys, most frequent first.
    pub fn hot_keys(&self) -> Vec<K> {
        let mut detected: Vec<(&K, u64, u64)> = self
            .hot
            .iter()
            .map(|key| {
                let (count, error) = self.summary.estimate(key).unwrap_or((0, 0));
                (key, count, error)
            })
            .collect();
        detected.sort_by_cached_key(|&(key, count, error)| rank(key, count, error));
        self.named
            .iter()
            .cloned()
            .chain(detected.into_iter().map(|(key, _, _)| key.clone()))
            .collect()
    }

    /// Halves the summary's counts (see [`SpaceSaving::decay`]) and recomputes the hot set, so
    /// that keys that cooled down stop being hot. Call it on a fixed cadence: every window
    /// close or checkpoint, or every few `counters_max * sample_every` records.
    pub fn decay(&mut self) {
        self.summary.decay();
        self.refresh();
    }

    /// The summary behind the detector (of sampled records only).
    pub fn summary(&self) -> &SpaceSaving<K> {
        &self.summary
    }

    fn sample(&mut self, key: &K) {
        self.summary.offer(key);
        self.refresh_countdown -= 1;
        if self.refresh_countdown == 0 {
            self.warm = true;
            self.refresh();
            return;
        }
        if !self.warm {
            return;
        }
        if self.summary.is_hot(key, self.hot_share) {
            if !self.hot.contains(key) {
                self.hot.insert(key.clone());
            }
        } else if !self.hot.is_empty() {
            self.hot.remove(key);
        }
    }

    /// Recomputes the hot set from the summary: a key's share falls as the total grows even
    /// when the key is not sampled, and eviction can drop it from the summary.
    fn refresh(&mut self) {
        self.refresh_countdown = self.summary.counters_max();
        let threshold = self.hot_share * self.summary.total() as f64;
        self.hot.clear();
        if !self.warm || self.summary.total() == 0 {
            return;
        }
        for (key, count, error) in self.summary.iter() {
            if (count - error) as f64 >= threshold {
                self.hot.insert(key.clone());
            }
        }
    }

    /// Records until the next sample: uniform in `1..=2 * sample_every - 1`, mean `sample_every`.
    fn next_gap(&mut self) -> u64 {
        if self.sample_every == 1 {
            return 1;
        }
        // xorshift64*: fast, and good enough to break up periodic key patterns.
        self.rng_state ^= self.rng_state >> 12;
        self.rng_state ^= self.rng_state << 25;
        self.rng_state ^= self.rng_state >> 27;
        let random = self.rng_state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        1 + random % (2 * self.sample_every - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the heap, index and position arrays against each other.
    fn assert_consistent<K: Hash + Eq + Clone + std::fmt::Debug>(summary: &SpaceSaving<K>) {
        assert!(summary.len() <= summary.counters_max);
        assert_eq!(summary.index.len(), summary.heap.len());
        for (at, entry) in summary.heap.iter().enumerate() {
            assert_eq!(summary.position[entry.slot as usize] as usize, at);
            assert_eq!(
                summary.index[&summary.keys[entry.slot as usize]],
                entry.slot
            );
            assert!(entry.error <= entry.count);
            if at > 0 {
                assert!(
                    summary.heap[(at - 1) / 2].count <= entry.count,
                    "heap order"
                );
            }
        }
    }

    #[test]
    fn exact_until_full() {
        let mut summary = SpaceSaving::new(4);
        for key in [1, 2, 1, 3, 1, 2] {
            summary.offer(&key);
        }
        assert_consistent(&summary);
        assert_eq!(summary.estimate(&1), Some((3, 0)));
        assert_eq!(summary.estimate(&2), Some((2, 0)));
        assert_eq!(summary.estimate(&9), None);
        assert_eq!(summary.absent_count_max(), 0);
        assert_eq!(summary.top(2), vec![(1, 3, 0), (2, 2, 0)]);
    }

    #[test]
    fn newcomer_inherits_the_smallest_count() {
        let mut summary = SpaceSaving::new(2);
        summary.offer_n(&"a", 5);
        summary.offer_n(&"b", 2);
        summary.offer(&"c");
        assert_consistent(&summary);
        assert_eq!(summary.estimate(&"b"), None);
        assert_eq!(summary.estimate(&"c"), Some((3, 2)));
        assert_eq!(summary.absent_count_max(), 3);
        assert_eq!(summary.total(), 8);
        summary.offer_n(&"c", 0);
        assert_eq!(summary.total(), 8);
    }

    #[test]
    fn is_hot_uses_the_lower_bound() {
        let mut summary = SpaceSaving::new(2);
        summary.offer_n(&"a", 6);
        summary.offer_n(&"b", 3);
        summary.offer_n(&"c", 1); // evicts b: c = (4, 3)
        assert!(summary.is_hot(&"a", 0.6));
        assert!(!summary.is_hot(&"a", 0.61));
        assert!(summary.is_hot(&"c", 0.1));
        assert!(
            !summary.is_hot(&"c", 0.11),
            "c's guaranteed count is 1 of 10"
        );
        assert!(!SpaceSaving::<u8>::new(1).is_hot(&0, 0.0));
    }

    #[test]
    fn decay_halves_and_frees_cold_counters() {
        let mut summary = SpaceSaving::new(3);
        summary.offer_n(&"a", 9);
        summary.offer_n(&"b", 1);
        summary.offer_n(&"c", 4);
        summary.decay();
        assert_consistent(&summary);
        assert_eq!(summary.estimate(&"a"), Some((4, 0)));
        assert_eq!(summary.estimate(&"b"), None);
        assert_eq!(summary.estimate(&"c"), Some((2, 0)));
        assert_eq!(summary.total(), 7);
        summary.offer(&"d");
        assert_eq!(
            summary.estimate(&"d"),
            Some((1, 0)),
            "the freed counter is reused"
        );
    }

    #[test]
    fn merge_is_symmetric_and_counts_absent_keys_at_the_floor() {
        let mut left = SpaceSaving::new(2);
        left.offer_n(&"a", 5);
        left.offer_n(&"b", 3);
        let mut right = SpaceSaving::new(2);
        right.offer_n(&"a", 1);
        right.offer_n(&"c", 4);

        let mut ab = left.clone();
        ab.merge(right.clone());
        let mut ba = right;
        ba.merge(left);
        assert_consistent(&ab);
        assert_eq!(ab.top(2), ba.top(2));
        // a: 5 + 1; c: 4 + left's floor 3 (error 3); b: 3 + right's floor 1, dropped.
        assert_eq!(ab.top(2), vec![("c", 7, 3), ("a", 6, 0)]);
        assert_eq!(ab.total(), 13);
    }

    #[test]
    fn merge_keeps_the_smaller_capacity() {
        let mut big = SpaceSaving::new(8);
        big.offer(&1);
        let mut small = SpaceSaving::new(2);
        small.offer(&2);
        big.merge(small);
        assert_eq!(big.counters_max(), 2);
        assert_consistent(&big);
    }

    #[test]
    fn serde_round_trip_rebuilds_the_index() {
        let mut summary = SpaceSaving::new(3);
        for key in ["x", "y", "x", "z", "w", "x"] {
            summary.offer(&key.to_string());
        }
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&summary, config).expect("encodes");
        let (back, _): (SpaceSaving<String>, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decodes");
        assert_consistent(&back);
        assert_eq!(back.top(3), summary.top(3));
        assert_eq!(back.total(), summary.total());
        assert_eq!(back.counters_max(), 3);
    }

    #[test]
    fn deserialize_rejects_broken_summaries() {
        let decode = |json: &str| serde_json::from_str::<SpaceSaving<String>>(json);
        assert!(decode(r#"{"counters_max":0,"total":0,"counters":[]}"#).is_err());
        assert!(
            decode(r#"{"counters_max":1,"total":2,"counters":[["a",1,0],["b",1,0]]}"#).is_err()
        );
        assert!(
            decode(r#"{"counters_max":2,"total":2,"counters":[["a",1,0],["a",1,0]]}"#).is_err()
        );
        assert!(decode(r#"{"counters_max":2,"total":1,"counters":[["a",1,2]]}"#).is_err());
        assert!(decode(r#"{"counters_max":2,"total":1,"counters":[["a",1,0]]}"#).is_ok());
    }

    #[test]
    fn config_errors_name_the_field() {
        let field = |config: HotKeyConfig<u8>| config.validate().expect_err("invalid").field;
        assert!(HotKeyConfig::<u8>::default().validate().is_ok());
        let base = HotKeyConfig::<u8>::default;
        assert_eq!(
            field(HotKeyConfig {
                counters_max: 0,
                ..base()
            }),
            "counters_max"
        );
        assert_eq!(
            field(HotKeyConfig {
                hot_share: 0.0,
                ..base()
            }),
            "hot_share"
        );
        assert_eq!(
            field(HotKeyConfig {
                hot_share: f64::NAN,
                ..base()
            }),
            "hot_share"
        );
        assert_eq!(
            field(HotKeyConfig {
                hot_share: 1.5,
                ..base()
            }),
            "hot_share"
        );
        assert_eq!(
            field(HotKeyConfig {
                counters_max: 10,
                hot_share: 0.01,
                ..base()
            }),
            "counters_max"
        );
        assert_eq!(
            field(HotKeyConfig {
                sample_every: 0,
                ..base()
            }),
            "sample_every"
        );
        let named = vec![0u8; HOT_KEYS_NAMED_MAX + 1];
        assert_eq!(field(HotKeyConfig { named, ..base() }), "named");
        assert!(
            HotKeyDetector::new(HotKeyConfig::<u8> {
                sample_every: 0,
                ..base()
            })
            .is_err()
        );
    }

    #[test]
    fn detector_finds_a_hot_key_and_lets_it_cool() {
        let mut detector = HotKeyDetector::new(HotKeyConfig {
            counters_max: 50,
            hot_share: 0.1,
            sample_every: 4,
            named: vec![u64::MAX],
        })
        .expect("valid config");
        // Round-robin over 1000 keys, with key 7 on every third record: a fixed sampling
        // stride of 3 would see only key 7 or never see it.
        for i in 0..60_000u64 {
            let key = if i % 3 == 0 { 7 } else { 1000 + i % 1000 };
            detector.observe(&key);
        }
        assert!(detector.observe(&7));
        assert!(!detector.observe(&1001));
        assert!(detector.observe(&u64::MAX));
        assert_eq!(detector.hot_keys(), vec![u64::MAX, 7]);

        // Key 7 disappears; decay lets the detector forget it.
        for round in 0..8u64 {
            for i in 0..20_000u64 {
                detector.observe(&(1000 + (i + round) % 1000));
            }
            detector.decay();
        }
        assert!(!detector.is_hot(&7));
        assert_eq!(detector.hot_keys(), vec![u64::MAX]);
    }

    #[test]
    fn cold_stream_has_no_hot_keys() {
        let mut detector = HotKeyDetector::new(HotKeyConfig::<u32>::default()).expect("valid");
        for i in 0..100_000u32 {
            assert!(!detector.observe(&(i % 5_000)));
        }
        assert!(detector.hot_keys().is_empty());
        assert!(detector.summary().total() > 0);
    }
}
