//! The operational log (SPEC §10) via `tracing`.
//!
//! - On a terminal (or any stderr): human-readable, or JSON with
//!   `--log-format json` / `[log] format = "json"`.
//! - Under systemd (`JOURNAL_STREAM` set): journald; when the journal
//!   socket is absent, stderr instead (with a note).
//! - Detached (`kato start`): `kato.log` in the logs directory, capped at
//!   [`LOG_CAP`] bytes and rotated to `kato.log.1` … `kato.log.3`. One
//!   `kato-log` thread owns the file, so no stage thread ever opens it
//!   (a stage's domain need not include the logs directory). Every new
//!   file holds the audit chain head (records and last hash) among its
//!   first lines: an anchor for `kato audit verify --anchor` kept outside
//!   the state directory.
//!
//! No chat content is logged above debug level: messages carry paths,
//! counts and ids only. Every line passes [`crate::terminal`]'s sanitiser
//! (a path may come from a chat), so lines carry no colour codes either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::Duration;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::audit::HeadCell;
use crate::config::LogFormat;
use crate::error::{Error, Result};
use crate::sandbox::{profiles, Confiner, Stage, StageName};

/// Name of the detached daemon's log file.
pub const LOG_FILE: &str = "kato.log";
/// Size at which `kato.log` is rotated.
pub const LOG_CAP: u64 = 10 << 20;
/// Rotated files kept (`kato.log.1` … `kato.log.N`).
pub const LOG_KEEP: u32 = 3;

/// Keeps the log thread alive; dropping it flushes the file.
pub struct LogGuard {
    tx: Option<Sender<Msg>>,
    handle: Option<Stage<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let (ack_tx, ack_rx) = mpsc::sync_channel(1);
            if tx.send(Msg::Flush(ack_tx)).is_ok() {
                let _ = ack_rx.recv_timeout(Duration::from_secs(2));
            }
        }
        // The thread keeps running (the global subscriber holds a sender);
        // it ends with the process.
        drop(self.handle.take());
    }
}

enum Msg {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Set up the global subscriber. `detached` sends everything to
/// `kato.log` in `logs_dir`, from a `log` stage started by `confiner`.
pub fn init(
    confiner: &Confiner,
    format: LogFormat,
    level: &str,
    detached: bool,
    logs_dir: &Path,
    head: HeadCell,
) -> Result<LogGuard> {
    // kato's own records at the configured level, everything else (the
    // crates it uses) from warnings up.
    let level: LevelFilter = level
        .parse()
        .map_err(|e| Error::Usage(format!("log level `{level}`: {e}")))?;
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("kato", level);
    let mut guard = LogGuard {
        tx: None,
        handle: None,
    };
    let mut note = None;
    let (writer, journald) = if detached {
        super::state::ensure_private_dir(logs_dir)
            .map_err(|e| Error::io(format!("creating {}", logs_dir.display()), e))?;
        let (tx, handle) = spawn_file_writer(confiner, logs_dir.join(LOG_FILE), head)?;
        guard.tx = Some(tx.clone());
        guard.handle = Some(handle);
        (BoxMakeWriter::new(ChannelWriter { tx }), None)
    } else if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(layer) => (
                BoxMakeWriter::new(sanitized_stderr),
                Some(layer.with_syslog_identifier("kato".into())),
            ),
            Err(e) => {
                note = Some(format!(
                    "journald is not reachable ({e}); logging to stderr"
                ));
                (BoxMakeWriter::new(sanitized_stderr), None)
            }
        }
    } else {
        (BoxMakeWriter::new(sanitized_stderr), None)
    };
    let fmt_layer = if journald.is_some() {
        None
    } else {
        let base = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_thread_names(true);
        Some(match format {
            LogFormat::Human => base.boxed(),
            LogFormat::Json => base.json().boxed(),
        })
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(fmt_layer)
        .try_init();
    if let Some(n) = note {
        tracing::warn!("{n}");
    }
    Ok(guard)
}

fn sanitized_stderr() -> crate::terminal::Writer<io::Stderr> {
    crate::terminal::Writer::new(io::stderr())
}

/// One formatted event, sent whole to the log thread when dropped.
struct LineWriter {
    buf: Vec<u8>,
    tx: Sender<Msg>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.tx.send(Msg::Line(std::mem::take(&mut self.buf)));
        }
    }
}

struct ChannelWriter {
    tx: Sender<Msg>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ChannelWriter {
    type Writer = crate::terminal::Writer<LineWriter>;
    fn make_writer(&'a self) -> Self::Writer {
        crate::terminal::Writer::new(LineWriter {
            buf: Vec::new(),
            tx: self.tx.clone(),
        })
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn spawn_file_writer(
    confiner: &Confiner,
    path: PathBuf,
    head: HeadCell,
) -> Result<(Sender<Msg>, Stage<()>)> {
    let file =
        open_append(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let (tx, rx) = mpsc::channel();
    let logs_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // The thread confines itself to the logs directory before it writes a
    // line; when it cannot (enforce mode) start-up fails here.
    let stage = confiner.spawn(StageName::Log, profiles::log_writer(&logs_dir), move || {
        file_writer(path, file, rx, LOG_CAP, &head)
    })?;
    Ok((tx, stage))
}

/// Append lines, rotating when the file would pass `cap`; each new file
/// gets the audit chain head from `head`.
fn file_writer(path: PathBuf, file: File, rx: Receiver<Msg>, cap: u64, head: &HeadCell) {
    let mut size = file.metadata().map(|m| m.len()).unwrap_or_default();
    let mut file = Some(file);
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Line(line) => {
                if size > 0 && size + line.len() as u64 > cap {
                    drop(file.take());
                    rotate(&path);
                    file = open_append(&path).ok();
                    size = 0;
                    if let Some(h) = head.get() {
                        // Formatted like every line and queued to this very
                        // thread: it lands among the new file's first lines.
                        super::auditor::log_chain_head(&h, "rotation");
                    }
                }
                if let Some(f) = file.as_mut() {
                    if f.write_all(&line).is_ok() {
                        size += line.len() as u64;
                    }
                }
            }
            Msg::Flush(ack) => {
                if let Some(f) = file.as_mut() {
                    let _ = f.sync_data();
                }
                let _ = ack.send(());
            }
        }
    }
}

/// `kato.log` → `kato.log.1` → … → `kato.log.N` (the oldest is dropped).
fn rotate(path: &Path) {
    let name = |n: u32| {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    };
    let _ = fs::remove_file(name(LOG_KEEP));
    for n in (1..LOG_KEEP).rev() {
        let _ = fs::rename(name(n), name(n + 1));
    }
    let _ = fs::rename(path, name(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_cap_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let file = open_append(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let h = std::thread::spawn(move || file_writer(p, file, rx, 100, &HeadCell::default()));
        for i in 0..20 {
            tx.send(Msg::Line(
                format!("line {i:02} {}\n", "x".repeat(30)).into_bytes(),
            ))
            .unwrap();
        }
        drop(tx);
        h.join().unwrap();
        let current = fs::read_to_string(&path).unwrap();
        assert!(current.len() <= 100, "{}", current.len());
        assert!(current.contains("line 19"), "{current}");
        for n in 1..=LOG_KEEP {
            assert!(dir.path().join(format!("{LOG_FILE}.{n}")).exists(), "{n}");
        }
        assert!(!dir
            .path()
            .join(format!("{LOG_FILE}.{}", LOG_KEEP + 1))
            .exists());
    }
}
