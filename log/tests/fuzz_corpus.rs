//! The `record_batch` fuzz target's corpus (`fuzz/corpus/record_batch`: its seeds and what cargo fuzz kept
//! from its runs), replayed through the target's own checks on every test run.

#[path = "../../fuzz/src/record_batch.rs"]
mod record_batch;

#[test]
fn every_input_of_the_record_batch_fuzz_corpus_passes_the_targets_checks() {
    weir_test_support::replay_fuzz_corpus("record_batch", 9, record_batch::run);
}
