//! Kimi CLI provider: `~/.kimi/sessions/<md5 of the work dir>/<session id>/`
//! (`$KIMI_SHARE_DIR/sessions` when that variable is set).
//!
//! A session directory holds `context.jsonl` (the model's context),
//! `wire.jsonl` (every event the agent showed its user), `state.json` and,
//! for subagents of older versions, `context_sub_<n>.jsonl`.
//!
//! **The session file is `wire.jsonl`.** It is append-only and never
//! rotated, carries a timestamp on every record and the human's input
//! exactly as typed (`TurnBegin.user_input`); Kimi CLI itself titles a
//! session from it. `context.jsonl` is not read: it has no timestamps, and
//! Kimi CLI *rotates* it — `/clear` and compaction rename it to
//! `context_<n>.jsonl` and start an empty one (then the summary), a revert
//! to a checkpoint renames it and writes back the lines before that
//! checkpoint — so it is not the history, only the model's current view of
//! it; the wire keeps everything that was said. A `context_sub_<n>.jsonl`
//! is a subagent's own context (its wire events are not written anywhere
//! else in those versions) and is read as that subagent's work; newer
//! versions write subagent work into the parent's wire as `SubagentEvent`
//! records, read the same way with the subagent set (and each subagent's
//! own wire under `<session>/subagents/<id>/`, which is not read: its
//! `TurnBegin` is the parent model's prompt).
//!
//! Wire records, `{"timestamp": <epoch seconds>, "message": {"type", "payload"}}`
//! (event ids: `<file tag>:<offset>`, `#<n>` for a further event of a line):
//!
//! * the first line `{"type": "metadata", "protocol_version"}` →
//!   `provider.info` `session_meta`;
//! * `TurnBegin`, `SteerInput` → `user.message` (text parts joined; media
//!   parts counted as attachments): what the human typed;
//! * `ContentPart` `text` → `assistant.message`, `think` →
//!   `assistant.thinking`; `ToolCall` → `assistant.tool.call` (its
//!   `arguments` string as JSON when it parses); `ToolResult` →
//!   `assistant.tool.result` (`return_value.output`, else its `message`;
//!   `is_error`);
//! * `ApprovalRequest`, `QuestionRequest` → `assistant.decision.prompt`;
//!   `ApprovalResponse` (`ApprovalRequestResolved`), `QuestionResponse` →
//!   `user.decision.response`;
//! * `StatusUpdate` → `provider.info` `status` (token usage);
//!   `CompactionBegin` → a compaction system message; `StepInterrupted`,
//!   `Notification` → notices;
//! * `StepBegin`, `TurnEnd`, `CompactionEnd` mark boundaries and map to
//!   nothing; any other type → `provider.raw`.
//!
//! Kimi CLI records no model name in these files (it is in its settings,
//! outside the root): events carry none.
//!
//! The project directory: the CLI names a work directory's folder by the
//! MD5 of its path and lists the paths in `kimi.json` beside `sessions/`
//! (and, in newer versions, each session's path in `session_to_workdir`).
//! `kato sessions` reads that registry and shows the path whose MD5 is the
//! folder's name; a name is never decoded. `kimi.json` is outside the root:
//! the daemon's kimi stage cannot open it; only the one-shot listing reads
//! it ([`Provider::markers_beside`]).
//!
//! Context records of a subagent file: `user` → the subagent prompt (the
//! first) or model input; `assistant` → thinking, text and tool calls;
//! `tool` → tool results; `_system_prompt` → injected context; `_usage` →
//! `provider.info` `token_count`; `_checkpoint` maps to nothing. These
//! records have no timestamps, and events carry none.
//!
//! Commands: none are read from Kimi CLI ([`Provider::carries_commands`]).
//! `TurnBegin`/`SteerInput` records are shown as the human's words, but
//! Kimi CLI writes its own turns in the same record: each node of a flow
//! skill (`SKILL.md` text) and, in print mode, reminders about background
//! tasks whose descriptions the model wrote.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::raw_copy;
use crate::event::{
    raw_from_str, raw_json, record_name, Event, Payload, ProviderId, Source, Subagent,
    SystemCategory,
};
use crate::provider::{
    first_line_object, offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::Kimi;

/// File tag of a session's wire.
const WIRE_TAG: &str = "wire";

/// Label of subagent work.
const SUBAGENT_LABEL: &str = "subagent";

pub struct Kimi;

impl Provider for Kimi {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".kimi/sessions")]
    }

    /// `$KIMI_SHARE_DIR/sessions`.
    fn env_roots(&self, value: &Path) -> Vec<PathBuf> {
        vec![value.join("sessions")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    /// `<work dir hash>/<session>/wire.jsonl` is a session,
    /// `<work dir hash>/<session>/context_sub_<n>.jsonl` a subagent of it;
    /// the session id is the directory name. Nothing deeper is a session:
    /// newer versions also write each subagent's own wire under
    /// `<session>/subagents/<id>/wire.jsonl`, whose `TurnBegin` is the
    /// parent model's prompt, not the human's (the parent's wire carries
    /// that work as `SubagentEvent` records).
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.components().count() != 3 {
            return None;
        }
        by_name(rel)
    }

    /// A file named directly: a wire or a subagent context by its name;
    /// any other name is read as a wire.
    /// No: a `TurnBegin` is what the human typed, but also what Kimi CLI
    /// itself sends as a turn — each node of a flow skill (the text of a
    /// `SKILL.md`, which may come from any repository) and, in print mode,
    /// its reminders about background tasks (with their model-written
    /// descriptions) — in the same record with nothing to tell them apart.
    fn carries_commands(&self) -> bool {
        false
    }

    fn named_file(&self, path: &Path) -> FileCtx {
        by_name(path).unwrap_or_else(|| FileCtx {
            provider: ID,
            file_tag: WIRE_TAG.to_owned(),
            session_hint: stem(path),
            subagent: None,
        })
    }

    /// `<share dir>/kimi.json`, the CLI's registry of work directories,
    /// for a session file in the CLI's layout
    /// (`<share dir>/sessions/<md5>/<session>/<file>`).
    fn project_marker(&self, path: &Path) -> Option<PathBuf> {
        by_name(path)?;
        let hash_dir = path.parent()?.parent()?;
        if !is_md5_name(hash_dir.file_name()?.to_str()?) {
            return None;
        }
        Some(hash_dir.parent()?.parent()?.join(REGISTRY))
    }

    /// The work directory the registry maps the session to: its
    /// `session_to_workdir` entry, else the `work_dirs` path whose MD5 is
    /// the session's folder name (how the CLI names the folder). Never a
    /// decoded name.
    fn project_from_marker(&self, path: &Path, text: &str) -> Option<String> {
        let session = path.parent()?;
        let hash = session.parent()?.file_name()?.to_str()?;
        let reg: Registry = serde_json::from_str(text).ok()?;
        let by_session = session
            .file_name()
            .and_then(|s| s.to_str())
            .and_then(|s| reg.session_to_workdir.get(s))
            .filter(|p| md5::hex(p.as_bytes()) == hash);
        by_session.cloned().or_else(|| {
            reg.work_dirs
                .into_iter()
                .map(|w| w.path)
                .find(|p| md5::hex(p.as_bytes()) == hash)
        })
    }

    /// `kimi.json` beside the sessions root (`kato sessions` only).
    fn markers_beside(&self, root: &Path) -> Vec<PathBuf> {
        root.parent()
            .map(|share| share.join(REGISTRY))
            .into_iter()
            .collect()
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(KimiParser::new(ctx))
    }

    /// The wire's metadata line, or a wire record; a context line (a
    /// `role` and none of the keys other formats put beside one) is weak.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let Some(o) = first_line_object(head) else {
            return Sniff::No;
        };
        if o.get("type").and_then(|t| t.as_str()) == Some("metadata")
            && o.get("protocol_version").is_some_and(|v| v.is_string())
        {
            return Sniff::Exact;
        }
        if o.get("timestamp").is_some_and(|t| t.is_number())
            && o.get("message")
                .is_some_and(|m| m.get("type").is_some() && m.get("payload").is_some())
        {
            return Sniff::Strong;
        }
        if o.get("role").is_some_and(|r| r.is_string())
            && o.keys().all(|k| {
                matches!(
                    k.as_str(),
                    "role"
                        | "content"
                        | "tool_calls"
                        | "tool_call_id"
                        | "token_count"
                        | "id"
                        | "name"
                )
            })
        {
            return Sniff::Weak;
        }
        Sniff::No
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Kimi CLI: each session's wire.jsonl (and subagent contexts), \
                          append-only JSON Lines.",
            env_override: Some("KIMI_SHARE_DIR"),
        }
    }
}

/// The CLI's registry of work directories, beside `sessions/`.
const REGISTRY: &str = "kimi.json";

/// The parts of `kimi.json` that name work directories.
#[derive(Deserialize)]
struct Registry {
    #[serde(default)]
    work_dirs: Vec<WorkDir>,
    #[serde(default)]
    session_to_workdir: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct WorkDir {
    path: String,
}

/// 32 lowercase hex digits.
fn is_md5_name(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parser context kept between lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Whether a subagent context has given its prompt (its first user
    /// message) yet.
    #[serde(default)]
    prompted: bool,
}

struct KimiParser {
    ctx: FileCtx,
    /// A subagent context file (else a wire).
    context: bool,
    state: State,
}

impl KimiParser {
    fn new(ctx: &FileCtx) -> KimiParser {
        KimiParser {
            ctx: ctx.clone(),
            context: ctx.file_tag != WIRE_TAG,
            state: State::default(),
        }
    }
}

impl RecordParser for KimiParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Err(e) => Malformed::from_json_error(bytes, &e),
                    Ok(_) => Malformed::WrongShape("not a JSON object".into()),
                },
            );
        }
        let mut emit = Emitter {
            ctx: &self.ctx,
            offset,
            n: 0,
            timestamp: None,
            subagent: self.ctx.subagent.clone(),
            out,
        };
        if self.context {
            let line: ContextLine<'_> =
                serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
            context_line(&mut emit, &mut self.state, &line, bytes);
        } else {
            wire_line(&mut emit, bytes)?;
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.state).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.state = super::restore_state::<State>(state)?;
        Ok(())
    }
}

/// Epoch seconds (fractional) as RFC 3339 with milliseconds.
fn epoch_time(secs: f64) -> Option<String> {
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return None;
    }
    crate::audit::rfc3339_from_millis((secs * 1000.0).round() as u64)
}

/// One line's bytes as a raw JSON value (a line is one JSON text).
fn compact(bytes: &[u8]) -> Box<RawValue> {
    raw_from_str(std::str::from_utf8(bytes).unwrap_or("null").trim())
}

/// The message types most lines carry: their names are shared by the
/// events, not copied ([`record_name`]).
const RECORDS: &[&str] = &[
    "ContentPart",
    "ToolCall",
    "ToolResult",
    "TurnBegin",
    "StatusUpdate",
    "StepBegin",
    "TurnEnd",
];

/// Pushes the events of one line with consecutive ids.
struct Emitter<'a, 'o> {
    ctx: &'a FileCtx,
    offset: u64,
    n: u32,
    timestamp: Option<String>,
    subagent: Option<Subagent>,
    out: &'o mut dyn FnMut(Event),
}

impl Emitter<'_, '_> {
    fn push(&mut self, record: &str, payload: Payload) {
        let id = offset_id(&self.ctx.file_tag, self.offset, self.n);
        self.n += 1;
        let source = Source {
            record: record_name(record, RECORDS),
            offset: self.offset,
            file: Some(self.ctx.file_tag.as_str().into()),
        };
        let mut ev = Event::new(ID, self.ctx.session_hint.clone(), id, source, payload);
        ev.timestamp = self.timestamp.as_deref().map(Into::into);
        ev.subagent.clone_from(&self.subagent);
        (self.out)(ev);
    }

    fn raw(&mut self, record: &str, json: &[u8]) {
        self.push(
            record,
            Payload::ProviderRaw {
                record: compact(json),
            },
        );
    }

    fn system(&mut self, record: &str, category: SystemCategory, text: String) {
        self.push(record, Payload::SystemMessage { category, text });
    }
}

/// One wire line. Read in one pass when the message's `type` comes before
/// its `payload` (as Kimi writes it): the payload is decoded straight into
/// the shape its type names. Any line that pass cannot take whole (another
/// key order, a payload of an unexpected shape, malformed JSON) is read
/// again the general way, which decides what it becomes.
fn wire_line(emit: &mut Emitter<'_, '_>, bytes: &[u8]) -> Result<(), Malformed> {
    if let Ok(line) = serde_json::from_slice::<FastWireLine>(bytes) {
        if let Some(m) = line.message {
            emit.timestamp = line.timestamp.and_then(epoch_time);
            match m.body {
                Body::Known(known) => {
                    if known.emit(emit, &m.kind) {
                        return Ok(());
                    }
                }
                Body::Status(data) => {
                    let topic = "status".into();
                    emit.push(&m.kind, Payload::ProviderInfo { topic, data });
                    return Ok(());
                }
                Body::Marker => return Ok(()),
                Body::Other => {}
            }
        }
    }
    wire_line_general(emit, bytes)
}

/// The general reading of a wire line: the payload kept as raw JSON, then
/// decoded by its type.
fn wire_line_general(emit: &mut Emitter<'_, '_>, bytes: &[u8]) -> Result<(), Malformed> {
    let line: WireLine<'_> =
        serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
    emit.timestamp = line.timestamp.and_then(epoch_time);
    match (&line.message, line.kind.as_deref()) {
        (Some(m), _) => wire_message(emit, &m.kind, m.payload, bytes),
        (None, Some("metadata")) => emit.push(
            "metadata",
            Payload::ProviderInfo {
                topic: "session_meta".into(),
                data: compact(bytes),
            },
        ),
        _ => emit.raw("line", bytes),
    }
    Ok(())
}

#[derive(Deserialize)]
struct FastWireLine {
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default)]
    message: Option<FastEnvelope>,
    /// Read as the general reading reads it, so that a line it refuses
    /// (a `type` twice, or not a string) is refused here too.
    #[serde(rename = "type", default)]
    _kind: Option<String>,
}

/// A wire message whose payload was decoded by the `type` read before it.
struct FastEnvelope {
    kind: String,
    body: Body,
}

/// The payload shapes of the messages that carry the session's text.
enum Known {
    User(UserInput),
    Part(Part),
    Call(FastToolCall),
    Result(FastToolResult),
}

enum Body {
    Known(Known),
    /// A `StatusUpdate`'s payload, kept as written.
    Status(Box<RawValue>),
    /// A boundary that makes no event (`StepBegin`, `TurnEnd`,
    /// `CompactionEnd`).
    Marker,
    /// Any other type, or a payload read before its type: left to the
    /// general reading.
    Other,
}

impl Known {
    /// The same events [`wire_message`] makes of the same payload; false,
    /// with nothing emitted, for a content part of no known shape (the
    /// general reading keeps the whole line).
    fn emit(self, emit: &mut Emitter<'_, '_>, kind: &str) -> bool {
        match self {
            Known::User(u) => {
                let (text, attachments, _) = u.user_input.split();
                emit.push(kind, Payload::UserMessage { text, attachments });
            }
            Known::Part(part) => return part_event(emit, kind, part),
            Known::Call(c) => emit.push(
                kind,
                Payload::ToolCall {
                    tool_call_id: c.id,
                    name: c.function.name,
                    input: arguments(c.function.arguments.as_deref()),
                },
            ),
            Known::Result(r) => {
                let mut output = r
                    .return_value
                    .output
                    .map(|c| c.into_text())
                    .unwrap_or_default();
                if output.is_empty() {
                    output = r.return_value.message.unwrap_or_default();
                }
                emit.push(
                    kind,
                    Payload::ToolResult {
                        tool_call_id: r.tool_call_id,
                        output: output.into(),
                        is_error: r.return_value.is_error,
                    },
                );
            }
        }
        true
    }
}

impl<'de> Deserialize<'de> for FastEnvelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Key {
            Type,
            Payload,
            #[serde(other)]
            Other,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FastEnvelope;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a wire message")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FastEnvelope, A::Error> {
                use serde::de::Error;
                let mut kind: Option<String> = None;
                let mut body: Option<Body> = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Type if kind.is_some() => {
                            return Err(A::Error::duplicate_field("type"))
                        }
                        Key::Type => kind = Some(map.next_value()?),
                        Key::Payload if body.is_some() => {
                            return Err(A::Error::duplicate_field("payload"))
                        }
                        Key::Payload => {
                            body = Some(match kind.as_deref() {
                                Some("TurnBegin" | "SteerInput") => {
                                    Body::Known(Known::User(map.next_value()?))
                                }
                                Some("ContentPart") => Body::Known(Known::Part(map.next_value()?)),
                                Some("ToolCall") => Body::Known(Known::Call(map.next_value()?)),
                                Some("ToolResult") => Body::Known(Known::Result(map.next_value()?)),
                                Some("StatusUpdate") => Body::Status(map.next_value()?),
                                Some("StepBegin" | "TurnEnd" | "CompactionEnd") => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                    Body::Marker
                                }
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                    Body::Other
                                }
                            })
                        }
                        Key::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(FastEnvelope {
                    kind: kind.ok_or_else(|| A::Error::missing_field("type"))?,
                    body: body.ok_or_else(|| A::Error::missing_field("payload"))?,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A tool call's payload, its arguments kept raw (owned: the fast reading
/// cannot borrow a value it has not yet met).
#[derive(Deserialize)]
struct FastToolCall {
    id: String,
    function: FastFunction,
}

#[derive(Deserialize)]
struct FastFunction {
    name: String,
    #[serde(default)]
    arguments: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct FastToolResult {
    tool_call_id: String,
    return_value: FastReturnValue,
}

#[derive(Deserialize)]
struct FastReturnValue {
    #[serde(default)]
    is_error: bool,
    /// A string or a list of parts; anything else (null included) is left
    /// to the general reading, which keeps it as written.
    #[serde(default, deserialize_with = "some_content")]
    output: Option<Content>,
    #[serde(default)]
    message: Option<String>,
}

fn some_content<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Content>, D::Error> {
    Content::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct WireLine<'a> {
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(borrow, default)]
    message: Option<Envelope<'a>>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// A content part (`ContentPart` payload, user input, context content).
#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    think: Option<String>,
}

/// A user input or a message content: a string or a list of parts.
/// Read in one pass (an untagged enum would buffer the value first).
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Content, E> {
                Ok(Content::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Content, E> {
                Ok(Content::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Content, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

impl Content {
    /// The text parts joined.
    fn into_text(self) -> String {
        match self {
            Content::Text(t) => t,
            parts => parts.split().0,
        }
    }

    /// (text parts joined, media parts, other parts).
    fn split(&self) -> (String, u32, u32) {
        match self {
            Content::Text(t) => (t.clone(), 0, 0),
            Content::Parts(parts) => {
                let mut text = String::new();
                let (mut media, mut other) = (0, 0);
                for p in parts {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(t);
                        }
                        ("image_url" | "audio_url" | "video_url", _) => media += 1,
                        _ => other += 1,
                    }
                }
                (text, media, other)
            }
        }
    }
}

#[derive(Deserialize)]
struct UserInput {
    user_input: Content,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    id: String,
    #[serde(borrow)]
    function: Function<'a>,
}

#[derive(Deserialize)]
struct Function<'a> {
    name: String,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

/// A tool call's arguments: the JSON a string holds when it parses, else
/// the value as written.
fn arguments(raw: Option<&RawValue>) -> Box<RawValue> {
    let Some(raw) = raw else {
        return raw_from_str("null");
    };
    match serde_json::from_str::<String>(raw.get()) {
        Ok(s) => match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(v) => raw_json(&v),
            Err(_) => raw_json(&s),
        },
        Err(_) => raw_copy(raw),
    }
}

#[derive(Deserialize)]
struct ToolResult<'a> {
    tool_call_id: String,
    #[serde(borrow)]
    return_value: ReturnValue<'a>,
}

#[derive(Deserialize)]
struct ReturnValue<'a> {
    #[serde(default)]
    is_error: bool,
    #[serde(borrow, default)]
    output: Option<&'a RawValue>,
    #[serde(default)]
    message: Option<String>,
}

/// A tool output: a string, or the text of a list of parts.
fn output_text(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    match serde_json::from_str::<Content>(raw.get()) {
        Ok(c) => c.split().0,
        Err(_) => raw.get().to_owned(),
    }
}

#[derive(Deserialize)]
struct Request {
    id: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    questions: Option<Vec<Question>>,
}

#[derive(Deserialize)]
struct Question {
    #[serde(default)]
    question: String,
}

#[derive(Deserialize)]
struct Response {
    request_id: String,
    #[serde(default)]
    response: Option<String>,
    #[serde(default)]
    feedback: Option<String>,
    #[serde(default)]
    answers: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct SubagentEvent<'a> {
    #[serde(default)]
    parent_tool_call_id: Option<String>,
    #[serde(default)]
    task_tool_call_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    subagent_type: Option<String>,
    #[serde(borrow)]
    event: Envelope<'a>,
}

/// A content part's event; false when the part is of no known shape.
fn part_event(emit: &mut Emitter<'_, '_>, kind: &str, part: Part) -> bool {
    match (part.kind.as_str(), part.text, part.think) {
        ("text", Some(text), _) => {
            if !text.is_empty() {
                emit.push(kind, Payload::AssistantMessage { text });
            }
            true
        }
        ("think", _, Some(text)) => {
            if !text.is_empty() {
                emit.push(kind, Payload::Thinking { text });
            }
            true
        }
        _ => false,
    }
}

/// Map one wire message; `line` is the whole line (for `provider.raw`).
fn wire_message(emit: &mut Emitter<'_, '_>, kind: &str, payload: &RawValue, line: &[u8]) {
    let p = payload.get();
    let ok = match kind {
        "TurnBegin" | "SteerInput" => serde_json::from_str::<UserInput>(p).is_ok_and(|u| {
            let (text, attachments, _) = u.user_input.split();
            emit.push(kind, Payload::UserMessage { text, attachments });
            true
        }),
        "ContentPart" => {
            serde_json::from_str::<Part>(p).is_ok_and(|part| part_event(emit, kind, part))
        }
        "ToolCall" => serde_json::from_str::<ToolCall<'_>>(p).is_ok_and(|c| {
            emit.push(
                kind,
                Payload::ToolCall {
                    tool_call_id: c.id,
                    name: c.function.name,
                    input: arguments(c.function.arguments),
                },
            );
            true
        }),
        "ToolResult" => serde_json::from_str::<ToolResult<'_>>(p).is_ok_and(|r| {
            let mut output = output_text(r.return_value.output);
            if output.is_empty() {
                output = r.return_value.message.unwrap_or_default();
            }
            emit.push(
                kind,
                Payload::ToolResult {
                    tool_call_id: r.tool_call_id,
                    output: output.into(),
                    is_error: r.return_value.is_error,
                },
            );
            true
        }),
        "ApprovalRequest" | "QuestionRequest" => {
            serde_json::from_str::<Request>(p).is_ok_and(|r| {
                let text = match r.questions {
                    Some(q) => q
                        .into_iter()
                        .map(|q| q.question)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    None => r.description.unwrap_or_default(),
                };
                let name = r.action.unwrap_or_else(|| "question".into());
                emit.push(
                    kind,
                    Payload::DecisionPrompt {
                        prompt_id: r.id,
                        name,
                        text,
                    },
                );
                true
            })
        }
        "ApprovalResponse" | "ApprovalRequestResolved" | "QuestionResponse" => {
            serde_json::from_str::<Response>(p).is_ok_and(|r| {
                let mut text = match (r.response, r.answers) {
                    (Some(resp), _) => resp,
                    (None, Some(a)) => a
                        .iter()
                        .map(|(q, v)| format!("{q}: {}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    (None, None) => String::new(),
                };
                if let Some(f) = r.feedback.filter(|f| !f.is_empty()) {
                    text.push('\n');
                    text.push_str(&f);
                }
                emit.push(
                    kind,
                    Payload::DecisionResponse {
                        prompt_id: r.request_id,
                        text,
                    },
                );
                true
            })
        }
        "StatusUpdate" => {
            emit.push(
                kind,
                Payload::ProviderInfo {
                    topic: "status".into(),
                    data: raw_from_str(p),
                },
            );
            true
        }
        "CompactionBegin" => {
            emit.system(kind, SystemCategory::Compaction, "Context compacted".into());
            true
        }
        "StepInterrupted" => {
            emit.system(kind, SystemCategory::Notice, "Step interrupted".into());
            true
        }
        "Notification" => serde_json::from_str::<Notification>(p).is_ok_and(|n| {
            let text = match (n.title.is_empty(), n.body.is_empty()) {
                (false, false) => format!("{}\n{}", n.title, n.body),
                (false, true) => n.title,
                _ => n.body,
            };
            emit.system(kind, SystemCategory::Notice, text);
            true
        }),
        "StepBegin" | "TurnEnd" | "CompactionEnd" => true,
        "SubagentEvent" => serde_json::from_str::<SubagentEvent<'_>>(p).is_ok_and(|s| {
            // One level: a subagent's own subagents keep the outer label.
            let outer = emit.subagent.take();
            emit.subagent = Some(Subagent {
                id: s.agent_id.or(s.parent_tool_call_id).or(s.task_tool_call_id),
                label: Some(s.subagent_type.unwrap_or_else(|| SUBAGENT_LABEL.into())),
            });
            if matches!(s.event.kind.as_str(), "TurnBegin" | "SteerInput") {
                // The parent agent's words to its subagent, never the human's.
                let text = serde_json::from_str::<UserInput>(s.event.payload.get())
                    .map(|u| u.user_input.split().0)
                    .unwrap_or_default();
                emit.system(&s.event.kind, SystemCategory::SubagentPrompt, text);
            } else {
                wire_message(
                    emit,
                    &s.event.kind,
                    s.event.payload,
                    s.event.payload.get().as_bytes(),
                );
            }
            emit.subagent = outer;
            true
        }),
        _ => false,
    };
    if !ok {
        emit.raw(kind, line);
    }
}

#[derive(Deserialize)]
struct ContextLine<'a> {
    role: String,
    #[serde(default)]
    content: Option<Content>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(borrow, default)]
    token_count: Option<&'a RawValue>,
}

fn context_line(
    emit: &mut Emitter<'_, '_>,
    state: &mut State,
    line: &ContextLine<'_>,
    bytes: &[u8],
) {
    let role = line.role.as_str();
    match role {
        "user" => {
            let (text, _, _) = line
                .content
                .as_ref()
                .map(Content::split)
                .unwrap_or_default();
            let category = if state.prompted {
                SystemCategory::ModelInput
            } else {
                SystemCategory::SubagentPrompt
            };
            state.prompted = true;
            emit.system(role, category, text);
        }
        "assistant" => {
            match &line.content {
                Some(Content::Text(t)) if !t.is_empty() => {
                    emit.push(role, Payload::AssistantMessage { text: t.clone() })
                }
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        match (p.kind.as_str(), &p.text, &p.think) {
                            ("text", Some(t), _) if !t.is_empty() => {
                                emit.push(role, Payload::AssistantMessage { text: t.clone() })
                            }
                            ("think", _, Some(t)) if !t.is_empty() => {
                                emit.push(role, Payload::Thinking { text: t.clone() })
                            }
                            ("text" | "think", _, _) => {}
                            _ => emit.push(
                                role,
                                Payload::ProviderRaw {
                                    record: raw_json(&serde_json::json!({"type": p.kind})),
                                },
                            ),
                        }
                    }
                }
                _ => {}
            }
            for c in line.tool_calls.iter().flatten() {
                emit.push(
                    "assistant/tool_call",
                    Payload::ToolCall {
                        tool_call_id: c.id.clone(),
                        name: c.function.name.clone(),
                        input: arguments(c.function.arguments),
                    },
                );
            }
        }
        "tool" => {
            let output = line
                .content
                .as_ref()
                .map(|c| c.split().0)
                .unwrap_or_default();
            match &line.tool_call_id {
                Some(id) => emit.push(
                    role,
                    Payload::ToolResult {
                        tool_call_id: id.clone(),
                        output: output.into(),
                        is_error: false,
                    },
                ),
                None => emit.raw(role, bytes),
            }
        }
        "_system_prompt" => {
            let (text, _, _) = line
                .content
                .as_ref()
                .map(Content::split)
                .unwrap_or_default();
            emit.system(role, SystemCategory::InjectedContext, text);
        }
        "_usage" => match line.token_count {
            Some(t) => emit.push(
                role,
                Payload::ProviderInfo {
                    topic: "token_count".into(),
                    data: raw_copy(t),
                },
            ),
            None => emit.raw(role, bytes),
        },
        "_checkpoint" => {}
        _ => emit.raw(role, bytes),
    }
}

mod md5;

/// What a file is by its name and its parent's, wherever it lies: a wire
/// or a subagent context of the session named by the parent directory.
/// [`Provider::classify`] takes it only at the depth of the CLI's layout.
fn by_name(rel: &Path) -> Option<FileCtx> {
    let name = rel.file_name()?.to_str()?;
    let session = rel.parent()?.file_name()?.to_str()?.to_owned();
    if name == "wire.jsonl" {
        return Some(FileCtx {
            provider: ID,
            file_tag: WIRE_TAG.to_owned(),
            session_hint: session,
            subagent: None,
        });
    }
    let n = name.strip_prefix("context_sub_")?.strip_suffix(".jsonl")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tag = format!("sub_{n}");
    Some(FileCtx {
        provider: ID,
        subagent: Some(Subagent {
            id: Some(tag.clone()),
            label: Some(SUBAGENT_LABEL.to_owned()),
        }),
        file_tag: tag,
        session_hint: session,
    })
}

#[cfg(test)]
mod tests;
