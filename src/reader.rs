//! Incremental reading of session files (the read half of watch+parse).
//!
//! [`read_increment`] is the one function both `kato export` and the daemon
//! use: given a [`Cursor`] it reads only bytes after the cursor, feeds
//! complete lines to the provider's parser, holds back a trailing partial
//! line, detects truncation and replacement, and returns the next cursor.
//! Poisoned input never stops a read: each bad line becomes a [`Diagnostic`]
//! with its byte offset and the lines around it survive.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Hidden};
use crate::provider::{FileCtx, Malformed, Provider, RecordParser, SourceKind, Unsupported};

/// Default cap on one line (and on one whole document): 64 MiB.
pub const DEFAULT_LINE_CAP: usize = 64 << 20;

/// Size of one read from the file.
const CHUNK: usize = 256 << 10;

/// Size of the first read: the line buffer starts this small, so reading
/// many small files does not zero a large buffer for each.
const FIRST_READ: usize = 16 << 10;

/// A read to a file's end this long is read ahead ([`feed_lines_ahead`]).
const READ_AHEAD_MIN: u64 = 4 << 20;

/// Line ends a read-ahead buffer indexes at most, so that the index stays
/// small (a buffer of blank lines is all line ends); the parse thread finds
/// any others itself.
const AHEAD_ENDS: usize = 16 << 10;

/// Buffers of lines the read-ahead thread may fill before the parser
/// takes them.
const READ_AHEAD_DEPTH: usize = 1;

/// Limits applied while reading, and what the reader's consumer throws away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line (or document) accepted, in bytes; longer ones are skipped.
    pub line_cap: usize,
    /// Texts the consumer empties: the parser is told
    /// ([`RecordParser::hide`]) and may leave them undecoded.
    pub hidden: Hidden,
    /// The consumer writes JSON: the parser is told
    /// ([`RecordParser::keep_json`]) and may keep texts as JSON literals.
    pub json_texts: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            line_cap: DEFAULT_LINE_CAP,
            hidden: Hidden::default(),
            json_texts: false,
        }
    }
}

/// What to do with bytes after the last `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The writer may still be writing: leave them for the next read.
    Hold,
    /// The file is complete (one-shot export): parse them as a last line;
    /// if that fails they are reported as a truncated line.
    Final,
}

/// Identity of a file: replaced files get a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
}

impl FileIdentity {
    pub fn of(meta: &std::fs::Metadata) -> FileIdentity {
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Where reading of one file stopped, plus the parser's context there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Byte offset just after the last complete line consumed.
    pub offset: u64,
    /// Identity of the file the offset belongs to.
    #[serde(default)]
    pub identity: Option<FileIdentity>,
    /// Provider parser context at `offset` ([`RecordParser::state`]).
    #[serde(default)]
    pub parser: ParserState,
}

/// A parser's context ([`RecordParser::state`]) as compact JSON text.
///
/// The daemon keeps a cursor for every file it knows, twice (the parse
/// stage's and the orchestrator's): as a [`serde_json::Value`] a small
/// object costs a map node of some 600 bytes and an allocation per key
/// and string, as text about its length. The text is shared: a clone of
/// a cursor (the one the parse stage keeps of what it sends) costs no
/// copy. It reads and writes as the JSON value itself, so the state files
/// are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParserState(Option<std::sync::Arc<str>>);

impl ParserState {
    /// No context (JSON `null`): the parser starts fresh.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The context as a JSON value, to [`RecordParser::restore`].
    pub fn value(&self) -> serde_json::Value {
        self.0
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Give `parser` this context back ([`RecordParser::restore`]):
    /// nothing to do when there is none; an error when the text is not a
    /// value kato reads (a state file edited or damaged: a lone
    /// surrogate, a number out of range) or the parser refuses it.
    pub fn restore_into<P: RecordParser + ?Sized>(&self, parser: &mut P) -> Result<(), Malformed> {
        let Some(text) = self.0.as_deref() else {
            return Ok(());
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Malformed::WrongShape(format!("parser state: {e}")))?;
        parser.restore(&value)
    }

    /// The context as JSON text (`null` when there is none).
    pub fn as_json(&self) -> &str {
        self.0.as_deref().unwrap_or("null")
    }
}

impl From<serde_json::Value> for ParserState {
    fn from(v: serde_json::Value) -> ParserState {
        if v.is_null() {
            ParserState(None)
        } else {
            ParserState(Some(std::sync::Arc::from(v.to_string())))
        }
    }
}

impl Serialize for ParserState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ParserState {
    /// Kept as read (a daemon start reads one for every file it knows):
    /// the text is not built into a value and printed again.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ParserState, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(match raw.get() {
            "null" => ParserState(None),
            text => ParserState(Some(std::sync::Arc::from(text))),
        })
    }
}

/// Why a read started over from the beginning of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Reset {
    /// The file is shorter than the cursor.
    Truncated { cursor: u64, len: u64 },
    /// Another file now sits at the path (new inode or device).
    Replaced,
    /// The saved parser state could not be restored.
    BadState,
}

/// The kind of a skipped line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagKind {
    NotJson,
    InvalidUtf8,
    WrongShape,
    TooLong,
    Truncated,
}

/// One skipped record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Byte offset of the start of the line.
    pub offset: u64,
    /// Length of the skipped line in bytes (without `\n`).
    pub len: u64,
    pub kind: DiagKind,
    pub detail: String,
}

impl Diagnostic {
    pub(crate) fn from_malformed(offset: u64, len: usize, m: Malformed) -> Diagnostic {
        let (kind, detail) = match m {
            Malformed::NotJson(d) => (DiagKind::NotJson, d),
            Malformed::InvalidUtf8 => (DiagKind::InvalidUtf8, String::from("invalid UTF-8")),
            Malformed::WrongShape(d) => (DiagKind::WrongShape, d),
        };
        Diagnostic {
            offset,
            len: len as u64,
            kind,
            detail,
        }
    }
}

/// Result of one incremental read.
#[derive(Debug, Clone)]
pub struct Increment {
    pub cursor: Cursor,
    pub reset: Option<Reset>,
    pub diagnostics: Vec<Diagnostic>,
    /// Bytes consumed by this read.
    pub bytes: u64,
    /// Events delivered by this read.
    pub events: u64,
}

/// Read what is new in `file` since `cursor` and deliver its events.
///
/// The file handle is only read and seeked. The returned cursor is where
/// the next read must start; bytes of a partial last line are not consumed
/// under [`Tail::Hold`].
pub fn read_increment(
    file: &mut File,
    provider: &dyn Provider,
    ctx: &FileCtx,
    cursor: &Cursor,
    limits: Limits,
    tail: Tail,
    out: &mut dyn FnMut(Event),
) -> io::Result<Increment> {
    let meta = file.metadata()?;
    let identity = FileIdentity::of(&meta);
    let len = meta.len();

    let mut parser = provider.parser(ctx);
    let (start, reset) = resume_point(cursor, identity, len, parser.as_mut());
    if reset.is_some() {
        parser = provider.parser(ctx);
    }
    parser.hide(limits.hidden);
    if limits.json_texts {
        parser.keep_json();
    }

    let mut events = 0u64;
    // Commands are derived here, in the parse stage, from human messages
    // only (see `commands`), so every consumer sees the same command events.
    // A provider whose human text cannot be told apart reliably carries none.
    let carries_commands = provider.carries_commands();
    let mut counting = with_commands(carries_commands, &mut events, out);
    let mut diagnostics = Vec::new();
    let end = match provider.file_source_kind(ctx) {
        SourceKind::Jsonl | SourceKind::Lines => {
            file.seek(SeekFrom::Start(start))?;
            // A long read to the end (an export) is read ahead; the
            // daemon's reads (held tails, small increments) are not.
            let ahead = tail == Tail::Final && len.saturating_sub(start) >= READ_AHEAD_MIN;
            let (p, d) = (parser.as_mut(), &mut diagnostics);
            if ahead {
                feed_lines_ahead(file, start, tail, limits, p, &mut counting, d)?
            } else {
                feed_lines(file, start, tail, limits, p, &mut counting, d)?
            }
        }
        SourceKind::Document => {
            file.seek(SeekFrom::Start(0))?;
            feed_document(
                file,
                len,
                limits,
                parser.as_mut(),
                &mut counting,
                &mut diagnostics,
            )?
        }
        kind @ (SourceKind::DirectoryStore | SourceKind::Database) => {
            return Err(Unsupported {
                provider: provider.id(),
                kind,
            }
            .into());
        }
    };
    if tail == Tail::Final {
        parser.flush(&mut counting);
    }
    drop(counting);
    Ok(Increment {
        cursor: Cursor {
            offset: end,
            identity: Some(identity),
            parser: parser.state().into(),
        },
        reset,
        diagnostics,
        bytes: end.saturating_sub(start),
        events,
    })
}

/// Where a read starts, and why the file is read from the start if it is:
/// another file at the path, a truncation, or a parser state that cannot
/// be restored (into `parser`, which is left as it was otherwise).
fn resume_point(
    cursor: &Cursor,
    identity: FileIdentity,
    len: u64,
    parser: &mut dyn RecordParser,
) -> (u64, Option<Reset>) {
    if cursor.identity.is_some_and(|id| id != identity) {
        (0, Some(Reset::Replaced))
    } else if len < cursor.offset {
        (
            0,
            Some(Reset::Truncated {
                cursor: cursor.offset,
                len,
            }),
        )
    } else if cursor.parser.restore_into(parser).is_err() {
        (0, Some(Reset::BadState))
    } else {
        (cursor.offset, None)
    }
}

/// Read a whole file once (`kato export`, tests): [`read_increment`] from
/// an empty cursor with [`Tail::Final`].
pub fn read_path(
    path: &std::path::Path,
    provider: &dyn Provider,
    limits: Limits,
    out: &mut dyn FnMut(Event),
) -> io::Result<Increment> {
    let ctx = crate::provider::ctx_for_path(provider, path);
    if matches!(
        provider.file_source_kind(&ctx),
        SourceKind::Database | SourceKind::DirectoryStore
    ) {
        let (db, session) = crate::database::split_session(path);
        return crate::database::read(
            &db,
            session.as_deref(),
            provider,
            &ctx,
            limits,
            Tail::Final,
            out,
        );
    }
    let mut file = File::open(path)?;
    read_increment(
        &mut file,
        provider,
        &ctx,
        &Cursor::default(),
        limits,
        Tail::Final,
        out,
    )
}

/// Feed complete lines of `input` (positioned at byte `start`) to `parser`.
/// Returns the offset just after the last consumed byte.
pub fn feed_lines(
    input: &mut dyn Read,
    start: u64,
    tail: Tail,
    limits: Limits,
    parser: &mut dyn RecordParser,
    out: &mut dyn FnMut(Event),
    diagnostics: &mut Vec<Diagnostic>,
) -> io::Result<u64> {
    let rest = read_lines(input, start, limits, &mut |mut lines| {
        parse_lines(&lines, limits, parser, out, diagnostics);
        // What follows the last line end goes to the front.
        lines.buf.copy_within(lines.end..lines.len, 0);
        Some(lines.buf)
    })?;
    Ok(finish(rest, tail, limits, parser, out, diagnostics))
}

/// [`feed_lines`], with `input` read on a thread of its own while this
/// one parses what it read before: for long reads, where the read itself
/// (the kernel's copy of every byte) would otherwise be a tenth of the
/// parse stage's time. The thread is created by this one and so holds
/// the same confinement (Landlock domain, seccomp filter, no privileges);
/// it only reads `input` and hands over buffers of whole lines.
pub fn feed_lines_ahead(
    input: &mut (dyn Read + Send),
    start: u64,
    tail: Tail,
    limits: Limits,
    parser: &mut dyn RecordParser,
    out: &mut dyn FnMut(Event),
    diagnostics: &mut Vec<Diagnostic>,
) -> io::Result<u64> {
    let rest = std::thread::scope(|scope| {
        // Made in this closure, so that a panic while parsing drops them
        // and the reader, finding nobody to hand its lines to, stops.
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Ahead>(READ_AHEAD_DEPTH);
        let (spare_tx, spare_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_DEPTH + 2);
        let src = &mut *input;
        let reader = std::thread::Builder::new()
            .name("kato:read-ahead".into())
            .spawn_scoped(scope, move || {
                read_lines(src, start, limits, &mut |lines| {
                    // The unfinished line goes to the front of the next
                    // buffer: one handed back, or a new one.
                    let carried = lines.len - lines.end;
                    let mut next = spare_rx.try_recv().unwrap_or_default();
                    let want = (carried + CHUNK).max(2 * CHUNK);
                    if next.len() < want {
                        next.resize(want, 0);
                    }
                    next[..carried].copy_from_slice(&lines.buf[lines.end..lines.len]);
                    full_tx.send(Ahead::of(lines)).ok()?;
                    Some(next)
                })
            });
        // No thread to be had (a task limit): nothing is read yet, so the
        // file is read in place.
        let Ok(reader) = reader else {
            return Ok(None);
        };
        for ahead in full_rx.iter() {
            ahead.parse(limits, parser, out, diagnostics);
            let buf = ahead.into_buf();
            // A buffer grown for a long line is not kept.
            if buf.capacity() <= 2 * CHUNK {
                let _ = spare_tx.try_send(buf);
            }
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the read-ahead thread failed")))
            .map(Some)
    })?;
    match rest {
        Some(rest) => Ok(finish(rest, tail, limits, parser, out, diagnostics)),
        None => feed_lines(input, start, tail, limits, parser, out, diagnostics),
    }
}

/// Complete lines just read: `buf[start..end]`, each ended by `\n`, the
/// first at file offset `base + start`. `buf[end..len]` is the beginning of
/// a line not read to its end yet.
struct Lines {
    base: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    len: usize,
}

/// Complete lines read ahead, as the read-ahead thread hands them over:
/// where each ends, found there, and their bytes checked as UTF-8 there
/// when all of them are, so that the parse thread (the slower stage) does
/// neither.
struct Ahead {
    /// File offset of the body's first byte.
    base: u64,
    /// Where the first line starts in the body.
    start: usize,
    /// Index in the body of each line's `\n`: all of them, or the first
    /// [`AHEAD_ENDS`] (the parse thread finds the others).
    ends: Vec<usize>,
    body: Body,
}

/// The bytes of [`Ahead`]'s lines, up to the last line end.
enum Body {
    /// All of them are UTF-8.
    Text(String),
    /// Some are not, or the first line starts after bytes that were not
    /// checked (the end of an over-long line): each line is checked alone.
    Bytes(Vec<u8>),
}

impl Ahead {
    fn of(lines: Lines) -> Ahead {
        let Lines {
            base,
            mut buf,
            start,
            end,
            ..
        } = lines;
        let ends = memchr::memchr_iter(b'\n', &buf[start..end])
            .take(AHEAD_ENDS)
            .map(|i| start + i)
            .collect();
        // What follows was copied to the next buffer.
        buf.truncate(end);
        let body = if start == 0 {
            String::from_utf8(buf).map_or_else(|e| Body::Bytes(e.into_bytes()), Body::Text)
        } else {
            Body::Bytes(buf)
        };
        Ahead {
            base,
            start,
            ends,
            body,
        }
    }

    /// [`parse_lines`] for lines read ahead.
    fn parse(
        &self,
        limits: Limits,
        parser: &mut dyn RecordParser,
        out: &mut dyn FnMut(Event),
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let (buf, text) = match &self.body {
            Body::Text(text) => (text.as_bytes(), Some(text.as_str())),
            Body::Bytes(bytes) => (&bytes[..], None),
        };
        // Past a full index, the line ends not indexed.
        let rest_at = match self.ends.last() {
            Some(last) if self.ends.len() == AHEAD_ENDS => last + 1,
            _ => buf.len(),
        };
        let rest = memchr::memchr_iter(b'\n', &buf[rest_at..]).map(|i| rest_at + i);
        let run = LineRun {
            buf,
            text,
            base: self.base,
            start: self.start,
        };
        run.parse(
            self.ends.iter().copied().chain(rest),
            limits,
            parser,
            out,
            diagnostics,
        );
    }

    /// The buffer, to read into again.
    fn into_buf(self) -> Vec<u8> {
        match self.body {
            Body::Text(text) => text.into_bytes(),
            Body::Bytes(bytes) => bytes,
        }
    }
}

/// Where [`read_lines`] stopped: `buf[..len]` are the bytes after the last
/// line end, at file offset `base`.
struct Rest {
    base: u64,
    buf: Vec<u8>,
    len: usize,
    /// An over-long line being skipped: (offset of its start, bytes seen).
    skipping: Option<(u64, u64)>,
    /// Lines longer than the cap that were skipped unbuffered.
    too_long: Vec<Diagnostic>,
}

/// Read `input` (positioned at byte `start`) to its end and hand each
/// read's complete lines to `lines`, which returns the buffer to read on
/// into, holding at its front what followed the last line end (`None`
/// stops reading).
// Long because: the read loop and its over-long-line state stay in one frame.
fn read_lines(
    input: &mut dyn Read,
    start: u64,
    limits: Limits,
    lines: &mut dyn FnMut(Lines) -> Option<Vec<u8>>,
) -> io::Result<Rest> {
    // Read straight into the line buffer, after what the last read left
    // of an unfinished line: each byte is copied once, by the kernel. The
    // buffer is zeroed once as it grows: from a size small files need,
    // doubling while reads fill it up to `2 * CHUNK`, past that only for a
    // line longer than it, and never past the line cap and a chunk. `len`
    // of its bytes hold data.
    let mut buf: Vec<u8> = vec![0; FIRST_READ];
    let mut len = 0;
    let mut filled = false;
    // Offset of buf[0] in the file.
    let mut base = start;
    let mut skipping: Option<(u64, u64)> = None;
    let mut too_long = Vec::new();
    loop {
        let spare = buf.len() - len;
        if spare == 0
            || (filled && buf.len() < 2 * CHUNK)
            || (buf.len() >= 2 * CHUNK && spare < CHUNK)
        {
            // Never past what the longest line kept needs: growing copies
            // (the allocator cannot always extend in place), so a line at
            // the cap costs the cap twice at that moment, not three times.
            let grown = (2 * buf.len()).min(limits.line_cap + CHUNK);
            buf.resize(grown.max(buf.len()), 0);
        }
        let n = match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled = len + n == buf.len();
        // What was there before holds no line end: searched once only.
        let mut from = len;
        len += n;
        let mut pos = 0;
        if let Some((line_start, seen)) = skipping {
            // `buf` held nothing before this read.
            match memchr::memchr(b'\n', &buf[..len]) {
                Some(i) => {
                    let long = seen + i as u64;
                    too_long.push(too_long_line(line_start, long, limits));
                    // buf[0] is the line's byte `seen`; the next line
                    // starts after its end.
                    base = line_start + seen;
                    (pos, from) = (i + 1, i + 1);
                    skipping = None;
                }
                None => {
                    skipping = Some((line_start, seen + n as u64));
                    len = 0;
                    continue;
                }
            }
        }
        match memchr::memrchr(b'\n', &buf[from..len]) {
            Some(i) => {
                let end = from + i + 1;
                let read = Lines {
                    base,
                    buf,
                    start: pos,
                    end,
                    len,
                };
                let Some(next) = lines(read) else {
                    return Ok(Rest {
                        base: base + end as u64,
                        buf: Vec::new(),
                        len: 0,
                        skipping: None,
                        too_long,
                    });
                };
                buf = next;
                len -= end;
                base += end as u64;
            }
            None => {
                buf.copy_within(pos..len, 0);
                len -= pos;
                base += pos as u64;
            }
        }
        if len > limits.line_cap {
            skipping = Some((base, len as u64));
            len = 0;
            buf.truncate(2 * CHUNK);
            buf.shrink_to_fit();
        }
    }
    Ok(Rest {
        base,
        buf,
        len,
        skipping,
        too_long,
    })
}

/// Parse each line of `lines` (or report it over-long).
fn parse_lines(
    lines: &Lines,
    limits: Limits,
    parser: &mut dyn RecordParser,
    out: &mut dyn FnMut(Event),
    diagnostics: &mut Vec<Diagnostic>,
) {
    let (buf, start) = (&lines.buf[..lines.end], lines.start);
    let ends = memchr::memchr_iter(b'\n', &buf[start..]).map(|i| start + i);
    let run = LineRun {
        buf,
        text: None,
        base: lines.base,
        start,
    };
    run.parse(ends, limits, parser, out, diagnostics);
}

/// Whole lines in a buffer: the first starts at `start`, at file offset
/// `base + start`; `text` is `buf` as text when all of it is UTF-8 (its
/// lines then go to the parser as text).
struct LineRun<'a> {
    buf: &'a [u8],
    text: Option<&'a str>,
    base: u64,
    start: usize,
}

impl LineRun<'_> {
    /// Parse each line, ended at the `\n` at each of `ends` in turn (or
    /// report it over-long).
    fn parse(
        &self,
        ends: impl Iterator<Item = usize>,
        limits: Limits,
        parser: &mut dyn RecordParser,
        out: &mut dyn FnMut(Event),
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let mut pos = self.start;
        for end in ends {
            let offset = self.base + pos as u64;
            if end - pos > limits.line_cap {
                diagnostics.push(too_long_line(offset, (end - pos) as u64, limits));
            } else {
                // A line starts after a `\n` and ends before one: always a
                // slice of the text (`get` only to hold no panic path).
                let line = match self.text.and_then(|t| t.get(pos..end)) {
                    Some(text) => Line::Text(text),
                    None => Line::Bytes(&self.buf[pos..end]),
                };
                parse_line(offset, line, parser, out, diagnostics);
            }
            pos = end + 1;
        }
    }
}

/// The end of a read: what followed the last line end, by `tail`.
/// Returns the offset just after the last consumed byte.
fn finish(
    rest: Rest,
    tail: Tail,
    limits: Limits,
    parser: &mut dyn RecordParser,
    out: &mut dyn FnMut(Event),
    diagnostics: &mut Vec<Diagnostic>,
) -> u64 {
    // Lines skipped unbuffered take their place among the others.
    if !rest.too_long.is_empty() {
        diagnostics.extend(rest.too_long);
        diagnostics.sort_by_key(|d| d.offset);
    }
    let base = rest.base;
    let buf = &rest.buf[..rest.len];
    if let Some((line_start, seen)) = rest.skipping {
        // An over-long line with no end yet: under Hold leave it for later
        // (it is rescanned without being buffered); under Final report it.
        return match tail {
            Tail::Hold => line_start,
            Tail::Final => {
                diagnostics.push(too_long_line(line_start, seen, limits));
                line_start + seen
            }
        };
    }
    if buf.is_empty() {
        return base;
    }
    match tail {
        Tail::Hold => base,
        Tail::Final => {
            let line = trim_cr(buf);
            if !line.iter().all(u8::is_ascii_whitespace) {
                let mut local = Vec::new();
                parse_line(base, Line::Bytes(buf), parser, out, &mut local);
                for mut d in local {
                    d.kind = DiagKind::Truncated;
                    d.detail = format!("incomplete last line: {}", d.detail);
                    diagnostics.push(d);
                }
            }
            base + buf.len() as u64
        }
    }
}

fn too_long_line(offset: u64, len: u64, limits: Limits) -> Diagnostic {
    Diagnostic {
        offset,
        len,
        kind: DiagKind::TooLong,
        detail: format!(
            "line of {len} bytes exceeds the cap of {} bytes",
            limits.line_cap
        ),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One line, without its `\n`.
enum Line<'a> {
    /// Known to be UTF-8.
    Text(&'a str),
    /// Not checked yet.
    Bytes(&'a [u8]),
}

fn parse_line(
    offset: u64,
    line: Line<'_>,
    parser: &mut dyn RecordParser,
    out: &mut dyn FnMut(Event),
    diagnostics: &mut Vec<Diagnostic>,
) {
    let bytes = trim_cr(match line {
        Line::Text(text) => text.as_bytes(),
        Line::Bytes(bytes) => bytes,
    });
    if !parser.wants_blank_lines() && bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let r = match line {
        // Without the `\r` `trim_cr` took off: an ASCII byte, so the end
        // of a character.
        Line::Text(text) => match text.get(..bytes.len()) {
            Some(text) => parser.record_text(offset, text, out),
            None => parser.record(offset, bytes, out),
        },
        Line::Bytes(_) => parser.record(offset, bytes, out),
    };
    if let Err(m) = r {
        diagnostics.push(Diagnostic::from_malformed(offset, bytes.len(), m));
    }
}

fn feed_document(
    input: &mut dyn Read,
    len: u64,
    limits: Limits,
    parser: &mut dyn RecordParser,
    out: &mut dyn FnMut(Event),
    diagnostics: &mut Vec<Diagnostic>,
) -> io::Result<u64> {
    if len > limits.line_cap as u64 {
        diagnostics.push(Diagnostic {
            offset: 0,
            len,
            kind: DiagKind::TooLong,
            detail: format!(
                "document of {len} bytes exceeds the cap of {} bytes",
                limits.line_cap
            ),
        });
        return Ok(len);
    }
    let mut bytes = Vec::with_capacity(len as usize);
    input
        .take(limits.line_cap as u64 + 1)
        .read_to_end(&mut bytes)?;
    if let Err(m) = parser.record(0, &bytes, out) {
        diagnostics.push(Diagnostic::from_malformed(0, bytes.len(), m));
    }
    Ok(bytes.len() as u64)
}

/// `out`, with the command events of each event delivered right after it
/// (when the provider carries commands) and every event counted in
/// `events`.
pub(crate) fn with_commands<'o>(
    carries_commands: bool,
    events: &'o mut u64,
    out: &'o mut dyn FnMut(Event),
) -> impl FnMut(Event) + 'o {
    move |ev: Event| {
        let commands = if carries_commands {
            crate::commands::command_events(&ev)
        } else {
            Vec::new()
        };
        *events += 1 + commands.len() as u64;
        out(ev);
        commands.into_iter().for_each(&mut *out);
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::raw_copy;
    use crate::event::{Payload, ProviderId, Source};

    /// A parser that turns each JSON line into a raw event; enough to test
    /// the line machinery independently of any provider.
    struct Echo;
    impl RecordParser for Echo {
        fn record(
            &mut self,
            offset: u64,
            bytes: &[u8],
            out: &mut dyn FnMut(Event),
        ) -> Result<(), Malformed> {
            let v: &serde_json::value::RawValue =
                serde_json::from_slice(bytes).map_err(|e| Malformed::from_json_error(bytes, &e))?;
            out(Event {
                provider: ProviderId::Claude,
                session_id: "s".into(),
                event_id: offset.to_string(),
                timestamp: None,
                turn_id: None,
                model: None,
                subagent: None,
                copied: false,
                source: Source {
                    record: "x".into(),
                    offset,
                    file: None,
                },
                payload: Payload::ProviderRaw {
                    record: raw_copy(v),
                },
            });
            Ok(())
        }
        fn state(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
        fn restore(&mut self, _: &serde_json::Value) -> Result<(), Malformed> {
            Ok(())
        }
    }

    /// [`Echo`] as the providers that read text are built: `record` checks
    /// the bytes and calls `record_text`, which a read ahead calls itself
    /// for lines it has checked. Each event holds the line as read.
    struct EchoText;
    impl RecordParser for EchoText {
        crate::provider::record_as_text!();
        fn record_text(
            &mut self,
            offset: u64,
            text: &str,
            out: &mut dyn FnMut(Event),
        ) -> Result<(), Malformed> {
            let v: &serde_json::value::RawValue = serde_json::from_str(text)
                .map_err(|e| Malformed::from_json_error(text.as_bytes(), &e))?;
            Echo.record(offset, v.get().as_bytes(), out)
        }
        fn state(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
        fn restore(&mut self, _: &serde_json::Value) -> Result<(), Malformed> {
            Ok(())
        }
    }

    /// The line feeds, with and without reading ahead.
    type Feed = fn(
        &mut (dyn Read + Send),
        u64,
        Tail,
        Limits,
        &mut dyn RecordParser,
        &mut dyn FnMut(Event),
        &mut Vec<Diagnostic>,
    ) -> io::Result<u64>;

    const FEEDS: [(&str, Feed); 2] = [
        ("in place", |i, s, t, l, p, o, d| {
            feed_lines(i, s, t, l, p, o, d)
        }),
        ("ahead", feed_lines_ahead),
    ];

    /// `src` fed by `feed`: the offsets of the events, the diagnostics and
    /// the end.
    fn feed_with(
        feed: Feed,
        src: &mut (dyn Read + Send),
        tail: Tail,
        cap: usize,
    ) -> (Vec<u64>, Vec<Diagnostic>, u64) {
        let mut ids = Vec::new();
        let mut diags = Vec::new();
        let limits = Limits {
            line_cap: cap,
            ..Limits::default()
        };
        let mut out = |e: Event| ids.push(e.source.offset);
        let end = feed(src, 0, tail, limits, &mut Echo, &mut out, &mut diags).unwrap();
        (ids, diags, end)
    }

    /// Each feed of `input` ([`feed_with`]); every feed must give the same.
    fn run(input: &[u8], tail: Tail, cap: usize) -> (Vec<u64>, Vec<Diagnostic>, u64) {
        let mut each = FEEDS
            .iter()
            .map(|(name, feed)| (*name, feed_with(*feed, &mut &input[..], tail, cap)));
        let (_, first) = each.next().unwrap();
        for (name, other) in each {
            assert_eq!(other, first, "{name}");
        }
        first
    }

    #[test]
    fn holds_back_partial_line() {
        let (ids, diags, end) = run(b"{\"a\":1}\n{\"b\":", Tail::Hold, 1024);
        assert_eq!(ids, [0]);
        assert!(diags.is_empty());
        assert_eq!(end, 8);
    }

    #[test]
    fn final_tail_parses_or_reports_truncated() {
        let (ids, _, end) = run(b"{\"a\":1}\n{\"b\":2}", Tail::Final, 1024);
        assert_eq!(ids, [0, 8]);
        assert_eq!(end, 15);
        let (ids, diags, _) = run(b"{\"a\":1}\n{\"b\":", Tail::Final, 1024);
        assert_eq!(ids, [0]);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].kind, DiagKind::Truncated);
        assert_eq!(diags[0].offset, 8);
    }

    #[test]
    fn poisoned_lines_are_skipped_with_offsets() {
        let input = b"{\"a\":1}\nnot json\n\xff\xfe\"x\"\n\n{\"b\":2}\r\n";
        let (ids, diags, end) = run(input, Tail::Hold, 1024);
        assert_eq!(ids, [0, 24]);
        let kinds: Vec<_> = diags.iter().map(|d| (d.kind, d.offset)).collect();
        assert_eq!(kinds, [(DiagKind::NotJson, 8), (DiagKind::InvalidUtf8, 17)]);
        assert_eq!(end, input.len() as u64);
    }

    #[test]
    fn over_long_lines_are_skipped_without_buffering() {
        let mut input = b"{\"a\":1}\n".to_vec();
        let long = format!("{{\"x\":\"{}\"}}\n", "y".repeat(3 * CHUNK));
        input.extend_from_slice(long.as_bytes());
        input.extend_from_slice(b"{\"b\":2}\n");
        let (ids, diags, end) = run(&input, Tail::Hold, 4096);
        assert_eq!(ids, [0, 8 + long.len() as u64]);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].kind, DiagKind::TooLong);
        assert_eq!(diags[0].offset, 8);
        assert_eq!(diags[0].len, long.len() as u64 - 1);
        assert_eq!(end, input.len() as u64);
    }

    #[test]
    fn lines_read_ahead_as_text_match_lines_read_in_place() {
        // Buffers whose lines all are UTF-8 (checked as one piece on the
        // read-ahead thread) and buffers holding a line that is not (each
        // line checked alone); characters of two to four bytes cut by the
        // reads; `\r\n` and blank lines; lines over the cap, after which
        // a buffer starts past bytes nobody checked.
        let cap = CHUNK;
        let mut input = Vec::new();
        // Lines over the cap, lines not UTF-8, blank lines.
        let (mut long, mut bad, mut blank) = (0, 0, 0);
        for i in 0..400 {
            let text = "é€😀".repeat(i % 7 * 300 + 1);
            let line = match i % 23 {
                0 => format!("{{\"{i}\":\"{}\"}}\r", "x".repeat(CHUNK + 10)),
                5 => format!("{{\"{i}\":\"{text}\"}}\r"),
                9 => "   ".to_owned(),
                13 => String::new(),
                _ => format!("{{\"{i}\":\"{text}\"}}"),
            };
            let at = input.len();
            input.extend_from_slice(line.as_bytes());
            if i % 61 == 7 {
                input.extend_from_slice(b"\xff\xfe");
            }
            if i % 89 == 3 {
                // A character cut short.
                input.extend_from_slice(&"😀".as_bytes()[..2]);
            }
            let line = &input[at..];
            if line.len() > cap {
                long += 1;
            } else if std::str::from_utf8(line).is_err() {
                bad += 1;
            } else if line.iter().all(u8::is_ascii_whitespace) {
                blank += 1;
            }
            input.push(b'\n');
        }
        assert!(long > 10 && bad > 10 && blank > 10, "{long} {bad} {blank}");
        let limits = Limits {
            line_cap: cap,
            ..Limits::default()
        };
        let mut results = Vec::new();
        for (name, feed) in FEEDS {
            for trickle in [false, true] {
                let mut whole = &input[..];
                let mut slow = Trickle {
                    data: &input,
                    step: 1,
                };
                let src: &mut (dyn Read + Send) = if trickle { &mut slow } else { &mut whole };
                let mut events = Vec::new();
                let mut diags = Vec::new();
                let mut out = |e: Event| events.push(serde_json::to_string(&e).unwrap());
                let end = feed(
                    src,
                    0,
                    Tail::Hold,
                    limits,
                    &mut EchoText,
                    &mut out,
                    &mut diags,
                )
                .unwrap();
                assert_eq!(end, input.len() as u64, "{name}");
                results.push((name, trickle, events, diags));
            }
        }
        let (_, _, events, diags) = &results[0];
        let kinds = |k| diags.iter().filter(|d| d.kind == k).count();
        assert_eq!(kinds(DiagKind::TooLong), long);
        assert_eq!(kinds(DiagKind::InvalidUtf8), bad);
        assert_eq!(events.len() + diags.len() + blank, 400);
        for (name, trickle, e, d) in &results[1..] {
            assert_eq!((e, d), (events, diags), "{name}, trickle {trickle}");
        }
    }

    #[test]
    fn a_read_ahead_indexes_a_bounded_number_of_line_ends() {
        // A buffer of blank and tiny lines: more ends than the index takes.
        let mut input = Vec::new();
        for i in 0..3 * AHEAD_ENDS {
            input.extend_from_slice(if i % 3 == 0 { b"{}\n" } else { b"\n" });
        }
        let ahead = Ahead::of(Lines {
            base: 0,
            len: input.len(),
            end: input.len(),
            start: 0,
            buf: input.clone(),
        });
        assert_eq!(ahead.ends.len(), AHEAD_ENDS);
        // The parse thread finds the others: every line, as in place.
        let (ids, diags, end) = run(&input, Tail::Final, 1024);
        assert_eq!(ids.len(), AHEAD_ENDS);
        assert!(diags.is_empty());
        assert_eq!(end, input.len() as u64);
    }

    #[test]
    fn a_parser_state_kato_cannot_read_starts_the_file_over() {
        // Well-formed JSON text, so the state file loads, but no value
        // kato reads: a lone surrogate, a number out of range.
        for state in [r#"{"a":"\ud800"}"#, r#"{"n":1e999}"#] {
            let text = format!(r#"{{"offset": 5, "parser": {state}}}"#);
            let cursor: Cursor = serde_json::from_str(&text).unwrap();
            assert!(!cursor.parser.is_null());
            assert!(cursor.parser.restore_into(&mut Echo).is_err(), "{state}");
            let identity = FileIdentity { dev: 1, ino: 2 };
            let (start, reset) = resume_point(&cursor, identity, 100, &mut Echo);
            assert_eq!((start, reset), (0, Some(Reset::BadState)), "{state}");
        }
        let fine: Cursor = serde_json::from_str(r#"{"offset": 5, "parser": {"a": 1}}"#).unwrap();
        let identity = FileIdentity { dev: 1, ino: 2 };
        assert_eq!(resume_point(&fine, identity, 100, &mut Echo), (5, None));
    }

    /// Hands out at most a varying handful of bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.step = (self.step * 7 + 3) % 5000 + 1;
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_across_reads_and_buffer_growth_match_a_whole_split() {
        // Lines from empty to several buffers long, some over the cap.
        let sizes = [
            0,
            1,
            10,
            CHUNK - 9,
            CHUNK,
            2 * CHUNK + 5,
            5,
            3 * CHUNK,
            40,
            7,
        ];
        // Kept lines up to a buffer long, or up to several (carried over
        // from buffer to buffer as they are read).
        for cap in [2 * CHUNK, 4 * CHUNK] {
            let mut input = Vec::new();
            let mut want = (Vec::new(), Vec::new());
            for (i, &n) in sizes.iter().cycle().take(30).enumerate() {
                let at = input.len() as u64;
                let line = format!("{{\"{i}\":\"{}\"}}", "v".repeat(n));
                if line.len() > cap {
                    want.1.push((at, line.len() as u64));
                } else {
                    want.0.push(at);
                }
                input.extend_from_slice(line.as_bytes());
                input.push(b'\n');
            }
            let each = FEEDS.iter().flat_map(|f| [(f, false), (f, true)]);
            for ((name, feed), trickle) in each {
                let mut whole = &input[..];
                let mut slow = Trickle {
                    data: &input,
                    step: 1,
                };
                let src: &mut (dyn Read + Send) = if trickle { &mut slow } else { &mut whole };
                let (ids, diags, end) = feed_with(*feed, src, Tail::Hold, cap);
                let long: Vec<(u64, u64)> = diags.iter().map(|d| (d.offset, d.len)).collect();
                assert_eq!(
                    (&ids, &long),
                    (&want.0, &want.1),
                    "{name}, trickle {trickle}, cap {cap}"
                );
                assert_eq!(end, input.len() as u64);
            }
        }
    }

    #[test]
    fn unfinished_over_long_line_is_held() {
        let mut input = b"{\"a\":1}\n".to_vec();
        input.extend_from_slice(&vec![b'z'; 2 * CHUNK]);
        let (ids, diags, end) = run(&input, Tail::Hold, 4096);
        assert_eq!(ids, [0]);
        assert!(diags.is_empty());
        assert_eq!(end, 8);
    }

    #[test]
    fn parser_state_is_kept_as_its_json_text_and_reads_and_writes_as_the_value() {
        let state = serde_json::json!({
            "session": "00000000-0ab3-4ee9-98f8-585fd289cc1f",
            "last_time": "2026-01-08T00:01:02.000Z",
            "began": true,
        });
        let on_disk = serde_json::json!({"offset": 7, "identity": null, "parser": state});
        let cursor: Cursor = serde_json::from_value(on_disk.clone()).unwrap();
        // Held as the compact text, nothing more: no map of values.
        assert_eq!(cursor.parser.as_json(), state.to_string());
        assert_eq!(std::mem::size_of::<ParserState>(), 16);
        assert_eq!(cursor.parser.value(), state);
        // A clone (the cursor the parse stage keeps of what it sends)
        // shares the text.
        let kept = cursor.clone();
        let (Some(a), Some(b)) = (&cursor.parser.0, &kept.parser.0) else {
            panic!("a context");
        };
        assert!(std::sync::Arc::ptr_eq(a, b));
        // Written back as the same JSON value: state files are unchanged.
        assert_eq!(serde_json::to_value(&cursor).unwrap(), on_disk);
        // No context is `null`, and stays so.
        let none: Cursor = serde_json::from_str(r#"{"offset": 0, "parser": null}"#).unwrap();
        assert!(none.parser.is_null());
        assert_eq!(none.parser.value(), serde_json::Value::Null);
        assert_eq!(
            serde_json::to_value(&none).unwrap()["parser"],
            serde_json::Value::Null
        );
        assert_eq!(none, Cursor::default());
    }
}
