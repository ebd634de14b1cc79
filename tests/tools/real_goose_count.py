#!/usr/bin/env python3
"""Expected per-kind event counts for the sessions of the real Goose
databases, computed with Python's sqlite3 and json modules straight from
the tables (independently of the Rust code) by the mapping documented in
src/provider/goose.rs. Prints one Rust array row per session
(`<file>#<session id>`) for tests/it/real_goose.rs, columns in
GOLDEN_KINDS order: user, assistant, thinking, tool call, tool result,
system, info, raw.

Usage: python3 tests/tools/real_goose_count.py [FIXTURES_DIR]
"""
import glob
import json
import os
import sqlite3
import sys
from collections import Counter

KINDS = ["user", "assistant", "thinking", "call", "result", "system", "info", "raw"]


def count_session(db, sid, c):
    (name,) = db.execute("SELECT name FROM sessions WHERE id = ?", (sid,)).fetchone()
    c["info"] += 1  # session_meta
    if isinstance(name, str) and name.strip():
        c["info"] += 1  # title
    for role, content, meta in db.execute(
            "SELECT role, content_json, metadata_json FROM messages WHERE session_id = ?", (sid,)):
        hidden = False
        try:
            hidden = json.loads(meta or "null").get("userVisible") is False
        except (AttributeError, ValueError):
            pass
        for x in json.loads(content):
            t = x.get("type")
            text = x.get("text") if t == "text" else x.get("thinking")
            blank = not (isinstance(text, str) and text.strip())
            if role == "user" and t == "image":
                pass
            elif role == "user" and t == "text":
                c["system" if hidden else "user"] += hidden or not blank
            elif role == "assistant" and t == "text":
                c["assistant"] += not blank
            elif role == "assistant" and t == "thinking":
                c["thinking"] += not blank
            elif role == "assistant" and t == "toolRequest":
                c["call"] += 1
            elif t == "toolResponse":
                c["result"] += 1
            elif t == "systemNotification":
                c["system"] += 1
            else:
                c["raw"] += 1


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/fixtures/real")
    for path in sorted(glob.glob(os.path.join(base, "goose", "*.db"))):
        db = sqlite3.connect("file:" + path + "?mode=ro", uri=True)
        for (sid,) in db.execute("SELECT id FROM sessions ORDER BY id"):
            c = Counter()
            count_session(db, sid, c)
            row = ", ".join(str(c[k]) for k in KINDS)
            print(f'    ("{os.path.basename(path)}#{sid}", [{row}]),')
        db.close()


if __name__ == "__main__":
    main()
