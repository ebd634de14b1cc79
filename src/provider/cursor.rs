//! Cursor agent transcripts (the IDE's agent and `cursor-agent`):
//! `~/.cursor/projects/<slug>/agent-transcripts/<id>/<id>.jsonl`, or the
//! flat `agent-transcripts/<id>.jsonl` of earlier versions.
//!
//! The root is `~/.cursor/projects`, not `~/.cursor`, which also holds the
//! agent's `mcp.json` and `cli-config.json`; only files under an
//! `agent-transcripts` directory are read ([`Provider::classify`]).
//! Other files under a project (`agent-tools/` outputs, terminals) are
//! never opened. The flat `.txt` transcripts some versions are said to
//! write have no documented shape and are not read.
//!
//! Records, one a line, append-only:
//!
//! * `{role: "user"|"assistant", message: {content: [block…]}}`, blocks
//!   `text`, `tool_use {name, input}`, `tool_result {content}` and
//!   `thinking`; a `content` that is a string is one text block;
//! * `{type: "turn_ended", status}`: the end of a turn.
//!
//! The format holds no ids, no timestamps, no model and (in the files
//! seen) no tool results. So:
//!
//! * event ids are `<tag>:<offset>`, `#n` for the n-th further event of a
//!   line ([`offset_id`]);
//! * no event carries a time, and the first line is preceded by a notice
//!   (`<tag>:no-times`) saying that the transcript records none; `kato
//!   sessions` shows the activity times as unknown (`-`);
//! * a tool call's id is its event id; a `tool_result` block names no call,
//!   so it is paired with the oldest call still waiting for a result (the
//!   order the agent ran them in), or keeps its own event id when none is
//!   waiting;
//! * the project directory is unknown: the records hold none, the slug is
//!   a lossy encoding of the path, and nothing under the root maps one to
//!   the other.
//!
//! What the human typed: Cursor wraps it in `<user_query>…</user_query>`
//! inside a user text block, after any context it adds itself
//! (`<git_diff_from_branch_to_main>`, `<cursor_commands>`, attached files,
//! rules). A user text block is split at its last `<user_query>` before
//! its last `</user_query>`: the text inside is `user.message`, text before
//! and after is `system.message` (a `<cursor_commands>` block
//! [`SystemCategory::CommandWrapper`], anything else
//! [`SystemCategory::InjectedContext`]). A user block with no query is
//! injected context as a whole. Taking the last opening tag means a
//! `<user_query>` planted in a diff or file ahead of the human's own query
//! is never read as the human's words. Tool results never share a record
//! with the human's text, and assistant text is never user-role; so
//! in-chat commands are read from the query alone.
//!
//! Anything else that is JSON (unknown record types, unknown blocks) is
//! `provider.raw`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::raw_copy;
use crate::event::{raw_from_str, Event, Payload, ProviderId, Source, SystemCategory};
use crate::provider::{
    first_line_object, offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

const ID: ProviderId = ProviderId::Cursor;

/// The directory the transcripts are kept in, under each project.
const TRANSCRIPTS: &str = "agent-transcripts";

/// Tool calls remembered while they wait for a result.
pub const PENDING: usize = 64;

const QUERY_OPEN: &str = "<user_query>";
const QUERY_CLOSE: &str = "</user_query>";
const COMMANDS_OPEN: &str = "<cursor_commands>";

/// The text of the notice that opens every transcript.
pub const NO_TIMES: &str = "This Cursor transcript records no times: the events below \
                            carry none, and none were invented.";

/// The `cursor` provider.
pub struct Cursor;

impl Provider for Cursor {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".cursor").join("projects")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    /// `<slug>/agent-transcripts/<id>/<id>.jsonl` and
    /// `<slug>/agent-transcripts/<id>.jsonl`; only trailing components are
    /// looked at.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.extension()? != "jsonl" {
            return None;
        }
        let id = stem(rel);
        let parent = rel.parent()?;
        let in_transcripts = |dir: &Path| dir.file_name().is_some_and(|n| n == TRANSCRIPTS);
        let nested = parent.file_name().is_some_and(|n| n.to_str() == Some(&id))
            && parent.parent().is_some_and(in_transcripts);
        (nested || in_transcripts(parent)).then(|| FileCtx {
            provider: ID,
            file_tag: id.clone(),
            session_hint: id,
            subagent: None,
        })
    }

    /// A first line with a top-level `role` and `message` and nothing else
    /// but a `type`: no other format writes the role outside the message.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let Some(o) = first_line_object(head) else {
            return Sniff::No;
        };
        let role = o.get("role").and_then(|r| r.as_str());
        let shape = matches!(role, Some("user" | "assistant"))
            && o.get("message").is_some_and(|m| m.is_object())
            && o.keys().all(|k| matches!(k.as_str(), "role" | "message"));
        if shape {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Cursor agent transcripts (IDE agent and cursor-agent): no times, \
                          no ids, the project directory unknown.",
            env_override: None,
        }
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(CursorParser::new(ctx))
    }
}

/// What the parser carries between lines, persisted with the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Ids of tool calls waiting for a result, oldest first.
    #[serde(default)]
    pending: VecDeque<String>,
}

/// One line.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default, borrow)]
    role: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
}

/// A message's `content`: a string, or an array of blocks. The general
/// reading keeps each block raw (an unknown block is shown as it was
/// written); the one-pass reading decodes them as it meets them.
enum Content<B> {
    Text(String),
    Blocks(Vec<B>),
}

impl<'de, B: Deserialize<'de>> Deserialize<'de> for Content<B> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<B>(std::marker::PhantomData<B>);
        impl<'de, B: Deserialize<'de>> serde::de::Visitor<'de> for V<B> {
            type Value = Content<B>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Content<B>, E> {
                Ok(Content::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Content<B>, E> {
                Ok(Content::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Content<B>, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(b) = seq.next_element()? {
                    blocks.push(b);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The content as the general reading takes it: anything that is neither
/// a string nor an array is kept raw (`Err`).
type RawContent<'a> = Result<Content<&'a RawValue>, &'a RawValue>;

/// A message object.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

/// A content block's type.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Text,
    Thinking,
    ToolUse,
    ToolResult,
    #[serde(other)]
    Other,
}

/// One content block: the fields of every known type. The general reading
/// keeps `input` and `content` as borrowed raw JSON; the one-pass reading
/// decodes them as it meets them ([`FastResult`]).
#[derive(Deserialize)]
#[serde(bound(deserialize = "I: Deserialize<'de>, C: Deserialize<'de>"))]
struct Block<I, C> {
    #[serde(rename = "type", default)]
    kind: Option<Kind>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<I>,
    #[serde(default)]
    content: Option<C>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    is_error: Option<bool>,
}

/// What one block becomes; `None` from [`Block::item`] means the block
/// is kept as it was written.
enum Item {
    Text(String),
    Thinking(String),
    ToolUse {
        name: String,
        input: Box<RawValue>,
    },
    ToolResult {
        id: Option<String>,
        output: String,
        is_error: bool,
    },
    Raw(Box<RawValue>),
}

impl<I: Input, C: Output> Block<I, C> {
    fn item(self, user: bool) -> Option<Item> {
        Some(match self.kind? {
            Kind::Text => Item::Text(self.text?),
            Kind::Thinking if !user => Item::Thinking(self.thinking?),
            Kind::ToolUse if !user => Item::ToolUse {
                name: self.name?,
                input: self
                    .input
                    .map_or_else(|| raw_from_str("{}"), Input::into_raw),
            },
            Kind::ToolResult => Item::ToolResult {
                id: self.tool_use_id.filter(|s| !s.is_empty()),
                output: self.content.map(Output::into_text).unwrap_or_default(),
                is_error: self.is_error.unwrap_or(false),
            },
            _ => return None,
        })
    }
}

/// A tool call's input as an event holds it.
pub(super) trait Input {
    fn into_raw(self) -> Box<RawValue>;
}

impl Input for &RawValue {
    fn into_raw(self) -> Box<RawValue> {
        raw_copy(self)
    }
}

impl Input for Box<RawValue> {
    fn into_raw(self) -> Box<RawValue> {
        self
    }
}

/// A tool result's content as text ([`result_text`]).
pub(super) trait Output {
    fn into_text(self) -> String;
}

impl Output for &RawValue {
    fn into_text(self) -> String {
        result_text(Some(self))
    }
}

/// A tool result's content as [`result_text`] reads it, in one pass: a
/// string, or a list of parts that each hold a `text` (anything else is
/// left to the general reading, which keeps it as written).
pub(super) enum FastResult {
    Text(String),
    Parts(Vec<String>),
}

impl Output for FastResult {
    fn into_text(self) -> String {
        match self {
            FastResult::Text(s) => s,
            FastResult::Parts(p) => p.join("\n"),
        }
    }
}

impl<'de> Deserialize<'de> for FastResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Part {
            text: String,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FastResult;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of text parts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FastResult, E> {
                Ok(FastResult::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<FastResult, E> {
                Ok(FastResult::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FastResult, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element::<Part>()? {
                    parts.push(p.text);
                }
                Ok(FastResult::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

/// A `user` or `assistant` line read in one pass: every block decoded as
/// it is met. A line this reading cannot take whole (another role, a block
/// it would keep as raw JSON, a value of an unexpected type, a key written
/// twice) is read again the general way ([`CursorParser::general`]), which decides what
/// it becomes; where this reading succeeds, the general one gives the same
/// events.
#[derive(Deserialize)]
struct FastLine {
    role: FastRole,
    message: FastMessage,
    /// Read only so that a line naming it twice is left to the general
    /// reading, which refuses it.
    #[serde(rename = "type", default)]
    _kind: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FastRole {
    User,
    Assistant,
}

#[derive(Deserialize)]
struct FastMessage {
    content: Content<Block<Box<RawValue>, FastResult>>,
}

/// What the one-pass reading made of a line.
struct FastRecord {
    user: bool,
    items: Vec<Item>,
}

/// A line read in one pass, if it can be ([`FastLine`]).
fn fast(text: &str) -> Option<FastRecord> {
    let line = serde_json::from_str::<FastLine>(text).ok()?;
    let user = line.role == FastRole::User;
    let items = match line.message.content {
        Content::Text(s) => vec![Item::Text(s)],
        Content::Blocks(blocks) => blocks
            .into_iter()
            .map(|b| b.item(user))
            .collect::<Option<_>>()?,
    };
    Some(FastRecord { user, items })
}

/// The parts of a user text block.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// Context before the query.
    pub before: &'a str,
    /// What the human typed, if the block has a query.
    pub query: Option<&'a str>,
    /// Context after the query.
    pub after: &'a str,
}

/// Split a user text block at its last `<user_query>` before its last
/// `</user_query>`. Cursor ends the block with the query (what it adds
/// comes before it); a block with text after its last `</user_query>` has
/// no query the human typed — a tag pair planted in an attached file or a
/// diff would otherwise be taken for one — and is context whole.
pub fn split_user_text(text: &str) -> Split<'_> {
    let none = Split {
        before: text,
        query: None,
        after: "",
    };
    let Some(close) = text.rfind(QUERY_CLOSE) else {
        return none;
    };
    let Some(open) = text[..close].rfind(QUERY_OPEN) else {
        return none;
    };
    let after = &text[close + QUERY_CLOSE.len()..];
    if !after.trim().is_empty() {
        return none;
    }
    Split {
        before: &text[..open],
        query: Some(&text[open + QUERY_OPEN.len()..close]),
        after,
    }
}

/// The category of context text Cursor put in a user block.
fn context_category(text: &str) -> SystemCategory {
    if text.trim_start().starts_with(COMMANDS_OPEN) {
        SystemCategory::CommandWrapper
    } else {
        SystemCategory::InjectedContext
    }
}

/// A JSON string's text; `None` for any other value.
pub(super) fn string(raw: Option<&RawValue>) -> Option<String> {
    serde_json::from_str::<String>(raw?.get()).ok()
}

/// A tool result's content as text: a string as it is, a list of text
/// blocks joined, anything else as its JSON (Anthropic-style blocks, as
/// Droid writes them too).
pub(super) fn result_text(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    if let Ok(s) = serde_json::from_str::<String>(raw.get()) {
        return s;
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(default)]
        text: Option<String>,
    }
    match serde_json::from_str::<Vec<Part>>(raw.get()) {
        Ok(parts) if parts.iter().all(|p| p.text.is_some()) => parts
            .into_iter()
            .filter_map(|p| p.text)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => raw.get().to_owned(),
    }
}

struct CursorParser {
    ctx: FileCtx,
    st: State,
}

/// The events of one line, numbered as they are added.
struct Out<'p, 'o> {
    ctx: &'p FileCtx,
    offset: u64,
    record: &'static str,
    n: u32,
    out: &'o mut dyn FnMut(Event),
}

impl Out<'_, '_> {
    /// The id the next event gets.
    fn next_id(&self) -> String {
        offset_id(&self.ctx.file_tag, self.offset, self.n)
    }

    fn push(&mut self, payload: Payload) {
        let id = self.next_id();
        let ev = event(self.ctx, id, self.offset, self.record, payload);
        self.n += 1;
        (self.out)(ev);
    }
}

/// An event of the file `ctx`.
fn event(ctx: &FileCtx, id: String, offset: u64, record: &'static str, payload: Payload) -> Event {
    let source = Source {
        record: record.into(),
        offset,
        file: Some(ctx.file_tag.as_str().into()),
    };
    Event::new(ID, ctx.session_hint.clone(), id, source, payload)
}

impl CursorParser {
    fn new(ctx: &FileCtx) -> CursorParser {
        CursorParser {
            ctx: ctx.clone(),
            st: State::default(),
        }
    }

    /// The notice that opens the transcript.
    fn no_times(&self, out: &mut dyn FnMut(Event)) {
        let payload = Payload::SystemMessage {
            category: SystemCategory::Notice,
            text: NO_TIMES.to_owned(),
        };
        let id = format!("{}:no-times", self.ctx.file_tag);
        out(event(&self.ctx, id, 0, "transcript", payload));
    }
}

impl State {
    fn wait_for_result(&mut self, id: String) {
        if self.pending.len() == PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(id);
    }

    /// The events of a message's content, read the general way.
    fn message(&mut self, o: &mut Out<'_, '_>, user: bool, content: RawContent<'_>) {
        match content {
            Ok(Content::Text(s)) => self.item(o, user, Item::Text(s)),
            Ok(Content::Blocks(blocks)) => {
                for raw in blocks {
                    let item = serde_json::from_str::<Block<&RawValue, &RawValue>>(raw.get())
                        .ok()
                        .and_then(|b| b.item(user))
                        .unwrap_or_else(|| Item::Raw(raw_copy(raw)));
                    self.item(o, user, item);
                }
            }
            Err(raw) => o.push(Payload::ProviderRaw {
                record: raw_copy(raw),
            }),
        }
    }

    /// The events of one block.
    fn item(&mut self, o: &mut Out<'_, '_>, user: bool, item: Item) {
        match item {
            Item::Text(text) => self.text_block(o, user, text),
            Item::Thinking(text) => o.push(Payload::Thinking { text }),
            Item::ToolUse { name, input } => {
                let id = o.next_id();
                self.wait_for_result(id.clone());
                o.push(Payload::ToolCall {
                    tool_call_id: id,
                    name,
                    input,
                });
            }
            Item::ToolResult {
                id,
                output,
                is_error,
            } => {
                let id = match id {
                    Some(id) => {
                        self.pending.retain(|p| *p != id);
                        id
                    }
                    None => self.pending.pop_front().unwrap_or_else(|| o.next_id()),
                };
                o.push(Payload::ToolResult {
                    tool_call_id: id,
                    output: output.into(),
                    is_error,
                });
            }
            Item::Raw(record) => o.push(Payload::ProviderRaw { record }),
        }
    }

    fn text_block(&self, o: &mut Out<'_, '_>, user: bool, text: String) {
        if !user {
            o.push(Payload::AssistantMessage { text });
            return;
        }
        let split = split_user_text(&text);
        if !split.before.trim().is_empty() {
            o.push(Payload::SystemMessage {
                category: context_category(split.before),
                text: split.before.trim().to_owned(),
            });
        }
        if let Some(q) = split.query {
            o.push(Payload::UserMessage {
                text: q.trim().to_owned(),
                attachments: 0,
            });
        }
        if !split.after.trim().is_empty() {
            o.push(Payload::SystemMessage {
                category: context_category(split.after),
                text: split.after.trim().to_owned(),
            });
        }
    }
}

/// A line of any other shape: each field read on its own, a field of an
/// unexpected type taken as absent; a line that is not a JSON object is
/// kept raw when it is JSON at all.
#[allow(clippy::type_complexity)]
fn general_fields<'t>(
    text: &'t str,
    bytes: &[u8],
) -> Result<(Option<String>, Option<String>, Option<RawContent<'t>>), Malformed> {
    let line = match serde_json::from_str::<Line<'_>>(text) {
        Ok(l) => l,
        Err(e) => {
            serde_json::from_str::<&RawValue>(text)
                .map_err(|_| Malformed::from_json_error(bytes, &e))?;
            return Ok((None, None, None));
        }
    };
    let content = line
        .message
        .and_then(|m| serde_json::from_str::<Message<'_>>(m.get()).ok())
        .and_then(|m| m.content)
        .map(|raw| serde_json::from_str(raw.get()).map_err(|_| raw));
    Ok((string(line.role), string(line.kind), content))
}

impl RecordParser for CursorParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let bytes = text.as_bytes();
        if let Some(line) = fast(text) {
            if offset == 0 {
                self.no_times(out);
            }
            let mut o = Out {
                ctx: &self.ctx,
                offset,
                record: if line.user { "user" } else { "assistant" },
                n: 0,
                out,
            };
            for item in line.items {
                self.st.item(&mut o, line.user, item);
            }
            return Ok(());
        }
        self.general(offset, bytes, text, out)
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.st = super::restore_state::<State>(state)?;
        Ok(())
    }
}

impl CursorParser {
    /// A line read the general way: every shape, each block on its own.
    fn general(
        &mut self,
        offset: u64,
        bytes: &[u8],
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let (role, kind, content) = general_fields(text, bytes)?;
        if offset == 0 {
            self.no_times(out);
        }
        let user = role.as_deref() == Some("user");
        let record = match (role.as_deref(), kind.as_deref()) {
            (Some("user"), _) => "user",
            (Some("assistant"), _) => "assistant",
            (None, Some("turn_ended")) => "turn_ended",
            _ => "unknown",
        };
        let mut o = Out {
            ctx: &self.ctx,
            offset,
            record,
            n: 0,
            out,
        };
        match (record, content) {
            ("user" | "assistant", Some(content)) => {
                self.st.message(&mut o, user, content);
            }
            ("turn_ended", _) => o.push(Payload::ProviderInfo {
                topic: "turn_ended".into(),
                data: raw_from_str(text),
            }),
            _ => o.push(Payload::ProviderRaw {
                record: raw_from_str(text),
            }),
        }
        Ok(())
    }
}

/// Events (as JSON) and results of `lines` read twice by fresh parsers:
/// in one pass where a line allows it, and the general way alone
/// ([`super::read_both_ways`]). The two must agree on any input: unit
/// tests and the `cursor` fuzz target compare them.
#[doc(hidden)]
pub fn read_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = Cursor.named_file(Path::new("agent-transcripts/abc.jsonl"));
    super::read_both_ways(lines, || CursorParser::new(&ctx), CursorParser::general)
}

#[cfg(test)]
mod tests;
