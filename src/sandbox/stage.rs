//! Stage threads: each narrows itself to its [`Domain`] before running any
//! of its work, and reports back how that went.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use kato::sandbox::{profiles, stage, SandboxMode};
//!
//! let roots = vec![PathBuf::from("/home/u/.claude/projects")];
//! let parser = stage::spawn("parse-claude", profiles::provider(&roots), SandboxMode::Enforce, |tx| {
//!     // Confined: may read under `roots`, nothing else.
//!     let _ = tx.send(42u32);
//! })?;
//! assert_eq!(parser.receiver().recv().ok(), Some(42));
//! parser.join()?;
//! # Ok::<(), kato::sandbox::SandboxError>(())
//! ```

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::{Applied, Domain, SandboxError, SandboxMode};

/// A running, confined stage.
#[derive(Debug)]
pub struct StageHandle<T> {
    name: String,
    applied: Applied,
    receiver: Receiver<T>,
    thread: JoinHandle<()>,
}

/// Messages a stage may have in flight before its sender blocks: the
/// channel is bounded so a fast producer (a parser) cannot buffer a whole
/// session ahead of a slow consumer (a writer).
pub const STAGE_QUEUE: usize = 256;

/// Start stage `name` on a new thread. The thread first applies `domain`
/// (in `mode`) to itself, then runs `f` with the sending half of the
/// stage's channel. `spawn` waits for the outcome of the first step: when
/// the domain cannot be applied as `mode` requires, `f` never runs and the
/// error is returned here.
///
/// The new thread starts in the caller's domain, so anything `domain`
/// creates up front (a writer's destination) is created with the caller's
/// rights; the thread then only ever narrows.
pub fn spawn<T, F>(
    name: &str,
    domain: Domain,
    mode: SandboxMode,
    f: F,
) -> Result<StageHandle<T>, SandboxError>
where
    T: Send + 'static,
    F: FnOnce(SyncSender<T>) + Send + 'static,
{
    let (tx, receiver) = mpsc::sync_channel(STAGE_QUEUE);
    let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Applied, SandboxError>>(1);
    let thread = std::thread::Builder::new()
        .name(thread_name(name))
        .spawn(move || match domain.apply(mode) {
            Ok(applied) => {
                if ready_tx.send(Ok(applied)).is_ok() {
                    drop(ready_tx);
                    f(tx);
                }
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(|source| SandboxError::StageSpawn {
            name: name.to_owned(),
            source,
        })?;
    match ready_rx.recv() {
        Ok(Ok(applied)) => Ok(StageHandle {
            name: name.to_owned(),
            applied,
            receiver,
            thread,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(SandboxError::Stage {
                name: name.to_owned(),
                source: Box::new(e),
            })
        }
        Err(_) => {
            let _ = thread.join();
            Err(SandboxError::StageDied {
                name: name.to_owned(),
            })
        }
    }
}

/// Thread names are capped at 15 bytes by the kernel.
fn thread_name(stage: &str) -> String {
    let mut n = String::from("kato:");
    for c in stage.chars() {
        if n.len() + c.len_utf8() > 15 {
            break;
        }
        n.push(c);
    }
    n
}

impl<T> StageHandle<T> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How the stage's domain was applied.
    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    /// What the stage sends.
    pub fn receiver(&self) -> &Receiver<T> {
        &self.receiver
    }

    /// The stage's work has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the stage to end. A panic in the stage is an error.
    pub fn join(self) -> Result<(), SandboxError> {
        let name = self.name;
        drop(self.receiver);
        self.thread
            .join()
            .map_err(|_| SandboxError::StageDied { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_fit_the_kernel_limit() {
        assert_eq!(thread_name("orchestrate"), "kato:orchestrat");
        assert_eq!(thread_name("w"), "kato:w");
        assert!(thread_name("ééééééééééé").len() <= 15);
    }
}
