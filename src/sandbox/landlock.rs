//! Landlock rules for a [`Domain`], written against a pinned ABI.

use std::os::fd::OwnedFd;
use std::path::Path;

use ::landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, PathBeneath,
    RestrictSelf, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use rustix::fs::{FileType, Mode, OFlags};
use serde::Serialize;

use super::{Domain, Enforcement, Missing, SandboxError, SandboxMode, Skipped};

/// The Landlock ABI kato's rules are written for, whatever the kernel offers.
///
/// ABI 6 (Linux 6.12) is the first with everything kato asks for:
/// filesystem rights including `refer` (2), `truncate` (3) and device
/// ioctls (5), TCP bind/connect (4), and abstract-socket and signal
/// scoping (6). ABI 7 only adds audit-logging flags, which kato does not
/// set, so the same rules are fully enforced on ABI 6 and 7 kernels. Newer
/// ABIs are deliberately not taken: ABI 9 starts restricting connections to
/// pathname UNIX sockets (the journald socket), and any new right would
/// change behaviour without a test on a kernel that has it.
pub const PINNED_LANDLOCK_ABI: u8 = 6;

/// Landlock as the running kernel offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum KernelLandlock {
    /// Landlock works; `abi` is the highest ABI the kernel implements.
    Available { abi: u32 },
    /// Built in but not enabled at boot (`lsm=` lacks `landlock`).
    NotEnabled,
    /// Not built in — or the landlock syscalls are blocked, e.g. by a
    /// seccomp filter; the kernel's answer cannot tell these apart.
    NotImplemented,
}

impl KernelLandlock {
    /// Ask the kernel (`landlock_create_ruleset(NULL, 0, VERSION)`); restricts nothing.
    pub fn probe() -> KernelLandlock {
        match RestrictSelf::default().no_new_privs(false).apply() {
            Ok(status) => match status.landlock {
                LandlockStatus::Available {
                    effective_abi,
                    kernel_abi,
                } => KernelLandlock::Available {
                    abi: kernel_abi
                        .and_then(|v| u32::try_from(v).ok())
                        .unwrap_or(abi_number(effective_abi)),
                },
                LandlockStatus::NotEnabled => KernelLandlock::NotEnabled,
                LandlockStatus::NotImplemented => KernelLandlock::NotImplemented,
            },
            Err(_) => KernelLandlock::NotImplemented,
        }
    }

    /// The kernel's ABI, when Landlock is available.
    pub fn abi(self) -> Option<u32> {
        match self {
            KernelLandlock::Available { abi } => Some(abi),
            _ => None,
        }
    }
}

pub(super) fn kernel() -> KernelLandlock {
    KernelLandlock::probe()
}

fn abi_number(abi: ABI) -> u32 {
    match abi {
        ABI::Unsupported => 0,
        ABI::V1 => 1,
        ABI::V2 => 2,
        ABI::V3 => 3,
        ABI::V4 => 4,
        ABI::V5 => 5,
        ABI::V6 => 6,
        ABI::V7 => 7,
        ABI::V8 => 8,
        _ => 9,
    }
}

fn abi_from_number(n: u8) -> ABI {
    match n {
        0 => ABI::Unsupported,
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        6 => ABI::V6,
        7 => ABI::V7,
        8 => ABI::V8,
        _ => ABI::V9,
    }
}

/// What each Landlock ABI added, and the first Linux release with it.
pub(super) const FEATURES: &[(u8, &str, &str)] = &[
    (1, "filesystem access control", "Linux 5.13"),
    (
        2,
        "control of renaming and linking across directories (refer)",
        "Linux 5.19",
    ),
    (3, "control of file truncation", "Linux 6.2"),
    (4, "TCP bind/connect control", "Linux 6.7"),
    (5, "device ioctl control", "Linux 6.10"),
    (6, "abstract UNIX socket and signal scoping", "Linux 6.12"),
    (7, "audit logging of denials", "Linux 6.15"),
    (8, "restricting all threads at once", "Linux 7.0"),
    (9, "pathname UNIX socket control", "Linux 7.1"),
];

/// The features `required` needs that `kernel` lacks; empty when none.
pub(super) fn missing_features(kernel: KernelLandlock, required: u8) -> Vec<Missing> {
    match kernel {
        KernelLandlock::NotImplemented => vec![Missing {
            feature: "Landlock".into(),
            advice: "the kernel answers landlock_create_ruleset with an error: it is built \
                     without CONFIG_SECURITY_LANDLOCK, or a seccomp filter blocks the landlock \
                     syscalls (under systemd add `SystemCallFilter=landlock_create_ruleset \
                     landlock_add_rule landlock_restrict_self`)"
                .into(),
        }],
        KernelLandlock::NotEnabled => vec![Missing {
            feature: "Landlock".into(),
            advice: "built into the kernel but not enabled: add `landlock` to the `lsm=` boot \
                     parameter (e.g. `lsm=landlock,lockdown,yama,integrity,apparmor,bpf`)"
                .into(),
        }],
        KernelLandlock::Available { abi } => FEATURES
            .iter()
            .filter(|(n, _, _)| u32::from(*n) > abi && *n <= required)
            .map(|(n, what, linux)| Missing {
                feature: format!("Landlock ABI {n}: {what}"),
                advice: format!("needs {linux} or newer; this kernel offers Landlock ABI {abi}"),
            })
            .collect(),
    }
}

/// Rights on a directory tree that may be read.
fn read_dir_rights(exec: bool) -> BitFlags<AccessFs> {
    let mut r = AccessFs::ReadFile | AccessFs::ReadDir;
    if exec {
        r |= AccessFs::Execute;
    }
    r
}

/// Rights on a single file that may be read.
fn read_file_rights(exec: bool) -> BitFlags<AccessFs> {
    let mut r: BitFlags<AccessFs> = AccessFs::ReadFile.into();
    if exec {
        r |= AccessFs::Execute;
    }
    r
}

fn write_file_rights(truncate: bool) -> BitFlags<AccessFs> {
    let mut r: BitFlags<AccessFs> = AccessFs::WriteFile.into();
    if truncate {
        r |= AccessFs::Truncate;
    }
    r
}

fn create_in_rights() -> BitFlags<AccessFs> {
    AccessFs::ReadFile
        | AccessFs::ReadDir
        | AccessFs::WriteFile
        | AccessFs::MakeReg
        | AccessFs::MakeDir
}

fn write_tree_rights() -> BitFlags<AccessFs> {
    create_in_rights()
        | AccessFs::Truncate
        | AccessFs::RemoveFile
        | AccessFs::RemoveDir
        | AccessFs::Refer
}

/// The rights one list of a domain grants, by file type, as names (for
/// `kato doctor` and the policy hash).
pub(super) fn right_names(list: &str, is_dir: bool, domain: &Domain) -> Vec<&'static str> {
    let access = match (list, is_dir) {
        ("read", true) => read_dir_rights(domain.exec),
        ("read", false) => read_file_rights(domain.exec),
        ("list", _) => AccessFs::ReadDir.into(),
        ("write", _) => write_file_rights(domain.truncate),
        ("create", _) => create_in_rights(),
        _ => write_tree_rights(),
    };
    access.iter().map(access_name).collect()
}

fn access_name(a: AccessFs) -> &'static str {
    match a {
        AccessFs::Execute => "execute",
        AccessFs::WriteFile => "write_file",
        AccessFs::ReadFile => "read_file",
        AccessFs::ReadDir => "read_dir",
        AccessFs::RemoveDir => "remove_dir",
        AccessFs::RemoveFile => "remove_file",
        AccessFs::MakeChar => "make_char",
        AccessFs::MakeDir => "make_dir",
        AccessFs::MakeReg => "make_reg",
        AccessFs::MakeSock => "make_sock",
        AccessFs::MakeFifo => "make_fifo",
        AccessFs::MakeBlock => "make_block",
        AccessFs::MakeSym => "make_sym",
        AccessFs::Refer => "refer",
        AccessFs::Truncate => "truncate",
        AccessFs::IoctlDev => "ioctl_dev",
        _ => "other",
    }
}

/// Open `path` as an `O_PATH` descriptor for a rule, with its file type.
fn open_for_rule(path: &Path, follow: bool) -> std::io::Result<(OwnedFd, FileType)> {
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    Ok((fd, FileType::from_raw_mode(st.st_mode)))
}

pub(super) struct Outcome {
    pub status: Enforcement,
    pub skipped: Vec<Skipped>,
}

/// Build the ruleset for `domain` at ABI `abi` and restrict the calling thread.
// Long because: ruleset, per-path rules and restrict_self are one sequence read in order.
pub(super) fn restrict(
    domain: &Domain,
    mode: SandboxMode,
    abi: u8,
    kernel: KernelLandlock,
) -> Result<Outcome, SandboxError> {
    let abi = abi_from_number(abi);
    let handled = AccessFs::from_all(abi);
    let mut skipped = Vec::new();
    let mut rules: Vec<(OwnedFd, BitFlags<AccessFs>)> = Vec::new();

    let skip = |skipped: &mut Vec<Skipped>, path: &Path, reason: String| {
        skipped.push(Skipped {
            path: path.to_path_buf(),
            reason,
        })
    };

    for path in &domain.read {
        match open_for_rule(path, true) {
            Ok((fd, FileType::Directory)) => rules.push((fd, read_dir_rights(domain.exec))),
            Ok((fd, _)) => rules.push((fd, read_file_rights(domain.exec))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skip(&mut skipped, path, "does not exist".into())
            }
            Err(e) => skip(&mut skipped, path, e.to_string()),
        }
    }
    for path in &domain.write_files {
        let (fd, kind) = open_for_rule(path, false).map_err(|source| SandboxError::Path {
            action: "open",
            path: path.clone(),
            source,
        })?;
        match kind {
            FileType::RegularFile => rules.push((fd, write_file_rights(domain.truncate))),
            FileType::Symlink => return Err(SandboxError::Symlink { path: path.clone() }),
            _ => return Err(SandboxError::NotRegularFile { path: path.clone() }),
        }
    }
    for (paths, rights) in [
        (&domain.list, AccessFs::ReadDir.into()),
        (&domain.create_in, create_in_rights()),
        (&domain.write_trees, write_tree_rights()),
    ] {
        for path in paths {
            match open_for_rule(path, true) {
                Ok((fd, FileType::Directory)) => rules.push((fd, rights)),
                Ok(_) => skip(&mut skipped, path, "not a directory".into()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    skip(&mut skipped, path, "does not exist".into())
                }
                Err(e) => skip(&mut skipped, path, e.to_string()),
            }
        }
    }

    let level = match mode {
        SandboxMode::Enforce => CompatLevel::HardRequirement,
        SandboxMode::BestEffort => CompatLevel::BestEffort,
    };
    let mut ruleset = Ruleset::default()
        .set_compatibility(level)
        .handle_access(handled)?;
    let net = AccessNet::from_all(abi);
    if !domain.network && !net.is_empty() {
        ruleset = ruleset.handle_access(net)?;
    }
    let scopes = Scope::from_all(abi);
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes)?;
    }
    let mut created = ruleset.create()?;
    for (fd, access) in rules {
        let access = access & handled;
        if !access.is_empty() {
            created = created.add_rule(PathBeneath::new(fd, access))?;
        }
    }
    let status = created.restrict_self()?;
    let status = match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::FullyEnforced,
        RulesetStatus::PartiallyEnforced => Enforcement::PartiallyEnforced,
        RulesetStatus::NotEnforced => Enforcement::NotEnforced,
    };
    // A ruleset is only "fully enforced" if the kernel actually has Landlock.
    let status = match kernel {
        KernelLandlock::Available { .. } => status,
        _ => Enforcement::NotEnforced,
    };
    Ok(Outcome { status, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_features_name_what_and_where() {
        let m = missing_features(KernelLandlock::Available { abi: 3 }, 6);
        let names: Vec<_> = m.iter().map(|m| m.feature.as_str()).collect();
        assert_eq!(
            names,
            [
                "Landlock ABI 4: TCP bind/connect control",
                "Landlock ABI 5: device ioctl control",
                "Landlock ABI 6: abstract UNIX socket and signal scoping",
            ]
        );
        assert!(m[0].advice.contains("Linux 6.7"), "{}", m[0].advice);
        assert!(missing_features(KernelLandlock::Available { abi: 7 }, 6).is_empty());
        let m = missing_features(KernelLandlock::NotImplemented, 6);
        assert!(m[0].advice.contains("SystemCallFilter"), "{}", m[0].advice);
        let m = missing_features(KernelLandlock::NotEnabled, 6);
        assert!(m[0].advice.contains("lsm="), "{}", m[0].advice);
    }

    #[test]
    fn pinned_abi_rights_do_not_move_with_the_crate() {
        // The handled set at the pinned ABI is exactly the ABI 6 set:
        // no `resolve_unix` (ABI 9) sneaks in.
        let handled = AccessFs::from_all(abi_from_number(PINNED_LANDLOCK_ABI));
        assert_eq!(handled, AccessFs::from_all(ABI::V6));
        assert!(!handled.contains(AccessFs::ResolveUnix));
        assert_eq!(
            AccessNet::from_all(abi_from_number(PINNED_LANDLOCK_ABI)),
            AccessNet::BindTcp | AccessNet::ConnectTcp
        );
    }

    #[test]
    fn this_kernel_offers_the_pinned_abi() {
        let k = KernelLandlock::probe();
        let abi = k.abi().unwrap_or(0);
        assert!(
            abi >= u32::from(PINNED_LANDLOCK_ABI),
            "kernel Landlock: {k:?}"
        );
    }
}

#[cfg(test)]
mod kernel_tests {
    //! Landlock alone (no seccomp filter), on this kernel, in a throwaway
    //! thread each: the first wall must hold by itself.
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn landlock_alone_denies_reads_writes_and_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("in");
        let outside = dir.path().join("out");
        std::fs::create_dir(&inside).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(inside.join("a"), "a").unwrap();
        std::fs::write(outside.join("b"), "b").unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let domain = Domain {
                read: vec![inside.clone()],
                ..Domain::default()
            };
            let out = restrict(
                &domain,
                SandboxMode::BestEffort,
                PINNED_LANDLOCK_ABI,
                kernel(),
            )
            .unwrap();
            assert_eq!(out.status, Enforcement::FullyEnforced);
            assert_eq!(std::fs::read(inside.join("a")).unwrap(), b"a");
            let denied = |r: std::io::Result<()>| {
                let e = r.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
                assert_eq!(e.raw_os_error(), Some(libc::EACCES));
            };
            denied(std::fs::read(outside.join("b")).map(drop));
            denied(std::fs::write(inside.join("a"), "x"));
            denied(std::fs::write(inside.join("new"), "x"));
            // Landlock's own TCP rule (ABI 4), without seccomp in the way.
            denied(std::net::TcpStream::connect(addr).map(drop));
            denied(std::net::TcpListener::bind("127.0.0.1:0").map(drop));
        })
        .join()
        .unwrap();
    }
}
