//! Synthetic Gemini CLI chats (`tests/fixtures/gemini/`), each read the way
//! `kato export` reads it and checked event by event through one helper.

use std::path::{Path, PathBuf};

use kato::event::{Event, Payload};
use kato::provider::{by_name, ctx_for_path, Provider};
use kato::reader::{read_path, Limits};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gemini")
        .join(rel)
}

fn gemini() -> &'static dyn Provider {
    by_name("gemini").expect("gemini is registered")
}

/// One line per event: kind, event id, then the payload in short.
fn line(e: &Event) -> String {
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
        } => format!("{tool_call_id} err={is_error} {output:?}"),
        Payload::SystemMessage { category, text } => format!("{} {text:?}", category.label()),
        Payload::ProviderInfo { topic, data } => format!("{topic} {}", data.get()),
        Payload::ProviderRaw { record } => record.get().to_owned(),
        other => format!("{other:?}"),
    };
    format!("{} {} {detail}", e.kind().as_str(), e.event_id)
}

/// Read a fixture whole; no diagnostics allowed.
fn check(rel: &str, expected: &[&str]) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(&fixture(rel), gemini(), Limits::default(), &mut |e| {
        events.push(e)
    })
    .expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    let lines: Vec<String> = events.iter().map(line).collect();
    assert_eq!(lines, expected, "{rel}");
    events
}

#[test]
fn oct_2025_string_content_and_inline_tool_results() {
    let events = check(
        "tmp/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08/chats/session-2025-10-30T23-49-93c0da34.json",
        &[
            r#"provider.info session-2025-10-30T23-49-93c0da34#session_meta session_meta {"sessionId":"93c0da34-0000-4000-8000-000000000001","projectHash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","startTime":"2025-10-30T23:49:27.672Z","lastUpdated":"2025-10-30T23:50:10.000Z"}"#,
            r#"user.message u-1 "read the ci file" +0"#,
            r#"assistant.thinking g-1#thought-0 "**Reviewing the CI**\n\nLooking at the workflow.""#,
            r#"assistant.tool.call g-1#call-0 read_file-1761868169841-4765def363441 read_file {"absolute_path":"/repo/.github/workflows/ci.yml"}"#,
            r#"assistant.tool.result g-1#result-0 read_file-1761868169841-4765def363441 err=false "name: ci\non: push\n""#,
            r#"assistant.tool.call g-1#call-1 read_file-1761868169900-0000000000001 read_file {"absolute_path":"/repo/missing.yml"}"#,
            r#"assistant.tool.result g-1#result-1 read_file-1761868169900-0000000000001 err=true "File not found: /repo/missing.yml""#,
            r#"assistant.message g-2 "The workflow runs on push.""#,
        ],
    );
    // Session id from the document; model per message; timestamps per
    // message, thought and finished call (calls keep the message's).
    assert!(events
        .iter()
        .all(|e| &*e.session_id == "93c0da34-0000-4000-8000-000000000001" && e.subagent.is_none()));
    let models: Vec<Option<&str>> = events.iter().map(|e| e.model.as_deref()).collect();
    assert_eq!(
        models,
        [
            None,
            None,
            Some("gemini-2.5-pro"),
            Some("gemini-2.5-pro"),
            Some("gemini-2.5-pro"),
            Some("gemini-2.5-pro"),
            Some("gemini-2.5-pro"),
            Some("gemini-2.5-flash")
        ]
    );
    let stamps: Vec<&str> = events
        .iter()
        .map(|e| e.timestamp.as_deref().unwrap_or("-"))
        .collect();
    assert_eq!(
        stamps,
        [
            "2025-10-30T23:49:27.672Z",
            "2025-10-30T23:49:27.672Z",
            "2025-10-30T23:49:29.000Z",
            "2025-10-30T23:49:29.822Z",
            "2025-10-30T23:49:29.884Z",
            "2025-10-30T23:49:29.822Z",
            "2025-10-30T23:49:29.950Z",
            "2025-10-30T23:50:10.000Z"
        ]
    );
    let offsets: Vec<u64> = events.iter().map(|e| e.source.offset).collect();
    assert_eq!(offsets, [0, 0, 1, 1, 1, 1, 1, 2]);
}

#[test]
fn apr_2026_parts_display_steering_and_odd_messages() {
    let events = check(
        "tmp/demo/chats/session-2026-04-13T21-50-f328310d.json",
        &[
            r#"provider.info session-2026-04-13T21-50-f328310d#session_meta session_meta {"sessionId":"f328310d-05ea-45ce-b9cb-fe2717bebe12","projectHash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","startTime":"2026-04-13T21:50:00.000Z","lastUpdated":"2026-04-13T21:59:00.000Z","kind":"main","summary":"Summarise notes."}"#,
            r#"system.message m-info Notice "Installing IDE companion...""#,
            r#"system.message m-error Error "Failed to install the companion.""#,
            r#"user.message m-at "@notes.md summarise" +0"#,
            r#"system.message m-at#context Injected context "@notes.md summarise\n--- Content from referenced files ---\nContent from @notes.md:\n# Notes\nline one\n\n--- End of content ---""#,
            r#"assistant.thinking m-g1#thought-0 "**Updating the topic**""#,
            r#"assistant.tool.call m-g1#call-0 update_topic_1776230449297_0 update_topic {"title":"Notes"}"#,
            r#"assistant.tool.result m-g1#result-0 update_topic_1776230449297_0 err=false "Current topic: \"Notes\"""#,
            r#"user.message m-steer "also check the todo list" +0"#,
            r#"system.message m-steer#context Injected context "User steering update:\nInternal instruction: Re-evaluate the active plan using this user steering update.""#,
            r#"assistant.tool.result m-steer#response-2 orphan_1 err=true "glob failed""#,
            r#"provider.raw m-steer#part-3 {"executableCode":{"language":"PYTHON","code":"print(1)"}}"#,
            r#"user.message m-img "what is in this picture?" +1"#,
            r#"provider.raw m-bad {"id":"m-bad","timestamp":"2026-04-13T21:52:30.000Z","type":"user","content":42}"#,
            r#"provider.raw m-new {"id":"m-new","timestamp":"2026-04-13T21:52:40.000Z","type":"compression","content":"summary of earlier turns"}"#,
            r#"system.message m-warn Notice "Approaching the token limit.""#,
            r#"assistant.message m-g2 "It shows a cat.""#,
            r#"assistant.tool.call m-g2#call-0 run_shell_command_1_0 run_shell_command {"command":"sleep 100"}"#,
            r#"assistant.tool.result m-g2#result-0 run_shell_command_1_0 err=true """#,
            r#"assistant.tool.call m-g2#call-1 run_shell_command_1_1 run_shell_command {"command":"ls"}"#,
        ],
    );
    let human: Vec<&str> = events
        .iter()
        .filter(|e| e.is_human_message())
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(human, ["m-at", "m-steer", "m-img"]);
    let raw = events.iter().find(|e| e.event_id == "m-bad").expect("raw");
    assert_eq!(raw.source.record, "user");
    assert_eq!(raw.timestamp.as_deref(), Some("2026-04-13T21:52:30.000Z"));
}

#[test]
fn subagent_chat_belongs_to_the_parent_session() {
    let rel = "tmp/demo/chats/f328310d-05ea-45ce-b9cb-fe2717bebe12/qwerty.json";
    let events = check(
        rel,
        &[
            r#"provider.info qwerty#session_meta session_meta {"sessionId":"qwerty","projectHash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","startTime":"2026-04-13T21:54:00.000Z","lastUpdated":"2026-04-13T21:55:00.000Z","directories":["/repo"],"kind":"subagent"}"#,
            r#"system.message s-1 Subagent prompt "Investigate the failing build.""#,
            r#"assistant.message s-2 "Listing files.""#,
            r#"assistant.tool.call s-2#call-0 qwerty#0-0 list_directory {"dir_path":"."}"#,
            r#"assistant.tool.result s-2#result-0 qwerty#0-0 err=false "src\ntests""#,
            r#"system.message s-3 Model input "You have exceeded the maximum number of turns.""#,
            r#"assistant.message s-4 "Done: the build lacks a dependency.""#,
        ],
    );
    for e in &events {
        assert_eq!(&*e.session_id, "f328310d-05ea-45ce-b9cb-fe2717bebe12");
        let sub = e.subagent.as_ref().expect("subagent");
        assert_eq!(sub.id.as_deref(), Some("qwerty"));
        assert_eq!(sub.label.as_deref(), Some("subagent"));
        assert!(!e.is_human_message());
    }
    // The path alone says as much, before the document is read.
    let ctx = ctx_for_path(gemini(), &fixture(rel));
    assert_eq!(ctx.session_hint, "f328310d-05ea-45ce-b9cb-fe2717bebe12");
    assert_eq!(ctx.file_tag, "qwerty");
}

/// Feed successive versions of one document to one parser, saving and
/// restoring its state in between as the daemon does.
fn feed_versions(versions: &[&str]) -> Vec<Event> {
    let provider = gemini();
    // The versions stand for one file rewritten in place.
    let ctx = ctx_for_path(
        provider,
        Path::new("grow/chats/session-2026-04-15T03-00-0a1b2c3d.json"),
    );
    let mut events = Vec::new();
    let mut state = serde_json::Value::Null;
    for rel in versions {
        let bytes = std::fs::read(fixture(rel)).expect("read");
        let mut parser = provider.parser(&ctx);
        parser.restore(&state).expect("restore");
        parser
            .record(0, &bytes, &mut |e| events.push(e))
            .expect("parse");
        state = parser.state();
    }
    events
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event_id.as_str()).collect()
}

#[test]
fn growing_document_delivers_each_event_once() {
    let stepwise = feed_versions(&["grow/step-1.json", "grow/step-2.json", "grow/step-3.json"]);
    assert_eq!(
        ids(&stepwise),
        [
            "session-2026-04-15T03-00-0a1b2c3d#session_meta",
            "q-1",
            "a-1#thought-0",
            "a-1#call-0",
            // step 2: the running call finished and a second one was added
            "a-1#result-0",
            "a-1#call-1",
            // step 3: the second call finished, two more messages
            "a-1#result-1",
            "a-2",
            "q-2",
        ]
    );
    // Apart from the metadata (delivered once, as first seen), the same
    // events as one read of the final document.
    let once = feed_versions(&["grow/step-3.json"]);
    let json = |evs: &[Event]| -> Vec<String> {
        evs.iter()
            .skip(1)
            .map(|e| serde_json::to_string(e).expect("serialize"))
            .collect()
    };
    assert_eq!(json(&stepwise), json(&once));
    // Reading the same version again delivers nothing.
    let again = feed_versions(&["grow/step-3.json", "grow/step-3.json"]);
    assert_eq!(again.len(), once.len());
}

#[test]
fn rewound_document_starts_over() {
    let events = feed_versions(&["grow/step-3.json", "grow/rewound.json"]);
    let n = feed_versions(&["grow/step-3.json"]).len();
    let after: Vec<&str> = ids(&events[n..]).to_vec();
    assert_eq!(
        after,
        [
            "session-2026-04-15T03-00-0a1b2c3d#session_meta",
            "q-1",
            "a-1#thought-0",
            "a-1#call-0",
            "a-1#result-0",
            "a-1#call-1",
            "a-1#result-1",
            "a-2b",
        ]
    );
}
