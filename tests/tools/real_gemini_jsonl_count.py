#!/usr/bin/env python3
"""Expected per-kind event counts for the real Gemini CLI JSON Lines chats,
computed straight from the JSON (independently of the Rust parser) by the
rules documented in src/provider/gemini_jsonl.rs. Prints one Rust array row
per file for tests/it/real_gemini_jsonl.rs.

Usage: python3 tests/tools/real_gemini_jsonl_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

WINDOW = 64
STEERING = "User steering update:"
REFERENCES = "--- Content from referenced files ---"
INJECTED = ("<session_context>", "<hook_context>")


def parts(content):
    if content is None:
        return []
    if isinstance(content, (str, dict)):
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


def response_text(resp):
    if not isinstance(resp, dict):
        return json.dumps(resp)
    out, err = resp.get("output"), resp.get("error")
    pick = [v if isinstance(v, str) else json.dumps(v) for v in (out, err) if v is not None]
    return "\n".join(pick) if pick else json.dumps(resp, separators=(",", ":"))


class Chat:
    def __init__(self):
        self.c = Counter()
        self.seen = set()      # event ids delivered
        self.known = set()     # message ids seen
        self.window = []       # last message ids, in order
        self.results = []      # (call id, output) of inline results
        self.users = False
        self.subagent = False

    def emit(self, eid, kind):
        if eid in self.seen:
            return
        self.seen.add(eid)
        self.c[kind] += 1

    def user_events(self, m, ps, checkpoint):
        """(event id, kind) pairs of a user message."""
        mid = m["id"]
        out = []
        typed, ctx = text(ps), ""
        responses = [p for p in ps if isinstance(p, dict) and "functionResponse" in p]
        if self.subagent:
            if typed.strip():
                out.append((mid, "system.message"))
        else:
            if REFERENCES in typed:
                at = typed.index(REFERENCES)
                typed, ctx = typed[:at].rstrip(), typed[at:]
            if m.get("displayContent") is not None:
                typed, ctx = text(parts(m["displayContent"])), text(ps)
            if typed.startswith(STEERING) and "<user_input>" in typed and "</user_input>" in typed:
                ctx = ctx or "steering"
                typed = typed.split("<user_input>", 1)[1].split("</user_input>", 1)[0].strip("\n")
            attach = sum(1 for p in ps if isinstance(p, dict) and ("inlineData" in p or "fileData" in p))
            human = not checkpoint and not responses and not typed.lstrip().startswith(INJECTED)
            if typed.strip() or attach:
                out.append((mid, "user.message" if human else "system.message"))
                if human and "<hook_context>" in typed:
                    out.append((mid + "#hook-context", "system.message"))
            if ctx.strip():
                out.append((mid + "#context", "system.message"))
        for n, p in enumerate(ps):
            if isinstance(p, dict) and "functionResponse" in p:
                fr = p["functionResponse"]
                key = (fr.get("id"), response_text(fr.get("response")))
                if key not in self.results:
                    out.append((f"{mid}#response-{n}", "assistant.tool.result"))
        return out

    def gemini_events(self, m, ps):
        mid = m["id"]
        out = []
        for n, t in enumerate(m.get("thoughts") or []):
            if (t.get("subject") or "").strip() or (t.get("description") or "").strip():
                out.append((f"{mid}#thought-{n}", "assistant.thinking"))
        if text(ps).strip():
            out.append((mid, "assistant.message"))
        for n, tc in enumerate(m.get("toolCalls") or []):
            out.append((f"{mid}#call-{n}", "assistant.tool.call"))
            if tc.get("result") or tc.get("status") in ("success", "error", "cancelled"):
                out.append((f"{mid}#result-{n}", "assistant.tool.result"))
                rs = [r for r in tc.get("result") or [] if isinstance(r, dict) and "functionResponse" in r]
                output = "\n".join(response_text(r["functionResponse"].get("response")) for r in rs)
                self.results = (self.results + [(tc.get("id"), output)])[-64:]
        if isinstance(m.get("tokens"), dict):
            out.append((f"{mid}#tokens", "provider.info"))
        return out

    def message(self, m, checkpoint=False):
        mid = m["id"]
        if checkpoint and mid in self.known:
            return
        ps = parts(m.get("content"))
        ty = m.get("type")
        if ty == "user":
            events = self.user_events(m, ps, checkpoint)
            self.users = True
        elif ty == "gemini":
            events = self.gemini_events(m, ps)
        elif ty in ("info", "warning", "error"):
            events = [(mid, "system.message")] if text(ps).strip() else []
        else:
            events = [(mid, "provider.raw")]
        for eid, kind in events:
            self.emit(eid, kind)
        if mid not in self.known:
            self.window = (self.window + [mid])[-WINDOW:]
        self.known.add(mid)

    def line(self, off, rec):
        if isinstance(rec, dict) and isinstance(rec.get("$rewindTo"), str):
            self.c["provider.info"] += 1
            self.c["system.message"] += 1
            target = rec["$rewindTo"]
            at = self.window.index(target) if target in self.window else 0
            self.window = self.window[:at]
        elif isinstance(rec, dict) and isinstance(rec.get("id"), str):
            self.message(rec)
        elif isinstance(rec, dict) and isinstance(rec.get("$set"), dict):
            s = rec["$set"]
            msgs = s.get("messages") if isinstance(s.get("messages"), list) else None
            keys = [k for k in s if not (k == "messages" and msgs is not None)]
            if any(k != "lastUpdated" for k in keys):
                self.c["provider.info"] += 1
            if msgs is not None:
                ids = [m["id"] for m in msgs if isinstance(m, dict) and isinstance(m.get("id"), str)]
                gone = [i for i in self.window if i not in ids]
                self.c["provider.info"] += 1
                if gone:
                    self.c["system.message"] += 1
                self.window = [i for i in self.window if i in ids]
                for m in msgs:
                    if isinstance(m, dict) and isinstance(m.get("id"), str):
                        self.message(m, checkpoint=True)
        elif (isinstance(rec, dict) and isinstance(rec.get("sessionId"), str)
              and isinstance(rec.get("projectHash"), str)):
            self.c["provider.info"] += 1
            self.subagent = self.subagent or rec.get("kind") == "subagent"
            for m in rec.get("messages") or []:
                if isinstance(m, dict) and isinstance(m.get("id"), str):
                    self.message(m)
        else:
            self.c["provider.raw"] += 1


def count(path):
    chat = Chat()
    with open(path, encoding="utf-8") as f:
        off = 0
        for raw in f:
            if raw.strip():
                chat.line(off, json.loads(raw))
            off += len(raw.encode("utf-8"))
    return chat.c


KINDS = ["user.message", "assistant.message", "assistant.thinking",
         "assistant.tool.call", "assistant.tool.result", "system.message",
         "provider.info", "provider.raw"]

root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "real")
for path in sorted(glob.glob(os.path.join(root, "gemini-jsonl", "*.jsonl"))):
    c = count(path)
    row = ", ".join(str(c[k]) for k in KINDS)
    print(f'    ("{os.path.basename(path)}", [{row}]),')
