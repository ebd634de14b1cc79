//! The recorder's durable state: per session under `<state>/recordings/`
//! a snapshot (JSON, written atomically) and a log of the saves since
//! (`journal`: one record per save, one `fdatasync` when it must be
//! durable); and the fingerprints of decided commands.
//!
//! Nothing is appended before the intent that plans it is saved. When the
//! state cannot be saved (a full state disk), the recordings that have an
//! intent pause, saying why, and the files whose events changed the
//! unsaved state keep their persisted cursor ([`Recorder::held`]): a crash
//! reads those events again rather than losing them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::journal::{Journal, COMPACT_AT, INLINE_COMPACT};
use super::{Recorder, Sess, SessionData};
use crate::audit::{AuditEvent, Decision, Entry};
use crate::daemon::command::SessionKey;

impl Recorder {
    /// Read every session's recording state: of its snapshot and its
    /// log, the newest; a log found (kato stopped without folding it) is
    /// folded into the snapshot. Unreadable files are set aside.
    pub(super) fn load(&mut self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let stems: BTreeSet<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "log"))
            .map(|p| p.with_extension(""))
            .collect();
        for stem in stems {
            let json = stem.with_extension("json");
            let log = stem.with_extension("log");
            let snapshot = if json.exists() {
                let parsed = std::fs::read(&json)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<SessionData>(&b).ok());
                if parsed.is_none() {
                    self.set_aside(&json);
                }
                parsed
            } else {
                None
            };
            let logged = super::journal::newest(&log);
            let has_log = log.exists();
            let newest = match (snapshot, logged) {
                (Some(s), Some(l)) => Some(if l.gen > s.gen { l } else { s }),
                (s, l) => s.or(l),
            };
            match newest {
                Some(data) => {
                    if let Some(key) = self.restore(&json, data) {
                        if has_log {
                            self.fold_log(&key);
                        }
                    }
                }
                None if has_log => {
                    if std::fs::metadata(&log).is_ok_and(|m| m.len() == 0) {
                        let _ = std::fs::remove_file(&log);
                    } else {
                        self.set_aside(&log);
                    }
                }
                None => {}
            }
        }
    }

    fn restore(&mut self, path: &Path, mut data: SessionData) -> Option<SessionKey> {
        let Some(provider) = crate::provider::by_name(&data.provider) else {
            self.warnings.push(format!(
                "recording state {} names an unknown provider `{}`; left as it is",
                path.display(),
                data.provider
            ));
            return None;
        };
        for snap in data
            .recordings
            .values_mut()
            .filter_map(|r| r.snapshot.as_mut())
        {
            snap.restored = true;
        }
        let key = SessionKey::new(provider.id(), data.session_id.as_str());
        self.sessions.insert(key.clone(), Box::new(Sess::new(data)));
        Some(key)
    }

    fn set_aside(&mut self, path: &Path) {
        let Some(ext) = path.extension().map(|x| x.to_string_lossy().into_owned()) else {
            return;
        };
        let aside = path.with_extension(format!("{ext}.corrupt-{}", std::process::id()));
        let _ = std::fs::rename(path, &aside);
        self.warnings.push(format!(
            "recording state {} is unreadable; set aside as {}",
            path.display(),
            aside.display()
        ));
        self.audit(Entry {
            stage: "orchestrate".into(),
            event: AuditEvent::StateQuarantined,
            decision: Decision::Info,
            target: Some(path.display().to_string()),
            reason: Some("unreadable recording state".into()),
            ..Entry::default()
        });
    }

    /// Where a session's recording state lives.
    fn state_path(&self, key: &SessionKey) -> PathBuf {
        let name = format!(
            "{}.json",
            &crate::audit::hex_sha256(
                format!("{}\0{}", key.provider.as_str(), key.session).as_bytes()
            )[..24]
        );
        self.dir.join(name)
    }

    /// Save a session's state if it changed, durably (a synced log
    /// record). `Err` says why it could not be saved (said once in the
    /// status warnings until it can again).
    pub(super) fn save_session(&mut self, key: &SessionKey) -> Result<(), String> {
        self.save_session_with(key, true)
    }

    /// [`Recorder::save_session`]; unsynced when `sync` is false and the
    /// last save of the session succeeded (a failed one is retried synced).
    fn save_session_with(&mut self, key: &SessionKey, sync: bool) -> Result<(), String> {
        if !self.sessions.get(key).is_some_and(|s| s.dirty) {
            return Ok(());
        }
        let path = self.state_path(key);
        let Some(sess) = self.sessions.get_mut(key) else {
            return Ok(());
        };
        let sync = sync || sess.save_error.is_some();
        sess.data.gen += 1;
        let journal = sess
            .journal
            .get_or_insert_with(|| Journal::new(path.with_extension("log")));
        let saved = serde_json::to_vec(&sess.data)
            .map_err(|e| format!("cannot encode it: {e}"))
            .and_then(|bytes| {
                // A large state (a snapshot's planned bytes, an intent
                // held by a full export disk) replaces the snapshot file
                // as a whole: the state disk then never holds more than
                // the old snapshot, the new one and a short log.
                if bytes.len() as u64 > COMPACT_AT
                    || journal.len() + bytes.len() as u64 > INLINE_COMPACT
                {
                    super::super::state::write_atomic(&path, &bytes, true).map(|()| journal.clear())
                } else {
                    journal.append(&bytes, sync)
                }
                .map_err(|e| e.to_string())
            });
        match &saved {
            Ok(()) => {
                sess.dirty = false;
                sess.unsaved.clear();
                if sess.save_error.take().is_some() {
                    self.warnings.push(format!(
                        "the recording state {} is saved again",
                        path.display()
                    ));
                }
            }
            Err(e) => {
                if sess.save_error.replace(e.clone()).is_none() {
                    self.warnings.push(format!(
                        "cannot save the recording state {}: {e}; its recordings pause until it can be saved",
                        path.display()
                    ));
                }
            }
        }
        saved
    }

    /// Write a clean session's state as its snapshot and empty its log
    /// (delete it with `remove`). False when it could not be written (the
    /// log stays; the heartbeat tries again).
    fn compact(&mut self, key: &SessionKey, remove: bool) -> bool {
        let path = self.state_path(key);
        let Some(sess) = self.sessions.get_mut(key).filter(|s| !s.dirty) else {
            return false;
        };
        sess.data.gen += 1;
        let written = serde_json::to_vec(&sess.data)
            .ok()
            .is_some_and(|b| super::super::state::write_atomic(&path, &b, true).is_ok());
        if written {
            let journal = sess
                .journal
                .get_or_insert_with(|| Journal::new(path.with_extension("log")));
            if remove {
                journal.remove();
                sess.journal = None;
            } else {
                journal.clear();
            }
        }
        written
    }

    /// A log found at start: folded into the snapshot and deleted.
    fn fold_log(&mut self, key: &SessionKey) {
        let _ = self.compact(key, true);
    }

    /// Heartbeat: compact the logs grown past [`COMPACT_AT`].
    pub(super) fn compact_logs(&mut self) {
        let long: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.journal.as_ref().is_some_and(|j| j.len() > COMPACT_AT))
            .map(|(k, _)| k.clone())
            .collect();
        for k in long {
            self.compact(&k, false);
        }
    }

    /// Stop: every log folded into its snapshot and deleted.
    pub(super) fn fold_logs(&mut self) {
        let open: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.journal.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for k in open {
            self.compact(&k, true);
        }
    }

    /// Persist the fingerprints of decided commands if they changed.
    pub(super) fn save_seen(&mut self) {
        if !self.seen_dirty {
            return;
        }
        match self.seen.save() {
            Ok(()) => self.seen_dirty = false,
            Err(e) => self.warnings.push(format!(
                "cannot save the fingerprints of decided commands: {e}"
            )),
        }
    }

    /// Save every session that changed (failures are kept in each session).
    pub(super) fn save_dirty(&mut self) {
        self.save_seen();
        let keys: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let _ = self.save_session(&k);
        }
    }

    /// After the appends of a flush: save what they changed (lengths,
    /// intents cleared, pauses) without a sync. Sound because the intents
    /// those appends wrote were saved durably first: a crash that loses
    /// these records replays each intent, and the writer writes only what
    /// is missing after its `base` (nothing, when the append was done).
    pub(super) fn save_appended(&mut self) {
        let keys: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let _ = self.save_session_with(&k, false);
        }
    }
}
