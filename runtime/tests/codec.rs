//! Value codecs: round trips, byte-for-byte agreement with the schema module's row format, and
//! errors (never panics) on values and bytes that do not fit.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use weir_runtime::schema::Schema;
use weir_runtime::{Binary, Codec, CodecError, Json};

/// The example of the brief: one column of each common type, one of them nullable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    a: i64,
    b: Option<String>,
    c: bool,
    d: f64,
    e: i32,
}

const ROW_SCHEMA: &str = "a BIGINT, b VARCHAR, c BOOLEAN, d DOUBLE, e INT";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Color {
    Red,
    Green,
    Blue,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct UserId(i64);

/// Eleven columns (a two-byte bitmap) covering every mapped Rust type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Wide {
    id: u64,
    ts: i64,
    n: i16,
    small: u8,
    ratio: f32,
    score: Option<f64>,
    name: String,
    initial: char,
    color: Color,
    maybe: Option<u32>,
    flag: Option<bool>,
    user: UserId,
    count: usize,
    delta: isize,
    tint: Option<Color>,
}

const WIDE_SCHEMA: &str = "id BIGINT, ts TIMESTAMP, n INT, small INT, ratio FLOAT, score DOUBLE, \
     name VARCHAR, initial VARCHAR, color VARCHAR, maybe INT, flag BOOLEAN, user BIGINT, \
     count BIGINT, delta BIGINT, tint VARCHAR";

/// Finite floats whose decimal text serde_json parses back exactly (it does not promise that for
/// every f64 without its `float_roundtrip` feature).
fn json_f64() -> impl Strategy<Value = f64> {
    any::<i32>().prop_map(|n| f64::from(n) / 4.0)
}

fn json_f32() -> impl Strategy<Value = f32> {
    any::<i16>().prop_map(|n| f32::from(n) / 4.0)
}

fn any_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan())
}

fn any_f32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("NaN != NaN", |f| !f.is_nan())
}

fn color() -> impl Strategy<Value = Color> {
    prop_oneof![Just(Color::Red), Just(Color::Green), Just(Color::Blue)]
}

fn row(d: impl Strategy<Value = f64>) -> impl Strategy<Value = Row> {
    (
        any::<i64>(),
        proptest::option::of(".{0,12}"),
        any::<bool>(),
        d,
        any::<i32>(),
    )
        .prop_map(|(a, b, c, d, e)| Row { a, b, c, d, e })
}

fn wide(
    f64s: impl Strategy<Value = f64>,
    f32s: impl Strategy<Value = f32>,
) -> impl Strategy<Value = Wide> {
    (
        (
            0..=i64::MAX as u64,
            any::<i64>(),
            any::<i16>(),
            any::<u8>(),
            f32s,
            proptest::option::of(f64s),
            ".{0,20}",
            any::<char>(),
        ),
        (
            color(),
            proptest::option::of(0..=i32::MAX as u32),
            proptest::option::of(any::<bool>()),
            any::<i64>(),
            0..=i64::MAX as usize,
            any::<isize>(),
            proptest::option::of(color()),
        ),
    )
        .prop_map(
            |(
                (id, ts, n, small, ratio, score, name, initial),
                (color, maybe, flag, user, count, delta, tint),
            )| Wide {
                id,
                ts,
                n,
                small,
                ratio,
                score,
                name,
                initial,
                color,
                maybe,
                flag,
                user: UserId(user),
                count,
                delta,
                tint,
            },
        )
}

fn binary<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    Binary.encode(value, &mut out).expect("representable value");
    out
}

/// Binary decoding with the target type named (`Codec<T>` puts `T` on the trait, not the method).
fn de<T: Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Binary.decode(bytes)
}

fn json_de<T: Serialize + serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Json.decode(bytes)
}

fn schema(text: &str) -> Schema {
    text.parse().expect("valid schema")
}

/// The error `result` holds, which must be a decode error naming `field`; returns its text.
fn decode_error_in<T: std::fmt::Debug>(result: Result<T, CodecError>, field: &str) -> String {
    let err = result.expect_err("an error");
    assert!(matches!(err, CodecError::Decode { .. }), "{err:?}");
    assert_eq!(err.field(), Some(field), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("field '{field}'")), "{text}");
    text
}

fn encode_error_in<T: Serialize + serde::de::DeserializeOwned>(value: &T, field: &str) -> String {
    let mut out = b"kept".to_vec();
    let err = Binary.encode(value, &mut out).expect_err("an error");
    assert_eq!(out, b"kept", "a failed encode leaves the buffer as it was");
    assert!(matches!(err, CodecError::Encode { .. }), "{err:?}");
    assert_eq!(err.field(), Some(field), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("field '{field}'")), "{text}");
    text
}

proptest! {
    #[test]
    fn binary_round_trips(r in row(any_f64()), w in wide(any_f64(), any_f32())) {
        prop_assert_eq!(de::<Row>(&binary(&r))?, r);
        prop_assert_eq!(de::<Wide>(&binary(&w))?, w);
    }

    #[test]
    fn json_round_trips(r in row(json_f64()), w in wide(json_f64(), json_f32())) {
        let mut text = Vec::new();
        Json.encode(&r, &mut text)?;
        prop_assert_eq!(json_de::<Row>(&text)?, r);
        text.clear();
        Json.encode(&w, &mut text)?;
        prop_assert_eq!(json_de::<Wide>(&text)?, w);
    }

    /// Binary rows are exactly the schema module's rows, both ways.
    #[test]
    fn binary_is_the_schema_row_format(
        r in row(any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite())),
        w in wide(
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            any::<f32>().prop_filter("finite", |f| f.is_finite()),
        ),
    ) {
        // The schema module writes the same bytes for the value as JSON ...
        let row_schema = schema(ROW_SCHEMA);
        let wide_schema = schema(WIDE_SCHEMA);
        let (row_bytes, wide_bytes) = (binary(&r), binary(&w));
        prop_assert_eq!(&row_schema.encode(&serde_json::to_value(&r)?)?, &row_bytes);
        prop_assert_eq!(&wide_schema.encode(&serde_json::to_value(&w)?)?, &wide_bytes);
        // ... and reads ours as the same JSON. (Not compared for `Wide`: the schema module reads
        // a FLOAT through its shortest decimal form, so its JSON differs from serde_json's
        // widening of the f32; the bytes do not.)
        prop_assert_eq!(serde_json::to_value(row_schema.decode(&row_bytes)?)?, serde_json::to_value(&r)?);
        let json = serde_json::to_value(wide_schema.decode(&wide_bytes)?)?;
        prop_assert_eq!(&wide_schema.encode(&json)?, &wide_bytes);
        prop_assert_eq!(de::<Wide>(&wide_schema.encode(&json)?)?, w);
    }

    #[test]
    fn encode_appends_to_the_buffer(prefix in proptest::collection::vec(any::<u8>(), 0..16), r in row(any_f64())) {
        let mut out = prefix.clone();
        Binary.encode(&r, &mut out)?;
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&out[prefix.len()..], &binary(&r)[..]);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let _ = de::<Row>(&bytes);
        let _ = de::<Wide>(&bytes);
        let _ = Binary.decode_borrowed::<Borrowed<'_>>(&bytes);
        let _ = de::<(i64, Option<String>, bool)>(&bytes);
    }

    #[test]
    fn decoding_mutated_rows_never_panics(
        w in wide(any_f64(), any_f32()),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let good = binary(&w);
        let mut flipped = good.clone();
        flipped[at.index(good.len())] = byte;
        let _ = de::<Wide>(&flipped);
        let _ = de::<Row>(&flipped);
        let mut inserted = good.clone();
        inserted.insert(at.index(good.len() + 1), byte);
        let _ = de::<Wide>(&inserted);
        // Every strict prefix is an error.
        let len = cut.index(good.len());
        prop_assert!(de::<Wide>(&good[..len]).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected(r in row(any_f64()), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = binary(&r);
        bytes.extend_from_slice(&extra);
        let err = de::<Row>(&bytes).expect_err("trailing bytes");
        prop_assert!(matches!(err, CodecError::Decode { field: None, .. }), "{:?}", err);
        prop_assert!(err.to_string().contains(&format!("{} trailing bytes", extra.len())), "{}", err);
    }

    /// A null bit on a field that is not an Option names that field.
    #[test]
    fn null_in_a_non_option_field_names_it(r in row(any_f64()), which in 0..4usize) {
        let (bit, field) = [(0, "a"), (2, "c"), (3, "d"), (4, "e")][which];
        let mut bytes = binary(&r);
        bytes[0] |= 1 << bit;
        let text = decode_error_in(de::<Row>(&bytes), field);
        prop_assert!(text.contains("not an Option"), "{}", text);
    }

    #[test]
    fn unsigned_overflow_is_an_error_not_a_wrap(big in (i64::MAX as u64 + 1)..=u64::MAX, mid in (i32::MAX as u32 + 1)..=u32::MAX) {
        #[derive(Serialize, Deserialize)]
        struct Big { ok: i64, x: u64 }
        #[derive(Serialize, Deserialize)]
        struct Mid { y: u32 }
        let text = encode_error_in(&Big { ok: 1, x: big }, "x");
        prop_assert!(text.contains("BIGINT"), "{}", text);
        let text = encode_error_in(&Mid { y: mid }, "y");
        prop_assert!(text.contains("INT"), "{}", text);
    }
}

/// A row that borrows its string from the bytes it was decoded from.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Borrowed<'a> {
    id: i64,
    #[serde(borrow)]
    name: &'a str,
    note: Option<&'a str>,
}

#[test]
fn decode_borrowed_points_into_the_row() {
    let row = binary(&Row {
        a: 7,
        b: Some("ann".into()),
        c: true,
        d: 0.5,
        e: 1,
    });
    #[derive(Deserialize)]
    struct Prefix<'a> {
        a: i64,
        b: &'a str,
        c: bool,
        d: f64,
        e: i32,
    }
    let p: Prefix<'_> = Binary.decode_borrowed(&row).unwrap();
    assert_eq!((p.a, p.b, p.c, p.d, p.e), (7, "ann", true, 0.5, 1));
    assert!(row.as_ptr_range().contains(&p.b.as_ptr()), "no copy");

    #[derive(Serialize, Deserialize)]
    struct Owned {
        id: i64,
        name: String,
        note: Option<String>,
    }
    let bytes = binary(&Owned {
        id: 1,
        name: "x".into(),
        note: None,
    });
    let b: Borrowed<'_> = Binary.decode_borrowed(&bytes).unwrap();
    assert_eq!(
        b,
        Borrowed {
            id: 1,
            name: "x",
            note: None
        }
    );
}

#[test]
fn layout_matches_the_row_format() {
    let r = Row {
        a: -2,
        b: None,
        c: true,
        d: 1.5,
        e: 300,
    };
    let mut want = vec![0b0000_0010];
    want.extend_from_slice(&(-2i64).to_le_bytes());
    want.push(1);
    want.extend_from_slice(&1.5f64.to_le_bytes());
    want.extend_from_slice(&300i32.to_le_bytes());
    assert_eq!(binary(&r), want);

    // Tuples and tuple structs are rows too; unit variants are their names.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair(Option<u8>, Color);
    let bytes = binary(&Pair(None, Color::Green));
    assert_eq!(bytes, [0b01, 5, 0, 0, 0, b'G', b'r', b'e', b'e', b'n']);
    assert_eq!(de::<Pair>(&bytes).unwrap(), Pair(None, Color::Green));
    let t = (1i64, Some("z".to_string()), false);
    assert_eq!(de::<(i64, Option<String>, bool)>(&binary(&t)).unwrap(), t);

    // Exactly eight columns: one bitmap byte; nine: two.
    let eight = (0i8, 0i8, 0i8, 0i8, 0i8, 0i8, 0i8, None::<i8>);
    assert_eq!(binary(&eight)[0], 0b1000_0000);
    assert_eq!(binary(&eight).len(), 1 + 7 * 4);
    let nine = (0i8, 0i8, 0i8, 0i8, 0i8, 0i8, 0i8, 0i8, None::<i8>);
    assert_eq!(binary(&nine)[..2], [0, 1]);
}

#[test]
fn codec_names() {
    assert_eq!(Codec::<Row>::name(&Json), "json");
    assert_eq!(Codec::<Row>::name(&Binary), "binary");
}

#[test]
fn unsupported_types_are_errors_naming_the_field() {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Inner {
        x: i64,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Circle(f64),
        Square { side: f64 },
        Pair(i32, i32),
        Dot,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Nested {
        ok: i64,
        inner: Inner,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Seq {
        ok: i64,
        list: Vec<u8>,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Map {
        map: BTreeMap<String, i64>,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Tuple {
        pair: (i64, i64),
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Data {
        shape: Shape,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Double {
        twice: Option<Option<i64>>,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Wide128 {
        huge: i128,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Any {
        anything: serde_json::Value,
    }
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Skips {
        #[serde(skip_serializing_if = "Option::is_none")]
        gone: Option<i64>,
    }

    assert!(
        encode_error_in(
            &Nested {
                ok: 1,
                inner: Inner { x: 1 }
            },
            "inner"
        )
        .contains("nested struct `Inner`")
    );
    assert!(
        encode_error_in(
            &Seq {
                ok: 1,
                list: vec![1]
            },
            "list"
        )
        .contains("sequence")
    );
    assert!(
        encode_error_in(
            &Map {
                map: BTreeMap::new()
            },
            "map"
        )
        .contains("map")
    );
    assert!(encode_error_in(&Tuple { pair: (1, 2) }, "pair").contains("tuple"));
    for shape in [
        Shape::Circle(1.0),
        Shape::Square { side: 1.0 },
        Shape::Pair(1, 2),
    ] {
        assert!(encode_error_in(&Data { shape }, "shape").contains("carries data"));
    }
    assert!(encode_error_in(&Double { twice: Some(None) }, "twice").contains("nested Option"));
    assert!(
        encode_error_in(
            &Double {
                twice: Some(Some(1))
            },
            "twice"
        )
        .contains("nested Option")
    );
    assert!(encode_error_in(&Wide128 { huge: 1 }, "huge").contains("128-bit"));
    assert!(encode_error_in(&Skips { gone: None }, "gone").contains("skip"));
    encode_error_in(
        &Any {
            anything: serde_json::json!({"a": 1}),
        },
        "anything",
    );

    // Decoding into them names the field too, whatever the bytes.
    let ok_then_junk = [&[0u8][..], &1i64.to_le_bytes(), &[1, 0, 0, 0, 9]].concat();
    decode_error_in(de::<Nested>(&ok_then_junk), "inner");
    decode_error_in(de::<Seq>(&ok_then_junk), "list");
    decode_error_in(de::<Map>(&[0]), "map");
    decode_error_in(de::<Tuple>(&[0]), "pair");
    decode_error_in(de::<Wide128>(&[0]), "huge");
    decode_error_in(de::<Any>(&[0]), "anything");
    let circle = [&[0u8][..], &6u32.to_le_bytes(), b"Circle"].concat();
    decode_error_in(de::<Data>(&circle), "shape");
    let dot = [&[0u8][..], &3u32.to_le_bytes(), b"Dot"].concat();
    assert_eq!(de::<Data>(&dot).unwrap(), Data { shape: Shape::Dot });
    let unknown = [&[0u8][..], &4u32.to_le_bytes(), b"Oval"].concat();
    decode_error_in(de::<Data>(&unknown), "shape");
}

#[test]
fn a_row_must_be_a_struct_or_tuple() {
    let mut out = Vec::new();
    for err in [
        Binary.encode(&5i64, &mut out).unwrap_err(),
        Binary.encode(&"x".to_string(), &mut out).unwrap_err(),
        Binary.encode(&vec![1i64], &mut out).unwrap_err(),
        Binary
            .encode(
                &Some(Row {
                    a: 1,
                    b: None,
                    c: true,
                    d: 0.0,
                    e: 0,
                }),
                &mut out,
            )
            .unwrap_err(),
        Binary.encode(&Color::Red, &mut out).unwrap_err(),
    ] {
        assert!(
            matches!(err, CodecError::Encode { field: None, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("a row must be a struct or a tuple"),
            "{err}"
        );
    }
    assert!(out.is_empty());
    for err in [
        de::<i64>(&[0; 8]).unwrap_err(),
        de::<Vec<i64>>(&[0; 8]).unwrap_err(),
        de::<Color>(&[0; 8]).unwrap_err(),
    ] {
        assert!(
            matches!(err, CodecError::Decode { field: None, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn decode_errors_say_what_and_where() {
    #[derive(Debug, Serialize, Deserialize)]
    struct Narrow {
        small: u8,
        count: u64,
    }
    let row =
        |small: i32, count: i64| [&[0u8][..], &small.to_le_bytes(), &count.to_le_bytes()].concat();
    assert!(de::<Narrow>(&row(255, 0)).is_ok());
    decode_error_in(de::<Narrow>(&row(256, 0)), "small");
    decode_error_in(de::<Narrow>(&row(-1, 0)), "small");
    decode_error_in(de::<Narrow>(&row(0, -1)), "count");

    let good = binary(&Row {
        a: 1,
        b: Some("héllo".into()),
        c: false,
        d: 2.0,
        e: 3,
    });
    // Truncation inside each field names it.
    let text = decode_error_in(de::<Row>(&good[..5]), "a");
    assert!(text.contains("ends inside the field"), "{text}");
    decode_error_in(de::<Row>(&good[..11]), "b");
    decode_error_in(de::<Row>(&good[..9 + 4 + 6]), "c");
    decode_error_in(de::<Row>(&good[..good.len() - 1]), "e");
    // An empty row is shorter than its bitmap.
    let err = de::<Row>(&[]).unwrap_err();
    assert!(err.to_string().contains("null bitmap"), "{err}");
    // A string length far past the end.
    let mut huge = good.clone();
    huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
    decode_error_in(de::<Row>(&huge), "b");
    // Invalid UTF-8, a boolean byte that is not 0 or 1, bitmap bits past the last field.
    let mut utf8 = good.clone();
    utf8[13] = 0xff;
    assert!(decode_error_in(de::<Row>(&utf8), "b").contains("UTF-8"));
    let mut boolean = good.clone();
    boolean[9 + 4 + 6] = 2;
    assert!(decode_error_in(de::<Row>(&boolean), "c").contains("boolean byte 2"));
    let mut bitmap = good;
    bitmap[0] = 0b1000_0000;
    let err = de::<Row>(&bitmap).unwrap_err();
    assert!(err.to_string().contains("past the last field"), "{err}");
    // Tuples name fields by index.
    decode_error_in(de::<(i64, bool)>(&[0b10, 0, 0, 0, 0, 0, 0, 0, 0]), "1");
}

#[test]
fn json_errors_wrap_serde_json() {
    let err = json_de::<Row>(b"{\"a\": 1").unwrap_err();
    assert!(matches!(err, CodecError::Json(_)), "{err:?}");
    assert!(err.to_string().starts_with("json: "), "{err}");
    let mut out = b"kept".to_vec();
    let mut bad = BTreeMap::new();
    bad.insert((1, 2), 3);
    assert!(Json.encode(&bad, &mut out).is_err());
    assert_eq!(out, b"kept");
}
