//! Providers: where each agent keeps its session logs and how to parse them.
//!
//! Invariant: parsers do no I/O. A [`RecordParser`] gets bytes and returns
//! events; reading files (incrementally, with cursors) is [`crate::reader`]'s
//! job, and finding files is [`crate::discover`]'s. Adding a provider means
//! one new module implementing [`Provider`] plus one line in [`registry`].

use std::path::{Path, PathBuf};

use crate::event::{Event, ProviderId, Subagent};

pub mod claude;
pub mod codex;
pub mod gemini;

/// Every registered provider, in display order.
pub fn registry() -> &'static [&'static dyn Provider] {
    &[&claude::Claude, &codex::Codex, &gemini::Gemini]
}

/// Look a provider up by its name (`claude`, `codex`, `gemini`).
pub fn by_name(name: &str) -> Option<&'static dyn Provider> {
    registry().iter().copied().find(|p| p.id().as_str() == name)
}

/// `<file_tag>:<offset>`, followed by `#<n>` for the n-th further event
/// of one record: the id of events without a provider id. Built without
/// `format!`, as it runs for every event.
pub fn offset_id(tag: &str, offset: u64, n: u32) -> String {
    let mut id = String::with_capacity(tag.len() + 32);
    id.push_str(tag);
    id.push(':');
    push_decimal(&mut id, offset);
    if n > 0 {
        id.push('#');
        push_decimal(&mut id, u64::from(n));
    }
    id
}

/// Append the decimal digits of `v`.
pub fn push_decimal(s: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `v % 10` is below 10: the cast cannot truncate.
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        s.push(char::from(d));
    }
}

/// How a provider lays out one session file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Append-only JSON Lines: read incrementally by byte offset.
    Jsonl,
    /// One JSON document rewritten in place: parsed whole each time; the
    /// parser keeps its own position (e.g. a message index) in its state.
    Document,
}

/// What a discovered file is, judged from its path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCtx {
    pub provider: ProviderId,
    /// Short stable tag of the file (its stem), used in event ids and `source.file`.
    pub file_tag: String,
    /// Session id implied by the path (file stem, parent directory), used
    /// when the records do not name one.
    pub session_hint: String,
    /// Set when the path says this file holds subagent work.
    pub subagent: Option<Subagent>,
}

/// A record that could not be turned into events. The line is skipped and
/// counted; the parse goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("unexpected shape: {0}")]
    WrongShape(String),
}

impl Malformed {
    /// Classify a serde_json error on `bytes`.
    pub fn from_json_error(bytes: &[u8], err: &serde_json::Error) -> Malformed {
        if std::str::from_utf8(bytes).is_err() {
            return Malformed::InvalidUtf8;
        }
        match err.classify() {
            serde_json::error::Category::Data => Malformed::WrongShape(err.to_string()),
            _ => Malformed::NotJson(err.to_string()),
        }
    }
}

/// Turns one provider record into canonical events. Holds whatever context
/// the provider format needs between records (current model, pending
/// duplicates, message index); that context round-trips through
/// [`RecordParser::state`] so a daemon can persist it beside the cursor.
pub trait RecordParser: Send {
    /// Parse one record. For [`Layout::Jsonl`] `bytes` is one line without
    /// its `\n` and `offset` its byte offset; for [`Layout::Document`] it is
    /// the whole document and `offset` is 0. Events go to `out` in order.
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed>;

    /// Called once when the input is complete (a one-shot read with
    /// [`crate::reader::Tail::Final`]); emits anything held back waiting for
    /// a twin record. Incremental reads do not call it: a twin may still come.
    fn flush(&mut self, _out: &mut dyn FnMut(Event)) {}

    /// Serializable parser context, persisted with the cursor.
    fn state(&self) -> serde_json::Value;

    /// Restore context saved by [`RecordParser::state`]. An unreadable state
    /// is an error; the caller then re-reads the file from the start.
    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed>;
}

/// One agent's log format and layout.
pub trait Provider: Sync {
    fn id(&self) -> ProviderId;

    /// Default roots under the user's home directory.
    fn default_roots(&self, home: &Path) -> Vec<PathBuf>;

    fn layout(&self) -> Layout;

    /// Decide from the path (relative to a root) whether a file is a session
    /// file, and what it is. `None` for everything else (sidecars, meta files).
    fn classify(&self, rel: &Path) -> Option<FileCtx>;

    /// A fresh parser for one file.
    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser>;
}

/// The context of a file named directly (e.g. `kato export PATH`): the
/// provider's own classification when the path has its layout, else a
/// plain main-session context keyed by the file stem.
pub fn ctx_for_path(provider: &dyn Provider, path: &Path) -> FileCtx {
    provider.classify(path).unwrap_or_else(|| FileCtx {
        provider: provider.id(),
        file_tag: stem(path),
        session_hint: stem(path),
        subagent: None,
    })
}

/// The file stem as a `String` (lossy for non-UTF-8 names).
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_resolvable() {
        let names: Vec<_> = registry().iter().map(|p| p.id().as_str()).collect();
        assert_eq!(names, ["claude", "codex", "gemini"]);
        for n in names {
            assert_eq!(by_name(n).map(|p| p.id().as_str()), Some(n));
        }
        assert!(by_name("cursor").is_none());
    }

    #[test]
    fn offset_ids_match_their_format() {
        for (offset, n) in [(0, 0), (7, 0), (1234, 1), (u64::MAX, u32::MAX), (10, 10)] {
            let want = match n {
                0 => format!("tag:{offset}"),
                n => format!("tag:{offset}#{n}"),
            };
            assert_eq!(offset_id("tag", offset, n), want);
        }
    }
}
