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

use super::cursor::{result_text, string};

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

/// One content block: the fields of every known type.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    is_error: Option<bool>,
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

/// The events of one record, numbered as they are added.
struct Out<'o> {
    session: String,
    tag: String,
    /// The record's id, else its offset id.
    base: String,
    offset: u64,
    record: String,
    timestamp: Option<String>,
    n: u32,
    events: Vec<Event>,
    out: &'o mut dyn FnMut(Event),
}

impl Out<'_> {
    fn next_id(&self) -> String {
        match self.n {
            0 => self.base.clone(),
            n => format!("{}#{n}", self.base),
        }
    }

    /// Held until the record is done (attachments are counted onto the
    /// human message of the record).
    fn push(&mut self, payload: Payload) {
        let source = Source {
            record: self.record.clone(),
            offset: self.offset,
            file: Some(self.tag.clone()),
        };
        let mut ev = Event::new(ID, self.session.clone(), self.next_id(), source, payload);
        ev.timestamp.clone_from(&self.timestamp);
        self.n += 1;
        self.events.push(ev);
    }

    fn finish(self) {
        for ev in self.events {
            (self.out)(ev);
        }
    }
}

impl DroidParser {
    fn message(o: &mut Out<'_>, raw: &RawValue) {
        let Ok(m) = serde_json::from_str::<Message<'_>>(raw.get()) else {
            o.push(Payload::ProviderRaw {
                record: raw_copy(raw),
            });
            return;
        };
        let role = string(m.role);
        let blocks: Vec<&RawValue> = match m.content {
            Some(c) if c.get().trim_start().starts_with('"') => {
                let text = string(Some(c)).unwrap_or_default();
                let block = serde_json::json!({"type": "text", "text": text}).to_string();
                return Self::blocks(o, role.as_deref(), &[raw_from_str(&block).as_ref()]);
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
        Self::blocks(o, role.as_deref(), &blocks);
    }

    fn blocks(o: &mut Out<'_>, role: Option<&str>, blocks: &[&RawValue]) {
        let user = role == Some("user");
        let assistant = role == Some("assistant");
        let parsed: Vec<Option<Block<'_>>> = blocks
            .iter()
            .map(|b| serde_json::from_str::<Block<'_>>(b.get()).ok())
            .collect();
        let with_results = parsed
            .iter()
            .flatten()
            .any(|b| b.kind.as_deref() == Some("tool_result"));
        let mut attachments = 0u32;
        for (raw, b) in blocks.iter().zip(parsed) {
            let Some(b) = b else {
                o.push(Payload::ProviderRaw {
                    record: raw_copy(raw),
                });
                continue;
            };
            let kind = b.kind.clone();
            match (kind.as_deref(), b) {
                (
                    Some("text"),
                    Block {
                        text: Some(text), ..
                    },
                ) => {
                    let payload = if assistant {
                        Payload::AssistantMessage { text }
                    } else if !user {
                        Payload::SystemMessage {
                            category: SystemCategory::InjectedContext,
                            text,
                        }
                    } else if with_results {
                        Payload::SystemMessage {
                            category: SystemCategory::ModelInput,
                            text,
                        }
                    } else if is_injected(&text) {
                        Payload::SystemMessage {
                            category: SystemCategory::InjectedContext,
                            text,
                        }
                    } else {
                        Payload::UserMessage {
                            text,
                            attachments: 0,
                        }
                    };
                    o.push(payload);
                }
                (
                    Some("thinking"),
                    Block {
                        thinking: Some(text),
                        ..
                    },
                ) if assistant => o.push(Payload::Thinking { text }),
                (
                    Some("tool_use"),
                    Block {
                        name: Some(name),
                        id,
                        input,
                        ..
                    },
                ) if assistant => {
                    let id = id.filter(|i| !i.is_empty()).unwrap_or_else(|| o.next_id());
                    o.push(Payload::ToolCall {
                        tool_call_id: id,
                        name,
                        input: raw_from_str(input.map_or("{}", RawValue::get)),
                    });
                }
                (Some("tool_result"), b) => {
                    let id = b.tool_use_id.unwrap_or_else(|| o.next_id());
                    o.push(Payload::ToolResult {
                        tool_call_id: id,
                        output: result_text(b.content),
                        is_error: b.is_error.unwrap_or(false),
                    });
                }
                (Some("image" | "document"), _) if user && !with_results => attachments += 1,
                _ => o.push(Payload::ProviderRaw {
                    record: raw_copy(raw),
                }),
            }
        }
        if attachments > 0 {
            let human = o.events.iter_mut().find_map(|e| match &mut e.payload {
                Payload::UserMessage { attachments, .. } => Some(attachments),
                _ => None,
            });
            match human {
                Some(a) => *a += attachments,
                None => {
                    for _ in 0..attachments {
                        o.push(Payload::ProviderRaw {
                            record: raw_from_str("{\"type\":\"attachment\"}"),
                        });
                    }
                }
            }
        }
    }
}

impl RecordParser for DroidParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let text = std::str::from_utf8(bytes).map_err(|_| Malformed::InvalidUtf8)?;
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
        let mut o = Out {
            session: self
                .session
                .clone()
                .unwrap_or_else(|| self.ctx.session_hint.clone()),
            tag: self.ctx.file_tag.clone(),
            base: offset_id(&self.ctx.file_tag, offset, 0),
            offset,
            record: kind.clone().unwrap_or_else(|| "unknown".into()),
            timestamp: line.as_ref().and_then(|l| string(l.timestamp)),
            n: 0,
            events: Vec::new(),
            out,
        };
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
            (Some("message"), Some(l)) => {
                if let Some(id) = &id {
                    o.base.clone_from(id);
                }
                match l.message {
                    Some(m) => Self::message(&mut o, m),
                    None => o.push(raw()),
                }
            }
            (Some("compaction_state"), Some(l)) => {
                if let Some(id) = &id {
                    o.base.clone_from(id);
                }
                match string(l.summary).filter(|s| !s.trim().is_empty()) {
                    Some(summary) => o.push(Payload::SystemMessage {
                        category: SystemCategory::Compaction,
                        text: summary,
                    }),
                    None => o.push(info("compaction_state")),
                }
            }
            (Some(t @ ("todo_state" | "session_settings" | "agent_turn_outcome")), _) => {
                if let Some(id) = &id {
                    o.base.clone_from(id);
                }
                let t = t.to_owned();
                o.push(info(&t));
            }
            _ => o.push(raw()),
        }
        o.finish();
        Ok(())
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

#[cfg(test)]
mod tests;
