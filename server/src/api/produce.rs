//! Produce: each partition's record batches are appended as they arrived, in request order; the
//! log checks them (CRC, sizes, idempotent sequences, transaction membership) and assigns their
//! offsets. With acks=-1 the reply waits for the group-commit fsync round, off the connection's
//! task, so that a client's next requests are appended meanwhile and share the round.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_log::format::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2};
use weir_log::{Acks, Error, Log};

use super::metadata::is_internal;
use super::{Ctx, encode, text};
use crate::auth::acl::Operation;
use crate::connection::Pending;
use crate::errors::{KafkaCode, code, error_code};

/// One partition's outcome before the fsync wait.
struct Appended {
    base_offset: i64,
    round: Option<u64>,
}

pub(crate) fn produce(ctx: &Ctx<'_>, correlation_id: i32, request: ProduceRequest) -> Pending {
    let log = &ctx.shared.log;
    let version = ctx.version;
    let acks = match request.acks {
        0 | 1 => Some(Acks::Leader),
        -1 => Some(Acks::All),
        _ => None,
    };
    // A transactional produce needs WRITE on its transactional id too.
    let txn_id_denied = request
        .transactional_id
        .as_ref()
        .filter(|id| !id.is_empty())
        .and_then(|id| ctx.check_txn_id(Operation::Write, id).err());
    let mut round_max: Option<u64> = None;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let denied = txn_id_denied
            .clone()
            .or_else(|| ctx.check_topic(Operation::Write, &name).err());
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let outcome = match (denied.clone(), acks) {
                (Some(denied), _) => Err(denied),
                (None, None) => Err((
                    code(KafkaCode::InvalidRequiredAcks),
                    format!("acks must be 0, 1 or -1, got {}", request.acks),
                )),
                (None, Some(_)) if is_internal(&name) => Err((
                    code(KafkaCode::InvalidTopicException),
                    format!("'{name}' is internal to weir; clients cannot write to it"),
                )),
                (None, Some(acks)) => tokio::task::block_in_place(|| {
                    append_all(
                        log,
                        &name,
                        data.index,
                        data.records.unwrap_or_default(),
                        acks,
                    )
                })
                .map_err(|e| (error_code(&e), e.to_string())),
            };
            let response = PartitionProduceResponse::default().with_index(data.index);
            let response = match outcome {
                Ok(appended) => {
                    round_max = round_max.max(appended.round);
                    let response = response.with_base_offset(appended.base_offset);
                    if version >= 5 {
                        let start = log.offsets(&name, data.index).map_or(-1, |(s, _)| s);
                        response.with_log_start_offset(start)
                    } else {
                        response
                    }
                }
                Err((err, message)) => {
                    let response = response.with_error_code(err).with_base_offset(-1);
                    if version >= 8 {
                        response.with_error_message(Some(text(message)))
                    } else {
                        response
                    }
                }
            };
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    if request.acks == 0 {
        // No reply, as the client asked; the appends happened all the same.
        return Pending::Ready(None);
    }
    let response = ProduceResponse::default().with_responses(responses);
    let Some(round) = round_max else {
        return match encode(correlation_id, version, "Produce", &response) {
            Ok(bytes) => Pending::Ready(Some(bytes)),
            Err(e) => Pending::Task(tokio::spawn(async move { Err(e) })),
        };
    };
    let log = log.clone();
    Pending::Task(tokio::task::spawn_blocking(move || {
        let mut response = response;
        if let Err(e) = log.wait_durable(round) {
            // Appended but not known durable: the client must not count these as acknowledged.
            let err = code(KafkaCode::KafkaStorageError);
            eprintln!("weir serve: a produce's fsync round failed: {e}");
            for topic in &mut response.responses {
                for p in &mut topic.partition_responses {
                    if p.error_code == 0 {
                        p.error_code = err;
                        p.base_offset = -1;
                    }
                }
            }
        }
        encode(correlation_id, version, "Produce", &response).map(Some)
    }))
}

/// Appends every batch of one partition's record set; returns the first batch's base offset.
fn append_all(
    log: &Log,
    topic: &str,
    partition: i32,
    mut records: Bytes,
    acks: Acks,
) -> Result<Appended, Error> {
    if records.is_empty() {
        return Err(Error::Malformed(
            "a produce request with no record batch".into(),
        ));
    }
    let mut first: Option<i64> = None;
    let mut round: Option<u64> = None;
    while !records.is_empty() {
        let batch = split_batch(&mut records)?;
        let (info, r) = log.append_deferred(topic, partition, batch.to_vec(), acks)?;
        first.get_or_insert(info.base_offset);
        round = round.max(r);
    }
    Ok(Appended {
        base_offset: first.unwrap_or(-1),
        round,
    })
}

/// Takes one RecordBatch v2 off the front of a record set, by its length field. Older message
/// formats (magic 0 and 1) are refused: every client that speaks Produce v3+ writes v2.
fn split_batch(records: &mut Bytes) -> Result<Bytes, Error> {
    if records.len() < BATCH_HEADER_BYTES {
        return Err(Error::Malformed(format!(
            "{} bytes cannot hold a record batch header",
            records.len()
        )));
    }
    // The magic byte follows baseOffset, batchLength and partitionLeaderEpoch.
    let magic = records[16] as i8;
    if magic != MAGIC_V2 {
        return Err(Error::Malformed(format!(
            "message format v{magic} is not supported; only RecordBatch v2"
        )));
    }
    let batch_length = (&records[8..12]).get_i32();
    let total = usize::try_from(batch_length)
        .ok()
        .and_then(|n| n.checked_add(LOG_OVERHEAD_BYTES))
        .filter(|&n| n >= BATCH_HEADER_BYTES && n <= records.len())
        .ok_or_else(|| {
            Error::Malformed(format!(
                "batch length {batch_length} does not fit the {} bytes sent",
                records.len()
            ))
        })?;
    Ok(records.split_to(total))
}
