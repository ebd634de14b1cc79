//! Secret redaction (SPEC §5): applied to canonical events before any
//! rendering, in every output format, on by default.
//!
//! Each secret found is replaced by `[REDACTED:<LABEL>]`. What was redacted
//! is counted per label and listed per event with its byte length — the
//! secret itself is never stored, logged or put into an error message.
//!
//! # How a text is scanned
//!
//! One left-to-right pass. A single SIMD multi-literal scan (token
//! prefixes such as `ghp_` or `AKIA`, `://`, `-----BEGIN `, and the cores
//! of secret-ish key words such as `oken` or `assw`) finds candidate
//! positions; text without any candidate is returned borrowed at the cost of
//! that scan alone. At each candidate only the detector that belongs to it
//! runs, anchored at the candidate, and the scan resumes after it.
//!
//! Detectors are written for precision: a token prefix must start a word
//! (`risk-free` holds `sk-` but is no key), token bodies have the length and
//! alphabet of the real thing, and `key = value` assignments only redact
//! values that look like data, not code (`let token = get_token();` stays).
//!
//! Structured payloads (tool input, provider records) are JSON: only the
//! string values inside them are rewritten, so the JSON stays valid, and a
//! string value whose key names a secret (`"api_key": "…"`) is redacted
//! whole.

mod detect;
mod json;
mod rules;

pub use rules::Label;

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::{Event, Payload, Text};
use detect::{high_entropy, is_basic_credential, quoted_value_ok, secret_key};
#[cfg(test)]
use detect::{secret_key_label, value_at};
use rules::{Candidate, Detectors, Kind, Value};

/// The `[redaction]` configuration table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionOptions {
    /// Redact secrets in every output. On by default.
    pub enabled: bool,
    /// Additional regular expressions (Rust `regex` syntax). When a pattern
    /// has a capture group, only group 1 is replaced; otherwise the whole
    /// match. Matches are labelled `CUSTOM`.
    pub extra_patterns: Vec<String>,
    /// Literal strings that are never redacted (e.g. a documented fake key).
    pub allow: Vec<String>,
}

impl Default for RedactionOptions {
    fn default() -> Self {
        RedactionOptions {
            enabled: true,
            extra_patterns: Vec::new(),
            allow: Vec::new(),
        }
    }
}

/// A redaction configuration that cannot be used. Messages name the
/// offending configuration entry, never any scanned text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedactError {
    #[error("`redaction.extra_patterns[{index}]` = `{pattern}` is not a valid regular expression: {reason}")]
    InvalidPattern {
        index: usize,
        pattern: String,
        reason: String,
    },
    #[error("`redaction.allow[{index}]` is an empty string; remove it")]
    EmptyAllow { index: usize },
    #[error("built-in redaction pattern `{name}` does not compile: {reason}")]
    Builtin { name: &'static str, reason: String },
}

/// One secret removed from a text: its kind and length, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Found {
    pub label: Label,
    /// Length of the removed secret in bytes.
    pub bytes: usize,
}

/// A redacted text: borrowed when nothing was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    pub text: Cow<'a, str>,
    pub found: Vec<Found>,
}

impl Redacted<'_> {
    pub fn is_unchanged(&self) -> bool {
        matches!(self.text, Cow::Borrowed(_))
    }
}

/// One redaction inside an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedactionRecord {
    pub label: Label,
    pub event_id: String,
    /// Length of the removed secret in bytes.
    pub bytes: usize,
}

/// What [`Redactor::redact_event`] removed, for the audit log and summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedactionStats {
    /// Number of redactions per label.
    pub counts: BTreeMap<Label, u64>,
    /// Every redaction, in the order found.
    pub redactions: Vec<RedactionRecord>,
}

impl RedactionStats {
    /// Total number of redactions.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.redactions.is_empty()
    }

    fn record(&mut self, found: Found, event_id: &str) {
        *self.counts.entry(found.label).or_insert(0) += 1;
        self.redactions.push(RedactionRecord {
            label: found.label,
            event_id: event_id.to_owned(),
            bytes: found.bytes,
        });
    }

    /// Add another set of statistics to this one.
    pub fn merge(&mut self, other: RedactionStats) {
        for (label, n) in other.counts {
            *self.counts.entry(label).or_insert(0) += n;
        }
        self.redactions.extend(other.redactions);
    }
}

/// A secret's position in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
    label: Label,
}

/// Outcome of one detector at one candidate position.
enum Hit {
    /// A secret at `span`; scanning resumes at its end.
    Secret(Span),
    /// Two secrets, in order (an AWS key id and its secret key); scanning
    /// resumes at the end of the second.
    Pair(Span, Span),
    /// No secret here; scanning resumes at the given offset.
    Skip(usize),
}

/// Condense a regex error to one line (the crate's message repeats the
/// pattern with a caret diagram).
fn short_regex_error(e: &regex::Error) -> String {
    let full = e.to_string();
    full.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| full.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A user-configured pattern.
#[derive(Debug, Clone)]
struct Extra {
    re: Regex,
    /// Replace capture group 1 instead of the whole match.
    group: bool,
}

/// Finds and replaces secrets. Build once (it compiles its patterns) and
/// share; it is `Send + Sync` and cheap to clone.
#[derive(Debug, Clone)]
pub struct Redactor {
    enabled: bool,
    det: Detectors,
    extra: Vec<Extra>,
    allow: Vec<String>,
}

/// The user's extra patterns, compiled, after checking the allow list.
fn compile_options(options: &RedactionOptions) -> Result<Vec<Extra>, RedactError> {
    let mut extra = Vec::with_capacity(options.extra_patterns.len());
    for (index, pattern) in options.extra_patterns.iter().enumerate() {
        let re = RegexBuilder::new(pattern)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| RedactError::InvalidPattern {
                index,
                pattern: pattern.clone(),
                reason: short_regex_error(&e),
            })?;
        let group = re.captures_len() > 1;
        extra.push(Extra { re, group });
    }
    for (index, a) in options.allow.iter().enumerate() {
        if a.is_empty() {
            return Err(RedactError::EmptyAllow { index });
        }
    }
    Ok(extra)
}

impl Redactor {
    /// Compile the built-in detectors plus the configured extra patterns.
    /// Extra patterns and allow entries are validated even when redaction
    /// is disabled, so a broken configuration is reported either way.
    pub fn new(options: &RedactionOptions) -> Result<Redactor, RedactError> {
        let extra = compile_options(options)?;
        Ok(Redactor {
            enabled: options.enabled,
            det: Detectors::new()?,
            extra,
            allow: options.allow.clone(),
        })
    }

    /// Check what a user wrote in `[redaction]` (their patterns and allow
    /// list) without building the built-in detectors, which are fixed and
    /// cost far more to compile: what configuration loading calls.
    pub fn check(options: &RedactionOptions) -> Result<(), RedactError> {
        compile_options(options).map(drop)
    }

    /// Whether this redactor changes anything at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Redact one text. Borrowed (no allocation) when nothing is found.
    pub fn redact_str<'a>(&self, text: &'a str) -> Redacted<'a> {
        if !self.enabled {
            return Redacted {
                text: Cow::Borrowed(text),
                found: Vec::new(),
            };
        }
        let mut spans = Vec::new();
        self.scan(text, &mut spans);
        self.scan_extra(text, &mut spans);
        apply(text, &spans)
    }

    /// Redact every text field of an event in place, recording what was
    /// removed under the event's id.
    pub fn redact_event(&self, event: &mut Event, stats: &mut RedactionStats) {
        if !self.enabled {
            return;
        }
        let Event {
            event_id,
            payload,
            model,
            subagent,
            ..
        } = event;
        let id = event_id.as_str();
        // Names around the bodies are content too: a model, an agent's
        // label or a tool's name is whatever the session file says.
        if let Some(model) = model {
            self.redact_shared(model, id, stats);
        }
        for name in subagent
            .iter_mut()
            .flat_map(|s| s.id.iter_mut().chain(s.label.iter_mut()))
        {
            self.redact_string(name, id, stats);
        }
        match payload {
            Payload::UserMessage { text, .. }
            | Payload::DecisionResponse { text, .. }
            | Payload::AssistantMessage { text }
            | Payload::Thinking { text }
            | Payload::SystemMessage { text, .. } => self.redact_string(text, id, stats),
            Payload::DecisionPrompt { text, name, .. } => {
                self.redact_string(name, id, stats);
                self.redact_string(text, id, stats);
            }
            Payload::KatoCommand { raw, error, .. } => {
                self.redact_string(raw, id, stats);
                if let Some(e) = error {
                    self.redact_string(e, id, stats);
                }
            }
            Payload::ToolResult { output, .. } => self.redact_text(output, id, stats),
            Payload::ToolCall { input, name, .. } => {
                self.redact_string(name, id, stats);
                self.redact_raw(input, id, stats);
            }
            Payload::ProviderInfo { data, .. } => self.redact_raw(data, id, stats),
            Payload::ProviderRaw { record } => self.redact_raw(record, id, stats),
        }
    }

    /// Redact every string value of `value` in place (keys and structure
    /// stay, so it reads back the same way): for kato's own records about a
    /// session, such as a parser's saved context.
    pub fn redact_json_value(&self, value: &mut serde_json::Value) {
        let Ok(text) = serde_json::to_string(value) else {
            return;
        };
        if let Some(new) = self.redact_json(&text, &mut Vec::new()) {
            // A rewrite keeps the JSON valid; if it ever did not, nothing
            // of the old value may stay.
            *value = serde_json::from_str(&new).unwrap_or(serde_json::Value::Null);
        }
    }

    fn redact_string(&self, text: &mut String, id: &str, stats: &mut RedactionStats) {
        let r = self.redact_str(text);
        for f in &r.found {
            stats.record(*f, id);
        }
        if let Cow::Owned(new) = r.text {
            *text = new;
        }
    }

    /// [`Self::redact_string`] for a text that may be held as its JSON
    /// literal ([`Text::json`]). A literal in which the literal scan finds
    /// no candidate stands for a text in which it finds none either (see
    /// [`rules::Detectors::holds_candidate`]): nothing to redact, and it is
    /// not decoded. Otherwise the decoded text is redacted as any other;
    /// when nothing is found the literal still stands for it and is kept.
    fn redact_text(&self, text: &mut Text, id: &str, stats: &mut RedactionStats) {
        if let Some(literal) = text.json() {
            if self.extra.is_empty() && !self.det.holds_candidate(literal) {
                return;
            }
        }
        let r = self.redact_str(text);
        for f in &r.found {
            stats.record(*f, id);
        }
        match r.text {
            Cow::Owned(new) => *text = new.into(),
            Cow::Borrowed(_) => text.forget_decoded(),
        }
    }

    /// [`Self::redact_string`] for a string events share: replaced, not
    /// changed in place, when it holds a secret.
    fn redact_shared(&self, text: &mut std::sync::Arc<str>, id: &str, stats: &mut RedactionStats) {
        let r = self.redact_str(text);
        for f in &r.found {
            stats.record(*f, id);
        }
        if let Cow::Owned(new) = r.text {
            *text = new.into();
        }
    }

    fn redact_raw(&self, raw: &mut Box<RawValue>, id: &str, stats: &mut RedactionStats) {
        let mut found = Vec::new();
        if let Some(new) = self.redact_json(raw.get(), &mut found) {
            *raw =
                RawValue::from_string(new).unwrap_or_else(|_| crate::event::raw_json("[REDACTED]"));
        }
        for f in found {
            stats.record(f, id);
        }
    }

    /// Redact a JSON string value that belongs to `key`: the whole value
    /// when the key names a secret, the credential when it is an
    /// `Authorization` header, else like any text.
    fn redact_value<'a>(&self, value: &'a str, key: &str) -> Redacted<'a> {
        if !self.enabled {
            return Redacted {
                text: Cow::Borrowed(value),
                found: Vec::new(),
            };
        }
        let mut spans = Vec::new();
        if let Some((key_label, rule)) = secret_key(key) {
            if quoted_value_ok(value) && (rule == Value::Data || high_entropy(value)) {
                let label = self.classify(value).unwrap_or(key_label);
                let span = Span {
                    start: 0,
                    end: value.len(),
                    label,
                };
                if !self.allowed(value, span) {
                    spans.push(span);
                }
                return apply(value, &spans);
            }
        } else if key == "auth" && is_basic_credential(value) {
            let span = Span {
                start: 0,
                end: value.len(),
                label: Label::DockerAuth,
            };
            if !self.allowed(value, span) {
                spans.push(span);
            }
            return apply(value, &spans);
        } else if key.eq_ignore_ascii_case("authorization") {
            if let Some(span) = self.auth_credential(value, 0) {
                if !self.allowed(value, span) {
                    spans.push(span);
                }
                let mut rest = Vec::new();
                self.scan(value.get(span.end..).unwrap_or(""), &mut rest);
                spans.extend(rest.into_iter().map(|s| Span {
                    start: s.start + span.end,
                    end: s.end + span.end,
                    label: s.label,
                }));
                self.scan_extra(value, &mut spans);
                return apply(value, &spans);
            }
        }
        self.redact_str(value)
    }

    /// The built-in pass: literal candidates, then the detector of each.
    fn scan(&self, text: &str, spans: &mut Vec<Span>) {
        self.scan_as(text, spans, false);
    }

    /// [`Redactor::scan`]; with `json`, the text is a JSON document and the
    /// scan stops, returning `false`, at the first escape that could spell a
    /// candidate (`\u0041`, `:\/`), which only decoding reveals.
    fn scan_as(&self, text: &str, spans: &mut Vec<Span>, json: bool) -> bool {
        let mut pos = 0;
        let mut last_end = 0;
        while pos < text.len() {
            let Some(m) = self.candidate(text, pos) else {
                break;
            };
            if m.kind == Kind::Escape {
                // `:\/` always; `\u00XX` when XX is printable ASCII.
                let bytes = text.as_bytes();
                let unicode = bytes.get(m.start + 1) == Some(&b'u');
                let hiding =
                    !unicode || bytes.get(m.end).is_some_and(|b| (b'2'..=b'7').contains(b));
                if json && hiding {
                    return false;
                }
                pos = m.end;
                continue;
            }
            pos = match self.detect(text, m) {
                Hit::Secret(span) => {
                    self.keep(text, span, spans, &mut last_end);
                    span.end.max(m.end)
                }
                Hit::Pair(first, second) => {
                    self.keep(text, first, spans, &mut last_end);
                    self.keep(text, second, spans, &mut last_end);
                    second.end.max(m.end)
                }
                // A detector may resume inside its literal (`"auth` holds
                // the start of `uthoriz`); the scan still moves on.
                Hit::Skip(resume) => resume.max(m.start + 1),
            };
        }
        true
    }

    /// Record a found span unless it overlaps the previous one or is
    /// allowed.
    fn keep(&self, text: &str, span: Span, spans: &mut Vec<Span>, last_end: &mut usize) {
        if span.start >= *last_end && span.end > span.start {
            if !self.allowed(text, span) {
                spans.push(span);
            }
            *last_end = span.end;
        }
    }

    /// User patterns, merged into the built-in spans.
    fn scan_extra(&self, text: &str, spans: &mut Vec<Span>) {
        if self.extra.is_empty() {
            return;
        }
        let mut added = Vec::new();
        for x in &self.extra {
            for caps in x.re.captures_iter(text) {
                let m = if x.group { caps.get(1) } else { caps.get(0) };
                let Some(m) = m else { continue };
                if m.start() == m.end() {
                    continue;
                }
                let span = Span {
                    start: m.start(),
                    end: m.end(),
                    label: Label::Custom,
                };
                if !self.allowed(text, span) {
                    added.push(span);
                }
            }
        }
        if added.is_empty() {
            return;
        }
        spans.extend(added);
        spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans.drain(..) {
            match merged.last_mut() {
                Some(last) if s.start < last.end => last.end = last.end.max(s.end),
                _ => merged.push(s),
            }
        }
        *spans = merged;
    }

    /// True when the span lies inside an occurrence of an allowed literal.
    fn allowed(&self, text: &str, span: Span) -> bool {
        let bytes = text.as_bytes();
        self.allow.iter().any(|a| {
            let lo = span.end.saturating_sub(a.len());
            let hi = (span.start + a.len()).min(bytes.len());
            if span.end - span.start > a.len() || lo > span.start || hi < span.end {
                return false;
            }
            let Some(window) = bytes.get(lo..hi) else {
                return false;
            };
            memchr::memmem::find_iter(window, a.as_bytes()).any(|o| {
                let o = lo + o;
                o <= span.start && o + a.len() >= span.end
            })
        })
    }

    /// The label of a value that is, as a whole, a recognisable token.
    fn classify(&self, value: &str) -> Option<Label> {
        let m = self.candidate(value, 0)?;
        if m.start > 1 {
            return None;
        }
        match self.detect(value, m) {
            Hit::Secret(s) if s.start == 0 && s.end == value.len() => Some(s.label),
            _ => None,
        }
    }

    /// The next candidate at or after `from`.
    fn candidate(&self, text: &str, from: usize) -> Option<Candidate> {
        self.det.candidate(text, from)
    }
}

/// Build the output from sorted, non-overlapping spans.
fn apply<'a>(text: &'a str, spans: &[Span]) -> Redacted<'a> {
    if spans.is_empty() {
        return Redacted {
            text: Cow::Borrowed(text),
            found: Vec::new(),
        };
    }
    let mut out = String::with_capacity(text.len() + spans.len() * 16);
    let mut found = Vec::with_capacity(spans.len());
    let mut last = 0;
    for s in spans {
        out.push_str(text.get(last..s.start).unwrap_or(""));
        out.push_str("[REDACTED:");
        out.push_str(s.label.as_str());
        out.push(']');
        found.push(Found {
            label: s.label,
            bytes: s.end - s.start,
        });
        last = s.end;
    }
    out.push_str(text.get(last..).unwrap_or(""));
    Redacted {
        text: Cow::Owned(out),
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::new(&RedactionOptions::default()).unwrap()
    }

    #[test]
    fn redactor_is_shareable() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<Redactor>();
    }

    #[test]
    fn builtins_compile_and_plain_text_is_borrowed() {
        let red = r();
        let out = red.redact_str("nothing to see here, just prose and code();");
        assert!(out.is_unchanged());
        assert!(out.found.is_empty());
    }

    #[test]
    fn json_rewrite_keeps_everything_else() {
        let red = r();
        let json = r#"{ "a" : [1, 2.5, null],"env":{"GITHUB_TOKEN":"ghp_0123456789abcdefghijABCDEFGHIJ012345"}, "b":"x\u0041"}"#;
        let mut found = Vec::new();
        let out = red.redact_json(json, &mut found).unwrap();
        assert_eq!(
            out,
            r#"{ "a" : [1, 2.5, null],"env":{"GITHUB_TOKEN":"[REDACTED:GITHUB_TOKEN]"}, "b":"x\u0041"}"#
        );
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn value_parser_handles_quotes() {
        let b = br#""abc\"d" rest"#;
        assert_eq!(value_at(b, 0), Some((1, 7, true)));
        let b = br#"\"abc\" rest"#;
        assert_eq!(value_at(b, 0), Some((2, 5, true)));
        assert_eq!(value_at(b"abc123; x", 0), Some((0, 6, false)));
        assert_eq!(value_at(b"\"open", 0), None);
    }

    #[test]
    fn secret_keys() {
        for k in [
            "GITHUB_TOKEN",
            "apiKey",
            "X-Api-Key",
            "db-password",
            "PGPASSWORD",
            "client_secret",
            "aws_secret_access_key",
            "private_key",
            "--token",
        ] {
            assert!(secret_key_label(k).is_some(), "{k}");
        }
        for k in [
            "password_field",
            "token_count",
            "max_tokens",
            "secretName",
            "tokenizer",
        ] {
            assert!(secret_key_label(k).is_none(), "{k}");
        }
        assert_eq!(
            secret_key_label("AWS_SECRET_ACCESS_KEY"),
            Some(Label::AwsSecretKey)
        );
        for (k, want) in [
            ("AccountKey", Some(Label::AzureKey)),
            ("SharedAccessKey", Some(Label::AzureKey)),
            ("AZURE_STORAGE_ACCOUNT_KEY", Some(Label::AzureKey)),
            ("service_account_key", Some(Label::Key)),
            ("SIGNING_KEY", Some(Label::Key)),
            ("signingKey", Some(Label::Key)),
            ("x-license-key", Some(Label::Key)),
            ("KEY", None),
            ("key", None),
            ("--key", None),
            ("monkey", None),
            ("HOCKEY", None),
            ("sort_key", None),
            ("publicKey", None),
        ] {
            assert_eq!(secret_key_label(k), want, "{k}");
        }
    }
}
