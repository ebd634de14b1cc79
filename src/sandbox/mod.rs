//! Confinement (SPEC §8): every Landlock, seccomp, prctl, capability and
//! rlimit call kato makes lives in this module.
//!
//! Two layers:
//!
//! - [`harden_process`] runs once, from `main`, before any thread exists:
//!   no_new_privs, every capability dropped, core dumps off, umask 077.
//! - A [`Domain`] describes what one stage may touch (read paths, files it
//!   may write, directories it may create in, exec, network).
//!   [`Domain::apply`] confines the *calling thread* to it: a Landlock
//!   ruleset with the ABI pinned in code ([`PINNED_LANDLOCK_ABI`]) plus a
//!   seccomp filter. Landlock domains only ever narrow, so `main` first
//!   applies the union of all stages ([`profiles::union`]) and each stage
//!   thread then narrows itself to its own row. [`Confiner::spawn`] is the
//!   one way to start such a thread.
//!
//! Invariants:
//! - Confinement is checked, not assumed: in [`SandboxMode::Enforce`]
//!   anything short of full enforcement is an error that names the missing
//!   kernel feature (a Landlock call silently ignored under a seccomp filter
//!   counts as missing).
//! - Paths are never widened: a read path that does not exist is skipped
//!   and reported, never replaced by its parent.
//! - Credentials and capability state are read with syscalls (`capget`,
//!   `prctl`), never from `/proc`, which a domain need not include.
//! - No `unsafe` here either: the syscalls go through `rustix`, `landlock`
//!   and `seccompiler`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::config::SandboxMode;

pub mod doctor;
mod landlock;
pub mod process;
pub mod profiles;
mod seccomp;
pub mod stage;

pub use self::landlock::{KernelLandlock, PINNED_LANDLOCK_ABI};
pub use self::process::{
    harden_process, scrub_environment, Capabilities, ProcessReport, ThreadState,
};
pub use self::seccomp::denied_syscalls;
pub use self::stage::{
    Confiner, Stage, StageName, StageOutcome, StageReport, StageState, Supervisor,
};

/// What one stage may touch. A plain description; nothing happens until
/// [`Domain::apply`].
///
/// Rights per list (Landlock access rights in parentheses):
///
/// | list | on | rights |
/// |---|---|---|
/// | `read` | a file | read it (`read_file`) |
/// | `read` | a directory | read files and list directories beneath it (`read_file`, `read_dir`) |
/// | `list` | a directory | list directories beneath it, open no file (`read_dir`) |
/// | `write_files` | exactly that regular file | write it (`write_file`; `truncate` only when [`Domain::truncate`]) |
/// | `create_in` | a directory | create regular files and directories beneath it, write and read them (`make_reg`, `make_dir`, `write_file`, `read_file`, `read_dir`); never remove, rename or truncate |
/// | `write_trees` | a directory | everything a state directory needs: the `create_in` rights plus `truncate`, `remove_file`, `remove_dir`, `refer` |
///
/// Nothing else is granted: no `execute` unless [`Domain::exec`], no device
/// ioctl, no sockets, fifos, devices or symlinks created, no TCP unless
/// [`Domain::network`].
///
/// A file in `write_files` must exist when [`Domain::apply`] runs: the
/// caller creates it first, still in its own domain, through the path
/// policy's open ([`crate::policy::open`]: beneath a directory descriptor,
/// no symbolic link on any component). This is how a writer "creates its
/// own destination": Landlock cannot grant creation of one name —
/// `make_reg` covers a whole directory, and writing the new file then needs
/// `write_file` on that directory, i.e. on every file in it. Creating first
/// and granting the one inode afterwards gives the stage its file and
/// nothing beside it. `apply` itself never creates a file: a creation by
/// path would follow a parent directory swapped for a link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domain {
    /// Files and directory trees the stage may read.
    pub read: Vec<PathBuf>,
    /// Directory trees the stage may list (names only): a root whose
    /// files are granted one by one in `read`
    /// ([`crate::provider::Provider::reach`]).
    pub list: Vec<PathBuf>,
    /// Regular files the stage may write (they must exist, see above).
    pub write_files: Vec<PathBuf>,
    /// Directories in which the stage may create files and subdirectories.
    pub create_in: Vec<PathBuf>,
    /// Directory trees the stage owns (state): create, write, rename, remove.
    pub write_trees: Vec<PathBuf>,
    /// `write_files` may also be truncated (`O_TRUNC`, `ftruncate`).
    pub truncate: bool,
    /// The stage may execute programs (no kato stage does).
    pub exec: bool,
    /// The stage may open network sockets (no kato stage does).
    pub network: bool,
}

impl Domain {
    /// Confine the calling thread to this domain (and every thread it
    /// creates afterwards). Irreversible.
    ///
    /// In [`SandboxMode::Enforce`] the result is `Ok` only when the Landlock
    /// ruleset is fully enforced at the pinned ABI, the seccomp filter is
    /// installed, no_new_privs is set and the thread holds no capabilities.
    /// Missing kernel support is detected before anything is restricted
    /// where possible; an error after that point may leave the thread
    /// partially confined, so the caller must not go on to run the stage.
    /// In [`SandboxMode::BestEffort`] the thread is confined as far as the
    /// kernel allows and [`Applied::missing`] says what is not.
    pub fn apply(&self, mode: SandboxMode) -> Result<Applied, SandboxError> {
        self.apply_at_abi(mode, PINNED_LANDLOCK_ABI)
    }

    /// [`Domain::apply`] with another Landlock ABI demanded than the pinned
    /// one. Exists to exercise the fail-closed path (ask for an ABI the
    /// kernel lacks); kato itself always uses [`Domain::apply`].
    #[doc(hidden)]
    // Long because: the six numbered confinement steps must be read in order, in one place.
    pub fn apply_at_abi(&self, mode: SandboxMode, abi: u8) -> Result<Applied, SandboxError> {
        let enforce = mode == SandboxMode::Enforce;
        let mut missing = Vec::new();

        // 1. Capabilities: a thread holding any would defeat the rest.
        let caps = Capabilities::read().map_err(|e| SandboxError::Syscall {
            call: "capget",
            source: e,
        })?;
        if !caps.is_empty() {
            missing.push(Missing::capabilities(&caps));
        }

        // 2. Landlock support, checked before anything is created or restricted.
        let kernel = landlock::kernel();
        missing.extend(landlock::missing_features(kernel, abi));
        if enforce && !missing.is_empty() {
            return Err(SandboxError::NotEnforced { missing });
        }

        // 3. The files this stage may write are regular files, not links.
        check_write_files(&self.write_files)?;

        // 4. Landlock.
        let outcome = landlock::restrict(self, mode, abi, kernel)?;
        if outcome.status != Enforcement::FullyEnforced && missing.is_empty() {
            missing.push(Missing {
                feature: "Landlock".into(),
                advice: format!(
                    "the kernel reported the ruleset as {}; a seccomp filter \
                     (e.g. systemd `SystemCallFilter=`) may be refusing the landlock_* \
                     syscalls: allow landlock_create_ruleset, landlock_add_rule, \
                     landlock_restrict_self",
                    outcome.status.as_str()
                ),
            });
        }
        if enforce && !missing.is_empty() {
            return Err(SandboxError::NotEnforced { missing });
        }

        // 5. seccomp.
        let seccomp_installed = match seccomp::install(self.exec, self.network) {
            Ok(()) => true,
            Err(e) if enforce => return Err(e),
            Err(e) => {
                missing.push(Missing {
                    feature: "seccomp filter".into(),
                    advice: e.to_string(),
                });
                false
            }
        };

        // 6. Verify from the kernel's side.
        let state = ThreadState::read();
        if !state.no_new_privs {
            missing.push(Missing {
                feature: "no_new_privs".into(),
                advice: "prctl(PR_SET_NO_NEW_PRIVS) did not stick".into(),
            });
        }
        if seccomp_installed && state.seccomp != "filter" {
            missing.push(Missing {
                feature: "seccomp filter".into(),
                advice: format!(
                    "the filter was loaded but prctl(PR_GET_SECCOMP) reports `{}`",
                    state.seccomp
                ),
            });
        }
        if enforce && !missing.is_empty() {
            return Err(SandboxError::NotEnforced { missing });
        }

        Ok(Applied {
            mode,
            landlock: LandlockReport {
                status: outcome.status,
                abi_pinned: abi,
                abi_kernel: kernel.abi(),
            },
            seccomp: SeccompReport {
                installed: seccomp_installed,
                denied: denied_syscalls(self.exec, self.network),
            },
            no_new_privs: state.no_new_privs,
            capabilities_empty: caps.is_empty(),
            skipped: outcome.skipped,
            missing,
        })
    }

    /// Every path named by this domain, with the list it is in (`read`,
    /// `list`, `write`, `create`, `write-tree`).
    pub fn grants(&self) -> Vec<(&'static str, &Path)> {
        let lists: [(&'static str, &[PathBuf]); 5] = [
            ("read", &self.read),
            ("list", &self.list),
            ("write", &self.write_files),
            ("create", &self.create_in),
            ("write-tree", &self.write_trees),
        ];
        lists
            .into_iter()
            .flat_map(|(tag, v)| v.iter().map(move |p| (tag, p.as_path())))
            .collect()
    }
}

/// Each of `write_files` must be an existing regular file, not a link.
fn check_write_files(files: &[PathBuf]) -> Result<(), SandboxError> {
    for path in files {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(SandboxError::Symlink { path: path.clone() })
            }
            Ok(meta) if !meta.file_type().is_file() => {
                return Err(SandboxError::NotRegularFile { path: path.clone() })
            }
            Ok(_) => {}
            Err(source) => {
                return Err(SandboxError::Path {
                    action: "find the file to write",
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// How much of a Landlock ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    FullyEnforced,
    PartiallyEnforced,
    #[default]
    NotEnforced,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::FullyEnforced => "fully-enforced",
            Enforcement::PartiallyEnforced => "partially-enforced",
            Enforcement::NotEnforced => "not-enforced",
        }
    }
}

/// A kernel feature (or process property) the sandbox needed and did not get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    /// What is missing, e.g. `Landlock ABI 4: TCP bind/connect control`.
    pub feature: String,
    /// Why, and what to change.
    pub advice: String,
}

impl Missing {
    fn capabilities(caps: &Capabilities) -> Missing {
        Missing {
            feature: "empty capability sets".into(),
            advice: format!(
                "the thread still holds capabilities (effective {:016x}, permitted {:016x}, \
                 inheritable {:016x}, ambient {:016x}); harden_process must run first",
                caps.effective, caps.permitted, caps.inheritable, caps.ambient
            ),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.feature, self.advice)
    }
}

/// Landlock part of an [`Applied`] report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LandlockReport {
    /// What the kernel reported for the ruleset (`RestrictionStatus`).
    pub status: Enforcement,
    /// The ABI kato's rules are written for.
    pub abi_pinned: u8,
    /// The ABI the running kernel offers, if Landlock is available.
    pub abi_kernel: Option<u32>,
}

/// seccomp part of an [`Applied`] report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompReport {
    pub installed: bool,
    /// The syscalls the filter answers with an error.
    pub denied: Vec<&'static str>,
}

/// A path of the domain that got no rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    pub reason: String,
}

/// Paths serialize as (lossy) strings: a report never fails on a
/// non-UTF-8 file name.
fn lossy_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// What [`Domain::apply`] did to the calling thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub mode: SandboxMode,
    pub landlock: LandlockReport,
    pub seccomp: SeccompReport,
    pub no_new_privs: bool,
    pub capabilities_empty: bool,
    /// Paths left out (missing read paths, non-directories given as trees).
    pub skipped: Vec<Skipped>,
    /// Empty when fully enforced; in best-effort mode, what is missing.
    pub missing: Vec<Missing>,
}

impl Applied {
    /// Everything the domain asks for is enforced by the kernel.
    pub fn is_fully_enforced(&self) -> bool {
        self.missing.is_empty()
            && self.landlock.status == Enforcement::FullyEnforced
            && self.seccomp.installed
    }
}

/// Why confinement could not be set up as the mode requires.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `enforce` mode and the kernel (or the service manager) cannot
    /// provide something.
    #[error(
        "sandbox mode `enforce` cannot confine kato: {}; fix the kernel or service setup, \
         or set `sandbox.mode = \"best-effort\"` to run degraded",
        missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NotEnforced { missing: Vec<Missing> },

    /// A path of the domain could not be opened or created.
    #[error("sandbox: cannot {action} `{}`: {source}", path.display())]
    Path {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file kato would write is a symbolic link.
    #[error("sandbox: `{}` is a symbolic link; kato never writes through one", path.display())]
    Symlink { path: PathBuf },

    /// A file kato would write is not a regular file.
    #[error("sandbox: `{}` is not a regular file", path.display())]
    NotRegularFile { path: PathBuf },

    /// The Landlock ruleset could not be built or applied.
    #[error("sandbox: Landlock: {0}")]
    Landlock(#[from] ::landlock::RulesetError),

    /// The seccomp filter could not be built or installed.
    #[error("sandbox: seccomp filter: {0}")]
    Seccomp(#[source] seccompiler::Error),

    /// A process-hardening syscall failed.
    #[error("sandbox: {call} failed: {source}")]
    Syscall {
        call: &'static str,
        #[source]
        source: io::Error,
    },

    /// A stage thread could not be started.
    #[error("stage `{name}`: cannot start its thread: {source}")]
    StageSpawn {
        name: StageName,
        #[source]
        source: io::Error,
    },

    /// A stage thread ended without reporting how its domain was applied,
    /// or panicked while running.
    #[error("stage `{name}`: the thread ended abnormally")]
    StageDied { name: StageName },

    /// A stage thread could not confine itself; its work was not run.
    #[error("stage `{name}`: {source}")]
    Stage {
        name: StageName,
        #[source]
        source: Box<SandboxError>,
    },
}
