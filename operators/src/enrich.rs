//! Stream–table enrichment: each record is joined with the latest value of its key in a
//! (usually compacted) topic, as Kafka Streams' KStream–GlobalKTable join.
//!
//! Every task keeps the whole table in memory (bounded by `table_entries_max`): it reads the
//! topic to its end when the job starts and then follows it, taking in updates before each
//! batch of records it processes. Table updates are not synchronized with the stream's event
//! time, so which table value a record meets depends on timing, as in Kafka Streams.

use std::collections::HashMap;
use std::time::Duration;

use weir_runtime::topics::{Isolation, ReaderConfig, TopicReader};
use weir_runtime::{
    BoxOperator, Codec, Data, Error, Event, Operator, Output, Result, Stream, TaskContext,
};

/// How many records pass between two looks at the table topic.
const RECORDS_BETWEEN_REFRESHES: u32 = 1024;
/// Bytes read from a table partition per fetch.
const TABLE_FETCH_BYTES_MAX: usize = 1 << 20;
/// Bytes of table updates taken in per poll.
const TABLE_POLL_BYTES_MAX: usize = 8 << 20;

/// Adds `enrich` to streams: each record joined with a table kept from a compacted topic.
pub trait EnrichExt<T> {
    /// Joins each record with the latest value under `key(record)` in `table_topic`
    /// (`None` if absent or deleted); `join` returns the output, or `None` to drop the record.
    fn enrich<V, U, C>(
        &self,
        table_topic: &str,
        codec: C,
        table_entries_max: usize,
        key: impl Fn(&T) -> Vec<u8> + Send + Sync + 'static,
        join: impl Fn(T, Option<&V>) -> Option<U> + Send + Sync + 'static,
    ) -> Stream<U>
    where
        V: Send + 'static,
        U: Data,
        C: Codec<V>;
}

impl<T: Data> EnrichExt<T> for Stream<T> {
    fn enrich<V, U, C>(
        &self,
        table_topic: &str,
        codec: C,
        table_entries_max: usize,
        key: impl Fn(&T) -> Vec<u8> + Send + Sync + 'static,
        join: impl Fn(T, Option<&V>) -> Option<U> + Send + Sync + 'static,
    ) -> Stream<U>
    where
        V: Send + 'static,
        U: Data,
        C: Codec<V>,
    {
        let topic = table_topic.to_string();
        let key = std::sync::Arc::new(key);
        let join = std::sync::Arc::new(join);
        self.transform(
            &format!("enrich:{topic}"),
            move |ctx: &mut TaskContext<'_>, _uid: &str| -> Result<BoxOperator<T, U>> {
                let topics = ctx.topics();
                let mut consumer = topics.reader(ReaderConfig {
                    client_id: format!("{}-table", ctx.config().job_id()),
                    isolation: Isolation::ReadCommitted,
                    fetch_bytes_max: TABLE_FETCH_BYTES_MAX,
                    poll_bytes_max: TABLE_POLL_BYTES_MAX,
                })?;
                let partitions: Vec<i32> = (0..topics.partition_count(&topic)?).collect();
                consumer.assign(&topic, &partitions)?;
                let mut op = Enrich {
                    topic: topic.clone(),
                    consumer,
                    codec: codec.clone(),
                    table: HashMap::new(),
                    table_entries_max,
                    key: key.clone(),
                    join: join.clone(),
                    since_refresh: 0,
                };
                op.load()?;
                Ok(Box::new(op))
            },
        )
    }
}

#[allow(clippy::type_complexity)]
struct Enrich<T, V, U, C> {
    topic: String,
    consumer: Box<dyn TopicReader>,
    codec: C,
    table: HashMap<Vec<u8>, V>,
    table_entries_max: usize,
    key: std::sync::Arc<dyn Fn(&T) -> Vec<u8> + Send + Sync>,
    join: std::sync::Arc<dyn Fn(T, Option<&V>) -> Option<U> + Send + Sync>,
    since_refresh: u32,
}

impl<T, V, U, C: Codec<V>> Enrich<T, V, U, C> {
    /// Reads the table topic up to its end as of now.
    fn load(&mut self) -> Result<()> {
        loop {
            if self.refresh(Duration::from_millis(20))? == 0 {
                return Ok(());
            }
        }
    }

    /// Takes in what was appended to the table; returns how many records.
    fn refresh(&mut self, wait: Duration) -> Result<usize> {
        let mut n = 0;
        for b in self.consumer.poll(wait)? {
            for r in b.records {
                n += 1;
                let Some(k) = r.key else { continue };
                match r.value {
                    None => {
                        self.table.remove(k.as_ref());
                    }
                    Some(v) => {
                        let value = self.codec.decode(&v).map_err(|source| Error::Codec {
                            topic: format!("{}/{} offset {}", self.topic, b.partition, r.offset),
                            source,
                        })?;
                        self.table.insert(k.to_vec(), value);
                        if self.table.len() > self.table_entries_max {
                            return Err(Error::Operator {
                                operator: format!("enrich:{}", self.topic),
                                reason: format!(
                                    "the table holds more than table_entries_max = {} keys",
                                    self.table_entries_max
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(n)
    }
}

impl<T: Data, V: Send + 'static, U: Data, C: Codec<V>> Operator<T, U> for Enrich<T, V, U, C> {
    fn on_event(&mut self, ev: Event<T>, out: &mut Output<'_, U>) -> Result<()> {
        self.since_refresh += 1;
        if self.since_refresh >= RECORDS_BETWEEN_REFRESHES {
            self.since_refresh = 0;
            self.refresh(Duration::ZERO)?;
        }
        let k = (self.key)(&ev.value);
        let Event { value, ts, wm } = ev;
        if let Some(u) = (self.join)(value, self.table.get(&k)) {
            out.emit(Event { value: u, ts, wm })?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, _wm: i64, _out: &mut Output<'_, U>) -> Result<()> {
        self.refresh(Duration::ZERO)?;
        Ok(())
    }

    fn state_items(&self) -> usize {
        self.table.len()
    }
}
