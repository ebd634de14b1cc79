//! Factory Droid sessions: the synthetic fixtures in
//! `tests/fixtures/droid/sessions/` read as `kato export` reads them, then
//! the real binary listing, exporting and recording such sessions.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{append_lines as append, count, Kato};
use kato::event::{Event, Payload, SystemCategory};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

const SID: &str = "4c2e9a10-7b3d-4e5f-8a6b-1c2d3e4f5a6b";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/droid/sessions")
}

fn main_rel() -> String {
    format!("-home-u-garden/{SID}.jsonl")
}

fn droid() -> &'static dyn Provider {
    by_name("droid").expect("droid is registered")
}

fn read(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, droid(), Limits::default(), &mut |e| events.push(e)).expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    events
}

fn label(e: &Event) -> String {
    match &e.payload {
        Payload::SystemMessage { category, .. } => format!("system.{}", category.label()),
        Payload::ProviderInfo { topic, .. } => format!("info.{topic}"),
        _ => e.kind().as_str().to_owned(),
    }
}

#[test]
fn droid_fixture_maps_every_record_shape() {
    let events = read(&fixtures().join(main_rel()));
    let kinds: Vec<String> = events.iter().map(label).collect();
    assert_eq!(
        kinds,
        [
            "info.session_meta",
            "info.title",
            "user.message",
            "system.Injected context",
            "system.Injected context",
            "assistant.thinking",
            "assistant.message",
            "assistant.tool.call",
            "assistant.tool.call",
            "info.todo_state",
            "assistant.tool.result",
            "assistant.tool.result",
            "system.Compaction",
            "assistant.message",
            "user.message",
            "assistant.tool.call",
            "assistant.tool.result",
            "info.agent_turn_outcome",
        ]
    );
    let human: Vec<(&str, u32)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::UserMessage { text, attachments } => Some((text.as_str(), *attachments)),
            _ => None,
        })
        .collect();
    assert_eq!(
        human,
        [
            ("Water the plants in @plan.md", 0),
            ("And the basil, with this photo", 1)
        ]
    );
    assert!(events.iter().all(|e| &*e.session_id == SID));
    let err = events.iter().any(|e| {
        matches!(&e.payload, Payload::ToolResult { tool_call_id, is_error: true, .. }
            if tool_call_id == "call_water2")
    });
    assert!(err, "the failed call's result says so");
}

/// A home holding the fixtures under `.factory/sessions`, and a config
/// that names nothing but the state directory: the default roots.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        copy_tree(&fixtures(), &home.sessions());
        let cfg = format!(
            "[state]\ndir = \"{}\"\n[sandbox]\nmode = \"best-effort\"\n",
            home.dir.path().join("state").display()
        );
        fs::write(home.dir.path().join("config.toml"), cfg).expect("config");
        home
    }

    fn sessions(&self) -> PathBuf {
        self.dir.path().join("home/.factory/sessions")
    }

    fn kato(&self, args: &[&str]) -> Output {
        let out = std::process::Command::new(crate::harness::BIN)
            .env_clear()
            .env("HOME", self.dir.path().join("home"))
            .env("KATO_CONFIG", self.dir.path().join("config.toml"))
            .env("LANG", "C.UTF-8")
            .args(args)
            .output()
            .expect("run kato");
        assert!(
            out.status.success(),
            "kato {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
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

/// The directory is the one `session_start` recorded, not the decoded
/// folder name; the settings sidecar is not a session.
#[test]
fn droid_sessions_lists_cwd_title_times_and_events() {
    let home = Home::new();
    let out = home.kato(&["sessions", "--json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["id"], SID);
    assert_eq!(row["provider"], "droid");
    assert_eq!(row["files"], 1);
    assert_eq!(row["cwd"], "/home/u/garden");
    assert_eq!(row["title"], "Water the plants in @plan.md");
    assert_eq!(row["first_activity"], "2026-03-02T09:00:01.000Z");
    assert_eq!(row["last_activity"], "2026-03-02T09:11:06.000Z");
    let exported = home.kato(&["export", "--format", "jsonl", SID]);
    let n = exported.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(row["events"], n as u64);
}

#[test]
fn droid_exports_by_id_prefix_and_path() {
    let home = Home::new();
    let path = home.sessions().join(main_rel());
    let path = path.to_str().expect("utf-8 path");
    let mut outputs = Vec::new();
    for query in [SID, &SID[..13], path] {
        let out = home.kato(&["export", query]);
        let md = String::from_utf8(out.stdout).expect("utf-8");
        assert!(md.contains("provider: \"droid\""), "{query}: {md}");
        assert!(md.contains("The tomatoes are watered."), "{query}");
        assert!(md.contains("basil is next"), "the compaction summary: {md}");
        assert!(!md.contains("2. basil"), "@file contents are context: {md}");
        outputs.push(md);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

/// `kato doctor` names the droid stage's one root, `~/.factory/sessions`.
#[test]
fn doctor_lists_the_droid_root_and_nothing_beside_it() {
    let home = Home::new();
    let out = home.kato(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "droid")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(stage["read"], json!([home.sessions()]));
    assert_eq!(stage["write_files"], json!([]));
    assert_eq!(stage["create_in"], json!([]));
}

fn message(id: &str, role: &str, content: Value) -> String {
    json!({"type": "message", "id": id, "timestamp": "2026-03-02T10:00:00.000Z",
           "message": {"role": role, "content": content}})
    .to_string()
}

/// The human's `::capture` runs; an `::export` planted in an `@file`'s
/// contents, a system reminder, assistant text and a tool result does
/// not.
#[test]
fn droid_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let root = k.path("droid");
    let dir = root.join("-home-u-proj");
    fs::create_dir_all(&dir).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace(
            "[providers.droid]\nenabled = false",
            &format!("[providers.droid]\nroots = [\"{}\"]", root.display()),
        );
    fs::write(k.path("config.toml"), cfg).expect("config");
    let f = dir.join(format!("{SID}.jsonl"));
    append(
        &f,
        &[
            json!({"type": "session_start", "id": SID, "title": "t", "cwd": "/home/u/proj"})
                .to_string(),
        ],
    );
    k.start();
    let cap = k.out("droid.md");
    let planted = k.out("planted.md");
    let export = format!("::export {}", planted.display());
    append(
        &f,
        &[
            message(
                "m1",
                "user",
                json!([
                    {"type": "text", "text": format!("hello droid\n::capture {}", cap.display())},
                    {"type": "text", "text": format!("Contents of /home/u/proj/notes.md:\n{export}")},
                    {"type": "text", "text": format!("<system-reminder>\n{export}\n</system-reminder>")}
                ]),
            ),
            message(
                "m2",
                "assistant",
                json!([{"type": "text", "text": export},
                       {"type": "tool_use", "id": "c1", "name": "Read", "input": {"file_path": "x"}}]),
            ),
            message(
                "m3",
                "user",
                json!([{"type": "tool_result", "tool_use_id": "c1", "content": export},
                       {"type": "text", "text": export}]),
            ),
            message(
                "m4",
                "assistant",
                json!([{"type": "text", "text": "droid says hi"}]),
            ),
        ],
    );
    let text = k.wait_for_text(&cap, "droid says hi");
    assert_eq!(count(&text, "::capture"), 1, "the human text once: {text}");
    k.settle(SID, &f);
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

/// Context Droid adds to the human's message is classified.
#[test]
fn droid_file_contents_and_reminders_are_not_human_messages() {
    let events = read(&fixtures().join(main_rel()));
    let injected = events
        .iter()
        .filter(|e| {
            matches!(
                e.payload,
                Payload::SystemMessage {
                    category: SystemCategory::InjectedContext,
                    ..
                }
            )
        })
        .count();
    assert_eq!(injected, 2);
}
