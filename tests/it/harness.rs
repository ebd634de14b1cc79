//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The real agent corpus: `$KATO_FIXTURES`, else `../shared/fixtures/real`
/// beside the crate (where CI puts it), else `/work/shared/fixtures/real`.
pub fn real_corpus() -> PathBuf {
    if let Some(dir) = std::env::var_os("KATO_FIXTURES") {
        return PathBuf::from(dir);
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real");
    if beside.is_dir() {
        return beside;
    }
    PathBuf::from("/work/shared/fixtures/real")
}
