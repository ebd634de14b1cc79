//! `ci/strace-export`: its trace checker against hand-written traces (the
//! shapes `strace -f -o` prints), and — when strace is installed — the whole
//! script against `examples/confined_export`, which follows the same
//! confinement sequence as `kato export`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SRC: &str = "/s/a.jsonl";
const OUT: &str = "/o/out.md";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/strace-export")
}

/// A trace of a correct export, as root (capabilities held, then dropped).
fn good_trace() -> Vec<String> {
    [
        r#"100 execve("/x/kato", ["kato", "export", "/s/a.jsonl", "-o", "/o/out.md"], 0x7ffc9d1e8a38 /* 20 vars */) = 0"#,
        r#"100 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3"#,
        r#"100 prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) = 0"#,
        r#"100 capget({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=1<<CAP_CHOWN|1<<CAP_SETPCAP, permitted=1<<CAP_CHOWN|1<<CAP_SETPCAP, inheritable=0}) = 0"#,
        r#"100 prctl(PR_CAPBSET_DROP, CAP_CHOWN) = 0"#,
        r#"100 capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=0, permitted=0, inheritable=0}) = 0"#,
        r#"100 openat(AT_FDCWD, "/s/a.jsonl", O_RDONLY|O_CLOEXEC|O_PATH) = 4"#,
        r#"100 landlock_create_ruleset({handled_access_fs=LANDLOCK_ACCESS_FS_EXECUTE|LANDLOCK_ACCESS_FS_WRITE_FILE, handled_access_net=LANDLOCK_ACCESS_NET_BIND_TCP|LANDLOCK_ACCESS_NET_CONNECT_TCP, scoped=LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET|LANDLOCK_SCOPE_SIGNAL}, 24, 0) = 5"#,
        r#"100 landlock_restrict_self(5, 0) = 0"#,
        r#"100 seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=121, filter=0x5581d0b4a6e0}) = 0"#,
        r#"100 clone3({flags=CLONE_VM|CLONE_FS, exit_signal=0, stack=0x7f, stack_size=0x9000}, 88) = -1 ENOSYS (Function not implemented)"#,
        r#"100 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = -1 EPERM (Operation not permitted)"#,
        r#"100 openat(AT_FDCWD, "/s/a.jsonl", O_RDONLY|O_CLOEXEC <unfinished ...>"#,
        r#"101 futex(0x7f2c, FUTEX_WAIT_PRIVATE, 2, NULL) = 0"#,
        r#"100 <... openat resumed>) = 3"#,
        r#"100 read(3, "{\"type\":\"user\"}\n", 8192) = 16"#,
        r#"100 open("/", O_RDONLY|O_CLOEXEC|O_DIRECTORY|O_PATH) = 4"#,
        r#"100 openat2(4, "o", {flags=O_RDONLY|O_CLOEXEC|O_DIRECTORY|O_PATH, resolve=RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH}, 24) = 5"#,
        r#"100 openat2(5, "out.md", {flags=O_WRONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW, resolve=RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH}, 24) = -1 ENOENT (No such file or directory)"#,
        r#"100 openat2(5, "out.md", {flags=O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC|O_NOCTTY|O_NONBLOCK|O_NOFOLLOW, mode=0600, resolve=RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH}, 24) = 6"#,
        r#"100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---"#,
        r#"100 +++ exited with 0 +++"#,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn check(lines: &[String]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    std::fs::write(&trace, lines.join("\n") + "\n").unwrap();
    Command::new("bash")
        .arg(script())
        .arg("--check-trace")
        .arg(&trace)
        .args([SRC, OUT])
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_passes(lines: &[String]) -> String {
    let o = check(lines);
    let t = text(&o);
    assert!(o.status.success(), "expected a pass:\n{t}");
    assert!(!t.contains("FAIL"), "{t}");
    t
}

fn assert_fails(lines: &[String], message: &str) {
    let o = check(lines);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "expected exit 1:\n{t}");
    assert!(t.contains(message), "expected `{message}` in:\n{t}");
}

fn without(lines: &[String], needle: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.contains(needle))
        .cloned()
        .collect()
}

fn with_line(lines: &[String], after: &str, line: &str) -> Vec<String> {
    let mut v = Vec::new();
    for l in lines {
        v.push(l.clone());
        if l.contains(after) {
            v.push(line.to_owned());
        }
    }
    v
}

#[test]
fn a_correct_trace_passes() {
    let t = assert_passes(&good_trace());
    for needle in [
        "ok   prctl(PR_SET_NO_NEW_PRIVS)",
        "ok   capability drop",
        "ok   seccomp(SECCOMP_SET_MODE_FILTER)",
        "ok   landlock_restrict_self",
        "ok   no socket() succeeded (1 refused)",
        "ok   no execve after the first",
        "ok   the only file created is the output",
    ] {
        assert!(t.contains(needle), "`{needle}` missing:\n{t}");
    }
}

#[test]
fn opening_the_session_before_landlock_fails() {
    // The read open moved before landlock_restrict_self.
    let mut lines = without(
        &good_trace(),
        "/s/a.jsonl\", O_RDONLY|O_CLOEXEC <unfinished",
    );
    lines.retain(|l| !l.contains("openat resumed"));
    let lines = with_line(
        &lines,
        "O_PATH",
        r#"100 openat(AT_FDCWD, "/s/a.jsonl", O_RDONLY|O_CLOEXEC) = 6"#,
    );
    assert_fails(&lines, "FAIL landlock_restrict_self");
    assert_fails(&lines, "after the session file was opened");
}

#[test]
fn missing_steps_fail() {
    assert_fails(
        &without(&good_trace(), "seccomp("),
        "FAIL seccomp(SECCOMP_SET_MODE_FILTER) never happened",
    );
    assert_fails(
        &without(&good_trace(), "landlock_restrict_self"),
        "FAIL landlock_restrict_self never happened",
    );
    assert_fails(
        &without(&good_trace(), "PR_SET_NO_NEW_PRIVS"),
        "FAIL prctl(PR_SET_NO_NEW_PRIVS) never happened",
    );
    let no_drop = without(&without(&good_trace(), "capset("), "PR_CAPBSET_DROP");
    assert_fails(&no_drop, "FAIL capability drop");
}

#[test]
fn no_capabilities_means_no_drop_is_needed() {
    let lines: Vec<String> = without(&without(&good_trace(), "capset("), "PR_CAPBSET_DROP")
        .into_iter()
        .map(|l| {
            if l.contains("capget(") {
                r#"100 capget({version=_LINUX_CAPABILITY_VERSION_3, pid=0}, {effective=0, permitted=0, inheritable=0}) = 0"#.to_owned()
            } else {
                l
            }
        })
        .collect();
    let t = assert_passes(&lines);
    assert!(t.contains("capability drop not needed"), "{t}");
}

#[test]
fn a_successful_socket_fails() {
    let lines = with_line(
        &good_trace(),
        "PR_SET_NO_NEW_PRIVS",
        "100 socket(AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 7",
    );
    assert_fails(&lines, "FAIL socket() succeeded");
}

#[test]
fn a_second_execve_fails_even_when_refused() {
    let lines = with_line(
        &good_trace(),
        "seccomp(",
        r#"102 execve("/bin/sh", ["sh", "-c", "id"], 0x7ffd /* 3 vars */) = -1 EPERM (Operation not permitted)"#,
    );
    assert_fails(&lines, "FAIL execve after the first");
}

#[test]
fn creating_anything_but_the_output_fails() {
    let extra = with_line(
        &good_trace(),
        "read(3",
        r#"100 openat(AT_FDCWD, "/o/out.md.tmp", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 5"#,
    );
    assert_fails(
        &extra,
        "created a file other than the output: /o/out.md.tmp",
    );
    // Beneath a directory descriptor, only the output's own name.
    let beside = with_line(
        &good_trace(),
        "read(3",
        r#"100 openat2(5, "other.md", {flags=O_WRONLY|O_CREAT|O_EXCL, mode=0600, resolve=RESOLVE_BENEATH}, 24) = 7"#,
    );
    assert_fails(&beside, "created a file other than the output: other.md");
    let dir = with_line(&good_trace(), "read(3", r#"100 mkdir("/o/x", 0777) = 0"#);
    assert_fails(&dir, "filesystem entry created");
    // A refused creation is not a creation.
    let refused = with_line(
        &good_trace(),
        "read(3",
        r#"100 openat(AT_FDCWD, "/o/other.md", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = -1 EACCES (Permission denied)"#,
    );
    assert_passes(&refused);
}

#[test]
fn a_session_never_opened_fails() {
    let lines: Vec<String> = good_trace()
        .into_iter()
        .filter(|l| !l.contains("<unfinished") && !l.contains("openat resumed"))
        .collect();
    assert_fails(&lines, "was never opened for reading");
}

/// The whole script, against the example that mirrors `kato export`.
#[test]
fn the_script_checks_a_real_trace() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed: only the trace checker was tested");
        return;
    }
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let build = Command::new(cargo)
        .args(["build", "--quiet", "--example", "confined_export"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let bin = target.join("debug/examples/confined_export");
    assert!(bin.is_file(), "{}", bin.display());

    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("session.jsonl");
    std::fs::write(&fixture, "{\"type\":\"user\"}\n").unwrap();
    let run = |violate: Option<&str>| {
        let mut c = Command::new("bash");
        c.arg(script())
            .env("KATO_BIN", &bin)
            .env("KATO_EXPORT_FIXTURE", &fixture);
        if let Some(v) = violate {
            c.env("KATO_EXPORT_ARGS", format!("--violate {v}"));
        }
        c.output().unwrap()
    };
    let ok = run(None);
    assert!(ok.status.success(), "{}", text(&ok));
    let t = text(&ok);
    assert!(t.contains("ok   landlock_restrict_self"), "{t}");

    for (violation, message) in [
        ("open-early", "after the session file was opened"),
        ("socket", "FAIL socket() succeeded"),
        ("extra-file", "created a file other than the output"),
    ] {
        let bad = run(Some(violation));
        let t = text(&bad);
        assert_eq!(bad.status.code(), Some(1), "{violation}:\n{t}");
        assert!(
            t.contains(message),
            "{violation}: `{message}` missing:\n{t}"
        );
    }
}

/// The real binary, traced: `kato export` of a session file reads no byte
/// of it before its sandbox is in force (it once read a file's first 16
/// bytes unconfined, to see whether it was an SQLite database).
#[test]
fn kato_export_reads_no_byte_of_the_session_before_it_is_confined() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("strace is not installed: the real binary was not traced");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir
        .path()
        .join("0890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl");
    std::fs::write(
        &fixture,
        concat!(
            r#"{"type":"user","sessionId":"0890bead-0ab3-4ee9-98f8-585fd289cc1f","uuid":"u1","parentUuid":null,"timestamp":"2026-01-08T15:56:00.000Z","message":{"role":"user","content":"hello"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(script())
        .env("KATO_BIN", env!("CARGO_BIN_EXE_kato"))
        .env("KATO_EXPORT_FIXTURE", &fixture)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("ok   landlock_restrict_self"), "{t}");
    assert!(t.contains("ok   seccomp"), "{t}");
}
