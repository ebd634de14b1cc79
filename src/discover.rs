//! Discovery: finding session files under provider roots, and grouping
//! them into sessions.
//!
//! Invariant: the walk never leaves a root. Symlinks inside a root are not
//! followed (a root that is itself a symlink is resolved once), so a link
//! pointing elsewhere cannot pull foreign files into a session; Landlock
//! is the second wall.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::event::{Event, ProviderId};
use crate::provider::{FileCtx, Provider, SourceKind};
use crate::reader::{self, Limits, Tail};

/// Deepest directory level searched below a root.
pub const MAX_DEPTH: usize = 8;

/// What [`walk_tree`] reports, in walk order.
pub enum Visit<'a> {
    /// A directory, before it is listed (the daemon watches it here, so
    /// nothing created while it is listed is missed).
    Dir(&'a Path),
    /// A regular file.
    File(PathBuf),
    /// A symbolic link (never followed; reported so that a skip can be said).
    Symlink(PathBuf),
    /// A directory that could not be listed, at this depth below the root.
    Unreadable(&'a Path, io::Error, usize),
}

/// Walk the tree under `top` (which sits `depth0` levels below its root),
/// depth-bounded by [`MAX_DEPTH`], never following symlinks, entering only
/// the directories whose name `descend` accepts
/// ([`Provider::descends_into`]), entries in name order. The one walk both
/// `kato sessions`/`export` and the daemon's watch stages use.
pub fn walk_tree(
    top: &Path,
    depth0: usize,
    descend: &dyn Fn(&std::ffi::OsStr) -> bool,
    visit: &mut dyn FnMut(Visit<'_>),
) {
    let mut stack = vec![(top.to_path_buf(), depth0)];
    while let Some((dir, depth)) = stack.pop() {
        visit(Visit::Dir(&dir));
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                visit(Visit::Unreadable(&dir, e, depth));
                continue;
            }
        };
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            // `DirEntry::file_type` does not follow symlinks.
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                if depth < MAX_DEPTH && descend(&entry.file_name()) {
                    stack.push((entry.path(), depth + 1));
                }
            } else if ft.is_file() {
                visit(Visit::File(entry.path()));
            } else if ft.is_symlink() {
                visit(Visit::Symlink(entry.path()));
            }
        }
    }
}

/// One session file found under a root.
#[derive(Clone)]
pub struct Found {
    pub provider: &'static dyn Provider,
    pub path: PathBuf,
    pub ctx: FileCtx,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("provider", &self.provider.id())
            .field("path", &self.path)
            .field("ctx", &self.ctx)
            .finish()
    }
}

/// A directory that could not be read during a walk.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub error: io::Error,
}

/// Walk every enabled provider's roots (the providers of the config's
/// registry).
pub fn walk_config(config: &Config) -> (Vec<Found>, Vec<WalkProblem>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for pc in config.providers.iter().filter(|p| p.enabled) {
        let Some(p) = config.registry.get(pc.name) else {
            continue;
        };
        for root in &pc.roots {
            walk_root(p, root, &mut found, &mut problems);
        }
    }
    (found, problems)
}

/// Walk one root of one provider. A missing root is not a problem (the
/// agent may not be installed yet).
pub fn walk_root(
    provider: &'static dyn Provider,
    root: &Path,
    found: &mut Vec<Found>,
    problems: &mut Vec<WalkProblem>,
) {
    walk_tree(root, 0, &|n| provider.descends_into(n), &mut |v| match v {
        Visit::Dir(_) | Visit::Symlink(_) => {}
        Visit::Unreadable(_, e, 0) if e.kind() == io::ErrorKind::NotFound => {}
        Visit::Unreadable(dir, error, _) => problems.push(WalkProblem {
            path: dir.to_path_buf(),
            error,
        }),
        Visit::File(path) => {
            let Ok(rel) = path.strip_prefix(root) else {
                return;
            };
            if let Some(ctx) = provider.classify(rel) {
                if provider.file_source_kind(&ctx) == SourceKind::Database {
                    // One session per top-level session row.
                    match crate::database::sessions(provider, &path) {
                        Ok(ids) => found.extend(ids.into_iter().map(|id| {
                            let path = crate::database::session_path(&path, &id);
                            Found {
                                provider,
                                ctx: provider.named_file(&path),
                                path,
                            }
                        })),
                        Err(error) => problems.push(WalkProblem { path, error }),
                    }
                    return;
                }
                found.push(Found {
                    provider,
                    path,
                    ctx,
                });
            }
        }
    });
}

/// Learn a file's session id cheaply: parse records until the first event
/// that names one (reading stops there, in small steps), at most the first
/// MiB of an append-only file. Falls back to the path's hint.
pub fn identify(found: &Found, limits: Limits) -> String {
    // The first session id that the records name themselves; early records
    // without one (snapshots, summaries) carry the path's hint instead.
    let hint = &found.ctx.session_hint;
    if found.provider.file_source_kind(&found.ctx) == SourceKind::Database {
        if !hint.is_empty() {
            // A session of a database is named by its row.
            return hint.clone();
        }
        // A whole database: the session its read delivers first, asked of
        // the database rather than read (an export would read it twice).
        // One it cannot answer is read, and says why in the export.
        if let Ok(first) = crate::database::first_session(found.provider, &found.path, limits) {
            return first.unwrap_or_else(|| hint.clone());
        }
    }
    let first: std::cell::OnceCell<String> = std::cell::OnceCell::new();
    let mut take = |ev: Event| {
        if *ev.session_id != **hint {
            // Only the first is kept: a later id does not replace it.
            let _ = first.set(ev.session_id.to_string());
        }
    };
    let head = match found.provider.file_source_kind(&found.ctx) {
        // Documents must be read whole; JSONL heads are enough. The reader
        // refuses the kinds it cannot read yet: the hint is kept.
        SourceKind::Document | SourceKind::DirectoryStore | SourceKind::Database => None,
        SourceKind::Jsonl | SourceKind::Lines => Some(1 << 20),
    };
    let result = match head {
        None => reader::read_path(&found.path, found.provider, limits, &mut take).map(|_| ()),
        Some(n) => fs::File::open(&found.path).and_then(|f| {
            let mut input = UntilFound {
                inner: f.take(n),
                found: &first,
            };
            let mut parser = found.provider.parser(&found.ctx);
            let mut diags = Vec::new();
            // Complete lines only: a cut line at the end of the head is held.
            reader::feed_lines(
                &mut input,
                0,
                Tail::Hold,
                limits,
                parser.as_mut(),
                &mut take,
                &mut diags,
            )
            .map(|_| ())
        }),
    };
    drop(result);
    first
        .into_inner()
        .unwrap_or_else(|| found.ctx.session_hint.clone())
}

/// A reader that hands out at most [`IDENTIFY_STEP`] bytes a call and
/// ends once `found` is set: [`identify`] reads no further than the
/// record that names the session.
struct UntilFound<'a, R> {
    inner: R,
    found: &'a std::cell::OnceCell<String>,
}

/// How much [`identify`] reads between checks.
const IDENTIFY_STEP: usize = 16 << 10;

impl<R: Read> Read for UntilFound<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.found.get().is_some() {
            return Ok(0);
        }
        let n = buf.len().min(IDENTIFY_STEP);
        self.inner.read(&mut buf[..n])
    }
}

/// Files of one session: main transcripts first, then subagent files.
#[derive(Debug, Clone)]
pub struct SessionFiles {
    pub provider: ProviderId,
    pub session_id: String,
    pub files: Vec<Found>,
}

impl SessionFiles {
    /// The main transcript (first non-subagent file), if the session has one.
    pub fn main_path(&self) -> Option<&Path> {
        self.main_file().map(|f| f.path.as_path())
    }

    /// The main transcript's [`Found`] (else the first file).
    pub fn main_file(&self) -> Option<&Found> {
        self.files
            .iter()
            .find(|f| f.ctx.subagent.is_none())
            .or(self.files.first())
    }
}

/// Longest project marker read ([`Provider::project_marker`]): a
/// registry of every project the agent knows may be long.
const MARKER_CAP: u64 = 1 << 20;

/// The project directory the agent recorded beside a session file (its
/// [`Provider::project_marker`], read by [`Provider::project_from_marker`]),
/// when that file is a regular file (not a link), short, UTF-8, and the
/// directory free of control characters. What the agent wrote, shown as it is; never guessed from
/// a directory name.
pub fn project_dir(found: &Found) -> Option<String> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = found.provider.project_folder(&found.path) {
        return Some(dir.to_string_lossy().into_owned());
    }
    let marker = found.provider.project_marker(&found.path)?;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(marker)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MARKER_CAP).read_to_string(&mut text).ok()?;
    let dir = found.provider.project_from_marker(&found.path, &text)?;
    (!dir.is_empty() && !dir.chars().any(char::is_control)).then_some(dir)
}

/// Group found files into sessions by (provider, session id).
pub fn group(found: Vec<Found>, limits: Limits) -> Vec<SessionFiles> {
    let mut map: BTreeMap<(ProviderId, String), Vec<Found>> = BTreeMap::new();
    for f in found {
        let id = identify(&f, limits);
        map.entry((f.provider.id(), id)).or_default().push(f);
    }
    map.into_iter()
        .map(|((provider, session_id), mut files)| {
            files.sort_by(|a, b| {
                (a.ctx.subagent.is_some(), &a.path).cmp(&(b.ctx.subagent.is_some(), &b.path))
            });
            SessionFiles {
                provider,
                session_id,
                files,
            }
        })
        .collect()
}

/// Guess the provider of a file named directly on the command line: by
/// the configured roots it lies under, else by its content.
pub fn provider_for_path(config: &Config, path: &Path) -> Option<&'static dyn Provider> {
    let canon = fs::canonicalize(path).ok()?;
    for pc in &config.providers {
        for root in &pc.roots {
            if let Ok(r) = fs::canonicalize(root) {
                if canon.starts_with(&r) {
                    return config.registry.get(pc.name);
                }
            }
        }
    }
    let mut head = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_end(&mut head)
        .ok()?;
    config.registry.sniff(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl";
    const B: &str = "1890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl";
    const C: &str = "2890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl";

    #[test]
    fn sniffs_every_real_first_line_shape() {
        let cases = [
            (
                r#"{"type":"file-history-snapshot","messageId":"x"}"#,
                "claude",
            ),
            (
                r#"{"type":"summary","summary":"s","leafUuid":"l"}"#,
                "claude",
            ),
            (r#"{"type":"user","sessionId":"s"}"#, "claude"),
            (
                r#"{"timestamp":"t","type":"session_meta","payload":{}}"#,
                "codex",
            ),
            (
                r#"{"id":"x","timestamp":"t","instructions":null,"git":{}}"#,
                "codex",
            ),
            (
                "{\n  \"sessionId\": \"x\",\n  \"messages\": []\n}",
                "gemini",
            ),
            // One line with `messages`: Gemini's, though a `sessionId`
            // alone would be Claude's.
            (r#"{"sessionId":"x","messages":[]}"#, "gemini"),
            (r#"{"sessionId":"x","cwd":"/"}"#, "claude"),
            (r#"{"type":"user","uuid":"u"}"#, "claude"),
            // A Claude record type beside a key only another format
            // writes: the other format's.
            (r#"{"type":"user","payload":{}}"#, "codex"),
            (r#"{"type":"user","record_type":"state"}"#, "codex"),
            (r#"{"type":"user","sessionId":"x","messages":[]}"#, "gemini"),
            (
                r#"{"type":"session.start","data":{"sessionId":"x","copilotVersion":"1.0.10"},"id":"i"}"#,
                "copilot",
            ),
            (
                "{\n  \"sessionId\": \"x\",\n  \"startTime\": \"t\",\n  \"chatMessages\": [],\n  \"timeline\": []\n}",
                "copilot",
            ),
            // A JSON array of role-keyed messages: a Cline task history.
            (r#"[{"role":"user","content":[],"ts":1}]"#, "cline"),
            ("[\n  {\n    \"role\": \"user\"", "cline"),
        ];
        let sniff = |head: &[u8]| {
            crate::provider::registry()
                .sniff(head)
                .map(|p| p.id().as_str())
        };
        for (head, want) in cases {
            assert_eq!(sniff(head.as_bytes()), Some(want), "{head}");
        }
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(br#"{"a":1}"#), None);
        assert_eq!(
            sniff(b"{\"type\":\"user\",\"sessionId\":\"s\",\"x\":\"\xff\"}"),
            Some("claude"),
            "invalid UTF-8 in a value"
        );
    }

    #[test]
    fn walk_skips_symlinks_and_missing_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("p")).unwrap();
        fs::write(root.join("p").join(A), "{}\n").unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join(B), "{}\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join(B), root.join("p").join(C)).unwrap();
        let p = crate::provider::registry().get(ProviderId::Claude).unwrap();
        let mut found = Vec::new();
        let mut problems = Vec::new();
        walk_root(p, &root, &mut found, &mut problems);
        walk_root(p, &dir.path().join("absent"), &mut found, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        for f in &found {
            assert!(f.path.starts_with(&root), "{f:?}");
            assert!(!f.path.starts_with(root.join("link")), "{f:?}");
            assert_ne!(f.path, root.join("p").join(C));
        }
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
