//! The crash test: random `kill -9`s, full export and state disks and
//! restarts, over long captures, records, stops and exports of a Claude, a
//! Codex and a Gemini session at once, through the real binary. A model of
//! SPEC §6 says what every destination must hold; any event lost,
//! duplicated or out of order fails the test.
//!
//! `ci/crash-test` runs it for a bounded time (`KATO_CRASH_SECS`, rounds up
//! to `KATO_CRASH_ROUNDS`, `KATO_CRASH_STEPS` steps each); every
//! `cargo test` runs one short round. The seed (`KATO_CRASH_SEED`) is
//! printed, and a run is replayed with it (the kill instants are chosen
//! from it too; where the daemon stands when they land still varies).
//! Disk-full windows need a tmpfs (root); without one they are skipped
//! loudly, and with `CI` set the test fails instead.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::tmpfs::Tmpfs;
use crate::harness::{
    append_lines, assistant_in, env_count, typed_at, user_in, Kato, Rng, DEADLINE,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Provider {
    Claude,
    Codex,
    Gemini,
}

const PROVIDERS: [Provider; 3] = [Provider::Claude, Provider::Codex, Provider::Gemini];

/// A message of the conversation: typed by the human, or the agent's reply.
enum Msg {
    Human(String),
    Reply(String),
}

/// One session file under test, written the way its agent writes it, and
/// the model of what each of its destinations must hold.
struct Session {
    provider: Provider,
    /// Unique in the run: part of every marker.
    n: u64,
    id: String,
    path: PathBuf,
    /// Markers used so far.
    lines: u64,
    /// Events the file holds (what status must count once it is handled).
    events: u64,
    /// Gemini: where the document's closing `]}` starts, and whether a
    /// message precedes it.
    doc_end: u64,
    doc_has_messages: bool,
    /// The key of every recordable event so far, in order.
    seen: Vec<String>,
    active: bool,
    capture: PathBuf,
    exports: u64,
    /// What each destination must hold, in order.
    want: BTreeMap<PathBuf, Vec<String>>,
}

/// The key of an event in a destination: the marker its text carries, or
/// (history written by the agent, e.g. a session header) its event id.
fn marker_in(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(i) = rest.find("zq") {
        let cand = &rest[i + 2..];
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let a = digits(cand);
        if a > 0 && cand[a..].starts_with('x') {
            let b = digits(&cand[a + 1..]);
            if b > 0 && cand[a + 1 + b..].starts_with("zq") {
                return Some(&rest[i..i + 2 + a + 1 + b + 2]);
            }
        }
        rest = &rest[i + 2..];
    }
    None
}

/// The keys of a JSONL destination, in file order.
fn jsonl_keys(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match marker_in(l) {
            Some(m) => m.to_owned(),
            None => {
                let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
                format!("id:{}", v["event_id"].as_str().unwrap_or("?"))
            }
        })
        .collect()
}

/// The markers of a Markdown destination, in file order (the frontmatter
/// and the title, which repeat the first human message, aside).
fn markdown_keys(text: &str) -> Vec<String> {
    let body = text
        .strip_prefix("---\n")
        .and_then(|t| t.split_once("\n---\n"))
        .map_or(text, |(_, b)| b);
    let mut out = Vec::new();
    for line in body.lines().filter(|l| !l.starts_with("# ")) {
        let mut rest = line;
        while let Some(m) = marker_in(rest) {
            out.push(m.to_owned());
            let at = rest.find(m).unwrap_or(0) + m.len();
            rest = &rest[at..];
        }
    }
    out
}

fn is_markdown(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "md")
}

/// The keys a destination holds now.
fn keys_of(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    if is_markdown(path) {
        markdown_keys(&text)
    } else {
        jsonl_keys(&text)
    }
}

impl Session {
    fn new(k: &Kato, provider: Provider, n: u64, markdown: bool) -> Session {
        let (id, path) = match provider {
            Provider::Claude => {
                let id = format!("c1a0de00-0000-4000-8000-{n:012}");
                let path = k.claude.join(format!("-home-u-proj/{id}.jsonl"));
                (id, path)
            }
            Provider::Codex => {
                let id = format!("019ac88c-3f80-7990-a29a-{n:012}");
                let path = k
                    .codex
                    .join(format!("2026/01/08/rollout-2026-01-08T15-00-00-{id}.jsonl"));
                (id, path)
            }
            Provider::Gemini => {
                let id = format!("9e{n:06x}-0000-4000-8000-000000000001");
                let path = k.path(&format!(
                    "gemini/proj/chats/session-2026-01-08T15-00-{}.json",
                    &id[..8]
                ));
                (id, path)
            }
        };
        let ext = if markdown { "md" } else { "jsonl" };
        Session {
            provider,
            n,
            id,
            path,
            lines: 0,
            events: 0,
            doc_end: 0,
            doc_has_messages: false,
            seen: Vec::new(),
            active: false,
            capture: k.out(&format!("{provider:?}-{n}.{ext}").to_lowercase()),
            exports: 0,
            want: BTreeMap::new(),
        }
    }

    fn marker(&mut self) -> String {
        self.lines += 1;
        format!("zq{}x{}zq", self.n, self.lines)
    }

    /// The history present before kato first sees the file: the agent's
    /// header (Codex, Gemini) and `n` messages. Keys come from the one-shot
    /// export, so the header's events are expected where kato puts them.
    fn history(&mut self, k: &Kato, n: u64) {
        match self.provider {
            Provider::Claude => {}
            Provider::Codex => {
                fs::create_dir_all(self.path.parent().unwrap()).unwrap();
                let meta = json!({"timestamp": typed_at(), "type": "session_meta",
                    "payload": {"id": self.id, "timestamp": "2026-01-08T15:00:00.000Z", "cwd": "/w"}});
                append_lines(&self.path, &[meta.to_string()]);
            }
            Provider::Gemini => {
                let head = format!(
                    "{{\n  \"sessionId\": \"{}\",\n  \"projectHash\": \"proj\",\n  \
                     \"startTime\": \"2026-01-08T15:00:00.000Z\",\n  \
                     \"lastUpdated\": \"2026-01-08T15:00:00.000Z\",\n  \"messages\": [",
                    self.id
                );
                let doc = format!("{head}\n  ]\n}}\n");
                fs::write(&self.path, &doc).unwrap();
                self.doc_end = head.len() as u64;
            }
        }
        let msgs: Vec<Msg> = (0..n)
            .map(|i| {
                let m = self.marker();
                if i % 4 == 0 {
                    Msg::Human(format!("{m} question {i}"))
                } else {
                    Msg::Reply(format!("{m} answer {i}"))
                }
            })
            .collect();
        self.write(&msgs);
        self.seen = self.oracle(k);
        self.events = self.seen.len() as u64;
    }

    /// The keys of the file as the one-shot export reads it (commands aside).
    fn oracle(&self, k: &Kato) -> Vec<String> {
        let out = k
            .cmd()
            .args(["--sandbox", "best-effort", "export", "--format", "jsonl"])
            .arg(&self.path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter(|l| !l.contains("\"kind\":\"user.kato-command\""))
            .flat_map(jsonl_keys)
            .collect()
    }

    /// Append messages to the session file as its agent does.
    fn write(&mut self, msgs: &[Msg]) {
        match self.provider {
            Provider::Claude => {
                let lines: Vec<String> = msgs
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let uuid = format!("s{}-{}-{i}", self.n, self.lines);
                        match m {
                            Msg::Human(t) => user_in(&self.id, &uuid, t),
                            Msg::Reply(t) => assistant_in(&self.id, &uuid, t),
                        }
                    })
                    .collect();
                append_lines(&self.path, &lines);
            }
            Provider::Codex => {
                let lines: Vec<String> = msgs
                    .iter()
                    .map(|m| match m {
                        Msg::Human(t) => json!({"timestamp": typed_at(), "type": "event_msg",
                            "payload": {"type": "user_message", "message": t}}),
                        Msg::Reply(t) => json!({"timestamp": typed_at(), "type": "response_item",
                            "payload": {"type": "message", "role": "assistant",
                                        "content": [{"type": "output_text", "text": t}]}}),
                    })
                    .map(|v| v.to_string())
                    .collect();
                append_lines(&self.path, &lines);
            }
            Provider::Gemini => self.write_gemini(msgs),
        }
    }

    /// Gemini rewrites its document in place as it grows: the new messages
    /// and the closing brackets overwrite the old closing brackets, so the
    /// file only ever grows.
    fn write_gemini(&mut self, msgs: &[Msg]) {
        let mut text = String::new();
        for (i, m) in msgs.iter().enumerate() {
            let id = format!("g{}-{}-{i}", self.n, self.lines);
            let v = match m {
                Msg::Human(t) => {
                    json!({"id": id, "timestamp": typed_at(), "type": "user", "content": t})
                }
                Msg::Reply(t) => json!({"id": id, "timestamp": typed_at(), "type": "gemini",
                                        "content": t, "model": "gemini-2.5-pro"}),
            };
            text.push_str(if self.doc_has_messages {
                ",\n    "
            } else {
                "\n    "
            });
            self.doc_has_messages = true;
            text.push_str(&v.to_string());
        }
        let at = self.doc_end;
        self.doc_end += text.len() as u64;
        text.push_str("\n  ]\n}\n");
        let f = OpenOptions::new().write(true).open(&self.path).unwrap();
        f.write_all_at(text.as_bytes(), at).unwrap();
    }

    /// A burst of `n` messages, mostly replies.
    fn burst(&mut self, rng: &mut Rng, n: u64) {
        let msgs: Vec<Msg> = (0..n)
            .map(|_| {
                let m = self.marker();
                self.observe(&m);
                if rng.below(4) == 0 {
                    Msg::Human(format!("{m} says the human"))
                } else {
                    Msg::Reply(format!("{m} says the agent"))
                }
            })
            .collect();
        self.events += n;
        self.write(&msgs);
    }

    /// A message the session gets: recorded if it is recording.
    fn observe(&mut self, key: &str) {
        self.seen.push(key.to_owned());
        if self.active {
            self.want
                .entry(self.capture.clone())
                .or_default()
                .push(key.to_owned());
        }
    }

    /// The human types a command (SPEC §6), its marker on its own line so
    /// that the message is recorded whole.
    fn command(&mut self, cmd: Command) {
        let m = self.marker();
        self.observe(&m);
        let text = match cmd {
            Command::Capture => format!("{m}\n::capture {}", self.capture.display()),
            Command::Stop => format!("{m}\n::stop"),
            Command::Record => format!("::record\n{m}"),
            Command::Export => {
                self.exports += 1;
                let dest = self.capture.with_file_name(format!(
                    "{:?}-{}-export-{}.jsonl",
                    self.provider, self.n, self.exports
                ));
                self.want.insert(dest.clone(), self.seen.clone());
                format!("{m}\n::export {}", dest.display())
            }
        };
        match cmd {
            Command::Capture => {
                let all = self.seen.clone();
                self.want
                    .entry(self.capture.clone())
                    .or_default()
                    .extend(all);
                self.active = true;
            }
            Command::Stop => self.active = false,
            Command::Record if !self.active => {
                self.want
                    .entry(self.capture.clone())
                    .or_default()
                    .push(m.clone());
                self.active = true;
            }
            Command::Record | Command::Export => {}
        }
        self.events += 2;
        self.write(&[Msg::Human(text)]);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Capture,
    Stop,
    Record,
    Export,
}

/// What the run checked.
#[derive(Default)]
struct Tally {
    rounds: u64,
    steps: u64,
    kills: u64,
    /// Restarts that resumed a recording the kill interrupted.
    resumed: u64,
    export_full: u64,
    /// Disk-full windows at whose end status showed a paused recording.
    paused_seen: u64,
    state_full: u64,
    destinations: u64,
    events: u64,
    per_provider: BTreeMap<Provider, u64>,
    duplicates: u64,
    losses: u64,
    disordered: u64,
    failures: Vec<String>,
}

/// One round: a daemon, its disks and three sessions.
struct Round<'a> {
    k: Kato,
    rng: &'a mut Rng,
    tally: &'a mut Tally,
    out_disk: Option<Tmpfs>,
    state_disk: Option<Tmpfs>,
    sessions: Vec<Session>,
}

impl Round<'_> {
    /// Wait until status counts every event of every session as handled.
    fn settle(&self) {
        let want: HashMap<&str, u64> = self
            .sessions
            .iter()
            .map(|s| (s.id.as_str(), s.events))
            .collect();
        self.k.wait("every session handled", |st| {
            want.iter().all(|(id, n)| {
                st["sessions"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["id"] == *id && x["events"].as_u64() >= Some(*n))
                })
            })
        });
    }

    /// Something a user does in one session: mostly a burst of messages.
    /// True when a snapshot was asked for with events right behind it.
    fn user_step(&mut self, commands: bool) -> bool {
        let i = self.rng.below(self.sessions.len() as u64) as usize;
        let s = &mut self.sessions[i];
        let cap = if s.provider == Provider::Gemini {
            80
        } else {
            400
        };
        let roll = if commands { self.rng.below(12) } else { 0 };
        let n = self.rng.within(1, cap);
        match roll {
            0..=5 => s.burst(self.rng, n),
            6 => s.command(Command::Stop),
            7 => s.command(Command::Record),
            8 => s.command(Command::Export),
            9 => s.command(Command::Capture),
            // A snapshot and what follows it at once: the later events
            // wait behind the snapshot.
            10 => {
                s.command(Command::Export);
                s.burst(self.rng, n);
            }
            _ => {
                s.command(Command::Capture);
                s.burst(self.rng, n);
            }
        }
        self.tally.steps += 1;
        roll >= 10
    }

    /// `kill -9` after a random moment (a burst may land while kato is
    /// down), then start again.
    fn kill(&mut self) {
        self.kill_after(0, 500);
    }

    /// `kill -9` between `lo` and `hi` ms from now, then start again.
    fn kill_after(&mut self, lo: u64, hi: u64) {
        std::thread::sleep(Duration::from_millis(self.rng.within(lo, hi)));
        self.k.kill9();
        self.tally.kills += 1;
        if self.rng.below(2) == 0 {
            self.user_step(false);
        }
        self.k.start();
        if self
            .k
            .status_text()
            .contains("interrupted when kato last stopped")
        {
            self.tally.resumed += 1;
        }
    }

    /// A recording is paused (status.json says so, with why).
    fn paused(&self) -> bool {
        self.k.status().is_some_and(|s| {
            s["recordings"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["paused"].is_string()))
        })
    }

    /// A window in which a disk is full: steps go on, kato may be killed.
    fn full_window(&mut self, state: bool) {
        let disk = if state {
            &self.state_disk
        } else {
            &self.out_disk
        };
        if disk.is_none() {
            return;
        }
        if state {
            // A command typed before the disk fills must have run (with
            // a full state disk it would be refused, as it must be): read
            // is not enough, one waiting behind a snapshot has not run.
            self.settle();
            self.k.wait("no snapshot pending", |st| {
                st["recordings"]
                    .as_array()
                    .is_some_and(|r| r.iter().all(|x| x["snapshot_pending"] != true))
            });
            std::thread::sleep(Duration::from_millis(400));
        }
        // Full to the last byte, or nearly: small writes (a cursor) still
        // fit where large ones (a recording state, a capture) do not.
        let left = if self.rng.below(2) == 0 {
            0
        } else {
            self.rng.within(1, 64) << 12
        };
        let disk = if state {
            &self.state_disk
        } else {
            &self.out_disk
        };
        let Some(filler) = disk.as_ref().map(|d| d.fill_leaving(left)) else {
            return;
        };
        for _ in 0..self.rng.within(1, 3) {
            self.user_step(!state);
        }
        std::thread::sleep(Duration::from_millis(self.rng.within(100, 1500)));
        if self.paused() {
            self.tally.paused_seen += 1;
        }
        if self.rng.below(3) == 0 {
            self.kill();
        }
        fs::remove_file(filler).unwrap();
        if state {
            self.tally.state_full += 1;
        } else {
            self.tally.export_full += 1;
        }
    }

    /// Wait until every destination holds what it must (or the deadline
    /// passes), stop kato and compare.
    fn check(&mut self) {
        self.settle();
        let deadline = Instant::now() + DEADLINE;
        let complete = |s: &Session| s.want.iter().all(|(p, w)| keys_of(p).len() >= w.len());
        while Instant::now() < deadline && !self.sessions.iter().all(complete) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.k.stop();
        let all: Vec<(Provider, PathBuf, Vec<String>)> = self
            .sessions
            .iter()
            .flat_map(|s| {
                s.want
                    .iter()
                    .map(|(p, w)| (s.provider, p.clone(), w.clone()))
            })
            .collect();
        for (provider, path, want) in all {
            self.compare(provider, &path, &want);
        }
        let verify = self.k.kato(&["audit", "verify"]);
        if !verify.status.success() {
            self.tally.failures.push(format!(
                "audit verify: {}",
                String::from_utf8_lossy(&verify.stderr)
            ));
        }
    }

    fn compare(&mut self, provider: Provider, path: &Path, want: &[String]) {
        let want: Vec<String> = if is_markdown(path) {
            want.iter()
                .filter(|k| !k.starts_with("id:"))
                .cloned()
                .collect()
        } else {
            want.to_vec()
        };
        let got = keys_of(path);
        let mut counts: HashMap<&str, i64> = HashMap::new();
        for k in &want {
            *counts.entry(k).or_default() += 1;
        }
        for k in &got {
            *counts.entry(k).or_default() -= 1;
        }
        let dup: u64 = counts
            .values()
            .filter(|c| **c < 0)
            .map(|c| c.unsigned_abs())
            .sum();
        let lost: u64 = counts.values().filter(|c| **c > 0).map(|c| *c as u64).sum();
        let t = &mut *self.tally;
        t.destinations += 1;
        t.events += want.len() as u64;
        *t.per_provider.entry(provider).or_default() += want.len() as u64;
        t.duplicates += dup;
        t.losses += lost;
        if got != want {
            if dup == 0 && lost == 0 {
                t.disordered += 1;
            }
            let at = (0..got.len().max(want.len()))
                .find(|i| got.get(*i) != want.get(*i))
                .unwrap_or(0);
            t.failures.push(format!(
                "{}: {} event(s) written, {} expected, {dup} duplicated, {lost} lost; first \
                 difference at {at}: {:?} instead of {:?}",
                path.display(),
                got.len(),
                want.len(),
                got.get(at),
                want.get(at)
            ));
        }
    }
}

/// One round with a fresh daemon, disks and sessions.
fn round(rng: &mut Rng, tally: &mut Tally, steps: u64) {
    let mut k = Kato::recording();
    k.with_gemini();
    let root = Tmpfs::mount(&k.out(""), "256m");
    let state = root
        .is_some()
        .then(|| Tmpfs::mount(&k.path("state"), "32m"))
        .flatten();
    let r = tally.rounds;
    let sessions: Vec<Session> = PROVIDERS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let markdown = *p == Provider::Claude && r % 2 == 1;
            let mut s = Session::new(&k, *p, r * 10 + i as u64, markdown);
            let n = match p {
                Provider::Gemini => rng.within(300, 2_000),
                _ => rng.within(2_000, 16_000),
            };
            s.history(&k, n);
            s
        })
        .collect();
    k.start();
    let files = sessions.len();
    k.wait_until("the history's cursors persisted", || {
        k.cursors_persisted(files)
    });
    let mut round = Round {
        k,
        rng,
        tally,
        out_disk: root,
        state_disk: state,
        sessions,
    };
    for s in &mut round.sessions {
        s.command(Command::Capture);
    }
    for _ in 0..steps {
        if round.user_step(true) && round.rng.below(2) == 0 {
            // Kill while the snapshot may still be pending, once the
            // events behind it were read (and a quiet-time flush is due).
            round.kill_after(250, 1_000);
            continue;
        }
        match round.rng.below(8) {
            0 | 1 => round.kill(),
            2 => round.full_window(false),
            3 => round.full_window(true),
            _ => {}
        }
    }
    round.check();
    round.tally.rounds += 1;
}

#[test]
fn random_kills_and_full_disks_over_every_provider_lose_and_duplicate_nothing() {
    let mut rng = Rng::from_env("KATO_CRASH_SEED");
    let rounds = env_count("KATO_CRASH_ROUNDS", 1);
    let steps = env_count("KATO_CRASH_STEPS", 8);
    let budget = Duration::from_secs(env_count("KATO_CRASH_SECS", 0));
    let t0 = Instant::now();
    let mut tally = Tally::default();
    while tally.rounds < rounds && (tally.rounds == 0 || budget.is_zero() || t0.elapsed() < budget)
    {
        round(&mut rng, &mut tally, steps);
        if !tally.failures.is_empty() {
            break;
        }
    }
    let per: Vec<String> = tally
        .per_provider
        .iter()
        .map(|(p, n)| format!("{p:?} {n}").to_lowercase())
        .collect();
    println!(
        "crash test: {} round(s), {} step(s) in {} s; kills survived {} ({} resumed an interrupted \
         recording), export disk full {} time(s), state disk full {} time(s), a recording seen \
         paused in {} of them; events checked {} ({}) in {} destination(s); duplicates {}, losses {}, out of \
         order {}",
        tally.rounds,
        tally.steps,
        t0.elapsed().as_secs(),
        tally.kills,
        tally.resumed,
        tally.export_full,
        tally.state_full,
        tally.paused_seen,
        tally.events,
        per.join(", "),
        tally.destinations,
        tally.duplicates,
        tally.losses,
        tally.disordered
    );
    assert!(
        tally.failures.is_empty(),
        "{} destination(s) wrong:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}
