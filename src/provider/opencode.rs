//! OpenCode provider: `~/.local/share/opencode/opencode.db`
//! (`$XDG_DATA_HOME/opencode`; other release channels write
//! `opencode-<channel>.db` beside it).
//!
//! Since 1.2 OpenCode keeps every session in one SQLite database in WAL
//! mode ([`SourceKind::Database`]): tables `session`, `message` and
//! `part`, whose `data` columns hold the JSON of OpenCode's message and
//! part schemas. [`crate::database`] reads the rows read-only and hands
//! this provider's parser one record per row, a JSON object:
//!
//! * `{"t":"session", id, root, parent_id, time_created, time_updated,
//!   settle, data:{title, directory, version}}`;
//! * `{"t":"message", id, session_id, root, time_created, time_updated,
//!   settle, data:<message JSON>}`;
//! * `{"t":"part", id, message_id, session_id, root, role, model,
//!   time_created, time_updated, settle, data:<part JSON>}`
//!   (`role` and `model` from the part's message).
//!
//! `root` is the top-level session a row belongs to (child sessions, made
//! by the `task` tool, have a `parent_id`): its events carry the root's
//! session id and, for a child, a subagent naming the child session.
//! Records come in order: session, then its messages by creation time and
//! id, each followed by its parts by id (ids are time-sortable).
//!
//! The JSON store of versions before 1.2 (`storage/session/<project>/
//! <ses_…>.json`, `storage/message/<session>/`, `storage/part/<message>/`:
//! the same JSON with the ids the database keeps in columns) is read by
//! [`crate::database`] into the same records ([`SourceKind::DirectoryStore`]).
//!
//! A session in the database is named `<database path>#<session id>`
//! (`kato sessions` lists them so; `kato export` takes that, the id or a
//! prefix of it).
//!
//! Mapping (event ids: the row id; a tool's result `<part id>#result`):
//!
//! * session → `provider.info` `session_meta` (`title`, `cwd` from
//!   `directory`, `version`, `parent_id`) and, for a top-level session
//!   with a title, `provider.info` `title`.
//! * message → nothing, but an `error` → `system.message` (error).
//! * part `text`: a user message's → `user.message` (in a child session
//!   the prompt its parent gave: `system.message` subagent prompt);
//!   `synthetic: true` (text OpenCode wrote, e.g. "The following tool was
//!   executed by the user") → `system.message` injected context;
//!   `ignored: true` → `system.message` notice; an assistant's →
//!   `assistant.message`. Empty text → nothing.
//! * `reasoning` → `assistant.thinking` (empty → nothing).
//! * `tool` (call and result live in one part) → `assistant.tool.call`
//!   (`state.input`) and, once `state.status` is `completed` or `error`,
//!   `assistant.tool.result` (`state.output` / `state.error`).
//! * `file` → `provider.info` `attachment` (`mime`, `filename`; never the
//!   content); `agent` → `provider.info` `agent`; `subtask` →
//!   `system.message` subagent prompt; `step-finish` → `provider.info`
//!   `token_count` (`tokens`, `cost`, `reason`); `step-start` → nothing
//!   (it holds only a snapshot hash); `snapshot`, `patch` →
//!   `provider.info` of that name; `retry` → `system.message` notice;
//!   `compaction` → `system.message` compaction.
//! * Any other part type → `provider.raw`.
//!
//! Settled parts only: OpenCode updates a part in place while it streams
//! or its tool runs. A `tool` part whose status is `pending` or `running`,
//! and a `text`/`reasoning` part with a start time and no end time, are
//! not delivered until a later read finds them settled (the row's
//! `time_updated` moves, so it is read again); a record with `settle` (a
//! one-shot read: the last state it will see) is delivered as it stands.
//! So a finished tool's result replaces the pending call: one call, one
//! result.
//!
//! Commands: the human's words are the non-synthetic text parts of user
//! messages in a top-level session; tool output lives in tool parts and
//! the model's words in assistant messages, so in-chat commands are read
//! from those text parts only.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::event::{
    raw_from_str, raw_json, Event, Payload, ProviderId, Source, Subagent, SystemCategory,
};
use crate::provider::{
    ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::OpenCode;

pub struct OpenCode;

/// `opencode.db`, `opencode-<channel>.db`.
fn is_database_name(name: &str) -> bool {
    name == "opencode.db"
        || name
            .strip_prefix("opencode-")
            .and_then(|r| r.strip_suffix(".db"))
            .is_some_and(|c| !c.is_empty() && !c.contains('.'))
}

impl Provider for OpenCode {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".local/share/opencode")]
    }

    /// `$XDG_DATA_HOME/opencode`.
    fn env_roots(&self, value: &Path) -> Vec<PathBuf> {
        vec![value.join("opencode")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Database
    }

    /// A session of the JSON store (its file tag is the session id) is a
    /// [`SourceKind::DirectoryStore`]; anything else is the database.
    fn file_source_kind(&self, ctx: &FileCtx) -> SourceKind {
        if ctx.file_tag.starts_with("ses_") {
            SourceKind::DirectoryStore
        } else {
            SourceKind::Database
        }
    }

    /// The database lies in the root, the JSON store's sessions in
    /// `storage/session/<project>/`: OpenCode's snapshots (git
    /// repositories), logs, binaries and the store's message and part
    /// folders (read through their session) are not entered.
    fn descends_into(&self, name: &std::ffi::OsStr) -> bool {
        let name = name.to_string_lossy();
        !name.starts_with('.')
            && !matches!(
                name.as_ref(),
                "snapshot"
                    | "log"
                    | "bin"
                    | "message"
                    | "part"
                    | "project"
                    | "todo"
                    | "session_diff"
                    | "share"
                    | "tool-output"
                    | "worktree"
                    | "node_modules"
            )
    }

    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        let name = rel.file_name()?.to_str()?;
        // The JSON store: `storage/session/<project>/<ses_…>.json`.
        let parts: Vec<_> = rel.components().collect();
        if parts.len() == 4
            && parts[0].as_os_str() == "storage"
            && parts[1].as_os_str() == "session"
            && name.starts_with("ses_")
            && name.ends_with(".json")
        {
            let tag = crate::provider::stem(rel);
            return Some(FileCtx {
                provider: ID,
                file_tag: tag.clone(),
                session_hint: tag,
                subagent: None,
            });
        }
        if rel.components().count() != 1 || !is_database_name(name) {
            return None;
        }
        let tag = crate::provider::stem(rel);
        Some(FileCtx {
            provider: ID,
            file_tag: tag,
            session_hint: String::new(),
            subagent: None,
        })
    }

    /// `<database>#<session id>` names one session of a database; a
    /// database named alone is every session in it.
    fn named_file(&self, path: &Path) -> FileCtx {
        if crate::database::store_root(path).is_some() {
            let tag = crate::provider::stem(path);
            return FileCtx {
                provider: ID,
                file_tag: tag.clone(),
                session_hint: tag,
                subagent: None,
            };
        }
        let (db, session) = crate::database::split_session(path);
        FileCtx {
            provider: ID,
            file_tag: crate::provider::stem(&db),
            session_hint: session.unwrap_or_default(),
            subagent: None,
        }
    }

    /// An SQLite database whose schema has OpenCode's `part` table, or a
    /// session file of the JSON store.
    fn sniff(&self, head: &[u8]) -> Sniff {
        if head.starts_with(b"SQLite format 3\0") {
            // The schema (in the first pages) names OpenCode's tables.
            let has = |s: &[u8]| memchr::memmem::find(head, s).is_some();
            let part = has(b"CREATE TABLE `part`") || has(b"CREATE TABLE part ");
            return if part && has(b"message_id") && has(b"session_id") {
                Sniff::Strong
            } else {
                Sniff::No
            };
        }
        // A session file of the JSON store: a `ses_` id and a project.
        let head = &head[..head.len().min(4096)];
        let compact: String = String::from_utf8_lossy(head)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if compact.starts_with("{\"id\":\"ses_") && compact.contains("\"projectID\":") {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description:
                "OpenCode: every session in one SQLite database (opencode.db), read read-only.",
            env_override: Some("XDG_DATA_HOME"),
        }
    }

    /// The root holds `auth.json` (provider keys) beside the databases:
    /// a stage reads the databases (and their `-wal`, `-shm`, `-journal`)
    /// and the JSON store's `storage/`, nothing else.
    fn reach(&self, root: &Path) -> Option<Vec<PathBuf>> {
        Some(crate::database::reach(root, is_database_name))
    }

    fn parser(&self, _ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(OpenCodeParser::default())
    }
}

/// The parser. Every record carries its session, root and message's role,
/// so the parser needs no context to map one; its state is the position
/// reached in the database, which the source reads back to ask for newer
/// rows only.
#[derive(Default)]
pub struct OpenCodeParser {
    position: Position,
}

/// How far the rows of one table have been read: the greatest
/// `time_updated` seen and the ids of the rows seen at that time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    pub time: i64,
    pub ids: Vec<String>,
}

impl Mark {
    pub fn observe(&mut self, time: i64, id: &str) {
        if time > self.time {
            self.time = time;
            self.ids.clear();
        }
        if time == self.time && !self.ids.iter().any(|i| i == id) {
            self.ids.push(id.to_owned());
        }
    }
}

/// The parser's state: per table, the [`Mark`] reached; per session, the
/// title delivered (a session's `session_meta` is delivered once, its
/// title again when OpenCode changes it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    pub session: Mark,
    pub message: Mark,
    pub part: Mark,
    pub titles: std::collections::BTreeMap<String, String>,
}

impl Position {
    /// Nothing read yet.
    pub fn is_start(&self) -> bool {
        *self == Position::default()
    }
}

#[derive(Deserialize)]
struct Record<'a> {
    t: &'a str,
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    root: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    session_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    parent_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    time_created: Option<i64>,
    #[serde(default)]
    time_updated: Option<i64>,
    #[serde(default)]
    settle: bool,
    #[serde(borrow)]
    data: &'a RawValue,
}

impl RecordParser for OpenCodeParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let rec: Record<'_> =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let data: Value = serde_json::from_str(rec.data.get())
            .map_err(|e| Malformed::from_json_error(rec.data.get().as_bytes(), &e))?;
        let Value::Object(data) = data else {
            return Err(Malformed::WrongShape(format!(
                "{} data is not an object",
                rec.t
            )));
        };
        let session = rec.session_id.as_deref().unwrap_or(&rec.id);
        let root = rec.root.as_deref().unwrap_or(session);
        let updated = rec.time_updated.or(rec.time_created).unwrap_or(0);
        let mark = match rec.t {
            "session" => &mut self.position.session,
            "message" => &mut self.position.message,
            _ => &mut self.position.part,
        };
        mark.observe(updated, &rec.id);
        let ctx = Ctx {
            root,
            subagent: (session != root).then(|| Subagent {
                id: Some(session.to_owned()),
                label: None,
            }),
            timestamp: rec.time_created.and_then(millis_time),
            model: rec.model.clone(),
            offset,
            file: (session != root).then(|| session.to_owned()),
        };
        match rec.t {
            "session" => {
                let title = str_of(&data, "title").unwrap_or("").to_owned();
                let known = self.position.titles.get(rec.id.as_ref());
                let meta = known.is_none();
                let retitled = known != Some(&title);
                session_events(&ctx, &rec, &data, meta, retitled, out);
                if ctx.subagent.is_none() {
                    self.position.titles.insert(rec.id.to_string(), title);
                } else {
                    self.position.titles.entry(rec.id.to_string()).or_default();
                }
            }
            "message" => message_events(&ctx, &rec.id, &data, out),
            "part" => part_events(&ctx, &rec, &data, out),
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

/// What every event of one record shares.
struct Ctx<'a> {
    root: &'a str,
    subagent: Option<Subagent>,
    timestamp: Option<String>,
    model: Option<String>,
    offset: u64,
    /// A child session's id: its events' `source.file`, so that each
    /// session's events are in order of their own.
    file: Option<String>,
}

impl Ctx<'_> {
    fn event(&self, id: String, record: &str, payload: Payload) -> Event {
        let mut ev = Event::new(
            ID,
            self.root,
            id,
            Source {
                record: record.to_owned(),
                offset: self.offset,
                file: self.file.clone(),
            },
            payload,
        );
        ev.timestamp.clone_from(&self.timestamp);
        ev.subagent.clone_from(&self.subagent);
        ev.model.clone_from(&self.model);
        ev
    }
}

fn millis_time(ms: i64) -> Option<String> {
    let ms = u64::try_from(ms).ok()?;
    Some(crate::audit::rfc3339(ms / 1000, (ms % 1000) as u32))
}

fn str_of<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn session_events(
    ctx: &Ctx<'_>,
    rec: &Record<'_>,
    data: &serde_json::Map<String, Value>,
    meta: bool,
    retitled: bool,
    out: &mut dyn FnMut(Event),
) {
    let info = serde_json::json!({
        "id": rec.id,
        "title": data.get("title"),
        "cwd": data.get("directory"),
        "version": data.get("version"),
        "parent_id": rec.parent_id,
    });
    if meta {
        out(ctx.event(
            format!("{}:session", rec.id),
            "session",
            Payload::ProviderInfo {
                topic: "session_meta".into(),
                data: raw_json(&info),
            },
        ));
    }
    if ctx.subagent.is_none() && retitled {
        if let Some(title) = str_of(data, "title").filter(|t| !t.trim().is_empty()) {
            let id = match meta {
                true => format!("{}:title", rec.id),
                false => format!("{}:title@{}", rec.id, rec.time_updated.unwrap_or(0)),
            };
            out(ctx.event(
                id,
                "session",
                Payload::ProviderInfo {
                    topic: "title".into(),
                    data: raw_json(title),
                },
            ));
        }
    }
}

fn message_events(
    ctx: &Ctx<'_>,
    id: &str,
    data: &serde_json::Map<String, Value>,
    out: &mut dyn FnMut(Event),
) {
    let Some(error) = data.get("error").filter(|e| !e.is_null()) else {
        return;
    };
    let text = error
        .pointer("/data/message")
        .and_then(Value::as_str)
        .or_else(|| error.get("name").and_then(Value::as_str))
        .map_or_else(|| error.to_string(), str::to_owned);
    out(ctx.event(
        format!("{id}:error"),
        "message/error",
        Payload::SystemMessage {
            category: SystemCategory::Error,
            text,
        },
    ));
}

/// Whether a streamed part (text, reasoning) has finished: it has no
/// start time (written whole) or has an end time.
fn finished(data: &serde_json::Map<String, Value>) -> bool {
    match data.get("time") {
        Some(Value::Object(t)) => {
            !t.contains_key("start") || t.get("end").is_some_and(|e| !e.is_null())
        }
        _ => true,
    }
}

// Long because: one arm per part type, the mapping the module docs list.
fn part_events(
    ctx: &Ctx<'_>,
    rec: &Record<'_>,
    data: &serde_json::Map<String, Value>,
    out: &mut dyn FnMut(Event),
) {
    let id = rec.id.as_ref();
    let kind = str_of(data, "type").unwrap_or("");
    let record = format!("part/{kind}");
    let info = |topic: &str, value: Value| Payload::ProviderInfo {
        topic: topic.into(),
        data: raw_json(&value),
    };
    let system = |category, text: String| Payload::SystemMessage { category, text };
    let payload = match kind {
        "text" => {
            if !rec.settle && !finished(data) {
                return;
            }
            let text = str_of(data, "text").unwrap_or("").to_owned();
            if text.trim().is_empty() {
                return;
            }
            let flag = |k| data.get(k).and_then(Value::as_bool).unwrap_or(false);
            if flag("synthetic") {
                system(SystemCategory::InjectedContext, text)
            } else if flag("ignored") {
                system(SystemCategory::Notice, text)
            } else if rec.role.as_deref() == Some("user") {
                if ctx.subagent.is_some() {
                    system(SystemCategory::SubagentPrompt, text)
                } else {
                    Payload::UserMessage {
                        text,
                        attachments: 0,
                    }
                }
            } else {
                Payload::AssistantMessage { text }
            }
        }
        "reasoning" => {
            if !rec.settle && !finished(data) {
                return;
            }
            let text = str_of(data, "text").unwrap_or("").to_owned();
            if text.trim().is_empty() {
                return;
            }
            Payload::Thinking { text }
        }
        "tool" => return tool_events(ctx, rec, data, out),
        "file" => info(
            "attachment",
            serde_json::json!({"mime": data.get("mime"), "filename": data.get("filename")}),
        ),
        "agent" => info("agent", serde_json::json!({"name": data.get("name")})),
        "subtask" => {
            let text = str_of(data, "prompt")
                .or_else(|| str_of(data, "description"))
                .unwrap_or("")
                .to_owned();
            system(SystemCategory::SubagentPrompt, text)
        }
        "step-start" => return,
        "step-finish" => info(
            "token_count",
            serde_json::json!({
                "tokens": data.get("tokens"), "cost": data.get("cost"), "reason": data.get("reason"),
            }),
        ),
        "snapshot" | "patch" => info(kind, Value::Object(data.clone())),
        "retry" => {
            let attempt = data.get("attempt").and_then(Value::as_u64).unwrap_or(0);
            system(SystemCategory::Notice, format!("retry (attempt {attempt})"))
        }
        "compaction" => {
            let auto = data.get("auto").and_then(Value::as_bool).unwrap_or(false);
            let how = if auto { "automatic" } else { "requested" };
            system(SystemCategory::Compaction, format!("compaction ({how})"))
        }
        _ => Payload::ProviderRaw {
            record: raw_from_str(rec.data.get()),
        },
    };
    out(ctx.event(id.to_owned(), &record, payload));
}

fn tool_events(
    ctx: &Ctx<'_>,
    rec: &Record<'_>,
    data: &serde_json::Map<String, Value>,
    out: &mut dyn FnMut(Event),
) {
    let id = rec.id.as_ref();
    let state = data.get("state").and_then(Value::as_object);
    let status = state.and_then(|s| str_of(s, "status")).unwrap_or("");
    let settled = matches!(status, "completed" | "error");
    if !settled && !rec.settle {
        return;
    }
    let call_id = str_of(data, "callID").unwrap_or(id).to_owned();
    let name = str_of(data, "tool").unwrap_or("").to_owned();
    let input = state
        .and_then(|s| s.get("input"))
        .map_or_else(crate::event::null_raw, raw_json);
    out(ctx.event(
        id.to_owned(),
        "part/tool",
        Payload::ToolCall {
            tool_call_id: call_id.clone(),
            name,
            input,
        },
    ));
    if !settled {
        return;
    }
    let is_error = status == "error";
    let key = if is_error { "error" } else { "output" };
    let output = match state.and_then(|s| s.get(key)) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    out(ctx.event(
        format!("{id}#result"),
        "part/tool",
        Payload::ToolResult {
            tool_call_id: call_id,
            output,
            is_error,
        },
    ));
}

#[cfg(test)]
mod tests;
