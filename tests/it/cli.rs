//! The real binary against real temp dirs: commands, exit codes, errors.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const S1: &str = "0890bead-0ab3-4ee9-98f8-585fd289cc1f";
const S2: &str = "0890bead-ffff-4ee9-98f8-585fd289cc1f";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let root = env.claude_root();
        fs::create_dir_all(root.join("-home-u-proj")).unwrap();
        let cfg = format!(
            "[providers.claude]\nroots = [\"{}\"]\n[providers.codex]\nroots = [\"{}\"]\n\
             [providers.gemini]\nenabled = false\n[exports]\nallowed_roots = [\"{}\"]\n\
             [state]\ndir = \"{}\"\n",
            root.display(),
            env.path().join("codex").display(),
            env.path().join("out").display(),
            env.path().join("state").display()
        );
        fs::write(env.config(), cfg).unwrap();
        env
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn claude_root(&self) -> PathBuf {
        self.path().join("claude")
    }
    fn config(&self) -> PathBuf {
        self.path().join("config.toml")
    }
    fn session(&self, id: &str, lines: &[String]) -> PathBuf {
        let p = self
            .claude_root()
            .join("-home-u-proj")
            .join(format!("{id}.jsonl"));
        let mut body = lines.join("\n");
        body.push('\n');
        fs::write(&p, body).unwrap();
        p
    }
    fn kato(&self) -> Command {
        let mut c = Command::cargo_bin("kato").unwrap();
        c.env("KATO_CONFIG", self.config())
            .env("HOME", self.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CONFIGURATION_DIRECTORY");
        c
    }
}

fn user_line(session: &str, uuid: &str, text: &str) -> String {
    serde_json::json!({
        "type": "user", "sessionId": session, "uuid": uuid, "parentUuid": null,
        "isSidechain": false, "timestamp": "2026-01-08T15:56:38.102Z",
        "message": {"role": "user", "content": text}
    })
    .to_string()
}

fn assistant_line(session: &str, uuid: &str, text: &str) -> String {
    serde_json::json!({
        "type": "assistant", "sessionId": session, "uuid": uuid, "parentUuid": null,
        "isSidechain": false, "timestamp": "2026-01-08T15:56:40.000Z",
        "message": {"id": "msg_1", "role": "assistant", "model": "claude-opus-4-6",
                    "content": [{"type": "text", "text": text}]}
    })
    .to_string()
}

fn stdout_of(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "status {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sessions_lists_newest_first_with_json() {
    let env = Env::new();
    env.session(S1, &[user_line(S1, "u1", "first question")]);
    let out = stdout_of(env.kato().args(["sessions", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], S1);
    assert_eq!(rows[0]["provider"], "claude");
    assert!(rows[0]["events"].as_u64().unwrap() >= 1);
    let table = stdout_of(env.kato().arg("sessions"));
    assert!(table.contains(S1), "{table}");
}

#[test]
fn export_by_prefix_path_and_errors() {
    let env = Env::new();
    env.session(
        S1,
        &[
            user_line(S1, "u1", "hello there"),
            assistant_line(S1, "a1", "general kenobi"),
        ],
    );
    env.session(S2, &[user_line(S2, "u2", "other")]);

    // Unique prefix.
    let md = stdout_of(env.kato().args(["export", "0890bead-0ab3"]));
    assert!(md.contains("hello there"), "{md}");

    // Ambiguous prefix: exit 3 listing both.
    let out = env.kato().args(["export", "0890bead"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(S1) && err.contains(S2), "{err}");

    // Unknown id: exit 3; too-short prefix: exit 2.
    let out = env
        .kato()
        .args(["export", "ffffffffffff"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = env.kato().args(["export", "0890"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // A missing path: exit 3.
    let out = env
        .kato()
        .args(["export", "/nonexistent/x.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn export_to_file_jsonl_with_summary() {
    let env = Env::new();
    let src = env.session(
        S1,
        &[
            user_line(S1, "u1", "hello"),
            "this is not json".to_owned(),
            assistant_line(S1, "a1", "hi"),
        ],
    );
    let out_path = env.path().join("export.jsonl");
    let out = stdout_of(env.kato().args([
        "export",
        src.to_str().unwrap(),
        "--format",
        "jsonl",
        "-o",
        out_path.to_str().unwrap(),
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["skipped"]["total"], 1);
    assert_eq!(summary["skipped"]["by_kind"]["not-json"], 1);
    let offset = user_line(S1, "u1", "hello").len() + 1;
    assert_eq!(summary["skipped"]["first"][0]["offset"], offset);
    let text = fs::read_to_string(&out_path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, summary["events"].as_u64().unwrap());
    assert!(lines.iter().all(|l| l["schema_version"] == 1));
    assert!(lines.iter().any(|l| l["event_id"] == "u1"));
    assert!(lines.iter().any(|l| l["event_id"] == "a1"));
}

/// A Markdown export without `--tool-calls` lets the parser leave tool
/// texts undecoded: it still counts every event and refuses every record a
/// full read refuses (a tool output that cannot be decoded, a lone
/// surrogate, among them), whatever the mode.
#[test]
fn hidden_tool_texts_skip_and_count_as_a_full_read_does() {
    let env = Env::new();
    let day = env.path().join("codex/sessions/2026/01/08");
    fs::create_dir_all(&day).unwrap();
    let src = day.join("rollout-2026-01-08T15-00-00-019ac88c-3f80-7990-a29a-d20399dcab74.jsonl");
    let lines = [
        r#"{"timestamp":"2026-01-08T15:00:00.000Z","type":"session_meta","payload":{"id":"019ac88c-3f80-7990-a29a-d20399dcab74","cwd":"/home/u"}}"#,
        r#"{"timestamp":"2026-01-08T15:00:01.000Z","type":"event_msg","payload":{"type":"user_message","message":"list the files"}}"#,
        r#"{"timestamp":"2026-01-08T15:00:02.000Z","type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"{\"command\":[\"ls\"]}","call_id":"c1"}}"#,
        r#"{"timestamp":"2026-01-08T15:00:03.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"bad \ud800 surrogate"}}"#,
        r#"{"timestamp":"2026-01-08T15:00:04.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"c1","output":"Exit code: 0\nOutput:\nsecret-plan.txt"}}"#,
        r#"{"timestamp":"2026-01-08T15:00:05.000Z","type":"response_item","payload":{"type":"function_call","name":"shell","arguments":"\udc00","call_id":"c2"}}"#,
        r#"{"timestamp":"2026-01-08T15:00:06.000Z","type":"response_item","payload":{"type":"function_call_output","call_id":"c2","output":7}}"#,
        r#"{"timestamp":"2026-01-08T15:00:07.000Z","type":"event_msg","payload":{"type":"token_count","info":{"total_token_usage":{"input_tokens":1}}}}"#,
        r#"{"timestamp":"2026-01-08T15:00:08.000Z","type":"event_msg","payload":{"type":"agent_message","message":"one file"}}"#,
    ];
    fs::write(&src, lines.join("\n") + "\n").unwrap();
    let mut seen = Vec::new();
    for (i, mode) in [
        &[][..],
        &["--tool-calls"],
        &["--thinking", "--tool-calls"],
        &["--format", "jsonl"],
    ]
    .into_iter()
    .enumerate()
    {
        let out_path = env.path().join(format!("export-{i}"));
        let mut args = vec!["export", src.to_str().unwrap(), "--json", "-o"];
        args.push(out_path.to_str().unwrap());
        args.extend(mode);
        let summary: serde_json::Value =
            serde_json::from_str(&stdout_of(env.kato().args(&args))).unwrap();
        let shown = fs::read_to_string(&out_path)
            .unwrap()
            .contains("secret-plan.txt");
        assert_eq!(shown, !mode.is_empty(), "{mode:?}");
        seen.push((summary["events"].clone(), summary["skipped"].clone()));
    }
    assert_eq!(seen[0].1["total"], 3, "{:?}", seen[0]);
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
}

/// A JSONL export copies a Codex tool output escaped as kato escapes
/// without decoding it: each output still reads back as its text,
/// redacted, with its exit code; other escapes, wrapped shell JSON and
/// lists are decoded as before.
#[test]
fn jsonl_tool_outputs_copied_as_written_read_as_their_texts() {
    let env = Env::new();
    let day = env.path().join("codex/sessions/2026/01/08");
    fs::create_dir_all(&day).unwrap();
    let src = day.join("rollout-2026-01-08T15-00-00-019ac88c-3f80-7990-a29a-d20399dcab74.jsonl");
    let token = format!("ghp_{}", "aB3".repeat(12));
    let outputs = [
        (
            format!(r#""Exit code: 1\nOutput:\n\u001b[31mno\u001b[0m \"q\" \\ key {token}""#),
            "Exit code: 1\nOutput:\n\u{1b}[31mno\u{1b}[0m \"q\" \\ key [REDACTED:GITHUB_TOKEN]"
                .to_owned(),
            true,
        ),
        (
            r#""Process exited with code 0\r\nOutput:\n\ttabbed""#.to_owned(),
            "Process exited with code 0\r\nOutput:\n\ttabbed".to_owned(),
            false,
        ),
        (r#""\u0041\/\u00e9""#.to_owned(), "A/é".to_owned(), false),
        (
            r#""{\"output\":\"wrapped\\n\",\"metadata\":{\"exit_code\":3}}""#.to_owned(),
            "wrapped\n".to_owned(),
            true,
        ),
        (
            r#"[{"type":"input_text","text":"listed"}]"#.to_owned(),
            "listed".to_owned(),
            false,
        ),
    ];
    let mut lines = vec![
        r#"{"timestamp":"2026-01-08T15:00:00.000Z","type":"session_meta","payload":{"id":"019ac88c-3f80-7990-a29a-d20399dcab74","cwd":"/home/u"}}"#.to_owned(),
    ];
    for (i, (literal, _, _)) in outputs.iter().enumerate() {
        lines.push(format!(
            r#"{{"timestamp":"2026-01-08T15:00:0{i}.000Z","type":"response_item","payload":{{"type":"function_call_output","call_id":"c{i}","output":{literal}}}}}"#
        ));
    }
    fs::write(&src, lines.join("\n") + "\n").unwrap();
    let out_path = env.path().join("export.jsonl");
    let args = ["export", src.to_str().unwrap(), "--format", "jsonl", "-o"];
    stdout_of(env.kato().args(args).arg(&out_path));
    let written = fs::read_to_string(&out_path).unwrap();
    assert!(!written.contains(&token));
    let results: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["kind"] == "assistant.tool.result")
        .collect();
    assert_eq!(results.len(), outputs.len());
    for (got, (_, text, failed)) in results.iter().zip(&outputs) {
        assert_eq!(got["output"], *text.as_str());
        assert_eq!(got["is_error"].as_bool().unwrap_or(false), *failed, "{got}");
    }
}

#[test]
fn dry_run_writes_nothing() {
    let env = Env::new();
    let src = env.session(S1, &[user_line(S1, "u1", "hello")]);
    let out_path = env.path().join("never.md");
    let out = stdout_of(env.kato().args([
        "export",
        src.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["dry_run"], true);
    assert!(summary["bytes"].as_u64().unwrap() > 0);
    assert!(!out_path.exists());
}

#[test]
fn config_errors_exit_2_and_name_the_key() {
    let env = Env::new();
    fs::write(env.config(), "[exports]\nallowed_rots = []\n").unwrap();
    let out = env.kato().arg("sessions").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowed_rots"));

    let out = env
        .kato()
        .args(["--config", "/nonexistent/kato.toml", "sessions"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = env.kato().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_init_then_validate() {
    let env = Env::new();
    let p = env.path().join("new/config.toml");
    stdout_of(env.kato().args(["config", "init", p.to_str().unwrap()]));
    let text = fs::read_to_string(&p).unwrap();
    assert!(text.contains("[sandbox]"));
    // Refuses to overwrite without --force.
    let out = env
        .kato()
        .args(["config", "init", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = stdout_of(env.kato().args(["config", "validate", p.to_str().unwrap()]));
    assert!(out.contains("valid"), "{out}");
}

#[test]
fn no_config_file_uses_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("kato")
        .unwrap()
        .env_remove("KATO_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("CONFIGURATION_DIRECTORY")
        .env("HOME", dir.path())
        .arg("sessions")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no sessions found"), "{text}");
    assert!(text.contains(".claude/projects"), "{text}");
}

#[test]
fn doctor_reports_enforced_confinement() {
    let env = Env::new();
    let out = stdout_of(env.kato().args(["doctor", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["verdict"]["status"], "enforced", "{v:#}");
    assert_eq!(v["process"]["no_new_privs"], true);
    assert_eq!(
        v["process"]["capabilities"]["effective"],
        "0000000000000000"
    );
    assert_eq!(v["policy_hash"].as_str().unwrap().len(), 64);
    // The hash is stable for the same policy.
    let again: serde_json::Value =
        serde_json::from_str(&stdout_of(env.kato().args(["doctor", "--json"]))).unwrap();
    assert_eq!(v["policy_hash"], again["policy_hash"]);
    let text = stdout_of(env.kato().arg("doctor"));
    assert!(text.contains("watch+parse [claude]"), "{text}");
}

#[test]
fn exports_redact_secrets_and_count_them() {
    let env = Env::new();
    let key = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8");
    let src = env.session(
        S1,
        &[
            user_line(S1, "u1", &format!("my token is {key} please use it")),
            assistant_line(S1, "a1", &format!("I will not print {key}")),
        ],
    );
    for format in ["markdown", "jsonl"] {
        let out_path = env.path().join(format!("red.{format}"));
        let out = stdout_of(env.kato().args([
            "export",
            src.to_str().unwrap(),
            "--format",
            format,
            "-o",
            out_path.to_str().unwrap(),
            "--json",
        ]));
        let text = fs::read_to_string(&out_path).unwrap();
        assert!(!text.contains(&key), "{format}: {text}");
        assert!(text.contains("[REDACTED:GITHUB_TOKEN]"), "{format}: {text}");
        assert!(!out.contains(&key));
        let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(summary["redactions"]["GITHUB_TOKEN"], 2, "{summary}");
    }
    // Titles in `kato sessions` are redacted too.
    let listing = stdout_of(env.kato().args(["sessions", "--json"]));
    assert!(!listing.contains(&key), "{listing}");

    // Off when the config says so.
    let cfg = fs::read_to_string(env.config()).unwrap() + "[redaction]\nenabled = false\n";
    fs::write(env.config(), cfg).unwrap();
    let md = stdout_of(env.kato().args(["export", src.to_str().unwrap()]));
    assert!(md.contains(&key));

    // An invalid extra pattern is a config error naming it.
    let cfg = fs::read_to_string(env.config())
        .unwrap()
        .replace("enabled = false\n", "extra_patterns = [\"(unclosed\"]\n");
    fs::write(env.config(), cfg).unwrap();
    let out = env.kato().arg("sessions").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(unclosed"));
}

/// A Codex session that opens the way Codex writes one: instructions and
/// environment context injected as user-role input before the human's words.
fn codex_with_injected_context(dir: &Path) -> PathBuf {
    let lines = [
        serde_json::json!({"timestamp": "2026-01-08T15:00:00.000Z", "type": "session_meta",
            "payload": {"id": "0199a000-0000-7000-8000-00000000c0de", "cwd": "/home/u"}}),
        serde_json::json!({"timestamp": "2026-01-08T15:00:00.100Z", "type": "response_item",
            "payload": {"type": "message", "role": "user", "content": [{"type": "input_text",
            "text": "<user_instructions>\nAGENTS.md says: always answer in haiku\n</user_instructions>"}]}}),
        serde_json::json!({"timestamp": "2026-01-08T15:00:00.200Z", "type": "response_item",
            "payload": {"type": "message", "role": "user", "content": [{"type": "input_text",
            "text": "<environment_context>\n  <cwd>/home/u</cwd>\n</environment_context>"}]}}),
        serde_json::json!({"timestamp": "2026-01-08T15:00:01.000Z", "type": "event_msg",
            "payload": {"type": "user_message", "message": "list the files"}}),
    ];
    let p = dir.join("rollout-2026-01-08T15-00-00-0199a000-0000-7000-8000-00000000c0de.jsonl");
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs::write(&p, body).unwrap();
    p
}

#[test]
fn codex_export_opens_with_the_human_not_injected_instructions() {
    let env = Env::new();
    let file = codex_with_injected_context(env.path());
    let file = file.to_str().unwrap();
    let md = stdout_of(env.kato().args(["export", file]));
    assert!(md.contains("list the files"), "{md}");
    for injected in [
        "always answer in haiku",
        "environment_context",
        "Injected context",
    ] {
        assert!(
            !md.contains(injected),
            "{injected} in the default export:\n{md}"
        );
    }
    let with = stdout_of(env.kato().args(["export", file, "--context"]));
    assert!(
        with.contains("<summary>Injected context</summary>"),
        "{with}"
    );
    assert!(with.contains("always answer in haiku"), "{with}");
    assert!(
        with.find("always answer in haiku") < with.find("## User"),
        "{with}"
    );
    let cfg = fs::read_to_string(env.config()).unwrap();
    fs::write(
        env.config(),
        format!("{cfg}[markdown]\ninjected_context = true\n"),
    )
    .unwrap();
    let configured = stdout_of(env.kato().args(["export", file]));
    assert_eq!(configured, with);
    let jsonl = stdout_of(env.kato().args(["export", file, "--format", "jsonl"]));
    assert!(jsonl.contains("always answer in haiku"), "{jsonl}");
    assert!(
        jsonl.contains("\"category\":\"injected-context\""),
        "{jsonl}"
    );
}
