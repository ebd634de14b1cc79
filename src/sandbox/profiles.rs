//! The stage domains of SPEC §8, one constructor per row.
//!
//! | stage | read | write | create | exec | network |
//! |---|---|---|---|---|---|
//! | [`startup`] | config | — | — | no | no |
//! | [`provider`] (watch + parse, one per provider) | its roots | — | — | no | no |
//! | [`orchestrator`] | config, state dir | state dir (tree) | in state dir | no | no |
//! | [`writer_spawner`] | export roots | — | in export roots | no | no |
//! | [`writer`] (one per destination) | its file | its file | its file only, before narrowing | no | no |
//! | [`export`] (one-shot) | session files, config | output file | output file only, before narrowing | no | no |
//!
//! The process-wide domain of the daemon is [`daemon`], the [`union`] of
//! startup, every provider, the orchestrator and the writer spawner.

use std::path::{Path, PathBuf};

use super::Domain;
use crate::config::Config;

/// `main` before the stages start: the config file only.
pub fn startup(config_file: Option<&Path>) -> Domain {
    Domain {
        read: config_file.map(Path::to_path_buf).into_iter().collect(),
        ..Domain::default()
    }
}

/// Watch + parse for one provider: read its roots, nothing else.
pub fn provider(roots: &[PathBuf]) -> Domain {
    Domain {
        read: roots.to_vec(),
        ..Domain::default()
    }
}

/// The orchestrator: read the config, own the state directory.
pub fn orchestrator(config_file: Option<&Path>, state_dir: &Path) -> Domain {
    Domain {
        read: config_file.map(Path::to_path_buf).into_iter().collect(),
        write_trees: vec![state_dir.to_path_buf()],
        ..Domain::default()
    }
}

/// A writer bound to one destination: read and write that file, nothing
/// beside it. A missing destination is created when the domain is applied,
/// under the rights of the domain the thread is still in (the writer
/// spawner's), then the thread narrows to the one file. No truncation.
pub fn writer(dest_file: &Path) -> Domain {
    Domain {
        read: vec![dest_file.to_path_buf()],
        write_files: vec![dest_file.to_path_buf()],
        ..Domain::default()
    }
}

/// The long-lived writer spawner: may create files and directories under
/// the export roots (and read them back), never remove, rename or truncate.
/// Writers it spawns inherit this domain and narrow to their file.
pub fn writer_spawner(export_roots: &[PathBuf]) -> Domain {
    Domain {
        create_in: export_roots.to_vec(),
        ..Domain::default()
    }
}

/// One-shot `kato export`: read the session's source files and the config;
/// write exactly `output` (created if missing, may be truncated: the user
/// named it), or nothing at all when the output is stdout (`None`).
pub fn export(sources: &[PathBuf], config: Option<&Path>, output: Option<&Path>) -> Domain {
    let mut read = sources.to_vec();
    read.extend(config.map(Path::to_path_buf));
    Domain {
        read,
        write_files: output.map(Path::to_path_buf).into_iter().collect(),
        truncate: output.is_some(),
        ..Domain::default()
    }
}

/// Everything any of `domains` may do (lists merged, sorted, deduplicated;
/// flags or-ed). Used for the process-wide domain.
pub fn union(domains: &[Domain]) -> Domain {
    fn merge(lists: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = lists.collect();
        v.sort();
        v.dedup();
        v
    }
    Domain {
        read: merge(domains.iter().flat_map(|d| d.read.iter().cloned())),
        write_files: merge(domains.iter().flat_map(|d| d.write_files.iter().cloned())),
        create_in: merge(domains.iter().flat_map(|d| d.create_in.iter().cloned())),
        write_trees: merge(domains.iter().flat_map(|d| d.write_trees.iter().cloned())),
        truncate: domains.iter().any(|d| d.truncate),
        exec: domains.iter().any(|d| d.exec),
        network: domains.iter().any(|d| d.network),
    }
}

/// Where writers may write: the configured `allowed_roots`, plus the
/// default export directory when it lies outside all of them.
pub fn export_roots(config: &Config) -> Vec<PathBuf> {
    let mut roots = config.allowed_roots.clone();
    if !roots.iter().any(|r| config.default_dir.starts_with(r)) {
        roots.push(config.default_dir.clone());
    }
    roots
}

/// Roots of every enabled provider.
pub fn provider_roots(config: &Config) -> Vec<PathBuf> {
    config
        .providers
        .iter()
        .filter(|p| p.enabled)
        .flat_map(|p| p.roots.iter().cloned())
        .collect()
}

/// The daemon's process-wide domain: the union of startup, every enabled
/// provider, the orchestrator and the writer spawner.
pub fn daemon(config: &Config) -> Domain {
    let cfg = config.source.as_deref();
    union(&[
        startup(cfg),
        provider(&provider_roots(config)),
        orchestrator(cfg, &config.state_dir),
        writer_spawner(&export_roots(config)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_and_orders() {
        let a = provider(&["/b".into(), "/a".into()]);
        let b = orchestrator(Some(Path::new("/etc/kato.toml")), Path::new("/s"));
        let c = writer_spawner(&["/x".into()]);
        let u = union(&[a, b, c, provider(&["/a".into()])]);
        assert_eq!(
            u.read,
            [
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/etc/kato.toml")
            ]
        );
        assert_eq!(u.write_trees, [PathBuf::from("/s")]);
        assert_eq!(u.create_in, [PathBuf::from("/x")]);
        assert!(u.write_files.is_empty());
        assert!(!u.exec && !u.network && !u.truncate);
    }

    #[test]
    fn export_to_stdout_writes_nothing() {
        let d = export(&["/s.jsonl".into()], None, None);
        assert_eq!(d.read, [PathBuf::from("/s.jsonl")]);
        assert!(d.write_files.is_empty() && d.create_in.is_empty() && d.write_trees.is_empty());
        let d = export(
            &["/s.jsonl".into()],
            Some(Path::new("/c.toml")),
            Some(Path::new("/o/out.md")),
        );
        assert_eq!(d.write_files, [PathBuf::from("/o/out.md")]);
        assert!(d.truncate);
        assert!(d.create_in.is_empty(), "no directory-wide create right");
    }

    #[test]
    fn writer_grants_its_file_only() {
        let d = writer(Path::new("/e/notes/a.md"));
        assert_eq!(d.write_files, [PathBuf::from("/e/notes/a.md")]);
        assert_eq!(d.read, [PathBuf::from("/e/notes/a.md")]);
        assert!(d.create_in.is_empty() && d.write_trees.is_empty() && !d.truncate);
    }
}
