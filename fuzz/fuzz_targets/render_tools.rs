#![no_main]

use kato::config::MarkdownOptions;
use kato::event::{Event, Payload, ProviderId, Source};
use kato::render::markdown::MarkdownRenderer;
use serde_json::value::RawValue;

// Any tool input renders with tool calls on without panicking, and the
// rendered block stays within the size limit plus a small frame.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // Valid JSON as it stands; anything else as a JSON string.
    let input = match serde_json::from_str::<Box<RawValue>>(text) {
        Ok(raw) => raw,
        Err(_) => match serde_json::value::to_raw_value(text) {
            Ok(raw) => raw,
            Err(_) => return,
        },
    };
    let max = usize::from(first) * 16;
    let opts = MarkdownOptions {
        tool_calls: true,
        tool_output_max_bytes: max,
        ..MarkdownOptions::default()
    };
    let ev = Event::new(
        ProviderId::Claude,
        "s",
        "e",
        Source {
            record: "assistant".into(),
            offset: 0,
            file: None,
        },
        Payload::ToolCall {
            tool_call_id: "t".to_owned(),
            name: "Bash".to_owned(),
            input,
        },
    );
    let mut out = Vec::new();
    let mut r = MarkdownRenderer::new(&mut out, &opts);
    r.event(&ev).expect("writing to a Vec cannot fail");
    drop(r);
    // The kept text, fences longer than its backtick runs, a small frame.
    assert!(
        out.len() <= 3 * max + 1024,
        "{} bytes for max {max}",
        out.len()
    );
});
