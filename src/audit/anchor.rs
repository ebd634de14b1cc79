//! The chain's anchor: the number of records and the hash of the last one,
//! kept beside the log (`security-audit.jsonl.anchor`) so that removing or
//! rewriting the log's tail shows.
//!
//! The file holds two fixed-size slots, written in turn with one positioned
//! write each (no new space is needed once the file exists, so a full disk
//! cannot stop an anchor update) and synced. A slot carries a checksum: a
//! write cut off by a power loss spoils only the slot it wrote, and the
//! other one still holds the previous head. Readers take the valid slot with
//! the most records.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{hex_sha256, Head};

/// What the anchor file's name adds to the log's.
pub const SUFFIX: &str = ".anchor";

const MAGIC: &str = "kato-audit-anchor 1 ";
/// `MAGIC`, 20 digits, space, 64 hex, space, 16 hex, newline.
const SLOT_LEN: usize = MAGIC.len() + 20 + 1 + 64 + 1 + 16 + 1;

/// The anchor of the log at `log`.
pub fn path_for(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(SUFFIX);
    PathBuf::from(s)
}

/// Why an anchor file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    #[error("cannot read the anchor {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the anchor {path} holds no valid slot (edited or damaged)")]
    Invalid { path: PathBuf },
}

/// The head an anchor file holds: `Ok(None)` when there is no file.
pub fn read(path: &Path) -> Result<Option<Head>, AnchorError> {
    let read_err = |source| AnchorError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let mut bytes = Vec::new();
    file.by_ref()
        .take(2 * SLOT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    best_slot(&bytes)
        .map(Some)
        .ok_or_else(|| AnchorError::Invalid {
            path: path.to_path_buf(),
        })
}

/// The valid slot with the most records.
fn best_slot(bytes: &[u8]) -> Option<Head> {
    if bytes.len() != 2 * SLOT_LEN {
        return None;
    }
    bytes
        .chunks_exact(SLOT_LEN)
        .filter_map(parse_slot)
        .reduce(|a, b| if b.records > a.records { b } else { a })
}

fn check(records: u64, hash: &str) -> String {
    hex_sha256(format!("{records:020} {hash}").as_bytes())[..16].to_owned()
}

fn slot(head: &Head) -> Vec<u8> {
    format!(
        "{MAGIC}{:020} {} {}\n",
        head.records,
        head.hash,
        check(head.records, &head.hash)
    )
    .into_bytes()
}

fn parse_slot(bytes: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix(MAGIC)?.strip_suffix('\n')?;
    let mut parts = rest.split(' ');
    let (records, hash, sum) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_hash(hash) {
        return None;
    }
    let records: u64 = records.parse().ok()?;
    (check(records, hash) == sum).then(|| Head {
        records,
        hash: hash.to_owned(),
    })
}

/// 64 lowercase hex digits.
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An anchor file open for updates.
#[derive(Debug)]
pub struct Anchor {
    file: File,
    /// What each slot holds now.
    slots: [Head; 2],
}

impl Anchor {
    /// Create (or replace) the anchor at `path` holding `head` in both slots:
    /// written beside it, synced and renamed over it.
    pub fn create(path: &Path, head: &Head) -> io::Result<Anchor> {
        let mut bytes = slot(head);
        bytes.extend_from_slice(&slot(head));
        crate::daemon::state::write_atomic(path, &bytes, true)?;
        let file = open_rw(path)?;
        Ok(Anchor {
            file,
            slots: [head.clone(), head.clone()],
        })
    }

    /// Open the anchor at `path` for updates; `None` when it is missing or
    /// holds no valid slot.
    pub fn open(path: &Path) -> Result<Option<(Anchor, Head)>, AnchorError> {
        let Some(head) = read(path)? else {
            return Ok(None);
        };
        let file = open_rw(path).map_err(|source| AnchorError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut bytes = vec![0u8; 2 * SLOT_LEN];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|source| AnchorError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        // A spoiled slot is the one to overwrite next.
        let spoiled = Head {
            records: 0,
            hash: String::new(),
        };
        let slots = [
            parse_slot(&bytes[..SLOT_LEN]).unwrap_or_else(|| spoiled.clone()),
            parse_slot(&bytes[SLOT_LEN..]).unwrap_or(spoiled),
        ];
        Ok(Some((Anchor { file, slots }, head)))
    }

    /// Record `head`: overwrite the slot holding the older head and sync.
    /// On failure the slot is put back as it was, so the anchor never runs
    /// ahead of the log; when even that fails the error says so.
    pub fn write(&mut self, head: &Head) -> Result<(), AnchorWriteError> {
        let i = usize::from(self.slots[1].records < self.slots[0].records);
        let at = (i * SLOT_LEN) as u64;
        let written = self
            .file
            .write_all_at(&slot(head), at)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.slots[i] = head.clone();
                Ok(())
            }
            Err(e) => {
                let restored = self
                    .file
                    .write_all_at(&slot(&self.slots[i]), at)
                    .and_then(|()| self.file.sync_data());
                Err(AnchorWriteError {
                    source: e,
                    restored: restored.is_ok(),
                })
            }
        }
    }
}

/// An anchor update that failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot update the audit anchor: {source}{}", if *.restored { "" } else { " (and its previous content could not be put back)" })]
pub struct AnchorWriteError {
    #[source]
    pub source: io::Error,
    /// The slot holds its previous content again.
    pub restored: bool,
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(records: u64, c: char) -> Head {
        Head {
            records,
            hash: c.to_string().repeat(64),
        }
    }

    #[test]
    fn slots_alternate_and_the_newest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.anchor");
        assert!(read(&p).unwrap().is_none());
        let mut a = Anchor::create(&p, &head(0, '0')).unwrap();
        assert_eq!(std::fs::read(&p).unwrap().len(), 2 * SLOT_LEN);
        for n in 1..5u64 {
            a.write(&head(n, 'a')).unwrap();
            assert_eq!(read(&p).unwrap(), Some(head(n, 'a')));
        }
        let (mut again, h) = Anchor::open(&p).unwrap().unwrap();
        assert_eq!(h, head(4, 'a'));
        again.write(&head(5, 'b')).unwrap();
        assert_eq!(read(&p).unwrap(), Some(head(5, 'b')));
    }

    #[test]
    fn a_torn_slot_leaves_the_previous_head() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.anchor");
        let mut a = Anchor::create(&p, &head(0, '0')).unwrap();
        a.write(&head(1, 'a')).unwrap();
        a.write(&head(2, 'b')).unwrap();
        // Spoil the slot holding record 2 (slot 1: slots alternate from 0).
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[SLOT_LEN + 30] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read(&p).unwrap(), Some(head(1, 'a')));
        // The spoiled slot is the one written next.
        let (mut a, _) = Anchor::open(&p).unwrap().unwrap();
        a.write(&head(2, 'c')).unwrap();
        a.write(&head(3, 'd')).unwrap();
        assert_eq!(read(&p).unwrap(), Some(head(3, 'd')));
    }

    #[test]
    fn edited_or_cut_anchors_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.anchor");
        Anchor::create(&p, &head(7, 'e')).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("0007", "0009")).unwrap();
        assert!(matches!(read(&p), Err(AnchorError::Invalid { .. })));
        std::fs::write(&p, &text[..SLOT_LEN]).unwrap();
        assert!(matches!(read(&p), Err(AnchorError::Invalid { .. })));
        std::fs::write(&p, "").unwrap();
        assert!(matches!(read(&p), Err(AnchorError::Invalid { .. })));
    }
}
