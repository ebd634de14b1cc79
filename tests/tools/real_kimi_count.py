#!/usr/bin/env python3
"""Expected per-kind event counts for the real Kimi CLI files (wire.jsonl
sessions and context_sub_<n>.jsonl subagent contexts), computed straight
from the JSON (independently of the Rust parser) by the mapping documented
in src/provider/kimi.rs. context.jsonl is not a session file (see there)
and has no row. Prints one Rust array row per file for
tests/it/real_kimi.rs, columns in GOLDEN_KINDS order: user, assistant,
thinking, tool call, tool result, system, info, raw.

Usage: python3 tests/tools/real_kimi_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

KINDS = ["user", "assistant", "thinking", "call", "result", "system", "info", "raw"]
SILENT = {"StepBegin", "TurnEnd", "CompactionEnd"}


def wire_event(c, kind, payload):
    if kind in ("TurnBegin", "SteerInput"):
        c["user"] += 1
    elif kind == "ContentPart":
        t = payload.get("type")
        if t == "text" and isinstance(payload.get("text"), str):
            c["assistant"] += payload["text"] != ""
        elif t == "think" and isinstance(payload.get("think"), str):
            c["thinking"] += payload["think"] != ""
        else:
            c["raw"] += 1
    elif kind == "ToolCall":
        c["call"] += 1
    elif kind == "ToolResult":
        c["result"] += 1
    elif kind in ("CompactionBegin", "StepInterrupted", "Notification"):
        c["system"] += 1
    elif kind == "StatusUpdate":
        c["info"] += 1
    elif kind in SILENT:
        pass
    elif kind == "SubagentEvent":
        ev = payload["event"]
        if ev["type"] in ("TurnBegin", "SteerInput"):
            c["system"] += 1  # the parent's prompt to its subagent
        else:
            wire_event(c, ev["type"], ev["payload"])
    elif kind in ("ApprovalRequest", "QuestionRequest", "ApprovalResponse",
                  "ApprovalRequestResolved", "QuestionResponse"):
        c["decision"] += 1
    else:
        c["raw"] += 1


def wire(lines):
    c = Counter()
    for line in lines:
        d = json.loads(line)
        if "message" in d:
            wire_event(c, d["message"]["type"], d["message"]["payload"])
        elif d.get("type") == "metadata":
            c["info"] += 1
        else:
            c["raw"] += 1
    return c


def context(lines):
    c = Counter()
    for line in lines:
        d = json.loads(line)
        role = d["role"]
        if role in ("user", "_system_prompt"):
            c["system"] += 1
        elif role == "assistant":
            content = d.get("content")
            if isinstance(content, str):
                c["assistant"] += content != ""
            for p in content if isinstance(content, list) else []:
                if p.get("type") == "text":
                    c["assistant"] += bool(p.get("text"))
                elif p.get("type") == "think":
                    c["thinking"] += bool(p.get("think"))
                else:
                    c["raw"] += 1
            c["call"] += len(d.get("tool_calls") or [])
        elif role == "tool":
            c["result" if "tool_call_id" in d else "raw"] += 1
        elif role == "_usage":
            c["info"] += 1
        elif role == "_checkpoint":
            pass
        else:
            c["raw"] += 1
    return c


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/fixtures/real")
    for path in sorted(glob.glob(os.path.join(base, "kimi-cli", "*.jsonl"))):
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f.read().split("\n") if l.strip()]
        if name.endswith("_wire.jsonl"):
            c = wire(lines)
        elif "_context_sub_" in name:
            c = context(lines)
        else:
            continue
        row = ", ".join(str(c[k]) for k in KINDS)
        print(f'    ("{name}", [{row}]),')


if __name__ == "__main__":
    main()
