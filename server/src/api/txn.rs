//! Producer ids and transactions: InitProducerId (idempotent and transactional, with KIP-360's
//! epoch bump), AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit (KIP-447 group metadata
//! from v3) and EndTxn, all answered by the log's one transaction coordinator. Transaction
//! version 1: a producer keeps its epoch across transactions, so every client that does not
//! negotiate `transaction.version` 2 (librdkafka, kafka-python, Java by default) works.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use weir_log::TopicPartition;

use super::Ctx;
use crate::auth::acl::Operation;
use crate::errors::{KafkaCode, code, txn_error_code};

/// No producer id (InitProducerId requests without one, and failed responses).
const NO_PRODUCER_ID: i64 = -1;

pub(crate) fn init_producer_id(
    ctx: &Ctx<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let log = &ctx.shared.log;
    let current = (ctx.version >= 3 && request.producer_id.0 != NO_PRODUCER_ID)
        .then_some((request.producer_id.0, request.producer_epoch));
    let outcome = match &request.transactional_id {
        Some(txn_id) if !txn_id.is_empty() => {
            if let Err((err, _)) = ctx.check_txn_id(Operation::Write, txn_id) {
                return InitProducerIdResponse::default()
                    .with_error_code(err)
                    .with_producer_id(ProducerId(NO_PRODUCER_ID))
                    .with_producer_epoch(-1);
            }
            log.init_transactional_id(txn_id, i64::from(request.transaction_timeout_ms), current)
        }
        // An idempotent producer: a fresh id (also when it asks to bump an old one, as Kafka).
        _ => log.init_producer_id(),
    };
    match outcome {
        Ok((producer_id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => InitProducerIdResponse::default()
            .with_error_code(txn_error_code(&e, ctx.version >= 4))
            .with_producer_id(ProducerId(NO_PRODUCER_ID))
            .with_producer_epoch(-1),
    }
}

pub(crate) fn add_partitions_to_txn(
    ctx: &Ctx<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let partitions: Vec<TopicPartition> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.name.0.as_str(), p))
        })
        .collect();
    // All or nothing, as Kafka: one error applies to every partition of the request; a topic
    // the principal may not write fails itself and leaves the others not attempted.
    let txn_id_denied = ctx
        .check_txn_id(Operation::Write, &request.v3_and_below_transactional_id)
        .err()
        .map(|(err, _)| err);
    let topic_denied = |topic: &str| {
        ctx.check_topic(Operation::Write, topic)
            .err()
            .map(|(err, _)| err)
    };
    let any_topic_denied = partitions
        .iter()
        .any(|tp| topic_denied(tp.topic()).is_some());
    let err = if let Some(err) = txn_id_denied {
        err
    } else if any_topic_denied {
        code(KafkaCode::OperationNotAttempted)
    } else {
        match ctx.shared.log.add_partitions_to_txn(
            &request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &partitions,
        ) {
            Ok(()) => 0,
            Err(e) => txn_error_code(&e, ctx.version >= 2),
        }
    };
    let results = request
        .v3_and_below_topics
        .into_iter()
        .map(|t| {
            let err = if txn_id_denied.is_none() {
                topic_denied(t.name.0.as_str()).unwrap_or(err)
            } else {
                err
            };
            let by_partition = t
                .partitions
                .iter()
                .map(|&p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(err)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name)
                .with_results_by_partition(by_partition)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

pub(crate) fn add_offsets_to_txn(
    ctx: &Ctx<'_>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let denied = ctx
        .check_txn_id(Operation::Write, &request.transactional_id)
        .and_then(|()| ctx.check_group(Operation::Read, &request.group_id));
    if let Err((err, _)) = denied {
        return AddOffsetsToTxnResponse::default().with_error_code(err);
    }
    match ctx.shared.log.add_offsets_to_txn(
        &request.transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        &request.group_id,
    ) {
        Ok(()) => AddOffsetsToTxnResponse::default(),
        Err(e) => {
            AddOffsetsToTxnResponse::default().with_error_code(txn_error_code(&e, ctx.version >= 2))
        }
    }
}

pub(crate) fn txn_offset_commit(
    ctx: &Ctx<'_>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    // v3+ (KIP-447): the consumer's group metadata fences a zombie of an older generation.
    let member = (ctx.version >= 3 && request.generation_id >= 0)
        .then(|| (request.member_id.as_str(), request.generation_id));
    let offsets: Vec<(TopicPartition, i64)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    TopicPartition::new(t.name.0.as_str(), p.partition_index),
                    p.committed_offset,
                )
            })
        })
        .collect();
    let denied = ctx
        .check_txn_id(Operation::Write, &request.transactional_id)
        .and_then(|()| ctx.check_group(Operation::Read, &request.group_id))
        .and_then(|()| ctx.check_offset_topics(Operation::Read, &offsets));
    let err = match denied {
        Err((err, _)) => err,
        Ok(()) => match ctx.shared.log.txn_offset_commit(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            &request.group_id,
            member,
            &offsets,
        ) {
            Ok(()) => 0,
            Err(e) => txn_error_code(&e, ctx.version >= 3),
        },
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(err)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub(crate) fn end_txn(ctx: &Ctx<'_>, request: EndTxnRequest) -> EndTxnResponse {
    if let Err((err, _)) = ctx.check_txn_id(Operation::Write, &request.transactional_id) {
        return EndTxnResponse::default().with_error_code(err);
    }
    match ctx.shared.log.end_txn(
        &request.transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    ) {
        Ok(()) => EndTxnResponse::default(),
        Err(e) => EndTxnResponse::default().with_error_code(txn_error_code(&e, ctx.version >= 2)),
    }
}
