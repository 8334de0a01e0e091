//! The log start offset a DeleteRecords request sets, checkpointed in the partition directory.
//!
//! Retention and compaction move a partition's start by deleting whole segments, so the first
//! segment's base offset says where they left it. DeleteRecords moves it to any offset, inside a
//! segment that stays: that offset lives in `log-start-offset`, written atomically (temporary
//! file, fsync, rename, directory fsync) with a CRC-32C, so that a crash leaves the old offset or
//! the new one, never something in between. The start is the larger of the two.

use std::path::Path;

use crate::storage::Storage;
use crate::{Error, Result, util};

/// The checkpoint's file name in the partition directory.
pub(crate) const LOG_START_FILE: &str = "log-start-offset";

/// The checkpointed start in `dir`, or 0 without a checkpoint.
///
/// A checkpoint that fails its checksum is [`Error::Corrupt`], not a recovery: falling back to
/// the first segment's base would bring deleted records back to readers (DeleteRecords is how
/// a repartition topic is purged, and how data a user asked to delete goes). The message says
/// how to accept that loss by hand.
pub(crate) fn read(storage: &dyn Storage, dir: &Path) -> Result<i64> {
    let path = dir.join(LOG_START_FILE);
    let Some(payload) =
        util::read_checksummed(storage, &path).map_err(|e| with_remedy(e, &path))?
    else {
        return Ok(0);
    };
    let offset = <[u8; 8]>::try_from(payload.as_slice())
        .map(i64::from_be_bytes)
        .map_err(|_| {
            with_remedy(
                Error::Corrupt {
                    segment: path.clone(),
                    position: 0,
                    offset: -1,
                    reason: format!("{} bytes of offset, expected 8", payload.len()),
                },
                &path,
            )
        })?;
    if offset < 0 {
        return Err(with_remedy(
            Error::Corrupt {
                segment: path.clone(),
                position: 4,
                offset,
                reason: "a negative log start offset".into(),
            },
            &path,
        ));
    }
    Ok(offset)
}

/// Makes `offset` the checkpointed start in `dir`, durably.
pub(crate) fn write(storage: &dyn Storage, dir: &Path, offset: i64) -> Result<()> {
    util::write_checksummed(storage, &dir.join(LOG_START_FILE), &offset.to_be_bytes())
}

fn with_remedy(e: Error, path: &Path) -> Error {
    match e {
        Error::Corrupt {
            segment,
            position,
            offset,
            reason,
        } => Error::Corrupt {
            segment,
            position,
            offset,
            reason: format!(
                "the log start offset checkpoint is damaged ({reason}); removing {} makes the \
                 partition start at its first segment again, which may bring back records \
                 deleted by DeleteRecords",
                path.display()
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealStorage;

    #[test]
    fn round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(&RealStorage, dir.path()).unwrap(), 0);
        write(&RealStorage, dir.path(), 1234).unwrap();
        assert_eq!(read(&RealStorage, dir.path()).unwrap(), 1234);
        let path = dir.path().join(LOG_START_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&RealStorage, dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { .. }) && err.to_string().contains("checksum"),
            "{err}"
        );
        std::fs::write(&path, [1, 2]).unwrap();
        assert!(matches!(
            read(&RealStorage, dir.path()),
            Err(Error::Corrupt { .. })
        ));
    }
}
