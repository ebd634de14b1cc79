//! Every Aider chat history in the real corpus (`aider/`) parses with no
//! diagnostics into exactly the expected number of events of each kind.
//!
//! The expected counts are not taken from kato:
//! `tests/tools/real_aider_count.py` computes them from the Markdown by
//! the format aider's `io.py` writes (chat starts, `#### ` input lines,
//! `> ` status runs, the rest replies), as written down in
//! `src/provider/aider.rs`. Re-run it with
//! `python3 tests/tools/real_aider_count.py` after changing the rules.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{assert_golden_counts, real_corpus};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

/// Output of `python3 tests/tools/real_aider_count.py`; every other kind is 0.
const EXPECTED: [(&str, [usize; 8]); 2] = [
    (
        "healthanalyzer_.aider.chat.history.md",
        [6, 6, 0, 0, 0, 17, 12, 0],
    ),
    ("noteapp_.aider.chat.history.md", [0, 0, 0, 0, 0, 1, 2, 0]),
];

fn aider() -> &'static dyn Provider {
    by_name("aider").expect("aider is registered")
}

fn real_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("aider");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| name(p).ends_with(".aider.chat.history.md"))
        .collect();
    files.sort();
    files
}

fn read_all(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, aider(), Limits::default(), &mut |e| events.push(e))
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
fn every_real_aider_file_has_exact_counts_and_no_diagnostics() {
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
        assert!(!kinds.contains(&Kind::KatoCommand));
        assert_golden_counts(&name(path), kinds, expected);
    }
}

#[test]
fn real_aider_files_have_one_session_unique_ids_and_models_on_replies() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in real_files(&base) {
        let events = read_all(&path);
        let sid = &events[0].session_id;
        assert!(sid.starts_with("aider-"), "{sid}");
        let mut ids = BTreeSet::new();
        for e in &events {
            assert!(ids.insert(e.event_id.clone()), "duplicate {}", e.event_id);
            assert_eq!(&e.session_id, sid);
            match &e.payload {
                Payload::ProviderInfo { topic, .. } if topic == "session_start" => {
                    assert!(e.timestamp.is_some());
                }
                Payload::AssistantMessage { .. } => {
                    assert!(e.model.is_some(), "{} has no model", e.event_id);
                    assert!(e.timestamp.is_none(), "no invented time");
                }
                _ => assert!(e.timestamp.is_none(), "no invented time"),
            }
        }
    }
}

/// The real history, laid out in a project folder, is listed by `kato
/// sessions --root` with that folder as its directory and the first typed
/// words (not aider's `/ask` commands) as its title.
#[test]
fn real_history_in_a_project_folder_is_listed() {
    let Some(base) = real_corpus() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = fs::canonicalize(dir.path()).expect("canonical");
    let project = root.join("work/health-analyzer-poc");
    fs::create_dir_all(&project).expect("mkdir");
    fs::copy(
        base.join("aider/healthanalyzer_.aider.chat.history.md"),
        project.join(".aider.chat.history.md"),
    )
    .expect("copy");
    fs::write(
        root.join("config.toml"),
        format!(
            "[state]\ndir = \"{}\"\n[sandbox]\nmode = \"best-effort\"\n",
            root.join("state").display()
        ),
    )
    .expect("config");
    let out = std::process::Command::new(crate::harness::BIN)
        .env_clear()
        .env("HOME", root.join("home"))
        .env("KATO_CONFIG", root.join("config.toml"))
        .args(["sessions", "--json", "--root"])
        .arg(root.join("work"))
        .output()
        .expect("run kato");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = rows
        .as_array()
        .and_then(|a| a.iter().find(|r| r["provider"] == "aider"))
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(row["cwd"].as_str(), project.to_str());
    assert_eq!(row["id"], "aider-20250922-120400");
    assert_eq!(row["first_activity"], "2025-09-22T12:04:00");
    assert_eq!(row["last_activity"], "2025-09-22T14:55:00");
    assert!(
        !row["title"].as_str().unwrap_or("/").starts_with('/'),
        "{row}"
    );
    assert_eq!(row["skipped"], 0);
}
