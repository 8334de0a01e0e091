//! Append / read / truncate / reopen / recover against a plain in-memory model of the log.

use proptest::prelude::*;

use weir_log::{Acks, Log, LogConfig};

use crate::common::{batch_of, read_all, small_segments};

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Vec<u8>>),
    /// Truncate at the start of the n-th batch (mod the number of batches).
    Truncate(usize),
    /// Reopen after a clean close, or after a crash (no close: the clean marker is never written).
    Reopen {
        clean: bool,
    },
    /// Read from the n-th offset (mod the end).
    Read(usize),
    /// Seek by timestamp: batch i has timestamp 1000 + 10·i.
    SeekTime(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..12).prop_map(Op::Append),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        2 => any::<usize>().prop_map(Op::Read),
        1 => (900i64..2000).prop_map(Op::SeekTime),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("m", small_segments(1, 4096)).unwrap();
        // The model: every record's value, by offset; batch starts with their timestamps.
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut batches: Vec<(i64, i64)> = Vec::new();
        let mut next_ts = 1000;
        for op in ops {
            match op {
                Op::Append(vs) => {
                    let info = log.append("m", 0, batch_of(&vs, next_ts), Acks::Leader).unwrap();
                    prop_assert_eq!(info.base_offset, values.len() as i64);
                    batches.push((info.base_offset, next_ts));
                    next_ts += 10;
                    values.extend(vs);
                }
                Op::Truncate(n) if !batches.is_empty() => {
                    let (at, _) = batches[n % batches.len()];
                    let end = log.truncate_to("m", 0, at).unwrap();
                    prop_assert_eq!(end, at);
                    values.truncate(at as usize);
                    batches.retain(|b| b.0 < at);
                }
                Op::Truncate(_) => {}
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    }
                    drop(log);
                    log = Log::open(dir.path(), LogConfig::default()).unwrap();
                    prop_assert!(log.recovery_report().is_empty(), "{:?}", log.recovery_report());
                }
                Op::Read(n) => {
                    let from = if values.is_empty() { 0 } else { (n % values.len()) as i64 };
                    let got = read_all(&log, "m", 0, from).unwrap();
                    prop_assert_eq!(got.len(), values.len() - from as usize);
                    for r in got {
                        prop_assert_eq!(r.value.as_deref(), Some(&values[r.offset as usize][..]));
                    }
                }
                Op::SeekTime(ts) => {
                    let want = batches.iter().find(|b| b.1 >= ts).map(|b| b.0);
                    prop_assert_eq!(log.offset_for_timestamp("m", 0, ts).unwrap(), want);
                }
            }
            prop_assert_eq!(log.offsets("m", 0).unwrap().1, values.len() as i64);
        }
    }
}
