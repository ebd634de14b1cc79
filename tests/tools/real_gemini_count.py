#!/usr/bin/env python3
"""Expected per-kind event counts for the real Gemini chats, computed straight
from the JSON (independently of the Rust parser) by the rules documented in
src/provider/gemini.rs. Prints one Rust array row per file for
tests/it/real_gemini.rs.

Usage: python3 tests/tools/real_gemini_count.py [FIXTURES_DIR]   (default:
$KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

STEERING = "User steering update:"
REFERENCES = "--- Content from referenced files ---"


def parts(content):
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if isinstance(content, dict):
        return [content]
    return list(content)


def text(ps):
    out = ""
    for p in ps:
        if isinstance(p, str):
            out += p
        elif isinstance(p.get("text"), str) and "functionResponse" not in p:
            out += p["text"]
    return out


def steering(t):
    if not t.startswith(STEERING) or "<user_input>" not in t:
        return None
    a = t.index("<user_input>") + len("<user_input>")
    if "</user_input>" not in t[a:]:
        return None
    b = t.index("</user_input>", a)
    before = t[: t.index("<user_input>")].rstrip()
    after = t[b + len("</user_input>"):].lstrip()
    return t[a:b].strip("\n"), "\n".join(x for x in (before, after) if x)


def count(doc):
    c = Counter({"provider.info": 1})  # session_meta
    msgs = doc["messages"]
    sub = doc.get("kind") == "subagent"
    for i, m in enumerate(msgs):
        ty = m.get("type")
        ps = parts(m.get("content"))
        if ty == "user":
            if sub:
                if text(ps).strip():
                    c["system.message"] += 1
            else:
                typed, ctx = text(ps), ""
                if REFERENCES in typed:
                    at = typed.index(REFERENCES)
                    typed, ctx = typed[:at].rstrip(), typed[at:]
                if m.get("displayContent") is not None:
                    typed, ctx = text(parts(m["displayContent"])), text(ps)
                s = steering(typed)
                if s:
                    typed, ctx = s[0], ctx or s[1]
                attach = sum(1 for p in ps if isinstance(p, dict)
                             and ("inlineData" in p or "fileData" in p))
                if typed.strip() or attach:
                    c["user.message"] += 1
                if ctx.strip():
                    c["system.message"] += 1
            for p in ps:
                if isinstance(p, dict) and "functionResponse" in p:
                    fr = p["functionResponse"]
                    dup = any(
                        r.get("functionResponse", {}).get("id") == fr.get("id")
                        and r["functionResponse"].get("response") == fr.get("response")
                        for prev in msgs[:i] if prev.get("type") == "gemini"
                        for tc in prev.get("toolCalls") or [] if tc.get("id") == fr.get("id")
                        for r in tc.get("result") or [])
                    if not dup:
                        c["assistant.tool.result"] += 1
        elif ty == "gemini":
            for t in m.get("thoughts") or []:
                if (t.get("subject") or "").strip() or (t.get("description") or "").strip():
                    c["assistant.thinking"] += 1
            if text(ps).strip():
                c["assistant.message"] += 1
            for tc in m.get("toolCalls") or []:
                c["assistant.tool.call"] += 1
                if tc.get("result") or tc.get("status") in ("success", "error", "cancelled"):
                    c["assistant.tool.result"] += 1
        elif ty in ("info", "warning", "error"):
            if text(ps).strip():
                c["system.message"] += 1
        else:
            c["provider.raw"] += 1
    return c


KINDS = ["user.message", "assistant.message", "assistant.thinking",
         "assistant.tool.call", "assistant.tool.result", "system.message",
         "provider.info", "provider.raw"]

root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "real")
for path in sorted(glob.glob(os.path.join(root, "gemini", "*.json"))):
    c = count(json.load(open(path, encoding="utf-8")))
    row = ", ".join(str(c[k]) for k in KINDS)
    print(f'    ("{os.path.basename(path)}", [{row}]),')
