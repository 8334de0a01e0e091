//! Fetch (long poll, isolation level, aborted transactions) and ListOffsets.
//!
//! A fetch returns whole batches as they lie in the segments (the first may begin before the
//! asked offset: clients skip what precedes it) and waits, off the connection's task, until
//! `min_bytes` are there or `max_wait_ms` passes. Record sets are empty bytes when there is
//! nothing, never null (librdkafka rejects a null record set).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, ProducerId,
};
use weir_log::{Error, IsolationLevel, Log};

use super::{Ctx, encode_reply};
use crate::Shared;
use crate::auth::acl::Operation;
use crate::connection::Pending;
use crate::errors::{KafkaCode, code, error_code};
use crate::memory::{Held, Pools};

/// How much one decompressed batch may grow to when ListOffsets reads a record's timestamp.
const DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

pub(crate) fn fetch(ctx: &Ctx<'_>, correlation_id: i32, request: FetchRequest) -> Pending {
    let shared = ctx.shared.clone();
    let version = ctx.version;
    // Decided once, here: the topics this principal may not read are answered with
    // TOPIC_AUTHORIZATION_FAILED for as long as the fetch waits.
    let denied: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.topic.0.to_string())
        .filter(|t| !ctx.topic_allowed(Operation::Read, t))
        .collect();
    let pools = ctx.pools.clone();
    Pending::Held(tokio::spawn(async move {
        // One fetch reply per connection in memory: wait for the previous one to be written.
        let turn = pools.fetch_turn().await;
        let (response, mut held) = long_poll(&shared, &pools, version, &request, &denied).await;
        held.merge(turn);
        // The frame shares the records' buffers, which `held` counts; the response goes.
        encode_reply(correlation_id, version, "Fetch", &response).map(|reply| (reply, held))
    }))
}

async fn long_poll(
    shared: &Arc<Shared>,
    pools: &Pools,
    version: i16,
    request: &FetchRequest,
    denied: &[String],
) -> (FetchResponse, Held) {
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(shared.config.fetch_wait_ms_max),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    loop {
        let seen = shared.log.data_version();
        let (response, held, failed) =
            tokio::task::block_in_place(|| read_once(shared, pools, version, request, denied));
        let now = Instant::now();
        if held.bytes() >= min_bytes.max(1) || failed || now >= deadline {
            return (response, held);
        }
        drop(held);
        let log = shared.log.clone();
        let remaining = deadline - now;
        // Woken by any append in this process; then read again.
        let _ = tokio::task::spawn_blocking(move || log.wait_for_data(seen, remaining)).await;
    }
}

/// One pass over the asked partitions: the response, the buffer bytes its records hold, and
/// whether any partition failed (an error is answered at once rather than waited on). Each
/// partition's records are read only if the buffer pools have room for them now; a partition
/// that finds none gets its offsets and no records, as past the response's byte budget.
fn read_once(
    shared: &Shared,
    pools: &Pools,
    version: i16,
    request: &FetchRequest,
    denied: &[String],
) -> (FetchResponse, Held, bool) {
    let log = &shared.log;
    let isolation = if version >= 4 && request.isolation_level == 1 {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    };
    let asked = usize::try_from(request.max_bytes).unwrap_or(0);
    let mut budget = asked
        .min(shared.config.fetch_response_bytes_max)
        .min(pools.fair_share());
    let mut total = 0usize;
    let mut held = Held::none();
    let mut failed = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.topic.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let partition_max = usize::try_from(p.partition_max_bytes).unwrap_or(0);
            let data = PartitionData::default().with_partition_index(p.partition);
            // Past the response's budget a partition gets its offsets but no records (the
            // first partition with data always gets one batch, however large, as in Kafka).
            let max = partition_max.min(budget);
            let reserved = if max == 0 {
                Some(Held::none())
            } else {
                pools.try_acquire(max)
            };
            let read = if denied.iter().any(|d| d == name) {
                Err(code(KafkaCode::TopicAuthorizationFailed))
            } else {
                match reserved {
                    // No room now: offsets only.
                    None => {
                        read_partition(log, name, p.partition, p.fetch_offset, 0, isolation, false)
                    }
                    Some(_) => read_partition(
                        log,
                        name,
                        p.partition,
                        p.fetch_offset,
                        max,
                        isolation,
                        total == 0,
                    ),
                }
                .map_err(|e| error_code(&e))
            };
            let read = read.map(|mut read| {
                if let Some(mut reserved) = reserved {
                    let n = read.records.len();
                    if n <= reserved.bytes() {
                        reserved.shrink_to(n);
                    } else {
                        // A first batch larger than the budget (returned whole, as Kafka does).
                        match pools.try_acquire(n - reserved.bytes()) {
                            Some(more) => reserved.merge(more),
                            None => {
                                read.records = Bytes::new();
                                read.aborted.clear();
                                reserved.shrink_to(0);
                            }
                        }
                    }
                    held.merge(reserved);
                }
                read
            });
            let data = match read {
                Ok(read) => {
                    total += read.records.len();
                    budget = budget.saturating_sub(read.records.len());
                    let data = data
                        .with_high_watermark(read.high_watermark)
                        .with_last_stable_offset(read.last_stable_offset)
                        .with_log_start_offset(read.log_start_offset)
                        .with_aborted_transactions(Some(read.aborted))
                        .with_records(Some(read.records));
                    if version >= 11 {
                        data.with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                    } else {
                        data
                    }
                }
                Err(err) => {
                    failed = true;
                    data.with_error_code(err)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1)
                        .with_records(Some(Bytes::new()))
                }
            };
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        held,
        failed,
    )
}

struct PartitionRead {
    records: Bytes,
    aborted: Vec<AbortedTransaction>,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

fn read_partition(
    log: &Log,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    isolation: IsolationLevel,
    first: bool,
) -> Result<PartitionRead, Error> {
    let (start, end) = log.offsets(topic, partition)?;
    if offset < start || offset > end {
        return Err(Error::OffsetOutOfRange {
            topic: topic.to_string(),
            partition,
            offset,
            start,
            end,
        });
    }
    let fetched = if max_bytes == 0 && !first {
        None
    } else {
        Some(log.fetch_isolated(topic, partition, offset, max_bytes.max(1), isolation)?)
    };
    let Some(fetched) = fetched else {
        return Ok(PartitionRead {
            records: Bytes::new(),
            aborted: Vec::new(),
            high_watermark: end,
            last_stable_offset: end,
            log_start_offset: start,
        });
    };
    let records = match fetched.batches.as_slice() {
        [] => Bytes::new(),
        [one] => one.bytes().clone(),
        many => {
            let mut buf = BytesMut::with_capacity(many.iter().map(|b| b.bytes().len()).sum());
            for b in many {
                buf.extend_from_slice(b.bytes());
            }
            buf.freeze()
        }
    };
    let aborted = fetched
        .aborted
        .iter()
        .map(|a| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(a.producer_id))
                .with_first_offset(a.first_offset)
        })
        .collect();
    Ok(PartitionRead {
        records,
        aborted,
        high_watermark: fetched.high_watermark,
        last_stable_offset: fetched.last_stable_offset,
        log_start_offset: start,
    })
}

/// Kafka's special timestamps in ListOffsets.
const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;

pub(crate) fn list_offsets(ctx: &Ctx<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let log = &ctx.shared.log;
    let committed = ctx.version >= 2 && request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let listed = ctx
                        .check_topic(Operation::Describe, &name)
                        .map_err(|(err, _)| err)
                        .and_then(|()| {
                            list_offset(log, &name, p.partition_index, p.timestamp, committed)
                        });
                    match listed {
                        Ok((offset, timestamp)) => {
                            response.with_offset(offset).with_timestamp(timestamp)
                        }
                        Err(err) => response
                            .with_error_code(err)
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// (offset, timestamp) for one ListOffsets query, or the error code.
fn list_offset(
    log: &Log,
    topic: &str,
    partition: i32,
    timestamp: i64,
    committed: bool,
) -> Result<(i64, i64), i16> {
    let to_code = |e: Error| error_code(&e);
    match timestamp {
        LATEST_TIMESTAMP => {
            let end = if committed {
                log.fetch_isolated(
                    topic,
                    partition,
                    log.offsets(topic, partition).map_err(to_code)?.1,
                    1,
                    IsolationLevel::ReadCommitted,
                )
                .map_err(to_code)?
                .last_stable_offset
            } else {
                log.offsets(topic, partition).map_err(to_code)?.1
            };
            Ok((end, -1))
        }
        EARLIEST_TIMESTAMP => Ok((log.offsets(topic, partition).map_err(to_code)?.0, -1)),
        t if t >= 0 => match log
            .offset_for_timestamp(topic, partition, t)
            .map_err(to_code)?
        {
            None => Ok((-1, -1)),
            Some(offset) => Ok((
                offset,
                record_timestamp(log, topic, partition, offset).unwrap_or(t),
            )),
        },
        _ => Err(code(KafkaCode::InvalidRequest)),
    }
}

/// The timestamp of the record at `offset`, read from its batch.
fn record_timestamp(log: &Log, topic: &str, partition: i32, offset: i64) -> Option<i64> {
    let batches = log.fetch(topic, partition, offset, 1).ok()?;
    let batch = batches.first()?;
    let mut records = batch.records(DECOMPRESSED_BYTES_MAX).ok()?;
    records.find_map(|r| r.ok().filter(|r| r.offset >= offset).map(|r| r.timestamp))
}
