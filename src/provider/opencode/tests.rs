use super::*;

fn run(records: &[&str]) -> Vec<Event> {
    let mut p = OpenCodeParser::default();
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        p.record(i as u64, r.as_bytes(), &mut |e| out.push(e))
            .unwrap();
    }
    out
}

#[test]
fn classifies_the_database_only() {
    assert!(OpenCode.classify(Path::new("opencode.db")).is_some());
    assert!(OpenCode.classify(Path::new("opencode-beta.db")).is_some());
    assert!(OpenCode.classify(Path::new("opencode.db-wal")).is_none());
    assert!(OpenCode
        .classify(Path::new("storage/opencode.db"))
        .is_none());
    let ctx = OpenCode.named_file(Path::new("/nonexistent/opencode.db#ses_1"));
    assert_eq!(ctx.session_hint, "ses_1");
}

#[test]
fn pending_tool_waits_until_settled_unless_final() {
    let pending = r#"{"t":"part","id":"prt_1","session_id":"ses_a","root":"ses_a","role":"assistant","settle":false,"data":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"running","input":{"command":"ls"}}}}"#;
    assert!(run(&[pending]).is_empty());
    let done = r#"{"t":"part","id":"prt_1","session_id":"ses_a","root":"ses_a","role":"assistant","settle":false,"data":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"completed","input":{"command":"ls"},"output":"x"}}}"#;
    let evs = run(&[done]);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1].event_id, "prt_1#result");
    let last = pending.replace("\"settle\":false", "\"settle\":true");
    assert_eq!(run(&[&last]).len(), 1);
}

#[test]
fn fixture_records_give_settled_parts_only_until_the_read_is_final() {
    let text = include_str!("../../../tests/fixtures/opencode/records.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    let live = run(&lines);
    let kinds: Vec<&str> = live.iter().map(|e| e.kind().as_str()).collect();
    assert_eq!(
        kinds,
        [
            "provider.info",
            "provider.info",
            "user.message",
            "assistant.thinking",
            "assistant.tool.call",
            "assistant.tool.result",
            "provider.info",
        ]
    );
    let settled: Vec<String> = lines
        .iter()
        .map(|l| l.replace("\"settle\":false", "\"settle\":true"))
        .collect();
    let all = run(&settled.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all.len(), live.len() + 1, "the running tool's call");
    assert!(all
        .iter()
        .all(|e| &*e.session_id == "ses_0a1b2c3d4e5fSyntheticOne"));
}

#[test]
fn malformed_records_are_refused_not_panicked() {
    let mut p = OpenCodeParser::default();
    for bad in [
        "",
        "{",
        "[]",
        r#"{"t":"part","id":"x","data":[]}"#,
        r#"{"t":"nope","id":"x","data":{}}"#,
        r#"{"t":"part","id":"x"}"#,
    ] {
        assert!(p.record(0, bad.as_bytes(), &mut |_| {}).is_err(), "{bad}");
    }
    // Odd but well-formed: no type, a tool without state.
    for odd in [
        r#"{"t":"part","id":"x","data":{}}"#,
        r#"{"t":"part","id":"x","settle":true,"data":{"type":"tool"}}"#,
        r#"{"t":"message","id":"m","data":{"error":{"weird":1}}}"#,
    ] {
        p.record(0, odd.as_bytes(), &mut |_| {}).unwrap();
    }
}

#[test]
fn tool_output_of_any_type_is_text_and_input_spanning_lines_is_compacted() {
    let part = |state: &str| {
        format!(
            r#"{{"t":"part","id":"prt_1","session_id":"ses_a","root":"ses_a","role":"assistant","data":{{"type":"tool","tool":"bash","callID":"c1","state":{state}}}}}"#
        )
    };
    let output = |state: &str| match &run(&[&part(state)])[1].payload {
        Payload::ToolResult { output, .. } => output.clone(),
        other => panic!("{other:?}"),
    };
    let done = |out: &str| format!(r#"{{"status":"completed","input":{{}},"output":{out}}}"#);
    assert_eq!(output(&done(r#""a\nb""#)), "a\nb");
    assert_eq!(output(&done("null")), "");
    assert_eq!(output(&done("12")), "12");
    assert_eq!(
        output(&done(r#"{"b":[1,true],"a":"x"}"#)),
        r#"{"a":"x","b":[1,true]}"#
    );
    assert_eq!(
        output(r#"{"status":"error","input":{},"error":"boom"}"#),
        "boom"
    );
    let evs = run(&[&part(
        "{\"status\":\"completed\",\"input\":{\n  \"command\": \"ls\"\n},\"output\":\"\"}",
    )]);
    match &evs[0].payload {
        Payload::ToolCall { input, .. } => assert_eq!(input.get(), r#"{"command":"ls"}"#),
        other => panic!("{other:?}"),
    }
}

#[test]
fn part_floor_is_the_greatest_id_less_the_window_or_nothing() {
    let mut p = Position::default();
    assert_eq!(p.part_floor(), "");
    p.last_part = "prt_01".into();
    assert_eq!(p.part_floor(), "", "not OpenCode's shape: every part");
    let ms: u64 = 1_780_000_000_000;
    let v = (ms * 0x1000 + 1) & 0xffff_ffff_ffff;
    p.last_part = format!("prt_{v:012x}AbCdEfGhIjKlMn");
    let floor = p.part_floor();
    assert_eq!(floor, format!("prt_{:012x}", v - PART_WINDOW_MS * 0x1000));
    assert!(floor < p.last_part);
    p.last_part = "prt_000000000fffAbCd".into();
    assert_eq!(p.part_floor(), "", "before the window: every part");
}
