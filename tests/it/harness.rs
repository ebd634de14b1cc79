//! Helpers shared by the integration tests: the daemon under test in a
//! temporary directory ([`Kato`]), session-line builders, and the real
//! corpus lookup ([`corpus`]).

pub mod corpus;
pub mod tmpfs;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use corpus::real_corpus;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kato");
/// How long any awaited observation may take.
pub const DEADLINE: Duration = Duration::from_secs(40);
/// The Claude session most tests write to.
pub const S: &str = "0890bead-0ab3-4ee9-98f8-585fd289cc1f";
/// The Codex session of [`Kato::codex_file`].
pub const CODEX_ID: &str = "019ac88c-3f80-7990-a29a-d20399dcab74";

/// How [`Kato::with`] lays out the temporary tree and the config.
pub struct Setup {
    /// Create the Codex root (`codex/`) now; when false it appears later or never.
    pub codex_root: bool,
    /// An export root (`out/`, default dir `out/default`) and `outside/`.
    pub exports: bool,
    /// `[sandbox] mode`.
    pub sandbox: String,
}

/// A kato home, runtime, state and provider roots in a temporary directory,
/// and the daemons started there (killed on drop).
///
/// Layout under [`Kato::base`]: `config.toml`, `claude/-home-u-proj/`,
/// `codex/`, `home/`, `run/` (XDG_RUNTIME_DIR), `xdg-state/`, `state/`, and
/// with exports `out/` and `outside/`. Foreground daemons log to `run-N.log`.
pub struct Kato {
    _dir: tempfile::TempDir,
    base: PathBuf,
    pub claude: PathBuf,
    pub codex: PathBuf,
    /// Daemons started by the test; killed on drop.
    pub children: Vec<Child>,
    /// Daemons started so far, for the log names.
    runs: usize,
}

impl Kato {
    /// The daemon tests' setup: best-effort sandbox, no export root; the
    /// Codex root does not exist yet unless `codex_root` is set.
    pub fn new(codex_root: bool) -> Kato {
        Kato::with(Setup {
            codex_root,
            exports: false,
            sandbox: "best-effort".into(),
        })
    }

    /// The recording tests' setup: an export root, the sandbox mode from
    /// `KATO_TEST_SANDBOX` (default enforce), a dated Codex directory.
    pub fn recording() -> Kato {
        let k = Kato::with(Setup {
            codex_root: true,
            exports: true,
            sandbox: std::env::var("KATO_TEST_SANDBOX").unwrap_or_else(|_| "enforce".into()),
        });
        fs::create_dir_all(k.codex.join("2026/01/08")).unwrap();
        k
    }

    pub fn with(setup: Setup) -> Kato {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        let claude = base.join("claude");
        let codex = base.join("codex");
        fs::create_dir_all(claude.join("-home-u-proj")).unwrap();
        fs::create_dir_all(base.join("home")).unwrap();
        if setup.codex_root {
            fs::create_dir_all(&codex).unwrap();
        }
        let mut config = format!(
            "[providers.claude]\nroots = [\"{}\"]\n\n[providers.codex]\nroots = [\"{}\"]\n\n\
             {}[state]\ndir = \"{}\"\n\n\
             [sandbox]\nmode = \"{}\"\n\n[log]\nlevel = \"debug\"\n",
            claude.display(),
            codex.display(),
            others_disabled(),
            base.join("state").display(),
            setup.sandbox,
        );
        if setup.exports {
            fs::create_dir_all(base.join("out")).unwrap();
            fs::create_dir_all(base.join("outside")).unwrap();
            config.push_str(&format!(
                "\n[exports]\nallowed_roots = [\"{b}/out\"]\ndefault_dir = \"{b}/out/default\"\n",
                b = base.display()
            ));
        }
        fs::write(base.join("config.toml"), config).unwrap();
        Kato {
            _dir: dir,
            base,
            claude,
            codex,
            children: Vec::new(),
            runs: 0,
        }
    }

    /// The temporary directory, symlinks resolved.
    pub fn base(&self) -> PathBuf {
        self.base.clone()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// A path in the export root.
    pub fn out(&self, rel: &str) -> PathBuf {
        self.base.join("out").join(rel)
    }

    /// The Claude session file of [`S`].
    pub fn claude_file(&self) -> PathBuf {
        self.claude.join(format!("-home-u-proj/{S}.jsonl"))
    }

    /// The Codex session file of [`CODEX_ID`] (in the dated directory).
    pub fn codex_file(&self) -> PathBuf {
        self.codex.join(format!(
            "2026/01/08/rollout-2026-01-08T15-00-00-{CODEX_ID}.jsonl"
        ))
    }

    pub fn cmd(&self) -> Command {
        self.cmd_of(Path::new(BIN))
    }

    /// `program` with the test's environment and nothing else.
    pub fn cmd_of(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("XDG_STATE_HOME", self.path("xdg-state"))
            .env("KATO_CONFIG", self.path("config.toml"))
            .env("LANG", "C.UTF-8");
        c
    }

    pub fn kato(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Gemini on, with its root `gemini/` (sessions go in `gemini/proj/chats/`).
    pub fn with_gemini(&self) -> PathBuf {
        let root = self.path("gemini");
        fs::create_dir_all(root.join("proj/chats")).unwrap();
        let cfg = fs::read_to_string(self.path("config.toml"))
            .unwrap()
            .replace(
                "[providers.gemini]\nenabled = false",
                &format!("[providers.gemini]\nroots = [\"{}\"]", root.display()),
            );
        fs::write(self.path("config.toml"), cfg).unwrap();
        root
    }

    /// What `kato status` prints (stdout and stderr).
    pub fn status_text(&self) -> String {
        let o = self.kato(&["status"]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    /// Whether a flush has persisted the state of `n` session files.
    pub fn cursors_persisted(&self, n: usize) -> bool {
        fs::read_dir(self.path("state/files")).is_ok_and(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
                >= n
        })
    }

    /// `kato run` in the foreground, its log in `run-N.log`; returns once
    /// it is ready.
    pub fn run_fg(&mut self) -> u32 {
        self.run_fg_with(&[])
    }

    pub fn run_fg_with(&mut self, extra: &[&str]) -> u32 {
        let log = format!("run-{}.log", self.runs);
        self.runs += 1;
        let mut cmd = self.cmd();
        cmd.arg("run").args(extra);
        let pid = self.spawn_logged(cmd, &log);
        self.wait("ready", |s| s["pid"] == pid && s["ready"] == true);
        pid
    }

    /// Start `cmd` (a daemon) with its stderr in `log` under the base
    /// directory; it is killed when the harness is dropped. Returns its pid.
    pub fn spawn_logged(&mut self, mut cmd: Command, log: &str) -> u32 {
        let log = File::create(self.path(log)).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// [`Kato::run_fg`] without the pid.
    pub fn start(&mut self) {
        self.run_fg();
    }

    pub fn status_file(&self) -> PathBuf {
        self.path("run/kato/status.json")
    }

    pub fn status(&self) -> Option<Value> {
        let bytes = fs::read(self.status_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Poll status.json until `pred` holds.
    pub fn wait(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let mut last = None;
        self.wait_until(what, || {
            last = self.status().filter(|s| pred(s));
            last.is_some()
        });
        last.unwrap()
    }

    /// Poll until `done` holds; on time-out, fail with the status and logs.
    pub fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !done() {
            if t0.elapsed() > DEADLINE {
                panic!(
                    "timed out waiting for {what}; status: {}\nlogs:\n{}",
                    self.status()
                        .map(|s| serde_json::to_string_pretty(&s).unwrap())
                        .unwrap_or_default(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Wait until `path` contains `needle`; returns its text.
    pub fn wait_for_text(&self, path: &Path, needle: &str) -> String {
        self.wait_until(&format!("{needle:?} in {}", path.display()), || {
            fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
        });
        fs::read_to_string(path).unwrap()
    }

    /// Wait until the daemon handled every event of `file` (per its export).
    pub fn settle(&self, session: &str, file: &Path) {
        let out = self
            .cmd()
            .args(["--sandbox", "best-effort", "export", "--format", "jsonl"])
            .arg(file)
            .output()
            .unwrap();
        let n = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
        self.wait(&format!("{n} events of {session}"), |s| {
            s["sessions"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["id"] == session && x["events"].as_u64() >= Some(n))
            })
        });
    }

    /// Every log: the foreground daemons' and the detached one's.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for e in fs::read_dir(&self.base).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") {
                out.push_str(&format!(
                    "--- {name}\n{}",
                    fs::read_to_string(e.path()).unwrap_or_default()
                ));
            }
        }
        let detached = self.path("xdg-state/kato/logs/kato.log");
        out.push_str(&format!(
            "--- kato.log\n{}",
            fs::read_to_string(detached).unwrap_or_default()
        ));
        out
    }

    /// SIGTERM a foreground daemon and return its exit code.
    pub fn term(&mut self, pid: u32) -> i32 {
        signal(pid, rustix::process::Signal::TERM);
        let i = self.children.iter().position(|c| c.id() == pid).unwrap();
        let mut child = self.children.remove(i);
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(t0.elapsed() < DEADLINE, "kato did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM every foreground daemon; each must exit 0.
    pub fn stop(&mut self) {
        for pid in self.children.iter().map(Child::id).collect::<Vec<_>>() {
            assert_eq!(self.term(pid), 0, "exit code on SIGTERM");
        }
    }

    /// SIGKILL every foreground daemon.
    pub fn kill9(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `kato export ARGS WHAT`, which must succeed.
    pub fn export_ok(&self, args: &[&str], what: impl AsRef<std::ffi::OsStr>) -> Output {
        let out = self
            .cmd()
            .arg("export")
            .args(args)
            .arg(what)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Events the one-shot export makes of `file`.
    pub fn export_count(&self, file: &Path) -> u64 {
        let out = self.export_ok(&["--format", "jsonl"], file);
        out.stdout.iter().filter(|b| **b == b'\n').count() as u64
    }

    /// The events of a JSON Lines export of `what`.
    pub fn export_events(&self, what: impl AsRef<std::ffi::OsStr>) -> Vec<Value> {
        let out = self.export_ok(&["--format", "jsonl"], what);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The summary (`--dry-run --json`) of a JSON Lines export of `what`.
    pub fn export_summary(&self, what: impl AsRef<std::ffi::OsStr>) -> Value {
        let out = self.export_ok(&["--format", "jsonl", "--dry-run", "--json"], what);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The security audit log, one JSON value per record.
    pub fn audit(&self) -> Vec<Value> {
        fs::read_to_string(self.path("state/security-audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// No daemon holds the state lock (true when there is no lock file).
    pub fn lock_free(&self) -> bool {
        File::open(self.path("state/kato.lock")).map_or(true, |f| f.try_lock().is_ok())
    }
}

impl Drop for Kato {
    fn drop(&mut self) {
        self.kill9();
        // A daemon started with `kato start` by this test.
        if let Some(s) = self.status() {
            if let Some(pid) = s["pid"].as_u64() {
                if !self.lock_free() {
                    signal(pid as u32, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

pub fn signal(pid: u32, sig: rustix::process::Signal) {
    let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(p, sig).unwrap();
}

/// Append `text` as it is.
pub fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Append each of `lines` followed by a newline.
pub fn append_lines(path: &Path, lines: &[String]) {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    append(path, &text);
}

/// Claude user line number `n` of `session` (newline included).
pub fn claude_line(session: &str, n: u32) -> String {
    format!(
        "{{\"type\":\"user\",\"sessionId\":\"{session}\",\"uuid\":\"{session:.8}-0000-4000-8000-{n:012}\",\
         \"timestamp\":\"2026-01-08T15:{:02}:{:02}.000Z\",\"cwd\":\"/home/u/proj\",\
         \"message\":{{\"role\":\"user\",\"content\":\"message number {n}\"}}}}\n",
        n / 60 % 60,
        n % 60
    )
}

/// A Codex session `id`: its meta line and one user message.
pub fn codex_lines(id: &str) -> String {
    format!(
        "{{\"timestamp\":\"2026-01-08T15:00:00.000Z\",\"type\":\"session_meta\",\"payload\":{{\"id\":\"{id}\",\"cwd\":\"/home/u\"}}}}\n\
         {{\"timestamp\":\"2026-01-08T15:00:01.000Z\",\"type\":\"event_msg\",\"payload\":{{\"type\":\"user_message\",\"message\":\"hi\"}}}}\n"
    )
}

/// A Claude user message of session [`S`] (no newline). Each call gets
/// its own millisecond, as typed messages do (kato takes a human message
/// written in the same millisecond as the record before it for a copy).
pub fn user(uuid: &str, text: &str) -> String {
    user_in(S, uuid, text)
}

/// A Claude user message of `session` (no newline).
pub fn user_in(session: &str, uuid: &str, text: &str) -> String {
    json!({"type": "user", "sessionId": session, "uuid": uuid, "isSidechain": false,
           "timestamp": typed_at(), "message": {"role": "user", "content": text}})
    .to_string()
}

/// A new time on 2026-01-08 for each call, a millisecond apart.
pub fn typed_at() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "2026-01-08T14:{:02}:{:02}.{:03}Z",
        n / 60_000 % 60,
        n / 1000 % 60,
        n % 1000
    )
}

/// A Claude assistant text message of session [`S`] (no newline).
pub fn assistant(uuid: &str, text: &str) -> String {
    assistant_in(S, uuid, text)
}

/// A Claude assistant text message of `session` (no newline).
pub fn assistant_in(session: &str, uuid: &str, text: &str) -> String {
    json!({"type": "assistant", "sessionId": session, "uuid": uuid, "isSidechain": false,
           "timestamp": "2026-01-08T15:56:01.000Z",
           "message": {"id": format!("msg-{uuid}"), "role": "assistant", "model": "claude-opus-4-6",
                       "content": [{"type": "text", "text": text}]}})
    .to_string()
}

/// A Claude tool call `n` and its result `output`, in session [`S`].
pub fn tool_pair(n: usize, output: &str) -> [String; 2] {
    let id = format!("toolu_{n}");
    [
        json!({"type": "assistant", "sessionId": S, "uuid": format!("tc{n}"),
               "isSidechain": false, "timestamp": "2026-01-08T15:56:02.000Z",
               "message": {"id": format!("msg-tc{n}"), "role": "assistant", "model": "claude-opus-4-6",
                           "content": [{"type": "tool_use", "id": id, "name": "Bash", "input": {"command": "ls"}}]}})
        .to_string(),
        json!({"type": "user", "sessionId": S, "uuid": format!("tr{n}"),
               "isSidechain": false, "timestamp": "2026-01-08T15:56:03.000Z",
               "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": output}]}})
        .to_string(),
    ]
}

/// The event ids of a JSONL recording, in file order.
pub fn jsonl_ids(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A small deterministic generator (xorshift): tests that choose instants
/// or sequences at random print the seed, and take it back from the
/// environment to replay a run.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `var` when it is set, else from the clock; the seed is
    /// printed, so a failing run can be replayed with `var=SEED`.
    pub fn from_env(var: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("{var}={seed}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn within(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
}

/// A count from the environment, or `default`.
pub fn env_count(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where two id lists first differ: the index and both ids there.
pub fn first_difference<'a>(
    got: &'a [String],
    want: &'a [String],
) -> Option<(usize, Option<&'a String>, Option<&'a String>)> {
    (0..got.len().max(want.len()))
        .map(|i| (i, got.get(i), want.get(i)))
        .find(|(_, g, w)| g != w)
}

/// How often `needle` occurs in `hay`.
/// Assert that exactly one of `events` has `text` as its text.
pub fn assert_text_once(events: &[Value], text: &str) {
    let n = events.iter().filter(|e| e["text"] == *text).count();
    assert_eq!(n, 1, "{text} in {n} event(s)");
}

pub fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The full libtest name of test `name` in module `module` (the value of
/// `module_path!()` there), for re-executing this binary with one test.
pub fn test_path(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_owned(),
    }
}

/// The event kinds of the golden tables, in their column order.
pub const GOLDEN_KINDS: [kato::event::Kind; 8] = [
    kato::event::Kind::UserMessage,
    kato::event::Kind::AssistantMessage,
    kato::event::Kind::Thinking,
    kato::event::Kind::ToolCall,
    kato::event::Kind::ToolResult,
    kato::event::Kind::SystemMessage,
    kato::event::Kind::ProviderInfo,
    kato::event::Kind::ProviderRaw,
];

/// The kinds of one real file's events counted exactly as its golden row
/// (in [`GOLDEN_KINDS`] order) says, and no other kind present.
pub fn assert_golden_counts(
    file: &str,
    kinds: impl IntoIterator<Item = kato::event::Kind>,
    expected: &[usize; 8],
) {
    let mut counts = std::collections::BTreeMap::new();
    for kind in kinds {
        *counts.entry(kind).or_insert(0usize) += 1;
    }
    for (kind, want) in GOLDEN_KINDS.iter().zip(expected) {
        assert_eq!(
            counts.remove(kind).unwrap_or(0),
            *want,
            "{file}: {}",
            kind.as_str()
        );
    }
    assert!(counts.is_empty(), "{file}: unexpected {counts:?}");
}

/// `[providers.<name>] enabled = false` for every provider but Claude and
/// Codex: the tests' daemons and exports read only the roots they are given.
/// Aider has no default root (nothing to turn off); its tests name theirs.
pub fn others_disabled() -> String {
    kato::provider::registry()
        .iter()
        .map(|p| p.id().as_str())
        .filter(|n| !matches!(*n, "claude" | "codex" | "aider"))
        .map(|n| format!("[providers.{n}]\nenabled = false\n\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::corpus::{location, when_absent, Absent};
    use std::ffi::OsStr;

    #[test]
    fn an_absent_corpus_is_skipped_outside_ci_and_fails_in_ci() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert_eq!(when_absent(None, None), Absent::Skip);
        assert_eq!(when_absent(s(""), None), Absent::Skip);
        assert_eq!(when_absent(None, s("0")), Absent::Skip);
        assert_eq!(when_absent(None, s("")), Absent::Skip);
        assert_eq!(when_absent(s("true"), None), Absent::Fail);
        assert_eq!(when_absent(s("1"), s("0")), Absent::Fail);
        assert_eq!(when_absent(None, s("1")), Absent::Fail);
        assert_eq!(when_absent(s(""), s("1")), Absent::Fail);
    }

    #[test]
    fn the_corpus_is_beside_the_crate_unless_kato_fixtures_names_it() {
        assert_eq!(
            location(Some(OsStr::new("/srv/corpus"))),
            std::path::Path::new("/srv/corpus")
        );
        let beside = location(None);
        assert!(beside.ends_with("../shared/fixtures/real"), "{beside:?}");
        assert_eq!(location(Some(OsStr::new(""))), beside);
    }

    #[test]
    fn test_paths_are_relative_to_the_binary() {
        assert_eq!(
            super::test_path("it::daemon", "launcher"),
            "daemon::launcher"
        );
    }
}
