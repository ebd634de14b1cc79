//! Stage threads: the one way kato starts a confined thread.
//!
//! A [`Confiner`] is an explicit value (no global): the sandbox mode, who
//! creates the threads (the supervisor, or the calling thread) and where
//! each stage's outcome is reported. [`Confiner::spawn`] starts a stage: the
//! new thread narrows itself to its [`Domain`] before running any of its
//! work, and `spawn` returns only once that is done. A domain that cannot be
//! applied as the mode requires is an error: the work never runs.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use kato::sandbox::{profiles, Confiner, SandboxMode, StageName};
//!
//! let roots = vec![PathBuf::from("/home/u/.claude/projects")];
//! let confiner = Confiner::new(SandboxMode::Enforce);
//! let parser = confiner.spawn(
//!     StageName::Provider("claude".into()),
//!     profiles::provider(&roots),
//!     || 42u32, // confined: may read under `roots`, nothing else
//! )?;
//! assert_eq!(parser.join()?, 42);
//! # Ok::<(), kato::sandbox::SandboxError>(())
//! ```

use std::fmt;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};

use serde::{Deserialize, Serialize};

use super::{Applied, Domain, SandboxError, SandboxMode};

/// Messages a stage may have in flight before its sender blocks, for
/// stages that talk over a bounded channel: a fast producer (a parser)
/// cannot buffer a whole session ahead of a slow consumer (a writer).
pub const STAGE_QUEUE: usize = 256;

/// Every kind of stage kato runs (ARCHITECTURE.md, "Stages, threads and
/// domains"). Serialized as its name in status.json and the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum StageName {
    /// The main thread of `kato run`, in the union of every domain.
    Supervisor,
    /// `kato-orch`.
    Orchestrator,
    /// `kato-<provider>`: watch + parse of one provider.
    Provider(String),
    /// `kato-writers`: creates one writer per destination.
    WriterSpawner,
    /// `kato-writer`: appends to one destination.
    Writer,
    /// `kato-signals`: the signal relay.
    Signals,
    /// `kato-log`: `kato.log` of a detached daemon.
    Log,
    /// The parse thread of a one-shot export.
    ExportParse,
    /// The metadata thread of a one-shot Markdown export.
    ExportMeta,
    /// `kato-sync`: the daemon's autosync.
    Sync,
    /// The parse thread of `kato sync`.
    SyncParse,
}

impl StageName {
    /// One stage of this name per destination (a writer): its entries are
    /// told apart by the file they write, and end with it.
    pub fn per_destination(&self) -> bool {
        match self {
            StageName::Writer => true,
            StageName::Supervisor
            | StageName::Orchestrator
            | StageName::Provider(_)
            | StageName::WriterSpawner
            | StageName::Signals
            | StageName::Log
            | StageName::ExportParse
            | StageName::ExportMeta
            | StageName::Sync
            | StageName::SyncParse => false,
        }
    }

    /// The name in status.json, the audit log and error messages.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        Cow::Borrowed(match self {
            StageName::Supervisor => "supervisor",
            StageName::Orchestrator => "orchestrator",
            StageName::Provider(p) => return Cow::Owned(format!("provider:{p}")),
            StageName::WriterSpawner => "writer-spawner",
            StageName::Writer => "writer",
            StageName::Signals => "signals",
            StageName::Log => "log",
            StageName::ExportParse => "export-parse",
            StageName::ExportMeta => "export-meta",
            StageName::Sync => "sync",
            StageName::SyncParse => "sync-parse",
        })
    }

    /// The thread's name (at most 15 bytes, the kernel's limit).
    pub fn thread_name(&self) -> String {
        let name = match self {
            StageName::Supervisor => "kato".to_owned(),
            StageName::Orchestrator => "kato-orch".to_owned(),
            StageName::Provider(p) => format!("kato-{p}"),
            StageName::WriterSpawner => "kato-writers".to_owned(),
            StageName::Writer => "kato-writer".to_owned(),
            StageName::Signals => "kato-signals".to_owned(),
            StageName::Log => "kato-log".to_owned(),
            StageName::ExportParse => "kato:export-parse".to_owned(),
            StageName::ExportMeta => "kato:export-meta".to_owned(),
            StageName::Sync => "kato-sync".to_owned(),
            StageName::SyncParse => "kato:sync-parse".to_owned(),
        };
        cap_thread_name(name)
    }
}

/// Thread names are capped at 15 bytes by the kernel.
fn cap_thread_name(mut name: String) -> String {
    if name.len() > 15 {
        let mut end = 15;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl From<StageName> for String {
    fn from(s: StageName) -> String {
        s.as_str().into_owned()
    }
}

/// A stage name that is none of [`StageName`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage `{0}`")]
pub struct UnknownStage(pub String);

impl TryFrom<String> for StageName {
    type Error = UnknownStage;

    fn try_from(s: String) -> Result<StageName, UnknownStage> {
        Ok(match s.as_str() {
            "supervisor" => StageName::Supervisor,
            "orchestrator" => StageName::Orchestrator,
            "writer-spawner" => StageName::WriterSpawner,
            "writer" => StageName::Writer,
            "signals" => StageName::Signals,
            "log" => StageName::Log,
            "export-parse" => StageName::ExportParse,
            "export-meta" => StageName::ExportMeta,
            "sync" => StageName::Sync,
            "sync-parse" => StageName::SyncParse,
            other => match other.strip_prefix("provider:") {
                Some(p) if !p.is_empty() => StageName::Provider(p.to_owned()),
                _ => return Err(UnknownStage(s)),
            },
        })
    }
}

/// How a stage's domain was applied, as status.json and the audit log say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageState {
    /// Everything the domain asks for is enforced by the kernel.
    Enforced,
    /// Best-effort mode: confined as far as the kernel allowed.
    Degraded,
    /// The domain could not be applied; the stage's work did not run.
    #[default]
    Failed,
}

impl StageState {
    /// The state of a domain applied with this outcome.
    pub fn of(applied: &Applied) -> StageState {
        if applied.is_fully_enforced() {
            StageState::Enforced
        } else {
            StageState::Degraded
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Enforced => "enforced",
            StageState::Degraded => "degraded",
            StageState::Failed => "failed",
        }
    }
}

/// One stage's confinement, reported from the stage's own thread right
/// after it applied (or failed to apply) its domain, before its work runs.
#[derive(Debug)]
pub struct StageOutcome<'a> {
    pub stage: &'a StageName,
    /// The name of the stage's thread.
    pub thread: &'a str,
    pub domain: &'a Domain,
    pub result: Result<&'a Applied, &'a SandboxError>,
}

/// Where a [`Confiner`] reports each stage (the daemon: status.json and
/// the audit log).
pub trait StageReport: Send + Sync {
    fn stage(&self, outcome: StageOutcome<'_>);

    /// The stage's work returned (its thread is about to end). A stage
    /// that lives as long as one destination (a writer) leaves the report
    /// here, so the report does not grow with every destination ever used.
    fn ended(&self, _stage: &StageName, _domain: &Domain) {}
}

/// A thread-creation request served by the supervisor.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Who creates a [`Confiner`]'s threads.
#[derive(Clone)]
enum Creator {
    /// The thread that calls [`Confiner::spawn`].
    Caller,
    /// The supervisor thread; other threads ask it through the channel.
    Supervisor { id: ThreadId, tx: Sender<Job> },
}

/// The one way to start a confined thread. Cloneable; see the module docs.
#[derive(Clone)]
pub struct Confiner {
    mode: SandboxMode,
    creator: Creator,
    report: Option<Arc<dyn StageReport>>,
    /// Apply domains. Only unit tests of the crate build a confiner that
    /// does not (`Confiner::unconfined`).
    confines: bool,
}

impl fmt::Debug for Confiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confiner")
            .field("mode", &self.mode)
            .field(
                "supervised",
                &matches!(self.creator, Creator::Supervisor { .. }),
            )
            .field("confines", &self.confines)
            .finish()
    }
}

/// The supervisor's side of a supervised [`Confiner`]: creates the threads
/// asked for until every clone of the confiner is dropped.
pub struct Supervisor {
    rx: Receiver<Job>,
}

impl Supervisor {
    /// Serve thread-creation requests (on the thread that made the
    /// confiner) until no confiner is left to ask.
    pub fn serve(self) {
        for job in self.rx {
            job();
        }
    }
}

impl Confiner {
    /// Stages in `mode`, created by the thread that asks for them.
    pub fn new(mode: SandboxMode) -> Confiner {
        Confiner {
            mode,
            creator: Creator::Caller,
            report: None,
            confines: true,
        }
    }

    /// Stages in `mode`, created by the calling thread (the supervisor)
    /// whichever thread asks: requests from other threads wait until the
    /// returned [`Supervisor`] serves them.
    pub fn supervised(mode: SandboxMode) -> (Confiner, Supervisor) {
        let (tx, rx) = mpsc::channel();
        let confiner = Confiner {
            creator: Creator::Supervisor {
                id: thread::current().id(),
                tx,
            },
            ..Confiner::new(mode)
        };
        (confiner, Supervisor { rx })
    }

    /// A confiner that applies nothing, for unit tests of stages whose
    /// confinement is tested elsewhere (a test process cannot be confined
    /// and go on testing).
    #[cfg(test)]
    pub(crate) fn unconfined() -> Confiner {
        Confiner {
            confines: false,
            ..Confiner::new(SandboxMode::BestEffort)
        }
    }

    /// Report every stage's outcome to `report`.
    pub fn with_report(mut self, report: Arc<dyn StageReport>) -> Confiner {
        self.report = Some(report);
        self
    }

    /// The same confiner, creating threads from the calling thread: for a
    /// stage that starts stages narrower than itself (the writer-spawner).
    pub fn from_caller(&self) -> Confiner {
        Confiner {
            creator: Creator::Caller,
            ..self.clone()
        }
    }

    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// Stages are confined (false only for a unit test's confiner).
    pub fn confines(&self) -> bool {
        self.confines
    }

    /// Start stage `name` on a new thread. The thread first applies
    /// `domain` (in the confiner's mode) to itself and reports the outcome,
    /// then runs `f`. `spawn` waits for the first step: when the domain
    /// cannot be applied as the mode requires (in `enforce`, anything
    /// short of full enforcement), `f` never runs and the error is
    /// returned here.
    ///
    /// The new thread starts in its creator's domain and only ever narrows;
    /// a file `domain` grants writing must already exist (the creator
    /// makes it, with its own rights, through the path policy).
    pub fn spawn<T, F>(
        &self,
        name: StageName,
        domain: Domain,
        f: F,
    ) -> Result<Stage<T>, SandboxError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.spawn_built(name, move || domain, move |_| f())
    }

    /// [`Confiner::spawn`] with the domain built by the new thread itself,
    /// before it narrows (still in its creator's domain: a supervised
    /// stage can see what the supervisor can, e.g. list a root whose files
    /// it is granted one by one); `f` is told what it was granted.
    pub fn spawn_built<T, B, F>(
        &self,
        name: StageName,
        build: B,
        f: F,
    ) -> Result<Stage<T>, SandboxError>
    where
        T: Send + 'static,
        B: FnOnce() -> Domain + Send + 'static,
        F: FnOnce(&Domain) -> T + Send + 'static,
    {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Option<Applied>, SandboxError>>(1);
        let thread_name = name.thread_name();
        let (mode, confines, report) = (self.mode, self.confines, self.report.clone());
        let stage = name.clone();
        let body = move || -> Option<T> {
            let domain = build();
            let result = if confines {
                domain.apply(mode).map(Some)
            } else {
                Ok(None)
            };
            if let Some(report) = &report {
                let thread = thread::current();
                let result = match &result {
                    Ok(Some(a)) => Some(Ok(a)),
                    Ok(None) => None,
                    Err(e) => Some(Err(e)),
                };
                if let Some(result) = result {
                    report.stage(StageOutcome {
                        stage: &stage,
                        thread: thread.name().unwrap_or("?"),
                        domain: &domain,
                        result,
                    });
                }
            }
            let run = result.is_ok();
            if ready_tx.send(result).is_err() || !run {
                return None;
            }
            drop(ready_tx);
            let out = f(&domain);
            if let Some(report) = &report {
                report.ended(&stage, &domain);
            }
            Some(out)
        };
        let thread = self
            .create(thread_name, body)
            .map_err(|source| SandboxError::StageSpawn {
                name: name.clone(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(applied)) => Ok(Stage {
                name,
                applied,
                thread,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(SandboxError::Stage {
                    name,
                    source: Box::new(e),
                })
            }
            Err(_) => {
                let _ = thread.join();
                Err(SandboxError::StageDied { name })
            }
        }
    }

    /// Create the thread: here, or by the supervisor.
    fn create<R: Send + 'static>(
        &self,
        name: String,
        body: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<JoinHandle<R>> {
        let tx = match &self.creator {
            Creator::Supervisor { id, tx } if *id != thread::current().id() => tx,
            Creator::Caller | Creator::Supervisor { .. } => {
                return thread::Builder::new().name(name).spawn(body)
            }
        };
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = reply_tx.send(thread::Builder::new().name(name).spawn(body));
        });
        tx.send(job)
            .map_err(|_| io::Error::other("the supervisor has stopped"))?;
        reply_rx
            .recv()
            .map_err(|_| io::Error::other("the supervisor dropped a spawn request"))?
    }
}

/// A running, confined stage.
#[derive(Debug)]
pub struct Stage<T> {
    name: StageName,
    /// `None` only from a unit test's unconfined [`Confiner`].
    applied: Option<Applied>,
    thread: JoinHandle<Option<T>>,
}

impl<T> Stage<T> {
    pub fn name(&self) -> &StageName {
        &self.name
    }

    /// How the stage's domain was applied.
    pub fn applied(&self) -> Option<&Applied> {
        self.applied.as_ref()
    }

    /// The stage's work has returned (or panicked).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Wait for the stage to end and take what its work returned. A panic
    /// in the stage is an error.
    pub fn join(self) -> Result<T, SandboxError> {
        let name = self.name;
        match self.thread.join() {
            Ok(Some(t)) => Ok(t),
            Ok(None) | Err(_) => Err(SandboxError::StageDied { name }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_fit_the_kernel_limit() {
        assert_eq!(StageName::ExportParse.thread_name(), "kato:export-par");
        assert_eq!(StageName::Orchestrator.thread_name(), "kato-orch");
        assert_eq!(
            StageName::Provider("ééééééééééé".into())
                .thread_name()
                .len(),
            15
        );
    }

    #[test]
    fn stage_names_round_trip_through_their_serde_names() {
        for s in [
            StageName::Supervisor,
            StageName::Orchestrator,
            StageName::Provider("claude".into()),
            StageName::WriterSpawner,
            StageName::Writer,
            StageName::Signals,
            StageName::Log,
            StageName::ExportParse,
            StageName::ExportMeta,
            StageName::Sync,
            StageName::SyncParse,
        ] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<StageName>(&json).unwrap(), s);
        }
        assert_eq!(
            serde_json::to_string(&StageName::Provider("codex".into())).unwrap(),
            "\"provider:codex\""
        );
        assert!(serde_json::from_str::<StageName>("\"nope\"").is_err());
        assert!(serde_json::from_str::<StageName>("\"provider:\"").is_err());
    }

    #[test]
    fn a_supervised_confiner_creates_threads_on_the_serving_thread() {
        let (tx, rx) = mpsc::channel();
        let server = thread::spawn(move || {
            let (confiner, supervisor) = Confiner::supervised(SandboxMode::BestEffort);
            let confiner = Confiner {
                confines: false,
                ..confiner
            };
            tx.send(confiner).unwrap();
            supervisor.serve();
        });
        let confiner = rx.recv().unwrap();
        let s = confiner
            .spawn(StageName::Signals, Domain::default(), || {
                thread::current().name().map(str::to_owned)
            })
            .unwrap();
        assert!(s.applied().is_none());
        assert_eq!(s.join().unwrap().as_deref(), Some("kato-signals"));
        drop(confiner);
        server.join().unwrap();
        // Without a supervisor the caller creates the thread.
        let s = Confiner::unconfined()
            .spawn(StageName::Log, Domain::default(), || 7)
            .unwrap();
        assert_eq!(s.join().unwrap(), 7);
    }
}
