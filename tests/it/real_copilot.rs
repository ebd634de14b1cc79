//! Every GitHub Copilot CLI file in the real corpus (`copilot-cli/`:
//! a 1.0 `events.jsonl`, a flat pre-1.0 log and two legacy documents)
//! parses with no diagnostics into exactly the expected number of events
//! of each kind.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_copilot_count.py` computes them with Python's `json`
//! module straight from the files, following the rules written down in
//! `src/provider/copilot.rs` (turn records map to nothing; a tool start
//! whose call came with the assistant's message adds nothing; what the
//! model got beside the human's words is one injected-context message).
//! Re-run it with `python3 tests/tools/real_copilot_count.py` after
//! changing the rules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_copilot_count.py`.
const EXPECTED: [(&str, [usize; 8]); 4] = [
    (
        "hawzx_flat_27d7ef99-f7c7-43eb-8599-cb469623c8f7.jsonl",
        [5, 3, 0, 28, 27, 22, 1, 0],
    ),
    (
        "polusiti_legacy_session_e02997e2-e7e7-46ae-8027-b1a73e0cb908_1761492781060.json",
        [4, 4, 0, 17, 17, 2, 1, 0],
    ),
    (
        "polusiti_legacy_session_ea20af27-b3c6-4843-b737-05a1b8aeacf0_1759498020507.json",
        [0, 0, 0, 0, 0, 1, 1, 0],
    ),
    (
        "poule_v2_d5b1506c_events.jsonl",
        [7, 7, 14, 59, 59, 8, 62, 0],
    ),
];

fn copilot() -> &'static dyn Provider {
    by_name("copilot").expect("copilot is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("copilot-cli");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl" || x == "json"))
        .collect();
    files.sort();
    files
}

fn read_all(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, copilot(), Limits::default(), &mut |e| events.push(e))
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
fn every_real_copilot_file_has_exact_counts_and_no_diagnostics() {
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
fn real_copilot_files_have_unique_ids_times_and_correlated_results() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_files(&base) {
        let events = read_all(&path);
        let mut ids = BTreeSet::new();
        let mut calls = BTreeSet::new();
        let sessions: BTreeSet<&str> = events.iter().map(|e| &*e.session_id).collect();
        assert_eq!(sessions.len(), 1, "{}: {sessions:?}", name(&path));
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert!(e.timestamp.is_some(), "{} has no timestamp", e.event_id);
            match &e.payload {
                Payload::ToolCall { tool_call_id, .. } => {
                    assert!(calls.insert(tool_call_id.clone()), "call twice");
                }
                Payload::ToolResult { tool_call_id, .. } => {
                    assert!(calls.contains(tool_call_id), "result before call");
                }
                Payload::UserMessage { text, .. } => {
                    // The CLI's datetime block is never the human's words.
                    assert!(!text.contains("<current_datetime>"), "{}", e.event_id);
                }
                _ => {}
            }
        }
    }
}

/// The 1.0 log and its `workspace.yaml`, put in the CLI's layout: `kato
/// sessions` lists the session with the `cwd` the sidecar records and
/// the first human message as its title.
#[test]
fn real_workspace_cwd_is_the_listed_cwd() {
    let Some(base) = real_corpus() else {
        return;
    };
    let yaml = fs::read_to_string(base.join("copilot-cli/poule_v2_d5b1506c_workspace.yaml"))
        .expect("the corpus sidecar");
    let want_cwd = yaml
        .lines()
        .find_map(|l| l.strip_prefix("cwd: "))
        .expect("a cwd line")
        .trim()
        .to_owned();
    let sid = yaml
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id line")
        .trim()
        .to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let session = dir.path().join("home/.copilot/session-state").join(&sid);
    fs::create_dir_all(&session).expect("mkdir");
    fs::copy(
        base.join("copilot-cli/poule_v2_d5b1506c_events.jsonl"),
        session.join("events.jsonl"),
    )
    .expect("copy");
    fs::write(session.join("workspace.yaml"), &yaml).expect("sidecar");
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
    assert_eq!(rows[0]["cwd"].as_str(), Some(want_cwd.as_str()), "{rows}");
    assert_eq!(rows[0]["provider"], "copilot");
    assert_eq!(rows[0]["id"].as_str(), Some(sid.as_str()));
    assert_eq!(rows[0]["events"], 216);
}
