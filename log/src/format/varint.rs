//! Zig-zag varints as Kafka (and protobuf) write them.

/// Bytes `v` takes as a zig-zag varint.
pub fn varint_len(v: i32) -> usize {
    let _ = v;
    unimplemented!()
}

/// Bytes `v` takes as a zig-zag varlong.
pub fn varlong_len(v: i64) -> usize {
    let _ = v;
    unimplemented!()
}

/// Appends `v` as a zig-zag varint.
pub fn put_varint(buf: &mut Vec<u8>, v: i32) {
    let _ = (buf, v);
    unimplemented!()
}

/// Appends `v` as a zig-zag varlong.
pub fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    let _ = (buf, v);
    unimplemented!()
}

/// Reads a zig-zag varint from `buf[*pos..]`, advancing `pos`; `None` if truncated or over 5 bytes.
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    let _ = (buf, pos);
    unimplemented!()
}

/// Reads a zig-zag varlong likewise; `None` if truncated or over 10 bytes.
pub fn get_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let _ = (buf, pos);
    unimplemented!()
}
