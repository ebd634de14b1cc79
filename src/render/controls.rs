//! Control characters in exports. An export keeps content as written, but
//! a control character that a viewer would act on — a terminal showing the
//! file with `cat` or `less -R`, an editor or pager that interprets escape
//! sequences — is shown instead of executed.
//!
//! - Markdown: C0 controls except tab and line feed, and DEL, become their
//!   Unicode control pictures (ESC is `␛`, U+241B), which no viewer acts on
//!   and no real text confuses with the escape itself; C1 controls (mostly
//!   text decoded with the wrong code page) become U+FFFD.
//! - JSONL: JSON already escapes C0; DEL and C1 become `\u007f` … `\u009f`,
//!   the same characters, so every record decodes unchanged.
//! - Bidirectional formatting characters (U+202A–U+202E, U+2066–U+2069)
//!   are kept: they reorder display but execute nothing, and right-to-left
//!   text needs them. Terminal output (`crate::terminal`) escapes them.

use std::borrow::Cow;

/// Does the text hold a character [`markdown`] changes? Byte pairs, so a
/// C1 control (`0xC2` then `0x80..=0x9F`) is told from `·` or `©`, in a
/// fold without early exit over fixed chunks, so the loop vectorises.
fn holds_controls(bytes: &[u8]) -> bool {
    let Some((&last, _)) = bytes.split_last() else {
        return false;
    };
    let c0 = |b: u8| ((b < 0x20) & (b != b'\n') & (b != b'\t')) | (b == 0x7f);
    let (firsts, seconds) = (&bytes[..bytes.len() - 1], &bytes[1..]);
    c0(last)
        || firsts.chunks(64).zip(seconds.chunks(64)).any(|(a, b)| {
            a.iter().zip(b).fold(false, |seen, (&x, &y)| {
                seen | c0(x) | ((x == 0xc2) & (y < 0xa0))
            })
        })
}

/// Markdown text with its control characters made visible; borrowed when
/// it has none.
pub(crate) fn markdown(text: &str) -> Cow<'_, str> {
    if !holds_controls(text.as_bytes()) {
        return Cow::Borrowed(text);
    }
    let visible = |c: char| match c {
        '\t' | '\n' => c,
        '\0'..='\u{1f}' => char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{FFFD}'),
        '\u{7f}' => '\u{2421}',
        '\u{80}'..='\u{9f}' => '\u{FFFD}',
        _ => c,
    };
    Cow::Owned(text.chars().map(visible).collect())
}

/// Escape DEL and C1 controls in one serialised JSON line, in place. They
/// can only occur inside strings, where the escape is the same character.
pub(crate) fn json_line(line: &mut Vec<u8>) {
    let c1 = |i: usize, line: &[u8]| {
        line.get(i) == Some(&0xc2) && line.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b))
    };
    let first = memchr::memchr2_iter(0x7f, 0xc2, line).find(|&i| line[i] == 0x7f || c1(i, line));
    let Some(first) = first else {
        return;
    };
    let mut out = Vec::with_capacity(line.len() + 16);
    out.extend_from_slice(&line[..first]);
    let mut i = first;
    while let Some(&b) = line.get(i) {
        if b == 0x7f {
            out.extend_from_slice(b"\\u007f");
            i += 1;
        } else if c1(i, line) {
            let c = line[i + 1];
            out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    *line = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_markdown_is_borrowed() {
        for t in [
            "# x\n\ttab\n",
            "ünïcödé\u{a0}© · 🙂 — \u{bf}",
            "\u{202e}rtl\u{202c}",
            "",
        ] {
            assert!(matches!(markdown(t), Cow::Borrowed(_)), "{t:?}");
        }
    }

    #[test]
    fn markdown_controls_become_pictures() {
        assert_eq!(
            markdown("a\u{1b}[31mb\u{7}\r\u{0}\u{7f}\u{9b}2J\u{a0}\t\n\u{80}\u{9f}\u{1f}"),
            "a\u{241b}[31mb\u{2407}\u{240d}\u{2400}\u{2421}\u{FFFD}2J\u{a0}\t\n\u{FFFD}\u{FFFD}\u{241f}"
        );
    }

    #[test]
    fn json_lines_escape_del_and_c1_and_decode_the_same() {
        let value = serde_json::json!({"t": "a\u{7f}b\u{85}c\u{9f}\u{a0}é\u{1b}"});
        let mut line = serde_json::to_vec(&value).unwrap();
        json_line(&mut line);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            !text.chars().any(|c| ('\u{7f}'..='\u{9f}').contains(&c)),
            "{text:?}"
        );
        assert!(text.contains("\\u007f") && text.contains("\\u0085") && text.contains("\\u009f"));
        let back: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, value);
    }
}
