//! The Codex parser over every Codex file of the real corpus
//! (`fixtures/real/codex/`, see its MANIFEST.tsv and FORMATS.md §2).
//!
//! Golden numbers: the `GOLDEN` table was produced by
//! `python3 tests/tools/real_codex_counts.py`, an independent count that reads
//! each file with Python's `json` module and applies the mapping rules
//! written out in its docstring; it shares no code with the parser. The
//! per-file `event_msg.user_message` line counts are checked a third way
//! here, by a plain substring scan of the raw lines.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::harness::real_corpus;
use crate::harness::GOLDEN_KINDS;
use kato::event::{Event, Kind, Payload, SystemCategory};
use kato::provider::codex::Codex;
use kato::provider::{ctx_for_path, Provider};
use kato::reader::{feed_lines, read_path, Limits, Tail};

fn codex_files(base: &Path) -> Vec<PathBuf> {
    let dir = base.join("codex");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("real corpus not found at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no Codex files in {}", dir.display());
    files
}

/// System categories in the order of the golden table.
const CATS: [SystemCategory; 7] = [
    SystemCategory::InjectedContext,
    SystemCategory::Compaction,
    SystemCategory::SubagentPrompt,
    SystemCategory::UserShell,
    SystemCategory::Error,
    SystemCategory::Notice,
    SystemCategory::ModelInput,
];

/// (file, counts per GOLDEN_KINDS, counts per CATS, `event_msg.user_message` lines),
/// from `python3 tests/tools/real_codex_counts.py`.
#[rustfmt::skip]
const GOLDEN: &[(&str, [usize; 8], [usize; 7], usize)] = &[
    ("codex-0.0.0-source-unknown-apply-patch.jsonl", [8, 20, 28, 27, 27, 3, 82, 0], [3, 0, 0, 0, 0, 0, 0], 8),
    ("codex-0.116a-vscode-originator.jsonl", [2, 2, 1, 0, 0, 2, 11, 0], [2, 0, 0, 0, 0, 0, 0], 2),
    ("codex-0.117-input-image-view-image.jsonl", [77, 77, 100, 24, 24, 4, 435, 0], [4, 0, 0, 0, 0, 0, 0], 77),
    ("codex-0.117-mcp-websearch-compacted.jsonl", [19, 46, 49, 76, 70, 12, 201, 0], [9, 1, 0, 0, 0, 2, 0], 19),
    ("codex-0.121-codex-tui-originator.jsonl", [2, 0, 0, 0, 0, 6, 13, 0], [2, 0, 0, 2, 2, 0, 0], 2),
    ("codex-0.34-no-turn-context.jsonl", [49, 51, 119, 297, 297, 1, 345, 0], [1, 0, 0, 0, 0, 0, 0], 49),
    ("codex-0.36-resumed-two-session-meta.jsonl", [13, 20, 48, 58, 58, 4, 142, 0], [2, 0, 0, 0, 0, 2, 0], 13),
    ("codex-0.58-ghost-snapshot-custom-tool.jsonl", [1, 1, 43, 42, 42, 2, 131, 0], [2, 0, 0, 0, 0, 0, 0], 1),
    ("codex-0.63-meta-and-env-only.jsonl", [0, 0, 0, 0, 0, 1, 1, 0], [1, 0, 0, 0, 0, 0, 0], 0),
    ("codex-0.77-compacted.jsonl", [14, 13, 177, 189, 189, 4, 612, 0], [2, 1, 0, 0, 0, 1, 0], 14),
    ("codex-desktop-0.119a-forked-subagent.jsonl", [0, 13, 9, 43, 43, 5, 23, 0], [3, 0, 2, 0, 0, 0, 0], 2),
    ("codex-legacy-2025-08-record-type-state.jsonl", [1, 3, 9, 11, 11, 1, 27, 0], [1, 0, 0, 0, 0, 0, 0], 0),
];

fn parse(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, &Codex, Limits::default(), &mut |e| events.push(e)).unwrap();
    assert!(
        inc.diagnostics.is_empty(),
        "{}: {:?}",
        path.display(),
        inc.diagnostics
    );
    assert!(inc.reset.is_none());
    // Command events are derived from user messages downstream of the
    // provider; the counts here are the provider's own.
    events.retain(|e| e.kind() != Kind::KatoCommand);
    events
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// `event_msg.user_message` lines, by substring (every corpus line is
/// compact JSON with `type` first in the payload).
fn user_message_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#""type":"event_msg","payload":{"type":"user_message""#))
        .count()
}

#[test]
fn every_file_gives_the_golden_counts_without_diagnostics() {
    let Some(base) = real_corpus() else {
        return;
    };
    let files = codex_files(&base);
    let names: Vec<String> = files.iter().map(|p| name(p)).collect();
    let golden: Vec<&str> = GOLDEN.iter().map(|g| g.0).collect();
    assert_eq!(names, golden, "the corpus and the golden table differ");

    for (path, (file, kinds, cats, em_users)) in files.iter().zip(GOLDEN) {
        let events = parse(path);
        let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
        let mut by_cat: HashMap<&str, usize> = HashMap::new();
        for e in &events {
            *by_kind.entry(e.kind()).or_default() += 1;
            if let Payload::SystemMessage { category, .. } = &e.payload {
                *by_cat.entry(category.label()).or_default() += 1;
            }
        }
        let got: Vec<usize> = GOLDEN_KINDS
            .iter()
            .map(|k| by_kind.get(k).copied().unwrap_or(0))
            .collect();
        assert_eq!(got, kinds, "{file}: events per kind {GOLDEN_KINDS:?}");
        let total: usize = kinds.iter().sum();
        assert_eq!(events.len(), total, "{file}: events of other kinds");
        let got: Vec<usize> = CATS
            .iter()
            .map(|c| by_cat.get(c.label()).copied().unwrap_or(0))
            .collect();
        assert_eq!(got, cats, "{file}: system messages per category {CATS:?}");

        // One human message per `user_message` event (in a subagent thread
        // those are the prompts it was given, not human input).
        let lines = user_message_lines(path);
        assert_eq!(lines, *em_users, "{file}: user_message lines");
        let subagent = events.iter().any(|e| e.subagent.is_some());
        let humans = by_kind.get(&Kind::UserMessage).copied().unwrap_or(0);
        let prompts = by_cat
            .get(SystemCategory::SubagentPrompt.label())
            .copied()
            .unwrap_or(0);
        if file.starts_with("codex-legacy") {
            // No event stream: the one non-injected user-role item.
            assert_eq!((lines, humans), (0, 1), "{file}");
        } else if subagent {
            assert_eq!((humans, prompts), (0, lines), "{file}");
            assert!(events.iter().all(|e| e.subagent.is_some()), "{file}");
        } else {
            assert_eq!((humans, prompts), (lines, 0), "{file}");
        }
    }
}

#[test]
fn event_ids_are_unique_and_stable_across_parses() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in codex_files(&base) {
        let a = parse(&path);
        let b = parse(&path);
        let ids: Vec<&str> = a.iter().map(|e| e.event_id.as_str()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{}: duplicate ids", name(&path));
        let again: Vec<&str> = b.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, again, "{}", name(&path));
        let ja: Vec<String> = a
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let jb: Vec<String> = b
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        assert_eq!(ja, jb, "{}: events differ between parses", name(&path));
    }
}

#[test]
fn every_tool_result_has_its_call() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in codex_files(&base) {
        let events = parse(&path);
        let calls: HashSet<&str> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::ToolCall { tool_call_id, .. } => Some(tool_call_id.as_str()),
                _ => None,
            })
            .collect();
        for e in &events {
            if let Payload::ToolResult { tool_call_id, .. } = &e.payload {
                assert!(
                    calls.contains(tool_call_id.as_str()),
                    "{}: result {} has no call",
                    name(&path),
                    tool_call_id
                );
            }
        }
    }
}

/// `path_in_repository` of each Codex file, from MANIFEST.tsv.
fn manifest_paths(base: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(base.join("MANIFEST.tsv")).unwrap();
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            match cols.as_slice() {
                [file, "codex", _repo, path, ..] => Some((
                    file.trim_start_matches("codex/").to_owned(),
                    (*path).to_owned(),
                )),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn discovery_and_session_ids_follow_the_original_layout() {
    let Some(base) = real_corpus() else {
        return;
    };
    let paths = manifest_paths(&base);
    for path in codex_files(&base) {
        let file = name(&path);
        let original = paths
            .get(&file)
            .unwrap_or_else(|| panic!("{file} not in manifest"));
        // Relative to its root, as discovery would see it.
        let rel = ["/archived_sessions/", "/sessions/"]
            .iter()
            .find_map(|root| original.split_once(root).map(|(_, rel)| rel))
            .unwrap_or_else(|| panic!("{original}: no Codex root"));
        let ctx = Codex
            .classify(Path::new(rel))
            .unwrap_or_else(|| panic!("{rel} not classified"));
        let stem = rel.rsplit('/').next().unwrap().trim_end_matches(".jsonl");
        assert_eq!(ctx.file_tag, stem);
        assert_eq!(&stem[stem.len() - 36..], ctx.session_hint);

        let events = parse(&path);
        let sessions: HashSet<&str> = events.iter().map(|e| &*e.session_id).collect();
        assert_eq!(sessions.len(), 1, "{file}: {sessions:?}");
        let session = &*events[0].session_id;
        match &events[0].subagent {
            // A subagent thread belongs to its parent's session.
            Some(sub) => {
                assert_eq!(sub.id.as_deref(), Some(ctx.session_hint.as_str()));
                assert_eq!(sub.label.as_deref(), Some("Archimedes (explorer)"));
                assert_eq!(session, "019d9249-e0ee-7020-a305-b6369cd02251");
            }
            None => assert_eq!(session, ctx.session_hint, "{file}"),
        }
    }
}

#[test]
fn models_and_turns_come_from_turn_context() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in codex_files(&base) {
        let file = name(&path);
        let events = parse(&path);
        let models: HashSet<&str> = events.iter().filter_map(|e| e.model.as_deref()).collect();
        let text = std::fs::read_to_string(&path).unwrap();
        let assistant = events.iter().any(|e| e.kind() == Kind::AssistantMessage);
        if text.contains(r#""type":"turn_context""#) && assistant {
            assert!(!models.is_empty(), "{file}: no model");
            for m in &models {
                assert!(text.contains(&format!(r#""model":"{m}""#)), "{file}: {m}");
            }
        } else {
            assert!(models.is_empty(), "{file}: {models:?}");
        }
        for e in &events {
            if e.model.is_some() {
                assert!(
                    matches!(
                        e.kind(),
                        Kind::AssistantMessage | Kind::Thinking | Kind::ToolCall | Kind::ToolResult
                    ),
                    "{file}: model on {:?}",
                    e.kind()
                );
            }
        }
        if text.contains(r#""turn_id":""#) {
            assert!(events.iter().any(|e| e.turn_id.is_some()), "{file}");
        }
    }
}

/// Reading a file in two parts, with the parser context carried over
/// through `state()`/`restore()` (serialized as the daemon would), gives
/// the same events as one read.
#[test]
fn split_reads_with_restored_state_match_one_read() {
    let Some(base) = real_corpus() else {
        return;
    };
    for path in codex_files(&base) {
        let bytes = std::fs::read(&path).unwrap();
        let ctx = ctx_for_path(&Codex, &path);
        let whole = feed(&ctx, &bytes, 0, None);
        let ends: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        let step = (ends.len() / 12).max(1);
        for &cut in ends.iter().step_by(step) {
            let mut parser = Codex.parser(&ctx);
            let mut events = Vec::new();
            let mut diags = Vec::new();
            feed_lines(
                &mut &bytes[..cut],
                0,
                Tail::Hold,
                Limits::default(),
                parser.as_mut(),
                &mut |e| events.push(e),
                &mut diags,
            )
            .unwrap();
            let saved = serde_json::to_string(&parser.state()).unwrap();
            let state: serde_json::Value = serde_json::from_str(&saved).unwrap();
            let rest = feed(&ctx, &bytes[cut..], cut as u64, Some(&state));
            let split: Vec<String> = events
                .iter()
                .chain(rest.iter())
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
            let one: Vec<String> = whole
                .iter()
                .map(|e| serde_json::to_string(e).unwrap())
                .collect();
            assert_eq!(split, one, "{} cut at {cut}", name(&path));
            assert!(diags.is_empty());
        }
    }
}

fn feed(
    ctx: &kato::provider::FileCtx,
    bytes: &[u8],
    start: u64,
    state: Option<&serde_json::Value>,
) -> Vec<Event> {
    let mut parser = Codex.parser(ctx);
    if let Some(s) = state {
        parser.restore(s).unwrap();
    }
    let mut events = Vec::new();
    let mut diags = Vec::new();
    feed_lines(
        &mut &bytes[..],
        start,
        Tail::Final,
        Limits::default(),
        parser.as_mut(),
        &mut |e| events.push(e),
        &mut diags,
    )
    .unwrap();
    parser.flush(&mut |e| events.push(e));
    assert!(diags.is_empty());
    events
}

/// Resumed and forked files copy another session's history after their
/// own header; those records are marked copied and nothing else is.
/// Where each copy ends was read off the files: in the 0.36 resume the
/// copy's last line (323) is followed by the new turn 22.7 s later, the
/// copy itself written within 0.2 s; in the 0.119 fork the copy's last
/// line (18) is followed by a `task_started` whose time-ordered turn id
/// was minted after the fork began (the copied one, before).
#[test]
fn copied_history_is_marked_from_the_second_header_to_the_first_own_record() {
    let Some(base) = real_corpus() else {
        return;
    };
    // (file, 1-based lines holding copied records, copied human messages)
    let copies: [(&str, std::ops::RangeInclusive<usize>, usize); 2] = [
        ("codex-0.36-resumed-two-session-meta.jsonl", 2..=323, 5),
        ("codex-desktop-0.119a-forked-subagent.jsonl", 2..=18, 0),
    ];
    for path in codex_files(&base) {
        let file = name(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let line_of = |offset: u64| text[..offset as usize].matches('\n').count() + 1;
        let events = parse(&path);
        let (lines, want_humans) = match copies.iter().find(|c| c.0 == file) {
            Some((_, lines, humans)) => (Some(lines.clone()), *humans),
            None => (None, 0),
        };
        for e in &events {
            let line = line_of(e.source.offset);
            let in_copy = lines.as_ref().is_some_and(|l| l.contains(&line));
            assert_eq!(e.copied, in_copy, "{file}:{line} {e:?}");
        }
        let humans = events
            .iter()
            .filter(|e| e.copied && e.is_human_message())
            .count();
        assert_eq!(humans, want_humans, "{file}");
    }
}
