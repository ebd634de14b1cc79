//! The stage domains of SPEC §8, one constructor per row.
//!
//! | stage | read | write | create | exec | network |
//! |---|---|---|---|---|---|
//! | [`startup`] | config | — | — | no | no |
//! | [`provider`] (watch + parse, one per provider) | its roots | — | — | no | no |
//! | [`orchestrator`] | config, state dir, runtime dir | state dir, runtime dir (trees) | in them | no | no |
//! | [`writer_spawner`] | export roots | — | in export roots | no | no |
//! | [`log_writer`] (detached daemon) | logs dir | logs dir (tree) | in it | no | no |
//! | [`signals`] | — | — | — | no | no |
//! | [`writer`] (one per destination) | its file | its file | its file only, before narrowing | no | no |
//! | [`export`] (one-shot) | session files, config | output file | output file only, before narrowing | no | no |
//!
//! The process-wide domain of the daemon is [`daemon`], the [`union`] of
//! startup, every provider, the orchestrator, the writer spawner and the
//! log writer. What `kato run` applies is [`supervisor`]: the same union,
//! with a provider root missing at start replaced by its nearest existing
//! ancestor (granted to the supervising main thread only, see
//! [`AncestorGrant`]).

use std::path::{Path, PathBuf};

use super::Domain;
use crate::config::Config;
use crate::provider::Provider;

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

/// Watch + parse for `provider`: read `roots` (directories that exist),
/// except a root the provider narrows ([`Provider::reach`]): that one is
/// listed, and only the paths the provider names beneath it are read.
pub fn provider_reach(provider: &dyn Provider, roots: &[PathBuf]) -> Domain {
    let mut d = Domain::default();
    for root in roots {
        match provider.reach(root).filter(|_| root.is_dir()) {
            Some(paths) => {
                d.list.push(root.clone());
                d.read.extend(paths);
            }
            None => d.read.push(root.clone()),
        }
    }
    d
}

/// Reading every enabled provider's roots, each narrowed as
/// [`provider_reach`] does (`kato sessions`, `search`, `sync`, the
/// sessions an export resolves).
pub fn providers_reach(config: &Config) -> Domain {
    let domains: Vec<Domain> = config
        .providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| match config.registry.get(p.name) {
            Some(prov) => provider_reach(prov, &p.roots),
            None => provider(&p.roots),
        })
        .collect();
    union(&domains)
}

/// The orchestrator: read the config, own the state directory and the
/// runtime directory (`status.json`).
pub fn orchestrator(config_file: Option<&Path>, state_dir: &Path, runtime_dir: &Path) -> Domain {
    let mut write_trees = vec![state_dir.to_path_buf(), runtime_dir.to_path_buf()];
    write_trees.sort();
    write_trees.dedup();
    Domain {
        read: config_file.map(Path::to_path_buf).into_iter().collect(),
        write_trees,
        ..Domain::default()
    }
}

/// The log writer of a detached daemon: owns the logs directory
/// (`kato.log` and its rotations).
pub fn log_writer(logs_dir: &Path) -> Domain {
    Domain {
        write_trees: vec![logs_dir.to_path_buf()],
        ..Domain::default()
    }
}

/// The signal relay: no file system access at all.
pub fn signals() -> Domain {
    Domain::default()
}

/// A writer bound to one destination: read and write that file, nothing
/// beside it. The destination exists by then: the writer-spawner created
/// it, in its own domain, through the path policy's no-follow open
/// ([`crate::writer::spawn`]). No truncation.
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

/// `kato sync` writing its tree: own the target directory (create,
/// replace by rename, remove its own temporary files) and nothing else.
pub fn sync_dir(root: &Path) -> Domain {
    Domain {
        read: vec![root.to_path_buf()],
        write_trees: vec![root.to_path_buf()],
        ..Domain::default()
    }
}

/// The daemon's autosync stage: read the enabled providers' roots (and
/// the project markers beside them), own the sync tree.
pub fn sync_stage(config: &Config, root: &Path) -> Domain {
    // The whole roots: this stage lives as long as the daemon, and a
    // database's `-wal` created after it started could not be read with
    // per-file rules (`provider_reach`) without starting it again.
    let mut read = provider_roots(config);
    read.extend(crate::cli::markers_beside(config));
    union(&[provider(&read), sync_dir(root)])
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
        list: merge(domains.iter().flat_map(|d| d.list.iter().cloned())),
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

/// The daemon's process-wide domain as configured: the union of startup,
/// every enabled provider, the orchestrator, the writer spawner and the
/// log writer.
pub fn daemon(config: &Config) -> Domain {
    let cfg = config.source.as_deref();
    union(&[
        startup(cfg),
        provider(&provider_roots(config)),
        orchestrator(cfg, &config.state_dir, &config.runtime_dir),
        writer_spawner(&export_roots(config)),
        log_writer(&config.logs_dir),
        sync_tree(config),
    ])
}

/// The autosync tree, when `[sync]` configures one.
fn sync_tree(config: &Config) -> Domain {
    match &config.sync {
        Some(s) => sync_dir(&s.root()),
        None => Domain::default(),
    }
}

/// A provider root that did not exist when the supervisor's domain was
/// built, and the existing ancestor granted (read) in its place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AncestorGrant {
    pub root: PathBuf,
    pub granted: PathBuf,
}

/// The nearest existing directory above `path` (`/` at worst).
pub fn nearest_existing_ancestor(path: &Path) -> PathBuf {
    path.ancestors()
        .skip(1)
        .find(|a| a.is_dir())
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

/// What `kato run` applies to its main thread, the supervisor that creates
/// every stage thread: [`daemon`], except that the logs directory is only
/// included when `detached`, and a provider root that does not exist yet
/// is replaced by its nearest existing ancestor. Landlock rules need an
/// existing path, and domains only narrow: without the ancestor, a stage
/// started after the root appears could never read it. No stage ever gets
/// an ancestor: each narrows to the roots that exist when it starts.
pub fn supervisor(config: &Config, detached: bool) -> (Domain, Vec<AncestorGrant>) {
    let cfg = config.source.as_deref();
    let mut read = Vec::new();
    let mut grants = Vec::new();
    for root in provider_roots(config) {
        if root.is_dir() {
            read.push(root);
        } else {
            let granted = nearest_existing_ancestor(&root);
            read.push(granted.clone());
            grants.push(AncestorGrant { root, granted });
        }
    }
    let mut parts = vec![
        startup(cfg),
        provider(&read),
        orchestrator(cfg, &config.state_dir, &config.runtime_dir),
        writer_spawner(&export_roots(config)),
        sync_tree(config),
    ];
    if detached {
        parts.push(log_writer(&config.logs_dir));
    }
    (union(&parts), grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_and_orders() {
        let a = provider(&["/b".into(), "/a".into()]);
        let b = orchestrator(
            Some(Path::new("/etc/kato.toml")),
            Path::new("/s"),
            Path::new("/s"),
        );
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
    fn the_supervisor_reads_the_ancestor_of_a_missing_root_only() {
        let tmp = tempfile::tempdir().unwrap();
        let here = tmp.path().join("here");
        std::fs::create_dir(&here).unwrap();
        let others: String = crate::provider::registry()
            .iter()
            .map(|p| p.id().as_str())
            .filter(|n| !matches!(*n, "claude" | "codex"))
            .map(|n| format!("[providers.{n}]\nenabled = false\n"))
            .collect();
        let toml = format!(
            "[providers.claude]\nroots = [\"{0}/here\"]\n[providers.codex]\nroots = [\"{0}/a/b/c\"]\n\
             {others}[state]\ndir = \"{0}/state\"\n",
            tmp.path().display()
        );
        let env = crate::config::Env {
            home: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let cfg = Config::from_toml(&toml, None, &env).unwrap();
        let (d, grants) = supervisor(&cfg, false);
        assert_eq!(
            grants,
            [AncestorGrant {
                root: tmp.path().join("a/b/c"),
                granted: tmp.path().to_path_buf(),
            }]
        );
        assert!(d.read.contains(&here) && d.read.contains(&tmp.path().to_path_buf()));
        assert!(!d.write_trees.contains(&cfg.logs_dir));
        assert!(supervisor(&cfg, true).0.write_trees.contains(&cfg.logs_dir));
        // The configured policy names the root itself.
        assert!(daemon(&cfg).read.contains(&tmp.path().join("a/b/c")));
    }

    #[test]
    fn writer_grants_its_file_only() {
        let d = writer(Path::new("/e/notes/a.md"));
        assert_eq!(d.write_files, [PathBuf::from("/e/notes/a.md")]);
        assert_eq!(d.read, [PathBuf::from("/e/notes/a.md")]);
        assert!(d.create_in.is_empty() && d.write_trees.is_empty() && !d.truncate);
    }
}
