//! `kill -9` at instants the test chooses at random, through the real
//! binary: every event lands exactly once, in order, and a recording kato
//! was writing when it died resumes by itself at the next start, with
//! `kato status` saying why it stood still.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{
    append_lines as append, assistant, claude_line, env_count, first_difference, jsonl_ids, user,
    Kato, Rng, BIN, S,
};

/// Events in the large capture.
const LARGE: usize = 20_000;

#[test]
fn kill_9_at_random_instants_during_a_large_capture_loses_and_duplicates_nothing() {
    let mut rng = Rng::from_env("KATO_CRASH_SEED");
    let kills = env_count("KATO_CRASH_KILLS", 5);
    let mut k = Kato::recording();
    let (f, dest, mut expected) = large_capture_burst(&mut k, "k9.jsonl");
    let mut live = 0;
    let mut mid_capture = 0;
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.within(20, 600)));
        k.kill9();
        // The state on disk is what the next start finds: a capture that
        // was started and not finished must be said to be interrupted.
        let unfinished = fs::read_to_string(&dest).is_ok_and(|t| !t.contains("\"cmd\""));
        // The session goes on while kato is down.
        let mut lines = Vec::new();
        for _ in 0..rng.within(0, 20) {
            lines.push(assistant(&format!("l{live}"), &format!("live {live}")));
            expected.push(format!("l{live}"));
            live += 1;
        }
        append(&f, &lines);
        k.start();
        if unfinished {
            mid_capture += 1;
            let st = k.status_text();
            assert!(
                st.contains("interrupted when kato last stopped"),
                "the restart does not say why the capture stood still:\n{st}"
            );
        }
    }
    // Nothing typed since: the capture finishes by itself.
    k.wait_for_text(&dest, "\"cmd\"");
    append(&f, &[assistant("last", "the last event")]);
    expected.push("last".into());
    k.wait_for_text(&dest, "\"last\"");
    k.settle(S, &f);
    k.stop();
    let ids = jsonl_ids(&dest);
    assert_eq!(
        first_difference(&ids, &expected),
        None,
        "every event once, in order ({} written, {} expected)",
        ids.len(),
        expected.len()
    );
    eprintln!(
        "{kills} kill(s) at random instants, {mid_capture} in the middle of the capture; {} events checked",
        expected.len()
    );
}

/// Drop the file a pending snapshot names from the saved recording state
/// (the snapshot and every record of the log beside it), as a kato that
/// did not save it left it. False when no snapshot is pending.
fn forget_snapshot_files(k: &Kato) -> bool {
    fn forget(v: &mut serde_json::Value) -> bool {
        let mut found = false;
        for rec in v["recordings"].as_object_mut().unwrap().values_mut() {
            if let Some(snap) = rec["snapshot"].as_object_mut() {
                found |= snap.remove("path").is_some();
            }
        }
        found
    }
    let mut found = false;
    for e in fs::read_dir(k.path("state/recordings")).unwrap().flatten() {
        let path = e.path();
        let log = path.extension().is_some_and(|x| x == "log");
        if !log && path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = fs::read(&path).unwrap();
        let mut out = Vec::new();
        for line in text.split(|b| *b == b'\n') {
            match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(mut v) => {
                    found |= forget(&mut v);
                    out.extend(serde_json::to_vec(&v).unwrap());
                }
                // A record a crash cut off stays as it is.
                Err(_) => out.extend_from_slice(line),
            }
            if log {
                out.push(b'\n');
            }
        }
        fs::write(&path, out).unwrap();
    }
    found
}

/// A capture saved by a kato that did not record its file, and the cursor
/// past its command: no message says again where the session is.
/// Move every saved cursor to the end of `file`.
fn cursors_to_the_end(k: &Kato, file: &std::path::Path) {
    let len = fs::metadata(file).unwrap().len();
    for e in fs::read_dir(k.path("state/files")).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        v["cursor"]["offset"] = len.into();
        fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    }
}

#[test]
fn a_capture_saved_without_its_file_resumes_at_start_without_a_new_message() {
    let mut k = Kato::recording();
    let (f, dest, expected) = large_capture_burst(&mut k, "older.jsonl");
    k.wait_until("the snapshot under way", || {
        fs::read_to_string(&dest).is_ok_and(|t| t.contains("\"a100\""))
    });
    k.kill9();
    assert!(
        forget_snapshot_files(&k),
        "the capture ended before the kill: nothing to resume"
    );
    // And a cursor saved past the command (an older kato flushed it while
    // the capture was written): no event of the session comes again to
    // say which file it is in.
    cursors_to_the_end(&k, &f);
    k.start();
    // Nothing typed since: the session's file is found from kato's state.
    k.wait_for_text(&dest, "\"cmd\"");
    k.stop();
    let ids = jsonl_ids(&dest);
    assert_eq!(first_difference(&ids, &expected), None, "{} ids", ids.len());
}

/// A running daemon that has seen one human line and persisted its
/// cursor; then one burst: [`LARGE`] assistant lines and the human's
/// `::capture` into `name`. Returns the session file, the destination and
/// the ids the capture must hold, in order.
fn large_capture_burst(k: &mut Kato, name: &str) -> (PathBuf, PathBuf, Vec<String>) {
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    k.settle(S, &f);
    k.wait_until("the first line's cursor persisted", || {
        k.cursors_persisted(1)
    });
    let dest = k.out(name);
    let mut expected = vec!["u0".to_owned()];
    let mut burst = Vec::with_capacity(LARGE + 1);
    for i in 0..LARGE {
        burst.push(assistant(&format!("a{i}"), &format!("event {i}")));
        expected.push(format!("a{i}"));
    }
    burst.push(user("cmd", &format!("::capture {}", dest.display())));
    expected.push("cmd".into());
    append(&f, &burst);
    (f, dest, expected)
}

/// Sessions in the history at the first start: enough that their cursors
/// are flushed together and synced by one `syncfs` (`SYNC_ONCE_FROM`).
const MANY: usize = 40;

/// A flush of many cursors at once (the first ingest of a history) writes
/// them all unsynced, syncs the file system once, then renames each: a
/// `kill -9` right after it, and the next start reads not one byte of
/// them again and has every event of each, once.
#[test]
fn many_cursors_flushed_together_survive_a_kill_and_nothing_is_read_again() {
    many_cursors_survive_a_kill(false);
}

/// The same where a system call filter refuses `syncfs` (EPERM): the
/// flush syncs each file on its own instead, and persists every cursor.
#[test]
fn many_cursors_are_synced_file_by_file_when_syncfs_is_refused() {
    many_cursors_survive_a_kill(true);
}

/// [`MANY`] sessions of history, their cursors flushed together, then
/// `kill -9` and a normal start. With `no_syncfs`, the first `kato run`
/// runs under `tests/tools/no_syncfs.py`.
fn many_cursors_survive_a_kill(no_syncfs: bool) {
    let mut k = Kato::recording();
    let mut total = 0;
    let ids: Vec<String> = (0..MANY)
        .map(|i| format!("{i:08x}-1111-4000-8000-000000000000"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let f = k.claude.join(format!("-home-u-p{}/{id}.jsonl", i % 4));
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        let n = 2 + i as u32 % 5;
        let text: String = (0..n).map(|j| claude_line(id, j)).collect();
        fs::write(&f, text).unwrap();
        total += u64::from(n);
    }
    let events = |s: &serde_json::Value| -> u64 {
        s["sessions"]
            .as_array()
            .map_or(0, |a| a.iter().filter_map(|x| x["events"].as_u64()).sum())
    };
    if no_syncfs {
        let wrapper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/no_syncfs.py");
        let mut cmd = k.cmd_of(Path::new("python3"));
        cmd.arg(wrapper).arg(BIN).arg("run");
        k.spawn_logged(cmd, "run-no-syncfs.log");
    } else {
        k.start();
    }
    k.wait_until("every cursor persisted", || k.cursors_persisted(MANY));
    // They were flushed together (else this tests the per-file syncs).
    let largest_flush = |logs: &str| {
        logs.split("state flushed saved=")
            .skip(1)
            .filter_map(|t| t.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .max()
            .unwrap_or(0usize)
    };
    k.wait_until("a flush of 32 files or more logged", || {
        largest_flush(&k.logs()) >= 32
    });
    let fell_back = k.logs().contains("syncing file by file");
    assert_eq!(fell_back, no_syncfs, "{}", k.logs());
    k.kill9();
    k.start();
    let s = k.wait("ready after the kill", |s| {
        s["state"] == "running" && events(s) == total
    });
    assert_eq!(s["counters"]["bytes"], 0, "read again after the kill: {s}");
    assert_eq!(s["counters"]["events"], 0, "{s}");
    for id in &ids {
        let session = s["sessions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == *id.as_str()))
            .unwrap_or_else(|| panic!("{id} is not in the status: {s}"));
        assert!(session["events"].as_u64() >= Some(2), "{session}");
    }
    k.stop();
}
