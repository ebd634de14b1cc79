//! The daemon (`kato run`): watch+parse stages, the orchestrator, durable
//! state and status.
//!
//! Threads (std threads, std channels; one stage per thread so each can be
//! confined to its own Landlock domain, SPEC §2 and §8):
//!
//! ```text
//! kato-claude ─┐  (watch+parse, one per enabled provider: inotify + reader)
//! kato-codex  ─┼─► bounded channel ─► kato-orch: orchestrator ─► <state>/files/*
//! kato-gemini ─┘                        │                      └► <runtime>/status.json
//! kato-signals ─────────────────────────┘ (SIGTERM/SIGINT/SIGHUP)
//! kato-writers   (writer-spawner: creates one writer per destination)
//! kato-log       (detached mode: owns and rotates kato.log)
//! main thread    supervisor: the process-wide domain; creates every thread
//!                above on request ([`confine`])
//! ```
//!
//! Inside `kato-orch`, one type per job: `supervise` starts and restarts
//! the stage threads, `ingest` turns batches into committed and flushed
//! per-file state, `report` keeps what `kato status` shows, and `record`
//! runs commands (decided by the pure `command::plan`) and recordings. `Daemon` only routes each message to its owner.
//!
//! Invariants:
//! - A parse stage never writes anything; it sends `(file, events, next
//!   cursor, diagnostics)` to the orchestrator.
//! - The orchestrator persists a cursor only after handling the events
//!   before it, together with the aggregates those events produced; a crash
//!   re-delivers events instead of losing them, and re-delivered events
//!   are recognised by their event id. Events held back behind a pending
//!   snapshot are not handled yet: their files' cursors wait too.
//! - Watches are only ever added on directories under the configured
//!   roots; a missing root is polled on the heartbeat, never by watching
//!   its parent.
//! - An idle daemon wakes once per heartbeat (5 s) plus once per safety-net
//!   rescan (`[daemon] rescan_secs`, default 300 s).

mod auditor;
mod command;
pub mod confine;
mod ingest;
pub mod lifecycle;
pub mod log;
pub(crate) mod record;
mod report;
mod seen;
pub mod state;
pub mod status;
mod supervise;
mod watch;

use std::panic;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::audit::{AuditEvent, Decision, Entry};
use crate::config::{Config, LogFormat};
use crate::error::{exit, Error, Result};
use crate::event::{Event, ProviderId};
use crate::reader::{Cursor, FileIdentity, Reset};
use crate::sandbox::{profiles, Confiner, StageName};

use self::ingest::Ingest;
use self::report::{Phase, Report};
use self::status::{rfc3339, RootStatus, Status};
pub use self::supervise::backoff;
use self::supervise::Supervisor;

/// Seconds between heartbeats: status rewrite, missing-root checks.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Batches in flight from the parse stages (back-pressure).
const CHANNEL_BOUND: usize = 16;
/// How long an orderly shutdown waits for the stages.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// Where a parse pass ended: sent with the last batch of a pass.
#[derive(Debug, Clone)]
pub(crate) struct Commit {
    pub cursor: Cursor,
    /// Size and mtime observed before the pass.
    pub size: u64,
    pub mtime_ns: i64,
    pub reset: Option<Reset>,
    /// Malformed records skipped by the pass.
    pub diagnostics: usize,
    pub bytes: u64,
}

/// Events of one file from the parse stage.
#[derive(Debug)]
pub(crate) struct Batch {
    pub provider: ProviderId,
    pub path: PathBuf,
    pub events: Vec<Event>,
    /// `events[..live_from]` are history (present when kato first saw the
    /// file); the rest is live.
    pub live_from: usize,
    /// The pass started the file over (truncated, replaced, unreadable
    /// state): events already handled come again and must be dropped.
    pub replay: bool,
    /// Set on the last batch of a pass; earlier batches of a large pass
    /// carry events only.
    pub commit: Option<Commit>,
}

/// Everything the orchestrator receives.
#[derive(Debug)]
pub(crate) enum ToOrch {
    Batch(Batch),
    Roots {
        provider: ProviderId,
        roots: Vec<RootStatus>,
    },
    Ready {
        provider: ProviderId,
    },
    Backlog {
        provider: ProviderId,
        files: usize,
    },
    Warning {
        provider: ProviderId,
        message: String,
    },
    Quarantine {
        provider: ProviderId,
        path: PathBuf,
        identity: Option<FileIdentity>,
        reason: String,
    },
    /// A session file that is not read, and why (a symbolic link, a
    /// document too large or not valid, a file that cannot be opened);
    /// `None`: the path skipped before is gone.
    Skipped {
        provider: ProviderId,
        path: PathBuf,
        reason: Option<String>,
    },
    /// A file known from the state no longer exists under a present root.
    Gone {
        provider: ProviderId,
        path: PathBuf,
    },
    /// A file the stage must read is not in its domain (created after it
    /// started): the supervisor checks whether a new stage would have it.
    Regrant {
        provider: ProviderId,
    },
    /// The stage thread ended (its last message).
    Exited {
        provider: ProviderId,
        error: Option<String>,
    },
    Signal(i32),
    /// Events of a snapshot replay (capture/export), in order.
    Replayed {
        key: record::ReplayKey,
        events: Vec<Event>,
        done: bool,
    },
    /// An autosync pass ended.
    Synced(Box<std::result::Result<crate::sync::Summary, String>>),
}

/// A file the state knows, handed to its provider's stage at start.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub path: PathBuf,
    pub cursor: Cursor,
    pub size: u64,
    pub mtime_ns: i64,
    /// `Some` when quarantined: the identity the verdict applies to.
    pub quarantined: Option<Option<FileIdentity>>,
}

// ---------------------------------------------------------------------------
// The orchestrator
// ---------------------------------------------------------------------------

/// How `kato run` was started.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Started by `kato start`: log to `kato.log`, ignore SIGHUP.
    pub detached: bool,
    /// `--log-format` override.
    pub log_format: Option<LogFormat>,
}

/// The orchestrator thread: receives everything the stages send and
/// hands it to the part that owns it.
struct Daemon {
    cfg: Config,
    opts: RunOptions,
    rx: Receiver<ToOrch>,
    /// Stage threads: start, restart, stop.
    supervisor: Supervisor,
    /// Session files: batches, cursors, persistence.
    ingest: Ingest,
    /// Counters, warnings, phase; status.json.
    report: Report,
    /// Commands and recordings.
    recorder: record::Recorder,
    next_heartbeat: Instant,
    /// The autosync stage (`[sync]`), and what `kato status` shows of it.
    autosync: Option<crate::sync::auto::Handle>,
    sync_status: Option<crate::sync::auto::SyncStatus>,
}

/// `kato run`: the daemon in the foreground until SIGTERM/SIGINT.
///
/// Start-up order (SPEC §8), all on the main thread before any other
/// thread exists:
///
/// 1. re-execute with a clean environment when it holds anything kato
///    does not read ([`confine::clean_environment`]);
/// 2. harden the process: no_new_privs, no capabilities, no core dumps;
/// 3. remove every variable but [`confine::RUNTIME_ENV`];
/// 4. create the directories the domain names (state, runtime, logs when
///    detached, the default export directory) and take the lock;
/// 5. confine the main thread to the union of every stage
///    ([`profiles::supervisor`]) — from here on it is the supervisor;
/// 6. only then start threads: the log writer, then the orchestrator
///    (`kato-orch`), which asks the supervisor for every other thread.
///
/// In enforce mode any shortfall in steps 2 and 5 ends `kato run` with a
/// message naming the missing kernel feature; in best-effort mode it runs
/// degraded and says so.
pub fn run(cfg: Config, opts: RunOptions) -> Result<i32> {
    let mode = cfg.sandbox_mode;
    let env = confine::clean_environment();
    // The supervisor's name (a re-execution through /proc/self/exe is
    // otherwise called `exe`).
    let _ = rustix::thread::set_name(c"kato");
    let hardened = crate::sandbox::harden_process(mode)?;
    crate::sandbox::scrub_environment(confine::RUNTIME_ENV);
    let env_kept: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    let mut dirs = vec![&cfg.state_dir, &cfg.runtime_dir];
    if opts.detached {
        dirs.push(&cfg.logs_dir);
    }
    for dir in dirs {
        state::ensure_private_dir(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let export_note = confine::prepare_default_export_dir(&cfg);
    let sync_note = crate::sync::auto::prepare(&cfg);
    let lock = lifecycle::Lock::acquire(&cfg.state_dir)?;
    let (union, grants) = profiles::supervisor(&cfg, opts.detached);
    let applied = match union.apply(mode) {
        Ok(a) => Ok(a),
        Err(e) if mode == crate::sandbox::SandboxMode::Enforce => return Err(e.into()),
        Err(e) => Err(e),
    };
    let record = Arc::new(confine::Record::new(confine::Startup {
        mode,
        hardened: &hardened,
        env: &env,
        env_kept,
        supervisor: &union,
        applied: applied.as_ref(),
        grants: &grants,
    }));
    // The main thread is the supervisor: it creates every stage thread.
    let (confiner, supervisor) = Confiner::supervised(mode);
    let confine = confine::Confinement::new(confiner, record);

    let format = opts.log_format.unwrap_or(cfg.log_format);
    // The audit chain head, written at the top of every rotated log file.
    let head = crate::audit::HeadCell::default();
    let _log = log::init(
        &confine.confiner,
        format,
        &cfg.log_level,
        opts.detached,
        &cfg.logs_dir,
        head.clone(),
    )?;
    install_panic_hook();
    for note in export_note.into_iter().chain(sync_note) {
        tracing::warn!("{note}");
    }
    for g in &grants {
        tracing::info!(
            root = %g.root.display(),
            granted = %g.granted.display(),
            "provider root missing: the supervisor reads its nearest existing ancestor until it appears"
        );
    }
    let result = run_logged(cfg, opts, lock, confine, supervisor, head);
    if let Err(e) = &result {
        tracing::error!("kato run failed: {e}");
    }
    result
}

/// The main thread becomes the supervisor: it starts the orchestrator
/// thread, then creates the threads it asks for until it ends.
fn run_logged(
    cfg: Config,
    opts: RunOptions,
    lock: lifecycle::Lock,
    confine: confine::Confinement,
    supervisor: crate::sandbox::Supervisor,
    head: crate::audit::HeadCell,
) -> Result<i32> {
    let domain = profiles::orchestrator(cfg.source.as_deref(), &cfg.state_dir, &cfg.runtime_dir);
    let confiner = confine.confiner.clone();
    let orchestrator = confiner.spawn(StageName::Orchestrator, domain, move || -> Result<i32> {
        let mut daemon = Daemon::new(cfg, opts, confine)?;
        daemon.recorder.audit.publish_to(head);
        daemon.run()
    });
    // Only the orchestrator and the stages hold the confiner now: the
    // supervisor serves them until they are all gone.
    drop(confiner);
    let orchestrator = orchestrator?;
    supervisor.serve();
    let result = orchestrator.join().unwrap_or_else(|_| {
        Err(Error::Daemon(
            "the orchestrator panicked (location in the log)".into(),
        ))
    });
    drop(lock);
    result
}

/// Panics are contained per file or per stage; the report names the place,
/// never the payload (which may quote chat content) above debug level.
fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        let thread = thread::current();
        let name = thread.name().unwrap_or("?").to_owned();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(thread = %name, %location, "panic (contained)");
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::debug!(thread = %name, %location, payload = %payload, "panic payload");
    }));
}

impl Daemon {
    fn new(cfg: Config, opts: RunOptions, confine: confine::Confinement) -> Result<Daemon> {
        let mut ingest = Ingest::open(&cfg)?;
        let (tx, rx) = mpsc::sync_channel(CHANNEL_BOUND);
        let mut report = Report::new();
        ingest.load(cfg.registry, &mut report);
        let recorder = record::Recorder::new(&cfg);
        Ok(Daemon {
            cfg,
            opts,
            rx,
            supervisor: Supervisor::new(tx, confine),
            ingest,
            report,
            recorder,
            next_heartbeat: Instant::now() + HEARTBEAT,
            autosync: None,
            sync_status: None,
        })
    }

    fn run(&mut self) -> Result<i32> {
        tracing::info!(
            pid = std::process::id(),
            version = env!("CARGO_PKG_VERSION"),
            state = %self.cfg.state_dir.display(),
            "kato starting"
        );
        let signals = spawn_signals(
            &self.supervisor.confine.confiner,
            self.supervisor.tx.clone(),
        )?;
        self.supervisor
            .spawn_writer_spawner(&self.cfg, &mut self.report);
        self.spawn_autosync();
        self.supervisor.add_slots(&self.cfg);
        for i in 0..self.supervisor.slots.len() {
            self.spawn_stage(i);
        }
        self.report.phase = Phase::Running;
        // Finish recordings a crash interrupted (intents, snapshots).
        for key in self.recorder.unlocated() {
            if let Some(path) = self.ingest.main_file(key.provider, &key.session) {
                self.recorder.locate(&key, path);
            }
        }
        let mut links = self.supervisor.links(self.recorder.policy().clone());
        self.recorder.recover(&mut links);
        self.recorder.audit.log_head("start");
        self.drain_recorder_warnings();
        self.check_ready();
        self.write_status();

        let code = self.event_loop();

        signals.close();
        self.shutdown();
        Ok(code)
    }

    /// The main loop: returns when a stop signal arrives.
    fn event_loop(&mut self) -> i32 {
        loop {
            let now = Instant::now();
            let deadline = self.next_deadline(now);
            let msg = match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(now))
            {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return exit::FAILURE,
            };
            if let Some(m) = msg {
                if let Some(code) = self.handle(m) {
                    return code;
                }
                // Handle everything already queued before the timed work.
                while let Ok(m) = self.rx.try_recv() {
                    if let Some(code) = self.handle(m) {
                        return code;
                    }
                }
            }
            self.timed_work(Instant::now());
        }
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        [
            self.ingest.next_flush(),
            self.report.next_write(now),
            self.supervisor.next_restart(),
        ]
        .into_iter()
        .flatten()
        .fold(self.next_heartbeat, Instant::min)
        .max(now)
    }

    fn timed_work(&mut self, now: Instant) {
        let heartbeat = now >= self.next_heartbeat;
        if heartbeat {
            self.next_heartbeat = now + HEARTBEAT;
            let mut links = self.supervisor.links(self.recorder.policy().clone());
            self.recorder.heartbeat(&mut links);
            self.recorder.audit.heartbeat();
            self.drain_recorder_warnings();
            self.supervisor.check_stage_roots();
        }
        for i in self.supervisor.take_due_restarts(now) {
            self.spawn_stage(i);
        }
        if self.ingest.flush_due(now) {
            self.flush();
        }
        if heartbeat || (self.report.dirty && self.report.may_write(now)) {
            self.write_status();
        }
    }

    /// Handle one message; `Some(code)` ends the loop.
    fn handle(&mut self, m: ToOrch) -> Option<i32> {
        match m {
            ToOrch::Batch(b) => self.handle_batch(b),
            ToOrch::Roots { provider, roots } => {
                if let Some(s) = self.supervisor.slot_mut(provider) {
                    s.root_status = roots;
                }
                self.report.dirty = true;
            }
            ToOrch::Ready { provider } => {
                if let Some(s) = self.supervisor.slot_mut(provider) {
                    s.ready = true;
                }
                tracing::info!(provider = %provider, "stage ready");
                self.check_ready();
            }
            ToOrch::Backlog { provider, files } => {
                if let Some(s) = self.supervisor.slot_mut(provider) {
                    s.backlog = files;
                }
                self.report.dirty = true;
            }
            ToOrch::Warning { provider, message } => self.report.warn(provider.as_str(), message),
            ToOrch::Quarantine {
                provider,
                path,
                identity,
                reason,
            } => self
                .ingest
                .quarantine(provider, path, identity, reason, &mut self.report),
            ToOrch::Skipped {
                provider,
                path,
                reason,
            } => match reason {
                Some(r) => self.report.skip(provider, path, r),
                None => self.report.unskip(&path),
            },
            ToOrch::Gone { provider, path } => self.ingest.gone(provider, path, &mut self.report),
            ToOrch::Regrant { provider } => self.supervisor.regrant(provider),
            ToOrch::Exited { provider, error } => self.stage_exited(provider, error),
            ToOrch::Replayed { key, events, done } => {
                let mut links = self.supervisor.links(self.recorder.policy().clone());
                self.recorder.on_replayed(&key, &events, done, &mut links);
                self.drain_recorder_warnings();
                // The recording's progress shows in status.
                self.report.dirty = true;
            }
            ToOrch::Synced(pass) => self.on_synced(*pass),
            ToOrch::Signal(sig) => return self.on_signal(sig),
        }
        None
    }

    /// Start the autosync stage when `[sync]` asks for it.
    fn spawn_autosync(&mut self) {
        let tx = self.supervisor.tx.clone();
        let spawned =
            crate::sync::auto::spawn(&self.supervisor.confine.confiner, &self.cfg, move |pass| {
                tx.send(ToOrch::Synced(Box::new(pass))).is_ok()
            });
        match spawned {
            Some(Ok(h)) => {
                self.autosync = Some(h);
                self.sync_status = self
                    .cfg
                    .sync
                    .as_ref()
                    .map(crate::sync::auto::SyncStatus::new);
            }
            Some(Err(e)) => self
                .report
                .warn("sync", format!("autosync cannot start: {e}")),
            None => {}
        }
    }

    /// An autosync pass ended: audit what it wrote or refused, show it.
    fn on_synced(&mut self, pass: std::result::Result<crate::sync::Summary, String>) {
        use crate::sync::Action;
        match &pass {
            Ok(s) => {
                for i in &s.items {
                    let (event, decision) = match i.action {
                        Action::Write | Action::Update => {
                            (AuditEvent::WriteAllowed, Decision::Allow)
                        }
                        Action::Conflict | Action::Failed => {
                            (AuditEvent::WriteDenied, Decision::Deny)
                        }
                        Action::Unchanged => continue,
                    };
                    self.recorder.audit(Entry {
                        stage: "sync".into(),
                        event,
                        decision,
                        provider: Some(i.provider.as_str().to_owned()),
                        session: Some(i.session_id.clone()),
                        target: Some(s.dir.join(&i.output).display().to_string()),
                        reason: Some(format!(
                            "autosync {}: {}",
                            crate::sync::action_name(i.action),
                            i.reason
                        )),
                        ..Entry::default()
                    });
                }
            }
            Err(e) => self
                .report
                .warn("sync", format!("autosync pass failed: {e}")),
        }
        if let Some(st) = self.sync_status.as_mut() {
            st.record(&pass);
        }
        self.drain_recorder_warnings();
        self.report.dirty = true;
    }

    fn on_signal(&mut self, sig: i32) -> Option<i32> {
        if sig == signal_hook::consts::SIGHUP && self.opts.detached {
            tracing::info!("SIGHUP ignored (detached); `kato restart` reloads the configuration");
            return None;
        }
        tracing::info!(signal = signal_name(sig), "stopping");
        Some(exit::OK)
    }

    /// Move the recorder's and the audit log's messages into the status warnings.
    fn drain_recorder_warnings(&mut self) {
        for m in std::mem::take(&mut self.recorder.warnings) {
            self.report.warn("recording", m);
        }
        for m in std::mem::take(&mut self.recorder.audit.warnings) {
            self.report.warn("audit", m);
        }
    }

    fn check_ready(&mut self) {
        if !self.report.ready && self.supervisor.slots.iter().all(|s| s.ready) {
            if let Some(ms) = self.report.become_ready() {
                tracing::info!(ms, "ready");
            }
            // Written at once: `kato start` waits for it.
            self.write_status();
        }
        self.report.dirty = true;
    }

    /// One batch: ingest accounts it, the recorder runs its commands and
    /// recordings before the cursor covering them is committed.
    fn handle_batch(&mut self, b: Batch) {
        let provider = b.provider;
        if let Some(sync) = &self.autosync {
            if !b.events.is_empty() || b.replay {
                sync.nudge();
            }
        }
        let malformed = b
            .commit
            .as_ref()
            .filter(|c| c.diagnostics > 0)
            .map(|c| (c.diagnostics, b.path.clone()));
        let recorder = &mut self.recorder;
        let mut links = self.supervisor.links(recorder.policy().clone());
        self.ingest.handle_batch(b, &mut self.report, |path, kept| {
            recorder.on_events(path, kept, &mut links);
        });
        if let Some((records, path)) = malformed {
            self.recorder.audit(Entry {
                stage: format!("parse:{provider}"),
                event: AuditEvent::InputMalformed,
                decision: Decision::Skip,
                provider: Some(provider.as_str().to_owned()),
                target: Some(path.display().to_string()),
                reason: Some("malformed records skipped; the rest of the file was read".into()),
                detail: serde_json::json!({ "records": records }),
                ..Entry::default()
            });
        }
        self.drain_recorder_warnings();
    }

    /// Persist the committed state of changed files (a chunk of them, the
    /// rest at the next turn of the loop), except the cursors of files
    /// whose events wait behind a snapshot or changed a recording state
    /// not saved yet.
    fn flush(&mut self) {
        let held = self.recorder.held();
        self.ingest.flush(&mut self.report, &held);
    }

    /// At a stop: persist every changed file's committed state that can be.
    fn flush_all(&mut self) {
        let held = self.recorder.held();
        self.ingest.flush_all(&mut self.report, &held);
    }

    fn spawn_stage(&mut self, i: usize) {
        let known = self.ingest.known(self.supervisor.slots[i].name());
        self.supervisor
            .spawn_stage(i, known, &self.cfg, &mut self.report);
    }

    fn stage_exited(&mut self, provider: ProviderId, error: Option<String>) {
        // Events of an unfinished pass come again from the committed cursor;
        // replays it was asked for are asked again.
        self.ingest.drop_pending(provider);
        self.recorder.replays_lost(provider);
        let stopping = self.report.phase != Phase::Running;
        if let Some(i) = self
            .supervisor
            .stage_exited(provider, error, stopping, &mut self.report)
        {
            self.spawn_stage(i);
        }
    }

    fn shutdown(&mut self) {
        self.recorder.shutdown();
        self.report.phase = Phase::Stopping;
        self.report.ready = false;
        self.write_status();
        self.supervisor.stop_stages();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.supervisor.any_running() {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    "stages did not stop within {SHUTDOWN_GRACE:?}; persisting what was handled"
                );
                break;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(ToOrch::Signal(_)) => {}
                Ok(m) => {
                    let _ = self.handle(m);
                }
                Err(_) => break,
            }
        }
        self.supervisor.stop_writers();
        self.stop_autosync(deadline);
        self.flush_all();
        match self.ingest.snapshot() {
            Ok(files) => tracing::info!(files, "state snapshot written for the next start"),
            Err(e) => {
                tracing::info!("no state snapshot ({e}): the next start reads each state file")
            }
        }
        self.report.phase = Phase::Stopped;
        self.write_status();
        self.recorder.audit.log_head("stop");
        tracing::info!("kato stopped");
    }

    /// Let a running autosync pass finish (its files are replaced
    /// atomically either way), handling what it reports, until `deadline`.
    fn stop_autosync(&mut self, deadline: Instant) {
        let Some(h) = self.autosync.take() else {
            return;
        };
        let stage = h.close();
        while !stage.is_finished() && Instant::now() < deadline {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(ToOrch::Synced(pass)) => self.on_synced(*pass),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    fn build_status(&self) -> Status {
        let summary = self.ingest.summary();
        let now = SystemTime::now();
        let report = &self.report;
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            state: report.phase,
            ready: report.ready,
            started_at: rfc3339(report.started_at),
            started_unix_ms: status::unix_ms(report.started_at),
            heartbeat_at: rfc3339(now),
            heartbeat_unix_ms: status::unix_ms(now),
            sandbox_mode: self.cfg.sandbox_mode,
            sandbox: self.supervisor.confine.snapshot(),
            config: self.cfg.source.clone(),
            state_dir: self.cfg.state_dir.clone(),
            runtime_dir: self.cfg.runtime_dir.clone(),
            logs_dir: self.cfg.logs_dir.clone(),
            providers: self
                .supervisor
                .provider_status(&self.cfg, &summary.per_provider),
            sessions_total: summary.total,
            sessions: summary.sessions,
            counters: report.counters.clone(),
            warnings: report.all_warnings(),
            recordings: self.recorder.status(),
            skipped_files: report.skipped.total(),
            audit: Some(self.recorder.audit.status()),
            sync: self.sync_status.clone(),
        }
    }

    /// Stage confinements recorded since the last call: one audit record
    /// each (`sandbox.applied`, `sandbox.degraded`, `sandbox.failed`), and
    /// a status warning for every one that is not fully enforced.
    fn record_sandbox_outcomes(&mut self) {
        for (source, message) in self.supervisor.confine.take_notices() {
            self.report.warn(&source, message);
        }
        for o in self.supervisor.confine.take_outcomes() {
            use crate::sandbox::StageState as S;
            let (event, decision) = match o.state {
                S::Enforced => (AuditEvent::SandboxApplied, Decision::Info),
                S::Degraded => (AuditEvent::SandboxDegraded, Decision::Info),
                S::Failed => (AuditEvent::SandboxFailed, Decision::Deny),
            };
            let reason = o
                .error
                .clone()
                .or_else(|| (!o.missing.is_empty()).then(|| o.missing.join("; ")));
            self.recorder.audit(Entry {
                stage: o.stage.to_string(),
                event,
                decision,
                reason,
                detail: serde_json::json!({
                    "thread": o.thread,
                    "mode": self.cfg.sandbox_mode.as_str(),
                    "landlock": o.landlock.as_str(),
                    "seccomp": o.seccomp,
                    "read": o.read,
                    "write_files": o.write_files,
                    "create_in": o.create_in,
                    "write_trees": o.write_trees,
                    "skipped": o.skipped,
                }),
                ..Entry::default()
            });
        }
        self.drain_recorder_warnings();
    }

    fn write_status(&mut self) {
        self.record_sandbox_outcomes();
        let st = self.build_status();
        self.report.write(&self.cfg.runtime_dir, &st);
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// Relay SIGTERM, SIGINT and SIGHUP to the orchestrator from a dedicated
/// thread (signal-hook's self-pipe: no work in the handler itself).
/// Without it kato could not be stopped cleanly, so a relay that cannot be
/// confined (enforce mode) ends the start-up.
fn spawn_signals(
    confiner: &Confiner,
    tx: SyncSender<ToOrch>,
) -> Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| Error::io("installing signal handlers", e))?;
    let handle = signals.handle();
    // Not joined: the thread ends with the process.
    let _relay = confiner.spawn(StageName::Signals, profiles::signals(), move || {
        for sig in signals.forever() {
            if tx.send(ToOrch::Signal(sig)).is_err() {
                break;
            }
        }
    })?;
    Ok(handle)
}

#[cfg(test)]
mod tests;
