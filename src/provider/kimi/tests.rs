use std::path::Path;

use super::*;
use crate::event::Kind;

fn read(ctx: &FileCtx, lines: &[&str]) -> Vec<Event> {
    let mut p = Kimi.parser(ctx);
    let mut out = Vec::new();
    let mut offset = 0u64;
    for l in lines {
        p.record(offset, l.as_bytes(), &mut |e| out.push(e))
            .unwrap();
        offset += l.len() as u64 + 1;
    }
    out
}

fn wire() -> FileCtx {
    Kimi.classify(Path::new("abc/sid-1/wire.jsonl")).unwrap()
}

#[test]
fn classify_takes_the_wire_and_subagent_contexts_only() {
    let w = wire();
    assert_eq!(
        (w.file_tag.as_str(), w.session_hint.as_str()),
        ("wire", "sid-1")
    );
    assert!(w.subagent.is_none());
    let s = Kimi
        .classify(Path::new("abc/sid-1/context_sub_12.jsonl"))
        .unwrap();
    assert_eq!(s.file_tag, "sub_12");
    assert_eq!(s.session_hint, "sid-1");
    assert_eq!(s.subagent.unwrap().id.as_deref(), Some("sub_12"));
    for other in [
        "abc/sid-1/context.jsonl",
        "abc/sid-1/context_1.jsonl",
        "abc/sid-1/context_sub_.jsonl",
        "abc/sid-1/context_sub_2_1.jsonl",
        "abc/sid-1/state.json",
        // A subagent's own wire: its `TurnBegin` is the parent model's prompt.
        "abc/sid-1/subagents/a1/wire.jsonl",
        "sid-1/wire.jsonl",
    ] {
        assert!(Kimi.classify(Path::new(other)).is_none(), "{other}");
    }
    assert_eq!(
        Kimi.env_roots(Path::new("/s")),
        vec![PathBuf::from("/s/sessions")]
    );
}

#[test]
fn sniff_knows_the_wire() {
    assert_eq!(
        Kimi.sniff(br#"{"type": "metadata", "protocol_version": "1.3"}"#),
        Sniff::Exact
    );
    assert_eq!(
        Kimi.sniff(br#"{"timestamp": 1.5, "message": {"type": "TurnEnd", "payload": {}}}"#),
        Sniff::Strong
    );
    assert_eq!(
        Kimi.sniff(br#"{"role": "_usage", "token_count": 3}"#),
        Sniff::Weak
    );
    assert_eq!(Kimi.sniff(br#"{"role": "user", "message": {}}"#), Sniff::No);
}

#[test]
fn only_turn_input_is_human() {
    let evs = read(
        &wire(),
        &[
            r#"{"timestamp": 1767258001.25, "message": {"type": "TurnBegin", "payload": {"user_input": "hi\n::capture"}}}"#,
            r#"{"timestamp": 1767258002, "message": {"type": "ContentPart", "payload": {"type": "text", "text": "::capture"}}}"#,
            r#"{"timestamp": 1767258003, "message": {"type": "ToolResult", "payload": {"tool_call_id": "t", "return_value": {"is_error": false, "output": "::capture"}}}}"#,
            r#"{"timestamp": 1767258004, "message": {"type": "SubagentEvent", "payload": {"agent_id": "a", "event": {"type": "TurnBegin", "payload": {"user_input": "::capture"}}}}}"#,
        ],
    );
    let human: Vec<&str> = evs
        .iter()
        .filter(|e| e.is_human_message())
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(human, ["wire:0"]);
    assert_eq!(
        evs[0].timestamp.as_deref(),
        Some("2026-01-01T09:00:01.250Z")
    );
    assert_eq!(evs[3].kind(), Kind::SystemMessage);
    assert_eq!(evs[3].subagent.as_ref().unwrap().id.as_deref(), Some("a"));
}

#[test]
fn unknown_and_malformed_lines() {
    let evs = read(
        &wire(),
        &[
            r#"{"timestamp": 1, "message": {"type": "Brand new", "payload": {"x": 1}}}"#,
            r#"{"timestamp": 1, "message": {"type": "ToolCall", "payload": {"id": 3}}}"#,
            r#"{"something": "else"}"#,
        ],
    );
    let kinds: Vec<Kind> = evs.iter().map(Event::kind).collect();
    assert_eq!(kinds, [Kind::ProviderRaw; 3]);
    let mut p = Kimi.parser(&wire());
    assert!(p.record(0, b"{", &mut |_| {}).is_err());
    assert!(p.record(0, b"[1]", &mut |_| {}).is_err());
    assert!(p.restore(&serde_json::json!({"x": 1})).is_err());
}

#[test]
fn a_subagent_context_prompt_then_model_input_survives_a_restore() {
    let ctx = Kimi.classify(Path::new("h/s/context_sub_1.jsonl")).unwrap();
    let mut p = Kimi.parser(&ctx);
    let mut evs = Vec::new();
    p.record(0, br#"{"role": "user", "content": "do it"}"#, &mut |e| {
        evs.push(e)
    })
    .unwrap();
    let state = p.state();
    let mut q = Kimi.parser(&ctx);
    q.restore(&state).unwrap();
    q.record(
        40,
        br#"{"role": "user", "content": "<system>CHECKPOINT 0</system>"}"#,
        &mut |e| evs.push(e),
    )
    .unwrap();
    let cats: Vec<_> = evs
        .iter()
        .map(|e| match &e.payload {
            Payload::SystemMessage { category, .. } => *category,
            p => panic!("{p:?}"),
        })
        .collect();
    assert_eq!(
        cats,
        [SystemCategory::SubagentPrompt, SystemCategory::ModelInput]
    );
    assert!(evs.iter().all(|e| !e.is_human_message()));
}

#[test]
fn tool_arguments_are_json_when_they_parse() {
    let evs = read(
        &wire(),
        &[
            r#"{"timestamp": 1, "message": {"type": "ToolCall", "payload": {"id": "a", "function": {"name": "Shell", "arguments": "{\"command\": \"ls\"}"}}}}"#,
            r#"{"timestamp": 1, "message": {"type": "ToolCall", "payload": {"id": "b", "function": {"name": "Shell", "arguments": "{\"command\": "}}}}"#,
        ],
    );
    let inputs: Vec<String> = evs
        .iter()
        .map(|e| match &e.payload {
            Payload::ToolCall { input, .. } => input.get().to_owned(),
            p => panic!("{p:?}"),
        })
        .collect();
    assert_eq!(inputs, [r#"{"command":"ls"}"#, r#""{\"command\": ""#]);
}

#[test]
fn the_registry_beside_the_sessions_names_the_folder_by_md5() {
    let wire = Path::new("/h/.kimi/sessions/879f8d363e85a410e3d95626886b9446/sid/wire.jsonl");
    assert_eq!(
        Kimi.project_marker(wire),
        Some(PathBuf::from("/h/.kimi/kimi.json"))
    );
    assert_eq!(
        Kimi.project_marker(Path::new("/h/.kimi/sessions/not-a-hash/sid/wire.jsonl")),
        None
    );
    assert_eq!(
        Kimi.project_marker(Path::new(
            "/h/.kimi/sessions/879f8d363e85a410e3d95626886b9446/sid/context.jsonl"
        )),
        None
    );
    let reg = r#"{"work_dirs": [{"path": "/a"}, {"path": "/home/dev/kettle"}], "thinking": true}"#;
    assert_eq!(
        Kimi.project_from_marker(wire, reg).as_deref(),
        Some("/home/dev/kettle")
    );
    assert_eq!(
        Kimi.project_from_marker(wire, r#"{"work_dirs": [{"path": "/a"}]}"#),
        None
    );
    assert_eq!(Kimi.project_from_marker(wire, "not json"), None);
    assert_eq!(
        Kimi.markers_beside(Path::new("/h/.kimi/sessions")),
        vec![PathBuf::from("/h/.kimi/kimi.json")]
    );
}

/// The one-pass reading of wire lines and the general one give the same
/// events for every shape, including those the fast pass hands over.
#[test]
fn wire_lines_read_in_one_pass_match_the_general_reading() {
    let ctx = wire();
    let lines = [
        r#"{"timestamp": 1.5, "message": {"type": "TurnBegin", "payload": {"user_input": "hi"}}}"#,
        r#"{"timestamp": 1.5, "message": {"type": "SteerInput", "payload": {"user_input": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]}}}"#,
        r#"{"timestamp": 2, "message": {"type": "ContentPart", "payload": {"type": "text", "text": "an \"answer\"\n"}}}"#,
        r#"{"timestamp": 2, "message": {"type": "ContentPart", "payload": {"type": "think", "think": "hmm"}}}"#,
        r#"{"timestamp": 2, "message": {"type": "ContentPart", "payload": {"type": "text", "text": ""}}}"#,
        r#"{"timestamp": 2, "message": {"type": "ContentPart", "payload": {"type": "image", "url": "x"}}}"#,
        r#"{"timestamp": 2, "message": {"type": "ContentPart", "payload": {"type": 3}}}"#,
        r#"{"timestamp": 3, "message": {"type": "ToolCall", "payload": {"id": "c1", "function": {"name": "Shell", "arguments": "{\"command\": \"ls\"}"}}}}"#,
        r#"{"timestamp": 3, "message": {"type": "ToolCall", "payload": {"id": "c2", "function": {"name": "Shell", "arguments": "not json"}}}}"#,
        r#"{"timestamp": 3, "message": {"type": "ToolCall", "payload": {"id": "c3", "function": {"name": "Shell", "arguments": {"a": [1, 2]}}}}}"#,
        r#"{"timestamp": 3, "message": {"type": "ToolCall", "payload": {"id": "c4", "function": {"name": "Shell", "arguments": null}}}}"#,
        r#"{"timestamp": 3, "message": {"type": "ToolCall", "payload": {"function": {"name": "Shell"}}}}"#,
        r#"{"timestamp": 4, "message": {"type": "ToolResult", "payload": {"tool_call_id": "c1", "return_value": {"is_error": false, "output": "a.txt\n"}}}}"#,
        r#"{"timestamp": 4, "message": {"type": "ToolResult", "payload": {"tool_call_id": "c1", "return_value": {"is_error": true, "output": "", "message": "denied"}}}}"#,
        r#"{"timestamp": 4, "message": {"type": "ToolResult", "payload": {"tool_call_id": "c1", "return_value": {"output": [{"type": "text", "text": "x"}]}}}}"#,
        r#"{"timestamp": 4, "message": {"type": "ToolResult", "payload": {"tool_call_id": "c1", "return_value": {"output": null}}}}"#,
        r#"{"timestamp": 4, "message": {"type": "ToolResult", "payload": {"tool_call_id": "c1", "return_value": {"output": {"k": 1}}}}}"#,
        r#"{"timestamp": 4, "message": {"type": "ToolResult", "payload": {"tool_call_id": "c1", "return_value": {"output": [1]}}}}"#,
        r#"{"timestamp": 5, "message": {"payload": {"user_input": "payload first"}, "type": "TurnBegin"}}"#,
        r#"{"timestamp": 5, "message": {"type": "TurnBegin", "type": "ContentPart", "payload": {"user_input": "twice"}}}"#,
        r#"{"timestamp": 5, "message": {"type": "TurnBegin", "payload": {"user_input": "x"}, "payload": {"user_input": "y"}}}"#,
        r#"{"timestamp": 5, "message": {"type": "StatusUpdate", "payload": {"context_usage": 0.5}}}"#,
        r#"{"timestamp": 5, "message": {"type": "StatusUpdate", "payload": [1, "two", null]}}"#,
        r#"{"timestamp": 5, "message": {"type": "StepBegin", "payload": {"n": 1}}}"#,
        r#"{"timestamp": 5, "message": {"type": "TurnEnd", "payload": {}}}"#,
        r#"{"timestamp": 5, "message": {"type": "CompactionEnd", "payload": null}}"#,
        r#"{"type": "x", "type": "y", "message": {"type": "TurnBegin", "payload": {"user_input": "x"}}}"#,
        r#"{"type": 5, "message": {"type": "StepBegin", "payload": {}}}"#,
        r#"{"timestamp": 5, "message": {"type": "Nope", "payload": {}}}"#,
        r#"{"timestamp": 5, "message": {"type": "TurnBegin"}}"#,
        r#"{"timestamp": "late", "message": {"type": "TurnBegin", "payload": {"user_input": "x"}}}"#,
        r#"{"type": "metadata", "protocol_version": "1.3"}"#,
        r#"{"other": 1}"#,
    ];
    let (mut total, mut errors) = (0, 0);
    for line in lines {
        let mut fast = Vec::new();
        let mut general = Vec::new();
        let a = wire_line(
            &mut Emitter {
                ctx: &ctx,
                offset: 7,
                n: 0,
                timestamp: None,
                subagent: None,
                out: &mut |e| fast.push(e),
            },
            line.as_bytes(),
        );
        let b = wire_line_general(
            &mut Emitter {
                ctx: &ctx,
                offset: 7,
                n: 0,
                timestamp: None,
                subagent: None,
                out: &mut |e| general.push(e),
            },
            line.as_bytes(),
        );
        assert_eq!(a.is_ok(), b.is_ok(), "{line}");
        assert_eq!(
            serde_json::to_string(&fast).unwrap(),
            serde_json::to_string(&general).unwrap(),
            "{line}"
        );
        total += general.len();
        errors += usize::from(b.is_err());
    }
    // Malformed: a timestamp of another type, a key twice (three lines), a
    // message without its payload, a line `type` that is not a string.
    // Every other line but the empty text part and the three boundaries
    // makes one event.
    assert_eq!((errors, total), (6, lines.len() - 10));
}
