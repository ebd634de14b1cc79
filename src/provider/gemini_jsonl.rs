//! Gemini CLI, as the one `gemini` provider: the JSON Lines chats it has
//! written since 0.39 (`~/.gemini/tmp/<project>/chats/session-*.jsonl`),
//! and through [`super::gemini`] the JSON documents before them.
//!
//! One provider for both shapes, not two: they sit under the same root,
//! belong to the same sessions (a `.json` chat resumed by a newer CLI is
//! copied into a `.jsonl` of the same `sessionId`, so both files group into
//! one session and its export drops the copies by event id), and a user
//! who turns `gemini` off means all of it. Each file says its shape by its
//! tag ([`FileCtx::file_tag`]): a chat read as JSON Lines is tagged
//! `<stem>.jsonl`, a document by its bare stem, so the two files of one
//! migrated session never share an event id.
//!
//! File layout (as for documents): `<project>/chats/session-<UTC
//! time>-<first 8 hex of sessionId>.jsonl` is a main session,
//! `<project>/chats/<parent session uuid>/<id>.jsonl` a subagent chat. The
//! project directory is the text of `<project>/.project_root`
//! ([`Provider::project_marker`]), never decoded from the directory name;
//! `~/.gemini/projects.json` lies beside the agent's credentials, outside
//! the root, and is not read.
//!
//! Records, one a line, told apart as the CLI's own loader does:
//!
//! * `{"$rewindTo": id}` drops that message and every later one (an id
//!   not in the chat drops all of them);
//! * a record with a string `id` is a message, with the fields of a
//!   document's message; the same id written again is that message
//!   updated (tool calls, results, tokens added): the last version wins,
//!   at the first one's place;
//! * `{"$set": {…}}` patches the session's metadata; a `messages` array
//!   in it is a checkpoint that replaces the whole history (written after
//!   a compression, a cancelled request rolled back, or at start-up with
//!   the CLI's environment context);
//! * a record with string `sessionId` and `projectHash` is the metadata
//!   line (the first line; a one-line legacy record may carry `messages`).
//!
//! Mapping to events:
//!
//! * metadata line → `provider.info` `session_meta` (`<tag>:<offset>`),
//!   timed by `startTime`; `sessionId` is the session id (in a subagent
//!   chat, the subagent's id), `kind: "subagent"` marks subagent work;
//! * a message → the events a document's message maps to
//!   (`super::gemini::map_message_alone`: event ids are message ids, so
//!   a document and its JSON Lines copy agree), plus `provider.info`
//!   `token_count` (`<id>#tokens`) for a `gemini` message's `tokens`.
//!   Then, for user-role text this file says more about: a `user` record
//!   holding tool responses is model input, text opening with
//!   `<session_context>` or `<hook_context>` (the CLI's own markers of
//!   what it injects) is injected context, and a `<hook_context>` block
//!   after the typed words is split off (`<id>#hook-context`). Tool
//!   responses that repeat a result already delivered inline with its
//!   call (same call id, same output) are not delivered twice;
//! * a message updated again → only its events not delivered yet;
//! * `$rewindTo` → `provider.info` `rewind` (`<tag>:<offset>`, the
//!   withdrawn message ids this parser still remembers) and a notice
//!   (`<tag>:<offset>#1`);
//! * checkpoint → `provider.info` `checkpoint` (`<tag>:<offset>`, its
//!   message count and the withdrawn ids), a notice when messages were
//!   withdrawn (`#1`), then its messages: those already delivered add
//!   nothing (the checkpoint holds the model-facing form of what was
//!   recorded: masked outputs, raw parts), new ones are mapped with their
//!   user-role text never the human's (a compression summary is
//!   `compaction`, environment or hook text injected context);
//! * other `$set` keys → `provider.info` `session_meta` (`<tag>:<offset>`),
//!   timed by its `lastUpdated`; a patch of `lastUpdated` alone maps to
//!   nothing (every message is followed by one);
//! * anything else that is JSON → `provider.raw` (`<tag>:<offset>`).
//!
//! Nothing is taken back. Events already delivered (to a live recording,
//! an export) stay; a rewind or a checkpoint withdraws them by saying so
//! after them, and the JSONL output keeps both, as the file does. So a
//! live recording and a later export of the same file read the same.
//!
//! Copies: a chat that begins with history (a `.json` chat resumed by a
//! newer CLI and copied here, or a file the CLI rewrote) has a metadata
//! line whose `lastUpdated` is later than its `startTime`; messages no
//! newer than that `lastUpdated` were written before this file began and
//! are marked [`Event::copied`], so a command in them never runs again.
//!
//! Memory: the parser remembers the last [`WINDOW`] messages (id, event
//! ids delivered) and the last [`RESULTS`] tool results, persisted with
//! the cursor, plus hashes of every event id delivered by this parser
//! instance (not persisted). After a restore a message older than the
//! window that comes again delivers its events again; the daemon drops
//! them by event id.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::gemini::{self, map_known_alone, map_message_alone, Gemini};
use crate::event::raw_copy;
use crate::event::{raw_from_str, Event, Payload, ProviderId, Source, Subagent, SystemCategory};
use crate::json_str;
use crate::provider::{
    first_line_object, offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

const ID: ProviderId = ProviderId::Gemini;

/// Messages remembered for updates, rewinds and checkpoints.
pub const WINDOW: usize = 64;

/// Tool results remembered to recognise their repeats as tool responses.
pub const RESULTS: usize = 64;

/// Ending of the tag of a chat read as JSON Lines.
const JSONL_TAG: &str = ".jsonl";

/// Label of subagent work (as in documents).
const SUBAGENT_LABEL: &str = "subagent";

/// Markers the CLI opens its own injected user-role text with.
const SESSION_CONTEXT: &str = "<session_context>";
const HOOK_CONTEXT: &str = "<hook_context>";

/// The CLI's compression summary.
const STATE_SNAPSHOT: &str = "<state_snapshot>";

/// The `gemini` provider: JSON Lines chats here, documents in
/// [`super::gemini`].
pub struct GeminiCli;

impl Provider for GeminiCli {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        Gemini.default_roots(home)
    }

    /// The current shape; [`Provider::file_source_kind`] decides per file.
    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    fn file_source_kind(&self, ctx: &FileCtx) -> SourceKind {
        if is_jsonl(ctx) {
            SourceKind::Jsonl
        } else {
            Gemini.source_kind()
        }
    }

    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.extension()? == "jsonl" {
            classify_jsonl(rel)
        } else {
            Gemini.classify(rel)
        }
    }

    /// A file named directly is a document when its name ends in `.json`,
    /// JSON Lines otherwise.
    fn named_file(&self, path: &Path) -> FileCtx {
        if path.extension().is_some_and(|e| e == "json") {
            return Gemini.named_file(path);
        }
        classify_jsonl(path).unwrap_or_else(|| FileCtx {
            provider: ID,
            file_tag: format!("{}{JSONL_TAG}", stem(path)),
            session_hint: stem(path),
            subagent: None,
        })
    }

    fn project_marker(&self, path: &Path) -> Option<PathBuf> {
        let mut dir = path.parent()?;
        if dir.file_name()? != "chats" {
            dir = dir.parent()?;
        }
        (dir.file_name()? == "chats").then(|| dir.parent().map(|p| p.join(".project_root")))?
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        if is_jsonl(ctx) {
            Box::new(JsonlParser::new(ctx))
        } else {
            Gemini.parser(ctx)
        }
    }

    /// A metadata first line (`sessionId` and `projectHash`, no messages),
    /// else what a document's sniff says.
    fn sniff(&self, head: &[u8]) -> Sniff {
        match first_line_object(head) {
            Some(o)
                if o.get("sessionId").is_some_and(|v| v.is_string())
                    && o.get("projectHash").is_some_and(|v| v.is_string())
                    && !o.contains_key("messages") =>
            {
                Sniff::Exact
            }
            _ => Gemini.sniff(head),
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Gemini CLI: JSON Lines chats (0.39 and later) and the JSON chat \
                          documents before them.",
            env_override: Some("GEMINI_CLI_HOME"),
        }
    }
}

/// The shape a file is read as, from its tag.
fn is_jsonl(ctx: &FileCtx) -> bool {
    ctx.file_tag.ends_with(JSONL_TAG)
}

/// `…/chats/session-*.jsonl` is a main session, `…/chats/<uuid>/*.jsonl`
/// a subagent chat; only trailing components are looked at.
fn classify_jsonl(rel: &Path) -> Option<FileCtx> {
    if rel.extension()? != "jsonl" {
        return None;
    }
    let name = stem(rel);
    let file_tag = format!("{name}{JSONL_TAG}");
    let parent = rel.parent()?;
    let parent_name = parent.file_name()?.to_str()?;
    if parent_name == "chats" {
        let rest = name.strip_prefix("session-")?;
        // The name ends in the first 8 hex digits of the session id.
        let hint = rest
            .rsplit('-')
            .next()
            .filter(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .map_or_else(|| name.clone(), str::to_owned);
        return Some(FileCtx {
            provider: ID,
            file_tag,
            session_hint: hint,
            subagent: None,
        });
    }
    let grandparent = parent.parent()?.file_name()?;
    (grandparent == "chats" && gemini::is_uuid(parent_name)).then(|| FileCtx {
        provider: ID,
        subagent: Some(Subagent {
            id: Some(name),
            label: Some(SUBAGENT_LABEL.to_owned()),
        }),
        file_tag,
        session_hint: parent_name.to_owned(),
    })
}

/// One remembered message: its id and the event ids delivered for it
/// (as suffixes of the message id when they start with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Recent {
    id: String,
    events: Vec<String>,
}

/// What the parser carries from one record to the next, persisted with
/// the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// `sessionId` of the metadata line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    /// Subagent marking decided by the metadata line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subagent: Option<Subagent>,
    /// Whether a `user` message has been seen (a subagent's first one is
    /// its prompt).
    #[serde(default)]
    users: bool,
    /// Messages no newer than this were written before the file began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    copies_until: Option<String>,
    /// The last messages, in conversation order.
    #[serde(default)]
    recent: VecDeque<Recent>,
    /// The last tool results delivered with their calls: call id and a
    /// hash of the output.
    #[serde(default)]
    results: VecDeque<(String, u64)>,
}

/// One line, read in one pass: the fields that decide what it is, and
/// those of a message record. `T` and `C` are how a message's thoughts and
/// tool calls are read: typed as the shared mapping reads them (the fast
/// path, [`Typed`]) or skipped (the general path, [`Untyped`], which
/// hands the record to [`map_message_alone`]). One definition of the wire
/// shape for both; `both_ways_agree` and the `gemini_jsonl` fuzz target
/// check that the two paths deliver the same events.
#[derive(Deserialize)]
struct Line<'a, T, C> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(rename = "$rewindTo", default, borrow)]
    rewind_to: Option<&'a RawValue>,
    #[serde(rename = "$set", default, borrow)]
    set: Option<&'a RawValue>,
    #[serde(rename = "sessionId", default, borrow)]
    session_id: Option<&'a RawValue>,
    #[serde(rename = "projectHash", default, borrow)]
    project_hash: Option<&'a RawValue>,
    #[serde(rename = "startTime", default, borrow)]
    start_time: Option<&'a RawValue>,
    #[serde(rename = "lastUpdated", default, borrow)]
    last_updated: Option<&'a RawValue>,
    #[serde(default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    messages: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow)]
    message_type: Option<&'a RawValue>,
    #[serde(default, borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tokens: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(rename = "displayContent", default, borrow)]
    display_content: Option<&'a RawValue>,
    #[serde(default)]
    thoughts: Option<T>,
    #[serde(rename = "toolCalls", default)]
    tool_calls: Option<C>,
}

/// The fast path's reading of a line.
type Typed<'a> =
    Line<'a, Vec<gemini::Thought<'a>>, Vec<gemini::ToolCall<'a, Vec<gemini::ReadPart>>>>;

/// The general path's reading of a line (or of a checkpoint's message).
type Untyped<'a> = Line<'a, IgnoredAny, IgnoredAny>;

impl<'a> Typed<'a> {
    /// The message as the shared mapping reads it; `None` when its model
    /// is neither a string nor null (the mapping would refuse it; the
    /// general path then maps the record).
    fn message(self) -> Option<gemini::Message<'a>> {
        let model = match self.model {
            Some(m) if m.get() != "null" => Some(string(Some(m))?),
            _ => None,
        };
        Some(gemini::Message {
            content: self.content,
            display_content: self.display_content,
            model,
            thoughts: self.thoughts,
            tool_calls: self.tool_calls.map(|calls| {
                calls
                    .into_iter()
                    .map(gemini::ToolCall::into_mapped)
                    .collect()
            }),
        })
    }
}

/// A message record, read one way or the other.
struct Record<'a> {
    id: String,
    kind: Option<String>,
    timestamp: Option<String>,
    tokens: Option<&'a RawValue>,
    model: Option<String>,
    /// The fields the shared mapping reads, when the fast path has them.
    typed: Option<gemini::Message<'a>>,
    /// The record's JSON text, for the general path.
    text: &'a str,
}

impl<'a> Record<'a> {
    /// The record of a line with a string `id`.
    fn of<T, C>(line: &Line<'a, T, C>, text: &'a str) -> Option<Record<'a>> {
        Some(Record {
            id: string(line.id)?,
            kind: string(line.message_type),
            timestamp: string(line.timestamp),
            tokens: line.tokens,
            model: string(line.model).filter(|m| !m.is_empty()),
            typed: None,
            text,
        })
    }

    /// The record of a line the fast path read.
    fn typed(line: Typed<'a>, text: &'a str) -> Option<Record<'a>> {
        let mut r = Record::of(&line, text)?;
        r.typed = line.message();
        Some(r)
    }
}

/// How an event id is remembered for message `id`: the rest after the
/// message id when it starts with it, else whole.
fn suffix(id: &str, event_id: &str) -> String {
    event_id.strip_prefix(id).unwrap_or(event_id).to_owned()
}

/// A JSON string's text; `None` for any other value.
pub(super) fn string(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?.get().trim();
    json_str::decode_literal(raw).ok().map(|s| s.into_owned())
}

/// Whether `raw` is a JSON object.
fn is_object(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(|r| r.get().trim_start().starts_with('{'))
}

/// A 64-bit hash of `s`, eight bytes a step (the multiply-rotate of
/// rustc's FxHash): for recognising event ids and tool outputs seen
/// before, not for anything an adversary could profit from colliding (a
/// collision drops one repeated-looking event from a display). Written
/// out here so that persisted values never change with the toolchain.
fn hash_of(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut words = bytes.chunks_exact(8);
    let mut h = step(0, bytes.len() as u64);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = step(h, u64::from_le_bytes(b));
    }
    let mut b = [0u8; 8];
    b[..words.remainder().len()].copy_from_slice(words.remainder());
    step(h, u64::from_le_bytes(b))
}

/// One step of [`hash_of`]: eight more bytes, little-endian, into `h`.
fn step(h: u64, w: u64) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    (h.rotate_left(5) ^ w).wrapping_mul(K)
}

/// [`hash_of`] of the parts joined, without joining them.
fn hash_of_parts(parts: &[&str]) -> u64 {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut h = step(0, len as u64);
    let (mut b, mut n) = ([0u8; 8], 0);
    for &byte in parts.iter().flat_map(|p| p.as_bytes()) {
        b[n] = byte;
        n += 1;
        if n == 8 {
            h = step(h, u64::from_le_bytes(b));
            n = 0;
        }
    }
    b[n..].fill(0);
    step(h, u64::from_le_bytes(b))
}

/// Where a message comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Appended (or on a legacy metadata line).
    Appended,
    /// Inside a `$set.messages` checkpoint.
    Checkpoint,
}

struct JsonlParser {
    ctx: FileCtx,
    st: State,
    /// Hashes of every event id (and, marked, message id) delivered by
    /// this instance: exact for a whole read, the window after a restore.
    seen: HashSet<u64>,
    /// Whether lines are read on the fast path (always, but in the tests
    /// that compare the two paths).
    fast: bool,
}

impl JsonlParser {
    fn new(ctx: &FileCtx) -> JsonlParser {
        JsonlParser {
            ctx: ctx.clone(),
            st: State::default(),
            seen: HashSet::new(),
            fast: true,
        }
    }

    fn session_id(&self) -> String {
        self.st
            .session
            .clone()
            .unwrap_or_else(|| self.ctx.session_hint.clone())
    }

    /// In a subagent chat the session is the parent's (from the path).
    fn session_for_events(&self) -> String {
        if self.ctx.subagent.is_some() {
            self.ctx.session_hint.clone()
        } else {
            self.session_id()
        }
    }

    fn subagent(&self) -> Option<Subagent> {
        self.st
            .subagent
            .clone()
            .or_else(|| self.ctx.subagent.clone())
    }

    /// An event of this file that is not a message's.
    fn event(&self, offset: u64, n: u32, record: &'static str, payload: Payload) -> Event {
        let source = Source {
            record: record.into(),
            offset,
            file: Some(self.ctx.file_tag.as_str().into()),
        };
        let id = offset_id(&self.ctx.file_tag, offset, n);
        let mut ev = Event::new(ID, self.session_for_events(), id, source, payload);
        ev.subagent = self.subagent();
        ev
    }

    fn message_key(id: &str) -> u64 {
        hash_of_parts(&["\0message\0", id])
    }

    fn is_known(&self, id: &str) -> bool {
        self.seen.contains(&Self::message_key(id))
    }

    /// Rebuild the hashes from the persisted window.
    fn reseed(&mut self) {
        self.seen.clear();
        for m in &self.st.recent {
            self.seen.insert(Self::message_key(&m.id));
            for e in &m.events {
                let full = if e.is_empty() || e.starts_with('#') {
                    format!("{}{e}", m.id)
                } else {
                    e.clone()
                };
                self.seen.insert(hash_of(&full));
            }
        }
    }

    fn metadata<T, C>(
        &mut self,
        offset: u64,
        text: &str,
        line: &Line<'_, T, C>,
        out: &mut dyn FnMut(Event),
    ) {
        let session = string(line.session_id);
        if self.st.session.is_none() {
            self.st.session.clone_from(&session);
        }
        let is_subagent = string(line.kind).as_deref() == Some(SUBAGENT_LABEL);
        if self.st.subagent.is_none() && (is_subagent || self.ctx.subagent.is_some()) {
            let path_id = self.ctx.subagent.as_ref().and_then(|s| s.id.clone());
            self.st.subagent = Some(Subagent {
                id: session.or(path_id),
                label: Some(SUBAGENT_LABEL.to_owned()),
            });
        }
        let (start, last) = (string(line.start_time), string(line.last_updated));
        if let (Some(s), Some(l)) = (&start, &last) {
            if l > s && self.st.copies_until.is_none() {
                self.st.copies_until = Some(l.clone());
            }
        }
        let data = match line.messages {
            None => raw_from_str(text),
            Some(_) => without_messages(text),
        };
        let payload = Payload::ProviderInfo {
            topic: "session_meta".into(),
            data,
        };
        let mut ev = self.event(offset, 0, "session", payload);
        ev.timestamp = start.map(Into::into);
        out(ev);
        // A one-line legacy record: its messages as if appended.
        if let Some(list) = line.messages.and_then(message_list) {
            for raw in list {
                self.listed_message(offset, raw, Origin::Appended, out);
            }
        }
    }

    /// A message inside another record (a checkpoint, a legacy metadata
    /// line).
    fn listed_message(
        &mut self,
        offset: u64,
        raw: &RawValue,
        origin: Origin,
        out: &mut dyn FnMut(Event),
    ) {
        if let Some(rec) = record_of(raw.get(), self.fast) {
            self.message(offset, rec, origin, out);
        }
    }

    /// The events the shared mapping makes of a record: from the fields
    /// the fast path read, else from its JSON. A message written again
    /// (`known`) does not have its delivered model events built again.
    fn map(
        &self,
        rec: &Record<'_>,
        typed: Option<gemini::Message<'_>>,
        first_user: bool,
        known: bool,
    ) -> Option<Vec<Event>> {
        let tag = &self.ctx.file_tag;
        if let (Some(m), Some(kind)) = (typed, rec.kind.as_deref()) {
            let delivered = |event_id: &str| self.seen.contains(&hash_of(event_id));
            let known = map_known_alone(
                tag,
                self.session_for_events(),
                self.subagent(),
                first_user,
                (&rec.id, kind),
                m,
                known.then_some(&delivered as &dyn Fn(&str) -> bool),
            );
            if known.is_some() {
                return known;
            }
        }
        let raw = serde_json::from_str::<&RawValue>(rec.text).ok()?;
        Some(map_message_alone(
            tag,
            self.session_for_events(),
            self.subagent(),
            first_user,
            raw,
        ))
    }

    // Long because: the steps of one message (map, classify, mark, dedupe,
    // remember) read best in order.
    fn message(
        &mut self,
        offset: u64,
        mut rec: Record<'_>,
        origin: Origin,
        out: &mut dyn FnMut(Event),
    ) {
        let typed = rec.typed.take();
        let id = rec.id.as_str();
        let known = self.is_known(id);
        if origin == Origin::Checkpoint && known {
            self.remember(id, Vec::new());
            return;
        }
        let Some(mut events) = self.map(&rec, typed, !self.st.users, known) else {
            return;
        };
        let kind = rec.kind.as_deref();
        if kind == Some("user") {
            self.st.users = true;
            classify_user(id, &mut events, origin);
        }
        if kind == Some("gemini")
            && is_object(rec.tokens)
            && !(known && self.seen.contains(&hash_of_parts(&[id, "#tokens"])))
        {
            events.push(self.tokens_event(id, rec.tokens, rec.model.clone()));
        }
        let copied = match (&self.st.copies_until, &rec.timestamp) {
            (Some(until), Some(ts)) => ts <= until,
            _ => false,
        };
        let mut delivered = Vec::new();
        for mut ev in events {
            ev.source.offset = offset;
            ev.copied |= copied;
            if ev.timestamp.is_none() {
                ev.timestamp = rec.timestamp.as_deref().map(Into::into);
            }
            let key = hash_of(&ev.event_id);
            if self.seen.contains(&key) || self.is_repeat(&ev) {
                continue;
            }
            self.note_result(&ev);
            self.seen.insert(key);
            delivered.push(suffix(id, &ev.event_id));
            out(ev);
        }
        self.seen.insert(Self::message_key(id));
        if !known {
            // Not in the window, which only holds known messages.
            self.remember_new(id, delivered);
        } else if let Some(m) = self.st.recent.iter_mut().find(|m| m.id == id) {
            m.events.extend(delivered);
        }
    }

    fn tokens_event(&self, id: &str, tokens: Option<&RawValue>, model: Option<String>) -> Event {
        let data = tokens.map_or_else(|| raw_from_str("{}"), raw_copy);
        let source = Source {
            record: "gemini".into(),
            offset: 0,
            file: Some(self.ctx.file_tag.as_str().into()),
        };
        let payload = Payload::ProviderInfo {
            topic: "token_count".into(),
            data,
        };
        let mut ev = Event::new(
            ID,
            self.session_for_events(),
            [id, "#tokens"].concat(),
            source,
            payload,
        );
        ev.subagent = self.subagent();
        ev.model = model.map(Into::into);
        ev
    }

    /// A tool response in a `user` record that repeats a result already
    /// delivered with its call.
    fn is_repeat(&self, ev: &Event) -> bool {
        let Payload::ToolResult {
            tool_call_id,
            output,
            ..
        } = &ev.payload
        else {
            return false;
        };
        ev.event_id.contains("#response-") && {
            let h = hash_of(output);
            self.st
                .results
                .iter()
                .any(|(id, oh)| id == tool_call_id && *oh == h)
        }
    }

    fn note_result(&mut self, ev: &Event) {
        if let Payload::ToolResult {
            tool_call_id,
            output,
            ..
        } = &ev.payload
        {
            if ev.event_id.contains("#result-") {
                if self.st.results.len() == RESULTS {
                    self.st.results.pop_front();
                }
                self.st
                    .results
                    .push_back((tool_call_id.clone(), hash_of(output)));
            }
        }
    }

    /// Record the event ids delivered for message `id` (as [`suffix`]
    /// gives them), placing it at the end of the window when it is new
    /// there.
    fn remember(&mut self, id: &str, delivered: Vec<String>) {
        if let Some(m) = self.st.recent.iter_mut().find(|m| m.id == id) {
            m.events.extend(delivered);
            return;
        }
        self.remember_new(id, delivered);
    }

    /// [`Self::remember`] for a message the window does not hold.
    fn remember_new(&mut self, id: &str, delivered: Vec<String>) {
        if self.st.recent.len() == WINDOW {
            self.st.recent.pop_front();
        }
        self.st.recent.push_back(Recent {
            id: id.to_owned(),
            events: delivered,
        });
    }

    fn rewind(&mut self, offset: u64, target: &str, out: &mut dyn FnMut(Event)) {
        let at = self.st.recent.iter().position(|m| m.id == target);
        let withdrawn: Vec<String> = self
            .st
            .recent
            .drain(at.unwrap_or(0)..)
            .map(|m| m.id)
            .collect();
        let text = match (at, self.is_known(target)) {
            (Some(_), _) => format!(
                "Rewound to before message `{target}`: the agent withdrew the last {} \
                 message(s) above.",
                withdrawn.len()
            ),
            (None, true) => format!(
                "Rewound to before message `{target}`: the agent withdrew it and every \
                 message after it above."
            ),
            (None, false) => format!(
                "Rewound to message `{target}`, which this chat does not hold: the agent \
                 withdrew the whole conversation above."
            ),
        };
        let data = serde_json::json!({ "to": target, "withdrawn": withdrawn });
        let info = Payload::ProviderInfo {
            topic: "rewind".into(),
            data: raw_from_str(&data.to_string()),
        };
        out(self.event(offset, 0, "$rewindTo", info));
        let notice = Payload::SystemMessage {
            category: SystemCategory::Notice,
            text,
        };
        out(self.event(offset, 1, "$rewindTo", notice));
    }

    fn set(&mut self, offset: u64, raw: &RawValue, out: &mut dyn FnMut(Event)) {
        let Ok(fields) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
            return;
        };
        let checkpoint = fields.get("messages").and_then(|m| message_list(m));
        let meta: BTreeMap<&String, &&RawValue> = fields
            .iter()
            .filter(|(k, _)| !(k.as_str() == "messages" && checkpoint.is_some()))
            .collect();
        if meta.keys().any(|k| k.as_str() != "lastUpdated") {
            let data = serde_json::to_string(&meta).unwrap_or_else(|_| "{}".into());
            let payload = Payload::ProviderInfo {
                topic: "session_meta".into(),
                data: raw_from_str(&data),
            };
            // After the checkpoint's own two events when there is one.
            let n = if checkpoint.is_some() { 2 } else { 0 };
            let mut ev = self.event(offset, n, "$set", payload);
            ev.timestamp = string(fields.get("lastUpdated").copied()).map(Into::into);
            out(ev);
        }
        if let Some(list) = checkpoint {
            self.checkpoint(offset, &list, out);
        }
    }

    fn checkpoint(&mut self, offset: u64, list: &[&RawValue], out: &mut dyn FnMut(Event)) {
        let ids: Vec<Option<String>> = list.iter().map(|m| message_id(m)).collect();
        let listed: HashSet<&String> = ids.iter().flatten().collect();
        let (kept, gone): (Vec<Recent>, Vec<Recent>) = std::mem::take(&mut self.st.recent)
            .into_iter()
            .partition(|m| listed.contains(&m.id));
        let mut kept: BTreeMap<String, Recent> =
            kept.into_iter().map(|m| (m.id.clone(), m)).collect();
        let withdrawn: Vec<String> = gone.into_iter().map(|m| m.id).collect();
        let data = serde_json::json!({ "messages": list.len(), "withdrawn": withdrawn });
        let info = Payload::ProviderInfo {
            topic: "checkpoint".into(),
            data: raw_from_str(&data.to_string()),
        };
        out(self.event(offset, 0, "$set", info));
        if !withdrawn.is_empty() {
            let text = format!(
                "The agent rewrote its conversation history (after a compression or a \
                 cancelled request): {} recent message(s) above were withdrawn; it now holds \
                 {} message(s).",
                withdrawn.len(),
                list.len()
            );
            let notice = Payload::SystemMessage {
                category: SystemCategory::Notice,
                text,
            };
            out(self.event(offset, 1, "$set", notice));
        }
        // The window follows the checkpoint's order.
        for (raw, id) in list.iter().zip(&ids) {
            if let Some(m) = id.as_ref().and_then(|id| kept.remove(id)) {
                self.remember(&m.id, Vec::new());
                if let Some(r) = self.st.recent.back_mut() {
                    r.events = m.events;
                }
            }
            self.listed_message(offset, raw, Origin::Checkpoint, out);
        }
    }

    /// Read a line on the fast path when it can, else on the general one.
    /// False when it is no record of a known shape.
    fn dispatch(&mut self, offset: u64, text: &str, out: &mut dyn FnMut(Event)) -> bool {
        if self.fast {
            if let Ok(line) = serde_json::from_str::<Typed<'_>>(text) {
                return self.dispatch_line(offset, text, line, Record::typed, out);
            }
        }
        match serde_json::from_str::<Untyped<'_>>(text) {
            Ok(line) => self.dispatch_line(offset, text, line, |l, t| Record::of(&l, t), out),
            Err(_) => false,
        }
    }

    /// What the CLI's own loader makes of a line, in its order.
    fn dispatch_line<'a, T, C>(
        &mut self,
        offset: u64,
        text: &'a str,
        line: Line<'a, T, C>,
        record: impl FnOnce(Line<'a, T, C>, &'a str) -> Option<Record<'a>>,
        out: &mut dyn FnMut(Event),
    ) -> bool {
        if let Some(target) = string(line.rewind_to) {
            self.rewind(offset, &target, out);
        } else if string(line.id).is_some() {
            if let Some(rec) = record(line, text) {
                self.message(offset, rec, Origin::Appended, out);
            }
        } else if let Some(set) = line.set.filter(|s| is_object(Some(s))) {
            self.set(offset, set, out);
        } else if string(line.session_id).is_some() && string(line.project_hash).is_some() {
            self.metadata(offset, text, &line, out);
        } else {
            return false;
        }
        true
    }

    fn raw(&self, offset: u64, text: &str) -> Event {
        let payload = Payload::ProviderRaw {
            record: raw_from_str(text),
        };
        let mut ev = self.event(offset, 0, "unknown", payload);
        ev.timestamp = None;
        ev
    }
}

impl RecordParser for JsonlParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let bytes = text.as_bytes();
        if self.dispatch(offset, text, out) {
            return Ok(());
        }
        // Not a record of a known shape: kept whole when it is JSON.
        serde_json::from_str::<&RawValue>(text)
            .map_err(|e| Malformed::from_json_error(bytes, &e))?;
        out(self.raw(offset, text));
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.st = if state.is_null() {
            State::default()
        } else {
            State::deserialize(state).map_err(|e| Malformed::WrongShape(e.to_string()))?
        };
        self.reseed();
        Ok(())
    }
}

/// The string `id` of a message record.
fn message_id(raw: &RawValue) -> Option<String> {
    let m = serde_json::from_str::<Untyped<'_>>(raw.get()).ok()?;
    string(m.id)
}

/// A message record read from its JSON: on the fast path when `fast` and
/// it can, else on the general one.
fn record_of(text: &str, fast: bool) -> Option<Record<'_>> {
    if fast {
        if let Ok(line) = serde_json::from_str::<Typed<'_>>(text) {
            return Record::typed(line, text);
        }
    }
    let line = serde_json::from_str::<Untyped<'_>>(text).ok()?;
    Record::of(&line, text)
}

/// Events (as JSON) and results of `lines` read twice by fresh parsers of
/// a main chat: on the fast path and on the general path alone
/// ([`super::read_both_ways`]). The two must agree on any input: unit
/// tests and the `gemini_jsonl` fuzz target compare them.
#[doc(hidden)]
pub fn read_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = classify_jsonl(Path::new("p/chats/session-2026-04-25T08-23-e435870b.jsonl"))
        .unwrap_or_else(|| GeminiCli.named_file(Path::new("f.jsonl")));
    super::read_both_ways(
        lines,
        || JsonlParser::new(&ctx),
        |p, offset, bytes, _text, out| {
            p.fast = false;
            p.record(offset, bytes, out)
        },
    )
}

/// The elements of a JSON array; `None` for anything else.
fn message_list(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// A metadata line without its `messages`, as compact JSON.
fn without_messages(text: &str) -> Box<RawValue> {
    match serde_json::from_str::<BTreeMap<String, &RawValue>>(text) {
        Ok(mut fields) => {
            fields.remove("messages");
            raw_from_str(&serde_json::to_string(&fields).unwrap_or_else(|_| "{}".into()))
        }
        Err(_) => raw_from_str("{}"),
    }
}

/// What this file says about user-role text beyond the shared mapping.
fn classify_user(id: &str, events: &mut Vec<Event>, origin: Origin) {
    let responses = events
        .iter()
        .any(|e| matches!(e.payload, Payload::ToolResult { .. }));
    let mut split = None;
    for (i, ev) in events.iter_mut().enumerate() {
        let Payload::UserMessage { text, .. } = &mut ev.payload else {
            continue;
        };
        let opening = text.trim_start();
        let category = if origin == Origin::Checkpoint {
            Some(checkpoint_category(opening))
        } else if responses {
            Some(SystemCategory::ModelInput)
        } else if opening.starts_with(SESSION_CONTEXT) || opening.starts_with(HOOK_CONTEXT) {
            Some(SystemCategory::InjectedContext)
        } else {
            None
        };
        if let Some(category) = category {
            let text = std::mem::take(text);
            ev.payload = Payload::SystemMessage { category, text };
        } else if let Some(at) = text.find(HOOK_CONTEXT) {
            let context = text.split_off(at);
            text.truncate(text.trim_end().len());
            split = Some((i, context));
        }
    }
    if let Some((i, context)) = split {
        let mut ev = events[i].clone();
        ev.event_id = format!("{id}#hook-context");
        ev.payload = Payload::SystemMessage {
            category: SystemCategory::InjectedContext,
            text: context,
        };
        events.insert(i + 1, ev);
    }
}

/// A new user-role message of a checkpoint: never the human's words now.
fn checkpoint_category(opening: &str) -> SystemCategory {
    if opening.starts_with(SESSION_CONTEXT) || opening.starts_with(HOOK_CONTEXT) {
        SystemCategory::InjectedContext
    } else if opening.contains(STATE_SNAPSHOT) {
        SystemCategory::Compaction
    } else {
        SystemCategory::ModelInput
    }
}

#[cfg(test)]
mod tests;
