//! Control records: the transaction markers COMMIT and ABORT.
//! Key: `version: int16 (0), type: int16 (0 abort, 1 commit)`; value: `version: int16 (0),
//! coordinatorEpoch: int32`.

use crate::Result;

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

impl ControlRecord {
    /// Encodes (key, value).
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        unimplemented!()
    }

    /// Decodes from a control batch's record key and value.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<ControlRecord> {
        let _ = (key, value);
        unimplemented!()
    }
}
