//! The one-shot export (`kato export`): resolve a session, parse its files
//! in a confined parse stage, render in the confined write stage.
//!
//! Streaming end to end: events flow from the parse thread through a
//! bounded channel into the renderer, so memory stays flat whatever the
//! session size. Markdown needs its frontmatter (title, participants,
//! first/last time) before the body, so the files are read twice, by two
//! parse stages running side by side: one folds the metadata, one delivers
//! the events, whose rendering is held in memory (bounded) until the
//! metadata is in.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, MarkdownOptions};
use crate::discover::{self, Found, SessionFiles};
use crate::error::{Error, Result};
use crate::event::{Event, Hidden, ProviderId};
use crate::reader::{self, DiagKind, Limits};
use crate::redact::{RedactionStats, Redactor};

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Markdown,
    Jsonl,
    /// One self-contained page (inline CSS, no script).
    Html,
}

/// Resolve a SESSION argument: a path to a session file, a full session id,
/// or a unique prefix of at least 8 characters.
pub fn resolve(config: &Config, query: &str) -> Result<SessionFiles> {
    let as_path = Path::new(query);
    if query.contains('/')
        || as_path.is_file()
        || crate::database::split_session(as_path).0.is_file()
    {
        return resolve_path(config, as_path);
    }
    let limits = limits(config);
    let (found, _problems) = discover::walk_config(config);
    let sessions = discover::group(found, limits);
    if let Some(s) = sessions.iter().find(|s| s.session_id == query) {
        return Ok(s.clone());
    }
    if query.chars().count() < 8 {
        return Err(Error::Usage(format!(
            "`{query}` is not a session id; give the full id, a prefix of at least 8 characters, or a path (see `kato sessions`)"
        )));
    }
    let matches: Vec<&SessionFiles> = sessions
        .iter()
        .filter(|s| s.session_id.starts_with(query))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::SessionNotFound {
            query: query.to_owned(),
        }),
        many => Err(Error::Ambiguous {
            query: query.to_owned(),
            candidates: many
                .iter()
                .map(|s| {
                    format!(
                        "{}  {}  {}",
                        s.session_id,
                        s.provider,
                        s.main_path()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    )
                })
                .collect(),
        }),
    }
}

fn resolve_path(config: &Config, path: &Path) -> Result<SessionFiles> {
    // `<database>#<session id>`: the database decides the provider.
    let (file, _session) = crate::database::split_session(path);
    if !file.is_file() {
        return Err(Error::SessionNotFound {
            query: path.display().to_string(),
        });
    }
    let provider = discover::provider_for_path(config, &file).ok_or_else(|| {
        Error::Usage(format!(
            "{}: not a session file of a known provider ({}), or its format is not recognised",
            path.display(),
            config.registry.names()
        ))
    })?;
    let found = Found {
        provider,
        path: path.to_path_buf(),
        ctx: crate::provider::ctx_for_path(provider, path),
    };
    let session_id = discover::identify(&found, limits(config));
    Ok(SessionFiles {
        provider: provider.id(),
        session_id,
        files: vec![found],
    })
}

pub fn limits(config: &Config) -> Limits {
    Limits {
        line_cap: config.line_cap,
        ..Limits::default()
    }
}

/// Counts of skipped records, reported in the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Skipped {
    pub total: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// The first few skipped records: file, byte offset, kind.
    pub first: Vec<SkippedRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedRecord {
    pub file: PathBuf,
    pub offset: u64,
    pub kind: &'static str,
    pub detail: String,
}

fn diag_name(k: DiagKind) -> &'static str {
    match k {
        DiagKind::NotJson => "not-json",
        DiagKind::InvalidUtf8 => "invalid-utf8",
        DiagKind::WrongShape => "wrong-shape",
        DiagKind::TooLong => "too-long",
        DiagKind::Truncated => "truncated",
    }
}

/// Read every file of a session once, delivering events in file order
/// (main transcript first, then subagent files) with events already seen
/// in an earlier file dropped (forks repeat their parent's records).
pub fn stream_session(
    session: &SessionFiles,
    limits: Limits,
    skipped: &mut Skipped,
    out: &mut dyn FnMut(Event),
) -> Result<()> {
    // Only ids of finished files are consulted, so repeats inside one file
    // (which carry distinct offsets) are never merged.
    let mut seen_before: HashSet<u64> = HashSet::new();
    for f in &session.files {
        let mut this_file: Vec<u64> = Vec::new();
        let multi = session.files.len() > 1;
        let mut deliver = |ev: Event| {
            if multi {
                let h = id_hash(&ev.event_id);
                if seen_before.contains(&h) {
                    return;
                }
                this_file.push(h);
            }
            out(ev);
        };
        let inc = reader::read_path(&f.path, f.provider, limits, &mut deliver)
            .map_err(|e| Error::io(format!("reading {}", f.path.display()), e))?;
        seen_before.extend(this_file);
        for d in inc.diagnostics {
            skipped.total += 1;
            *skipped.by_kind.entry(diag_name(d.kind)).or_default() += 1;
            if skipped.first.len() < 20 {
                skipped.first.push(SkippedRecord {
                    file: f.path.clone(),
                    offset: d.offset,
                    kind: diag_name(d.kind),
                    detail: d.detail,
                });
            }
        }
    }
    Ok(())
}

fn id_hash(id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// What an export did (the `--json` summary).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub provider: ProviderId,
    pub session_id: String,
    pub files: Vec<PathBuf>,
    pub format: ExportFormat,
    /// `-` for standard output.
    pub output: String,
    pub dry_run: bool,
    pub events: u64,
    pub bytes: u64,
    pub skipped: Skipped,
    /// Secrets replaced, per label (never the secrets themselves).
    pub redactions: BTreeMap<&'static str, u64>,
}

impl Summary {
    /// What an export of `session` to `req` is, before anything is counted.
    fn of(session: &SessionFiles, files: Vec<PathBuf>, req: &Request) -> Summary {
        Summary {
            provider: session.provider,
            session_id: session.session_id.clone(),
            files,
            format: req.format,
            output: req
                .output
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "-".into()),
            dry_run: req.dry_run,
            events: 0,
            bytes: 0,
            skipped: Skipped::default(),
            redactions: BTreeMap::new(),
        }
    }
}

/// Options of one export.
#[derive(Debug, Clone)]
pub struct Request {
    pub format: ExportFormat,
    pub markdown: MarkdownOptions,
    /// `None`: standard output.
    pub output: Option<PathBuf>,
    pub dry_run: bool,
}

/// A writer that counts bytes.
pub struct Counting<W> {
    pub inner: W,
    pub bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fold a whole session into its metadata (title, participants, times).
pub fn collect_meta(
    session: &SessionFiles,
    limits: Limits,
    redactor: &std::sync::Arc<Redactor>,
) -> Result<crate::render::SessionMeta> {
    // The collector redacts what it keeps: the events need no redaction.
    let mut collector = crate::render::MetaCollector::new(redactor.clone());
    let mut ignored = Skipped::default();
    stream_session(session, limits, &mut ignored, &mut |ev| {
        collector.observe(&ev);
    })?;
    Ok(finish_meta(collector, session))
}

/// The metadata folded by `collector`, with the session's identity.
fn finish_meta(
    collector: crate::render::MetaCollector,
    session: &SessionFiles,
) -> crate::render::SessionMeta {
    let mut meta = collector.finish();
    // The session's identity is the resolved one, whatever the first record said.
    meta.session_id = session.session_id.clone();
    meta.provider = session.provider.as_str().to_owned();
    meta.id = crate::render::session_key(session.provider.as_str(), &session.session_id);
    meta
}

/// Say on stderr what confinement is missing (best-effort mode only: in
/// enforce mode a missing feature is an error before anything is read).
pub fn report_degraded(stage: &str, missing: &[crate::sandbox::Missing]) {
    for m in missing {
        crate::terminal::eprintln(&format!(
            "kato: sandbox degraded ({stage}): {} — {}",
            m.feature, m.advice
        ));
    }
}

/// What the parse stages send to the write stage.
enum Msg {
    Meta(Box<crate::render::SessionMeta>),
    Events(Batch),
    Done(Skipped),
    Failed(String),
}

/// Events on their way from the parse stage to the write stage.
struct Batch {
    events: Vec<Event>,
    /// Bytes of the session's files read up to its last event (for the
    /// progress bar).
    at: u64,
    /// What redaction found, when the parse stage redacted the events
    /// itself: it does so when the write stage is behind (see
    /// [`parse_stage`]).
    redacted: Option<RedactionStats>,
}

/// Events per channel message: amortises the hand-off between stages…
/// Each hand-off can wake the other thread, which costs both a system
/// call: fewer, larger batches export faster (measured on the `ci/bench`
/// sessions), up to the point where batches stop fitting in the caches.
const BATCH: usize = 1024;

/// …unless their text reaches this many bytes first.
const BATCH_BYTES: usize = 256 << 10;

/// Batches the parse stage may have sent and not yet got back (one more
/// while it waits): with [`BATCH_BYTES`], this bounds the memory of events
/// in flight (about 2 MiB of text) whatever the size of single events.
const IN_FLIGHT: usize = 8;

/// Rendered Markdown held in memory while the metadata is not known (the
/// frontmatter must come first). When it is full, rendering waits for the
/// metadata stage.
const SPOOL_MAX: usize = 32 << 20;

/// Bytes of text an event carries, roughly (for [`BATCH_BYTES`]).
fn text_size(ev: &Event) -> usize {
    use crate::event::Payload as P;
    let payload = match &ev.payload {
        P::UserMessage { text, .. }
        | P::DecisionResponse { text, .. }
        | P::AssistantMessage { text }
        | P::Thinking { text }
        | P::DecisionPrompt { text, .. }
        | P::SystemMessage { text, .. } => text.len(),
        P::KatoCommand { raw, .. } => raw.len(),
        P::ToolCall { input, .. } => input.get().len(),
        P::ToolResult { output, .. } => output.held_len(),
        P::ProviderInfo { data, .. } => data.get().len(),
        P::ProviderRaw { record } => record.get().len(),
    };
    payload + ev.event_id.len() + ev.session_id.len() + 64
}

/// The confined one-shot export (SPEC §8, "one-shot `kato export`").
///
/// 1. `main` hardens the process (no_new_privs, no capabilities, no core
///    dumps, umask 077) and confines itself to reading the provider roots,
///    the named file and the config, plus creating the output in its
///    parent directory — before any session byte is read.
/// 2. It resolves the session (directory listings and first records only),
///    creates the output file, and starts the parse stage (for Markdown
///    also the metadata stage): threads confined to reading exactly the
///    session's files.
/// 3. It narrows itself to writing exactly the output file, and renders
///    what the stages send over bounded channels.
// Long because: the three numbered steps above, in order; each narrows what follows.
pub fn run(cfg: &Config, query: &str, req: &Request) -> Result<Summary> {
    use crate::sandbox::{self, profiles, stage, Confiner, StageName};
    let mode = cfg.sandbox_mode;
    let hardened = sandbox::harden_process(mode)?;
    report_degraded("startup", &hardened.missing);
    let config_file = cfg.source.as_deref();
    let output = match &req.output {
        Some(out) if !req.dry_run => Some(output_path(cfg, out)?),
        _ => None,
    };

    let resolve_domain = resolve_domain(cfg, query, output.as_deref());
    let applied = resolve_domain.apply(mode)?;
    report_degraded("export", &applied.missing);

    let session = resolve(cfg, query)?;
    let out_file = create_output(output.as_deref(), cfg.file_mode)?;

    let files: Vec<PathBuf> = session.files.iter().map(|f| f.path.clone()).collect();
    // What the stages read: a session in a database is the database file
    // and its `-wal`/`-shm`.
    let read_files: Vec<PathBuf> = files
        .iter()
        .flat_map(|p| crate::database::readable_files(p))
        .collect();
    let limits = limits(cfg);
    // Markdown and HTML need the metadata before the body.
    let markdown = req.format != ExportFormat::Jsonl;
    let redactor =
        std::sync::Arc::new(Redactor::new(&cfg.redaction).map_err(|e| Error::Config {
            path: cfg.source.clone().unwrap_or_default(),
            message: e.to_string(),
        })?);
    // Markdown needs the metadata before the body. The write stage folds
    // it from the events it renders, holding the rendered body back (up to
    // SPOOL_MAX); a body too large for that needs a metadata pass of its
    // own, by a second confined stage started on demand (see write_stage).
    // The parse and metadata threads are created by `main` (still in the
    // resolve domain) and narrow to reading the session's files.
    //
    // An output file needs no metadata stage: a body too large for the
    // spool is written out, and its header inserted in front at the end.
    let to_file = markdown && out_file.is_some();
    let confiner = Confiner::new(mode);
    let (go_tx, go_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let meta_stage = if markdown && !to_file {
        let domain = profiles::export(&read_files, config_file, None);
        Some(spawn_meta_stage(
            &confiner, domain, &session, &redactor, limits, go_rx,
        )?)
    } else {
        None
    };
    let parse_session = session.clone();
    let meta_redactor = redactor.clone();
    let parse_redactor = redactor.clone();
    let hidden = hidden(req);
    // JSONL writes a tool output literal that needs no change as it was
    // read: the parsers may keep it so.
    let limits = Limits {
        json_texts: req.format == ExportFormat::Jsonl,
        ..limits
    };
    let (spent_tx, spent_rx) = std::sync::mpsc::sync_channel(IN_FLIGHT + 1);
    let (parse_tx, parse_rx) = std::sync::mpsc::sync_channel::<Msg>(stage::STAGE_QUEUE);
    let sizes: Vec<u64> = files
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .collect();
    let input_bytes: u64 = sizes.iter().sum();
    let position = crate::progress::Position::new(sizes);
    let parser = confiner.spawn(
        StageName::ExportParse,
        profiles::export(&read_files, config_file, None),
        move || {
            parse_stage(
                &parse_session,
                limits,
                &parse_redactor,
                hidden,
                &parse_tx,
                &spent_rx,
                position,
            )
        },
    )?;
    // The write stage: from here on `main` may only write the output file
    // (and read it back, to insert a Markdown header).
    let read_back: Vec<PathBuf> = output.iter().filter(|_| to_file).cloned().collect();
    let write_domain = profiles::export(&read_back, None, output.as_deref());
    let applied = write_domain.apply(mode)?;
    report_degraded("export-write", &applied.missing);

    let meta = markdown.then(|| MetaSource {
        rx: meta_stage.as_ref().map(|(_, rx)| rx),
        go: meta_stage.is_some().then_some(go_tx),
        session: &session,
        redactor: meta_redactor,
    });
    let spool = Spool::bounds(req, input_bytes, to_file);
    // Standard output that is a terminal shows the export itself: no bar.
    let to_terminal =
        out_file.is_none() && !req.dry_run && io::IsTerminal::is_terminal(&io::stdout());
    let mut progress = if !to_terminal {
        crate::progress::Progress::stderr(input_bytes)
    } else {
        crate::progress::Progress::off()
    };
    let written = match &out_file {
        Some(f) if to_file => Some(
            f.try_clone()
                .map_err(|e| Error::io("writing the export", e))?,
        ),
        _ => None,
    };
    let mut w = Counting {
        inner: sink(out_file, req.dry_run),
        bytes: 0,
    };
    let inbox = Inbox {
        rx: &parse_rx,
        spent: Some(&spent_tx),
        redactor: &redactor,
    };
    let rendered = write_stage(inbox, meta, spool, req, &mut w, &mut progress)?;
    progress.finish();
    w.flush().map_err(|e| Error::io("writing the export", e))?;
    if let (Some(head), Some(file), Some(path)) = (&rendered.prepend, &written, &output) {
        let read = crate::policy::reopen_output(path, file)
            .map_err(|d| Error::io("reading back the export", io::Error::other(d.to_string())))?;
        prepend(&read, file, w.bytes, head).map_err(|e| Error::io("writing the export", e))?;
        w.bytes += head.len() as u64;
    }
    if let Some((s, rx)) = meta_stage {
        // A stage blocked sending ends. A metadata pass that turned out
        // not to be needed is left to end with the process.
        drop(rx);
        if !rendered.abandoned {
            s.join()?;
        }
    }
    drop(parse_rx);
    parser.join()?;
    Ok(Summary {
        events: rendered.events,
        bytes: w.bytes,
        skipped: rendered.skipped,
        redactions: rendered
            .redactions
            .counts
            .iter()
            .map(|(label, n)| (label.as_str(), *n))
            .collect(),
        ..Summary::of(&session, files, req)
    })
}

/// Start the metadata stage of a Markdown export: it waits for `go` (a body
/// too large for the spool), then sends the session's metadata.
fn spawn_meta_stage(
    confiner: &crate::sandbox::Confiner,
    domain: crate::sandbox::Domain,
    session: &SessionFiles,
    redactor: &std::sync::Arc<Redactor>,
    limits: Limits,
    go: std::sync::mpsc::Receiver<()>,
) -> Result<(
    crate::sandbox::stage::Stage<()>,
    std::sync::mpsc::Receiver<Msg>,
)> {
    use crate::sandbox::{stage, StageName};
    let (session, redactor) = (session.clone(), redactor.clone());
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(stage::STAGE_QUEUE);
    let stage = confiner.spawn(StageName::ExportMeta, domain, move || {
        if go.recv().is_err() {
            return; // not needed
        }
        let msg = match collect_meta(&session, limits, &redactor) {
            Ok(meta) => Msg::Meta(Box::new(meta)),
            Err(e) => Msg::Failed(e.to_string()),
        };
        let _ = tx.send(msg);
    })?;
    Ok((stage, rx))
}

/// The domain `main` resolves the session in: the provider roots (and the
/// session file named by `query`), the config, and the output to create.
pub fn resolve_domain(cfg: &Config, query: &str, output: Option<&Path>) -> crate::sandbox::Domain {
    use crate::sandbox::profiles;
    let config_file = cfg.source.as_deref();
    let mut read = Vec::new();
    let as_path = Path::new(query);
    if query.contains('/') {
        read.extend(crate::database::readable_files(as_path));
    } else if let Ok(cwd) = std::env::current_dir() {
        // A bare file name in the working directory.
        let candidate = cwd.join(as_path);
        if candidate.is_file() || crate::database::split_session(&candidate).0.is_file() {
            read.extend(crate::database::readable_files(&candidate));
        }
    }
    let mut resolve_domain = profiles::union(&[
        profiles::providers_reach(cfg),
        profiles::provider(&read),
        profiles::startup(config_file),
    ]);
    if let Some(out) = output {
        if out.exists() {
            resolve_domain.write_files.push(out.to_path_buf());
            resolve_domain.truncate = true;
            // Read back by a Markdown export that inserts its header after
            // the body (`prepend`); a new file is readable through its
            // parent's `create_in` rule.
            resolve_domain.read.push(out.to_path_buf());
        } else {
            let parent = match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            resolve_domain.create_in.push(parent);
        }
    }
    resolve_domain
}

/// The output as it will be opened (parent canonicalized), refused when
/// it overlaps what kato reads or keeps its state in.
fn output_path(cfg: &Config, out: &Path) -> Result<PathBuf> {
    let path = crate::policy::output_path(out)
        .map_err(|d| Error::Usage(format!("cannot write {}: {d}", out.display())))?;
    if let Some(p) = crate::policy::overlap::first_overlap(&cfg.protected(), &path) {
        return Err(Error::Usage(format!(
            "refusing to write {}: {}; kato never writes into what it reads or keeps its state in",
            out.display(),
            p.describe(&path)
        )));
    }
    Ok(path)
}

/// Create (or empty) the output file, if there is one: beneath its
/// parent's descriptor, never through a symlink (the path policy's open).
fn create_output(output: Option<&Path>, mode: u32) -> Result<Option<std::fs::File>> {
    output
        .map(|p| {
            crate::policy::open_output(p)
                .and_then(|(f, created)| {
                    if created {
                        crate::policy::set_mode(&f, mode).map_err(|e| crate::policy::Denied {
                            reason: crate::policy::DenyReason::Io,
                            detail: format!("{}: {}", p.display(), io::Error::from(e)),
                        })?;
                    }
                    Ok(f)
                })
                .map_err(|d| Error::Usage(format!("cannot write {}: {d}", p.display())))
        })
        .transpose()
}

/// Where the rendered export goes: the output file, stdout, or nowhere.
fn sink(out_file: Option<std::fs::File>, dry_run: bool) -> Box<dyn Write> {
    match out_file {
        Some(f) => Box::new(io::BufWriter::with_capacity(256 << 10, f)),
        None if dry_run => Box::new(io::sink()),
        None => Box::new(io::BufWriter::with_capacity(256 << 10, io::stdout().lock())),
    }
}

/// What a Markdown export does not show: thinking without `--thinking`,
/// tool calls and results without `--tool-calls`, and provider records
/// (but a title). Those events still reach the metadata (their times and
/// models), but their text is never written, so the parse stage empties
/// it before redaction and rendering, and tells the parsers, which may
/// leave it undecoded.
fn hidden(req: &Request) -> Hidden {
    let markdown = req.format == ExportFormat::Markdown;
    Hidden {
        thinking: markdown && !req.markdown.thinking,
        tools: markdown && !req.markdown.tool_calls,
        provider: markdown,
    }
}

/// The parse stage of a one-shot export: the events, redacted, in
/// batches. Errors are sent, not returned.
fn parse_stage(
    session: &SessionFiles,
    limits: Limits,
    redactor: &Redactor,
    hidden: Hidden,
    tx: &std::sync::mpsc::SyncSender<Msg>,
    spent: &std::sync::mpsc::Receiver<Vec<Event>>,
    mut position: crate::progress::Position,
) {
    let mut skipped = Skipped::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut bytes = 0usize;
    let mut closed = false;
    // Rendered batches come back here to be freed (and their buffers
    // reused): memory is freed by the thread that allocated it, so the two
    // threads do not contend for the allocator's locks; and waiting for
    // them bounds the batches in flight.
    let mut out = 0usize;
    // Bytes read up to the latest event.
    let mut at = 0u64;
    // Events are redacted before anything sees them: by the write stage as
    // each batch arrives, or, when the write stage is behind (every batch
    // in flight, none back), by this stage, which sends the batch and then
    // waits for one back. The work goes to whichever stage has time.
    // The parsers are told what is stripped: they may leave it undecoded.
    let limits = Limits { hidden, ..limits };
    let r = stream_session(session, limits, &mut skipped, &mut |mut ev| {
        if closed {
            return;
        }
        hidden.strip(&mut ev);
        bytes += text_size(&ev);
        at = position.at(ev.source.offset);
        batch.push(ev);
        if batch.len() >= BATCH || bytes >= BATCH_BYTES {
            // Behind: every batch in flight, none back.
            let back = spent.try_recv().ok();
            let redacted = (back.is_none() && out >= IN_FLIGHT).then(|| {
                let mut stats = RedactionStats::default();
                for ev in &mut batch {
                    redactor.redact_event(ev, &mut stats);
                }
                stats
            });
            let behind = redacted.is_some();
            let next = match back {
                Some(mut v) => {
                    out -= 1;
                    v.clear();
                    v
                }
                None if behind => Vec::new(),
                None => Vec::with_capacity(BATCH),
            };
            let events = std::mem::replace(&mut batch, next);
            bytes = 0;
            let full = Batch {
                events,
                at,
                redacted,
            };
            closed = tx.send(Msg::Events(full)).is_err();
            out += 1;
            if behind && !closed {
                // Wait for one back before reading on.
                match spent.recv() {
                    Ok(v) => {
                        out -= 1;
                        batch = v;
                        batch.clear();
                    }
                    Err(_) => closed = true,
                }
            }
        }
    });
    if closed {
        return;
    }
    let last = match r {
        Ok(()) => {
            let last = Batch {
                events: batch,
                at,
                redacted: None,
            };
            if !last.events.is_empty() && tx.send(Msg::Events(last)).is_err() {
                return;
            }
            // A parser's message can quote the record it could not read.
            for s in &mut skipped.first {
                if let Cow::Owned(d) = redactor.redact_str(&s.detail).text {
                    s.detail = d;
                }
            }
            Msg::Done(skipped)
        }
        Err(e) => Msg::Failed(e.to_string()),
    };
    let _ = tx.send(last);
}

fn stage_ended() -> Error {
    Error::io(
        "reading the session",
        io::Error::other("the parse stage ended without finishing"),
    )
}

/// The Markdown body's writer while the metadata is not known: bytes are
/// held in memory until [`Spool::open`] writes the header and them, or
/// [`Spool::spill`] writes them without it; then everything passes
/// through. Before `open`, nothing held means the body was spilled.
struct Spool<'a> {
    sink: &'a mut dyn Write,
    held: Option<Vec<u8>>,
}

/// When the write stage starts the metadata stage, and when it waits for it
/// (bytes held in the [`Spool`]); or, for an output file the header can be
/// inserted into afterwards, when the held body is written out.
#[derive(Debug, Clone, Copy)]
struct SpoolBounds {
    start_meta_at: usize,
    max: usize,
    /// Write the held body out at this many bytes, never start the
    /// metadata stage, and leave the header to [`prepend`].
    spill_at: Option<usize>,
}

/// Body bytes a Markdown export to a file holds in memory before it
/// writes them out ahead of their header (see [`prepend`]).
const SPILL_AT: usize = 4 << 20;

impl Spool<'_> {
    /// A body that shows thinking or tool calls is about as large as the
    /// session: when the session is larger than the spool, the metadata
    /// stage starts at once. Otherwise it starts once a quarter of the spool
    /// is used, which most bodies never reach.
    ///
    /// An output file needs neither: the body is written out once
    /// [`SPILL_AT`] bytes are held, and the header inserted at the end.
    fn bounds(req: &Request, input_bytes: u64, to_file: bool) -> SpoolBounds {
        let large = u64::try_from(SPOOL_MAX).map_or(true, |max| input_bytes >= max);
        let start_meta_at = if (req.markdown.thinking || req.markdown.tool_calls) && large {
            0
        } else {
            SPOOL_MAX / 4
        };
        SpoolBounds {
            start_meta_at,
            max: SPOOL_MAX,
            spill_at: to_file.then_some(SPILL_AT),
        }
    }

    fn held(&self) -> usize {
        self.held.as_ref().map_or(0, Vec::len)
    }

    fn open(&mut self, header: &[u8]) -> io::Result<()> {
        if let Some(held) = self.held.take() {
            self.sink.write_all(header)?;
            self.sink.write_all(&held)?;
        }
        Ok(())
    }

    /// Write the held body out without its header; what follows passes
    /// through.
    fn spill(&mut self) -> io::Result<()> {
        match self.held.take() {
            Some(held) => self.sink.write_all(&held),
            None => Ok(()),
        }
    }
}

/// Insert `head` before the first `len` bytes of the file: they are moved
/// on by its length, last chunk first, through `read` and `write` (two
/// descriptors of the same file), then `head` is written at the start.
/// How a Markdown body written out before its header (which needs the
/// whole session) gets it, without holding the body in memory or reading
/// the session twice.
fn prepend(read: &std::fs::File, write: &std::fs::File, len: u64, head: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    let by = head.len() as u64;
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut end = len;
    while end > 0 {
        let chunk = &mut buf[..CHUNK.min(usize::try_from(end).unwrap_or(CHUNK))];
        let start = end - chunk.len() as u64;
        read.read_exact_at(chunk, start)?;
        write.write_all_at(chunk, start + by)?;
        end = start;
    }
    write.write_all_at(head, 0)
}

impl Write for Spool<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.held {
            Some(held) => {
                held.extend_from_slice(buf);
                Ok(buf.len())
            }
            None => self.sink.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.held {
            Some(held) => {
                held.extend_from_slice(buf);
                Ok(())
            }
            None => self.sink.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.held {
            Some(_) => Ok(()),
            None => self.sink.flush(),
        }
    }
}

/// The body renderer of a document that opens with a header (Markdown,
/// HTML), writing into the [`Spool`] that holds it until the header is known.
enum Body<'a> {
    Markdown(crate::render::markdown::MarkdownRenderer<Spool<'a>>),
    Html(crate::render::html::HtmlRenderer<Spool<'a>>),
}

impl<'a> Body<'a> {
    fn new(spool: Spool<'a>, req: &Request) -> Body<'a> {
        use crate::render::markdown::{MarkdownRenderer, RenderState};
        match req.format {
            ExportFormat::Html => {
                Body::Html(crate::render::html::HtmlRenderer::new(spool, &req.markdown))
            }
            // What follows the header is rendered as the continuation of a
            // started document, exactly as after `header`.
            ExportFormat::Markdown | ExportFormat::Jsonl => Body::Markdown(
                MarkdownRenderer::resume(spool, &req.markdown, RenderState::appending()),
            ),
        }
    }

    fn get_mut(&mut self) -> &mut Spool<'a> {
        match self {
            Body::Markdown(r) => r.get_mut(),
            Body::Html(r) => r.get_mut(),
        }
    }

    fn event(&mut self, ev: &Event) -> io::Result<()> {
        match self {
            Body::Markdown(r) => r.event(ev),
            Body::Html(r) => r.event(ev),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Body::Markdown(r) => r.finish().map(drop),
            Body::Html(r) => r.finish().map(drop),
        }
    }
}

/// What the write stage did.
struct Rendered {
    events: u64,
    skipped: Skipped,
    redactions: RedactionStats,
    /// A metadata stage was started and not waited for.
    abandoned: bool,
    /// The header to insert before the body written out (see [`prepend`]).
    prepend: Option<Vec<u8>>,
}

/// The metadata from the metadata stage: `None` while it is not ready
/// (only when `wait` is false).
fn take_meta(
    rx: &std::sync::mpsc::Receiver<Msg>,
    wait: bool,
) -> Result<Option<Box<crate::render::SessionMeta>>> {
    use std::sync::mpsc::TryRecvError;
    let msg = if wait {
        rx.recv().ok()
    } else {
        match rx.try_recv() {
            Ok(m) => Some(m),
            Err(TryRecvError::Empty) => return Ok(None),
            Err(TryRecvError::Disconnected) => None,
        }
    };
    match msg {
        Some(Msg::Meta(meta)) => Ok(Some(meta)),
        Some(Msg::Failed(e)) => Err(Error::io("reading the session", io::Error::other(e))),
        _ => Err(stage_ended()),
    }
}

/// What the write stage gets from the parse stage, and how it hands it on.
struct Inbox<'a> {
    /// The parse stage's events and messages.
    rx: &'a std::sync::mpsc::Receiver<Msg>,
    /// Where rendered batches go back to be freed (see [`parse_stage`]).
    spent: Option<&'a std::sync::mpsc::SyncSender<Vec<Event>>>,
    /// Applied to every event as it arrives, before anything reads it.
    redactor: &'a Redactor,
}

/// Where a Markdown export's metadata comes from when the write stage
/// cannot fold it itself.
struct MetaSource<'a> {
    /// What the metadata stage sends (none is started for an output
    /// file: see [`SpoolBounds::spill_at`]).
    rx: Option<&'a std::sync::mpsc::Receiver<Msg>>,
    /// Starts the metadata stage; dropped unused, the stage ends at once.
    go: Option<std::sync::mpsc::SyncSender<()>>,
    /// The resolved session (its identity goes into the metadata).
    session: &'a SessionFiles,
    /// For the metadata folded from the rendered events.
    redactor: std::sync::Arc<Redactor>,
}

/// The write stage: render what arrives, in order.
///
/// Markdown (when `meta` is given) is rendered into a [`Spool`] until the
/// metadata is known; the document is then the header, the spooled body,
/// and the rest. The write stage folds the metadata from the events it
/// renders (the parse stage redacted them all; the fold only reads titles,
/// times and models), so when the whole body fits in the spool the session
/// is read once. Past `spool.start_meta_at` held bytes the metadata stage
/// is started, and rendering waits for it when the spool is full. With
/// `spool.spill_at`, the held body is written out instead, and the header
/// is returned for the caller to insert.
// Long because: the render loop and the metadata hand-off share state; this is the hot path.
fn write_stage(
    parse: Inbox<'_>,
    meta: Option<MetaSource<'_>>,
    spool: SpoolBounds,
    req: &Request,
    w: &mut dyn Write,
    progress: &mut crate::progress::Progress,
) -> Result<Rendered> {
    use crate::render::markdown::MarkdownRenderer;
    let werr = |e: io::Error| Error::io("writing the export", e);
    let mut events = 0u64;
    let mut md = None;
    let mut jsonl = None;
    let mut pending = None;
    match meta {
        Some(src) if req.format != ExportFormat::Jsonl => {
            let spool = Spool {
                sink: w,
                held: Some(Vec::new()),
            };
            md = Some(Body::new(spool, req));
            let collector = crate::render::MetaCollector::new(src.redactor.clone());
            pending = Some((src, collector));
        }
        _ => jsonl = Some(crate::render::jsonl::JsonlWriter::new(w)),
    }
    let mut started = false;
    let mut done = None;
    let mut prepend = None;
    let mut redactions = RedactionStats::default();
    loop {
        if let (Some((src, _)), Some(r)) = (pending.as_mut(), md.as_mut()) {
            let held = r.get_mut().held();
            match (spool.spill_at, src.rx) {
                (Some(at), _) => {
                    if held >= at {
                        r.get_mut().spill().map_err(werr)?;
                    }
                }
                (None, Some(_)) if held >= spool.start_meta_at => {
                    if let Some(go) = src.go.take() {
                        // A stage that cannot start is reported by `take_meta`.
                        let _ = go.send(());
                        started = true;
                    }
                }
                (None, _) => {}
            }
            let meta = match src.rx {
                Some(rx) if started && done.is_none() => take_meta(rx, held >= spool.max)?,
                _ => None,
            };
            let meta = match (meta, done.is_some()) {
                (Some(m), _) => {
                    started = false;
                    Some(*m)
                }
                // Every event is in: the write stage's own fold is complete.
                (None, true) => pending
                    .take()
                    .map(|(src, collector)| finish_meta(collector, src.session)),
                (None, false) => None,
            };
            if let Some(meta) = meta {
                let header = match req.format {
                    ExportFormat::Html => crate::render::html::header(&meta).into_bytes(),
                    ExportFormat::Markdown | ExportFormat::Jsonl => {
                        let mut header = MarkdownRenderer::new(Vec::new(), &req.markdown);
                        header.header(&meta).map_err(werr)?;
                        header.finish().map_err(werr)?
                    }
                };
                let body = r.get_mut();
                if body.held.is_none() {
                    // Spilled: the caller inserts the header.
                    prepend = Some(header);
                } else {
                    body.open(&header).map_err(werr)?;
                }
                pending = None;
            }
        }
        if pending.is_none() {
            if let Some(skipped) = done.take() {
                if let Some(r) = md {
                    r.finish().map_err(werr)?;
                }
                if let Some(j) = jsonl {
                    j.finish().map_err(werr)?;
                }
                return Ok(Rendered {
                    events,
                    skipped,
                    redactions: std::mem::take(&mut redactions),
                    abandoned: started,
                    prepend,
                });
            }
        }
        match parse.rx.recv().map_err(|_| stage_ended())? {
            Msg::Events(Batch {
                events: mut batch,
                at,
                redacted,
            }) => {
                let redact = match redacted {
                    Some(found) => {
                        redactions.merge(found);
                        false
                    }
                    None => true,
                };
                for ev in &mut batch {
                    // Redaction first: no renderer and no metadata fold
                    // sees an event before it. One event at a time, so that
                    // its texts are still in the cache when they are rendered.
                    if redact {
                        parse.redactor.redact_event(ev, &mut redactions);
                    }
                    let ev = &*ev;
                    if let Some((_, collector)) = pending.as_mut() {
                        collector.observe(ev);
                    }
                    if let Some(r) = md.as_mut() {
                        r.event(ev).map_err(werr)?;
                    } else if let Some(j) = jsonl.as_mut() {
                        j.event(ev).map_err(werr)?;
                    }
                    events += 1;
                }
                progress.update(at);
                if let Some(back) = parse.spent {
                    // Never full: it holds at most the batches in flight.
                    // Gone (the parse stage ended): freed here.
                    let _ = back.try_send(batch);
                }
            }
            Msg::Done(skipped) => done = Some(skipped),
            Msg::Meta(_) => {}
            Msg::Failed(e) => return Err(Error::io("reading the session", io::Error::other(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Payload, ProviderId, Source};
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
    use std::thread::JoinHandle;

    fn event(n: u64, payload: Payload) -> Event {
        let mut ev = Event::new(
            ProviderId::Claude,
            "s1",
            format!("f:{n}"),
            Source {
                record: "user".into(),
                offset: n,
                file: None,
            },
            payload,
        );
        ev.timestamp = Some(format!("2026-01-08T00:00:{n:02}.000Z").into());
        ev
    }

    fn events() -> Vec<Event> {
        (0..40)
            .map(|n| {
                let text = format!("message number {n}\n\nwith a second paragraph");
                let payload = if n % 2 == 0 {
                    Payload::UserMessage {
                        text,
                        attachments: 0,
                    }
                } else {
                    Payload::AssistantMessage { text }
                };
                event(n, payload)
            })
            .collect()
    }

    fn markdown_request() -> Request {
        Request {
            format: ExportFormat::Markdown,
            markdown: MarkdownOptions::default(),
            output: None,
            dry_run: false,
        }
    }

    /// The document as one renderer writes it: header, then every event.
    fn expected(meta: &crate::render::SessionMeta, evs: &[Event]) -> Vec<u8> {
        let mut r = crate::render::markdown::MarkdownRenderer::new(
            Vec::new(),
            &markdown_request().markdown,
        );
        r.header(meta).unwrap();
        for ev in evs {
            r.event(ev).unwrap();
        }
        r.finish().unwrap()
    }

    fn session() -> SessionFiles {
        SessionFiles {
            provider: ProviderId::Claude,
            session_id: "s1".into(),
            files: Vec::new(),
        }
    }

    fn meta_of(evs: &[Event]) -> crate::render::SessionMeta {
        let mut c = crate::render::MetaCollector::new(std::sync::Arc::new(
            Redactor::new(&Default::default()).unwrap(),
        ));
        evs.iter().for_each(|e| c.observe(e));
        finish_meta(c, &session())
    }

    /// What the metadata stage does in a test: wait to be started, then
    /// send `msg` (nothing when `msg` is `None`).
    fn meta_stage(msg: Option<Msg>) -> (Receiver<Msg>, SyncSender<()>, JoinHandle<bool>) {
        let (tx, rx) = sync_channel(1);
        let (go_tx, go_rx) = sync_channel::<()>(1);
        let stage = std::thread::spawn(move || {
            if go_rx.recv().is_err() {
                return false;
            }
            if let Some(m) = msg {
                let _ = tx.send(m);
            }
            true
        });
        (rx, go_tx, stage)
    }

    /// What a parse stage sends for `evs`: batches of 7, then the end.
    fn queued(evs: &[Event]) -> Receiver<Msg> {
        let (tx, rx) = sync_channel(1024);
        for b in evs.chunks(7) {
            tx.send(Msg::Events(Batch {
                events: b.to_vec(),
                at: 0,
                redacted: None,
            }))
            .unwrap();
        }
        tx.send(Msg::Done(Skipped::default())).unwrap();
        rx
    }

    /// A metadata source for the tests' session, default redaction.
    fn source<'a>(
        rx: Option<&'a Receiver<Msg>>,
        go: Option<SyncSender<()>>,
        session: &'a SessionFiles,
    ) -> MetaSource<'a> {
        MetaSource {
            rx,
            go,
            session,
            redactor: std::sync::Arc::new(Redactor::new(&Default::default()).unwrap()),
        }
    }

    /// The write stage rendering Markdown from `rx`, no progress shown.
    fn render(
        rx: &Receiver<Msg>,
        src: MetaSource<'_>,
        bounds: SpoolBounds,
        w: &mut dyn Write,
    ) -> Result<Rendered> {
        let mut off = crate::progress::Progress::off();
        let redactor = Redactor::new(&Default::default()).unwrap();
        let inbox = Inbox {
            rx,
            spent: None,
            redactor: &redactor,
        };
        write_stage(inbox, Some(src), bounds, &markdown_request(), w, &mut off)
    }

    /// Feed the write stage the events in batches of 7, with the given
    /// spool bound; returns the document, the count, whether the metadata
    /// stage was started and whether it was left unused.
    fn spooled(max: usize, start_meta_at: usize) -> (String, u64, bool, bool) {
        let evs = events();
        let rx = queued(&evs);
        let (mrx, go, stage) = meta_stage(Some(Msg::Meta(Box::new(meta_of(&evs)))));
        let session = session();
        let src = source(Some(&mrx), Some(go), &session);
        let bounds = SpoolBounds {
            start_meta_at,
            max,
            spill_at: None,
        };
        let mut out = Vec::new();
        let r = render(&rx, src, bounds, &mut out).unwrap();
        let started = stage.join().unwrap();
        (
            String::from_utf8(out).unwrap(),
            r.events,
            started,
            r.abandoned,
        )
    }

    /// The write stage to a file with the body written out past
    /// `spill_at` held bytes, the header inserted after: the document, and
    /// whether the header had to be inserted.
    fn spilled(spill_at: usize) -> (String, bool) {
        let evs = events();
        let rx = queued(&evs);
        let session = session();
        let src = source(None, None, &session);
        let bounds = SpoolBounds {
            start_meta_at: 0,
            max: 0,
            spill_at: Some(spill_at),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.md");
        let file = std::fs::File::create(&path).unwrap();
        let mut w = Counting {
            inner: io::BufWriter::new(file.try_clone().unwrap()),
            bytes: 0,
        };
        let r = render(&rx, src, bounds, &mut w).unwrap();
        w.flush().unwrap();
        assert_eq!(r.events, 40);
        let inserted = r.prepend.is_some();
        if let Some(head) = r.prepend {
            let read = std::fs::File::open(&path).unwrap();
            prepend(&read, &file, w.bytes, &head).unwrap();
        }
        (std::fs::read_to_string(&path).unwrap(), inserted)
    }

    #[test]
    fn a_body_written_before_its_header_gets_it_inserted_in_front() {
        let evs = events();
        let want = String::from_utf8(expected(&meta_of(&evs), &evs)).unwrap();
        // Held whole: written with the header, nothing to insert.
        assert_eq!(spilled(SPILL_AT), (want.clone(), false));
        // Written out at once, or part way: the same document.
        for at in [0, 1, 100, want.len() / 2] {
            assert_eq!(spilled(at), (want.clone(), true), "{at}");
        }
    }

    #[test]
    fn prepend_moves_every_chunk_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        // Larger than one chunk, and not a multiple of it.
        let body: Vec<u8> = (0..(3 << 20) + 12345).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &body).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let read = std::fs::File::open(&path).unwrap();
        prepend(&read, &file, body.len() as u64, b"head\n").unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[..5], b"head\n");
        assert_eq!(&got[5..], &body[..]);
    }

    #[test]
    fn the_parse_stage_redacts_what_it_sends_while_the_write_stage_is_behind() {
        use crate::provider::Provider;
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("0890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl");
        // Enough messages for every batch in flight and more.
        let n = (IN_FLIGHT + 3) * BATCH;
        let mut text = String::new();
        for i in 0..n {
            let line = serde_json::json!({"type": "user", "sessionId": "s1", "uuid": format!("u{i}"),
                "timestamp": "2026-01-08T14:00:00.000Z",
                "message": {"role": "user", "content": format!("{i} key ghp_abcdefghijklmnopqrstuvwxyz0123456789")}});
            text.push_str(&line.to_string());
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        let provider: &'static dyn Provider = &crate::provider::claude::Claude;
        let session = SessionFiles {
            provider: ProviderId::Claude,
            session_id: "s1".into(),
            files: vec![crate::discover::Found {
                provider,
                ctx: provider.named_file(&path),
                path,
            }],
        };
        let redactor = Redactor::new(&Default::default()).unwrap();
        let (session, redactor) = (&session, &redactor);
        let (tx, rx) = sync_channel::<Msg>(64);
        let (spent_tx, spent_rx) = sync_channel(IN_FLIGHT + 1);
        let position = crate::progress::Position::new(vec![0]);
        let hidden = hidden(&markdown_request());
        std::thread::scope(|scope| {
            let (tx, spent_rx) = (tx, spent_rx);
            scope.spawn(move || {
                parse_stage(
                    session,
                    Limits::default(),
                    redactor,
                    hidden,
                    &tx,
                    &spent_rx,
                    position,
                )
            });
            let (mut received, mut held, mut by_parse, mut events) = (0, Vec::new(), 0, 0);
            loop {
                match rx.recv().unwrap() {
                    Msg::Events(b) => {
                        events += b.events.len();
                        // The batch after all those in flight: redacted
                        // by the parse stage, every secret, and counted
                        // (later ones may be too, as the threads run).
                        if received <= IN_FLIGHT {
                            assert_eq!(b.redacted.is_some(), received == IN_FLIGHT);
                        }
                        if let Some(found) = &b.redacted {
                            by_parse += 1;
                            assert_eq!(found.total(), b.events.len() as u64);
                            for ev in &b.events {
                                let Payload::UserMessage { text, .. } = &ev.payload else {
                                    panic!("{ev:?}")
                                };
                                assert!(!text.contains("ghp_"), "{text}");
                            }
                        }
                        received += 1;
                        // None given back until the parse stage has been
                        // behind; then each as it comes.
                        held.push(b.events);
                        if received > IN_FLIGHT {
                            for v in held.drain(..) {
                                // A parse stage that has sent its last
                                // batch takes none back: its end of the
                                // channel is gone (the threads race).
                                let _ = spent_tx.send(v);
                            }
                        }
                    }
                    Msg::Done(_) => break,
                    Msg::Failed(e) => panic!("{e}"),
                    Msg::Meta(_) => {}
                }
            }
            assert_eq!(events, n);
            assert!(by_parse >= 1);
        });
    }

    #[test]
    fn spooled_markdown_equals_the_sequential_rendering() {
        let evs = events();
        let want = String::from_utf8(expected(&meta_of(&evs), &evs)).unwrap();
        // A body that fits: the session is read once.
        let (got, count, started, _) = spooled(SPOOL_MAX, SPOOL_MAX / 4);
        assert_eq!((got.as_str(), count, started), (want.as_str(), 40, false));
        // Bodies that do not fit wait for the metadata stage.
        for (max, start) in [(0, 0), (64, 16), (1000, 250), (1000, 0)] {
            let (got, count, started, abandoned) = spooled(max, start);
            assert_eq!((got.as_str(), count), (want.as_str(), 40), "{max}");
            assert!(started && !abandoned, "{max}");
        }
        // Started at once, for a body that fits: not waited for.
        let (got, _, started, _) = spooled(SPOOL_MAX, 0);
        assert_eq!(got, want);
        assert!(started);
        // When it starts at once.
        let mut req = markdown_request();
        assert_eq!(
            Spool::bounds(&req, u64::MAX, false).start_meta_at,
            SPOOL_MAX / 4
        );
        req.markdown.tool_calls = true;
        assert_eq!(
            Spool::bounds(&req, 1 << 20, false).start_meta_at,
            SPOOL_MAX / 4
        );
        assert_eq!(Spool::bounds(&req, 1 << 40, false).start_meta_at, 0);
        assert_eq!(Spool::bounds(&req, 1 << 40, true).spill_at, Some(SPILL_AT));
    }

    #[test]
    fn a_failed_metadata_stage_fails_the_export_when_needed() {
        let run = |msg: Option<Msg>, spool_max: usize| {
            let (tx, rx) = sync_channel(8);
            tx.send(Msg::Events(Batch {
                events: events(),
                at: 0,
                redacted: None,
            }))
            .unwrap();
            tx.send(Msg::Done(Skipped::default())).unwrap();
            let (mrx, go, stage) = meta_stage(msg);
            let session = session();
            let src = MetaSource {
                rx: Some(&mrx),
                go: Some(go),
                session: &session,
                redactor: std::sync::Arc::new(Redactor::new(&Default::default()).unwrap()),
            };
            let mut out = Vec::new();
            let bounds = SpoolBounds {
                start_meta_at: spool_max / 4,
                max: spool_max,
                spill_at: None,
            };
            let r = render(&rx, src, bounds, &mut out)
                .map(|_| ())
                .map_err(|e| e.to_string());
            let _ = stage.join();
            r
        };
        let err = run(Some(Msg::Failed("disk on fire".into())), 0).unwrap_err();
        assert!(err.contains("disk on fire"), "{err}");
        let err = run(None, 0).unwrap_err();
        assert!(err.contains("ended without finishing"), "{err}");
        // Not needed: its failure does not matter.
        assert!(run(Some(Msg::Failed("disk on fire".into())), SPOOL_MAX).is_ok());
    }

    #[test]
    fn batches_are_bounded_by_bytes() {
        let big = event(
            1,
            Payload::AssistantMessage {
                text: "x".repeat(BATCH_BYTES),
            },
        );
        assert!(text_size(&big) >= BATCH_BYTES);
        let small = event(2, Payload::AssistantMessage { text: "hi".into() });
        assert!(text_size(&small) < 256);
    }

    #[test]
    fn metadata_from_raw_events_is_redacted_as_from_redacted_ones() {
        let redactor = std::sync::Arc::new(Redactor::new(&Default::default()).unwrap());
        let token = format!("ghp_{}", "k7Qz".repeat(9));
        let mut raw = events();
        raw[0] = event(
            0,
            Payload::UserMessage {
                text: format!("deploy with {token}"),
                attachments: 0,
            },
        );
        raw[1].model = Some(format!("m-{token}").into());
        let mut redacted = raw.clone();
        let mut stats = RedactionStats::default();
        redacted
            .iter_mut()
            .for_each(|e| redactor.redact_event(e, &mut stats));
        let meta = |evs: &[Event]| {
            let mut c = crate::render::MetaCollector::new(redactor.clone());
            evs.iter().for_each(|e| c.observe(e));
            c.finish()
        };
        let (a, b) = (meta(&raw), meta(&redacted));
        assert_eq!(a, b);
        assert_eq!(a.title, "deploy with [REDACTED:GITHUB_TOKEN]");
        assert!(!format!("{a:?}").contains(&token));
    }
}
