//! Terminal escapes in session content: exports show them, terminals
//! never receive them (`status`, `sessions`, `doctor`, errors, the log).

use std::fs;

use serde_json::Value;

use crate::harness::{assistant, tool_pair, user, Kato, S};

/// Sets the window title, writes the clipboard (OSC 52), turns text red,
/// clears the screen with an 8-bit CSI, returns the cursor and overrides
/// the text direction.
const HOSTILE: &str = "deploy \u{1b}]0;pwned\u{7}\u{1b}]52;c;aGk=\u{7}\u{1b}[31mred\u{1b}[0m \u{9b}2J\rover \u{202e}txt.exe\u{7f}";

/// Characters a terminal acts on; `bidi` adds the direction overrides.
fn acting(text: &str, bidi: bool) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            matches!(c, '\0'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
                || (bidi && matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        })
        .collect()
}

fn session_with_escapes(k: &Kato) {
    let [call, result] = tool_pair(1, &format!("build log: {HOSTILE}"));
    let lines = [
        user("u1", HOSTILE),
        assistant("a1", &format!("quoted: {HOSTILE}")),
        call,
        result,
    ];
    fs::write(k.claude_file(), lines.join("\n") + "\n").unwrap();
}

fn stdout(k: &Kato, args: &[&str]) -> String {
    let out = k.kato(args);
    assert!(
        out.status.success(),
        "kato {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        acting(&String::from_utf8_lossy(&out.stderr), true).is_empty(),
        "kato {args:?} stderr: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn markdown_export_shows_terminal_escapes_instead_of_running_them() {
    let k = Kato::new(false);
    session_with_escapes(&k);
    let file = k.claude_file();
    let md = stdout(&k, &["export", "--tool-calls", file.to_str().unwrap()]);
    assert_eq!(acting(&md, false), [], "{md}");
    // Faithful otherwise: each escape is its control picture, in place.
    assert!(md.contains("deploy \u{241b}]0;pwned\u{2407}"), "{md}");
    assert!(md.contains("\u{241b}[31mred\u{241b}[0m"), "{md}");
    assert!(md.contains("build log: deploy \u{241b}]0;pwned"), "{md}");
    assert!(md.contains("\u{202e}txt.exe\u{2421}"), "{md}");
    assert!(!md.contains('\u{9b}'), "{md}");
}

#[test]
fn jsonl_export_escapes_every_control_and_decodes_to_the_content() {
    let k = Kato::new(false);
    session_with_escapes(&k);
    let file = k.claude_file();
    let jsonl = stdout(&k, &["export", "--format", "jsonl", file.to_str().unwrap()]);
    assert_eq!(acting(&jsonl, false), [], "{jsonl}");
    let texts: Vec<String> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    assert!(texts.iter().any(|t| t == HOSTILE), "{texts:?}");
}

#[test]
fn status_sessions_doctor_errors_and_log_print_content_inert() {
    let mut k = Kato::new(false);
    // A provider root whose name carries escapes: doctor and status show it.
    let root = k.path("claude-\u{1b}[2J\u{202e}");
    fs::create_dir_all(root.join("-home-u-proj")).unwrap();
    let config = fs::read_to_string(k.path("config.toml")).unwrap();
    let escaped_root = root
        .display()
        .to_string()
        .replace('\u{1b}', "\\u001B")
        .replace('\u{202e}', "\\u202E");
    let config = config.replacen(
        &format!("roots = [\"{}\"]", k.claude.display()),
        &format!("roots = [\"{}\", \"{escaped_root}\"]", k.claude.display()),
        1,
    );
    fs::write(k.path("config.toml"), config).unwrap();
    session_with_escapes(&k);
    k.start();
    k.wait("the session", |s| {
        s["sessions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["id"] == S && x["events"].as_u64() > Some(0))
        })
    });
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["sessions"],
        &["sessions", "--json"],
        &["doctor"],
        &["doctor", "--json"],
    ] {
        let out = stdout(&k, args);
        assert_eq!(acting(&out, true), [], "kato {args:?}:\n{out}");
        if args.contains(&"--json") {
            // Still JSON, and the same values.
            serde_json::from_str::<Value>(&out).unwrap();
        }
        if args == ["status"] || args == ["doctor"] {
            assert!(
                out.contains("claude-\\u001b[2J\\u202e"),
                "kato {args:?}:\n{out}"
            );
        }
    }
    let status: Value = serde_json::from_str(&stdout(&k, &["status", "--json"])).unwrap();
    assert_eq!(status["sessions"], k.status().unwrap()["sessions"]);
    // An error that quotes what it was given.
    let out = k.kato(&["export", "\u{1b}]0;pwned\u{7}-no-such-session"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(acting(&err, true), [], "{err}");
    assert!(err.contains("\\u001b]0;pwned\\u0007"), "{err}");
    // The operational log of the foreground daemon.
    let logs = k.logs();
    assert_eq!(acting(&logs, true), [], "{logs}");
}
