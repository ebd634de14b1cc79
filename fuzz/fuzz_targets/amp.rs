#![no_main]
//! Arbitrary bytes as successive versions of one Amp thread document (the
//! versions are separated by NUL bytes), each handed whole to a parser
//! restored from the state the previous version left, as the daemon does,
//! then flushed as a one-shot read is. Never panics; re-reading an
//! unchanged document delivers nothing.

mod encode;

use std::path::Path;

use kato::provider::{by_name, ctx_for_path};

/// Documents longer than this are skipped, as the reader skips them.
const DOC_CAP: usize = 16 << 10;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let provider = by_name("amp").expect("registered provider");
    let ctx = ctx_for_path(
        provider,
        Path::new("T-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d.json"),
    );
    let mut state = serde_json::Value::Null;
    for version in data.split(|b| *b == 0).filter(|v| v.len() <= DOC_CAP) {
        let mut parser = provider.parser(&ctx);
        parser.restore(&state).expect("a state the parser wrote");
        let parsed = parser.record(0, version, &mut |ev| encode::encodes_alike(&ev)).is_ok();
        state = parser.state();
        parser.flush(&mut |ev| encode::encodes_alike(&ev));
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
