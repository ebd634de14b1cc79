//! Every Gemini CLI JSON Lines chat in the real corpus (`gemini-jsonl/`)
//! parses with no diagnostics into exactly the expected number of events
//! of each kind.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_gemini_jsonl_count.py` computes them with Python's
//! `json` module straight from the files, following the rules written
//! down in `src/provider/gemini_jsonl.rs` (a message written again adds
//! only its new event ids; one `session_meta` per metadata line; a patch
//! of `lastUpdated` alone maps to nothing; `token_count` per `gemini`
//! message with tokens; rewinds and checkpoints their info and notice).
//! Re-run it with `python3 tests/tools/real_gemini_jsonl_count.py` after
//! changing the rules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::assert_golden_counts;
use crate::harness::real_corpus;
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_gemini_jsonl_count.py`; every other
/// kind is 0.
const EXPECTED: [(&str, [usize; 8]); 2] = [
    (
        "vibecomparison_session-2026-04-25T08-23-e435870b.jsonl",
        [3, 1, 6, 7, 7, 7, 9, 0],
    ),
    (
        "vibecomparison_session-2026-04-25T08-41-3494a697.jsonl",
        [2, 6, 0, 6, 6, 1, 7, 0],
    ),
];

fn gemini() -> &'static dyn Provider {
    by_name("gemini").expect("gemini is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("gemini-jsonl");
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
    let inc = read_path(path, gemini(), Limits::default(), &mut |e| events.push(e))
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
fn every_real_gemini_jsonl_file_has_exact_counts_and_no_diagnostics() {
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
fn real_gemini_jsonl_files_have_unique_ids_times_models_and_correlated_results() {
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
            assert!(!e.copied, "{} is not a copy", e.event_id);
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
        // Each call once, though its message was written twice.
        let n_calls = events.iter().filter(|e| e.kind() == Kind::ToolCall).count();
        assert_eq!(n_calls, calls.len(), "{}", name(&path));
    }
}

/// The real `.project_root` (a Windows path with spaces) is what `kato
/// sessions` shows as the session's directory, once the chat sits in the
/// CLI's layout.
#[test]
fn real_project_root_is_the_listed_cwd() {
    let Some(base) = real_corpus() else {
        return;
    };
    let marker = fs::read_to_string(base.join("gemini-jsonl/vibecomparison_project_root.txt"))
        .expect("the corpus marker");
    let dir = tempfile::tempdir().expect("tempdir");
    let slug = dir.path().join("home/.gemini/tmp/ticketing-vc");
    fs::create_dir_all(slug.join("chats")).expect("mkdir");
    fs::write(slug.join(".project_root"), &marker).expect("marker");
    let src = real_files(&base).into_iter().next().expect("a chat");
    let file = name(&src);
    let in_layout = file.trim_start_matches("vibecomparison_");
    fs::copy(&src, slug.join("chats").join(in_layout)).expect("copy");
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
    assert_eq!(rows[0]["cwd"].as_str(), Some(marker.trim()), "{rows}");
    assert_eq!(rows[0]["provider"], "gemini");
}
