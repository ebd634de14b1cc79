//! The in-chat command state machine (SPEC §6), without I/O.
//!
//! Per session: a primary destination pointer (unset | P), an active flag
//! and a registry of destinations, each with one stable recording id. The
//! orchestrator feeds command events here in order and carries out the
//! returned [`Action`]s through the writers; this module decides, it does
//! not write. A rejected command changes nothing; commands executed before
//! it in the same message stay done.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::commands::{self, Command, Format, Name};
use crate::policy::Denied;

/// A destination file and its format.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dest {
    pub path: PathBuf,
    pub format: Format,
}

/// Where a command sits in the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct At {
    /// Event id of the message holding the command.
    pub message_id: String,
    /// 0-based line of the command inside that message.
    pub line: u32,
}

/// What the orchestrator must do for an executed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Create the file with frontmatter if it is missing (`::init`).
    Prepare { dest: Dest, recording_id: String },
    /// Write the conversation up to and including the command line
    /// (`::capture`, `::export`).
    Snapshot {
        dest: Dest,
        recording_id: String,
        upto: At,
    },
    /// Append live events from the command line on (`::record`, `::capture`).
    Start {
        dest: Dest,
        recording_id: String,
        from: At,
    },
    /// Stop appending to the destination (`::stop`, or a recording moving).
    Stop { dest: Dest, recording_id: String },
}

/// Result of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Executed(Vec<Action>),
    /// Refused: the state is unchanged. The reason is safe to audit.
    Rejected(String),
    /// Found in history (content kato saw when it first read the file).
    SkippedHistorical,
    /// A copy of a command already in history: an agent wrote it again
    /// (resumed or forked session, re-written transcript).
    SkippedReplayed,
    /// This command event was already executed (exactly-once across restarts).
    AlreadyDone,
}

/// Context the orchestrator supplies for one command.
pub struct Ctx<'a> {
    /// The command event's id (unique per command line).
    pub event_id: &'a str,
    pub at: At,
    pub historical: bool,
    /// The command is a copy of one already seen (see [`Outcome::SkippedReplayed`]).
    pub replayed: bool,
    /// Destination used when a command names none and no pointer is set.
    pub default_dest: &'a dyn Fn() -> PathBuf,
    /// The path policy: returns the normalized destination or why not.
    pub check: &'a dyn Fn(&Path) -> Result<PathBuf, Denied>,
}

/// Persisted command state of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub session_id: String,
    pub pointer: Option<Dest>,
    pub active: bool,
    /// Destination path → recording id.
    pub registry: BTreeMap<PathBuf, String>,
    /// Ids of command events already handled (executed, rejected or skipped).
    pub done: BTreeSet<String>,
}

impl SessionState {
    pub fn new(session_id: impl Into<String>) -> SessionState {
        SessionState {
            session_id: session_id.into(),
            ..SessionState::default()
        }
    }

    /// The recording id for a destination: derived from the session and
    /// the path, so it is stable across restarts and re-registrations.
    pub fn recording_id(&self, path: &Path) -> String {
        let mut material = self.session_id.clone().into_bytes();
        material.push(0);
        material.extend_from_slice(path.as_os_str().as_encoded_bytes());
        let hex = crate::audit::hex_sha256(&material);
        format!("rec-{}", &hex[..16])
    }

    /// Whether events are currently appended, and where.
    pub fn recording(&self) -> Option<&Dest> {
        self.pointer.as_ref().filter(|_| self.active)
    }

    /// Apply one parsed command. Pure: the returned actions are what the
    /// orchestrator must do; `self` already reflects the new state.
    pub fn apply(&mut self, cmd: &Command, ctx: &Ctx<'_>) -> Outcome {
        if self.done.contains(ctx.event_id) {
            return Outcome::AlreadyDone;
        }
        if ctx.historical {
            self.done.insert(ctx.event_id.to_owned());
            return Outcome::SkippedHistorical;
        }
        if ctx.replayed {
            self.done.insert(ctx.event_id.to_owned());
            return Outcome::SkippedReplayed;
        }
        let outcome = self.decide(cmd, ctx);
        self.done.insert(ctx.event_id.to_owned());
        outcome
    }

    fn resolve(&self, cmd: &Command, ctx: &Ctx<'_>) -> Result<Dest, Denied> {
        let (raw, format) = match cmd.target() {
            Some(t) => t,
            None => match &self.pointer {
                Some(p) if cmd.name != Name::Export => return Ok(p.clone()),
                _ => commands::target_of(&(ctx.default_dest)().to_string_lossy()),
            },
        };
        let path = (ctx.check)(&raw)?;
        Ok(Dest { path, format })
    }

    fn register(&mut self, dest: &Dest) -> String {
        let id = self.recording_id(&dest.path);
        self.registry
            .entry(dest.path.clone())
            .or_insert_with(|| id.clone());
        id
    }

    fn decide(&mut self, cmd: &Command, ctx: &Ctx<'_>) -> Outcome {
        let mut actions = Vec::new();
        match cmd.name {
            Name::Stop => match self.recording().cloned() {
                Some(dest) => {
                    self.active = false;
                    let recording_id = self.register(&dest);
                    actions.push(Action::Stop { dest, recording_id });
                }
                None => return Outcome::Rejected("`::stop`: nothing is being recorded".into()),
            },
            Name::Init => {
                let dest = match self.resolve(cmd, ctx) {
                    Ok(d) => d,
                    Err(e) => return Outcome::Rejected(e.to_string()),
                };
                self.move_pointer(&dest, &mut actions);
                let recording_id = self.register(&dest);
                actions.push(Action::Prepare { dest, recording_id });
            }
            Name::Record => {
                let dest = match self.resolve(cmd, ctx) {
                    Ok(d) => d,
                    Err(e) => return Outcome::Rejected(e.to_string()),
                };
                if self.recording() == Some(&dest) {
                    return Outcome::Rejected(format!(
                        "`::record`: already recording to {}",
                        dest.path.display()
                    ));
                }
                self.move_pointer(&dest, &mut actions);
                let recording_id = self.register(&dest);
                self.active = true;
                actions.push(Action::Start {
                    dest,
                    recording_id,
                    from: ctx.at.clone(),
                });
            }
            Name::Capture => {
                let dest = match self.resolve(cmd, ctx) {
                    Ok(d) => d,
                    Err(e) => return Outcome::Rejected(e.to_string()),
                };
                self.move_pointer(&dest, &mut actions);
                let recording_id = self.register(&dest);
                self.active = true;
                actions.push(Action::Snapshot {
                    dest: dest.clone(),
                    recording_id: recording_id.clone(),
                    upto: ctx.at.clone(),
                });
                actions.push(Action::Start {
                    dest,
                    recording_id,
                    from: At {
                        message_id: ctx.at.message_id.clone(),
                        line: ctx.at.line + 1,
                    },
                });
            }
            Name::Export => {
                let dest = match self.resolve(cmd, ctx) {
                    Ok(d) => d,
                    Err(e) => return Outcome::Rejected(e.to_string()),
                };
                // Export changes nothing else: no pointer, no registry entry
                // beyond the id needed to name the snapshot.
                let recording_id = self.recording_id(&dest.path);
                actions.push(Action::Snapshot {
                    dest,
                    recording_id,
                    upto: ctx.at.clone(),
                });
            }
        }
        Outcome::Executed(actions)
    }

    /// Point P at `dest`; if another destination was being recorded, stop it
    /// first (its writer is ended after it flushed).
    fn move_pointer(&mut self, dest: &Dest, actions: &mut Vec<Action>) {
        if let Some(old) = self.recording().cloned() {
            if &old != dest {
                let recording_id = self.register(&old);
                actions.push(Action::Stop {
                    dest: old,
                    recording_id,
                });
                self.active = false;
            }
        }
        self.pointer = Some(dest.clone());
    }
}

/// A readable default file name: date, provider, a slug of the title and a
/// short session id, e.g. `2026-01-08-claude-fix-the-parser-0890bead.md`.
pub fn default_file_name(date: &str, provider: &str, title: &str, session_id: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.chars().count() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let short: String = session_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let date: String = date.chars().take(10).collect();
    let mut parts = vec![date, provider.to_owned()];
    if !slug.is_empty() {
        parts.push(slug.to_owned());
    }
    parts.push(short);
    format!("{}.md", parts.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::scan;

    struct Run {
        state: SessionState,
        n: u32,
    }

    impl Run {
        fn new() -> Run {
            Run {
                state: SessionState::new("s1"),
                n: 0,
            }
        }

        fn cmd(&mut self, line: &str, historical: bool) -> Outcome {
            self.n += 1;
            let parsed = scan(line).pop().unwrap().parsed.unwrap();
            let id = format!("m{}/cmd0", self.n);
            let deflt = || PathBuf::from("/exp/default");
            let check = |p: &Path| -> Result<PathBuf, Denied> {
                if p.starts_with("/exp") {
                    Ok(p.to_path_buf())
                } else {
                    Err(Denied {
                        reason: crate::policy::DenyReason::NotUnderRoot,
                        detail: p.display().to_string(),
                    })
                }
            };
            let ctx = Ctx {
                event_id: &id,
                at: At {
                    message_id: format!("m{}", self.n),
                    line: 0,
                },
                historical,
                replayed: false,
                default_dest: &deflt,
                check: &check,
            };
            self.state.apply(&parsed, &ctx)
        }

        fn live(&mut self, line: &str) -> Outcome {
            self.cmd(line, false)
        }
    }

    fn md(p: &str) -> Dest {
        Dest {
            path: p.into(),
            format: Format::Markdown,
        }
    }

    #[test]
    fn record_without_pointer_uses_default_and_sets_it() {
        let mut r = Run::new();
        let Outcome::Executed(a) = r.live("::record") else {
            panic!()
        };
        assert!(matches!(&a[..], [Action::Start { dest, .. }] if *dest == md("/exp/default.md")));
        assert_eq!(r.state.pointer, Some(md("/exp/default.md")));
        assert!(r.state.active);
    }

    #[test]
    fn init_then_record_then_stop_keeps_pointer() {
        let mut r = Run::new();
        assert!(
            matches!(r.live("::init /exp/a"), Outcome::Executed(a) if matches!(&a[..], [Action::Prepare { .. }]))
        );
        assert!(!r.state.active);
        assert!(
            matches!(r.live("::record"), Outcome::Executed(a) if matches!(&a[..], [Action::Start { dest, .. }] if *dest == md("/exp/a.md")))
        );
        assert!(
            matches!(r.live("::stop"), Outcome::Executed(a) if matches!(&a[..], [Action::Stop { .. }]))
        );
        assert_eq!(r.state.pointer, Some(md("/exp/a.md")));
        assert!(!r.state.active);
        // Stop again: nothing to stop, state unchanged.
        let before = r.state.clone();
        assert!(matches!(r.live("::stop"), Outcome::Rejected(_)));
        assert_eq!(r.state.pointer, before.pointer);
    }

    #[test]
    fn capture_snapshots_then_records_and_moves() {
        let mut r = Run::new();
        r.live("::record");
        let Outcome::Executed(a) = r.live("::capture /exp/b.jsonl") else {
            panic!()
        };
        assert!(matches!(&a[0], Action::Stop { dest, .. } if *dest == md("/exp/default.md")));
        assert!(matches!(&a[1], Action::Snapshot { dest, .. } if dest.format == Format::Jsonl));
        assert!(matches!(&a[2], Action::Start { from, .. } if from.line == 1));
        assert_eq!(r.state.registry.len(), 2);
    }

    #[test]
    fn export_changes_nothing_else() {
        let mut r = Run::new();
        r.live("::init /exp/a");
        let before = (
            r.state.pointer.clone(),
            r.state.active,
            r.state.registry.clone(),
        );
        assert!(
            matches!(r.live("::export /exp/e.md"), Outcome::Executed(a) if matches!(&a[..], [Action::Snapshot { .. }]))
        );
        assert_eq!(
            before,
            (
                r.state.pointer.clone(),
                r.state.active,
                r.state.registry.clone()
            )
        );
    }

    #[test]
    fn failing_command_changes_nothing() {
        let mut r = Run::new();
        r.live("::capture /exp/a");
        let before = r.state.clone();
        assert!(
            matches!(r.live("::capture /etc/passwd"), Outcome::Rejected(e) if e.contains("not under"))
        );
        assert_eq!(before.pointer, r.state.pointer);
        assert_eq!(before.active, r.state.active);
        assert_eq!(before.registry, r.state.registry);
    }

    #[test]
    fn historical_and_repeated_commands_are_not_executed() {
        let mut r = Run::new();
        assert_eq!(r.cmd("::record", true), Outcome::SkippedHistorical);
        assert!(r.state.pointer.is_none());
        // The same command event delivered twice (restart) runs once.
        let parsed = scan("::record").pop().unwrap().parsed.unwrap();
        let deflt = || PathBuf::from("/exp/d");
        let check = |p: &Path| -> Result<PathBuf, Denied> { Ok(p.to_path_buf()) };
        let ctx = Ctx {
            event_id: "x/cmd0",
            at: At {
                message_id: "x".into(),
                line: 0,
            },
            historical: false,
            replayed: false,
            default_dest: &deflt,
            check: &check,
        };
        assert!(matches!(r.state.apply(&parsed, &ctx), Outcome::Executed(_)));
        assert_eq!(r.state.apply(&parsed, &ctx), Outcome::AlreadyDone);
        // A copy of a command is skipped, and only once.
        let copy = Ctx {
            event_id: "y/cmd0",
            replayed: true,
            ..ctx
        };
        let before = r.state.clone();
        assert_eq!(r.state.apply(&parsed, &copy), Outcome::SkippedReplayed);
        assert_eq!(r.state.apply(&parsed, &copy), Outcome::AlreadyDone);
        assert_eq!(
            (&before.pointer, before.active, &before.registry),
            (&r.state.pointer, r.state.active, &r.state.registry)
        );
    }

    #[test]
    fn recording_ids_are_stable_per_destination() {
        let a = SessionState::new("s1");
        let b = SessionState::new("s1");
        assert_eq!(
            a.recording_id(Path::new("/x.md")),
            b.recording_id(Path::new("/x.md"))
        );
        assert_ne!(
            a.recording_id(Path::new("/x.md")),
            a.recording_id(Path::new("/y.md"))
        );
        assert_ne!(
            a.recording_id(Path::new("/x.md")),
            SessionState::new("s2").recording_id(Path::new("/x.md"))
        );
    }

    #[test]
    fn default_names_are_readable() {
        assert_eq!(
            default_file_name(
                "2026-01-08T15:56:38Z",
                "claude",
                "Fix the parser: now!",
                "0890bead-0ab3"
            ),
            "2026-01-08-claude-fix-the-parser-now-0890bead.md"
        );
        assert_eq!(
            default_file_name("2026-01-08", "codex", "", "abc"),
            "2026-01-08-codex-abc.md"
        );
    }
}
