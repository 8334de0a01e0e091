//! Zig-zag varints as Kafka (and protobuf) write them.

/// Longest encoding of a varint.
const VARINT_BYTES_MAX: usize = 5;
/// Longest encoding of a varlong.
const VARLONG_BYTES_MAX: usize = 10;

#[inline]
fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unsigned_len(z: u64) -> usize {
    // `| 1` makes zero take one byte, like every other value below 0x80.
    let bits = 64 - (z | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
fn put_unsigned(buf: &mut Vec<u8>, z: u64) {
    // Most varints in a batch (small deltas and lengths, -1 for null) fit in one byte.
    if z < 0x80 {
        buf.push(z as u8);
    } else {
        put_unsigned_multi(buf, z);
    }
}

#[inline]
fn put_unsigned_multi(buf: &mut Vec<u8>, mut z: u64) {
    if z < 1 << 56 {
        // Assembled in a register and stored as one fixed-size copy (the truncate drops the
        // excess): bytes written one by one to a stack array and then copied stall on store
        // forwarding, and copying a varying-length prefix becomes a call to memcpy.
        let mut packed = 0u64;
        let mut shift = 0;
        while z >= 0x80 {
            packed |= ((z & 0x7f) | 0x80) << shift;
            z >>= 7;
            shift += 8;
        }
        packed |= z << shift;
        let len = buf.len();
        buf.extend_from_slice(&packed.to_le_bytes());
        buf.truncate(len + shift / 8 + 1);
    } else {
        while z >= 0x80 {
            buf.push((z as u8) | 0x80);
            z >>= 7;
        }
        buf.push(z as u8);
    }
}

/// Reads an unsigned LEB128 value of at most `bytes_max` bytes. Bits beyond 64 in the last byte
/// are dropped, as Kafka's `ByteUtils` does.
#[inline]
fn get_unsigned(buf: &[u8], pos: &mut usize, bytes_max: usize) -> Option<u64> {
    let mut p = *pos;
    let mut result = 0u64;
    for i in 0..bytes_max {
        let b = *buf.get(p)?;
        p += 1;
        result |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos = p;
            return Some(result);
        }
    }
    None
}

/// Bytes `v` takes as a zig-zag varint.
#[inline]
pub fn varint_len(v: i32) -> usize {
    unsigned_len(u64::from(zigzag32(v)))
}

/// Bytes `v` takes as a zig-zag varlong.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

/// Appends `v` as a zig-zag varint.
#[inline]
pub fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_unsigned(buf, u64::from(zigzag32(v)));
}

/// Appends `v` as a zig-zag varlong.
#[inline]
pub fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_unsigned(buf, zigzag64(v));
}

/// Reads a zig-zag varint from `buf[*pos..]`, advancing `pos`; `None` if truncated or over 5 bytes.
#[inline]
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Some(i32::from(b >> 1) ^ -i32::from(b & 1));
    }
    // Truncating to 32 bits matches Java, whose int shift drops the fifth byte's high bits.
    let z = get_unsigned(buf, pos, VARINT_BYTES_MAX)? as u32;
    Some(((z >> 1) as i32) ^ -((z & 1) as i32))
}

/// Reads a zig-zag varlong likewise; `None` if truncated or over 10 bytes.
#[inline]
pub fn get_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let z = get_unsigned(buf, pos, VARLONG_BYTES_MAX)?;
    Some(((z >> 1) as i64) ^ -((z & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: i32) -> Vec<u8> {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        buf
    }

    fn varlong(v: i64) -> Vec<u8> {
        let mut buf = Vec::new();
        put_varlong(&mut buf, v);
        buf
    }

    #[test]
    fn varint_vectors() {
        // Expected bytes from Kafka's ByteUtilsTest and the protobuf zig-zag table.
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (2, &[0x04]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (-65, &[0x81, 0x01]),
            (300, &[0xd8, 0x04]),
            (-300, &[0xd7, 0x04]),
            (8191, &[0xfe, 0x7f]),
            (8192, &[0x80, 0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(v, bytes) in cases {
            assert_eq!(varint(v), bytes, "encoding {v}");
            assert_eq!(varint_len(v), bytes.len(), "length of {v}");
            let mut pos = 0;
            assert_eq!(get_varint(bytes, &mut pos), Some(v), "decoding {v}");
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn varlong_vectors() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (300, &[0xd8, 0x04]),
            (1000, &[0xd0, 0x0f]),
            (i64::from(i32::MAX) + 1, &[0x80, 0x80, 0x80, 0x80, 0x10]),
            (
                i64::MAX,
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ];
        for &(v, bytes) in cases {
            assert_eq!(varlong(v), bytes, "encoding {v}");
            assert_eq!(varlong_len(v), bytes.len(), "length of {v}");
            let mut pos = 0;
            assert_eq!(get_varlong(bytes, &mut pos), Some(v), "decoding {v}");
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn lengths_match_encodings_across_ranges() {
        for shift in 0..63 {
            for v in [(1i64 << shift) - 1, 1i64 << shift, -(1i64 << shift)] {
                assert_eq!(varlong_len(v), varlong(v).len(), "{v}");
                if let Ok(v) = i32::try_from(v) {
                    assert_eq!(varint_len(v), varint(v).len(), "{v}");
                }
            }
        }
    }

    #[test]
    fn decode_reads_at_position_and_advances() {
        let buf = [0xaa, 0xd8, 0x04, 0x03];
        let mut pos = 1;
        assert_eq!(get_varint(&buf, &mut pos), Some(300));
        assert_eq!(pos, 3);
        assert_eq!(get_varint(&buf, &mut pos), Some(-2));
        assert_eq!(pos, 4);
        assert_eq!(get_varint(&buf, &mut pos), None);
        assert_eq!(pos, 4);
    }

    #[test]
    fn truncated_and_overlong_are_rejected() {
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80, 0x80], &mut pos), None);
        assert_eq!(pos, 0, "a failed read leaves the position alone");
        assert_eq!(get_varint(&[], &mut pos), None);
        assert_eq!(get_varint(&[0x80; 5], &mut pos), None, "six-byte varint");
        assert_eq!(
            get_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos),
            None
        );
        assert_eq!(
            get_varlong(&[0x80; 10], &mut pos),
            None,
            "eleven-byte varlong"
        );
        assert_eq!(get_varlong(&[0xff; 9], &mut pos), None);
        let mut pos = usize::MAX;
        assert_eq!(get_varint(&[0x00], &mut pos), None);
        assert_eq!(get_varlong(&[0x00], &mut pos), None);
    }

    #[test]
    fn fifth_byte_high_bits_are_dropped_like_java() {
        // Java's `b << 28` keeps only the low four bits of the fifth byte.
        let mut pos = 0;
        assert_eq!(
            get_varint(&[0xfe, 0xff, 0xff, 0xff, 0x7f], &mut pos),
            Some(i32::MAX)
        );
    }
}
