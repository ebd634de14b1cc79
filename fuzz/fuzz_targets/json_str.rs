#![no_main]

use kato::json_str::{self, Segment};

// The string lexer decodes exactly what serde_json decodes, and cutting a
// text into segments loses nothing.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ours = json_str::decode_literal(text).ok().map(|s| s.into_owned());
    let theirs = if text.starts_with('"') && text.ends_with('"') {
        serde_json::from_str::<String>(text).ok()
    } else {
        None
    };
    assert_eq!(ours, theirs, "{text:?}");
    let mut back = String::with_capacity(text.len());
    for seg in json_str::segments(text) {
        match seg {
            Segment::String(s) => {
                assert!(s.starts_with('"'));
                back.push_str(s);
            }
            Segment::Other(s) => {
                assert!(!s.contains('"'));
                back.push_str(s);
            }
        }
    }
    assert_eq!(back, text);
});
