//! Aider: the Markdown chat history it appends to in each project folder
//! (`<project>/.aider.chat.history.md`).
//!
//! Where: aider writes the file in the folder it works in (the git root,
//! else the current directory), so there is no default root. The user
//! names folders to search (`[providers.aider] roots`, or `--root` on
//! `kato sessions`/`kato export`); discovery stays inside them, follows no
//! symbolic link, goes at most [`crate::discover::MAX_DEPTH`] levels down
//! and does not enter hidden directories (`.git`, `.venv`, …) or
//! [`SKIPPED_DIRS`] ([`Provider::descends_into`]). The session's directory
//! is the folder holding the file ([`Provider::project_folder`]): that is
//! where aider writes it, not a decoded name.
//!
//! One file, one session. Aider appends to the same file every time it
//! starts in that folder; each start (`# aider chat started at …`) is a
//! segment of the session, said by a `provider.info` `session_start`
//! event. The session id is `aider-<first start, YYYYMMDD-HHMMSS>`, taken
//! from the file itself so that every way of reaching the file agrees.
//!
//! Lines, as aider's `io.py` writes them (read with the incremental line
//! reader, [`SourceKind::Lines`]; blank lines matter here):
//!
//! * `# aider chat started at YYYY-MM-DD HH:MM:SS` → `provider.info`
//!   `session_start`, the one time the format holds. It is the local time
//!   of the machine, with no zone: the event's timestamp is that time as
//!   written (`YYYY-MM-DDTHH:MM:SS`, no offset) and no other event has a
//!   timestamp (none is invented);
//! * what the human typed: each line `#### <line>` followed by two spaces
//!   (aider's Markdown line break); consecutive such lines are one input.
//!   An input starting with `/` is an aider command (`/model …`, `/code`):
//!   `system.message` (command); with `!`, a shell command run through
//!   aider: `system.message` (user shell); `#### <blank>` (an empty input)
//!   → `provider.info` `empty_input`; anything else → `user.message`;
//! * status and tool output: lines starting `> ` (or a bare `>`), plus the
//!   lines that directly follow one with no blank line between (aider
//!   writes a multi-line message with `> ` on its first line only) →
//!   one `system.message` (notice) per block; each `Main model: X with …`
//!   or `Model: X with …` line in it also gives `provider.info` `model`
//!   and sets the model of later assistant events, each `Tokens: …` line
//!   `provider.info` `token_count`;
//! * everything else is the assistant's Markdown, up to the next line of
//!   the kinds above → `assistant.message`; a reply opening with aider's
//!   reasoning banner (`► **THINKING**` … `► **ANSWER**`) is split into
//!   `assistant.thinking` and `assistant.message`.
//!
//! Telling them apart: assistant Markdown may hold a `#### ` heading or a
//! `> ` quote. Inside an assistant reply, a `#### ` or `> ` line counts as
//! the human's or aider's only when it ends with aider's two-space line
//! break (and, for `> `, follows a blank line, as aider always leaves one
//! after a reply). A reply line that ends so is still taken for the
//! human's: the format cannot say otherwise. That is why in-chat commands
//! are off for aider ([`Provider::carries_commands`]): a `#### ::export`
//! written by the model would read like one typed by the human.
//!
//! Event ids are `chat:<offset of the block's first line>`, `#<n>` for a
//! block's further events. A block is delivered when the next one begins
//! (or at the end of a one-shot read); the lines of a block not yet ended
//! are held in the parser state, persisted with the cursor.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{raw_json, Event, Payload, ProviderId, Source, SystemCategory};
use crate::provider::{
    offset_id, ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};

const ID: ProviderId = ProviderId::Aider;

/// The chat history's file name.
pub const CHAT_FILE: &str = ".aider.chat.history.md";

/// Directories discovery does not enter besides hidden ones: dependency
/// and build trees, which hold no chat history of their own.
pub const SKIPPED_DIRS: &[&str] = &["node_modules", "__pycache__", "target", "venv"];

/// The tag of every aider file (one file per session).
const TAG: &str = "chat";

/// What opens a chat start line.
const START: &str = "# aider chat started at ";

/// Aider's Markdown line break, ending every line it writes for the human
/// and for its own status.
const BREAK: &str = "  ";

/// The reasoning banner aider writes around a model's thinking.
const THINKING: &str = "► **THINKING**";
const ANSWER: &str = "► **ANSWER**";

/// Longest block held before it is delivered in parts.
pub const HOLD_CAP: usize = 8 << 20;

/// The `aider` provider.
pub struct Aider;

impl Provider for Aider {
    fn id(&self) -> ProviderId {
        ID
    }

    /// None: aider writes inside each project; the user names the folders.
    fn default_roots(&self, _home: &Path) -> Vec<PathBuf> {
        Vec::new()
    }

    fn source_kind(&self) -> SourceKind {
        SourceKind::Lines
    }

    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        (rel.file_name()? == CHAT_FILE).then(|| ctx_for(rel))
    }

    fn named_file(&self, path: &Path) -> FileCtx {
        ctx_for(path)
    }

    fn project_folder(&self, path: &Path) -> Option<PathBuf> {
        path.parent().map(Path::to_path_buf)
    }

    fn descends_into(&self, name: &OsStr) -> bool {
        let name = name.to_string_lossy();
        !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref())
    }

    fn carries_commands(&self) -> bool {
        false
    }

    /// A chat start line among the first lines: only aider writes it.
    fn sniff(&self, head: &[u8]) -> Sniff {
        let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
        if text.lines().take(4).any(|l| parse_start(l).is_some()) {
            Sniff::Exact
        } else {
            Sniff::No
        }
    }

    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "Aider: `.aider.chat.history.md` in project folders. No default \
                          roots: name the folders to search (hidden, node_modules, \
                          __pycache__, target and venv directories are not entered).",
            env_override: None,
        }
    }

    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(AiderParser::new(ctx))
    }
}

fn ctx_for(path: &Path) -> FileCtx {
    FileCtx {
        provider: ID,
        file_tag: TAG.to_owned(),
        session_hint: format!("aider-{}", path.to_string_lossy()),
        subagent: None,
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a chat start line, if `line` is one.
pub fn parse_start(line: &str) -> Option<&str> {
    let rest = line.strip_prefix(START)?.trim_end();
    let b = rest.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    ok.then_some(rest)
}

/// The text of a line aider wrote for the human (`#### <text>  `).
fn human_text(line: &str) -> Option<&str> {
    line.strip_prefix("#### ")?.strip_suffix(BREAK)
}

/// Is `line` a status line (`> …` or a bare `>`)?
fn is_status(line: &str) -> bool {
    line.starts_with("> ") || line.trim_end() == ">"
}

/// A status line's text: the marker, the line break and the padding
/// aider adds to the lines of a multi-line message removed.
fn status_text(line: &str) -> &str {
    let t = line.strip_prefix('>').unwrap_or(line);
    t.strip_prefix(' ').unwrap_or(t).trim_end()
}

/// A continuation line of a multi-line status message, without the line
/// break or padding aider adds.
fn continuation_text(line: &str) -> &str {
    line.trim_end()
}

/// The model named by a status line (`Main model: X with …`, `Model: X with …`).
pub fn model_of(text: &str) -> Option<&str> {
    let rest = text
        .strip_prefix("Main model: ")
        .or_else(|| text.strip_prefix("Model: "))?;
    let model = rest.split(" with ").next()?.trim();
    (!model.is_empty()).then_some(model)
}

/// What the block being read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    /// Between blocks (after a blank line or at the start).
    Idle,
    Human,
    Status,
    Assistant,
}

/// The parser context, persisted with the cursor.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    session_id: Option<String>,
    model: Option<String>,
    mode: Mode,
    /// Offset of the held block's first line.
    start: u64,
    /// The held block's lines joined by `\n` (for an assistant block,
    /// blank lines too).
    text: String,
    /// Lines held in `text`.
    lines: u32,
    /// Was the previous line blank?
    after_blank: bool,
    /// Chat starts seen.
    segments: u64,
    /// Parts of the held block already delivered (a block over [`HOLD_CAP`]).
    parts: u32,
}

/// Parser for one chat history file.
pub struct AiderParser {
    hint: String,
    st: State,
}

impl AiderParser {
    pub fn new(ctx: &FileCtx) -> AiderParser {
        AiderParser {
            hint: ctx.session_hint.clone(),
            st: State {
                session_id: None,
                model: None,
                mode: Mode::Idle,
                start: 0,
                text: String::new(),
                lines: 0,
                after_blank: true,
                segments: 0,
                parts: 0,
            },
        }
    }

    fn session_id(&self) -> String {
        self.st
            .session_id
            .clone()
            .unwrap_or_else(|| self.hint.clone())
    }

    fn event(&self, n: u32, record: &'static str, payload: Payload) -> Event {
        Event::new(
            ID,
            self.session_id(),
            offset_id(TAG, self.st.start, n),
            Source {
                record: record.into(),
                offset: self.st.start,
                file: Some(TAG.to_owned().into()),
            },
            payload,
        )
    }

    /// Deliver the held block, if any, and go idle.
    fn finish(&mut self, out: &mut dyn FnMut(Event)) {
        let mode = std::mem::replace(&mut self.st.mode, Mode::Idle);
        let first = self.st.parts;
        self.st.parts = 0;
        self.deliver(mode, first, out);
    }

    /// Deliver the held text as a block of `mode` whose events are
    /// numbered from `n`; returns the number of events.
    fn deliver(&mut self, mode: Mode, n: u32, out: &mut dyn FnMut(Event)) -> u32 {
        let text = std::mem::take(&mut self.st.text);
        self.st.lines = 0;
        match mode {
            Mode::Idle => 0,
            Mode::Human => self.human(text, n, out),
            Mode::Status => self.status(text, n, out),
            Mode::Assistant => self.assistant(text, n, out),
        }
    }

    /// Deliver a human block; returns the number of events.
    fn human(&self, text: String, n: u32, out: &mut dyn FnMut(Event)) -> u32 {
        let payload = if text == "<blank>" {
            Payload::ProviderInfo {
                topic: "empty_input".to_owned(),
                data: raw_json(&serde_json::json!({})),
            }
        } else if text.starts_with('/') {
            Payload::SystemMessage {
                category: SystemCategory::CommandWrapper,
                text,
            }
        } else if text.starts_with('!') {
            Payload::SystemMessage {
                category: SystemCategory::UserShell,
                text,
            }
        } else {
            Payload::UserMessage {
                text,
                attachments: 0,
            }
        };
        out(self.event(n, "human", payload));
        1
    }

    /// Deliver a status block; returns the number of events.
    fn status(&mut self, text: String, first: u32, out: &mut dyn FnMut(Event)) -> u32 {
        // What the lines say besides the notice, in line order.
        let mut infos = Vec::new();
        let mut model = self.st.model.clone();
        for line in text.split('\n') {
            if let Some(m) = model_of(line) {
                model = Some(m.to_owned());
                infos.push((
                    "model",
                    serde_json::json!({ "model": m, "line": line }),
                    model.clone(),
                ));
            } else if let Some(tokens) = line.strip_prefix("Tokens: ") {
                infos.push((
                    "token_count",
                    serde_json::json!({ "text": tokens }),
                    model.clone(),
                ));
            }
        }
        let mut ev = self.event(
            first,
            "status",
            Payload::SystemMessage {
                category: SystemCategory::Notice,
                text,
            },
        );
        ev.model = self.st.model.as_deref().map(Into::into);
        out(ev);
        let mut n = first + 1;
        for (topic, data, model) in infos {
            let mut ev = self.event(
                n,
                "status",
                Payload::ProviderInfo {
                    topic: topic.to_owned(),
                    data: raw_json(&data),
                },
            );
            ev.model = model.map(Into::into);
            out(ev);
            n += 1;
        }
        self.st.model = model;
        n - first
    }

    /// Deliver an assistant block; returns the number of events.
    fn assistant(&self, mut text: String, first: u32, out: &mut dyn FnMut(Event)) -> u32 {
        // Without its trailing blank lines.
        loop {
            let cut = match text.rfind('\n') {
                Some(i) if text[i + 1..].trim().is_empty() => i,
                None if text.trim().is_empty() => 0,
                _ => break,
            };
            text.truncate(cut);
            if cut == 0 {
                break;
            }
        }
        if text.is_empty() {
            return 0;
        }
        let mut n = first;
        let mut emit = |payload: Payload| {
            let mut ev = self.event(n, "assistant", payload);
            ev.model = self.st.model.as_deref().map(Into::into);
            n += 1;
            out(ev);
        };
        match split_reasoning(&text) {
            Some((thinking, answer)) => {
                if !thinking.is_empty() {
                    emit(Payload::Thinking {
                        text: thinking.to_owned(),
                    });
                }
                if !answer.is_empty() {
                    emit(Payload::AssistantMessage {
                        text: answer.to_owned(),
                    });
                }
            }
            None => emit(Payload::AssistantMessage { text }),
        }
        n - first
    }

    /// Start a block of `mode` at `offset`, delivering the one held.
    fn begin(&mut self, mode: Mode, offset: u64, out: &mut dyn FnMut(Event)) {
        self.finish(out);
        self.st.mode = mode;
        self.st.start = offset;
    }

    /// Hold `line` in the current block; a block grown past [`HOLD_CAP`]
    /// is delivered in parts.
    fn hold(&mut self, line: &str, out: &mut dyn FnMut(Event)) {
        if self.st.lines > 0 {
            self.st.text.push('\n');
        }
        self.st.text.push_str(line);
        self.st.lines = self.st.lines.saturating_add(1);
        if self.st.text.len() > HOLD_CAP {
            let delivered = self.deliver(self.st.mode, self.st.parts, out);
            self.st.parts = self.st.parts.saturating_add(delivered);
        }
    }

    fn line(&mut self, offset: u64, line: &str, out: &mut dyn FnMut(Event)) {
        let after_blank = std::mem::replace(&mut self.st.after_blank, line.is_empty());
        if line.is_empty() {
            match self.st.mode {
                Mode::Assistant => self.hold("", out),
                _ => self.finish(out),
            }
            return;
        }
        if let Some(when) = parse_start(line) {
            self.begin(Mode::Idle, offset, out);
            self.start_segment(offset, when, out);
            return;
        }
        let in_reply = self.st.mode == Mode::Assistant;
        if let Some(text) = human_text(line) {
            if self.st.mode != Mode::Human {
                self.begin(Mode::Human, offset, out);
            }
            self.hold(text, out);
            return;
        }
        if is_status(line) && (!in_reply || (after_blank && line.ends_with(BREAK))) {
            if self.st.mode != Mode::Status {
                self.begin(Mode::Status, offset, out);
            }
            self.hold(status_text(line), out);
            return;
        }
        match self.st.mode {
            Mode::Status => self.hold(continuation_text(line), out),
            Mode::Assistant => self.hold(line, out),
            Mode::Idle | Mode::Human => {
                self.begin(Mode::Assistant, offset, out);
                self.hold(line, out);
            }
        }
    }

    fn start_segment(&mut self, offset: u64, when: &str, out: &mut dyn FnMut(Event)) {
        let iso = when.replacen(' ', "T", 1);
        if self.st.session_id.is_none() {
            let compact: String = when
                .chars()
                .filter(char::is_ascii_digit)
                .enumerate()
                .flat_map(|(i, c)| (i == 8).then_some('-').into_iter().chain([c]))
                .collect();
            self.st.session_id = Some(format!("aider-{compact}"));
        }
        self.st.segments += 1;
        self.st.model = None;
        self.st.start = offset;
        let mut ev = self.event(
            0,
            "chat_start",
            Payload::ProviderInfo {
                topic: "session_start".to_owned(),
                data: raw_json(&serde_json::json!({
                    "started_at": when,
                    "segment": self.st.segments,
                    "time_zone": "local time of the machine aider ran on; not recorded",
                })),
            },
        );
        ev.timestamp = Some(iso.into());
        out(ev);
    }
}

/// A reply opening with aider's reasoning banner: (thinking, answer).
pub fn split_reasoning(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start();
    let rest = rest.trim_start_matches('-').trim_start();
    let rest = rest.strip_prefix(THINKING)?;
    match rest.find(ANSWER) {
        Some(i) => {
            let thinking = rest[..i].trim_end();
            let thinking = thinking.trim_end_matches('-').trim();
            Some((thinking, rest[i + ANSWER.len()..].trim()))
        }
        None => Some((rest.trim(), "")),
    }
}

impl RecordParser for AiderParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        // Aider writes UTF-8, dropping what it cannot encode; a stray byte
        // must not cost the line.
        let line = String::from_utf8_lossy(bytes);
        self.record_text(offset, &line, out)
    }

    fn record_text(
        &mut self,
        offset: u64,
        line: &str,
        out: &mut dyn FnMut(Event),
    ) -> Result<(), Malformed> {
        self.line(offset, line, out);
        Ok(())
    }

    fn wants_blank_lines(&self) -> bool {
        true
    }

    fn flush(&mut self, out: &mut dyn FnMut(Event)) {
        self.finish(out);
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.st).unwrap_or(serde_json::Value::Null)
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<(), Malformed> {
        self.st = State::deserialize(state).map_err(|e| Malformed::WrongShape(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
