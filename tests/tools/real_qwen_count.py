#!/usr/bin/env python3
"""Expected per-kind event counts for the real Qwen Code chats, computed
straight from the JSON (independently of the Rust parser) by the rules
documented in src/provider/qwen.rs. Prints one Rust array row per file for
tests/it/real_qwen.rs.

Usage: python3 tests/tools/real_qwen_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import json
import os
import sys
from collections import Counter

KINDS = ["user.message", "assistant.message", "assistant.thinking",
         "assistant.tool.call", "assistant.tool.result", "system.message",
         "provider.info", "provider.raw"]
REFERENCES = "--- Content from referenced files ---"
HOOKS = ("<qwen:user-prompt-submit-context>", "<qwen:session-start-context>")
KNOWN_PART_KEYS = ("text", "functionCall", "functionResponse", "inlineData", "fileData")


def string(v):
    return v if isinstance(v, str) else None


def is_unknown(part):
    return not any(k in part and part[k] is not None for k in KNOWN_PART_KEYS)


def count_file(path):
    c = Counter()
    meta = None
    agents = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            r = json.loads(line)
            kind = string(r.get("type")) if isinstance(r, dict) else None
            if kind not in ("user", "assistant", "tool_result", "system"):
                c["provider.raw"] += 1
                continue
            m = tuple(string(r.get(k)) for k in ("cwd", "version", "gitBranch"))
            if any(v is not None for v in m) and m != meta:
                c["provider.info"] += 1  # session_meta
                meta = m
            parts = ((r.get("message") or {}).get("parts")) or []
            sub = string(r.get("subtype"))
            payload = r.get("systemPayload") if isinstance(r.get("systemPayload"), dict) else {}
            raw = any(is_unknown(p) for p in parts)
            responses = sum(1 for p in parts if p.get("functionResponse") is not None)
            texts = [p["text"] for p in parts if isinstance(p.get("text"), str)]
            if kind == "user":
                sidechain = r.get("isSidechain") is True or isinstance(r.get("agentId"), str)
                if sidechain:
                    if "".join(texts):
                        c["system.message"] += 1
                    c["assistant.tool.result"] += responses
                    raw = False
                elif sub in ("notification", "cron"):
                    c["system.message"] += 1
                    raw = False
                elif sub is not None and sub not in ("mid_turn_user_message", "realtime_message"):
                    c["system.message"] += 1
                    c["assistant.tool.result"] += responses
                    raw = False
                else:
                    cut = len(parts)
                    for i, p in enumerate(parts):
                        t = p.get("text")
                        if isinstance(t, str) and (t.lstrip().startswith(HOOKS) or t.lstrip().startswith(REFERENCES)):
                            cut = i
                            break
                    typed = "".join(p["text"] for p in parts[:cut] if isinstance(p.get("text"), str))
                    context = hook = ""
                    for p in parts[cut:]:
                        t = p.get("text")
                        if isinstance(t, str):
                            if t.lstrip().startswith(HOOKS):
                                hook += t
                            else:
                                context += t
                    display = string(payload.get("displayText"))
                    if display is not None:
                        human, extra = display, ("" if display == typed else typed)
                    else:
                        at = typed.find(REFERENCES)
                        human, extra = (typed, "") if at < 0 else (typed[:at], typed[at:])
                    attachments = sum(1 for p in parts if p.get("inlineData") is not None or p.get("fileData") is not None)
                    if human.strip() or attachments:
                        c["user.message"] += 1
                    if extra + context:
                        c["system.message"] += 1
                    if hook:
                        c["system.message"] += 1
                    c["assistant.tool.result"] += responses
            elif kind == "assistant":
                for p in parts:
                    if p.get("functionCall") is not None:
                        c["assistant.tool.call"] += 1
                    if p.get("functionResponse") is not None:
                        c["assistant.tool.result"] += 1
                    t = p.get("text")
                    if isinstance(t, str) and t:
                        c["assistant.thinking" if p.get("thought") is True else "assistant.message"] += 1
                if isinstance(r.get("usageMetadata"), dict):
                    c["provider.info"] += 1  # token_count
            elif kind == "tool_result":
                c["assistant.tool.result"] += responses
                if responses == 0 and any(isinstance(p.get("text"), str) and p["text"] for p in parts):
                    c["system.message"] += 1
            else:  # system
                if sub == "chat_compression":
                    c["system.message"] += 1
                    c["provider.info"] += 1
                elif sub == "slash_command":
                    if payload.get("phase") == "invocation":
                        c["system.message"] += 1
                    else:
                        shown = [i.get("text") for i in payload.get("outputHistoryItems") or []
                                 if isinstance(i, dict) and isinstance(i.get("text"), str) and i.get("text")]
                        c["system.message" if shown else "provider.info"] += 1
                elif sub == "rewind":
                    c["system.message"] += 1
                elif sub in ("notification", "background_task_completed"):
                    c["system.message" if isinstance(payload.get("displayText"), str) else "provider.info"] += 1
                else:
                    c["provider.info"] += 1
            if raw:
                c["provider.raw"] += 1
    return c


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.environ.get("KATO_FIXTURES") or os.path.join(here, "..", "..", "..", "shared", "fixtures", "real")
    base = sys.argv[1] if len(sys.argv) > 1 else default
    for path in sorted(glob.glob(os.path.join(base, "qwen", "*.jsonl"))):
        c = count_file(path)
        row = ", ".join(str(c[k]) for k in KINDS)
        print(f'    ("{os.path.basename(path)}", [{row}]),')


if __name__ == "__main__":
    main()
