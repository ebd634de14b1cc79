//! Ingest: batches from the parse stages become per-file aggregates;
//! a pass's last batch commits them with its cursor, and committed state
//! is flushed to the state directory in quiet moments (never in a burst).
//!
//! Exactly-once: a cursor is committed only after the events before it
//! were handled (recordings included, by the caller's `record` step), and
//! flushed only after that; a crash re-delivers, and a replaying pass
//! drops what it already saw by event-id fingerprints.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::event::{Event, Payload, ProviderId};
use crate::provider;
use crate::reader::FileIdentity;
use crate::redact::Redactor;

use super::report::Report;
use super::state::{fingerprint, FileState, Quarantine, Store};
use super::status::{now_us, rfc3339, snippet, SessionStatus};
use super::{Batch, Known};

/// State is flushed once batches have stopped arriving for this long …
const FLUSH_QUIET: Duration = Duration::from_millis(250);
/// … or at the latest this long after the first unflushed commit. (A crash
/// before a flush only re-delivers events; fsyncs stay out of bursts.)
const FLUSH_MAX_DELAY: Duration = Duration::from_secs(5);
/// A flush of at least this many files syncs them by one `syncfs` of the
/// state's file system, not two fsyncs each (10,000 files of history took
/// 5.5 s to persist that way, 1.1 s with the fsyncs free). Below, a flush
/// of the few files a user is working on syncs just those: a `syncfs`
/// would also wait for whatever else is being written to that disk.
const SYNC_ONCE_FROM: usize = 32;
/// Most files one flush call writes. A flush is a round over every file
/// changed when it began, a chunk per call, the orchestrator handling what
/// arrived between two calls: the flush of a whole history (10,000 state
/// files, 1.6 to 3 s of file creation) does not hold up the stages,
/// appends and status behind it.
const FLUSH_CHUNK: usize = 256;

/// What a flush round has met so far.
#[derive(Default)]
struct Round {
    /// Files that could not be saved.
    errors: Vec<String>,
    /// Files held back (see [`Ingest::flush`]).
    waiting: bool,
}

/// A session file: its provider and path.
pub(super) type FileKey = (ProviderId, PathBuf);

/// Aggregates of events not yet covered by a committed cursor.
#[derive(Debug, Clone, Default)]
pub(super) struct Agg {
    events: u64,
    events_live: u64,
    commands_live: u64,
    commands_historical: u64,
    session_id: Option<String>,
    title: Option<String>,
    last_activity: Option<String>,
}

impl Agg {
    /// Count `ev`; derive the title with `titler` while there is none.
    fn account(&mut self, ev: &Event, live: bool, titler: Option<&Redactor>) {
        self.events += 1;
        if live {
            self.events_live += 1;
        }
        if let Payload::KatoCommand { .. } = ev.payload {
            if live {
                self.commands_live += 1;
            } else {
                self.commands_historical += 1;
            }
        }
        if self.session_id.is_none() && !ev.session_id.is_empty() {
            self.session_id = Some(ev.session_id.to_string());
        }
        if let Some(ts) = ev.timestamp.as_deref() {
            if self.last_activity.as_deref().is_none_or(|l| ts > l) {
                self.last_activity = Some(ts.to_owned());
            }
        }
        let Some(redactor) = titler.filter(|_| self.title.is_none()) else {
            return;
        };
        if let Payload::UserMessage { text, .. } = &ev.payload {
            if ev.is_human_message() {
                // The same title as the recordings', shorter.
                self.title =
                    crate::render::title_from_message(redactor, text).map(|t| snippet(&t, 60));
            }
        }
    }

    fn merge_into(&self, st: &mut FileState) {
        st.events += self.events;
        st.events_live += self.events_live;
        st.commands_live += self.commands_live;
        st.commands_historical += self.commands_historical;
        if st.session_id.is_none() {
            st.session_id.clone_from(&self.session_id);
        }
        if st.title.is_none() {
            st.title.clone_from(&self.title);
        }
        if let Some(ts) = &self.last_activity {
            if st.last_activity.as_ref().is_none_or(|l| ts > l) {
                st.last_activity = Some(ts.clone());
            }
        }
    }
}

/// A pass in progress: what its batches handled before its commit.
#[derive(Debug, Default)]
struct Pass {
    /// Events handled since the last commit (a large pass in progress).
    agg: Agg,
    ids: Vec<u64>,
    /// Fingerprints consulted while a replaying pass is in progress.
    replay_set: Option<HashSet<u64>>,
}

/// The orchestrator's record of one session file.
#[derive(Debug)]
pub(super) struct FileRec {
    /// Committed state: what is persisted.
    pub st: FileState,
    /// Boxed, and only while a pass is in progress: an idle file's record
    /// stays small.
    pass: Option<Box<Pass>>,
    /// Fingerprints of committed events not yet on disk.
    unflushed_ids: Vec<u64>,
    dirty: bool,
    /// Waits for its chunk of the flush round in progress.
    in_round: bool,
    /// `st` is what its state file says (loaded, or flushed since).
    on_disk: bool,
    pub last_ingest_us: u64,
}

impl FileRec {
    fn new(provider: ProviderId, path: &Path) -> FileRec {
        FileRec {
            on_disk: false,
            ..FileRec::from_state(FileState::new(provider, path.to_path_buf()))
        }
    }

    /// A file whose state was loaded from its state file.
    fn from_state(st: FileState) -> FileRec {
        FileRec {
            st,
            pass: None,
            unflushed_ids: Vec::new(),
            dirty: false,
            in_round: false,
            on_disk: true,
            last_ingest_us: 0,
        }
    }

    /// The session id, committed or pending.
    fn session_id(&self) -> Option<&str> {
        self.st
            .session_id
            .as_deref()
            .or(self.pass.as_ref().and_then(|p| p.agg.session_id.as_deref()))
    }

    /// The newest activity, committed or pending.
    fn last_activity(&self) -> Option<&str> {
        self.st.last_activity.as_deref().max(
            self.pass
                .as_ref()
                .and_then(|p| p.agg.last_activity.as_deref()),
        )
    }

    /// Committed plus pending, for status.
    fn view(&self) -> FileState {
        let mut v = self.st.clone();
        if let Some(p) = &self.pass {
            p.agg.merge_into(&mut v);
        }
        v
    }

    fn drop_pending(&mut self) {
        self.pass = None;
    }
}

/// Sessions for `kato status`, and per provider its sessions and files.
#[derive(Clone)]
pub(super) struct SessionSummary {
    /// Most recent first, at most [`super::status::MAX_SESSIONS`].
    pub sessions: Vec<SessionStatus>,
    pub total: usize,
    pub per_provider: HashMap<ProviderId, (usize, usize)>,
}

/// The orchestrator's record of every session file, and its persistence.
pub(super) struct Ingest {
    store: Store,
    /// Titles are derived here (for status and the state files), redacted.
    redactor: Arc<Redactor>,
    /// Boxed: with the records inline the table's spare slots (up to
    /// half of it) would each cost a whole record.
    pub(super) files: HashMap<FileKey, Box<FileRec>>,
    /// Bumped by every `&mut self` method (the only way `files` changes
    /// outside tests), so [`Ingest::summary`] is rebuilt only after a
    /// change: an idle daemon with thousands of sessions rewrites its
    /// status without walking them.
    generation: u64,
    /// The last summary and the generation it was built at.
    summary: std::cell::RefCell<Option<(u64, SessionSummary)>>,
    /// Since when committed state waits to be flushed.
    dirty_since: Option<Instant>,
    /// When the last batch arrived.
    last_batch: Instant,
    /// After a failed flush: not before this.
    retry_at: Instant,
    /// A flush round is in progress: its next chunk is due at once (after
    /// what arrived meanwhile is handled).
    round: Option<Round>,
    /// State files of providers this run does not read.
    unused: Vec<FileState>,
}

impl Ingest {
    pub fn open(cfg: &Config) -> Result<Ingest> {
        let redactor = Arc::new(Redactor::new(&cfg.redaction).map_err(|e| Error::Config {
            path: cfg.source.clone().unwrap_or_default(),
            message: e.to_string(),
        })?);
        let store = Store::open(&cfg.state_dir, redactor.clone()).map_err(|e| {
            Error::io(
                format!("opening the state in {}", cfg.state_dir.display()),
                e,
            )
        })?;
        let now = Instant::now();
        Ok(Ingest {
            store,
            redactor,
            files: HashMap::new(),
            generation: 0,
            summary: std::cell::RefCell::new(None),
            dirty_since: None,
            last_batch: now,
            retry_at: now,
            round: None,
            unused: Vec::new(),
        })
    }

    /// Load every file's persisted state; unusable state files are set
    /// aside and reported.
    pub fn load(&mut self, registry: crate::provider::Registry, report: &mut Report) {
        self.generation += 1;
        let t0 = Instant::now();
        let (states, corrupt) = self.store.load_all();
        for c in corrupt {
            let msg = format!(
                "state file {} could not be used ({}); set aside as {}; its session file is read again from the start, as history",
                c.file.display(),
                c.error,
                c.moved_to
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(could not move it)".into())
            );
            report.warn("state", msg);
        }
        for st in states {
            if registry.get(st.provider).is_none() {
                // Kept for the snapshot: the next start may read it.
                self.unused.push(st);
                continue;
            }
            if let Some(q) = &st.quarantine {
                report.skip(st.provider, st.path.clone(), quarantined(&q.reason));
            }
            let key = (st.provider, st.path.clone());
            self.files.insert(key, Box::new(FileRec::from_state(st)));
        }
        tracing::info!(
            files = self.files.len(),
            ms = t0.elapsed().as_millis() as u64,
            "state loaded"
        );
    }

    /// The files of `provider` as its stage must know them at start.
    pub fn known(&self, provider: ProviderId) -> Vec<Known> {
        self.files
            .iter()
            .filter(|((p, _), _)| *p == provider)
            .map(|((_, path), rec)| Known {
                path: path.clone(),
                cursor: rec.st.cursor.clone(),
                size: rec.st.size,
                mtime_ns: rec.st.mtime_ns,
                quarantined: rec.st.quarantine.as_ref().map(|q| q.identity),
            })
            .collect()
    }

    /// The main file of a session, as far as the persisted state tells:
    /// among the files of that session, the one whose name carries the
    /// session id (its first 8 characters, as Gemini names them), else
    /// the only one.
    pub fn main_file(&self, provider: ProviderId, session: &str) -> Option<PathBuf> {
        let files: Vec<&PathBuf> = self
            .files
            .iter()
            .filter(|((p, _), r)| *p == provider && r.st.session_id.as_deref() == Some(session))
            .map(|((_, path), _)| path)
            .collect();
        let short = session.get(..8).unwrap_or(session);
        files
            .iter()
            .find(|p| provider::stem(p).contains(short))
            .or(if files.len() == 1 {
                files.first()
            } else {
                None
            })
            .map(|p| (*p).clone())
    }

    /// A stage ended: events of its unfinished passes come again from the
    /// committed cursors.
    pub fn drop_pending(&mut self, provider: ProviderId) {
        self.generation += 1;
        for ((p, _), rec) in self.files.iter_mut() {
            if *p == provider {
                rec.drop_pending();
            }
        }
    }

    /// A file the stage gave up on: persist the verdict.
    pub fn quarantine(
        &mut self,
        provider: ProviderId,
        path: PathBuf,
        identity: Option<FileIdentity>,
        reason: String,
        report: &mut Report,
    ) {
        self.generation += 1;
        let rec = self
            .files
            .entry((provider, path.clone()))
            .or_insert_with(|| Box::new(FileRec::new(provider, &path)));
        rec.st.quarantine = Some(Box::new(Quarantine {
            reason: reason.clone(),
            identity,
            at: rfc3339(SystemTime::now()),
        }));
        rec.drop_pending();
        rec.dirty = true;
        self.dirty_since.get_or_insert_with(Instant::now);
        report.skip(provider, path, quarantined(&reason));
    }

    /// A known file no longer exists: forget it.
    pub fn gone(&mut self, provider: ProviderId, path: PathBuf, report: &mut Report) {
        self.generation += 1;
        report.unskip(&path);
        if self.files.remove(&(provider, path.clone())).is_some() {
            if let Err(e) = self.store.remove(provider, &path) {
                report.warn(
                    "state",
                    format!("cannot remove the state of {}: {e}", path.display()),
                );
            }
            report.dirty = true;
        }
    }

    /// One batch: drop re-delivered events, account the rest, hand them
    /// to `record` (commands and recordings, persisted before the cursor
    /// that covers them), then commit the pass when it ended.
    pub fn handle_batch(
        &mut self,
        b: Batch,
        report: &mut Report,
        record: impl FnOnce(&Path, &[(&Event, bool)]),
    ) {
        self.generation += 1;
        let rec = self
            .files
            .entry((b.provider, b.path.clone()))
            .or_insert_with(|| Box::new(FileRec::new(b.provider, &b.path)));
        let pass = rec.pass.get_or_insert_with(Box::default);
        if b.replay && pass.replay_set.is_none() {
            let mut set = match self.store.load_ids(b.provider, &b.path, rec.st.ids_len) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(path = %b.path.display(), "cannot read event fingerprints: {e}");
                    HashSet::new()
                }
            };
            set.extend(rec.unflushed_ids.iter().copied());
            set.extend(pass.ids.iter().copied());
            pass.replay_set = Some(set);
        }
        let mut dropped = 0u64;
        let mut kept: Vec<(&Event, bool)> = Vec::with_capacity(b.events.len());
        for (i, ev) in b.events.iter().enumerate() {
            let fp = fingerprint(&ev.event_id);
            if let Some(set) = &mut pass.replay_set {
                if !set.insert(fp) {
                    dropped += 1;
                    continue;
                }
            }
            pass.ids.push(fp);
            // A file's title is derived once (it costs a redaction pass).
            let titler = rec.st.title.is_none().then_some(&*self.redactor);
            pass.agg.account(ev, i >= b.live_from, titler);
            kept.push((ev, i >= b.live_from));
        }
        record(&b.path, &kept);
        drop(kept);
        let handled = b.events.len() as u64 - dropped;
        self.last_batch = Instant::now();
        let now = now_us();
        let counters = &mut report.counters;
        if handled > 0 {
            rec.last_ingest_us = now;
            counters.last_ingest_unix_us = Some(now);
        }
        counters.events += handled;
        counters.duplicates_dropped += dropped;
        counters.batches += 1;
        report.dirty = true;
        let Some(c) = b.commit else {
            return;
        };
        let Some(pass) = rec.pass.take() else {
            return;
        };
        pass.agg.merge_into(&mut rec.st);
        // Moved, not appended: an idle file keeps no spare capacity
        // (1,000 files × a pass's worth of ids add up).
        let ids = pass.ids;
        if rec.unflushed_ids.is_empty() {
            rec.unflushed_ids = ids;
        } else {
            rec.unflushed_ids.extend_from_slice(&ids);
        }
        rec.st.cursor = c.cursor;
        rec.st.size = c.size;
        rec.st.mtime_ns = c.mtime_ns;
        rec.st.skipped += c.diagnostics as u64;
        rec.st.quarantine = None;
        rec.dirty = true;
        self.dirty_since.get_or_insert_with(Instant::now);
        report.unskip(&b.path);
        report.counters.bytes += c.bytes;
        if let Some(r) = c.reset {
            report.counters.resets += 1;
            tracing::info!(path = %b.path.display(), reset = ?r, "file started over");
        }
    }

    /// When committed state is due to be flushed (`None`: nothing to flush).
    pub fn next_flush(&self) -> Option<Instant> {
        if self.round.is_some() {
            // In the past: at once.
            return Some(self.last_batch);
        }
        let t = self.dirty_since?;
        let due = (self.last_batch + FLUSH_QUIET).min(t + FLUSH_MAX_DELAY);
        Some(due.max(self.retry_at))
    }

    /// Whether a flush is due at `now`.
    pub fn flush_due(&self, now: Instant) -> bool {
        self.round.is_some()
            || self.dirty_since.is_some_and(|t| {
                (now >= self.last_batch + FLUSH_QUIET || now >= t + FLUSH_MAX_DELAY)
                    && now >= self.retry_at
            })
    }

    /// Persist the committed state of changed files, a chunk of the flush
    /// round: a call without a round in progress begins one over every
    /// changed file. Each file of a round is tried once, at most
    /// [`FLUSH_CHUNK`] per call, then the directory is synced. Returns
    /// whether the round goes on (its next chunk is then due at once).
    /// When it ends, files that could not be saved are retried after
    /// [`FLUSH_MAX_DELAY`], with one warning for the round.
    ///
    /// Files in `held` keep their persisted state: events read from them
    /// are not handled yet (they wait behind a snapshot), or the recording
    /// state they changed is not saved yet (a full state disk), so a crash
    /// must read them again; they are flushed by a later round.
    pub fn flush(&mut self, report: &mut Report, held: &HashSet<FileKey>) -> bool {
        let t0 = Instant::now();
        self.generation += 1;
        let mut round = match self.round.take() {
            Some(r) => r,
            None => {
                // Files changed from now on wait for the next round.
                self.dirty_since = None;
                for rec in self.files.values_mut() {
                    rec.in_round = rec.dirty;
                }
                Round::default()
            }
        };
        let mut saved = 0usize;
        let mut more = false;
        let store = &self.store;
        let mut due = Vec::new();
        for (key, rec) in self.files.iter_mut().filter(|(_, r)| r.in_round) {
            if due.len() == FLUSH_CHUNK {
                more = true;
                break;
            }
            // In a round only while dirty: only a save clears either.
            rec.in_round = false;
            if held.contains(key) {
                round.waiting = true;
            } else {
                due.push(rec);
            }
        }
        let errors = &mut round.errors;
        // Each file's fingerprints and JSON are synced before its rename;
        // in a chunk of many files (the first ingest of a history), all of
        // them by one sync of the file system instead of two each.
        let one_sync = due.len() >= SYNC_ONCE_FROM;
        let mut staged = Vec::with_capacity(due.len());
        for rec in due {
            match store.stage(&rec.st, &rec.unflushed_ids, !one_sync) {
                Ok(s) => staged.push((rec, s)),
                Err(e) => errors.push(format!("{}: {e}", rec.st.path.display())),
            }
        }
        if one_sync && !staged.is_empty() {
            if let Err(e) = store.sync_written() {
                // Refused (a filter without `syncfs`) or failed: each file
                // is synced on its own; one that fails is not committed.
                tracing::debug!("syncfs of the state failed ({e}): syncing file by file");
                staged = staged
                    .into_iter()
                    .filter_map(|(rec, s)| match s.sync() {
                        Ok(()) => Some((rec, s)),
                        Err(e) => {
                            errors.push(format!("{}: {e}", rec.st.path.display()));
                            s.discard();
                            None
                        }
                    })
                    .collect();
            }
        }
        for (rec, s) in staged {
            match store.commit(&mut rec.st, s) {
                Ok(()) => {
                    rec.unflushed_ids = Vec::new();
                    rec.dirty = false;
                    rec.on_disk = true;
                    saved += 1;
                }
                Err(e) => errors.push(format!("{}: {e}", rec.st.path.display())),
            }
        }
        if saved > 0 {
            if let Err(e) = self.store.sync_dir() {
                errors.push(format!("syncing the state directory: {e}"));
            }
        }
        report.counters.flushes += 1;
        tracing::debug!(
            saved,
            more,
            ms = t0.elapsed().as_millis() as u64,
            "state flushed"
        );
        if more {
            self.round = Some(round);
            return true;
        }
        let now = Instant::now();
        if round.waiting {
            // Look again soon: the snapshot is usually written in moments.
            self.dirty_since.get_or_insert(now);
            self.retry_at = now + FLUSH_QUIET;
        }
        if let Some(first) = round.errors.first() {
            self.dirty_since.get_or_insert(now);
            self.retry_at = now + FLUSH_MAX_DELAY;
            report.warn(
                "state",
                format!(
                    "cannot persist the state of {} file(s) (first: {first}); retrying",
                    round.errors.len()
                ),
            );
        }
        false
    }

    /// At a stop: end the flush round in progress, then one more round
    /// over what changed since or could not be saved. Each file is tried
    /// at most twice, so a stop on a disk that refuses writes ends.
    pub fn flush_all(&mut self, report: &mut Report, held: &HashSet<FileKey>) {
        for _ in 0..2 {
            while self.flush(report, held) {}
            if !self.files.values().any(|r| r.dirty) {
                break;
            }
        }
    }

    /// At a clean stop, after the last flush: copy every state file into
    /// the snapshot the next start reads ([`Store::snapshot`]). Not while
    /// anything waits to be flushed: the snapshot would not say what the
    /// state files say (the next start reads them one by one instead).
    pub fn snapshot(&self) -> std::result::Result<usize, String> {
        if let Some(rec) = self.files.values().find(|r| r.dirty) {
            return Err(format!(
                "the state of {} is not flushed",
                rec.st.path.display()
            ));
        }
        let states: Vec<&FileState> = self
            .files
            .values()
            .filter(|r| r.on_disk)
            .map(|r| &r.st)
            .chain(&self.unused)
            .collect();
        self.store
            .snapshot(states.iter().copied())
            .map(|()| states.len())
            .map_err(|e| e.to_string())
    }

    /// Sessions (files grouped by provider and session id) for status.
    pub fn summary(&self) -> SessionSummary {
        let mut cache = self.summary.borrow_mut();
        match &*cache {
            Some((generation, s)) if *generation == self.generation => s.clone(),
            _ => {
                let s = self.build_summary();
                *cache = Some((self.generation, s.clone()));
                s
            }
        }
    }

    /// Every file is grouped into its session by reference; only the
    /// sessions shown (at most [`super::status::MAX_SESSIONS`]) get a row.
    /// Rows for all of them were built, then cut: with 10,000 sessions a
    /// few MiB at each status write, which the heap kept.
    fn build_summary(&self) -> SessionSummary {
        // (provider, session id, file, record), grouped by the first two.
        let mut files: Vec<(ProviderId, std::borrow::Cow<'_, str>, &Path, &FileRec)> = self
            .files
            .iter()
            .map(|((provider, path), rec)| {
                let id = match rec.session_id() {
                    Some(id) => std::borrow::Cow::Borrowed(id),
                    None => std::borrow::Cow::Owned(provider::stem(path)),
                };
                (*provider, id, path.as_path(), &**rec)
            })
            .collect();
        // Stable: a session's files keep the table's order (its title is
        // its first file's that has one).
        files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let mut per_provider: HashMap<ProviderId, (usize, usize)> = HashMap::new();
        // Each session: its files, newest activity, latest ingest.
        let mut sessions: Vec<(&[_], Option<&str>, u64)> = files
            .chunk_by(|a, b| (a.0, &a.1) == (b.0, &b.1))
            .map(|group| {
                let pp = per_provider.entry(group[0].0).or_default();
                pp.0 += 1;
                pp.1 += group.len();
                let last_activity = group.iter().filter_map(|f| f.3.last_activity()).max();
                let last_ingest = group.iter().map(|f| f.3.last_ingest_us).max().unwrap_or(0);
                (group, last_activity, last_ingest)
            })
            .collect();
        sessions.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(b.2.cmp(&a.2))
                .then(a.0[0].1.cmp(&b.0[0].1))
        });
        let total = sessions.len();
        sessions.truncate(super::status::MAX_SESSIONS);
        let sessions = sessions
            .into_iter()
            .map(|(group, _, _)| {
                let (provider, id) = (group[0].0, group[0].1.to_string());
                let mut s = SessionStatus::new(id, provider);
                for (_, _, path, rec) in group {
                    add_file(&mut s, &rec.view(), rec.last_ingest_us, path);
                }
                s.files.sort();
                s
            })
            .collect();
        SessionSummary {
            sessions,
            total,
            per_provider,
        }
    }
}

/// The skip reason of a quarantined file.
fn quarantined(reason: &str) -> String {
    format!("quarantined: {reason}; skipped until the file is replaced")
}

/// Add one file's committed-plus-pending view to its session's row.
fn add_file(s: &mut SessionStatus, v: &FileState, last_ingest_us: u64, path: &Path) {
    s.events += v.events;
    s.events_live += v.events_live;
    s.commands_live += v.commands_live;
    s.commands_historical += v.commands_historical;
    s.skipped += v.skipped;
    if s.title.is_empty() {
        s.title = v.title.clone().unwrap_or_default();
    }
    if v.last_activity > s.last_activity {
        s.last_activity = v.last_activity.clone();
    }
    s.last_ingest_unix_us = s.last_ingest_unix_us.max(last_ingest_us);
    s.files.push(path.to_path_buf());
    if v.quarantine.is_some() {
        s.quarantined_files += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;
    use crate::reader::Cursor;

    fn ingest(dir: &Path) -> Ingest {
        let toml = format!(
            "[state]\ndir = \"{}/state\"\n[sandbox]\nmode = \"best-effort\"\n",
            dir.display()
        );
        let env = crate::config::Env {
            home: Some(dir.to_path_buf()),
            ..Default::default()
        };
        let cfg = Config::from_toml(&toml, None, &env).unwrap();
        Ingest::open(&cfg).unwrap()
    }

    fn batch(path: &Path, ids: &[&str], commit: bool) -> Batch {
        let events = ids
            .iter()
            .map(|id| {
                let source = Source {
                    record: "line".into(),
                    offset: 0,
                    file: None,
                };
                let text = Payload::AssistantMessage { text: "a".into() };
                Event::new(ProviderId::Claude, "s1", *id, source, text)
            })
            .collect();
        Batch {
            provider: ProviderId::Claude,
            path: path.to_path_buf(),
            events,
            live_from: 0,
            replay: false,
            commit: commit.then(|| super::super::Commit {
                cursor: Cursor::default(),
                size: 1,
                mtime_ns: 1,
                reset: None,
                diagnostics: 0,
                bytes: 1,
            }),
        }
    }

    #[test]
    fn a_file_between_passes_keeps_no_pass_state() {
        let tmp = tempfile::tempdir().unwrap();
        let mut ing = ingest(tmp.path());
        let mut report = Report::new();
        let path = tmp.path().join("s1.jsonl");
        let key = (ProviderId::Claude, path.clone());
        ing.handle_batch(batch(&path, &["e1", "e2"], false), &mut report, |_, _| {});
        assert!(ing.files[&key].pass.is_some(), "a pass in progress");
        assert_eq!(ing.files[&key].view().events, 2);
        ing.handle_batch(batch(&path, &["e3"], true), &mut report, |_, _| {});
        let rec = &ing.files[&key];
        assert!(rec.pass.is_none(), "committed: nothing of the pass is kept");
        assert_eq!(rec.st.events, 3);
        assert_eq!(rec.unflushed_ids.len(), 3);
        assert_eq!(rec.view().events, 3);
        ing.flush(&mut report, &HashSet::new());
        assert!(ing.files[&key].unflushed_ids.is_empty());
    }

    /// An ingest with `n` files changed and not flushed.
    fn changed_files(n: usize) -> (tempfile::TempDir, Ingest, Report) {
        let tmp = tempfile::tempdir().unwrap();
        let mut ing = ingest(tmp.path());
        let mut report = Report::new();
        for i in 0..n {
            let path = tmp.path().join(format!("s{i}.jsonl"));
            ing.handle_batch(batch(&path, &["e1"], true), &mut report, |_, _| {});
        }
        (tmp, ing, report)
    }

    fn dirty(ing: &Ingest) -> usize {
        ing.files.values().filter(|r| r.dirty).count()
    }

    #[test]
    fn a_flush_of_many_files_goes_in_chunks_each_due_at_once() {
        let files = FLUSH_CHUNK * 2 + 3;
        let (tmp, mut ing, mut report) = changed_files(files);
        assert_eq!(dirty(&ing), files);
        let mut calls = 0;
        loop {
            let before = dirty(&ing);
            let more = ing.flush(&mut report, &HashSet::new());
            calls += 1;
            assert_eq!(before - dirty(&ing), before.min(FLUSH_CHUNK));
            if !more {
                break;
            }
            // A batch arrived just now: the rest is due all the same.
            let now = Instant::now();
            ing.last_batch = now;
            assert!(ing.flush_due(now), "the rest of a flush waits for nothing");
            assert!(ing.next_flush().is_some_and(|t| t <= now));
        }
        assert_eq!(calls, 3);
        assert_eq!(dirty(&ing), 0);
        assert!(!ing.flush_due(Instant::now() + FLUSH_MAX_DELAY));
        let on_disk = std::fs::read_dir(tmp.path().join("state/files"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count();
        assert_eq!(on_disk, files);
    }

    /// Files that cannot be saved (root-owned state files, say) are tried
    /// once a round: they neither keep the others of their round from
    /// being saved nor delay its next chunk, and a stop ends.
    #[test]
    fn a_file_that_cannot_be_saved_holds_up_no_other() {
        let files = FLUSH_CHUNK * 2 + 88;
        let (tmp, mut ing, mut report) = changed_files(files);
        // The first files of the table's order fail: more than a chunk.
        let failing: Vec<PathBuf> = ing
            .files
            .keys()
            .take(FLUSH_CHUNK + 44)
            .map(|(p, path)| {
                let ids = tmp
                    .path()
                    .join(format!("state/files/{}.ids", Store::key(*p, path)));
                std::fs::create_dir_all(&ids).unwrap();
                ids
            })
            .collect();
        let mut calls = 1;
        while ing.flush(&mut report, &HashSet::new()) {
            calls += 1;
            assert!(
                ing.flush_due(Instant::now()),
                "a failure delayed the next chunk"
            );
        }
        assert_eq!(calls, files.div_ceil(FLUSH_CHUNK));
        assert_eq!(
            dirty(&ing),
            failing.len(),
            "every file that could be saved is"
        );
        let warned = report.all_warnings();
        assert_eq!(warned.len(), 1, "one warning a round");
        assert!(warned[0]
            .message
            .contains(&format!("{} file(s)", failing.len())));
        // Retried later, not at once.
        let now = Instant::now();
        assert!(!ing.flush_due(now));
        assert!(ing.next_flush().is_some_and(|t| t > now + FLUSH_QUIET));

        // A stop tries each at most twice more, and ends.
        let before = report.counters.flushes;
        ing.flush_all(&mut report, &HashSet::new());
        let rounds = (failing.len().div_ceil(FLUSH_CHUNK)) as u64;
        assert_eq!(report.counters.flushes - before, 2 * rounds);
        assert_eq!(dirty(&ing), failing.len());

        // Once they can be written, the next round saves them.
        for ids in &failing {
            std::fs::remove_dir(ids).unwrap();
        }
        ing.retry_at = Instant::now();
        assert!(ing.flush_due(Instant::now() + FLUSH_MAX_DELAY));
        while ing.flush(&mut report, &HashSet::new()) {}
        assert_eq!(dirty(&ing), 0);
    }
}
