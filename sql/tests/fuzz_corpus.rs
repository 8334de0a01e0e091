//! The `sql_planner` fuzz target's corpus (`fuzz/corpus/sql_planner`: its seeds and what cargo fuzz kept
//! from its runs), replayed through the target's own checks on every test run, so that an input
//! the fuzzer once found interesting keeps passing without a fuzzing toolchain.

use std::path::Path;

#[path = "../../fuzz/src/sql_planner.rs"]
mod sql_planner;

#[test]
fn every_input_of_the_sql_planner_fuzz_corpus_passes_the_targets_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sql_planner");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        sql_planner::run(&data);
        inputs += 1;
    }
    assert!(
        inputs >= 8,
        "the corpus is there: {inputs} inputs in {}",
        dir.display()
    );
}
