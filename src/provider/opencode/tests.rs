use super::*;

fn run(records: &[&str]) -> Vec<Event> {
    let mut p = OpenCodeParser;
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        p.record(i as u64, r.as_bytes(), &mut |e| out.push(e))
            .unwrap();
    }
    out
}

#[test]
fn classifies_the_database_only() {
    assert!(OpenCode.classify(Path::new("opencode.db")).is_some());
    assert!(OpenCode.classify(Path::new("opencode-beta.db")).is_some());
    assert!(OpenCode.classify(Path::new("opencode.db-wal")).is_none());
    assert!(OpenCode
        .classify(Path::new("storage/opencode.db"))
        .is_none());
    let ctx = OpenCode.named_file(Path::new("/nonexistent/opencode.db#ses_1"));
    assert_eq!(ctx.session_hint, "ses_1");
}

#[test]
fn pending_tool_waits_until_settled_unless_final() {
    let pending = r#"{"t":"part","id":"prt_1","session_id":"ses_a","root":"ses_a","role":"assistant","settle":false,"data":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"running","input":{"command":"ls"}}}}"#;
    assert!(run(&[pending]).is_empty());
    let done = r#"{"t":"part","id":"prt_1","session_id":"ses_a","root":"ses_a","role":"assistant","settle":false,"data":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"completed","input":{"command":"ls"},"output":"x"}}}"#;
    let evs = run(&[done]);
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[1].event_id, "prt_1#result");
    let last = pending.replace("\"settle\":false", "\"settle\":true");
    assert_eq!(run(&[&last]).len(), 1);
}
