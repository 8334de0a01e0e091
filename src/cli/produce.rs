//! `weir produce`: one record per line of standard input.

use std::io::{self, BufRead, Read, Write};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use serde_json::Value;
use weir::log::{Error as LogError, Log, Producer, ProducerConfig, ProducerRecord};

use weir_client::{
    Acks, Admin, ClientConfig, ErrorCode, Producer as ClusterProducer,
    ProducerConfig as ClusterProducerConfig, ProducerRecord as ClusterRecord,
};

use super::stdout::Stdout;
use super::values::ValueCodec;
use super::{AcksArg, DataDir, topic_name};

#[derive(Debug, Args)]
#[command(
    after_help = "Input: one record per line, each line a JSON value; empty lines are skipped. \
A line longer than the topic's record_bytes_max (1 MiB by default) is an error.\n\n\
On a bad line (invalid JSON, an integer beyond 64 bits, a missing key field, a value that does \
not fit a binary topic's schema, an oversized record), the valid lines before it are produced and \
flushed (kept), nothing after it is read, `produced N records` tells how many were kept, and weir \
exits with status 1 and `error: line N: ...`.\n\n\
Values are stored as the line's JSON re-serialized compactly (json topics) or as a binary row of \
the topic's schema (binary topics)."
)]
pub struct ProduceArgs {
    /// Topic name
    #[arg(value_parser = topic_name)]
    topic: String,
    /// Take each record's key from this field of the JSON object: a string's text, any other
    /// value's JSON text (so {"ad_id": 42} gets key 42); a line without the field is an error.
    /// Without it, records are keyless and spread over partitions in batches
    #[arg(long, value_name = "FIELD")]
    key_field: Option<String>,
    /// When a record counts as written
    #[arg(long, value_enum, default_value_t = AcksArg::Leader)]
    acks: AcksArg,
}

pub fn run(dir: &DataDir, args: ProduceArgs) -> Result<()> {
    report(dir.with_writer(false, Some(&args.topic), |log| produce(log, &args))?)
}

/// `produce` as a client of `cluster`: the same input, checks and output.
pub fn run_cluster(cluster: &ClientConfig, args: ProduceArgs) -> Result<()> {
    let admin = Admin::connect(cluster)?;
    let config = weir_cluster::configs::fetch_topic_config(&admin, &args.topic)?;
    drop(admin);
    let format = ValueCodec::of_topic(&args.topic, &config)?;
    let acks: Acks = args.acks.into();
    let producer = ClusterProducer::new(
        cluster,
        &ClusterProducerConfig {
            acks,
            // Like the embedded producer, not idempotent: a record retried after a lost
            // answer may be stored twice.
            idempotence: false,
            ..ClusterProducerConfig::default()
        },
    )?;
    let mut sent = 0u64;
    let topic = args.topic.as_str();
    let error = send_lines(
        io::stdin().lock(),
        args.key_field.as_deref(),
        &format,
        config.record_bytes_max,
        &mut sent,
        |line_no, key, value| {
            let mut record = ClusterRecord::new(topic, value);
            if let Some(k) = key {
                record = record.key(k);
            }
            producer.send(record).map_err(|e| {
                if e.code() == Some(ErrorCode::MessageSizeTooLarge) {
                    anyhow!("line {line_no}: {e}")
                } else {
                    anyhow::Error::new(e).context(format!("sending line {line_no}"))
                }
            })
        },
    )
    .err();
    // Whatever went wrong, the lines before it are kept.
    producer.flush().context("flushing the producer")?;
    report(Outcome {
        records: sent,
        error,
    })
}

/// Prints how many records were kept, then fails with the bad line's error, if any.
fn report(produced: Outcome) -> Result<()> {
    match produced {
        Outcome {
            records,
            error: None,
        } => {
            writeln!(Stdout::lock(), "produced {records} {}", plural(records))?;
            Ok(())
        }
        Outcome {
            records,
            error: Some(e),
        } => {
            // What was kept goes to stdout even when a line failed, before the error itself;
            // a closed stdout must not hide that error.
            let _ = writeln!(Stdout::lock(), "produced {records} {}", plural(records));
            Err(e)
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "record" } else { "records" }
}

struct Outcome {
    /// Records produced and flushed.
    records: u64,
    /// The line that stopped us, if any.
    error: Option<anyhow::Error>,
}

fn produce(log: &Log, args: &ProduceArgs) -> Result<Outcome> {
    let config = log.topic_config(&args.topic)?;
    let format = ValueCodec::of_topic(&args.topic, &config)?;
    let producer = Producer::new(
        log,
        ProducerConfig {
            acks: args.acks.into(),
            ..ProducerConfig::default()
        },
    )?;
    let stdin = io::stdin().lock();
    let mut sent = 0u64;
    let topic = args.topic.as_str();
    let error = send_lines(
        stdin,
        args.key_field.as_deref(),
        &format,
        config.record_bytes_max,
        &mut sent,
        |line_no, key, value| {
            let mut record = ProducerRecord::new(topic, value);
            if let Some(k) = key {
                record = record.key(k);
            }
            producer.send(record).map_err(|e| match e {
                LogError::RecordTooLarge { .. } | LogError::Config { .. } => {
                    anyhow!("line {line_no}: {e}")
                }
                // Not about this line: an earlier batch failed.
                e => anyhow::Error::new(e).context(format!("sending line {line_no}")),
            })
        },
    )
    .err();
    // Whatever went wrong, the lines before it are kept.
    producer.flush().context("flushing the producer")?;
    producer.close().context("closing the producer")?;
    Ok(Outcome {
        records: sent,
        error,
    })
}

/// Reads, converts and sends (through `send(line number, key, value)`) every line; stops at
/// the first bad one.
fn send_lines(
    mut input: impl BufRead,
    key_field: Option<&str>,
    format: &ValueCodec,
    line_bytes_max: usize,
    sent: &mut u64,
    mut send: impl FnMut(u64, Option<&[u8]>, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        let Some(line) = read_line_bounded(&mut input, &mut buf, line_bytes_max)
            .with_context(|| format!("line {line_no}: reading standard input"))?
        else {
            return Ok(());
        };
        let Line::Complete(line) = line else {
            return Err(anyhow!(
                "line {line_no}: longer than the topic's record_bytes_max ({line_bytes_max} bytes)"
            ));
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| anyhow!("line {line_no}: invalid JSON: {e}"))?;
        // serde_json reads an integer beyond 64 bits as the nearest f64, so such an integer
        // has become a float by now: only lines with a float can hold one.
        if has_float(&value)
            && let Some(n) = integer_beyond_64_bits(line)
        {
            return Err(anyhow!(
                "line {line_no}: integer {n} does not fit in 64 bits (JSON integers are kept as \
                 i64 or u64, never rounded; quote it as a string to keep every digit)"
            ));
        }
        let key = match key_field {
            None => None,
            Some(field) => Some(match value.get(field) {
                Some(Value::String(s)) => s.clone().into_bytes(),
                Some(other) => other.to_string().into_bytes(),
                None => return Err(anyhow!("line {line_no}: no field '{field}' for the key")),
            }),
        };
        let bytes = format
            .encode(&value)
            .map_err(|e| anyhow!("line {line_no}: {e}"))?;
        send(line_no, key.as_deref(), &bytes)?;
        *sent += 1;
    }
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(fields) => fields.values().any(has_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// The first integer literal (no fraction, no exponent) in `json`, a valid JSON text, that fits
/// neither i64 nor u64.
fn integer_beyond_64_bits(json: &[u8]) -> Option<&str> {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                // Skip the string; the text is valid JSON, so it ends.
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len()
                    && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = std::str::from_utf8(&json[start..i]).expect("number tokens are ASCII");
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                    return Some(token);
                }
            }
            _ => i += 1,
        }
    }
    None
}

enum Line<'a> {
    /// The line without its `\n` (or `\r\n`).
    Complete(&'a [u8]),
    /// Longer than the limit; the rest was not read.
    TooLong,
}

/// Reads one line of at most `max` bytes (not counting the line end) without ever buffering more
/// than `max + 2` bytes; `None` at the end of input.
fn read_line_bounded<'b>(
    input: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Line<'b>>> {
    buf.clear();
    let limit = max as u64 + 2;
    let n = Read::take(&mut *input, limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    let ended = buf.last() == Some(&b'\n');
    if ended {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if n as u64 == limit {
        return Ok(Some(Line::TooLong));
    }
    if buf.len() > max {
        return Ok(Some(Line::TooLong));
    }
    Ok(Some(Line::Complete(buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut r = input;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(l) = read_line_bounded(&mut r, &mut buf, max).unwrap() {
            match l {
                Line::Complete(b) => out.push(Some(b.to_vec())),
                Line::TooLong => {
                    out.push(None);
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn finds_integers_beyond_64_bits_outside_strings() {
        fn find(s: &str) -> Option<&str> {
            integer_beyond_64_bits(s.as_bytes())
        }
        assert_eq!(
            find("123456789012345678901234567890"),
            Some("123456789012345678901234567890")
        );
        assert_eq!(
            find(r#"{"a": [1, -9223372036854775809], "b": 2}"#),
            Some("-9223372036854775809")
        );
        assert_eq!(
            find(r#"{"u": 18446744073709551615, "i": -9223372036854775808}"#),
            None
        );
        assert_eq!(
            find(r#"{"f": 1.5e300, "g": 123456789012345678901234567890.0}"#),
            None
        );
        assert_eq!(
            find(r#"{"s": "123456789012345678901234567890 \" 99999999999999999999"}"#),
            None
        );
        assert_eq!(
            find(r#"["\\", 99999999999999999999]"#),
            Some("99999999999999999999")
        );
        let v: Value = serde_json::from_str(r#"{"a": [1, {"b": 2.5}]}"#).unwrap();
        assert!(has_float(&v));
        assert!(!has_float(
            &serde_json::json!({"a": [1, "x", null, u64::MAX]})
        ));
    }

    #[test]
    fn reads_lines_within_the_bound() {
        assert_eq!(
            lines(b"ab\r\n\ncde\nfgh", 3),
            [
                Some(b"ab".to_vec()),
                Some(vec![]),
                Some(b"cde".to_vec()),
                Some(b"fgh".to_vec())
            ]
        );
        assert_eq!(lines(b"abc\r\n", 3), [Some(b"abc".to_vec())]);
        assert_eq!(lines(b"ab\nabcd\nx\n", 3), [Some(b"ab".to_vec()), None]);
        assert_eq!(lines(b"abcd", 3), [None]);
        assert_eq!(lines(b"abcd\r\n", 3), [None]);
        assert_eq!(lines(b"", 3), Vec::<Option<Vec<u8>>>::new());
    }
}
