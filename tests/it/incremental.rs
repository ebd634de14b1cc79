//! Incremental reading: a file that grows in arbitrary byte pieces, read
//! after each piece with the persisted cursor, yields exactly the events of
//! one whole read — no loss, no duplicate, same order, same ids.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use kato::provider::{self, ctx_for_path, Provider};
use kato::reader::{read_increment, read_path, Cursor, Limits, Tail};

use crate::harness::real_corpus;
use proptest::prelude::*;

fn fixture_files(provider: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(provider);
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") || is_aider_chat(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no fixtures for {provider}");
    out
}

/// Aider's Markdown chat history, read as lines like JSON Lines.
fn is_aider_chat(p: &Path) -> bool {
    p.to_string_lossy().ends_with(".aider.chat.history.md")
}

fn events_json(events: &[kato::event::Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect()
}

/// Read `bytes` in one go, and again as a file growing at `cuts`.
fn whole_vs_pieces(provider: &'static dyn Provider, src: &Path, bytes: &[u8], cuts: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let name = src.file_name().unwrap();
    // The same parent directory name: some agents name the session by it.
    let whole_path = dir.path().join("whole/s").join(name);
    fs::create_dir_all(whole_path.parent().unwrap()).unwrap();
    fs::write(&whole_path, bytes).unwrap();
    let mut whole = Vec::new();
    let inc = read_path(&whole_path, provider, Limits::default(), &mut |e| {
        whole.push(e)
    })
    .unwrap();
    let whole_diags = inc.diagnostics.len();

    let grow_path = dir.path().join("grow/s").join(name);
    fs::create_dir_all(grow_path.parent().unwrap()).unwrap();
    fs::write(&grow_path, b"").unwrap();
    let ctx = ctx_for_path(provider, &grow_path);
    let mut cursor = Cursor::default();
    let mut pieces = Vec::new();
    let mut diags = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    bounds.sort_unstable();
    bounds.push(bytes.len());
    let mut written = 0;
    for (i, &b) in bounds.iter().enumerate() {
        let mut f = OpenOptions::new().append(true).open(&grow_path).unwrap();
        f.write_all(&bytes[written..b]).unwrap();
        written = b;
        let last = i + 1 == bounds.len();
        let mut file = fs::File::open(&grow_path).unwrap();
        let tail = if last { Tail::Final } else { Tail::Hold };
        let inc = read_increment(
            &mut file,
            provider,
            &ctx,
            &cursor,
            Limits::default(),
            tail,
            &mut |e| pieces.push(e),
        )
        .unwrap();
        assert!(inc.reset.is_none(), "unexpected reset {:?}", inc.reset);
        diags += inc.diagnostics.len();
        // The cursor survives persistence.
        let json = serde_json::to_string(&inc.cursor).unwrap();
        cursor = serde_json::from_str(&json).unwrap();
    }
    assert_eq!(diags, whole_diags, "{}", src.display());
    assert_eq!(
        events_json(&pieces),
        events_json(&whole),
        "{} cuts {cuts:?}",
        src.display()
    );
}

fn check_provider(name: &str, cuts: &[usize]) {
    let p = provider::by_name(name).unwrap();
    for f in fixture_files(name) {
        let bytes = fs::read(&f).unwrap();
        whole_vs_pieces(p, &f, &bytes, cuts);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn claude_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("claude", &cuts);
    }

    #[test]
    fn codex_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("codex", &cuts);
    }

    #[test]
    fn gemini_jsonl_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("gemini", &cuts);
    }

    #[test]
    fn copilot_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        // An `events.jsonl` is tagged by its directory, which the copies
        // here do not keep: each is read under its session's flat name
        // (the pre-1.0 layout of the same records).
        let p = provider::by_name("copilot").unwrap();
        for f in fixture_files("copilot") {
            let bytes = fs::read(&f).unwrap();
            let flat = match f.file_name() {
                Some(n) if n == "events.jsonl" => {
                    let dir = f.parent().and_then(Path::file_name).unwrap();
                    PathBuf::from(format!("{}.jsonl", dir.to_string_lossy()))
                }
                _ => f.clone(),
            };
            whole_vs_pieces(p, &flat, &bytes, &cuts);
        }
    }

    #[test]
    fn qwen_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("qwen", &cuts);
    }

    #[test]
    fn cursor_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("cursor", &cuts);
    }

    #[test]
    fn droid_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("droid", &cuts);
    }

    #[test]
    fn kimi_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("kimi", &cuts);
    }

    #[test]
    fn aider_pieces_equal_whole(cuts in proptest::collection::vec(0usize..1_000_000, 0..12)) {
        check_provider("aider", &cuts);
    }
}

/// The wider net: real agent files, cut at a handful of fixed points.
#[test]
fn real_corpus_pieces_equal_whole() {
    let Some(base) = real_corpus() else {
        return;
    };
    let mut checked = 0;
    for (name, dir) in [
        ("claude", "claude"),
        ("codex", "codex"),
        ("gemini", "gemini-jsonl"),
        ("copilot", "copilot-cli"),
        ("qwen", "qwen"),
        ("cursor", "cursor"),
        ("droid", "factory-droid"),
        ("kimi", "kimi-cli"),
        ("aider", "aider"),
    ] {
        let p = provider::by_name(name).unwrap();
        for e in fs::read_dir(base.join(dir)).unwrap() {
            let f = e.unwrap().path();
            if f.extension().is_none_or(|x| x != "jsonl") && !is_aider_chat(&f) {
                continue;
            }
            let bytes = fs::read(&f).unwrap();
            let n = bytes.len();
            let cuts = [
                1,
                n / 7,
                n / 3,
                n / 2 + 1,
                n * 2 / 3 + 5,
                n.saturating_sub(2),
            ];
            whole_vs_pieces(p, &f, &bytes, &cuts);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} real files checked");
}

#[test]
fn truncation_and_replacement_restart_from_zero() {
    truncation_and_replacement("claude");
}

#[test]
fn gemini_jsonl_truncation_and_replacement_restart_from_zero() {
    truncation_and_replacement("gemini");
}

#[test]
fn copilot_truncation_and_replacement_restart_from_zero() {
    truncation_and_replacement("copilot");
}

#[test]
fn qwen_truncation_and_replacement_restart_from_zero() {
    truncation_and_replacement("qwen");
}

#[test]
fn cursor_truncation_and_replacement_restart_from_zero() {
    truncation_and_replacement("cursor");
}

#[test]
fn droid_truncation_and_replacement_restart_from_zero() {
    truncation_and_replacement("droid");
}

#[test]
fn aider_truncation_and_replacement_restart_from_zero() {
    truncation_and_replacement("aider");
}

/// The largest JSON Lines fixture of `provider`, truncated to half after
/// a read, then replaced by a copy of itself.
fn truncation_and_replacement(provider: &str) {
    let p = provider::by_name(provider).unwrap();
    let src = fixture_files(provider)
        .into_iter()
        .max_by_key(|f| fs::metadata(f).unwrap().len())
        .unwrap();
    let bytes = fs::read(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(src.file_name().unwrap());
    fs::write(&path, &bytes).unwrap();
    let ctx = ctx_for_path(p, &path);
    let read = |cursor: &Cursor| {
        let mut ev = Vec::new();
        let mut f = fs::File::open(&path).unwrap();
        let inc = read_increment(
            &mut f,
            p,
            &ctx,
            cursor,
            Limits::default(),
            Tail::Hold,
            &mut |e| ev.push(e),
        )
        .unwrap();
        (inc, ev)
    };
    let (first, all) = read(&Cursor::default());
    assert!(!all.is_empty());
    // Truncate to half: reset, re-read from zero.
    let half = bytes.len() / 2;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(half as u64)
        .unwrap();
    let (inc, _) = read(&first.cursor);
    assert!(matches!(
        inc.reset,
        Some(kato::reader::Reset::Truncated { .. })
    ));
    // Replace with a new file (new inode) of the same content: reset.
    let tmp = dir.path().join("tmp");
    fs::write(&tmp, &bytes).unwrap();
    fs::rename(&tmp, &path).unwrap();
    let (inc2, again) = read(&inc.cursor);
    assert_eq!(inc2.reset, Some(kato::reader::Reset::Replaced));
    // Same content → same event ids: the consumer can drop the repeats.
    assert_eq!(
        again.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
        all.iter().map(|e| &e.event_id).collect::<Vec<_>>()
    );
}
