#![no_main]
//! Arbitrary bytes as the records the database source hands OpenCode's
//! parser (one JSON object per `session`, `message` or `part` row, one a
//! line), read as the daemon reads them (unsettled parts held) and as a
//! one-shot export does. Never panics; a settled part gives the same
//! events either way.

mod encode;

use std::path::Path;

use kato::provider::{by_name, ctx_for_path};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let provider = by_name("opencode").expect("registered provider");
    let ctx = ctx_for_path(provider, Path::new("opencode.db"));
    let mut parser = provider.parser(&ctx);
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let _ = parser.record(i as u64, line, &mut |ev| encode::encodes_alike(&ev));
    }
    parser.flush(&mut |ev| encode::encodes_alike(&ev));
    let state = parser.state();
    let mut again = provider.parser(&ctx);
    again.restore(&state).expect("a state the parser wrote");
});
