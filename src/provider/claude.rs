//! Claude Code provider: `~/.claude/projects/<escaped-cwd>/<uuid>.jsonl`.
//!
//! Layout (SPEC §3): one JSONL transcript per session; subagent work is
//! either inline (`isSidechain: true`, 1.0.x), in `agent-<id>.jsonl` beside
//! the transcript (2.0–2.1.1, carrying the parent's `sessionId`), or in
//! `<session-uuid>/subagents/agent-<id>.jsonl` (2.1.7x+), where
//! `agent-aside_question-<id>.jsonl` files are side questions.
//!
//! Mapping of records to canonical events:
//!
//! * `user` text is `user.message` only when it is the human's own words in
//!   the main conversation. Text the agent wrote into the user role becomes
//!   `system.message`: `isMeta` records and slash-command wrappers
//!   (`<command-name>`, `<local-command-…>`) are [`SystemCategory::CommandWrapper`],
//!   `!cmd` shell wrappers [`SystemCategory::UserShell`], `isCompactSummary`
//!   [`SystemCategory::Compaction`], `<ide_…>` blocks
//!   [`SystemCategory::IdeContext`], `<system-reminder>` blocks
//!   [`SystemCategory::InjectedContext`] (both from their opener to the
//!   last closing tag of the text, since they hold file text; see
//!   `injected`), interruption markers, hook feedback, background task
//!   notifications and records whose `origin` or `promptSource` names the
//!   agent [`SystemCategory::Notice`], text beside a tool result
//!   [`SystemCategory::ModelInput`]. In subagent work, the remaining text is
//!   the prompt the parent gave ([`SystemCategory::SubagentPrompt`]).
//!   Images and documents are counted as attachments.
//! * `tool_use` / `tool_result` blocks are tool calls and results, except
//!   for the tools that ask the human to choose ([`DECISION_TOOLS`]), which
//!   become decision prompts and responses. The ids of prompts still waiting
//!   for their answer are part of the parser state.
//! * Assistant `text` is `assistant.message` (API errors and other
//!   locally generated `<synthetic>` messages are `system.message`),
//!   `thinking` is `assistant.thinking` even when its text is empty.
//! * Readable `system` subtypes are `system.message`; bookkeeping records
//!   (titles, snapshots, queue operations, hook and agent progress,
//!   attachments, turn durations) are `provider.info`. Agent progress records
//!   repeat subagent messages that the subagent file also holds, and queue
//!   operations hold prompts that either come back as `user` records once
//!   delivered or were withdrawn, so neither is turned into messages.
//! * Unknown record types and unknown content blocks are `provider.raw`.
//!   Known record types whose fields have the wrong JSON type are
//!   [`Malformed::WrongShape`].
//!
//! Event ids are the record's `uuid`, else `<file_tag>:<offset>`; the n-th
//! event (n ≥ 1) of one line gets `#n` appended. Ids therefore repeat across
//! files exactly when the records do (a side-question file replays its
//! parent's records), so a merged stream can be deduplicated by id.
//! Caveat: Claude Code 2.0 also re-writes earlier history into the same
//! transcript after a `summary` line (new `uuid`s, one timestamp for the
//! whole batch, the original message and tool ids); those copies are
//! emitted again under their new ids.
//!
//! Copied history ([`Event::copied`]: rendered, never read for commands).
//! In the main transcript, a human message is a copy when it was written in
//! the same millisecond as the `user` or `assistant` record before it (a
//! re-written batch shares one timestamp; a person cannot type a message
//! in the millisecond a reply or another message was written), or when it
//! is a new root (`parentUuid: null`) after the conversation began. Every
//! record whose `sessionId` is not the transcript's own (its file name) is
//! a copy of another session. Copies that keep their ids and timestamps
//! under a new `sessionId` are recognised by the daemon instead (SECURITY.md).
//!
//! Parsing borrows from the line wherever the JSON has no escapes, and
//! opaque parts (tool input, bookkeeping payloads) stay raw JSON.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::raw_copy;
use crate::event::{
    null_raw, raw_from_str, raw_json, Event, Payload, ProviderId, Source, Subagent, SystemCategory,
};
use crate::provider::{
    first_line_object, ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::Claude;

/// Tools whose call asks the human to decide; their result is the answer.
pub const DECISION_TOOLS: [&str; 2] = ["AskUserQuestion", "ExitPlanMode"];

/// Label of side-question subagents (`agent-aside_question-*.jsonl`).
pub const SIDE_QUESTION_LABEL: &str = "side question";

/// Prefix of side-question agent ids, in file names and `agentId` fields.
const SIDE_QUESTION_PREFIX: &str = "aside_question-";

/// Record types this parser understands. Anything else is `provider.raw`.
const KNOWN_TYPES: [&str; 12] = [
    "user",
    "assistant",
    "system",
    "summary",
    "ai-title",
    "agent-name",
    "last-prompt",
    "permission-mode",
    "file-history-snapshot",
    "queue-operation",
    "attachment",
    "progress",
];

/// Content block types this parser understands. Anything else is `provider.raw`.
const KNOWN_BLOCKS: [&str; 6] = [
    "text",
    "thinking",
    "tool_use",
    "tool_result",
    "image",
    "document",
];

pub struct Claude;

impl Provider for Claude {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".claude/projects")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    /// Judged from the last path components, so it works on paths relative
    /// to a root and on absolute paths alike.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        let name = rel.file_name()?.to_str()?;
        let stem = name.strip_suffix(".jsonl")?;
        let mut ancestors = rel
            .parent()?
            .components()
            .rev()
            .map(|c| c.as_os_str().to_str());
        // The directory holding the file; a bare file name has none.
        let parent = ancestors.next()??;
        let ctx = |session_hint: &str, subagent: Option<Subagent>| FileCtx {
            provider: ID,
            file_tag: stem.to_owned(),
            session_hint: session_hint.to_owned(),
            subagent,
        };
        if let Some(agent) = stem.strip_prefix("agent-") {
            if agent.is_empty() {
                return None;
            }
            let subagent = Some(subagent_for(agent));
            if parent == "subagents" {
                // <session-uuid>/subagents/agent-<id>.jsonl
                let session = ancestors.next()??;
                return is_uuid(session).then(|| ctx(session, subagent));
            }
            if parent == "tool-results" {
                return None;
            }
            // <escaped-cwd>/agent-<id>.jsonl: the records name the session.
            return Some(ctx(stem, subagent));
        }
        if is_uuid(stem) && parent != "subagents" && parent != "tool-results" {
            return Some(ctx(stem, None));
        }
        None
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(ClaudeParser::new(ctx.clone()))
    }

    // Recognition and configuration (the provider seam).

    /// A first record of a known type; a `sessionId` or `leafUuid` alone
    /// is weaker (other formats name sessions too).
    fn sniff(&self, head: &[u8]) -> Sniff {
        let Some(obj) = first_line_object(head) else {
            return Sniff::No;
        };
        let has = |k: &str| obj.contains_key(k);
        let known_type = obj
            .get("type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| KNOWN_TYPES.contains(&t));
        if known_type {
            Sniff::Strong
        } else if has("sessionId") || has("leafUuid") {
            Sniff::Weak
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Claude Code: one JSON Lines transcript per session, subagents beside it.",
            env_override: None,
        }
    }
}

/// The subagent marker for an agent id (from a file name or `agentId`).
fn subagent_for(agent_id: &str) -> Subagent {
    Subagent {
        id: Some(agent_id.to_owned()),
        label: agent_id
            .starts_with(SIDE_QUESTION_PREFIX)
            .then(|| SIDE_QUESTION_LABEL.to_owned()),
    }
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

// ---------------------------------------------------------------------------
// Record shapes. Common fields are typed; type-specific parts stay raw until
// the record type is known, so that an unusual field on one record type
// cannot make another type's records fail.

/// A record's common fields. `M` is how `message` is read: kept raw
/// ([`RawEnvelope`], the general path, which reads any line) or read in the
/// same pass ([`FastEnvelope`], the common `user`/`assistant` line).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, M> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "crate::provider::opt_str"
    )]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    subtype: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    uuid: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    parent_uuid: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    prompt_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    agent_id: Option<Cow<'a, str>>,
    #[serde(default)]
    is_sidechain: Option<bool>,
    #[serde(default)]
    is_meta: Option<bool>,
    #[serde(default)]
    is_compact_summary: Option<bool>,
    #[serde(default)]
    is_api_error_message: Option<bool>,
    #[serde(default = "none")]
    message: Option<M>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    level: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    attachment: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ai_title: Option<&'a RawValue>,
    #[serde(borrow, default)]
    retry_attempt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_retries: Option<&'a RawValue>,
    /// Who wrote a user record (`{"kind": "human"}`, `{"kind":
    /// "task-notification"}`, …), in newer versions.
    #[serde(borrow, default)]
    origin: Option<&'a RawValue>,
    /// `"system"` on user records the agent wrote, in newer versions.
    #[serde(borrow, default)]
    prompt_source: Option<&'a RawValue>,
}

fn none<T>() -> Option<T> {
    None
}

/// Deserialize a present field as raw JSON even when it is `null`, so that
/// a missing field (`None`) and an explicit `null` can be told apart.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Any line: `message` stays raw until the record type is known.
type RawEnvelope<'a> = Envelope<'a, &'a RawValue>;

/// A `user` or `assistant` line with `message` and its content blocks
/// read in the same pass instead of kept raw (and read again). Any error,
/// a block this path does not take ([`read_in_one_pass`]), or a line of
/// another type leaves the line to the general path ([`RawEnvelope`] then
/// [`decode`]), which reads such a line to the same fields: a message is
/// read from its raw JSON with the same [`Message`], each block from its
/// raw JSON with the same [`Block`].
type FastEnvelope<'a> = Envelope<'a, Message<'a, Block<'a>>>;

impl<'a> FastEnvelope<'a> {
    /// The envelope (its message taken out) and the decoded record, for
    /// `user` and `assistant` lines whose blocks need no raw JSON.
    fn split(mut self) -> Option<(FastEnvelope<'a>, Decoded<'a>)> {
        let user = match self.ty.as_deref()? {
            "user" => true,
            "assistant" => false,
            _ => return None,
        };
        let msg = self.message.take()?;
        let body = match msg.content {
            Content::Text(t) => Body::Text(t),
            Content::Blocks(blocks) => {
                if !blocks.iter().all(|b| read_in_one_pass(user, b)) {
                    return None;
                }
                Body::Blocks(blocks.into_iter().map(|b| Item::Known(None, b)).collect())
            }
        };
        let turn = Turn {
            model: msg.model,
            body,
        };
        let decoded = if user {
            Decoded::User(turn)
        } else {
            Decoded::Assistant(turn)
        };
        Some((self, decoded))
    }
}

/// Whether the fast path may take a block read in the line's pass, without
/// its raw JSON: a known type whose handling in a message of this role never
/// shows the raw JSON, with its required fields. Anything else is left to
/// the general path, which keeps every block's raw JSON.
fn read_in_one_pass(user: bool, b: &Block) -> bool {
    check_block(b).is_ok()
        && match b.ty.as_ref() {
            "text" | "tool_use" | "tool_result" => true,
            // Shown raw in user content.
            "thinking" => !user,
            // An attachment in user content, shown raw in assistant content.
            "image" | "document" => user,
            _ => false,
        }
}

/// Just the `type` of a record or block, to tell unknown from malformed.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "crate::provider::opt_str"
    )]
    ty: Option<Cow<'a, str>>,
}

/// `message` of a `user` or `assistant` record; `B` is how its content
/// blocks are read (see [`Content`]).
#[derive(Deserialize)]
#[serde(bound(deserialize = "B: Deserialize<'de>"))]
struct Message<'a, B = &'a RawValue> {
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Content<'a, B>,
}

/// `content` of a message or tool result: a string or an array of blocks,
/// each kept raw (`B` = `&RawValue`, read again as a [`Block`] where its
/// type is known) or read as a [`Block`] in the same pass (the fast path).
enum Content<'a, B = &'a RawValue> {
    Text(Cow<'a, str>),
    Blocks(Vec<B>),
}

impl<'de: 'a, 'a, B: Deserialize<'de>> Deserialize<'de> for Content<'a, B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a, B>(PhantomData<(&'a (), B)>);
        impl<'de: 'a, 'a, B: Deserialize<'de>> Visitor<'de> for V<'a, B> {
            type Value = Content<'a, B>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of content blocks")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(b) = seq.next_element::<B>()? {
                    blocks.push(b);
                }
                Ok(Content::Blocks(blocks))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A `user` or `assistant` message, decoded.
struct Turn<'a> {
    model: Option<Cow<'a, str>>,
    body: Body<'a>,
}

/// A message's content, its blocks read.
enum Body<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Item<'a>>),
}

/// One block of a message's content, read. Nearly every block is known, so
/// boxing the large variant would only add an allocation per block.
#[allow(clippy::large_enum_variant)]
enum Item<'a> {
    /// A block of a type this parser does not know, kept as written.
    Unknown(&'a RawValue),
    /// A known block, with its raw JSON where the path that read it kept it
    /// (the fast path takes no block whose handling needs it).
    Known(Option<&'a RawValue>, Block<'a>),
}

impl Item<'_> {
    fn is(&self, ty: &str) -> bool {
        matches!(self, Item::Known(_, b) if b.ty == ty)
    }
}

/// The raw JSON of a known block that is shown as written. Only the general
/// path keeps it, and the fast path leaves every such block to the general
/// path ([`read_in_one_pass`]).
fn kept(raw: Option<&RawValue>) -> Result<&RawValue, Malformed> {
    raw.ok_or_else(|| wrong_shape("a content block was read without its JSON"))
}

/// One content block; which fields matter depends on `type`.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
    tool_name: Option<Cow<'a, str>>,
}

/// `{"type": …}` payloads of `progress.data` and `attachment.attachment`.
#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "crate::provider::opt_str"
    )]
    ty: Option<Cow<'a, str>>,
}

fn wrong_shape(what: &str) -> Malformed {
    Malformed::WrongShape(what.to_owned())
}

fn shape_err(e: serde_json::Error) -> Malformed {
    Malformed::WrongShape(e.to_string())
}

/// Parse an optional raw field as `T`; a present value of the wrong type is
/// a shape error.
fn opt_field<'a, T: Deserialize<'a>>(
    raw: Option<&'a RawValue>,
    name: &str,
) -> Result<Option<T>, Malformed> {
    match raw {
        None => Ok(None),
        Some(r) => serde_json::from_str::<Option<T>>(r.get())
            .map_err(|e| Malformed::WrongShape(format!("`{name}`: {e}"))),
    }
}

// ---------------------------------------------------------------------------
// Parser.

/// Context kept between records; persisted with the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Last `sessionId` seen, for records that carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    /// Decision prompts (tool_use ids) whose answer has not been seen yet.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pending_prompts: BTreeSet<String>,
    /// Timestamp of the latest `user` or `assistant` record of the main
    /// conversation (a human message written in the same millisecond is a copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_time: Option<String>,
    /// The main conversation has begun (a later root message is a copy).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    began: bool,
}

struct ClaudeParser {
    ctx: FileCtx,
    /// [`FileCtx::file_tag`], shared by the events.
    file: Arc<str>,
    state: State,
}

impl ClaudeParser {
    fn new(ctx: FileCtx) -> ClaudeParser {
        ClaudeParser {
            file: ctx.file_tag.as_str().into(),
            ctx,
            state: State::default(),
        }
    }
}

/// Builds the events of one line with shared fields and numbered ids.
struct Emitter<'o> {
    base_id: String,
    n: u32,
    /// Shared by the line's events (one allocation a line, not an event).
    session_id: Arc<str>,
    timestamp: Option<Arc<str>>,
    turn_id: Option<Arc<str>>,
    /// The model of the latest event, shared by the next with the same.
    model: Option<Arc<str>>,
    subagent: Option<Subagent>,
    /// Every event of the record is a copy (another session's record).
    copied: bool,
    /// The human message of the record is a copy.
    copied_human: bool,
    source: Source,
    out: &'o mut dyn FnMut(Event),
}

impl Emitter<'_> {
    fn emit(&mut self, payload: Payload, model: Option<&str>) {
        let event_id = match self.n {
            0 => self.base_id.clone(),
            n => format!("{}#{n}", self.base_id),
        };
        self.n += 1;
        let mut ev = Event::new(
            ID,
            self.session_id.clone(),
            event_id,
            self.source.clone(),
            payload,
        );
        ev.timestamp = self.timestamp.clone();
        ev.turn_id = self.turn_id.clone();
        if let Some(m) = model {
            if self.model.as_deref() != Some(m) {
                self.model = Some(m.into());
            }
            ev.model = self.model.clone();
        }
        ev.subagent = self.subagent.clone();
        ev.copied = self.copied || (self.copied_human && ev.is_human_message());
        (self.out)(ev);
    }

    fn system(&mut self, category: SystemCategory, text: impl Into<String>) {
        self.emit(
            Payload::SystemMessage {
                category,
                text: text.into(),
            },
            None,
        );
    }

    fn info(&mut self, topic: impl Into<String>, data: Box<RawValue>) {
        self.emit(
            Payload::ProviderInfo {
                topic: topic.into(),
                data,
            },
            None,
        );
    }

    fn raw(&mut self, json: &str, model: Option<&str>) {
        self.emit(
            Payload::ProviderRaw {
                record: raw_from_str(json),
            },
            model,
        );
    }
}

impl RecordParser for ClaudeParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        line: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        if let Some((env, decoded)) = serde_json::from_str::<FastEnvelope>(line)
            .ok()
            .and_then(FastEnvelope::split)
        {
            let ty = if matches!(decoded, Decoded::User(_)) {
                "user"
            } else {
                "assistant"
            };
            return self.decoded(offset, line, &env, ty, decoded, out);
        }
        self.general(offset, line, out)
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.state).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.state = State::deserialize(state).map_err(shape_err)?;
        Ok(())
    }
}

impl ClaudeParser {
    /// Any line, the general way (the fast path aside).
    fn general(
        &mut self,
        offset: u64,
        line: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let env: RawEnvelope = match serde_json::from_str(line) {
            Ok(env) => env,
            Err(e) => return self.unparsed(offset, line, &e, out),
        };
        let Some(ty) = env.ty.as_deref() else {
            self.emit_unknown(offset, line, "unknown", out);
            return Ok(());
        };
        if !KNOWN_TYPES.contains(&ty) {
            self.emit_unknown(offset, line, ty, out);
            return Ok(());
        }
        // Decode everything type-specific before emitting anything, so a
        // malformed line yields no events at all.
        let decoded = decode(ty, &env, line)?;
        self.decoded(offset, line, &env, ty, decoded, out)
    }

    fn decoded<M>(
        &mut self,
        offset: u64,
        line: &str,
        env: &Envelope<'_, M>,
        ty: &str,
        decoded: Decoded,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let mut em = self.emitter(offset, env, ty, &decoded, out);
        match decoded {
            Decoded::User(turn) => self.user(env, turn, &mut em)?,
            Decoded::Assistant(turn) => self.assistant(env, turn, &mut em)?,
            Decoded::System(sys) => system(sys, line, &mut em),
            Decoded::Info { topic, data } => em.info(topic, data),
            Decoded::Raw => em.raw(line, None),
        }
        self.note_record(env, ty, em.subagent.is_none());
        if em.n == 0 {
            // A conversation record with nothing in it (e.g. empty content):
            // keep it rather than drop it.
            em.raw(line, None);
        }
        Ok(())
    }
}

/// [`super::read_both_ways`] for [`Claude`]: the `claude_paths` fuzz
/// target and the unit tests check that the fast and general paths agree.
#[doc(hidden)]
pub fn read_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = FileCtx {
        provider: ID,
        file_tag: "s1".into(),
        session_hint: "s1".into(),
        subagent: None,
    };
    super::read_both_ways(
        lines,
        || ClaudeParser::new(ctx.clone()),
        |p, offset, _, line, out| p.general(offset, line, out),
    )
}

/// A record's type-specific part, decoded and checked.
enum Decoded<'a> {
    User(Turn<'a>),
    Assistant(Turn<'a>),
    System(SystemRec<'a>),
    Info {
        topic: String,
        data: Box<RawValue>,
    },
    /// A known record type in a form this parser does not map (an unknown
    /// `system` subtype).
    Raw,
}

struct SystemRec<'a> {
    /// One of [`READABLE_SYSTEM`], or `None` for a record without subtype.
    subtype: Option<&'static str>,
    content: Option<Cow<'a, str>>,
    level: Option<Cow<'a, str>>,
    error: Option<&'a RawValue>,
    retry_attempt: Option<u64>,
    max_retries: Option<u64>,
}

/// `system` subtypes shown as messages.
const READABLE_SYSTEM: [&str; 4] = [
    "api_error",
    "informational",
    "compact_boundary",
    "local_command",
];
/// `system` subtypes kept as `provider.info`.
const META_SYSTEM: [&str; 2] = ["turn_duration", "stop_hook_summary"];

fn decode<'a>(ty: &str, env: &RawEnvelope<'a>, line: &str) -> Result<Decoded<'a>, Malformed> {
    let whole = || raw_from_str(line);
    Ok(match ty {
        "user" | "assistant" => {
            let raw = env
                .message
                .ok_or_else(|| wrong_shape("`message` is missing or null"))?;
            let msg: Message = serde_json::from_str(raw.get())
                .map_err(|e| Malformed::WrongShape(format!("`message`: {e}")))?;
            let turn = Turn {
                model: msg.model,
                body: match msg.content {
                    Content::Text(t) => Body::Text(t),
                    Content::Blocks(raws) => Body::Blocks(parse_blocks(&raws)?),
                },
            };
            if ty == "user" {
                Decoded::User(turn)
            } else {
                Decoded::Assistant(turn)
            }
        }
        "system" => {
            let subtype = env.subtype.as_deref();
            if let Some(s) = subtype.filter(|s| META_SYSTEM.contains(s)) {
                return Ok(Decoded::Info {
                    topic: s.to_owned(),
                    data: whole(),
                });
            }
            let known = match subtype {
                None => None,
                Some(s) => match READABLE_SYSTEM.iter().copied().find(|k| *k == s) {
                    Some(k) => Some(k),
                    None => return Ok(Decoded::Raw),
                },
            };
            let rec = SystemRec {
                subtype: known,
                content: opt_field(env.content, "content")?,
                level: opt_field(env.level, "level")?,
                error: env.error,
                retry_attempt: opt_field(env.retry_attempt, "retryAttempt").unwrap_or(None),
                max_retries: opt_field(env.max_retries, "maxRetries").unwrap_or(None),
            };
            if known.is_none() && rec.content.is_none() {
                // No subtype and nothing to read.
                return Ok(Decoded::Raw);
            }
            Decoded::System(rec)
        }
        "ai-title" => {
            let title: Option<Cow<str>> = opt_field(env.ai_title, "aiTitle")?;
            let title = title.ok_or_else(|| wrong_shape("`aiTitle` is missing"))?;
            Decoded::Info {
                topic: "title".to_owned(),
                data: raw_json(&title),
            }
        }
        "progress" => {
            let head: Option<TypeOnly> = opt_field(env.data, "data")?;
            Decoded::Info {
                topic: head
                    .and_then(|h| h.ty)
                    .map_or_else(|| "progress".to_owned(), Cow::into_owned),
                data: whole(),
            }
        }
        "attachment" => {
            let head: Option<TypeOnly> = opt_field(env.attachment, "attachment")?;
            Decoded::Info {
                topic: match head.and_then(|h| h.ty) {
                    Some(t) => format!("attachment/{t}"),
                    None => "attachment".to_owned(),
                },
                data: whole(),
            }
        }
        other => Decoded::Info {
            topic: info_topic(other).to_owned(),
            data: whole(),
        },
    })
}

/// `provider.info` topic of a bookkeeping record type.
fn info_topic(ty: &str) -> &'static str {
    match ty {
        "summary" => "summary",
        "agent-name" => "agent_name",
        "last-prompt" => "last_prompt",
        "permission-mode" => "permission_mode",
        "file-history-snapshot" => "file_history_snapshot",
        "queue-operation" => "queue_operation",
        _ => "record",
    }
}

impl ClaudeParser {
    /// The line did not fit [`Envelope`]: not JSON, or JSON of the wrong shape.
    fn unparsed(
        &mut self,
        offset: u64,
        line: &str,
        err: &serde_json::Error,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let m = Malformed::from_json_error(line.as_bytes(), err);
        if !matches!(m, Malformed::WrongShape(_)) {
            return Err(m);
        }
        // Valid JSON: an unknown record type is kept raw whatever its
        // fields look like; a known one with wrong-shaped fields is skipped.
        match serde_json::from_str::<Head>(line) {
            Ok(Head { ty: Some(ty) }) if !KNOWN_TYPES.contains(&ty.as_ref()) => {
                self.emit_unknown(offset, line, &ty, out);
                Ok(())
            }
            Ok(Head { ty: None }) => {
                self.emit_unknown(offset, line, "unknown", out);
                Ok(())
            }
            _ => Err(m),
        }
    }

    fn emit_unknown(&mut self, offset: u64, line: &str, ty: &str, out: &mut dyn FnMut(Event)) {
        let mut em = Emitter {
            base_id: format!("{}:{offset}", self.ctx.file_tag),
            n: 0,
            session_id: self.session_id(None).into(),
            timestamp: None,
            turn_id: None,
            model: None,
            subagent: self.ctx.subagent.clone(),
            copied: false,
            copied_human: false,
            source: Source {
                record: ty.to_owned().into(),
                offset,
                file: Some(self.file.clone()),
            },
            out,
        };
        em.raw(line, None);
    }

    fn session_id(&mut self, from_record: Option<&str>) -> String {
        if let Some(s) = from_record {
            if self.state.session.as_deref() != Some(s) {
                self.state.session = Some(s.to_owned());
            }
            return s.to_owned();
        }
        self.state
            .session
            .clone()
            .unwrap_or_else(|| self.ctx.session_hint.clone())
    }

    fn emitter<'o, M>(
        &mut self,
        offset: u64,
        env: &Envelope<'_, M>,
        ty: &str,
        decoded: &Decoded,
        out: &'o mut dyn FnMut(Event),
    ) -> Emitter<'o> {
        let subagent = match (&self.ctx.subagent, env.is_sidechain) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(true)) => Some(match env.agent_id.as_deref() {
                Some(id) => subagent_for(id),
                None => Subagent {
                    id: None,
                    label: None,
                },
            }),
            (None, _) => None,
        };
        let (copied, copied_human) = if subagent.is_none() {
            self.copy_signals(env, ty)
        } else {
            (false, false)
        };
        let record = match (ty, decoded) {
            ("system", _) => match env.subtype.as_deref() {
                Some(s) => format!("system/{s}"),
                None => "system".to_owned(),
            },
            ("progress", Decoded::Info { topic, .. }) if topic != "progress" => {
                format!("progress/{topic}")
            }
            // Already `attachment/<type>`.
            ("attachment", Decoded::Info { topic, .. }) => topic.clone(),
            _ => ty.to_owned(),
        };
        Emitter {
            base_id: match env.uuid.as_deref() {
                Some(u) if !u.is_empty() => u.to_owned(),
                _ => format!("{}:{offset}", self.ctx.file_tag),
            },
            n: 0,
            session_id: self.session_id(env.session_id.as_deref()).into(),
            timestamp: env.timestamp.as_deref().map(Into::into),
            turn_id: env.prompt_id.as_deref().map(Into::into),
            model: None,
            subagent,
            copied,
            copied_human,
            source: Source {
                record: record.into(),
                offset,
                file: Some(self.file.clone()),
            },
            out,
        }
    }

    /// Whether a main-conversation record is a copy: (all of it, its human
    /// message). See the module documentation for the rules.
    fn copy_signals<M>(&self, env: &Envelope<'_, M>, ty: &str) -> (bool, bool) {
        if !matches!(ty, "user" | "assistant") {
            return (false, false);
        }
        let hint = self.ctx.session_hint.as_str();
        let foreign = is_uuid(hint)
            && env
                .session_id
                .as_deref()
                .is_some_and(|s| !s.is_empty() && s != hint);
        let time = env.timestamp.as_deref();
        let same_time = time.is_some() && time == self.state.last_time.as_deref();
        let root = self.state.began && env.parent_uuid.is_some_and(|p| p.get() == "null");
        (foreign, ty == "user" && (same_time || root))
    }

    /// A main-conversation record was read: remember its time for the copy
    /// rules (only once the whole record was understood).
    fn note_record<M>(&mut self, env: &Envelope<'_, M>, ty: &str, main: bool) {
        if !main || !matches!(ty, "user" | "assistant") {
            return;
        }
        if let Some(t) = env.timestamp.as_deref() {
            if self.state.last_time.as_deref() != Some(t) {
                self.state.last_time = Some(t.to_owned());
            }
        }
        self.state.began = true;
    }

    fn user<M>(
        &mut self,
        env: &Envelope<'_, M>,
        turn: Turn,
        em: &mut Emitter,
    ) -> Result<(), Malformed> {
        let flags = UserFlags {
            meta: env.is_meta == Some(true),
            compact: env.is_compact_summary == Some(true),
            sidechain: em.subagent.is_some(),
            beside_tool: false,
            agent_origin: agent_origin(env.origin, env.prompt_source),
        };
        let mut human = Human::default();
        match turn.body {
            Body::Text(t) => {
                user_text(t, flags, &mut human);
            }
            Body::Blocks(items) => user_blocks(items, flags, &mut human),
        }
        human.finish(self, em)
    }

    fn assistant<M>(
        &mut self,
        env: &Envelope<'_, M>,
        turn: Turn,
        em: &mut Emitter,
    ) -> Result<(), Malformed> {
        let model = turn.model.as_deref();
        let synthetic = model == Some("<synthetic>");
        let error = env.is_api_error_message == Some(true) || env.error.is_some();
        let text_payload = |text: &str| -> Payload {
            if error || (synthetic && text.starts_with("API Error")) {
                Payload::SystemMessage {
                    category: SystemCategory::Error,
                    text: text.to_owned(),
                }
            } else if synthetic {
                Payload::SystemMessage {
                    category: SystemCategory::Notice,
                    text: text.to_owned(),
                }
            } else {
                Payload::AssistantMessage {
                    text: text.to_owned(),
                }
            }
        };
        let items = match turn.body {
            Body::Text(t) => {
                em.emit(text_payload(&t), model);
                return Ok(());
            }
            Body::Blocks(items) => items,
        };
        for item in items {
            let (raw, block) = match item {
                Item::Unknown(raw) => {
                    em.raw(raw.get(), model);
                    continue;
                }
                Item::Known(raw, block) => (raw, block),
            };
            match block.ty.as_ref() {
                "text" => {
                    let text = block.text.as_deref().unwrap_or_default();
                    em.emit(text_payload(text), model);
                }
                "thinking" => {
                    let text = block.thinking.as_deref().unwrap_or_default();
                    em.emit(
                        Payload::Thinking {
                            text: text.to_owned(),
                        },
                        model,
                    );
                }
                // Images in assistant content are not a thing the corpus
                // shows; keep them raw rather than invent a rendering.
                "image" | "document" => em.raw(kept(raw)?.get(), model),
                _ => self.common_block(raw, &block, model, em)?,
            }
        }
        Ok(())
    }

    /// Tool calls and results, wherever they appear.
    fn common_block(
        &mut self,
        raw: Option<&RawValue>,
        block: &Block,
        model: Option<&str>,
        em: &mut Emitter,
    ) -> Result<(), Malformed> {
        match block.ty.as_ref() {
            "tool_use" => {
                let id = block
                    .id
                    .as_deref()
                    .ok_or_else(|| wrong_shape("`tool_use` without `id`"))?;
                let name = block
                    .name
                    .as_deref()
                    .ok_or_else(|| wrong_shape("`tool_use` without `name`"))?;
                if DECISION_TOOLS.contains(&name) {
                    self.state.pending_prompts.insert(id.to_owned());
                    em.emit(
                        Payload::DecisionPrompt {
                            prompt_id: id.to_owned(),
                            name: name.to_owned(),
                            text: decision_text(name, block.input),
                        },
                        model,
                    );
                } else {
                    em.emit(
                        Payload::ToolCall {
                            tool_call_id: id.to_owned(),
                            name: name.to_owned(),
                            input: block.input.map_or_else(null_raw, raw_copy),
                        },
                        model,
                    );
                }
            }
            "tool_result" => {
                let id = block
                    .tool_use_id
                    .as_deref()
                    .ok_or_else(|| wrong_shape("`tool_result` without `tool_use_id`"))?;
                let output = flatten(block.content.as_ref());
                if self.state.pending_prompts.remove(id) {
                    em.emit(
                        Payload::DecisionResponse {
                            prompt_id: id.to_owned(),
                            text: output,
                        },
                        model,
                    );
                } else {
                    em.emit(
                        Payload::ToolResult {
                            tool_call_id: id.to_owned(),
                            output: output.into(),
                            is_error: block.is_error == Some(true),
                        },
                        model,
                    );
                }
            }
            _ => em.raw(kept(raw)?.get(), model),
        }
        Ok(())
    }
}

/// The blocks of a user content array, classified in order.
fn user_blocks<'t>(items: Vec<Item<'t>>, flags: UserFlags, human: &mut Human<'t>) {
    // Claude Code sends the human's prompts in records of their own; text it
    // puts beside a tool's result (hook output, messages queued while the
    // tool ran) is model input.
    let flags = UserFlags {
        beside_tool: items.iter().any(|i| i.is("tool_result")),
        ..flags
    };
    let mut open = None;
    for item in items {
        let (raw, block) = match item {
            Item::Unknown(raw) => {
                human.push(Pending::Raw(raw));
                continue;
            }
            Item::Known(raw, block) => (raw, block),
        };
        match block.ty.as_ref() {
            "text" => open = block_text(block.text.unwrap_or_default(), flags, open, human),
            "image" | "document" => human.attach(),
            _ => human.push(Pending::Block(raw, Box::new(block))),
        }
    }
}

/// Parse every block of a content array up front (the general path). A
/// block of an unknown type is kept raw; a known block with wrong-shaped
/// fields, or an element that is not a block at all, makes the line
/// malformed.
fn parse_blocks<'a>(raws: &[&'a RawValue]) -> Result<Vec<Item<'a>>, Malformed> {
    raws.iter()
        .map(|&raw| match serde_json::from_str::<Block>(raw.get()) {
            Ok(b) if KNOWN_BLOCKS.contains(&b.ty.as_ref()) => {
                check_block(&b)?;
                Ok(Item::Known(Some(raw), b))
            }
            Ok(_) => Ok(Item::Unknown(raw)),
            Err(e) => match serde_json::from_str::<Head>(raw.get()) {
                Ok(Head { ty: Some(t) }) if !KNOWN_BLOCKS.contains(&t.as_ref()) => {
                    Ok(Item::Unknown(raw))
                }
                _ => Err(Malformed::WrongShape(format!("content block: {e}"))),
            },
        })
        .collect()
}

/// Required fields of known blocks.
fn check_block(b: &Block) -> Result<(), Malformed> {
    match b.ty.as_ref() {
        "text" if b.text.is_none() => Err(wrong_shape("`text` block without `text`")),
        "tool_use" if b.id.is_none() || b.name.is_none() => {
            Err(wrong_shape("`tool_use` block without `id` or `name`"))
        }
        "tool_result" if b.tool_use_id.is_none() => {
            Err(wrong_shape("`tool_result` block without `tool_use_id`"))
        }
        _ => Ok(()),
    }
}

/// Tool output as text: strings as they are, arrays of blocks joined by
/// newlines (text blocks' text, placeholders for images and tool
/// references, raw JSON for anything else).
fn flatten(content: Option<&Content>) -> String {
    match content {
        None => String::new(),
        Some(Content::Text(t)) => t.as_ref().to_owned(),
        Some(Content::Blocks(blocks)) => {
            let mut out = String::new();
            for (i, raw) in blocks.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                match serde_json::from_str::<Block>(raw.get()) {
                    Ok(b) => match (b.ty.as_ref(), &b.text, &b.tool_name) {
                        ("text", Some(t), _) => out.push_str(t),
                        ("image", _, _) => out.push_str("[image]"),
                        ("tool_reference", _, Some(name)) => {
                            out.push_str("[tool reference: ");
                            out.push_str(name);
                            out.push(']');
                        }
                        _ => out.push_str(raw.get()),
                    },
                    Err(_) => out.push_str(raw.get()),
                }
            }
            out
        }
    }
}

/// Readable text of a decision prompt: the plan, or the questions with
/// their options; the raw input when it has neither.
fn decision_text(name: &str, input: Option<&RawValue>) -> String {
    #[derive(Deserialize)]
    struct Input {
        #[serde(default)]
        plan: Option<String>,
        #[serde(default)]
        questions: Option<Vec<Question>>,
    }
    #[derive(Deserialize)]
    struct Question {
        #[serde(default)]
        question: Option<String>,
        #[serde(default)]
        options: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        description: Option<String>,
    }
    let Some(raw) = input else {
        return String::new();
    };
    let parsed: Option<Input> = serde_json::from_str(raw.get()).ok();
    match parsed {
        Some(Input {
            plan: Some(plan), ..
        }) if name == "ExitPlanMode" => plan,
        Some(Input {
            questions: Some(qs),
            ..
        }) if !qs.is_empty() => {
            let mut parts = Vec::with_capacity(qs.len());
            for q in qs {
                let mut s = q.question.unwrap_or_default();
                for c in q.options {
                    s.push_str("\n- ");
                    s.push_str(c.label.as_deref().unwrap_or_default());
                    if let Some(d) = c.description.filter(|d| !d.is_empty()) {
                        s.push_str(": ");
                        s.push_str(&d);
                    }
                }
                parts.push(s);
            }
            parts.join("\n\n")
        }
        _ => raw.get().to_owned(),
    }
}

// ---------------------------------------------------------------------------
// User text classification.

#[derive(Clone, Copy)]
struct UserFlags {
    meta: bool,
    compact: bool,
    sidechain: bool,
    /// The record returns a tool's result: its text is not the human's.
    beside_tool: bool,
    /// The record says the agent wrote it (`origin`, `promptSource`).
    agent_origin: bool,
}

/// Whether a user record's `origin` or `promptSource` says the agent, not
/// the human, wrote it. A value of an unexpected shape says nothing.
fn agent_origin(origin: Option<&RawValue>, prompt_source: Option<&RawValue>) -> bool {
    #[derive(Deserialize)]
    struct Origin<'a> {
        #[serde(borrow, default, deserialize_with = "crate::provider::opt_str")]
        kind: Option<Cow<'a, str>>,
    }
    let kind = origin
        .and_then(|o| serde_json::from_str::<Origin>(o.get()).ok())
        .and_then(|o| o.kind);
    let source = prompt_source.and_then(|p| serde_json::from_str::<Cow<str>>(p.get()).ok());
    kind.is_some_and(|k| k != "human") || source.is_some_and(|s| s == "system")
}

/// What one user record turns into, in order, before it is emitted. The
/// human's words (all text parts and attachments) become one
/// `user.message`, placed where their first part was.
#[derive(Default)]
struct Human<'t> {
    pending: Vec<Pending<'t>>,
    parts: Vec<String>,
    attachments: u32,
    slot: bool,
}

enum Pending<'t> {
    System(SystemCategory, Cow<'t, str>),
    Block(Option<&'t RawValue>, Box<Block<'t>>),
    Raw(&'t RawValue),
    /// Where the `user.message` goes.
    Human,
}

impl<'t> Human<'t> {
    fn push(&mut self, p: Pending<'t>) {
        self.pending.push(p);
    }

    fn text(&mut self, text: String) {
        self.mark();
        self.parts.push(text);
    }

    fn attach(&mut self) {
        self.mark();
        self.attachments += 1;
    }

    fn mark(&mut self) {
        if !self.slot {
            self.slot = true;
            self.pending.push(Pending::Human);
        }
    }

    fn finish(self, parser: &mut ClaudeParser, em: &mut Emitter) -> Result<(), Malformed> {
        let mut message = Some(Payload::UserMessage {
            text: self.parts.join("\n\n"),
            attachments: self.attachments,
        });
        for p in self.pending {
            match p {
                Pending::System(category, text) => em.system(category, text),
                Pending::Block(raw, block) => parser.common_block(raw, &block, None, em)?,
                Pending::Raw(raw) => em.raw(raw.get(), None),
                // Subagent prompts are classified before they get here; an
                // attachment alone in subagent work is not the human's message.
                Pending::Human if em.subagent.is_some() => {}
                Pending::Human => {
                    if let Some(m) = message.take() {
                        em.emit(m, None);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Leading markers of text the agent wrote into the user role.
const WRAPPERS: [(&str, SystemCategory); 12] = [
    ("<command-name>", SystemCategory::CommandWrapper),
    ("<command-message>", SystemCategory::CommandWrapper),
    ("<command-args>", SystemCategory::CommandWrapper),
    ("<local-command-caveat>", SystemCategory::CommandWrapper),
    ("<local-command-stdout>", SystemCategory::CommandWrapper),
    ("<local-command-stderr>", SystemCategory::CommandWrapper),
    ("<bash-input>", SystemCategory::UserShell),
    ("<bash-stdout>", SystemCategory::UserShell),
    ("<bash-stderr>", SystemCategory::UserShell),
    ("[Request interrupted by user", SystemCategory::Notice),
    ("Stop hook feedback:", SystemCategory::Notice),
    // A background task's end, with the report of the agent that ran it.
    ("<task-notification>", SystemCategory::Notice),
];

/// Classify one user text (a string content or one `text` block) into
/// agent-written parts and the human's words. Returns the category of an
/// injected block the text leaves open (no closing tag after it).
fn user_text<'t>(
    text: Cow<'t, str>,
    flags: UserFlags,
    human: &mut Human<'t>,
) -> Option<SystemCategory> {
    let found = if flags.compact { None } else { injected(&text) };
    let open = found
        .as_ref()
        .filter(|i| i.open)
        .map(|i| i.tail.map_or(i.category, |(_, c)| c));
    let parts = match &text {
        Cow::Borrowed(t) => classify_text(t, flags, found.as_ref()),
        Cow::Owned(t) => classify_text(t, flags, found.as_ref())
            .into_iter()
            .map(|(c, s)| (c, Cow::Owned(s.into_owned())))
            .collect(),
    };
    for (category, t) in parts {
        match category {
            Some(category) => human.push(Pending::System(category, t)),
            None => human.text(t.into_owned()),
        }
    }
    open
}

/// One `text` block of a content array. Claude Code gives injected context
/// blocks of their own, so a block that opens with an injected block, or
/// follows one that no closing tag ended, is injected as a whole; any other
/// is classified like a string content. Returns the category of an injected
/// block still open after it.
fn block_text<'t>(
    text: Cow<'t, str>,
    flags: UserFlags,
    open: Option<SystemCategory>,
    human: &mut Human<'t>,
) -> Option<SystemCategory> {
    if flags.compact {
        return user_text(text, flags, human);
    }
    let Some(category) = open.or_else(|| wrapper_at(text.trim_start())) else {
        return user_text(text, flags, human);
    };
    let still_open = open.is_some() || injected(&text).is_some_and(|i| i.open);
    human.push(Pending::System(category, text));
    still_open.then_some(category)
}

/// The parts of one user text, its [`injected`] context already found: a
/// system category, or `None` for the human's words.
fn classify_text<'a>(
    text: &'a str,
    flags: UserFlags,
    found: Option<&Injected>,
) -> Vec<(Option<SystemCategory>, Cow<'a, str>)> {
    if flags.compact {
        return vec![(Some(SystemCategory::Compaction), Cow::Borrowed(text))];
    }
    split_blocks(text, found)
        .into_iter()
        .map(|piece| match piece {
            Piece::Block(category, t) => (Some(category), Cow::Borrowed(t)),
            Piece::Rest(t) => match rest_category(&t, flags) {
                Some(category) => (Some(category), t),
                None if flags.sidechain => (Some(SystemCategory::SubagentPrompt), t),
                None if flags.beside_tool => (Some(SystemCategory::ModelInput), t),
                None => (None, t),
            },
        })
        .collect()
}

/// The category of text outside wrapper blocks, `None` for plain text.
fn rest_category(text: &str, flags: UserFlags) -> Option<SystemCategory> {
    let t = text.trim_start();
    WRAPPERS
        .iter()
        .find(|(prefix, _)| t.starts_with(prefix))
        .map(|(_, c)| *c)
        .or(flags.meta.then_some(SystemCategory::CommandWrapper))
        .or(flags.agent_origin.then_some(SystemCategory::Notice))
}

enum Piece<'t> {
    /// A `<system-reminder>` or `<ide_…>` block.
    Block(SystemCategory, &'t str),
    /// Everything else, in one piece.
    Rest(Cow<'t, str>),
}

/// Longest wrapper tag name looked for.
const MAX_TAG: usize = 64;

/// An injected block opening at the start of `s`: its category.
fn wrapper_at(s: &str) -> Option<SystemCategory> {
    let rest = s.strip_prefix('<')?;
    // Tag names are short; looking further would make long texts with many
    // `<`-led lines quadratic.
    let end = rest.bytes().take(MAX_TAG).position(|b| b == b'>')?;
    let name = &rest[..end];
    if name == "system-reminder" {
        return Some(SystemCategory::InjectedContext);
    }
    is_injected_name(name).then_some(SystemCategory::IdeContext)
}

/// `system-reminder` or an `ide_…` tag name.
fn is_injected_name(name: &str) -> bool {
    name == "system-reminder"
        || name.strip_prefix("ide_").is_some_and(|ide| {
            !ide.is_empty() && ide.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// Where the agent injected context into one user text: from `start` to
/// `end`, and, when an opener follows `end`, from `tail` to the end.
struct Injected {
    start: usize,
    end: usize,
    category: SystemCategory,
    tail: Option<(usize, SystemCategory)>,
    /// No closing tag ends what was opened last.
    open: bool,
}

/// Find the injected context of one user text. An injected block opens
/// with `<system-reminder>` or `<ide_…>` at the start of a line and holds
/// text anyone who can commit to a repository writes (CLAUDE.md, a
/// selected file), so a closing tag inside it proves nothing. The injected
/// part therefore runs from the first opener to the end of the *last*
/// closing tag of any injected name in the text: the closing tag the agent
/// wrote follows every byte the file supplied, so none of them escapes.
/// Human text between two blocks is counted as injected (when in doubt,
/// text is injected, not human). An opener after that last closing tag has
/// no end and takes the rest of the text.
fn injected(text: &str) -> Option<Injected> {
    let (start, category) = first_opener(text)?;
    let close = last_close(&text[start..]);
    let end = close.map_or(text.len(), |e| start + e);
    let tail = first_opener(&text[end..]).map(|(s, c)| (end + s, c));
    Some(Injected {
        start,
        end,
        category,
        tail,
        open: close.is_none() || tail.is_some(),
    })
}

/// Cut the [`injected`] context out of `text`. The text outside it is
/// joined into one [`Piece::Rest`], placed where its first part was; it is
/// trimmed when blocks were cut, and dropped when blank. Text without an
/// opener comes back whole and untouched.
fn split_blocks<'a>(text: &'a str, found: Option<&Injected>) -> Vec<Piece<'a>> {
    let Some(inj) = found else {
        return vec![Piece::Rest(Cow::Borrowed(text))];
    };
    let mut blocks = Vec::with_capacity(2);
    blocks.push((inj.start, inj.end, inj.category));
    if let Some((s, c)) = inj.tail {
        blocks.push((s, text.len(), c));
    }
    let mut pieces = Vec::with_capacity(blocks.len() + 1);
    let mut rest: Vec<&str> = Vec::new();
    let mut rest_at = None;
    let mut prev_end = 0;
    for &(start, end, category) in &blocks {
        let between = text[prev_end..start].trim();
        if !between.is_empty() {
            rest_at.get_or_insert(pieces.len());
            rest.push(between);
        }
        pieces.push(Piece::Block(category, &text[start..end]));
        prev_end = end;
    }
    let tail = text[prev_end..].trim();
    if !tail.is_empty() {
        rest_at.get_or_insert(pieces.len());
        rest.push(tail);
    }
    if let Some(at) = rest_at {
        let joined = match rest.as_slice() {
            [one] => Cow::Borrowed(*one),
            many => Cow::Owned(many.join("\n\n")),
        };
        pieces.insert(at, Piece::Rest(joined));
    }
    pieces
}

/// The first injected opener at the start of `s` or of one of its lines
/// (after `\n` or a lone `\r`, as CommonMark ends lines): its offset and
/// category.
fn first_opener(s: &str) -> Option<(usize, SystemCategory)> {
    let mut pos = 0;
    loop {
        if let Some(category) = wrapper_at(&s[pos..]) {
            return Some((pos, category));
        }
        pos += memchr::memchr2(b'\n', b'\r', &s.as_bytes()[pos..])? + 1;
    }
}

/// The end of the last closing tag of an injected block (`</system-reminder>`,
/// `</ide_…>`) in `s`, wherever it stands.
fn last_close(s: &str) -> Option<usize> {
    s.rmatch_indices("</").find_map(|(i, _)| {
        let rest = &s[i + 2..];
        let end = rest.bytes().take(MAX_TAG).position(|b| b == b'>')?;
        is_injected_name(&rest[..end]).then_some(i + 2 + end + 1)
    })
}

// ---------------------------------------------------------------------------
// System records.

fn system(rec: SystemRec, line: &str, em: &mut Emitter) {
    let content = rec.content.as_deref().unwrap_or_default();
    match rec.subtype {
        Some("api_error") => em.system(SystemCategory::Error, api_error_text(&rec)),
        Some("compact_boundary") => em.system(
            SystemCategory::Compaction,
            if content.is_empty() {
                "Conversation compacted"
            } else {
                content
            },
        ),
        Some("local_command") => em.system(SystemCategory::CommandWrapper, content),
        Some("informational") | None => {
            let category = if rec.level.as_deref() == Some("error") {
                SystemCategory::Error
            } else {
                SystemCategory::Notice
            };
            em.system(category, content);
        }
        // `decode` only lets the subtypes above through.
        Some(_) => em.raw(line, None),
    }
}

/// `API error 429: <message> (retry 1/10)` from an `api_error` record.
fn api_error_text(rec: &SystemRec) -> String {
    let err: Option<serde_json::Value> = rec.error.and_then(|r| serde_json::from_str(r.get()).ok());
    let status = err
        .as_ref()
        .and_then(|e| e.get("status"))
        .and_then(serde_json::Value::as_u64);
    // The provider nests the message one to three `error` objects deep.
    let mut message = None;
    let mut cur = err.as_ref();
    while let Some(v) = cur {
        if let Some(m) = v.get("message").and_then(serde_json::Value::as_str) {
            message = Some(m.to_owned());
            break;
        }
        cur = v.get("error");
    }
    let mut text = String::from("API error");
    if let Some(s) = status {
        text.push_str(&format!(" {s}"));
    }
    match (message, rec.content.as_deref()) {
        (Some(m), _) => text.push_str(&format!(": {m}")),
        (None, Some(c)) if !c.is_empty() => text.push_str(&format!(": {c}")),
        _ => {}
    }
    if let (Some(a), Some(m)) = (rec.retry_attempt, rec.max_retries) {
        text.push_str(&format!(" (retry {a}/{m})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;
    use proptest::prelude::*;

    fn main_ctx() -> FileCtx {
        FileCtx {
            provider: ID,
            file_tag: "s1".into(),
            session_hint: "s1".into(),
            subagent: None,
        }
    }

    /// Parse lines as one file; returns the events and per-line results.
    fn run_ctx(ctx: FileCtx, lines: &[&str]) -> (Vec<Event>, Vec<Result<(), Malformed>>) {
        let mut p = ClaudeParser::new(ctx);
        let mut events = Vec::new();
        let mut results = Vec::new();
        let mut offset = 0u64;
        for line in lines {
            results.push(p.record(offset, line.as_bytes(), &mut |e| events.push(e)));
            offset += line.len() as u64 + 1;
        }
        (events, results)
    }

    fn run(lines: &[&str]) -> Vec<Event> {
        let (events, results) = run_ctx(main_ctx(), lines);
        for (i, r) in results.iter().enumerate() {
            assert!(r.is_ok(), "line {i}: {r:?}");
        }
        events
    }

    fn one(line: &str) -> Event {
        let mut evs = run(&[line]);
        assert_eq!(evs.len(), 1, "{evs:#?}");
        evs.remove(0)
    }

    fn kinds(evs: &[Event]) -> Vec<&'static str> {
        evs.iter().map(|e| e.kind().as_str()).collect()
    }

    fn sys(ev: &Event) -> (SystemCategory, &str) {
        match &ev.payload {
            Payload::SystemMessage { category, text } => (*category, text.as_str()),
            other => panic!("not a system message: {other:?}"),
        }
    }

    fn user_text(ev: &Event) -> (&str, u32) {
        match &ev.payload {
            Payload::UserMessage { text, attachments } => (text.as_str(), *attachments),
            other => panic!("not a user message: {other:?}"),
        }
    }

    fn user_line(content: &str, extra: &str) -> String {
        format!(
            r#"{{"type":"user","uuid":"u1","sessionId":"sess","timestamp":"2026-01-01T00:00:00.000Z"{extra},"message":{{"role":"user","content":{content}}}}}"#
        )
    }

    fn assistant_line(blocks: &str, extra: &str) -> String {
        format!(
            r#"{{"type":"assistant","uuid":"a1","sessionId":"sess","timestamp":"2026-01-01T00:00:01.000Z"{extra},"message":{{"model":"claude-opus-4-6","role":"assistant","content":{blocks}}}}}"#
        )
    }

    // --- discovery -------------------------------------------------------

    const UUID: &str = "0890bead-0ab3-4ee9-98f8-585fd289cc1f";

    #[test]
    fn classify_main_transcript() {
        let ctx = Claude
            .classify(Path::new(&format!("-Users-me-proj/{UUID}.jsonl")))
            .unwrap();
        assert_eq!(ctx.session_hint, UUID);
        assert_eq!(ctx.file_tag, UUID);
        assert_eq!(ctx.subagent, None);
        // Absolute paths classify the same way.
        let abs = format!("/home/me/.claude/projects/-x/{UUID}.jsonl");
        assert_eq!(Claude.classify(Path::new(&abs)), Some(ctx));
    }

    #[test]
    fn classify_subagent_layouts() {
        let old = Claude
            .classify(Path::new("-Users-me-proj/agent-ae7f6bd.jsonl"))
            .unwrap();
        assert_eq!(old.session_hint, "agent-ae7f6bd");
        assert_eq!(
            old.subagent,
            Some(Subagent {
                id: Some("ae7f6bd".into()),
                label: None
            })
        );
        let new = Claude
            .classify(Path::new(&format!(
                "-p/{UUID}/subagents/agent-a2207d29b06d6f51b.jsonl"
            )))
            .unwrap();
        assert_eq!(new.session_hint, UUID);
        assert_eq!(new.file_tag, "agent-a2207d29b06d6f51b");
        assert_eq!(
            new.subagent.unwrap().id.as_deref(),
            Some("a2207d29b06d6f51b")
        );
        let aside = Claude
            .classify(Path::new(&format!(
                "-p/{UUID}/subagents/agent-aside_question-fcbf929fc3d4fdc0.jsonl"
            )))
            .unwrap();
        assert_eq!(aside.session_hint, UUID);
        assert_eq!(
            aside.subagent,
            Some(Subagent {
                id: Some("aside_question-fcbf929fc3d4fdc0".into()),
                label: Some(SIDE_QUESTION_LABEL.into())
            })
        );
    }

    #[test]
    fn classify_rejects_sidecars_and_strangers() {
        for p in [
            format!("-p/{UUID}/subagents/agent-a2207d29b06d6f51b.meta.json"),
            format!("-p/{UUID}/tool-results/toolu_019Ens3ePi9TkBwX5mDrGEpQ.txt"),
            format!("-p/{UUID}/tool-results/{UUID}.jsonl"),
            format!("-p/{UUID}/subagents/{UUID}.jsonl"),
            "-p/not-a-uuid/subagents/agent-a1.jsonl".to_owned(),
            "-p/notes.jsonl".to_owned(),
            "-p/agent-.jsonl".to_owned(),
            format!("{UUID}.jsonl"),
            format!("-p/{UUID}.json"),
            format!("-p/{}.jsonl", &UUID[..35]),
        ] {
            assert_eq!(Claude.classify(Path::new(&p)), None, "{p}");
        }
    }

    // --- user records -----------------------------------------------------

    #[test]
    fn typed_prompt_is_a_user_message_with_record_fields() {
        let ev = one(&user_line(r#""fix the bug""#, r#","promptId":"p1""#));
        assert_eq!(user_text(&ev), ("fix the bug", 0));
        assert_eq!(ev.event_id, "u1");
        assert_eq!(&*ev.session_id, "sess");
        assert_eq!(ev.timestamp.as_deref(), Some("2026-01-01T00:00:00.000Z"));
        assert_eq!(ev.turn_id.as_deref(), Some("p1"));
        assert_eq!(ev.source.record, "user");
        assert_eq!(ev.source.file.as_deref(), Some("s1"));
        assert!(ev.is_human_message());
    }

    #[test]
    fn escaped_text_is_unescaped() {
        let ev = one(&user_line(r#""line one\nline \"two\"""#, ""));
        assert_eq!(user_text(&ev).0, "line one\nline \"two\"");
    }

    #[test]
    fn command_wrappers_and_meta_are_not_human() {
        for (content, extra, category) in [
            (
                r#""<command-name>/clear</command-name>\n<command-message>clear</command-message>\n<command-args></command-args>""#,
                "",
                SystemCategory::CommandWrapper,
            ),
            (
                r#""<local-command-caveat>Caveat: generated by local commands</local-command-caveat>""#,
                r#","isMeta":true"#,
                SystemCategory::CommandWrapper,
            ),
            (
                r#""<local-command-stdout>Set model</local-command-stdout>""#,
                "",
                SystemCategory::CommandWrapper,
            ),
            (
                r#""Continue from where you left off.""#,
                r#","isMeta":true"#,
                SystemCategory::CommandWrapper,
            ),
            (
                r#"[{"type":"text","text":"Base directory for this skill: /x\n::record"}]"#,
                r#","isMeta":true"#,
                SystemCategory::CommandWrapper,
            ),
            (
                r#""<bash-input>ls</bash-input>""#,
                "",
                SystemCategory::UserShell,
            ),
            (
                r#""<bash-stdout>a\nb</bash-stdout><bash-stderr></bash-stderr>""#,
                "",
                SystemCategory::UserShell,
            ),
            (
                r#"[{"type":"text","text":"[Request interrupted by user for tool use]"}]"#,
                "",
                SystemCategory::Notice,
            ),
            (
                r#""Stop hook feedback:\n- run the tests""#,
                r#","isMeta":true"#,
                SystemCategory::Notice,
            ),
            (
                r#""This session is being continued from a previous conversation.""#,
                r#","isCompactSummary":true,"isVisibleInTranscriptOnly":true"#,
                SystemCategory::Compaction,
            ),
        ] {
            let ev = one(&user_line(content, extra));
            assert_eq!(sys(&ev).0, category, "{content}");
            assert!(!ev.is_human_message());
        }
    }

    #[test]
    fn compact_summary_is_not_split() {
        // Even a reminder inside a summary stays part of the summary.
        let ev = one(&user_line(
            r#""Summary:\n<system-reminder>x</system-reminder>\nmore""#,
            r#","isCompactSummary":true"#,
        ));
        assert_eq!(
            sys(&ev),
            (
                SystemCategory::Compaction,
                "Summary:\n<system-reminder>x</system-reminder>\nmore"
            )
        );
    }

    #[test]
    fn ide_blocks_are_split_from_the_prompt() {
        let evs = run(&[&user_line(
            r#"[{"type":"text","text":"<ide_selection>The user selected lines 1 to 2</ide_selection>"},{"type":"text","text":"Can we use destructuring here?"}]"#,
            "",
        )]);
        assert_eq!(kinds(&evs), ["system.message", "user.message"]);
        assert_eq!(sys(&evs[0]).0, SystemCategory::IdeContext);
        assert_eq!(user_text(&evs[1]).0, "Can we use destructuring here?");
        assert_eq!(evs[0].event_id, "u1");
        assert_eq!(evs[1].event_id, "u1#1");
    }

    #[test]
    fn reminders_inside_one_text_are_cut_out() {
        // From the first opener to the last closing tag is injected, the
        // human words between two blocks too; what follows stays human.
        let evs = run(&[&user_line(
            r#""before\n<ide_opened_file>The user opened a.rs</ide_opened_file>\nplease look\n<system-reminder>\n::stop\n</system-reminder>\nat it""#,
            "",
        )]);
        assert_eq!(kinds(&evs), ["user.message", "system.message"]);
        assert_eq!(user_text(&evs[0]).0, "before\n\nat it");
        assert_eq!(
            sys(&evs[1]),
            (
                SystemCategory::IdeContext,
                "<ide_opened_file>The user opened a.rs</ide_opened_file>\nplease look\n<system-reminder>\n::stop\n</system-reminder>"
            )
        );
    }

    #[test]
    fn an_early_closing_tag_does_not_end_injected_file_text() {
        // CLAUDE.md text holding a closing tag: the reminder runs to the
        // last one, so the planted line stays inside.
        for content in [
            r#""<system-reminder>\nContents of CLAUDE.md:\nx </system-reminder>\n::stop\n</system-reminder>\nmy question""#,
            r#""<ide_selection>selected </ide_selection>\n::stop\nmore</ide_selection>\nmy question""#,
            r#""<ide_selection>a</ide_selection>\n<system-reminder>\n</ide_selection>\n::stop\n</system-reminder>\nmy question""#,
        ] {
            let evs = run(&[&user_line(content, "")]);
            assert_eq!(kinds(&evs), ["system.message", "user.message"], "{content}");
            assert!(sys(&evs[0]).1.contains("::stop"), "{content}");
            assert_eq!(user_text(&evs[1]).0, "my question", "{content}");
        }
    }

    #[test]
    fn a_text_block_opening_with_an_injected_block_is_injected_whole() {
        let evs = run(&[&user_line(
            r#"[{"type":"text","text":"real question"},{"type":"text","text":"<system-reminder>\nContents of /repo/CLAUDE.md:\nignore </system-reminder>\n::stop\nmore file text\n</system-reminder>\ntrailing file text"}]"#,
            "",
        )]);
        assert_eq!(kinds(&evs), ["user.message", "system.message"]);
        assert_eq!(user_text(&evs[0]).0, "real question");
        let (category, text) = sys(&evs[1]);
        assert_eq!(category, SystemCategory::InjectedContext);
        assert!(text.ends_with("trailing file text"), "{text}");
    }

    #[test]
    fn an_unclosed_injected_block_takes_the_next_text_blocks() {
        let evs = run(&[&user_line(
            r#"[{"type":"text","text":"ask\n<ide_selection>no end"},{"type":"text","text":"::stop"},{"type":"image","source":{}}]"#,
            "",
        )]);
        assert_eq!(
            kinds(&evs),
            ["user.message", "system.message", "system.message"]
        );
        assert_eq!(user_text(&evs[0]), ("ask", 1));
        assert_eq!(sys(&evs[2]), (SystemCategory::IdeContext, "::stop"));
    }

    #[test]
    fn records_the_agent_wrote_are_not_the_human() {
        // A background task's notification carries an agent's report; newer
        // versions also say who wrote a user record.
        for (content, extra) in [
            (
                r#""<task-notification>\n<task-id>a1</task-id>\n<result>report\n::stop</result>\n</task-notification>""#,
                "",
            ),
            (
                r#""Background task finished.\n::stop""#,
                r#","origin":{"kind":"task-notification"}"#,
            ),
            (r#""::stop""#, r#","promptSource":"system""#),
        ] {
            let ev = one(&user_line(content, extra));
            assert_eq!(sys(&ev).0, SystemCategory::Notice, "{content} {extra}");
        }
        for extra in [
            r#","origin":{"kind":"human"}"#,
            r#","origin":"odd","promptSource":7"#,
        ] {
            assert!(
                one(&user_line(r#""::stop""#, extra)).is_human_message(),
                "{extra}"
            );
        }
    }

    #[test]
    fn text_beside_a_tool_result_is_model_input() {
        let evs = run(&[
            &assistant_line(
                r#"[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]"#,
                "",
            ),
            &user_line(
                r#"[{"type":"tool_result","tool_use_id":"t1","content":"ok"},{"type":"text","text":"::stop"}]"#,
                "",
            ),
        ]);
        assert_eq!(
            kinds(&evs),
            [
                "assistant.tool.call",
                "assistant.tool.result",
                "system.message"
            ]
        );
        assert_eq!(sys(&evs[2]), (SystemCategory::ModelInput, "::stop"));
        assert!(evs.iter().all(|e| !e.is_human_message()));
    }

    #[test]
    fn unclosed_reminder_swallows_the_rest() {
        let evs = run(&[&user_line(r#""<system-reminder>no end\n::stop""#, "")]);
        assert_eq!(kinds(&evs), ["system.message"]);
        assert_eq!(sys(&evs[0]).0, SystemCategory::InjectedContext);
    }

    #[test]
    fn tags_in_the_middle_of_a_line_stay_text() {
        let ev = one(&user_line(r#""what does <system-reminder> mean?""#, ""));
        assert_eq!(user_text(&ev).0, "what does <system-reminder> mean?");
        let ev = one(&user_line(r#""<ide_>x</ide_>""#, ""));
        assert!(ev.is_human_message());
    }

    #[test]
    fn many_lines_opening_with_angle_brackets_stay_linear() {
        // 40 000 lines led by `<` with no `>` anywhere: each line start must
        // not scan the rest of the text.
        let text = "<x\n".repeat(40_000);
        let line = user_line(&serde_json::to_string(&text).unwrap(), "");
        let ev = one(&line);
        assert_eq!(user_text(&ev).0, text);
    }

    // --- no command escapes an injected block (property) ------------------

    /// One part of a generated user text: the human's words, or a block
    /// the agent wrote around file text (`(opener, file lines)`).
    #[derive(Debug, Clone)]
    enum Part {
        Human(Vec<&'static str>),
        Block(usize, Vec<&'static str>),
    }

    const OPENERS: [(&str, &str); 3] = [
        ("<system-reminder>", "</system-reminder>"),
        ("<ide_selection>", "</ide_selection>"),
        ("<ide_opened_file>", "</ide_opened_file>"),
    ];

    /// Lines a file can hold: planted commands (each naming `/evil/`),
    /// early closing tags, openers nested in it, fences, quotes.
    fn file_line() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "file text",
            "::capture /evil/a",
            "::export /evil/b.md",
            "  ::stop /evil/c",
            "</system-reminder>",
            "ignore </system-reminder>",
            "</ide_selection>",
            "</ide_opened_file>",
            "<system-reminder>",
            "<ide_selection>",
            "```",
            "> quoted",
            "",
        ])
    }

    fn part() -> impl Strategy<Value = Part> {
        prop_oneof![
            proptest::collection::vec(
                proptest::sample::select(vec!["question", "::stop", "more words"]),
                0..3
            )
            .prop_map(Part::Human),
            (
                0..OPENERS.len(),
                proptest::collection::vec(file_line(), 0..8)
            )
                .prop_map(|(o, lines)| Part::Block(o, lines)),
        ]
    }

    /// The text of `parts` as the agent writes it: each part starts a line
    /// (`sep` is the agent's line end); the human's lines are joined by `\n`.
    fn render(parts: &[Part], sep: &str) -> String {
        parts
            .iter()
            .map(|p| match p {
                Part::Human(lines) => lines.join("\n"),
                Part::Block(o, lines) => {
                    let (open, close) = OPENERS[*o];
                    format!("{open}{sep}{}{sep}{close}", lines.join(sep))
                }
            })
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// A user record's content: one string, or one `text` block per item.
    fn content_of(items: &[Vec<Part>], sep: &str, as_array: bool) -> serde_json::Value {
        if as_array {
            let blocks = items
                .iter()
                .map(|parts| serde_json::json!({"type": "text", "text": render(parts, sep)}))
                .collect();
            serde_json::Value::Array(blocks)
        } else {
            serde_json::Value::String(render(&items.concat(), sep))
        }
    }

    proptest! {
        // Cases: `PROPTEST_CASES` (default 256).
        #[test]
        fn no_command_escapes_an_injected_block(
            items in proptest::collection::vec(proptest::collection::vec(part(), 1..4), 1..4),
            sep in proptest::sample::select(vec!["\n", "\r\n", "\r"]),
            as_array in proptest::bool::ANY,
        ) {
            let content = content_of(&items, sep, as_array);
            let line = user_line(&content.to_string(), "");
            let events = run(&[&line]);
            let mut commands = Vec::new();
            for ev in &events {
                if let Payload::UserMessage { text, .. } = &ev.payload {
                    prop_assert!(!text.contains("/evil/"), "file text as human words: {text:?}");
                }
                commands.extend(crate::commands::command_events(ev));
            }
            for c in &commands {
                if let Payload::KatoCommand { raw, .. } = &c.payload {
                    prop_assert!(!raw.contains("/evil/"), "{raw:?} escaped from {content}");
                }
            }
            // The human's own command before any block still counts (a lone
            // `\r` joins lines the grammar reads as one: refused, not run).
            if let Some(Part::Human(first)) = items[0].first() {
                if first.contains(&"::stop") && sep != "\r" {
                    prop_assert!(
                        commands.iter().any(|c| matches!(&c.payload, Payload::KatoCommand { raw, .. } if raw == "::stop")),
                        "the human's ::stop was lost in {content}"
                    );
                }
            }
        }
    }

    #[test]
    fn images_are_attachments() {
        let ev = one(&user_line(
            r#"[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}},{"type":"text","text":"[Image #1]\n\nlook"}]"#,
            "",
        ));
        assert_eq!(user_text(&ev), ("[Image #1]\n\nlook", 1));
        let ev = one(&user_line(
            r#"[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}}]"#,
            "",
        ));
        assert_eq!(user_text(&ev), ("", 1));
    }

    #[test]
    fn several_human_blocks_make_one_message() {
        let evs = run(&[&user_line(
            r#"[{"type":"text","text":"one"},{"type":"image","source":{}},{"type":"text","text":"two"}]"#,
            "",
        )]);
        assert_eq!(kinds(&evs), ["user.message"]);
        assert_eq!(user_text(&evs[0]), ("one\n\ntwo", 1));
    }

    #[test]
    fn inline_sidechain_prompt_is_a_subagent_prompt() {
        let ev = one(&user_line(
            r#""Remove all React files""#,
            r#","isSidechain":true,"parentUuid":null"#,
        ));
        assert_eq!(
            sys(&ev),
            (SystemCategory::SubagentPrompt, "Remove all React files")
        );
        assert_eq!(
            ev.subagent,
            Some(Subagent {
                id: None,
                label: None
            })
        );
        assert!(!ev.is_human_message());
    }

    #[test]
    fn subagent_file_marks_every_event() {
        let ctx = Claude
            .classify(Path::new(&format!("-p/{UUID}/subagents/agent-abc.jsonl")))
            .unwrap();
        let (evs, results) = run_ctx(
            ctx,
            &[
                // No isSidechain flag: the file alone makes it subagent work.
                &user_line(r#""Find the API endpoints""#, ""),
                &assistant_line(r#"[{"type":"text","text":"Found 3."}]"#, ""),
                r#"{"type":"file-history-snapshot","messageId":"m","snapshot":{}}"#,
            ],
        );
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(sys(&evs[0]).0, SystemCategory::SubagentPrompt);
        for ev in &evs {
            assert_eq!(
                ev.subagent.as_ref().and_then(|s| s.id.as_deref()),
                Some("abc")
            );
            assert!(!ev.is_human_message());
        }
        // Records without sessionId take the last one seen.
        assert_eq!(&*evs[2].session_id, "sess");
    }

    #[test]
    fn side_question_agent_id_sets_the_label() {
        let evs = run(&[&user_line(
            r#""<system-reminder>This is a side question from the user.</system-reminder>\n\nwhat is X?""#,
            r#","isSidechain":true,"agentId":"aside_question-fcbf929fc3d4fdc0""#,
        )]);
        assert_eq!(kinds(&evs), ["system.message", "system.message"]);
        assert_eq!(sys(&evs[0]).0, SystemCategory::InjectedContext);
        assert_eq!(sys(&evs[1]), (SystemCategory::SubagentPrompt, "what is X?"));
        assert_eq!(
            evs[1].subagent.as_ref().and_then(|s| s.label.as_deref()),
            Some(SIDE_QUESTION_LABEL)
        );
    }

    #[test]
    fn empty_user_content_is_kept_raw() {
        let ev = one(&user_line("[]", ""));
        assert_eq!(ev.kind(), Kind::ProviderRaw);
        assert_eq!(ev.event_id, "u1");
    }

    // --- tools and decisions --------------------------------------------

    #[test]
    fn tool_call_and_result_share_the_id() {
        let evs = run(&[
            &assistant_line(
                r#"[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls -la"},"caller":{"type":"direct"}}]"#,
                "",
            ),
            &user_line(
                r#"[{"tool_use_id":"toolu_1","type":"tool_result","content":"a\nb","is_error":false}]"#,
                r#","toolUseResult":{"stdout":"a\nb"}"#,
            ),
            &user_line(
                r#"[{"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"x"},{"type":"tool_reference","tool_name":"WebFetch"},{"type":"image","source":{}},{"type":"mystery","n":1}],"is_error":true}]"#,
                "",
            ),
        ]);
        assert_eq!(
            kinds(&evs),
            [
                "assistant.tool.call",
                "assistant.tool.result",
                "assistant.tool.result"
            ]
        );
        match &evs[0].payload {
            Payload::ToolCall {
                tool_call_id,
                name,
                input,
            } => {
                assert_eq!((tool_call_id.as_str(), name.as_str()), ("toolu_1", "Bash"));
                assert_eq!(input.get(), r#"{"command":"ls -la"}"#);
            }
            p => panic!("{p:?}"),
        }
        assert_eq!(evs[0].model.as_deref(), Some("claude-opus-4-6"));
        match &evs[1].payload {
            Payload::ToolResult {
                tool_call_id,
                output,
                is_error,
            } => {
                assert_eq!(
                    (tool_call_id.as_str(), output.as_str(), *is_error),
                    ("toolu_1", "a\nb", false)
                );
            }
            p => panic!("{p:?}"),
        }
        match &evs[2].payload {
            Payload::ToolResult {
                output, is_error, ..
            } => {
                assert_eq!(
                    output,
                    "x\n[tool reference: WebFetch]\n[image]\n{\"type\":\"mystery\",\"n\":1}"
                );
                assert!(is_error);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn plan_approval_is_a_decision() {
        let evs = run(&[
            &assistant_line(
                r##"[{"type":"tool_use","id":"toolu_p","name":"ExitPlanMode","input":{"plan":"# Plan\n1. do it","planFilePath":"/p.md"}}]"##,
                "",
            ),
            &user_line(
                r#"[{"type":"tool_result","tool_use_id":"toolu_p","content":"User has approved your plan."}]"#,
                "",
            ),
        ]);
        match (&evs[0].payload, &evs[1].payload) {
            (
                Payload::DecisionPrompt {
                    prompt_id,
                    name,
                    text,
                },
                Payload::DecisionResponse {
                    prompt_id: answered,
                    text: answer,
                },
            ) => {
                assert_eq!(
                    (prompt_id.as_str(), name.as_str(), text.as_str()),
                    ("toolu_p", "ExitPlanMode", "# Plan\n1. do it")
                );
                assert_eq!(
                    (answered.as_str(), answer.as_str()),
                    ("toolu_p", "User has approved your plan.")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn questions_are_a_decision_and_survive_a_state_round_trip() {
        let mut p = ClaudeParser::new(main_ctx());
        let mut evs = Vec::new();
        p.record(
            0,
            assistant_line(
                r#"[{"type":"tool_use","id":"toolu_q","name":"AskUserQuestion","input":{"questions":[{"question":"Which DB?","header":"DB","multiSelect":false,"options":[{"label":"Postgres","description":"relational"},{"label":"Mongo","description":""}]}]}}]"#,
                "",
            )
            .as_bytes(),
            &mut |e| evs.push(e),
        )
        .unwrap();
        let saved = p.state();
        assert_eq!(
            saved,
            serde_json::json!({"session": "sess", "pending_prompts": ["toolu_q"],
                               "last_time": "2026-01-01T00:00:01.000Z", "began": true})
        );
        let mut q = ClaudeParser::new(main_ctx());
        q.restore(&saved).unwrap();
        assert_eq!(q.state(), saved);
        q.record(
            100,
            user_line(
                r#"[{"type":"tool_result","tool_use_id":"toolu_q","content":"User has answered your questions: \"Which DB?\"=\"Postgres\"."}]"#,
                "",
            )
            .as_bytes(),
            &mut |e| evs.push(e),
        )
        .unwrap();
        assert_eq!(
            kinds(&evs),
            ["assistant.decision.prompt", "user.decision.response"]
        );
        match &evs[0].payload {
            Payload::DecisionPrompt { text, .. } => {
                assert_eq!(text, "Which DB?\n- Postgres: relational\n- Mongo")
            }
            p => panic!("{p:?}"),
        }
        // Answered: no longer pending.
        assert_eq!(
            q.state(),
            serde_json::json!({"session": "sess", "last_time": "2026-01-01T00:00:00.000Z", "began": true})
        );
    }

    #[test]
    fn restore_rejects_garbage() {
        let mut p = ClaudeParser::new(main_ctx());
        assert!(p
            .restore(&serde_json::json!({"pending_prompts": 3}))
            .is_err());
        assert!(p.restore(&serde_json::json!({"bogus": true})).is_err());
        assert!(p.restore(&serde_json::json!([1])).is_err());
        assert!(p.restore(&serde_json::json!({})).is_ok());
    }

    // --- assistant records ----------------------------------------------

    #[test]
    fn assistant_text_and_thinking() {
        let evs = run(&[
            &assistant_line(
                r#"[{"type":"thinking","thinking":"","signature":"EpkC"}]"#,
                "",
            ),
            &assistant_line(
                r#"[{"type":"thinking","thinking":"hmm","signature":"EpkC"},{"type":"text","text":"Done."}]"#,
                "",
            ),
        ]);
        assert_eq!(
            kinds(&evs),
            [
                "assistant.thinking",
                "assistant.thinking",
                "assistant.message"
            ]
        );
        assert!(matches!(&evs[0].payload, Payload::Thinking { text } if text.is_empty()));
        assert!(matches!(&evs[2].payload, Payload::AssistantMessage { text } if text == "Done."));
        assert_eq!(evs[1].event_id, "a1");
        assert_eq!(evs[2].event_id, "a1#1");
        assert!(evs
            .iter()
            .all(|e| e.model.as_deref() == Some("claude-opus-4-6")));
    }

    #[test]
    fn synthetic_messages_are_system_messages() {
        let line = r#"{"type":"assistant","uuid":"e1","isApiErrorMessage":true,"error":"rate_limit","message":{"model":"<synthetic>","content":[{"type":"text","text":"You've hit your limit"}]}}"#;
        assert_eq!(
            sys(&one(line)),
            (SystemCategory::Error, "You've hit your limit")
        );
        let line = r#"{"type":"assistant","uuid":"e2","message":{"model":"<synthetic>","content":[{"type":"text","text":"API Error: Connection error."}]}}"#;
        assert_eq!(sys(&one(line)).0, SystemCategory::Error);
        let line = r#"{"type":"assistant","uuid":"e3","message":{"model":"<synthetic>","content":[{"type":"text","text":"No response requested."}]}}"#;
        assert_eq!(sys(&one(line)).0, SystemCategory::Notice);
    }

    #[test]
    fn unknown_blocks_are_raw() {
        let evs = run(&[&assistant_line(
            r#"[{"type":"redacted_thinking","data":"xyz"},{"type":"server_tool_use","id":5},{"type":"text","text":"ok"}]"#,
            "",
        )]);
        assert_eq!(
            kinds(&evs),
            ["provider.raw", "provider.raw", "assistant.message"]
        );
        match &evs[1].payload {
            Payload::ProviderRaw { record } => {
                assert_eq!(record.get(), r#"{"type":"server_tool_use","id":5}"#)
            }
            p => panic!("{p:?}"),
        }
    }

    // --- system and bookkeeping records ---------------------------------

    #[test]
    fn system_subtypes() {
        let cases = [
            (
                r#"{"type":"system","subtype":"api_error","uuid":"x","level":"error","error":{"status":429,"headers":{},"error":{"error":{"code":"1311","message":"quota"}}},"retryInMs":586.1,"retryAttempt":1,"maxRetries":10}"#,
                Some((SystemCategory::Error, "API error 429: quota (retry 1/10)")),
            ),
            (
                r#"{"type":"system","subtype":"informational","uuid":"x","content":"blocked by hook","level":"warning"}"#,
                Some((SystemCategory::Notice, "blocked by hook")),
            ),
            (
                r#"{"type":"system","subtype":"compact_boundary","uuid":"x","content":"Conversation compacted","compactMetadata":{"trigger":"auto"}}"#,
                Some((SystemCategory::Compaction, "Conversation compacted")),
            ),
            (
                r#"{"type":"system","subtype":"local_command","uuid":"x","content":"<local-command-stdout></local-command-stdout>"}"#,
                Some((
                    SystemCategory::CommandWrapper,
                    "<local-command-stdout></local-command-stdout>",
                )),
            ),
            (
                r#"{"type":"system","uuid":"x","content":"Claude Opus 4 limit reached, now using Sonnet 4","level":"warning"}"#,
                Some((
                    SystemCategory::Notice,
                    "Claude Opus 4 limit reached, now using Sonnet 4",
                )),
            ),
            (
                r#"{"type":"system","uuid":"x","content":"boom","level":"error"}"#,
                Some((SystemCategory::Error, "boom")),
            ),
            (
                r#"{"type":"system","subtype":"turn_duration","uuid":"x","durationMs":10358}"#,
                None,
            ),
            (
                r#"{"type":"system","subtype":"stop_hook_summary","uuid":"x","hookCount":1}"#,
                None,
            ),
        ];
        for (line, want) in cases {
            let ev = one(line);
            match want {
                Some(w) => assert_eq!(sys(&ev), w, "{line}"),
                None => assert_eq!(ev.kind(), Kind::ProviderInfo, "{line}"),
            }
        }
        let ev = one(r#"{"type":"system","subtype":"turn_duration","uuid":"x","durationMs":1}"#);
        assert!(
            matches!(&ev.payload, Payload::ProviderInfo { topic, .. } if topic == "turn_duration")
        );
        assert_eq!(ev.source.record, "system/turn_duration");
        // Unknown subtypes, and no subtype with nothing to read, stay raw.
        assert_eq!(
            one(r#"{"type":"system","subtype":"brand_new","content":"x"}"#).kind(),
            Kind::ProviderRaw
        );
        assert_eq!(
            one(r#"{"type":"system","level":"info"}"#).kind(),
            Kind::ProviderRaw
        );
    }

    fn info(line: &str) -> (String, String) {
        match one(line).payload {
            Payload::ProviderInfo { topic, data } => (topic, data.get().to_owned()),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn bookkeeping_records_are_info() {
        assert_eq!(
            info(r#"{"type":"ai-title","aiTitle":"Fix \"expires_at\"","sessionId":"c0"}"#),
            ("title".into(), r#""Fix \"expires_at\"""#.into())
        );
        let line = r#"{"type":"summary","summary":"Sync work","leafUuid":"l1"}"#;
        assert_eq!(info(line), ("summary".into(), line.into()));
        for (line, topic) in [
            (
                r#"{"type":"agent-name","agentName":"reviewer","sessionId":"c0"}"#,
                "agent_name",
            ),
            (
                r#"{"type":"last-prompt","lastPrompt":"go","leafUuid":"l","sessionId":"c0"}"#,
                "last_prompt",
            ),
            (
                r#"{"type":"permission-mode","permissionMode":"plan","sessionId":"c0"}"#,
                "permission_mode",
            ),
            (
                r#"{"type":"file-history-snapshot","messageId":"m","snapshot":{"messageId":"m","trackedFileBackups":{},"timestamp":"t"},"isSnapshotUpdate":false}"#,
                "file_history_snapshot",
            ),
            (
                r#"{"type":"queue-operation","operation":"enqueue","timestamp":"t","sessionId":"c0","content":"::stop"}"#,
                "queue_operation",
            ),
            (
                r#"{"type":"attachment","uuid":"x","attachment":{"type":"task_reminder","content":[],"itemCount":0}}"#,
                "attachment/task_reminder",
            ),
            (
                r#"{"type":"progress","uuid":"x","data":{"type":"hook_progress","hookEvent":"PostToolUse"},"toolUseID":"t"}"#,
                "hook_progress",
            ),
            (
                r#"{"type":"progress","uuid":"x","data":{"type":"agent_progress","agentId":"a1","message":{"type":"user","message":{"role":"user","content":"::record"}}},"parentToolUseID":"t"}"#,
                "agent_progress",
            ),
        ] {
            assert_eq!(info(line), (topic.to_owned(), line.to_owned()));
        }
        assert_eq!(
            one(r#"{"type":"progress","uuid":"x","data":{"type":"agent_progress"}}"#)
                .source
                .record,
            "progress/agent_progress"
        );
        assert_eq!(
            one(r#"{"type":"attachment","uuid":"x","attachment":{"type":"file"}}"#)
                .source
                .record,
            "attachment/file"
        );
    }

    #[test]
    fn ids_without_uuid_use_the_offset() {
        let first = r#"{"type":"summary","summary":"a","leafUuid":"l"}"#;
        let evs = run(&[first, r#"{"type":"future-thing","x":1}"#]);
        assert_eq!(evs[0].event_id, "s1:0");
        assert_eq!(evs[1].event_id, format!("s1:{}", first.len() + 1));
        assert_eq!(&*evs[0].session_id, "s1");
    }

    #[test]
    fn unknown_record_types_are_raw_whatever_their_fields() {
        for line in [
            r#"{"type":"future-thing","x":1}"#,
            r#"{"type":"future-thing","uuid":5,"message":null,"isMeta":"yes"}"#,
            r#"{"no_type":true}"#,
        ] {
            let ev = one(line);
            match &ev.payload {
                Payload::ProviderRaw { record } => assert_eq!(record.get(), line),
                p => panic!("{p:?}"),
            }
        }
    }

    #[test]
    fn poisoned_lines_are_malformed_and_emit_nothing() {
        let wrong = [
            r#"{"type":"user","uuid":"u","message":null}"#,
            r#"{"type":"user","uuid":"u"}"#,
            r#"{"type":"user","uuid":"u","message":{"content":5}}"#,
            r#"{"type":"user","uuid":"u","message":{"content":null}}"#,
            r#"{"type":"user","uuid":"u","message":{"content":[5]}}"#,
            r#"{"type":"user","uuid":"u","message":{"content":[{"type":"text"}]}}"#,
            r#"{"type":"user","uuid":"u","message":{"content":[{"type":"text","text":1}]}}"#,
            r#"{"type":"user","uuid":"u","message":{"content":[{"type":"tool_result","content":"x"}]}}"#,
            r#"{"type":"user","uuid":"u","isMeta":"yes","message":{"content":"x"}}"#,
            r#"{"type":"user","uuid":7,"message":{"content":"x"}}"#,
            r#"{"type":"assistant","uuid":"a","message":{"model":1,"content":[]}}"#,
            r#"{"type":"assistant","uuid":"a","message":{"content":[{"type":"tool_use","name":"Bash"}]}}"#,
            r#"{"type":"assistant","uuid":"a","message":{"content":[{"type":"ok","text":"fine"},{"type":"thinking","thinking":[]}]}}"#,
            r#"{"type":"system","uuid":"s","content":5}"#,
            r#"{"type":"ai-title","aiTitle":5}"#,
            r#"{"type":"ai-title"}"#,
            r#"{"type":"progress","data":"x"}"#,
            r#"{"type":5}"#,
            r#"[1,2]"#,
            r#""user""#,
        ];
        for line in wrong {
            let (evs, results) = run_ctx(main_ctx(), &[line]);
            assert!(
                matches!(results[0], Err(Malformed::WrongShape(_))),
                "{line}: {:?}",
                results[0]
            );
            assert!(evs.is_empty(), "{line}");
        }
        let (evs, results) = run_ctx(main_ctx(), &["{\"type\":\"user\"", "not json"]);
        assert!(evs.is_empty());
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(Malformed::NotJson(_)))));
        let mut p = ClaudeParser::new(main_ctx());
        assert_eq!(
            p.record(0, b"{\"type\":\"\xff\"}", &mut |_| {}),
            Err(Malformed::InvalidUtf8)
        );
    }

    /// (text, copied) of the human messages of `lines` in a transcript of
    /// session [`UUID`].
    fn copied_humans(lines: &[String]) -> Vec<(String, bool)> {
        let ctx = FileCtx {
            session_hint: UUID.into(),
            ..main_ctx()
        };
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (evs, res) = run_ctx(ctx, &refs);
        assert!(res.iter().all(Result::is_ok), "{res:?}");
        evs.iter()
            .filter(|e| e.is_human_message())
            .map(|e| match &e.payload {
                Payload::UserMessage { text, .. } => (text.clone(), e.copied),
                _ => unreachable!(),
            })
            .collect()
    }

    /// A main-transcript record of session `sess` at second `s` and milli `ms`.
    fn rec(
        ty: &str,
        uuid: &str,
        parent: &str,
        sess: &str,
        s: u32,
        ms: u32,
        content: &str,
    ) -> String {
        format!(
            r#"{{"type":"{ty}","uuid":"{uuid}","parentUuid":{parent},"sessionId":"{sess}","timestamp":"2026-01-01T00:00:{s:02}.{ms:03}Z","message":{{"role":"{ty}","content":{content}}}}}"#
        )
    }

    #[test]
    fn a_rewritten_batch_with_one_timestamp_is_copied_history() {
        let text = |t: &str| serde_json::to_string(t).unwrap();
        let reply = r#"[{"type":"text","text":"ok"}]"#;
        let lines = [
            rec("user", "u1", "null", UUID, 1, 0, &text("::capture /x/a.md")),
            rec("assistant", "a1", "\"u1\"", UUID, 2, 0, reply),
            // Resumed: the chain again, new uuids, one timestamp.
            r#"{"type":"summary","summary":"t","leafUuid":"a1"}"#.to_owned(),
            rec(
                "user",
                "c1",
                "null",
                UUID,
                9,
                500,
                &text("::capture /x/a.md"),
            ),
            rec("assistant", "c2", "\"c1\"", UUID, 9, 500, reply),
            rec("user", "c3", "\"c2\"", UUID, 9, 500, &text("::stop")),
            rec("assistant", "c4", "\"c3\"", UUID, 9, 500, reply),
            // The message typed on resuming, 3 ms later.
            rec("user", "n1", "\"c4\"", UUID, 9, 503, &text("::record")),
        ];
        assert_eq!(
            copied_humans(&lines),
            [
                ("::capture /x/a.md".into(), false),
                ("::capture /x/a.md".into(), true),
                ("::stop".into(), true),
                ("::record".into(), false),
            ]
        );
    }

    #[test]
    fn records_of_another_session_are_copied_history() {
        let text = serde_json::to_string("::capture /x/a.md").unwrap();
        let other = "11111111-2222-4333-8444-555555555555";
        let lines = [
            rec("user", "u1", "null", other, 1, 0, &text),
            rec("user", "u2", "\"u1\"", UUID, 5, 0, &text),
        ];
        assert_eq!(
            copied_humans(&lines),
            [
                (text.trim_matches('"').into(), true),
                (text.trim_matches('"').into(), false)
            ]
        );
        // Subagent files carry their parent's id: not copies.
        let ctx = FileCtx {
            session_hint: UUID.into(),
            subagent: Some(Subagent {
                id: Some("a".into()),
                label: None,
            }),
            ..main_ctx()
        };
        let (evs, _) = run_ctx(ctx, &[&rec("user", "u1", "null", other, 1, 0, &text)]);
        assert!(evs.iter().all(|e| !e.copied));
    }

    #[test]
    fn same_time_tool_results_and_wrappers_stay_what_they_are() {
        let result =
            |id: &str| format!(r#"[{{"type":"tool_result","tool_use_id":"{id}","content":"x"}}]"#);
        let lines = [
            rec("user", "u1", "null", UUID, 1, 0, "\"hello\""),
            rec("user", "r1", "\"u1\"", UUID, 2, 0, &result("t1")),
            rec("user", "r2", "\"r1\"", UUID, 2, 0, &result("t2")),
            rec("user", "u2", "\"r2\"", UUID, 7, 0, "\"next\""),
        ];
        let ctx = FileCtx {
            session_hint: UUID.into(),
            ..main_ctx()
        };
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (evs, _) = run_ctx(ctx, &refs);
        assert!(evs.iter().all(|e| !e.copied), "{evs:?}");
    }

    #[test]
    fn a_malformed_line_leaves_the_state_alone() {
        let mut p = ClaudeParser::new(main_ctx());
        let line = r#"{"type":"assistant","uuid":"a","message":{"content":[{"type":"tool_use","id":"toolu_q","name":"AskUserQuestion","input":{}},{"type":"text"}]}}"#;
        assert!(p
            .record(0, line.as_bytes(), &mut |_| panic!("no events"))
            .is_err());
        assert_eq!(p.state(), serde_json::json!({}));
    }

    #[test]
    fn reparse_gives_identical_events() {
        let lines = [
            user_line(r#""hi""#, ""),
            assistant_line(
                r#"[{"type":"text","text":"a"},{"type":"text","text":"b"}]"#,
                "",
            ),
            r#"{"type":"summary","summary":"a","leafUuid":"l"}"#.to_owned(),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let a = serde_json::to_string(&run(&refs)).unwrap();
        let b = serde_json::to_string(&run(&refs)).unwrap();
        assert_eq!(a, b);
    }

    /// Events (as JSON) and per-line results of `lines` read with the fast
    /// path (`record`) or only the general way.
    fn both_ways(lines: &[&str]) -> [(Vec<String>, Vec<String>); 2] {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        read_both_ways(&lines)
    }

    fn fast(line: &str) -> bool {
        serde_json::from_str::<FastEnvelope>(line)
            .ok()
            .and_then(FastEnvelope::split)
            .is_some()
    }

    #[test]
    fn the_fast_path_reads_what_the_general_path_reads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude");
        let mut files = vec![dir.join("poisoned.jsonl")];
        let mut stack = vec![dir.join("projects")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "jsonl") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() >= 5);
        let mut taken = 0;
        for f in files {
            // Lines that are not UTF-8 never reach either path.
            let bytes = std::fs::read(&f).unwrap();
            let lines: Vec<&str> = bytes
                .split(|b| *b == b'\n')
                .filter_map(|l| std::str::from_utf8(l).ok())
                .filter(|l| !l.is_empty())
                .collect();
            taken += lines.iter().filter(|l| fast(l)).count();
            let [a, b] = both_ways(&lines);
            assert_eq!(a, b, "{}", f.display());
        }
        assert!(taken > 10, "{taken}");
        // Shapes at the edges of the fast path.
        let edge = [
            // Taken.
            r#"{"type":"user","uuid":"u1","sessionId":"s","message":{"role":"user","content":"hi \u00e9"}}"#,
            r#"{"type":"assistant","uuid":"a1","message":{"model":"m","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"x"},{"type":"tool_use","id":"c","name":"Bash","input":{"command":"ls"}}]},"toolUseResult":{"a":[1,2]}}"#,
            r#"{"type":"user","uuid":"u2","message":["m",[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"o"},{"type":"mystery"}]}]]}"#,
            r#"{"type":"user","uuid":"u7","message":{"content":[{"type":"text","text":"see"},{"type":"image","source":{}}]}}"#,
            // Left: blocks shown as written (an unknown type, thinking from
            // the user, an image from the assistant), a known block without
            // its required field, an element that is no block; null,
            // missing or wrong-shaped message; another type; a duplicate
            // key; a bad block; not an object; not JSON.
            r#"{"type":"assistant","uuid":"a5","message":{"model":"m","content":[{"type":"text","text":"x"},{"type":"mystery","z":1}]}}"#,
            r#"{"type":"user","uuid":"u8","message":{"content":[{"type":"thinking","thinking":"t"}]}}"#,
            r#"{"type":"assistant","uuid":"a6","message":{"content":[{"type":"image","source":{}}]}}"#,
            r#"{"type":"assistant","uuid":"a4","message":{"content":[{"type":"text"}]}}"#,
            r#"{"type":"assistant","uuid":"a7","message":{"content":[{"type":"text","text":"x"},7]}}"#,
            r#"{"type":"user","uuid":"u3","message":null}"#,
            r#"{"type":"assistant","uuid":"a2"}"#,
            r#"{"type":"assistant","uuid":"a3","message":{"content":7}}"#,
            r#"{"type":"user","uuid":"u4","message":"text"}"#,
            r#"{"type":"system","subtype":"informational","content":"c","message":{"content":"x"}}"#,
            r#"{"type":"user","type":"user","message":{"content":"x"}}"#,
            r#"{"type":"user","uuid":"u5","message":{"content":"x","content":"y"}}"#,
            r#"{"type":"user","uuid":"u6","isMeta":"yes","message":{"content":"x"}}"#,
            r#"{"type":"brand-new","message":{"content":"x"}}"#,
            r#"["user"]"#,
            r#"{"type":"user","message":{"content":"x"}"#,
        ];
        let taken: Vec<bool> = edge.iter().map(|l| fast(l)).collect();
        assert_eq!(&taken[..4], &[true; 4]);
        assert!(taken[4..].iter().all(|t| !t), "{taken:?}");
        for line in edge {
            let [a, b] = both_ways(&[line]);
            assert_eq!(a, b, "{line}");
        }
        let [a, b] = both_ways(&edge);
        assert_eq!(a, b);
    }
}
