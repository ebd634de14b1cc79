//! The deployment artefacts bind the providers' default roots: the lists in
//! systemd/kato@.service, systemd/kato-user.service (between the
//! `# BEGIN provider roots` and `# END provider roots` lines) and
//! nix/provider-roots.nix are generated from each provider's
//! `default_roots` (Cline: every candidate folder, existing or not), and
//! this test fails when they drift, so a new provider or a moved root
//! cannot be forgotten there.
//!
//! Adding a provider: register it, then regenerate the three lists with
//! `KATO_BLESS=1 cargo test --test it deploy_roots` and commit them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kato::provider::{cline::Cline, registry};

const HOME: &str = "/home/u";
const BEGIN: &str = "# BEGIN provider roots";
const END: &str = "# END provider roots";
const NIX: &str = "nix/provider-roots.nix";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every provider's default roots, relative to the home directory, in
/// registry order. Folders of other systems (macOS `Library/`) are left
/// out: the artefacts are for Linux.
fn code_roots() -> Vec<(&'static str, Vec<String>)> {
    let home = Path::new(HOME);
    let mut out = Vec::new();
    for p in registry() {
        let name = p.id().as_str();
        // Cline's default roots are the candidates that exist; a unit binds
        // all of them ("-": missing ones are skipped).
        let roots = if name == "cline" {
            Cline::candidate_roots(home)
        } else {
            p.default_roots(home)
        };
        let mut rels = Vec::new();
        for root in roots {
            let rel = root.strip_prefix(home).unwrap_or_else(|_| {
                panic!(
                    "{name}: default root {} is not under the home",
                    root.display()
                )
            });
            let rel = rel.to_string_lossy().into_owned();
            if !rel.starts_with("Library/") {
                rels.push(rel);
            }
        }
        out.push((name, rels));
    }
    out
}

/// The unit's bind lines for `prefix` (`/home/%i/`, `%h/`): quoted when a
/// path has a space, which systemd would otherwise split.
fn unit_lines(roots: &[(&str, Vec<String>)], prefix: &str) -> String {
    let mut s = String::new();
    for (_, rels) in roots {
        for r in rels {
            if r.contains(' ') {
                let _ = writeln!(s, "BindReadOnlyPaths=\"-{prefix}{r}\"");
            } else {
                let _ = writeln!(s, "BindReadOnlyPaths=-{prefix}{r}");
            }
        }
    }
    s
}

/// The unit with its generated block replaced: the comment lines right
/// after BEGIN stay, the bind lines up to END are regenerated.
fn regenerate_unit(text: &str, rel: &str, lines: &str) -> String {
    let begin = text
        .find(BEGIN)
        .unwrap_or_else(|| panic!("{rel}: no `{BEGIN}` line"));
    let end = text
        .find(END)
        .unwrap_or_else(|| panic!("{rel}: no `{END}` line"));
    assert!(begin < end, "{rel}: `{END}` before `{BEGIN}`");
    let block = &text[begin..end];
    let comments: String = block
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{}{comments}{lines}{}", &text[..begin], &text[end..])
}

fn nix_file(roots: &[(&str, Vec<String>)]) -> String {
    let mut s = String::from(
        "# kato's default provider roots, relative to the home directory: what the\n\
         # per-user instances (services.kato.instances) and the home-manager module\n\
         # bind read-only by default. Generated from the providers' default_roots\n\
         # (src/provider/*.rs) by `KATO_BLESS=1 cargo test --test it deploy_roots`,\n\
         # like the lists in systemd/kato@.service and kato-user.service; do not\n\
         # edit by hand. An empty list: no default (Aider's project folders).\n\
         {\n",
    );
    for (name, rels) in roots {
        let quoted: Vec<String> = rels.iter().map(|r| format!("\"{r}\"")).collect();
        if quoted.len() <= 2 {
            let inner = if quoted.is_empty() {
                " ".to_owned()
            } else {
                format!(" {} ", quoted.join(" "))
            };
            let _ = writeln!(s, "  {name} = [{inner}];");
        } else {
            let _ = writeln!(s, "  {name} = [");
            for q in &quoted {
                let _ = writeln!(s, "    {q}");
            }
            s.push_str("  ];\n");
        }
    }
    s.push_str("}\n");
    s
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn deploy_roots_match_the_providers() {
    let roots = code_roots();
    assert!(
        roots
            .iter()
            .any(|(n, r)| *n == "claude" && r == &[".claude/projects".to_owned()]),
        "{roots:?}"
    );
    let bless = std::env::var_os("KATO_BLESS").is_some();
    let mut stale = Vec::new();
    let mut check = |rel: &str, want: String| {
        if read(rel) != want {
            if bless {
                std::fs::write(repo(rel), &want).unwrap_or_else(|e| panic!("{rel}: {e}"));
            } else {
                stale.push(rel.to_owned());
            }
        }
    };
    for (rel, prefix) in [
        ("systemd/kato@.service", "/home/%i/"),
        ("systemd/kato-user.service", "%h/"),
    ] {
        let want = regenerate_unit(&read(rel), rel, &unit_lines(&roots, prefix));
        check(rel, want);
    }
    check(NIX, nix_file(&roots));
    assert!(
        stale.is_empty(),
        "{stale:?}: the provider roots differ from the providers' default_roots; \
         regenerate with `KATO_BLESS=1 cargo test --test it deploy_roots`"
    );
}
