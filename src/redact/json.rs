//! Redaction inside JSON documents (tool input, provider records): only
//! string values change, and the document stays valid.

use std::borrow::Cow;

use memchr::memmem::Finder;

use super::detect::secret_key_label;
use super::{apply, Found, Redactor};
use crate::json_str::{opening_quote, skip_ws, string_end, unescaped_quote};

impl Redactor {
    /// Redact the string values (and keys) of a JSON text, such as a
    /// [`RawValue`](serde_json::value::RawValue)'s. `None` when nothing changed. Everything outside the
    /// rewritten strings is kept byte for byte, so valid JSON stays valid.
    ///
    /// The document is scanned as it stands, in one pass: detectors treat
    /// escapes (`\n`, `\"`) like the characters they stand for and
    /// understand `"key": "value"`, so a string value whose key names a
    /// secret is redacted whole; a replacement never leaves its string
    /// literal nor cuts an escape in two. Escapes that could spell a
    /// candidate (`\u0041`, `\/`) and extra patterns need decoded text:
    /// then each string is decoded, scanned and re-encoded instead.
    pub fn redact_json(&self, json: &str, found: &mut Vec<Found>) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let bytes = json.as_bytes();
        let mut spans = Vec::new();
        if !self.extra.is_empty() || !self.scan_as(json, &mut spans, true) {
            return self.redact_json_strings(json, found);
        }
        if spans.is_empty() {
            return None;
        }
        for span in &mut spans {
            // A key block whose END line lies in another string: stop at
            // the end of this one.
            if let Some(q) = unescaped_quote(bytes, span.start, span.end) {
                span.end = q;
            }
        }
        spans.retain(|s| s.end > s.start);
        let r = apply(json, &spans);
        let Cow::Owned(text) = r.text else {
            return None;
        };
        // A replacement outside any string (`"password": -1e9`) breaks the
        // document: then go string by string, which knows the structure.
        if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err() {
            return self.redact_json_strings(json, found);
        }
        found.extend_from_slice(&r.found);
        Some(text)
    }

    /// [`Redactor::redact_json`] string by string, on decoded text.
    // Long because: one pass over the document whose splice state spans every string.
    fn redact_json_strings(&self, json: &str, found: &mut Vec<Found>) -> Option<String> {
        let bytes = json.as_bytes();
        let every_string = !self.extra.is_empty();
        let mut out = String::new();
        let mut copied = 0;
        let mut pos = 0;
        // Cached next positions of each kind; `Some(None)`: none left.
        let mut hit: Option<Option<usize>> = None;
        let mut esc_u: Option<Option<usize>> = None;
        let mut esc_slash: Option<Option<usize>> = None;
        loop {
            // The next position inside a string that needs a look.
            let candidate = if every_string {
                bytes
                    .get(pos..)
                    .and_then(|b| memchr::memchr(b'"', b))
                    .map(|q| pos + q + 1)
            } else {
                let stale = |c: &Option<Option<usize>>| match c {
                    None => true,
                    Some(Some(p)) => *p < pos,
                    Some(None) => false,
                };
                if stale(&hit) {
                    hit = Some(self.candidate(json, pos).map(|c| c.start));
                }
                if stale(&esc_u) {
                    esc_u = Some(self.hiding_u(bytes, pos));
                }
                if stale(&esc_slash) {
                    esc_slash = Some(find_from(&self.det.esc_slash, bytes, pos));
                }
                [hit, esc_u, esc_slash]
                    .into_iter()
                    .flatten()
                    .flatten()
                    .min()
            };
            let Some(c) = candidate else { break };
            let Some(open) = opening_quote(bytes, c) else {
                pos = c + 1;
                continue;
            };
            let Some(close) = string_end(bytes, open + 1) else {
                // Malformed document: the unterminated rest is plain text.
                let r = self.redact_str(json.get(open..).unwrap_or(""));
                if r.found.is_empty() {
                    break;
                }
                found.extend_from_slice(&r.found);
                out.push_str(json.get(copied..open).unwrap_or(""));
                out.push_str(&r.text);
                return Some(out);
            };
            pos = close + 1;
            let colon = skip_ws(bytes, close + 1);
            let mut value = None;
            if bytes.get(colon) == Some(&b':') {
                let v = skip_ws(bytes, colon + 1);
                let key = json_string(json, open, close).unwrap_or(Cow::Borrowed(""));
                let keyed = secret_key_label(&key).is_some()
                    || key.eq_ignore_ascii_case("authorization")
                    || key == "auth";
                if keyed && bytes.get(v) == Some(&b'"') {
                    if let Some(vclose) = string_end(bytes, v + 1) {
                        value = Some((key.into_owned(), v, vclose));
                        pos = vclose + 1;
                    }
                }
            }
            let mut splice = |at: (usize, usize), key: Option<&str>| {
                self.json_splice(json, at, key, every_string, &mut out, &mut copied, found)
            };
            splice((open, close), None);
            if let Some((key, v, vclose)) = value {
                splice((v, vclose), Some(&key));
            }
        }
        if copied == 0 {
            return None;
        }
        out.push_str(json.get(copied..).unwrap_or(""));
        Some(out)
    }

    /// Redact the JSON string literal `json[open..=close]` and append the
    /// result to `out` when it changed.
    ///
    /// The literal is scanned as it stands, escapes included: detectors
    /// treat `\n`, `\t`, `\"` like the characters they stand for, and no
    /// replacement cuts an escape in two, so the result needs no
    /// re-encoding. Only escapes that could spell a candidate (`\u0041`,
    /// `\/`) — or any escape when extra patterns are configured — make it
    /// decode, scan and re-encode the string.
    #[allow(clippy::too_many_arguments)]
    fn json_splice(
        &self,
        json: &str,
        (open, close): (usize, usize),
        key: Option<&str>,
        every_string: bool,
        out: &mut String,
        copied: &mut usize,
        found: &mut Vec<Found>,
    ) {
        let raw = json.get(open + 1..close).unwrap_or("");
        let decode = if every_string {
            raw.contains('\\')
        } else {
            self.hiding_u(raw.as_bytes(), 0).is_some()
                || self.det.esc_slash.find(raw.as_bytes()).is_some()
        };
        let decoded = if decode {
            json_string(json, open, close).map(Cow::into_owned)
        } else {
            None
        };
        let text = decoded.as_deref().unwrap_or(raw);
        let r = match key {
            Some(k) => self.redact_value(text, k),
            None => self.redact_str(text),
        };
        if r.found.is_empty() {
            return;
        }
        found.extend_from_slice(&r.found);
        let literal = if decoded.is_some() {
            serde_json::to_string(r.text.as_ref())
                .unwrap_or_else(|_| String::from("\"[REDACTED]\""))
        } else {
            format!("\"{}\"", r.text)
        };
        out.push_str(json.get(*copied..open).unwrap_or(""));
        out.push_str(&literal);
        *copied = close + 1;
    }

    /// The next `\u00XX` escape at or after `from` that stands for a
    /// printable ASCII character (one that could be part of a candidate).
    pub(super) fn hiding_u(&self, bytes: &[u8], from: usize) -> Option<usize> {
        let rest = bytes.get(from..)?;
        self.det
            .esc_u
            .find_iter(rest)
            .find(|&i| rest.get(i + 4).is_some_and(|b| (b'2'..=b'7').contains(b)))
            .map(|i| from + i)
    }
}

/// The decoded content of the JSON string literal `json[open..=close]`;
/// `None` when its escapes do not decode.
fn json_string(json: &str, open: usize, close: usize) -> Option<Cow<'_, str>> {
    let inner = json.get(open + 1..close)?;
    if inner.contains('\\') {
        crate::json_str::unescape(inner).ok()
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The next occurrence of a literal at or after `from`.
fn find_from(finder: &Finder<'_>, bytes: &[u8], from: usize) -> Option<usize> {
    finder.find(bytes.get(from..)?).map(|i| from + i)
}
