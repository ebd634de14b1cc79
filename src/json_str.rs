//! JSON string literals: where they start and end, and what they decode
//! to. The one place in the crate that lexes string literals by hand; the
//! redactor, the Gemini parser and the Markdown renderer walk JSON text
//! through it.
//!
//! Positions are byte offsets. A quote is *escaped* when an odd number of
//! backslashes precedes it; inside a string every `"` that does not close
//! it is escaped, and outside strings JSON has no backslashes at all.
//! Decoding follows RFC 8259 as `serde_json` reads it: the eight short
//! escapes, `\uXXXX` with surrogate pairs, no lone surrogates, no raw
//! control characters.

use std::borrow::Cow;

/// Whether the byte at `at` is preceded by an odd run of backslashes.
pub fn is_escaped(bytes: &[u8], at: usize) -> bool {
    let before = bytes.get(..at).unwrap_or(bytes);
    before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Index of the closing quote of a string whose content starts at `start`
/// (just after its opening quote); `None` when it is unterminated.
pub fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let at = i + memchr::memchr(b'"', bytes.get(i..)?)?;
        if !is_escaped(bytes.get(start..=at)?, at - start) {
            return Some(at);
        }
        i = at + 1;
    }
}

/// The opening quote of the string that contains position `c`: the nearest
/// unescaped `"` before it.
pub fn opening_quote(bytes: &[u8], c: usize) -> Option<usize> {
    let mut end = c.min(bytes.len());
    loop {
        let q = memchr::memrchr(b'"', bytes.get(..end)?)?;
        if !is_escaped(bytes, q) {
            return Some(q);
        }
        end = q;
    }
}

/// The first unescaped `"` in `bytes[from..to]`.
pub fn unescaped_quote(bytes: &[u8], from: usize, to: usize) -> Option<usize> {
    let mut i = from;
    while let Some(rel) = bytes.get(i..to).and_then(|b| memchr::memchr(b'"', b)) {
        let at = i + rel;
        if !is_escaped(bytes, at) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// The index after JSON whitespace starting at `i`.
pub fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// A piece of JSON text: a string literal with its quotes (the rest of the
/// text when it is unterminated), or the text between two literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    String(&'a str),
    Other(&'a str),
}

/// JSON text cut into string literals and what lies between them; the
/// pieces put together give the text back.
pub fn segments(json: &str) -> Segments<'_> {
    Segments { json, pos: 0 }
}

/// Iterator of [`segments`].
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    json: &'a str,
    pos: usize,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        let bytes = self.json.as_bytes();
        let from = self.pos;
        if from >= bytes.len() {
            return None;
        }
        if bytes.get(from) == Some(&b'"') {
            let end = string_end(bytes, from + 1).map_or(bytes.len(), |q| q + 1);
            self.pos = end;
            return self.json.get(from..end).map(Segment::String);
        }
        let end = bytes
            .get(from..)
            .and_then(|b| memchr::memchr(b'"', b))
            .map_or(bytes.len(), |q| from + q);
        self.pos = end;
        self.json.get(from..end).map(Segment::Other)
    }
}

/// Why a string literal's content does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid escape at byte {0}")]
    InvalidEscape(usize),
    #[error("lone surrogate at byte {0}")]
    LoneSurrogate(usize),
    #[error("control character at byte {0}")]
    ControlCharacter(usize),
    #[error("unescaped quote at byte {0}")]
    Quote(usize),
    #[error("unterminated string")]
    Unterminated,
}

/// The decoded content of a string literal's inside (the text between its
/// quotes); borrowed when it holds no escape.
pub fn unescape(inner: &str) -> Result<Cow<'_, str>, DecodeError> {
    let bytes = inner.as_bytes();
    let first = next_special(bytes, 0);
    if first == bytes.len() {
        return Ok(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    out.push_str(inner.get(..first).unwrap_or(""));
    let mut i = first;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => {
                let esc = *bytes.get(i + 1).ok_or(DecodeError::Unterminated)?;
                i += 2;
                let c = match esc {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    b'u' => {
                        let (c, next) = unicode_escape(bytes, i - 2)?;
                        i = next;
                        c
                    }
                    _ => return Err(DecodeError::InvalidEscape(i - 2)),
                };
                out.push(c);
            }
            b'"' => return Err(DecodeError::Quote(i)),
            b if b < 0x20 => return Err(DecodeError::ControlCharacter(i)),
            _ => {
                let run = next_special(bytes, i);
                out.push_str(inner.get(i..run).unwrap_or(""));
                i = run;
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Decode a whole string literal, quotes included.
pub fn decode_literal(literal: &str) -> Result<Cow<'_, str>, DecodeError> {
    let inner = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or(DecodeError::Unterminated)?;
    unescape(inner)
}

/// A byte that ends a run of literal text: an escape, a quote or a raw
/// control character.
fn special(b: u8) -> bool {
    b == b'\\' || b == b'"' || b < 0x20
}

/// The index of the first [`special`] byte at or after `from` (the length
/// when there is none). Eight bytes a step: tool output is long, and most
/// of it is plain text between escapes.
fn next_special(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Sets the high bit of every byte of `w` that is zero (and, for a
    // byte after such a one, maybe others: only the first is used).
    let zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let w = u64::from_le_bytes(b);
        let hit = zero(w ^ (ONES * u64::from(b'\\')))
            | zero(w ^ (ONES * u64::from(b'"')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
        if hit != 0 {
            // The lowest flagged byte is the first special one: flags of
            // later bytes can be false, never those before a true one.
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    bytes
        .get(i..)
        .and_then(|r| r.iter().position(|&b| special(b)))
        .map_or(bytes.len(), |n| i + n)
}

/// The four hex digits of `\uXXXX` at `at + 2`.
fn hex4(bytes: &[u8], at: usize) -> Result<u16, DecodeError> {
    let digits = bytes
        .get(at + 2..at + 6)
        .ok_or(DecodeError::InvalidEscape(at))?;
    let mut v = 0u16;
    for &d in digits {
        let n = (d as char)
            .to_digit(16)
            .ok_or(DecodeError::InvalidEscape(at))?;
        v = v << 4 | n as u16;
    }
    Ok(v)
}

/// The character of the `\u` escape at `at` (a surrogate pair takes two
/// escapes) and the index after it.
fn unicode_escape(bytes: &[u8], at: usize) -> Result<(char, usize), DecodeError> {
    let hi = hex4(bytes, at)?;
    let after = at + 6;
    match hi {
        0xD800..=0xDBFF => {
            if bytes.get(after..after + 2) != Some(b"\\u") {
                return Err(DecodeError::LoneSurrogate(at));
            }
            let lo = hex4(bytes, after)?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err(DecodeError::LoneSurrogate(at));
            }
            let c = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
            let c = char::from_u32(c).ok_or(DecodeError::LoneSurrogate(at))?;
            Ok((c, after + 6))
        }
        0xDC00..=0xDFFF => Err(DecodeError::LoneSurrogate(at)),
        _ => {
            let c = char::from_u32(u32::from(hi)).ok_or(DecodeError::InvalidEscape(at))?;
            Ok((c, after))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(s: &str) -> Result<String, DecodeError> {
        decode_literal(s).map(Cow::into_owned)
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            unescape("abc é 😀"),
            Ok(Cow::Borrowed("abc é 😀"))
        ));
        assert!(matches!(unescape(""), Ok(Cow::Borrowed(""))));
    }

    #[test]
    fn short_escapes() {
        assert_eq!(
            literal(r#""a\"b\\c\/d\be\ff\ng\rh\ti""#).as_deref(),
            Ok("a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti")
        );
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs() {
        assert_eq!(literal(r#""\u0041\u00e9\u20AC""#).as_deref(), Ok("Aé€"));
        assert_eq!(literal(r#""x\ud83d\ude00y""#).as_deref(), Ok("x😀y"));
        assert_eq!(literal(r#""\u0000""#).as_deref(), Ok("\0"));
    }

    #[test]
    fn lone_and_reversed_surrogates_fail() {
        for s in [
            r#""\ud83d""#,
            r#""\ud83dx""#,
            r#""\ude00""#,
            r#""\ud83d\u0041""#,
            r#""\ude00\ud83d""#,
        ] {
            assert!(
                matches!(literal(s), Err(DecodeError::LoneSurrogate(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn invalid_escapes_fail() {
        for s in [
            r#""\x""#,
            r#""\u12""#,
            r#""\u12g4""#,
            r#""\'""#,
            r#""\U0041""#,
        ] {
            assert!(
                matches!(literal(s), Err(DecodeError::InvalidEscape(_))),
                "{s}"
            );
        }
        assert_eq!(unescape("a\\"), Err(DecodeError::Unterminated));
    }

    #[test]
    fn raw_controls_and_quotes_fail() {
        assert_eq!(unescape("a\nb"), Err(DecodeError::ControlCharacter(1)));
        assert_eq!(unescape("a\"b"), Err(DecodeError::Quote(1)));
    }

    #[test]
    fn unterminated_literals_fail() {
        for s in ["\"", "\"abc", "abc\"", r#""abc\""#, ""] {
            assert_eq!(literal(s), Err(DecodeError::Unterminated), "{s}");
        }
        assert_eq!(literal(r#""abc\\""#).as_deref(), Ok("abc\\"));
    }

    #[test]
    fn agrees_with_serde_json() {
        for s in [
            r#""plain""#,
            r#""\u0041\n\t\"""#,
            r#""\ud83d\ude00""#,
            r#""\ud83d""#,
            r#""\q""#,
            "\"a\u{1}b\"",
            r#""\u00""#,
            r#""é\u00e9""#,
        ] {
            let ours = literal(s).ok();
            let theirs = serde_json::from_str::<String>(s).ok();
            assert_eq!(ours, theirs, "{s}");
        }
    }

    #[test]
    fn next_special_finds_the_first_special_byte() {
        let specials = [b'\\', b'"', 0x00, 0x1f, b'\n'];
        let plain = [
            b'a', b' ', 0x20, 0x7f, 0x80, 0xff, b'[', b'!', b'#', 0x21, 0x5b, 0x5d,
        ];
        for len in 0..20usize {
            for at in 0..=len {
                for &sp in &specials {
                    for &p in &plain {
                        let mut v = vec![p; len];
                        if at < len {
                            v[at] = sp;
                            // Specials after the first do not matter.
                            if at + 1 < len {
                                v[at + 1] = b'"';
                            }
                        }
                        let want = v.iter().position(|&b| special(b)).unwrap_or(len);
                        for from in 0..=len.min(at) {
                            assert_eq!(next_special(&v, from), want.max(from), "{v:?} {from}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn string_ends_skip_escaped_quotes() {
        let b = br#""a\"b\\" rest"#;
        assert_eq!(string_end(b, 1), Some(7));
        assert_eq!(string_end(br#""abc\""#, 1), None);
        assert_eq!(string_end(b"\"abc", 1), None);
        assert_eq!(string_end(b"\"\"", 1), Some(1));
    }

    #[test]
    fn opening_and_unescaped_quotes() {
        let b = br#"{"k": "a\"b c"}"#;
        let c = b.iter().position(|&x| x == b'c').unwrap_or(0);
        assert_eq!(opening_quote(b, c), Some(6));
        assert_eq!(unescaped_quote(b, 7, b.len()), Some(13));
        assert_eq!(opening_quote(b"no quote", 4), None);
        assert_eq!(skip_ws(b" \t\r\n x", 0), 5);
    }

    #[test]
    fn segments_give_the_text_back() {
        let json = r#"{"a\"": [1, "x\\"], "u": "open"#;
        let parts: Vec<Segment> = segments(json).collect();
        assert_eq!(
            parts,
            [
                Segment::Other("{"),
                Segment::String(r#""a\"""#),
                Segment::Other(": [1, "),
                Segment::String(r#""x\\""#),
                Segment::Other("], "),
                Segment::String(r#""u""#),
                Segment::Other(": "),
                Segment::String(r#""open"#),
            ]
        );
        let back: String = parts
            .iter()
            .map(|s| match s {
                Segment::String(t) | Segment::Other(t) => *t,
            })
            .collect();
        assert_eq!(back, json);
        assert_eq!(segments("").count(), 0);
    }
}
