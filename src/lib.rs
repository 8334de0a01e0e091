//! weir facade.
pub use weir_log as log;
