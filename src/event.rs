//! The canonical event stream (SPEC §4).
//!
//! Every provider parser turns its records into [`Event`]s; everything after
//! the parse stage (rendering, commands, recordings) sees only this type.
//! The JSONL export is this stream serialized one event per line, so the
//! serde shape below is a public format: it carries [`SCHEMA_VERSION`] and is
//! covered by tests.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;

mod text;
pub use text::Text;

/// Version of the JSONL event schema. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Declares [`ProviderId`] from one list: variant, serde name, doc line.
/// The list is the one place a provider's id is spelled; the registry
/// ([`crate::provider::registry`]) must then hold one provider per entry
/// (its array length is [`ProviderId::ALL`]'s, checked by the compiler).
macro_rules! provider_ids {
    ($($variant:ident => $name:literal, $doc:literal;)+) => {
        /// Which agent wrote the session: a closed set, matched exhaustively,
        /// so adding a provider shows every place to touch. Serialized as its
        /// lowercase name (`claude`, `codex`, `gemini`).
        ///
        /// This module is a leaf: it knows the names, not the providers
        /// (see [`crate::provider`] for how an id maps to its [`Provider`]
        /// implementation).
        ///
        /// `Toy` exists only in unit tests: `Provider::id` returns a
        /// `ProviderId`, so a test provider needs a variant of its own to
        /// show that a registry holding it works without other changes; it
        /// is in no registry but the tests' own and not in [`ProviderId::ALL`].
        ///
        /// [`Provider`]: crate::provider::Provider
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProviderId {
            $(#[doc = $doc] $variant,)+
            #[cfg(test)]
            Toy,
        }

        impl ProviderId {
            /// Every real provider id, in display order.
            pub const ALL: &'static [ProviderId] = &[$(ProviderId::$variant),+];

            /// The lowercase name: config section, serde name, thread name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ProviderId::$variant => $name,)+
                    #[cfg(test)]
                    ProviderId::Toy => "toy",
                }
            }
        }
    };
}

provider_ids! {
    Claude => "claude", "Claude Code (`~/.claude/projects`).";
    Codex => "codex", "OpenAI Codex CLI (`~/.codex/sessions`).";
    Gemini => "gemini", "Gemini CLI (`~/.gemini/tmp`).";
    Copilot => "copilot", "GitHub Copilot CLI (`~/.copilot/session-state`).";
    Cline => "cline", "Cline and Roo Code (`<editor globalStorage>/<extension>/tasks`, `~/.cline/data/tasks`).";
    Qwen => "qwen", "Qwen Code (`~/.qwen/projects`).";
    Cursor => "cursor", "Cursor agent transcripts (`~/.cursor/projects`).";
    Droid => "droid", "Factory Droid (`~/.factory/sessions`).";
    Amp => "amp", "Amp (`~/.local/share/amp/threads`).";
    Kimi => "kimi", "Kimi CLI (`~/.kimi/sessions`).";
    Aider => "aider", "Aider (`.aider.chat.history.md` in the project folders named).";
    OpenCode => "opencode", "OpenCode (`~/.local/share/opencode/opencode.db`).";
    Crush => "crush", "Crush (`.crush/crush.db` in the project folders named).";
    Goose => "goose", "Goose (`~/.local/share/goose/sessions/sessions.db`).";
}

/// A name that is not a provider id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`")]
pub struct UnknownProvider(pub String);

impl std::str::FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(name: &str) -> Result<ProviderId, UnknownProvider> {
        #[cfg(test)]
        if name == ProviderId::Toy.as_str() {
            return Ok(ProviderId::Toy);
        }
        ProviderId::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| UnknownProvider(name.to_owned()))
    }
}

impl Serialize for ProviderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for ProviderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where in the provider's file an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Provider record type, e.g. `assistant`, `response_item/function_call`:
    /// a name a parser knows is not copied for each event.
    pub record: Cow<'static, str>,
    /// Byte offset of the record's line (JSONL) or message index (documents).
    pub offset: u64,
    /// File tag (file stem) for sessions spread over several files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Arc<str>>,
}

/// Work done by a subagent / sidechain rather than the main conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subagent {
    /// Provider's agent id (`agentId`, file suffix, nickname…), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Human label (`Explore`, `explorer`, `side question`…), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One canonical event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub provider: ProviderId,
    /// Shared by the events of a session: not a copy per event (as are the
    /// timestamp of a record, the turn and the model).
    pub session_id: Arc<str>,
    /// Stable across re-parses: derived from provider ids or the file offset.
    pub event_id: String,
    /// Provider's own timestamp (RFC 3339) when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Arc<str>>,
    /// Set when the event belongs to subagent/sidechain work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subagent: Option<Subagent>,
    /// Set when the record is a copy of earlier history that the agent wrote
    /// again (a resumed or forked session, a rewritten transcript). It is
    /// rendered like any event; a command in it never runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copied: bool,
    pub source: Source,
    #[serde(flatten)]
    pub payload: Payload,
}

impl Event {
    /// An event with the required fields; optional ones start empty.
    pub fn new(
        provider: ProviderId,
        session_id: impl Into<Arc<str>>,
        event_id: impl Into<String>,
        source: Source,
        payload: Payload,
    ) -> Event {
        Event {
            provider,
            session_id: session_id.into(),
            event_id: event_id.into(),
            timestamp: None,
            turn_id: None,
            model: None,
            subagent: None,
            copied: false,
            source,
            payload,
        }
    }

    pub fn kind(&self) -> Kind {
        self.payload.kind()
    }

    /// True when this is text the human typed in the main conversation: the
    /// only place in-chat commands are read from (SPEC §6).
    pub fn is_human_message(&self) -> bool {
        matches!(self.payload, Payload::UserMessage { .. }) && self.subagent.is_none()
    }
}

/// Classification of text that is not the human's or the assistant's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemCategory {
    /// Context injected by the agent (`<environment_context>`, AGENTS.md,
    /// `<system-reminder>`, permission instructions, developer messages).
    InjectedContext,
    /// IDE context headers (`<ide_selection>`, `<ide_opened_file>`…).
    IdeContext,
    /// Slash-command wrappers and local command output (`isMeta`, `<command-name>`).
    CommandWrapper,
    /// A compaction summary or boundary.
    Compaction,
    /// The prompt a parent agent gave to a subagent.
    SubagentPrompt,
    /// A shell command the user ran through the agent (`!cmd`).
    UserShell,
    /// Errors reported by the agent or the API.
    Error,
    /// Notices, warnings, hook output and other status text.
    Notice,
    /// A user-role model input with no human-typed twin.
    ModelInput,
}

impl SystemCategory {
    pub const ALL: [SystemCategory; 9] = [
        SystemCategory::InjectedContext,
        SystemCategory::IdeContext,
        SystemCategory::CommandWrapper,
        SystemCategory::Compaction,
        SystemCategory::SubagentPrompt,
        SystemCategory::UserShell,
        SystemCategory::Error,
        SystemCategory::Notice,
        SystemCategory::ModelInput,
    ];

    /// The name JSON gives the category (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            SystemCategory::InjectedContext => "injected-context",
            SystemCategory::IdeContext => "ide-context",
            SystemCategory::CommandWrapper => "command-wrapper",
            SystemCategory::Compaction => "compaction",
            SystemCategory::SubagentPrompt => "subagent-prompt",
            SystemCategory::UserShell => "user-shell",
            SystemCategory::Error => "error",
            SystemCategory::Notice => "notice",
            SystemCategory::ModelInput => "model-input",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SystemCategory::InjectedContext => "Injected context",
            SystemCategory::IdeContext => "IDE context",
            SystemCategory::CommandWrapper => "Command",
            SystemCategory::Compaction => "Compaction",
            SystemCategory::SubagentPrompt => "Subagent prompt",
            SystemCategory::UserShell => "User shell",
            SystemCategory::Error => "Error",
            SystemCategory::Notice => "Notice",
            SystemCategory::ModelInput => "Model input",
        }
    }
}

/// The kind-specific part of an event. Serialized with a `kind` tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", from = "PayloadDe")]
pub enum Payload {
    /// Text the human typed (main conversation only; subagent prompts are
    /// [`SystemCategory::SubagentPrompt`] system messages).
    #[serde(rename = "user.message")]
    UserMessage {
        text: String,
        /// Count of attachments (images, files) that are not rendered.
        #[serde(default, skip_serializing_if = "is_zero")]
        attachments: u32,
    },
    /// One in-chat command line found in a human message.
    #[serde(rename = "user.kato-command")]
    KatoCommand {
        /// The whole command line as typed.
        raw: String,
        /// 0-based line number inside the message.
        line: u32,
        /// The `event_id` of the message that holds the command.
        message_id: String,
        /// Why the line is not a valid command (names the right form).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The human's answer to an [`Payload::DecisionPrompt`].
    #[serde(rename = "user.decision.response")]
    DecisionResponse { prompt_id: String, text: String },
    #[serde(rename = "assistant.message")]
    AssistantMessage { text: String },
    #[serde(rename = "assistant.thinking")]
    Thinking { text: String },
    #[serde(rename = "assistant.tool.call")]
    ToolCall {
        tool_call_id: String,
        name: String,
        /// Tool input as the provider wrote it (JSON).
        input: Box<RawValue>,
    },
    #[serde(rename = "assistant.tool.result")]
    ToolResult {
        tool_call_id: String,
        output: Text,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    /// The assistant asks the human to choose (plan approval, questions).
    #[serde(rename = "assistant.decision.prompt")]
    DecisionPrompt {
        prompt_id: String,
        name: String,
        text: String,
    },
    #[serde(rename = "system.message")]
    SystemMessage {
        category: SystemCategory,
        text: String,
    },
    /// Session metadata (cwd, version, title, branch, model switches…).
    #[serde(rename = "provider.info")]
    ProviderInfo {
        /// What the info is about, e.g. `session_meta`, `title`, `token_count`.
        topic: String,
        data: Box<RawValue>,
    },
    /// A record that maps to no other kind, kept losslessly.
    #[serde(rename = "provider.raw")]
    ProviderRaw { record: Box<RawValue> },
}

/// How a [`Payload`] is read back. A tagged (and flattened) enum is
/// buffered before its variant is known, and a buffered value cannot become
/// a [`RawValue`]; so raw fields are read as [`serde_json::Value`] and
/// converted afterwards.
#[derive(Deserialize)]
#[serde(tag = "kind")]
enum PayloadDe {
    #[serde(rename = "user.message")]
    UserMessage {
        text: String,
        #[serde(default)]
        attachments: u32,
    },
    #[serde(rename = "user.kato-command")]
    KatoCommand {
        raw: String,
        line: u32,
        message_id: String,
        #[serde(default)]
        error: Option<String>,
    },
    #[serde(rename = "user.decision.response")]
    DecisionResponse { prompt_id: String, text: String },
    #[serde(rename = "assistant.message")]
    AssistantMessage { text: String },
    #[serde(rename = "assistant.thinking")]
    Thinking { text: String },
    #[serde(rename = "assistant.tool.call")]
    ToolCall {
        tool_call_id: String,
        name: String,
        input: serde_json::Value,
    },
    #[serde(rename = "assistant.tool.result")]
    ToolResult {
        tool_call_id: String,
        output: String,
        #[serde(default)]
        is_error: bool,
    },
    #[serde(rename = "assistant.decision.prompt")]
    DecisionPrompt {
        prompt_id: String,
        name: String,
        text: String,
    },
    #[serde(rename = "system.message")]
    SystemMessage {
        category: SystemCategory,
        text: String,
    },
    #[serde(rename = "provider.info")]
    ProviderInfo {
        topic: String,
        data: serde_json::Value,
    },
    #[serde(rename = "provider.raw")]
    ProviderRaw { record: serde_json::Value },
}

impl From<PayloadDe> for Payload {
    fn from(p: PayloadDe) -> Payload {
        match p {
            PayloadDe::UserMessage { text, attachments } => {
                Payload::UserMessage { text, attachments }
            }
            PayloadDe::KatoCommand {
                raw,
                line,
                message_id,
                error,
            } => Payload::KatoCommand {
                raw,
                line,
                message_id,
                error,
            },
            PayloadDe::DecisionResponse { prompt_id, text } => {
                Payload::DecisionResponse { prompt_id, text }
            }
            PayloadDe::AssistantMessage { text } => Payload::AssistantMessage { text },
            PayloadDe::Thinking { text } => Payload::Thinking { text },
            PayloadDe::ToolCall {
                tool_call_id,
                name,
                input,
            } => Payload::ToolCall {
                tool_call_id,
                name,
                input: raw_json(&input),
            },
            PayloadDe::ToolResult {
                tool_call_id,
                output,
                is_error,
            } => Payload::ToolResult {
                tool_call_id,
                output: output.into(),
                is_error,
            },
            PayloadDe::DecisionPrompt {
                prompt_id,
                name,
                text,
            } => Payload::DecisionPrompt {
                prompt_id,
                name,
                text,
            },
            PayloadDe::SystemMessage { category, text } => {
                Payload::SystemMessage { category, text }
            }
            PayloadDe::ProviderInfo { topic, data } => Payload::ProviderInfo {
                topic,
                data: raw_json(&data),
            },
            PayloadDe::ProviderRaw { record } => Payload::ProviderRaw {
                record: raw_json(&record),
            },
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The `kind` tag of a [`Payload`], usable as a map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    UserMessage,
    KatoCommand,
    DecisionResponse,
    AssistantMessage,
    Thinking,
    ToolCall,
    ToolResult,
    DecisionPrompt,
    SystemMessage,
    ProviderInfo,
    ProviderRaw,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::UserMessage,
        Kind::KatoCommand,
        Kind::DecisionResponse,
        Kind::AssistantMessage,
        Kind::Thinking,
        Kind::ToolCall,
        Kind::ToolResult,
        Kind::DecisionPrompt,
        Kind::SystemMessage,
        Kind::ProviderInfo,
        Kind::ProviderRaw,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UserMessage => "user.message",
            Kind::KatoCommand => "user.kato-command",
            Kind::DecisionResponse => "user.decision.response",
            Kind::AssistantMessage => "assistant.message",
            Kind::Thinking => "assistant.thinking",
            Kind::ToolCall => "assistant.tool.call",
            Kind::ToolResult => "assistant.tool.result",
            Kind::DecisionPrompt => "assistant.decision.prompt",
            Kind::SystemMessage => "system.message",
            Kind::ProviderInfo => "provider.info",
            Kind::ProviderRaw => "provider.raw",
        }
    }
}

impl Payload {
    pub fn kind(&self) -> Kind {
        match self {
            Payload::UserMessage { .. } => Kind::UserMessage,
            Payload::KatoCommand { .. } => Kind::KatoCommand,
            Payload::DecisionResponse { .. } => Kind::DecisionResponse,
            Payload::AssistantMessage { .. } => Kind::AssistantMessage,
            Payload::Thinking { .. } => Kind::Thinking,
            Payload::ToolCall { .. } => Kind::ToolCall,
            Payload::ToolResult { .. } => Kind::ToolResult,
            Payload::DecisionPrompt { .. } => Kind::DecisionPrompt,
            Payload::SystemMessage { .. } => Kind::SystemMessage,
            Payload::ProviderInfo { .. } => Kind::ProviderInfo,
            Payload::ProviderRaw { .. } => Kind::ProviderRaw,
        }
    }
}

/// Build a raw JSON value from a serializable value; falls back to `null`
/// (serializing plain data to a string cannot fail in practice).
pub fn raw_json<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| null_raw())
}

/// A raw JSON `null`.
pub fn null_raw() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("`null` is valid JSON")
}

/// Texts a reader's consumer throws away (a Markdown export without
/// `--thinking` or `--tool-calls`). [`Hidden::strip`] empties them; a
/// parser told of them ([`crate::provider::RecordParser::hide`]) may leave
/// them undecoded, as long as what it emits is what it would emit
/// otherwise, stripped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hidden {
    /// Thinking texts.
    pub thinking: bool,
    /// Tool inputs, outputs and whether a tool failed.
    pub tools: bool,
    /// Provider records (`provider.info` data but a title, and raw records).
    pub provider: bool,
}

impl Hidden {
    /// Empty what `self` hides in `ev`.
    pub fn strip(self, ev: &mut Event) {
        match &mut ev.payload {
            Payload::Thinking { text } if self.thinking => *text = String::new(),
            Payload::ToolCall { input, .. } if self.tools => *input = null_raw(),
            Payload::ToolResult {
                output, is_error, ..
            } if self.tools => {
                *output = Text::default();
                *is_error = false;
            }
            Payload::ProviderInfo { topic, data } if self.provider && topic != "title" => {
                *data = null_raw();
            }
            Payload::ProviderRaw { record } if self.provider => *record = null_raw(),
            _ => {}
        }
    }
}

/// A record name as an event's [`Source`] holds it: one of `known` (the
/// record types a provider usually meets) is shared, any other is copied.
pub fn record_name(name: &str, known: &[&'static str]) -> Cow<'static, str> {
    match known.iter().find(|k| **k == name) {
        Some(k) => Cow::Borrowed(*k),
        None => Cow::Owned(name.to_owned()),
    }
}

/// Copy a raw JSON value a parse produced: no second parse to validate it.
pub fn raw_copy(raw: &RawValue) -> Box<RawValue> {
    raw.to_owned()
}

/// Copy raw JSON bytes that were already validated by a parse.
pub fn raw_from_str(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap_or_else(|_| null_raw())
}

/// The JSONL line shape: the event plus the schema version.
#[derive(Serialize)]
pub struct JsonlRecord<'a> {
    pub schema_version: u32,
    #[serde(flatten)]
    pub event: &'a Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            provider: ProviderId::Claude,
            session_id: "s1".into(),
            event_id: "u1".into(),
            timestamp: Some("2026-01-01T00:00:00.000Z".into()),
            turn_id: None,
            model: None,
            subagent: None,
            copied: false,
            source: Source {
                record: "user".into(),
                offset: 0,
                file: None,
            },
            payload: Payload::UserMessage {
                text: "hi".into(),
                attachments: 0,
            },
        }
    }

    #[test]
    fn jsonl_shape_is_flat_and_versioned() {
        let ev = sample();
        let line = serde_json::to_string(&JsonlRecord {
            schema_version: SCHEMA_VERSION,
            event: &ev,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"schema_version":1,"provider":"claude","session_id":"s1","event_id":"u1","timestamp":"2026-01-01T00:00:00.000Z","source":{"record":"user","offset":0},"kind":"user.message","text":"hi"}"#
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back.kind(), Kind::UserMessage);
    }

    #[test]
    fn raw_fields_read_back() {
        let mut ev = sample();
        ev.payload = Payload::ToolCall {
            tool_call_id: "t".into(),
            name: "Bash".into(),
            input: raw_from_str(r#"{"command":"ls"}"#),
        };
        let line = serde_json::to_string(&JsonlRecord {
            schema_version: SCHEMA_VERSION,
            event: &ev,
        })
        .unwrap();
        let back: Event = serde_json::from_str(&line).unwrap();
        match back.payload {
            Payload::ToolCall { input, .. } => assert_eq!(input.get(), r#"{"command":"ls"}"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kind_names_match_serde_tags() {
        let ev = sample();
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["kind"], ev.kind().as_str());
    }
}
