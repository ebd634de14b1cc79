#!/usr/bin/env python3
"""Expected per-kind event counts for the real GitHub Copilot CLI files,
computed straight from the JSON (independently of the Rust parser) by the
rules documented in src/provider/copilot.rs. Prints one Rust array row per
file for tests/it/real_copilot.rs, columns in GOLDEN_KINDS order:
user.message, assistant.message, assistant.thinking, assistant.tool.call,
assistant.tool.result, system.message, provider.info, provider.raw.

Usage: python3 tests/tools/real_copilot_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

CALLS = 64
KINDS = ["user", "assistant", "thinking", "call", "result", "system", "info", "raw"]
DT_OPEN, DT_CLOSE = "<current_datetime>", "</current_datetime>"


def is_str(v):
    return isinstance(v, str)


def split_datetime(content):
    """The typed words and the appended <current_datetime> block, if any."""
    if not content.endswith(DT_CLOSE) or DT_OPEN not in content:
        return content, None
    at = content.rindex(DT_OPEN)
    before = content[:at]
    if before.endswith("\n\n"):
        before = before[:-2]
    return before, content[at:]


def injected(typed, transformed, tail):
    if transformed is None:
        return tail
    if transformed == typed:
        rest = ""
    elif typed and transformed.count(typed) == 1:
        at = transformed.index(typed)
        parts = [transformed[:at].strip(), transformed[at + len(typed):].strip()]
        rest = "\n\n".join(p for p in parts if p)
    else:
        rest = transformed.strip()
    if tail is not None and tail not in rest:
        rest = tail if not rest else rest + "\n\n" + tail
    return rest or None


def count_events(path):
    c = Counter()
    calls = []

    def remember(cid):
        calls.append(cid)
        del calls[:-CALLS]

    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        rec = json.loads(line)
        t = rec.get("type") if isinstance(rec, dict) else None
        d = rec.get("data", {}) if isinstance(rec, dict) else None
        if not is_str(t) or not isinstance(d, dict):
            c["raw"] += 1
            continue
        if t in ("assistant.turn_start", "assistant.turn_end"):
            continue
        if t in ("session.start", "session.model_change", "session.resume",
                 "session.truncation", "session.shutdown"):
            c["info"] += 1
        elif t in ("session.info", "session.error"):
            c["system" if is_str(d.get("message")) else "raw"] += 1
        elif t == "system.message":
            c["system" if is_str(d.get("content")) else "raw"] += 1
        elif t == "user.message":
            content = d.get("content")
            if not is_str(content):
                c["raw"] += 1
                continue
            typed, tail = split_datetime(content)
            tr = d.get("transformedContent")
            c["user"] += 1
            if injected(typed, tr if is_str(tr) else None, tail):
                c["system"] += 1
        elif t == "assistant.message":
            reqs = d.get("toolRequests") or []
            if not isinstance(reqs, list):
                c["raw"] += 1
                continue
            if is_str(d.get("reasoningText")) and d["reasoningText"]:
                c["thinking"] += 1
            if is_str(d.get("content")) and d["content"]:
                c["assistant"] += 1
            new = []
            for r in reqs:
                if is_str(r.get("toolCallId")) and is_str(r.get("name")):
                    c["call"] += 1
                    new.append(r["toolCallId"])
            if d.get("outputTokens") is not None:
                c["info"] += 1
            for cid in new:
                remember(cid)
        elif t == "tool.execution_start":
            cid = d.get("toolCallId")
            if not is_str(cid):
                c["raw"] += 1
            elif cid not in calls:
                c["call"] += 1
                remember(cid)
        elif t == "tool.execution_complete":
            c["result" if is_str(d.get("toolCallId")) else "raw"] += 1
        else:
            c["raw"] += 1
    return c


def count_legacy(path):
    c = Counter()
    doc = json.load(open(path, encoding="utf-8"))
    c["info"] += 1  # session_meta
    for item in doc.get("timeline") or []:
        t = item.get("type")
        text = item.get("text")
        if t == "user" and is_str(text):
            c["user"] += 1
            exp = item.get("expandedText")
            if is_str(exp) and exp != text:
                c["system"] += 1
        elif t == "copilot" and is_str(text):
            c["assistant"] += 1
        elif t in ("info", "error") and is_str(text):
            c["system"] += 1
        elif t == "tool_call_completed" and is_str(item.get("callId")) and is_str(item.get("name")):
            c["call"] += 1
            c["result"] += 1
        else:
            c["raw"] += 1
    return c


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "KATO_FIXTURES",
        os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures", "real"))
    files = sorted(glob.glob(os.path.join(base, "copilot-cli", "*.json*")))
    for path in files:
        c = count_legacy(path) if path.endswith(".json") else count_events(path)
        row = ", ".join(str(c[k]) for k in KINDS)
        print(f'    ("{os.path.basename(path)}", [{row}]),')


if __name__ == "__main__":
    main()
