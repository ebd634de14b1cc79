//! The one way kato opens or creates a destination, and the directories
//! it creates for one: always relative to a directory descriptor, never
//! through a symbolic link on any component, with no window between
//! looking and using.
//!
//! - [`open_dir`] opens a directory by its canonical path with
//!   `RESOLVE_NO_SYMLINKS`: a link swapped in anywhere on the way is refused.
//! - [`open_beneath`] opens (creating it when missing, `O_EXCL`) a file
//!   beneath such a descriptor with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
//!   | RESOLVE_NO_MAGICLINKS`; it never truncates a file it did not create,
//!   except for [`Write::Replace`] (the one-shot export's output), and
//!   refuses anything but a regular file with one link.
//! - [`create_dirs`] makes missing directories beneath a descriptor, each
//!   opened `O_NOFOLLOW` right after it is made.
//!
//! On a kernel without `openat2` (before Linux 5.6), or where a seccomp
//! filter refuses it, the same resolution is done by a walk of `O_PATH | O_NOFOLLOW` opens, one component at a time,
//! each checked to be a directory through its own descriptor. Neither way
//! depends on Landlock.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How a destination is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Read and append; an existing file is kept as it is.
    Append,
    /// Write from the start: an existing file is emptied (the one-shot
    /// export's output, which the user named).
    Replace,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Open the directory at `path` (absolute, canonical) as an `O_PATH`
/// descriptor, refusing a symbolic link on any component (`ELOOP`).
pub fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    let root = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel = path.strip_prefix("/").map_err(|_| Errno::INVAL)?;
    if rel.as_os_str().is_empty() {
        return Ok(root);
    }
    let fd = openat_beneath(
        root.as_fd(),
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    require_dir(&fd)?;
    Ok(fd)
}

/// Open `rel` beneath `dir` for writing as `how` says, creating it
/// (`O_EXCL`, mode 0600) when missing. Returns the file and whether this
/// call created it. A symbolic link on any component is `ELOOP` (or
/// `EXDEV` for an escape); a directory `EISDIR`; a special file or a file
/// with several links `EPERM`.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, how: Write) -> Result<(File, bool), Errno> {
    let access = match how {
        // Read as well: a writer verifies what a cut-off append left.
        Write::Append => OFlags::RDWR | OFlags::APPEND,
        Write::Replace => OFlags::WRONLY,
    };
    let base = access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let (fd, created) = match openat_beneath(dir, rel, base, Mode::empty()) {
        Ok(fd) => (fd, false),
        Err(Errno::NOENT) => {
            let flags = base | OFlags::CREATE | OFlags::EXCL;
            (
                openat_beneath(dir, rel, flags, Mode::from_raw_mode(0o600))?,
                true,
            )
        }
        Err(e) => return Err(e),
    };
    let st = rustix::fs::fstat(&fd)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(Errno::ISDIR),
        _ => return Err(Errno::PERM),
    }
    if st.st_nlink > 1 {
        return Err(Errno::MLINK);
    }
    // O_NONBLOCK only kept a FIFO from blocking the open; writes block.
    rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
    if how == Write::Replace && !created && st.st_size > 0 {
        rustix::fs::ftruncate(&fd, 0)?;
    }
    Ok((File::from(fd), created))
}

/// Open `rel` beneath `dir` again, to read back the file this process
/// holds as `held` (opened by [`open_beneath`]): refused with `ESTALE`
/// unless it is that very file (device and inode), so a name swapped
/// since is never read.
pub fn reopen_beneath(dir: BorrowedFd<'_>, rel: &Path, held: &File) -> Result<File, Errno> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = openat_beneath(dir, rel, flags | OFlags::NONBLOCK, Mode::empty())?;
    let (now, then) = (rustix::fs::fstat(&fd)?, rustix::fs::fstat(held)?);
    if (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino) {
        return Err(Errno::STALE);
    }
    Ok(File::from(fd))
}

/// Make each missing directory of `rel` beneath `dir` (mode 0700) and
/// return a descriptor of the last. An existing component must be a
/// directory, not a link to one.
pub fn create_dirs(dir: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd, Errno> {
    let mut cur = rustix::io::dup(dir)?;
    for name in normal_components(rel)? {
        match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
        cur = step(cur.as_fd(), name)?;
    }
    Ok(cur)
}

/// `openat2` beneath `dir` with no link followed; the component walk
/// where the kernel has no `openat2` (`ENOSYS`) or a seccomp filter of an
/// older container runtime refuses it (`EPERM`): the walk is as strict.
fn openat_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    match rustix::fs::openat2(dir, rel, flags, mode, RESOLVE) {
        Err(Errno::NOSYS | Errno::PERM) => walk_beneath(dir, rel, flags, mode),
        r => r,
    }
}

/// The same resolution as [`openat_beneath`] without `openat2`: every
/// directory component opened `O_PATH | O_NOFOLLOW` from the previous
/// one's descriptor and checked to be a directory, the last opened
/// `O_NOFOLLOW`.
pub(super) fn walk_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let names = normal_components(rel)?;
    let Some((last, dirs)) = names.split_last() else {
        return Err(Errno::INVAL);
    };
    let mut cur = rustix::io::dup(dir)?;
    for name in dirs {
        cur = step(cur.as_fd(), name)?;
    }
    let fd = rustix::fs::openat(&cur, *last, flags | OFlags::NOFOLLOW, mode)?;
    if flags.contains(OFlags::PATH) {
        // O_PATH | O_NOFOLLOW opens a link itself rather than failing.
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Symlink {
            return Err(Errno::LOOP);
        }
    }
    Ok(fd)
}

/// One directory down from `dir`, never through a link.
fn step(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    require_dir(&fd)?;
    Ok(fd)
}

fn require_dir(fd: &OwnedFd) -> Result<(), Errno> {
    match FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode) {
        FileType::Directory => Ok(()),
        FileType::Symlink => Err(Errno::LOOP),
        _ => Err(Errno::NOTDIR),
    }
}

/// The names of `rel`; anything but a plain name (`/`, `.`, `..`) is
/// refused as an escape.
fn normal_components(rel: &Path) -> Result<Vec<&OsStr>, Errno> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(Errno::XDEV),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::fs::symlink;

    struct Tree {
        _tmp: tempfile::TempDir,
        root: std::path::PathBuf,
        outside: std::path::PathBuf,
    }

    /// root/sub/, root/link -> outside/, outside/.
    fn tree() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, root.join("link")).unwrap();
        Tree {
            _tmp: tmp,
            root,
            outside,
        }
    }

    fn empty(dir: &Path) -> bool {
        std::fs::read_dir(dir).unwrap().next().is_none()
    }

    #[test]
    fn a_symlinked_parent_is_refused_by_the_open_itself() {
        let t = tree();
        let dir = open_dir(&t.root).unwrap();
        for how in [Write::Append, Write::Replace] {
            let e = open_beneath(dir.as_fd(), Path::new("link/a.md"), how).unwrap_err();
            assert!(matches!(e, Errno::LOOP | Errno::XDEV), "{e:?}");
        }
        // The walk used without openat2 refuses it the same way.
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let e = walk_beneath(
            dir.as_fd(),
            Path::new("link/a.md"),
            flags,
            Mode::from_raw_mode(0o600),
        )
        .unwrap_err();
        assert_eq!(e, Errno::LOOP);
        // And a link as the root's own path, or on the way to it.
        assert_eq!(open_dir(&t.root.join("link")).unwrap_err(), Errno::LOOP);
        assert!(open_dir(&t.root.join("link/x")).is_err());
        assert!(empty(&t.outside), "nothing may appear outside");
    }

    #[test]
    fn the_walk_opens_and_creates_like_openat2() {
        let t = tree();
        let dir = open_dir(&t.root).unwrap();
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let fd = walk_beneath(
            dir.as_fd(),
            Path::new("sub/a.md"),
            flags,
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        File::from(fd).write_all(b"x").unwrap();
        assert_eq!(std::fs::read(t.root.join("sub/a.md")).unwrap(), b"x");
        let e = walk_beneath(
            dir.as_fd(),
            Path::new("../outside/a.md"),
            flags,
            Mode::empty(),
        )
        .unwrap_err();
        assert_eq!(e, Errno::XDEV);
        symlink(t.outside.join("f"), t.root.join("sub/l.md")).unwrap();
        let e = walk_beneath(
            dir.as_fd(),
            Path::new("sub/l.md"),
            OFlags::WRONLY,
            Mode::empty(),
        )
        .unwrap_err();
        assert_eq!(e, Errno::LOOP);
        assert!(empty(&t.outside));
    }

    #[test]
    fn replace_empties_only_a_plain_file_and_append_keeps_it() {
        let t = tree();
        let dir = open_dir(&t.root).unwrap();
        std::fs::write(t.root.join("sub/old.md"), "old").unwrap();
        let (mut f, created) =
            open_beneath(dir.as_fd(), Path::new("sub/old.md"), Write::Append).unwrap();
        assert!(!created);
        f.write_all(b"+").unwrap();
        assert_eq!(std::fs::read(t.root.join("sub/old.md")).unwrap(), b"old+");
        let (_, created) =
            open_beneath(dir.as_fd(), Path::new("sub/old.md"), Write::Replace).unwrap();
        assert!(!created);
        assert_eq!(std::fs::read(t.root.join("sub/old.md")).unwrap(), b"");
        std::fs::write(t.outside.join("keep"), "keep").unwrap();
        std::fs::hard_link(t.outside.join("keep"), t.root.join("hard.md")).unwrap();
        let e = open_beneath(dir.as_fd(), Path::new("hard.md"), Write::Replace).unwrap_err();
        assert_eq!(e, Errno::MLINK);
        assert_eq!(std::fs::read(t.outside.join("keep")).unwrap(), b"keep");
        let e = open_beneath(dir.as_fd(), Path::new("sub"), Write::Append).unwrap_err();
        assert_eq!(e, Errno::ISDIR);
    }

    #[test]
    fn create_dirs_makes_what_is_missing_and_never_follows_a_link() {
        let t = tree();
        let dir = open_dir(&t.root).unwrap();
        create_dirs(dir.as_fd(), Path::new("sub/a/b")).unwrap();
        assert!(t.root.join("sub/a/b").is_dir());
        create_dirs(dir.as_fd(), Path::new("sub/a/b")).unwrap();
        assert_eq!(
            create_dirs(dir.as_fd(), Path::new("link/new")).unwrap_err(),
            Errno::LOOP
        );
        assert!(empty(&t.outside));
    }
}
