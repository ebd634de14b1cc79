//! Secrets in what kato derives from a session: a first message holding a
//! token once showed it in `status.json`, `kato status`, a live
//! recording's title and H1, the file name `::record` generated and the
//! state files (titles, Codex's held-back user text). Here a table of
//! secrets is planted in every field kato derives or stores, for every
//! provider; the real binary records, captures, exports and reports; and
//! no file it wrote, nor anything it printed, holds any of them.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::harness::{append_lines, typed_at, Kato, CODEX_ID, S};
use crate::redact::{plant, Plant};

/// The kinds planted, by their number in [`plant`]: Anthropic, GitHub,
/// Slack, AWS key id, AWS secret key (by name), PEM private key.
const KINDS: [usize; 6] = [3, 6, 0, 8, 9, 16];

/// Where each secret was planted, and the secret.
struct Table {
    rows: Vec<(String, Plant)>,
}

impl Table {
    fn new() -> Table {
        Table { rows: Vec::new() }
    }

    /// A new secret for `field`, of the next kind; returns its text.
    fn plant(&mut self, field: &str) -> String {
        let n = self.rows.len();
        let p = plant(KINDS[n % KINDS.len()], 7000 + n as u64);
        let text = p.text.clone();
        self.rows.push((field.to_owned(), p));
        text
    }

    /// Every kind at once, for the fields that become a title.
    fn plant_all(&mut self, field: &str) -> String {
        let texts: Vec<String> = (0..KINDS.len()).map(|_| self.plant(field)).collect();
        texts.join(" and ")
    }
}

/// The secret as it would look in a slug or a file name: lower case, its
/// letters and digits only; two windows of it (start and end).
fn needles(secret: &str) -> Vec<String> {
    let norm = normalise(secret);
    let n = norm.chars().count();
    let w = 16.min(n);
    let tail: String = norm.chars().skip(n - w).collect();
    vec![norm.chars().take(w).collect(), tail]
}

fn normalise(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn claude_lines(t: &mut Table, out: &Path) -> Vec<String> {
    let cwd = t.plant("claude cwd");
    let model = t.plant("claude model");
    let tool = t.plant("claude tool name");
    let error = t.plant("claude tool error");
    let ai_title = t.plant("claude ai-title");
    let malformed = t.plant("claude malformed record");
    let first = format!(
        "deploy with {} please\n::record",
        t.plant_all("claude first message")
    );
    let bad_commands = format!(
        "::stop {}\n::export notes/{}\n::exprot {}",
        t.plant("claude command argument"),
        t.plant("claude relative command path"),
        t.plant("claude misspelt command"),
    );
    let base = |uuid: &str| {
        json!({"sessionId": S, "uuid": uuid, "isSidechain": false, "cwd": cwd,
               "timestamp": typed_at()})
    };
    let with = |uuid: &str, extra: serde_json::Value| {
        let mut v = base(uuid);
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string()
    };
    vec![
        with(
            "u1",
            json!({"type": "user", "message": {"role": "user", "content": first}}),
        ),
        with(
            "a1",
            json!({"type": "assistant", "message": {"id": "m1", "role": "assistant",
            "model": model, "content": [
                {"type": "text", "text": "on it"},
                {"type": "tool_use", "id": "toolu_1", "name": tool, "input": {"command": "ls"}}]}}),
        ),
        with(
            "r1",
            json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": true,
             "content": format!("error: {error}")}]}}),
        ),
        json!({"type": "ai-title", "aiTitle": ai_title, "sessionId": S}).to_string(),
        with("bad", json!({"type": "user", "message": malformed})),
        with(
            "u3",
            json!({"type": "user", "message": {"role": "user", "content": bad_commands}}),
        ),
        with(
            "u2",
            json!({"type": "user", "message": {"role": "user",
            "content": format!("::capture {}", out.join("claude-capture.jsonl").display())}}),
        ),
    ]
}

fn codex_lines(t: &mut Table) -> Vec<String> {
    let cwd = t.plant("codex cwd");
    let model = t.plant("codex model");
    let tool = t.plant("codex tool name");
    let error = t.plant("codex tool error");
    let malformed = t.plant("codex malformed record");
    let first = format!("ship it with {} now", t.plant_all("codex first message"));
    let pending = t.plant_all("codex pending user text");
    let at = |s: u32| format!("2026-01-08T15:00:{s:02}.000Z");
    let user_item = |s: u32, text: &str| {
        json!({"timestamp": at(s), "type": "response_item", "payload": {"type": "message",
               "role": "user", "content": [{"type": "input_text", "text": text}]}})
        .to_string()
    };
    let typed = format!("{first}\n::record");
    vec![
        json!({"timestamp": at(0), "type": "session_meta",
               "payload": {"id": CODEX_ID, "cwd": cwd}})
        .to_string(),
        json!({"timestamp": at(1), "type": "turn_context",
               "payload": {"turn_id": "t1", "cwd": cwd, "model": model}})
        .to_string(),
        user_item(2, &typed),
        json!({"timestamp": at(2), "type": "event_msg", "payload": {"type": "user_message",
               "message": typed, "images": []}})
        .to_string(),
        json!({"timestamp": at(3), "type": "response_item", "payload": {"type": "function_call",
               "name": tool, "arguments": "{}", "call_id": "c1"}})
        .to_string(),
        json!({"timestamp": at(4), "type": "response_item", "payload": {
               "type": "function_call_output", "call_id": "c1", "output": format!("error: {error}")}})
        .to_string(),
        json!({"timestamp": at(5), "type": "response_item", "payload": malformed}).to_string(),
        // A user-role item whose `user_message` twin has not come yet:
        // the parser holds it back, and its state is persisted.
        user_item(6, &pending),
    ]
}

fn gemini_chat(t: &mut Table) -> String {
    let model = t.plant("gemini model");
    let tool = t.plant("gemini tool name");
    let error = t.plant("gemini tool error");
    let first = format!("look at {}\n::record", t.plant_all("gemini first message"));
    json!({
        "sessionId": "abcd1234-0000-4000-8000-000000000001",
        "projectHash": "proj",
        "startTime": "2026-01-08T15:00:00.000Z",
        "lastUpdated": "2026-01-08T15:00:05.000Z",
        "messages": [
            {"id": "u-1", "timestamp": "2026-01-08T15:00:00.000Z", "type": "user", "content": first},
            {"id": "g-1", "timestamp": "2026-01-08T15:00:02.000Z", "type": "gemini",
             "content": "checking", "model": model,
             "toolCalls": [{"id": "call-1", "name": tool, "args": {"path": "/x"},
                            "status": "error", "timestamp": "2026-01-08T15:00:03.000Z",
                            "result": [{"functionResponse": {"id": "call-1", "name": tool,
                                        "response": {"error": format!("failed: {error}")}}}]}]}
        ]
    })
    .to_string()
}

/// Enable Gemini under `gemini/` and render tool calls and thinking.
fn configure(k: &Kato) -> PathBuf {
    let gemini = k.path("gemini");
    fs::create_dir_all(gemini.join("proj/chats")).unwrap();
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap().replace(
        "[providers.gemini]\nenabled = false\n",
        &format!("[providers.gemini]\nroots = [\"{}\"]\n", gemini.display()),
    );
    fs::write(
        k.path("config.toml"),
        format!("{cfg}\n[markdown]\ntool_calls = true\nthinking = true\n"),
    )
    .unwrap();
    gemini.join("proj/chats/session-2026-01-08T15-00-abcd1234.json")
}

/// Run `kato args…`; its stdout and stderr are kept for the search.
fn run(k: &Kato, printed: &mut Vec<(String, String)>, args: &[&str]) {
    let o = k.kato(args);
    let name = args.join(" ");
    printed.push((
        format!("{name} (stdout)"),
        String::from_utf8_lossy(&o.stdout).into(),
    ));
    printed.push((
        format!("{name} (stderr)"),
        String::from_utf8_lossy(&o.stderr).into(),
    ));
}

#[test]
fn planted_secrets_reach_no_title_file_name_status_state_log_or_output() {
    let k = Kato::recording();
    let gemini_file = configure(&k);
    // Detached, so the operational log is `kato.log` in the state home.
    let mut printed = Vec::new();
    run(&k, &mut printed, &["start"]);
    k.wait("ready", |s| s["ready"] == true);
    let mut t = Table::new();
    let out = k.out("");
    append_lines(&k.claude_file(), &claude_lines(&mut t, &out));
    append_lines(&k.codex_file(), &codex_lines(&mut t));
    fs::write(&gemini_file, gemini_chat(&mut t)).unwrap();

    // Two recordings under generated names, a Gemini one, and a capture.
    let default_dir = k.out("default");
    k.wait_until("three recordings and a capture", || {
        let n = fs::read_dir(&default_dir).map_or(0, |d| d.count());
        n >= 3 && out.join("claude-capture.jsonl").exists()
    });
    k.wait("the recordings written", |s| {
        s["recordings"]
            .as_array()
            .is_some_and(|r| r.len() >= 4 && r.iter().all(|x| x["bytes"].as_u64() > Some(0)))
    });

    // Once more from the state it saved.
    run(&k, &mut printed, &["restart"]);
    k.wait("ready again", |s| {
        s["ready"] == true && s["sessions_total"] == 3
    });
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["sessions"],
        &["sessions", "--json"],
    ] {
        run(&k, &mut printed, args);
    }
    let sources = [k.claude_file(), k.codex_file(), gemini_file.clone()];
    for (i, src) in sources.iter().enumerate() {
        let src = src.to_str().unwrap();
        for (format, ext) in [("markdown", "md"), ("jsonl", "jsonl")] {
            let dest = out.join(format!("export-{i}.{ext}"));
            let dest = dest.to_str().unwrap();
            run(
                &k,
                &mut printed,
                &[
                    "export",
                    src,
                    "--format",
                    format,
                    "--tool-calls",
                    "--thinking",
                    "-o",
                    dest,
                ],
            );
        }
        run(&k, &mut printed, &["export", src, "--json", "--dry-run"]);
    }
    run(&k, &mut printed, &["stop"]);
    k.wait_until("the daemon stopped", || k.lock_free());
    let log = fs::read_to_string(k.path("xdg-state/kato/logs/kato.log")).unwrap();
    assert!(log.contains("ready"), "{log}");

    // Everything kato wrote: the whole temporary tree but the provider
    // roots (where the secrets were planted) and the config.
    let mut files = Vec::new();
    files_under(&k.base(), &mut files);
    let planted_in = [k.claude.clone(), k.codex.clone(), k.path("gemini")];
    files.retain(|f| !planted_in.iter().any(|r| f.starts_with(r)) && *f != k.path("config.toml"));
    assert!(
        files.iter().any(|f| f.ends_with("status.json")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with(k.path("state/files"))),
        "{files:?}"
    );
    let mut texts: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let text = String::from_utf8_lossy(&fs::read(f).unwrap()).into_owned();
            (f.display().to_string(), text)
        })
        .collect();
    texts.extend(printed);

    let mut leaks = Vec::new();
    for (field, p) in &t.rows {
        for needle in needles(&p.secret) {
            for (name, text) in &texts {
                let hay = format!("{} {}", normalise(name), normalise(text));
                if hay.contains(&needle) {
                    leaks.push(format!("{field} ({:?}) in {name}", p.label));
                }
            }
        }
    }
    leaks.dedup();
    assert!(
        leaks.is_empty(),
        "planted secrets found:\n{}",
        leaks.join("\n")
    );
    // The search itself finds what is there: the titles were redacted, not
    // dropped.
    let status = &texts
        .iter()
        .find(|(n, _)| n.ends_with("status.json"))
        .unwrap()
        .1;
    assert!(status.contains("[REDACTED:"), "{status}");
    // Codex's held-back user text is in the state, redacted.
    let held = texts
        .iter()
        .find(|(n, t)| n.contains("state/files/") && t.contains("pending_user"))
        .map(|(_, t)| t.as_str())
        .unwrap_or_default();
    assert!(held.contains("[REDACTED:ANTHROPIC_KEY]"), "{held}");
    // The generated file names say what was there, not what it was.
    let names: Vec<String> = fs::read_dir(&default_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.contains("-redacted-")), "{names:?}");
}
