//! Crush provider: `.crush/crush.db` inside each project folder (no
//! default root: the folders you name, like Aider's).
//!
//! Crush keeps a project's sessions in one SQLite database
//! ([`SourceKind::Database`]): `sessions(id, parent_session_id, title, …,
//! created_at, updated_at)` and `messages(id, session_id, role, parts,
//! model, provider, created_at, updated_at, finished_at)`, `parts` a JSON
//! array of `{type, data}`. [`crate::database`] reads it read-only (as
//! OpenCode's) and hands this parser one record per row:
//!
//! * `{"t":"session", id, root, parent_id, time_created, time_updated,
//!   settle, data:{title}}`;
//! * `{"t":"message", id, session_id, root, role, model, time_created,
//!   time_updated, finished, settle, data:<parts array>}`.
//!
//! Crush writes its timestamps in seconds (the schema says milliseconds);
//! a value below 10^11 is read as seconds.
//!
//! Mapping (event ids `<message id>#<part index>`):
//!
//! * session → `provider.info` `session_meta` (`title`, `parent_id`) and,
//!   top-level, `provider.info` `title`; child sessions (the agent tool's,
//!   titling) are subagent work of their root.
//! * `user`: `text` → `user.message` (in a child session the subagent's
//!   prompt: `system.message`), `image_url`/`binary` counted as
//!   attachments of the message's text.
//! * `assistant`: `reasoning` → `assistant.thinking`, `text` →
//!   `assistant.message`, `tool_call` → `assistant.tool.call` (its `input`,
//!   a JSON string, as JSON when it is).
//! * `tool`: `tool_result` → `assistant.tool.result`.
//! * `system` text → `system.message` injected context.
//! * `finish` → nothing (a stop reason), but `error`/`canceled` →
//!   `system.message`; any other part → `provider.raw`.
//!
//! Settled messages only: Crush rewrites an assistant message while it
//! streams; it is delivered once it has a `finish` part or a
//! `finished_at` (or as it stands on a one-shot read: `settle`).
//!
//! Commands: the human's words are the `text` parts of `user` messages of
//! a top-level session; tool output travels in `tool` messages.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::event::{
    raw_from_str, raw_json, Event, Payload, ProviderId, Source, Subagent, SystemCategory,
};
use crate::provider::opencode::Position;
use crate::provider::{
    ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::Crush;

pub struct Crush;

/// Directories never entered below a project root.
const SKIPPED_DIRS: &[&str] = &["node_modules", "__pycache__", "target", "venv"];

impl Provider for Crush {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, _home: &Path) -> Vec<PathBuf> {
        Vec::new()
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Database
    }

    /// `.crush/crush.db` anywhere below a root.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.file_name()? != "crush.db" || rel.parent()?.file_name()? != ".crush" {
            return None;
        }
        Some(FileCtx {
            provider: ID,
            file_tag: "crush".into(),
            session_hint: String::new(),
            subagent: None,
        })
    }

    fn named_file(&self, path: &Path) -> FileCtx {
        let (_, session) = crate::database::split_session(path);
        FileCtx {
            provider: ID,
            file_tag: "crush".into(),
            session_hint: session.unwrap_or_default(),
            subagent: None,
        }
    }

    /// The project is the folder holding `.crush/`.
    fn project_folder(&self, path: &Path) -> Option<PathBuf> {
        let (db, _) = crate::database::split_session(path);
        db.parent()?.parent().map(Path::to_path_buf)
    }

    fn descends_into(&self, name: &OsStr) -> bool {
        let name = name.to_string_lossy();
        name == ".crush" || (!name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()))
    }

    /// An SQLite database whose schema has Crush's `messages.parts`.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let has = |s: &[u8]| memchr::memmem::find(head, s).is_some();
        if head.starts_with(b"SQLite format 3\0")
            && has(b"CREATE TABLE messages")
            && has(b"parts TEXT")
            && has(b"parent_session_id")
        {
            Sniff::Strong
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description:
                "Crush: .crush/crush.db (SQLite) in the project folders named, read read-only.",
            env_override: None,
        }
    }

    fn parser(&self, _ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(CrushParser::default())
    }
}

/// The parser; its state is the position reached in the database.
#[derive(Default)]
pub struct CrushParser {
    position: Position,
}

#[derive(Deserialize)]
struct Record<'a> {
    t: &'a str,
    id: String,
    #[serde(default)]
    root: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    time_created: Option<i64>,
    #[serde(default)]
    time_updated: Option<i64>,
    #[serde(default)]
    finished: Option<i64>,
    #[serde(default)]
    settle: bool,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// Seconds or milliseconds since the epoch as RFC 3339.
fn crush_time(t: i64) -> Option<String> {
    let t = u64::try_from(t).ok()?;
    let ms = if t < 100_000_000_000 { t * 1000 } else { t };
    Some(crate::audit::rfc3339(ms / 1000, (ms % 1000) as u32))
}

impl RecordParser for CrushParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let rec: Record<'_> =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let session = rec.session_id.clone().unwrap_or_else(|| rec.id.clone());
        let root = rec.root.clone().unwrap_or_else(|| session.clone());
        let updated = rec.time_updated.or(rec.time_created).unwrap_or(0);
        let child = session != root;
        let base = |id: String, record: &str, payload: Payload| {
            let mut ev = Event::new(
                ID,
                root.clone(),
                id,
                Source {
                    record: record.to_owned().into(),
                    offset,
                    file: child.then(|| session.clone()).map(Into::into),
                },
                payload,
            );
            ev.timestamp = rec.time_created.and_then(crush_time).map(Into::into);
            ev.model = rec.model.as_deref().map(Into::into);
            ev.subagent = child.then(|| Subagent {
                id: Some(session.clone()),
                label: None,
            });
            ev
        };
        match rec.t {
            "session" => {
                self.position.session.observe(updated, &rec.id);
                let data: Value = serde_json::from_str(rec.data.get())
                    .map_err(|e| Malformed::WrongShape(e.to_string()))?;
                let title = data.get("title").and_then(Value::as_str).unwrap_or("");
                let known = self.position.titles.get(&rec.id).cloned();
                if known.is_none() {
                    let info = serde_json::json!({"id": rec.id, "title": title, "parent_id": rec.parent_id});
                    out(base(
                        format!("{}:session", rec.id),
                        "session",
                        Payload::ProviderInfo {
                            topic: "session_meta".into(),
                            data: raw_json(&info),
                        },
                    ));
                }
                if !child && known.as_deref() != Some(title) && !title.trim().is_empty() {
                    let id = match known {
                        None => format!("{}:title", rec.id),
                        Some(_) => format!("{}:title@{updated}", rec.id),
                    };
                    out(base(
                        id,
                        "session",
                        Payload::ProviderInfo {
                            topic: "title".into(),
                            data: raw_json(title),
                        },
                    ));
                }
                self.position
                    .titles
                    .insert(rec.id.clone(), title.to_owned());
            }
            "message" => {
                self.position.message.observe(updated, &rec.id);
                let parts: Vec<Part> = serde_json::from_str(rec.data.get())
                    .map_err(|e| Malformed::WrongShape(format!("parts: {e}")))?;
                let role = rec.role.as_deref().unwrap_or("");
                let settled = rec.settle
                    || role != "assistant"
                    || rec.finished.is_some_and(|f| f > 0)
                    || parts.iter().any(|p| p.kind == "finish");
                if !settled {
                    return Ok(());
                }
                let attachments = parts
                    .iter()
                    .filter(|p| matches!(p.kind.as_str(), "image_url" | "binary"))
                    .count() as u32;
                let mut attached = false;
                for (i, p) in parts.iter().enumerate() {
                    let id = format!("{}#{i}", rec.id);
                    let text = |k: &str| {
                        p.data
                            .get(k)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    };
                    let record = format!("{role}/{}", p.kind);
                    let payload = match (role, p.kind.as_str()) {
                        (_, "finish") => {
                            let reason = text("reason");
                            match reason.as_str() {
                                "error" | "canceled" | "permission_denied" => {
                                    Payload::SystemMessage {
                                        category: SystemCategory::Error,
                                        text: format!("{reason}: {}", text("message")),
                                    }
                                }
                                _ => continue,
                            }
                        }
                        ("user", "image_url" | "binary") => continue,
                        ("user", "text") => {
                            let t = text("text");
                            if t.trim().is_empty() {
                                continue;
                            }
                            if child {
                                Payload::SystemMessage {
                                    category: SystemCategory::SubagentPrompt,
                                    text: t,
                                }
                            } else {
                                let n = if attached { 0 } else { attachments };
                                attached = true;
                                Payload::UserMessage {
                                    text: t,
                                    attachments: n,
                                }
                            }
                        }
                        ("system", "text") => Payload::SystemMessage {
                            category: SystemCategory::InjectedContext,
                            text: text("text"),
                        },
                        ("assistant", "text") => {
                            let t = text("text");
                            if t.trim().is_empty() {
                                continue;
                            }
                            Payload::AssistantMessage { text: t }
                        }
                        ("assistant", "reasoning") => {
                            let t = text("thinking");
                            if t.trim().is_empty() {
                                continue;
                            }
                            Payload::Thinking { text: t }
                        }
                        ("assistant", "tool_call") => {
                            let input = text("input");
                            let input = match serde_json::from_str::<&RawValue>(&input) {
                                Ok(raw) => raw_from_str(raw.get()),
                                Err(_) => raw_json(&input),
                            };
                            Payload::ToolCall {
                                tool_call_id: text("id"),
                                name: text("name"),
                                input,
                            }
                        }
                        ("tool", "tool_result") => Payload::ToolResult {
                            tool_call_id: text("tool_call_id"),
                            output: text("content").into(),
                            is_error: p
                                .data
                                .get("is_error")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        },
                        _ => Payload::ProviderRaw {
                            record: raw_json(&serde_json::json!({"type": p.kind, "data": p.data})),
                        },
                    };
                    out(base(id, &record, payload));
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
