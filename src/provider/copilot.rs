//! GitHub Copilot CLI (`copilot`): the event logs it keeps under
//! `~/.copilot` (or `$COPILOT_HOME`), in three shapes.
//!
//! * Current (1.0 and later): `session-state/<session id>/events.jsonl`,
//!   append-only JSON Lines, with `workspace.yaml` beside it (the
//!   session's `cwd`, read by `kato sessions` through
//!   [`Provider::project_marker`]; the parser does no I/O).
//! * Before 1.0: the same records in `session-state/<session id>.jsonl`
//!   (also written by the Copilot SDK inside VS Code).
//! * Legacy (0.0.3xx): `history-session-state/session_<id>_<ms>.json`, one
//!   JSON document rewritten in place: `{sessionId, startTime,
//!   chatMessages, timeline, selectedModel}`. The `timeline` is read (it
//!   holds what the user saw, with ids and times: the human's words as
//!   typed, the assistant's text, each tool call with its result);
//!   `chatMessages` is the model-facing copy of the same conversation,
//!   with injected reminders and no times, and is not mapped. A document
//!   cursor (timeline items delivered, and the id of the last) makes a
//!   rewrite yield only the new items; a rewrite that changed what was
//!   delivered starts over (the daemon drops repeated event ids).
//!
//! The roots are `session-state` and `history-session-state` only, never
//! `~/.copilot`, which holds the CLI's tokens (`config.json`).
//!
//! Records of the JSON Lines shapes are `{type, data, id, timestamp,
//! parentId}`; mapping (event ids are the record `id`, suffixed for the
//! further events of one record; `<tag>:<offset>` for a record without
//! one):
//!
//! * `session.start` → `provider.info` `session_meta` (its `sessionId` is
//!   the session id); `session.model_change` → `provider.info`
//!   `model_change` (its `newModel` is the model of the events after it);
//!   `session.resume`, `session.truncation`, `session.shutdown` →
//!   `provider.info` named by the type's second part;
//! * `session.info` → a notice, `session.error` → an error (their
//!   `message`);
//! * `system.message` (the system prompt) → injected context;
//! * `user.message` → `user.message` with `content`, the human's words.
//!   `transformedContent`, what the model got, adds the CLI's
//!   `<current_datetime>`, `<reminder>` and instruction blocks: what it
//!   holds besides `content` is injected context (`<id>#context`). Files
//!   before 1.0 append `\n\n<current_datetime>…</current_datetime>` to
//!   `content` itself: that tail is split off the same way;
//! * `assistant.message` → `assistant.thinking` (`reasoningText`,
//!   `<id>#thinking`), `assistant.message` (`content`, `<id>`), one
//!   `assistant.tool.call` per `toolRequests` entry (`<id>#call-<n>`) and
//!   `provider.info` `token_count` (`outputTokens`, `<id>#tokens`).
//!   `reasoningOpaque` / `encryptedContent` are encrypted and not shown;
//! * `tool.execution_start` → nothing when its call came in a
//!   `toolRequests` entry (the parser remembers the last [`CALLS`] call
//!   ids), else `assistant.tool.call`;
//! * `tool.execution_complete` → `assistant.tool.result` (`result.content`,
//!   or `error.message` when `success` is false), with its `model`;
//! * `assistant.turn_start` / `assistant.turn_end` → nothing: they set the
//!   turn id (`interactionId` where a record has one wins);
//! * anything else that is JSON → `provider.raw`.
//!
//! Human text: `user.message` records are written by the CLI for the
//! prompt the human submits; tool output and the assistant's words are
//! other record types, so in-chat commands are read from `content` (never
//! from `transformedContent`).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::raw_copy;
use crate::event::{
    null_raw, raw_from_str, record_name, Event, Payload, ProviderId, Source, SystemCategory,
};
use crate::json_str;
use crate::provider::{
    first_line_object, offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

const ID: ProviderId = ProviderId::Copilot;

/// The event types most lines carry: their names are shared by the
/// events, not copied ([`record_name`]).
const RECORDS: &[&str] = &[
    "tool.execution_start",
    "tool.execution_complete",
    "assistant.message",
    "user.message",
    "assistant.turn_start",
    "assistant.turn_end",
];

/// Tool call ids remembered to recognise a `tool.execution_start` whose
/// call was already delivered.
pub const CALLS: usize = 64;

/// The file name of a session's events (1.0 and later).
const EVENTS: &str = "events.jsonl";

/// The sidecar holding the session's `cwd`.
const WORKSPACE: &str = "workspace.yaml";

/// Name prefix of a legacy document.
const LEGACY_PREFIX: &str = "session_";

/// The block the CLI adds to what the human typed.
const DATETIME_OPEN: &str = "<current_datetime>";
const DATETIME_CLOSE: &str = "</current_datetime>";

/// The `copilot` provider.
pub struct Copilot;

impl Provider for Copilot {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        self.env_roots(&home.join(".copilot"))
    }

    /// `COPILOT_HOME` stands for `~/.copilot` itself.
    fn env_roots(&self, value: &Path) -> Vec<PathBuf> {
        vec![
            value.join("session-state"),
            value.join("history-session-state"),
        ]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    fn file_source_kind(&self, ctx: &FileCtx) -> SourceKind {
        if is_legacy(ctx) {
            SourceKind::Document
        } else {
            SourceKind::Jsonl
        }
    }

    /// Judged from the file name (and, for `events.jsonl`, its directory).
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        let name = rel.file_name()?.to_str()?;
        if name == EVENTS {
            let dir = rel.parent()?.file_name()?.to_str()?;
            return Some(ctx(dir, dir));
        }
        let name_stem = stem(rel);
        if name.ends_with(".jsonl") && is_uuid(&name_stem) {
            return Some(ctx(&name_stem, &name_stem));
        }
        if name.ends_with(".json") {
            let hint = legacy_session(&name_stem)?;
            return Some(ctx(&name_stem, hint));
        }
        None
    }

    /// A file named directly: its layout when it has one, else a document
    /// when its name ends in `.json`, JSON Lines otherwise.
    fn named_file(&self, path: &Path) -> FileCtx {
        self.classify(path).unwrap_or_else(|| {
            let s = stem(path);
            if path.extension().is_some_and(|e| e == "json") {
                ctx(&format!("{LEGACY_PREFIX}{s}"), &s)
            } else {
                ctx(&s, &s)
            }
        })
    }

    fn project_marker(&self, path: &Path) -> Option<PathBuf> {
        (path.file_name()? == EVENTS).then(|| path.with_file_name(WORKSPACE))
    }

    /// The `cwd:` line of `workspace.yaml`.
    fn project_from_marker(&self, _path: &Path, text: &str) -> Option<String> {
        workspace_cwd(text)
    }

    /// A `session.start` record, else a legacy document's keys.
    fn sniff(&self, head: &[u8]) -> Sniff {
        if let Some(o) = first_line_object(head) {
            let start = o.get("type").and_then(|t| t.as_str()) == Some("session.start");
            if start
                && o.get("data")
                    .is_some_and(|d| d.get("copilotVersion").is_some())
            {
                return Sniff::Exact;
            }
            if o.get("type")
                .and_then(|t| t.as_str())
                .is_some_and(is_copilot_type)
                && o.contains_key("data")
            {
                return Sniff::Strong;
            }
        }
        let text = String::from_utf8_lossy(head);
        if text.trim_start().starts_with('{')
            && text.contains("\"chatMessages\"")
            && text.contains("\"timeline\"")
        {
            return Sniff::Exact;
        }
        Sniff::No
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "GitHub Copilot CLI: session-state event logs (and the legacy \
                          history-session-state documents).",
            env_override: Some("COPILOT_HOME"),
        }
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        if is_legacy(ctx) {
            Box::new(LegacyParser::new(ctx))
        } else {
            Box::new(EventsParser::new(ctx))
        }
    }
}

fn ctx(tag: &str, hint: &str) -> FileCtx {
    FileCtx {
        provider: ID,
        file_tag: tag.to_owned(),
        session_hint: hint.to_owned(),
        subagent: None,
    }
}

/// A legacy document's context is tagged by its stem, `session_…`.
fn is_legacy(ctx: &FileCtx) -> bool {
    ctx.file_tag.starts_with(LEGACY_PREFIX)
}

/// The session id in a legacy name `session_<uuid>_<ms>`.
fn legacy_session(stem: &str) -> Option<&str> {
    let rest = stem.strip_prefix(LEGACY_PREFIX)?;
    let (id, ms) = rest.rsplit_once('_')?;
    (is_uuid(id) && !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Record types of the event logs (for sniffing).
fn is_copilot_type(t: &str) -> bool {
    [
        "session.",
        "user.message",
        "assistant.turn_",
        "assistant.message",
        "tool.execution_",
    ]
    .iter()
    .any(|p| t.starts_with(p))
}

/// The value of the top-level `cwd:` key of `workspace.yaml`: a plain,
/// single- or double-quoted scalar on one line.
pub fn workspace_cwd(text: &str) -> Option<String> {
    let line = text.lines().find_map(|l| l.strip_prefix("cwd:"))?;
    let v = line.trim();
    let value = if let Some(inner) = v.strip_prefix('\'') {
        inner.strip_suffix('\'')?.replace("''", "'")
    } else if v.starts_with('"') {
        json_str::decode_literal(v).ok()?.into_owned()
    } else {
        // A plain scalar ends at a comment.
        v.split(" #").next().unwrap_or(v).trim_end().to_owned()
    };
    (!value.is_empty()).then_some(value)
}

/// A JSON string's text; `None` for any other value.
fn string(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    json_str::decode_literal(raw?.get().trim()).ok()
}

/// A non-empty JSON string's text.
fn nonempty(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    string(raw).filter(|s| !s.is_empty())
}

/// One line of an event log, read in one pass.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(default)]
    data: Option<Data<'a>>,
}

/// The `data` fields of every record type mapped.
#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(rename = "transformedContent", default, borrow)]
    transformed: Option<&'a RawValue>,
    #[serde(default, borrow)]
    attachments: Option<&'a RawValue>,
    #[serde(rename = "interactionId", default, borrow)]
    interaction: Option<&'a RawValue>,
    #[serde(rename = "turnId", default, borrow)]
    turn: Option<&'a RawValue>,
    #[serde(rename = "reasoningText", default, borrow)]
    reasoning: Option<&'a RawValue>,
    #[serde(rename = "toolRequests", default, borrow)]
    tool_requests: Option<&'a RawValue>,
    #[serde(rename = "outputTokens", default, borrow)]
    output_tokens: Option<&'a RawValue>,
    #[serde(rename = "toolCallId", default, borrow)]
    tool_call_id: Option<&'a RawValue>,
    #[serde(rename = "toolName", default, borrow)]
    tool_name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(default, borrow)]
    success: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "sessionId", default, borrow)]
    session_id: Option<&'a RawValue>,
    #[serde(rename = "selectedModel", default, borrow)]
    selected_model: Option<&'a RawValue>,
    #[serde(rename = "newModel", default, borrow)]
    new_model: Option<&'a RawValue>,
}

/// One `toolRequests` entry.
#[derive(Deserialize)]
struct ToolRequest<'a> {
    #[serde(rename = "toolCallId", default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

/// `result` / `error` of a tool execution.
#[derive(Deserialize)]
struct Outcome<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(rename = "detailedContent", default, borrow)]
    detailed: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
}

/// What the event-log parser carries between records, persisted with the
/// cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// `sessionId` of `session.start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    /// The model the last model change or tool execution named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    /// `turnId` of the open assistant turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    turn: Option<String>,
    /// The last tool call ids delivered.
    #[serde(default)]
    calls: VecDeque<String>,
}

/// Parser of `events.jsonl` and the flat pre-1.0 files.
pub struct EventsParser {
    ctx: FileCtx,
    st: State,
}

impl EventsParser {
    pub fn new(ctx: &FileCtx) -> EventsParser {
        EventsParser {
            ctx: ctx.clone(),
            st: State::default(),
        }
    }

    fn remember_call(&mut self, id: &str) {
        if self.st.calls.len() >= CALLS {
            self.st.calls.pop_front();
        }
        self.st.calls.push_back(id.to_owned());
    }

    fn raw(&self, offset: u64, record: &str, text: &str) -> Event {
        let mut ev = Event::new(
            ID,
            self.session(),
            offset_id(&self.ctx.file_tag, offset, 0),
            self.source(record, offset),
            Payload::ProviderRaw {
                record: raw_from_str(text),
            },
        );
        ev.timestamp = None;
        ev
    }

    fn session(&self) -> String {
        self.st
            .session
            .clone()
            .unwrap_or_else(|| self.ctx.session_hint.clone())
    }

    fn source(&self, record: &str, offset: u64) -> Source {
        Source {
            record: record_name(record, RECORDS),
            offset,
            file: Some(self.ctx.file_tag.as_str().into()),
        }
    }

    /// Map one record that parsed as a [`Line`].
    fn map(
        &mut self,
        offset: u64,
        line: &Line<'_>,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> bool {
        let Some(kind) = string(line.kind) else {
            return false;
        };
        let empty = Data::default();
        let d = line.data.as_ref().unwrap_or(&empty);
        let base = string(line.id)
            .map(Cow::into_owned)
            .unwrap_or_else(|| offset_id(&self.ctx.file_tag, offset, 0));
        let timestamp = string(line.timestamp).map(Cow::into_owned);
        let turn = string(d.interaction)
            .map(Cow::into_owned)
            .or_else(|| self.st.turn.clone());
        // Records that change the context first.
        match kind.as_ref() {
            "session.start" => {
                if let Some(s) = text_opt(d.session_id) {
                    self.st.session = Some(s);
                }
                if let Some(m) = text_opt(d.selected_model) {
                    self.st.model = Some(m);
                }
            }
            "session.model_change" => {
                if let Some(m) = text_opt(d.new_model) {
                    self.st.model = Some(m);
                }
            }
            "tool.execution_complete" => {
                if let Some(m) = text_opt(d.model) {
                    self.st.model = Some(m);
                }
            }
            "assistant.turn_start" => {
                self.st.turn = text_opt(d.turn);
                return true;
            }
            "assistant.turn_end" => {
                self.st.turn = None;
                return true;
            }
            _ => {}
        }
        let session = self.session();
        let model = self.st.model.clone();
        let source = self.source(&kind, offset);
        let mut emit = |id: String, payload: Payload, with_model: bool| {
            let mut ev = Event::new(ID, session.clone(), id, source.clone(), payload);
            ev.timestamp = timestamp.as_deref().map(Into::into);
            ev.turn_id = turn.as_deref().map(Into::into);
            if with_model {
                ev.model = model.as_deref().map(Into::into);
            }
            out(ev);
        };
        let data_raw = || -> Box<RawValue> {
            serde_json::from_str::<DataOnly<'_>>(text)
                .ok()
                .and_then(|l| l.data)
                .map_or_else(null_raw, raw_copy)
        };
        match kind.as_ref() {
            "session.start" | "session.model_change" => {
                let topic = if kind == "session.start" {
                    "session_meta"
                } else {
                    "model_change"
                };
                emit(
                    base,
                    Payload::ProviderInfo {
                        topic: topic.into(),
                        data: data_raw(),
                    },
                    false,
                );
            }
            "session.resume" | "session.truncation" | "session.shutdown" => {
                let topic = kind.trim_start_matches("session.").to_owned();
                emit(
                    base,
                    Payload::ProviderInfo {
                        topic,
                        data: data_raw(),
                    },
                    false,
                );
            }
            "session.info" | "session.error" => {
                let Some(message) = string(d.message) else {
                    return false;
                };
                let category = if kind == "session.error" {
                    SystemCategory::Error
                } else {
                    SystemCategory::Notice
                };
                emit(
                    base,
                    Payload::SystemMessage {
                        category,
                        text: message.into_owned(),
                    },
                    false,
                );
            }
            "system.message" => {
                let Some(content) = string(d.content) else {
                    return false;
                };
                emit(
                    base,
                    Payload::SystemMessage {
                        category: SystemCategory::InjectedContext,
                        text: content.into_owned(),
                    },
                    false,
                );
            }
            "user.message" => {
                let Some(content) = string(d.content) else {
                    return false;
                };
                let attachments = d
                    .attachments
                    .and_then(|a| serde_json::from_str::<Vec<IgnoredAny>>(a.get()).ok())
                    .map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX));
                let (typed, tail) = split_datetime(&content);
                let injected = match string(d.transformed) {
                    Some(t) => injected_part(typed, &t, tail),
                    None => tail.map(str::to_owned),
                };
                emit(
                    base.clone(),
                    Payload::UserMessage {
                        text: typed.to_owned(),
                        attachments,
                    },
                    false,
                );
                if let Some(text) = injected {
                    emit(
                        format!("{base}#context"),
                        Payload::SystemMessage {
                            category: SystemCategory::InjectedContext,
                            text,
                        },
                        false,
                    );
                }
            }
            "assistant.message" => {
                let requests = match d.tool_requests {
                    Some(r) if r.get() != "null" => {
                        match serde_json::from_str::<Vec<ToolRequest<'_>>>(r.get()) {
                            Ok(v) => v,
                            Err(_) => return false,
                        }
                    }
                    _ => Vec::new(),
                };
                if let Some(t) = nonempty(d.reasoning) {
                    emit(
                        format!("{base}#thinking"),
                        Payload::Thinking {
                            text: t.into_owned(),
                        },
                        true,
                    );
                }
                if let Some(t) = nonempty(d.content) {
                    emit(
                        base.clone(),
                        Payload::AssistantMessage {
                            text: t.into_owned(),
                        },
                        true,
                    );
                }
                let mut calls = Vec::new();
                for (n, r) in requests.iter().enumerate() {
                    let (Some(call), Some(name)) = (string(r.id), string(r.name)) else {
                        continue;
                    };
                    emit(
                        format!("{base}#call-{n}"),
                        Payload::ToolCall {
                            tool_call_id: call.clone().into_owned(),
                            name: name.into_owned(),
                            input: r.arguments.map_or_else(null_raw, raw_copy),
                        },
                        true,
                    );
                    calls.push(call.into_owned());
                }
                if let Some(tokens) = d.output_tokens.filter(|t| t.get() != "null") {
                    emit(
                        format!("{base}#tokens"),
                        Payload::ProviderInfo {
                            topic: "token_count".into(),
                            data: raw_from_str(&format!("{{\"outputTokens\":{}}}", tokens.get())),
                        },
                        true,
                    );
                }
                for c in calls {
                    self.remember_call(&c);
                }
            }
            "tool.execution_start" => {
                let Some(call) = string(d.tool_call_id) else {
                    return false;
                };
                if self.st.calls.iter().any(|c| *c == call) {
                    return true;
                }
                let name = string(d.tool_name).map_or_else(String::new, Cow::into_owned);
                emit(
                    base,
                    Payload::ToolCall {
                        tool_call_id: call.clone().into_owned(),
                        name,
                        input: d.arguments.map_or_else(null_raw, raw_copy),
                    },
                    true,
                );
                self.remember_call(&call);
            }
            "tool.execution_complete" => {
                let Some(call) = string(d.tool_call_id) else {
                    return false;
                };
                let failed = d.success.is_some_and(|s| s.get().trim() == "false");
                let output = if failed {
                    outcome(d.error)
                        .and_then(|e| string(e.message).map(Cow::into_owned))
                        .or_else(|| outcome(d.result).and_then(|r| result_text(&r)))
                } else {
                    outcome(d.result).and_then(|r| result_text(&r))
                };
                emit(
                    base,
                    Payload::ToolResult {
                        tool_call_id: call.into_owned(),
                        output: output.unwrap_or_default().into(),
                        is_error: failed,
                    },
                    true,
                );
            }
            _ => return false,
        }
        true
    }
}

/// Only the `data` of a line, as written (for `provider.info`).
#[derive(Deserialize)]
struct DataOnly<'a> {
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// A non-empty string field's text, owned.
fn text_opt(raw: Option<&RawValue>) -> Option<String> {
    nonempty(raw).map(Cow::into_owned)
}

/// A tool execution's `result` or `error`, when it is an object.
fn outcome(r: Option<&RawValue>) -> Option<Outcome<'_>> {
    serde_json::from_str(r?.get()).ok()
}

/// What a tool result says: `content`, else `detailedContent`.
fn result_text(r: &Outcome<'_>) -> Option<String> {
    string(r.content)
        .or_else(|| string(r.detailed))
        .map(Cow::into_owned)
}

/// Split a `<current_datetime>` block the CLI appended to `content` (files
/// before 1.0) off the human's words: `(typed, Some(block))`.
pub fn split_datetime(content: &str) -> (&str, Option<&str>) {
    if !content.ends_with(DATETIME_CLOSE) {
        return (content, None);
    }
    let Some(at) = content.rfind(DATETIME_OPEN) else {
        return (content, None);
    };
    let before = &content[..at];
    let typed = before.strip_suffix("\n\n").unwrap_or(before);
    (typed, Some(&content[at..]))
}

/// What the model got besides the human's words: `transformed` without
/// `typed` (when it holds it once, else all of it), plus a `tail` split
/// off the typed text; `None` when that is nothing.
fn injected_part(typed: &str, transformed: &str, tail: Option<&str>) -> Option<String> {
    let rest = if transformed == typed {
        String::new()
    } else if !typed.is_empty() && transformed.matches(typed).count() == 1 {
        let at = transformed.find(typed).unwrap_or(0);
        let before = transformed[..at].trim();
        let after = transformed[at + typed.len()..].trim();
        match (before.is_empty(), after.is_empty()) {
            (true, true) => String::new(),
            (false, true) => before.to_owned(),
            (true, false) => after.to_owned(),
            (false, false) => format!("{before}\n\n{after}"),
        }
    } else {
        transformed.trim().to_owned()
    };
    // A tail already in `transformed` is not said twice.
    let rest = match tail {
        Some(t) if !rest.contains(t) => {
            if rest.is_empty() {
                t.to_owned()
            } else {
                format!("{rest}\n\n{t}")
            }
        }
        _ => rest,
    };
    (!rest.is_empty()).then_some(rest)
}

impl RecordParser for EventsParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let bytes = text.as_bytes();
        if let Ok(line) = serde_json::from_str::<Line<'_>>(text) {
            if self.map(offset, &line, text, out) {
                return Ok(());
            }
        }
        // Any other JSON is kept as it is.
        let raw = serde_json::from_str::<&RawValue>(text)
            .map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let record = serde_json::from_str::<Line<'_>>(text)
            .ok()
            .and_then(|l| string(l.kind).map(Cow::into_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        let mut ev = self.raw(offset, &record, raw.get());
        if let Ok(l) = serde_json::from_str::<Line<'_>>(text) {
            ev.timestamp = string(l.timestamp).map(Into::into);
        }
        out(ev);
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.st = super::restore_state::<State>(state)?;
        Ok(())
    }
}

/// A legacy document (0.0.3xx), read for its `timeline`.
#[derive(Deserialize)]
struct Legacy<'a> {
    #[serde(rename = "sessionId", default, borrow)]
    session_id: Option<&'a RawValue>,
    #[serde(rename = "startTime", default, borrow)]
    start_time: Option<&'a RawValue>,
    #[serde(rename = "selectedModel", default, borrow)]
    selected_model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    timeline: Option<Vec<&'a RawValue>>,
}

/// One timeline item.
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(rename = "expandedText", default, borrow)]
    expanded: Option<&'a RawValue>,
    #[serde(rename = "callId", default, borrow)]
    call_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
}

/// A value of a (pretty-printed) document on one line, as the JSONL
/// output needs it.
fn compact(raw: &RawValue) -> Box<RawValue> {
    serde_json::from_str::<serde_json::Value>(raw.get())
        .map_or_else(|_| null_raw(), |v| crate::event::raw_json(&v))
}

/// A timeline item's `id`, else `<tag>:<index>`.
fn item_id(tag: &str, item: &Item<'_>, index: usize) -> String {
    string(item.id)
        .map(Cow::into_owned)
        .unwrap_or_else(|| offset_id(tag, index as u64, 0))
}

/// The id of the item `raw` at `index`.
fn raw_item_id(tag: &str, raw: &RawValue, index: usize) -> String {
    serde_json::from_str::<Item<'_>>(raw.get()).map_or_else(
        |_| offset_id(tag, index as u64, 0),
        |it| item_id(tag, &it, index),
    )
}

/// A tool call's `result` in the timeline.
#[derive(Deserialize)]
struct LegacyResult<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    log: Option<&'a RawValue>,
}

/// The legacy parser's cursor, persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DocState {
    /// Whether `session_meta` was delivered.
    #[serde(default)]
    meta: bool,
    /// Timeline items delivered.
    #[serde(default)]
    delivered: usize,
    /// Id of the last item delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_id: Option<String>,
}

/// Parser of a legacy `history-session-state` document.
pub struct LegacyParser {
    ctx: FileCtx,
    st: DocState,
}

impl LegacyParser {
    pub fn new(ctx: &FileCtx) -> LegacyParser {
        LegacyParser {
            ctx: ctx.clone(),
            st: DocState::default(),
        }
    }

    /// The events of timeline item `index`.
    fn map_item(&self, session: &str, index: usize, raw: &RawValue, out: &mut dyn FnMut(Event)) {
        let item = serde_json::from_str::<Item<'_>>(raw.get()).ok();
        let kind = item
            .as_ref()
            .and_then(|i| string(i.kind))
            .unwrap_or_default();
        let source = Source {
            record: if kind.is_empty() {
                "timeline".into()
            } else {
                format!("timeline/{kind}").into()
            },
            offset: index as u64,
            file: Some(self.ctx.file_tag.as_str().into()),
        };
        let id = raw_item_id(&self.ctx.file_tag, raw, index);
        let timestamp = item
            .as_ref()
            .and_then(|i| string(i.timestamp))
            .map(Cow::into_owned);
        let mut emit = |id: String, payload: Payload| {
            let mut ev = Event::new(ID, session, id, source.clone(), payload);
            ev.timestamp = timestamp.as_deref().map(Into::into);
            out(ev);
        };
        let raw_event = |emit: &mut dyn FnMut(String, Payload)| {
            emit(
                id.clone(),
                Payload::ProviderRaw {
                    record: compact(raw),
                },
            );
        };
        let Some(item) = item else {
            raw_event(&mut emit);
            return;
        };
        match (kind.as_ref(), string(item.text)) {
            ("user", Some(t)) => {
                let expanded = string(item.expanded).filter(|e| *e != t);
                emit(
                    id.clone(),
                    Payload::UserMessage {
                        text: t.into_owned(),
                        attachments: 0,
                    },
                );
                if let Some(e) = expanded {
                    emit(
                        format!("{id}#context"),
                        Payload::SystemMessage {
                            category: SystemCategory::InjectedContext,
                            text: e.into_owned(),
                        },
                    );
                }
            }
            ("copilot", Some(t)) => emit(
                id,
                Payload::AssistantMessage {
                    text: t.into_owned(),
                },
            ),
            ("info", Some(t)) => emit(
                id,
                Payload::SystemMessage {
                    category: SystemCategory::Notice,
                    text: t.into_owned(),
                },
            ),
            ("error", Some(t)) => emit(
                id,
                Payload::SystemMessage {
                    category: SystemCategory::Error,
                    text: t.into_owned(),
                },
            ),
            ("tool_call_completed", _) => {
                let (Some(call), Some(name)) = (string(item.call_id), string(item.name)) else {
                    raw_event(&mut emit);
                    return;
                };
                let result = item
                    .result
                    .and_then(|r| serde_json::from_str::<LegacyResult<'_>>(r.get()).ok());
                let ok = result
                    .as_ref()
                    .and_then(|r| string(r.kind))
                    .is_some_and(|k| k == "success");
                let output = result
                    .as_ref()
                    .and_then(|r| string(r.log))
                    .map(Cow::into_owned)
                    .unwrap_or_default();
                emit(
                    format!("{id}#call"),
                    Payload::ToolCall {
                        tool_call_id: call.clone().into_owned(),
                        name: name.into_owned(),
                        input: item.arguments.map_or_else(null_raw, compact),
                    },
                );
                emit(
                    id,
                    Payload::ToolResult {
                        tool_call_id: call.into_owned(),
                        output: output.into(),
                        is_error: !ok,
                    },
                );
            }
            _ => raw_event(&mut emit),
        }
    }
}

impl RecordParser for LegacyParser {
    fn record(
        &mut self,
        _offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let doc: Legacy<'_> =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let session =
            string(doc.session_id).map_or_else(|| self.ctx.session_hint.clone(), Cow::into_owned);
        let items = doc.timeline.unwrap_or_default();
        let n = items.len();
        let tag = self.ctx.file_tag.clone();
        let id_at = |i: usize| items.get(i).map(|raw| raw_item_id(&tag, raw, i));
        let st = &mut self.st;
        let rewritten =
            st.delivered > n || (st.delivered > 0 && id_at(st.delivered - 1) != st.last_id);
        if rewritten {
            st.delivered = 0;
            st.last_id = None;
        }
        if !st.meta {
            let mut meta = serde_json::Map::new();
            for (key, v) in [
                ("sessionId", doc.session_id),
                ("startTime", doc.start_time),
                ("selectedModel", doc.selected_model),
            ] {
                if let Some(v) = v.and_then(|v| serde_json::from_str(v.get()).ok()) {
                    meta.insert(key.to_owned(), v);
                }
            }
            let mut ev = Event::new(
                ID,
                session.clone(),
                format!("{}:session", self.ctx.file_tag),
                Source {
                    record: "session".into(),
                    offset: 0,
                    file: Some(self.ctx.file_tag.as_str().into()),
                },
                Payload::ProviderInfo {
                    topic: "session_meta".to_owned(),
                    data: crate::event::raw_json(&meta),
                },
            );
            ev.timestamp = string(doc.start_time).map(Into::into);
            out(ev);
            self.st.meta = true;
        }
        let from = self.st.delivered;
        for (i, raw) in items.iter().enumerate().skip(from) {
            self.map_item(&session, i, raw, out);
        }
        if n > from {
            let last = id_at(n - 1);
            self.st.delivered = n;
            self.st.last_id = last;
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.st = super::restore_state::<DocState>(state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
