//! The JSONL export (SPEC §4): the canonical event stream, one
//! [`JsonlRecord`](crate::event::JsonlRecord) (event plus `schema_version`) per line.

use std::io::{self, Write};

use serde_json::value::RawValue;

use crate::event::{Event, Payload, Source, Subagent, SCHEMA_VERSION};

/// Streams events as JSON Lines. Every event kind is written, including
/// `provider.info` and `provider.raw`: the export is lossless.
pub struct JsonlWriter<W: Write> {
    w: W,
    line: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(w: W) -> JsonlWriter<W> {
        JsonlWriter {
            w,
            line: Vec::new(),
        }
    }

    /// Write one event as one line (a single `write_all`).
    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.line.clear();
        encode(ev, &mut self.line);
        super::controls::json_line(&mut self.line);
        self.line.push(b'\n');
        self.w.write_all(&self.line)?;
        if self.line.capacity() > 1 << 20 {
            self.line = Vec::new();
        }
        Ok(())
    }

    /// Flush and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One event as its JSON line (without the newline), byte for byte what
/// `serde_json` writes for [`crate::event::JsonlRecord`]: the same fields in
/// the same order, the same escapes. Written out by hand because the
/// export spends most of its writing time here, and `serde_json` looks up
/// every byte of every string in a table while `string` skips clean runs
/// sixteen bytes at a time. `encodes_as_serde_does` and every parser's
/// fuzz target hold the two to the same bytes.
pub fn encode(ev: &Event, out: &mut Vec<u8>) {
    // Destructured whole: a field added to `Event` or `Payload` does not
    // compile until it is written here too.
    let Event {
        provider,
        session_id,
        event_id,
        timestamp,
        turn_id,
        model,
        subagent,
        copied,
        source,
        payload,
    } = ev;
    out.extend_from_slice(b"{\"schema_version\":");
    number(out, u64::from(SCHEMA_VERSION));
    field(out, "provider", provider.as_str());
    field(out, "session_id", session_id);
    field(out, "event_id", event_id);
    optional(out, "timestamp", timestamp.as_deref());
    optional(out, "turn_id", turn_id.as_deref());
    optional(out, "model", model.as_deref());
    if let Some(Subagent { id, label }) = subagent {
        out.extend_from_slice(b",\"subagent\":{");
        let mut first = true;
        for (key, value) in [("id", id), ("label", label)] {
            if let Some(v) = value {
                if !first {
                    out.push(b',');
                }
                first = false;
                string(out, key);
                out.push(b':');
                string(out, v);
            }
        }
        out.push(b'}');
    }
    if *copied {
        out.extend_from_slice(b",\"copied\":true");
    }
    let Source {
        record,
        offset,
        file,
    } = source;
    out.extend_from_slice(b",\"source\":{\"record\":");
    string(out, record);
    out.extend_from_slice(b",\"offset\":");
    number(out, *offset);
    optional(out, "file", file.as_deref());
    out.push(b'}');
    field(out, "kind", payload.kind().as_str());
    match payload {
        Payload::UserMessage { text, attachments } => {
            field(out, "text", text);
            if *attachments != 0 {
                out.extend_from_slice(b",\"attachments\":");
                number(out, u64::from(*attachments));
            }
        }
        Payload::KatoCommand {
            raw,
            line,
            message_id,
            error,
        } => {
            field(out, "raw", raw);
            out.extend_from_slice(b",\"line\":");
            number(out, u64::from(*line));
            field(out, "message_id", message_id);
            optional(out, "error", error.as_deref());
        }
        Payload::DecisionResponse { prompt_id, text } => {
            field(out, "prompt_id", prompt_id);
            field(out, "text", text);
        }
        Payload::AssistantMessage { text } | Payload::Thinking { text } => {
            field(out, "text", text);
        }
        Payload::ToolCall {
            tool_call_id,
            name,
            input,
        } => {
            field(out, "tool_call_id", tool_call_id);
            field(out, "name", name);
            raw(out, "input", input);
        }
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => {
            field(out, "tool_call_id", tool_call_id);
            match output.json() {
                // Already escaped as `string` escapes: copied.
                Some(literal) => {
                    out.extend_from_slice(b",\"output\":");
                    out.extend_from_slice(literal.as_bytes());
                }
                None => field(out, "output", output),
            }
            if *is_error {
                out.extend_from_slice(b",\"is_error\":true");
            }
        }
        Payload::DecisionPrompt {
            prompt_id,
            name,
            text,
        } => {
            field(out, "prompt_id", prompt_id);
            field(out, "name", name);
            field(out, "text", text);
        }
        Payload::SystemMessage { category, text } => {
            field(out, "category", category.name());
            field(out, "text", text);
        }
        Payload::ProviderInfo { topic, data } => {
            field(out, "topic", topic);
            raw(out, "data", data);
        }
        Payload::ProviderRaw { record } => raw(out, "record", record),
    }
    out.push(b'}');
}

/// `,"key":"value"`.
fn field(out: &mut Vec<u8>, key: &str, value: &str) {
    out.push(b',');
    string(out, key);
    out.push(b':');
    string(out, value);
}

/// [`field`] when there is a value; nothing when there is none.
fn optional(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        field(out, key, v);
    }
}

/// `,"key":` and the raw JSON as it is held.
fn raw(out: &mut Vec<u8>, key: &str, value: &RawValue) {
    out.push(b',');
    string(out, key);
    out.push(b':');
    out.extend_from_slice(value.get().as_bytes());
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(crate::provider::decimal(n, &mut [0; 20]));
}

/// A byte JSON cannot hold as it is inside a string.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `s` as a JSON string literal, escaped as `serde_json` escapes it: the
/// quote, the backslash and the short forms `\b \t \n \f \r`; any other
/// C0 control as `\u00XX` in lower-case hex.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let escape = |out: &mut Vec<u8>, at: usize, start: &mut usize| {
        let b = bytes[at];
        out.extend_from_slice(&bytes[*start..at]);
        *start = at + 1;
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            b'\t' => b't',
            b'\n' => b'n',
            0x0c => b'f',
            b'\r' => b'r',
            _ => 0,
        };
        if short == 0 {
            let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
    };
    // Sixteen bytes a step, a fold without early exit so that it
    // vectorises; a step that holds an escape is walked byte by byte.
    let mut chunks = bytes.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |seen, &b| seen | escaped(b)) {
            for (i, &b) in chunk.iter().enumerate() {
                if escaped(b) {
                    escape(out, at + i, &mut start);
                }
            }
        }
        at += 16;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if escaped(b) {
            escape(out, at + i, &mut start);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::event::{raw_from_str, Kind, Payload, ProviderId, Source};

    fn ev(id: &str, payload: Payload) -> Event {
        Event::new(
            ProviderId::Codex,
            "sess",
            id,
            Source {
                record: "r".into(),
                offset: 7,
                file: None,
            },
            payload,
        )
    }

    /// What `serde_json` writes for the event, DEL and C1 escaped: the
    /// reference [`encode`] must match byte for byte.
    fn by_serde(ev: &Event) -> Vec<u8> {
        let mut line = serde_json::to_vec(&crate::event::JsonlRecord {
            schema_version: SCHEMA_VERSION,
            event: ev,
        })
        .unwrap();
        crate::render::controls::json_line(&mut line);
        line
    }

    #[test]
    fn encodes_as_serde_does() {
        use crate::event::{Subagent, SystemCategory};
        // Every byte that JSON escapes, at every position of a 16-byte
        // step, next to multi-byte characters, DEL and C1.
        let all_escapes: String = (0u8..0x20).map(char::from).chain(['"', '\\']).collect();
        let mut texts = vec![
            String::new(),
            "plain".into(),
            "x".repeat(16),
            "x".repeat(33),
            all_escapes.clone(),
            format!("ünï\u{7f}cö\u{85}dé 🙂 \u{2028}{all_escapes}\u{9f}\u{a0}"),
        ];
        for pad in 0..18 {
            texts.push(format!(
                "{}\"{}\n\\{}\u{1b}",
                "a".repeat(pad),
                "é".repeat(pad),
                "b".repeat(17 - pad)
            ));
        }
        let categories = SystemCategory::ALL;
        let raw = || raw_from_str(r#"{"a": [1, "\u0007\u00e9"], "b": "\u007f"}"#);
        let mut events = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let payloads = vec![
                Payload::UserMessage {
                    text: t.clone(),
                    attachments: (i % 3) as u32,
                },
                Payload::KatoCommand {
                    raw: t.clone(),
                    line: i as u32,
                    message_id: t.clone(),
                    error: (i % 2 == 0).then(|| t.clone()),
                },
                Payload::DecisionResponse {
                    prompt_id: t.clone(),
                    text: t.clone(),
                },
                Payload::AssistantMessage { text: t.clone() },
                Payload::Thinking { text: t.clone() },
                Payload::ToolCall {
                    tool_call_id: t.clone(),
                    name: t.clone(),
                    input: raw(),
                },
                Payload::ToolResult {
                    tool_call_id: t.clone(),
                    output: t.clone().into(),
                    is_error: i % 2 == 1,
                },
                Payload::DecisionPrompt {
                    prompt_id: t.clone(),
                    name: t.clone(),
                    text: t.clone(),
                },
                Payload::SystemMessage {
                    category: categories[i % categories.len()],
                    text: t.clone(),
                },
                Payload::ProviderInfo {
                    topic: t.clone(),
                    data: raw(),
                },
                Payload::ProviderRaw { record: raw() },
            ];
            for (j, payload) in payloads.into_iter().enumerate() {
                let mut ev = Event::new(
                    ProviderId::ALL[(i + j) % ProviderId::ALL.len()],
                    t.clone(),
                    t.clone(),
                    Source {
                        record: t.clone().into(),
                        offset: u64::MAX >> (i + j),
                        file: (j % 2 == 0).then(|| t.as_str().into()),
                    },
                    payload,
                );
                let some = |k: usize| ((i + j) % k == 0).then(|| t.clone());
                ev.timestamp = some(2).map(Into::into);
                ev.turn_id = some(3).map(Into::into);
                ev.model = some(4).map(Into::into);
                ev.subagent = match (i + j) % 4 {
                    0 => None,
                    1 => Some(Subagent {
                        id: None,
                        label: None,
                    }),
                    2 => Some(Subagent {
                        id: some(1),
                        label: None,
                    }),
                    _ => Some(Subagent {
                        id: some(1),
                        label: some(1),
                    }),
                };
                ev.copied = (i + j) % 5 == 0;
                events.push(ev);
            }
        }
        for c in categories {
            events.push(ev(
                "c",
                Payload::SystemMessage {
                    category: c,
                    text: "t".into(),
                },
            ));
        }
        for ev in &events {
            let mut line = Vec::new();
            encode(ev, &mut line);
            crate::render::controls::json_line(&mut line);
            assert_eq!(
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&by_serde(ev)),
            );
        }
        assert!(events.len() > 200);
    }

    #[test]
    fn one_line_per_event_with_schema_version() {
        let events = [
            ev(
                "a",
                Payload::UserMessage {
                    text: "line\nbreak \u{2028} \"q\"".into(),
                    attachments: 0,
                },
            ),
            ev(
                "b",
                Payload::ProviderRaw {
                    record: raw_from_str(r#"{"x": [1, 2]}"#),
                },
            ),
        ];
        let mut w = JsonlWriter::new(Vec::new());
        for e in &events {
            w.event(e).unwrap();
        }
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(out.ends_with('\n'));
        for (line, orig) in lines.iter().zip(&events) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["schema_version"], SCHEMA_VERSION);
            let back: Event = serde_json::from_str(line).unwrap();
            assert_eq!(back.event_id, orig.event_id);
            assert_eq!(back.kind(), orig.kind());
        }
        let back: Event = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(back.kind(), Kind::ProviderRaw);
    }
}
