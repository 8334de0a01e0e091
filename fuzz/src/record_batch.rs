//! The RecordBatch v2 decoder: header framing, decompression (with its bomb guard) and both
//! record iterators, over bytes laid out as a segment or a fetch response holds them (batches
//! back to back, the last one possibly cut short).
//!
//! Oracle, beyond "no panic, no hang, no huge allocation": the owned iterator and the borrowed
//! one ([`RecordIter::next_ref`]) decode the same records and fail at the same record.

use bytes::Bytes;
use weir_log::format::{Batch, BatchHeader, RecordIter};

/// The decompressed size a batch may reach (the log's default bound is larger; a small one
/// keeps runs fast and still exercises the guard).
const DECOMPRESSED_BYTES_MAX: usize = 1 << 20;

/// Decodes every batch of `data`.
pub fn run(data: &[u8]) {
    let all = Bytes::copy_from_slice(data);
    let mut at = 0;
    while at < all.len() {
        let Ok(header) = BatchHeader::parse(&all[at..]) else {
            return;
        };
        let end = at.saturating_add(header.total_bytes());
        if end > all.len() || end <= at {
            return;
        }
        let batch = Batch::parse(all.slice(at..end)).expect("a framed batch parses again");
        assert_eq!(batch.header(), &header, "the header parses the same twice");
        let _ = batch.verify_crc();
        let _ = header.compression();
        compare_iterators(&batch);
        at = end;
    }
}

fn compare_iterators(batch: &Batch) {
    let (owned, borrowed) = match (
        batch.records(DECOMPRESSED_BYTES_MAX),
        batch.records(DECOMPRESSED_BYTES_MAX),
    ) {
        (Ok(o), Ok(b)) => (o, b),
        (Err(_), Err(_)) => return,
        _ => panic!("records() fails for one iterator and not the other"),
    };
    walk(owned, borrowed, batch.header().records_count);
}

fn walk(mut owned: RecordIter, mut borrowed: RecordIter, records_count: i32) {
    let mut n = 0i64;
    loop {
        let a = owned.next();
        let b = borrowed.next_ref();
        match (a, b) {
            (None, None) => break,
            (Some(Ok(a)), Some(Ok(b))) => {
                assert_eq!(a.offset, b.offset, "record {n}: offsets");
                assert_eq!(a.timestamp, b.timestamp, "record {n}: timestamps");
                assert_eq!(a.key.as_deref(), b.key, "record {n}: keys");
                assert_eq!(a.value.as_deref(), b.value, "record {n}: values");
                n += 1;
            }
            (Some(Err(_)), Some(Err(_))) => {
                // An error ends both iterations.
                assert!(owned.next().is_none() && borrowed.next_ref().is_none());
                return;
            }
            (a, b) => panic!(
                "record {n}: the owned iterator gave {} and the borrowed one {}",
                outcome(a.as_ref().map(|r| r.as_ref().map(|_| ()))),
                outcome(b.as_ref().map(|r| r.as_ref().map(|_| ())))
            ),
        }
        assert!(
            n <= i64::from(records_count),
            "more records than the batch counts"
        );
    }
    assert_eq!(
        n,
        i64::from(records_count),
        "a clean end means every counted record"
    );
}

fn outcome<E>(r: Option<Result<(), E>>) -> &'static str {
    match r {
        None => "the end",
        Some(Ok(())) => "a record",
        Some(Err(_)) => "an error",
    }
}
