//! Amp provider: `~/.local/share/amp/threads/T-<uuid>.json`
//! (`$XDG_DATA_HOME/amp/threads` when that variable is set).
//!
//! A thread is one JSON document that Amp rewrites as the thread grows
//! ([`SourceKind::Document`]): the reader hands the whole document to
//! [`RecordParser::record`] each time the file changes, and the parser
//! delivers only what it has not delivered yet.
//!
//! Amp writes a message while it is still being produced: an assistant
//! message streams (`state.type` is `"streaming"` until it is complete,
//! cancelled or failed) and a tool result is written while its tool runs
//! (`run.status` `"in-progress"`, `"queued"`, `"blocked-on-user"`). The
//! parser delivers an event once it is *settled* and never again:
//!
//! * the text, thinking and tool calls of an assistant message once the
//!   message has stopped streaming (whatever it ended as);
//! * a tool result once its run has a final status;
//! * the human's text at once (a user message is written whole).
//!
//! So a streaming message is never delivered half-written and then again.
//! What is still unsettled when a one-shot read ends (a thread left with a
//! tool still running) is delivered by [`RecordParser::flush`], as it
//! stands: the export shows what the file holds.
//!
//! Position: `settled` is the number of leading messages whose events are
//! all delivered, `settled_id` the `messageId` of the last of them, and
//! `emitted` the ids of events already delivered from later messages. When
//! the document has fewer messages than `settled`, or the message at
//! `settled - 1` has another `messageId` (the human edited an earlier
//! message and Amp cut the thread there), delivery starts over from
//! message 0; event ids are message ids, so consumers drop what they have.
//!
//! Mapping (event ids: `<thread id>:<messageId>` and `#<block index>`):
//!
//! * top-level fields but `messages` and `~debug` → one `provider.info`
//!   `session_meta` (timestamp: `created`), delivered once; `title` → a
//!   `provider.info` `title` once it is set; the first tree of
//!   `env.initial.trees` → `provider.info` `cwd` (its `file://` URI as a
//!   path): the directory Amp recorded, never guessed.
//! * `user` text blocks → one `user.message` (timestamp `meta.sentAt`);
//!   `image` blocks are counted as attachments; `tool_result` blocks →
//!   `assistant.tool.result` correlated by `toolUseID` (output: `run.result`,
//!   or `run.error`; an error unless `run.status` is `done`).
//! * `assistant` blocks: `thinking` → `assistant.thinking`, `text` →
//!   `assistant.message`, `tool_use` → `assistant.tool.call`; model and
//!   timestamp from `usage` (Amp records no time for some messages: those
//!   events have none).
//! * Anything else (other roles, unknown block types) → `provider.raw`.
//!   Only a document that is not a JSON object with a `messages` array is
//!   [`Malformed`].
//!
//! Commands: a user message's text blocks are what the human typed; tool
//! output travels in `tool_result` blocks and the model's words in
//! assistant messages, told apart by the document's structure, so in-chat
//! commands are read from the text blocks only.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{raw_json, Event, Payload, ProviderId, Source, SystemCategory};
use crate::provider::{
    stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};

pub const ID: ProviderId = ProviderId::Amp;

pub struct Amp;

impl Provider for Amp {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".local/share/amp/threads")]
    }

    /// `$XDG_DATA_HOME/amp/threads`.
    fn env_roots(&self, value: &Path) -> Vec<PathBuf> {
        vec![value.join("amp/threads")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Document
    }

    /// `T-<id>.json`, wherever it lies below the root.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.extension()?.to_str()? != "json" {
            return None;
        }
        let file_tag = stem(rel);
        if !file_tag.starts_with("T-") {
            return None;
        }
        Some(FileCtx {
            provider: ID,
            session_hint: file_tag.clone(),
            file_tag,
            subagent: None,
        })
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(ThreadParser {
            ctx: ctx.clone(),
            state: State::default(),
            pending: Vec::new(),
        })
    }

    /// A thread id (`"id": "T-…"`) and a `messages` key near the start.
    /// Pretty-printed like a Gemini chat document, which the first
    /// registered provider claims on a tie; within the roots the root
    /// decides.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let head = &head[..head.len().min(4096)];
        let text = String::from_utf8_lossy(head);
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.starts_with('{')
            && compact.contains("\"id\":\"T-")
            && compact.contains("\"messages\":[")
        {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Amp: one JSON thread document per thread, rewritten as it grows.",
            env_override: Some("XDG_DATA_HOME"),
        }
    }
}

/// What has been delivered from one thread so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Leading messages whose events are all delivered.
    settled: usize,
    /// `messageId` of the last settled message.
    settled_id: Option<i64>,
    /// Ids of events delivered from messages after the settled ones.
    emitted: Vec<String>,
    /// Whether `session_meta` (and `cwd`) has been delivered.
    meta: bool,
    /// Whether the title has been delivered.
    title: bool,
}

struct ThreadParser {
    ctx: FileCtx,
    state: State,
    /// Events of the last document not settled yet (for [`RecordParser::flush`]).
    pending: Vec<Event>,
}

/// One event and whether it is final.
struct Mapped {
    event: Event,
    settled: bool,
}

impl RecordParser for ThreadParser {
    fn record(
        &mut self,
        _offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let top: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let messages = match top.get("messages") {
            Some(Value::Array(m)) => m,
            _ => return Err(Malformed::WrongShape("no `messages` array".into())),
        };
        let thread = Thread::new(&self.ctx, &top);
        let n = messages.len();
        let st = &mut self.state;
        let rewritten = st.settled > n
            || (st.settled > 0 && message_id(&messages[st.settled - 1]) != st.settled_id);
        if rewritten {
            *st = State::default();
        }
        if !st.meta {
            thread.meta_events(&top).into_iter().for_each(&mut *out);
            st.meta = true;
        }
        if !st.title {
            if let Some(ev) = thread.title(&top) {
                out(ev);
                st.title = true;
            }
        }
        self.pending.clear();
        let mut all_settled = true;
        for (i, message) in messages.iter().enumerate().skip(st.settled) {
            let mapped = thread.map_message(i, message);
            let message_settled = mapped.iter().all(|m| m.settled);
            for m in mapped {
                if st.emitted.contains(&m.event.event_id) {
                    continue;
                }
                if m.settled {
                    st.emitted.push(m.event.event_id.clone());
                    out(m.event);
                } else {
                    self.pending.push(m.event);
                }
            }
            if all_settled && message_settled {
                // Every event of this message is out: forget their ids.
                let prefix = thread.message_prefix(i, message);
                st.emitted
                    .retain(|id| !(id == &prefix || id.starts_with(&format!("{prefix}#"))));
                st.settled = i + 1;
                st.settled_id = message_id(message);
            } else {
                all_settled = false;
            }
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut dyn FnMut(Event)) {
        self.pending.drain(..).for_each(out);
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.state = super::restore_state::<State>(state)?;
        Ok(())
    }
}

fn message_id(m: &Value) -> Option<i64> {
    m.get("messageId").and_then(Value::as_i64)
}

/// Milliseconds since the epoch as RFC 3339.
fn millis_time(v: &Value) -> Option<String> {
    crate::audit::rfc3339_from_millis(v.as_u64()?)
}

/// A `file://` URI as a path (percent escapes decoded); `None` for any
/// other scheme or an escape that is not UTF-8.
fn file_uri_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = rest.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    (path.starts_with('/') && !path.chars().any(char::is_control)).then_some(path)
}

/// A tool result's text: a string as it is, anything else as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Run statuses of a tool that has not finished.
fn running(status: &str) -> bool {
    matches!(
        status,
        "in-progress" | "queued" | "blocked-on-user" | "pending"
    )
}

struct Thread<'a> {
    ctx: &'a FileCtx,
    session_id: String,
}

impl<'a> Thread<'a> {
    fn new(ctx: &'a FileCtx, top: &Map<String, Value>) -> Thread<'a> {
        let session_id = top
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map_or_else(|| ctx.session_hint.clone(), str::to_owned);
        Thread { ctx, session_id }
    }

    fn event(&self, id: String, record: &str, index: usize, payload: Payload) -> Event {
        let source = Source {
            record: record.to_owned().into(),
            offset: index as u64,
            file: Some(self.ctx.file_tag.as_str().into()),
        };
        Event::new(ID, self.session_id.clone(), id, source, payload)
    }

    /// `session_meta` and `cwd`.
    fn meta_events(&self, top: &Map<String, Value>) -> Vec<Event> {
        let meta: Map<String, Value> = top
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "messages" | "~debug"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let created = top.get("created").and_then(millis_time);
        let tag = &self.ctx.file_tag;
        let mut ev = self.event(
            format!("{tag}#session_meta"),
            "thread",
            0,
            Payload::ProviderInfo {
                topic: "session_meta".into(),
                data: raw_json(&meta),
            },
        );
        ev.timestamp = created.as_deref().map(Into::into);
        let mut out = vec![ev];
        let cwd = top
            .get("env")
            .and_then(|e| e.get("initial"))
            .and_then(|i| i.get("trees"))
            .and_then(|t| t.get(0))
            .and_then(|t| t.get("uri"))
            .and_then(Value::as_str)
            .and_then(file_uri_path);
        if let Some(cwd) = cwd {
            let mut ev = self.event(
                format!("{tag}#cwd"),
                "thread",
                0,
                Payload::ProviderInfo {
                    topic: "cwd".into(),
                    data: raw_json(&cwd),
                },
            );
            ev.timestamp = created.map(Into::into);
            out.push(ev);
        }
        out
    }

    fn title(&self, top: &Map<String, Value>) -> Option<Event> {
        let title = top.get("title").and_then(Value::as_str)?;
        if title.trim().is_empty() {
            return None;
        }
        let mut ev = self.event(
            format!("{}#title", self.ctx.file_tag),
            "thread",
            0,
            Payload::ProviderInfo {
                topic: "title".into(),
                data: raw_json(title),
            },
        );
        ev.timestamp = top.get("created").and_then(millis_time).map(Into::into);
        Some(ev)
    }

    /// The event id of message `i` (its `messageId`, else its index).
    fn message_prefix(&self, i: usize, m: &Value) -> String {
        match message_id(m) {
            Some(id) => format!("{}:{id}", self.session_id),
            None => format!("{}:msg-{i}", self.session_id),
        }
    }

    fn raw(&self, id: String, record: &str, i: usize, v: &Value) -> Mapped {
        Mapped {
            event: self.event(
                id,
                record,
                i,
                Payload::ProviderRaw {
                    record: raw_json(v),
                },
            ),
            settled: true,
        }
    }

    fn map_message(&self, i: usize, m: &Value) -> Vec<Mapped> {
        let id = self.message_prefix(i, m);
        let role = m.get("role").and_then(Value::as_str).unwrap_or("message");
        let blocks = match m.get("content") {
            Some(Value::Array(b)) => b.as_slice(),
            _ => return vec![self.raw(id, role, i, m)],
        };
        let mut out = match role {
            "user" => self.map_user(i, &id, blocks),
            "assistant" => self.map_assistant(i, &id, m, blocks),
            _ => vec![self.raw(id, role, i, m)],
        };
        if role == "assistant" {
            let model = m
                .get("usage")
                .and_then(|u| u.get("model"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let ts = m
                .get("usage")
                .and_then(|u| u.get("timestamp"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            for o in &mut out {
                o.event.model = model.as_deref().map(Into::into);
                o.event.timestamp = ts.as_deref().map(Into::into);
            }
        } else {
            let ts = m
                .get("meta")
                .and_then(|x| x.get("sentAt"))
                .and_then(millis_time);
            for o in &mut out {
                o.event.timestamp = ts.as_deref().map(Into::into);
            }
        }
        out
    }

    fn map_user(&self, i: usize, id: &str, blocks: &[Value]) -> Vec<Mapped> {
        let mut out = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        let mut attachments = 0u32;
        let mut rest = Vec::new();
        for (n, b) in blocks.iter().enumerate() {
            let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
            match (kind, b.get("text").and_then(Value::as_str)) {
                ("text", Some(t)) => texts.push(t),
                ("image", _) => attachments += 1,
                ("tool_result", _) => match self.tool_result(i, id, n, b) {
                    Some(r) => rest.push(r),
                    None => rest.push(self.raw(format!("{id}#{n}"), "user", i, b)),
                },
                _ => rest.push(self.raw(format!("{id}#{n}"), "user", i, b)),
            }
        }
        if !texts.is_empty() || attachments > 0 {
            out.push(Mapped {
                event: self.event(
                    id.to_owned(),
                    "user",
                    i,
                    Payload::UserMessage {
                        text: texts.join("\n\n"),
                        attachments,
                    },
                ),
                settled: true,
            });
        }
        out.extend(rest);
        out
    }

    fn tool_result(&self, i: usize, id: &str, n: usize, b: &Value) -> Option<Mapped> {
        let call = b.get("toolUseID").and_then(Value::as_str)?;
        let run = b.get("run")?;
        let status = run.get("status").and_then(Value::as_str).unwrap_or("done");
        let output = match (run.get("result"), run.get("error")) {
            (Some(r), _) if !r.is_null() => text_of(r),
            (_, Some(e)) => text_of(e),
            _ => String::new(),
        };
        Some(Mapped {
            event: self.event(
                format!("{id}#{n}"),
                "user/tool_result",
                i,
                Payload::ToolResult {
                    tool_call_id: call.to_owned(),
                    output: output.into(),
                    is_error: status != "done" && !running(status),
                },
            ),
            settled: !running(status),
        })
    }

    fn map_assistant(&self, i: usize, id: &str, m: &Value, blocks: &[Value]) -> Vec<Mapped> {
        let streaming = m
            .get("state")
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            == Some("streaming");
        let mut out = Vec::new();
        for (n, b) in blocks.iter().enumerate() {
            let eid = if n == 0 {
                id.to_owned()
            } else {
                format!("{id}#{n}")
            };
            let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
            let payload = match kind {
                "text" => b
                    .get("text")
                    .and_then(Value::as_str)
                    .map(|t| Payload::AssistantMessage { text: t.to_owned() }),
                "thinking" => b
                    .get("thinking")
                    .and_then(Value::as_str)
                    .map(|t| Payload::Thinking { text: t.to_owned() }),
                "tool_use" => match (
                    b.get("id").and_then(Value::as_str),
                    b.get("name").and_then(Value::as_str),
                ) {
                    (Some(call), Some(name)) => Some(Payload::ToolCall {
                        tool_call_id: call.to_owned(),
                        name: name.to_owned(),
                        input: raw_json(b.get("input").unwrap_or(&Value::Null)),
                    }),
                    _ => None,
                },
                _ => None,
            };
            let record = format!("assistant/{kind}");
            let mapped = match payload {
                Some(Payload::AssistantMessage { text } | Payload::Thinking { text })
                    if text.trim().is_empty() =>
                {
                    continue
                }
                Some(p) => Mapped {
                    event: self.event(eid, &record, i, p),
                    settled: !streaming,
                },
                None => Mapped {
                    settled: !streaming,
                    ..self.raw(eid, &record, i, b)
                },
            };
            out.push(mapped);
        }
        if let Some(err) = m
            .get("state")
            .filter(|s| s.get("type").and_then(Value::as_str) == Some("error"))
        {
            out.push(Mapped {
                event: self.event(
                    format!("{id}#error"),
                    "assistant/state",
                    i,
                    Payload::SystemMessage {
                        category: SystemCategory::Error,
                        text: err
                            .get("error")
                            .and_then(|e| e.get("message").or(Some(e)))
                            .map(text_of)
                            .unwrap_or_else(|| "error".into()),
                    },
                ),
                settled: true,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
