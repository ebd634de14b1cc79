//! `kato search`: find text in every session's canonical events, with no
//! index — the logs are streamed at parse speed by a confined parse stage.
//!
//! The parse stage reads the provider roots (nothing else), matches each
//! event's text, and sends only the hits to `main`, which keeps the newest
//! ones and prints them. A hit is confirmed on the *redacted* text: a
//! search never finds, and never prints, a secret that an export would
//! redact.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::mpsc;

use serde::Serialize;

use crate::config::Config;
use crate::discover::SessionFiles;
use crate::error::{Error, Result};
use crate::event::{Event, Payload, ProviderId};
use crate::export::{self, Skipped};
use crate::redact::Redactor;

/// Characters of context kept on each side of a match in a snippet.
const CONTEXT_CHARS: usize = 60;

/// Longest match shown whole in a snippet, in characters.
const MATCH_CHARS: usize = 200;

/// What a search looks at: `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    /// What the human wrote (messages and answers to prompts).
    User,
    /// What the assistant wrote (messages and decision prompts).
    Assistant,
    /// Tool calls and their results.
    Tool,
    /// The assistant's thinking.
    Thinking,
}

impl SearchKind {
    /// Searched when no `--kind` is given: the conversation itself.
    pub const DEFAULT: &'static [SearchKind] = &[SearchKind::User, SearchKind::Assistant];
}

/// How text is matched.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A case-sensitive literal: a SIMD substring search.
    Literal(Box<memchr::memmem::Finder<'static>>),
    /// A regular expression (also a literal searched without case).
    Regex(regex::Regex),
}

impl Matcher {
    /// `pattern` as a literal or (`regex`) a regular expression. Smart
    /// case: a pattern without upper-case letters matches either case.
    pub fn new(pattern: &str, regex: bool) -> Result<Matcher> {
        if pattern.is_empty() {
            return Err(Error::Usage(
                "the search pattern is empty; give the text to look for".into(),
            ));
        }
        let ignore_case = !pattern.chars().any(char::is_uppercase);
        if !regex && !ignore_case {
            return Ok(Matcher::Literal(Box::new(
                memchr::memmem::Finder::new(pattern.as_bytes()).into_owned(),
            )));
        }
        let source = if regex {
            Cow::Borrowed(pattern)
        } else {
            Cow::Owned(regex::escape(pattern))
        };
        regex::RegexBuilder::new(&source)
            .case_insensitive(ignore_case)
            .size_limit(16 << 20)
            .build()
            .map(Matcher::Regex)
            .map_err(|e| {
                Error::Usage(if regex {
                    format!("--regex {pattern:?} is not a valid regular expression: {e}; drop --regex to search for the text as written")
                } else {
                    format!("cannot search for {pattern:?}: {e}")
                })
            })
    }

    /// Byte range of the first match in `text`.
    pub fn find(&self, text: &str) -> Option<(usize, usize)> {
        match self {
            Matcher::Literal(f) => f.find(text.as_bytes()).map(|s| (s, s + f.needle().len())),
            Matcher::Regex(r) => r.find(text).map(|m| (m.start(), m.end())),
        }
    }
}

/// A whole search: what to match, in which kinds, since when.
#[derive(Debug, Clone)]
pub struct Query {
    pub matcher: Matcher,
    pub kinds: Vec<SearchKind>,
    /// Events at or after this time (see [`parse_since`]); events without
    /// a time are left out when set.
    pub since: Option<String>,
    /// Sessions of these providers only (all when empty).
    pub providers: Vec<ProviderId>,
    /// Keep the newest this many hits (0: all).
    pub limit: usize,
}

/// One match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub session_id: String,
    pub provider: ProviderId,
    /// As the provider wrote it.
    pub timestamp: Option<String>,
    pub kind: SearchKind,
    pub event_id: String,
    /// The session's main file.
    pub path: Option<PathBuf>,
    /// One line of context, secrets redacted, whitespace collapsed.
    pub snippet: String,
    /// The match in `snippet`: character offsets, end exclusive.
    pub highlight: [usize; 2],
}

impl Hit {
    /// The snippet as before, match, after.
    pub fn parts(&self) -> (&str, &str, &str) {
        let byte = |c: usize| {
            self.snippet
                .char_indices()
                .nth(c)
                .map_or(self.snippet.len(), |(i, _)| i)
        };
        let (s, e) = (byte(self.highlight[0]), byte(self.highlight[1]));
        (
            self.snippet.get(..s).unwrap_or(""),
            self.snippet.get(s..e).unwrap_or(""),
            self.snippet.get(e..).unwrap_or(""),
        )
    }
}

/// The searchable texts of an event and their kind; `None` for kinds a
/// search never looks at (metadata, raw records, system notes).
fn text_of(ev: &Event) -> Option<(SearchKind, &str)> {
    match &ev.payload {
        Payload::UserMessage { text, .. } | Payload::DecisionResponse { text, .. } => {
            Some((SearchKind::User, text))
        }
        Payload::AssistantMessage { text } | Payload::DecisionPrompt { text, .. } => {
            Some((SearchKind::Assistant, text))
        }
        Payload::Thinking { text } => Some((SearchKind::Thinking, text)),
        Payload::ToolCall { input, .. } => Some((SearchKind::Tool, input.get())),
        Payload::ToolResult { output, .. } => Some((SearchKind::Tool, output)),
        Payload::KatoCommand { .. }
        | Payload::SystemMessage { .. }
        | Payload::ProviderInfo { .. }
        | Payload::ProviderRaw { .. } => None,
    }
}

/// The hit `ev` is, if it matches `query` (confirmed on its redacted text).
pub fn hit(query: &Query, redactor: &Redactor, session: &SessionFiles, ev: &Event) -> Option<Hit> {
    let (kind, text) = text_of(ev)?;
    if !query.kinds.contains(&kind) {
        return None;
    }
    if let Some(since) = &query.since {
        if ev.timestamp.as_deref().is_none_or(|t| t < since.as_str()) {
            return None;
        }
    }
    // Fast reject on the text as read; confirm on the text as printed.
    query.matcher.find(text)?;
    let redacted = redactor.redact_str(text).text;
    let (s, e) = query.matcher.find(&redacted)?;
    let (snippet, highlight) = snippet(&redacted, s, e);
    Some(Hit {
        session_id: session.session_id.clone(),
        provider: session.provider,
        timestamp: ev.timestamp.as_deref().map(str::to_owned),
        kind,
        event_id: ev.event_id.clone(),
        path: session.main_path().map(PathBuf::from),
        snippet,
        highlight,
    })
}

/// One line around `text[s..e]`: [`CONTEXT_CHARS`] each side, whitespace
/// collapsed, an ellipsis where cut. Returns it and the match's character
/// range in it.
fn snippet(text: &str, s: usize, e: usize) -> (String, [usize; 2]) {
    let before = text.get(..s).unwrap_or("");
    let matched = text.get(s..e).unwrap_or("");
    let after = text.get(e..).unwrap_or("");
    let mut out = String::new();
    let skip = before.chars().count().saturating_sub(CONTEXT_CHARS);
    if skip > 0 {
        out.push('…');
    }
    push_collapsed(&mut out, before.chars().skip(skip), true);
    let start = out.chars().count();
    push_collapsed(&mut out, matched.chars().take(MATCH_CHARS), false);
    let end = out.chars().count();
    let mut tail = after.chars();
    push_collapsed(&mut out, tail.by_ref().take(CONTEXT_CHARS), false);
    if tail.next().is_some() {
        out.push('…');
    }
    (out, [start, end])
}

/// Append `chars` with each whitespace run as one space (none at the very
/// start when `trim_start`).
fn push_collapsed(out: &mut String, chars: impl Iterator<Item = char>, trim_start: bool) {
    let mut space = false;
    for c in chars {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !(trim_start && (out.is_empty() || out == "…")) {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    if space {
        out.push(' ');
    }
}

/// The newest `limit` hits seen so far (all when `limit` is 0), in
/// bounded memory.
#[derive(Debug, Default)]
pub struct Newest {
    limit: usize,
    hits: Vec<Hit>,
}

impl Newest {
    pub fn new(limit: usize) -> Newest {
        Newest {
            limit,
            hits: Vec::new(),
        }
    }

    pub fn push(&mut self, hit: Hit) {
        self.hits.push(hit);
        if self.limit > 0 && self.hits.len() >= 2 * self.limit.max(64) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.hits.sort_by(newest_first);
        if self.limit > 0 {
            self.hits.truncate(self.limit);
        }
    }

    pub fn finish(mut self) -> Vec<Hit> {
        self.trim();
        self.hits
    }
}

/// Newest first; hits without a time last; then by session and event.
fn newest_first(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    b.timestamp
        .cmp(&a.timestamp)
        .then_with(|| a.session_id.cmp(&b.session_id))
        .then_with(|| a.event_id.cmp(&b.event_id))
}

/// What the parse stage sends `main`.
enum Msg {
    Hit(Box<Hit>),
    /// A session that could not be read (its error, redacted).
    Problem(String),
    /// Every session was read: bytes read, sessions searched.
    Done(u64, usize),
}

/// What a search found, and how much it read.
#[derive(Debug)]
pub struct Outcome {
    pub hits: Vec<Hit>,
    pub sessions: usize,
    pub bytes: u64,
    pub problems: Vec<String>,
}

/// Search every session under the configured roots. `main` confines
/// itself to reading the provider roots (and the config) first; the
/// sessions are then read by one parse stage confined to the roots.
pub fn run(cfg: &Config, query: &Query) -> Result<Outcome> {
    use crate::sandbox::{profiles, Confiner, StageName};
    let limits = export::limits(cfg);
    let redactor = Redactor::new(&cfg.redaction).map_err(|e| Error::Config {
        path: cfg.source.clone().unwrap_or_default(),
        message: e.to_string(),
    })?;
    let (found, walk_problems) = crate::discover::walk_config(cfg);
    let mut problems: Vec<String> = walk_problems
        .iter()
        .map(|p| format!("cannot read {}: {}", p.path.display(), p.error))
        .collect();
    let sessions: Vec<SessionFiles> = crate::discover::group(found, limits)
        .into_iter()
        .filter(|s| query.providers.is_empty() || query.providers.contains(&s.provider))
        .collect();
    let domain = profiles::providers_reach(cfg);
    let (tx, rx) = mpsc::sync_channel::<Msg>(1024);
    let q = query.clone();
    let stage =
        Confiner::new(cfg.sandbox_mode).spawn(StageName::ExportParse, domain, move || {
            parse_stage(&sessions, &q, &redactor, limits, &tx);
        })?;
    let mut newest = Newest::new(query.limit);
    let (mut bytes, mut searched) = (0, 0);
    for msg in rx {
        match msg {
            Msg::Hit(h) => newest.push(*h),
            Msg::Problem(p) => problems.push(p),
            Msg::Done(b, n) => (bytes, searched) = (b, n),
        }
    }
    stage.join()?;
    Ok(Outcome {
        hits: newest.finish(),
        sessions: searched,
        bytes,
        problems,
    })
}

/// The parse stage: every session, in turn, streamed and matched.
fn parse_stage(
    sessions: &[SessionFiles],
    query: &Query,
    redactor: &Redactor,
    limits: crate::reader::Limits,
    tx: &mpsc::SyncSender<Msg>,
) {
    let mut bytes = 0u64;
    for s in sessions {
        bytes += s
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(&f.path).ok())
            .map(|m| m.len())
            .sum::<u64>();
        let mut skipped = Skipped::default();
        let mut closed = false;
        let r = export::stream_session(s, limits, &mut skipped, &mut |ev| {
            if closed {
                return;
            }
            if let Some(h) = hit(query, redactor, s, &ev) {
                closed = tx.send(Msg::Hit(Box::new(h))).is_err();
            }
        });
        if closed {
            return;
        }
        if let Err(e) = r {
            let msg = redactor.redact_str(&e.to_string()).text.into_owned();
            if tx.send(Msg::Problem(msg)).is_err() {
                return;
            }
        }
    }
    let _ = tx.send(Msg::Done(bytes, sessions.len()));
}

/// `--since`: a date (`2026-01-08`), a time (`2026-01-08T15:00`), or an
/// age (`7d`, `12h`), as the earliest RFC 3339 time to keep. Provider
/// times are compared as text, which orders RFC 3339 UTC times.
pub fn parse_since(s: &str, now_unix: u64) -> Result<String> {
    let bad = || {
        Error::Usage(format!(
            "--since {s:?}: give a date (2026-01-08), a time (2026-01-08T15:00) or an age (7d, 12h)"
        ))
    };
    let t = s.trim();
    if let Some((n, unit)) = t
        .strip_suffix('d')
        .map(|n| (n, 86_400u64))
        .or_else(|| t.strip_suffix('h').map(|n| (n, 3_600)))
    {
        let n: u64 = n.parse().map_err(|_| bad())?;
        let at = now_unix.saturating_sub(n.saturating_mul(unit));
        return Ok(rfc3339(at));
    }
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = b.len() >= 10
        && digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10);
    let rest_ok = b.len() == 10
        || (b.get(10) == Some(&b'T')
            && t.get(11..)
                .is_some_and(|r| r.chars().all(|c| c.is_ascii_digit() || ":.Z".contains(c))));
    if date && rest_ok {
        Ok(t.to_owned())
    } else {
        Err(bad())
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil from days (Howard Hinnant's algorithm), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Now, in seconds since the epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn ev(payload: Payload, ts: &str) -> Event {
        let mut e = Event::new(
            ProviderId::Claude,
            "s1",
            "e1",
            Source {
                record: "x".into(),
                offset: 0,
                file: None,
            },
            payload,
        );
        e.timestamp = Some(ts.into());
        e
    }

    fn session() -> SessionFiles {
        SessionFiles {
            provider: ProviderId::Claude,
            session_id: "s1".into(),
            files: Vec::new(),
        }
    }

    fn query(p: &str, regex: bool, kinds: &[SearchKind]) -> Query {
        Query {
            matcher: Matcher::new(p, regex).unwrap(),
            kinds: kinds.to_vec(),
            since: None,
            providers: Vec::new(),
            limit: 0,
        }
    }

    fn user(text: &str) -> Payload {
        Payload::UserMessage {
            text: text.into(),
            attachments: 0,
        }
    }

    #[test]
    fn literal_regex_and_smart_case() {
        let m = Matcher::new("Needle", false).unwrap();
        assert!(matches!(m, Matcher::Literal(_)));
        assert_eq!(m.find("a Needle b"), Some((2, 8)));
        assert_eq!(m.find("a needle b"), None);
        let m = Matcher::new("needle", false).unwrap();
        assert_eq!(m.find("a NEEDLE b"), Some((2, 8)));
        // A literal is not a pattern.
        let m = Matcher::new("a.c", false).unwrap();
        assert_eq!(m.find("abc"), None);
        let m = Matcher::new("a.c", true).unwrap();
        assert_eq!(m.find("xabc"), Some((1, 4)));
        assert!(Matcher::new("(", true).is_err());
        assert!(Matcher::new("", false).is_err());
    }

    #[test]
    fn snippets_are_one_line_with_the_match_marked() {
        let text = format!(
            "{}\n\nthe   NEEDLE here\n{}",
            "x".repeat(100),
            "y".repeat(100)
        );
        let s = text.find("NEEDLE").unwrap();
        let (snip, [a, b]) = snippet(&text, s, s + 6);
        assert!(!snip.contains('\n'));
        assert!(snip.starts_with('…') && snip.ends_with('…'));
        let chars: Vec<char> = snip.chars().collect();
        assert_eq!(chars[a..b].iter().collect::<String>(), "NEEDLE");
        assert!(snip.contains("the NEEDLE here"));
        let (snip, hl) = snippet("NEEDLE", 0, 6);
        assert_eq!((snip.as_str(), hl), ("NEEDLE", [0, 6]));
    }

    #[test]
    fn kinds_filter_what_is_searched() {
        let redactor = Redactor::new(&Default::default()).unwrap();
        let result = ev(
            Payload::ToolResult {
                tool_call_id: "t".into(),
                output: "found MARKER".into(),
                is_error: false,
            },
            "2026-01-08T00:00:00Z",
        );
        let q = query("MARKER", false, SearchKind::DEFAULT);
        assert!(hit(&q, &redactor, &session(), &result).is_none());
        let q = query("MARKER", false, &[SearchKind::Tool]);
        let h = hit(&q, &redactor, &session(), &result).unwrap();
        assert_eq!(h.kind, SearchKind::Tool);
        assert_eq!(h.parts().1, "MARKER");
    }

    #[test]
    fn secrets_are_neither_found_nor_shown() {
        let redactor = Redactor::new(&Default::default()).unwrap();
        let token = format!("ghp_{}", "k7Qz".repeat(9));
        let e = ev(
            user(&format!("deploy with {token} now")),
            "2026-01-08T00:00:00Z",
        );
        let q = query("deploy", false, SearchKind::DEFAULT);
        let h = hit(&q, &redactor, &session(), &e).unwrap();
        assert!(!h.snippet.contains(&token), "{}", h.snippet);
        assert!(h.snippet.contains("[REDACTED:GITHUB_TOKEN]"));
        let q = query(&token, false, SearchKind::DEFAULT);
        assert!(hit(&q, &redactor, &session(), &e).is_none());
    }

    #[test]
    fn since_and_newest_first() {
        let redactor = Redactor::new(&Default::default()).unwrap();
        let mut q = query("x", false, SearchKind::DEFAULT);
        q.since = Some(parse_since("2026-01-08", 0).unwrap());
        let old = ev(user("x"), "2026-01-07T23:59:59Z");
        let new = ev(user("x"), "2026-01-08T00:00:01Z");
        assert!(hit(&q, &redactor, &session(), &old).is_none());
        assert!(hit(&q, &redactor, &session(), &new).is_some());
        let mut n = Newest::new(2);
        for d in 1..=200u32 {
            let mut h = hit(
                &query("x", false, SearchKind::DEFAULT),
                &redactor,
                &session(),
                &ev(user("x"), &format!("2026-01-{:02}T00:00:00Z", d % 28 + 1)),
            )
            .unwrap();
            h.event_id = d.to_string();
            n.push(h);
        }
        let hits = n.finish();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].timestamp.as_deref(), Some("2026-01-28T00:00:00Z"));
    }

    #[test]
    fn since_accepts_dates_times_and_ages() {
        assert_eq!(parse_since("2026-01-08", 0).unwrap(), "2026-01-08");
        assert_eq!(
            parse_since("2026-01-08T15:00", 0).unwrap(),
            "2026-01-08T15:00"
        );
        assert_eq!(
            parse_since("1d", 86_400 * 2).unwrap(),
            "1970-01-02T00:00:00Z"
        );
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
        for bad in [
            "yesterday",
            "2026-1-8",
            "2026-01-08 15:00",
            "xd",
            "2026-01-08T<",
        ] {
            assert!(parse_since(bad, 0).is_err(), "{bad}");
        }
    }
}
