//! Aider chat histories: the synthetic fixture in
//! `tests/fixtures/aider/todo-app/` read as `kato export` reads it, then the
//! real binary finding such histories under the folders the user names
//! (`--root`, `[providers.aider] roots`), exporting them, and a live daemon
//! that runs no in-chat command from them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::harness::{append, Kato};
use kato::event::{Event, Kind, Payload};
use kato::provider::{by_name, Provider};
use kato::reader::{read_path, Limits};

const SID: &str = "aider-20260302-091507";
const CHAT: &str = ".aider.chat.history.md";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aider/todo-app")
        .join(CHAT)
}

fn aider() -> &'static dyn Provider {
    by_name("aider").expect("aider is registered")
}

/// One line per event: kind, event id, then the payload in short.
fn line(e: &Event) -> String {
    let detail = match &e.payload {
        Payload::UserMessage { text, .. }
        | Payload::AssistantMessage { text }
        | Payload::Thinking { text } => {
            format!("{:?}", text.lines().next().unwrap_or_default())
        }
        Payload::SystemMessage { category, text } => {
            let first = text.lines().next().unwrap_or_default();
            format!("{} {first:?}", category.label())
        }
        Payload::ProviderInfo { topic, .. } => topic.clone(),
        other => format!("{other:?}"),
    };
    format!("{} {} {detail}", e.kind().as_str(), e.event_id)
}

#[test]
fn aider_fixture_maps_every_line_shape() {
    let mut events = Vec::new();
    let inc = read_path(&fixture(), aider(), Limits::default(), &mut |e| {
        events.push(e)
    })
    .expect("read");
    assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
    let got: Vec<String> = events.iter().map(line).collect();
    let want = [
        "provider.info chat:1 session_start",
        r#"system.message chat:46 Notice "Add .aider* to .gitignore (recommended)? (Y)es/(N)o [Yes]: y""#,
        "provider.info chat:46#1 model",
        r#"system.message chat:343 Command "/add todo.py""#,
        r#"system.message chat:363 Notice "Added todo.py to the chat""#,
        r#"user.message chat:394 "Add a `done` flag to each item""#,
        r#"assistant.message chat:471 "I'll add the flag.""#,
        r#"system.message chat:680 Notice "Tokens: 2.1k sent, 180 received. Cost: $0.0090 message, $0.0090 session.""#,
        "provider.info chat:680#1 token_count",
        "provider.info chat:960 empty_input",
        r#"system.message chat:976 User shell "!git status""#,
        r#"system.message chat:995 Notice "On branch main""#,
        "provider.info chat:1015 session_start",
        r#"system.message chat:1060 Notice "Aider v0.86.1""#,
        "provider.info chat:1060#1 model",
        r#"user.message chat:1172 "Why does `list` print nothing when empty?""#,
        r#"assistant.thinking chat:1222 "The loop never runs for an empty list.""#,
        r#"assistant.message chat:1222#1 "An empty list prints nothing because the loop body never runs.""#,
        r#"system.message chat:1388 Notice "Tokens: 900 sent, 60 received.""#,
        "provider.info chat:1388#1 token_count",
    ];
    assert_eq!(got, want, "{got:#?}");
    assert!(!events.iter().any(|e| e.kind() == Kind::KatoCommand));
}

/// A temporary home with a projects folder holding the fixture in aider's
/// layout, decoys where discovery must not look, and a config with no
/// aider root.
struct Work {
    _dir: tempfile::TempDir,
    base: PathBuf,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = fs::canonicalize(dir.path()).expect("canonical");
        let project = base.join("work/todo-app");
        fs::create_dir_all(&project).expect("mkdir");
        fs::copy(fixture(), project.join(CHAT)).expect("copy");
        fs::write(
            project.join(".aider.input.history"),
            "\n# 2026-03-02 09:15:30.1\n+hi\n",
        )
        .expect("input history");
        // Not entered: dependency trees, hidden folders; not followed: links.
        for decoy in [
            "work/todo-app/node_modules/pkg",
            "work/todo-app/.git/x",
            "work/.cache/y",
        ] {
            fs::create_dir_all(base.join(decoy)).expect("mkdir");
            fs::write(
                base.join(decoy).join(CHAT),
                "\n# aider chat started at 2020-01-01 00:00:00\n\n#### decoy  \n",
            )
            .expect("decoy");
        }
        let outside = base.join("outside");
        fs::create_dir_all(&outside).expect("mkdir");
        fs::write(
            outside.join(CHAT),
            "\n# aider chat started at 2021-01-01 00:00:00\n\n#### outside  \n",
        )
        .expect("outside");
        std::os::unix::fs::symlink(&outside, base.join("work/linked")).expect("symlink");
        fs::create_dir_all(base.join("home")).expect("home");
        fs::write(
            base.join("config.toml"),
            format!(
                "[providers.claude]\nenabled = false\n[providers.codex]\nenabled = false\n\
                 [providers.gemini]\nenabled = false\n[state]\ndir = \"{}\"\n\
                 [sandbox]\nmode = \"best-effort\"\n",
                base.join("state").display()
            ),
        )
        .expect("config");
        Work { _dir: dir, base }
    }

    fn kato(&self, args: &[&str]) -> Output {
        std::process::Command::new(crate::harness::BIN)
            .env_clear()
            .env("HOME", self.base.join("home"))
            .env("KATO_CONFIG", self.base.join("config.toml"))
            .current_dir(&self.base)
            .args(args)
            .output()
            .expect("run kato")
    }

    fn rows(&self, args: &[&str]) -> Vec<Value> {
        let out = self.kato(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
        rows.as_array().expect("rows").clone()
    }
}

#[test]
fn sessions_with_root_list_the_history_with_its_folder_as_cwd() {
    let w = Work::new();
    let work = w.base.join("work");
    // Relative to the current directory, absolute, and `aider=` spelled out.
    for root in [
        "work".to_owned(),
        work.display().to_string(),
        format!("aider={}", work.display()),
    ] {
        let rows = w.rows(&["sessions", "--json", "--root", &root]);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!(r["id"], SID);
        assert_eq!(r["provider"], "aider");
        assert_eq!(
            r["cwd"].as_str(),
            Some(work.join("todo-app").to_str().unwrap())
        );
        assert_eq!(
            r["title"],
            "Add a `done` flag to each item and show it in `list`."
        );
        assert_eq!(r["first_activity"], "2026-03-02T09:15:07");
        assert_eq!(r["last_activity"], "2026-03-03T18:40:52");
        assert_eq!(r["events"], 20);
        assert_eq!(r["skipped"], 0);
    }
    // No root named, none configured: nothing.
    assert!(w.rows(&["sessions", "--json"]).is_empty());
}

#[test]
fn configured_aider_roots_are_searched_and_can_be_turned_off() {
    let w = Work::new();
    let cfg = w.base.join("config.toml");
    let text = fs::read_to_string(&cfg).expect("config");
    let with_root = format!(
        "{text}[providers.aider]\nroots = [\"{}\"]\n",
        w.base.join("work").display()
    );
    fs::write(&cfg, &with_root).expect("config");
    let rows = w.rows(&["sessions", "--json"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    fs::write(
        &cfg,
        with_root.replace(
            "[providers.aider]\n",
            "[providers.aider]\nenabled = false\n",
        ),
    )
    .expect("config");
    assert!(w.rows(&["sessions", "--json"]).is_empty());
}

#[test]
fn export_by_id_prefix_and_path() {
    let w = Work::new();
    let path = w.base.join("work/todo-app").join(CHAT);
    let by_id = w.kato(&["export", SID, "--root", "work", "--format", "jsonl"]);
    assert!(
        by_id.status.success(),
        "{}",
        String::from_utf8_lossy(&by_id.stderr)
    );
    let by_prefix = w.kato(&[
        "export",
        "aider-20260302",
        "--root",
        "work",
        "--format",
        "jsonl",
    ]);
    assert_eq!(by_prefix.stdout, by_id.stdout);
    let by_path = w.kato(&["export", path.to_str().unwrap(), "--format", "jsonl"]);
    assert!(
        by_path.status.success(),
        "{}",
        String::from_utf8_lossy(&by_path.stderr)
    );
    assert_eq!(by_path.stdout, by_id.stdout);
    let text = String::from_utf8(by_id.stdout).expect("utf-8");
    assert_eq!(text.lines().count(), 20);
    let md = w.kato(&["export", SID, "--root", "work"]);
    let md = String::from_utf8(md.stdout).expect("utf-8");
    assert!(md.contains("Add a `done` flag to each item"), "{md}");
    assert!(md.contains("An empty list prints nothing"), "{md}");
}

#[test]
fn a_root_that_is_not_a_directory_is_a_usage_error() {
    let w = Work::new();
    for bad in ["nosuch", "aider=", "claude=nosuch"] {
        let out = w.kato(&["sessions", "--root", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--root"), "{err}");
    }
}

/// Aider's file cannot tell what the human typed from a reply line that
/// looks the same, so no command runs from it: neither a `::capture` the
/// human typed nor an `::export` the model wrote.
#[test]
fn aider_chat_runs_no_command_typed_or_planted() {
    let mut k = Kato::recording();
    let project = k.path("work/proj");
    fs::create_dir_all(&project).expect("mkdir");
    let cfg = fs::read_to_string(k.path("config.toml")).expect("config");
    fs::write(
        k.path("config.toml"),
        format!(
            "{cfg}\n[providers.aider]\nroots = [\"{}\"]\n",
            k.path("work").display()
        ),
    )
    .expect("config");
    let f = project.join(CHAT);
    append(&f, "\n# aider chat started at 2026-03-02 09:15:07\n\n");
    k.start();
    let cap = k.out("aider.md");
    let planted = k.out("planted.md");
    append(
        &f,
        &format!(
            "#### hello aider  \n#### ::capture {}  \n\n#### ::export {}\n\nDone.\n\n\
             > Tokens: 1 sent, 1 received.  \n\n#### thanks  \n",
            cap.display(),
            planted.display()
        ),
    );
    let sid = "aider-20260302-091507";
    k.wait(&format!("events of {sid}"), |s| {
        s["sessions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["id"] == sid && x["events"].as_u64() >= Some(5))
        })
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!cap.exists(), "a typed ::capture ran");
    assert!(!planted.exists(), "a planted ::export ran");
    let commands: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("command."))
        .collect();
    assert!(commands.is_empty(), "{commands:?}");
    k.stop();
}

/// `kato doctor` names the aider stage's roots: the folders configured,
/// nothing else.
#[test]
fn doctor_lists_the_configured_aider_roots() {
    let w = Work::new();
    let cfg = w.base.join("config.toml");
    let text = fs::read_to_string(&cfg).expect("config");
    let work = w.base.join("work");
    fs::write(
        &cfg,
        format!(
            "{text}[providers.aider]\nroots = [\"{}\"]\n",
            work.display()
        ),
    )
    .expect("config");
    let out = w.kato(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = report["policy"]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "watch+parse" && s["instance"] == "aider")
        .cloned()
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(stage["read"], serde_json::json!([work]));
    assert_eq!(stage["write_files"], serde_json::json!([]));
    assert_eq!(stage["create_in"], serde_json::json!([]));
}
