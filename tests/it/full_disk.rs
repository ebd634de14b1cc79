//! Full disks through the real binary, on a real tmpfs: a full export
//! disk pauses a recording and a full state disk stops every append before
//! its intent is saved; when space returns, every event is there once, in
//! order, and `kato status` said why the recording stood still meanwhile.

use std::fs;
use std::path::Path;

use crate::harness::tmpfs::Tmpfs;
use crate::harness::{
    append_lines as append, assistant, count, first_difference, jsonl_ids, user, Kato, S,
};

/// A recording of the session is paused, and status.json says so with `why`.
fn paused_because(k: &Kato, why: &str) -> bool {
    k.status().is_some_and(|s| {
        s["recordings"].as_array().is_some_and(|r| {
            r.iter()
                .any(|x| x["paused"].as_str().is_some_and(|p| p.contains(why)))
        })
    })
}

/// Assistant line `e{i}`; its text is long enough that 5,000 of them do
/// not fit in the space left, in either format.
fn event(i: usize) -> String {
    assistant(
        &format!("e{i}"),
        &format!("event e{i} end, with words enough to fill the disk a little faster"),
    )
}

/// The `event eN end` markers of a Markdown recording, in file order.
fn markers(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    text.split("event ")
        .skip(1)
        .filter_map(|rest| rest.split_once(" end").map(|(m, _)| m.to_owned()))
        .collect()
}

/// 5,000 events and a `::capture` with ~172 KB free on a 3 MiB export
/// root, then 1,000 live events; space returns.
fn capture_on_a_nearly_full_export_disk(format: &str) {
    let mut k = Kato::recording();
    let Some(disk) = Tmpfs::mount(&k.out(""), "3m") else {
        return;
    };
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    k.settle(S, &f);
    let filler = disk.fill_leaving(172 * 1024);
    let dest = k.out(&format!("cap.{format}"));
    let mut burst: Vec<String> = (0..5_000).map(event).collect();
    burst.push(user("cmd", &format!("::capture {}", dest.display())));
    append(&f, &burst);
    k.wait_until("the recording to pause on the full disk", || {
        paused_because(&k, "disk is full")
    });
    append(&f, &(5_000..6_000).map(event).collect::<Vec<_>>());
    k.settle(S, &f);
    let st = k.status_text();
    assert!(st.contains("PAUSED (the disk is full"), "{st}");
    fs::remove_file(filler).unwrap();
    let last = if format == "md" {
        "event e5999 end"
    } else {
        "\"e5999\""
    };
    k.wait_for_text(&dest, last);
    k.wait_until("the recording to resume", || !paused_because(&k, "disk"));
    k.stop();
    let want: Vec<String> = (0..6_000).map(|i| format!("e{i}")).collect();
    if format == "md" {
        let got = markers(&dest);
        assert_eq!(
            first_difference(&got, &want),
            None,
            "{} sections",
            got.len()
        );
        let text = fs::read_to_string(&dest).unwrap();
        assert_eq!(count(&text, "::capture"), 1, "the capture line once");
    } else {
        let mut want = want;
        want.insert(0, "u0".into());
        want.insert(5_001, "cmd".into());
        let got = jsonl_ids(&dest);
        assert_eq!(
            first_difference(&got, &want),
            None,
            "{} events written",
            got.len()
        );
    }
}

#[test]
fn a_capture_on_a_full_export_disk_is_written_once_when_space_returns() {
    capture_on_a_nearly_full_export_disk("jsonl");
    capture_on_a_nearly_full_export_disk("md");
}

#[test]
fn a_full_state_disk_appends_nothing_before_its_intent_is_saved() {
    let mut k = Kato::recording();
    let Some(disk) = Tmpfs::mount(&k.path("state"), "4m") else {
        return;
    };
    let f = k.claude_file();
    append(&f, &[user("u0", "start")]);
    k.start();
    let dest = k.out("rec.jsonl");
    append(&f, &[user("u1", &format!("::capture {}", dest.display()))]);
    k.wait_for_text(&dest, "\"u1\"");
    k.wait_until("the cursor persisted", || k.cursors_persisted(1));
    // Nearly full: a cursor still fits, the recording state with 100
    // events to write does not.
    let filler = disk.fill_leaving(16 << 10);
    let before = fs::read(&dest).unwrap();
    let mut want = vec!["u0".to_owned(), "u1".to_owned()];
    let burst: Vec<String> = (0..100)
        .map(|i| {
            want.push(format!("b{i}"));
            assistant(
                &format!("b{i}"),
                &format!("event b{i} {}", "words ".repeat(40)),
            )
        })
        .collect();
    append(&f, &burst);
    k.wait_until("the recording to pause, its state unsaved", || {
        paused_because(&k, "recording state cannot be saved")
    });
    k.settle(S, &f);
    assert_eq!(
        fs::read(&dest).unwrap(),
        before,
        "appended before the intent was saved"
    );
    let st = k.status_text();
    assert!(
        st.contains("PAUSED (the recording state cannot be saved"),
        "{st}"
    );
    // A crash meanwhile (once a quiet-time flush was due), and a start on
    // the still full disk.
    std::thread::sleep(std::time::Duration::from_millis(500));
    k.kill9();
    k.start();
    append(&f, &[assistant("c0", "after the restart")]);
    want.push("c0".into());
    k.settle(S, &f);
    k.wait_until("the recording paused again", || {
        paused_because(&k, "recording state cannot be saved")
    });
    assert_eq!(
        fs::read(&dest).unwrap(),
        before,
        "appended after the restart"
    );
    fs::remove_file(filler).unwrap();
    k.wait_for_text(&dest, "\"c0\"");
    k.stop();
    let got = jsonl_ids(&dest);
    assert_eq!(first_difference(&got, &want), None, "{got:?}");
    let verify = k.kato(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
