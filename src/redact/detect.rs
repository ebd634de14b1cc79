//! The detectors that run at a candidate, and the tests on values they
//! share.

use super::rules::{Kind, Value, AZURE_KEYS, KEY_WORDS, NOT_SECRET_KEYS, RULES};
use super::{Candidate, Hit, Label, Redactor, Span};

/// How far after an AWS access key id its secret key is looked for.
const AWS_PAIR_WINDOW: usize = 64;

/// Longest private key block looked for: the END line must come within
/// this many bytes of the BEGIN line (keeps the scan linear).
const PEM_MAX: usize = 64 << 10;

impl Redactor {
    /// Run the detector that belongs to a candidate: the rule's tokens,
    /// else its kind's detector.
    pub(super) fn detect(&self, text: &str, c: Candidate) -> Hit {
        let (s, e) = (c.start, c.end);
        let back = RULES.get(c.rule).map_or(&b""[..], |r| r.back);
        // The candidate core may sit one byte into the word (`k_live_` of
        // `sk_live_`, `uthoriz` of `Authorization`).
        let at = if back.is_empty() {
            Some(s)
        } else {
            s.checked_sub(1)
                .filter(|&p| text.as_bytes().get(p).is_some_and(|b| back.contains(b)))
        };
        if let Some(span) = at.and_then(|at| self.token(text, at, c.rule)) {
            return match self.aws_secret_after(text, span) {
                Some(secret) => Hit::Pair(span, secret),
                None => Hit::Secret(span),
            };
        }
        let hit = match c.kind {
            Kind::Tokens | Kind::Escape => None,
            Kind::Pem => self.pem(text, s),
            Kind::Url => self.url(text, s, e),
            Kind::Authorization => at.and_then(|at| self.authorization(text, at)),
            Kind::Bearer => at.and_then(|at| self.bare_bearer(text, at)),
            Kind::Key => return self.assignment(text, s, e),
            // `:AA` may hold the start of `AKIA`.
            Kind::Telegram => return self.telegram(text, s).unwrap_or(Hit::Skip(s + 1)),
            Kind::Sas => self.sas(text, s, e),
            // `"auth` also starts `"authorization"`.
            Kind::DockerAuth => return docker_auth(text, s).unwrap_or(Hit::Skip(s + 1)),
        };
        hit.unwrap_or(Hit::Skip(e))
    }

    /// The first of a rule's tokens found at `at`: a word start, the
    /// pattern, a word end, and the token's own test.
    fn token(&self, text: &str, at: usize, rule: usize) -> Option<Span> {
        let tokens = self.det.tokens.get(rule).filter(|t| !t.is_empty())?;
        if !starts_word(text, at) {
            return None;
        }
        let rest = text.get(at..)?;
        tokens.iter().find_map(|t| {
            let m = t.re.find(rest)?;
            let end = at + m.end();
            if !ends_word(text, end)
                || !(t.accept)(m.as_str())
                || (t.no_ident_tail && follows_ident(text, end))
            {
                return None;
            }
            Some(Span {
                start: at,
                end,
                label: t.label,
            })
        })
    }

    /// After an AWS access key id, its secret access key: a 40-character
    /// base64 word further on the same line, within [`AWS_PAIR_WINDOW`]
    /// bytes (`AKIA…,wJalr…` in a credentials CSV, `AKIA… wJalr…` in
    /// prose). Mixed case and a digit, which a git SHA or a word lacks.
    fn aws_secret_after(&self, text: &str, id: Span) -> Option<Span> {
        if id.label != Label::AwsAccessKeyId {
            return None;
        }
        let b = text.as_bytes();
        let window = id.end.saturating_add(AWS_PAIR_WINDOW).min(b.len());
        let mut i = id.end;
        while i < window {
            let c = *b.get(i)?;
            if c == b'\n' || c == b'\r' || (c == b'\\' && matches!(b.get(i + 1), Some(b'n' | b'r')))
            {
                return None;
            }
            if !is_b64(c) {
                i += 1;
                continue;
            }
            let start = i;
            while b.get(i).is_some_and(|&c| is_b64(c)) {
                i += 1;
            }
            let word = text.get(start..i)?;
            if word.len() == 40 && b.get(i) != Some(&b'=') && upper_lower_digit(word) {
                return Some(Span {
                    start,
                    end: i,
                    label: Label::AwsSecretKey,
                });
            }
        }
        None
    }

    /// At `://`: a Slack or Discord webhook, else a URL password.
    fn url(&self, text: &str, s: usize, e: usize) -> Option<Hit> {
        let rest = text.get(e..)?;
        let hook = if rest.starts_with("hooks.slack.com/") {
            Some((&self.det.slack_hook, Label::SlackWebhook, 10..=usize::MAX))
        } else if rest.starts_with("discord")
            || rest.starts_with("ptb.discord")
            || rest.starts_with("canary.discord")
        {
            Some((&self.det.discord_hook, Label::DiscordWebhook, 60..=100))
        } else {
            None
        };
        match hook {
            Some((re, label, len)) => {
                let g = re
                    .captures(rest)?
                    .get(1)
                    .filter(|g| len.contains(&g.len()))?;
                Some(Hit::Secret(Span {
                    start: e + g.start(),
                    end: e + g.end(),
                    label,
                }))
            }
            None => self.url_password(text, s, e),
        }
    }

    /// `123456789:AA…`: a Telegram bot token, the bot id (a word of its
    /// own, or after `/bot` in an API URL) and the 35-character secret.
    fn telegram(&self, text: &str, s: usize) -> Option<Hit> {
        let b = text.as_bytes();
        let mut start = s;
        while start > 0
            && s - start <= 16
            && b.get(start - 1).is_some_and(u8::is_ascii_digit)
            && !after_u_escape(b, start)
        {
            start -= 1;
        }
        let after_bot =
            start >= 3 && text.get(start - 3..start) == Some("bot") && starts_word(text, start - 3);
        if !(5..=16).contains(&(s - start)) || !(starts_word(text, start) || after_bot) {
            return None;
        }
        // `:AA` and 33 more characters, the whole run.
        let m = self.det.telegram.find(text.get(s..)?)?;
        let end = s + m.end();
        if m.len() != 36 || !ends_word(text, end) {
            return None;
        }
        Some(Hit::Secret(Span {
            start,
            end,
            label: Label::TelegramBotToken,
        }))
    }

    /// `sig=` in a shared access signature (a URL query or a connection
    /// string): an HMAC-SHA256 in base64, percent-encoded or not.
    fn sas(&self, text: &str, s: usize, e: usize) -> Option<Hit> {
        let b = text.as_bytes();
        let param_start = match s.checked_sub(1).and_then(|p| b.get(p)) {
            None => true,
            Some(&p) => !key_byte(p) || text.get(..s).is_some_and(|t| t.ends_with("\\u0026")),
        };
        if !param_start {
            return None;
        }
        let mut end = e;
        while b
            .get(end)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || b"%+/=".contains(&c))
            && end - e < 256
        {
            end += 1;
        }
        if !is_hmac_sha256_b64(text.get(e..end)?) || !ends_value(text, end) {
            return None;
        }
        Some(Hit::Secret(Span {
            start: e,
            end,
            label: Label::AzureSas,
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
    pub(super) fn auth_credential(&self, text: &str, at: usize) -> Option<Span> {
        let c = self.det.auth_value.captures(text.get(at..)?)?;
        let cred = c.get(2)?;
        let v = cred.as_str();
        let scheme_word = ["bearer", "basic", "token", "digest", "bot"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w));
        let scheme = c.get(1).map(|s| s.as_str().to_ascii_lowercase());
        let basic = scheme.as_deref() == Some("basic");
        if scheme_word
            || v.len() < 8
            || !ends_value(text, at + cred.end())
            || is_placeholder(v)
            || (basic && !is_basic_credential(v))
            || (!basic && (is_words(v) || (v.len() < 16 && !mixed(v))))
        {
            return None;
        }
        let label = match scheme.as_deref() {
            Some("basic") => Label::BasicAuth,
            Some("bot") => Label::DiscordToken,
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
        let Some((key_label, rule)) = text.get(ks..ke).and_then(secret_key) else {
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
        if !ok || (rule == Value::HighEntropy && !high_entropy(value)) {
            return skip;
        }
        let label = self.classify(value).unwrap_or(key_label);
        Hit::Secret(Span { start, end, label })
    }
}

fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A token may start at `s` only when no word character precedes it. The
/// letter of an escape sequence (`\n`, `\t` in JSON or in code, at any
/// level of escaping) is no word character, nor is the last digit of a
/// `\u00XX` escape (JSON writes a control character so; an escape that
/// spells a letter makes JSON text be scanned decoded).
fn starts_word(text: &str, s: usize) -> bool {
    let b = text.as_bytes();
    let Some(prev) = s.checked_sub(1).and_then(|p| b.get(p)) else {
        return true;
    };
    !word_byte(*prev)
        || (b"nrtbf".contains(prev) && s.checked_sub(2).and_then(|p| b.get(p)) == Some(&b'\\'))
        || after_u_escape(b, s)
}

/// Does a `\u00XX` escape end at `s`?
fn after_u_escape(b: &[u8], s: usize) -> bool {
    s.checked_sub(6)
        .and_then(|p| b.get(p..s))
        .is_some_and(|e| e.starts_with(b"\\u00") && e[4..].iter().all(u8::is_ascii_hexdigit))
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

pub(super) fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

/// Random-looking: at least one digit and one letter.
pub(super) fn mixed(s: &str) -> bool {
    has_digit(s) && s.bytes().any(|b| b.is_ascii_alphabetic())
}

fn key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// When a key names a secret, the label its value gets.
pub(super) fn secret_key_label(key: &str) -> Option<Label> {
    secret_key(key).map(|(label, _)| label)
}

/// When a key names a secret, the label its value gets and what the value
/// must look like. The key must end with the secret word, ignoring case
/// and separators (`GITHUB_TOKEN`, `apiKey`, `db-password`), so
/// `password_field`, `token_count` or `max_tokens` are not secret keys.
pub(super) fn secret_key(key: &str) -> Option<(Label, Value)> {
    // Every secret word ends in one of these letters: a quick reject.
    let last = key.bytes().rev().find(u8::is_ascii_alphanumeric)?;
    if !matches!(last.to_ascii_lowercase(), b'n' | b't' | b'd' | b'y') {
        return None;
    }
    if is_azure_key(key) {
        return Some((Label::AzureKey, Value::Data));
    }
    let (_, label, rule) = KEY_WORDS
        .iter()
        .find(|(words, _, _)| words.iter().any(|w| key_ends_with(key, w)))?;
    if *label == Label::Key
        && (!key_word_stands_alone(key) || NOT_SECRET_KEYS.iter().any(|w| key_ends_with(key, w)))
    {
        return None;
    }
    Some((*label, *rule))
}

/// `AccountKey`, `SharedAccessKey` (connection strings), `AZURE_…_KEY`.
fn is_azure_key(key: &str) -> bool {
    let norm: String = key
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect();
    AZURE_KEYS.contains(&norm.as_str()) || (norm.starts_with("azure") && norm.ends_with("key"))
}

/// The final `key` of a name is a word of its own: after `_`, `-` or `.`,
/// or a camel-case `Key` after a lower-case letter (`SIGNING_KEY`,
/// `signingKey`; not `monkey`, `KEY` or `key`).
fn key_word_stands_alone(key: &str) -> bool {
    let b = key
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .as_bytes();
    let Some(k) = b.len().checked_sub(3) else {
        return false;
    };
    match (k.checked_sub(1).and_then(|p| b.get(p)), b.get(k)) {
        (Some(b'_' | b'-' | b'.'), _) => b
            .get(..k.saturating_sub(1))
            .is_some_and(|p| p.iter().any(u8::is_ascii_alphanumeric)),
        (Some(p), Some(b'K')) => p.is_ascii_lowercase() || p.is_ascii_digit(),
        _ => false,
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
pub(super) fn value_at(bytes: &[u8], vs: usize) -> Option<(usize, usize, bool)> {
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
                && !(bytes.get(i) == Some(&b';') && starts_param(bytes, i + 1))
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
pub(super) fn quoted_value_ok(v: &str) -> bool {
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

/// `Name=` at `i`: the next parameter of a connection string
/// (`AccountKey=…;EndpointSuffix=…`, `Password=…;Encrypt=true`).
fn starts_param(bytes: &[u8], i: usize) -> bool {
    let name = bytes
        .get(i..)
        .unwrap_or(&[])
        .iter()
        .take(64)
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    name > 0 && bytes.get(i + name) == Some(&b'=')
}

/// In a base64 word (standard alphabet, without the padding).
fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

pub(super) fn upper_lower_digit(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
}

/// A value random enough to be a key when its name alone does not say so:
/// 16 characters or more of a token alphabet, upper- and lower-case letters
/// and digits (so no hex digest, UUID, version or word), and at least 3
/// bits of entropy per character.
pub(super) fn high_entropy(v: &str) -> bool {
    v.len() >= 16
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
        && upper_lower_digit(v)
        && shannon_bits(v) >= 3.0
}

/// Shannon entropy of the bytes of `v`, in bits per byte.
fn shannon_bits(v: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in v.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The value of a standard base64 text, `None` when it is not one.
fn b64_decode(v: &str) -> Option<Vec<u8>> {
    let body = v.trim_end_matches('=');
    if v.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in body.bytes() {
        let d = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(d);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `user:password` in base64, as HTTP Basic and Docker's `auth` hold it:
/// it decodes to printable text with a colon after a non-empty user.
pub(super) fn is_basic_credential(v: &str) -> bool {
    let Some(bytes) = b64_decode(v) else {
        return false;
    };
    let Ok(plain) = std::str::from_utf8(&bytes) else {
        return false;
    };
    plain.len() >= 3
        && !plain.chars().any(char::is_control)
        && plain
            .find(':')
            .is_some_and(|i| i > 0 && i + 1 < plain.len())
}

/// An HMAC-SHA256 in base64 (43 characters and `=`), possibly with `+`,
/// `/` and `=` percent-encoded, with digits and mixed case.
fn is_hmac_sha256_b64(v: &str) -> bool {
    let decoded = v
        .replace("%2B", "+")
        .replace("%2b", "+")
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%3D", "=")
        .replace("%3d", "=");
    decoded.len() == 44
        && decoded.ends_with('=')
        && decoded.bytes().take(43).all(is_b64)
        && upper_lower_digit(&decoded)
}

/// `"auth": "<base64>"` in a Docker `config.json` (raw or as escaped
/// JSON text): the key is exactly `auth` and the value a Basic credential.
fn docker_auth(text: &str, s: usize) -> Option<Hit> {
    let b = text.as_bytes();
    let ke = s + "\"auth".len();
    let closed = match b.get(ke) {
        Some(b'"') => true,
        Some(b'\\') => b.get(ke + 1) == Some(&b'"'),
        _ => false,
    };
    if !closed {
        return None;
    }
    let vs = separator_end(b, ke)?;
    let (start, end, quoted) = value_at(b, vs)?;
    let v = text.get(start..end)?;
    if !quoted || !is_basic_credential(v) {
        return None;
    }
    Some(Hit::Secret(Span {
        start,
        end,
        label: Label::DockerAuth,
    }))
}

/// Upper- and lower-case letters both appear after the first `N` bytes.
pub(super) fn upper_and_lower_after<const N: usize>(m: &str) -> bool {
    let b = m.get(N..).unwrap_or("");
    b.bytes().any(|c| c.is_ascii_uppercase()) && b.bytes().any(|c| c.is_ascii_lowercase())
}
