//! The watch+parse stage of one provider.
//!
//! One thread per enabled provider. It watches directories under the
//! provider's roots with inotify (one non-recursive watch per directory,
//! found by a walk that never follows symlinks), reads what changed with
//! [`read_increment`] from the cursor it holds for each file, and sends the
//! events to the orchestrator. It never writes anything.
//!
//! Invariant: a watch is only ever added on a directory under a configured
//! root (the root itself included), never on an ancestor of a root or on
//! anything a symlink points to. A root that does not exist is checked
//! again on the orchestrator's heartbeat.
//!
//! History and live: what a file holds when kato first sees it is history;
//! whatever is appended later is live. A file kato saw being created (an
//! inotify create, or a file inside a directory it saw being created, or a
//! file born after its directory was watched) is live from its first byte.
//! Files known from the persisted state resume from their cursor: all of
//! that is live, including what was appended while kato was down.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};

use super::{Batch, Commit, Known, ToOrch};
use crate::discover::Visit;
use crate::event::Event;
use crate::event::ProviderId;
use crate::provider::{FileCtx, Provider, SourceKind};
use crate::reader::{read_increment, Cursor, FileIdentity, Limits, Tail};

use super::status::RootStatus;

/// A large pass is sent in batches of at most this many events …
const BATCH_EVENTS: usize = 1024;
/// … or spanning at most this many bytes of the file. Small enough that
/// the batches in flight (the channel's bound) stay a few MiB: a history
/// ingest would otherwise leave its peak allocated in the daemon.
const BATCH_SPAN: u64 = 256 << 10;
/// How long after its `-wal` last changed a database is read once more.
const DATABASE_RECHECK: Duration = Duration::from_millis(250);
/// Parse attempts before a crashing file is quarantined.
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// Messages to a stage.
#[derive(Debug)]
pub(crate) enum StageMsg {
    Fs(notify::Result<notify::Event>),
    /// Heartbeat: look for roots that did not exist.
    Tick,
    /// Send the events of `path` from its start up to and including the
    /// message `upto` again (a capture or export snapshot).
    Replay {
        path: PathBuf,
        key: super::record::ReplayKey,
        upto: String,
    },
    Stop,
}

/// Events per message of a snapshot replay.
const REPLAY_BATCH: usize = 512;

/// What a stage starts from.
pub(crate) struct StageInit {
    pub provider: &'static dyn Provider,
    pub roots: Vec<PathBuf>,
    /// The roots the stage's confinement domain grants (those that exist
    /// and may be followed); the others are left to the supervisor, which
    /// starts a new stage when one appears. `None` when the stage is not
    /// confined (unit tests).
    pub covered: Option<Vec<PathBuf>>,
    /// Under confinement, for a provider that narrows its roots
    /// ([`Provider::reach`]): the files the domain grants one by one, with
    /// their identities (device, inode) when it was built.
    pub granted: Option<BTreeMap<PathBuf, (u64, u64)>>,
    pub known: Vec<Known>,
    pub limits: Limits,
    pub rescan: Duration,
    pub out: SyncSender<ToOrch>,
    pub rx: Receiver<StageMsg>,
    pub tx: Sender<StageMsg>,
    pub stop: Arc<AtomicBool>,
}

/// Adding and removing directory watches; a trait so tests can record them.
pub(crate) trait Watch {
    fn add(&mut self, dir: &Path) -> Result<(), WatchError>;
    fn remove(&mut self, dir: &Path);
}

impl Watch for notify::INotifyWatcher {
    fn add(&mut self, dir: &Path) -> Result<(), WatchError> {
        self.watch(dir, RecursiveMode::NonRecursive)
            .map_err(WatchError::from)
    }
    fn remove(&mut self, dir: &Path) {
        let _ = self.unwatch(dir);
    }
}

/// An inotify failure; resource exhaustion is turned into advice.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WatchError {
    #[error(
        "inotify watch limit reached ({0}); raise it with `sysctl fs.inotify.max_user_watches=524288`"
    )]
    WatchLimit(#[source] notify::Error),
    #[error(
        "too many open files ({0}); raise `ulimit -n` or `sysctl fs.inotify.max_user_instances`"
    )]
    OpenFiles(#[source] notify::Error),
    #[error(transparent)]
    Other(notify::Error),
}

impl From<notify::Error> for WatchError {
    fn from(e: notify::Error) -> WatchError {
        match &e.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::WatchLimit(e),
            notify::ErrorKind::Io(io) if io.raw_os_error() == Some(24) => WatchError::OpenFiles(e),
            _ => WatchError::Other(e),
        }
    }
}

/// Why a provider stage ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StageError {
    #[error("cannot start inotify: {0}")]
    Start(#[source] WatchError),
}

/// Forwards the watcher's events into the stage channel, dropping those the
/// stage never acts on (opens, reads and closes — including kato's own —
/// and metadata changes) so reading a file does not wake the stage again.
struct Forward(Sender<StageMsg>);

impl notify::EventHandler for Forward {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        if let Ok(ev) = &event {
            if !relevant(ev) {
                return;
            }
        }
        let _ = self.0.send(StageMsg::Fs(event));
    }
}

fn relevant(ev: &notify::Event) -> bool {
    ev.need_rescan()
        || matches!(
            ev.kind,
            EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(
                    ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any | ModifyKind::Other
                )
        )
}

/// Run a provider stage until told to stop. An `Err` is reported to the
/// supervisor, which restarts the stage with backoff.
pub(crate) fn run(init: StageInit) -> Result<(), StageError> {
    let covered = init.covered;
    // Created after confinement: notify's own thread inherits the domain.
    let watcher = notify::INotifyWatcher::new(
        Forward(init.tx.clone()),
        notify::Config::default().with_follow_symlinks(false),
    )
    .map_err(|e| StageError::Start(e.into()))?;
    let rescan = init.rescan;
    let rx_stop = init.stop.clone();
    let mut stage = Stage::new(
        init.provider,
        init.roots,
        init.known,
        init.limits,
        init.out,
        init.stop,
        watcher,
    );
    stage.covered = covered;
    stage.granted = init.granted;
    stage.start();
    let rx = init.rx;
    let mut next_rescan = Instant::now() + rescan;
    loop {
        if rx_stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let now = Instant::now();
        let first = if stage.has_work() {
            match rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return Ok(()),
            }
        } else {
            let mut deadline = next_rescan;
            if let Some(t) = stage.next_retry() {
                deadline = deadline.min(t);
            }
            match rx.recv_timeout(deadline.saturating_duration_since(now)) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        };
        let mut msgs: Vec<StageMsg> = first.into_iter().collect();
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        for m in msgs {
            match m {
                StageMsg::Stop => return Ok(()),
                StageMsg::Tick => stage.check_roots(),
                StageMsg::Fs(ev) => stage.on_fs(ev),
                StageMsg::Replay { path, key, upto } => stage.replay(&path, key, &upto),
            }
        }
        if Instant::now() >= next_rescan {
            stage.rescan();
            next_rescan = Instant::now() + rescan;
        }
        stage.work_step(Instant::now());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The first walk of a stage.
    Startup,
    /// The periodic safety-net walk, or one after an inotify overflow.
    Rescan,
    /// A root that did not exist before.
    RootAppeared,
    /// A directory created under a watched one: its files are new.
    DirCreated,
    /// A directory moved in from elsewhere: its files are not new.
    DirMovedIn,
    /// An inotify create (or first write) of the file itself.
    FileCreated,
    /// A file renamed into a watched directory.
    FileMovedIn,
}

struct Entry {
    ctx: FileCtx,
    cursor: Cursor,
    /// Size and mtime before the last committed pass.
    size: u64,
    mtime_ns: i64,
    /// Events at offsets below this are history.
    history_until: u64,
    attempts: u32,
    /// Events of a failed pass already delivered; skipped when the same
    /// pass is tried again.
    skip: usize,
    quarantined: Option<Option<FileIdentity>>,
}

/// Whether every file SQLite opens to read the database at `path` (it,
/// and its `-wal`, `-shm`, `-journal` that exist) is in `granted` as it
/// is now (same inode). Always, when the stage is not narrowed.
fn within_grant(granted: Option<&BTreeMap<PathBuf, (u64, u64)>>, path: &Path) -> bool {
    let Some(granted) = granted else {
        return true;
    };
    // A link is never granted ([`crate::database::reach`]): asking for it
    // would only start the same stage again.
    crate::database::readable_files(path).iter().all(|f| {
        fs::symlink_metadata(f)
            .is_ok_and(|m| !m.is_file() || granted.get(f) == Some(&(m.dev(), m.ino())))
    })
}

/// The identity (device, inode) of each of `paths` that exists now.
pub(crate) fn identities(paths: &[PathBuf]) -> BTreeMap<PathBuf, (u64, u64)> {
    paths
        .iter()
        .filter_map(|p| {
            let m = fs::metadata(p).ok()?;
            Some((p.clone(), (m.dev(), m.ino())))
        })
        .collect()
}

/// Will the reader start the file over (another file at the path, a
/// truncation, or a parser state it cannot restore)? Then events already
/// handled come again, and the orchestrator drops them by id.
fn starts_over(provider: &dyn Provider, entry: &Entry, identity: FileIdentity, len: u64) -> bool {
    entry.cursor.identity.is_some_and(|id| id != identity)
        || len < entry.cursor.offset
        || entry
            .cursor
            .parser
            .restore_into(provider.parser(&entry.ctx).as_mut())
            .is_err()
}

pub(crate) struct Stage<W: Watch> {
    provider: &'static dyn Provider,
    name: ProviderId,
    roots: Vec<(PathBuf, bool)>,
    /// Watched directories and when the watch was added.
    watched: HashMap<PathBuf, SystemTime>,
    /// Boxed, so the table's spare slots stay small.
    files: HashMap<PathBuf, Box<Entry>>,
    dirty: BTreeSet<PathBuf>,
    backlog: VecDeque<PathBuf>,
    retries: BTreeMap<PathBuf, Instant>,
    /// Databases to read once more a moment after their `-wal` last
    /// changed: a writer updates the WAL index (in the `-shm`, a shared
    /// mapping inotify does not see) after the WAL write that woke the
    /// stage, so a read at once can miss the last commit.
    rechecks: BTreeMap<PathBuf, Instant>,
    limits: Limits,
    out: SyncSender<ToOrch>,
    stop: Arc<AtomicBool>,
    watcher: W,
    /// Under confinement: the roots the stage's domain grants. A root not
    /// in it (missing when the stage started, or refused) is never walked
    /// here; the supervisor starts a new stage that includes it.
    pub(crate) covered: Option<Vec<PathBuf>>,
    /// [`StageInit::granted`]; `regrant_asked`: the supervisor was told a
    /// file is missing from it (once: a new stage follows, or the read
    /// goes ahead and says why it failed).
    pub(crate) granted: Option<BTreeMap<PathBuf, (u64, u64)>>,
    regrant_asked: bool,
    /// Files the startup walk found (to report known files that are gone).
    seen: Option<HashSet<PathBuf>>,
    /// Paths reported as skipped: their removal takes the warning off.
    skip_reported: HashSet<PathBuf>,
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

impl<W: Watch> Stage<W> {
    pub(crate) fn new(
        provider: &'static dyn Provider,
        roots: Vec<PathBuf>,
        known: Vec<Known>,
        limits: Limits,
        out: SyncSender<ToOrch>,
        stop: Arc<AtomicBool>,
        watcher: W,
    ) -> Stage<W> {
        let mut files = HashMap::new();
        for k in known {
            let ctx = crate::provider::ctx_for_path(provider, &k.path);
            let ctx = roots
                .iter()
                .find_map(|r| k.path.strip_prefix(r).ok())
                .and_then(|rel| provider.classify(rel))
                .unwrap_or(ctx);
            files.insert(
                k.path,
                Box::new(Entry {
                    ctx,
                    cursor: k.cursor,
                    size: k.size,
                    mtime_ns: k.mtime_ns,
                    history_until: 0,
                    attempts: 0,
                    skip: 0,
                    quarantined: k.quarantined,
                }),
            );
        }
        Stage {
            provider,
            name: provider.id(),
            roots: roots.into_iter().map(|r| (r, false)).collect(),
            watched: HashMap::new(),
            files,
            dirty: BTreeSet::new(),
            backlog: VecDeque::new(),
            retries: BTreeMap::new(),
            rechecks: BTreeMap::new(),
            limits,
            out,
            stop,
            watcher,
            covered: None,
            granted: None,
            regrant_asked: false,
            seen: None,
            skip_reported: HashSet::new(),
        }
    }

    fn send(&self, m: ToOrch) {
        let _ = self.out.send(m);
    }

    /// Read `path` from its start with a fresh parser and send its events
    /// up to and including the event `upto` (or all, if it never comes).
    pub(crate) fn replay(&self, path: &Path, key: super::record::ReplayKey, upto: &str) {
        let ctx = match self.files.get(path) {
            Some(e) => e.ctx.clone(),
            None => crate::provider::ctx_for_path(self.provider, path),
        };
        let mut batch = Vec::new();
        let mut reached = false;
        let mut take = |ev: Event| {
            if reached {
                return;
            }
            reached = ev.event_id == upto;
            batch.push(ev);
            if batch.len() >= REPLAY_BATCH {
                self.send(ToOrch::Replayed {
                    key: key.clone(),
                    events: std::mem::take(&mut batch),
                    done: false,
                });
            }
        };
        let result = if self.provider.file_source_kind(&ctx) == SourceKind::Database {
            // A database holds many sessions: this one (and its children).
            crate::database::read(
                path,
                Some(&key.session.session),
                self.provider,
                &ctx,
                self.limits,
                Tail::Hold,
                &mut take,
            )
        } else {
            open_session_file(path).and_then(|mut file| {
                read_increment(
                    &mut file,
                    self.provider,
                    &ctx,
                    &Cursor::default(),
                    self.limits,
                    Tail::Hold,
                    &mut take,
                )
            })
        };
        if let Err(e) = result {
            self.warn(format!(
                "cannot read {} again for a capture: {e}",
                path.display()
            ));
        }
        self.send(ToOrch::Replayed {
            key,
            events: batch,
            done: true,
        });
    }

    fn warn(&self, message: String) {
        self.send(ToOrch::Warning {
            provider: self.name,
            message,
        });
    }

    fn send_roots(&self) {
        self.send(ToOrch::Roots {
            provider: self.name,
            roots: self
                .roots
                .iter()
                .map(|(p, e)| RootStatus {
                    path: p.clone(),
                    exists: *e,
                })
                .collect(),
        });
    }

    fn send_backlog(&self) {
        self.send(ToOrch::Backlog {
            provider: self.name,
            files: self.backlog.len(),
        });
    }

    /// Watch the roots, find the files, catch up on the known ones, report
    /// ready; history of new files is read afterwards ([`Stage::work_step`]).
    pub(crate) fn start(&mut self) {
        self.seen = Some(HashSet::new());
        for i in 0..self.roots.len() {
            let root = self.roots[i].0.clone();
            if root.is_dir() && self.may_walk(&root) {
                self.roots[i].1 = true;
                self.scan(&root, Origin::Startup);
            }
        }
        let seen = self.seen.take().unwrap_or_default();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !seen.contains(*p))
            .filter(|p| self.root_of(p).is_some_and(|i| self.roots[i].1))
            // Gone, not merely unreadable or beyond the walk.
            .filter(|p| {
                fs::symlink_metadata(p).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            })
            .cloned()
            .collect();
        for path in gone {
            self.files.remove(&path);
            self.send(ToOrch::Gone {
                provider: self.name,
                path,
            });
        }
        self.send_roots();
        self.process_dirty();
        self.send(ToOrch::Ready {
            provider: self.name,
        });
        self.send_backlog();
    }

    /// The stage's domain grants `root` (always, when unconfined).
    fn may_walk(&self, root: &Path) -> bool {
        self.covered
            .as_ref()
            .is_none_or(|c| c.iter().any(|r| r == root))
    }

    pub(crate) fn has_work(&self) -> bool {
        !self.dirty.is_empty() || !self.backlog.is_empty()
    }

    fn next_retry(&self) -> Option<Instant> {
        self.retries
            .values()
            .chain(self.rechecks.values())
            .min()
            .copied()
    }

    /// Index of the root `path` lies under (the deepest one).
    fn root_of(&self, path: &Path) -> Option<usize> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, (r, _))| path.starts_with(r))
            .max_by_key(|(_, (r, _))| r.components().count())
            .map(|(i, _)| i)
    }

    fn depth_of(&self, path: &Path) -> Option<usize> {
        let i = self.root_of(path)?;
        path.strip_prefix(&self.roots[i].0)
            .ok()
            .map(|rel| rel.components().count())
    }

    fn watch_dir(&mut self, dir: &Path) {
        if self.watched.contains_key(dir) {
            return;
        }
        // The invariant, checked where it matters: nothing outside the roots.
        if self.root_of(dir).is_none() {
            debug_assert!(false, "watch outside the roots: {}", dir.display());
            return;
        }
        match self.watcher.add(dir) {
            Ok(()) => {
                self.watched.insert(dir.to_path_buf(), SystemTime::now());
            }
            Err(e) => self.warn(format!("cannot watch {}: {e}", dir.display())),
        }
    }

    /// Walk `top` (under a root): watch every directory (before listing it,
    /// so nothing created meanwhile is missed) and register every file.
    /// Symlinks are neither followed nor watched.
    fn scan(&mut self, top: &Path, origin: Origin) {
        let Some(depth0) = self.depth_of(top) else {
            return;
        };
        let provider = self.provider;
        // A directory created or moved in below a root: entered only if
        // the provider enters directories of its name.
        if depth0 > 0 && top.file_name().is_some_and(|n| !provider.descends_into(n)) {
            return;
        }
        let descend = |n: &std::ffi::OsStr| provider.descends_into(n);
        crate::discover::walk_tree(top, depth0, &descend, &mut |v| match v {
            Visit::Dir(dir) => self.watch_dir(dir),
            Visit::Unreadable(_, e, _) if e.kind() == std::io::ErrorKind::NotFound => {}
            Visit::Unreadable(dir, e, _)
                if e.kind() == std::io::ErrorKind::PermissionDenied && self.covered.is_some() =>
            {
                self.warn(format!(
                    "cannot read {}: {e} — outside this stage's confinement domain: a root \
                     replaced, or redirected by a symbolic link, after kato started is not \
                     followed; restart kato to read the new one",
                    dir.display()
                ));
            }
            Visit::Unreadable(dir, e, _) => {
                self.warn(format!("cannot read {}: {e}", dir.display()));
            }
            Visit::File(path) | Visit::Symlink(path) => self.found_file(&path, origin),
        });
    }

    /// A known file was seen again: it is read again if it changed (or
    /// was created or moved in), unless it is the file quarantined.
    fn known_file_seen(&mut self, path: &Path, meta: &fs::Metadata, origin: Origin) {
        let Some(e) = self.files.get(path) else {
            return;
        };
        let kind = self.provider.file_source_kind(&e.ctx);
        let identity = FileIdentity::of(meta);
        let changed = e.cursor.identity != Some(identity)
            // A database changes in its `-wal` as well: a new stage (after
            // a restart, or one whose domain takes in a new `-wal`) reads
            // it from its cursor.
            || (kind == SourceKind::Database && origin == Origin::Startup)
            || match kind {
                SourceKind::Jsonl | SourceKind::Lines => meta.len() != e.cursor.offset,
                // The reader refuses the kinds it cannot read yet
                // (`provider::Unsupported`): a change is one more refusal.
                SourceKind::Document | SourceKind::DirectoryStore | SourceKind::Database => {
                    meta.len() != e.size || mtime_ns(meta) != e.mtime_ns
                }
            };
        let quarantined_same = e
            .quarantined
            .is_some_and(|q| q.is_none() || q == Some(identity));
        if (changed || matches!(origin, Origin::FileCreated | Origin::FileMovedIn))
            && !quarantined_same
        {
            self.dirty.insert(path.to_path_buf());
            if kind == SourceKind::Database && origin == Origin::Startup {
                // A commit whose `-wal` write woke the stage before this
                // one (stopped for a restart) may not be in the WAL index
                // yet when this stage reads: its rows would wait for the
                // next write. Read once more a moment later.
                self.rechecks
                    .insert(path.to_path_buf(), Instant::now() + DATABASE_RECHECK);
            }
        }
    }

    /// Is a newly found file new (all of it live), rather than history?
    fn born(&self, path: &Path, meta: &fs::Metadata, origin: Origin) -> bool {
        match origin {
            Origin::DirCreated | Origin::FileCreated => true,
            Origin::Rescan => {
                // Missed by inotify (overflow): new if it was born after
                // its directory was watched.
                let watched_at = path.parent().and_then(|d| self.watched.get(d)).copied();
                match (meta.created(), watched_at) {
                    (Ok(b), Some(w)) => b >= w,
                    _ => false,
                }
            }
            Origin::Startup | Origin::RootAppeared | Origin::DirMovedIn | Origin::FileMovedIn => {
                false
            }
        }
    }

    /// A file was seen by a walk or an event.
    fn found_file(&mut self, path: &Path, origin: Origin) {
        if let Some(seen) = &mut self.seen {
            seen.insert(path.to_path_buf());
        }
        let Ok(meta) = fs::symlink_metadata(path) else {
            return;
        };
        if meta.is_symlink() {
            self.found_symlink(path);
            return;
        }
        if !meta.is_file() {
            return;
        }
        if self.files.contains_key(path) {
            self.known_file_seen(path, &meta, origin);
            return;
        }
        let Some(i) = self.root_of(path) else { return };
        let Ok(rel) = path.strip_prefix(&self.roots[i].0) else {
            return;
        };
        let Some(ctx) = self.provider.classify(rel) else {
            return;
        };
        let born = self.born(path, &meta, origin);
        let history_until = if born {
            0
        } else {
            match self.provider.file_source_kind(&ctx) {
                SourceKind::Jsonl | SourceKind::Lines => meta.len(),
                SourceKind::Document | SourceKind::DirectoryStore | SourceKind::Database => {
                    u64::MAX
                }
            }
        };
        self.files.insert(
            path.to_path_buf(),
            Box::new(Entry {
                ctx,
                cursor: Cursor::default(),
                size: 0,
                mtime_ns: 0,
                history_until,
                attempts: 0,
                skip: 0,
                quarantined: None,
            }),
        );
        if born {
            self.dirty.insert(path.to_path_buf());
        } else {
            self.backlog.push_back(path.to_path_buf());
        }
    }

    /// A symbolic link where a session file could be: never followed, and
    /// said in the status (what was read from a file it replaced is kept).
    /// Links to directories are said too: the sessions under one are not
    /// read. Any other link is not a session file and is passed over.
    fn found_symlink(&mut self, path: &Path) {
        let is_session_file = self
            .root_of(path)
            .and_then(|i| path.strip_prefix(&self.roots[i].0).ok())
            .is_some_and(|rel| self.provider.classify(rel).is_some());
        let reason = if self.files.contains_key(path) {
            SYMLINK_REPLACED
        } else if is_session_file {
            "a symbolic link; kato reads only regular files and never follows links"
        } else if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            "a symbolic link to a directory; kato never follows links, so the sessions under it are not read"
        } else {
            return;
        };
        self.skipped(path, reason.to_owned());
    }

    fn skipped(&mut self, path: &Path, reason: String) {
        self.skip_reported.insert(path.to_path_buf());
        self.send(ToOrch::Skipped {
            provider: self.name,
            path: path.to_path_buf(),
            reason: Some(reason),
        });
    }

    pub(crate) fn on_fs(&mut self, ev: notify::Result<notify::Event>) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                self.warn(WatchError::from(e).to_string());
                return;
            }
        };
        if ev.need_rescan() {
            tracing::info!(
                provider = self.name.as_str(),
                "inotify queue overflow: rescanning"
            );
            self.rescan();
            return;
        }
        for path in &ev.paths {
            if self.root_of(path).is_none() {
                continue;
            }
            // A database's rows change in its `-wal` (created, written,
            // truncated): read the database again.
            if let Some(db) = crate::database::database_of_wal(path) {
                if self.files.contains_key(&db) {
                    self.rechecks
                        .insert(db.clone(), Instant::now() + DATABASE_RECHECK);
                    self.dirty.insert(db);
                    continue;
                }
            }
            match ev.kind {
                EventKind::Create(kind) => match fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() && kind != CreateKind::File => {
                        self.scan(path, Origin::DirCreated)
                    }
                    Ok(m) if m.is_file() || m.is_symlink() => {
                        self.found_file(path, Origin::FileCreated)
                    }
                    _ => {}
                },
                EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                    match fs::symlink_metadata(path) {
                        Ok(m) if m.is_dir() => self.scan(path, Origin::DirMovedIn),
                        Ok(m) if m.is_file() || m.is_symlink() => {
                            self.found_file(path, Origin::FileMovedIn)
                        }
                        _ => {}
                    }
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                    self.removed(path)
                }
                // `Both` repeats a `From` and a `To` already handled.
                EventKind::Modify(ModifyKind::Name(_)) => {}
                EventKind::Modify(_) => {
                    if self.files.contains_key(path) {
                        self.dirty.insert(path.clone());
                    } else {
                        // Written before its create was seen: new.
                        self.found_file(path, Origin::FileCreated);
                    }
                }
                _ => {}
            }
        }
    }

    /// A path under a root disappeared (deleted or renamed away).
    fn removed(&mut self, path: &Path) {
        if self.skip_reported.remove(path) {
            self.send(ToOrch::Skipped {
                provider: self.name,
                path: path.to_path_buf(),
                reason: None,
            });
        }
        if let Some(i) = self.roots.iter().position(|(r, _)| r == path) {
            // The root itself: stop watching everything under it (inotify
            // would follow a moved directory outside the roots) and look
            // for it again on the heartbeat.
            self.unwatch_under(path);
            self.roots[i].1 = false;
            self.send_roots();
            tracing::info!(provider = self.name.as_str(), root = %path.display(), "root disappeared");
            return;
        }
        if self.watched.contains_key(path) {
            self.unwatch_under(path);
        }
    }

    fn unwatch_under(&mut self, dir: &Path) {
        let under: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|d| d.starts_with(dir))
            .cloned()
            .collect();
        for d in under {
            self.watcher.remove(&d);
            self.watched.remove(&d);
        }
    }

    /// Heartbeat: pick up roots that appeared, notice roots that vanished.
    pub(crate) fn check_roots(&mut self) {
        let mut changed = false;
        for i in 0..self.roots.len() {
            let (root, exists) = self.roots[i].clone();
            let now = root.is_dir();
            if now && !exists && !self.may_walk(&root) {
                // Not in this stage's domain: the supervisor starts a new
                // stage that includes it.
                continue;
            }
            if now && !exists {
                tracing::info!(provider = self.name.as_str(), root = %root.display(), "root appeared");
                self.roots[i].1 = true;
                self.scan(&root, Origin::RootAppeared);
                changed = true;
            } else if !now && exists {
                self.removed(&root);
            }
        }
        if changed {
            self.send_roots();
            self.send_backlog();
        }
    }

    /// The safety net: walk everything again.
    pub(crate) fn rescan(&mut self) {
        self.check_roots();
        for i in 0..self.roots.len() {
            let (root, exists) = self.roots[i].clone();
            if exists {
                self.scan(&root, Origin::Rescan);
            }
        }
        self.send_backlog();
    }

    /// Changed files first, then due retries, then one file of history.
    pub(crate) fn work_step(&mut self, now: Instant) {
        self.process_dirty();
        let due: Vec<PathBuf> = self
            .retries
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in due {
            self.retries.remove(&p);
            self.read_pass(&p);
        }
        let due: Vec<PathBuf> = self
            .rechecks
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in due {
            self.rechecks.remove(&p);
            self.read_pass(&p);
        }
        if let Some(p) = self.backlog.pop_front() {
            self.read_pass(&p);
            if self.backlog.is_empty() {
                // The startup walk's backlog is done: its room (a slot
                // per file found) is not kept.
                self.backlog = VecDeque::new();
            }
            if self.backlog.is_empty() || self.backlog.len().is_multiple_of(50) {
                self.send_backlog();
            }
        }
    }

    fn process_dirty(&mut self) {
        while let Some(p) = self.dirty.pop_first() {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if self.retries.contains_key(&p) {
                continue;
            }
            self.read_pass(&p);
        }
    }

    /// Read what is new in one file and send it. A panic in the parser is
    /// contained here: the file is retried with backoff and quarantined
    /// after [`MAX_ATTEMPTS`].
    // Long because: one pass holds the file's entry from open to commit; its steps read in order.
    pub(crate) fn read_pass(&mut self, path: &Path) {
        let provider = self.provider;
        let limits = self.limits;
        let Some(entry) = self.files.get_mut(path) else {
            return;
        };
        if matches!(
            provider.file_source_kind(&entry.ctx),
            SourceKind::Database | SourceKind::DirectoryStore
        ) {
            self.database_pass(path);
            return;
        }
        let mut file = match open_session_file(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                self.skipped(path, SYMLINK_REPLACED.to_owned());
                return;
            }
            Err(e) => {
                self.skipped(path, format!("cannot open it: {e}"));
                return;
            }
        };
        let Ok(meta) = file.metadata() else { return };
        let identity = FileIdentity::of(&meta);
        let (len, mtime) = (meta.len(), mtime_ns(&meta));
        if let Some(q) = entry.quarantined {
            if q.is_none() || q == Some(identity) {
                return;
            }
            // Another file now sits at the path: give it a chance.
            entry.quarantined = None;
            entry.attempts = 0;
        }
        let replay = starts_over(provider, entry, identity, len);
        let history_until = if replay { 0 } else { entry.history_until };
        let mut chunks = Chunker {
            provider: self.name,
            path,
            out: &self.out,
            history_until,
            replay,
            skip: entry.skip,
            position: 0,
            delivered: entry.skip,
            buf: Vec::new(),
            live_from: None,
            span_start: None,
        };
        let ctx = entry.ctx.clone();
        let cursor = entry.cursor.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            read_increment(
                &mut file,
                provider,
                &ctx,
                &cursor,
                limits,
                Tail::Hold,
                &mut |ev| chunks.push(ev),
            )
        }));
        match result {
            Ok(Ok(inc)) => {
                if provider.file_source_kind(&ctx) == SourceKind::Document
                    && inc.events == 0
                    && !inc.diagnostics.is_empty()
                {
                    // A document caught mid-rewrite, or one that cannot be
                    // read at all: keep the old cursor and say why in the
                    // status; the write that completes it is read again
                    // and takes the warning off.
                    tracing::debug!(path = %path.display(), "document not parseable yet");
                    self.skipped(path, document_skip_reason(&inc.diagnostics[0]));
                    return;
                }
                chunks.flush(Some(Commit {
                    cursor: inc.cursor.clone(),
                    size: len,
                    mtime_ns: mtime,
                    reset: inc.reset,
                    diagnostics: inc.diagnostics.len(),
                    bytes: inc.bytes,
                }));
                entry.cursor = inc.cursor;
                entry.size = len;
                entry.mtime_ns = mtime;
                entry.skip = 0;
                entry.attempts = 0;
                if replay
                    || inc.reset.is_some()
                    || provider.file_source_kind(&ctx) == SourceKind::Document
                {
                    entry.history_until = 0;
                }
            }
            Ok(Err(e)) => {
                entry.skip = chunks.delivered;
                self.skipped(path, format!("cannot read it: {e}"));
            }
            Err(_) => {
                entry.skip = chunks.delivered;
                entry.attempts += 1;
                let attempts = entry.attempts;
                if attempts >= MAX_ATTEMPTS {
                    entry.quarantined = Some(Some(identity));
                }
                self.parser_panicked(path, identity, attempts);
            }
        }
    }

    /// [`Stage::read_pass`] for a database: what changed since the cursor,
    /// read with SQLite ([`crate::database::read_since`]). A read that
    /// fails (locked, corrupt) is said in the status and tried again on
    /// the next change.
    fn database_pass(&mut self, path: &Path) {
        let provider = self.provider;
        let limits = self.limits;
        let Some(entry) = self.files.get_mut(path) else {
            return;
        };
        let Ok(meta) = fs::symlink_metadata(path) else {
            return;
        };
        if meta.is_symlink() {
            self.skipped(path, SYMLINK_REPLACED.to_owned());
            return;
        }
        let identity = FileIdentity::of(&meta);
        if let Some(q) = entry.quarantined {
            if q.is_none() || q == Some(identity) {
                return;
            }
            entry.quarantined = None;
            entry.attempts = 0;
        }
        if provider.file_source_kind(&entry.ctx) == SourceKind::Database
            && !self.regrant_asked
            && !within_grant(self.granted.as_ref(), path)
        {
            // Its `-wal`/`-shm` (or the database itself) appeared after
            // this stage was confined: a new stage, whose domain has them,
            // reads it from the cursor.
            self.regrant_asked = true;
            self.send(ToOrch::Regrant {
                provider: self.name,
            });
            return;
        }
        let replay = entry.cursor.identity.is_some_and(|id| id != identity);
        let cursor = if replay {
            Cursor::default()
        } else {
            entry.cursor.clone()
        };
        let history_until = if replay { 0 } else { entry.history_until };
        let mut chunks = Chunker {
            provider: self.name,
            path,
            out: &self.out,
            history_until,
            replay,
            skip: entry.skip,
            position: 0,
            delivered: entry.skip,
            buf: Vec::new(),
            live_from: None,
            span_start: None,
        };
        let ctx = entry.ctx.clone();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            crate::database::read_since(path, provider, &ctx, &cursor, limits, &mut |ev| {
                chunks.push(ev)
            })
        }));
        match result {
            Ok(Ok(inc)) if inc.events == 0 && inc.bytes == 0 && !inc.diagnostics.is_empty() => {
                // Unreadable now (locked past the timeout, corrupt): the
                // cursor stays; the next change tries again.
                let reason = format!("not read: {}", inc.diagnostics[0].detail);
                self.skipped(path, reason);
            }
            Ok(Ok(inc)) => {
                let (len, mtime) = (meta.len(), mtime_ns(&meta));
                chunks.flush(Some(Commit {
                    cursor: inc.cursor.clone(),
                    size: len,
                    mtime_ns: mtime,
                    reset: inc.reset,
                    diagnostics: inc.diagnostics.len(),
                    bytes: inc.bytes,
                }));
                entry.cursor = inc.cursor;
                entry.size = len;
                entry.mtime_ns = mtime;
                entry.skip = 0;
                entry.attempts = 0;
                // What the first read delivered is history; every later
                // row is live.
                entry.history_until = 0;
            }
            Ok(Err(e)) => {
                entry.skip = chunks.delivered;
                self.skipped(path, format!("cannot read it: {e}"));
            }
            Err(_) => {
                entry.skip = chunks.delivered;
                entry.attempts += 1;
                let attempts = entry.attempts;
                if attempts >= MAX_ATTEMPTS {
                    entry.quarantined = Some(Some(identity));
                }
                self.parser_panicked(path, identity, attempts);
            }
        }
    }

    /// After a parser panic (the entry already counts it): quarantine the
    /// file after [`MAX_ATTEMPTS`], otherwise retry it with backoff.
    fn parser_panicked(&mut self, path: &Path, identity: FileIdentity, attempts: u32) {
        if attempts >= MAX_ATTEMPTS {
            self.retries.remove(path);
            self.send(ToOrch::Quarantine {
                provider: self.name,
                path: path.to_path_buf(),
                identity: Some(identity),
                reason: format!("its parser panicked {attempts} times"),
            });
        } else {
            let delay = super::backoff(attempts - 1);
            self.retries
                .insert(path.to_path_buf(), Instant::now() + delay);
            self.warn(format!(
                "parser panicked on {} (attempt {attempts} of {MAX_ATTEMPTS}); retrying in {} s",
                path.display(),
                delay.as_secs()
            ));
        }
    }

    #[cfg(test)]
    pub(crate) fn watched_dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.watched.keys().cloned().collect();
        v.sort();
        v
    }
}

/// Open a session file for reading, never through a symbolic link (one may
/// have replaced the file since it was found): that fails with `ELOOP`.
fn open_session_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Why a file that had been read is no longer.
const SYMLINK_REPLACED: &str =
    "the session file was replaced by a symbolic link, which kato does not follow; what was read before is kept";

/// Why a document was not read, without quoting it (a parser's message
/// can hold a piece of the content).
fn document_skip_reason(d: &crate::reader::Diagnostic) -> String {
    use crate::reader::DiagKind;
    match d.kind {
        DiagKind::TooLong => format!("not read: {}", d.detail),
        DiagKind::NotJson | DiagKind::Truncated => {
            format!("not read: not a JSON document ({} bytes)", d.len)
        }
        DiagKind::InvalidUtf8 => format!("not read: not UTF-8 ({} bytes)", d.len),
        DiagKind::WrongShape => {
            format!(
                "not read: JSON, but not a session document ({} bytes)",
                d.len
            )
        }
    }
}

/// Cuts a pass into batches; the last one carries the cursor.
struct Chunker<'a> {
    provider: ProviderId,
    path: &'a Path,
    out: &'a SyncSender<ToOrch>,
    history_until: u64,
    replay: bool,
    /// Events at the start of the pass to drop (delivered by a failed try).
    skip: usize,
    position: usize,
    /// Events of this pass delivered so far (including skipped ones).
    delivered: usize,
    buf: Vec<Event>,
    live_from: Option<usize>,
    span_start: Option<u64>,
}

impl Chunker<'_> {
    fn push(&mut self, ev: Event) {
        self.position += 1;
        if self.position <= self.skip {
            return;
        }
        let live = ev.source.offset >= self.history_until;
        if !live && self.live_from.is_some() {
            // Keep each batch history-first.
            self.flush(None);
        }
        if live && self.live_from.is_none() {
            self.live_from = Some(self.buf.len());
        }
        let offset = ev.source.offset;
        let start = *self.span_start.get_or_insert(offset);
        self.buf.push(ev);
        if self.buf.len() >= BATCH_EVENTS || offset.saturating_sub(start) >= BATCH_SPAN {
            self.flush(None);
        }
    }

    fn flush(&mut self, commit: Option<Commit>) {
        let events = std::mem::take(&mut self.buf);
        let live_from = self.live_from.take().unwrap_or(events.len());
        self.span_start = None;
        if commit.is_none() {
            if events.is_empty() {
                return;
            }
            self.delivered = self.position;
        }
        let _ = self.out.send(ToOrch::Batch(Batch {
            provider: self.provider,
            path: self.path.to_path_buf(),
            events,
            live_from,
            replay: self.replay,
            commit,
        }));
    }
}
