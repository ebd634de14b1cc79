//! Secret redaction: one positive and one negative table per detector,
//! event coverage, configuration behaviour, and property tests.
//!
//! Secret-shaped strings are assembled at run time from a seeded generator so
//! that no key-like literal sits in the source.

use kato::event::{raw_from_str, Event, Payload, ProviderId, Source, SystemCategory, Text};
use kato::redact::{Label, RedactionOptions, RedactionStats, Redactor};
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

fn red() -> Redactor {
    Redactor::new(&RedactionOptions::default()).unwrap()
}

fn redact(text: &str) -> String {
    red().redact_str(text).text.into_owned()
}

fn labels(text: &str) -> Vec<&'static str> {
    red()
        .redact_str(text)
        .found
        .iter()
        .map(|f| f.label.as_str())
        .collect()
}

/// Deterministic pseudo-random strings over an alphabet.
struct Gen(u64);

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const DIGITS: &str = "0123456789";

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn s(&mut self, alphabet: &str, n: usize) -> String {
        let a = alphabet.as_bytes();
        (0..n)
            .map(|_| char::from(a[(self.next() % a.len() as u64) as usize]))
            .collect()
    }
    /// Random, with at least one digit, one upper- and one lower-case letter.
    fn mixed(&mut self, alphabet: &str, n: usize) -> String {
        let mut s = self.s(alphabet, n.saturating_sub(3));
        let at = (self.next() % (s.len() as u64 + 1)) as usize;
        s.insert_str(at, "7kQ");
        s
    }
}

fn g(seed: u64) -> Gen {
    Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
}

/// One planted secret: the text put into a document and the part of it that
/// must disappear.
pub(crate) struct Plant {
    pub(crate) label: Label,
    pub(crate) text: String,
    pub(crate) secret: String,
}

pub(crate) fn plant(kind: usize, seed: u64) -> Plant {
    let mut g = g(seed);
    let whole = |label, text: String| Plant {
        label,
        secret: text.clone(),
        text,
    };
    match kind {
        0 => whole(
            Label::AnthropicKey,
            format!("sk-ant-api03-{}AA", g.mixed(B64URL, 93)),
        ),
        1 => whole(Label::OpenAiKey, format!("sk-{}", g.mixed(ALNUM, 48))),
        2 => whole(
            Label::OpenAiKey,
            format!("sk-proj-{}", g.mixed(B64URL, 156)),
        ),
        3 => {
            let p = ["ghp", "gho", "ghu", "ghs", "ghr"][(seed % 5) as usize];
            whole(Label::GithubToken, format!("{p}_{}", g.mixed(ALNUM, 36)))
        }
        4 => whole(
            Label::GithubToken,
            format!("github_pat_{}_{}", g.mixed(ALNUM, 22), g.mixed(ALNUM, 59)),
        ),
        5 => whole(Label::GitlabToken, format!("glpat-{}", g.mixed(B64URL, 20))),
        6 => whole(
            Label::SlackToken,
            format!(
                "xoxb-{}-{}-{}",
                g.s(DIGITS, 12),
                g.s(DIGITS, 13),
                g.mixed(ALNUM, 24)
            ),
        ),
        7 => {
            let path = format!(
                "services/T{}/B{}/{}",
                g.s(UPPER_DIGITS, 8),
                g.s(UPPER_DIGITS, 10),
                g.mixed(ALNUM, 24)
            );
            Plant {
                label: Label::SlackWebhook,
                text: format!("https://hooks.slack.com/{path}"),
                secret: path,
            }
        }
        8 => {
            let p = if seed.is_multiple_of(2) {
                "AKIA"
            } else {
                "ASIA"
            };
            whole(Label::AwsAccessKeyId, format!("{p}{}", g.s(BASE32, 16)))
        }
        9 => {
            let secret = g.mixed(B64, 40);
            Plant {
                label: Label::AwsSecretKey,
                text: format!("aws_secret_access_key = {secret}"),
                secret,
            }
        }
        10 => whole(Label::GoogleApiKey, format!("AIza{}", g.mixed(B64URL, 35))),
        11 => {
            let p = if seed.is_multiple_of(2) { "sk" } else { "rk" };
            whole(Label::StripeKey, format!("{p}_live_{}", g.mixed(ALNUM, 24)))
        }
        12 => whole(Label::NpmToken, format!("npm_{}", g.mixed(ALNUM, 36))),
        13 => whole(
            Label::PypiToken,
            format!("pypi-AgEIcHlwaS5vcmc{}", g.mixed(B64URL, 60)),
        ),
        14 => whole(
            Label::HuggingFaceToken,
            format!("hf_{}aZ", g.s(LETTERS, 32)),
        ),
        15 => whole(
            Label::Jwt,
            format!(
                "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
                g.mixed(B64URL, 40),
                g.mixed(B64URL, 43)
            ),
        ),
        16 => {
            let ty = ["RSA ", "EC ", "OPENSSH ", "DSA ", "ENCRYPTED ", ""][(seed % 6) as usize];
            let body = format!(
                "{}\n{}\n{}==",
                g.mixed(B64, 64),
                g.mixed(B64, 64),
                g.mixed(B64, 30)
            );
            Plant {
                label: Label::PrivateKey,
                text: format!(
                    "-----BEGIN {ty}PRIVATE KEY-----\n{body}\n-----END {ty}PRIVATE KEY-----"
                ),
                secret: body,
            }
        }
        17 => {
            let secret = g.mixed(B64URL, 40);
            Plant {
                label: Label::BearerToken,
                text: format!("Authorization: Bearer {secret}"),
                secret,
            }
        }
        18 => {
            let secret = g.mixed(ALNUM, 16);
            Plant {
                label: Label::UrlPassword,
                text: format!("postgres://app:{secret}@db.internal:5432/main"),
                secret,
            }
        }
        19 => {
            let secret = g.mixed(ALNUM, 14);
            Plant {
                label: Label::Password,
                text: format!("DB_PASSWORD={secret}"),
                secret,
            }
        }
        20 => {
            let secret = g.mixed(ALNUM, 24);
            Plant {
                label: Label::ApiKey,
                text: format!("\"api_key\": \"{secret}\""),
                secret,
            }
        }
        _ => plant_service_key(kind, &mut g),
    }
}

/// `text` with `secret` in it, labelled `label`.
fn planted(label: Label, text: String, secret: String) -> Plant {
    Plant {
        label,
        text,
        secret,
    }
}

/// Standard base64 with padding, for credentials built in tests.
fn b64(bytes: &[u8]) -> String {
    let a = B64.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(a[(n >> (18 - 6 * i)) as usize & 63]));
        }
        out.push_str(&"=".repeat(3 - chunk.len()));
    }
    out
}

/// A credential `user:password` in base64.
fn user_pass(g: &mut Gen) -> String {
    b64(format!("user{}:{}", g.s(DIGITS, 3), g.mixed(ALNUM, 14)).as_bytes())
}

/// The kinds added with the larger detector set: service keys and
/// credentials found by their context.
fn plant_service_key(kind: usize, g: &mut Gen) -> Plant {
    match kind {
        21 => {
            let secret = g.mixed(B64, 40);
            let text = format!("AKIA{},{secret}", g.s(BASE32, 16));
            planted(Label::AwsSecretKey, text, secret)
        }
        22 => {
            let secret = format!("{}==", g.mixed(B64, 86));
            let text = format!(
                "DefaultEndpointsProtocol=https;AccountName=acct{};AccountKey={secret};EndpointSuffix=core.windows.net",
                g.s(DIGITS, 4)
            );
            planted(Label::AzureKey, text, secret)
        }
        23 => {
            let sig = format!("{}=", g.mixed(B64, 43))
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D");
            let text = format!(
                "https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&sp=r&se=2026-01-01T00:00:00Z&spr=https&sig={sig}"
            );
            planted(Label::AzureSas, text, sig)
        }
        24 => {
            let body = g.mixed(B64, 64);
            let text = format!(
                r#"{{"type": "service_account", "project_id": "p-{}", "private_key_id": "{}", "private_key": "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n", "client_email": "x@p.iam.gserviceaccount.com"}}"#,
                g.s(DIGITS, 4),
                g.s("0123456789abcdef", 40)
            );
            planted(Label::PrivateKey, text, body)
        }
        25 => {
            let key = format!("SG.{}.{}", g.mixed(B64URL, 22), g.mixed(B64URL, 43));
            planted(Label::SendgridKey, key.clone(), key)
        }
        26 => {
            let key = format!("key-{}7a", g.s("0123456789abcdef", 30));
            planted(Label::MailgunKey, key.clone(), key)
        }
        27 => {
            let token = format!("{}:AA{}", g.s(DIGITS, 10), g.mixed(B64URL, 33));
            planted(Label::TelegramBotToken, token.clone(), token)
        }
        28 => {
            let token = g.mixed(B64URL, 68);
            let text = format!(
                "https://discord.com/api/webhooks/{}/{token}",
                g.s(DIGITS, 18)
            );
            planted(Label::DiscordWebhook, text, token)
        }
        29 => {
            let token = format!(
                "MT{}.{}.{}",
                g.mixed(ALNUM, 24),
                g.mixed(B64URL, 6),
                g.mixed(B64URL, 38)
            );
            planted(
                Label::DiscordToken,
                format!("Authorization: Bot {token}"),
                token,
            )
        }
        30 => {
            let auth = user_pass(g);
            planted(Label::DockerAuth, format!("\"auth\": \"{auth}\""), auth)
        }
        31 => {
            let auth = user_pass(g);
            planted(
                Label::BasicAuth,
                format!("Authorization: Basic {auth}"),
                auth,
            )
        }
        _ => {
            let secret = g.mixed(B64, 32);
            planted(Label::Key, format!("SIGNING_KEY={secret}"), secret)
        }
    }
}

const KINDS: usize = 33;

fn assert_redacted(text: &str, secret: &str, label: Label) {
    let r = red().redact_str(text);
    assert!(
        !r.text.contains(secret),
        "{label} not redacted in {text:?}: {:?}",
        r.text
    );
    assert!(
        r.found.iter().any(|f| f.label == label),
        "expected {label} in {text:?}, found {:?}",
        r.found
    );
    assert!(r.text.contains(&label.marker()), "{:?}", r.text);
}

fn assert_kept(text: &str) {
    let r = red().redact_str(text);
    assert!(
        r.is_unchanged() && r.found.is_empty(),
        "false positive in {text:?}: {:?}",
        r.text
    );
}

// ---------------------------------------------------- detectors: positives

#[test]
fn every_planted_kind_is_redacted_with_its_label() {
    for kind in 0..KINDS {
        for seed in 1..20 {
            let p = plant(kind, seed);
            assert_redacted(&format!("before {} after", p.text), &p.secret, p.label);
        }
    }
}

#[test]
fn anthropic_and_openai() {
    let mut g = g(1);
    let ant = format!("sk-ant-api03-{}", g.mixed(B64URL, 95));
    assert_eq!(
        redact(&format!("key {ant} leaked")),
        "key [REDACTED:ANTHROPIC_KEY] leaked"
    );
    let oa = format!("sk-{}", g.mixed(ALNUM, 48));
    assert_eq!(redact(&format!("'{oa}'")), "'[REDACTED:OPENAI_KEY]'");
    let proj = format!("sk-proj-{}", g.mixed(B64URL, 120));
    assert_eq!(labels(&proj), ["OPENAI_KEY"]);
    // Negatives: prose, identifiers, short or letter-only bodies.
    assert_kept("a risk-free plan; task-list; desk-lamp; sk-learn");
    assert_kept("sk-thisisonlyletterslongerthantwenty and sk-ant-short");
    assert_kept(&format!("risk-{}", g.mixed(ALNUM, 30)));
    assert_kept(&format!("sk-{}-component-name", g.mixed(ALNUM, 24)));
}

#[test]
fn github_and_gitlab() {
    let mut g = g(2);
    for p in ["ghp", "gho", "ghu", "ghs", "ghr"] {
        let t = format!("{p}_{}", g.mixed(ALNUM, 36));
        assert_eq!(redact(&format!("t={t}")), "t=[REDACTED:GITHUB_TOKEN]");
    }
    let pat = format!("github_pat_{}_{}", g.mixed(ALNUM, 22), g.mixed(ALNUM, 59));
    assert_eq!(labels(&format!("use {pat}")), ["GITHUB_TOKEN"]);
    let gl = format!("glpat-{}", g.mixed(B64URL, 20));
    assert_eq!(redact(&gl), "[REDACTED:GITLAB_TOKEN]");
    assert_kept("ghp_short gho_ glpat-short github_pat_x");
    assert_kept(&format!("xghp_{}", g.mixed(ALNUM, 36)));
    assert_kept(&format!("ghx_{}", g.mixed(ALNUM, 36)));
}

#[test]
fn slack() {
    let mut g = g(3);
    let t = format!("xoxp-{}-{}", g.s(DIGITS, 11), g.mixed(ALNUM, 30));
    assert_eq!(
        redact(&format!("SLACK {t}")),
        "SLACK [REDACTED:SLACK_TOKEN]"
    );
    let hook = format!(
        "https://hooks.slack.com/services/T{}/B{}/{}",
        g.s(UPPER_DIGITS, 8),
        g.s(UPPER_DIGITS, 8),
        g.mixed(ALNUM, 24)
    );
    assert_eq!(
        redact(&format!("curl -X POST {hook} -d @msg.json")),
        "curl -X POST https://hooks.slack.com/[REDACTED:SLACK_WEBHOOK] -d @msg.json"
    );
    assert_kept("see https://hooks.slack.com/ and https://api.slack.com/messaging/webhooks");
    assert_kept("xoxb-token-here and xoxa- and the xoxb-style tokens");
}

#[test]
fn aws() {
    let mut g = g(4);
    let id = format!("AKIA{}", g.s(BASE32, 16));
    assert_eq!(
        redact(&format!("aws_access_key_id={id}")),
        "aws_access_key_id=[REDACTED:AWS_ACCESS_KEY_ID]"
    );
    let sid = format!("ASIA{}", g.s(BASE32, 16));
    assert_eq!(labels(&format!("id: {sid}.")), ["AWS_ACCESS_KEY_ID"]);
    let secret = g.mixed(B64, 40);
    for text in [
        format!("aws_secret_access_key = {secret}"),
        format!("AWS_SECRET_ACCESS_KEY=\"{secret}\""),
        format!("{{\"SecretAccessKey\": \"{secret}\"}}"),
    ] {
        assert_redacted(&text, &secret, Label::AwsSecretKey);
    }
    assert_kept("AKIA1234 and ASIA region and MAKIAABCDEFGHIJKLMNOP");
    assert_kept(&format!("AKIA{}X", g.s(BASE32, 16)));
    assert_kept("aws_secret_access_key = os.environ[\"AWS_SECRET_ACCESS_KEY\"]");
    assert_kept("aws_secret_access_key: ${{ secrets.AWS_SECRET }}");
}

#[test]
fn google_stripe_npm_pypi_huggingface() {
    let mut g = g(5);
    let google = format!("AIza{}", g.mixed(B64URL, 35));
    assert_eq!(
        redact(&format!("key={google}&q=x")),
        "key=[REDACTED:GOOGLE_API_KEY]&q=x"
    );
    for p in ["sk_live_", "rk_live_"] {
        let t = format!("{p}{}", g.mixed(ALNUM, 24));
        assert_eq!(labels(&format!("stripe {t}")), ["STRIPE_KEY"]);
    }
    let npm = format!("npm_{}", g.mixed(ALNUM, 36));
    assert_eq!(
        redact(&format!("//registry.npmjs.org/:_authToken={npm}")),
        "//registry.npmjs.org/:_authToken=[REDACTED:NPM_TOKEN]"
    );
    let pypi = format!("pypi-AgEIcHlwaS5vcmc{}", g.mixed(B64URL, 80));
    assert_eq!(labels(&format!("password = {pypi}")), ["PYPI_TOKEN"]);
    let hf = format!("hf_{}Qz", g.s(LETTERS, 32));
    assert_eq!(
        redact(&format!("HF {hf}")),
        "HF [REDACTED:HUGGINGFACE_TOKEN]"
    );
    assert_kept("AIzaSy is the prefix; sk_live_ keys; mask_live_value");
    assert_kept("npm_config_cache npm_lifecycle_event npm_package_json_version");
    assert_kept("pip install pypi-server; pypi-AgEshort");
    assert_kept("from huggingface_hub import hf_hub_download; shelf_life");
    assert_kept(&format!("hf_{}", "abcdefghijklmnopqrstuvwxyzabcdefgh"));
}

#[test]
fn jwt() {
    let mut g = g(6);
    let jwt = format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
        g.mixed(B64URL, 60),
        g.mixed(B64URL, 86)
    );
    assert_eq!(redact(&format!("token {jwt}")), "token [REDACTED:JWT]");
    // An assignment whose value is a JWT keeps the specific label.
    assert_eq!(labels(&format!("id_token={jwt}")), ["JWT"]);
    // A single base64 JSON segment is not a JWT.
    assert_kept("payload eyJmb28iOiJiYXIifQ== and eyJ alone");
}

#[test]
fn pem_private_keys() {
    let mut g = g(7);
    for ty in ["RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED ", "", "PGP "] {
        let block_kw = if ty == "PGP " { " BLOCK" } else { "" };
        let body = format!(
            "{}\n{}\n{}=",
            g.mixed(B64, 64),
            g.mixed(B64, 64),
            g.mixed(B64, 20)
        );
        let text = format!(
            "key:\n-----BEGIN {ty}PRIVATE KEY{block_kw}-----\n{body}\n-----END {ty}PRIVATE KEY{block_kw}-----\ndone"
        );
        assert_eq!(redact(&text), "key:\n[REDACTED:PRIVATE_KEY]\ndone", "{ty}");
    }
    // JSON-escaped newlines (a key inside a JSON text).
    let body = g.mixed(B64, 64);
    let text = format!(
        r#"{{"private_key": "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n", "x": 1}}"#
    );
    assert_eq!(
        redact(&text),
        r#"{"private_key": "[REDACTED:PRIVATE_KEY]\n", "x": 1}"#
    );
    // Cut output without an END line: header and key material go.
    let body = format!("{}\n{}", g.mixed(B64, 64), g.mixed(B64, 40));
    let text = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\n... (truncated)");
    let out = redact(&text);
    assert!(
        !out.contains(&body[..64]) && !out.contains(&body[65..]),
        "{out}"
    );
    assert!(out.starts_with("[REDACTED:PRIVATE_KEY]"), "{out}");
    assert!(out.ends_with("... (truncated)"), "{out}");
    assert_kept(
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----",
    );
    assert_kept("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
}

#[test]
fn authorization_and_bearer() {
    let mut g = g(8);
    let t = g.mixed(B64URL, 40);
    assert_eq!(
        redact(&format!(
            "curl -H \"Authorization: Bearer {t}\" https://api.x.io"
        )),
        "curl -H \"Authorization: Bearer [REDACTED:BEARER_TOKEN]\" https://api.x.io"
    );
    assert_eq!(
        redact(&format!("authorization: token {t}")),
        "authorization: token [REDACTED:BEARER_TOKEN]"
    );
    assert_eq!(
        redact("Authorization: Basic dXNlcjpwYXNzd29yZA=="),
        "Authorization: Basic [REDACTED:BASIC_AUTH]"
    );
    assert_eq!(
        redact(&format!("{{\"Authorization\": \"Bearer {t}\"}}")),
        "{\"Authorization\": \"Bearer [REDACTED:BEARER_TOKEN]\"}"
    );
    assert_eq!(
        redact(&format!("send Bearer {t} along")),
        "send Bearer [REDACTED:BEARER_TOKEN] along"
    );
    // `"auth` (a Docker credential's key) starts this key too.
    assert_eq!(
        redact("{\"authorization\": \"Basic dXNlcjpwYXNzd29yZA==\"}"),
        "{\"authorization\": \"Basic [REDACTED:BASIC_AUTH]\"}"
    );
    assert_kept("curl -H \"Authorization: Bearer $TOKEN\" -H 'Authorization: Bearer ${API_TOKEN}'");
    assert_kept("headers = {\"Authorization\": f\"Bearer {token}\"}");
    assert_kept("The Authorization header must be set. The bearer of bad news.");
    assert_kept("Authorization: Bearer <token> and Bearer authentication scheme");
    assert_kept("-H \"Authorization: Bearer dev-token\" -H 'Authorization: Bearer YOUR_API_KEY'");
}

#[test]
fn url_passwords() {
    assert_eq!(
        redact("DATABASE_URL postgres://admin:s3cr3tP4ss@db.example.com:5432/app"),
        "DATABASE_URL postgres://admin:[REDACTED:URL_PASSWORD]@db.example.com:5432/app"
    );
    assert_eq!(
        redact("redis://:hunter2@localhost:6379/0"),
        "redis://:[REDACTED:URL_PASSWORD]@localhost:6379/0"
    );
    assert_eq!(
        redact("https://user:p@ss:w0rd@git.example.org/repo.git"),
        "https://user:[REDACTED:URL_PASSWORD]@git.example.org/repo.git"
    );
    assert_kept("https://example.com:8080/path?a=b and http://localhost:3000");
    assert_kept("git clone git@github.com:org/repo.git; ssh://git@host:22/x");
    assert_kept("https://user@host/ and https://github.com/foo/bar@main");
    assert_kept("postgres://app:${DB_PASSWORD}@db:5432/app");
    assert_kept("mailto:someone@example.com");
    assert_kept("git push https://YOUR_USERNAME:YOUR_TOKEN@github.com/YOUR_USERNAME/repo");
}

#[test]
fn assignments() {
    let cases = [
        ("DB_PASSWORD=hunter2x", "DB_PASSWORD=[REDACTED:PASSWORD]"),
        (
            "export GITHUB_TOKEN=\"abc123def456\"",
            "export GITHUB_TOKEN=\"[REDACTED:TOKEN]\"",
        ),
        (
            "{\"api_key\": \"a1b2c3d4e5\", \"n\": 1}",
            "{\"api_key\": \"[REDACTED:API_KEY]\", \"n\": 1}",
        ),
        ("password: hunter2!", "password: [REDACTED:PASSWORD]"),
        (
            "client_secret = 'Zx9-Qw8-Er7'",
            "client_secret = '[REDACTED:SECRET]'",
        ),
        ("apiKey: \"AbC123xYz\",", "apiKey: \"[REDACTED:API_KEY]\","),
        (
            "run --token=abc123def now",
            "run --token=[REDACTED:TOKEN] now",
        ),
        (
            "GET /cb?access_token=abc123def456&x=1",
            "GET /cb?access_token=[REDACTED:TOKEN]&x=1",
        ),
        (
            "$password = 'pa55word';",
            "$password = '[REDACTED:PASSWORD]';",
        ),
        (
            "SECRET_KEY=django-insecure-9x",
            "SECRET_KEY=[REDACTED:SECRET]",
        ),
        (
            "passwd => \"letmein99\"",
            "passwd => \"[REDACTED:PASSWORD]\"",
        ),
        (
            "{\\\"api_key\\\": \\\"a1b2c3d4e5\\\"}",
            "{\\\"api_key\\\": \\\"[REDACTED:API_KEY]\\\"}",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(redact(input), want, "{input}");
    }
    for code in [
        "let token = get_token();",
        "password_field = forms.CharField()",
        "interface A { token: string; password: string }",
        "def login(password: str, token: Optional[str]) -> None:",
        "max_tokens: 4096, token_count = 12",
        "if token == \"abc\": pass",
        "let t = Token::new(); let s = Secret::from(x);",
        "apiKey: process.env.API_KEY,",
        "password = \"\"",
        "secret: true",
        "private_key = \"~/.ssh/id_ed25519\"",
        "private_key_path: /home/u/.ssh/id_rsa",
        "secret: /run/secrets/db_password",
        "token = self.token",
        "password = os.environ[\"PASSWORD\"]",
        "\"token\": \"${{ secrets.GH_TOKEN }}\"",
        "token: <your token here>",
        "The password is required. Enter your password: ",
        "api_key = settings.API_KEY  # from env",
        "password: ********",
        "const secret = await getSecret(name);",
        "token = &args.token;",
        "let password_hash = hash(password);",
        "\"token\": \"The token you entered is invalid\"",
        "secretName: db-creds",
        "Tokens: 1.2k, token: 0.5",
        "GITHUB_TOKEN=op://Project/Deploy/GithubToken",
        "\"cli.store_password\": \"\u{662f}\u{5426}\u{5b89}\u{5168}\u{5b58}\u{50a8}\"",
        "password: YOUR_PASSWORD",
    ] {
        assert_kept(code);
    }
}

#[test]
fn aws_secret_next_to_its_key_id() {
    let mut g = g(11);
    let id = format!("AKIA{}", g.s(BASE32, 16));
    let secret = g.mixed(B64, 40);
    for text in [
        format!("{id},{secret}"),
        format!("user,,{id},{secret},https://console"),
        format!("key id {id} secret {secret}"),
        format!("\"{id}\", \"{secret}\""),
    ] {
        let out = redact(&text);
        assert!(!out.contains(&secret) && !out.contains(&id), "{out}");
        assert!(out.contains("[REDACTED:AWS_SECRET_KEY]"), "{out}");
    }
    // Near misses: a git SHA (no upper case), a word of 41, the next line,
    // too far away.
    let sha = g.s("0123456789abcdef", 40);
    for text in [
        format!("{id} at commit {sha}"),
        format!("{id} {}", g.mixed(B64, 41)),
        format!("{id}\n{secret}"),
        format!("{id}\\n{secret}"),
        format!("{id} {} {secret}", "x".repeat(64)),
    ] {
        let out = redact(&text);
        assert!(!out.contains(&id), "{out}");
        assert!(!out.contains("AWS_SECRET_KEY"), "{out}");
    }
}

#[test]
fn azure_keys_and_shared_access_signatures() {
    let mut g = g(12);
    let key = format!("{}==", g.mixed(B64, 86));
    let conn = format!(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"
    );
    assert_eq!(
        redact(&conn),
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[REDACTED:AZURE_KEY];EndpointSuffix=core.windows.net"
    );
    let sb = format!(
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={}=",
        g.mixed(B64, 43)
    );
    assert_eq!(labels(&sb), ["AZURE_KEY"]);
    assert_eq!(
        labels(&format!("AZURE_STORAGE_KEY=\"{key}\"")),
        ["AZURE_KEY"]
    );
    let sig = format!("{}=", g.mixed(B64, 43));
    let encoded = sig
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    for text in [
        format!("https://a.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig={encoded}"),
        format!("BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sig={sig}"),
        format!("\"url\": \"https://a.blob.core.windows.net/c?sp=r\\u0026sig={encoded}\""),
    ] {
        assert_redacted(&text, &encoded.replace("%3D", ""), Label::AzureSas);
    }
    // Near misses: the emulator switch, a placeholder, a SHA-256 in hex,
    // a signature of another length, `sig=` inside a word.
    assert_kept("UseDevelopmentStorage=true;AccountName=devstoreaccount1");
    assert_kept("AccountKey=<your-account-key>;EndpointSuffix=core.windows.net");
    assert_kept(&format!(
        "https://x.io/f?sig={}",
        g.s("0123456789abcdef", 64)
    ));
    assert_kept(&format!("https://x.io/f?sig={}=", g.mixed(B64, 42)));
    assert_kept(&format!("https://x.io/f?xsig={encoded}"));
}

#[test]
fn gcp_service_account_json() {
    let mut g = g(13);
    let body = format!("{}\\n{}", g.mixed(B64, 64), g.mixed(B64, 40));
    let key_id = g.s("0123456789abcdef", 40);
    let sa = format!(
        r#"{{"type": "service_account", "project_id": "demo-1", "private_key_id": "{key_id}", "private_key": "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n", "client_email": "ci@demo-1.iam.gserviceaccount.com"}}"#
    );
    // As text (a `cat` of the file) and as a JSON document.
    let out = redact(&sa);
    assert!(!out.contains(&body[..64]), "{out}");
    assert!(out.contains("[REDACTED:PRIVATE_KEY]"), "{out}");
    let mut found = Vec::new();
    let doc = red().redact_json(&sa, &mut found).unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["private_key"], "[REDACTED:PRIVATE_KEY]\n");
    // The key id names the key; it is no secret and stays.
    assert_eq!(v["private_key_id"], key_id.as_str());
    assert_eq!(v["client_email"], "ci@demo-1.iam.gserviceaccount.com");
    assert_kept(&format!(
        r#"{{"private_key_id": "{key_id}", "private_key": ""}}"#
    ));
}

#[test]
fn sendgrid_mailgun_telegram() {
    let mut g = g(14);
    let sg = format!("SG.{}.{}", g.mixed(B64URL, 22), g.mixed(B64URL, 43));
    assert_eq!(
        redact(&format!("SENDGRID={sg};")),
        "SENDGRID=[REDACTED:SENDGRID_KEY];"
    );
    let mg = format!("key-{}9f", g.s("0123456789abcdef", 30));
    assert_eq!(redact(&format!("api:{mg}")), "api:[REDACTED:MAILGUN_KEY]");
    let bot = format!("{}:AA{}", g.s(DIGITS, 10), g.mixed(B64URL, 33));
    assert_eq!(
        redact(&format!("curl https://api.telegram.org/bot{bot}/getMe")),
        "curl https://api.telegram.org/bot[REDACTED:TELEGRAM_BOT_TOKEN]/getMe"
    );
    assert_eq!(labels(&format!("token {bot}")), ["TELEGRAM_BOT_TOKEN"]);
    // Near misses: short segments, prefixes inside words, letters only,
    // the public `pubkey-`, a MAC address, the documentation's sample.
    assert_kept(&format!(
        "SG.{}.{}",
        g.mixed(B64URL, 22),
        g.mixed(B64URL, 42)
    ));
    assert_kept(&format!(
        "ASG.{}.{}",
        g.mixed(B64URL, 22),
        g.mixed(B64URL, 43)
    ));
    assert_kept(&format!("pubkey-{}", g.s("0123456789abcdef", 32)));
    assert_kept("key-value store; key-abcdefabcdefabcdefabcdefabcdefab");
    assert_kept(&format!("{}:AA{}", g.s(DIGITS, 10), g.mixed(B64URL, 32)));
    assert_kept(&format!("v{}:AA{}", g.s(DIGITS, 10), g.mixed(B64URL, 33)));
    assert_kept("ether 00:AA:BB:CC:DD:EE and 123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11");
}

#[test]
fn discord_webhooks_and_bot_tokens() {
    let mut g = g(15);
    let hook = g.mixed(B64URL, 68);
    let id = g.s(DIGITS, 18);
    assert_eq!(
        redact(&format!(
            "POST https://discord.com/api/webhooks/{id}/{hook}"
        )),
        format!("POST https://discord.com/api/webhooks/{id}/[REDACTED:DISCORD_WEBHOOK]")
    );
    assert_eq!(
        labels(&format!(
            "https://discordapp.com/api/v10/webhooks/{id}/{hook}?wait=true"
        )),
        ["DISCORD_WEBHOOK"]
    );
    let bot = format!(
        "MT{}.{}.{}",
        g.mixed(ALNUM, 24),
        g.mixed(B64URL, 6),
        g.mixed(B64URL, 38)
    );
    assert_eq!(
        redact(&format!("-H \"Authorization: Bot {bot}\"")),
        "-H \"Authorization: Bot [REDACTED:DISCORD_TOKEN]\""
    );
    assert_kept(&format!("https://discord.com/channels/{id}/{id}"));
    assert_kept("https://discord.com/api/webhooks/ and Authorization: Bot YOUR_BOT_TOKEN");
    assert_kept("Authorization: Bot ${DISCORD_TOKEN}");
}

#[test]
fn docker_auths_and_basic_credentials() {
    let mut g = g(16);
    let auth = user_pass(&mut g);
    let config = format!(
        "{{\n  \"auths\": {{\n    \"ghcr.io\": {{\n      \"auth\": \"{auth}\"\n    }}\n  }}\n}}"
    );
    assert_redacted(&config, &auth, Label::DockerAuth);
    // Inside a JSON document and inside JSON-escaped text.
    let mut found = Vec::new();
    let doc = red().redact_json(&config, &mut found).unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["auths"]["ghcr.io"]["auth"], "[REDACTED:DOCKER_AUTH]");
    let escaped = serde_json::to_string(&config).unwrap();
    assert!(!redact(&escaped).contains(&auth));
    let basic = user_pass(&mut g);
    assert_eq!(
        redact(&format!("Authorization: Basic {basic}")),
        "Authorization: Basic [REDACTED:BASIC_AUTH]"
    );
    // Near misses: no colon inside, not base64, other keys, prose.
    assert_kept(&format!("\"auth\": \"{}\"", b64(b"justauser")));
    assert_kept("\"auth\": \"token\", \"author\": \"dXNlcjpwYXNz\", \"auths\": {}");
    assert_kept(&format!("\"authority\": \"{}\"", user_pass(&mut g)));
    assert_kept("Authorization: Basic authentication is required");
    assert_kept("WWW-Authenticate: Basic realm=\"registry\"");
}

#[test]
fn high_entropy_values_under_key_names() {
    let mut g = g(17);
    let v = g.mixed(B64, 32);
    for (text, label) in [
        (format!("SIGNING_KEY={v}"), "KEY"),
        (format!("encryptionKey: \"{v}\""), "KEY"),
        (format!("{{\"license-key\": \"{v}\"}}"), "KEY"),
        (format!("DEPLOY_TOKEN={v}"), "TOKEN"),
        (format!("WEBHOOK_SECRET=\"{v}\""), "SECRET"),
        (format!("PASSWORD={v}"), "PASSWORD"),
    ] {
        assert_eq!(labels(&text), [label], "{text}");
        assert!(!redact(&text).contains(&v));
    }
    let uuid = "3f1e2d4c-5b6a-4978-8c9d-0e1f2a3b4c5d";
    let sha = g.s("0123456789abcdef", 40);
    for text in [
        format!("sort_key = \"{v}\""),
        format!("PUBLIC_KEY={v}"),
        format!("monkey = \"{v}\""),
        format!("KEY={v}"),
        format!("idempotency_key: {uuid}"),
        format!("cache_key = \"{sha}\""),
        format!("SIGNING_KEY={sha}"),
        "SIGNING_KEY=changeme-please".to_owned(),
        "key_path = \"config/keys/dev.pem\"".to_owned(),
        "primaryKey: \"userId\"".to_owned(),
    ] {
        assert_kept(&text);
    }
}

// -------------------------------------------------------------- precision

#[test]
fn ordinary_content_is_untouched() {
    let mut g = g(9);
    let sha = g.s("0123456789abcdef", 40);
    let uuid = "3f1e2d4c-5b6a-4978-8c9d-0e1f2a3b4c5d";
    let image: String = (0..4000)
        .map(|i| {
            let a = B64.as_bytes();
            char::from(a[(i * 7 + i / 13) % 64])
        })
        .collect();
    let texts = [
        format!("commit {sha}\nMerge: {} {}", &sha[..7], &sha[7..14]),
        format!("session {uuid} in /home/u/.claude/projects/-home-u/{uuid}.jsonl"),
        format!("{{\"type\":\"image\",\"source\":{{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo{image}\"}}}}"),
        "The model uses a risk-free approach; tokens are counted per request.\n\
         ```rust\nfn parse(token: &Token) -> Result<Ast> { let secret_len = 3; }\n```"
            .to_owned(),
        "See https://docs.rs/regex/latest/regex/ and http://localhost:8080/api?page=2".to_owned(),
        "{\"usage\":{\"input_tokens\":1200,\"output_tokens\":87,\"cache_read_input_tokens\":0}}"
            .to_owned(),
        "export PATH=$HOME/.cargo/bin:$PATH; git push origin HEAD:refs/heads/main".to_owned(),
        // Lockfile hashes: npm, Cargo, poetry, yarn.
        format!("\"integrity\": \"sha512-{}==\"", &image[..86]),
        format!("checksum = \"{}\"", g.s("0123456789abcdef", 64)),
        format!("hash = \"sha256:{}\"", g.s("0123456789abcdef", 64)),
        format!("resolved \"https://registry.yarnpkg.com/x/-/x-1.0.0.tgz#{sha}\""),
        format!("![shot](data:image/png;base64,iVBORw0KGgo{image}=)"),
        format!("uuid {uuid} sha {sha} AKIA-like ids: AKIA{}", "2".repeat(15)),
    ];
    for t in &texts {
        assert_kept(t);
    }
}

// ------------------------------------------------------ options and stats

#[test]
fn allow_list_keeps_known_fakes() {
    let mut g = g(10);
    let fake = format!("sk-ant-api03-{}", g.mixed(B64URL, 40));
    let real = format!("sk-ant-api03-{}", g.mixed(B64URL, 40));
    let opts = RedactionOptions {
        allow: vec![fake.clone(), "hunter2x".into()],
        ..RedactionOptions::default()
    };
    let r = Redactor::new(&opts).unwrap();
    let text = format!("docs {fake} real {real} DB_PASSWORD=hunter2x");
    let out = r.redact_str(&text);
    assert_eq!(
        out.text,
        format!("docs {fake} real [REDACTED:ANTHROPIC_KEY] DB_PASSWORD=hunter2x")
    );
    assert_eq!(out.found.len(), 1);
}

#[test]
fn extra_patterns_and_errors() {
    let opts = RedactionOptions {
        extra_patterns: vec![r"corp-[0-9a-f]{8}".into(), r"ticket secret (\w+)".into()],
        ..RedactionOptions::default()
    };
    let r = Redactor::new(&opts).unwrap();
    assert_eq!(
        r.redact_str("id corp-deadbeef and ticket secret ABC").text,
        "id [REDACTED:CUSTOM] and ticket secret [REDACTED:CUSTOM]"
    );
    let e = Redactor::new(&RedactionOptions {
        extra_patterns: vec!["fine".into(), "(unclosed".into()],
        ..RedactionOptions::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("redaction.extra_patterns[1]") && e.contains("(unclosed"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let e = Redactor::new(&RedactionOptions {
        allow: vec![String::new()],
        ..RedactionOptions::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("redaction.allow[0]"), "{e}");
}

#[test]
fn disabled_changes_nothing() {
    let p = plant(0, 1);
    let r = Redactor::new(&RedactionOptions {
        enabled: false,
        ..RedactionOptions::default()
    })
    .unwrap();
    assert!(!r.is_enabled());
    let out = r.redact_str(&p.text);
    assert!(out.is_unchanged());
    let mut ev = event(Payload::UserMessage {
        text: p.text.clone(),
        attachments: 0,
    });
    let mut stats = RedactionStats::default();
    r.redact_event(&mut ev, &mut stats);
    assert!(stats.is_empty());
    assert!(serde_json::to_string(&ev).unwrap().contains(&p.text));
}

#[test]
fn redaction_is_idempotent() {
    let red = red();
    for kind in 0..KINDS {
        let p = plant(kind, 3);
        let once = red.redact_str(&format!("x {} y", p.text)).text.into_owned();
        let twice = red.redact_str(&once);
        assert!(twice.is_unchanged(), "{once:?} -> {:?}", twice.text);
    }
}

// ------------------------------------------------------------------ events

fn event(payload: Payload) -> Event {
    Event::new(
        ProviderId::Claude,
        "s1",
        "ev-1",
        Source {
            record: "test".into(),
            offset: 0,
            file: None,
        },
        payload,
    )
}

#[test]
fn every_payload_kind_is_covered() {
    let p = plant(3, 42);
    let s = &p.text;
    let json = serde_json::to_string(&serde_json::json!({
        "command": format!("gh auth login --with-token {s}"),
        "env": {"API_TOKEN": "v4lue-9x", "n": 3},
        "list": [s, 1, null],
        "nested": {"headers": {"Authorization": format!("Bearer {s}")}},
    }))
    .unwrap();
    let payloads = vec![
        Payload::UserMessage {
            text: format!("my key is {s}"),
            attachments: 0,
        },
        Payload::KatoCommand {
            raw: format!("::export /tmp/{s}"),
            line: 0,
            message_id: "m".into(),
            error: Some(format!("`{s}` is not an absolute path")),
        },
        Payload::DecisionResponse {
            prompt_id: "p".into(),
            text: s.clone(),
        },
        Payload::AssistantMessage { text: s.clone() },
        Payload::Thinking { text: s.clone() },
        Payload::ToolCall {
            tool_call_id: "t".into(),
            name: "Bash".into(),
            input: raw_from_str(&json),
        },
        Payload::ToolResult {
            tool_call_id: "t".into(),
            output: format!("out: {s}\n").into(),
            is_error: false,
        },
        Payload::DecisionPrompt {
            prompt_id: "p".into(),
            name: "plan".into(),
            text: s.clone(),
        },
        Payload::SystemMessage {
            category: SystemCategory::Notice,
            text: s.clone(),
        },
        Payload::ProviderInfo {
            topic: "env".into(),
            data: raw_from_str(&json),
        },
        Payload::ProviderRaw {
            record: raw_from_str(&json),
        },
    ];
    assert_eq!(payloads.len(), kato::event::Kind::ALL.len());
    let red = red();
    let mut stats = RedactionStats::default();
    for payload in payloads {
        let kind = payload.kind();
        let mut ev = event(payload);
        red.redact_event(&mut ev, &mut stats);
        let out = serde_json::to_string(&ev).unwrap();
        assert!(!out.contains(s.as_str()), "{kind:?}: {out}");
        assert!(!out.contains("v4lue-9x"), "{kind:?}: {out}");
        assert_eq!(ev.kind(), kind);
        let raw = match &ev.payload {
            Payload::ToolCall { input: r, .. }
            | Payload::ProviderInfo { data: r, .. }
            | Payload::ProviderRaw { record: r } => Some(r.get()),
            _ => None,
        };
        if let Some(raw) = raw {
            // Still valid JSON, with everything but the secrets kept.
            let v: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(v["env"]["API_TOKEN"], "[REDACTED:TOKEN]");
            assert_eq!(v["env"]["n"], 3);
            assert_eq!(v["list"][0], "[REDACTED:GITHUB_TOKEN]");
            assert_eq!(v["list"][2], serde_json::Value::Null);
            assert_eq!(
                v["command"],
                "gh auth login --with-token [REDACTED:GITHUB_TOKEN]"
            );
            assert_eq!(
                v["nested"]["headers"]["Authorization"],
                "Bearer [REDACTED:GITHUB_TOKEN]"
            );
        }
    }
    // 8 text kinds with one secret each (the command twice: its line and
    // its error message), 3 JSON kinds with four each.
    assert_eq!(stats.total(), 9 + 3 * 4);
    assert_eq!(stats.counts[&Label::GithubToken], 9 + 3 * 3);
    assert_eq!(stats.counts[&Label::Token], 3);
    assert!(stats.redactions.iter().all(|r| r.event_id == "ev-1"));
    assert!(stats.redactions.iter().any(|r| r.bytes == s.len()));
    // The statistics never hold a secret.
    let st = serde_json::to_string(&stats).unwrap();
    assert!(!st.contains(s.as_str()) && !st.contains("v4lue"), "{st}");
}

#[test]
fn json_escapes_cannot_hide_a_secret() {
    let p = plant(1, 7);
    let escaped: String = p
        .text
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let json = format!("{{\"a\":\"{escaped}\",\"u\":\"https:\\/\\/u:pw12345x@h\"}}");
    let mut ev = event(Payload::ProviderRaw {
        record: raw_from_str(&json),
    });
    let mut stats = RedactionStats::default();
    red().redact_event(&mut ev, &mut stats);
    let Payload::ProviderRaw { record } = &ev.payload else {
        unreachable!()
    };
    let v: serde_json::Value = serde_json::from_str(record.get()).unwrap();
    assert_eq!(v["a"], "[REDACTED:OPENAI_KEY]");
    assert_eq!(v["u"], "https://u:[REDACTED:URL_PASSWORD]@h");
    assert_eq!(stats.total(), 2);
}

/// A control character escaped as `\u00XX` right before a secret in JSON
/// (a tool input, a provider record) is no word character: the secret
/// starts a word there, as it does in the decoded text.
#[test]
fn a_secret_after_an_escaped_control_in_json_is_redacted() {
    let red = red();
    for kind in 0..KINDS {
        let p = plant(kind, 11);
        for control in ['\u{0}', '\u{1b}', '\u{7}'] {
            let text = format!("{control}{}", p.text);
            if red.redact_str(&text).found.is_empty() {
                continue;
            }
            let json = serde_json::to_string(&serde_json::json!({ "a": text })).unwrap();
            let mut found = Vec::new();
            let out = red.redact_json(&json, &mut found);
            let out = out.unwrap_or_else(|| panic!("kind {kind}: nothing redacted in {json}"));
            assert!(!out.contains(&p.secret), "kind {kind}: {out}");
        }
    }
}

#[test]
fn json_structure_is_never_touched() {
    let json = r#"{"password": -1.5e10, "token": 123456, "secret": true, "api_key": "k3y-v4lue", "n": null}"#;
    let mut found = Vec::new();
    let out = red().redact_json(json, &mut found).unwrap();
    assert_eq!(
        out,
        r#"{"password": -1.5e10, "token": 123456, "secret": true, "api_key": "[REDACTED:API_KEY]", "n": null}"#
    );
    assert_eq!(found.len(), 1);
    let json = r#"{"password": -1.5e10}"#;
    assert_eq!(red().redact_json(json, &mut found), None);
}

#[test]
fn json_strings_are_scanned_with_their_escapes() {
    let p = plant(3, 11);
    let bearer = plant(17, 11);
    let text = format!(
        "out:\n{}\tDB_PASSWORD=hunter2x\r\n{}\npassword: \"s3cr3t-pw\"\nend\\n{}",
        p.text, bearer.text, p.text
    );
    let json = serde_json::to_string(&serde_json::json!({ "output": text, "n": 1 })).unwrap();
    let mut found = Vec::new();
    let out = red().redact_json(&json, &mut found).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["output"],
        "out:\n[REDACTED:GITHUB_TOKEN]\tDB_PASSWORD=[REDACTED:PASSWORD]\r\n\
         Authorization: Bearer [REDACTED:BEARER_TOKEN]\npassword: \"[REDACTED:PASSWORD]\"\n\
         end\\n[REDACTED:GITHUB_TOKEN]"
    );
    assert_eq!(found.len(), 5);
}

// -------------------------------------------------------------- properties

fn surrounding() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -~\n\t\u{e9}\u{20ac}\u{1f600}]{0,80}").unwrap()
}

/// Text around a tool output's secret: printable ASCII, every C0 control,
/// quotes and backslashes (all escaped in its JSON literal), DEL, and
/// letters JSON does not escape.
fn held_context() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ -~\u{0}-\u{1f}\"\\\\\u{7f}\u{e9}\u{2028}]{0,40}").unwrap()
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A planted secret of any kind, anywhere in secret-free text, is gone
    /// from the output, and every byte around it survives in order.
    #[test]
    fn planted_secrets_vanish_and_context_survives(
        kind in 0..KINDS,
        seed in any::<u64>(),
        base in surrounding(),
        at in 0.0f64..=1.0,
        seps in (prop::sample::select(vec![" ", "\n", "\t", "\r\n"]),
                 prop::sample::select(vec![" ", "\n", "\t", "\r\n"])),
    ) {
        let red = red();
        prop_assume!(red.redact_str(&base).found.is_empty());
        let p = plant(kind, seed);
        let cut = floor_boundary(&base, (base.len() as f64 * at) as usize);
        let (before, after) = base.split_at(cut);
        let head = format!("{before}{}", seps.0);
        let tail = format!("{}{after}", seps.1);
        let text = format!("{head}{}{tail}", p.text);
        let out = red.redact_str(&text);
        prop_assert!(!out.text.contains(&p.secret), "{:?}", out.text);
        prop_assert!(out.text.starts_with(&head), "{:?}", out.text);
        prop_assert!(out.text.ends_with(&tail), "{:?}", out.text);
        prop_assert!(!out.found.is_empty());
    }

    /// The same inside JSON: the secret is gone and the JSON stays valid.
    #[test]
    fn planted_secrets_in_json_vanish_and_json_stays_valid(
        kind in 0..KINDS,
        seed in any::<u64>(),
        key in "[a-z_]{1,12}",
        base in surrounding(),
    ) {
        let red = red();
        prop_assume!(red.redact_str(&base).found.is_empty());
        let p = plant(kind, seed);
        let value = serde_json::json!({
            key.clone(): format!("{base} {} {base}", p.text),
            "K": [base.clone(), 1, {"n": null}],
        });
        let json = serde_json::to_string(&value).unwrap();
        let mut found = Vec::new();
        let out = red.redact_json(&json, &mut found).unwrap();
        prop_assert!(!out.contains(&p.secret));
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        prop_assert_eq!(&back["K"], &value["K"]);
        prop_assert!(!found.is_empty());
    }

    /// A tool output held as its JSON literal (as a JSONL export holds a
    /// Codex output) is redacted exactly as the same text held decoded: a
    /// planted secret of any kind or none, after a key word or not, with
    /// quotes, backslashes, line breaks and other controls around it.
    #[test]
    fn a_tool_output_held_as_json_is_redacted_as_its_text(
        kind in 0..KINDS,
        seed in any::<u64>(),
        planted in any::<bool>(),
        lead in prop::sample::select(vec!["", "key=", "token: ", "password=\"", "\"api_key\": \"",
            "Authorization: Bearer ", "export SECRET=", "https://u:", "\\n", "\\\"", "-----BEGIN "]),
        before in held_context(),
        after in held_context(),
    ) {
        let red = red();
        let secret = if planted { plant(kind, seed).text } else { String::new() };
        let text = format!("{before}{lead}{secret}{after}");
        let literal = serde_json::to_string(&text).unwrap();
        let held = Text::from_json(&serde_json::value::RawValue::from_string(literal).unwrap());
        prop_assert!(held.is_some());
        let result = |output: Text| {
            let mut ev = event(Payload::ToolResult { tool_call_id: "c".into(), output, is_error: false });
            let mut stats = RedactionStats::default();
            red.redact_event(&mut ev, &mut stats);
            let mut line = Vec::new();
            kato::render::jsonl::encode(&ev, &mut line);
            (String::from_utf8(line).unwrap(), stats)
        };
        let (as_json, as_text) = (result(held.unwrap()), result(text.as_str().into()));
        prop_assert_eq!(as_json, as_text);
    }

    /// Lower-case prose (even full of key words such as `token` or
    /// `password`) comes back borrowed.
    #[test]
    fn prose_is_borrowed(words in prop::collection::vec(
        prop::sample::select(vec!["the", "token", "password", "secret", "key", "bearer",
            "authorization", "is", "broken", "monkey", "tokens", "api", "risk", "free", ",", ".", "\n", ":"]),
        0..60,
    )) {
        let text = words.join(" ");
        prop_assert!(red().redact_str(&text).is_unchanged(), "{text:?}");
    }
}

// ------------------------------------------------------------ real fixtures

/// Real session files: every record stays valid JSON after redaction and
/// findings are rare (these public logs hold no live credentials).
#[test]
fn real_sessions_stay_valid_and_findings_are_rare() {
    let Some(root) = crate::harness::real_corpus() else {
        return;
    };
    let red = red();
    let mut records = 0usize;
    let mut stats = RedactionStats::default();
    for provider in ["claude", "codex"] {
        let Ok(dir) = std::fs::read_dir(root.join(provider)) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(line) else {
                    continue;
                };
                records += 1;
                let mut ev = event(Payload::ProviderRaw {
                    record: raw_from_str(raw.get()),
                });
                ev.event_id = format!("{}:{i}", path.display());
                red.redact_event(&mut ev, &mut stats);
                let Payload::ProviderRaw { record } = &ev.payload else {
                    unreachable!()
                };
                serde_json::from_str::<serde_json::Value>(record.get()).unwrap();
            }
        }
    }
    assert!(records > 1000, "{records}");
    assert!(
        stats.total() < records as u64 / 50,
        "{} findings in {records} records: {:?}",
        stats.total(),
        stats.counts
    );
}
