//! Opening the log: find its last record, compare it with the anchor, and
//! repair what a crash or a full disk can leave.
//!
//! | found at start | done | record |
//! |---|---|---|
//! | bytes after the last newline (a record cut off) | cut off | `audit.repaired` |
//! | one record more than anchored, chained to the anchored one | anchored | `audit.repaired` |
//! | no anchor (a log from before anchors, or a new one), an intact chain | anchored as found | `audit.anchored` (unless empty) |
//! | anything else: fewer records, another head, an unreadable anchor or last record, no anchor and a broken chain | log and anchor set aside, a new chain begins | `audit.restarted` |
//!
//! A log that does not match its anchor is never repaired in place: it is
//! kept byte for byte as `security-audit.jsonl.set-aside-<ms>` for
//! `kato audit verify`, and the new chain's first record names it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::anchor::{self, Anchor};
use super::{hex_sha256, AuditError, AuditEvent, AuditLog, Decision, Entry, Head};

/// A record longer than this is not one kato wrote.
const MAX_RECORD: u64 = 1 << 20;
/// How far back a search for a newline reads at a time.
const CHUNK: u64 = 64 << 10;

/// An opened log and the records that say what was repaired, to be
/// appended before anything else.
#[derive(Debug)]
pub struct Opened {
    pub log: AuditLog,
    pub notes: Vec<Entry>,
}

/// The last complete line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Last {
    /// The log holds no complete line.
    Empty,
    Record {
        head: Head,
        prev: String,
    },
    /// The last line is not a record (its offset).
    Invalid(u64),
}

/// What follows the last newline (a record cut off).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cut {
    offset: u64,
    bytes: u64,
    sha256: String,
}

#[derive(Debug)]
struct Tail {
    /// Length up to and including the last newline.
    good_len: u64,
    cut: Option<Cut>,
    last: Last,
}

/// Open the log at `path` and bring log and anchor into agreement (see the
/// module table).
pub fn open(path: &Path) -> Result<super::Opened, AuditError> {
    let io_err = |context, source| AuditError::Io {
        context,
        path: path.to_path_buf(),
        source,
    };
    let file = open_log(path).map_err(|e| io_err("cannot open", e))?;
    let tail = read_tail(&file).map_err(|e| io_err("cannot read", e))?;
    let anchor_path = anchor::path_for(path);
    let anchored = Anchor::open(&anchor_path);
    let mut notes = Vec::new();
    let (anchor, head) = match (anchored, &tail.last) {
        (Ok(Some((anchor, a))), Last::Empty) if a.records == 0 => (anchor, a),
        (Ok(Some((anchor, a))), Last::Record { head, .. }) if *head == a => (anchor, a),
        (Ok(Some((mut anchor, a))), Last::Record { head, prev })
            if head.records == a.records + 1 && *prev == a.hash =>
        {
            anchor.write(head)?;
            notes.push(caught_up(&a, head));
            (anchor, head.clone())
        }
        (Ok(None), Last::Empty) => (
            create_anchor(&anchor_path, &Head::genesis())?,
            Head::genesis(),
        ),
        (Ok(None), Last::Record { head, .. }) => match chain_break(path)? {
            None => {
                notes.push(anchored_as_found(head));
                (create_anchor(&anchor_path, head)?, head.clone())
            }
            Some(why) => {
                drop(file);
                return restart(path, &anchor_path, None, &tail, why);
            }
        },
        (anchored, last) => {
            let why = mismatch(&anchored, last);
            drop(file);
            return restart(
                path,
                &anchor_path,
                anchored.ok().flatten().map(|(_, a)| a),
                &tail,
                why,
            );
        }
    };
    if let Some(cut) = &tail.cut {
        file.set_len(tail.good_len)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err("cannot repair", e))?;
        notes.insert(0, repaired_cut(path, cut));
    }
    let log = AuditLog {
        file,
        path: path.to_path_buf(),
        len: tail.good_len,
        head,
        anchor,
        stuck: None,
    };
    Ok(super::Opened { log, notes })
}

/// A log without an anchor is checked whole once before it is anchored:
/// one written before records were whole may be broken, and is then set
/// aside rather than continued.
fn chain_break(path: &Path) -> Result<Option<String>, AuditError> {
    let checked = super::verify::verify(path).map_err(|source| AuditError::Io {
        context: "cannot read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(checked.err().map(|b| {
        format!(
            "it had no anchor and its chain is broken at line {}: {}",
            b.line, b.reason
        )
    }))
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

fn create_anchor(path: &Path, head: &Head) -> Result<Anchor, AuditError> {
    Anchor::create(path, head).map_err(|source| AuditError::Io {
        context: "cannot create the anchor",
        path: path.to_path_buf(),
        source,
    })
}

/// Set the log and its anchor aside and begin a new chain whose first
/// record says why and where the old one went.
fn restart(
    path: &Path,
    anchor_path: &Path,
    anchored: Option<Head>,
    tail: &Tail,
    why: String,
) -> Result<super::Opened, AuditError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".set-aside-{stamp}"));
    let aside = PathBuf::from(aside);
    let rename = |from: &Path, to: &Path| match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(AuditError::Io {
            context: "cannot set aside",
            path: from.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    };
    rename(path, &aside)?;
    rename(anchor_path, &anchor::path_for(&aside))?;
    let file = open_log(path).map_err(|source| AuditError::Io {
        context: "cannot create",
        path: path.to_path_buf(),
        source,
    })?;
    let anchor = create_anchor(anchor_path, &Head::genesis())?;
    let found = match &tail.last {
        Last::Record { head, .. } => {
            serde_json::json!({"records": head.records, "head": head.hash})
        }
        Last::Empty => serde_json::json!({"records": 0}),
        Last::Invalid(offset) => serde_json::json!({"invalid_line_at": offset}),
    };
    let note = Entry {
        stage: "orchestrate".into(),
        event: AuditEvent::AuditRestarted,
        decision: Decision::Deny,
        target: Some(aside.display().to_string()),
        reason: Some(format!(
            "the log did not match its anchor ({why}); it was set aside and this chain begins anew"
        )),
        detail: serde_json::json!({
            "anchor": anchored.map(|a| serde_json::json!({"records": a.records, "head": a.hash})),
            "found": found,
            "partial_tail_bytes": tail.cut.as_ref().map(|c| c.bytes),
        }),
        ..Entry::default()
    };
    let log = AuditLog {
        file,
        path: path.to_path_buf(),
        len: 0,
        head: Head::genesis(),
        anchor,
        stuck: None,
    };
    Ok(super::Opened {
        log,
        notes: vec![note],
    })
}

/// Why the log and the anchor disagree, in words.
fn mismatch(anchored: &Result<Option<(Anchor, Head)>, super::AnchorError>, last: &Last) -> String {
    match (anchored, last) {
        (Err(e), _) => e.to_string(),
        (Ok(_), Last::Invalid(offset)) => format!("its last line, at byte {offset}, is not a record"),
        (Ok(Some((_, a))), Last::Empty) => format!("{} record(s) were anchored but the log is empty", a.records),
        (Ok(Some((_, a))), Last::Record { head, .. }) if head.records < a.records => format!(
            "{} record(s) were anchored but the log holds {}",
            a.records, head.records
        ),
        (Ok(Some((_, a))), Last::Record { head, .. }) => format!(
            "the log holds {} record(s) whose last does not chain to the anchored head of {} record(s)",
            head.records, a.records
        ),
        (Ok(None), _) => "no anchor".into(),
    }
}

fn repaired_cut(path: &Path, cut: &Cut) -> Entry {
    Entry {
        stage: "orchestrate".into(),
        event: AuditEvent::AuditRepaired,
        decision: Decision::Info,
        target: Some(path.display().to_string()),
        reason: Some(
            "a record cut off by a crash or a full disk was removed from the end of the log".into(),
        ),
        detail: serde_json::json!({"offset": cut.offset, "bytes": cut.bytes, "sha256": cut.sha256}),
        ..Entry::default()
    }
}

fn caught_up(anchored: &Head, head: &Head) -> Entry {
    Entry {
        stage: "orchestrate".into(),
        event: AuditEvent::AuditRepaired,
        decision: Decision::Info,
        reason: Some("the anchor was one record behind the log (kato stopped between writing a record and anchoring it); the record was anchored".into()),
        detail: serde_json::json!({"anchored_records": anchored.records, "records": head.records, "head": head.hash}),
        ..Entry::default()
    }
}

fn anchored_as_found(head: &Head) -> Entry {
    Entry {
        stage: "orchestrate".into(),
        event: AuditEvent::AuditAnchored,
        decision: Decision::Info,
        reason: Some("the log had no anchor; it was anchored at its last record as found".into()),
        detail: serde_json::json!({"records": head.records, "head": head.hash}),
        ..Entry::default()
    }
}

/// The last complete line of `file` and whatever follows it.
fn read_tail(file: &File) -> io::Result<Tail> {
    let len = file.metadata()?.len();
    let good_len = match newline_before(file, len)? {
        Some(i) => i + 1,
        None => 0,
    };
    let cut = if good_len < len {
        let mut bytes = vec![0u8; (len - good_len).min(MAX_RECORD) as usize];
        file.read_exact_at(&mut bytes, good_len)?;
        Some(Cut {
            offset: good_len,
            bytes: len - good_len,
            sha256: hex_sha256(&bytes),
        })
    } else {
        None
    };
    if good_len == 0 {
        return Ok(Tail {
            good_len,
            cut,
            last: Last::Empty,
        });
    }
    let end = good_len - 1;
    let start = newline_before(file, end)?.map_or(0, |i| i + 1);
    let last = if end - start > MAX_RECORD {
        Last::Invalid(start)
    } else {
        let mut line = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut line, start)?;
        parse_last(&line, start)
    };
    Ok(Tail {
        good_len,
        cut,
        last,
    })
}

/// Only the fields the chain needs: a record whose event this build does
/// not know (written by a newer kato) still continues the chain.
fn parse_last(line: &[u8], offset: u64) -> Last {
    #[derive(Deserialize)]
    struct Chained {
        seq: u64,
        prev: String,
    }
    match serde_json::from_slice::<Chained>(line) {
        Ok(r) => Last::Record {
            head: Head {
                records: r.seq + 1,
                hash: hex_sha256(line),
            },
            prev: r.prev,
        },
        Err(_) => Last::Invalid(offset),
    }
}

/// Offset of the last `\n` before `end`, reading backwards.
fn newline_before(file: &File, end: u64) -> io::Result<Option<u64>> {
    let mut hi = end;
    let mut buf = vec![0u8; CHUNK as usize];
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK);
        let chunk = &mut buf[..(hi - lo) as usize];
        file.read_exact_at(chunk, lo)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify;

    fn entry(i: u32) -> Entry {
        Entry {
            stage: "orchestrate".into(),
            event: AuditEvent::CommandParsed,
            decision: Decision::Allow,
            raw: Some(format!("::record {i}")),
            ..Entry::default()
        }
    }

    fn log_with(n: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::audit::FILE_NAME);
        let mut log = open(&path).unwrap().log;
        for i in 0..n {
            log.append(entry(i)).unwrap();
        }
        (dir, path)
    }

    fn events(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
            .collect()
    }

    #[test]
    fn a_new_log_is_anchored_at_genesis_without_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::audit::FILE_NAME);
        let o = open(&path).unwrap();
        assert!(o.notes.is_empty());
        assert_eq!(
            anchor::read(&anchor::path_for(&path)).unwrap(),
            Some(Head::genesis())
        );
    }

    #[test]
    fn a_record_cut_off_is_removed_and_the_repair_recorded() {
        let (_d, path) = log_with(3);
        let before = fs::read(&path).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b"{\"seq\":3,\"time\":\"20").unwrap();
        let mut o = open(&path).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "cut back to the last record"
        );
        assert_eq!(o.notes.len(), 1);
        assert_eq!(o.notes[0].event, AuditEvent::AuditRepaired);
        assert_eq!(o.notes[0].detail["bytes"], 19);
        for n in o.notes.drain(..) {
            o.log.append(n).unwrap();
        }
        let v = verify::check(&path, None, false).unwrap();
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.chain.unwrap().records, 4);
    }

    #[test]
    fn a_record_not_yet_anchored_is_anchored_at_start() {
        let (_d, path) = log_with(2);
        let anchor_path = anchor::path_for(&path);
        let two = fs::read(&anchor_path).unwrap();
        open(&path).unwrap().log.append(entry(9)).unwrap();
        // kato stopped between the record and its anchor.
        fs::write(&anchor_path, two).unwrap();
        let o = open(&path).unwrap();
        assert_eq!(o.log.head().records, 3);
        assert_eq!(o.notes[0].event, AuditEvent::AuditRepaired);
        assert_eq!(anchor::read(&anchor_path).unwrap().unwrap().records, 3);
    }

    #[test]
    fn a_log_without_anchor_is_anchored_as_found() {
        let (_d, path) = log_with(2);
        fs::remove_file(anchor::path_for(&path)).unwrap();
        let o = open(&path).unwrap();
        assert_eq!(o.notes[0].event, AuditEvent::AuditAnchored);
        assert_eq!(o.log.head().records, 2);
    }

    #[test]
    fn an_unanchored_broken_chain_is_set_aside_not_continued() {
        let (_d, path) = log_with(4);
        fs::remove_file(anchor::path_for(&path)).unwrap();
        // A record cut off and the next appended to it: the old failure.
        let text = fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        let glued = format!("{}{}", &lines[1][..40], lines[2]);
        lines[2] = &glued;
        lines.remove(1);
        fs::write(&path, lines.join("\n") + "\n").unwrap();
        let o = open(&path).unwrap();
        assert_eq!(o.notes[0].event, AuditEvent::AuditRestarted);
        assert!(
            o.notes[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("broken at line 2"),
            "{:?}",
            o.notes[0]
        );
        assert_eq!(o.log.head(), &Head::genesis());
    }

    #[test]
    fn a_log_that_does_not_match_its_anchor_is_set_aside_unchanged() {
        let (dir, path) = log_with(5);
        let text = fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().take(3).collect();
        let cut = kept.join("\n") + "\n";
        fs::write(&path, &cut).unwrap();
        let mut o = open(&path).unwrap();
        assert_eq!(o.log.head(), &Head::genesis());
        assert_eq!(o.notes.len(), 1);
        let note = o.notes.remove(0);
        assert_eq!(note.event, AuditEvent::AuditRestarted);
        assert_eq!(note.detail["anchor"]["records"], 5);
        assert_eq!(note.detail["found"]["records"], 3);
        let aside = PathBuf::from(note.target.clone().unwrap());
        assert_eq!(
            fs::read_to_string(&aside).unwrap(),
            cut,
            "kept byte for byte"
        );
        assert!(anchor::path_for(&aside).exists());
        // The set-aside log still fails against its own anchor.
        assert!(!verify::check(&aside, None, false).unwrap().ok());
        o.log.append(note).unwrap();
        assert_eq!(events(&path), ["\"audit.restarted\""]);
        assert!(verify::check(&path, None, false).unwrap().ok());
        drop(dir);
    }
}
