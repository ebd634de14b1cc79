//! Codex provider: `~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl` and the
//! flat `~/.codex/archived_sessions/rollout-*.jsonl`.
//!
//! Three generations of the rollout format are understood:
//!
//! * legacy (Aug 2025): no envelope; a header line `{id,timestamp,
//!   instructions,git}`, bare response items and `{"record_type":"state"}`
//!   lines, no event stream;
//! * 0.34: the `{timestamp,type,payload}` envelope without `turn_context`;
//! * modern: the envelope with `turn_context` (the only place the model is
//!   named) and turn ids.
//!
//! Mapping:
//!
//! * Session: the first `session_meta` (legacy: the header) names it; every
//!   header is also kept as `provider.info`. A subagent thread
//!   (`source.subagent`) belongs to its parent thread's session and every
//!   event of its file carries [`Subagent`]; what the human or the parent
//!   typed there is a `SubagentPrompt`, never human input.
//! * Codex writes each conversation twice: model-facing `response_item`s
//!   and UI `event_msg`s. The `response_item` stream is authoritative for
//!   assistant messages, reasoning and tools. `agent_message` /
//!   `agent_reasoning` events are held until their response item arrives
//!   and then dropped; if a turn ends first (interrupted turns, replayed
//!   history) they are emitted, so no text the user saw is lost. Event
//!   twins that add details (`exec_command_end`, `patch_apply_end`, …) are
//!   `provider.info`.
//! * Only `event_msg.user_message` is text the human typed, unless it holds
//!   injected context (a `kind` other than `plain`, or the openings in
//!   `INJECTED_PREFIXES`; Codex 0.3x wrote such events). User-role
//!   response items are injected context, `!` shell echoes, or the twin of
//!   the `user_message` that follows; such a twin is held until the next
//!   record decides (same text: one `user.message`; anything else, or the
//!   end of the input: `ModelInput`). Legacy files have no event stream:
//!   their plain user-role items are the human's.
//! * Tool outputs: shell JSON wrapped in the output string is unwrapped
//!   (non-zero exit code → `is_error`), list outputs are flattened with
//!   images omitted. `web_search_call` items have no call id: the
//!   `web_search_end` event just before lends its own, else one is made.
//! * Unknown record, item and event types are `provider.raw`; known types
//!   with wrong-shaped fields are [`Malformed::WrongShape`].
//!
//! * Copied history: resume and fork write a new file that holds, after
//!   its own `session_meta`, the `session_meta` of the session it continues
//!   and a copy of that session's records (new envelope timestamps, the
//!   payloads as they were), then the new session's own records. Codex
//!   writes no marker where the copy ends, so the copy is taken to run from
//!   a `session_meta` naming another thread up to the first record that is
//!   the file's own: a turn (`turn_context` / `task_started`) whose
//!   time-ordered (v7) id was minted after the file's session began, or a
//!   record written more than [`copy::COPY_GAP_MS`] after the record before
//!   it (a copy is written in one burst). Events of copied records carry
//!   [`Event::copied`]: rendered as history, never read for commands.
//!
//! Codex items carry no stable ids, so event ids are `<file_tag>:<offset>`
//! (files are append-only), with `#<n>` for further events of one line.
//! Everything held between records round-trips through
//! [`RecordParser::state`].

use std::borrow::Cow;
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::event::raw_copy;
use crate::event::{
    null_raw, raw_from_str, raw_json, Event, Hidden, Kind, Payload, ProviderId, Source, Subagent,
    SystemCategory, Text,
};
use crate::provider::{
    copy, first_line_object, offset_id, stem, BorrowedStr, ConfigSection, FileCtx, Malformed,
    Provider, RecordParser, Sniff, SourceKind, Unkept,
};

pub const ID: ProviderId = ProviderId::Codex;

/// Upper bound on twin texts remembered while waiting for their partner;
/// past it the oldest entry is resolved early, so state stays small even
/// on a stream that never pairs up.
const TWIN_WINDOW: usize = 256;

pub struct Codex;

impl Provider for Codex {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![
            home.join(".codex/sessions"),
            home.join(".codex/archived_sessions"),
        ]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    /// `YYYY/MM/DD/rollout-*.jsonl` (sessions) or a flat `rollout-*.jsonl`
    /// (archived sessions). A longer path is accepted when it ends in one of
    /// those layouts, so that a file named directly keeps its session hint.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        let mut parts: Vec<&str> = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_str()?),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => return None,
            }
        }
        let (name, dirs) = parts.split_last()?;
        if !name.starts_with("rollout-") || !name.ends_with(".jsonl") {
            return None;
        }
        let dated = match dirs {
            [.., y, m, d] => is_digits(y, 4) && is_digits(m, 2) && is_digits(d, 2),
            _ => false,
        };
        let flat = dirs.is_empty() || dirs.last() == Some(&"archived_sessions");
        if !dated && !flat {
            return None;
        }
        let tag = stem(rel);
        Some(FileCtx {
            provider: ID,
            session_hint: id_from_stem(&tag),
            file_tag: tag,
            subagent: None,
        })
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(CodexParser::new(ctx.clone()))
    }

    // Recognition and configuration (the provider seam).

    /// Rollout records wrap their content in `payload` (older files:
    /// `record_type`, or a first line with `instructions` and `id`).
    fn sniff(&self, head: &[u8]) -> Sniff {
        let Some(obj) = first_line_object(head) else {
            return Sniff::No;
        };
        let has = |k: &str| obj.contains_key(k);
        if has("payload") || has("record_type") || (has("instructions") && has("id")) {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description:
                "Codex CLI: one JSON Lines rollout per session, by date, plus archived ones.",
            env_override: None,
        }
    }
}

fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The session id at the end of `rollout-<local time>-<id>`.
fn id_from_stem(stem: &str) -> String {
    // Ids are UUIDs (v4 or v7): 36 characters at the end of the name.
    if let Some(tail) = stem.len().checked_sub(36).and_then(|i| stem.get(i..)) {
        if is_uuid(tail) {
            return tail.to_owned();
        }
    }
    // Otherwise drop the prefix and the `YYYY-MM-DDTHH-MM-SS-` time stamp.
    let rest = stem.strip_prefix("rollout-").unwrap_or(stem);
    match rest.get(..20) {
        Some(ts) if ts.as_bytes().get(10) == Some(&b'T') && ts.ends_with('-') => {
            rest.get(20..).unwrap_or(rest).to_owned()
        }
        _ => rest.to_owned(),
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

// ---------------------------------------------------------------------------
// Wire shapes. Borrowed where possible; opaque parts stay `RawValue`.

/// Deserialize a present field as raw JSON even when it is `null`, so that
/// a missing field (`None`) and an explicit `null` can be told apart.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// The fields that tell the three line generations apart.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(
        rename = "type",
        default,
        borrow,
        deserialize_with = "crate::provider::opt_str"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    record_type: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
}

/// Just the `type` of a payload.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// A content block of a message, reasoning item or tool output.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    text: Option<Cow<'a, str>>,
}

/// Every response item, with the union of the fields the known types use.
/// `O` is how `output` is read: as raw JSON, any value ([`RawItem`], the
/// general path), or as a string decoded right away ([`FastItem`]).
#[derive(Deserialize)]
struct Item<'a, O> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Vec<Block<'a>>>,
    #[serde(default, borrow)]
    summary: Option<Vec<Block<'a>>>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    input: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    call_id: Option<Cow<'a, str>>,
    #[serde(
        default = "none",
        deserialize_with = "present_as",
        bound(deserialize = "O: Deserialize<'de>")
    )]
    output: Option<O>,
    #[serde(default, borrow)]
    action: Option<&'a RawValue>,
}

fn none<T>() -> Option<T> {
    None
}

/// A present field read as `T`, even when it is `null` (which `T` may
/// refuse): unlike a plain `Option`, `null` is not `None`.
fn present_as<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A response item as the general path reads it.
type RawItem<'a> = Item<'a, &'a RawValue>;

/// A tool output: as raw JSON (any value), or already decoded when the
/// fast path read it (always a string).
enum Output<'a> {
    Raw(&'a RawValue),
    Text(Cow<'a, str>),
}

impl<'a> From<&'a RawValue> for Output<'a> {
    fn from(raw: &'a RawValue) -> Output<'a> {
        Output::Raw(raw)
    }
}

impl<'a> From<BorrowedStr<'a>> for Output<'a> {
    fn from(s: BorrowedStr<'a>) -> Output<'a> {
        Output::Text(s.0)
    }
}

// ---------------------------------------------------------------------------
// The fast path. Most bytes of a rollout are enveloped response items (tool
// outputs above all) and the text events that repeat their messages. The
// general path reads a line three times: the envelope with the payload as
// raw JSON, the payload's type, and the payload as its kind (a tool output
// string once more). [`FastLine`] reads such a line in one pass and gives
// up on anything unusual (another record type, a payload before its type,
// a duplicate key, an output that is not a string, a field missing or of
// the wrong type, any error), in which case the general path reads the
// line as before. Where it succeeds, the general path would have produced
// exactly the same fields: both read the same shapes, and `read_both_ways`
// (unit tests, the `codex_paths` fuzz target) checks the outcome on any
// input.

/// An enveloped `response_item` line, or an `event_msg` line of a kind
/// that carries a text, read in one pass. An item's `output` is read as
/// `O`: a string decoded right away ([`BorrowedStr`]), or, when the
/// consumer throws tool outputs away, any value left undecoded.
struct FastLine<'a, O> {
    timestamp: Option<Cow<'a, str>>,
    payload: FastPayload<'a, O>,
}

enum FastPayload<'a, O> {
    Item(Item<'a, O>),
    Event(FastEvent<'a>),
}

/// The `event_msg` kinds the fast path reads: the texts, which are most of
/// the bytes of the events.
const FAST_EVENTS: [&str; 3] = ["user_message", "agent_message", "agent_reasoning"];

/// An `event_msg` payload of one of [`FAST_EVENTS`]: the union of the
/// fields of [`UserMsg`], [`AgentMsg`] and [`AgentReasoning`], each read as
/// they read it. A field missing or wrong for the kind makes the fast path
/// give up, so that the general path reports it.
#[derive(Deserialize)]
struct FastEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    text: Option<Cow<'a, str>>,
    /// [`UserMsg::kind`].
    #[serde(
        rename = "kind",
        default,
        borrow,
        deserialize_with = "crate::provider::opt_str"
    )]
    user_kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    images: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    local_images: Option<Vec<&'a RawValue>>,
}

/// A fast `event_msg`, read as its kind.
enum TextEvent<'a> {
    User(UserMsg<'a>),
    /// An agent message (`false`) or reasoning (`true`) and its text.
    Agent(bool, Cow<'a, str>),
}

impl<'a> FastEvent<'a> {
    fn typed(self) -> Option<TextEvent<'a>> {
        Some(match self.kind.as_ref() {
            "user_message" => TextEvent::User(UserMsg {
                message: self.message?,
                kind: self.user_kind,
                images: self.images,
                local_images: self.local_images,
            }),
            "agent_message" => TextEvent::Agent(false, self.message?),
            "agent_reasoning" => TextEvent::Agent(true, self.text?),
            _ => return None,
        })
    }
}

/// Why the fast path gave up (the general path takes over).
fn give_up<E: de::Error>() -> E {
    E::custom("not a fast-path line")
}

impl<'de, O: Deserialize<'de>> Deserialize<'de> for FastLine<'de, O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Line<O>(PhantomData<O>);
        impl<'de, O: Deserialize<'de>> Visitor<'de> for Line<O> {
            type Value = FastLine<'de, O>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an enveloped response item")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FastLine<'de, O>, A::Error> {
                // Some(true) for `response_item`, Some(false) for `event_msg`.
                let mut typed: Option<bool> = None;
                let mut timestamp: Option<Option<Cow<'de, str>>> = None;
                let mut payload = None;
                let (mut record_type, mut id) = (false, false);
                while let Some(key) = map.next_key::<BorrowedStr<'de>>()? {
                    match key.0.as_ref() {
                        "type" => {
                            let kind: Option<BorrowedStr<'de>> = map.next_value()?;
                            typed = match kind.as_ref().map(|k| k.0.as_ref()) {
                                Some("response_item") if typed.is_none() => Some(true),
                                Some("event_msg") if typed.is_none() => Some(false),
                                _ => return Err(give_up()),
                            };
                        }
                        "payload" => {
                            if payload.is_some() {
                                return Err(give_up());
                            }
                            payload = Some(match typed {
                                Some(true) => {
                                    FastPayload::Item(map.next_value_seed(Object(PhantomData))?)
                                }
                                Some(false) => {
                                    FastPayload::Event(map.next_value_seed(Object(PhantomData))?)
                                }
                                None => return Err(give_up()),
                            });
                        }
                        "timestamp" => {
                            if timestamp.is_some() {
                                return Err(give_up());
                            }
                            let t: Option<BorrowedStr<'de>> = map.next_value()?;
                            timestamp = Some(t.map(|t| t.0));
                        }
                        "record_type" | "id" => {
                            let seen = if key.0 == "id" {
                                &mut id
                            } else {
                                &mut record_type
                            };
                            if std::mem::replace(seen, true) {
                                return Err(give_up());
                            }
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let known = match &payload {
                    Some(FastPayload::Item(item)) => is_typed_item(&item.kind),
                    Some(FastPayload::Event(ev)) => FAST_EVENTS.contains(&ev.kind.as_ref()),
                    None => false,
                };
                match payload {
                    Some(payload) if known => Ok(FastLine {
                        timestamp: timestamp.flatten(),
                        payload,
                    }),
                    _ => Err(give_up()),
                }
            }
        }
        d.deserialize_map(Line(PhantomData))
    }
}

/// Whether the fast path is worth trying: near the line's start, where
/// the envelope's keys are, a `"type"` names the record type
/// `response_item`, or `event_msg` with another `"type"` naming one of
/// [`FAST_EVENTS`]. Any other line (`turn_context`, token counts…) would
/// make [`FastLine`] give up, at the cost of an error value; a wrong guess
/// either way only chooses the path, never the outcome.
fn may_be_fast(line: &[u8]) -> bool {
    static TYPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(br#""type""#));
    let head = &line[..line.len().min(160)];
    let mut event = false;
    for at in TYPE.find_iter(head) {
        let rest = head[at + 6..].trim_ascii_start();
        let Some(value) = rest.strip_prefix(b":").map(<[u8]>::trim_ascii_start) else {
            continue;
        };
        if value.starts_with(br#""response_item""#) {
            return true;
        }
        if value.starts_with(br#""event_msg""#) {
            event = true;
        } else if event && FAST_EVENTS.iter().any(|k| is_string(value, k)) {
            return true;
        }
    }
    false
}

/// Whether `value` starts with the JSON string `s` (no escapes in it).
fn is_string(value: &[u8], s: &str) -> bool {
    value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_prefix(s.as_bytes()))
        .is_some_and(|v| v.starts_with(b"\""))
}

/// A payload read as `T`, which must be an object: derived structs also
/// accept arrays.
struct Object<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Object<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a payload object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[derive(Deserialize)]
struct UserMsg<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
    /// `plain`, `user_instructions` or `environment_context` (0.3x).
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    images: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    local_images: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct AgentMsg<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
}

#[derive(Deserialize)]
struct AgentReasoning<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
struct TurnEvent<'a> {
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    turn_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorEvent<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
}

#[derive(Deserialize)]
struct WebSearchEnd<'a> {
    #[serde(borrow)]
    call_id: Cow<'a, str>,
    #[serde(default, borrow)]
    action: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SessionMeta<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    source: Option<&'a RawValue>,
    #[serde(default)]
    agent_nickname: Option<String>,
    #[serde(default)]
    agent_role: Option<String>,
}

#[derive(Deserialize)]
struct SourceObj<'a> {
    #[serde(default, borrow)]
    subagent: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SubagentObj {
    #[serde(default)]
    thread_spawn: Option<ThreadSpawn>,
}

#[derive(Deserialize)]
struct ThreadSpawn {
    #[serde(default)]
    parent_thread_id: Option<String>,
    #[serde(default)]
    agent_nickname: Option<String>,
    #[serde(default)]
    agent_role: Option<String>,
}

#[derive(Deserialize)]
struct LegacyHeader<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct TurnContext<'a> {
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    turn_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Compacted<'a> {
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    replacement_history: Option<Vec<&'a RawValue>>,
}

/// A shell output wrapped as JSON inside the output string.
#[derive(Deserialize)]
struct WrappedOutput<'a> {
    #[serde(borrow)]
    output: Cow<'a, str>,
    metadata: WrappedMeta,
}

#[derive(Deserialize)]
struct WrappedMeta {
    #[serde(default)]
    exit_code: Option<i64>,
}

fn shape<T>(r: Result<T, serde_json::Error>) -> Result<T, Malformed> {
    r.map_err(|e| Malformed::WrongShape(e.to_string()))
}

fn missing(what: &str) -> Malformed {
    Malformed::WrongShape(format!("missing field `{what}`"))
}

// ---------------------------------------------------------------------------
// Parser state (persisted with the cursor).

/// Which half of a twin pair a remembered text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Twin {
    /// An assistant message emitted from a response item.
    AssistantItem,
    /// A reasoning summary part emitted from a response item.
    ReasoningItem,
    /// A `user_message` emitted before its response-item twin.
    UserEvent,
    /// A user-role response item of injected context.
    InjectedItem,
}

/// A user-role response item waiting for the `user_message` that follows.
///
/// Its twin is found by `hash` ([`CodexParser::text_hash`]), not by the text: the state
/// is written to disk with secrets redacted (`daemon::state`), and a text
/// read back that way must still meet its twin. The text itself is kept
/// for the case the twin never comes and the item is emitted as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingUser {
    offset: u64,
    timestamp: Option<Arc<str>>,
    turn_id: Option<Arc<str>>,
    text: String,
    #[serde(default)]
    hash: Option<u64>,
    attachments: u32,
}

/// An `agent_message` / `agent_reasoning` event waiting for its
/// response-item twin. Emitted at the next turn boundary if none comes
/// (interrupted turns leave such orphans).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingAgent {
    offset: u64,
    timestamp: Option<Arc<str>>,
    turn_id: Option<Arc<str>>,
    model: Option<Arc<str>>,
    thinking: bool,
    text: String,
    /// As [`PendingUser::hash`].
    #[serde(default)]
    hash: Option<u64>,
}

/// The function that made the twin hashes a state holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TwinHash {
    /// [`fnv1a`]: states written before this field existed.
    #[default]
    Fnv1a,
    /// [`wide_hash`]: every new file, and an older state once it holds no
    /// hash made the old way.
    Wide,
}

/// A text met in one stream, and its twin hash once made (at most once,
/// and only when a held text is there to compare it with or to keep).
struct TwinText<'t> {
    text: &'t str,
    hash: Option<u64>,
}

impl<'t> TwinText<'t> {
    fn new(text: &'t str) -> TwinText<'t> {
        TwinText { text, hash: None }
    }
}

/// A `web_search_end` whose `web_search_call` item has not come yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingSearch {
    call_id: String,
    action: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Set by the first header (`session_meta` or the legacy header).
    #[serde(default)]
    session_id: Option<Arc<str>>,
    #[serde(default)]
    subagent: Option<Subagent>,
    /// The file is in the legacy format (no event stream).
    #[serde(default)]
    legacy: bool,
    #[serde(default)]
    model: Option<Arc<str>>,
    #[serde(default)]
    turn_id: Option<Arc<str>>,
    #[serde(default)]
    pending_user: Option<PendingUser>,
    #[serde(default)]
    pending_agent: Vec<PendingAgent>,
    /// Hashes of texts emitted from one stream whose twin in the other
    /// stream has not been seen yet (for twins that come in the reverse of
    /// the usual order). Cleared at turn boundaries.
    #[serde(default)]
    emitted: Vec<(Twin, u64)>,
    #[serde(default)]
    pending_search: Option<PendingSearch>,
    /// The file's own thread id (its first `session_meta`; for a subagent
    /// thread not the parent's id that names the session).
    #[serde(default)]
    own: Option<String>,
    /// When the file's own session began, in ms since the epoch.
    #[serde(default)]
    own_start_ms: Option<i64>,
    /// Set while the records are a copy of another session's history.
    #[serde(default)]
    copy: Option<CopyRegion>,
    #[serde(default)]
    twin_hash: TwinHash,
}

/// A copy of another session's history in progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct CopyRegion {
    /// Envelope time (ms since the epoch) of the copy's latest record.
    last_ms: Option<i64>,
}

/// FNV-1a of the trimmed text: the twin hash of older states. One byte per
/// step, each waiting for the last; a fifth of the parse of a Codex file.
fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.trim().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The twin hash: stable across releases (it is kept in the state files;
/// std's hasher may change), over the trimmed text, 16 bytes per step. Each
/// block is mixed by a folded 128-bit multiply independent of the running
/// hash, so blocks overlap in the pipeline; the chain is a rotate and a
/// multiply per block.
fn wide_hash(text: &str) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
    fn fold(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        (r as u64) ^ ((r >> 64) as u64)
    }
    fn block(b: &[u8]) -> (u64, u64) {
        let mut w = [0u8; 16];
        w[..b.len()].copy_from_slice(b);
        let (x, y) = w.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        (word(x), word(y))
    }
    let bytes = text.trim().as_bytes();
    let len = bytes.len() as u64;
    let mut h = fold(len ^ P0, P1);
    let mut chunks = bytes.chunks_exact(16);
    for c in &mut chunks {
        let (x, y) = block(c);
        h = (h ^ fold(x ^ P0, y ^ P1)).rotate_left(29).wrapping_mul(P2);
    }
    let (x, y) = block(chunks.remainder());
    h = (h ^ fold(x ^ P0, y ^ P1)).rotate_left(29).wrapping_mul(P2);
    fold(h ^ len, P0)
}

// ---------------------------------------------------------------------------
// The parser.

pub struct CodexParser {
    ctx: FileCtx,
    /// [`FileCtx::file_tag`], shared by the events.
    file: Arc<str>,
    st: State,
    /// What the consumer throws away ([`RecordParser::hide`]): tool
    /// inputs and outputs are then checked but not kept (outputs not
    /// decoded), provider records not copied. Thinking is still read: its
    /// texts find their twins.
    hidden: Hidden,
    /// The consumer writes JSON ([`RecordParser::keep_json`]): a tool
    /// output may stay the JSON literal it was read as.
    json_texts: bool,
}

/// Where the events of the current line come from.
struct LineCtx {
    offset: u64,
    /// Shared by the line's events.
    timestamp: Option<Arc<str>>,
    /// A known name borrowed ([`known_record`]): not a string per event.
    record: Cow<'static, str>,
    /// Events emitted for this line so far (for `#<n>` suffixes).
    n: u32,
}

impl LineCtx {
    fn new(offset: u64, timestamp: Option<&str>, record: &str) -> LineCtx {
        LineCtx {
            offset,
            timestamp: timestamp.map(Into::into),
            record: known_record("", record)
                .map_or_else(|| record.to_owned().into(), Cow::Borrowed),
            n: 0,
        }
    }

    /// Qualify the record name with the payload type: an enveloped
    /// `response_item` becomes `response_item/message`; a legacy bare item
    /// is named by its type alone.
    fn set_kind(&mut self, kind: &str) {
        if let Some(name) = known_record(&self.record, kind) {
            self.record = Cow::Borrowed(name);
        } else if self.record.is_empty() {
            self.record = kind.to_owned().into();
        } else {
            let mut record = String::with_capacity(self.record.len() + 1 + kind.len());
            record.push_str(&self.record);
            record.push('/');
            record.push_str(kind);
            self.record = record.into();
        }
    }
}

/// The name of a record of a kind the parser knows: `<envelope>/<kind>`,
/// or the kind alone without an envelope (a legacy bare item, or the
/// envelope itself).
fn known_record(envelope: &str, kind: &str) -> Option<&'static str> {
    Some(match (envelope, kind) {
        ("", "response_item") => "response_item",
        ("", "event_msg") => "event_msg",
        ("", "turn_context") => "turn_context",
        ("", "session_meta") => "session_meta",
        ("", "compacted") => "compacted",
        ("", "message") => "message",
        ("", "reasoning") => "reasoning",
        ("", "function_call") => "function_call",
        ("", "function_call_output") => "function_call_output",
        ("", "local_shell_call") => "local_shell_call",
        ("response_item", "message") => "response_item/message",
        ("response_item", "reasoning") => "response_item/reasoning",
        ("response_item", "function_call") => "response_item/function_call",
        ("response_item", "function_call_output") => "response_item/function_call_output",
        ("response_item", "custom_tool_call") => "response_item/custom_tool_call",
        ("response_item", "custom_tool_call_output") => "response_item/custom_tool_call_output",
        ("response_item", "local_shell_call") => "response_item/local_shell_call",
        ("response_item", "web_search_call") => "response_item/web_search_call",
        ("event_msg", "user_message") => "event_msg/user_message",
        ("event_msg", "agent_message") => "event_msg/agent_message",
        ("event_msg", "agent_reasoning") => "event_msg/agent_reasoning",
        ("event_msg", "token_count") => "event_msg/token_count",
        ("event_msg", "task_started") => "event_msg/task_started",
        ("event_msg", "task_complete") => "event_msg/task_complete",
        ("event_msg", "turn_aborted") => "event_msg/turn_aborted",
        ("event_msg", "web_search_end") => "event_msg/web_search_end",
        ("event_msg", "error") => "event_msg/error",
        _ => return None,
    })
}

/// Which kinds of events carry the current model.
fn carries_model(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::AssistantMessage | Kind::Thinking | Kind::ToolCall | Kind::ToolResult
    )
}

/// How a user-role message is classified from its text.
enum UserText {
    Injected,
    Shell,
    Plain,
}

/// Openings of context Codex injects as user-role messages (its
/// `is_contextual_user_fragment`), matched as Codex does: after leading
/// white space, ignoring ASCII case.
const INJECTED_PREFIXES: &[&str] = &[
    "# AGENTS.md instructions",
    "<environment_context>",
    "<user_instructions>",
    "<permissions instructions>",
    "<turn_aborted>",
    "<INSTRUCTIONS>",
    "<model_switch>",
    "<collaboration_mode>",
    "<skill>",
    "<subagent_notification>",
    "<hook_prompt",
    "<hook_context>",
    "<codex_internal_context",
];

fn classify_user_text(text: &str) -> UserText {
    let t = text.trim_start();
    let starts = |p: &str| t.get(..p.len()).is_some_and(|c| c.eq_ignore_ascii_case(p));
    if INJECTED_PREFIXES.iter().any(|p| starts(p)) {
        UserText::Injected
    } else if starts("<user_shell_command>") {
        UserText::Shell
    } else {
        UserText::Plain
    }
}

/// A user-role message is what its most telling block is: injected when
/// any block is (as Codex itself decides), else a shell echo when any block
/// is one, else plain. Each block is judged on its own, so a block of
/// injected text cannot hide behind a plain one before it.
fn classify_blocks(blocks: &[Block<'_>]) -> UserText {
    let mut shell = false;
    for text in blocks.iter().filter_map(|b| b.text.as_deref()) {
        match classify_user_text(text) {
            UserText::Injected => return UserText::Injected,
            UserText::Shell => shell = true,
            UserText::Plain => {}
        }
    }
    if shell {
        UserText::Shell
    } else {
        UserText::Plain
    }
}

/// The category of a `user_message` event that is not the human's words:
/// one whose `kind` is not `plain`, or whose text opens like injected
/// context or a shell echo.
fn injected_event(m: &UserMsg<'_>) -> Option<SystemCategory> {
    match classify_user_text(&m.message) {
        UserText::Injected => Some(SystemCategory::InjectedContext),
        UserText::Shell => Some(SystemCategory::UserShell),
        UserText::Plain => m
            .kind
            .as_deref()
            .filter(|k| *k != "plain")
            .map(|_| SystemCategory::InjectedContext),
    }
}

/// Text and attachment count of message content blocks.
fn blocks_text(blocks: &[Block<'_>]) -> (String, u32) {
    let mut text = String::new();
    let mut attachments = 0u32;
    for b in blocks {
        match b.kind.as_ref() {
            "input_image" | "image" | "input_file" => attachments += 1,
            _ => {
                if let Some(t) = &b.text {
                    text.push_str(t);
                }
            }
        }
    }
    (text, attachments)
}

/// Reasoning text: summary parts joined; else readable reasoning content.
fn reasoning_parts<'b, O>(item: &'b Item<'_, O>) -> Vec<&'b str> {
    let from = |blocks: &'b Option<Vec<Block<'_>>>| -> Vec<&'b str> {
        blocks
            .iter()
            .flatten()
            .filter_map(|b| b.text.as_deref())
            .filter(|t| !t.trim().is_empty())
            .collect()
    };
    let parts = from(&item.summary);
    if parts.is_empty() {
        from(&item.content)
    } else {
        parts
    }
}

/// Lines of a shell output's header that may state its exit code.
const EXIT_CODE_LINES: usize = 8;

/// The exit code stated in a plain-text shell output header
/// (`Exit code: N` or `Process exited with code N`).
fn plain_exit_code(s: &str) -> Option<i64> {
    for line in s.lines().take(EXIT_CODE_LINES) {
        let num = line
            .strip_prefix("Exit code: ")
            .or_else(|| line.strip_prefix("Process exited with code "));
        if let Some(n) = num {
            return n.trim().parse().ok();
        }
        if line.starts_with("Output:") {
            break;
        }
    }
    None
}

/// Tool output text and error flag from a string output.
fn text_tool_output(s: Cow<'_, str>) -> (String, bool) {
    if s.trim_start().starts_with('{') {
        if let Ok(w) = serde_json::from_str::<WrappedOutput<'_>>(&s) {
            let failed = w.metadata.exit_code.is_some_and(|c| c != 0);
            return (w.output.into_owned(), failed);
        }
    }
    let failed = plain_exit_code(&s).is_some_and(|c| c != 0);
    (s.into_owned(), failed)
}

/// Tool output text and error flag from a `*_output` item's `output`.
fn tool_output(output: Output<'_>) -> Result<(Text, bool), Malformed> {
    read_tool_output(output).map(|(text, failed)| (text.into(), failed))
}

fn read_tool_output(output: Output<'_>) -> Result<(String, bool), Malformed> {
    let raw = match output {
        Output::Text(s) => return Ok(text_tool_output(s)),
        Output::Raw(raw) => raw,
    };
    let json = raw.get();
    match json.as_bytes().first() {
        Some(b'"') => {
            let s: Cow<'_, str> = shape(serde_json::from_str(json))?;
            Ok(text_tool_output(s))
        }
        Some(b'[') => {
            let blocks: Vec<Block<'_>> = shape(serde_json::from_str(json))?;
            let mut parts: Vec<Cow<'_, str>> = Vec::with_capacity(blocks.len());
            for b in &blocks {
                match (&b.text, b.kind.as_ref()) {
                    (Some(t), _) => parts.push(Cow::Borrowed(t.as_ref())),
                    (None, "input_image" | "image") => parts.push(Cow::Borrowed("[image omitted]")),
                    (None, other) => parts.push(Cow::Owned(format!("[{other} omitted]"))),
                }
            }
            Ok((parts.join("\n"), false))
        }
        _ => Err(Malformed::WrongShape(
            "tool output is neither a string nor a list".into(),
        )),
    }
}

/// Whether a JSON string the reader has checked (its escapes well formed,
/// no control characters) may fail to decode: only a lone surrogate does,
/// and that takes a `\u` escape. Most tool inputs and outputs hold none,
/// and are then checked without being decoded.
fn may_not_decode(json: &str) -> bool {
    static ESCAPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\\u"));
    ESCAPE.find(json.as_bytes()).is_some()
}

/// [`tool_output`] that the consumer throws away (and whether the tool
/// failed): checked as it checks it, nothing kept.
fn unkept_tool_output(raw: &RawValue) -> Result<(Text, bool), Malformed> {
    let json = raw.get();
    if !json.starts_with('"') || may_not_decode(json) {
        tool_output(Output::Raw(raw))?;
    }
    Ok((Text::default(), false))
}

/// Bytes of an output literal its first [`EXIT_CODE_LINES`] lines may take
/// for [`json_tool_output`] to read them on their own.
const OUTPUT_HEAD_MAX: usize = 4096;

/// [`tool_output`] for a consumer that writes JSON: an output string
/// written as kato writes strings stays the literal it is
/// ([`Text::from_json`]), undecoded; only its first lines are decoded,
/// for the exit code they may state. Anything else (a wrapped shell
/// output, long first lines, another escape, a list) is read as
/// [`tool_output`] reads it. Either way the text and the flag are the same.
fn json_tool_output(raw: &RawValue) -> Result<(Text, bool), Malformed> {
    if let Some(text) = Text::from_json(raw) {
        if let Some(failed) = head_exit(raw.get()) {
            return Ok((text, failed));
        }
    }
    tool_output(Output::Raw(raw))
}

/// Whether the output a [`Text::from_json`] literal holds states a failed
/// exit, as [`text_tool_output`] reads it from the decoded text, read from
/// the literal: line by line (split at its `\n` escapes), each line's
/// start compared as it is (the prefixes hold no character JSON escapes),
/// and only the number after a prefix decoded. `None`, for the caller to
/// decode the text, when the text may be wrapped shell JSON (it does not
/// start with a printable ASCII character other than `{`) or a line to
/// read ends past [`OUTPUT_HEAD_MAX`] bytes.
fn head_exit(literal: &str) -> Option<bool> {
    let bytes = literal.as_bytes();
    // The closing quote.
    let end = bytes.len().checked_sub(1)?;
    match bytes.get(1) {
        Some(&b) if b.is_ascii_graphic() && b != b'{' && b != b'\\' && 1 < end => {}
        _ => return None,
    }
    let limit = end.min(OUTPUT_HEAD_MAX);
    let mut start = 1;
    for _ in 0..EXIT_CODE_LINES {
        let mut at = start;
        let line_end = loop {
            let Some(i) = memchr::memchr(b'\\', bytes.get(at..limit)?) else {
                if end > OUTPUT_HEAD_MAX {
                    return None;
                }
                break end;
            };
            let e = at + i;
            match bytes.get(e + 1) {
                Some(b'n') => break e,
                // Canonical: `\u00XX` or a two-byte escape.
                Some(b'u') => at = e + 6,
                _ => at = e + 2,
            }
        };
        let line = literal.get(start..line_end)?;
        let number = line
            .strip_prefix("Exit code: ")
            .or_else(|| line.strip_prefix("Process exited with code "));
        if let Some(n) = number {
            let n = crate::json_str::unescape(n).ok()?;
            return Some(n.trim().parse::<i64>().is_ok_and(|c| c != 0));
        }
        if line.starts_with("Output:") || line_end == end {
            break;
        }
        start = line_end + 2;
    }
    Some(false)
}

/// [`tool_input`] that the consumer throws away: the arguments checked as
/// it checks them, nothing kept.
fn unkept_tool_input(raw: Option<&RawValue>) -> Result<Box<RawValue>, Malformed> {
    if let Some(raw) = raw.filter(|r| r.get().starts_with('"') && may_not_decode(r.get())) {
        let _: Unkept = shape(serde_json::from_str(raw.get()))?;
    }
    Ok(null_raw())
}

/// Tool input: arguments that are a JSON string are parsed; anything else
/// is kept as JSON (a string when it is not JSON).
fn tool_input(raw: Option<&RawValue>) -> Result<Box<RawValue>, Malformed> {
    let Some(raw) = raw else {
        return Ok(null_raw());
    };
    if raw.get().starts_with('"') {
        let s: Cow<'_, str> = shape(serde_json::from_str(raw.get()))?;
        Ok(serde_json::from_str::<Box<RawValue>>(&s).unwrap_or_else(|_| raw_json(&*s)))
    } else {
        Ok(raw_copy(raw))
    }
}

impl CodexParser {
    pub fn new(ctx: FileCtx) -> CodexParser {
        let st = State {
            subagent: ctx.subagent.clone(),
            twin_hash: TwinHash::Wide,
            ..State::default()
        };
        CodexParser {
            file: ctx.file_tag.as_str().into(),
            ctx,
            st,
            hidden: Hidden::default(),
            json_texts: false,
        }
    }

    fn session_id(&self) -> Arc<str> {
        match &self.st.session_id {
            Some(s) => s.clone(),
            None => self.ctx.session_hint.as_str().into(),
        }
    }

    /// Build one event of `line` and hand it out.
    fn emit(&self, line: &mut LineCtx, payload: Payload, out: &mut dyn FnMut(Event)) {
        let turn_id = self.st.turn_id.clone();
        let model = self.st.model.clone();
        self.emit_at(line, payload, turn_id, model, out);
    }

    fn emit_at(
        &self,
        line: &mut LineCtx,
        payload: Payload,
        turn_id: Option<Arc<str>>,
        model: Option<Arc<str>>,
        out: &mut dyn FnMut(Event),
    ) {
        let event_id = offset_id(&self.ctx.file_tag, line.offset, line.n);
        line.n += 1;
        let kind = payload.kind();
        let mut ev = Event::new(
            ID,
            self.session_id(),
            event_id,
            Source {
                record: line.record.clone(),
                offset: line.offset,
                file: Some(self.file.clone()),
            },
            payload,
        );
        ev.timestamp = line.timestamp.clone();
        ev.turn_id = turn_id;
        ev.model = if carries_model(kind) { model } else { None };
        ev.subagent = self.st.subagent.clone();
        ev.copied = self.st.copy.is_some();
        out(ev);
    }

    fn info(&self, line: &mut LineCtx, topic: &str, data: &RawValue, out: &mut dyn FnMut(Event)) {
        let data = if self.hidden.provider && topic != "title" {
            null_raw()
        } else {
            raw_copy(data)
        };
        let topic = topic.to_owned();
        self.emit(line, Payload::ProviderInfo { topic, data }, out);
    }

    fn system(
        &self,
        line: &mut LineCtx,
        category: SystemCategory,
        text: String,
        out: &mut dyn FnMut(Event),
    ) {
        self.emit(line, Payload::SystemMessage { category, text }, out);
    }

    /// A user-role response item held back is not followed by its twin:
    /// it was model input (a prompt the human did not type here).
    fn release_pending_user(&mut self, out: &mut dyn FnMut(Event)) {
        if let Some(p) = self.st.pending_user.take() {
            let mut line = LineCtx {
                offset: p.offset,
                timestamp: p.timestamp,
                record: Cow::Borrowed("response_item/message"),
                n: 0,
            };
            let turn_id = p.turn_id;
            self.emit_at(
                &mut line,
                Payload::SystemMessage {
                    category: SystemCategory::ModelInput,
                    text: p.text,
                },
                turn_id,
                None,
                out,
            );
        }
    }

    /// A turn ended or began: agent events that never met their response
    /// item are emitted now, and the reverse-order window is reset.
    fn turn_boundary(&mut self, out: &mut dyn FnMut(Event)) {
        for p in std::mem::take(&mut self.st.pending_agent) {
            self.emit_orphan(p, out);
        }
        self.st.emitted.clear();
        self.st.pending_search = None;
        self.adopt_wide_hash();
    }

    /// A state of an older release holds FNV-1a hashes; once none is held
    /// any more, hash the fast way.
    fn adopt_wide_hash(&mut self) {
        if !self.holds_hash() {
            self.st.twin_hash = TwinHash::Wide;
        }
    }

    fn holds_hash(&self) -> bool {
        !self.st.emitted.is_empty()
            || self.st.pending_agent.iter().any(|p| p.hash.is_some())
            || self
                .st
                .pending_user
                .as_ref()
                .is_some_and(|p| p.hash.is_some())
    }

    fn text_hash(&self, text: &str) -> u64 {
        match self.st.twin_hash {
            TwinHash::Fnv1a => fnv1a(text),
            TwinHash::Wide => wide_hash(text),
        }
    }

    /// The twin hash of `t`, made on first use.
    fn hash_of(&self, t: &mut TwinText<'_>) -> u64 {
        match t.hash {
            Some(h) => h,
            None => {
                let h = self.text_hash(t.text);
                t.hash = Some(h);
                h
            }
        }
    }

    /// The twin hash of a held text (older states have none: the text then).
    fn held_hash(&self, hash: Option<u64>, text: &str) -> u64 {
        hash.unwrap_or_else(|| self.text_hash(text))
    }

    fn emit_orphan(&self, p: PendingAgent, out: &mut dyn FnMut(Event)) {
        let (record, payload) = if p.thinking {
            (
                "event_msg/agent_reasoning",
                Payload::Thinking { text: p.text },
            )
        } else {
            (
                "event_msg/agent_message",
                Payload::AssistantMessage { text: p.text },
            )
        };
        let mut line = LineCtx {
            offset: p.offset,
            timestamp: p.timestamp,
            record: Cow::Borrowed(record),
            n: 0,
        };
        self.emit_at(&mut line, payload, p.turn_id, p.model, out);
    }

    /// Remember a text emitted from one stream, for a twin that may follow
    /// in the other one.
    fn remember(&mut self, twin: Twin, text: &mut TwinText<'_>) {
        if self.st.legacy {
            return;
        }
        if self.st.emitted.len() >= TWIN_WINDOW {
            self.st.emitted.remove(0);
        }
        let h = self.hash_of(text);
        self.st.emitted.push((twin, h));
    }

    /// Take a remembered twin of `text`, if any.
    fn take_emitted(&mut self, twin: Twin, text: &mut TwinText<'_>) -> bool {
        if !self.st.emitted.iter().any(|&(t, _)| t == twin) {
            return false;
        }
        let h = self.hash_of(text);
        match self
            .st
            .emitted
            .iter()
            .position(|&(t, x)| t == twin && x == h)
        {
            Some(i) => {
                self.st.emitted.remove(i);
                true
            }
            None => false,
        }
    }

    /// Take a pending agent event whose text equals `text`.
    fn take_pending_agent(&mut self, thinking: bool, text: &mut TwinText<'_>) -> bool {
        if !self.st.pending_agent.iter().any(|p| p.thinking == thinking) {
            return false;
        }
        let h = self.hash_of(text);
        match self
            .st
            .pending_agent
            .iter()
            .position(|p| p.thinking == thinking && self.held_hash(p.hash, &p.text) == h)
        {
            Some(i) => {
                self.st.pending_agent.remove(i);
                true
            }
            None => false,
        }
    }

    fn hold_agent(
        &mut self,
        line: &LineCtx,
        thinking: bool,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) {
        let twin = if thinking {
            Twin::ReasoningItem
        } else {
            Twin::AssistantItem
        };
        let mut text = TwinText::new(text);
        if self.take_emitted(twin, &mut text) {
            return;
        }
        if self.st.pending_agent.len() >= TWIN_WINDOW {
            let oldest = self.st.pending_agent.remove(0);
            self.emit_orphan(oldest, out);
        }
        let hash = Some(self.hash_of(&mut text));
        let text = text.text;
        self.st.pending_agent.push(PendingAgent {
            offset: line.offset,
            timestamp: line.timestamp.clone(),
            turn_id: self.st.turn_id.clone(),
            model: self.st.model.clone(),
            thinking,
            text: text.to_owned(),
            hash,
        });
    }

    /// Inside a copy, a record written long after the one before it is the
    /// session's own again (a copy is written in one burst). A record
    /// without a readable time keeps the copy going.
    fn step_copy(&mut self, timestamp: Option<&str>) {
        let Some(region) = &mut self.st.copy else {
            return;
        };
        let Some(now) = timestamp.and_then(copy::rfc3339_millis) else {
            return;
        };
        match region.last_ms {
            Some(last) if now - last > copy::COPY_GAP_MS => self.st.copy = None,
            _ => region.last_ms = Some(now),
        }
    }

    /// A turn whose time-ordered id was minted after the file's session
    /// began is the session's own: a copy has ended before it.
    fn own_turn(&mut self, turn_id: &str) {
        if self.st.copy.is_none() {
            return;
        }
        let minted = copy::uuid_v7_millis(turn_id);
        if let (Some(t), Some(start)) = (minted, self.st.own_start_ms) {
            if t >= start {
                self.st.copy = None;
            }
        }
    }

    // -- records -------------------------------------------------------------

    fn session_meta(
        &mut self,
        line: &mut LineCtx,
        payload: &RawValue,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let meta: SessionMeta<'_> = shape(serde_json::from_str(payload.get()))?;
        if self.st.session_id.is_some() {
            let own = self.st.own.as_deref().or(self.st.session_id.as_deref());
            if own.is_some_and(|o| *o != *meta.id) {
                // Another thread's header: its copied history follows.
                let last_ms = line.timestamp.as_deref().and_then(copy::rfc3339_millis);
                self.st.copy = Some(CopyRegion { last_ms });
            }
        } else {
            self.st.own = Some(meta.id.clone().into_owned());
            self.st.own_start_ms = meta
                .timestamp
                .as_deref()
                .and_then(copy::rfc3339_millis)
                .or_else(|| copy::uuid_v7_millis(&meta.id))
                .or_else(|| line.timestamp.as_deref().and_then(copy::rfc3339_millis));
            self.st.session_id = Some(meta.id.as_ref().into());
            if let Some(sub) = meta.source.and_then(subagent_source) {
                let own = meta.id.into_owned();
                let nickname = sub.nickname.or(meta.agent_nickname);
                let role = sub.role.or(meta.agent_role);
                self.st.subagent = Some(Subagent {
                    id: Some(own),
                    label: match (nickname, role) {
                        (Some(n), Some(r)) => Some(format!("{n} ({r})")),
                        (n, r) => n.or(r),
                    },
                });
                if let Some(parent) = sub.parent {
                    self.st.session_id = Some(parent.into());
                }
            }
        }
        self.info(line, "session_meta", payload, out);
        Ok(())
    }

    /// A response item (enveloped or bare). `legacy` bare items have no
    /// event stream to pair with.
    fn response_item(
        &mut self,
        line: &mut LineCtx,
        json: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let item: RawItem<'_> = match serde_json::from_str(json) {
            Ok(item) => item,
            Err(e) => {
                // Unknown item types may use these field names differently.
                let head: Head<'_> = shape(serde_json::from_str(json))?;
                line.set_kind(&head.kind);
                if is_known_item(&head.kind) {
                    return Err(Malformed::WrongShape(e.to_string()));
                }
                self.release_pending_user(out);
                self.emit(
                    line,
                    Payload::ProviderRaw {
                        record: raw_from_str(json),
                    },
                    out,
                );
                return Ok(());
            }
        };
        if is_typed_item(&item.kind) {
            return self.typed_item(line, item, out);
        }
        line.set_kind(&item.kind);
        self.release_pending_user(out);
        if item.kind == "ghost_snapshot" {
            self.info(line, "ghost_snapshot", &raw_str(json)?, out);
        } else {
            self.emit(
                line,
                Payload::ProviderRaw {
                    record: raw_from_str(json),
                },
                out,
            );
        }
        Ok(())
    }

    /// A response item of a kind read from its fields alone
    /// ([`is_typed_item`]).
    // Long because: one match over the item kinds, so each kind's mapping is read side by side.
    fn typed_item<'a, O: Into<Output<'a>>>(
        &mut self,
        line: &mut LineCtx,
        item: Item<'a, O>,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let kind = item.kind.as_ref();
        line.set_kind(kind);
        // A user-role message may be the twin the pending one waits for, or
        // a new pending one; everything else releases the pending one first.
        let user_role = kind == "message" && item.role.as_deref() == Some("user");
        if !user_role {
            self.release_pending_user(out);
        }
        match kind {
            "message" => self.message(line, &item, out)?,
            "reasoning" => {
                let parts = reasoning_parts(&item);
                for p in &parts {
                    let mut p = TwinText::new(p);
                    if !self.take_pending_agent(true, &mut p) {
                        self.remember(Twin::ReasoningItem, &mut p);
                    }
                }
                let text = parts.join("\n\n");
                self.emit(line, Payload::Thinking { text }, out);
            }
            "function_call" | "custom_tool_call" => {
                let call_id = item.call_id.as_deref().ok_or_else(|| missing("call_id"))?;
                let name = item.name.as_deref().ok_or_else(|| missing("name"))?;
                let input = if self.hidden.tools {
                    match &item.input {
                        Some(_) if kind == "custom_tool_call" => null_raw(),
                        _ => unkept_tool_input(item.arguments)?,
                    }
                } else if kind == "function_call" {
                    tool_input(item.arguments)?
                } else {
                    match &item.input {
                        Some(text) => raw_json(text.as_ref()),
                        None => tool_input(item.arguments)?,
                    }
                };
                self.emit(
                    line,
                    Payload::ToolCall {
                        tool_call_id: call_id.to_owned(),
                        name: name.to_owned(),
                        input,
                    },
                    out,
                );
            }
            "function_call_output" | "custom_tool_call_output" => {
                let call_id = item.call_id.as_deref().ok_or_else(|| missing("call_id"))?;
                let raw = item.output.ok_or_else(|| missing("output"))?;
                let (output, is_error): (Text, bool) = match raw.into() {
                    Output::Raw(raw) if self.hidden.tools => unkept_tool_output(raw)?,
                    Output::Raw(raw) if self.json_texts => json_tool_output(raw)?,
                    output => tool_output(output)?,
                };
                self.emit(
                    line,
                    Payload::ToolResult {
                        tool_call_id: call_id.to_owned(),
                        output,
                        is_error,
                    },
                    out,
                );
            }
            "web_search_call" => {
                // The item has no call id; its `web_search_end` event (which
                // comes first) has one, matched here by order and action.
                let action = item.action.map(|a| a.get().to_owned());
                let call_id = match self.st.pending_search.take() {
                    Some(p) if p.action.is_none() || action.is_none() || p.action == action => {
                        p.call_id
                    }
                    _ => format!("{}:{}", self.ctx.file_tag, line.offset),
                };
                let input = item.action.map_or_else(null_raw, raw_copy);
                self.emit(
                    line,
                    Payload::ToolCall {
                        tool_call_id: call_id,
                        name: "web_search".into(),
                        input,
                    },
                    out,
                );
            }
            "local_shell_call" => {
                // Its output is a `function_call_output` with this call id.
                let call_id = match item.call_id.as_deref() {
                    Some(id) => id.to_owned(),
                    None => format!("{}:{}", self.ctx.file_tag, line.offset),
                };
                let input = item.action.map_or_else(null_raw, raw_copy);
                self.emit(
                    line,
                    Payload::ToolCall {
                        tool_call_id: call_id,
                        name: "local_shell".into(),
                        input,
                    },
                    out,
                );
            }
            // Not a typed kind: `response_item` handles those.
            _ => {}
        }
        Ok(())
    }

    fn message<O>(
        &mut self,
        line: &mut LineCtx,
        item: &Item<'_, O>,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let role = item.role.as_deref().ok_or_else(|| missing("role"))?;
        let blocks = item.content.as_deref().ok_or_else(|| missing("content"))?;
        let (text, attachments) = blocks_text(blocks);
        match role {
            "assistant" => {
                let mut t = TwinText::new(&text);
                if !self.take_pending_agent(false, &mut t) {
                    self.remember(Twin::AssistantItem, &mut t);
                }
                self.emit(line, Payload::AssistantMessage { text }, out);
            }
            "user" => match classify_blocks(blocks) {
                UserText::Injected => {
                    self.release_pending_user(out);
                    self.remember(Twin::InjectedItem, &mut TwinText::new(&text));
                    self.system(line, SystemCategory::InjectedContext, text, out);
                }
                UserText::Shell => {
                    self.release_pending_user(out);
                    self.system(line, SystemCategory::UserShell, text, out);
                }
                UserText::Plain if self.st.legacy => {
                    self.release_pending_user(out);
                    self.user_text(line, text, attachments, out);
                }
                UserText::Plain => {
                    self.release_pending_user(out);
                    let mut t = TwinText::new(&text);
                    if self.take_emitted(Twin::UserEvent, &mut t) {
                        return Ok(());
                    }
                    let hash = Some(self.hash_of(&mut t));
                    self.st.pending_user = Some(PendingUser {
                        offset: line.offset,
                        timestamp: line.timestamp.clone(),
                        turn_id: self.st.turn_id.clone(),
                        hash,
                        text,
                        attachments,
                    });
                }
            },
            // Developer and system roles: instructions from the agent.
            _ => self.system(line, SystemCategory::InjectedContext, text, out),
        }
        Ok(())
    }

    /// Text a human typed: a user message in the main thread, the prompt it
    /// was given in a subagent thread.
    fn user_text(
        &self,
        line: &mut LineCtx,
        text: String,
        attachments: u32,
        out: &mut dyn FnMut(Event),
    ) {
        let payload = if self.st.subagent.is_some() {
            Payload::SystemMessage {
                category: SystemCategory::SubagentPrompt,
                text,
            }
        } else {
            Payload::UserMessage { text, attachments }
        };
        self.emit(line, payload, out);
    }

    /// A `user_message` event: the human's words (the twin of a user-role
    /// message item) or, in Codex 0.3x, instructions Codex wrote.
    fn user_message(&mut self, line: &mut LineCtx, m: UserMsg<'_>, out: &mut dyn FnMut(Event)) {
        if let Some(category) = injected_event(&m) {
            // Codex 0.3x also wrote its own instructions as
            // `user_message` events: not the human's words. The
            // twin of an injected item is already out.
            self.release_pending_user(out);
            if !self.take_emitted(Twin::InjectedItem, &mut TwinText::new(&m.message)) {
                self.system(line, category, m.message.into_owned(), out);
            }
            return;
        }
        self.turn_boundary(out);
        let mut attachments = len_u32(&m.images) + len_u32(&m.local_images);
        let mut t = TwinText::new(&m.message);
        match self.st.pending_user.take() {
            Some(p) if self.held_hash(p.hash, &p.text) == self.hash_of(&mut t) => {
                attachments = attachments.max(p.attachments);
            }
            Some(p) => {
                self.st.pending_user = Some(p);
                self.release_pending_user(out);
                self.remember(Twin::UserEvent, &mut t);
            }
            None => self.remember(Twin::UserEvent, &mut t),
        }
        self.user_text(line, m.message.into_owned(), attachments, out);
    }

    /// An `event_msg` of one of [`FAST_EVENTS`], read by the fast path: what
    /// [`Self::event_msg`] does with it.
    fn text_event(
        &mut self,
        line: &mut LineCtx,
        ev: TextEvent<'_>,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        match ev {
            TextEvent::User(m) => {
                line.set_kind("user_message");
                self.user_message(line, m, out);
            }
            TextEvent::Agent(reasoning, text) => {
                line.set_kind(if reasoning {
                    "agent_reasoning"
                } else {
                    "agent_message"
                });
                self.release_pending_user(out);
                self.hold_agent(line, reasoning, &text, out);
            }
        }
        Ok(())
    }

    // Long because: one match over the event_msg kinds, so each kind's mapping is read side by side.
    fn event_msg(
        &mut self,
        line: &mut LineCtx,
        payload: &RawValue,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let json = payload.get();
        let head: Head<'_> = shape(serde_json::from_str(json))?;
        let kind = head.kind.as_ref();
        line.set_kind(kind);
        if kind != "user_message" {
            self.release_pending_user(out);
        }
        match kind {
            "user_message" => {
                let m: UserMsg<'_> = shape(serde_json::from_str(json))?;
                self.user_message(line, m, out);
            }
            "agent_message" => {
                let m: AgentMsg<'_> = shape(serde_json::from_str(json))?;
                self.hold_agent(line, false, &m.message, out);
            }
            "agent_reasoning" => {
                let m: AgentReasoning<'_> = shape(serde_json::from_str(json))?;
                self.hold_agent(line, true, &m.text, out);
            }
            "task_started" | "task_complete" => {
                let t: TurnEvent<'_> = shape(serde_json::from_str(json))?;
                self.turn_boundary(out);
                if kind == "task_started" {
                    if let Some(id) = t.turn_id {
                        self.own_turn(&id);
                        self.st.turn_id = Some(id.as_ref().into());
                    }
                }
                self.info(line, kind, payload, out);
                if kind == "task_complete" {
                    self.st.turn_id = None;
                }
            }
            "turn_aborted" => {
                let t: TurnEvent<'_> = shape(serde_json::from_str(json))?;
                self.turn_boundary(out);
                let text = match t.reason.as_deref() {
                    Some(r) => format!("Turn aborted: {r}"),
                    None => "Turn aborted".to_owned(),
                };
                self.system(line, SystemCategory::Notice, text, out);
                self.st.turn_id = None;
            }
            "error" => {
                let e: ErrorEvent<'_> = shape(serde_json::from_str(json))?;
                self.system(line, SystemCategory::Error, e.message.into_owned(), out);
            }
            "web_search_end" => {
                let w: WebSearchEnd<'_> = shape(serde_json::from_str(json))?;
                self.st.pending_search = Some(PendingSearch {
                    call_id: w.call_id.into_owned(),
                    action: w.action.map(|a| a.get().to_owned()),
                });
                self.info(line, kind, payload, out);
            }
            "token_count"
            | "context_compacted"
            | "exec_command_end"
            | "patch_apply_end"
            | "mcp_tool_call_end"
            | "view_image_tool_call" => self.info(line, kind, payload, out),
            _ => self.emit(
                line,
                Payload::ProviderRaw {
                    record: raw_from_str(json),
                },
                out,
            ),
        }
        Ok(())
    }

    fn envelope(
        &mut self,
        bytes_json: &str,
        line: &mut LineCtx,
        top: &str,
        payload: &RawValue,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        match top {
            "response_item" => self.response_item(line, payload.get(), out),
            "event_msg" => self.event_msg(line, payload, out),
            "session_meta" => {
                self.release_pending_user(out);
                self.session_meta(line, payload, out)
            }
            "turn_context" => {
                let tc: TurnContext<'_> = shape(serde_json::from_str(payload.get()))?;
                self.release_pending_user(out);
                if let Some(m) = tc.model {
                    self.st.model = Some(m.as_ref().into());
                }
                if let Some(t) = tc.turn_id {
                    self.own_turn(&t);
                    self.st.turn_id = Some(t.as_ref().into());
                }
                self.info(line, "turn_context", payload, out);
                Ok(())
            }
            "compacted" => {
                let c: Compacted<'_> = shape(serde_json::from_str(payload.get()))?;
                self.release_pending_user(out);
                let kept = c.replacement_history.as_ref().map_or(0, Vec::len);
                let text = match c.message.as_deref().map(str::trim) {
                    Some(m) if !m.is_empty() => m.to_owned(),
                    _ => format!(
                        "Context compacted; {kept} item{} kept (summary not readable).",
                        if kept == 1 { "" } else { "s" }
                    ),
                };
                self.system(line, SystemCategory::Compaction, text, out);
                self.info(line, "compacted", payload, out);
                Ok(())
            }
            _ => {
                self.release_pending_user(out);
                self.emit(
                    line,
                    Payload::ProviderRaw {
                        record: raw_from_str(bytes_json),
                    },
                    out,
                );
                Ok(())
            }
        }
    }
}

fn len_u32<T>(v: &Option<Vec<T>>) -> u32 {
    v.as_ref()
        .map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX))
}

fn raw_str(json: &str) -> Result<Box<RawValue>, Malformed> {
    RawValue::from_string(json.to_owned()).map_err(|e| Malformed::WrongShape(e.to_string()))
}

fn is_object(json: &str) -> bool {
    json.trim_start().starts_with('{')
}

/// Response item kinds read from their fields alone (every other kind
/// needs the item's raw JSON).
fn is_typed_item(kind: &str) -> bool {
    matches!(
        kind,
        "message"
            | "reasoning"
            | "function_call"
            | "custom_tool_call"
            | "function_call_output"
            | "custom_tool_call_output"
            | "web_search_call"
            | "local_shell_call"
    )
}

fn is_envelope_type(kind: &str) -> bool {
    matches!(
        kind,
        "session_meta" | "response_item" | "event_msg" | "turn_context" | "compacted"
    )
}

fn is_known_item(kind: &str) -> bool {
    matches!(
        kind,
        "message"
            | "reasoning"
            | "function_call"
            | "function_call_output"
            | "custom_tool_call"
            | "custom_tool_call_output"
            | "web_search_call"
            | "local_shell_call"
            | "ghost_snapshot"
    )
}

/// What `session_meta.source.subagent` says about a subagent thread.
struct SubagentSource {
    parent: Option<String>,
    nickname: Option<String>,
    role: Option<String>,
}

fn subagent_source(source: &RawValue) -> Option<SubagentSource> {
    if !source.get().starts_with('{') {
        return None;
    }
    let obj: SourceObj<'_> = serde_json::from_str(source.get()).ok()?;
    let sub = obj.subagent?;
    let json = sub.get();
    if json == "null" {
        return None;
    }
    // `"review"`, `"compact"`, `{"other": …}` name the kind of subagent;
    // `{"thread_spawn": {…}}` names its parent thread.
    if json.starts_with('"') {
        let label: String = serde_json::from_str(json).ok()?;
        return Some(SubagentSource {
            parent: None,
            nickname: None,
            role: Some(label),
        });
    }
    let spawn = serde_json::from_str::<SubagentObj>(json)
        .ok()
        .and_then(|o| o.thread_spawn);
    Some(match spawn {
        Some(t) => SubagentSource {
            parent: t.parent_thread_id,
            nickname: t.agent_nickname,
            role: t.agent_role,
        },
        None => SubagentSource {
            parent: None,
            nickname: None,
            role: None,
        },
    })
}

impl RecordParser for CodexParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        json: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let bytes = json.as_bytes();
        if may_be_fast(bytes) {
            let done = if self.hidden.tools || self.json_texts {
                self.fast::<&RawValue>(offset, json, out)
            } else {
                self.fast::<BorrowedStr<'_>>(offset, json, out)
            };
            if let Some(done) = done {
                return done;
            }
        }
        self.general(offset, bytes, json, out)
    }

    fn hide(&mut self, hidden: Hidden) {
        self.hidden = hidden;
    }

    fn keep_json(&mut self) {
        self.json_texts = true;
    }

    fn flush(&mut self, out: &mut dyn FnMut(Event)) {
        // The input is complete: nothing held can still meet its twin.
        self.release_pending_user(out);
        for p in std::mem::take(&mut self.st.pending_agent) {
            self.emit_orphan(p, out);
        }
    }

    fn state(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null);
        // Holding no hash, the state says nothing of how they are made: an
        // older release reads it too (and this one adopts the wide hash
        // again on restore).
        if !self.holds_hash() {
            if let Some(o) = v.as_object_mut() {
                o.remove("twin_hash");
            }
        }
        v
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        if !state.is_object() {
            return Err(Malformed::WrongShape(
                "parser state is not an object".into(),
            ));
        }
        self.st = State::deserialize(state).map_err(|e| Malformed::WrongShape(e.to_string()))?;
        self.adopt_wide_hash();
        Ok(())
    }
}

impl CodexParser {
    /// A line the fast path reads, tool outputs read as `O`; `None` leaves
    /// it to the general path.
    fn fast<'a, O: Deserialize<'a> + Into<Output<'a>>>(
        &mut self,
        offset: u64,
        json: &'a str,
        out: &mut dyn FnMut(Event),
    ) -> Option<Result<(), Malformed>> {
        let fast = serde_json::from_str::<FastLine<'a, O>>(json).ok()?;
        let ts = fast.timestamp.as_deref();
        match fast.payload {
            FastPayload::Item(item) => {
                self.step_copy(ts);
                let mut line = LineCtx::new(offset, ts, "response_item");
                Some(self.typed_item(&mut line, item, out))
            }
            FastPayload::Event(ev) => {
                let ev = ev.typed()?;
                self.step_copy(ts);
                let mut line = LineCtx::new(offset, ts, "event_msg");
                Some(self.text_event(&mut line, ev, out))
            }
        }
    }

    /// Any line, the general way (the fast path aside).
    fn general(
        &mut self,
        offset: u64,
        bytes: &[u8],
        json: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let probe: Probe<'_> =
            serde_json::from_str(json).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        // Derived structs also accept arrays; a record is always an object.
        if !is_object(json) {
            return Err(Malformed::WrongShape("record is not a JSON object".into()));
        }
        let timestamp = probe.timestamp.as_deref();
        self.step_copy(timestamp);

        // Modern and 0.34 envelope.
        if let (Some(top), Some(payload)) = (probe.kind.as_deref(), probe.payload) {
            if is_envelope_type(top) && !is_object(payload.get()) {
                return Err(Malformed::WrongShape(format!(
                    "`{top}` payload is not an object"
                )));
            }
            let mut line = LineCtx::new(offset, timestamp, top);
            return self.envelope(json, &mut line, top, payload, out);
        }
        match (probe.kind.as_deref(), probe.record_type, probe.id) {
            // Legacy bare response item.
            (Some(kind), _, _) if is_known_item(kind) => {
                self.st.legacy = true;
                let mut line = LineCtx::new(offset, timestamp, "");
                self.response_item(&mut line, json, out)
            }
            (Some(kind), _, _) if is_envelope_type(kind) => {
                Err(Malformed::WrongShape(format!("`{kind}` without payload")))
            }
            // Legacy `{"record_type":"state"}`.
            (None, Some(_), _) => {
                self.release_pending_user(out);
                let mut line = LineCtx::new(offset, timestamp, "record_type");
                self.info(&mut line, "state", &raw_str(json)?, out);
                Ok(())
            }
            // Legacy header `{id,timestamp,instructions,git}`.
            (None, None, Some(_)) => {
                let header: LegacyHeader<'_> = shape(serde_json::from_str(json))?;
                self.release_pending_user(out);
                self.st.legacy = true;
                if self.st.session_id.is_none() {
                    self.st.session_id = Some(header.id.as_ref().into());
                }
                let mut line = LineCtx::new(offset, timestamp, "session_header");
                self.info(&mut line, "session_meta", &raw_str(json)?, out);
                Ok(())
            }
            // A record of no known generation: kept as it is.
            _ => {
                self.release_pending_user(out);
                let mut line = LineCtx::new(
                    offset,
                    timestamp,
                    probe.kind.as_deref().unwrap_or("unknown"),
                );
                self.emit(
                    &mut line,
                    Payload::ProviderRaw {
                        record: raw_str(json)?,
                    },
                    out,
                );
                Ok(())
            }
        }
    }
}

/// [`super::read_both_ways`] for [`Codex`]: the `codex_paths` fuzz
/// target and the unit tests check that the fast and general paths agree.
#[doc(hidden)]
pub fn read_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = FileCtx {
        provider: ID,
        file_tag: "f".into(),
        session_hint: "hint".into(),
        subagent: None,
    };
    super::read_both_ways(
        lines,
        || CodexParser::new(ctx.clone()),
        |p, offset, bytes, json, out| p.general(offset, bytes, json, out),
    )
}

/// [`super::read_json_both_ways`] for [`Codex`]: the `codex_paths` fuzz
/// target calls it.
#[doc(hidden)]
pub fn read_json_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = both_ways_ctx();
    super::read_json_both_ways(lines, || CodexParser::new(ctx.clone()))
}

/// The file the `*_both_ways` readers read.
fn both_ways_ctx() -> FileCtx {
    FileCtx {
        provider: ID,
        file_tag: "f".into(),
        session_hint: "hint".into(),
        subagent: None,
    }
}

/// [`super::read_hidden_both_ways`] for [`Codex`]: the `codex_paths` fuzz
/// target and the unit tests check that a parser told what the consumer
/// throws away reads as one that reads it all.
#[doc(hidden)]
pub fn read_hidden_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = both_ways_ctx();
    super::read_hidden_both_ways(lines, || CodexParser::new(ctx.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEGACY: &str = include_str!("../../tests/fixtures/codex/legacy-2025-08.jsonl");
    const V034: &str = include_str!("../../tests/fixtures/codex/v0.34-no-turn-context.jsonl");
    const MODERN: &str = include_str!("../../tests/fixtures/codex/modern.jsonl");
    const SUBAGENT: &str = include_str!("../../tests/fixtures/codex/subagent-thread-spawn.jsonl");
    const RESUMED: &str = include_str!("../../tests/fixtures/codex/resumed-two-session-meta.jsonl");

    #[test]
    fn every_line_the_fast_path_reads_is_tried_on_it() {
        let spaced = r#"{"timestamp": "2026-01-08T15:00:00.000Z", "type" : "response_item", "payload": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}}"#;
        let mut tried = 0;
        for text in [LEGACY, V034, MODERN, SUBAGENT, RESUMED, spaced] {
            for line in text.lines() {
                let reads = serde_json::from_str::<FastLine<'_, BorrowedStr<'_>>>(line).is_ok();
                assert!(!reads || may_be_fast(line.as_bytes()), "{line}");
                tried += usize::from(reads);
            }
        }
        assert!(tried > 5, "{tried}");
        for (line, tried) in [
            (
                r#"{"timestamp":"t","type":"event_msg","payload":{"type":"agent_message","message":"m"}}"#,
                true,
            ),
            (
                r#"{"timestamp":"t","type" : "event_msg","payload":{"type": "user_message","message":"m"}}"#,
                true,
            ),
            // A kind the fast path does not read; the kind before the
            // record type.
            (
                r#"{"timestamp":"t","type":"event_msg","payload":{"type":"token_count","info":null}}"#,
                false,
            ),
            (
                r#"{"payload":{"type":"agent_message","message":"m"},"type":"event_msg"}"#,
                false,
            ),
        ] {
            assert_eq!(may_be_fast(line.as_bytes()), tried, "{line}");
        }
    }

    fn ctx() -> FileCtx {
        FileCtx {
            provider: ID,
            file_tag: "f".into(),
            session_hint: "hint".into(),
            subagent: None,
        }
    }

    /// Lines with their byte offsets, as the reader would deliver them.
    fn lines(text: &str) -> Vec<(u64, &str)> {
        let mut offset = 0u64;
        let mut out = Vec::new();
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches('\n');
            if !body.is_empty() {
                out.push((offset, body));
            }
            offset += line.len() as u64;
        }
        out
    }

    fn feed(
        parser: &mut CodexParser,
        text: &str,
        base: u64,
        events: &mut Vec<Event>,
    ) -> Vec<(u64, Malformed)> {
        let mut errors = Vec::new();
        for (offset, line) in lines(text) {
            if let Err(m) = parser.record(base + offset, line.as_bytes(), &mut |e| events.push(e)) {
                errors.push((base + offset, m));
            }
        }
        errors
    }

    /// Parse a whole text (then flush), asserting no line is malformed.
    fn parse(text: &str) -> Vec<Event> {
        let mut parser = CodexParser::new(ctx());
        let mut events = Vec::new();
        let errors = feed(&mut parser, text, 0, &mut events);
        assert!(errors.is_empty(), "{errors:?}");
        parser.flush(&mut |e| events.push(e));
        events
    }

    /// Parse lines given as separate strings.
    fn parse_lines(ls: &[&str]) -> Vec<Event> {
        parse(&(ls.join("\n") + "\n"))
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind().as_str()).collect()
    }

    fn texts(events: &[Event]) -> Vec<(String, String)> {
        events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::UserMessage { text, .. } => Some(("user".into(), text.clone())),
                Payload::AssistantMessage { text } => Some(("assistant".into(), text.clone())),
                Payload::Thinking { text } => Some(("thinking".into(), text.clone())),
                Payload::SystemMessage { category, text } => {
                    Some((category.label().to_owned(), text.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn count(events: &[Event], kind: Kind) -> usize {
        events.iter().filter(|e| e.kind() == kind).count()
    }

    fn category_count(events: &[Event], cat: SystemCategory) -> usize {
        events
            .iter()
            .filter(|e| matches!(&e.payload, Payload::SystemMessage { category, .. } if *category == cat))
            .count()
    }

    fn ri_user(text: &str) -> String {
        format!(
            r#"{{"timestamp":"t1","type":"response_item","payload":{{"type":"message","role":"user","content":[{{"type":"input_text","text":{}}}]}}}}"#,
            serde_json::to_string(text).unwrap()
        )
    }

    fn em_user(text: &str) -> String {
        format!(
            r#"{{"timestamp":"t2","type":"event_msg","payload":{{"type":"user_message","message":{},"images":[]}}}}"#,
            serde_json::to_string(text).unwrap()
        )
    }

    const META: &str = r#"{"timestamp":"t0","type":"session_meta","payload":{"id":"sess-1","cwd":"/p","cli_version":"0.77.0"}}"#;
    const TOKENS: &str =
        r#"{"timestamp":"t3","type":"event_msg","payload":{"type":"token_count","info":null}}"#;

    // -- discovery -----------------------------------------------------------

    #[test]
    fn classify_accepts_both_layouts_and_extracts_the_id() {
        let name = "rollout-2025-09-16T14-12-31-613a9a68-8816-40b2-a2d4-041ade599da6.jsonl";
        for rel in [
            format!("2025/09/16/{name}"),
            name.to_owned(),
            format!("/home/u/.codex/sessions/2025/09/16/{name}"),
            format!("/home/u/.codex/archived_sessions/{name}"),
        ] {
            let ctx = Codex
                .classify(Path::new(&rel))
                .unwrap_or_else(|| panic!("{rel}"));
            assert_eq!(ctx.session_hint, "613a9a68-8816-40b2-a2d4-041ade599da6");
            assert_eq!(
                ctx.file_tag,
                "rollout-2025-09-16T14-12-31-613a9a68-8816-40b2-a2d4-041ade599da6"
            );
            assert_eq!(ctx.provider, ID);
            assert!(ctx.subagent.is_none());
        }
        for rel in [
            "2025/09/16/history.jsonl",
            "2025/09/16/rollout-x.json",
            "2025/9/16/rollout-x.jsonl",
            "notes/rollout-x.jsonl",
            "2025/09/16/../rollout-x.jsonl",
            "",
        ] {
            assert!(Codex.classify(Path::new(rel)).is_none(), "{rel}");
        }
    }

    #[test]
    fn session_hint_without_a_uuid_drops_prefix_and_time() {
        assert_eq!(id_from_stem("rollout-2025-09-16T14-12-31-abc"), "abc");
        assert_eq!(id_from_stem("rollout-odd"), "odd");
        assert_eq!(
            id_from_stem("rollout-2026-04-15T11-58-23-019d924b-53f5-78f1-a0d4-69aa13191f54"),
            "019d924b-53f5-78f1-a0d4-69aa13191f54"
        );
    }

    // -- the three generations -----------------------------------------------

    #[test]
    fn legacy_format() {
        let events = parse(LEGACY);
        assert_eq!(
            kinds(&events),
            [
                "provider.info",
                "provider.info",
                "system.message",
                "provider.info",
                "user.message",
                "assistant.thinking",
                "assistant.message",
                "assistant.tool.call",
                "assistant.tool.result",
                "provider.info",
                "assistant.thinking",
                "assistant.thinking",
                "assistant.tool.call",
                "assistant.tool.result",
                "assistant.message",
            ]
        );
        assert!(events
            .iter()
            .all(|e| &*e.session_id == "11111111-2222-4333-8444-555555555555"));
        // Only the header has a time stamp; nothing names a model.
        assert_eq!(
            events[0].timestamp.as_deref(),
            Some("2025-08-25T13:19:59.315Z")
        );
        assert!(events[1..].iter().all(|e| e.timestamp.is_none()));
        assert!(events.iter().all(|e| e.model.is_none()));
        assert_eq!(events[0].source.record, "session_header");
        assert_eq!(events[4].source.record, "message");
        // With no event stream the human's message is the user-role item.
        assert!(events[4].is_human_message());
        assert_eq!(
            texts(&events)[1],
            ("user".into(), "list the files\n::record".into())
        );
        let t = texts(&events);
        assert_eq!(t[2].1, "**Listing**\n\nI will run ls.");
        assert_eq!(t[4].1, "Readable reasoning content.");
        assert_eq!(t[5].1, "", "encrypted-only reasoning is an empty marker");
        match &events[8].payload {
            Payload::ToolResult {
                tool_call_id,
                output,
                is_error,
            } => {
                assert_eq!(tool_call_id, "call_ls");
                assert_eq!(output, "a.txt\nb.txt\n");
                assert!(!is_error);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &events[13].payload,
            Payload::ToolResult { is_error: true, output, .. } if output.starts_with("cat: c.txt")
        ));
        match &events[7].payload {
            Payload::ToolCall { name, input, .. } => {
                assert_eq!(name, "shell");
                assert_eq!(input.get(), r#"{"command": ["bash", "-lc", "ls"]}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn injected_user_message_events_are_not_the_human() {
        // Codex 0.3x wrote its instructions as `user_message` events with a
        // `kind`; any event that opens like injected context is not typed.
        let kind = r#"{"timestamp":"t2","type":"event_msg","payload":{"type":"user_message","message":"AGENTS.md says\n::stop","kind":"user_instructions"}}"#;
        for line in [
            kind.to_owned(),
            em_user("<user_instructions>\nx </user_instructions>\n::stop\n</user_instructions>"),
            em_user("  <ENVIRONMENT_CONTEXT>\n::stop\n</ENVIRONMENT_CONTEXT>"),
            em_user("# AGENTS.md instructions for /r\n\n<INSTRUCTIONS>\n::stop\n</INSTRUCTIONS>"),
            em_user("<skill>\n<name>s</name>\n::stop\n</skill>"),
            em_user("<user_shell_command>\n::stop\n</user_shell_command>"),
        ] {
            let events = parse_lines(&[META, &line]);
            assert!(events.iter().all(|e| !e.is_human_message()), "{line}");
            assert_eq!(count(&events, Kind::SystemMessage), 1, "{line}");
        }
        let plain = r#"{"timestamp":"t2","type":"event_msg","payload":{"type":"user_message","message":"::stop","kind":"plain"}}"#;
        assert!(parse_lines(&[META, plain])
            .iter()
            .any(Event::is_human_message));
    }

    #[test]
    fn an_injected_item_and_its_event_twin_are_one_system_message() {
        let text = "<user_instructions>\nbe brief\n</user_instructions>";
        let twin = format!(
            r#"{{"timestamp":"t2","type":"event_msg","payload":{{"type":"user_message","message":{},"kind":"user_instructions"}}}}"#,
            serde_json::to_string(text).unwrap()
        );
        let events = parse_lines(&[META, &ri_user(text), &twin]);
        assert_eq!(
            texts(&events),
            [("Injected context".to_owned(), text.to_owned())]
        );
    }

    #[test]
    fn a_plain_block_does_not_hide_an_injected_one() {
        // In the legacy format plain user-role items are the human's; a
        // second block of injected text makes the whole item injected.
        let header = r#"{"id":"11111111-2222-4333-8444-555555555555","timestamp":"2025-08-25T13:19:59.315Z","instructions":null}"#;
        let item = r#"{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_text","text":"<user_instructions>\n::stop\n</user_instructions>"}]}"#;
        let events = parse_lines(&[header, item]);
        assert!(events.iter().all(|e| !e.is_human_message()));
        assert_eq!(category_count(&events, SystemCategory::InjectedContext), 1);
    }

    #[test]
    fn a_custom_prompt_expansion_is_one_human_message() {
        // `/prompts:name args` reaches the rollout only as the prompt
        // file's text with the arguments filled in, twice (item and event)
        // and with no trace of the file: kato cannot tell it from typing
        // (SECURITY.md). Only its plain paragraph lines can be commands;
        // the arguments a template fences off are not.
        let expanded = "## User Input\n\n```text\n::capture /args\n```\n\nYou **MUST** consider the user input.";
        let events = parse_lines(&[META, &ri_user(expanded), &em_user(expanded)]);
        let human: Vec<&Event> = events.iter().filter(|e| e.is_human_message()).collect();
        assert_eq!(human.len(), 1);
        assert!(crate::commands::command_events(human[0]).is_empty());
    }

    #[test]
    fn envelope_without_turn_context() {
        let events = parse(V034);
        assert_eq!(
            texts(&events),
            [
                (
                    "Injected context".into(),
                    "<environment_context>\n  <cwd>/home/u/p</cwd>\n</environment_context>".into()
                ),
                ("user".into(), "continue".into()),
                ("thinking".into(), String::new()),
                ("assistant".into(), "Running the tests.".into()),
                ("assistant".into(), "All tests pass.".into()),
            ]
        );
        assert_eq!(count(&events, Kind::ToolCall), 1);
        assert_eq!(count(&events, Kind::ToolResult), 1);
        assert!(events
            .iter()
            .all(|e| e.model.is_none() && e.turn_id.is_none()));
        assert!(events
            .iter()
            .all(|e| &*e.session_id == "22222222-3333-4444-8555-666666666666"));
        // The human message is the event, not its model-facing twin.
        let user = events.iter().find(|e| e.is_human_message()).unwrap();
        assert_eq!(user.source.record, "event_msg/user_message");
        assert_eq!(user.timestamp.as_deref(), Some("2026-01-05T10:00:02.000Z"));
    }

    // Long because: one realistic session of the modern format, checked record by record.
    #[test]
    fn modern_format() {
        let events = parse(MODERN);
        let open_page = lines(MODERN)
            .into_iter()
            .find(|(_, l)| l.contains("web_search_call") && l.contains("open_page"))
            .map(|(o, _)| format!("f:{o}"))
            .unwrap();
        let t = texts(&events);
        let expect: Vec<(&str, &str)> = vec![
            ("Injected context", "<permissions instructions>\nsandbox_mode is workspace-write."),
            ("Injected context", "# AGENTS.md instructions for /home/u/p\n\n<INSTRUCTIONS>\nBe brief.\n</INSTRUCTIONS><environment_context>\n  <cwd>/home/u/p</cwd>\n</environment_context>"),
            ("user", "Fix the build.\n::record /tmp/notes"),
            ("thinking", "**Looking**\n\nChecking the build.\n\n**Patching**\n\nFixing the import."),
            ("assistant", "I'll patch the import."),
            ("assistant", "Fixed."),
            ("User shell", "<user_shell_command>\n<command>\nls\n</command>\n<result>\na\n</result>\n</user_shell_command>"),
            ("user", "Now refactor everything."),
            // The interrupted turn's texts never got their response items.
            ("thinking", "**Planning**\n\nA big refactor."),
            ("assistant", "Starting the refactor."),
            ("Notice", "Turn aborted: interrupted"),
            ("Injected context", "<turn_aborted>\nThe user interrupted the previous turn on purpose.\n</turn_aborted>"),
            ("Error", "stream disconnected before completion"),
            ("Compaction", "Context compacted; 3 items kept (summary not readable)."),
        ];
        let got: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(got, expect);

        // Tools: calls and results pair up by id.
        let calls: Vec<(&str, &str, &str)> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::ToolCall {
                    tool_call_id,
                    name,
                    input,
                } => Some((tool_call_id.as_str(), name.as_str(), input.get())),
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            [
                (
                    "call_patch",
                    "apply_patch",
                    r#""*** Begin Patch\n*** Update File: src/main.rs\n@@\n-use foo;\n+use bar;\n*** End Patch\n""#
                ),
                (
                    "call_build",
                    "shell_command",
                    r#"{"command": "cargo build", "workdir": "/home/u/p"}"#
                ),
                (
                    "call_img",
                    "view_image",
                    r#"{"path": "/home/u/p/shot.png"}"#
                ),
                // Correlated with the `web_search_end` before it.
                (
                    "ws_1",
                    "web_search",
                    r#"{"type":"search","query":"rust unresolved import"}"#
                ),
                // No end event: a synthesized id.
                (
                    open_page.as_str(),
                    "web_search",
                    r#"{"type":"open_page","url":"https://doc.rust-lang.org/"}"#
                ),
            ]
        );
        let results: Vec<(&str, &str, bool)> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::ToolResult {
                    tool_call_id,
                    output,
                    is_error,
                } => Some((tool_call_id.as_str(), output.as_str(), *is_error)),
                _ => None,
            })
            .collect();
        assert_eq!(
            results,
            [
                ("call_patch", "Success. Updated the following files:\nM src/main.rs\n", false),
                ("call_build", "Exit code: 101\nWall time: 2 seconds\nOutput:\nerror[E0432]: unresolved import\n", true),
                ("call_img", "shot.png\n[image omitted]", false),
            ]
        );

        // Metadata and twins with extra details are kept as info.
        let topics: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::ProviderInfo { topic, .. } => Some(topic.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            topics,
            [
                "session_meta",
                "task_started",
                "turn_context",
                "token_count",
                "patch_apply_end",
                "exec_command_end",
                "view_image_tool_call",
                "web_search_end",
                "ghost_snapshot",
                "task_complete",
                "task_started",
                "exec_command_end",
                "task_complete",
                "task_started",
                "turn_context",
                "compacted",
                "context_compacted",
            ]
        );
        // Unknown event, item and record types are kept whole.
        let raws: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind() == Kind::ProviderRaw)
            .collect();
        assert_eq!(raws.len(), 3);
        assert_eq!(raws[0].source.record, "event_msg/item_completed");
        assert_eq!(raws[1].source.record, "response_item/future_item");
        assert_eq!(raws[2].source.record, "inbox_note");
        match &raws[2].payload {
            Payload::ProviderRaw { record } => assert!(record.get().starts_with(r#"{"timestamp""#)),
            other => panic!("{other:?}"),
        }
        match &raws[0].payload {
            Payload::ProviderRaw { record } => {
                assert_eq!(
                    record.get(),
                    r#"{"type":"item_completed","item":{"id":"x"}}"#
                )
            }
            other => panic!("{other:?}"),
        }

        // One human message per `user_message` event; images counted.
        let humans: Vec<&Event> = events.iter().filter(|e| e.is_human_message()).collect();
        assert_eq!(humans.len(), 2);
        assert!(matches!(
            humans[1].payload,
            Payload::UserMessage { attachments: 1, .. }
        ));
        assert!(events
            .iter()
            .all(|e| &*e.session_id == "33333333-4444-4555-8666-777777777777"));
    }

    #[test]
    fn model_and_turn_come_from_the_turn_records() {
        let events = parse(MODERN);
        let by_text = |needle: &str| {
            events
                .iter()
                .find(|e| {
                    texts(std::slice::from_ref(*e))
                        .first()
                        .is_some_and(|t| t.1 == needle)
                })
                .unwrap_or_else(|| panic!("{needle}"))
        };
        let fixed = by_text("Fixed.");
        assert_eq!(fixed.model.as_deref(), Some("gpt-5.4"));
        assert_eq!(fixed.turn_id.as_deref(), Some("turn-1"));
        let user = by_text("Fix the build.\n::record /tmp/notes");
        assert_eq!(user.turn_id.as_deref(), Some("turn-1"));
        assert!(
            user.model.is_none(),
            "only assistant events carry the model"
        );
        let orphan = by_text("Starting the refactor.");
        assert_eq!(orphan.model.as_deref(), Some("gpt-5.4-mini"));
        assert_eq!(orphan.turn_id.as_deref(), Some("turn-3"));
        assert_eq!(orphan.source.record, "event_msg/agent_message");
        // After the turn ends there is no current turn.
        let err = by_text("stream disconnected before completion");
        assert!(err.turn_id.is_none());
        let shell = by_text("<user_shell_command>\n<command>\nls\n</command>\n<result>\na\n</result>\n</user_shell_command>");
        assert_eq!(shell.turn_id.as_deref(), Some("turn-2"));
    }

    #[test]
    fn event_ids_are_offsets_with_a_sub_index() {
        let events = parse(MODERN);
        let ids: std::collections::HashSet<&str> =
            events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), events.len());
        for e in &events {
            let base = format!("f:{}", e.source.offset);
            assert!(
                e.event_id == base || e.event_id.starts_with(&format!("{base}#")),
                "{} at {}",
                e.event_id,
                e.source.offset
            );
            assert_eq!(e.source.file.as_deref(), Some("f"));
        }
        let compacted: Vec<&Event> = events
            .iter()
            .filter(|e| e.source.record == "compacted")
            .collect();
        assert_eq!(compacted.len(), 2);
        assert_eq!(
            compacted[1].event_id,
            format!("{}#1", compacted[0].event_id)
        );
        assert_eq!(compacted[0].kind(), Kind::SystemMessage);
        assert_eq!(compacted[1].kind(), Kind::ProviderInfo);
    }

    #[test]
    fn subagent_thread_belongs_to_its_parent() {
        let events = parse(SUBAGENT);
        let parent = "44444444-5555-4666-8777-888888888888";
        let own = "55555555-6666-4777-8888-999999999999";
        assert!(events.iter().all(|e| &*e.session_id == parent));
        for e in &events {
            let sub = e.subagent.as_ref().expect("every event is subagent work");
            assert_eq!(sub.id.as_deref(), Some(own));
            assert_eq!(sub.label.as_deref(), Some("Euclid (explorer)"));
        }
        // Nothing in a subagent thread is human input, not even a replayed
        // parent message with a command in it.
        assert_eq!(count(&events, Kind::UserMessage), 0);
        assert!(!events.iter().any(Event::is_human_message));
        assert_eq!(category_count(&events, SystemCategory::SubagentPrompt), 2);
        // Both headers are kept; the replayed parent message is not lost.
        let metas = events
            .iter()
            .filter(|e| matches!(&e.payload, Payload::ProviderInfo { topic, .. } if topic == "session_meta"))
            .count();
        assert_eq!(metas, 2);
        assert_eq!(
            texts(&events)
                .iter()
                .filter(|t| t.0 == "assistant")
                .map(|t| t.1.as_str())
                .collect::<Vec<_>>(),
            ["Replayed parent message.", "Tracing the bootstrap."]
        );
    }

    #[test]
    fn resumed_file_uses_its_first_header() {
        let events = parse(RESUMED);
        assert!(events
            .iter()
            .all(|e| &*e.session_id == "66666666-7777-4888-8999-aaaaaaaaaaaa"));
        assert_eq!(count(&events, Kind::ProviderInfo), 3);
        assert_eq!(count(&events, Kind::UserMessage), 2);
        assert_eq!(count(&events, Kind::AssistantMessage), 2);
        let last = events
            .iter()
            .rev()
            .find(|e| e.kind() == Kind::AssistantMessage)
            .unwrap();
        assert_eq!(last.model.as_deref(), Some("gpt-5-codex"));
        // The resumed session's history is a copy; the new turn is not.
        let humans: Vec<(&str, bool)> = events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::UserMessage { text, .. } => Some((text.as_str(), e.copied)),
                _ => None,
            })
            .collect();
        assert_eq!(humans, [("old question", true), ("new question", false)]);
        assert!(!events[0].copied, "the file's own header");
        assert!(events[1].copied, "the resumed session's header");
    }

    // -- copied history ------------------------------------------------------

    /// One enveloped line at `time` (seconds and millis after 10:00).
    fn at(ms: u32, ty: &str, payload: &str) -> String {
        format!(
            r#"{{"timestamp":"2026-04-15T10:{:02}:{:02}.{:03}Z","type":"{ty}","payload":{payload}}}"#,
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000
        )
    }

    fn human_message(ms: u32, text: &str) -> String {
        at(
            ms,
            "event_msg",
            &format!(
                r#"{{"type":"user_message","message":{}}}"#,
                serde_json::to_string(text).unwrap()
            ),
        )
    }

    /// (text, copied) of every human message.
    fn humans(events: &[Event]) -> Vec<(String, bool)> {
        events
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::UserMessage { text, .. } => Some((text.clone(), e.copied)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_copy_without_turn_ids_ends_at_the_first_late_record() {
        let meta = |id: &str, started: &str| {
            format!(r#"{{"id":"{id}","timestamp":"{started}","cwd":"/w"}}"#)
        };
        let events = parse_lines(&[
            &at(0, "session_meta", &meta("b", "2026-04-15T10:00:00.000Z")),
            &at(6000, "session_meta", &meta("a", "2026-04-15T08:00:00.000Z")),
            &human_message(6001, "::capture /x/resume-orig.md"),
            &at(6002, "turn_context", r#"{"cwd":"/w","model":"m"}"#),
            &human_message(6013, "second old one"),
            // Written 1.9 s after the copy's last record: still a copy.
            &human_message(7900, "::stop"),
            // 30 s later: the human typed this in the resumed session.
            &human_message(37_900, "::capture /x/resume-new.md"),
            &human_message(37_901, "and at once after it"),
        ]);
        assert_eq!(
            humans(&events),
            [
                ("::capture /x/resume-orig.md".into(), true),
                ("second old one".into(), true),
                ("::stop".into(), true),
                ("::capture /x/resume-new.md".into(), false),
                ("and at once after it".into(), false),
            ]
        );
        assert!(events.iter().all(|e| &*e.session_id == "b"));
    }

    #[test]
    fn a_fork_copy_ends_at_a_turn_minted_after_the_session_began() {
        // Time-ordered ids: the fork began at 10:00:00, the copied turn
        // is from 09:58, the fork's own turn from 10:00:05.
        let id_at = |ms: i64, rest: &str| {
            let hex = format!("{ms:012x}");
            format!("{}-{}-{rest}", &hex[..8], &hex[8..])
        };
        let start = copy::rfc3339_millis("2026-04-15T10:00:00.000Z").unwrap();
        let own = id_at(start, "7000-8000-000000000001");
        let old_turn = id_at(start - 120_000, "7000-8000-000000000002");
        let new_turn = id_at(start + 5000, "7000-8000-000000000003");
        let task = |ms, turn: &str| {
            at(
                ms,
                "event_msg",
                &format!(r#"{{"type":"task_started","turn_id":"{turn}"}}"#),
            )
        };
        let events = parse_lines(&[
            &at(
                0,
                "session_meta",
                &format!(r#"{{"id":"{own}","forked_from_id":"p","cwd":"/w"}}"#),
            ),
            &at(20, "session_meta", r#"{"id":"p","cwd":"/w"}"#),
            &task(21, &old_turn),
            &human_message(22, "::record"),
            // The fork's own turn, 19 ms after the copy.
            &task(41, &new_turn),
            &human_message(42, "::record"),
        ]);
        assert_eq!(
            humans(&events),
            [("::record".into(), true), ("::record".into(), false)]
        );
    }

    #[test]
    fn one_header_or_the_same_one_again_is_no_copy() {
        let same = r#"{"timestamp":"t9","type":"session_meta","payload":{"id":"sess-1"}}"#;
        let events = parse_lines(&[META, &em_user("a"), same, &em_user("b")]);
        assert!(events.iter().all(|e| !e.copied));
        // An unreadable time inside a copy keeps the copy going.
        let other = r#"{"timestamp":"t9","type":"session_meta","payload":{"id":"other"}}"#;
        let events = parse_lines(&[META, other, &em_user("a"), &em_user("b")]);
        assert!(events[1..].iter().all(|e| e.copied));
    }

    // -- twins ---------------------------------------------------------------

    #[test]
    fn user_twin_becomes_one_human_message() {
        let events = parse_lines(&[META, &ri_user("hello\n::stop"), &em_user("hello\n::stop")]);
        assert_eq!(kinds(&events), ["provider.info", "user.message"]);
        assert_eq!(events[1].source.record, "event_msg/user_message");
        assert_eq!(events[1].timestamp.as_deref(), Some("t2"));
        assert!(events[1].is_human_message());
        assert!(events[1].event_id.starts_with("f:"));
    }

    #[test]
    fn unpaired_user_items_are_model_input() {
        // Followed by another record.
        let events = parse_lines(&[META, &ri_user("from a script"), TOKENS]);
        assert_eq!(
            texts(&events),
            [("Model input".into(), "from a script".into())]
        );
        assert_eq!(events[1].source.record, "response_item/message");
        assert_eq!(events[1].timestamp.as_deref(), Some("t1"));
        // Followed by a user_message with other text: both are kept.
        let events = parse_lines(&[META, &ri_user("a"), &em_user("b")]);
        assert_eq!(
            texts(&events),
            [
                ("Model input".into(), "a".into()),
                ("user".into(), "b".into())
            ]
        );
        // At the end of the input.
        let events = parse_lines(&[META, &ri_user("last")]);
        assert_eq!(texts(&events), [("Model input".into(), "last".into())]);
        // Two in a row: the first is released when the second arrives.
        let events = parse_lines(&[META, &ri_user("one"), &ri_user("two"), &em_user("two")]);
        assert_eq!(
            texts(&events),
            [
                ("Model input".into(), "one".into()),
                ("user".into(), "two".into())
            ]
        );
    }

    #[test]
    fn twin_comparison_trims_and_joins_blocks() {
        let ri = r#"{"timestamp":"t1","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"part one, "},{"type":"input_text","text":"part two\n"},{"type":"input_image","image_url":"data:image/png;base64,AA"}]}}"#;
        let events = parse_lines(&[META, ri, &em_user("  part one, part two")]);
        assert_eq!(kinds(&events), ["provider.info", "user.message"]);
        assert!(matches!(
            &events[1].payload,
            Payload::UserMessage { text, attachments: 1 } if text == "  part one, part two"
        ));
    }

    #[test]
    fn user_twin_in_reverse_order_is_still_one_message() {
        let events = parse_lines(&[META, &em_user("hi"), &ri_user("hi"), TOKENS]);
        assert_eq!(
            kinds(&events),
            ["provider.info", "user.message", "provider.info"]
        );
    }

    #[test]
    fn user_twin_split_across_reads_via_state() {
        let first = [META, &ri_user("resume me")].join("\n") + "\n";
        let mut a = CodexParser::new(ctx());
        let mut events = Vec::new();
        assert!(feed(&mut a, &first, 0, &mut events).is_empty());
        // The held twin is part of the persisted state.
        let saved = serde_json::to_string(&a.state()).unwrap();
        assert!(saved.contains("resume me"), "{saved}");
        let mut b = CodexParser::new(ctx());
        b.restore(&serde_json::from_str(&saved).unwrap()).unwrap();
        let second = em_user("resume me") + "\n";
        assert!(feed(&mut b, &second, first.len() as u64, &mut events).is_empty());
        b.flush(&mut |e| events.push(e));
        assert_eq!(kinds(&events), ["provider.info", "user.message"]);
        assert_eq!(events[1].source.offset, first.len() as u64);
        assert_eq!(&*events[1].session_id, "sess-1");
        // The same as one read.
        let whole = parse(&(first + &second));
        let ids = |v: &[Event]| v.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&events), ids(&whole));
    }

    #[test]
    fn a_known_record_name_is_the_name_built_from_its_parts() {
        let envelopes = ["", "response_item", "event_msg", "turn_context", "x"];
        let kinds = [
            "response_item",
            "event_msg",
            "turn_context",
            "session_meta",
            "compacted",
            "message",
            "reasoning",
            "function_call",
            "function_call_output",
            "custom_tool_call",
            "custom_tool_call_output",
            "local_shell_call",
            "web_search_call",
            "user_message",
            "agent_message",
            "agent_reasoning",
            "token_count",
            "task_started",
            "task_complete",
            "turn_aborted",
            "web_search_end",
            "error",
            "future_kind",
        ];
        let mut known = 0;
        for envelope in envelopes {
            for kind in kinds {
                let built = match envelope {
                    "" => kind.to_owned(),
                    e => format!("{e}/{kind}"),
                };
                if let Some(name) = known_record(envelope, kind) {
                    assert_eq!(name, built);
                    known += 1;
                }
                let mut line = LineCtx::new(0, None, envelope);
                line.set_kind(kind);
                assert_eq!(line.record, built);
            }
        }
        assert!(known >= 25, "{known}");
    }

    #[test]
    fn the_twin_hash_is_stable_and_reads_the_trimmed_text() {
        // Kept in state files: a release that changes it must say so in
        // `TwinHash`, or a twin held across the upgrade is emitted twice.
        assert_eq!(wide_hash("resume me"), 0xa107_514d_4924_f065);
        assert_eq!(wide_hash("  resume me\n"), wide_hash("resume me"));
        let long = "0123456789abcdef".repeat(5);
        let mut seen = std::collections::HashSet::new();
        for n in 0..long.len() {
            assert!(seen.insert(wide_hash(&long[..n])), "prefix of {n} bytes");
        }
        assert_ne!(wide_hash("a\0"), wide_hash("a"));
    }

    #[test]
    fn a_twin_held_by_an_older_release_still_meets_its_twin() {
        let em = r#"{"timestamp":"t1","type":"event_msg","payload":{"type":"agent_message","message":"Done."}}"#;
        let ri = r#"{"timestamp":"t2","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Done."}]}}"#;
        let task = r#"{"timestamp":"t3","type":"event_msg","payload":{"type":"task_complete","turn_id":"x"}}"#;
        for (first, second) in [(em, ri), (ri, em)] {
            let head = [META, first].join("\n") + "\n";
            let mut a = CodexParser::new(ctx());
            let mut events = Vec::new();
            feed(&mut a, &head, 0, &mut events);
            // The state as an older release wrote it: FNV-1a hashes, no
            // `twin_hash` field.
            let mut saved = a.state();
            let obj = saved.as_object_mut().unwrap();
            assert_eq!(obj.remove("twin_hash").unwrap(), "wide");
            let old = fnv1a("Done.");
            for held in obj["pending_agent"].as_array_mut().unwrap() {
                held["hash"] = old.into();
            }
            for held in obj["emitted"].as_array_mut().unwrap() {
                held[1] = old.into();
            }
            let mut b = CodexParser::new(ctx());
            b.restore(&saved).unwrap();
            assert_eq!(b.st.twin_hash, TwinHash::Fnv1a, "{first}");
            let tail = [second, task].join("\n") + "\n";
            feed(&mut b, &tail, head.len() as u64, &mut events);
            b.flush(&mut |e| events.push(e));
            assert_eq!(count(&events, Kind::AssistantMessage), 1, "{first}");
            // Nothing is held after the turn: the fast hash from now on.
            assert_eq!(b.st.twin_hash, TwinHash::Wide, "{first}");
        }
        // A state holding nothing hashed is what an older release writes
        // (and reads), and switches at once.
        let saved = CodexParser::new(ctx()).state();
        assert!(saved.get("twin_hash").is_none(), "{saved}");
        let mut c = CodexParser::new(ctx());
        c.st.twin_hash = TwinHash::Fnv1a;
        c.restore(&saved).unwrap();
        assert_eq!(c.st.twin_hash, TwinHash::Wide);
    }

    #[test]
    fn assistant_twins_keep_the_response_item() {
        let em = r#"{"timestamp":"t1","type":"event_msg","payload":{"type":"agent_message","message":"Done."}}"#;
        let ri = r#"{"timestamp":"t2","type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Done."}]}}"#;
        for order in [[em, ri], [ri, em]] {
            let events = parse_lines(&[META, order[0], TOKENS, order[1]]);
            assert_eq!(count(&events, Kind::AssistantMessage), 1, "{order:?}");
            assert_eq!(events.len(), 3, "{order:?}");
            let msg = events
                .iter()
                .find(|e| e.kind() == Kind::AssistantMessage)
                .unwrap();
            assert_eq!(msg.source.record, "response_item/message");
        }
    }

    #[test]
    fn reasoning_twins_match_summary_parts() {
        let ems = [
            r#"{"timestamp":"t1","type":"event_msg","payload":{"type":"agent_reasoning","text":"A"}}"#,
            r#"{"timestamp":"t1","type":"event_msg","payload":{"type":"agent_reasoning","text":"B"}}"#,
        ];
        let ri = r#"{"timestamp":"t2","type":"response_item","payload":{"type":"reasoning","summary":[{"type":"summary_text","text":"A"},{"type":"summary_text","text":"B"}],"content":null,"encrypted_content":"gAAA"}}"#;
        let task = r#"{"timestamp":"t3","type":"event_msg","payload":{"type":"task_complete","turn_id":"x"}}"#;
        let events = parse_lines(&[META, ems[0], ems[1], ri, task]);
        assert_eq!(texts(&events), [("thinking".into(), "A\n\nB".into())]);
    }

    #[test]
    fn orphan_agent_events_wait_for_a_boundary_or_the_final_flush() {
        let em = r#"{"timestamp":"t1","type":"event_msg","payload":{"type":"agent_message","message":"Streaming…"}}"#;
        let mut p = CodexParser::new(ctx());
        let mut events = Vec::new();
        let text = [META, em].join("\n") + "\n";
        assert!(feed(&mut p, &text, 0, &mut events).is_empty());
        // Held: the response item may still come in the next read.
        assert_eq!(kinds(&events), ["provider.info"]);
        let abort = r#"{"timestamp":"t2","type":"event_msg","payload":{"type":"turn_aborted","reason":"interrupted"}}"#;
        assert!(feed(&mut p, &(abort.to_owned() + "\n"), 500, &mut events).is_empty());
        assert_eq!(
            texts(&events),
            [
                ("assistant".into(), "Streaming…".into()),
                ("Notice".into(), "Turn aborted: interrupted".into())
            ]
        );
        assert_eq!(events[1].source.offset, lines(&text)[1].0);
        assert_eq!(events[1].timestamp.as_deref(), Some("t1"));

        // At the end of a complete input, `flush` releases what is held.
        let mut p = CodexParser::new(ctx());
        let mut events = Vec::new();
        assert!(feed(&mut p, &text, 0, &mut events).is_empty());
        p.flush(&mut |e| events.push(e));
        assert_eq!(texts(&events), [("assistant".into(), "Streaming…".into())]);
    }

    // -- tools -----------------------------------------------------------------

    fn item(payload: &str) -> String {
        format!(r#"{{"timestamp":"t","type":"response_item","payload":{payload}}}"#)
    }

    // Long because: one scenario over every tool call/result shape, read top to bottom.
    #[test]
    fn tool_inputs_and_outputs() {
        let events = parse_lines(&[
            META,
            &item(
                r#"{"type":"function_call","name":"exec","arguments":"not json {","call_id":"c1"}"#,
            ),
            &item(r#"{"type":"function_call","name":"obj","arguments":{"a":1},"call_id":"c2"}"#),
            &item(
                r#"{"type":"function_call_output","call_id":"c1","output":"Chunk ID: ab\nWall time: 0.1 seconds\nProcess exited with code 2\nOutput:\nboom"}"#,
            ),
            &item(
                r#"{"type":"function_call_output","call_id":"c2","output":"{\"resources\":[]}"}"#,
            ),
            &item(
                r#"{"type":"custom_tool_call_output","call_id":"c3","output":"apply_patch verification failed"}"#,
            ),
        ]);
        match &events[1].payload {
            Payload::ToolCall { input, .. } => assert_eq!(input.get(), r#""not json {""#),
            other => panic!("{other:?}"),
        }
        match &events[2].payload {
            Payload::ToolCall { input, .. } => assert_eq!(input.get(), r#"{"a":1}"#),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            &events[3].payload,
            Payload::ToolResult { is_error: true, .. }
        ));
        // JSON that is not the shell wrapper stays as it is.
        assert!(matches!(
            &events[4].payload,
            Payload::ToolResult { output, is_error: false, .. } if output == r#"{"resources":[]}"#
        ));
        assert!(matches!(
            &events[5].payload,
            Payload::ToolResult {
                is_error: false,
                ..
            }
        ));
    }

    #[test]
    fn local_shell_calls_pair_with_their_outputs() {
        let events = parse_lines(&[
            META,
            &item(
                r#"{"type":"local_shell_call","call_id":"ls_1","status":"completed","action":{"type":"exec","command":["ls"]}}"#,
            ),
            &item(r#"{"type":"function_call_output","call_id":"ls_1","output":"a\nb\n"}"#),
        ]);
        assert!(matches!(
            &events[1].payload,
            Payload::ToolCall { tool_call_id, name, input }
                if tool_call_id == "ls_1" && name == "local_shell"
                    && input.get() == r#"{"type":"exec","command":["ls"]}"#
        ));
        assert!(matches!(
            &events[2].payload,
            Payload::ToolResult { tool_call_id, output, .. } if tool_call_id == "ls_1" && output == "a\nb\n"
        ));
    }

    // -- poisoned input --------------------------------------------------------

    fn malformed(line: &[u8]) -> Malformed {
        let mut p = CodexParser::new(ctx());
        let mut n = 0;
        let r = p.record(0, line, &mut |_| n += 1);
        assert_eq!(n, 0, "no event from a malformed line");
        r.expect_err("malformed")
    }

    #[test]
    fn wrong_shapes_are_reported_not_guessed() {
        let wrong = [
            // content a number
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"user","content":7}}"#,
            // payload null
            r#"{"timestamp":"t","type":"event_msg","payload":null}"#,
            r#"{"timestamp":"t","type":"response_item","payload":null}"#,
            r#"{"timestamp":"t","type":"session_meta","payload":null}"#,
            r#"{"timestamp":"t","type":"turn_context","payload":[]}"#,
            // known types missing what they need
            r#"{"timestamp":"t","type":"session_meta","payload":{"id":42}}"#,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"message","role":"assistant"}}"#,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"function_call","name":"x"}}"#,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"function_call_output","call_id":"c","output":5}}"#,
            r#"{"timestamp":"t","type":"response_item","payload":{"type":"function_call_output","call_id":"c","output":null}}"#,
            r#"{"timestamp":"t","type":"event_msg","payload":{"type":"user_message","message":["x"]}}"#,
            r#"{"timestamp":"t","type":"event_msg","payload":{"type":"agent_message"}}"#,
            r#"{"timestamp":"t","type":"event_msg","payload":{"no_type":1}}"#,
            r#"{"timestamp":"t","type":"compacted","payload":{"message":3}}"#,
            r#"{"type":"session_meta"}"#,
            r#"{"type":"message","role":"user","content":"text"}"#,
            r#"{"id":7,"timestamp":"t"}"#,
            // not an object at all
            r#"[1,2,3]"#,
            r#""rollout""#,
            r#"{"timestamp":5,"type":"event_msg","payload":{}}"#,
            r#"[]"#,
            r#"{"timestamp":"t","type":"event_msg","payload":["user_message"]}"#,
        ];
        for line in wrong {
            assert!(
                matches!(malformed(line.as_bytes()), Malformed::WrongShape(_)),
                "{line}"
            );
        }
        assert!(matches!(malformed(b"{not json"), Malformed::NotJson(_)));
        assert!(matches!(malformed(b""), Malformed::NotJson(_)));
        assert_eq!(malformed(b"{\"type\":\"\xff\"}"), Malformed::InvalidUtf8);
    }

    #[test]
    fn unknown_shapes_of_unknown_types_are_kept_raw() {
        let events = parse_lines(&[
            META,
            &item(r#"{"type":"future_item","content":42}"#),
            r#"{"timestamp":"t","type":"event_msg","payload":{"type":"future_event","message":{"a":1}}}"#,
            r#"{"something":"else"}"#,
        ]);
        assert_eq!(
            kinds(&events),
            [
                "provider.info",
                "provider.raw",
                "provider.raw",
                "provider.raw"
            ]
        );
    }

    #[test]
    fn a_poisoned_line_does_not_break_a_pending_twin() {
        let mut p = CodexParser::new(ctx());
        let mut events = Vec::new();
        let text = [
            META,
            &ri_user("still me"),
            r#"{"timestamp":"t","type":"event_msg","payload":null}"#,
            &em_user("still me"),
        ]
        .join("\n")
            + "\n";
        let errors = feed(&mut p, &text, 0, &mut events);
        assert_eq!(errors.len(), 1);
        p.flush(&mut |e| events.push(e));
        assert_eq!(kinds(&events), ["provider.info", "user.message"]);
    }

    // -- state -----------------------------------------------------------------

    #[test]
    fn state_round_trips_everything() {
        let mut p = CodexParser::new(ctx());
        let mut events = Vec::new();
        // Stop mid-turn with every kind of held context populated.
        let cut = MODERN
            .find(r#""type":"turn_aborted""#)
            .and_then(|i| MODERN[..i].rfind('\n'))
            .unwrap();
        let head = &MODERN[..=cut];
        assert!(feed(&mut p, head, 0, &mut events).is_empty());
        assert!(feed(
            &mut p,
            &(ri_user("held") + "\n"),
            head.len() as u64,
            &mut events
        )
        .is_empty());
        let state = p.state();
        assert!(p.st.pending_user.is_some());
        assert!(!p.st.pending_agent.is_empty());
        assert!(p.st.model.is_some() && p.st.turn_id.is_some());
        let mut q = CodexParser::new(ctx());
        q.restore(&serde_json::from_str(&state.to_string()).unwrap())
            .unwrap();
        assert_eq!(q.st, p.st);
        assert_eq!(q.state(), state);
        // Garbage is refused, so the reader starts over.
        let mut r = CodexParser::new(ctx());
        assert!(r.restore(&serde_json::json!({"pending_user": 3})).is_err());
        assert!(r
            .restore(&serde_json::json!({"unknown_field": true}))
            .is_err());
        assert!(r.restore(&serde_json::json!([])).is_err());
    }

    #[test]
    fn a_held_user_text_redacted_on_disk_still_meets_its_twin() {
        let token = format!("ghp_{}", "k7Qz".repeat(9));
        let typed = format!("deploy with {token} please");
        let mut p = CodexParser::new(ctx());
        let mut events = Vec::new();
        assert!(feed(&mut p, &(ri_user(&typed) + "\n"), 0, &mut events).is_empty());
        assert!(events.is_empty(), "held until its twin: {events:?}");
        // What the daemon's store writes: the context with secrets redacted.
        let redactor =
            crate::redact::Redactor::new(&crate::redact::RedactionOptions::default()).unwrap();
        let mut state = p.state();
        redactor.redact_json_value(&mut state);
        assert!(!state.to_string().contains(&token), "{state}");
        let mut q = CodexParser::new(ctx());
        q.restore(&state).unwrap();
        assert!(feed(&mut q, &(em_user(&typed) + "\n"), 500, &mut events).is_empty());
        let kinds: Vec<&str> = events.iter().map(|e| e.kind().as_str()).collect();
        assert_eq!(kinds, ["user.message"], "{events:?}");
    }

    #[test]
    fn split_anywhere_equals_one_read() {
        for text in [LEGACY, V034, MODERN, SUBAGENT, RESUMED] {
            let whole = parse(text);
            let json = |v: &[Event]| {
                v.iter()
                    .map(|e| serde_json::to_string(e).unwrap())
                    .collect::<Vec<_>>()
            };
            for (cut, _) in lines(text).into_iter().skip(1) {
                let cut = cut as usize;
                let mut a = CodexParser::new(ctx());
                let mut events = Vec::new();
                assert!(feed(&mut a, &text[..cut], 0, &mut events).is_empty());
                let mut b = CodexParser::new(ctx());
                b.restore(&a.state()).unwrap();
                assert!(feed(&mut b, &text[cut..], cut as u64, &mut events).is_empty());
                b.flush(&mut |e| events.push(e));
                assert_eq!(json(&events), json(&whole), "cut at {cut}");
            }
        }
    }

    #[test]
    fn the_same_human_text_appears_once() {
        for text in [V034, MODERN, RESUMED] {
            let events = parse(text);
            let mut seen = std::collections::HashMap::new();
            for (who, t) in texts(&events) {
                if who == "user" || who == "Model input" {
                    *seen.entry(t).or_insert(0) += 1;
                }
            }
            assert!(seen.values().all(|n| *n == 1), "{seen:?}");
        }
    }

    /// Events (as JSON) and errors of `text`, line by line, read with the
    /// fast path (`record`) or only the general way.
    fn both_ways(text: &str) -> [(Vec<String>, Vec<String>); 2] {
        let lines: Vec<&[u8]> = lines(text).iter().map(|(_, l)| l.as_bytes()).collect();
        read_both_ways(&lines)
    }

    fn fast(line: &str) -> bool {
        match serde_json::from_str::<FastLine<'_, BorrowedStr<'_>>>(line) {
            Ok(FastLine {
                payload: FastPayload::Event(ev),
                ..
            }) => ev.typed().is_some(),
            Ok(_) => true,
            Err(_) => false,
        }
    }

    #[test]
    fn the_fast_path_reads_what_the_general_path_reads() {
        for text in [LEGACY, V034, MODERN, SUBAGENT, RESUMED] {
            let [a, b] = both_ways(text);
            assert_eq!(a, b);
        }
        // Shapes at the edges of the fast path: each line is taken by it or
        // left to the general path, with the same outcome either way.
        let edge = [
            // Taken: a plain output; an escaped one; wrapped shell JSON; no
            // timestamp; unknown keys; a null timestamp.
            r#"{"timestamp":"t1","type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"{\"command\":[\"ls\"]}","call_id":"c1"}}"#,
            r#"{"timestamp":"t2","type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"Exit code: 1\nWall time: 0 s\nOutput:\nno"}}"#,
            r#"{"type":"response_item","extra":[1,{"a":2}],"payload":{"type":"function_call_output","call_id":"c2","output":"{\"output\":\"hi\\n\",\"metadata\":{\"exit_code\":0}}","more":null}}"#,
            r#"{"timestamp":null,"type":"response_item","payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"caf\u00e9"}]}}"#,
            // Taken: the text events, with the fields of their kind.
            r#"{"timestamp":"t3","type":"event_msg","payload":{"type":"agent_message","message":"x"}}"#,
            r#"{"timestamp":"t4","type":"event_msg","payload":{"type":"user_message","message":"hi","kind":"plain","images":[{"u":1}],"local_images":[],"text":"ignored"}}"#,
            r#"{"type":"event_msg","payload":{"type":"agent_reasoning","text":"**Plan**","message":null}}"#,
            r#"{"type":"event_msg","payload":{"type":"user_message","message":"<user_instructions>be brief</user_instructions>"}}"#,
            // Left: list and null outputs; payload before type; duplicate
            // keys; an array payload; a kind that needs raw JSON; an unknown
            // kind; a wrong-shaped field; not an object; another record.
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c3","output":[{"type":"input_text","text":"a"},{"type":"input_image"}]}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c4","output":null}}"#,
            r#"{"payload":{"type":"message","role":"assistant","content":[{"type":"output_text","text":"x"}]},"type":"response_item"}"#,
            r#"{"type":"response_item","type":"response_item","payload":{"type":"reasoning","summary":[]}}"#,
            r#"{"timestamp":"a","timestamp":"b","type":"response_item","payload":{"type":"reasoning","summary":[]}}"#,
            r#"{"id":1,"id":2,"type":"response_item","payload":{"type":"reasoning","summary":[]}}"#,
            r#"{"type":"response_item","payload":{"type":"reasoning","summary":[],"summary":[]}}"#,
            r#"{"type":"response_item","payload":["reasoning"]}"#,
            r#"{"type":"response_item","payload":{"type":"ghost_snapshot","ghost_commit":{"id":"g"}}}"#,
            r#"{"type":"response_item","payload":{"type":"brand_new","x":1}}"#,
            r#"{"type":"response_item","payload":{"type":"message","role":"assistant","content":"not a list"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call","name":7,"call_id":"c5"}}"#,
            r#"["response_item"]"#,
            // Left, events: another kind; a text missing, null or of the
            // wrong type; a field of another kind the wrong type; a
            // duplicate key; an array payload.
            r#"{"type":"event_msg","payload":{"type":"token_count","info":{"total":1}}}"#,
            r#"{"type":"event_msg","payload":{"type":"agent_message"}}"#,
            r#"{"type":"event_msg","payload":{"type":"user_message","message":null}}"#,
            r#"{"type":"event_msg","payload":{"type":"agent_reasoning","text":7}}"#,
            r#"{"type":"event_msg","payload":{"type":"agent_message","message":"m","text":7}}"#,
            r#"{"type":"event_msg","payload":{"type":"user_message","message":"m","kind":3}}"#,
            r#"{"type":"event_msg","payload":{"type":"agent_message","message":"a","message":"b"}}"#,
            r#"{"type":"event_msg","payload":["agent_message"]}"#,
            r#"{"timestamp":5,"type":"response_item","payload":{"type":"reasoning","summary":[]}}"#,
            r#"{"type":"response_item","payload":{"type":"reasoning","summary":[]}} trailing"#,
        ];
        let taken: Vec<bool> = edge.iter().map(|l| fast(l)).collect();
        assert_eq!(&taken[..8], &[true; 8]);
        assert!(taken[8..].iter().all(|t| !t), "{taken:?}");
        for line in edge {
            let [a, b] = both_ways(line);
            assert_eq!(a, b, "{line}");
        }
        let [all, _] = both_ways(&(edge.join("\n") + "\n"));
        assert!(!all.0.is_empty() && !all.1.is_empty());
    }

    /// Events (redacted, as JSONL) and errors of `text` read by a parser
    /// that keeps tool outputs as JSON literals, and by one that decodes them.
    fn json_both_ways(text: &str) -> [(Vec<String>, Vec<String>); 2] {
        let lines: Vec<&[u8]> = lines(text).iter().map(|(_, l)| l.as_bytes()).collect();
        read_json_both_ways(&lines)
    }

    #[test]
    fn tool_outputs_kept_as_json_literals_export_as_decoded_ones() {
        for text in [LEGACY, V034, MODERN, SUBAGENT, RESUMED] {
            let [json, decoded] = json_both_ways(text);
            assert_eq!(json, decoded);
        }
        let nine_lines: String = (1..=9).map(|i| format!(r"l{i}\n")).collect();
        let long_head = "x".repeat(OUTPUT_HEAD_MAX);
        let literals = [
            // Kept: escaped as kato escapes, exit codes in the first lines.
            r#""Exit code: 1\nWall time: 0 s\nOutput:\nno""#.to_owned(),
            r#""Chunk ID: ab\nWall time: 0.1 seconds\nProcess exited with code 2\r\nOutput:\nboom""#.to_owned(),
            r#""Exit code: 0\nOutput:\n\u001b[31mred\u001b[0m \"q\" \\ \t\b\f""#.to_owned(),
            r#""a\\u0041 \\/ é 🙂""#.to_owned(),
            format!(r#""{nine_lines}Exit code: 3""#),
            format!(r#""l1\nl2\nl3\nl4\nl5\nl6\nl7\nExit code: 4\n{nine_lines}""#),
            r#""token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and key=\"Xy7pQ2mZ9kLw4Rt8\"""#.to_owned(),
            r#""ok\\nExit code: 9""#.to_owned(),
            r#""Exit code:  7 \t\nOutput:\nx""#.to_owned(),
            r#""Exit code: x\nOutput:""#.to_owned(),
            // Read decoded: other escapes, wrapped shell JSON, blank or long
            // first lines, a lone surrogate, other values.
            r#""""#.to_owned(),
            r#""\u0041\u00e9\/""#.to_owned(),
            r#""{\"output\":\"x\\n\",\"metadata\":{\"exit_code\":2}}""#.to_owned(),
            r#"" \n\t {\"output\":\"y\",\"metadata\":{\"exit_code\":0}}""#.to_owned(),
            r#""\n\n\n\n\n\n\n\n\n{\"output\":\"z\",\"metadata\":{\"exit_code\":5}}""#.to_owned(),
            format!(r#""{long_head}\nExit code: 6""#),
            format!(r#""{long_head}""#),
            r#""bad \ud800 surrogate""#.to_owned(),
            r#"[{"type":"input_text","text":"a\u0041"},{"type":"input_image"}]"#.to_owned(),
            "7".to_owned(),
        ];
        let kept: Vec<bool> = literals
            .iter()
            .map(|l| {
                let raw = RawValue::from_string(l.clone()).unwrap();
                Text::from_json(&raw).is_some() && head_exit(l).is_some()
            })
            .collect();
        assert_eq!(&kept[..10], &[true; 10]);
        assert!(kept[10..].iter().all(|k| !k), "{kept:?}");
        let lines: Vec<String> = literals
            .iter()
            .map(|o| {
                format!(
                    r#"{{"type":"response_item","payload":{{"type":"function_call_output","call_id":"c1","output":{o}}}}}"#
                )
            })
            .collect();
        for line in &lines {
            let [json, decoded] = json_both_ways(line);
            assert_eq!(json, decoded, "{line}");
        }
        let [json, decoded] = json_both_ways(&(lines.join("\n") + "\n"));
        assert_eq!(json, decoded);
        let failed = decoded
            .0
            .iter()
            .filter(|e| e.contains(r#""is_error":true"#));
        assert_eq!(failed.count(), 7, "{:?}", decoded.0);
        assert!(decoded
            .0
            .iter()
            .any(|e| e.contains("[REDACTED:GITHUB_TOKEN]")));
        let refused = decoded.1.iter().filter(|r| !r.ends_with("Ok(())")).count();
        assert_eq!(refused, 2, "{:?}", decoded.1);
    }

    /// Events (stripped) and errors of `text` read by a parser that hides
    /// tool texts and provider records, and by one that reads them all.
    fn hidden_both_ways(text: &str) -> [(Vec<String>, Vec<String>); 2] {
        let lines: Vec<&[u8]> = lines(text).iter().map(|(_, l)| l.as_bytes()).collect();
        read_hidden_both_ways(&lines)
    }

    #[test]
    fn hidden_tool_texts_left_undecoded_read_as_stripped_ones() {
        for text in [LEGACY, V034, MODERN, SUBAGENT, RESUMED] {
            let [hidden, full] = hidden_both_ways(text);
            assert_eq!(hidden, full);
        }
        // What a hidden text still has to be: a string that decodes (a lone
        // surrogate is refused either way), or a list of blocks.
        let edge = [
            r#"{"type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"{\"command\":[\"ls\"]}","call_id":"c1"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call","name":"shell","arguments":{"command":"ls"},"call_id":"c2"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"\ud800","call_id":"c3"}}"#,
            r#"{"type":"response_item","payload":{"type":"custom_tool_call","name":"apply_patch","input":"*** Begin Patch","call_id":"c4"}}"#,
            r#"{"type":"response_item","payload":{"type":"custom_tool_call","name":"apply_patch","arguments":"\udc00","call_id":"c5"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"{\"a\":\"\\u\\\\u\ud83d\ude00\u0041\"}","call_id":"c7"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"\\\ud83d","call_id":"c8"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"Exit code: 1\nOutput:\nno"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"{\"output\":\"x\",\"metadata\":{\"exit_code\":2}}"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c2","output":"bad \ud800 surrogate"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c3","output":[{"type":"input_text","text":"a"},{"type":"input_image"}]}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c4","output":[{"text":"no type"}]}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","call_id":"c5","output":7}}"#,
            r#"{"type":"response_item","payload":{"type":"custom_tool_call_output","call_id":"c4","output":"done"}}"#,
            r#"{"type":"response_item","payload":{"type":"function_call_output","output":"no call id"}}"#,
            r#"{"type":"response_item","payload":{"type":"local_shell_call","call_id":"c6","action":{"command":["ls"]}}}"#,
            r#"{"type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":1}}}}"#,
            r#"{"type":"turn_context","payload":{"cwd":"/p","model":"m"}}"#,
            r#"{"type":"event_msg","payload":{"type":"brand_new","x":1}}"#,
            r#"{"type":"response_item","payload":{"type":"reasoning","summary":[{"type":"summary_text","text":"think"}]}}"#,
        ];
        for line in edge {
            let [hidden, full] = hidden_both_ways(line);
            assert_eq!(hidden, full, "{line}");
        }
        let [hidden, full] = hidden_both_ways(&(edge.join("\n") + "\n"));
        assert_eq!(hidden, full);
        let refused = full.1.iter().filter(|r| !r.ends_with("Ok(())")).count();
        assert_eq!(refused, 7, "{:?}", full.1);
        // Nothing hidden is left in what the hiding parser emits.
        let mut p = CodexParser::new(ctx());
        p.hide(Hidden {
            thinking: false,
            tools: true,
            provider: true,
        });
        let mut events = Vec::new();
        assert_eq!(
            feed(&mut p, &(edge[..2].join("\n") + "\n"), 0, &mut events).len(),
            0
        );
        assert!(feed(&mut p, &(edge[7..9].join("\n") + "\n"), 500, &mut events).is_empty());
        assert!(feed(&mut p, &(edge[16].to_owned() + "\n"), 900, &mut events).is_empty());
        for ev in &events {
            match &ev.payload {
                Payload::ToolCall { input, .. } => assert_eq!(input.get(), "null"),
                Payload::ToolResult {
                    output, is_error, ..
                } => assert!(output.is_empty() && !is_error),
                Payload::ProviderInfo { data, .. } => assert_eq!(data.get(), "null"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(events.len(), 5);
    }
}
