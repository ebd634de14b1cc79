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
//!    persisted atomically in the state dir *before* the writer appends;
//! 2. the writer appends idempotently (only what is missing after `base`);
//! 3. the intent is cleared.
//!
//! A crash between 1 and 3 replays the intent at start (a no-op when the
//! bytes are there). Events re-delivered after a crash (the provider cursor
//! is persisted after the recording state) are below the watermark and
//! skipped. A full disk keeps the intent (growing with new events) and
//! pauses the recording; the heartbeat retries it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::{AuditLog, Entry};
use crate::commands::{self, Format};
use crate::config::{Config, MarkdownOptions};
use crate::event::{Event, Payload};
use crate::policy::{Policy, Target};
use crate::recording::{self, Action, At, Ctx, Dest, Outcome, SessionState};
use crate::redact::{RedactionStats, Redactor};
use crate::render::markdown::{MarkdownRenderer, RenderState};
use crate::render::{MetaCollector, SessionMeta};
use crate::writer::{WriteError, WriterHandle};

/// Largest intent kept while a recording is paused (full disk); beyond it
/// the recording stops with an error rather than hold unbounded memory.
const MAX_INTENT: usize = 64 << 20;

/// How the recorder reaches the other stages.
pub(crate) trait Stages {
    /// Open a writer for a checked destination (through the writer-spawner).
    fn writer(&mut self, target: Target) -> Result<WriterHandle, WriteError>;
    /// Ask the parse stage of `provider` to send the events of `path` again
    /// (as [`super::ToOrch::Replayed`]) up to the message `upto`.
    fn replay(&mut self, provider: &'static str, path: &Path, key: ReplayKey, upto: String);
}

/// Which snapshot a replay feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayKey {
    pub provider: String,
    pub session: String,
    pub recording: String,
}

/// Where the events of one source file were recorded up to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    offset: u64,
    /// Ids already recorded at `offset` (one line can yield several events).
    ids: Vec<String>,
}

/// A chunk planned but not yet known to be on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    base: u64,
    /// UTF-8 Markdown or JSONL.
    text: String,
}

/// A capture/export being written from a replay of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Snapshot {
    upto: At,
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
    marks: BTreeMap<String, Mark>,
    intent: Option<Intent>,
    snapshot: Option<Snapshot>,
    paused: Option<String>,
    events: u64,
    redactions: BTreeMap<String, u64>,
}

/// Persisted per session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SessionData {
    provider: String,
    session_id: String,
    commands: SessionState,
    recordings: BTreeMap<String, Rec>,
}

struct Sess {
    data: SessionData,
    meta: MetaCollector,
    /// The latest human message (commands slice it by line).
    last_message: Option<Event>,
    /// File that holds the human messages (replayed for snapshots).
    main_path: Option<PathBuf>,
    /// Live events waiting for a snapshot of their recording to finish.
    queued: HashMap<String, VecDeque<Event>>,
    dirty: bool,
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
}

pub(crate) struct Recorder {
    dir: PathBuf,
    policy: Policy,
    redactor: Redactor,
    markdown: MarkdownOptions,
    default_dir: PathBuf,
    audit: Option<AuditLog>,
    sessions: HashMap<(String, String), Sess>,
    writers: HashMap<String, WriterHandle>,
    /// Messages for the status warnings (drained by the daemon).
    pub warnings: Vec<String>,
}

fn key_of(ev: &Event) -> (String, String) {
    (ev.provider.as_str().to_owned(), ev.session_id.clone())
}

impl Recorder {
    pub fn new(cfg: &Config) -> Recorder {
        let dir = cfg.state_dir.join("recordings");
        let mut warnings = Vec::new();
        if let Err(e) = super::state::ensure_private_dir(&dir) {
            warnings.push(format!("cannot create {}: {e}", dir.display()));
        }
        let audit_path = cfg.state_dir.join(crate::audit::FILE_NAME);
        let audit = match AuditLog::open(&audit_path) {
            Ok(a) => Some(a),
            Err(e) => {
                warnings.push(format!(
                    "cannot open the audit log {}: {e}",
                    audit_path.display()
                ));
                None
            }
        };
        let redactor = Redactor::new(&cfg.redaction).unwrap_or_else(|_| {
            // The config was validated at load; an error here cannot happen,
            // and redaction must never silently turn off.
            Redactor::new(&crate::redact::RedactionOptions::default())
                .expect("the built-in detectors compile")
        });
        let mut r = Recorder {
            dir,
            policy: Policy::new(&crate::sandbox::profiles::export_roots(cfg)),
            redactor,
            markdown: cfg.markdown.clone(),
            default_dir: cfg.default_dir.clone(),
            audit,
            sessions: HashMap::new(),
            writers: HashMap::new(),
            warnings,
        };
        r.load();
        r
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Write one audit record (failures become status warnings).
    pub fn audit(&mut self, entry: Entry) {
        let mut entry = entry;
        if entry.policy_hash.is_none() {
            entry.policy_hash = Some(self.policy.hash().to_owned());
        }
        if let Some(a) = &mut self.audit {
            if let Err(e) = a.append(entry) {
                self.warnings
                    .push(format!("cannot write the audit log: {e}"));
            }
        }
    }

    fn load(&mut self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let parsed = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<SessionData>(&b).ok());
            match parsed {
                Some(mut data) => {
                    for rec in data.recordings.values_mut() {
                        if let Some(s) = &mut rec.snapshot {
                            s.planned = 0;
                            s.render = None;
                            s.reached = false;
                        }
                    }
                    let key = (data.provider.clone(), data.session_id.clone());
                    self.sessions.insert(
                        key,
                        Sess {
                            data,
                            meta: MetaCollector::new(),
                            last_message: None,
                            main_path: None,
                            queued: HashMap::new(),
                            dirty: false,
                        },
                    );
                }
                None => {
                    let aside = path.with_extension(format!("corrupt-{}", std::process::id()));
                    let _ = std::fs::rename(&path, &aside);
                    let msg = format!(
                        "recording state {} is unreadable; set aside as {}",
                        path.display(),
                        aside.display()
                    );
                    self.warnings.push(msg.clone());
                    self.audit(Entry {
                        stage: "orchestrate".into(),
                        event: "state.quarantined".into(),
                        decision: "info".into(),
                        target: Some(path.display().to_string()),
                        reason: Some("unreadable recording state".into()),
                        ..Entry::default()
                    });
                }
            }
        }
    }

    /// Finish what a crash interrupted: replay intents, restart snapshots.
    pub fn recover(&mut self, stages: &mut dyn Stages) {
        let keys: Vec<_> = self.sessions.keys().cloned().collect();
        for key in keys {
            let ids: Vec<String> = self.sessions[&key]
                .data
                .recordings
                .keys()
                .cloned()
                .collect();
            for id in ids {
                self.retry(&key, &id, stages);
            }
        }
    }

    /// Heartbeat: retry paused recordings (a full disk may have space again).
    pub fn heartbeat(&mut self, stages: &mut dyn Stages) {
        let paused: Vec<_> = self
            .sessions
            .iter()
            .flat_map(|(k, s)| {
                s.data
                    .recordings
                    .values()
                    .filter(|r| r.paused.is_some() || r.intent.is_some())
                    .map(move |r| (k.clone(), r.id.clone()))
            })
            .collect();
        for (key, id) in paused {
            self.retry(&key, &id, stages);
        }
        self.save_dirty();
    }

    fn retry(&mut self, key: &(String, String), id: &str, stages: &mut dyn Stages) {
        let Some(rec) = self
            .sessions
            .get(key)
            .and_then(|s| s.data.recordings.get(id))
        else {
            return;
        };
        if rec.intent.is_some() {
            self.commit_intent(key, id, stages);
        }
        let needs_snapshot = self
            .sessions
            .get(key)
            .and_then(|s| s.data.recordings.get(id))
            .is_some_and(|r| r.snapshot.is_some() && r.paused.is_none());
        let replaying = self
            .sessions
            .get(key)
            .is_some_and(|s| s.queued.contains_key(id));
        if needs_snapshot && !replaying {
            self.start_replay(key, id, stages);
        }
    }

    /// Events of one batch, in order. `live_from`: index of the first live
    /// event (earlier ones are history).
    pub fn on_events(&mut self, path: &Path, events: &[(&Event, bool)], stages: &mut dyn Stages) {
        for &(ev, live) in events {
            let key = key_of(ev);
            let sess = self.sessions.entry(key.clone()).or_insert_with(|| Sess {
                data: SessionData {
                    provider: key.0.clone(),
                    session_id: key.1.clone(),
                    commands: SessionState::new(key.1.clone()),
                    recordings: BTreeMap::new(),
                },
                meta: MetaCollector::new(),
                last_message: None,
                main_path: None,
                queued: HashMap::new(),
                dirty: false,
            });
            sess.meta.observe(ev);
            if ev.is_human_message() {
                sess.last_message = Some(ev.clone());
                sess.main_path = Some(path.to_path_buf());
            }
            if let Payload::KatoCommand { .. } = &ev.payload {
                self.flush_pending(stages);
                self.command(&key, ev, live, stages);
                continue;
            }
            // A live event goes to every active recording. An event read as
            // history (kato lost its cursor in a crash and read the file
            // anew) still continues a recording that already follows this
            // file: the watermark, not the history flag, decides.
            let tag = ev.source.file.clone().unwrap_or_default();
            let active: Vec<String> = sess
                .data
                .recordings
                .values()
                .filter(|r| r.active && (live || r.marks.contains_key(&tag)))
                .map(|r| r.id.clone())
                .collect();
            for id in active {
                self.record_event(&key, &id, ev.clone());
            }
        }
        self.flush_pending(stages);
        self.save_dirty();
    }

    /// Queue one live event for a recording (rendered at the next flush).
    fn record_event(&mut self, key: &(String, String), id: &str, ev: Event) {
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        if let Some(q) = sess.queued.get_mut(id) {
            q.push_back(ev);
            return;
        }
        let Some(rec) = sess.data.recordings.get_mut(id) else {
            return;
        };
        let tag = ev.source.file.clone().unwrap_or_default();
        let mark = rec.marks.entry(tag).or_default();
        if ev.source.offset < mark.offset
            || (ev.source.offset == mark.offset && mark.ids.contains(&ev.event_id))
        {
            return; // re-delivered after a restart: already recorded
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
        match &mut rec.intent {
            Some(i) => i.text.push_str(&text),
            None => {
                rec.intent = Some(Intent {
                    base: rec.len,
                    text,
                })
            }
        }
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
                event: "redaction".into(),
                decision: "info".into(),
                provider: Some(key.0.clone()),
                session: Some(key.1.clone()),
                reason: Some(r.label.as_str().to_owned()),
                detail: serde_json::json!({"event_id": r.event_id, "bytes": r.bytes, "recording": id}),
                ..Entry::default()
            })
            .collect();
        for a in audits {
            self.audit(a);
        }
    }

    /// Persist intents, then hand them to the writers.
    fn flush_pending(&mut self, stages: &mut dyn Stages) {
        let pending: Vec<((String, String), String)> = self
            .sessions
            .iter()
            .flat_map(|(k, s)| {
                s.data
                    .recordings
                    .values()
                    .filter(|r| r.intent.is_some() && r.paused.is_none())
                    .map(move |r| (k.clone(), r.id.clone()))
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        self.save_dirty();
        for (key, id) in pending {
            self.commit_intent(&key, &id, stages);
        }
        self.save_dirty();
    }

    /// Append a recording's intent through its writer.
    fn commit_intent(&mut self, key: &(String, String), id: &str, stages: &mut dyn Stages) {
        // The intent must be durable before the append. Every path that
        // plans an intent marks the session dirty, so a clean session's
        // intent is already on disk (saved by `flush_pending`, or loaded).
        if self.sessions.get(key).is_some_and(|s| s.dirty) {
            self.save_session(key);
        }
        let Some((base, text, dest)) = self.sessions.get(key).and_then(|s| {
            let r = s.data.recordings.get(id)?;
            let i = r.intent.as_ref()?;
            Some((i.base, i.text.clone(), r.dest.clone()))
        }) else {
            return;
        };
        let result = self
            .writer_for(key, id, &dest, stages)
            .and_then(|w| w.append(base, text.into_bytes()));
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(rec) = sess.data.recordings.get_mut(id) else {
            return;
        };
        match result {
            Ok(len) => {
                rec.len = len;
                rec.intent = None;
                if rec.paused.take().is_some() {
                    let msg = format!(
                        "recording {} to {} resumed",
                        rec.id,
                        rec.dest.path.display()
                    );
                    self.warnings.push(msg);
                }
            }
            Err(e) => {
                let newly = rec.paused.is_none();
                rec.paused = Some(e.to_string());
                let dest = rec.dest.path.display().to_string();
                let rid = rec.id.clone();
                if matches!(e, WriteError::Gone | WriteError::Open(_)) {
                    self.writers.remove(id);
                }
                if newly {
                    self.warnings
                        .push(format!("recording {rid} to {dest} paused: {e}"));
                    self.audit(Entry {
                        stage: "write".into(),
                        event: "recording.paused".into(),
                        decision: "deny".into(),
                        provider: Some(key.0.clone()),
                        session: Some(key.1.clone()),
                        target: Some(dest),
                        reason: Some(e.to_string()),
                        ..Entry::default()
                    });
                }
            }
        }
        if let Some(s) = self.sessions.get_mut(key) {
            s.dirty = true;
        }
    }

    fn writer_for(
        &mut self,
        _key: &(String, String),
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

    /// One command event.
    fn command(&mut self, key: &(String, String), ev: &Event, live: bool, stages: &mut dyn Stages) {
        let Payload::KatoCommand {
            raw,
            line,
            message_id,
            ..
        } = &ev.payload
        else {
            return;
        };
        let base = Entry {
            stage: "orchestrate".into(),
            provider: Some(key.0.clone()),
            session: Some(key.1.clone()),
            raw: Some(raw.clone()),
            ..Entry::default()
        };
        let parsed = commands::scan(raw)
            .into_iter()
            .next()
            .map(|l| l.parsed)
            .unwrap_or(Err(commands::CommandError::NotACommand));
        let cmd = match parsed {
            Ok(c) => c,
            Err(reason) => {
                self.audit(Entry {
                    event: "command.rejected".into(),
                    decision: "deny".into(),
                    reason: Some(reason.to_string()),
                    detail: serde_json::json!({"event_id": ev.event_id, "live": live}),
                    ..base
                });
                if let Some(s) = self.sessions.get_mut(key) {
                    s.data.commands.done.insert(ev.event_id.clone());
                    s.dirty = true;
                }
                return;
            }
        };
        self.audit(Entry {
            event: "command.parsed".into(),
            decision: "allow".into(),
            detail: serde_json::json!({"event_id": ev.event_id, "name": cmd.name.as_str()}),
            ..base.clone()
        });
        let date = ev
            .timestamp
            .clone()
            .unwrap_or_else(crate::audit::now_rfc3339);
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        let title = sess.meta.clone().finish().title;
        let default_name = recording::default_file_name(&date, &key.0, &title, &key.1);
        let default_dest = self.default_dir.join(default_name);
        let policy = &self.policy;
        let denied: std::cell::RefCell<Option<(String, String)>> = std::cell::RefCell::new(None);
        let check = |p: &Path| -> Result<PathBuf, crate::policy::Denied> {
            match policy.check(p.as_os_str()) {
                Ok(t) => Ok(t.path),
                Err(d) => {
                    *denied.borrow_mut() = Some((p.display().to_string(), d.to_string()));
                    Err(d)
                }
            }
        };
        let deflt = || default_dest.clone();
        let ctx = Ctx {
            event_id: &ev.event_id,
            at: At {
                message_id: message_id.clone(),
                line: *line,
            },
            historical: !live,
            default_dest: &deflt,
            check: &check,
        };
        let outcome = sess.data.commands.apply(&cmd, &ctx);
        sess.dirty = true;
        let denied = denied.into_inner();
        match outcome {
            Outcome::AlreadyDone => {}
            Outcome::SkippedHistorical => self.audit(Entry {
                event: "command.skipped-historical".into(),
                decision: "skip".into(),
                reason: Some("the command was already in the file when kato first read it".into()),
                ..base
            }),
            Outcome::Rejected(reason) => {
                if let Some((target, why)) = denied {
                    self.audit(Entry {
                        stage: "orchestrate".into(),
                        event: "write.denied".into(),
                        decision: "deny".into(),
                        target: Some(target),
                        reason: Some(why),
                        ..base.clone()
                    });
                }
                self.audit(Entry {
                    event: "command.rejected".into(),
                    decision: "deny".into(),
                    reason: Some(reason),
                    ..base
                });
            }
            Outcome::Executed(actions) => {
                for a in &actions {
                    let (dest, id) = match a {
                        Action::Prepare { dest, recording_id }
                        | Action::Snapshot {
                            dest, recording_id, ..
                        }
                        | Action::Start {
                            dest, recording_id, ..
                        }
                        | Action::Stop { dest, recording_id } => (dest, recording_id),
                    };
                    if !matches!(a, Action::Stop { .. }) {
                        self.audit(Entry {
                            stage: "orchestrate".into(),
                            event: "write.allowed".into(),
                            decision: "allow".into(),
                            target: Some(dest.path.display().to_string()),
                            detail: serde_json::json!({"recording": id}),
                            ..base.clone()
                        });
                    }
                }
                self.audit(Entry {
                    event: "command.executed".into(),
                    decision: "allow".into(),
                    detail: serde_json::json!({"name": cmd.name.as_str(), "actions": actions.len()}),
                    ..base
                });
                for a in actions {
                    self.act(key, a, stages);
                }
            }
        }
    }

    fn ensure_rec(&mut self, key: &(String, String), dest: &Dest, id: &str) {
        let exists_on_disk = std::fs::symlink_metadata(&dest.path).map(|m| m.len()).ok();
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        sess.data
            .recordings
            .entry(id.to_owned())
            .or_insert_with(|| Rec {
                id: id.to_owned(),
                dest: dest.clone(),
                created: exists_on_disk.is_none(),
                active: false,
                len: exists_on_disk.unwrap_or(0),
                render: None,
                marks: BTreeMap::new(),
                intent: None,
                snapshot: None,
                paused: None,
                events: 0,
                redactions: BTreeMap::new(),
            });
        sess.dirty = true;
    }

    fn act(&mut self, key: &(String, String), action: Action, stages: &mut dyn Stages) {
        match action {
            Action::Prepare { dest, recording_id } => {
                self.ensure_rec(key, &dest, &recording_id);
                self.prepare_header(key, &recording_id);
                self.flush_pending(stages);
            }
            Action::Start {
                dest,
                recording_id,
                from,
            } => {
                self.ensure_rec(key, &dest, &recording_id);
                self.prepare_header(key, &recording_id);
                let first = self.slice_message(key, &from, Slice::From);
                let anchor = self
                    .sessions
                    .get(key)
                    .and_then(|s| s.last_message.as_ref())
                    .filter(|m| m.event_id == from.message_id)
                    .map(|m| {
                        (
                            m.source.file.clone().unwrap_or_default(),
                            m.source.offset,
                            m.event_id.clone(),
                        )
                    });
                if let Some(rec) = self
                    .sessions
                    .get_mut(key)
                    .and_then(|s| s.data.recordings.get_mut(&recording_id))
                {
                    rec.active = true;
                    rec.paused = None;
                    // Everything up to the command's message is covered
                    // (by the snapshot, or by not being part of the recording).
                    if let Some((tag, offset, id)) = anchor {
                        let mark = rec.marks.entry(tag).or_default();
                        if offset > mark.offset {
                            *mark = Mark {
                                offset,
                                ids: vec![id],
                            };
                        } else if offset == mark.offset && !mark.ids.contains(&id) {
                            mark.ids.push(id);
                        }
                    }
                }
                if let Some(ev) = first {
                    self.record_event(key, &recording_id, ev);
                }
                self.flush_pending(stages);
            }
            Action::Stop { recording_id, .. } => {
                self.flush_pending(stages);
                if let Some(rec) = self
                    .sessions
                    .get_mut(key)
                    .and_then(|s| s.data.recordings.get_mut(&recording_id))
                {
                    rec.active = false;
                }
                // The old writer is ended after it flushed.
                if let Some(w) = self.writers.remove(&recording_id) {
                    w.close();
                }
            }
            Action::Snapshot {
                dest,
                recording_id,
                upto,
            } => {
                let export_only = !self
                    .sessions
                    .get(key)
                    .is_some_and(|s| s.data.commands.registry.contains_key(&dest.path));
                self.ensure_rec(key, &dest, &recording_id);
                let Some(sess) = self.sessions.get_mut(key) else {
                    return;
                };
                let mut meta = sess.meta.clone().finish();
                meta.recording_ids = vec![recording_id.clone()];
                if let Some(rec) = sess.data.recordings.get_mut(&recording_id) {
                    rec.snapshot = Some(Snapshot {
                        upto,
                        base: rec.len,
                        planned: 0,
                        meta,
                        export_only,
                        render: None,
                        reached: false,
                    });
                    rec.render = None;
                }
                sess.dirty = true;
                self.save_session(key);
                self.start_replay(key, &recording_id, stages);
            }
        }
    }

    /// For a new file, the frontmatter and title open the recording.
    fn prepare_header(&mut self, key: &(String, String), id: &str) {
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        let mut meta = sess.meta.clone().finish();
        let Some(rec) = sess.data.recordings.get_mut(id) else {
            return;
        };
        if rec.render.is_some() || rec.snapshot.is_some() {
            return;
        }
        if !rec.created || rec.len > 0 {
            rec.render = Some(RenderState::appending());
            return;
        }
        meta.recording_ids = vec![id.to_owned()];
        let mut text = Vec::new();
        let state = if rec.dest.format == Format::Markdown {
            let mut r = MarkdownRenderer::new(&mut text, &self.markdown);
            let _ = r.header(&meta);
            let st = r.state().clone();
            drop(r);
            st
        } else {
            RenderState::default()
        };
        rec.render = Some(state);
        let text = String::from_utf8(text).unwrap_or_default();
        match &mut rec.intent {
            Some(i) => i.text.push_str(&text),
            None => {
                rec.intent = Some(Intent {
                    base: rec.len,
                    text,
                })
            }
        }
        sess.dirty = true;
    }

    /// The part of the message holding a command: lines from the command
    /// on (`From`), or up to and including it (`UpTo`).
    fn slice_message(&self, key: &(String, String), at: &At, how: Slice) -> Option<Event> {
        let msg = self.sessions.get(key)?.last_message.as_ref()?;
        if msg.event_id != at.message_id {
            return None;
        }
        slice(msg, at.line, how)
    }

    fn start_replay(&mut self, key: &(String, String), id: &str, stages: &mut dyn Stages) {
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(path) = sess.main_path.clone() else {
            // Nothing seen yet in this run (a restart mid-snapshot): the
            // replay waits until the session's file shows up again.
            return;
        };
        let Some(rec) = sess.data.recordings.get_mut(id) else {
            return;
        };
        let Some(snap) = &mut rec.snapshot else {
            return;
        };
        snap.planned = 0;
        snap.reached = false;
        let upto = snap.upto.message_id.clone();
        sess.queued.entry(id.to_owned()).or_default();
        let provider = crate::provider::by_name(&key.0).map(|p| p.id().as_str());
        if let Some(provider) = provider {
            stages.replay(
                provider,
                &path,
                ReplayKey {
                    provider: key.0.clone(),
                    session: key.1.clone(),
                    recording: id.to_owned(),
                },
                upto,
            );
        }
    }

    /// Events of a replay (a capture or export) arrive here in order.
    pub fn on_replayed(
        &mut self,
        rk: &ReplayKey,
        events: &[Event],
        done: bool,
        stages: &mut dyn Stages,
    ) {
        let key = (rk.provider.clone(), rk.session.clone());
        let Some(sess) = self.sessions.get_mut(&key) else {
            return;
        };
        let Some(rec) = sess.data.recordings.get_mut(&rk.recording) else {
            return;
        };
        let Some(snap) = &mut rec.snapshot else {
            return;
        };
        let markdown = rec.dest.format == Format::Markdown;
        let mut text = String::new();
        if snap.render.is_none() {
            let mut out = Vec::new();
            let st = if markdown {
                if rec.created && snap.base == 0 {
                    let mut r = MarkdownRenderer::new(&mut out, &self.markdown);
                    let _ = r.header(&snap.meta);
                    r.state().clone()
                } else {
                    RenderState::appending()
                }
            } else {
                RenderState::default()
            };
            snap.render = Some(st);
            text.push_str(&String::from_utf8_lossy(&out));
        }
        let mut stats = RedactionStats::default();
        for ev in events {
            if snap.reached {
                break;
            }
            if ev.session_id != rk.session {
                continue;
            }
            let mut ev = if ev.event_id == snap.upto.message_id {
                snap.reached = true;
                match slice(ev, snap.upto.line, Slice::UpTo) {
                    Some(e) => e,
                    None => continue,
                }
            } else {
                ev.clone()
            };
            if matches!(ev.payload, Payload::KatoCommand { .. }) {
                continue;
            }
            self.redactor.redact_event(&mut ev, &mut stats);
            let st = snap.render.take().unwrap_or_default();
            let (chunk, st) = render_with(&self.markdown, rec.dest.format, st, &ev);
            snap.render = Some(st);
            text.push_str(&chunk);
        }
        for r in &stats.redactions {
            *rec.redactions
                .entry(r.label.as_str().to_owned())
                .or_default() += 1;
        }
        if !text.is_empty() {
            let base = snap.base + snap.planned;
            snap.planned += text.len() as u64;
            // Snapshot chunks are planned positions, not the current length:
            // a recovery re-plans from the snapshot's base and the writer
            // skips what is already there.
            match &mut rec.intent {
                Some(i) if i.base + i.text.len() as u64 == base => i.text.push_str(&text),
                _ => rec.intent = Some(Intent { base, text }),
            }
        }
        let finished = done || snap.reached;
        let export_only = snap.export_only;
        let after = snap.render.clone();
        sess.dirty = true;
        let id = rk.recording.clone();
        self.commit_intent(&key, &id, stages);
        if !finished {
            return;
        }
        let Some(sess) = self.sessions.get_mut(&key) else {
            return;
        };
        let queued = sess.queued.remove(&id).unwrap_or_default();
        if let Some(rec) = sess.data.recordings.get_mut(&id) {
            if rec.intent.is_none() {
                rec.snapshot = None;
            }
            rec.render = after;
            if export_only {
                rec.active = false;
            }
        }
        sess.dirty = true;
        for ev in queued {
            self.record_event(&key, &id, ev);
        }
        self.flush_pending(stages);
        if export_only {
            if let Some(w) = self.writers.remove(&id) {
                w.close();
            }
        }
        self.save_dirty();
    }

    fn save_session(&mut self, key: &(String, String)) {
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        let name = format!(
            "{}.json",
            &crate::audit::hex_sha256(format!("{}\0{}", key.0, key.1).as_bytes())[..24]
        );
        let path = self.dir.join(name);
        match serde_json::to_vec(&sess.data) {
            Ok(bytes) => match super::state::write_atomic(&path, &bytes, true) {
                Ok(()) => sess.dirty = false,
                Err(e) => {
                    let msg = format!("cannot save the recording state {}: {e}", path.display());
                    self.warnings.push(msg);
                }
            },
            Err(e) => self
                .warnings
                .push(format!("cannot encode recording state: {e}")),
        }
    }

    fn save_dirty(&mut self) {
        let keys: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.save_session(&k);
        }
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
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.session, &a.id).cmp(&(&b.session, &b.id)));
        out
    }

    /// Orderly shutdown: persist, end writers after they flushed.
    pub fn shutdown(&mut self) {
        self.save_dirty();
        for (_, w) in self.writers.drain() {
            w.close();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slice {
    From,
    UpTo,
}

/// A copy of a human message with only some of its lines.
fn slice(msg: &Event, line: u32, how: Slice) -> Option<Event> {
    let Payload::UserMessage { text, attachments } = &msg.payload else {
        return None;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let n = line as usize;
    let part: Vec<&str> = match how {
        Slice::From => lines.get(n..)?.to_vec(),
        Slice::UpTo => lines.get(..=n.min(lines.len().saturating_sub(1)))?.to_vec(),
    };
    let text = part.join("\n");
    if text.trim().is_empty() {
        return None;
    }
    let mut ev = msg.clone();
    if how == Slice::From && n > 0 {
        ev.event_id = format!("{}@{n}", msg.event_id);
    }
    ev.payload = Payload::UserMessage {
        text,
        attachments: *attachments,
    };
    Some(ev)
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
mod tests {
    use super::*;
    use crate::event::{ProviderId, Source};

    fn msg(text: &str) -> Event {
        Event::new(
            ProviderId("claude"),
            "s",
            "m1",
            Source {
                record: "user".into(),
                offset: 0,
                file: None,
            },
            Payload::UserMessage {
                text: text.into(),
                attachments: 0,
            },
        )
    }

    fn text_of(ev: &Event) -> &str {
        match &ev.payload {
            Payload::UserMessage { text, .. } => text,
            _ => "",
        }
    }

    #[test]
    fn slices_split_a_message_at_the_command() {
        let m = msg("before\n::capture /x\nafter");
        assert_eq!(
            text_of(&slice(&m, 1, Slice::UpTo).unwrap()),
            "before\n::capture /x"
        );
        let from = slice(&m, 2, Slice::From).unwrap();
        assert_eq!(text_of(&from), "after");
        assert_eq!(from.event_id, "m1@2");
        assert!(slice(&m, 3, Slice::From).is_none());
        let m = msg("::record\nhello");
        let from = slice(&m, 0, Slice::From).unwrap();
        assert_eq!(text_of(&from), "::record\nhello");
        assert_eq!(from.event_id, "m1");
    }
}
