//! Resumed and forked sessions: agents write the old conversation again,
//! commands included. A copied command is history — rendered, audited as
//! `command.skipped-replayed`, never executed — and a command typed anew
//! in the resumed session still runs.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::{append_lines as append, count, Kato, CODEX_ID, S};

/// Session B of each test (A is [`CODEX_ID`] or [`S`]).
const B: &str = "5abbc087-43b9-42d7-b2df-380ab0408607";

// -- Codex ---------------------------------------------------------------------

/// One Codex rollout line written at `time`.
fn codex(time: &str, ty: &str, payload: Value) -> String {
    json!({"timestamp": time, "type": ty, "payload": payload}).to_string()
}

/// The Codex records of one human turn, all written at `time`: the
/// model-facing twin, the typed message and the reply.
fn codex_turn(time: &str, typed: &str, reply: &str) -> Vec<String> {
    vec![
        codex(
            time,
            "response_item",
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": typed}]}),
        ),
        codex(
            time,
            "event_msg",
            json!({"type": "user_message", "message": typed}),
        ),
        codex(
            time,
            "response_item",
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": reply}]}),
        ),
    ]
}

fn codex_meta(time: &str, id: &str, started: &str) -> String {
    codex(
        time,
        "session_meta",
        json!({"id": id, "timestamp": started, "cwd": "/w", "cli_version": "0.36.0"}),
    )
}

fn rollout(k: &Kato, id: &str) -> PathBuf {
    k.codex
        .join(format!("2026/01/08/rollout-2026-01-08T15-00-00-{id}.jsonl"))
}

/// Session A: `::capture <orig>` runs; returns A's file and the capture.
fn codex_session_a_captures(k: &mut Kato) -> (PathBuf, PathBuf) {
    let a = rollout(k, CODEX_ID);
    let orig = k.out("resume-orig.md");
    k.start();
    let mut lines = vec![codex_meta(
        "2026-01-08T15:00:00.000Z",
        CODEX_ID,
        "2026-01-08T15:00:00.000Z",
    )];
    lines.extend(codex_turn(
        "2026-01-08T15:00:05.000Z",
        &format!("::capture {}", orig.display()),
        "the answer in A",
    ));
    append(&a, &lines);
    k.wait_for_text(&orig, "the answer in A");
    (a, orig)
}

/// A's capture is still recording: one more line of A shows that the
/// daemon handled everything written before it.
fn codex_a_goes_on(k: &Kato, a: &Path, orig: &Path) -> String {
    append(
        a,
        &[codex(
            "2026-01-08T17:00:00.000Z",
            "response_item",
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A goes on"}]}),
        )],
    );
    k.wait_for_text(orig, "A goes on")
}

/// Audit records of `event` for session `session`.
fn audited(k: &Kato, event: &str, session: &str) -> Vec<Value> {
    k.audit()
        .into_iter()
        .filter(|r| r["event"] == event && r["session"] == session)
        .collect()
}

#[test]
fn codex_resumed_session_does_not_run_the_copied_capture_again() {
    let mut k = Kato::recording();
    let (a, orig) = codex_session_a_captures(&mut k);
    // Codex resumes A as B: B's header, A's header, A's lines copied
    // (new times, one burst), then a new turn half a minute later.
    let b = rollout(&k, B);
    let mut lines = vec![
        codex_meta("2026-01-08T16:00:00.000Z", B, "2026-01-08T16:00:00.000Z"),
        codex_meta(
            "2026-01-08T16:00:06.000Z",
            CODEX_ID,
            "2026-01-08T15:00:00.000Z",
        ),
    ];
    lines.extend(codex_turn(
        "2026-01-08T16:00:06.001Z",
        &format!("::capture {}", orig.display()),
        "the answer in A",
    ));
    lines.extend(codex_turn(
        "2026-01-08T16:00:40.000Z",
        "a new question in B",
        "the answer in B",
    ));
    append(&b, &lines);
    k.settle(B, &b);
    let text = codex_a_goes_on(&k, &a, &orig);
    assert_eq!(count(&text, "the answer in A"), 1, "{text}");
    assert_eq!(count(&text, "::capture"), 1, "{text}");
    assert!(!text.contains("the answer in B"), "{text}");
    let replayed = audited(&k, "command.skipped-replayed", B);
    assert_eq!(replayed.len(), 1, "{:?}", k.audit());
    assert_eq!(replayed[0]["decision"], "skip");
    assert_eq!(replayed[0]["detail"]["copied"], true);
    assert!(audited(&k, "command.executed", B).is_empty());
}

#[test]
fn a_command_typed_in_a_forked_codex_session_runs() {
    let mut k = Kato::recording();
    let (a, orig) = codex_session_a_captures(&mut k);
    // A fork (time-ordered ids, as Codex writes them since 0.116): the
    // copy, then B's own turn 20 ms later with a new capture.
    let turn = |id: &str| json!({"type": "task_started", "turn_id": id});
    let b = rollout(&k, B);
    let new = k.out("resume-new.md");
    let mut lines = vec![
        codex_meta("2026-01-08T16:00:00.000Z", B, "2026-01-08T16:00:00.000Z"),
        codex_meta(
            "2026-01-08T16:00:00.020Z",
            CODEX_ID,
            "2026-01-08T15:00:00.000Z",
        ),
        // Minted at 15:00:05 (0x019b9e1f_3908).
        codex(
            "2026-01-08T16:00:00.021Z",
            "event_msg",
            turn("019b9e1f-3908-7000-8000-000000000001"),
        ),
    ];
    lines.extend(codex_turn(
        "2026-01-08T16:00:00.022Z",
        &format!("::capture {}", orig.display()),
        "the answer in A",
    ));
    // Minted at 16:00:00.040 (0x019b9e56_1428).
    lines.push(codex(
        "2026-01-08T16:00:00.041Z",
        "event_msg",
        turn("019b9e56-1428-7000-8000-000000000002"),
    ));
    lines.extend(codex_turn(
        "2026-01-08T16:00:00.042Z",
        &format!("::capture {}", new.display()),
        "the answer in B",
    ));
    append(&b, &lines);
    let made = k.wait_for_text(&new, "the answer in B");
    assert_eq!(count(&made, "the answer in A"), 1, "rendered once: {made}");
    let text = codex_a_goes_on(&k, &a, &orig);
    assert_eq!(count(&text, "the answer in A"), 1, "{text}");
    assert_eq!(audited(&k, "command.skipped-replayed", B).len(), 1);
    assert_eq!(audited(&k, "command.executed", B).len(), 1);
}

// -- Claude --------------------------------------------------------------------

fn claude_file(k: &Kato, session: &str) -> PathBuf {
    k.claude.join(format!("-home-u-proj/{session}.jsonl"))
}

/// A Claude record of the main conversation.
fn claude(ty: &str, session: &str, uuid: &str, time: &str, text: &str) -> Value {
    let message = if ty == "user" {
        json!({"role": "user", "content": text})
    } else {
        json!({"id": format!("msg-{uuid}"), "role": "assistant", "model": "claude-opus-4-6",
               "content": [{"type": "text", "text": text}]})
    };
    json!({"type": ty, "sessionId": session, "uuid": uuid, "isSidechain": false,
           "timestamp": time, "message": message})
}

/// Session A ([`S`]): `::capture <orig>` runs; returns the capture and
/// A's two records.
fn claude_session_a_captures(k: &mut Kato) -> (PathBuf, [Value; 2]) {
    let orig = k.out("claude-orig.md");
    k.start();
    let records = [
        claude(
            "user",
            S,
            "u1",
            "2026-01-08T15:10:00.123Z",
            &format!("::capture {}", orig.display()),
        ),
        claude(
            "assistant",
            S,
            "a1",
            "2026-01-08T15:10:04.456Z",
            "the answer in A",
        ),
    ];
    append(
        &claude_file(k, S),
        &records.iter().map(Value::to_string).collect::<Vec<_>>(),
    );
    k.wait_for_text(&orig, "the answer in A");
    (orig, records)
}

fn claude_a_goes_on(k: &Kato, orig: &Path) -> String {
    let line = claude(
        "assistant",
        S,
        "a9",
        "2026-01-08T17:00:00.000Z",
        "A goes on",
    );
    append(&claude_file(k, S), &[line.to_string()]);
    k.wait_for_text(orig, "A goes on")
}

/// Session B's file: `copy` (A's records made B's), then a new turn.
fn claude_session_b(k: &Kato, copy: Vec<Value>) -> PathBuf {
    let b = claude_file(k, B);
    let mut lines: Vec<String> = copy.iter().map(Value::to_string).collect();
    lines.push(
        claude(
            "user",
            B,
            "n1",
            "2026-01-08T16:00:00.000Z",
            "a new question in B",
        )
        .to_string(),
    );
    lines.push(
        claude(
            "assistant",
            B,
            "n2",
            "2026-01-08T16:00:03.000Z",
            "the answer in B",
        )
        .to_string(),
    );
    append(&b, &lines);
    k.settle(B, &b);
    b
}

fn assert_once_and_replayed(k: &Kato, text: &str) {
    assert_eq!(count(text, "the answer in A"), 1, "{text}");
    assert_eq!(count(text, "::capture"), 1, "{text}");
    assert!(!text.contains("the answer in B"), "{text}");
    let replayed = audited(k, "command.skipped-replayed", B);
    assert_eq!(replayed.len(), 1, "{:?}", k.audit());
    assert_eq!(
        replayed[0]["detail"]["copied"], false,
        "known by its fingerprint"
    );
    assert!(audited(k, "command.executed", B).is_empty());
}

/// Session A captures; Claude writes A's records again as session B,
/// each changed by `change` (its index, the record); A goes on. The
/// capture holds the conversation once and the copy is audited replayed.
fn claude_copy_does_not_run_the_capture_again(change: impl Fn(usize, &mut Value)) {
    let mut k = Kato::recording();
    let (orig, records) = claude_session_a_captures(&mut k);
    let copy = records
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r["sessionId"] = json!(B);
            change(i, &mut r);
            r
        })
        .collect();
    claude_session_b(&k, copy);
    let text = claude_a_goes_on(&k, &orig);
    assert_once_and_replayed(&k, &text);
}

#[test]
fn claude_copy_with_the_same_uuids_and_a_new_session_id_does_not_run_the_capture_again() {
    claude_copy_does_not_run_the_capture_again(|_, _| {});
}

#[test]
fn claude_copy_with_new_uuids_and_the_old_times_does_not_run_the_capture_again() {
    claude_copy_does_not_run_the_capture_again(|i, r| r["uuid"] = json!(format!("copy-{i}")));
}

#[test]
fn claude_copy_with_the_same_uuids_and_new_times_does_not_run_the_capture_again() {
    claude_copy_does_not_run_the_capture_again(|i, r| {
        r["timestamp"] = json!(format!("2026-01-08T15:59:59.{i:03}Z"));
    });
}

#[test]
fn claude_transcript_rewritten_in_place_does_not_run_its_commands_again() {
    let mut k = Kato::recording();
    let (orig, _) = claude_session_a_captures(&mut k);
    let f = claude_file(&k, S);
    append(
        &f,
        &[claude("user", S, "u2", "2026-01-08T15:11:00.000Z", "::stop").to_string()],
    );
    k.wait_until("the stop", || audited(&k, "command.executed", S).len() == 2);
    // The stop's own message is written after its audit record.
    k.wait_for_text(&orig, "::stop");
    let before = fs::read_to_string(&orig).unwrap();
    // Claude Code 2.0 on resuming: the chain again (new uuids, one time,
    // a new root), then the message typed, a few ms later.
    let burst = "2026-01-08T16:00:00.500Z";
    let new = k.out("claude-new.md");
    let mut root = claude(
        "user",
        S,
        "c1",
        burst,
        &format!("::capture {}", orig.display()),
    );
    root["parentUuid"] = Value::Null;
    let lines = [
        json!({"type": "summary", "summary": "Resumed", "leafUuid": "a1"}),
        root,
        claude("assistant", S, "c2", burst, "the answer in A"),
        claude("user", S, "c3", burst, "::stop"),
        claude(
            "user",
            S,
            "n1",
            "2026-01-08T16:00:00.503Z",
            &format!("::capture {}", new.display()),
        ),
        claude(
            "assistant",
            S,
            "n2",
            "2026-01-08T16:00:02.000Z",
            "after the rewrite",
        ),
    ];
    append(&f, &lines.iter().map(Value::to_string).collect::<Vec<_>>());
    k.wait_for_text(&new, "after the rewrite");
    k.settle(S, &f);
    assert_eq!(fs::read_to_string(&orig).unwrap(), before);
    assert_eq!(count(&before, "the answer in A"), 1, "{before}");
    let replayed = audited(&k, "command.skipped-replayed", S);
    assert_eq!(replayed.len(), 2, "{:?}", k.audit());
    assert!(replayed.iter().all(|r| r["detail"]["copied"] == true));
    assert_eq!(
        audited(&k, "command.executed", S).len(),
        3,
        "capture, stop, the new capture"
    );
}
