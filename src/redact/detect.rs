//! The detectors that run at a candidate, and the tests on values they
//! share.

use super::rules::{Kind, KEY_WORDS, RULES};
use super::{Candidate, Hit, Label, Redactor, Span};

/// Longest private key block looked for: the END line must come within
/// this many bytes of the BEGIN line (keeps the scan linear).
const PEM_MAX: usize = 64 << 10;

impl Redactor {
    /// Run the detector that belongs to a candidate.
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
        let hit = match c.kind {
            Kind::Tokens => at.and_then(|at| self.token(text, at, c.rule)),
            Kind::Pem => self.pem(text, s),
            Kind::Url
                if text
                    .get(e..)
                    .is_some_and(|r| r.starts_with("hooks.slack.com/")) =>
            {
                self.slack_webhook(text, e)
            }
            Kind::Url => self.url_password(text, s, e),
            Kind::Authorization => at.and_then(|at| self.authorization(text, at)),
            Kind::Bearer => at.and_then(|at| self.bare_bearer(text, at)),
            Kind::Key => return self.assignment(text, s, e),
            Kind::Escape => None,
        };
        hit.unwrap_or(Hit::Skip(e))
    }

    /// The first of a rule's tokens found at `at`: a word start, the
    /// pattern, a word end, and the token's own test.
    fn token(&self, text: &str, at: usize, rule: usize) -> Option<Hit> {
        if !starts_word(text, at) {
            return None;
        }
        let rest = text.get(at..)?;
        self.det.tokens.get(rule)?.iter().find_map(|t| {
            let m = t.re.find(rest)?;
            let end = at + m.end();
            if !ends_word(text, end)
                || !(t.accept)(m.as_str())
                || (t.no_ident_tail && follows_ident(text, end))
            {
                return None;
            }
            Some(Hit::Secret(Span {
                start: at,
                end,
                label: t.label,
            }))
        })
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
    pub(super) fn auth_credential(&self, text: &str, at: usize) -> Option<Span> {
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

/// When a key names a secret, the label its value gets. The key must end
/// with the secret word, ignoring case and separators (`GITHUB_TOKEN`,
/// `apiKey`, `db-password`), so `password_field`, `token_count` or
/// `max_tokens` are not secret keys.
pub(super) fn secret_key_label(key: &str) -> Option<Label> {
    // Every secret word ends in one of these letters: a quick reject.
    let last = key.bytes().rev().find(u8::is_ascii_alphanumeric)?;
    if !matches!(last.to_ascii_lowercase(), b'n' | b't' | b'd' | b'y') {
        return None;
    }
    KEY_WORDS
        .iter()
        .find(|(words, _)| words.iter().any(|w| key_ends_with(key, w)))
        .map(|&(_, label)| label)
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

/// Upper- and lower-case letters both appear after the first `N` bytes.
pub(super) fn upper_and_lower_after<const N: usize>(m: &str) -> bool {
    let b = m.get(N..).unwrap_or("");
    b.bytes().any(|c| c.is_ascii_uppercase()) && b.bytes().any(|c| c.is_ascii_lowercase())
}
