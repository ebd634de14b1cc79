//! Destination-scoped writers (SPEC §2 "write", §8 write row).
//!
//! A writer is a stage thread bound to exactly one destination file. It is
//! started by the long-lived writer-spawner (whose domain is the export
//! roots) through the spawner's own [`Confiner`], so it appears in
//! status.json and the audit log like every stage. The spawner first
//! creates the destination (or finds it) through the path policy's open
//! (`openat2` beneath the root, no symlink on any component), within its
//! own domain; the writer then narrows itself to that one file, opens it
//! again the same way and only appends. No destination is ever created or
//! opened by path.
//! Payload arrives over a channel; the orchestrator never writes exports.
//!
//! Appends are idempotent, which makes recordings exactly-once across a
//! crash: every chunk says how long the file was when the chunk was planned
//! (`base`). If the file is already longer and its bytes from `base` on are
//! a prefix of the chunk (a crash or a full disk cut the last append), only
//! the missing suffix is written. Nothing is ever truncated or rewritten.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};

use crate::policy::{Policy, Target};
use crate::sandbox::{Confiner, Stage, StageName};

/// Why an append did not happen (or not completely).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the destination could not be opened: {0}")]
    Open(String),
    #[error("the disk is full (the recording is paused and resumes when space returns)")]
    NoSpace,
    #[error("the destination is shorter ({len} bytes) than kato last left it ({base} bytes): it was changed by someone else")]
    Shrunk { len: u64, base: u64 },
    #[error("writing failed: {0}")]
    Io(String),
    #[error("the writer has stopped")]
    Gone,
}

impl WriteError {
    fn from_io(e: &io::Error) -> WriteError {
        if e.raw_os_error() == Some(28) || e.kind() == io::ErrorKind::StorageFull {
            WriteError::NoSpace
        } else {
            WriteError::Io(e.to_string())
        }
    }
}

/// A message to a writer.
pub enum WriterMsg {
    /// Make the file end with `bytes` appended at `base`. Replies with the
    /// file's new length.
    Append {
        base: u64,
        bytes: Vec<u8>,
        reply: SyncSender<Result<u64, WriteError>>,
    },
    /// Flush and end the thread.
    Close,
}

/// The orchestrator's handle on one writer thread.
pub struct WriterHandle {
    pub dest: PathBuf,
    tx: SyncSender<WriterMsg>,
    stage: Option<Stage<()>>,
}

impl WriterHandle {
    /// Append synchronously: the chunk is durable (fsync) when this returns Ok.
    pub fn append(&self, base: u64, bytes: Vec<u8>) -> Result<u64, WriteError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send(WriterMsg::Append { base, bytes, reply })
            .map_err(|_| WriteError::Gone)?;
        rx.recv().map_err(|_| WriteError::Gone)?
    }

    /// End the writer after everything sent so far is written.
    pub fn close(mut self) {
        let _ = self.tx.send(WriterMsg::Close);
        if let Some(s) = self.stage.take() {
            let _ = s.join();
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(WriterMsg::Close);
    }
}

/// Start a writer stage for `target` (from the writer-spawner, whose
/// `confiner` creates threads itself). The destination is created here,
/// in the spawner's domain, through the policy's no-follow open (a Landlock
/// rule needs an existing file); the stage then narrows to that file and
/// opens it the same way. Returns once the file is open (or why not).
pub fn spawn(
    confiner: &Confiner,
    policy: Policy,
    target: Target,
) -> Result<WriterHandle, WriteError> {
    policy
        .open_append(&target)
        .map_err(|d| WriteError::Open(d.to_string()))?;
    let (tx, rx) = mpsc::sync_channel::<WriterMsg>(4);
    let (open_tx, open_rx) = mpsc::sync_channel::<Result<(), WriteError>>(1);
    let dest = target.path.clone();
    let domain = crate::sandbox::profiles::writer(&target.path);
    let stage = confiner
        .spawn(StageName::Writer, domain, move || {
            let file = match policy.open_append(&target) {
                Ok((f, _)) => f,
                Err(d) => {
                    let _ = open_tx.send(Err(WriteError::Open(d.to_string())));
                    return;
                }
            };
            if open_tx.send(Ok(())).is_err() {
                return;
            }
            serve(file, rx);
        })
        .map_err(|e| WriteError::Open(format!("confinement: {e}")))?;
    match open_rx.recv() {
        Ok(Ok(())) => Ok(WriterHandle {
            dest,
            tx,
            stage: Some(stage),
        }),
        Ok(Err(e)) => {
            let _ = stage.join();
            Err(e)
        }
        Err(_) => {
            let _ = stage.join();
            Err(WriteError::Gone)
        }
    }
}

fn serve(mut file: File, rx: Receiver<WriterMsg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            WriterMsg::Append { base, bytes, reply } => {
                let _ = reply.send(append_at(&mut file, base, &bytes));
            }
            WriterMsg::Close => break,
        }
    }
    let _ = file.sync_all();
}

/// Make `file` end with `bytes` written at `base`, writing only what is
/// missing. The file is opened `O_APPEND`, so writes always go to its end.
pub fn append_at(file: &mut File, base: u64, bytes: &[u8]) -> Result<u64, WriteError> {
    let len = file.metadata().map_err(|e| WriteError::from_io(&e))?.len();
    let already = if len == base {
        0
    } else if len < base {
        return Err(WriteError::Shrunk { len, base });
    } else {
        let have = usize::try_from(len - base).unwrap_or(usize::MAX);
        let overlap = have.min(bytes.len());
        if prefix_matches(file, base, &bytes[..overlap]) {
            // A previous attempt wrote part (or all) of this chunk, and
            // perhaps later chunks too (a recovery replays from the start).
            overlap
        } else {
            // Someone else appended in between (a user editing their own
            // notes file): keep their bytes, append ours after them.
            0
        }
    };
    let rest = &bytes[already..];
    if !rest.is_empty() {
        file.write_all(rest).map_err(|e| WriteError::from_io(&e))?;
    }
    file.sync_data().map_err(|e| WriteError::from_io(&e))?;
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| WriteError::from_io(&e))
}

fn prefix_matches(file: &File, at: u64, want: &[u8]) -> bool {
    let mut buf = vec![0u8; want.len().min(1 << 20)];
    let mut done = 0usize;
    while done < want.len() {
        let n = (want.len() - done).min(buf.len());
        if file.read_exact_at(&mut buf[..n], at + done as u64).is_err() {
            return false;
        }
        if buf[..n] != want[done..done + n] {
            return false;
        }
        done += n;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn file(dir: &std::path::Path, content: &[u8]) -> File {
        let p = dir.join("dest.md");
        std::fs::write(&p, content).unwrap();
        OpenOptions::new().read(true).append(true).open(&p).unwrap()
    }

    #[test]
    fn appends_only_what_is_missing() {
        let d = tempfile::tempdir().unwrap();
        let mut f = file(d.path(), b"head\n");
        assert_eq!(append_at(&mut f, 5, b"chunk-1\n").unwrap(), 13);
        // The same chunk again (a retry after a crash): nothing written.
        assert_eq!(append_at(&mut f, 5, b"chunk-1\n").unwrap(), 13);
        // A shorter earlier chunk replayed in a recovery: nothing written.
        assert_eq!(append_at(&mut f, 5, b"chunk").unwrap(), 13);
        // Half of the next chunk made it before a crash.
        f.write_all(b"chu").unwrap();
        assert_eq!(append_at(&mut f, 13, b"chunk-2\n").unwrap(), 21);
        let text = std::fs::read_to_string(d.path().join("dest.md")).unwrap();
        assert_eq!(text, "head\nchunk-1\nchunk-2\n");
    }

    #[test]
    fn foreign_appends_are_kept_and_shrinking_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut f = file(d.path(), b"head\n");
        f.write_all(b"user typed\n").unwrap();
        assert_eq!(append_at(&mut f, 5, b"ours\n").unwrap(), 21);
        let text = std::fs::read_to_string(d.path().join("dest.md")).unwrap();
        assert_eq!(text, "head\nuser typed\nours\n");
        assert_eq!(
            append_at(&mut f, 100, b"x"),
            Err(WriteError::Shrunk { len: 21, base: 100 })
        );
    }
}
