//! Every Factory Droid session in the real corpus (`factory-droid/`)
//! parses with no diagnostics into exactly the expected number of events
//! of each kind, with the records' ids, times and tool-call correlation.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_droid_count.py` computes them with Python's `json`
//! module straight from the files, following the rules written down in
//! `src/provider/droid.rs`. Re-run it with
//! `python3 tests/tools/real_droid_count.py` after changing the rules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_droid_count.py`; every other kind
/// is 0.
const EXPECTED: [(&str, [usize; 8]); 2] = [
    ("gitai_droid-session.jsonl", [1, 1, 0, 5, 5, 1, 4, 0]),
    (
        "idahovault_1e497a18-d302-4d2c-b2b1-98903bfebd5a.jsonl",
        [0, 0, 0, 0, 0, 0, 2, 0],
    ),
];

fn droid() -> &'static dyn Provider {
    by_name("droid").expect("droid is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("factory-droid");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

fn read_all(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, droid(), Limits::default(), &mut |e| events.push(e))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        inc.diagnostics.is_empty(),
        "{}: {:?}",
        path.display(),
        inc.diagnostics
    );
    events
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_real_droid_file_has_exact_counts_and_no_diagnostics() {
    let Some(base) = real_corpus() else {
        return;
    };
    let files = real_files(&base);
    let listed: BTreeSet<String> = EXPECTED.iter().map(|(n, _)| n.to_string()).collect();
    let present: BTreeSet<String> = files.iter().map(|p| name(p)).collect();
    assert_eq!(present, listed, "every file of the corpus has a row");
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
fn real_droid_files_have_unique_ids_times_and_correlated_results() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_files(&base) {
        let events = read_all(&path);
        let first: serde_json::Value = serde_json::from_str(
            fs::read_to_string(&path)
                .expect("read")
                .lines()
                .next()
                .expect("a first line"),
        )
        .expect("json");
        let sid = first["id"].as_str().expect("session_start id");
        let mut ids = BTreeSet::new();
        let mut calls = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(&*e.session_id, sid);
            if e.source.record == "message" || e.source.record == "todo_state" {
                assert!(e.timestamp.is_some(), "{} has no time", e.event_id);
            }
            match &e.payload {
                Payload::ToolCall { tool_call_id, .. } => {
                    calls.insert(tool_call_id.clone());
                }
                Payload::ToolResult { tool_call_id, .. } => {
                    assert!(calls.contains(tool_call_id), "result before its call");
                }
                Payload::UserMessage { text, .. } => {
                    assert!(!text.starts_with("Contents of "), "{}", e.event_id);
                }
                _ => {}
            }
        }
    }
}
