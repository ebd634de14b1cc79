#![no_main]
//! Arbitrary bytes as successive versions of one Gemini chat document (the
//! versions are separated by NUL bytes), each handed whole to a parser
//! restored from the state the previous version left, as the daemon does.
//! Never panics; re-reading an unchanged document delivers nothing.

mod encode;

use std::path::Path;

use kato::provider::{by_name, ctx_for_path};

/// Documents longer than this are skipped, as the reader skips them.
const DOC_CAP: usize = 16 << 10;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let provider = by_name("gemini").expect("registered provider");
    let ctx = ctx_for_path(
        provider,
        Path::new("proj/chats/session-2026-04-15T03-00-3d743a4f.json"),
    );
    let mut state = serde_json::Value::Null;
    for version in data.split(|b| *b == 0).filter(|v| v.len() <= DOC_CAP) {
        let mut parser = provider.parser(&ctx);
        parser.restore(&state).expect("a state the parser wrote");
        let parsed = parser.record(0, version, &mut |ev| encode::encodes_alike(&ev)).is_ok();
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
