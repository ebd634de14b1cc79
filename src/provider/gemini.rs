//! Gemini provider (placeholder: every record is kept as `provider.raw`).

use std::path::{Path, PathBuf};

use crate::event::{raw_from_str, Event, Payload, ProviderId, Source};
use crate::provider::{stem, FileCtx, Layout, Malformed, Provider, RecordParser};

pub const ID: ProviderId = ProviderId("gemini");

pub struct Gemini;

impl Provider for Gemini {
    fn id(&self) -> ProviderId {
        ID
    }
    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".gemini/tmp")]
    }
    fn layout(&self) -> Layout {
        Layout::Jsonl
    }
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        Some(FileCtx {
            provider: ID,
            file_tag: stem(rel),
            session_hint: stem(rel),
            subagent: None,
        })
    }
    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(RawParser(ctx.clone()))
    }
}

struct RawParser(FileCtx);

impl RecordParser for RawParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let v: &serde_json::value::RawValue =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let source = Source {
            record: "raw".into(),
            offset,
            file: Some(self.0.file_tag.clone()),
        };
        out(Event::new(
            ID,
            self.0.session_hint.clone(),
            format!("{}:{offset}", self.0.file_tag),
            source,
            Payload::ProviderRaw {
                record: raw_from_str(v.get()),
            },
        ));
        Ok(())
    }
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn restore(&mut self, _: &serde_json::Value) -> Result<(), Malformed> {
        Ok(())
    }
}
