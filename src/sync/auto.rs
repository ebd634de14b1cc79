//! The daemon's autosync (`[sync]` in the config): a stage thread that
//! keeps a synced tree current as sessions grow.
//!
//! The orchestrator nudges it whenever a batch of events arrives; the
//! stage waits until the sessions are quiet for [`DEBOUNCE`] (at most
//! [`MAX_DELAY`]), then runs one pass, exactly as `kato sync` does: only
//! changed sessions are read, each output is replaced atomically, an
//! output someone edited is left alone. Every pass reports back to the
//! orchestrator, which audits each file written or refused and shows the
//! last pass in `kato status`.
//!
//! Its domain ([`crate::sandbox::profiles::sync_stage`]): read the
//! provider roots, own the sync directory; nothing else.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Inline, Layout, Options, Progress, Summary};
use crate::config::Config;
use crate::event::ProviderId;
use crate::export::ExportFormat;
use crate::sandbox::{profiles, Confiner, SandboxError, Stage, StageName};

/// Quiet time after the last change before a pass.
pub const DEBOUNCE: Duration = Duration::from_secs(1);
/// A session that never goes quiet is still synced this often.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// `[sync]` as resolved: present only when a directory is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub dir: PathBuf,
    pub prefix: Option<String>,
    pub layout: Layout,
    pub format: ExportFormat,
    /// Empty: every enabled provider.
    pub providers: Vec<ProviderId>,
}

impl Settings {
    /// Where the tree and its manifest are.
    pub fn root(&self) -> PathBuf {
        match &self.prefix {
            Some(p) => self.dir.join(p),
            None => self.dir.clone(),
        }
    }

    /// The options of one pass.
    pub fn options(&self, cfg: &Config) -> Options {
        Options {
            dir: self.dir.clone(),
            prefix: self.prefix.clone(),
            layout: self.layout,
            format: self.format,
            providers: self.providers.clone(),
            since: None,
            markdown: cfg.markdown.clone(),
            file_mode: cfg.file_mode,
            dry_run: false,
        }
    }
}

/// What `kato status` shows of autosync.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncStatus {
    pub dir: PathBuf,
    pub layout: String,
    pub format: String,
    pub passes: u64,
    pub last_pass_at: Option<String>,
    pub last_pass_seconds: f64,
    pub sessions: u64,
    /// Totals over every pass since start.
    pub written: u64,
    pub updated: u64,
    /// Of the last pass.
    pub unchanged: u64,
    pub conflicts: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

impl SyncStatus {
    pub fn new(s: &Settings) -> SyncStatus {
        SyncStatus {
            dir: s.root(),
            layout: s.layout.as_str().to_owned(),
            format: super::format_name(s.format),
            ..SyncStatus::default()
        }
    }

    /// Account one pass.
    pub fn record(&mut self, pass: &Result<Summary, String>) {
        self.passes += 1;
        self.last_pass_at = Some(crate::audit::now_rfc3339());
        match pass {
            Ok(s) => {
                self.last_pass_seconds = s.seconds;
                self.sessions = s.sessions;
                self.written += s.written;
                self.updated += s.updated;
                self.unchanged = s.unchanged;
                self.conflicts = s.conflicts;
                self.failed = s.failed;
                self.last_error = None;
            }
            Err(e) => self.last_error = Some(e.clone()),
        }
    }
}

/// The autosync line of `kato status`.
pub fn render_status(out: &mut dyn std::io::Write, s: &SyncStatus) -> std::io::Result<()> {
    let last = match &s.last_pass_at {
        Some(at) => format!(
            "last pass {at} ({} sessions: {} unchanged, {} left alone, {} failed)",
            s.sessions, s.unchanged, s.conflicts, s.failed
        ),
        None => "no pass yet".to_owned(),
    };
    writeln!(
        out,
        "autosync: {} ({}, {}); {} written, {} updated since start; {last}",
        s.dir.display(),
        s.format,
        s.layout,
        s.written,
        s.updated
    )?;
    if let Some(e) = &s.last_error {
        writeln!(out, "  last pass failed: {e}")?;
    }
    Ok(())
}

/// The orchestrator's handle on the autosync stage.
pub struct Handle {
    nudge: SyncSender<()>,
    _stage: Stage<()>,
}

impl Handle {
    /// No more passes: the stage ends after the one it may be running.
    pub fn close(self) -> Stage<()> {
        drop(self.nudge);
        self._stage
    }

    /// Sessions changed: a pass follows once they are quiet.
    pub fn nudge(&self) {
        // Full: a pass is already due.
        let _ = self.nudge.try_send(());
    }
}

/// Create the sync tree's root before the supervisor's domain is applied
/// (a Landlock rule needs an existing directory).
pub fn prepare(cfg: &Config) -> Option<String> {
    let s = cfg.sync.as_ref()?;
    match super::prepare(&s.options(cfg)) {
        Ok(_) => None,
        Err(e) => Some(format!("autosync: {e}")),
    }
}

/// Start the stage: one pass at once, then one after each quiet spell.
/// `report` gets each pass's outcome.
pub fn spawn(
    confiner: &Confiner,
    cfg: &Config,
    report: impl Fn(Result<Summary, String>) -> bool + Send + 'static,
) -> Option<Result<Handle, SandboxError>> {
    let settings = cfg.sync.clone()?;
    let domain = profiles::sync_stage(cfg, &settings.root());
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let cfg = cfg.clone();
    let stage = confiner.spawn(StageName::Sync, domain, move || {
        run(&cfg, &settings, &rx, &report);
    });
    Some(stage.map(|s| Handle {
        nudge: tx,
        _stage: s,
    }))
}

fn run(
    cfg: &Config,
    settings: &Settings,
    rx: &Receiver<()>,
    report: &dyn Fn(Result<Summary, String>) -> bool,
) {
    let opts = settings.options(cfg);
    let redactor = match crate::redact::Redactor::new(&cfg.redaction) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            report(Err(e.to_string()));
            return;
        }
    };
    let mut inline = Inline {
        limits: crate::export::limits(cfg),
        redactor,
        format: opts.format,
        markdown: opts.markdown.clone(),
    };
    loop {
        let pass = super::Manifest::load(&opts.root())
            .and_then(|m| super::plan(super::select(cfg, &opts, &m), &opts, m))
            .and_then(|p| super::commit(p, &opts, &mut inline, &mut Progress::off()))
            .map_err(|e| e.to_string());
        if !report(pass) {
            return;
        }
        // Wait for a change, then for quiet.
        if rx.recv().is_err() {
            return;
        }
        let first = Instant::now();
        loop {
            let left = MAX_DELAY.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(DEBOUNCE.min(left)) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}
