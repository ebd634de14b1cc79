//! Amp threads: the synthetic fixture in `tests/fixtures/amp/threads/`
//! read as `kato export` reads it, then the real binary listing,
//! exporting and recording a live thread that Amp rewrites.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{count, Kato};
use kato::event::{Event, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

const TID: &str = "T-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/amp/threads/{TID}.json"))
}

fn amp() -> &'static dyn Provider {
    by_name("amp").expect("amp is registered")
}

fn line(e: &Event) -> String {
    let detail = match &e.payload {
        Payload::UserMessage { text, attachments } => format!("{text:?} +{attachments}"),
        Payload::AssistantMessage { text } | Payload::Thinking { text } => format!("{text:?}"),
        Payload::ToolCall { name, input, .. } => format!("{name} {}", input.get()),
        Payload::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => format!("{tool_call_id} err={is_error} {output:?}"),
        Payload::SystemMessage { category, text } => format!("{} {text:?}", category.label()),
        Payload::ProviderInfo { topic, .. } => topic.clone(),
        Payload::ProviderRaw { record } => record.get().to_owned(),
        other => format!("{other:?}"),
    };
    let ts = e.timestamp.as_deref().unwrap_or("-");
    format!("{} {} {ts} {detail}", e.kind().as_str(), e.event_id)
}

#[test]
fn amp_fixture_maps_every_block_shape() {
    let mut events = Vec::new();
    let inc = read_path(&fixture(), amp(), Limits::default(), &mut |e| {
        events.push(e)
    })
    .expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    let got: Vec<String> = events.iter().map(line).collect();
    let t = TID;
    let want = [
        format!("provider.info {t}#session_meta 2026-01-01T09:00:00.000Z session_meta"),
        format!("provider.info {t}#cwd 2026-01-01T09:00:00.000Z cwd"),
        format!("provider.info {t}#title 2026-01-01T09:00:00.000Z title"),
        format!("user.message {t}:0 2026-01-01T09:00:10.000Z \"Make descale.sh print the water hardness first.\" +1"),
        format!("assistant.thinking {t}:1 2026-01-01T09:00:15.000Z \"Read the script before changing it.\""),
        format!("assistant.message {t}:1#1 2026-01-01T09:00:15.000Z \"Reading the script.\""),
        format!("assistant.tool.call {t}:1#2 2026-01-01T09:00:15.000Z Read {{\"path\":\"/home/dev/kettle/descale.sh\"}}"),
        format!("assistant.tool.call {t}:1#3 2026-01-01T09:00:15.000Z Bash {{\"cmd\":\"false\"}}"),
        format!("assistant.tool.result {t}:2#0 - toolu_01 err=false \"{{\\\"content\\\":\\\"1: #!/bin/sh\\\\n2: echo descaling\\\"}}\""),
        format!("assistant.tool.result {t}:2#1 - toolu_02 err=true \"{{\\\"message\\\":\\\"exit status 1\\\"}}\""),
        format!("assistant.message {t}:3 2026-01-01T09:00:30.000Z \"Added the hardness line.\""),
        format!("provider.raw {t}:3#1 2026-01-01T09:00:30.000Z {{\"data\":1,\"type\":\"server_widget\"}}"),
        format!("provider.raw {t}:4 - {{\"content\":[{{\"summary\":\"x\",\"type\":\"summary\"}}],\"messageId\":4,\"role\":\"info\"}}"),
        format!("system.message {t}:5#error 2026-01-01T09:01:00.000Z Error \"rate limited\""),
    ];
    assert_eq!(got, want);
    assert!(events
        .iter()
        .filter(|e| e.kind() != kato::event::Kind::UserMessage)
        .all(|e| !e.is_human_message()));
}

/// A temporary home with the fixture under Amp's default root.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(data_home: &str) -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let threads = home.path().join(data_home).join("amp/threads");
        fs::create_dir_all(&threads).expect("mkdir");
        fs::copy(fixture(), threads.join(format!("{TID}.json"))).expect("copy");
        fs::write(threads.parent().expect("amp").join("secrets.json"), "{}").expect("secrets");
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

    fn kato(&self, args: &[&str], vars: &[(&str, PathBuf)]) -> Output {
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

    fn sessions(&self, vars: &[(&str, PathBuf)]) -> Vec<Value> {
        let out = self.kato(&["sessions", "--json"], vars);
        serde_json::from_slice::<Value>(&out.stdout).expect("json")["rows"]
            .as_array()
            .cloned()
            .or_else(|| serde_json::from_slice::<Vec<Value>>(&out.stdout).ok())
            .expect("rows")
    }
}

#[test]
fn amp_sessions_lists_cwd_title_times_and_events_and_exports_by_prefix() {
    let home = Home::new("home/.local/share");
    let rows = home.sessions(&[]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["id"], TID);
    assert_eq!(row["provider"], "amp");
    assert_eq!(row["cwd"], "/home/dev/kettle");
    assert_eq!(
        row["title"],
        "Make descale.sh print the water hardness first."
    );
    assert_eq!(row["first_activity"], "2026-01-01T09:00:00.000Z");
    assert_eq!(row["last_activity"], "2026-01-01T09:01:00.000Z");
    assert_eq!(row["events"], 14);
    assert_eq!(row["skipped"], 0);
    let out = home.kato(&["export", &TID[..12], "--format", "jsonl"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 14, "{text}");
    assert!(text.contains("Added the hardness line."), "{text}");
}

#[test]
fn amp_root_follows_xdg_data_home() {
    let home = Home::new("data");
    assert!(home.sessions(&[]).is_empty());
    let rows = home.sessions(&[("XDG_DATA_HOME", home.path().join("data"))]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], TID);
}

/// `kato doctor` names the amp stage's one root, `threads/`, never the
/// folder holding `secrets.json`.
#[test]
fn doctor_lists_the_amp_threads_root_only() {
    let home = Home::new("home/.local/share");
    let out = home.kato(&["doctor", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "amp")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        stage["read"],
        json!([home.path().join("home/.local/share/amp/threads")])
    );
}

fn thread(messages: Value) -> String {
    serde_json::to_string_pretty(&json!({
        "v": 1, "id": "T-feed0000-0000-4000-8000-000000000001", "created": 1767258000000u64,
        "env": {"initial": {"trees": [{"uri": "file:///home/u/proj"}]}},
        "messages": messages,
    }))
    .expect("json")
}

fn user(id: u32, text: &str) -> Value {
    json!({"role": "user", "messageId": id, "meta": {"sentAt": 1767258001000u64},
           "content": [{"type": "text", "text": text}]})
}

fn assistant(id: u32, state: &str, text: &str) -> Value {
    json!({"role": "assistant", "messageId": id, "state": {"type": state},
           "usage": {"model": "m", "timestamp": "2026-01-01T09:00:05.000Z"},
           "content": [{"type": "text", "text": text},
                       {"type": "tool_use", "id": "tu1", "name": "Read", "input": {"path": "x"}}]})
}

fn result(id: u32, output: &str) -> Value {
    json!({"role": "user", "messageId": id, "content": [{"type": "tool_result", "toolUseID": "tu1",
           "run": {"status": "done", "result": output}}]})
}

/// Amp replaces the thread file as it grows (write a temporary file,
/// rename it over the thread).
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, text).expect("write");
    fs::rename(&tmp, path).expect("rename");
}

#[test]
fn amp_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let root = k.path("amp");
    fs::create_dir_all(&root).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml")).expect("config");
    let cfg = cfg.replace(
        "[providers.amp]\nenabled = false",
        &format!("[providers.amp]\nroots = [\"{}\"]", root.display()),
    );
    fs::write(k.path("config.toml"), cfg).expect("config");
    let sid = "T-feed0000-0000-4000-8000-000000000001";
    let f = root.join(format!("{sid}.json"));
    rewrite(&f, &thread(json!([user(0, "history")])));
    k.start();
    let cap = k.out("amp.md");
    let planted = k.out("planted.md");
    let export = format!("::export {}", planted.display());
    let typed = user(1, &format!("hello amp\n::capture {}", cap.display()));
    // The assistant message streams with a planted command, then its tool
    // output plants another; only the typed capture may run.
    rewrite(
        &f,
        &thread(json!([
            user(0, "history"),
            typed,
            assistant(2, "streaming", &export)
        ])),
    );
    rewrite(
        &f,
        &thread(json!([
            user(0, "history"),
            typed,
            assistant(2, "complete", &export),
            result(3, &export),
            assistant(4, "complete", "amp says hi")
        ])),
    );
    let text = k.wait_for_text(&cap, "amp says hi");
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
