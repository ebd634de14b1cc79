//! Every session of the real Crush database in the corpus (`crush/*.db`)
//! parses with no diagnostics into exactly the expected number of events
//! of each kind. The counts come from `tests/tools/real_crush_count.py`
//! (Python's `sqlite3`, from the tables, by the mapping in
//! `src/provider/crush.rs`), not from kato.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_crush_count.py`.
const EXPECTED: [(&str, [usize; 8]); 1] = [(
    "conecta4_crush.db#6b6f1898-d6b6-441b-a79c-33eff90734ce",
    [19, 21, 0, 52, 52, 0, 2, 0],
)];

fn crush() -> &'static dyn Provider {
    by_name("crush").expect("crush is registered")
}

fn real_sessions(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("crush");
    let mut dbs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "db"))
        .collect();
    dbs.sort();
    let mut out = Vec::new();
    for db in dbs {
        let ids = kato::database::sessions(crush(), &db).expect("sessions");
        out.extend(ids.iter().map(|id| kato::database::session_path(&db, id)));
    }
    out
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_real_crush_session_has_exact_counts_and_no_diagnostics() {
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
        let mut events: Vec<Event> = Vec::new();
        let inc =
            read_path(path, crush(), Limits::default(), &mut |e| events.push(e)).expect("read");
        assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
        let mut calls = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            match &e.payload {
                Payload::ToolCall {
                    tool_call_id,
                    input,
                    ..
                } => {
                    assert!(
                        input.get().starts_with('{'),
                        "input as JSON: {}",
                        input.get()
                    );
                    calls.insert(tool_call_id.clone());
                }
                Payload::ToolResult { tool_call_id, .. } => assert!(calls.contains(tool_call_id)),
                Payload::AssistantMessage { .. } => assert!(e.model.is_some()),
                Payload::UserMessage { .. } => {
                    assert!(e
                        .timestamp
                        .as_deref()
                        .is_some_and(|t| t.starts_with("2025-")))
                }
                _ => {}
            }
        }
        let kinds = events
            .iter()
            .map(Event::kind)
            .filter(|k| *k != Kind::KatoCommand);
        assert_golden_counts(&name(path), kinds, expected);
    }
}
