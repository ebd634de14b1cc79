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
