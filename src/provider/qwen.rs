//! Qwen Code provider: `~/.qwen/projects/<project>/chats/<sessionId>.jsonl`.
//!
//! Qwen Code (a Gemini CLI fork) appends one JSON record a line to one file
//! per session ([`SourceKind::Jsonl`]); a resumed session appends to the
//! same file. `<project>` is the project directory with every character
//! that is not a letter or digit turned into `-`: lossy, so it is never
//! decoded; the project directory is each record's own `cwd`, delivered in
//! a `provider.info` `session_meta` event (and shown by `kato sessions`).
//! `QWEN_RUNTIME_DIR` moves everything the CLI writes at run time (the
//! chats included) from `~/.qwen` to that directory: the root is then
//! `$QWEN_RUNTIME_DIR/projects` ([`Provider::env_roots`]). The root is
//! never `~/.qwen` itself, which holds the CLI's credentials
//! (`oauth_creds.json`, `mcp-oauth-tokens.json`) and settings.
//!
//! A record: `uuid`, `parentUuid`, `sessionId`, `timestamp`, `type` (`user`,
//! `assistant`, `tool_result`, `system`), `subtype`, `cwd`, `version`,
//! `gitBranch`, `model`, `message` (a Gemini API `Content`: `role` and
//! `parts`), `usageMetadata`, `toolCallResult`, `systemPayload`; subagent
//! work has `isSidechain`/`agentId`/`agentName`; a record copied into a
//! forked session (`/branch`) has `forkedFrom`.
//!
//! Mapping (event ids in parentheses; `u` is the record's `uuid`, or
//! `<file tag>:<offset>` when it has none):
//!
//! * a record whose `cwd`, `version` or `gitBranch` differ from the last
//!   ones delivered → first `provider.info` `session_meta` (`u#meta`);
//! * `user` without subtype (and `mid_turn_user_message`,
//!   `realtime_message`: text the human typed while the agent worked, or
//!   spoke) → `user.message` (`u`) with what the human typed: the
//!   `systemPayload.displayText` newer versions record, else the text parts
//!   before the first part the CLI adds itself: the text of `@file`
//!   references (from a part opening with `--- Content from referenced
//!   files ---`) → injected context (`u#context`), and hook output wrapped
//!   in `<qwen:user-prompt-submit-context>` (or
//!   `<qwen:session-start-context>`) → injected context
//!   (`u#hook-context`). Images and files are counted as attachments. In
//!   subagent work user-role text is never the human's: the first of each
//!   agent is its prompt, later ones model input;
//! * `user` with subtype `notification` or `cron` → notice; any other
//!   subtype (`goal_runtime`, …) → model input;
//! * `assistant` → per part, in order: `assistant.thinking`
//!   (`u#thought-n`) for `thought: true` text, `assistant.message` (`u`
//!   for the first, `u#text-n` after), `assistant.tool.call` (`u#call-n`,
//!   the call id being `functionCall.id`); then `provider.info`
//!   `token_count` (`u#tokens`) for `usageMetadata`. Every event carries
//!   the record's `model`;
//! * `tool_result` → `assistant.tool.result` (`u#result-n`) per
//!   `functionResponse` part, correlated by its id (else
//!   `toolCallResult.callId`); its `output` or `error`, failed when the
//!   response is an error or `toolCallResult.status` says `error` or
//!   `cancelled`; text parts after a response are part of its output;
//! * `system`: `chat_compression` → `compaction` system message (`u`, the
//!   summary the model continues from) and `provider.info`
//!   `chat_compression` (`u#info`, token counts); `slash_command`
//!   invocation → command system message (`u`, the command typed); its
//!   result → command system message with the text the CLI showed, or
//!   `provider.info` `slash_command` when it showed none; `custom_title` →
//!   `provider.info` `title`; `rewind` → notice;
//!   `notification`/`background_task_completed` → notice; every other
//!   subtype (`ui_telemetry`, `at_command`, `attribution_snapshot`, …) →
//!   `provider.info` named after it, holding its `systemPayload`;
//! * anything else that is JSON → `provider.raw`; a part of an unknown
//!   kind adds the record as `provider.raw` (`u#raw`).
//!
//! Events carry the record's `timestamp`. A record with `forkedFrom` is a
//! copy of another session's history: its events are
//! [`Event::copied`], so a command in it never runs again.
//!
//! Each line is read in one pass where it has the usual shape (tool
//! output decoded once); anything unusual is read again on a general
//! path; `read_both_ways` and the `qwen` fuzz target check that both give
//! the same events.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::gemini::{self, Outputs};
use super::gemini_jsonl::string;
use crate::event::{raw_from_str, Event, Payload, ProviderId, Source, Subagent, SystemCategory};
use crate::provider::{
    first_line_object, offset_id, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser,
    Sniff, SourceKind,
};

const ID: ProviderId = ProviderId::Qwen;

/// Tags the CLI wraps hook output in before it joins the human's words.
const HOOK_TAGS: [&str; 2] = [
    "<qwen:user-prompt-submit-context>",
    "<qwen:session-start-context>",
];

/// Label of subagent work without an `agentName`.
const SUBAGENT_LABEL: &str = "subagent";

/// Subagents whose prompt has been seen, remembered per file.
const AGENTS: usize = 256;

/// The `qwen` provider.
pub struct Qwen;

impl Provider for Qwen {
    fn id(&self) -> ProviderId {
        ID
    }

    fn default_roots(&self, home: &Path) -> Vec<PathBuf> {
        vec![home.join(".qwen").join("projects")]
    }

    /// `QWEN_RUNTIME_DIR` takes the place of `~/.qwen` for the chats.
    fn env_roots(&self, value: &Path) -> Vec<PathBuf> {
        vec![value.join("projects")]
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }

    /// `…/chats/<sessionId>.jsonl`; only trailing components are looked at.
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        if rel.extension()? != "jsonl" || rel.parent()?.file_name()? != "chats" {
            return None;
        }
        let name = stem(rel);
        Some(FileCtx {
            provider: ID,
            file_tag: name.clone(),
            session_hint: name,
            subagent: None,
        })
    }

    /// Gemini `Content` parts under `message`, a `systemPayload`, or a
    /// `tool_result` record: only Qwen Code writes these.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let Some(o) = first_line_object(head) else {
            return Sniff::No;
        };
        let parts = o
            .get("message")
            .and_then(|m| m.get("parts"))
            .is_some_and(|p| p.is_array());
        let tool_result = o.get("type").and_then(|t| t.as_str()) == Some("tool_result");
        if (parts || o.contains_key("systemPayload") || tool_result) && o.contains_key("uuid") {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description:
                "Qwen Code: one JSON Lines chat per session under projects/<project>/chats.",
            env_override: Some("QWEN_RUNTIME_DIR"),
        }
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(QwenParser::new(ctx))
    }
}

/// What the parser carries between records, persisted with the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// `cwd`, `version`, `gitBranch` last delivered in `session_meta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meta: Option<[Option<String>; 3]>,
    /// Subagents whose prompt has been delivered.
    #[serde(default)]
    agents: Vec<String>,
}

struct QwenParser {
    ctx: FileCtx,
    st: State,
    /// Read lines on the fast path first (false only in tests of the
    /// general path).
    fast: bool,
}

/// One record. `R` is how a `functionResponse.response` is read: its
/// string `output`/`error` decoded in the same pass ([`Outputs`], the fast
/// path), or left raw (the general path, which takes any value).
#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
struct Rec<'a, R> {
    #[serde(default, borrow)]
    uuid: Option<&'a RawValue>,
    #[serde(rename = "sessionId", default, borrow)]
    session_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    subtype: Option<&'a RawValue>,
    #[serde(default, borrow)]
    cwd: Option<&'a RawValue>,
    #[serde(default, borrow)]
    version: Option<&'a RawValue>,
    #[serde(rename = "gitBranch", default, borrow)]
    git_branch: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<Message<'a, R>>,
    #[serde(rename = "usageMetadata", default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(rename = "toolCallResult", default, borrow)]
    tool_call_result: Option<CallResult<'a>>,
    #[serde(rename = "systemPayload", default, borrow)]
    payload: Option<&'a RawValue>,
    #[serde(rename = "isSidechain", default, borrow)]
    is_sidechain: Option<&'a RawValue>,
    #[serde(rename = "agentId", default, borrow)]
    agent_id: Option<&'a RawValue>,
    #[serde(rename = "agentName", default, borrow)]
    agent_name: Option<&'a RawValue>,
    #[serde(rename = "forkedFrom", default, borrow)]
    forked_from: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
struct Message<'a, R> {
    #[serde(default, borrow)]
    parts: Option<Vec<Part<'a, R>>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
struct Part<'a, R> {
    #[serde(default, borrow, deserialize_with = "crate::provider::opt_str")]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(rename = "functionCall", default, borrow)]
    function_call: Option<Call<'a>>,
    #[serde(rename = "functionResponse", default)]
    function_response: Option<Response<R>>,
    #[serde(rename = "inlineData", default)]
    inline_data: Option<IgnoredAny>,
    #[serde(rename = "fileData", default)]
    file_data: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
struct Response<R> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    response: Option<R>,
}

/// The fields of `toolCallResult` read (its `resultDisplay` repeats the
/// output for the CLI's screen and is not used).
#[derive(Deserialize)]
struct CallResult<'a> {
    #[serde(rename = "callId", default, borrow)]
    call_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    status: Option<&'a RawValue>,
}

/// A tool response's output text and whether it is an error.
trait Output {
    fn output(self) -> (String, bool);
}

impl Output for Outputs {
    fn output(self) -> (String, bool) {
        match self {
            Outputs(Some(o), None) => (o, false),
            Outputs(None, Some(e)) => (e, true),
            Outputs(Some(o), Some(e)) => (format!("{o}\n{e}"), true),
            // Refused by the fast path's reading: never reached.
            Outputs(None, None) => (String::new(), false),
        }
    }
}

impl Output for &RawValue {
    fn output(self) -> (String, bool) {
        gemini::response_output(Some(self))
    }
}

/// The fast path's reading of `response`: string `output` and/or `error`;
/// anything else fails the line over to the general path.
struct Strict(Outputs);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Outputs::deserialize(d)? {
            Outputs(None, None) => Err(serde::de::Error::custom("no output")),
            o => Ok(Strict(o)),
        }
    }
}

impl Output for Strict {
    fn output(self) -> (String, bool) {
        self.0.output()
    }
}

/// The text parts joined, as the CLI joins them.
fn join_text<'p, R: 'p>(parts: impl IntoIterator<Item = &'p Part<'p, R>>) -> String {
    let mut s = String::new();
    for p in parts {
        if let Some(t) = &p.text {
            s.push_str(t);
        }
    }
    s
}

/// Where the CLI's own additions to a user message begin, and whether a
/// part is hook output.
fn is_hook(text: &str) -> bool {
    let t = text.trim_start();
    HOOK_TAGS.iter().any(|tag| t.starts_with(tag))
}

fn is_references(text: &str) -> bool {
    text.trim_start().starts_with(gemini::REFERENCES_MARKER)
}

/// A topic name from a subtype: a plain lowercase word, else `system`.
fn topic(subtype: Option<&str>) -> String {
    match subtype {
        Some(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()) =>
        {
            s.to_owned()
        }
        _ => "system".to_owned(),
    }
}

/// What one record maps to, before the common fields are set.
struct Out {
    events: Vec<(String, Payload)>,
    /// Add the record itself as `provider.raw` (a part of an unknown kind).
    raw: bool,
}

impl Out {
    fn push(&mut self, id: String, payload: Payload) {
        self.events.push((id, payload));
    }
}

fn system(category: SystemCategory, text: String) -> Payload {
    Payload::SystemMessage { category, text }
}

fn info(topic: &str, data: &str) -> Payload {
    Payload::ProviderInfo {
        topic: topic.to_owned(),
        data: raw_from_str(data),
    }
}

impl QwenParser {
    fn new(ctx: &FileCtx) -> QwenParser {
        QwenParser {
            ctx: ctx.clone(),
            st: State::default(),
            fast: true,
        }
    }

    /// Map one line; false when it is no record of a known shape.
    fn line(&mut self, offset: u64, text: &str, out: &mut dyn FnMut(Event)) -> bool {
        if self.fast {
            if let Ok(rec) = serde_json::from_str::<Rec<'_, Strict>>(text) {
                return self.map(offset, text, rec, out);
            }
        }
        match serde_json::from_str::<Rec<'_, &RawValue>>(text) {
            Ok(rec) => self.map(offset, text, rec, out),
            Err(_) => false,
        }
    }

    fn map<R: Output>(
        &mut self,
        offset: u64,
        text: &str,
        rec: Rec<'_, R>,
        out: &mut dyn FnMut(Event),
    ) -> bool {
        let Some(kind) = string(rec.kind) else {
            return false;
        };
        let base = string(rec.uuid).unwrap_or_else(|| offset_id(&self.ctx.file_tag, offset, 0));
        let session = string(rec.session_id).unwrap_or_else(|| self.ctx.session_hint.clone());
        let timestamp = string(rec.timestamp);
        let model = string(rec.model);
        let subtype = string(rec.subtype);
        let agent = string(rec.agent_id);
        let sidechain = rec.is_sidechain.is_some_and(|v| v.get().trim() == "true");
        let subagent = (sidechain || agent.is_some()).then(|| Subagent {
            id: agent.clone(),
            label: Some(string(rec.agent_name).unwrap_or_else(|| SUBAGENT_LABEL.to_owned())),
        });
        let copied = rec
            .forked_from
            .is_some_and(|v| v.get().trim_start().starts_with('{'));
        let mut o = Out {
            events: Vec::new(),
            raw: false,
        };
        let meta = [string(rec.cwd), string(rec.version), string(rec.git_branch)];
        if meta.iter().any(Option::is_some) && self.st.meta.as_ref() != Some(&meta) {
            let data = serde_json::json!({
                "sessionId": session, "cwd": meta[0], "version": meta[1], "gitBranch": meta[2],
            });
            o.push(
                format!("{base}#meta"),
                info("session_meta", &data.to_string()),
            );
            self.st.meta = Some(meta);
        }
        let parts = rec.message.and_then(|m| m.parts).unwrap_or_default();
        match kind.as_str() {
            "user" => self.user(
                &base,
                subtype.as_deref(),
                rec.payload,
                parts,
                subagent.as_ref(),
                &mut o,
            ),
            "assistant" => assistant(&base, parts, &mut o),
            "tool_result" => tool_result(&base, parts, rec.tool_call_result, &mut o),
            "system" => system_record(&base, subtype.as_deref(), rec.payload, &mut o),
            _ => return false,
        }
        if kind == "assistant" {
            if let Some(usage) = rec.usage.filter(|u| u.get().trim_start().starts_with('{')) {
                o.push(format!("{base}#tokens"), info("token_count", usage.get()));
            }
        }
        if o.raw {
            let record = raw_from_str(text);
            o.push(format!("{base}#raw"), Payload::ProviderRaw { record });
        }
        let record = match &subtype {
            Some(s) => format!("{kind}/{s}"),
            None => kind,
        };
        for (id, payload) in o.events {
            let source = Source {
                record: record.clone().into(),
                offset,
                file: Some(self.ctx.file_tag.as_str().into()),
            };
            let mut ev = Event::new(ID, session.clone(), id, source, payload);
            ev.timestamp = timestamp.as_deref().map(Into::into);
            ev.subagent.clone_from(&subagent);
            ev.copied = copied;
            if !matches!(
                ev.payload,
                Payload::ProviderInfo { .. } | Payload::ProviderRaw { .. }
            ) || ev.event_id.ends_with("#tokens")
            {
                ev.model = model.as_deref().map(Into::into);
            }
            out(ev);
        }
        true
    }

    fn user<R: Output>(
        &mut self,
        base: &str,
        subtype: Option<&str>,
        payload: Option<&RawValue>,
        parts: Vec<Part<'_, R>>,
        subagent: Option<&Subagent>,
        o: &mut Out,
    ) {
        let display = || {
            payload.and_then(|p| {
                serde_json::from_str::<DisplayText<'_>>(p.get())
                    .ok()
                    .and_then(|d| string(d.display_text))
            })
        };
        if let Some(agent) = subagent {
            let key = agent.id.clone().unwrap_or_default();
            let category = if self.st.agents.contains(&key) {
                SystemCategory::ModelInput
            } else {
                if self.st.agents.len() == AGENTS {
                    self.st.agents.remove(0);
                }
                self.st.agents.push(key);
                SystemCategory::SubagentPrompt
            };
            let text = join_text(&parts);
            if !text.is_empty() {
                o.push(base.to_owned(), system(category, text));
            }
            responses(base, parts, o);
            return;
        }
        match subtype {
            None | Some("mid_turn_user_message" | "realtime_message") => {}
            Some("notification" | "cron") => {
                let text = display().unwrap_or_else(|| join_text(&parts));
                o.push(base.to_owned(), system(SystemCategory::Notice, text));
                return;
            }
            Some(_) => {
                let text = join_text(&parts);
                o.push(base.to_owned(), system(SystemCategory::ModelInput, text));
                responses(base, parts, o);
                return;
            }
        }
        // The human's words, then what the CLI added after them.
        let cut = parts
            .iter()
            .position(|p| {
                p.text
                    .as_deref()
                    .is_some_and(|t| is_hook(t) || is_references(t))
            })
            .unwrap_or(parts.len());
        let (typed_parts, added) = parts.split_at(cut);
        let typed = join_text(typed_parts);
        let mut context = String::new();
        let mut hook = String::new();
        for p in added {
            if let Some(t) = &p.text {
                if is_hook(t) {
                    hook.push_str(t);
                } else {
                    context.push_str(t);
                }
            }
        }
        let (human, extra) = match display() {
            Some(d) if d == typed => (d, String::new()),
            Some(d) => (d, typed),
            // The typed words can hold the marker when an older CLI joined
            // the parts: whatever follows it is file text.
            None => gemini::split_references(typed),
        };
        let context = extra + &context;
        let attachments = parts
            .iter()
            .filter(|p| p.inline_data.is_some() || p.file_data.is_some())
            .count();
        if !human.trim().is_empty() || attachments > 0 {
            o.push(
                base.to_owned(),
                Payload::UserMessage {
                    text: human,
                    attachments: u32::try_from(attachments).unwrap_or(u32::MAX),
                },
            );
        }
        if !context.is_empty() {
            o.push(
                format!("{base}#context"),
                system(SystemCategory::InjectedContext, context),
            );
        }
        if !hook.is_empty() {
            o.push(
                format!("{base}#hook-context"),
                system(SystemCategory::InjectedContext, hook),
            );
        }
        o.raw |= parts.iter().any(Part::unknown);
        responses(base, parts, o);
    }
}

impl<R> Part<'_, R> {
    /// A part of none of the kinds read here.
    fn unknown(&self) -> bool {
        self.text.is_none()
            && self.function_call.is_none()
            && self.function_response.is_none()
            && self.inline_data.is_none()
            && self.file_data.is_none()
    }
}

#[derive(Deserialize)]
struct DisplayText<'a> {
    #[serde(rename = "displayText", default, borrow)]
    display_text: Option<&'a RawValue>,
}

fn assistant<R: Output>(base: &str, parts: Vec<Part<'_, R>>, o: &mut Out) {
    let mut texts = 0;
    let mut unknown = false;
    let mut results = Vec::new();
    for (n, p) in parts.into_iter().enumerate() {
        unknown |= p.unknown();
        if let Some(call) = p.function_call {
            let input = call.args.map_or_else(
                || raw_from_str("{}"),
                |a| raw_from_str(&gemini::compact_string(a.get())),
            );
            o.push(
                format!("{base}#call-{n}"),
                Payload::ToolCall {
                    tool_call_id: call.id.unwrap_or_else(|| format!("{base}#call-{n}")),
                    name: call.name.unwrap_or_default(),
                    input,
                },
            );
        }
        if let Some(fr) = p.function_response {
            results.push((n, fr));
        }
        let Some(text) = p.text else { continue };
        if text.is_empty() {
            continue;
        }
        if p.thought == Some(true) {
            o.push(
                format!("{base}#thought-{n}"),
                Payload::Thinking {
                    text: text.into_owned(),
                },
            );
        } else {
            let id = if texts == 0 {
                base.to_owned()
            } else {
                format!("{base}#text-{n}")
            };
            texts += 1;
            o.push(
                id,
                Payload::AssistantMessage {
                    text: text.into_owned(),
                },
            );
        }
    }
    for (n, fr) in results {
        push_result(base, n, fr, None, false, o);
    }
    o.raw |= unknown;
}

fn tool_result<R: Output>(
    base: &str,
    parts: Vec<Part<'_, R>>,
    call: Option<CallResult<'_>>,
    o: &mut Out,
) {
    let call_id = call.as_ref().and_then(|c| string(c.call_id));
    let failed = call
        .as_ref()
        .and_then(|c| string(c.status))
        .is_some_and(|s| s == "error" || s == "cancelled");
    let mut unknown = false;
    let start = o.events.len();
    let mut loose = String::new();
    for (n, p) in parts.into_iter().enumerate() {
        unknown |= p.unknown();
        if let Some(fr) = p.function_response {
            push_result(base, n, fr, call_id.as_deref(), failed, o);
            continue;
        }
        let extra = match (&p.text, p.inline_data.is_some() || p.file_data.is_some()) {
            (Some(t), _) => t.to_string(),
            (None, true) => "[attachment]".to_owned(),
            (None, false) => continue,
        };
        // Text sent with a response belongs to its output.
        match o.events[start..].last_mut() {
            Some((_, Payload::ToolResult { output, .. })) => {
                let output = output.make_mut();
                if !output.is_empty() && !extra.is_empty() {
                    output.push('\n');
                }
                output.push_str(&extra);
            }
            _ => loose.push_str(&extra),
        }
    }
    if !loose.is_empty() {
        o.push(base.to_owned(), system(SystemCategory::ModelInput, loose));
    }
    o.raw |= unknown;
}

/// `functionResponse` parts of user-role records other than tool results.
fn responses<R: Output>(base: &str, parts: Vec<Part<'_, R>>, o: &mut Out) {
    for (n, p) in parts.into_iter().enumerate() {
        if let Some(fr) = p.function_response {
            push_result(base, n, fr, None, false, o);
        }
    }
}

fn push_result<R: Output>(
    base: &str,
    n: usize,
    fr: Response<R>,
    call_id: Option<&str>,
    failed: bool,
    o: &mut Out,
) {
    let (output, is_error) = fr.response.map_or((String::new(), false), Output::output);
    let tool_call_id = fr
        .id
        .or_else(|| call_id.map(str::to_owned))
        .unwrap_or_default();
    o.push(
        format!("{base}#result-{n}"),
        Payload::ToolResult {
            tool_call_id,
            output: output.into(),
            is_error: is_error || failed,
        },
    );
}

/// The payloads of `system` records read here.
#[derive(Deserialize)]
struct SystemPayload<'a> {
    #[serde(default, borrow)]
    phase: Option<&'a RawValue>,
    #[serde(rename = "rawCommand", default, borrow)]
    raw_command: Option<&'a RawValue>,
    #[serde(rename = "outputHistoryItems", default, borrow)]
    output_items: Option<Vec<&'a RawValue>>,
    #[serde(rename = "customTitle", default, borrow)]
    custom_title: Option<&'a RawValue>,
    #[serde(rename = "titleSource", default, borrow)]
    title_source: Option<&'a RawValue>,
    #[serde(rename = "truncatedCount", default, borrow)]
    truncated: Option<&'a RawValue>,
    #[serde(rename = "displayText", default, borrow)]
    display_text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    info: Option<&'a RawValue>,
    #[serde(rename = "compressedHistory", default, borrow)]
    compressed: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct ItemText<'a> {
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    role: Option<&'a RawValue>,
    #[serde(default, borrow)]
    parts: Option<Vec<ItemText<'a>>>,
}

fn system_record(base: &str, subtype: Option<&str>, payload: Option<&RawValue>, o: &mut Out) {
    let data = payload.map_or("{}", RawValue::get);
    let p = payload
        .and_then(|p| serde_json::from_str::<SystemPayload<'_>>(p.get()).ok())
        .unwrap_or(SystemPayload {
            phase: None,
            raw_command: None,
            output_items: None,
            custom_title: None,
            title_source: None,
            truncated: None,
            display_text: None,
            info: None,
            compressed: None,
        });
    match subtype {
        Some("chat_compression") => {
            o.push(
                base.to_owned(),
                system(SystemCategory::Compaction, summary(&p)),
            );
            let info_data = p.info.map_or("{}", RawValue::get);
            o.push(format!("{base}#info"), info("chat_compression", info_data));
        }
        Some("slash_command") => {
            let command = string(p.raw_command).unwrap_or_default();
            if string(p.phase).as_deref() == Some("invocation") {
                o.push(
                    base.to_owned(),
                    system(SystemCategory::CommandWrapper, command),
                );
                return;
            }
            let shown: Vec<String> = p
                .output_items
                .iter()
                .flatten()
                .filter_map(|i| serde_json::from_str::<ItemText<'_>>(i.get()).ok())
                .filter_map(|i| string(i.text))
                .filter(|t| !t.is_empty())
                .collect();
            if shown.is_empty() {
                o.push(base.to_owned(), info("slash_command", data));
            } else {
                let text = format!("{command}\n{}", shown.join("\n"));
                o.push(
                    base.to_owned(),
                    system(SystemCategory::CommandWrapper, text),
                );
            }
        }
        Some("custom_title") => match string(p.custom_title) {
            Some(title) => {
                let data = serde_json::json!({"title": title, "source": string(p.title_source)});
                o.push(base.to_owned(), info("title", &data.to_string()));
            }
            None => o.push(base.to_owned(), info("custom_title", data)),
        },
        Some("rewind") => {
            let n = p
                .truncated
                .map_or_else(String::new, |t| t.get().trim().to_owned());
            let text = if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                "The conversation was rewound: the items after this point were withdrawn."
                    .to_owned()
            } else {
                format!("The conversation was rewound: {n} item(s) above were withdrawn.")
            };
            o.push(base.to_owned(), system(SystemCategory::Notice, text));
        }
        Some(s @ ("notification" | "background_task_completed")) => match string(p.display_text) {
            Some(text) => o.push(base.to_owned(), system(SystemCategory::Notice, text)),
            None => o.push(base.to_owned(), info(s, data)),
        },
        other => o.push(base.to_owned(), info(&topic(other), data)),
    }
}

/// The summary a compression left for the model: the text of the first
/// user-role content of the new history.
fn summary(p: &SystemPayload<'_>) -> String {
    let first = p
        .compressed
        .iter()
        .flatten()
        .filter_map(|c| serde_json::from_str::<Content<'_>>(c.get()).ok())
        .find(|c| string(c.role).as_deref() != Some("model"));
    let text: String = first
        .and_then(|c| c.parts)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| string(t.text))
        .collect();
    if text.trim().is_empty() {
        "The agent compressed the conversation history.".to_owned()
    } else {
        text
    }
}

impl RecordParser for QwenParser {
    crate::provider::record_as_text!();

    fn record_text(
        &mut self,
        offset: u64,
        text: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        let bytes = text.as_bytes();
        if self.line(offset, text, out) {
            return Ok(());
        }
        serde_json::from_str::<&RawValue>(text)
            .map_err(|e| Malformed::from_json_error(bytes, &e))?;
        let source = Source {
            record: "unknown".into(),
            offset,
            file: Some(self.ctx.file_tag.as_str().into()),
        };
        let payload = Payload::ProviderRaw {
            record: raw_from_str(text),
        };
        out(Event::new(
            ID,
            self.ctx.session_hint.clone(),
            offset_id(&self.ctx.file_tag, offset, 0),
            source,
            payload,
        ));
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

/// Events (as JSON) and results of `lines` read twice by fresh parsers:
/// on the fast path and on the general path alone
/// ([`super::read_both_ways`]). The two must agree on any input: unit
/// tests and the `qwen` fuzz target compare them.
#[doc(hidden)]
pub fn read_both_ways(lines: &[&[u8]]) -> [(Vec<String>, Vec<String>); 2] {
    let ctx = Qwen.named_file(Path::new(
        "p/chats/9a578cd0-ad2c-423c-8f19-95412a2d81af.jsonl",
    ));
    super::read_both_ways(
        lines,
        || QwenParser::new(&ctx),
        |p, offset, bytes, _text, out| {
            p.fast = false;
            p.record(offset, bytes, out)
        },
    )
}

#[cfg(test)]
mod tests;
