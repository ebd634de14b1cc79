//! Snapshots (`::capture`, `::export`): the command's file is replayed by
//! its parse stage up to the command, rendered from a fixed base and
//! appended through the intent record; live events wait meanwhile.

use super::{render_with, Intent, Recorder, ReplayKey, Stages};
use crate::commands::Format;
use crate::daemon::command::SessionKey;
use crate::event::{Event, Payload};
use crate::redact::RedactionStats;
use crate::render::markdown::{MarkdownRenderer, RenderState};

/// Where a replay stands after a batch of its events.
struct Progress {
    finished: bool,
    export_only: bool,
    /// Renderer state after the snapshot (live events continue from it).
    after: Option<RenderState>,
}

impl Recorder {
    /// Ask the parse stage to replay the session's file for a snapshot.
    pub(super) fn start_replay(&mut self, key: &SessionKey, id: &str, stages: &mut dyn Stages) {
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
        stages.replay(
            key.provider,
            &path,
            ReplayKey {
                session: key.clone(),
                recording: id.to_owned(),
            },
            upto,
        );
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
        self.commit_intent(key, id, stages);
        if progress.finished {
            self.finish_snapshot(key, id, progress, stages);
        }
    }

    /// Render replayed events into the snapshot's intent.
    fn plan_replayed(&mut self, rk: &ReplayKey, events: &[Event], done: bool) -> Option<Progress> {
        let sess = self.sessions.get_mut(&rk.session)?;
        let rec = sess.data.recordings.get_mut(&rk.recording)?;
        let snap = rec.snapshot.as_mut()?;
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
            if ev.session_id != rk.session.session {
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
        let progress = Progress {
            finished: done || snap.reached,
            export_only: snap.export_only,
            after: snap.render.clone(),
        };
        sess.dirty = true;
        Some(progress)
    }

    /// The snapshot is written: live events queued meanwhile follow it; an
    /// export's one-shot destination is closed.
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
        let queued = sess.queued.remove(id).unwrap_or_default();
        if let Some(rec) = sess.data.recordings.get_mut(id) {
            if rec.intent.is_none() {
                rec.snapshot = None;
            }
            rec.render = progress.after;
            if progress.export_only {
                rec.active = false;
            }
        }
        sess.dirty = true;
        for ev in queued {
            self.record_event(key, id, ev);
        }
        self.flush_pending(stages);
        if progress.export_only {
            if let Some(w) = self.writers.remove(id) {
                w.close();
            }
        }
        self.save_dirty();
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
