//! Gemini CLI provider: `~/.gemini/tmp/<project>/chats/…json`.
//!
//! A session is one pretty-printed JSON document that the CLI rewrites in
//! place as the session grows ([`SourceKind::Document`]): the reader hands the
//! whole document to [`RecordParser::record`] every time the file changes.
//! The parser remembers how many messages it has delivered and the id of
//! the last one, and delivers only what is new:
//!
//! * messages after the remembered index are mapped and delivered;
//! * the last delivered message is mapped again, because the CLI keeps
//!   adding tool calls (and their results) to the newest `gemini` message;
//!   events of it that were not delivered yet are delivered now;
//! * when the document has fewer messages than were delivered, or the
//!   message at the remembered index has another id, the document was
//!   replaced or rewound: delivery starts over from message 0. Event ids are
//!   message ids, so consumers dedupe what they already have.
//!
//! File layout:
//!
//! * `<project>/chats/session-<UTC time>-<first 8 hex of sessionId>.json`:
//!   a main session; its session id is the document's `sessionId`.
//! * `<project>/chats/<parent session uuid>/<id>.json`: a subagent chat.
//!   The directory name is the only link to the parent, so the parent uuid
//!   is the session id and the file's own `sessionId` names the subagent.
//!
//! Mapping of `messages[]` (event ids in parentheses; `id` is the message id):
//!
//! * `user` → `user.message` (`id`) with what the human typed: `displayContent`
//!   when present (the `content` then also holds expanded `@file` text, kept
//!   as an injected-context system message (`id#context`)), else the content
//!   up to the `--- Content from referenced files ---` line the CLI writes
//!   before such text (the rest is the injected context); a "User steering
//!   update" wrapper is split into the typed text and its injected
//!   instructions (`id#context`). In subagent chats user-role text comes from
//!   the parent agent or the CLI, never from the human: the first one is the
//!   subagent prompt, later ones model input.
//! * `functionResponse` parts in user content repeat a tool result already
//!   recorded inline in an earlier tool call; such exact repeats are not
//!   delivered twice. Any other one is an `assistant.tool.result`
//!   (`id#response-n`).
//! * `gemini` → `assistant.thinking` per thought (`id#thought-n`),
//!   `assistant.message` (`id`) unless the text is empty, then per tool call
//!   `assistant.tool.call` (`id#call-n`) and, once it has finished,
//!   `assistant.tool.result` (`id#result-n`). `resultDisplay` is only what
//!   the CLI showed and is not used.
//! * `info`/`warning` → notice, `error` → error system messages (`id`).
//! * Top-level fields other than `messages` (`sessionId`, `projectHash`,
//!   `startTime`, `lastUpdated`, `kind`, `summary`, `directories`, …) → one
//!   `provider.info` `session_meta` (`<file tag>#session_meta`), delivered
//!   once, with the first delivery (and again after a start-over); later
//!   changes to these fields (`lastUpdated`, a late `summary`) are not
//!   delivered again.
//! * Events carry the message's timestamp (thoughts and tool results their
//!   own) and, for `gemini` messages, the message's model.
//! * Anything else (unknown message types, message parts of unknown kinds,
//!   messages whose fields have unexpected types) → `provider.raw`, so one bad
//!   message never loses the others. Only a document that is not JSON, not
//!   an object or has no `messages` array is [`Malformed`].

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::{raw_from_str, Event, Payload, ProviderId, Source, Subagent, SystemCategory};
use crate::json_str::{self, Segment};
use crate::provider::{
    first_line_object, indexed_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::Gemini;

/// Label of subagent work in Gemini chats.
const SUBAGENT_LABEL: &str = "subagent";

/// The line the CLI writes before the text of the files `@path` names.
pub(super) const REFERENCES_MARKER: &str = "--- Content from referenced files ---";

/// Prefix of the CLI's wrapper around text typed while the agent works.
const STEERING_PREFIX: &str = "User steering update:";

pub struct Gemini;

impl Provider for Gemini {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".gemini").join("tmp")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Document
    }

    /// `…/chats/session-*.json` is a main session, `…/chats/<uuid>/*.json` a
    /// subagent chat. Only the trailing components are looked at, so the
    /// same answer comes for a path relative to the root and an absolute one.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.extension()?.to_str()? != "json" {
            return None;
        }
        let file_tag = stem(rel);
        let parent = rel.parent()?;
        let parent_name = parent.file_name()?.to_str()?;
        if parent_name == "chats" {
            let rest = file_tag.strip_prefix("session-")?;
            // The name ends in the first 8 hex digits of the session id: a
            // prefix of the real id, which the CLI accepts as an address.
            let hint = rest
                .rsplit('-')
                .next()
                .filter(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .map_or_else(|| file_tag.clone(), str::to_owned);
            return Some(FileCtx {
                provider: ID,
                file_tag,
                session_hint: hint,
                subagent: None,
            });
        }
        let grandparent = parent.parent()?.file_name()?.to_str()?;
        if grandparent == "chats" && is_uuid(parent_name) {
            return Some(FileCtx {
                provider: ID,
                subagent: Some(Subagent {
                    id: Some(file_tag.clone()),
                    label: Some(SUBAGENT_LABEL.to_owned()),
                }),
                file_tag,
                session_hint: parent_name.to_owned(),
            });
        }
        None
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(DocParser {
            ctx: ctx.clone(),
            state: State::default(),
        })
    }

    // Recognition and configuration (the provider seam).

    /// A pretty-printed document (a first line that is just `{`): exact
    /// when it names a `sessionId` and `messages`, else only strong (other agents write
    /// pretty-printed documents too); or one on a single line with
    /// `messages` and `sessionId`.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        if first.trim_ascii() == b"{" {
            let has = |key: &[u8]| memchr::memmem::find(head, key).is_some();
            return if has(b"\"sessionId\"") && has(b"\"messages\"") {
                Sniff::Exact
            } else {
                Sniff::Strong
            };
        }
        match first_line_object(head) {
            Some(o) if o.contains_key("messages") && o.contains_key("sessionId") => Sniff::Exact,
            _ => Sniff::No,
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Gemini CLI: one JSON chat document per session, rewritten as it grows.",
            env_override: None,
        }
    }
}

/// `8-4-4-4-12` hex digits.
pub(super) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What has been delivered from one document so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Number of messages delivered.
    delivered: usize,
    /// `id` of the last delivered message.
    last_id: Option<String>,
    /// Event ids already delivered for the last delivered message.
    last_events: Vec<String>,
    /// Whether `session_meta` has been delivered.
    meta: bool,
}

struct DocParser {
    ctx: FileCtx,
    state: State,
}

impl RecordParser for DocParser {
    fn record(
        &mut self,
        _offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let top: Obj<'_> =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let doc = Doc::new(&self.ctx, &top)?;
        let n = doc.messages.len();

        let st = &mut self.state;
        let rewritten = st.delivered > n
            || (st.delivered > 0
                && doc
                    .heads
                    .get(st.delivered - 1)
                    .and_then(|h| h.id.as_deref())
                    != st.last_id.as_deref());
        if rewritten {
            *st = State::default();
        }
        if !st.meta {
            out(doc.session_meta(&top));
            st.meta = true;
        }
        if st.delivered > 0 {
            // The newest message may have grown since it was delivered.
            let i = st.delivered - 1;
            for ev in doc.map_message(i) {
                if !st.last_events.contains(&ev.event_id) {
                    st.last_events.push(ev.event_id.clone());
                    out(ev);
                }
            }
        }
        for i in st.delivered..n {
            let events = doc.map_message(i);
            if i + 1 == n {
                st.last_events = events.iter().map(|e| e.event_id.clone()).collect();
            }
            events.into_iter().for_each(&mut *out);
        }
        if n > st.delivered {
            st.delivered = n;
            st.last_id = doc.heads.get(n - 1).and_then(|h| h.id.clone());
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.state).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.state = if state.is_null() {
            State::default()
        } else {
            State::deserialize(state).map_err(|e| Malformed::WrongShape(e.to_string()))?
        };
        Ok(())
    }
}

/// A JSON object as its entries in document order, values left unparsed.
struct Obj<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Obj<'a> {
    /// The value of `key` (the last one, as JavaScript reads duplicates).
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    fn get_str(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
    }
}

impl<'de> Deserialize<'de> for Obj<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjVisitor;
        impl<'de> Visitor<'de> for ObjVisitor {
            type Value = Obj<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Obj<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Obj(entries))
            }
        }
        d.deserialize_map(ObjVisitor)
    }
}

/// The fields every message is expected to have, read leniently (any of
/// them may be missing or of another type without failing).
#[derive(Default)]
struct Head {
    id: Option<String>,
    kind: Option<String>,
    timestamp: Option<String>,
}

impl Head {
    fn of(raw: &RawValue) -> Head {
        let Ok(obj) = serde_json::from_str::<Obj<'_>>(raw.get()) else {
            return Head::default();
        };
        Head {
            id: obj.get_str("id"),
            kind: obj.get_str("type"),
            timestamp: obj.get_str("timestamp"),
        }
    }
}

/// A message read strictly: a field of an unexpected type makes the whole
/// message `provider.raw`.
#[derive(Deserialize)]
pub(super) struct Message<'a> {
    #[serde(borrow, default)]
    pub(super) content: Option<&'a RawValue>,
    #[serde(rename = "displayContent", borrow, default)]
    pub(super) display_content: Option<&'a RawValue>,
    #[serde(default)]
    pub(super) model: Option<String>,
    #[serde(borrow, default)]
    pub(super) thoughts: Option<Vec<Thought<'a>>>,
    #[serde(rename = "toolCalls", borrow, default)]
    pub(super) tool_calls: Option<Vec<ToolCall<'a>>>,
}

/// Strings are borrowed from the record when they hold no escape.
#[derive(Deserialize)]
pub(super) struct Thought<'a> {
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    timestamp: Option<Cow<'a, str>>,
}

/// A tool call; `R` is how its result parts are read: as written, to be
/// read one by one when mapped ([`Parts`]), or strictly in the same pass
/// as the record (`Vec<ReadPart>`, the JSON Lines chats' fast path).
#[derive(Deserialize)]
pub(super) struct ToolCall<'a, R = Parts<'a>> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
    #[serde(default = "Option::default")]
    result: Option<R>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    timestamp: Option<Cow<'a, str>>,
}

impl<'a> ToolCall<'a, Vec<ReadPart>> {
    /// The call as the mapping takes it.
    pub(super) fn into_mapped(self) -> ToolCall<'a> {
        ToolCall {
            id: self.id,
            name: self.name,
            args: self.args,
            result: self.result.map(Parts::Read),
            status: self.status,
            timestamp: self.timestamp,
        }
    }
}

/// A tool call's result parts.
pub(super) enum Parts<'a> {
    /// As written: each is read when mapped, whatever its shape.
    Raw(Vec<&'a RawValue>),
    /// Already read, every one a usual response part.
    Read(Vec<ReadPart>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Parts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::deserialize(d).map(Parts::Raw)
    }
}

impl Parts<'_> {
    /// Every part read, in order.
    fn into_read(self) -> Vec<ReadPart> {
        match self {
            Parts::Read(parts) => parts,
            Parts::Raw(parts) => parts.into_iter().map(read_raw_part).collect(),
        }
    }
}

/// Only the tool-call ids and results of a message (duplicate detection).
#[derive(Deserialize)]
struct CallsOnly<'a> {
    #[serde(rename = "toolCalls", borrow, default)]
    tool_calls: Option<Vec<CallResult<'a>>>,
}

#[derive(Deserialize)]
struct CallResult<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(borrow, default)]
    result: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct FunctionResponse<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
}

/// One element of a content parts list (a string or a `Part` object).
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default)]
    text: Option<String>,
    #[serde(rename = "functionResponse", borrow, default)]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(rename = "inlineData", borrow, default)]
    inline_data: Option<&'a RawValue>,
    #[serde(rename = "fileData", borrow, default)]
    file_data: Option<&'a RawValue>,
}

/// A content part, classified.
enum Piece<'a> {
    Text(String),
    Response(FunctionResponse<'a>),
    /// Inline or file data (images, files) that is not rendered.
    Attachment,
    Other(&'a RawValue),
}

/// Split `content` (a string, a parts array, or one part) into pieces.
/// `None` for a content of another type.
fn pieces(content: Option<&RawValue>) -> Option<Vec<Piece<'_>>> {
    let Some(content) = content else {
        return Some(Vec::new());
    };
    let json = content.get();
    match json.trim_start().as_bytes().first() {
        Some(b'n') => Some(Vec::new()),
        Some(b'"') => serde_json::from_str::<String>(json)
            .ok()
            .map(|s| vec![Piece::Text(s)]),
        Some(b'[') => {
            let parts: Vec<&RawValue> = serde_json::from_str(json).ok()?;
            Some(parts.into_iter().map(piece).collect())
        }
        Some(b'{') => Some(vec![piece(content)]),
        _ => None,
    }
}

fn piece(raw: &RawValue) -> Piece<'_> {
    // Only a string can read as one (and an attempt that fails costs an
    // error message).
    if raw.get().trim_start().starts_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(raw.get()) {
            return Piece::Text(s);
        }
    }
    match serde_json::from_str::<Part<'_>>(raw.get()) {
        Ok(Part {
            text: Some(t),
            function_response: None,
            ..
        }) => Piece::Text(t),
        Ok(Part {
            text: None,
            function_response: Some(fr),
            ..
        }) => Piece::Response(fr),
        Ok(Part {
            text: None,
            function_response: None,
            inline_data,
            file_data,
        }) if inline_data.is_some() || file_data.is_some() => Piece::Attachment,
        _ => Piece::Other(raw),
    }
}

/// The text pieces joined, as the CLI itself joins parts.
fn text_of(pieces: &[Piece<'_>]) -> String {
    pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// Split a user text the CLI stored without `displayContent` into (typed
/// text, injected context): the CLI writes the text of `@file` references
/// after the typed words, from [`REFERENCES_MARKER`] on. Whatever follows
/// the first marker is file text, whatever it holds.
pub(super) fn split_references(mut text: String) -> (String, String) {
    let Some(at) = text.find(REFERENCES_MARKER) else {
        return (text, String::new());
    };
    let context = text.split_off(at);
    text.truncate(text.trim_end().len());
    (text, context)
}

/// Split a steering update into (typed text, the CLI's wrapper around it).
fn split_steering(text: &str) -> Option<(String, String)> {
    if !text.starts_with(STEERING_PREFIX) {
        return None;
    }
    let open = text.find("<user_input>")?;
    let body_start = open + "<user_input>".len();
    let close = body_start + text.get(body_start..)?.find("</user_input>")?;
    let typed = text.get(body_start..close)?.trim_matches('\n').to_owned();
    let before = text.get(..open)?.trim_end();
    let after = text.get(close + "</user_input>".len()..)?.trim_start();
    let wrapper = match (before.is_empty(), after.is_empty()) {
        (_, true) => before.to_owned(),
        (true, false) => after.to_owned(),
        (false, false) => format!("{before}\n{after}"),
    };
    Some((typed, wrapper))
}

/// The output text of a `functionResponse.response` and whether it is an
/// error response.
pub(super) fn response_output(response: Option<&RawValue>) -> (String, bool) {
    let Some(response) = response else {
        return (String::new(), false);
    };
    let Ok(obj) = serde_json::from_str::<Obj<'_>>(response.get()) else {
        return (plain(response), false);
    };
    let output = obj.get("output").map(plain);
    let error = obj.get("error").map(plain);
    match (output, error) {
        (Some(o), None) => (o, false),
        (None, Some(e)) => (e, true),
        (Some(o), Some(e)) => (format!("{o}\n{e}"), true),
        (None, None) => (compact_string(response.get()), false),
    }
}

/// A JSON string's text, or any other value as compact JSON.
fn plain(raw: &RawValue) -> String {
    match json_str::decode_literal(raw.get().trim()) {
        Ok(s) => s.into_owned(),
        Err(_) => compact_string(raw.get()),
    }
}

/// Valid JSON with the whitespace between tokens removed (the document is
/// pretty-printed; exported values must stay on one line). Key order and
/// number spelling are kept as written.
pub(super) fn compact_string(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for seg in json_str::segments(json) {
        match seg {
            Segment::String(s) => out.push_str(s),
            Segment::Other(s) => {
                out.extend(s.chars().filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r')))
            }
        }
    }
    out
}

fn compact(raw: &RawValue) -> Box<RawValue> {
    raw_from_str(&compact_string(raw.get()))
}

/// The record types events usually come from: their names are shared,
/// not copied for each event.
const RECORDS: &[&str] = &["gemini", "user", "info", "warning", "error", "message"];

/// One parse of the whole document.
struct Doc<'a> {
    file_tag: &'a str,
    session_id: String,
    subagent: Option<Subagent>,
    messages: Vec<&'a RawValue>,
    heads: Vec<Head>,
    /// Index of the first `user` message (subagent prompt detection).
    first_user: Option<usize>,
    /// Whether an event id was already delivered (a message the chat
    /// wrote again): such an event of a model message is not built.
    delivered: Option<&'a dyn Fn(&str) -> bool>,
}

impl<'a> Doc<'a> {
    fn new(ctx: &'a FileCtx, top: &Obj<'a>) -> Result<Doc<'a>, Malformed> {
        let raw = top
            .get("messages")
            .ok_or_else(|| Malformed::WrongShape("no `messages` array".into()))?;
        let messages: Vec<&RawValue> = serde_json::from_str(raw.get())
            .map_err(|e| Malformed::WrongShape(format!("`messages` is not an array: {e}")))?;
        let heads: Vec<Head> = messages.iter().map(|m| Head::of(m)).collect();
        let first_user = heads.iter().position(|h| h.kind.as_deref() == Some("user"));
        let doc_id = top.get_str("sessionId").filter(|s| !s.is_empty());
        let doc_is_subagent = top.get_str("kind").as_deref() == Some(SUBAGENT_LABEL);
        let (session_id, subagent) = match &ctx.subagent {
            Some(s) => (
                ctx.session_hint.clone(),
                Some(Subagent {
                    id: doc_id.or_else(|| s.id.clone()),
                    label: s.label.clone(),
                }),
            ),
            // A subagent chat away from its parent's directory: the parent
            // is unknown, so it stands as its own session.
            None if doc_is_subagent => (
                doc_id.clone().unwrap_or_else(|| ctx.session_hint.clone()),
                Some(Subagent {
                    id: doc_id,
                    label: Some(SUBAGENT_LABEL.to_owned()),
                }),
            ),
            None => (doc_id.unwrap_or_else(|| ctx.session_hint.clone()), None),
        };
        Ok(Doc {
            file_tag: &ctx.file_tag,
            session_id,
            subagent,
            messages,
            heads,
            first_user,
            delivered: None,
        })
    }

    fn event(&self, id: String, record: &str, index: usize, payload: Payload) -> Event {
        let source = Source {
            record: crate::event::record_name(record, RECORDS),
            offset: index as u64,
            file: Some(self.file_tag.to_owned().into()),
        };
        let mut ev = Event::new(ID, self.session_id.clone(), id, source, payload);
        ev.subagent = self.subagent.clone();
        ev
    }

    /// Every top-level field except `messages`, in document order.
    fn session_meta(&self, top: &Obj<'_>) -> Event {
        let mut data = String::from("{");
        for (key, value) in top.0.iter().filter(|(k, _)| k != "messages") {
            if data.len() > 1 {
                data.push(',');
            }
            data.push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"\"".into()));
            data.push(':');
            data.push_str(&compact_string(value.get()));
        }
        data.push('}');
        let mut ev = self.event(
            format!("{}#session_meta", self.file_tag),
            "session",
            0,
            Payload::ProviderInfo {
                topic: "session_meta".into(),
                data: raw_from_str(&data),
            },
        );
        ev.timestamp = top.get_str("startTime").map(Into::into);
        ev
    }

    /// All events of message `i`, in order.
    fn map_message(&self, i: usize) -> Vec<Event> {
        let (Some(raw), Some(head)) = (self.messages.get(i), self.heads.get(i)) else {
            return Vec::new();
        };
        let id = head
            .id
            .clone()
            .unwrap_or_else(|| format!("{}:msg-{i}", self.file_tag));
        let record = head.kind.as_deref().unwrap_or("message");
        let mapped = match head.kind.as_deref() {
            Some(kind @ ("user" | "gemini" | "info" | "warning" | "error")) => {
                serde_json::from_str::<Message<'_>>(raw.get())
                    .ok()
                    .and_then(|m| self.map_known(i, &id, kind, m))
            }
            _ => None,
        };
        let mut events = mapped.unwrap_or_else(|| {
            vec![self.event(
                id.clone(),
                record,
                i,
                Payload::ProviderRaw {
                    record: compact(raw),
                },
            )]
        });
        for ev in &mut events {
            if ev.timestamp.is_none() {
                ev.timestamp = head.timestamp.as_deref().map(Into::into);
            }
        }
        events
    }

    /// `None` when a field has a shape the mapping does not know.
    fn map_known(&self, i: usize, id: &str, kind: &str, m: Message<'_>) -> Option<Vec<Event>> {
        let content = pieces(m.content)?;
        let mut out = Vec::new();
        match kind {
            "user" => self.map_user(i, id, &m, &content, &mut out)?,
            "gemini" => self.map_gemini(i, id, m, &content, &mut out),
            _ => {
                let category = if kind == "error" {
                    SystemCategory::Error
                } else {
                    SystemCategory::Notice
                };
                let text = text_of(&content);
                if !text.trim().is_empty() {
                    out.push(self.event(
                        id.to_owned(),
                        kind,
                        i,
                        Payload::SystemMessage { category, text },
                    ));
                }
                self.leftover_parts(i, id, kind, &content, &mut out);
            }
        }
        Some(out)
    }

    fn map_user(
        &self,
        i: usize,
        id: &str,
        m: &Message<'_>,
        content: &[Piece<'_>],
        out: &mut Vec<Event>,
    ) -> Option<()> {
        let content_text = text_of(content);
        if self.subagent.is_some() {
            let category = if self.first_user == Some(i) {
                SystemCategory::SubagentPrompt
            } else {
                SystemCategory::ModelInput
            };
            if !content_text.trim().is_empty() {
                out.push(self.event(
                    id.to_owned(),
                    "user",
                    i,
                    Payload::SystemMessage {
                        category,
                        text: content_text,
                    },
                ));
            }
        } else {
            let display = match m.display_content {
                Some(d) if d.get() != "null" => Some(pieces(Some(d))?),
                _ => None,
            };
            let (typed, context) = match display {
                Some(display) => (text_of(&display), content_text),
                None => split_references(content_text),
            };
            let (typed, context) = match split_steering(&typed) {
                Some((t, wrapper)) if context.is_empty() => (t, wrapper),
                Some((t, _)) => (t, context),
                None => (typed, context),
            };
            let attachments = content
                .iter()
                .filter(|p| matches!(p, Piece::Attachment))
                .count();
            if !typed.trim().is_empty() || attachments > 0 {
                out.push(self.event(
                    id.to_owned(),
                    "user",
                    i,
                    Payload::UserMessage {
                        text: typed,
                        attachments: u32::try_from(attachments).unwrap_or(u32::MAX),
                    },
                ));
            }
            if !context.trim().is_empty() {
                out.push(self.event(
                    [id, "#context"].concat(),
                    "user",
                    i,
                    Payload::SystemMessage {
                        category: SystemCategory::InjectedContext,
                        text: context,
                    },
                ));
            }
        }
        self.leftover_parts(i, id, "user", content, out);
        Some(())
    }

    fn map_gemini(
        &self,
        i: usize,
        id: &str,
        m: Message<'_>,
        content: &[Piece<'_>],
        out: &mut Vec<Event>,
    ) {
        let model = m.model.filter(|s| !s.is_empty());
        let start = out.len();
        let delivered = |event_id: &str| self.delivered.is_some_and(|d| d(event_id));
        for (n, t) in m.thoughts.iter().flatten().enumerate() {
            let subject = t.subject.as_deref().unwrap_or("").trim();
            let description = t.description.as_deref().unwrap_or("").trim();
            let event_id = indexed_id(id, "#thought-", n);
            if delivered(&event_id) {
                continue;
            }
            let text = match (subject.is_empty(), description.is_empty()) {
                (true, true) => continue,
                (false, true) => format!("**{subject}**"),
                (true, false) => description.to_owned(),
                (false, false) => ["**", subject, "**\n\n", description].concat(),
            };
            let mut ev = self.event(event_id, "gemini", i, Payload::Thinking { text });
            ev.timestamp = t.timestamp.as_deref().map(Into::into);
            out.push(ev);
        }
        if !delivered(id) {
            let text = text_of(content);
            if !text.trim().is_empty() {
                out.push(self.event(
                    id.to_owned(),
                    "gemini",
                    i,
                    Payload::AssistantMessage { text },
                ));
            }
        }
        self.leftover_parts(i, id, "gemini", content, out);
        for (n, call) in m.tool_calls.into_iter().flatten().enumerate() {
            let input = call.args.map(compact).unwrap_or_else(|| raw_from_str("{}"));
            let ev = self.event(
                indexed_id(id, "#call-", n),
                "gemini",
                i,
                Payload::ToolCall {
                    tool_call_id: call.id.to_string(),
                    name: call.name.to_string(),
                    input,
                },
            );
            out.push(ev);
            // The call keeps the message's time: the CLI updates a call's
            // own timestamp while it runs, and the result carries it.
            let timestamp = call.timestamp.as_deref().map(str::to_owned);
            if let Some(result) = tool_result(call) {
                let mut ev = self.event(indexed_id(id, "#result-", n), "gemini", i, result);
                ev.timestamp = timestamp.map(Into::into);
                out.push(ev);
            }
        }
        for ev in out.iter_mut().skip(start) {
            ev.model = model.as_deref().map(Into::into);
        }
    }

    /// Parts that are neither text nor attachments: tool responses sent back
    /// to the model, and parts of unknown kinds.
    fn leftover_parts(
        &self,
        i: usize,
        id: &str,
        record: &str,
        content: &[Piece<'_>],
        out: &mut Vec<Event>,
    ) {
        for (n, p) in content.iter().enumerate() {
            match p {
                Piece::Response(fr) => {
                    if self.is_repeat(i, fr) {
                        continue;
                    }
                    let (output, is_error) = response_output(fr.response);
                    let tool_call_id = fr
                        .id
                        .clone()
                        .or_else(|| fr.name.clone())
                        .unwrap_or_else(|| indexed_id(id, "#response-", n));
                    out.push(self.event(
                        indexed_id(id, "#response-", n),
                        record,
                        i,
                        Payload::ToolResult {
                            tool_call_id,
                            output: output.into(),
                            is_error,
                        },
                    ));
                }
                Piece::Other(raw) => out.push(self.event(
                    indexed_id(id, "#part-", n),
                    record,
                    i,
                    Payload::ProviderRaw {
                        record: compact(raw),
                    },
                )),
                Piece::Text(_) | Piece::Attachment => {}
            }
        }
    }

    /// True when an earlier message has a tool call with this response's id
    /// whose inline result holds the same response.
    fn is_repeat(&self, before: usize, fr: &FunctionResponse<'_>) -> bool {
        let Some(call_id) = fr.id.as_deref() else {
            return false;
        };
        let wanted = fr
            .response
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok());
        self.messages
            .iter()
            .take(before)
            .zip(&self.heads)
            .rev()
            .filter(|(_, h)| h.kind.as_deref() == Some("gemini"))
            .filter_map(|(m, _)| serde_json::from_str::<CallsOnly<'_>>(m.get()).ok())
            .flat_map(|m| m.tool_calls.unwrap_or_default())
            .filter(|c| c.id.as_deref() == Some(call_id))
            .flat_map(|c| c.result.unwrap_or_default())
            .any(|part| {
                let Ok(Part {
                    function_response: Some(prev),
                    ..
                }) = serde_json::from_str::<Part<'_>>(part.get())
                else {
                    return false;
                };
                prev.id.as_deref() == Some(call_id)
                    && prev
                        .response
                        .and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok())
                        == wanted
            })
    }
}

/// The events of one message mapped alone, as in a document: the JSON
/// Lines chats ([`super::gemini_jsonl`]) hold the same message records,
/// one a line. `first_user`: no `user` message came before it (the prompt
/// of a subagent chat). Repeated tool responses are the caller's to drop.
pub(super) fn map_message_alone(
    file_tag: &str,
    session_id: String,
    subagent: Option<Subagent>,
    first_user: bool,
    raw: &RawValue,
) -> Vec<Event> {
    let head = Head::of(raw);
    let is_user = head.kind.as_deref() == Some("user");
    let doc = Doc {
        file_tag,
        session_id,
        subagent,
        messages: vec![raw],
        heads: vec![head],
        first_user: (first_user && is_user).then_some(0),
        delivered: None,
    };
    doc.map_message(0)
}

/// The events of one message whose fields were already read (the JSON
/// Lines chats read a line once): as [`map_message_alone`] gives for a
/// message of this `kind`, before timestamps are filled in; `None` when
/// the mapping does not know the kind or a field's shape (the caller then
/// takes [`map_message_alone`]). A model message's events whose ids
/// `delivered` knows are left out.
pub(super) fn map_known_alone(
    file_tag: &str,
    session_id: String,
    subagent: Option<Subagent>,
    first_user: bool,
    (id, kind): (&str, &str),
    m: Message<'_>,
    delivered: Option<&dyn Fn(&str) -> bool>,
) -> Option<Vec<Event>> {
    if !matches!(kind, "user" | "gemini" | "info" | "warning" | "error") {
        return None;
    }
    let doc = Doc {
        file_tag,
        session_id,
        subagent,
        messages: Vec::new(),
        heads: Vec::new(),
        first_user: (first_user && kind == "user").then_some(0),
        delivered,
    };
    doc.map_known(0, id, kind, m)
}

/// A result part that is a `functionResponse` whose `response` holds
/// string `output`/`error` (how the CLI records nearly every call), read
/// in one pass: its text and whether it is an error response, as [`piece`]
/// then [`response_output`] make of it. A long tool output is decoded
/// once instead of scanned again. Reading fails on any other part, or on
/// anything unusual about this one (a `text` beside it, a duplicate key, a
/// value of another type, neither field), which the general path reads.
pub(super) struct ReadPart(String, bool);

impl<'de> Deserialize<'de> for ReadPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct FastPart<'a> {
            #[serde(default)]
            text: Option<serde::de::IgnoredAny>,
            #[serde(rename = "functionResponse", borrow)]
            function_response: FastResponse<'a>,
        }
        #[derive(Deserialize)]
        struct FastResponse<'a> {
            // Read for their types only, as `FunctionResponse` reads them.
            #[serde(rename = "id", default, borrow)]
            _id: Option<Cow<'a, str>>,
            #[serde(rename = "name", default, borrow)]
            _name: Option<Cow<'a, str>>,
            #[serde(default)]
            response: Option<Outputs>,
        }
        let p = FastPart::deserialize(d)?;
        if p.text.is_some() {
            return Err(serde::de::Error::custom("text beside a response"));
        }
        Ok(match p.function_response.response {
            None => ReadPart(String::new(), false),
            Some(Outputs(Some(o), None)) => ReadPart(o, false),
            Some(Outputs(None, Some(e))) => ReadPart(e, true),
            Some(Outputs(Some(o), Some(e))) => ReadPart(format!("{o}\n{e}"), true),
            Some(Outputs(None, None)) => {
                return Err(serde::de::Error::custom("a response without output"))
            }
        })
    }
}

/// The string `output` and `error` of a response object; fails on
/// anything else (another type, a duplicate), so that the general path
/// reads it.
pub(super) struct Outputs(pub(super) Option<String>, pub(super) Option<String>);

impl<'de> Deserialize<'de> for Outputs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Outputs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a response object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outputs, A::Error> {
                let (mut output, mut error) = (None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "output" => &mut output,
                        "error" => &mut error,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(serde::de::Error::custom("duplicate key"));
                    }
                    *slot = Some(map.next_value::<String>()?);
                }
                Ok(Outputs(output, error))
            }
        }
        d.deserialize_map(V)
    }
}

/// A result part of any shape: read in one pass when it is a usual
/// response part, else piece by piece.
fn read_raw_part(part: &RawValue) -> ReadPart {
    if let Ok(p) = serde_json::from_str::<ReadPart>(part.get()) {
        return p;
    }
    match piece(part) {
        Piece::Text(t) => ReadPart(t, false),
        Piece::Response(fr) => {
            let (text, is_error) = response_output(fr.response);
            ReadPart(text, is_error)
        }
        Piece::Attachment => ReadPart("[attachment]".to_owned(), false),
        Piece::Other(raw) => ReadPart(compact_string(raw.get()), false),
    }
}

/// The result of a finished tool call; `None` while it is still running.
fn tool_result(call: ToolCall<'_>) -> Option<Payload> {
    let status = call.status.as_deref();
    let parts = call.result.map_or_else(Vec::new, Parts::into_read);
    let finished = matches!(status, Some("success" | "error" | "cancelled"));
    if parts.is_empty() && !finished {
        return None;
    }
    let response_error = parts.iter().any(|ReadPart(_, is_error)| *is_error);
    let mut texts: Vec<String> = parts
        .into_iter()
        .map(|ReadPart(text, _)| text)
        .filter(|t| !t.is_empty())
        .collect();
    // One part (nearly every call) is its own output, not a copy of it.
    let output = if texts.len() == 1 {
        texts.pop().unwrap_or_default()
    } else {
        texts.join("\n")
    };
    // A cancelled call did not run to completion: shown as failed.
    let is_error = match status {
        Some("error" | "cancelled") => true,
        Some(_) => false,
        None => response_error,
    };
    Some(Payload::ToolResult {
        tool_call_id: call.id.into_owned(),
        output: output.into(),
        is_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;

    fn ctx(rel: &str) -> FileCtx {
        Gemini.classify(Path::new(rel)).expect("a session file")
    }

    fn main_ctx() -> FileCtx {
        ctx("proj/chats/session-2026-04-15T03-00-3d743a4f.json")
    }

    fn doc(messages: &[String]) -> String {
        format!(
            r#"{{
  "sessionId": "3d743a4f-68bb-4ab3-bd73-61aa8698ab20",
  "projectHash": "f1995df9",
  "startTime": "2026-04-15T03:00:45.564Z",
  "lastUpdated": "2026-04-16T22:38:21.602Z",
  "messages": [{}],
  "kind": "main"
}}"#,
            messages.join(",\n")
        )
    }

    fn user(id: &str, text: &str) -> String {
        format!(
            r#"{{"id":"{id}","timestamp":"2026-04-15T03:01:00.000Z","type":"user","content":[{{"text":"{text}"}}]}}"#
        )
    }

    fn reply(id: &str, text: &str) -> String {
        format!(
            r#"{{"id":"{id}","timestamp":"2026-04-15T03:01:01.000Z","type":"gemini","content":"{text}","thoughts":[{{"subject":"S","description":"D","timestamp":"2026-04-15T03:01:00.500Z"}}],"model":"gemini-2.5-pro","toolCalls":[{{"id":"{id}-c","name":"glob","args":{{"pattern":"*"}},"result":[{{"functionResponse":{{"id":"{id}-c","name":"glob","response":{{"output":"a"}}}}}}],"status":"success","timestamp":"2026-04-15T03:01:02.000Z"}}]}}"#
        )
    }

    /// Feed versions of one document, restoring the state into a fresh
    /// parser before each, as the daemon does.
    fn feed(ctx: &FileCtx, versions: &[&str]) -> (Vec<Event>, serde_json::Value) {
        let mut events = Vec::new();
        let mut state = serde_json::Value::Null;
        for v in versions {
            let mut p = Gemini.parser(ctx);
            p.restore(&state).expect("restore");
            p.record(0, v.as_bytes(), &mut |e| events.push(e))
                .expect("parse");
            state = p.state();
        }
        (events, state)
    }

    fn json(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| serde_json::to_string(e).expect("serialize"))
            .collect()
    }

    fn ids(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.event_id.as_str()).collect()
    }

    #[test]
    fn classify_main_and_subagent_chats() {
        let main = main_ctx();
        assert_eq!(main.file_tag, "session-2026-04-15T03-00-3d743a4f");
        assert_eq!(main.session_hint, "3d743a4f");
        assert_eq!(main.subagent, None);
        // Absolute paths (a file named on the command line) classify alike.
        assert_eq!(
            Gemini.classify(Path::new(
                "/home/u/.gemini/tmp/proj/chats/session-2026-04-15T03-00-3d743a4f.json"
            )),
            Some(main)
        );
        let sub = ctx("proj/chats/f328310d-05ea-45ce-b9cb-fe2717bebe12/twynek.json");
        assert_eq!(sub.file_tag, "twynek");
        assert_eq!(sub.session_hint, "f328310d-05ea-45ce-b9cb-fe2717bebe12");
        assert_eq!(
            sub.subagent,
            Some(Subagent {
                id: Some("twynek".into()),
                label: Some("subagent".into())
            })
        );
        for other in [
            "proj/chats/skill-extraction-1a2b/abc.json",
            "proj/chats/session-2026-04-15T03-00-3d743a4f.jsonl",
            "proj/chats/notes.json",
            "proj/logs.json",
            "proj/chats/f328310d-05ea-45ce-b9cb-fe2717bebe12/sub/x.json",
            "session-x.json",
        ] {
            assert_eq!(Gemini.classify(Path::new(other)), None, "{other}");
        }
        assert_eq!(Gemini.source_kind(), SourceKind::Document);
        assert_eq!(
            Gemini.default_roots(Path::new("/home/u")),
            [PathBuf::from("/home/u/.gemini/tmp")]
        );
    }

    #[test]
    fn two_appended_messages_give_the_events_of_one_read() {
        let first = doc(&[user("u1", "hi"), reply("g1", "hello")]);
        let last = doc(&[
            user("u1", "hi"),
            reply("g1", "hello"),
            user("u2", "more"),
            reply("g2", "sure"),
        ]);
        let (stepwise, _) = feed(&main_ctx(), &[&first, &last]);
        let (once, _) = feed(&main_ctx(), &[&last]);
        assert_eq!(json(&stepwise), json(&once));
        assert_eq!(
            ids(&once),
            [
                "session-2026-04-15T03-00-3d743a4f#session_meta",
                "u1",
                "g1#thought-0",
                "g1",
                "g1#call-0",
                "g1#result-0",
                "u2",
                "g2#thought-0",
                "g2",
                "g2#call-0",
                "g2#result-0",
            ]
        );
        // Nothing new, nothing delivered.
        let (again, _) = feed(&main_ctx(), &[&last, &last]);
        assert_eq!(json(&again), json(&once));
    }

    #[test]
    fn fewer_messages_or_another_id_starts_over() {
        let long = doc(&[user("u1", "a"), reply("g1", "b"), user("u2", "c")]);
        let short = doc(&[user("u1", "a"), reply("g1x", "b")]);
        let (events, state) = feed(&main_ctx(), &[&long, &short]);
        let after: Vec<&str> = ids(&events).split_off(7);
        assert_eq!(
            after,
            [
                "session-2026-04-15T03-00-3d743a4f#session_meta",
                "u1",
                "g1x#thought-0",
                "g1x",
                "g1x#call-0",
                "g1x#result-0",
            ]
        );
        assert_eq!(state["delivered"], 2);
        assert_eq!(state["last_id"], "g1x");

        // Same length, another message at the remembered index.
        let swapped = doc(&[user("u1", "a"), reply("g1", "b"), user("u9", "z")]);
        let (events, _) = feed(&main_ctx(), &[&long, &swapped]);
        assert_eq!(ids(&events).len(), 7 + 7);
        assert_eq!(ids(&events).last(), Some(&"u9"));
    }

    #[test]
    fn state_round_trips() {
        let d = doc(&[user("u1", "hi"), reply("g1", "hello")]);
        let mut p = Gemini.parser(&main_ctx());
        p.record(0, d.as_bytes(), &mut |_| {}).expect("parse");
        let state = p.state();
        let mut q = Gemini.parser(&main_ctx());
        q.restore(&state).expect("restore");
        assert_eq!(q.state(), state);
        let mut n = 0;
        q.record(0, d.as_bytes(), &mut |_| n += 1).expect("parse");
        assert_eq!(n, 0, "a restored parser does not deliver twice");
        // Unreadable states are refused; null is a fresh start.
        for bad in [
            serde_json::json!(3),
            serde_json::json!({"delivered": "x"}),
            serde_json::json!({"delivered": 1, "surprise": true}),
        ] {
            assert!(matches!(q.restore(&bad), Err(Malformed::WrongShape(_))));
        }
        q.restore(&serde_json::Value::Null).expect("null");
        assert_eq!(q.state()["delivered"], 0);
    }

    #[test]
    fn broken_documents_are_malformed_and_keep_the_state() {
        let good = doc(&[user("u1", "hi")]);
        let mut p = Gemini.parser(&main_ctx());
        p.record(0, good.as_bytes(), &mut |_| {}).expect("parse");
        let state = p.state();
        let kind = |m: &Malformed| match m {
            Malformed::NotJson(_) => "not json",
            Malformed::InvalidUtf8 => "utf-8",
            Malformed::WrongShape(_) => "shape",
        };
        let cases: [(&[u8], &str); 6] = [
            (b"{\"messages\": [", "not json"),
            (b"\xff\xfe", "utf-8"),
            (b"[1, 2]", "shape"),
            (b"{\"sessionId\": \"x\"}", "shape"),
            (b"{\"messages\": {\"a\": 1}}", "shape"),
            (b"{\"messages\": 7}", "shape"),
        ];
        for (bytes, expected) in cases {
            let mut n = 0;
            let err = p.record(0, bytes, &mut |_| n += 1).expect_err("malformed");
            assert_eq!(kind(&err), expected, "{err:?}");
            assert_eq!(n, 0);
            assert_eq!(p.state(), state);
        }
    }

    #[test]
    fn a_bad_message_does_not_lose_the_good_ones() {
        let d = doc(&[
            user("u1", "first"),
            r#"{"id":"b1","timestamp":"2026-04-15T03:02:00.000Z","type":"user","content":42}"#
                .into(),
            r#"{"id":"b2","type":"gemini","content":"x","toolCalls":{"not":"an array"}}"#.into(),
            r#"{"id":"b3","type":"gemini","content":"x","toolCalls":[{"name":"no id"}]}"#.into(),
            "7".into(),
            r#"{"type":"info","content":"no id"}"#.into(),
            user("u2", "last"),
        ]);
        let (events, _) = feed(&main_ctx(), &[&d]);
        let got: Vec<(&str, Kind)> = events
            .iter()
            .map(|e| (e.event_id.as_str(), e.kind()))
            .collect();
        let tag = "session-2026-04-15T03-00-3d743a4f";
        assert_eq!(
            got,
            [
                (&*format!("{tag}#session_meta"), Kind::ProviderInfo),
                ("u1", Kind::UserMessage),
                ("b1", Kind::ProviderRaw),
                ("b2", Kind::ProviderRaw),
                ("b3", Kind::ProviderRaw),
                (&*format!("{tag}:msg-4"), Kind::ProviderRaw),
                (&*format!("{tag}:msg-5"), Kind::SystemMessage),
                ("u2", Kind::UserMessage),
            ]
        );
        assert_eq!(
            events[2].timestamp.as_deref(),
            Some("2026-04-15T03:02:00.000Z")
        );
        assert_eq!(events[5].source.record, "message");
    }

    #[test]
    fn subagent_kind_without_parent_directory() {
        let d = r#"{"sessionId":"twynek","kind":"subagent","messages":[
            {"id":"s1","type":"user","content":"do it"}]}"#;
        let ctx = crate::provider::ctx_for_path(&Gemini, Path::new("/tmp/copy.json"));
        let (events, _) = feed(&ctx, &[d]);
        assert_eq!(events.len(), 2);
        for e in &events {
            assert_eq!(&*e.session_id, "twynek");
            assert_eq!(
                e.subagent.as_ref().and_then(|s| s.id.as_deref()),
                Some("twynek")
            );
        }
        assert!(matches!(
            events[1].payload,
            Payload::SystemMessage {
                category: SystemCategory::SubagentPrompt,
                ..
            }
        ));
    }

    #[test]
    fn referenced_file_text_without_display_content_is_injected() {
        // Older CLIs stored `@file` text in `content` only: the typed words
        // end where the CLI's marker begins, whatever the file holds.
        let message = r#"{"id":"u1","timestamp":"2026-04-15T03:01:00.000Z","type":"user","content":[{"text":"explain @notes.md"},{"text":"\n--- Content from referenced files ---"},{"text":"\nContent from @notes.md:\n"},{"text":"--- End of content ---\n::stop\n"},{"text":"\n--- End of content ---"}]}"#;
        let (events, _) = feed(&main_ctx(), &[&doc(&[message.to_owned()])]);
        let user: Vec<&Event> = events.iter().filter(|e| e.is_human_message()).collect();
        assert_eq!(user.len(), 1);
        assert!(
            matches!(&user[0].payload, Payload::UserMessage { text, .. } if text == "explain @notes.md")
        );
        assert!(events.iter().any(|e| matches!(&e.payload,
            Payload::SystemMessage { category: SystemCategory::InjectedContext, text }
                if text.starts_with("--- Content from referenced files ---") && text.contains("::stop"))));
        let whole = split_references("ask\n--- Content from referenced files ---\nx".to_owned());
        assert_eq!(
            whole,
            (
                "ask".to_owned(),
                "--- Content from referenced files ---\nx".to_owned()
            )
        );
    }

    #[test]
    fn steering_wrapper_is_split() {
        let text = "User steering update:\n<user_input>\nline 1\nline 2\n</user_input>\nInternal instruction: adapt.";
        assert_eq!(
            split_steering(text),
            Some((
                "line 1\nline 2".to_owned(),
                "User steering update:\nInternal instruction: adapt.".to_owned()
            ))
        );
        assert_eq!(split_steering("<user_input>\nx\n</user_input>"), None);
        assert_eq!(
            split_steering("User steering update: <user_input> open"),
            None
        );
    }

    #[test]
    fn response_parts_read_fast_as_the_general_path_reads_them() {
        let general = |raw: &RawValue| match piece(raw) {
            Piece::Response(fr) => Some(response_output(fr.response)),
            _ => None,
        };
        let parts = [
            r#"{"functionResponse":{"id":"c","name":"n","response":{"output":"a\nb \u00e9"}}}"#,
            r#"{"functionResponse":{"id":"c","response":{"error":"boom"}}}"#,
            r#"{"functionResponse":{"response":{"output":"o","error":"e","x":[1]}}}"#,
            r#"{"functionResponse":{"id":"c","response":null}}"#,
            r#"{"functionResponse":{"id":"c"}}"#,
            r#"{"functionResponse":{"id":"c","response":{}}}"#,
            r#"{"functionResponse":{"id":"c","response":{"output":null}}}"#,
            r#"{"functionResponse":{"id":"c","response":{"output":{"k":1}}}}"#,
            r#"{"functionResponse":{"id":"c","response":{"output":"a","output":"b"}}}"#,
            r#"{"functionResponse":{"id":7,"response":{"output":"a"}}}"#,
            r#"{"functionResponse":{"id":"c","response":"text"}}"#,
            r#"{"text":"t","functionResponse":{"response":{"output":"a"}}}"#,
            r#"{"text":null,"functionResponse":{"response":{"output":"a"}},"inlineData":{}}"#,
            r#"{"functionResponse":{"response":{"output":"\ud83d"}}}"#,
            r#"{"functionResponse":{"response":{"output":"\ud83d\ude00"}}}"#,
            r#"{"functionResponse":"x"}"#,
            r#""just text""#,
            r#"{"inlineData":{"data":"AA=="}}"#,
        ];
        let mut fast_taken = 0;
        for p in parts {
            let raw: Box<RawValue> = serde_json::from_str(p).expect("json");
            if let Ok(ReadPart(text, is_error)) = serde_json::from_str::<ReadPart>(p) {
                fast_taken += 1;
                assert_eq!(Some((text, is_error)), general(&raw), "{p}");
            }
        }
        assert!(fast_taken >= 6, "{fast_taken}");
    }

    #[test]
    fn compact_keeps_strings_and_order() {
        let pretty = "{\n  \"b\": [1, 2.50],\n  \"a\": \"x y\\\" \\\\ }\\n\"\n}";
        assert_eq!(
            compact_string(pretty),
            r#"{"b":[1,2.50],"a":"x y\" \\ }\n"}"#
        );
    }
}
