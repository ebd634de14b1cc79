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
//! Invariants:
//! - A parse stage never writes anything; it sends `(file, events, next
//!   cursor, diagnostics)` to the orchestrator.
//! - The orchestrator persists a cursor only after handling the events
//!   before it, together with the aggregates those events produced; a crash
//!   re-delivers events instead of losing them, and re-delivered events
//!   are recognised by their event id.
//! - Watches are only ever added on directories under the configured
//!   roots; a missing root is polled on the heartbeat, never by watching
//!   its parent.
//! - An idle daemon wakes once per heartbeat (5 s) plus once per safety-net
//!   rescan (`[daemon] rescan_secs`, default 300 s).

pub mod confine;
pub mod lifecycle;
pub mod log;
pub(crate) mod record;
pub mod state;
pub mod status;
mod watch;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Config, LogFormat};
use crate::error::{exit, Error, Result};
use crate::event::{Event, Payload};
use crate::provider::{self, Provider};
use crate::reader::{Cursor, FileIdentity, Limits, Reset};
use crate::sandbox::{profiles, Confiner, Stage, StageName};

use self::state::{fingerprint, FileState, Quarantine, Store};
use self::status::{
    now_us, rfc3339, snippet, Counters, ProviderStatus, RootStatus, SessionStatus, Status, Warning,
};

/// Seconds between heartbeats: status rewrite, missing-root checks.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Shortest interval between two status writes.
const COALESCE: Duration = Duration::from_secs(1);
/// State is flushed once batches have stopped arriving for this long …
const FLUSH_QUIET: Duration = Duration::from_millis(250);
/// … or at the latest this long after the first unflushed commit. (A crash
/// before a flush only re-delivers events; fsyncs stay out of bursts.)
const FLUSH_MAX_DELAY: Duration = Duration::from_secs(5);
/// Most warnings kept for `kato status`.
const MAX_WARNINGS: usize = 50;
/// Batches in flight from the parse stages (back-pressure).
const CHANNEL_BOUND: usize = 16;
/// How long an orderly shutdown waits for the stages.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A stage that ran this long without failing starts its backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

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
    pub provider: &'static str,
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
        provider: &'static str,
        roots: Vec<RootStatus>,
    },
    Ready {
        provider: &'static str,
    },
    Backlog {
        provider: &'static str,
        files: usize,
    },
    Warning {
        provider: &'static str,
        message: String,
    },
    Quarantine {
        provider: &'static str,
        path: PathBuf,
        identity: Option<FileIdentity>,
        reason: String,
    },
    /// A file known from the state no longer exists under a present root.
    Gone {
        provider: &'static str,
        path: PathBuf,
    },
    /// The stage thread ended (its last message).
    Exited {
        provider: &'static str,
        error: Option<String>,
    },
    Signal(i32),
    /// Events of a snapshot replay (capture/export), in order.
    Replayed {
        key: record::ReplayKey,
        events: Vec<Event>,
        done: bool,
    },
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

/// Aggregates of events not yet covered by a committed cursor.
#[derive(Debug, Clone, Default)]
struct Agg {
    events: u64,
    events_live: u64,
    commands_live: u64,
    commands_historical: u64,
    session_id: Option<String>,
    title: Option<String>,
    last_activity: Option<String>,
}

impl Agg {
    fn account(&mut self, ev: &Event, live: bool) {
        self.events += 1;
        if live {
            self.events_live += 1;
        }
        if let Payload::KatoCommand { .. } = ev.payload {
            if live {
                self.commands_live += 1;
            } else {
                self.commands_historical += 1;
            }
        }
        if self.session_id.is_none() && !ev.session_id.is_empty() {
            self.session_id = Some(ev.session_id.clone());
        }
        if let Some(ts) = &ev.timestamp {
            if self.last_activity.as_ref().is_none_or(|l| ts > l) {
                self.last_activity = Some(ts.clone());
            }
        }
        if self.title.is_none() && ev.is_human_message() {
            if let Payload::UserMessage { text, .. } = &ev.payload {
                self.title = Some(snippet(text, 60));
            }
        }
    }

    fn merge_into(&self, st: &mut FileState) {
        st.events += self.events;
        st.events_live += self.events_live;
        st.commands_live += self.commands_live;
        st.commands_historical += self.commands_historical;
        if st.session_id.is_none() {
            st.session_id.clone_from(&self.session_id);
        }
        if st.title.is_none() {
            st.title.clone_from(&self.title);
        }
        if let Some(ts) = &self.last_activity {
            if st.last_activity.as_ref().is_none_or(|l| ts > l) {
                st.last_activity = Some(ts.clone());
            }
        }
    }
}

/// The orchestrator's record of one session file.
#[derive(Debug)]
struct FileRec {
    /// Committed state: what is persisted.
    st: FileState,
    /// Events handled since the last commit (a large pass in progress).
    pending: Agg,
    pending_ids: Vec<u64>,
    /// Fingerprints of committed events not yet on disk.
    unflushed_ids: Vec<u64>,
    dirty: bool,
    /// Fingerprints consulted while a replaying pass is in progress.
    replay_set: Option<HashSet<u64>>,
    last_ingest_us: u64,
}

impl FileRec {
    fn new(provider: &str, path: &Path) -> FileRec {
        FileRec::from_state(FileState {
            v: state::STATE_VERSION,
            provider: provider.to_owned(),
            path: path.to_path_buf(),
            ..FileState::default()
        })
    }

    fn from_state(st: FileState) -> FileRec {
        FileRec {
            st,
            pending: Agg::default(),
            pending_ids: Vec::new(),
            unflushed_ids: Vec::new(),
            dirty: false,
            replay_set: None,
            last_ingest_us: 0,
        }
    }

    /// Committed plus pending, for status.
    fn view(&self) -> FileState {
        let mut v = self.st.clone();
        self.pending.merge_into(&mut v);
        v
    }

    fn drop_pending(&mut self) {
        self.pending = Agg::default();
        self.pending_ids = Vec::new();
        self.replay_set = None;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StageState {
    Running,
    Backoff,
    Stopped,
}

impl StageState {
    fn as_str(self) -> &'static str {
        match self {
            StageState::Running => "running",
            StageState::Backoff => "restarting",
            StageState::Stopped => "stopped",
        }
    }
}

/// One provider stage under supervision.
struct Slot {
    provider: &'static dyn Provider,
    roots: Vec<PathBuf>,
    tx: Option<Sender<watch::StageMsg>>,
    stop: Arc<AtomicBool>,
    handle: Option<Stage<()>>,
    state: StageState,
    ready: bool,
    restarts: u32,
    failures: u32,
    started: Instant,
    restart_at: Option<Instant>,
    root_status: Vec<RootStatus>,
    backlog: usize,
    /// Identity of each root (in `roots` order) when the running stage
    /// confined itself; `None` for a root that did not exist.
    confined: Vec<Option<(u64, u64)>>,
    /// The stage was asked to stop so that a new one includes a root that
    /// appeared: start it again at once, without counting a failure.
    respawn: bool,
}

impl Slot {
    fn name(&self) -> &'static str {
        self.provider.id().as_str()
    }
}

/// Backoff before the `n`-th consecutive restart: 1, 2, 4 … 60 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

struct Daemon {
    cfg: Config,
    opts: RunOptions,
    store: Store,
    files: HashMap<(&'static str, PathBuf), FileRec>,
    slots: Vec<Slot>,
    tx: SyncSender<ToOrch>,
    rx: Receiver<ToOrch>,
    warnings: VecDeque<Warning>,
    counters: Counters,
    started_at: SystemTime,
    ready: bool,
    phase: &'static str,
    status_dirty: bool,
    last_status: Option<Instant>,
    /// Since when committed state waits to be flushed.
    dirty_since: Option<Instant>,
    /// When the last batch arrived.
    last_batch: Instant,
    /// After a failed flush: not before this.
    flush_retry_at: Instant,
    next_heartbeat: Instant,
    writers: Option<(Sender<WriterRequest>, Stage<()>)>,
    recorder: record::Recorder,
    /// Starts every stage thread (from the supervisor under `kato run`)
    /// and records how each is confined.
    confine: confine::Confinement,
}

/// Requests to the writer-spawner. Writers (one per destination) are
/// created from here so that each inherits the spawner's domain (the
/// export roots) and then narrows itself to its file.
#[derive(Debug)]
pub(crate) enum WriterRequest {
    /// Start a writer for a checked destination; the reply carries it.
    Spawn {
        policy: crate::policy::Policy,
        target: crate::policy::Target,
        reply:
            SyncSender<std::result::Result<crate::writer::WriterHandle, crate::writer::WriteError>>,
    },
    Stop,
}

/// The recorder's view of the other stages: the writer-spawner and the
/// parse stages (for snapshot replays).
struct Links<'a> {
    writers: &'a Option<(Sender<WriterRequest>, Stage<()>)>,
    slots: &'a [Slot],
    policy: crate::policy::Policy,
}

impl record::Stages for Links<'_> {
    fn writer(
        &mut self,
        target: crate::policy::Target,
    ) -> std::result::Result<crate::writer::WriterHandle, crate::writer::WriteError> {
        let Some((tx, _)) = self.writers else {
            return Err(crate::writer::WriteError::Gone);
        };
        let (reply, rx) = mpsc::sync_channel(1);
        tx.send(WriterRequest::Spawn {
            policy: self.policy.clone(),
            target,
            reply,
        })
        .map_err(|_| crate::writer::WriteError::Gone)?;
        rx.recv().map_err(|_| crate::writer::WriteError::Gone)?
    }

    fn replay(
        &mut self,
        provider: &'static str,
        path: &Path,
        key: record::ReplayKey,
        upto: String,
    ) {
        if let Some(tx) = self
            .slots
            .iter()
            .find(|s| s.name() == provider)
            .and_then(|s| s.tx.as_ref())
        {
            let _ = tx.send(watch::StageMsg::Replay {
                path: path.to_path_buf(),
                key,
                upto,
            });
        }
    }
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
    let _log = log::init(
        &confine.confiner,
        format,
        &cfg.log_level,
        opts.detached,
        &cfg.logs_dir,
    )?;
    install_panic_hook();
    if let Some(note) = export_note {
        tracing::warn!("{note}");
    }
    for g in &grants {
        tracing::info!(
            root = %g.root.display(),
            granted = %g.granted.display(),
            "provider root missing: the supervisor reads its nearest existing ancestor until it appears"
        );
    }
    let result = run_logged(cfg, opts, lock, confine, supervisor);
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
) -> Result<i32> {
    let domain = profiles::orchestrator(cfg.source.as_deref(), &cfg.state_dir, &cfg.runtime_dir);
    let confiner = confine.confiner.clone();
    let orchestrator = confiner.spawn(StageName::Orchestrator, domain, move || -> Result<i32> {
        Daemon::new(cfg, opts, confine)?.run()
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
        let store = Store::open(&cfg.state_dir).map_err(|e| {
            Error::io(
                format!("opening the state in {}", cfg.state_dir.display()),
                e,
            )
        })?;
        let (tx, rx) = mpsc::sync_channel(CHANNEL_BOUND);
        let now = Instant::now();
        let cfg_for_recorder = cfg.clone();
        let mut d = Daemon {
            cfg,
            opts,
            store,
            files: HashMap::new(),
            slots: Vec::new(),
            tx,
            rx,
            warnings: VecDeque::new(),
            counters: Counters::default(),
            started_at: SystemTime::now(),
            ready: false,
            phase: "starting",
            status_dirty: true,
            last_status: None,
            dirty_since: None,
            last_batch: now,
            flush_retry_at: now,
            next_heartbeat: now + HEARTBEAT,
            writers: None,
            recorder: record::Recorder::new(&cfg_for_recorder),
            confine,
        };
        d.load_state();
        Ok(d)
    }

    fn load_state(&mut self) {
        let t0 = Instant::now();
        let (states, corrupt) = self.store.load_all();
        for c in corrupt {
            let msg = format!(
                "state file {} could not be used ({}); set aside as {}; its session file is read again from the start, as history",
                c.file.display(),
                c.error,
                c.moved_to
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(could not move it)".into())
            );
            self.warn("state", msg);
        }
        for st in states {
            let Some(p) = provider::by_name(&st.provider) else {
                continue;
            };
            let key = (p.id().as_str(), st.path.clone());
            self.files.insert(key, FileRec::from_state(st));
        }
        tracing::info!(
            files = self.files.len(),
            ms = t0.elapsed().as_millis() as u64,
            "state loaded"
        );
    }

    fn warn(&mut self, source: &str, message: String) {
        tracing::warn!(source, "{message}");
        if self.warnings.len() >= MAX_WARNINGS {
            self.warnings.pop_front();
        }
        self.warnings.push_back(Warning {
            at: rfc3339(SystemTime::now()),
            level: "warn".into(),
            source: source.to_owned(),
            message,
        });
        self.status_dirty = true;
    }

    fn run(&mut self) -> Result<i32> {
        tracing::info!(
            pid = std::process::id(),
            version = env!("CARGO_PKG_VERSION"),
            state = %self.cfg.state_dir.display(),
            "kato starting"
        );
        let signals = spawn_signals(&self.confine.confiner, self.tx.clone())?;
        self.spawn_writer_spawner();
        for pc in self.cfg.providers.clone() {
            if !pc.enabled {
                continue;
            }
            let Some(p) = provider::by_name(pc.name) else {
                continue;
            };
            self.slots.push(Slot {
                provider: p,
                roots: pc.roots.clone(),
                tx: None,
                stop: Arc::new(AtomicBool::new(false)),
                handle: None,
                state: StageState::Stopped,
                ready: false,
                restarts: 0,
                failures: 0,
                started: Instant::now(),
                restart_at: None,
                root_status: pc
                    .roots
                    .iter()
                    .map(|r| RootStatus {
                        path: r.clone(),
                        exists: r.is_dir(),
                    })
                    .collect(),
                backlog: 0,
                confined: Vec::new(),
                respawn: false,
            });
        }
        for i in 0..self.slots.len() {
            self.spawn_stage(i);
        }
        self.phase = "running";
        {
            // Finish recordings a crash interrupted (intents, snapshots).
            let policy = self.recorder.policy().clone();
            let mut links = Links {
                writers: &self.writers,
                slots: &self.slots,
                policy,
            };
            self.recorder.recover(&mut links);
        }
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
        let mut d = self.next_heartbeat;
        if let Some(t) = self.dirty_since {
            let due = (self.last_batch + FLUSH_QUIET).min(t + FLUSH_MAX_DELAY);
            d = d.min(due.max(self.flush_retry_at));
        }
        if self.status_dirty {
            d = d.min(self.last_status.map_or(now, |t| t + COALESCE));
        }
        for s in &self.slots {
            if let Some(t) = s.restart_at {
                d = d.min(t);
            }
        }
        d.max(now)
    }

    fn timed_work(&mut self, now: Instant) {
        let mut heartbeat = false;
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + HEARTBEAT;
            heartbeat = true;
            {
                let policy = self.recorder.policy().clone();
                let mut links = Links {
                    writers: &self.writers,
                    slots: &self.slots,
                    policy,
                };
                self.recorder.heartbeat(&mut links);
            }
            self.drain_recorder_warnings();
            self.check_stage_roots();
        }
        for i in 0..self.slots.len() {
            if self.slots[i].restart_at.is_some_and(|t| now >= t) {
                self.slots[i].restart_at = None;
                self.spawn_stage(i);
            }
        }
        if let Some(t) = self.dirty_since {
            let due = now >= self.last_batch + FLUSH_QUIET || now >= t + FLUSH_MAX_DELAY;
            if due && now >= self.flush_retry_at {
                self.flush();
            }
        }
        let status_due = self.last_status.is_none_or(|t| now >= t + COALESCE);
        if heartbeat || (self.status_dirty && status_due) {
            self.write_status();
        }
    }

    /// Handle one message; `Some(code)` ends the loop.
    fn handle(&mut self, m: ToOrch) -> Option<i32> {
        match m {
            ToOrch::Batch(b) => self.handle_batch(b),
            ToOrch::Roots { provider, roots } => {
                if let Some(s) = self.slot_mut(provider) {
                    s.root_status = roots;
                }
                self.status_dirty = true;
            }
            ToOrch::Ready { provider } => {
                if let Some(s) = self.slot_mut(provider) {
                    s.ready = true;
                }
                tracing::info!(provider, "stage ready");
                self.check_ready();
            }
            ToOrch::Backlog { provider, files } => {
                if let Some(s) = self.slot_mut(provider) {
                    s.backlog = files;
                }
                self.status_dirty = true;
            }
            ToOrch::Warning { provider, message } => self.warn(provider, message),
            ToOrch::Quarantine {
                provider,
                path,
                identity,
                reason,
            } => {
                let rec = self
                    .files
                    .entry((provider, path.clone()))
                    .or_insert_with(|| FileRec::new(provider, &path));
                rec.st.quarantine = Some(Quarantine {
                    reason: reason.clone(),
                    identity,
                    at: rfc3339(SystemTime::now()),
                });
                rec.drop_pending();
                rec.dirty = true;
                self.dirty_since.get_or_insert_with(Instant::now);
                self.warn(
                    provider,
                    format!(
                        "{} is quarantined: {reason}; it is skipped until the file is replaced",
                        path.display()
                    ),
                );
            }
            ToOrch::Gone { provider, path } => {
                if self.files.remove(&(provider, path.clone())).is_some() {
                    if let Err(e) = self.store.remove(provider, &path) {
                        self.warn(
                            "state",
                            format!("cannot remove the state of {}: {e}", path.display()),
                        );
                    }
                    self.status_dirty = true;
                }
            }
            ToOrch::Exited { provider, error } => self.stage_exited(provider, error),
            ToOrch::Replayed { key, events, done } => {
                let policy = self.recorder.policy().clone();
                let mut links = Links {
                    writers: &self.writers,
                    slots: &self.slots,
                    policy,
                };
                self.recorder.on_replayed(&key, &events, done, &mut links);
                self.drain_recorder_warnings();
            }
            ToOrch::Signal(sig) => {
                let name = signal_name(sig);
                if sig == signal_hook::consts::SIGHUP && self.opts.detached {
                    tracing::info!(
                        "SIGHUP ignored (detached); `kato restart` reloads the configuration"
                    );
                    return None;
                }
                tracing::info!(signal = name, "stopping");
                return Some(exit::OK);
            }
        }
        None
    }

    /// Move the recorder's messages into the status warnings.
    fn drain_recorder_warnings(&mut self) {
        for m in std::mem::take(&mut self.recorder.warnings) {
            self.warn("recording", m);
        }
    }

    fn slot_mut(&mut self, provider: &str) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.name() == provider)
    }

    fn check_ready(&mut self) {
        if !self.ready && self.slots.iter().all(|s| s.ready) {
            self.ready = true;
            let ms = self
                .started_at
                .elapsed()
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default();
            self.counters.ready_ms = Some(ms);
            tracing::info!(ms, "ready");
            // Written at once: `kato start` waits for it.
            self.write_status();
        }
        self.status_dirty = true;
    }

    fn handle_batch(&mut self, b: Batch) {
        let key = (b.provider, b.path.clone());
        let rec = self
            .files
            .entry(key)
            .or_insert_with(|| FileRec::new(b.provider, &b.path));
        if b.replay && rec.replay_set.is_none() {
            let mut set = match self.store.load_ids(b.provider, &b.path, rec.st.ids_len) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(path = %b.path.display(), "cannot read event fingerprints: {e}");
                    HashSet::new()
                }
            };
            set.extend(rec.unflushed_ids.iter().copied());
            set.extend(rec.pending_ids.iter().copied());
            rec.replay_set = Some(set);
        }
        let mut dropped = 0u64;
        let mut kept: Vec<(&Event, bool)> = Vec::with_capacity(b.events.len());
        for (i, ev) in b.events.iter().enumerate() {
            let fp = fingerprint(&ev.event_id);
            if let Some(set) = &mut rec.replay_set {
                if !set.insert(fp) {
                    dropped += 1;
                    continue;
                }
            }
            rec.pending_ids.push(fp);
            rec.pending.account(ev, i >= b.live_from);
            kept.push((ev, i >= b.live_from));
        }
        // Commands and recordings first: their state is persisted before
        // the file cursor that covers these events (exactly-once).
        {
            let policy = self.recorder.policy().clone();
            let mut links = Links {
                writers: &self.writers,
                slots: &self.slots,
                policy,
            };
            self.recorder.on_events(&b.path, &kept, &mut links);
        }
        drop(kept);
        let handled = b.events.len() as u64 - dropped;
        self.last_batch = Instant::now();
        let now = now_us();
        if handled > 0 {
            rec.last_ingest_us = now;
            self.counters.last_ingest_unix_us = Some(now);
        }
        self.counters.events += handled;
        self.counters.duplicates_dropped += dropped;
        self.counters.batches += 1;
        if let Some(c) = b.commit {
            rec.pending.merge_into(&mut rec.st);
            rec.pending = Agg::default();
            // Moved, not appended: an idle file keeps no spare capacity
            // (1,000 files × a pass's worth of ids add up).
            let ids = std::mem::take(&mut rec.pending_ids);
            if rec.unflushed_ids.is_empty() {
                rec.unflushed_ids = ids;
            } else {
                rec.unflushed_ids.extend_from_slice(&ids);
            }
            rec.replay_set = None;
            rec.st.cursor = c.cursor;
            rec.st.size = c.size;
            rec.st.mtime_ns = c.mtime_ns;
            rec.st.skipped += c.diagnostics as u64;
            if c.diagnostics > 0 {
                self.recorder.audit(crate::audit::Entry {
                    stage: format!("parse:{}", b.provider),
                    event: "input.malformed".into(),
                    decision: "skip".into(),
                    provider: Some(b.provider.to_owned()),
                    target: Some(b.path.display().to_string()),
                    reason: Some("malformed records skipped; the rest of the file was read".into()),
                    detail: serde_json::json!({ "records": c.diagnostics }),
                    ..crate::audit::Entry::default()
                });
            }
            rec.st.quarantine = None;
            rec.dirty = true;
            self.dirty_since.get_or_insert_with(Instant::now);
            self.counters.bytes += c.bytes;
            if let Some(r) = c.reset {
                self.counters.resets += 1;
                tracing::info!(path = %b.path.display(), reset = ?r, "file started over");
            }
        }
        self.status_dirty = true;
        self.drain_recorder_warnings();
    }

    /// Persist every changed file's committed state, then sync the directory.
    fn flush(&mut self) {
        self.dirty_since = None;
        let mut errors = Vec::new();
        let mut saved = 0usize;
        for rec in self.files.values_mut().filter(|r| r.dirty) {
            match self.store.save(&mut rec.st, &rec.unflushed_ids) {
                Ok(()) => {
                    rec.unflushed_ids = Vec::new();
                    rec.dirty = false;
                    saved += 1;
                }
                Err(e) => errors.push(format!("{}: {e}", rec.st.path.display())),
            }
        }
        if saved > 0 {
            if let Err(e) = self.store.sync_dir() {
                errors.push(format!("syncing the state directory: {e}"));
            }
        }
        self.counters.flushes += 1;
        tracing::debug!(saved, "state flushed");
        if let Some(first) = errors.first().cloned() {
            let now = Instant::now();
            self.dirty_since = Some(now);
            self.flush_retry_at = now + FLUSH_MAX_DELAY;
            self.warn(
                "state",
                format!(
                    "cannot persist the state of {} file(s) (first: {first}); retrying",
                    errors.len()
                ),
            );
        }
    }

    /// Heartbeat: a provider stage is confined to the roots that existed
    /// when it started. When one of its roots appears (or now resolves to
    /// another directory), stop the stage and start a new one from the
    /// supervisor so its domain can include it; otherwise let a stage with
    /// a missing root notice a root that comes back.
    fn check_stage_roots(&mut self) {
        for s in &mut self.slots {
            let Some(tx) = &s.tx else { continue };
            if s.respawn {
                continue;
            }
            let now: Vec<Option<(u64, u64)>> =
                s.roots.iter().map(|r| confine::dir_identity(r)).collect();
            let changed = now
                .iter()
                .zip(&s.confined)
                .any(|(n, c)| n.is_some() && n != c);
            if changed && self.confine.confines() {
                tracing::info!(
                    provider = s.name(),
                    "a root appeared or was replaced: restarting the stage so its domain includes it"
                );
                s.respawn = true;
                s.stop.store(true, Ordering::Relaxed);
                let _ = tx.send(watch::StageMsg::Stop);
            } else if s.root_status.iter().any(|r| !r.exists) {
                let _ = tx.send(watch::StageMsg::Tick);
            }
        }
    }

    fn spawn_stage(&mut self, i: usize) {
        let (stx, srx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        // What the new stage's domain grants: the roots that exist now,
        // except one that appeared after start through a symbolic link
        // leading away from where it was expected (the supervisor's
        // ancestor grant would let that through).
        let confined: Vec<Option<(u64, u64)>> = self.slots[i]
            .roots
            .iter()
            .map(|r| confine::dir_identity(r))
            .collect();
        let mut domain_roots = Vec::new();
        let mut refused = Vec::new();
        for (root, id) in self.slots[i].roots.iter().zip(&confined) {
            if id.is_none() {
                continue;
            }
            match self
                .confine
                .ancestor_grant(root)
                .and_then(|a| confine::late_root_problem(root, &a))
            {
                Some(problem) => refused.push(problem),
                None => domain_roots.push(root.clone()),
            }
        }
        for problem in refused {
            let name = self.slots[i].name();
            self.warn(name, problem);
        }
        self.slots[i].confined = confined;
        let slot = &self.slots[i];
        let provider = slot.provider;
        let name = slot.name();
        let known: Vec<Known> = self
            .files
            .iter()
            .filter(|((p, _), _)| *p == name)
            .map(|((_, path), rec)| Known {
                path: path.clone(),
                cursor: rec.st.cursor.clone(),
                size: rec.st.size,
                mtime_ns: rec.st.mtime_ns,
                quarantined: rec.st.quarantine.as_ref().map(|q| q.identity),
            })
            .collect();
        let domain = profiles::provider(&domain_roots);
        let init = watch::StageInit {
            provider,
            roots: slot.roots.clone(),
            covered: self.confine.confines().then_some(domain_roots),
            known,
            limits: Limits {
                line_cap: self.cfg.line_cap,
            },
            rescan: Duration::from_secs(self.cfg.rescan_secs),
            out: self.tx.clone(),
            rx: srx,
            tx: stx.clone(),
            stop: stop.clone(),
        };
        let out = self.tx.clone();
        let stage = StageName::Provider(name.to_owned());
        let spawned = self.confine.confiner.spawn(stage, domain, move || {
            let r = panic::catch_unwind(AssertUnwindSafe(|| watch::run(init)));
            let error = match r {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("the stage panicked (location in the log)".to_owned()),
            };
            let _ = out.send(ToOrch::Exited {
                provider: name,
                error,
            });
        });
        let slot = &mut self.slots[i];
        match spawned {
            Ok(h) => {
                slot.tx = Some(stx);
                slot.stop = stop;
                slot.handle = Some(h);
                slot.state = StageState::Running;
                slot.started = Instant::now();
            }
            Err(e) => {
                let delay = backoff(slot.failures);
                slot.failures += 1;
                slot.state = StageState::Backoff;
                slot.restart_at = Some(Instant::now() + delay);
                self.warn(
                    name,
                    format!("cannot start the {name} stage: {e}; retrying in {delay:?}"),
                );
            }
        }
    }

    fn stage_exited(&mut self, provider: &'static str, error: Option<String>) {
        // Events of an unfinished pass come again from the committed cursor.
        for ((p, _), rec) in self.files.iter_mut() {
            if *p == provider {
                rec.drop_pending();
            }
        }
        let stopping = self.phase != "running";
        let Some(i) = self.slots.iter().position(|s| s.name() == provider) else {
            return;
        };
        if let Some(h) = self.slots[i].handle.take() {
            let _ = h.join();
        }
        let slot = &mut self.slots[i];
        slot.tx = None;
        if stopping {
            slot.state = StageState::Stopped;
            return;
        }
        if std::mem::take(&mut slot.respawn) && error.is_none() {
            // Stopped to include a root that appeared: not a failure.
            self.spawn_stage(i);
            return;
        }
        if slot.started.elapsed() >= HEALTHY_RUN {
            slot.failures = 0;
        }
        let delay = backoff(slot.failures);
        slot.failures += 1;
        slot.restarts += 1;
        slot.state = StageState::Backoff;
        slot.restart_at = Some(Instant::now() + delay);
        let why = error.unwrap_or_else(|| "it ended unexpectedly".into());
        self.warn(
            provider,
            format!(
                "the {provider} stage failed: {why}; restarting in {} s (other providers keep running)",
                delay.as_secs()
            ),
        );
    }

    fn spawn_writer_spawner(&mut self) {
        let (tx, rx) = mpsc::channel::<WriterRequest>();
        let domain = profiles::writer_spawner(&profiles::export_roots(&self.cfg));
        // Writers are created by the writer-spawner's thread, not the
        // supervisor: each starts in the export roots and narrows.
        let writers = self.confine.confiner.from_caller();
        let spawned = self
            .confine
            .confiner
            .spawn(StageName::WriterSpawner, domain, move || {
                // Blocks without waking until a request arrives. Writers are
                // spawned from here so each starts in this domain (the export
                // roots) and narrows itself to its one file.
                while let Ok(req) = rx.recv() {
                    match req {
                        WriterRequest::Spawn {
                            policy,
                            target,
                            reply,
                        } => {
                            let _ = reply.send(crate::writer::spawn(&writers, policy, target));
                        }
                        WriterRequest::Stop => break,
                    }
                }
            });
        match spawned {
            Ok(h) => self.writers = Some((tx, h)),
            Err(e) => self.warn("writer-spawner", format!("cannot start: {e}")),
        }
    }

    fn shutdown(&mut self) {
        self.recorder.shutdown();
        self.phase = "stopping";
        self.ready = false;
        self.write_status();
        for s in &self.slots {
            s.stop.store(true, Ordering::Relaxed);
            if let Some(tx) = &s.tx {
                let _ = tx.send(watch::StageMsg::Stop);
            }
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.slots.iter().any(|s| s.handle.is_some()) {
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
        if let Some((tx, h)) = self.writers.take() {
            let _ = tx.send(WriterRequest::Stop);
            let _ = h.join();
        }
        self.flush();
        self.phase = "stopped";
        self.write_status();
        tracing::info!("kato stopped");
    }

    fn build_status(&self) -> Status {
        let mut sessions: BTreeMap<(&'static str, String), SessionStatus> = BTreeMap::new();
        let mut per_provider: HashMap<&'static str, (HashSet<String>, usize)> = HashMap::new();
        for ((provider, path), rec) in &self.files {
            let v = rec.view();
            let id = v.session_id.clone().unwrap_or_else(|| provider::stem(path));
            let pp = per_provider.entry(provider).or_default();
            pp.0.insert(id.clone());
            pp.1 += 1;
            let s = sessions
                .entry((provider, id.clone()))
                .or_insert_with(|| SessionStatus {
                    id,
                    provider: provider.to_string(),
                    ..SessionStatus::default()
                });
            s.events += v.events;
            s.events_live += v.events_live;
            s.commands_live += v.commands_live;
            s.commands_historical += v.commands_historical;
            s.skipped += v.skipped;
            if s.title.is_empty() {
                s.title = v.title.clone().unwrap_or_default();
            }
            if v.last_activity > s.last_activity {
                s.last_activity = v.last_activity.clone();
            }
            s.last_ingest_unix_us = s.last_ingest_unix_us.max(rec.last_ingest_us);
            s.files.push(path.clone());
            if v.quarantine.is_some() {
                s.quarantined_files += 1;
            }
        }
        let mut sessions: Vec<SessionStatus> = sessions.into_values().collect();
        for s in &mut sessions {
            s.files.sort();
        }
        sessions.sort_by(|a, b| {
            b.last_activity
                .cmp(&a.last_activity)
                .then(b.last_ingest_unix_us.cmp(&a.last_ingest_unix_us))
                .then(a.id.cmp(&b.id))
        });
        let sessions_total = sessions.len();
        sessions.truncate(status::MAX_SESSIONS);
        let providers = self
            .cfg
            .providers
            .iter()
            .map(|pc| {
                let slot = self.slots.iter().find(|s| s.name() == pc.name);
                let counts = per_provider.get(pc.name);
                ProviderStatus {
                    name: pc.name.to_owned(),
                    enabled: pc.enabled,
                    stage: slot.map_or("disabled", |s| s.state.as_str()).to_owned(),
                    ready: slot.is_some_and(|s| s.ready),
                    restarts: slot.map_or(0, |s| s.restarts),
                    roots: slot.map_or_else(
                        || {
                            pc.roots
                                .iter()
                                .map(|r| RootStatus {
                                    path: r.clone(),
                                    exists: r.is_dir(),
                                })
                                .collect()
                        },
                        |s| s.root_status.clone(),
                    ),
                    sessions: counts.map_or(0, |c| c.0.len()),
                    files: counts.map_or(0, |c| c.1),
                    backlog: slot.map_or(0, |s| s.backlog),
                }
            })
            .collect();
        let now = SystemTime::now();
        Status {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            state: self.phase.to_owned(),
            ready: self.ready,
            started_at: rfc3339(self.started_at),
            started_unix_ms: status::unix_ms(self.started_at),
            heartbeat_at: rfc3339(now),
            heartbeat_unix_ms: status::unix_ms(now),
            sandbox_mode: self.cfg.sandbox_mode.as_str().to_owned(),
            sandbox: self.confine.snapshot(),
            config: self.cfg.source.clone(),
            state_dir: self.cfg.state_dir.clone(),
            runtime_dir: self.cfg.runtime_dir.clone(),
            logs_dir: self.cfg.logs_dir.clone(),
            providers,
            sessions_total,
            sessions,
            counters: self.counters.clone(),
            warnings: self.warnings.iter().cloned().collect(),
            recordings: self.recorder.status(),
        }
    }

    /// Stage confinements recorded since the last call: one audit record
    /// each (`sandbox.applied`, `sandbox.degraded`, `sandbox.failed`), and
    /// a status warning for every one that is not fully enforced.
    fn record_sandbox_outcomes(&mut self) {
        for (source, message) in self.confine.take_notices() {
            self.warn(&source, message);
        }
        for o in self.confine.take_outcomes() {
            use crate::sandbox::StageState as S;
            let (event, decision) = match o.state {
                S::Enforced => ("sandbox.applied", "info"),
                S::Degraded => ("sandbox.degraded", "info"),
                S::Failed => ("sandbox.failed", "deny"),
            };
            let reason = o
                .error
                .clone()
                .or_else(|| (!o.missing.is_empty()).then(|| o.missing.join("; ")));
            self.recorder.audit(crate::audit::Entry {
                stage: o.stage.to_string(),
                event: event.to_owned(),
                decision: decision.to_owned(),
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
                ..crate::audit::Entry::default()
            });
        }
        self.drain_recorder_warnings();
    }

    fn write_status(&mut self) {
        self.record_sandbox_outcomes();
        let st = self.build_status();
        match status::write(&self.cfg.runtime_dir, &st) {
            Ok(()) => self.status_dirty = false,
            Err(e) => tracing::warn!("cannot write status.json: {e}"),
        }
        self.last_status = Some(Instant::now());
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
