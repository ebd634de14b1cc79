//! [`Text`]: a tool output as an event holds it. Most of a session's bytes
//! are tool outputs, and a JSONL export writes each one back as the JSON
//! string literal it was read from. A text whose literal is escaped
//! exactly as kato escapes strings is kept as that literal: the export
//! copies it, and nothing decodes it unless something reads the text.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A text, decoded or as a JSON string literal. It reads as a `str`
/// (`Deref`); a literal is decoded on first read.
#[derive(Clone, Default)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Plain(String),
    /// A JSON string literal, quotes included, in [`canonical`] form.
    Json {
        literal: Box<str>,
        decoded: OnceLock<String>,
    },
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Plain(String::new())
    }
}

impl Text {
    /// `raw` kept as it is, when it is a string escaped exactly as kato
    /// escapes strings (the quote, the backslash and `\b \t \n \f \r` in
    /// their short forms, any other C0 control as `\u00XX` in lower-case
    /// hex, nothing else escaped); `None` for any other value or escape.
    /// Only JSON a parser has checked (a [`RawValue`]) is taken, so the
    /// literal is well formed.
    pub fn from_json(raw: &RawValue) -> Option<Text> {
        let literal = raw.get();
        canonical(literal).then(|| {
            Text(Repr::Json {
                literal: literal.into(),
                decoded: OnceLock::new(),
            })
        })
    }

    /// The JSON string literal (quotes included), escaped as kato escapes
    /// strings, when the text is held that way.
    pub fn json(&self) -> Option<&str> {
        match &self.0 {
            Repr::Plain(_) => None,
            Repr::Json { literal, .. } => Some(literal),
        }
    }

    /// The decoded text, to change: a literal is decoded once and dropped.
    pub fn make_mut(&mut self) -> &mut String {
        if let Repr::Json { literal, decoded } = &mut self.0 {
            let text = decoded.take().unwrap_or_else(|| decode(literal));
            self.0 = Repr::Plain(text);
        }
        match &mut self.0 {
            Repr::Plain(s) => s,
            // Made plain just above.
            Repr::Json { .. } => unreachable!("a text made plain holds a literal"),
        }
    }

    /// Drop the decoded copy of a literal (read again, it is decoded again).
    pub fn forget_decoded(&mut self) {
        if let Repr::Json { decoded, .. } = &mut self.0 {
            decoded.take();
        }
    }

    /// Bytes the text takes as it is held (a literal's, escapes and
    /// quotes included): its size, without decoding it.
    pub fn held_len(&self) -> usize {
        match &self.0 {
            Repr::Plain(s) => s.len(),
            Repr::Json { literal, .. } => literal.len(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Plain(s) => s,
            Repr::Json { literal, decoded } => decoded.get_or_init(|| decode(literal)),
        }
    }
}

/// Is `literal` a JSON string escaped exactly as kato (and `serde_json`)
/// escape strings: the quote, the backslash and `\b \t \n \f \r` in their
/// short forms, any other C0 control as `\u00XX` in lower-case hex, and
/// nothing else escaped? Such a literal is what kato would write for the
/// text it decodes to, so it can be copied instead; and no escape in it
/// hides a character that is not a control (`\u0041`, `\/`), so a scan
/// for secrets sees every other character as it is.
///
/// Only the escapes are checked: the caller holds a literal a JSON parser
/// accepted (quotes around it, no raw quote or control inside, every
/// escape well formed), so only `\/` and `\u` can break the form. Pairs
/// of a backslash and `u` or `/` are looked for 64 bytes a step, in a
/// fold without early exit that vectorises: tool outputs are long, and
/// most of their escapes are `\n`.
fn canonical(literal: &str) -> bool {
    let bytes = literal.as_bytes();
    let Some((&b'"', rest)) = bytes.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return false;
    }
    let suspect = |x: u8, y: u8| (x == b'\\') & ((y == b'u') | (y == b'/'));
    let (firsts, seconds) = (&bytes[..bytes.len() - 1], &bytes[1..]);
    let mut at = 0;
    for (a, b) in firsts.chunks(64).zip(seconds.chunks(64)) {
        if a.iter()
            .zip(b)
            .fold(false, |seen, (&x, &y)| seen | suspect(x, y))
        {
            for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
                // A backslash that is not itself escaped starts an escape.
                let escape = !crate::json_str::is_escaped(bytes, at + i);
                if suspect(x, y) && escape && !short_control(bytes, at + i) {
                    return false;
                }
            }
        }
        at += a.len();
    }
    true
}

/// Is the escape at `at` a `\u00XX` kato writes: a C0 control without a
/// short form, in lower-case hex?
fn short_control(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at + 1..at + 6) {
        Some([b'u', b'0', b'0', hi @ (b'0' | b'1'), lo]) => match lower_hex(*lo) {
            Some(lo) => !matches!((hi - b'0') << 4 | lo, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d),
            None => false,
        },
        _ => false,
    }
}

fn lower_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// The text a [`canonical`] literal stands for.
fn decode(literal: &str) -> String {
    // A canonical literal from a parser always decodes; were one ever not
    // to, its text would show as a replacement character, never as the
    // escapes.
    crate::json_str::decode_literal(literal)
        .map(std::borrow::Cow::into_owned)
        .unwrap_or_else(|_| "\u{FFFD}".to_owned())
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Repr::Plain(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Repr::Plain(s.to_owned()))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

/// Texts are equal when they read the same, however they are held.
impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn a_literal_written_as_kato_writes_it_is_kept_and_reads_decoded() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "a\nb\tc\r\n\"q\" \\ \u{8}\u{c}".into(),
            "\u{1b}[31mred\u{1b}[0m \u{0}\u{1f}\u{7f}\u{80}\u{9f} é 🙂 \u{2028}".into(),
            "</script> & / <".into(),
        ];
        samples.extend((0u8..0x80).map(|b| format!("x{}y", char::from(b))));
        for s in samples {
            let literal = serde_json::to_string(&s).unwrap();
            let t = Text::from_json(&raw(&literal)).unwrap_or_else(|| panic!("{literal}"));
            assert_eq!(t.json(), Some(literal.as_str()));
            assert_eq!(t, *s.as_str());
            assert_eq!(serde_json::to_string(&t).unwrap(), literal);
        }
    }

    #[test]
    fn a_literal_kato_would_write_otherwise_is_not_kept() {
        for json in [
            r#""\u0041""#,
            r#""\u000a""#,
            r#""\u001B""#,
            r#""\/""#,
            r#""\ud83d\ude00""#,
            r#""\u00e9""#,
            "1",
            "null",
            r#"["a"]"#,
            r#"{"a":"b"}"#,
        ] {
            assert!(Text::from_json(&raw(json)).is_none(), "{json}");
        }
    }

    #[test]
    fn a_literal_made_mutable_becomes_its_text() {
        let mut t = Text::from_json(&raw(r#""a\nb""#)).unwrap();
        t.make_mut().push('!');
        assert_eq!(t.json(), None);
        assert_eq!(t, "a\nb!");
        let held = Text::from_json(&raw(r#""x\ty""#)).unwrap();
        assert_eq!(held, Text::from("x\ty"));
        assert_eq!(format!("{held:?}"), r#""x\ty""#);
    }
}
