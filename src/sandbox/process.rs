//! Process hardening: no_new_privs, capabilities, core dumps, umask — and
//! reading that state back with syscalls (never `/proc`).

use std::fmt;

use rustix::process::{DumpableBehavior, Resource, Rlimit};
use rustix::thread::{CapabilitySet, CapabilitySets};
use serde::{Serialize, Serializer};

use super::{Missing, SandboxError, SandboxMode};

/// The umask kato runs with: files it creates are private to the user.
pub const UMASK: u32 = 0o077;

/// Capability sets of the calling thread, as 64-bit masks (the layout of
/// `CapEff`/`CapPrm`/… in `/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    #[serde(serialize_with = "hex")]
    pub effective: u64,
    #[serde(serialize_with = "hex")]
    pub permitted: u64,
    #[serde(serialize_with = "hex")]
    pub inheritable: u64,
    #[serde(serialize_with = "hex")]
    pub ambient: u64,
    #[serde(serialize_with = "hex")]
    pub bounding: u64,
    /// Highest capability number the kernel knows (`cap_last_cap`), found
    /// by probing the bounding set.
    pub last_cap: u32,
}

fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:016x}"))
}

fn bit(n: u32) -> CapabilitySet {
    CapabilitySet::from_bits_retain(1u64 << n)
}

impl Capabilities {
    /// Read the calling thread's sets: `capget` for effective, permitted
    /// and inheritable; `prctl(PR_CAPBSET_READ)` and
    /// `prctl(PR_CAP_AMBIENT_IS_SET)` per capability for the others.
    pub fn read() -> std::io::Result<Capabilities> {
        let sets = rustix::thread::capabilities(None)?;
        let mut bounding = 0u64;
        let mut ambient = 0u64;
        let mut last_cap = 0u32;
        for n in 0..64u32 {
            match rustix::thread::capability_is_in_bounding_set(bit(n)) {
                Ok(present) => {
                    last_cap = n;
                    if present {
                        bounding |= 1 << n;
                    }
                }
                // EINVAL: beyond the kernel's last capability.
                Err(_) => break,
            }
            if rustix::thread::capability_is_in_ambient_set(bit(n)).unwrap_or(false) {
                ambient |= 1 << n;
            }
        }
        Ok(Capabilities {
            effective: sets.effective.bits(),
            permitted: sets.permitted.bits(),
            inheritable: sets.inheritable.bits(),
            ambient,
            bounding,
            last_cap,
        })
    }

    /// No effective, permitted, inheritable or ambient capability. (The
    /// bounding set only limits what an `execve` could grant; see
    /// [`harden_process`].)
    pub fn is_empty(&self) -> bool {
        self.effective == 0 && self.permitted == 0 && self.inheritable == 0 && self.ambient == 0
    }
}

/// Security state of the calling thread, read with `prctl`/`capget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadState {
    pub no_new_privs: bool,
    /// `disabled`, `strict`, `filter` (`prctl(PR_GET_SECCOMP)`) or
    /// `unavailable`.
    pub seccomp: &'static str,
    /// `None` when `capget` failed.
    pub capabilities: Option<Capabilities>,
}

impl ThreadState {
    pub fn read() -> ThreadState {
        let seccomp = match rustix::thread::secure_computing_mode() {
            Ok(rustix::thread::SecureComputingMode::Disabled) => "disabled",
            Ok(rustix::thread::SecureComputingMode::Strict) => "strict",
            Ok(rustix::thread::SecureComputingMode::Filter) => "filter",
            // EINVAL: a kernel built without seccomp.
            Err(_) => "unavailable",
        };
        ThreadState {
            no_new_privs: rustix::thread::no_new_privs().unwrap_or(false),
            seccomp,
            capabilities: Capabilities::read().ok(),
        }
    }
}

/// What [`harden_process`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessReport {
    pub mode: SandboxMode,
    pub no_new_privs: bool,
    /// Capability sets before the drop.
    pub capabilities_before: Capabilities,
    /// Capability sets after the drop.
    pub capabilities: Capabilities,
    /// Whether `capset` was called (it is skipped when there is nothing to drop).
    pub capset_called: bool,
    /// How many capabilities were removed from the bounding set.
    pub bounding_dropped: u32,
    /// `RLIMIT_CORE` is 0 and the process is not dumpable.
    pub core_dumps_disabled: bool,
    pub umask: u32,
    /// Things worth knowing that are not failures.
    pub notes: Vec<String>,
    /// In best-effort mode, what could not be done.
    pub missing: Vec<Missing>,
}

impl fmt::Display for ProcessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.capabilities;
        writeln!(f, "no_new_privs: {}", self.no_new_privs)?;
        writeln!(
            f,
            "capabilities: effective {:016x} permitted {:016x} inheritable {:016x} ambient {:016x} bounding {:016x}",
            c.effective, c.permitted, c.inheritable, c.ambient, c.bounding
        )?;
        writeln!(f, "core dumps disabled: {}", self.core_dumps_disabled)?;
        writeln!(f, "umask: {:04o}", self.umask)?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for m in &self.missing {
            writeln!(f, "missing: {m}")?;
        }
        Ok(())
    }
}

fn syscall(call: &'static str) -> impl FnOnce(rustix::io::Errno) -> SandboxError {
    move |e| SandboxError::Syscall {
        call,
        source: e.into(),
    }
}

/// Harden the process. Call from `main` before any thread exists:
/// capabilities, no_new_privs and seccomp are per thread and only threads
/// created afterwards inherit them.
///
/// 1. `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
/// 2. Capabilities: the bounding set is emptied (`PR_CAPBSET_DROP`, needs
///    `CAP_SETPCAP`), the ambient set cleared, then effective, permitted and
///    inheritable set to empty with one `capset`. Each step is skipped when
///    its set is already empty — under systemd with
///    `CapabilityBoundingSet=` and `SystemCallFilter=~@privileged` the sets
///    are empty and `capset` itself is forbidden. An unprivileged user's
///    full bounding set cannot be dropped without `CAP_SETPCAP`; with
///    no_new_privs set and `execve` denied it can never grant anything, so
///    that is a note, not a failure.
/// 3. `RLIMIT_CORE` = 0 and `PR_SET_DUMPABLE` = 0: no core dumps holding
///    chat content, no ptrace attach by other processes of the user.
/// 4. umask 077.
///
/// In [`SandboxMode::Enforce`] any failure is an error; in
/// [`SandboxMode::BestEffort`] it is listed in [`ProcessReport::missing`].
// Long because: the numbered hardening steps must be read in order, in one place.
pub fn harden_process(mode: SandboxMode) -> Result<ProcessReport, SandboxError> {
    let enforce = mode == SandboxMode::Enforce;
    let mut missing = Vec::new();
    let mut notes = Vec::new();
    let mut fail = |e: SandboxError, feature: &str| -> Result<(), SandboxError> {
        if enforce {
            return Err(e);
        }
        missing.push(Missing {
            feature: feature.into(),
            advice: e.to_string(),
        });
        Ok(())
    };

    if let Err(e) = rustix::thread::set_no_new_privs(true) {
        fail(syscall("prctl(PR_SET_NO_NEW_PRIVS)")(e), "no_new_privs")?;
    }

    let before = Capabilities::read().map_err(|source| SandboxError::Syscall {
        call: "capget",
        source,
    })?;
    let mut bounding_dropped = 0;
    if before.bounding != 0 {
        if before.effective & CapabilitySet::SETPCAP.bits() != 0 {
            for n in 0..=before.last_cap {
                if before.bounding & (1 << n) == 0 {
                    continue;
                }
                match rustix::thread::remove_capability_from_bounding_set(bit(n)) {
                    Ok(()) => bounding_dropped += 1,
                    Err(e) => {
                        fail(
                            syscall("prctl(PR_CAPBSET_DROP)")(e),
                            "empty capability bounding set",
                        )?;
                        break;
                    }
                }
            }
        } else {
            notes.push(format!(
                "bounding set {:016x} kept: dropping it needs CAP_SETPCAP; with no_new_privs \
                 set and execve denied it can never grant a capability",
                before.bounding
            ));
        }
    }
    if before.ambient != 0 {
        if let Err(e) = rustix::thread::clear_ambient_capability_set() {
            fail(
                syscall("prctl(PR_CAP_AMBIENT_CLEAR_ALL)")(e),
                "empty ambient capabilities",
            )?;
        }
    }
    let capset_called = before.effective != 0 || before.permitted != 0 || before.inheritable != 0;
    if capset_called {
        let empty = CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        };
        if let Err(e) = rustix::thread::set_capabilities(None, empty) {
            fail(syscall("capset")(e), "empty capability sets")?;
        }
    }
    let after = Capabilities::read().map_err(|source| SandboxError::Syscall {
        call: "capget",
        source,
    })?;
    if !after.is_empty() {
        fail(
            SandboxError::NotEnforced {
                missing: vec![Missing::capabilities(&after)],
            },
            "empty capability sets",
        )?;
    }

    let zero = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    let mut core_dumps_disabled = true;
    if let Err(e) = rustix::process::setrlimit(Resource::Core, zero) {
        core_dumps_disabled = false;
        fail(syscall("setrlimit(RLIMIT_CORE)")(e), "core dumps disabled")?;
    }
    if let Err(e) = rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        core_dumps_disabled = false;
        fail(syscall("prctl(PR_SET_DUMPABLE)")(e), "core dumps disabled")?;
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(UMASK));

    let no_new_privs = rustix::thread::no_new_privs().unwrap_or(false);
    if !no_new_privs {
        fail(
            SandboxError::NotEnforced {
                missing: vec![Missing {
                    feature: "no_new_privs".into(),
                    advice: "prctl(PR_SET_NO_NEW_PRIVS) did not stick".into(),
                }],
            },
            "no_new_privs",
        )?;
    }

    Ok(ProcessReport {
        mode,
        no_new_privs,
        capabilities_before: before,
        capabilities: after,
        capset_called,
        bounding_dropped,
        core_dumps_disabled,
        umask: UMASK,
        notes,
        missing,
    })
}

/// Remove every environment variable not named in `keep`, and return the
/// names removed. Call from `main` after reading the configuration and
/// before any thread exists (the environment is process-wide and not
/// thread-safe to change): stage threads then have no inherited secret
/// (an API key of the user who ran `kato start`) within reach.
pub fn scrub_environment(keep: &[&str]) -> Vec<std::ffi::OsString> {
    let doomed: Vec<std::ffi::OsString> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            !keep
                .iter()
                .any(|w| k.as_os_str() == std::ffi::OsStr::new(w))
        })
        .collect();
    for k in &doomed {
        std::env::remove_var(k);
    }
    doomed
}
