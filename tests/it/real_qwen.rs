//! Every Qwen Code chat in the real corpus (`qwen/`) parses with no
//! diagnostics into exactly the expected number of events of each kind.
//!
//! The expected counts are not taken from kato: `tests/tools/real_qwen_count.py`
//! computes them with Python's `json` module straight from the files,
//! following the rules written down in `src/provider/qwen.rs` (one
//! `session_meta` whenever `cwd`/`version`/`gitBranch` change; the human's
//! words apart from `@file` text and hook context; a tool result per
//! `functionResponse`; `token_count` per assistant record with usage; system
//! subtypes as infos, commands and notices). Re-run it with
//! `python3 tests/tools/real_qwen_count.py` after changing the rules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::assert_golden_counts;
use crate::harness::real_corpus;
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_qwen_count.py`; every other kind is 0.
const EXPECTED: [(&str, [usize; 8]); 5] = [
    (
        "artas_9a578cd0-ad2c-423c-8f19-95412a2d81af.jsonl",
        [1, 1, 0, 0, 0, 0, 3, 0],
    ),
    (
        "cloudschool_7ff68fe9-497f-441a-b527-a47cae5b6d42.jsonl",
        [1, 3, 4, 3, 3, 1, 15, 0],
    ),
    (
        "cloudschool_80a2d37c-ef84-45fc-b7d1-a34a27b3a3d8.jsonl",
        [3, 5, 5, 3, 3, 4, 16, 0],
    ),
    (
        "splitrail_mockbackend_v0.18.1.jsonl",
        [1, 1, 0, 1, 1, 0, 7, 0],
    ),
    (
        "termux_4afe6662-3c8a-4b5e-974c-5d8f9e50d2a6.jsonl",
        [1, 0, 3, 7, 5, 0, 12, 0],
    ),
];

fn qwen() -> &'static dyn Provider {
    by_name("qwen").expect("qwen is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("qwen");
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
    let inc = read_path(path, qwen(), Limits::default(), &mut |e| events.push(e))
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
fn every_real_qwen_file_has_exact_counts_and_no_diagnostics() {
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
fn real_qwen_files_have_unique_ids_times_models_cwd_and_correlated_results() {
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
        let sid = first["sessionId"].as_str().expect("sessionId");
        let mut ids = BTreeSet::new();
        let mut calls = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(&*e.session_id, sid);
            assert!(e.timestamp.is_some(), "{} has no timestamp", e.event_id);
            assert!(!e.copied && e.subagent.is_none(), "{}", e.event_id);
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
                Payload::ProviderInfo { topic, data } if topic == "session_meta" => {
                    let d: serde_json::Value = serde_json::from_str(data.get()).expect("json");
                    assert_eq!(d["cwd"], first["cwd"], "{}", name(&path));
                }
                _ => {}
            }
        }
        // The human's words never hold the @file text the CLI appended.
        for e in events.iter().filter(|e| e.is_human_message()) {
            if let Payload::UserMessage { text, .. } = &e.payload {
                assert!(!text.contains("--- Content from referenced files ---"));
            }
        }
    }
}
