#!/usr/bin/env python3
"""Expected per-kind event counts for the real Aider chat histories,
computed straight from the Markdown (independently of the Rust parser) by
the format aider's io.py writes, as documented in src/provider/aider.rs:

- `# aider chat started at YYYY-MM-DD HH:MM:SS`: one provider.info;
- what the human typed: `#### <line>` + two spaces; a run of such lines is
  one input: `<blank>` -> provider.info, `/...` or `!...` -> system.message,
  else user.message;
- `> ` lines (or a bare `>`) and the non-blank lines right after them: one
  system.message per run, plus a provider.info per `Main model:`/`Model:`
  line and per `Tokens:` line; inside a reply, a `> ` line starts such a
  run only after a blank line and when it ends with two spaces;
- any other text up to the next such line: one assistant.message, or a
  thinking and a message when it opens with aider's reasoning banner.

Prints one Rust array row per file for tests/it/real_aider.rs.

Usage: python3 tests/tools/real_aider_count.py [FIXTURES_DIR]
(default: $KATO_FIXTURES, else ../shared/fixtures/real beside the crate)
"""
import glob
import os
import re
import sys
from collections import Counter

START = re.compile(r"^# aider chat started at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s*$")
HUMAN = re.compile(r"^#### (.*)  $", re.S)


def classify(lines):
    """One class per line: S start, H human, Q status, C status
    continuation, T reply text, B blank."""
    out = []
    for line in lines:
        prev = out[-1] if out else "B"
        in_reply = reply_open(out)
        if line == "":
            out.append("B")
        elif START.match(line):
            out.append("S")
        elif HUMAN.match(line):
            out.append("H")
        elif (line.startswith("> ") or line.rstrip() == ">") and (
                not in_reply or (prev == "B" and line.endswith("  "))):
            out.append("Q")
        elif prev in ("Q", "C"):
            out.append("C")
        else:
            out.append("T")
    return out


def reply_open(out):
    """Is the last non-blank run a reply (T), with only blanks since?"""
    for c in reversed(out):
        if c == "B":
            continue
        return c == "T"
    return False


def count(path):
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    lines = [l[:-1] if l.endswith("\r") else l for l in data.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    classes = classify(lines)
    c = Counter()
    i = 0
    n = len(lines)
    while i < n:
        k = classes[i]
        if k == "B":
            i += 1
        elif k == "S":
            c["provider.info"] += 1
            i += 1
        elif k == "H":
            j = i
            while j < n and classes[j] == "H":
                j += 1
            text = "\n".join(HUMAN.match(l).group(1) for l in lines[i:j])
            if text == "<blank>":
                c["provider.info"] += 1
            elif text[:1] in ("/", "!"):
                c["system.message"] += 1
            else:
                c["user.message"] += 1
            i = j
        elif k == "Q":
            j = i + 1
            while j < n and classes[j] in ("Q", "C"):
                j += 1
            c["system.message"] += 1
            for l in lines[i:j]:
                t = l[1:].lstrip(" ") if l.startswith(">") else l
                if re.match(r"^(Main model|Model): (\S.*?)( with |$)", t) or t.startswith("Tokens: "):
                    c["provider.info"] += 1
            i = j
        else:  # T (C only follows Q)
            j = i
            while j < n and classes[j] in ("T", "B"):
                j += 1
            body = "\n".join(lines[i:j]).strip()
            if body:
                m = re.match(r"^-*\s*► \*\*THINKING\*\*(.*)$", body, re.S)
                if m:
                    rest = m.group(1)
                    if "► **ANSWER**" in rest:
                        th, ans = rest.split("► **ANSWER**", 1)
                        th = th.rstrip().rstrip("-").strip()
                        c["assistant.thinking"] += 1 if th else 0
                        c["assistant.message"] += 1 if ans.strip() else 0
                    else:
                        c["assistant.thinking"] += 1 if rest.strip() else 0
                else:
                    c["assistant.message"] += 1
            i = j
    return c


KINDS = ["user.message", "assistant.message", "assistant.thinking",
         "assistant.tool.call", "assistant.tool.result", "system.message",
         "provider.info", "provider.raw"]

if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "real")
    for path in sorted(glob.glob(os.path.join(root, "aider", "*.aider.chat.history.md"))):
        c = count(path)
        row = ", ".join(str(c[k]) for k in KINDS)
        print(f'    ("{os.path.basename(path)}", [{row}]),')
