//! The daemon end to end: the real binary in temporary directories, with
//! synthetic Claude and Codex session files under temporary roots.
//!
//! Observations go through `status.json` (what `kato status --json`
//! prints), polled against a deadline; no fixed sleep is an assertion.
//! Expected event counts come from `kato export --format jsonl` of the
//! same file, so they hold whatever a provider's parser makes of a line.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{
    append, claude_line, codex_lines, signal, test_path, Kato, BIN, DEADLINE, S as S1,
};

fn session<'a>(s: &'a Value, id: &str) -> Option<&'a Value> {
    s["sessions"]
        .as_array()?
        .iter()
        .find(|x| x["id"].as_str() == Some(id))
}

fn events(s: &Value, id: &str) -> u64 {
    session(s, id)
        .and_then(|x| x["events"].as_u64())
        .unwrap_or(0)
}

/// The record of one stage in status.json's `sandbox`.
fn stage_sandbox<'a>(s: &'a Value, stage: &str) -> &'a Value {
    s["sandbox"]["stages"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["stage"] == stage))
        .unwrap_or_else(|| panic!("no sandbox record for {stage}: {}", s["sandbox"]))
}

/// `/proc/<pid>/task/<tid>/status` of every thread, by thread name.
fn thread_status(pid: u32) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| {
            let status = fs::read_to_string(t.path().join("status")).ok()?;
            let comm = fs::read_to_string(t.path().join("comm")).ok()?;
            Some((comm.trim().to_owned(), status))
        })
        .collect();
    v.sort();
    v
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

#[test]
fn ingests_appends_persists_on_sigterm_and_resumes_from_the_cursor() {
    let mut k = Kato::new(true);
    let file = k.claude.join("-home-u-proj").join(format!("{S1}.jsonl"));
    append(&file, &(claude_line(S1, 1) + &claude_line(S1, 2)));
    let pid = k.run_fg();
    let history = k.export_count(&file);
    assert!(history >= 2);
    k.wait("history", |s| events(s, S1) == history);

    // An appended line is ingested, as live.
    append(&file, &claude_line(S1, 3));
    let after = k.export_count(&file);
    let s = k.wait("the appended line", |s| events(s, S1) == after);
    let live = session(&s, S1).unwrap()["events_live"].as_u64().unwrap();
    assert_eq!(live, after - history);

    // `kato status --json` is the file plus `running`.
    let out = k.kato(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["pid"], pid);

    // SIGTERM: orderly exit 0, state persisted, status says stopped.
    assert_eq!(k.term(pid), 0);
    let states = fs::read_dir(k.path("state/files"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(states, 1);
    assert_eq!(k.status().unwrap()["state"], "stopped");
    assert_eq!(k.kato(&["status"]).status.code(), Some(3));

    // Appended while kato was down: read from the cursor, counted live.
    let before = fs::metadata(&file).unwrap().len();
    let extra = claude_line(S1, 4);
    append(&file, &extra);
    let total = k.export_count(&file);
    let pid2 = k.run_fg();
    assert_ne!(pid, pid2);
    let s = k.wait("the line appended while down", |s| events(s, S1) == total);
    assert_eq!(
        s["counters"]["bytes"].as_u64().unwrap(),
        fs::metadata(&file).unwrap().len() - before,
        "more than the appended bytes were read again"
    );
    let live = session(&s, S1).unwrap()["events_live"].as_u64().unwrap();
    assert_eq!(live, total - history);

    // A restart with nothing new reads nothing.
    assert_eq!(k.term(pid2), 0);
    let pid3 = k.run_fg();
    let s = k.wait("ready", |s| s["pid"] == pid3);
    assert_eq!(events(&s, S1), total);
    assert_eq!(s["counters"]["bytes"], 0);
    assert_eq!(s["counters"]["events"], 0);
    assert_eq!(k.term(pid3), 0);
}

/// The cursor a file's state file holds, once it is flushed.
fn flushed_offset(k: &Kato, file: &Path) -> Option<u64> {
    fs::read_dir(k.path("state/files"))
        .ok()?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice::<Value>(&fs::read(e.path()).ok()?).ok())
        .find(|st| st["path"] == file.display().to_string())
        .and_then(|st| st["cursor"]["offset"].as_u64())
}

/// A clean stop copies every state file into one snapshot, which the next
/// start reads instead of each of them, and removes at once: after a
/// crash later, the state files alone say what was handled since.
#[test]
fn a_clean_stop_leaves_a_snapshot_read_once_by_the_next_start() {
    const S2: &str = "0890bead-ffff-4ee9-98f8-585fd289cc1f";
    let mut k = Kato::new(true);
    let dir = k.claude.join("-home-u-proj");
    let (f1, f2) = (
        dir.join(format!("{S1}.jsonl")),
        dir.join(format!("{S2}.jsonl")),
    );
    append(&f1, &(claude_line(S1, 1) + &claude_line(S1, 2)));
    append(&f2, &claude_line(S2, 1));
    let (n1, n2) = (k.export_count(&f1), k.export_count(&f2));
    let pid = k.run_fg();
    k.wait("history", |s| events(s, S1) == n1 && events(s, S2) == n2);
    assert_eq!(k.term(pid), 0);
    let snapshot = k.path("state/files.snapshot");
    let text = fs::read_to_string(&snapshot).expect("no snapshot after a clean stop");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("\"files\":2"), "{text}");
    for f in [&f1, &f2] {
        let line = lines.iter().find(|l| l.contains(&*f.display().to_string()));
        assert!(
            line.is_some(),
            "{} not in the snapshot: {text}",
            f.display()
        );
    }

    // Read once: the next start knows both files and reads nothing again.
    let pid = k.run_fg();
    assert!(
        !snapshot.exists(),
        "the snapshot outlived the start that read it"
    );
    let s = k.wait("ready", |s| s["pid"] == pid);
    assert_eq!((events(&s, S1), events(&s, S2)), (n1, n2));
    assert_eq!(s["counters"]["bytes"], 0, "a session file was read again");
    let log = fs::read_to_string(k.path("run-1.log")).unwrap();
    assert!(log.contains("state snapshot read files=2"), "{log}");

    // Handled and flushed after the start, then a crash: the next start
    // finds no snapshot to take it back to the cursor of the clean stop.
    append(&f1, &claude_line(S1, 3));
    let total = k.export_count(&f1);
    k.wait("the appended line", |s| events(s, S1) == total);
    let len = fs::metadata(&f1).unwrap().len();
    k.wait_until("the cursor flushed", || {
        flushed_offset(&k, &f1) == Some(len)
    });
    k.kill9();
    assert!(!snapshot.exists(), "a crashed daemon left a snapshot");
    let pid = k.run_fg();
    let s = k.wait("ready", |s| s["pid"] == pid);
    assert_eq!((events(&s, S1), events(&s, S2)), (total, n2));
    assert_eq!(s["counters"]["bytes"], 0, "a session file was read again");
    assert_eq!(s["counters"]["events"], 0);
    assert_eq!(k.term(pid), 0);
}

/// State files are flushed a chunk at a time (the orchestrator handles
/// what arrives in between). A history of more files than one chunk holds
/// is persisted whole: by a stop right after the ingest (the stop flushes
/// every chunk left, then writes the snapshot), and by the running daemon
/// (each chunk due at once after the last), which a crash then proves.
#[test]
fn a_history_of_more_files_than_one_flush_writes_is_persisted_whole() {
    const FILES: usize = 700;
    let mut k = Kato::new(true);
    let dir = k.claude.join("-home-u-proj");
    let ids: Vec<String> = (0..FILES)
        .map(|i| format!("0890bead-{i:04x}-4ee9-98f8-585fd289cc1f"))
        .collect();
    for id in &ids {
        append(&dir.join(format!("{id}.jsonl")), &claude_line(id, 1));
    }
    let state_files = |k: &Kato| {
        fs::read_dir(k.path("state/files"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    let all = |s: &Value| s["sessions_total"] == FILES && ids.iter().all(|id| events(s, id) == 1);

    // Stopped as soon as the history is handled.
    let pid = k.run_fg();
    k.wait("the history", all);
    assert_eq!(k.term(pid), 0);
    assert_eq!(state_files(&k), FILES);
    let snapshot = fs::read_to_string(k.path("state/files.snapshot")).expect("no snapshot");
    assert_eq!(snapshot.lines().count(), FILES + 1);
    assert!(
        snapshot
            .lines()
            .next()
            .is_some_and(|l| l.contains(&format!("\"files\":{FILES}"))),
        "{}",
        snapshot.lines().next().unwrap_or_default()
    );
    let pid = k.run_fg();
    let s = k.wait("ready", |s| s["pid"] == pid);
    assert!(all(&s));
    assert_eq!(s["counters"]["bytes"], 0, "a session file was read again");
    assert_eq!(k.term(pid), 0);

    // Persisted by the running daemon: everything read again once the
    // state (and the snapshot of the last stop) is gone, flushed in
    // chunks, then a crash.
    fs::remove_dir_all(k.path("state/files")).unwrap();
    fs::remove_file(k.path("state/files.snapshot")).unwrap();
    let pid = k.run_fg();
    k.wait("the history again", |s| s["pid"] == pid && all(s));
    k.wait_until("every state file written", || state_files(&k) == FILES);
    k.kill9();
    let pid = k.run_fg();
    let s = k.wait("ready", |s| s["pid"] == pid);
    assert!(all(&s));
    assert_eq!(s["counters"]["bytes"], 0, "a session file was read again");
    assert_eq!(s["counters"]["events"], 0);
    assert_eq!(k.term(pid), 0);
}

#[test]
fn double_start_is_refused_and_kill_9_leaves_no_stale_lock() {
    let k = Kato::new(true);
    append(
        &k.claude.join("-home-u-proj").join(format!("{S1}.jsonl")),
        &claude_line(S1, 1),
    );
    let out = k.kato(&["start"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        k.logs()
    );
    let pid = k.status().unwrap()["pid"].as_u64().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pid {pid}")));
    assert_eq!(k.kato(&["status"]).status.code(), Some(0));

    // A second start and a second run are refused, naming the pid.
    for args in [&["start"][..], &["run"][..]] {
        let out = k.kato(args);
        assert!(!out.status.success(), "{args:?} was not refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("pid {pid}")), "{args:?}: {err}");
    }

    // The detached daemon got the minimal environment and logs to kato.log.
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    for n in &names {
        assert!(
            [
                "HOME",
                "USER",
                "LANG",
                "KATO_CONFIG",
                "MIMALLOC_PURGE_DELAY"
            ]
            .contains(&n.as_str())
                || n.starts_with("XDG_"),
            "unexpected variable {n} in {names:?}"
        );
    }
    // Its allocator returns freed memory at once (an idle stage keeps
    // none of what a history it read freed), set by kato itself.
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"MIMALLOC_PURGE_DELAY=0"),
        "{names:?}"
    );
    assert!(k.path("xdg-state/kato/logs/kato.log").exists());

    // kill -9: the lock dies with the process; the next start works.
    signal(pid as u32, rustix::process::Signal::KILL);
    let t0 = Instant::now();
    while !k.lock_free() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "stale lock after kill -9"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = k.kato(&["start"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid2 = k.status().unwrap()["pid"].as_u64().unwrap();
    assert_ne!(pid, pid2);

    // restart = stop + start: a new pid, the same sessions.
    let out = k.kato(&["restart"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = k.status().unwrap();
    let pid3 = s["pid"].as_u64().unwrap();
    assert_ne!(pid2, pid3);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("kato stopped (pid {pid2}")));
    k.wait("the session after restart", |s| events(s, S1) > 0);

    let out = k.kato(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pid {pid3}")));
    assert!(k.lock_free());
    assert_eq!(k.kato(&["status"]).status.code(), Some(3));
    // Stopping a stopped daemon is not an error.
    assert!(k.kato(&["stop"]).status.success());
}

#[test]
fn truncation_and_replacement_bring_no_duplicates() {
    let mut k = Kato::new(true);
    let file = k.claude.join("-home-u-proj").join(format!("{S1}.jsonl"));
    let lines: Vec<String> = (1..=4).map(|n| claude_line(S1, n)).collect();
    append(&file, &lines[..3].concat());
    let pid = k.run_fg();
    let three = k.export_count(&file);
    k.wait("history", |s| events(s, S1) == three);

    // Replaced (a new inode, as an atomic rewrite does) by a longer copy.
    let tmp = file.with_extension("tmp-new");
    fs::write(&tmp, lines.concat()).unwrap();
    fs::rename(&tmp, &file).unwrap();
    let four = k.export_count(&file);
    let s = k.wait("the replacement", |s| {
        s["counters"]["resets"].as_u64() >= Some(1) && events(s, S1) == four
    });
    assert_eq!(s["counters"]["duplicates_dropped"].as_u64(), Some(three));

    // Truncated in place to a prefix: nothing is counted twice.
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(lines[0].len() as u64).unwrap();
    drop(f);
    let s = k.wait("the truncation", |s| {
        s["counters"]["resets"].as_u64() >= Some(2)
    });
    assert_eq!(events(&s, S1), four);

    // And a new file replacing it entirely is read from its start.
    let other = "1890bead-0ab3-4ee9-98f8-585fd289cc1f";
    fs::write(&tmp, claude_line(other, 9)).unwrap();
    let path2 = k.claude.join("-home-u-proj").join(format!("{other}.jsonl"));
    fs::rename(&tmp, &path2).unwrap();
    let n = k.export_count(&path2);
    k.wait("the moved-in file", |s| events(s, other) == n);
    assert_eq!(k.term(pid), 0);
}

#[test]
fn a_root_created_after_start_is_picked_up() {
    let mut k = Kato::new(false);
    let pid = k.run_fg();
    let s = k.status().unwrap();
    let codex = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "codex")
        .unwrap();
    assert_eq!(codex["roots"][0]["exists"], false);
    // Confined to the roots that exist: none yet. Only the supervisor
    // reads the root's nearest existing ancestor in its place.
    assert_eq!(
        stage_sandbox(&s, "provider:codex")["read"],
        serde_json::json!([])
    );
    assert_eq!(
        s["sandbox"]["ancestor_grants"][0]["root"].as_str(),
        k.codex.to_str()
    );
    // The parent of a missing root is never watched: creating the root
    // is noticed by the heartbeat (≤ 5 s), which starts a new stage whose
    // domain includes it.
    let day = k.codex.join("2026/01/08");
    fs::create_dir_all(&day).unwrap();
    let file = day.join("rollout-2026-01-08T15-00-00-c0dec0de.jsonl");
    append(&file, &codex_lines("c0dec0de-0000-4000-8000-000000000001"));
    let n = k.export_count(&file);
    let s = k.wait("the new root", |s| {
        s["sessions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["provider"] == "codex" && x["events"].as_u64() == Some(n))
        })
    });
    let id = s["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["provider"] == "codex")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Then appends are live.
    append(
        &file,
        "{\"timestamp\":\"2026-01-08T15:00:02.000Z\",\"type\":\"response_item\",\"payload\":{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"ok\"}]}}\n",
    );
    let m = k.export_count(&file);
    let s = k.wait("the live append", |s| events(s, &id) == m);
    assert_eq!(
        session(&s, &id).unwrap()["events_live"].as_u64(),
        Some(m - n)
    );
    assert_eq!(
        stage_sandbox(&s, "provider:codex")["read"],
        serde_json::json!([k.codex])
    );
    assert_eq!(stage_sandbox(&s, "provider:codex")["state"], "enforced");
    // A new stage, not a crash: no restart counted, no warning.
    let codex = s["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "codex")
        .unwrap();
    assert_eq!(codex["restarts"], 0);
    assert_eq!(s["warnings"], serde_json::json!([]));
    assert_eq!(k.term(pid), 0);
}

#[test]
fn two_hundred_files_appended_in_parallel_lose_nothing() {
    let mut k = Kato::new(true);
    let ids: Vec<String> = (0..200)
        .map(|i| format!("{i:08x}-0ab3-4ee9-98f8-585fd289cc1f"))
        .collect();
    let files: Vec<PathBuf> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let dir = k.claude.join(format!("-home-u-p{}", i % 10));
            fs::create_dir_all(&dir).unwrap();
            let f = dir.join(format!("{id}.jsonl"));
            append(&f, &claude_line(id, 0));
            f
        })
        .collect();
    let pid = k.run_fg();
    let per_line = k.export_count(&files[0]);
    k.wait("history of 200 files", |s| {
        ids.iter().all(|id| events(s, id) == per_line)
    });
    const APPENDS: u32 = 10;
    std::thread::scope(|scope| {
        for chunk in files.chunks(25) {
            let ids = &ids;
            let files = &files;
            scope.spawn(move || {
                for n in 1..=APPENDS {
                    for f in chunk {
                        let i = files.iter().position(|x| x == f).unwrap();
                        append(f, &claude_line(&ids[i], n));
                    }
                }
            });
        }
    });
    let expected = per_line * u64::from(APPENDS + 1);
    let s = k.wait("every appended line", |s| {
        ids.iter().all(|id| events(s, id) == expected)
    });
    assert_eq!(s["sessions_total"], 200);
    for id in &ids {
        assert_eq!(
            session(&s, id).unwrap()["events_live"].as_u64(),
            Some(per_line * u64::from(APPENDS))
        );
    }
    assert_eq!(k.term(pid), 0);
    // Everything was persisted: a restart reads nothing and counts the same.
    let pid = k.run_fg();
    let s = k.wait("ready", |s| s["pid"] == pid);
    assert!(ids.iter().all(|id| events(&s, id) == expected));
    assert_eq!(s["counters"]["bytes"], 0);
    assert_eq!(k.term(pid), 0);
}

#[test]
fn a_corrupt_state_file_is_quarantined_not_a_crash_loop() {
    let mut k = Kato::new(true);
    let file = k.claude.join("-home-u-proj").join(format!("{S1}.jsonl"));
    append(&file, &(claude_line(S1, 1) + &claude_line(S1, 2)));
    let n = k.export_count(&file);
    let pid = k.run_fg();
    k.wait("history", |s| events(s, S1) == n);
    assert_eq!(k.term(pid), 0);
    let state = fs::read_dir(k.path("state/files"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    fs::write(
        &state,
        b"{\"v\":1,\"provider\":\"claude\",\"cursor\":{\"off",
    )
    .unwrap();
    // As after a crash: no snapshot of a clean stop, so each state file
    // is read.
    fs::remove_file(k.path("state/files.snapshot")).unwrap();

    let pid = k.run_fg();
    let s = k.wait("the file read again", |s| events(s, S1) == n);
    let warnings = s["warnings"].to_string();
    assert!(warnings.contains("could not be used"), "{warnings}");
    assert!(warnings.contains("set aside"), "{warnings}");
    let set_aside: Vec<_> = fs::read_dir(k.path("state/quarantine"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(set_aside.len(), 1);
    // Read again from safe defaults: all of it is history.
    assert_eq!(session(&s, S1).unwrap()["events_live"], 0);
    let out = k.kato(&["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("could not be used"));
    assert_eq!(k.term(pid), 0);
    // And the next start is clean.
    let pid = k.run_fg();
    let s = k.wait("ready", |s| s["pid"] == pid);
    assert_eq!(s["warnings"].as_array().map(Vec::len), Some(0));
    assert_eq!(events(&s, S1), n);
    assert_eq!(k.term(pid), 0);
}

#[test]
fn status_without_a_daemon_exits_3() {
    let k = Kato::new(true);
    let out = k.kato(&["status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
    let out = k.kato(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["running"], false);
}

#[test]
fn logs_are_json_on_request_and_carry_no_chat_text() {
    let mut k = Kato::new(true);
    let file = k.claude.join("-home-u-proj").join(format!("{S1}.jsonl"));
    append(&file, &claude_line(S1, 1));
    let pid = k.run_fg_with(&["--log-format", "json"]);
    append(&file, &claude_line(S1, 2));
    let n = k.export_count(&file);
    k.wait("the append", |s| events(s, S1) == n);
    assert_eq!(k.term(pid), 0);
    let log = fs::read_to_string(k.path("run-0.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 3, "{log}");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
    assert!(log.contains("ready"), "{log}");
    // The log level in the test config is debug; still no message text at info+.
    for l in lines.iter().filter(|l| !l.contains("\"level\":\"DEBUG\"")) {
        assert!(!l.contains("message number"), "chat text in the log: {l}");
    }
}

#[test]
fn journald_requested_but_absent_falls_back_to_stderr() {
    if Path::new("/run/systemd/journal/socket").exists() {
        return; // a real journal would take the log
    }
    let k = Kato::new(true);
    let child = k
        .cmd()
        .arg("run")
        .env("JOURNAL_STREAM", "8:12345")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    k.wait("ready", |s| s["pid"] == pid && s["ready"] == true);
    signal(pid, rustix::process::Signal::TERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("journald is not reachable"), "{err}");
    assert!(err.contains("ready"), "{err}");
}

#[test]
fn every_thread_is_hardened_and_every_stage_confined() {
    let mut k = Kato::new(false);
    let file = k.claude.join("-home-u-proj").join(format!("{S1}.jsonl"));
    append(&file, &claude_line(S1, 1));
    // A secret in the environment of whoever starts kato.
    let mut cmd = k.cmd();
    cmd.env("KATO_TEST_API_KEY", "sk-test-not-for-kato")
        .args(["--sandbox", "enforce", "run"]);
    let pid = k.spawn_logged(cmd, "run-secret.log");
    let s = k.wait("ready", |s| s["pid"] == pid && s["ready"] == true);
    k.wait("history", |s| events(s, S1) > 0);

    // From the kernel's side: every thread without privilege, under
    // no_new_privs and a seccomp filter; every stage thread narrowed itself
    // (one more filter stack than the supervisor it was created by).
    let threads = thread_status(pid);
    let names: Vec<&str> = threads.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "kato",
        "kato-orch",
        "kato-claude",
        "kato-codex",
        "kato-writers",
        "kato-signals",
    ] {
        assert!(names.contains(&want), "no thread {want} in {names:?}");
    }
    let filters =
        |status: &str| -> u32 { status_field(status, "Seccomp_filters").parse().unwrap() };
    let main_filters = threads
        .iter()
        .find(|(n, _)| n == "kato")
        .map(|(_, st)| filters(st))
        .unwrap();
    assert!(main_filters >= 1);
    for (name, st) in &threads {
        assert_eq!(status_field(st, "NoNewPrivs"), "1", "{name}");
        assert_eq!(status_field(st, "Seccomp"), "2", "{name}");
        for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(status_field(st, cap), "0000000000000000", "{name} {cap}");
        }
        if name.starts_with("kato-") {
            assert!(
                filters(st) > main_filters,
                "{name} did not confine itself: {} filter(s), supervisor {main_filters}",
                filters(st)
            );
        }
    }

    // The secret is gone from the process, not only from `environ`.
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(!environ.contains("sk-test-not-for-kato"), "{environ}");
    assert!(!environ.contains("LANG="), "{environ}");
    assert!(environ.contains("MIMALLOC_PURGE_DELAY=0"), "{environ}");

    // status.json says the same, per stage.
    let sb = &s["sandbox"];
    assert_eq!(sb["mode"], "enforce");
    assert_eq!(sb["landlock_abi_pinned"], 6);
    assert!(sb["landlock_abi_kernel"].as_u64() >= Some(6), "{sb}");
    assert_eq!(sb["enforced"], true, "{sb}");
    assert_eq!(sb["process"]["no_new_privs"], true);
    assert_eq!(sb["process"]["capabilities_empty"], true);
    assert_eq!(sb["process"]["environment_kept"], serde_json::json!([]));
    for stage in [
        "supervisor",
        "orchestrator",
        "provider:claude",
        "provider:codex",
        "writer-spawner",
        "signals",
    ] {
        let st = stage_sandbox(&s, stage);
        assert_eq!(st["state"], "enforced", "{stage}: {st}");
        assert_eq!(st["landlock"], "fully-enforced", "{stage}");
        assert_eq!(st["seccomp"], true, "{stage}");
    }
    assert_eq!(
        stage_sandbox(&s, "provider:claude")["read"],
        serde_json::json!([k.claude])
    );
    let orch = stage_sandbox(&s, "orchestrator");
    assert_eq!(orch["read"], serde_json::json!([k.path("config.toml")]));
    assert_eq!(
        orch["write_trees"],
        serde_json::json!([k.path("run/kato"), k.path("state")])
    );
    // The missing codex root: its ancestor is granted to the supervisor only.
    assert_eq!(
        sb["ancestor_grants"],
        serde_json::json!([{ "root": k.codex, "granted": k.base() }])
    );
    let supervisor = stage_sandbox(&s, "supervisor");
    assert!(supervisor["read"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!(k.base())));
    for (stage, st) in sb["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (&x["stage"], x))
    {
        if stage != "supervisor" {
            assert!(
                !st["read"]
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!(k.base())),
                "{stage} got the ancestor"
            );
        }
    }

    // `kato status` shows it; the audit log has one record per stage.
    let out = k.kato(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sandbox enforce, Landlock ABI 6") && text.contains("every stage confined"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{} is missing: the supervisor reads {} until it appears",
            k.codex.display(),
            k.base().display()
        )),
        "{text}"
    );
    let t0 = Instant::now();
    loop {
        let audit = fs::read_to_string(k.path("state/security-audit.jsonl")).unwrap_or_default();
        let applied: Vec<Value> = audit
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["event"] == "sandbox.applied")
            .collect();
        let stages: Vec<&str> = applied.iter().filter_map(|r| r["stage"].as_str()).collect();
        if [
            "supervisor",
            "orchestrator",
            "provider:claude",
            "writer-spawner",
        ]
        .iter()
        .all(|s| stages.contains(s))
        {
            break;
        }
        assert!(t0.elapsed() < DEADLINE, "audit records: {stages:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(k.kato(&["audit", "verify"]).status.success());

    // `kato stop` and `kato status` are not confined: signals reach the
    // daemon's Landlock domain from outside it.
    let out = k.kato(&["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(k.kato(&["status"]).status.code(), Some(3));
}

#[test]
fn a_provider_stage_cannot_read_outside_its_roots() {
    let mut k = Kato::new(true);
    let proj = k.claude.join("-home-u-proj");
    append(&proj.join(format!("{S1}.jsonl")), &claude_line(S1, 1));
    // Outside every root: a session kato must never ingest …
    let outside = k.path("outside");
    fs::create_dir_all(outside.join("-home-u-proj")).unwrap();
    let s2 = "2890bead-0ab3-4ee9-98f8-585fd289cc1f";
    let s2_file = outside.join("-home-u-proj").join(format!("{s2}.jsonl"));
    append(&s2_file, &claude_line(s2, 1));
    // … reachable through a symbolic link planted inside the root …
    let s3 = "3890bead-0ab3-4ee9-98f8-585fd289cc1f";
    let s3_file = outside.join(format!("{s3}.jsonl"));
    append(&s3_file, &claude_line(s3, 1));
    std::os::unix::fs::symlink(&s3_file, proj.join(format!("{s3}.jsonl"))).unwrap();
    let pid = k.run_fg_with(&["--sandbox", "enforce"]);
    k.wait("history", |s| events(s, S1) > 0);

    // … and, after start, through the root itself: the root is moved away
    // and a symbolic link to the outside directory takes its place.
    fs::rename(&k.claude, k.path("claude.old")).unwrap();
    std::os::unix::fs::symlink(&outside, &k.claude).unwrap();
    // The supervisor starts a new claude stage for the replaced root; its
    // reads there fail with EACCES from the kernel: the process-wide
    // domain never covered the outside directory.
    let s = k.wait("the kernel's refusal", |s| {
        s["warnings"].as_array().is_some_and(|w| {
            w.iter().any(|w| {
                w["source"] == "claude"
                    && w["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("os error 13"))
            })
        })
    });
    let warnings = s["warnings"].to_string();
    assert!(
        warnings.contains("outside this stage's confinement domain"),
        "{warnings}"
    );
    // One more heartbeat and rescan opportunity: still nothing from outside.
    std::thread::sleep(Duration::from_secs(6));
    let s = k.status().unwrap();
    assert!(session(&s, s2).is_none(), "ingested from outside the roots");
    assert!(
        session(&s, s3).is_none(),
        "followed a symlink out of the root"
    );
    assert_eq!(stage_sandbox(&s, "provider:claude")["state"], "enforced");
    // The files themselves are readable by kato (a one-shot export of
    // each reads it): the denial came from the daemon's stage domain.
    assert!(k.export_count(&s2_file) > 0);
    assert!(k.export_count(&s3_file) > 0);
    assert_eq!(k.term(pid), 0);
}

/// Set (to a JSON list of arguments) when this test binary is re-executed
/// as a launcher that starts kato under a seccomp filter refusing the
/// Landlock system calls — what a service manager's syscall filter can do.
const NO_LANDLOCK_LAUNCH: &str = "KATO_TEST_LAUNCH_WITHOUT_LANDLOCK";

/// Not a test by itself: the launcher (see [`NO_LANDLOCK_LAUNCH`]).
#[test]
fn launcher_without_landlock() {
    use std::os::unix::process::CommandExt;
    let Ok(args) = std::env::var(NO_LANDLOCK_LAUNCH) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).unwrap();
    let rules = [
        libc::SYS_landlock_create_ruleset,
        libc::SYS_landlock_add_rule,
        libc::SYS_landlock_restrict_self,
    ]
    .into_iter()
    .map(|nr| (nr, vec![]))
    .collect();
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::EPERM as u32),
        seccompiler::TargetArch::try_from(std::env::consts::ARCH).unwrap(),
    )
    .unwrap();
    let prog = seccompiler::BpfProgram::try_from(filter).unwrap();
    seccompiler::apply_filter(&prog).unwrap();
    let e = Command::new(BIN).args(args).exec();
    panic!("exec {BIN}: {e}");
}

impl Kato {
    /// `kato ARGS` started by the launcher, without Landlock.
    fn without_landlock(&self, args: &[&str]) -> Command {
        let mut c = self.cmd_of(&std::env::current_exe().unwrap());
        let launcher = test_path(module_path!(), "launcher_without_landlock");
        c.args([launcher.as_str(), "--exact", "--test-threads=1"])
            .env(NO_LANDLOCK_LAUNCH, serde_json::to_string(args).unwrap());
        c
    }
}

#[test]
fn without_landlock_enforce_refuses_to_start_and_best_effort_says_degraded() {
    let mut k = Kato::new(true);
    let file = k.claude.join("-home-u-proj").join(format!("{S1}.jsonl"));
    append(&file, &claude_line(S1, 1));

    // enforce: fails closed before any stage runs, naming what is missing.
    let out = k
        .without_landlock(&["--sandbox", "enforce", "run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Landlock") && err.contains("SystemCallFilter") && err.contains("best-effort"),
        "{err}"
    );
    assert!(
        k.status().is_none(),
        "a daemon that refused to start wrote status"
    );

    // best-effort: runs, ingests, and says it is degraded everywhere.
    let cmd = k.without_landlock(&["--sandbox", "best-effort", "run"]);
    let pid = k.spawn_logged(cmd, "run-degraded.log");
    let s = k.wait("ingest while degraded", |s| {
        s["pid"] == pid && s["ready"] == true && events(s, S1) > 0
    });
    let sb = &s["sandbox"];
    assert_eq!(sb["mode"], "best-effort");
    assert_eq!(sb["enforced"], false);
    for stage in [
        "supervisor",
        "orchestrator",
        "provider:claude",
        "writer-spawner",
    ] {
        let st = stage_sandbox(&s, stage);
        assert_eq!(st["state"], "degraded", "{stage}: {st}");
        assert_eq!(st["landlock"], "not-enforced", "{stage}");
        // The second wall still stands.
        assert_eq!(st["seccomp"], true, "{stage}");
    }
    let s = k.wait("the degradation warnings", |s| {
        s["warnings"]
            .to_string()
            .contains("provider:claude stage runs with degraded confinement")
    });
    assert!(
        s["warnings"].to_string().contains("Landlock"),
        "{}",
        s["warnings"]
    );
    let text = String::from_utf8_lossy(&k.kato(&["status"]).stdout).into_owned();
    assert!(text.contains("DEGRADED"), "{text}");
    let audit = fs::read_to_string(k.path("state/security-audit.jsonl")).unwrap();
    assert!(audit.contains("\"sandbox.degraded\""), "{audit}");
    // Still no privilege and a seccomp filter on every thread.
    for (name, st) in thread_status(pid) {
        assert_eq!(status_field(&st, "NoNewPrivs"), "1", "{name}");
        assert_eq!(status_field(&st, "Seccomp"), "2", "{name}");
        assert_eq!(status_field(&st, "CapEff"), "0000000000000000", "{name}");
    }
    assert_eq!(k.term(pid), 0);
}
