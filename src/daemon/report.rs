//! What the daemon reports: its phase, counters and warnings, and when
//! `status.json` is due (at most once per [`COALESCE`], at least once per
//! heartbeat).

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Instant, SystemTime};

pub(super) use super::status::Phase;
use super::status::{self, rfc3339, Counters, Status, Warning};

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

    /// Write `status.json` (a failure is logged; the next write retries).
    pub fn write(&mut self, runtime_dir: &Path, st: &Status) {
        match status::write(runtime_dir, st) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!("cannot write status.json: {e}"),
        }
        self.last_write = Some(Instant::now());
    }
}
