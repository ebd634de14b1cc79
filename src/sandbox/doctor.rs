//! `kato doctor`: the effective policy and the confinement state of the
//! running process, as JSON ([`DoctorReport`] via serde) or text (`Display`).
//!
//! Run it hardened: `main` calls [`harden_process`](super::harden_process)
//! first, then [`report`], which applies the daemon's process-wide domain
//! (as `kato run` would apply it now: [`profiles::supervisor`]) in a probe
//! thread and reports what the kernel enforced there.
//!
//! JSON shape (`kato doctor --json`), every key always present:
//!
//! ```text
//! {
//!   "kato_version": "0.1.0",
//!   "kernel": { "release": "6.18.4", "machine": "x86_64" },
//!   "mode": "enforce" | "best-effort",
//!   "landlock": { "kernel": { "state": "available", "abi": 7 }   // or "not-enabled" / "not-implemented"
//!                 , "abi_pinned": 6 },
//!   "process": {                         // the thread that called report()
//!     "no_new_privs": true, "seccomp": "disabled" | "strict" | "filter",
//!     "capabilities": { "effective": "0000000000000000", "permitted": "…", "inheritable": "…",
//!                       "ambient": "…", "bounding": "…", "last_cap": 40 } | null,
//!     "dumpable": false, "core_limit": 0 | null, "umask": "0077" },
//!   "probe": {                           // a thread confined to the process-wide domain
//!     "applied": { "mode", "landlock": { "status": "fully-enforced" | "partially-enforced" | "not-enforced",
//!                  "abi_pinned", "abi_kernel" }, "seccomp": { "installed", "denied": [..] },
//!                  "no_new_privs", "capabilities_empty", "skipped": [{ "path", "reason" }],
//!                  "missing": [{ "feature", "advice" }] } | null,
//!     "error": "…" | null,
//!     "thread": { "no_new_privs", "seccomp", "capabilities" } },
//!   "policy": {                          // the normalized policy; policy_hash is its SHA-256
//!     "version": 1, "mode", "landlock_abi": 6,
//!     "rights": { "create_in": [..], "list": [..], "read_dir": [..], "read_file": [..], "write_file": [..],
//!                 "write_file_truncate": [..], "write_tree": [..] },   // Landlock access rights
//!     "stages": [{ "stage": "startup" | "process" | "watch+parse" | "orchestrate" | "write-spawner" | "write" | "log" | "signals" | "export",
//!                  "instance": "…", "read": [paths], "list": [dirs, when any], "write_files": [..], "create_in": [..],
//!                  "write_trees": [..], "truncate", "exec", "network" }],
//!     "seccomp_denied": [..] },
//!   "policy_hash": "64 hex digits",
//!   "supervisor": { "ancestor_grants": [{ "root", "granted" }], "note": "…" },
//!   "not_covered": ["…"],
//!   "verdict": { "status": "enforced" | "degraded" | "failing", "problems": ["…"] }
//! }
//! ```
//!
//! Paths in angle brackets (`<destination file>`) stand for paths known
//! only at run time.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::landlock::right_names;
use super::{
    denied_syscalls, profiles, Applied, Domain, KernelLandlock, SandboxMode, ThreadState,
    PINNED_LANDLOCK_ABI,
};
use crate::config::Config;

/// Version of the normalized policy JSON (bump when its shape changes).
pub const POLICY_VERSION: u32 = 1;

/// One stage's row of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagePolicy {
    pub stage: &'static str,
    pub instance: String,
    pub read: Vec<String>,
    /// Directories listed only (names, no file opened).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub list: Vec<String>,
    pub write_files: Vec<String>,
    pub create_in: Vec<String>,
    pub write_trees: Vec<String>,
    pub truncate: bool,
    pub exec: bool,
    pub network: bool,
}

impl StagePolicy {
    fn new(stage: &'static str, instance: impl Into<String>, d: &Domain) -> StagePolicy {
        fn norm(v: &[PathBuf]) -> Vec<String> {
            let mut s: Vec<String> = v.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            s.sort();
            s.dedup();
            s
        }
        StagePolicy {
            stage,
            instance: instance.into(),
            read: norm(&d.read),
            list: norm(&d.list),
            write_files: norm(&d.write_files),
            create_in: norm(&d.create_in),
            write_trees: norm(&d.write_trees),
            truncate: d.truncate,
            exec: d.exec,
            network: d.network,
        }
    }
}

/// The whole confinement policy for a configuration, normalized: fixed
/// field and stage order, sorted path lists. Its JSON is what
/// [`Policy::hash`] digests, so the hash changes exactly when a right, a
/// path, the mode or the pinned ABI changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub version: u32,
    pub mode: SandboxMode,
    pub landlock_abi: u8,
    /// Landlock rights per kind of grant.
    pub rights: BTreeMap<&'static str, Vec<&'static str>>,
    pub stages: Vec<StagePolicy>,
    pub seccomp_denied: Vec<&'static str>,
}

/// Placeholder for a writer's destination in the policy.
pub const DESTINATION: &str = "<destination file>";
/// Placeholders for the one-shot export.
pub const SESSION_FILES: &str = "<session files>";
pub const OUTPUT_FILE: &str = "<output file>";

impl Policy {
    pub fn from_config(config: &Config, mode: SandboxMode) -> Policy {
        let cfg = config.source.as_deref();
        let plain = Domain::default();
        let mut rights = BTreeMap::new();
        rights.insert("read_dir", right_names("read", true, &plain));
        rights.insert("read_file", right_names("read", false, &plain));
        rights.insert("write_file", right_names("write", false, &plain));
        rights.insert(
            "write_file_truncate",
            right_names(
                "write",
                false,
                &Domain {
                    truncate: true,
                    ..Domain::default()
                },
            ),
        );
        rights.insert("list", right_names("list", true, &plain));
        rights.insert("create_in", right_names("create", true, &plain));
        rights.insert("write_tree", right_names("write-tree", true, &plain));

        let mut stages = vec![
            StagePolicy::new("process", "process-wide (union)", &profiles::daemon(config)),
            StagePolicy::new("startup", "main", &profiles::startup(cfg)),
        ];
        for p in config.providers.iter().filter(|p| p.enabled) {
            stages.push(StagePolicy::new(
                "watch+parse",
                p.name.as_str(),
                &match config.registry.get(p.name) {
                    Some(prov) => profiles::provider_reach(prov, &p.roots),
                    None => profiles::provider(&p.roots),
                },
            ));
        }
        stages.push(StagePolicy::new(
            "orchestrate",
            "one",
            &profiles::orchestrator(cfg, &config.state_dir, &config.runtime_dir),
        ));
        stages.push(StagePolicy::new(
            "write-spawner",
            "one",
            &profiles::writer_spawner(&profiles::export_roots(config)),
        ));
        stages.push(StagePolicy::new(
            "write",
            "one per destination",
            &profiles::writer(Path::new(DESTINATION)),
        ));
        stages.push(StagePolicy::new(
            "log",
            "detached daemon",
            &profiles::log_writer(&config.logs_dir),
        ));
        stages.push(StagePolicy::new("signals", "one", &profiles::signals()));
        if let Some(s) = &config.sync {
            stages.push(StagePolicy::new(
                "sync",
                "autosync (`[sync]`)",
                &profiles::sync_stage(config, &s.root()),
            ));
        }
        stages.push(StagePolicy::new(
            "export",
            "one-shot `kato export`",
            &profiles::export(
                // The output is read back to insert a Markdown header.
                &[PathBuf::from(SESSION_FILES), PathBuf::from(OUTPUT_FILE)],
                cfg,
                Some(Path::new(OUTPUT_FILE)),
            ),
        ));
        Policy {
            version: POLICY_VERSION,
            mode,
            landlock_abi: PINNED_LANDLOCK_ABI,
            rights,
            stages,
            seccomp_denied: denied_syscalls(false, false),
        }
    }

    /// The normalized JSON (compact, no trailing newline).
    pub fn to_json(&self) -> String {
        // Only strings, bools, integers and ordered containers: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Lower-case hex SHA-256 of [`Policy::to_json`].
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.to_json().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The policy hash audit records carry.
pub fn policy_hash(config: &Config, mode: SandboxMode) -> String {
    Policy::from_config(config, mode).hash()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelInfo {
    pub release: String,
    pub machine: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LandlockInfo {
    pub kernel: KernelLandlock,
    pub abi_pinned: u8,
}

/// State of the thread that called [`report`] (normally `main`, hardened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessInfo {
    pub no_new_privs: bool,
    pub seccomp: &'static str,
    pub capabilities: Option<super::Capabilities>,
    pub dumpable: bool,
    pub core_limit: Option<u64>,
    pub umask: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub applied: Option<Applied>,
    pub error: Option<String>,
    pub thread: Option<ThreadState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictStatus {
    /// Everything the policy asks for is enforced.
    Enforced,
    /// Best-effort mode with something missing.
    Degraded,
    /// Enforce mode with something missing: kato would refuse to run.
    Failing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub status: VerdictStatus,
    pub problems: Vec<String>,
}

/// Everything `kato doctor` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    pub kato_version: &'static str,
    pub kernel: KernelInfo,
    pub mode: SandboxMode,
    pub landlock: LandlockInfo,
    pub process: ProcessInfo,
    pub probe: Probe,
    pub policy: Policy,
    pub policy_hash: String,
    pub supervisor: SupervisorInfo,
    pub not_covered: Vec<String>,
    pub verdict: Verdict,
}

/// The daemon's main thread (the supervisor that creates every stage
/// thread) as `kato run` would confine it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupervisorInfo {
    /// Provider roots that do not exist yet, and the existing ancestor the
    /// supervisor reads in their place (never a stage).
    pub ancestor_grants: Vec<profiles::AncestorGrant>,
    /// What that means, in words.
    pub note: String,
}

/// What Landlock leaves open even when fully enforced at the pinned ABI.
pub const NOT_COVERED: &[&str] = &[
    "file metadata: stat, access, chmod, chown, utimes and xattrs work on any path, so the \
     existence, size and times of files outside a domain stay visible",
    "file descriptors opened before a domain was applied (stdin, stdout, stderr, the state lock)",
    "inotify: a watch can be added on any directory and reports names in it; the watch stage \
     only ever adds watches under its roots",
    "UDP, raw, packet and netlink sockets (Landlock handles TCP only): closed by the seccomp \
     filter, which refuses every socket family but AF_UNIX",
    "connecting to pathname UNIX sockets (Landlock ABI 9) and using sockets opened before",
    "ioctl on regular files, pipes and sockets (only device ioctls are handled)",
    "signals and abstract UNIX sockets between threads of the same domain",
    "memory, CPU, disk space and open-file limits (set them in the service manager)",
];

fn read_umask() -> u32 {
    // umask(2) can only be read by setting it; put the old value back.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    rustix::process::umask(old);
    old.as_raw_mode()
}

/// Build the report: kernel facts, this thread's state, and a probe thread
/// confined to the daemon's process-wide domain in `mode`.
pub fn report(config: &Config, mode: SandboxMode) -> DoctorReport {
    let uname = rustix::system::uname();
    let kernel = KernelInfo {
        release: uname.release().to_string_lossy().into_owned(),
        machine: uname.machine().to_string_lossy().into_owned(),
    };
    let kernel_landlock = KernelLandlock::probe();
    let main = ThreadState::read();
    let core = rustix::process::getrlimit(rustix::process::Resource::Core);
    let process = ProcessInfo {
        no_new_privs: main.no_new_privs,
        seccomp: main.seccomp,
        capabilities: main.capabilities,
        dumpable: !matches!(
            rustix::process::dumpable_behavior(),
            Ok(rustix::process::DumpableBehavior::NotDumpable)
        ),
        core_limit: core.current,
        umask: format!("{:04o}", read_umask()),
    };

    let (domain, ancestor_grants) = profiles::supervisor(config, false);
    let probe = probe(domain, mode);
    let problems = problems(&process, &probe);
    let status = match (problems.is_empty(), mode) {
        (true, _) => VerdictStatus::Enforced,
        (false, SandboxMode::BestEffort) => VerdictStatus::Degraded,
        (false, SandboxMode::Enforce) => VerdictStatus::Failing,
    };

    let mut not_covered: Vec<String> = NOT_COVERED.iter().map(|s| (*s).to_owned()).collect();
    for m in super::landlock::missing_features(kernel_landlock, PINNED_LANDLOCK_ABI) {
        not_covered.push(format!("on this kernel: {m}"));
    }

    let note = if ancestor_grants.is_empty() {
        "every provider root exists: the supervisor reads exactly the roots".to_owned()
    } else {
        "a root missing at start cannot get a Landlock rule; until kato restarts, the \
         supervisor (the main thread, which only creates threads and reads no session byte) \
         reads its nearest existing ancestor so the stage started when it appears can read it; \
         stages only ever read the roots that exist"
            .to_owned()
    };
    let policy = Policy::from_config(config, mode);
    DoctorReport {
        kato_version: env!("CARGO_PKG_VERSION"),
        kernel,
        mode,
        landlock: LandlockInfo {
            kernel: kernel_landlock,
            abi_pinned: PINNED_LANDLOCK_ABI,
        },
        process,
        probe,
        policy_hash: policy.hash(),
        policy,
        supervisor: SupervisorInfo {
            ancestor_grants,
            note,
        },
        not_covered,
        verdict: Verdict { status, problems },
    }
}

/// Apply the process-wide `domain` in a probe thread and read back what
/// that thread ended up with.
fn probe(domain: Domain, mode: SandboxMode) -> Probe {
    let probe = std::thread::Builder::new()
        .name("kato:doctor".into())
        .spawn(move || {
            let applied = domain.apply(mode);
            (applied, ThreadState::read())
        })
        .map_err(|e| e.to_string())
        .and_then(|h| h.join().map_err(|_| "the probe thread panicked".to_owned()));
    match probe {
        Ok((Ok(applied), thread)) => Probe {
            applied: Some(applied),
            error: None,
            thread: Some(thread),
        },
        Ok((Err(e), thread)) => Probe {
            applied: None,
            error: Some(e.to_string()),
            thread: Some(thread),
        },
        Err(e) => Probe {
            applied: None,
            error: Some(e),
            thread: None,
        },
    }
}

/// What keeps the process from full enforcement.
fn problems(process: &ProcessInfo, probe: &Probe) -> Vec<String> {
    let mut problems = Vec::new();
    if !process.no_new_privs {
        problems.push("no_new_privs is not set on the main thread".to_owned());
    }
    match &process.capabilities {
        Some(c) if !c.is_empty() => problems.push(format!(
            "the main thread holds capabilities (effective {:016x}, permitted {:016x})",
            c.effective, c.permitted
        )),
        Some(_) => {}
        None => problems.push("capget failed: capabilities unknown".to_owned()),
    }
    if process.core_limit != Some(0) || process.dumpable {
        problems.push("core dumps are not disabled".to_owned());
    }
    if let Some(e) = &probe.error {
        problems.push(e.clone());
    }
    if let Some(a) = &probe.applied {
        problems.extend(a.missing.iter().map(ToString::to_string));
    }
    problems
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl DoctorReport {
    /// seccomp, the process hardening and capabilities, skipped rules.
    fn fmt_process(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seccomp = match &self.probe.applied {
            Some(a) if a.seccomp.installed => "installed",
            _ => "not installed",
        };
        writeln!(
            f,
            "seccomp filter: {seccomp} in stage threads (main thread: {})",
            self.process.seccomp
        )?;
        writeln!(
            f,
            "no_new_privs: {}   dumpable: {}   core limit: {}   umask: {}",
            yes(self.process.no_new_privs),
            yes(self.process.dumpable),
            self.process
                .core_limit
                .map_or("unlimited".to_owned(), |c| c.to_string()),
            self.process.umask
        )?;
        match &self.process.capabilities {
            Some(c) => writeln!(
                f,
                "capabilities: effective {:016x} permitted {:016x} inheritable {:016x} ambient {:016x} bounding {:016x}",
                c.effective, c.permitted, c.inheritable, c.ambient, c.bounding
            )?,
            None => writeln!(f, "capabilities: unknown (capget failed)")?,
        }
        if let Some(a) = &self.probe.applied {
            for s in &a.skipped {
                writeln!(f, "  skipped {}: {}", s.path.display(), s.reason)?;
            }
        }

        Ok(())
    }

    /// Each stage of the policy with the rights its paths get.
    fn fmt_stages(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nStages (exec: no, network: no, unless stated):")?;
        let rights = &self.policy.rights;
        let names = |k: &str| rights.get(k).map(|v| v.join(",")).unwrap_or_default();
        for s in &self.policy.stages {
            writeln!(f, "  {} [{}]", s.stage, s.instance)?;
            let empty = s.read.is_empty()
                && s.list.is_empty()
                && s.write_files.is_empty()
                && s.create_in.is_empty()
                && s.write_trees.is_empty();
            if empty {
                writeln!(f, "    (no filesystem access)")?;
            }
            for p in &s.read {
                let path = Path::new(p);
                let rights = if p.starts_with('<') {
                    names("read_file")
                } else if path.is_dir() {
                    names("read_dir")
                } else if path.exists() {
                    names("read_file")
                } else {
                    "does not exist: no rule".to_owned()
                };
                writeln!(f, "    read    {p}  ({rights})")?;
            }
            for p in &s.list {
                let rights = if Path::new(p).is_dir() {
                    names("list")
                } else {
                    "does not exist: no rule".to_owned()
                };
                writeln!(f, "    list    {p}  ({rights})")?;
            }
            let write_kind = if s.truncate {
                "write_file_truncate"
            } else {
                "write_file"
            };
            for p in &s.write_files {
                writeln!(f, "    write   {p}  ({})", names(write_kind))?;
            }
            for p in &s.create_in {
                writeln!(f, "    create  {p}  ({})", names("create_in"))?;
            }
            for p in &s.write_trees {
                writeln!(f, "    own     {p}  ({})", names("write_tree"))?;
            }
            if s.exec || s.network {
                writeln!(f, "    exec: {}   network: {}", yes(s.exec), yes(s.network))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict.status {
            VerdictStatus::Enforced => "enforced",
            VerdictStatus::Degraded => "DEGRADED",
            VerdictStatus::Failing => "FAILING (kato would refuse to run)",
        };
        writeln!(
            f,
            "kato {} on Linux {} ({})",
            self.kato_version, self.kernel.release, self.kernel.machine
        )?;
        writeln!(f, "sandbox mode: {} — {verdict}", self.mode.as_str())?;
        for p in &self.verdict.problems {
            writeln!(f, "  problem: {p}")?;
        }
        let kernel = match self.landlock.kernel {
            KernelLandlock::Available { abi } => format!("ABI {abi} available"),
            KernelLandlock::NotEnabled => "built in but not enabled".to_owned(),
            KernelLandlock::NotImplemented => "not available".to_owned(),
        };
        let probe = self
            .probe
            .applied
            .as_ref()
            .map(|a| a.landlock.status.as_str())
            .unwrap_or("not applied");
        writeln!(
            f,
            "Landlock: {kernel}, ABI {} pinned; process-wide domain: {probe}",
            self.landlock.abi_pinned
        )?;
        self.fmt_process(f)?;
        self.fmt_stages(f)?;
        if !self.supervisor.ancestor_grants.is_empty() {
            writeln!(f, "\nMissing provider roots ({}):", self.supervisor.note)?;
            for g in &self.supervisor.ancestor_grants {
                writeln!(
                    f,
                    "  {}: the supervisor reads {} until it appears",
                    g.root.display(),
                    g.granted.display()
                )?;
            }
        }
        writeln!(
            f,
            "\nseccomp denies (EPERM): {}",
            self.policy.seccomp_denied.join(", ")
        )?;
        writeln!(f, "\nNot covered by Landlock here:")?;
        for n in &self.not_covered {
            writeln!(f, "  - {n}")?;
        }
        writeln!(f, "\npolicy hash: {}", self.policy_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn config() -> Config {
        let env = Env {
            home: Some("/home/u".into()),
            ..Env::default()
        };
        Config::from_toml("", None, &env).unwrap()
    }

    #[test]
    fn policy_hash_is_stable_and_sensitive() {
        let c = config();
        let a = policy_hash(&c, SandboxMode::Enforce);
        assert_eq!(a.len(), 64);
        assert_eq!(a, policy_hash(&c, SandboxMode::Enforce));
        assert_ne!(a, policy_hash(&c, SandboxMode::BestEffort));
        let mut c2 = c.clone();
        c2.state_dir = "/elsewhere".into();
        assert_ne!(a, policy_hash(&c2, SandboxMode::Enforce));
        // The digest is of the published JSON.
        let p = Policy::from_config(&c, SandboxMode::Enforce);
        let hex: String = Sha256::digest(p.to_json().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, a);
    }

    #[test]
    fn policy_lists_the_stages_with_concrete_paths() {
        let p = Policy::from_config(&config(), SandboxMode::Enforce);
        let stage = |name: &str, inst: &str| {
            p.stages
                .iter()
                .find(|s| s.stage == name && s.instance == inst)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            stage("watch+parse", "claude").read,
            ["/home/u/.claude/projects"]
        );
        assert!(stage("watch+parse", "claude").write_files.is_empty());
        assert_eq!(
            stage("orchestrate", "one").write_trees,
            ["/home/u/.kato/run", "/home/u/.kato/state"]
        );
        assert_eq!(
            stage("log", "detached daemon").write_trees,
            ["/home/u/.kato/logs"]
        );
        let signals = stage("signals", "one");
        assert!(signals.read.is_empty() && signals.write_trees.is_empty());
        assert_eq!(
            stage("write-spawner", "one").create_in,
            ["/home/u/kato-exports"]
        );
        assert_eq!(
            stage("write", "one per destination").write_files,
            [DESTINATION]
        );
        let export = stage("export", "one-shot `kato export`");
        assert_eq!(export.write_files, [OUTPUT_FILE]);
        assert!(export.read.iter().any(|r| r == OUTPUT_FILE));
        assert!(export.truncate);
        assert!(p.stages.iter().all(|s| !s.exec && !s.network));
        assert_eq!(
            p.rights["create_in"],
            [
                "write_file",
                "read_file",
                "read_dir",
                "make_dir",
                "make_reg"
            ]
        );
    }
}
