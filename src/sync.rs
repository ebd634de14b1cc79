//! `kato sync` and the daemon's autosync: keep a directory tree holding one
//! export per session current, incrementally.
//!
//! A pass has three steps:
//!
//! 1. **plan** — every session under the provider roots is matched
//!    against the manifest in the target directory (`.kato-sync.json`),
//!    which records, per session, its source files (path, size, mtime,
//!    inode, bytes read), the output it wrote and the SHA-256 of that
//!    output. A session whose sources did not change and whose output is
//!    still what kato wrote is *unchanged*: it is not read at all.
//! 2. **render** — sessions that are new or grew are parsed and rendered
//!    in memory (redacted first, as every export), by a stage that may
//!    only read the provider roots.
//! 3. **commit** — each output is written beside its destination and
//!    renamed over it (atomic per file), then the manifest the same way.
//!
//! Invariants:
//! - Nothing outside the target directory is written; nothing in it is
//!   removed but kato's own temporary files.
//! - A file kato did not write (no manifest entry) or a file changed since
//!   kato wrote it (its hash differs) is never overwritten: the session is
//!   reported as a conflict and left alone.
//! - Output names are stable: once written, a session keeps its path.
//! - The output format is chosen in one place ([`renderer_for`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::config::{Config, MarkdownOptions};
use crate::discover::{self, SessionFiles};
use crate::error::{Error, Result};
use crate::event::{Event, ProviderId};
use crate::export::{self, ExportFormat, Skipped};
use crate::reader::Limits;
use crate::redact::{RedactionStats, Redactor};
use crate::render::SessionMeta;

pub mod auto;

#[cfg(test)]
mod tests;

/// The manifest's file name, in the target directory.
pub const MANIFEST: &str = ".kato-sync.json";

/// Version of the manifest format.
const MANIFEST_VERSION: u32 = 1;

/// Suffix of a file being written, before it is renamed into place.
const TMP_SUFFIX: &str = ".kato-tmp";

/// How sessions are laid out in the target directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `DIR/<project>/<date>-<provider>-<title>-<id>.<ext>`
    #[default]
    ByProject,
    /// `DIR/<yyyy>/<mm>/<date>-<provider>-<title>-<id>.<ext>`
    ByDate,
    /// `DIR/<date>-<provider>-<title>-<id>.<ext>`
    Flat,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::ByProject => "by-project",
            Layout::ByDate => "by-date",
            Layout::Flat => "flat",
        }
    }
}

/// What one pass is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The target directory (absolute).
    pub dir: PathBuf,
    /// One directory component under `dir` (a device name in a fleet):
    /// the tree and its manifest go in `dir/<prefix>/`.
    pub prefix: Option<String>,
    pub layout: Layout,
    pub format: ExportFormat,
    /// Only these providers (empty: every enabled one).
    pub providers: Vec<ProviderId>,
    /// Only sessions whose files changed at or after this time (seconds
    /// since the epoch).
    pub since: Option<i64>,
    pub markdown: MarkdownOptions,
    /// Mode of the files written (directories get the matching `x` bits).
    pub file_mode: u32,
    pub dry_run: bool,
}

impl Options {
    /// Where the tree and its manifest are.
    pub fn root(&self) -> PathBuf {
        match &self.prefix {
            Some(p) => self.dir.join(p),
            None => self.dir.clone(),
        }
    }
}

/// What a pass did (or, with `dry_run`, would do) with one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new output.
    Write,
    /// An output rewritten because its session changed (or it was removed).
    Update,
    /// Nothing to do; the session was not read.
    Unchanged,
    /// Left alone: the output was changed by someone else, or a file kato
    /// did not write is in the way.
    Conflict,
    /// The session could not be read or its output not written.
    Failed,
}

/// The name of an action, as `--json` spells it.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Write => "write",
        Action::Update => "update",
        Action::Unchanged => "unchanged",
        Action::Conflict => "conflict",
        Action::Failed => "failed",
    }
}

/// One session of a pass.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub provider: ProviderId,
    pub session_id: String,
    /// Path relative to the tree's root (empty when no name was found).
    pub output: String,
    pub action: Action,
    pub reason: String,
}

/// The outcome of a pass (`kato sync --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub dir: PathBuf,
    pub format: ExportFormat,
    pub layout: Layout,
    pub dry_run: bool,
    /// Sessions considered (after `--provider` and `--since`).
    pub sessions: u64,
    pub written: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub conflicts: u64,
    pub failed: u64,
    /// Sessions read and rendered: zero when nothing changed.
    pub parsed: u64,
    pub events: u64,
    /// Bytes of session files read.
    pub bytes_read: u64,
    /// Bytes of outputs written (or that would be).
    pub bytes_written: u64,
    pub seconds: f64,
    pub items: Vec<Item>,
    /// What happened to `index.html` (HTML trees only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

impl Summary {
    fn new(opts: &Options) -> Summary {
        Summary {
            dir: opts.root(),
            format: opts.format,
            layout: opts.layout,
            dry_run: opts.dry_run,
            sessions: 0,
            written: 0,
            updated: 0,
            unchanged: 0,
            conflicts: 0,
            failed: 0,
            parsed: 0,
            events: 0,
            bytes_read: 0,
            bytes_written: 0,
            seconds: 0.0,
            items: Vec::new(),
            index: None,
        }
    }

    fn push(&mut self, item: Item) {
        match item.action {
            Action::Write => self.written += 1,
            Action::Update => self.updated += 1,
            Action::Unchanged => self.unchanged += 1,
            Action::Conflict => self.conflicts += 1,
            Action::Failed => self.failed += 1,
        }
        self.items.push(item);
    }
}

// ---------------------------------------------------------------------------
// The manifest
// ---------------------------------------------------------------------------

/// One source file as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub dev: u64,
    pub ino: u64,
}

/// One session's record in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub provider: ProviderId,
    pub session_id: String,
    /// The session's files when it was last rendered.
    pub sources: Vec<Source>,
    /// Bytes of the sources read by that rendering.
    pub cursor: u64,
    /// The output, relative to the tree's root.
    pub output: PathBuf,
    /// The format's name (`markdown`, `jsonl`).
    pub format: String,
    /// SHA-256 (hex) of the output as kato wrote it.
    pub sha256: String,
    pub bytes: u64,
    /// The output's mtime after kato wrote it: an output with the same
    /// size and mtime is not hashed again.
    pub output_mtime_ns: i64,
    pub events: u64,
    pub synced_at: String,
    /// The session's title and first activity, for the HTML index page.
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub created: Option<String>,
}

/// `.kato-sync.json`: what kato wrote in the tree, by session key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub entries: BTreeMap<String, Entry>,
    /// SHA-256 of the `index.html` kato last wrote (HTML trees only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_sha256: Option<String>,
}

impl Manifest {
    /// Read the manifest of `root`; none there is an empty one.
    pub fn load(root: &Path) -> Result<Manifest> {
        let path = root.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Manifest {
                    version: MANIFEST_VERSION,
                    entries: BTreeMap::new(),
                    index_sha256: None,
                })
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: not a manifest kato can read ({e}); move it away to start the tree over \
                 (kato then treats every file there as not its own)",
                path.display()
            ))
        })?;
        if m.version != MANIFEST_VERSION {
            return Err(Error::Usage(format!(
                "{}: manifest version {} (this kato reads {MANIFEST_VERSION})",
                path.display(),
                m.version
            )));
        }
        Ok(m)
    }
}

// ---------------------------------------------------------------------------
// Rendering: the one place the format is chosen
// ---------------------------------------------------------------------------

/// A session's output, rendered in memory.
pub trait SessionRenderer {
    /// The output file's extension.
    fn extension(&self) -> &'static str;
    /// Render one (redacted) event.
    fn event(&mut self, ev: &Event) -> io::Result<()>;
    /// The whole document, once every event and the metadata are in.
    fn finish(self: Box<Self>, meta: &SessionMeta) -> io::Result<Vec<u8>>;
}

/// The renderer of `format`: the one match on the output format.
pub fn renderer_for(format: ExportFormat, markdown: &MarkdownOptions) -> Box<dyn SessionRenderer> {
    match format {
        ExportFormat::Markdown => Box::new(Markdown {
            body: crate::render::markdown::MarkdownRenderer::resume(
                Vec::new(),
                markdown,
                crate::render::markdown::RenderState::appending(),
            ),
            opts: markdown.clone(),
        }),
        ExportFormat::Jsonl => Box::new(Jsonl(crate::render::jsonl::JsonlWriter::new(Vec::new()))),
        ExportFormat::Html => Box::new(Html(crate::render::html::HtmlRenderer::new(
            Vec::new(),
            markdown,
        ))),
    }
}

/// HTML: one self-contained page; the top (which needs the metadata) put
/// before the body at the end.
struct Html(crate::render::html::HtmlRenderer<Vec<u8>>);

impl SessionRenderer for Html {
    fn extension(&self) -> &'static str {
        "html"
    }
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.0.event(ev)
    }
    fn finish(self: Box<Self>, meta: &SessionMeta) -> io::Result<Vec<u8>> {
        let mut out = crate::render::html::header(meta).into_bytes();
        out.extend_from_slice(&self.0.finish()?);
        Ok(out)
    }
}

/// Markdown: the body is rendered as it comes, the header (which needs
/// the metadata) put before it at the end — as `kato export` does.
struct Markdown {
    body: crate::render::markdown::MarkdownRenderer<Vec<u8>>,
    opts: MarkdownOptions,
}

impl SessionRenderer for Markdown {
    fn extension(&self) -> &'static str {
        "md"
    }
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.body.event(ev)
    }
    fn finish(self: Box<Self>, meta: &SessionMeta) -> io::Result<Vec<u8>> {
        let mut header = crate::render::markdown::MarkdownRenderer::new(Vec::new(), &self.opts);
        header.header(meta)?;
        let mut out = header.finish()?;
        out.extend_from_slice(&self.body.finish()?);
        Ok(out)
    }
}

struct Jsonl(crate::render::jsonl::JsonlWriter<Vec<u8>>);

impl SessionRenderer for Jsonl {
    fn extension(&self) -> &'static str {
        "jsonl"
    }
    fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.0.event(ev)
    }
    fn finish(self: Box<Self>, _meta: &SessionMeta) -> io::Result<Vec<u8>> {
        self.0.finish()
    }
}

/// The name of a format, as the command line spells it.
pub fn format_name(format: ExportFormat) -> String {
    clap::ValueEnum::to_possible_value(&format)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// A rendered session.
#[derive(Debug)]
pub struct Rendered {
    pub meta: SessionMeta,
    /// The project directory (for the by-project layout), redacted.
    pub project: Option<String>,
    pub extension: &'static str,
    pub bytes: Vec<u8>,
    pub events: u64,
    /// Bytes of the session's files read.
    pub cursor: u64,
}

/// Read and render one session (reads its files only).
pub fn render(
    session: &SessionFiles,
    limits: Limits,
    redactor: &Arc<Redactor>,
    format: ExportFormat,
    markdown: &MarkdownOptions,
) -> Result<Rendered> {
    let mut r = renderer_for(format, markdown);
    let extension = r.extension();
    let mut collector = crate::render::MetaCollector::new(redactor.clone());
    let mut stats = RedactionStats::default();
    let mut skipped = Skipped::default();
    let mut events = 0u64;
    let mut recorded_cwd = None;
    let mut failed: Option<io::Error> = None;
    export::stream_session(session, limits, &mut skipped, &mut |mut ev| {
        if failed.is_some() {
            return;
        }
        redactor.redact_event(&mut ev, &mut stats);
        collector.observe(&ev);
        if let Some(dir) = crate::cli::recorded_cwd_of(&ev) {
            recorded_cwd = Some(dir);
        }
        if let Err(e) = r.event(&ev) {
            failed = Some(e);
        }
        events += 1;
    })?;
    if let Some(e) = failed {
        return Err(Error::io("rendering", e));
    }
    let mut meta = collector.finish();
    meta.session_id = session.session_id.clone();
    meta.provider = session.provider.as_str().to_owned();
    meta.id = crate::render::session_key(session.provider.as_str(), &session.session_id);
    let bytes = r.finish(&meta).map_err(|e| Error::io("rendering", e))?;
    let project = session
        .main_file()
        .and_then(discover::project_dir)
        .or(recorded_cwd)
        .or_else(|| escaped_project(session))
        .map(|c| redactor.redact_str(&c).text.into_owned());
    let cursor = session
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();
    Ok(Rendered {
        meta,
        project,
        extension,
        bytes,
        events,
        cursor,
    })
}

/// Claude Code keeps each project's sessions in a folder named after the
/// project's path with `/` turned into `-`: that name, when nothing
/// better is known.
fn escaped_project(session: &SessionFiles) -> Option<String> {
    if session.provider != ProviderId::Claude {
        return None;
    }
    let name = session.main_path()?.parent()?.file_name()?.to_str()?;
    name.starts_with('-').then(|| name.to_owned())
}

// ---------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------

/// The identity of a session's files now.
pub fn sources_of(session: &SessionFiles) -> Vec<Source> {
    session
        .files
        .iter()
        .map(|f| match std::fs::metadata(&f.path) {
            Ok(m) => Source {
                path: f.path.clone(),
                size: m.len(),
                mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                dev: m.dev(),
                ino: m.ino(),
            },
            Err(_) => Source {
                path: f.path.clone(),
                size: 0,
                mtime_ns: 0,
                dev: 0,
                ino: 0,
            },
        })
        .collect()
}

/// What the plan decided for one session before anything is read.
#[derive(Debug)]
enum Step {
    /// Settled without reading the session.
    Done(Item),
    /// Read and render it; `entry` is its manifest record, if any.
    Render {
        key: String,
        sources: Vec<Source>,
        entry: Option<Box<Entry>>,
        reason: String,
    },
}

/// Hash of a file's content (`None`: it cannot be read).
fn file_sha256(path: &Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h).ok()?;
    Some(
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
}

/// The state of an output kato wrote.
#[derive(Debug, PartialEq, Eq)]
enum OutputState {
    /// As kato left it.
    Intact,
    /// Changed since (its hash differs, or it is no longer a regular file).
    Edited,
    Missing,
}

fn output_state(root: &Path, entry: &Entry) -> OutputState {
    let path = root.join(&entry.output);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => OutputState::Missing,
        Err(_) => OutputState::Edited,
        Ok(m) if !m.file_type().is_file() => OutputState::Edited,
        Ok(m) => {
            let mtime = m.mtime() * 1_000_000_000 + m.mtime_nsec();
            if m.len() == entry.bytes && mtime == entry.output_mtime_ns {
                return OutputState::Intact;
            }
            match file_sha256(&path) {
                Some(h) if h == entry.sha256 => OutputState::Intact,
                _ => OutputState::Edited,
            }
        }
    }
}

fn item(session: &SessionFiles, output: &Path, action: Action, reason: &str) -> Item {
    Item {
        provider: session.provider,
        session_id: session.session_id.clone(),
        output: output.display().to_string(),
        action,
        reason: reason.to_owned(),
    }
}

/// Decide, for one session, without reading it.
fn plan_one(
    session: &SessionFiles,
    manifest: &Manifest,
    root: &Path,
    opts: &Options,
    refreshed: &mut Vec<(String, i64)>,
) -> Step {
    let key = crate::render::session_key(session.provider.as_str(), &session.session_id);
    let sources = sources_of(session);
    let Some(entry) = manifest.entries.get(&key) else {
        return Step::Render {
            key,
            sources,
            entry: None,
            reason: "new session".into(),
        };
    };
    let same_format = entry.format == format_name(opts.format);
    let state = output_state(root, entry);
    if state == OutputState::Edited {
        return Step::Done(item(
            session,
            &entry.output,
            Action::Conflict,
            "the output was changed since kato wrote it; left alone (move it away to have it written again)",
        ));
    }
    if entry.sources == sources && same_format && state == OutputState::Intact {
        // Same size but a new mtime (touched, copied back): remember it.
        if let Ok(m) = std::fs::metadata(root.join(&entry.output)) {
            let mtime = m.mtime() * 1_000_000_000 + m.mtime_nsec();
            if mtime != entry.output_mtime_ns {
                refreshed.push((key, mtime));
            }
        }
        return Step::Done(item(
            session,
            &entry.output,
            Action::Unchanged,
            "the session did not change",
        ));
    }
    let reason = if state == OutputState::Missing {
        "the output was removed; written again"
    } else if !same_format {
        "the format changed"
    } else {
        "the session changed"
    };
    Step::Render {
        key,
        sources,
        entry: Some(Box::new(entry.clone())),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// A file-name-safe slug: ASCII letters and digits, lowercased, runs of
/// anything else as one `-`, at most `max` bytes.
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            dash = true;
        }
        if out.len() >= max {
            break;
        }
    }
    out.truncate(max);
    out.trim_end_matches('-').to_owned()
}

/// `YYYY-MM-DD` of a Unix time.
pub fn civil_date(secs: i64) -> String {
    // Howard Hinnant's days-from-civil, inverted.
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix time of `YYYY-MM-DD` (midnight UTC), or of an RFC 3339 time's date.
pub fn parse_date(s: &str) -> Option<i64> {
    let d = s.get(..10)?;
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = d.get(..4)?.parse().ok()?;
    let m: i64 = d.get(5..7)?.parse().ok()?;
    let day: i64 = d.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400;
    (civil_date(secs) == d).then_some(secs)
}

/// The session's date: its first timestamp's, else its main file's mtime.
fn session_date(meta: &SessionMeta, sources: &[Source]) -> String {
    if let Some(c) = &meta.created {
        if parse_date(c).is_some() {
            return c[..10].to_owned();
        }
    }
    let ns = sources.first().map_or(0, |s| s.mtime_ns);
    civil_date(ns.div_euclid(1_000_000_000))
}

/// The output's path relative to the tree's root, by `layout`.
pub fn output_name(
    layout: Layout,
    meta: &SessionMeta,
    project: Option<&str>,
    sources: &[Source],
    extension: &str,
) -> PathBuf {
    let date = session_date(meta, sources);
    let title = match slug(&meta.title, 48) {
        s if s.is_empty() => "untitled".to_owned(),
        s => s,
    };
    let short = match slug(&meta.session_id, 64).replace('-', "") {
        s if s.is_empty() => meta.id.rsplit('-').next().unwrap_or("session").to_owned(),
        s => s.chars().take(8).collect(),
    };
    let provider = slug(&meta.provider, 32);
    let name = format!("{date}-{provider}-{title}-{short}.{extension}");
    match layout {
        Layout::Flat => PathBuf::from(name),
        Layout::ByDate => PathBuf::from(&date[..4]).join(&date[5..7]).join(name),
        Layout::ByProject => {
            let project = project
                .and_then(|p| Path::new(p.trim_end_matches('/')).file_name())
                .map(|n| slug(&n.to_string_lossy(), 64))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown-project".to_owned());
            PathBuf::from(project).join(name)
        }
    }
}

/// `name` with `-<suffix>` before its extension.
fn with_suffix(name: &Path, suffix: &str) -> PathBuf {
    let stem = name.file_stem().map(|s| s.to_string_lossy().into_owned());
    let ext = name.extension().map(|s| s.to_string_lossy().into_owned());
    let file = match (stem, ext) {
        (Some(s), Some(e)) => format!("{s}-{suffix}.{e}"),
        (Some(s), None) => format!("{s}-{suffix}"),
        _ => suffix.to_owned(),
    };
    name.with_file_name(file)
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// The mode of a directory holding files of `file_mode`: each class that
/// may read may also enter.
pub fn dir_mode(file_mode: u32) -> u32 {
    let mut m = file_mode & 0o777 | 0o700;
    if m & 0o040 != 0 {
        m |= 0o010;
    }
    if m & 0o004 != 0 {
        m |= 0o001;
    }
    m
}

/// Open `rel`'s directory beneath `root` (canonical), creating what is
/// missing with `dir_mode`; no symbolic link is followed on the way.
fn open_parent(root: &Path, rel: &Path, dir_mode: u32) -> io::Result<OwnedFd> {
    let mut cur = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        let std::path::Component::Normal(name) = c else {
            return Err(io::Error::other("not a plain relative path"));
        };
        let made = match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => return Err(e.into()),
        };
        let next = rustix::fs::openat(
            &cur,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        if made {
            // The umask keeps kato's own directories private; these are
            // for people to read.
            rustix::fs::fchmod(&next, Mode::from_raw_mode(dir_mode))?;
        }
        cur = next;
    }
    Ok(cur)
}

/// Write `bytes` to `rel` beneath `root`: a temporary file beside it,
/// synced, given `file_mode`, renamed over the destination; then the
/// directory synced. Returns the new file's mtime.
pub fn write_atomic(root: &Path, rel: &Path, bytes: &[u8], file_mode: u32) -> io::Result<i64> {
    let dir = open_parent(root, rel, dir_mode(file_mode))?;
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let tmp = format!(".{}{TMP_SUFFIX}", name.to_string_lossy());
    let fd = rustix::fs::openat(
        &dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    let fd = match fd {
        Err(rustix::io::Errno::EXIST) => {
            // Left by a pass that was killed: kato's own; start it over.
            rustix::fs::unlinkat(&dir, tmp.as_str(), rustix::fs::AtFlags::empty())?;
            rustix::fs::openat(
                &dir,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?
        }
        r => r?,
    };
    let mut file = std::fs::File::from(fd);
    let written = file
        .write_all(bytes)
        .and_then(|()| {
            rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(file_mode))
                .map_err(io::Error::from)
        })
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        return Err(e);
    }
    let mtime = file
        .metadata()
        .map(|m| m.mtime() * 1_000_000_000 + m.mtime_nsec())?;
    drop(file);
    if let Err(e) = rustix::fs::renameat(&dir, tmp.as_str(), &dir, name) {
        let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        return Err(e.into());
    }
    rustix::fs::fsync(&dir)?;
    Ok(mtime)
}

/// The HTML tree's `index.html`: every HTML page kato wrote there, newest
/// first. Rewritten only when it changes; an `index.html` kato did not
/// write, or one edited since, is reported and left alone. Returns whether
/// the manifest changed.
fn write_index(
    root: &Path,
    manifest: &mut Manifest,
    file_mode: u32,
    summary: &mut Summary,
) -> bool {
    let mut pages: Vec<&Entry> = manifest
        .entries
        .values()
        .filter(|e| e.format == "html")
        .collect();
    pages.sort_by(|a, b| b.created.cmp(&a.created).then(a.output.cmp(&b.output)));
    let rows: Vec<(String, String, String, String)> = pages
        .iter()
        .map(|e| {
            (
                e.title.clone(),
                e.provider.as_str().to_owned(),
                e.created.clone().unwrap_or_default(),
                e.output.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let mut page = Vec::new();
    if crate::render::html::index_page(&mut page, "kato sessions", &rows).is_err() {
        return false;
    }
    let hash = crate::audit::hex_sha256(&page);
    let rel = Path::new(INDEX);
    let on_disk = std::fs::read(root.join(rel)).ok();
    match (&on_disk, &manifest.index_sha256) {
        (Some(old), _) if crate::audit::hex_sha256(old) == hash => {
            summary.index = Some("unchanged".into());
            return false;
        }
        (Some(old), Some(ours)) if crate::audit::hex_sha256(old) != *ours => {
            summary.index = Some("conflict: edited since kato wrote it; left alone".into());
            return false;
        }
        (Some(_), None) => {
            summary.index = Some("conflict: a file kato did not write is there; left alone".into());
            return false;
        }
        _ => {}
    }
    match write_atomic(root, rel, &page, file_mode) {
        Ok(_) => {
            manifest.index_sha256 = Some(hash);
            summary.index = Some("written".into());
            true
        }
        Err(e) => {
            summary.failed += 1;
            summary.index = Some(format!("failed: {e}"));
            false
        }
    }
}

/// The HTML index page of a synced tree.
const INDEX: &str = "index.html";

fn save_manifest(root: &Path, manifest: &Manifest) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(manifest)
        .map_err(|e| Error::io("encoding the manifest", io::Error::from(e)))?;
    write_atomic(root, Path::new(MANIFEST), &bytes, 0o600)
        .map_err(|e| Error::io(format!("writing {}", root.join(MANIFEST).display()), e))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The pass
// ---------------------------------------------------------------------------

/// Sessions under the configured roots that `opts` selects, in a stable
/// order.
///
/// A file the manifest knows (same path, device and inode) keeps the
/// session id recorded there: an unchanged tree is matched without reading
/// any session file (finding a file's session id otherwise reads its first
/// records, up to a MiB).
pub fn select(cfg: &Config, opts: &Options, manifest: &Manifest) -> Vec<SessionFiles> {
    let known: std::collections::HashMap<&Path, (u64, u64, ProviderId, &str)> = manifest
        .entries
        .values()
        .flat_map(|e| {
            e.sources.iter().map(move |s| {
                (
                    s.path.as_path(),
                    (s.dev, s.ino, e.provider, e.session_id.as_str()),
                )
            })
        })
        .collect();
    let (found, _problems) = discover::walk_config(cfg);
    let limits = export::limits(cfg);
    let mut groups: BTreeMap<(ProviderId, String), Vec<discover::Found>> = BTreeMap::new();
    for f in found {
        if !opts.providers.is_empty() && !opts.providers.contains(&f.provider.id()) {
            continue;
        }
        let cached = known.get(f.path.as_path()).and_then(|(dev, ino, p, id)| {
            let m = std::fs::metadata(&f.path).ok()?;
            (m.dev() == *dev && m.ino() == *ino && *p == f.provider.id()).then(|| (*id).to_owned())
        });
        let id = cached.unwrap_or_else(|| discover::identify(&f, limits));
        groups.entry((f.provider.id(), id)).or_default().push(f);
    }
    let grouped = groups
        .into_iter()
        .map(|((provider, session_id), mut files)| {
            // As `discover::group` orders them: main transcripts first.
            files.sort_by(|a, b| {
                (a.ctx.subagent.is_some(), &a.path).cmp(&(b.ctx.subagent.is_some(), &b.path))
            });
            SessionFiles {
                provider,
                session_id,
                files,
            }
        });
    let mut sessions: Vec<SessionFiles> = grouped
        .filter(|s| opts.providers.is_empty() || opts.providers.contains(&s.provider))
        .filter(|s| match opts.since {
            None => true,
            Some(since) => sources_of(s)
                .iter()
                .any(|src| src.mtime_ns.div_euclid(1_000_000_000) >= since),
        })
        .collect();
    sessions.sort_by(|a, b| {
        (a.provider.as_str(), &a.session_id).cmp(&(b.provider.as_str(), &b.session_id))
    });
    sessions
}

/// What a pass needs to render sessions: in this thread, or from a
/// confined parse stage.
pub trait Renderer {
    /// The rendering of `sessions[i]`, asked in increasing `i`.
    fn next(&mut self, session: &SessionFiles) -> Result<Rendered>;
}

/// Render in the calling thread.
pub struct Inline {
    pub limits: Limits,
    pub redactor: Arc<Redactor>,
    pub format: ExportFormat,
    pub markdown: MarkdownOptions,
}

impl Renderer for Inline {
    fn next(&mut self, session: &SessionFiles) -> Result<Rendered> {
        render(
            session,
            self.limits,
            &self.redactor,
            self.format,
            &self.markdown,
        )
    }
}

/// The sessions a plan leaves to render, in order.
pub struct Planned {
    steps: Vec<(SessionFiles, Step)>,
    manifest: Manifest,
    refreshed: Vec<(String, i64)>,
}

impl Planned {
    /// The sessions to read and render, in the order [`commit`] asks.
    pub fn to_render(&self) -> Vec<SessionFiles> {
        self.steps
            .iter()
            .filter(|(_, s)| matches!(s, Step::Render { .. }))
            .map(|(s, _)| s.clone())
            .collect()
    }
}

/// Step 1: decide for every session, reading no session content.
pub fn plan(sessions: Vec<SessionFiles>, opts: &Options, manifest: Manifest) -> Result<Planned> {
    let root = opts.root();
    let mut refreshed = Vec::new();
    let steps = sessions
        .into_iter()
        .map(|s| {
            let step = plan_one(&s, &manifest, &root, opts, &mut refreshed);
            (s, step)
        })
        .collect();
    Ok(Planned {
        steps,
        manifest,
        refreshed,
    })
}

/// Progress on stderr while a pass renders (only on a terminal).
pub struct Progress {
    on: bool,
    total: u64,
    done: u64,
    bytes: u64,
    total_bytes: u64,
    start: Instant,
    last: Option<Instant>,
}

impl Progress {
    pub fn new(show: bool, sessions: &[SessionFiles]) -> Progress {
        let total_bytes = sessions
            .iter()
            .flat_map(|s| s.files.iter())
            .filter_map(|f| std::fs::metadata(&f.path).ok())
            .map(|m| m.len())
            .sum();
        Progress {
            on: show && io::stderr().is_terminal() && !sessions.is_empty(),
            total: sessions.len() as u64,
            done: 0,
            bytes: 0,
            total_bytes,
            start: Instant::now(),
            last: None,
        }
    }

    /// No progress shown (the daemon).
    pub fn off() -> Progress {
        Progress {
            on: false,
            total: 0,
            done: 0,
            bytes: 0,
            total_bytes: 0,
            start: Instant::now(),
            last: None,
        }
    }

    fn step(&mut self, bytes: u64) {
        self.done += 1;
        self.bytes += bytes;
        if !self.on {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < Duration::from_millis(100))
            && self.done < self.total
        {
            return;
        }
        self.last = Some(now);
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-3);
        let rate = self.bytes as f64 / secs;
        let left = self.total_bytes.saturating_sub(self.bytes) as f64;
        let eta = if rate > 0.0 { left / rate } else { 0.0 };
        let eta = eta.min(359_999.0) as u64;
        let mut err = io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2Kkato sync: {}/{} sessions, {:.1} MB/s, ETA {}:{:02}:{:02}",
            self.done,
            self.total,
            rate / 1e6,
            eta / 3600,
            eta / 60 % 60,
            eta % 60
        );
        let _ = err.flush();
    }

    fn end(&mut self) {
        if self.on && self.last.is_some() {
            let _ = write!(io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// Steps 2 and 3: render what the plan left (through `renderer`) and
/// write it; then the manifest. With `dry_run` nothing is written.
// Long because: one session's render-name-check-write sequence, in order.
pub fn commit(
    planned: Planned,
    opts: &Options,
    renderer: &mut dyn Renderer,
    progress: &mut Progress,
) -> Result<Summary> {
    let started = Instant::now();
    let root = opts.root();
    let mut summary = Summary::new(opts);
    let Planned {
        steps,
        mut manifest,
        refreshed,
    } = planned;
    let mut changed = !refreshed.is_empty();
    for (key, mtime) in refreshed {
        if let Some(e) = manifest.entries.get_mut(&key) {
            e.output_mtime_ns = mtime;
        }
    }
    // Outputs claimed by an entry: a new session never takes one.
    let mut claimed: BTreeSet<PathBuf> = manifest
        .entries
        .values()
        .map(|e| e.output.clone())
        .collect();
    for (session, step) in steps {
        summary.sessions += 1;
        let (key, sources, entry, reason) = match step {
            Step::Done(item) => {
                summary.push(item);
                continue;
            }
            Step::Render {
                key,
                sources,
                entry,
                reason,
            } => (key, sources, entry, reason),
        };
        let rendered = match renderer.next(&session) {
            Ok(r) => r,
            Err(e) => {
                progress.step(0);
                let out = entry.as_ref().map(|e| e.output.clone()).unwrap_or_default();
                summary.push(item(&session, &out, Action::Failed, &e.to_string()));
                continue;
            }
        };
        summary.parsed += 1;
        summary.events += rendered.events;
        summary.bytes_read += rendered.cursor;
        progress.step(rendered.cursor);
        let (rel, action) = match &entry {
            // A name once given is kept (unless the format changed).
            Some(e) if e.format == format_name(opts.format) => (e.output.clone(), Action::Update),
            _ => {
                let mut rel = output_name(
                    opts.layout,
                    &rendered.meta,
                    rendered.project.as_deref(),
                    &sources,
                    rendered.extension,
                );
                if claimed.contains(&rel) {
                    let suffix = key.rsplit('-').next().unwrap_or("x");
                    rel = with_suffix(&rel, &suffix[..suffix.len().min(8)]);
                }
                let action = if entry.is_some() {
                    Action::Update
                } else {
                    Action::Write
                };
                (rel, action)
            }
        };
        // A file there that no entry of this session accounts for is not kato's.
        let ours = entry.as_ref().is_some_and(|e| e.output == rel);
        if !ours && std::fs::symlink_metadata(root.join(&rel)).is_ok() {
            summary.push(item(
                &session,
                &rel,
                Action::Conflict,
                "a file kato did not write is there; left alone",
            ));
            continue;
        }
        summary.bytes_written += rendered.bytes.len() as u64;
        if opts.dry_run {
            summary.push(item(&session, &rel, action, &reason));
            claimed.insert(rel);
            continue;
        }
        let mtime = match write_atomic(&root, &rel, &rendered.bytes, opts.file_mode) {
            Ok(m) => m,
            Err(e) => {
                summary.push(item(
                    &session,
                    &rel,
                    Action::Failed,
                    &format!("writing {}: {e}", root.join(&rel).display()),
                ));
                continue;
            }
        };
        claimed.insert(rel.clone());
        manifest.entries.insert(
            key,
            Entry {
                provider: session.provider,
                session_id: session.session_id.clone(),
                sources,
                cursor: rendered.cursor,
                output: rel.clone(),
                format: format_name(opts.format).to_owned(),
                sha256: crate::audit::hex_sha256(&rendered.bytes),
                bytes: rendered.bytes.len() as u64,
                output_mtime_ns: mtime,
                events: rendered.events,
                synced_at: crate::audit::now_rfc3339(),
                title: rendered.meta.title.clone(),
                created: rendered.meta.created.clone(),
            },
        );
        changed = true;
        summary.push(item(&session, &rel, action, &reason));
    }
    progress.end();
    if opts.format == ExportFormat::Html && !opts.dry_run {
        changed |= write_index(&root, &mut manifest, opts.file_mode, &mut summary);
    }
    if changed && !opts.dry_run {
        save_manifest(&root, &manifest)?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

// ---------------------------------------------------------------------------
// `kato sync`
// ---------------------------------------------------------------------------

/// Check a prefix: one plain directory name; `{hostname}` is replaced by
/// the machine's name.
pub fn prefix_component(raw: &str) -> std::result::Result<String, String> {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let p = raw.replace("{hostname}", &host);
    if p.is_empty()
        || p == "."
        || p == ".."
        || p.contains('/')
        || p.contains('\0')
        || p.chars().any(char::is_control)
    {
        return Err(format!(
            "prefix `{raw}` must be one directory name (no `/`), e.g. `{{hostname}}`"
        ));
    }
    Ok(p)
}

/// The target directory as it will be written: absolute, apart from what
/// kato reads or keeps its state in.
pub fn target_dir(cfg: &Config, dir: &Path) -> Result<PathBuf> {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("finding the current directory", e))?
            .join(dir)
    };
    if let Some(p) = crate::policy::overlap::first_overlap(&cfg.protected(), &abs) {
        return Err(Error::Usage(format!(
            "refusing to sync into {}: {}; kato never writes into what it reads or keeps its state in",
            abs.display(),
            p.describe(&abs)
        )));
    }
    Ok(abs)
}

/// Create the tree's root (`dir`, and `prefix` beneath it) when missing.
pub fn prepare(opts: &Options) -> Result<PathBuf> {
    let mode = dir_mode(opts.file_mode);
    let mut b = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut b, mode);
    let root = opts.root();
    let fresh = !root.exists();
    b.recursive(true)
        .create(&root)
        .map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
    if fresh {
        // The umask keeps kato's own directories private; this one is for people.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode));
    }
    std::fs::canonicalize(&root).map_err(|e| Error::io(format!("finding {}", root.display()), e))
}

/// The confined `kato sync`:
///
/// 1. harden the process; create the target directory;
/// 2. confine to reading the provider roots (and the project markers
///    beside them) and the config, and owning the target directory;
/// 3. find the sessions and plan (file metadata only);
/// 4. start the parse stage, confined to reading the provider roots, and
///    narrow `main` to the target directory: it writes what the stage
///    renders.
pub fn run(cfg: &Config, mut opts: Options, progress: bool) -> Result<Summary> {
    use crate::sandbox::{self, profiles, Confiner, StageName};
    let mode = cfg.sandbox_mode;
    let hardened = sandbox::harden_process(mode)?;
    export::report_degraded("startup", &hardened.missing);
    opts.dir = target_dir(cfg, &opts.dir)?;
    let exists = opts.root().is_dir();
    if !opts.dry_run {
        let root = prepare(&opts)?;
        // The root canonical: a link there is the user's own, followed once.
        opts.prefix = None;
        opts.dir = root;
    } else if exists {
        let root = std::fs::canonicalize(opts.root())
            .map_err(|e| Error::io(format!("finding {}", opts.root().display()), e))?;
        opts.prefix = None;
        opts.dir = root;
    }
    let parse_domain = profiles::union(&[
        profiles::providers_reach(cfg),
        profiles::provider(&crate::cli::markers_beside(cfg)),
    ]);
    let mut main_domain = profiles::union(&[
        parse_domain.clone(),
        profiles::startup(cfg.source.as_deref()),
    ]);
    let own = if opts.dry_run {
        profiles::provider(&[opts.root()])
    } else {
        profiles::sync_dir(&opts.root())
    };
    // A dry run into a directory that does not exist reads nothing there.
    let uses_dir = !opts.dry_run || exists;
    if uses_dir {
        main_domain = profiles::union(&[main_domain, own.clone()]);
    }
    let applied = main_domain.apply(mode)?;
    export::report_degraded("sync", &applied.missing);

    let manifest = Manifest::load(&opts.root())?;
    let sessions = select(cfg, &opts, &manifest);
    let planned = plan(sessions, &opts, manifest)?;
    let todo = planned.to_render();
    let mut bar = Progress::new(progress, &todo);

    let redactor = Arc::new(Redactor::new(&cfg.redaction).map_err(|e| Error::Config {
        path: cfg.source.clone().unwrap_or_default(),
        message: e.to_string(),
    })?);
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, MAX_PARSE_STAGES)
        .min(todo.len().max(1));
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<Rendered>)>(workers);
    let todo = Arc::new(todo);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let window = Arc::new((std::sync::Mutex::new(0usize), std::sync::Condvar::new()));
    let ahead = 2 * workers;
    let confiner = Confiner::new(mode);
    let mut stages = Vec::new();
    for _ in 0..workers {
        let (tx, todo, next, window) = (tx.clone(), todo.clone(), next.clone(), window.clone());
        let (redactor, markdown) = (redactor.clone(), opts.markdown.clone());
        let (limits, format) = (export::limits(cfg), opts.format);
        stages.push(
            confiner.spawn(StageName::SyncParse, parse_domain.clone(), move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(s) = todo.get(i) else {
                    return;
                };
                // At most `ahead` renderings wait for the writer.
                let (taken, cv) = &*window;
                let mut t = taken.lock().unwrap_or_else(|e| e.into_inner());
                while i >= *t + ahead {
                    t = cv.wait(t).unwrap_or_else(|e| e.into_inner());
                }
                drop(t);
                let r = render(s, limits, &redactor, format, &markdown);
                if tx.send((i, r)).is_err() {
                    return;
                }
            })?,
        );
    }
    drop(tx);
    // From here on `main` may only touch the target directory.
    if uses_dir {
        let applied = own.apply(mode)?;
        export::report_degraded("sync-write", &applied.missing);
    }
    let mut from_stages = FromStages {
        rx,
        held: BTreeMap::new(),
        next: 0,
        window,
    };
    let summary = commit(planned, &opts, &mut from_stages, &mut bar);
    drop(from_stages);
    for s in stages {
        s.join()?;
    }
    summary
}

/// Parse stages of `kato sync` at most (each renders whole sessions).
const MAX_PARSE_STAGES: usize = 4;

/// Renderings sent by the parse stages, handed on in order.
struct FromStages {
    rx: std::sync::mpsc::Receiver<(usize, Result<Rendered>)>,
    /// Renderings that came before their turn.
    held: BTreeMap<usize, Result<Rendered>>,
    next: usize,
    /// How many renderings were taken: lets the stages go on.
    window: Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
}

impl Renderer for FromStages {
    fn next(&mut self, _session: &SessionFiles) -> Result<Rendered> {
        loop {
            if let Some(r) = self.held.remove(&self.next) {
                self.next += 1;
                let (taken, cv) = &*self.window;
                *taken.lock().unwrap_or_else(|e| e.into_inner()) = self.next;
                cv.notify_all();
                return r;
            }
            match self.rx.recv() {
                Ok((i, r)) => {
                    self.held.insert(i, r);
                }
                Err(_) => {
                    return Err(Error::io(
                        "reading the session",
                        io::Error::other("the parse stage ended without finishing"),
                    ))
                }
            }
        }
    }
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

/// `kato sync`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The directory to keep the exports in (created when missing).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Only this provider's sessions. Repeatable.
    #[arg(long = "provider", value_name = "P")]
    pub providers: Vec<String>,
    /// Only sessions whose files changed on or after DATE (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: ExportFormat,
    /// How files are laid out in DIR.
    #[arg(long, value_enum, default_value = "by-project")]
    pub layout: Layout,
    /// Put the tree in DIR/NAME (one directory name; `{hostname}` is this
    /// machine's name): several machines can share DIR.
    #[arg(long, value_name = "NAME")]
    pub prefix: Option<String>,
    /// Include assistant thinking.
    #[arg(long)]
    pub thinking: bool,
    /// Include tool calls and their results.
    #[arg(long)]
    pub tool_calls: bool,
    /// Decide and report, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was (or would be) written, updated and left alone, and
    /// why, as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also search DIR for PROVIDER's sessions (default provider: aider).
    /// Repeatable.
    #[arg(long = "root", value_name = "[PROVIDER=]DIR")]
    pub roots: Vec<String>,
}

/// `kato sync`: exit 0 when every session is synced, unchanged or left
/// alone (reported on stderr), 1 when one could not be read or written.
pub fn command(cfg: &Config, args: SyncArgs) -> Result<i32> {
    let providers = args
        .providers
        .iter()
        .map(|n| {
            cfg.registry.by_name(n).map(|p| p.id()).ok_or_else(|| {
                Error::Usage(format!(
                    "--provider {n}: unknown provider; known providers: {}",
                    cfg.registry.names()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let since = args
        .since
        .as_deref()
        .map(|d| {
            parse_date(d).ok_or_else(|| {
                Error::Usage(format!("--since {d}: expected a date like 2026-01-31"))
            })
        })
        .transpose()?;
    let prefix = args
        .prefix
        .as_deref()
        .map(prefix_component)
        .transpose()
        .map_err(|e| Error::Usage(format!("--prefix: {e}")))?;
    let mut markdown = cfg.markdown.clone();
    markdown.thinking |= args.thinking;
    markdown.tool_calls |= args.tool_calls;
    let opts = Options {
        dir: args.output,
        prefix,
        layout: args.layout,
        format: args.format,
        providers,
        since,
        markdown,
        file_mode: cfg.file_mode,
        dry_run: args.dry_run,
    };
    let summary = run(cfg, opts, !args.json)?;
    if args.json {
        let mut out = crate::terminal::stdout();
        crate::terminal::json(&mut out, &summary).map_err(|e| Error::io("writing to stdout", e))?;
    } else {
        for i in summary
            .items
            .iter()
            .filter(|i| matches!(i.action, Action::Conflict | Action::Failed))
        {
            crate::terminal::eprintln(&format!(
                "kato: {} {} {}: {}",
                i.provider.as_str(),
                i.session_id,
                i.output,
                i.reason
            ));
        }
        let verb = if summary.dry_run {
            "would write"
        } else {
            "wrote"
        };
        crate::terminal::println(&format!(
            "{}: {verb} {} new, {} updated; {} unchanged, {} left alone, {} failed ({} sessions, {:.1}s)",
            summary.dir.display(),
            summary.written,
            summary.updated,
            summary.unchanged,
            summary.conflicts,
            summary.failed,
            summary.sessions,
            summary.seconds
        ))
        .map_err(|e| Error::io("writing to stdout", e))?;
    }
    Ok(if summary.failed > 0 {
        crate::error::exit::FAILURE
    } else {
        crate::error::exit::OK
    })
}
