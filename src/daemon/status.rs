//! `status.json` (SPEC §9, §10): what the daemon is doing, rewritten
//! atomically on change (at most about once a second) and on every
//! heartbeat; and `kato status`, which reads it and tells a live daemon
//! from a dead one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::SandboxMode;
use crate::error::{exit, Error, Result};
use crate::event::ProviderId;
use crate::sandbox::{Enforcement, StageName, StageState};

/// Name of the status file in the runtime directory.
pub const STATUS_FILE: &str = "status.json";
/// A heartbeat older than this means the daemon is not running.
pub const STALE_AFTER: Duration = Duration::from_secs(15);
/// Sessions listed in status.json (newest first); `sessions_total` counts all.
pub const MAX_SESSIONS: usize = 2000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub state: Phase,
    /// Every provider stage watches its roots and has caught up with the
    /// files it knew; history of newly seen files may still be read
    /// (`providers[].backlog`).
    pub ready: bool,
    pub started_at: String,
    pub started_unix_ms: u64,
    pub heartbeat_at: String,
    pub heartbeat_unix_ms: u64,
    pub sandbox_mode: SandboxMode,
    /// How each stage is confined (`None` outside `kato run`).
    pub sandbox: Option<SandboxStatus>,
    pub config: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub providers: Vec<ProviderStatus>,
    pub sessions_total: usize,
    pub sessions: Vec<SessionStatus>,
    pub counters: Counters,
    pub warnings: Vec<Warning>,
    /// Live recordings and destinations, with their state.
    #[serde(default)]
    pub recordings: Vec<super::record::RecordingStatus>,
    /// Session files skipped or quarantined (each also a warning while
    /// listed; see [`MAX_SKIPPED_LISTED`]).
    pub skipped_files: usize,
    /// The security audit log and its chain head.
    pub audit: Option<AuditStatus>,
    /// Autosync (`[sync]`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<crate::sync::auto::SyncStatus>,
}

/// Skipped files listed as warnings, each with its reason; beyond, they are
/// only counted (`skipped_files`).
pub const MAX_SKIPPED_LISTED: usize = 100;

/// The security audit log as the daemon holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditStatus {
    pub path: PathBuf,
    /// The anchor beside it (records and last hash).
    pub anchor: PathBuf,
    /// Records in the log (`None`: the log could not be opened).
    pub records: Option<u64>,
    /// Hash of the last record: what `kato audit verify --anchor` takes.
    pub head: Option<String>,
    /// Records can be written; when not, commands are refused.
    pub writable: bool,
    pub error: Option<String>,
    /// Records decided but not yet written (the log could not be written).
    pub deferred: usize,
    /// Records beyond what is kept in memory meanwhile (counted only).
    pub lost: u64,
}

/// Where the daemon is in its life (`status.json` → `state`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Also what a status.json without a `state` reads as: not stopped.
    #[default]
    Starting,
    Running,
    Stopping,
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
        }
    }
}

/// Where a provider's watch+parse stage is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderStage {
    Running,
    /// Failed; started again after a backoff.
    Restarting,
    Stopped,
    /// Turned off in the configuration.
    #[default]
    Disabled,
}

impl ProviderStage {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStage::Running => "running",
            ProviderStage::Restarting => "restarting",
            ProviderStage::Stopped => "stopped",
            ProviderStage::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for ProviderStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub name: ProviderId,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub stage: ProviderStage,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default)]
    pub roots: Vec<RootStatus>,
    #[serde(default)]
    pub sessions: usize,
    #[serde(default)]
    pub files: usize,
    /// Newly seen files whose history is still to be read.
    #[serde(default)]
    pub backlog: usize,
}

/// The confinement of the running daemon (SPEC §8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxStatus {
    pub mode: SandboxMode,
    /// The Landlock ABI kato's rules are written for.
    pub landlock_abi_pinned: u8,
    /// The ABI the kernel offers (`None`: no Landlock).
    pub landlock_abi_kernel: Option<u32>,
    /// The process hardening and every stage below are fully enforced.
    pub enforced: bool,
    pub process: ProcessSandboxStatus,
    /// Provider roots missing at start whose ancestor the supervisor reads.
    pub ancestor_grants: Vec<AncestorGrantStatus>,
    /// `supervisor` (the process-wide domain) first, then each stage as it
    /// confined itself (the latest start of each).
    pub stages: Vec<StageSandboxStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessSandboxStatus {
    pub no_new_privs: bool,
    pub capabilities_empty: bool,
    pub core_dumps_disabled: bool,
    /// How inherited variables were removed.
    pub environment: String,
    /// Names left in the environment.
    pub environment_kept: Vec<String>,
    /// What hardening could not do (best-effort mode).
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AncestorGrantStatus {
    pub root: PathBuf,
    pub granted: PathBuf,
}

/// How one stage is confined (the latest start of it; one entry per
/// destination for writers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSandboxStatus {
    pub stage: StageName,
    #[serde(default)]
    pub thread: String,
    #[serde(default)]
    pub state: StageState,
    #[serde(default)]
    pub landlock: Enforcement,
    /// kato's seccomp filter is installed on the thread.
    #[serde(default)]
    pub seccomp: bool,
    #[serde(default)]
    pub read: Vec<PathBuf>,
    #[serde(default)]
    pub write_files: Vec<PathBuf>,
    #[serde(default)]
    pub create_in: Vec<PathBuf>,
    #[serde(default)]
    pub write_trees: Vec<PathBuf>,
    /// Paths of the domain that got no rule, and why.
    #[serde(default)]
    pub skipped: Vec<String>,
    #[serde(default)]
    pub missing: Vec<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// When the stage confined itself.
    #[serde(default)]
    pub at: String,
}

impl StageSandboxStatus {
    /// A stage that has not confined itself (yet): `failed`, nothing granted.
    pub fn new(stage: StageName) -> StageSandboxStatus {
        StageSandboxStatus {
            stage,
            thread: String::new(),
            state: StageState::Failed,
            landlock: Enforcement::NotEnforced,
            seccomp: false,
            read: Vec::new(),
            write_files: Vec::new(),
            create_in: Vec::new(),
            write_trees: Vec::new(),
            skipped: Vec::new(),
            missing: Vec::new(),
            error: None,
            at: String::new(),
        }
    }

    /// One entry per stage in status.json; writers, one per destination.
    pub fn same_stage(&self, other: &StageSandboxStatus) -> bool {
        self.stage == other.stage
            && (!self.stage.per_destination() || self.write_files == other.write_files)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RootStatus {
    pub path: PathBuf,
    pub exists: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionStatus {
    #[serde(default)]
    pub id: String,
    pub provider: ProviderId,
    /// Snippet of the first human message.
    #[serde(default)]
    pub title: String,
    /// Newest provider timestamp of the session.
    #[serde(default)]
    pub last_activity: Option<String>,
    #[serde(default)]
    pub events: u64,
    /// Events appended after kato first saw their file.
    #[serde(default)]
    pub events_live: u64,
    #[serde(default)]
    pub commands_live: u64,
    #[serde(default)]
    pub commands_historical: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub quarantined_files: usize,
    /// When the orchestrator last handled an event of this session (µs since the epoch).
    #[serde(default)]
    pub last_ingest_unix_us: u64,
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

impl SessionStatus {
    /// A session with nothing counted yet.
    pub fn new(id: String, provider: ProviderId) -> SessionStatus {
        SessionStatus {
            id,
            provider,
            title: String::new(),
            last_activity: None,
            events: 0,
            events_live: 0,
            commands_live: 0,
            commands_historical: 0,
            skipped: 0,
            quarantined_files: 0,
            last_ingest_unix_us: 0,
            files: Vec::new(),
        }
    }
}

/// Counters of this run (not persisted).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub batches: u64,
    pub events: u64,
    /// Session-file bytes read.
    pub bytes: u64,
    pub resets: u64,
    /// Re-delivered events recognised by their id and dropped.
    pub duplicates_dropped: u64,
    pub flushes: u64,
    /// Start to ready, in ms.
    pub ready_ms: Option<u64>,
    pub last_ingest_unix_us: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Warning {
    pub at: String,
    pub level: String,
    pub source: String,
    pub message: String,
    /// The session file a skip warning is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Microseconds since the epoch: ingest times, fine enough for latency.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// `2026-01-08T15:56:38.102Z` (UTC, millisecond precision).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    crate::audit::rfc3339(d.as_secs(), d.subsec_millis())
}

/// First `max` characters of `text` on one line.
pub fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = flat.chars().take(max).collect();
    if flat.chars().count() > max {
        s.push('…');
    }
    s
}

pub fn path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(STATUS_FILE)
}

/// Replace status.json atomically (temp + rename; no fsync: it is
/// volatile and rewritten every heartbeat). Written as it is encoded: with
/// thousands of sessions the whole text would be a few MiB each time.
pub fn write(runtime_dir: &Path, st: &Status) -> io::Result<()> {
    super::state::write_atomic_nosync_with(&path(runtime_dir), |w| {
        serde_json::to_writer_pretty(w, st).map_err(io::Error::from)
    })
}

/// Read status.json; `None` when there is none.
pub fn read(runtime_dir: &Path) -> Result<Option<(Status, serde_json::Value)>> {
    let p = path(runtime_dir);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", p.display()), e)),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Daemon(format!(
            "{} is not valid JSON ({e}); it is rewritten by a running daemon",
            p.display()
        ))
    })?;
    let st: Status = serde_json::from_value(value.clone()).unwrap_or_default();
    Ok(Some((st, value)))
}

/// The pid and readiness a status file reports, and nothing else: what
/// `kato start` polls for, without building the whole document (1 MB
/// with 10,000 sessions).
pub fn read_ready(runtime_dir: &Path) -> Option<(u32, bool)> {
    #[derive(Deserialize)]
    struct Ready {
        pid: u32,
        ready: bool,
    }
    let bytes = std::fs::read(path(runtime_dir)).ok()?;
    let r: Ready = serde_json::from_slice(&bytes).ok()?;
    Some((r.pid, r.ready))
}

/// Is the process alive (signal 0)? EPERM means it exists but is not ours.
pub fn pid_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(p) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Running by the heartbeat alone: its process is alive, its heartbeat is
/// fresh, and it has not said it stopped. Used when the lock cannot be
/// checked.
pub fn is_running(st: &Status, now: SystemTime) -> bool {
    st.state != Phase::Stopped && !is_stale(st, now) && pid_alive(st.pid)
}

fn is_stale(st: &Status, now: SystemTime) -> bool {
    unix_ms(now).saturating_sub(st.heartbeat_unix_ms) >= STALE_AFTER.as_millis() as u64
}

/// Whether the daemon runs, judged by who holds the state lock: a daemon
/// holds it from before its first status write until its process ends, so
/// a stale heartbeat with a live holder is a busy (or paused) daemon, and a
/// fresh heartbeat without one is a dead daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Holds the lock, heartbeat fresh.
    Running,
    /// Holds the lock, but the heartbeat is older than [`STALE_AFTER`]:
    /// working through a backlog, or stopped (SIGSTOP).
    Busy,
    /// Holds the lock but has not written this status (starting).
    Starting {
        pid: Option<u32>,
    },
    NotRunning,
}

impl Liveness {
    pub fn running(&self) -> bool {
        !matches!(self, Liveness::NotRunning)
    }
}

/// Judge liveness from the lock `holder` (as [`super::lifecycle::holder`]
/// reports it) and status.json; without a lock answer, from the heartbeat.
pub fn liveness(
    st: Option<&Status>,
    holder: Option<Option<Option<u32>>>,
    now: SystemTime,
) -> Liveness {
    match holder {
        Some(Some(pid)) => match st {
            // Its own status, even one saying "stopped": it is ending.
            Some(st) if pid.is_none_or(|p| p == st.pid) => {
                if is_stale(st, now) {
                    Liveness::Busy
                } else {
                    Liveness::Running
                }
            }
            _ => Liveness::Starting { pid },
        },
        Some(None) => Liveness::NotRunning,
        None => match st {
            Some(st) if is_running(st, now) => Liveness::Running,
            _ => Liveness::NotRunning,
        },
    }
}

/// `kato status [--json]`: 0 when running (busy included), 3 when not.
pub fn command(runtime_dir: &Path, state_dir: &Path, json: bool) -> Result<i32> {
    let now = SystemTime::now();
    let found = read(runtime_dir)?;
    let holder = match super::lifecycle::holder(state_dir) {
        Ok(h) => Some(h),
        Err(e) => {
            crate::terminal::eprintln(&format!("kato: {e}; judging by the heartbeat alone"));
            None
        }
    };
    let live = liveness(found.as_ref().map(|(st, _)| st), holder, now);
    // Titles and paths come from sessions and chats: print them inert.
    let mut out = crate::terminal::stdout();
    let r = if json {
        let mut v = found
            .map(|(_, v)| v)
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(obj) = v.as_object_mut() {
            obj.insert("running".into(), live.running().into());
            obj.insert("busy".into(), (live == Liveness::Busy).into());
            let lock_pid = holder.flatten().flatten();
            obj.insert("lock_pid".into(), serde_json::json!(lock_pid));
        }
        crate::terminal::json(&mut out, &v)
    } else {
        render_found(
            &mut out,
            found.as_ref().map(|(st, _)| st),
            &live,
            runtime_dir,
            state_dir,
            now,
        )
    };
    r.map_err(|e| Error::io("writing to stdout", e))?;
    Ok(if live.running() {
        exit::OK
    } else {
        exit::NOT_FOUND
    })
}

/// The dashboard, or why there is none.
fn render_found(
    out: &mut dyn Write,
    st: Option<&Status>,
    live: &Liveness,
    runtime_dir: &Path,
    state_dir: &Path,
    now: SystemTime,
) -> io::Result<()> {
    match (st, live) {
        (_, Liveness::Starting { pid }) => {
            let who = pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
            writeln!(
                out,
                "kato is running ({who}, holds the state lock) and has not written its status yet: starting"
            )?;
        }
        (None, _) => writeln!(
            out,
            "kato is not running (no {} ; start it with `kato start`)",
            path(runtime_dir).display()
        )?,
        (Some(st), live) => render(out, st, live, now)?,
    }
    if !live.running() {
        render_anchor(out, state_dir)?;
    }
    Ok(())
}

/// With the daemon stopped: the chain head its anchor holds.
fn render_anchor(out: &mut dyn Write, state_dir: &Path) -> io::Result<()> {
    let log = state_dir.join(crate::audit::FILE_NAME);
    match crate::audit::anchor::read(&crate::audit::anchor::path_for(&log)) {
        Ok(Some(h)) => writeln!(
            out,
            "  audit   {} record(s) anchored, head {}",
            h.records, h.hash
        ),
        Ok(None) => Ok(()),
        Err(e) => writeln!(out, "  audit   {e}"),
    }
}

fn ago(now_ms: u64, then_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The compact human dashboard.
pub fn render(
    out: &mut dyn Write,
    st: &Status,
    live: &Liveness,
    now: SystemTime,
) -> io::Result<()> {
    let now_ms = unix_ms(now);
    match live {
        Liveness::Running | Liveness::Busy | Liveness::Starting { .. } => {
            let state = if *live == Liveness::Busy {
                format!(
                    "running, busy: no heartbeat for {} but it holds its lock (a long backlog, or stopped by a signal)",
                    ago(now_ms, st.heartbeat_unix_ms)
                )
            } else {
                let phase = match (st.state, st.ready) {
                    (Phase::Stopping | Phase::Stopped, _) => "stopping",
                    (_, true) => "ready",
                    (_, false) => "starting",
                };
                format!(
                    "running (heartbeat {} ago, {phase})",
                    ago(now_ms, st.heartbeat_unix_ms)
                )
            };
            writeln!(
                out,
                "kato {} {state}; pid {}, up {}, sandbox {}",
                st.version,
                st.pid,
                ago(now_ms, st.started_unix_ms),
                st.sandbox_mode.as_str()
            )?;
        }
        Liveness::NotRunning => {
            let why = if st.state == Phase::Stopped {
                "stopped".to_owned()
            } else if !pid_alive(st.pid) {
                format!("pid {} is gone", st.pid)
            } else {
                format!("pid {} does not hold the state lock", st.pid)
            };
            writeln!(
                out,
                "kato is not running ({why}; last heartbeat {}); start it with `kato start`",
                st.heartbeat_at
            )?;
        }
    }
    if let Some(sb) = &st.sandbox {
        render_sandbox(out, sb)?;
    }
    if let Some(a) = st.audit.as_ref().filter(|_| live.running()) {
        render_audit(out, a)?;
    }
    render_providers(out, &st.providers)?;
    render_sessions(out, st)?;
    render_recordings(out, &st.recordings)?;
    if let Some(s) = &st.sync {
        crate::sync::auto::render_status(out, s)?;
    }
    render_warnings(out, st)
}

/// The newest warnings, then the skipped files (each with its reason).
fn render_warnings(out: &mut dyn Write, st: &Status) -> io::Result<()> {
    let (skips, general): (Vec<&Warning>, Vec<&Warning>) =
        st.warnings.iter().partition(|w| w.path.is_some());
    let line = |out: &mut dyn Write, w: &Warning| {
        let at = w.at.get(11..19).unwrap_or(&w.at);
        writeln!(out, "  {at} {}: {}", w.source, w.message)
    };
    if !general.is_empty() {
        writeln!(out)?;
        writeln!(out, "warnings (newest last):")?;
        for w in general.iter().skip(general.len().saturating_sub(10)) {
            line(out, w)?;
        }
    }
    if st.skipped_files > 0 {
        writeln!(out)?;
        writeln!(out, "skipped files ({}):", st.skipped_files)?;
        for w in skips.iter().take(10) {
            line(out, w)?;
        }
        if st.skipped_files > 10 {
            writeln!(
                out,
                "  … and {} more (`kato status --json` lists the first {MAX_SKIPPED_LISTED} with their reasons)",
                st.skipped_files - skips.len().min(10)
            )?;
        }
    }
    Ok(())
}

/// The audit log: its head, or why it cannot be written.
fn render_audit(out: &mut dyn Write, audit: &AuditStatus) -> io::Result<()> {
    match (&audit.error, audit.records, &audit.head) {
        (Some(e), _, _) => writeln!(
            out,
            "  audit   CANNOT WRITE ({e}): commands are refused until it can be written; {} record(s) wait",
            audit.deferred
        ),
        (None, Some(n), Some(h)) => writeln!(out, "  audit   {n} record(s), head {h}"),
        _ => Ok(()),
    }
}

/// One line per provider: sessions, files, stage, roots.
fn render_providers(out: &mut dyn Write, providers: &[ProviderStatus]) -> io::Result<()> {
    for p in providers {
        if !p.enabled {
            writeln!(out, "  {:<7} disabled", p.name)?;
            continue;
        }
        let roots: Vec<String> = p
            .roots
            .iter()
            .map(|r| {
                format!(
                    "{}{}",
                    r.path.display(),
                    if r.exists { "" } else { " (missing)" }
                )
            })
            .collect();
        let mut extra = String::new();
        if p.stage != ProviderStage::Running {
            extra.push_str(&format!(", stage {}", p.stage));
        }
        if p.restarts > 0 {
            extra.push_str(&format!(", {} restart(s)", p.restarts));
        }
        if p.backlog > 0 {
            extra.push_str(&format!(", {} file(s) of history to read", p.backlog));
        }
        writeln!(
            out,
            "  {:<7} {} session(s) in {} file(s){extra}; {}",
            p.name,
            p.sessions,
            p.files,
            roots.join(", ")
        )?;
    }
    Ok(())
}

/// The newest sessions, one line each.
fn render_sessions(out: &mut dyn Write, st: &Status) -> io::Result<()> {
    if !st.sessions.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "{:<20}  {:<7}  {:>7}  {:>5}  {:<13}  TITLE",
            "LAST ACTIVITY", "AGENT", "EVENTS", "CMDS", "SESSION"
        )?;
        for s in st.sessions.iter().take(20) {
            let when = s
                .last_activity
                .as_deref()
                .map(|t| t.get(..19).unwrap_or(t).replace('T', " "))
                .unwrap_or_else(|| "-".into());
            let id: String = s.id.chars().take(13).collect();
            writeln!(
                out,
                "{when:<20}  {:<7}  {:>7}  {:>5}  {id:<13}  {}",
                s.provider,
                s.events,
                s.commands_live + s.commands_historical,
                s.title
            )?;
        }
        if st.sessions_total > 20 {
            writeln!(
                out,
                "… and {} more (`kato status --json` lists them)",
                st.sessions_total - 20
            )?;
        }
    }
    Ok(())
}

/// Live recordings and their destinations.
fn render_recordings(
    out: &mut dyn Write,
    recordings: &[super::record::RecordingStatus],
) -> io::Result<()> {
    if !recordings.is_empty() {
        writeln!(out)?;
        writeln!(out, "recordings:")?;
        for r in recordings {
            let state = match (&r.paused, r.active) {
                (Some(why), _) => format!("PAUSED ({why})"),
                (None, _) if r.snapshot_pending => "snapshot".to_owned(),
                (None, true) => "recording".to_owned(),
                (None, false) => "stopped".to_owned(),
            };
            let session: String = r.session.chars().take(13).collect();
            let redacted: u64 = r.redactions.values().sum();
            writeln!(
                out,
                "  {state:<10}  {session:<13}  {} event(s), {} bytes{}  → {}",
                r.events,
                r.bytes,
                if redacted > 0 {
                    format!(", {redacted} secret(s) redacted")
                } else {
                    String::new()
                },
                r.destination.display()
            )?;
        }
    }
    Ok(())
}

/// `sandbox: enforce, Landlock ABI 6 (kernel 7): enforced — supervisor, orchestrator, …`
fn render_sandbox(out: &mut dyn Write, sb: &SandboxStatus) -> io::Result<()> {
    let kernel = sb
        .landlock_abi_kernel
        .map_or("no Landlock".to_owned(), |a| format!("kernel {a}"));
    let verdict = if sb.enforced {
        "every stage confined"
    } else {
        "DEGRADED"
    };
    writeln!(
        out,
        "  sandbox {}, Landlock ABI {} ({kernel}): {verdict}",
        sb.mode.as_str(),
        sb.landlock_abi_pinned
    )?;
    let stages: Vec<String> = sb
        .stages
        .iter()
        .map(|s| match s.state {
            StageState::Enforced => s.stage.to_string(),
            StageState::Degraded | StageState::Failed => {
                format!("{} ({})", s.stage, s.state.as_str().to_uppercase())
            }
        })
        .collect();
    writeln!(out, "    stages: {}", stages.join(", "))?;
    for m in &sb.process.missing {
        writeln!(out, "    process: {m}")?;
    }
    for s in sb.stages.iter().filter(|s| s.state != StageState::Enforced) {
        let why = s.error.clone().unwrap_or_else(|| s.missing.join("; "));
        writeln!(out, "    {}: {why}", s.stage)?;
    }
    for g in &sb.ancestor_grants {
        writeln!(
            out,
            "    {} is missing: the supervisor reads {} until it appears (no stage does)",
            g.root.display(),
            g.granted.display()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_767_887_798_102);
        assert_eq!(rfc3339(t), "2026-01-08T15:56:38.102Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn liveness_needs_pid_and_fresh_heartbeat() {
        let now = SystemTime::now();
        let mut st = Status {
            pid: std::process::id(),
            state: Phase::Running,
            heartbeat_unix_ms: unix_ms(now),
            ..Status::default()
        };
        assert!(is_running(&st, now));
        st.heartbeat_unix_ms = unix_ms(now) - 20_000;
        assert!(!is_running(&st, now), "stale heartbeat");
        st.heartbeat_unix_ms = unix_ms(now);
        st.state = Phase::Stopped;
        assert!(!is_running(&st, now), "stopped");
        st.state = Phase::Running;
        st.pid = 0x3fff_fff0;
        assert!(!is_running(&st, now), "no such pid");
    }

    #[test]
    fn liveness_is_judged_by_the_lock_holder() {
        let now = SystemTime::now();
        let fresh = Status {
            pid: 42,
            state: Phase::Running,
            heartbeat_unix_ms: unix_ms(now),
            ..Status::default()
        };
        let stale = Status {
            heartbeat_unix_ms: unix_ms(now) - 25_000,
            ..fresh.clone()
        };
        let held = Some(Some(Some(42)));
        assert_eq!(liveness(Some(&fresh), held, now), Liveness::Running);
        assert_eq!(liveness(Some(&stale), held, now), Liveness::Busy);
        assert!(Liveness::Busy.running());
        // Nobody holds the lock: not running, however fresh the heartbeat.
        assert_eq!(
            liveness(Some(&fresh), Some(None), now),
            Liveness::NotRunning
        );
        // Another process holds it: the status is an old one.
        assert_eq!(
            liveness(Some(&fresh), Some(Some(Some(7))), now),
            Liveness::Starting { pid: Some(7) }
        );
        assert_eq!(
            liveness(None, held, now),
            Liveness::Starting { pid: Some(42) }
        );
        // Its own status saying "stopped" while it still holds the lock: ending.
        let ending = Status {
            state: Phase::Stopped,
            ..fresh.clone()
        };
        assert_eq!(liveness(Some(&ending), held, now), Liveness::Running);
        // No answer from the lock: the heartbeat decides (pid 42 is not ours).
        assert_eq!(liveness(Some(&stale), None, now), Liveness::NotRunning);
    }

    #[test]
    // Long because: one scenario status and the whole dashboard it renders, side by side.
    fn dashboard_lists_sessions_and_warnings() {
        let now = SystemTime::now();
        let st = Status {
            version: "0.1.0".into(),
            pid: 42,
            state: Phase::Running,
            ready: true,
            started_unix_ms: unix_ms(now) - 65_000,
            heartbeat_unix_ms: unix_ms(now),
            sandbox_mode: SandboxMode::Enforce,
            providers: vec![ProviderStatus {
                name: ProviderId::Claude,
                enabled: true,
                stage: ProviderStage::Running,
                ready: false,
                restarts: 0,
                roots: vec![RootStatus {
                    path: "/r".into(),
                    exists: false,
                }],
                sessions: 1,
                files: 1,
                backlog: 0,
            }],
            sessions_total: 1,
            sessions: vec![SessionStatus {
                title: "fix the build".into(),
                last_activity: Some("2026-01-08T15:56:38.102Z".into()),
                events: 12,
                ..SessionStatus::new("0890bead-0ab3".into(), ProviderId::Claude)
            }],
            warnings: vec![
                Warning {
                    at: "2026-01-08T15:56:38.102Z".into(),
                    level: "warn".into(),
                    source: "state".into(),
                    message: "state file x set aside".into(),
                    path: None,
                },
                Warning {
                    at: "2026-01-08T15:56:39.000Z".into(),
                    level: "warn".into(),
                    source: "gemini".into(),
                    message: "skipped /g/s.json: a symbolic link".into(),
                    path: Some("/g/s.json".into()),
                },
            ],
            skipped_files: 12,
            audit: Some(AuditStatus {
                records: Some(7),
                head: Some("ab".repeat(32)),
                writable: true,
                ..AuditStatus::default()
            }),
            ..Status::default()
        };
        let mut st = st;
        st.sandbox = Some(SandboxStatus {
            mode: SandboxMode::Enforce,
            landlock_abi_pinned: 6,
            landlock_abi_kernel: Some(7),
            enforced: false,
            ancestor_grants: vec![AncestorGrantStatus {
                root: "/h/.gemini/tmp".into(),
                granted: "/h".into(),
            }],
            stages: vec![
                StageSandboxStatus {
                    state: StageState::Enforced,
                    ..StageSandboxStatus::new(StageName::Supervisor)
                },
                StageSandboxStatus {
                    state: StageState::Degraded,
                    missing: vec!["seccomp filter: nope".into()],
                    ..StageSandboxStatus::new(StageName::Provider("claude".into()))
                },
            ],
            ..SandboxStatus::default()
        });
        let mut out = Vec::new();
        render(&mut out, &st, &Liveness::Running, now).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("running (heartbeat 0s ago, ready); pid 42, up 1m05s"),
            "{text}"
        );
        assert!(
            text.contains("sandbox enforce, Landlock ABI 6 (kernel 7): DEGRADED"),
            "{text}"
        );
        assert!(
            text.contains("stages: supervisor, provider:claude (DEGRADED)"),
            "{text}"
        );
        assert!(
            text.contains("provider:claude: seccomp filter: nope"),
            "{text}"
        );
        assert!(
            text.contains("the supervisor reads /h until it appears"),
            "{text}"
        );
        assert!(text.contains("/r (missing)"), "{text}");
        assert!(text.contains("2026-01-08 15:56:38"), "{text}");
        assert!(text.contains("fix the build"), "{text}");
        assert!(
            text.contains("15:56:38 state: state file x set aside"),
            "{text}"
        );
        assert!(text.contains("skipped files (12):\n  15:56:39 gemini: skipped /g/s.json: a symbolic link\n  … and 11 more"), "{text}");
        assert!(
            text.contains(&format!("audit   7 record(s), head {}", "ab".repeat(32))),
            "{text}"
        );
    }
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn status_is_written_as_encoded_and_reads_back_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let st = Status {
            version: "0.1.0".into(),
            pid: 42,
            sessions_total: 3000,
            sessions: (0..3000)
                .map(|i| SessionStatus {
                    title: format!("session {i}"),
                    events: i,
                    files: vec![format!("/r/{i}.jsonl").into()],
                    ..SessionStatus::new(format!("{i:08x}"), ProviderId::Claude)
                })
                .collect(),
            ..Status::default()
        };
        write(tmp.path(), &st).unwrap();
        let on_disk = std::fs::read(path(tmp.path())).unwrap();
        assert_eq!(on_disk, serde_json::to_vec_pretty(&st).unwrap());
        let (back, _) = read(tmp.path()).unwrap().unwrap();
        assert_eq!(back.sessions.len(), 3000);
        assert_eq!(back.sessions[2999].title, "session 2999");
        // Rewritten whole, never appended to; no temp file is left.
        write(tmp.path(), &Status::default()).unwrap();
        let (back, _) = read(tmp.path()).unwrap().unwrap();
        assert!(back.sessions.is_empty());
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }
}
