//! ARCHITECTURE.md stays true: every invariant names tests that exist, and
//! every place the stage table names exists in `src/`.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn architecture() -> String {
    fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
}

/// The rows of the Markdown table that follows `heading`.
fn table_rows(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no `{heading}`"));
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The `backticked` words of a cell.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// Every Rust source file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_invariant_names_tests_that_exist() {
    let doc = architecture();
    let rows = table_rows(&doc, "## Invariants and where they hold");
    assert!(rows.len() >= 10, "the invariant table lost rows: {rows:?}");
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    let sources: String = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap_or_default())
        .collect();
    for row in &rows {
        assert_eq!(row.len(), 3, "a row without its test column: {row:?}");
        let tests = code_spans(&row[2]);
        assert!(!tests.is_empty(), "invariant `{}` names no test", row[0]);
        for t in tests {
            assert!(
                sources.contains(&format!("fn {t}(")),
                "invariant `{}` names test `{t}`, which does not exist",
                row[0]
            );
        }
    }
}

#[test]
fn every_stage_place_exists_in_src() {
    let doc = architecture();
    let rows = table_rows(&doc, "## Where each stage lives");
    let stages: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        stages,
        ["watch + parse", "orchestrate", "write", "sandbox"],
        "the four stages, in order"
    );
    for row in &rows {
        for place in code_spans(&row[1]) {
            if !place.contains('/') && !place.ends_with(".rs") {
                continue;
            }
            // A bare file name inside a directory's parentheses is a file
            // of that directory.
            let found = ["", "daemon", "sandbox"]
                .iter()
                .any(|dir| root().join("src").join(dir).join(place).exists());
            assert!(
                found,
                "stage `{}` names `{place}`, which is not in src/",
                row[0]
            );
        }
    }
}
