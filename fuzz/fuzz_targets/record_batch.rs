//! `cargo +nightly fuzz run -s none record_batch corpus/record_batch` (from `fuzz/`); what it checks:
//! [`weir_fuzz::record_batch`].
#![no_main]

#[global_allocator]
static ALLOCATOR: weir_fuzz::Capped = weir_fuzz::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_fuzz::record_batch::run(data));
