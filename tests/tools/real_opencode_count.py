#!/usr/bin/env python3
"""Expected per-kind event counts for the sessions of the real OpenCode
databases, computed with Python's sqlite3 and json modules straight from
the tables (independently of the Rust code) by the mapping documented in
src/provider/opencode.rs. Prints one Rust array row per top-level session
(`<file>#<session id>`, then each top-level session file of a JSON store
`opencode/*/storage/`) for tests/it/real_opencode.rs, columns in
GOLDEN_KINDS order: user, assistant, thinking, tool call, tool result,
system, info, raw. Every part is counted as a one-shot export sees it
(as it stands: a tool still running is a call without a result).

Usage: python3 tests/tools/real_opencode_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sqlite3
import sys
from collections import Counter

KINDS = ["user", "assistant", "thinking", "call", "result", "system", "info", "raw"]


def text_of(d):
    t = d.get("text")
    return t if isinstance(t, str) else ""


def count_part(c, d, role, child):
    t = d.get("type")
    if t == "text":
        if not text_of(d).strip():
            return
        if d.get("synthetic") is True or d.get("ignored") is True:
            c["system"] += 1
        elif role == "user":
            c["system" if child else "user"] += 1
        else:
            c["assistant"] += 1
    elif t == "reasoning":
        if text_of(d).strip():
            c["thinking"] += 1
    elif t == "tool":
        c["call"] += 1
        status = (d.get("state") or {}).get("status")
        if status in ("completed", "error"):
            c["result"] += 1
    elif t in ("file", "agent", "step-finish", "snapshot", "patch"):
        c["info"] += 1
    elif t in ("subtask", "retry", "compaction"):
        c["system"] += 1
    elif t == "step-start":
        pass
    else:
        c["raw"] += 1


def count_session(db, sid, child, c):
    (title,) = db.execute("SELECT title FROM session WHERE id = ?", (sid,)).fetchone()
    c["info"] += 1  # session_meta
    if not child and isinstance(title, str) and title.strip():
        c["info"] += 1  # title
    roles = {}
    for mid, data in db.execute("SELECT id, data FROM message WHERE session_id = ?", (sid,)):
        m = json.loads(data)
        roles[mid] = m.get("role")
        if m.get("error") is not None:
            c["system"] += 1
    for mid, data in db.execute("SELECT message_id, data FROM part WHERE session_id = ?", (sid,)):
        if mid in roles:
            count_part(c, json.loads(data), roles[mid], child)
    for (kid,) in db.execute("SELECT id FROM session WHERE parent_id = ?", (sid,)):
        count_session(db, kid, True, c)


def count_store_session(storage, path, child, c):
    with open(path, encoding="utf-8") as f:
        s = json.load(f)
    c["info"] += 1  # session_meta
    if not child and isinstance(s.get("title"), str) and s["title"].strip():
        c["info"] += 1  # title
    sid = s["id"]
    for mpath in glob.glob(os.path.join(storage, "message", sid, "*.json")):
        with open(mpath, encoding="utf-8") as f:
            m = json.load(f)
        if m.get("error") is not None:
            c["system"] += 1
        for ppath in glob.glob(os.path.join(storage, "part", m["id"], "*.json")):
            with open(ppath, encoding="utf-8") as f:
                count_part(c, json.load(f), m.get("role"), child)
    for kid in glob.glob(os.path.join(os.path.dirname(path), "*.json")):
        with open(kid, encoding="utf-8") as f:
            if json.load(f).get("parentID") == sid:
                count_store_session(storage, kid, True, c)


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/fixtures/real")
    for path in sorted(glob.glob(os.path.join(base, "opencode", "*.db"))):
        db = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
        for (sid,) in db.execute("SELECT id FROM session WHERE parent_id IS NULL ORDER BY id"):
            c = Counter()
            count_session(db, sid, False, c)
            row = ", ".join(str(c[k]) for k in KINDS)
            print(f'    ("{os.path.basename(path)}#{sid}", [{row}]),')
        db.close()
    # The JSON store (before 1.2): one row per top-level session file.
    for storage in sorted(glob.glob(os.path.join(base, "opencode", "*", "storage"))):
        for path in sorted(glob.glob(os.path.join(storage, "session", "*", "ses_*.json"))):
            with open(path, encoding="utf-8") as f:
                if json.load(f).get("parentID"):
                    continue
            c = Counter()
            count_store_session(storage, path, False, c)
            row = ", ".join(str(c[k]) for k in KINDS)
            print(f'    ("{os.path.basename(path)}", [{row}]),')


if __name__ == "__main__":
    main()
