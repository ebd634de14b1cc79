#![no_main]
//! Arbitrary bytes as a Gemini CLI JSON Lines chat: through the
//! incremental reader in two pieces with the state persisted between them
//! (see `jsonl`); in one read, where no event id may come twice (a message
//! written again, restated by a checkpoint or rewound delivers only events
//! not delivered yet); and line by line on the fast path and on the
//! general path, which must agree.

use std::collections::HashSet;
use std::path::Path;

use kato::provider::{by_name, ctx_for_path};
use kato::reader::{feed_lines, Limits, Tail};

mod jsonl;

const FILE: &str = "proj/chats/session-2026-04-25T08-23-e435870b.jsonl";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run("gemini", FILE, data);

    let provider = by_name("gemini").expect("registered provider");
    let ctx = ctx_for_path(provider, Path::new(FILE));
    let mut parser = provider.parser(&ctx);
    let mut ids = HashSet::new();
    let mut diagnostics = Vec::new();
    feed_lines(
        &mut &data[..],
        0,
        Tail::Final,
        Limits {
            line_cap: jsonl::LINE_CAP,
            ..Limits::default()
        },
        parser.as_mut(),
        &mut |e| assert!(ids.insert(e.event_id.clone()), "{} twice", e.event_id),
        &mut diagnostics,
    )
    .expect("reading a slice cannot fail");

    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let [fast, general] = kato::provider::gemini_jsonl::read_both_ways(&lines);
    assert_eq!(fast, general);
});
