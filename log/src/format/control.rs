//! Control records: the transaction markers COMMIT and ABORT.
//! Key: `version: int16 (0), type: int16 (0 abort, 1 commit)`; value: `version: int16 (0),
//! coordinatorEpoch: int32`.

use crate::{Error, Result};

/// The kind of a control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// The producer's open transaction aborted.
    Abort,
    /// The producer's open transaction committed.
    Commit,
}

/// A decoded control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// Commit or abort.
    pub kind: ControlType,
    /// The coordinator epoch that wrote it.
    pub coordinator_epoch: i32,
}

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;
const KEY_BYTES: usize = 4;
const VALUE_BYTES: usize = 6;
const TYPE_ABORT: i16 = 0;
const TYPE_COMMIT: i16 = 1;

impl ControlRecord {
    /// Encodes (key, value).
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let kind = match self.kind {
            ControlType::Abort => TYPE_ABORT,
            ControlType::Commit => TYPE_COMMIT,
        };
        let mut key = Vec::with_capacity(KEY_BYTES);
        key.extend_from_slice(&KEY_VERSION.to_be_bytes());
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = Vec::with_capacity(VALUE_BYTES);
        value.extend_from_slice(&VALUE_VERSION.to_be_bytes());
        value.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        (key, value)
    }

    /// Decodes from a control batch's record key and value.
    ///
    /// Like Kafka, accepts versions above 0 and trailing bytes (later versions only append
    /// fields) but rejects negative versions and the non-transaction control types (leader
    /// change, KRaft snapshots), which weir never writes.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<ControlRecord> {
        let Some(&[v0, v1, t0, t1]) = key.first_chunk::<KEY_BYTES>() else {
            return Err(Error::Malformed(format!(
                "control record key of {} bytes, need {KEY_BYTES}",
                key.len()
            )));
        };
        let key_version = i16::from_be_bytes([v0, v1]);
        if key_version < 0 {
            return Err(Error::Malformed(format!(
                "control record key version {key_version}"
            )));
        }
        let kind = match i16::from_be_bytes([t0, t1]) {
            TYPE_ABORT => ControlType::Abort,
            TYPE_COMMIT => ControlType::Commit,
            other => {
                return Err(Error::Malformed(format!(
                    "unsupported control record type {other}"
                )));
            }
        };
        let Some(&[v0, v1, e0, e1, e2, e3]) = value.first_chunk::<VALUE_BYTES>() else {
            return Err(Error::Malformed(format!(
                "transaction marker value of {} bytes, need {VALUE_BYTES}",
                value.len()
            )));
        };
        let value_version = i16::from_be_bytes([v0, v1]);
        if value_version < 0 {
            return Err(Error::Malformed(format!(
                "transaction marker version {value_version}"
            )));
        }
        Ok(ControlRecord {
            kind,
            coordinator_epoch: i32::from_be_bytes([e0, e1, e2, e3]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_kafka_layout() {
        let commit = ControlRecord {
            kind: ControlType::Commit,
            coordinator_epoch: 0x0102_0304,
        };
        assert_eq!(commit.encode(), (vec![0, 0, 0, 1], vec![0, 0, 1, 2, 3, 4]));
        let abort = ControlRecord {
            kind: ControlType::Abort,
            coordinator_epoch: -1,
        };
        assert_eq!(
            abort.encode(),
            (vec![0, 0, 0, 0], vec![0, 0, 0xff, 0xff, 0xff, 0xff])
        );
        for record in [commit, abort] {
            let (key, value) = record.encode();
            assert_eq!(ControlRecord::decode(&key, &value).unwrap(), record);
        }
    }

    #[test]
    fn tolerates_newer_versions_and_trailing_fields() {
        let record = ControlRecord::decode(&[0, 1, 0, 1, 9], &[0, 1, 0, 0, 0, 7, 0xaa]).unwrap();
        assert_eq!(
            record,
            ControlRecord {
                kind: ControlType::Commit,
                coordinator_epoch: 7
            }
        );
    }

    #[test]
    fn rejects_short_negative_and_unknown() {
        let value = [0, 0, 0, 0, 0, 1];
        assert!(ControlRecord::decode(&[0, 0, 0], &value).is_err());
        assert!(ControlRecord::decode(&[], &value).is_err());
        assert!(ControlRecord::decode(&[0xff, 0xff, 0, 1], &value).is_err());
        // LEADER_CHANGE (2) and KRaft snapshot markers (3, 4).
        for kind in [2, 3, 4, -1] {
            let key = [0, 0, 0, kind as u8];
            let key = if kind < 0 { [0, 0, 0xff, 0xff] } else { key };
            assert!(ControlRecord::decode(&key, &value).is_err(), "type {kind}");
        }
        assert!(ControlRecord::decode(&[0, 0, 0, 1], &[0, 0, 0, 0, 0]).is_err());
        assert!(ControlRecord::decode(&[0, 0, 0, 1], &[0x80, 0, 0, 0, 0, 1]).is_err());
    }
}
