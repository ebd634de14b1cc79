//! Every Gemini chat in the real corpus parses with no diagnostics into
//! exactly the expected number of events of each kind.
//!
//! The expected counts are not taken from kato: `tests/tools/real_gemini_count.py`
//! computes them with Python's `json` module straight from the files,
//! following the mapping rules written down in `src/provider/gemini.rs`
//! (one `session_meta` per file; per `gemini` message one thinking event per
//! non-empty thought, one message when the text is not blank, one call per
//! tool call plus one result once it has a result or a final status; per
//! `user` message the typed text, injected context from `displayContent`
//! or steering wrappers, and `functionResponse` parts that do not repeat an
//! inline result; notices and errors when not blank). Re-run it with
//! `python3 tests/tools/real_gemini_count.py` after changing the rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::harness::assert_golden_counts;
use crate::harness::real_corpus;
use kato::event::{Event, Payload, SystemCategory};
use kato::provider::{by_name, ctx_for_path, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_gemini_count.py`; every other kind is 0.
const EXPECTED: [(&str, [usize; 8]); 5] = [
    (
        "gemini-2025-10-gemini-2.5-pro-toolcalls.json",
        [1, 3, 99, 11, 11, 0, 1, 0],
    ),
    (
        "gemini-2026-01-info-error-summary.json",
        [25, 24, 69, 0, 0, 3, 1, 0],
    ),
    (
        "gemini-2026-03-kind-gemini3-flash.json",
        [1, 4, 7, 4, 4, 0, 1, 0],
    ),
    (
        "gemini-2026-04-main-content-parts.json",
        [40, 48, 81, 34, 34, 9, 1, 0],
    ),
    (
        "gemini-2026-04-subagent-kind-directories.json",
        [0, 11, 20, 10, 10, 2, 1, 0],
    ),
];

fn gemini() -> &'static dyn Provider {
    by_name("gemini").expect("gemini is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("gemini");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn read_all(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, gemini(), Limits::default(), &mut |e| events.push(e))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        inc.diagnostics.is_empty(),
        "{}: {:?}",
        path.display(),
        inc.diagnostics
    );
    assert_eq!(inc.events, events.len() as u64);
    events
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_real_file_has_exact_counts_and_no_diagnostics() {
    let Some(base) = real_corpus() else {
        return;
    };
    let files = real_files(&base);
    let listed: BTreeSet<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    let present: BTreeSet<String> = files.iter().map(|p| name(p)).collect();
    assert_eq!(
        present,
        listed.iter().map(|s| s.to_string()).collect(),
        "every Gemini file of the corpus has a row in EXPECTED"
    );
    for path in &files {
        let events = read_all(path);
        let (_, expected) = EXPECTED
            .iter()
            .find(|(n, _)| *n == name(path))
            .expect("listed");
        assert_golden_counts(&name(path), events.iter().map(Event::kind), expected);
    }
}

#[test]
fn real_files_have_unique_ids_and_correlated_results() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_files(&base) {
        let events = read_all(&path);
        let mut ids = BTreeSet::new();
        let mut calls = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(e.provider.as_str(), "gemini");
            assert!(e.timestamp.is_some(), "{} has no timestamp", e.event_id);
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
                _ => {}
            }
        }
        // The document's session id, for main and subagent chats alike
        // (the corpus copies are renamed, so the parent directory is gone).
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let sid = doc["sessionId"].as_str().expect("sessionId");
        assert!(events.iter().all(|e| &*e.session_id == sid));
    }
}

#[test]
fn real_subagent_chat_is_marked_and_has_no_human_text() {
    let Some(base) = real_corpus() else {
        return;
    };
    let path = base.join("gemini/gemini-2026-04-subagent-kind-directories.json");
    let events = read_all(&path);
    assert!(events.iter().all(|e| {
        e.subagent.as_ref().and_then(|s| s.id.as_deref()) == Some("twynek")
            && e.subagent.as_ref().and_then(|s| s.label.as_deref()) == Some("subagent")
    }));
    assert!(!events.iter().any(Event::is_human_message));
    let categories: Vec<SystemCategory> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::SystemMessage { category, .. } => Some(*category),
            _ => None,
        })
        .collect();
    assert_eq!(
        categories,
        [SystemCategory::SubagentPrompt, SystemCategory::ModelInput]
    );
    let calls: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ToolCall { tool_call_id, .. } => Some(tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(calls.first(), Some(&"twynek#0-0"));
}

#[test]
fn real_at_file_prompt_keeps_typed_text_apart_from_file_content() {
    let Some(base) = real_corpus() else {
        return;
    };
    let path = base.join("gemini/gemini-2026-04-main-content-parts.json");
    let events = read_all(&path);
    let human: Vec<&Event> = events.iter().filter(|e| e.is_human_message()).collect();
    let at_file = human
        .iter()
        .find(|e| matches!(&e.payload, Payload::UserMessage { text, .. } if text.starts_with("@\"C:")))
        .expect("the @file prompt");
    let context = events
        .iter()
        .find(|e| e.event_id == format!("{}#context", at_file.event_id))
        .expect("its expanded file content");
    match &context.payload {
        Payload::SystemMessage { category, text } => {
            assert_eq!(*category, SystemCategory::InjectedContext);
            assert!(text.contains("--- Content from referenced files ---"));
        }
        other => panic!("{other:?}"),
    }
    // Steering updates: only the typed line is human text.
    assert!(human.iter().any(|e| matches!(&e.payload,
        Payload::UserMessage { text, .. } if text == "Mr. Bonner also bore a distinctive cane.")));
    assert!(!human.iter().any(|e| matches!(&e.payload,
        Payload::UserMessage { text, .. } if text.contains("<user_input>") || text.contains("Internal instruction"))));
    // Error results of failed tool calls.
    let errors = events
        .iter()
        .filter(|e| matches!(e.payload, Payload::ToolResult { is_error: true, .. }))
        .count();
    assert_eq!(errors, 5);
}

/// Growing each real document one message at a time, with the parser state
/// saved and restored between reads as the daemon does, delivers exactly
/// the events of one read of the whole document.
#[test]
fn real_documents_read_incrementally_match_one_read() {
    let Some(base) = real_corpus() else {
        return;
    };
    let provider = gemini();
    for path in real_files(&base) {
        let ctx = ctx_for_path(provider, &path);
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let messages = doc["messages"].as_array().cloned().expect("messages");
        let version = |doc: &mut serde_json::Value, k: usize| {
            doc["messages"] = serde_json::Value::Array(messages[..k].to_vec());
            serde_json::to_vec_pretty(doc).expect("serialize")
        };

        let mut once = Vec::new();
        let full = version(&mut doc, messages.len());
        provider
            .parser(&ctx)
            .record(0, &full, &mut |e| once.push(e))
            .expect("parse");

        let mut stepwise = Vec::new();
        let mut state = serde_json::Value::Null;
        for k in 0..=messages.len() {
            let mut parser = provider.parser(&ctx);
            parser.restore(&state).expect("restore");
            parser
                .record(0, &version(&mut doc, k), &mut |e| stepwise.push(e))
                .expect("parse");
            state = parser.state();
        }
        let json = |evs: &[Event]| -> Vec<String> {
            evs.iter()
                .map(|e| serde_json::to_string(e).expect("serialize"))
                .collect()
        };
        assert_eq!(json(&stepwise), json(&once), "{}", name(&path));
    }
}
