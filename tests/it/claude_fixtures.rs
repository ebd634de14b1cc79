//! The Claude provider over the synthetic fixtures in `tests/fixtures/claude/`:
//! a `projects/` tree laid out the way Claude Code writes it (main
//! transcripts, both subagent layouts, a side question, sidecar files, a
//! 1.0.x file with inline sidechains, a summary-only file) and a file of
//! poisoned lines. Every expected value below is written out by hand from
//! the fixture lines.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use kato::event::{Event, Payload};
use kato::provider::claude::{Claude, SIDE_QUESTION_LABEL};
use kato::provider::{FileCtx, Provider};
use kato::reader::{read_increment, read_path, Cursor, DiagKind, Limits, Tail};

const S: &str = "11111111-2222-4333-8444-555555555555";
const S_OLD: &str = "22222222-3333-4444-8555-666666666666";
const S_SUM: &str = "33333333-4444-4555-8666-777777777777";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude")
}

fn projects() -> PathBuf {
    root().join("projects")
}

/// Every file under `dir`, as paths relative to it, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    fn go(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                go(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}

/// Parse one file of the tree with the context its path gives it.
fn parse(rel: &str) -> (FileCtx, Vec<Event>) {
    let ctx = Claude.classify(Path::new(rel)).unwrap();
    let mut file = File::open(projects().join(rel)).unwrap();
    let mut events = Vec::new();
    let inc = read_increment(
        &mut file,
        &Claude,
        &ctx,
        &Cursor::default(),
        Limits::default(),
        Tail::Final,
        &mut |e| events.push(e),
    )
    .unwrap();
    assert!(inc.diagnostics.is_empty(), "{rel}: {:?}", inc.diagnostics);
    (ctx, events)
}

/// `kind`, or `system.message/<category>`.
fn key(ev: &Event) -> String {
    match &ev.payload {
        Payload::SystemMessage { category, .. } => format!(
            "system.message/{}",
            serde_json::to_value(category).unwrap().as_str().unwrap()
        ),
        p => p.kind().as_str().to_owned(),
    }
}

fn keys(events: &[Event]) -> Vec<String> {
    events.iter().map(key).collect()
}

fn human_texts(events: &[Event]) -> Vec<(&str, u32)> {
    events
        .iter()
        .filter(|e| e.is_human_message())
        .map(|e| match &e.payload {
            Payload::UserMessage { text, attachments } => (text.as_str(), *attachments),
            _ => unreachable!(),
        })
        .collect()
}

fn main_rel() -> String {
    format!("-home-dev-proj/{S}.jsonl")
}

#[test]
fn discovery_over_the_tree() {
    let mut found = BTreeMap::new();
    for rel in walk(&projects()) {
        let ctx = Claude.classify(&rel);
        let desc = ctx.map(|c| {
            format!(
                "{} {} {:?}",
                c.session_hint,
                c.file_tag,
                c.subagent.map(|s| (s.id, s.label))
            )
        });
        found.insert(rel.to_string_lossy().into_owned(), desc);
    }
    let side = SIDE_QUESTION_LABEL;
    let want: BTreeMap<String, Option<String>> = [
        (format!("-home-dev-old/{S_OLD}.jsonl"), Some(format!("{S_OLD} {S_OLD} None"))),
        (format!("-home-dev-old/{S_SUM}.jsonl"), Some(format!("{S_SUM} {S_SUM} None"))),
        (main_rel(), Some(format!("{S} {S} None"))),
        (
            format!("-home-dev-proj/{S}/subagents/agent-a0123456789abcdef.jsonl"),
            Some(format!(
                "{S} agent-a0123456789abcdef Some((Some(\"a0123456789abcdef\"), None))"
            )),
        ),
        (format!("-home-dev-proj/{S}/subagents/agent-a0123456789abcdef.meta.json"), None),
        (
            format!("-home-dev-proj/{S}/subagents/agent-aside_question-0123456789abcdef.jsonl"),
            Some(format!(
                "{S} agent-aside_question-0123456789abcdef Some((Some(\"aside_question-0123456789abcdef\"), Some(\"{side}\")))"
            )),
        ),
        (format!("-home-dev-proj/{S}/tool-results/toolu_s1.txt"), None),
        (
            "-home-dev-proj/agent-abc1234.jsonl".to_owned(),
            Some("agent-abc1234 agent-abc1234 Some((Some(\"abc1234\"), None))".to_owned()),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(found, want);
}

#[test]
fn main_transcript_maps_every_line() {
    let (_, events) = parse(&main_rel());
    let want = [
        "provider.info",                  // file-history-snapshot
        "system.message/command-wrapper", // <local-command-caveat>, isMeta
        "system.message/command-wrapper", // <command-name>/model
        "system.message/command-wrapper", // <local-command-stdout>
        "provider.info",                  // queue-operation enqueue
        "provider.info",                  // queue-operation dequeue
        "user.message",                   // the prompt the queue delivered
        "user.kato-command",              // its `::record /tmp/review.md` line (invalid form)
        "provider.info",                  // attachment task_reminder
        "assistant.thinking",             // empty thinking, kept as a marker
        "assistant.message",
        "assistant.tool.call", // Bash
        "provider.info",       // hook_progress
        "assistant.tool.result",
        "assistant.tool.call", // Agent
        "provider.info",       // agent_progress copy of the subagent prompt
        "assistant.tool.result",
        "assistant.decision.prompt", // AskUserQuestion
        "user.decision.response",
        "assistant.decision.prompt", // ExitPlanMode
        "user.decision.response",
        "system.message/ide-context", // <ide_opened_file> block …
        "user.message",               // … and the prompt beside it
        "user.kato-command",          // its `::stop` line
        "system.message/injected-context",
        "system.message/notice", // [Request interrupted by user]
        "system.message/error",  // <synthetic> API error
        "system.message/error",  // system api_error
        "system.message/notice", // system informational
        "provider.info",         // turn_duration
        "provider.info",         // stop_hook_summary
        "system.message/notice", // stop hook feedback
        "system.message/compaction",
        "system.message/compaction",
        "provider.info", // attachment compact_file_reference
        "system.message/command-wrapper",
        "system.message/user-shell",
        "system.message/user-shell",
        "user.message",          // image + text
        "provider.raw",          // redacted_thinking block
        "system.message/notice", // "No response requested."
        "provider.info",         // ai-title
        "provider.info",         // agent-name
        "provider.info",         // last-prompt
        "provider.info",         // permission-mode
        "provider.info",         // summary
        "provider.raw",          // unknown record type
        "provider.raw",          // unknown system subtype
    ];
    assert_eq!(keys(&events), want);
    assert_eq!(
        human_texts(&events),
        [
            ("please review\n::record /tmp/review.md", 0),
            ("ok, just patch it\n::stop", 0),
            ("[Image #1] what is this?", 1),
        ]
    );
    for ev in &events {
        assert_eq!(&*ev.session_id, S);
        assert_eq!(ev.subagent, None);
        assert_eq!(ev.source.file.as_deref(), Some(S));
    }
    // Ids: the record uuid, `#n` for further events of one line, the
    // offset for records without uuid.
    assert_eq!(events[0].event_id, format!("{S}:0"));
    assert_eq!(events[6].event_id, "00000000-0000-4000-8000-000000000007");
    assert_eq!(events[6].turn_id.as_deref(), Some("prompt-1"));
    assert_eq!(events[21].event_id, events[22].event_id.replace("#1", ""));
    assert!(events[22].event_id.ends_with("#1"));
    assert_eq!(events[22].turn_id.as_deref(), Some("prompt-2"));

    match (&events[17].payload, &events[18].payload) {
        (
            Payload::DecisionPrompt {
                prompt_id,
                name,
                text,
            },
            Payload::DecisionResponse {
                prompt_id: answered,
                text: answer,
            },
        ) => {
            assert_eq!(
                (prompt_id.as_str(), name.as_str()),
                ("toolu_03", "AskUserQuestion")
            );
            assert_eq!(
                text,
                "Which fix do you want?\n- Small: Patch only the call\n- Full: Rewrite the parser"
            );
            assert_eq!(answered, "toolu_03");
            assert!(answer.contains("=\"Small\""));
        }
        other => panic!("{other:?}"),
    }
    match (&events[19].payload, &events[20].payload) {
        (
            Payload::DecisionPrompt { name, text, .. },
            Payload::DecisionResponse {
                prompt_id,
                text: answer,
            },
        ) => {
            assert_eq!(name, "ExitPlanMode");
            assert_eq!(text, "# Plan\n\n1. Patch the call site.\n2. Add a test.");
            assert_eq!(prompt_id, "toolu_04");
            assert!(answer.contains("rejected"));
        }
        other => panic!("{other:?}"),
    }
    match &events[16].payload {
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => {
            assert_eq!(tool_call_id, "toolu_02");
            assert_eq!(
                output,
                "parse() is called from main.rs:12\nagentId: a0123456789abcdef"
            );
            assert!(!is_error);
        }
        p => panic!("{p:?}"),
    }
    match &events[27].payload {
        Payload::SystemMessage { text, .. } => {
            assert_eq!(text, "API error 429: Rate limited (retry 1/10)")
        }
        p => panic!("{p:?}"),
    }
    let topics: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ProviderInfo { topic, .. } => Some(topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        topics,
        [
            "file_history_snapshot",
            "queue_operation",
            "queue_operation",
            "attachment/task_reminder",
            "hook_progress",
            "agent_progress",
            "turn_duration",
            "stop_hook_summary",
            "attachment/compact_file_reference",
            "title",
            "agent_name",
            "last_prompt",
            "permission_mode",
            "summary",
        ]
    );
    match &events[41].payload {
        Payload::ProviderInfo { data, .. } => assert_eq!(data.get(), r#""Patch the parse() call""#),
        p => panic!("{p:?}"),
    }
    let models: Vec<Option<&str>> = events[9..12].iter().map(|e| e.model.as_deref()).collect();
    assert_eq!(models, [Some("claude-opus-4-6"); 3]);
}

#[test]
fn new_layout_subagent_belongs_to_the_parent_session() {
    let (_, events) = parse(&format!(
        "-home-dev-proj/{S}/subagents/agent-a0123456789abcdef.jsonl"
    ));
    assert_eq!(
        keys(&events),
        [
            "system.message/subagent-prompt",
            "assistant.tool.call",
            "assistant.tool.result",
            "provider.info",
            "assistant.message",
        ]
    );
    for ev in &events {
        assert_eq!(&*ev.session_id, S);
        assert_eq!(
            ev.subagent.as_ref().unwrap().id.as_deref(),
            Some("a0123456789abcdef")
        );
        assert!(!ev.is_human_message());
    }
    assert_eq!(
        events[1].model.as_deref(),
        Some("claude-haiku-4-5-20251001")
    );
    match &events[2].payload {
        Payload::ToolResult { output, .. } => assert!(output.starts_with("<persisted-output>")),
        p => panic!("{p:?}"),
    }
}

#[test]
fn side_question_shares_ids_with_its_parent() {
    let (_, parent) = parse(&main_rel());
    let (_, aside) = parse(&format!(
        "-home-dev-proj/{S}/subagents/agent-aside_question-0123456789abcdef.jsonl"
    ));
    assert_eq!(
        keys(&aside),
        [
            "system.message/subagent-prompt", // the parent's prompt, replayed
            "assistant.message",              // the parent's answer, replayed
            "system.message/injected-context",
            "system.message/subagent-prompt", // the side question itself
            "assistant.message",
        ]
    );
    assert_eq!(aside[0].event_id, parent[6].event_id);
    assert_eq!(aside[1].event_id, parent[10].event_id);
    assert_eq!(aside[2].event_id, aside[3].event_id.replace("#1", ""));
    match &aside[3].payload {
        Payload::SystemMessage { text, .. } => assert_eq!(text, "what does parse() return?"),
        p => panic!("{p:?}"),
    }
    for ev in &aside {
        assert_eq!(&*ev.session_id, S);
        let sub = ev.subagent.as_ref().unwrap();
        assert_eq!(sub.label.as_deref(), Some(SIDE_QUESTION_LABEL));
    }
}

#[test]
fn old_layout_agent_file_takes_the_session_from_its_records() {
    let (ctx, events) = parse("-home-dev-proj/agent-abc1234.jsonl");
    assert_eq!(ctx.session_hint, "agent-abc1234");
    assert_eq!(
        keys(&events),
        ["system.message/subagent-prompt", "assistant.message"]
    );
    for ev in &events {
        assert_eq!(&*ev.session_id, S);
        assert_eq!(ev.subagent.as_ref().unwrap().id.as_deref(), Some("abc1234"));
    }
}

#[test]
fn inline_sidechain_file() {
    let (_, events) = parse(&format!("-home-dev-old/{S_OLD}.jsonl"));
    assert_eq!(
        keys(&events),
        [
            "user.message",
            "assistant.tool.call", // Task
            "system.message/subagent-prompt",
            "assistant.tool.call",
            "assistant.tool.result",
            "assistant.message",
            "assistant.tool.result", // Task result
            "system.message/compaction",
            "system.message/notice", // model fallback warning (no subtype)
            "system.message/notice", // interrupted
            "system.message/command-wrapper",
            "system.message/command-wrapper",
        ]
    );
    let sidechain: Vec<bool> = events.iter().map(|e| e.subagent.is_some()).collect();
    assert_eq!(
        sidechain,
        [false, false, true, true, true, true, false, false, false, false, false, false]
    );
    assert_eq!(human_texts(&events), [("Deploy it", 0)]);
    match &events[6].payload {
        Payload::ToolResult {
            tool_call_id,
            output,
            ..
        } => {
            assert_eq!(
                (tool_call_id.as_str(), output.as_str()),
                ("toolu_t1", "Removed.")
            );
        }
        p => panic!("{p:?}"),
    }
}

#[test]
fn summary_only_file_uses_the_file_name_as_session() {
    let (_, events) = parse(&format!("-home-dev-old/{S_SUM}.jsonl"));
    assert_eq!(keys(&events), ["provider.info"]);
    assert_eq!(&*events[0].session_id, S_SUM);
    assert_eq!(events[0].event_id, format!("{S_SUM}:0"));
    assert_eq!(events[0].timestamp, None);
}

/// Commands are read only from human messages: the `::record`/`::stop`
/// lines inside the queue copy, the compaction summary, the agent progress
/// copy and the subagent prompt must never surface as human text.
#[test]
fn only_typed_prompts_are_human_messages() {
    let mut human = Vec::new();
    for rel in walk(&projects()) {
        let rel = rel.to_string_lossy().into_owned();
        if Claude.classify(Path::new(&rel)).is_none() {
            continue;
        }
        let (_, events) = parse(&rel);
        human.extend(human_texts(&events).into_iter().map(|(t, _)| t.to_owned()));
    }
    human.sort();
    assert_eq!(
        human,
        [
            "Deploy it",
            "[Image #1] what is this?",
            "ok, just patch it\n::stop",
            "please review\n::record /tmp/review.md",
        ]
    );
}

#[test]
fn poisoned_lines_are_skipped_and_the_rest_survives() {
    let path = root().join("poisoned.jsonl");
    let mut events = Vec::new();
    let inc = read_path(&path, &Claude, Limits::default(), &mut |e| events.push(e)).unwrap();
    let diags: Vec<(u64, DiagKind)> = inc.diagnostics.iter().map(|d| (d.offset, d.kind)).collect();
    assert_eq!(
        diags,
        [
            (94, DiagKind::NotJson),
            (111, DiagKind::WrongShape), // message null
            (176, DiagKind::WrongShape), // content a number
            (388, DiagKind::InvalidUtf8),
            (479, DiagKind::WrongShape), // a block that is a number
            (616, DiagKind::WrongShape), // text block without text
            (1016, DiagKind::Truncated), // last line cut off
        ]
    );
    let got: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.event_id.clone(), key(e)))
        .collect();
    let want = [
        ("p-1", "user.message"),
        ("p-4", "assistant.message"),
        // An unknown record type is kept whatever its fields look like.
        ("poisoned:572", "provider.raw"),
        // The skipped line held the question, so its answer is a plain result.
        ("p-8", "assistant.tool.result"),
        ("poisoned:964", "provider.info"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        inc.cursor.parser.value(),
        serde_json::json!({"session": "poison", "began": true})
    );
}
