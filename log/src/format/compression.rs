//! The codecs of the attributes' low bits: none, gzip, snappy, lz4 (frame format), zstd.

use std::io::{Read, Write};

use super::layout::attributes::COMPRESSION_MASK;
use crate::{Error, Result};

/// A batch's compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (readable and writable).
    Gzip,
    /// snappy: reads both raw blocks and the xerial framing Java clients write.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// zstd.
    Zstd,
}

const ALL: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Kafka's default zstd level (`compression.zstd.level`).
const ZSTD_LEVEL: i32 = 3;
/// zstd's own decoder default: windows above 128 MiB need an explicit opt-in on both sides.
const ZSTD_WINDOW_LOG_CEILING: u32 = 27;
/// 8 MiB: the window zstd's streaming compressor picks at level 19, the highest non-ultra level,
/// whatever the input size. Below this the output cap alone would reject such frames.
const ZSTD_WINDOW_LOG_FLOOR: u32 = 23;

/// The 8-byte magic that starts snappy-java's framing (`SnappyOutputStream`).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
/// Magic plus the two int32 versions.
const XERIAL_HEADER_BYTES: usize = 16;

/// Vec writers never fail; the codecs fail only on inputs over 4 GiB, twice the largest batch.
const INFALLIBLE: &str = "compressing an in-memory batch (< 2 GiB) into a Vec cannot fail";

impl Compression {
    /// The codec for attribute bits 0-2.
    pub fn from_attributes(attributes: i16) -> Result<Compression> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            bits => Err(Error::Malformed(format!(
                "unknown compression codec {bits} in attributes {attributes:#06x}"
            ))),
        }
    }

    /// The attribute bits of this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        ALL.into_iter()
            .find(|codec| codec.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::config(
                    "compression",
                    format!("unknown codec '{s}' (expected none, gzip, snappy, lz4 or zstd)"),
                )
            })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Compresses `input` with `codec` (never called for `None`).
pub(crate) fn compress(codec: Compression, input: &[u8]) -> Vec<u8> {
    match codec {
        Compression::None => input.to_vec(),
        Compression::Gzip => {
            // Level 6 is what Java's GZIPOutputStream (Kafka's default) uses.
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 2 + 64),
                flate2::Compression::default(),
            );
            encoder.write_all(input).expect(INFALLIBLE);
            encoder.finish().expect(INFALLIBLE)
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(input)
            .expect(INFALLIBLE),
        Compression::Lz4 => {
            // 64 KiB independent blocks, like Kafka's KafkaLZ4BlockOutputStream: older Java
            // readers reject dependent blocks.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(input.len() / 2 + 64),
            );
            encoder.write_all(input).expect(INFALLIBLE);
            encoder.finish().expect(INFALLIBLE)
        }
        Compression::Zstd => zstd::bulk::compress(input, ZSTD_LEVEL).expect(INFALLIBLE),
    }
}

/// Decompresses `input`, failing rather than producing more than `output_bytes_max` bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    output_bytes_max: usize,
) -> Result<Vec<u8>> {
    let guess_bytes = input.len().saturating_mul(4);
    match codec {
        Compression::None => {
            if input.len() > output_bytes_max {
                return Err(too_large(codec, output_bytes_max));
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            // Java's GZIPInputStream reads concatenated members, so accept them too.
            let reader = flate2::bufread::MultiGzDecoder::new(input);
            read_bounded(codec, reader, guess_bytes, output_bytes_max)
        }
        Compression::Snappy => snappy_decompress(input, output_bytes_max),
        Compression::Lz4 => {
            let reader = lz4_flex::frame::FrameDecoder::new(input);
            read_bounded(codec, reader, guess_bytes, output_bytes_max)
        }
        Compression::Zstd => {
            let mut reader = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| codec_error(codec, &e))?;
            // The decoder allocates the window the frame header declares: cap what a hostile
            // header can make it allocate.
            reader
                .window_log_max(zstd_window_log_max(output_bytes_max))
                .map_err(|e| codec_error(codec, &e))?;
            let content_bytes = zstd::zstd_safe::get_frame_content_size(input)
                .ok()
                .flatten()
                .and_then(|n| usize::try_from(n).ok());
            read_bounded(
                codec,
                reader,
                content_bytes.unwrap_or(guess_bytes),
                output_bytes_max,
            )
        }
    }
}

fn zstd_window_log_max(output_bytes_max: usize) -> u32 {
    let log2_ceil = usize::BITS - output_bytes_max.saturating_sub(1).leading_zeros();
    log2_ceil.clamp(ZSTD_WINDOW_LOG_FLOOR, ZSTD_WINDOW_LOG_CEILING)
}

fn read_bounded(
    codec: Compression,
    reader: impl Read,
    capacity_hint_bytes: usize,
    output_bytes_max: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity_hint_bytes.min(output_bytes_max));
    // One byte past the cap tells "exactly the cap" apart from "more".
    let limit = u64::try_from(output_bytes_max)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| codec_error(codec, &e))?;
    if out.len() > output_bytes_max {
        return Err(too_large(codec, output_bytes_max));
    }
    Ok(out)
}

fn snappy_decompress(input: &[u8], output_bytes_max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // Like snappy-java's SnappyInputStream: without the magic, the input is one raw block.
    if !input.starts_with(XERIAL_MAGIC) {
        snappy_block_into(input, &mut out, output_bytes_max)?;
        return Ok(out);
    }
    let mut rest = input.get(XERIAL_HEADER_BYTES..).ok_or_else(|| {
        Error::Malformed(format!(
            "snappy: xerial header truncated ({} of {XERIAL_HEADER_BYTES} bytes)",
            input.len()
        ))
    })?;
    while let Some((length, tail)) = rest.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        let (block, tail) = tail.split_at_checked(length).ok_or_else(|| {
            Error::Malformed(format!(
                "snappy: xerial chunk of {length} bytes but only {} remain",
                tail.len()
            ))
        })?;
        snappy_block_into(block, &mut out, output_bytes_max)?;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(Error::Malformed(format!(
            "snappy: {} trailing bytes after the last xerial chunk",
            rest.len()
        )));
    }
    Ok(out)
}

fn snappy_block_into(block: &[u8], out: &mut Vec<u8>, output_bytes_max: usize) -> Result<()> {
    let codec = Compression::Snappy;
    let block_bytes = snap::raw::decompress_len(block).map_err(|e| codec_error(codec, &e))?;
    let start = out.len();
    // Checked before allocating: the length is the block's own claim.
    if block_bytes > output_bytes_max.saturating_sub(start) {
        return Err(too_large(codec, output_bytes_max));
    }
    out.resize(start + block_bytes, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| codec_error(codec, &e))?;
    out.truncate(start + written);
    Ok(())
}

fn codec_error(codec: Compression, e: &dyn std::fmt::Display) -> Error {
    Error::Malformed(format!("{codec} decompression failed: {e}"))
}

fn too_large(codec: Compression, output_bytes_max: usize) -> Error {
    Error::Malformed(format!(
        "{codec} records block decompresses to more than {output_bytes_max} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Compression; 4] = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in CODECS {
            for len in [0, 1, 100, 70_000, 300_000] {
                let input = sample(len);
                let compressed = compress(codec, &input);
                let output = decompress(codec, &compressed, len).unwrap();
                assert_eq!(output, input, "{codec} with {len} bytes");
            }
        }
    }

    #[test]
    fn none_copies_and_respects_the_cap() {
        assert_eq!(decompress(Compression::None, b"abc", 3).unwrap(), b"abc");
        assert!(decompress(Compression::None, b"abc", 2).is_err());
    }

    #[test]
    fn decompression_bombs_stop_at_the_cap() {
        // 16 MiB of zeros compresses to a few KiB with every codec.
        let bomb_bytes = 16 << 20;
        let zeros = vec![0u8; bomb_bytes];
        for codec in CODECS {
            let compressed = compress(codec, &zeros);
            assert!(
                compressed.len() < bomb_bytes / 16,
                "{codec} compresses zeros"
            );
            let err = decompress(codec, &compressed, 1 << 20).unwrap_err();
            assert!(
                matches!(&err, Error::Malformed(m) if m.contains("more than 1048576 bytes")),
                "{codec}: {err}"
            );
            assert_eq!(
                decompress(codec, &compressed, bomb_bytes).unwrap().len(),
                bomb_bytes
            );
            assert!(
                decompress(codec, &compressed, bomb_bytes - 1).is_err(),
                "{codec}"
            );
        }
    }

    #[test]
    fn snappy_length_claim_is_checked_before_allocating() {
        // A raw block claiming 2^32 - 1 bytes of output followed by nothing.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = decompress(Compression::Snappy, &claim, 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::Malformed(m) if m.contains("more than")),
            "{err}"
        );
    }

    #[test]
    fn snappy_reads_xerial_framing() {
        // A records block as snappy-java frames it (from kafka-protocol's upstream test vector).
        let framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x0f\x0d\x30\x18\x00\x00\x00\x01\x0csdfdsf\x00";
        let expected = b"\x18\x00\x00\x00\x01\x0csdfdsf\x00";
        assert_eq!(
            decompress(Compression::Snappy, framed, 1024).unwrap(),
            expected
        );
        // The same bytes as a raw block.
        assert_eq!(
            decompress(Compression::Snappy, &framed[20..], 1024).unwrap(),
            expected
        );
        // Several chunks concatenate.
        let mut two = framed.to_vec();
        two.extend_from_slice(&framed[16..]);
        let mut expected_two = expected.to_vec();
        expected_two.extend_from_slice(expected);
        assert_eq!(
            decompress(Compression::Snappy, &two, 1024).unwrap(),
            expected_two
        );
        // The cap covers the sum of chunks.
        assert!(decompress(Compression::Snappy, &two, expected.len() * 2 - 1).is_err());
    }

    #[test]
    fn truncated_xerial_framing_is_an_error() {
        let framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x0f\x0d\x30\x18\x00\x00\x00\x01\x0csdfdsf\x00";
        for len in 8..framed.len() {
            // An empty stream after the header is valid: snappy-java writes one for no data.
            if len == XERIAL_HEADER_BYTES {
                assert_eq!(
                    decompress(Compression::Snappy, &framed[..len], 1024).unwrap(),
                    b""
                );
                continue;
            }
            assert!(
                decompress(Compression::Snappy, &framed[..len], 1024).is_err(),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut rng = fastrand::Rng::with_seed(7);
        for codec in CODECS {
            for len in [0, 1, 4, 16, 100, 1000] {
                for _ in 0..50 {
                    let garbage: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                    // Random bytes can in principle decode; what matters is no panic and no
                    // output beyond the cap.
                    if let Ok(out) = decompress(codec, &garbage, 4096) {
                        assert!(out.len() <= 4096);
                    }
                }
            }
            let valid = compress(codec, &sample(5000));
            // Not the last few bytes: lz4_flex, unlike Java, accepts a frame cut in its end mark.
            for cut in [1, valid.len() / 2, valid.len() - 5] {
                assert!(
                    decompress(codec, &valid[..cut], 10_000).is_err(),
                    "{codec} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn zstd_frames_declaring_huge_windows_are_refused_under_a_small_cap() {
        // A streamed frame without a content size: the decoder would allocate the declared
        // 128 MiB window before producing a byte.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).unwrap();
        encoder.window_log(27).unwrap();
        encoder.write_all(b"tiny").unwrap();
        let frame = encoder.finish().unwrap();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&frame).unwrap(),
            None
        );
        let err = decompress(Compression::Zstd, &frame, 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::Malformed(m) if m.contains("zstd")),
            "{err}"
        );
        assert_eq!(
            decompress(Compression::Zstd, &frame, 1 << 27).unwrap(),
            b"tiny"
        );
    }

    #[test]
    fn zstd_window_limit_follows_the_cap() {
        assert_eq!(zstd_window_log_max(0), ZSTD_WINDOW_LOG_FLOOR);
        assert_eq!(zstd_window_log_max(1 << 20), ZSTD_WINDOW_LOG_FLOOR);
        assert_eq!(zstd_window_log_max(1 << 25), 25);
        assert_eq!(zstd_window_log_max((1 << 25) + 1), 26);
        assert_eq!(zstd_window_log_max(usize::MAX), ZSTD_WINDOW_LOG_CEILING);
    }

    #[test]
    fn names_parse_case_insensitively_and_display_lowercase() {
        for (name, codec) in [
            ("none", Compression::None),
            ("GZIP", Compression::Gzip),
            ("Snappy", Compression::Snappy),
            ("lz4", Compression::Lz4),
            ("ZStd", Compression::Zstd),
        ] {
            assert_eq!(name.parse::<Compression>().unwrap(), codec);
            assert_eq!(codec.to_string(), name.to_ascii_lowercase());
        }
        let err = "brotli".parse::<Compression>().unwrap_err();
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "compression"),
            "{err}"
        );
        assert!(" gzip".parse::<Compression>().is_err());
    }

    #[test]
    fn attribute_bits_round_trip_and_unknown_codecs_fail() {
        for codec in ALL {
            let attributes = codec.attribute_bits() | 0x18;
            assert_eq!(Compression::from_attributes(attributes).unwrap(), codec);
        }
        assert_eq!(Compression::Zstd.attribute_bits(), 4);
        for bits in 5..=7 {
            assert!(Compression::from_attributes(bits).is_err());
        }
    }
}
