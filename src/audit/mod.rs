//! The security audit log `security-audit.jsonl` (SPEC §10): one JSON line
//! per policy decision, hash-chained and anchored.
//!
//! Each record carries `seq` (0, 1, 2…) and `prev`, the SHA-256 (hex) of the
//! previous record's exact line bytes (64 zeros for the first). Editing a
//! byte, deleting or reordering lines breaks the chain at the first record
//! after the change. The chain's head (records and last hash) is also kept
//! in an anchor beside the log ([`anchor`]), so removing or rewriting the
//! tail, emptying the file or recomputing the whole chain shows too;
//! [`verify::check`] reports all of these. Records never hold chat content
//! or secrets: only the command token, the normalized target and the
//! decision.
//!
//! A record is written whole or not at all ([`AuditLog::append`]); what a
//! crash or a full disk left is repaired when the log is opened, and the
//! repair is itself a record (see `open.rs`).

pub mod anchor;
mod open;
pub mod verify;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::anchor::Anchor;
pub use self::anchor::{AnchorError, AnchorWriteError};
pub use self::open::Opened;
pub use self::verify::{verify, Broken, Verified};

/// File name inside the state (or logs) directory.
pub const FILE_NAME: &str = "security-audit.jsonl";

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
    /// What a crash or a full disk left in the log was repaired at start.
    #[serde(rename = "audit.repaired")]
    AuditRepaired,
    /// The log had no anchor; it was anchored at its last record as found.
    #[serde(rename = "audit.anchored")]
    AuditAnchored,
    /// The log did not match its anchor: it was set aside and a new chain began.
    #[serde(rename = "audit.restarted")]
    AuditRestarted,
    /// Records decided while the log could not be written were more than
    /// kato keeps in memory; their number.
    #[serde(rename = "audit.lost")]
    AuditLost,
    /// `kato clean` removed kato's own state for a session file.
    #[serde(rename = "state.cleaned")]
    StateCleaned,
}

impl AuditEvent {
    /// Every event, in declaration order.
    pub const ALL: [AuditEvent; 19] = [
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
        AuditEvent::AuditRepaired,
        AuditEvent::AuditAnchored,
        AuditEvent::AuditRestarted,
        AuditEvent::AuditLost,
        AuditEvent::StateCleaned,
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
            AuditEvent::AuditRepaired => "audit.repaired",
            AuditEvent::AuditAnchored => "audit.anchored",
            AuditEvent::AuditRestarted => "audit.restarted",
            AuditEvent::AuditLost => "audit.lost",
            AuditEvent::StateCleaned => "state.cleaned",
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
    /// When the decision was taken, when that was before the record could
    /// be written (the log was not writable then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
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

/// The chain head: how many records the log holds and the hash of the last
/// one ([`GENESIS`] for none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub records: u64,
    pub hash: String,
}

impl Head {
    /// The head of an empty log.
    pub fn genesis() -> Head {
        Head {
            records: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} record(s), head {}", self.records, self.hash)
    }
}

/// Why a record could not be written (it is then not in the log at all).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("only {written} of the record's {len} bytes could be written (no space left?); they were removed again")]
    Short { written: usize, len: usize },
    #[error(transparent)]
    AnchorWrite(#[from] AnchorWriteError),
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    #[error("a failed record could not be removed from {}: {reason}; nothing is written after it until it can be", path.display())]
    Stuck { path: PathBuf, reason: String },
    #[error("cannot encode the record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// An open, append-only audit log and its anchor.
///
/// Invariants: the file ends with a complete record (a failed append is cut
/// off again before the call returns), and the anchor holds the head or,
/// for the moment between writing a record and anchoring it, the head
/// before it.
#[derive(Debug)]
pub struct AuditLog {
    file: File,
    path: PathBuf,
    /// Length of the file up to the end of its last record.
    len: u64,
    head: Head,
    anchor: Anchor,
    /// Why bytes of a failed append may still follow the last record.
    stuck: Option<String>,
}

impl AuditLog {
    /// Open the log at `path` (creating it and its anchor when needed),
    /// repairing what a crash or a full disk left (the table in `open.rs`).
    pub fn open(path: &Path) -> Result<Opened, AuditError> {
        open::open(path)
    }

    /// The chain head after the last record written.
    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record whole or not at all: one `write` of the complete
    /// line, synced, then the anchor. On any failure what was written is
    /// cut off again and the error returned; the log is as before.
    pub fn append(&mut self, entry: Entry) -> Result<Record, AuditError> {
        self.unstick()?;
        let record = Record {
            seq: self.head.records,
            time: now_rfc3339(),
            pid: std::process::id(),
            entry,
            prev: self.head.hash.clone(),
        };
        let mut line = serde_json::to_vec(&record)?;
        let head = Head {
            records: self.head.records + 1,
            hash: hex_sha256(&line),
        };
        line.push(b'\n');
        if let Err(e) = self.write_line(&line) {
            return Err(self.undo(e));
        }
        if let Err(e) = self.anchor.write(&head) {
            return Err(self.undo(e.into()));
        }
        self.len += line.len() as u64;
        self.head = head;
        Ok(record)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), AuditError> {
        let io = |context, source| AuditError::Io {
            context,
            path: self.path.clone(),
            source,
        };
        loop {
            match self.file.write(line) {
                Ok(n) if n == line.len() => break,
                Ok(written) => {
                    return Err(AuditError::Short {
                        written,
                        len: line.len(),
                    })
                }
                // Nothing was written: try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("cannot write", e)),
            }
        }
        self.file.sync_data().map_err(|e| io("cannot sync", e))
    }

    /// Cut off what a failed append left; when that fails too, no record
    /// is written until it succeeds (a record after a partial one would be
    /// unreadable).
    fn undo(&mut self, err: AuditError) -> AuditError {
        if let Err(e) = self.cut_back() {
            self.stuck = Some(e.to_string());
        }
        err
    }

    fn cut_back(&mut self) -> io::Result<()> {
        if self.file.metadata()?.len() > self.len {
            self.file.set_len(self.len)?;
            self.file.sync_data()?;
        }
        Ok(())
    }

    fn unstick(&mut self) -> Result<(), AuditError> {
        if self.stuck.is_some() {
            match self.cut_back() {
                Ok(()) => self.stuck = None,
                Err(e) => {
                    return Err(AuditError::Stuck {
                        path: self.path.clone(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// The chain head as last published by the daemon, read by its log thread
/// (which writes it at the top of every rotated log file).
#[derive(Debug, Clone, Default)]
pub struct HeadCell(Arc<Mutex<Option<Head>>>);

impl HeadCell {
    pub fn publish(&self, head: &Head) {
        if let Ok(mut h) = self.0.lock() {
            *h = Some(head.clone());
        }
    }

    pub fn get(&self) -> Option<Head> {
        self.0.lock().ok().and_then(|h| h.clone())
    }
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
/// Written digit by digit: providers call this for every record of agents
/// that keep epoch times, so it stays off `format!`.
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
    if !(0..=9999).contains(&year) {
        return format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z");
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for k in (at..at + width).rev() {
            b[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, h);
    put(14, 2, m);
    put(17, 2, s);
    put(20, 3, u64::from(millis.min(999)));
    // ASCII digits and separators: always UTF-8, copied in one piece.
    String::from_utf8_lossy(&b).into_owned()
}

/// Milliseconds since the epoch as [`rfc3339`]; `None` past the year 9999,
/// which is no time an agent wrote.
pub fn rfc3339_from_millis(ms: u64) -> Option<String> {
    (ms < 253_402_300_800_000).then(|| rfc3339(ms / 1000, (ms % 1000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_767_887_798, 102), "2026-01-08T15:56:38.102Z");
        assert_eq!(rfc3339(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(253_402_300_799, 999), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_from_millis(1_767_887_798_102).as_deref(),
            Some("2026-01-08T15:56:38.102Z")
        );
        assert_eq!(rfc3339_from_millis(253_402_300_800_000), None);
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
                AuditEvent::AuditRepaired => 14,
                AuditEvent::AuditAnchored => 15,
                AuditEvent::AuditRestarted => 16,
                AuditEvent::AuditLost => 17,
                AuditEvent::StateCleaned => 18,
            }
        }
        for (i, e) in AuditEvent::ALL.iter().enumerate() {
            assert_eq!(position(*e), i, "{e:?}");
        }
    }

    /// SECURITY.md's table of audit events names exactly the enum's events.
    #[test]
    fn security_md_lists_every_audit_event() {
        let doc = include_str!("../../SECURITY.md");
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
