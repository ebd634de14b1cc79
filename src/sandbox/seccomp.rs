//! The seccomp filter every confined thread installs: a deny list answered
//! with `EPERM` (everything else allowed), built with `seccompiler`.
//!
//! The filter is the second wall behind Landlock, and the only one for what
//! Landlock does not see: UDP, raw and netlink sockets, ptrace and friends,
//! mounts, kernel keyrings, BPF, modules. It also closes `io_uring` (whose
//! operations would bypass syscall filtering) and namespace creation through
//! `clone` flags; `clone3`, whose flags a filter cannot inspect, answers
//! `ENOSYS` so the C library falls back to `clone`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::SandboxError;

/// Always denied.
const ALWAYS: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", SYS_KEXEC_FILE_LOAD),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
];

/// Denied unless the domain allows exec.
const EXEC: &[(&str, i64)] = &[
    ("execve", libc::SYS_execve),
    ("execveat", libc::SYS_execveat),
];

#[cfg(target_arch = "x86_64")]
const SYS_KEXEC_FILE_LOAD: i64 = 320;
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
const SYS_KEXEC_FILE_LOAD: i64 = 294;

/// x32 system calls run under the x86-64 audit arch with this bit set in
/// the number; kernels built with x32 support would otherwise let a thread
/// reach a denied call through its x32 entry.
#[cfg(target_arch = "x86_64")]
const X32_BIT: i64 = 0x4000_0000;

/// x32 entries that do not share the x86-64 number (`syscall_64.tbl`).
#[cfg(target_arch = "x86_64")]
const X32_ONLY: &[(&str, i64)] = &[
    ("execve", 520),
    ("ptrace", 521),
    ("kexec_load", 528),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("execveat", 545),
];

/// Namespace-creating `clone` flags.
const CLONE_NAMESPACE_FLAGS: &[i32] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    0x80, // CLONE_NEWTIME
];

/// The syscalls the filter of a domain with these flags denies, as listed
/// by `kato doctor`.
pub fn denied_syscalls(exec: bool, network: bool) -> Vec<&'static str> {
    let mut names = Vec::new();
    if !network {
        names.push("socket (every address family but AF_UNIX)");
    }
    if !exec {
        names.extend(EXEC.iter().map(|(n, _)| *n));
    }
    names.extend(ALWAYS.iter().map(|(n, _)| *n));
    names.push("clone (with namespace flags)");
    names.push("clone3 (ENOSYS: falls back to clone)");
    names
}

fn err(e: impl Into<seccompiler::Error>) -> SandboxError {
    SandboxError::Seccomp(e.into())
}

fn arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(err)
}

/// Add `nr` (and its x32 twin) with `rules` to the map.
fn deny(map: &mut BTreeMap<i64, Vec<SeccompRule>>, nr: i64, rules: Vec<SeccompRule>) {
    #[cfg(target_arch = "x86_64")]
    map.insert(nr | X32_BIT, rules.clone());
    map.insert(nr, rules);
}

/// The deny-list filter (answers `EPERM`).
fn deny_filter(exec: bool, network: bool) -> Result<BpfProgram, SandboxError> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr) in ALWAYS {
        deny(&mut map, *nr, Vec::new());
    }
    if !exec {
        for (_, nr) in EXEC {
            deny(&mut map, *nr, Vec::new());
        }
    }
    #[cfg(target_arch = "x86_64")]
    for (name, nr) in X32_ONLY {
        if exec && EXEC.iter().any(|(n, _)| n == name) {
            continue;
        }
        map.insert(X32_BIT | *nr, Vec::new());
    }
    if !network {
        // socket(domain, …) with domain != AF_UNIX.
        let not_unix = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            libc::AF_UNIX as u64,
        )
        .map_err(err)?;
        deny(
            &mut map,
            libc::SYS_socket,
            vec![SeccompRule::new(vec![not_unix]).map_err(err)?],
        );
    }
    // clone(flags, …) with any namespace flag set.
    let mut clone_rules = Vec::new();
    for flag in CLONE_NAMESPACE_FLAGS {
        let flag = u64::from(flag.unsigned_abs());
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(err)?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(err)?);
    }
    deny(&mut map, libc::SYS_clone, clone_rules);

    let filter = SeccompFilter::new(
        map,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .map_err(err)?;
    BpfProgram::try_from(filter).map_err(err)
}

/// `clone3` answers `ENOSYS`.
fn clone3_filter() -> Result<BpfProgram, SandboxError> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    deny(&mut map, libc::SYS_clone3, Vec::new());
    let filter = SeccompFilter::new(
        map,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )
    .map_err(err)?;
    BpfProgram::try_from(filter).map_err(err)
}

/// Install both filters on the calling thread (and the threads it creates
/// afterwards). Sets no_new_privs, which loading a filter requires.
pub(super) fn install(exec: bool, network: bool) -> Result<(), SandboxError> {
    let deny = deny_filter(exec, network)?;
    let clone3 = clone3_filter()?;
    seccompiler::apply_filter(&deny).map_err(err)?;
    seccompiler::apply_filter(&clone3).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_build_for_every_flag_combination() {
        for exec in [false, true] {
            for network in [false, true] {
                let prog = deny_filter(exec, network).unwrap();
                assert!(prog.len() > 40, "{} instructions", prog.len());
                assert!(prog.len() < 4096);
            }
        }
        assert!(!clone3_filter().unwrap().is_empty());
    }

    #[test]
    fn doctor_list_follows_the_flags() {
        let all = denied_syscalls(false, false);
        assert!(all.contains(&"execve"));
        assert!(all.iter().any(|n| n.starts_with("socket")));
        let open = denied_syscalls(true, true);
        assert!(!open.contains(&"execve"));
        assert!(!open.iter().any(|n| n.starts_with("socket")));
        assert!(open.contains(&"ptrace"));
    }
}

#[cfg(test)]
mod kernel_tests {
    //! The filter alone, on this kernel, in a throwaway thread each.
    use super::*;
    use std::io::ErrorKind;

    fn in_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::spawn(f).join().unwrap()
    }

    #[test]
    fn sockets_exec_and_namespaces_are_refused_threads_still_work() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        in_thread(move || {
            install(false, false).unwrap();
            let e = std::net::TcpStream::connect(addr).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            let e = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            // AF_UNIX stays usable (journald, socketpair).
            std::os::unix::net::UnixDatagram::pair().unwrap();
            let e = std::process::Command::new("/bin/true")
                .status()
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            // clone3 answers ENOSYS and the C library falls back to clone.
            let t = std::thread::spawn(|| 7).join().unwrap();
            assert_eq!(t, 7);
            // Files are Landlock's business, not the filter's.
            let e = std::fs::read("/nonexistent-kato-test").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);
        });
    }
}
