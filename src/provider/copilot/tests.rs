use super::*;

fn events_ctx() -> FileCtx {
    Copilot
        .classify(Path::new(
            "3f1e2d4c-5b6a-4789-8abc-def012345678/events.jsonl",
        ))
        .expect("events.jsonl is a session")
}

fn parse(p: &mut dyn RecordParser, lines: &[&str]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut offset = 0u64;
    for l in lines {
        p.record(offset, l.as_bytes(), &mut |e| events.push(e))
            .expect("parses");
        offset += l.len() as u64 + 1;
    }
    events
}

fn short(e: &Event) -> String {
    let detail = match &e.payload {
        Payload::UserMessage { text, .. }
        | Payload::AssistantMessage { text }
        | Payload::Thinking { text } => format!("{text:?}"),
        Payload::SystemMessage { category, text } => format!("{} {text:?}", category.label()),
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
        Payload::ProviderInfo { topic, data } => format!("{topic} {}", data.get()),
        Payload::ProviderRaw { record } => record.get().to_owned(),
        other => format!("{other:?}"),
    };
    format!("{} {} {detail}", e.kind().as_str(), e.event_id)
}

#[test]
fn classify_knows_the_three_layouts_and_nothing_else() {
    let c = Copilot;
    let e = c.classify(Path::new("abc/events.jsonl")).expect("events");
    assert_eq!(
        (e.file_tag.as_str(), e.session_hint.as_str()),
        ("abc", "abc")
    );
    assert_eq!(c.file_source_kind(&e), SourceKind::Jsonl);
    let uuid = "27d7ef99-f7c7-43eb-8599-cb469623c8f7";
    let flat = c
        .classify(Path::new(&format!("{uuid}.jsonl")))
        .expect("flat");
    assert_eq!(flat.session_hint, uuid);
    assert_eq!(c.file_source_kind(&flat), SourceKind::Jsonl);
    let legacy = c
        .classify(Path::new(&format!("session_{uuid}_1761492781060.json")))
        .expect("legacy");
    assert_eq!(legacy.session_hint, uuid);
    assert_eq!(c.file_source_kind(&legacy), SourceKind::Document);
    for other in [
        "abc/workspace.yaml",
        "abc/plan.md",
        "notes.jsonl",
        "session_x_1.json",
        "config.json",
        "abc/checkpoints/index.md",
    ] {
        assert!(c.classify(Path::new(other)).is_none(), "{other}");
    }
    assert_eq!(
        c.project_marker(Path::new("/r/abc/events.jsonl")),
        Some(PathBuf::from("/r/abc/workspace.yaml"))
    );
    assert_eq!(
        c.project_marker(Path::new(&format!("/r/{uuid}.jsonl"))),
        None
    );
}

#[test]
fn workspace_cwd_reads_plain_and_quoted_scalars() {
    let y = "id: x\ncwd: C:\\Github\\p v2\ngit_root: C:\\Github\nsummary: a cwd: b\n";
    assert_eq!(workspace_cwd(y).as_deref(), Some("C:\\Github\\p v2"));
    assert_eq!(
        workspace_cwd("cwd: '/home/o''k'\n").as_deref(),
        Some("/home/o'k")
    );
    assert_eq!(
        workspace_cwd("cwd: \"/a\\\"b\"\n").as_deref(),
        Some("/a\"b")
    );
    assert_eq!(
        workspace_cwd("cwd: /srv/x # note\n").as_deref(),
        Some("/srv/x")
    );
    assert_eq!(workspace_cwd("id: x\n  cwd: /nested\n"), None);
    assert_eq!(workspace_cwd("cwd:\n"), None);
}

#[test]
fn datetime_tail_is_split_off_the_typed_words() {
    assert_eq!(
        split_datetime("hi\n\n<current_datetime>2025-12-02T08:49:33Z</current_datetime>"),
        (
            "hi",
            Some("<current_datetime>2025-12-02T08:49:33Z</current_datetime>")
        )
    );
    assert_eq!(split_datetime("plain"), ("plain", None));
    assert_eq!(
        split_datetime("x </current_datetime>"),
        ("x </current_datetime>", None)
    );
}

#[test]
fn state_round_trips_and_junk_state_is_refused() {
    let mut p = EventsParser::new(&events_ctx());
    parse(
        &mut p,
        &[
            r#"{"type":"session.start","data":{"sessionId":"s1","copilotVersion":"1.0.10"},"id":"a","timestamp":"t"}"#,
            r#"{"type":"assistant.message","data":{"content":"","toolRequests":[{"toolCallId":"c1","name":"view","arguments":{}}]},"id":"b","timestamp":"t"}"#,
        ],
    );
    let saved = p.state();
    let mut q = EventsParser::new(&events_ctx());
    q.restore(&saved).expect("restores");
    assert_eq!(q.state(), saved);
    // The remembered call keeps its start silent after a restore.
    let ev = parse(
        &mut q,
        &[
            r#"{"type":"tool.execution_start","data":{"toolCallId":"c1","toolName":"view"},"id":"c"}"#,
        ],
    );
    assert!(ev.is_empty(), "{ev:?}");
    assert!(q.restore(&serde_json::json!({"nope": 1})).is_err());
    let mut l = LegacyParser::new(&events_ctx());
    assert!(l.restore(&serde_json::json!([1])).is_err());
}

const EVENTS_FIXTURE: &str = include_str!(
    "../../../tests/fixtures/copilot/session-state/3f1e2d4c-5b6a-4789-8abc-def012345678/events.jsonl"
);

const LEGACY_FIXTURE: &str = include_str!(
    "../../../tests/fixtures/copilot/history-session-state/session_5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b_1761492781060.json"
);

#[test]
fn events_fixture_maps_every_record_shape() {
    let mut p = EventsParser::new(&events_ctx());
    let lines: Vec<&str> = EVENTS_FIXTURE.lines().collect();
    let events = parse(&mut p, &lines);
    let got: Vec<String> = events.iter().map(short).collect();
    let want = [
        r#"provider.info e01 session_meta {"sessionId":"3f1e2d4c-5b6a-4789-8abc-def012345678","version":1,"producer":"copilot-agent","copilotVersion":"1.0.10","startTime":"2026-03-21T09:00:00.000Z","context":{"cwd":"/home/dev/ticketing","gitRoot":"/home/dev/ticketing","branch":"main","repository":"dev/ticketing","hostType":"github"},"alreadyInUse":false}"#,
        r#"provider.info e02 model_change {"previousModel":"claude-sonnet-4.6","newModel":"gpt-5-mini","previousReasoningEffort":"medium","reasoningEffort":"medium"}"#,
        r#"system.message e03 Notice "Model changed to: gpt-5-mini (medium)""#,
        r#"user.message e04 "list the open tickets""#,
        r#"system.message e04#context Injected context "<current_datetime>2026-03-21T09:01:00.000Z</current_datetime>\n\n<reminder>\nUse the sql tool for tables.\n</reminder>""#,
        r#"assistant.thinking e06#thinking "I should read the ticket list first.""#,
        r#"assistant.tool.call e06#call-0 call_a view {"path":"tickets.csv"}"#,
        r#"assistant.tool.call e06#call-1 call_b bash {"command":"grep -c open tickets.csv"}"#,
        r#"provider.info e06#tokens token_count {"outputTokens":120}"#,
        r#"assistant.tool.result e09 call_a err=false "1. id,state\n2. 7,open\n3. 9,closed""#,
        r#"assistant.tool.result e10 call_b err=true "bash: permission denied""#,
        r#"assistant.message e11 "One ticket is open: #7.""#,
        r#"provider.info e11#tokens token_count {"outputTokens":14}"#,
        r#"assistant.tool.call e13 call_c report_intent {"intent":"Summarising"}"#,
        r#"assistant.tool.result e14 call_c err=false "Intent logged""#,
        r#"system.message e15 Error "400 Bad Request""#,
        r#"user.message e16 "and the closed ones?""#,
        r#"system.message e16#context Injected context "<current_datetime>2026-03-21T09:03:00.000Z</current_datetime>""#,
        r#"system.message e17 Injected context "You are the GitHub Copilot CLI, a terminal assistant.""#,
        r#"provider.raw 3f1e2d4c-5b6a-4789-8abc-def012345678:4295 {"type":"subagent.started","data":{"agentName":"explore","toolCallId":"call_d"},"id":"e18","timestamp":"2026-03-21T09:03:01.000Z","parentId":"e17"}"#,
        r#"provider.info e19 resume {"resumeTime":"2026-03-21T10:00:00.000Z","eventCount":18}"#,
        r#"provider.info e20 shutdown {"reason":"exit"}"#,
    ];
    assert_eq!(got, want);
    // The agent's times on every event; the session id from
    // `session.start`; the turn from `interactionId`; models on the
    // assistant's events (the model change before them, then each tool
    // execution's own).
    assert!(events.iter().all(|e| e.timestamp.is_some()));
    assert!(events
        .iter()
        .all(|e| &*e.session_id == "3f1e2d4c-5b6a-4789-8abc-def012345678"));
    let by_id = |id: &str| events.iter().find(|e| e.event_id == id).expect(id);
    assert_eq!(
        by_id("e06#thinking").turn_id.as_deref(),
        Some("9a000000-0000-4000-8000-000000000001")
    );
    assert_eq!(by_id("e13").turn_id, None, "after the turn ended");
    assert_eq!(by_id("e11").model.as_deref(), Some("gpt-5-mini"));
    assert_eq!(by_id("e04").model, None);
    let human: Vec<&str> = events
        .iter()
        .filter(|e| e.is_human_message())
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(human, ["e04", "e16"]);
    match &by_id("e04").payload {
        Payload::UserMessage { attachments, .. } => assert_eq!(*attachments, 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn legacy_fixture_maps_the_timeline() {
    let ctx = Copilot
        .classify(Path::new(
            "session_5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b_1761492781060.json",
        ))
        .expect("legacy");
    let mut p = Copilot.parser(&ctx);
    let events = parse(p.as_mut(), &[LEGACY_FIXTURE]);
    let got: Vec<String> = events.iter().map(short).collect();
    let tag = "session_5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b_1761492781060";
    let want = [
        format!(r#"provider.info {tag}:session session_meta {{"selectedModel":"gpt-5","sessionId":"5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b","startTime":"2025-10-26T15:33:01.060Z"}}"#),
        r#"system.message t1 Notice "Connected to GitHub MCP Server""#.into(),
        r#"user.message t2 "what does @README.md say?""#.into(),
        r#"system.message t2#context Injected context "what does README.md (file contents follow) say?""#.into(),
        r#"assistant.tool.call t3#call call_r view {"path":"README.md"}"#.into(),
        r##"assistant.tool.result t3 call_r err=false "# Demo""##.into(),
        r#"assistant.tool.call t4#call call_s bash {"command":"false"}"#.into(),
        r#"assistant.tool.result t4 call_s err=true "exit 1""#.into(),
        r#"assistant.message t5 "It is titled Demo.""#.into(),
        r#"system.message t6 Error "Rate limited""#.into(),
        r#"provider.raw t7 {"id":"t7","steps":[],"timestamp":"2025-10-26T15:42:00.000Z","type":"plan_update"}"#.into(),
    ];
    assert_eq!(got, want);
    assert!(events.iter().all(|e| e.timestamp.is_some()));
}

/// The agent rewrites the legacy document as the chat grows: each
/// rewrite yields only the timeline items not delivered yet; a rewrite
/// that changed what was delivered starts over.
#[test]
fn legacy_rewrite_yields_only_new_items() {
    let ctx = Copilot
        .classify(Path::new(
            "session_5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b_1.json",
        ))
        .expect("legacy");
    let doc = |items: &[(&str, &str)]| {
        let timeline: Vec<serde_json::Value> = items
            .iter()
            .map(|(id, text)| {
                serde_json::json!({"id": id, "timestamp": "2025-10-26T15:40:00.000Z",
                                   "type": "user", "text": text})
            })
            .collect();
        serde_json::json!({"sessionId": "s", "startTime": "2025-10-26T15:33:01.060Z",
                           "chatMessages": [], "timeline": timeline})
        .to_string()
    };
    let mut p = Copilot.parser(&ctx);
    let ids = |p: &mut dyn RecordParser, d: &str| -> Vec<String> {
        parse(p, &[d]).into_iter().map(|e| e.event_id).collect()
    };
    let first = ids(p.as_mut(), &doc(&[("a", "one")]));
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(ids(p.as_mut(), &doc(&[("a", "one"), ("b", "two")])), ["b"]);
    assert!(ids(p.as_mut(), &doc(&[("a", "one"), ("b", "two")])).is_empty());
    // Persisted and restored: the cursor survives.
    let saved = p.state();
    let mut q = Copilot.parser(&ctx);
    q.restore(&saved).expect("restore");
    assert_eq!(
        ids(
            q.as_mut(),
            &doc(&[("a", "one"), ("b", "two"), ("c", "three")])
        ),
        ["c"]
    );
    // History rewritten under the cursor: everything again.
    assert_eq!(ids(q.as_mut(), &doc(&[("x", "new")])), ["x"]);
}

/// Lines that are JSON of no known shape are kept; lines that are not
/// JSON are malformed; neither stops the parse.
#[test]
fn unknown_and_broken_lines() {
    let mut p = EventsParser::new(&events_ctx());
    let mut events = Vec::new();
    for (i, l) in [
        "[1,2]",
        r#"{"type":"user.message","data":{"content":7}}"#,
        r#"{"type":"assistant.message","data":{"toolRequests":{"x":1}}}"#,
        r#"{"type":"tool.execution_complete","data":"x"}"#,
        r#"{"type":1}"#,
    ]
    .iter()
    .enumerate()
    {
        p.record(i as u64, l.as_bytes(), &mut |e| events.push(e))
            .expect("JSON is kept");
    }
    assert_eq!(events.len(), 5);
    assert!(events
        .iter()
        .all(|e| e.kind() == crate::event::Kind::ProviderRaw));
    assert!(matches!(
        p.record(9, b"{not json", &mut |_| {}),
        Err(Malformed::NotJson(_))
    ));
    assert!(matches!(
        p.record(9, b"{\"type\":\"\xff\"}", &mut |_| {}),
        Err(Malformed::InvalidUtf8)
    ));
}
