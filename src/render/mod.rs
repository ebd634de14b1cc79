//! Renderers: canonical events to Markdown ([`markdown`]) and JSONL
//! ([`jsonl`]).
//!
//! Invariants:
//! - Renderers write to any [`std::io::Write`] and do no other I/O.
//! - They stream: state is bounded (the current section, a few pending
//!   tool-call names), never the session; each event is written as it
//!   comes. Wrap files in a `BufWriter`.
//! - Deterministic: the same events and options give byte-identical output.
//!
//! [`MetaCollector`] folds events into the [`SessionMeta`] that the
//! Markdown frontmatter shows.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{Event, Payload};
use crate::redact::Redactor;

mod commonmark;
mod controls;
pub mod html;
pub mod jsonl;
pub mod markdown;

#[cfg(test)]
mod tests;

/// Longest title, in characters, before it is cut.
pub const TITLE_MAX_CHARS: usize = 80;

/// Title of a session with no human message and no provider title.
pub const UNTITLED: &str = "Untitled session";

/// Distinct models kept as participants; more are not listed.
const MAX_PARTICIPANTS: usize = 32;

/// What the Markdown frontmatter says about a session (SPEC §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// Stable id derived from provider and session id ([`session_key`]).
    pub id: String,
    pub title: String,
    pub provider: String,
    pub session_id: String,
    /// `user`, then each distinct model in first-seen order.
    pub participants: Vec<String>,
    /// First timestamp seen, as the provider wrote it.
    pub created: Option<String>,
    /// Last timestamp seen, as the provider wrote it.
    pub updated: Option<String>,
    /// Recording ids writing into the file; filled in by the caller.
    pub recording_ids: Vec<String>,
}

/// The stable id of a session: `<provider>-<16 hex digits>` of a SHA-256
/// over provider and session id. Safe in file names and YAML.
pub fn session_key(provider: &str, session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(provider.as_bytes());
    h.update([0u8]);
    h.update(session_id.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(provider.len() + 17);
    out.push_str(provider);
    out.push('-');
    for b in digest.iter().take(8) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Folds events, one at a time, into a [`SessionMeta`]. Memory is bounded:
/// it keeps the title, two timestamps and the participant list.
///
/// This is the one place a session's title and participants are derived,
/// and it redacts them itself: every consumer (frontmatter, H1, generated
/// file names, audit targets) gets the redacted strings, whether or not
/// the events it was given were redacted.
#[derive(Debug, Clone)]
pub struct MetaCollector {
    redactor: Arc<Redactor>,
    provider: Option<&'static str>,
    session_id: Option<String>,
    title: Option<String>,
    provider_title: Option<String>,
    models: Vec<String>,
    /// The last model name looked at, as the provider wrote it: the next
    /// event of the same model needs no redaction pass.
    last_model: Option<String>,
    saw_assistant: bool,
    created: Option<String>,
    updated: Option<String>,
}

/// Put `v` in `slot`, reusing its allocation: a timestamp per event.
fn set_str(slot: &mut Option<String>, v: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(v);
        }
        None => *slot = Some(v.to_owned()),
    }
}

impl MetaCollector {
    pub fn new(redactor: Arc<Redactor>) -> MetaCollector {
        MetaCollector {
            redactor,
            provider: None,
            session_id: None,
            title: None,
            provider_title: None,
            models: Vec::new(),
            last_model: None,
            saw_assistant: false,
            created: None,
            updated: None,
        }
    }

    /// The newest provider timestamp observed.
    pub fn updated(&self) -> Option<&str> {
        self.updated.as_deref()
    }

    pub fn observe(&mut self, ev: &Event) {
        if self.provider.is_none() {
            self.provider = Some(ev.provider.as_str());
            self.session_id = Some(ev.session_id.to_string());
        }
        // Earliest and latest: a session's subagent files are read after
        // its main transcript, so stream order is not time order.
        if let Some(ts) = ev.timestamp.as_deref() {
            if self.created.as_deref().is_none_or(|c| ts < c) {
                set_str(&mut self.created, ts);
            }
            if self.updated.as_deref().is_none_or(|u| ts > u) {
                set_str(&mut self.updated, ts);
            }
        }
        match &ev.payload {
            Payload::UserMessage { text, .. } if self.title.is_none() && ev.is_human_message() => {
                self.title = title_from_message(&self.redactor, text);
            }
            Payload::ProviderInfo { topic, data } if topic == "title" => {
                if let Some(t) = title_from_info(&self.redactor, data.get()) {
                    self.provider_title = Some(t);
                }
            }
            Payload::AssistantMessage { .. }
            | Payload::Thinking { .. }
            | Payload::ToolCall { .. }
            | Payload::DecisionPrompt { .. } => {
                self.saw_assistant = true;
                if let Some(model) = ev
                    .model
                    .as_deref()
                    .filter(|m| self.last_model.as_deref() != Some(*m))
                {
                    set_str(&mut self.last_model, model);
                    let model = commonmark::one_line(&self.redactor.redact_str(model).text);
                    if !model.is_empty()
                        && model != "user"
                        && self.models.len() < MAX_PARTICIPANTS
                        && !self.models.contains(&model)
                    {
                        // Exact: a session's list is kept as long as it is
                        // followed, and most name one model.
                        self.models.reserve_exact(1);
                        self.models.push(model);
                    }
                }
            }
            _ => {}
        }
    }

    pub fn finish(self) -> SessionMeta {
        let provider = self.provider.unwrap_or_default().to_owned();
        let session_id = self.session_id.unwrap_or_default();
        let mut participants = vec!["user".to_owned()];
        if self.models.is_empty() && self.saw_assistant {
            participants.push("assistant".to_owned());
        }
        participants.extend(self.models);
        SessionMeta {
            id: session_key(&provider, &session_id),
            title: self
                .title
                .or(self.provider_title)
                .unwrap_or_else(|| UNTITLED.to_owned()),
            provider,
            session_id,
            participants,
            created: self.created,
            updated: self.updated,
            recording_ids: Vec::new(),
        }
    }
}

/// A title from the first human message: secrets redacted (in the whole
/// message, before any cut, so no piece of a secret is left that its
/// detector would no longer recognise), in-chat command lines dropped,
/// whitespace collapsed, cut to [`TITLE_MAX_CHARS`]. `None` when nothing is
/// left.
pub fn title_from_message(redactor: &Redactor, text: &str) -> Option<String> {
    // The whole message: a private key cut off by the length limit below
    // would leave lines its detector no longer sees as part of a key.
    let text = redactor.redact_str(text).text;
    let mut kept = String::with_capacity(text.len().min(4 * TITLE_MAX_CHARS));
    for line in text.lines() {
        let t = line.trim_start();
        let is_command = t
            .strip_prefix("::")
            .and_then(|r| r.chars().next())
            .is_some_and(|c| c.is_ascii_alphabetic());
        if !is_command {
            kept.push_str(line);
            kept.push(' ');
        }
        // Enough text for a title: stop copying long messages.
        if kept.len() > 8 * TITLE_MAX_CHARS {
            break;
        }
    }
    let line = commonmark::one_line(&kept);
    if line.is_empty() {
        return None;
    }
    Some(cut_title(&line))
}

/// Cut to [`TITLE_MAX_CHARS`] characters, at a word break when one is near
/// the end, with an ellipsis.
fn cut_title(line: &str) -> String {
    if line.chars().count() <= TITLE_MAX_CHARS {
        return line.to_owned();
    }
    let limit = TITLE_MAX_CHARS - 1;
    let end = line
        .char_indices()
        .nth(limit)
        .map_or(line.len(), |(i, _)| i);
    let head = line.get(..end).unwrap_or(line);
    let head = match head.rfind(' ') {
        Some(i)
            if head
                .get(..i)
                .is_some_and(|h| h.chars().count() >= limit * 3 / 4) =>
        {
            head.get(..i).unwrap_or(head)
        }
        _ => head,
    };
    format!("{}…", head.trim_end())
}

/// A provider title: a JSON string, or an object with `title` / `aiTitle`.
fn title_from_info(redactor: &Redactor, json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let s = match &v {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Object(m) => m
            .get("title")
            .or_else(|| m.get("aiTitle"))
            .and_then(|t| t.as_str())?,
        _ => return None,
    };
    let line = commonmark::one_line(&redactor.redact_str(s).text);
    (!line.is_empty()).then(|| cut_title(&line))
}
