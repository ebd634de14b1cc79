//! Every Kimi CLI session file in the real corpus (`kimi-cli/`: a
//! `wire.jsonl` and a subagent's `context_sub_<n>.jsonl`) parses with no
//! diagnostics into exactly the expected number of events of each kind.
//! The corpus's `context.jsonl` is not a session file (see
//! `src/provider/kimi.rs`) and is not listed.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_kimi_count.py` computes them with Python's `json`
//! module straight from the files, following the mapping written down in
//! `src/provider/kimi.rs`. Re-run it with
//! `python3 tests/tools/real_kimi_count.py` after changing the mapping.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_kimi_count.py`.
const EXPECTED: [(&str, [usize; 8]); 2] = [
    ("ihhashi_0be84c98_wire.jsonl", [5, 1, 2, 1, 2, 5, 3, 0]),
    (
        "ihhashi_b1ea4a04_context_sub_8.jsonl",
        [0, 5, 6, 5, 5, 1, 12, 0],
    ),
];

fn kimi() -> &'static dyn Provider {
    by_name("kimi").expect("kimi is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("kimi-cli");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            let n = name(p);
            n.ends_with("_wire.jsonl") || n.contains("_context_sub_")
        })
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Read a corpus file under the name Kimi CLI gives it.
fn read_all(path: &Path) -> Vec<Event> {
    let n = name(path);
    let in_layout = match n.find("_context_sub_") {
        Some(i) => n[i + 1..].to_owned(),
        None => "wire.jsonl".to_owned(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let session = dir.path().join("h/sid");
    fs::create_dir_all(&session).expect("mkdir");
    let copy = session.join(in_layout);
    fs::copy(path, &copy).expect("copy");
    let mut events = Vec::new();
    let inc = read_path(&copy, kimi(), Limits::default(), &mut |e| events.push(e))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(inc.diagnostics.is_empty(), "{n}: {:?}", inc.diagnostics);
    events
}

#[test]
fn every_real_kimi_file_has_exact_counts_and_no_diagnostics() {
    let Some(base) = real_corpus() else {
        return;
    };
    let files = real_files(&base);
    let listed: BTreeSet<String> = EXPECTED.iter().map(|(n, _)| n.to_string()).collect();
    let present: BTreeSet<String> = files.iter().map(|p| name(p)).collect();
    assert_eq!(
        present, listed,
        "every session file of the corpus has a row"
    );
    for path in &files {
        let (_, expected) = EXPECTED
            .iter()
            .find(|(n, _)| *n == name(path))
            .expect("listed");
        let kinds = read_all(path).iter().map(Event::kind).collect::<Vec<_>>();
        let kinds = kinds.into_iter().filter(|k| *k != Kind::KatoCommand);
        assert_golden_counts(&name(path), kinds, expected);
    }
}

#[test]
fn real_kimi_files_have_unique_ids_and_times_where_the_format_has_them() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_files(&base) {
        let events = read_all(&path);
        let wire = name(&path).ends_with("_wire.jsonl");
        let mut ids = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(&*e.session_id, "sid");
            let meta = matches!(&e.payload, Payload::ProviderInfo { topic, .. } if topic == "session_meta");
            assert_eq!(
                e.timestamp.is_some(),
                wire && !meta,
                "{}: the wire's records have times, a context's none",
                e.event_id
            );
            assert_eq!(e.subagent.is_some(), !wire, "{}", e.event_id);
        }
    }
}

/// The real registry (`kimi.json`) names the real session's directory:
/// the MD5 of its one work directory is the folder name the CLI used.
#[test]
fn real_registry_is_the_listed_cwd() {
    let Some(base) = real_corpus() else {
        return;
    };
    let registry: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(base.join("kimi-cli/ihhashi_kimi.json")).expect("the corpus registry"),
    )
    .expect("json");
    let want = registry["work_dirs"][0]["path"].as_str().expect("a path");
    let dir = tempfile::tempdir().expect("tempdir");
    let kimi = dir.path().join("home/.kimi");
    let session = kimi.join("sessions/697a0ebec3147bb421a9dd6a0531906f/0be84c98");
    fs::create_dir_all(&session).expect("mkdir");
    fs::copy(
        base.join("kimi-cli/ihhashi_0be84c98_wire.jsonl"),
        session.join("wire.jsonl"),
    )
    .expect("copy");
    fs::copy(
        base.join("kimi-cli/ihhashi_kimi.json"),
        kimi.join("kimi.json"),
    )
    .expect("copy");
    fs::write(
        dir.path().join("config.toml"),
        format!(
            "[state]\ndir = \"{}\"\n[sandbox]\nmode = \"best-effort\"\n",
            dir.path().join("state").display()
        ),
    )
    .expect("config");
    let out = std::process::Command::new(crate::harness::BIN)
        .env_clear()
        .env("HOME", dir.path().join("home"))
        .env("KATO_CONFIG", dir.path().join("config.toml"))
        .args(["sessions", "--json"])
        .output()
        .expect("run kato");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows[0]["cwd"].as_str(), Some(want), "{rows}");
    assert_eq!(rows[0]["provider"], "kimi");
}
