#!/usr/bin/env python3
"""Golden event counts for the Cline real corpus (`cline/*.json.gz`).

Written from the format (Cline's api_conversation_history.json: a JSON
array of Anthropic-style messages) and the mapping rules stated in
src/provider/cline.rs, not from kato's output. Prints, per file, the
counts in the order of tests/it/harness.rs GOLDEN_KINDS:
user.message, assistant.message, assistant.thinking, assistant.tool.call,
assistant.tool.result, system.message, provider.info, provider.raw.

Usage: python3 tests/tools/real_cline_count.py [CORPUS_DIR]
"""
import gzip
import json
import os
import re
import sys

HUMAN_TAGS = ("task", "feedback", "user_message")
HEADER = re.compile(r"^\[[A-Za-z0-9_:-]+(\] Result:| for )")


def is_tool_result(text):
    return bool(HEADER.match(text)) and "] Result:" in text


def is_bare_header(text):
    return is_tool_result(text) and text.rstrip().endswith("] Result:")


def human_split(text):
    """(pre, human, post) or None: a tag opening the block or its second line."""
    if text.startswith("<"):
        pre, body = "", text
    elif "\n" in text:
        pre, body = text.split("\n", 1)
    else:
        return None
    for tag in HUMAN_TAGS:
        if body.startswith("<%s>" % tag):
            rest = body[len(tag) + 2:]
            close = "</%s>" % tag
            if close not in rest:
                return None
            inner, post = rest.split(close, 1)
            return pre, inner, post
    return None


def env_cwd(text):
    for line in text.split("\n"):
        m = re.match(r"^# Current Working Directory \((.+)\) Files$", line)
        if m:
            return m.group(1)
    return None


def count(messages):
    c = dict.fromkeys(["user", "asst", "think", "call", "result", "sys", "info", "raw"], 0)
    c["info"] += 1  # session_meta
    cwd = None
    prev = None
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or "content" not in m:
            c["raw"] += 1
            prev = m
            continue
        content = m["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            c["raw"] += 1
            prev = m
            continue
        role = m["role"]
        if role == "assistant":
            for b in content:
                t = b.get("type") if isinstance(b, dict) else None
                if t == "text" and isinstance(b.get("text"), str):
                    if b["text"].strip():
                        c["asst"] += 1
                elif t == "thinking" and isinstance(b.get("thinking"), str):
                    if b["thinking"].strip():
                        c["think"] += 1
                elif t == "tool_use" and isinstance(b.get("id"), str) and isinstance(b.get("name"), str):
                    c["call"] += 1
                else:
                    c["raw"] += 1
            if "modelInfo" in m or "metrics" in m:
                c["info"] += 1
        elif role == "user":
            humans = 0
            images = 0
            j = 0
            while j < len(content):
                b = content[j]
                t = b.get("type") if isinstance(b, dict) else None
                if t == "text" and isinstance(b.get("text"), str):
                    text = b["text"]
                    nxt = content[j + 1] if j + 1 < len(content) else None
                    if is_bare_header(text) and isinstance(nxt, dict) and nxt.get("type") == "text" \
                            and isinstance(nxt.get("text"), str):
                        text = text + "\n" + nxt["text"]
                        j += 1
                    if not text.strip():
                        pass
                    elif is_tool_result(text):
                        c["result"] += 1
                        if text.startswith("[ask_followup_question") and "] Result:\n<answer>\n" in text \
                                and "</answer>" in text.split("] Result:\n<answer>\n", 1)[1]:
                            c["user"] += 1
                            humans += 1
                    elif text.startswith("[ERROR]"):
                        c["sys"] += 1
                    elif text.startswith("<environment_details>"):
                        c["sys"] += 1
                        d = env_cwd(text)
                        if d is not None and d != cwd:
                            cwd = d
                            c["info"] += 1
                    elif human_split(text) is not None:
                        pre, _, post = human_split(text)
                        c["user"] += 1
                        humans += 1
                        if pre.strip():
                            c["sys"] += 1
                        if post.strip():
                            c["sys"] += 1
                    else:
                        c["sys"] += 1
                elif t == "image":
                    images += 1
                elif t == "tool_result" and isinstance(b.get("tool_use_id"), str):
                    c["result"] += 1
                else:
                    c["raw"] += 1
                j += 1
            if images and not humans:
                c["info"] += images
        else:
            c["raw"] += 1
        prev = m
    return [c[k] for k in ["user", "asst", "think", "call", "result", "sys", "info", "raw"]]


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "KATO_REAL_CORPUS", os.path.join("..", "shared", "fixtures", "real"))
    d = os.path.join(base, "cline")
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json.gz"):
            continue
        with gzip.open(os.path.join(d, name), "rt", encoding="utf-8") as f:
            print(name, count(json.load(f)))


if __name__ == "__main__":
    main()
