//! OpenCode's SQLite database through the real binary: every part type
//! from a database generated here, read-only under the sandbox (a live
//! writer in WAL mode is never blocked, its uncheckpointed rows are read,
//! and the folder is left exactly as it was), and poisoned databases
//! skipped and counted.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::harness::{assert_text_once, Kato, Setup};

/// The tables and columns OpenCode's migrations create (the columns kato
/// reads, and enough of the rest to be recognisable).
const SCHEMA: &str = "
CREATE TABLE project (id text PRIMARY KEY, worktree text NOT NULL, time_created integer NOT NULL,
  time_updated integer NOT NULL, sandboxes text NOT NULL);
CREATE TABLE session (id text PRIMARY KEY, project_id text NOT NULL, parent_id text, slug text NOT NULL,
  directory text NOT NULL, title text NOT NULL, version text NOT NULL, share_url text,
  time_created integer NOT NULL, time_updated integer NOT NULL, time_archived integer);
CREATE TABLE message (id text PRIMARY KEY, session_id text NOT NULL, time_created integer NOT NULL,
  time_updated integer NOT NULL, data text NOT NULL);
CREATE TABLE part (id text PRIMARY KEY, message_id text NOT NULL, session_id text NOT NULL,
  time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
";

const SES: &str = "ses_0a1b2c3d4e5fSyntheticOne";
const CHILD: &str = "ses_0a1b2c3d4e6fSyntheticKid";
const T0: i64 = 1_780_000_000_000;

/// A test home whose OpenCode root is `opencode/` (holding `opencode.db`).
fn setup() -> (Kato, PathBuf) {
    let k = Kato::with(Setup {
        codex_root: true,
        exports: true,
        sandbox: "enforce".into(),
    });
    let root = k.path("opencode");
    fs::create_dir_all(&root).unwrap();
    let config = fs::read_to_string(k.path("config.toml")).unwrap().replace(
        "[providers.opencode]\nenabled = false\n",
        &format!("[providers.opencode]\nroots = [\"{}\"]\n", root.display()),
    );
    fs::write(k.path("config.toml"), config).unwrap();
    (k, root.join("opencode.db"))
}

fn create(db: &Path, wal: bool) -> Connection {
    let c = Connection::open(db).unwrap();
    if wal {
        let mode: String = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        c.execute_batch("PRAGMA wal_autocheckpoint=0;").unwrap();
    }
    c.execute_batch(SCHEMA).unwrap();
    c
}

fn session(c: &Connection, id: &str, parent: Option<&str>, title: &str) {
    c.execute(
        "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, time_created, time_updated)
         VALUES (?1, 'global', ?2, 'slug', '/home/u/proj', ?3, '1.17.3', ?4, ?4)",
        params![id, parent, title, T0],
    )
    .unwrap();
}

fn message(c: &Connection, session: &str, id: &str, t: i64, data: Value) {
    c.execute(
        "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?3, ?4)",
        params![id, session, T0 + t, data.to_string()],
    )
    .unwrap();
}

fn part(c: &Connection, session: &str, msg: &str, id: &str, t: i64, data: Value) {
    c.execute(
        "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
        params![id, msg, session, T0 + t, data.to_string()],
    )
    .unwrap();
}

fn user(model: &str) -> Value {
    json!({"role": "user", "time": {"created": T0}, "agent": "build",
           "model": {"providerID": "p", "modelID": model}})
}

fn assistant(model: &str) -> Value {
    json!({"role": "assistant", "parentID": "msg_01", "modelID": model, "providerID": "p",
           "mode": "build", "path": {"cwd": "/home/u/proj", "root": "/home/u/proj"},
           "tokens": {"input": 10, "output": 5, "reasoning": 0, "cache": {"read": 0, "write": 0}},
           "cost": 0.01, "time": {"created": T0, "completed": T0 + 9}, "finish": "stop"})
}

/// One session with a child session, holding every part type.
fn every_part_type(c: &Connection) {
    session(c, SES, None, "Synthetic session");
    session(c, CHILD, Some(SES), "Subagent work");
    message(c, SES, "msg_01", 1, user("m-1"));
    part(
        c,
        SES,
        "msg_01",
        "prt_01a",
        1,
        json!({"type": "text", "text": "please list files"}),
    );
    part(
        c,
        SES,
        "msg_01",
        "prt_01b",
        1,
        json!({"type": "file", "mime": "text/plain", "filename": "notes.txt", "url": "file:///home/u/proj/notes.txt"}),
    );
    part(
        c,
        SES,
        "msg_01",
        "prt_01c",
        1,
        json!({"type": "agent", "name": "build"}),
    );
    message(c, SES, "msg_02", 2, assistant("m-1"));
    part(
        c,
        SES,
        "msg_02",
        "prt_02a",
        2,
        json!({"type": "step-start", "snapshot": "abc"}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02b",
        2,
        json!({"type": "reasoning", "text": "thinking it over", "time": {"start": T0, "end": T0 + 1}}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02c",
        2,
        json!({"type": "text", "text": "Here they are.", "time": {"start": T0, "end": T0 + 2}}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02d",
        2,
        json!({"type": "tool", "tool": "bash", "callID": "call_1",
        "state": {"status": "completed", "input": {"command": "ls"}, "output": "a\nb", "title": "ls", "metadata": {}, "time": {"start": T0, "end": T0 + 3}}}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02e",
        2,
        json!({"type": "tool", "tool": "read", "callID": "call_2",
        "state": {"status": "error", "input": {"filePath": "/x"}, "error": "no such file", "time": {"start": T0, "end": T0 + 3}}}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02f",
        2,
        json!({"type": "subtask", "prompt": "look around", "description": "explore", "agent": "general"}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02g",
        2,
        json!({"type": "snapshot", "snapshot": "def"}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02h",
        2,
        json!({"type": "patch", "hash": "h", "files": ["a"]}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02i",
        2,
        json!({"type": "retry", "attempt": 2, "error": {"name": "APIError"}}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02j",
        2,
        json!({"type": "compaction", "auto": true}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02k",
        2,
        json!({"type": "step-finish", "reason": "stop", "tokens": {"input": 10}, "cost": 0.01}),
    );
    part(
        c,
        SES,
        "msg_02",
        "prt_02l",
        2,
        json!({"type": "hologram", "future": true}),
    );
    message(c, SES, "msg_03", 3, user("m-1"));
    part(
        c,
        SES,
        "msg_03",
        "prt_03a",
        3,
        json!({"type": "text", "text": "The following tool was executed by the user", "synthetic": true}),
    );
    message(
        c,
        SES,
        "msg_04",
        4,
        json!({"role": "assistant", "modelID": "m-1", "error": {"name": "APIError", "data": {"message": "rate limited"}}}),
    );
    message(c, CHILD, "msg_k1", 5, user("m-2"));
    part(
        c,
        CHILD,
        "msg_k1",
        "prt_k1a",
        5,
        json!({"type": "text", "text": "look around"}),
    );
    message(c, CHILD, "msg_k2", 6, assistant("m-2"));
    part(
        c,
        CHILD,
        "msg_k2",
        "prt_k2a",
        6,
        json!({"type": "text", "text": "Found two files."}),
    );
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let mut s = e["kind"].as_str().unwrap().to_owned();
            for k in ["topic", "category"] {
                if let Some(t) = e[k].as_str() {
                    s = format!("{s}/{t}");
                }
            }
            s
        })
        .collect()
}

#[test]
fn opencode_database_maps_every_part_type_in_order() {
    let (k, db) = setup();
    every_part_type(&create(&db, false));
    let events = k.export_events(format!("{}#{SES}", db.display()));
    assert_eq!(
        kinds(&events),
        [
            "provider.info/session_meta",
            "provider.info/title",
            "user.message",
            "provider.info/attachment",
            "provider.info/agent",
            "assistant.thinking",
            "assistant.message",
            "assistant.tool.call",
            "assistant.tool.result",
            "assistant.tool.call",
            "assistant.tool.result",
            "system.message/subagent-prompt",
            "provider.info/snapshot",
            "provider.info/patch",
            "system.message/notice",
            "system.message/compaction",
            "provider.info/token_count",
            "provider.raw",
            "system.message/injected-context",
            "system.message/error",
            "provider.info/session_meta",
            "system.message/subagent-prompt",
            "assistant.message",
        ]
    );
    for e in &events {
        assert_eq!(e["session_id"], SES);
        assert_eq!(e["provider"], "opencode");
    }
    let child: Vec<&Value> = events
        .iter()
        .filter(|e| e["subagent"].is_object())
        .collect();
    assert_eq!(child.len(), 3);
    assert!(child.iter().all(|e| e["subagent"]["id"] == CHILD));
    let result = events
        .iter()
        .find(|e| e["event_id"] == "prt_02e#result")
        .unwrap();
    assert_eq!(result["is_error"], true);
    assert_eq!(result["output"], "no such file");
    let text = events.iter().find(|e| e["event_id"] == "prt_02c").unwrap();
    assert_eq!(text["model"], "m-1");
    assert!(text["timestamp"].as_str().unwrap().starts_with("2026-"));
    let meta = &events[0];
    assert_eq!(meta["data"]["cwd"], "/home/u/proj");
}

#[test]
fn opencode_sessions_are_listed_and_exported_by_id_prefix() {
    let (k, db) = setup();
    every_part_type(&create(&db, false));
    let out = k.kato(&["sessions", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(SES), "{text}");
    assert!(
        !text.contains(&format!("\"id\":\"{CHILD}\"")),
        "child listed alone: {text}"
    );
    assert!(text.contains(&format!("opencode.db#{SES}")), "{text}");
    let events = k.export_events(&SES[..12]);
    assert_eq!(events.len(), 23);
}

/// Name, size, mtime and inode of every entry of `dir`.
fn listing(dir: &Path) -> BTreeMap<String, (u64, i64, i64, u64)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.len(), m.mtime(), m.mtime_nsec(), m.ino()),
            )
        })
        .collect()
}

#[test]
fn opencode_live_writer_is_never_blocked_and_its_uncheckpointed_rows_are_read() {
    let (k, db) = setup();
    let w = create(&db, true);
    w.busy_timeout(Duration::ZERO).unwrap();
    session(&w, SES, None, "Live");
    message(&w, SES, "msg_01", 1, user("m"));
    part(
        &w,
        SES,
        "msg_01",
        "prt_01",
        1,
        json!({"type": "text", "text": "first"}),
    );
    let dir = db.parent().unwrap().to_path_buf();
    assert!(dir.join("opencode.db-wal").exists() && dir.join("opencode.db-shm").exists());
    // Nothing checkpointed: the rows are in the WAL only.
    let wal_frames = fs::metadata(dir.join("opencode.db-wal")).unwrap().len();
    assert!(wal_frames > 0);
    let what = format!("{}#{SES}", db.display());
    let before = listing(&dir);
    let events = k.export_events(&what);
    assert_eq!(listing(&dir), before, "kato changed the agent's folder");
    assert!(events.iter().any(|e| e["text"] == "first"), "{events:?}");

    // The writer keeps inserting, without waiting, while kato reads.
    let started = Instant::now();
    let mut n = 0;
    let mut reads = 0;
    while started.elapsed() < Duration::from_secs(3) || reads < 3 {
        let mut child = k
            .cmd()
            .args(["export", "--format", "jsonl", "--output", "-"])
            .arg(&what)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            n += 1;
            let t = 10 + n;
            part(
                &w,
                SES,
                "msg_01",
                &format!("prt_{n:06}"),
                t,
                json!({"type": "text", "text": format!("row {n}")}),
            );
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reads += 1;
    }
    assert!(n > 0);
    let before = listing(&dir);
    let events = k.export_events(&what);
    assert_eq!(listing(&dir), before, "kato changed the agent's folder");
    let last = format!("row {n}");
    assert!(
        events.iter().any(|e| e["text"] == last.as_str()),
        "row {n} not read"
    );
    eprintln!(
        "live writer: {n} rows inserted during {reads} reads, none blocked; WAL {} bytes",
        fs::metadata(dir.join("opencode.db-wal")).unwrap().len()
    );
}

#[test]
fn opencode_wal_database_without_wal_or_shm_is_read_and_nothing_created() {
    let (k, db) = setup();
    {
        let w = create(&db, true);
        every_part_type(&w);
        w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    let dir = db.parent().unwrap().to_path_buf();
    // The last connection closed: SQLite removed the -wal and -shm.
    assert_eq!(listing(&dir).len(), 1, "{:?}", listing(&dir));
    let before = listing(&dir);
    let events = k.export_events(format!("{}#{SES}", db.display()));
    assert_eq!(events.len(), 23);
    assert_eq!(listing(&dir), before, "kato created or changed a file");
}

#[test]
fn opencode_corrupt_or_truncated_database_is_skipped_and_counted() {
    let (k, db) = setup();
    every_part_type(&create(&db, false));
    let bytes = fs::read(&db).unwrap();
    let root = db.parent().unwrap();
    let broken = root.join("opencode-broken.db");
    // Header intact, pages garbage.
    let mut garbage = bytes.clone();
    for b in garbage.iter_mut().skip(100) {
        *b = 0xA5;
    }
    fs::write(&broken, &garbage).unwrap();
    // Cut short.
    let cut = root.join("opencode-cut.db");
    fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = k.kato(&["sessions", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(SES));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("opencode-broken.db"), "{stderr}");
    for bad in [&broken, &cut] {
        let out = k
            .cmd()
            .args(["export", "--format", "jsonl", "--json"])
            .arg(format!("{}#{SES}", bad.display()))
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        assert!(out.status.code().is_some(), "killed by a signal");
    }
    // A data column that is not JSON: that row is skipped and counted.
    let c = Connection::open(&db).unwrap();
    c.execute(
        "UPDATE part SET data = 'not json {' WHERE id = 'prt_02c'",
        [],
    )
    .unwrap();
    drop(c);
    let summary = k.export_summary(format!("{}#{SES}", db.display()));
    assert_eq!(summary["skipped"]["total"], 1, "{summary}");
    assert_eq!(summary["events"], 22, "{summary}");
}

/// Without any sandbox (the library, in this process, in a writable
/// folder): reading never creates a `-wal` or `-shm` SQLite would make
/// for a read-only connection, with or without a writer connected.
#[test]
fn opencode_wal_database_read_unconfined_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opencode.db");
    let provider = kato::provider::by_name("opencode").unwrap();
    let what = kato::database::session_path(&db, SES);
    let count = || {
        let mut n = 0;
        let inc = kato::reader::read_path(
            &what,
            provider,
            kato::reader::Limits::default(),
            &mut |_| n += 1,
        )
        .unwrap();
        assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
        n
    };
    {
        let w = create(&db, true);
        every_part_type(&w);
        let before = listing(dir.path());
        assert_eq!(before.len(), 3, "{before:?}");
        assert_eq!(count(), 23);
        assert_eq!(listing(dir.path()), before, "a writer connected");
    }
    let before = listing(dir.path());
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(count(), 23);
    assert_eq!(listing(dir.path()), before, "no writer, no -wal");
}

/// The daemon reads OpenCode's database live: a tool part written pending
/// and then completed gives one call and one result, the human's
/// `::capture` fires once, and a `::export` planted in the tool's output
/// or the model's text never runs.
#[test]
fn opencode_daemon_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let root = k.path("opencode");
    fs::create_dir_all(&root).unwrap();
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap().replace(
        "[providers.opencode]\nenabled = false",
        &format!("[providers.opencode]\nroots = [\"{}\"]", root.display()),
    );
    fs::write(k.path("config.toml"), cfg).unwrap();
    let db = root.join("opencode.db");
    let w = create(&db, true);
    session(&w, SES, None, "Live session");
    message(&w, SES, "msg_01", 1, user("m"));
    part(
        &w,
        SES,
        "msg_01",
        "prt_01",
        1,
        json!({"type": "text", "text": "history"}),
    );
    k.start();
    let cap = k.out("opencode.md");
    let planted = k.out("planted.md");
    let export = format!("::export {}", planted.display());
    message(&w, SES, "msg_02", 10, user("m"));
    let typed = format!("hello opencode\n::capture {}", cap.display());
    part(
        &w,
        SES,
        "msg_02",
        "prt_02",
        10,
        json!({"type": "text", "text": typed}),
    );
    message(&w, SES, "msg_03", 11, assistant("m"));
    let pending = json!({"type": "tool", "tool": "bash", "callID": "call_9",
        "state": {"status": "running", "input": {"command": "cat notes"}, "time": {"start": T0}}});
    part(&w, SES, "msg_03", "prt_03a", 12, pending);
    std::thread::sleep(Duration::from_millis(300));
    let done = json!({"type": "tool", "tool": "bash", "callID": "call_9",
        "state": {"status": "completed", "input": {"command": "cat notes"}, "output": export,
                  "time": {"start": T0, "end": T0 + 1}}});
    w.execute(
        "UPDATE part SET data = ?1, time_updated = ?2 WHERE id = 'prt_03a'",
        params![done.to_string(), T0 + 13],
    )
    .unwrap();
    part(
        &w,
        SES,
        "msg_03",
        "prt_03b",
        14,
        json!({"type": "text", "text": format!("{export}\nopencode says hi")}),
    );
    let text = k.wait_for_text(&cap, "opencode says hi");
    assert_eq!(
        crate::harness::count(&text, "::capture"),
        1,
        "the human text once: {text}"
    );
    let what = format!("{}#{SES}", db.display());
    k.settle(SES, Path::new(&what));
    assert!(!planted.exists(), "a planted ::export ran");
    let status = k.status().unwrap();
    let out = k
        .cmd()
        .args(["--sandbox", "best-effort", "export", "--format", "jsonl"])
        .arg(&what)
        .output()
        .unwrap();
    let n = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    let events = status["sessions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == SES))
        .and_then(|x| x["events"].as_u64());
    assert_eq!(
        events,
        Some(n),
        "each event once (the tool's call and result once)"
    );
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

/// The daemon's reads, through the library: each read from the last
/// cursor delivers only what changed, a pending tool part nothing until it
/// completes, then its call and result once.
#[test]
fn opencode_incremental_reads_deliver_each_settled_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opencode.db");
    let provider = kato::provider::by_name("opencode").unwrap();
    let ctx = provider.classify(Path::new("opencode.db")).unwrap();
    let w = create(&db, true);
    session(&w, SES, None, "Live");
    message(&w, SES, "msg_01", 1, user("m"));
    part(
        &w,
        SES,
        "msg_01",
        "prt_01",
        1,
        json!({"type": "text", "text": "first"}),
    );
    let mut cursor = kato::reader::Cursor::default();
    let read = |cursor: &mut kato::reader::Cursor| {
        let mut ids = Vec::new();
        let inc = kato::database::read_since(
            &db,
            provider,
            &ctx,
            cursor,
            kato::reader::Limits::default(),
            &mut |e| ids.push(e.event_id),
        )
        .unwrap();
        assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
        *cursor = inc.cursor;
        ids
    };
    assert_eq!(
        read(&mut cursor),
        [
            format!("{SES}:session"),
            format!("{SES}:title"),
            "prt_01".into()
        ]
    );
    assert!(read(&mut cursor).is_empty());
    message(&w, SES, "msg_02", 2, assistant("m"));
    part(
        &w,
        SES,
        "msg_02",
        "prt_02",
        3,
        json!({"type": "tool", "tool": "bash", "callID": "c",
        "state": {"status": "running", "input": {}}}),
    );
    assert!(read(&mut cursor).is_empty(), "a running tool waits");
    w.execute(
        "UPDATE part SET data = ?1, time_updated = ?2 WHERE id = 'prt_02'",
        params![
            json!({"type": "tool", "tool": "bash", "callID": "c",
            "state": {"status": "completed", "input": {}, "output": "ok"}})
            .to_string(),
            T0 + 4
        ],
    )
    .unwrap();
    part(
        &w,
        SES,
        "msg_02",
        "prt_03",
        5,
        json!({"type": "text", "text": "done"}),
    );
    assert_eq!(read(&mut cursor), ["prt_02", "prt_02#result", "prt_03"]);
    assert!(read(&mut cursor).is_empty());
}

/// Write the sessions of database `c` as OpenCode's JSON store under
/// `storage` (`session/<project>/`, `message/<session>/`,
/// `part/<message>/`), as versions before 1.2 wrote it: each row's `data`
/// with its ids, a message's creation time in its `time.created`.
fn write_store(c: &Connection, storage: &Path) {
    let mut s = c
        .prepare("SELECT id, parent_id, title, directory, version, time_created, time_updated FROM session")
        .unwrap();
    type SessionCols = (String, Option<String>, String, String, String, i64, i64);
    let sessions: Vec<SessionCols> = s
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, parent, title, directory, version, created, updated) in sessions {
        let mut doc = json!({"id": id, "projectID": "global", "title": title, "directory": directory,
            "version": version, "time": {"created": created, "updated": updated}});
        if let Some(p) = parent {
            doc["parentID"] = json!(p);
        }
        let dir = storage.join("session/global");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{id}.json")), doc.to_string()).unwrap();
    }
    let mut m = c
        .prepare("SELECT id, session_id, time_created, data FROM message")
        .unwrap();
    let rows: Vec<(String, String, i64, String)> = m
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, session, created, data) in rows {
        let mut doc: Value = serde_json::from_str(&data).unwrap();
        doc["id"] = json!(id);
        doc["sessionID"] = json!(session);
        doc["time"] = json!({"created": created});
        let dir = storage.join("message").join(&session);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{id}.json")), doc.to_string()).unwrap();
    }
    let mut p = c
        .prepare("SELECT id, message_id, session_id, data FROM part")
        .unwrap();
    let rows: Vec<(String, String, String, String)> = p
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, message, session, data) in rows {
        let mut doc: Value = serde_json::from_str(&data).unwrap();
        doc["id"] = json!(id);
        doc["sessionID"] = json!(session);
        doc["messageID"] = json!(message);
        let dir = storage.join("part").join(&message);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("{id}.json")), doc.to_string()).unwrap();
    }
}

/// The same sessions in the database and in the JSON store (built here
/// from the same rows) give the same events; `kato sessions` lists the
/// session once.
#[test]
fn opencode_json_store_and_database_give_identical_events() {
    let (k, db) = setup();
    let c = create(&db, false);
    every_part_type(&c);
    // Parts created with their message (the store keeps no part times).
    c.execute_batch(
        "UPDATE message SET time_updated = time_created; \
         UPDATE part SET time_created = (SELECT time_created FROM message m WHERE m.id = part.message_id), \
                         time_updated = (SELECT time_created FROM message m WHERE m.id = part.message_id);",
    )
    .unwrap();
    let storage = db.parent().unwrap().join("storage");
    write_store(&c, &storage);
    drop(c);
    let strip = |mut events: Vec<Value>| {
        for e in &mut events {
            e.as_object_mut().unwrap().remove("source");
        }
        events
    };
    let from_db = k.export_events(format!("{}#{SES}", db.display()));
    let file = storage.join(format!("session/global/{SES}.json"));
    let from_store = k.export_events(file.display().to_string());
    assert_eq!(from_db.len(), 23);
    assert_eq!(strip(from_store), strip(from_db));
    let out = k.kato(&["sessions", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        crate::harness::count(&text, &format!("\"id\": \"{SES}\"")),
        1,
        "{text}"
    );
}

/// A session larger than SQLite's page cache, read under the sandbox:
/// nothing may need a temporary file (Landlock grants none), so parts are
/// read message by message through OpenCode's index, never sorted whole.
#[test]
fn opencode_large_session_is_read_without_a_temporary_file() {
    let (k, db) = setup();
    let c = create(&db, false);
    session(&c, SES, None, "Large");
    let filler = "x".repeat(1500);
    c.execute_batch("BEGIN").unwrap();
    for m in 0..400 {
        let mid = format!("msg_{m:06}");
        message(&c, SES, &mid, m, assistant("m"));
        for p in 0..8 {
            part(
                &c,
                SES,
                &mid,
                &format!("prt_{m:06}_{p}"),
                m,
                json!({"type": "text", "text": filler}),
            );
        }
    }
    c.execute_batch("COMMIT").unwrap();
    drop(c);
    let summary = k.export_summary(format!("{}#{SES}", db.display()));
    assert_eq!(summary["skipped"]["total"], 0, "{summary}");
    assert_eq!(summary["events"], 2 + 400 * 8, "{summary}");
}

/// The daemon's OpenCode stage is granted the database's files one by one
/// (never the folder, which holds `auth.json`); OpenCode creates the
/// `-wal` and `-shm` each time it starts, after kato did. The stage is
/// then started again with them in its domain, and the rows written
/// through the new `-wal` are read live: a `::capture` typed then runs.
#[test]
fn opencode_daemon_reads_rows_written_after_the_wal_appears() {
    let mut k = Kato::recording();
    let root = k.path("opencode");
    fs::create_dir_all(&root).unwrap();
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap().replace(
        "[providers.opencode]\nenabled = false",
        &format!("[providers.opencode]\nroots = [\"{}\"]", root.display()),
    );
    fs::write(k.path("config.toml"), cfg).unwrap();
    fs::write(root.join("auth.json"), "{\"p\": \"secret\"}").unwrap();
    let db = root.join("opencode.db");
    let wal = root.join("opencode.db-wal");
    let w = create(&db, true);
    session(&w, SES, None, "Before the wal");
    message(&w, SES, "msg_01", 1, user("m"));
    part(
        &w,
        SES,
        "msg_01",
        "prt_01",
        1,
        json!({"type": "text", "text": "history"}),
    );
    // The last connection closes: the WAL is checkpointed and removed.
    drop(w);
    assert!(!wal.exists());
    k.start();
    k.wait("the history read", |s| {
        s["sessions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["id"] == SES && x["events"].as_u64() >= Some(3))
        })
    });
    let w = Connection::open(&db).unwrap();
    w.execute_batch("PRAGMA wal_autocheckpoint=0;").unwrap();
    let cap = k.out("after-wal.md");
    message(&w, SES, "msg_02", 10, user("m"));
    part(
        &w,
        SES,
        "msg_02",
        "prt_02",
        10,
        json!({"type": "text", "text": format!("after the wal\n::capture {}", cap.display())}),
    );
    assert!(wal.exists(), "the writer made its -wal");
    message(&w, SES, "msg_03", 11, assistant("m"));
    part(
        &w,
        SES,
        "msg_03",
        "prt_03",
        11,
        json!({"type": "text", "text": "read through the new wal"}),
    );
    let text = k.wait_for_text(&cap, "read through the new wal");
    assert!(text.contains("after the wal"), "{text}");
    // The stage now running was granted the new -wal, never the folder.
    let wal_s = wal.to_str().unwrap().to_owned();
    let status = k.wait("the stage granted the -wal", |s| {
        s["sandbox"]["stages"].as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s["stage"] == "provider:opencode"
                    && s["read"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|p| *p == *wal_s))
            })
        })
    });
    let stage = status["sandbox"]["stages"]
        .as_array()
        .and_then(|a| a.iter().rev().find(|s| s["stage"] == "provider:opencode"))
        .cloned()
        .unwrap();
    let read: Vec<&str> = stage["read"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(read.contains(&wal.to_str().unwrap()), "{stage}");
    assert!(!read.contains(&root.to_str().unwrap()), "{stage}");
    assert!(!read.iter().any(|p| p.ends_with("auth.json")), "{stage}");
    k.stop();
    drop(w);
}

/// A part id as OpenCode makes it: `prt_`, 12 hex digits of
/// `ms * 0x1000 + counter` (low 48 bits), 14 random characters.
fn part_id(ms: i64, counter: u64) -> String {
    let v = (u64::try_from(ms).unwrap() * 0x1000 + counter) & 0xffff_ffff_ffff;
    format!("prt_{v:012x}AbCdEfGhIjKlMn")
}

/// The daemon's later reads look at the parts past a moment before the
/// greatest id read (a range of the primary key) and at the parts held
/// back unsettled, not at every part: a tool that runs longer than that
/// window still delivers its call and result once it completes.
#[test]
fn opencode_incremental_reads_find_new_parts_by_id_and_held_ones_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("opencode.db");
    let provider = kato::provider::by_name("opencode").unwrap();
    let ctx = provider.classify(Path::new("opencode.db")).unwrap();
    let w = create(&db, true);
    session(&w, SES, None, "Live");
    message(&w, SES, "msg_01", 1, assistant("m"));
    let (first, tool, later) = (
        part_id(T0, 1),
        part_id(T0, 2),
        part_id(T0 + 30 * 60 * 1000, 1),
    );
    part(
        &w,
        SES,
        "msg_01",
        &first,
        1,
        json!({"type": "text", "text": "first"}),
    );
    let running = json!({"type": "tool", "tool": "bash", "callID": "c",
        "state": {"status": "running", "input": {}}});
    part(&w, SES, "msg_01", &tool, 2, running);
    let mut cursor = kato::reader::Cursor::default();
    let read = |cursor: &mut kato::reader::Cursor| {
        let mut ids = Vec::new();
        let inc = kato::database::read_since(
            &db,
            provider,
            &ctx,
            cursor,
            kato::reader::Limits::default(),
            &mut |e| ids.push(e.event_id),
        )
        .unwrap();
        assert!(inc.diagnostics.is_empty(), "{:?}", inc.diagnostics);
        *cursor = inc.cursor;
        ids
    };
    assert_eq!(
        read(&mut cursor),
        [format!("{SES}:session"), format!("{SES}:title"), first]
    );
    assert_eq!(cursor.parser.value()["held"], json!([tool]));
    part(
        &w,
        SES,
        "msg_01",
        &later,
        3,
        json!({"type": "text", "text": "later"}),
    );
    assert_eq!(read(&mut cursor), std::slice::from_ref(&later));
    w.execute(
        "UPDATE part SET data = ?1, time_updated = ?2 WHERE id = ?3",
        params![
            json!({"type": "tool", "tool": "bash", "callID": "c",
                   "state": {"status": "completed", "input": {}, "output": "ok"}})
            .to_string(),
            T0 + 4,
            tool
        ],
    )
    .unwrap();
    assert_eq!(read(&mut cursor), [tool.clone(), format!("{tool}#result")]);
    assert!(read(&mut cursor).is_empty());
    let parser = cursor.parser.value();
    assert!(parser.get("held").is_none(), "{parser}");
    assert_eq!(parser["last_part"], json!(later));
}

/// An export of a whole database is named by the session it delivers
/// first (the root whose id sorts first: neither the oldest root nor a
/// child with a smaller id), learned from the database by a query: before,
/// the export read the whole database once to name it and once more to
/// export it.
#[test]
fn opencode_whole_database_export_is_named_by_the_session_it_delivers_first() {
    let (k, db) = setup();
    let c = create(&db, false);
    let sessions = [
        ("ses_b_older_root", None, 0),
        ("ses_0_child_of_b", Some("ses_b_older_root"), 1),
        ("ses_a_newer_root", None, 2),
    ];
    for (i, (id, parent, t)) in sessions.into_iter().enumerate() {
        c.execute(
            "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, time_created, time_updated)
             VALUES (?1, 'global', ?2, 'slug', '/home/u/proj', 'T', '1.17.3', ?3, ?3)",
            params![id, parent, T0 + t],
        )
        .unwrap();
        let mid = format!("msg_{i}");
        message(&c, id, &mid, t, user("m"));
        part(
            &c,
            id,
            &mid,
            &format!("prt_{i}"),
            t,
            json!({"type": "text", "text": format!("hello from {id}")}),
        );
    }
    drop(c);
    let events = k.export_events(&db);
    assert_eq!(
        events[0]["session_id"], "ses_a_newer_root",
        "{:?}",
        events[0]
    );
    assert_eq!(k.export_summary(&db)["session_id"], "ses_a_newer_root");
    // Every session's text is in the export, each once.
    for (id, _, _) in sessions {
        assert_text_once(&events, &format!("hello from {id}"));
    }
}
