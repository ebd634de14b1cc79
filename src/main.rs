//! The `kato` binary: a thin shell around [`kato::cli::run`] that owns the
//! exit-code policy (SPEC §11): 0 ok, 1 failure, 2 usage or configuration
//! error, 3 session not found or ambiguous. A closed stdout pipe is not an
//! error.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// mimalloc serves kato's own allocations (the C code, SQLite, keeps the C
/// library's `malloc`): parsing makes and frees many small strings, which
/// musl's allocator in the static binary serves several times slower.
/// Its build settings are in `.cargo/config.toml` and `ci/build-static`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
