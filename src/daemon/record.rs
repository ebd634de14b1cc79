//! In-chat commands and live recordings, on the orchestrator's side.
//!
//! The orchestrator feeds every ingested event here. Command events from
//! human messages go through the grammar, the state machine
//! ([`crate::recording`]) and the path policy ([`crate::policy`]); the
//! resulting actions become chunks of rendered Markdown/JSONL handed to
//! destination-scoped writers ([`crate::writer`]). Every decision leaves an
//! audit record.
//!
//! Exactly-once across `kill -9` (the intent record):
//! 1. a chunk is rendered and its bytes, the file length it starts at
//!    (`base`), the renderer state after it and the event watermark are
//!    persisted in the state dir *before* the writer appends (one whole
//!    record of the session's log, synced: `journal`; when that save
//!    fails, nothing is appended and the recording pauses, see `persist`);
//! 2. the writer appends idempotently (only what is missing after `base`)
//!    and syncs the destination;
//! 3. the intent is cleared (logged unsynced: losing it replays step 2,
//!    which then writes nothing).
//!
//! A crash between 1 and 3 replays the intent at start (a no-op when the
//! bytes are there). Events re-delivered after a crash (the provider cursor
//! is persisted after the recording state) are at or below the watermark
//! (already written) or before the recording's start, and skipped. A full
//! disk keeps the intent (growing with new events) and pauses the
//! recording; the heartbeat retries it.
//!
//! A snapshot (`::capture`, `::export`) is a barrier for its session: from
//! its command until its replay is planned, the session's later events —
//! commands included — are held back unhandled, then handled in order. So
//! a `::stop` or `::record` typed while a snapshot is pending acts exactly
//! where it was typed, and the files those events came from keep their
//! persisted cursor before them ([`Recorder::held`]): a crash meanwhile
//! reads them again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, Decision, Entry};
use crate::commands::Format;
use crate::config::{Config, MarkdownOptions};
use crate::event::{Event, Payload, ProviderId};
use crate::policy::{Policy, Target};
use crate::recording::{At, Dest, SessionState};
use crate::redact::{RedactionStats, Redactor};
use crate::render::markdown::{MarkdownRenderer, RenderState};
use crate::render::{MetaCollector, SessionMeta};
use crate::writer::{WriteError, WriterHandle};

use super::command::SessionKey;
use super::seen::SeenCommands;

mod execute;
mod journal;
mod persist;
mod snapshot;

/// Largest intent kept while a recording is paused (full disk); beyond it
/// the recording stops with an error rather than hold unbounded memory.
const MAX_INTENT: usize = 64 << 20;

/// How the recorder reaches the other stages.
pub(crate) trait Stages {
    /// Open a writer for a checked destination (through the writer-spawner).
    fn writer(&mut self, target: Target) -> Result<WriterHandle, WriteError>;
    /// Ask the parse stage of `provider` to send the events of `path` again
    /// (as [`super::ToOrch::Replayed`]) up to the message `upto`. False when
    /// the request could not be sent (the stage is not running).
    fn replay(&mut self, provider: ProviderId, path: &Path, key: ReplayKey, upto: String) -> bool;
}

/// Which snapshot request a replay answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayKey {
    pub session: SessionKey,
    pub recording: String,
    /// The request's number: a replay feeds only the request that asked
    /// for it, never a later snapshot of the same recording.
    pub generation: u64,
}

/// A position in one source file: everything before `offset`, and the
/// events `ids` at `offset` (one line can yield several events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    offset: u64,
    ids: Vec<String>,
}

impl Mark {
    fn covers(&self, ev: &Event) -> bool {
        ev.source.offset < self.offset
            || (ev.source.offset == self.offset && self.ids.contains(&ev.event_id))
    }
}

/// A chunk planned but not yet known to be on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    base: u64,
    /// UTF-8 Markdown or JSONL.
    text: String,
}

/// A capture/export whose replay is not fully planned yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Snapshot {
    upto: At,
    /// The file replayed (the one holding the command's message).
    #[serde(default)]
    path: Option<PathBuf>,
    /// The rest of the command's message follows the snapshot (a capture
    /// records from the line after its command).
    #[serde(default)]
    tail: bool,
    /// File length before the snapshot's first byte.
    base: u64,
    /// Bytes of the snapshot planned so far (re-planned from zero after a crash).
    #[serde(skip)]
    planned: u64,
    meta: SessionMeta,
    /// The destination is the one-shot target of `::export` (closed after).
    export_only: bool,
    /// Renderer state inside the snapshot (reset when re-planned).
    #[serde(skip)]
    render: Option<RenderState>,
    #[serde(skip)]
    reached: bool,
    /// The replay request awaited (`None`: none sent in this run yet).
    #[serde(skip)]
    request: Option<u64>,
    /// Loaded from the state: an earlier run stopped before it was written.
    #[serde(skip)]
    restored: bool,
}

/// One destination of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Rec {
    id: String,
    dest: Dest,
    /// kato created the file (so the frontmatter is kato's).
    created: bool,
    /// Appending live events.
    active: bool,
    /// Committed length of the file.
    len: u64,
    render: Option<RenderState>,
    /// Per source file: what is already written (planned into a durable
    /// intent). Never moved past an event that is not.
    marks: BTreeMap<String, Mark>,
    /// Per source file: where the current recording span starts (set by
    /// the `::record`/`::capture` that started it); earlier events are not
    /// part of it.
    #[serde(default)]
    since: BTreeMap<String, Mark>,
    intent: Option<Intent>,
    snapshot: Option<Snapshot>,
    paused: Option<String>,
    events: u64,
    redactions: BTreeMap<String, u64>,
}

impl Rec {
    /// Add `text` to the bytes planned for this destination: a new intent
    /// starts at the committed length.
    fn plan(&mut self, text: String) {
        match &mut self.intent {
            Some(i) => i.text.push_str(&text),
            None => {
                self.intent = Some(Intent {
                    base: self.len,
                    text,
                })
            }
        }
    }

    /// Where the next planned byte goes: after the intent, or the file.
    fn planned_end(&self) -> u64 {
        self.intent
            .as_ref()
            .map_or(self.len, |i| i.base + i.text.len() as u64)
    }

    /// Plan `text` at file position `base` (a snapshot's chunks are planned
    /// positions, not the current length): a re-planned snapshot replaces
    /// what its earlier plan put there, and keeps what lies before it.
    fn plan_at(&mut self, base: u64, text: String) {
        if let Some(i) = &mut self.intent {
            let keep = base.checked_sub(i.base).map(|n| n as usize);
            if let Some(n) = keep.filter(|n| i.text.is_char_boundary(*n)) {
                i.text.truncate(n);
                i.text.push_str(&text);
                return;
            }
        }
        self.intent = Some(Intent { base, text });
    }

    /// Whether `ev` of source file `tag` goes to this recording.
    fn takes(&self, ev: &Event, tag: &str, live: bool) -> bool {
        // A live event goes to every active recording. An event read as
        // history (kato lost its cursor in a crash and read the file anew)
        // still continues a recording that already follows this file.
        let follows = live || self.marks.contains_key(tag) || self.since.contains_key(tag);
        self.active && follows && !self.since.get(tag).is_some_and(|m| m.covers(ev))
    }
}

/// Persisted per session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SessionData {
    /// Grows with every save: of the snapshot and the log's records, the
    /// highest is the newest state (`journal`).
    #[serde(default)]
    gen: u64,
    provider: String,
    session_id: String,
    commands: SessionState,
    recordings: BTreeMap<String, Rec>,
}

/// Sessions whose metadata (title, models, first and last time: what a
/// recording started later names) is kept from their history: the most
/// recently active. 10,000 sessions would keep some 7 MiB.
const OBSERVED_MAX: usize = 256;

/// What is followed of a session seen, commands or not: small, as most
/// sessions never have any.
struct Observed {
    meta: MetaCollector,
    /// The latest human message while its command events may follow
    /// (commands slice it by line); `None` once another event came, and
    /// for a message that cannot hold a command line.
    last_message: Option<Box<Event>>,
    /// File that holds the human messages (replayed for snapshots).
    main_path: Option<PathBuf>,
}

impl Observed {
    fn new(redactor: std::sync::Arc<Redactor>) -> Observed {
        Observed {
            meta: MetaCollector::new(redactor),
            last_message: None,
            main_path: None,
        }
    }

    /// Follow one event of the session at `path`.
    fn observe(&mut self, path: &Path, ev: &Event) {
        self.meta.observe(ev);
        if ev.is_human_message() {
            // Command events come only from a message with a `::` in it
            // ([`crate::commands::command_events`]): no other is kept.
            let commands =
                matches!(&ev.payload, Payload::UserMessage { text, .. } if text.contains("::"));
            self.last_message = commands.then(|| Box::new(ev.clone()));
            if self.main_path.as_deref() != Some(path) {
                self.main_path = Some(path.to_path_buf());
            }
        } else if !matches!(ev.payload, Payload::KatoCommand { .. }) {
            // A message's command events come right after it (the parse
            // stage derives them there): past them it is not needed.
            self.last_message = None;
        }
    }
}

/// A session with commands or recordings (created by its first command
/// event, or loaded from its saved state).
struct Sess {
    data: SessionData,
    /// Events that arrived while a snapshot was pending, not yet handled.
    deferred: VecDeque<Deferred>,
    /// The files `deferred` came from (their cursors are held back).
    held: BTreeSet<PathBuf>,
    /// The files whose handled events changed `data` since it was last
    /// saved (their cursors are held back until it is).
    unsaved: BTreeSet<PathBuf>,
    /// Why `data` could not be saved the last time it was tried.
    save_error: Option<String>,
    dirty: bool,
    /// Where `data` is saved between snapshots (opened at the first save).
    journal: Option<journal::Journal>,
}

/// An event held back behind a pending snapshot.
struct Deferred {
    path: PathBuf,
    ev: Event,
    live: bool,
}

impl Sess {
    fn new(data: SessionData) -> Sess {
        Sess {
            data,
            deferred: VecDeque::new(),
            held: BTreeSet::new(),
            unsaved: BTreeSet::new(),
            save_error: None,
            dirty: false,
            journal: None,
        }
    }

    /// A snapshot's replay is not fully planned: later events wait.
    fn snapshot_pending(&self) -> bool {
        self.data.recordings.values().any(|r| r.snapshot.is_some())
    }

    fn defer(&mut self, path: &Path, ev: &Event, live: bool) {
        if !self.held.contains(path) {
            self.held.insert(path.to_path_buf());
        }
        self.deferred.push_back(Deferred {
            path: path.to_path_buf(),
            ev: ev.clone(),
            live,
        });
    }
}

/// A recording as `kato status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingStatus {
    pub id: String,
    pub provider: String,
    pub session: String,
    pub destination: PathBuf,
    pub format: String,
    pub active: bool,
    pub events: u64,
    pub bytes: u64,
    pub paused: Option<String>,
    pub redactions: BTreeMap<String, u64>,
    /// A capture or export is being written; the session's later events
    /// wait for it.
    pub snapshot_pending: bool,
}

pub(crate) struct Recorder {
    dir: PathBuf,
    policy: Policy,
    redactor: std::sync::Arc<Redactor>,
    markdown: MarkdownOptions,
    default_dir: PathBuf,
    /// The audit log: every decision is written there.
    pub audit: super::auditor::Auditor,
    /// Fingerprints of decided commands, across sessions (copies are refused).
    seen: SeenCommands,
    seen_dirty: bool,
    /// Sessions with commands or recordings. Boxed: a session's record is
    /// large; a table of them inline would keep its spare slots' worth too.
    sessions: HashMap<SessionKey, Box<Sess>>,
    /// Every session seen in this run (boxed, as `sessions`).
    observed: HashMap<SessionKey, Box<Observed>>,
    writers: HashMap<String, WriterHandle>,
    /// Number of the next replay request.
    next_request: u64,
    /// Messages for the status warnings (drained by the daemon).
    pub warnings: Vec<String>,
}

impl Recorder {
    pub fn new(cfg: &Config) -> Recorder {
        let dir = cfg.state_dir.join("recordings");
        let mut warnings = Vec::new();
        if let Err(e) = super::state::ensure_private_dir(&dir) {
            warnings.push(format!("cannot create {}: {e}", dir.display()));
        }
        let policy = Policy::for_config(cfg);
        let (seen, seen_warning) = SeenCommands::load(&cfg.state_dir);
        warnings.extend(seen_warning);
        let redactor = Redactor::new(&cfg.redaction).unwrap_or_else(|_| {
            // The config was validated at load; an error here cannot happen,
            // and redaction must never silently turn off.
            Redactor::new(&crate::redact::RedactionOptions::default())
                .expect("the built-in detectors compile")
        });
        let redactor = std::sync::Arc::new(redactor);
        let audit = super::auditor::Auditor::open(&cfg.state_dir, policy.hash(), redactor.clone());
        let mut r = Recorder {
            dir,
            policy,
            redactor,
            markdown: cfg.markdown.clone(),
            default_dir: cfg.default_dir.clone(),
            audit,
            seen,
            seen_dirty: false,
            sessions: HashMap::new(),
            observed: HashMap::new(),
            writers: HashMap::new(),
            next_request: 0,
            warnings,
        };
        r.load();
        r
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Write one audit record, now or as soon as the log can be written.
    pub fn audit(&mut self, entry: Entry) {
        self.audit.record(entry);
    }

    /// Finish what a crash interrupted: replay intents, restart snapshots.
    /// Each one is said in the status first: the recording did not move
    /// while kato was down, and this is why.
    pub fn recover(&mut self, stages: &mut dyn Stages) {
        for (key, id) in self.recordings_where(|_| true) {
            self.note_interrupted(&key, &id);
            self.retry(&key, &id, stages);
        }
    }

    /// A status warning for a recording that kato stopped in the middle of.
    fn note_interrupted(&mut self, key: &SessionKey, id: &str) {
        let Some(rec) = self
            .sessions
            .get(key)
            .and_then(|s| s.data.recordings.get(id))
        else {
            return;
        };
        let what = match (&rec.snapshot, &rec.intent, &rec.paused) {
            (Some(_), _, _) => {
                "its capture or export was not fully written; it is written again from its start"
                    .to_owned()
            }
            (None, Some(i), None) => format!(
                "{} planned byte(s) were not yet written; they are written now",
                i.text.len()
            ),
            (None, _, Some(why)) => format!("it was paused ({why}); it is tried again"),
            (None, None, None) => return,
        };
        let msg = format!(
            "recording {} to {} was interrupted when kato last stopped: {what}",
            rec.id,
            rec.dest.path.display()
        );
        self.warnings.push(msg);
    }

    /// (session, recording id) of every recording that `pick` selects.
    fn recordings_where(&self, pick: impl Fn(&Rec) -> bool) -> Vec<(SessionKey, String)> {
        self.sessions
            .iter()
            .flat_map(|(k, s)| {
                s.data
                    .recordings
                    .values()
                    .filter(|r| pick(r))
                    .map(move |r| (k.clone(), r.id.clone()))
            })
            .collect()
    }

    /// Heartbeat: retry paused recordings (a full disk may have space
    /// again) and replays that were not asked for or were lost.
    pub fn heartbeat(&mut self, stages: &mut dyn Stages) {
        let paused = self.recordings_where(|r| {
            r.paused.is_some()
                || r.intent.is_some()
                || r.snapshot.as_ref().is_some_and(|s| s.request.is_none())
        });
        for (key, id) in paused {
            self.retry(&key, &id, stages);
        }
        self.save_dirty();
        self.compact_logs();
    }

    fn retry(&mut self, key: &SessionKey, id: &str, stages: &mut dyn Stages) {
        let Some(rec) = self
            .sessions
            .get(key)
            .and_then(|s| s.data.recordings.get(id))
        else {
            return;
        };
        let unrequested = rec.snapshot.as_ref().is_some_and(|s| s.request.is_none());
        if rec.intent.is_some() {
            self.commit_intent(key, id, stages);
        }
        if unrequested {
            self.start_replay(key, id, stages);
        }
    }

    /// Replays asked of `provider`'s stage will not come (the stage ended):
    /// the heartbeat asks again.
    pub fn replays_lost(&mut self, provider: ProviderId) {
        for (key, sess) in &mut self.sessions {
            if key.provider != provider {
                continue;
            }
            for rec in sess.data.recordings.values_mut() {
                if let Some(s) = &mut rec.snapshot {
                    s.request = None;
                }
            }
        }
    }

    /// Session files whose cursor must not be persisted yet: events read
    /// from them wait behind a pending snapshot, unhandled, or changed a
    /// recording state that could not be saved.
    pub fn held(&self) -> HashSet<(ProviderId, PathBuf)> {
        self.sessions
            .iter()
            .flat_map(|(k, s)| {
                s.held
                    .iter()
                    .chain(&s.unsaved)
                    .map(move |p| (k.provider, p.clone()))
            })
            .collect()
    }

    /// Events of one batch, in order, each with whether it is live (not
    /// history).
    pub fn on_events(&mut self, path: &Path, events: &[(&Event, bool)], stages: &mut dyn Stages) {
        for &(ev, live) in events {
            let key = SessionKey::of(ev);
            if let Some(sess) = self.sessions.get_mut(&key).filter(|s| s.snapshot_pending()) {
                sess.defer(path, ev, live);
                let obs = self.observed_mut(&key);
                if obs.main_path.is_none() && ev.is_human_message() {
                    // A snapshot restored from an older state names no
                    // file: the session's own file, now seen, is replayed.
                    obs.main_path = Some(path.to_path_buf());
                    self.request_replays(&key, stages);
                }
                continue;
            }
            self.handle_event(&key, path, ev, live, stages);
        }
        self.flush_pending(stages);
        self.save_dirty();
    }

    /// One event of a session with no pending snapshot.
    fn handle_event(
        &mut self,
        key: &SessionKey,
        path: &Path,
        ev: &Event,
        live: bool,
        stages: &mut dyn Stages,
    ) {
        self.observed_mut(key).observe(path, ev);
        if let Payload::KatoCommand { .. } = &ev.payload {
            self.session_mut(key);
            self.command(key, ev, live, stages);
        } else if let Some(sess) = self.sessions.get(key) {
            let tag = ev.source.file.as_deref().unwrap_or_default().to_owned();
            let takers: Vec<String> = sess
                .data
                .recordings
                .values()
                .filter(|r| r.takes(ev, &tag, live))
                .map(|r| r.id.clone())
                .collect();
            for id in takers {
                self.record_event(key, &id, ev.clone());
            }
        }
        // Until the state this event changed is saved, its file's cursor
        // waits (cleared by the save).
        if let Some(sess) = self.sessions.get_mut(key).filter(|s| s.dirty) {
            if !sess.unsaved.contains(path) {
                sess.unsaved.insert(path.to_path_buf());
            }
        }
    }

    /// What is followed of a session (created when first asked for).
    fn observed_mut(&mut self, key: &SessionKey) -> &mut Observed {
        if self.observed.len() >= OBSERVED_MAX + OBSERVED_MAX / 4
            && !self.observed.contains_key(key)
        {
            self.forget_least_recent();
        }
        self.observed
            .entry(key.clone())
            .or_insert_with(|| Box::new(Observed::new(self.redactor.clone())))
    }

    /// Forget what was observed of all but the [`OBSERVED_MAX`] sessions
    /// most recently active (by their newest provider timestamp), except
    /// those with commands or recordings, or a message whose command
    /// events may follow. One of them seen again starts over, as after a
    /// restart. Runs once per `OBSERVED_MAX / 4` new sessions.
    fn forget_least_recent(&mut self) {
        let mut by_age: Vec<(Option<&str>, &SessionKey)> = self
            .observed
            .iter()
            .filter(|(k, o)| o.last_message.is_none() && !self.sessions.contains_key(*k))
            .map(|(k, o)| (o.meta.updated(), k))
            .collect();
        let keep = OBSERVED_MAX.saturating_sub(self.observed.len() - by_age.len());
        if by_age.len() <= keep {
            return;
        }
        by_age.select_nth_unstable_by(keep, |a, b| b.0.cmp(&a.0));
        let forget: Vec<SessionKey> = by_age[keep..].iter().map(|(_, k)| (*k).clone()).collect();
        for k in &forget {
            self.observed.remove(k);
        }
    }

    /// A session's command and recording state (created when first asked
    /// for: a session's first command).
    fn session_mut(&mut self, key: &SessionKey) -> &mut Sess {
        self.sessions.entry(key.clone()).or_insert_with(|| {
            Box::new(Sess::new(SessionData {
                gen: 0,
                provider: key.provider.as_str().to_owned(),
                session_id: key.session.clone(),
                commands: SessionState::new(key.session.as_str()),
                recordings: BTreeMap::new(),
            }))
        })
    }

    /// The session's metadata as seen so far (for frontmatter and names).
    fn meta(&self, key: &SessionKey) -> SessionMeta {
        match self.observed.get(key) {
            Some(o) => o.meta.clone().finish(),
            None => MetaCollector::new(self.redactor.clone()).finish(),
        }
    }

    /// Handle the events a finished snapshot held back, in order, until
    /// none is left or one of them starts another snapshot.
    fn resume_deferred(&mut self, key: &SessionKey, stages: &mut dyn Stages) {
        loop {
            let Some(sess) = self.sessions.get_mut(key) else {
                return;
            };
            if sess.deferred.is_empty() {
                sess.held.clear();
            }
            if sess.snapshot_pending() {
                break;
            }
            let Some(d) = sess.deferred.pop_front() else {
                break;
            };
            self.handle_event(key, &d.path, &d.ev, d.live, stages);
        }
        self.flush_pending(stages);
        self.save_dirty();
    }

    /// Render one event into a recording's intent (flushed later), unless
    /// it is already written (re-delivered after a restart).
    fn record_event(&mut self, key: &SessionKey, id: &str, ev: Event) {
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(rec) = sess.data.recordings.get_mut(id) else {
            return;
        };
        let tag = ev.source.file.as_deref().unwrap_or_default().to_owned();
        let mark = rec.marks.entry(tag).or_default();
        if mark.covers(&ev) {
            return;
        }
        if ev.source.offset > mark.offset {
            mark.offset = ev.source.offset;
            mark.ids.clear();
        }
        mark.ids.push(ev.event_id.clone());
        let mut ev = ev;
        let mut stats = RedactionStats::default();
        self.redactor.redact_event(&mut ev, &mut stats);
        for r in &stats.redactions {
            *rec.redactions
                .entry(r.label.as_str().to_owned())
                .or_default() += 1;
        }
        let text = render_one(&self.markdown, rec, &ev);
        rec.events += 1;
        rec.plan(text);
        if rec
            .intent
            .as_ref()
            .is_some_and(|i| i.text.len() > MAX_INTENT)
        {
            rec.active = false;
            rec.paused = Some(format!(
                "more than {} MiB could not be written; recording stopped",
                MAX_INTENT >> 20
            ));
        }
        sess.dirty = true;
        let audits: Vec<Entry> = stats
            .redactions
            .iter()
            .map(|r| Entry {
                stage: "orchestrate".into(),
                event: AuditEvent::Redaction,
                decision: Decision::Info,
                provider: Some(key.provider.as_str().to_owned()),
                session: Some(key.session.clone()),
                reason: Some(r.label.as_str().to_owned()),
                detail: serde_json::json!({"event_id": r.event_id, "bytes": r.bytes, "recording": id}),
                ..Entry::default()
            })
            .collect();
        for a in audits {
            self.audit(a);
        }
    }

    /// Persist intents (one synced log record per session), then hand
    /// them to the writers (one synced append each). What the appends
    /// change (the new length, the intent cleared) is logged unsynced: a
    /// crash that loses it replays the intent, which writes nothing twice.
    fn flush_pending(&mut self, stages: &mut dyn Stages) {
        let pending = self.recordings_where(|r| r.intent.is_some() && r.paused.is_none());
        if !pending.is_empty() {
            self.save_dirty();
            for (key, id) in pending {
                self.commit_intent(&key, &id, stages);
            }
            self.save_appended();
        }
        self.close_idle_writers();
    }

    /// End the writers of recordings with nothing more to write (stopped,
    /// or an export done) once their last bytes are on disk.
    fn close_idle_writers(&mut self) {
        if self.writers.is_empty() {
            return;
        }
        let idle =
            self.recordings_where(|r| !r.active && r.intent.is_none() && r.snapshot.is_none());
        for (_, id) in idle {
            if let Some(w) = self.writers.remove(&id) {
                w.close();
            }
        }
    }

    /// Append a recording's intent through its writer, once it is saved.
    fn commit_intent(&mut self, key: &SessionKey, id: &str, stages: &mut dyn Stages) {
        let Some((base, text, dest)) = self.sessions.get(key).and_then(|s| {
            let r = s.data.recordings.get(id)?;
            let i = r.intent.as_ref()?;
            Some((i.base, i.text.clone(), r.dest.clone()))
        }) else {
            return;
        };
        // The intent must be durable before the append: a crash after an
        // append whose intent was not saved would leave bytes kato no
        // longer knows it wrote.
        if let Err(why) = self.save_session(key) {
            let why = format!(
                "the recording state cannot be saved ({why}); nothing is written until it is"
            );
            self.pause(key, id, why);
            return;
        }
        let result = self
            .writer_for(key, id, &dest, stages)
            .and_then(|w| w.append(base, text.into_bytes()));
        match result {
            Ok(len) => self.appended(key, id, len),
            Err(e) => {
                if matches!(e, WriteError::Gone | WriteError::Open(_)) {
                    self.writers.remove(id);
                }
                self.pause(key, id, e.to_string());
            }
        }
        if let Some(s) = self.sessions.get_mut(key) {
            s.dirty = true;
        }
    }

    /// The intent is on disk: the file is `len` bytes long now.
    fn appended(&mut self, key: &SessionKey, id: &str, len: u64) {
        let Some(rec) = self
            .sessions
            .get_mut(key)
            .and_then(|s| s.data.recordings.get_mut(id))
        else {
            return;
        };
        rec.len = len;
        rec.intent = None;
        if let Some(why) = rec.paused.take() {
            let msg = format!(
                "recording {} to {} resumed (it was paused: {why})",
                rec.id,
                rec.dest.path.display()
            );
            self.warnings.push(msg);
        }
    }

    /// The recording's intent cannot be written now: it is kept, and the
    /// heartbeat tries again. Said (warning, audit record) when it starts.
    fn pause(&mut self, key: &SessionKey, id: &str, why: String) {
        let Some(rec) = self
            .sessions
            .get_mut(key)
            .and_then(|s| s.data.recordings.get_mut(id))
        else {
            return;
        };
        let newly = rec.paused.is_none();
        rec.paused = Some(why.clone());
        if !newly {
            return;
        }
        let dest = rec.dest.path.display().to_string();
        self.warnings
            .push(format!("recording {} to {dest} paused: {why}", rec.id));
        self.audit(Entry {
            stage: "write".into(),
            event: AuditEvent::RecordingPaused,
            decision: Decision::Deny,
            provider: Some(key.provider.as_str().to_owned()),
            session: Some(key.session.clone()),
            target: Some(dest),
            reason: Some(why),
            ..Entry::default()
        });
    }

    fn writer_for(
        &mut self,
        _key: &SessionKey,
        id: &str,
        dest: &Dest,
        stages: &mut dyn Stages,
    ) -> Result<&WriterHandle, WriteError> {
        if !self.writers.contains_key(id) {
            let target = self
                .policy
                .check(dest.path.as_os_str())
                .map_err(|d| WriteError::Open(d.to_string()))?;
            let w = stages.writer(target)?;
            self.writers.insert(id.to_owned(), w);
        }
        self.writers.get(id).ok_or(WriteError::Gone)
    }

    /// Recordings for `kato status`.
    pub fn status(&self) -> Vec<RecordingStatus> {
        let mut out: Vec<RecordingStatus> = self
            .sessions
            .values()
            .flat_map(|s| {
                s.data.recordings.values().map(|r| RecordingStatus {
                    id: r.id.clone(),
                    provider: s.data.provider.clone(),
                    session: s.data.session_id.clone(),
                    destination: r.dest.path.clone(),
                    format: match r.dest.format {
                        Format::Markdown => "markdown".into(),
                        Format::Jsonl => "jsonl".into(),
                    },
                    active: r.active,
                    events: r.events,
                    bytes: r.len,
                    paused: r.paused.clone(),
                    redactions: r.redactions.clone(),
                    snapshot_pending: r.snapshot.is_some(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.session, &a.id).cmp(&(&b.session, &b.id)));
        out
    }

    /// Orderly shutdown: persist (the logs folded into the snapshots),
    /// end writers after they flushed.
    pub fn shutdown(&mut self) {
        self.save_dirty();
        self.fold_logs();
        for (_, w) in self.writers.drain() {
            w.close();
        }
    }
}

fn render_one(opts: &MarkdownOptions, rec: &mut Rec, ev: &Event) -> String {
    let st = rec.render.take().unwrap_or_default();
    let (text, st) = render_with(opts, rec.dest.format, st, ev);
    rec.render = Some(st);
    text
}

/// Render one event from a renderer state; returns the text and new state.
fn render_with(
    opts: &MarkdownOptions,
    format: Format,
    st: RenderState,
    ev: &Event,
) -> (String, RenderState) {
    let mut out = Vec::new();
    let st = match format {
        Format::Markdown => {
            let mut r = MarkdownRenderer::resume(&mut out, opts, st);
            let _ = r.event(ev);
            r.state().clone()
        }
        Format::Jsonl => {
            let mut j = crate::render::jsonl::JsonlWriter::new(&mut out);
            let _ = j.event(ev);
            drop(j);
            st
        }
    };
    (String::from_utf8(out).unwrap_or_default(), st)
}

#[cfg(test)]
mod tests;
