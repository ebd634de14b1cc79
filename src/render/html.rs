//! HTML rendering: one self-contained page per session.
//!
//! Layout: inline CSS (light and dark through `prefers-color-scheme`,
//! readable on a phone), no script, nothing fetched — a Content Security
//! Policy of `default-src 'none'` says so to the browser as well. The page
//! is the [`header`], one `<section>` per turn (a new one when the actor,
//! turn or main model changes), and the [`FOOTER`]. Thinking, tool calls,
//! tool results and injected context are collapsed in `<details>`; tool
//! output is cut to `tool_output_max_bytes` with a note.
//!
//! Safety: every piece of content is escaped. Message text is Markdown,
//! rendered by `pulldown-cmark` after its raw HTML is turned into text
//! (inline) or a code block (blocks), images into links (nothing is
//! fetched) and every link whose scheme is not http, https or mailto into
//! an inert one. Control characters are shown, not executed, as in
//! Markdown exports.

use std::collections::VecDeque;
use std::io::{self, Write};

use pulldown_cmark::{CodeBlockKind, CowStr, Event as Md, HeadingLevel, LinkType, Tag, TagEnd};
use serde_json::value::RawValue;

use super::SessionMeta;
use super::UNTITLED;
use crate::config::MarkdownOptions;
use crate::event::{Event, Payload, Subagent, SystemCategory};

/// Tool calls whose names are remembered for their results' summaries.
const PENDING_TOOLS: usize = 64;

/// The stylesheet: light and dark, narrow screens first.
const CSS: &str = r#":root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--border:#d1d9e0;--user:#eef6ff;--code:#f6f8fa;--accent:#0969da}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--border:#3d444d;--user:#0f2338;--code:#151b23;--accent:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;-webkit-text-size-adjust:100%}
main{max-width:52rem;margin:0 auto;padding:.75rem}
h1{font-size:1.4rem;line-height:1.3;overflow-wrap:anywhere}
.meta{color:var(--muted);font-size:.875rem}
.turn{border:1px solid var(--border);border-radius:8px;padding:.25rem .9rem;margin:.9rem 0;overflow-wrap:anywhere}
.turn.user{background:var(--user)}
.turn>h2{font-size:.95rem;margin:.5rem 0;color:var(--muted)}
h3{font-size:.95rem}
h4,h5,h6{font-size:1rem}
pre{background:var(--code);padding:.6rem .75rem;border-radius:6px;font-size:.85rem;line-height:1.45;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
:not(pre)>code{background:var(--code);padding:.1em .3em;border-radius:4px}
details{border-left:3px solid var(--border);padding:.1rem 0 .1rem .75rem;margin:.6rem 0}
summary{cursor:pointer;color:var(--muted)}
a{color:var(--accent)}
table{border-collapse:collapse;display:block;overflow-x:auto}
td,th{border:1px solid var(--border);padding:.25rem .5rem}
blockquote{margin:.5rem 0;padding-left:.75rem;border-left:3px solid var(--border);color:var(--muted)}
.note{border-left:3px solid var(--accent);padding-left:.75rem;margin:.6rem 0}
.cut{color:var(--muted);font-style:italic}
ul.sessions{list-style:none;padding:0}
ul.sessions li{border-bottom:1px solid var(--border);padding:.6rem 0}
"#;

/// Closes what [`header`] opened.
pub const FOOTER: &str = "</main>\n</body>\n</html>\n";

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted
/// attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    escape_into(&mut out, text);
    out
}

pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The top of a page: doctype, head (title, CSP, viewport, style), the
/// `<h1>` and a line of metadata.
pub fn header(meta: &SessionMeta) -> String {
    let title = if meta.title.trim().is_empty() {
        UNTITLED
    } else {
        &meta.title
    };
    let mut line = vec![meta.provider.clone(), meta.session_id.clone()];
    let times = match (&meta.created, &meta.updated) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "{} – {}",
            super::markdown::compact_time(a),
            super::markdown::compact_time(b)
        )),
        (Some(a), _) | (None, Some(a)) => Some(super::markdown::compact_time(a)),
        (None, None) => None,
    };
    line.extend(times);
    let models: Vec<&str> = meta
        .participants
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "user")
        .collect();
    if !models.is_empty() {
        line.push(models.join(", "));
    }
    let mut out = page_head(title);
    out.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"meta\">{}</p>\n",
        escape(title),
        escape(&line.join(" · "))
    ));
    super::controls::markdown(&out).into_owned()
}

/// Doctype, head and the opening of `<main>`.
fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"generator\" content=\"kato\">\n\
         <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(title)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    User,
    Assistant,
}

/// The open `<section>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    actor: Actor,
    model: Option<String>,
    turn_id: Option<String>,
    subagent: Option<Subagent>,
}

/// Streams events into the body of a page (between [`header`] and
/// [`FOOTER`]; [`HtmlRenderer::finish`] writes the footer).
pub struct HtmlRenderer<W: Write> {
    w: W,
    opts: MarkdownOptions,
    section: Option<Section>,
    tools: VecDeque<(String, String)>,
    buf: String,
}

impl<W: Write> HtmlRenderer<W> {
    pub fn new(w: W, opts: &MarkdownOptions) -> HtmlRenderer<W> {
        HtmlRenderer {
            w,
            opts: opts.clone(),
            section: None,
            tools: VecDeque::new(),
            buf: String::new(),
        }
    }

    /// The writer, e.g. to redirect where it sends what follows.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Render one event (nothing for kinds that are not shown).
    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.buf.clear();
        self.render(ev);
        self.flush_buf()
    }

    /// Close the open section and the page; flush; hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.buf.clear();
        if self.section.take().is_some() {
            self.buf.push_str("</section>\n");
        }
        self.buf.push_str(FOOTER);
        self.flush_buf()?;
        self.w.flush()?;
        Ok(self.w)
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.w
                .write_all(super::controls::markdown(&self.buf).as_bytes())?;
            self.buf.clear();
        }
        if self.buf.capacity() > 1 << 20 {
            self.buf = String::new();
        }
        Ok(())
    }

    // Long because: one match over every event kind, as in the Markdown renderer.
    fn render(&mut self, ev: &Event) {
        match &ev.payload {
            Payload::UserMessage { text, attachments } => {
                if text.trim().is_empty() && *attachments == 0 {
                    return;
                }
                self.enter(ev, Some(Actor::User));
                if ev.subagent.is_some() {
                    self.buf.push_str("<p><strong>Input</strong></p>\n");
                }
                self.markdown(text);
                if *attachments > 0 {
                    let s = if *attachments == 1 { "" } else { "s" };
                    self.buf.push_str(&format!(
                        "<p class=\"cut\">{attachments} attachment{s} not shown.</p>\n"
                    ));
                }
            }
            Payload::DecisionResponse { text, .. } => {
                self.enter(ev, Some(Actor::User));
                self.buf.push_str("<p><strong>Response:</strong></p>\n");
                self.markdown(text);
            }
            Payload::AssistantMessage { text } => {
                if text.trim().is_empty() {
                    return;
                }
                self.enter(ev, Some(Actor::Assistant));
                self.markdown(text);
            }
            Payload::Thinking { text } => {
                if !self.opts.thinking || text.trim().is_empty() {
                    return;
                }
                self.enter(ev, Some(Actor::Assistant));
                self.open_details("thinking", "Thinking");
                self.markdown(text);
                self.buf.push_str("</details>\n");
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
                if self.tools.len() >= PENDING_TOOLS {
                    self.tools.pop_front();
                }
                self.tools.push_back((tool_call_id.clone(), name.clone()));
                self.open_details("tool", &format!("Tool call: {name}"));
                let (lang, text) = tool_input(input);
                self.pre(lang, &text);
                self.buf.push_str("</details>\n");
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
                    .tools
                    .iter()
                    .position(|(id, _)| id == tool_call_id)
                    .and_then(|i| self.tools.remove(i))
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
                self.open_details(if *is_error { "tool error" } else { "tool" }, &summary);
                if output.is_empty() {
                    self.buf.push_str("<p class=\"cut\">No output.</p>\n");
                } else {
                    self.pre("text", output);
                }
                self.buf.push_str("</details>\n");
            }
            Payload::DecisionPrompt { name, text, .. } => {
                self.enter(ev, Some(Actor::Assistant));
                self.buf.push_str("<p><strong>Decision:</strong> ");
                escape_into(&mut self.buf, name);
                self.buf.push_str("</p>\n");
                self.markdown(text);
            }
            Payload::SystemMessage { category, text } => {
                if injected(*category) && !self.opts.injected_context {
                    return;
                }
                if text.trim().is_empty() {
                    return;
                }
                self.enter(ev, None);
                if collapsed(*category) {
                    self.open_details("context", category.label());
                    self.markdown(text);
                    self.buf.push_str("</details>\n");
                } else {
                    self.buf.push_str("<div class=\"note\"><p><strong>");
                    escape_into(&mut self.buf, category.label());
                    self.buf.push_str("</strong></p>\n");
                    self.markdown(text);
                    self.buf.push_str("</div>\n");
                }
            }
            Payload::KatoCommand { .. }
            | Payload::ProviderInfo { .. }
            | Payload::ProviderRaw { .. } => {}
        }
    }

    fn open_details(&mut self, class: &str, summary: &str) {
        self.buf.push_str("<details class=\"");
        self.buf.push_str(class);
        self.buf.push_str("\"><summary>");
        escape_into(&mut self.buf, summary);
        self.buf.push_str("</summary>\n");
    }

    /// `text` in `<pre><code class="language-…">`, cut to the tool output
    /// limit with a note.
    fn pre(&mut self, lang: &str, text: &str) {
        let max = self.opts.tool_output_max_bytes;
        let (kept, cut) = super::commonmark::truncate(text, max);
        self.buf.push_str("<pre><code class=\"language-");
        escape_into(&mut self.buf, lang);
        self.buf.push_str("\">");
        escape_into(&mut self.buf, kept);
        self.buf.push_str("</code></pre>\n");
        if cut > 0 {
            self.buf.push_str(&format!(
                "<p class=\"cut\">Truncated: {} of {} bytes not shown.</p>\n",
                text.len() - kept.len(),
                text.len()
            ));
        }
    }

    /// Message text (Markdown), made safe, as HTML.
    fn markdown(&mut self, text: &str) {
        markdown_into(&mut self.buf, text);
    }

    /// Open the section `ev` belongs to, if it is not the current one.
    fn enter(&mut self, ev: &Event, actor: Option<Actor>) {
        if let Some(sub) = &ev.subagent {
            if !matches!(&self.section, Some(s) if s.actor == Actor::Assistant) {
                self.open_section(Actor::Assistant, None, None, ev.timestamp.as_deref());
            }
            let changed = self
                .section
                .as_ref()
                .is_some_and(|s| s.subagent.as_ref() != Some(sub));
            if changed {
                if let Some(s) = self.section.as_mut() {
                    s.subagent = Some(sub.clone());
                }
                let mut h = String::from("Subagent");
                for part in [sub.label.as_deref(), sub.id.as_deref()]
                    .into_iter()
                    .flatten()
                {
                    h.push(' ');
                    h.push_str(part);
                }
                self.buf.push_str("<h3 class=\"subagent\">");
                escape_into(&mut self.buf, &h);
                self.buf.push_str("</h3>\n");
            }
            return;
        }
        // A note joins the open section; before any, it stands on its own.
        let Some(actor) = actor else {
            return;
        };
        let model = match actor {
            Actor::Assistant => ev.model.as_deref(),
            Actor::User => None,
        };
        let differ =
            |a: Option<&str>, b: Option<&str>| matches!((a, b), (Some(a), Some(b)) if a != b);
        let new = match &self.section {
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
        } else if let Some(s) = self.section.as_mut() {
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
        if self.section.is_some() {
            self.buf.push_str("</section>\n");
        }
        let (class, name) = match actor {
            Actor::User => ("user", "User"),
            Actor::Assistant => ("assistant", "Assistant"),
        };
        self.buf
            .push_str(&format!("<section class=\"turn {class}\">\n<h2>{name}"));
        let time = time.map(super::markdown::compact_time);
        for part in [model.as_deref(), time.as_deref()].into_iter().flatten() {
            self.buf.push_str(" · ");
            escape_into(&mut self.buf, part);
        }
        self.buf.push_str("</h2>\n");
        self.section = Some(Section {
            actor,
            model,
            turn_id,
            subagent: None,
        });
    }
}

/// Context the agent put into the conversation (as in Markdown).
fn injected(category: SystemCategory) -> bool {
    matches!(
        category,
        SystemCategory::InjectedContext | SystemCategory::IdeContext | SystemCategory::ModelInput
    )
}

/// Categories shown collapsed rather than as a note (as in Markdown).
fn collapsed(category: SystemCategory) -> bool {
    matches!(
        category,
        SystemCategory::InjectedContext
            | SystemCategory::IdeContext
            | SystemCategory::Compaction
            | SystemCategory::ModelInput
    )
}

/// Tool input as shown: a JSON string as text, anything else as indented
/// JSON (as written when it is large).
fn tool_input(input: &RawValue) -> (&'static str, String) {
    let raw = input.get();
    if raw.trim_start().starts_with('"') {
        if let Ok(s) = crate::json_str::decode_literal(raw.trim()) {
            return ("text", s.into_owned());
        }
    }
    if raw.len() <= 1 << 20 {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) {
            if let Ok(pretty) = serde_json::to_string_pretty(&v) {
                return ("json", pretty);
            }
        }
    }
    ("json", raw.to_owned())
}

/// A link target that cannot run anything: http, https, mailto, a
/// fragment or a relative path; anything else becomes empty. Browsers
/// ignore tabs, line breaks and leading controls in a scheme, so those
/// are dropped before it is read.
fn safe_url(url: &str) -> String {
    let squeezed: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect();
    let scheme_end = squeezed.find([':', '/', '?', '#']);
    match scheme_end {
        Some(i) if squeezed.as_bytes().get(i) == Some(&b':') => {
            let scheme = squeezed.get(..i).unwrap_or("").to_ascii_lowercase();
            if matches!(scheme.as_str(), "http" | "https" | "mailto") {
                squeezed
            } else {
                String::new()
            }
        }
        _ => squeezed,
    }
}

/// Markdown `text` as safe HTML, appended to `out`: raw HTML becomes text
/// (inline) or an `html` code block, images become links, unsafe link
/// targets become empty, headings from content land at levels 4–6.
pub fn markdown_into(out: &mut String, text: &str) {
    use pulldown_cmark::{Options, Parser};
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let demote = |l: HeadingLevel| match l {
        HeadingLevel::H1 => HeadingLevel::H4,
        HeadingLevel::H2 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    };
    let events = Parser::new_ext(text, opts).map(|e| match e {
        Md::Html(s) | Md::InlineHtml(s) => Md::Text(s),
        Md::Start(Tag::HtmlBlock) => Md::Start(Tag::CodeBlock(CodeBlockKind::Fenced(
            CowStr::Borrowed("html"),
        ))),
        Md::End(TagEnd::HtmlBlock) => Md::End(TagEnd::CodeBlock),
        Md::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Md::Start(Tag::Link {
            link_type,
            dest_url: safe_url(&dest_url).into(),
            title,
            id,
        }),
        Md::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => Md::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: safe_url(&dest_url).into(),
            title,
            id,
        }),
        Md::End(TagEnd::Image) => Md::End(TagEnd::Link),
        Md::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Md::Start(Tag::Heading {
            level: demote(level),
            id,
            classes,
            attrs,
        }),
        Md::End(TagEnd::Heading(level)) => Md::End(TagEnd::Heading(demote(level))),
        other => other,
    });
    pulldown_cmark::html::push_html(out, events);
}

/// A whole page: header, every event, footer.
pub fn document<W: Write>(
    w: W,
    meta: &SessionMeta,
    events: &[Event],
    opts: &MarkdownOptions,
) -> io::Result<W> {
    let mut w = w;
    w.write_all(header(meta).as_bytes())?;
    let mut r = HtmlRenderer::new(w, opts);
    for ev in events {
        r.event(ev)?;
    }
    r.finish()
}

/// The index page of a tree of exported sessions: one entry per session,
/// each `(title, provider, time, href)`; `href` is relative to the page
/// (a link with a scheme other than http/https is made inert).
pub fn index_page<T: AsRef<str>>(
    w: &mut dyn Write,
    heading: &str,
    entries: &[(T, T, T, T)],
) -> io::Result<()> {
    let mut out = page_head(heading);
    out.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"meta\">{} session(s)</p>\n<ul class=\"sessions\">\n",
        escape(heading),
        entries.len()
    ));
    for (title, provider, time, href) in entries {
        let title = if title.as_ref().trim().is_empty() {
            UNTITLED
        } else {
            title.as_ref()
        };
        out.push_str(&format!(
            "<li><a href=\"{}\">{}</a><br><span class=\"meta\">{} · {}</span></li>\n",
            escape(&safe_url(href.as_ref())),
            escape(title),
            escape(provider.as_ref()),
            escape(&super::markdown::compact_time(time.as_ref())),
        ));
    }
    out.push_str("</ul>\n");
    out.push_str(FOOTER);
    w.write_all(super::controls::markdown(&out).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ProviderId, Source};

    fn ev(n: u64, payload: Payload) -> Event {
        let mut e = Event::new(
            ProviderId::Claude,
            "s1",
            format!("e{n}"),
            Source {
                record: "x".into(),
                offset: n,
                file: None,
            },
            payload,
        );
        e.timestamp = Some(format!("2026-01-08T00:00:{n:02}Z").into());
        e
    }

    fn opts() -> MarkdownOptions {
        MarkdownOptions {
            thinking: true,
            tool_calls: true,
            injected_context: true,
            ..MarkdownOptions::default()
        }
    }

    fn page(events: &[Event]) -> String {
        let meta = SessionMeta {
            title: "<script>alert(1)</script>".into(),
            provider: "claude".into(),
            session_id: "s1".into(),
            ..SessionMeta::default()
        };
        String::from_utf8(document(Vec::new(), &meta, events, &opts()).unwrap()).unwrap()
    }

    #[test]
    fn links_with_unsafe_schemes_are_made_inert() {
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            " javascript:alert(1)",
            "\u{1}javascript:x",
            "data:text/html,<script>",
            "vbscript:x",
            "file:///etc/passwd",
        ] {
            assert_eq!(safe_url(bad), "", "{bad:?}");
        }
        for good in [
            "https://example.org/a?b#c",
            "http://x",
            "mailto:a@b",
            "#x",
            "a/b.html",
            "a:b/c",
        ] {
            assert!(!safe_url(good).is_empty() || good == "a:b/c", "{good}");
        }
        assert_eq!(safe_url("sessions/a:b.html"), "sessions/a:b.html");
    }

    #[test]
    fn hostile_content_stays_text() {
        let hostile = "</details></section><script>alert(1)</script>\n\n\
                       <img src=x onerror=alert(1)>\n\n[x](javascript:alert(1)) \
                       ![i](https://example.org/t.png) <a href=\"javascript:x\" onclick=\"y\">\n\n\
                       <div><b>unclosed";
        let html = page(&[
            ev(
                1,
                Payload::UserMessage {
                    text: hostile.into(),
                    attachments: 0,
                },
            ),
            ev(
                2,
                Payload::Thinking {
                    text: hostile.into(),
                },
            ),
            ev(
                3,
                Payload::ToolResult {
                    tool_call_id: "t".into(),
                    output: hostile.into(),
                    is_error: false,
                },
            ),
        ]);
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains("<img"), "{html}");
        assert!(!lower.contains("<a href=\"javascript"), "{html}");
        // No tag the page holds has an event handler.
        for tag in lower.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or("");
            if tag.starts_with(|c: char| c.is_ascii_alphabetic()) {
                assert!(!tag.contains(" on"), "<{tag}>");
            }
        }
        // Tags in content are balanced by the renderer's own.
        assert_eq!(
            lower.matches("<details").count(),
            lower.matches("</details>").count()
        );
        assert_eq!(
            lower.matches("<section").count(),
            lower.matches("</section>").count()
        );
        assert!(html.ends_with(FOOTER));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn code_keeps_its_language_and_long_output_is_cut() {
        let mut o = opts();
        o.tool_output_max_bytes = 10;
        let meta = SessionMeta::default();
        let evs = [
            ev(
                1,
                Payload::AssistantMessage {
                    text: "```rust\nfn main() {}\n```".into(),
                },
            ),
            ev(
                2,
                Payload::ToolResult {
                    tool_call_id: "t".into(),
                    output: "0123456789abcdef".into(),
                    is_error: false,
                },
            ),
        ];
        let html = String::from_utf8(document(Vec::new(), &meta, &evs, &o).unwrap()).unwrap();
        assert!(
            html.contains("<pre><code class=\"language-rust\">"),
            "{html}"
        );
        assert!(html.contains("Truncated: 6 of 16 bytes"), "{html}");
        assert!(html.contains("<details class=\"tool\">"));
    }

    #[test]
    fn turns_are_sections() {
        let html = page(&[
            ev(
                1,
                Payload::UserMessage {
                    text: "q".into(),
                    attachments: 0,
                },
            ),
            ev(2, Payload::AssistantMessage { text: "a".into() }),
            ev(
                3,
                Payload::UserMessage {
                    text: "q2".into(),
                    attachments: 0,
                },
            ),
        ]);
        assert_eq!(html.matches("<section class=\"turn user\">").count(), 2);
        assert_eq!(
            html.matches("<section class=\"turn assistant\">").count(),
            1
        );
        assert!(html.contains("prefers-color-scheme:dark"));
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn index_page_escapes_and_links() {
        let mut out = Vec::new();
        index_page(
            &mut out,
            "Sessions",
            &[
                ("<b>t</b>", "claude", "2026-01-08T00:00:00Z", "p/a.html"),
                ("x", "codex", "", "javascript:alert(1)"),
            ],
        )
        .unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(
            html.contains("<a href=\"p/a.html\">&lt;b&gt;t&lt;/b&gt;</a>"),
            "{html}"
        );
        assert!(!html.contains("javascript:"));
        assert!(html.contains("2 session(s)"));
    }
}
