//! One huge line, shaped to hurt a JSON renderer, exported with tool calls
//! on: the real binary renders it in time and memory linear in the line,
//! up to the reader's line cap, and skips a longer line.
//!
//! Peak memory is the child's `VmHWM` (the high-water mark of its own
//! address space, read from `/proc` while it runs). `wait4`'s `ru_maxrss`
//! would not do: it also counts the resident set the child inherited from
//! this test process at fork, before `exec`.

use std::fs::{self, File};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kato::reader::DEFAULT_LINE_CAP;

use crate::harness::{user, Kato, S};

const MIB: usize = 1 << 20;

/// The stated bound on peak RSS for exporting one line of `line` bytes:
/// 32 MiB for the process, plus seven times the line. A Markdown export
/// may read the file twice at once (the parse pass and the metadata pass),
/// each buffer holding the line (growing by copying: the old and the new
/// buffer exist at once) and the event owning a copy of the input; the
/// allocator gives freed memory back to the system after a few
/// milliseconds, not at once. 144 MiB for a 16 MiB line (measured: about
/// 50), 480 MiB at the 64 MiB cap (measured: 370 to 430).
fn peak_bound(line: usize) -> u64 {
    (32 * MIB + 7 * line) as u64
}

/// The assistant line calling a tool with `input`, before and after it.
fn envelope() -> (String, String) {
    let head = format!(
        r#"{{"type":"assistant","sessionId":"{S}","uuid":"a1","parentUuid":null,"isSidechain":false,"timestamp":"2026-01-08T15:56:40.000Z","message":{{"id":"msg_1","role":"assistant","model":"claude-opus-4-6","content":[{{"type":"tool_use","id":"toolu_1","name":"Bash","input":"#
    );
    (head, "}]}}".to_owned())
}

/// Tool inputs of at most `size` bytes built to hurt a JSON renderer: deep
/// nesting, many values just under the depth limit, a wide object, one
/// long string, many small values.
fn adversarial_inputs(size: usize) -> Vec<(&'static str, String)> {
    let half = size / 2;
    let under = 120;
    let mut many_deep = "[".repeat(under);
    many_deep.push_str(&"1,".repeat((size - 2 * under) / 2 - 1));
    many_deep.push('1');
    many_deep.push_str(&"]".repeat(under));
    let mut wide = String::from("{");
    let mut i = 0usize;
    while wide.len() + 32 < size {
        wide.push_str(&format!("\"k{i}\":{i},"));
        i += 1;
    }
    wide.push_str("\"end\":0}");
    vec![
        ("deep", "[".repeat(half) + &"]".repeat(half)),
        (
            "deep objects",
            "{\"a\":".repeat(size / 6) + "1" + &"}".repeat(size / 6),
        ),
        ("many values under the depth limit", many_deep),
        ("wide object", wide),
        (
            "long string",
            format!("{{\"s\":\"{}\"}}", "x".repeat(size - 8)),
        ),
        ("many small values", format!("[{}1]", "1,".repeat(half - 2))),
    ]
}

/// A session file whose tool call line is exactly `line` bytes (the input
/// padded with blanks, which JSON allows after a value), after a user
/// message.
fn write_session(path: &Path, input: &str, line: usize) {
    let (head, tail) = envelope();
    let pad = line
        .checked_sub(head.len() + input.len() + tail.len())
        .expect("input fits the line");
    let mut text = user("u1", "before the long line");
    text.push('\n');
    text.reserve(line + 1);
    text.push_str(&head);
    text.push_str(input);
    text.extend(std::iter::repeat_n(' ', pad));
    text.push_str(&tail);
    text.push('\n');
    fs::write(path, text).unwrap();
}

/// Every input shape sized for a `line`-byte line.
fn shapes_for(line: usize) -> Vec<(&'static str, String)> {
    let (head, tail) = envelope();
    adversarial_inputs(line - head.len() - tail.len())
}

/// What one export did: exit status, peak RSS, time, stdout, stderr.
struct Run {
    status: ExitStatus,
    peak: u64,
    took: Duration,
    md: String,
    stderr: String,
}

/// `kato export --tool-calls` of `file`, watched from outside.
fn export(k: &Kato, file: &Path) -> Run {
    let md_path = k.path("export.md");
    let started = Instant::now();
    let mut child = k
        .cmd()
        .args(["export", "--tool-calls"])
        .arg(file)
        .stdout(File::create(&md_path).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, peak) = wait_with_peak_rss(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    Run {
        status,
        peak,
        took: started.elapsed(),
        md: fs::read_to_string(&md_path).unwrap(),
        stderr,
    }
}

/// Wait for `child`, watching its peak resident set (`VmHWM`, which only
/// grows) every millisecond until it exits; returns the exit status and
/// the last peak seen.
fn wait_with_peak_rss(child: &mut std::process::Child) -> (ExitStatus, u64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(status) = fs::read_to_string(&status_file) {
            let kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            if let Some(kib) = kib {
                peak = peak.max(kib * 1024);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The line was rendered (cut to the output limit), in time and under the
/// bound.
fn assert_rendered(shape: &str, line: usize, run: &Run) {
    let what = format!("{shape} ({line} bytes)");
    assert!(
        run.status.success(),
        "{what}: {:?}\n{}",
        run.status,
        run.stderr
    );
    assert!(
        run.md.contains("<summary>Tool call: Bash</summary>") && run.md.contains("*Truncated: "),
        "{what}: {:.2000}",
        run.md
    );
    assert!(
        run.peak > 0 && run.peak < peak_bound(line),
        "{what}: peak RSS {} MiB, bound {} MiB, after {:?}",
        run.peak >> 20,
        peak_bound(line) >> 20,
        run.took
    );
    assert!(
        run.took < Duration::from_secs(60),
        "{what}: took {:?}",
        run.took
    );
}

#[test]
fn adversarial_tool_input_renders_under_a_peak_rss_linear_in_the_line() {
    let k = Kato::new(false);
    for line in [MIB, 16 * MIB] {
        for (shape, input) in shapes_for(line) {
            write_session(&k.claude_file(), &input, line);
            drop(input);
            assert_rendered(shape, line, &export(&k, &k.claude_file()));
        }
    }
}

#[test]
fn adversarial_tool_input_at_the_line_cap_renders_and_beyond_it_is_skipped() {
    assert_eq!(DEFAULT_LINE_CAP, 64 * MIB, "the test sizes follow the cap");
    let k = Kato::new(false);
    let cap = DEFAULT_LINE_CAP;
    for (shape, input) in shapes_for(cap) {
        write_session(&k.claude_file(), &input, cap);
        drop(input);
        assert_rendered(shape, cap, &export(&k, &k.claude_file()));
    }
    // One byte longer: skipped unparsed (so its shape does not matter),
    // reported, and the rest of the session is exported.
    let (_, input) = shapes_for(cap).swap_remove(0);
    write_session(&k.claude_file(), &input, cap + 1);
    drop(input);
    let run = export(&k, &k.claude_file());
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    assert!(
        run.stderr.contains("skipped 1 malformed record(s)"),
        "{}",
        run.stderr
    );
    assert!(run.md.contains("before the long line"), "{}", run.md);
    assert!(!run.md.contains("Tool call: Bash"), "{}", run.md);
    assert!(
        run.peak < peak_bound(cap),
        "peak RSS {} MiB for a skipped line",
        run.peak >> 20
    );
}
