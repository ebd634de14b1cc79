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

/// Render `session` as JSONL into `w`.
pub fn write_jsonl(
    session: &SessionFiles,
    limits: Limits,
    skipped: &mut Skipped,
    w: &mut dyn Write,
) -> Result<u64> {
    let mut events = 0u64;
    let mut err: Option<io::Error> = None;
    stream_session(session, limits, skipped, &mut |ev| {
        if err.is_some() {
            return;
        }
        let rec = crate::event::JsonlRecord {
            schema_version: crate::event::SCHEMA_VERSION,
            event: &ev,
        };
        let r = serde_json::to_writer(&mut *w, &rec)
            .map_err(io::Error::from)
            .and_then(|()| w.write_all(b"\n"));
        match r {
            Ok(()) => events += 1,
            Err(e) => err = Some(e),
        }
    })?;
    if let Some(e) = err {
        return Err(Error::io("writing the export", e));
    }
    Ok(events)
}

/// Render `session` as Markdown into `w`: a metadata pass for the
/// frontmatter, then the streaming body. Returns the number of events.
pub fn write_markdown(
    session: &SessionFiles,
    limits: Limits,
    opts: &MarkdownOptions,
    skipped: &mut Skipped,
    w: &mut dyn Write,
) -> Result<u64> {
    let meta = collect_meta(session, limits)?;
    let mut r = crate::render::markdown::MarkdownRenderer::new(w, opts);
    r.header(&meta)
        .map_err(|e| Error::io("writing the export", e))?;
    let mut events = 0u64;
    let mut err: Option<io::Error> = None;
    stream_session(session, limits, skipped, &mut |ev| {
        if err.is_some() {
            return;
        }
        match r.event(&ev) {
            Ok(()) => events += 1,
            Err(e) => err = Some(e),
        }
    })?;
    if let Some(e) = err {
        return Err(Error::io("writing the export", e));
    }
    r.finish().map_err(|e| Error::io("writing the export", e))?;
    Ok(events)
}

/// Fold a whole session into its metadata (title, participants, times).
pub fn collect_meta(session: &SessionFiles, limits: Limits) -> Result<crate::render::SessionMeta> {
    let mut collector = crate::render::MetaCollector::new();
    let mut ignored = Skipped::default();
    stream_session(session, limits, &mut ignored, &mut |ev| {
        collector.observe(&ev)
    })?;
    let mut meta = collector.finish();
    if meta.session_id.is_empty() {
        meta.session_id = session.session_id.clone();
        meta.provider = session.provider.to_owned();
        meta.id = crate::render::session_key(session.provider, &session.session_id);
    }
    Ok(meta)
}
