//! The JSONL export (SPEC §4): the canonical event stream, one
//! [`JsonlRecord`] (event plus `schema_version`) per line.

use std::io::{self, Write};

use crate::event::{Event, JsonlRecord, SCHEMA_VERSION};

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
        serde_json::to_writer(
            &mut self.line,
            &JsonlRecord {
                schema_version: SCHEMA_VERSION,
                event: ev,
            },
        )?;
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
