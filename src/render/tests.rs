//! Renderer tests: document structure under hostile content (checked with a
//! CommonMark parser), snapshots of realistic sessions, metadata, JSONL
//! round trips, determinism and streaming.

use std::collections::BTreeMap;
use std::io::Write;

use proptest::prelude::*;
use pulldown_cmark::{Event as Md, HeadingLevel, MetadataBlockKind, Options, Parser, Tag, TagEnd};

use super::jsonl::JsonlWriter;
use super::markdown::{split_frontmatter, MarkdownRenderer, RenderState};
use super::{session_key, MetaCollector, SessionMeta, UNTITLED};

/// A collector with the default redaction.
fn collector() -> MetaCollector {
    let redactor = crate::redact::Redactor::new(&crate::redact::RedactionOptions::default());
    MetaCollector::new(std::sync::Arc::new(redactor.unwrap()))
}
use crate::config::MarkdownOptions;
use crate::event::{
    raw_from_str, raw_json, Event, Kind, Payload, Source, Subagent, SystemCategory,
};

// ---------------------------------------------------------------- builders

/// Builds event sequences with ids, offsets and increasing timestamps.
struct Seq {
    provider: &'static str,
    session: String,
    events: Vec<Event>,
    clock: u32,
    model: Option<String>,
    turn: Option<String>,
    sub: Option<Subagent>,
}

impl Seq {
    fn new(provider: &'static str) -> Seq {
        Seq {
            provider,
            session: "0199a1b2-sess".into(),
            events: Vec::new(),
            clock: 0,
            model: None,
            turn: None,
            sub: None,
        }
    }

    fn push(&mut self, record: &str, payload: Payload) -> &mut Seq {
        let n = self.events.len();
        let mut ev = Event::new(
            self.provider.parse().unwrap(),
            self.session.clone(),
            format!("ev-{n}"),
            Source {
                record: record.to_owned().into(),
                offset: (n as u64) * 100,
                file: None,
            },
            payload,
        );
        let t = 15 * 3600 + 56 * 60 + self.clock;
        ev.timestamp = Some(
            format!(
                "2026-01-08T{:02}:{:02}:{:02}.{:03}Z",
                t / 3600,
                t / 60 % 60,
                t % 60,
                (self.clock * 37) % 1000
            )
            .into(),
        );
        self.clock += 7;
        let assistant_side = matches!(
            ev.kind(),
            Kind::AssistantMessage
                | Kind::Thinking
                | Kind::ToolCall
                | Kind::ToolResult
                | Kind::DecisionPrompt
        );
        if assistant_side {
            ev.model = self.model.as_deref().map(Into::into);
        }
        ev.turn_id = self.turn.as_deref().map(Into::into);
        ev.subagent.clone_from(&self.sub);
        self.events.push(ev);
        self
    }

    fn model(&mut self, m: &str) -> &mut Seq {
        self.model = Some(m.into());
        self
    }
    fn turn(&mut self, t: &str) -> &mut Seq {
        self.turn = Some(t.into());
        self
    }
    fn sub(&mut self, label: Option<&str>, id: Option<&str>) -> &mut Seq {
        self.sub = Some(Subagent {
            id: id.map(Into::into),
            label: label.map(Into::into),
        });
        self
    }
    fn main(&mut self) -> &mut Seq {
        self.sub = None;
        self
    }

    fn user(&mut self, text: &str) -> &mut Seq {
        self.push(
            "user",
            Payload::UserMessage {
                text: text.into(),
                attachments: 0,
            },
        )
    }
    fn user_with_attachments(&mut self, text: &str, attachments: u32) -> &mut Seq {
        self.push(
            "user",
            Payload::UserMessage {
                text: text.into(),
                attachments,
            },
        )
    }
    fn command(&mut self, raw: &str) -> &mut Seq {
        let message_id = format!("ev-{}", self.events.len().saturating_sub(1));
        self.push(
            "user",
            Payload::KatoCommand {
                raw: raw.into(),
                line: 0,
                message_id,
                error: None,
            },
        )
    }
    fn say(&mut self, text: &str) -> &mut Seq {
        self.push("assistant", Payload::AssistantMessage { text: text.into() })
    }
    fn think(&mut self, text: &str) -> &mut Seq {
        self.push("assistant", Payload::Thinking { text: text.into() })
    }
    fn call(&mut self, id: &str, name: &str, input: serde_json::Value) -> &mut Seq {
        self.push(
            "assistant",
            Payload::ToolCall {
                tool_call_id: id.into(),
                name: name.into(),
                input: raw_json(&input),
            },
        )
    }
    fn result(&mut self, id: &str, output: &str, is_error: bool) -> &mut Seq {
        self.push(
            "user",
            Payload::ToolResult {
                tool_call_id: id.into(),
                output: output.into(),
                is_error,
            },
        )
    }
    fn system(&mut self, category: SystemCategory, text: &str) -> &mut Seq {
        self.push(
            "system",
            Payload::SystemMessage {
                category,
                text: text.into(),
            },
        )
    }
    fn ask(&mut self, id: &str, name: &str, text: &str) -> &mut Seq {
        self.push(
            "assistant",
            Payload::DecisionPrompt {
                prompt_id: id.into(),
                name: name.into(),
                text: text.into(),
            },
        )
    }
    fn answer(&mut self, id: &str, text: &str) -> &mut Seq {
        self.push(
            "user",
            Payload::DecisionResponse {
                prompt_id: id.into(),
                text: text.into(),
            },
        )
    }
    fn info(&mut self, topic: &str, data: &str) -> &mut Seq {
        self.push(
            "meta",
            Payload::ProviderInfo {
                topic: topic.into(),
                data: raw_from_str(data),
            },
        )
    }
    fn raw(&mut self, record: &str) -> &mut Seq {
        self.push(
            "unknown",
            Payload::ProviderRaw {
                record: raw_from_str(record),
            },
        )
    }
}

fn all_on() -> MarkdownOptions {
    MarkdownOptions {
        frontmatter: true,
        thinking: true,
        tool_calls: true,
        injected_context: true,
        tool_output_max_bytes: 1 << 20,
    }
}

/// Render a whole session the way an export does: metadata, header, events.
fn render(events: &[Event], opts: &MarkdownOptions) -> String {
    let mut meta = collector();
    for ev in events {
        meta.observe(ev);
    }
    let mut meta = meta.finish();
    meta.recording_ids = vec!["rec-0001".into()];
    let mut r = MarkdownRenderer::new(Vec::new(), opts);
    r.header(&meta).unwrap();
    for ev in events {
        r.event(ev).unwrap();
    }
    String::from_utf8(r.finish().unwrap()).unwrap()
}

// ------------------------------------------------------- structure checks

/// What a document looks like at kato's level, from a CommonMark parse.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    /// In order: `frontmatter`, headings of levels 1–3 (`h2:User`…, by
    /// first word), and kato's HTML lines (`details`, `summary`, `/details`).
    skeleton: Vec<String>,
    /// Marker → (skeleton length when it appears, `<details>` depth).
    markers: BTreeMap<String, (usize, usize)>,
}

const MARKERS: [&str; 2] = ["QXB", "QXE"];

/// Parse `doc` and check the invariants that hold for any content: no
/// inline HTML, only kato's HTML lines, `<details>` balanced with a summary
/// right after each opening, valid frontmatter.
// Long because: one pass over the parsed document checks every invariant.
fn shape(doc: &str) -> Shape {
    let opts = Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut skeleton = Vec::new();
    let mut markers = BTreeMap::new();
    let mut depth = 0usize;
    let mut heading: Option<(HeadingLevel, String)> = None;
    let mut in_meta = false;
    for ev in Parser::new_ext(doc, opts) {
        match ev {
            Md::Start(Tag::MetadataBlock(MetadataBlockKind::YamlStyle)) => {
                assert!(skeleton.is_empty(), "frontmatter not first");
                skeleton.push("frontmatter".to_owned());
                in_meta = true;
            }
            Md::End(TagEnd::MetadataBlock(_)) => in_meta = false,
            Md::Start(Tag::Heading { level, .. }) if level <= HeadingLevel::H3 => {
                heading = Some((level, String::new()));
            }
            Md::End(TagEnd::Heading(level)) if level <= HeadingLevel::H3 => {
                let (l, text) = heading.take().unwrap();
                assert_eq!(l, level);
                let first = text.split([' ', '\u{b7}']).next().unwrap_or("");
                let item = match level {
                    HeadingLevel::H1 => "h1".to_owned(),
                    HeadingLevel::H2 => {
                        assert!(
                            first == "User" || first == "Assistant",
                            "foreign level-2 heading {text:?}"
                        );
                        format!("h2:{first}")
                    }
                    _ => {
                        assert_eq!(first, "Subagent", "foreign level-3 heading {text:?}");
                        "h3:Subagent".to_owned()
                    }
                };
                skeleton.push(item);
            }
            Md::Html(line) => {
                let line = line.trim_end_matches('\n');
                let item = if line == "<details>" {
                    depth += 1;
                    "details"
                } else if line == "</details>" {
                    assert!(depth > 0, "</details> closes nothing");
                    depth -= 1;
                    "/details"
                } else if line.starts_with("<summary>") && line.ends_with("</summary>") {
                    assert_eq!(
                        skeleton.last().map(String::as_str),
                        Some("details"),
                        "summary outside a details opening"
                    );
                    "summary"
                } else {
                    panic!("HTML kato did not write: {line:?}\n---\n{doc}");
                };
                skeleton.push(item.to_owned());
            }
            Md::InlineHtml(h) => panic!("inline HTML from content: {h:?}\n---\n{doc}"),
            Md::Text(t) | Md::Code(t) => {
                if in_meta {
                    check_yaml(&t);
                    continue;
                }
                if let Some((_, text)) = heading.as_mut() {
                    text.push_str(&t);
                }
                for m in MARKERS {
                    let mut rest: &str = &t;
                    while let Some(i) = rest.find(m) {
                        let tail = &rest[i + m.len()..];
                        let digits: String =
                            tail.chars().take_while(char::is_ascii_digit).collect();
                        markers.insert(format!("{m}{digits}"), (skeleton.len(), depth));
                        rest = &tail[digits.len()..];
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unclosed <details>\n---\n{doc}");
    Shape { skeleton, markers }
}

/// Every frontmatter line is `key: <JSON>` or `  - <JSON>`.
fn check_yaml(yaml: &str) {
    let keys = [
        "id",
        "title",
        "provider",
        "session_id",
        "participants",
        "created",
        "updated",
        "recording_ids",
    ];
    let mut seen = Vec::new();
    for line in yaml.lines() {
        if let Some(item) = line.strip_prefix("  - ") {
            let v: serde_json::Value = serde_json::from_str(item).unwrap();
            assert!(v.is_string(), "{line}");
            continue;
        }
        let (key, value) = line.split_once(':').unwrap();
        seen.push(key.to_owned());
        let value = value.trim();
        if !value.is_empty() {
            let v: serde_json::Value = serde_json::from_str(value).unwrap();
            assert!(
                v.is_string() || v.is_null() || v == serde_json::json!([]),
                "{line}"
            );
        }
    }
    assert_eq!(seen, keys);
}

/// A session with `text` in every place content can appear; with
/// `marked`, between markers numbered by position.
fn placements(text: &str, labels: &str, marked: bool) -> Vec<Event> {
    let mut k = 0;
    let mut wrap = |t: &str| {
        k += 1;
        if marked {
            format!("QXB{k}\n\n{t}\n\nQXE{k}")
        } else {
            t.to_owned()
        }
    };
    let mut s = Seq::new("claude");
    s.system(SystemCategory::InjectedContext, &wrap(text))
        .user(&wrap(text))
        .model(labels)
        .think(&wrap(text))
        .say(&wrap(text))
        .call("t1", labels, serde_json::json!({ "text": wrap(text) }))
        .call("t2", "Write", serde_json::json!(wrap(text)))
        .result("t1", &wrap(text), false)
        .result("t2", &wrap(text), true)
        .sub(Some(labels), Some(labels))
        .system(SystemCategory::SubagentPrompt, &wrap(text))
        .say(&wrap(text))
        .main()
        .system(SystemCategory::Notice, &wrap(text))
        .system(SystemCategory::Compaction, &wrap(text))
        .ask("p1", labels, &wrap(text))
        .answer("p1", &wrap(text))
        .user_with_attachments(&wrap(text), 2);
    s.events
}

/// `text` in every position gives the document the same shape as benign
/// text does, with each marker at the same place. Unmarked, the text is
/// directly followed by kato's next block.
fn assert_contained(text: &str, labels: &str) {
    for opts in [all_on(), MarkdownOptions::default()] {
        let benign = render(&placements("benign words", "Model", true), &opts);
        let hostile = render(&placements(text, labels, true), &opts);
        let (b, h) = (shape(&benign), shape(&hostile));
        assert_eq!(
            b.skeleton, h.skeleton,
            "structure changed by {text:?}\n---\n{hostile}"
        );
        assert_eq!(
            b.markers, h.markers,
            "content moved by {text:?}\n---\n{hostile}"
        );
        assert!(!h.markers.is_empty());

        // Text with nothing visible drops its blocks (and maybe a heading).
        let visible = text.chars().any(|c| !c.is_whitespace() && c != '\0');
        let hostile = render(&placements(text, labels, false), &opts);
        let h = shape(&hostile);
        if visible {
            let benign = render(&placements("benign words", "Model", false), &opts);
            let b = shape(&benign);
            assert_eq!(
                b.skeleton, h.skeleton,
                "structure changed by {text:?}\n---\n{hostile}"
            );
        }
    }
}

// ------------------------------------------------------- hostile content

const HOSTILE: &[&str] = &[
    "```",
    "```rust\nfn main() {}",
    "~~~",
    "~~~~~\nnever closed",
    "````\n```\n`````",
    "---",
    "---\ntitle: injected\n---",
    "===",
    "Heading\n===",
    "Heading\n---",
    "Heading\n-",
    "# heading\n## two\n### three\n#### four\n###### six",
    "#\n##\n###",
    "<details>",
    "</details>",
    "</details>\n\n# escaped\n\n<details>",
    "text </details> inline <details open> and <summary>x</summary>",
    "<!--",
    "<!-- comment -->\n# inside",
    "<script>\n# hidden\n</script>",
    "<script>alert(1)</script>",
    "<pre>\n\n# x\n\n</pre>",
    "<style>\n---\n",
    "<?php echo 1; ?>",
    "<![CDATA[\n# x\n]]>",
    "<!DOCTYPE html>",
    "<div>\n<div>\n<div>\n<div>\n<div>\n<div>\n<div>\n<div>\n<div>\n<div>\n# deep",
    "<div\nclass=x>",
    "<a href=\"x\">link</a>",
    "`<details>` in code and <details> outside",
    "``` <details>\n</details>\n```",
    "- item\n  ```\n  # in list fence\n\n# after",
    "> quote\n> ```\n> # code\n# out",
    "> # quoted heading\n> ---",
    "1. a\n   <details>\n2. b",
    "    indented <details>\n    code",
    "\t<details>\n\t# tab",
    " \t# spaced",
    "* * *\n___\n- - -",
    "\\",
    "trailing backslash \\",
    "a\r\nb\r\n# crlf heading\r\n---\r\n",
    "lone\r# cr heading",
    "nul\0byte\0<details>\0",
    "\u{1}\u{2}\u{7}\u{8}\u{b}\u{c}\u{1b}[31mred\u{1b}[0m\u{7f}",
    "\u{feff}bom \u{2028} sep \u{85} nel",
    "[x]: <javascript:alert(1)>\n[link][x]",
    "![img](x.png \"<details>\")",
    "<http://example.com> and <foo@example.com>",
    "&lt;details&gt; &amp; &#60;",
    "| a | b |\n|---|---|\n| <details> | x |",
    "[^1]\n\n[^1]: foot <details>",
    "  ```\n  indented fence\n",
    "```\n```\n```",
    "~~~\n```\n~~~\n```",
    "**bold `code** <b>`",
    "`` ` `` and ``` `` ```",
];

fn backtick_runs() -> Vec<String> {
    (1..=20)
        .map(|n| {
            let run = "`".repeat(n);
            format!("{run}\ncode {run} inline\n{run}")
        })
        .collect()
}

#[test]
fn hostile_content_stays_in_its_block() {
    for text in HOSTILE {
        assert_contained(text, "Model");
    }
    for text in backtick_runs() {
        assert_contained(&text, "Model");
        assert_contained(&text.replace('`', "~"), "Model");
    }
    let long_line = "x<b>".repeat(50_000);
    assert_contained(&long_line, "Model");
    assert_contained(&format!("---\n{}", HOSTILE.join("\n")), "Model");
}

#[test]
fn hostile_labels_stay_on_their_line() {
    for label in [
        "# h",
        "<details>",
        "</summary></details>",
        "a\nb\n## c",
        "`x",
        "\\",
        "m]([x](y)",
        "&lt;",
        "#",
        "",
        " \t\n",
        "\0\u{1b}",
    ] {
        assert_contained("plain", label);
    }
}

#[test]
fn first_line_dashes_do_not_look_like_frontmatter() {
    let mut s = Seq::new("claude");
    s.user("---\ntitle: evil\n---\nbody");
    let opts = MarkdownOptions {
        frontmatter: false,
        ..all_on()
    };
    let doc = render(&s.events, &opts);
    assert_eq!(split_frontmatter(&doc), None);
    assert!(doc.starts_with("# "), "{doc}");
    let sh = shape(&doc);
    assert_eq!(sh.skeleton, ["h1", "h2:User"]);
}

#[test]
fn hostile_title_is_quoted_in_frontmatter() {
    let title = "\"quoted\" ---\n# x\u{0}: y\\ <details>";
    let mut s = Seq::new("claude");
    s.user(title);
    let doc = render(&s.events, &all_on());
    let fm = split_frontmatter(&doc).unwrap();
    let line = fm.yaml.lines().find(|l| l.starts_with("title: ")).unwrap();
    let back: String = serde_json::from_str(line.trim_start_matches("title: ")).unwrap();
    assert_eq!(back, "\"quoted\" --- # x: y\\ <details>");
    shape(&doc);
}

// Long because: the list of hostile tokens is the point of the strategy.
fn hostile_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "```",
        "~~~",
        "`",
        "``",
        "\n",
        "\n\n",
        "\r",
        "\r\n",
        "\0",
        "\t",
        "    ",
        " ",
        "# ",
        "## ",
        "#",
        "---",
        "===",
        "-",
        "=",
        "***",
        "_",
        "* ",
        "- ",
        "+ ",
        "1. ",
        "2) ",
        "> ",
        ">",
        "<",
        "</",
        "<details>",
        "</details>",
        "<summary>",
        "<!--",
        "-->",
        "<script>",
        "</script>",
        "<pre>",
        "</pre>",
        "<?",
        "?>",
        "<!X",
        "<![CDATA[",
        "]]>",
        "<div>",
        "<a href=\"x\">",
        "<b>",
        "</b>",
        "<x-y/>",
        "<http://a.b>",
        "\\",
        "[",
        "]",
        "(",
        ")",
        "!",
        "&",
        "&lt;",
        "|",
        "word",
        "QX",
        "é",
        "\u{2028}",
        "\u{1b}",
        "\u{feff}",
        "  - ",
        "   ",
        "\t- ",
        "> > ",
        "1) ",
        "<a\nhref=\"x\">",
        "[x]: ",
        "\"",
        "'",
        ":",
        "/",
        "**",
        "<p",
        "<!-- x -->",
        "<textarea>",
        "</textarea>",
    ]);
    prop_oneof![
        4 => prop::collection::vec(token, 0..48).prop_map(|v| v.concat()),
        1 => any::<String>(),
    ]
}

proptest! {
    // Cases: `PROPTEST_CASES` (default 256).
    #[test]
    fn random_content_stays_in_its_block(text in hostile_text()) {
        assert_contained(&text, "Model");
    }

    #[test]
    fn random_labels_stay_on_their_line(label in hostile_text()) {
        assert_contained("plain", &label);
    }
}

// ------------------------------------------------------------ snapshots

/// A Claude-like session touching every kind of event.
fn realistic() -> Vec<Event> {
    let mut s = Seq::new("claude");
    s.system(
        SystemCategory::InjectedContext,
        "<system-reminder>\nThe project uses `cargo nextest`.\n</system-reminder>",
    )
    .user("::record\nCan you fix the failing test in `src/lib.rs`? It says:\n\n```\nassertion `left == right` failed\n  left: -1\n right: 3\n```")
    .command("::record")
    .model("claude-opus-4-5")
    .think("The test expects `add(1, 2) == 3`. Let me read the file.")
    .think("")
    .say("I'll look at the implementation first.")
    .call("toolu_01", "Read", serde_json::json!({"file_path": "/repo/src/lib.rs"}))
    .result(
        "toolu_01",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[test]\nfn adds() {\n    assert_eq!(add(1, 2), 3);\n}\n",
        false,
    )
    .call(
        "toolu_02",
        "Task",
        serde_json::json!({"description": "Find callers", "prompt": "Find every caller of `add`.", "subagent_type": "Explore"}),
    )
    .sub(Some("Explore"), Some("a1b2c3d"))
    .model("claude-haiku-4-5")
    .system(SystemCategory::SubagentPrompt, "Find every caller of `add`.")
    .say("Searching the workspace.")
    .call("toolu_s1", "Grep", serde_json::json!({"pattern": "add\\(", "path": "/repo"}))
    .result("toolu_s1", "src/main.rs:3:    println!(\"{}\", add(1, 2));\ntests/add.rs:10:    add(2, 2)", false)
    .say("Found 2 callers: `src/main.rs:3` and `tests/add.rs:10`.")
    .main()
    .model("claude-opus-4-5")
    .result("toolu_02", "Found 2 callers: `src/main.rs:3` and `tests/add.rs:10`.", false)
    .ask(
        "toolu_03",
        "ExitPlanMode",
        "## Plan\n\n1. Change `a - b` to `a + b`.\n2. Run `cargo test`.",
    )
    .answer("toolu_03", "Yes, go ahead.")
    .call(
        "toolu_04",
        "Edit",
        serde_json::json!({"file_path": "/repo/src/lib.rs", "old_string": "    a - b", "new_string": "    a + b", "replace_all": false}),
    )
    .result("toolu_04", "<tool_use_error>File has been modified since read</tool_use_error>", true)
    .system(SystemCategory::Error, "API Error: 529 `overloaded_error`")
    .system(SystemCategory::Notice, "PostToolUse hook `cargo fmt` ran (0.4s).")
    .call("toolu_05", "Bash", serde_json::json!({"command": "cargo test 2>&1 | tail -3"}))
    .result(
        "toolu_05",
        &format!("{}\ntest result: ok. 1 passed; 0 failed\n", "   Compiling kato v0.1.0\n".repeat(6)),
        false,
    )
    .say("Fixed: `add` subtracted instead of adding. All tests pass now.\n\n```rust\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n```")
    .info("title", r#"{"title":"Fix add bug"}"#)
    .raw(r#"{"type":"file-history-snapshot","messageId":"m1"}"#)
    .user_with_attachments("Thanks! Here is a screenshot.", 1)
    .system(SystemCategory::Compaction, "Summary: fixed `add` in `src/lib.rs`; tests pass.");
    s.events
}

/// A Codex-like session: turn ids, no subagents, a model switch.
fn codex_like() -> Vec<Event> {
    let mut s = Seq::new("codex");
    s.info("session_meta", r#"{"cwd":"/repo","cli_version":"0.77.0"}"#)
        .system(
            SystemCategory::InjectedContext,
            "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>",
        )
        .turn("turn-1")
        .user("List the files")
        .model("gpt-5-codex")
        .think("**Listing files**")
        .call(
            "call_1",
            "shell",
            serde_json::json!({"command": ["ls", "-la"]}),
        )
        .result("call_1", "Cargo.toml\nsrc\n", false)
        .say("There are two entries: `Cargo.toml` and `src/`.")
        .turn("turn-2")
        .user("And the tests?")
        .model("gpt-5")
        .say("No `tests/` directory exists yet.")
        .system(SystemCategory::UserShell, "$ git status\nOn branch main")
        .say("Anything else?");
    s.events
}

fn snapshot_options() -> [(&'static str, MarkdownOptions); 3] {
    [
        ("defaults", MarkdownOptions::default()),
        (
            "everything",
            MarkdownOptions {
                tool_output_max_bytes: 96,
                ..all_on()
            },
        ),
        (
            "bare",
            MarkdownOptions {
                frontmatter: false,
                ..MarkdownOptions::default()
            },
        ),
    ]
}

#[test]
fn snapshots_realistic_session() {
    for (name, opts) in snapshot_options() {
        let doc = render(&realistic(), &opts);
        shape(&doc);
        insta::assert_snapshot!(format!("realistic_{name}"), doc);
    }
}

#[test]
fn snapshots_codex_like_session() {
    for (name, opts) in snapshot_options() {
        let doc = render(&codex_like(), &opts);
        shape(&doc);
        insta::assert_snapshot!(format!("codex_like_{name}"), doc);
    }
}

// -------------------------------------------------------------- layout

#[test]
fn sections_follow_actor_turn_and_subagent_changes() {
    let doc = render(&realistic(), &all_on());
    let sh = shape(&doc);
    let headings: Vec<&str> = sh
        .skeleton
        .iter()
        .map(String::as_str)
        .filter(|s| s.starts_with('h'))
        .collect();
    assert_eq!(
        headings,
        [
            "h1",
            "h2:User",
            "h2:Assistant",
            "h3:Subagent",
            "h2:Assistant",
            "h2:User",
            "h2:Assistant",
            "h2:User",
        ]
    );
    assert!(
        doc.contains("## Assistant · claude-opus-4-5 · 2026-01-08 15:56:21Z\n"),
        "{doc}"
    );
    assert!(doc.contains("### Subagent Explore · a1b2c3d\n"), "{doc}");
    // The command line is part of the message; the command event adds nothing.
    assert_eq!(doc.matches("::record").count(), 1);
    // Provider metadata is not rendered.
    assert!(!doc.contains("file-history-snapshot"));
    assert!(!doc.contains("Fix add bug"));
}

#[test]
fn codex_turns_and_model_switches_open_sections() {
    let doc = render(&codex_like(), &MarkdownOptions::default());
    let h2: Vec<&str> = doc.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(h2.len(), 4, "{doc}");
    assert!(h2[1].contains("gpt-5-codex"));
    assert!(h2[3].contains("gpt-5 "));
}

#[test]
fn options_hide_thinking_and_tools() {
    let doc = render(&realistic(), &MarkdownOptions::default());
    assert!(!doc.contains("Thinking"));
    assert!(!doc.contains("Tool call"));
    assert!(!doc.contains("toolu_"));
    // Decisions are conversation: always shown.
    assert!(doc.contains("**Decision:** ExitPlanMode"));
    assert!(doc.contains("Yes, go ahead."));
    let on = render(&realistic(), &all_on());
    assert!(on.contains("<summary>Thinking</summary>"));
    assert!(on.contains("<summary>Tool call: Read</summary>"));
    assert!(on.contains("<summary>Tool result: Read</summary>"));
    assert!(on.contains("<summary>Tool error: Edit</summary>"));
    // Empty thinking is skipped.
    assert_eq!(on.matches("<summary>Thinking</summary>").count(), 1);
}

#[test]
fn tool_output_is_truncated_on_a_char_boundary() {
    let mut s = Seq::new("claude");
    s.call("t", "Bash", serde_json::json!({"command": "x"}))
        .result("t", &"é".repeat(100), false);
    let opts = MarkdownOptions {
        tool_output_max_bytes: 11,
        ..all_on()
    };
    let doc = render(&s.events, &opts);
    assert!(doc.contains("```text\nééééé\n```"), "{doc}");
    assert!(
        doc.contains("*Truncated: 190 of 200 bytes not shown.*"),
        "{doc}"
    );
    shape(&doc);
}

#[test]
fn tool_input_is_indented_json_or_text() {
    let mut s = Seq::new("codex");
    s.push(
        "assistant",
        Payload::ToolCall {
            tool_call_id: "c1".into(),
            name: "shell".into(),
            input: raw_from_str(r#"{"z": 1, "a": ["x", { }]}"#),
        },
    )
    .call(
        "c2",
        "apply_patch",
        serde_json::json!("*** Begin Patch\n```\n*** End Patch"),
    );
    let doc = render(&s.events, &all_on());
    assert!(
        doc.contains("```json\n{\n  \"z\": 1,\n  \"a\": [\n    \"x\",\n    {}\n  ]\n}\n```"),
        "{doc}"
    );
    assert!(
        doc.contains("````text\n*** Begin Patch\n```\n*** End Patch\n````"),
        "{doc}"
    );
}

#[test]
fn results_name_their_call_by_id_not_order() {
    let mut s = Seq::new("claude");
    s.call("a", "Read", serde_json::json!({}))
        .call("b", "Grep", serde_json::json!({}))
        .result("b", "from grep", false)
        .result("a", "from read", false)
        .result("zzz", "orphan", false);
    let doc = render(&s.events, &all_on());
    let grep = doc.find("<summary>Tool result: Grep</summary>").unwrap();
    let read = doc.find("<summary>Tool result: Read</summary>").unwrap();
    assert!(grep < read);
    assert!(doc[grep..read].contains("from grep"));
    assert!(doc.contains("<summary>Tool result</summary>\n\n```text\norphan"));
}

#[test]
fn notes_and_collapsed_context() {
    let mut s = Seq::new("claude");
    s.user("hi")
        .system(SystemCategory::Error, "boom\n\n# not a heading")
        .system(
            SystemCategory::IdeContext,
            "<ide_selection>x</ide_selection>",
        )
        .system(SystemCategory::Notice, "   ");
    let with_context = MarkdownOptions {
        injected_context: true,
        ..MarkdownOptions::default()
    };
    let doc = render(&s.events, &with_context);
    assert!(
        doc.contains("> **Error**\n>\n> boom\n>\n> #### not a heading\n"),
        "{doc}"
    );
    // `_` is not allowed in tag names: this is text, not HTML.
    assert!(
        doc.contains(
            "<summary>IDE context</summary>\n\n<ide_selection>x</ide_selection>\n\n</details>"
        ),
        "{doc}"
    );
    assert!(!doc.contains("Notice"));
}

#[test]
fn injected_context_is_left_out_by_default() {
    let mut s = Seq::new("claude");
    s.user("hi")
        .system(
            SystemCategory::InjectedContext,
            "Contents of AGENTS.md: be terse",
        )
        .system(
            SystemCategory::IdeContext,
            "<ide_opened_file>a.rs</ide_opened_file>",
        )
        .system(SystemCategory::ModelInput, "model-only input")
        .system(SystemCategory::Error, "boom");
    let doc = render(&s.events, &MarkdownOptions::default());
    for hidden in [
        "AGENTS.md",
        "a.rs",
        "model-only",
        "Injected context",
        "IDE context",
    ] {
        assert!(!doc.contains(hidden), "{hidden} in {doc}");
    }
    assert!(doc.contains("boom"), "{doc}");
    let shown = render(
        &s.events,
        &MarkdownOptions {
            injected_context: true,
            ..MarkdownOptions::default()
        },
    );
    for visible in [
        "AGENTS.md",
        "a.rs",
        "model-only",
        "<summary>Injected context</summary>",
    ] {
        assert!(shown.contains(visible), "{visible} not in {shown}");
    }
}

#[test]
fn output_is_deterministic() {
    for (_, opts) in snapshot_options() {
        assert_eq!(render(&realistic(), &opts), render(&realistic(), &opts));
    }
}

#[test]
fn frontmatter_must_come_first() {
    let mut r = MarkdownRenderer::new(Vec::new(), &all_on());
    let meta = SessionMeta::default();
    r.title(&meta).unwrap();
    assert!(r.frontmatter(&meta).is_err());
    let out = String::from_utf8(r.finish().unwrap()).unwrap();
    assert_eq!(out, format!("# {UNTITLED}\n"));
}

// ------------------------------------------------------------ streaming

/// Counts bytes and writes: nothing is held back between events.
#[derive(Default)]
struct Counter {
    bytes: usize,
    writes: usize,
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len();
        self.writes += 1;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn renders_event_by_event_with_bounded_state() {
    let opts = MarkdownOptions {
        tool_output_max_bytes: 256,
        ..all_on()
    };
    let mut r = MarkdownRenderer::new(Counter::default(), &opts);
    let mut s = Seq::new("claude");
    let big = "line of tool output\n".repeat(200_000);
    for i in 0..2_000 {
        s.events.clear();
        s.call(&format!("t{i}"), "Bash", serde_json::json!({"n": i}));
        if i % 500 == 0 {
            s.result(&format!("t{i}"), &big, false);
        }
        let before = r.state().clone();
        for ev in &s.events {
            r.event(ev).unwrap();
        }
        assert_ne!(&before, r.state());
        let state = serde_json::to_string(r.state()).unwrap();
        assert!(state.len() < 4096, "state grew to {} bytes", state.len());
    }
    let out = r.finish().unwrap();
    assert!(out.writes >= 2_000);
    // Truncation keeps the huge outputs out of the document.
    assert!(out.bytes < 2_000 * 400, "{} bytes", out.bytes);
}

#[test]
fn resuming_from_saved_state_continues_seamlessly() {
    let events = realistic();
    let opts = all_on();
    let whole = render(&events, &opts);

    let mut meta = collector();
    events.iter().for_each(|e| meta.observe(e));
    let mut meta = meta.finish();
    meta.recording_ids = vec!["rec-0001".into()];
    let mut out = Vec::new();
    let mut r = MarkdownRenderer::new(&mut out, &opts);
    r.header(&meta).unwrap();
    let mut state = serde_json::to_string(r.state()).unwrap();
    drop(r);
    for chunk in events.chunks(3) {
        let st: RenderState = serde_json::from_str(&state).unwrap();
        let mut r = MarkdownRenderer::resume(&mut out, &opts, st);
        for ev in chunk {
            r.event(ev).unwrap();
        }
        state = serde_json::to_string(r.state()).unwrap();
        r.finish().unwrap();
    }
    assert_eq!(String::from_utf8(out).unwrap(), whole);
}

#[test]
fn appending_to_an_existing_file_opens_a_section() {
    let mut s = Seq::new("claude");
    s.model("m").say("more");
    let mut out = b"---\nmine: true\n---\n\nMy notes.\n".to_vec();
    let mut r = MarkdownRenderer::resume(&mut out, &all_on(), RenderState::appending());
    r.event(&s.events[0]).unwrap();
    r.finish().unwrap();
    let doc = String::from_utf8(out).unwrap();
    assert_eq!(
        doc,
        "---\nmine: true\n---\n\nMy notes.\n\n## Assistant · m · 2026-01-08 15:56:00Z\n\nmore\n"
    );
    assert_eq!(split_frontmatter(&doc).unwrap().yaml, "mine: true\n");
}

// ------------------------------------------------------------- metadata

#[test]
fn meta_from_events() {
    let meta = {
        let mut m = collector();
        realistic().iter().for_each(|e| m.observe(e));
        m.finish()
    };
    assert_eq!(
        meta.title,
        "Can you fix the failing test in `src/lib.rs`? It says: ``` assertion `left ==…"
    );
    assert!(meta.title.chars().count() <= super::TITLE_MAX_CHARS);
    assert_eq!(meta.provider, "claude");
    assert_eq!(meta.session_id, "0199a1b2-sess");
    assert_eq!(meta.id, session_key("claude", "0199a1b2-sess"));
    assert_eq!(
        meta.participants,
        ["user", "claude-opus-4-5", "claude-haiku-4-5"]
    );
    assert_eq!(meta.created.as_deref(), Some("2026-01-08T15:56:00.000Z"));
    assert_eq!(meta.updated.as_deref(), Some("2026-01-08T15:59:09.993Z"));
    assert!(meta.recording_ids.is_empty());
}

#[test]
fn meta_title_fallbacks() {
    let finish = |s: &Seq| {
        let mut m = collector();
        s.events.iter().for_each(|e| m.observe(e));
        m.finish()
    };
    let mut s = Seq::new("gemini");
    s.user("::record\n  ::stop")
        .info("title", r#""Provider title""#);
    assert_eq!(finish(&s).title, "Provider title");
    s.info("title", r#"{"aiTitle":"Later title"}"#);
    assert_eq!(finish(&s).title, "Later title");
    s.user("  real\n\n\tquestion  ");
    assert_eq!(finish(&s).title, "real question");

    let mut s = Seq::new("codex");
    s.sub(Some("x"), None).user("subagent text is not a title");
    let meta = finish(&s);
    assert_eq!(meta.title, UNTITLED);
    assert_eq!(meta.participants, ["user"]);

    let mut s = Seq::new("claude");
    s.say("no model here");
    assert_eq!(finish(&s).participants, ["user", "assistant"]);

    let long = "word ".repeat(40);
    let mut s = Seq::new("claude");
    s.user(&long);
    let t = finish(&s).title;
    assert!(t.ends_with("word…"), "{t}");
    assert!(t.chars().count() <= 80);
    let mut s = Seq::new("claude");
    s.user(&"é".repeat(200));
    assert_eq!(finish(&s).title, format!("{}…", "é".repeat(79)));
}

#[test]
fn session_keys_are_stable_and_distinct() {
    assert_eq!(session_key("claude", "abc"), session_key("claude", "abc"));
    assert_ne!(session_key("claude", "abc"), session_key("codex", "abc"));
    assert_ne!(session_key("claude", "ab"), session_key("claud", "eab"));
    let k = session_key("claude", "abc");
    assert!(
        k.starts_with("claude-") && k.len() == "claude-".len() + 16,
        "{k}"
    );
}

// ---------------------------------------------------------------- JSONL

#[test]
fn jsonl_round_trips_every_event() {
    let events: Vec<Event> = realistic().into_iter().chain(codex_like()).collect();
    let mut w = JsonlWriter::new(Vec::new());
    for ev in &events {
        w.event(ev).unwrap();
    }
    let out = String::from_utf8(w.finish().unwrap()).unwrap();
    let lines: Vec<&str> = out.split_terminator('\n').collect();
    assert_eq!(lines.len(), events.len());
    let mut kinds = std::collections::BTreeSet::new();
    for (line, orig) in lines.iter().zip(&events) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["schema_version"], crate::event::SCHEMA_VERSION);
        assert_eq!(v["kind"], orig.kind().as_str());
        let back: Event = serde_json::from_str(line).unwrap();
        assert_eq!(back.kind(), orig.kind());
        assert_eq!(back.event_id, orig.event_id);
        assert_eq!(back.timestamp, orig.timestamp);
        assert_eq!(back.subagent, orig.subagent);
        kinds.insert(back.kind());
    }
    assert_eq!(kinds.len(), Kind::ALL.len(), "fixture covers every kind");
}

// ------------------------------------------------------- real corpus

// The one lookup of the real corpus, shared with the integration tests
// (which cannot be linked from here): skipped loudly when absent, required
// in CI.
#[path = "../../tests/it/harness/corpus.rs"]
mod corpus;

/// Every real agent file renders deterministically into Markdown whose
/// structure holds (only kato's headings and HTML, balanced `<details>`,
/// valid frontmatter), with every option on and with the defaults. The
/// snapshot records size and SHA-256 of each default rendering, so any
/// change in output is seen without copying other people's conversations
/// into the repository.
#[test]
fn real_corpus_renders_deterministically_and_well_formed() {
    use sha2::{Digest, Sha256};
    let Some(base) = corpus::real_corpus() else {
        return;
    };
    let mut digests = Vec::new();
    for provider in ["claude", "codex", "gemini"] {
        let p = crate::provider::registry().by_name(provider).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(base.join(provider))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|x| x == "jsonl" || x == "json"))
            .filter(|f| !f.to_string_lossy().ends_with(".meta.json"))
            .collect();
        files.sort();
        for f in files {
            let mut events = Vec::new();
            crate::reader::read_path(&f, p, crate::reader::Limits::default(), &mut |e| {
                events.push(e)
            })
            .unwrap();
            for opts in [all_on(), MarkdownOptions::default()] {
                let a = render(&events, &opts);
                assert_eq!(a, render(&events, &opts), "{}", f.display());
                shape(&a);
            }
            let doc = render(&events, &MarkdownOptions::default());
            let hex: String = Sha256::digest(doc.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            digests.push(format!(
                "{name}: {} bytes, sha256 {}",
                doc.len(),
                &hex[..16]
            ));
        }
    }
    assert!(digests.len() >= 30, "{} files", digests.len());
    insta::assert_snapshot!(digests.join("\n"));
}

#[test]
fn titles_and_participants_are_redacted_before_the_cut() {
    // A token near the end of the title's length: cut first, what is left
    // of it would no longer look like a token.
    let token = format!("ghp_{}", "k7Qz".repeat(9));
    let text = format!("please deploy the service to production with {token} now");
    let mut s = Seq::new("claude");
    s.model(&format!("model {token}"))
        .user(&format!("::record\n{text}"))
        .say("ok")
        .info("title", &serde_json::to_string(&token).unwrap());
    let mut meta = collector();
    s.events.iter().for_each(|e| meta.observe(e));
    let meta = meta.finish();
    assert_eq!(
        meta.title,
        "please deploy the service to production with [REDACTED:GITHUB_TOKEN] now"
    );
    assert_eq!(meta.participants, ["user", "model [REDACTED:GITHUB_TOKEN]"]);
    // A provider title alone is redacted too.
    let mut only = collector();
    only.observe(s.events.last().unwrap());
    assert_eq!(only.finish().title, "[REDACTED:GITHUB_TOKEN]");
}

#[test]
fn a_long_private_key_in_a_first_message_leaves_nothing_in_the_title() {
    // The title reads only the first lines of a long message: a key cut
    // off there is still recognised, and no line of it is kept.
    let line = "MIIEowIBAAKCAQEA7kQz9Lm3Xv2Np8Rt4Wy6Bc1Df5Gh0Jk2Lm4Np6Qr8St0Uv2Wx4";
    let body: Vec<String> = (0..60).map(|i| format!("{}{i:02}", &line[..62])).collect();
    let text = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\nuse it",
        body.join("\n")
    );
    let mut s = Seq::new("claude");
    s.user(&text);
    let mut meta = collector();
    meta.observe(&s.events[0]);
    let title = meta.finish().title;
    assert!(title.starts_with("[REDACTED:PRIVATE_KEY]"), "{title}");
    assert!(!title.contains(&line[..20]), "{title}");
}

#[test]
fn the_participant_list_keeps_no_spare_room() {
    let mut s = Seq::new("claude");
    s.model("claude-opus-4-6")
        .push("a", Payload::AssistantMessage { text: "one".into() })
        .push("a", Payload::AssistantMessage { text: "two".into() });
    let mut c = collector();
    for ev in &s.events {
        c.observe(ev);
    }
    assert_eq!(c.models, ["claude-opus-4-6"]);
    assert_eq!(c.models.capacity(), 1);
    assert_eq!(c.finish().participants, ["user", "claude-opus-4-6"]);
}
