//! The `dbtool` binary: parse, dispatch, map the error to an exit status. Everything else lives
//! in the library (`dbtool::*`) and in `cli/` (one file per command).
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cli::main())
}
