#![no_main]
//! The command extractor over whole user records: every line of the input
//! through the Claude and the Codex parser (the whole input as a Gemini
//! document), then `commands::command_events` on every event. Never panics,
//! and every command event comes from a human message: it names that
//! message, holds one of its lines as typed, and that line read alone (as
//! the daemon reads it before deciding) gives the same verdict.

use std::path::Path;

use kato::commands::{command_events, scan};
use kato::event::{Event, Payload};
use kato::provider::{by_name, ctx_for_path, SourceKind};

/// Each provider with a main-session file name of its layout.
const PROVIDERS: [(&str, &str); 3] = [
    (
        "claude",
        "projects/-home-u-repo/0b6f0b1e-4c52-4c8e-9d3a-2f1e5c7a9b10.jsonl",
    ),
    (
        "codex",
        "sessions/2026/01/08/rollout-2026-01-08T15-00-00-019ac88c-3f80-7990-a29a-d20399dcab74.jsonl",
    ),
    (
        "gemini",
        "proj/chats/session-2026-04-15T03-00-3d743a4f.json",
    ),
];

/// Inputs longer than this are skipped: the grammar, not the size, is
/// under test.
const INPUT_CAP: usize = 64 << 10;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() > INPUT_CAP {
        return;
    }
    for (name, file) in PROVIDERS {
        let provider = by_name(name).expect("registered provider");
        let ctx = ctx_for_path(provider, Path::new(file));
        let mut parser = provider.parser(&ctx);
        let mut events = Vec::new();
        if provider.source_kind() == SourceKind::Jsonl {
            let mut offset = 0u64;
            for line in data.split(|b| *b == b'\n') {
                let _ = parser.record(offset, line, &mut |e| events.push(e));
                offset += line.len() as u64 + 1;
            }
        } else {
            let _ = parser.record(0, data, &mut |e| events.push(e));
        }
        parser.flush(&mut |e| events.push(e));
        events.iter().for_each(check);
    }
});

/// The command events of `ev` come from a human message, line by line.
fn check(ev: &Event) {
    let commands = command_events(ev);
    if commands.is_empty() {
        return;
    }
    assert!(ev.is_human_message(), "commands from a {}", ev.kind().as_str());
    let Payload::UserMessage { text, .. } = &ev.payload else {
        unreachable!("a human message is a user message");
    };
    let lines: Vec<&str> = text.split('\n').collect();
    for c in commands {
        let Payload::KatoCommand {
            raw,
            line,
            message_id,
            error,
        } = &c.payload
        else {
            panic!("not a command event: {}", c.kind().as_str());
        };
        assert_eq!(message_id, &ev.event_id);
        let typed = lines[*line as usize];
        assert_eq!(typed.strip_suffix('\r').unwrap_or(typed), raw);
        let alone = scan(raw);
        assert_eq!(alone.len(), 1, "{raw:?} alone is no command");
        assert_eq!(
            alone[0].parsed.as_ref().err().map(ToString::to_string),
            *error
        );
    }
}
