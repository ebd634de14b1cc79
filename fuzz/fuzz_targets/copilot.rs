#![no_main]
//! Arbitrary bytes as GitHub Copilot CLI files. As an `events.jsonl`:
//! through the incremental reader in two pieces with the state persisted
//! between them (see `jsonl`). As successive versions of a legacy
//! document (separated by NUL bytes), each handed whole to a parser
//! restored from the state the previous version left, as the daemon does:
//! never panics, and re-reading an unchanged document delivers nothing.

use std::path::Path;

use kato::provider::{by_name, ctx_for_path};

mod jsonl;

const EVENTS: &str = "session-state/d5b1506c-19d6-4e6a-818c-89a50c48bb34/events.jsonl";
const LEGACY: &str =
    "history-session-state/session_e02997e2-e7e7-46ae-8027-b1a73e0cb908_1761492781060.json";

/// Documents longer than this are skipped, as the reader skips them.
const DOC_CAP: usize = 16 << 10;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jsonl::run("copilot", EVENTS, data);

    let provider = by_name("copilot").expect("registered provider");
    let ctx = ctx_for_path(provider, Path::new(LEGACY));
    let mut state = serde_json::Value::Null;
    for version in data.split(|b| *b == 0).filter(|v| v.len() <= DOC_CAP) {
        let mut parser = provider.parser(&ctx);
        parser.restore(&state).expect("a state the parser wrote");
        let parsed = parser.record(0, version, &mut |_| {}).is_ok();
        state = parser.state();
        if parsed {
            let mut again = provider.parser(&ctx);
            again.restore(&state).expect("a state the parser wrote");
            let mut repeats = 0usize;
            again
                .record(0, version, &mut |_| repeats += 1)
                .expect("parsed once, parses again");
            assert_eq!(repeats, 0, "an unchanged document delivers nothing");
            assert_eq!(again.state(), state);
        }
    }
});
