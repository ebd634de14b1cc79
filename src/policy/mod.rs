//! The path policy (SPEC §7): every path that arrives through chat text is
//! checked here before anything is written, and re-checked at open time.
//!
//! 1. Reject empty, relative, non-UTF-8 and over-long paths, NUL bytes and
//!    `..` components before touching the filesystem.
//! 2. Canonicalize the parent directory (resolving symlinks); it must lie
//!    under an allowed root, itself canonicalized once when the policy is
//!    built. The file itself must not be a symlink, a directory, a special
//!    file, or a file with several hard links (a hard link would let a write
//!    inside a root change a file outside it).
//! 3. The destination must not overlap a [`Protected`] place — a provider
//!    root, the config file, the state, runtime or logs directory —
//!    compared as [`overlap`] describes, with the protected paths resolved
//!    again at each check (a link made since start is seen).
//! 4. [`Policy::open_append`] opens the root by its canonical path with no
//!    symlink allowed on the way, checks it is still the directory it was
//!    at start (device and inode), and opens the file beneath it with
//!    `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`
//!    ([`open`]), so a symlink swapped in after the check cannot redirect
//!    the write — with or without Landlock. Files are opened `O_APPEND` and
//!    never truncated. The writer's Landlock domain is the second wall.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

pub mod open;
pub mod overlap;

pub use self::open::{open_beneath, open_dir, Write};
pub use self::overlap::Protected;

/// Longest accepted path, in bytes (Linux `PATH_MAX` less the NUL).
pub const MAX_PATH: usize = 4095;
/// Longest accepted path component (Linux `NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyReason {
    Empty,
    Relative,
    NonUtf8,
    Nul,
    DotDot,
    TooLong,
    /// Ends in `/` or `/.`: names a directory, not a file.
    DirectorySyntax,
    NotUnderRoot,
    ParentMissing,
    ParentNotDirectory,
    Symlink,
    NotRegularFile,
    HardLinked,
    /// Inside (or containing) a place kato reads or keeps its state in.
    Protected,
    /// The export root is no longer the directory it was at start.
    RootReplaced,
    /// The filesystem answered with an unexpected error.
    Io,
}

impl DenyReason {
    pub fn explain(self) -> &'static str {
        match self {
            DenyReason::Empty => "the path is empty",
            DenyReason::Relative => "the path is not absolute",
            DenyReason::NonUtf8 => "the path is not valid UTF-8",
            DenyReason::Nul => "the path contains a NUL byte",
            DenyReason::DotDot => "the path contains a `..` component",
            DenyReason::TooLong => "the path or one of its components is too long",
            DenyReason::DirectorySyntax => "the path names a directory, not a file",
            DenyReason::NotUnderRoot => "the path is not under an allowed export root",
            DenyReason::ParentMissing => "the parent directory does not exist",
            DenyReason::ParentNotDirectory => "a parent of the path is not a directory",
            DenyReason::Symlink => "the destination is a symbolic link",
            DenyReason::NotRegularFile => "the destination is not a regular file",
            DenyReason::HardLinked => "the destination has several hard links",
            DenyReason::Protected => "kato never writes into what it reads or keeps its state in",
            DenyReason::RootReplaced => {
                "the export root was replaced since kato started (restart kato to accept it)"
            }
            DenyReason::Io => "the filesystem refused the check",
        }
    }
}

/// A refusal, with what was being checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", reason.explain(), detail)]
pub struct Denied {
    pub reason: DenyReason,
    /// The normalized path when it got that far, else the raw token (lossy).
    pub detail: String,
}

/// An allowed export root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Root {
    /// As configured.
    pub configured: PathBuf,
    /// Canonical (symlinks resolved) when the policy was built.
    pub canonical: PathBuf,
    /// Device and inode when the policy was built: the directory every
    /// open goes beneath.
    #[serde(skip)]
    id: (u64, u64),
}

/// A destination that passed the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Canonical parent joined with the file name.
    pub path: PathBuf,
    /// Index of the root it lies under.
    pub root: usize,
    /// Path relative to that root's canonical path.
    pub rel: PathBuf,
    /// Whether a file already exists there.
    pub exists: bool,
}

/// The allowed roots, canonicalized once, and the places never written.
#[derive(Debug, Clone)]
pub struct Policy {
    roots: Vec<Root>,
    /// Configured roots that could not be canonicalized (missing).
    missing: Vec<PathBuf>,
    protected: Vec<Protected>,
    hash: String,
    /// Mode given to a destination this policy's open creates.
    file_mode: u32,
}

impl Policy {
    /// Build from configured roots and the places no destination may
    /// overlap. Roots that do not exist are remembered as missing and
    /// allow nothing.
    pub fn new(configured: &[PathBuf], protected: Vec<Protected>) -> Policy {
        let mut roots = Vec::new();
        let mut missing = Vec::new();
        for c in configured {
            let found = std::fs::canonicalize(c)
                .and_then(|canonical| std::fs::metadata(&canonical).map(|m| (canonical, m)));
            match found {
                Ok((canonical, m)) if m.is_dir() => roots.push(Root {
                    configured: c.clone(),
                    canonical,
                    id: (m.dev(), m.ino()),
                }),
                _ => missing.push(c.clone()),
            }
        }
        let hash = policy_hash(&roots, &missing, &protected);
        Policy {
            roots,
            missing,
            protected,
            hash,
            file_mode: crate::config::DEFAULT_FILE_MODE,
        }
    }

    /// The daemon's policy: the export roots of `cfg`, protecting what
    /// `cfg` says kato reads and keeps its state in.
    pub fn for_config(cfg: &crate::config::Config) -> Policy {
        let mut p = Policy::new(
            &crate::sandbox::profiles::export_roots(cfg),
            cfg.protected(),
        );
        p.file_mode = cfg.file_mode;
        p
    }

    pub fn protected(&self) -> &[Protected] {
        &self.protected
    }

    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    pub fn missing_roots(&self) -> &[PathBuf] {
        &self.missing
    }

    /// Stable SHA-256 (hex) of the normalized policy.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Check a raw path token.
    // Long because: every denial rule in order, first match wins; a split would hide the order.
    pub fn check(&self, raw: &OsStr) -> Result<Target, Denied> {
        let lossy = || raw.to_string_lossy().into_owned();
        let deny = |reason, detail: String| Err(Denied { reason, detail });
        let bytes = raw.as_bytes();
        if bytes.is_empty() {
            return deny(DenyReason::Empty, String::new());
        }
        if bytes.contains(&0) {
            return deny(DenyReason::Nul, lossy());
        }
        let Some(text) = raw.to_str() else {
            return deny(DenyReason::NonUtf8, lossy());
        };
        if !text.starts_with('/') {
            return deny(DenyReason::Relative, lossy());
        }
        if bytes.len() > MAX_PATH {
            return deny(DenyReason::TooLong, format!("{} bytes", bytes.len()));
        }
        let parts: Vec<&str> = text.split('/').collect();
        if parts.contains(&"..") {
            return deny(DenyReason::DotDot, lossy());
        }
        if parts.iter().any(|p| p.len() > MAX_NAME) {
            return deny(DenyReason::TooLong, lossy());
        }
        // `//` and `/./` collapse; a trailing `/` or `/.` names a directory.
        if matches!(parts.last(), Some(&"") | Some(&".")) {
            return deny(DenyReason::DirectorySyntax, lossy());
        }
        let kept: Vec<&str> = parts
            .iter()
            .copied()
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let Some((name, dirs)) = kept.split_last() else {
            return deny(DenyReason::DirectorySyntax, lossy());
        };
        let mut parent = PathBuf::from("/");
        parent.extend(dirs);
        let normalized = parent.join(name);
        let shown = || normalized.display().to_string();

        let canon_parent = match std::fs::canonicalize(&parent) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return deny(DenyReason::ParentMissing, shown())
            }
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return deny(DenyReason::ParentNotDirectory, shown())
            }
            Err(e) => return deny(DenyReason::Io, format!("{}: {e}", shown())),
        };
        if !canon_parent.is_dir() {
            return deny(DenyReason::ParentNotDirectory, shown());
        }
        let Some((root, rel_parent)) = self.roots.iter().enumerate().find_map(|(i, r)| {
            canon_parent
                .strip_prefix(&r.canonical)
                .ok()
                .map(|rel| (i, rel))
        }) else {
            return deny(DenyReason::NotUnderRoot, shown());
        };
        let path = canon_parent.join(name);
        let rel = rel_parent.join(name);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return deny(DenyReason::NotUnderRoot, shown());
        }
        if let Some(p) = overlap::first_overlap(&self.protected, &path) {
            return deny(DenyReason::Protected, p.describe(&path));
        }
        let exists = match std::fs::symlink_metadata(&path) {
            Ok(m) => {
                let ft = m.file_type();
                if ft.is_symlink() {
                    return deny(DenyReason::Symlink, path.display().to_string());
                }
                if !ft.is_file() {
                    return deny(DenyReason::NotRegularFile, path.display().to_string());
                }
                if m.nlink() > 1 {
                    return deny(DenyReason::HardLinked, path.display().to_string());
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return deny(DenyReason::Io, format!("{}: {e}", path.display())),
        };
        Ok(Target {
            path,
            root,
            rel,
            exists,
        })
    }

    /// Open a checked target for appending (creating it when missing),
    /// re-checking with no-follow semantics beneath the root's directory,
    /// which must still be the one found at start. Returns the file and
    /// whether this call created it.
    pub fn open_append(&self, target: &Target) -> Result<(File, bool), Denied> {
        let root = self.roots.get(target.root).ok_or_else(|| Denied {
            reason: DenyReason::NotUnderRoot,
            detail: target.path.display().to_string(),
        })?;
        let shown = &target.path;
        let dir = open_dir(&root.canonical).map_err(|e| open_error(e, shown))?;
        let st = rustix::fs::fstat(&dir).map_err(|e| open_error(e, shown))?;
        if (st.st_dev, st.st_ino) != root.id {
            return Err(Denied {
                reason: DenyReason::RootReplaced,
                detail: root.canonical.display().to_string(),
            });
        }
        let (file, created) = open_beneath(dir.as_fd(), &target.rel, Write::Append)
            .map_err(|e| open_error(e, shown))?;
        if created {
            set_mode(&file, self.file_mode).map_err(|e| open_error(e, shown))?;
        }
        Ok((file, created))
    }
}

/// Give a file kato just created `mode` (exports are for people to read;
/// the process umask keeps everything else private).
pub fn set_mode(file: &File, mode: u32) -> Result<(), rustix::io::Errno> {
    rustix::fs::fchmod(file, rustix::fs::Mode::from_raw_mode(mode & 0o777))
}

/// Where a user-named output file is: its parent directory canonicalized
/// (the user's own links followed, once), joined with its name.
pub fn output_path(path: &Path) -> Result<PathBuf, Denied> {
    let denied = |reason| Denied {
        reason,
        detail: path.display().to_string(),
    };
    let Some(Component::Normal(name)) = path.components().next_back() else {
        return Err(denied(DenyReason::DirectorySyntax));
    };
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(denied(DenyReason::DirectorySyntax));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => denied(DenyReason::ParentMissing),
        io::ErrorKind::NotADirectory => denied(DenyReason::ParentNotDirectory),
        _ => denied(DenyReason::Io),
    })?;
    Ok(parent.join(name))
}

/// Open the one-shot export's output (from [`output_path`]) to be
/// replaced, creating it when missing: beneath its parent's descriptor,
/// never through a symlink.
pub fn open_output(path: &Path) -> Result<(File, bool), Denied> {
    let (dir, name) = output_dir(path)?;
    open_beneath(dir.as_fd(), name, Write::Replace).map_err(|e| open_error(e, path))
}

/// The output's parent directory (opened with no link followed) and its
/// name in it.
fn output_dir(path: &Path) -> Result<(std::os::fd::OwnedFd, &Path), Denied> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Denied {
            reason: DenyReason::DirectorySyntax,
            detail: path.display().to_string(),
        });
    };
    let dir = open_dir(parent).map_err(|e| open_error(e, path))?;
    Ok((dir, Path::new(name)))
}

/// The one-shot export's output, opened by [`open_output`] as `written`,
/// opened again to be read back (a Markdown body written before its
/// header is moved to make room for it): the same file or nothing.
pub fn reopen_output(path: &Path, written: &File) -> Result<File, Denied> {
    let (dir, name) = output_dir(path)?;
    open::reopen_beneath(dir.as_fd(), name, written).map_err(|e| open_error(e, path))
}

/// Create the directory `rel` and its missing parents beneath `base` (an
/// existing directory, canonicalized here: it comes from the
/// configuration), never through a symlink; `rel` holds plain names only.
pub fn create_dir_beneath(base: &Path, rel: &Path) -> io::Result<()> {
    let base = std::fs::canonicalize(base)?;
    let fd = open_dir(&base)?;
    if !rel.as_os_str().is_empty() {
        open::create_dirs(fd.as_fd(), rel)?;
    }
    Ok(())
}

fn open_error(e: rustix::io::Errno, shown: &Path) -> Denied {
    let reason = match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => DenyReason::Symlink,
        rustix::io::Errno::NOENT => DenyReason::ParentMissing,
        rustix::io::Errno::NOTDIR => DenyReason::ParentNotDirectory,
        rustix::io::Errno::ISDIR | rustix::io::Errno::PERM => DenyReason::NotRegularFile,
        rustix::io::Errno::MLINK => DenyReason::HardLinked,
        _ => DenyReason::Io,
    };
    Denied {
        reason,
        detail: format!("{}: {}", shown.display(), io::Error::from(e)),
    }
}

fn policy_hash(roots: &[Root], missing: &[PathBuf], protected: &[Protected]) -> String {
    #[derive(Serialize)]
    struct Normalized<'a> {
        version: u32,
        roots: Vec<&'a Path>,
        missing: Vec<&'a Path>,
        protected: Vec<&'a Path>,
    }
    let mut r: Vec<&Path> = roots.iter().map(|r| r.canonical.as_path()).collect();
    r.sort();
    let mut m: Vec<&Path> = missing.iter().map(PathBuf::as_path).collect();
    m.sort();
    let mut p: Vec<&Path> = protected.iter().map(|p| p.path.as_path()).collect();
    p.sort();
    let json = serde_json::to_vec(&Normalized {
        version: 2,
        roots: r,
        missing: m,
        protected: p,
    })
    .unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;
    use std::os::unix::fs::symlink;

    struct Tree {
        _dir: tempfile::TempDir,
        base: PathBuf,
        root: PathBuf,
        outside: PathBuf,
        policy: Policy,
    }

    /// base/root (allowed) with sub/, a symlink out, a symlink in, a
    /// hard link to an outside file; base/outside (forbidden).
    fn tree() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("sub/deep")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.md"), "x").unwrap();
        std::fs::write(root.join("existing.md"), "mine").unwrap();
        symlink(&outside, root.join("out-link")).unwrap();
        symlink(root.join("sub"), root.join("in-link")).unwrap();
        symlink(outside.join("secret.md"), root.join("file-link.md")).unwrap();
        std::fs::hard_link(outside.join("secret.md"), root.join("hard.md")).unwrap();
        std::fs::create_dir_all(root.join("fifo-dir")).unwrap();
        let policy = Policy::new(std::slice::from_ref(&root), Vec::new());
        Tree {
            _dir: dir,
            base,
            root,
            outside,
            policy,
        }
    }

    fn check(t: &Tree, raw: &str) -> Result<Target, DenyReason> {
        t.policy.check(OsStr::new(raw)).map_err(|d| d.reason)
    }

    #[test]
    fn hostile_paths_table() {
        let t = tree();
        let r = t.root.display().to_string();
        let o = t.outside.display().to_string();
        let b = t.base.display().to_string();
        let long_name = "a".repeat(256);
        let long_path = format!("{r}/{}", "d/".repeat(2100));
        use DenyReason::*;
        let cases: Vec<(String, Result<&str, DenyReason>)> = vec![
            // Allowed, normalized.
            (format!("{r}/a.md"), Ok("a.md")),
            (format!("{r}/sub/a.md"), Ok("sub/a.md")),
            (format!("{r}//sub//a.md"), Ok("sub/a.md")),
            (format!("{r}/./sub/./a.md"), Ok("sub/a.md")),
            (format!("{r}/sub/deep/a.md"), Ok("sub/deep/a.md")),
            (format!("{r}/in-link/a.md"), Ok("sub/a.md")),
            (format!("{r}/existing.md"), Ok("existing.md")),
            (format!("{r}/a b.md"), Ok("a b.md")),
            (format!("{r}/ünï.md"), Ok("ünï.md")),
            // Syntax.
            (String::new(), Err(Empty)),
            ("a.md".into(), Err(Relative)),
            ("./a.md".into(), Err(Relative)),
            ("~/a.md".into(), Err(Relative)),
            (format!(" {r}/a.md"), Err(Relative)),
            (format!("{r}/a\0.md"), Err(Nul)),
            (format!("{r}/../outside/a.md"), Err(DotDot)),
            (format!("{r}/sub/../../outside/a.md"), Err(DotDot)),
            (format!("{r}/sub/.."), Err(DotDot)),
            (format!("../{r}/a.md"), Err(Relative)),
            (format!("/..{r}/a.md"), Err(DotDot)),
            (format!("{r}/.."), Err(DotDot)),
            (format!("{r}/sub/"), Err(DirectorySyntax)),
            (format!("{r}/sub/."), Err(DirectorySyntax)),
            (format!("{r}/."), Err(DirectorySyntax)),
            (format!("{r}/"), Err(DirectorySyntax)),
            ("/".into(), Err(DirectorySyntax)),
            (format!("{r}/{long_name}.md"), Err(TooLong)),
            (long_path, Err(TooLong)),
            // Place.
            (format!("{o}/a.md"), Err(NotUnderRoot)),
            (format!("{b}/a.md"), Err(NotUnderRoot)),
            (format!("{b}/rootx/a.md"), Err(ParentMissing)),
            (format!("{r}x/a.md"), Err(ParentMissing)),
            ("/etc/passwd".into(), Err(NotUnderRoot)),
            ("/tmp/a.md".into(), Err(NotUnderRoot)),
            (format!("{r}/out-link/a.md"), Err(NotUnderRoot)),
            (format!("{r}/out-link/secret.md"), Err(NotUnderRoot)),
            (format!("{r}/missing/a.md"), Err(ParentMissing)),
            (format!("{r}/existing.md/a.md"), Err(ParentNotDirectory)),
            (r.clone(), Err(NotUnderRoot)),
            (format!("{r}/sub"), Err(NotRegularFile)),
            (format!("{r}/file-link.md"), Err(Symlink)),
            (format!("{r}/out-link"), Err(Symlink)),
            (format!("{r}/in-link"), Err(Symlink)),
            (format!("{r}/hard.md"), Err(HardLinked)),
            ("/proc/self/root/etc/passwd".into(), Err(NotUnderRoot)),
            ("/dev/null".into(), Err(NotUnderRoot)),
        ];
        assert!(cases.len() >= 40);
        for (raw, want) in cases {
            let got = check(&t, &raw);
            match (&got, &want) {
                (Ok(target), Ok(rel)) => {
                    assert_eq!(target.rel, Path::new(rel), "{raw:?}");
                    assert!(target.path.starts_with(&t.root), "{raw:?}");
                }
                (Err(g), Err(w)) => assert_eq!(g, w, "{raw:?}"),
                _ => panic!("{raw:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn proc_self_root_lands_inside_or_is_denied() {
        let t = tree();
        let raw = format!("/proc/self/root{}/via-proc.md", t.root.display());
        match t.policy.check(OsStr::new(&raw)) {
            Ok(target) => assert!(target.path.starts_with(&t.root)),
            Err(d) => assert_eq!(d.reason, DenyReason::NotUnderRoot),
        }
    }

    #[test]
    fn non_utf8_is_denied() {
        let t = tree();
        let mut raw = t.root.as_os_str().as_bytes().to_vec();
        raw.extend_from_slice(b"/\xff\xfe.md");
        let raw = std::ffi::OsString::from_vec(raw);
        assert_eq!(
            t.policy.check(&raw).map_err(|d| d.reason),
            Err(DenyReason::NonUtf8)
        );
    }

    #[test]
    fn root_that_is_a_symlink_is_canonicalized() {
        let t = tree();
        let link = t.base.join("root-link");
        symlink(&t.root, &link).unwrap();
        let p = Policy::new(std::slice::from_ref(&link), Vec::new());
        let target = p
            .check(OsStr::new(&format!("{}/a.md", link.display())))
            .unwrap();
        assert_eq!(target.path, t.root.join("a.md"));
        // And the canonical path is accepted through the symlinked root too.
        assert!(p
            .check(OsStr::new(&format!("{}/a.md", t.root.display())))
            .is_ok());
    }

    #[test]
    fn missing_roots_allow_nothing_and_change_the_hash() {
        let t = tree();
        let p = Policy::new(&[t.base.join("nope")], Vec::new());
        assert_eq!(p.missing_roots().len(), 1);
        assert_eq!(
            p.check(OsStr::new(&format!("{}/nope/a.md", t.base.display())))
                .map_err(|d| d.reason),
            Err(DenyReason::ParentMissing)
        );
        assert_ne!(p.hash(), t.policy.hash());
        assert_eq!(
            t.policy.hash(),
            Policy::new(std::slice::from_ref(&t.root), Vec::new()).hash()
        );
        assert_eq!(t.policy.hash().len(), 64);
    }

    #[test]
    fn open_appends_and_never_truncates() {
        let t = tree();
        let target = t
            .policy
            .check(OsStr::new(&format!("{}/existing.md", t.root.display())))
            .unwrap();
        let (mut f, created) = t.policy.open_append(&target).unwrap();
        assert!(!created);
        io::Write::write_all(&mut f, b"+more").unwrap();
        assert_eq!(
            std::fs::read_to_string(t.root.join("existing.md")).unwrap(),
            "mine+more"
        );

        let target = t
            .policy
            .check(OsStr::new(&format!("{}/sub/new.md", t.root.display())))
            .unwrap();
        let (_, created) = t.policy.open_append(&target).unwrap();
        assert!(created);
        let mode = std::fs::metadata(t.root.join("sub/new.md")).unwrap().mode() & 0o777;
        // Exports are for people to read (`[exports] file_mode`, default 0644).
        assert_eq!(mode, 0o644, "new files get the export mode: {mode:o}");
    }

    #[test]
    fn symlink_swapped_in_after_the_check_is_refused_at_open() {
        let t = tree();
        std::fs::create_dir_all(t.root.join("race")).unwrap();
        let target = t
            .policy
            .check(OsStr::new(&format!("{}/race/a.md", t.root.display())))
            .unwrap();
        // Swap the checked parent for a symlink to the outside.
        std::fs::remove_dir(t.root.join("race")).unwrap();
        symlink(&t.outside, t.root.join("race")).unwrap();
        let err = t.policy.open_append(&target).unwrap_err();
        assert_eq!(err.reason, DenyReason::Symlink);
        assert!(!t.outside.join("a.md").exists());

        // Same for the final component.
        let target = t
            .policy
            .check(OsStr::new(&format!("{}/sub/b.md", t.root.display())))
            .unwrap();
        symlink(t.outside.join("secret.md"), t.root.join("sub/b.md")).unwrap();
        assert_eq!(
            t.policy.open_append(&target).unwrap_err().reason,
            DenyReason::Symlink
        );
        assert_eq!(
            std::fs::read_to_string(t.outside.join("secret.md")).unwrap(),
            "x"
        );
    }

    #[test]
    fn destinations_overlapping_a_protected_place_are_refused() {
        let t = tree();
        let sessions = t.root.join("sub/deep");
        let config = t.root.join("config.toml");
        let late = t.base.join("late/root");
        let protected = vec![
            Protected::new("the claude provider root", &sessions),
            Protected::new("the config file", &config),
            Protected::new("the gemini provider root", &late),
        ];
        let p = Policy::new(std::slice::from_ref(&t.root), protected);
        let reason = |raw: &Path| {
            p.check(raw.as_os_str())
                .map(|t| t.rel)
                .map_err(|d| d.reason)
        };
        // The session file itself, anything beside it, and the config.
        for raw in [
            sessions.join("s.jsonl"),
            t.root.join("in-link/deep/s.jsonl"),
            config.clone(),
        ] {
            assert_eq!(reason(&raw), Err(DenyReason::Protected), "{raw:?}");
        }
        // A sibling of the protected directory is fine.
        assert_eq!(
            reason(&t.root.join("sub/a.md")),
            Ok(PathBuf::from("sub/a.md"))
        );
        // A provider root missing at start, linked into the root later.
        std::fs::create_dir_all(t.root.join("sub/g")).unwrap();
        assert!(reason(&t.root.join("sub/g/x.md")).is_ok());
        std::fs::create_dir_all(t.base.join("late")).unwrap();
        symlink(t.root.join("sub/g"), &late).unwrap();
        assert_eq!(
            reason(&t.root.join("sub/g/x.md")),
            Err(DenyReason::Protected)
        );
        // The message names both paths.
        let d = p.check(config.as_os_str()).unwrap_err().to_string();
        assert!(
            d.contains(&*config.to_string_lossy()) && d.contains("the config file"),
            "{d}"
        );
        // The protected places are part of the policy's hash.
        assert_ne!(p.hash(), t.policy.hash());
    }

    #[test]
    fn a_root_replaced_after_start_is_not_opened() {
        let t = tree();
        let target = t
            .policy
            .check(OsStr::new(&format!("{}/sub/a.md", t.root.display())))
            .unwrap();
        // The same path, another directory (with the same layout).
        std::fs::rename(&t.root, t.base.join("old-root")).unwrap();
        std::fs::create_dir_all(t.root.join("sub")).unwrap();
        let err = t.policy.open_append(&target).unwrap_err();
        assert_eq!(err.reason, DenyReason::RootReplaced);
        assert!(!t.root.join("sub/a.md").exists());
        // A link to the old root in its place is refused too.
        std::fs::remove_dir_all(&t.root).unwrap();
        symlink(t.base.join("old-root"), &t.root).unwrap();
        let err = t.policy.open_append(&target).unwrap_err();
        assert_eq!(err.reason, DenyReason::Symlink);
    }

    #[test]
    fn hard_link_made_after_the_check_is_refused_at_open() {
        let t = tree();
        let target = t
            .policy
            .check(OsStr::new(&format!("{}/sub/h.md", t.root.display())))
            .unwrap();
        std::fs::hard_link(t.outside.join("secret.md"), t.root.join("sub/h.md")).unwrap();
        assert_eq!(
            t.policy.open_append(&target).unwrap_err().reason,
            DenyReason::HardLinked
        );
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                }
                out.push((e.path(), m.len()));
            }
        }
        out.sort();
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever the token, an allowed write lands under the root and
        /// nothing outside the root changes.
        #[test]
        fn no_token_writes_outside_the_root(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "", ".", "..", "sub", "deep", "out-link", "in-link", "file-link.md",
                    "hard.md", "existing.md", "a.md", "b", "outside", "root", "proc",
                    "self", "secret.md", "x\u{0}y", "new.md",
                ]),
                0..7,
            ),
            absolute in proptest::bool::ANY,
            prefix_root in proptest::bool::ANY,
        ) {
            let t = tree();
            let before = snapshot(&t.outside);
            let mut raw = String::new();
            if prefix_root {
                raw.push_str(&t.root.display().to_string());
            } else if absolute {
                raw.push_str(&t.base.display().to_string());
            }
            for p in &parts {
                raw.push('/');
                raw.push_str(p);
            }
            if !absolute && !prefix_root {
                raw = raw.trim_start_matches('/').to_owned();
            }
            if let Ok(target) = t.policy.check(OsStr::new(&raw)) {
                proptest::prop_assert!(target.path.starts_with(&t.root), "{raw:?} -> {target:?}");
                if let Ok((mut f, _)) = t.policy.open_append(&target) {
                    io::Write::write_all(&mut f, b"!").unwrap();
                }
            }
            proptest::prop_assert_eq!(before, snapshot(&t.outside));
            proptest::prop_assert_eq!(std::fs::read_to_string(t.outside.join("secret.md")).unwrap(), "x");
        }
    }
}
