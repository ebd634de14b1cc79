//! CommonMark safety for text kato does not control.
//!
//! Message text is Markdown and is rendered as Markdown, but it must stay
//! inside the block kato puts it in: it may not open headings at kato's
//! levels (1–3), thematic breaks or setext underlines, raw HTML (which could
//! close kato's own `<details>`), or leave a code fence open.
//!
//! [`markdown`] finds those constructs with a CommonMark parser, neutralises
//! them in the source (shift, backslash-escape, close) and parses again until
//! the text is clean. Text that does not converge is rendered verbatim in a
//! fence, which is always safe. Fenced code is never altered.

use std::borrow::Cow;
use std::collections::BTreeMap;

use pulldown_cmark::{CodeBlockKind, Event as Md, HeadingLevel, Options, Parser, Tag};

/// Parse passes before falling back to a verbatim fence. Each pass fixes
/// every construct visible at that depth; nesting (HTML hiding a heading)
/// needs one more pass per level.
const MAX_PASSES: usize = 8;

/// Appended to the text under test: a top-level heading must start exactly
/// here, otherwise something (a fence, an HTML block) is still open.
const PROBE: &str = "\n\n# probe\n";

/// Line endings become `\n` (CommonMark also breaks lines at a lone `\r`);
/// NUL becomes U+FFFD, as a CommonMark parser would read it.
pub(crate) fn normalize(text: &str) -> Cow<'_, str> {
    // Both are ASCII: a byte search finds exactly their characters.
    if memchr::memchr2(b'\r', b'\0', text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Drop leading blank lines and trailing whitespace (neither carries meaning
/// at the edges of a block; indentation of the first line is kept).
fn trim_edges(text: &str) -> &str {
    let text = text.trim_end();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            start += line.len();
        } else {
            break;
        }
    }
    text.get(start..).unwrap_or("")
}

/// Expand tabs to spaces with CommonMark's tab stops of 4, so that the text
/// keeps its block structure when kato prefixes its lines (block quotes).
fn expand_tabs(text: &str) -> Cow<'_, str> {
    if !text.contains('\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut col = 0usize;
    for c in text.chars() {
        match c {
            '\t' => {
                let n = 4 - col % 4;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\n' => {
                out.push('\n');
                col = 0;
            }
            c => {
                out.push(c);
                col += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Message text made safe to place, as a sequence of blocks, between a
/// blank line and a blank line at the top level of a document (or inside a
/// `<details>` element). Empty when the text has no visible content. No
/// trailing newline.
pub(crate) fn markdown(text: &str) -> String {
    let normalized = normalize(text);
    let trimmed = trim_edges(&normalized);
    if trimmed.is_empty() {
        return String::new();
    }
    settle(flush_left(trimmed)).unwrap_or_else(|| fence("text", trimmed))
}

/// Columns of leading whitespace of `line` (tabs to the next stop of 4).
fn indent_cols(line: &str) -> usize {
    let mut col = 0;
    for c in line.chars() {
        match c {
            ' ' => col += 1,
            '\t' => col += 4 - col % 4,
            _ => break,
        }
    }
    col
}

/// Make the first line start at column 0. A block that begins indented
/// could otherwise continue a list left open at the end of the block
/// before it (an indented line after a blank line joins a list item).
/// Up to 3 leading spaces mean nothing and are dropped; a leading indented
/// code block becomes the equivalent fenced one.
fn flush_left(text: &str) -> String {
    let cols = indent_cols(text);
    if cols == 0 {
        return text.to_owned();
    }
    if cols < 4 {
        return text.trim_start_matches([' ', '\t']).to_owned();
    }
    let mut code = Vec::new();
    let mut rest_at = text.len();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if !bare.trim().is_empty() && indent_cols(bare) < 4 {
            rest_at = pos;
            break;
        }
        code.push(bare);
        pos += line.len();
    }
    while code.last().is_some_and(|l| l.trim().is_empty()) {
        code.pop();
    }
    let mut body = String::new();
    for (i, line) in code.iter().enumerate() {
        if i > 0 {
            body.push('\n');
        }
        body.push_str(&dedent4(line));
    }
    let mut out = fence("", &body);
    let rest = text.get(rest_at..).unwrap_or("");
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

/// Remove 4 columns of indentation, as an indented code block does (a tab
/// that straddles the boundary leaves its remaining columns as spaces).
fn dedent4(line: &str) -> String {
    let mut col = 0;
    for (i, c) in line.char_indices() {
        if col >= 4 {
            let mut out = " ".repeat(col - 4);
            out.push_str(line.get(i..).unwrap_or(""));
            return out;
        }
        match c {
            ' ' => col += 1,
            '\t' => col += 4 - col % 4,
            _ => return line.get(i..).unwrap_or("").to_owned(),
        }
    }
    " ".repeat(col.saturating_sub(4))
}

/// Like [`markdown`], with every line prefixed by `> ` (a block quote).
/// Tabs are expanded first: the quote marker shifts columns, and tab stops
/// would otherwise change the indentation the text's structure depends on.
/// The quoted text is checked again as a whole: a parser may read a line's
/// `>` marker as the end of a tag begun on the line before.
pub(crate) fn quoted_markdown(text: &str) -> String {
    let normalized = normalize(text);
    let expanded = expand_tabs(&normalized);
    let body = markdown(&expanded);
    if body.is_empty() {
        return body;
    }
    settle(quote_lines(&body)).unwrap_or_else(|| quote_lines(&fence("text", &expanded)))
}

/// Parse and fix until clean; `None` if that does not converge.
fn settle(mut s: String) -> Option<String> {
    for _ in 0..MAX_PASSES {
        match fixes(&s) {
            Pass::Clean => return Some(s),
            Pass::Fixed(next) => s = next,
            Pass::Stuck => return None,
        }
    }
    None
}

/// Prefix every line with `> ` (`>` for empty lines).
pub(crate) fn quote_lines(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 16);
    for (i, line) in body.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if line.is_empty() {
            out.push('>');
        } else {
            out.push_str("> ");
            out.push_str(line);
        }
    }
    out
}

/// Outcome of one parse pass.
enum Pass {
    /// Nothing to fix.
    Clean,
    /// Fixes applied; parse again.
    Fixed(String),
    /// Something is open that no known fix closes.
    Stuck,
}

/// One parse of `s`, and the fixes it calls for.
fn fixes(s: &str) -> Pass {
    let mut doc = String::with_capacity(s.len() + PROBE.len());
    doc.push_str(s);
    doc.push_str(PROBE);
    let probe_at = s.len() + 2;

    let mut edits: BTreeMap<usize, &'static str> = BTreeMap::new();
    let mut probe_seen = false;
    let mut open_fence: Option<(char, usize)> = None;
    for (ev, range) in Parser::new_ext(&doc, Options::empty()).into_offset_iter() {
        if range.start >= probe_at {
            if matches!(
                ev,
                Md::Start(Tag::Heading {
                    level: HeadingLevel::H1,
                    ..
                })
            ) && range.start == probe_at
            {
                probe_seen = true;
            }
            continue;
        }
        match ev {
            Md::Start(Tag::Heading { level, .. }) if level <= HeadingLevel::H3 => {
                if let Some((at, edit)) = heading_fix(s, range.start, range.end.min(s.len())) {
                    edits.insert(at, edit);
                }
            }
            Md::Rule => {
                if let Some(at) = find_in(s, range.start, range.end, &['-', '*', '_']) {
                    edits.insert(at, "\\");
                }
            }
            Md::InlineHtml(_) => {
                if let Some(at) = find_in(s, range.start, range.end, &['<']) {
                    edits.insert(at, "\\");
                }
            }
            // Each line of an HTML block that starts with a tag: escaping
            // only the first would let the next line start a new block.
            Md::Start(Tag::HtmlBlock) | Md::Html(_) => {
                let region = s.get(range.start..range.end.min(s.len())).unwrap_or("");
                let rest = region.trim_start_matches([' ', '\t', '>']);
                if rest.starts_with('<') {
                    edits.insert(range.start + (region.len() - rest.len()), "\\");
                }
            }
            Md::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) if range.end > s.len() => {
                open_fence = fence_opener(s, range.start);
            }
            _ => {}
        }
    }
    if edits.is_empty() && probe_seen {
        return Pass::Clean;
    }
    let mut out = String::with_capacity(s.len() + edits.len() * 3 + 8);
    let mut last = 0;
    for (&at, &insert) in &edits {
        let Some(piece) = s.get(last..at) else {
            return Pass::Stuck;
        };
        out.push_str(piece);
        out.push_str(insert);
        last = at;
    }
    out.push_str(s.get(last..).unwrap_or(""));
    if !probe_seen && edits.is_empty() {
        // Something swallowed the rest of the document. With no HTML left
        // to escape, only a fence can: close it.
        let Some((c, n)) = open_fence else {
            return Pass::Stuck;
        };
        out.push('\n');
        out.extend(std::iter::repeat_n(c, n));
    }
    Pass::Fixed(out)
}

/// Where to edit a heading of level 1–3 spanning `s[start..end]`: ATX
/// headings get three more `#` (levels 4–6); setext headings get their
/// underline escaped (the text becomes a paragraph).
fn heading_fix(s: &str, start: usize, end: usize) -> Option<(usize, &'static str)> {
    let region = s.get(start..end)?;
    let lead = region.len() - region.trim_start_matches([' ', '\t']).len();
    let body = region.get(lead..)?;
    let hashes = body.len() - body.trim_start_matches('#').len();
    let after = body.get(hashes..).and_then(|r| r.chars().next());
    if (1..=6).contains(&hashes) && matches!(after, None | Some(' ' | '\t' | '\n')) {
        return Some((start + lead, "###"));
    }
    // Setext: the underline is the last non-empty line of the region.
    let content = region.trim_end_matches(['\n', ' ', '\t']);
    let line_start = content.rfind('\n').map_or(0, |i| i + 1);
    let line = content.get(line_start..)?;
    let pos = line.find(['=', '-'])?;
    Some((start + line_start + pos, "\\"))
}

/// First of `chars` in `s[start..end]`, as an absolute offset.
fn find_in(s: &str, start: usize, end: usize, chars: &[char]) -> Option<usize> {
    let region = s.get(start..end.min(s.len()))?;
    region.find(chars).map(|i| start + i)
}

/// The fence character and length of the code fence opened at `start`.
fn fence_opener(s: &str, start: usize) -> Option<(char, usize)> {
    let line = s.get(start..)?;
    let line = line.trim_start_matches([' ', '\t', '>']);
    let c = line.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let n = line.len() - line.trim_start_matches(c).len();
    Some((c, n.max(3)))
}

/// Longest run of the ASCII character `c` in `text` (UTF-8 never uses an
/// ASCII byte inside another character, so bytes can be searched).
fn longest_run(text: &str, c: u8) -> usize {
    let mut best = 0;
    let mut cur = 0;
    let mut prev = None;
    for i in memchr::memchr_iter(c, text.as_bytes()) {
        cur = if prev.is_some_and(|p| p + 1 == i) {
            cur + 1
        } else {
            1
        };
        best = best.max(cur);
        prev = Some(i);
    }
    best
}

/// `body` verbatim in a backtick fence longer than any backtick run inside
/// it. No trailing newline.
pub(crate) fn fence(info: &str, body: &str) -> String {
    let mut out = String::new();
    fence_into(&mut out, info, body);
    out
}

/// [`fence`], appended to `out`.
pub(crate) fn fence_into(out: &mut String, info: &str, body: &str) {
    let body = normalize(body);
    let body = body.strip_suffix('\n').unwrap_or(&body);
    let n = (longest_run(body, b'`') + 1).max(3);
    out.reserve(body.len() + 2 * n + info.len() + 2);
    out.extend(std::iter::repeat_n('`', n));
    out.push_str(info);
    out.push('\n');
    if !body.is_empty() {
        out.push_str(body);
        out.push('\n');
    }
    out.extend(std::iter::repeat_n('`', n));
}

/// Runs of whitespace (line breaks included) become one space, other
/// control characters are dropped; trimmed.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if c.is_control() || c == '\u{FEFF}' {
            continue;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// Text for one line of inline Markdown (headings, labels): one line, with
/// every character that could start markup backslash-escaped.
pub(crate) fn inline_text(text: &str) -> String {
    let line = one_line(text);
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '&' | '!' | '~' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for inside raw HTML (`<summary>`): one line, entities escaped.
pub(crate) fn html_text(text: &str) -> String {
    let line = one_line(text);
    let mut out = String::with_capacity(line.len() + 8);
    super::html::escape_into(&mut out, &line);
    out
}

/// Cut `text` to at most `max` bytes on a character boundary; returns the
/// kept prefix and the number of bytes cut.
pub(crate) fn truncate(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = text.get(..end).unwrap_or("");
    (kept, text.len() - kept.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_shift_below_kato_levels() {
        assert_eq!(
            markdown("# a\n## b\n### c\n#### d"),
            "#### a\n##### b\n###### c\n#### d"
        );
        assert_eq!(markdown("#nospace"), "#nospace");
        assert_eq!(markdown("> # quoted"), "> #### quoted");
        assert_eq!(markdown("- # item"), "- #### item");
    }

    #[test]
    fn setext_and_breaks_are_escaped() {
        assert_eq!(markdown("Title\n==="), "Title\n\\===");
        assert_eq!(markdown("Title\n---"), "Title\n\\---");
        assert_eq!(markdown("---\nx"), "\\---\nx");
        assert_eq!(markdown("a\n\n***\n\nb"), "a\n\n\\***\n\nb");
    }

    #[test]
    fn html_is_escaped_outside_code() {
        assert_eq!(markdown("</details>"), "\\</details>");
        assert_eq!(markdown("a <b>c</b>"), "a \\<b>c\\</b>");
        assert_eq!(markdown("`<b>` and <!-- x -->"), "`<b>` and \\<!-- x -->");
        assert_eq!(markdown("```\n<details>\n```"), "```\n<details>\n```");
        assert_eq!(markdown("<https://example.com>"), "<https://example.com>");
        assert_eq!(markdown("a < b > c"), "a < b > c");
    }

    #[test]
    fn html_hiding_markup_is_fixed_in_later_passes() {
        assert_eq!(
            markdown("<script>\n# h\n</script>"),
            "\\<script>\n#### h\n\\</script>"
        );
    }

    #[test]
    fn unclosed_fences_are_closed() {
        assert_eq!(markdown("```rust\nfn x() {}"), "```rust\nfn x() {}\n```");
        assert_eq!(markdown("~~~~\n# x"), "~~~~\n# x\n~~~~");
        // Nested in a list, the fence ends with the list: nothing to close.
        assert_eq!(markdown("- a\n  ```\n  code"), "- a\n  ```\n  code");
    }

    #[test]
    fn blocks_start_at_column_zero() {
        assert_eq!(markdown("  - a\n    b"), "- a\n    b");
        assert_eq!(
            markdown("\tcode <x>\n      two\n\n    three\n\npara"),
            "```\ncode <x>\n  two\n\nthree\n```\npara"
        );
        assert_eq!(markdown("  \t- <details>"), "```\n- <details>\n```");
        assert_eq!(markdown("    ```\n    x"), "````\n```\nx\n````");
    }

    #[test]
    fn line_endings_and_nul() {
        assert_eq!(markdown("a\r\nb\rc\0"), "a\nb\nc\u{FFFD}");
        assert_eq!(markdown("x\r# h"), "x\n#### h");
        assert_eq!(markdown(" \n\n  \n"), "");
    }

    #[test]
    fn quoting_keeps_tab_indentation() {
        // A tab is 4 columns at the start of a line: indented code, not HTML.
        let q = quoted_markdown("\t<div>\nx\n\n\t<div>");
        assert_eq!(q, "> ```\n> <div>\n> ```\n> x\n>\n>     <div>");
        assert_eq!(quoted_markdown("a\n\nb"), "> a\n>\n> b");
        // The next line's marker must not end a declaration begun here.
        assert_eq!(quoted_markdown("<!X\nword"), "> \\<!X\n> word");
    }

    #[test]
    fn fences_outgrow_backtick_runs() {
        assert_eq!(fence("text", "a ````` b"), "``````text\na ````` b\n``````");
        assert_eq!(fence("", ""), "```\n```");
        assert_eq!(fence("", "é``é`"), "```\né``é`\n```");
        assert_eq!(fence("", "``é````"), "`````\n``é````\n`````");
    }

    #[test]
    fn longest_runs_and_normalized_line_ends() {
        assert_eq!(longest_run("", b'`'), 0);
        assert_eq!(longest_run("a``b```c`", b'`'), 3);
        assert_eq!(longest_run("```é`", b'`'), 3);
        assert_eq!(longest_run("é`é``é", b'`'), 2);
        assert_eq!(normalize("a\r\nb\rc\0"), "a\nb\nc\u{FFFD}");
        assert!(matches!(normalize("plain é"), Cow::Borrowed(_)));
    }

    #[test]
    fn inline_and_html_text() {
        assert_eq!(inline_text("a\n<b> `c` #"), "a \\<b\\> \\`c\\` \\#");
        assert_eq!(html_text("</summary>&\n"), "&lt;/summary&gt;&amp;");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), ("h", 5));
        assert_eq!(truncate("abc", 3), ("abc", 0));
        assert_eq!(truncate("abc", 0), ("", 3));
    }
}
