//! Commands that arrive while a capture's snapshot is still being written:
//! every event lands once, in order, on the right side of each `::stop` and
//! `::record`, however the snapshot's replay and the commands interleave.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::harness::{
    append_lines as append, assistant, assistant_in, count, first_difference, jsonl_ids, tool_pair,
    user, user_in, Kato, Rng, S,
};

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
fn commands_arriving_while_a_capture_snapshot_is_pending_lose_no_events() {
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
fn commands_arriving_while_a_capture_snapshot_is_pending_lose_no_events_in_markdown() {
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

#[test]
fn kill_9_while_a_snapshot_is_pending_loses_no_waiting_event() {
    let mut k = Kato::recording();
    let f = k.claude_file();
    // A history long enough that the capture's replay takes a while.
    let mut lines = vec![user("u1", "history question")];
    let mut expected = vec!["u1".to_owned()];
    for i in 0..40_000 {
        lines.extend(tool_pair(i, &format!("output {i}")));
        expected.extend([format!("tc{i}"), format!("tr{i}")]);
    }
    append(&f, &lines);
    k.start();
    k.settle(S, &f);
    k.wait_until("the history's cursor to be persisted", || {
        k.cursors_persisted(1)
    });
    let dest = k.out("crash.jsonl");
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
    // The snapshot is being written (its start is there, its command not
    // yet); kill once a quiet-time flush could have persisted the cursor.
    k.wait_until("the snapshot under way", || {
        fs::read_to_string(&dest).is_ok_and(|t| t.contains("\"tc100\"") && !t.contains("\"u21\""))
    });
    std::thread::sleep(Duration::from_millis(300));
    k.kill9();
    let written = fs::read_to_string(&dest).unwrap_or_default();
    assert!(
        !written.contains("\"a22\""),
        "the snapshot ended before the kill: the history is too short to test this"
    );
    k.start();
    k.wait_for_text(&dest, "\"a26\"");
    k.settle(S, &f);
    k.stop();
    expected.extend(["u21", "a22", "u23", "u25", "a26"].map(String::from));
    let ids = jsonl_ids(&dest);
    let tail = |v: &[String]| v[v.len().saturating_sub(8)..].to_vec();
    assert_eq!(
        first_difference(&ids, &expected),
        None,
        "every event once, in order; {} ids ending {:?}",
        ids.len(),
        tail(&ids)
    );
}

/// One line of a stress sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Reply,
    Text,
    Capture,
    Stop,
    Record,
}

/// A random sequence of steps that starts with a capture and ends
/// recording, with a reply last.
fn random_steps(rng: &mut Rng) -> Vec<Step> {
    let mut steps = vec![Step::Capture];
    for _ in 0..4 + rng.below(6) {
        steps.push(match rng.below(7) {
            0 | 1 => Step::Reply,
            2 => Step::Text,
            3 => Step::Capture,
            4 | 5 => Step::Stop,
            _ => Step::Record,
        });
    }
    steps.extend([Step::Record, Step::Reply]);
    steps
}

/// One session of the stress test: its lines (history first) and the ids
/// its capture file must hold, as SPEC §6 says.
struct Sequence {
    session: String,
    lines: Vec<String>,
    expected: Vec<String>,
}

fn sequence(k: &Kato, n: u64, steps: &[Step]) -> Sequence {
    let session = format!("5eed5eed-0000-4000-8000-{n:012}");
    let dest = k.out(&format!("stress/{n}.jsonl"));
    let (mut lines, mut seen, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut active = false;
    let history = [("q", "history question"), ("h", "history answer")];
    for (j, (kind, text)) in history.into_iter().enumerate() {
        let id = format!("s{n}-{kind}{j}");
        lines.push(match kind {
            "q" => user_in(&session, &id, text),
            _ => assistant_in(&session, &id, text),
        });
        seen.push(id);
    }
    for (j, step) in steps.iter().enumerate() {
        let id = format!("s{n}-{j}");
        lines.push(match step {
            Step::Reply => assistant_in(&session, &id, &format!("reply {j}")),
            Step::Text => user_in(&session, &id, &format!("words {j}")),
            Step::Capture => user_in(&session, &id, &format!("::capture {}", dest.display())),
            Step::Stop => user_in(&session, &id, "::stop"),
            Step::Record => user_in(&session, &id, "::record"),
        });
        seen.push(id.clone());
        // The message is recorded before the command in it runs.
        if active {
            out.push(id.clone());
        }
        match step {
            Step::Capture => {
                out.extend(seen.iter().cloned());
                active = true;
            }
            Step::Stop => active = false,
            Step::Record if !active => {
                out.push(id);
                active = true;
            }
            _ => {}
        }
    }
    Sequence {
        session,
        lines,
        expected: out,
    }
}

/// Append `lines` a few at a time, with gaps of 0 to 100 ms.
fn type_slowly(path: &Path, lines: &[String], rng: &mut Rng) {
    let mut rest = lines;
    while !rest.is_empty() {
        let n = (1 + rng.below(3) as usize).min(rest.len());
        append(path, &rest[..n]);
        rest = &rest[n..];
        std::thread::sleep(Duration::from_millis(rng.below(101)));
    }
}

#[test]
fn capture_stop_record_under_load_keep_every_event_once_in_order() {
    let sequences: u64 = std::env::var("KATO_STRESS_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut k = Kato::recording();
    fs::create_dir_all(k.out("stress")).unwrap();
    k.start();
    let mut rng = Rng(seed);
    let all: Vec<Sequence> = (0..sequences)
        .map(|n| sequence(&k, n, &random_steps(&mut rng)))
        .collect();
    // CPU hogs beside the daemon.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let workers = 8;
    std::thread::scope(|s| {
        for w in 0..workers {
            let (all, dir) = (&all, k.claude.join("-home-u-proj"));
            s.spawn(move || {
                let mut rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                for q in all.iter().skip(w).step_by(workers) {
                    let path = dir.join(format!("{}.jsonl", q.session));
                    type_slowly(&path, &q.lines, &mut rng);
                }
            });
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    for (n, q) in all.iter().enumerate() {
        let last = q.expected.last().unwrap();
        k.wait_for_text(&k.out(&format!("stress/{n}.jsonl")), &format!("\"{last}\""));
    }
    k.stop();
    let wrong: Vec<String> = all
        .iter()
        .enumerate()
        .filter_map(|(n, q)| {
            let got = jsonl_ids(&k.out(&format!("stress/{n}.jsonl")));
            (got != q.expected).then(|| format!("#{n}: got {got:?}, want {:?}", q.expected))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "seed {seed}: {} of {sequences} sequences wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
