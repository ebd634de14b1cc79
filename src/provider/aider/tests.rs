use super::*;
use crate::event::Kind;

const FIXTURE: &str = include_str!("../../../tests/fixtures/aider/todo-app/.aider.chat.history.md");

fn ctx() -> FileCtx {
    Aider
        .classify(Path::new("todo-app/.aider.chat.history.md"))
        .expect("a chat history")
}

/// Feed `text` line by line (as the reader does: `\r` trimmed, blank lines
/// kept), then flush when `flush`.
fn parse_with(p: &mut AiderParser, text: &str, base: u64, flush: bool) -> Vec<Event> {
    let mut events = Vec::new();
    let mut offset = base;
    for line in text.split_inclusive('\n') {
        let Some(body) = line.strip_suffix('\n') else {
            break;
        };
        let body = body.strip_suffix('\r').unwrap_or(body);
        p.record(offset, body.as_bytes(), &mut |e| events.push(e))
            .expect("lines never fail");
        offset += line.len() as u64;
    }
    if flush {
        p.flush(&mut |e| events.push(e));
    }
    events
}

fn parse(text: &str) -> Vec<Event> {
    parse_with(&mut AiderParser::new(&ctx()), text, 0, true)
}

fn kinds(events: &[Event]) -> Vec<Kind> {
    events.iter().map(Event::kind).collect()
}

fn text_of(e: &Event) -> &str {
    match &e.payload {
        Payload::UserMessage { text, .. }
        | Payload::AssistantMessage { text }
        | Payload::Thinking { text }
        | Payload::SystemMessage { text, .. } => text,
        _ => "",
    }
}

fn topic(e: &Event) -> &str {
    match &e.payload {
        Payload::ProviderInfo { topic, .. } => topic,
        _ => "",
    }
}

#[test]
fn fixture_maps_every_line_shape() {
    let events = parse(FIXTURE);
    let count = |k: Kind| events.iter().filter(|e| e.kind() == k).count();
    assert_eq!(count(Kind::UserMessage), 2);
    assert_eq!(count(Kind::AssistantMessage), 2);
    assert_eq!(count(Kind::Thinking), 1);
    assert_eq!(count(Kind::SystemMessage), 8);
    assert_eq!(count(Kind::ProviderInfo), 7);
    assert_eq!(events.len(), 20);
    for e in &events {
        assert_eq!(&*e.session_id, "aider-20260302-091507");
        assert_eq!(e.provider, ProviderId::Aider);
    }
    let ids: std::collections::BTreeSet<_> = events.iter().map(|e| &e.event_id).collect();
    assert_eq!(ids.len(), events.len(), "unique event ids");
}

#[test]
fn only_chat_starts_carry_times_as_written() {
    let events = parse(FIXTURE);
    let timed: Vec<_> = events.iter().filter(|e| e.timestamp.is_some()).collect();
    assert_eq!(timed.len(), 2);
    assert_eq!(timed[0].timestamp.as_deref(), Some("2026-03-02T09:15:07"));
    assert_eq!(timed[1].timestamp.as_deref(), Some("2026-03-03T18:40:52"));
    assert!(timed.iter().all(|e| topic(e) == "session_start"));
}

#[test]
fn multi_line_input_is_one_human_message_with_its_blank_line() {
    let events = parse(FIXTURE);
    let human: Vec<_> = events.iter().filter(|e| e.is_human_message()).collect();
    assert_eq!(
        text_of(human[0]),
        "Add a `done` flag to each item\n\nand show it in `list`."
    );
    assert_eq!(
        text_of(human[1]),
        "Why does `list` print nothing when empty?"
    );
}

#[test]
fn slash_and_bang_inputs_are_commands_not_human_words() {
    let events = parse(FIXTURE);
    let cats: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::SystemMessage { category, text } if text.starts_with(['/', '!']) => {
                Some((*category, text.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        cats,
        [
            (SystemCategory::CommandWrapper, "/add todo.py"),
            (SystemCategory::UserShell, "!git status"),
        ]
    );
    assert!(events.iter().any(|e| topic(e) == "empty_input"));
}

#[test]
fn heading_and_quote_inside_a_reply_stay_the_assistants() {
    let events = parse(FIXTURE);
    let reply = events
        .iter()
        .find(|e| e.kind() == Kind::AssistantMessage)
        .expect("a reply");
    let text = text_of(reply);
    assert!(text.starts_with("I'll add the flag."), "{text}");
    assert!(text.contains("\n#### Changes\n"), "{text}");
    assert!(
        text.contains("\n> Note: items keep their order.\n"),
        "{text}"
    );
    assert!(text.ends_with(">>>>>>> REPLACE\n```"), "{text}");
    assert_eq!(reply.model.as_deref(), Some("anthropic/claude-sonnet-4"));
}

#[test]
fn multi_line_status_message_stays_one_notice() {
    let events = parse(FIXTURE);
    let notice = events
        .iter()
        .find(|e| text_of(e).starts_with("Tokens: 2.1k"))
        .expect("the notice");
    let text = text_of(notice);
    assert!(
        text.contains("python -m pytest\npython -m todo list\npython -m todo done 1\n"),
        "{text:?}"
    );
    assert!(text.ends_with("[Yes]: n"), "{text:?}");
}

#[test]
fn reasoning_banner_splits_thinking_from_answer_and_models_follow() {
    let events = parse(FIXTURE);
    let i = events
        .iter()
        .position(|e| e.kind() == Kind::Thinking)
        .expect("thinking");
    assert_eq!(
        text_of(&events[i]),
        "The loop never runs for an empty list."
    );
    assert_eq!(
        text_of(&events[i + 1]),
        "An empty list prints nothing because the loop body never runs."
    );
    assert_eq!(
        events[i].model.as_deref(),
        Some("deepseek/deepseek-reasoner")
    );
    assert_eq!(events[i + 1].event_id, format!("{}#1", events[i].event_id));
}

#[test]
fn split_delivery_and_a_restored_state_give_the_same_events() {
    let whole = parse(FIXTURE);
    let json = |v: &[Event]| {
        v.iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
    };
    for cut in [1, 40, 300, 700, 1200, FIXTURE.len() - 1] {
        let cut = FIXTURE[..cut].rfind('\n').map_or(0, |i| i + 1);
        let mut p = AiderParser::new(&ctx());
        let mut got = parse_with(&mut p, &FIXTURE[..cut], 0, false);
        let state = p.state();
        let mut q = AiderParser::new(&ctx());
        q.restore(&state).expect("restore");
        got.extend(parse_with(&mut q, &FIXTURE[cut..], cut as u64, true));
        assert_eq!(json(&got), json(&whole), "cut at {cut}");
    }
}

#[test]
fn a_held_block_is_delivered_when_the_next_begins() {
    let mut p = AiderParser::new(&ctx());
    let head = "\n# aider chat started at 2026-03-02 09:15:07\n\n#### hi  \n\nHello there.\n";
    let events = parse_with(&mut p, head, 0, false);
    assert_eq!(kinds(&events), [Kind::ProviderInfo, Kind::UserMessage]);
    let more = parse_with(
        &mut p,
        "\n> Tokens: 1 sent, 1 received.  \n",
        head.len() as u64,
        false,
    );
    assert_eq!(kinds(&more), [Kind::AssistantMessage]);
}

#[test]
fn a_line_without_its_break_is_not_the_humans() {
    let events = parse("\n# aider chat started at 2026-03-02 09:15:07\n\n#### ::capture\n");
    assert!(!events.iter().any(Event::is_human_message));
    assert_eq!(kinds(&events), [Kind::ProviderInfo, Kind::AssistantMessage]);
}

#[test]
fn windows_line_endings_read_the_same() {
    let crlf = FIXTURE.replace('\n', "\r\n");
    let a: Vec<_> = parse(FIXTURE)
        .iter()
        .map(|e| text_of(e).to_owned())
        .collect();
    let b: Vec<_> = parse(&crlf).iter().map(|e| text_of(e).to_owned()).collect();
    assert_eq!(a, b);
}

#[test]
fn a_file_without_a_start_line_keeps_the_path_hint() {
    let events = parse("#### hello  \n");
    assert_eq!(
        &*events[0].session_id,
        "aider-todo-app/.aider.chat.history.md"
    );
}

#[test]
fn an_over_long_block_is_delivered_in_parts_with_unique_ids() {
    let line = "x".repeat(1 << 20);
    let mut text = String::from("\n# aider chat started at 2026-03-02 09:15:07\n\n");
    for _ in 0..20 {
        text.push_str(&line);
        text.push('\n');
    }
    let events = parse(&text);
    let replies: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == Kind::AssistantMessage)
        .collect();
    assert!(replies.len() >= 2, "{}", replies.len());
    let ids: std::collections::BTreeSet<_> = replies.iter().map(|e| &e.event_id).collect();
    assert_eq!(ids.len(), replies.len());
    let total: usize = replies.iter().map(|e| text_of(e).len()).sum();
    assert!(total >= 20 * line.len(), "nothing lost");
}

#[test]
fn discovery_layout_and_roots() {
    assert!(Aider
        .classify(Path::new("a/b/.aider.chat.history.md"))
        .is_some());
    assert!(Aider
        .classify(Path::new(".aider.chat.history.md"))
        .is_some());
    assert!(Aider
        .classify(Path::new("a/.aider.input.history"))
        .is_none());
    assert!(Aider.classify(Path::new("a/notes.md")).is_none());
    assert!(Aider.default_roots(Path::new("/home/u")).is_empty());
    for skipped in [
        ".git",
        ".venv",
        "node_modules",
        "__pycache__",
        "target",
        "venv",
    ] {
        assert!(!Aider.descends_into(OsStr::new(skipped)), "{skipped}");
    }
    assert!(Aider.descends_into(OsStr::new("src")));
    assert_eq!(
        Aider.project_folder(Path::new("/w/proj/.aider.chat.history.md")),
        Some(PathBuf::from("/w/proj"))
    );
    assert!(!Aider.carries_commands());
    assert_eq!(Aider.source_kind(), SourceKind::Lines);
}

#[test]
fn sniff_knows_the_start_line() {
    assert_eq!(Aider.sniff(FIXTURE.as_bytes()), Sniff::Exact);
    assert_eq!(Aider.sniff(b"# aider chat started at soon\n"), Sniff::No);
    assert_eq!(Aider.sniff(b"{\"type\":\"user\"}\n"), Sniff::No);
    assert_eq!(
        crate::provider::registry()
            .sniff(FIXTURE.as_bytes())
            .map(|p| p.id()),
        Some(ProviderId::Aider)
    );
}
