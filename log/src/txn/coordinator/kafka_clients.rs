//! The coordinator's entry points for Kafka clients (transaction version 1, driven by
//! `weir serve`): InitProducerId with KIP-360's current epoch, the AddOffsetsToTxn /
//! TxnOffsetCommit check and EndTxn. The epoch stays the same across a client's transactions;
//! everything else (registration, the durable decision, markers, recovery) is the machinery
//! the embedded producer uses, in the parent module.

use std::collections::BTreeSet;

use super::{Expected, TxnCoordinator, TxnStatus, fenced, lock};
use crate::topic_partition::TopicPartition;
use crate::topic_store::Acks;
use crate::{Error, Result, TxnErrorKind};

impl TxnCoordinator {
    /// A Kafka client's InitProducerId (transaction version 1). `current` is the (producer id,
    /// epoch) the client holds (KIP-360), `None` (or `(-1, -1)`) when it has none. Fences older
    /// instances as [`TxnCoordinator::init`] does. With `current`, it must be the coordinator's
    /// (the epoch is bumped) or the one a coordinator abort or an earlier init of this client
    /// superseded (the current epoch is returned as it is, as Kafka's lastProducerEpoch allows);
    /// anything else is `ProducerFenced`.
    pub(crate) fn init_client(
        &self,
        txn_id: &str,
        timeout_ms: i64,
        current: Option<(i64, i16)>,
    ) -> Result<(i64, i16)> {
        if txn_id.is_empty() {
            return Err(Error::config("transactional_id", "must not be empty"));
        }
        self.check_timeout(timeout_ms)
            .map_err(|why| Error::txn(txn_id, TxnErrorKind::InvalidTransactionTimeout, why))?;
        let current = current.filter(|&(pid, epoch)| pid >= 0 || epoch >= 0);
        let Some(e) = self.entry(txn_id) else {
            // Kafka too ignores `current` for an id it does not know (the client recovers from
            // an UNKNOWN_PRODUCER_ID that way).
            return self.create(txn_id, timeout_ms, true);
        };
        let mut m = lock(&e);
        if let Some(held) = current {
            let holds_current = held == (m.producer_id, m.epoch);
            let holds_previous = m.previous == Some(held);
            if !holds_current && !holds_previous {
                // Kafka answers PRODUCER_FENCED whether the producer id or the epoch differs.
                return Err(Error::txn(
                    txn_id,
                    TxnErrorKind::ProducerFenced,
                    format!(
                        "producer {} epoch {} is neither the current producer {} epoch {} nor the one it superseded",
                        held.0, held.1, m.producer_id, m.epoch
                    ),
                ));
            }
            if !holds_current {
                if m.status == TxnStatus::Ongoing {
                    return Err(Error::txn(
                        txn_id,
                        TxnErrorKind::ProducerFenced,
                        format!(
                            "producer {} epoch {} was superseded: epoch {} has begun a transaction",
                            held.0, held.1, m.epoch
                        ),
                    ));
                }
                // The bump already happened on this client's behalf: hand it the epoch.
                self.complete_leftovers(txn_id, &mut m)?;
                m.timeout_ms = timeout_ms;
                m.keeps_epoch = true;
                self.persist(txn_id, &m, Acks::All)?;
                return Ok((m.producer_id, m.epoch));
            }
        }
        self.complete_leftovers(txn_id, &mut m)?;
        self.bump_epoch(&e, &mut m)?;
        m.status = TxnStatus::Empty;
        m.partitions.clear();
        m.timeout_ms = timeout_ms;
        m.keeps_epoch = true;
        // A retry of this very call (its answer lost) names `current` again and gets this epoch
        // (even if aborting the caller's open transaction moved the epoch once more on the way).
        m.previous = current;
        self.persist(txn_id, &m, Acks::All)?;
        Ok((m.producer_id, m.epoch))
    }

    /// Ok when the caller holds the current epoch and its ongoing transaction registered `tp`
    /// (a transactional offset commit needs AddOffsetsToTxn first).
    pub(crate) fn check_registered(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &TopicPartition,
    ) -> Result<()> {
        let e = self.check(txn_id, producer_id, epoch)?;
        let m = lock(&e);
        if m.status != TxnStatus::Ongoing || !m.partitions.contains(tp) {
            return Err(Error::txn(
                txn_id,
                TxnErrorKind::InvalidTxnState,
                format!("{tp} is not registered in the ongoing transaction"),
            ));
        }
        Ok(())
    }

    /// A Kafka client's EndTxn (transaction version 1): commits or aborts; the epoch stays. The
    /// transaction's data is made durable with the decision. A retry of an end that completed
    /// is answered with success, as Kafka does.
    pub(crate) fn end_client(
        &self,
        txn_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<()> {
        let e = self.check(txn_id, producer_id, epoch)?;
        let mut m = lock(&e);
        if m.producer_id != producer_id || m.epoch != epoch {
            return Err(fenced(txn_id, producer_id, epoch, &m));
        }
        let verb = if commit { "commit" } else { "abort" };
        match (m.status, commit) {
            (TxnStatus::Ongoing, _) => {
                let expected = if commit {
                    self.last_offsets(&m.partitions)?
                } else {
                    Vec::new()
                };
                self.finish(txn_id, &mut m, commit, expected, None)
            }
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => Ok(()),
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                // An end that stopped short of its markers (a failed round): finish it now.
                self.make_decision_durable(txn_id, &m, None)?;
                self.write_markers_and_complete(txn_id, &mut m)
            }
            (s, _) => Err(Error::txn(
                txn_id,
                TxnErrorKind::InvalidTxnState,
                format!("cannot {verb} in state {s:?}"),
            )),
        }
    }

    /// Each partition's last offset now: a Kafka client's data in it ends at or before it (it
    /// waits for its produce answers before it ends the transaction), so recovery commits only
    /// if every one of them survived.
    fn last_offsets(&self, partitions: &BTreeSet<TopicPartition>) -> Result<Expected> {
        let mut out = Vec::with_capacity(partitions.len());
        for tp in partitions {
            match self.store.offsets(tp.topic(), tp.partition()) {
                Ok((_, hw)) if hw > 0 => out.push((tp.clone(), hw - 1)),
                Ok(_) | Err(Error::UnknownTopic(_) | Error::UnknownPartition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
