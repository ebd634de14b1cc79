//! Snapshots (`::capture`, `::export`): the command's file is replayed by
//! its parse stage up to the command, rendered from a fixed base and
//! appended through the intent record. Meanwhile the session's later
//! events wait unhandled (see the module above); they are handled once the
//! whole snapshot is planned.

use std::path::PathBuf;

use super::{render_with, Recorder, ReplayKey, Stages};
use crate::commands::Format;
use crate::daemon::command::SessionKey;
use crate::event::{Event, Payload};
use crate::redact::RedactionStats;
use crate::render::markdown::{MarkdownRenderer, RenderState};

/// Where a replay stands after a batch of its events.
struct Progress {
    finished: bool,
    /// The snapshot was interrupted by an earlier run's end.
    restored: bool,
    /// The recording is paused (a full disk).
    paused: bool,
    export_only: bool,
    /// Renderer state after the snapshot (live events continue from it).
    after: Option<RenderState>,
}

impl Recorder {
    /// Ask for the replay of every snapshot of the session that has no
    /// request out, once the snapshot record is durable.
    pub(super) fn request_replays(&mut self, key: &SessionKey, stages: &mut dyn Stages) {
        let ids: Vec<String> = self.sessions.get(key).map_or_else(Vec::new, |s| {
            s.data
                .recordings
                .values()
                .filter(|r| r.snapshot.as_ref().is_some_and(|s| s.request.is_none()))
                .map(|r| r.id.clone())
                .collect()
        });
        if ids.is_empty() {
            return;
        }
        // Said in the status when it fails; the replay's intents then wait.
        let _ = self.save_session(key);
        for id in ids {
            self.start_replay(key, &id, stages);
        }
    }

    /// Sessions with a snapshot that names no file (saved by an older
    /// kato) and no file seen in this run: [`Recorder::locate`] gives them
    /// one at start, so the snapshot does not wait for the next message.
    pub fn unlocated(&self) -> Vec<SessionKey> {
        self.sessions
            .iter()
            .filter(|(k, s)| {
                self.observed.get(*k).is_none_or(|o| o.main_path.is_none())
                    && s.data
                        .recordings
                        .values()
                        .any(|r| r.snapshot.as_ref().is_some_and(|n| n.path.is_none()))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The file that holds the session's human messages.
    pub fn locate(&mut self, key: &SessionKey, path: PathBuf) {
        if self.sessions.contains_key(key) {
            self.observed_mut(key).main_path.get_or_insert(path);
        }
    }

    /// Ask the parse stage to replay the session's file for a snapshot,
    /// planned again from its base.
    pub(super) fn start_replay(&mut self, key: &SessionKey, id: &str, stages: &mut dyn Stages) {
        let generation = self.next_request;
        self.next_request += 1;
        let main_path = self.observed.get(key).and_then(|o| o.main_path.clone());
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        let Some(snap) = sess
            .data
            .recordings
            .get_mut(id)
            .and_then(|r| r.snapshot.as_mut())
        else {
            return;
        };
        let Some(path) = snap.path.clone().or(main_path) else {
            // Nothing seen yet in this run (a snapshot restored from an
            // older state): the replay waits until the session's file
            // shows up again.
            return;
        };
        snap.planned = 0;
        snap.reached = false;
        snap.render = None;
        let rk = ReplayKey {
            session: key.clone(),
            recording: id.to_owned(),
            generation,
        };
        let sent = stages.replay(key.provider, &path, rk, snap.upto.message_id.clone());
        snap.request = sent.then_some(generation);
    }

    /// Events of a replay (a capture or export) arrive here in order.
    pub fn on_replayed(
        &mut self,
        rk: &ReplayKey,
        events: &[Event],
        done: bool,
        stages: &mut dyn Stages,
    ) {
        let Some(progress) = self.plan_replayed(rk, events, done) else {
            return;
        };
        let key = &rk.session;
        let id = rk.recording.as_str();
        if progress.finished {
            self.finish_snapshot(key, id, progress, stages);
        } else if !progress.paused {
            self.commit_intent(key, id, stages);
        }
        // A paused recording is tried again on the heartbeat, not with
        // every batch of the replay (each try saves the growing intent).
    }

    /// Render replayed events into the snapshot's intent. `None` when the
    /// replay answers no request awaited (an earlier one, or a snapshot
    /// already finished).
    fn plan_replayed(&mut self, rk: &ReplayKey, events: &[Event], done: bool) -> Option<Progress> {
        let sess = self.sessions.get_mut(&rk.session)?;
        let rec = sess.data.recordings.get_mut(&rk.recording)?;
        let snap = rec
            .snapshot
            .as_mut()
            .filter(|s| s.request == Some(rk.generation))?;
        let mut text = String::new();
        if snap.render.is_none() {
            let mut out = Vec::new();
            let st = if rec.dest.format == Format::Markdown {
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
            if *ev.session_id != *rk.session.session {
                continue;
            }
            let parts = if ev.event_id == snap.upto.message_id {
                snap.reached = true;
                // A capture records the rest of its message (the lines
                // after the command) right after the snapshot.
                let rest = snap
                    .tail
                    .then(|| slice(ev, snap.upto.line + 1, Slice::From));
                vec![slice(ev, snap.upto.line, Slice::UpTo), rest.flatten()]
            } else {
                vec![Some(ev.clone())]
            };
            for mut ev in parts.into_iter().flatten() {
                if matches!(ev.payload, Payload::KatoCommand { .. }) {
                    continue;
                }
                self.redactor.redact_event(&mut ev, &mut stats);
                let st = snap.render.take().unwrap_or_default();
                let (chunk, st) = render_with(&self.markdown, rec.dest.format, st, &ev);
                snap.render = Some(st);
                text.push_str(&chunk);
            }
        }
        for r in &stats.redactions {
            *rec.redactions
                .entry(r.label.as_str().to_owned())
                .or_default() += 1;
        }
        let finished = done || snap.reached;
        let progress = Progress {
            finished,
            restored: snap.restored,
            paused: rec.paused.is_some(),
            export_only: snap.export_only,
            after: snap.render.clone(),
        };
        if !text.is_empty() {
            let base = snap.base + snap.planned;
            snap.planned += text.len() as u64;
            rec.plan_at(base, text);
        }
        sess.dirty = true;
        Some(progress)
    }

    /// The whole snapshot is planned: the recording continues from it (an
    /// export's stops, so its writer is closed once the snapshot is
    /// written), and the events held back meanwhile are handled in order,
    /// written in the same flush as the snapshot's end.
    fn finish_snapshot(
        &mut self,
        key: &SessionKey,
        id: &str,
        progress: Progress,
        stages: &mut dyn Stages,
    ) {
        let Some(sess) = self.sessions.get_mut(key) else {
            return;
        };
        if let Some(rec) = sess.data.recordings.get_mut(id) {
            rec.snapshot = None;
            rec.render = progress.after;
            if progress.export_only {
                rec.active = false;
            }
            if progress.restored {
                self.warnings.push(format!(
                    "recording {} to {} resumed after the restart: its interrupted snapshot is complete",
                    rec.id,
                    rec.dest.path.display()
                ));
            }
        }
        sess.dirty = true;
        self.resume_deferred(key, stages);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slice {
    From,
    UpTo,
}

/// A copy of a human message with only some of its lines.
pub(super) fn slice(msg: &Event, line: u32, how: Slice) -> Option<Event> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ProviderId, Source};

    fn msg(text: &str) -> Event {
        Event::new(
            ProviderId::Claude,
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
