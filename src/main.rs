//! The `pooltune` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    pooltune::cli::main()
}
