use super::*;

#[test]
fn dates_round_trip() {
    assert_eq!(civil_date(0), "1970-01-01");
    assert_eq!(civil_date(951_782_400), "2000-02-29");
    assert_eq!(parse_date("2000-02-29"), Some(951_782_400));
    assert_eq!(parse_date("2026-01-08T15:56:38.102Z"), Some(1_767_830_400));
    assert_eq!(parse_date("2026-02-30"), None);
    assert_eq!(parse_date("yesterday"), None);
}

#[test]
fn slugs_are_file_name_safe() {
    assert_eq!(
        slug("Fix the `parser`: it's broken!", 48),
        "fix-the-parser-it-s-broken"
    );
    assert_eq!(
        slug("[REDACTED:GITHUB_TOKEN] deploy", 48),
        "redacted-github-token-deploy"
    );
    assert_eq!(slug("ünïcode ✓", 48), "n-code");
    assert_eq!(slug("../../etc/passwd", 48), "etc-passwd");
    assert!(slug(&"word ".repeat(40), 48).len() <= 48);
}

#[test]
fn directories_can_be_entered_where_files_can_be_read() {
    assert_eq!(dir_mode(0o644), 0o755);
    assert_eq!(dir_mode(0o640), 0o750);
    assert_eq!(dir_mode(0o600), 0o700);
}

#[test]
fn names_follow_the_layout_and_stay_inside() {
    let meta = SessionMeta {
        id: "claude-0123456789abcdef".into(),
        title: "Refactor the ../../ parser".into(),
        provider: "claude".into(),
        session_id: "0890bead-0ab3-4ee9".into(),
        created: Some("2026-01-08T10:00:00Z".into()),
        ..SessionMeta::default()
    };
    let name = "2026-01-08-claude-refactor-the-parser-0890bead.md";
    assert_eq!(
        output_name(
            Layout::ByProject,
            &meta,
            Some("/home/u/my proj/"),
            &[],
            "md"
        ),
        PathBuf::from("my-proj").join(name)
    );
    assert_eq!(
        output_name(Layout::ByProject, &meta, None, &[], "md"),
        PathBuf::from("unknown-project").join(name)
    );
    assert_eq!(
        output_name(Layout::ByDate, &meta, None, &[], "md"),
        PathBuf::from("2026/01").join(name)
    );
    assert_eq!(
        output_name(Layout::Flat, &meta, Some(".."), &[], "md"),
        PathBuf::from(name)
    );
    assert_eq!(
        output_name(Layout::ByProject, &meta, Some("/"), &[], "md"),
        PathBuf::from("unknown-project").join(name)
    );
}

#[test]
fn prefixes_are_one_directory_name() {
    assert_eq!(prefix_component("laptop").unwrap(), "laptop");
    assert!(!prefix_component("{hostname}").unwrap().contains('{'));
    for bad in ["", ".", "..", "a/b", "x\u{7}"] {
        assert!(prefix_component(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_sync_section_and_file_mode_are_validated() {
    use crate::config::{parse_file_mode, Config, Env};
    let env = Env {
        home: Some("/home/u".into()),
        ..Env::default()
    };
    let c = Config::from_toml("", None, &env).unwrap();
    assert!(c.sync.is_none());
    assert_eq!(c.file_mode, 0o644);
    let c = Config::from_toml(
        "[sync]\ndir = \"~/notes/agents\"\nformat = \"jsonl\"\nlayout = \"by-date\"\n\
         providers = [\"codex\"]\nprefix = \"laptop\"\n",
        None,
        &env,
    )
    .unwrap();
    let s = c.sync.unwrap();
    assert_eq!(s.root(), PathBuf::from("/home/u/notes/agents/laptop"));
    assert_eq!((s.format, s.layout), (ExportFormat::Jsonl, Layout::ByDate));
    assert_eq!(s.providers, [ProviderId::Codex]);
    for (toml, want) in [
        ("[sync]\ndir = \"rel\"\n", "not an absolute path"),
        ("[sync]\ndir = \"/s\"\nformat = \"pdf\"\n", "sync.format"),
        (
            "[sync]\ndir = \"/s\"\nproviders = [\"nope\"]\n",
            "unknown provider `nope`",
        ),
        ("[sync]\ndir = \"/s\"\nprefix = \"a/b\"\n", "sync.prefix"),
        ("[sync]\ndir = \"/s\"\nlayout = \"tree\"\n", "tree"),
        ("[sync]\ndir = \"/home/u/.codex\"\n", "`sync.dir`"),
        ("[exports]\nfile_mode = \"0777\"\n", "file_mode"),
    ] {
        let e = Config::from_toml(toml, None, &env).unwrap_err().to_string();
        assert!(e.contains(want), "{toml}: {e}");
    }
    assert_eq!(parse_file_mode("0644"), Ok(0o644));
    assert_eq!(parse_file_mode("640"), Ok(0o640));
    assert_eq!(parse_file_mode("0o600"), Ok(0o600));
    for bad in ["", "0755", "0646", "0444", "9", "1644", "0644 "] {
        assert!(parse_file_mode(bad).is_err(), "{bad:?}");
    }
}
