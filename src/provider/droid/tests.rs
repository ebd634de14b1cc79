use super::*;

fn ctx() -> FileCtx {
    Droid
        .classify(Path::new("-home-u-proj/5e1f.jsonl"))
        .unwrap()
}

fn show(e: &Event) -> String {
    let detail = match &e.payload {
        Payload::UserMessage { text, attachments } => format!("{text:?} +{attachments}"),
        Payload::AssistantMessage { text } | Payload::Thinking { text } => format!("{text:?}"),
        Payload::ToolCall {
            tool_call_id,
            name,
            input,
        } => format!("{tool_call_id} {name} {}", input.get()),
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => format!("{tool_call_id} {output:?} err={is_error}"),
        Payload::SystemMessage { category, text } => format!("{} {text:?}", category.label()),
        Payload::ProviderInfo { topic, .. } => topic.clone(),
        Payload::ProviderRaw { record } => record.get().to_owned(),
        other => format!("{other:?}"),
    };
    format!(
        "{} {} {} {} {detail}",
        e.kind().as_str(),
        e.session_id,
        e.event_id,
        e.timestamp.as_deref().unwrap_or("-")
    )
}

fn read(lines: &[&str]) -> Vec<String> {
    let mut p = Droid.parser(&ctx());
    let mut got = Vec::new();
    let mut offset = 0;
    for l in lines {
        p.record(offset, l.as_bytes(), &mut |e| got.push(show(&e)))
            .unwrap();
        offset += l.len() as u64 + 1;
    }
    got
}

#[test]
fn classifies_session_files_only() {
    let c = |p: &str| Droid.classify(Path::new(p)).map(|c| c.session_hint);
    assert_eq!(c("-home-u-proj/ab.jsonl").as_deref(), Some("ab"));
    assert_eq!(c("ab.jsonl").as_deref(), Some("ab"));
    assert_eq!(c("-home-u-proj/ab.settings.json"), None);
    assert_eq!(c("a/b/ab.jsonl"), None);
}

#[test]
fn maps_every_record_shape() {
    let got = read(&[
        r#"{"type":"session_start","id":"s1","title":"t","cwd":"/home/u/proj"}"#,
        r#"{"type":"message","id":"m1","timestamp":"T1","message":{"role":"user","content":[{"type":"text","text":"fix @a.ts"},{"type":"text","text":"Contents of /home/u/proj/a.ts:\n::export x"},{"type":"text","text":"<system-reminder>x</system-reminder>"},{"type":"image","source":{}}]}}"#,
        r#"{"type":"message","id":"m2","timestamp":"T2","message":{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"ok"},{"type":"tool_use","id":"c1","name":"Read","input":{"file_path":"a.ts"}},{"type":"redacted_thinking","data":"x"}]}}"#,
        r#"{"type":"todo_state","id":"t1","timestamp":"T3","todos":{"todos":"1. x"},"messageIndex":1}"#,
        r#"{"type":"message","id":"m3","timestamp":"T4","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":[{"type":"text","text":"A"}],"is_error":true},{"type":"text","text":"beside"}]}}"#,
        r#"{"type":"compaction_state","id":"k1","timestamp":"T5","summary":"so far"}"#,
        r#"{"type":"agent_turn_outcome","timestamp":"T6"}"#,
        r#"{"type":"whatever"}"#,
    ]);
    let want = [
        "provider.info s1 5e1f:0 - session_meta",
        "provider.info s1 5e1f:0#1 - title",
        "user.message s1 m1 T1 \"fix @a.ts\" +1",
        "system.message s1 m1#1 T1 Injected context \"Contents of /home/u/proj/a.ts:\\n::export x\"",
        "system.message s1 m1#2 T1 Injected context \"<system-reminder>x</system-reminder>\"",
        "assistant.thinking s1 m2 T2 \"hm\"",
        "assistant.message s1 m2#1 T2 \"ok\"",
        "assistant.tool.call s1 m2#2 T2 c1 Read {\"file_path\":\"a.ts\"}",
        "provider.raw s1 m2#3 T2 {\"type\":\"redacted_thinking\",\"data\":\"x\"}",
        "provider.info s1 t1 T3 todo_state",
        "assistant.tool.result s1 m3 T4 c1 \"A\" err=true",
        "system.message s1 m3#1 T4 Model input \"beside\"",
        "system.message s1 k1 T5 Compaction \"so far\"",
    ];
    assert_eq!(got[..want.len()], want);
    assert!(
        got[want.len()].starts_with("provider.info s1 5e1f:"),
        "{got:?}"
    );
    assert!(
        got[want.len() + 1].starts_with("provider.raw s1 5e1f:"),
        "{got:?}"
    );
    assert_eq!(got.len(), want.len() + 2);
}

#[test]
fn the_session_id_survives_a_restore() {
    let mut p = Droid.parser(&ctx());
    p.record(0, br#"{"type":"session_start","id":"s1"}"#, &mut |_| {})
        .unwrap();
    let mut q = Droid.parser(&ctx());
    q.restore(&p.state()).unwrap();
    let mut got = Vec::new();
    let line = r#"{"type":"message","id":"m","message":{"role":"assistant","content":"hi"}}"#;
    q.record(40, line.as_bytes(), &mut |e| got.push(show(&e)))
        .unwrap();
    assert_eq!(got, ["assistant.message s1 m - \"hi\""]);
    assert!(q.restore(&serde_json::json!({"x": 1})).is_err());
    q.restore(&serde_json::Value::Null).unwrap();
}

#[test]
fn malformed_lines_are_refused_and_sniff_reads_session_start() {
    let mut p = Droid.parser(&ctx());
    assert!(p.record(0, b"{oops", &mut |_| {}).is_err());
    assert!(matches!(
        p.record(0, b"\xff", &mut |_| {}),
        Err(Malformed::InvalidUtf8)
    ));
    assert_eq!(
        Droid.sniff(br#"{"type":"session_start","id":"x"}"#),
        Sniff::Exact
    );
    assert_eq!(Droid.sniff(br#"{"type":"user","id":"x"}"#), Sniff::No);
}

/// A reminder Droid put inside the human's block (after their words) held a
/// command line the scan would read once a blank line ended the HTML block:
/// such a block is injected whole.
#[test]
fn a_reminder_inside_the_humans_block_makes_it_injected() {
    assert!(is_injected(
        "fix it\n\n<system-reminder>\nfile changed:\n\n::export /tmp/x\n</system-reminder>"
    ));
    assert!(is_injected("  <system-notification>\nx"));
    assert!(!is_injected("fix it\n\nContents of the report are fine"));
    assert!(!is_injected("fix the <system-reminder> handling"));
}

/// The one-pass reading of `message` lines and the general one give the
/// same events for every shape, including those the one pass hands over;
/// the common shapes are taken by the one pass.
#[test]
fn message_lines_read_in_one_pass_match_the_general_reading() {
    let fast = [
        r#"{"type":"message","id":"m1","timestamp":"T","message":{"role":"user","content":[{"type":"text","text":"fix \"it\"\n"},{"type":"text","text":"Contents of a.ts:\nx"},{"type":"image","source":{"data":"AA=="}}]}}"#,
        r#"{"type":"message","id":"m2","timestamp":"T","message":{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"ok"},{"type":"tool_use","id":"c1","name":"Read","input":{"file_path":"a.ts","n":[1,2]}}]}}"#,
        r#"{"type":"message","id":"m3","message":{"role":"assistant","content":[{"type":"tool_use","id":"","name":"Run"},{"type":"tool_use","name":"Run","input":null}]}}"#,
        r#"{"type":"message","id":"m4","timestamp":"T","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"out\n","is_error":true},{"type":"text","text":"beside"}]}}"#,
        r#"{"type":"message","id":"m5","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}]},{"type":"tool_result","content":null}]}}"#,
        r#"{"message":{"content":[{"text":"key order","type":"text"}],"role":"user"},"id":"m6","type":"message"}"#,
        r#"{"type":"message","id":"m7","message":{"role":"user","content":[{"type":"image","source":{}},{"type":"document"}]}}"#,
        r#"{"type":"message","id":"","timestamp":null,"message":{"role":"system","content":[{"type":"text","text":"from elsewhere"}]}}"#,
        r#"{"type":"message","id":"m8","message":{"role":"assistant","content":[]}}"#,
    ];
    let general_only = [
        r#"{"type":"message","id":"g1","message":{"role":"assistant","content":"a string"}}"#,
        r#"{"type":"message","id":"g2","message":{"role":"assistant","content":[{"type":"redacted_thinking","data":"x"}]}}"#,
        r#"{"type":"message","id":"g3","message":{"role":"user","content":[{"type":"thinking","thinking":"not the human's"}]}}"#,
        r#"{"type":"message","id":"g4","message":{"role":"user","content":[{"type":"tool_result","content":[{"type":"image"}]}]}}"#,
        r#"{"type":"message","id":"g5","message":{"role":"user","content":[{"type":"tool_result","content":{"k":1}}]}}"#,
        r#"{"type":"message","id":"g6","message":{"role":"assistant","content":[{"type":"text"},{"type":3},"loose"]}}"#,
        r#"{"type":"message","id":"g7","message":{"role":"user","content":[{"type":"tool_result","content":"r"},{"type":"image"}]}}"#,
        r#"{"type":"message","id":7,"message":{"role":"assistant","content":[{"type":"text","text":"x"}]}}"#,
        r#"{"type":"message","id":"g8","message":{"content":[{"type":"text","text":"no role"}]}}"#,
        r#"{"type":"message","id":"g9","message":{"role":"assistant","content":[{"type":"text","text":"x","text":"y"}]}}"#,
        r#"{"type":"message","id":"g10","message":"not an object"}"#,
        r#"{"type":"message","id":"g11"}"#,
        r#"{"type":"todo_state","id":"t1","message":{"role":"user","content":[]}}"#,
        r#"{"type":"session_start","id":"s1"}"#,
        r#"{"type":"message","message":{"role":"assistant","content":[{"type":"text","text":"x"}]},"type":"message"}"#,
        r#"{"type":"message","id":"g12","message":{"role":"assistant","content":[{"type":"text","text":"x"}]},"timestamp":5}"#,
        "{oops",
    ];
    let mut events = 0;
    for (line, one_pass) in fast
        .iter()
        .map(|l| (l, true))
        .chain(general_only.iter().map(|l| (l, false)))
    {
        assert_eq!(DroidParser::fast(line).is_some(), one_pass, "{line}");
        let mut p = DroidParser {
            ctx: ctx(),
            session: None,
        };
        let mut q = DroidParser {
            ctx: ctx(),
            session: None,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ra = p.record(9, line.as_bytes(), &mut |e| a.push(e));
        let rb = q.general(9, line.as_bytes(), line, &mut |e| b.push(e));
        assert_eq!(ra.is_ok(), rb.is_ok(), "{line}");
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap(),
            "{line}"
        );
        events += b.len();
    }
    assert!(events > fast.len() + general_only.len(), "{events}");
}

#[test]
fn a_session_reads_alike_in_one_pass_and_the_general_way() {
    let lines: Vec<&[u8]> = [
        r#"{"type":"session_start","id":"s1","title":"t","cwd":"/p"}"#,
        r#"{"type":"message","id":"m1","timestamp":"T","message":{"role":"user","content":[{"type":"text","text":"::capture"}]}}"#,
        r#"{"type":"message","id":"m2","message":{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"Read","input":{}}]}}"#,
        r#"{"type":"message","id":"m3","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"x"}]}}"#,
        r#"{"type":"message","id":"g1","message":{"role":"assistant","content":"a string"}}"#,
        "{oops",
    ]
    .iter()
    .map(|l| l.as_bytes())
    .collect();
    let [fast, general] = read_both_ways(&lines);
    assert_eq!(fast, general);
    assert!(fast.0.len() >= 6, "{:?}", fast.0);
}
