//! The one-shot export (`kato export`): resolve a session, parse its files
//! in a confined parse stage, render in the confined write stage.
//!
//! Streaming end to end: events flow from the parse thread through a
//! bounded channel into the renderer, so memory stays flat whatever the
//! session size. Markdown needs its frontmatter (title, participants,
//! first/last time) before the body, so the parse stage makes two passes
//! over the files: one folding metadata, one delivering events.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Config, MarkdownOptions};
use crate::discover::{self, Found, SessionFiles};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::reader::{self, DiagKind, Limits};
use crate::redact::{RedactionStats, Redactor};

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Markdown,
    Jsonl,
}

/// Resolve a SESSION argument: a path to a session file, a full session id,
/// or a unique prefix of at least 8 characters.
pub fn resolve(config: &Config, query: &str) -> Result<SessionFiles> {
    let as_path = Path::new(query);
    if query.contains('/') || as_path.is_file() {
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
    if !path.is_file() {
        return Err(Error::SessionNotFound {
            query: path.display().to_string(),
        });
    }
    let provider = discover::provider_for_path(config, path).ok_or_else(|| {
        Error::Usage(format!(
            "{}: not a Claude Code, Codex or Gemini session file (or its format is not recognised)",
            path.display()
        ))
    })?;
    let found = Found {
        provider,
        path: path.to_path_buf(),
        ctx: crate::provider::ctx_for_path(provider, path),
    };
    let session_id = discover::identify(&found, limits(config));
    Ok(SessionFiles {
        provider: provider.id().as_str(),
        session_id,
        files: vec![found],
    })
}

pub fn limits(config: &Config) -> Limits {
    Limits {
        line_cap: config.line_cap,
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
    pub provider: &'static str,
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
    redactor: &Redactor,
) -> Result<crate::render::SessionMeta> {
    let mut collector = crate::render::MetaCollector::new();
    let mut ignored = Skipped::default();
    let mut no_stats = RedactionStats::default();
    stream_session(session, limits, &mut ignored, &mut |mut ev| {
        redactor.redact_event(&mut ev, &mut no_stats);
        collector.observe(&ev);
    })?;
    let mut meta = collector.finish();
    // The session's identity is the resolved one, whatever the first record said.
    meta.session_id = session.session_id.clone();
    meta.provider = session.provider.to_owned();
    meta.id = crate::render::session_key(session.provider, &session.session_id);
    Ok(meta)
}

/// Say on stderr what confinement is missing (best-effort mode only: in
/// enforce mode a missing feature is an error before anything is read).
pub fn report_degraded(stage: &str, missing: &[crate::sandbox::Missing]) {
    for m in missing {
        eprintln!(
            "kato: sandbox degraded ({stage}): {} — {}",
            m.feature, m.advice
        );
    }
}

/// What the parse stage sends to the write stage.
enum Msg {
    Meta(Box<crate::render::SessionMeta>),
    Events(Vec<Event>),
    Done(Skipped, RedactionStats),
    Failed(String),
}

/// Events per channel message: amortises the hand-off between stages.
const BATCH: usize = 256;

/// The confined one-shot export (SPEC §8, "one-shot `kato export`").
///
/// 1. `main` hardens the process (no_new_privs, no capabilities, no core
///    dumps, umask 077) and confines itself to reading the provider roots,
///    the named file and the config, plus creating the output in its
///    parent directory — before any session byte is read.
/// 2. It resolves the session (directory listings and first records only),
///    creates the output file, and starts the parse stage: a thread confined
///    to reading exactly the session's files.
/// 3. It narrows itself to writing exactly the output file, and renders
///    what the parse stage sends over a bounded channel.
pub fn run(cfg: &Config, query: &str, req: &Request) -> Result<Summary> {
    use crate::sandbox::{self, profiles, stage};
    let mode = cfg.sandbox_mode;
    let hardened = sandbox::harden_process(mode)?;
    report_degraded("startup", &hardened.missing);
    let config_file = cfg.source.as_deref();
    let output = if req.dry_run {
        None
    } else {
        req.output.clone()
    };

    let mut read = profiles::provider_roots(cfg);
    let as_path = Path::new(query);
    if query.contains('/') {
        read.push(as_path.to_path_buf());
    } else if let Ok(cwd) = std::env::current_dir() {
        // A bare file name in the working directory.
        let candidate = cwd.join(as_path);
        if candidate.is_file() {
            read.push(candidate);
        }
    }
    let mut resolve_domain =
        profiles::union(&[profiles::provider(&read), profiles::startup(config_file)]);
    if let Some(out) = &output {
        if out.exists() {
            resolve_domain.write_files.push(out.clone());
            resolve_domain.truncate = true;
        } else {
            let parent = match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            resolve_domain.create_in.push(parent);
        }
    }
    let applied = resolve_domain.apply(mode)?;
    report_degraded("export", &applied.missing);

    let session = resolve(cfg, query)?;
    let out_file = match &output {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
                .map_err(|e| Error::io(format!("creating {}", p.display()), e))?,
        ),
        None => None,
    };

    let files: Vec<PathBuf> = session.files.iter().map(|f| f.path.clone()).collect();
    let limits = limits(cfg);
    let markdown = req.format == ExportFormat::Markdown;
    let parse_session = session.clone();
    let redactor = Redactor::new(&cfg.redaction).map_err(|e| Error::Config {
        path: cfg.source.clone().unwrap_or_default(),
        message: e.to_string(),
    })?;
    let parser = stage::spawn(
        "export-parse",
        profiles::export(&files, config_file, None),
        mode,
        move |tx: std::sync::mpsc::SyncSender<Msg>| {
            parse_stage(&parse_session, limits, markdown, &redactor, &tx);
        },
    )?;
    // The write stage: from here on `main` may only write the output file.
    let write_domain = profiles::export(&[], None, output.as_deref());
    let applied = write_domain.apply(mode)?;
    report_degraded("export-write", &applied.missing);

    let sink: Box<dyn Write> = match out_file {
        Some(f) => Box::new(io::BufWriter::with_capacity(256 << 10, f)),
        None if req.dry_run => Box::new(io::sink()),
        None => Box::new(io::BufWriter::with_capacity(256 << 10, io::stdout().lock())),
    };
    let mut w = Counting {
        inner: sink,
        bytes: 0,
    };
    let (events, skipped, redactions) = write_stage(parser.receiver(), req, &mut w)?;
    w.flush().map_err(|e| Error::io("writing the export", e))?;
    parser.join()?;
    Ok(Summary {
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
        events,
        bytes: w.bytes,
        skipped,
        redactions: redactions
            .counts
            .iter()
            .map(|(label, n)| (label.as_str(), *n))
            .collect(),
    })
}

/// The parse stage of a one-shot export: a metadata pass (Markdown only),
/// then the events in batches. Errors are sent, not returned.
fn parse_stage(
    session: &SessionFiles,
    limits: Limits,
    markdown: bool,
    redactor: &Redactor,
    tx: &std::sync::mpsc::SyncSender<Msg>,
) {
    if markdown {
        match collect_meta(session, limits, redactor) {
            Ok(meta) => {
                if tx.send(Msg::Meta(Box::new(meta))).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Msg::Failed(e.to_string()));
                return;
            }
        }
    }
    let mut skipped = Skipped::default();
    let mut stats = RedactionStats::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut closed = false;
    // Redaction happens here, before anything is rendered: no renderer can
    // forget it.
    let r = stream_session(session, limits, &mut skipped, &mut |mut ev| {
        if closed {
            return;
        }
        redactor.redact_event(&mut ev, &mut stats);
        batch.push(ev);
        if batch.len() >= BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            closed = tx.send(Msg::Events(full)).is_err();
        }
    });
    if closed {
        return;
    }
    let last = match r {
        Ok(()) => {
            if !batch.is_empty() && tx.send(Msg::Events(batch)).is_err() {
                return;
            }
            Msg::Done(skipped, stats)
        }
        Err(e) => Msg::Failed(e.to_string()),
    };
    let _ = tx.send(last);
}

/// The write stage: render what arrives, in order.
fn write_stage(
    rx: &std::sync::mpsc::Receiver<Msg>,
    req: &Request,
    w: &mut dyn Write,
) -> Result<(u64, Skipped, RedactionStats)> {
    let werr = |e: io::Error| Error::io("writing the export", e);
    let mut events = 0u64;
    let mut md: Option<crate::render::markdown::MarkdownRenderer<&mut dyn Write>> = None;
    let mut jsonl: Option<crate::render::jsonl::JsonlWriter<&mut dyn Write>> = None;
    let mut w = Some(w);
    if req.format == ExportFormat::Jsonl {
        if let Some(w) = w.take() {
            jsonl = Some(crate::render::jsonl::JsonlWriter::new(w));
        }
    }
    loop {
        let msg = rx.recv().map_err(|_| {
            Error::io(
                "reading the session",
                io::Error::other("the parse stage ended without finishing"),
            )
        })?;
        match msg {
            Msg::Meta(meta) => {
                if let Some(w) = w.take() {
                    let mut r = crate::render::markdown::MarkdownRenderer::new(w, &req.markdown);
                    r.header(&meta).map_err(werr)?;
                    md = Some(r);
                }
            }
            Msg::Events(batch) => {
                for ev in &batch {
                    if let Some(r) = md.as_mut() {
                        r.event(ev).map_err(werr)?;
                    } else if let Some(j) = jsonl.as_mut() {
                        j.event(ev).map_err(werr)?;
                    }
                    events += 1;
                }
            }
            Msg::Done(skipped, redactions) => {
                if let Some(r) = md {
                    r.finish().map_err(werr)?;
                }
                if let Some(j) = jsonl {
                    j.finish().map_err(werr)?;
                }
                return Ok((events, skipped, redactions));
            }
            Msg::Failed(e) => return Err(Error::io("reading the session", io::Error::other(e))),
        }
    }
}
