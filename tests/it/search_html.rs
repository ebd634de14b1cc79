//! `kato search`, `kato export --format html`, `kato completions`, `kato
//! man` and the filters of `kato sessions`, through the real binary on
//! real temp trees.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::harness::BIN;

const OLD: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const NEW: &str = "bbbbbbbb-0000-4000-8000-000000000002";

/// A temp tree: Claude and Codex roots, state, config.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let t = Tree {
            dir: tempfile::tempdir().unwrap(),
        };
        let base = t.base();
        fs::create_dir_all(base.join("claude/-home-u-proj")).unwrap();
        fs::create_dir_all(base.join("claude/-home-u-other")).unwrap();
        fs::create_dir_all(base.join("codex")).unwrap();
        fs::create_dir_all(base.join("home")).unwrap();
        fs::create_dir_all(base.join("out")).unwrap();
        let mut cfg = format!(
            "[providers.claude]\nroots = [\"{b}/claude\"]\n[providers.codex]\nroots = [\"{b}/codex\"]\n",
            b = base.display()
        );
        for p in [
            "gemini", "copilot", "cline", "qwen", "cursor", "droid", "amp", "kimi", "aider",
        ] {
            cfg.push_str(&format!("[providers.{p}]\nenabled = false\n"));
        }
        cfg.push_str(&format!(
            "[exports]\nallowed_roots = [\"{b}/out\"]\n[state]\ndir = \"{b}/state\"\n",
            b = base.display()
        ));
        fs::write(base.join("config.toml"), cfg).unwrap();
        t
    }

    fn base(&self) -> PathBuf {
        fs::canonicalize(self.dir.path()).unwrap()
    }

    /// A Claude session in project `proj` from `lines`.
    fn claude(&self, proj: &str, id: &str, lines: &[Value]) -> PathBuf {
        let p = self.base().join(format!("claude/{proj}/{id}.jsonl"));
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(&p, body).unwrap();
        p
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("HOME", self.base().join("home"))
            .env("KATO_CONFIG", self.base().join("config.toml"))
            .env("LANG", "C.UTF-8")
            .current_dir(self.base());
        c
    }

    fn kato(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Standard output of a run that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kato(args);
        assert!(
            out.status.success(),
            "kato {args:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.ok(args);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

fn rec(kind: &str, session: &str, uuid: &str, ts: &str, message: Value) -> Value {
    json!({
        "type": kind, "sessionId": session, "uuid": uuid, "parentUuid": null,
        "isSidechain": false, "timestamp": ts, "cwd": "/home/u/proj", "message": message
    })
}

fn user(session: &str, uuid: &str, ts: &str, text: &str) -> Value {
    rec(
        "user",
        session,
        uuid,
        ts,
        json!({"role": "user", "content": text}),
    )
}

fn assistant(session: &str, uuid: &str, ts: &str, text: &str) -> Value {
    rec(
        "assistant",
        session,
        uuid,
        ts,
        json!({"id": format!("m-{uuid}"), "role": "assistant", "model": "claude-opus-4-6",
               "content": [{"type": "text", "text": text}]}),
    )
}

fn tool_use(session: &str, uuid: &str, ts: &str, id: &str, cmd: &str) -> Value {
    rec(
        "assistant",
        session,
        uuid,
        ts,
        json!({"id": format!("m-{uuid}"), "role": "assistant", "model": "claude-opus-4-6",
               "content": [{"type": "tool_use", "id": id, "name": "Bash", "input": {"command": cmd}}]}),
    )
}

fn tool_result(session: &str, uuid: &str, ts: &str, id: &str, output: &str) -> Value {
    rec(
        "user",
        session,
        uuid,
        ts,
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": output}]}),
    )
}

/// Two sessions: an old one in `-home-u-other`, a newer one in
/// `-home-u-proj` whose tool result holds `TOOLMARKER`.
fn two_sessions(t: &Tree) {
    t.claude(
        "-home-u-other",
        OLD,
        &[
            user(
                OLD,
                "o1",
                "2026-01-02T10:00:00.000Z",
                "old question about widgets",
            ),
            assistant(
                OLD,
                "o2",
                "2026-01-02T10:00:05.000Z",
                "old answer: widgets are fine",
            ),
        ],
    );
    t.claude(
        "-home-u-proj",
        NEW,
        &[
            user(
                NEW,
                "n1",
                "2026-03-05T09:00:00.000Z",
                "new question about widgets",
            ),
            tool_use(NEW, "n2", "2026-03-05T09:00:01.000Z", "t1", "ls"),
            tool_result(
                NEW,
                "n3",
                "2026-03-05T09:00:02.000Z",
                "t1",
                "file TOOLMARKER.txt",
            ),
            assistant(
                NEW,
                "n4",
                "2026-03-05T09:00:03.000Z",
                "new answer: widgets v2",
            ),
        ],
    );
}

#[test]
fn search_finds_a_tool_result_marker_only_with_kind_tool() {
    let t = Tree::new();
    two_sessions(&t);
    let out = t.kato(&["search", "TOOLMARKER"]);
    assert_eq!(out.status.code(), Some(1), "no match exits 1");
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind tool"));
    let hits = t.json(&["search", "TOOLMARKER", "--kind", "tool", "--json"]);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["kind"], "tool");
    assert_eq!(hits[0]["session_id"], NEW);
    // --kind takes several.
    let hits = t.json(&["search", "widgets", "--kind", "user,tool", "--json"]);
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h["kind"] == "user"));
}

#[test]
fn search_json_shape_newest_first_and_limit() {
    let t = Tree::new();
    two_sessions(&t);
    let hits = t.json(&["search", "widgets", "--json"]);
    assert_eq!(hits.len(), 4, "{hits:?}");
    let times: Vec<&str> = hits
        .iter()
        .map(|h| h["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let h = &hits[0];
    for key in [
        "session_id",
        "provider",
        "timestamp",
        "kind",
        "event_id",
        "path",
        "snippet",
        "highlight",
    ] {
        assert!(h.get(key).is_some(), "{key} in {h}");
    }
    assert_eq!(h["provider"], "claude");
    assert_eq!(h["kind"], "assistant");
    let snippet: Vec<char> = h["snippet"].as_str().unwrap().chars().collect();
    let (a, b) = (
        h["highlight"][0].as_u64().unwrap() as usize,
        h["highlight"][1].as_u64().unwrap() as usize,
    );
    assert_eq!(snippet[a..b].iter().collect::<String>(), "widgets");
    let hits = t.json(&["search", "widgets", "--json", "--limit", "1"]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["session_id"], NEW);
    // --since and --provider.
    let hits = t.json(&["search", "widgets", "--json", "--since", "2026-02-01"]);
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h["session_id"] == NEW));
    let out = t.kato(&["search", "widgets", "--provider", "codex"]);
    assert_eq!(out.status.code(), Some(1));
    let out = t.kato(&["search", "widgets", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a date"));
    // Plain text: no colour when stdout is not a terminal.
    let text = t.ok(&["search", "widgets", "--limit", "1"]);
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains(NEW) && text.contains("widgets v2"), "{text}");
}

#[test]
fn search_regex_and_smart_case() {
    let t = Tree::new();
    two_sessions(&t);
    let hits = t.json(&["search", "--regex", r"widgets v\d", "--json"]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["session_id"], NEW);
    // A literal is not a pattern.
    assert_eq!(t.kato(&["search", r"widgets v\d"]).status.code(), Some(1));
    // Lower case matches either case; upper case is exact.
    assert_eq!(
        t.kato(&["search", "NEW QUESTION", "--json"]).status.code(),
        Some(1)
    );
    assert_eq!(
        t.json(&["search", "new QUESTION".to_lowercase().as_str(), "--json"])
            .len(),
        1
    );
    let out = t.kato(&["search", "--regex", "(unclosed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drop --regex"));
}

#[test]
fn search_redacts_secrets_in_snippets() {
    let t = Tree::new();
    let token = format!("ghp_{}", "k7Qz".repeat(9));
    t.claude(
        "-home-u-proj",
        NEW,
        &[user(
            NEW,
            "n1",
            "2026-03-05T09:00:00.000Z",
            &format!("deploy with {token} please"),
        )],
    );
    let out = t.ok(&["search", "deploy"]);
    assert!(!out.contains(&token), "{out}");
    assert!(out.contains("[REDACTED:GITHUB_TOKEN]"), "{out}");
    let json = t.ok(&["search", "deploy", "--json"]);
    assert!(!json.contains(&token));
    // The secret itself is not found.
    assert_eq!(t.kato(&["search", &token]).status.code(), Some(1));
    assert_eq!(t.kato(&["search", "ghp_"]).status.code(), Some(1));
}

#[test]
fn completions_load_in_bash() {
    let t = Tree::new();
    let script = format!("source <({BIN} completions bash) && complete -p kato");
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kato"));
    for shell in ["zsh", "fish"] {
        let s = t.ok(&["completions", shell]);
        assert!(s.contains("search") && s.contains("sessions"), "{shell}");
    }
    assert_eq!(t.kato(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_renders() {
    let t = Tree::new();
    let page = t.ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH kato 1"),
        "{page}"
    );
    assert!(page.contains(".TH kato-search"));
    assert!(page.contains("\\-\\-regex"));
    // Rendered by man(1) when it is installed.
    if Command::new("man").arg("--version").output().is_ok() {
        let mut child = Command::new("man")
            .args(["-l", "-"])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("search"));
    }
}

const CODEX: &str = "33333333-4444-4555-8666-777777777777";

#[test]
fn sessions_filters() {
    let t = Tree::new();
    two_sessions(&t);
    // A Codex session (2026-01-05) that records its directory, /home/u/p.
    let day = t.base().join("codex/2026/01/05");
    fs::create_dir_all(&day).unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codex/modern.jsonl"),
        day.join(format!("rollout-2026-01-05T10-00-00-{CODEX}.jsonl")),
    )
    .unwrap();
    let ids = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["sessions", "--json"];
        a.extend_from_slice(args);
        t.json(&a)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let none = Vec::<String>::new();
    assert_eq!(ids(&[]), [NEW, CODEX, OLD]);
    assert_eq!(ids(&["--limit", "2"]), [NEW, CODEX]);
    assert_eq!(ids(&["--since", "2026-01-04"]), [NEW, CODEX]);
    assert_eq!(ids(&["--since", "2026-04-01"]), none);
    assert_eq!(ids(&["--provider", "codex"]), [CODEX]);
    assert_eq!(ids(&["--provider", "claude"]), [NEW, OLD]);
    assert_eq!(ids(&["--provider", "claude,codex", "--limit", "1"]), [NEW]);
    assert_eq!(ids(&["--cwd", "/home/u/p"]), [CODEX]);
    assert_eq!(ids(&["--cwd", "/home/u/"]), [CODEX]);
    assert_eq!(ids(&["--cwd", "/home/u/p/.."]), [CODEX]);
    assert_eq!(ids(&["--cwd", "/home/u/pp"]), none);
    let out = t.ok(&["sessions", "--since", "2030-01-01"]);
    assert!(out.contains("without them"), "{out}");
    let out = t.kato(&["sessions", "--provider", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `python3 tests/tools/html_check.py PAGE`: the parser's verdict.
fn html_check(page: &Path) -> Value {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/html_check.py");
    let out = Command::new("python3")
        .arg(tool)
        .arg(page)
        .output()
        .expect("python3 (ci/check installs it)");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("html_check: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{}: {v}", page.display());
    v
}

#[test]
fn html_hostile_content_keeps_its_structure() {
    let t = Tree::new();
    let hostile = "</details></section></main><script>alert(1)</script>\n\n\
                   <img src=x onerror=alert(1)> <b onmouseover=\"x()\">bold\n\n\
                   [click](javascript:alert(1)) [tab](java\tscript:x) <javascript:alert(2)>\n\n\
                   ![pic](https://example.org/p.png)\n\n\
                   <div><details open><summary>unclosed\n\n\
                   ```html\n</code></pre><script>x</script>\n```\n\n\
                   <style>body{display:none}</style><iframe src=//e.org></iframe> &amp; <!-- c";
    let p = t.claude(
        "-home-u-proj",
        NEW,
        &[
            user(NEW, "n1", "2026-03-05T09:00:00.000Z", hostile),
            tool_use(NEW, "n2", "2026-03-05T09:00:01.000Z", "t1", hostile),
            tool_result(NEW, "n3", "2026-03-05T09:00:02.000Z", "t1", hostile),
            assistant(NEW, "n4", "2026-03-05T09:00:03.000Z", hostile),
        ],
    );
    let page = t.base().join("out/hostile.html");
    t.ok(&[
        "export",
        p.to_str().unwrap(),
        "--format",
        "html",
        "--tool-calls",
        "-o",
        page.to_str().unwrap(),
    ]);
    let v = html_check(&page);
    let counts = &v["counts"];
    // The renderer's structure: two turns, the tool call and result collapsed.
    assert_eq!(counts["section"], 2, "{v}");
    assert_eq!(counts["details"], 2, "{v}");
    assert_eq!(counts["main"], 1, "{v}");
    assert!(counts.get("script").is_none() && counts.get("iframe").is_none());
    // Only the page's own style element.
    assert_eq!(counts["style"], 1, "{v}");
    let html = fs::read_to_string(&page).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("<pre><code class=\"language-html\">"));
}

#[test]
fn html_of_each_provider_fixture_renders() {
    let t = Tree::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (provider, rel) in [
        ("aider", "aider/todo-app/.aider.chat.history.md"),
        ("amp", "amp/threads/T-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d.json"),
        ("claude", "claude/projects/-home-dev-proj/11111111-2222-4333-8444-555555555555.jsonl"),
        ("cline", "cline/home/.config/Code/User/globalStorage/rooveterinaryinc.roo-cline/tasks/0b3e8c9a-5f2d-4e61-9a7b-2c4d6e8f0a1b/api_conversation_history.json"),
        ("codex", "codex/modern.jsonl"),
        ("copilot", "copilot/history-session-state/session_5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b_1761492781060.json"),
        ("cursor", "cursor/projects/home-u-shop/agent-transcripts/0b9e8f7a-1111-4222-8333-444455556666.jsonl"),
        ("droid", "droid/sessions/-home-u-garden/4c2e9a10-7b3d-4e5f-8a6b-1c2d3e4f5a6b.jsonl"),
        ("gemini", "gemini/grow/rewound.json"),
        ("kimi", "kimi/sessions/879f8d363e85a410e3d95626886b9446/6f1d2c3b-8a9e-4b7c-9d0e-1f2a3b4c5d6e/wire.jsonl"),
        ("qwen", "qwen/projects/-home-u-shop/chats/3f2a9c1e-7b4d-4e8a-9c0f-5d6e7f8a9b0c.jsonl"),
    ] {
        let page = t.base().join(format!("out/{provider}.html"));
        let src = fixtures.join(rel);
        let out = t.kato(&[
            "export",
            src.to_str().unwrap(),
            "--format",
            "html",
            "--thinking",
            "--tool-calls",
            "--json",
            "-o",
            page.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{provider}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["provider"], provider);
        assert_eq!(summary["format"], "html");
        let v = html_check(&page);
        assert!(
            v["counts"]["section"].as_u64().unwrap_or(0) >= 1,
            "{provider}: {v}"
        );
    }
}

/// Every session of the real corpus exported as HTML (thinking, tool calls
/// and injected context shown) passes the parser's check.
#[test]
fn html_of_every_real_session_is_well_formed() {
    let Some(corpus) = crate::harness::real_corpus() else {
        return;
    };
    let t = Tree::new();
    let mut files = Vec::new();
    let mut dirs = vec![corpus];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                dirs.push(p);
            } else if (name.ends_with(".jsonl") || name.ends_with(".json"))
                && !name.ends_with(".meta.json")
                || name.ends_with(".chat.history.md")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut pages = Vec::new();
    for (i, src) in files.iter().enumerate() {
        let page = t.base().join(format!("out/{i}.html"));
        let out = t.kato(&[
            "export",
            src.to_str().unwrap(),
            "--format",
            "html",
            "--thinking",
            "--tool-calls",
            "--context",
            "-o",
            page.to_str().unwrap(),
        ]);
        // Files that are not sessions (state, indexes) are refused, not rendered.
        if out.status.success() {
            pages.push(page);
        }
    }
    assert!(
        pages.len() * 10 >= files.len() * 8,
        "{} of {}",
        pages.len(),
        files.len()
    );
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/html_check.py");
    let out = Command::new("python3")
        .arg(tool)
        .args(&pages)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.contains("\"problems\": []"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
