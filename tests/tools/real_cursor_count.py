#!/usr/bin/env python3
"""Expected per-kind event counts for the real Cursor agent transcripts,
computed straight from the JSON (independently of the Rust parser) by the
rules documented in src/provider/cursor.rs. Prints one Rust array row per
file for tests/it/real_cursor.rs.

Rules: one notice per transcript (it records no times); a user text block
gives context before the query (if any text), the query (if the block has
`<user_query>` before its last `</user_query>`), context after it (if any
text); an assistant text block is an assistant message, `thinking` is
thinking, `tool_use` a call, `tool_result` a result; `turn_ended` lines are
info; every other line or block is raw.

Usage: python3 tests/tools/real_cursor_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

OPEN, CLOSE = "<user_query>", "</user_query>"


def user_text(c, text):
    end = text.rfind(CLOSE)
    start = text.rfind(OPEN, 0, end) if end >= 0 else -1
    if start < 0:
        before, after, query = text, "", False
    else:
        before, after, query = text[:start], text[end + len(CLOSE):], True
    c["system.message"] += bool(before.strip()) + bool(after.strip())
    c["user.message"] += query


def block(c, role, b):
    t = b.get("type") if isinstance(b, dict) else None
    if t == "text" and isinstance(b.get("text"), str):
        if role == "user":
            user_text(c, b["text"])
        else:
            c["assistant.message"] += 1
    elif t == "thinking" and role == "assistant" and isinstance(b.get("thinking"), str):
        c["assistant.thinking"] += 1
    elif t == "tool_use" and role == "assistant" and isinstance(b.get("name"), str):
        c["assistant.tool.call"] += 1
    elif t == "tool_result":
        c["assistant.tool.result"] += 1
    else:
        c["provider.raw"] += 1


def count(path):
    c = Counter()
    c["system.message"] += 1  # the no-times notice
    with open(path, encoding="utf-8") as f:
        for raw in f:
            if not raw.strip():
                continue
            rec = json.loads(raw)
            role = rec.get("role") if isinstance(rec, dict) else None
            content = (rec.get("message") or {}).get("content") if isinstance(rec, dict) else None
            if role in ("user", "assistant") and content is not None:
                if isinstance(content, str):
                    block(c, role, {"type": "text", "text": content})
                elif isinstance(content, list):
                    for b in content:
                        block(c, role, b)
                else:
                    c["provider.raw"] += 1
            elif isinstance(rec, dict) and role is None and rec.get("type") == "turn_ended":
                c["provider.info"] += 1
            else:
                c["provider.raw"] += 1
    return c


KINDS = ["user.message", "assistant.message", "assistant.thinking",
         "assistant.tool.call", "assistant.tool.result", "system.message",
         "provider.info", "provider.raw"]

root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "real")
for path in sorted(glob.glob(os.path.join(root, "cursor", "*.jsonl"))):
    c = count(path)
    row = ", ".join(str(c[k]) for k in KINDS)
    print(f'    ("{os.path.basename(path)}", [{row}]),')
