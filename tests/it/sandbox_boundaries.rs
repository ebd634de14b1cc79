//! Boundary tests of every stage domain against the real kernel.
//!
//! Confinement is irreversible and partly process-wide (umask, dumpable,
//! RLIMIT_CORE), so every test re-executes this test binary with only
//! itself selected ([`in_child`]); inside that child the confined work runs
//! on its own thread ([`confined`]) so an unconfined thread is left to
//! inspect the result from outside.

use std::fmt::Debug;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use kato::config::{Config, Env};
use kato::sandbox::{
    self, doctor, harden_process, profiles, Confiner, Enforcement, SandboxError, SandboxMode,
    StageName, StageOutcome, StageReport,
};

const CHILD_ENV: &str = "KATO_BOUNDARY_CHILD";

/// Run `body` in a fresh process: this binary again, with only the test
/// `name` selected. The parent asserts the child passed.
fn in_child(name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            crate::harness::test_path(module_path!(), name).as_str(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child `{name}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "child `{name}` did not run the test:\n{stdout}"
    );
}

/// Run `f` on a new thread after `harden_process(Enforce)`; re-raise its panic.
fn confined<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let t = std::thread::spawn(move || {
        harden_process(SandboxMode::Enforce).expect("harden_process");
        f()
    });
    match t.join() {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Expectations collected without panicking (a panic inside a stage thread
/// would lose the message).
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn ok<T>(&mut self, what: &str, r: io::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(format!("{what}: expected success, got {e}"));
                None
            }
        }
    }

    fn errno<T: Debug>(&mut self, what: &str, errno: i32, r: io::Result<T>) {
        match r {
            Ok(v) => self
                .0
                .push(format!("{what}: expected errno {errno}, succeeded: {v:?}")),
            Err(e) if e.raw_os_error() == Some(errno) => {}
            Err(e) => self
                .0
                .push(format!("{what}: expected errno {errno}, got {e}")),
        }
    }

    /// Landlock's answer.
    fn eacces<T: Debug>(&mut self, what: &str, r: io::Result<T>) {
        self.errno(what, libc::EACCES, r)
    }

    /// The seccomp filter's answer.
    fn eperm<T: Debug>(&mut self, what: &str, r: io::Result<T>) {
        self.errno(what, libc::EPERM, r)
    }

    /// No network, no exec: the same for every stage.
    fn no_network_no_exec(&mut self, listener: SocketAddr) {
        self.eperm("connect to 127.0.0.1 TCP", TcpStream::connect(listener));
        self.eperm("bind TCP", TcpListener::bind("127.0.0.1:0"));
        self.eperm("UDP socket", std::net::UdpSocket::bind("127.0.0.1:0"));
        self.eperm(
            "execve /bin/true",
            Command::new("/bin/true").status().map(|s| s.code()),
        );
    }

    fn finish(self) {
        assert!(self.0.is_empty(), "\n{}", self.0.join("\n"));
    }
}

fn append(path: &Path, text: &str) -> io::Result<()> {
    OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

fn create(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

fn truncate_open(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().write(true).truncate(true).open(path)
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no `{key}` in status:\n{status}"))
}

#[test]
fn harden_process_shows_in_proc_status() {
    in_child("harden_process_shows_in_proc_status", || {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let report = harden_process(SandboxMode::Enforce).unwrap();
            let applied = profiles::provider(&[]).apply(SandboxMode::Enforce).unwrap();
            tid_tx
                .send((
                    rustix::thread::gettid().as_raw_nonzero().get(),
                    report,
                    applied,
                ))
                .unwrap();
            let _ = done_rx.recv();
        });
        let (tid, report, applied) = tid_rx.recv().unwrap();
        // Read from outside the confined thread: it may not read /proc.
        let status = fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        done_tx.send(()).unwrap();
        t.join().unwrap();

        for key in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
            assert_eq!(status_field(&status, key), "0000000000000000", "{key}");
        }
        // The bounding set can only be emptied with CAP_SETPCAP (root here);
        // an unprivileged run keeps it and says why.
        const CAP_SETPCAP: u64 = 1 << 8;
        if report.capabilities_before.effective & CAP_SETPCAP != 0 {
            assert_eq!(status_field(&status, "CapBnd"), "0000000000000000");
            assert_eq!(report.capabilities.bounding, 0);
        } else {
            assert!(report.notes.iter().any(|n| n.contains("CAP_SETPCAP")));
        }
        assert_eq!(status_field(&status, "NoNewPrivs"), "1");
        assert_eq!(status_field(&status, "Seccomp"), "2");
        // umask is process-wide.
        assert_eq!(
            status_field(&fs::read_to_string("/proc/self/status").unwrap(), "Umask"),
            "0077"
        );
        let core = rustix::process::getrlimit(rustix::process::Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );

        assert!(report.no_new_privs && report.core_dumps_disabled);
        assert!(report.capabilities.is_empty());
        if !report.capabilities_before.is_empty() {
            assert!(report.capset_called);
        }
        assert!(applied.is_fully_enforced(), "{applied:?}");
        assert_eq!(applied.landlock.status, Enforcement::FullyEnforced);
        assert_eq!(applied.landlock.abi_pinned, sandbox::PINNED_LANDLOCK_ABI);
    });
}

/// A Claude session of `session` in `dir`, well past the length an export
/// reads ahead (4 MiB), and its number of lines.
fn long_session(dir: &Path, session: &str) -> (PathBuf, u32) {
    let path = dir.join("00000000-0000-4000-8000-000000000001.jsonl");
    let mut text = String::new();
    let mut lines = 0;
    while text.len() < 6 << 20 {
        text.push_str(&crate::harness::claude_line(session, lines));
        lines += 1;
    }
    fs::write(&path, text).unwrap();
    (path, lines)
}

/// A parse stage that may start no thread (a task limit reached) reads a
/// long session in place instead of failing the export.
#[test]
fn a_session_is_read_in_place_when_no_read_ahead_thread_can_start() {
    in_child(
        "a_session_is_read_in_place_when_no_read_ahead_thread_can_start",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let (path, lines) = long_session(tmp.path(), "in-place");
            let mut file = fs::File::open(&path).unwrap();
            let t = std::thread::spawn(move || {
                // Another user (this thread only), allowed one task: the
                // process has more, so no thread can be created.
                let nobody = rustix::process::Uid::from_raw(65534);
                rustix::thread::set_thread_res_uid(nobody, nobody, nobody).unwrap();
                let one = rustix::process::Rlimit {
                    current: Some(1),
                    maximum: Some(1),
                };
                rustix::process::setrlimit(rustix::process::Resource::Nproc, one).unwrap();
                let refused = std::thread::Builder::new().spawn(|| ()).is_err();
                let provider = kato::provider::by_name("claude").unwrap();
                let ctx = kato::provider::ctx_for_path(provider, &path);
                let mut events = 0u32;
                let inc = kato::reader::read_increment(
                    &mut file,
                    provider,
                    &ctx,
                    &kato::reader::Cursor::default(),
                    kato::reader::Limits::default(),
                    kato::reader::Tail::Final,
                    &mut |_| events += 1,
                );
                (
                    refused,
                    inc.map(|i| i.diagnostics).map_err(|e| e.to_string()),
                    events,
                )
            });
            let (refused, read, events) = t.join().unwrap();
            assert!(refused, "a thread could still be created");
            assert_eq!(read, Ok(Vec::new()));
            assert_eq!(events, lines, "every line read once");
        },
    );
}

/// `kato export` reads a long session ahead, on a thread the confined parse
/// stage creates: that thread holds the stage's confinement (it inherits
/// the Landlock domain and the seccomp filter with its credentials), and
/// /proc shows no capability, no_new_privs and the filter on it.
#[test]
fn the_read_ahead_thread_holds_the_parse_stage_confinement() {
    in_child(
        "the_read_ahead_thread_holds_the_parse_stage_confinement",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let (path, lines) = long_session(tmp.path(), "read-ahead");
            let (at_tx, at_rx) = mpsc::channel::<()>();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let p = path.clone();
            let t = std::thread::spawn(move || {
                harden_process(SandboxMode::Enforce).unwrap();
                profiles::export(std::slice::from_ref(&p), None, None)
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                let provider = kato::provider::by_name("claude").unwrap();
                let mut events = 0u32;
                let inc = kato::reader::read_path(
                    &p,
                    provider,
                    kato::reader::Limits::default(),
                    &mut |_| {
                        // Hold the first event until the reader was seen.
                        if events == 0 {
                            at_tx.send(()).unwrap();
                            go_rx.recv().unwrap();
                        }
                        events += 1;
                    },
                );
                (
                    inc.map(|i| i.diagnostics).map_err(|e| e.to_string()),
                    events,
                )
            });
            at_rx.recv().unwrap();
            // The reader is now blocked handing over buffers it read.
            let mut seen = Vec::new();
            for task in fs::read_dir("/proc/self/task").unwrap() {
                let dir = task.unwrap().path();
                let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
                if comm.trim_end() == "kato:read-ahead" {
                    seen.push(fs::read_to_string(dir.join("status")).unwrap());
                }
            }
            go_tx.send(()).unwrap();
            let (read, events) = t.join().unwrap();
            assert_eq!(read, Ok(Vec::new()));
            assert_eq!(events, lines, "every line read once");
            assert_eq!(seen.len(), 1, "one read-ahead thread");
            let status = &seen[0];
            for key in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
                assert_eq!(status_field(status, key), "0000000000000000", "{key}");
            }
            assert_eq!(status_field(status, "NoNewPrivs"), "1");
            assert_eq!(status_field(status, "Seccomp"), "2");
        },
    );
}

#[test]
fn provider_stage_reads_its_roots_and_nothing_else() {
    in_child("provider_stage_reads_its_roots_and_nothing_else", || {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("projects");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(root.join("-home-u-repo")).unwrap();
        fs::create_dir(&outside).unwrap();
        let session = root.join("-home-u-repo/s.jsonl");
        fs::write(&session, "{}\n").unwrap();
        fs::write(outside.join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("link")).unwrap();
        let missing_root = tmp.path().join("not-there");
        let (_l, addr) = listener();

        let (r, s, o, m, t) = (
            root.clone(),
            session.clone(),
            outside.clone(),
            missing_root.clone(),
            tmp.path().to_path_buf(),
        );
        let skipped = confined(move || {
            let applied = profiles::provider(&[r.clone(), m.clone()])
                .apply(SandboxMode::Enforce)
                .unwrap();
            let mut c = Checks::default();
            c.ok("read session", fs::read(&s));
            c.ok("list root", fs::read_dir(r.join("-home-u-repo")));
            c.eacces("read outside", fs::read(o.join("secret")));
            c.eacces("list outside", fs::read_dir(&o));
            c.eacces("read through symlink", fs::read(r.join("link")));
            c.eacces("append to session", append(&s, "x"));
            c.eacces("create in root", create(&r.join("new")));
            c.eacces("mkdir in root", fs::create_dir(r.join("d")));
            c.eacces("remove session", fs::remove_file(&s));
            c.eacces(
                "rename session",
                fs::rename(&s, r.join("-home-u-repo/t.jsonl")),
            );
            c.eacces("create in tmp", create(&t.join("new")));
            c.eacces(
                "write /dev/null",
                OpenOptions::new().write(true).open("/dev/null"),
            );
            c.eacces("read /proc/self/status", fs::read("/proc/self/status"));
            c.no_network_no_exec(addr);
            c.finish();
            applied.skipped
        });
        // A missing root is skipped and reported, never widened to its parent.
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].path, missing_root);
        assert!(!root.join("new").exists() && !tmp.path().join("new").exists());
        assert_eq!(fs::read_to_string(&session).unwrap(), "{}\n");
    });
}

#[test]
fn orchestrator_stage_owns_state_and_reads_config() {
    in_child("orchestrator_stage_owns_state_and_reads_config", || {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let roots = tmp.path().join("projects");
        fs::create_dir_all(&state).unwrap();
        fs::create_dir_all(&roots).unwrap();
        let cfg = tmp.path().join("config.toml");
        fs::write(&cfg, "[sandbox]\n").unwrap();
        fs::write(roots.join("s.jsonl"), "{}\n").unwrap();
        let (_l, addr) = listener();

        let (st, cf, ro, t) = (
            state.clone(),
            cfg.clone(),
            roots.clone(),
            tmp.path().to_owned(),
        );
        confined(move || {
            profiles::orchestrator(Some(&cf), &st, &st)
                .apply(SandboxMode::Enforce)
                .unwrap();
            let mut c = Checks::default();
            c.ok("read config", fs::read(&cf));
            c.eacces("write config", append(&cf, "x"));
            c.ok("mkdir in state", fs::create_dir(st.join("sessions")));
            c.ok(
                "write temp",
                fs::write(st.join("sessions/c.json.tmp"), "{}"),
            );
            c.ok(
                "rename into place",
                fs::rename(st.join("sessions/c.json.tmp"), st.join("sessions/c.json")),
            );
            c.ok("quarantine across dirs", {
                fs::create_dir(st.join("quarantine")).and_then(|()| {
                    fs::rename(st.join("sessions/c.json"), st.join("quarantine/c.json"))
                })
            });
            c.ok("remove", fs::remove_file(st.join("quarantine/c.json")));
            c.eacces("read provider root", fs::read(ro.join("s.jsonl")));
            c.eacces("create outside state", create(&t.join("x")));
            c.eacces(
                "symlink in state",
                std::os::unix::fs::symlink("/etc", st.join("l")),
            );
            c.no_network_no_exec(addr);
            c.finish();
        });
        assert!(state.join("sessions").is_dir());
        assert!(!tmp.path().join("x").exists());
    });
}

#[test]
fn writer_creates_its_destination_and_nothing_beside_it() {
    in_child(
        "writer_creates_its_destination_and_nothing_beside_it",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let exports = tmp.path().join("exports");
            let notes = exports.join("notes");
            fs::create_dir_all(&notes).unwrap();
            let sibling = notes.join("sibling.md");
            fs::write(&sibling, "mine\n").unwrap();
            let dest = notes.join("dest.md");
            let (_l, addr) = listener();

            let (ex, d, sib) = (exports.clone(), dest.clone(), sibling.clone());
            let (created, ran) = confined(move || {
                // The process-wide domain a writer is spawned under.
                profiles::writer_spawner(std::slice::from_ref(&ex))
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                // The spawner creates the destination through the path
                // policy, as `writer::spawn` does, before the writer narrows.
                let policy = kato::policy::Policy::new(std::slice::from_ref(&ex), Vec::new());
                let target = policy.check(d.as_os_str()).unwrap();
                let (_, created) = policy.open_append(&target).unwrap();
                let (d2, sib2, n2) = (d.clone(), sib.clone(), ex.join("notes"));
                let w = Confiner::new(SandboxMode::Enforce)
                    .spawn(StageName::Writer, profiles::writer(&d), move || {
                        let mut c = Checks::default();
                        c.ok("append to own destination", append(&d2, "# hello\n"));
                        c.ok("read own destination", fs::read(&d2));
                        c.eacces(
                            "create another name beside it",
                            create(&n2.join("other.md")),
                        );
                        c.eacces("write the sibling", append(&sib2, "x"));
                        c.eacces("read the sibling", fs::read(&sib2));
                        c.eacces("truncate own destination", truncate_open(&d2));
                        c.eacces("remove own destination", fs::remove_file(&d2));
                        c.eacces("mkdir beside it", fs::create_dir(n2.join("sub")));
                        c.eacces("list its directory", fs::read_dir(&n2));
                        c.no_network_no_exec(addr);
                        c.0
                    })
                    .unwrap();
                assert!(w.applied().unwrap().is_fully_enforced());
                let failures = w.join().unwrap();
                assert!(failures.is_empty(), "\n{}", failures.join("\n"));
                (created, true)
            });
            assert!(ran);
            assert!(created, "the spawner created the destination");
            assert_eq!(fs::read_to_string(&dest).unwrap(), "# hello\n");
            assert!(!notes.join("other.md").exists(), "no stray empty file");
            assert_eq!(fs::read_to_string(&sibling).unwrap(), "mine\n");
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &fs::metadata(&dest).unwrap().permissions(),
            );
            // Recordings are for people to read: `[exports] file_mode`, 0644 by default.
            assert_eq!(mode & 0o777, 0o644);
        },
    );
}

#[test]
fn writer_refuses_a_symlinked_destination_and_does_not_run() {
    in_child(
        "writer_refuses_a_symlinked_destination_and_does_not_run",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let target = tmp.path().join("target.md");
            fs::write(&target, "target\n").unwrap();
            let dest = tmp.path().join("dest.md");
            std::os::unix::fs::symlink(&target, &dest).unwrap();
            let ran = Arc::new(AtomicBool::new(false));
            let r2 = ran.clone();
            let err = confined(move || {
                Confiner::new(SandboxMode::Enforce)
                    .spawn(StageName::Writer, profiles::writer(&dest), move || {
                        r2.store(true, Ordering::SeqCst)
                    })
                    .unwrap_err()
            });
            assert!(
                matches!(&err, SandboxError::Stage { source, .. } if matches!(**source, SandboxError::Symlink { .. })),
                "{err}"
            );
            assert!(!ran.load(Ordering::SeqCst), "the stage's work must not run");
            assert_eq!(fs::read_to_string(&target).unwrap(), "target\n");
        },
    );
}

#[test]
fn writer_spawner_creates_under_export_roots_never_removes() {
    in_child(
        "writer_spawner_creates_under_export_roots_never_removes",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let exports = tmp.path().join("exports");
            fs::create_dir(&exports).unwrap();
            fs::write(exports.join("old.md"), "old\n").unwrap();
            let provider_root = tmp.path().join("projects");
            fs::create_dir(&provider_root).unwrap();
            fs::write(provider_root.join("s.jsonl"), "{}\n").unwrap();
            let (_l, addr) = listener();

            let (ex, pr, t) = (
                exports.clone(),
                provider_root.clone(),
                tmp.path().to_owned(),
            );
            confined(move || {
                profiles::writer_spawner(std::slice::from_ref(&ex))
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                let mut c = Checks::default();
                c.ok("mkdir under root", fs::create_dir(ex.join("notes")));
                c.ok("create file", create(&ex.join("notes/new.md")));
                c.ok("append", append(&ex.join("old.md"), "more\n"));
                c.eacces("remove", fs::remove_file(ex.join("old.md")));
                c.eacces("rename", fs::rename(ex.join("old.md"), ex.join("moved.md")));
                c.eacces("truncate", truncate_open(&ex.join("old.md")));
                c.eacces("read provider root", fs::read(pr.join("s.jsonl")));
                c.eacces("create outside", create(&t.join("x.md")));
                c.no_network_no_exec(addr);
                c.finish();
            });
            assert_eq!(
                fs::read_to_string(exports.join("old.md")).unwrap(),
                "old\nmore\n"
            );
            assert!(exports.join("notes/new.md").is_file());
        },
    );
}

/// The writer-spawner's domain comes from a configuration whose export
/// roots overlap nothing kato reads (an overlapping one does not load):
/// Landlock grants only what is allowed, so the domain holds no provider
/// root, config file or state directory, and the kernel refuses writes
/// there.
#[test]
fn the_writer_spawner_cannot_write_into_what_kato_reads() {
    in_child(
        "the_writer_spawner_cannot_write_into_what_kato_reads",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let base = fs::canonicalize(tmp.path()).unwrap();
            let (claude, state) = (base.join("claude"), base.join("state"));
            fs::create_dir_all(claude.join("p")).unwrap();
            fs::create_dir_all(base.join("exports")).unwrap();
            fs::create_dir_all(&state).unwrap();
            let session = claude.join("p/s.jsonl");
            fs::write(&session, "{}\n").unwrap();
            let cfg_path = base.join("config.toml");
            let text = |allowed: &Path| {
                format!(
                    "[providers.claude]\nroots = [\"{}\"]\n[state]\ndir = \"{}\"\n\
                 [exports]\nallowed_roots = [\"{}\"]\n",
                    claude.display(),
                    state.display(),
                    allowed.display()
                )
            };
            let env = Env {
                home: Some(base.join("home")),
                ..Env::default()
            };
            // The configuration that would put them in the domain is refused.
            assert!(Config::from_toml(&text(&base), Some(&cfg_path), &env).is_err());
            let toml = text(&base.join("exports"));
            fs::write(&cfg_path, &toml).unwrap();
            let cfg = Config::from_toml(&toml, Some(&cfg_path), &env).unwrap();
            let domain = profiles::writer_spawner(&profiles::export_roots(&cfg));
            let (s, c, st, cl, ex) = (
                session.clone(),
                cfg_path.clone(),
                state.clone(),
                claude.clone(),
                base.join("exports"),
            );
            confined(move || {
                domain.apply(SandboxMode::Enforce).unwrap();
                let mut k = Checks::default();
                k.ok("create in the export root", create(&ex.join("a.md")));
                k.eacces("append to a session file", append(&s, "x"));
                k.eacces("create in a provider root", create(&cl.join("p/x.jsonl")));
                k.eacces("append to the config file", append(&c, "x"));
                k.eacces("create in the state dir", create(&st.join("x")));
                k.finish();
            });
            assert_eq!(fs::read_to_string(&session).unwrap(), "{}\n");
            assert_eq!(fs::read_to_string(&cfg_path).unwrap(), toml);
        },
    );
}

#[test]
fn export_reads_its_sources_and_writes_exactly_its_output() {
    in_child(
        "export_reads_its_sources_and_writes_exactly_its_output",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let sessions = tmp.path().join("sessions");
            let out_dir = tmp.path().join("out");
            fs::create_dir(&sessions).unwrap();
            fs::create_dir(&out_dir).unwrap();
            let src = sessions.join("a.jsonl");
            let other = sessions.join("b.jsonl");
            fs::write(&src, "{\"a\":1}\n").unwrap();
            fs::write(&other, "{\"b\":2}\n").unwrap();
            let cfg = tmp.path().join("config.toml");
            fs::write(&cfg, "").unwrap();
            let out = out_dir.join("a.md");
            fs::write(&out, "previous contents that are longer\n").unwrap();
            fs::write(out_dir.join("keep.md"), "keep\n").unwrap();
            let (_l, addr) = listener();

            let (s, o, c2, od, ot) = (
                src.clone(),
                other.clone(),
                cfg.clone(),
                out_dir.clone(),
                out.clone(),
            );
            confined(move || {
                let applied = profiles::export(std::slice::from_ref(&s), Some(&c2), Some(&ot))
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                assert!(applied.skipped.is_empty());
                let mut c = Checks::default();
                c.ok("read source", fs::read(&s));
                c.ok("read config", fs::read(&c2));
                c.eacces("read another session", fs::read(&o));
                c.eacces("list sessions", fs::read_dir(s.parent().unwrap()));
                c.ok("overwrite output (O_TRUNC)", fs::write(&ot, "# a\n"));
                c.eacces("create beside output", create(&od.join("b.md")));
                c.eacces("write beside output", append(&od.join("keep.md"), "x"));
                c.eacces("write the source", append(&s, "x"));
                c.no_network_no_exec(addr);
                c.finish();
            });
            assert_eq!(fs::read_to_string(&out).unwrap(), "# a\n");
            assert_eq!(
                fs::read_to_string(out_dir.join("keep.md")).unwrap(),
                "keep\n"
            );
            assert!(!out_dir.join("b.md").exists());
        },
    );
}

#[test]
fn export_to_stdout_cannot_write_any_file() {
    in_child("export_to_stdout_cannot_write_any_file", || {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("a.jsonl");
        fs::write(&src, "{}\n").unwrap();
        let (s, t) = (src.clone(), tmp.path().to_owned());
        confined(move || {
            profiles::export(std::slice::from_ref(&s), None, None)
                .apply(SandboxMode::Enforce)
                .unwrap();
            let mut c = Checks::default();
            c.ok("read source", fs::read(&s));
            c.eacces("append to source", append(&s, "x"));
            c.eacces("create in its dir", create(&t.join("x.md")));
            c.eacces(
                "create in /tmp",
                create(Path::new("/tmp/kato-boundary-x.md")),
            );
            c.ok("stdout still works", io::stdout().write_all(b""));
            c.finish();
        });
        assert!(!tmp.path().join("x.md").exists());
    });
}

/// A seccomp filter that makes the landlock syscalls fail with EPERM, as
/// systemd's `SystemCallFilter=@system-service` does on systemd 252.
fn block_landlock_syscalls() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let rules = [
        libc::SYS_landlock_create_ruleset,
        libc::SYS_landlock_add_rule,
        libc::SYS_landlock_restrict_self,
    ]
    .into_iter()
    .map(|nr| (nr, vec![]))
    .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::try_from(std::env::consts::ARCH).unwrap(),
    )
    .unwrap();
    let prog = BpfProgram::try_from(filter).unwrap();
    seccompiler::apply_filter(&prog).unwrap();
}

/// What a [`Confiner`] reported: each stage and, when its domain was
/// applied, whether it is fully enforced.
#[derive(Default)]
struct Reported(std::sync::Mutex<Vec<(StageName, Result<bool, String>)>>);

impl StageReport for Reported {
    fn stage(&self, o: StageOutcome<'_>) {
        let r = o
            .result
            .map(|a| a.is_fully_enforced())
            .map_err(|e| e.to_string());
        self.0.lock().unwrap().push((o.stage.clone(), r));
    }
}

#[test]
fn the_spawn_api_refuses_a_stage_enforce_cannot_confine() {
    in_child(
        "the_spawn_api_refuses_a_stage_enforce_cannot_confine",
        || {
            let report = Arc::new(Reported::default());
            let ran = Arc::new(AtomicBool::new(false));
            let (rep, ran2) = (report.clone(), ran.clone());
            let err = confined(move || {
                block_landlock_syscalls();
                // The supervisor creates the thread another thread asks for.
                let (confiner, supervisor) = Confiner::supervised(SandboxMode::Enforce);
                let confiner = confiner.with_report(rep);
                let asker = std::thread::spawn(move || {
                    confiner
                        .spawn(StageName::Signals, profiles::signals(), move || {
                            ran2.store(true, Ordering::SeqCst)
                        })
                        .map(drop)
                });
                supervisor.serve();
                asker.join().unwrap().unwrap_err()
            });
            let msg = err.to_string();
            assert!(
                matches!(&err, SandboxError::Stage { name: StageName::Signals, source }
                if matches!(**source, SandboxError::NotEnforced { .. })),
                "{msg}"
            );
            assert!(msg.contains("signals") && msg.contains("Landlock"), "{msg}");
            assert!(!ran.load(Ordering::SeqCst), "the stage's work must not run");
            let reported = report.0.lock().unwrap();
            assert_eq!(reported.len(), 1, "{:?}", *reported);
            assert_eq!(reported[0].0, StageName::Signals);
            assert!(
                reported[0]
                    .1
                    .as_ref()
                    .is_err_and(|e| e.contains("Landlock")),
                "{:?}",
                reported[0].1
            );
            drop(reported);

            // Best effort: the same stage runs, reported as not fully enforced.
            let report = Arc::new(Reported::default());
            let rep = report.clone();
            let ran = confined(move || {
                block_landlock_syscalls();
                Confiner::new(SandboxMode::BestEffort)
                    .with_report(rep)
                    .spawn(StageName::Signals, profiles::signals(), || true)
                    .unwrap()
                    .join()
                    .unwrap()
            });
            assert!(ran);
            assert_eq!(
                *report.0.lock().unwrap(),
                vec![(StageName::Signals, Ok(false))]
            );
        },
    );
}

#[test]
fn enforce_fails_closed_when_landlock_is_blocked() {
    in_child("enforce_fails_closed_when_landlock_is_blocked", || {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("projects");
        fs::create_dir(&root).unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "o").unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let (r, o, ran2) = (root.clone(), outside.clone(), ran.clone());
        confined(move || {
            block_landlock_syscalls();
            let err = profiles::provider(std::slice::from_ref(&r))
                .apply(SandboxMode::Enforce)
                .unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, SandboxError::NotEnforced { .. }), "{msg}");
            assert!(
                msg.contains("Landlock") && msg.contains("SystemCallFilter"),
                "{msg}"
            );
            assert!(msg.contains("best-effort"), "{msg}");
            // Failed before restricting anything.
            assert_eq!(fs::read(&o).unwrap(), b"o");

            let err = Confiner::new(SandboxMode::Enforce)
                .spawn(
                    StageName::Provider("claude".into()),
                    profiles::provider(std::slice::from_ref(&r)),
                    move || ran2.store(true, Ordering::SeqCst),
                )
                .unwrap_err();
            assert!(err.to_string().contains("provider:claude"), "{err}");

            // Best effort runs degraded and says so; seccomp still goes on.
            let applied = profiles::provider(std::slice::from_ref(&r))
                .apply(SandboxMode::BestEffort)
                .unwrap();
            assert_eq!(applied.landlock.status, Enforcement::NotEnforced);
            assert!(!applied.is_fully_enforced());
            assert!(
                applied.missing.iter().any(|m| m.feature == "Landlock"),
                "{applied:?}"
            );
            assert!(applied.seccomp.installed);
            let e = TcpStream::connect("127.0.0.1:9").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        });
        assert!(!ran.load(Ordering::SeqCst), "the stage's work must not run");
    });
}

#[test]
fn enforce_fails_closed_when_the_abi_is_missing() {
    in_child("enforce_fails_closed_when_the_abi_is_missing", || {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "o").unwrap();
        let root: PathBuf = tmp.path().join("projects");
        fs::create_dir(&root).unwrap();
        let kernel_abi = sandbox::KernelLandlock::probe().abi().unwrap();
        // ABI 9 adds a filesystem right (pathname UNIX sockets) that an
        // ABI 7 kernel cannot enforce.
        let want = 9u8;
        if kernel_abi >= u32::from(want) {
            eprintln!("kernel offers Landlock ABI {kernel_abi}: nothing newer to demand");
            return;
        }
        let (r, o) = (root.clone(), outside.clone());
        confined(move || {
            let domain = profiles::provider(std::slice::from_ref(&r));
            let err = domain.apply_at_abi(SandboxMode::Enforce, want).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("Landlock ABI {want}")), "{msg}");
            assert!(
                msg.contains(&format!("offers Landlock ABI {kernel_abi}")),
                "{msg}"
            );
            assert_eq!(fs::read(&o).unwrap(), b"o", "nothing restricted yet");

            let applied = domain.apply_at_abi(SandboxMode::BestEffort, want).unwrap();
            assert_eq!(applied.landlock.status, Enforcement::PartiallyEnforced);
            assert!(!applied.missing.is_empty());
            let e = fs::read(&o).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "still confined: {e}");
        });
    });
}

#[test]
fn enforce_refuses_a_thread_that_holds_capabilities() {
    in_child("enforce_refuses_a_thread_that_holds_capabilities", || {
        let caps = sandbox::Capabilities::read().unwrap();
        if caps.is_empty() {
            eprintln!("running without capabilities: nothing to refuse");
            return;
        }
        let err = std::thread::spawn(|| profiles::provider(&[]).apply(SandboxMode::Enforce))
            .join()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("harden_process"), "{err}");
    });
}

#[test]
fn doctor_reports_the_enforced_state() {
    in_child("doctor_reports_the_enforced_state", || {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        for d in [
            ".claude/projects",
            ".codex/sessions",
            ".gemini/tmp",
            ".kato/state",
            "kato-exports",
            ".copilot/session-state",
            ".copilot/history-session-state",
            ".qwen/projects",
            ".cursor/projects",
            ".factory/sessions",
            ".local/share/amp/threads",
            ".kimi/sessions",
            ".local/share/opencode",
            ".local/share/goose/sessions",
        ] {
            fs::create_dir_all(home.join(d)).unwrap();
        }
        let env = Env {
            home: Some(home.clone()),
            ..Env::default()
        };
        let config = Config::from_toml("", None, &env).unwrap();
        let report = confined(move || doctor::report(&config, SandboxMode::Enforce));
        assert_eq!(
            report.verdict.status,
            doctor::VerdictStatus::Enforced,
            "{:?}",
            report.verdict.problems
        );
        let applied = report.probe.applied.as_ref().unwrap();
        assert!(applied.is_fully_enforced());
        // codex's archived_sessions does not exist: the supervisor reads
        // its nearest existing ancestor in its place, and says so.
        assert_eq!(
            report.supervisor.ancestor_grants,
            [kato::sandbox::profiles::AncestorGrant {
                root: home.join(".codex/archived_sessions"),
                granted: home.join(".codex"),
            }]
        );
        assert!(report.to_string().contains(&format!(
            "{}: the supervisor reads {} until it appears",
            home.join(".codex/archived_sessions").display(),
            home.join(".codex").display()
        )));
        assert!(report.process.no_new_privs);
        assert!(report.process.capabilities.unwrap().is_empty());
        assert!(!report.process.dumpable);
        assert_eq!(report.process.umask, "0077");
        let thread = report.probe.thread.as_ref().unwrap();
        assert_eq!(thread.seccomp, "filter");

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["policy_hash"].as_str().unwrap().len(), 64);
        assert_eq!(json["landlock"]["abi_pinned"], 6);
        assert_eq!(
            json["probe"]["applied"]["landlock"]["status"],
            "fully-enforced"
        );
        assert_eq!(json["verdict"]["status"], "enforced");
        let text = report.to_string();
        for needle in [
            "sandbox mode: enforce — enforced",
            "watch+parse [claude]",
            ".claude/projects",
            "orchestrate [one]",
            "write [one per destination]",
            "inotify",
            "policy hash: ",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
        }
    });
}

#[test]
fn scrubbed_environment_keeps_only_what_is_named() {
    in_child("scrubbed_environment_keeps_only_what_is_named", || {
        std::env::set_var("KATO_TEST_API_KEY", "sk-test-secret");
        std::env::set_var("HOME", "/home/u");
        let removed = sandbox::scrub_environment(&["HOME", "PATH"]);
        assert!(removed.iter().any(|k| k == "KATO_TEST_API_KEY"));
        assert!(std::env::var_os("KATO_TEST_API_KEY").is_none());
        assert!(std::env::var_os(CHILD_ENV).is_none());
        assert_eq!(std::env::var("HOME").unwrap(), "/home/u");
        let names: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
        assert!(
            names.iter().all(|k| k == "HOME" || k == "PATH"),
            "{names:?}"
        );
    });
}

/// Best-effort without Landlock: while one thread keeps exchanging a
/// directory under the export root with a symbolic link to the outside,
/// writers are started (exactly as the writer-spawner starts them) for
/// fresh files in that directory. The path policy alone must keep every
/// file inside the root: nothing may ever appear outside, not even empty.
#[test]
fn parent_swapped_for_a_symlink_while_writers_create_never_writes_outside_without_landlock() {
    in_child(
        "parent_swapped_for_a_symlink_while_writers_create_never_writes_outside_without_landlock",
        || {
            use kato::policy::Policy;
            use rustix::fs::{renameat_with, RenameFlags, CWD};
            // Creates the check allowed (about as many more are refused
            // by the check itself), and the bound on the whole loop.
            const ROUNDS: usize = 400;
            const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
            let tmp = tempfile::tempdir().unwrap();
            let base = fs::canonicalize(tmp.path()).unwrap();
            let (root, outside) = (base.join("root"), base.join("outside"));
            fs::create_dir_all(root.join("race")).unwrap();
            fs::create_dir(&outside).unwrap();
            std::os::unix::fs::symlink(&outside, root.join("race.link")).unwrap();

            let stop = Arc::new(AtomicBool::new(false));
            let (r2, s2) = (root.clone(), stop.clone());
            // Unconfined: created before anything is hardened.
            let swapper = std::thread::spawn(move || {
                let (a, b) = (r2.join("race"), r2.join("race.link"));
                let (mut swaps, mut seed) = (0u64, 0x9e37_79b9_7f4a_7c15u64);
                while !s2.load(Ordering::Relaxed) {
                    renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).unwrap();
                    swaps += 1;
                    // Hold each state for 0–255 µs: long enough for a
                    // check to pass, short enough to swap under an open.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let hold = std::time::Duration::from_micros(seed % 256);
                    let t = std::time::Instant::now();
                    while t.elapsed() < hold {
                        std::hint::spin_loop();
                    }
                }
                swaps
            });
            let r3 = root.clone();
            let (allowed, opened) = std::thread::spawn(move || {
                harden_process(SandboxMode::BestEffort).unwrap();
                block_landlock_syscalls();
                let policy = Policy::new(std::slice::from_ref(&r3), Vec::new());
                let confiner = Confiner::new(SandboxMode::BestEffort);
                confiner
                    .spawn(
                        StageName::WriterSpawner,
                        profiles::writer_spawner(std::slice::from_ref(&r3)),
                        move || {
                            let writers = Confiner::new(SandboxMode::BestEffort);
                            let (mut allowed, mut opened) = (0, 0);
                            let deadline = std::time::Instant::now() + DEADLINE;
                            for i in 0.. {
                                if allowed >= ROUNDS || std::time::Instant::now() > deadline {
                                    break;
                                }
                                let raw = r3.join(format!("race/w-{i}.md"));
                                let Ok(target) = policy.check(raw.as_os_str()) else {
                                    continue;
                                };
                                allowed += 1;
                                if let Ok(w) = kato::writer::spawn(&writers, policy.clone(), target)
                                {
                                    opened += 1;
                                    w.close();
                                }
                            }
                            (allowed, opened)
                        },
                    )
                    .unwrap()
                    .join()
                    .unwrap()
            })
            .join()
            .unwrap();
            stop.store(true, Ordering::Relaxed);
            let swaps = swapper.join().unwrap();
            let stray: Vec<_> = fs::read_dir(&outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            let msg = format!(
                "{ROUNDS} rounds, {swaps} swaps, {allowed} allowed by the check, {opened} opened"
            );
            eprintln!("{msg}");
            assert!(
                stray.is_empty(),
                "{msg}; written outside the root: {stray:?}"
            );
            assert!(
                allowed == ROUNDS && swaps > 0,
                "{msg}: the race was not exercised"
            );
            // Some swaps landed between the check and the open (about a
            // third here): the open itself refused them.
            assert!(opened < allowed, "{msg}: no swap under an open");
        },
    );
}

/// Gemini CLI keeps its credentials, settings and project registry in
/// `~/.gemini`, beside the chats in `~/.gemini/tmp`: the gemini stage's
/// domain, from the default roots (and from `GEMINI_CLI_HOME`), reads the
/// chats and the project markers and cannot open anything beside them.
#[test]
fn gemini_stage_cannot_open_the_credentials_beside_its_root() {
    in_child(
        "gemini_stage_cannot_open_the_credentials_beside_its_root",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let gemini = home.join(".gemini");
            let chats = gemini.join("tmp/proj/chats");
            fs::create_dir_all(&chats).unwrap();
            let session = chats.join("session-2026-04-25T08-23-e435870b.jsonl");
            fs::write(&session, "{}\n").unwrap();
            fs::write(gemini.join("tmp/proj/.project_root"), "/home/u/proj").unwrap();
            let secrets = [
                "oauth_creds.json",
                "google_accounts.json",
                "settings.json",
                "projects.json",
                "installation_id",
            ];
            for f in secrets {
                fs::write(gemini.join(f), "secret").unwrap();
            }
            let by_home = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let by_var = Env {
                home: Some(tmp.path().join("elsewhere")),
                agent_vars: [("GEMINI_CLI_HOME".to_owned(), home.clone())].into(),
                ..Env::default()
            };
            for env in [by_home, by_var] {
                let config = Config::from_toml("", None, &env).unwrap();
                let roots = config
                    .provider(kato::event::ProviderId::Gemini)
                    .unwrap()
                    .roots
                    .clone();
                assert_eq!(roots, [gemini.join("tmp")]);
                let (s, g) = (session.clone(), gemini.clone());
                confined(move || {
                    profiles::provider(&roots)
                        .apply(SandboxMode::Enforce)
                        .unwrap();
                    let mut c = Checks::default();
                    c.ok("read the chat", fs::read(&s));
                    c.ok(
                        "read the project marker",
                        fs::read(g.join("tmp/proj/.project_root")),
                    );
                    for f in secrets {
                        c.eacces(f, fs::read(g.join(f)));
                    }
                    c.eacces("list ~/.gemini", fs::read_dir(&g));
                    c.finish();
                });
            }
        },
    );
}

/// GitHub Copilot CLI keeps its tokens and settings in `~/.copilot`
/// (`config.json`, `settings.json`, MCP and permission configs, a
/// session database), beside the event logs in `~/.copilot/session-state`
/// and `~/.copilot/history-session-state`: the copilot stage's domain,
/// from the default roots (and from `COPILOT_HOME`), reads the logs and
/// their `workspace.yaml` and cannot open anything beside them.
#[test]
fn copilot_stage_cannot_open_the_credentials_beside_its_roots() {
    in_child(
        "copilot_stage_cannot_open_the_credentials_beside_its_roots",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let copilot = home.join(".copilot");
            let state = copilot.join("session-state");
            let legacy = copilot.join("history-session-state");
            let session = state.join("d5b1506c-19d6-4e6a-818c-89a50c48bb34");
            fs::create_dir_all(&session).unwrap();
            fs::create_dir_all(&legacy).unwrap();
            fs::write(session.join("events.jsonl"), "{}\n").unwrap();
            fs::write(session.join("workspace.yaml"), "cwd: /home/u/proj\n").unwrap();
            let doc = legacy.join("session_d5b1506c-19d6-4e6a-818c-89a50c48bb34_1.json");
            fs::write(&doc, "{}\n").unwrap();
            let secrets = [
                "config.json",
                "settings.json",
                "mcp-config.json",
                "permissions-config.json",
                "session-store.db",
            ];
            for f in secrets {
                fs::write(copilot.join(f), "secret").unwrap();
            }
            let by_home = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let by_var = Env {
                home: Some(tmp.path().join("elsewhere")),
                agent_vars: [("COPILOT_HOME".to_owned(), copilot.clone())].into(),
                ..Env::default()
            };
            for env in [by_home, by_var] {
                let config = Config::from_toml("", None, &env).unwrap();
                let roots = config
                    .provider(kato::event::ProviderId::Copilot)
                    .unwrap()
                    .roots
                    .clone();
                assert_eq!(roots, [state.clone(), legacy.clone()]);
                let (s, d, c) = (session.clone(), doc.clone(), copilot.clone());
                confined(move || {
                    profiles::provider(&roots)
                        .apply(SandboxMode::Enforce)
                        .unwrap();
                    let mut checks = Checks::default();
                    checks.ok("read the event log", fs::read(s.join("events.jsonl")));
                    checks.ok("read workspace.yaml", fs::read(s.join("workspace.yaml")));
                    checks.ok("read a legacy document", fs::read(&d));
                    for f in secrets {
                        checks.eacces(f, fs::read(c.join(f)));
                    }
                    checks.eacces("list ~/.copilot", fs::read_dir(&c));
                    checks.finish();
                });
            }
        },
    );
}

/// An editor's `globalStorage` holds every extension's state and secrets,
/// and Cline's own directory its MCP settings, beside `tasks/`: the cline
/// stage's domain, from the default roots, reads a task's history and
/// cannot open anything beside the tasks folder.
#[test]
fn cline_stage_cannot_open_the_settings_beside_its_root() {
    in_child(
        "cline_stage_cannot_open_the_settings_beside_its_root",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let storage = home.join(".config/Code/User/globalStorage");
            let ext = storage.join("saoudrizwan.claude-dev");
            let task = ext.join("tasks/1761000000000");
            fs::create_dir_all(&task).unwrap();
            fs::create_dir_all(ext.join("settings")).unwrap();
            let history = task.join("api_conversation_history.json");
            fs::write(&history, "[]").unwrap();
            let secrets = [
                ext.join("settings/cline_mcp_settings.json"),
                storage.join("state.vscdb"),
                storage.join("other.extension/secrets.json"),
            ];
            fs::create_dir_all(storage.join("other.extension")).unwrap();
            for f in &secrets {
                fs::write(f, "secret").unwrap();
            }
            let env = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let config = Config::from_toml("", None, &env).unwrap();
            let roots = config
                .provider(kato::event::ProviderId::Cline)
                .unwrap()
                .roots
                .clone();
            assert_eq!(roots, [ext.join("tasks")]);
            confined(move || {
                profiles::provider(&roots)
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                let mut c = Checks::default();
                c.ok("read the task history", fs::read(&history));
                for f in &secrets {
                    c.eacces(&f.display().to_string(), fs::read(f));
                }
                c.eacces("list the extension folder", fs::read_dir(&ext));
                c.eacces("list globalStorage", fs::read_dir(&storage));
                c.finish();
            });
        },
    );
}

/// Qwen Code keeps its credentials and settings in `~/.qwen`, beside the
/// chats in `~/.qwen/projects`: the qwen stage's domain, from the default
/// roots (and from `QWEN_RUNTIME_DIR`), reads the chats and cannot open
/// anything beside them.
#[test]
fn qwen_stage_cannot_open_the_credentials_beside_its_root() {
    in_child(
        "qwen_stage_cannot_open_the_credentials_beside_its_root",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let qwen = home.join(".qwen");
            let chats = qwen.join("projects/-home-u-proj/chats");
            fs::create_dir_all(&chats).unwrap();
            let session = chats.join("9a578cd0-ad2c-423c-8f19-95412a2d81af.jsonl");
            fs::write(&session, "{}\n").unwrap();
            let secrets = [
                "oauth_creds.json",
                "mcp-oauth-tokens.json",
                "settings.json",
                "installation_id",
            ];
            for f in secrets {
                fs::write(qwen.join(f), "secret").unwrap();
            }
            let by_home = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let by_var = Env {
                home: Some(tmp.path().join("elsewhere")),
                agent_vars: [("QWEN_RUNTIME_DIR".to_owned(), qwen.clone())].into(),
                ..Env::default()
            };
            for env in [by_home, by_var] {
                let config = Config::from_toml("", None, &env).unwrap();
                let roots = config
                    .provider(kato::event::ProviderId::Qwen)
                    .unwrap()
                    .roots
                    .clone();
                assert_eq!(roots, [qwen.join("projects")]);
                let (s, q) = (session.clone(), qwen.clone());
                confined(move || {
                    profiles::provider(&roots)
                        .apply(SandboxMode::Enforce)
                        .unwrap();
                    let mut c = Checks::default();
                    c.ok("read the chat", fs::read(&s));
                    for f in secrets {
                        c.eacces(f, fs::read(q.join(f)));
                    }
                    c.eacces("list ~/.qwen", fs::read_dir(&q));
                    c.finish();
                });
            }
        },
    );
}

/// Cursor keeps its MCP servers (`mcp.json`, which may hold tokens), its
/// CLI settings and its chat stores in `~/.cursor`, beside the projects in
/// `~/.cursor/projects`: the cursor stage's domain, from the default
/// roots, reads the transcripts and cannot open anything beside them.
#[test]
fn cursor_stage_cannot_open_the_credentials_beside_its_root() {
    in_child(
        "cursor_stage_cannot_open_the_credentials_beside_its_root",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let cursor = home.join(".cursor");
            let dir = cursor.join("projects/home-u-proj/agent-transcripts/abc");
            fs::create_dir_all(&dir).unwrap();
            fs::create_dir_all(cursor.join("chats/0a1b")).unwrap();
            let session = dir.join("abc.jsonl");
            fs::write(&session, "{}\n").unwrap();
            let secrets = [
                "mcp.json",
                "cli-config.json",
                "argv.json",
                "chats/0a1b/store.db",
            ];
            for f in secrets {
                fs::write(cursor.join(f), "secret").unwrap();
            }
            let env = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let config = Config::from_toml("", None, &env).unwrap();
            let roots = config
                .provider(kato::event::ProviderId::Cursor)
                .unwrap()
                .roots
                .clone();
            assert_eq!(roots, [cursor.join("projects")]);
            let (s, c) = (session.clone(), cursor.clone());
            confined(move || {
                profiles::provider(&roots)
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                let mut checks = Checks::default();
                checks.ok("read the transcript", fs::read(&s));
                for f in secrets {
                    checks.eacces(f, fs::read(c.join(f)));
                }
                checks.eacces("list ~/.cursor", fs::read_dir(&c));
                checks.finish();
            });
        },
    );
}

/// Factory Droid keeps its settings, MCP servers and credentials in
/// `~/.factory`, beside the sessions in `~/.factory/sessions`: the droid
/// stage's domain, from the default roots, reads the sessions and cannot
/// open anything beside them.
#[test]
fn droid_stage_cannot_open_the_credentials_beside_its_root() {
    in_child(
        "droid_stage_cannot_open_the_credentials_beside_its_root",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let factory = home.join(".factory");
            let dir = factory.join("sessions/-home-u-proj");
            fs::create_dir_all(&dir).unwrap();
            let session = dir.join("4c2e9a10.jsonl");
            fs::write(&session, "{}\n").unwrap();
            let secrets = ["auth.json", "settings.json", "mcp.json", "config.json"];
            for f in secrets {
                fs::write(factory.join(f), "secret").unwrap();
            }
            let env = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let config = Config::from_toml("", None, &env).unwrap();
            let roots = config
                .provider(kato::event::ProviderId::Droid)
                .unwrap()
                .roots
                .clone();
            assert_eq!(roots, [factory.join("sessions")]);
            let (s, f) = (session.clone(), factory.clone());
            confined(move || {
                profiles::provider(&roots)
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                let mut c = Checks::default();
                c.ok("read the session", fs::read(&s));
                for name in secrets {
                    c.eacces(name, fs::read(f.join(name)));
                }
                c.eacces("list ~/.factory", fs::read_dir(&f));
                c.finish();
            });
        },
    );
}

/// Amp keeps its secrets (`secrets.json`) and settings in
/// `~/.local/share/amp`, beside the threads in `threads/`: the amp stage's
/// domain, from the default root (and from `XDG_DATA_HOME`), reads the
/// threads and cannot open anything beside them.
#[test]
fn amp_stage_cannot_open_the_secrets_beside_its_root() {
    in_child("amp_stage_cannot_open_the_secrets_beside_its_root", || {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let amp = home.join(".local/share/amp");
        let threads = amp.join("threads");
        fs::create_dir_all(&threads).unwrap();
        let thread = threads.join("T-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d.json");
        fs::write(&thread, "{}\n").unwrap();
        let secrets = ["secrets.json", "settings.json", "history.jsonl"];
        for f in secrets {
            fs::write(amp.join(f), "secret").unwrap();
        }
        let by_home = Env {
            home: Some(home.clone()),
            ..Env::default()
        };
        let by_var = Env {
            home: Some(tmp.path().join("elsewhere")),
            agent_vars: [("XDG_DATA_HOME".to_owned(), home.join(".local/share"))].into(),
            ..Env::default()
        };
        for env in [by_home, by_var] {
            let config = Config::from_toml("", None, &env).unwrap();
            let roots = config
                .provider(kato::event::ProviderId::Amp)
                .unwrap()
                .roots
                .clone();
            assert_eq!(roots, std::slice::from_ref(&threads));
            let (t, a) = (thread.clone(), amp.clone());
            confined(move || {
                profiles::provider(&roots)
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                let mut c = Checks::default();
                c.ok("read the thread", fs::read(&t));
                for f in secrets {
                    c.eacces(f, fs::read(a.join(f)));
                }
                c.eacces("list ~/.local/share/amp", fs::read_dir(&a));
                c.finish();
            });
        }
    });
}

/// Kimi CLI keeps its API keys (`config.toml`), OAuth credentials and
/// project registry in `~/.kimi`, beside the sessions in `sessions/`: the
/// kimi stage's domain, from the default root (and from `KIMI_SHARE_DIR`),
/// reads the sessions and cannot open anything beside them.
#[test]
fn kimi_stage_cannot_open_the_credentials_beside_its_root() {
    in_child(
        "kimi_stage_cannot_open_the_credentials_beside_its_root",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let kimi = home.join(".kimi");
            let session = kimi.join("sessions/0123456789abcdef0123456789abcdef/sid");
            fs::create_dir_all(&session).unwrap();
            let wire = session.join("wire.jsonl");
            fs::write(&wire, "{}\n").unwrap();
            fs::create_dir_all(kimi.join("credentials")).unwrap();
            let secrets = ["config.toml", "kimi.json", "credentials/kimi-code.json"];
            for f in secrets {
                fs::write(kimi.join(f), "secret").unwrap();
            }
            let by_home = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let by_var = Env {
                home: Some(tmp.path().join("elsewhere")),
                agent_vars: [("KIMI_SHARE_DIR".to_owned(), kimi.clone())].into(),
                ..Env::default()
            };
            for env in [by_home, by_var] {
                let config = Config::from_toml("", None, &env).unwrap();
                let roots = config
                    .provider(kato::event::ProviderId::Kimi)
                    .unwrap()
                    .roots
                    .clone();
                assert_eq!(roots, [kimi.join("sessions")]);
                let (w, k) = (wire.clone(), kimi.clone());
                confined(move || {
                    profiles::provider(&roots)
                        .apply(SandboxMode::Enforce)
                        .unwrap();
                    let mut c = Checks::default();
                    c.ok("read the wire", fs::read(&w));
                    for f in secrets {
                        c.eacces(f, fs::read(k.join(f)));
                    }
                    c.eacces("list ~/.kimi", fs::read_dir(&k));
                    c.finish();
                });
            }
        },
    );
}

/// Aider's roots are the project folders the user names (`--root`, the
/// config): the aider stage reads the chat history under them and cannot
/// open what lies beside them — another project's `.env` (aider's API
/// keys), `~/.aider.conf.yml`, a `.env` in the folder above.
#[test]
fn aider_stage_cannot_open_the_keys_beside_its_root() {
    in_child("aider_stage_cannot_open_the_keys_beside_its_root", || {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let project = home.join("src/webapp");
        let other = home.join("src/other");
        fs::create_dir_all(&project).unwrap();
        fs::create_dir_all(&other).unwrap();
        let project = fs::canonicalize(&project).unwrap();
        let chat = project.join(".aider.chat.history.md");
        fs::write(&chat, "\n# aider chat started at 2026-03-02 09:15:07\n\n").unwrap();
        let outside = [
            other.join(".env"),
            other.join(".aider.chat.history.md"),
            home.join(".aider.conf.yml"),
            home.join("src/.env"),
        ];
        for f in &outside {
            fs::write(f, "OPENAI_API_KEY=secret").unwrap();
        }
        let env = Env {
            home: Some(home.clone()),
            ..Env::default()
        };
        let mut config = Config::from_toml("", None, &env).unwrap();
        let aider = kato::event::ProviderId::Aider;
        assert_eq!(config.provider(aider).unwrap().roots, Vec::<PathBuf>::new());
        config
            .add_cli_roots(&[project.display().to_string()], &env, tmp.path())
            .unwrap();
        let roots = config.provider(aider).unwrap().roots.clone();
        assert_eq!(roots, std::slice::from_ref(&project));
        let src = home.join("src");
        confined(move || {
            profiles::provider(&roots)
                .apply(SandboxMode::Enforce)
                .unwrap();
            let mut c = Checks::default();
            c.ok("read the chat history", fs::read(&chat));
            for f in &outside {
                c.eacces(&f.display().to_string(), fs::read(f));
            }
            c.eacces("list the projects folder", fs::read_dir(&src));
            c.finish();
        });
    });
}

/// OpenCode's database lies beside its `auth.json` (provider keys): an
/// export's parse stage, confined to the database and its `-wal`/`-shm`
/// (`database::readable_files`), reads the session (a live WAL writer
/// connected) and cannot open the keys nor list the folder.
#[test]
fn opencode_export_stage_cannot_open_the_credentials_beside_the_database() {
    in_child(
        "opencode_export_stage_cannot_open_the_credentials_beside_the_database",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("home/.local/share/opencode");
            fs::create_dir_all(&dir).unwrap();
            let db = dir.join("opencode.db");
            let w = rusqlite::Connection::open(&db).unwrap();
            w.execute_batch(
                "PRAGMA journal_mode=WAL; \
                 CREATE TABLE session (id text, parent_id text, title text, directory text, \
                   version text, time_created integer, time_updated integer); \
                 CREATE TABLE message (id text, session_id text, time_created integer, \
                   time_updated integer, data text); \
                 CREATE TABLE part (id text, message_id text, session_id text, \
                   time_created integer, time_updated integer, data text); \
                 INSERT INTO session VALUES ('ses_1', NULL, 't', '/p', '1', 1, 1);",
            )
            .unwrap();
            fs::write(dir.join("auth.json"), "secret").unwrap();
            let session = kato::database::session_path(&db, "ses_1");
            let files = kato::database::readable_files(&session);
            assert_eq!(files.len(), 3, "{files:?}");
            let (d, s) = (dir.clone(), session.clone());
            confined(move || {
                profiles::export(&files, None, None)
                    .apply(SandboxMode::Enforce)
                    .unwrap();
                let mut c = Checks::default();
                let provider = kato::provider::by_name("opencode").unwrap();
                let mut n = 0;
                let inc = kato::reader::read_path(
                    &s,
                    provider,
                    kato::reader::Limits::default(),
                    &mut |_| n += 1,
                );
                let diagnostics = c.ok("read the session", inc.map(|i| i.diagnostics));
                assert_eq!(diagnostics, Some(Vec::new()));
                assert_eq!(n, 2, "the session's meta and title");
                c.eacces("auth.json", fs::read(d.join("auth.json")));
                c.eacces("list the folder", fs::read_dir(&d));
                c.finish();
            });
            drop(w);
        },
    );
}

/// OpenCode's root holds `auth.json` (provider keys) beside the database:
/// the daemon's OpenCode stage, `kato sessions` (and `search`) and the
/// domain `kato export` resolves a session in grant the databases (with
/// their `-wal`/`-shm`), the JSON store's `storage/`, and a listing of the
/// root, so each reads the sessions and none can open the keys.
#[test]
fn opencode_stages_cannot_open_the_credentials_in_the_root() {
    in_child(
        "opencode_stages_cannot_open_the_credentials_in_the_root",
        || {
            let tmp = tempfile::tempdir().unwrap();
            let home = tmp.path().join("home");
            let dir = home.join(".local/share/opencode");
            fs::create_dir_all(dir.join("storage/session/global")).unwrap();
            fs::create_dir_all(dir.join("log")).unwrap();
            let db = dir.join("opencode.db");
            let w = rusqlite::Connection::open(&db).unwrap();
            w.execute_batch(
                "PRAGMA journal_mode=WAL; \
             CREATE TABLE session (id text, parent_id text, title text, directory text, \
               version text, time_created integer, time_updated integer); \
             CREATE TABLE message (id text, session_id text, time_created integer, \
               time_updated integer, data text); \
             CREATE TABLE part (id text, message_id text, session_id text, \
               time_created integer, time_updated integer, data text); \
             INSERT INTO session VALUES ('ses_1', NULL, 't', '/p', '1', 1, 1);",
            )
            .unwrap();
            fs::write(dir.join("auth.json"), "secret").unwrap();
            fs::write(dir.join("log/x.log"), "log").unwrap();
            let env = Env {
                home: Some(home.clone()),
                ..Env::default()
            };
            let cfg = Config::from_toml("", None, &env).unwrap();
            let opencode = kato::provider::by_name("opencode").unwrap();
            let stage = profiles::provider_reach(opencode, std::slice::from_ref(&dir));
            assert_eq!(stage.list, std::slice::from_ref(&dir));
            let mut want = vec![
                db.clone(),
                PathBuf::from(format!("{}-shm", db.display())),
                PathBuf::from(format!("{}-wal", db.display())),
                dir.join("storage"),
            ];
            want.sort();
            assert_eq!(stage.read, want, "per file, and storage/");
            let query = format!("{}#ses_1", db.display());
            let domains = [
                ("the daemon's OpenCode stage", stage),
                ("kato sessions", kato::cli::read_only_domain(&cfg)),
                (
                    "kato export (resolve)",
                    kato::export::resolve_domain(&cfg, &query, None),
                ),
            ];
            for (what, domain) in domains {
                let (d, db) = (dir.clone(), db.clone());
                let what = what.to_owned();
                confined(move || {
                    domain.apply(SandboxMode::Enforce).unwrap();
                    let mut c = Checks::default();
                    let provider = kato::provider::by_name("opencode").unwrap();
                    let ids = c.ok(
                        &format!("{what}: list the sessions"),
                        kato::database::sessions(provider, &db),
                    );
                    assert_eq!(ids, Some(vec!["ses_1".to_owned()]), "{what}");
                    c.ok(&format!("{what}: list the root"), fs::read_dir(&d));
                    c.ok(
                        &format!("{what}: list the store"),
                        fs::read_dir(d.join("storage/session")),
                    );
                    c.eacces(&format!("{what}: auth.json"), fs::read(d.join("auth.json")));
                    c.eacces(&format!("{what}: a log"), fs::read(d.join("log/x.log")));
                    c.finish();
                });
            }
            drop(w);
        },
    );
}
