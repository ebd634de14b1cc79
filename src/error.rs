//! Errors that end a command, and the exit-code policy.
//!
//! Per-record problems are not errors: parsers report them as diagnostics
//! and go on. Everything here is reported once, by `main`.

use std::io;
use std::path::PathBuf;

/// Exit codes (README "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_FOUND: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line use.
    #[error("{0}")]
    Usage(String),

    /// A configuration file that cannot be used.
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },

    /// No session matches.
    #[error("no session matches `{query}`; run `kato sessions` to list the sessions kato can see")]
    SessionNotFound { query: String },

    /// Several sessions match a prefix.
    #[error("`{query}` matches {} sessions; give more characters of the id:\n  {}", candidates.len(), candidates.join("\n  "))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },

    /// An I/O failure with what kato was doing.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// The sandbox could not be set up as the mode requires.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),

    /// The daemon cannot start, stop or be reached as asked.
    #[error("{0}")]
    Daemon(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config { .. } => exit::USAGE,
            Error::SessionNotFound { .. } | Error::Ambiguous { .. } => exit::NOT_FOUND,
            Error::Io { .. } | Error::Sandbox(_) | Error::Daemon(_) => exit::FAILURE,
        }
    }

    /// Writing to a closed pipe (`kato export … | head`) is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
