//! A Markdown or HTML export larger than what kato holds in memory before
//! its header is known: to a file, the body is written first and the
//! header inserted in front at the end (the output file is read back);
//! to standard output, a second confined stage reads the metadata. Both
//! ways give the same document, under the enforced sandbox, whether the
//! output file is new or replaces a longer one.

use std::fs;

use serde_json::Value;

use crate::harness::{assistant, user, Kato};

/// A Claude session whose Markdown body is several MiB (more than kato
/// holds before writing it out).
fn large_session(k: &Kato) {
    let mut text = user("u-first", "summarise the large report") + "\n";
    let para = "All work and no play makes a long report. ".repeat(120);
    for i in 0..1500 {
        text.push_str(&assistant(&format!("a-{i:05}"), &format!("{i}: {para}")));
        text.push('\n');
    }
    fs::write(k.claude_file(), text).unwrap();
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
    large_session(&k);
    for format in ["markdown", "html"] {
        let printed = export(&k, &["--format", format]);
        assert!(printed.len() > 5 << 20, "{format}: {} bytes", printed.len());
        assert!(printed.starts_with(b"---\n") || printed.starts_with(b"<!DOCTYPE"));
        let new = k.out(&format!("new.{format}"));
        let summary = export(
            &k,
            &["--format", format, "-o", new.to_str().unwrap(), "--json"],
        );
        let written = fs::read(&new).unwrap();
        assert!(
            written == printed,
            "{format}: a new file differs from stdout"
        );
        let summary: Value = serde_json::from_slice(&summary).unwrap();
        assert_eq!(summary["bytes"], written.len() as u64, "{format}");
        // A longer file already there is replaced, nothing of it left.
        let old = k.out(&format!("old.{format}"));
        fs::write(&old, vec![b'x'; printed.len() * 2]).unwrap();
        export(&k, &["--format", format, "-o", old.to_str().unwrap()]);
        assert!(
            fs::read(&old).unwrap() == printed,
            "{format}: a replaced file differs"
        );
    }
}
