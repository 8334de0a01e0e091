//! A reply frame as the socket takes it: a list of byte strings written with vectored I/O, so
//! that a fetch reply's records go out from the buffers the log read them into. Encoding into
//! one buffer instead copied every fetched byte once more, and that copy was not counted in
//! the buffer pools: with clients that stopped reading, the server held about one and a half
//! times its `buffer_bytes_max`.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut, buf::UninitSlice};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Byte strings shorter than this are copied into the frame: a chunk of its own costs more,
/// in the vectored write, than copying a few kilobytes (a partition's small batch, say).
const SHARED_BYTES_MIN: usize = 4096;

/// A frame ready to write: its chunks in order, none empty.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    chunks: VecDeque<Bytes>,
    remaining: usize,
}

impl Reply {
    /// The frame in one buffer (a copy when it has several chunks): for the in-memory harness.
    pub(crate) fn into_bytes(mut self) -> Bytes {
        if self.chunks.len() == 1 {
            return self.chunks.pop_front().unwrap_or_default();
        }
        let mut all = BytesMut::with_capacity(self.remaining);
        self.copy_into(&mut all);
        all.freeze()
    }

    fn copy_into(&self, out: &mut BytesMut) {
        for chunk in &self.chunks {
            out.put_slice(chunk);
        }
    }

    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.remaining += chunk.len();
            self.chunks.push_back(chunk);
        }
    }
}

impl From<Bytes> for Reply {
    fn from(bytes: Bytes) -> Reply {
        let mut reply = Reply::default();
        reply.push(bytes);
        reply
    }
}

impl Buf for Reply {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| c)
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, chunk) in dst.iter_mut().zip(&self.chunks) {
            *slot = IoSlice::new(chunk);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let step = cnt.min(front.len());
            front.advance(step);
            self.remaining -= step;
            cnt -= step;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }
}

/// What a response is encoded into: copied bytes in `current`, and the larger byte strings
/// the response already holds (a partition's records) kept as chunks of their own.
#[derive(Default)]
pub(crate) struct ReplyBuf {
    done: Reply,
    current: BytesMut,
}

impl ReplyBuf {
    /// The frame: its length prefix (the bytes encoded, which must fit an i32), then them.
    pub(crate) fn finish(mut self) -> Result<Reply, std::num::TryFromIntError> {
        self.seal();
        let len = i32::try_from(self.done.remaining)?;
        let prefix = Bytes::copy_from_slice(&len.to_be_bytes());
        self.done.remaining += prefix.len();
        self.done.chunks.push_front(prefix);
        Ok(self.done)
    }

    /// Ends the copied run so far as a chunk.
    fn seal(&mut self) {
        let run = self.current.split().freeze();
        self.done.push(run);
    }

    /// Everything back into one buffer, for the rare write into what was already encoded (a
    /// record encoder's length gap; a response's encoder never does this).
    fn flatten(&mut self) {
        if !self.done.chunks.is_empty() {
            let mut all = BytesMut::with_capacity(self.done.remaining + self.current.len());
            std::mem::take(&mut self.done).copy_into(&mut all);
            all.put_slice(&self.current);
            self.current = all;
        }
    }
}

// SAFETY: every method hands over to `current`, a BytesMut, which upholds BufMut's contract;
// the chunks already done are never written through these methods.
unsafe impl BufMut for ReplyBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (cnt bytes of chunk_mut initialised) is for `current`,
        // whose chunk_mut it wrote.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        self.current.put_slice(src);
    }
}

impl ByteBufMut for ReplyBuf {
    fn offset(&self) -> usize {
        self.done.remaining + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        if offset < self.done.remaining {
            self.flatten();
        }
        let base = self.done.remaining;
        self.current.resize(offset - base, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        if r.start < self.done.remaining {
            self.flatten();
        }
        let base = self.done.remaining;
        &mut self.current[r.start - base..r.end - base]
    }

    fn put_shared_bytes(&mut self, bytes: &Bytes) {
        if bytes.len() < SHARED_BYTES_MIN {
            self.current.put_slice(bytes);
        } else {
            self.seal();
            self.done.push(bytes.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(mut reply: Reply) -> Vec<u8> {
        let mut out = Vec::new();
        while reply.has_remaining() {
            let mut slices = [IoSlice::new(&[]); 3];
            let n = reply.chunks_vectored(&mut slices);
            // Take a part of what a vectored write offers, as a short write would.
            let offered: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
            let take = offered.len().min(5000);
            out.extend_from_slice(&offered[..take]);
            reply.advance(take);
        }
        out
    }

    #[test]
    fn large_byte_strings_are_shared_small_ones_copied_and_the_frame_reads_back_in_order() {
        let big = Bytes::from(vec![7u8; 10_000]);
        let mut buf = ReplyBuf::default();
        buf.put_i32(42);
        buf.put_shared_bytes(&Bytes::from_static(b"small"));
        buf.put_shared_bytes(&big);
        buf.put_u8(1);
        let reply = buf.finish().unwrap();
        // Shared, not copied: one chunk is the very buffer.
        assert!(reply.chunks.iter().any(|c| c.as_ptr() == big.as_ptr()));
        let mut expected = Vec::new();
        expected.extend_from_slice(&(4 + 5 + 10_000 + 1i32).to_be_bytes());
        expected.extend_from_slice(&42i32.to_be_bytes());
        expected.extend_from_slice(b"small");
        expected.extend_from_slice(&big);
        expected.push(1);
        assert_eq!(reply.remaining(), expected.len());
        assert_eq!(written(reply), expected);
    }

    #[test]
    fn a_write_into_what_was_already_encoded_lands_where_a_single_buffer_would_put_it() {
        let big = Bytes::from(vec![3u8; 8192]);
        let mut buf = ReplyBuf::default();
        let mut plain = BytesMut::new();
        for b in [&mut buf as &mut dyn ByteBufMutDyn, &mut plain] {
            b.put_u16_dyn(9);
            b.shared(&big);
            b.seek_dyn(1);
            b.range_dyn(0..1)[0] = 0xAB;
        }
        let mut framed = (plain.len() as i32).to_be_bytes().to_vec();
        framed.extend_from_slice(&plain);
        assert_eq!(written(buf.finish().unwrap()), framed);
    }

    /// Object-safe access to both buffers under test.
    trait ByteBufMutDyn {
        fn put_u16_dyn(&mut self, v: u16);
        fn shared(&mut self, b: &Bytes);
        fn seek_dyn(&mut self, offset: usize);
        fn range_dyn(&mut self, r: std::ops::Range<usize>) -> &mut [u8];
    }

    impl<T: ByteBufMut> ByteBufMutDyn for T {
        fn put_u16_dyn(&mut self, v: u16) {
            self.put_u16(v);
        }
        fn shared(&mut self, b: &Bytes) {
            self.put_shared_bytes(b);
        }
        fn seek_dyn(&mut self, offset: usize) {
            self.seek(offset);
        }
        fn range_dyn(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
            self.range(r)
        }
    }

    #[test]
    fn a_frame_too_long_for_its_prefix_is_an_error() {
        let mut buf = ReplyBuf::default();
        let big = Bytes::from(vec![0u8; 1 << 20]);
        for _ in 0..2048 {
            buf.put_shared_bytes(&big);
        }
        assert!(buf.finish().is_err());
    }
}
