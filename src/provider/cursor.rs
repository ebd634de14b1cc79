//! Cursor agent transcripts (the IDE's agent and `cursor-agent`):
//! `~/.cursor/projects/<slug>/agent-transcripts/<id>/<id>.jsonl`, or the
//! flat `agent-transcripts/<id>.jsonl` of earlier versions.
//!
//! The root is `~/.cursor/projects`, not `~/.cursor`, which also holds the
//! agent's `mcp.json` and `cli-config.json`; only files under an
//! `agent-transcripts` directory are read ([`Provider::classify`]).
//! Other files under a project (`agent-tools/` outputs, terminals) are
//! never opened. The flat `.txt` transcripts some versions are said to
//! write have no documented shape and are not read.
//!
//! Records, one a line, append-only:
//!
//! * `{role: "user"|"assistant", message: {content: [block…]}}`, blocks
//!   `text`, `tool_use {name, input}`, `tool_result {content}` and
//!   `thinking`; a `content` that is a string is one text block;
//! * `{type: "turn_ended", status}`: the end of a turn.
//!
//! The format holds no ids, no timestamps, no model and (in the files
//! seen) no tool results. So:
//!
//! * event ids are `<tag>:<offset>`, `#n` for the n-th further event of a
//!   line ([`offset_id`]);
//! * no event carries a time, and the first line is preceded by a notice
//!   (`<tag>:no-times`) saying that the transcript records none; `kato
//!   sessions` shows the activity times as unknown (`-`);
//! * a tool call's id is its event id; a `tool_result` block names no call,
//!   so it is paired with the oldest call still waiting for a result (the
//!   order the agent ran them in), or keeps its own event id when none is
//!   waiting;
//! * the project directory is unknown: the records hold none, the slug is
//!   a lossy encoding of the path, and nothing under the root maps one to
//!   the other.
//!
//! What the human typed: Cursor wraps it in `<user_query>…</user_query>`
//! inside a user text block, after any context it adds itself
//! (`<git_diff_from_branch_to_main>`, `<cursor_commands>`, attached files,
//! rules). A user text block is split at its last `<user_query>` before
//! its last `</user_query>`: the text inside is `user.message`, text before
//! and after is `system.message` (a `<cursor_commands>` block
//! [`SystemCategory::CommandWrapper`], anything else
//! [`SystemCategory::InjectedContext`]). A user block with no query is
//! injected context as a whole. Taking the last opening tag means a
//! `<user_query>` planted in a diff or file ahead of the human's own query
//! is never read as the human's words. Tool results never share a record
//! with the human's text, and assistant text is never user-role; so
//! in-chat commands are read from the query alone.
//!
//! Anything else that is JSON (unknown record types, unknown blocks) is
//! `provider.raw`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::{raw_from_str, Event, Payload, ProviderId, Source, SystemCategory};
use crate::provider::{
    first_line_object, offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

const ID: ProviderId = ProviderId::Cursor;

/// The directory the transcripts are kept in, under each project.
const TRANSCRIPTS: &str = "agent-transcripts";

/// Tool calls remembered while they wait for a result.
pub const PENDING: usize = 64;

const QUERY_OPEN: &str = "<user_query>";
const QUERY_CLOSE: &str = "</user_query>";
const COMMANDS_OPEN: &str = "<cursor_commands>";

/// The text of the notice that opens every transcript.
pub const NO_TIMES: &str = "This Cursor transcript records no times: the events below \
                            carry none, and none were invented.";

/// The `cursor` provider.
pub struct Cursor;

impl Provider for Cursor {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".cursor").join("projects")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    /// `<slug>/agent-transcripts/<id>/<id>.jsonl` and
    /// `<slug>/agent-transcripts/<id>.jsonl`; only trailing components are
    /// looked at.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.extension()? != "jsonl" {
            return None;
        }
        let id = stem(rel);
        let parent = rel.parent()?;
        let in_transcripts = |dir: &Path| dir.file_name().is_some_and(|n| n == TRANSCRIPTS);
        let nested = parent.file_name().is_some_and(|n| n.to_str() == Some(&id))
            && parent.parent().is_some_and(in_transcripts);
        (nested || in_transcripts(parent)).then(|| FileCtx {
            provider: ID,
            file_tag: id.clone(),
            session_hint: id,
            subagent: None,
        })
    }

    /// A first line with a top-level `role` and `message` and nothing else
    /// but a `type`: no other format writes the role outside the message.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let Some(o) = first_line_object(head) else {
            return Sniff::No;
        };
        let role = o.get("role").and_then(|r| r.as_str());
        let shape = matches!(role, Some("user" | "assistant"))
            && o.get("message").is_some_and(|m| m.is_object())
            && o.keys().all(|k| matches!(k.as_str(), "role" | "message"));
        if shape {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Cursor agent transcripts (IDE agent and cursor-agent): no times, \
                          no ids, the project directory unknown.",
            env_override: None,
        }
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(CursorParser::new(ctx))
    }
}

/// What the parser carries between lines, persisted with the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Ids of tool calls waiting for a result, oldest first.
    #[serde(default)]
    pending: VecDeque<String>,
}

/// One line.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default, borrow)]
    role: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
}

/// A message object.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

/// One content block: the fields of every known type.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    is_error: Option<bool>,
}

/// The parts of a user text block.
#[derive(Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// Context before the query.
    pub before: &'a str,
    /// What the human typed, if the block has a query.
    pub query: Option<&'a str>,
    /// Context after the query.
    pub after: &'a str,
}

/// Split a user text block at its last `<user_query>` before its last
/// `</user_query>`. Cursor ends the block with the query (what it adds
/// comes before it); a block with text after its last `</user_query>` has
/// no query the human typed — a tag pair planted in an attached file or a
/// diff would otherwise be taken for one — and is context whole.
pub fn split_user_text(text: &str) -> Split<'_> {
    let none = Split {
        before: text,
        query: None,
        after: "",
    };
    let Some(close) = text.rfind(QUERY_CLOSE) else {
        return none;
    };
    let Some(open) = text[..close].rfind(QUERY_OPEN) else {
        return none;
    };
    let after = &text[close + QUERY_CLOSE.len()..];
    if !after.trim().is_empty() {
        return none;
    }
    Split {
        before: &text[..open],
        query: Some(&text[open + QUERY_OPEN.len()..close]),
        after,
    }
}

/// The category of context text Cursor put in a user block.
fn context_category(text: &str) -> SystemCategory {
    if text.trim_start().starts_with(COMMANDS_OPEN) {
        SystemCategory::CommandWrapper
    } else {
        SystemCategory::InjectedContext
    }
}

/// A JSON string's text; `None` for any other value.
pub(super) fn string(raw: Option<&RawValue>) -> Option<String> {
    serde_json::from_str::<String>(raw?.get()).ok()
}

/// A tool result's content as text: a string as it is, a list of text
/// blocks joined, anything else as its JSON (Anthropic-style blocks, as
/// Droid writes them too).
pub(super) fn result_text(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    if let Ok(s) = serde_json::from_str::<String>(raw.get()) {
        return s;
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(default)]
        text: Option<String>,
    }
    match serde_json::from_str::<Vec<Part>>(raw.get()) {
        Ok(parts) if parts.iter().all(|p| p.text.is_some()) => parts
            .into_iter()
            .filter_map(|p| p.text)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => raw.get().to_owned(),
    }
}

struct CursorParser {
    ctx: FileCtx,
    st: State,
}

/// The events of one line, numbered as they are added.
struct Out<'p, 'o> {
    ctx: &'p FileCtx,
    offset: u64,
    record: &'static str,
    n: u32,
    out: &'o mut dyn FnMut(Event),
}

impl Out<'_, '_> {
    /// The id the next event gets.
    fn next_id(&self) -> String {
        offset_id(&self.ctx.file_tag, self.offset, self.n)
    }

    fn push(&mut self, payload: Payload) {
        let id = self.next_id();
        let ev = event(self.ctx, id, self.offset, self.record, payload);
        self.n += 1;
        (self.out)(ev);
    }
}

/// An event of the file `ctx`.
fn event(ctx: &FileCtx, id: String, offset: u64, record: &str, payload: Payload) -> Event {
    let source = Source {
        record: record.to_owned(),
        offset,
        file: Some(ctx.file_tag.clone()),
    };
    Event::new(ID, ctx.session_hint.clone(), id, source, payload)
}

impl CursorParser {
    fn new(ctx: &FileCtx) -> CursorParser {
        CursorParser {
            ctx: ctx.clone(),
            st: State::default(),
        }
    }

    /// The notice that opens the transcript.
    fn no_times(&self, out: &mut dyn FnMut(Event)) {
        let payload = Payload::SystemMessage {
            category: SystemCategory::Notice,
            text: NO_TIMES.to_owned(),
        };
        let id = format!("{}:no-times", self.ctx.file_tag);
        out(event(&self.ctx, id, 0, "transcript", payload));
    }
}

impl State {
    fn wait_for_result(&mut self, id: String) {
        if self.pending.len() == PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(id);
    }

    /// The events of a message's blocks.
    fn message(&mut self, o: &mut Out<'_, '_>, user: bool, content: &RawValue) {
        let text = content.get().trim_start();
        if text.starts_with('"') {
            if let Ok(s) = serde_json::from_str::<String>(text) {
                self.text_block(o, user, &s);
                return;
            }
        }
        let Ok(blocks) = serde_json::from_str::<Vec<&RawValue>>(text) else {
            o.push(Payload::ProviderRaw {
                record: raw_from_str(content.get()),
            });
            return;
        };
        for raw in blocks {
            self.block(o, user, raw);
        }
    }

    fn block(&mut self, o: &mut Out<'_, '_>, user: bool, raw: &RawValue) {
        let Ok(b) = serde_json::from_str::<Block<'_>>(raw.get()) else {
            o.push(Payload::ProviderRaw {
                record: raw_from_str(raw.get()),
            });
            return;
        };
        let kind = b.kind.clone();
        match (kind.as_deref(), b) {
            (
                Some("text"),
                Block {
                    text: Some(text), ..
                },
            ) => self.text_block(o, user, &text),
            (
                Some("thinking"),
                Block {
                    thinking: Some(text),
                    ..
                },
            ) if !user => o.push(Payload::Thinking { text }),
            (
                Some("tool_use"),
                Block {
                    name: Some(name),
                    input,
                    ..
                },
            ) if !user => {
                let id = o.next_id();
                self.wait_for_result(id.clone());
                o.push(Payload::ToolCall {
                    tool_call_id: id,
                    name,
                    input: raw_from_str(input.map_or("{}", RawValue::get)),
                });
            }
            (Some("tool_result"), b) => {
                let named = b.tool_use_id.filter(|s| !s.is_empty());
                let id = match named {
                    Some(id) => {
                        self.pending.retain(|p| *p != id);
                        id
                    }
                    None => self.pending.pop_front().unwrap_or_else(|| o.next_id()),
                };
                o.push(Payload::ToolResult {
                    tool_call_id: id,
                    output: result_text(b.content),
                    is_error: b.is_error.unwrap_or(false),
                });
            }
            _ => o.push(Payload::ProviderRaw {
                record: raw_from_str(raw.get()),
            }),
        }
    }

    fn text_block(&self, o: &mut Out<'_, '_>, user: bool, text: &str) {
        if !user {
            o.push(Payload::AssistantMessage {
                text: text.to_owned(),
            });
            return;
        }
        let split = split_user_text(text);
        if !split.before.trim().is_empty() {
            o.push(Payload::SystemMessage {
                category: context_category(split.before),
                text: split.before.trim().to_owned(),
            });
        }
        if let Some(q) = split.query {
            o.push(Payload::UserMessage {
                text: q.trim().to_owned(),
                attachments: 0,
            });
        }
        if !split.after.trim().is_empty() {
            o.push(Payload::SystemMessage {
                category: context_category(split.after),
                text: split.after.trim().to_owned(),
            });
        }
    }
}

impl RecordParser for CursorParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let text = std::str::from_utf8(bytes).map_err(|_| Malformed::InvalidUtf8)?;
        let parsed = serde_json::from_str::<Line<'_>>(text);
        // Not an object (or a field of another JSON type): kept raw when
        // it is JSON at all.
        let line = match parsed {
            Ok(l) => Some(l),
            Err(e) => {
                serde_json::from_str::<&RawValue>(text)
                    .map_err(|_| Malformed::from_json_error(bytes, &e))?;
                None
            }
        };
        if offset == 0 {
            self.no_times(out);
        }
        let role = line.as_ref().and_then(|l| string(l.role));
        let content = line
            .as_ref()
            .and_then(|l| l.message)
            .and_then(|m| serde_json::from_str::<Message<'_>>(m.get()).ok())
            .and_then(|m| m.content);
        let kind = line.as_ref().and_then(|l| string(l.kind));
        let user = role.as_deref() == Some("user");
        let record = match (role.as_deref(), kind.as_deref()) {
            (Some("user"), _) => "user",
            (Some("assistant"), _) => "assistant",
            (None, Some("turn_ended")) => "turn_ended",
            _ => "unknown",
        };
        let mut o = Out {
            ctx: &self.ctx,
            offset,
            record,
            n: 0,
            out,
        };
        match (record, content) {
            ("user" | "assistant", Some(content)) => {
                self.st.message(&mut o, user, content);
            }
            ("turn_ended", _) => o.push(Payload::ProviderInfo {
                topic: "turn_ended".into(),
                data: raw_from_str(text),
            }),
            _ => o.push(Payload::ProviderRaw {
                record: raw_from_str(text),
            }),
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.st = super::restore_state::<State>(state)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
