//! The real agent corpus: other people's sessions, kept outside the
//! repository. This file is the one lookup. The integration tests reach it
//! as `harness::corpus`; the library's unit tests (`src/render/tests.rs`)
//! and `examples/redact_bench.rs` cannot link the integration harness and
//! include this same file with `#[path]`.
//!
//! Where: `$KATO_FIXTURES`, else `../shared/fixtures/real` beside the crate.
//! When it is absent a test is skipped with one line on stderr, unless `CI`
//! is set (non-empty) or `KATO_REQUIRE_CORPUS=1`: then absence fails.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the corpus is expected, given the value of `KATO_FIXTURES`.
pub fn location(kato_fixtures: Option<&OsStr>) -> PathBuf {
    match kato_fixtures {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real"),
    }
}

/// What a test does when the corpus is not there.
#[derive(Debug, PartialEq, Eq)]
pub enum Absent {
    /// Say so on one line and pass.
    Skip,
    /// Fail: the corpus is required.
    Fail,
}

/// The rule, from the values of `CI` and `KATO_REQUIRE_CORPUS`.
pub fn when_absent(ci: Option<&OsStr>, require: Option<&OsStr>) -> Absent {
    let ci = ci.is_some_and(|v| !v.is_empty());
    let required = require.is_some_and(|v| v == "1");
    if ci || required {
        Absent::Fail
    } else {
        Absent::Skip
    }
}

/// The corpus directory, or `None` after one loud line on stderr (the test
/// then returns). Panics when the corpus is absent but required.
pub fn real_corpus() -> Option<PathBuf> {
    let dir = location(std::env::var_os("KATO_FIXTURES").as_deref());
    if dir.is_dir() {
        return Some(dir);
    }
    let rule = when_absent(
        std::env::var_os("CI").as_deref(),
        std::env::var_os("KATO_REQUIRE_CORPUS").as_deref(),
    );
    let test = std::thread::current().name().unwrap_or("test").to_owned();
    match rule {
        Absent::Fail => panic!(
            "{test}: the real corpus is required (CI or KATO_REQUIRE_CORPUS=1) and {} \
             is not a directory; set KATO_FIXTURES to the corpus",
            dir.display()
        ),
        Absent::Skip => {
            // Straight to the stream: the test harness captures eprintln!,
            // and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no real corpus at {}; set KATO_FIXTURES to run it",
                dir.display()
            );
            None
        }
    }
}
