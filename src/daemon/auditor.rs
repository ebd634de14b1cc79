//! The daemon's side of the audit log: opened (and repaired) at start,
//! written for every decision, and the rule that a command whose record
//! cannot be written does not run.
//!
//! - [`Auditor::write_all`] is for commands: the records are written now or
//!   the caller refuses the command; the refusal is itself recorded later.
//! - [`Auditor::record`] is for everything else (redactions, sandbox
//!   outcomes, malformed input): a record that cannot be written now is
//!   kept in memory, with the time of the decision, and written by the
//!   next successful write or heartbeat. At most [`MAX_DEFERRED`] are
//!   kept; beyond, they are counted and an `audit.lost` record says how
//!   many.
//! - The chain head is published for the log thread (written at the top of
//!   every rotated log file) and logged at start, at stop and hourly when it
//!   changed, so an anchor exists outside the state directory.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::audit::{self, AuditError, AuditEvent, AuditLog, Decision, Entry, Head, HeadCell};
use crate::redact::Redactor;

/// Records kept in memory while the log cannot be written.
pub(crate) const MAX_DEFERRED: usize = 1000;
/// How often an unchanged head is not logged again; a changed one is.
const CHECKPOINT: Duration = Duration::from_secs(3600);

/// The audit log as the daemon holds it (`status.json` → `audit`).
pub(crate) struct Auditor {
    path: PathBuf,
    log: Option<AuditLog>,
    policy_hash: String,
    deferred: VecDeque<Entry>,
    /// Records dropped beyond [`MAX_DEFERRED`], not yet reported.
    lost: u64,
    /// Why the log cannot be written now.
    error: Option<String>,
    cell: Option<HeadCell>,
    /// The head last written to the operational log, and when.
    logged: Option<(Head, Instant)>,
    /// Messages for the status warnings (drained by the daemon).
    pub warnings: Vec<String>,
    /// A command line, a path as typed or a reason can quote the chat.
    redactor: Arc<Redactor>,
}

impl Auditor {
    /// Open the log in `state_dir`, write what its opening repaired.
    pub fn open(state_dir: &Path, policy_hash: &str, redactor: Arc<Redactor>) -> Auditor {
        let mut a = Auditor {
            redactor,
            path: state_dir.join(audit::FILE_NAME),
            log: None,
            policy_hash: policy_hash.to_owned(),
            deferred: VecDeque::new(),
            lost: 0,
            error: None,
            cell: None,
            logged: None,
            warnings: Vec::new(),
        };
        a.reopen();
        a
    }

    /// Try to open the log (at start, and on the heartbeat while it is not open).
    /// The log cannot be written (a full disk), as tests need it.
    #[cfg(test)]
    pub(crate) fn fail_for_test(&mut self) {
        self.log = None;
        self.error = Some("no space left on device".into());
    }

    /// The log can be written again.
    #[cfg(test)]
    pub(crate) fn reopen_for_test(&mut self) {
        self.error = None;
        self.reopen();
    }

    fn reopen(&mut self) {
        match AuditLog::open(&self.path) {
            Ok(opened) => {
                self.log = Some(opened.log);
                for note in opened.notes {
                    self.warnings.push(note_warning(&note));
                    self.record(note);
                }
            }
            Err(e) => self.failed(&e),
        }
    }

    /// Publish the chain head to `cell` (read by the log thread) from now on.
    pub fn publish_to(&mut self, cell: HeadCell) {
        if let Some(h) = self.head() {
            cell.publish(&h);
        }
        self.cell = Some(cell);
    }

    /// The chain head, when the log is open.
    pub fn head(&self) -> Option<Head> {
        self.log.as_ref().map(|l| l.head().clone())
    }

    /// Write `entries` now, in order, or fail with why: for commands, which
    /// do not run without their records.
    pub fn write_all(&mut self, entries: &[Entry]) -> Result<(), String> {
        self.flush()?;
        for e in entries {
            self.append(e.clone())?;
        }
        Ok(())
    }

    /// A command whose records (`audits`) could not be written: it does not
    /// run. Say so in the status now, and record the refusal as soon as the
    /// log can be written.
    pub fn refuse(&mut self, audits: &[Entry], why: &str) {
        let mut first = audits.first().cloned().unwrap_or_default();
        self.redact(&mut first);
        self.warnings.push(format!(
            "command `{}` of session {} refused: its audit record cannot be written ({why}); it did not run",
            first.raw.as_deref().unwrap_or("?"),
            first.session.as_deref().unwrap_or("?"),
        ));
        self.record(Entry {
            event: AuditEvent::CommandRejected,
            decision: Decision::Deny,
            reason: Some(format!(
                "not run: its audit record could not be written ({why})"
            )),
            target: None,
            policy_hash: None,
            ..first
        });
    }

    /// Write `entry` now, or as soon as the log can be written.
    pub fn record(&mut self, entry: Entry) {
        if self.flush().is_ok() && self.append(entry.clone()).is_ok() {
            return;
        }
        self.defer(entry);
    }

    /// Heartbeat: open the log if it is not, write what waits, log the head
    /// when an hour passed and it changed.
    pub fn heartbeat(&mut self) {
        if self.log.is_none() {
            self.reopen();
        } else if !self.deferred.is_empty() || self.lost > 0 {
            let _ = self.flush();
        }
        let due = self
            .logged
            .as_ref()
            .is_none_or(|(_, t)| t.elapsed() >= CHECKPOINT);
        if due && self.logged.as_ref().map(|(h, _)| h) != self.head().as_ref() {
            self.log_head("checkpoint");
        }
    }

    /// Write the chain head to the operational log (journald or kato.log):
    /// an anchor kept outside the state directory.
    pub fn log_head(&mut self, when: &str) {
        if let Some(h) = self.head() {
            log_chain_head(&h, when);
            self.logged = Some((h, Instant::now()));
        }
    }

    /// For `status.json`.
    pub fn status(&self) -> super::status::AuditStatus {
        let head = self.head();
        super::status::AuditStatus {
            path: self.path.clone(),
            anchor: audit::anchor::path_for(&self.path),
            records: head.as_ref().map(|h| h.records),
            head: head.map(|h| h.hash),
            writable: self.error.is_none(),
            error: self.error.clone(),
            deferred: self.deferred.len(),
            lost: self.lost,
        }
    }

    fn defer(&mut self, mut entry: Entry) {
        if self.deferred.len() >= MAX_DEFERRED {
            self.lost += 1;
            return;
        }
        entry.decided_at.get_or_insert_with(audit::now_rfc3339);
        self.deferred.push_back(entry);
    }

    /// Write what waits, oldest first; stop at the first failure.
    fn flush(&mut self) -> Result<(), String> {
        while let Some(e) = self.deferred.front().cloned() {
            self.append(e)?;
            self.deferred.pop_front();
        }
        if self.lost > 0 {
            let lost = self.lost;
            self.append(Entry {
                stage: "orchestrate".into(),
                event: AuditEvent::AuditLost,
                decision: Decision::Info,
                reason: Some(format!(
                    "{lost} record(s) decided while the log could not be written were more than the {MAX_DEFERRED} kept in memory"
                )),
                detail: serde_json::json!({ "records": lost }),
                ..Entry::default()
            })?;
            self.lost = 0;
        }
        Ok(())
    }

    /// Redact every string of a record that can come from a session: every
    /// record is written through [`Auditor::append`], which calls this.
    fn redact(&self, e: &mut Entry) {
        for s in [&mut e.session, &mut e.raw, &mut e.target, &mut e.reason]
            .into_iter()
            .flatten()
        {
            if let std::borrow::Cow::Owned(r) = self.redactor.redact_str(s).text {
                *s = r;
            }
        }
        self.redactor.redact_json_value(&mut e.detail);
    }

    fn append(&mut self, mut entry: Entry) -> Result<(), String> {
        self.redact(&mut entry);
        if entry.policy_hash.is_none() {
            entry.policy_hash = Some(self.policy_hash.clone());
        }
        let Some(log) = self.log.as_mut() else {
            return Err(self
                .error
                .clone()
                .unwrap_or_else(|| "the audit log is not open".into()));
        };
        match log.append(entry) {
            Ok(_) => {
                let head = log.head().clone();
                if let Some(c) = &self.cell {
                    c.publish(&head);
                }
                if self.error.take().is_some() {
                    self.warnings.push(format!(
                        "the audit log {} can be written again; commands run again",
                        self.path.display()
                    ));
                }
                Ok(())
            }
            Err(e) => {
                self.failed(&e);
                Err(e.to_string())
            }
        }
    }

    fn failed(&mut self, e: &AuditError) {
        let msg = e.to_string();
        if self.error.is_none() {
            self.warnings.push(format!(
                "cannot write the audit log {}: {msg}; commands are refused until it can be written, other records wait in memory",
                self.path.display()
            ));
        }
        self.error = Some(msg);
    }
}

/// One operational-log line with the chain head, the hash in the message
/// itself so that plain `journalctl` output shows it.
pub(crate) fn log_chain_head(h: &Head, when: &str) {
    tracing::info!(
        records = h.records,
        head = %h.hash,
        at = when,
        "audit chain head: {} record(s), head {}",
        h.records,
        h.hash
    );
}

/// A status warning for a record that says the log was repaired.
fn note_warning(note: &Entry) -> String {
    let what = note.reason.clone().unwrap_or_default();
    match &note.target {
        Some(t) if note.event == AuditEvent::AuditRestarted => {
            format!("audit log: {what}; the old log is kept as {t}")
        }
        _ => format!("audit log: {what}"),
    }
}
