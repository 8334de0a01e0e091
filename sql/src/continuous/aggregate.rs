//! The aggregates of continuous queries, as one mergeable aggregate over a row's arguments.

use serde::{Deserialize, Serialize};
use weir_operators::aggregate::{Aggregate, Distinct, distinct};

use super::prepare::PreparedRow;
use super::row::Value;

/// A SQL aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggKind {
    /// `count(*)`.
    Count,
    /// `count(x)`: rows where x is not null.
    CountNonNull,
    /// `sum(x)`.
    Sum,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `avg(x)`.
    Avg,
    /// `approx_distinct(x)` (HyperLogLog).
    ApproxDistinct,
}

impl AggKind {
    /// The aggregate named `name` (case-insensitive), if supported.
    pub fn parse(name: &str) -> Option<AggKind> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggKind::Count,
            "sum" => AggKind::Sum,
            "min" => AggKind::Min,
            "max" => AggKind::Max,
            "avg" | "mean" => AggKind::Avg,
            "approx_distinct" => AggKind::ApproxDistinct,
            _ => return None,
        })
    }
}

/// One aggregate's running state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Cell {
    /// A count.
    Count(u64),
    /// A sum: integer part exact, float part if any float was seen.
    Sum {
        /// Integer sum.
        int: i128,
        /// Float sum.
        float: f64,
        /// A float was added.
        is_float: bool,
        /// Anything non-null was added.
        seen: bool,
    },
    /// A minimum or maximum.
    Extreme(Option<Value>),
    /// An average.
    Avg(f64, u64),
    /// HyperLogLog registers.
    Distinct(#[serde(with = "serde_bytes")] Vec<u8>),
}

type DistinctOfValue = Distinct<fn(&Value) -> Value>;

fn same(v: &Value) -> Value {
    v.clone()
}

/// The aggregates of one query, computed together.
#[derive(Clone)]
pub struct SqlAggregates {
    kinds: Vec<AggKind>,
    distinct: DistinctOfValue,
}

impl SqlAggregates {
    /// Aggregates of these kinds, in output order.
    pub fn new(kinds: Vec<AggKind>) -> SqlAggregates {
        SqlAggregates {
            kinds,
            distinct: distinct(same as fn(&Value) -> Value),
        }
    }
}

fn less(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Int(x), Value::Float(y)) => (*x as f64) < *y,
        (Value::Float(x), Value::Int(y)) => *x < (*y as f64),
        (Value::Str(x), Value::Str(y)) => x < y,
        (Value::Bool(x), Value::Bool(y)) => x < y,
        _ => false,
    }
}

impl Aggregate<PreparedRow> for SqlAggregates {
    type Acc = Vec<Cell>;
    type Out = Vec<Value>;

    fn create(&self) -> Vec<Cell> {
        self.kinds
            .iter()
            .map(|k| match k {
                AggKind::Count | AggKind::CountNonNull => Cell::Count(0),
                AggKind::Sum => Cell::Sum {
                    int: 0,
                    float: 0.0,
                    is_float: false,
                    seen: false,
                },
                AggKind::Min | AggKind::Max => Cell::Extreme(None),
                AggKind::Avg => Cell::Avg(0.0, 0),
                AggKind::ApproxDistinct => {
                    Cell::Distinct(Aggregate::<Value>::create(&self.distinct))
                }
            })
            .collect()
    }

    fn add(&self, acc: &mut Vec<Cell>, row: &PreparedRow) {
        for ((cell, kind), arg) in acc.iter_mut().zip(&self.kinds).zip(&row.args) {
            match (cell, kind) {
                (Cell::Count(n), AggKind::Count) => *n += 1,
                (Cell::Count(n), _) => *n += u64::from(*arg != Value::Null),
                (
                    Cell::Sum {
                        int,
                        float,
                        is_float,
                        seen,
                    },
                    _,
                ) => match arg {
                    Value::Int(i) => {
                        *int += i128::from(*i);
                        *seen = true;
                    }
                    Value::Float(f) => {
                        *float += f;
                        *is_float = true;
                        *seen = true;
                    }
                    _ => {}
                },
                (Cell::Extreme(current), kind) => {
                    if *arg != Value::Null {
                        let replace = match current {
                            None => true,
                            Some(c) if *kind == AggKind::Min => less(arg, c),
                            Some(c) => less(c, arg),
                        };
                        if replace {
                            *current = Some(arg.clone());
                        }
                    }
                }
                (Cell::Avg(sum, n), _) => match arg {
                    Value::Int(i) => {
                        *sum += *i as f64;
                        *n += 1;
                    }
                    Value::Float(f) => {
                        *sum += f;
                        *n += 1;
                    }
                    _ => {}
                },
                (Cell::Distinct(registers), _) => {
                    if *arg != Value::Null {
                        self.distinct.add(registers, arg);
                    }
                }
            }
        }
    }

    fn merge(&self, acc: &mut Vec<Cell>, other: Vec<Cell>) {
        for ((cell, kind), o) in acc.iter_mut().zip(&self.kinds).zip(other) {
            match (cell, o) {
                (Cell::Count(a), Cell::Count(b)) => *a += b,
                (
                    Cell::Sum {
                        int,
                        float,
                        is_float,
                        seen,
                    },
                    Cell::Sum {
                        int: i2,
                        float: f2,
                        is_float: if2,
                        seen: s2,
                    },
                ) => {
                    *int += i2;
                    *float += f2;
                    *is_float |= if2;
                    *seen |= s2;
                }
                (Cell::Extreme(a), Cell::Extreme(Some(b))) => {
                    let replace = match a {
                        None => true,
                        Some(c) if *kind == AggKind::Min => less(&b, c),
                        Some(c) => less(c, &b),
                    };
                    if replace {
                        *a = Some(b);
                    }
                }
                (Cell::Avg(s, n), Cell::Avg(s2, n2)) => {
                    *s += s2;
                    *n += n2;
                }
                (Cell::Distinct(a), Cell::Distinct(b)) => self.distinct.merge(a, b),
                _ => {}
            }
        }
    }

    fn finish(&self, acc: &Vec<Cell>) -> Vec<Value> {
        acc.iter()
            .map(|cell| match cell {
                Cell::Count(n) => Value::Int(*n as i64),
                Cell::Sum { seen: false, .. } => Value::Null,
                Cell::Sum {
                    int,
                    float,
                    is_float: true,
                    ..
                } => Value::Float(*int as f64 + float),
                Cell::Sum { int, .. } => {
                    Value::Int((*int).clamp(i64::MIN as i128, i64::MAX as i128) as i64)
                }
                Cell::Extreme(v) => v.clone().unwrap_or(Value::Null),
                Cell::Avg(_, 0) => Value::Null,
                Cell::Avg(s, n) => Value::Float(s / *n as f64),
                Cell::Distinct(r) => Value::Int(self.distinct.finish(r) as i64),
            })
            .collect()
    }
}
