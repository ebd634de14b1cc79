//! Commands that arrive while a capture's snapshot is still being written:
//! every event lands once, in order, on the right side of each `::stop` and
//! `::record`, however the snapshot's replay and the commands interleave.

use std::fs;
use std::path::Path;

use crate::harness::{append_lines as append, assistant, count, jsonl_ids, user, Kato, S};

/// History, then one write: U21 `::capture X`, A22, U23 `::stop`, A24,
/// U25 `::record`, A26.
fn capture_stop_record_in_one_write(k: &mut Kato, dest: &Path) {
    let f = k.claude_file();
    append(
        &f,
        &[
            user("u1", "history question"),
            assistant("a1", "history answer"),
        ],
    );
    k.start();
    append(
        &f,
        &[
            user("u21", &format!("::capture {}", dest.display())),
            assistant("a22", "reply twenty-two"),
            user("u23", "::stop"),
            assistant("a24", "reply twenty-four"),
            user("u25", "::record"),
            assistant("a26", "reply twenty-six"),
        ],
    );
    k.wait_for_text(dest, "reply twenty-six");
    k.settle(S, &f);
    k.stop();
}

#[test]
fn events_queued_behind_a_capture_survive_a_later_stop_and_record() {
    let mut k = Kato::recording();
    let dest = k.out("x.jsonl");
    capture_stop_record_in_one_write(&mut k, &dest);
    assert_eq!(
        jsonl_ids(&dest),
        ["u1", "a1", "u21", "a22", "u23", "u25", "a26"],
        "every event once, in order, nothing between ::stop and ::record"
    );
}

#[test]
fn events_queued_behind_a_capture_survive_a_later_stop_and_record_in_markdown() {
    let mut k = Kato::recording();
    let dest = k.out("x.md");
    capture_stop_record_in_one_write(&mut k, &dest);
    let text = fs::read_to_string(&dest).unwrap();
    assert_eq!(count(&text, "reply twenty-four"), 0, "{text}");
    let order = [
        "history answer",
        "::capture",
        "reply twenty-two",
        "::stop",
        "::record",
        "reply twenty-six",
    ];
    let mut at = 0;
    for needle in order {
        assert_eq!(count(&text, needle), 1, "{needle} once in {text}");
        let i = text.find(needle).unwrap();
        assert!(i > at, "{needle} out of order in {text}");
        at = i;
    }
}

#[test]
fn two_captures_to_the_same_file_in_one_write_keep_every_event() {
    let mut k = Kato::recording();
    let dest = k.out("twice.jsonl");
    let f = k.claude_file();
    append(
        &f,
        &[
            user("u1", "history question"),
            assistant("a1", "history answer"),
        ],
    );
    k.start();
    let capture = format!("::capture {}", dest.display());
    append(
        &f,
        &[
            user("u21", &capture),
            assistant("a22", "reply twenty-two"),
            user("u23", &capture),
            assistant("a24", "reply twenty-four"),
        ],
    );
    k.wait_for_text(&dest, "\"a24\"");
    k.settle(S, &f);
    k.stop();
    // The first capture, its live events (the second command's message
    // among them), then the second capture: the whole conversation again up
    // to its command, and what follows.
    assert_eq!(
        jsonl_ids(&dest),
        ["u1", "a1", "u21", "a22", "u23", "u1", "a1", "u21", "a22", "u23", "a24"],
    );
}
