//! The security audit log through the real binary: whole records on a full
//! disk, commands refused when they cannot be audited, the anchor catching
//! tampering at rest, and the chain head kept outside the state directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::harness::tmpfs::Tmpfs;
use crate::harness::{append_lines as append, assistant, user, Kato};

fn log_path(k: &Kato) -> PathBuf {
    k.path("state/security-audit.jsonl")
}

fn anchor_path(k: &Kato) -> PathBuf {
    k.path("state/security-audit.jsonl.anchor")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every line of the log is a whole record ending in a newline.
fn assert_whole_records(path: &Path) {
    let bytes = fs::read(path).unwrap();
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "the log ends in the middle of a record: {:?}",
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..])
    );
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if !line.is_empty() {
            assert!(
                serde_json::from_slice::<Value>(line).is_ok(),
                "line {} is not a whole record: {:?}",
                i + 1,
                String::from_utf8_lossy(line)
            );
        }
    }
}

fn audit_status(k: &Kato) -> Value {
    k.status()
        .map(|s| s["audit"].clone())
        .unwrap_or(Value::Null)
}

/// Three records per refused command: parsed, denied, rejected.
fn denied_commands(k: &Kato, n: usize) {
    let f = k.claude_file();
    for i in 0..n {
        let dest = k.path(&format!("outside/denied-{i}.md"));
        append(
            &f,
            &[user(
                &format!("deny{i}"),
                &format!("::capture {}", dest.display()),
            )],
        );
    }
    let want = n;
    k.wait_until("the denied commands to be audited", || {
        k.audit()
            .iter()
            .filter(|r| r["event"] == "write.denied")
            .count()
            >= want
    });
}

#[test]
fn a_full_state_disk_cuts_no_record_and_runs_no_command_without_its_record() {
    let mut k = Kato::recording();
    let Some(disk) = Tmpfs::mount(&k.path("state"), "1m") else {
        return;
    };
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    let filler = disk.fill();
    // Commands arrive while nothing more fits in the state directory.
    let dest = k.out("while-full.md");
    append(&f, &[user("u1", &format!("::capture {}", dest.display()))]);
    k.wait("the refusal in the status", |s| {
        s["audit"]["writable"] == false
            && s["warnings"].as_array().is_some_and(|w| {
                w.iter().any(|w| {
                    w["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("refused") && m.contains("while-full"))
                })
            })
    });
    for i in 0..5 {
        append(&f, &[user(&format!("more{i}"), "::stop")]);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let error = audit_status(&k)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    eprintln!("the audit log could not be written: {error}");
    assert_whole_records(&log_path(&k));
    assert!(!dest.exists(), "the command ran without its audit record");
    let st = k.kato(&["status"]);
    assert!(text(&st).contains("audit   CANNOT WRITE"), "{}", text(&st));
    // Space returns: the waiting records are written, commands run again.
    fs::remove_file(filler).unwrap();
    k.wait("the audit log writable again", |s| {
        s["audit"]["writable"] == true && s["audit"]["deferred"] == 0
    });
    let refused: Vec<Value> = k
        .audit()
        .into_iter()
        .filter(|r| {
            r["event"] == "command.rejected"
                && r["reason"]
                    .as_str()
                    .is_some_and(|m| m.contains("could not be written"))
        })
        .collect();
    assert!(!refused.is_empty(), "the refusal is recorded late");
    assert!(refused.iter().all(|r| r["decided_at"].is_string()));
    append(&f, &[user("u2", &format!("::capture {}", dest.display()))]);
    k.wait_for_text(&dest, "start");
    k.stop();
    assert_whole_records(&log_path(&k));
    let verify = k.kato(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn a_record_cut_off_by_a_crash_is_removed_at_start_and_the_chain_stays_whole() {
    let mut k = Kato::new(false);
    k.start();
    k.stop();
    // What a crash in the middle of a write would leave.
    crate::harness::append(&log_path(&k), "{\"seq\":99,\"time\":\"2026-01-0");
    k.start();
    k.wait("the repair in the status", |s| {
        s["warnings"].as_array().is_some_and(|w| {
            w.iter()
                .any(|w| w["message"].as_str().is_some_and(|m| m.contains("cut off")))
        })
    });
    let repaired = k
        .audit()
        .into_iter()
        .find(|r| r["event"] == "audit.repaired")
        .expect("an audit.repaired record");
    assert_eq!(repaired["detail"]["bytes"], 27);
    k.stop();
    assert_whole_records(&log_path(&k));
    let verify = k.kato(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        text(&verify).contains("audit.repaired"),
        "{}",
        text(&verify)
    );
}

/// Rewrite every record with `edit` applied and the chain recomputed.
fn recompute(path: &Path, keep: usize, edit: impl Fn(&mut Value)) {
    let mut prev = kato::audit::GENESIS.to_owned();
    let mut out = String::new();
    for line in fs::read_to_string(path).unwrap().lines().take(keep) {
        let mut v: Value = serde_json::from_str(line).unwrap();
        edit(&mut v);
        v["prev"] = Value::String(prev);
        let l = v.to_string();
        prev = kato::audit::hex_sha256(l.as_bytes());
        out.push_str(&l);
        out.push('\n');
    }
    fs::write(path, out).unwrap();
}

/// What is done to the log, how, and what `kato audit verify` must say.
type Tampering<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);

#[test]
fn tampering_with_the_stopped_daemons_audit_log_is_detected() {
    let mut k = Kato::recording();
    append(&k.claude_file(), &[user("u0", "start")]);
    k.start();
    denied_commands(&k, 4);
    k.stop();
    let log = log_path(&k);
    let pristine = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = pristine.lines().collect();
    assert!(lines.len() > 11, "{} records", lines.len());
    let ok = k.kato(&["audit", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let keep = |n: usize| {
        lines[..n]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    let n = lines.len();
    let edited_last = {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[n - 1] = l[n - 1].replace("denied-3", "denied-X");
        assert_ne!(
            l[n - 1],
            lines[n - 1],
            "the last record names the last command"
        );
        l.iter().map(|s| format!("{s}\n")).collect::<String>()
    };
    let cases: Vec<Tampering> = vec![
        (
            "edit the last record",
            Box::new(|| fs::write(&log, &edited_last).unwrap()),
            "recomputed",
        ),
        (
            "drop the last line",
            Box::new(|| fs::write(&log, keep(n - 1)).unwrap()),
            "the last 1 were removed",
        ),
        (
            "drop the last 10 lines",
            Box::new(|| fs::write(&log, keep(n - 10)).unwrap()),
            "the last 10 were removed",
        ),
        (
            "empty the file",
            Box::new(|| fs::write(&log, "").unwrap()),
            "emptied",
        ),
        (
            "delete the file",
            Box::new(|| fs::remove_file(&log).unwrap()),
            "emptied",
        ),
        (
            "recompute the whole chain",
            Box::new(|| recompute(&log, n, |v| v["pid"] = Value::from(1))),
            "recomputed",
        ),
        (
            "recompute the chain without its last record",
            Box::new(|| recompute(&log, n - 1, |_| {})),
            "the last 1 were removed",
        ),
    ];
    for (what, tamper, expect) in cases {
        fs::write(&log, &pristine).unwrap();
        tamper();
        let v = k.kato(&["audit", "verify"]);
        assert_eq!(v.status.code(), Some(1), "{what}: {}", text(&v));
        assert!(text(&v).contains(expect), "{what}: {}", text(&v));
    }
}

#[test]
fn a_log_that_does_not_match_its_anchor_is_set_aside_and_a_new_chain_begins() {
    let mut k = Kato::recording();
    append(&k.claude_file(), &[user("u0", "start")]);
    k.start();
    denied_commands(&k, 1);
    k.stop();
    let log = log_path(&k);
    let text_before = fs::read_to_string(&log).unwrap();
    let cut: String = text_before
        .lines()
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&log, &cut).unwrap();
    k.start();
    let first = k.audit().into_iter().next().unwrap();
    assert_eq!(first["event"], "audit.restarted", "{first}");
    let aside = PathBuf::from(first["target"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(&aside).unwrap(),
        cut,
        "kept as it was found"
    );
    assert!(k.status().unwrap()["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["message"]
            .as_str()
            .is_some_and(|m| m.contains("set aside"))));
    k.stop();
    let live = k.kato(&["audit", "verify"]);
    assert!(live.status.success(), "{}", text(&live));
    assert!(text(&live).contains("audit.restarted"), "{}", text(&live));
    let old = k.kato(&["audit", "verify", aside.to_str().unwrap()]);
    assert_eq!(old.status.code(), Some(1), "{}", text(&old));
}

/// `audit chain head records=N head=H` lines of the daemon's log: (N, H).
fn logged_heads(logs: &str) -> Vec<(u64, String)> {
    logs.lines()
        .filter(|l| l.contains("audit chain head"))
        .filter_map(|l| {
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .map(|v| v.trim_matches('"').to_owned())
            };
            Some((field("records=")?.parse().ok()?, field("head=")?))
        })
        .collect()
}

#[test]
fn the_chain_head_is_logged_at_start_and_stop_and_checks_as_an_external_anchor() {
    let mut k = Kato::recording();
    append(&k.claude_file(), &[user("u0", "start")]);
    k.start();
    let running_head = k.wait("the audit head in the status", |s| {
        s["audit"]["head"].is_string()
    });
    let shown = text(&k.kato(&["status"]));
    assert!(
        shown.contains("audit   ") && shown.contains(" record(s), head "),
        "{shown}"
    );
    denied_commands(&k, 2);
    k.stop();
    let heads = logged_heads(&k.logs());
    assert!(heads.len() >= 2, "start and stop: {heads:?}\n{}", k.logs());
    let (records, head) = heads.last().unwrap().clone();
    // The anchor beside the log and `kato status` agree with the log line.
    let st = k.kato(&["status"]);
    assert_eq!(st.status.code(), Some(3));
    assert!(
        text(&st).contains(&format!("{records} record(s) anchored, head {head}")),
        "{}",
        text(&st)
    );
    assert!(fs::read_to_string(anchor_path(&k)).unwrap().contains(&head));
    // The head logged at stop is the last record; the one at start is earlier.
    let at_stop = k.kato(&["audit", "verify", "--anchor", &head]);
    assert!(at_stop.status.success(), "{}", text(&at_stop));
    assert!(
        text(&at_stop).contains(&format!("is record {records}, 0 record(s) follow")),
        "{}",
        text(&at_stop)
    );
    let earlier = running_head["audit"]["head"].as_str().unwrap();
    let at_start = k.kato(&["audit", "verify", "--anchor", earlier]);
    assert!(at_start.status.success(), "{}", text(&at_start));
    let wrong = k.kato(&["audit", "verify", "--anchor", &"0f".repeat(32)]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("no record has the hash"),
        "{}",
        text(&wrong)
    );
    let malformed = k.kato(&["audit", "verify", "--anchor", "xyz"]);
    assert_eq!(malformed.status.code(), Some(2), "{}", text(&malformed));
    // A recomputed chain keeps no record with the anchored hash.
    recompute(&log_path(&k), usize::MAX, |v| v["pid"] = Value::from(1));
    fs::remove_file(anchor_path(&k)).unwrap();
    let recomputed = k.kato(&["audit", "verify", "--anchor", &head]);
    assert_eq!(recomputed.status.code(), Some(1), "{}", text(&recomputed));
}

#[test]
fn a_stale_heartbeat_with_a_live_lock_holder_is_running_busy() {
    let mut k = Kato::new(false);
    let pid = k.run_fg();
    let stop = rustix::process::Signal::STOP;
    crate::harness::signal(pid, stop);
    // What a daemon too busy (or stopped) for its heartbeat leaves behind:
    // status.json as it last wrote it, 60 s ago.
    let mut st = k.status().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    st["heartbeat_unix_ms"] = Value::from(now_ms - 60_000);
    fs::write(k.status_file(), st.to_string()).unwrap();
    let out = k.kato(&["status"]);
    crate::harness::signal(pid, rustix::process::Signal::CONT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("running, busy"), "{}", text(&out));
    k.wait("a fresh heartbeat", |s| {
        s["heartbeat_unix_ms"].as_u64() > Some(now_ms)
    });
    let json = k.kato(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (v["running"].clone(), v["busy"].clone()),
        (Value::from(true), Value::from(false))
    );
    assert_eq!(v["lock_pid"], pid);
    // Without the lock holder a fresh heartbeat means nothing.
    k.kill9();
    let out = k.kato(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
}

fn skip_reasons(k: &Kato) -> Vec<(String, String)> {
    k.status()
        .and_then(|s| s["warnings"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|w| {
            Some((
                w["path"].as_str()?.to_owned(),
                w["message"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn wait_skipped(k: &Kato, path: &Path, reason: &str) {
    let p = path.display().to_string();
    k.wait_until(&format!("{p} skipped: {reason}"), || {
        skip_reasons(k)
            .iter()
            .any(|(q, m)| *q == p && m.contains(reason))
    });
}

#[test]
fn skipped_files_are_status_warnings_with_their_reason() {
    let mut k = Kato::new(false);
    let gemini = k.with_gemini();
    let chats = gemini.join("proj/chats");
    let valid = fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gemini/tmp/demo/chats/session-2026-04-13T21-50-f328310d.json"
    ))
    .unwrap();
    let elsewhere = k.path("elsewhere.jsonl");
    fs::write(&elsewhere, assistant("x", "not a session of this root")).unwrap();
    // Before start: a symlinked session file, a garbage and a huge document.
    let link_at_start = k
        .claude
        .join("-home-u-proj/11111111-0ab3-4ee9-98f8-585fd289cc1f.jsonl");
    std::os::unix::fs::symlink(&elsewhere, &link_at_start).unwrap();
    let elsewhere_dir = k.path("elsewhere-dir");
    fs::create_dir_all(&elsewhere_dir).unwrap();
    let dir_link = k.claude.join("-home-u-linked");
    std::os::unix::fs::symlink(&elsewhere_dir, &dir_link).unwrap();
    let garbage = chats.join("session-2026-04-13T21-50-aaaaaaaa.json");
    fs::write(&garbage, b"{\"sessionId\": \"x\", \"messages\": [").unwrap();
    let huge = chats.join("session-2026-04-13T21-50-bbbbbbbb.json");
    fs::File::create(&huge).unwrap().set_len(150 << 20).unwrap();
    let f = k.claude_file();
    append(&f, &[user("u0", "read before it is replaced")]);
    k.start();
    wait_skipped(&k, &link_at_start, "a symbolic link");
    wait_skipped(&k, &dir_link, "a symbolic link to a directory");
    wait_skipped(&k, &garbage, "not a JSON document");
    wait_skipped(&k, &huge, "exceeds the cap");
    // While running: a new symlink, and a file that was read replaced by one.
    k.settle(crate::harness::S, &f);
    let link_live = k
        .claude
        .join("-home-u-proj/22222222-0ab3-4ee9-98f8-585fd289cc1f.jsonl");
    std::os::unix::fs::symlink(&elsewhere, &link_live).unwrap();
    wait_skipped(&k, &link_live, "a symbolic link");
    let tmp = k.claude.join("-home-u-proj/swap.tmp");
    std::os::unix::fs::symlink(&elsewhere, &tmp).unwrap();
    fs::rename(&tmp, &f).unwrap();
    wait_skipped(&k, &f, "replaced by a symbolic link");
    let st = k.kato(&["status"]);
    assert!(text(&st).contains("skipped files (6):"), "{}", text(&st));
    assert_eq!(k.status().unwrap()["skipped_files"], 6);
    // Fixed files come off the list.
    fs::write(&garbage, &valid).unwrap();
    fs::remove_file(&link_live).unwrap();
    k.wait("two skips fewer", |s| s["skipped_files"] == 4);
    let left: Vec<String> = skip_reasons(&k).into_iter().map(|(p, _)| p).collect();
    assert!(!left.contains(&garbage.display().to_string()), "{left:?}");
    assert!(!left.contains(&link_live.display().to_string()), "{left:?}");
    k.stop();
}
