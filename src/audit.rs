//! The security audit log `security-audit.jsonl` (SPEC §10): one JSON line
//! per policy decision, hash-chained.
//!
//! Each record carries `seq` (0, 1, 2…) and `prev`, the SHA-256 (hex) of the
//! previous record's exact line bytes (64 zeros for the first). Editing a
//! byte, deleting or reordering lines breaks the chain at the first record
//! after the change; [`verify`] reports that record. Records never hold chat
//! content or secrets: only the command token, the normalized target and
//! the decision.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File name inside the state (or logs) directory.
pub const FILE_NAME: &str = "security-audit.jsonl";

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about: the closed set of audit event names.
///
/// The serde names are the strings on disk; SECURITY.md lists the same set
/// (a test keeps the two equal).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum AuditEvent {
    /// A command line in a human message was read as a command.
    #[default]
    #[serde(rename = "command.parsed")]
    CommandParsed,
    /// A command was malformed, or refused by the state machine or the policy.
    #[serde(rename = "command.rejected")]
    CommandRejected,
    /// A command ran (its actions follow).
    #[serde(rename = "command.executed")]
    CommandExecuted,
    /// A command found in history was not executed.
    #[serde(rename = "command.skipped-historical")]
    CommandSkippedHistorical,
    /// A copy of a command already seen (resumed or forked session) was
    /// not executed.
    #[serde(rename = "command.skipped-replayed")]
    CommandSkippedReplayed,
    /// The path policy approved a destination.
    #[serde(rename = "write.allowed")]
    WriteAllowed,
    /// The path policy refused a destination.
    #[serde(rename = "write.denied")]
    WriteDenied,
    /// A recording could not be written (full disk, writer gone) and waits.
    #[serde(rename = "recording.paused")]
    RecordingPaused,
    /// A stage thread is fully confined.
    #[serde(rename = "sandbox.applied")]
    SandboxApplied,
    /// A stage thread runs with less confinement than asked for (best-effort).
    #[serde(rename = "sandbox.degraded")]
    SandboxDegraded,
    /// A stage thread could not be confined and did not run.
    #[serde(rename = "sandbox.failed")]
    SandboxFailed,
    /// Malformed records of a session file were skipped.
    #[serde(rename = "input.malformed")]
    InputMalformed,
    /// A state file was unreadable and set aside.
    #[serde(rename = "state.quarantined")]
    StateQuarantined,
    /// A secret was redacted from a recording.
    #[serde(rename = "redaction")]
    Redaction,
}

impl AuditEvent {
    /// Every event, in declaration order.
    pub const ALL: [AuditEvent; 14] = [
        AuditEvent::CommandParsed,
        AuditEvent::CommandRejected,
        AuditEvent::CommandExecuted,
        AuditEvent::CommandSkippedHistorical,
        AuditEvent::CommandSkippedReplayed,
        AuditEvent::WriteAllowed,
        AuditEvent::WriteDenied,
        AuditEvent::RecordingPaused,
        AuditEvent::SandboxApplied,
        AuditEvent::SandboxDegraded,
        AuditEvent::SandboxFailed,
        AuditEvent::InputMalformed,
        AuditEvent::StateQuarantined,
        AuditEvent::Redaction,
    ];

    /// The name on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::CommandParsed => "command.parsed",
            AuditEvent::CommandRejected => "command.rejected",
            AuditEvent::CommandExecuted => "command.executed",
            AuditEvent::CommandSkippedHistorical => "command.skipped-historical",
            AuditEvent::CommandSkippedReplayed => "command.skipped-replayed",
            AuditEvent::WriteAllowed => "write.allowed",
            AuditEvent::WriteDenied => "write.denied",
            AuditEvent::RecordingPaused => "recording.paused",
            AuditEvent::SandboxApplied => "sandbox.applied",
            AuditEvent::SandboxDegraded => "sandbox.degraded",
            AuditEvent::SandboxFailed => "sandbox.failed",
            AuditEvent::InputMalformed => "input.malformed",
            AuditEvent::StateQuarantined => "state.quarantined",
            AuditEvent::Redaction => "redaction",
        }
    }
}

/// What was decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
    Skip,
    #[default]
    Info,
}

/// One audit record's content (the log adds sequence, time and chain).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Stage that decided: `startup`, `parse:claude`, `orchestrate`, `write`, `export`…
    pub stage: String,
    pub event: AuditEvent,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The raw token (a command line, a path as typed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The normalized target (canonical path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// Small structured details (counts, offsets, labels) — never content.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    /// RFC 3339 UTC.
    pub time: String,
    pub pid: u32,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev: String,
}

/// An open, append-only audit log.
pub struct AuditLog {
    file: File,
    next_seq: u64,
    prev: String,
}

impl AuditLog {
    /// Open (creating if needed) and find the chain head from the last line.
    /// A log whose last line is unreadable is not repaired here: appending
    /// continues the chain from that line's hash, and `verify` reports it.
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let (next_seq, prev) = head(&mut file)?;
        Ok(AuditLog {
            file,
            next_seq,
            prev,
        })
    }

    /// Append one record and make it durable.
    pub fn append(&mut self, entry: Entry) -> io::Result<Record> {
        let record = Record {
            seq: self.next_seq,
            time: now_rfc3339(),
            pid: std::process::id(),
            entry,
            prev: self.prev.clone(),
        };
        let mut line = serde_json::to_vec(&record)?;
        let hash = hex_sha256(&line);
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.prev = hash;
        self.next_seq += 1;
        Ok(record)
    }
}

/// Sequence number and hash that the next record continues from.
fn head(file: &mut File) -> io::Result<(u64, String)> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((0, GENESIS.to_owned()));
    }
    // Read a tail window large enough for any record.
    let window = len.min(1 << 20);
    file.seek(SeekFrom::Start(len - window))?;
    let mut buf = Vec::with_capacity(window as usize);
    Read::by_ref(file).take(window).read_to_end(&mut buf)?;
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
    let last = match memchr::memrchr(b'\n', body) {
        Some(i) => &body[i + 1..],
        None => body,
    };
    // Only the sequence number: a record whose event this build does not
    // know (written by a newer kato) still continues the chain.
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    let seq = serde_json::from_slice::<Seq>(last)
        .map(|r| r.seq + 1)
        .unwrap_or(0);
    Ok((seq, hex_sha256(last)))
}

/// Result of a successful verification.
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

/// Check the whole chain of the log at `path`.
pub fn verify(path: &Path) -> io::Result<Result<Verified, Broken>> {
    let file = File::open(path)?;
    let mut reader = BufReader::new(file);
    let mut prev = GENESIS.to_owned();
    let mut expected_seq = 0u64;
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        let Some(body) = line.strip_suffix(b"\n") else {
            return Ok(Err(Broken {
                line: n,
                reason: "last record is incomplete (no newline)".into(),
            }));
        };
        let record: Record = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(Broken {
                    line: n,
                    reason: format!("not a valid record: {e}"),
                }))
            }
        };
        if record.prev != prev {
            return Ok(Err(Broken {
                line: n,
                reason: "`prev` does not match the hash of the previous record (edited, deleted or reordered records)".into(),
            }));
        }
        if record.seq != expected_seq {
            return Ok(Err(Broken {
                line: n,
                reason: format!("sequence {} where {expected_seq} was expected", record.seq),
            }));
        }
        prev = hex_sha256(body);
        expected_seq += 1;
    }
    Ok(Ok(Verified {
        records: n,
        head: prev,
    }))
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Current UTC time as RFC 3339 with milliseconds, without a date crate.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

/// Format seconds since the epoch (UTC) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(secs: u64, millis: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm), valid for the Unix era.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn log_with(n: u32) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut log = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append(entry(i)).unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn chain_verifies_and_survives_reopen() {
        let (_d, path) = log_with(3);
        let mut log = AuditLog::open(&path).unwrap();
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

    #[test]
    fn event_names_on_disk_are_the_documented_strings() {
        for ev in AuditEvent::ALL {
            let json = serde_json::to_string(&ev).unwrap();
            assert_eq!(json, format!("\"{}\"", ev.as_str()));
            assert_eq!(serde_json::from_str::<AuditEvent>(&json).unwrap(), ev);
        }
        let line = r#"{"seq":0,"time":"t","pid":1,"stage":"write","event":"recording.paused","decision":"deny","prev":"x"}"#;
        let r: Record = serde_json::from_str(line).unwrap();
        assert_eq!(
            (r.entry.event, r.entry.decision),
            (AuditEvent::RecordingPaused, Decision::Deny)
        );
        assert_eq!(serde_json::to_string(&r).unwrap(), line);
    }

    /// `ALL` holds every variant once (the match fails to compile when a
    /// variant is added, reminding to extend `ALL`).
    #[test]
    fn all_lists_every_event_once() {
        fn position(e: AuditEvent) -> usize {
            match e {
                AuditEvent::CommandParsed => 0,
                AuditEvent::CommandRejected => 1,
                AuditEvent::CommandExecuted => 2,
                AuditEvent::CommandSkippedHistorical => 3,
                AuditEvent::CommandSkippedReplayed => 4,
                AuditEvent::WriteAllowed => 5,
                AuditEvent::WriteDenied => 6,
                AuditEvent::RecordingPaused => 7,
                AuditEvent::SandboxApplied => 8,
                AuditEvent::SandboxDegraded => 9,
                AuditEvent::SandboxFailed => 10,
                AuditEvent::InputMalformed => 11,
                AuditEvent::StateQuarantined => 12,
                AuditEvent::Redaction => 13,
            }
        }
        for (i, e) in AuditEvent::ALL.iter().enumerate() {
            assert_eq!(position(*e), i, "{e:?}");
        }
    }

    /// SECURITY.md's table of audit events names exactly the enum's events.
    #[test]
    fn security_md_lists_every_audit_event() {
        let doc = include_str!("../SECURITY.md");
        let start = doc
            .find("\n## The audit log")
            .expect("SECURITY.md has a section `## The audit log`");
        let section = &doc[start + 1..];
        let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
        let documented: std::collections::BTreeSet<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let known: std::collections::BTreeSet<&str> =
            AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(documented, known);
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_887_798, 102), "2026-01-08T15:56:38.102Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    }
}
