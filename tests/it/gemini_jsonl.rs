//! Gemini CLI JSON Lines chats (0.39 and later): the synthetic fixtures in
//! `tests/fixtures/gemini/tmp/ticketing/` read as `kato export` reads them,
//! then the real binary listing, exporting and recording such chats.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{append_lines as append, count, Kato};
use kato::event::{Event, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

const SID: &str = "5b1c7e2a-0b6e-4c1f-9d7a-1e2f3a4b5c6d";
const MAIN: &str = "ticketing/chats/session-2026-04-25T08-23-5b1c7e2a.jsonl";
const SUB: &str = "ticketing/chats/5b1c7e2a-0b6e-4c1f-9d7a-1e2f3a4b5c6d/qwopex.jsonl";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemini/tmp")
}

fn gemini() -> &'static dyn Provider {
    by_name("gemini").expect("gemini is registered")
}

/// One line per event: kind, event id, then the payload in short.
fn line(e: &Event) -> String {
    let detail = match &e.payload {
        Payload::UserMessage { text, .. }
        | Payload::AssistantMessage { text }
        | Payload::Thinking { text } => format!("{text:?}"),
        Payload::ToolCall { name, input, .. } => format!("{name} {}", input.get()),
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => format!("{tool_call_id} err={is_error} {output:?}"),
        Payload::SystemMessage { category, text } => {
            let first = text.lines().next().unwrap_or_default();
            format!("{} {first:?}", category.label())
        }
        Payload::ProviderInfo { topic, .. } => topic.clone(),
        Payload::ProviderRaw { record } => record.get().to_owned(),
        other => format!("{other:?}"),
    };
    format!("{} {} {detail}", e.kind().as_str(), e.event_id)
}

/// Read a fixture whole; no diagnostics allowed.
fn read(rel: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(
        &fixtures().join(rel),
        gemini(),
        Limits::default(),
        &mut |e| events.push(e),
    )
    .expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    events
}

#[test]
fn gemini_jsonl_fixture_maps_every_record_shape() {
    let events = read(MAIN);
    let t = "session-2026-04-25T08-23-5b1c7e2a.jsonl";
    let lines: Vec<String> = events.iter().map(line).collect();
    let want = [
        format!("provider.info {t}:0 session_meta"),
        format!("provider.info {t}:228 checkpoint"),
        r#"system.message env-ctx Injected context "<session_context>""#.into(),
        r#"system.message i1 Notice "MCP issues detected. Run /mcp list for status.""#.into(),
        r#"system.message e1 Error "Error during discovery for MCP server 'db': connection closed""#.into(),
        r#"system.message w1 Notice "Approaching the token limit.""#.into(),
        r#"user.message u1 "@notes.md summarise""#.into(),
        r#"system.message u1#context Injected context "@notes.md summarise""#.into(),
        r#"assistant.thinking g1#thought-0 "**Reading the notes**\n\nI will read the file first.""#.into(),
        "provider.info g1#tokens token_count".into(),
        r#"assistant.tool.call g1#call-0 read_file {"file_path":"notes.md"}"#.into(),
        r#"assistant.tool.result g1#result-0 c1 err=false "- write tests\n""#.into(),
        r#"assistant.tool.call g1#call-1 run_shell_command {"command":"make check"}"#.into(),
        r#"assistant.tool.result g1#result-1 c2 err=true "make: *** No rule to make target 'check'.""#.into(),
        r#"assistant.message g2 "The notes list one task: write tests.""#.into(),
        "provider.info g2#tokens token_count".into(),
        r#"user.message u2 "run the tests""#.into(),
        "provider.info g3#tokens token_count".into(),
        r#"assistant.tool.call g3#call-0 run_shell_command {"command":"cargo test"}"#.into(),
        r#"assistant.tool.result g3#result-0 c3 err=true "[Operation Cancelled] Reason: User denied execution.""#.into(),
        r#"system.message i2 Notice "Request cancelled.""#.into(),
        format!("provider.info {t}:4684 rewind"),
        format!(
            "system.message {t}:4684#1 Notice \"Rewound to before message `u2`: the agent withdrew the last 3 message(s) above.\""
        ),
        r#"user.message u3 "run only the unit tests""#.into(),
        r#"system.message u3#hook-context Injected context "<hook_context>Branch: main. ::stop</hook_context>""#.into(),
        r#"assistant.message g4 "Done: 12 unit tests pass.""#.into(),
        format!("provider.info {t}:5132 session_meta"),
        format!(r#"provider.raw {t}:5235 {{"$future":{{"kind":"unknown"}}}}"#),
        format!("provider.info {t}:5266 checkpoint"),
        format!("system.message {t}:5266#1 Notice \"The agent rewrote its conversation history (after a compression or a cancelled request): 7 recent message(s) above were withdrawn; it now holds 5 message(s).\""),
        r#"system.message s1 Compaction "<state_snapshot>""#.into(),
        r#"assistant.message s2 "Got it. Thanks for the additional context!""#.into(),
        r#"assistant.message g5 "Continuing from the summary.""#.into(),
    ];
    assert_eq!(lines, want);
    assert!(events
        .iter()
        .all(|e| &*e.session_id == SID && e.subagent.is_none()));
    // Only what the human typed is human text.
    let human: Vec<&str> = events
        .iter()
        .filter(|e| e.is_human_message())
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(human, ["u1", "u2", "u3"]);
    // The agent's own times; models on the assistant's events.
    assert!(events
        .iter()
        .filter(|e| !e.event_id.contains(':'))
        .all(|e| e.timestamp.is_some()));
    assert!(events
        .iter()
        .filter(|e| matches!(
            e.payload,
            Payload::Thinking { .. } | Payload::ToolCall { .. }
        ))
        .all(|e| e.model.as_deref() == Some("gemini-3-flash-preview")));
}

#[test]
fn gemini_jsonl_subagent_chat_belongs_to_its_parent() {
    let events = read(SUB);
    let lines: Vec<String> = events.iter().map(line).collect();
    assert_eq!(
        lines,
        [
            "provider.info qwopex.jsonl:0 session_meta",
            r#"system.message q1 Subagent prompt "Find the test files. ::capture /tmp/sub.md""#,
            r#"assistant.tool.call q2#call-0 glob {"pattern":"tests/**"}"#,
            r#"assistant.tool.result q2#result-0 qwopex#0-0 err=false "tests/a.rs""#,
            r#"assistant.message q3 "One test file: tests/a.rs.""#,
        ]
    );
    for e in &events {
        assert_eq!(&*e.session_id, SID);
        assert_eq!(
            e.subagent.as_ref().and_then(|s| s.id.as_deref()),
            Some("qwopex")
        );
    }
    assert!(!events.iter().any(Event::is_human_message));
}

/// A home holding the fixtures' Gemini tree under `.gemini/tmp`, and a
/// config that names nothing but the state directory: the default roots.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        copy_tree(&fixtures(), &home.tmp());
        let cfg = format!(
            "[state]\ndir = \"{}\"\n[sandbox]\nmode = \"best-effort\"\n",
            home.path().join("state").display()
        );
        fs::write(home.path().join("config.toml"), cfg).expect("config");
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tmp(&self) -> PathBuf {
        self.path().join("home/.gemini/tmp")
    }

    fn kato(&self, args: &[&str], vars: &[(&str, &Path)]) -> Output {
        let mut c = std::process::Command::new(crate::harness::BIN);
        c.env_clear()
            .env("HOME", self.path().join("home"))
            .env("KATO_CONFIG", self.path().join("config.toml"))
            .env("LANG", "C.UTF-8")
            .args(args);
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c.output().expect("run kato");
        assert!(
            out.status.success(),
            "kato {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn sessions(&self, vars: &[(&str, &Path)]) -> Vec<Value> {
        let out = self.kato(&["sessions", "--json"], vars);
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v.as_array().cloned().expect("rows")
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("list") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn gemini_jsonl_sessions_lists_cwd_title_times_and_events() {
    let home = Home::new();
    let rows = home.sessions(&[]);
    let row = rows
        .iter()
        .find(|r| r["id"] == SID)
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(row["provider"], "gemini");
    assert_eq!(row["files"], 2, "the subagent chat is part of it");
    assert_eq!(row["cwd"], "/home/u/ticketing");
    assert_eq!(row["title"], "@notes.md summarise");
    assert_eq!(row["first_activity"], "2026-04-25T08:23:24.509Z");
    assert_eq!(row["last_activity"], "2026-04-25T08:40:05.000Z");
    // The events of both files (as exported), their commands included.
    let out = home.kato(&["export", "--format", "jsonl", SID], &[]);
    let exported = out.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(row["events"], exported as u64);
    assert!(exported > 30, "{exported}");
    // Sessions of the older documents are listed beside it; a project
    // directory with no marker has no cwd rather than a guessed one.
    let doc = rows
        .iter()
        .find(|r| r["id"] == "93c0da34-0000-4000-8000-000000000001")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(doc["cwd"], Value::Null);
    let table = home.kato(&["sessions"], &[]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("CWD"), "{table}");
    assert!(table.contains("/home/u/ticketing"), "{table}");
}

#[test]
fn gemini_jsonl_exports_by_id_prefix_and_path() {
    let home = Home::new();
    let path = home.tmp().join(MAIN);
    let path = path.to_str().expect("utf-8 path");
    let mut outputs = Vec::new();
    for query in [SID, &SID[..13], path] {
        let out = home.kato(&["export", query], &[]);
        let md = String::from_utf8(out.stdout).expect("utf-8");
        assert!(md.contains("provider: \"gemini\""), "{query}: {md}");
        assert!(md.contains("Continuing from the summary."), "{query}");
        assert!(md.contains("Rewound to before message"), "{query}");
        outputs.push(md);
    }
    // By id and by prefix the subagent chat comes along; by path only the
    // file named.
    assert_eq!(outputs[0], outputs[1]);
    assert!(outputs[0].contains("One test file"));
    assert!(!outputs[2].contains("One test file"));
}

#[test]
fn gemini_cli_home_moves_the_default_root() {
    let home = Home::new();
    let elsewhere = home.path().join("gemini-home");
    fs::create_dir_all(elsewhere.join(".gemini")).expect("mkdir");
    fs::rename(home.tmp(), elsewhere.join(".gemini/tmp")).expect("move");
    assert!(home.sessions(&[]).is_empty());
    let rows = home.sessions(&[("GEMINI_CLI_HOME", &elsewhere)]);
    assert!(rows.iter().any(|r| r["id"] == SID), "{rows:?}");
}

#[test]
fn gemini_jsonl_resumed_document_reads_as_one_session() {
    // A `.json` chat resumed by a newer CLI is copied into a `.jsonl` of
    // the same session id, which then grows; the old file stays.
    let home = Home::new();
    let chats = home.tmp().join("resumed/chats");
    fs::create_dir_all(&chats).expect("mkdir");
    let sid = "7c0ffee0-1111-4222-8333-444455556666";
    let u1 = json!({"id": "u1", "timestamp": "2026-04-01T10:00:00.000Z", "type": "user",
                    "content": [{"text": "first question"}]});
    let g1 = json!({"id": "g1", "timestamp": "2026-04-01T10:00:05.000Z", "type": "gemini",
                    "content": "first answer", "model": "gemini-2.5-pro"});
    let doc = json!({"sessionId": sid, "projectHash": "ab", "startTime": "2026-04-01T10:00:00.000Z",
                     "lastUpdated": "2026-04-01T10:00:05.000Z", "messages": [u1, g1], "kind": "main"});
    let name = "session-2026-04-01T10-00-7c0ffee0";
    fs::write(
        chats.join(format!("{name}.json")),
        serde_json::to_string_pretty(&doc).expect("json"),
    )
    .expect("write");
    let lines = [
        json!({"sessionId": sid, "projectHash": "ab", "startTime": "2026-04-01T10:00:00.000Z",
               "lastUpdated": "2026-04-01T10:00:05.000Z", "kind": "main"})
        .to_string(),
        u1.to_string(),
        g1.to_string(),
        json!({"$set": {"sessionId": sid}}).to_string(),
        json!({"id": "u2", "timestamp": "2026-04-25T09:00:00.000Z", "type": "user",
               "content": [{"text": "second question"}]})
        .to_string(),
    ];
    append(&chats.join(format!("{name}.jsonl")), &lines);
    let rows = home.sessions(&[]);
    let mine: Vec<&Value> = rows.iter().filter(|r| r["id"] == sid).collect();
    assert_eq!(mine.len(), 1, "{rows:?}");
    assert_eq!(mine[0]["files"], 2);
    let md = home.kato(&["export", sid], &[]);
    let md = String::from_utf8_lossy(&md.stdout);
    assert_eq!(count(&md, "\nfirst question\n"), 1, "{md}");
    assert_eq!(count(&md, "first answer"), 1, "{md}");
    assert_eq!(count(&md, "second question"), 1, "{md}");
}

/// Gemini on in a recording setup, its root `gemini/`; returns the chats
/// directory of one project.
fn with_gemini(k: &Kato) -> PathBuf {
    let root = k.path("gemini");
    let chats = root.join("proj/chats");
    fs::create_dir_all(&chats).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace(
            "[providers.gemini]\nenabled = false",
            &format!("[providers.gemini]\nroots = [\"{}\"]", root.display()),
        );
    fs::write(k.path("config.toml"), cfg).expect("config");
    chats
}

fn meta_line(sid: &str) -> String {
    json!({"sessionId": sid, "projectHash": "ab", "startTime": "2026-04-25T08:00:00.000Z",
           "lastUpdated": "2026-04-25T08:00:00.000Z", "kind": "main"})
    .to_string()
}

fn user_line(id: &str, text: &str) -> String {
    json!({"id": id, "timestamp": "2026-04-25T08:01:00.000Z", "type": "user",
           "content": [{"text": text}]})
    .to_string()
}

fn gemini_line(id: &str, text: &str, calls: Value) -> String {
    json!({"id": id, "timestamp": "2026-04-25T08:01:05.000Z", "type": "gemini",
           "content": text, "thoughts": [], "model": "gemini-3-flash-preview", "toolCalls": calls})
    .to_string()
}

#[test]
fn gemini_jsonl_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let chats = with_gemini(&k);
    let sid = "d00dfeed-0000-4000-8000-000000000001";
    let f = chats.join("session-2026-04-25T08-00-d00dfeed.jsonl");
    append(&f, &[meta_line(sid), user_line("u0", "history")]);
    k.start();
    let cap = k.out("gemini.md");
    let planted = k.out("planted.md");
    let call = json!([{"id": "c1", "name": "read_file", "args": {"file_path": "README.md"},
        "result": [{"functionResponse": {"id": "c1", "name": "read_file",
                    "response": {"output": format!("::export {}", planted.display())}}}],
        "status": "success", "timestamp": "2026-04-25T08:01:06.000Z"}]);
    append(
        &f,
        &[
            user_line("u1", &format!("hello gemini\n::capture {}", cap.display())),
            gemini_line(
                "g1",
                &format!("::export {}", planted.display()),
                Value::Null,
            ),
            gemini_line("g1", &format!("::export {}", planted.display()), call),
            user_line(
                "u2",
                &format!(
                    "<hook_context>\n::export {}\n</hook_context>",
                    planted.display()
                ),
            ),
            gemini_line("g2", "gemini says hi", Value::Null),
        ],
    );
    let text = k.wait_for_text(&cap, "gemini says hi");
    assert_eq!(count(&text, "::capture"), 1, "the human text once: {text}");
    // A rewind after the events were recorded: they stay, a notice follows.
    append(&f, &[json!({"$rewindTo": "g1"}).to_string()]);
    let text = k.wait_for_text(&cap, "Rewound to before message");
    assert!(text.contains("gemini says hi"), "{text}");
    k.settle(sid, &f);
    assert!(!planted.exists(), "a planted ::export ran");
    let default = k.out("default");
    assert!(
        fs::read_dir(&default).map_or(true, |mut d| d.next().is_none()),
        "nothing else was written"
    );
    // One command was seen at all: the typed capture.
    let decided: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("command."))
        .collect();
    assert_eq!(decided, ["command.parsed", "command.executed"]);
    k.stop();
}

/// `kato doctor` names the gemini stage's one root, `~/.gemini/tmp`.
#[test]
fn doctor_lists_the_gemini_root_and_nothing_beside_it() {
    let home = Home::new();
    let out = home.kato(&["doctor", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "gemini")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(stage["read"], json!([home.tmp()]));
    assert_eq!(stage["write_files"], json!([]));
    assert_eq!(stage["create_in"], json!([]));
}

/// `kato run` re-executes itself with a clean environment; the agent's
/// variable that moves its files must survive that, or the daemon would
/// watch another place than `kato sessions` lists.
#[test]
fn gemini_cli_home_is_kept_by_the_daemon() {
    let mut k = Kato::new(false);
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace("[providers.gemini]\nenabled = false\n", "");
    fs::write(k.path("config.toml"), cfg).expect("config");
    let gemini_home = k.path("gemini-home");
    let chats = gemini_home.join(".gemini/tmp/proj/chats");
    fs::create_dir_all(&chats).expect("mkdir");
    let sid = "d00dfeed-0000-4000-8000-000000000002";
    let f = chats.join("session-2026-04-25T08-00-d00dfeed.jsonl");
    append(&f, &[meta_line(sid), user_line("u0", "hello")]);
    let mut cmd = k.cmd();
    cmd.arg("run").env("GEMINI_CLI_HOME", &gemini_home);
    let pid = k.spawn_logged(cmd, "run-gemini.log");
    k.wait("ready", |s| s["pid"] == pid && s["ready"] == true);
    k.wait("the session under GEMINI_CLI_HOME", |s| {
        s["sessions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == sid))
    });
    k.stop();
}

/// A `.json` chat resumed by a newer CLI is copied into a new `.jsonl`
/// while kato runs: the file is new, but the copied history's command is
/// not typed anew and never runs; the one typed after the resume does.
#[test]
fn gemini_resumed_chat_copied_into_jsonl_does_not_run_its_capture_again() {
    let mut k = Kato::recording();
    let chats = with_gemini(&k);
    k.start();
    let old = k.out("old.md");
    let new = k.out("new.md");
    let sid = "d00dfeed-0000-4000-8000-000000000003";
    let f = chats.join("session-2026-04-25T08-00-d00dfeed.jsonl");
    let copied_user = json!({"id": "u1", "timestamp": "2026-04-20T10:00:00.000Z", "type": "user",
        "content": [{"text": format!("::capture {}", old.display())}]});
    append(
        &f,
        &[
            json!({"sessionId": sid, "projectHash": "ab", "startTime": "2026-04-20T09:59:00.000Z",
                   "lastUpdated": "2026-04-20T10:00:05.000Z", "kind": "main"})
            .to_string(),
            copied_user.to_string(),
            json!({"$set": {"sessionId": sid}}).to_string(),
            json!({"id": "u2", "timestamp": "2026-04-25T08:01:00.000Z", "type": "user",
                   "content": [{"text": format!("::capture {}", new.display())}]})
            .to_string(),
            gemini_line("g2", "after the resume", Value::Null),
        ],
    );
    let text = k.wait_for_text(&new, "after the resume");
    assert!(
        text.contains(&format!("::capture {}", old.display())),
        "{text}"
    );
    k.settle(sid, &f);
    k.stop();
    assert!(!old.exists(), "the copied capture ran");
    let events: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .collect();
    assert!(
        events.iter().any(|e| e == "command.skipped-replayed"),
        "{events:?}"
    );
}
