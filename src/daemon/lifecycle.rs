//! Start, stop and the single-instance lock.
//!
//! One daemon per state directory: `<state>/kato.lock` is locked with
//! `flock` (through `File::try_lock`) for the life of the process and
//! holds its pid. The kernel drops the lock when the process dies, so a
//! `kill -9` never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{exit, Error, Result};

use super::status;

/// Name of the lock file in the state directory.
pub const LOCK_FILE: &str = "kato.lock";

/// The held lock; released when dropped or when the process ends.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    pub path: PathBuf,
}

fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join(LOCK_FILE)
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

fn already_running(state_dir: &Path, pid: Option<u32>) -> Error {
    let who = pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
    Error::Daemon(format!(
        "kato is already running ({who}) for the state directory {}; `kato stop` stops it, `kato status` shows it",
        state_dir.display()
    ))
}

impl Lock {
    /// Take the lock or fail naming the running daemon's pid.
    pub fn acquire(state_dir: &Path) -> Result<Lock> {
        let path = lock_path(state_dir);
        let mut file =
            open_lock(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(already_running(state_dir, read_pid(&mut file)));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()), e));
            }
        }
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{pid}"))
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(Lock { _file: file, path })
    }
}

/// Who holds the lock: `None` when nobody, `Some(pid)` when a daemon does.
pub fn holder(state_dir: &Path) -> Result<Option<Option<u32>>> {
    let path = lock_path(state_dir);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => Ok(Some(read_pid(&mut file))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("checking {}", path.display()), e))
        }
    }
}

/// Arguments `kato start` passes on to the `kato run` it spawns.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    pub config: Option<PathBuf>,
    pub sandbox: Option<&'static str>,
    pub log_format: Option<&'static str>,
}

/// `kato start`: spawn `kato run` detached and wait until it reports ready.
pub fn start(cfg: &Config, fwd: &Forwarded, timeout: Duration) -> Result<i32> {
    if let Some(pid) = holder(&cfg.state_dir)? {
        return Err(already_running(&cfg.state_dir, pid));
    }
    for dir in [&cfg.state_dir, &cfg.runtime_dir, &cfg.logs_dir] {
        super::state::ensure_private_dir(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("finding the kato executable", e))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg("--detached");
    if let Some(c) = &fwd.config {
        cmd.arg("--config").arg(c);
    }
    if let Some(s) = fwd.sandbox {
        cmd.arg("--sandbox").arg(s);
    }
    if let Some(f) = fwd.log_format {
        cmd.arg("--log-format").arg(f);
    }
    // Already clean (the allocator setting included): the daemon need
    // not re-execute itself to drop anything.
    super::confine::daemon_environment(&mut cmd);
    // What the daemon reports before its log is set up (a sandbox it
    // cannot apply in enforce mode, a lock it cannot take) goes to stderr:
    // into kato.log too, where the message below points.
    let log = cfg.logs_dir.join(super::log::LOG_FILE);
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .map_or_else(|_| Stdio::null(), Stdio::from);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .current_dir("/")
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("starting the kato daemon", e))?;
    let pid = child.id();
    let t0 = Instant::now();
    loop {
        if let Ok(Some(code)) = child.try_wait() {
            return Err(Error::Daemon(format!(
                "the daemon exited during start-up ({code}); last lines of {}:\n{}",
                log.display(),
                tail(&log, 20)
            )));
        }
        if let Some((p, ready)) = status::read_ready(&cfg.runtime_dir) {
            if p == pid && ready {
                crate::terminal::println(&format!(
                    "kato started (pid {pid}, ready in {:.1} s); `kato status` shows what it sees",
                    t0.elapsed().as_secs_f64()
                ))
                .map_err(|e| Error::io("writing to stdout", e))?;
                return Ok(exit::OK);
            }
        }
        if t0.elapsed() >= timeout {
            return Err(Error::Daemon(format!(
                "kato (pid {pid}) did not report ready within {} s; it is still starting — see `kato status` and {}",
                timeout.as_secs(),
                log.display()
            )));
        }
        std::thread::sleep(START_POLL);
    }
}

/// How often `kato start` looks whether the daemon is ready: a reader of
/// a small file, often, so that start-up is not rounded up by much.
const START_POLL: Duration = Duration::from_millis(5);

/// The last `n` lines of a file (empty when unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    let mut out = lines[from..].join("\n");
    if out.is_empty() {
        out = "(no log written)".into();
    }
    out
}

/// `kato stop`: SIGTERM the daemon and wait (bounded) until it released the lock.
pub fn stop(cfg: &Config, timeout: Duration) -> Result<i32> {
    let Some(pid) = holder(&cfg.state_dir)? else {
        crate::terminal::println(&format!(
            "kato is not running (state directory {})",
            cfg.state_dir.display()
        ))
        .map_err(|e| Error::io("writing to stdout", e))?;
        return Ok(exit::OK);
    };
    let pid = pid
        .or_else(|| {
            status::read(&cfg.runtime_dir)
                .ok()
                .flatten()
                .map(|(s, _)| s.pid)
        })
        .ok_or_else(|| {
            Error::Daemon(format!(
                "kato holds {} but its pid is unknown; stop it with your service manager",
                lock_path(&cfg.state_dir).display()
            ))
        })?;
    let p = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| Error::Daemon(format!("invalid pid {pid} in the lock file")))?;
    rustix::process::kill_process(p, rustix::process::Signal::TERM)
        .map_err(|e| Error::Daemon(format!("cannot signal kato (pid {pid}): {e}")))?;
    let t0 = Instant::now();
    while holder(&cfg.state_dir)?.is_some() {
        if t0.elapsed() >= timeout {
            return Err(Error::Daemon(format!(
                "kato (pid {pid}) did not stop within {} s; `kill -9 {pid}` ends it (its state stays consistent)",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    crate::terminal::println(&format!(
        "kato stopped (pid {pid}, {:.1} s)",
        t0.elapsed().as_secs_f64()
    ))
    .map_err(|e| Error::io("writing to stdout", e))?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(holder(dir.path()).unwrap().is_none());
        let lock = Lock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()).unwrap(), Some(Some(std::process::id())));
        let e = Lock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(lock);
        assert!(holder(dir.path()).unwrap().is_none());
        let _again = Lock::acquire(dir.path()).unwrap();
    }
}
