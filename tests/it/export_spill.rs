//! A Markdown or HTML export larger than what kato holds in memory before
//! its header is known: to a file, the body is written first and the
//! header inserted in front at the end (the output file is read back);
//! to standard output, a second confined stage reads the metadata. Both
//! ways give the same document, under the enforced sandbox, whether the
//! output file is new or replaces a longer one, and whether the header
//! written ahead of the body as a stand-in keeps its length at the end or
//! grows (a model first seen late) or shrinks (a last timestamp written
//! shorter).

use std::fs;

use serde_json::Value;

use serde_json::json;

use crate::harness::{assistant, user, Kato, S};

/// A Claude session whose Markdown body is several MiB (more than kato
/// holds before writing it out), ending with the records `tail`.
fn large_session(k: &Kato, tail: &[Value]) {
    let mut text = user("u-first", "summarise the large report") + "\n";
    let para = "All work and no play makes a long report. ".repeat(120);
    for i in 0..1500 {
        text.push_str(&assistant(&format!("a-{i:05}"), &format!("{i}: {para}")));
        text.push('\n');
    }
    for record in tail {
        text.push_str(&record.to_string());
        text.push('\n');
    }
    fs::write(k.claude_file(), text).unwrap();
}

/// The last records of the sessions: none; an answer by a model not seen
/// before (a longer header); a message with a shorter timestamp (a shorter
/// header).
fn tails() -> [Vec<Value>; 3] {
    let late_model = json!({"type": "assistant", "sessionId": S, "uuid": "a-late",
        "isSidechain": false, "timestamp": "2026-01-08T15:57:00.000Z",
        "message": {"id": "msg-late", "role": "assistant", "model": "claude-haiku-4-5",
                    "content": [{"type": "text", "text": "a late answer"}]}});
    let short_time = json!({"type": "user", "sessionId": S, "uuid": "u-last",
        "isSidechain": false, "timestamp": "2026-01-08T16:00:00Z",
        "message": {"role": "user", "content": "thanks"}});
    [vec![], vec![late_model], vec![short_time]]
}

fn export(k: &Kato, args: &[&str]) -> Vec<u8> {
    let file = k.claude_file();
    let mut all = vec!["export", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = k.kato(&all);
    assert!(
        out.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn a_large_export_to_a_file_is_the_document_printed_to_stdout() {
    let k = Kato::recording();
    let mut headers = Vec::new();
    for (t, tail) in tails().iter().enumerate() {
        large_session(&k, tail);
        for format in ["markdown", "html"] {
            let printed = same_both_ways(&k, &format!("{t}.{format}"), format);
            if format == "markdown" {
                let end = printed.windows(5).position(|w| w == b"\n---\n");
                headers.push(end.expect("a frontmatter"));
            }
        }
    }
    // The stand-in (the header as of the first MiBs) is as long as the
    // final header, shorter, and longer.
    assert!(
        headers[1] > headers[0] && headers[2] < headers[0],
        "{headers:?}"
    );
}

/// Export to stdout, to a new file and over a longer file; all three the
/// same document (returned).
fn same_both_ways(k: &Kato, name: &str, format: &str) -> Vec<u8> {
    let printed = export(k, &["--format", format]);
    assert!(printed.len() > 5 << 20, "{format}: {} bytes", printed.len());
    assert!(printed.starts_with(b"---\n") || printed.starts_with(b"<!DOCTYPE"));
    let new = k.out(&format!("new.{name}"));
    let summary = export(
        k,
        &["--format", format, "-o", new.to_str().unwrap(), "--json"],
    );
    let written = fs::read(&new).unwrap();
    assert!(written == printed, "{name}: a new file differs from stdout");
    let summary: Value = serde_json::from_slice(&summary).unwrap();
    assert_eq!(summary["bytes"], written.len() as u64, "{name}");
    // A longer file already there is replaced, nothing of it left.
    let old = k.out(&format!("old.{name}"));
    fs::write(&old, vec![b'x'; printed.len() * 2]).unwrap();
    export(k, &["--format", format, "-o", old.to_str().unwrap()]);
    assert!(
        fs::read(&old).unwrap() == printed,
        "{name}: a replaced file differs"
    );
    printed
}
