//! Cline and Roo Code tasks: the synthetic fixtures in
//! `tests/fixtures/cline/home/` read as `kato export` reads them, then the
//! real binary listing, exporting and watching such tasks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{count, Kato};
use kato::event::{Event, Kind, Payload, SystemCategory};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

const TASK: &str = "1761000000000";
const ROO_TASK: &str = "0b3e8c9a-5f2d-4e61-9a7b-2c4d6e8f0a1b";
const STORAGE: &str = ".config/Code/User/globalStorage";

fn fixture_home() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cline/home")
}

fn cline_tasks(home: &Path) -> PathBuf {
    home.join(STORAGE).join("saoudrizwan.claude-dev/tasks")
}

fn roo_tasks(home: &Path) -> PathBuf {
    home.join(STORAGE).join("rooveterinaryinc.roo-cline/tasks")
}

fn cline() -> &'static dyn Provider {
    by_name("cline").expect("cline is registered")
}

/// Read a file whole; no diagnostics allowed.
fn read(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, cline(), Limits::default(), &mut |e| events.push(e)).expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    events
}

fn human_texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.is_human_message())
        .filter_map(|e| match &e.payload {
            Payload::UserMessage { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn cline_fixture_maps_every_record_shape() {
    let events =
        read(&cline_tasks(&fixture_home()).join(format!("{TASK}/api_conversation_history.json")));
    let mut counts = std::collections::BTreeMap::new();
    for e in &events {
        *counts.entry(e.kind().as_str()).or_insert(0) += 1;
        assert_eq!(&*e.session_id, TASK);
        assert!(!e.copied);
    }
    assert_eq!(
        counts,
        [
            ("assistant.message", 4),
            ("assistant.thinking", 1),
            ("assistant.tool.call", 5),
            ("assistant.tool.result", 5),
            ("provider.info", 9),
            ("provider.raw", 3),
            ("system.message", 13),
            ("user.message", 4),
        ]
        .into_iter()
        .collect()
    );
    // The human's words only: the task without the file text its mention
    // added, the answer, the feedback, the message after a resumption.
    assert_eq!(
        human_texts(&events),
        [
            "Add a --verbose flag to 'src/main.rs' (see below for file content)",
            "Yes, in milliseconds",
            "Also document it in the README",
            "Now add a --quiet flag",
        ]
    );
    // A file that holds a feedback tag is tool output; the mention's text
    // is injected context.
    assert!(events.iter().any(|e| matches!(&e.payload,
        Payload::ToolResult { tool_call_id, output, .. }
            if tool_call_id == "toolu_01" && output.contains("<feedback>"))));
    assert!(events.iter().any(|e| matches!(&e.payload,
        Payload::SystemMessage { category: SystemCategory::InjectedContext, text }
            if text.starts_with("<file_content path=\"src/main.rs\">"))));
    // Every result belongs to a call seen before it; the failed one says so.
    let mut calls = Vec::new();
    for e in &events {
        match &e.payload {
            Payload::ToolCall { tool_call_id, .. } => calls.push(tool_call_id.clone()),
            Payload::ToolResult {
                tool_call_id,
                is_error,
                output,
            } => {
                assert!(calls.contains(tool_call_id), "{tool_call_id}");
                assert_eq!(*is_error, output.starts_with("The tool execution failed"));
            }
            _ => {}
        }
    }
    // Two working directories, in order; the image counts on the feedback.
    let cwds: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ProviderInfo { topic, data } if topic == "cwd" => Some(data.get()),
            _ => None,
        })
        .collect();
    assert_eq!(
        cwds,
        [r#"{"cwd":"/home/u/proj"}"#, r#"{"cwd":"/home/u/proj2"}"#]
    );
    assert!(events.iter().any(|e| matches!(&e.payload,
        Payload::UserMessage { text, attachments: 1 } if text.starts_with("Also document"))));
    // The agent's own times; the model of assistant events.
    assert!(events
        .iter()
        .filter(|e| e.kind() != Kind::ProviderRaw)
        .all(|e| e.timestamp.is_some()));
    assert!(events
        .iter()
        .filter(|e| matches!(e.kind(), Kind::AssistantMessage | Kind::ToolCall))
        .all(|e| e.model.as_deref() == Some("claude-sonnet-4-5")));
}

#[test]
fn roo_code_task_with_native_tool_results_reads_alike() {
    let events =
        read(&roo_tasks(&fixture_home()).join(format!("{ROO_TASK}/api_conversation_history.json")));
    assert_eq!(human_texts(&events), ["List the files"]);
    let results: Vec<(&str, bool)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ToolResult {
                tool_call_id,
                is_error,
                ..
            } => Some((tool_call_id.as_str(), *is_error)),
            _ => None,
        })
        .collect();
    assert_eq!(results, [("call_1", false), ("call_1", true)]);
    assert!(events.iter().all(|e| &*e.session_id == ROO_TASK));
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

/// A home holding the fixture tasks under VS Code's global storage, and a
/// config with nothing but the state directory.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        copy_tree(&fixture_home(), &home.home());
        let cfg = format!(
            "[state]\ndir = \"{}\"\n[sandbox]\nmode = \"best-effort\"\n",
            home.dir.path().join("state").display()
        );
        fs::write(home.dir.path().join("config.toml"), cfg).expect("config");
        home
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn kato(&self, args: &[&str]) -> Output {
        let out = std::process::Command::new(crate::harness::BIN)
            .env_clear()
            .env("HOME", self.home())
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

    fn sessions(&self) -> Vec<Value> {
        let out = self.kato(&["sessions", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v.as_array().cloned().expect("rows")
    }
}

#[test]
fn cline_sessions_lists_cwd_title_times_and_events() {
    let home = Home::new();
    let rows = home.sessions();
    let row = rows
        .iter()
        .find(|r| r["id"] == TASK)
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(row["provider"], "cline");
    assert_eq!(
        row["files"], 1,
        "ui_messages.json and task_metadata.json are no sessions"
    );
    // The last working directory the task recorded.
    assert_eq!(row["cwd"], "/home/u/proj2");
    assert_eq!(
        row["title"],
        "Add a --verbose flag to 'src/main.rs' (see below for file content)"
    );
    assert_eq!(row["first_activity"], "2025-10-20T22:40:00.000Z");
    assert_eq!(row["last_activity"], "2025-10-21T00:40:01.000Z");
    let out = home.kato(&["export", "--format", "jsonl", TASK]);
    let exported = out.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(row["events"], exported as u64);
    // Roo Code's task is found under its own extension folder.
    let roo = rows
        .iter()
        .find(|r| r["id"] == ROO_TASK)
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(roo["provider"], "cline");
    assert_eq!(roo["cwd"], "/home/u/roo");
    let table = home.kato(&["sessions"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("/home/u/proj2"), "{table}");
}

#[test]
fn cline_exports_by_id_prefix_and_path() {
    let home = Home::new();
    let path = cline_tasks(&home.home()).join(format!("{TASK}/api_conversation_history.json"));
    let path = path.to_str().expect("utf-8 path");
    let mut outputs = Vec::new();
    for query in [TASK, &TASK[..9], path] {
        let out = home.kato(&["export", query]);
        let md = String::from_utf8(out.stdout).expect("utf-8");
        assert!(md.contains("provider: \"cline\""), "{query}: {md}");
        assert!(md.contains("Now add a --quiet flag"), "{query}");
        assert!(
            !md.contains("::export"),
            "tool output is not shown by default: {md}"
        );
        outputs.push(md);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

/// `kato doctor` names the tasks folders that exist, and nothing above them.
#[test]
fn doctor_lists_the_cline_task_roots_and_nothing_beside_them() {
    let home = Home::new();
    let out = home.kato(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "cline")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(
        stage["read"],
        json!([roo_tasks(&home.home()), cline_tasks(&home.home())])
    );
    assert_eq!(stage["write_files"], json!([]));
    assert_eq!(stage["create_in"], json!([]));
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

/// The task history as Cline writes it: the whole array, in place.
fn write_history(path: &Path, messages: &[Value]) {
    fs::write(path, serde_json::to_string(messages).expect("json")).expect("write");
}

/// Cline hands tool output to the model as user-role text beside the
/// human's, in shapes a tool's output can take (see the provider's docs):
/// no command is read from its files, neither the one typed in feedback
/// nor one planted in a file the agent read, and the task is still watched.
#[test]
fn cline_live_task_runs_no_command_typed_or_planted() {
    let mut k = Kato::recording();
    let root = k.path("cline-tasks");
    let task = root.join(TASK);
    fs::create_dir_all(&task).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace(
            "[providers.cline]\nenabled = false",
            &format!("[providers.cline]\nroots = [\"{}\"]", root.display()),
        );
    fs::write(k.path("config.toml"), cfg).expect("config");
    let f = task.join("api_conversation_history.json");
    let mut history = vec![
        json!({"role": "user", "content": [text("<task>\nhistory\n</task>")],
                                   "ts": 1_761_000_000_000u64}),
    ];
    write_history(&f, &history);
    k.start();
    let cap = k.out("cline.md");
    let planted = k.out("planted.md");
    history.push(
        json!({"role": "assistant", "ts": 1_761_000_001_000u64, "content": [
        {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"path": "notes.md"}}]}),
    );
    history.push(
        json!({"role": "user", "ts": 1_761_000_002_000u64, "content": [
        text("[read_file for 'notes.md'] Result:"),
        text(&format!("<feedback>\n::export {}\n</feedback>", planted.display())),
        text(&format!("<feedback>\nhello cline\n::capture {}\n</feedback>", cap.display()))]}),
    );
    history.push(json!({"role": "assistant", "ts": 1_761_000_003_000u64,
                        "content": [text("cline says hi")]}));
    write_history(&f, &history);
    k.settle(TASK, &f);
    // A rewrite with one more message is read too, only its new events.
    history.push(json!({"role": "user", "ts": 1_761_000_004_000u64,
                        "content": [text("<feedback>\nthanks\n</feedback>")]}));
    write_history(&f, &history);
    k.settle(TASK, &f);
    // Roo Code writes a new file and renames it over the old one: the same
    // event ids, nothing counted twice.
    history.push(json!({"role": "assistant", "ts": 1_761_000_005_000u64,
                        "content": [text("you are welcome")]}));
    let tmp = task.join("api_conversation_history.json.tmp");
    write_history(&tmp, &history);
    fs::rename(&tmp, &f).expect("rename");
    k.settle(TASK, &f);
    assert!(!planted.exists(), "a planted ::export ran");
    assert!(!cap.exists(), "a command ran from a cline file");
    let default = k.out("default");
    assert!(
        fs::read_dir(&default).map_or(true, |mut d| d.next().is_none()),
        "nothing else was written"
    );
    let decided = k
        .audit()
        .iter()
        .filter(|r| {
            r["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("command."))
        })
        .count();
    assert_eq!(decided, 0, "no command was seen at all");
    let status = k.status().expect("status");
    let events = status["sessions"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == TASK))
        .and_then(|s| s["events"].as_u64());
    let out = k
        .cmd()
        .args(["--sandbox", "best-effort", "export", "--format", "jsonl"])
        .arg(&f)
        .output()
        .expect("export");
    let exported = String::from_utf8_lossy(&out.stdout);
    assert_eq!(count(&exported, "\"user.kato-command\""), 0);
    assert_eq!(
        events,
        Some(exported.lines().count() as u64),
        "each event once"
    );
    k.stop();
}
