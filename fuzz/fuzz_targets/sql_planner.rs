//! `cargo +nightly fuzz run -s none --features sql sql_planner corpus/sql_planner` (from `fuzz/`); what it checks:
//! [`weir_fuzz::sql_planner`].
#![no_main]

#[global_allocator]
static ALLOCATOR: weir_fuzz::Capped = weir_fuzz::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| weir_fuzz::sql_planner::run(data));
