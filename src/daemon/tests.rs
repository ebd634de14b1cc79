//! Unit tests of the daemon's stages, driven without threads or inotify.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};

use notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};
use notify::EventKind;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::status::SessionStatus;
use super::supervise::{Slot, StageState};
use super::watch::{Stage, Watch, WatchError};
use super::*;
use crate::event::{raw_from_str, Event, Payload, ProviderId, Source};
use crate::provider::{
    self, stem, ConfigSection, FileCtx, Malformed, Provider, RecordParser, Sniff, SourceKind,
};
use crate::reader::Limits;

/// Records every watch the stage adds.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<PathBuf>>>);

impl Watch for Recorder {
    fn add(&mut self, dir: &Path) -> std::result::Result<(), WatchError> {
        self.0.lock().unwrap().push(dir.to_path_buf());
        Ok(())
    }
    fn remove(&mut self, dir: &Path) {
        self.0.lock().unwrap().retain(|d| d != dir);
    }
}

/// A provider whose every line is a human message (so in-chat commands
/// are derived), and which panics on a line containing `boom`.
struct Lines;
static LINES: Lines = Lines;

impl Provider for Lines {
    fn id(&self) -> ProviderId {
        ProviderId::Claude
    }
    fn default_roots(&self, _: &Path) -> Vec<PathBuf> {
        Vec::new()
    }
    fn source_kind(&self) -> SourceKind {
        SourceKind::Jsonl
    }
    fn sniff(&self, _: &[u8]) -> Sniff {
        Sniff::No
    }
    fn config_section(&self) -> ConfigSection {
        ConfigSection {
            description: "test lines",
            env_override: None,
        }
    }
    fn classify(&self, rel: &Path) -> Option<FileCtx> {
        Some(FileCtx {
            provider: self.id(),
            file_tag: stem(rel),
            session_hint: stem(rel),
            subagent: None,
        })
    }
    fn parser(&self, ctx: &FileCtx) -> Box<dyn RecordParser> {
        Box::new(LineParser(ctx.clone()))
    }
}

struct LineParser(FileCtx);

impl RecordParser for LineParser {
    fn record(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut dyn FnMut(Event),
    ) -> std::result::Result<(), Malformed> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        assert!(!text.contains("boom"), "parser bug triggered");
        out(Event::new(
            self.id(),
            self.0.session_hint.clone(),
            format!("{}:{offset}", self.0.file_tag),
            Source {
                record: "line".into(),
                offset,
                file: None,
            },
            Payload::UserMessage {
                text,
                attachments: 0,
            },
        ));
        Ok(())
    }
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn restore(&mut self, _: &serde_json::Value) -> std::result::Result<(), Malformed> {
        Ok(())
    }
}

impl LineParser {
    fn id(&self) -> ProviderId {
        self.0.provider
    }
}

type TestStage = Stage<Recorder>;

fn stage(roots: Vec<PathBuf>, known: Vec<Known>) -> (TestStage, Recorder, Receiver<ToOrch>) {
    let (tx, rx) = mpsc::sync_channel(100_000);
    let rec = Recorder::default();
    let st = Stage::new(
        &LINES,
        roots,
        known,
        Limits::default(),
        tx,
        Arc::new(AtomicBool::new(false)),
        rec.clone(),
    );
    (st, rec, rx)
}

fn drain(rx: &Receiver<ToOrch>) -> Vec<ToOrch> {
    rx.try_iter().collect()
}

fn batches(msgs: &[ToOrch]) -> Vec<&Batch> {
    msgs.iter()
        .filter_map(|m| match m {
            ToOrch::Batch(b) => Some(b),
            _ => None,
        })
        .collect()
}

fn fs_event(kind: EventKind, path: &Path) -> notify::Result<notify::Event> {
    Ok(notify::Event::new(kind).add_path(path.to_path_buf()))
}

fn append(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

// Long: one scenario end to end; split, the sequence it checks would be lost.
#[test]
fn watches_only_directories_under_the_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("home");
    let root = parent.join("root");
    let missing = parent.join("later");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(outside.join("deep")).unwrap();
    fs::write(outside.join("deep/x.jsonl"), "one\n").unwrap();
    fs::write(root.join("a/s.jsonl"), "one\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    // Deeper than the walk goes.
    let mut deep = root.clone();
    for i in 0..12 {
        deep = deep.join(format!("d{i}"));
    }
    fs::create_dir_all(&deep).unwrap();

    let (mut st, rec, _rx) = stage(vec![root.clone(), missing.clone()], Vec::new());
    st.start();
    let check = |rec: &Recorder| {
        for d in rec.0.lock().unwrap().iter() {
            assert!(
                d.starts_with(&root) || d.starts_with(&missing),
                "watch outside the roots: {}",
                d.display()
            );
            assert!(
                !d.starts_with(root.join("link")),
                "followed a symlink: {}",
                d.display()
            );
        }
    };
    check(&rec);
    let watched = st.watched_dirs();
    for d in [
        &root,
        &root.join("a"),
        &root.join("a/b"),
        &root.join("a/b/c"),
    ] {
        assert!(watched.contains(d), "{} not watched", d.display());
    }
    assert!(
        !watched.contains(&parent),
        "an ancestor of a root is watched"
    );
    assert!(!watched.iter().any(|d| d.starts_with(&missing)));
    assert!(watched
        .iter()
        .all(|d| d.components().count() <= root.components().count() + crate::discover::MAX_DEPTH));

    // Events: a directory created under the root is watched; paths outside
    // the roots, ancestors and symlinks to elsewhere are not.
    fs::create_dir_all(root.join("new/sub")).unwrap();
    st.on_fs(fs_event(
        EventKind::Create(CreateKind::Folder),
        &root.join("new"),
    ));
    fs::create_dir_all(outside.join("other")).unwrap();
    st.on_fs(fs_event(
        EventKind::Create(CreateKind::Folder),
        &outside.join("other"),
    ));
    st.on_fs(fs_event(EventKind::Create(CreateKind::Folder), &parent));
    std::os::unix::fs::symlink(&outside, root.join("link2")).unwrap();
    st.on_fs(fs_event(
        EventKind::Create(CreateKind::Folder),
        &root.join("link2"),
    ));
    check(&rec);
    let watched = st.watched_dirs();
    assert!(watched.contains(&root.join("new")));
    assert!(watched.contains(&root.join("new/sub")));
    assert!(!watched.contains(&root.join("link2")));

    // A root that appears later is picked up on the heartbeat, and only it.
    fs::create_dir_all(missing.join("x")).unwrap();
    st.check_roots();
    check(&rec);
    let watched = st.watched_dirs();
    assert!(watched.contains(&missing) && watched.contains(&missing.join("x")));
    assert!(!watched.contains(&parent));

    // A root that goes away is unwatched entirely.
    st.on_fs(fs_event(
        EventKind::Remove(notify::event::RemoveKind::Folder),
        &missing,
    ));
    assert!(!st.watched_dirs().iter().any(|d| d.starts_with(&missing)));
    assert!(rec
        .0
        .lock()
        .unwrap()
        .iter()
        .all(|d| !d.starts_with(&missing)));
}

fn test_daemon(state_dir: &Path) -> Daemon {
    let toml = format!(
        "[state]\ndir = \"{}\"\n[sandbox]\nmode = \"best-effort\"\n",
        state_dir.display()
    );
    // The home beside the state directory: the default export directory
    // (in the home) may not lie inside kato's state.
    let env = crate::config::Env {
        home: Some(state_dir.with_file_name("home")),
        ..Default::default()
    };
    let cfg = Config::from_toml(&toml, None, &env).unwrap();
    Daemon::new(
        cfg,
        RunOptions::default(),
        confine::Confinement::unconfined(),
    )
    .unwrap()
}

fn session<'a>(st: &'a status::Status, id: &str) -> &'a SessionStatus {
    st.sessions
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no session {id} in {:?}", st.sessions))
}

// Long: one scenario end to end; split, the sequence it checks would be lost.
#[test]
fn history_then_live_commands_are_counted_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let f = root.join("s1.jsonl");
    fs::write(&f, "hello\n::record\n").unwrap();
    let (mut st, _rec, rx) = stage(vec![root.clone()], Vec::new());
    st.start();
    st.work_step(std::time::Instant::now());
    let msgs = drain(&rx);
    let b = batches(&msgs);
    assert_eq!(b.len(), 1);
    // Two messages and one command event, all history.
    assert_eq!(b[0].events.len(), 3);
    assert_eq!(b[0].live_from, 3);
    assert!(b[0].commit.is_some());

    append(&f, "::stop\n");
    st.on_fs(fs_event(
        EventKind::Modify(ModifyKind::Data(DataChange::Any)),
        &f,
    ));
    st.work_step(std::time::Instant::now());
    let msgs2 = drain(&rx);
    let b2 = batches(&msgs2);
    assert_eq!(b2.len(), 1);
    assert_eq!(b2[0].events.len(), 2);
    assert_eq!(b2[0].live_from, 0, "appended content is live");

    // A file created while watched is live from its first byte.
    let g = root.join("s2.jsonl");
    fs::write(&g, "::record\n").unwrap();
    st.on_fs(fs_event(EventKind::Create(CreateKind::File), &g));
    st.work_step(std::time::Instant::now());
    let msgs3 = drain(&rx);
    let b3 = batches(&msgs3);
    assert_eq!(b3[0].live_from, 0);

    let state_dir = tmp.path().join("state");
    let mut d = test_daemon(&state_dir);
    for m in msgs.into_iter().chain(msgs2).chain(msgs3) {
        assert!(d.handle(m).is_none());
    }
    let status = d.build_status();
    let s1 = session(&status, "s1");
    assert_eq!(s1.events, 5);
    assert_eq!(s1.events_live, 2);
    assert_eq!(s1.commands_historical, 1);
    assert_eq!(s1.commands_live, 1);
    assert_eq!(s1.title, "hello");
    let s2 = session(&status, "s2");
    assert_eq!((s2.commands_live, s2.commands_historical), (1, 0));

    // Persisted and handed back: a restarted stage reads nothing new.
    d.flush();
    let d2 = test_daemon(&state_dir);
    let known: Vec<Known> = d2
        .ingest
        .files
        .iter()
        .map(|((_, p), r)| Known {
            path: p.clone(),
            cursor: r.st.cursor.clone(),
            size: r.st.size,
            mtime_ns: r.st.mtime_ns,
            quarantined: None,
        })
        .collect();
    assert_eq!(known.len(), 2);
    assert_eq!(session(&d2.build_status(), "s1").commands_live, 1);
    let (mut st2, _rec, rx2) = stage(vec![root.clone()], known.clone());
    st2.start();
    st2.work_step(std::time::Instant::now());
    assert!(
        batches(&drain(&rx2)).is_empty(),
        "a known, unchanged file was read again"
    );

    // Appended while "down": read from the cursor, and live.
    append(&f, "::capture /x\n");
    let (mut st3, _rec, rx3) = stage(vec![root], known);
    st3.start();
    let msgs = drain(&rx3);
    let b = batches(&msgs);
    assert_eq!(b.len(), 1, "caught up before ready");
    assert_eq!((b[0].events.len(), b[0].live_from), (2, 0));
    assert!(matches!(msgs.last(), Some(ToOrch::Backlog { .. })));
}

#[test]
fn replayed_events_are_dropped_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(&root).unwrap();
    let f = root.join("s.jsonl");
    fs::write(&f, "a\nb\n").unwrap();
    let (mut st, _rec, rx) = stage(vec![root.clone()], Vec::new());
    st.start();
    st.work_step(std::time::Instant::now());
    let mut d = test_daemon(&tmp.path().join("state"));
    for m in drain(&rx) {
        d.handle(m);
    }
    d.flush();
    // Replaced by a longer copy (new inode): the old lines come again.
    let tmpf = root.join("s.jsonl.new");
    fs::write(&tmpf, "a\nb\nc\n").unwrap();
    fs::rename(&tmpf, &f).unwrap();
    st.on_fs(fs_event(
        EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        &f,
    ));
    st.work_step(std::time::Instant::now());
    let msgs = drain(&rx);
    assert!(batches(&msgs).iter().all(|b| b.replay));
    for m in msgs {
        d.handle(m);
    }
    assert_eq!(session(&d.build_status(), "s").events, 3);
    assert_eq!(d.report.counters.duplicates_dropped, 2);
    // Truncated to a prefix, then appended: only the new line counts.
    fs::write(&f, "a\n").unwrap();
    append(&f, "d\n");
    st.on_fs(fs_event(
        EventKind::Modify(ModifyKind::Data(DataChange::Any)),
        &f,
    ));
    st.work_step(std::time::Instant::now());
    for m in drain(&rx) {
        d.handle(m);
    }
    // "d" sits at offset 2, where "b" was: same offset-derived id. The
    // placeholder id scheme cannot tell them apart; provider ids can.
    assert_eq!(session(&d.build_status(), "s").events, 3);
}

#[test]
fn a_crashing_file_is_quarantined_after_three_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("bad.jsonl"), "ok\nboom\n").unwrap();
    fs::write(root.join("good.jsonl"), "fine\n").unwrap();
    let (mut st, _rec, rx) = stage(vec![root.clone()], Vec::new());
    st.start();
    let bad = root.join("bad.jsonl");
    for _ in 0..3 {
        st.read_pass(&bad);
    }
    st.work_step(std::time::Instant::now());
    st.work_step(std::time::Instant::now());
    let msgs = drain(&rx);
    let warnings: Vec<&String> = msgs
        .iter()
        .filter_map(|m| match m {
            ToOrch::Warning { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("attempt 1 of 3"), "{warnings:?}");
    assert!(
        msgs.iter()
            .any(|m| matches!(m, ToOrch::Quarantine { path, .. } if *path == bad)),
        "not quarantined"
    );
    // The other file is read; the bad one never again (no more panics).
    let b = batches(&msgs);
    assert!(b
        .iter()
        .any(|b| b.path.ends_with("good.jsonl") && b.commit.is_some()));
    st.read_pass(&bad);
    assert!(drain(&rx).is_empty());

    // The orchestrator persists the verdict and reports it.
    let mut d = test_daemon(&tmp.path().join("state"));
    for m in msgs {
        d.handle(m);
    }
    let status = d.build_status();
    assert!(status
        .warnings
        .iter()
        .any(|w| w.message.contains("quarantined")));
    // Nothing of the failing pass was committed.
    assert_eq!(session(&status, "bad").events, 0);
    assert_eq!(session(&status, "bad").quarantined_files, 1);
}

#[test]
fn uncommitted_events_are_not_persisted_and_come_again() {
    let tmp = tempfile::tempdir().unwrap();
    let state_dir = tmp.path().join("state");
    let mut d = test_daemon(&state_dir);
    let path = PathBuf::from("/r/s.jsonl");
    let ev = |n: u64| {
        Event::new(
            ProviderId::Claude,
            "s",
            format!("s:{n}"),
            Source {
                record: "x".into(),
                offset: n,
                file: None,
            },
            Payload::ProviderRaw {
                record: raw_from_str("{}"),
            },
        )
    };
    let batch = |events: Vec<Event>, commit: Option<u64>| {
        ToOrch::Batch(Batch {
            provider: ProviderId::Claude,
            path: path.clone(),
            live_from: 0,
            replay: false,
            events,
            commit: commit.map(|offset| Commit {
                cursor: Cursor {
                    offset,
                    ..Cursor::default()
                },
                size: offset,
                mtime_ns: 0,
                reset: None,
                diagnostics: 0,
                bytes: offset,
            }),
        })
    };
    d.handle(batch(vec![ev(0), ev(1)], Some(2)));
    d.handle(batch(vec![ev(2)], None));
    assert_eq!(session(&d.build_status(), "s").events, 3);
    d.flush();
    // A crash now: only the committed part is on disk.
    let d2 = test_daemon(&state_dir);
    let rec = d2.ingest.files.values().next().unwrap();
    assert_eq!(
        (rec.st.events, rec.st.cursor.offset, rec.st.ids_len),
        (2, 2, 2)
    );
    // A stage that dies mid-pass: its pending events are dropped, to come again.
    d.handle(ToOrch::Exited {
        provider: ProviderId::Claude,
        error: Some("test".into()),
    });
    assert_eq!(session(&d.build_status(), "s").events, 2);
    // The summary is kept between changes, and rebuilt after each.
    assert_eq!(d.build_status().sessions_total, 1);
    d.ingest
        .gone(ProviderId::Claude, path.clone(), &mut d.report);
    assert_eq!(d.build_status().sessions_total, 0);
}

#[test]
fn backoff_doubles_up_to_a_minute() {
    assert_eq!(backoff(0), Duration::from_secs(1));
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(3), Duration::from_secs(8));
    assert_eq!(backoff(20), Duration::from_secs(60));
}

#[test]
fn a_failed_stage_is_restarted_with_backoff_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = test_daemon(&tmp.path().join("state"));
    let p = provider::registry().get(ProviderId::Codex).unwrap();
    d.supervisor.slots.push(Slot {
        provider: p,
        roots: Vec::new(),
        tx: None,
        stop: Arc::new(AtomicBool::new(false)),
        handle: None,
        state: StageState::Running,
        ready: true,
        restarts: 0,
        failures: 0,
        started: Instant::now(),
        restart_at: None,
        root_status: Vec::new(),
        backlog: 0,
        confined: Vec::new(),
        respawn: false,
    });
    d.report.phase = Phase::Running;
    let t0 = Instant::now();
    d.handle(ToOrch::Exited {
        provider: ProviderId::Codex,
        error: Some("cannot start inotify: boom".into()),
    });
    let s = &d.supervisor.slots[0];
    assert_eq!(s.state, StageState::Backoff);
    assert_eq!(s.restarts, 1);
    let first = s.restart_at.unwrap() - t0;
    assert!(first <= Duration::from_millis(1100), "{first:?}");
    d.supervisor.slots[0].started = Instant::now();
    d.handle(ToOrch::Exited {
        provider: ProviderId::Codex,
        error: None,
    });
    let second = d.supervisor.slots[0].restart_at.unwrap() - t0;
    assert!(
        second > Duration::from_millis(1500),
        "backoff did not grow: {second:?}"
    );
    let status = d.build_status();
    let codex = status
        .providers
        .iter()
        .find(|p| p.name == ProviderId::Codex)
        .unwrap();
    assert_eq!((codex.stage.as_str(), codex.restarts), ("restarting", 2));
    assert!(status.warnings.iter().any(|w| w
        .message
        .contains("codex stage failed: cannot start inotify")));
    // During shutdown an exit is final, not restarted.
    d.report.phase = Phase::Stopping;
    d.handle(ToOrch::Exited {
        provider: ProviderId::Codex,
        error: None,
    });
    assert_eq!(d.supervisor.slots[0].state, StageState::Stopped);
}

#[test]
fn a_file_whose_events_wait_behind_a_snapshot_keeps_its_persisted_cursor() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(tmp.path()).unwrap();
    fs::create_dir_all(base.join("out")).unwrap();
    let toml = format!(
        "[state]\ndir = \"{b}/state\"\n[sandbox]\nmode = \"best-effort\"\n\
         [exports]\nallowed_roots = [\"{b}/out\"]\ndefault_dir = \"{b}/out/default\"\n",
        b = base.display()
    );
    let env = crate::config::Env {
        home: Some(base.clone()),
        ..Default::default()
    };
    let daemon = || {
        let cfg = Config::from_toml(&toml, None, &env).unwrap();
        Daemon::new(
            cfg,
            RunOptions::default(),
            confine::Confinement::unconfined(),
        )
        .unwrap()
    };
    let path = PathBuf::from("/r/s.jsonl");
    let human = |n: u64, text: String| {
        let msg = Event::new(
            ProviderId::Claude,
            "s",
            format!("u{n}"),
            Source {
                record: "user".into(),
                offset: n,
                file: None,
            },
            Payload::UserMessage {
                text,
                attachments: 0,
            },
        );
        let mut v = vec![msg.clone()];
        v.extend(crate::commands::command_events(&msg));
        v
    };
    let batch = |events: Vec<Event>, live_from: usize, offset: u64| {
        ToOrch::Batch(Batch {
            provider: ProviderId::Claude,
            path: path.clone(),
            live_from,
            replay: false,
            events,
            commit: Some(Commit {
                cursor: Cursor {
                    offset,
                    ..Cursor::default()
                },
                size: offset,
                mtime_ns: 0,
                reset: None,
                diagnostics: 0,
                bytes: offset,
            }),
        })
    };
    let persisted = || {
        let d = daemon();
        let rec = d.ingest.files.values().next().unwrap();
        rec.st.cursor.offset
    };
    let mut d = daemon();
    d.handle(batch(human(0, "history".into()), 1, 1));
    d.flush();
    assert_eq!(persisted(), 1);
    // A capture (its replay not answered: no stage runs here), then a
    // `::stop` behind it.
    let capture = format!("::capture {}", base.join("out/x.md").display());
    let mut live = human(1, capture);
    live.extend(human(2, "::stop".into()));
    d.handle(batch(live, 0, 3));
    d.flush();
    let status = d.build_status();
    assert!(status
        .recordings
        .iter()
        .all(|r| r.snapshot_pending && r.active));
    assert_eq!(
        persisted(),
        1,
        "the cursor stays before the events that wait, so a crash reads them again"
    );
    assert!(d.ingest.next_flush().is_some(), "the flush is tried again");
}

#[test]
fn the_summary_shows_the_newest_sessions_of_many_and_counts_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = test_daemon(&tmp.path().join("state"));
    let n = status::MAX_SESSIONS + 25;
    // Session i has one file, every tenth a second one; its activity is
    // its number of minutes, so the newest is the highest.
    for i in 0..n {
        let files = if i % 10 == 0 { 2 } else { 1 };
        for f in 0..files {
            let mut ev = Event::new(
                ProviderId::Claude,
                format!("s{i:05}"),
                format!("s{i}:{f}"),
                Source {
                    record: "x".into(),
                    offset: 0,
                    file: None,
                },
                Payload::ProviderRaw {
                    record: raw_from_str("{}"),
                },
            );
            ev.timestamp = Some(format!("2026-01-01T{:02}:{:02}:00Z", i / 60, i % 60).into());
            d.handle(ToOrch::Batch(Batch {
                provider: ProviderId::Claude,
                path: PathBuf::from(format!("/r/s{i}-{f}.jsonl")),
                live_from: 0,
                replay: false,
                events: vec![ev],
                commit: Some(Commit {
                    cursor: Cursor {
                        offset: 1,
                        ..Cursor::default()
                    },
                    size: 1,
                    mtime_ns: 0,
                    reset: None,
                    diagnostics: 0,
                    bytes: 1,
                }),
            }));
        }
    }
    let summary = d.ingest.summary();
    assert_eq!(summary.total, n);
    assert_eq!(
        summary.per_provider[&ProviderId::Claude],
        (n, n + n.div_ceil(10))
    );
    assert_eq!(summary.sessions.len(), status::MAX_SESSIONS);
    let ids: Vec<&str> = summary.sessions.iter().map(|s| s.id.as_str()).collect();
    let want: Vec<String> = (n - status::MAX_SESSIONS..n)
        .rev()
        .map(|i| format!("s{i:05}"))
        .collect();
    assert_eq!(ids, want);
    let s = &summary.sessions[n - 1 - 2020];
    assert_eq!(s.id, "s02020");
    assert_eq!(
        s.files,
        [
            PathBuf::from("/r/s2020-0.jsonl"),
            PathBuf::from("/r/s2020-1.jsonl")
        ]
    );
    assert_eq!(s.events, 2);
}
