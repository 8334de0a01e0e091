//! TEMPORARY stand-in until the codec branch merges.
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Codec error.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Encode.
    #[error("encode: {reason}")]
    Encode {
        /// f
        field: Option<String>,
        /// r
        reason: String,
    },
    /// Decode.
    #[error("decode: {reason}")]
    Decode {
        /// f
        field: Option<String>,
        /// r
        reason: String,
    },
}

/// Codec.
pub trait Codec<T>: Clone + Send + Sync + 'static {
    /// e
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// d
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError>;
    /// n
    fn name(&self) -> &'static str;
}

/// JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(|e| CodecError::Encode {
            field: None,
            reason: e.to_string(),
        })
    }
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode {
            field: None,
            reason: e.to_string(),
        })
    }
    fn name(&self) -> &'static str {
        "json"
    }
}
