#!/usr/bin/env python3
"""Independent event counts for the real Codex corpus (golden numbers of
tests/it/real_codex.rs).

Reads each rollout file with Python's json module and counts, per canonical
kind (and per system category), the events the Codex mapping rules
produce. It shares no code with the Rust parser; where the two disagree one
of them is wrong.

Usage: python3 tests/tools/real_codex_counts.py [FIXTURES_DIR]   (default:
$KATO_FIXTURES, else ../shared/fixtures/real beside the crate); prints a Rust
table for tests/it/real_codex.rs.

The rules, in the order they are applied to each line:

* envelope `{timestamp,type,payload}`: `session_meta` and `turn_context` ->
  provider.info; `compacted` -> system.message Compaction + provider.info;
  `response_item`, `event_msg` as below; other types -> provider.raw.
* legacy (no envelope): the header `{id,timestamp,...}` and
  `{"record_type":"state"}` -> provider.info; bare items as response items.
* response items: assistant message -> assistant.message; developer/system
  role -> system InjectedContext; user role: injected openings -> system
  InjectedContext, `<user_shell_command>` -> system UserShell, anything else
  is held as the twin of the `user_message` event that must come next (in
  legacy files, which have no event stream, it is a user.message);
  reasoning -> assistant.thinking; function_call / custom_tool_call /
  web_search_call / local_shell_call -> assistant.tool.call; *_output -> assistant.tool.result;
  ghost_snapshot -> provider.info; unknown types -> provider.raw.
* a held user twin: dropped when the very next record is a `user_message`
  event with the same (trimmed) text; otherwise emitted as system
  ModelInput before that record's own events (and at end of input).
* events: user_message -> user.message (in a subagent thread: system
  SubagentPrompt); agent_message / agent_reasoning -> held until the
  response item with the same text arrives (then dropped); if a turn
  boundary (user_message, task_started, task_complete, turn_aborted) comes
  first they are emitted as assistant.message / assistant.thinking;
  token_count, task_started, task_complete, context_compacted,
  exec_command_end, patch_apply_end, mcp_tool_call_end, view_image_tool_call,
  web_search_end -> provider.info; turn_aborted -> system Notice; error ->
  system Error; unknown types -> provider.raw.
"""
import json
import os
import sys

INJECTED = ("# AGENTS.md instructions", "<environment_context>", "<user_instructions>",
            "<permissions instructions>", "<turn_aborted>", "<INSTRUCTIONS>",
            "<model_switch>", "<collaboration_mode>")
INFO_EVENTS = {"token_count", "task_started", "task_complete", "context_compacted",
               "exec_command_end", "patch_apply_end", "mcp_tool_call_end",
               "view_image_tool_call", "web_search_end"}
ITEMS = {"message", "reasoning", "function_call", "function_call_output",
         "custom_tool_call", "custom_tool_call_output", "web_search_call", "local_shell_call",
         "ghost_snapshot"}

KINDS = ["user.message", "assistant.message", "assistant.thinking", "assistant.tool.call",
         "assistant.tool.result", "system.message", "provider.info", "provider.raw"]
CATS = ["injected-context", "compaction", "subagent-prompt", "user-shell", "error",
        "notice", "model-input"]


def count(path):
    kinds = dict.fromkeys(KINDS, 0)
    cats = dict.fromkeys(CATS, 0)
    em_user_lines = 0
    state = {"subagent": None, "legacy": False, "pending_user": None, "pending_agent": []}

    def add(kind, cat=None):
        kinds[kind] += 1
        if cat:
            cats[cat] += 1

    def release():
        if state["pending_user"] is not None:
            add("system.message", "model-input")
            state["pending_user"] = None

    def boundary():
        for thinking, _ in state["pending_agent"]:
            add("assistant.thinking" if thinking else "assistant.message")
        state["pending_agent"] = []

    def take_agent(thinking, text):
        for i, (t, x) in enumerate(state["pending_agent"]):
            if t == thinking and x == text.strip():
                del state["pending_agent"][i]
                return

    def item(p):
        t = p.get("type")
        if t == "message" and p.get("role") == "user":
            text = "".join(b.get("text") or "" for b in p["content"]
                           if b.get("type") not in ("input_image", "image", "input_file"))
            s = text.lstrip()
            release()
            if s.startswith("<user_shell_command>"):
                add("system.message", "user-shell")
            elif s.startswith(INJECTED):
                add("system.message", "injected-context")
            elif state["legacy"]:
                add("user.message")
            else:
                state["pending_user"] = text.strip()
            return
        release()
        if t == "message":
            if p["role"] == "assistant":
                take_agent(False, "".join(b.get("text") or "" for b in p["content"]))
                add("assistant.message")
            else:
                add("system.message", "injected-context")
        elif t == "reasoning":
            parts = [b.get("text") or "" for b in p.get("summary") or []]
            parts = [x for x in parts if x.strip()]
            if not parts:
                parts = [b.get("text") or "" for b in p.get("content") or []]
                parts = [x for x in parts if x.strip()]
            for x in parts:
                take_agent(True, x)
            add("assistant.thinking")
        elif t in ("function_call", "custom_tool_call", "web_search_call", "local_shell_call"):
            add("assistant.tool.call")
        elif t in ("function_call_output", "custom_tool_call_output"):
            add("assistant.tool.result")
        elif t == "ghost_snapshot":
            add("provider.info")
        else:
            add("provider.raw")

    def event(p):
        nonlocal em_user_lines
        t = p.get("type")
        if t == "user_message":
            em_user_lines += 1
            boundary()
            pending = state["pending_user"]
            state["pending_user"] = None
            if pending is not None and pending != p["message"].strip():
                add("system.message", "model-input")
            if state["subagent"]:
                add("system.message", "subagent-prompt")
            else:
                add("user.message")
            return
        release()
        if t in ("agent_message", "agent_reasoning"):
            text = p["message"] if t == "agent_message" else p["text"]
            state["pending_agent"].append((t == "agent_reasoning", text.strip()))
        elif t in ("task_started", "task_complete"):
            boundary()
            add("provider.info")
        elif t == "turn_aborted":
            boundary()
            add("system.message", "notice")
        elif t == "error":
            add("system.message", "error")
        elif t in INFO_EVENTS:
            add("provider.info")
        else:
            add("provider.raw")

    first_meta = True
    with open(path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if "payload" in o and isinstance(o.get("type"), str):
                top, p = o["type"], o["payload"]
                if top == "response_item":
                    item(p)
                elif top == "event_msg":
                    event(p)
                else:
                    release()
                    if top == "session_meta":
                        if first_meta:
                            src = p.get("source")
                            if isinstance(src, dict) and src.get("subagent"):
                                state["subagent"] = src["subagent"]
                            first_meta = False
                        add("provider.info")
                    elif top == "turn_context":
                        add("provider.info")
                    elif top == "compacted":
                        add("system.message", "compaction")
                        add("provider.info")
                    else:
                        add("provider.raw")
            elif o.get("type") in ITEMS:
                state["legacy"] = True
                item(o)
            elif "record_type" in o:
                release()
                add("provider.info")
            elif "id" in o:
                release()
                state["legacy"] = True
                add("provider.info")
            else:
                release()
                add("provider.raw")
    release()
    return kinds, cats, em_user_lines


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KATO_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "real")
    d = os.path.join(root, "codex")
    for name in sorted(os.listdir(d)):
        if not name.endswith(".jsonl"):
            continue
        kinds, cats, em_users = count(os.path.join(d, name))
        k = ", ".join(str(kinds[x]) for x in KINDS)
        c = ", ".join(str(cats[x]) for x in CATS)
        print(f'    ("{name}", [{k}], [{c}], {em_users}),')


if __name__ == "__main__":
    main()
