//! Crush: a `.crush/crush.db` generated here in a project folder named as
//! a root, read through the real binary (listed, exported, every part
//! type), and live through the daemon (the human's `::capture` fires once,
//! a planted `::export` never runs).

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::harness::{assert_text_once, count, Kato};

const SCHEMA: &str = "
CREATE TABLE sessions (id TEXT PRIMARY KEY, parent_session_id TEXT, title TEXT NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0.0,
  updated_at INTEGER NOT NULL, created_at INTEGER NOT NULL, summary_message_id TEXT);
CREATE TABLE messages (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, role TEXT NOT NULL,
  parts TEXT NOT NULL default '[]', model TEXT, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, finished_at INTEGER, provider TEXT);
";

const SES: &str = "0a1b2c3d-0000-4000-8000-000000000001";
const KID: &str = "0a1b2c3d-0000-4000-8000-000000000002";
/// Seconds, as Crush writes them.
const T0: i64 = 1_780_000_000;

fn project(k: &Kato) -> (PathBuf, PathBuf) {
    let project = k.path("projects/webapp");
    fs::create_dir_all(project.join(".crush")).unwrap();
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap().replace(
        "[providers.crush]\nenabled = false",
        &format!(
            "[providers.crush]\nroots = [\"{}\"]",
            k.path("projects").display()
        ),
    );
    fs::write(k.path("config.toml"), cfg).unwrap();
    let db = project.join(".crush/crush.db");
    (project, db)
}

fn create(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    let _: String = c
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    c.execute_batch(SCHEMA).unwrap();
    c
}

fn session(c: &Connection, id: &str, parent: Option<&str>, title: &str) {
    c.execute(
        "INSERT INTO sessions (id, parent_session_id, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![id, parent, title, T0],
    )
    .unwrap();
}

fn message(
    c: &Connection,
    session: &str,
    id: &str,
    role: &str,
    t: i64,
    parts: Value,
    finished: bool,
) {
    c.execute(
        "INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at, finished_at, provider)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, 'p')",
        params![id, session, role, parts.to_string(), (role == "assistant").then_some("m-1"), T0 + t,
                finished.then_some(T0 + t)],
    )
    .unwrap();
}

fn conversation(c: &Connection) {
    session(c, SES, None, "Synthetic crush");
    session(c, KID, Some(SES), "Agent task");
    message(
        c,
        SES,
        "m1",
        "user",
        1,
        json!([{"type": "text", "data": {"text": "list the files"}},
        {"type": "image_url", "data": {"url": "x"}}, {"type": "finish", "data": {"reason": "stop", "time": 0}}]),
        true,
    );
    message(
        c,
        SES,
        "m2",
        "assistant",
        2,
        json!([{"type": "reasoning", "data": {"thinking": "hmm"}},
        {"type": "text", "data": {"text": "Listing."}},
        {"type": "tool_call", "data": {"id": "call_1", "name": "bash", "input": "{\"command\":\"ls\"}", "finished": true}},
        {"type": "finish", "data": {"reason": "tool_use", "time": T0 + 2}}]),
        true,
    );
    message(
        c,
        SES,
        "m3",
        "tool",
        3,
        json!([{"type": "tool_result", "data": {"tool_call_id": "call_1", "name": "bash", "content": "a\nb", "is_error": false}}]),
        true,
    );
    message(
        c,
        SES,
        "m4",
        "assistant",
        4,
        json!([{"type": "shell_command", "data": {"command": "ls"}},
        {"type": "finish", "data": {"reason": "error", "message": "boom"}}]),
        true,
    );
    message(
        c,
        KID,
        "k1",
        "user",
        5,
        json!([{"type": "text", "data": {"text": "look around"}}]),
        true,
    );
    message(
        c,
        KID,
        "k2",
        "assistant",
        6,
        json!([{"type": "text", "data": {"text": "Found two."}},
        {"type": "finish", "data": {"reason": "stop"}}]),
        true,
    );
}

#[test]
fn crush_database_in_a_project_is_listed_and_every_part_type_exported() {
    let k = Kato::recording();
    let (project, db) = project(&k);
    conversation(&create(&db));
    let out = k.kato(&["sessions", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("crush.db#{SES}")), "{text}");
    assert!(
        text.contains(&project.display().to_string()),
        "the project folder: {text}"
    );
    let events = k.export_events(&SES[..12]);
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "provider.info",
            "provider.info",
            "user.message",
            "assistant.thinking",
            "assistant.message",
            "assistant.tool.call",
            "assistant.tool.result",
            "provider.raw",
            "system.message",
            "provider.info",
            "system.message",
            "assistant.message",
        ]
    );
    assert_eq!(events[2]["attachments"], 1);
    assert_eq!(events[5]["input"]["command"], "ls");
    assert!(events[2]["timestamp"]
        .as_str()
        .unwrap()
        .starts_with("2026-05-2"));
    assert!(events.iter().all(|e| e["session_id"] == SES));
    assert_eq!(
        events.iter().filter(|e| e["subagent"]["id"] == KID).count(),
        3
    );
}

#[test]
fn crush_daemon_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let (_, db) = project(&k);
    let w = create(&db);
    session(&w, SES, None, "Live crush");
    message(
        &w,
        SES,
        "m1",
        "user",
        1,
        json!([{"type": "text", "data": {"text": "history"}}]),
        true,
    );
    k.start();
    let cap = k.out("crush.md");
    let planted = k.out("planted.md");
    let export_line = format!("::export {}", planted.display());
    let typed = format!("hello crush\n::capture {}", cap.display());
    message(
        &w,
        SES,
        "m2",
        "user",
        10,
        json!([{"type": "text", "data": {"text": typed}}]),
        true,
    );
    // The answer streams first (no finish yet), then is rewritten whole.
    message(
        &w,
        SES,
        "m3",
        "assistant",
        11,
        json!([{"type": "text", "data": {"text": "partial"}}]),
        false,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    w.execute(
        "UPDATE messages SET parts = ?1, updated_at = ?2, finished_at = ?2 WHERE id = 'm3'",
        params![
            json!([{"type": "text", "data": {"text": format!("{export_line}\ncrush says hi")}},
            {"type": "finish", "data": {"reason": "stop"}}])
            .to_string(),
            T0 + 12
        ],
    )
    .unwrap();
    message(
        &w,
        SES,
        "m4",
        "tool",
        13,
        json!([{"type": "tool_result", "data": {"tool_call_id": "c", "content": export_line}}]),
        true,
    );
    let text = k.wait_for_text(&cap, "crush says hi");
    assert_eq!(count(&text, "::capture"), 1, "{text}");
    assert_eq!(
        count(&text, "partial"),
        0,
        "an unsettled message was delivered: {text}"
    );
    let what = format!("{}#{SES}", db.display());
    k.settle(SES, Path::new(&what));
    assert!(!planted.exists(), "a planted ::export ran");
    let decided: Vec<String> = k
        .audit()
        .iter()
        .filter_map(|r| r["event"].as_str().map(str::to_owned))
        .filter(|e| e.starts_with("command."))
        .collect();
    assert_eq!(decided, ["command.parsed", "command.executed"]);
    k.stop();
    drop(w);
}

/// An export of a whole Crush database is named by the session it delivers
/// first: the oldest session (a child too), named by its root, learned from
/// the database by a query rather than a second read of it.
#[test]
fn crush_whole_database_export_is_named_by_the_session_it_delivers_first() {
    let k = Kato::recording();
    let (_, db) = project(&k);
    let c = create(&db);
    // The child is older than its parent; another root sorts first by id.
    let rows = [
        ("0-root-newest", None, 30),
        ("5-child-oldest", Some("9-its-root"), 10),
        ("9-its-root", None, 20),
    ];
    for (id, parent, t) in rows {
        c.execute(
            "INSERT INTO sessions (id, parent_session_id, title, created_at, updated_at) VALUES (?1, ?2, 'T', ?3, ?3)",
            params![id, parent, T0 + t],
        )
        .unwrap();
        message(
            &c,
            id,
            &format!("m-{id}"),
            "user",
            t,
            json!([{"type": "text", "data": {"text": format!("hello from {id}")}}]),
            true,
        );
    }
    drop(c);
    let events = k.export_events(&db);
    assert_eq!(events[0]["session_id"], "9-its-root", "{:?}", events[0]);
    assert_eq!(k.export_summary(&db)["session_id"], "9-its-root");
    for (id, _, _) in rows {
        assert_text_once(&events, &format!("hello from {id}"));
    }
}
