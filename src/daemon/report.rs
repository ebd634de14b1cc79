//! What the daemon reports: its phase, counters and warnings, and when
//! `status.json` is due (at most once per [`COALESCE`], at least once per
//! heartbeat).

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::event::ProviderId;

pub(super) use super::status::Phase;
use super::status::{self, rfc3339, Counters, Status, Warning, MAX_SKIPPED_LISTED};

/// Shortest interval between two status writes.
pub(super) const COALESCE: std::time::Duration = std::time::Duration::from_secs(1);
/// Most warnings kept for `kato status`.
const MAX_WARNINGS: usize = 50;

/// Counters, warnings and readiness, and whether status.json is stale.
#[derive(Debug)]
pub(super) struct Report {
    pub warnings: VecDeque<Warning>,
    pub counters: Counters,
    pub started_at: SystemTime,
    pub ready: bool,
    pub phase: Phase,
    /// Something changed since the last status write.
    pub dirty: bool,
    pub last_write: Option<Instant>,
    /// Session files skipped or quarantined, with their reason.
    pub skipped: Skipped,
}

/// Skipped session files: the first [`MAX_SKIPPED_LISTED`] with their
/// reason (status warnings), the rest counted. A file read again is
/// taken off.
#[derive(Debug, Default)]
pub(super) struct Skipped {
    listed: VecDeque<Warning>,
    /// Fingerprints of the files beyond the listed ones.
    unlisted: HashSet<u64>,
}

impl Skipped {
    /// Files skipped now (listed or not).
    pub fn total(&self) -> usize {
        self.listed.len() + self.unlisted.len()
    }

    /// The listed ones, as status warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Warning> {
        self.listed.iter()
    }
}

impl Report {
    pub fn new() -> Report {
        Report {
            warnings: VecDeque::new(),
            counters: Counters::default(),
            started_at: SystemTime::now(),
            ready: false,
            phase: Phase::Starting,
            dirty: true,
            last_write: None,
            skipped: Skipped::default(),
        }
    }

    /// A session file is skipped (or quarantined) for `reason`: a status
    /// warning while it is among the first [`MAX_SKIPPED_LISTED`], counted
    /// beyond. A file already listed gets the new reason.
    pub fn skip(&mut self, provider: ProviderId, path: PathBuf, reason: String) {
        let message = format!("skipped {}: {reason}", path.display());
        let s = &mut self.skipped;
        if let Some(w) = s.listed.iter_mut().find(|w| w.path.as_ref() == Some(&path)) {
            if w.message != message {
                tracing::info!(provider = provider.as_str(), "{message}");
                w.message = message;
                w.at = rfc3339(SystemTime::now());
                self.dirty = true;
            }
            return;
        }
        let fp = super::state::fingerprint(&path.to_string_lossy());
        if s.unlisted.contains(&fp) {
            return;
        }
        tracing::info!(provider = provider.as_str(), "{message}");
        if s.listed.len() >= MAX_SKIPPED_LISTED {
            s.unlisted.insert(fp);
        } else {
            s.listed.push_back(Warning {
                at: rfc3339(SystemTime::now()),
                level: "warn".into(),
                source: provider.as_str().to_owned(),
                message,
                path: Some(path),
            });
        }
        self.dirty = true;
    }

    /// `path` was read (or is gone): no longer skipped.
    pub fn unskip(&mut self, path: &Path) {
        let s = &mut self.skipped;
        let before = s.total();
        if before == 0 {
            return;
        }
        s.listed.retain(|w| w.path.as_deref() != Some(path));
        s.unlisted
            .remove(&super::state::fingerprint(&path.to_string_lossy()));
        if s.total() != before {
            self.dirty = true;
        }
    }

    /// A status warning (the oldest goes beyond [`MAX_WARNINGS`]), also logged.
    pub fn warn(&mut self, source: &str, message: String) {
        tracing::warn!(source, "{message}");
        if self.warnings.len() >= MAX_WARNINGS {
            self.warnings.pop_front();
        }
        self.warnings.push_back(Warning {
            at: rfc3339(SystemTime::now()),
            level: "warn".into(),
            source: source.to_owned(),
            message,
            path: None,
        });
        self.dirty = true;
    }

    /// The first time every stage is ready: the time it took, in ms.
    pub fn become_ready(&mut self) -> Option<u64> {
        if self.ready {
            return None;
        }
        self.ready = true;
        let ms = self
            .started_at
            .elapsed()
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        self.counters.ready_ms = Some(ms);
        Some(ms)
    }

    /// When a pending change may be written (`None`: nothing pending).
    pub fn next_write(&self, now: Instant) -> Option<Instant> {
        self.dirty
            .then(|| self.last_write.map_or(now, |t| t + COALESCE))
    }

    /// Whether a write now respects [`COALESCE`].
    pub fn may_write(&self, now: Instant) -> bool {
        self.last_write.is_none_or(|t| now >= t + COALESCE)
    }

    /// Status warnings: the general ones, then the listed skipped files.
    pub fn all_warnings(&self) -> Vec<Warning> {
        self.warnings
            .iter()
            .chain(self.skipped.warnings())
            .cloned()
            .collect()
    }

    /// Write `status.json` (a failure is logged; the next write retries).
    pub fn write(&mut self, runtime_dir: &Path, st: &Status) {
        match status::write(runtime_dir, st) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!("cannot write status.json: {e}"),
        }
        self.last_write = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_files_are_listed_up_to_the_cap_then_counted() {
        let mut r = Report::new();
        for i in 0..MAX_SKIPPED_LISTED + 5 {
            let p = PathBuf::from(format!("/r/{i}.json"));
            r.skip(ProviderId::Gemini, p.clone(), "a symbolic link".into());
            // Seen again on a rescan: not counted twice.
            r.skip(ProviderId::Gemini, p, "a symbolic link".into());
        }
        assert_eq!(r.skipped.total(), MAX_SKIPPED_LISTED + 5);
        let w = r.all_warnings();
        assert_eq!(w.len(), MAX_SKIPPED_LISTED);
        assert_eq!(w[0].message, "skipped /r/0.json: a symbolic link");
        assert_eq!(w[0].path.as_deref(), Some(Path::new("/r/0.json")));
        // A new reason replaces the old one; a file read again is taken off.
        r.skip(ProviderId::Gemini, "/r/0.json".into(), "too large".into());
        assert_eq!(r.all_warnings()[0].message, "skipped /r/0.json: too large");
        r.unskip(Path::new("/r/0.json"));
        r.unskip(Path::new(&format!("/r/{}.json", MAX_SKIPPED_LISTED + 1)));
        assert_eq!(r.skipped.total(), MAX_SKIPPED_LISTED + 3);
        assert!(r
            .all_warnings()
            .iter()
            .all(|w| w.path.as_deref() != Some(Path::new("/r/0.json"))));
    }
}
