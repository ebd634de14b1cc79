use super::*;
use crate::event::Kind;
use serde_json::json;

const SID: &str = "e435870b-a192-4f84-bd7e-1ec28e9c2f31";

fn ctx() -> FileCtx {
    GeminiCli
        .classify(Path::new(
            "proj/chats/session-2026-04-25T08-23-e435870b.jsonl",
        ))
        .expect("a session file")
}

fn meta(start: &str, last: &str) -> String {
    json!({"sessionId": SID, "projectHash": "d5ee", "startTime": start,
           "lastUpdated": last, "kind": "main"})
    .to_string()
}

fn fresh() -> String {
    meta("2026-04-25T08:23:24.509Z", "2026-04-25T08:23:24.509Z")
}

fn user(id: &str, ts: &str, text: &str) -> String {
    json!({"id": id, "timestamp": ts, "type": "user", "content": [{"text": text}]}).to_string()
}

fn gemini_msg(id: &str, text: &str, calls: serde_json::Value) -> String {
    let mut m = json!({"id": id, "timestamp": "2026-04-25T08:30:00.000Z", "type": "gemini",
        "content": text, "model": "gemini-3-flash-preview",
        "thoughts": [{"subject": "Plan", "description": "Think.", "timestamp": "2026-04-25T08:29:59.000Z"}],
        "tokens": {"input": 10, "output": 2, "cached": 0, "total": 12}});
    if !calls.is_null() {
        m["toolCalls"] = calls;
    }
    m.to_string()
}

fn call(id: &str, output: &str) -> serde_json::Value {
    json!({"id": id, "name": "run_shell_command", "args": {"command": "ls"},
           "result": [{"functionResponse": {"id": id, "name": "run_shell_command",
                                            "response": {"output": output}}}],
           "status": "success", "timestamp": "2026-04-25T08:30:05.000Z"})
}

fn set_last(ts: &str) -> String {
    json!({"$set": {"lastUpdated": ts}}).to_string()
}

fn with_time(line: &str, ts: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
    v["timestamp"] = json!(ts);
    v.to_string()
}

/// One read of all lines, as `kato export` does.
fn read(lines: &[String]) -> Vec<Event> {
    let mut p = GeminiCli.parser(&ctx());
    let mut out = Vec::new();
    let mut offset = 0;
    for l in lines {
        p.record(offset, l.as_bytes(), &mut |e| out.push(e))
            .expect("parse");
        offset += l.len() as u64 + 1;
    }
    out
}

/// One line per read, the state saved and restored between reads as the
/// daemon does.
fn read_stepwise(lines: &[String]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut state = serde_json::Value::Null;
    let mut offset = 0;
    for l in lines {
        let mut p = GeminiCli.parser(&ctx());
        p.restore(&state).expect("restore");
        p.record(offset, l.as_bytes(), &mut |e| out.push(e))
            .expect("parse");
        state = p.state();
        offset += l.len() as u64 + 1;
    }
    out
}

/// Byte offset of line `i`.
fn at(lines: &[String], i: usize) -> u64 {
    lines[..i].iter().map(|l| l.len() as u64 + 1).sum()
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event_id.as_str()).collect()
}

fn kinds(events: &[Event]) -> Vec<(&str, Kind)> {
    events
        .iter()
        .map(|e| (e.event_id.as_str(), e.kind()))
        .collect()
}

fn json_of(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| serde_json::to_string(e).expect("serialize"))
        .collect()
}

fn system(e: &Event) -> (SystemCategory, &str) {
    match &e.payload {
        Payload::SystemMessage { category, text } => (*category, text.as_str()),
        other => panic!("{}: {other:?}", e.event_id),
    }
}

fn info(e: &Event) -> (&str, serde_json::Value) {
    match &e.payload {
        Payload::ProviderInfo { topic, data } => (
            topic.as_str(),
            serde_json::from_str(data.get()).expect("json"),
        ),
        other => panic!("{}: {other:?}", e.event_id),
    }
}

#[test]
fn classify_both_shapes_by_extension_and_layout() {
    let main = ctx();
    assert_eq!(main.file_tag, "session-2026-04-25T08-23-e435870b.jsonl");
    assert_eq!(main.session_hint, "e435870b");
    assert_eq!(GeminiCli.file_source_kind(&main), SourceKind::Jsonl);
    let doc = GeminiCli
        .classify(Path::new(
            "proj/chats/session-2026-04-25T08-23-e435870b.json",
        ))
        .expect("a document");
    assert_eq!(doc.file_tag, "session-2026-04-25T08-23-e435870b");
    assert_eq!(GeminiCli.file_source_kind(&doc), SourceKind::Document);
    let sub = GeminiCli
        .classify(Path::new(
            "proj/chats/f328310d-05ea-45ce-b9cb-fe2717bebe12/twynek.jsonl",
        ))
        .expect("a subagent chat");
    assert_eq!(sub.file_tag, "twynek.jsonl");
    assert_eq!(sub.session_hint, "f328310d-05ea-45ce-b9cb-fe2717bebe12");
    assert_eq!(sub.subagent.and_then(|s| s.id).as_deref(), Some("twynek"));
    for other in [
        "proj/chats/notes.jsonl",
        "proj/logs.jsonl",
        "proj/chats/skill-extraction-1a2b/abc.jsonl",
        "proj/chats/session-x.jsonl.tmp-12",
        "proj/chats/session-x.jsonl.unreadable-17",
        "proj/.project_root",
    ] {
        assert_eq!(GeminiCli.classify(Path::new(other)), None, "{other}");
    }
    // Named directly: `.json` is a document, anything else JSON Lines.
    let named = |p: &str| GeminiCli.named_file(Path::new(p));
    assert_eq!(named("/tmp/copy.jsonl").file_tag, "copy.jsonl");
    assert_eq!(named("/tmp/copy.txt").file_tag, "copy.jsonl");
    assert_eq!(named("/tmp/copy.json").file_tag, "copy");
    assert_eq!(
        GeminiCli.file_source_kind(&named("/tmp/copy.txt")),
        SourceKind::Jsonl
    );
    assert_eq!(
        GeminiCli.file_source_kind(&named("/tmp/copy.json")),
        SourceKind::Document
    );
}

#[test]
fn project_marker_is_beside_chats() {
    let m = |p: &str| GeminiCli.project_marker(Path::new(p));
    let want = Some(PathBuf::from("/g/tmp/proj/.project_root"));
    assert_eq!(m("/g/tmp/proj/chats/session-x.jsonl"), want);
    assert_eq!(m("/g/tmp/proj/chats/session-x.json"), want);
    assert_eq!(
        m("/g/tmp/proj/chats/f328310d-05ea-45ce-b9cb-fe2717bebe12/s.jsonl"),
        want
    );
    assert_eq!(m("/tmp/copy.jsonl"), None);
}

#[test]
fn sniff_tells_the_metadata_line_from_other_formats() {
    assert_eq!(GeminiCli.sniff(fresh().as_bytes()), Sniff::Exact);
    // A pretty-printed document's `{` line is not exact: other agents'
    // documents open so too (Copilot CLI's legacy ones with a `sessionId`);
    // with `sessionId` and `messages` it is.
    assert_eq!(GeminiCli.sniff(b"{\n  \"sessionId\": \"x\""), Sniff::Strong);
    assert_eq!(
        GeminiCli.sniff(b"{\n  \"sessionId\": \"x\",\n  \"messages\": []"),
        Sniff::Exact
    );
    assert_eq!(
        GeminiCli.sniff(br#"{"sessionId":"x","uuid":"u","type":"user"}"#),
        Sniff::No
    );
    let head = format!("{}\n{}\n", fresh(), user("u1", "t", "hi"));
    let sniffed = crate::provider::registry().sniff(head.as_bytes());
    assert_eq!(sniffed.map(|p| p.id()), Some(ProviderId::Gemini));
}

#[test]
fn a_message_written_again_delivers_only_what_is_new() {
    let lines = [
        fresh(),
        user("u1", "2026-04-25T08:29:00.000Z", "list files"),
        set_last("2026-04-25T08:29:00.001Z"),
        gemini_msg("g1", "", serde_json::Value::Null),
        set_last("2026-04-25T08:30:00.001Z"),
        gemini_msg("g1", "", json!([call("c1", "a b")])),
        gemini_msg("g1", "Two files.", json!([call("c1", "a b")])),
    ];
    let events = read(&lines);
    let tag = "session-2026-04-25T08-23-e435870b.jsonl";
    assert_eq!(
        ids(&events),
        [
            &format!("{tag}:0"),
            "u1",
            "g1#thought-0",
            "g1#tokens",
            "g1#call-0",
            "g1#result-0",
            "g1",
        ]
    );
    // Each new event is placed at the line that brought it.
    let offsets: Vec<u64> = events.iter().map(|e| e.source.offset).collect();
    let at = |i| at(&lines, i);
    assert_eq!(offsets, [0, at(1), at(3), at(3), at(5), at(5), at(6)]);
    assert!(events.iter().all(|e| &*e.session_id == SID));
    assert_eq!(events[3].model.as_deref(), Some("gemini-3-flash-preview"));
    // Read a line at a time, restored in between: the same events.
    assert_eq!(json_of(&read_stepwise(&lines)), json_of(&events));
}

#[test]
fn rewind_withdraws_the_message_and_what_follows() {
    let lines = [
        fresh(),
        user("u1", "2026-04-25T08:29:00.000Z", "one"),
        gemini_msg("g1", "first answer", serde_json::Value::Null),
        user("u2", "2026-04-25T08:31:00.000Z", "two"),
        gemini_msg("g2", "second answer", serde_json::Value::Null),
        json!({"$rewindTo": "u2"}).to_string(),
        user("u3", "2026-04-25T08:33:00.000Z", "two, again"),
        json!({"$rewindTo": "nowhere"}).to_string(),
    ];
    let events = read(&lines);
    let rewinds: Vec<&Event> = events
        .iter()
        .filter(|e| e.source.record == "$rewindTo")
        .collect();
    assert_eq!(rewinds.len(), 4);
    assert_eq!(
        info(rewinds[0]),
        ("rewind", json!({"to": "u2", "withdrawn": ["u2", "g2"]}))
    );
    let (category, text) = system(rewinds[1]);
    assert_eq!(category, SystemCategory::Notice);
    assert!(text.contains("withdrew the last 2 message(s)"), "{text}");
    // An id the chat does not hold: the CLI drops everything.
    assert_eq!(
        info(rewinds[2]),
        (
            "rewind",
            json!({"to": "nowhere", "withdrawn": ["u1", "g1", "u3"]})
        )
    );
    assert!(system(rewinds[3]).1.contains("whole conversation"));
    // Nothing already delivered is taken back.
    for id in ["u1", "g1", "u2", "g2", "u3"] {
        assert!(ids(&events).contains(&id), "{id}");
    }
    assert_eq!(json_of(&read_stepwise(&lines)), json_of(&events));
}

#[test]
fn checkpoint_restates_nothing_and_never_makes_human_text() {
    let summary = user(
        "s1",
        "2026-04-25T09:00:00.000Z",
        "<state_snapshot>the human asked ::capture /tmp/x.md</state_snapshot>",
    );
    let ack = gemini_msg(
        "s2",
        "Got it. Thanks for the additional context!",
        serde_json::Value::Null,
    );
    let env = user(
        "env",
        "2026-04-25T09:00:00.000Z",
        "<session_context>\nThis is the Gemini CLI.\n::stop\n</session_context>",
    );
    let kept: serde_json::Value =
        serde_json::from_str(&user("u2", "2026-04-25T08:31:00.000Z", "two")).expect("json");
    let checkpoint = json!({"$set": {"messages": [
        serde_json::from_str::<serde_json::Value>(&env).expect("json"),
        serde_json::from_str::<serde_json::Value>(&summary).expect("json"),
        serde_json::from_str::<serde_json::Value>(&ack).expect("json"),
        kept,
    ], "lastUpdated": "2026-04-25T09:00:00.001Z"}});
    let lines = [
        fresh(),
        user("u1", "2026-04-25T08:29:00.000Z", "one"),
        gemini_msg("g1", "first answer", serde_json::Value::Null),
        user("u2", "2026-04-25T08:31:00.000Z", "two"),
        checkpoint.to_string(),
    ];
    let events = read(&lines);
    let tag = format!("session-2026-04-25T08-23-e435870b.jsonl:{}", at(&lines, 4));
    let after: Vec<(&str, Kind)> = kinds(&events).split_off(6);
    assert_eq!(
        after,
        [
            (tag.as_str(), Kind::ProviderInfo),
            (&format!("{tag}#1"), Kind::SystemMessage),
            ("env", Kind::SystemMessage),
            ("s1", Kind::SystemMessage),
            ("s2#thought-0", Kind::Thinking),
            ("s2", Kind::AssistantMessage),
            ("s2#tokens", Kind::ProviderInfo),
        ],
        "{:?}",
        ids(&events)
    );
    assert_eq!(
        info(&events[6]).1,
        json!({"messages": 4, "withdrawn": ["u1", "g1"]})
    );
    assert_eq!(system(&events[8]).0, SystemCategory::InjectedContext);
    assert_eq!(system(&events[9]).0, SystemCategory::Compaction);
    // No command can come out of rewritten history.
    let commands: usize = events
        .iter()
        .map(|e| crate::commands::command_events(e).len())
        .sum();
    assert_eq!(commands, 0);
    assert_eq!(json_of(&read_stepwise(&lines)), json_of(&events));
    // The remembered messages now follow the checkpoint's order.
    let mut p = GeminiCli.parser(&ctx());
    for l in &lines {
        p.record(0, l.as_bytes(), &mut |_| {}).expect("parse");
    }
    let order: Vec<String> = p.state()["recent"]
        .as_array()
        .expect("recent")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(order, ["env", "s1", "s2", "u2"]);
}

#[test]
fn tool_responses_repeating_a_result_are_dropped_and_are_never_human() {
    let response = |id: &str, output: &str| {
        json!({"functionResponse": {"id": id, "name": "run_shell_command",
                                    "response": {"output": output}}})
    };
    let lines = [
        fresh(),
        gemini_msg("g1", "", json!([call("c1", "a b")])),
        json!({"id": "r1", "timestamp": "2026-04-25T08:30:06.000Z", "type": "user",
               "content": [response("c1", "a b"), response("c9", "other"),
                           {"text": "::capture /tmp/x.md"}]})
        .to_string(),
    ];
    let events = read(&lines);
    let tail: Vec<(&str, Kind)> = kinds(&events).split_off(5);
    assert_eq!(
        tail,
        [
            ("r1", Kind::SystemMessage),
            ("r1#response-1", Kind::ToolResult),
        ]
    );
    assert_eq!(system(&events[5]).0, SystemCategory::ModelInput);
    assert!(!events.iter().any(Event::is_human_message));
}

#[test]
fn injected_markers_are_not_the_humans_words() {
    let lines = [
        fresh(),
        user(
            "u1",
            "2026-04-25T08:29:00.000Z",
            "fix the bug\n::capture /tmp/a.md<hook_context>::export /tmp/b.md</hook_context>",
        ),
        user(
            "u2",
            "2026-04-25T08:29:10.000Z",
            "  <hook_context>::stop</hook_context>",
        ),
        user(
            "u3",
            "2026-04-25T08:29:20.000Z",
            "<session_context>::stop</session_context>",
        ),
    ];
    let events = read(&lines);
    assert_eq!(
        kinds(&events).split_off(1),
        [
            ("u1", Kind::UserMessage),
            ("u1#hook-context", Kind::SystemMessage),
            ("u2", Kind::SystemMessage),
            ("u3", Kind::SystemMessage),
        ]
    );
    match &events[1].payload {
        Payload::UserMessage { text, .. } => {
            assert_eq!(text, "fix the bug\n::capture /tmp/a.md");
        }
        other => panic!("{other:?}"),
    }
    let (category, text) = system(&events[2]);
    assert_eq!(category, SystemCategory::InjectedContext);
    assert!(text.starts_with("<hook_context>"));
    let raws: Vec<String> = events
        .iter()
        .flat_map(crate::commands::command_events)
        .filter_map(|c| match c.payload {
            Payload::KatoCommand { raw, .. } => Some(raw),
            _ => None,
        })
        .collect();
    assert_eq!(raws, ["::capture /tmp/a.md"]);
}

#[test]
fn history_copied_into_a_new_file_is_marked_copied() {
    // A `.json` chat resumed by a newer CLI: its metadata and messages,
    // then what happens after the resume.
    let lines = [
        meta("2026-04-20T10:00:00.000Z", "2026-04-20T11:00:00.000Z"),
        user("u1", "2026-04-20T10:05:00.000Z", "::capture /tmp/old.md"),
        with_time(
            &gemini_msg("g1", "old answer", serde_json::Value::Null),
            "2026-04-20T11:00:00.000Z",
        ),
        json!({"$set": {"sessionId": SID}}).to_string(),
        user("u2", "2026-04-25T08:29:00.000Z", "::capture /tmp/new.md"),
        gemini_msg("g2", "new answer", serde_json::Value::Null),
    ];
    let events = read(&lines);
    let copied: Vec<&str> = events
        .iter()
        .filter(|e| e.copied)
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(
        copied,
        ["u1", "g1#thought-0", "g1", "g1#tokens"],
        "{:?}",
        ids(&events)
    );
    // The old command is history; the one typed after the resume is live.
    let commands: Vec<(String, bool)> = events
        .iter()
        .flat_map(crate::commands::command_events)
        .map(|c| (c.event_id, c.copied))
        .collect();
    assert_eq!(
        commands,
        [("u1/cmd0".to_owned(), true), ("u2/cmd0".to_owned(), false)]
    );
    let live = read(&[fresh(), user("u1", "2026-04-25T08:29:00.000Z", "::stop")]);
    assert!(live.iter().all(|e| !e.copied));
}

#[test]
fn metadata_patches_and_odd_lines() {
    let lines = [
        fresh(),
        set_last("2026-04-25T08:29:00.001Z"),
        json!({"$set": {"summary": "List files", "lastUpdated": "2026-04-25T08:40:00.000Z"}})
            .to_string(),
        "[1, 2]".to_owned(),
        json!({"surprise": true}).to_string(),
        json!({"id": 7, "type": "user"}).to_string(),
        json!({"$set": null}).to_string(),
    ];
    let events = read(&lines);
    let tag = "session-2026-04-25T08-23-e435870b.jsonl";
    let got: Vec<(String, Kind)> = events
        .iter()
        .map(|e| (e.event_id.replace(tag, "T"), e.kind()))
        .collect();
    let want: Vec<(String, Kind)> = [
        (0, Kind::ProviderInfo),
        (2, Kind::ProviderInfo),
        (3, Kind::ProviderRaw),
        (4, Kind::ProviderRaw),
        (5, Kind::ProviderRaw),
        (6, Kind::ProviderRaw),
    ]
    .into_iter()
    .map(|(i, k)| (format!("T:{}", at(&lines, i)), k))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        info(&events[1]),
        (
            "session_meta",
            json!({"summary": "List files", "lastUpdated": "2026-04-25T08:40:00.000Z"})
        )
    );
    assert_eq!(
        events[1].timestamp.as_deref(),
        Some("2026-04-25T08:40:00.000Z")
    );
    assert_eq!(
        events[0].timestamp.as_deref(),
        Some("2026-04-25T08:23:24.509Z")
    );
}

#[test]
fn broken_lines_are_malformed() {
    let mut p = GeminiCli.parser(&ctx());
    let kind = |m: &Malformed| match m {
        Malformed::NotJson(_) => "not json",
        Malformed::InvalidUtf8 => "utf-8",
        Malformed::WrongShape(_) => "shape",
    };
    for (bytes, want) in [
        (&b"{\"id\": \"x\""[..], "not json"),
        (b"\xff\xfe", "utf-8"),
        (b"", "not json"),
    ] {
        let mut n = 0;
        let err = p.record(0, bytes, &mut |_| n += 1).expect_err("malformed");
        assert_eq!(kind(&err), want);
        assert_eq!(n, 0);
    }
}

#[test]
fn subagent_chats_belong_to_their_parent() {
    let sub = GeminiCli
        .classify(Path::new(
            "proj/chats/f328310d-05ea-45ce-b9cb-fe2717bebe12/twynek.jsonl",
        ))
        .expect("subagent");
    let mut p = GeminiCli.parser(&sub);
    let mut events = Vec::new();
    for l in [
        json!({"sessionId": "twynek", "projectHash": "h", "startTime": "t", "lastUpdated": "t", "kind": "subagent"}).to_string(),
        user("s1", "t", "investigate"),
        user("s2", "t", "::capture /tmp/x.md"),
    ] {
        p.record(0, l.as_bytes(), &mut |e| events.push(e)).expect("parse");
    }
    assert!(events
        .iter()
        .all(|e| &*e.session_id == "f328310d-05ea-45ce-b9cb-fe2717bebe12"
            && e.subagent.as_ref().and_then(|s| s.id.as_deref()) == Some("twynek")));
    assert_eq!(system(&events[1]).0, SystemCategory::SubagentPrompt);
    assert_eq!(system(&events[2]).0, SystemCategory::ModelInput);
    // Away from its parent's directory, `kind` alone marks it.
    let named = GeminiCli.named_file(Path::new("/tmp/twynek.jsonl"));
    let mut p = GeminiCli.parser(&named);
    let mut events = Vec::new();
    for l in [
        json!({"sessionId": "twynek", "projectHash": "h", "kind": "subagent"}).to_string(),
        user("s1", "t", "investigate"),
    ] {
        p.record(0, l.as_bytes(), &mut |e| events.push(e))
            .expect("parse");
    }
    assert!(events
        .iter()
        .all(|e| &*e.session_id == "twynek" && e.subagent.is_some()));
    assert!(!events.iter().any(Event::is_human_message));
}

#[test]
fn state_round_trips_and_bad_states_are_refused() {
    let lines = [
        fresh(),
        user("u1", "2026-04-25T08:29:00.000Z", "one"),
        gemini_msg("g1", "", json!([call("c1", "x")])),
    ];
    let mut p = GeminiCli.parser(&ctx());
    for l in &lines {
        p.record(0, l.as_bytes(), &mut |_| {}).expect("parse");
    }
    let state = p.state();
    let mut q = GeminiCli.parser(&ctx());
    q.restore(&state).expect("restore");
    assert_eq!(q.state(), state);
    let mut again = Vec::new();
    q.record(0, lines[2].as_bytes(), &mut |e| again.push(e))
        .expect("parse");
    assert!(again.is_empty(), "{:?}", ids(&again));
    for bad in [json!(3), json!({"recent": "x"}), json!({"surprise": 1})] {
        assert!(matches!(q.restore(&bad), Err(Malformed::WrongShape(_))));
    }
    q.restore(&serde_json::Value::Null).expect("null");
    assert_eq!(q.state(), GeminiCli.parser(&ctx()).state());
}

#[test]
fn memory_is_bounded_by_the_window() {
    let mut p = GeminiCli.parser(&ctx());
    p.record(0, fresh().as_bytes(), &mut |_| {}).expect("parse");
    for i in 0..(WINDOW + RESULTS + 10) {
        let l = gemini_msg(&format!("g{i}"), "", json!([call(&format!("c{i}"), "x")]));
        p.record(0, l.as_bytes(), &mut |_| {}).expect("parse");
    }
    let state = p.state();
    assert_eq!(state["recent"].as_array().map(Vec::len), Some(WINDOW));
    assert_eq!(state["results"].as_array().map(Vec::len), Some(RESULTS));
}

#[test]
fn gemini_cli_home_moves_the_default_root() {
    let env = crate::config::Env {
        home: Some(PathBuf::from("/home/u")),
        agent_vars: [("GEMINI_CLI_HOME".to_owned(), PathBuf::from("/srv/g"))].into(),
        ..crate::config::Env::default()
    };
    let cfg = crate::config::Config::from_toml("", None, &env).expect("config");
    let roots = &cfg.provider(ProviderId::Gemini).expect("gemini").roots;
    assert_eq!(roots, &[PathBuf::from("/srv/g/.gemini/tmp")]);
    let cfg =
        crate::config::Config::from_toml("[providers.gemini]\nroots = [\"/x\"]\n", None, &env)
            .expect("config");
    assert_eq!(
        cfg.provider(ProviderId::Gemini).expect("gemini").roots,
        [PathBuf::from("/x")]
    );
}

#[test]
fn both_ways_agree() {
    let fixture = include_str!("../../../tests/fixtures/gemini/tmp/ticketing/chats/session-2026-04-25T08-23-5b1c7e2a.jsonl");
    let mut lines: Vec<&[u8]> = fixture.lines().map(str::as_bytes).collect();
    let odd: [&[u8]; 9] = [
        br#"{"id":"m1","type":"gemini","model":7,"content":"x"}"#,
        br#"{"id":"m2","type":"gemini","thoughts":{"not":"a list"},"content":"x"}"#,
        br#"{"id":"m3","type":"gemini","toolCalls":[{"name":"no id"}]}"#,
        br#"{"id":"m4","type":"user","content":42}"#,
        br#"{"id":"m5","type":"compression","content":"x"}"#,
        br#"{"id":"m6","id":"m7","type":"user","content":"dup"}"#,
        br#"{"id":"m8","type":"gemini","model":null,"thoughts":null,"toolCalls":null,"content":"ok"}"#,
        b"{\"id\": \"m9\"",
        b"\xff",
    ];
    lines.extend(odd);
    // Result parts the one-pass reading takes, and those it leaves to the
    // general path (which then reads the whole line), alone and mixed.
    let usual = r#"{"functionResponse":{"id":"c","name":"n","response":{"output":"out\nput"}}}"#;
    let parts = [
        usual.to_owned(),
        r#"{"functionResponse":{"id":"c","response":{"error":"bad"}}}"#.to_owned(),
        r#"{"functionResponse":{"response":{"output":"o","error":"e","extra":1}}}"#.to_owned(),
        r#"{"functionResponse":{"id":"c"}}"#.to_owned(),
        r#"{"functionResponse":{"response":{}}}"#.to_owned(),
        r#"{"functionResponse":{"response":{"output":{"k":[1, 2]}}}}"#.to_owned(),
        r#"{"functionResponse":{"response":"plain"}}"#.to_owned(),
        r#"{"text":"t","functionResponse":{"response":{"output":"a"}}}"#.to_owned(),
        r#"{"text":"only text"}"#.to_owned(),
        r#""a bare string""#.to_owned(),
        r#"{"inlineData":{"mimeType":"image/png","data":"AA=="}}"#.to_owned(),
        r#"{"functionResponse":{"id":7,"response":{"output":"a"}}}"#.to_owned(),
        format!("{usual},{}", r#"{"text":"then text"}"#),
        format!("{usual},{usual}"),
    ];
    let with_results: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                r#"{{"id":"r{i}","type":"gemini","content":"","toolCalls":[{{"id":"c{i}","name":"n","args":{{}},"result":[{p}],"status":"success"}}]}}"#
            )
        })
        .collect();
    lines.extend(with_results.iter().map(|l| l.as_bytes()));
    let [fast, general] = read_both_ways(&lines);
    assert_eq!(fast, general);
    assert!(fast.0.len() > 30, "{}", fast.0.len());
}

#[test]
fn a_hash_of_parts_is_the_hash_of_their_join() {
    let words = [
        "",
        "a",
        "#tokens",
        "\0message\0",
        "0123456",
        "01234567",
        "012345678",
    ];
    for a in words {
        for b in words {
            for c in ["", "x", "seventeen bytes.."] {
                let joined = format!("{a}{b}{c}");
                assert_eq!(hash_of_parts(&[a, b, c]), hash_of(&joined), "{joined:?}");
            }
        }
        assert_eq!(hash_of_parts(&[a]), hash_of(a));
    }
    assert_eq!(hash_of_parts(&[]), hash_of(""));
    assert_ne!(hash_of_parts(&["ab", "c"]), hash_of("abd"));
}
