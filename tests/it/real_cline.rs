//! Every Cline task history in the real corpus (`cline/*.json.gz`, kept
//! gzipped there) parses with no diagnostics into exactly the expected
//! number of events of each kind.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_cline_count.py` computes them with Python's `json`
//! module straight from the files, following the rules written down in
//! `src/provider/cline.rs`. Re-run it with
//! `python3 tests/tools/real_cline_count.py` after changing the rules.
//! The files are read gunzipped into a temporary directory, never into
//! the repository.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_cline_count.py`; every other kind
/// is 0.
const EXPECTED: [(&str, [usize; 8]); 1] = [(
    "mra_api_conversation_history.json.gz",
    [34, 181, 0, 231, 223, 292, 224, 0],
)];

fn cline() -> &'static dyn Provider {
    by_name("cline").expect("cline is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("cline");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `gz` gunzipped into `<dir>/<task>/api_conversation_history.json`, the
/// layout Cline writes.
fn gunzip(gz: &Path, dir: &Path) -> PathBuf {
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(gz)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip -dc {}", gz.display());
    let task = dir.join("1777073153000");
    fs::create_dir_all(&task).expect("mkdir");
    let path = task.join("api_conversation_history.json");
    fs::write(&path, out.stdout).expect("write");
    path
}

fn read_all(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, cline(), Limits::default(), &mut |e| events.push(e))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        inc.diagnostics.is_empty(),
        "{}: {:?}",
        path.display(),
        inc.diagnostics
    );
    events
}

#[test]
fn every_real_cline_file_has_exact_counts_and_no_diagnostics() {
    let Some(base) = real_corpus() else {
        return;
    };
    let files = real_files(&base);
    let listed: BTreeSet<String> = EXPECTED.iter().map(|(n, _)| n.to_string()).collect();
    let present: BTreeSet<String> = files.iter().map(|p| name(p)).collect();
    assert_eq!(present, listed, "every file of the corpus has a row");
    for gz in &files {
        let (_, expected) = EXPECTED
            .iter()
            .find(|(n, _)| *n == name(gz))
            .expect("listed");
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = gunzip(gz, tmp.path());
        let kinds = read_all(&path).iter().map(Event::kind).collect::<Vec<_>>();
        assert!(
            !kinds.contains(&Kind::KatoCommand),
            "no commands from cline"
        );
        assert_golden_counts(&name(gz), kinds, expected);
    }
}

#[test]
fn real_cline_files_have_unique_ids_times_models_and_correlated_results() {
    let Some(base) = real_corpus() else {
        return;
    };
    for gz in real_files(&base) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = gunzip(&gz, tmp.path());
        let events = read_all(&path);
        let mut ids = BTreeSet::new();
        let mut calls = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(&*e.session_id, "1777073153000");
            assert!(e.timestamp.is_some(), "{} has no timestamp", e.event_id);
            match &e.payload {
                Payload::ToolCall { tool_call_id, .. } => {
                    assert!(e.model.is_some(), "{} has no model", e.event_id);
                    calls.insert(tool_call_id.clone());
                }
                Payload::ToolResult { tool_call_id, .. } => {
                    assert!(calls.contains(tool_call_id), "result before its call");
                }
                _ => {}
            }
        }
        // A document read in two steps gives what one read gives.
        let text = fs::read_to_string(&path).expect("read");
        let all: Vec<&serde_json::value::RawValue> = serde_json::from_str(&text).expect("json");
        let half: Vec<&str> = all[..all.len() / 2].iter().map(|m| m.get()).collect();
        let half = format!("[{}]", half.join(","));
        let mut p = cline().parser(&cline().named_file(&path));
        let mut stepwise = Vec::new();
        p.record(0, half.as_bytes(), &mut |e| stepwise.push(e))
            .expect("half");
        p.record(0, text.as_bytes(), &mut |e| stepwise.push(e))
            .expect("whole");
        let a: Vec<String> = stepwise.iter().map(|e| e.event_id.clone()).collect();
        let b: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(a, b);
    }
}
