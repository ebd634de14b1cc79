#!/usr/bin/env python3
"""Expected per-kind event counts for the real Amp threads, computed
straight from the JSON (independently of the Rust parser) by the mapping
documented in src/provider/amp.rs. Prints one Rust array row per file for
tests/it/real_amp.rs, columns in GOLDEN_KINDS order: user, assistant,
thinking, tool call, tool result, system, info, raw.

Usage: python3 tests/tools/real_amp_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

KINDS = ["user", "assistant", "thinking", "call", "result", "system", "info", "raw"]


def s(v):
    return isinstance(v, str)


def count(doc):
    c = Counter()
    c["info"] += 1  # session_meta
    trees = (doc.get("env") or {}).get("initial", {}).get("trees") or []
    if trees and s(trees[0].get("uri")) and trees[0]["uri"].startswith("file:///"):
        c["info"] += 1  # cwd
    if s(doc.get("title")) and doc["title"].strip():
        c["info"] += 1  # title
    for m in doc["messages"]:
        blocks = m.get("content")
        role = m.get("role")
        if not isinstance(blocks, list) or role not in ("user", "assistant"):
            c["raw"] += 1
            continue
        if role == "user":
            human = False
            for b in blocks:
                t = b.get("type")
                if t == "text" and s(b.get("text")) or t == "image":
                    human = True
                elif t == "tool_result" and s(b.get("toolUseID")) and "run" in b:
                    c["result"] += 1
                else:
                    c["raw"] += 1
            c["user"] += human
        else:
            for b in blocks:
                t = b.get("type")
                if t == "text" and s(b.get("text")):
                    c["assistant"] += bool(b["text"].strip())
                elif t == "thinking" and s(b.get("thinking")):
                    c["thinking"] += bool(b["thinking"].strip())
                elif t == "tool_use" and s(b.get("id")) and s(b.get("name")):
                    c["call"] += 1
                else:
                    c["raw"] += 1
            if (m.get("state") or {}).get("type") == "error":
                c["system"] += 1
    return c


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/fixtures/real")
    for path in sorted(glob.glob(os.path.join(base, "amp", "*.json"))):
        with open(path, encoding="utf-8") as f:
            c = count(json.load(f))
        row = ", ".join(str(c[k]) for k in KINDS)
        print(f'    ("{os.path.basename(path)}", [{row}]),')


if __name__ == "__main__":
    main()
