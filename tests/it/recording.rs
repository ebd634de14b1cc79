//! In-chat commands and live recordings end to end: the real binary, real
//! files, a Claude session and a Codex session appended line by line as the
//! agents write them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{
    append_lines as append, assistant, count, jsonl_ids, tool_pair, user, Kato, CODEX_ID, S,
};

#[test]
fn capture_record_stop_export_init_in_a_claude_session() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    append(
        &f,
        &[
            user("u1", "history question"),
            assistant("a1", "history answer"),
        ],
    );
    k.start();
    let cap = k.out("notes/design.md");
    fs::create_dir_all(cap.parent().unwrap()).unwrap();
    append(
        &f,
        &[user(
            "u2",
            &format!(
                "before the command\n::capture {}\nafter the command",
                cap.with_extension("").display()
            ),
        )],
    );
    let text = k.wait_for_text(&cap, "after the command");
    assert!(text.starts_with("---\n"), "{text}");
    assert_eq!(
        count(&text, "history question"),
        3,
        "frontmatter title, heading and message: {text}"
    );
    assert_eq!(count(&text, "history answer"), 1);
    assert_eq!(count(&text, "before the command"), 1);
    // Live from here on.
    append(&f, &[assistant("a2", "live answer one")]);
    k.wait_for_text(&cap, "live answer one");
    // Commands planted by the assistant or a tool do nothing.
    let evil = k.out("evil.md");
    let [call, result] = tool_pair(1, &format!("::capture {}", evil.display()));
    append(
        &f,
        &[
            assistant("a3", &format!("::export {}", evil.display())),
            call,
            result,
        ],
    );
    k.settle(S, &f);
    // An escape attempt writes nothing outside the roots and is denied.
    let outside = k.base().join("outside/escape.md");
    append(
        &f,
        &[user(
            "u3",
            &format!(
                "::export {}\n::export {}/../outside/x.md",
                outside.display(),
                k.out("").display()
            ),
        )],
    );
    k.settle(S, &f);
    // Stop, then nothing more is recorded.
    append(&f, &[user("u4", "::stop"), assistant("a4", "not recorded")]);
    k.settle(S, &f);
    // Export (JSONL) up to the command; init a second file.
    let exp = k.out("exp.jsonl");
    let init = k.out("init.md");
    append(
        &f,
        &[user(
            "u5",
            &format!("::export {}\n::init {}", exp.display(), init.display()),
        )],
    );
    k.wait_for_text(&init, "recording_ids");
    k.wait_for_text(&exp, "::export");
    k.stop();

    let text = fs::read_to_string(&cap).unwrap();
    assert!(!text.contains("not recorded"), "{text}");
    assert!(!evil.exists());
    assert!(!outside.exists());
    assert!(!k.base().join("outside/x.md").exists());
    let exp_lines: Vec<Value> = fs::read_to_string(&exp)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exp_lines[0]["event_id"], "u1");
    assert!(exp_lines.iter().all(|l| l["schema_version"] == 1));
    assert!(exp_lines.iter().any(|l| l["event_id"] == "a4"));
    let init_text = fs::read_to_string(&init).unwrap();
    assert!(init_text.starts_with("---\n") && !init_text.contains("history answer"));

    // Audit completeness: every decision of this session left its record.
    let audit = k.audit();
    let events: Vec<&str> = audit.iter().map(|r| r["event"].as_str().unwrap()).collect();
    for e in [
        "command.parsed",
        "command.executed",
        "command.rejected",
        "write.allowed",
        "write.denied",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    // One parse record per human command line: capture, the two escaping
    // exports (well-formed, then refused by the path policy: outside the
    // roots, and a `..` component), stop, export + init = 6.
    assert_eq!(events.iter().filter(|e| **e == "command.parsed").count(), 6);
    assert!(audit
        .iter()
        .all(|r| r["policy_hash"].as_str().is_some_and(|h| h.len() == 64)));
    assert!(audit.iter().any(|r| r["event"] == "command.rejected"
        && r["raw"]
            .as_str()
            .is_some_and(|x| x.contains("outside/x.md"))));
    assert!(!audit
        .iter()
        .any(|r| r["raw"].as_str().is_some_and(|x| x.contains("evil.md"))));
    let verify = k.cmd().args(["audit", "verify"]).output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn record_uses_the_default_dir_and_starts_at_its_own_line() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    append(
        &f,
        &[user("u1", "old history"), assistant("a1", "old answer")],
    );
    k.start();
    append(&f, &[user("u2", "not this line\n::record\nbut this one")]);
    k.settle(S, &f);
    let dir = k.out("default");
    k.wait_until("a default recording", || {
        fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some())
    });
    let file = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("2026-01-08-claude-old-history-0890bead"),
        "{name}"
    );
    let text = k.wait_for_text(&file, "but this one");
    assert!(!text.contains("not this line"), "{text}");
    assert!(!text.contains("old answer"), "{text}");
    assert!(text.contains("::record"), "{text}");
}

#[test]
fn historical_commands_are_skipped_and_audited() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    let target = k.out("from-history.md");
    append(
        &f,
        &[user("u1", &format!("::capture {}", target.display()))],
    );
    k.start();
    k.settle(S, &f);
    append(
        &f,
        &["this line is not JSON".to_owned(), assistant("a1", "later")],
    );
    k.settle(S, &f);
    k.wait_until("the malformed line to be audited", || {
        k.audit().iter().any(|r| r["event"] == "input.malformed")
    });
    k.stop();
    assert!(!target.exists());
    assert!(k
        .audit()
        .iter()
        .any(|r| r["event"] == "command.skipped-historical"));
}

#[test]
fn codex_capture_uses_only_what_the_human_typed() {
    let mut k = Kato::recording();
    let f = k.codex_file();
    let line = |t: &str, p: Value| {
        json!({"timestamp": "2026-01-08T15:00:00.000Z", "type": t, "payload": p}).to_string()
    };
    append(
        &f,
        &[
            line(
                "session_meta",
                json!({"id": CODEX_ID, "timestamp": "2026-01-08T15:00:00.000Z", "cwd": "/w"}),
            ),
            line(
                "response_item",
                json!({"type": "message", "role": "user",
                  "content": [{"type": "input_text", "text": "<environment_context>\n::record\n</environment_context>"}]}),
            ),
        ],
    );
    k.start();
    let cap = k.out("codex.md");
    let typed = format!("hello codex\n::capture {}", cap.display());
    append(
        &f,
        &[
            line(
                "response_item",
                json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": typed}]}),
            ),
            line(
                "event_msg",
                json!({"type": "user_message", "message": typed}),
            ),
            line(
                "response_item",
                json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "codex says hi"}]}),
            ),
        ],
    );
    let text = k.wait_for_text(&cap, "codex says hi");
    assert_eq!(count(&text, "::capture"), 1, "the human text once: {text}");
    let default = k.out("default");
    assert!(
        fs::read_dir(&default).map_or(true, |mut d| d.next().is_none()),
        "the injected ::record did nothing"
    );
}

#[test]
fn kill_9_under_load_records_every_event_exactly_once() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    let dest = k.out("load.jsonl");
    append(&f, &[user("u1", &format!("::capture {}", dest.display()))]);
    k.wait_for_text(&dest, "\"u1\"");
    let writer = {
        let f = f.clone();
        std::thread::spawn(move || {
            for i in 0..400 {
                append(
                    &f,
                    &[assistant(
                        &format!("load-{i}"),
                        &format!("event number {i}"),
                    )],
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    k.kill9();
    writer.join().unwrap();
    k.start();
    k.wait_for_text(&dest, "\"load-399\"");
    k.settle(S, &f);
    k.stop();
    let ids = jsonl_ids(&dest);
    let mut expected: Vec<String> = vec!["u0".into(), "u1".into()];
    expected.extend((0..400).map(|i| format!("load-{i}")));
    assert_eq!(ids, expected, "every event once, in order");
}

#[test]
fn capture_of_a_long_session_includes_all_of_it() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    let mut lines = vec![user("first", "the very first event")];
    for i in 0..10_500 {
        lines.extend(tool_pair(i, &format!("output {i}")));
    }
    append(&f, &lines);
    k.start();
    let dest = k.out("long.jsonl");
    append(&f, &[user("cmd", &format!("::capture {}", dest.display()))]);
    k.wait_for_text(&dest, "\"cmd\"");
    append(&f, &[assistant("after", "first live event")]);
    let text = k.wait_for_text(&dest, "first live event");
    let n = text.lines().count();
    assert!(n > 20_000, "{n} events");
    assert!(text
        .lines()
        .next()
        .unwrap()
        .contains("the very first event"));
}

/// A tmpfs export root that is unmounted when the test ends.
struct SmallDisk(PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_pauses_the_recording_and_it_resumes_without_loss() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("mounting a small tmpfs needs root; skipped");
        return;
    }
    let mut k = Kato::recording();
    let small = k.out("small");
    fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount tmpfs");
    let _guard = SmallDisk(small.clone());
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    let dest = small.join("rec.jsonl");
    append(&f, &[user("u1", &format!("::capture {}", dest.display()))]);
    k.wait_for_text(&dest, "\"u1\"");
    // Fill the disk.
    let filler = small.join("filler");
    {
        let mut fl = fs::File::create(&filler).unwrap();
        let block = vec![b'x'; 4096];
        while fl.write_all(&block).is_ok() {}
    }
    for i in 0..20 {
        append(
            &f,
            &[assistant(&format!("full-{i}"), &"words ".repeat(200))],
        );
    }
    k.wait_until("the recording to pause", || {
        k.status().is_some_and(|s| {
            s["recordings"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|x| x["paused"].as_str().is_some_and(|p| p.contains("full")))
            })
        })
    });
    assert!(k.audit().iter().any(|r| r["event"] == "recording.paused"));
    // Space returns: the heartbeat retries and the recording resumes.
    fs::remove_file(&filler).unwrap();
    k.wait_for_text(&dest, "\"full-19\"");
    append(&f, &[assistant("after", "after the disk was full")]);
    k.wait_for_text(&dest, "\"after\"");
    k.stop();
    let ids = jsonl_ids(&dest);
    let mut expected: Vec<String> = vec!["u0".into(), "u1".into()];
    expected.extend((0..20).map(|i| format!("full-{i}")));
    expected.push("after".into());
    assert_eq!(ids, expected);
}

#[test]
fn capturing_into_an_existing_user_file_keeps_its_frontmatter_and_content() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    append(&f, &[user("u1", "what we discussed")]);
    let notes = k.out("notes.md");
    let mine = "---\ntitle: My notes\ntags: [design]\n---\n\n# My notes\n\nWritten by hand.\n";
    fs::write(&notes, mine).unwrap();
    k.start();
    append(&f, &[user("u2", &format!("::capture {}", notes.display()))]);
    k.wait_for_text(&notes, "what we discussed");
    append(&f, &[assistant("a2", "a live reply")]);
    let text = k.wait_for_text(&notes, "a live reply");
    k.stop();
    assert!(text.starts_with(mine), "{text}");
    assert_eq!(count(&text, "\n---\n"), 1, "no second frontmatter: {text}");
}

#[test]
fn a_writer_is_a_stage_in_status_and_the_audit_log() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    let dest = k.out("writer-stage.md");
    append(&f, &[user("u1", &format!("::capture {}", dest.display()))]);
    k.wait_for_text(&dest, "::capture");
    let writer_stage = |s: &Value| -> Option<Value> {
        s["sandbox"]["stages"]
            .as_array()?
            .iter()
            .find(|x| x["stage"] == "writer" && x["write_files"] == json!([dest]))
            .cloned()
    };
    k.wait_until("the writer in status.json", || {
        k.status().is_some_and(|s| writer_stage(&s).is_some())
    });
    let s = k.status().unwrap();
    let st = writer_stage(&s).unwrap();
    if s["sandbox"]["mode"] == "enforce" {
        assert_eq!(st["state"], "enforced", "{st}");
    }
    assert_eq!(st["thread"], "kato-writer", "{st}");
    // Its one file, nothing beside it.
    assert_eq!(st["read"], serde_json::json!([dest]), "{st}");
    assert_eq!(st["create_in"], serde_json::json!([]), "{st}");
    k.wait_until("the writer's audit record", || {
        k.audit().iter().any(|r| {
            r["stage"] == "writer"
                && r["event"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("sandbox."))
                && r["detail"]["write_files"] == serde_json::json!([dest])
        })
    });
    k.stop();
}

#[test]
fn a_closed_writer_leaves_the_status_stages() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    let once = k.out("once.md");
    append(&f, &[user("u1", &format!("::export {}", once.display()))]);
    k.wait_for_text(&once, "start");
    let writer_of = |s: &Value, dest: &Path| {
        s["sandbox"]["stages"].as_array().is_some_and(|v| {
            v.iter()
                .any(|x| x["stage"] == "writer" && x["write_files"] == json!([dest]))
        })
    };
    // The export's writer closes once the snapshot is written; a capture's
    // writer stays open while it records.
    let live = k.out("live.md");
    append(&f, &[user("u2", &format!("::capture {}", live.display()))]);
    k.wait_for_text(&live, "::capture");
    k.wait_until("the open writer listed, the closed one gone", || {
        k.status()
            .is_some_and(|s| writer_of(&s, &live) && !writer_of(&s, &once))
    });
    k.stop();
}
