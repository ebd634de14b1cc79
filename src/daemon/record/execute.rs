//! Carrying out a command: the decision comes from [`crate::daemon::command::plan`];
//! this applies its state, writes its audit records and performs its
//! actions on the recordings.

use std::collections::BTreeMap;
use std::path::Path;

use super::snapshot::{slice, Slice};
use super::{Mark, Rec, Recorder, Snapshot, Stages};
use crate::commands::Format;
use crate::daemon::command::{self, CommandEvent, Plan, SessionKey};
use crate::daemon::seen;
use crate::event::{Event, Payload};
use crate::recording::{self, Action, At, Dest};
use crate::render::markdown::{MarkdownRenderer, RenderState};

impl Recorder {
    /// One command event: decide it, then carry the plan out.
    pub(super) fn command(
        &mut self,
        key: &SessionKey,
        ev: &Event,
        live: bool,
        stages: &mut dyn Stages,
    ) {
        let Payload::KatoCommand {
            raw,
            line,
            message_id,
            ..
        } = &ev.payload
        else {
            return;
        };
        let Some(sess) = self.sessions.get(key) else {
            return;
        };
        let date = ev
            .timestamp
            .as_deref()
            .map_or_else(crate::audit::now_rfc3339, str::to_owned);
        let title = self.meta(key).title;
        let default_name =
            recording::default_file_name(&date, key.provider.as_str(), &title, &key.session);
        let default_dest = self.default_dir.join(default_name);
        let policy = &self.policy;
        let check = |p: &Path| policy.check(p.as_os_str()).map(|t| t.path);
        let mut prints = vec![seen::id_fingerprint(key.provider, &ev.event_id, raw)];
        prints.extend(
            ev.timestamp
                .as_deref()
                .map(|t| seen::fingerprint(key.provider, t, *line, raw)),
        );
        let owner = seen::owner(key, &ev.event_id);
        let seen_elsewhere = prints
            .iter()
            .filter_map(|f| self.seen.owner_of(f))
            .any(|o| o != owner);
        let cmd = CommandEvent {
            event_id: &ev.event_id,
            raw,
            at: At {
                message_id: message_id.clone(),
                line: *line,
            },
            live,
            copied: ev.copied,
            seen_elsewhere,
            fingerprints: &prints,
        };
        let plan = command::plan(key, &sess.data.commands, &cmd, &default_dest, &check);
        self.remember(&plan.remember, &owner, !plan.actions.is_empty());
        self.carry_out(key, plan, stages);
    }

    /// Remember a decided command's fingerprint. Before a command acts, the
    /// store is persisted at once (a crash must not lose it while the
    /// command's effects stay); otherwise with the next save.
    fn remember(&mut self, prints: &[String], owner: &str, acts: bool) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for fp in prints {
            if self.seen.remember(fp, owner, now) {
                self.seen_dirty = true;
            }
        }
        if acts {
            self.save_seen();
        }
    }

    /// Apply a plan: its audit records, then its command state and actions.
    pub(super) fn carry_out(&mut self, key: &SessionKey, plan: Plan, stages: &mut dyn Stages) {
        let Plan {
            audits,
            state,
            actions,
            remember: _,
        } = plan;
        // A command whose records cannot be written does not run, now or
        // later: it is decided (refused) like any other, so a re-read of
        // its file after a restart does not run it there, after the
        // events handled behind it.
        if let Err(why) = self.audit.write_all(&audits) {
            self.audit.refuse(&audits, &why);
            if let Some(sess) = self.sessions.get_mut(key) {
                sess.data.commands.done = state.done;
                sess.dirty = true;
            }
            return;
        }
        if let Some(sess) = self.sessions.get_mut(key) {
            sess.data.commands = state;
            sess.dirty = true;
        }
        for a in actions {
            self.act(key, a);
        }
        self.request_replays(key, stages);
    }

    fn ensure_rec(&mut self, key: &SessionKey, dest: &Dest, id: &str) {
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
                since: BTreeMap::new(),
                intent: None,
                snapshot: None,
                paused: None,
                events: 0,
                redactions: BTreeMap::new(),
            });
        sess.dirty = true;
    }

    fn act(&mut self, key: &SessionKey, action: Action) {
        match action {
            // What these plan is written with the rest of the batch.
            Action::Prepare { dest, recording_id } => {
                self.ensure_rec(key, &dest, &recording_id);
                self.prepare_header(key, &recording_id);
            }
            Action::Start {
                dest,
                recording_id,
                from,
            } => self.start(key, &dest, &recording_id, &from),
            Action::Stop { recording_id, .. } => self.stop(key, &recording_id),
            Action::Snapshot {
                dest,
                recording_id,
                upto,
            } => self.snapshot(key, &dest, &recording_id, upto),
        }
    }

    /// Append live events from `from` on: the rest of the command's
    /// message first, then whatever follows.
    fn start(&mut self, key: &SessionKey, dest: &Dest, recording_id: &str, from: &At) {
        self.ensure_rec(key, dest, recording_id);
        self.prepare_header(key, recording_id);
        let first = self.slice_message(key, from, Slice::From);
        let anchor = self
            .observed
            .get(key)
            .and_then(|s| s.last_message.as_ref())
            .filter(|m| m.event_id == from.message_id)
            .map(|m| {
                (
                    m.source.file.as_deref().unwrap_or_default().to_owned(),
                    Mark {
                        offset: m.source.offset,
                        ids: vec![m.event_id.clone()],
                    },
                )
            });
        let Some(rec) = self
            .sessions
            .get_mut(key)
            .and_then(|s| s.data.recordings.get_mut(recording_id))
        else {
            return;
        };
        rec.active = true;
        rec.paused = None;
        // The span starts at the command's message: what came before it
        // (re-delivered after a crash) is not part of it. The message
        // itself is recorded from the command's line on, just below.
        if let Some((tag, mark)) = anchor {
            rec.since.insert(tag, mark);
        }
        match &mut rec.snapshot {
            // A capture: its snapshot, still pending, ends with the rest of
            // this message, so nothing comes between the two.
            Some(snap) if continues(&snap.upto, from) => snap.tail = true,
            // Unreachable while the session waits for a snapshot; if it
            // ever were, writing now would put this before the snapshot.
            Some(_) => {}
            None => {
                if let Some(ev) = first {
                    self.record_event(key, recording_id, ev);
                }
            }
        }
    }

    /// Stop appending; the writer is ended once what was planned before
    /// is written ([`Recorder::flush_pending`]).
    fn stop(&mut self, key: &SessionKey, recording_id: &str) {
        if let Some(rec) = self
            .sessions
            .get_mut(key)
            .and_then(|s| s.data.recordings.get_mut(recording_id))
        {
            rec.active = false;
        }
    }

    /// Write the conversation up to `upto` from a replay of its file. The
    /// replay is asked for once the whole plan is carried out
    /// ([`Recorder::request_replays`]); until it is planned, the session's
    /// later events wait.
    fn snapshot(&mut self, key: &SessionKey, dest: &Dest, recording_id: &str, upto: At) {
        let export_only = !self
            .sessions
            .get(key)
            .is_some_and(|s| s.data.commands.registry.contains_key(&dest.path));
        self.ensure_rec(key, dest, recording_id);
        let mut meta = self.meta(key);
        meta.recording_ids = vec![recording_id.to_owned()];
        let path = self.observed.get(key).and_then(|o| o.main_path.clone());
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        if let Some(rec) = sess.data.recordings.get_mut(recording_id) {
            rec.snapshot = Some(Snapshot {
                upto,
                path,
                tail: false,
                base: rec.planned_end(),
                planned: 0,
                meta,
                export_only,
                render: None,
                reached: false,
                request: None,
                restored: false,
            });
            rec.render = None;
        }
        sess.dirty = true;
    }

    /// For a new file, the frontmatter and title open the recording.
    fn prepare_header(&mut self, key: &SessionKey, id: &str) {
        let mut meta = self.meta(key);
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
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
        rec.plan(String::from_utf8(text).unwrap_or_default());
        sess.dirty = true;
    }

    /// The part of the message holding a command: lines from the command
    /// on (`From`), or up to and including it (`UpTo`).
    fn slice_message(&self, key: &SessionKey, at: &At, how: Slice) -> Option<Event> {
        let msg = self.observed.get(key)?.last_message.as_ref()?;
        if msg.event_id != at.message_id {
            return None;
        }
        slice(msg, at.line, how)
    }
}

/// `from` is the line right after `upto`, in the same message.
fn continues(upto: &At, from: &At) -> bool {
    from.message_id == upto.message_id && from.line == upto.line + 1
}
