//! The `weir` command line: topics, producing and consuming JSON lines, consumer groups and
//! benchmarks over a data directory. See `docs/cli.md` and `weir --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
