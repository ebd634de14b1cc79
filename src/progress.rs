//! The progress bar of long one-shot exports (SPEC §11): on standard error,
//! only when it is a terminal, only once the export has run for a moment,
//! and cleared when it ends. Bytes of the session read, MB/s and ETA.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// An export shorter than this shows no bar.
const SHOW_AFTER: Duration = Duration::from_millis(400);

/// Redraw at most this often.
const REDRAW: Duration = Duration::from_millis(100);

/// Cells of the bar itself.
const CELLS: usize = 24;

/// A progress bar over `total` bytes.
#[derive(Debug)]
pub struct Progress {
    total: u64,
    started: Instant,
    last: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// A bar on standard error when it is a terminal (and `KATO_NO_PROGRESS` is
    /// not set), else one that draws nothing.
    pub fn stderr(total: u64) -> Progress {
        let enabled = io::stderr().is_terminal() && std::env::var_os("KATO_NO_PROGRESS").is_none();
        Progress {
            total,
            started: Instant::now(),
            last: None,
            enabled: enabled && total > 0,
        }
    }

    /// A bar that draws nothing.
    pub fn off() -> Progress {
        Progress {
            total: 0,
            started: Instant::now(),
            last: None,
            enabled: false,
        }
    }

    /// `done` bytes of the total are read.
    pub fn update(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        if elapsed < SHOW_AFTER || self.last.is_some_and(|l| now.duration_since(l) < REDRAW) {
            return;
        }
        self.last = Some(now);
        let text = line(done.min(self.total), self.total, elapsed);
        let mut err = io::stderr().lock();
        // A failed write to stderr loses a frame, nothing else.
        let _ = write!(err, "\r{text}\x1b[K");
        let _ = err.flush();
    }

    /// Clear the bar, if one was drawn.
    pub fn finish(&mut self) {
        if self.enabled && self.last.take().is_some() {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `[#########---------------]  37%  12.0/32.4 MB  81.2 MB/s  ETA 0:01`
pub fn line(done: u64, total: u64, elapsed: Duration) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    let filled = ((frac * CELLS as f64).round() as usize).min(CELLS);
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = done as f64 / secs;
    let eta = if rate > 0.0 {
        let left = (total.saturating_sub(done)) as f64 / rate;
        let left = left.round() as u64;
        format!("{}:{:02}", left / 60, left % 60)
    } else {
        "-:--".to_owned()
    };
    format!(
        "[{}{}] {:>3}%  {:.1}/{:.1} MB  {:.1} MB/s  ETA {eta}",
        "#".repeat(filled),
        "-".repeat(CELLS - filled),
        (frac * 100.0).floor() as u64,
        done as f64 / 1e6,
        total as f64 / 1e6,
        rate / 1e6,
    )
}

/// Where a session's parse stands, in bytes of its files, from the source
/// offsets of the events it delivers (files in order; an offset that drops
/// back means the next file began).
#[derive(Debug, Clone)]
pub struct Position {
    sizes: Vec<u64>,
    index: usize,
    base: u64,
    last: u64,
}

impl Position {
    pub fn new(sizes: Vec<u64>) -> Position {
        Position {
            sizes,
            index: 0,
            base: 0,
            last: 0,
        }
    }

    /// Bytes read so far, given the byte offset of the latest event.
    pub fn at(&mut self, offset: u64) -> u64 {
        if offset < self.last && self.index + 1 < self.sizes.len() {
            self.base += self.sizes.get(self.index).copied().unwrap_or(0);
            self.index += 1;
        }
        self.last = offset;
        let size = self.sizes.get(self.index).copied().unwrap_or(0);
        self.base + offset.min(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_how_far_how_fast_and_how_long() {
        let l = line(50_000_000, 100_000_000, Duration::from_secs(1));
        assert!(l.starts_with("[############------------]  50%"), "{l}");
        assert!(l.contains("50.0/100.0 MB"), "{l}");
        assert!(l.contains("50.0 MB/s"), "{l}");
        assert!(l.ends_with("ETA 0:01"), "{l}");
        let l = line(0, 10, Duration::from_secs(1));
        assert!(l.ends_with("ETA -:--"), "{l}");
        assert!(line(10, 10, Duration::ZERO).contains("100%"));
    }

    #[test]
    fn position_follows_files_in_order() {
        let mut p = Position::new(vec![100, 50]);
        assert_eq!(p.at(10), 10);
        assert_eq!(p.at(90), 90);
        assert_eq!(p.at(500), 100);
        // The second file.
        assert_eq!(p.at(5), 105);
        assert_eq!(p.at(40), 140);
        // Past the last file: stays there.
        assert_eq!(p.at(1), 101);
    }

    #[test]
    fn a_bar_off_draws_nothing() {
        let mut p = Progress::off();
        p.update(1);
        p.finish();
        assert!(p.last.is_none());
    }
}
