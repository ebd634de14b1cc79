#![no_main]
//! Arbitrary bytes as an Aider chat history: through the incremental
//! reader in two pieces with the state persisted between them (see
//! `jsonl`); and read whole, then in two pieces with the held block kept
//! in the persisted state (no flush between), which must give the same
//! events, no event id twice.

use std::collections::HashSet;
use std::path::Path;

use kato::provider::{by_name, ctx_for_path};
use kato::reader::{feed_lines, Limits, Tail};

mod jsonl;

const FILE: &str = "proj/.aider.chat.history.md";

fn read(data: &[u8], split: usize) -> Vec<String> {
    let provider = by_name("aider").expect("registered provider");
    let ctx = ctx_for_path(provider, Path::new(FILE));
    let limits = Limits {
        line_cap: jsonl::LINE_CAP,
        ..Limits::default()
    };
    let mut events = Vec::new();
    let mut diagnostics = Vec::new();
    let mut parser = provider.parser(&ctx);
    let end = feed_lines(
        &mut &data[..split],
        0,
        Tail::Hold,
        limits,
        parser.as_mut(),
        &mut |e| events.push(serde_json::to_string(&e).unwrap_or_default()),
        &mut diagnostics,
    )
    .expect("reading a slice cannot fail");
    let state = parser.state();
    let mut parser = provider.parser(&ctx);
    parser.restore(&state).expect("own state restores");
    let rest = data.get(end as usize..).unwrap_or_default();
    feed_lines(
        &mut &rest[..],
        end,
        Tail::Final,
        limits,
        parser.as_mut(),
        &mut |e| events.push(serde_json::to_string(&e).unwrap_or_default()),
        &mut diagnostics,
    )
    .expect("reading a slice cannot fail");
    parser.flush(&mut |e| events.push(serde_json::to_string(&e).unwrap_or_default()));
    events
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run("aider", FILE, data);

    let whole = read(data, 0);
    let split = data
        .last()
        .map_or(0, |b| usize::from(*b) * data.len() / 256)
        .min(data.len());
    assert_eq!(read(data, split), whole);
    let mut ids = HashSet::new();
    for e in &whole {
        let v: serde_json::Value = serde_json::from_str(e).expect("event json");
        assert!(ids.insert(v["event_id"].to_string()), "{} twice", v["event_id"]);
    }
});
