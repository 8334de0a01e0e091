//! Filter pushdown never changes an answer: for any data (several partitions and segments,
//! reopens between writes, out-of-order timestamps, compacted topics) and any filter on
//! `_partition`, `_offset` and `_timestamp`, a query returns exactly the rows a full scan returns
//! once the filter is applied outside SQL. (Issue 18: a `_timestamp` lower bound skipped the first
//! batch of a segment written after a reopen.)

use std::path::Path;

use datafusion::arrow::array::{Array, Int32Array, Int64Array};
use datafusion::arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use weir_log::format::{BatchBuilder, BatchOptions};
use weir_log::{Acks, Log, LogConfig, TopicConfig};
use weir_sql::WeirSession;

#[derive(Debug, Clone)]
struct Write {
    partition: i32,
    timestamps: Vec<i64>,
    reopen_before: bool,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl Cmp {
    fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Lt => "<",
            Cmp::LtEq => "<=",
            Cmp::Gt => ">",
            Cmp::GtEq => ">=",
        }
    }

    fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Lt => a < b,
            Cmp::LtEq => a <= b,
            Cmp::Gt => a > b,
            Cmp::GtEq => a >= b,
        }
    }
}

/// One conjunct of a WHERE clause.
#[derive(Debug, Clone)]
enum Filter {
    Partition(Cmp, i64),
    PartitionIn(Vec<i64>),
    Offset(Cmp, i64),
    OffsetBetween(i64, i64),
    Timestamp(Cmp, i64),
    TimestampBetween(i64, i64),
}

/// A row as the reference sees it: (partition, offset, timestamp ms).
type Row = (i64, i64, i64);

impl Filter {
    fn sql(&self) -> String {
        let ts = |v: i64| format!("to_timestamp_millis({v})");
        match self {
            Filter::Partition(c, v) => format!("_partition {} {v}", c.sql()),
            Filter::PartitionIn(vs) => format!(
                "_partition IN ({})",
                vs.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
            ),
            Filter::Offset(c, v) => format!("_offset {} {v}", c.sql()),
            Filter::OffsetBetween(a, b) => format!("_offset BETWEEN {a} AND {b}"),
            Filter::Timestamp(c, v) => format!("_timestamp {} {}", c.sql(), ts(*v)),
            Filter::TimestampBetween(a, b) => {
                format!("_timestamp BETWEEN {} AND {}", ts(*a), ts(*b))
            }
        }
    }

    fn holds(&self, (p, o, t): Row) -> bool {
        match self {
            Filter::Partition(c, v) => c.holds(p, *v),
            Filter::PartitionIn(vs) => vs.contains(&p),
            Filter::Offset(c, v) => c.holds(o, *v),
            Filter::OffsetBetween(a, b) => *a <= o && o <= *b,
            Filter::Timestamp(c, v) => c.holds(t, *v),
            Filter::TimestampBetween(a, b) => *a <= t && t <= *b,
        }
    }
}

fn cmp() -> impl Strategy<Value = Cmp> {
    prop_oneof![
        Just(Cmp::Eq),
        Just(Cmp::Lt),
        Just(Cmp::LtEq),
        Just(Cmp::Gt),
        Just(Cmp::GtEq)
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        1 => (cmp(), -1i64..4).prop_map(|(c, v)| Filter::Partition(c, v)),
        1 => prop::collection::vec(0i64..4, 1..3).prop_map(Filter::PartitionIn),
        1 => (cmp(), -2i64..120).prop_map(|(c, v)| Filter::Offset(c, v)),
        1 => (0i64..120, 0i64..120).prop_map(|(a, b)| Filter::OffsetBetween(a, b)),
        3 => (cmp(), -5i64..2_100).prop_map(|(c, v)| Filter::Timestamp(c, v)),
        1 => (-5i64..2_100, -5i64..2_100).prop_map(|(a, b)| Filter::TimestampBetween(a, b)),
    ]
}

fn writes() -> impl Strategy<Value = Vec<Write>> {
    prop::collection::vec(
        (
            0i32..3,
            prop::collection::vec(0i64..2_000, 1..6),
            prop::bool::weighted(0.3),
        )
            .prop_map(|(partition, timestamps, reopen_before)| Write {
                partition,
                timestamps,
                reopen_before,
            }),
        1..40,
    )
}

fn write_topic(dir: &Path, writes: &[Write], compacted: bool) {
    let log_config = LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir, log_config.clone()).unwrap();
    log.create_topic(
        "t",
        TopicConfig {
            partitions: 3,
            compacted,
            retention_ms: None,
            segment_bytes_max: 4096,
            batch_bytes_max: 4096,
            record_bytes_max: 4096,
            schema: Some("v BIGINT".into()),
            format: weir_log::ValueFormat::Json,
            ..TopicConfig::default()
        },
    )
    .unwrap();
    for (i, w) in writes.iter().enumerate() {
        if w.reopen_before {
            log.close().unwrap();
            log = Log::open(dir, log_config.clone()).unwrap();
        }
        let mut b = BatchBuilder::new(BatchOptions::default());
        for (j, ts) in w.timestamps.iter().enumerate() {
            let key = format!("k{}", (i + j) % 4);
            let value = format!("{{\"v\":{}}}", i * 10 + j);
            b.push(*ts, Some(key.as_bytes()), Some(value.as_bytes()), &[]);
        }
        log.append("t", w.partition, b.finish(0), Acks::Leader)
            .unwrap();
    }
    log.close().unwrap();
}

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let p = b.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        let o = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let t = b.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            out.push((i64::from(p.value(i)), o.value(i), t.value(i)));
        }
    }
    out.sort_unstable();
    out
}

const COLUMNS: &str = "_partition, _offset, CAST(_timestamp AS BIGINT)";

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_filtered_query_equals_the_full_scan_filtered(
        writes in writes(),
        filters in prop::collection::vec(filter(), 1..4),
        compacted in prop::bool::weighted(0.25),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_topic(dir.path(), &writes, compacted);
        let log = Log::open_read_only(dir.path()).unwrap();
        let session = WeirSession::new(&log).unwrap();
        let all = rows(&session.sql(&format!("SELECT {COLUMNS} FROM t")).unwrap());
        let expected: Vec<Row> = all
            .iter()
            .copied()
            .filter(|r| filters.iter().all(|f| f.holds(*r)))
            .collect();
        let clause: Vec<String> = filters.iter().map(Filter::sql).collect();
        let query = format!("SELECT {COLUMNS} FROM t WHERE {}", clause.join(" AND "));
        let got = rows(&session.sql(&query).unwrap());
        prop_assert_eq!(got, expected, "{}", query);
    }
}
