//! The recorder's durable state: one JSON file per session under
//! `<state>/recordings/`, written atomically, and the fingerprints of
//! decided commands.
//!
//! Nothing is appended before the intent that plans it is saved. When the
//! state cannot be saved (a full state disk), the recordings that have an
//! intent pause, saying why, and the files whose events changed the
//! unsaved state keep their persisted cursor ([`Recorder::held`]): a crash
//! reads those events again rather than losing them.

use std::path::{Path, PathBuf};

use super::{Recorder, Sess, SessionData};
use crate::audit::{AuditEvent, Decision, Entry};
use crate::daemon::command::SessionKey;

impl Recorder {
    /// Read every session's recording state; unreadable files are set aside.
    pub(super) fn load(&mut self) {
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
                Some(data) => self.restore(&path, data),
                None => self.set_aside(&path),
            }
        }
    }

    fn restore(&mut self, path: &Path, mut data: SessionData) {
        let Some(provider) = crate::provider::by_name(&data.provider) else {
            self.warnings.push(format!(
                "recording state {} names an unknown provider `{}`; left as it is",
                path.display(),
                data.provider
            ));
            return;
        };
        for snap in data
            .recordings
            .values_mut()
            .filter_map(|r| r.snapshot.as_mut())
        {
            snap.restored = true;
        }
        let key = SessionKey::new(provider.id(), data.session_id.as_str());
        self.sessions
            .insert(key, Sess::new(data, self.redactor.clone()));
    }

    fn set_aside(&mut self, path: &Path) {
        let aside = path.with_extension(format!("corrupt-{}", std::process::id()));
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

    /// Save a session's state if it changed. `Err` says why it could not
    /// be saved (said once in the status warnings until it can again).
    pub(super) fn save_session(&mut self, key: &SessionKey) -> Result<(), String> {
        if !self.sessions.get(key).is_some_and(|s| s.dirty) {
            return Ok(());
        }
        let path = self.state_path(key);
        let Some(sess) = self.sessions.get_mut(key) else {
            return Ok(());
        };
        let saved = serde_json::to_vec(&sess.data)
            .map_err(|e| format!("cannot encode it: {e}"))
            .and_then(|bytes| {
                super::super::state::write_atomic(&path, &bytes, true).map_err(|e| e.to_string())
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
}
