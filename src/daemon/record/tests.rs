//! The recorder driven without threads of its own: a fake parse stage
//! answers replay requests whenever the test says, so every interleaving of
//! a snapshot's replay with the commands after it is tried, one by one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Recorder, ReplayKey, Stages};
use crate::config::Config;
use crate::event::{Event, Payload, ProviderId, Source};
use crate::policy::{Policy, Target};
use crate::sandbox::Confiner;
use crate::writer::{WriteError, WriterHandle};

/// The session file every event comes from.
const FILE: &str = "/r/s1.jsonl";

/// The parse stages as the recorder sees them: real writers, and replay
/// requests kept until the test answers them.
struct FakeStages {
    confiner: Confiner,
    policy: Policy,
    requests: Vec<(ReplayKey, String)>,
    /// Writers cannot be opened (a full export disk).
    full: bool,
}

impl Stages for FakeStages {
    fn writer(&mut self, target: Target) -> Result<WriterHandle, WriteError> {
        if self.full {
            return Err(WriteError::Open("no space left on device".into()));
        }
        crate::writer::spawn(&self.confiner, self.policy.clone(), target)
    }

    fn replay(&mut self, _: ProviderId, path: &Path, key: ReplayKey, upto: String) -> bool {
        assert_eq!(path, Path::new(FILE), "the command's file is replayed");
        self.requests.push((key, upto));
        true
    }
}

/// A state dir, an export root and the conversation so far.
struct World {
    _tmp: tempfile::TempDir,
    cfg: Config,
    out: PathBuf,
    /// Every event of the session file, in file order.
    file: Vec<Event>,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let out = base.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let toml = format!(
            "[state]\ndir = \"{b}/state\"\n[sandbox]\nmode = \"best-effort\"\n\
             [exports]\nallowed_roots = [\"{b}/out\"]\ndefault_dir = \"{b}/out/default\"\n",
            b = base.display()
        );
        let env = crate::config::Env {
            home: Some(base.clone()),
            ..Default::default()
        };
        let cfg = Config::from_toml(&toml, None, &env).unwrap();
        World {
            _tmp: tmp,
            cfg,
            out,
            file: Vec::new(),
        }
    }

    fn recorder(&self) -> (Recorder, FakeStages) {
        let r = Recorder::new(&self.cfg);
        let stages = FakeStages {
            confiner: Confiner::unconfined(),
            policy: r.policy().clone(),
            requests: Vec::new(),
            full: false,
        };
        (r, stages)
    }

    /// Append a human message (and the command events the parse stage
    /// derives from it); returns the events added.
    fn human(&mut self, id: &str, text: &str) -> Vec<Event> {
        let msg = self.event(
            id,
            Payload::UserMessage {
                text: text.into(),
                attachments: 0,
            },
        );
        let mut added = vec![msg.clone()];
        added.extend(crate::commands::command_events(&msg));
        self.file.extend(added.iter().cloned());
        added
    }

    fn reply(&mut self, id: &str, text: &str) -> Vec<Event> {
        let ev = self.event(id, Payload::AssistantMessage { text: text.into() });
        self.file.push(ev.clone());
        vec![ev]
    }

    fn event(&self, id: &str, payload: Payload) -> Event {
        let source = Source {
            record: "line".into(),
            offset: self.file.len() as u64 * 100,
            file: None,
        };
        Event::new(ProviderId::Claude, "s1", id, source, payload)
    }

    /// What the parse stage sends for a replay up to `upto`: the file
    /// from its start up to and including that message.
    fn replay_of(&self, upto: &str) -> Vec<Event> {
        let end = self
            .file
            .iter()
            .position(|e| e.event_id == upto)
            .map_or(self.file.len(), |i| i + 1);
        self.file[..end].to_vec()
    }

    fn ids(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.out.join(name))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["event_id"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

fn deliver(r: &mut Recorder, st: &mut FakeStages, events: &[Event], live: bool) {
    let batch: Vec<(&Event, bool)> = events.iter().map(|e| (e, live)).collect();
    r.on_events(Path::new(FILE), &batch, st);
}

/// Answer every replay request out now, in `pieces` messages each.
fn answer(w: &World, r: &mut Recorder, st: &mut FakeStages, pieces: usize) {
    for (key, upto) in std::mem::take(&mut st.requests) {
        let events = w.replay_of(&upto);
        let size = events.len().div_ceil(pieces).max(1);
        let chunks: Vec<&[Event]> = events.chunks(size).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            r.on_replayed(&key, chunk, i + 1 == chunks.len(), st);
        }
    }
}

/// History, then U21 `::capture x.jsonl`, A22, U23 `::stop`, A24,
/// U25 `::record`, A26. Returns the world and the live events.
fn capture_stop_record() -> (World, Vec<Event>) {
    let mut w = World::new();
    w.human("h1", "history question");
    w.reply("h2", "history answer");
    let capture = format!("::capture {}", w.out.join("x.jsonl").display());
    let mut live = w.human("u21", &capture);
    live.extend(w.reply("a22", "reply twenty-two"));
    live.extend(w.human("u23", "::stop"));
    live.extend(w.reply("a24", "reply twenty-four"));
    live.extend(w.human("u25", "::record"));
    live.extend(w.reply("a26", "reply twenty-six"));
    (w, live)
}

const CAPTURE_STOP_RECORD: [&str; 7] = ["h1", "h2", "u21", "a22", "u23", "u25", "a26"];

/// Deliver the live events in batches cut at `cuts`, answering the
/// replay requests out at each cut (in `pieces` messages), then the rest.
fn run(w: &World, live: &[Event], cuts: &BTreeSet<usize>, pieces: usize) {
    let (mut r, mut st) = w.recorder();
    deliver(&mut r, &mut st, &w.file[..live_start(w, live)], false);
    let mut from = 0;
    for &cut in cuts.iter().chain([live.len()].iter()) {
        deliver(&mut r, &mut st, &live[from..cut], true);
        answer(w, &mut r, &mut st, pieces);
        from = cut;
    }
    while !st.requests.is_empty() {
        answer(w, &mut r, &mut st, pieces);
    }
    assert!(r.held().is_empty(), "nothing left waiting");
    r.shutdown();
}

fn live_start(w: &World, live: &[Event]) -> usize {
    w.file.len() - live.len()
}

#[test]
fn the_whole_sequence_in_one_batch_then_the_replay() {
    let (w, live) = capture_stop_record();
    run(&w, &live, &BTreeSet::new(), 1);
    assert_eq!(w.ids("x.jsonl"), CAPTURE_STOP_RECORD);
}

#[test]
fn the_replay_before_between_or_after_each_command_changes_nothing() {
    let (_, live) = capture_stop_record();
    // Every cut from right after the capture's command on: the replay
    // lands before A22, between each command and its neighbours, after
    // everything; whole, and in pieces.
    for cut in 2..=live.len() {
        for pieces in [1, 3] {
            let (w, live) = capture_stop_record();
            run(&w, &live, &BTreeSet::from([cut]), pieces);
            assert_eq!(
                w.ids("x.jsonl"),
                CAPTURE_STOP_RECORD,
                "replay after {cut} live events, in {pieces} piece(s)"
            );
        }
    }
}

#[test]
fn one_event_per_batch_with_the_replay_at_any_point() {
    let (_, live) = capture_stop_record();
    let every: BTreeSet<usize> = (1..live.len()).collect();
    for pieces in [1, 2] {
        let (w, live) = capture_stop_record();
        run(&w, &live, &every, pieces);
        assert_eq!(w.ids("x.jsonl"), CAPTURE_STOP_RECORD);
    }
}

#[test]
fn events_wait_behind_a_pending_snapshot_and_hold_their_file() {
    let (w, live) = capture_stop_record();
    let (mut r, mut st) = w.recorder();
    deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
    deliver(&mut r, &mut st, &live, true);
    assert_eq!(
        r.held(),
        [(ProviderId::Claude, PathBuf::from(FILE))].into(),
        "the file's cursor waits for the snapshot"
    );
    assert!(r.status().iter().all(|s| s.snapshot_pending && s.active));
    assert!(w.ids("x.jsonl").is_empty(), "nothing before the snapshot");
    answer(&w, &mut r, &mut st, 1);
    assert!(r.held().is_empty());
    let status = r.status();
    assert!(status.iter().all(|s| !s.snapshot_pending && s.active));
    r.shutdown();
    assert_eq!(w.ids("x.jsonl"), CAPTURE_STOP_RECORD);
}

#[test]
fn a_replay_feeds_only_the_request_that_asked_for_it() {
    let (w, live) = capture_stop_record();
    let (mut r, mut st) = w.recorder();
    deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
    deliver(&mut r, &mut st, &live, true);
    let (stale, upto) = st.requests.pop().unwrap();
    // The stage ended: the request is asked again on the heartbeat.
    r.replays_lost(ProviderId::Claude);
    r.heartbeat(&mut st);
    assert_eq!(st.requests.len(), 1);
    assert_ne!(st.requests[0].0, stale);
    // The first request's answer arrives after all (half of it, or all of
    // it): ignored.
    let old = w.replay_of(&upto);
    r.on_replayed(&stale, &old[..1], false, &mut st);
    r.on_replayed(&stale, &old[1..], true, &mut st);
    assert!(r.status().iter().all(|s| s.snapshot_pending));
    assert!(w.ids("x.jsonl").is_empty());
    answer(&w, &mut r, &mut st, 2);
    r.shutdown();
    assert_eq!(w.ids("x.jsonl"), CAPTURE_STOP_RECORD);
}

#[test]
fn two_captures_to_the_same_file_in_one_batch() {
    let build = || {
        let mut w = World::new();
        w.human("h1", "history question");
        let capture = format!("::capture {}", w.out.join("x.jsonl").display());
        let mut live = w.human("u21", &capture);
        live.extend(w.reply("a22", "reply twenty-two"));
        live.extend(w.human("u23", &capture));
        live.extend(w.reply("a24", "reply twenty-four"));
        (w, live)
    };
    let expected = [
        "h1", "u21", "a22", "u23", // first capture, then live
        "h1", "u21", "a22", "u23", "a24", // second capture, then live
    ];
    let (_, live) = build();
    for cut in 2..=live.len() {
        let (w, live) = build();
        run(&w, &live, &BTreeSet::from([cut]), 2);
        assert_eq!(w.ids("x.jsonl"), expected, "first replay after {cut}");
    }
}

/// A crash (the recorder dropped without a word) at `crash_after` steps,
/// then a new recorder over the same state, the live events delivered
/// again from the persisted cursor (held before them), and the replays.
fn crash_and_recover(crash_after: usize) -> Vec<String> {
    let (w, live) = capture_stop_record();
    {
        let (mut r, mut st) = w.recorder();
        deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
        for step in 1..=crash_after {
            match step {
                1 => deliver(&mut r, &mut st, &live, true),
                2 => {
                    // Half the replay: part of the snapshot is written.
                    let (key, upto) = st.requests[0].clone();
                    let events = w.replay_of(&upto);
                    r.on_replayed(&key, &events[..2], false, &mut st);
                }
                _ => {
                    // The rest of it: the snapshot is planned, the events
                    // held back are handled.
                    let (key, upto) = st.requests.remove(0);
                    let events = w.replay_of(&upto);
                    r.on_replayed(&key, &events[2..], true, &mut st);
                }
            }
        }
    }
    let (mut r, mut st) = w.recorder();
    r.recover(&mut st);
    deliver(&mut r, &mut st, &live, true);
    while !st.requests.is_empty() {
        answer(&w, &mut r, &mut st, 1);
    }
    r.shutdown();
    w.ids("x.jsonl")
}

#[test]
fn a_crash_while_a_snapshot_is_pending_loses_nothing() {
    for crash_after in 1..=3 {
        assert_eq!(
            crash_and_recover(crash_after),
            CAPTURE_STOP_RECORD,
            "crash after step {crash_after}"
        );
    }
}

/// The recording state cannot be saved (its directory is gone, a file in
/// its place): nothing is appended, the recording says why it waits, the
/// file's cursor waits too; once the state can be saved, all of it is
/// written, once.
#[test]
fn nothing_is_appended_while_the_recording_state_cannot_be_saved() {
    let (w, live) = capture_stop_record();
    let (mut r, mut st) = w.recorder();
    deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
    deliver(&mut r, &mut st, &live[..2], true);
    answer(&w, &mut r, &mut st, 1);
    assert_eq!(w.ids("x.jsonl"), ["h1", "h2", "u21"]);
    let dir = w.cfg.state_dir.join("recordings");
    std::fs::rename(&dir, dir.with_extension("away")).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    deliver(&mut r, &mut st, &live[2..], true);
    assert_eq!(w.ids("x.jsonl"), ["h1", "h2", "u21"], "appended unsaved");
    let paused = r.status()[0].paused.clone().unwrap_or_default();
    assert!(
        paused.contains("recording state cannot be saved"),
        "{paused}"
    );
    assert!(r
        .held()
        .contains(&(ProviderId::Claude, PathBuf::from(FILE))));
    r.heartbeat(&mut st);
    assert_eq!(w.ids("x.jsonl"), ["h1", "h2", "u21"], "appended unsaved");
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(dir.with_extension("away"), &dir).unwrap();
    r.heartbeat(&mut st);
    assert!(r.held().is_empty());
    assert_eq!(r.status()[0].paused, None);
    r.shutdown();
    assert_eq!(w.ids("x.jsonl"), CAPTURE_STOP_RECORD);
}

/// History, U21 `::capture x.jsonl`, A22, A23, U24 the same `::capture`
/// again, A25. Returns the world and the live events.
fn capture_twice() -> (World, Vec<Event>) {
    let mut w = World::new();
    w.human("h1", "history question");
    let capture = format!("::capture {}", w.out.join("x.jsonl").display());
    let mut live = w.human("u21", &capture);
    live.extend(w.reply("a22", "reply twenty-two"));
    live.extend(w.reply("a23", "reply twenty-three"));
    live.extend(w.human("u24", &capture));
    live.extend(w.reply("a25", "reply twenty-five"));
    (w, live)
}

const CAPTURE_TWICE: [&str; 11] = [
    "h1", "u21", // first capture
    "a22", "a23", "u24", // live
    "h1", "u21", "a22", "a23", "u24", // second capture
    "a25", // live
];

/// The destination cannot be written (a full disk) from the first capture
/// on: the recording pauses with everything planned, a second capture to
/// it is re-planned while paused (its replay lost and asked again), and
/// once the disk has space the file holds every event in order.
#[test]
fn a_capture_re_planned_while_its_recording_is_paused_stays_before_later_events() {
    let (w, live) = capture_twice();
    let (mut r, mut st) = w.recorder();
    st.full = true;
    deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
    deliver(&mut r, &mut st, &live[..2], true);
    answer(&w, &mut r, &mut st, 2);
    deliver(&mut r, &mut st, &live[2..], true);
    assert!(r.status()[0].paused.is_some(), "{:?}", r.status());
    let (stale, upto) = st.requests.pop().unwrap();
    let old = w.replay_of(&upto);
    r.on_replayed(&stale, &old[..2], false, &mut st);
    r.replays_lost(ProviderId::Claude);
    r.heartbeat(&mut st);
    r.on_replayed(&stale, &old[2..], true, &mut st);
    assert!(
        r.status()[0].snapshot_pending,
        "a lost replay feeds nothing"
    );
    answer(&w, &mut r, &mut st, 3);
    assert!(
        w.ids("x.jsonl").is_empty(),
        "nothing written on a full disk"
    );
    st.full = false;
    r.heartbeat(&mut st);
    assert_eq!(r.status()[0].paused, None);
    r.shutdown();
    assert_eq!(w.ids("x.jsonl"), CAPTURE_TWICE);
}

/// A crash while the second capture's snapshot is pending; the new run's
/// first events (read before the interrupted snapshot is asked again)
/// wait behind the restored snapshot.
#[test]
fn events_read_before_recovery_wait_for_the_restored_snapshot() {
    let (w, live) = capture_twice();
    {
        let (mut r, mut st) = w.recorder();
        deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
        deliver(&mut r, &mut st, &live[..2], true);
        answer(&w, &mut r, &mut st, 1);
        deliver(&mut r, &mut st, &live[2..], true);
        // Half of the second snapshot is written, then kato is killed.
        let (key, upto) = st.requests[0].clone();
        let events = w.replay_of(&upto);
        r.on_replayed(&key, &events[..3], false, &mut st);
    }
    let (mut r, mut st) = w.recorder();
    // The file's cursor was held before U24: read again, before recovery.
    let again = live.iter().position(|e| e.event_id == "u24").unwrap();
    deliver(&mut r, &mut st, &live[again..], true);
    assert!(r.status()[0].snapshot_pending);
    r.recover(&mut st);
    while !st.requests.is_empty() {
        answer(&w, &mut r, &mut st, 2);
    }
    r.shutdown();
    assert_eq!(w.ids("x.jsonl"), CAPTURE_TWICE);
}

/// A capture deferred behind another capture's snapshot is handled while
/// its audit record cannot be written: it is refused. Its file is read
/// again after a restart (its cursor was not saved yet): the refused
/// command stays refused, rather than running there, after the events
/// written behind it.
#[test]
fn a_command_refused_for_its_audit_record_is_not_run_when_read_again() {
    let (w, live) = capture_twice();
    {
        let (mut r, mut st) = w.recorder();
        deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
        deliver(&mut r, &mut st, &live, true);
        r.audit.fail_for_test();
        answer(&w, &mut r, &mut st, 1);
        assert!(st.requests.is_empty(), "the second capture did not run");
        r.audit.reopen_for_test();
        r.heartbeat(&mut st);
    }
    let (mut r, mut st) = w.recorder();
    r.recover(&mut st);
    let again = live.iter().position(|e| e.event_id == "u24").unwrap();
    deliver(&mut r, &mut st, &live[again..], true);
    while !st.requests.is_empty() {
        answer(&w, &mut r, &mut st, 1);
    }
    r.shutdown();
    assert_eq!(w.ids("x.jsonl"), ["h1", "u21", "a22", "a23", "u24", "a25"]);
}

/// How a kill after an append leaves the recording state's log.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// After the Markdown append, before its state record was written.
    BeforeTheStateRecord,
    /// In the middle of writing that record.
    InTheStateRecord,
    /// After the intent was saved, before the append reached the disk.
    BeforeTheAppend,
    /// After everything (the record was written, unsynced, and kept).
    AfterTheStateRecord,
}

/// History, U21 `::capture x.jsonl`, A22 (a live recording), then A30
/// recorded, a kill at `kill`, a restart that reads A30 again and then A31.
fn kill_around_an_append(kill: Kill) -> Vec<String> {
    let mut w = World::new();
    w.human("h1", "history question");
    w.reply("h2", "history answer");
    let capture = format!("::capture {}", w.out.join("x.jsonl").display());
    let mut live = w.human("u21", &capture);
    live.extend(w.reply("a22", "reply twenty-two"));
    live.extend(w.reply("a30", "reply thirty"));
    live.extend(w.reply("a31", "reply thirty-one"));
    let dest = w.out.join("x.jsonl");
    // A30 and A31 are the last two.
    let n = live.len();
    {
        let (mut r, mut st) = w.recorder();
        deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
        deliver(&mut r, &mut st, &live[..n - 2], true);
        answer(&w, &mut r, &mut st, 1);
        let before = std::fs::metadata(&dest).unwrap().len();
        deliver(&mut r, &mut st, &live[n - 2..n - 1], true);
        assert!(
            w.ids("x.jsonl").ends_with(&["a30".to_owned()]),
            "{:?} {:?}",
            w.ids("x.jsonl"),
            r.status()
        );
        // The state log: the intent of A30 (synced before the append),
        // then what the append changed (unsynced).
        let logs: Vec<PathBuf> = std::fs::read_dir(w.cfg.state_dir.join("recordings"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        assert_eq!(logs.len(), 1, "{logs:?}");
        let text = std::fs::read_to_string(&logs[0]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let record = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap();
        let intent = |l: &str| {
            record(l)["recordings"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()["intent"]
                .clone()
        };
        let [.., planned, done] = lines[..] else {
            panic!("two records at least: {text}");
        };
        assert!(intent(planned)["text"].as_str().unwrap().contains("a30"));
        assert!(intent(done).is_null());
        let keep = text.len() - done.len() - 1;
        match kill {
            Kill::BeforeTheStateRecord => std::fs::write(&logs[0], &text[..keep]).unwrap(),
            Kill::InTheStateRecord => {
                std::fs::write(&logs[0], &text[..keep + done.len() / 2]).unwrap()
            }
            Kill::BeforeTheAppend => {
                std::fs::write(&logs[0], &text[..keep]).unwrap();
                let f = std::fs::OpenOptions::new().write(true).open(&dest).unwrap();
                f.set_len(before).unwrap();
            }
            Kill::AfterTheStateRecord => {}
        }
        // Killed: dropped without a word.
    }
    let (mut r, mut st) = w.recorder();
    r.recover(&mut st);
    // The cursor was not persisted past A30: it comes again, then A31.
    deliver(&mut r, &mut st, &live[n - 2..n - 1], true);
    deliver(&mut r, &mut st, &live[n - 1..], true);
    r.shutdown();
    w.ids("x.jsonl")
}

#[test]
fn a_kill_between_the_append_and_its_state_record_loses_and_duplicates_nothing() {
    for kill in [
        Kill::BeforeTheStateRecord,
        Kill::InTheStateRecord,
        Kill::BeforeTheAppend,
        Kill::AfterTheStateRecord,
    ] {
        assert_eq!(
            kill_around_an_append(kill),
            ["h1", "h2", "u21", "a22", "a30", "a31"],
            "{kill:?}"
        );
    }
}

/// The chaos test's small state disk filled up when every save of a large
/// held intent was appended to the log: a state that large is saved as
/// the snapshot instead, so the state disk holds what a rewrite did.
#[test]
fn a_large_intent_held_by_a_full_export_disk_is_saved_as_the_snapshot_not_logged() {
    let mut w = World::new();
    let filler = "long reply ".repeat(40);
    let mut expected = Vec::new();
    for i in 0..2000 {
        let id = format!("h{i}");
        w.reply(&id, &filler);
        expected.push(id);
    }
    let capture = format!("::capture {}", w.out.join("x.jsonl").display());
    let live = w.human("u21", &capture);
    expected.push("u21".into());
    let (mut r, mut st) = w.recorder();
    deliver(&mut r, &mut st, &w.file[..live_start(&w, &live)], false);
    st.full = true;
    deliver(&mut r, &mut st, &live, true);
    answer(&w, &mut r, &mut st, 40);
    assert!(r.status()[0].paused.is_some(), "{:?}", r.status());
    let dir = w.cfg.state_dir.join("recordings");
    let sizes = |ext: &str| -> u64 {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    };
    assert!(
        sizes("json") > super::journal::COMPACT_AT,
        "the held intent is in the snapshot"
    );
    assert!(
        sizes("log") <= super::journal::INLINE_COMPACT,
        "log of {} bytes",
        sizes("log")
    );
    st.full = false;
    r.heartbeat(&mut st);
    r.shutdown();
    assert_eq!(w.ids("x.jsonl"), expected);
    assert_eq!(sizes("log"), 0);
}

#[test]
fn a_human_message_is_kept_only_until_its_command_events_have_passed() {
    let mut w = World::new();
    let (mut r, mut st) = w.recorder();
    let key = super::SessionKey {
        provider: ProviderId::Claude,
        session: "s1".into(),
    };
    // (That a command takes its slice of the message with the batches cut
    // anywhere: `one_event_per_batch_with_the_replay_at_any_point`.)
    let msg = w.human("u1", "first line\n::record\nthe rest");
    assert_eq!(msg.len(), 2, "the message and its command");
    // The message and its command arrive in two batches: it is kept.
    deliver(&mut r, &mut st, &msg[..1], true);
    assert!(r.observed[&key].last_message.is_some());
    deliver(&mut r, &mut st, &msg[1..], true);
    assert!(r.observed[&key].last_message.is_some());
    // Past its command events nothing needs it: released.
    let reply = w.reply("a2", "a reply");
    deliver(&mut r, &mut st, &reply, true);
    assert!(r.observed[&key].last_message.is_none());
    r.shutdown();
}

#[test]
fn a_session_without_commands_keeps_only_what_is_observed_of_it() {
    let mut w = World::new();
    let (mut r, mut st) = w.recorder();
    let key = super::SessionKey {
        provider: ProviderId::Claude,
        session: "s1".into(),
    };
    let mut events = w.human("u1", "a question, with a :: but no command");
    events.extend(w.reply("a1", "an answer"));
    events.extend(w.human("u2", "another question"));
    deliver(&mut r, &mut st, &events, true);
    assert!(
        !r.sessions.contains_key(&key),
        "no command and recording state for a session without commands"
    );
    let obs = &r.observed[&key];
    assert!(
        obs.last_message.is_none(),
        "a message without `::` cannot hold a command: not kept"
    );
    assert_eq!(obs.main_path.as_deref(), Some(Path::new(FILE)));
    assert_eq!(r.meta(&key).title, "a question, with a :: but no command");
    // A message with `::` is kept while its command events may follow.
    let maybe = w.human("u3", "see ::this");
    deliver(&mut r, &mut st, &maybe, true);
    assert!(r.observed[&key].last_message.is_some());
    assert!(!r.sessions.contains_key(&key));
    // Its first command creates the session's command state.
    let capture = format!("::capture {}", w.out.join("y.md").display());
    let cmd = w.human("u4", &capture);
    deliver(&mut r, &mut st, &cmd, true);
    assert!(r.sessions.contains_key(&key));
    assert_eq!(r.status().len(), 1, "the capture started");
    r.shutdown();
}

#[test]
fn only_the_most_recently_active_sessions_keep_what_was_observed_of_them() {
    let w = World::new();
    let (mut r, mut st) = w.recorder();
    let n = 2 * super::OBSERVED_MAX;
    let key = |i: usize| super::SessionKey {
        provider: ProviderId::Claude,
        session: format!("s{i}"),
    };
    // Session 0 is the oldest, but its `::` message may be followed by
    // command events: it stays.
    for i in 0..n {
        let source = Source {
            record: "line".into(),
            offset: 0,
            file: None,
        };
        let text = if i == 0 { "see ::this" } else { "a question" };
        let mut ev = Event::new(
            ProviderId::Claude,
            format!("s{i}"),
            "u1",
            source,
            Payload::UserMessage {
                text: text.into(),
                attachments: 0,
            },
        );
        ev.timestamp = Some(format!("2026-01-08T10:{:02}:{:02}.000Z", i / 60, i % 60).into());
        deliver(&mut r, &mut st, &[ev], false);
        assert!(r.observed.len() <= super::OBSERVED_MAX + super::OBSERVED_MAX / 4);
    }
    assert!(r.observed.contains_key(&key(0)));
    for i in n - super::OBSERVED_MAX..n {
        assert_eq!(r.meta(&key(i)).title, "a question", "session {i}");
    }
    let forgotten = (1..n)
        .filter(|i| !r.observed.contains_key(&key(*i)))
        .count();
    assert!(forgotten >= n - super::OBSERVED_MAX - super::OBSERVED_MAX / 4);
    r.shutdown();
}
