//! Commands kato has decided, remembered across sessions.
//!
//! An agent that resumes or forks a session writes the old conversation
//! again, commands included (Claude Code keeps the records' times and
//! often their ids under a new session id). A command has two
//! fingerprints: provider, the time of the message holding it, its line in
//! the message and its text; and provider, its event id (the message's
//! record id and the line) and its text. One of them already decided for
//! another command event marks a copy: it is audited as replayed and never
//! runs (`command.skipped-replayed`).
//!
//! The store holds hashes only (no command text, path or session id in
//! clear), in `<state>/commands-seen.json`, replaced atomically. It is
//! bounded: past [`CAP`] entries the oldest are forgotten first (a copy of
//! a command that old is then recognised only by the parser's rules).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::command::SessionKey;
use crate::audit::hex_sha256;
use crate::event::ProviderId;

/// File name inside the state directory.
pub(crate) const FILE_NAME: &str = "commands-seen.json";

/// Most fingerprints kept; the oldest go first.
pub(crate) const CAP: usize = 10_000;

const VERSION: u32 = 1;

/// A command's identity as it survives a copy: the same for the command
/// and every copy of it that keeps the message's time.
pub(crate) fn fingerprint(provider: ProviderId, time: &str, line: u32, raw: &str) -> String {
    let material = format!("{}\0{time}\0{line}\0{raw}", provider.as_str());
    hex_sha256(material.as_bytes())[..32].to_owned()
}

/// A command's identity for copies that keep the record's id (its uuid)
/// but not its time. Ids made from a file's name and offset never meet
/// another file's.
pub(crate) fn id_fingerprint(provider: ProviderId, event_id: &str, raw: &str) -> String {
    let material = format!("{}\0id\0{event_id}\0{raw}", provider.as_str());
    hex_sha256(material.as_bytes())[..32].to_owned()
}

/// Which command event first carried a fingerprint: a re-delivery of that
/// same event (after a restart) is not a copy.
pub(crate) fn owner(key: &SessionKey, event_id: &str) -> String {
    let material = format!("{}\0{}\0{event_id}", key.provider.as_str(), key.session);
    hex_sha256(material.as_bytes())[..16].to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    fp: String,
    owner: String,
    /// When kato first decided it (seconds since the epoch).
    at: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    v: u32,
    entries: Vec<Entry>,
}

/// The fingerprints of decided commands, oldest first.
pub(crate) struct SeenCommands {
    path: PathBuf,
    entries: VecDeque<Entry>,
    owners: HashMap<String, String>,
}

impl SeenCommands {
    /// Load the store of `state_dir`. A missing file is an empty store; an
    /// unreadable one is set aside and reported, and the store starts empty.
    pub fn load(state_dir: &Path) -> (SeenCommands, Option<String>) {
        let mut seen = SeenCommands {
            path: state_dir.join(FILE_NAME),
            entries: VecDeque::new(),
            owners: HashMap::new(),
        };
        let bytes = match std::fs::read(&seen.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (seen, None),
            Err(e) => return (seen, Some(format!("cannot read {FILE_NAME}: {e}"))),
        };
        match serde_json::from_slice::<Stored>(&bytes) {
            Ok(s) if s.v == VERSION => {
                for e in s.entries {
                    seen.push(e);
                }
                (seen, None)
            }
            _ => {
                let aside = seen
                    .path
                    .with_extension(format!("corrupt-{}", std::process::id()));
                let _ = std::fs::rename(&seen.path, &aside);
                let msg = format!(
                    "{} is unreadable; set aside as {} (copies of earlier commands are then recognised only by their records)",
                    seen.path.display(),
                    aside.display()
                );
                (seen, Some(msg))
            }
        }
    }

    /// The owner of `fp`, if it was decided before.
    pub fn owner_of(&self, fp: &str) -> Option<&str> {
        self.owners.get(fp).map(String::as_str)
    }

    /// Remember `fp` as decided by `owner` (the first owner stays).
    /// Returns whether the store changed.
    pub fn remember(&mut self, fp: &str, owner: &str, now: u64) -> bool {
        if self.owners.contains_key(fp) {
            return false;
        }
        self.push(Entry {
            fp: fp.to_owned(),
            owner: owner.to_owned(),
            at: now,
        });
        true
    }

    fn push(&mut self, e: Entry) {
        if self.owners.contains_key(&e.fp) {
            return;
        }
        self.owners.insert(e.fp.clone(), e.owner.clone());
        self.entries.push_back(e);
        while self.entries.len() > CAP {
            if let Some(old) = self.entries.pop_front() {
                self.owners.remove(&old.fp);
            }
        }
    }

    /// Persist the store (temporary file, fsync, rename).
    pub fn save(&self) -> io::Result<()> {
        let stored = Stored {
            v: VERSION,
            entries: self.entries.iter().cloned().collect(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(io::Error::other)?;
        super::state::write_atomic(&self.path, &bytes, true)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SessionKey {
        SessionKey::new(ProviderId::Claude, s)
    }

    #[test]
    fn fingerprints_differ_by_each_part_and_hold_no_text() {
        let t = "2026-01-08T15:56:00.000Z";
        let base = fingerprint(ProviderId::Claude, t, 0, "::capture /x/a.md");
        assert_eq!(base.len(), 32);
        assert!(!base.contains("capture"));
        for other in [
            fingerprint(ProviderId::Codex, t, 0, "::capture /x/a.md"),
            fingerprint(
                ProviderId::Claude,
                "2026-01-08T15:56:00.001Z",
                0,
                "::capture /x/a.md",
            ),
            fingerprint(ProviderId::Claude, t, 1, "::capture /x/a.md"),
            fingerprint(ProviderId::Claude, t, 0, "::capture /x/b.md"),
            id_fingerprint(ProviderId::Claude, t, "::capture /x/a.md"),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(
            id_fingerprint(ProviderId::Claude, "u1/cmd0", "::stop"),
            id_fingerprint(ProviderId::Claude, "u2/cmd0", "::stop")
        );
        assert_ne!(owner(&key("a"), "m/cmd0"), owner(&key("b"), "m/cmd0"));
        assert_ne!(owner(&key("a"), "m/cmd0"), owner(&key("a"), "m/cmd1"));
    }

    #[test]
    fn the_first_owner_stays_and_the_store_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seen, warn) = SeenCommands::load(dir.path());
        assert!(warn.is_none());
        assert!(seen.remember("fp1", "a", 1));
        assert!(!seen.remember("fp1", "b", 2));
        assert_eq!(seen.owner_of("fp1"), Some("a"));
        seen.save().unwrap();
        let (again, warn) = SeenCommands::load(dir.path());
        assert!(warn.is_none());
        assert_eq!(again.owner_of("fp1"), Some("a"));
        assert_eq!(again.owner_of("fp2"), None);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(!text.contains("capture"));
    }

    #[test]
    fn the_store_is_bounded_and_forgets_the_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seen, _) = SeenCommands::load(dir.path());
        for n in 0..CAP + 5 {
            seen.remember(&format!("fp{n}"), "o", n as u64);
        }
        assert_eq!(seen.len(), CAP);
        assert_eq!(seen.owner_of("fp4"), None);
        assert_eq!(seen.owner_of("fp5"), Some("o"));
        assert_eq!(seen.owner_of(&format!("fp{}", CAP + 4)), Some("o"));
        seen.save().unwrap();
        assert_eq!(SeenCommands::load(dir.path()).0.len(), CAP);
    }

    #[test]
    fn an_unreadable_store_is_set_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let (seen, warn) = SeenCommands::load(dir.path());
        assert_eq!(seen.len(), 0);
        assert!(warn.is_some_and(|w| w.contains("set aside")));
        assert!(!dir.path().join(FILE_NAME).exists());
    }
}
