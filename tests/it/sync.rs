//! `kato sync`, the daemon's autosync, `kato clean` and the modes of the
//! files kato writes, through the real binary on temporary trees.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{append_lines, assistant_in, user_in, Kato, Setup, S};

const S2: &str = "5b1e3c2a-9d4f-4e6a-8b7c-0123456789ab";

/// A kato tree with two Claude sessions in project `proj` and a sync
/// target `sync/` (not created).
fn setup() -> Kato {
    let k = Kato::with(Setup {
        codex_root: false,
        exports: true,
        sandbox: std::env::var("KATO_TEST_SANDBOX").unwrap_or_else(|_| "enforce".into()),
    });
    append_lines(
        &k.claude_file(),
        &[
            user_in(S, "u-1", "Refactor the parser please"),
            assistant_in(S, "a-1", "Done: the parser is refactored."),
        ],
    );
    append_lines(
        &second_file(&k),
        &[
            user_in(S2, "v-1", "Deploy the service"),
            assistant_in(S2, "b-1", "Deployed."),
        ],
    );
    k
}

fn second_file(k: &Kato) -> PathBuf {
    k.claude.join(format!("-home-u-proj/{S2}.jsonl"))
}

fn sync(k: &Kato, extra: &[&str]) -> (Value, std::process::Output) {
    let dir = k.path("sync");
    let mut args = vec!["sync", "-o", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = k.kato(&args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (v, out)
}

fn item<'a>(v: &'a Value, session: &str) -> &'a Value {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["session_id"] == session)
        .unwrap_or_else(|| panic!("{session} not in {v:#}"))
}

fn output_of(k: &Kato, v: &Value, session: &str) -> PathBuf {
    k.path("sync")
        .join(item(v, session)["output"].as_str().unwrap())
}

/// Every file under `dir`, relative, with its content.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn sync_twice_is_a_no_op_the_second_time_and_reads_no_session() {
    let k = setup();
    let (first, out) = sync(&k, &[]);
    assert!(out.status.success(), "{first:#}");
    assert_eq!(
        (first["written"].as_u64(), first["parsed"].as_u64()),
        (Some(2), Some(2))
    );
    let md = output_of(&k, &first, S);
    assert_eq!(
        md.strip_prefix(k.path("sync")).unwrap().parent().unwrap(),
        Path::new("home-u-proj")
    );
    let name = md.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("2026-01-08-claude-refactor-the-parser-please-0890bead")
            && name.ends_with(".md"),
        "{name}"
    );
    // The same document `kato export` writes.
    let export = k.kato(&["export", S]);
    assert!(export.status.success());
    assert_eq!(fs::read(&md).unwrap(), export.stdout);
    let before = tree(&k.path("sync"));
    let inode = fs::metadata(&md).unwrap().ino();

    // The session files cannot be read any more (kato runs without
    // capabilities): an unchanged tree is matched from metadata alone.
    for f in [k.claude_file(), second_file(&k)] {
        fs::set_permissions(&f, fs::Permissions::from_mode(0o000)).unwrap();
    }
    let (second, out) = sync(&k, &[]);
    assert!(out.status.success(), "{second:#}");
    // No parse work: nothing read, nothing rendered, nothing written.
    for (key, want) in [
        ("unchanged", 2),
        ("written", 0),
        ("updated", 0),
        ("parsed", 0),
        ("events", 0),
        ("bytes_read", 0),
        ("bytes_written", 0),
    ] {
        assert_eq!(second[key].as_u64(), Some(want), "{key}: {second:#}");
    }
    assert_eq!(tree(&k.path("sync")), before);
    assert_eq!(fs::metadata(&md).unwrap().ino(), inode);
}

#[test]
fn a_grown_session_is_rewritten_in_place_atomically_and_only_it() {
    let k = setup();
    let (first, _) = sync(&k, &[]);
    let md = output_of(&k, &first, S);
    let other = output_of(&k, &first, S2);
    let (inode, other_inode) = (
        fs::metadata(&md).unwrap().ino(),
        fs::metadata(&other).unwrap().ino(),
    );
    append_lines(
        &k.claude_file(),
        &[user_in(S, "u-2", "And add a test for it")],
    );
    let (v, out) = sync(&k, &[]);
    assert!(out.status.success());
    assert_eq!(
        (v["updated"].as_u64(), v["unchanged"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(v["parsed"].as_u64(), Some(1));
    assert_eq!(item(&v, S)["action"], "update");
    // The same name; a new file renamed over the old one (never a
    // half-written file in place); the other output untouched.
    assert_eq!(output_of(&k, &v, S), md);
    assert!(fs::read_to_string(&md)
        .unwrap()
        .contains("And add a test for it"));
    assert_ne!(fs::metadata(&md).unwrap().ino(), inode);
    assert_eq!(fs::metadata(&other).unwrap().ino(), other_inode);
    let leftovers: Vec<_> = tree(&k.path("sync"))
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("kato-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let manifest: Value =
        serde_json::from_slice(&fs::read(k.path("sync/.kato-sync.json")).unwrap()).unwrap();
    let entry = manifest["entries"]
        .as_object()
        .unwrap()
        .values()
        .find(|e| e["session_id"] == S)
        .unwrap();
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        sha256_hex(&fs::read(&md).unwrap())
    );
    assert_eq!(
        entry["cursor"].as_u64(),
        Some(fs::metadata(k.claude_file()).unwrap().len())
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn an_edited_output_is_left_alone_and_reported() {
    let k = setup();
    let (first, _) = sync(&k, &[]);
    let md = output_of(&k, &first, S);
    let edited = format!("{}\nmy own notes\n", fs::read_to_string(&md).unwrap());
    fs::write(&md, &edited).unwrap();
    append_lines(&k.claude_file(), &[user_in(S, "u-3", "one more thing")]);
    let (v, out) = sync(&k, &[]);
    // Reported, not an error.
    assert!(out.status.success());
    assert_eq!(v["conflicts"].as_u64(), Some(1));
    let it = item(&v, S);
    assert_eq!(it["action"], "conflict");
    assert!(
        it["reason"]
            .as_str()
            .unwrap()
            .contains("changed since kato wrote it"),
        "{it}"
    );
    assert_eq!(fs::read_to_string(&md).unwrap(), edited);
    // Without --json it is said on stderr.
    let out = k.kato(&["sync", "-o", k.path("sync").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(S) && err.contains("left alone"), "{err}");
    assert_eq!(fs::read_to_string(&md).unwrap(), edited);
}

#[test]
fn sync_removes_nothing_and_overwrites_nothing_it_did_not_create() {
    let k = setup();
    // Someone's files, one of them where a session's output would go.
    let (dry, _) = sync(&k, &["--dry-run"]);
    let planned = output_of(&k, &dry, S2);
    fs::create_dir_all(planned.parent().unwrap()).unwrap();
    fs::write(&planned, "a person's file\n").unwrap();
    fs::write(k.path("sync/README.txt"), "mine\n").unwrap();
    let (v, out) = sync(&k, &[]);
    assert!(out.status.success());
    assert_eq!(item(&v, S2)["action"], "conflict");
    assert!(item(&v, S2)["reason"]
        .as_str()
        .unwrap()
        .contains("did not write"));
    assert_eq!(fs::read_to_string(&planned).unwrap(), "a person's file\n");
    assert_eq!(
        fs::read_to_string(k.path("sync/README.txt")).unwrap(),
        "mine\n"
    );
    // A session whose files are gone: its output stays.
    let md = output_of(&k, &v, S);
    fs::remove_file(k.claude_file()).unwrap();
    let (v, out) = sync(&k, &[]);
    assert!(out.status.success());
    assert!(md.is_file());
    assert!(v["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["session_id"] != S));
}

#[test]
fn layouts_and_prefix_place_files_as_documented() {
    let k = setup();
    let (v, _) = sync(&k, &["--layout", "by-date", "--prefix", "laptop"]);
    let rel = item(&v, S)["output"].as_str().unwrap().to_owned();
    assert!(rel.starts_with("2026/01/2026-01-08-claude-"), "{rel}");
    assert!(k.path("sync/laptop").join(&rel).is_file());
    assert!(k.path("sync/laptop/.kato-sync.json").is_file());
    let k = setup();
    let (v, _) = sync(&k, &["--layout", "flat", "--format", "jsonl"]);
    let rel = item(&v, S)["output"].as_str().unwrap().to_owned();
    assert!(!rel.contains('/') && rel.ends_with(".jsonl"), "{rel}");
    let text = fs::read_to_string(k.path("sync").join(&rel)).unwrap();
    assert!(text.lines().all(|l| l.contains("\"schema_version\"")));
    // A name once given stays, whatever the layout asked later.
    let (v, _) = sync(&k, &["--layout", "by-project", "--format", "jsonl"]);
    assert_eq!(item(&v, S)["output"].as_str().unwrap(), rel);
    assert_eq!(item(&v, S)["action"], "unchanged");
}

#[test]
fn dry_run_json_says_what_would_be_written_and_writes_nothing() {
    let k = setup();
    let (v, out) = sync(&k, &["--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["written"].as_u64(), Some(2));
    assert_eq!(item(&v, S)["action"], "write");
    assert_eq!(item(&v, S)["reason"], "new session");
    assert!(!k.path("sync").exists());
    // Filters: a provider with no session, a date after every change.
    let (v, _) = sync(&k, &["--dry-run", "--provider", "codex"]);
    assert_eq!(v["sessions"].as_u64(), Some(0));
    let (v, _) = sync(&k, &["--dry-run", "--since", "2999-01-01"]);
    assert_eq!(v["sessions"].as_u64(), Some(0));
    let out = k.kato(&["sync", "-o", "x", "--since", "last week"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sync_refuses_a_directory_overlapping_what_kato_reads() {
    let k = setup();
    for dir in [k.claude.join("out"), k.path("state/sync"), k.base()] {
        let out = k.kato(&["sync", "-o", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", dir.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("refusing to sync into"), "{err}");
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn exports_and_synced_files_are_0644_and_state_stays_private() {
    let k = setup();
    let (v, _) = sync(&k, &[]);
    let md = output_of(&k, &v, S);
    assert_eq!(mode(&md), 0o644);
    assert_eq!(mode(md.parent().unwrap()), 0o755);
    assert_eq!(mode(&k.path("sync")), 0o755);
    assert_eq!(mode(&k.path("sync/.kato-sync.json")), 0o600);
    let out_file = k.out("one.md");
    assert!(k
        .kato(&["export", S, "-o", out_file.to_str().unwrap()])
        .status
        .success());
    assert_eq!(mode(&out_file), 0o644);
    // An existing file keeps its mode.
    fs::set_permissions(&out_file, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(k
        .kato(&["export", S, "-o", out_file.to_str().unwrap()])
        .status
        .success());
    assert_eq!(mode(&out_file), 0o600);
    // Configured.
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap();
    let with_mode = cfg.replace("[exports]\n", "[exports]\nfile_mode = \"0640\"\n");
    fs::write(k.path("config.toml"), &with_mode).unwrap();
    let other = k.out("two.md");
    assert!(k
        .kato(&["export", S, "-o", other.to_str().unwrap()])
        .status
        .success());
    assert_eq!(mode(&other), 0o640);
    for bad in ["0755", "0666", "rw-r--r--", "0400", "01644"] {
        fs::write(
            k.path("config.toml"),
            cfg.replace(
                "[exports]\n",
                &format!("[exports]\nfile_mode = \"{bad}\"\n"),
            ),
        )
        .unwrap();
        let out = k.kato(&["config", "validate"]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("file_mode"),
            "{bad}"
        );
    }
}

/// `[sync]` turned on in the test config.
fn with_autosync(k: &Kato) {
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap();
    fs::write(
        k.path("config.toml"),
        format!(
            "{cfg}\n[sync]\ndir = \"{}\"\nlayout = \"flat\"\nproviders = [\"claude\"]\n",
            k.path("sync").display()
        ),
    )
    .unwrap();
}

#[test]
fn the_daemon_keeps_the_synced_tree_current_and_audits_it() {
    let mut k = setup();
    with_autosync(&k);
    k.run_fg();
    let st = k.wait("a first autosync pass", |s| {
        s["sync"]["passes"].as_u64() >= Some(1) && s["sync"]["written"].as_u64() == Some(2)
    });
    assert_eq!(st["sync"]["layout"], "flat");
    let files: Vec<PathBuf> = tree(&k.path("sync"))
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let md = k.path("sync").join(
        files
            .iter()
            .find(|p| p.to_string_lossy().contains("refactor"))
            .unwrap(),
    );
    assert_eq!(mode(&md), 0o644);
    append_lines(
        &k.claude_file(),
        &[user_in(S, "u-9", "grown while the daemon runs")],
    );
    k.wait_for_text(&md, "grown while the daemon runs");
    k.wait("the update counted", |s| {
        s["sync"]["updated"].as_u64() >= Some(1)
    });
    let text = k.status_text();
    assert!(
        text.contains("autosync:") && text.contains("written"),
        "{text}"
    );
    let audit = k.audit();
    assert!(
        audit.iter().any(|r| r["stage"] == "sync"
            && r["event"] == "write.allowed"
            && r["target"]
                .as_str()
                .is_some_and(|t| t == md.to_str().unwrap())),
        "{audit:#?}"
    );
    // Exactly once: the message appears once in the replaced file.
    let text = fs::read_to_string(&md).unwrap();
    assert_eq!(text.matches("grown while the daemon runs").count(), 1);
    k.stop();
    // The tree it left is what `kato sync` finds current.
    let out = k.kato(&[
        "sync",
        "-o",
        k.path("sync").to_str().unwrap(),
        "--json",
        "--layout",
        "flat",
        "--provider",
        "claude",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unchanged"].as_u64(), Some(2), "{v:#}");
}

#[test]
fn autosync_is_off_by_default_and_its_dir_must_not_overlap() {
    let k = setup();
    let out = k.kato(&["config", "validate"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"sync\": null"));
    let cfg = fs::read_to_string(k.path("config.toml")).unwrap();
    fs::write(
        k.path("config.toml"),
        format!(
            "{cfg}\n[sync]\ndir = \"{}\"\n",
            k.claude.join("x").display()
        ),
    )
    .unwrap();
    let out = k.kato(&["config", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`sync.dir`"));
}

#[test]
fn clean_removes_only_state_of_sessions_that_are_gone() {
    let mut k = setup();
    k.run_fg();
    k.settle(S, &k.claude_file());
    k.settle(S2, &second_file(&k));
    k.wait_until("two cursors persisted", || k.cursors_persisted(2));
    // Refused while the daemon runs.
    let out = k.kato(&["clean"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kato stop"));
    k.stop();
    let exported = k.out("kept.md");
    assert!(k
        .kato(&["export", S2, "-o", exported.to_str().unwrap()])
        .status
        .success());
    fs::remove_file(second_file(&k)).unwrap();
    let state_files = || fs::read_dir(k.path("state/files")).unwrap().count();
    let before = state_files();
    let out = k.kato(&["clean", "--dry-run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let removed = v["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{v:#}");
    assert_eq!(removed[0]["reason"], "gone");
    assert_eq!(
        removed[0]["session_file"],
        second_file(&k).to_str().unwrap()
    );
    assert_eq!(state_files(), before);
    // The clean stop copied every state file into a snapshot, which would
    // bring back the removed state at the next start: it goes too.
    let snapshot = k.path("state/files.snapshot");
    assert!(snapshot.exists());
    let out = k.kato(&["clean", "--json"]);
    assert!(out.status.success());
    assert!(state_files() < before);
    assert!(!snapshot.exists(), "kato clean left the state snapshot");
    // The live session's state, the export and the agent's files stay.
    assert!(k.cursors_persisted(1));
    assert!(exported.is_file() && k.claude_file().is_file());
    assert!(
        k.audit()
            .iter()
            .any(|r| r["event"] == "state.cleaned"
                && r["target"] == second_file(&k).to_str().unwrap())
    );
    assert!(k.kato(&["audit", "verify"]).status.success());
    // Older than: the remaining session (written 2026-01-08 by the test's
    // clock, now by the file's) is not older than 100000 days.
    let v: Value = serde_json::from_slice(
        &k.kato(&["clean", "--older-than", "100000", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(v["removed"].as_array().unwrap().len(), 0);
    let v: Value = serde_json::from_slice(
        &k.kato(&["clean", "--older-than", "0", "--dry-run", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(v["removed"][0]["reason"], "older", "{v:#}");
}

#[test]
fn a_temporary_file_left_by_a_killed_sync_is_replaced_not_kept() {
    let k = setup();
    let (dry, _) = sync(&k, &["--dry-run"]);
    let planned = output_of(&k, &dry, S);
    let name = planned.file_name().unwrap().to_str().unwrap();
    let tmp = planned.with_file_name(format!(".{name}.kato-tmp"));
    fs::create_dir_all(planned.parent().unwrap()).unwrap();
    fs::write(&tmp, "half a document").unwrap();
    let (v, out) = sync(&k, &[]);
    assert!(out.status.success());
    assert_eq!(item(&v, S)["action"], "write");
    assert!(!tmp.exists());
    assert!(fs::read_to_string(&planned)
        .unwrap()
        .contains("Refactor the parser please"));
}

#[test]
fn many_sessions_come_back_in_order_from_the_parse_stages() {
    let k = setup();
    let ids: Vec<String> = (0..40)
        .map(|i| format!("{i:08x}-1111-4222-8333-444455556666"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let text = "padding ".repeat(1 + (i % 7) * 500);
        append_lines(
            &k.claude.join(format!("-home-u-proj/{id}.jsonl")),
            &[user_in(
                id,
                &format!("w-{i}"),
                &format!("session {i} {text}"),
            )],
        );
    }
    let (v, out) = sync(&k, &["--layout", "flat"]);
    assert!(out.status.success());
    assert_eq!(v["written"].as_u64(), Some(42));
    // Each output holds its own session, whatever order the stages finished in.
    for (i, id) in ids.iter().enumerate() {
        let md = fs::read_to_string(output_of(&k, &v, id)).unwrap();
        assert!(md.contains(&format!("session {i} padding")), "{id}");
        assert!(md.contains(id.as_str()), "{id}");
    }
}

#[test]
fn an_html_sync_writes_pages_and_an_index_linking_them() {
    let k = setup();
    let (v, out) = sync(&k, &["--format", "html"]);
    assert!(out.status.success(), "{v:#}");
    assert_eq!(v["index"], "written", "{v:#}");
    let index = k.path("sync").join("index.html");
    let page = fs::read_to_string(&index).unwrap();
    for s in [S, S2] {
        let p = output_of(&k, &v, s);
        assert_eq!(p.extension().and_then(|e| e.to_str()), Some("html"));
        let html = fs::read_to_string(&p).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));
        let rel = item(&v, s)["output"].as_str().unwrap();
        assert!(
            page.contains(&format!("href=\"{rel}\"")),
            "{rel} not linked in {page}"
        );
    }
    assert!(page.contains("Refactor the parser please") && page.contains("Deploy the service"));
    assert_eq!(mode(&index) & 0o777, 0o644);

    // Nothing changed: the index is not rewritten.
    let before = fs::metadata(&index).unwrap().mtime_nsec();
    let (v, _) = sync(&k, &["--format", "html"]);
    assert_eq!(
        (v["parsed"].as_u64(), &v["index"]),
        (Some(0), &Value::from("unchanged"))
    );
    assert_eq!(fs::metadata(&index).unwrap().mtime_nsec(), before);

    // An index a person edited is reported and left alone.
    fs::write(&index, "mine").unwrap();
    append_lines(&k.claude_file(), &[user_in(S, "u-2", "One more thing")]);
    let (v, _) = sync(&k, &["--format", "html"]);
    assert!(
        v["index"].as_str().unwrap().starts_with("conflict"),
        "{v:#}"
    );
    assert_eq!(fs::read_to_string(&index).unwrap(), "mine");
}
