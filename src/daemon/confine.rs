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
//! Every thread above is started by one [`Confiner`] (the supervisor's,
//! [`Confiner::supervised`]; the writer-spawner's own for writers,
//! [`Confiner::from_caller`]), which reports each stage to the [`Record`]:
//! status.json's `sandbox.stages` and one `sandbox.*` audit record each.
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
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::SystemTime;

use crate::config::Config;
use crate::sandbox::{
    profiles, Applied, Confiner, Domain, Enforcement, KernelLandlock, ProcessReport, SandboxError,
    SandboxMode, StageName, StageOutcome, StageReport, StageState, PINNED_LANDLOCK_ABI,
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
/// environment holds such a variable (or lacks [`ALLOCATOR_ENV`]),
/// re-execute `kato` (same pid, same arguments) with only the variables
/// it reads ([`is_startup_var`]) and the allocator setting: unlike
/// `remove_var`, which only unlinks a variable, this leaves no copy of
/// its value anywhere in the process (nor in `/proc/<pid>/environ`).
///
/// Must run before any thread exists. Returns only when no re-execution
/// happened (the re-executed process finds a clean environment and goes
/// on: this happens at most once).
pub fn clean_environment() -> CleanEnv {
    let (name, value) = ALLOCATOR_ENV;
    let foreign =
        std::env::vars_os().any(|(k, v)| !is_startup_var(&k) && (k != name || v != value));
    if !foreign && std::env::var_os(name).is_some_and(|v| v == value) {
        return CleanEnv::Clean;
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| OsString::from("kato"));
    let mut cmd = std::process::Command::new("/proc/self/exe");
    daemon_environment(cmd.arg0(argv0).args(args));
    // `exec` returns only when it failed.
    let e = cmd.exec();
    CleanEnv::InPlace(format!("re-executing /proc/self/exe failed: {e}"))
}

/// The allocator setting a daemon runs with, set by kato itself (never
/// inherited): mimalloc returns a freed page to the system at once, not
/// 10 ms later at the next allocation of the same thread. A stage that
/// goes idle after reading a long history makes no next allocation, and
/// kept what it had freed: 56 MiB instead of 39 MiB resident after
/// reading 1 GiB in 10,000 files (`ci/bench-daemon`). mimalloc reads it
/// once, as the process starts.
pub const ALLOCATOR_ENV: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "0");

/// Give `cmd` the environment a daemon starts with: the variables
/// `kato run` reads ([`is_startup_var`]) and [`ALLOCATOR_ENV`], nothing
/// else (no API key, token or `PATH`).
pub fn daemon_environment(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        if is_startup_var(&k) {
            cmd.env(k, v);
        }
    }
    cmd.env(ALLOCATOR_ENV.0, ALLOCATOR_ENV.1)
}

/// A variable `kato run` reads while it starts: one of [`STARTUP_ENV`], or
/// an agent's own variable that moves its files
/// ([`crate::provider::ConfigSection::env_override`], e.g.
/// `GEMINI_CLI_HOME`), which the default roots follow.
pub fn is_startup_var(k: &std::ffi::OsStr) -> bool {
    STARTUP_ENV.iter().any(|w| k == std::ffi::OsStr::new(w))
        || crate::provider::registry()
            .iter()
            .filter_map(|p| p.config_section().env_override)
            .any(|w| k == std::ffi::OsStr::new(w))
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
    // Made beneath the base's descriptor, never through a link swapped in
    // on the way (the base itself is configuration, resolved once).
    let rel = dir.strip_prefix(&base).unwrap_or(dir);
    match crate::policy::create_dir_beneath(&base, rel) {
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
// The record of confinement
// ---------------------------------------------------------------------------

/// Start-up facts for [`Record::new`].
pub struct Startup<'a> {
    pub mode: SandboxMode,
    pub hardened: &'a ProcessReport,
    pub env: &'a CleanEnv,
    pub env_kept: Vec<String>,
    pub supervisor: &'a Domain,
    pub applied: Result<&'a Applied, &'a SandboxError>,
    pub grants: &'a [profiles::AncestorGrant],
}

/// How `kato run` is confined: status.json's `sandbox`, and the stage
/// outcomes not yet audited. Every stage reports here, from its own
/// thread, through the daemon's [`Confiner`] ([`StageReport`]).
pub struct Record {
    status: Mutex<SandboxStatus>,
    /// Process-level degradations not yet shown as status warnings.
    notices: Mutex<Vec<(String, String)>>,
    /// Stage confinements not yet audited.
    outcomes: Mutex<Vec<StageSandboxStatus>>,
}

impl Record {
    /// The process-wide confinement, with the supervisor as first stage.
    pub fn new(s: Startup<'_>) -> Record {
        let r = s.hardened;
        let mut missing: Vec<String> = r.missing.iter().map(ToString::to_string).collect();
        let environment = match s.env {
            CleanEnv::Clean => "clean: inherited variables kato does not read were dropped by \
                                re-executing it"
                .to_owned(),
            CleanEnv::InPlace(why) => {
                missing.push(format!("clean environment: {why}"));
                format!("cleaned in place ({why})")
            }
        };
        let name = thread::current().name().unwrap_or("?").to_owned();
        let supervisor = stage_status(StageName::Supervisor, &name, s.supervisor, s.applied);
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
            mode: s.mode,
            landlock_abi_pinned: PINNED_LANDLOCK_ABI,
            landlock_abi_kernel: KernelLandlock::probe().abi(),
            enforced: false,
            process: ProcessSandboxStatus {
                no_new_privs: r.no_new_privs,
                capabilities_empty: r.capabilities.is_empty(),
                core_dumps_disabled: r.core_dumps_disabled,
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
        Record {
            status: Mutex::new(status),
            notices: Mutex::new(notices),
            outcomes: Mutex::new(vec![supervisor]),
        }
    }

    fn push(&self, s: StageSandboxStatus) {
        if let Ok(mut v) = self.outcomes.lock() {
            v.push(s.clone());
        }
        if let Ok(mut st) = self.status.lock() {
            match st.stages.iter_mut().find(|x| x.same_stage(&s)) {
                Some(old) => *old = s,
                None => st.stages.push(s),
            }
        }
    }

    /// The sandbox part of status.json.
    pub fn snapshot(&self) -> Option<SandboxStatus> {
        let mut s = self.status.lock().ok()?.clone();
        s.enforced = s.process.missing.is_empty()
            && s.stages.iter().all(|x| x.state == StageState::Enforced);
        Some(s)
    }

    /// Process-level degradations recorded since the last call, as
    /// (source, message), plus one for every stage outcome that is not
    /// fully enforced (those stay in [`Record::take_outcomes`] too).
    pub fn take_notices(&self) -> Vec<(String, String)> {
        let mut v = self
            .notices
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default();
        if let Ok(o) = self.outcomes.lock() {
            v.extend(
                o.iter()
                    .filter_map(notice_for)
                    .map(|m| ("sandbox".to_owned(), m)),
            );
        }
        v
    }

    /// Stage confinements recorded since the last call (for the audit log).
    pub fn take_outcomes(&self) -> Vec<StageSandboxStatus> {
        self.outcomes
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// The ancestor the supervisor reads in place of `root`, when `root`
    /// was missing at start.
    pub fn ancestor_grant(&self, root: &Path) -> Option<PathBuf> {
        let st = self.status.lock().ok()?;
        st.ancestor_grants
            .iter()
            .find(|g| g.root == root)
            .map(|g| g.granted.clone())
    }
}

impl StageReport for Record {
    fn stage(&self, o: StageOutcome<'_>) {
        let s = stage_status(o.stage.clone(), o.thread, o.domain, o.result);
        let stage = o.stage.as_str();
        match (&o.result, s.state) {
            (Err(e), _) => tracing::error!(%stage, "stage not confined, not run: {e}"),
            (Ok(_), StageState::Enforced) => {
                tracing::debug!(%stage, landlock = s.landlock.as_str(), "stage confined");
            }
            (Ok(_), StageState::Degraded | StageState::Failed) => {
                tracing::warn!(%stage, missing = %s.missing.join("; "), "stage confinement degraded");
            }
        }
        self.push(s);
    }

    /// A writer's entry goes with its destination: status.json lists the
    /// writers that are open, not every destination ever written.
    fn ended(&self, stage: &StageName, domain: &Domain) {
        if !stage.per_destination() {
            return;
        }
        if let Ok(mut st) = self.status.lock() {
            st.stages
                .retain(|x| !(x.stage == *stage && x.write_files == domain.write_files));
        }
    }
}

fn stage_status(
    stage: StageName,
    thread: &str,
    domain: &Domain,
    outcome: Result<&Applied, &SandboxError>,
) -> StageSandboxStatus {
    let mut s = StageSandboxStatus {
        thread: thread.to_owned(),
        read: domain.read.clone(),
        write_files: domain.write_files.clone(),
        create_in: domain.create_in.clone(),
        write_trees: domain.write_trees.clone(),
        at: rfc3339(SystemTime::now()),
        ..StageSandboxStatus::new(stage)
    };
    match outcome {
        Ok(a) => {
            s.state = StageState::of(a);
            s.landlock = a.landlock.status;
            s.seccomp = a.seccomp.installed;
            s.skipped = a
                .skipped
                .iter()
                .map(|k| format!("{}: {}", k.path.display(), k.reason))
                .collect();
            s.missing = a.missing.iter().map(ToString::to_string).collect();
        }
        Err(e) => {
            s.state = StageState::Failed;
            s.landlock = Enforcement::NotEnforced;
            s.error = Some(e.to_string());
        }
    }
    s
}

/// The status warning for a stage that is not fully confined.
pub fn notice_for(s: &StageSandboxStatus) -> Option<String> {
    match s.state {
        StageState::Enforced => None,
        StageState::Degraded => Some(format!(
            "the {} stage runs with degraded confinement: {}",
            s.stage,
            s.missing.join("; ")
        )),
        StageState::Failed => Some(format!(
            "the {} stage could not be confined: {}",
            s.stage,
            s.error.as_deref().unwrap_or("unknown error")
        )),
    }
}

/// The daemon's confinement: how it starts its stages (one [`Confiner`],
/// from the supervisor) and the [`Record`] they report to.
#[derive(Clone)]
pub struct Confinement {
    pub confiner: Confiner,
    record: Option<Arc<Record>>,
}

impl Confinement {
    /// Stages started by `confiner` report to `record`.
    pub fn new(confiner: Confiner, record: Arc<Record>) -> Confinement {
        Confinement {
            confiner: confiner.with_report(record.clone()),
            record: Some(record),
        }
    }

    /// Unit tests of the orchestrator: stages are not confined and
    /// nothing is recorded (status.json has no `sandbox`).
    #[cfg(test)]
    pub(crate) fn unconfined() -> Confinement {
        Confinement {
            confiner: Confiner::unconfined(),
            record: None,
        }
    }

    /// Stages narrow to their domains (false only in unit tests).
    pub fn confines(&self) -> bool {
        self.confiner.confines()
    }

    pub fn snapshot(&self) -> Option<SandboxStatus> {
        self.record.as_ref()?.snapshot()
    }

    pub fn take_notices(&self) -> Vec<(String, String)> {
        self.record
            .as_ref()
            .map(|r| r.take_notices())
            .unwrap_or_default()
    }

    pub fn take_outcomes(&self) -> Vec<StageSandboxStatus> {
        self.record
            .as_ref()
            .map(|r| r.take_outcomes())
            .unwrap_or_default()
    }

    pub fn ancestor_grant(&self, root: &Path) -> Option<PathBuf> {
        self.record.as_ref()?.ancestor_grant(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
