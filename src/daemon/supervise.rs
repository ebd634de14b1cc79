//! Supervision: the provider stages (start, restart with backoff, restart
//! to take in a root that appeared), the writer-spawner, and the links the
//! recorder uses to reach them.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::event::ProviderId;
use crate::provider::Provider;
use crate::reader::Limits;
use crate::sandbox::{profiles, Stage, StageName};

use super::report::Report;
use super::status::{ProviderStage, ProviderStatus, RootStatus};
use super::{confine, record, watch, Known, ToOrch};

/// A stage that ran this long without failing starts its backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StageState {
    Running,
    Backoff,
    Stopped,
}

impl StageState {
    /// As status.json shows it.
    pub fn status(self) -> ProviderStage {
        match self {
            StageState::Running => ProviderStage::Running,
            StageState::Backoff => ProviderStage::Restarting,
            StageState::Stopped => ProviderStage::Stopped,
        }
    }
}

/// One provider stage under supervision.
pub(super) struct Slot {
    pub provider: &'static dyn Provider,
    pub roots: Vec<PathBuf>,
    pub tx: Option<Sender<watch::StageMsg>>,
    pub stop: Arc<AtomicBool>,
    pub handle: Option<Stage<()>>,
    pub state: StageState,
    pub ready: bool,
    pub restarts: u32,
    pub failures: u32,
    pub started: Instant,
    pub restart_at: Option<Instant>,
    pub root_status: Vec<RootStatus>,
    pub backlog: usize,
    /// Identity of each root (in `roots` order) when the running stage
    /// confined itself; `None` for a root that did not exist.
    pub confined: Vec<Option<(u64, u64)>>,
    /// The stage was asked to stop so that a new one includes a root that
    /// appeared: start it again at once, without counting a failure.
    pub respawn: bool,
}

impl Slot {
    pub fn name(&self) -> ProviderId {
        self.provider.id()
    }
}

/// Backoff before the `n`-th consecutive restart: 1, 2, 4 … 60 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

/// The stage threads the orchestrator started, and how to reach them.
pub(super) struct Supervisor {
    pub slots: Vec<Slot>,
    pub writers: Option<(Sender<WriterRequest>, Stage<()>)>,
    /// Starts every stage thread (from the supervisor under `kato run`)
    /// and records how each is confined.
    pub confine: confine::Confinement,
    /// Where the stages send their messages.
    pub tx: SyncSender<ToOrch>,
}

impl Supervisor {
    pub fn new(tx: SyncSender<ToOrch>, confine: confine::Confinement) -> Supervisor {
        Supervisor {
            slots: Vec::new(),
            writers: None,
            confine,
            tx,
        }
    }

    /// One slot per enabled provider (none started yet).
    pub fn add_slots(&mut self, cfg: &Config) {
        for pc in &cfg.providers {
            if !pc.enabled {
                continue;
            }
            let Some(p) = cfg.registry.get(pc.name) else {
                continue;
            };
            self.slots.push(Slot {
                provider: p,
                roots: pc.roots.clone(),
                tx: None,
                stop: Arc::new(AtomicBool::new(false)),
                handle: None,
                state: StageState::Stopped,
                ready: false,
                restarts: 0,
                failures: 0,
                started: Instant::now(),
                restart_at: None,
                root_status: pc
                    .roots
                    .iter()
                    .map(|r| RootStatus {
                        path: r.clone(),
                        exists: r.is_dir(),
                    })
                    .collect(),
                backlog: 0,
                confined: Vec::new(),
                respawn: false,
            });
        }
    }

    pub fn slot_mut(&mut self, provider: ProviderId) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.name() == provider)
    }

    /// The recorder's view of the stages.
    pub fn links(&self, policy: crate::policy::Policy) -> Links<'_> {
        Links {
            writers: &self.writers,
            slots: &self.slots,
            policy,
        }
    }

    /// The earliest pending restart.
    pub fn next_restart(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.restart_at).min()
    }

    /// Slots whose restart is due at `now` (their timer is cleared).
    pub fn take_due_restarts(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.restart_at.is_some_and(|t| now >= t) {
                s.restart_at = None;
                due.push(i);
            }
        }
        due
    }

    /// Heartbeat: a provider stage is confined to the roots that existed
    /// when it started. When one of its roots appears (or now resolves to
    /// another directory), stop the stage and start a new one from the
    /// supervisor so its domain can include it; otherwise let a stage with
    /// a missing root notice a root that comes back.
    pub fn check_stage_roots(&mut self) {
        for s in &mut self.slots {
            let Some(tx) = &s.tx else { continue };
            if s.respawn {
                continue;
            }
            let now: Vec<Option<(u64, u64)>> =
                s.roots.iter().map(|r| confine::dir_identity(r)).collect();
            let changed = now
                .iter()
                .zip(&s.confined)
                .any(|(n, c)| n.is_some() && n != c);
            if changed && self.confine.confines() {
                tracing::info!(
                    provider = %s.name(),
                    "a root appeared or was replaced: restarting the stage so its domain includes it"
                );
                s.respawn = true;
                s.stop.store(true, Ordering::Relaxed);
                let _ = tx.send(watch::StageMsg::Stop);
            } else if s.root_status.iter().any(|r| !r.exists) {
                let _ = tx.send(watch::StageMsg::Tick);
            }
        }
    }

    /// The stage of `provider` needs a file created after its domain was
    /// built (a database's new `-wal`): stop it and start a new one at
    /// once, whose domain has it.
    pub fn regrant(&mut self, provider: ProviderId) {
        let confines = self.confine.confines();
        let Some(s) = self.slot_mut(provider) else {
            return;
        };
        let Some(tx) = &s.tx else { return };
        if s.respawn || !confines {
            return;
        }
        tracing::info!(
            provider = %provider,
            "a file the stage reads appeared: restarting the stage so its domain includes it"
        );
        s.respawn = true;
        s.stop.store(true, Ordering::Relaxed);
        let _ = tx.send(watch::StageMsg::Stop);
    }

    /// What a new stage's domain grants: the roots that exist now, except
    /// one that appeared after start through a symbolic link leading away
    /// from where it was expected (the supervisor's ancestor grant would
    /// let that through). Records the identities it saw.
    fn domain_roots(&mut self, i: usize, report: &mut Report) -> Vec<PathBuf> {
        let confined: Vec<Option<(u64, u64)>> = self.slots[i]
            .roots
            .iter()
            .map(|r| confine::dir_identity(r))
            .collect();
        let mut domain_roots = Vec::new();
        let mut refused = Vec::new();
        for (root, id) in self.slots[i].roots.iter().zip(&confined) {
            if id.is_none() {
                continue;
            }
            match self
                .confine
                .ancestor_grant(root)
                .and_then(|a| confine::late_root_problem(root, &a))
            {
                Some(problem) => refused.push(problem),
                None => domain_roots.push(root.clone()),
            }
        }
        let name = self.slots[i].name();
        for problem in refused {
            report.warn(name.as_str(), problem);
        }
        self.slots[i].confined = confined;
        domain_roots
    }

    /// Start (or restart) the stage of slot `i`, which knows `known`.
    pub fn spawn_stage(&mut self, i: usize, known: Vec<Known>, cfg: &Config, report: &mut Report) {
        let (stx, srx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let domain_roots = self.domain_roots(i, report);
        let slot = &self.slots[i];
        let provider = slot.provider;
        let name = slot.name();
        // Built by the stage's thread before it narrows: a root the
        // provider narrows is listed there (the orchestrator cannot).
        let build = {
            let roots = domain_roots.clone();
            move || profiles::provider_reach(provider, &roots)
        };
        let narrowed = self.confine.confines() && domain_roots.iter().any(|r| r.is_dir());
        let mut init = watch::StageInit {
            granted: None,
            provider,
            roots: slot.roots.clone(),
            covered: self.confine.confines().then_some(domain_roots),
            known,
            limits: Limits {
                line_cap: cfg.line_cap,
                ..Limits::default()
            },
            rescan: Duration::from_secs(cfg.rescan_secs),
            out: self.tx.clone(),
            rx: srx,
            tx: stx.clone(),
            stop: stop.clone(),
        };
        let out = self.tx.clone();
        let stage = StageName::Provider(name.as_str().to_owned());
        let spawned = self
            .confine
            .confiner
            .spawn_built(stage, build, move |domain| {
                if narrowed && !domain.list.is_empty() {
                    init.granted = Some(watch::identities(&domain.read));
                }
                let r = panic::catch_unwind(AssertUnwindSafe(|| watch::run(init)));
                let error = match r {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("the stage panicked (location in the log)".to_owned()),
                };
                let _ = out.send(ToOrch::Exited {
                    provider: name,
                    error,
                });
            });
        let slot = &mut self.slots[i];
        match spawned {
            Ok(h) => {
                slot.tx = Some(stx);
                slot.stop = stop;
                slot.handle = Some(h);
                slot.state = StageState::Running;
                slot.started = Instant::now();
            }
            Err(e) => {
                let delay = backoff(slot.failures);
                slot.failures += 1;
                slot.state = StageState::Backoff;
                slot.restart_at = Some(Instant::now() + delay);
                report.warn(
                    name.as_str(),
                    format!("cannot start the {name} stage: {e}; retrying in {delay:?}"),
                );
            }
        }
    }

    /// A stage thread ended. `stopping`: the daemon is shutting down, so the
    /// exit is final. Returns the slot to start again at once (a stop to
    /// take in a new root); a failure is restarted later with backoff.
    pub fn stage_exited(
        &mut self,
        provider: ProviderId,
        error: Option<String>,
        stopping: bool,
        report: &mut Report,
    ) -> Option<usize> {
        let i = self.slots.iter().position(|s| s.name() == provider)?;
        if let Some(h) = self.slots[i].handle.take() {
            let _ = h.join();
        }
        let slot = &mut self.slots[i];
        slot.tx = None;
        if stopping {
            slot.state = StageState::Stopped;
            return None;
        }
        if std::mem::take(&mut slot.respawn) && error.is_none() {
            // Stopped to include a root that appeared: not a failure.
            return Some(i);
        }
        if slot.started.elapsed() >= HEALTHY_RUN {
            slot.failures = 0;
        }
        let delay = backoff(slot.failures);
        slot.failures += 1;
        slot.restarts += 1;
        slot.state = StageState::Backoff;
        slot.restart_at = Some(Instant::now() + delay);
        let why = error.unwrap_or_else(|| "it ended unexpectedly".into());
        report.warn(
            provider.as_str(),
            format!(
                "the {provider} stage failed: {why}; restarting in {} s (other providers keep running)",
                delay.as_secs()
            ),
        );
        None
    }

    /// The writer-spawner thread: creates one writer per destination.
    pub fn spawn_writer_spawner(&mut self, cfg: &Config, report: &mut Report) {
        let (tx, rx) = mpsc::channel::<WriterRequest>();
        let domain = profiles::writer_spawner(&profiles::export_roots(cfg));
        // Writers are created by the writer-spawner's thread, not the
        // supervisor: each starts in the export roots and narrows.
        let writers = self.confine.confiner.from_caller();
        let spawned = self
            .confine
            .confiner
            .spawn(StageName::WriterSpawner, domain, move || {
                // Blocks without waking until a request arrives.
                while let Ok(req) = rx.recv() {
                    match req {
                        WriterRequest::Spawn {
                            policy,
                            target,
                            reply,
                        } => {
                            let _ = reply.send(crate::writer::spawn(&writers, policy, target));
                        }
                        WriterRequest::Stop => break,
                    }
                }
            });
        match spawned {
            Ok(h) => self.writers = Some((tx, h)),
            Err(e) => report.warn("writer-spawner", format!("cannot start: {e}")),
        }
    }

    /// Ask every stage to stop (they answer with `Exited`).
    pub fn stop_stages(&self) {
        for s in &self.slots {
            s.stop.store(true, Ordering::Relaxed);
            if let Some(tx) = &s.tx {
                let _ = tx.send(watch::StageMsg::Stop);
            }
        }
    }

    pub fn any_running(&self) -> bool {
        self.slots.iter().any(|s| s.handle.is_some())
    }

    /// End the writer-spawner (writers were closed by the recorder).
    pub fn stop_writers(&mut self) {
        if let Some((tx, h)) = self.writers.take() {
            let _ = tx.send(WriterRequest::Stop);
            let _ = h.join();
        }
    }

    /// One row per configured provider; `counts`: its sessions and files.
    pub fn provider_status(
        &self,
        cfg: &Config,
        counts: &HashMap<ProviderId, (usize, usize)>,
    ) -> Vec<ProviderStatus> {
        cfg.providers
            .iter()
            .map(|pc| {
                let slot = self.slots.iter().find(|s| s.name() == pc.name);
                let counts = counts.get(&pc.name);
                ProviderStatus {
                    name: pc.name,
                    enabled: pc.enabled,
                    stage: slot.map_or(ProviderStage::Disabled, |s| s.state.status()),
                    ready: slot.is_some_and(|s| s.ready),
                    restarts: slot.map_or(0, |s| s.restarts),
                    roots: slot.map_or_else(
                        || {
                            pc.roots
                                .iter()
                                .map(|r| RootStatus {
                                    path: r.clone(),
                                    exists: r.is_dir(),
                                })
                                .collect()
                        },
                        |s| s.root_status.clone(),
                    ),
                    sessions: counts.map_or(0, |c| c.0),
                    files: counts.map_or(0, |c| c.1),
                    backlog: slot.map_or(0, |s| s.backlog),
                }
            })
            .collect()
    }
}

/// Requests to the writer-spawner. Writers (one per destination) are
/// created from here so that each inherits the spawner's domain (the
/// export roots) and then narrows itself to its file.
#[derive(Debug)]
pub(crate) enum WriterRequest {
    /// Start a writer for a checked destination; the reply carries it.
    Spawn {
        policy: crate::policy::Policy,
        target: crate::policy::Target,
        reply:
            SyncSender<std::result::Result<crate::writer::WriterHandle, crate::writer::WriteError>>,
    },
    Stop,
}

/// The recorder's view of the other stages: the writer-spawner and the
/// parse stages (for snapshot replays).
pub(super) struct Links<'a> {
    writers: &'a Option<(Sender<WriterRequest>, Stage<()>)>,
    slots: &'a [Slot],
    policy: crate::policy::Policy,
}

impl record::Stages for Links<'_> {
    fn writer(
        &mut self,
        target: crate::policy::Target,
    ) -> std::result::Result<crate::writer::WriterHandle, crate::writer::WriteError> {
        let Some((tx, _)) = self.writers else {
            return Err(crate::writer::WriteError::Gone);
        };
        let (reply, rx) = mpsc::sync_channel(1);
        tx.send(WriterRequest::Spawn {
            policy: self.policy.clone(),
            target,
            reply,
        })
        .map_err(|_| crate::writer::WriteError::Gone)?;
        rx.recv().map_err(|_| crate::writer::WriteError::Gone)?
    }

    fn replay(
        &mut self,
        provider: ProviderId,
        path: &Path,
        key: record::ReplayKey,
        upto: String,
    ) -> bool {
        let Some(tx) = self
            .slots
            .iter()
            .find(|s| s.name() == provider)
            .and_then(|s| s.tx.as_ref())
        else {
            return false;
        };
        tx.send(watch::StageMsg::Replay {
            path: path.to_path_buf(),
            key,
            upto,
        })
        .is_ok()
    }
}
