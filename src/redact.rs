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

use std::borrow::Cow;
use std::collections::BTreeMap;

use aho_corasick::{packed, AhoCorasick, Input, MatchKind};
use memchr::memmem::Finder;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event::{Event, Payload};

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

/// What kind of secret was found; rendered as `[REDACTED:<label>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    AnthropicKey,
    OpenAiKey,
    GithubToken,
    GitlabToken,
    SlackToken,
    SlackWebhook,
    AwsAccessKeyId,
    AwsSecretKey,
    GoogleApiKey,
    StripeKey,
    NpmToken,
    PypiToken,
    HuggingFaceToken,
    Jwt,
    PrivateKey,
    BearerToken,
    BasicAuth,
    UrlPassword,
    Password,
    ApiKey,
    Token,
    Secret,
    Custom,
}

impl Label {
    pub const ALL: [Label; 23] = [
        Label::AnthropicKey,
        Label::OpenAiKey,
        Label::GithubToken,
        Label::GitlabToken,
        Label::SlackToken,
        Label::SlackWebhook,
        Label::AwsAccessKeyId,
        Label::AwsSecretKey,
        Label::GoogleApiKey,
        Label::StripeKey,
        Label::NpmToken,
        Label::PypiToken,
        Label::HuggingFaceToken,
        Label::Jwt,
        Label::PrivateKey,
        Label::BearerToken,
        Label::BasicAuth,
        Label::UrlPassword,
        Label::Password,
        Label::ApiKey,
        Label::Token,
        Label::Secret,
        Label::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Label::AnthropicKey => "ANTHROPIC_KEY",
            Label::OpenAiKey => "OPENAI_KEY",
            Label::GithubToken => "GITHUB_TOKEN",
            Label::GitlabToken => "GITLAB_TOKEN",
            Label::SlackToken => "SLACK_TOKEN",
            Label::SlackWebhook => "SLACK_WEBHOOK",
            Label::AwsAccessKeyId => "AWS_ACCESS_KEY_ID",
            Label::AwsSecretKey => "AWS_SECRET_KEY",
            Label::GoogleApiKey => "GOOGLE_API_KEY",
            Label::StripeKey => "STRIPE_KEY",
            Label::NpmToken => "NPM_TOKEN",
            Label::PypiToken => "PYPI_TOKEN",
            Label::HuggingFaceToken => "HUGGINGFACE_TOKEN",
            Label::Jwt => "JWT",
            Label::PrivateKey => "PRIVATE_KEY",
            Label::BearerToken => "BEARER_TOKEN",
            Label::BasicAuth => "BASIC_AUTH",
            Label::UrlPassword => "URL_PASSWORD",
            Label::Password => "PASSWORD",
            Label::ApiKey => "API_KEY",
            Label::Token => "TOKEN",
            Label::Secret => "SECRET",
            Label::Custom => "CUSTOM",
        }
    }

    /// The text that replaces a secret of this kind.
    pub fn marker(self) -> String {
        format!("[REDACTED:{}]", self.as_str())
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
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
    /// No secret here; scanning resumes at the given offset.
    Skip(usize),
}

/// Compiled detectors. Every anchored pattern starts with `\A` and is run on
/// the text from the candidate position on.
#[derive(Debug, Clone)]
struct Detectors {
    trigger: Literals,
    pem_end_lit: Finder<'static>,
    esc_u: Finder<'static>,
    esc_slash: Finder<'static>,
    anthropic: Regex,
    openai_scoped: Regex,
    openai: Regex,
    github: Regex,
    github_pat: Regex,
    gitlab: Regex,
    slack: Regex,
    slack_hook: Regex,
    aws_id: Regex,
    google: Regex,
    stripe: Regex,
    npm: Regex,
    pypi: Regex,
    huggingface: Regex,
    jwt: Regex,
    pem_begin: Regex,
    pem_end: Regex,
    pem_body: Regex,
    url_auth: Regex,
    auth_header: Regex,
    auth_value: Regex,
    bearer: Regex,
}

/// What a candidate literal calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trig {
    Sk,
    Github,
    GithubPat,
    Gitlab,
    Slack,
    AwsId,
    Google,
    Stripe,
    Npm,
    Pypi,
    HuggingFace,
    Jwt,
    Pem,
    Url,
    Authorization,
    Bearer,
    Key,
    /// A JSON escape that may stand for part of a candidate.
    Escape,
}

/// The literal scan: one SIMD multi-literal search over the text. Token
/// prefixes are exact; key words are found by a case-stable core (`oken`
/// finds `token`, `Token` and `TOKEN`; `key` ends `apiKey`, `private_key`,
/// `ACCESS_KEY`) and the detector checks the rest. At most 32 literals:
/// beyond that the search falls back to a slower variant. Slack webhooks
/// are found through `://`.
const TRIGGERS: &[(&str, Trig)] = &[
    ("sk-", Trig::Sk),
    ("ghp_", Trig::Github),
    ("gho_", Trig::Github),
    ("ghu_", Trig::Github),
    ("ghs_", Trig::Github),
    ("ghr_", Trig::Github),
    ("github_pat_", Trig::GithubPat),
    ("glpat-", Trig::Gitlab),
    ("xox", Trig::Slack),
    ("AKIA", Trig::AwsId),
    ("ASIA", Trig::AwsId),
    ("AIza", Trig::Google),
    ("k_live_", Trig::Stripe),
    ("npm_", Trig::Npm),
    ("pypi-", Trig::Pypi),
    ("hf_", Trig::HuggingFace),
    ("eyJ", Trig::Jwt),
    ("-----BEGIN ", Trig::Pem),
    ("://", Trig::Url),
    ("uthoriz", Trig::Authorization),
    ("earer", Trig::Bearer),
    ("oken", Trig::Key),
    ("OKEN", Trig::Key),
    ("ecret", Trig::Key),
    ("ECRET", Trig::Key),
    ("assw", Trig::Key),
    ("ASSW", Trig::Key),
    ("key", Trig::Key),
    ("Key", Trig::Key),
    ("KEY", Trig::Key),
    ("\\u00", Trig::Escape),
    (":\\/", Trig::Escape),
];

/// The multi-literal searcher: "fat" Teddy (AVX2) when the CPU has it —
/// measured fastest for this literal set, about 4 GB/s on session logs —
/// else the general Aho-Corasick searcher.
#[derive(Debug, Clone)]
enum Literals {
    Teddy(packed::Searcher),
    Automaton(AhoCorasick),
}

impl Literals {
    fn new<'a>(literals: impl Iterator<Item = &'a str> + Clone) -> Result<Literals, RedactError> {
        let teddy = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .only_teddy(true)
            .only_teddy_fat(Some(true))
            .builder()
            .extend(literals.clone())
            .build();
        if let Some(t) = teddy {
            return Ok(Literals::Teddy(t));
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(literals)
            .map(Literals::Automaton)
            .map_err(|e| RedactError::Builtin {
                name: "trigger",
                reason: e.to_string(),
            })
    }

    /// The leftmost literal at or after `from`: (start, end, pattern index).
    fn find(&self, hay: &[u8], from: usize) -> Option<(usize, usize, usize)> {
        if from > hay.len() {
            return None;
        }
        let m = match self {
            Literals::Teddy(t) => t.find_in(hay, aho_corasick::Span::from(from..hay.len()))?,
            Literals::Automaton(a) => a.find(Input::new(hay).span(from..hay.len()))?,
        };
        Some((m.start(), m.end(), m.pattern().as_usize()))
    }
}

/// One candidate: where the literal was found and what it calls for.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    start: usize,
    end: usize,
    trig: Trig,
}

impl Detectors {
    fn new() -> Result<Detectors, RedactError> {
        let re = |name: &'static str, pattern: &str| {
            Regex::new(pattern).map_err(|e| RedactError::Builtin {
                name,
                reason: short_regex_error(&e),
            })
        };
        Ok(Detectors {
            trigger: Literals::new(TRIGGERS.iter().map(|t| t.0))?,
            pem_end_lit: Finder::new(b"-----END ").into_owned(),
            esc_u: Finder::new(b"\\u00").into_owned(),
            esc_slash: Finder::new(b"\\/").into_owned(),
            anthropic: re("anthropic", r"\Ask-ant-[A-Za-z0-9_\-]{20,}")?,
            openai_scoped: re(
                "openai-scoped",
                r"\Ask-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}",
            )?,
            openai: re("openai", r"\Ask-[A-Za-z0-9]{20,}")?,
            github: re("github", r"\Agh[pousr]_[A-Za-z0-9]{30,251}")?,
            github_pat: re("github-pat", r"\Agithub_pat_[A-Za-z0-9_]{22,}")?,
            gitlab: re("gitlab", r"\Aglpat-[A-Za-z0-9_\-]{20,}")?,
            slack: re("slack", r"\Axox[abprs]-[A-Za-z0-9\-]{10,}")?,
            slack_hook: re(
                "slack-webhook",
                r"\Ahooks\.slack\.com/((?:services|workflows|triggers)/[A-Za-z0-9_/\-]{10,})",
            )?,
            aws_id: re("aws-access-key-id", r"\A(?:AKIA|ASIA)[A-Z2-7]{16}")?,
            google: re("google", r"\AAIza[A-Za-z0-9_\-]{35}")?,
            stripe: re("stripe", r"\A[sr]k_live_[A-Za-z0-9]{16,}")?,
            npm: re("npm", r"\Anpm_[A-Za-z0-9]{36}")?,
            pypi: re("pypi", r"\Apypi-AgE[A-Za-z0-9_\-]{50,}")?,
            huggingface: re("huggingface", r"\Ahf_[A-Za-z0-9]{30,}")?,
            jwt: re(
                "jwt",
                r"\AeyJ[A-Za-z0-9_\-]{6,}\.ey[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*",
            )?,
            pem_begin: re(
                "pem-begin",
                r"\A-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
            )?,
            pem_end: re(
                "pem-end",
                r"\A-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
            )?,
            pem_body: re(
                "pem-body",
                r"\A(?:[A-Za-z0-9+/=\r\n]|\\[rn]|[A-Za-z][A-Za-z\-]*: [^\r\n\\]*)*",
            )?,
            url_auth: re(
                "url-password",
                r#"\A[^\s:/@"'<>\\]*:([^\s/"'<>\\]+)@[A-Za-z0-9\[]"#,
            )?,
            auth_header: re(
                "authorization",
                r#"\A(?i-u:authorization)(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?"#,
            )?,
            auth_value: re(
                "authorization-value",
                r"\A(?:(?i-u:(bearer|basic|token|digest))[ \t]+)?([A-Za-z0-9._~+/=_\-]+)",
            )?,
            bearer: re(
                "bearer",
                r"\A(?i-u:bearer)[ \t]+([A-Za-z0-9._~+/_\-]{16,}=*)",
            )?,
        })
    }
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

/// Longest private key block looked for: the END line must come within
/// this many bytes of the BEGIN line (keeps the scan linear).
const PEM_MAX: usize = 64 << 10;

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

impl Redactor {
    /// Compile the built-in detectors plus the configured extra patterns.
    /// Extra patterns and allow entries are validated even when redaction
    /// is disabled, so a broken configuration is reported either way.
    pub fn new(options: &RedactionOptions) -> Result<Redactor, RedactError> {
        let det = Detectors::new()?;
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
        Ok(Redactor {
            enabled: options.enabled,
            det,
            extra,
            allow: options.allow.clone(),
        })
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
            event_id, payload, ..
        } = event;
        let id = event_id.as_str();
        match payload {
            Payload::UserMessage { text, .. }
            | Payload::DecisionResponse { text, .. }
            | Payload::AssistantMessage { text }
            | Payload::Thinking { text }
            | Payload::DecisionPrompt { text, .. }
            | Payload::SystemMessage { text, .. } => self.redact_string(text, id, stats),
            Payload::KatoCommand { raw, error, .. } => {
                self.redact_string(raw, id, stats);
                if let Some(e) = error {
                    self.redact_string(e, id, stats);
                }
            }
            Payload::ToolResult { output, .. } => self.redact_string(output, id, stats),
            Payload::ToolCall { input, .. } => self.redact_raw(input, id, stats),
            Payload::ProviderInfo { data, .. } => self.redact_raw(data, id, stats),
            Payload::ProviderRaw { record } => self.redact_raw(record, id, stats),
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

    /// Redact the string values (and keys) of a JSON text, such as a
    /// [`RawValue`]'s. `None` when nothing changed. Everything outside the
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
                let keyed =
                    secret_key_label(&key).is_some() || key.eq_ignore_ascii_case("authorization");
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
        if let Some(key_label) = secret_key_label(key) {
            if quoted_value_ok(value) {
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
            if m.trig == Trig::Escape {
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
                    if span.start >= last_end && span.end > span.start {
                        if !self.allowed(text, span) {
                            spans.push(span);
                        }
                        last_end = span.end;
                    }
                    span.end.max(m.end)
                }
                Hit::Skip(resume) => resume.max(m.end),
            };
        }
        true
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

    /// The next `\u00XX` escape at or after `from` that stands for a
    /// printable ASCII character (one that could be part of a candidate).
    fn hiding_u(&self, bytes: &[u8], from: usize) -> Option<usize> {
        let rest = bytes.get(from..)?;
        self.det
            .esc_u
            .find_iter(rest)
            .find(|&i| rest.get(i + 4).is_some_and(|b| (b'2'..=b'7').contains(b)))
            .map(|i| from + i)
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
        if from > text.len() {
            return None;
        }
        let (start, end, pattern) = self.det.trigger.find(text.as_bytes(), from)?;
        let trig = TRIGGERS.get(pattern)?.1;
        Some(Candidate { start, end, trig })
    }

    /// Run the detector that belongs to a candidate.
    fn detect(&self, text: &str, c: Candidate) -> Hit {
        let (s, e) = (c.start, c.end);
        let d = &self.det;
        // A token starting at `at`: a word start, the pattern, a word end.
        let token = |at: usize, re: &Regex, label: Label, ok: &dyn Fn(&str) -> bool| {
            if !starts_word(text, at) {
                return None;
            }
            let m = re.find(text.get(at..)?)?;
            let end = at + m.end();
            if !ends_word(text, end) || !ok(m.as_str()) {
                return None;
            }
            Some(Hit::Secret(Span {
                start: at,
                end,
                label,
            }))
        };
        // The candidate core sits one byte into the word (`k_live_` of
        // `sk_live_`, `uthoriz` of `Authorization`).
        let back = |first: &[u8]| {
            s.checked_sub(1)
                .filter(|&p| text.as_bytes().get(p).is_some_and(|b| first.contains(b)))
        };
        let hit = match c.trig {
            Trig::Sk => token(s, &d.anthropic, Label::AnthropicKey, &|m| {
                m.get(7..).is_some_and(mixed)
            })
            .or_else(|| token(s, &d.openai_scoped, Label::OpenAiKey, &mixed))
            .or_else(|| {
                token(s, &d.openai, Label::OpenAiKey, &mixed)
                    .filter(|h| matches!(h, Hit::Secret(sp) if !follows_ident(text, sp.end)))
            }),
            Trig::Github => token(s, &d.github, Label::GithubToken, &|_| true),
            Trig::GithubPat => token(s, &d.github_pat, Label::GithubToken, &|_| true),
            Trig::Gitlab => token(s, &d.gitlab, Label::GitlabToken, &|_| true),
            Trig::Slack => token(s, &d.slack, Label::SlackToken, &has_digit),
            Trig::AwsId => token(s, &d.aws_id, Label::AwsAccessKeyId, &|_| true),
            Trig::Google => token(s, &d.google, Label::GoogleApiKey, &|_| true),
            Trig::Stripe => {
                back(b"sr").and_then(|at| token(at, &d.stripe, Label::StripeKey, &|_| true))
            }
            Trig::Npm => token(s, &d.npm, Label::NpmToken, &has_digit),
            Trig::Pypi => token(s, &d.pypi, Label::PypiToken, &|_| true),
            Trig::HuggingFace => token(s, &d.huggingface, Label::HuggingFaceToken, &|m| {
                let b = m.get(3..).unwrap_or("");
                b.bytes().any(|c| c.is_ascii_uppercase())
                    && b.bytes().any(|c| c.is_ascii_lowercase())
            }),
            Trig::Jwt => token(s, &d.jwt, Label::Jwt, &|_| true),
            Trig::Pem => self.pem(text, s),
            Trig::Url
                if text
                    .get(e..)
                    .is_some_and(|r| r.starts_with("hooks.slack.com/")) =>
            {
                self.slack_webhook(text, e)
            }
            Trig::Url => self.url_password(text, s, e),
            Trig::Authorization => back(b"aA").and_then(|at| self.authorization(text, at)),
            Trig::Bearer => back(b"bB").and_then(|at| self.bare_bearer(text, at)),
            Trig::Key => return self.assignment(text, s, e),
            Trig::Escape => None,
        };
        hit.unwrap_or(Hit::Skip(e))
    }

    fn slack_webhook(&self, text: &str, s: usize) -> Option<Hit> {
        let c = self.det.slack_hook.captures(text.get(s..)?)?;
        let g = c.get(1)?;
        Some(Hit::Secret(Span {
            start: s + g.start(),
            end: s + g.end(),
            label: Label::SlackWebhook,
        }))
    }

    /// A PEM private key: the whole block up to its END line; when the END
    /// line is missing (cut output), the header and the key material after it.
    fn pem(&self, text: &str, s: usize) -> Option<Hit> {
        let rest = text.get(s..)?;
        let head = self.det.pem_begin.find(rest)?;
        let body_start = s + head.end();
        let window_end = body_start.saturating_add(PEM_MAX).min(text.len());
        let mut from = body_start;
        while let Some(rel) = text
            .as_bytes()
            .get(from..window_end)
            .and_then(|w| self.det.pem_end_lit.find(w))
        {
            let at = from + rel;
            if let Some(m) = self.det.pem_end.find(text.get(at..)?) {
                return Some(Hit::Secret(Span {
                    start: s,
                    end: at + m.end(),
                    label: Label::PrivateKey,
                }));
            }
            from = at + 1;
        }
        let body = self.det.pem_body.find(text.get(body_start..)?)?;
        Some(Hit::Secret(Span {
            start: s,
            end: body_start + body.end(),
            label: Label::PrivateKey,
        }))
    }

    /// `scheme://user:password@host`: only the password.
    fn url_password(&self, text: &str, s: usize, e: usize) -> Option<Hit> {
        let bytes = text.as_bytes();
        let mut k = s;
        while k > 0
            && bytes
                .get(k - 1)
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
        {
            k -= 1;
        }
        if k == s || !bytes.get(k).is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let c = self.det.url_auth.captures(text.get(e..)?)?;
        let pw = c.get(1)?;
        if is_placeholder(pw.as_str()) {
            return None;
        }
        Some(Hit::Secret(Span {
            start: e + pw.start(),
            end: e + pw.end(),
            label: Label::UrlPassword,
        }))
    }

    /// `Authorization: <scheme> <credential>` (header, curl flag, config).
    fn authorization(&self, text: &str, s: usize) -> Option<Hit> {
        if !starts_word(text, s) {
            return None;
        }
        let m = self.det.auth_header.find(text.get(s..)?)?;
        self.auth_credential(text, s + m.end()).map(Hit::Secret)
    }

    /// The credential of an authorization value starting at `at`.
    fn auth_credential(&self, text: &str, at: usize) -> Option<Span> {
        let c = self.det.auth_value.captures(text.get(at..)?)?;
        let cred = c.get(2)?;
        let v = cred.as_str();
        let scheme_word = ["bearer", "basic", "token", "digest"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w));
        let basic = c
            .get(1)
            .is_some_and(|s| s.as_str().eq_ignore_ascii_case("basic"));
        if scheme_word
            || v.len() < 8
            || !ends_value(text, at + cred.end())
            || is_placeholder(v)
            || (!basic && (is_words(v) || (v.len() < 16 && !mixed(v))))
        {
            return None;
        }
        let label = match c.get(1) {
            Some(s) if s.as_str().eq_ignore_ascii_case("basic") => Label::BasicAuth,
            _ => self.classify(v).unwrap_or(Label::BearerToken),
        };
        Some(Span {
            start: at + cred.start(),
            end: at + cred.end(),
            label,
        })
    }

    /// `Bearer <token>` outside an `Authorization` header.
    fn bare_bearer(&self, text: &str, s: usize) -> Option<Hit> {
        if !starts_word(text, s) {
            return None;
        }
        let c = self.det.bearer.captures(text.get(s..)?)?;
        let g = c.get(1)?;
        if !mixed(g.as_str()) || !ends_value(text, s + g.end()) {
            return None;
        }
        Some(Hit::Secret(Span {
            start: s + g.start(),
            end: s + g.end(),
            label: self.classify(g.as_str()).unwrap_or(Label::BearerToken),
        }))
    }

    /// `KEY=value`, `"key": "value"`, `key: value` where the key names a
    /// secret: only the value. Resumes after the key when nothing is found.
    fn assignment(&self, text: &str, s: usize, e: usize) -> Hit {
        let bytes = text.as_bytes();
        let mut ke = e;
        while bytes.get(ke).is_some_and(|&b| key_byte(b)) {
            ke += 1;
        }
        let skip = Hit::Skip(ke);
        // Cheapest test first: most key words are not followed by `=`/`:`.
        let Some(vs) = separator_end(bytes, ke) else {
            return skip;
        };
        let mut ks = s;
        while ks > 0 && bytes.get(ks - 1).is_some_and(|&b| key_byte(b)) {
            ks -= 1;
        }
        let Some(key_label) = text.get(ks..ke).and_then(secret_key_label) else {
            return skip;
        };
        // `token == x`, `Token::new`, `password := ` with nothing after…
        if matches!(bytes.get(vs), Some(b'=' | b':') | None) {
            return skip;
        }
        let Some((start, end, quoted)) = value_at(bytes, vs) else {
            return skip;
        };
        let Some(value) = text.get(start..end) else {
            return skip;
        };
        let ok = if quoted {
            quoted_value_ok(value)
        } else {
            unquoted_value_ok(value)
        };
        if !ok {
            return skip;
        }
        let label = self.classify(value).unwrap_or(key_label);
        Hit::Secret(Span { start, end, label })
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

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A token may start at `s` only when no word character precedes it. The
/// letter of an escape sequence (`\n`, `\t` in JSON or in code, at any
/// level of escaping) is no word character.
fn starts_word(text: &str, s: usize) -> bool {
    let b = text.as_bytes();
    let Some(prev) = s.checked_sub(1).and_then(|p| b.get(p)) else {
        return true;
    };
    !word_byte(*prev)
        || (b"nrtbf".contains(prev) && s.checked_sub(2).and_then(|p| b.get(p)) == Some(&b'\\'))
}

/// …and must not run on into more alphanumerics.
fn ends_word(text: &str, e: usize) -> bool {
    !text
        .as_bytes()
        .get(e)
        .is_some_and(u8::is_ascii_alphanumeric)
}

/// A plain `sk-<alnum>` followed by `-`/`_` is part of a longer identifier.
fn follows_ident(text: &str, e: usize) -> bool {
    matches!(text.as_bytes().get(e), Some(b'-' | b'_'))
}

/// A credential must end at whitespace, a quote, punctuation or the end.
fn ends_value(text: &str, e: usize) -> bool {
    match text.as_bytes().get(e) {
        None => true,
        Some(&b) => !(b.is_ascii_alphanumeric() || b"$%{[<".contains(&b)),
    }
}

fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// Random-looking: at least one digit and one letter.
fn mixed(s: &str) -> bool {
    has_digit(s) && s.bytes().any(|b| b.is_ascii_alphabetic())
}

fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// When a key names a secret, the label its value gets. The key must end
/// with the secret word, ignoring case and separators (`GITHUB_TOKEN`,
/// `apiKey`, `db-password`), so `password_field`, `token_count` or
/// `max_tokens` are not secret keys.
fn secret_key_label(key: &str) -> Option<Label> {
    // Every secret word ends in one of these letters: a quick reject.
    let last = key.bytes().rev().find(u8::is_ascii_alphanumeric)?;
    if !matches!(last.to_ascii_lowercase(), b'n' | b't' | b'd' | b'y') {
        return None;
    }
    let ends = |word: &str| key_ends_with(key, word);
    if ends("secretaccesskey") || ends("awssecretkey") {
        Some(Label::AwsSecretKey)
    } else if ends("password") || ends("passwd") {
        Some(Label::Password)
    } else if ends("privatekey") {
        Some(Label::PrivateKey)
    } else if ends("apikey") || ends("accesskey") {
        Some(Label::ApiKey)
    } else if ends("token") {
        Some(Label::Token)
    } else if ends("secret") || ends("secretkey") {
        Some(Label::Secret)
    } else {
        None
    }
}

/// `key`, with non-alphanumerics dropped and lower-cased, ends with `word`
/// (given in lower case).
fn key_ends_with(key: &str, word: &str) -> bool {
    let mut k = key
        .bytes()
        .rev()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_lowercase());
    word.bytes().rev().all(|w| k.next() == Some(w))
}

/// After a key ending at `ke`: an optional closing quote, then `=`, `:`,
/// `=>` or `:=` with blanks around; returns where the value starts.
fn separator_end(bytes: &[u8], ke: usize) -> Option<usize> {
    let mut i = ke;
    match (bytes.get(i), bytes.get(i + 1)) {
        (Some(b'\\'), Some(b'"' | b'\'')) => i += 2,
        (Some(b'"' | b'\''), _) => i += 1,
        _ => {}
    }
    while matches!(bytes.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match (bytes.get(i), bytes.get(i + 1)) {
        (Some(b'='), Some(b'>')) | (Some(b':'), Some(b'=')) => i += 2,
        (Some(b'=' | b':'), _) => i += 1,
        _ => return None,
    }
    while matches!(bytes.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    Some(i)
}

/// The value after an assignment separator: `(start, end, quoted)`.
fn value_at(bytes: &[u8], vs: usize) -> Option<(usize, usize, bool)> {
    let (q, escaped, start) = match (bytes.get(vs), bytes.get(vs + 1)) {
        (Some(b'\\'), Some(&q @ (b'"' | b'\''))) => (Some(q), true, vs + 2),
        (Some(&q @ (b'"' | b'\'')), _) => (Some(q), false, vs + 1),
        _ => (None, false, vs),
    };
    match q {
        Some(q) => {
            let mut i = start;
            loop {
                match bytes.get(i) {
                    None | Some(b'\n' | b'\r') => return None,
                    Some(b'\\') if escaped && bytes.get(i + 1) == Some(&q) => {
                        return Some((start, i, true))
                    }
                    Some(b'\\') => i += 2,
                    Some(&b) if b == q && !escaped => return Some((start, i, true)),
                    Some(_) => i += 1,
                }
            }
        }
        None => {
            let mut i = start;
            while bytes
                .get(i)
                .is_some_and(|&b| !b.is_ascii_whitespace() && !b"\"'`&\\".contains(&b))
            {
                i += 1;
            }
            // Trailing punctuation belongs to the sentence or statement.
            while i > start && matches!(bytes.get(i - 1), Some(b',' | b';' | b'.')) {
                i -= 1;
            }
            Some((start, i, false))
        }
    }
}

/// Values that stand for a secret rather than being one: variables and
/// templates (`$TOKEN`, `${…}`, `{{…}}`, `<token>`, `%s`), masks (`****`),
/// upper-case names (`YOUR_API_KEY`) and earlier redactions.
fn is_placeholder(v: &str) -> bool {
    let b = v.as_bytes();
    let first = b.first().copied();
    matches!(first, Some(b'$' | b'{' | b'<' | b'%'))
        || v.starts_with("[REDACTED")
        || b.iter()
            .all(|&c| matches!(c, b'*' | b'x' | b'X' | b'.' | b'#' | b'-' | b'_'))
        || (b.contains(&b'_') && b.iter().all(|&c| c.is_ascii_uppercase() || c == b'_'))
}

/// `op://vault/item`, `vault://…`, `https://…`: a reference to a secret. A
/// URL carrying a password is still caught by the URL detector.
fn is_reference(v: &str) -> bool {
    v.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    })
}

/// Lower-case words joined by `-`/`_` (`dev-token`, `test-key`): sample
/// values in docs and tests, not credentials.
fn is_words(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_lowercase() || b"-_.".contains(&b))
}

/// A quoted value (or a JSON string under a secret key) is a secret unless
/// it is short, prose (whitespace, non-ASCII text), a placeholder, a
/// reference or a path.
fn quoted_value_ok(v: &str) -> bool {
    v.len() >= 4
        && v.bytes().all(|b| b.is_ascii_graphic())
        && !is_reference(v)
        && !is_placeholder(v)
        && !is_path(v)
        && !matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "none" | "undefined"
        )
}

/// An unquoted value must look like data, not code: no calls, indexing,
/// generics or references, and something only data has (a digit or a
/// symbol), so `get_token();`, `self.token` or `string;` never match.
fn unquoted_value_ok(v: &str) -> bool {
    v.len() >= 6
        && !v
            .bytes()
            .any(|b| b"()[]{}<>$\\&`|".contains(&b) || !b.is_ascii_graphic())
        && !v.starts_with('*')
        && !v.starts_with('#')
        && (has_digit(v) || v.bytes().any(|b| b"+/=!@%^~:".contains(&b)))
        && v.bytes()
            .any(|b| b.is_ascii_alphabetic() || b"+/=!@%^~".contains(&b))
        && !is_placeholder(v)
        && !is_reference(v)
        && !is_path(v)
        && !is_dotted_number(v)
}

/// `~/.ssh/id_rsa`, `./key.pem`, `/run/secrets/db`: a file holding a
/// secret, not the secret. Absolute paths count only under a well-known
/// top-level directory, so base64 keys that start with `/` still match.
fn is_path(v: &str) -> bool {
    if v.starts_with("~/") || v.starts_with("./") || v.starts_with("../") {
        return true;
    }
    let Some(rest) = v.strip_prefix('/') else {
        return false;
    };
    let top = rest.split('/').next().unwrap_or("");
    rest.contains('/')
        && matches!(
            top,
            "home"
                | "Users"
                | "root"
                | "etc"
                | "var"
                | "run"
                | "tmp"
                | "opt"
                | "usr"
                | "srv"
                | "mnt"
                | "media"
                | "data"
                | "app"
                | "workspace"
                | "secrets"
                | "private"
                | "Volumes"
                | "nix"
        )
}

/// Versions and decimals (`1.2.3`, `0.5`).
fn is_dotted_number(v: &str) -> bool {
    v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Index of the closing quote of a JSON string whose content starts at `i`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let at = i + memchr::memchr(b'"', bytes.get(i..)?)?;
        let backslashes = bytes
            .get(start..at)?
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
        i = at + 1;
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The decoded content of the JSON string literal `json[open..=close]`;
/// `None` when its escapes do not decode.
fn json_string(json: &str, open: usize, close: usize) -> Option<Cow<'_, str>> {
    let inner = json.get(open + 1..close)?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(json.get(open..=close)?)
            .ok()
            .map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// The opening quote of the JSON string that contains position `c`: the
/// nearest unescaped `"` before it (inside a string every `"` is escaped).
fn opening_quote(bytes: &[u8], c: usize) -> Option<usize> {
    let mut end = c.min(bytes.len());
    loop {
        let q = memchr::memrchr(b'"', bytes.get(..end)?)?;
        let backslashes = bytes
            .get(..q)?
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(q);
        }
        end = q;
    }
}

/// The first `"` in `bytes[from..to]` that is not escaped.
fn unescaped_quote(bytes: &[u8], from: usize, to: usize) -> Option<usize> {
    let mut i = from;
    while let Some(rel) = bytes.get(i..to).and_then(|b| memchr::memchr(b'"', b)) {
        let at = i + rel;
        let backslashes = bytes
            .get(..at)?
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// The next occurrence of a literal at or after `from`.
fn find_from(finder: &Finder<'_>, bytes: &[u8], from: usize) -> Option<usize> {
    finder.find(bytes.get(from..)?).map(|i| from + i)
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
    }
}
