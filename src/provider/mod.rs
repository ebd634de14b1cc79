//! Providers: where each agent keeps its session logs, how to recognise
//! and how to parse them.
//!
//! Invariant: parsers do no I/O. A [`RecordParser`] gets bytes and returns
//! events; reading files (incrementally, with cursors) is [`crate::reader`]'s
//! job, and finding files is [`crate::discover`]'s.
//!
//! Everything provider-specific sits behind [`Provider`]: default roots,
//! which files are sessions ([`Provider::classify`]), how a file is stored
//! ([`SourceKind`]), how to recognise a file named directly
//! ([`Provider::sniff`]), the section `kato config init` writes
//! ([`Provider::config_section`]) and the parser.
//!
//! Adding a provider: one new module implementing [`Provider`], one entry
//! in the list that declares [`ProviderId`] (in [`crate::event`], the leaf
//! every stage shares, so that it knows names and not implementations),
//! and one line in [`registry`]. The registry array's length is
//! `ProviderId::ALL.len()`, so the compiler refuses an id without its line;
//! a test checks the order. The three cannot be one line without `event`
//! naming the implementations, which would bring back the dependency from
//! the event stream to the parsers.
//!
//! Code that enumerates providers (discovery, `kato sessions`, export's
//! lookups, the config and its template, the daemon's stages) takes a
//! [`Registry`] value, carried by [`crate::config::Config`], and never the
//! global: a test builds a registry holding a toy provider and runs the
//! same code.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::event::{Event, ProviderId, Subagent};

pub mod aider;
pub mod amp;
pub mod claude;
pub mod cline;
pub mod codex;
pub mod copilot;
pub mod copy;
pub mod crush;
pub mod cursor;
pub mod droid;
pub mod gemini;
pub mod gemini_jsonl;
pub mod goose;
pub mod kimi;
pub mod opencode;
pub mod qwen;
#[cfg(test)]
mod toy;

/// The registration: one line per provider, in display order.
static REGISTERED: [&dyn Provider; ProviderId::ALL.len()] = [
    &claude::Claude,
    &codex::Codex,
    &gemini_jsonl::GeminiCli,
    &copilot::Copilot,
    &cline::Cline,
    &qwen::Qwen,
    &cursor::Cursor,
    &droid::Droid,
    &amp::Amp,
    &kimi::Kimi,
    &aider::Aider,
    &opencode::OpenCode,
    &crush::Crush,
    &goose::Goose,
];

/// Every registered provider.
pub fn registry() -> Registry {
    Registry::new(&REGISTERED)
}

/// Look a provider up by name in the global registry: for the edges
/// (tests, fuzz targets, benches). Library code takes a [`Registry`].
pub fn by_name(name: &str) -> Option<&'static dyn Provider> {
    registry().by_name(name)
}

/// A set of providers, in display order. A value, so that code which
/// enumerates providers can be run with another set (tests).
#[derive(Clone, Copy)]
pub struct Registry {
    providers: &'static [&'static dyn Provider],
}

impl Registry {
    pub const fn new(providers: &'static [&'static dyn Provider]) -> Registry {
        Registry { providers }
    }

    pub fn iter(self) -> impl Iterator<Item = &'static dyn Provider> {
        self.providers.iter().copied()
    }

    pub fn get(self, id: ProviderId) -> Option<&'static dyn Provider> {
        self.iter().find(|p| p.id() == id)
    }

    /// Look a provider up by its name (`claude`, `codex`, `gemini`).
    pub fn by_name(self, name: &str) -> Option<&'static dyn Provider> {
        self.iter().find(|p| p.id().as_str() == name)
    }

    /// The names, comma-separated, for messages.
    pub fn names(self) -> String {
        let names: Vec<_> = self.iter().map(|p| p.id().as_str()).collect();
        names.join(", ")
    }

    /// The provider whose format `head` (the start of a file) looks most
    /// like; on a tie the first registered.
    pub fn sniff(self, head: &[u8]) -> Option<&'static dyn Provider> {
        let mut best: Option<(Sniff, &'static dyn Provider)> = None;
        for p in self.iter() {
            let s = p.sniff(head);
            if s > Sniff::No && best.is_none_or(|(b, _)| s > b) {
                best = Some((s, p));
            }
        }
        best.map(|(_, p)| p)
    }
}

/// Iterates like the slice it holds (`for p in registry()`).
impl IntoIterator for Registry {
    type Item = &'static &'static dyn Provider;
    type IntoIter = std::slice::Iter<'static, &'static dyn Provider>;

    fn into_iter(self) -> Self::IntoIter {
        self.providers.iter()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|p| p.id())).finish()
    }
}

/// How sure a provider is that the start of a file is in its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sniff {
    No,
    /// A field other formats may share (a `sessionId`).
    Weak,
    /// A record type of this format (a `type` value others may reuse).
    Strong,
    /// A key or layout only this format writes (Codex's `payload`, a Gemini
    /// document's `messages`): beats a record type of another format.
    Exact,
}

/// The first line of `head` as a JSON object, if it is one: what most
/// sniffs look at.
pub fn first_line_object(head: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Lossy: one bad byte inside a string must not hide the format.
    match serde_json::from_str(&String::from_utf8_lossy(line)).ok()? {
        serde_json::Value::Object(o) => Some(o),
        _ => None,
    }
}

/// What `kato config init` writes for a provider, besides its name and
/// default roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigSection {
    /// One line saying which agent this is.
    pub description: &'static str,
    /// An environment variable that moves the agent's files, if the agent
    /// has one kato honours: when it is set in kato's environment, the
    /// default roots are [`Provider::env_roots`] of its value.
    pub env_override: Option<&'static str>,
}

/// A string, borrowed from the input when it has no escapes. Anything
/// else is an error.
pub(crate) struct BorrowedStr<'a>(pub(crate) Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BorrowedStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A string read to its end and checked as [`BorrowedStr`] checks it (its
/// escapes decoded into the reader's scratch space), but not kept: a text
/// the consumer throws away ([`RecordParser::hide`]). Anything else is an
/// error.
pub(crate) struct Unkept;

impl<'de> serde::Deserialize<'de> for Unkept {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Unkept;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Unkept)
            }
        }
        d.deserialize_str(V)
    }
}

/// For `#[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]`
/// on an `Option<Cow<'a, str>>` field: a string borrowed from the input when
/// it has no escapes, `None` for `null`, an error for anything else. serde
/// borrows a plain `Cow<str>` field, but gives an `Option<Cow<str>>` an
/// owned copy of every string.
pub(crate) fn opt_str<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    let s: Option<BorrowedStr<'de>> = serde::Deserialize::deserialize(d)?;
    Ok(s.map(|s| s.0))
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

/// `<id><tag><n>` (`msg-1#call-0`): the id of the n-th event of one kind
/// made from a record with its own id, built at its final size (`format!`
/// starts such a string empty and grows it).
pub fn indexed_id(id: &str, tag: &str, n: usize) -> String {
    let mut s = String::with_capacity(id.len() + tag.len() + 20);
    s.push_str(id);
    s.push_str(tag);
    push_decimal(&mut s, n as u64);
    s
}

/// Append the decimal digits of `v`.
pub fn push_decimal(s: &mut String, v: u64) {
    for &d in decimal(v, &mut [0; 20]) {
        s.push(char::from(d));
    }
}

/// The decimal digits of `v`, written at the end of `digits`.
pub fn decimal(mut v: u64, digits: &mut [u8; 20]) -> &[u8] {
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
    &digits[i..]
}

/// How a provider stores its sessions, which decides how they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Append-only JSON Lines: read incrementally by byte offset.
    Jsonl,
    /// One JSON document rewritten in place: parsed whole each time; the
    /// parser keeps its own position (e.g. a message index) in its state.
    Document,
    /// A session spread over a directory of files. Not read yet:
    /// [`Unsupported`].
    DirectoryStore,
    /// A session kept in a database. Not read yet: [`Unsupported`].
    Database,
    /// Append-only text lines that are not JSON (Aider's Markdown chat
    /// history): read incrementally by byte offset like [`SourceKind::Jsonl`].
    Lines,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Jsonl => "append-only JSON Lines",
            SourceKind::Document => "rewritten JSON document",
            SourceKind::DirectoryStore => "directory store",
            SourceKind::Database => "database",
            SourceKind::Lines => "append-only text lines",
        }
    }
}

/// A source kind the reader cannot read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: reading a {} is not supported yet", kind.as_str())]
pub struct Unsupported {
    pub provider: ProviderId,
    pub kind: SourceKind,
}

impl From<Unsupported> for std::io::Error {
    fn from(e: Unsupported) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::Unsupported, e)
    }
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
    /// Parse one record. For [`SourceKind::Jsonl`] `bytes` is one line without
    /// its `\n` and `offset` its byte offset; for [`SourceKind::Document`] it is
    /// the whole document and `offset` is 0. Events go to `out` in order.
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed>;

    /// [`RecordParser::record`] for a record already known to be UTF-8
    /// (the reader checked a larger piece that holds it). A parser that
    /// reads records as text does its work here and has `record` check
    /// the bytes ([`utf8`]) and call it, so the check is made once.
    fn record_text(
        &mut self,
        offset: u64,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        self.record(offset, text.as_bytes(), out)
    }

    /// Called once when the input is complete (a one-shot read with
    /// [`crate::reader::Tail::Final`]); emits anything held back waiting for
    /// a twin record. Incremental reads do not call it: a twin may still come.
    fn flush(&mut self, _out: &mut dyn FnMut(Event)) {}

    /// Serializable parser context, persisted with the cursor.
    fn state(&self) -> serde_json::Value;

    /// Whether blank (whitespace-only) lines are passed to
    /// [`RecordParser::record`]; JSON Lines parsers never see them.
    fn wants_blank_lines(&self) -> bool {
        false
    }

    /// Restore context saved by [`RecordParser::state`]. An unreadable state
    /// is an error; the caller then re-reads the file from the start.
    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed>;

    /// The consumer empties the texts `hidden` names
    /// ([`crate::event::Hidden::strip`]): the parser may leave them
    /// undecoded, as long as every event it emits is the one it would emit
    /// otherwise, stripped, and every record it refuses is one it would
    /// refuse otherwise. The parser state does not change with it.
    fn hide(&mut self, _hidden: crate::event::Hidden) {}

    /// The consumer writes JSON: the parser may hold a text as the JSON
    /// string literal it read ([`crate::event::Text::from_json`]), as long
    /// as every event it emits reads as the one it would emit otherwise and
    /// every record it refuses is one it would refuse otherwise. The parser
    /// state does not change with it.
    fn keep_json(&mut self) {}
}

/// A record's bytes as text, or the error for a record that is not UTF-8.
pub fn utf8(bytes: &[u8]) -> Result<&str, Malformed> {
    std::str::from_utf8(bytes).map_err(|_| Malformed::InvalidUtf8)
}

/// [`RecordParser::record`] of a parser that reads its records as text:
/// the bytes checked as UTF-8 ([`utf8`]), then
/// [`RecordParser::record_text`], which the parser implements.
macro_rules! record_as_text {
    () => {
        fn record(
            &mut self,
            offset: u64,
            bytes: &[u8],
            out: &mut dyn FnMut($crate::event::Event),
        ) -> Result<(), $crate::provider::Malformed> {
            self.record_text(offset, $crate::provider::utf8(bytes)?, out)
        }
    };
}
pub(crate) use record_as_text;

/// One agent's log format and layout.
pub trait Provider: Sync {
    fn id(&self) -> ProviderId;

    /// Default roots under the user's home directory.
    fn default_roots(&self, home: &Path) -> Vec<PathBuf>;

    fn source_kind(&self) -> SourceKind;

    /// How the file `ctx` (from [`Provider::classify`] or
    /// [`Provider::named_file`]) is stored. The provider's one
    /// [`Provider::source_kind`] unless it keeps sessions in more than one
    /// shape (Gemini CLI: JSON documents, then JSON Lines since 0.39).
    /// Code that reads a file asks this, never `source_kind`.
    fn file_source_kind(&self, _ctx: &FileCtx) -> SourceKind {
        self.source_kind()
    }

    /// The roots when the agent's own variable
    /// ([`ConfigSection::env_override`]) is set to `value` in kato's
    /// environment. By default the variable stands for the home directory
    /// the agent's files are under.
    fn env_roots(&self, value: &Path) -> Vec<PathBuf> {
        self.default_roots(value)
    }

    /// A small file kept by the agent that names the project directory of
    /// the session file `path` (Gemini's `.project_root`, Kimi CLI's
    /// `kimi.json`): shown by `kato sessions`. Judged from the path alone;
    /// the caller reads it and hands its text to
    /// [`Provider::project_from_marker`].
    fn project_marker(&self, _path: &Path) -> Option<PathBuf> {
        None
    }

    /// The project directory of the session file `path`, from the text of
    /// its [`Provider::project_marker`]: by default the first line.
    fn project_from_marker(&self, _path: &Path, text: &str) -> Option<String> {
        text.lines().next().map(|l| l.trim().to_owned())
    }

    /// Project markers outside the roots (a registry beside them, never
    /// inside the folders holding credentials): `kato sessions` may read
    /// these files, and only these, besides the roots. No stage of the
    /// daemon reads them.
    fn markers_beside(&self, _root: &Path) -> Vec<PathBuf> {
        Vec::new()
    }

    /// The project directory of the session file `path` when it is known
    /// from where the agent writes the file (Aider writes its history in
    /// the project folder itself): shown by `kato sessions`. Judged from
    /// the path alone.
    fn project_folder(&self, _path: &Path) -> Option<PathBuf> {
        None
    }

    /// Whether discovery and the daemon's watch enter a directory of this
    /// name below a root (roots that hold whole projects skip dependency
    /// trees and hidden directories).
    fn descends_into(&self, _name: &std::ffi::OsStr) -> bool {
        true
    }

    /// The context of a file named directly (e.g. `kato export PATH`),
    /// wherever it lies: by default the provider's own classification when
    /// the path has its layout, else a plain main-session context keyed by
    /// the file stem.
    fn named_file(&self, path: &Path) -> FileCtx {
        self.classify(path).unwrap_or_else(|| FileCtx {
            provider: self.id(),
            file_tag: stem(path),
            session_hint: stem(path),
            subagent: None,
        })
    }

    /// Decide from the path (relative to a root) whether a file is a session
    /// file, and what it is. `None` for everything else (sidecars, meta files).
    fn classify(&self, rel: &Path) -> Option<FileCtx>;

    /// How much `head` (the first bytes of a file named directly, up to
    /// 1 MiB) looks like this provider's format.
    fn sniff(&self, head: &[u8]) -> Sniff;

    /// The commented section `kato config init` writes.
    fn config_section(&self) -> ConfigSection;

    /// Whether the human's words in this provider's files can be told
    /// apart from text a tool or the model wrote reliably enough for
    /// in-chat commands. When not, the parse stage derives no command
    /// events from its files (the README says why, per agent).
    fn carries_commands(&self) -> bool {
        true
    }

    /// What a confined stage may read under the existing directory `root`,
    /// when that is less than all of it (the root holds credentials beside
    /// the sessions): the stage may then list the root's directories
    /// (names only) and read only these paths, files or directory trees.
    /// Judged now: a file created later needs a new domain. `None`: the
    /// whole root.
    fn reach(&self, _root: &Path) -> Option<Vec<PathBuf>> {
        None
    }

    /// A fresh parser for one file.
    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser>;
}

/// The context of a file named directly (e.g. `kato export PATH`):
/// [`Provider::named_file`].
pub fn ctx_for_path(provider: &dyn Provider, path: &Path) -> FileCtx {
    provider.named_file(path)
}

/// Events (as JSON) and results of `lines` read twice by fresh parsers from
/// `new`: once through [`RecordParser::record`] (the fast path where the
/// parser has one) and once through `general` alone, given the line as text
/// (a line that is not UTF-8 is [`Malformed::InvalidUtf8`] there). A parser
/// with two paths must give the same on any input: its unit tests and its
/// `<provider>_paths` fuzz target compare the two.
#[doc(hidden)]
pub fn read_both_ways<P: RecordParser>(
    lines: &[&[u8]],
    new: impl Fn() -> P,
    general: impl Fn(&mut P, u64, &[u8], &str, &mut dyn FnMut(Event)) -> Result<(), Malformed>,
) -> [(Vec<String>, Vec<String>); 2] {
    [true, false].map(|fast| {
        let mut p = new();
        let mut events = Vec::new();
        let mut results = Vec::new();
        let mut offset = 0u64;
        for bytes in lines {
            let mut push = |e: Event| events.push(serde_json::to_string(&e).unwrap_or_default());
            let r = if fast {
                p.record(offset, bytes, &mut push)
            } else {
                match std::str::from_utf8(bytes) {
                    Ok(text) => general(&mut p, offset, bytes, text, &mut push),
                    Err(_) => Err(Malformed::InvalidUtf8),
                }
            };
            results.push(format!("{offset}: {r:?}"));
            offset += bytes.len() as u64 + 1;
        }
        p.flush(&mut |e| events.push(serde_json::to_string(&e).unwrap_or_default()));
        (events, results)
    })
}

/// Events (as JSON, every hidden text emptied) and results of `lines`
/// read by a parser told to hide all that [`Hidden`](crate::event::Hidden)
/// names, and by one reading everything: a parser that leaves hidden texts
/// undecoded ([`RecordParser::hide`]) must give the same both ways. The
/// unit tests of each parser that does, and its fuzz target, check it.
#[doc(hidden)]
pub fn read_hidden_both_ways<P: RecordParser>(
    lines: &[&[u8]],
    new: impl Fn() -> P,
) -> [(Vec<String>, Vec<String>); 2] {
    let all = crate::event::Hidden {
        thinking: true,
        tools: true,
        provider: true,
    };
    [true, false].map(|hide| {
        let mut p = new();
        if hide {
            p.hide(all);
        }
        let mut events = Vec::new();
        let results = read_all(&mut p, lines, &mut |mut e: Event| {
            all.strip(&mut e);
            events.push(serde_json::to_string(&e).unwrap_or_default());
        });
        (events, results)
    })
}

/// Feed `lines` (offsets as in a file) and flush: each record's result.
fn read_all<P: RecordParser>(
    p: &mut P,
    lines: &[&[u8]],
    push: &mut dyn FnMut(Event),
) -> Vec<String> {
    let mut results = Vec::new();
    let mut offset = 0u64;
    for bytes in lines {
        let r = p.record(offset, bytes, push);
        results.push(format!("{offset}: {r:?}"));
        offset += bytes.len() as u64 + 1;
    }
    p.flush(push);
    results
}

/// Events (redacted, as the JSONL lines an export writes, with what was
/// redacted) and results of `lines` read by a parser told its consumer
/// writes JSON and by one not told: a parser that keeps texts as JSON
/// literals ([`RecordParser::keep_json`]) must give the same both ways.
/// The unit tests of each parser that does, and its fuzz target, check it.
#[doc(hidden)]
pub fn read_json_both_ways<P: RecordParser>(
    lines: &[&[u8]],
    new: impl Fn() -> P,
) -> [(Vec<String>, Vec<String>); 2] {
    let redactor = crate::redact::Redactor::new(&crate::redact::RedactionOptions::default());
    [true, false].map(|json| {
        let mut p = new();
        if json {
            p.keep_json();
        }
        let mut events = Vec::new();
        let results = read_all(&mut p, lines, &mut |mut e: Event| {
            let mut stats = crate::redact::RedactionStats::default();
            if let Ok(r) = &redactor {
                r.redact_event(&mut e, &mut stats);
            }
            let mut line = Vec::new();
            crate::render::jsonl::encode(&e, &mut line);
            let line = String::from_utf8_lossy(&line);
            events.push(format!("{line} {:?}", stats.redactions));
        });
        (events, results)
    })
}

/// Parser state saved by [`RecordParser::state`], read back for
/// [`RecordParser::restore`]: `null` (nothing saved yet) is the default
/// state; anything that is not the state's shape is refused.
pub fn restore_state<T: serde::de::DeserializeOwned + Default>(
    state: &serde_json::Value,
) -> Result<T, Malformed> {
    if state.is_null() {
        return Ok(T::default());
    }
    T::deserialize(state).map_err(|e| Malformed::WrongShape(e.to_string()))
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
    fn optional_strings_are_borrowed_when_unescaped() {
        #[derive(serde::Deserialize)]
        struct T<'a> {
            #[serde(borrow, default, deserialize_with = "opt_str")]
            a: Option<Cow<'a, str>>,
        }
        let read = |json: &'static str| serde_json::from_str::<T<'_>>(json).map(|t| t.a);
        assert!(matches!(
            read(r#"{"a": "plain"}"#),
            Ok(Some(Cow::Borrowed("plain")))
        ));
        assert!(matches!(read(r#"{"a": "t\u00e9"}"#), Ok(Some(Cow::Owned(s))) if s == "té"));
        assert!(matches!(read(r#"{"a": null}"#), Ok(None)));
        assert!(matches!(read("{}"), Ok(None)));
        let wrong = read(r#"{"a": 1}"#).err().map(|e| e.to_string());
        assert_eq!(
            wrong.as_deref(),
            Some("invalid type: integer `1`, expected a string at line 1 column 7")
        );
    }

    #[test]
    fn registry_holds_every_id_once_in_order() {
        let ids: Vec<_> = registry().iter().map(|p| p.id()).collect();
        assert_eq!(ids, ProviderId::ALL);
        let names: Vec<_> = ids.iter().map(|id| id.as_str()).collect();
        assert_eq!(
            names,
            [
                "claude", "codex", "gemini", "copilot", "cline", "qwen", "cursor", "droid", "amp",
                "kimi", "aider", "opencode", "crush", "goose"
            ]
        );
        for n in names {
            assert_eq!(registry().by_name(n).map(|p| p.id().as_str()), Some(n));
            assert_eq!(n.parse::<ProviderId>().map(ProviderId::as_str), Ok(n));
        }
        assert!(registry().by_name("nosuch").is_none());
        assert!(registry().by_name("toy").is_none());
        assert_eq!(
            "nosuch".parse::<ProviderId>().map_err(|e| e.to_string()),
            Err("unknown provider `nosuch`".to_owned())
        );
        assert_eq!(
            format!("{registry:?}", registry = registry()),
            "[Claude, Codex, Gemini, Copilot, Cline, Qwen, Cursor, Droid, Amp, Kimi, Aider, OpenCode, Crush, Goose]"
        );
    }

    #[test]
    fn provider_ids_keep_their_json_names() {
        for &id in ProviderId::ALL {
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{id}\""));
            assert_eq!(serde_json::from_str::<ProviderId>(&json).unwrap(), id);
        }
        let e = serde_json::from_str::<ProviderId>("\"nosuch\"").unwrap_err();
        assert!(e.to_string().contains("unknown provider `nosuch`"), "{e}");
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
