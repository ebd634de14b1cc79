//! Every session of the real OpenCode database in the corpus
//! (`opencode/*.db`) parses with no diagnostics into exactly the expected
//! number of events of each kind.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_opencode_count.py` computes them with Python's
//! `sqlite3` and `json` modules straight from the tables, following the
//! mapping written down in `src/provider/opencode.rs`. Re-run it with
//! `python3 tests/tools/real_opencode_count.py` after changing the mapping.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_opencode_count.py`.
const EXPECTED: [(&str, [usize; 8]); 4] = [
    (
        "aiand_opencode_v1.17.3.db#ses_1278e1f37ffelIDlCdpXIGV74U",
        [2, 3, 10, 17, 16, 0, 11, 0],
    ),
    (
        "aiand_opencode_v1.17.3.db#ses_1279fce82ffeZOJhNwml1w1Fu4",
        [2, 1, 5, 10, 9, 2, 6, 0],
    ),
    (
        "aiand_opencode_v1.17.3.db#ses_12be9f828ffeaiYkWjPssYhKmB",
        [11, 26, 56, 50, 50, 0, 59, 0],
    ),
    (
        "ses_4567b0e1affeRu0da2D26ls6sf.json",
        [1, 1, 0, 0, 0, 0, 3, 0],
    ),
];

fn opencode() -> &'static dyn Provider {
    by_name("opencode").expect("opencode is registered")
}

/// The sessions of every database in the corpus, as `<db>#<id>` paths.
fn real_sessions(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("opencode");
    let mut dbs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "db"))
        .collect();
    dbs.sort();
    let mut out = Vec::new();
    for db in dbs {
        let ids = kato::database::sessions(opencode(), &db).expect("sessions");
        out.extend(ids.iter().map(|id| kato::database::session_path(&db, id)));
    }
    // The JSON stores' top-level session files.
    for store in std::fs::read_dir(&dir).expect("list").flatten() {
        let sessions = store.path().join("storage/session");
        for project in std::fs::read_dir(&sessions).into_iter().flatten().flatten() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(project.path())
                .expect("list")
                .flatten()
                .map(|e| e.path())
                .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| !t.contains("\"parentID\"")))
                .collect();
            files.sort();
            out.extend(files);
        }
    }
    out
}

fn read_all(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, opencode(), Limits::default(), &mut |e| events.push(e))
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
fn every_real_opencode_session_has_exact_counts_and_no_diagnostics() {
    let Some(base) = real_corpus() else {
        return;
    };
    let sessions = real_sessions(&base);
    let listed: BTreeSet<String> = EXPECTED.iter().map(|(n, _)| n.to_string()).collect();
    let present: BTreeSet<String> = sessions.iter().map(|p| name(p)).collect();
    assert_eq!(present, listed, "every session of the corpus has a row");
    for path in &sessions {
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
fn real_opencode_sessions_have_unique_ids_models_cwd_and_correlated_results() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_sessions(&base) {
        let events = read_all(&path);
        let file = name(&path);
        let sid = match file.split_once('#') {
            Some((_, id)) => id.to_owned(),
            None => file.trim_end_matches(".json").to_owned(),
        };
        let mut ids = BTreeSet::new();
        let mut calls = BTreeSet::new();
        let mut cwd = false;
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(&*e.session_id, sid);
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
                Payload::ProviderInfo { topic, data } if topic == "session_meta" => {
                    cwd |= data.get().contains("\"cwd\":\"/");
                }
                _ => {}
            }
        }
        assert!(cwd, "{}: no cwd", path.display());
    }
}
