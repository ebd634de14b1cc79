#!/usr/bin/env python3
"""Expected per-kind event counts for the sessions of the real Crush
databases, computed with Python's sqlite3 and json modules straight from
the tables (independently of the Rust code) by the mapping documented in
src/provider/crush.rs. Prints one Rust array row per top-level session
(`<file>#<session id>`) for tests/it/real_crush.rs, columns in
GOLDEN_KINDS order: user, assistant, thinking, tool call, tool result,
system, info, raw (as a one-shot export reads them).

Usage: python3 tests/tools/real_crush_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sqlite3
import sys
from collections import Counter

KINDS = ["user", "assistant", "thinking", "call", "result", "system", "info", "raw"]


def s(d, k):
    v = d.get(k) if isinstance(d, dict) else None
    return v if isinstance(v, str) else ""


def count_session(db, sid, child, c):
    (title,) = db.execute("SELECT title FROM sessions WHERE id = ?", (sid,)).fetchone()
    c["info"] += 1  # session_meta
    if not child and isinstance(title, str) and title.strip():
        c["info"] += 1  # title
    for role, parts in db.execute("SELECT role, parts FROM messages WHERE session_id = ?", (sid,)):
        for p in json.loads(parts):
            t, d = p.get("type"), p.get("data")
            if t == "finish":
                if s(d, "reason") in ("error", "canceled", "permission_denied"):
                    c["system"] += 1
            elif role == "user" and t in ("image_url", "binary"):
                pass
            elif role == "user" and t == "text":
                if s(d, "text").strip():
                    c["system" if child else "user"] += 1
            elif role == "system" and t == "text":
                c["system"] += 1
            elif role == "assistant" and t == "text":
                c["assistant"] += bool(s(d, "text").strip())
            elif role == "assistant" and t == "reasoning":
                c["thinking"] += bool(s(d, "thinking").strip())
            elif role == "assistant" and t == "tool_call":
                c["call"] += 1
            elif role == "tool" and t == "tool_result":
                c["result"] += 1
            else:
                c["raw"] += 1
    for (kid,) in db.execute("SELECT id FROM sessions WHERE parent_session_id = ?", (sid,)):
        count_session(db, kid, True, c)


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/fixtures/real")
    for path in sorted(glob.glob(os.path.join(base, "crush", "*.db"))):
        db = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
        for (sid,) in db.execute("SELECT id FROM sessions WHERE parent_session_id IS NULL ORDER BY id"):
            c = Counter()
            count_session(db, sid, False, c)
            row = ", ".join(str(c[k]) for k in KINDS)
            print(f'    ("{os.path.basename(path)}#{sid}", [{row}]),')
        db.close()


if __name__ == "__main__":
    main()
