#![no_main]
//! Arbitrary bytes as a Kimi CLI wire and as a subagent context: through
//! the incremental reader in two pieces with the state persisted between
//! them (see `jsonl`); never a panic, and no event id twice in one read.

use std::collections::HashSet;
use std::path::Path;

use kato::provider::{by_name, ctx_for_path};
use kato::reader::{feed_lines, Limits, Tail};

mod jsonl;

const FILES: [&str; 2] = [
    "0123456789abcdef0123456789abcdef/sid/wire.jsonl",
    "0123456789abcdef0123456789abcdef/sid/context_sub_1.jsonl",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for file in FILES {
        jsonl::run("kimi", file, data);

        let provider = by_name("kimi").expect("registered provider");
        let ctx = ctx_for_path(provider, Path::new(file));
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
    }
});
