//! Markdown rendering (SPEC §5).
//!
//! Layout: optional YAML frontmatter, a `# title`, then one `## User` /
//! `## Assistant` section per turn (a new heading when the actor, turn or
//! main model changes). Subagent work sits under `### Subagent …` inside
//! the current section. Thinking, tool calls and injected context are
//! collapsed in `<details>`; notices and errors are short block quotes.
//!
//! Everything taken from events is made CommonMark-safe first (see
//! `commonmark`): headings from content land at levels 4–6, raw HTML is
//! escaped, fences are closed, and verbatim text sits in fences longer than
//! any backtick run inside. Kato's own headings are levels 1–3 only.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::commonmark as cm;
use super::{SessionMeta, UNTITLED};
use crate::config::MarkdownOptions;
use crate::event::{Event, Payload, Subagent, SystemCategory};
use crate::json_str::{self, Segment};

/// Tool calls whose names are remembered for their results' summaries.
const PENDING_TOOLS: usize = 64;

/// A scratch buffer larger than this is dropped after use.
const BUF_KEEP: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Actor {
    User,
    Assistant,
}

/// The section the next event lands in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Section {
    actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    turn_id: Option<String>,
    /// The subagent whose `###` group is open, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subagent: Option<Subagent>,
}

/// Where a renderer stands between events: small and serializable, so a
/// recording can resume appending to its file (after a restart, or with a
/// fresh writer per increment) without repeating headings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderState {
    /// Something was written; the next block is preceded by a blank line.
    started: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    section: Option<Section>,
    /// Recent tool calls `(id, name)`, oldest first, at most [`PENDING_TOOLS`].
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    tools: VecDeque<(String, String)>,
}

impl RenderState {
    /// State for appending to a file that already has content (ending with a
    /// line break) but no known section: the first block is separated by a
    /// blank line and opens a new section.
    pub fn appending() -> RenderState {
        RenderState {
            started: true,
            ..RenderState::default()
        }
    }
}

/// Streams events into Markdown. Each call writes at most one `write_all`.
pub struct MarkdownRenderer<W: Write> {
    w: W,
    opts: MarkdownOptions,
    st: RenderState,
    buf: String,
}

impl<W: Write> MarkdownRenderer<W> {
    /// A renderer for a new document.
    pub fn new(w: W, opts: &MarkdownOptions) -> MarkdownRenderer<W> {
        MarkdownRenderer::resume(w, opts, RenderState::default())
    }

    /// A renderer continuing where `state` (from [`MarkdownRenderer::state`])
    /// left off, or [`RenderState::appending`] for an existing file.
    pub fn resume(w: W, opts: &MarkdownOptions, state: RenderState) -> MarkdownRenderer<W> {
        MarkdownRenderer {
            w,
            opts: opts.clone(),
            st: state,
            buf: String::new(),
        }
    }

    pub fn state(&self) -> &RenderState {
        &self.st
    }

    /// The writer, e.g. to redirect where it sends what follows.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// The YAML frontmatter, when the options ask for it. Must come first.
    pub fn frontmatter(&mut self, meta: &SessionMeta) -> io::Result<()> {
        if !self.opts.frontmatter {
            return Ok(());
        }
        if self.st.started {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frontmatter must open the document",
            ));
        }
        self.w.write_all(frontmatter_text(meta).as_bytes())?;
        self.st.started = true;
        Ok(())
    }

    /// The `# title` heading.
    pub fn title(&mut self, meta: &SessionMeta) -> io::Result<()> {
        let title = if meta.title.trim().is_empty() {
            UNTITLED
        } else {
            &meta.title
        };
        self.buf.clear();
        self.push_block(&format!("# {}", cm::inline_text(title)));
        self.flush_buf()
    }

    /// Frontmatter (if enabled) and title: the top of a new document.
    pub fn header(&mut self, meta: &SessionMeta) -> io::Result<()> {
        self.frontmatter(meta)?;
        self.title(meta)
    }

    /// Render one event (nothing for kinds that are not shown).
    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.buf.clear();
        self.render(ev);
        self.flush_buf()
    }

    /// Flush and hand back the writer. Nothing is left open between events,
    /// so the document is complete after any event.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            // Every block passes here: content keeps its structure, its
            // control characters are shown, not executed.
            self.w
                .write_all(super::controls::markdown(&self.buf).as_bytes())?;
            self.buf.clear();
        }
        if self.buf.capacity() > BUF_KEEP {
            self.buf = String::new();
        }
        Ok(())
    }

    /// Append a block (no trailing newline) to the output buffer.
    fn push_block(&mut self, block: &str) {
        self.push_block_with(|out| out.push_str(block));
    }

    /// Append a block that `build` writes (no trailing newline) straight
    /// into the output buffer: a tool output is copied once, not once per
    /// layer around it.
    fn push_block_with(&mut self, build: impl FnOnce(&mut String)) {
        if self.st.started {
            self.buf.push('\n');
        }
        build(&mut self.buf);
        self.buf.push('\n');
        self.st.started = true;
    }

    // Long because: one match over every event kind, so each kind's rendering is read side by side.
    fn render(&mut self, ev: &Event) {
        match &ev.payload {
            Payload::UserMessage { text, attachments } => {
                let body = cm::markdown(text);
                if body.is_empty() && *attachments == 0 {
                    return;
                }
                self.enter(ev, Some(Actor::User));
                if ev.subagent.is_some() {
                    self.push_block("**Input**");
                }
                if !body.is_empty() {
                    self.push_block(&body);
                }
                if *attachments > 0 {
                    let s = if *attachments == 1 { "" } else { "s" };
                    self.push_block(&format!("*{attachments} attachment{s} not shown.*"));
                }
            }
            Payload::DecisionResponse { text, .. } => {
                self.enter(ev, Some(Actor::User));
                self.push_block("**Response:**");
                let body = cm::markdown(text);
                if !body.is_empty() {
                    self.push_block(&body);
                }
            }
            Payload::AssistantMessage { text } => {
                let body = cm::markdown(text);
                if body.is_empty() {
                    return;
                }
                self.enter(ev, Some(Actor::Assistant));
                self.push_block(&body);
            }
            Payload::Thinking { text } => {
                if !self.opts.thinking {
                    return;
                }
                let body = cm::markdown(text);
                if body.is_empty() {
                    return;
                }
                self.enter(ev, Some(Actor::Assistant));
                self.push_block_with(|out| details(out, "Thinking", |out| out.push_str(&body)));
            }
            Payload::ToolCall {
                tool_call_id,
                name,
                input,
            } => {
                if !self.opts.tool_calls {
                    return;
                }
                self.enter(ev, Some(Actor::Assistant));
                if self.st.tools.len() >= PENDING_TOOLS {
                    self.st.tools.pop_front();
                }
                self.st
                    .tools
                    .push_back((tool_call_id.clone(), name.clone()));
                let max = self.opts.tool_output_max_bytes;
                let summary = format!("Tool call: {name}");
                self.push_block_with(|out| {
                    details(out, &summary, |out| tool_input(out, input, max))
                });
            }
            Payload::ToolResult {
                tool_call_id,
                output,
                is_error,
            } => {
                if !self.opts.tool_calls {
                    return;
                }
                self.enter(ev, Some(Actor::Assistant));
                let name = self
                    .st
                    .tools
                    .iter()
                    .position(|(id, _)| id == tool_call_id)
                    .and_then(|i| self.st.tools.remove(i))
                    .map(|(_, name)| name);
                let what = if *is_error {
                    "Tool error"
                } else {
                    "Tool result"
                };
                let summary = match name {
                    Some(name) => format!("{what}: {name}"),
                    None => what.to_owned(),
                };
                let max = self.opts.tool_output_max_bytes;
                self.push_block_with(|out| {
                    details(out, &summary, |out| {
                        if output.is_empty() {
                            out.push_str("*No output.*");
                        } else {
                            truncated_fence(out, "text", output, max);
                        }
                    });
                });
            }
            Payload::DecisionPrompt { name, text, .. } => {
                self.enter(ev, Some(Actor::Assistant));
                let label = cm::inline_text(name);
                if label.is_empty() {
                    self.push_block("**Decision:**");
                } else {
                    self.push_block(&format!("**Decision:** {label}"));
                }
                let body = cm::markdown(text);
                if !body.is_empty() {
                    self.push_block(&body);
                }
            }
            Payload::SystemMessage { category, text } => {
                if injected(*category) && !self.opts.injected_context {
                    return;
                }
                let label = category.label();
                if collapsed(*category) {
                    let body = cm::markdown(text);
                    if body.is_empty() {
                        return;
                    }
                    self.enter(ev, None);
                    self.push_block_with(|out| details(out, label, |out| out.push_str(&body)));
                } else {
                    let body = cm::quoted_markdown(text);
                    if body.is_empty() {
                        return;
                    }
                    self.enter(ev, None);
                    self.push_block(&format!("> **{label}**\n>\n{body}"));
                }
            }
            // The message holding the command is rendered; metadata and raw
            // records are for JSONL.
            Payload::KatoCommand { .. }
            | Payload::ProviderInfo { .. }
            | Payload::ProviderRaw { .. } => {}
        }
    }

    /// Open the section (and subagent group) `ev` belongs to, if it is not
    /// the current one. `actor` is `None` for system messages, which join
    /// whatever section is open.
    fn enter(&mut self, ev: &Event, actor: Option<Actor>) {
        if let Some(sub) = &ev.subagent {
            if !matches!(&self.st.section, Some(s) if s.actor == Actor::Assistant) {
                self.open_section(Actor::Assistant, None, None, ev.timestamp.as_deref());
            }
            let changed = self
                .st
                .section
                .as_ref()
                .is_some_and(|s| s.subagent.as_ref() != Some(sub));
            if changed {
                if let Some(s) = self.st.section.as_mut() {
                    s.subagent = Some(sub.clone());
                }
                self.push_block(&format!("### {}", subagent_heading(sub)));
            }
            return;
        }
        let Some(actor) = actor else {
            // A main-conversation note after subagent work: leave the group.
            if let Some(s) = &self.st.section {
                if s.subagent.is_some() {
                    let (a, m, t) = (s.actor, s.model.clone(), s.turn_id.clone());
                    self.open_section(a, m, t, ev.timestamp.as_deref());
                }
            }
            return;
        };
        let model = match actor {
            Actor::Assistant => ev.model.as_deref(),
            Actor::User => None,
        };
        let new = match &self.st.section {
            None => true,
            Some(s) => {
                s.actor != actor
                    || s.subagent.is_some()
                    || differ(s.turn_id.as_deref(), ev.turn_id.as_deref())
                    || differ(s.model.as_deref(), model)
            }
        };
        if new {
            self.open_section(
                actor,
                model.map(str::to_owned),
                ev.turn_id.as_deref().map(str::to_owned),
                ev.timestamp.as_deref(),
            );
        } else if let Some(s) = self.st.section.as_mut() {
            if s.model.is_none() {
                s.model = model.map(str::to_owned);
            }
            if s.turn_id.is_none() {
                s.turn_id = ev.turn_id.as_deref().map(str::to_owned);
            }
        }
    }

    fn open_section(
        &mut self,
        actor: Actor,
        model: Option<String>,
        turn_id: Option<String>,
        time: Option<&str>,
    ) {
        let mut heading = String::from(match actor {
            Actor::User => "## User",
            Actor::Assistant => "## Assistant",
        });
        for part in [model.as_deref(), time.map(compact_time).as_deref()]
            .into_iter()
            .flatten()
        {
            let part = cm::inline_text(part);
            if !part.is_empty() {
                heading.push_str(" · ");
                heading.push_str(&part);
            }
        }
        self.push_block(&heading);
        self.st.section = Some(Section {
            actor,
            model,
            turn_id,
            subagent: None,
        });
    }
}

/// Both known and different.
fn differ(a: Option<&str>, b: Option<&str>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

/// Context the agent put into the conversation that neither party wrote:
/// left out unless `injected_context` is on.
fn injected(category: SystemCategory) -> bool {
    matches!(
        category,
        SystemCategory::InjectedContext | SystemCategory::IdeContext | SystemCategory::ModelInput
    )
}

/// Categories shown collapsed rather than as a note.
fn collapsed(category: SystemCategory) -> bool {
    matches!(
        category,
        SystemCategory::InjectedContext
            | SystemCategory::IdeContext
            | SystemCategory::Compaction
            | SystemCategory::ModelInput
    )
}

fn subagent_heading(sub: &Subagent) -> String {
    let mut h = String::from("Subagent");
    let parts = [sub.label.as_deref(), sub.id.as_deref()];
    let mut first = true;
    for part in parts.into_iter().flatten() {
        let part = cm::inline_text(part);
        if part.is_empty() {
            continue;
        }
        h.push_str(if first { " " } else { " · " });
        h.push_str(&part);
        first = false;
    }
    h
}

/// A collapsed block, appended to `out`: `<details>`, a one-line summary,
/// the Markdown `body` writes.
fn details(out: &mut String, summary: &str, body: impl FnOnce(&mut String)) {
    out.push_str("<details>\n<summary>");
    out.push_str(&cm::html_text(summary));
    out.push_str("</summary>\n\n");
    body(out);
    out.push_str("\n\n</details>");
}

/// `text` in a fence, cut to `max` bytes with a note saying how much,
/// appended to `out`.
fn truncated_fence(out: &mut String, info: &str, text: &str, max: usize) {
    let (kept, _) = cm::truncate(text, max);
    fence_of_part(out, info, kept, text.len());
}

/// `kept`, the first bytes of a `total`-byte text, in a fence with a note
/// saying how much was cut, appended to `out`.
fn fence_of_part(out: &mut String, info: &str, kept: &str, total: usize) {
    cm::fence_into(out, info, kept);
    let cut = total - kept.len();
    if cut > 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, "\n\n*Truncated: {cut} of {total} bytes not shown.*");
    }
}

/// JSON nested deeper than this is shown as written, not re-indented.
const PRETTY_MAX_DEPTH: usize = 128;

/// Tool input: a JSON string as plain text, anything else as indented JSON
/// (as written when nested deeper than [`PRETTY_MAX_DEPTH`]), appended to
/// `out`.
fn tool_input(out: &mut String, input: &RawValue, max: usize) {
    let raw = input.get();
    if raw.trim_start().starts_with('"') {
        if let Ok(s) = json_str::decode_literal(raw.trim()) {
            return truncated_fence(out, "text", &s, max);
        }
    }
    match pretty_json(raw, max) {
        Some((kept, total)) => fence_of_part(out, "json", &kept, total),
        None => truncated_fence(out, "json", raw, max),
    }
}

/// The first `max` bytes of a text too long to build whole (indentation
/// grows with depth), and its full length.
struct Capped {
    out: String,
    max: usize,
    total: usize,
    full: bool,
}

impl Capped {
    fn push_str(&mut self, s: &str) {
        self.total += s.len();
        if self.full {
            return;
        }
        if self.out.len() + s.len() <= self.max {
            self.out.push_str(s);
            return;
        }
        let (kept, _) = cm::truncate(s, self.max - self.out.len());
        self.out.push_str(kept);
        self.full = true;
    }

    fn push(&mut self, c: char) {
        self.push_str(c.encode_utf8(&mut [0; 4]));
    }

    fn newline(&mut self, depth: usize) {
        self.push('\n');
        let width = depth * 2;
        if self.full {
            self.total += width;
            return;
        }
        let room = self.max - self.out.len();
        self.out.extend(std::iter::repeat_n(' ', width.min(room)));
        self.total += width;
        self.full = width > room;
    }
}

/// Re-indent valid JSON text (two spaces per level), keeping key order and
/// number spelling exactly as written: its first `max` bytes and its full
/// length, in time linear in `raw` and memory bounded by `max`. `None` when
/// nested deeper than [`PRETTY_MAX_DEPTH`].
fn pretty_json(raw: &str, max: usize) -> Option<(String, usize)> {
    let mut out = Capped {
        out: String::with_capacity(max.min(raw.len() + raw.len() / 4)),
        max,
        total: 0,
        full: false,
    };
    let mut depth = 0usize;
    for seg in json_str::segments(raw) {
        let other = match seg {
            Segment::String(s) => {
                out.push_str(s);
                continue;
            }
            Segment::Other(s) => s,
        };
        // Between two strings: structure, numbers, literals, whitespace.
        let mut chars = other.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' | '[' => {
                    out.push(c);
                    while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                        chars.next();
                    }
                    let close = if c == '{' { '}' } else { ']' };
                    if chars.peek() == Some(&close) {
                        chars.next();
                        out.push(close);
                    } else {
                        depth += 1;
                        if depth > PRETTY_MAX_DEPTH {
                            return None;
                        }
                        out.newline(depth);
                    }
                }
                '}' | ']' => {
                    depth = depth.saturating_sub(1);
                    out.newline(depth);
                    out.push(c);
                }
                ',' => {
                    out.push(c);
                    out.newline(depth);
                }
                ':' => out.push_str(": "),
                c if c.is_ascii_whitespace() => {}
                c => out.push(c),
            }
        }
    }
    Some((out.out, out.total))
}

/// `2026-01-08T15:56:38.102Z` → `2026-01-08 15:56:38Z`; fractional seconds
/// dropped, the zone kept as written. Anything else is returned unchanged.
pub fn compact_time(ts: &str) -> String {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| s.iter().all(|c| c.is_ascii_digit()))
    };
    let shaped = b.len() >= 19
        && digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    let (Some(date), Some(clock), Some(mut rest)) = (ts.get(..10), ts.get(11..19), ts.get(19..))
    else {
        return ts.to_owned();
    };
    if !shaped {
        return ts.to_owned();
    }
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let zone = if rest.eq_ignore_ascii_case("z") {
        "Z"
    } else {
        rest
    };
    format!("{date} {clock}{zone}")
}

/// The YAML frontmatter block, `---` to `---` with a final line break.
/// Every string is a JSON-style double-quoted scalar, so any title is safe.
pub fn frontmatter_text(meta: &SessionMeta) -> String {
    let mut out = String::from("---\n");
    let scalar = |out: &mut String, key: &str, v: Option<&str>| {
        out.push_str(key);
        out.push_str(": ");
        match v {
            Some(v) => out.push_str(&yaml_quote(v)),
            None => out.push_str("null"),
        }
        out.push('\n');
    };
    let list = |out: &mut String, key: &str, items: &[String]| {
        out.push_str(key);
        if items.is_empty() {
            out.push_str(": []\n");
            return;
        }
        out.push_str(":\n");
        for item in items {
            out.push_str("  - ");
            out.push_str(&yaml_quote(item));
            out.push('\n');
        }
    };
    scalar(&mut out, "id", Some(&meta.id));
    scalar(&mut out, "title", Some(&meta.title));
    scalar(&mut out, "provider", Some(&meta.provider));
    scalar(&mut out, "session_id", Some(&meta.session_id));
    list(&mut out, "participants", &meta.participants);
    scalar(&mut out, "created", meta.created.as_deref());
    scalar(&mut out, "updated", meta.updated.as_deref());
    list(&mut out, "recording_ids", &meta.recording_ids);
    out.push_str("---\n");
    out
}

/// A double-quoted scalar valid as both JSON and YAML: quotes, backslashes
/// and every character YAML does not allow unescaped become escapes.
fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if yaml_printable(c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// YAML 1.2's printable set, minus the byte-order mark and line separators.
fn yaml_printable(c: char) -> bool {
    matches!(c,
        '\u{20}'..='\u{7E}'
        | '\u{A0}'..='\u{2027}'
        | '\u{202A}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FEFE}'
        | '\u{FF00}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// The frontmatter of an existing document, found so that kato can append
/// below it and leave it untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frontmatter<'a> {
    /// The whole block: any byte-order mark, both delimiter lines and the
    /// line break after the closing one.
    pub block: &'a str,
    /// The YAML between the delimiters.
    pub yaml: &'a str,
    /// Everything after the block.
    pub body: &'a str,
}

/// Detect YAML frontmatter: the document starts (after an optional BOM)
/// with a `---` line and a later `---` or `...` line closes it. `None` when
/// there is none or it is never closed.
pub fn split_frontmatter(existing: &str) -> Option<Frontmatter<'_>> {
    let start = if existing.starts_with('\u{FEFF}') {
        '\u{FEFF}'.len_utf8()
    } else {
        0
    };
    let rest = existing.get(start..)?;
    let mut lines = rest.split_inclusive('\n');
    let first = lines.next()?;
    if !first.ends_with('\n') || first.trim_end() != "---" {
        return None;
    }
    let yaml_start = start + first.len();
    let mut pos = yaml_start;
    for line in lines {
        let end = pos + line.len();
        let t = line.trim_end();
        if t == "---" || t == "..." {
            return Some(Frontmatter {
                block: existing.get(..end)?,
                yaml: existing.get(yaml_start..pos)?,
                body: existing.get(end..)?,
            });
        }
        pos = end;
    }
    None
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn times_are_compacted() {
        assert_eq!(
            compact_time("2026-01-08T15:56:38.102Z"),
            "2026-01-08 15:56:38Z"
        );
        assert_eq!(
            compact_time("2026-01-08T15:56:38+01:00"),
            "2026-01-08 15:56:38+01:00"
        );
        assert_eq!(compact_time("yesterday"), "yesterday");
        assert_eq!(compact_time("2026-01-08"), "2026-01-08");
        assert_eq!(compact_time("2026-01-08T15:5é:38Z"), "2026-01-08T15:5é:38Z");
    }

    #[test]
    fn json_is_reindented_in_order() {
        let pretty = |raw| pretty_json(raw, usize::MAX).map(|(s, _)| s);
        let want = "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": {},\n  \"s\": \"x,{\\\"y\\\":[]}\"\n}";
        assert_eq!(
            pretty(r#"{"b":1,"a":[1, 2],"e":{},"s":"x,{\"y\":[]}"}"#).as_deref(),
            Some(want)
        );
        assert_eq!(pretty("[ ]").as_deref(), Some("[]"));
        assert_eq!(pretty("3.10").as_deref(), Some("3.10"));
        // Cut anywhere, the kept part is the full text's prefix and the
        // length is the full text's.
        let raw = r#"{"b":1,"a":[1, [2, "é"]],"e":{}}"#;
        let whole = pretty(raw).unwrap_or_default();
        for max in 0..=whole.len() + 1 {
            let (kept, total) = pretty_json(raw, max).unwrap_or_default();
            assert_eq!(total, whole.len());
            assert_eq!(kept, cm::truncate(&whole, max).0, "max {max}");
        }
        // Deeper than the limit: not re-indented.
        let deep = "[".repeat(PRETTY_MAX_DEPTH + 1) + "1" + &"]".repeat(PRETTY_MAX_DEPTH + 1);
        assert_eq!(pretty_json(&deep, 1 << 20), None);
        let limit = "[".repeat(PRETTY_MAX_DEPTH) + "1" + &"]".repeat(PRETTY_MAX_DEPTH);
        assert!(pretty_json(&limit, 1 << 20).is_some());
    }

    #[test]
    fn yaml_quoting_escapes_what_yaml_rejects() {
        assert_eq!(yaml_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            yaml_quote("x\u{0}\u{7f}\u{85}\u{feff}\u{2028}"),
            r#""x\u0000\u007F\u0085\uFEFF\u2028""#
        );
        assert_eq!(yaml_quote("ü 🙂"), "\"ü 🙂\"");
        // Also valid JSON, decoding to the original.
        let s = "t\u{1}\u{fffe}\n\u{1F600}";
        let back: String = serde_json::from_str(&yaml_quote(s)).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn frontmatter_is_detected() {
        let doc = "---\ntitle: x\n---\n# Body\n";
        let fm = split_frontmatter(doc).unwrap();
        assert_eq!(fm.block, "---\ntitle: x\n---\n");
        assert_eq!(fm.yaml, "title: x\n");
        assert_eq!(fm.body, "# Body\n");

        let crlf = "\u{FEFF}---\r\na: 1\r\n...\r\nrest";
        let fm = split_frontmatter(crlf).unwrap();
        assert_eq!(fm.yaml, "a: 1\r\n");
        assert_eq!(fm.body, "rest");

        let empty = split_frontmatter("---\n---").unwrap();
        assert_eq!((empty.yaml, empty.body), ("", ""));

        assert_eq!(split_frontmatter("---\nnever closed\n"), None);
        assert_eq!(split_frontmatter("# no frontmatter\n---\n"), None);
        assert_eq!(split_frontmatter("----\nx\n---\n"), None);
        assert_eq!(split_frontmatter(""), None);
    }

    #[test]
    fn frontmatter_round_trips_through_detection() {
        let meta = SessionMeta {
            id: "claude-0011".into(),
            title: "a \"quoted\" ---\ntitle".into(),
            provider: "claude".into(),
            session_id: "s".into(),
            participants: vec!["user".into()],
            created: None,
            updated: Some("2026-01-01T00:00:00Z".into()),
            recording_ids: vec![],
        };
        let text = frontmatter_text(&meta);
        let fm = split_frontmatter(&text).unwrap();
        assert_eq!(fm.block, text);
        assert!(fm
            .yaml
            .contains("title: \"a \\\"quoted\\\" ---\\ntitle\"\n"));
        assert!(fm.yaml.contains("created: null\n"));
        assert!(fm.yaml.contains("recording_ids: []\n"));
    }
}
