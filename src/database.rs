//! Reading agents' SQLite databases, read-only (the read half of
//! watch+parse for [`SourceKind::Database`] providers).
//!
//! SQLite is C code parsing a file kato does not control, so the
//! connection is opened the way SQLite documents for untrusted files
//! (<https://sqlite.org/security.html>), and never in a way that could
//! write or stall the agent:
//!
//! * `file:<path>?mode=ro` with `SQLITE_OPEN_READ_ONLY | URI | NO_MUTEX`
//!   (not `immutable=1`, which would skip the `-wal` and miss rows the
//!   agent committed but has not checkpointed yet);
//! * `query_only`, `trusted_schema=OFF`, defensive mode, `cell_size_check`,
//!   no memory map, no checkpoint on close, small limits (length, SQL,
//!   columns, depth, attached databases);
//! * a short busy timeout: kato never waits on the writer for long, and a
//!   reader in WAL mode never blocks it.
//!
//! SQLite would create the `-wal` and `-shm` of a WAL database to read
//! it, when they are missing and the folder is writable, even on a
//! read-only connection; [`OpenMode`] says how each case is opened so that
//! it never does (the `opencode_wal_*` tests check the folder is left as
//! it was, under the sandbox and without it).
//!
//! OpenCode's rows reach its pure parser typed
//! ([`crate::provider::opencode::Row`]): the columns as borrowed values,
//! `data` as the JSON text SQLite holds, decoded by the parser straight
//! into borrowed structs (nothing re-encoded, no JSON value tree). Crush's
//! and Goose's rows, and the JSON store's files, become one JSON record
//! each, which their parsers (OpenCode's too) decode the same way; both
//! shapes are fuzzable without a database. A row whose `data` is not the
//! JSON its kind needs is refused by the parser: skipped and counted. A database
//! that SQLite cannot read (corrupt, truncated, not a database) is one
//! skipped record too, never a crash.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::limits::Limit;
use rusqlite::{Connection, OpenFlags};
use serde_json::value::RawValue;

use crate::event::{Event, ProviderId};
use crate::provider::opencode::{self as oc, Mark, OpenCodeParser, Position};
use crate::provider::{FileCtx, Provider, RecordParser, SourceKind, Unsupported};
use crate::reader::{Cursor, DiagKind, Diagnostic, Increment, Limits, Tail};

/// How long a read waits for a lock held by the writer before giving up
/// (it is tried again on the next change).
const BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// A session inside a database, named `<database path>#<session id>`.
pub const SESSION_SEPARATOR: char = '#';

/// Split `<database>#<session id>` into the database and the session; a
/// path without a separator in its last component names the database.
pub fn split_session(path: &Path) -> (PathBuf, Option<String>) {
    let text = path.to_string_lossy();
    if path.is_file() {
        return (path.to_path_buf(), None);
    }
    let name_start = text.rfind('/').map_or(0, |i| i + 1);
    match text[name_start..].rfind(SESSION_SEPARATOR) {
        Some(i) if i > 0 => {
            let at = name_start + i;
            (PathBuf::from(&text[..at]), Some(text[at + 1..].to_owned()))
        }
        _ => (path.to_path_buf(), None),
    }
}

/// The files a confined stage must be able to read to read `path`: for a
/// database (or a session in one), the database and its `-wal` and
/// `-shm` when they exist (SQLite opens them beside it; never the
/// folder, so nothing else in it is granted); any other path as it is.
pub fn readable_files(path: &Path) -> Vec<PathBuf> {
    if let Some(storage) = store_root(path) {
        // A session of the JSON store: its messages and parts are in
        // `storage/message/<session>/` and `storage/part/<message>/`.
        return vec![storage];
    }
    // Decided from names alone: this runs before any sandbox is in force,
    // so it never reads the file. A `-wal`, `-shm` or `-journal` beside a
    // file that is not a database would be granted too, read-only: names
    // the user's own path spells.
    let (db, _) = split_session(path);
    let mut files = vec![db.clone()];
    for suffix in SIBLINGS {
        let p = sibling(&db, suffix);
        if p.is_file() {
            files.push(p);
        }
    }
    files
}

/// The files SQLite opens beside a database when they exist.
const SIBLINGS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// What a confined stage may read under `root`
/// ([`Provider::reach`]): each regular file whose name `is_database`
/// accepts, with its `-wal`, `-shm` and `-journal` that exist now, and
/// the `storage` directory (the JSON store) when it is one. Nothing else
/// in the root, whose other files (credentials) stay closed.
pub fn reach(root: &Path, is_database: fn(&str) -> bool) -> Vec<PathBuf> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = root.join(&name);
        // Never a link: a rule follows it.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if name == "storage" && meta.is_dir() {
            out.push(path);
        } else if meta.is_file() && name.to_str().is_some_and(is_database) {
            out.extend(
                SIBLINGS
                    .iter()
                    .map(|s| sibling(&path, s))
                    .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())),
            );
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The `storage` folder of OpenCode's JSON store when `path` is one of
/// its session files (`storage/session/<project>/<ses_…>.json`).
pub fn store_root(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    if !(name.starts_with("ses_") && name.ends_with(".json")) {
        return None;
    }
    let session_dir = path.parent()?.parent()?;
    let storage = session_dir.parent()?;
    (session_dir.file_name()? == "session" && storage.file_name()? == "storage")
        .then(|| storage.to_path_buf())
}

/// `<database>#<session id>`.
pub fn session_path(db: &Path, session: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(SESSION_SEPARATOR.to_string());
    s.push(session);
    PathBuf::from(s)
}

/// The top-level sessions of the database at `path`, for discovery.
pub fn sessions(provider: &dyn Provider, path: &Path) -> std::io::Result<Vec<String>> {
    let limits = Limits::default();
    let r = match provider.id() {
        ProviderId::OpenCode => opencode_sessions(path, limits),
        ProviderId::Crush => crush_sessions(path, limits),
        ProviderId::Goose => goose_sessions(path, limits),
        other => {
            return Err(Unsupported {
                provider: other,
                kind: SourceKind::Database,
            }
            .into())
        }
    };
    r.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The session a read of the whole database at `path` delivers first
/// (what its first event names: a root session), found by a query instead
/// of the read. `None` when the database holds no session (or is not of
/// a provider that keeps databases).
pub fn first_session(
    provider: &dyn Provider,
    path: &Path,
    limits: Limits,
) -> Result<Option<String>, DbError> {
    let conn = open_read_only(path, limits)?;
    let first = |sql: &str| -> Result<Option<(String, Option<String>)>, DbError> {
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        Ok(match rows.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?)),
            None => None,
        })
    };
    Ok(match provider.id() {
        // `opencode_rows`: the trees in order of their root's id.
        ProviderId::OpenCode => {
            first("SELECT id, NULL FROM session WHERE parent_id IS NULL ORDER BY id LIMIT 1")?
                .map(|(id, _)| id)
        }
        // `goose_rows`: every session, oldest first.
        ProviderId::Goose => {
            first("SELECT id, NULL FROM sessions ORDER BY created_at, id LIMIT 1")?
                .map(|(id, _)| id)
        }
        // `crush_rows`: every session (children too) oldest first, each
        // named by its root, as far up as the read follows parents.
        ProviderId::Crush => {
            let Some((mut id, mut parent)) = first(
                "SELECT id, parent_session_id FROM sessions ORDER BY created_at, id LIMIT 1",
            )?
            else {
                return Ok(None);
            };
            let mut up = conn.prepare("SELECT parent_session_id FROM sessions WHERE id = ?1")?;
            for _ in 0..16 {
                let Some(p) = parent.take() else { break };
                let mut rows = up.query([&p])?;
                parent = match rows.next()? {
                    Some(r) => r.get(0)?,
                    None => None,
                };
                id = p;
            }
            Some(id)
        }
        _ => None,
    })
}

/// Read the database at `path` (one session of it when `session` is set)
/// and deliver its events: [`crate::reader::read_path`] for databases.
pub fn read(
    path: &Path,
    session: Option<&str>,
    provider: &dyn Provider,
    ctx: &FileCtx,
    limits: Limits,
    tail: Tail,
    out: &mut dyn FnMut(Event),
) -> std::io::Result<Increment> {
    if let Some(storage) = store_root(path) {
        return Ok(read_opencode_store(
            &storage,
            path,
            provider,
            ctx,
            &Cursor::default(),
            limits,
            tail,
            out,
        ));
    }
    match provider.id() {
        ProviderId::OpenCode => Ok(read_opencode(
            path,
            session,
            provider,
            ctx,
            &Cursor::default(),
            limits,
            tail,
            out,
        )),
        ProviderId::Crush => Ok(read_crush(
            path,
            session,
            provider,
            ctx,
            &Cursor::default(),
            limits,
            tail,
            out,
        )),
        ProviderId::Goose => Ok(read_goose(
            path,
            session,
            provider,
            ctx,
            &Cursor::default(),
            limits,
            tail,
            out,
        )),
        other => Err(Unsupported {
            provider: other,
            kind: SourceKind::Database,
        }
        .into()),
    }
}

/// Read what changed in the database at `path` since `cursor` (the
/// daemon's watch stage): [`crate::reader::read_increment`] for databases.
pub fn read_since(
    path: &Path,
    provider: &dyn Provider,
    ctx: &FileCtx,
    cursor: &Cursor,
    limits: Limits,
    out: &mut dyn FnMut(Event),
) -> std::io::Result<Increment> {
    if let Some(storage) = store_root(path) {
        return Ok(read_opencode_store(
            &storage,
            path,
            provider,
            ctx,
            cursor,
            limits,
            Tail::Hold,
            out,
        ));
    }
    match provider.id() {
        ProviderId::OpenCode => Ok(read_opencode(
            path,
            None,
            provider,
            ctx,
            cursor,
            limits,
            Tail::Hold,
            out,
        )),
        ProviderId::Crush => Ok(read_crush(
            path,
            None,
            provider,
            ctx,
            cursor,
            limits,
            Tail::Hold,
            out,
        )),
        ProviderId::Goose => Ok(read_goose(
            path,
            None,
            provider,
            ctx,
            cursor,
            limits,
            Tail::Hold,
            out,
        )),
        other => Err(Unsupported {
            provider: other,
            kind: SourceKind::Database,
        }
        .into()),
    }
}

/// The database a `-wal` file belongs to (`<database>-wal`).
pub fn database_of_wal(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let db = name.strip_suffix("-wal")?;
    (!db.is_empty()).then(|| path.with_file_name(db))
}

/// Why a database could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot read the database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("not a path SQLite can open (not UTF-8)")]
    Path,
}

/// `path` with `suffix` appended to its name (`-wal`, `-shm`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// How a database is opened so that nothing is ever created or written
/// beside it. Measured (and kept by the `opencode_wal_*` tests): a
/// `mode=ro` connection to a WAL database *creates* the `-wal` and `-shm`
/// when they are missing and the folder is writable (and fails when it is
/// not); with `readonly_shm=1` it still creates the `-wal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `-wal` and `-shm` exist (a writer is, or was, connected):
    /// `readonly_shm=1`: the `-shm` is opened read-only (SQLite keeps its
    /// own copy of the WAL index in memory when it must), every committed
    /// row is read, checkpointed or not.
    WalReadOnlyShm,
    /// A WAL database without its `-wal` or `-shm` (no connection open;
    /// after a crash, a `-wal` whose `-shm` is gone): `immutable=1`, the
    /// database file as it is, without locks or WAL. A writer that
    /// connects meanwhile creates the `-wal`; the next read sees it.
    Immutable,
    /// A rollback-journal database: `mode=ro` alone (a shared lock while
    /// a read lasts; a hot journal makes the read fail, counted).
    Rollback,
}

/// Decide [`OpenMode`] from the files beside `path` and its header
/// (bytes 18 and 19 are 2 in a WAL database).
pub fn open_mode(path: &Path) -> OpenMode {
    let wal = sibling(path, "-wal").is_file();
    let shm = sibling(path, "-shm").is_file();
    if wal && shm {
        return OpenMode::WalReadOnlyShm;
    }
    let mut header = [0u8; 20];
    let is_wal = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok_and(|()| header[18] == 2 || header[19] == 2);
    if wal || is_wal {
        OpenMode::Immutable
    } else {
        OpenMode::Rollback
    }
}

/// The URI that opens `path` read-only: every byte but unreserved ones
/// and `/` percent-encoded, so no character of the path is read as a
/// URI parameter.
fn read_only_uri(path: &Path, mode: OpenMode) -> Result<String, DbError> {
    let text = path.to_str().ok_or(DbError::Path)?;
    let mut uri = String::with_capacity(text.len() + 16);
    uri.push_str("file:");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri.push_str("?mode=ro");
    uri.push_str(match mode {
        OpenMode::WalReadOnlyShm => "&readonly_shm=1",
        OpenMode::Immutable => "&immutable=1",
        OpenMode::Rollback => "",
    });
    Ok(uri)
}

/// Open `path` read-only with the defensive settings above.
pub fn open_read_only(path: &Path, limits: Limits) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(read_only_uri(path, open_mode(path))?, flags)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    let cap = i32::try_from(limits.line_cap).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, cap)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1 << 16)?;
    conn.set_limit(Limit::SQLITE_LIMIT_COLUMN, 200)?;
    conn.set_limit(Limit::SQLITE_LIMIT_EXPR_DEPTH, 100)?;
    conn.set_limit(Limit::SQLITE_LIMIT_COMPOUND_SELECT, 8)?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 64)?;
    conn.set_limit(Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 1)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA query_only = 1; PRAGMA trusted_schema = OFF; \
         PRAGMA cell_size_check = ON; PRAGMA mmap_size = 0; PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

/// Top-level sessions of an OpenCode database (no `parent_id`): id and
/// `time_updated`, oldest first.
pub fn opencode_sessions(path: &Path, limits: Limits) -> Result<Vec<String>, DbError> {
    session_ids(
        path,
        limits,
        "SELECT id FROM session WHERE parent_id IS NULL ORDER BY time_created, id",
    )
}

/// Read the sessions of an OpenCode database and deliver their events, as
/// [`crate::reader::read_increment`] does for files.
///
/// * `session` set (a one-shot export, a capture's replay): that session
///   and its descendants, in conversation order.
/// * Otherwise, from `cursor` (the daemon): the first read delivers every
///   session in conversation order; later reads only the rows whose
///   `time_updated` is past the parser's [`Position`], in the order they
///   were updated.
///
/// An event's `source.offset` is its row's `time_updated` (a session's
/// `time_created`), so that live events come in increasing offsets.
// Long because: one snapshot, three ways in, one commit.
#[allow(clippy::too_many_arguments)]
pub fn read_opencode(
    path: &Path,
    session: Option<&str>,
    provider: &dyn Provider,
    _ctx: &FileCtx,
    cursor: &Cursor,
    limits: Limits,
    tail: Tail,
    out: &mut dyn FnMut(Event),
) -> Increment {
    let mut parser = OpenCodeParser::default();
    let mut reset = None;
    if cursor.parser.restore_into(&mut parser).is_err() {
        parser = OpenCodeParser::default();
        reset = Some(crate::reader::Reset::BadState);
    }
    let position: Position = serde_json::from_value(parser.state()).unwrap_or_default();
    let identity = std::fs::metadata(path)
        .ok()
        .map(|m| crate::reader::FileIdentity::of(&m));
    let mut events = 0u64;
    let carries_commands = provider.carries_commands();
    let mut counting = crate::reader::with_commands(carries_commands, &mut events, out);
    let mut diagnostics = Vec::new();
    let settle = tail == Tail::Final;
    let mut bytes = 0;
    let result = open_read_only(path, limits).and_then(|conn| {
        // One read transaction: one consistent snapshot of the database.
        let tx = conn.unchecked_transaction()?;
        if session.is_some() || position.is_start() {
            let mut feed = RowFeed {
                parser: &mut parser,
                out: &mut counting,
                diagnostics: &mut diagnostics,
                settle,
                bytes: 0,
            };
            let r = opencode_rows(&tx, session, &mut feed);
            bytes = feed.bytes;
            r?;
        } else {
            let mut feed = Feed {
                parser: &mut parser,
                out: &mut counting,
                diagnostics: &mut diagnostics,
                settle,
                bytes: 0,
                line: String::new(),
            };
            let r = opencode_rows_since(&tx, &position, &mut feed);
            bytes = feed.bytes;
            r?;
        }
        tx.finish()?;
        Ok(())
    });
    if let Err(e) = result {
        diagnostics.push(Diagnostic {
            offset: 0,
            len: 0,
            kind: DiagKind::WrongShape,
            detail: e.to_string(),
        });
    }
    if tail == Tail::Final {
        parser.flush(&mut counting);
    }
    drop(counting);
    Increment {
        cursor: Cursor {
            offset: 0,
            identity,
            parser: parser.state().into(),
        },
        reset,
        diagnostics,
        bytes,
        events,
    }
}

/// Hands OpenCode's rows to its parser typed, borrowed from SQLite's
/// column values: no copy, no JSON built around them.
struct RowFeed<'a> {
    parser: &'a mut OpenCodeParser,
    out: &'a mut dyn FnMut(Event),
    diagnostics: &'a mut Vec<Diagnostic>,
    /// The read is final: unsettled parts are delivered as they stand.
    settle: bool,
    bytes: u64,
}

impl RowFeed<'_> {
    fn row(&mut self, offset: u64, mut row: oc::Row<'_>) {
        row.settle = self.settle;
        let len = match row.data {
            oc::RowData::Message(d) | oc::RowData::Part(d) => d.len(),
            oc::RowData::Session {
                title,
                directory,
                version,
            } => [title, directory, version]
                .iter()
                .map(|v| v.map_or(0, str::len))
                .sum::<usize>()
                .max(1),
        };
        self.bytes += len as u64;
        if let Err(m) = self.parser.row(offset, &row, self.out) {
            self.diagnostics
                .push(Diagnostic::from_malformed(offset, len, m));
        }
    }
}

/// A text column borrowed (`None` for NULL, a number, a blob, or text
/// that is not UTF-8).
fn col<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    Ok(match r.get_ref(i)? {
        rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    })
}

/// A column that should hold JSON, borrowed when it is UTF-8 text; text
/// that is not is read lossily, anything else is empty (the parser
/// refuses it: skipped and counted).
fn json_col<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<std::borrow::Cow<'r, str>> {
    Ok(match r.get_ref(i)? {
        rusqlite::types::ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(t),
        },
        _ => std::borrow::Cow::Borrowed(""),
    })
}

/// Hands records to the parser, one at a time.
struct Feed<'a> {
    parser: &'a mut dyn RecordParser,
    out: &'a mut dyn FnMut(Event),
    diagnostics: &'a mut Vec<Diagnostic>,
    /// Records are the last state the read will see: unsettled parts are
    /// delivered as they stand (a one-shot read).
    settle: bool,
    bytes: u64,
    line: String,
}

/// A column of a row, for its record.
enum Field {
    Str(&'static str, Option<String>),
    Int(&'static str, Option<i64>),
}

/// One row as its record will be built: kind, fields, `data`.
struct Row {
    kind: &'static str,
    /// The events' `source.offset`: `time_updated` (a session's
    /// `time_created`).
    offset: u64,
    id: String,
    fields: Vec<Field>,
    data: String,
}

impl Feed<'_> {
    /// Build the record `{"t": kind, fields…, "settle", "data": data}` and
    /// parse it. `data` is embedded as it is when it is one JSON value;
    /// otherwise the row is refused and counted.
    fn record(&mut self, row: &Row) {
        let Row {
            kind,
            offset,
            fields,
            data,
            ..
        } = row;
        self.bytes += data.len() as u64;
        if let Err(e) = serde_json::from_str::<&RawValue>(data) {
            self.diagnostics.push(Diagnostic {
                offset: *offset,
                len: data.len() as u64,
                kind: DiagKind::NotJson,
                detail: format!("{kind} row: data is not JSON: {e}"),
            });
            return;
        }
        let line = &mut self.line;
        line.clear();
        line.push_str("{\"t\":\"");
        line.push_str(kind);
        line.push('"');
        for f in fields {
            let (name, value) = match f {
                Field::Str(n, v) => (
                    n,
                    v.as_ref()
                        .map(|s| serde_json::to_string(s).unwrap_or_default()),
                ),
                Field::Int(n, v) => (n, v.map(|i| i.to_string())),
            };
            line.push_str(",\"");
            line.push_str(name);
            line.push_str("\":");
            line.push_str(value.as_deref().unwrap_or("null"));
        }
        line.push_str(if self.settle {
            ",\"settle\":true"
        } else {
            ",\"settle\":false"
        });
        line.push_str(",\"data\":");
        line.push_str(data);
        line.push('}');
        if let Err(m) = self.parser.record(*offset, line.as_bytes(), self.out) {
            self.diagnostics
                .push(Diagnostic::from_malformed(*offset, line.len(), m));
        }
    }
}

fn offset_of(t: Option<i64>) -> u64 {
    t.and_then(|t| u64::try_from(t).ok()).unwrap_or(0)
}

/// Text of a column that should hold JSON; anything else (NULL, a blob
/// that is not UTF-8, a number) becomes a row the parser refuses.
fn text(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    Ok(match r.get_ref(i)? {
        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        _ => String::new(),
    })
}

/// A session's row.
#[allow(clippy::too_many_arguments)]
fn session_row(
    id: String,
    root: String,
    parent: Option<String>,
    title: Option<String>,
    directory: Option<String>,
    version: Option<String>,
    created: Option<i64>,
    updated: Option<i64>,
) -> Row {
    let data =
        serde_json::json!({"title": title, "directory": directory, "version": version}).to_string();
    Row {
        kind: "session",
        offset: offset_of(created),
        fields: vec![
            Field::Str("id", Some(id.clone())),
            Field::Str("root", Some(root)),
            Field::Str("parent_id", parent),
            Field::Int("time_created", created),
            Field::Int("time_updated", updated),
        ],
        id,
        data,
    }
}

/// What a part's record takes from its message.
struct MessageInfo {
    role: Option<String>,
    model: Option<String>,
}

fn message_info(data: &str) -> MessageInfo {
    #[derive(serde::Deserialize)]
    struct Head {
        role: Option<String>,
        #[serde(rename = "modelID")]
        model_id: Option<String>,
        model: Option<ModelRef>,
    }
    #[derive(serde::Deserialize)]
    struct ModelRef {
        #[serde(rename = "modelID")]
        model_id: Option<String>,
    }
    match serde_json::from_str::<Head>(data) {
        Ok(h) => MessageInfo {
            role: h.role,
            model: h.model_id.or(h.model.and_then(|m| m.model_id)),
        },
        Err(_) => MessageInfo {
            role: None,
            model: None,
        },
    }
}

fn message_row(
    id: String,
    session: &str,
    root: &str,
    created: Option<i64>,
    updated: Option<i64>,
    data: String,
) -> Row {
    Row {
        kind: "message",
        offset: offset_of(updated.or(created)),
        fields: vec![
            Field::Str("id", Some(id.clone())),
            Field::Str("session_id", Some(session.to_owned())),
            Field::Str("root", Some(root.to_owned())),
            Field::Int("time_created", created),
            Field::Int("time_updated", updated),
        ],
        id,
        data,
    }
}

#[allow(clippy::too_many_arguments)]
fn part_row(
    id: String,
    message: &str,
    session: &str,
    root: &str,
    info: &MessageInfo,
    created: Option<i64>,
    updated: Option<i64>,
    data: String,
) -> Row {
    Row {
        kind: "part",
        offset: offset_of(updated.or(created)),
        fields: vec![
            Field::Str("id", Some(id.clone())),
            Field::Str("message_id", Some(message.to_owned())),
            Field::Str("session_id", Some(session.to_owned())),
            Field::Str("root", Some(root.to_owned())),
            Field::Str("role", info.role.clone()),
            Field::Str("model", info.model.clone()),
            Field::Int("time_created", created),
            Field::Int("time_updated", updated),
        ],
        id,
        data,
    }
}

/// Sessions (root first, then descendants by creation), each followed by
/// its messages in creation order, each message's parts (by id) before
/// the message's own record.
fn opencode_rows(
    conn: &Connection,
    session: Option<&str>,
    feed: &mut RowFeed<'_>,
) -> Result<(), DbError> {
    /// A session's columns (a handful per read: owned).
    struct SessionCols {
        id: String,
        root: String,
        parent: Option<String>,
        title: Option<String>,
        directory: Option<String>,
        version: Option<String>,
        created: Option<i64>,
        updated: Option<i64>,
    }
    // Sessions with their root (`parent_id` chains, bounded depth).
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE tree(id, root, depth) AS ( \
           SELECT id, id, 0 FROM session \
             WHERE (?1 IS NULL AND parent_id IS NULL) OR id = ?1 \
           UNION ALL \
           SELECT s.id, tree.root, tree.depth + 1 FROM session s \
             JOIN tree ON s.parent_id = tree.id WHERE tree.depth < 16) \
         SELECT s.id, tree.root, s.parent_id, s.title, s.directory, s.version, \
                s.time_created, s.time_updated \
         FROM tree JOIN session s ON s.id = tree.id \
         ORDER BY tree.root, tree.depth, s.time_created, s.id",
    )?;
    let sessions: Vec<SessionCols> = stmt
        .query_map([session], |r| {
            Ok(SessionCols {
                id: r.get(0)?,
                root: r.get(1)?,
                parent: r.get(2)?,
                title: r.get(3)?,
                directory: r.get(4)?,
                version: r.get(5)?,
                created: r.get(6)?,
                updated: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut messages = conn.prepare_cached(
        "SELECT id, time_created, time_updated, data FROM message \
         WHERE session_id = ?1 ORDER BY time_created, id",
    )?;
    // Each message's parts by the (message_id, id) index OpenCode keeps:
    // no sort of the whole session, so memory stays flat.
    let mut parts = conn.prepare_cached(
        "SELECT id, time_created, time_updated, data \
         FROM part WHERE message_id = ?1 ORDER BY id",
    )?;
    for s in &sessions {
        feed.row(
            offset_of(s.created),
            oc::Row {
                id: &s.id,
                session_id: None,
                root: Some(&s.root),
                parent_id: s.parent.as_deref(),
                role: None,
                model: None,
                time_created: s.created,
                time_updated: s.updated,
                settle: false,
                data: oc::RowData::Session {
                    title: s.title.as_deref(),
                    directory: s.directory.as_deref(),
                    version: s.version.as_deref(),
                },
            },
        );
        let mut msg_rows = messages.query([&s.id])?;
        while let Some(m) = msg_rows.next()? {
            let Some(mid) = col(m, 0)? else { continue };
            let (created, updated): (Option<i64>, Option<i64>) = (m.get(1)?, m.get(2)?);
            let data = json_col(m, 3)?;
            let head = oc::MessageHead::of(&data);
            let mut part_rows = parts.query([mid])?;
            while let Some(p) = part_rows.next()? {
                let Some(pid) = col(p, 0)? else { continue };
                let (pc, pu): (Option<i64>, Option<i64>) = (p.get(1)?, p.get(2)?);
                let pdata = json_col(p, 3)?;
                feed.row(
                    offset_of(pu.or(pc)),
                    oc::Row {
                        id: pid,
                        session_id: Some(&s.id),
                        root: Some(&s.root),
                        parent_id: None,
                        role: head.role(),
                        model: head.model(),
                        time_created: pc,
                        time_updated: pu,
                        settle: false,
                        data: oc::RowData::Part(&pdata),
                    },
                );
            }
            // The message's own record follows its parts.
            feed.row(
                offset_of(updated.or(created)),
                oc::Row {
                    id: mid,
                    session_id: Some(&s.id),
                    root: Some(&s.root),
                    parent_id: None,
                    role: None,
                    model: None,
                    time_created: created,
                    time_updated: updated,
                    settle: false,
                    data: oc::RowData::Message(&data),
                },
            );
        }
    }
    Ok(())
}

/// `WHERE` of rows past a [`Mark`]: `?1` its time, `?2` its ids (JSON).
const PAST_MARK: &str =
    "(time_updated > ?1 OR (time_updated = ?1 AND id NOT IN (SELECT value FROM json_each(?2))))";

/// Rows updated since `position`, in the order they were updated.
fn opencode_rows_since(
    conn: &Connection,
    position: &Position,
    feed: &mut Feed<'_>,
) -> Result<(), DbError> {
    // Every session's root, from the `parent_id` chains.
    let mut parents: HashMap<String, Option<String>> = HashMap::new();
    let mut stmt = conn.prepare("SELECT id, parent_id FROM session")?;
    for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (id, parent) = r?;
        parents.insert(id, parent);
    }
    let root_of = |id: &str| {
        let mut cur = id.to_owned();
        for _ in 0..16 {
            match parents.get(&cur) {
                Some(Some(p)) => cur.clone_from(p),
                _ => break,
            }
        }
        cur
    };
    let ids = |m: &Mark| serde_json::to_string(&m.ids).unwrap_or_else(|_| "[]".into());
    let mut rows: Vec<(u64, u8, Row)> = Vec::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT id, parent_id, title, directory, version, time_created, time_updated \
         FROM session WHERE {PAST_MARK}"
    ))?;
    let mut q = stmt.query(rusqlite::params![
        position.session.time,
        ids(&position.session)
    ])?;
    while let Some(r) = q.next()? {
        let id: String = r.get(0)?;
        let root = root_of(&id);
        let row = session_row(
            id,
            root,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        );
        rows.push((offset_of(r.get(6)?), 0, row));
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT id, session_id, time_created, time_updated, data FROM message WHERE {PAST_MARK}"
    ))?;
    let mut q = stmt.query(rusqlite::params![
        position.message.time,
        ids(&position.message)
    ])?;
    while let Some(r) = q.next()? {
        let session: String = r.get(1)?;
        let root = root_of(&session);
        let row = message_row(
            r.get(0)?,
            &session,
            &root,
            r.get(2)?,
            r.get(3)?,
            text(r, 4)?,
        );
        rows.push((row.offset, 2, row));
    }
    // Parts: `part.time_updated` has no index, so not every part is
    // looked at: those past a moment before the greatest id read (ids
    // are time-sortable, a range of the primary key's index) and those
    // held back unsettled (by id); of these, the ones updated past the
    // mark. A part updated in place after it settled is not read again
    // (its events were delivered).
    let past = PAST_MARK
        .replace("time_updated", "p.time_updated")
        .replace("id NOT IN", "p.id NOT IN");
    let cols = "p.id, p.message_id, p.session_id, p.time_created, p.time_updated, p.data, m.data";
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {cols} FROM part p JOIN message m ON m.id = p.message_id \
           WHERE p.id > ?3 AND {past} \
         UNION ALL \
         SELECT {cols} FROM part p JOIN message m ON m.id = p.message_id \
           WHERE p.id IN (SELECT value FROM json_each(?4)) AND p.id <= ?3 AND {past}"
    ))?;
    let held = serde_json::to_string(&position.held).unwrap_or_else(|_| "[]".into());
    let mut q = stmt.query(rusqlite::params![
        position.part.time,
        ids(&position.part),
        position.part_floor(),
        held
    ])?;
    while let Some(r) = q.next()? {
        let message: String = r.get(1)?;
        let session: String = r.get(2)?;
        let root = root_of(&session);
        let info = message_info(&text(r, 6)?);
        let row = part_row(
            r.get(0)?,
            &message,
            &session,
            &root,
            &info,
            r.get(3)?,
            r.get(4)?,
            text(r, 5)?,
        );
        rows.push((row.offset, 1, row));
    }
    rows.sort_by(|a, b| (a.0, a.1, &a.2.id).cmp(&(b.0, b.1, &b.2.id)));
    for (_, _, row) in &rows {
        feed.record(row);
    }
    Ok(())
}

/// A JSON file of the store, as an object; `None` when it cannot be read,
/// is longer than the cap, or is not a JSON object (the row is then
/// missing, or counted by the caller).
fn store_json(path: &Path, limits: Limits) -> Option<serde_json::Map<String, serde_json::Value>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > limits.line_cap as u64 {
        return None;
    }
    match serde_json::from_slice(&std::fs::read(path).ok()?).ok()? {
        serde_json::Value::Object(o) => Some(o),
        _ => None,
    }
}

/// The `*.json` files of `dir` in name order (ids are time-sortable).
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn time_of(o: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<i64> {
    o.get("time")?.get(key)?.as_i64()
}

fn str_field(o: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    o.get(key)?.as_str().map(str::to_owned)
}

/// Read one session of OpenCode's JSON store (`session_file` and its child
/// sessions beside it) into the same records as the database's: the
/// files' JSON minus the ids the database keeps in columns. The daemon
/// reads it once (OpenCode 1.2+ no longer writes the store).
#[allow(clippy::too_many_arguments)]
fn read_opencode_store(
    storage: &Path,
    session_file: &Path,
    provider: &dyn Provider,
    ctx: &FileCtx,
    cursor: &Cursor,
    limits: Limits,
    tail: Tail,
    out: &mut dyn FnMut(Event),
) -> Increment {
    let mut parser = provider.parser(ctx);
    let read_before =
        !cursor.parser.is_null() && cursor.parser.restore_into(parser.as_mut()).is_ok();
    let identity = std::fs::metadata(session_file)
        .ok()
        .map(|m| crate::reader::FileIdentity::of(&m));
    let mut events = 0u64;
    let carries_commands = provider.carries_commands();
    let mut counting = crate::reader::with_commands(carries_commands, &mut events, out);
    let mut diagnostics = Vec::new();
    let mut feed = Feed {
        parser: parser.as_mut(),
        out: &mut counting,
        diagnostics: &mut diagnostics,
        settle: tail == Tail::Final,
        bytes: 0,
        line: String::new(),
    };
    if !read_before {
        store_rows(storage, session_file, limits, &mut feed);
    }
    let bytes = feed.bytes;
    if tail == Tail::Final {
        parser.flush(&mut counting);
    }
    drop(counting);
    Increment {
        cursor: Cursor {
            offset: 0,
            identity,
            parser: parser.state().into(),
        },
        reset: None,
        diagnostics,
        bytes,
        events,
    }
}

fn store_rows(storage: &Path, session_file: &Path, limits: Limits, feed: &mut Feed<'_>) {
    let Some(top) = store_json(session_file, limits) else {
        feed.diagnostics.push(Diagnostic {
            offset: 0,
            len: 0,
            kind: DiagKind::WrongShape,
            detail: "not a session file of the store".into(),
        });
        return;
    };
    let Some(root) = str_field(&top, "id") else {
        return;
    };
    // The session, then its descendants (child sessions lie beside it).
    let siblings: Vec<serde_json::Map<String, serde_json::Value>> = session_file
        .parent()
        .map(json_files)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| store_json(p, limits))
        .collect();
    let mut order = vec![top];
    let mut i = 0;
    while i < order.len() && order.len() < 4096 {
        let parent = str_field(&order[i], "id");
        let mut kids: Vec<_> = siblings
            .iter()
            .filter(|s| parent.is_some() && str_field(s, "parentID") == parent)
            .cloned()
            .collect();
        kids.sort_by_key(|s| (time_of(s, "created"), str_field(s, "id")));
        order.extend(kids);
        i += 1;
    }
    for s in &order {
        let Some(id) = str_field(s, "id") else {
            continue;
        };
        feed.record(&session_row(
            id.clone(),
            root.clone(),
            str_field(s, "parentID"),
            str_field(s, "title"),
            str_field(s, "directory"),
            str_field(s, "version"),
            time_of(s, "created"),
            time_of(s, "updated"),
        ));
        let mut messages: Vec<_> = json_files(&storage.join("message").join(&id))
            .iter()
            .filter_map(|p| store_json(p, limits))
            .collect();
        messages.sort_by_key(|m| (time_of(m, "created"), str_field(m, "id")));
        for mut m in messages {
            let Some(mid) = str_field(&m, "id") else {
                continue;
            };
            let created = time_of(&m, "created");
            let updated = time_of(&m, "completed").or(created);
            m.remove("id");
            m.remove("sessionID");
            let data = serde_json::Value::Object(m).to_string();
            let info = message_info(&data);
            for p in json_files(&storage.join("part").join(&mid)) {
                let Some(mut part) = store_json(&p, limits) else {
                    continue;
                };
                let Some(pid) = str_field(&part, "id") else {
                    continue;
                };
                part.remove("id");
                part.remove("sessionID");
                part.remove("messageID");
                let pdata = serde_json::Value::Object(part).to_string();
                feed.record(&part_row(
                    pid, &mid, &id, &root, &info, created, created, pdata,
                ));
            }
            feed.record(&message_row(mid, &id, &root, created, updated, data));
        }
    }
}

/// Top-level sessions of a Crush database (no `parent_session_id`).
fn crush_sessions(path: &Path, limits: Limits) -> Result<Vec<String>, DbError> {
    session_ids(
        path,
        limits,
        "SELECT id FROM sessions WHERE parent_session_id IS NULL ORDER BY created_at, id",
    )
}

/// The session ids a fixed query lists.
fn session_ids(path: &Path, limits: Limits, sql: &str) -> Result<Vec<String>, DbError> {
    let conn = open_read_only(path, limits)?;
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

/// [`read_opencode`] for Crush: `sessions` and `messages` (a message's
/// `parts` array is its record's `data`).
#[allow(clippy::too_many_arguments)]
fn read_crush(
    path: &Path,
    session: Option<&str>,
    provider: &dyn Provider,
    ctx: &FileCtx,
    cursor: &Cursor,
    limits: Limits,
    tail: Tail,
    out: &mut dyn FnMut(Event),
) -> Increment {
    let reader = RecordReader {
        path,
        provider,
        ctx,
        cursor,
        limits,
        tail,
    };
    reader.read(out, |conn, position, feed| {
        let since = (session.is_none() && !position.is_start()).then_some(position);
        crush_rows(conn, session, since, feed)
    })
}

/// What the record readers (Crush, Goose) share: the parser restored from
/// the cursor (started over when its state is unreadable), one read
/// transaction whose rows `rows` feeds to it, commands counted beside the
/// events, a failure kept as one diagnostic, the tail flushed when final.
struct RecordReader<'a> {
    path: &'a Path,
    provider: &'a dyn Provider,
    ctx: &'a FileCtx,
    cursor: &'a Cursor,
    limits: Limits,
    tail: Tail,
}

impl RecordReader<'_> {
    fn read(
        &self,
        out: &mut dyn FnMut(Event),
        rows: impl FnOnce(&Connection, &Position, &mut Feed<'_>) -> Result<(), DbError>,
    ) -> Increment {
        let mut parser = self.provider.parser(self.ctx);
        let mut reset = None;
        if self.cursor.parser.restore_into(parser.as_mut()).is_err() {
            parser = self.provider.parser(self.ctx);
            reset = Some(crate::reader::Reset::BadState);
        }
        let position: Position = serde_json::from_value(parser.state()).unwrap_or_default();
        let identity = std::fs::metadata(self.path)
            .ok()
            .map(|m| crate::reader::FileIdentity::of(&m));
        let mut events = 0u64;
        let carries_commands = self.provider.carries_commands();
        let mut counting = crate::reader::with_commands(carries_commands, &mut events, out);
        let mut diagnostics = Vec::new();
        let mut feed = Feed {
            parser: parser.as_mut(),
            out: &mut counting,
            diagnostics: &mut diagnostics,
            settle: self.tail == Tail::Final,
            bytes: 0,
            line: String::new(),
        };
        let result = open_read_only(self.path, self.limits).and_then(|conn| {
            let tx = conn.unchecked_transaction()?;
            rows(&tx, &position, &mut feed)?;
            tx.finish()?;
            Ok(())
        });
        let bytes = feed.bytes;
        if let Err(e) = result {
            diagnostics.push(Diagnostic {
                offset: 0,
                len: 0,
                kind: DiagKind::WrongShape,
                detail: e.to_string(),
            });
        }
        if self.tail == Tail::Final {
            parser.flush(&mut counting);
        }
        drop(counting);
        Increment {
            cursor: Cursor {
                offset: 0,
                identity,
                parser: parser.state().into(),
            },
            reset,
            diagnostics,
            bytes,
            events,
        }
    }
}

/// Sessions then messages: a session tree in conversation order, or (with
/// `since`) the rows updated past the position, in update order.
fn crush_rows(
    conn: &Connection,
    session: Option<&str>,
    since: Option<&Position>,
    feed: &mut Feed<'_>,
) -> Result<(), DbError> {
    let mut parents: HashMap<String, Option<String>> = HashMap::new();
    let mut stmt = conn.prepare("SELECT id, parent_session_id FROM sessions")?;
    for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (id, parent) = r?;
        parents.insert(id, parent);
    }
    let root_of = |id: &str| {
        let mut cur = id.to_owned();
        for _ in 0..16 {
            match parents.get(&cur) {
                Some(Some(p)) => cur.clone_from(p),
                _ => break,
            }
        }
        cur
    };
    let wanted = |id: &str| match session {
        Some(s) => root_of(id) == s,
        None => true,
    };
    let ids = |m: &Mark| serde_json::to_string(&m.ids).unwrap_or_else(|_| "[]".into());
    let past = |m: Option<&Mark>| match m {
        Some(m) => (m.time, ids(m)),
        None => (i64::MIN, "[]".to_owned()),
    };
    let mut rows: Vec<(u64, u8, Row)> = Vec::new();
    let (t, ids_s) = past(since.map(|p| &p.session));
    let mut stmt = conn.prepare(
        "SELECT id, parent_session_id, title, created_at, updated_at FROM sessions \
         WHERE updated_at > ?1 OR (updated_at = ?1 AND id NOT IN (SELECT value FROM json_each(?2))) \
         ORDER BY created_at, id",
    )?;
    let mut q = stmt.query(rusqlite::params![t, ids_s])?;
    while let Some(r) = q.next()? {
        let id: String = r.get(0)?;
        if !wanted(&id) {
            continue;
        }
        let root = root_of(&id);
        let title: Option<String> = r.get(2)?;
        let data = serde_json::json!({ "title": title }).to_string();
        let created: Option<i64> = r.get(3)?;
        let updated: Option<i64> = r.get(4)?;
        let row = Row {
            kind: "session",
            offset: offset_of(created),
            fields: vec![
                Field::Str("id", Some(id.clone())),
                Field::Str("root", Some(root)),
                Field::Str("parent_id", r.get(1)?),
                Field::Int("time_created", created),
                Field::Int("time_updated", updated),
            ],
            id: id.clone(),
            data,
        };
        rows.push((offset_of(updated), 0, row));
    }
    let (t, ids_m) = past(since.map(|p| &p.message));
    let mut stmt = conn.prepare(
        "SELECT id, session_id, role, parts, model, created_at, updated_at, finished_at \
         FROM messages \
         WHERE updated_at > ?1 OR (updated_at = ?1 AND id NOT IN (SELECT value FROM json_each(?2))) \
         ORDER BY created_at, id",
    )?;
    let mut q = stmt.query(rusqlite::params![t, ids_m])?;
    let mut messages: Vec<(String, Row)> = Vec::new();
    while let Some(r) = q.next()? {
        let sid: String = r.get(1)?;
        if !wanted(&sid) {
            continue;
        }
        let created: Option<i64> = r.get(5)?;
        let updated: Option<i64> = r.get(6)?;
        let row = Row {
            kind: "message",
            offset: offset_of(updated.or(created)),
            fields: vec![
                Field::Str("id", Some(r.get(0)?)),
                Field::Str("session_id", Some(sid.clone())),
                Field::Str("root", Some(root_of(&sid))),
                Field::Str("role", r.get(2)?),
                Field::Str("model", r.get(4)?),
                Field::Int("time_created", created),
                Field::Int("time_updated", updated),
                Field::Int("finished", r.get(7)?),
            ],
            id: r.get(0)?,
            data: text(r, 3)?,
        };
        messages.push((sid, row));
    }
    if since.is_some() {
        rows.extend(messages.into_iter().map(|(_, r)| (r.offset, 1, r)));
        rows.sort_by(|a, b| (a.0, a.1, &a.2.id).cmp(&(b.0, b.1, &b.2.id)));
        for (_, _, row) in &rows {
            feed.record(row);
        }
        return Ok(());
    }
    // Conversation order: each session (roots first), then its messages.
    for (_, _, srow) in &rows {
        feed.record(srow);
        for (_, m) in messages.iter().filter(|(s, _)| *s == srow.id) {
            feed.record(m);
        }
    }
    Ok(())
}

/// Sessions of a Goose database, oldest first.
fn goose_sessions(path: &Path, limits: Limits) -> Result<Vec<String>, DbError> {
    session_ids(
        path,
        limits,
        "SELECT id FROM sessions ORDER BY created_at, id",
    )
}

/// [`read_opencode`] for Goose: `sessions` (every pass: the parser says
/// each once, and a new name) and the `messages` past the greatest id read
/// (Goose appends them), in id order; a message's `source.offset` is its id.
#[allow(clippy::too_many_arguments)]
fn read_goose(
    path: &Path,
    session: Option<&str>,
    provider: &dyn Provider,
    ctx: &FileCtx,
    cursor: &Cursor,
    limits: Limits,
    tail: Tail,
    out: &mut dyn FnMut(Event),
) -> Increment {
    let reader = RecordReader {
        path,
        provider,
        ctx,
        cursor,
        limits,
        tail,
    };
    reader.read(out, |conn, position, feed| {
        let since = if session.is_some() {
            0
        } else {
            position.message.time
        };
        goose_rows(conn, session, since, feed)
    })
}

fn goose_rows(
    conn: &Connection,
    session: Option<&str>,
    since: i64,
    feed: &mut Feed<'_>,
) -> Result<(), DbError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, description, working_dir, session_type FROM sessions \
         WHERE ?1 IS NULL OR id = ?1 ORDER BY created_at, id",
    )?;
    let mut q = stmt.query([session])?;
    while let Some(r) = q.next()? {
        let id: String = r.get(0)?;
        let name: Option<String> = r.get(1)?;
        let description: Option<String> = r.get(2)?;
        let dir: Option<String> = r.get(3)?;
        let kind: Option<String> = r.get(4)?;
        let data = serde_json::json!({
            "name": name, "description": description, "working_dir": dir, "session_type": kind,
        })
        .to_string();
        feed.record(&Row {
            kind: "session",
            offset: 0,
            fields: vec![Field::Str("id", Some(id.clone()))],
            id,
            data,
        });
    }
    let mut stmt = conn.prepare(
        "SELECT id, session_id, role, content_json, created_timestamp, metadata_json \
         FROM messages WHERE id > ?1 AND (?2 IS NULL OR session_id = ?2) ORDER BY id",
    )?;
    let mut q = stmt.query(rusqlite::params![since, session])?;
    while let Some(r) = q.next()? {
        let id: i64 = r.get(0)?;
        feed.record(&Row {
            kind: "message",
            offset: u64::try_from(id).unwrap_or(0),
            fields: vec![
                Field::Str("id", Some(id.to_string())),
                Field::Str("session_id", Some(r.get(1)?)),
                Field::Str("role", r.get(2)?),
                Field::Int("time_created", r.get(4)?),
                Field::Str("metadata", r.get(5)?),
            ],
            id: id.to_string(),
            data: text(r, 3)?,
        });
    }
    Ok(())
}
