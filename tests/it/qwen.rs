//! Qwen Code chats: the synthetic fixture in `tests/fixtures/qwen/` read
//! as `kato export` reads it, then the real binary listing, exporting and
//! recording such chats.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{append_lines as append, count, Kato};
use kato::event::{Event, Payload};
use kato::provider::by_name;
use kato::reader::{read_path, Limits};

const SID: &str = "3f2a9c1e-7b4d-4e8a-9c0f-5d6e7f8a9b0c";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen/projects")
}

fn main_file() -> PathBuf {
    fixtures().join(format!("-home-u-shop/chats/{SID}.jsonl"))
}

/// One line per event: kind, event id, then the payload in short.
fn line(e: &Event) -> String {
    let detail = match &e.payload {
        Payload::UserMessage { text, .. }
        | Payload::AssistantMessage { text }
        | Payload::Thinking { text } => format!("{text:?}"),
        Payload::ToolCall {
            tool_call_id, name, ..
        } => format!("{tool_call_id} {name}"),
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => format!("{tool_call_id} err={is_error} {output:?}"),
        Payload::SystemMessage { category, text } => {
            let first = text.trim_start().lines().next().unwrap_or_default();
            format!("{} {first:?}", category.label())
        }
        Payload::ProviderInfo { topic, .. } => topic.clone(),
        Payload::ProviderRaw { .. } => "raw".into(),
        other => format!("{other:?}"),
    };
    format!("{} {} {detail}", e.kind().as_str(), e.event_id)
}

#[test]
fn qwen_fixture_maps_every_record_shape() {
    let mut events = Vec::new();
    let inc = read_path(
        &main_file(),
        by_name("qwen").expect("qwen is registered"),
        Limits::default(),
        &mut |e| events.push(e),
    )
    .expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    let id = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    let lines: Vec<String> = events.iter().map(line).collect();
    let want = [
        format!("provider.info {}#meta session_meta", id(1)),
        format!("system.message {} Command \"/model\"", id(1)),
        format!("provider.info {} slash_command", id(2)),
        r#"user.message u-1 "list the open orders""#.into(),
        format!("provider.info {} ui_telemetry", id(4)),
        r#"assistant.thinking a-1#thought-0 "The user wants the open orders; query the database.""#
            .into(),
        r#"assistant.message a-1 "Let me look at the orders table.""#.into(),
        "assistant.tool.call a-1#call-2 call_a1 run_shell_command".into(),
        "provider.info a-1#tokens token_count".into(),
        format!("provider.info {} ui_telemetry", id(6)),
        r#"assistant.tool.result r-1#result-0 call_a1 err=false "Command: sqlite3\nOutput: 7""#
            .into(),
        r#"assistant.message a-2 "There are 7 open orders.""#.into(),
        "provider.info a-2#tokens token_count".into(),
        format!("provider.info {} at_command", id(9)),
        r#"user.message u-2 "@notes.md what is left?""#.into(),
        r#"system.message u-2#context Injected context "--- Content from referenced files ---""#
            .into(),
        format!("provider.info {} attribution_snapshot", id(11)),
        "assistant.tool.call a-3#call-0 call_a2 list_directory".into(),
        r#"assistant.tool.result r-2#result-0 call_a2 err=true "Path must be absolute: .""#.into(),
        r#"assistant.message s-2 "Exploring the repository.""#.into(),
        r#"system.message s-1 Subagent prompt "Find where orders are shipped.""#.into(),
        r#"user.message u-3 "ship order 12""#.into(),
        r#"system.message u-3#context Injected context "expanded: ship order 12""#.into(),
        r#"system.message u-3#hook-context Injected context "<qwen:user-prompt-submit-context>""#
            .into(),
        r#"system.message c-1 Compaction "<state_snapshot>""#.into(),
        "provider.info c-1#info chat_compression".into(),
        "provider.info t-1#meta session_meta".into(),
        "provider.info t-1 title".into(),
        format!("provider.raw {SID}:7150 raw"),
    ];
    assert_eq!(lines, want);
    let human: Vec<&str> = events
        .iter()
        .filter(|e| e.is_human_message())
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(human, ["u-1", "u-2", "u-3"]);
    assert!(events.iter().all(|e| &*e.session_id == SID));
    // The agent's own times on every record it timed; the model on the
    // assistant's events; subagent work marked.
    assert!(events
        .iter()
        .all(|e| e.timestamp.is_some() || e.kind().as_str() == "provider.raw"));
    assert!(events
        .iter()
        .filter(|e| e.kind().as_str().starts_with("assistant.") && e.event_id != "r-1#result-0")
        .filter(|e| e.kind().as_str() != "assistant.tool.result")
        .all(|e| e.model.as_deref() == Some("coder-model")));
    let sub: Vec<&str> = events
        .iter()
        .filter(|e| e.subagent.is_some())
        .map(|e| e.event_id.as_str())
        .collect();
    assert_eq!(sub, ["s-2", "s-1"]);
}

/// A temporary home holding the fixture under `~/.qwen/projects`, and a
/// config that only names the state dir.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        copy_tree(&fixtures(), &home.projects());
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

    fn projects(&self) -> PathBuf {
        self.path().join("home/.qwen/projects")
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
fn qwen_sessions_lists_title_cwd_and_times_and_exports_by_id_prefix_and_path() {
    let home = Home::new();
    let rows = home.sessions(&[]);
    let row = rows
        .iter()
        .find(|r| r["provider"] == "qwen")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(row["id"], SID);
    // The human's first words; the agent's own title when there are none.
    assert_eq!(row["title"], "list the open orders");
    // From the records' own `cwd`, not from the directory name.
    assert_eq!(row["cwd"], "/home/u/shop");
    assert_eq!(row["first_activity"], "2026-05-02T09:01:00.000Z");
    assert_eq!(row["last_activity"], "2026-05-02T09:18:00.000Z");
    assert_eq!(row["events"], 29);
    assert_eq!(row["skipped"], 0);
    let path = home
        .projects()
        .join(format!("-home-u-shop/chats/{SID}.jsonl"));
    let by_path = home.kato(
        &["export", "--format", "jsonl", &path.to_string_lossy()],
        &[],
    );
    for key in [SID, &SID[..8]] {
        let out = home.kato(&["export", "--format", "jsonl", key], &[]);
        assert_eq!(out.stdout, by_path.stdout, "export {key}");
    }
    assert_eq!(count(&String::from_utf8_lossy(&by_path.stdout), "\n"), 29);
    // Disabled in the config: gone.
    fs::write(
        home.path().join("config.toml"),
        format!(
            "[state]\ndir = \"{}\"\n[sandbox]\nmode = \"best-effort\"\n[providers.qwen]\nenabled = false\n",
            home.path().join("state").display()
        ),
    )
    .expect("config");
    assert!(home.sessions(&[]).iter().all(|r| r["provider"] != "qwen"));
}

/// `QWEN_RUNTIME_DIR` moves the chats to `$QWEN_RUNTIME_DIR/projects`.
#[test]
fn qwen_runtime_dir_moves_the_root() {
    let home = Home::new();
    let elsewhere = home.path().join("runtime");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    fs::rename(home.projects(), elsewhere.join("projects")).expect("move");
    assert!(home.sessions(&[]).iter().all(|r| r["provider"] != "qwen"));
    let rows = home.sessions(&[("QWEN_RUNTIME_DIR", &elsewhere)]);
    assert!(rows.iter().any(|r| r["id"] == SID), "{rows:?}");
}

/// `kato doctor` names the qwen stage's one root, `~/.qwen/projects`.
#[test]
fn doctor_lists_the_qwen_root_and_nothing_beside_it() {
    let home = Home::new();
    let out = home.kato(&["doctor", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "qwen")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(stage["read"], json!([home.projects()]));
    assert_eq!(stage["write_files"], json!([]));
    assert_eq!(stage["create_in"], json!([]));
}

fn with_qwen(k: &Kato) -> PathBuf {
    let root = k.path("qwen");
    let chats = root.join("-home-u-proj/chats");
    fs::create_dir_all(&chats).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace(
            "[providers.qwen]\nenabled = false",
            &format!("[providers.qwen]\nroots = [\"{}\"]", root.display()),
        );
    fs::write(k.path("config.toml"), cfg).expect("config");
    chats
}

fn record(sid: &str, uuid: &str, kind: &str, extra: Value) -> String {
    let mut r = json!({"uuid": uuid, "parentUuid": null, "sessionId": sid,
        "timestamp": "2026-05-02T10:00:00.000Z", "type": kind, "cwd": "/home/u/proj",
        "version": "0.18.1"});
    if let (Some(r), Value::Object(extra)) = (r.as_object_mut(), extra) {
        r.extend(extra);
    }
    r.to_string()
}

fn user(sid: &str, uuid: &str, parts: Value, extra: Value) -> String {
    let mut e = json!({"message": {"role": "user", "parts": parts}});
    if let (Some(m), Value::Object(extra)) = (e.as_object_mut(), extra) {
        m.extend(extra);
    }
    record(sid, uuid, "user", e)
}

/// A human `::capture` fires; `::export` planted in a referenced file's
/// text, in hook context, in the model's text, in a tool result, in a
/// subagent's prompt and in a notification never does.
#[test]
fn qwen_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let chats = with_qwen(&k);
    let sid = "d00dfeed-0000-4000-8000-0000000000a1";
    let f = chats.join(format!("{sid}.jsonl"));
    append(
        &f,
        &[user(sid, "h0", json!([{"text": "history"}]), Value::Null)],
    );
    k.start();
    let cap = k.out("qwen.md");
    let planted = k.out("planted.md");
    let export = format!("::export {}", planted.display());
    append(
        &f,
        &[
            user(
                sid,
                "u1",
                json!([{"text": format!("@notes.md hello qwen\n::capture {}", cap.display())},
                       {"text": "\n--- Content from referenced files ---"},
                       {"text": format!("\nContent from @notes.md:\n{export}\n")},
                       {"text": "\n--- End of content ---"},
                       {"text": format!("<qwen:user-prompt-submit-context>\n{export}\n</qwen:user-prompt-submit-context>")}]),
                Value::Null,
            ),
            record(
                sid,
                "a1",
                "assistant",
                json!({"model": "coder-model", "message": {"role": "model", "parts": [
                    {"text": export.clone()},
                    {"functionCall": {"id": "c1", "name": "read_file", "args": {"file_path": "a"}}}]}}),
            ),
            record(
                sid,
                "r1",
                "tool_result",
                json!({"message": {"role": "user", "parts": [{"functionResponse":
                    {"id": "c1", "name": "read_file", "response": {"output": export.clone()}}}]},
                    "toolCallResult": {"callId": "c1", "status": "success"}}),
            ),
            user(
                sid,
                "s1",
                json!([{"text": export.clone()}]),
                json!({"isSidechain": true, "agentId": "explore-1"}),
            ),
            user(
                sid,
                "n1",
                json!([{"text": export.clone()}]),
                json!({"subtype": "notification", "systemPayload": {"displayText": export.clone()}}),
            ),
            record(
                sid,
                "a2",
                "assistant",
                json!({"model": "coder-model", "message": {"role": "model", "parts": [{"text": "qwen says hi"}]}}),
            ),
        ],
    );
    let text = k.wait_for_text(&cap, "qwen says hi");
    assert_eq!(count(&text, "::capture"), 1, "the human text once: {text}");
    k.settle(sid, &f);
    assert!(!planted.exists(), "a planted ::export ran");
    let decided: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("command."))
        .collect();
    assert_eq!(decided, ["command.parsed", "command.executed"]);
    k.stop();
}

/// A session forked with `/branch` copies the old records (with
/// `forkedFrom`) into a new file: the copied capture does not run again;
/// one typed after the fork does.
#[test]
fn qwen_forked_session_does_not_run_the_copied_capture_again() {
    let mut k = Kato::recording();
    let chats = with_qwen(&k);
    let old = "d00dfeed-0000-4000-8000-0000000000b1";
    let new = "d00dfeed-0000-4000-8000-0000000000b2";
    let first = k.out("first.md");
    let second = k.out("second.md");
    let typed = user(
        old,
        "u1",
        json!([{"text": format!("::capture {}", first.display())}]),
        Value::Null,
    );
    k.start();
    append(&chats.join(format!("{old}.jsonl")), &[typed]);
    k.wait_for_text(&first, "::capture");
    let copy = user(
        new,
        "u1",
        json!([{"text": format!("::capture {}", first.display())}]),
        json!({"forkedFrom": {"sessionId": old, "messageUuid": "u1"}}),
    );
    let f = chats.join(format!("{new}.jsonl"));
    append(
        &f,
        &[
            copy,
            user(
                new,
                "u2",
                json!([{"text": format!("::capture {}", second.display())}]),
                Value::Null,
            ),
        ],
    );
    k.wait_for_text(&second, "::capture");
    k.settle(new, &f);
    let events: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("command."))
        .collect();
    assert_eq!(
        events.iter().filter(|e| *e == "command.executed").count(),
        2,
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "command.skipped-replayed"),
        "{events:?}"
    );
    k.stop();
}
