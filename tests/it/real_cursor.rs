//! Every Cursor agent transcript in the real corpus (`cursor/`) parses
//! with no diagnostics into exactly the expected number of events of each
//! kind, with no times and unique ids.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_cursor_count.py` computes them with Python's `json`
//! module straight from the files, following the rules written down in
//! `src/provider/cursor.rs`. Re-run it with
//! `python3 tests/tools/real_cursor_count.py` after changing the rules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload, SystemCategory};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_cursor_count.py`; every other kind
/// is 0.
const EXPECTED: [(&str, [usize; 8]); 2] = [
    (
        "gitai_cursor-session-simple.jsonl",
        [1, 10, 0, 10, 0, 1, 0, 0],
    ),
    (
        "idahovault_35a82dfe-d4ab-4238-8135-22c978781bca.jsonl",
        [20, 133, 0, 222, 0, 4, 0, 0],
    ),
];

fn cursor() -> &'static dyn Provider {
    by_name("cursor").expect("cursor is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("cursor");
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
    let inc = read_path(path, cursor(), Limits::default(), &mut |e| events.push(e))
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
fn every_real_cursor_file_has_exact_counts_and_no_diagnostics() {
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
fn real_cursor_files_have_unique_ids_no_times_and_human_words_only_from_queries() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_files(&base) {
        let events = read_all(&path);
        let mut ids = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert!(e.timestamp.is_none(), "{} has a time", e.event_id);
            assert_eq!(&*e.session_id, path.file_stem().unwrap().to_string_lossy());
            if let Payload::UserMessage { text, .. } = &e.payload {
                assert!(!text.contains("<user_query>"), "{}", e.event_id);
                assert!(!text.contains("</user_query>"), "{}", e.event_id);
            }
        }
        // The notice saying so comes first.
        assert!(matches!(
            &events[0].payload,
            Payload::SystemMessage {
                category: SystemCategory::Notice,
                ..
            }
        ));
    }
}
