//! The deployment artefacts bind the providers' default roots: the lists in
//! systemd/kato@.service, systemd/kato-user.service and
//! nix/provider-roots.nix are checked against each provider's
//! `default_roots` (Cline: every candidate folder, existing or not), so that
//! a new provider or a moved root cannot be forgotten there.
//!
//! Adding a provider: one line per root in each file named above (the
//! failure message prints them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kato::provider::{cline::Cline, registry};

const HOME: &str = "/home/u";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every provider's default roots, relative to the home directory, as
/// (provider, root). Folders of other systems (macOS `Library/`) are left
/// out: the artefacts are for Linux.
fn code_roots() -> BTreeSet<(String, String)> {
    let home = Path::new(HOME);
    let mut out = BTreeSet::new();
    for p in registry() {
        let name = p.id().as_str();
        // Cline's default roots are the candidates that exist; a unit binds
        // all of them ("-": missing ones are skipped).
        let roots = if name == "cline" {
            Cline::candidate_roots(home)
        } else {
            p.default_roots(home)
        };
        for root in roots {
            let rel = root.strip_prefix(home).unwrap_or_else(|_| {
                panic!(
                    "{name}: default root {} is not under the home",
                    root.display()
                )
            });
            let rel = rel.to_string_lossy().into_owned();
            if rel.starts_with("Library/") {
                continue;
            }
            out.insert((name.to_owned(), rel));
        }
    }
    out
}

/// The home-relative roots between the BEGIN/END markers of a unit, where
/// each line is `BindReadOnlyPaths=-<prefix><root>` (quoted when it has a
/// space).
fn unit_roots(rel: &str, prefix: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let begin = text
        .find("# BEGIN provider roots")
        .unwrap_or_else(|| panic!("{rel}: no BEGIN marker"));
    let end = text
        .find("# END provider roots")
        .unwrap_or_else(|| panic!("{rel}: no END marker"));
    let mut out = BTreeSet::new();
    for line in text[begin..end].lines() {
        let Some(value) = line.strip_prefix("BindReadOnlyPaths=") else {
            continue;
        };
        let value = value.trim_matches('"');
        let root = value
            .strip_prefix('-')
            .and_then(|v| v.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{rel}: {line} is not -{prefix}<root>"));
        assert!(
            !root.contains(' ') || line.ends_with('"'),
            "{rel}: {line}: a path with a space must be quoted"
        );
        assert!(out.insert(root.to_owned()), "{rel}: {root} bound twice");
    }
    out
}

/// `name = [ "a" "b" ];` entries of nix/provider-roots.nix (a list may span
/// lines).
fn nix_roots() -> BTreeSet<(String, String)> {
    let text =
        std::fs::read_to_string(repo("nix/provider-roots.nix")).expect("nix/provider-roots.nix");
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for entry in body.split(';') {
        let Some((name, list)) = entry.split_once('=') else {
            continue;
        };
        let name = name.trim().trim_start_matches('{').trim();
        for (i, s) in list.split('"').enumerate() {
            if i % 2 == 1 {
                out.insert((name.to_owned(), s.to_owned()));
            }
        }
    }
    out
}

fn names(set: &BTreeSet<(String, String)>) -> BTreeSet<String> {
    set.iter().map(|(_, r)| r.clone()).collect()
}

fn assert_same(
    what: &str,
    code: &BTreeSet<String>,
    listed: &BTreeSet<String>,
    line: impl Fn(&str) -> String,
) {
    let missing: Vec<String> = code.difference(listed).map(|r| line(r)).collect();
    let extra: Vec<&String> = listed.difference(code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what} differs from the providers' default roots.\nadd:\n  {}\nremove: {extra:?}",
        missing.join("\n  ")
    );
}

#[test]
fn deploy_roots_match_the_providers() {
    let code = code_roots();
    let code_names = names(&code);
    assert!(code_names.contains(".claude/projects"), "{code_names:?}");

    let quoted = |prefix: &'static str| {
        move |r: &str| {
            if r.contains(' ') {
                format!("BindReadOnlyPaths=\"-{prefix}{r}\"")
            } else {
                format!("BindReadOnlyPaths=-{prefix}{r}")
            }
        }
    };
    assert_same(
        "systemd/kato@.service",
        &code_names,
        &unit_roots("systemd/kato@.service", "/home/%i/"),
        quoted("/home/%i/"),
    );
    assert_same(
        "systemd/kato-user.service",
        &code_names,
        &unit_roots("systemd/kato-user.service", "%h/"),
        quoted("%h/"),
    );

    // The Nix list keeps the provider names too: per-provider options.
    let nix = nix_roots();
    let missing: Vec<String> = code
        .difference(&nix)
        .map(|(p, r)| format!("{p} = [ ... \"{r}\" ];"))
        .collect();
    let extra: Vec<_> = nix.difference(&code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "nix/provider-roots.nix differs from the providers' default roots.\nadd:\n  {}\nremove: {extra:?}",
        missing.join("\n  ")
    );
    // Every provider has an entry, even without default roots (aider).
    let text =
        std::fs::read_to_string(repo("nix/provider-roots.nix")).expect("nix/provider-roots.nix");
    for p in registry() {
        let name = p.id().as_str();
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} = ["))),
            "nix/provider-roots.nix: no entry for {name} (add `{name} = [ ];`)"
        );
    }
}
