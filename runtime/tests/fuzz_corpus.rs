//! The `rows` fuzz target's corpus (`fuzz/corpus/rows`: its seeds and what cargo fuzz kept
//! from its runs), replayed through the target's own checks on every test run.

#[path = "../../fuzz/src/rows.rs"]
mod rows;

#[test]
fn every_input_of_the_rows_fuzz_corpus_passes_the_targets_checks() {
    weir_test_support::replay_fuzz_corpus("rows", 10, rows::run);
}
