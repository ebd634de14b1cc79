//! What kato never writes into, and how two paths are compared for it.
//!
//! kato reads the provider roots and its config file, and keeps its own
//! state in the state, runtime and logs directories. A destination inside
//! any of them would feed kato its own output (a capture appended to the
//! session file it reads grows without end) or stop it (an export appended
//! to its config). So these are [`Protected`]:
//!
//! - at config load, no export root may overlap one, and kato's own
//!   directories may not overlap a provider root
//!   ([`crate::config::Config`]: an error naming both paths);
//! - at each command, the path policy refuses a destination that overlaps
//!   one ([`super::Policy::check`]), whatever the configuration said.
//!
//! How paths are compared ([`contains`]): `outer` contains `inner` when any
//! of these holds —
//!
//! 1. *as written*: `inner`, normalised (`.` dropped, `..` taken back), is
//!    `outer` or lies beneath it, component by component (`/a/b` is not
//!    inside `/a/bc`);
//! 2. *as resolved now* ([`resolve`]): the longest existing prefix of each
//!    path canonicalised (symbolic links followed), the part that does not
//!    exist yet appended as written — so a root reached through a link is
//!    compared where it leads, and a provider root not created yet where it
//!    will be;
//! 3. *by identity*: `outer` exists and `inner` or one of its existing
//!    ancestors is the same file (device and inode) — a bind mount shows
//!    one directory under two paths.
//!
//! Two paths overlap when either contains the other.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// A place kato reads or keeps its own state in: never a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Protected {
    /// What it is, for messages: "the claude provider root".
    pub what: String,
    /// As configured.
    pub path: PathBuf,
    /// As [`resolve`]d when this value was made.
    pub resolved: PathBuf,
}

impl Protected {
    pub fn new(what: impl Into<String>, path: &Path) -> Protected {
        Protected {
            what: what.into(),
            path: path.to_path_buf(),
            resolved: resolve(path),
        }
    }

    /// Whether `path` overlaps this place, as configured or as it resolved
    /// when this value was made (a link changed since is caught either way).
    pub fn overlaps(&self, path: &Path) -> bool {
        self.overlaps_place(&Place::of(path))
    }

    fn overlaps_place(&self, other: &Place) -> bool {
        self.places()
            .iter()
            .any(|p| p.contains(other) || other.contains(p))
    }

    /// The place as configured and, when it differs, as it resolved when
    /// this value was made; each looked at on the file system now.
    fn places(&self) -> Vec<Place> {
        let mut places = vec![Place::of(&self.path)];
        if self.resolved != self.path {
            places.push(Place::of(&self.resolved));
        }
        places
    }

    /// "`a` lies inside the claude provider root `b`", or "contains".
    pub fn describe(&self, path: &Path) -> String {
        let inner = Place::of(path);
        let how = if self.places().iter().any(|p| p.contains(&inner)) {
            "lies inside"
        } else {
            "contains"
        };
        format!(
            "`{}` {how} {} `{}`",
            path.display(),
            self.what,
            self.path.display()
        )
    }
}

/// The first of `list` that `path` overlaps.
pub fn first_overlap<'a>(list: &'a [Protected], path: &Path) -> Option<&'a Protected> {
    let place = Place::of(path);
    list.iter().find(|p| p.overlaps_place(&place))
}

/// A path looked at once, in the three ways [`contains`] compares paths:
/// as written, as resolved now, and by the identity of the resolved path
/// and of each of its existing ancestors.
struct Place {
    written: PathBuf,
    resolved: PathBuf,
    /// Device and inode of `resolved`, when it exists.
    own: Option<(u64, u64)>,
    /// Device and inode of `resolved` and of each existing ancestor.
    ancestors: Vec<(u64, u64)>,
}

impl Place {
    fn of(path: &Path) -> Place {
        let resolved = resolve(path);
        let own = identity(&resolved);
        let ancestors = resolved.ancestors().filter_map(identity).collect();
        Place {
            written: normalize(path),
            resolved,
            own,
            ancestors,
        }
    }

    /// Whether `inner` is this place or lies beneath it.
    fn contains(&self, inner: &Place) -> bool {
        inner.written.starts_with(&self.written)
            || inner.resolved.starts_with(&self.resolved)
            || self.own.is_some_and(|id| inner.ancestors.contains(&id))
    }
}

/// `.` dropped and `..` taken back, as written (no file system access).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// The longest existing prefix of `path` canonicalised (links followed),
/// the rest appended as written, then normalised.
pub fn resolve(path: &Path) -> PathBuf {
    let parts: Vec<Component> = path.components().collect();
    for keep in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..keep].iter().collect();
        if let Ok(mut out) = std::fs::canonicalize(&prefix) {
            for c in &parts[keep..] {
                out.push(c.as_os_str());
            }
            return normalize(&out);
        }
    }
    normalize(path)
}

/// Whether `inner` is `outer` or lies beneath it (see the module doc).
pub fn contains(outer: &Path, inner: &Path) -> bool {
    Place::of(outer).contains(&Place::of(inner))
}

/// Whether either path contains the other.
pub fn overlaps(a: &Path, b: &Path) -> bool {
    let (a, b) = (Place::of(a), Place::of(b));
    a.contains(&b) || b.contains(&a)
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_are_compared_as_written_resolved_and_by_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let (notes, claude) = (base.join("notes"), base.join("notes/claude"));
        std::fs::create_dir_all(&claude).unwrap();
        std::fs::create_dir_all(base.join("real")).unwrap();
        symlink(base.join("notes"), base.join("link")).unwrap();

        // As written, component by component.
        assert!(contains(&notes, &claude));
        assert!(contains(&notes, &notes));
        assert!(!contains(&claude, &notes));
        assert!(!contains(&notes, &base.join("notes-2")));
        assert!(contains(&notes, &base.join("real/../notes/x")));
        // Through a link, both ways.
        assert!(contains(&base.join("link"), &claude));
        assert!(contains(&notes, &base.join("link/claude/s.jsonl")));
        assert!(overlaps(&base.join("link/claude"), &notes));
        // Not created yet: compared where it will be.
        assert!(contains(&notes, &base.join("link/missing/deeper")));
        assert!(!overlaps(&base.join("real"), &base.join("link/missing")));
        // `..` inside the part that does not exist.
        assert_eq!(
            resolve(&base.join("link/missing/../claude")),
            base.join("notes/claude")
        );
    }

    #[test]
    fn identity_catches_what_paths_do_not() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let config = base.join("config.toml");
        std::fs::write(&config, "").unwrap();
        let twin = base.join("twin.toml");
        std::fs::hard_link(&config, &twin).unwrap();
        // A second name of the same file is the same file.
        assert!(contains(&config, &twin));
        assert!(!contains(&config, &base.join("other.toml")));
    }

    #[test]
    fn a_protected_place_names_itself_and_the_direction() {
        let p = Protected::new(
            "the claude provider root",
            Path::new("/k/h/.claude/projects"),
        );
        assert!(p.overlaps(Path::new("/k/h")));
        assert!(p.overlaps(Path::new("/k/h/.claude/projects/p/s.jsonl")));
        assert!(!p.overlaps(Path::new("/k/h/notes")));
        assert_eq!(
            p.describe(Path::new("/k/h")),
            "`/k/h` contains the claude provider root `/k/h/.claude/projects`"
        );
        assert_eq!(
            p.describe(Path::new("/k/h/.claude/projects/x.md")),
            "`/k/h/.claude/projects/x.md` lies inside the claude provider root `/k/h/.claude/projects`"
        );
    }
}
