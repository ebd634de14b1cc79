//! Cline provider: `…/globalStorage/saoudrizwan.claude-dev/tasks/<task id>/
//! api_conversation_history.json`, the same layout of Roo Code
//! (`rooveterinaryinc.roo-cline`, a fork that kept Cline's task store) and
//! of the Cline CLI (`~/.cline/data/tasks/`).
//!
//! One provider for the three, not three: they write the same file in the
//! same shape, and nothing in the file says which wrote it (the root it
//! lies under does). A user who wants one of them off names the roots.
//!
//! Roots are the `tasks/` directories only: `globalStorage/` holds every
//! extension's settings and secrets, and the extension's own directory its
//! MCP settings; neither is read. The task directory also holds
//! `ui_messages.json` (what the editor showed) and `task_metadata.json`
//! (files in context, model usage); they are not sessions and are not
//! read. Only a directory's `api_conversation_history.json` is a session
//! file; its directory name (the task id) is the session id.
//!
//! The file is one JSON array of Anthropic-style messages, rewritten whole
//! each time the task grows ([`SourceKind::Document`]): `{role, content,
//! ts?, modelInfo?, metrics?}`; `content` is a string or a list of blocks
//! (`text`, `image`, `thinking`, `tool_use`, `tool_result`). `ts` (epoch
//! milliseconds) is the only clock: where a message has none, its events
//! have none, and `session_meta` says whether the file has any.
//!
//! Delivery (a document cursor): every message has a key, `<index>-<hash>`
//! of its role and first block. The parser keeps the keys it delivered
//! and the event ids of the last message, and on each read:
//!
//! * the messages whose keys still match, in order from the start, were
//!   delivered; the last of them is mapped again (Cline adds blocks to
//!   its last user message when a task is resumed) and only its new event
//!   ids are delivered;
//! * the messages after them are mapped and delivered;
//! * when the file holds fewer of the delivered keys than were delivered
//!   (a checkpoint restore or a deleted message cut the history), a notice
//!   says how many delivered messages the task no longer holds, and the
//!   messages that now follow the common part are delivered. Nothing is
//!   taken back.
//!
//! Mapping (event ids `<task id>:<key>.<block>`, `#…` for a second event
//! of one block):
//!
//! * assistant `text` → `assistant.message`, `thinking` →
//!   `assistant.thinking`, `tool_use` → `assistant.tool.call` (its `id`);
//!   the message's `modelInfo.modelId` is the events' model; `modelInfo`
//!   and `metrics` → `provider.info` `token_count` (`<key>#usage`);
//! * user `tool_result` → `assistant.tool.result` (its `tool_use_id`);
//! * user text blocks, told apart by how Cline writes them:
//!   - `[<tool> for '…'] Result:…` or `[<tool>] Result:…` → a tool result,
//!     correlated with the previous assistant message's `tool_use` of that
//!     name (in order; else its only one left); a bare header block takes
//!     the next text block as its output (older versions wrote them
//!     apart). The answer an `ask_followup_question` result carries in
//!     `<answer>` is also a `user.message` (`#answer`);
//!   - a block opening with `<task>`, `<feedback>` or `<user_message>`
//!     (after at most one line of Cline's own preamble, such as "New
//!     instructions for task continuation:") → `user.message` with the text
//!     inside the tag, up to its first closing tag; the preamble and what
//!     follows the closing tag (file text `@mentions` add) are injected
//!     context (`#pre`, `#post`);
//!   - `<environment_details>`, `[TASK RESUMPTION]`, `# …` task-progress
//!     reminders, `<file_content …>` and "Files attached by the user" →
//!     injected context; the working directory named in environment
//!     details ("Current Working Directory (…)") → `provider.info` `cwd`
//!     (`#cwd`) when it differs from the one before;
//!   - `[ERROR] …` → error; empty text → nothing; any other text → model
//!     input;
//! * images in a user message count as attachments of its `user.message`,
//!   else each is a `provider.info` `attachment`;
//! * anything else (other roles, unknown block types, blocks or messages
//!   of unexpected shapes) → `provider.raw`. Only a document that is not a
//!   JSON array is [`Malformed`].
//!
//! In-chat commands are not read from these files
//! ([`Provider::carries_commands`]): Cline hands tool output to the model
//! as user-role text blocks beside the human's, and older versions write a
//! tool's output as a text block of its own after a bare `[…] Result:`
//! header, so a file or command output that begins with `<feedback>` has
//! the shape of the human's feedback; the answer to a question shares its
//! block with the assistant-written question. The human's words are shown
//! as theirs; they never run commands.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::raw_copy;
use crate::event::{raw_from_str, raw_json, Event, Payload, ProviderId, Source, SystemCategory};
use crate::provider::{
    stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::Cline;

/// The session file in each task directory.
pub const HISTORY_FILE: &str = "api_conversation_history.json";

/// The extension directories under an editor's `globalStorage`: Cline's,
/// then Roo Code's.
const EXTENSIONS: [&str; 2] = ["saoudrizwan.claude-dev", "rooveterinaryinc.roo-cline"];

/// Editors whose `User/globalStorage` may hold the extensions.
const EDITORS: [&str; 5] = ["Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf"];

/// Tags whose inner text is what the human typed.
const HUMAN_TAGS: [&str; 3] = ["task", "feedback", "user_message"];

pub struct Cline;

impl Cline {
    /// Every place the three agents keep tasks, existing or not: the
    /// Linux editors' `~/.config`, the macOS editors' `~/Library/Application
    /// Support`, then the Cline CLI's `~/.cline/data/tasks`.
    pub fn candidate_roots(home: &Path) -> Vec<PathBuf> {
        let mut roots = Vec::new();
        for base in [
            home.join(".config"),
            home.join("Library").join("Application Support"),
        ] {
            for editor in EDITORS {
                for ext in EXTENSIONS {
                    roots.push(
                        base.join(editor)
                            .join("User")
                            .join("globalStorage")
                            .join(ext)
                            .join("tasks"),
                    );
                }
            }
        }
        roots.push(home.join(".cline").join("data").join("tasks"));
        roots
    }
}

impl Provider for Cline {
    fn id(&self) -> ProviderId {
        ID
    }

    /// The candidate roots ([`Cline::candidate_roots`]) that exist when the
    /// configuration is read: none when no editor holds the extensions
    /// (so nothing above them, such as an editor's `globalStorage`, is ever
    /// named). A task folder created later is seen after a restart, or at
    /// once when named in the configuration.
    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        Self::candidate_roots(home)
            .into_iter()
            .filter(|p| p.is_dir())
            .collect()
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Document
    }

    /// `<task id>/api_conversation_history.json`: the last two components
    /// only, so a path relative to a root and an absolute one agree.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.file_name()?.to_str()? != HISTORY_FILE {
            return None;
        }
        let task = rel.parent()?.file_name()?.to_str()?;
        if task.is_empty() {
            return None;
        }
        Some(FileCtx {
            provider: ID,
            file_tag: task.to_owned(),
            session_hint: task.to_owned(),
            subagent: None,
        })
    }

    /// A file of another name (a copy) keeps its stem as the task id.
    fn named_file(&self, path: &Path) -> FileCtx {
        self.classify(path).unwrap_or_else(|| FileCtx {
            provider: ID,
            file_tag: stem(path),
            session_hint: stem(path),
            subagent: None,
        })
    }

    /// A JSON array whose first element opens with a `role` key: no other
    /// provider's file is an array.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let t = head.trim_ascii_start();
        let Some(rest) = t.strip_prefix(b"[") else {
            return Sniff::No;
        };
        let rest = rest.trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"{") else {
            return Sniff::No;
        };
        if rest.trim_ascii_start().starts_with(b"\"role\"") {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Cline, Roo Code and the Cline CLI: one JSON message array per task, \
                          rewritten as it grows (default: the tasks/ folders that exist; in-chat \
                          commands are not read).",
            env_override: None,
        }
    }

    fn carries_commands(&self) -> bool {
        false
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(DocParser {
            ctx: ctx.clone(),
            state: State::default(),
        })
    }
}

/// What has been delivered from one document so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Keys of the delivered messages, in order.
    keys: Vec<String>,
    /// Event ids delivered for the last delivered message.
    last_events: Vec<String>,
    /// Working directory in force before the last delivered message.
    cwd_before_last: Option<String>,
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
        let messages: Vec<&RawValue> =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let doc = Doc::new(&self.ctx, &messages);
        let n = doc.msgs.len();
        let st = &mut self.state;

        if !st.meta {
            out(doc.session_meta());
            st.meta = true;
        }

        let common = st
            .keys
            .iter()
            .zip(&doc.keys)
            .take_while(|(a, b)| a == b)
            .count();
        let mut cwd;
        if common < st.keys.len() {
            // The history was cut: say so, then go on from what is common.
            out(doc.cut_notice(common, &st.keys));
            cwd = None;
            for i in 0..common.saturating_sub(1) {
                doc.map_message(i, &mut cwd);
            }
            st.cwd_before_last = cwd.clone();
            st.last_events = match common {
                0 => Vec::new(),
                c => doc
                    .map_message(c - 1, &mut cwd)
                    .into_iter()
                    .map(|e| e.event_id)
                    .collect(),
            };
            st.keys.truncate(common);
        } else {
            cwd = st.cwd_before_last.clone();
            if common > 0 {
                // The last delivered message may have grown.
                for ev in doc.map_message(common - 1, &mut cwd) {
                    if !st.last_events.contains(&ev.event_id) {
                        st.last_events.push(ev.event_id.clone());
                        out(ev);
                    }
                }
            }
        }
        for i in common..n {
            if i + 1 == n {
                st.cwd_before_last = cwd.clone();
            }
            let events = doc.map_message(i, &mut cwd);
            if i + 1 == n {
                st.last_events = events.iter().map(|e| e.event_id.clone()).collect();
            }
            events.into_iter().for_each(&mut *out);
        }
        st.keys = doc.keys;
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

/// One message read strictly: a field of an unexpected type makes it
/// `provider.raw`.
#[derive(Deserialize)]
struct Msg<'a> {
    role: String,
    #[serde(borrow)]
    content: &'a RawValue,
    #[serde(default)]
    ts: Option<serde_json::Number>,
    #[serde(rename = "modelInfo", borrow, default)]
    model_info: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metrics: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ModelInfo {
    #[serde(rename = "modelId", default)]
    model_id: Option<String>,
}

/// One content block, read leniently by type.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: Option<bool>,
}

/// A message's content as blocks: a string is one text block. Each block
/// is its parsed form or, when it has an unexpected shape, its raw JSON.
type Blocks<'a> = Vec<Result<Block<'a>, &'a RawValue>>;

fn blocks(content: &RawValue) -> Option<Blocks<'_>> {
    let json = content.get();
    match json.trim_start().as_bytes().first() {
        Some(b'"') => {
            let text: String = serde_json::from_str(json).ok()?;
            Some(vec![Ok(Block {
                kind: "text".to_owned(),
                text: Some(text),
                thinking: None,
                id: None,
                name: None,
                input: None,
                tool_use_id: None,
                content: None,
                is_error: None,
            })])
        }
        Some(b'[') => {
            let raws: Vec<&RawValue> = serde_json::from_str(json).ok()?;
            Some(
                raws.into_iter()
                    .map(|r| serde_json::from_str::<Block<'_>>(r.get()).map_err(|_| r))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The document: every message's fields read once (values left raw);
/// content blocks are read only for the messages mapped.
struct Doc<'a> {
    ctx: &'a FileCtx,
    raws: &'a [&'a RawValue],
    /// A message whose content is a string or an array; else `None`.
    msgs: Vec<Option<Msg<'a>>>,
    keys: Vec<String>,
}

impl<'a> Doc<'a> {
    fn new(ctx: &'a FileCtx, raws: &'a [&'a RawValue]) -> Doc<'a> {
        let mut msgs = Vec::with_capacity(raws.len());
        let mut keys = Vec::with_capacity(raws.len());
        for (i, raw) in raws.iter().enumerate() {
            let parsed = serde_json::from_str::<Msg<'_>>(raw.get())
                .ok()
                .filter(|m| matches!(m.content.get().as_bytes().first(), Some(b'"' | b'[')));
            let mut h = Fnv::new();
            match &parsed {
                Some(m) => {
                    h.write(m.role.as_bytes());
                    h.write(&[0]);
                    h.write(first_block(m.content).as_bytes());
                }
                None => h.write(raw.get().as_bytes()),
            }
            keys.push(format!("{i}-{:08x}", h.finish32()));
            msgs.push(parsed);
        }
        Doc {
            ctx,
            raws,
            msgs,
            keys,
        }
    }

    fn tag(&self) -> &str {
        &self.ctx.file_tag
    }

    fn event(&self, i: usize, id: String, record: &str, payload: Payload) -> Event {
        Event::new(
            ID,
            self.ctx.session_hint.clone(),
            id,
            Source {
                record: record.to_owned().into(),
                offset: i as u64,
                file: None,
            },
            payload,
        )
    }

    fn session_meta(&self) -> Event {
        let timed = self
            .msgs
            .iter()
            .flatten()
            .any(|m| m.ts.as_ref().is_some_and(|t| ts_string(t).is_some()));
        let data = serde_json::json!({
            "task_id": self.ctx.session_hint,
            "timestamps": if timed {
                "per message (ts)"
            } else {
                "none: this file records no times"
            },
        });
        let mut ev = self.event(
            0,
            format!("{}#session_meta", self.tag()),
            "document",
            Payload::ProviderInfo {
                topic: "session_meta".to_owned(),
                data: raw_json(&data),
            },
        );
        ev.timestamp = self
            .msgs
            .iter()
            .flatten()
            .find_map(|m| m.ts.as_ref().and_then(ts_string))
            .map(Into::into);
        ev
    }

    fn cut_notice(&self, common: usize, delivered: &[String]) -> Event {
        let gone = delivered.len() - common;
        let text = format!(
            "The task's history was cut: {gone} message(s) shown before, from message {} on, \
             are no longer in it; what follows replaces them.",
            common + 1
        );
        let first_gone = delivered.get(common).map_or("", String::as_str);
        self.event(
            common,
            format!("{}:cut-{first_gone}-{}", self.tag(), delivered.len()),
            "document",
            Payload::SystemMessage {
                category: SystemCategory::Notice,
                text,
            },
        )
    }

    /// The events of message `i`; `cwd` is the working directory in force
    /// before it, updated by its environment details.
    fn map_message(&self, i: usize, cwd: &mut Option<String>) -> Vec<Event> {
        let key = &self.keys[i];
        let base = format!("{}:{key}", self.tag());
        let Some((msg, blocks)) = self.msgs[i]
            .as_ref()
            .and_then(|m| blocks(m.content).map(|b| (m, b)))
        else {
            return vec![self.event(
                i,
                base,
                "message",
                Payload::ProviderRaw {
                    record: raw_from_str(self.raws[i].get()),
                },
            )];
        };
        let ts = msg.ts.as_ref().and_then(ts_string);
        let mut events = match msg.role.as_str() {
            "assistant" => self.map_assistant(i, &base, msg, &blocks),
            "user" => self.map_user(i, &base, &blocks, cwd),
            _ => vec![self.event(
                i,
                base,
                "message",
                Payload::ProviderRaw {
                    record: raw_from_str(self.raws[i].get()),
                },
            )],
        };
        for ev in &mut events {
            ev.timestamp = ts.as_deref().map(Into::into);
        }
        events
    }

    fn map_assistant(
        &self,
        i: usize,
        base: &str,
        msg: &Msg<'_>,
        blocks: &Blocks<'_>,
    ) -> Vec<Event> {
        let model = msg
            .model_info
            .and_then(|r| serde_json::from_str::<ModelInfo>(r.get()).ok())
            .and_then(|m| m.model_id);
        let mut events = Vec::new();
        for (j, b) in blocks.iter().enumerate() {
            let id = format!("{base}.{j}");
            let b = match b {
                Ok(b) => b,
                Err(raw) => {
                    events.push(self.raw_block(i, id, "assistant", raw));
                    continue;
                }
            };
            let record = format!("assistant/{}", b.kind);
            let payload = match (b.kind.as_str(), b) {
                ("text", Block { text: Some(t), .. }) => {
                    if t.trim().is_empty() {
                        continue;
                    }
                    Payload::AssistantMessage { text: t.clone() }
                }
                (
                    "thinking",
                    Block {
                        thinking: Some(t), ..
                    },
                ) => {
                    if t.trim().is_empty() {
                        continue;
                    }
                    Payload::Thinking { text: t.clone() }
                }
                (
                    "tool_use",
                    Block {
                        id: Some(call),
                        name: Some(name),
                        ..
                    },
                ) => Payload::ToolCall {
                    tool_call_id: call.clone(),
                    name: name.clone(),
                    input: b.input.map_or_else(|| raw_from_str("{}"), raw_copy),
                },
                _ => {
                    events.push(self.raw_block(i, id, "assistant", &block_raw(self.raws[i], j)));
                    continue;
                }
            };
            let mut ev = self.event(i, id, &record, payload);
            ev.model = model.as_deref().map(Into::into);
            events.push(ev);
        }
        if msg.model_info.is_some() || msg.metrics.is_some() {
            let data = format!(
                r#"{{"modelInfo":{},"metrics":{}}}"#,
                msg.model_info.map_or("null", RawValue::get),
                msg.metrics.map_or("null", RawValue::get)
            );
            let mut ev = self.event(
                i,
                format!("{base}#usage"),
                "assistant",
                Payload::ProviderInfo {
                    topic: "token_count".to_owned(),
                    data: raw_from_str(&data),
                },
            );
            ev.model = model.map(Into::into);
            events.push(ev);
        }
        events
    }

    fn raw_block(&self, i: usize, id: String, role: &str, raw: &RawValue) -> Event {
        self.event(
            i,
            id,
            role,
            Payload::ProviderRaw {
                record: raw_copy(raw),
            },
        )
    }

    /// The tool calls of the assistant message before `i`: (id, name,
    /// input).
    fn previous_calls(&self, i: usize) -> Vec<(String, String, Option<&'a RawValue>)> {
        let Some(Some(m)) = i.checked_sub(1).map(|p| &self.msgs[p]) else {
            return Vec::new();
        };
        if m.role != "assistant" {
            return Vec::new();
        }
        let Some(blocks) = blocks(m.content) else {
            return Vec::new();
        };
        blocks
            .into_iter()
            .filter_map(|b| match b {
                Ok(Block {
                    kind,
                    id: Some(id),
                    name: Some(name),
                    input,
                    ..
                }) if kind == "tool_use" => Some((id, name, input)),
                _ => None,
            })
            .collect()
    }

    fn map_user(
        &self,
        i: usize,
        base: &str,
        blocks: &Blocks<'_>,
        cwd: &mut Option<String>,
    ) -> Vec<Event> {
        let mut calls: Vec<Option<(String, String, Option<&RawValue>)>> =
            self.previous_calls(i).into_iter().map(Some).collect();
        let mut events = Vec::new();
        let mut images = 0u32;
        let mut image_events = Vec::new();
        let mut j = 0;
        while j < blocks.len() {
            let id = format!("{base}.{j}");
            let b = match &blocks[j] {
                Ok(b) => b,
                Err(raw) => {
                    events.push(self.raw_block(i, id, "user", raw));
                    j += 1;
                    continue;
                }
            };
            let record = format!("user/{}", b.kind);
            match (b.kind.as_str(), b) {
                ("text", Block { text: Some(t), .. }) => {
                    // A bare `[…] Result:` header takes the next text block.
                    let mut text = std::borrow::Cow::Borrowed(t.as_str());
                    if let (
                        Some(_),
                        Some(Ok(Block {
                            kind,
                            text: Some(next),
                            ..
                        })),
                    ) = (bare_header(t), blocks.get(j + 1))
                    {
                        if kind == "text" {
                            text = std::borrow::Cow::Owned(format!("{t}\n{next}"));
                            j += 1;
                        }
                    }
                    self.user_text(i, &id, &record, &text, &mut calls, cwd, &mut events);
                }
                ("image", _) => {
                    images += 1;
                    let media = block_raw(self.raws[i], j);
                    let data = serde_json::json!({
                        "type": "image",
                        "media_type": serde_json::from_str::<serde_json::Value>(media.get())
                            .ok()
                            .and_then(|v| v.pointer("/source/media_type").cloned()),
                    });
                    image_events.push(self.event(
                        i,
                        id,
                        &record,
                        Payload::ProviderInfo {
                            topic: "attachment".to_owned(),
                            data: raw_json(&data),
                        },
                    ));
                }
                (
                    "tool_result",
                    Block {
                        tool_use_id: Some(call),
                        ..
                    },
                ) => {
                    events.push(self.event(
                        i,
                        id,
                        &record,
                        Payload::ToolResult {
                            tool_call_id: call.clone(),
                            output: result_output(b.content).into(),
                            is_error: b.is_error.unwrap_or(false),
                        },
                    ));
                }
                _ => events.push(self.raw_block(i, id, "user", &block_raw(self.raws[i], j))),
            }
            j += 1;
        }
        if images > 0 {
            let human = events
                .iter_mut()
                .find(|e| matches!(e.payload, Payload::UserMessage { .. }));
            match human {
                Some(Event {
                    payload: Payload::UserMessage { attachments, .. },
                    ..
                }) => *attachments += images,
                _ => events.extend(image_events),
            }
        }
        events
    }

    #[allow(clippy::too_many_arguments)]
    fn user_text(
        &self,
        i: usize,
        id: &str,
        record: &str,
        text: &str,
        calls: &mut [Option<(String, String, Option<&RawValue>)>],
        cwd: &mut Option<String>,
        events: &mut Vec<Event>,
    ) {
        let system = |category, text: &str| Payload::SystemMessage {
            category,
            text: text.to_owned(),
        };
        if text.trim().is_empty() {
            return;
        }
        if let Some(name) = tool_header(text) {
            let call = take_call(calls, &name);
            let output = header_output(text);
            let is_error = output.starts_with("The tool execution failed");
            let answer = (name == "ask_followup_question")
                .then(|| answer_of(text, call.as_ref().and_then(|c| c.2)))
                .flatten();
            events.push(self.event(
                i,
                id.to_owned(),
                record,
                Payload::ToolResult {
                    tool_call_id: call.map(|c| c.0).unwrap_or_default(),
                    output: output.to_owned().into(),
                    is_error,
                },
            ));
            if let Some(answer) = answer {
                events.push(self.event(
                    i,
                    format!("{id}#answer"),
                    record,
                    Payload::UserMessage {
                        text: answer,
                        attachments: 0,
                    },
                ));
            }
            return;
        }
        if text.starts_with("[ERROR]") {
            events.push(self.event(
                i,
                id.to_owned(),
                record,
                system(SystemCategory::Error, text),
            ));
            return;
        }
        if text.starts_with("<environment_details>") {
            events.push(self.event(
                i,
                id.to_owned(),
                record,
                system(SystemCategory::InjectedContext, text),
            ));
            if let Some(dir) = environment_cwd(text) {
                if cwd.as_deref() != Some(dir) {
                    *cwd = Some(dir.to_owned());
                    events.push(self.event(
                        i,
                        format!("{id}#cwd"),
                        record,
                        Payload::ProviderInfo {
                            topic: "cwd".to_owned(),
                            data: raw_json(&serde_json::json!({ "cwd": dir })),
                        },
                    ));
                }
            }
            return;
        }
        if let Some((pre, human, post)) = human_text(text) {
            if !pre.trim().is_empty() {
                events.push(self.event(
                    i,
                    format!("{id}#pre"),
                    record,
                    system(SystemCategory::InjectedContext, pre.trim_end()),
                ));
            }
            events.push(self.event(
                i,
                id.to_owned(),
                record,
                Payload::UserMessage {
                    text: human.to_owned(),
                    attachments: 0,
                },
            ));
            if !post.trim().is_empty() {
                events.push(self.event(
                    i,
                    format!("{id}#post"),
                    record,
                    system(SystemCategory::InjectedContext, post.trim()),
                ));
            }
            return;
        }
        let category = if is_injected(text) {
            SystemCategory::InjectedContext
        } else {
            SystemCategory::ModelInput
        };
        events.push(self.event(i, id.to_owned(), record, system(category, text)));
    }
}

/// Text Cline adds that is not a tool result nor the human's.
fn is_injected(text: &str) -> bool {
    text.starts_with("[TASK RESUMPTION]")
        || text.trim_start().starts_with('#')
        || text.starts_with("<file_content")
        || text.starts_with("Files attached by the user")
}

/// `(preamble, human text, rest)` of a block holding one of
/// [`HUMAN_TAGS`]: the tag opens the block or follows one line of
/// preamble that is not a tool header; the human text ends at the first
/// closing tag.
fn human_text(text: &str) -> Option<(&str, &str, &str)> {
    let (pre, body) = match text.starts_with('<') {
        true => ("", text),
        false => {
            let nl = text.find('\n')?;
            (&text[..=nl], &text[nl + 1..])
        }
    };
    for tag in HUMAN_TAGS {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let Some(rest) = body.strip_prefix(open.as_str()) else {
            continue;
        };
        let end = rest.find(close.as_str())?;
        let inner = &rest[..end];
        let inner = inner.strip_prefix('\n').unwrap_or(inner);
        let inner = inner.strip_suffix('\n').unwrap_or(inner);
        return Some((pre, inner, &rest[end + close.len()..]));
    }
    None
}

/// The tool name of a `[<name>…] Result:` block.
fn tool_header(text: &str) -> Option<String> {
    let rest = text.strip_prefix('[')?;
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ':'))
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let after = &rest[name_len..];
    if !(after.starts_with("] Result:") || after.starts_with(" for ")) {
        return None;
    }
    text.contains("] Result:")
        .then(|| rest[..name_len].to_owned())
}

/// The tool name when `text` is only a `[…] Result:` header.
fn bare_header(text: &str) -> Option<String> {
    tool_header(text).filter(|_| text.trim_end().ends_with("] Result:"))
}

/// What follows the first `] Result:` of a tool result block.
fn header_output(text: &str) -> &str {
    let Some(at) = text.find("] Result:") else {
        return text;
    };
    let out = &text[at + "] Result:".len()..];
    out.strip_prefix('\n')
        .or_else(|| out.strip_prefix(' '))
        .unwrap_or(out)
}

/// The next call of the previous assistant message named `name`, else its
/// only call left.
fn take_call<'r>(
    calls: &mut [Option<(String, String, Option<&'r RawValue>)>],
    name: &str,
) -> Option<(String, String, Option<&'r RawValue>)> {
    if let Some(slot) = calls
        .iter_mut()
        .find(|c| c.as_ref().is_some_and(|c| c.1 == name))
    {
        return slot.take();
    }
    let mut left = calls.iter_mut().filter(|c| c.is_some());
    match (left.next(), left.next()) {
        (Some(only), None) => only.take(),
        _ => None,
    }
}

/// The human's answer in an `ask_followup_question` result: after the
/// header that repeats the question exactly (from the call's input), else
/// after the first `] Result:\n<answer>\n`; up to the first `</answer>`.
fn answer_of(text: &str, input: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Ask {
        question: String,
    }
    const OPEN: &str = "] Result:\n<answer>\n";
    let exact = input
        .and_then(|r| serde_json::from_str::<Ask>(r.get()).ok())
        .and_then(|a| {
            let head = format!("[ask_followup_question for '{}'{OPEN}", a.question);
            text.strip_prefix(head.as_str())
        });
    let body = match exact {
        Some(b) => b,
        None => &text[text.find(OPEN)? + OPEN.len()..],
    };
    let end = body.find("</answer>")?;
    let answer = &body[..end];
    let answer = answer.strip_suffix('\n').unwrap_or(answer);
    Some(answer.to_owned())
}

/// The directory of an environment details' "# Current Working Directory
/// (`<dir>`) Files" line.
fn environment_cwd(text: &str) -> Option<&str> {
    const HEAD: &str = "# Current Working Directory (";
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(HEAD)?;
        let dir = rest.strip_suffix(") Files")?;
        (!dir.is_empty()).then_some(dir)
    })
}

/// A `tool_result` block's content as text: a string, or its text parts
/// (other parts as their JSON).
fn result_output(content: Option<&RawValue>) -> String {
    let Some(c) = content else {
        return String::new();
    };
    match serde_json::from_str::<serde_json::Value>(c.get()) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Array(parts)) => parts
            .iter()
            .map(|p| match p.get("text").and_then(|t| t.as_str()) {
                Some(t) => t.to_owned(),
                None if p.get("type").and_then(|t| t.as_str()) == Some("image") => {
                    "[image]".to_owned()
                }
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Ok(serde_json::Value::Null) | Err(_) => String::new(),
        Ok(other) => other.to_string(),
    }
}

/// Block `j` of a message's content array, raw (the message itself when
/// it has no such block).
fn block_raw(msg: &RawValue, j: usize) -> Box<RawValue> {
    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow)]
        content: Vec<&'a RawValue>,
    }
    match serde_json::from_str::<Content<'_>>(msg.get()) {
        Ok(c) => c
            .content
            .get(j)
            .map_or_else(|| raw_copy(msg), |b| raw_copy(b)),
        Err(_) => raw_copy(msg),
    }
}

/// The first block of a content value, as JSON text (a string content is
/// itself).
fn first_block(content: &RawValue) -> String {
    match serde_json::from_str::<Vec<&RawValue>>(content.get()) {
        Ok(blocks) => blocks
            .first()
            .map(|b| b.get().to_owned())
            .unwrap_or_default(),
        Err(_) => content.get().to_owned(),
    }
}

/// Epoch milliseconds as RFC 3339 (UTC); `None` for negative, fractional
/// overflowing or absurd values.
fn ts_string(ts: &serde_json::Number) -> Option<String> {
    let ms = ts.as_u64().or_else(|| {
        ts.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })?;
    crate::audit::rfc3339_from_millis(ms)
}

/// FNV-1a, 64 bits: a stable short hash for message keys.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish32(&self) -> u32 {
        // Fold the halves: the cast keeps the low 32 bits on purpose.
        ((self.0 >> 32) ^ self.0) as u32
    }
}

#[cfg(test)]
mod tests;
