//! The in-chat command grammar (SPEC §6).
//!
//! Commands are read only from text the human typed in the main
//! conversation ([`Event::is_human_message`]); this module never sees
//! assistant text, thinking, tool output, subagent work or injected context,
//! so a model or a file a tool read cannot steer kato.
//!
//! A command is a whole line: up to three leading spaces, `::`, a name,
//! then either the end of the line or one space and one argument running to
//! the end of the line. The message is Markdown and only its plain text
//! counts: lines in code (fenced or indented), block quotes, lists, HTML
//! blocks and comments, headings, code spans and links are not commands;
//! `::name` in the middle of a sentence is not a command (see [`scan`]).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::event::{Event, Payload, Source};

/// The five commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Name {
    Init,
    Record,
    Capture,
    Export,
    Stop,
}

impl Name {
    pub fn as_str(self) -> &'static str {
        match self {
            Name::Init => "init",
            Name::Record => "record",
            Name::Capture => "capture",
            Name::Export => "export",
            Name::Stop => "stop",
        }
    }

    /// The correct form, quoted in error messages.
    pub fn usage(self) -> &'static str {
        match self {
            Name::Init => "::init [/absolute/path]",
            Name::Record => "::record",
            Name::Capture => "::capture [/absolute/path]",
            Name::Export => "::export /absolute/path",
            Name::Stop => "::stop",
        }
    }

    fn parse(s: &str) -> Option<Name> {
        Some(match s {
            "init" => Name::Init,
            "record" => Name::Record,
            "capture" => Name::Capture,
            "export" => Name::Export,
            "stop" => Name::Stop,
            _ => return None,
        })
    }
}

/// Output format chosen by a destination's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Markdown,
    Jsonl,
}

/// A well-formed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: Name,
    /// The path argument as typed (already checked to be absolute).
    pub arg: Option<String>,
}

impl Command {
    /// The destination the argument names: no extension → `.md` appended;
    /// `.jsonl` → JSONL; anything else → Markdown. The path policy still has
    /// to approve it before anything is written.
    pub fn target(&self) -> Option<(PathBuf, Format)> {
        self.arg.as_deref().map(target_of)
    }
}

/// Destination path and format for an argument.
pub fn target_of(arg: &str) -> (PathBuf, Format) {
    let p = Path::new(arg);
    match p.extension() {
        None => {
            let mut s = arg.to_owned();
            s.push_str(".md");
            (PathBuf::from(s), Format::Markdown)
        }
        Some(ext) if ext == "jsonl" => (p.to_path_buf(), Format::Jsonl),
        Some(_) => (p.to_path_buf(), Format::Markdown),
    }
}

/// One command-looking line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 0-based line number inside the message.
    pub line: u32,
    /// The line as typed, without its end-of-line.
    pub raw: String,
    /// The command, or why it is not one (naming the right form).
    pub parsed: Result<Command, CommandError>,
}

/// Why a command-looking line is not a command. The message names the
/// right form; it is what the human sees (audit log, status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command `::{word}`; {}", unknown_hint(*hint))]
    Unknown { word: String, hint: Option<Name> },
    #[error("malformed `::{word}`: one space, then the argument; the form is `{}`", name.usage())]
    Spacing { word: String, name: Name },
    #[error("malformed `::{word}`: the form is `{}`", name.usage())]
    Malformed { word: String, name: Name },
    #[error(
        "`::{}` takes no argument; the form is `{}`{}",
        name.as_str(),
        name.usage(),
        if *name == Name::Record {
            " (to record into a given file use `::capture /absolute/path`, or `::init /absolute/path` then `::record`)"
        } else {
            ""
        }
    )]
    NoArgument { name: Name },
    #[error("`::export` needs a destination; the form is `{}`", Name::Export.usage())]
    NoDestination,
    #[error("`{arg}` is not an absolute path; the form is `{}`", name.usage())]
    NotAbsolute { arg: String, name: Name },
    #[error("the path contains a NUL byte")]
    Nul,
    /// A Markdown reader would not see what follows `<!--`: the line says
    /// something other than it shows.
    #[error("an HTML comment on a command line; put it on a line of its own: the form is `{}`", name.usage())]
    Comment { name: Name },
    /// The text is not a command line at all.
    #[error("not a command line")]
    NotACommand,
}

/// Find the command lines of a human message, in order.
///
/// The human's text is Markdown, and only its plain text is a command: a
/// line is one when it starts with `::` and a letter after at most three
/// spaces (no tab), lies outside anything that looks like a code fence at
/// any indentation, and CommonMark reads its `::` as plain text directly in
/// a top-level paragraph — not in an indented code block, a block quote
/// (lazy continuation lines included), a list, an HTML block or comment, a
/// heading, a code span, emphasis or a link. When in doubt, a line is not a
/// command. The Markdown is parsed only when a line qualifies otherwise, so
/// most messages cost one pass over their lines.
pub fn scan(text: &str) -> Vec<Line> {
    let candidates = candidates(text);
    if candidates.is_empty() {
        return Vec::new();
    }
    let plain = top_level_text(text);
    candidates
        .into_iter()
        .filter(|c| plain.iter().any(|r| r.contains(&c.at)))
        .map(|c| Line {
            line: c.line,
            raw: c.raw.to_owned(),
            parsed: parse_command(c.rest),
        })
        .collect()
}

/// A line that may be a command, before the Markdown has its say.
struct Candidate<'a> {
    line: u32,
    /// Byte offset of its `::` in the message.
    at: usize,
    /// The line without its end-of-line.
    raw: &'a str,
    /// What follows the `::`.
    rest: &'a str,
}

/// Lines with `::` and a letter after at most three spaces, outside code
/// fences. Fences are recognised at any indentation: when in doubt, a line
/// is code, not a command.
fn candidates(text: &str) -> Vec<Candidate<'_>> {
    let mut found = Vec::new();
    let mut fence: Option<(u8, usize)> = None;
    let mut start = 0;
    for (n, raw) in text.split('\n').enumerate() {
        let line_start = start;
        start += raw.len() + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if let Some((ch, len)) = fence {
            if closes_fence(trimmed, ch, len) {
                fence = None;
            }
            continue;
        }
        if let Some(open) = opens_fence(trimmed) {
            fence = Some(open);
            continue;
        }
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let Some(rest) = line[spaces..].strip_prefix("::") else {
            continue;
        };
        if spaces > 3 || !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        found.push(Candidate {
            line: u32::try_from(n).unwrap_or(u32::MAX),
            at: line_start + spaces,
            raw: line,
            rest,
        });
    }
    found
}

/// Byte ranges of the plain text that sits directly in a top-level
/// paragraph of `text` read as CommonMark (no extensions).
fn top_level_text(text: &str) -> Vec<std::ops::Range<usize>> {
    use pulldown_cmark::{Event as Md, Options, Parser, Tag};
    let mut ranges = Vec::new();
    // Open elements, and whether the outermost one is a paragraph.
    let mut depth = 0usize;
    let mut top_paragraph = false;
    for (event, range) in Parser::new_ext(text, Options::empty()).into_offset_iter() {
        match event {
            Md::Start(tag) => {
                if depth == 0 {
                    top_paragraph = matches!(tag, Tag::Paragraph);
                }
                depth += 1;
            }
            Md::End(_) => depth = depth.saturating_sub(1),
            Md::Text(_) if depth == 1 && top_paragraph => ranges.push(range),
            _ => {}
        }
    }
    ranges
}

/// Parse what follows `::` on a command line.
fn parse_command(rest: &str) -> Result<Command, CommandError> {
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    let (word, tail) = rest.split_at(name_end);
    let Some(name) = Name::parse(word) else {
        return Err(unknown(word));
    };
    let arg = if tail.is_empty() {
        None
    } else if let Some(a) = tail.strip_prefix(' ') {
        if a.is_empty() || a.starts_with([' ', '\t']) || a.trim_end().len() != a.len() {
            return Err(CommandError::Spacing {
                word: word.to_owned(),
                name,
            });
        }
        Some(a.to_owned())
    } else {
        return Err(CommandError::Malformed {
            word: word.to_owned(),
            name,
        });
    };
    match (name, arg) {
        (Name::Record | Name::Stop, Some(_)) => Err(CommandError::NoArgument { name }),
        (_, Some(a)) if a.contains("<!--") => Err(CommandError::Comment { name }),
        (Name::Export, None) => Err(CommandError::NoDestination),
        (_, Some(a)) if !a.starts_with('/') => Err(CommandError::NotAbsolute { arg: a, name }),
        (_, Some(a)) if a.contains('\0') => Err(CommandError::Nul),
        (name, arg) => Ok(Command { name, arg }),
    }
}

const ALL: [Name; 5] = [
    Name::Init,
    Name::Record,
    Name::Capture,
    Name::Export,
    Name::Stop,
];

fn unknown(word: &str) -> CommandError {
    let lower = word.to_ascii_lowercase();
    let hint = match lower.as_str() {
        "start" | "begin" | "rec" | "recording" => Some(Name::Record),
        "end" | "pause" | "halt" | "off" => Some(Name::Stop),
        "save" | "dump" | "write" => Some(Name::Export),
        _ => ALL
            .into_iter()
            .find(|n| n.as_str() == lower || edit_distance(n.as_str(), &lower) <= 2),
    };
    CommandError::Unknown {
        word: word.to_owned(),
        hint,
    }
}

fn unknown_hint(hint: Option<Name>) -> String {
    match hint {
        Some(n) => format!("did you mean `{}`?", n.usage()),
        None => format!(
            "commands are {}",
            ALL.iter()
                .map(|n| format!("`{}`", n.usage()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Levenshtein distance for short ASCII words (typo hints only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().take(32).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A code fence opener (CommonMark): 3+ backticks or tildes. Returns the
/// fence character and length. Fences are recognised at any indentation:
/// when in doubt, a line is code, not a command.
fn opens_fence(trimmed: &str) -> Option<(u8, usize)> {
    let ch = *trimmed.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = trimmed.bytes().take_while(|&c| c == ch).count();
    if len < 3 {
        return None;
    }
    if ch == b'`' && trimmed[len..].contains('`') {
        return None;
    }
    Some((ch, len))
}

fn closes_fence(trimmed: &str, ch: u8, len: usize) -> bool {
    let run = trimmed.bytes().take_while(|&c| c == ch).count();
    run >= len && trimmed[run..].trim().is_empty()
}

/// The `user.kato-command` events of one human message, in line order.
/// Events that are not human messages yield nothing.
pub fn command_events(ev: &Event) -> Vec<Event> {
    let Payload::UserMessage { text, .. } = &ev.payload else {
        return Vec::new();
    };
    if !ev.is_human_message() || !text.contains("::") {
        return Vec::new();
    }
    scan(text)
        .into_iter()
        .map(|l| {
            let mut cmd = Event::new(
                ev.provider,
                ev.session_id.clone(),
                format!("{}/cmd{}", ev.event_id, l.line),
                Source {
                    record: ev.source.record.clone(),
                    offset: ev.source.offset,
                    file: ev.source.file.clone(),
                },
                Payload::KatoCommand {
                    raw: l.raw,
                    line: l.line,
                    message_id: ev.event_id.clone(),
                    error: l.parsed.err().map(|e| e.to_string()),
                },
            );
            cmd.timestamp = ev.timestamp.clone();
            cmd.turn_id = ev.turn_id.clone();
            // A command in copied history is history too (never executed).
            cmd.copied = ev.copied;
            cmd
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Option<Result<Command, String>> {
        let mut v = scan(text);
        assert!(v.len() <= 1, "{v:?}");
        v.pop().map(|l| l.parsed.map_err(|e| e.to_string()))
    }

    fn ok(name: Name, arg: Option<&str>) -> Option<Result<Command, String>> {
        Some(Ok(Command {
            name,
            arg: arg.map(str::to_owned),
        }))
    }

    #[test]
    fn valid_forms() {
        assert_eq!(one("::record"), ok(Name::Record, None));
        assert_eq!(one("::stop"), ok(Name::Stop, None));
        assert_eq!(one("::init"), ok(Name::Init, None));
        assert_eq!(one("::capture"), ok(Name::Capture, None));
        assert_eq!(one("  ::init /n/a.md"), ok(Name::Init, Some("/n/a.md")));
        assert_eq!(
            one("::capture /home/me/notes/design.md"),
            ok(Name::Capture, Some("/home/me/notes/design.md"))
        );
        assert_eq!(
            one("::export /tmp/x y.jsonl"),
            ok(Name::Export, Some("/tmp/x y.jsonl"))
        );
        assert_eq!(one("::stop\r"), ok(Name::Stop, None));
    }

    #[test]
    fn prose_and_code_are_not_commands() {
        for text in [
            "please ::record this",
            "use `::record` to start",
            "```\n::record\n```",
            "~~~md\n::stop\n~~~",
            "   ```\n::capture /a\n   ```",
            "````\n```\n::record\n```\n````",
            "> ::record",
            "  > ::stop",
            ":: record",
            "::",
            "::/tmp/x",
            "text\n::123",
            // CommonMark's code, quotes, lists, HTML and headings.
            "    ::record",
            "para\n\n    ::record",
            "\t::record",
            "text\n    ::stop",
            "> quote\n::record",
            "> > quote\n::stop",
            "- item\n::record",
            "- ::record",
            "1. ::record",
            "<!--\n::record\n-->",
            "<!-- note\n::stop -->",
            "<div>\n::record\n</div>",
            "`code\n::record`",
            "*emphasis\n::record*",
            "[link\n::record](/u)",
            "::record\n---",
            "::stop\n===",
            "# ::record",
            "    ```\n::record\n    ```",
        ] {
            assert!(scan(text).is_empty(), "{text:?} gave {:?}", scan(text));
        }
    }

    #[test]
    fn plain_paragraph_lines_are_commands() {
        let lines = |text: &str| -> Vec<(u32, String)> {
            scan(text).into_iter().map(|l| (l.line, l.raw)).collect()
        };
        // After a one-line comment, the HTML block has ended.
        assert_eq!(lines("<!-- note -->\n::record"), [(1, "::record".into())]);
        // CRLF line ends: the raw line has none.
        assert_eq!(
            lines("hello\r\n::capture /a\r\n"),
            [(1, "::capture /a".into())]
        );
        assert_eq!(one("::capture /a\r\n"), ok(Name::Capture, Some("/a")));
        // Up to three spaces, at the start or continuing a paragraph.
        assert_eq!(lines("   ::stop"), [(0, "   ::stop".into())]);
        assert_eq!(lines("text\n  ::stop"), [(1, "  ::stop".into())]);
        assert_eq!(
            lines("> quote\n\n::record\n\n::stop"),
            [(2, "::record".into()), (4, "::stop".into())]
        );
        assert_eq!(lines("- item\n\n::record"), [(2, "::record".into())]);
    }

    #[test]
    fn a_comment_on_a_command_line_is_refused() {
        match one("::capture /n/a.md <!-- x -->") {
            Some(Err(msg)) => assert!(msg.contains("HTML comment"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(one("::stop <!-- x -->"), Some(Err(_))));
        assert!(scan("<!-- x --> ::stop").is_empty());
    }

    #[test]
    fn unclosed_fence_hides_the_rest() {
        assert!(scan("```\n::record\nmore").is_empty());
        assert_eq!(scan("```\ncode\n```\n::record").len(), 1);
    }

    #[test]
    fn invalid_forms_name_the_right_form() {
        let cases = [
            ("::start", "::record"),
            ("::record /x", "takes no argument"),
            ("::stop now", "takes no argument"),
            ("::exprot /a", "::export /absolute/path"),
            ("::export", "needs a destination"),
            ("::capture notes/a.md", "not an absolute path"),
            ("::init  /a", "one space"),
            ("::record\t", "the form is `::record`"),
            ("::Record", "::record"),
            ("::frobnicate", "commands are"),
        ];
        for (text, needle) in cases {
            match one(text) {
                Some(Err(msg)) => assert!(msg.contains(needle), "{text:?}: {msg}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn several_commands_in_order() {
        let v = scan("intro\n::init /a\nmiddle\n::record\n::stop");
        let lines: Vec<_> = v.iter().map(|l| l.line).collect();
        assert_eq!(lines, [1, 3, 4]);
        assert!(v.iter().all(|l| l.parsed.is_ok()));
    }

    #[test]
    fn targets() {
        assert_eq!(
            target_of("/n/design"),
            ("/n/design.md".into(), Format::Markdown)
        );
        assert_eq!(
            target_of("/n/d.jsonl"),
            ("/n/d.jsonl".into(), Format::Jsonl)
        );
        assert_eq!(target_of("/n/d.txt"), ("/n/d.txt".into(), Format::Markdown));
    }

    /// The table of SPEC §6: text × where it appears → which commands run.
    // Long because: the table of SPEC §6 in one piece, row by row.
    #[test]
    fn command_table() {
        use crate::event::{
            raw_from_str, Event, Payload, ProviderId, Source, Subagent, SystemCategory,
        };

        fn ev(payload: Payload, subagent: bool) -> Event {
            let mut e = Event::new(
                ProviderId::Claude,
                "s",
                "m",
                Source {
                    record: "user".into(),
                    offset: 0,
                    file: None,
                },
                payload,
            );
            if subagent {
                e.subagent = Some(Subagent {
                    id: Some("a1".into()),
                    label: None,
                });
            }
            e
        }
        fn human(text: &str) -> Event {
            ev(
                Payload::UserMessage {
                    text: text.into(),
                    attachments: 0,
                },
                false,
            )
        }
        fn system(cat: SystemCategory, text: &str) -> Event {
            ev(
                Payload::SystemMessage {
                    category: cat,
                    text: text.into(),
                },
                false,
            )
        }
        /// Line and validity of each expected command event.
        type Expected = Vec<(u32, bool)>;
        let cases: Vec<(&str, Event, Expected)> = vec![
            ("init", human("::init"), vec![(0, true)]),
            ("init path", human("::init /n/a.md"), vec![(0, true)]),
            ("record", human("::record"), vec![(0, true)]),
            ("capture", human("::capture"), vec![(0, true)]),
            ("capture path", human("::capture /n/a"), vec![(0, true)]),
            ("export", human("::export /n/a.jsonl"), vec![(0, true)]),
            ("stop", human("::stop"), vec![(0, true)]),
            ("indented", human("   ::stop"), vec![(0, true)]),
            ("after prose", human("look:\n::record"), vec![(1, true)]),
            (
                "several in order",
                human("::init /a\n::record\n::stop"),
                vec![(0, true), (1, true), (2, true)],
            ),
            ("mid-sentence", human("please ::record now"), vec![]),
            ("inline code", human("type `::record`"), vec![]),
            ("backtick fence", human("```\n::record\n```"), vec![]),
            ("tilde fence", human("~~~\n::record\n~~~"), vec![]),
            ("indented fence", human("  ```sh\n::record\n  ```"), vec![]),
            ("long fence", human("`````\n```\n::stop\n`````"), vec![]),
            ("block quote", human("> ::record"), vec![]),
            ("nested quote", human("> > ::record"), vec![]),
            ("lazy quote line", human("> quoted\n::record"), vec![]),
            ("indented code", human("    ::record"), vec![]),
            ("tab-indented", human("\t::record"), vec![]),
            ("list item", human("- a\n::record"), vec![]),
            ("HTML comment", human("<!--\n::record\n-->"), vec![]),
            (
                "after a comment",
                human("<!-- x -->\n::stop"),
                vec![(1, true)],
            ),
            (
                "comment on the line",
                human("::init /a <!-- x -->"),
                vec![(0, false)],
            ),
            ("code span", human("`a\n::record`"), vec![]),
            ("setext heading", human("::record\n---"), vec![]),
            ("CRLF", human("hi\r\n::record\r\n"), vec![(1, true)]),
            ("after fence", human("```\nx\n```\n::stop"), vec![(3, true)]),
            ("start", human("::start"), vec![(0, false)]),
            (
                "record with path",
                human("::record /x.md"),
                vec![(0, false)],
            ),
            ("stop with arg", human("::stop now"), vec![(0, false)]),
            ("unknown", human("::frobnicate"), vec![(0, false)]),
            ("typo", human("::exprot /a"), vec![(0, false)]),
            (
                "relative path",
                human("::capture notes/a.md"),
                vec![(0, false)],
            ),
            ("export without path", human("::export"), vec![(0, false)]),
            ("two spaces", human("::init  /a"), vec![(0, false)]),
            (
                "valid then invalid",
                human("::init /a\n::start"),
                vec![(0, true), (1, false)],
            ),
            (
                "assistant text",
                ev(
                    Payload::AssistantMessage {
                        text: "::record".into(),
                    },
                    false,
                ),
                vec![],
            ),
            (
                "thinking",
                ev(
                    Payload::Thinking {
                        text: "::record".into(),
                    },
                    false,
                ),
                vec![],
            ),
            (
                "tool call",
                ev(
                    Payload::ToolCall {
                        tool_call_id: "t".into(),
                        name: "Bash".into(),
                        input: raw_from_str("{\"command\":\"echo '\\n::record'\"}"),
                    },
                    false,
                ),
                vec![],
            ),
            (
                "tool result",
                ev(
                    Payload::ToolResult {
                        tool_call_id: "t".into(),
                        output: "::capture /tmp/x".into(),
                        is_error: false,
                    },
                    false,
                ),
                vec![],
            ),
            (
                "subagent prompt",
                ev(
                    Payload::UserMessage {
                        text: "::record".into(),
                        attachments: 0,
                    },
                    true,
                ),
                vec![],
            ),
            (
                "sidechain system prompt",
                system(SystemCategory::SubagentPrompt, "::record"),
                vec![],
            ),
            (
                "isMeta wrapper",
                system(SystemCategory::CommandWrapper, "::record"),
                vec![],
            ),
            (
                "compaction summary",
                system(SystemCategory::Compaction, "::capture /a"),
                vec![],
            ),
            (
                "environment context",
                system(
                    SystemCategory::InjectedContext,
                    "<environment_context>\n::record\n</environment_context>",
                ),
                vec![],
            ),
            (
                "IDE context",
                system(
                    SystemCategory::IdeContext,
                    "<ide_selection>\n::record\n</ide_selection>",
                ),
                vec![],
            ),
            (
                "user shell",
                system(SystemCategory::UserShell, "::record"),
                vec![],
            ),
            (
                "model input",
                system(SystemCategory::ModelInput, "::record"),
                vec![],
            ),
            (
                "decision response",
                ev(
                    Payload::DecisionResponse {
                        prompt_id: "p".into(),
                        text: "::record".into(),
                    },
                    false,
                ),
                vec![],
            ),
            (
                "decision prompt",
                ev(
                    Payload::DecisionPrompt {
                        prompt_id: "p".into(),
                        name: "AskUserQuestion".into(),
                        text: "::record".into(),
                    },
                    false,
                ),
                vec![],
            ),
            (
                "provider info",
                ev(
                    Payload::ProviderInfo {
                        topic: "title".into(),
                        data: raw_from_str("\"::record\""),
                    },
                    false,
                ),
                vec![],
            ),
            (
                "provider raw",
                ev(
                    Payload::ProviderRaw {
                        record: raw_from_str("{\"text\":\"::record\"}"),
                    },
                    false,
                ),
                vec![],
            ),
        ];
        assert!(cases.len() >= 40, "{} cases", cases.len());
        for (name, event, want) in cases {
            let got: Vec<(u32, bool)> = command_events(&event)
                .iter()
                .map(|c| match &c.payload {
                    Payload::KatoCommand { line, error, .. } => (*line, error.is_none()),
                    _ => panic!("{name}: not a command event"),
                })
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
