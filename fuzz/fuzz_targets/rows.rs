//! `cargo +nightly fuzz run -s none rows corpus/rows` (from `fuzz/`); what it checks:
//! [`weir_fuzz::rows`].
#![no_main]

#[global_allocator]
static ALLOCATOR: weir_fuzz::Capped = weir_fuzz::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_fuzz::rows::run(data));
