//! The codecs of the attributes' low bits: none, gzip, snappy, lz4 (frame format), zstd.

use crate::Result;

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

impl Compression {
    /// The codec for attribute bits 0-2.
    pub fn from_attributes(attributes: i16) -> Result<Compression> {
        let _ = attributes;
        unimplemented!()
    }

    /// The attribute bits of this codec.
    pub fn attribute_bits(self) -> i16 {
        unimplemented!()
    }
}

impl std::str::FromStr for Compression {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        let _ = s;
        unimplemented!()
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let _ = f;
        unimplemented!()
    }
}

/// Compresses `input` with `codec` (never called for `None`).
pub(crate) fn compress(codec: Compression, input: &[u8]) -> Vec<u8> {
    let _ = (codec, input);
    unimplemented!()
}

/// Decompresses `input`, failing rather than producing more than `output_bytes_max` bytes.
pub(crate) fn decompress(codec: Compression, input: &[u8], output_bytes_max: usize) -> Result<Vec<u8>> {
    let _ = (codec, input, output_bytes_max);
    unimplemented!()
}
