//! Export roots may not overlap what kato reads or keeps its state in: the
//! configuration that allows it is refused, and a destination inside such
//! a place is refused at each command, whatever the configuration said.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::harness::{append_lines as append, assistant, user, Kato, Setup};

/// A harness whose only export root is `allowed(base directory)`.
fn kato_with_export_root(allowed: impl FnOnce(&Path) -> PathBuf) -> Kato {
    let k = Kato::with(Setup {
        codex_root: true,
        exports: false,
        sandbox: "best-effort".into(),
    });
    let mut cfg = fs::read_to_string(k.path("config.toml")).unwrap();
    cfg.push_str(&format!(
        "\n[exports]\nallowed_roots = [\"{}\"]\n",
        allowed(&k.base()).display()
    ));
    fs::write(k.path("config.toml"), cfg).unwrap();
    k
}

/// `kato ARGS`: its exit code and stderr.
fn run(k: &Kato, args: &[&str]) -> (Option<i32>, String) {
    let out = k.cmd().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The reproduction: `allowed_roots` a parent of everything (the provider
/// roots, the config file, the state directory).
fn parent_of_everything() -> Kato {
    kato_with_export_root(Path::to_path_buf)
}

#[test]
fn config_validate_refuses_an_export_root_overlapping_what_kato_reads() {
    let k = parent_of_everything();
    let cfg = k.path("config.toml");
    let (code, err) = run(&k, &["config", "validate", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    let base = k.base().display().to_string();
    assert!(
        err.contains(&format!("`exports.allowed_roots` entry `{base}` contains"))
            && err.contains(&format!("`{}`", k.claude.display()))
            && err.contains("the claude provider root"),
        "{err}"
    );
    // Inside a provider root: refused too, naming both.
    let inside = k.claude.join("-home-u-proj");
    let text = fs::read_to_string(&cfg).unwrap().replace(
        &format!("[\"{base}\"]"),
        &format!("[\"{}\"]", inside.display()),
    );
    fs::write(&cfg, text).unwrap();
    let (code, err) = run(&k, &["config", "validate", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "`{}` lies inside the claude provider root",
            inside.display()
        )),
        "{err}"
    );
}

#[test]
fn self_capture_into_its_own_session_file_cannot_happen() {
    let k = parent_of_everything();
    let f = k.claude_file();
    append(&f, &[user("u1", "hello"), assistant("a1", "hi")]);
    // `::capture <its own session file>` needs a running daemon: with an
    // export root holding the session file, there is none.
    let (code, err) = run(&k, &["run"]);
    assert_eq!(code, Some(2), "kato must refuse to start: {err}");
    assert!(
        err.contains(&format!("`{}` contains", k.base().display()))
            && err.contains(&format!(
                "the claude provider root `{}`",
                k.claude.display()
            )),
        "{err}"
    );
    assert!(!k.path("state/security-audit.jsonl").exists());
    let (code, err) = run(&k, &["start"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(k.status().is_none(), "a daemon started");
}

#[test]
fn export_into_config_toml_cannot_happen() {
    let k = parent_of_everything();
    let cfg = k.path("config.toml");
    let before = fs::read(&cfg).unwrap();
    let f = k.claude_file();
    append(&f, &[user("u1", &format!("::export {}", cfg.display()))]);
    let (code, err) = run(&k, &["run"]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(fs::read(&cfg).unwrap(), before);

    // With a valid configuration, the one-shot export refuses it too.
    let k = kato_with_export_root(|base| base.join("exports"));
    let cfg = k.path("config.toml");
    let f = k.claude_file();
    append(&f, &[user("u1", "hello")]);
    let before = fs::read(&cfg).unwrap();
    let (code, err) = run(
        &k,
        &["export", f.to_str().unwrap(), "-o", cfg.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("`{}` lies inside the config file", cfg.display())),
        "{err}"
    );
    assert_eq!(fs::read(&cfg).unwrap(), before);
    let (code, err) = run(
        &k,
        &["export", f.to_str().unwrap(), "-o", f.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("claude provider root"), "{err}");
}

/// The second wall: places that come to lie inside an export root after
/// start (a provider root created as a link into it, the default config
/// location likewise) are refused by the path policy at the command, with
/// an audited reason naming them.
#[test]
fn places_linked_into_the_export_root_after_start_are_refused_at_the_command() {
    let mut k = Kato::with(Setup {
        codex_root: false,
        exports: true,
        sandbox: "best-effort".into(),
    });
    let f = k.claude_file();
    append(&f, &[user("u1", "hello")]);
    k.start();
    fs::create_dir_all(k.out("cx")).unwrap();
    symlink(k.out("cx"), &k.codex).unwrap();
    fs::create_dir_all(k.out("kdir")).unwrap();
    symlink(k.out("kdir"), k.path("home/.kato")).unwrap();
    let (cx, kdir) = (k.out("cx/x.md"), k.out("kdir/config.toml"));
    let ok = k.out("ok.md");
    append(
        &f,
        &[user(
            "u2",
            &format!(
                "::capture {}\n::export {}\n::export {}",
                cx.display(),
                kdir.display(),
                ok.display()
            ),
        )],
    );
    k.wait_for_text(&ok, "hello");
    k.stop();
    assert!(!cx.exists() && !kdir.exists());
    let denied: Vec<String> = k
        .audit()
        .iter()
        .filter(|r| r["event"] == "write.denied")
        .map(|r| r["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(
        denied[0].contains("never writes into what it reads")
            && denied[0].contains(&format!("`{}`", k.codex.display()))
            && denied[0].contains("the codex provider root"),
        "{denied:?}"
    );
    assert!(denied[1].contains("the default config file"), "{denied:?}");
}
