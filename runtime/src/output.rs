//! The job's producer: where sinks (and dead letters) write, inside the open epoch's
//! transaction under exactly-once, straight to the log under at-least-once.

use std::sync::Mutex;

use weir_log::format::Header;
use weir_log::{
    Acks, Log, Producer, ProducerConfig, ProducerRecord, TransactionalConfig, TransactionalProducer,
};

use crate::config::{Guarantee, JobConfig};
use crate::error::{Error, Result};

/// A record a sink hands to the job's producer, borrowed from the sink's buffer.
pub(crate) struct OutputRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: &'a [u8],
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: &'a [Header],
}

/// The one producer every task of a job writes through, chosen by the job's [`Guarantee`].
pub(crate) enum OutputProducer {
    /// One transaction per epoch; the coordinator commits it and begins the next.
    Transactional(Box<Mutex<TransactionalProducer>>),
    /// Idempotent, `acks=all`; the coordinator flushes it before committing offsets.
    Plain(Producer),
}

impl OutputProducer {
    /// Opens the producer and, under exactly-once, begins the first epoch's transaction.
    /// Opening a transactional producer fences an earlier instance of this job and aborts its
    /// open epoch.
    pub(crate) fn open(log: &Log, config: &JobConfig) -> Result<OutputProducer> {
        Ok(match config.guarantee {
            Guarantee::ExactlyOnce => {
                // lz4: state snapshots (sketches, sparse tables) shrink many times over.
                let mut p = TransactionalProducer::new(
                    log,
                    TransactionalConfig {
                        compression: weir_log::format::Compression::Lz4,
                        ..TransactionalConfig::new(config.job_id())
                    },
                )?;
                p.begin()?;
                OutputProducer::Transactional(Box::new(Mutex::new(p)))
            }
            Guarantee::AtLeastOnce => OutputProducer::Plain(Producer::new(
                log,
                ProducerConfig {
                    acks: Acks::All,
                    idempotent: true,
                    ..ProducerConfig::default()
                },
            )?),
        })
    }

    /// Writes records (into the open transaction, under exactly-once).
    pub(crate) fn send(&self, records: &[OutputRecord<'_>]) -> Result<()> {
        fn rec<'a>(r: &'a OutputRecord<'a>) -> ProducerRecord<'a> {
            let mut pr = ProducerRecord::new(r.topic, r.value).headers(r.headers);
            if let Some(k) = r.key {
                pr = pr.key(k);
            }
            if let Some(ts) = r.timestamp {
                pr = pr.timestamp(ts);
            }
            pr
        }
        match self {
            OutputProducer::Transactional(p) => {
                let mut p = p.lock().map_err(|_| Error::Stopped)?;
                for r in records {
                    p.send(rec(r))?;
                }
            }
            OutputProducer::Plain(p) => {
                for r in records {
                    p.send(rec(r))?;
                }
            }
        }
        Ok(())
    }

    /// The job is ending: the open epoch is abandoned (a restart replays it), and what the
    /// plain producer buffered goes out. Errors are moot here: the job already has its result.
    pub(crate) fn abandon(&self) {
        match self {
            OutputProducer::Transactional(p) => {
                if let Ok(mut p) = p.lock() {
                    let _ = p.abort();
                }
            }
            OutputProducer::Plain(p) => {
                let _ = p.flush();
            }
        }
    }
}
