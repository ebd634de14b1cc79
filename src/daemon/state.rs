//! Durable daemon state (SPEC §9): one small JSON file per session file.
//!
//! Layout under the state directory:
//!
//! ```text
//! <state>/kato.lock                 the single-instance lock (see `lifecycle`)
//! <state>/files/<key>.json          cursor + per-file aggregates, rewritten atomically
//! <state>/files/<key>.ids           append-only event-id fingerprints (8 bytes each)
//! <state>/files.snapshot            every <key>.json, one per line (a clean stop's)
//! <state>/quarantine/<key>.json.*   state files that could not be read, set aside
//! <state>/commands-seen.json        fingerprints of decided commands (`super::seen`)
//! ```
//!
//! One file per session file rather than one compact file: a flush
//! rewrites only the files that changed (a few while the user works, not
//! all 1,000+), a corrupt file costs one session file's cursor and not the
//! whole state, and start-up reads ~1 KB per file. The price is the syncs
//! of each changed file per flush, kept out of bursts by the orchestrator
//! (it flushes when batches pause, at the latest 5 s after a commit).
//!
//! Every `.json` write is temp file → sync → rename, and each flush ends
//! with one fsync of the directory. The `.ids` file is appended and synced
//! *before* the `.json` that records its committed length (`ids_len`), so
//! after a crash the extra tail is cut off: fingerprints and cursor always
//! agree. A flush of few files syncs each file ([`Store::save`]); one of
//! many writes them all first and syncs them by one `syncfs`
//! ([`Store::stage`], [`Store::sync_written`], [`Store::commit`]).
//!
//! A clean stop copies every state file into one snapshot
//! ([`Store::snapshot`]) that the next start reads instead of each of
//! them, and removes before any state file changes ([`Store::load_all`]):
//! start-up reads one file, not 10,000.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::event::ProviderId;
use crate::reader::{Cursor, FileIdentity};
use crate::redact::Redactor;

/// Version of the per-file state format.
pub const STATE_VERSION: u32 = 1;

/// Everything the daemon remembers about one session file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    pub v: u32,
    pub provider: ProviderId,
    pub path: PathBuf,
    /// Where the next read starts; only ever a cursor whose events were handled.
    pub cursor: Cursor,
    /// Size and mtime (ns since the epoch) observed before the read that
    /// produced `cursor`: an unchanged file is not re-read at start-up.
    pub size: u64,
    pub mtime_ns: i64,
    #[serde(default)]
    pub session_id: Option<String>,
    /// Snippet of the first human message.
    #[serde(default)]
    pub title: Option<String>,
    /// Newest provider timestamp seen (RFC 3339 as the provider wrote it).
    #[serde(default)]
    pub last_activity: Option<String>,
    /// Events handled (history + live).
    #[serde(default)]
    pub events: u64,
    #[serde(default)]
    pub events_live: u64,
    #[serde(default)]
    pub commands_live: u64,
    #[serde(default)]
    pub commands_historical: u64,
    /// Malformed records skipped.
    #[serde(default)]
    pub skipped: u64,
    /// Committed length of the `.ids` file, in fingerprints.
    #[serde(default)]
    pub ids_len: u64,
    /// Set when the file kept crashing its parser; cleared when the file is
    /// replaced. Boxed: rare, and every file's record would carry its room.
    #[serde(default)]
    pub quarantine: Option<Box<Quarantine>>,
}

impl FileState {
    /// A file seen for the first time: nothing read, nothing counted.
    pub fn new(provider: ProviderId, path: PathBuf) -> FileState {
        FileState {
            v: STATE_VERSION,
            provider,
            path,
            cursor: Cursor::default(),
            size: 0,
            mtime_ns: 0,
            session_id: None,
            title: None,
            last_activity: None,
            events: 0,
            events_live: 0,
            commands_live: 0,
            commands_historical: 0,
            skipped: 0,
            ids_len: 0,
            quarantine: None,
        }
    }
}

/// Why a session file is skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quarantine {
    pub reason: String,
    /// The file the verdict applies to; another file at the path is read again.
    pub identity: Option<FileIdentity>,
    pub at: String,
}

/// A state file that could not be used and was set aside.
#[derive(Debug)]
pub struct Corrupt {
    pub file: PathBuf,
    pub moved_to: Option<PathBuf>,
    pub error: StateFileError,
}

/// Why a state file (or the state directory) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot list the state directory: {0}")]
    List(#[source] io::Error),
    #[error("cannot read: {0}")]
    Read(#[source] io::Error),
    #[error("not a valid state file: {0}")]
    Invalid(#[source] serde_json::Error),
    #[error("state version {found} (this kato reads {STATE_VERSION})")]
    Version { found: u32 },
    #[error("file name does not match its content")]
    NameMismatch,
}

/// The file every state file is copied into when the daemon stops
/// cleanly, read at the next start instead of one file per session file.
pub const SNAPSHOT_FILE: &str = "files.snapshot";

/// The first line of a snapshot: what follows is `files` state files, one
/// per line, as each is on disk.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotHead {
    kato_state_snapshot: u32,
    files: usize,
}

/// Remove the snapshot of the state files under `state_dir`, if any, and
/// make its removal durable: from then on the state files are the only
/// truth, whatever changes them.
pub fn forget_snapshot(state_dir: &Path) -> io::Result<()> {
    match fs::remove_file(state_dir.join(SNAPSHOT_FILE)) {
        Ok(()) => File::open(state_dir)?.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The on-disk store.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    files: PathBuf,
    quarantine: PathBuf,
    /// A parser's saved context can hold session text (Codex keeps a user
    /// message until its twin comes): it is redacted before it is written.
    redactor: Arc<Redactor>,
}

/// Create `dir` (and parents) with mode 0700 if missing.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

impl Store {
    /// Open (creating) the store under `state_dir`.
    pub fn open(state_dir: &Path, redactor: Arc<Redactor>) -> io::Result<Store> {
        let files = state_dir.join("files");
        let quarantine = state_dir.join("quarantine");
        ensure_private_dir(&files)?;
        Ok(Store {
            dir: state_dir.to_path_buf(),
            files,
            quarantine,
            redactor,
        })
    }

    /// The file name stem of a session file's state: a hash of provider and
    /// path, so any path maps to a short, safe name.
    pub fn key(provider: ProviderId, path: &Path) -> String {
        let mut h = Sha256::new();
        h.update(provider.as_str().as_bytes());
        h.update([0]);
        h.update(path.as_os_str().as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut key = String::with_capacity(32);
        for b in &h.finalize()[..16] {
            key.push(char::from(HEX[usize::from(b >> 4)]));
            key.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        key
    }

    fn json_path(&self, key: &str) -> PathBuf {
        self.files.join(format!("{key}.json"))
    }

    fn ids_path(&self, key: &str) -> PathBuf {
        self.files.join(format!("{key}.ids"))
    }

    /// Read every state file: from the snapshot a clean stop left
    /// ([`Store::snapshot`]), else one by one. Unreadable ones are moved
    /// to the quarantine directory and reported; their session files start
    /// from safe defaults (everything present is history).
    pub fn load_all(&self) -> (Vec<FileState>, Vec<Corrupt>) {
        match self.take_snapshot() {
            Ok(Some(states)) => {
                tracing::info!(files = states.len(), "state snapshot read");
                return (states, Vec::new());
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                "the state snapshot could not be used ({e}); reading the state files one by one"
            ),
        }
        self.load_files()
    }

    /// The states a snapshot holds, once it is removed (durably: any
    /// state file saved from now on is newer than it). `None` without a
    /// snapshot; an error for one that cannot be used (it is removed if
    /// it can be) or that cannot be removed.
    fn take_snapshot(&self) -> io::Result<Option<Vec<FileState>>> {
        let path = self.dir.join(SNAPSHOT_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let states = parse_snapshot(&bytes);
        forget_snapshot(&self.dir)?;
        states.map(Some)
    }

    /// Copy every state file (`states`, as they are on disk) into one
    /// snapshot file, replaced atomically, for the next start to read.
    /// Only when nothing remains to be flushed: a snapshot must say
    /// exactly what the state files say.
    pub fn snapshot<'a>(
        &self,
        states: impl ExactSizeIterator<Item = &'a FileState>,
    ) -> io::Result<()> {
        let head = SnapshotHead {
            kato_state_snapshot: STATE_VERSION,
            files: states.len(),
        };
        replace_with(&self.dir.join(SNAPSHOT_FILE), true, true, |w| {
            serde_json::to_writer(&mut *w, &head)?;
            w.write_all(b"\n")?;
            for st in states {
                w.write_all(&self.to_disk(st, st.ids_len)?)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })
    }

    /// Read every state file, one by one.
    fn load_files(&self) -> (Vec<FileState>, Vec<Corrupt>) {
        let mut states = Vec::new();
        let mut corrupt = Vec::new();
        let entries = match fs::read_dir(&self.files) {
            Ok(e) => e,
            Err(e) => {
                corrupt.push(Corrupt {
                    file: self.files.clone(),
                    moved_to: None,
                    error: StateFileError::List(e),
                });
                return (states, corrupt);
            }
        };
        // Names, not paths: sorting 10,000 of them as bytes is cheap, as
        // path components it is not.
        let mut names: Vec<std::ffi::OsString> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|n| {
                let n = n.as_bytes();
                n.ends_with(b".json") && n.first() != Some(&b'.')
            })
            .collect();
        names.sort_unstable();
        // One buffer for every file: each is read whole, then parsed.
        let mut buf = Vec::new();
        for name in names {
            let path = self.files.join(&name);
            match read_state(&path, &mut buf) {
                Ok(st) => states.push(st),
                Err(error) => {
                    let moved_to = self.set_aside(&path).ok();
                    corrupt.push(Corrupt {
                        file: path,
                        moved_to,
                        error,
                    });
                }
            }
        }
        (states, corrupt)
    }

    fn set_aside(&self, path: &Path) -> io::Result<PathBuf> {
        ensure_private_dir(&self.quarantine)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let dest = self.quarantine.join(format!("{name}.{stamp}"));
        fs::rename(path, &dest)?;
        Ok(dest)
    }

    /// Persist one file's state: append `new_ids` to its fingerprint log
    /// (synced), then replace its JSON atomically. `st.ids_len` is updated.
    /// The directory itself is synced by [`Store::sync_dir`] once per flush.
    pub fn save(&self, st: &mut FileState, new_ids: &[u64]) -> io::Result<()> {
        let staged = self.stage(st, new_ids, true)?;
        self.commit(st, staged)
    }

    /// [`Store::save`] up to the rename: `new_ids` appended to the
    /// fingerprint log and the JSON written beside its file, each synced
    /// with `sync`. Without, [`Store::sync_written`] syncs a whole flush of
    /// them at once before they are committed.
    pub fn stage(&self, st: &FileState, new_ids: &[u64], sync: bool) -> io::Result<Staged> {
        let key = Store::key(st.provider, &st.path);
        let mut ids_len = st.ids_len;
        let mut ids = None;
        if !new_ids.is_empty() || st.ids_len == 0 {
            let ids_path = self.ids_path(&key);
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&ids_path)?;
            // Drop whatever a crashed flush appended beyond the committed length.
            f.set_len(st.ids_len * 8)?;
            if !new_ids.is_empty() {
                f.seek(SeekFrom::Start(st.ids_len * 8))?;
                let mut buf = Vec::with_capacity(new_ids.len() * 8);
                for id in new_ids {
                    buf.extend_from_slice(&id.to_le_bytes());
                }
                f.write_all(&buf)?;
                if sync {
                    f.sync_data()?;
                } else {
                    ids = Some(ids_path);
                }
                ids_len += new_ids.len() as u64;
            }
        }
        let bytes = self.to_disk(st, ids_len).map_err(io::Error::from)?;
        let path = self.json_path(&key);
        let tmp = write_temp(&path, |w| w.write_all(&bytes), sync)?;
        Ok(Staged {
            tmp,
            path,
            ids,
            ids_len,
        })
    }

    /// Make everything [`Store::stage`] wrote unsynced durable: one sync
    /// of the state's file system instead of two per file.
    pub fn sync_written(&self) -> io::Result<()> {
        rustix::fs::syncfs(File::open(&self.files)?).map_err(io::Error::from)
    }

    /// Put a staged state file in place (durable once the directory is
    /// synced): `st` now records the fingerprints it committed.
    pub fn commit(&self, st: &mut FileState, staged: Staged) -> io::Result<()> {
        fs::rename(&staged.tmp, &staged.path)?;
        st.v = STATE_VERSION;
        st.ids_len = staged.ids_len;
        Ok(())
    }

    /// The bytes of a state file, recording `ids_len` fingerprints: the
    /// parser's context redacted (only there: paths and ids must read back
    /// exactly, and the title was redacted where it was derived). In
    /// memory the context stays whole, so reading goes on unchanged until a
    /// restart.
    fn to_disk(&self, st: &FileState, ids_len: u64) -> serde_json::Result<Vec<u8>> {
        let mut v = serde_json::to_value(st)?;
        v["v"] = STATE_VERSION.into();
        v["ids_len"] = ids_len.into();
        if let Some(parser) = v.pointer_mut("/cursor/parser") {
            self.redactor.redact_json_value(parser);
        }
        serde_json::to_vec(&v)
    }

    /// Fsync the state directory so the renames of a flush are durable.
    pub fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.files)?.sync_all()
    }

    /// Forget a session file that no longer exists.
    pub fn remove(&self, provider: ProviderId, path: &Path) -> io::Result<()> {
        let key = Store::key(provider, path);
        for p in [self.json_path(&key), self.ids_path(&key)] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The committed fingerprints of a file (the first `len`).
    pub fn load_ids(
        &self,
        provider: ProviderId,
        path: &Path,
        len: u64,
    ) -> io::Result<HashSet<u64>> {
        let key = Store::key(provider, path);
        let mut bytes = Vec::new();
        match File::open(self.ids_path(&key)) {
            Ok(f) => {
                f.take(len * 8).read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(bytes
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect())
    }
}

/// The states of a snapshot, all of them or an error.
fn parse_snapshot(bytes: &[u8]) -> io::Result<Vec<FileState>> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let mut lines = bytes.split(|b| *b == b'\n');
    let head: SnapshotHead = serde_json::from_slice(lines.next().unwrap_or_default())?;
    if head.kato_state_snapshot != STATE_VERSION {
        return Err(invalid(format!(
            "version {} (this kato reads {STATE_VERSION})",
            head.kato_state_snapshot
        )));
    }
    let mut states = Vec::with_capacity(head.files.min(bytes.len() / 64));
    for line in lines.filter(|l| !l.is_empty()) {
        let st: FileState = serde_json::from_slice(line)?;
        if st.v != STATE_VERSION {
            return Err(invalid(format!("a state of version {}", st.v)));
        }
        states.push(st);
    }
    if states.len() != head.files {
        return Err(invalid(format!(
            "{} state(s) where its head says {}",
            states.len(),
            head.files
        )));
    }
    Ok(states)
}

fn read_state(path: &Path, buf: &mut Vec<u8>) -> Result<FileState, StateFileError> {
    buf.clear();
    File::open(path)
        .and_then(|mut f| f.read_to_end(buf))
        .map_err(StateFileError::Read)?;
    let st: FileState = serde_json::from_slice(buf).map_err(StateFileError::Invalid)?;
    if st.v != STATE_VERSION {
        return Err(StateFileError::Version { found: st.v });
    }
    let key = Store::key(st.provider, &st.path);
    let named = path.file_name().is_some_and(|n| {
        n.as_bytes()
            .strip_suffix(b".json")
            .is_some_and(|stem| stem == key.as_bytes())
    });
    if !named {
        return Err(StateFileError::NameMismatch);
    }
    Ok(st)
}

/// Replace `path` with `bytes` atomically: write a temp file beside it,
/// fsync it, rename it over `path`, and (with `sync_dir`) fsync the
/// directory. Readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], sync_dir: bool) -> io::Result<()> {
    replace(path, bytes, true, sync_dir)
}

/// [`write_atomic`] without any fsync: for volatile files (status.json)
/// that only need readers never to see a torn write.
pub fn write_atomic_nosync(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false, false)
}

fn replace(path: &Path, bytes: &[u8], fsync: bool, sync_dir: bool) -> io::Result<()> {
    replace_with(path, fsync, sync_dir, |w| w.write_all(bytes))
}

/// [`write_atomic_nosync`] of what `write` writes, through a small buffer:
/// a large file (status.json) is never held whole in memory.
pub fn write_atomic_nosync_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    replace_with(path, false, false, write)
}

fn replace_with(
    path: &Path,
    fsync: bool,
    sync_dir: bool,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = write_temp(path, write, fsync)?;
    fs::rename(&tmp, path)?;
    if sync_dir {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Write what `write` writes to the temporary file beside `path` that a
/// replacement of it is renamed from (synced with `fsync`), and return
/// that file's path.
fn write_temp(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    fsync: bool,
) -> io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = write_new(&tmp, write, fsync);
    if written.is_err() {
        // A temp file cut off by a full disk would keep the space the
        // smaller writes after it (a cursor, an audit record) still need.
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| tmp)
}

/// A state file written beside its place ([`Store::stage`]), not yet
/// renamed into it.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    /// The fingerprint log appended unsynced, if any.
    ids: Option<PathBuf>,
    /// The committed length of the fingerprint log it records.
    ids_len: u64,
}

impl Staged {
    /// Sync what it wrote, itself (when [`Store::sync_written`] cannot:
    /// a system call filter that refuses `syncfs`).
    pub fn sync(&self) -> io::Result<()> {
        if let Some(ids) = &self.ids {
            File::open(ids)?.sync_data()?;
        }
        File::open(&self.tmp)?.sync_all()
    }

    /// Give it up (its sync failed): the temporary file is removed, and
    /// the fingerprints appended past the committed length are cut off by
    /// the next [`Store::stage`].
    pub fn discard(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// Create (or truncate) `path` with what `write` writes, synced with
/// `fsync`.
fn write_new(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    fsync: bool,
) -> io::Result<()> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    let mut w = io::BufWriter::new(f);
    write(&mut w)?;
    let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
    if fsync {
        f.sync_all()?;
    }
    Ok(())
}

/// Stable 64-bit fingerprint of an event id (FNV-1a): persisted, so it must
/// not depend on the Rust version the way `DefaultHasher` may.
pub fn fingerprint(event_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in event_id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_redactor() -> Arc<Redactor> {
        Arc::new(Redactor::new(&crate::redact::RedactionOptions::default()).unwrap())
    }

    #[test]
    fn a_parser_context_holding_a_secret_is_written_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), test_redactor()).unwrap();
        let token = format!("ghp_{}", "k7Qz".repeat(9));
        let mut st = sample("/s/secret.jsonl");
        st.cursor.parser =
            serde_json::json!({"pending_user": {"text": format!("use {token}")}}).into();
        store.save(&mut st, &[]).unwrap();
        let key = Store::key(st.provider, &st.path);
        let text = fs::read_to_string(store.json_path(&key)).unwrap();
        assert!(!text.contains(&token), "{text}");
        assert!(text.contains("use [REDACTED:GITHUB_TOKEN]"), "{text}");
        // In memory the context stays whole; on disk it reads back.
        assert!(st.cursor.parser.as_json().contains(&token));
        let (states, corrupt) = store.load_all();
        assert!(corrupt.is_empty());
        assert_eq!(states.len(), 1);
    }

    #[test]
    fn a_snapshot_is_read_once_and_says_what_the_state_files_say() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), test_redactor()).unwrap();
        let mut files = vec![sample("/s/a.jsonl"), sample("/s/b.jsonl")];
        let token = format!("ghp_{}", "k7Qz".repeat(9));
        files[1].cursor.parser = serde_json::json!({"pending": format!("use {token}")}).into();
        for st in &mut files {
            store.save(st, &[1]).unwrap();
        }
        let (mut from_files, _) = store.load_all();
        from_files.sort_by(|a, b| a.path.cmp(&b.path));
        store.snapshot(files.iter()).unwrap();
        let snapshot = dir.path().join(SNAPSHOT_FILE);
        let text = fs::read_to_string(&snapshot).unwrap();
        assert!(!text.contains(&token), "{text}");
        // Remove the state files: what comes back is the snapshot's.
        fs::remove_dir_all(dir.path().join("files")).unwrap();
        ensure_private_dir(&dir.path().join("files")).unwrap();
        let (mut states, corrupt) = store.load_all();
        assert!(corrupt.is_empty());
        assert!(!snapshot.exists(), "a snapshot was left to be read again");
        states.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(states, from_files);
        // Once: the next load reads the state files (none now).
        assert!(store.load_all().0.is_empty());
    }

    #[test]
    fn a_snapshot_that_cannot_be_used_is_removed_and_the_state_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), test_redactor()).unwrap();
        let mut files = vec![sample("/s/a.jsonl"), sample("/s/b.jsonl")];
        for st in &mut files {
            store.save(st, &[1]).unwrap();
        }
        store.snapshot(files.iter()).unwrap();
        let snapshot = dir.path().join(SNAPSHOT_FILE);
        let text = fs::read_to_string(&snapshot).unwrap();
        let head = text.lines().next().unwrap();
        let cut = text.lines().take(2).collect::<Vec<_>>().join("\n");
        for bad in [
            cut,
            format!("{}\n", head.replace(":1,", ":9,")),
            "not json\n".to_owned(),
        ] {
            fs::write(&snapshot, &bad).unwrap();
            let (states, corrupt) = store.load_all();
            assert!(corrupt.is_empty());
            assert_eq!(states.len(), 2, "{bad}");
            assert!(!snapshot.exists(), "{bad}");
        }
    }

    fn sample(path: &str) -> FileState {
        FileState {
            cursor: Cursor {
                offset: 42,
                identity: Some(FileIdentity { dev: 1, ino: 2 }),
                parser: serde_json::json!({"n": 1}).into(),
            },
            size: 42,
            events: 3,
            ..FileState::new(ProviderId::Claude, PathBuf::from(path))
        }
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), test_redactor()).unwrap();
        let mut st = sample("/r/a.jsonl");
        store.save(&mut st, &[1, 2, 3]).unwrap();
        store.sync_dir().unwrap();
        assert_eq!(st.ids_len, 3);
        let (all, corrupt) = store.load_all();
        assert!(corrupt.is_empty(), "{corrupt:?}");
        assert_eq!(all, [st.clone()]);
        let ids = store
            .load_ids(ProviderId::Claude, &st.path, st.ids_len)
            .unwrap();
        assert_eq!(ids, HashSet::from([1, 2, 3]));
        assert_no_temp_file(dir.path());
    }

    #[test]
    fn a_crashed_flush_leaves_old_or_new_never_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), test_redactor()).unwrap();
        let mut st = sample("/r/a.jsonl");
        store.save(&mut st, &[7]).unwrap();
        let key = Store::key(ProviderId::Claude, &st.path);
        // A crash after writing the temp file but before the rename: the
        // committed file is intact and the stray temp file is ignored.
        fs::write(
            dir.path().join(format!("files/.{key}.json.tmp")),
            b"{\"v\":1,\"provider\"",
        )
        .unwrap();
        // A crash after appending fingerprints but before the JSON: the
        // extra tail is not trusted.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(format!("files/{key}.ids")))
            .unwrap();
        f.write_all(&99u64.to_le_bytes()).unwrap();
        let (all, corrupt) = store.load_all();
        assert!(corrupt.is_empty(), "{corrupt:?}");
        assert_eq!(all, [st.clone()]);
        let ids = store
            .load_ids(ProviderId::Claude, &st.path, st.ids_len)
            .unwrap();
        assert_eq!(ids, HashSet::from([7]));
        // The next save cuts the untrusted tail before appending.
        store.save(&mut st, &[8]).unwrap();
        let ids = store.load_ids(ProviderId::Claude, &st.path, 100).unwrap();
        assert_eq!(ids, HashSet::from([7, 8]));
    }

    /// A flush of many files stages each unsynced, syncs the file system
    /// once, then renames: what is staged but not committed (a crash, a
    /// failed sync) leaves the committed state and fingerprints as they
    /// were, and the next stage cuts the uncommitted fingerprints off.
    #[test]
    fn a_flush_synced_once_commits_only_what_it_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), test_redactor()).unwrap();
        let mut files: Vec<FileState> = (0..40).map(|i| sample(&format!("/r/{i}.jsonl"))).collect();
        for st in &mut files {
            store.save(st, &[1]).unwrap();
        }
        let staged: Vec<Staged> = files
            .iter()
            .map(|st| store.stage(st, &[2, 3], false).unwrap())
            .collect();
        store.sync_written().unwrap();
        // A crash before the renames: the committed state is unchanged.
        let (mut all, corrupt) = store.load_all();
        assert!(corrupt.is_empty(), "{corrupt:?}");
        all.sort_by(|a, b| a.path.cmp(&b.path));
        let mut before = files.clone();
        before.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(all, before);
        let ids = store
            .load_ids(ProviderId::Claude, &files[0].path, files[0].ids_len)
            .unwrap();
        assert_eq!(ids, HashSet::from([1]));
        // Committed, half of them: those record the new fingerprints.
        let mut staged = staged.into_iter();
        for (st, s) in files.iter_mut().zip(staged.by_ref()).take(20) {
            store.commit(st, s).unwrap();
            assert_eq!(st.ids_len, 3);
        }
        staged.for_each(Staged::discard);
        store.sync_dir().unwrap();
        let (all, _) = store.load_all();
        for st in &files {
            let loaded = all.iter().find(|a| a.path == st.path).unwrap();
            assert_eq!(loaded, st);
            let ids = store
                .load_ids(ProviderId::Claude, &st.path, st.ids_len)
                .unwrap();
            let want = if st.ids_len == 3 {
                vec![1, 2, 3]
            } else {
                vec![1]
            };
            assert_eq!(ids, HashSet::from_iter(want));
        }
        // The discarded ones are saved again from their committed length.
        store.save(&mut files[30], &[2, 3]).unwrap();
        assert_eq!(files[30].ids_len, 3);
        let ids = store
            .load_ids(ProviderId::Claude, &files[30].path, 100)
            .unwrap();
        assert_eq!(ids, HashSet::from([1, 2, 3]));
        assert_no_temp_file(dir.path());
    }

    /// No temporary file is left in the store under `state`.
    fn assert_no_temp_file(state: &Path) {
        let names: Vec<_> = fs::read_dir(state.join("files"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn corrupt_files_are_set_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), test_redactor()).unwrap();
        let mut good = sample("/r/good.jsonl");
        store.save(&mut good, &[]).unwrap();
        let bad = sample("/r/bad.jsonl");
        let key = Store::key(ProviderId::Claude, &bad.path);
        let bad_file = dir.path().join(format!("files/{key}.json"));
        fs::write(&bad_file, b"\x00garbage{").unwrap();
        // A valid file under the wrong name is not trusted either.
        let wrong = dir.path().join("files/0000.json");
        fs::write(&wrong, serde_json::to_vec(&good).unwrap()).unwrap();
        let (all, corrupt) = store.load_all();
        assert_eq!(all, [good.clone()]);
        assert_eq!(corrupt.len(), 2, "{corrupt:?}");
        assert!(!bad_file.exists());
        for c in &corrupt {
            assert!(c.moved_to.as_ref().is_some_and(|p| p.exists()), "{c:?}");
        }
        // Loading again is clean: no crash loop.
        let (_, corrupt) = store.load_all();
        assert!(corrupt.is_empty());
        // A provider this kato does not know is set aside, naming it.
        let text = serde_json::to_string(&good)
            .unwrap()
            .replace("\"claude\"", "\"nosuch\"");
        fs::write(&bad_file, text).unwrap();
        let (_, corrupt) = store.load_all();
        assert_eq!(corrupt.len(), 1, "{corrupt:?}");
        assert!(
            corrupt[0]
                .error
                .to_string()
                .contains("unknown provider `nosuch`"),
            "{corrupt:?}"
        );
    }

    #[test]
    fn state_keys_and_json_keep_their_format() {
        let st = sample("/r/a.jsonl");
        // The name hashes the provider's name: files written before the
        // provider became an enum are found again.
        assert_eq!(
            Store::key(st.provider, &st.path),
            "214fb5f99e99dbae4670d0bfe2184c1f"
        );
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["provider"], "claude");
    }

    #[test]
    fn write_atomic_replaces_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("status.json");
        write_atomic(&p, b"first, longer content", true).unwrap();
        write_atomic(&p, b"second", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
    }

    #[test]
    fn fingerprints_are_stable() {
        assert_eq!(fingerprint(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fingerprint("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fingerprint("tag:0"), fingerprint("tag:1"));
    }
}
