//! A record as a reader sees it, with its headers.

use bytes::Bytes;

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key (UTF-8).
    pub key: String,
    /// Header value, `None` for null.
    pub value: Option<Bytes>,
}

/// One record as read from the log: absolute offset and timestamp, key, value and headers.
/// Key and value share the batch's buffer: reading a record does not copy its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset in the partition.
    pub offset: i64,
    /// Absolute timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}
