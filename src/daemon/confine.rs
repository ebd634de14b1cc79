//! Confinement of `kato run` (SPEC §8): what happens before the first
//! thread, the supervisor that spawns every stage, and the record of how
//! each stage was confined (status.json `sandbox`).
//!
//! ```text
//! main thread = supervisor   process-wide union domain; runs spawn requests only
//!  ├─ kato-log               narrows to the logs dir (detached)
//!  ├─ kato-orch              narrows to config + state dir + runtime dir
//!  │    (asks the supervisor for every thread below)
//!  ├─ kato-signals           narrows to nothing
//!  ├─ kato-writers           narrows to the export roots
//!  │    └─ kato-writer       narrows to its one destination file
//!  └─ kato-<provider>        narrows to the roots of its provider that exist
//! ```
//!
//! Why a supervisor: Landlock domains only narrow and are inherited by the
//! threads a thread creates. A stage restarted by the orchestrator (after a
//! crash, or to include a provider root that appeared) must start from a
//! domain that still covers its roots, so threads are created by the main
//! thread, which keeps the union and never reads an untrusted byte.
//!
//! Roots that do not exist at start cannot get a Landlock rule. The union
//! grants read on their nearest existing ancestor instead — to the
//! supervisor only: every stage narrows to exactly the roots that exist
//! when it starts, and the orchestrator restarts a provider stage when one
//! of its roots appears (or is replaced), so the new stage can include it.
//! A root that appears through a symbolic link leading outside the place it
//! had when kato started is not granted (see [`late_root_problem`]).

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::SystemTime;

use crate::config::Config;
use crate::sandbox::{
    profiles, Applied, Domain, KernelLandlock, ProcessReport, SandboxError, SandboxMode,
    PINNED_LANDLOCK_ABI,
};

use super::status::{
    rfc3339, AncestorGrantStatus, ProcessSandboxStatus, SandboxStatus, StageSandboxStatus,
};

// ---------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------

/// Variables `kato run` reads while it starts: the configuration lookup
/// and the journald hint. Everything else is dropped before the
/// configuration is read again in a clean process.
pub const STARTUP_ENV: &[&str] = &[
    "HOME",
    "KATO_CONFIG",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "CONFIGURATION_DIRECTORY",
    "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY",
    "LOGS_DIRECTORY",
    "JOURNAL_STREAM",
];

/// What stays in the environment once the configuration is resolved
/// (`log::init` reads it).
pub const RUNTIME_ENV: &[&str] = &["JOURNAL_STREAM"];

/// How the environment was cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanEnv {
    /// Only [`STARTUP_ENV`] variables were inherited (or this process is
    /// the clean re-execution, which inherits nothing else).
    Clean,
    /// Re-executing failed: variables were removed in place (their
    /// original bytes stay in this process's memory).
    InPlace(String),
}

/// Make sure no inherited variable kato does not read (an API key of the
/// user who started it) is within reach of any stage. When the
/// environment holds such a variable, re-execute `kato` (same pid, same
/// arguments) with only [`STARTUP_ENV`]: unlike `remove_var`, which only
/// unlinks a variable, this leaves no copy of its value anywhere in the
/// process (nor in `/proc/<pid>/environ`).
///
/// Must run before any thread exists. Returns only when no re-execution
/// happened (the re-executed process finds a clean environment and goes
/// on: this happens at most once).
pub fn clean_environment() -> CleanEnv {
    let foreign = std::env::vars_os().any(|(k, _)| !is_startup_var(&k));
    if !foreign {
        return CleanEnv::Clean;
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| OsString::from("kato"));
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(argv0).args(args).env_clear();
    for (k, v) in std::env::vars_os() {
        if is_startup_var(&k) {
            cmd.env(k, v);
        }
    }
    // `exec` returns only when it failed.
    let e = cmd.exec();
    CleanEnv::InPlace(format!("re-executing /proc/self/exe failed: {e}"))
}

fn is_startup_var(k: &std::ffi::OsStr) -> bool {
    STARTUP_ENV.iter().any(|w| k == std::ffi::OsStr::new(w))
}

// ---------------------------------------------------------------------------
// Paths prepared before the union is applied
// ---------------------------------------------------------------------------

/// Create the default export directory when it is missing, so writers
/// (and `::record` without a path) have a place to create files in: it
/// is kato's own default destination. It is created only beneath an
/// export root that exists (or, when it is an export root itself, beneath
/// an existing parent); no other missing export root is ever created — a
/// vault that is not mounted stays absent. Returns a note when it could
/// not be created.
pub fn prepare_default_export_dir(cfg: &Config) -> Option<String> {
    let dir = &cfg.default_dir;
    if dir.is_dir() {
        return None;
    }
    let root = cfg
        .allowed_roots
        .iter()
        .filter(|r| dir.starts_with(r) && *r != dir)
        .max_by_key(|r| r.components().count());
    let base = match root {
        Some(r) => r.clone(),
        None => dir.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    if !base.is_dir() {
        return Some(format!(
            "the default export directory {} is missing and {} does not exist; \
             recordings without a path cannot be written until both exist and kato is restarted",
            dir.display(),
            base.display()
        ));
    }
    match super::state::ensure_private_dir(dir) {
        Ok(()) => {
            tracing::debug!(dir = %dir.display(), "default export directory created");
            None
        }
        Err(e) => Some(format!(
            "cannot create the default export directory {}: {e}",
            dir.display()
        )),
    }
}

/// Identity (device, inode) of the directory a path resolves to now.
pub fn dir_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// A provider root missing at start is granted to the supervisor through
/// its nearest existing ancestor. When it appears, it is given to its stage
/// only if it resolves to where it would have been at start — no symbolic
/// link among the components created since — so a link cannot lead the
/// stage elsewhere under the ancestor (the union would allow that). `None`
/// when the root is fine to grant.
pub fn late_root_problem(root: &Path, ancestor: &Path) -> Option<String> {
    let rest = root.strip_prefix(ancestor).ok()?;
    let expected = std::fs::canonicalize(ancestor).ok()?.join(rest);
    match std::fs::canonicalize(root) {
        Ok(real) if real == expected => None,
        Ok(real) => Some(format!(
            "the provider root {} appeared after start as a symbolic link to {}; \
             kato does not follow it (restart kato to accept it)",
            root.display(),
            real.display()
        )),
        Err(_) => None,
    }
}

// ---------------------------------------------------------------------------
// The supervisor
// ---------------------------------------------------------------------------

/// A spawn request: runs on the supervisor's thread.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Creates stage threads from the supervisor (the main thread, in the
/// process-wide domain), whichever thread asks. Cloneable; the supervisor
/// ends once every `Spawner` is dropped.
#[derive(Clone)]
pub(crate) struct Spawner {
    tx: Option<Sender<Job>>,
}

impl Spawner {
    /// Threads are created by the calling thread itself (tests, and any
    /// use outside `kato run`).
    pub(crate) fn direct() -> Spawner {
        Spawner { tx: None }
    }

    /// A spawner whose requests the returned receiver serves ([`serve`]).
    pub(crate) fn supervised() -> (Spawner, Receiver<Job>) {
        let (tx, rx) = mpsc::channel();
        (Spawner { tx: Some(tx) }, rx)
    }

    /// Start a thread named `name` running `f`, created by the supervisor.
    pub(crate) fn spawn<T, F>(&self, name: String, f: F) -> io::Result<JoinHandle<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = reply_tx.send(thread::Builder::new().name(name).spawn(f));
        });
        match &self.tx {
            None => job(),
            Some(tx) => tx
                .send(job)
                .map_err(|_| io::Error::other("the supervisor has stopped"))?,
        }
        reply_rx
            .recv()
            .map_err(|_| io::Error::other("the supervisor dropped a spawn request"))?
    }
}

/// The supervisor's loop (main thread): create the threads asked for
/// until every [`Spawner`] is gone.
pub(crate) fn serve(rx: Receiver<Job>) {
    for job in rx {
        job();
    }
}

// ---------------------------------------------------------------------------
// The record of confinement
// ---------------------------------------------------------------------------

struct Context {
    mode: SandboxMode,
    status: Mutex<SandboxStatus>,
    /// Process-level degradations not yet shown as status warnings.
    notices: Mutex<Vec<(String, String)>>,
    /// Stage confinements not yet audited.
    outcomes: Mutex<Vec<StageSandboxStatus>>,
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

/// Start-up facts for [`init`].
pub struct Startup<'a> {
    pub mode: SandboxMode,
    pub hardened: Result<&'a ProcessReport, String>,
    pub env: &'a CleanEnv,
    pub env_kept: Vec<String>,
    pub supervisor: &'a Domain,
    pub applied: Result<&'a Applied, String>,
    pub grants: &'a [profiles::AncestorGrant],
}

/// Record the process-wide confinement. From now on [`confine_stage`]
/// applies stage domains for real (before this, in tests and outside
/// `kato run`, it only records nothing and returns `Ok`).
pub fn init(s: Startup<'_>) {
    let mut missing: Vec<String> = Vec::new();
    let (no_new_privs, capabilities_empty, core_dumps_disabled) = match s.hardened {
        Ok(r) => {
            missing.extend(r.missing.iter().map(ToString::to_string));
            (
                r.no_new_privs,
                r.capabilities.is_empty(),
                r.core_dumps_disabled,
            )
        }
        Err(e) => {
            missing.push(e.clone());
            (false, false, false)
        }
    };
    let environment = match s.env {
        CleanEnv::Clean => "clean: inherited variables kato does not read were dropped by \
                            re-executing it"
            .to_owned(),
        CleanEnv::InPlace(why) => {
            missing.push(format!("clean environment: {why}"));
            format!("cleaned in place ({why})")
        }
    };
    let supervisor = stage_status("supervisor", s.supervisor, s.applied);
    let notices = missing
        .iter()
        .map(|m| {
            (
                "sandbox".to_owned(),
                format!("process hardening degraded: {m}"),
            )
        })
        .collect();
    let status = SandboxStatus {
        mode: s.mode.as_str().to_owned(),
        landlock_abi_pinned: PINNED_LANDLOCK_ABI,
        landlock_abi_kernel: KernelLandlock::probe().abi(),
        enforced: false,
        process: ProcessSandboxStatus {
            no_new_privs,
            capabilities_empty,
            core_dumps_disabled,
            environment,
            environment_kept: s.env_kept,
            missing,
        },
        ancestor_grants: s
            .grants
            .iter()
            .map(|g| AncestorGrantStatus {
                root: g.root.clone(),
                granted: g.granted.clone(),
            })
            .collect(),
        stages: vec![supervisor.clone()],
    };
    let ctx = Context {
        mode: s.mode,
        status: Mutex::new(status),
        notices: Mutex::new(notices),
        outcomes: Mutex::new(vec![supervisor]),
    };
    let _ = CONTEXT.set(ctx);
}

/// The sandbox mode of `kato run`, once [`init`] ran.
pub fn mode() -> Option<SandboxMode> {
    CONTEXT.get().map(|c| c.mode)
}

fn paths(v: &[PathBuf]) -> Vec<PathBuf> {
    v.to_vec()
}

fn stage_status(
    stage: &str,
    domain: &Domain,
    outcome: Result<&Applied, String>,
) -> StageSandboxStatus {
    let mut s = StageSandboxStatus {
        stage: stage.to_owned(),
        thread: thread::current().name().unwrap_or("?").to_owned(),
        read: paths(&domain.read),
        write_files: paths(&domain.write_files),
        create_in: paths(&domain.create_in),
        write_trees: paths(&domain.write_trees),
        at: rfc3339(SystemTime::now()),
        ..StageSandboxStatus::default()
    };
    match outcome {
        Ok(a) => {
            s.state = if a.is_fully_enforced() {
                "enforced"
            } else {
                "degraded"
            }
            .to_owned();
            s.landlock = a.landlock.status.as_str().to_owned();
            s.seccomp = a.seccomp.installed;
            s.skipped = a
                .skipped
                .iter()
                .map(|k| format!("{}: {}", k.path.display(), k.reason))
                .collect();
            s.missing = a.missing.iter().map(ToString::to_string).collect();
        }
        Err(e) => {
            s.state = "failed".to_owned();
            s.landlock = "not-enforced".to_owned();
            s.error = Some(e);
        }
    }
    s
}

/// The status warning for a stage that is not fully confined.
pub fn notice_for(s: &StageSandboxStatus) -> Option<String> {
    match s.state.as_str() {
        "enforced" => None,
        "degraded" => Some(format!(
            "the {} stage runs with degraded confinement: {}",
            s.stage,
            s.missing.join("; ")
        )),
        _ => Some(format!(
            "the {} stage could not be confined: {}",
            s.stage,
            s.error.as_deref().unwrap_or("unknown error")
        )),
    }
}

fn record(s: StageSandboxStatus) {
    let Some(ctx) = CONTEXT.get() else { return };
    if let Ok(mut v) = ctx.outcomes.lock() {
        v.push(s.clone());
    }
    if let Ok(mut st) = ctx.status.lock() {
        match st.stages.iter_mut().find(|x| x.stage == s.stage) {
            Some(old) => *old = s,
            None => st.stages.push(s),
        }
    }
}

/// Confine the calling thread to `domain` as stage `stage` and record the
/// outcome. `Ok` means the thread may run its work: fully confined, or
/// (best-effort mode) as far as the kernel allowed. In enforce mode any
/// shortfall is an `Err` and the caller must not run the stage. Outside
/// `kato run` ([`init`] not called) nothing is applied.
pub fn confine_stage(stage: &str, domain: &Domain) -> Result<Option<Applied>, SandboxError> {
    let Some(ctx) = CONTEXT.get() else {
        return Ok(None);
    };
    match domain.apply(ctx.mode) {
        Ok(applied) => {
            let s = stage_status(stage, domain, Ok(&applied));
            if s.state == "enforced" {
                tracing::debug!(stage, landlock = %s.landlock, "stage confined");
            } else {
                tracing::warn!(stage, missing = %s.missing.join("; "), "stage confinement degraded");
            }
            record(s);
            Ok(Some(applied))
        }
        Err(e) => {
            record(stage_status(stage, domain, Err(e.to_string())));
            if ctx.mode == SandboxMode::Enforce {
                tracing::error!(stage, "stage not confined, not run: {e}");
                Err(e)
            } else {
                tracing::warn!(stage, "stage runs unconfined (best-effort): {e}");
                Ok(None)
            }
        }
    }
}

/// The sandbox part of status.json, when running under `kato run`.
pub fn snapshot() -> Option<SandboxStatus> {
    let ctx = CONTEXT.get()?;
    let mut s = ctx.status.lock().ok()?.clone();
    s.enforced = s.process.missing.is_empty() && s.stages.iter().all(|x| x.state == "enforced");
    Some(s)
}

/// Process-level degradations recorded since the last call, as
/// (source, message), plus one for every stage outcome that is not fully
/// enforced (those stay in [`take_outcomes`] too).
pub fn take_notices() -> Vec<(String, String)> {
    let Some(ctx) = CONTEXT.get() else {
        return Vec::new();
    };
    let mut v = ctx
        .notices
        .lock()
        .map(|mut n| std::mem::take(&mut *n))
        .unwrap_or_default();
    if let Ok(o) = ctx.outcomes.lock() {
        v.extend(
            o.iter()
                .filter_map(notice_for)
                .map(|m| ("sandbox".to_owned(), m)),
        );
    }
    v
}

/// Stage confinements recorded since the last call (for the audit log).
pub fn take_outcomes() -> Vec<StageSandboxStatus> {
    CONTEXT
        .get()
        .and_then(|c| c.outcomes.lock().ok().map(|mut v| std::mem::take(&mut *v)))
        .unwrap_or_default()
}

/// The ancestor the supervisor reads in place of `root`, when `root` was
/// missing at start.
pub fn ancestor_grant(root: &Path) -> Option<PathBuf> {
    let ctx = CONTEXT.get()?;
    let st = ctx.status.lock().ok()?;
    st.ancestor_grants
        .iter()
        .find(|g| g.root == root)
        .map(|g| g.granted.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervised_spawner_creates_threads_on_the_serving_thread() {
        let (spawner, rx) = Spawner::supervised();
        let server = thread::spawn(move || {
            let me = thread::current().id();
            serve(rx);
            me
        });
        let h = spawner
            .spawn("kato-test".into(), || {
                thread::current().name().map(str::to_owned)
            })
            .unwrap();
        assert_eq!(h.join().unwrap().as_deref(), Some("kato-test"));
        drop(spawner);
        server.join().unwrap();
        // Without a supervisor the caller spawns.
        let h = Spawner::direct().spawn("x".into(), || 7).unwrap();
        assert_eq!(h.join().unwrap(), 7);
    }

    #[test]
    fn a_confined_stage_still_reaches_a_pathname_unix_socket() {
        // journald: at the pinned ABI (6) Landlock does not handle
        // connecting to pathname UNIX sockets (ABI 9 would), and the
        // seccomp filter allows AF_UNIX, so a stage that logs to the
        // journal keeps working with no rule for /run/systemd.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.sock");
        let server = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let p = path.clone();
        let sent = thread::spawn(move || {
            let d = Domain::default();
            let applied = d.apply(SandboxMode::BestEffort).unwrap();
            assert_eq!(
                applied.landlock.status,
                crate::sandbox::Enforcement::FullyEnforced
            );
            // No file rule at all: reading the socket's directory fails …
            assert!(std::fs::read_dir(p.parent().unwrap()).is_err());
            // … but sending to the socket works.
            let c = std::os::unix::net::UnixDatagram::unbound().unwrap();
            c.send_to(b"MESSAGE=hi\n", &p).map(|_| ())
        })
        .join()
        .unwrap();
        sent.unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MESSAGE=hi\n");
    }

    #[test]
    fn a_late_root_through_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("home");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(elsewhere.join("tmp")).unwrap();
        let root = base.join(".gemini/tmp");
        std::fs::create_dir_all(base.join(".gemini")).unwrap();
        std::fs::create_dir(&root).unwrap();
        assert_eq!(late_root_problem(&root, &base), None);
        std::fs::remove_dir(&root).unwrap();
        std::fs::remove_dir(base.join(".gemini")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, base.join(".gemini")).unwrap();
        let p = late_root_problem(&root, &base).unwrap();
        assert!(p.contains("symbolic link"), "{p}");
    }

    #[test]
    fn the_default_export_dir_is_created_only_under_an_existing_base() {
        let tmp = tempfile::tempdir().unwrap();
        let env = crate::config::Env {
            home: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let cfg = Config::from_toml("", None, &env).unwrap();
        assert_eq!(prepare_default_export_dir(&cfg), None);
        assert!(cfg.default_dir.is_dir());
        let toml = format!(
            "[exports]\nallowed_roots = [\"{0}/vault\"]\ndefault_dir = \"{0}/vault/kato\"\n",
            tmp.path().display()
        );
        let cfg = Config::from_toml(&toml, None, &env).unwrap();
        let note = prepare_default_export_dir(&cfg).unwrap();
        assert!(note.contains("does not exist"), "{note}");
        assert!(
            !tmp.path().join("vault").exists(),
            "a missing root was created"
        );
    }
}
