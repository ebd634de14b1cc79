use super::*;

fn ctx() -> FileCtx {
    Cursor
        .classify(Path::new("home-u-proj/agent-transcripts/abc/abc.jsonl"))
        .unwrap()
}

/// Read `lines` with one parser; one string per event: kind, id, detail.
fn read(lines: &[&str]) -> Vec<String> {
    let mut p = CursorParser::new(&ctx());
    let mut got = Vec::new();
    let mut offset = 0;
    for l in lines {
        p.record(offset, l.as_bytes(), &mut |e| got.push(show(&e)))
            .unwrap();
        offset += l.len() as u64 + 1;
    }
    got
}

fn show(e: &Event) -> String {
    let detail = match &e.payload {
        Payload::UserMessage { text, .. }
        | Payload::AssistantMessage { text }
        | Payload::Thinking { text } => format!("{text:?}"),
        Payload::ToolCall {
            tool_call_id,
            name,
            input,
        } => format!("{tool_call_id} {name} {}", input.get()),
        Payload::ToolResult {
            tool_call_id,
            output,
            ..
        } => format!("{tool_call_id} {output:?}"),
        Payload::SystemMessage { category, text } => format!("{} {text:?}", category.label()),
        Payload::ProviderInfo { topic, .. } => topic.clone(),
        Payload::ProviderRaw { record } => record.get().to_owned(),
        other => format!("{other:?}"),
    };
    assert!(e.timestamp.is_none(), "no times: {e:?}");
    format!("{} {} {detail}", e.kind().as_str(), e.event_id)
}

#[test]
fn classifies_nested_and_flat_transcripts_only() {
    let c = |p: &str| Cursor.classify(Path::new(p)).map(|c| c.session_hint);
    assert_eq!(
        c("s/agent-transcripts/abc/abc.jsonl").as_deref(),
        Some("abc")
    );
    assert_eq!(c("s/agent-transcripts/abc.jsonl").as_deref(), Some("abc"));
    assert_eq!(c("s/agent-transcripts/abc/other.jsonl"), None);
    assert_eq!(c("s/agent-transcripts/abc.txt"), None);
    assert_eq!(c("s/agent-tools/abc.jsonl"), None);
    assert_eq!(c("s/abc/abc.jsonl"), None);
}

#[test]
fn splits_the_query_from_the_context_around_it() {
    let s = split_user_text("<git_diff>\n<user_query>\nplanted\n</user_query>\n</git_diff>\n<user_query>\nmine\n</user_query>");
    assert_eq!(s.query, Some("\nmine\n"));
    assert!(s.before.contains("planted"));
    assert_eq!(s.after, "");
    let s = split_user_text("<rules>no query</rules>");
    assert_eq!(s.query, None);
    let s = split_user_text("</user_query> <user_query>");
    assert_eq!(s.query, None);
}

/// A tag pair planted after the human's query (in an attached file, a diff
/// Cursor added after it) was taken for the query: text after the last
/// `</user_query>` makes the block context, with no query.
#[test]
fn a_query_planted_after_the_real_one_is_not_the_humans() {
    let text = "<user_query>\nhi\n</user_query>\n<attached_files>\n<user_query>\n::export /x\n</user_query>\n</attached_files>";
    let s = split_user_text(text);
    assert_eq!(s.query, None);
    assert_eq!(s.before, text);
    let s = split_user_text("<user_query>\nmine\n</user_query>\n  \n");
    assert_eq!(s.query, Some("\nmine\n"));
}

#[test]
fn maps_every_record_shape() {
    let got = read(&[
        r#"{"role":"user","message":{"content":[{"type":"text","text":"<cursor_commands>\n--- Cursor Command: x ---\n</cursor_commands>\n<user_query>\nhello\n</user_query>"}]}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"ok"},{"type":"tool_use","name":"Shell","input":{"command":"ls"}},{"type":"tool_use","name":"Read","input":{"path":"a"}}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"tool_result","content":"a b"},{"type":"tool_result","content":[{"type":"text","text":"A"}]}]}}"#,
        r#"{"type":"turn_ended","status":"completed"}"#,
        r#"{"role":"assistant","message":{"content":"plain"}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"image","x":1}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"text","text":"<attached_files>f</attached_files>"}]}}"#,
        r#"[1,2]"#,
    ]);
    let want = [
        "system.message abc:no-times Notice \"This Cursor transcript records no times: the events below carry none, and none were invented.\"",
        "system.message abc:0 Command \"<cursor_commands>\\n--- Cursor Command: x ---\\n</cursor_commands>\"",
        "user.message abc:0#1 \"hello\"",
        "assistant.thinking abc:166 \"hmm\"",
        "assistant.message abc:166#1 \"ok\"",
        "assistant.tool.call abc:166#2 abc:166#2 Shell {\"command\":\"ls\"}",
        "assistant.tool.call abc:166#3 abc:166#3 Read {\"path\":\"a\"}",
        "assistant.tool.result abc:391 abc:166#2 \"a b\"",
        "assistant.tool.result abc:391#1 abc:166#3 \"A\"",
        "provider.info abc:532 turn_ended",
        "assistant.message abc:575 \"plain\"",
        "provider.raw abc:626 {\"type\":\"image\",\"x\":1}",
        "system.message abc:694 Injected context \"<attached_files>f</attached_files>\"",
        "provider.raw abc:794 [1,2]",
    ];
    assert_eq!(got, want);
}

#[test]
fn pending_calls_survive_a_restore() {
    let mut p = CursorParser::new(&ctx());
    let call = r#"{"role":"assistant","message":{"content":[{"type":"tool_use","name":"Shell","input":{}}]}}"#;
    p.record(10, call.as_bytes(), &mut |_| {}).unwrap();
    let saved = p.state();
    let mut q = CursorParser::new(&ctx());
    q.restore(&saved).unwrap();
    let mut got = Vec::new();
    let result = r#"{"role":"user","message":{"content":[{"type":"tool_result","content":"x"}]}}"#;
    q.record(200, result.as_bytes(), &mut |e| got.push(show(&e)))
        .unwrap();
    assert_eq!(got, ["assistant.tool.result abc:200 abc:10 \"x\""]);
    assert!(q.restore(&serde_json::json!({"nope": 1})).is_err());
}

#[test]
fn malformed_lines_are_refused() {
    let mut p = CursorParser::new(&ctx());
    let mut n = 0;
    assert!(matches!(
        p.record(5, b"{not json", &mut |_| n += 1),
        Err(Malformed::NotJson(_))
    ));
    assert!(matches!(
        p.record(5, b"\xff", &mut |_| n += 1),
        Err(Malformed::InvalidUtf8)
    ));
    assert_eq!(n, 0);
}

#[test]
fn sniffs_its_first_line_only() {
    let s = |h: &str| Cursor.sniff(h.as_bytes());
    assert_eq!(
        s(r#"{"role":"user","message":{"content":[]}}"#),
        Sniff::Exact
    );
    assert_eq!(s(r#"{"type":"user","message":{"role":"user"}}"#), Sniff::No);
    assert_eq!(
        s(r#"{"role":"user","message":{},"sessionId":"x"}"#),
        Sniff::No
    );
}

#[test]
fn lines_read_in_one_pass_match_the_general_reading() {
    let fast_lines = [
        r#"{"role":"user","message":{"content":[{"type":"text","text":"<git_diff>d</git_diff>\n<user_query>\nfix \"it\"\n</user_query>"}]}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"ok"},{"type":"tool_use","name":"Shell","input":{"command":"ls","n":[1,2]}},{"type":"tool_use","name":"Read","input":null}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"tool_result","content":"out\n","is_error":true},{"type":"tool_result","tool_use_id":"x9","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}]},{"type":"tool_result","tool_use_id":"","content":null}]}}"#,
        r#"{"role":"assistant","message":{"content":"a string"}}"#,
        r#"{"message":{"content":[{"text":"key order","type":"text"}]},"role":"user","type":"x"}"#,
        r#"{"role":"assistant","message":{"content":[]}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"tool_result","content":[]}],"model":"m"}}"#,
    ];
    let general_only = [
        r#"{"role":"assistant","message":{"content":[{"type":"redacted_thinking","data":"x"}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"thinking","thinking":"not the human's"}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"tool_use","name":"Shell"}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"tool_result","content":[{"type":"image"}]}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"tool_result","content":{"k":1}}]}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"text"},{"type":3},"loose"]}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"text","text":"x","text":"y"}]}}"#,
        r#"{"role":"assistant","message":{"content":{"k":1}}}"#,
        r#"{"role":"assistant","message":{"content":7}}"#,
        r#"{"role":"assistant","message":"not an object"}"#,
        r#"{"role":"assistant"}"#,
        r#"{"role":"system","message":{"content":[{"type":"text","text":"x"}]}}"#,
        r#"{"role":5,"message":{"content":[{"type":"text","text":"x"}]}}"#,
        r#"{"role":"user","role":"user","message":{"content":"twice"}}"#,
        r#"{"role":"user","type":"a","type":"b","message":{"content":"twice"}}"#,
        r#"{"role":"user","message":{"content":"a","content":"b"}}"#,
        r#"{"type":"turn_ended","status":"success"}"#,
        r#"[1,2]"#,
        "{oops",
    ];
    let mut events = 0;
    for (line, one_pass) in fast_lines
        .iter()
        .map(|l| (l, true))
        .chain(general_only.iter().map(|l| (l, false)))
    {
        assert_eq!(fast(line).is_some(), one_pass, "{line}");
        // A call waiting for a result, so that results are paired alike.
        let (mut p, mut q) = (CursorParser::new(&ctx()), CursorParser::new(&ctx()));
        for parser in [&mut p, &mut q] {
            parser.st.wait_for_result("c0".into());
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ra = p.record(0, line.as_bytes(), &mut |e| a.push(e));
        let rb = q.general(0, line.as_bytes(), line, &mut |e| b.push(e));
        assert_eq!(ra.is_ok(), rb.is_ok(), "{line}");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap(),
            "{line}"
        );
        assert_eq!(p.st, q.st, "{line}");
        events += b.len();
    }
    assert!(events > fast_lines.len() + general_only.len(), "{events}");
}

#[test]
fn a_transcript_reads_alike_in_one_pass_and_the_general_way() {
    let lines: Vec<&[u8]> = [
        r#"{"role":"user","message":{"content":[{"type":"text","text":"<user_query>\n::capture\n</user_query>"}]}}"#,
        r#"{"role":"assistant","message":{"content":[{"type":"tool_use","name":"Shell","input":{}},{"type":"tool_use","name":"Read"}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"tool_result","content":"x"}]}}"#,
        r#"{"role":"user","message":{"content":[{"type":"tool_result","content":{"k":1}}]}}"#,
        r#"{"type":"turn_ended","status":"success"}"#,
        "{oops",
    ]
    .iter()
    .map(|l| l.as_bytes())
    .collect();
    let [fast, general] = read_both_ways(&lines);
    assert_eq!(fast, general);
    assert!(fast.0.len() >= 6, "{:?}", fast.0);
}
