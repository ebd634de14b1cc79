//! The `kato` binary: a thin shell around [`kato::cli::run`] that owns the
//! exit-code policy (SPEC §11): 0 ok, 1 failure, 2 usage or configuration
//! error, 3 session not found or ambiguous. A closed stdout pipe is not an
//! error.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = match kato::cli::run() {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => kato::error::exit::OK,
        Err(e) => {
            kato::terminal::eprintln(&format!("kato: {e}"));
            e.exit_code()
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
