//! A session's recording-state log: `<state>/recordings/<name>.log` beside
//! its snapshot `<name>.json`.
//!
//! Each save appends one record, a whole `SessionData` as one JSON line
//! carrying a generation number (`gen`, one more with every save), and
//! syncs it with one `fdatasync` when it plans bytes (an intent). Now and
//! then (the heartbeat, a stop, a start after a crash, a log that would
//! grow past [`INLINE_COMPACT`], a state larger than [`COMPACT_AT`]) the
//! newest state is written as the snapshot (temp file, fsync, rename,
//! directory fsync) and the log is emptied: the state disk holds at most
//! the old snapshot, the new one and a log of small records, as much as
//! a rewrite of the snapshot at every save needed.
//!
//! Loading takes, of the snapshot and every whole line of the log, the
//! state with the highest generation. A line cut off by a crash (or by a
//! full disk, which is also cut back at once) is not valid JSON and does
//! not count; a record always starts on a line of its own, so one cut-off
//! line never swallows the next. Generations only grow, so an emptying of
//! the log that a crash lost leaves older records behind, never a newer
//! one the snapshot does not hold.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::SessionData;

/// A log longer than this is compacted at the next heartbeat; a state
/// larger than this is saved as the snapshot, not logged.
pub(super) const COMPACT_AT: u64 = 256 << 10;
/// A save that would make the log longer than this is a compaction.
pub(super) const INLINE_COMPACT: u64 = 1 << 20;

/// The log of one session.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    /// Open during one operation only.
    file: Option<File>,
    /// Length of the log (whole records only: a failed append is cut back).
    len: u64,
    /// The last byte is a newline (or the log is empty).
    clean_end: bool,
}

impl Journal {
    pub(super) fn new(path: PathBuf) -> Journal {
        Journal {
            path,
            file: None,
            len: 0,
            clean_end: true,
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    fn open(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            let existed = self.path.exists();
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .mode(0o600)
                .open(&self.path)?;
            let len = f.metadata()?.len();
            let mut last = [b'\n'];
            if len > 0 {
                f.read_exact_at(&mut last, len - 1)?;
            }
            if !existed {
                // The new name must survive a crash as its records do.
                if let Some(dir) = self.path.parent() {
                    File::open(dir)?.sync_all()?;
                }
            }
            self.len = len;
            self.clean_end = last[0] == b'\n';
            self.file = Some(f);
        }
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("the log is not open"))
    }

    /// Append one record (`json`, one line), synced when `sync`. On a
    /// failure the log is cut back to its last whole record.
    pub(super) fn append(&mut self, json: &[u8], sync: bool) -> io::Result<()> {
        self.open()?;
        let len = self.len;
        let mut buf = Vec::with_capacity(json.len() + 2);
        if !self.clean_end {
            buf.push(b'\n');
        }
        buf.extend_from_slice(json);
        buf.push(b'\n');
        let f = self.open()?;
        let done = (&mut &*f)
            .write_all(&buf)
            .and_then(|()| if sync { f.sync_data() } else { Ok(()) });
        match done {
            Ok(()) => {
                self.len = len + buf.len() as u64;
                self.clean_end = true;
                // Opened again by path at the next save: a state directory
                // moved or replaced meanwhile is not written through an
                // old descriptor.
                self.file = None;
                Ok(())
            }
            Err(e) => {
                // Leave the space to smaller writes; what was cut off is
                // not a whole line and would not count anyway.
                if f.set_len(len).is_err() {
                    self.clean_end = false;
                }
                self.file = None;
                Err(e)
            }
        }
    }

    /// The snapshot holds everything the log did: empty it (no sync
    /// needed: records left behind by a crash are older than the snapshot).
    pub(super) fn clear(&mut self) {
        if self.len == 0 && self.clean_end {
            return;
        }
        let cleared = self.open().and_then(|f| f.set_len(0));
        if cleared.is_ok() {
            self.len = 0;
            self.clean_end = true;
        }
        self.file = None;
    }

    /// Close and delete the log (after a compaction at stop).
    pub(super) fn remove(&mut self) {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => return,
        }
        self.len = 0;
        self.clean_end = true;
    }
}

/// The newest whole record of the log at `path` (None: no log, or no
/// whole record in it).
pub(super) fn newest(path: &Path) -> Option<SessionData> {
    let bytes = std::fs::read(path).ok()?;
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<SessionData>(l).ok())
        .max_by_key(|d| d.gen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(gen: u64) -> SessionData {
        SessionData {
            provider: "claude".into(),
            session_id: format!("s{gen}"),
            gen,
            ..SessionData::default()
        }
    }

    fn line(gen: u64) -> Vec<u8> {
        serde_json::to_vec(&data(gen)).unwrap()
    }

    #[test]
    fn the_newest_whole_record_wins_and_a_cut_off_one_does_not_count() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        let mut j = Journal::new(p.clone());
        j.append(&line(1), true).unwrap();
        j.append(&line(2), false).unwrap();
        assert_eq!(newest(&p).unwrap().gen, 2);
        // A crash cut the third record off halfway.
        let third = line(3);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&third[..third.len() / 2]).unwrap();
        assert_eq!(newest(&p).unwrap().gen, 2);
        // The next run's record starts on a line of its own.
        let mut j = Journal::new(p.clone());
        j.append(&line(3), true).unwrap();
        assert_eq!(newest(&p).unwrap().gen, 3);
        // Zeros where unsynced pages never reached the disk are no record.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        assert_eq!(newest(&p).unwrap().gen, 3);
    }

    #[test]
    fn an_emptying_a_crash_lost_leaves_only_older_records() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        let mut j = Journal::new(p.clone());
        for g in 1..=4 {
            j.append(&line(g), false).unwrap();
        }
        j.clear();
        assert_eq!(j.len(), 0);
        assert!(newest(&p).is_none());
        j.append(&line(6), true).unwrap();
        // Old records behind a newer one (the emptying was lost): the
        // highest generation still wins.
        std::fs::write(&p, [line(6), line(4), line(5)].join(&b'\n')).unwrap();
        assert_eq!(newest(&p).unwrap().gen, 6);
        j.remove();
        assert!(!p.exists());
    }
}
