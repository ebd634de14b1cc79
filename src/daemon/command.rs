//! Deciding one in-chat command, without threads or files.
//!
//! [`plan`] turns a command event and the session's command state into a
//! [`Plan`]: the audit records to write, the command state after it and
//! the actions to carry out, in order. The recorder
//! ([`super::record::Recorder`]) carries a plan out; the path policy is
//! passed in as a function, so tests drive the decision with a fake one.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::audit::{AuditEvent, Decision, Entry};
use crate::commands;
use crate::event::{Event, ProviderId};
use crate::policy::Denied;
use crate::recording::{Action, At, Ctx, Outcome, SessionState};

/// One conversation: its provider and session id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionKey {
    pub provider: ProviderId,
    pub session: String,
}

impl SessionKey {
    pub fn new(provider: ProviderId, session: impl Into<String>) -> SessionKey {
        SessionKey {
            provider,
            session: session.into(),
        }
    }

    /// The session an event belongs to.
    pub fn of(ev: &Event) -> SessionKey {
        SessionKey::new(ev.provider, &*ev.session_id)
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider.as_str(), self.session)
    }
}

/// A command event as the orchestrator received it.
#[derive(Debug, Clone)]
pub(crate) struct CommandEvent<'a> {
    /// The command event's id (unique per command line).
    pub event_id: &'a str,
    /// The command line as typed.
    pub raw: &'a str,
    /// Where it sits in the conversation.
    pub at: At,
    /// Read as it was written (not history).
    pub live: bool,
    /// In history the agent copied into this session (the parser's rules).
    pub copied: bool,
    /// Its fingerprint was decided before, for another command event.
    pub seen_elsewhere: bool,
    /// Its fingerprints ([`super::seen`]).
    pub fingerprints: &'a [String],
}

/// What to do for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Audit records, in order (the log adds the policy hash).
    pub audits: Vec<Entry>,
    /// The session's command state after the command.
    pub state: SessionState,
    /// What the writers and the recordings must do, in order.
    pub actions: Vec<Action>,
    /// The fingerprints to remember as decided (before any action runs).
    pub remember: Vec<String>,
}

/// Decide one command. `default_dest` is used when a command names no
/// destination and no pointer is set; `check` is the path policy (the
/// normalized destination, or why not). Pure apart from what `check` reads.
pub(crate) fn plan(
    key: &SessionKey,
    state: &SessionState,
    cmd: &CommandEvent<'_>,
    default_dest: &Path,
    check: &dyn Fn(&Path) -> Result<PathBuf, Denied>,
) -> Plan {
    let base = Entry {
        stage: "orchestrate".into(),
        provider: Some(key.provider.as_str().to_owned()),
        session: Some(key.session.clone()),
        raw: Some(cmd.raw.to_owned()),
        ..Entry::default()
    };
    let mut next = state.clone();
    let parsed = commands::scan(cmd.raw)
        .into_iter()
        .next()
        .map(|l| l.parsed)
        .unwrap_or(Err(commands::CommandError::NotACommand));
    let command = match parsed {
        Ok(c) => c,
        Err(reason) => {
            next.done.insert(cmd.event_id.to_owned());
            return Plan {
                audits: vec![Entry {
                    event: AuditEvent::CommandRejected,
                    decision: Decision::Deny,
                    reason: Some(reason.to_string()),
                    detail: serde_json::json!({"event_id": cmd.event_id, "live": cmd.live}),
                    ..base
                }],
                state: next,
                actions: Vec::new(),
                remember: Vec::new(),
            };
        }
    };
    let mut audits = vec![Entry {
        event: AuditEvent::CommandParsed,
        decision: Decision::Allow,
        detail: serde_json::json!({"event_id": cmd.event_id, "name": command.name.as_str()}),
        ..base.clone()
    }];
    // The policy's refusal, kept for the `write.denied` record.
    let denied: RefCell<Option<(String, Denied)>> = RefCell::new(None);
    let checked = |p: &Path| -> Result<PathBuf, Denied> {
        check(p).inspect_err(|d| *denied.borrow_mut() = Some((p.display().to_string(), d.clone())))
    };
    let deflt = || default_dest.to_path_buf();
    let ctx = Ctx {
        event_id: cmd.event_id,
        at: cmd.at.clone(),
        historical: !cmd.live,
        replayed: cmd.copied || cmd.seen_elsewhere,
        default_dest: &deflt,
        check: &checked,
    };
    let outcome = next.apply(&command, &ctx);
    let remember = match outcome {
        Outcome::AlreadyDone => Vec::new(),
        _ => cmd.fingerprints.to_vec(),
    };
    let actions = record_outcome(
        outcome,
        &base,
        cmd,
        command.name,
        denied.into_inner(),
        &mut audits,
    );
    Plan {
        audits,
        state: next,
        actions,
        remember,
    }
}

/// Why a command is a copy, for its `command.skipped-replayed` record.
fn replay_reason(cmd: &CommandEvent<'_>) -> Option<String> {
    if cmd.copied {
        Some("the command is in history the agent wrote again (a resumed or forked session, a re-written transcript)".into())
    } else if cmd.seen_elsewhere {
        Some("a command with the same time, line and text was already handled in another session: this is a copy".into())
    } else {
        None
    }
}

/// The audit records of a command's outcome (after `command.parsed`);
/// returns the actions to carry out.
fn record_outcome(
    outcome: Outcome,
    base: &Entry,
    cmd: &CommandEvent<'_>,
    name: commands::Name,
    denied: Option<(String, Denied)>,
    audits: &mut Vec<Entry>,
) -> Vec<Action> {
    match outcome {
        Outcome::AlreadyDone => Vec::new(),
        Outcome::SkippedHistorical => {
            audits.push(Entry {
                event: AuditEvent::CommandSkippedHistorical,
                decision: Decision::Skip,
                reason: Some("the command was already in the file when kato first read it".into()),
                ..base.clone()
            });
            Vec::new()
        }
        Outcome::SkippedReplayed => {
            audits.push(Entry {
                event: AuditEvent::CommandSkippedReplayed,
                decision: Decision::Skip,
                reason: replay_reason(cmd),
                detail: serde_json::json!({"event_id": cmd.event_id, "copied": cmd.copied}),
                ..base.clone()
            });
            Vec::new()
        }
        Outcome::Rejected(reason) => {
            if let Some((target, why)) = denied {
                audits.push(Entry {
                    event: AuditEvent::WriteDenied,
                    decision: Decision::Deny,
                    target: Some(target),
                    reason: Some(why.to_string()),
                    ..base.clone()
                });
            }
            audits.push(Entry {
                event: AuditEvent::CommandRejected,
                decision: Decision::Deny,
                reason: Some(reason),
                ..base.clone()
            });
            Vec::new()
        }
        Outcome::Executed(actions) => {
            for a in &actions {
                if let Some((dest, id)) = written_by(a) {
                    audits.push(Entry {
                        event: AuditEvent::WriteAllowed,
                        decision: Decision::Allow,
                        target: Some(dest.display().to_string()),
                        detail: serde_json::json!({"recording": id}),
                        ..base.clone()
                    });
                }
            }
            audits.push(Entry {
                event: AuditEvent::CommandExecuted,
                decision: Decision::Allow,
                detail: serde_json::json!({"name": name.as_str(), "actions": actions.len()}),
                ..base.clone()
            });
            actions
        }
    }
}

/// The destination an action writes to (every action but `Stop`).
fn written_by(a: &Action) -> Option<(&Path, &str)> {
    match a {
        Action::Prepare { dest, recording_id }
        | Action::Snapshot {
            dest, recording_id, ..
        }
        | Action::Start {
            dest, recording_id, ..
        } => Some((&dest.path, recording_id)),
        Action::Stop { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Format;
    use crate::policy::DenyReason;
    use crate::recording::Dest;

    fn key() -> SessionKey {
        SessionKey::new(ProviderId::Claude, "s1")
    }

    /// The fake policy: everything under `/exp` is allowed.
    fn check(p: &Path) -> Result<PathBuf, Denied> {
        if p.starts_with("/exp") {
            Ok(p.to_path_buf())
        } else {
            Err(Denied {
                reason: DenyReason::NotUnderRoot,
                detail: p.display().to_string(),
            })
        }
    }

    fn decide(state: &SessionState, message: &str, line: u32, raw: &str, live: bool) -> Plan {
        decide_as(state, message, line, raw, live, Via::No)
    }

    /// How a command event came to be a copy, if it is one.
    #[derive(Clone, Copy, PartialEq)]
    enum Via {
        No,
        /// Marked by its parser.
        Marked,
        /// Its fingerprint was decided in another session.
        Seen,
    }

    fn decide_as(
        state: &SessionState,
        message: &str,
        line: u32,
        raw: &str,
        live: bool,
        copy: Via,
    ) -> Plan {
        let id = format!("{message}/cmd{line}");
        let fp = [format!("fp-{message}-{line}")];
        let cmd = CommandEvent {
            event_id: &id,
            raw,
            at: At {
                message_id: message.to_owned(),
                line,
            },
            live,
            copied: copy == Via::Marked,
            seen_elsewhere: copy == Via::Seen,
            fingerprints: &fp,
        };
        plan(&key(), state, &cmd, Path::new("/exp/default"), &check)
    }

    fn events(p: &Plan) -> Vec<&str> {
        p.audits.iter().map(|a| a.event.as_str()).collect()
    }

    fn md(p: &str) -> Dest {
        Dest {
            path: p.into(),
            format: Format::Markdown,
        }
    }

    /// Pointer, active flag and registry: what a failed command must not touch.
    fn visible(s: &SessionState) -> (Option<Dest>, bool, Vec<PathBuf>) {
        (
            s.pointer.clone(),
            s.active,
            s.registry.keys().cloned().collect(),
        )
    }

    #[test]
    fn capture_while_recording_stops_snapshots_and_starts() {
        let s = decide(&SessionState::new("s1"), "m1", 0, "::capture /exp/a", true).state;
        let p = decide(&s, "m2", 3, "::capture /exp/b.jsonl", true);
        assert!(matches!(&p.actions[..], [
            Action::Stop { dest: stopped, .. },
            Action::Snapshot { dest: snap, upto, .. },
            Action::Start { from, .. },
        ] if *stopped == md("/exp/a.md")
            && snap.format == Format::Jsonl
            && upto.line == 3
            && from.line == 4));
        assert_eq!(
            events(&p),
            [
                "command.parsed",
                "write.allowed",
                "write.allowed",
                "command.executed"
            ]
        );
        assert_eq!(
            p.state.pointer.as_ref().map(|d| d.format),
            Some(Format::Jsonl)
        );
        assert!(p.state.active);
        assert_eq!(p.audits[3].detail["actions"], 3);
    }

    #[test]
    fn export_to_a_denied_path_is_audited_and_changes_nothing() {
        let s = decide(&SessionState::new("s1"), "m1", 0, "::capture /exp/a", true).state;
        assert!(s.active);
        let p = decide(&s, "m2", 0, "::export /etc/passwd", true);
        assert!(p.actions.is_empty());
        assert_eq!(
            events(&p),
            ["command.parsed", "write.denied", "command.rejected"]
        );
        let denied = &p.audits[1];
        assert_eq!(denied.decision, Decision::Deny);
        assert_eq!(denied.target.as_deref(), Some("/etc/passwd.md"));
        assert!(denied
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("not under")));
        assert_eq!(visible(&p.state), visible(&s));
        assert!(
            p.state.done.contains("m2/cmd0"),
            "a refused command runs once"
        );
    }

    #[test]
    fn stop_when_not_recording_is_rejected_without_a_write_record() {
        let s = SessionState::new("s1");
        let p = decide(&s, "m1", 0, "::stop", true);
        assert!(p.actions.is_empty());
        assert_eq!(events(&p), ["command.parsed", "command.rejected"]);
        assert_eq!(visible(&p.state), visible(&s));
    }

    #[test]
    fn historical_command_is_only_audited() {
        let p = decide(&SessionState::new("s1"), "m1", 0, "::capture /exp/a", false);
        assert!(p.actions.is_empty());
        assert_eq!(events(&p), ["command.parsed", "command.skipped-historical"]);
        assert_eq!(p.audits[1].decision, Decision::Skip);
        assert_eq!(p.state.pointer, None);
        assert!(p.state.done.contains("m1/cmd0"));
    }

    #[test]
    fn copied_commands_are_audited_as_replayed_and_change_nothing() {
        let s = decide(&SessionState::new("s1"), "m1", 0, "::capture /exp/a", true).state;
        for (copy, copied) in [(Via::Marked, true), (Via::Seen, false)] {
            let p = decide_as(&s, "m2", 0, "::capture /exp/b", true, copy);
            assert!(p.actions.is_empty());
            assert_eq!(events(&p), ["command.parsed", "command.skipped-replayed"]);
            let r = &p.audits[1];
            assert_eq!(r.decision, Decision::Skip);
            assert_eq!(r.detail["copied"], copied);
            assert!(r
                .reason
                .as_deref()
                .is_some_and(|t| t.contains("copy") || t.contains("wrote again")));
            assert_eq!(visible(&p.state), visible(&s));
            assert!(p.state.done.contains("m2/cmd0"), "decided once");
            // Remembered, so a further copy is recognised too.
            assert_eq!(p.remember, ["fp-m2-0"]);
            // Delivered again after a restart: nothing more.
            let again = decide_as(&p.state, "m2", 0, "::capture /exp/b", true, copy);
            assert_eq!(events(&again), ["command.parsed"]);
            assert!(again.actions.is_empty() && again.remember.is_empty());
        }
    }

    #[test]
    fn a_copied_command_in_history_is_historical() {
        let p = decide_as(
            &SessionState::new("s1"),
            "m1",
            0,
            "::record",
            false,
            Via::Marked,
        );
        assert_eq!(events(&p), ["command.parsed", "command.skipped-historical"]);
        assert_eq!(p.remember, ["fp-m1-0"]);
    }

    #[test]
    fn a_new_command_runs_and_is_remembered_before_it_acts() {
        let p = decide(
            &SessionState::new("s1"),
            "m9",
            0,
            "::capture /exp/new",
            true,
        );
        assert_eq!(events(&p).last(), Some(&"command.executed"));
        assert!(!p.actions.is_empty());
        assert_eq!(p.remember, ["fp-m9-0"]);
    }

    #[test]
    fn commands_of_one_message_apply_in_order() {
        let s = SessionState::new("s1");
        let init = decide(&s, "m1", 0, "::init /exp/notes", true);
        assert!(matches!(&init.actions[..], [Action::Prepare { .. }]));
        let record = decide(&init.state, "m1", 1, "::record", true);
        assert!(matches!(&record.actions[..],
            [Action::Start { dest, from, .. }] if *dest == md("/exp/notes.md") && from.line == 1));
        let stop = decide(&record.state, "m1", 2, "::stop", true);
        assert!(matches!(&stop.actions[..], [Action::Stop { .. }]));
        assert_eq!(stop.state.pointer, Some(md("/exp/notes.md")));
        assert!(!stop.state.active);
        // The same three in the other order: `::stop` first has nothing to stop.
        let early = decide(&s, "m2", 0, "::stop", true);
        assert_eq!(events(&early).last(), Some(&"command.rejected"));
    }

    #[test]
    fn failing_command_leaves_pointer_active_and_registry() {
        let s = decide(&SessionState::new("s1"), "m1", 0, "::capture /exp/a", true).state;
        for raw in [
            "::capture /etc/x",
            "::record /exp/a",
            "::init ../x",
            "::bogus",
        ] {
            let p = decide(&s, "m2", 0, raw, true);
            assert!(p.actions.is_empty(), "{raw}");
            assert_eq!(
                p.audits.last().map(|a| a.event),
                Some(AuditEvent::CommandRejected)
            );
            assert_eq!(visible(&p.state), visible(&s), "{raw}");
        }
    }

    #[test]
    fn malformed_and_repeated_commands() {
        let s = SessionState::new("s1");
        let bad = decide(&s, "m1", 0, "::record now please", true);
        assert_eq!(events(&bad), ["command.rejected"]);
        assert_eq!(bad.audits[0].detail["live"], true);
        assert!(bad.state.done.contains("m1/cmd0"));
        // Delivered again after a restart: audited as parsed, not run again.
        let first = decide(&s, "m2", 0, "::record", true);
        let again = decide(&first.state, "m2", 0, "::record", true);
        assert!(again.actions.is_empty());
        assert_eq!(events(&again), ["command.parsed"]);
        assert_eq!(again.state, first.state);
        // Every record names the session it belongs to.
        assert!(first
            .audits
            .iter()
            .all(|a| a.provider.as_deref() == Some("claude")
                && a.session.as_deref() == Some("s1")
                && a.raw.as_deref() == Some("::record")));
    }
}
