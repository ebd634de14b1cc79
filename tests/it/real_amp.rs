//! Every Amp thread in the real corpus (`amp/`) parses with no
//! diagnostics into exactly the expected number of events of each kind.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_amp_count.py` computes them with Python's `json`
//! module straight from the files, following the mapping written down in
//! `src/provider/amp.rs`. Re-run it with
//! `python3 tests/tools/real_amp_count.py` after changing the mapping.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_amp_count.py`.
const EXPECTED: [(&str, [usize; 8]); 3] = [
    (
        "gitai_T-019ca1ce-3ae2-7686-a41e-ccc078837f8a.json",
        [1, 2, 1, 4, 4, 0, 3, 0],
    ),
    (
        "gitai_T-019ca1f6-7f21-77b5-a308-65416ebbdf48.json",
        [1, 1, 0, 2, 2, 0, 3, 0],
    ),
    (
        "hackclub_T-1d0ef56c-0ecd-4bf7-af7b-5bc196dc8a6a.json",
        [1, 1, 1, 3, 3, 0, 3, 0],
    ),
];

fn amp() -> &'static dyn Provider {
    by_name("amp").expect("amp is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("amp");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn read_all(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, amp(), Limits::default(), &mut |e| events.push(e))
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
fn every_real_amp_thread_has_exact_counts_and_no_diagnostics() {
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
fn real_amp_threads_have_unique_ids_models_and_correlated_results() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_files(&base) {
        let events = read_all(&path);
        let doc: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("json");
        let tid = doc["id"].as_str().expect("id");
        let mut ids = BTreeSet::new();
        let mut calls = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(&*e.session_id, tid);
            match &e.payload {
                Payload::ToolCall { tool_call_id, .. } => {
                    calls.insert(tool_call_id.clone());
                }
                Payload::ToolResult { tool_call_id, .. } => {
                    assert!(calls.contains(tool_call_id), "result before call");
                }
                Payload::AssistantMessage { .. } | Payload::Thinking { .. } => {
                    assert!(e.model.is_some(), "{} has no model", e.event_id);
                }
                Payload::UserMessage { .. } => {
                    assert!(e.timestamp.is_some(), "{} has no time", e.event_id);
                }
                _ => {}
            }
        }
    }
}
