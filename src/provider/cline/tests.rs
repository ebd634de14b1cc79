use super::*;
use crate::event::Kind;
use serde_json::{json, Value};

const TASK: &str = "1761000000000";

fn ctx() -> FileCtx {
    Cline
        .classify(Path::new("1761000000000/api_conversation_history.json"))
        .expect("a session file")
}

fn user(ts: u64, blocks: Value) -> Value {
    json!({"role": "user", "content": blocks, "ts": ts})
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn assistant(ts: u64, blocks: Value) -> Value {
    json!({"role": "assistant", "content": blocks, "ts": ts,
           "modelInfo": {"modelId": "claude-sonnet-4-5", "providerId": "anthropic", "mode": "act"},
           "metrics": {"tokens": {"prompt": 10, "completion": 2}}})
}

fn tool_use(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input, "call_id": id})
}

fn doc(messages: &[Value]) -> String {
    serde_json::to_string(messages).expect("json")
}

/// Feed versions of one document, restoring the state into a fresh parser
/// before each, as the daemon does.
fn feed(versions: &[&str]) -> (Vec<Event>, Value) {
    let mut events = Vec::new();
    let mut state = Value::Null;
    for v in versions {
        let mut p = Cline.parser(&ctx());
        p.restore(&state).expect("restore");
        p.record(0, v.as_bytes(), &mut |e| events.push(e))
            .expect("parse");
        state = p.state();
    }
    (events, state)
}

fn json_of(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| serde_json::to_string(e).expect("serialize"))
        .collect()
}

fn ids(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e.event_id
                .strip_prefix(TASK)
                .unwrap_or(&e.event_id)
                .to_owned()
        })
        .collect()
}

fn kinds(events: &[Event]) -> Vec<Kind> {
    events.iter().map(Event::kind).collect()
}

fn conversation() -> Vec<Value> {
    vec![
        user(
            1_761_000_000_000,
            json!([text("<task>\nfix it\n</task>"), text("<environment_details>\n# Current Working Directory (/home/u/p) Files\na\n</environment_details>")]),
        ),
        assistant(
            1_761_000_001_000,
            json!([text("Reading."), tool_use("t1", "read_file", json!({"path": "a"}))]),
        ),
        user(
            1_761_000_002_000,
            json!([text("[read_file for 'a'] Result:\nx")]),
        ),
        assistant(1_761_000_003_000, json!([text("Done.")])),
    ]
}

#[test]
fn classify_paths_sniff_and_roots() {
    let c = ctx();
    assert_eq!(c.file_tag, TASK);
    assert_eq!(c.session_hint, TASK);
    assert_eq!(c.subagent, None);
    assert_eq!(
        Cline.classify(Path::new(
            "/home/u/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks/1761000000000/api_conversation_history.json"
        )),
        Some(c)
    );
    for other in [
        "1761000000000/ui_messages.json",
        "1761000000000/task_metadata.json",
        "api_conversation_history.json",
        "1761000000000/api_conversation_history.jsonl",
    ] {
        assert_eq!(Cline.classify(Path::new(other)), None, "{other}");
    }
    assert_eq!(
        Cline.named_file(Path::new("/tmp/copy.json")).session_hint,
        "copy"
    );
    assert_eq!(
        Cline.sniff(br#"[{"role":"user","content":[]}]"#),
        Sniff::Exact
    );
    assert_eq!(Cline.sniff(b"[\n  {\n    \"role\": \"user\""), Sniff::Exact);
    for no in [
        &b"{\"role\":\"user\"}"[..],
        b"[1,2]",
        b"[{\"type\":\"x\"}]",
        b"",
    ] {
        assert_eq!(Cline.sniff(no), Sniff::No);
    }
    assert_eq!(Cline.source_kind(), SourceKind::Document);
    assert!(!Cline.carries_commands());
    let home = Path::new("/nonexistent-home");
    let all = Cline::candidate_roots(home);
    assert_eq!(all.len(), 2 * 5 * 2 + 1);
    assert!(all.iter().all(|r| r.ends_with("tasks")));
    assert!(all.contains(&PathBuf::from(
        "/nonexistent-home/Library/Application Support/Cursor/User/globalStorage/rooveterinaryinc.roo-cline/tasks"
    )));
    assert_eq!(Cline.default_roots(home), Vec::<PathBuf>::new());
}

#[test]
fn default_roots_are_the_ones_that_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roo = dir
        .path()
        .join(".config/VSCodium/User/globalStorage/rooveterinaryinc.roo-cline/tasks");
    let cli = dir.path().join(".cline/data/tasks");
    std::fs::create_dir_all(&roo).expect("mkdir");
    std::fs::create_dir_all(&cli).expect("mkdir");
    assert_eq!(Cline.default_roots(dir.path()), [roo, cli]);
}

#[test]
fn appended_messages_give_the_events_of_one_read() {
    let all = conversation();
    let first = doc(&all[..2]);
    let last = doc(&all);
    let (stepwise, _) = feed(&[&first, &last]);
    let (once, _) = feed(&[&last]);
    assert_eq!(json_of(&stepwise), json_of(&once));
    assert_eq!(
        kinds(&once),
        [
            Kind::ProviderInfo,
            Kind::UserMessage,
            Kind::SystemMessage,
            Kind::ProviderInfo,
            Kind::AssistantMessage,
            Kind::ToolCall,
            Kind::ProviderInfo,
            Kind::ToolResult,
            Kind::AssistantMessage,
            Kind::ProviderInfo,
        ]
    );
    // Nothing new, nothing delivered.
    let (again, _) = feed(&[&last, &last]);
    assert_eq!(json_of(&again), json_of(&once));
    // Times are the messages' own; the model is the modelInfo's.
    assert_eq!(
        once[1].timestamp.as_deref(),
        Some("2025-10-20T22:40:00.000Z")
    );
    assert_eq!(once[4].model.as_deref(), Some("claude-sonnet-4-5"));
    assert!(matches!(&once[7].payload,
        Payload::ToolResult { tool_call_id, output, is_error: false } if tool_call_id == "t1" && output == "x"));
}

#[test]
fn a_grown_last_message_delivers_only_its_new_blocks() {
    // Cline resumes a task by adding blocks to its last user message.
    let mut all = conversation();
    all.truncate(3);
    let before = doc(&all);
    all[2]["content"].as_array_mut().expect("blocks").push(text(
        "New instructions for task continuation:\n<user_message>\nmore\n</user_message>",
    ));
    all[2]["ts"] = json!(1_761_000_009_000u64);
    let after = doc(&all);
    let (events, _) = feed(&[&before, &after]);
    let (once, _) = feed(&[&after]);
    let tail: Vec<String> = ids(&events).split_off(ids(&events).len() - 2);
    assert_eq!(tail, [":2-2e306396.1#pre", ":2-2e306396.1"]);
    assert_eq!(events.len(), once.len());
    assert!(matches!(&events.last().expect("one").payload,
        Payload::UserMessage { text, .. } if text == "more"));
}

#[test]
fn a_cut_history_is_said_and_what_follows_is_delivered() {
    let all = conversation();
    let long = doc(&all);
    let mut cut = all[..2].to_vec();
    cut.push(user(
        1_761_000_005_000,
        json!([text("<feedback>\nno, another way\n</feedback>")]),
    ));
    let short = doc(&cut);
    let (events, state) = feed(&[&long, &short]);
    let n = feed(&[&long]).0.len();
    let after = &events[n..];
    assert_eq!(kinds(after), [Kind::SystemMessage, Kind::UserMessage]);
    assert!(matches!(&after[0].payload,
        Payload::SystemMessage { category: SystemCategory::Notice, text } if text.contains("2 message(s)")));
    assert_eq!(state["keys"].as_array().map(Vec::len), Some(3));
    // Read again: nothing more.
    let (again, _) = feed(&[&long, &short, &short]);
    assert_eq!(again.len(), events.len());
    // Cut to nothing, then a new start.
    let (events, state) = feed(&[&long, "[]"]);
    assert_eq!(events.len(), n + 1);
    assert_eq!(state["keys"], json!([]));
}

#[test]
fn state_round_trips_and_bad_states_are_refused() {
    let d = doc(&conversation());
    let mut p = Cline.parser(&ctx());
    p.record(0, d.as_bytes(), &mut |_| {}).expect("parse");
    let state = p.state();
    let mut q = Cline.parser(&ctx());
    q.restore(&state).expect("restore");
    assert_eq!(q.state(), state);
    let mut n = 0;
    q.record(0, d.as_bytes(), &mut |_| n += 1).expect("parse");
    assert_eq!(n, 0, "a restored parser does not deliver twice");
    for bad in [
        json!(3),
        json!({"keys": "x"}),
        json!({"keys": [], "surprise": true}),
    ] {
        assert!(matches!(q.restore(&bad), Err(Malformed::WrongShape(_))));
    }
    q.restore(&Value::Null).expect("null");
    assert_eq!(q.state()["keys"], json!([]));
}

#[test]
fn broken_documents_are_malformed_and_keep_the_state() {
    let good = doc(&conversation());
    let mut p = Cline.parser(&ctx());
    p.record(0, good.as_bytes(), &mut |_| {}).expect("parse");
    let state = p.state();
    for bytes in [
        &b"[{\"role\":"[..],
        b"\xff\xfe",
        b"{\"role\":\"user\"}",
        b"7",
    ] {
        let mut n = 0;
        assert!(p.record(0, bytes, &mut |_| n += 1).is_err());
        assert_eq!(n, 0);
        assert_eq!(p.state(), state);
    }
}

#[test]
fn bad_messages_and_blocks_do_not_lose_the_good_ones() {
    let d = doc(&[
        user(1, json!([text("<task>\nfirst\n</task>")])),
        json!(7),
        json!({"role": "user", "content": 42}),
        json!({"role": "tool", "content": "x"}),
        json!({"role": "assistant", "content": [{"type": "text", "text": 5}, {"type": "mystery"},
               {"type": "tool_use", "name": "no id"}, {"type": "text", "text": "kept"}]}),
        user(
            2,
            json!([{"type": "document", "source": {}}, text("<feedback>\nlast\n</feedback>")]),
        ),
    ]);
    let (events, _) = feed(&[&d]);
    assert_eq!(
        kinds(&events),
        [
            Kind::ProviderInfo,
            Kind::UserMessage,
            Kind::ProviderRaw,
            Kind::ProviderRaw,
            Kind::ProviderRaw,
            Kind::ProviderRaw,
            Kind::ProviderRaw,
            Kind::ProviderRaw,
            Kind::AssistantMessage,
            Kind::ProviderRaw,
            Kind::UserMessage,
        ]
    );
    // Without `ts` there is no time, and the file says so.
    assert_eq!(events[8].timestamp, None);
    let untimed = doc(&[json!({"role": "user", "content": "<task>\nx\n</task>"})]);
    let (events, _) = feed(&[&untimed]);
    assert!(matches!(&events[0].payload,
        Payload::ProviderInfo { data, .. } if data.get().contains("none: this file records no times")));
    assert_eq!(events[0].timestamp, None);
    assert!(events[1].is_human_message());
}

#[test]
fn user_text_is_told_apart_by_how_cline_writes_it() {
    let d = doc(&[
        assistant(
            1,
            json!([tool_use(
                "a1",
                "ask_followup_question",
                json!({"question": "Q with '] Result:\n<answer>\nfake\n</answer>"})
            ),]),
        ),
        user(
            2,
            json!([
                text("[ask_followup_question for 'Q with '] Result:\n<answer>\nfake\n</answer>'] Result:\n<answer>\nreal answer\n</answer>"),
                text("# TODO LIST UPDATE REQUIRED"),
                text("[TASK RESUMPTION] interrupted"),
                text("Files attached by the user:\n\n<file_content path=\"a\">\nx\n</file_content>"),
                text("[ERROR] no tool"),
                text("(The user did not provide a new message.)"),
                text("   "),
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}},
            ]),
        ),
    ]);
    let (events, _) = feed(&[&d]);
    let got: Vec<(Kind, Option<SystemCategory>)> = events
        .iter()
        .map(|e| {
            let cat = match &e.payload {
                Payload::SystemMessage { category, .. } => Some(*category),
                _ => None,
            };
            (e.kind(), cat)
        })
        .collect();
    use SystemCategory::*;
    assert_eq!(
        got,
        [
            (Kind::ProviderInfo, None),
            (Kind::ToolCall, None),
            (Kind::ProviderInfo, None),
            (Kind::ToolResult, None),
            (Kind::UserMessage, None),
            (Kind::SystemMessage, Some(InjectedContext)),
            (Kind::SystemMessage, Some(InjectedContext)),
            (Kind::SystemMessage, Some(InjectedContext)),
            (Kind::SystemMessage, Some(Error)),
            (Kind::SystemMessage, Some(ModelInput)),
        ]
    );
    // The image counts on the human's words of the message.
    assert!(matches!(
        &events[4].payload,
        Payload::UserMessage { attachments: 1, .. }
    ));
    // The answer is found after the question the call asked, not inside it.
    assert!(matches!(&events[4].payload,
        Payload::UserMessage { text, .. } if text == "real answer"));
    assert!(matches!(&events[3].payload,
        Payload::ToolResult { tool_call_id, .. } if tool_call_id == "a1"));
}

#[test]
fn a_bare_header_takes_the_next_block_as_its_output() {
    // Older Cline wrote `[tool] Result:` and the output as two blocks: an
    // output shaped like the human's feedback stays tool output.
    let d = doc(&[
        assistant(
            1,
            json!([tool_use("r1", "read_file", json!({"path": "x"}))]),
        ),
        user(
            2,
            json!([
                text("[read_file for 'x'] Result:"),
                text("<feedback>\n::export /tmp/planted.md\n</feedback>"),
            ]),
        ),
    ]);
    let (events, _) = feed(&[&d]);
    assert!(!events.iter().any(Event::is_human_message));
    let results: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind() == Kind::ToolResult)
        .collect();
    assert_eq!(results.len(), 1);
    assert!(matches!(&results[0].payload,
        Payload::ToolResult { tool_call_id, output, .. } if tool_call_id == "r1" && output.contains("::export")));
}

#[test]
fn human_text_ends_at_its_first_closing_tag() {
    assert_eq!(
        human_text("<task>\na\n</task>\n\n<file_content>\n</task>\n</file_content>"),
        Some(("", "a", "\n\n<file_content>\n</task>\n</file_content>"))
    );
    assert_eq!(
        human_text("Preamble:\n<user_message>\nhi\n</user_message>"),
        Some(("Preamble:\n", "hi", ""))
    );
    assert_eq!(human_text("<feedback>\nunclosed"), None);
    assert_eq!(human_text("two\nlines\n<feedback>\nx\n</feedback>"), None);
    assert_eq!(human_text("<answer>\nx\n</answer>"), None);
    assert_eq!(
        tool_header("[attempt_completion] Result: Done").as_deref(),
        Some("attempt_completion")
    );
    assert_eq!(tool_header("[x for 'a'] Result:\n").as_deref(), Some("x"));
    assert_eq!(tool_header("[x for 'a']"), None);
    assert_eq!(tool_header("[TASK RESUMPTION] This"), None);
    assert_eq!(tool_header("[] Result:"), None);
    assert_eq!(
        environment_cwd("# Current Working Directory (/a b) Files\n"),
        Some("/a b")
    );
    assert_eq!(
        environment_cwd("# Current Working Directory () Files"),
        None
    );
}

#[test]
fn native_tool_results_are_correlated_by_their_id() {
    let d = doc(&[
        assistant(1, json!([tool_use("c1", "list_files", json!({}))])),
        user(
            2,
            json!([
                {"type": "tool_result", "tool_use_id": "c1", "content": [{"type": "text", "text": "a"}, {"type": "image"}]},
                {"type": "tool_result", "tool_use_id": "c1", "content": "b", "is_error": true},
                {"type": "tool_result", "content": "no id"},
            ]),
        ),
    ]);
    let (events, _) = feed(&[&d]);
    let results: Vec<(String, String, bool)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ToolResult {
                tool_call_id,
                output,
                is_error,
            } => Some((tool_call_id.clone(), output.to_string(), *is_error)),
            _ => None,
        })
        .collect();
    assert_eq!(
        results,
        [
            ("c1".to_owned(), "a\n[image]".to_owned(), false),
            ("c1".to_owned(), "b".to_owned(), true)
        ]
    );
    assert_eq!(events.last().map(Event::kind), Some(Kind::ProviderRaw));
}

#[test]
fn timestamps_convert_from_epoch_milliseconds() {
    let n = |v: Value| serde_json::from_value::<serde_json::Number>(v).expect("number");
    assert_eq!(
        ts_string(&n(json!(1_761_000_000_123u64))).as_deref(),
        Some("2025-10-20T22:40:00.123Z")
    );
    assert_eq!(
        ts_string(&n(json!(0))).as_deref(),
        Some("1970-01-01T00:00:00.000Z")
    );
    assert_eq!(ts_string(&n(json!(-5))), None);
    assert_eq!(ts_string(&n(json!(1e300))), None);
    assert_eq!(
        ts_string(&n(json!(1_761_000_000_123.9))).as_deref(),
        Some("2025-10-20T22:40:00.123Z")
    );
}

#[test]
fn any_two_versions_of_the_fixture_keep_the_cursor_invariants() {
    // Every pair of prefixes of the fixture task (growth, a cut, a cut and
    // new growth), read in turn as the daemon reads them: no event id twice
    // within a read, nothing from an unchanged document, and the second
    // read ends where a fresh read of it ends.
    let text = include_str!(
        "../../../tests/fixtures/cline/home/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks/1761000000000/api_conversation_history.json"
    );
    let all: Vec<&RawValue> = serde_json::from_str(text).expect("json");
    let prefix = |n: usize| {
        let parts: Vec<&str> = all[..n].iter().map(|m| m.get()).collect();
        format!("[{}]", parts.join(","))
    };
    for a in 0..=all.len() {
        for b in 0..=all.len() {
            let (va, vb) = (prefix(a), prefix(b));
            let mut state = Value::Null;
            for v in [&va, &vb, &vb] {
                let mut p = Cline.parser(&ctx());
                p.restore(&state).expect("restore");
                let mut seen = std::collections::HashSet::new();
                let mut n = 0;
                p.record(0, v.as_bytes(), &mut |e| {
                    n += 1;
                    assert!(
                        seen.insert(e.event_id.clone()),
                        "{} twice ({a}, {b})",
                        e.event_id
                    );
                })
                .expect("parse");
                if std::ptr::eq(v, &vb) && state == feed(&[&va, &vb]).1 {
                    assert_eq!(n, 0, "an unchanged document delivers nothing ({a}, {b})");
                }
                state = p.state();
            }
            let mut fresh = feed(&[&vb]).1;
            fresh["meta"] = json!(true);
            assert_eq!(state, fresh, "({a}, {b})");
        }
    }
}
