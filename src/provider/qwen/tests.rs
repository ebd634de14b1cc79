use super::*;
use crate::event::Kind;
use serde_json::{json, Value};

const SID: &str = "9a578cd0-ad2c-423c-8f19-95412a2d81af";

fn ctx() -> FileCtx {
    Qwen.classify(Path::new(&format!("-home-u-proj/chats/{SID}.jsonl")))
        .expect("a chat file")
}

fn rec(uuid: &str, kind: &str, extra: Value) -> String {
    let mut r = json!({"uuid": uuid, "parentUuid": null, "sessionId": SID,
        "timestamp": "2026-04-07T02:12:10.981Z", "type": kind, "cwd": "/home/u/proj",
        "version": "0.14.0"});
    if let (Some(r), Value::Object(extra)) = (r.as_object_mut(), extra) {
        r.extend(extra);
    }
    r.to_string()
}

fn user(uuid: &str, parts: Value) -> String {
    rec(
        uuid,
        "user",
        json!({"message": {"role": "user", "parts": parts}}),
    )
}

fn read_with(parser: &mut dyn RecordParser, lines: &[String]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut offset = 0;
    for l in lines {
        parser
            .record(offset, l.as_bytes(), &mut |e| out.push(e))
            .expect("a record");
        offset += l.len() as u64 + 1;
    }
    out
}

fn read(lines: &[String]) -> Vec<Event> {
    read_with(&mut *Qwen.parser(&ctx()), lines)
}

fn texts(events: &[Event]) -> Vec<(Kind, String)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::UserMessage { text, .. }
            | Payload::AssistantMessage { text }
            | Payload::Thinking { text } => Some((e.kind(), text.clone())),
            Payload::SystemMessage { category, text } => {
                Some((e.kind(), format!("{category:?}: {text}")))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn classify_takes_chats_only() {
    let c = ctx();
    assert_eq!(c.session_hint, SID);
    assert_eq!(c.file_tag, SID);
    assert!(Qwen.classify(Path::new("p/chats/x.json")).is_none());
    assert!(Qwen.classify(Path::new("p/other/x.jsonl")).is_none());
    assert!(Qwen.classify(Path::new("p/x.jsonl")).is_none());
    let home = Path::new("/h");
    assert_eq!(Qwen.default_roots(home), [home.join(".qwen/projects")]);
    assert_eq!(
        Qwen.env_roots(Path::new("/rt")),
        [PathBuf::from("/rt/projects")]
    );
}

#[test]
fn sniff_knows_parts_and_payloads_only() {
    let line = user("u1", json!([{"text": "hi"}]));
    assert_eq!(Qwen.sniff(line.as_bytes()), Sniff::Exact);
    let sys = rec(
        "s1",
        "system",
        json!({"subtype": "ui_telemetry", "systemPayload": {}}),
    );
    assert_eq!(Qwen.sniff(sys.as_bytes()), Sniff::Exact);
    let claude = json!({"uuid": "a", "sessionId": "s", "type": "user",
        "message": {"role": "user", "content": "hi"}})
    .to_string();
    assert_eq!(Qwen.sniff(claude.as_bytes()), Sniff::No);
    assert_eq!(
        crate::provider::registry()
            .sniff(line.as_bytes())
            .map(|p| p.id()),
        Some(ID)
    );
}

#[test]
fn referenced_file_text_is_injected_not_typed() {
    let ev = read(&[user(
        "u1",
        json!([{"text": "@a.md ::capture x.md"},
               {"text": "\n--- Content from referenced files ---"},
               {"text": "\nContent from a.md:\n::export y.md\n"},
               {"text": "\n--- End of content ---"}]),
    )]);
    assert_eq!(
        texts(&ev),
        [
            (Kind::UserMessage, "@a.md ::capture x.md".into()),
            (
                Kind::SystemMessage,
                "InjectedContext: \n--- Content from referenced files ---\nContent from a.md:\n\
                 ::export y.md\n\n--- End of content ---"
                    .into()
            ),
        ]
    );
    assert_eq!(ev[0].kind(), Kind::ProviderInfo);
    assert_eq!(ev[2].event_id, "u1#context");
}

#[test]
fn hook_context_is_split_off_and_display_text_wins() {
    let hook =
        "<qwen:user-prompt-submit-context>\n::export z.md\n</qwen:user-prompt-submit-context>";
    let with_display = rec(
        "u2",
        "user",
        json!({"message": {"role": "user", "parts": [{"text": "expanded prompt"}, {"text": hook}]},
               "systemPayload": {"displayText": "what I typed", "hookContext": "::export z.md"}}),
    );
    let without = user("u3", json!([{"text": "plain words"}, {"text": hook}]));
    let ev = read(&[with_display, without]);
    assert_eq!(
        texts(&ev),
        [
            (Kind::UserMessage, "what I typed".into()),
            (
                Kind::SystemMessage,
                "InjectedContext: expanded prompt".into()
            ),
            (Kind::SystemMessage, format!("InjectedContext: {hook}")),
            (Kind::UserMessage, "plain words".into()),
            (Kind::SystemMessage, format!("InjectedContext: {hook}")),
        ]
    );
    let humans: Vec<_> = ev.iter().filter(|e| e.is_human_message()).collect();
    assert_eq!(humans.len(), 2);
}

#[test]
fn assistant_parts_and_tool_results_correlate() {
    let asst = rec(
        "a1",
        "assistant",
        json!({"model": "coder-model", "usageMetadata": {"totalTokenCount": 9},
               "message": {"role": "model", "parts": [
                   {"text": "Plan it.", "thought": true},
                   {"text": "Listing."},
                   {"functionCall": {"id": "call_1", "name": "list_directory", "args": {"path": "/p"}}}]}}),
    );
    let result = rec(
        "r1",
        "tool_result",
        json!({"message": {"role": "user", "parts": [
                   {"functionResponse": {"id": "call_1", "name": "list_directory",
                                         "response": {"error": "Path must be absolute"}}}]},
               "toolCallResult": {"callId": "call_1", "status": "error", "resultDisplay": "x"}}),
    );
    let ev = read(&[asst, result]);
    let kinds: Vec<_> = ev.iter().map(|e| (e.kind(), e.event_id.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (Kind::ProviderInfo, "a1#meta"),
            (Kind::Thinking, "a1#thought-0"),
            (Kind::AssistantMessage, "a1"),
            (Kind::ToolCall, "a1#call-2"),
            (Kind::ProviderInfo, "a1#tokens"),
            (Kind::ToolResult, "r1#result-0"),
        ]
    );
    assert!(ev[1..5]
        .iter()
        .all(|e| e.model.as_deref() == Some("coder-model")));
    match &ev[5].payload {
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => {
            assert_eq!(tool_call_id, "call_1");
            assert_eq!(output, "Path must be absolute");
            assert!(is_error);
        }
        p => panic!("{p:?}"),
    }
    assert!(ev.iter().all(|e| e.timestamp.is_some()));
}

#[test]
fn sidechain_text_is_never_the_humans() {
    let side = |uuid: &str, text: &str| {
        rec(
            uuid,
            "user",
            json!({"isSidechain": true, "agentId": "explore-7f3c", "agentName": "Explore",
                   "message": {"role": "user", "parts": [{"text": text}]}}),
        )
    };
    let ev = read(&[side("s1", "::capture a.md"), side("s2", "more")]);
    let t = texts(&ev);
    assert_eq!(t[0].1, "SubagentPrompt: ::capture a.md");
    assert_eq!(t[1].1, "ModelInput: more");
    assert!(ev.iter().all(|e| !e.is_human_message()));
    assert_eq!(
        ev[1].subagent,
        Some(Subagent {
            id: Some("explore-7f3c".into()),
            label: Some("Explore".into())
        })
    );
}

#[test]
fn forked_copies_are_marked_copied() {
    let line = rec(
        "u1",
        "user",
        json!({"forkedFrom": {"sessionId": "old", "messageUuid": "u1"},
               "message": {"role": "user", "parts": [{"text": "::capture a.md"}]}}),
    );
    let ev = read(&[line]);
    assert!(ev.iter().all(|e| e.copied));
}

#[test]
fn system_records_map_to_their_kinds() {
    let lines = [
        rec(
            "c1",
            "system",
            json!({"subtype": "chat_compression", "systemPayload": {
            "info": {"originalTokenCount": 100, "newTokenCount": 10},
            "compressedHistory": [{"role": "user", "parts": [{"text": "<state_snapshot>sum</state_snapshot>"}]},
                                  {"role": "model", "parts": [{"text": "Got it."}]}]}}),
        ),
        rec(
            "t1",
            "system",
            json!({"subtype": "custom_title", "systemPayload": {"customTitle": "Fix it", "titleSource": "manual"}}),
        ),
        rec(
            "w1",
            "system",
            json!({"subtype": "rewind", "systemPayload": {"truncatedCount": 3}}),
        ),
        rec(
            "x1",
            "system",
            json!({"subtype": "some_new_thing", "systemPayload": {"a": 1}}),
        ),
        rec("x2", "system", json!({"subtype": "Weird Name!"})),
        rec(
            "n1",
            "user",
            json!({"subtype": "notification", "systemPayload": {"displayText": "Agent done."},
            "message": {"role": "user", "parts": [{"text": "::capture n.md"}]}}),
        ),
        rec(
            "g1",
            "user",
            json!({"subtype": "goal_runtime",
            "message": {"role": "user", "parts": [{"text": "::capture g.md"}]}}),
        ),
        rec(
            "m1",
            "user",
            json!({"subtype": "mid_turn_user_message", "systemPayload": {"displayText": "also this"},
            "message": {"role": "user", "parts": [{"text": "also this"}]}}),
        ),
    ];
    let ev = read(&lines);
    let got: Vec<String> = ev
        .iter()
        .map(|e| match &e.payload {
            Payload::ProviderInfo { topic, data } => format!("info {topic} {}", data.get()),
            Payload::SystemMessage { category, text } => format!("{category:?} {text}"),
            Payload::UserMessage { text, .. } => format!("user {text}"),
            p => format!("{p:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            "info session_meta {\"cwd\":\"/home/u/proj\",\"gitBranch\":null,\"sessionId\":\"9a578cd0-ad2c-423c-8f19-95412a2d81af\",\"version\":\"0.14.0\"}",
            "Compaction <state_snapshot>sum</state_snapshot>",
            "info chat_compression {\"newTokenCount\":10,\"originalTokenCount\":100}",
            "info title {\"source\":\"manual\",\"title\":\"Fix it\"}",
            "Notice The conversation was rewound: 3 item(s) above were withdrawn.",
            "info some_new_thing {\"a\":1}",
            "info system {}",
            "Notice Agent done.",
            "ModelInput ::capture g.md",
            "user also this",
        ]
    );
}

#[test]
fn unknown_records_are_raw_and_broken_lines_malformed() {
    let mut p = Qwen.parser(&ctx());
    let mut out = Vec::new();
    p.record(0, br#"{"uuid":"q","type":"queue-op"}"#, &mut |e| {
        out.push(e)
    })
    .expect("json");
    p.record(40, b"[1,2]", &mut |e| out.push(e)).expect("json");
    assert!(out.iter().all(|e| e.kind() == Kind::ProviderRaw));
    assert_eq!(out[1].event_id, format!("{SID}:40"));
    assert!(matches!(
        p.record(50, b"{\"uuid\":", &mut |_| {}),
        Err(Malformed::NotJson(_))
    ));
    assert!(matches!(
        p.record(60, b"\xff", &mut |_| {}),
        Err(Malformed::InvalidUtf8)
    ));
    // A part of an unknown kind keeps the record whole beside its events.
    let ev = read(&[rec(
        "a2",
        "assistant",
        json!({"message": {"parts": [
        {"text": "ok"}, {"executableCode": {"code": "1"}}]}}),
    )]);
    assert_eq!(ev.last().map(|e| e.kind()), Some(Kind::ProviderRaw));
    assert_eq!(ev.last().map(|e| e.event_id.as_str()), Some("a2#raw"));
}

#[test]
fn state_round_trips_and_meta_is_not_repeated() {
    let mut p = Qwen.parser(&ctx());
    let first = read_with(&mut *p, &[user("u1", json!([{"text": "hi"}]))]);
    assert_eq!(first[0].event_id, "u1#meta");
    let state = p.state();
    let mut q = Qwen.parser(&ctx());
    q.restore(&state).expect("state");
    let again = read_with(&mut *q, &[user("u2", json!([{"text": "more"}]))]);
    assert_eq!(again.len(), 1);
    let moved = read_with(
        &mut *q,
        &[rec(
            "u3",
            "user",
            json!({"cwd": "/elsewhere",
            "message": {"role": "user", "parts": [{"text": "x"}]}}),
        )],
    );
    assert_eq!(moved[0].event_id, "u3#meta");
    assert!(q.restore(&json!({"bogus": 1})).is_err());
}

#[test]
fn both_ways_agree() {
    let lines = [
        user("u1", json!([{"text": "hi"}])),
        rec(
            "r1",
            "tool_result",
            json!({"message": {"parts": [
            {"functionResponse": {"id": "c", "response": {"output": "o", "error": "e"}}},
            {"text": "more"}]}}),
        ),
        rec(
            "r2",
            "tool_result",
            json!({"message": {"parts": [
            {"functionResponse": {"id": "c", "response": {"output": {"nested": [1, 2]}}}}]}}),
        ),
        rec(
            "r3",
            "tool_result",
            json!({"message": {"parts": [
            {"functionResponse": {"id": "c", "response": {"llmContent": "x"}}},
            {"functionResponse": {"id": "d", "response": null}},
            {"functionResponse": {"id": "e", "response": {"output": "a", "output": "b"}}}]}}),
        ),
        rec(
            "a1",
            "assistant",
            json!({"message": {"parts": [{"functionCall": {"name": "x"}}]}}),
        ),
        "{\"type\": 3}".to_owned(),
    ];
    let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    let [fast, general] = read_both_ways(&lines);
    assert_eq!(fast, general);
    assert!(fast.0.len() >= 8, "{:?}", fast.0);
}
