//! The Claude provider over every Claude file of the real corpus
//! (`shared/fixtures/real/claude`, see its `MANIFEST.tsv` and `FORMATS.md`).
//!
//! The golden numbers below were NOT taken from this parser's output. They
//! were produced by `tests/fixtures/claude/count_events.py`, a separate
//! implementation of the mapping rules written over plain JSON objects:
//!
//! ```text
//! python3 tests/fixtures/claude/count_events.py ../shared/fixtures/real/claude/*.jsonl
//! ```
//!
//! and cross-checked against the corpus totals in `FORMATS.md`: 724
//! `tool_use` blocks (723 tool calls + 1 `ExitPlanMode` decision prompt) and
//! as many results, 469 assistant `text` blocks (463 assistant messages + 6
//! `<synthetic>` system messages), 100 `thinking` blocks, and 516
//! bookkeeping records (139 progress, 90 file-history-snapshot, 76
//! turn_duration/stop_hook_summary, 61 attachment, 39 last-prompt, 37
//! ai-title, 34 permission-mode, 28 agent-name, 8 queue-operation,
//! 4 summary).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::harness::real_corpus;
use kato::event::{Event, Payload, SystemCategory};
use kato::provider::claude::{Claude, SIDE_QUESTION_LABEL};
use kato::provider::{FileCtx, Provider};
use kato::reader::{feed_lines, read_increment, read_path, Cursor, Limits, Tail};

struct Golden {
    file: &'static str,
    /// Session every event must belong to when the file sits at its
    /// original place (`path_in_repository`).
    session: &'static str,
    counts: &'static [(&'static str, u32)],
}

const GOLDEN: &[Golden] = &[
    Golden {
        file: "claude-1.0.59-compact-inline-sidechain.jsonl",
        session: "e9873c5d-0ff4-49ca-bd9c-eb019c5f1b99",
        counts: &[
            ("assistant.message", 148),
            ("assistant.tool.call", 185),
            ("assistant.tool.result", 185),
            ("system.message", 3),
            ("system.message/compaction", 1),
            ("system.message/notice", 1),
            ("system.message/subagent-prompt", 1),
            ("user.message", 20),
        ],
    },
    Golden {
        file: "claude-1.0.62-image-longlines.jsonl",
        session: "b9a784b7-1773-43e3-8ee7-819baedfb48c",
        counts: &[
            ("assistant.message", 49),
            ("assistant.tool.call", 56),
            ("assistant.tool.result", 56),
            ("system.message", 6),
            ("system.message/command-wrapper", 5),
            ("system.message/notice", 1),
            ("user.message", 13),
        ],
    },
    Golden {
        file: "claude-2.0.2-compact-boundary-images.jsonl",
        session: "354b2588-2a5c-43d7-b678-e95a4a87bd2a",
        counts: &[
            ("assistant.message", 124),
            ("assistant.tool.call", 226),
            ("assistant.tool.result", 226),
            ("provider.info", 3),
            ("system.message", 44),
            ("system.message/compaction", 2),
            ("system.message/error", 4),
            ("system.message/ide-context", 36),
            ("system.message/notice", 2),
            ("user.message", 50),
        ],
    },
    Golden {
        file: "claude-2.0.2-summary-only.jsonl",
        // No sessionId in the file: the file name is the session.
        session: "3d9a9355-1027-4407-8106-cc7386e6862f",
        counts: &[("provider.info", 1)],
    },
    Golden {
        file: "claude-2.1.1-agent-ae7f6bd-warmup-rootlayout.jsonl",
        session: "0890bead-0ab3-4ee9-98f8-585fd289cc1f",
        counts: &[
            ("assistant.message", 2),
            ("assistant.tool.call", 2),
            ("assistant.tool.result", 2),
            ("system.message", 1),
            ("system.message/subagent-prompt", 1),
        ],
    },
    Golden {
        file: "claude-2.1.1-queue-turn-duration.jsonl",
        session: "0890bead-0ab3-4ee9-98f8-585fd289cc1f",
        counts: &[
            ("assistant.message", 21),
            ("assistant.thinking", 39),
            ("assistant.tool.call", 37),
            ("assistant.tool.result", 37),
            ("provider.info", 16),
            ("user.message", 7),
        ],
    },
    Golden {
        file: "claude-2.1.150-compact-agent-name.jsonl",
        session: "c0dddd8d-6c0f-4a12-8927-28271848cfc7",
        counts: &[
            ("assistant.decision.prompt", 1),
            ("assistant.message", 65),
            ("assistant.thinking", 38),
            ("assistant.tool.call", 107),
            ("assistant.tool.result", 107),
            ("provider.info", 270),
            ("system.message", 6),
            ("system.message/command-wrapper", 4),
            ("system.message/compaction", 2),
            ("user.decision.response", 1),
            ("user.message", 27),
        ],
    },
    Golden {
        file: "claude-2.1.78-progress-records.jsonl",
        session: "5abbc087-43b9-42d7-b2df-380ab0408607",
        counts: &[
            ("assistant.message", 3),
            ("assistant.thinking", 3),
            ("assistant.tool.call", 7),
            ("assistant.tool.result", 7),
            ("provider.info", 83),
            ("system.message", 1),
            ("system.message/command-wrapper", 1),
            ("user.message", 3),
        ],
    },
    Golden {
        file: "claude-2.1.78-subagents-agent-a2207d29b06d6f51b.jsonl",
        session: "5abbc087-43b9-42d7-b2df-380ab0408607",
        counts: &[
            ("assistant.message", 9),
            ("assistant.tool.call", 33),
            ("assistant.tool.result", 33),
            ("provider.info", 65),
            ("system.message", 1),
            ("system.message/subagent-prompt", 1),
        ],
    },
    Golden {
        file: "claude-2.1.88-subagents-agent-a2031b11586512707.jsonl",
        session: "995e76d3-7760-49f1-a8b7-9a806038cd27",
        counts: &[
            ("assistant.message", 4),
            ("assistant.tool.call", 5),
            ("assistant.tool.result", 5),
            ("system.message", 1),
            ("system.message/subagent-prompt", 1),
        ],
    },
    Golden {
        file: "claude-2.1.89-api-error-only.jsonl",
        session: "b0ccba2b-8180-4d9f-b0dc-f60e6486777e",
        counts: &[
            ("provider.info", 2),
            ("system.message", 4),
            ("system.message/error", 4),
            ("user.message", 1),
        ],
    },
    Golden {
        file: "claude-2.1.92-96-version-change.jsonl",
        session: "7ef4b236-d946-48a6-a856-e45b02af7be7",
        counts: &[
            ("assistant.message", 31),
            ("assistant.thinking", 13),
            ("assistant.tool.call", 41),
            ("assistant.tool.result", 41),
            ("provider.info", 70),
            ("system.message", 12),
            ("system.message/command-wrapper", 7),
            ("system.message/error", 1),
            ("system.message/notice", 4),
            ("user.message", 24),
        ],
    },
    Golden {
        file: "claude-2.1.92-subagents-agent-aside_question.jsonl",
        session: "7ef4b236-d946-48a6-a856-e45b02af7be7",
        counts: &[
            ("assistant.message", 7),
            ("assistant.thinking", 7),
            ("assistant.tool.call", 24),
            ("assistant.tool.result", 24),
            ("provider.info", 6),
            ("system.message", 11),
            ("system.message/command-wrapper", 6),
            ("system.message/injected-context", 1),
            ("system.message/subagent-prompt", 4),
        ],
    },
];

/// What `classify` must say about a corpus file at its original place.
#[derive(Debug, PartialEq)]
enum Expect {
    Main,
    Subagent { id: &'static str, side: bool },
    NotSession,
}

fn expected_class(file: &str) -> Expect {
    match file {
        "claude-2.1.1-agent-ae7f6bd-warmup-rootlayout.jsonl" => Expect::Subagent {
            id: "ae7f6bd",
            side: false,
        },
        "claude-2.1.78-subagents-agent-a2207d29b06d6f51b.jsonl" => Expect::Subagent {
            id: "a2207d29b06d6f51b",
            side: false,
        },
        "claude-2.1.88-subagents-agent-a2031b11586512707.jsonl" => Expect::Subagent {
            id: "a2031b11586512707",
            side: false,
        },
        "claude-2.1.92-subagents-agent-aside_question.jsonl" => Expect::Subagent {
            id: "aside_question-fcbf929fc3d4fdc0",
            side: true,
        },
        f if f.ends_with(".jsonl") => Expect::Main,
        _ => Expect::NotSession,
    }
}

/// Claude rows of the manifest: (corpus file name, path under `.claude/projects/`).
fn manifest(base: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(base.join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(1) == Some(&"claude")).then(|| {
                let file = cols[0].trim_start_matches("claude/").to_owned();
                let orig = cols[3]
                    .split_once(".claude/projects/")
                    .map(|(_, rel)| rel.to_owned())
                    .unwrap();
                (file, orig)
            })
        })
        .collect()
}

/// Count key of an event: its kind, plus `system.message/<category>`.
fn keys(ev: &Event) -> Vec<String> {
    let mut k = vec![ev.kind().as_str().to_owned()];
    if let Payload::SystemMessage { category, .. } = &ev.payload {
        let c = serde_json::to_value(category).unwrap();
        k.push(format!("system.message/{}", c.as_str().unwrap()));
    }
    k
}

fn counts(events: &[Event]) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for ev in events {
        for k in keys(ev) {
            *m.entry(k).or_default() += 1;
        }
    }
    m
}

fn golden_counts(g: &Golden) -> BTreeMap<String, u32> {
    g.counts
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect()
}

fn parse_with_read_path(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, &Claude, Limits::default(), &mut |e| events.push(e)).unwrap();
    assert!(
        inc.diagnostics.is_empty(),
        "{}: {:?}",
        path.display(),
        inc.diagnostics
    );
    assert_eq!(inc.events, events.len() as u64);
    events
}

fn parse_with_ctx(path: &Path, ctx: &FileCtx) -> Vec<Event> {
    let mut events = Vec::new();
    let mut file = File::open(path).unwrap();
    let inc = read_increment(
        &mut file,
        &Claude,
        ctx,
        &Cursor::default(),
        Limits::default(),
        Tail::Final,
        &mut |e| events.push(e),
    )
    .unwrap();
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    events
}

fn claude_dir(base: &Path) -> PathBuf {
    base.join("claude")
}

#[test]
fn every_corpus_file_is_covered() {
    let Some(base) = real_corpus() else {
        return;
    };
    let mut on_disk: Vec<String> = std::fs::read_dir(claude_dir(&base))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut in_manifest: Vec<String> = manifest(&base).into_iter().map(|(f, _)| f).collect();
    in_manifest.sort();
    assert_eq!(on_disk, in_manifest);
    let jsonl: BTreeSet<&str> = on_disk
        .iter()
        .map(String::as_str)
        .filter(|f| f.ends_with(".jsonl"))
        .collect();
    let golden: BTreeSet<&str> = GOLDEN.iter().map(|g| g.file).collect();
    assert_eq!(jsonl, golden);
}

#[test]
fn classify_original_paths() {
    let Some(base) = real_corpus() else {
        return;
    };
    for (file, orig) in manifest(&base) {
        let ctx = Claude.classify(Path::new(&orig));
        match (expected_class(&file), ctx) {
            (Expect::NotSession, None) => {}
            (Expect::Main, Some(ctx)) => {
                assert_eq!(ctx.subagent, None, "{file}");
                assert_eq!(
                    Some(ctx.session_hint.as_str()),
                    Path::new(&orig).file_stem().and_then(|s| s.to_str())
                );
            }
            (Expect::Subagent { id, side }, Some(ctx)) => {
                let sub = ctx.subagent.unwrap();
                assert_eq!(sub.id.as_deref(), Some(id), "{file}");
                assert_eq!(
                    sub.label.as_deref(),
                    side.then_some(SIDE_QUESTION_LABEL),
                    "{file}"
                );
            }
            (want, got) => panic!("{file} ({orig}): want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn event_counts_match_the_golden_numbers() {
    let Some(base) = real_corpus() else {
        return;
    };
    for g in GOLDEN {
        let events = parse_with_read_path(&claude_dir(&base).join(g.file));
        assert_eq!(counts(&events), golden_counts(g), "{}", g.file);
    }
}

#[test]
fn original_layout_gives_the_same_events_in_the_parent_session() {
    let Some(base) = real_corpus() else {
        return;
    };
    let originals: BTreeMap<String, String> = manifest(&base).into_iter().collect();
    for g in GOLDEN {
        let path = claude_dir(&base).join(g.file);
        let ctx = Claude.classify(Path::new(&originals[g.file])).unwrap();
        let events = parse_with_ctx(&path, &ctx);
        assert_eq!(counts(&events), golden_counts(g), "{}", g.file);
        for ev in &events {
            assert_eq!(&*ev.session_id, g.session, "{} {}", g.file, ev.event_id);
            assert_eq!(ev.source.file.as_deref(), Some(ctx.file_tag.as_str()));
        }
        let subagent_file = ctx.subagent.is_some();
        for ev in &events {
            if subagent_file {
                assert!(ev.subagent.is_some(), "{} {}", g.file, ev.event_id);
            }
            if ev.is_human_message() {
                assert!(!subagent_file);
            }
        }
        // With the corpus names (no layout), sidechain flags still mark
        // all subagent work, and nothing else changes.
        // Offset-based ids carry the file tag, which follows the file name.
        let flat = parse_with_read_path(&path);
        let flat_tag = kato::provider::stem(&path);
        assert_eq!(flat.len(), events.len());
        for (a, b) in flat.iter().zip(&events) {
            assert_eq!(a.event_id.replace(&flat_tag, &ctx.file_tag), b.event_id);
            assert_eq!(a.kind(), b.kind());
            assert_eq!(a.subagent.is_some(), b.subagent.is_some(), "{}", a.event_id);
        }
    }
}

#[test]
fn event_ids_are_unique_and_stable() {
    let Some(base) = real_corpus() else {
        return;
    };
    for g in GOLDEN {
        let path = claude_dir(&base).join(g.file);
        let first = parse_with_read_path(&path);
        let mut seen = HashSet::new();
        for ev in &first {
            // No documented exception applies inside one corpus file: every
            // uuid occurs once per file (FORMATS.md 1.8: only a side-question
            // file repeats uuids, and those are its parent's).
            assert!(
                seen.insert(ev.event_id.clone()),
                "{}: duplicate {}",
                g.file,
                ev.event_id
            );
        }
        let second = parse_with_read_path(&path);
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&second).unwrap(),
            "{}",
            g.file
        );
    }
}

/// Tool calls whose id occurs a second time in the same file. The 2.0.2
/// file holds three replays of earlier history after `summary` lines (new
/// `uuid`s, one timestamp per batch, same message and tool ids), so 54 of
/// its tool calls, and their results, appear twice.
fn repeated_calls(file: &str) -> usize {
    match file {
        "claude-2.0.2-compact-boundary-images.jsonl" => 54,
        _ => 0,
    }
}

#[test]
fn every_result_answers_a_call_of_the_same_file() {
    let Some(base) = real_corpus() else {
        return;
    };
    for g in GOLDEN {
        let events = parse_with_read_path(&claude_dir(&base).join(g.file));
        let mut calls = HashSet::new();
        let mut repeated = 0;
        let mut prompts = HashSet::new();
        let mut results = 0;
        for ev in &events {
            match &ev.payload {
                Payload::ToolCall { tool_call_id, .. } if !calls.insert(tool_call_id.clone()) => {
                    repeated += 1;
                }
                Payload::DecisionPrompt { prompt_id, .. } => {
                    assert!(prompts.insert(prompt_id.clone()))
                }
                Payload::ToolResult { tool_call_id, .. } => {
                    results += 1;
                    assert!(
                        calls.contains(tool_call_id),
                        "{}: orphan result {tool_call_id}",
                        g.file
                    );
                }
                Payload::DecisionResponse { prompt_id, .. } => {
                    assert!(
                        prompts.contains(prompt_id),
                        "{}: orphan response {prompt_id}",
                        g.file
                    );
                }
                _ => {}
            }
        }
        assert_eq!(repeated, repeated_calls(g.file), "{}", g.file);
        // And, in this corpus, every call has exactly one result.
        assert_eq!(results, calls.len() + repeated, "{}", g.file);
    }
}

#[test]
fn side_question_repeats_parent_ids() {
    let Some(base) = real_corpus() else {
        return;
    };
    let parent =
        parse_with_read_path(&claude_dir(&base).join("claude-2.1.92-96-version-change.jsonl"));
    let aside = parse_with_read_path(
        &claude_dir(&base).join("claude-2.1.92-subagents-agent-aside_question.jsonl"),
    );
    let parent_ids: HashSet<&str> = parent.iter().map(|e| e.event_id.as_str()).collect();
    let shared = aside
        .iter()
        .filter(|e| parent_ids.contains(e.event_id.as_str()))
        .count();
    // FORMATS.md 1.8: 76 of the 78 records are the parent's.
    assert!(shared >= 70, "{shared}");
    for ev in &aside {
        let sub = ev.subagent.as_ref().unwrap();
        assert_eq!(sub.label.as_deref(), Some(SIDE_QUESTION_LABEL));
        assert!(!ev.is_human_message());
    }
    let question = aside.iter().rev().find_map(|e| match &e.payload {
        Payload::SystemMessage {
            category: SystemCategory::SubagentPrompt,
            text,
        } => Some(text.as_str()),
        _ => None,
    });
    assert_eq!(question, Some("firstavailable具体用法是什么"));
}

#[test]
fn progress_copies_are_not_messages() {
    let Some(base) = real_corpus() else {
        return;
    };
    let events =
        parse_with_read_path(&claude_dir(&base).join("claude-2.1.78-progress-records.jsonl"));
    let agent_progress = events
        .iter()
        .filter(|e| matches!(&e.payload, Payload::ProviderInfo { topic, .. } if topic == "agent_progress"))
        .count();
    assert_eq!(agent_progress, 67);
    // The three human prompts, not the copies of subagent messages, and not
    // the queued copies of the same prompts.
    let human: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::UserMessage { text, .. } if e.is_human_message() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(human.len(), 3);
    assert!(human[1].starts_with("帮我导出成md"));
}

#[test]
fn titles_and_models() {
    let Some(base) = real_corpus() else {
        return;
    };
    let events =
        parse_with_read_path(&claude_dir(&base).join("claude-2.1.150-compact-agent-name.jsonl"));
    let titles: BTreeSet<String> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ProviderInfo { topic, data } if topic == "title" => {
                Some(serde_json::from_str::<String>(data.get()).unwrap())
            }
            _ => None,
        })
        .collect();
    // FORMATS.md 1.2: the 2.1.150 file has two different titles.
    assert_eq!(titles.len(), 2, "{titles:?}");
    for ev in &events {
        let assistant_kind = matches!(
            ev.payload,
            Payload::AssistantMessage { .. }
                | Payload::Thinking { .. }
                | Payload::ToolCall { .. }
                | Payload::DecisionPrompt { .. }
        );
        assert_eq!(assistant_kind, ev.model.is_some(), "{}", ev.event_id);
    }
}

/// Reading a file in two parts, with the parser state carried through
/// `state()`/`restore()`, gives the events of one read.
#[test]
fn split_reads_with_state_round_trip_match_one_read() {
    let Some(base) = real_corpus() else {
        return;
    };
    for g in GOLDEN {
        let path = claude_dir(&base).join(g.file);
        let bytes = std::fs::read(&path).unwrap();
        let ctx = kato::provider::ctx_for_path(&Claude, &path);
        let whole = serde_json::to_string(&parse_with_read_path(&path)).unwrap();
        let mut cuts: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        // A cut between a decision prompt and its answer must carry the
        // pending prompt over.
        let prompt_line = find(&bytes, br#""name":"ExitPlanMode""#)
            .map(|at| at + bytes[at..].iter().position(|b| *b == b'\n').unwrap() + 1);
        let step = (cuts.len() / 6).max(1);
        cuts = cuts
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, c)| i % step == 0 || Some(*c) == prompt_line)
            .map(|(_, c)| c)
            .collect();
        for cut in cuts {
            let mut events = Vec::new();
            let mut diags = Vec::new();
            let mut p1 = Claude.parser(&ctx);
            let end = feed_lines(
                &mut &bytes[..cut],
                0,
                Tail::Hold,
                Limits::default(),
                p1.as_mut(),
                &mut |e| events.push(e),
                &mut diags,
            )
            .unwrap();
            assert_eq!(end, cut as u64);
            let state = p1.state();
            if Some(cut) == prompt_line {
                assert!(
                    state["pending_prompts"]
                        .as_array()
                        .is_some_and(|a| a.len() == 1),
                    "{state}"
                );
            }
            let mut p2 = Claude.parser(&ctx);
            if !state.is_null() {
                p2.restore(&state).unwrap();
            }
            feed_lines(
                &mut &bytes[cut..],
                cut as u64,
                Tail::Final,
                Limits::default(),
                p2.as_mut(),
                &mut |e| events.push(e),
                &mut diags,
            )
            .unwrap();
            assert!(diags.is_empty());
            assert_eq!(
                serde_json::to_string(&events).unwrap(),
                whole,
                "{} cut at {cut}",
                g.file
            );
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Claude Code 2.0 re-writes history into the same transcript when a
/// session is resumed (new uuids, one timestamp per batch): the 2.0.2 file
/// holds five such batches, 21 human messages in them (lines 105–347,
/// read off the file: each shares its millisecond with the record before
/// it). Those are marked copied, each repeats an earlier message's text,
/// and nothing else in the corpus is marked — with the original layout,
/// so the transcript's own session id is known too.
#[test]
fn rewritten_history_is_copied_and_nothing_else_is() {
    let Some(base) = real_corpus() else {
        return;
    };
    let originals: BTreeMap<String, String> = manifest(&base).into_iter().collect();
    for g in GOLDEN {
        let ctx = Claude.classify(Path::new(&originals[g.file])).unwrap();
        let events = parse_with_ctx(&claude_dir(&base).join(g.file), &ctx);
        let mut earlier: Vec<&str> = Vec::new();
        let mut copied = 0;
        for ev in &events {
            let Payload::UserMessage { text, .. } = &ev.payload else {
                assert!(!ev.copied, "{} {}", g.file, ev.event_id);
                continue;
            };
            if ev.copied {
                copied += 1;
                assert!(
                    earlier.contains(&text.as_str()),
                    "{} {}",
                    g.file,
                    ev.event_id
                );
            } else {
                earlier.push(text);
            }
        }
        let want = if g.file == "claude-2.0.2-compact-boundary-images.jsonl" {
            21
        } else {
            0
        };
        assert_eq!(copied, want, "{}", g.file);
    }
}
