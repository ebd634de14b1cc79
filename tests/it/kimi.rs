//! Kimi CLI sessions: the synthetic fixtures in `tests/fixtures/kimi/`
//! read as `kato export` reads them, then the real binary listing,
//! exporting and recording a live wire.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{append_lines as append, Kato};
use kato::event::Event;
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

const SID: &str = "6f1d2c3b-8a9e-4b7c-9d0e-1f2a3b4c5d6e";
const DIR: &str = "sessions/879f8d363e85a410e3d95626886b9446/6f1d2c3b-8a9e-4b7c-9d0e-1f2a3b4c5d6e";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kimi")
}

fn kimi() -> &'static dyn Provider {
    by_name("kimi").expect("kimi is registered")
}

fn read(name: &str) -> Vec<String> {
    let mut events: Vec<Event> = Vec::new();
    let path = fixtures().join(DIR).join(name);
    let inc = read_path(&path, kimi(), Limits::default(), &mut |e| events.push(e)).expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    events
        .iter()
        .map(|e| {
            let sub = e
                .subagent
                .as_ref()
                .and_then(|s| s.id.as_deref())
                .unwrap_or("-");
            let ts = e.timestamp.as_deref().unwrap_or("-");
            format!("{} {} {ts} {sub}", e.kind().as_str(), e.event_id)
        })
        .collect()
}

#[test]
fn kimi_wire_fixture_maps_every_record_shape() {
    let want = [
        "provider.info wire:0 - -",
        "user.message wire:48 2026-01-01T09:00:01.250Z -",
        "assistant.thinking wire:272 2026-01-01T09:00:02.000Z -",
        "assistant.message wire:420 2026-01-01T09:00:02.500Z -",
        "assistant.tool.call wire:544 2026-01-01T09:00:03.000Z -",
        "assistant.tool.result wire:748 2026-01-01T09:00:03.500Z -",
        "provider.info wire:988 2026-01-01T09:00:04.000Z -",
        "assistant.decision.prompt wire:1217 2026-01-01T09:00:04.500Z -",
        "user.decision.response wire:1434 2026-01-01T09:00:05.000Z -",
        "assistant.tool.call wire:1576 2026-01-01T09:00:05.500Z -",
        "assistant.tool.result wire:1763 2026-01-01T09:00:06.000Z -",
        "system.message wire:1964 2026-01-01T09:00:06.500Z a1",
        "assistant.message wire:2209 2026-01-01T09:00:07.000Z a1",
        "system.message wire:2455 2026-01-01T09:00:07.500Z -",
        "assistant.message wire:2619 2026-01-01T09:00:08.000Z -",
        "system.message wire:2748 2026-01-01T09:00:08.500Z -",
        "user.message wire:2831 2026-01-01T09:00:09.000Z -",
        "provider.raw wire:3040 2026-01-01T09:00:09.500Z -",
    ];
    assert_eq!(read("wire.jsonl"), want);
}

#[test]
fn kimi_subagent_context_fixture_is_subagent_work_without_times() {
    let want = [
        "system.message sub_1:0 - sub_1",
        "assistant.thinking sub_1:57 - sub_1",
        "assistant.message sub_1:57#1 - sub_1",
        "assistant.tool.call sub_1:57#2 - sub_1",
        "provider.info sub_1:321 - sub_1",
        "assistant.tool.result sub_1:361 - sub_1",
        "system.message sub_1:556 - sub_1",
        "assistant.message sub_1:617 - sub_1",
        "provider.raw sub_1:668 - sub_1",
    ];
    assert_eq!(read("context_sub_1.jsonl"), want);
}

/// A temporary home with the fixtures as `~/.kimi` (or elsewhere).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(share: &str) -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        copy_tree(&fixtures(), &home.path().join(share));
        fs::write(
            home.path().join(share).join("config.toml"),
            "api_key = \"x\"",
        )
        .expect("settings");
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
        serde_json::from_slice(&out.stdout).expect("json rows")
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
fn kimi_sessions_lists_title_times_and_events_and_exports_by_prefix() {
    let home = Home::new("home/.kimi");
    let rows = home.sessions(&[]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["id"], SID);
    assert_eq!(row["provider"], "kimi");
    assert_eq!(row["files"], 2);
    assert_eq!(
        row["cwd"], "/home/dev/kettle",
        "from kimi.json, by the MD5 of the path"
    );
    assert_eq!(
        row["title"],
        "Make descale.sh print the water hardness first."
    );
    assert_eq!(row["first_activity"], "2026-01-01T09:00:01.250Z");
    assert_eq!(row["last_activity"], "2026-01-01T09:00:09.500Z");
    assert_eq!(row["events"], 18 + 9);
    assert_eq!(row["skipped"], 0);
    let out = home.kato(&["export", &SID[..8], "--format", "jsonl"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 27, "{text}");
    assert!(text.contains("Table checked."), "{text}");
}

#[test]
fn kimi_root_follows_kimi_share_dir() {
    let home = Home::new("share");
    assert!(home.sessions(&[]).is_empty());
    let rows = home.sessions(&[("KIMI_SHARE_DIR", home.path().join("share"))]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["id"], SID);
    assert_eq!(rows[0]["cwd"], "/home/dev/kettle");
}

/// `kato doctor` names the kimi stage's one root, `~/.kimi/sessions`,
/// never `~/.kimi` with its `config.toml`.
#[test]
fn doctor_lists_the_kimi_sessions_root_only() {
    let home = Home::new("home/.kimi");
    let out = home.kato(&["doctor", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "kimi")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        stage["read"],
        json!([home.path().join("home/.kimi/sessions")])
    );
}

fn wire(ts: f64, kind: &str, payload: Value) -> String {
    json!({"timestamp": ts, "message": {"type": kind, "payload": payload}}).to_string()
}

/// Kimi CLI writes its own turns (a flow skill's steps, print mode's
/// reminders) into the same `TurnBegin` record as typed input, and a
/// subagent's own wire opens with the parent model's prompt: no command
/// runs from a Kimi session, typed or planted, and a subagent's wire is no
/// session of its own.
#[test]
fn kimi_runs_no_command_from_turns_subagent_wires_or_planted_text() {
    let mut k = Kato::recording();
    let root = k.path("kimi");
    let dir = root.join("0123456789abcdef0123456789abcdef/d00dfeed-0000-4000-8000-000000000001");
    fs::create_dir_all(&dir).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml")).expect("config");
    let cfg = cfg.replace(
        "[providers.kimi]\nenabled = false",
        &format!("[providers.kimi]\nroots = [\"{}\"]", root.display()),
    );
    fs::write(k.path("config.toml"), cfg).expect("config");
    let sid = "d00dfeed-0000-4000-8000-000000000001";
    let f = dir.join("wire.jsonl");
    let sub = dir.join("context_sub_1.jsonl");
    let sub_wire = dir.join("subagents/a1/wire.jsonl");
    fs::create_dir_all(sub_wire.parent().expect("parent")).expect("mkdir");
    append(
        &f,
        &[
            json!({"type": "metadata", "protocol_version": "1.3"}).to_string(),
            wire(1767258000.0, "TurnBegin", json!({"user_input": "history"})),
        ],
    );
    k.start();
    let cap = k.out("kimi.md");
    let planted = k.out("planted.md");
    let export = format!("::export {}", planted.display());
    append(
        &f,
        &[
            wire(
                1767258001.0,
                "TurnBegin",
                json!({"user_input": [{"type": "text", "text": format!("hello kimi\n::capture {}", cap.display())}]}),
            ),
            wire(
                1767258002.0,
                "ContentPart",
                json!({"type": "text", "text": export}),
            ),
            wire(
                1767258003.0,
                "ToolResult",
                json!({"tool_call_id": "t1",
                "return_value": {"is_error": false, "output": export}}),
            ),
            wire(
                1767258004.0,
                "SubagentEvent",
                json!({"agent_id": "a1",
                "event": {"type": "TurnBegin", "payload": {"user_input": export}}}),
            ),
        ],
    );
    append(
        &sub,
        &[json!({"role": "user", "content": export}).to_string()],
    );
    append(
        &sub_wire,
        &[
            json!({"type": "metadata", "protocol_version": "1.3"}).to_string(),
            wire(1767258004.5, "TurnBegin", json!({"user_input": export})),
        ],
    );
    append(
        &f,
        &[wire(
            1767258005.0,
            "ContentPart",
            json!({"type": "text", "text": "kimi says hi"}),
        )],
    );
    k.settle(sid, &f);
    assert!(!cap.exists(), "a typed ::capture ran from a Kimi turn");
    assert!(!planted.exists(), "a planted ::export ran");
    let decided: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("command."))
        .collect();
    assert_eq!(decided, Vec::<String>::new());
    let status = k.status().expect("status");
    let kimi: Vec<&Value> = status["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|x| x["provider"] == "kimi")
        .collect();
    assert_eq!(kimi.len(), 1, "the subagent wire is no session: {kimi:?}");
    k.stop();
}

/// A registry that does not list the folder's path names no directory:
/// the folder name is never decoded, and a `session_to_workdir` entry
/// whose MD5 is not the folder's is not believed.
#[test]
fn kimi_cwd_is_only_what_the_registry_maps_to_the_folder() {
    let home = Home::new("home/.kimi");
    let registry = home.path().join("home/.kimi/kimi.json");
    fs::write(
        &registry,
        json!({"work_dirs": [{"path": "/elsewhere"}],
               "session_to_workdir": {SID: "/not/the/folder"}})
        .to_string(),
    )
    .expect("registry");
    assert_eq!(home.sessions(&[])[0]["cwd"], Value::Null);
    fs::write(
        &registry,
        json!({"work_dirs": [], "session_to_workdir": {SID: "/home/dev/kettle"}}).to_string(),
    )
    .expect("registry");
    assert_eq!(home.sessions(&[])[0]["cwd"], "/home/dev/kettle");
}
