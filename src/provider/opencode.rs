//! OpenCode provider: `~/.local/share/opencode/opencode.db`
//! (`$XDG_DATA_HOME/opencode`; other release channels write
//! `opencode-<channel>.db` beside it).
//!
//! Since 1.2 OpenCode keeps every session in one SQLite database in WAL
//! mode ([`SourceKind::Database`]): tables `session`, `message` and
//! `part`, whose `data` columns hold the JSON of OpenCode's message and
//! part schemas. [`crate::database`] reads the rows read-only and hands
//! this provider's parser each row typed ([`Row`], [`OpenCodeParser::row`]:
//! the columns borrowed, `data` the JSON text as stored, decoded straight
//! into borrowed structs). The same rows as JSON records (the JSON store,
//! the fuzz target, [`RecordParser::record`]), one object per row:
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

use std::borrow::Cow;
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
            // The common case, one row per time: the id's buffer is reused.
            if let [only] = self.ids.as_mut_slice() {
                only.clear();
                only.push_str(id);
                return;
            }
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
    /// The greatest part id read (ids are time-sortable): a later read
    /// asks for parts past a moment before it only ([`Position::part_floor`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_part: String,
    /// Parts read unsettled (a tool running, text streaming), held back
    /// until a read finds them settled: asked for by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// How far before the greatest part id read a later read looks for parts
/// (ids from another process's clock, a row committed late).
const PART_WINDOW_MS: u64 = 10 * 60 * 1000;
/// Held parts remembered at most (a tool left running forever).
const MAX_HELD: usize = 256;

impl Position {
    /// The least part id a read past this position must look at besides
    /// the held ones: the greatest one read, less ten minutes. An
    /// OpenCode id is `prt_` and 12 hex digits of `ms * 0x1000 + counter`
    /// (low 48 bits), then random characters; any other shape gives ``
    /// (every part is looked at).
    pub fn part_floor(&self) -> String {
        let hex = self
            .last_part
            .strip_prefix("prt_")
            .and_then(|r| r.get(..12))
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            });
        let Some(v) = hex.and_then(|h| u64::from_str_radix(h, 16).ok()) else {
            return String::new();
        };
        match v.checked_sub(PART_WINDOW_MS * 0x1000) {
            Some(f) => format!("prt_{f:012x}"),
            None => String::new(),
        }
    }

    fn part_read(&mut self, id: &str, held: bool) {
        if id > self.last_part.as_str() {
            self.last_part.clear();
            self.last_part.push_str(id);
        }
        let at = self.held.iter().position(|h| h == id);
        match (held, at) {
            (true, None) => {
                if self.held.len() >= MAX_HELD {
                    self.held.remove(0);
                }
                self.held.push(id.to_owned());
            }
            (false, Some(i)) => {
                self.held.remove(i);
            }
            _ => {}
        }
    }

    /// Nothing read yet.
    pub fn is_start(&self) -> bool {
        *self == Position::default()
    }
}

/// One row as the parser takes it: the columns typed, `data` the row's
/// JSON text as stored (a part's or a message's), never re-encoded. The
/// database source builds these from borrowed column values; the JSON
/// records of [`RecordParser::record`] (the fuzz targets, the tests)
/// decode into the same.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub id: &'a str,
    /// A message's or part's session (a session's own id when `None`).
    pub session_id: Option<&'a str>,
    /// The top-level session the row belongs to.
    pub root: Option<&'a str>,
    pub parent_id: Option<&'a str>,
    /// A part's message's role and model.
    pub role: Option<&'a str>,
    pub model: Option<&'a str>,
    pub time_created: Option<i64>,
    pub time_updated: Option<i64>,
    /// The last state this read will see: unsettled parts are delivered
    /// as they stand.
    pub settle: bool,
    pub data: RowData<'a>,
}

/// What a row holds besides its columns.
#[derive(Debug, Clone, Copy)]
pub enum RowData<'a> {
    /// A session's columns.
    Session {
        title: Option<&'a str>,
        directory: Option<&'a str>,
        version: Option<&'a str>,
    },
    /// A message's `data` JSON.
    Message(&'a str),
    /// A part's `data` JSON.
    Part(&'a str),
}

/// A string value, borrowed from the input when it has no escapes.
#[derive(Debug, Default)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Text)
    }
}

fn text_of<'b>(t: &'b Option<Text<'_>>) -> Option<&'b str> {
    t.as_ref().map(|t| t.0.as_ref())
}

/// The JSON record of one row ([`RecordParser::record`]).
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    t: Text<'a>,
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(default, borrow)]
    root: Option<Text<'a>>,
    #[serde(default, borrow)]
    session_id: Option<Text<'a>>,
    #[serde(default, borrow)]
    parent_id: Option<Text<'a>>,
    #[serde(default, borrow)]
    role: Option<Text<'a>>,
    #[serde(default, borrow)]
    model: Option<Text<'a>>,
    #[serde(default)]
    time_created: Option<i64>,
    #[serde(default)]
    time_updated: Option<i64>,
    #[serde(default)]
    settle: bool,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// A session record's `data`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SessionData<'a> {
    #[serde(borrow)]
    title: Option<Text<'a>>,
    #[serde(borrow)]
    directory: Option<Text<'a>>,
    #[serde(borrow)]
    version: Option<Text<'a>>,
}

/// What the parser reads of a message's `data`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct MessageData<'a> {
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// What the database source reads of a message's `data` for its parts.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MessageHead<'a> {
    #[serde(borrow)]
    role: Option<Text<'a>>,
    #[serde(rename = "modelID", borrow)]
    model_id: Option<Text<'a>>,
    #[serde(borrow)]
    model: Option<ModelRef<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ModelRef<'a> {
    #[serde(rename = "modelID", borrow)]
    model_id: Option<Text<'a>>,
}

impl<'a> MessageHead<'a> {
    /// Decode a message's `data`; anything unreadable gives no role and
    /// no model (the message's own record says why).
    pub fn of(data: &'a str) -> MessageHead<'a> {
        serde_json::from_str(data).unwrap_or_default()
    }

    pub fn role(&self) -> Option<&str> {
        text_of(&self.role)
    }

    pub fn model(&self) -> Option<&str> {
        text_of(&self.model_id).or_else(|| self.model.as_ref().and_then(|m| text_of(&m.model_id)))
    }
}

/// A part's `data`: the fields kato maps; everything else is skipped
/// unread.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PartData<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    text: Option<Text<'a>>,
    synthetic: Option<bool>,
    ignored: Option<bool>,
    time: Option<Span<'a>>,
    #[serde(borrow)]
    tool: Option<Text<'a>>,
    #[serde(rename = "callID", borrow)]
    call_id: Option<Text<'a>>,
    #[serde(borrow)]
    state: Option<ToolState<'a>>,
    #[serde(borrow)]
    mime: Option<&'a RawValue>,
    #[serde(borrow)]
    filename: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    prompt: Option<Text<'a>>,
    #[serde(borrow)]
    description: Option<Text<'a>>,
    #[serde(borrow)]
    tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    cost: Option<&'a RawValue>,
    #[serde(borrow)]
    reason: Option<&'a RawValue>,
    #[serde(borrow)]
    attempt: Option<&'a RawValue>,
    auto: Option<bool>,
}

/// A streamed part's `time`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Span<'a> {
    #[serde(borrow)]
    start: Option<&'a RawValue>,
    #[serde(borrow)]
    end: Option<&'a RawValue>,
}

/// A tool part's `state`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolState<'a> {
    #[serde(borrow)]
    status: Option<Text<'a>>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    output: Option<AnyText<'a>>,
    #[serde(borrow)]
    error: Option<AnyText<'a>>,
}

/// Any JSON value as text, decoded in one pass: a string's contents
/// (borrowed when it has no escapes), `null` as nothing, anything else
/// as its JSON.
#[derive(Debug)]
struct AnyText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for AnyText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(""))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(""))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Cow::Owned(Value::from(v).to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Cow::Owned(Value::from(v).to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Cow::Owned(Value::from(v).to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Cow::Owned(Value::from(v).to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                Ok(Cow::Owned(
                    Value::deserialize(MapAccessDeserializer::new(map))?.to_string(),
                ))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Ok(Cow::Owned(
                    Value::deserialize(SeqAccessDeserializer::new(seq))?.to_string(),
                ))
            }
        }
        d.deserialize_any(V).map(AnyText)
    }
}

/// A raw value of the row's JSON as an event's: copied as it is, unless
/// it spans lines (whitespace a JSON Lines output cannot carry), then
/// written again compact.
fn raw_value(raw: &RawValue) -> Box<RawValue> {
    if memchr::memchr2(b'\n', b'\r', raw.get().as_bytes()).is_none() {
        return crate::event::raw_copy(raw);
    }
    serde_json::from_str::<Value>(raw.get())
        .map_or_else(|_| crate::event::null_raw(), |v| raw_json(&v))
}

fn raw_or_null(raw: Option<&RawValue>) -> Box<RawValue> {
    raw.map_or_else(crate::event::null_raw, raw_value)
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
        let raw = rec.data.get();
        let session_data: SessionData<'_>;
        let data = match rec.t.0.as_ref() {
            "session" => {
                session_data = decode(raw)?;
                RowData::Session {
                    title: text_of(&session_data.title),
                    directory: text_of(&session_data.directory),
                    version: text_of(&session_data.version),
                }
            }
            "message" => RowData::Message(raw),
            "part" => RowData::Part(raw),
            other => return Err(Malformed::WrongShape(format!("unknown record `{other}`"))),
        };
        let row = Row {
            id: &rec.id.0,
            session_id: text_of(&rec.session_id),
            root: text_of(&rec.root),
            parent_id: text_of(&rec.parent_id),
            role: text_of(&rec.role),
            model: text_of(&rec.model),
            time_created: rec.time_created,
            time_updated: rec.time_updated,
            settle: rec.settle,
            data,
        };
        self.row(offset, &row, out)
    }

    fn state(&self) -> Value {
        serde_json::to_value(&self.position).unwrap_or(Value::Null)
    }

    fn restore(&mut self, state: &Value) -> Result<(), Malformed> {
        self.position = crate::provider::restore_state(state)?;
        Ok(())
    }
}

impl OpenCodeParser {
    /// Map one row to its events (in order, to `out`); the position moves
    /// past it. A `data` that is not the JSON object its kind needs is
    /// refused (the row is skipped and counted by the caller).
    pub fn row(
        &mut self,
        offset: u64,
        rec: &Row<'_>,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let session = rec.session_id.unwrap_or(rec.id);
        let root = rec.root.unwrap_or(session);
        let updated = rec.time_updated.or(rec.time_created).unwrap_or(0);
        let mark = match rec.data {
            RowData::Session { .. } => &mut self.position.session,
            RowData::Message(_) => &mut self.position.message,
            RowData::Part(_) => &mut self.position.part,
        };
        mark.observe(updated, rec.id);
        let child = session != root;
        let ctx = Ctx {
            root,
            subagent: child.then(|| Subagent {
                id: Some(session.to_owned()),
                label: None,
            }),
            timestamp: rec.time_created.and_then(millis_time),
            model: rec.model,
            offset,
            file: child.then_some(session),
        };
        match rec.data {
            RowData::Session {
                title,
                directory,
                version,
            } => {
                let title_value = title;
                let title = title.unwrap_or("");
                let known = self.position.titles.get(rec.id);
                let meta = known.is_none();
                let retitled = known.map(String::as_str) != Some(title);
                session_events(
                    &ctx,
                    rec,
                    (title_value, directory, version),
                    meta,
                    retitled,
                    out,
                );
                if ctx.subagent.is_none() {
                    if retitled {
                        self.position
                            .titles
                            .insert(rec.id.to_owned(), title.to_owned());
                    }
                } else if meta {
                    self.position
                        .titles
                        .insert(rec.id.to_owned(), String::new());
                }
            }
            RowData::Message(data) => {
                let m: MessageData<'_> = decode(data)?;
                message_events(&ctx, rec.id, m.error, out);
            }
            RowData::Part(data) => {
                let p: PartData<'_> = decode(data)?;
                let held = part_events(&ctx, rec, p, data, out);
                self.position.part_read(rec.id, held);
            }
        }
        Ok(())
    }
}

/// A row's `data`, typed; it must be a JSON object (a struct would also
/// take an array, field by field).
fn decode<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, Malformed> {
    if !data.trim_start().starts_with('{') {
        let _: &RawValue = serde_json::from_str(data)
            .map_err(|e| Malformed::from_json_error(data.as_bytes(), &e))?;
        return Err(Malformed::WrongShape("data is not an object".into()));
    }
    serde_json::from_str(data).map_err(|e| Malformed::from_json_error(data.as_bytes(), &e))
}

/// What every event of one record shares.
struct Ctx<'a> {
    root: &'a str,
    subagent: Option<Subagent>,
    timestamp: Option<String>,
    model: Option<&'a str>,
    offset: u64,
    /// A child session's id: its events' `source.file`, so that each
    /// session's events are in order of their own.
    file: Option<&'a str>,
}

impl Ctx<'_> {
    fn event(&self, id: String, record: &str, payload: Payload) -> Event {
        let mut ev = Event::new(
            ID,
            self.root,
            id,
            Source {
                record: record.to_owned().into(),
                offset: self.offset,
                file: self.file.map(Into::into),
            },
            payload,
        );
        ev.timestamp = self.timestamp.as_deref().map(Into::into);
        ev.subagent.clone_from(&self.subagent);
        ev.model = self.model.map(Into::into);
        ev
    }
}

fn millis_time(ms: i64) -> Option<String> {
    let ms = u64::try_from(ms).ok()?;
    Some(crate::audit::rfc3339(ms / 1000, (ms % 1000) as u32))
}

fn session_events(
    ctx: &Ctx<'_>,
    rec: &Row<'_>,
    (title, directory, version): (Option<&str>, Option<&str>, Option<&str>),
    meta: bool,
    retitled: bool,
    out: &mut dyn FnMut(Event),
) {
    if meta {
        let info = serde_json::json!({
            "id": rec.id,
            "title": title,
            "cwd": directory,
            "version": version,
            "parent_id": rec.parent_id,
        });
        out(ctx.event(
            format!("{}:session", rec.id),
            "session",
            Payload::ProviderInfo {
                topic: "session_meta".into(),
                data: raw_json(&info),
            },
        ));
    }
    let title = title.unwrap_or("");
    if ctx.subagent.is_none() && retitled && !title.trim().is_empty() {
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

fn message_events(ctx: &Ctx<'_>, id: &str, error: Option<&RawValue>, out: &mut dyn FnMut(Event)) {
    let Some(error) = error else {
        return;
    };
    let Ok(error) = serde_json::from_str::<Value>(error.get()) else {
        return;
    };
    if error.is_null() {
        return;
    }
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
fn finished(p: &PartData<'_>) -> bool {
    p.time
        .as_ref()
        .is_none_or(|t| t.start.is_none() || t.end.is_some())
}

/// Deliver a part's events; `true` when it is held back unsettled.
// Long because: one arm per part type, the mapping the module docs list.
fn part_events(
    ctx: &Ctx<'_>,
    rec: &Row<'_>,
    mut p: PartData<'_>,
    data: &str,
    out: &mut dyn FnMut(Event),
) -> bool {
    let id = rec.id;
    // A text decoded with escapes is already owned: moved, not copied.
    let take_text = |t: Option<Text<'_>>| t.map(|t| t.0.into_owned()).unwrap_or_default();
    let kind = text_of(&p.kind).unwrap_or("");
    let record = match kind {
        "text" => "part/text",
        "reasoning" => "part/reasoning",
        "tool" => "part/tool",
        _ => "",
    };
    let record = if record.is_empty() {
        Cow::Owned(format!("part/{kind}"))
    } else {
        Cow::Borrowed(record)
    };
    let info = |topic: &str, value: Value| Payload::ProviderInfo {
        topic: topic.into(),
        data: raw_json(&value),
    };
    let system = |category, text: String| Payload::SystemMessage { category, text };
    let payload = match kind {
        "text" => {
            if !rec.settle && !finished(&p) {
                return true;
            }
            if text_of(&p.text).is_none_or(|t| t.trim().is_empty()) {
                return false;
            }
            let text = take_text(p.text.take());
            if p.synthetic == Some(true) {
                system(SystemCategory::InjectedContext, text)
            } else if p.ignored == Some(true) {
                system(SystemCategory::Notice, text)
            } else if rec.role == Some("user") {
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
            if !rec.settle && !finished(&p) {
                return true;
            }
            if text_of(&p.text).is_none_or(|t| t.trim().is_empty()) {
                return false;
            }
            Payload::Thinking {
                text: take_text(p.text.take()),
            }
        }
        "tool" => return tool_events(ctx, rec, p, out),
        "file" => Payload::ProviderInfo {
            topic: "attachment".into(),
            data: fields_json(&[("filename", p.filename), ("mime", p.mime)]),
        },
        "agent" => Payload::ProviderInfo {
            topic: "agent".into(),
            data: fields_json(&[("name", p.name)]),
        },
        "subtask" => {
            let text = text_of(&p.prompt)
                .or_else(|| text_of(&p.description))
                .unwrap_or("")
                .to_owned();
            system(SystemCategory::SubagentPrompt, text)
        }
        "step-start" => return false,
        "step-finish" => Payload::ProviderInfo {
            topic: "token_count".into(),
            data: fields_json(&[("cost", p.cost), ("reason", p.reason), ("tokens", p.tokens)]),
        },
        "snapshot" | "patch" => match serde_json::from_str::<Value>(data) {
            Ok(v) => info(kind, v),
            Err(_) => return false,
        },
        "retry" => {
            let attempt = p
                .attempt
                .and_then(|a| a.get().parse::<u64>().ok())
                .unwrap_or(0);
            system(SystemCategory::Notice, format!("retry (attempt {attempt})"))
        }
        "compaction" => {
            let how = if p.auto == Some(true) {
                "automatic"
            } else {
                "requested"
            };
            system(SystemCategory::Compaction, format!("compaction ({how})"))
        }
        _ => Payload::ProviderRaw {
            record: match serde_json::from_str::<&RawValue>(data) {
                Ok(r) => raw_value(r),
                Err(_) => raw_from_str(data),
            },
        },
    };
    out(ctx.event(id.to_owned(), &record, payload));
    false
}

/// `{"k": v, …}` from raw values (absent ones `null`), keys in the order
/// given (alphabetical, as a JSON map writes them).
fn fields_json(fields: &[(&str, Option<&RawValue>)]) -> Box<RawValue> {
    let mut s = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        s.push_str(k);
        s.push_str("\":");
        s.push_str(raw_or_null(*v).get());
    }
    s.push('}');
    RawValue::from_string(s).unwrap_or_else(|_| crate::event::null_raw())
}

/// A tool part's call and, once settled, result; `true` when held back.
fn tool_events(ctx: &Ctx<'_>, rec: &Row<'_>, p: PartData<'_>, out: &mut dyn FnMut(Event)) -> bool {
    let id = rec.id;
    let mut state = p.state;
    let state_ref = state.as_ref();
    let status = state_ref.and_then(|s| text_of(&s.status)).unwrap_or("");
    let settled = matches!(status, "completed" | "error");
    if !settled && !rec.settle {
        return true;
    }
    let call_id = text_of(&p.call_id).unwrap_or(id).to_owned();
    let name = text_of(&p.tool).unwrap_or("").to_owned();
    let input = raw_or_null(state_ref.and_then(|s| s.input));
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
        return false;
    }
    let is_error = status == "error";
    let output = state
        .as_mut()
        .and_then(|s| {
            if is_error {
                s.error.take()
            } else {
                s.output.take()
            }
        })
        .map(|t| t.0.into_owned())
        .unwrap_or_default();
    out(ctx.event(
        format!("{id}#result"),
        "part/tool",
        Payload::ToolResult {
            tool_call_id: call_id,
            output: output.into(),
            is_error,
        },
    ));
    false
}

#[cfg(test)]
mod tests;
