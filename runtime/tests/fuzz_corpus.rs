//! The `rows` fuzz target's corpus (`fuzz/corpus/rows`: its seeds and what cargo fuzz kept
//! from its runs), replayed through the target's own checks on every test run, so that an input
//! the fuzzer once found interesting keeps passing without a fuzzing toolchain.

use std::path::Path;

#[path = "../../fuzz/src/rows.rs"]
mod rows;

#[test]
fn every_input_of_the_rows_fuzz_corpus_passes_the_targets_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rows");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        rows::run(&data);
        inputs += 1;
    }
    assert!(
        inputs >= 10,
        "the corpus is there: {inputs} inputs in {}",
        dir.display()
    );
}
