//! Factory Droid: `~/.factory/sessions/<cwd-slug>/<uuid>.jsonl`, one
//! append-only JSON Lines file per session, `<uuid>.settings.json` beside
//! it.
//!
//! The root is `~/.factory/sessions`, not `~/.factory`, which also holds
//! the agent's settings, MCP servers and credentials. Only `.jsonl` files
//! one or two levels below the root are sessions ([`Provider::classify`]);
//! the `.settings.json` sidecars (the session's current model, reasoning
//! setting and running token totals, rewritten in place) are not read:
//! events carry no model.
//!
//! Records, one a line:
//!
//! * `session_start {id, title, sessionTitle, owner, version, cwd}` →
//!   `provider.info` `session_meta` (the record; its `cwd` is what `kato
//!   sessions` shows) and `provider.info` `title` (`#1`); `id` is the
//!   session id (else the file stem);
//! * `message {id, timestamp, message {role, content}}` → one event per
//!   block, ids `<id>`, `<id>#1`…, timed by the record: `text`
//!   (assistant message, or user text as below), `thinking`
//!   (`assistant.thinking`), `tool_use {id, name, input}` and
//!   `tool_result {tool_use_id, content, is_error}` (correlated by the
//!   agent's own call ids); `image`/`document` blocks are counted as
//!   attachments of the human message of the record (`provider.raw` when
//!   there is none); any other block (`redacted_thinking` among them) is
//!   `provider.raw`;
//! * `compaction_state {summary}` → `system.message`
//!   [`SystemCategory::Compaction`] (the summary; a record without one
//!   is `provider.info` `compaction_state`);
//! * `todo_state`, `session_settings`, `agent_turn_outcome` →
//!   `provider.info` of that topic;
//! * anything else that is JSON → `provider.raw`.
//!
//! What the human typed: user-role `text` blocks, except those Droid adds
//! itself: the contents of files named with `@` (a block opening with
//! `Contents of `), `<system-reminder>` and other blocks opening with one
//! of Droid's tags, or holding one at the start of a line
//! ([`INJECTED_OPENERS`], [`is_injected`]), all [`SystemCategory::InjectedContext`],
//! and text in a record that carries tool results ([`SystemCategory::ModelInput`]).
//! Tool output comes only in `tool_result` blocks, so in-chat commands are
//! read from the human's blocks alone.
//!
//! Ids are the records' own (`<tag>:<offset>` for a record without one).

use std::path::{Path, PathBuf};

use super::cursor::{string, FastResult, Input, Output};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::raw_copy;
use crate::event::{raw_from_str, Event, Payload, ProviderId, Source, SystemCategory};
use crate::provider::{
    first_line_object, offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

const ID: ProviderId = ProviderId::Droid;

/// How a user text block Droid adds opens.
pub const INJECTED_OPENERS: &[&str] = &[
    "Contents of ",
    "<system-reminder>",
    "<system-notification>",
    "<system_reminder>",
];

/// The `droid` provider.
pub struct Droid;

impl Provider for Droid {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".factory").join("sessions")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    /// `<cwd-slug>/<uuid>.jsonl` (or directly under the root).
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.extension()? != "jsonl" || rel.components().count() > 2 {
            return None;
        }
        let id = stem(rel);
        Some(FileCtx {
            provider: ID,
            file_tag: id.clone(),
            session_hint: id,
            subagent: None,
        })
    }

    /// A `session_start` first line: no other format writes it.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let Some(o) = first_line_object(head) else {
            return Sniff::No;
        };
        let kind = o.get("type").and_then(|t| t.as_str());
        if kind == Some("session_start") && o.get("id").is_some_and(|v| v.is_string()) {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Factory Droid: one JSON Lines file per session under \
                          ~/.factory/sessions/<project>/.",
            env_override: None,
        }
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(DroidParser {
            ctx: ctx.clone(),
            session: None,
        })
    }
}

/// One line: the fields of every record type.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
    #[serde(default, borrow)]
    summary: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    role: Option<&'a RawValue>,
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
    Image,
    Document,
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
    id: Option<String>,
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

/// What one block becomes once the record's role is known; `None` from
/// [`Block::item`] means the block is kept as it was written.
enum Item {
    Text(String),
    Thinking(String),
    ToolUse {
        id: Option<String>,
        name: String,
        input: Box<RawValue>,
    },
    ToolResult {
        id: Option<String>,
        output: String,
        is_error: bool,
    },
    Attachment,
    Raw(Box<RawValue>),
}

/// The record's role, as the blocks' meaning depends on it.
#[derive(Clone, Copy)]
struct Role {
    user: bool,
    assistant: bool,
    /// The record carries a tool result: its text is model input.
    with_results: bool,
}

impl<I: Input, C: Output> Block<I, C> {
    fn item(self, role: Role) -> Option<Item> {
        Some(match self.kind? {
            Kind::Text => Item::Text(self.text?),
            Kind::Thinking if role.assistant => Item::Thinking(self.thinking?),
            Kind::ToolUse if role.assistant => Item::ToolUse {
                id: self.id.filter(|i| !i.is_empty()),
                name: self.name?,
                input: self
                    .input
                    .map_or_else(|| raw_from_str("{}"), Input::into_raw),
            },
            Kind::ToolResult => Item::ToolResult {
                id: self.tool_use_id,
                output: self.content.map(Output::into_text).unwrap_or_default(),
                is_error: self.is_error.unwrap_or(false),
            },
            Kind::Image | Kind::Document if role.user && !role.with_results => Item::Attachment,
            _ => return None,
        })
    }
}

/// A `message` line read in one pass: every block decoded as it is met.
/// A line this reading cannot take whole (another record type, content
/// given as a string, a block it would keep as raw JSON, anything
/// malformed) is read again the general way, which decides what it
/// becomes; where this reading succeeds, the general one gives the same
/// events.
#[derive(Deserialize)]
struct FastLine {
    #[serde(rename = "type")]
    kind: FastKind,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    message: FastMessage,
}

/// What the one-pass reading made of a `message` line.
struct FastRecord {
    id: Option<String>,
    timestamp: Option<String>,
    role: Role,
    items: Vec<Item>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FastKind {
    Message,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct FastMessage {
    role: FastRole,
    content: Vec<Block<Box<RawValue>, FastResult>>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FastRole {
    User,
    Assistant,
    #[serde(other)]
    Other,
}

/// Whether user text is something Droid added: it opens with one of
/// [`INJECTED_OPENERS`], or one of Droid's tags opens any of its lines (a
/// reminder inside the block holds text the human did not type, and the
/// blank line after its opening tag would end the HTML block that hides a
/// command line from the command scan; when in doubt, text is injected).
pub fn is_injected(text: &str) -> bool {
    let t = text.trim_start();
    INJECTED_OPENERS.iter().any(|o| t.starts_with(o))
        || text.lines().any(|line| {
            let line = line.trim_start();
            INJECTED_OPENERS
                .iter()
                .any(|o| o.starts_with('<') && line.starts_with(o))
        })
}

struct DroidParser {
    ctx: FileCtx,
    /// The `id` of the `session_start` record.
    session: Option<String>,
}

/// The events of one record, numbered as they are emitted.
struct Out<'o> {
    session: String,
    tag: String,
    /// The record's id, else its offset id.
    base: String,
    offset: u64,
    record: std::borrow::Cow<'static, str>,
    timestamp: Option<String>,
    n: u32,
    out: &'o mut dyn FnMut(Event),
}

impl Out<'_> {
    fn next_id(&self) -> String {
        match self.n {
            0 => self.base.clone(),
            n => format!("{}#{n}", self.base),
        }
    }

    fn push(&mut self, payload: Payload) {
        let source = Source {
            record: self.record.clone(),
            offset: self.offset,
            file: Some(self.tag.as_str().into()),
        };
        let mut ev = Event::new(ID, self.session.clone(), self.next_id(), source, payload);
        ev.timestamp = self.timestamp.as_deref().map(Into::into);
        self.n += 1;
        (self.out)(ev);
    }
}

impl DroidParser {
    /// The collector of one record's events.
    fn out<'o>(
        &self,
        offset: u64,
        (record, base): (std::borrow::Cow<'static, str>, Option<String>),
        timestamp: Option<String>,
        out: &'o mut dyn FnMut(Event),
    ) -> Out<'o> {
        Out {
            session: self
                .session
                .clone()
                .unwrap_or_else(|| self.ctx.session_hint.clone()),
            tag: self.ctx.file_tag.clone(),
            base: base.unwrap_or_else(|| offset_id(&self.ctx.file_tag, offset, 0)),
            offset,
            record,
            timestamp,
            n: 0,
            out,
        }
    }

    /// A `message` record's `message`, the general way.
    fn message(o: &mut Out<'_>, raw: &RawValue) {
        let Ok(m) = serde_json::from_str::<Message<'_>>(raw.get()) else {
            o.push(Payload::ProviderRaw {
                record: raw_copy(raw),
            });
            return;
        };
        let role_name = string(m.role);
        let (user, assistant) = (
            role_name.as_deref() == Some("user"),
            role_name.as_deref() == Some("assistant"),
        );
        let blocks: Vec<&RawValue> = match m.content {
            Some(c) if c.get().trim_start().starts_with('"') => {
                let role = Role {
                    user,
                    assistant,
                    with_results: false,
                };
                let text = string(Some(c)).unwrap_or_default();
                return Self::items(o, role, vec![Item::Text(text)]);
            }
            Some(c) => match serde_json::from_str(c.get()) {
                Ok(b) => b,
                Err(_) => {
                    o.push(Payload::ProviderRaw {
                        record: raw_copy(c),
                    });
                    return;
                }
            },
            None => Vec::new(),
        };
        let parsed: Vec<Option<Block<&RawValue, &RawValue>>> = blocks
            .iter()
            .map(|b| serde_json::from_str(b.get()).ok())
            .collect();
        let role = Role {
            user,
            assistant,
            with_results: parsed
                .iter()
                .flatten()
                .any(|b| b.kind == Some(Kind::ToolResult)),
        };
        let items = blocks
            .iter()
            .zip(parsed)
            .map(|(raw, b)| {
                b.and_then(|b| b.item(role))
                    .unwrap_or_else(|| Item::Raw(raw_copy(raw)))
            })
            .collect();
        Self::items(o, role, items);
    }

    /// A `message` line read in one pass, if it can be ([`FastLine`]).
    fn fast(text: &str) -> Option<FastRecord> {
        let line = serde_json::from_str::<FastLine>(text).ok()?;
        if line.kind != FastKind::Message {
            return None;
        }
        let m = line.message;
        let role = Role {
            user: m.role == FastRole::User,
            assistant: m.role == FastRole::Assistant,
            with_results: m.content.iter().any(|b| b.kind == Some(Kind::ToolResult)),
        };
        let items = m
            .content
            .into_iter()
            .map(|b| b.item(role))
            .collect::<Option<_>>()?;
        Some(FastRecord {
            id: line.id,
            timestamp: line.timestamp,
            role,
            items,
        })
    }

    /// The events of a record's blocks. Attachments are counted onto the
    /// record's first human message (`provider.raw` when it has none).
    fn items(o: &mut Out<'_>, role: Role, items: Vec<Item>) {
        let mut attachments = items
            .iter()
            .filter(|i| matches!(i, Item::Attachment))
            .count();
        for item in items {
            let payload = match item {
                Item::Text(text) if role.assistant => Payload::AssistantMessage { text },
                Item::Text(text) if !role.user => Payload::SystemMessage {
                    category: SystemCategory::InjectedContext,
                    text,
                },
                Item::Text(text) if role.with_results => Payload::SystemMessage {
                    category: SystemCategory::ModelInput,
                    text,
                },
                Item::Text(text) if is_injected(&text) => Payload::SystemMessage {
                    category: SystemCategory::InjectedContext,
                    text,
                },
                Item::Text(text) => Payload::UserMessage {
                    text,
                    attachments: u32::try_from(std::mem::take(&mut attachments))
                        .unwrap_or(u32::MAX),
                },
                Item::Thinking(text) => Payload::Thinking { text },
                Item::ToolUse { id, name, input } => Payload::ToolCall {
                    tool_call_id: id.unwrap_or_else(|| o.next_id()),
                    name,
                    input,
                },
                Item::ToolResult {
                    id,
                    output,
                    is_error,
                } => Payload::ToolResult {
                    tool_call_id: id.unwrap_or_else(|| o.next_id()),
                    output: output.into(),
                    is_error,
                },
                Item::Attachment => continue,
                Item::Raw(record) => Payload::ProviderRaw { record },
            };
            o.push(payload);
        }
        for _ in 0..attachments {
            o.push(Payload::ProviderRaw {
                record: raw_from_str("{\"type\":\"attachment\"}"),
            });
        }
    }
}

impl RecordParser for DroidParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let bytes = text.as_bytes();
        if let Some(r) = Self::fast(text) {
            let base = r.id.filter(|s| !s.is_empty());
            let mut o = self.out(offset, ("message".into(), base), r.timestamp, out);
            Self::items(&mut o, r.role, r.items);
            return Ok(());
        }
        self.general(offset, bytes, text, out)
    }

    fn state(&self) -> serde_json::Value {
        match &self.session {
            Some(s) => serde_json::json!({ "session": s }),
            None => serde_json::Value::Null,
        }
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct State {
            session: Option<String>,
        }
        self.session = if state.is_null() {
            None
        } else {
            State::deserialize(state)
                .map_err(|e| Malformed::WrongShape(e.to_string()))?
                .session
        };
        Ok(())
    }
}

impl DroidParser {
    /// Any line, the general way (the one-pass reading aside): each field
    /// kept raw, then read by the record's type.
    fn general(
        &mut self,
        offset: u64,
        bytes: &[u8],
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let line = match serde_json::from_str::<Line<'_>>(text) {
            Ok(l) => Some(l),
            Err(e) => {
                serde_json::from_str::<&RawValue>(text)
                    .map_err(|_| Malformed::from_json_error(bytes, &e))?;
                None
            }
        };
        let kind = line.as_ref().and_then(|l| string(l.kind));
        let id = line
            .as_ref()
            .and_then(|l| string(l.id))
            .filter(|s| !s.is_empty());
        if kind.as_deref() == Some("session_start") && self.session.is_none() {
            self.session.clone_from(&id);
        }
        // Records of these types are named by their own id.
        let base = match (kind.as_deref(), &line) {
            (
                Some(
                    "message" | "compaction_state" | "todo_state" | "session_settings"
                    | "agent_turn_outcome",
                ),
                Some(_),
            ) => id,
            _ => None,
        };
        let mut o = self.out(
            offset,
            (kind.clone().map_or("unknown".into(), Into::into), base),
            line.as_ref().and_then(|l| string(l.timestamp)),
            out,
        );
        let raw = || Payload::ProviderRaw {
            record: raw_from_str(text),
        };
        let info = |topic: &str| Payload::ProviderInfo {
            topic: topic.to_owned(),
            data: raw_from_str(text),
        };
        match (kind.as_deref(), &line) {
            (Some("session_start"), _) => {
                o.push(info("session_meta"));
                o.push(info("title"));
            }
            (Some("message"), Some(l)) => match l.message {
                Some(m) => Self::message(&mut o, m),
                None => o.push(raw()),
            },
            (Some("compaction_state"), Some(l)) => {
                match string(l.summary).filter(|s| !s.trim().is_empty()) {
                    Some(summary) => o.push(Payload::SystemMessage {
                        category: SystemCategory::Compaction,
                        text: summary,
                    }),
                    None => o.push(info("compaction_state")),
                }
            }
            (Some(t @ ("todo_state" | "session_settings" | "agent_turn_outcome")), _) => {
                o.push(info(t));
            }
            _ => o.push(raw()),
        }
        Ok(())
    }
}

/// Events (as JSON) and results of `lines` read twice by fresh parsers:
/// in one pass where a line allows it, and the general way alone
/// ([`super::read_both_ways`]). The two must agree on any input: unit
/// tests and the `droid` fuzz target compare them.
#[doc(hidden)]
pub fn read_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = Droid.named_file(Path::new("p/4c2e9a10.jsonl"));
    super::read_both_ways(
        lines,
        || DroidParser {
            ctx: ctx.clone(),
            session: None,
        },
        DroidParser::general,
    )
}

#[cfg(test)]
mod tests;
