//! Goose: a `sessions.db` generated here (the real one in the corpus has
//! no message; contents shaped as Goose's source writes them), read
//! through the real binary, and the real database's counts from an
//! independent counter (`tests/tools/real_goose_count.py`).

use std::fs;
use std::path::Path;

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::harness::{assert_golden_counts, assert_text_once, real_corpus, Kato};

/// Output of `python3 tests/tools/real_goose_count.py`.
const EXPECTED: [(&str, [usize; 8]); 1] =
    [("jwp23_sessions.db#20251202_1", [0, 0, 0, 0, 0, 0, 2, 0])];

const SCHEMA: &str = "
CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
  user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user', working_dir TEXT NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  extension_data TEXT DEFAULT '{}');
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
  role TEXT NOT NULL, content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER, metadata_json TEXT);
";

#[test]
fn goose_database_maps_every_content_type() {
    let k = Kato::recording();
    let root = k.path("goose");
    fs::create_dir_all(&root).unwrap();
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap().replace(
        "[providers.goose]\nenabled = false",
        &format!("[providers.goose]\nroots = [\"{}\"]", root.display()),
    );
    fs::write(k.path("config.toml"), cfg).unwrap();
    let c = Connection::open(root.join("sessions.db")).unwrap();
    c.execute_batch(SCHEMA).unwrap();
    c.execute(
        "INSERT INTO sessions (id, name, working_dir) VALUES ('20260101_1', 'Synthetic goose', '/home/u/proj')",
        [],
    )
    .unwrap();
    let msg = |role: &str, content: Value, meta: Value| {
        c.execute(
            "INSERT INTO messages (session_id, role, content_json, created_timestamp, metadata_json) VALUES ('20260101_1', ?1, ?2, 1780000000, ?3)",
            params![role, content.to_string(), meta.to_string()],
        )
        .unwrap();
    };
    let visible = json!({"userVisible": true, "agentVisible": true});
    msg(
        "user",
        json!([{"type": "text", "text": "list files"}, {"type": "image", "data": "x", "mimeType": "image/png"}]),
        visible.clone(),
    );
    msg(
        "assistant",
        json!([{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "Listing."},
        {"type": "toolRequest", "id": "t1", "toolCall": {"status": "success", "value": {"name": "shell", "arguments": {"command": "ls"}}}}]),
        visible.clone(),
    );
    msg(
        "user",
        json!([{"type": "toolResponse", "id": "t1", "toolResult": {"status": "success", "value": [{"type": "text", "text": "a\nb"}]}}]),
        visible.clone(),
    );
    msg(
        "user",
        json!([{"type": "text", "text": "context the agent added"}]),
        json!({"userVisible": false, "agentVisible": true}),
    );
    msg(
        "assistant",
        json!([{"type": "systemNotification", "notificationType": "info", "msg": "compacted"}, {"type": "redactedThinking", "data": "x"}]),
        visible,
    );
    drop(c);
    let out = k.kato(&["sessions", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sessions.db#20260101_1"));
    let out = k
        .cmd()
        .args(["export", "--format", "jsonl", "20260101_1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
            "system.message",
            "system.message",
            "provider.raw",
        ]
    );
    assert_eq!(events[2]["attachments"], 1);
    assert_eq!(events[5]["input"]["command"], "ls");
    assert_eq!(events[6]["output"], "a\nb");
    assert_eq!(events[0]["data"]["cwd"], "/home/u/proj");
}

#[test]
fn every_real_goose_session_has_exact_counts_and_no_diagnostics() {
    let Some(base) = real_corpus() else {
        return;
    };
    let goose = kato::provider::by_name("goose").expect("registered");
    let db = base.join("goose/jwp23_sessions.db");
    let ids = kato::database::sessions(goose, &db).expect("sessions");
    assert_eq!(ids.len(), EXPECTED.len());
    for (name, expected) in EXPECTED {
        let id = name.split('#').nth(1).expect("id");
        let path = kato::database::session_path(&db, id);
        let mut kinds = Vec::new();
        let inc = kato::reader::read_path(
            Path::new(&path),
            goose,
            kato::reader::Limits::default(),
            &mut |e| kinds.push(e.kind()),
        )
        .expect("read");
        assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
        assert_golden_counts(name, kinds, &expected);
    }
}

/// An export of a whole Goose database is named by the session it
/// delivers first (the oldest, not the first by id), learned from the database by a query
/// rather than a second read of it.
#[test]
fn goose_whole_database_export_is_named_by_the_session_it_delivers_first() {
    let k = Kato::recording();
    let db = k.path("goose/sessions.db");
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let c = Connection::open(&db).unwrap();
    c.execute_batch(SCHEMA).unwrap();
    let rows = [
        ("20260103_1", "2026-01-03 10:00:00"),
        ("20260301_9", "2026-01-01 10:00:00"),
        ("20260102_1", "2026-01-02 10:00:00"),
    ];
    for (id, at) in rows {
        c.execute(
            "INSERT INTO sessions (id, name, working_dir, created_at) VALUES (?1, 'S', '/home/u/proj', ?2)",
            params![id, at],
        )
        .unwrap();
        c.execute(
            "INSERT INTO messages (session_id, role, content_json, created_timestamp, metadata_json) VALUES (?1, 'user', ?2, 1780000000, '{}')",
            params![id, json!([{"type": "text", "text": format!("hello from {id}")}]).to_string()],
        )
        .unwrap();
    }
    drop(c);
    let events = k.export_events(&db);
    assert_eq!(events[0]["session_id"], "20260301_9", "{:?}", events[0]);
    assert_eq!(k.export_summary(&db)["session_id"], "20260301_9");
    for (id, _) in rows {
        assert_text_once(&events, &format!("hello from {id}"));
    }
}
