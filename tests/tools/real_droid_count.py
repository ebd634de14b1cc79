#!/usr/bin/env python3
"""Expected per-kind event counts for the real Factory Droid sessions,
computed straight from the JSON (independently of the Rust parser) by the
rules documented in src/provider/droid.rs. Prints one Rust array row per
file for tests/it/real_droid.rs.

Rules: session_start gives two infos (session_meta, title); a message one
event per block (text: assistant message for the assistant, otherwise a
user or system message; thinking; tool_use; tool_result; image and
document blocks are attachments of the record's human message, raw when it
has none; anything else raw); compaction_state with a summary a system
message, without an info; todo_state, session_settings and
agent_turn_outcome infos; anything else raw.

Usage: python3 tests/tools/real_droid_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

INJECTED = ("Contents of ", "<system-reminder>", "<system-notification>", "<system_reminder>")


def message(c, m):
    role = m.get("role")
    content = m.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        c["provider.raw"] += 1
        return
    results = any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    humans, attachments = 0, 0
    for b in content:
        t = b.get("type") if isinstance(b, dict) else None
        if t == "text" and isinstance(b.get("text"), str):
            if role == "assistant":
                c["assistant.message"] += 1
            elif role != "user" or results or b["text"].lstrip().startswith(INJECTED):
                c["system.message"] += 1
            else:
                c["user.message"] += 1
                humans += 1
        elif t == "thinking" and role == "assistant" and isinstance(b.get("thinking"), str):
            c["assistant.thinking"] += 1
        elif t == "tool_use" and role == "assistant" and isinstance(b.get("name"), str):
            c["assistant.tool.call"] += 1
        elif t == "tool_result":
            c["assistant.tool.result"] += 1
        elif t in ("image", "document") and role == "user" and not results:
            attachments += 1
        else:
            c["provider.raw"] += 1
    if attachments and not humans:
        c["provider.raw"] += attachments


def count(path):
    c = Counter()
    with open(path, encoding="utf-8") as f:
        for raw in f:
            if not raw.strip():
                continue
            rec = json.loads(raw)
            t = rec.get("type") if isinstance(rec, dict) else None
            if t == "session_start":
                c["provider.info"] += 2
            elif t == "message" and isinstance(rec.get("message"), dict):
                message(c, rec["message"])
            elif t == "compaction_state":
                s = rec.get("summary")
                if isinstance(s, str) and s.strip():
                    c["system.message"] += 1
                else:
                    c["provider.info"] += 1
            elif t in ("todo_state", "session_settings", "agent_turn_outcome"):
                c["provider.info"] += 1
            else:
                c["provider.raw"] += 1
    return c


KINDS = ["user.message", "assistant.message", "assistant.thinking",
         "assistant.tool.call", "assistant.tool.result", "system.message",
         "provider.info", "provider.raw"]

root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "real")
for path in sorted(glob.glob(os.path.join(root, "factory-droid", "*.jsonl"))):
    c = count(path)
    row = ", ".join(str(c[k]) for k in KINDS)
    print(f'    ("{os.path.basename(path)}", [{row}]),')
