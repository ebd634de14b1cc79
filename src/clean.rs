//! `kato clean`: remove kato's own per-session-file state (the cursor
//! file `<state>/files/<key>.json` and its event fingerprints `<key>.ids`)
//! for session files that no longer exist, or — with `--older-than DAYS`
//! — that have not changed for that long.
//!
//! Invariants:
//! - Only the state directory is writable while it runs (its domain):
//!   never an export, never an agent's file.
//! - It runs only while the daemon does not (it takes the daemon's lock):
//!   the daemon's view of its state never changes under it.
//! - Every removal is an audit record (`state.cleaned`).
//!
//! A session file whose state is removed and that is seen again is new to
//! the daemon: what it holds then is history (its commands are not run
//! again).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, Decision, Entry};
use crate::config::Config;
use crate::error::{exit, Error, Result};

/// `kato clean`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Also remove the state of session files unchanged for more than DAYS
    /// days (and quarantined state files set aside that long ago).
    #[arg(long, value_name = "DAYS", alias = "sessions")]
    pub older_than: Option<u64>,
    /// Report what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Why a state file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its session file no longer exists.
    Gone,
    /// Its session file has not changed for longer than asked.
    Older,
    /// A state file set aside as unreadable, longer ago than asked.
    Quarantined,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Gone => "the session file no longer exists",
            Reason::Older => "the session file is older than --older-than",
            Reason::Quarantined => "set aside as unreadable longer ago than --older-than",
        }
    }
}

/// One state removed (or that would be).
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// The session file the state was for (`None` for a quarantined file).
    pub session_file: Option<PathBuf>,
    /// The state files removed.
    pub state: Vec<PathBuf>,
    pub reason: Reason,
    pub bytes: u64,
}

/// What `kato clean` did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub state_dir: PathBuf,
    pub dry_run: bool,
    pub older_than_days: Option<u64>,
    pub removed: Vec<Removed>,
    /// Session files whose state was kept.
    pub kept: u64,
    pub bytes: u64,
}

/// The fields of a per-file state that clean reads (the rest is ignored).
#[derive(Debug, Deserialize)]
struct StateHead {
    path: PathBuf,
    #[serde(default)]
    mtime_ns: i64,
}

/// The last change of a session file as far as clean can tell: the newer
/// of what the state recorded and the file's own mtime.
fn last_change_secs(head: &StateHead) -> i64 {
    let recorded = head.mtime_ns.div_euclid(1_000_000_000);
    match std::fs::metadata(&head.path) {
        Ok(m) => recorded.max(m.mtime()),
        Err(_) => recorded,
    }
}

fn gone(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound)
}

fn size(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).map_or(0, |m| m.len())
}

/// Decide what goes, reading the state directory only.
pub fn plan(state_dir: &Path, older_than: Option<u64>, now: i64) -> io::Result<Report> {
    let cutoff =
        older_than.map(|d| now - i64::try_from(d.saturating_mul(86_400)).unwrap_or(i64::MAX));
    let mut report = Report {
        state_dir: state_dir.to_path_buf(),
        dry_run: false,
        older_than_days: older_than,
        removed: Vec::new(),
        kept: 0,
        bytes: 0,
    };
    let files = state_dir.join("files");
    let mut names: Vec<PathBuf> = match std::fs::read_dir(&files) {
        Ok(d) => d.flatten().map(|e| e.path()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    names.sort();
    for json in names
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
    {
        // An unreadable state file is the daemon's to quarantine.
        let Some(head) = std::fs::read(json)
            .ok()
            .and_then(|b| serde_json::from_slice::<StateHead>(&b).ok())
        else {
            report.kept += 1;
            continue;
        };
        let reason = if gone(&head.path) {
            Some(Reason::Gone)
        } else if cutoff.is_some_and(|c| last_change_secs(&head) <= c) {
            Some(Reason::Older)
        } else {
            None
        };
        let Some(reason) = reason else {
            report.kept += 1;
            continue;
        };
        let mut state = vec![json.clone()];
        let ids = json.with_extension("ids");
        if !gone(&ids) {
            state.push(ids);
        }
        let bytes = state.iter().map(|p| size(p)).sum();
        report.bytes += bytes;
        report.removed.push(Removed {
            session_file: Some(head.path),
            state,
            reason,
            bytes,
        });
    }
    if let Some(cutoff) = cutoff {
        let quarantine = state_dir.join("quarantine");
        let mut set_aside: Vec<PathBuf> = std::fs::read_dir(&quarantine)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        set_aside.sort();
        for p in set_aside {
            let old = std::fs::symlink_metadata(&p)
                .is_ok_and(|m| m.file_type().is_file() && m.mtime() <= cutoff);
            if old {
                let bytes = size(&p);
                report.bytes += bytes;
                report.removed.push(Removed {
                    session_file: None,
                    state: vec![p],
                    reason: Reason::Quarantined,
                    bytes,
                });
            }
        }
    }
    Ok(report)
}

/// `kato clean`.
pub fn command(cfg: &Config, args: CleanArgs) -> Result<i32> {
    use crate::sandbox::{self, profiles};
    let mode = cfg.sandbox_mode;
    let hardened = sandbox::harden_process(mode)?;
    crate::export::report_degraded("startup", &hardened.missing);
    let state_dir = &cfg.state_dir;
    if !state_dir.is_dir() {
        return print(
            &Report {
                state_dir: state_dir.clone(),
                dry_run: args.dry_run,
                older_than_days: args.older_than,
                removed: Vec::new(),
                kept: 0,
                bytes: 0,
            },
            args.json,
        );
    }
    // Only the state directory: nothing else can be removed or written.
    let domain = profiles::union(&[
        profiles::startup(cfg.source.as_deref()),
        profiles::orchestrator(None, state_dir, state_dir),
    ]);
    let applied = domain.apply(mode)?;
    crate::export::report_degraded("clean", &applied.missing);
    let _lock = crate::daemon::lifecycle::Lock::acquire(state_dir).map_err(|e| match e {
        Error::Daemon(m) => Error::Daemon(format!(
            "{m}; kato clean changes the daemon's state, so stop it first (`kato stop`)"
        )),
        other => other,
    })?;
    let mut report = plan(state_dir, args.older_than, crate::sync::now_secs())
        .map_err(|e| Error::io(format!("reading {}", state_dir.display()), e))?;
    report.dry_run = args.dry_run;
    if !args.dry_run && !report.removed.is_empty() {
        remove(state_dir, &report)?;
    }
    print(&report, args.json)
}

/// Remove what `report` lists, each with its audit record first.
fn remove(state_dir: &Path, report: &Report) -> Result<()> {
    let log_path = state_dir.join(crate::audit::FILE_NAME);
    let mut log = crate::audit::AuditLog::open(&log_path)
        .map_err(|e| Error::Daemon(format!("{}: {e}", log_path.display())))?
        .log;
    // The copy of every state file a clean stop left would bring back
    // what is removed below.
    crate::daemon::state::forget_snapshot(state_dir).map_err(|e| {
        Error::io(
            format!("removing the state snapshot in {}", state_dir.display()),
            e,
        )
    })?;
    for r in &report.removed {
        log.append(Entry {
            stage: "clean".into(),
            event: AuditEvent::StateCleaned,
            decision: Decision::Info,
            target: r
                .session_file
                .as_ref()
                .or(r.state.first())
                .map(|p| p.display().to_string()),
            reason: Some(r.reason.as_str().to_owned()),
            detail: serde_json::json!({
                "state": r.state.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "bytes": r.bytes,
            }),
            ..Entry::default()
        })
        .map_err(|e| Error::Daemon(format!("{}: {e}", log_path.display())))?;
        for p in &r.state {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing {}", p.display()), e)),
            }
        }
    }
    Ok(())
}

fn print(report: &Report, json: bool) -> Result<i32> {
    let werr = |e| Error::io("writing to stdout", e);
    if json {
        let mut out = crate::terminal::stdout();
        crate::terminal::json(&mut out, report).map_err(werr)?;
        return Ok(exit::OK);
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for r in &report.removed {
        let what = r
            .session_file
            .as_ref()
            .or(r.state.first())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        crate::terminal::println(&format!("{verb} state of {what}: {}", r.reason.as_str()))
            .map_err(werr)?;
    }
    crate::terminal::println(&format!(
        "{}: {verb} the state of {} session file(s) ({} bytes); kept {}",
        report.state_dir.display(),
        report.removed.len(),
        report.bytes,
        report.kept
    ))
    .map_err(werr)?;
    Ok(exit::OK)
}
