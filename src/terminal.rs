//! Text bound for a terminal. Whatever kato prints — `status`, `sessions`,
//! `doctor`, `config`, `audit`, error messages, the operational log —
//! passes [`sanitize`], through a [`Writer`], so a session title, a path
//! or a quoted chat line cannot move the cursor, recolour the screen, set
//! the window title, write to the clipboard (OSC 52) or reorder the text
//! after it.
//!
//! Each character a terminal acts on is printed as `\uXXXX`: C0 controls
//! except tab and line feed, DEL, C1 controls, and the bidirectional
//! formatting characters. In JSON those characters occur only inside
//! strings, where `\uXXXX` spells the same character, so JSON output stays
//! valid and decodes to the same value.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Does a terminal act on `c` rather than print it?
fn acts_on_terminal(c: char) -> bool {
    matches!(c,
        '\0'..='\u{8}'
        | '\u{b}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// `text` with every character a terminal acts on spelled `\uXXXX`;
/// borrowed when there is none.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(acts_on_terminal) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(text.get(..first).unwrap_or(""));
    for c in text.get(first..).unwrap_or("").chars() {
        if acts_on_terminal(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A stream that sanitises what is written to it. A UTF-8 sequence cut
/// between two writes is held until the next; bytes that are not UTF-8
/// become U+FFFD.
pub struct Writer<W: Write> {
    inner: W,
    /// The start of a UTF-8 sequence whose end has not been written yet.
    carry: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(inner: W) -> Writer<W> {
        Writer {
            inner,
            carry: Vec::new(),
        }
    }

    fn put(&mut self, text: &str) -> io::Result<()> {
        self.inner.write_all(sanitize(text).as_bytes())
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(buf);
        let mut rest = &bytes[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.put(text)?;
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    self.put(std::str::from_utf8(good).unwrap_or_default())?;
                    let Some(n) = e.error_len() else {
                        self.carry = bad.to_vec();
                        break;
                    };
                    self.put("\u{FFFD}")?;
                    rest = bad.get(n..).unwrap_or_default();
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.carry).is_empty() {
            self.put("\u{FFFD}")?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Writer<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Standard output, sanitised.
pub fn stdout() -> Writer<io::StdoutLock<'static>> {
    Writer::new(io::stdout().lock())
}

/// Standard error, sanitised.
pub fn stderr() -> Writer<io::StderrLock<'static>> {
    Writer::new(io::stderr().lock())
}

/// One line on standard error, sanitised; a failure to write is ignored
/// (there is nowhere left to report it).
pub fn eprintln(line: &str) {
    let _ = writeln!(stderr(), "{line}");
}

/// One line on standard output, sanitised.
pub fn println(line: &str) -> io::Result<()> {
    writeln!(stdout(), "{line}")
}

/// `value` as pretty JSON and a line break, sanitised.
pub fn json<T: serde::Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::from)?;
    writeln!(Writer::new(out), "{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        let t = "kato 0.1 running — sessions: 3\ttitle: ünïcödé 🙂\n";
        assert!(matches!(sanitize(t), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_and_controls_are_spelled_out() {
        assert_eq!(
            sanitize("a\u{1b}[31mred\u{7}\r\u{9b}2J\u{202e}x\u{7f}"),
            "a\\u001b[31mred\\u0007\\u000d\\u009b2J\\u202ex\\u007f"
        );
        // OSC 52 (clipboard) and OSC 8 (hyperlink) lose their introducer.
        assert!(!sanitize("\u{1b}]52;c;aGk=\u{7}").contains('\u{1b}'));
    }

    #[test]
    fn json_stays_valid_and_keeps_its_value() {
        let v = serde_json::json!({"title": "x\u{1b}]0;pwned\u{7}\u{85}\u{2066}y"});
        let mut out = Vec::new();
        json(&mut out, &v).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.chars().any(acts_on_terminal), "{text:?}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn a_sequence_cut_between_writes_is_kept_whole() {
        let mut out = Vec::new();
        {
            let mut w = Writer::new(&mut out);
            let bytes = "é\u{9b}\u{202e}!".as_bytes();
            for b in bytes {
                w.write_all(std::slice::from_ref(b)).unwrap();
            }
            w.write_all(b"\xff.").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "é\\u009b\\u202e!\u{FFFD}.");
    }
}
