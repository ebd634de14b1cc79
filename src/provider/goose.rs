//! Goose provider: `~/.local/share/goose/sessions/sessions.db`
//! (`$XDG_DATA_HOME/goose/sessions`).
//!
//! Goose keeps every session in one SQLite database
//! ([`SourceKind::Database`]): `sessions(id, name, description,
//! working_dir, session_type, created_at, updated_at, …)` and
//! `messages(id INTEGER, session_id, role, content_json,
//! created_timestamp, metadata_json)`, `content_json` a JSON array of
//! Goose's message contents (`crates/goose/src/conversation/message.rs`).
//! [`crate::database`] reads it read-only and hands this parser one
//! record per row:
//!
//! * `{"t":"session", id, time_updated, settle, data:{name, description,
//!   working_dir, session_type}}`;
//! * `{"t":"message", id, session_id, role, time_created, metadata,
//!   settle, data:<content array>}`.
//!
//! Messages are appended (integer ids): the position is the greatest id
//! read. The real database in the corpus has no message yet: the content
//! shapes follow Goose's source (`type` camelCase: `text`, `image`,
//! `toolRequest{id, toolCall{status, value{name, arguments}}}`,
//! `toolResponse{id, toolResult{status, value[…]}}`, `thinking`,
//! `redactedThinking`, `systemNotification`).
//!
//! Mapping (event ids `<session>:<message id>#<index>`):
//!
//! * session → `provider.info` `session_meta` (`cwd` from `working_dir`)
//!   and `title` (`name`, when set).
//! * `user` `text` → `user.message`, unless the message's metadata says it
//!   is not shown to the user (`userVisible: false`: injected context);
//!   `image` counted as an attachment; `toolResponse` →
//!   `assistant.tool.result` (its text contents).
//! * `assistant` `text` → `assistant.message`, `thinking` →
//!   `assistant.thinking`, `toolRequest` → `assistant.tool.call`.
//! * `systemNotification` → `system.message` notice; anything else →
//!   `provider.raw`.
//!
//! Commands: the human's words are the visible `text` contents of `user`
//! messages; tool output travels in `toolResponse` contents.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::event::{raw_json, Event, Payload, ProviderId, Source, SystemCategory};
use crate::provider::opencode::Position;
use crate::provider::{
    ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::Goose;

pub struct Goose;

impl Provider for Goose {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".local/share/goose/sessions")]
    }

    /// `$XDG_DATA_HOME/goose/sessions`.
    fn env_roots(&self, value: &Path) -> Vec<PathBuf> {
        vec![value.join("goose/sessions")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Database
    }

    fn descends_into(&self, _name: &std::ffi::OsStr) -> bool {
        false
    }

    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel != Path::new("sessions.db") {
            return None;
        }
        Some(FileCtx {
            provider: ID,
            file_tag: "sessions".into(),
            session_hint: String::new(),
            subagent: None,
        })
    }

    fn named_file(&self, path: &Path) -> FileCtx {
        let (_, session) = crate::database::split_session(path);
        FileCtx {
            provider: ID,
            file_tag: "sessions".into(),
            session_hint: session.unwrap_or_default(),
            subagent: None,
        }
    }

    /// An SQLite database whose schema has Goose's `content_json`.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let has = |s: &[u8]| memchr::memmem::find(head, s).is_some();
        if head.starts_with(b"SQLite format 3\0") && has(b"content_json") && has(b"working_dir") {
            Sniff::Strong
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description:
                "Goose: every session in one SQLite database (sessions.db), read read-only.",
            env_override: Some("XDG_DATA_HOME"),
        }
    }

    fn parser(&self, _ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(GooseParser::default())
    }
}

/// The parser; its state is the position reached (`message.time`: the
/// greatest message id read).
#[derive(Default)]
pub struct GooseParser {
    position: Position,
}

#[derive(Deserialize)]
struct Record<'a> {
    t: &'a str,
    id: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    time_created: Option<i64>,
    #[serde(default)]
    metadata: Option<String>,
    #[serde(borrow)]
    data: &'a RawValue,
}

fn seconds_time(t: i64) -> Option<String> {
    let t = u64::try_from(t).ok()?;
    let ms = if t < 100_000_000_000 { t * 1000 } else { t };
    Some(crate::audit::rfc3339(ms / 1000, (ms % 1000) as u32))
}

/// The text contents of a tool response's `value` (a list of contents).
fn response_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl RecordParser for GooseParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let rec: Record<'_> =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let session = rec.session_id.clone().unwrap_or_else(|| rec.id.clone());
        let base = |id: String, record: &str, payload: Payload| {
            let mut ev = Event::new(
                ID,
                session.clone(),
                id,
                Source {
                    record: record.to_owned().into(),
                    offset,
                    file: None,
                },
                payload,
            );
            ev.timestamp = rec.time_created.and_then(seconds_time).map(Into::into);
            ev
        };
        match rec.t {
            "session" => {
                let data: Value = serde_json::from_str(rec.data.get())
                    .map_err(|e| Malformed::WrongShape(e.to_string()))?;
                let name = data.get("name").and_then(Value::as_str).unwrap_or("");
                let known = self.position.titles.get(&rec.id).cloned();
                if known.is_none() {
                    let info = serde_json::json!({
                        "id": rec.id, "cwd": data.get("working_dir"),
                        "description": data.get("description"), "type": data.get("session_type"),
                    });
                    out(base(
                        format!("{}:session", rec.id),
                        "session",
                        Payload::ProviderInfo {
                            topic: "session_meta".into(),
                            data: raw_json(&info),
                        },
                    ));
                }
                if known.as_deref() != Some(name) && !name.trim().is_empty() {
                    let id = match known {
                        None => format!("{}:title", rec.id),
                        Some(_) => format!("{}:title@{name}", rec.id),
                    };
                    out(base(
                        id,
                        "session",
                        Payload::ProviderInfo {
                            topic: "title".into(),
                            data: raw_json(name),
                        },
                    ));
                }
                self.position.titles.insert(rec.id.clone(), name.to_owned());
            }
            "message" => {
                if let Ok(n) = rec.id.parse::<i64>() {
                    self.position.message.observe(n, "");
                }
                let contents: Vec<Value> = serde_json::from_str(rec.data.get())
                    .map_err(|e| Malformed::WrongShape(format!("content_json: {e}")))?;
                let role = rec.role.as_deref().unwrap_or("");
                let hidden = rec
                    .metadata
                    .as_deref()
                    .and_then(|m| serde_json::from_str::<Value>(m).ok())
                    .and_then(|m| m.get("userVisible").and_then(Value::as_bool))
                    == Some(false);
                let images = contents
                    .iter()
                    .filter(|c| c.get("type").and_then(Value::as_str) == Some("image"))
                    .count() as u32;
                let mut attached = false;
                for (i, c) in contents.iter().enumerate() {
                    let kind = c.get("type").and_then(Value::as_str).unwrap_or("");
                    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    let id = format!("{session}:{}#{i}", rec.id);
                    let payload = match (role, kind) {
                        ("user", "image") => continue,
                        ("user", "text") if hidden => Payload::SystemMessage {
                            category: SystemCategory::InjectedContext,
                            text: s("text"),
                        },
                        ("user", "text") => {
                            let n = if attached { 0 } else { images };
                            attached = true;
                            Payload::UserMessage {
                                text: s("text"),
                                attachments: n,
                            }
                        }
                        ("assistant", "text") => Payload::AssistantMessage { text: s("text") },
                        ("assistant", "thinking") => Payload::Thinking {
                            text: s("thinking"),
                        },
                        ("assistant", "toolRequest") => {
                            let value = c.pointer("/toolCall/value");
                            Payload::ToolCall {
                                tool_call_id: s("id"),
                                name: value
                                    .and_then(|v| v.get("name"))
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned(),
                                input: value
                                    .and_then(|v| v.get("arguments"))
                                    .map_or_else(crate::event::null_raw, raw_json),
                            }
                        }
                        (_, "toolResponse") => {
                            let result = c.get("toolResult");
                            let status = result
                                .and_then(|r| r.get("status"))
                                .and_then(Value::as_str)
                                .unwrap_or("");
                            let body = result
                                .and_then(|r| r.get("value").or_else(|| r.get("error")))
                                .unwrap_or(&Value::Null);
                            Payload::ToolResult {
                                tool_call_id: s("id"),
                                output: response_text(body).into(),
                                is_error: status == "error",
                            }
                        }
                        (_, "systemNotification") => Payload::SystemMessage {
                            category: SystemCategory::Notice,
                            text: s("msg"),
                        },
                        _ => Payload::ProviderRaw {
                            record: raw_json(c),
                        },
                    };
                    if let Payload::UserMessage { text, .. }
                    | Payload::AssistantMessage { text }
                    | Payload::Thinking { text } = &payload
                    {
                        if text.trim().is_empty() {
                            continue;
                        }
                    }
                    out(base(id, &format!("{role}/{kind}"), payload));
                }
            }
            other => return Err(Malformed::WrongShape(format!("unknown record `{other}`"))),
        }
        Ok(())
    }

    fn state(&self) -> Value {
        serde_json::to_value(&self.position).unwrap_or(Value::Null)
    }

    fn restore(&mut self, state: &Value) -> Result<(), Malformed> {
        self.position = crate::provider::restore_state(state)?;
        Ok(())
    }
}
