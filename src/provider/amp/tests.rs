use std::path::Path;

use serde_json::json;

use super::*;
use crate::event::Kind;

fn ctx() -> FileCtx {
    Amp.classify(Path::new("T-abc.json")).unwrap()
}

/// Events (id, kind) of feeding each document in turn to one parser,
/// the state saved and restored between documents.
fn feed(docs: &[serde_json::Value]) -> Vec<Vec<(String, Kind)>> {
    let mut state = Value::Null;
    docs.iter()
        .map(|d| {
            let mut p = Amp.parser(&ctx());
            p.restore(&state).unwrap();
            let mut evs = Vec::new();
            p.record(0, d.to_string().as_bytes(), &mut |e| {
                evs.push((e.event_id.clone(), e.kind()))
            })
            .unwrap();
            state = p.state();
            evs
        })
        .collect()
}

fn doc(messages: serde_json::Value) -> serde_json::Value {
    json!({
        "v": 3, "id": "T-abc", "created": 1_700_000_000_000u64,
        "env": {"initial": {"trees": [{"uri": "file:///home/u/my%20proj"}]}},
        "messages": messages,
    })
}

fn user(id: i64, text: &str) -> serde_json::Value {
    json!({"role": "user", "messageId": id, "content": [{"type": "text", "text": text}],
           "meta": {"sentAt": 1_700_000_001_000u64}})
}

fn assistant(id: i64, state: &str, text: &str) -> serde_json::Value {
    json!({"role": "assistant", "messageId": id, "state": {"type": state},
           "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": text},
                       {"type": "tool_use", "id": "tu1", "name": "Read", "input": {"path": "a"}}],
           "usage": {"model": "m1", "timestamp": "2024-01-01T00:00:00Z"}})
}

fn result(id: i64, status: &str) -> serde_json::Value {
    json!({"role": "user", "messageId": id,
           "content": [{"type": "tool_result", "toolUseID": "tu1",
                        "run": {"status": status, "result": {"content": "x"}}}]})
}

#[test]
fn classify_takes_thread_files_only() {
    assert!(Amp.classify(Path::new("T-1.json")).is_some());
    assert!(Amp.classify(Path::new("secrets.json")).is_none());
    assert!(Amp.classify(Path::new("T-1.json.tmp")).is_none());
    assert_eq!(
        Amp.env_roots(Path::new("/x")),
        vec![PathBuf::from("/x/amp/threads")]
    );
}

#[test]
fn sniff_knows_a_thread() {
    let d = doc(json!([]));
    let pretty = serde_json::to_string_pretty(&d).unwrap();
    assert_eq!(Amp.sniff(pretty.as_bytes()), Sniff::Exact);
    assert_eq!(Amp.sniff(br#"{"sessionId":"x","messages":[]}"#), Sniff::No);
}

#[test]
fn a_streaming_message_is_delivered_once_when_complete() {
    let out = feed(&[
        doc(json!([user(0, "hi")])),
        doc(json!([user(0, "hi"), assistant(1, "streaming", "par")])),
        doc(json!([
            user(0, "hi"),
            assistant(1, "streaming", "partial text")
        ])),
        doc(json!([
            user(0, "hi"),
            assistant(1, "complete", "partial text, done")
        ])),
        doc(json!([
            user(0, "hi"),
            assistant(1, "complete", "partial text, done")
        ])),
    ]);
    let kinds: Vec<Vec<Kind>> = out
        .iter()
        .map(|v| v.iter().map(|(_, k)| *k).collect())
        .collect();
    assert_eq!(
        kinds[0],
        [Kind::ProviderInfo, Kind::ProviderInfo, Kind::UserMessage]
    );
    assert!(kinds[1].is_empty() && kinds[2].is_empty(), "{kinds:?}");
    assert_eq!(
        kinds[3],
        [Kind::Thinking, Kind::AssistantMessage, Kind::ToolCall]
    );
    assert!(kinds[4].is_empty());
}

#[test]
fn a_running_tool_result_is_delivered_when_it_finishes() {
    let base = [user(0, "hi"), assistant(1, "complete", "t")];
    let with = |r: serde_json::Value| {
        let mut m = base.to_vec();
        m.push(r);
        doc(serde_json::Value::Array(m))
    };
    let out = feed(&[
        with(result(2, "in-progress")),
        with(result(2, "done")),
        with(result(2, "done")),
    ]);
    assert_eq!(out[0].len(), 6, "{:?}", out[0]);
    assert_eq!(out[1], [("T-abc:2#0".to_owned(), Kind::ToolResult)]);
    assert!(out[2].is_empty());
}

#[test]
fn flush_delivers_what_never_settled() {
    let d = doc(json!([user(0, "hi"), assistant(1, "streaming", "half")]));
    let mut p = Amp.parser(&ctx());
    let mut n = 0;
    p.record(0, d.to_string().as_bytes(), &mut |_| n += 1)
        .unwrap();
    assert_eq!(n, 3);
    let mut flushed = Vec::new();
    p.flush(&mut |e| flushed.push(e.kind()));
    assert_eq!(
        flushed,
        [Kind::Thinking, Kind::AssistantMessage, Kind::ToolCall]
    );
}

#[test]
fn an_edited_thread_starts_over() {
    let out = feed(&[
        doc(json!([user(0, "a"), assistant(1, "complete", "b")])),
        doc(json!([user(2, "edited")])),
    ]);
    let ids: Vec<&str> = out[1].iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["T-abc#session_meta", "T-abc#cwd", "T-abc:2"]);
}

#[test]
fn fields_are_mapped() {
    let d = doc(json!([
        user(0, "hi"),
        assistant(1, "complete", "t"),
        result(2, "error"),
        {"role": "info", "messageId": 3, "content": []},
        {"role": "user", "messageId": 4, "content": [{"type": "image"}, {"type": "mystery"}]},
    ]));
    let mut p = Amp.parser(&ctx());
    let mut evs = Vec::new();
    p.record(0, d.to_string().as_bytes(), &mut |e| evs.push(e))
        .unwrap();
    let cwd = evs.iter().find(|e| e.event_id == "T-abc#cwd").unwrap();
    match &cwd.payload {
        Payload::ProviderInfo { data, .. } => assert_eq!(data.get(), "\"/home/u/my proj\""),
        p => panic!("{p:?}"),
    }
    let u = evs.iter().find(|e| e.event_id == "T-abc:0").unwrap();
    assert_eq!(u.timestamp.as_deref(), Some("2023-11-14T22:13:21.000Z"));
    assert!(u.is_human_message());
    let a = evs.iter().find(|e| e.event_id == "T-abc:1#1").unwrap();
    assert_eq!(a.model.as_deref(), Some("m1"));
    assert_eq!(a.timestamp.as_deref(), Some("2024-01-01T00:00:00Z"));
    let r = evs.iter().find(|e| e.event_id == "T-abc:2#0").unwrap();
    match &r.payload {
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => {
            assert_eq!(
                (tool_call_id.as_str(), output.as_str(), *is_error),
                ("tu1", r#"{"content":"x"}"#, true)
            );
        }
        p => panic!("{p:?}"),
    }
    let kinds: Vec<Kind> = evs.iter().skip(7).map(Event::kind).collect();
    assert_eq!(
        kinds,
        [Kind::ProviderRaw, Kind::UserMessage, Kind::ProviderRaw]
    );
}

#[test]
fn not_a_thread_is_malformed() {
    let mut p = Amp.parser(&ctx());
    for bad in [&b"[]"[..], b"{\"messages\":3}", b"{"] {
        assert!(p.record(0, bad, &mut |_| {}).is_err());
    }
    assert!(p.restore(&json!({"nope": 1})).is_err());
}
