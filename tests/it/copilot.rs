//! GitHub Copilot CLI: the synthetic fixtures in `tests/fixtures/copilot/`
//! (a 1.0 `events.jsonl` with its `workspace.yaml`, a flat pre-1.0 log, a
//! legacy document) laid out under `~/.copilot`, listed and exported by the
//! real binary; then a live event log recorded by the daemon.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{append_lines as append, count, Kato};

/// The 1.0 session of the fixtures.
const SID: &str = "3f1e2d4c-5b6a-4789-8abc-def012345678";
/// The flat pre-1.0 session.
const FLAT: &str = "7c2b9e10-1d3f-4a5b-9c8d-0e1f2a3b4c5d";
/// The legacy document's session.
const LEGACY: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/copilot")
}

/// A home whose `~/.copilot` holds the fixtures (and the CLI's tokens
/// beside them), with a config that names no root: the defaults apply.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        copy_tree(&fixtures(), &home.copilot());
        fs::write(home.copilot().join("config.json"), "{\"token\":\"x\"}").expect("tokens");
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

    fn copilot(&self) -> PathBuf {
        self.path().join("home/.copilot")
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

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {rows:?}"))
}

#[test]
fn copilot_sessions_lists_cwd_title_times_and_events() {
    let home = Home::new();
    let rows = home.sessions(&[]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let r = row(&rows, SID);
    assert_eq!(r["provider"], "copilot");
    assert_eq!(r["cwd"], "/home/dev/ticketing", "from workspace.yaml");
    assert_eq!(r["title"], "list the open tickets");
    assert_eq!(r["first_activity"], "2026-03-21T09:00:00.100Z");
    assert_eq!(r["last_activity"], "2026-03-21T10:05:00.000Z");
    let out = home.kato(&["export", "--format", "jsonl", SID], &[]);
    let exported = out.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(r["events"], exported as u64);
    assert_eq!(exported, 22);
    // The older shapes record no cwd: none is guessed.
    let flat = row(&rows, FLAT);
    assert_eq!(flat["cwd"], Value::Null);
    assert_eq!(
        flat["title"], "fix the build",
        "the datetime block is not the title"
    );
    let legacy = row(&rows, LEGACY);
    assert_eq!(legacy["cwd"], Value::Null);
    assert_eq!(legacy["title"], "what does @README.md say?");
    assert_eq!(legacy["first_activity"], "2025-10-26T15:33:01.060Z");
    let table = home.kato(&["sessions"], &[]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("/home/dev/ticketing"), "{table}");
    assert!(table.contains("copilot"), "{table}");
}

#[test]
fn copilot_exports_by_id_prefix_and_path() {
    let home = Home::new();
    let path = home
        .copilot()
        .join("session-state")
        .join(SID)
        .join("events.jsonl");
    let path = path.to_str().expect("utf-8 path");
    let mut outputs = Vec::new();
    for query in [SID, &SID[..13], path] {
        let out = home.kato(&["export", query], &[]);
        let md = String::from_utf8(out.stdout).expect("utf-8");
        assert!(md.contains("provider: \"copilot\""), "{query}: {md}");
        assert!(md.contains("One ticket is open: #7."), "{query}");
        // Injected context is not shown as the human's words by default.
        assert!(!md.contains("<reminder>"), "{query}: {md}");
        assert!(!md.contains("current_datetime"), "{query}: {md}");
        outputs.push(md);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    // The legacy document and the flat log export too.
    for (id, text) in [
        (LEGACY, "It is titled Demo."),
        (FLAT, "Looking at the build script."),
    ] {
        let md = home.kato(&["export", id], &[]);
        let md = String::from_utf8_lossy(&md.stdout);
        assert!(md.contains(text), "{id}: {md}");
    }
}

/// `COPILOT_HOME` stands for `~/.copilot`: with it set, the default roots
/// are under it.
#[test]
fn copilot_home_moves_the_default_roots() {
    let home = Home::new();
    let elsewhere = home.path().join("copilot-home");
    fs::rename(home.copilot(), &elsewhere).expect("move");
    assert!(home.sessions(&[]).is_empty());
    let rows = home.sessions(&[("COPILOT_HOME", &elsewhere)]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(row(&rows, SID)["cwd"], "/home/dev/ticketing");
}

/// `kato doctor` names the copilot stage's two roots and nothing beside
/// them (not `~/.copilot`, which holds the CLI's tokens).
#[test]
fn doctor_lists_the_copilot_roots_and_nothing_beside_them() {
    let home = Home::new();
    let out = home.kato(&["doctor", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "copilot")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        stage["read"],
        json!([
            home.copilot().join("history-session-state"),
            home.copilot().join("session-state")
        ])
    );
    assert_eq!(stage["write_files"], json!([]));
    assert_eq!(stage["create_in"], json!([]));
}

/// Copilot on in a recording setup, its root `copilot/session-state`;
/// returns the session directory of `sid`.
fn with_copilot(k: &Kato, sid: &str) -> PathBuf {
    let root = k.path("copilot/session-state");
    let dir = root.join(sid);
    fs::create_dir_all(&dir).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace(
            "[providers.copilot]\nenabled = false",
            &format!("[providers.copilot]\nroots = [\"{}\"]", root.display()),
        );
    fs::write(k.path("config.toml"), cfg).expect("config");
    dir
}

fn rec(kind: &str, id: &str, data: Value) -> String {
    json!({"type": kind, "data": data, "id": id,
           "timestamp": "2026-03-21T09:01:00.000Z", "parentId": null})
    .to_string()
}

#[test]
fn copilot_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let sid = "d00dfeed-0000-4000-8000-0000000000c1";
    let dir = with_copilot(&k, sid);
    let f = dir.join("events.jsonl");
    append(
        &f,
        &[
            rec(
                "session.start",
                "e0",
                json!({"sessionId": sid, "copilotVersion": "1.0.10",
                       "startTime": "2026-03-21T09:00:00.000Z", "context": {"cwd": "/w"}}),
            ),
            rec(
                "user.message",
                "e1",
                json!({"content": "history", "attachments": []}),
            ),
        ],
    );
    k.start();
    let cap = k.out("copilot.md");
    let planted = k.out("planted.md");
    let export = format!("::export {}", planted.display());
    append(
        &f,
        &[
            rec(
                "user.message",
                "e2",
                json!({"content": format!("hello copilot\n::capture {}", cap.display()),
                       // What the model got: the CLI's additions, one of
                       // them a planted command.
                       "transformedContent": format!(
                           "<current_datetime>now</current_datetime>\n\nhello copilot\n::capture {}\n\n<reminder>\n{export}\n</reminder>",
                           cap.display()),
                       "attachments": []}),
            ),
            rec("assistant.turn_start", "e3", json!({"turnId": "0"})),
            rec(
                "assistant.message",
                "e4",
                json!({"content": export, "reasoningText": export,
                       "toolRequests": [{"toolCallId": "c1", "name": "bash",
                                         "arguments": {"command": export}}]}),
            ),
            rec(
                "tool.execution_start",
                "e5",
                json!({"toolCallId": "c1", "toolName": "bash"}),
            ),
            rec(
                "tool.execution_complete",
                "e6",
                json!({"toolCallId": "c1", "success": true,
                       "result": {"content": export, "detailedContent": export}}),
            ),
            rec("session.info", "e7", json!({"message": export})),
            rec(
                "system.message",
                "e8",
                json!({"content": export, "role": "system"}),
            ),
            rec(
                "assistant.message",
                "e9",
                json!({"content": "copilot says hi", "toolRequests": []}),
            ),
            rec("assistant.turn_end", "e10", json!({"turnId": "0"})),
        ],
    );
    let text = k.wait_for_text(&cap, "copilot says hi");
    assert_eq!(count(&text, "::capture"), 1, "the human text once: {text}");
    k.settle(sid, &f);
    assert!(!planted.exists(), "a planted ::export ran");
    let default = k.out("default");
    assert!(
        fs::read_dir(&default).map_or(true, |mut d| d.next().is_none()),
        "nothing else was written"
    );
    let decided: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("command."))
        .collect();
    assert_eq!(decided, ["command.parsed", "command.executed"]);
    k.stop();
}

/// A partial last line is held until its newline comes: the record is
/// read once, whole, and its command runs once.
#[test]
fn copilot_partial_line_is_held_until_complete() {
    let mut k = Kato::recording();
    let sid = "d00dfeed-0000-4000-8000-0000000000c2";
    let dir = with_copilot(&k, sid);
    let f = dir.join("events.jsonl");
    append(
        &f,
        &[rec(
            "session.start",
            "e0",
            json!({"sessionId": sid, "copilotVersion": "1.0.10"}),
        )],
    );
    k.start();
    let cap = k.out("partial.md");
    let line = rec(
        "user.message",
        "e1",
        json!({"content": format!("::capture {}", cap.display())}),
    );
    let (head, tail) = line.split_at(line.len() / 2);
    crate::harness::append(&f, head);
    std::thread::sleep(std::time::Duration::from_millis(600));
    crate::harness::append(&f, &format!("{tail}\n"));
    append(
        &f,
        &[rec(
            "assistant.message",
            "e2",
            json!({"content": "whole again"}),
        )],
    );
    let text = k.wait_for_text(&cap, "whole again");
    assert_eq!(count(&text, "::capture"), 1, "{text}");
    k.settle(sid, &f);
    k.stop();
}

/// A legacy document the CLI rewrites as the chat grows, recorded live:
/// each rewrite adds only its new timeline items, the typed capture runs
/// once, and a planted command in a tool's log or the assistant's text
/// never does.
#[test]
fn copilot_legacy_document_rewritten_live_adds_only_new_items() {
    let mut k = Kato::recording();
    let root = k.path("copilot/history-session-state");
    fs::create_dir_all(&root).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace(
            "[providers.copilot]\nenabled = false",
            &format!("[providers.copilot]\nroots = [\"{}\"]", root.display()),
        );
    fs::write(k.path("config.toml"), cfg).expect("config");
    let sid = "d00dfeed-0000-4000-8000-0000000000c3";
    let f = root.join(format!("session_{sid}_1761492781060.json"));
    let item = |id: &str, kind: &str, text: &str| json!({"id": id, "timestamp": "2025-10-26T15:40:00.000Z", "type": kind, "text": text});
    let write = |items: &[Value]| {
        let doc = json!({"sessionId": sid, "startTime": "2025-10-26T15:33:01.060Z",
                         "chatMessages": [], "timeline": items, "selectedModel": "gpt-5"});
        let tmp = root.join(".tmp-doc");
        fs::write(&tmp, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
        fs::rename(&tmp, &f).expect("replace");
    };
    let mut items = vec![item("t1", "info", "Connected")];
    write(&items);
    k.start();
    let cap = k.out("legacy.md");
    let planted = k.out("planted-legacy.md");
    let export = format!("::export {}", planted.display());
    items.push(item(
        "t2",
        "user",
        &format!("read it\n::capture {}", cap.display()),
    ));
    items.push(json!({"type": "tool_call_completed", "id": "t3",
        "timestamp": "2025-10-26T15:40:01.000Z", "callId": "c1", "name": "view",
        "arguments": {"path": "README.md"}, "result": {"type": "success", "log": export}}));
    items.push(item("t4", "copilot", &export));
    items.push(item("t5", "copilot", "first answer"));
    write(&items);
    k.wait_for_text(&cap, "first answer");
    items.push(item("t6", "user", "and then?"));
    items.push(item("t7", "copilot", "second answer"));
    write(&items);
    let text = k.wait_for_text(&cap, "second answer");
    assert_eq!(count(&text, "first answer"), 1, "{text}");
    assert_eq!(count(&text, "::capture"), 1, "{text}");
    k.settle(sid, &f);
    k.stop();
    assert!(!planted.exists(), "a planted ::export ran");
}
