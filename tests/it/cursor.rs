//! Cursor agent transcripts: the synthetic fixtures in
//! `tests/fixtures/cursor/projects/` read as `kato export` reads them,
//! then the real binary listing, exporting and recording such
//! transcripts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::harness::{append_lines as append, count, Kato};
use kato::event::{Event, Payload, SystemCategory};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

const SID: &str = "7d3c1a20-5b9e-4f6a-8c2d-0e1f2a3b4c5d";
const FLAT: &str = "0b9e8f7a-1111-4222-8333-444455556666";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cursor/projects")
}

fn main_rel() -> String {
    format!("home-u-shop/agent-transcripts/{SID}/{SID}.jsonl")
}

fn cursor() -> &'static dyn Provider {
    by_name("cursor").expect("cursor is registered")
}

fn read(path: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    let inc = read_path(path, cursor(), Limits::default(), &mut |e| events.push(e)).expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    events
}

#[test]
fn cursor_fixture_maps_every_record_shape() {
    let events = read(&fixtures().join(main_rel()));
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match &e.payload {
            Payload::SystemMessage { category, .. } => format!("system.{}", category.label()),
            _ => e.kind().as_str().to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "system.Notice",
            "system.Injected context",
            "user.message",
            "assistant.message",
            "assistant.tool.call",
            "assistant.tool.call",
            "assistant.tool.result",
            "assistant.tool.result",
            "assistant.thinking",
            "assistant.message",
            "assistant.tool.call",
            "assistant.message",
            "provider.info",
            "system.Command",
            "user.message",
            "assistant.message",
            "provider.raw",
            "provider.raw",
        ]
    );
    let humans: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::UserMessage { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(humans, ["Add a discount field to the cart", "/review"]);
    // Results pair with the calls in the order they were made.
    let calls: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ToolCall { tool_call_id, .. } => Some(tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    let results: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ToolResult { tool_call_id, .. } => Some(tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(results, calls[..2]);
    assert!(events
        .iter()
        .all(|e| e.timestamp.is_none() && &*e.session_id == SID));
}

/// A home holding the fixtures under `.cursor/projects`, and a config
/// that names nothing but the state directory: the default roots.
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
            home.dir.path().join("state").display()
        );
        fs::write(home.dir.path().join("config.toml"), cfg).expect("config");
        home
    }

    fn projects(&self) -> PathBuf {
        self.dir.path().join("home/.cursor/projects")
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

/// No times and no directory are shown as unknown, never guessed (the
/// slug `home-u-shop` is not decoded).
#[test]
fn cursor_sessions_lists_titles_and_events_with_times_and_cwd_unknown() {
    let home = Home::new();
    // Settings kept beside the projects are not sessions.
    fs::write(home.projects().join("../cli-config.json"), "{}").expect("write");
    let out = home.kato(&["sessions", "--json"]);
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = rows.iter().find(|r| r["id"] == SID).expect("nested");
    assert_eq!(row["provider"], "cursor");
    assert_eq!(row["title"], "Add a discount field to the cart");
    assert_eq!(row["cwd"], Value::Null);
    assert_eq!(row["first_activity"], Value::Null);
    assert_eq!(row["last_activity"], Value::Null);
    let exported = home.kato(&["export", "--format", "jsonl", SID]);
    let n = exported.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(row["events"], n as u64);
    let flat = rows.iter().find(|r| r["id"] == FLAT).expect("flat");
    assert_eq!(flat["title"], "What does the shop sell?");
    let table = home.kato(&["sessions"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("cursor"), "{table}");
}

#[test]
fn cursor_exports_by_id_prefix_and_path_saying_there_are_no_times() {
    let home = Home::new();
    let path = home.projects().join(main_rel());
    let path = path.to_str().expect("utf-8 path");
    let mut outputs = Vec::new();
    for query in [SID, &SID[..13], path] {
        let out = home.kato(&["export", query]);
        let md = String::from_utf8(out.stdout).expect("utf-8");
        assert!(md.contains("provider: \"cursor\""), "{query}: {md}");
        assert!(md.contains("created: null"), "{query}: {md}");
        assert!(md.contains("records no times"), "{query}: {md}");
        assert!(md.contains("Added a discount to the cart."), "{query}");
        assert!(!md.contains("planted words"), "context is hidden: {md}");
        outputs.push(md);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
}

/// `kato doctor` names the cursor stage's one root, `~/.cursor/projects`.
#[test]
fn doctor_lists_the_cursor_root_and_nothing_beside_it() {
    let home = Home::new();
    let out = home.kato(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "cursor")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(stage["read"], json!([home.projects()]));
    assert_eq!(stage["write_files"], json!([]));
    assert_eq!(stage["create_in"], json!([]));
}

fn user(text: &str) -> String {
    json!({"role": "user", "message": {"content": [{"type": "text", "text": text}]}}).to_string()
}

fn assistant(blocks: Value) -> String {
    json!({"role": "assistant", "message": {"content": blocks}}).to_string()
}

/// The human's `::capture` inside `<user_query>` runs; an `::export`
/// planted in assistant text, in a tool result, and in a `<user_query>`
/// inside context ahead of the human's own query does not.
#[test]
fn cursor_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let root = k.path("cursor");
    let dir = root.join(format!("home-u-proj/agent-transcripts/{SID}"));
    fs::create_dir_all(&dir).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml"))
        .expect("config")
        .replace(
            "[providers.cursor]\nenabled = false",
            &format!("[providers.cursor]\nroots = [\"{}\"]", root.display()),
        );
    fs::write(k.path("config.toml"), cfg).expect("config");
    let f = dir.join(format!("{SID}.jsonl"));
    append(&f, &[user("<user_query>\nhistory\n</user_query>")]);
    k.start();
    let cap = k.out("cursor.md");
    let planted = k.out("planted.md");
    let export = format!("::export {}", planted.display());
    append(
        &f,
        &[
            user(&format!(
                "<git_diff_from_branch_to_main>\n<user_query>\n{export}\n</user_query>\n\
                 </git_diff_from_branch_to_main>\n<user_query>\nhello cursor\n::capture {}\n</user_query>",
                cap.display()
            )),
            assistant(json!([{"type": "text", "text": export},
                             {"type": "tool_use", "name": "Shell", "input": {"command": "cat notes"}}])),
            json!({"role": "user", "message": {"content": [{"type": "tool_result", "content": export}]}})
                .to_string(),
            assistant(json!([{"type": "text", "text": "cursor says hi"}])),
        ],
    );
    let text = k.wait_for_text(&cap, "cursor says hi");
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

/// Context Cursor adds is classified, never the human's words.
#[test]
fn cursor_context_blocks_are_not_human_messages() {
    let events = read(&fixtures().join(main_rel()));
    let injected = events
        .iter()
        .filter(|e| {
            matches!(
                e.payload,
                Payload::SystemMessage {
                    category: SystemCategory::InjectedContext | SystemCategory::CommandWrapper,
                    ..
                }
            )
        })
        .count();
    assert_eq!(injected, 2);
    assert!(!events.iter().any(|e| matches!(&e.payload,
        Payload::UserMessage { text, .. } if text.contains("planted"))));
}
