//! The `sql_planner` fuzz target's corpus (`fuzz/corpus/sql_planner`: its seeds and what cargo fuzz kept
//! from its runs), replayed through the target's own checks on every test run.

#[path = "../../fuzz/src/sql_planner.rs"]
mod sql_planner;

#[test]
fn every_input_of_the_sql_planner_fuzz_corpus_passes_the_targets_checks() {
    weir_test_support::replay_fuzz_corpus("sql_planner", 8, sql_planner::run);
}
