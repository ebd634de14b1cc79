//! The detector table: which prefilter literals call for which detector.
//!
//! A fixed-shape token (a provider's key format) is one [`Token`] entry in
//! [`RULES`] — its literal, its anchored pattern, its label and any extra
//! test on the matched text — plus its tests; a new label is one line in
//! the [`Label`] list. Detectors that need more than one pattern (private
//! key blocks, URLs, `Authorization` headers, `key = value` assignments)
//! are written out in `detect.rs` and named here by their [`Kind`].

use aho_corasick::{packed, AhoCorasick, Input, MatchKind};
use memchr::memmem::Finder;
use std::sync::OnceLock;

use regex::Regex;

use super::detect::{has_digit, mixed, upper_and_lower_after};
use super::{short_regex_error, RedactError};

/// Declares [`Label`], its list and its spellings in one place.
macro_rules! labels {
    ($($variant:ident => $text:literal,)*) => {
        /// What kind of secret was found; rendered as `[REDACTED:<label>]`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Label {
            $($variant,)*
        }

        impl Label {
            pub const ALL: [Label; [$($text),*].len()] = [$(Label::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Label::$variant => $text,)*
                }
            }
        }
    };
}

labels! {
    AnthropicKey => "ANTHROPIC_KEY",
    OpenAiKey => "OPENAI_KEY",
    GithubToken => "GITHUB_TOKEN",
    GitlabToken => "GITLAB_TOKEN",
    SlackToken => "SLACK_TOKEN",
    SlackWebhook => "SLACK_WEBHOOK",
    AwsAccessKeyId => "AWS_ACCESS_KEY_ID",
    AwsSecretKey => "AWS_SECRET_KEY",
    GoogleApiKey => "GOOGLE_API_KEY",
    StripeKey => "STRIPE_KEY",
    NpmToken => "NPM_TOKEN",
    PypiToken => "PYPI_TOKEN",
    HuggingFaceToken => "HUGGINGFACE_TOKEN",
    SendgridKey => "SENDGRID_KEY",
    MailgunKey => "MAILGUN_KEY",
    TelegramBotToken => "TELEGRAM_BOT_TOKEN",
    DiscordToken => "DISCORD_TOKEN",
    DiscordWebhook => "DISCORD_WEBHOOK",
    AzureKey => "AZURE_KEY",
    AzureSas => "AZURE_SAS",
    DockerAuth => "DOCKER_AUTH",
    Jwt => "JWT",
    PrivateKey => "PRIVATE_KEY",
    BearerToken => "BEARER_TOKEN",
    BasicAuth => "BASIC_AUTH",
    UrlPassword => "URL_PASSWORD",
    Password => "PASSWORD",
    ApiKey => "API_KEY",
    Key => "KEY",
    Token => "TOKEN",
    Secret => "SECRET",
    Custom => "CUSTOM",
}

impl Label {
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

impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Which detector a candidate literal calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The rule's [`Token`]s, tried in order; the first that matches wins.
    Tokens,
    /// A PEM private key block.
    Pem,
    /// `://`: a Slack webhook or a URL password.
    Url,
    /// `Authorization: <scheme> <credential>`.
    Authorization,
    /// `Bearer <token>` outside a header.
    Bearer,
    /// A secret-ish key word: `key = value` assignments.
    Key,
    /// `:AA`: the secret half of a Telegram bot token, after the bot id.
    Telegram,
    /// `sig=`: the signature of an Azure shared access signature.
    Sas,
    /// `"auth`: a registry credential in a Docker `config.json`.
    DockerAuth,
    /// A JSON escape that may stand for part of a candidate.
    Escape,
}

/// A token of a fixed shape.
pub(super) struct Token {
    /// Named in the error when the pattern does not compile.
    pub name: &'static str,
    pub label: Label,
    /// Matched at the start of the token (anchored with `\A`).
    pub pattern: &'static str,
    /// A test of the matched text the pattern cannot express.
    pub accept: fn(&str) -> bool,
    /// Not a token when it runs on into `-` or `_` (part of an identifier).
    pub no_ident_tail: bool,
}

/// Prefilter literals and the detector they call for. The rule's tokens
/// are tried first, whatever its kind; the kind's detector runs when none
/// matches (`key-…` is a Mailgun key, any other `key` an assignment).
pub(super) struct Rule {
    /// Exact literals found by the prefilter scan. Key words are found by a
    /// case-stable core (`oken` finds `token`, `Token` and `TOKEN`).
    pub literals: &'static [&'static str],
    /// The token (or the word) starts one byte before the literal, with
    /// one of these bytes (`s` of `sk_live_`, `A` of `Authorization`);
    /// empty: it starts at the literal.
    pub back: &'static [u8],
    pub kind: Kind,
    /// Required for [`Kind::Tokens`]; tried first for any kind.
    pub tokens: &'static [Token],
}

fn any(_: &str) -> bool {
    true
}

const fn token(
    name: &'static str,
    label: Label,
    pattern: &'static str,
    accept: fn(&str) -> bool,
) -> Token {
    Token {
        name,
        label,
        pattern,
        accept,
        no_ident_tail: false,
    }
}

const fn tokens(literals: &'static [&'static str], tokens: &'static [Token]) -> Rule {
    Rule {
        literals,
        back: b"",
        kind: Kind::Tokens,
        tokens,
    }
}

const fn special(literals: &'static [&'static str], back: &'static [u8], kind: Kind) -> Rule {
    Rule {
        literals,
        back,
        kind,
        tokens: &[],
    }
}

fn anthropic_body(m: &str) -> bool {
    m.get(7..).is_some_and(mixed)
}

/// Every detector, by the literal that triggers it. The order is the
/// prefilter's priority when two literals match at the same position. At
/// most 40 literals, each at least 3 bytes long: fat Teddy takes up to 64,
/// but every literal shares its 16 buckets, and a 2-byte literal would
/// make every bucket match far more often (measured in `ci/bench`). Slack
/// and Discord webhooks are found through `://`.
///
/// Not detected by shape, because no literal of 3 bytes or more starts
/// them: Twilio ids (`AC`/`SK` + 32 hex digits; the auth token and API
/// secret have no prefix at all) and Discord bot tokens (base64 of a
/// numeric id, a dot, a timestamp, a dot, an HMAC). Both are found by
/// their context instead: a secret key name (`TWILIO_AUTH_TOKEN=`,
/// `"token":`), a URL password, `Authorization: Bot …`, a webhook URL.
/// Likewise Mailgun's newer keys (`<32 hex>-<8 hex>-<8 hex>`), which look
/// like any other hex id.
pub(super) const RULES: &[Rule] = &[
    tokens(
        &["sk-"],
        &[
            token(
                "anthropic",
                Label::AnthropicKey,
                r"\Ask-ant-[A-Za-z0-9_\-]{20,}",
                anthropic_body,
            ),
            token(
                "openai-scoped",
                Label::OpenAiKey,
                r"\Ask-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}",
                mixed,
            ),
            Token {
                no_ident_tail: true,
                ..token("openai", Label::OpenAiKey, r"\Ask-[A-Za-z0-9]{20,}", mixed)
            },
        ],
    ),
    tokens(
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        &[token(
            "github",
            Label::GithubToken,
            r"\Agh[pousr]_[A-Za-z0-9]{30,251}",
            any,
        )],
    ),
    tokens(
        &["github_pat_"],
        &[token(
            "github-pat",
            Label::GithubToken,
            r"\Agithub_pat_[A-Za-z0-9_]{22,}",
            any,
        )],
    ),
    tokens(
        &["glpat-"],
        &[token(
            "gitlab",
            Label::GitlabToken,
            r"\Aglpat-[A-Za-z0-9_\-]{20,}",
            any,
        )],
    ),
    tokens(
        &["xox"],
        &[token(
            "slack",
            Label::SlackToken,
            r"\Axox[abprs]-[A-Za-z0-9\-]{10,}",
            has_digit,
        )],
    ),
    tokens(
        &["AKIA", "ASIA"],
        &[token(
            "aws-access-key-id",
            Label::AwsAccessKeyId,
            r"\A(?:AKIA|ASIA)[A-Z2-7]{16}",
            any,
        )],
    ),
    tokens(
        &["AIza"],
        &[token(
            "google",
            Label::GoogleApiKey,
            r"\AAIza[A-Za-z0-9_\-]{35}",
            any,
        )],
    ),
    Rule {
        back: b"sr",
        ..tokens(
            &["k_live_"],
            &[token(
                "stripe",
                Label::StripeKey,
                r"\A[sr]k_live_[A-Za-z0-9]{16,}",
                any,
            )],
        )
    },
    tokens(
        &["npm_"],
        &[token(
            "npm",
            Label::NpmToken,
            r"\Anpm_[A-Za-z0-9]{36}",
            has_digit,
        )],
    ),
    tokens(
        &["pypi-"],
        &[token(
            "pypi",
            Label::PypiToken,
            r"\Apypi-AgE[A-Za-z0-9_\-]{50,}",
            any,
        )],
    ),
    tokens(
        &["hf_"],
        &[token(
            "huggingface",
            Label::HuggingFaceToken,
            r"\Ahf_[A-Za-z0-9]{30,}",
            upper_and_lower_after::<3>,
        )],
    ),
    tokens(
        &["SG."],
        &[Token {
            no_ident_tail: true,
            ..token(
                "sendgrid",
                Label::SendgridKey,
                r"\ASG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",
                any,
            )
        }],
    ),
    tokens(
        &["eyJ"],
        &[token(
            "jwt",
            Label::Jwt,
            r"\AeyJ[A-Za-z0-9_\-]{6,}\.ey[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]*",
            any,
        )],
    ),
    special(&["-----BEGIN "], b"", Kind::Pem),
    special(&["://"], b"", Kind::Url),
    special(&["uthoriz"], b"aA", Kind::Authorization),
    special(&["earer"], b"bB", Kind::Bearer),
    Rule {
        // Mailgun's private API key; `pubkey-…` (its public key) does not
        // start a word.
        tokens: &[Token {
            no_ident_tail: true,
            ..token("mailgun", Label::MailgunKey, r"\Akey-[0-9a-f]{32}", mixed)
        }],
        ..special(
            &[
                "oken", "OKEN", "ecret", "ECRET", "assw", "ASSW", "key", "Key", "KEY",
            ],
            b"",
            Kind::Key,
        )
    },
    special(&[":AA"], b"", Kind::Telegram),
    special(&["sig="], b"", Kind::Sas),
    special(&["\"auth"], b"", Kind::DockerAuth),
    special(&["\\u00", ":\\/"], b"", Kind::Escape),
];

/// What a value under a secret key name must look like to be redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    /// Data rather than code or prose (the name says it is a secret).
    Data,
    /// Random-looking as well: mixed case, digits, a token alphabet. For
    /// names that are secrets only sometimes (`SIGNING_KEY` is one,
    /// `sort_key` is not).
    HighEntropy,
}

/// Key words that make a key name a secret, by the label its value gets
/// and what the value must look like; the first entry whose word ends the
/// key wins (lower case, separators dropped: `GITHUB_TOKEN`, `apiKey`,
/// `db-password`). Every word ends in `n`, `t`, `d` or `y`, which
/// `secret_key` checks first. A bare `key` must be a word of its own
/// (`SIGNING_KEY`, `signingKey`, not `monkey`) and not name a public or
/// lookup key ([`NOT_SECRET_KEYS`]).
pub(super) const KEY_WORDS: &[(&[&str], Label, Value)] = &[
    (
        &["secretaccesskey", "awssecretkey"],
        Label::AwsSecretKey,
        Value::Data,
    ),
    (&["password", "passwd"], Label::Password, Value::Data),
    (&["privatekey"], Label::PrivateKey, Value::Data),
    (&["apikey", "accesskey"], Label::ApiKey, Value::Data),
    (&["token"], Label::Token, Value::Data),
    (&["secret", "secretkey"], Label::Secret, Value::Data),
    (&["key"], Label::Key, Value::HighEntropy),
];

/// Names ending in `key` whose values are identifiers, lookups or public
/// keys, not secrets (lower case, separators dropped).
pub(super) const NOT_SECRET_KEYS: &[&str] = &[
    "publickey",
    "publishablekey",
    "primarykey",
    "foreignkey",
    "sortkey",
    "partitionkey",
    "rangekey",
    "hashkey",
    "cachekey",
    "idempotencykey",
    "routingkey",
    "objectkey",
    "lookupkey",
    "dedupkey",
];

/// Names of an Azure account or shared access key (lower case, separators
/// dropped), as in connection strings; any name starting with `azure` and
/// ending in `key` too.
pub(super) const AZURE_KEYS: &[&str] = &["accountkey", "sharedaccesskey"];

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
pub(super) struct Candidate {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
    /// Index into [`RULES`].
    pub rule: usize,
}

/// A built-in pattern, compiled the first time a candidate calls for it:
/// most texts hold no candidate for most rules, and compiling every
/// pattern up front costs a short export more than reading its session.
/// The patterns are constants, each compiled by the unit tests
/// (`every_built_in_pattern_compiles`).
#[derive(Debug, Clone)]
pub(super) struct LazyRegex {
    name: &'static str,
    pattern: &'static str,
    re: OnceLock<Regex>,
}

impl LazyRegex {
    const fn new(name: &'static str, pattern: &'static str) -> LazyRegex {
        LazyRegex {
            name,
            pattern,
            re: OnceLock::new(),
        }
    }

    /// The compiled pattern, or why it does not compile.
    fn compile(&self) -> Result<&Regex, RedactError> {
        if let Some(re) = self.re.get() {
            return Ok(re);
        }
        let re = re(self.name, self.pattern)?;
        Ok(self.re.get_or_init(|| re))
    }
}

impl std::ops::Deref for LazyRegex {
    type Target = Regex;

    fn deref(&self) -> &Regex {
        match self.compile() {
            Ok(re) => re,
            // A constant of this file: the unit tests compile every one.
            Err(e) => panic!("built-in redaction pattern: {e}"),
        }
    }
}

/// A compiled [`Token`].
#[derive(Debug, Clone)]
pub(super) struct CompiledToken {
    pub re: LazyRegex,
    pub label: Label,
    pub accept: fn(&str) -> bool,
    pub no_ident_tail: bool,
}

/// The compiled table, plus the patterns of the written-out detectors.
/// Every pattern starts with `\A` and is run on the text from the
/// candidate position on.
#[derive(Debug, Clone)]
pub(super) struct Detectors {
    trigger: Literals,
    /// Prefilter pattern index → (kind, rule index).
    by_pattern: Vec<(Kind, usize)>,
    /// Rule index → its compiled tokens.
    pub tokens: Vec<Vec<CompiledToken>>,
    pub pem_end_lit: Finder<'static>,
    pub esc_u: Finder<'static>,
    pub esc_slash: Finder<'static>,
    pub slack_hook: LazyRegex,
    pub pem_begin: LazyRegex,
    pub pem_end: LazyRegex,
    pub pem_body: LazyRegex,
    pub url_auth: LazyRegex,
    pub auth_header: LazyRegex,
    pub auth_value: LazyRegex,
    pub bearer: LazyRegex,
    pub discord_hook: LazyRegex,
    pub telegram: LazyRegex,
}

fn re(name: &'static str, pattern: &str) -> Result<Regex, RedactError> {
    Regex::new(pattern).map_err(|e| RedactError::Builtin {
        name,
        reason: short_regex_error(&e),
    })
}

impl Detectors {
    pub fn new() -> Result<Detectors, RedactError> {
        let literals = RULES.iter().flat_map(|r| r.literals.iter().copied());
        let by_pattern = RULES
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.literals.iter().map(move |_| (r.kind, i)))
            .collect();
        let tokens = RULES
            .iter()
            .map(|rule| {
                rule.tokens
                    .iter()
                    .map(|t| CompiledToken {
                        re: LazyRegex::new(t.name, t.pattern),
                        label: t.label,
                        accept: t.accept,
                        no_ident_tail: t.no_ident_tail,
                    })
                    .collect()
            })
            .collect();
        Ok(Detectors {
            trigger: Literals::new(literals)?,
            by_pattern,
            tokens,
            pem_end_lit: Finder::new(b"-----END ").into_owned(),
            esc_u: Finder::new(b"\\u00").into_owned(),
            esc_slash: Finder::new(b"\\/").into_owned(),
            slack_hook: LazyRegex::new(
                "slack-webhook",
                r"\Ahooks\.slack\.com/((?:services|workflows|triggers)/[A-Za-z0-9_/\-]{10,})",
            ),
            pem_begin: LazyRegex::new(
                "pem-begin",
                r"\A-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
            ),
            pem_end: LazyRegex::new(
                "pem-end",
                r"\A-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
            ),
            pem_body: LazyRegex::new(
                "pem-body",
                r"\A(?:[A-Za-z0-9+/=\r\n]|\\[rn]|[A-Za-z][A-Za-z\-]*: [^\r\n\\]*)*",
            ),
            url_auth: LazyRegex::new(
                "url-password",
                r#"\A[^\s:/@"'<>\\]*:([^\s/"'<>\\]+)@[A-Za-z0-9\[]"#,
            ),
            auth_header: LazyRegex::new(
                "authorization",
                r#"\A(?i-u:authorization)(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?"#,
            ),
            auth_value: LazyRegex::new(
                "authorization-value",
                r"\A(?:(?i-u:(bearer|basic|token|digest|bot))[ \t]+)?([A-Za-z0-9._~+/=_\-]+)",
            ),
            bearer: LazyRegex::new(
                "bearer",
                r"\A(?i-u:bearer)[ \t]+([A-Za-z0-9._~+/_\-]{16,}=*)",
            ),
            // Lengths are checked by the detectors: a bounded repetition
            // makes a large automaton, compiled at every start.
            discord_hook: LazyRegex::new(
                "discord-webhook",
                r"\A(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/[0-9]{15,21}/([A-Za-z0-9_\-]+)",
            ),
            telegram: LazyRegex::new("telegram", r"\A:AA[A-Za-z0-9_\-]+"),
        })
    }

    /// Does `literal`, a JSON string literal in the form kato writes
    /// ([`crate::event::Text::from_json`]: only controls escaped as
    /// `\u00XX`, no `\/`), hold a candidate other than an escape? When it
    /// does not, neither does the text it stands for, so that text holds
    /// nothing to redact: the text's characters appear in the literal as
    /// they are, but quotes, backslashes and controls, and no trigger
    /// literal holds one of those except a leading quote, which its
    /// escape (`\"`) still ends with (`literals_survive_json_escaping`).
    pub fn holds_candidate(&self, literal: &str) -> bool {
        let mut from = 0;
        while let Some(c) = self.candidate(literal, from) {
            if c.kind != Kind::Escape {
                return true;
            }
            from = c.start + 1;
        }
        false
    }

    /// The next candidate at or after `from`.
    pub fn candidate(&self, text: &str, from: usize) -> Option<Candidate> {
        if from > text.len() {
            return None;
        }
        let (start, end, pattern) = self.trigger.find(text.as_bytes(), from)?;
        let &(kind, rule) = self.by_pattern.get(pattern)?;
        Some(Candidate {
            start,
            end,
            kind,
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_survive_json_escaping() {
        for rule in RULES.iter().filter(|r| r.kind != Kind::Escape) {
            for lit in rule.literals {
                let escaped = serde_json::to_string(lit).unwrap();
                assert!(escaped.contains(lit), "{lit:?} is not in {escaped}");
            }
        }
    }

    #[test]
    fn every_built_in_pattern_compiles() {
        let d = Detectors::new().unwrap();
        let named = [
            &d.slack_hook,
            &d.pem_begin,
            &d.pem_end,
            &d.pem_body,
            &d.url_auth,
            &d.auth_header,
            &d.auth_value,
            &d.bearer,
            &d.discord_hook,
            &d.telegram,
        ];
        let tokens = d.tokens.iter().flatten().map(|t| &t.re);
        let mut n = 0;
        for lazy in named.into_iter().chain(tokens) {
            assert!(lazy.re.get().is_none(), "{} compiled before use", lazy.name);
            if let Err(e) = lazy.compile() {
                panic!("{e}");
            }
            assert!(lazy.pattern.starts_with(r"\A"), "{}", lazy.name);
            n += 1;
        }
        assert_eq!(n, 10 + RULES.iter().map(|r| r.tokens.len()).sum::<usize>());
        // A pattern that does not compile says which one.
        let bad = LazyRegex::new("broken", r"\A(");
        assert!(matches!(
            bad.compile(),
            Err(RedactError::Builtin { name: "broken", .. })
        ));
    }

    #[test]
    fn every_token_pattern_is_anchored_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for t in RULES.iter().flat_map(|r| r.tokens) {
            assert!(t.pattern.starts_with(r"\A"), "{}", t.name);
            assert!(names.insert(t.name), "duplicate name {}", t.name);
        }
        for r in RULES {
            assert!(r.kind != Kind::Tokens || !r.tokens.is_empty());
            assert!(!r.literals.is_empty());
        }
    }

    #[test]
    fn the_prefilter_stays_on_its_fast_path() {
        let n: usize = RULES.iter().map(|r| r.literals.len()).sum();
        assert!(
            n <= 40,
            "{n} prefilter literals: keep Teddy's buckets sparse"
        );
        for lit in RULES.iter().flat_map(|r| r.literals) {
            assert!(lit.len() >= 3, "{lit:?}: shorter literals slow every scan");
        }
    }

    #[test]
    fn key_words_end_in_the_quick_reject_letters() {
        let all = KEY_WORDS.iter().flat_map(|(w, _, _)| w.iter());
        for w in all.chain(NOT_SECRET_KEYS).chain(AZURE_KEYS) {
            assert!(w.ends_with(['n', 't', 'd', 'y']), "{w}");
        }
        for (words, _, _) in KEY_WORDS {
            for w in *words {
                assert!(w.ends_with(['n', 't', 'd', 'y']), "{w}");
            }
        }
    }

    #[test]
    fn labels_are_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for l in Label::ALL {
            assert!(seen.insert(l.as_str()), "{l}");
        }
    }
}
