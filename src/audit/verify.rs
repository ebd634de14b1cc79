//! `kato audit verify`: the chain from the first record to the last, then
//! the head against the anchor beside the log and, when given, against an
//! anchor kept elsewhere (`--anchor HASH`, e.g. from the journal).
//!
//! The anchor is updated just after each record, so the log may hold one
//! record more than anchored (kato stopped in between); that record is
//! reported as not anchored and accepted. Anything else that differs —
//! fewer records, another last record, more than one extra record, a
//! recomputed chain — fails.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::anchor;
use super::{hex_sha256, AuditEvent, Head, Record, GENESIS};

/// Result of a successful chain check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub records: u64,
    /// Hash of the last record (the chain head).
    pub head: String,
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("audit chain broken at line {line}: {reason}")]
pub struct Broken {
    /// 1-based line number of the first bad record.
    pub line: u64,
    pub reason: String,
}

/// How the log compares with the anchor beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorVerdict {
    /// The log ends at the anchored record.
    Matches,
    /// The log holds one record after the anchored one (kato stopped
    /// between writing it and anchoring it).
    OneAhead,
    /// A running daemon wrote this many records after the anchor was read.
    Growing(u64),
    /// There is no anchor beside the log.
    Missing(PathBuf),
    /// The log's tail was removed, replaced or extended, or the whole chain
    /// recomputed.
    Mismatch { anchor: Head, reason: String },
    /// The anchor cannot be read or was edited.
    Unusable(String),
}

/// A record that says the log itself was repaired or began anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub line: u64,
    pub event: AuditEvent,
    pub reason: String,
}

/// Everything `kato audit verify` checks.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub chain: Result<Verified, Broken>,
    pub anchor: AnchorVerdict,
    /// `--anchor HASH`: the record (1-based) whose hash it is, if any.
    pub external: Option<(String, Option<u64>)>,
    pub notes: Vec<Note>,
}

impl Verdict {
    /// Nothing was found wrong.
    pub fn ok(&self) -> bool {
        let records = self.chain.as_ref().map_or(0, |v| v.records);
        let external_found = self.external.as_ref().map(|(_, at)| at.is_some());
        let anchored = match &self.anchor {
            AnchorVerdict::Matches | AnchorVerdict::OneAhead | AnchorVerdict::Growing(_) => true,
            // Nothing to lose yet, or checked against an anchor kept elsewhere.
            AnchorVerdict::Missing(_) => records == 0 || external_found == Some(true),
            AnchorVerdict::Mismatch { .. } | AnchorVerdict::Unusable(_) => false,
        };
        self.chain.is_ok() && anchored && external_found != Some(false)
    }
}

/// Check the chain of the log at `path` alone (no anchor).
pub fn verify(path: &Path) -> io::Result<Result<Verified, Broken>> {
    Ok(scan(path, None, None)?.chain)
}

/// Check the chain, the anchor beside the log and `external` (a record
/// hash kept elsewhere). A missing log reads as empty when an anchor exists.
/// `live`: a daemon holds the log's state directory and may append while
/// this reads (the anchor is read first, so the log can only be longer).
pub fn check(path: &Path, external: Option<&str>, live: bool) -> io::Result<Verdict> {
    let anchor_path = anchor::path_for(path);
    let anchored = anchor::read(&anchor_path);
    let at_count = anchored
        .as_ref()
        .ok()
        .and_then(|a| a.as_ref())
        .map(|h| h.records);
    let scan = match scan(path, at_count, external) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && matches!(anchored, Ok(Some(_))) => {
            Scan::empty()
        }
        other => other?,
    };
    let anchor = match anchored {
        Err(e) => AnchorVerdict::Unusable(e.to_string()),
        Ok(None) => AnchorVerdict::Missing(anchor_path),
        Ok(Some(a)) => match &scan.chain {
            Ok(v) => compare(&a, v, scan.hash_at_count.as_deref(), live),
            // A broken chain fails on its own.
            Err(_) => AnchorVerdict::Matches,
        },
    };
    Ok(Verdict {
        chain: scan.chain,
        anchor,
        external: external.map(|h| (h.to_owned(), scan.external_at)),
        notes: scan.notes,
    })
}

/// Compare a whole chain (`v`) with its anchor `a`; `at_anchor` is the
/// hash of the chain's record number `a.records` (counted from 1).
fn compare(a: &Head, v: &Verified, at_anchor: Option<&str>, live: bool) -> AnchorVerdict {
    let prefix_kept = at_anchor == Some(a.hash.as_str());
    let mismatch = |reason: String| AnchorVerdict::Mismatch {
        anchor: a.clone(),
        reason,
    };
    let n = v.records;
    if n == a.records && v.head == a.hash {
        AnchorVerdict::Matches
    } else if n == a.records + 1 && prefix_kept {
        AnchorVerdict::OneAhead
    } else if live && n > a.records && prefix_kept {
        AnchorVerdict::Growing(n - a.records)
    } else if n == 0 {
        mismatch(format!(
            "the log is empty but {} record(s) were anchored: it was emptied or replaced",
            a.records
        ))
    } else if n < a.records {
        mismatch(format!(
            "the log holds {n} record(s) but {} were anchored: the last {} were removed",
            a.records,
            a.records - n
        ))
    } else if !prefix_kept {
        mismatch(format!(
            "record {} is not the anchored one: the log's tail was edited or the whole chain recomputed",
            a.records
        ))
    } else {
        mismatch(format!(
            "{} record(s) follow the anchored one where at most one can: they were not written by kato",
            n - a.records
        ))
    }
}

#[derive(Debug)]
struct Scan {
    chain: Result<Verified, Broken>,
    /// Hash of record number `at_count` (GENESIS for 0).
    hash_at_count: Option<String>,
    /// Record number (from 1) whose hash is the external anchor.
    external_at: Option<u64>,
    notes: Vec<Note>,
}

impl Scan {
    fn empty() -> Scan {
        Scan {
            chain: Ok(Verified {
                records: 0,
                head: GENESIS.to_owned(),
            }),
            hash_at_count: None,
            external_at: None,
            notes: Vec::new(),
        }
    }
}

/// Walk the chain, noting the hash at `at_count` and where `external` is.
fn scan(path: &Path, at_count: Option<u64>, external: Option<&str>) -> io::Result<Scan> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut out = Scan::empty();
    let mut prev = GENESIS.to_owned();
    let mut line = Vec::new();
    let mut n = 0u64;
    let probe = |n: u64, hash: &str, out: &mut Scan| {
        if at_count == Some(n) {
            out.hash_at_count = Some(hash.to_owned());
        }
        if external == Some(hash) && out.external_at.is_none() {
            out.external_at = Some(n);
        }
    };
    probe(0, GENESIS, &mut out);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        let record = match check_line(&line, n, &prev) {
            Ok(r) => r,
            Err(broken) => {
                out.chain = Err(broken);
                return Ok(out);
            }
        };
        prev = hex_sha256(&line[..line.len() - 1]);
        probe(n, &prev, &mut out);
        if let Some(note) = note(&record, n) {
            out.notes.push(note);
        }
    }
    out.chain = Ok(Verified {
        records: n,
        head: prev,
    });
    Ok(out)
}

/// One line: complete, a record, chained to `prev`, numbered `n - 1`.
fn check_line(line: &[u8], n: u64, prev: &str) -> Result<Record, Broken> {
    let broken = |reason: String| Broken { line: n, reason };
    let Some(body) = line.strip_suffix(b"\n") else {
        return Err(broken("last record is incomplete (no newline)".into()));
    };
    let record: Record =
        serde_json::from_slice(body).map_err(|e| broken(format!("not a valid record: {e}")))?;
    if record.prev != prev {
        return Err(broken("`prev` does not match the hash of the previous record (edited, deleted or reordered records)".into()));
    }
    if record.seq != n - 1 {
        return Err(broken(format!(
            "sequence {} where {} was expected",
            record.seq,
            n - 1
        )));
    }
    Ok(record)
}

fn note(record: &Record, line: u64) -> Option<Note> {
    let e = &record.entry;
    matches!(
        e.event,
        AuditEvent::AuditRepaired
            | AuditEvent::AuditAnchored
            | AuditEvent::AuditRestarted
            | AuditEvent::AuditLost
    )
    .then(|| Note {
        line,
        event: e.event,
        reason: match &e.target {
            Some(t) => format!("{} ({t})", e.reason.clone().unwrap_or_default()),
            None => e.reason.clone().unwrap_or_default(),
        },
    })
}

/// An anchor given on the command line: a record's hash as `kato status`
/// or the daemon's log printed it.
pub fn parse_external(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    anchor::is_hash(&s).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, Decision, Entry};
    use std::fs;

    fn entry(i: u32) -> Entry {
        Entry {
            stage: "orchestrate".into(),
            event: AuditEvent::WriteDenied,
            decision: Decision::Deny,
            raw: Some(format!("::capture /etc/x{i}")),
            reason: Some("not under an allowed root".into()),
            ..Entry::default()
        }
    }

    fn log_with(n: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::audit::FILE_NAME);
        let mut log = AuditLog::open(&path).unwrap().log;
        for i in 0..n {
            log.append(entry(i)).unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(path, text).unwrap();
    }

    fn mismatch(path: &Path) -> String {
        match check(path, None, false).unwrap().anchor {
            AnchorVerdict::Mismatch { reason, .. } => reason,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn an_intact_anchored_log_passes() {
        let (_d, path) = log_with(4);
        let v = check(&path, None, false).unwrap();
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.anchor, AnchorVerdict::Matches);
    }

    #[test]
    fn edited_last_record_is_detected() {
        let (_d, path) = log_with(4);
        let mut l = lines(&path);
        l[3] = l[3].replace("/etc/x3", "/etc/y3");
        write_lines(&path, &l);
        assert!(
            check(&path, None, false).unwrap().chain.is_ok(),
            "the chain alone cannot tell"
        );
        assert!(mismatch(&path).contains("edited"));
    }

    #[test]
    fn dropped_tail_and_emptied_file_are_detected() {
        let (_d, path) = log_with(12);
        let l = lines(&path);
        write_lines(&path, &l[..11]);
        assert!(mismatch(&path).contains("the last 1 were removed"));
        write_lines(&path, &l[..2]);
        assert!(mismatch(&path).contains("the last 10 were removed"));
        fs::write(&path, "").unwrap();
        assert!(mismatch(&path).contains("emptied"));
        fs::remove_file(&path).unwrap();
        assert!(mismatch(&path).contains("emptied"));
    }

    #[test]
    fn one_record_beyond_the_anchor_passes_two_do_not() {
        let (_d, path) = log_with(3);
        let anchor_path = anchor::path_for(&path);
        let three = fs::read(&anchor_path).unwrap();
        let mut log = AuditLog::open(&path).unwrap().log;
        log.append(entry(3)).unwrap();
        fs::write(&anchor_path, &three).unwrap();
        let v = check(&path, None, false).unwrap();
        assert_eq!(v.anchor, AnchorVerdict::OneAhead);
        assert!(v.ok());
        let mut log = AuditLog::open(&path).unwrap().log;
        log.append(entry(4)).unwrap();
        fs::write(&anchor_path, &three).unwrap();
        assert!(mismatch(&path).contains("2 record(s) follow"));
        // Unless a running daemon is writing them.
        assert_eq!(
            check(&path, None, true).unwrap().anchor,
            AnchorVerdict::Growing(2)
        );
    }

    #[test]
    fn external_anchor_must_be_a_record_of_the_chain() {
        let (_d, path) = log_with(5);
        let third = hex_sha256(lines(&path)[2].as_bytes());
        let v = check(&path, Some(&third), false).unwrap();
        assert_eq!(v.external, Some((third.clone(), Some(3))));
        assert!(v.ok());
        let wrong = "ab".repeat(32);
        let v = check(&path, Some(&wrong), false).unwrap();
        assert!(!v.ok());
        // Without a local anchor, the external one decides.
        fs::remove_file(anchor::path_for(&path)).unwrap();
        assert!(!check(&path, None, false).unwrap().ok());
        assert!(check(&path, Some(&third), false).unwrap().ok());
    }

    #[test]
    fn chain_verifies_and_survives_reopen() {
        let (_d, path) = log_with(3);
        let mut log = AuditLog::open(&path).unwrap().log;
        let r = log.append(entry(9)).unwrap();
        assert_eq!(r.seq, 3);
        let v = verify(&path).unwrap().unwrap();
        assert_eq!(v.records, 4);
    }

    #[test]
    fn edited_byte_is_detected() {
        let (_d, path) = log_with(4);
        let mut l = lines(&path);
        l[1] = l[1].replace("/etc/x1", "/etc/y1");
        write_lines(&path, &l);
        assert_eq!(verify(&path).unwrap().unwrap_err().line, 3);
    }

    #[test]
    fn deleted_line_is_detected() {
        let (_d, path) = log_with(4);
        let mut l = lines(&path);
        l.remove(1);
        write_lines(&path, &l);
        assert_eq!(verify(&path).unwrap().unwrap_err().line, 2);
    }

    #[test]
    fn reordered_lines_are_detected() {
        let (_d, path) = log_with(4);
        let mut l = lines(&path);
        l.swap(1, 2);
        write_lines(&path, &l);
        assert_eq!(verify(&path).unwrap().unwrap_err().line, 2);
    }

    #[test]
    fn garbage_line_is_detected() {
        let (_d, path) = log_with(2);
        let mut l = lines(&path);
        l.insert(1, "{not json".into());
        write_lines(&path, &l);
        assert_eq!(verify(&path).unwrap().unwrap_err().line, 2);
    }
}
