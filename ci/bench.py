"""Driver for ci/bench: generate sessions, time commands, report ratios."""
import argparse
import glob, json, os, random, resource, subprocess, sys, time

WORDS = ("the of and to in is that for it with as was on be by this are from "
         "function return value error config file module test build crate "
         "parser event session stream render markdown cursor offset thread").split()

def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))

def code(rng, lines):
    return "\n".join(f"    let x{i} = {words(rng, 4).replace(' ', '_')}({i});" for i in range(lines))

def gen_claude(path, size, rng):
    sid = "0890bead-0ab3-4ee9-98f8-585fd289cc1f"
    n = 0
    with open(path, "w") as f:
        while f.tell() < size:
            n += 1
            ts = f"2026-01-08T{(n // 3600) % 24:02d}:{(n // 60) % 60:02d}:{n % 60:02d}.000Z"
            base = {"parentUuid": None, "isSidechain": False, "userType": "external",
                    "cwd": "/home/u/project", "sessionId": sid, "version": "2.1.78",
                    "gitBranch": "main", "timestamp": ts}
            def line(obj):
                d = dict(base); d.update(obj); d["uuid"] = f"u-{n}-{rng.random()}"
                f.write(json.dumps(d) + "\n")
            line({"type": "user", "message": {"role": "user", "content": words(rng, 40)}})
            mid = f"msg_{n}"
            model = "claude-opus-4-6"
            line({"type": "assistant", "message": {"model": model, "id": mid, "role": "assistant", "type": "message",
                  "content": [{"type": "thinking", "thinking": words(rng, 120), "signature": "Eu" + "x" * 300}],
                  "usage": {"input_tokens": 3, "output_tokens": 100}}})
            for k in range(3):
                tid = f"toolu_{n}_{k}"
                line({"type": "assistant", "message": {"model": model, "id": mid, "role": "assistant", "type": "message",
                      "content": [{"type": "tool_use", "id": tid, "name": "Bash",
                                   "input": {"command": "cargo test " + words(rng, 5), "description": words(rng, 8)}}]}})
                out = code(rng, rng.randint(20, 120))
                line({"type": "user", "message": {"role": "user", "content": [
                      {"type": "tool_result", "tool_use_id": tid, "content": out, "is_error": False}]},
                      "toolUseResult": {"stdout": out, "stderr": "", "interrupted": False, "isImage": False}})
            line({"type": "assistant", "message": {"model": model, "id": mid, "role": "assistant", "type": "message",
                  "content": [{"type": "text", "text": words(rng, 200) + "\n\n```rust\n" + code(rng, 10) + "\n```\n"}]}})

def gen_codex(path, size, rng):
    sid = "019ac88c-3f80-7990-a29a-d20399dcab74"
    with open(path, "w") as f:
        def line(t, payload, n=0):
            f.write(json.dumps({"timestamp": f"2025-11-28T03:{(n // 60) % 60:02d}:{n % 60:02d}.000Z", "type": t, "payload": payload}) + "\n")
        line("session_meta", {"id": sid, "timestamp": "2025-11-28T03:40:25.857Z", "cwd": "/home/u/p",
                              "originator": "codex_cli_rs", "cli_version": "0.77.0", "source": "cli"})
        n = 0
        while f.tell() < size:
            n += 1
            line("turn_context", {"cwd": "/home/u/p", "model": "gpt-5.2-codex", "approval_policy": "never"}, n)
            text = words(rng, 40)
            line("response_item", {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}, n)
            line("event_msg", {"type": "user_message", "message": text, "images": []}, n)
            line("response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": words(rng, 60)}],
                                   "content": None, "encrypted_content": "gAAAA" + "y" * 800}, n)
            for k in range(3):
                cid = f"call_{n}_{k}"
                line("response_item", {"type": "function_call", "name": "shell_command",
                                       "arguments": json.dumps({"command": "cargo build " + words(rng, 4), "workdir": "/home/u/p"}),
                                       "call_id": cid}, n)
                out = code(rng, rng.randint(20, 120))
                line("response_item", {"type": "function_call_output", "call_id": cid,
                                       "output": "Exit code: 0\nWall time: 1 seconds\nOutput:\n" + out}, n)
                line("event_msg", {"type": "token_count", "info": {"total_token_usage": {"input_tokens": n}}}, n)
            msg = words(rng, 200)
            line("response_item", {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": msg}]}, n)
            line("event_msg", {"type": "agent_message", "message": msg}, n)

def adversarial_inputs(size):
    """Tool inputs of about `size` bytes built to hurt a JSON renderer (the
    shapes of tests/it/render_limits.rs)."""
    half, under = size // 2, 120
    wide, i, n = ["{"], 0, 1
    while n + 32 < size:
        part = f'"k{i}":{i},'
        wide.append(part)
        n, i = n + len(part), i + 1
    wide.append('"end":0}')
    return [("deep", "[" * half + "]" * half),
            ("deep objects", '{"a":' * (size // 6) + "1" + "}" * (size // 6)),
            ("many values under the depth limit",
             "[" * under + "1," * ((size - 2 * under) // 2 - 1) + "1" + "]" * under),
            ("wide object", "".join(wide)),
            ("long string", '{"s":"' + "x" * (size - 8) + '"}'),
            ("many small values", "[" + "1," * (half - 2) + "1]")]

def gen_tool_lines(path, tool_input, lines):
    """A Claude session of `lines` assistant lines, each calling a tool
    with `tool_input`."""
    sid = "0890bead-0ab3-4ee9-98f8-585fd289cc1f"
    with open(path, "w") as f:
        for n in range(lines):
            f.write('{"type":"assistant","sessionId":"%s","uuid":"a%d","parentUuid":null,'
                    '"isSidechain":false,"timestamp":"2026-01-08T15:56:40.000Z","message":'
                    '{"id":"msg_%d","role":"assistant","model":"claude-opus-4-6","content":'
                    '[{"type":"tool_use","id":"toolu_%d","name":"Bash","input":' % (sid, n, n, n))
            f.write(tool_input)
            f.write("}]}}\n")

def adversarial_table(a, line_mb=16, lines=4):
    """Time per MB of `kato export --tool-calls` on sessions made of
    adversarial tool inputs (`lines` lines of `line_mb` MiB), next to an
    ordinary session of the same size, as a ratio to the ordinary one in
    the same run; with --instructions, instructions per MB on one line."""
    size = line_mb * lines << 20
    # Under a configured Claude root: a first line longer than what
    # sniffing reads would not be recognised elsewhere.
    root = os.path.join(a.work, "claude")
    conf = os.path.join(a.work, "adversarial.toml")
    with open(conf, "w") as f:
        f.write(f'[providers.claude]\nroots = ["{root}"]\n')
    session = lambda d: os.path.join(root, d, "0890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl")
    ordinary = session("-ordinary")
    os.makedirs(os.path.dirname(ordinary), exist_ok=True)
    gen_claude(ordinary, size, random.Random(11))
    files = [("ordinary session", ordinary)]
    for name, tool_input in adversarial_inputs(line_mb << 20):
        path = session("-" + name.replace(" ", "-"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        gen_tool_lines(path, tool_input, lines)
        files.append((name, path))
    out = os.path.join(a.work, "out.md")
    cmds = [[a.kato, "--config", conf, "export", "--tool-calls", p, "-o", out] for _, p in files]
    wall, cpu = best_times(cmds, a.repeat)
    print(f"\nadversarial tool inputs ({lines} lines of {line_mb} MiB per session), "
          f"kato export --tool-calls")
    print(f"{'shape':<62} {'ms/MB':>7} {'x ord.':>7} {'CPU ms/MB':>9} {'x ord.':>7} {'RSS MiB':>7}")
    per_mb = lambda t, p: t * 1000 / (os.path.getsize(p) / (1 << 20))
    base_w, base_c = per_mb(wall[0], files[0][1]), per_mb(cpu[0], files[0][1])
    worst = 0.0
    for (name, path), w, c, cmd in zip(files, wall, cpu, cmds):
        mw, mc = per_mb(w, path), per_mb(c, path)
        worst = max(worst, mc / base_c)
        print(f"{name:<62} {mw:7.2f} {mw / base_w:7.2f} {mc:9.2f} {mc / base_c:7.2f} {rss_mib(cmd):7.1f}")
    print(f"worst adversarial shape: {worst:.2f}x the ordinary session's CPU time per MB")
    if a.instructions:
        print(f"instructions per MB (callgrind, one {line_mb} MiB line, or the first {line_mb} MiB "
              f"of the ordinary session; --sandbox best-effort)")
        counts = []
        for name, path in files:
            sample = path + ".one"
            with open(path, "rb") as src, open(sample, "wb") as dst:
                dst.write(src.read(line_mb << 20).rsplit(b"\n", 1)[0] + b"\n")
            cmd = [a.kato, "--sandbox", "best-effort", "--config", conf, "export",
                   "--tool-calls", sample, "-o", out]
            n = instructions(cmd) / (os.path.getsize(sample) / (1 << 20))
            counts.append(n)
            print(f"{name:<62} {n / 1e6:7.2f} M/MB {n / counts[0]:7.2f}x")
    sys.stdout.flush()

def gen_gemini_jsonl(path, size, rng):
    """A Gemini CLI (0.39+) chat as the real ones are written: a metadata
    line; each message appended, then a `$set` of lastUpdated; a model
    message written again once its tool call has run (same id, the call
    and its result added); thoughts, tokens and the model on each."""
    sid = "e435870b-a192-4f84-bd7e-1ec28e9c2f31"
    n = 0
    with open(path, "w") as f:
        def line(obj):
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        def ts(k):
            return f"2026-04-25T{(k // 3600) % 24:02d}:{(k // 60) % 60:02d}:{k % 60:02d}.{k % 1000:03d}Z"
        line({"sessionId": sid, "projectHash": "d5ee" * 16, "startTime": ts(0),
              "lastUpdated": ts(0), "kind": "main"})
        while f.tell() < size:
            n += 1
            line({"id": f"u-{n}", "timestamp": ts(n), "type": "user", "content": [{"text": words(rng, 40)}]})
            line({"$set": {"lastUpdated": ts(n)}})
            for k in range(3):
                mid = f"g-{n}-{k}"
                msg = {"id": mid, "timestamp": ts(n), "type": "gemini", "content": "",
                       "thoughts": [{"subject": words(rng, 3), "description": words(rng, 60), "timestamp": ts(n)}],
                       "tokens": {"input": 10651, "output": 31, "cached": 0, "thoughts": 454, "tool": 0, "total": 11136},
                       "model": "gemini-3-flash-preview"}
                line(msg)
                line({"$set": {"lastUpdated": ts(n)}})
                cid = f"c{n}x{k}"
                out = code(rng, rng.randint(20, 120))
                msg["toolCalls"] = [{"id": cid, "name": "run_shell_command",
                                     "args": {"command": "cargo test " + words(rng, 5), "description": words(rng, 8)},
                                     "result": [{"functionResponse": {"id": cid, "name": "run_shell_command",
                                                                      "response": {"output": "Output: " + out}}}],
                                     "status": "success", "timestamp": ts(n), "resultDisplay": out,
                                     "description": words(rng, 8), "displayName": "Shell",
                                     "renderOutputAsMarkdown": False}]
                line(msg)
            line({"id": f"g-{n}-end", "timestamp": ts(n), "type": "gemini",
                  "content": words(rng, 200) + "\n\n```rust\n" + code(rng, 10) + "\n```\n",
                  "thoughts": [], "tokens": {"input": 1, "output": 2, "cached": 0, "total": 3},
                  "model": "gemini-3-flash-preview"})
            line({"$set": {"lastUpdated": ts(n)}})

def gen_opencode(path, size, rng):
    """An OpenCode (1.2+) database with one session, as OpenCode writes it:
    a user message and its text part, then assistant messages whose parts
    are step-start, reasoning, text, a completed tool (call and output in
    one part) and step-finish; `data` columns hold the JSON."""
    import sqlite3
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript("""
    PRAGMA journal_mode=WAL;
    CREATE TABLE session (id text PRIMARY KEY, project_id text NOT NULL, parent_id text, slug text NOT NULL,
      directory text NOT NULL, title text NOT NULL, version text NOT NULL, time_created integer NOT NULL,
      time_updated integer NOT NULL);
    CREATE TABLE message (id text PRIMARY KEY, session_id text NOT NULL, time_created integer NOT NULL,
      time_updated integer NOT NULL, data text NOT NULL);
    CREATE TABLE part (id text PRIMARY KEY, message_id text NOT NULL, session_id text NOT NULL,
      time_created integer NOT NULL, time_updated integer NOT NULL, data text NOT NULL);
    CREATE INDEX part_session_idx ON part (session_id);
    CREATE INDEX message_session_time_created_id_idx ON message (session_id, time_created, id);
    CREATE INDEX part_message_id_id_idx ON part (message_id, id);
    """)
    sid, t, n, total = "ses_bench0000000000000000000", 1780000000000, 0, 0
    db.execute("INSERT INTO session VALUES (?, 'global', NULL, 'bench', '/home/u/proj', 'Bench', '1.17.3', ?, ?)",
               (sid, t, t))
    def msg(data):
        nonlocal n, total
        n += 1
        mid, d = f"msg_{n:012x}", json.dumps(data, separators=(",", ":"))
        total += len(d)
        db.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (mid, sid, t + n, t + n, d))
        return mid
    def part(mid, data):
        nonlocal n, total
        n += 1
        d = json.dumps(data, separators=(",", ":"))
        total += len(d)
        db.execute("INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)", (f"prt_{n:012x}", mid, sid, t + n, t + n, d))
    model = {"providerID": "opencode", "modelID": "kimi-k2.6"}
    while total < size:
        u = msg({"role": "user", "time": {"created": t + n}, "agent": "build", "model": model})
        part(u, {"type": "text", "text": words(rng, 40)})
        for k in range(3):
            a = msg({"role": "assistant", "parentID": u, "modelID": "kimi-k2.6", "providerID": "opencode",
                     "mode": "build", "agent": "build", "path": {"cwd": "/home/u/proj", "root": "/"},
                     "cost": 0.01, "tokens": {"input": 8280, "output": 9, "reasoning": 0, "cache": {"read": 0, "write": 0}},
                     "time": {"created": t + n, "completed": t + n + 5}, "finish": "tool-calls"})
            part(a, {"type": "step-start", "snapshot": "d5ee" * 10})
            part(a, {"type": "reasoning", "text": words(rng, 60), "time": {"start": t + n, "end": t + n + 1}})
            part(a, {"type": "text", "text": words(rng, 80), "time": {"start": t + n, "end": t + n + 1}})
            out = code(rng, rng.randint(20, 120))
            part(a, {"type": "tool", "tool": "bash", "callID": f"call_{n}",
                     "state": {"status": "completed", "input": {"command": "cargo test " + words(rng, 5)},
                               "output": out, "title": words(rng, 4), "metadata": {"exit": 0},
                               "time": {"start": t + n, "end": t + n + 2}}})
            part(a, {"type": "step-finish", "reason": "tool-calls", "cost": 0.01,
                     "tokens": {"input": 8280, "output": 9, "reasoning": 0, "cache": {"read": 0, "write": 0}}})
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()

def gen_copilot(path, size, rng):
    """A GitHub Copilot CLI (1.0) events.jsonl as the real ones are
    written: session.start and a model change; per request a user message
    (with the CLI's transformedContent), then turns of an assistant message
    with reasoning, encrypted content, tool requests and output tokens,
    each tool's start and completion (content and detailedContent), and a
    final answer."""
    sid = "d5b1506c-19d6-4e6a-818c-89a50c48bb34"
    k = [0]
    with open(path, "w") as f:
        def ts():
            k[0] += 1
            n = k[0]
            return f"2026-03-21T{(n // 3600) % 24:02d}:{(n // 60) % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z"
        def line(kind, data):
            rid = f"{k[0]:08x}-ee0f-4e1a-9d3c-5b6a7c8d9e0f"
            f.write(json.dumps({"type": kind, "data": data, "id": rid, "timestamp": ts(),
                                "parentId": None}, separators=(",", ":")) + "\n")
        line("session.start", {"sessionId": sid, "version": 1, "producer": "copilot-agent",
                               "copilotVersion": "1.0.10", "startTime": "2026-03-21T00:00:00.000Z",
                               "context": {"cwd": "/home/u/proj", "gitRoot": "/home/u/proj",
                                           "branch": "main", "repository": "u/proj", "hostType": "github"},
                               "alreadyInUse": False})
        line("session.model_change", {"previousModel": "claude-sonnet-4.6", "newModel": "gpt-5-mini",
                                      "previousReasoningEffort": "medium", "reasoningEffort": "medium"})
        n = 0
        while f.tell() < size:
            n += 1
            iid = f"{n:08x}-1111-4222-8333-444455556666"
            typed = words(rng, 40)
            line("user.message", {"content": typed,
                                  "transformedContent": f"<current_datetime>{ts()}</current_datetime>\n\n{typed}"
                                                        f"\n\n<reminder>\n{words(rng, 30)}\n</reminder>",
                                  "attachments": [], "interactionId": iid})
            for t in range(3):
                line("assistant.turn_start", {"turnId": str(t), "interactionId": iid})
                calls = [(f"call_{n}_{t}_{j}", rng.choice(["view", "bash", "grep"])) for j in range(2)]
                line("assistant.message", {"messageId": f"m-{n}-{t}", "content": "",
                                           "toolRequests": [{"toolCallId": c, "name": name,
                                                             "arguments": {"path": "src/" + words(rng, 2).replace(" ", "/") + ".rs"},
                                                             "type": "function",
                                                             "intentionSummary": words(rng, 8)}
                                                            for c, name in calls],
                                           "interactionId": iid, "reasoningText": words(rng, 60),
                                           "reasoningOpaque": "b3Bh" * 40, "encryptedContent": "ZW5j" * 300,
                                           "outputTokens": rng.randint(50, 900)})
                for c, name in calls:
                    line("tool.execution_start", {"toolCallId": c, "toolName": name,
                                                  "arguments": {"path": "src/lib.rs"}})
                for c, name in calls:
                    out = code(rng, rng.randint(20, 120))
                    line("tool.execution_complete", {"toolCallId": c, "model": "gpt-5-mini",
                                                     "interactionId": iid, "success": True,
                                                     "result": {"content": out, "detailedContent": out},
                                                     "toolTelemetry": {}})
                line("assistant.turn_end", {"turnId": str(t)})
            line("assistant.message", {"messageId": f"m-{n}-end",
                                       "content": words(rng, 200) + "\n\n```rust\n" + code(rng, 10) + "\n```\n",
                                       "toolRequests": [], "interactionId": iid, "outputTokens": 400})

def gen_qwen(path, size, rng):
    """A Qwen Code chat as the real ones are written: each record with its
    uuid, parent, session, time, cwd, version and branch; a user prompt, a
    ui_telemetry record per API response and per tool call, assistant
    records with a thought, text and a functionCall (model, usage), and a
    tool_result record whose functionResponse output the toolCallResult's
    resultDisplay repeats."""
    sid = "9a578cd0-ad2c-423c-8f19-95412a2d81af"
    n = 0
    prev = [None]
    with open(path, "w") as f:
        def line(kind, ts, extra):
            uid = f"{n:08x}-{rng.getrandbits(16):04x}-4000-8000-{rng.getrandbits(48):012x}"
            d = {"uuid": uid, "parentUuid": prev[0], "sessionId": sid, "timestamp": ts, "type": kind,
                 "cwd": "/home/u/project", "version": "0.14.0", "gitBranch": "main"}
            d.update(extra)
            prev[0] = uid
            f.write(json.dumps(d, separators=(",", ":")) + "\n")
        def ts(k):
            return f"2026-04-07T{(k // 3600) % 24:02d}:{(k // 60) % 60:02d}:{k % 60:02d}.{k % 1000:03d}Z"
        def telemetry(t, name):
            line("system", t, {"subtype": "ui_telemetry", "systemPayload": {"uiEvent": {
                "event.name": name, "event.timestamp": t, "response_id": "chatcmpl-" + "%032x" % rng.getrandbits(128),
                "model": "coder-model", "status_code": 200, "duration_ms": 3423, "input_token_count": 14439,
                "output_token_count": 91, "cached_content_token_count": 0, "thoughts_token_count": 0,
                "tool_token_count": 0, "total_token_count": 14530, "prompt_id": sid + "########1"}}})
        usage = {"promptTokenCount": 14439, "candidatesTokenCount": 91, "thoughtsTokenCount": 40,
                 "totalTokenCount": 14530, "cachedContentTokenCount": 0}
        while f.tell() < size:
            n += 1
            line("user", ts(n), {"message": {"role": "user", "parts": [{"text": words(rng, 40)}]}})
            for k in range(3):
                telemetry(ts(n), "qwen-code.api_response")
                cid = "call_%024x" % rng.getrandbits(96)
                line("assistant", ts(n), {"model": "coder-model", "contextWindowSize": 131072, "usageMetadata": usage,
                     "message": {"role": "model", "parts": [{"text": words(rng, 60), "thought": True},
                                                            {"text": words(rng, 12)},
                                                            {"functionCall": {"id": cid, "name": "run_shell_command",
                                                             "args": {"command": "cargo test " + words(rng, 5),
                                                                      "description": words(rng, 8), "is_background": False}}}]}})
                telemetry(ts(n), "qwen-code.tool_call")
                out = code(rng, rng.randint(20, 120))
                line("tool_result", ts(n), {"message": {"role": "user", "parts": [{"functionResponse": {
                     "id": cid, "name": "run_shell_command", "response": {"output": "Command: cargo test\nOutput: " + out}}}]},
                     "toolCallResult": {"callId": cid, "status": "success", "resultDisplay": out}})
            telemetry(ts(n), "qwen-code.api_response")
            line("assistant", ts(n), {"model": "coder-model", "usageMetadata": usage, "message": {"role": "model", "parts": [
                 {"text": words(rng, 200) + "\n\n```rust\n" + code(rng, 10) + "\n```\n"}]}})

def gen_cursor(path, size, rng):
    """A Cursor agent transcript as the real ones are written: no ids, no
    times; a user record whose query is wrapped in <user_query>, now and
    then after a large injected branch diff; assistant records of text
    (some "[REDACTED]") and several tool_use blocks each."""
    with open(path, "w") as f:
        def line(obj):
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        n = 0
        while f.tell() < size:
            n += 1
            query = "<user_query>\n" + words(rng, 30) + "\n</user_query>"
            if n % 5 == 0:
                query = ("<git_diff_from_branch_to_main>\n" + code(rng, 400)
                         + "\n</git_diff_from_branch_to_main>\n" + query)
            line({"role": "user", "message": {"content": [{"type": "text", "text": query}]}})
            for k in range(6):
                blocks = [{"type": "text", "text": "[REDACTED]" if k % 2 else words(rng, 60)}]
                for j in range(2):
                    blocks.append({"type": "tool_use", "name": "Shell",
                                   "input": {"command": "rg " + words(rng, 4), "working_directory": "/home/u/proj",
                                             "description": words(rng, 8)}})
                line({"role": "assistant", "message": {"content": blocks}})
            line({"role": "assistant", "message": {"content": [
                {"type": "text", "text": words(rng, 200) + "\n\n```rust\n" + code(rng, 10) + "\n```\n"}]}})

def gen_droid(path, size, rng):
    """A Factory Droid session as the real ones are written: session_start,
    then message records with ids and times: the human's words with an
    @file's contents after them, assistant tool_use blocks, their results
    in user records, todo_state records."""
    sid = "052cb8d0-4616-488a-99fe-bfbbbe9429b3"
    with open(path, "w") as f:
        def line(obj):
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        def ts(k):
            return f"2026-01-28T{(k // 3600) % 24:02d}:{(k // 60) % 60:02d}:{k % 60:02d}.{k % 1000:03d}Z"
        line({"type": "session_start", "id": sid, "title": words(rng, 8), "sessionTitle": "New Session",
              "owner": "u", "version": 2, "cwd": "/home/u/proj"})
        n = 0
        while f.tell() < size:
            n += 1
            line({"type": "message", "id": f"{n:08x}-0881-4fbe-80b0-92d59a21074e", "timestamp": ts(n),
                  "message": {"role": "user", "content": [
                      {"type": "text", "text": words(rng, 30)},
                      {"type": "text", "text": "Contents of /home/u/proj/a.ts (lines 1-40):\n" + code(rng, 40)}]}})
            for k in range(4):
                cid = f"call_{n}x{k}"
                line({"type": "message", "id": f"{n:08x}-{k:04x}-4fbe-80b0-92d59a21074e", "timestamp": ts(n),
                      "message": {"role": "assistant", "content": [
                          {"type": "text", "text": words(rng, 40)},
                          {"type": "tool_use", "id": cid, "name": "Execute",
                           "input": {"command": "rg " + words(rng, 4), "riskLevel": "low"}}]}})
                line({"type": "message", "id": f"{n:08x}-{k:04x}-4fbe-80b1-92d59a21074e", "timestamp": ts(n),
                      "message": {"role": "user", "content": [
                          {"type": "tool_result", "tool_use_id": cid, "content": code(rng, rng.randint(10, 60))}]}})
            line({"type": "todo_state", "id": f"{n:08x}-cd01-4fbe-80b0-92d59a21074e", "timestamp": ts(n),
                  "todos": {"todos": "1. [completed] " + words(rng, 6)}, "messageIndex": n})

def gen_kimi(path, size, rng):
    """A Kimi CLI wire.jsonl as the real ones are written (Python's default
    separators, non-ASCII kept): a metadata line; per turn the human's
    TurnBegin, then steps of StepBegin, a think and a text ContentPart, a
    ToolCall (arguments as a JSON string), its ToolResult and a
    StatusUpdate; TurnEnd."""
    t = 1772590682.2146897
    with open(path, "w") as f:
        def line(kind, payload):
            nonlocal t
            t += 0.731
            f.write(json.dumps({"timestamp": t, "message": {"type": kind, "payload": payload}},
                               ensure_ascii=False) + "\n")
        f.write(json.dumps({"type": "metadata", "protocol_version": "1.3"}) + "\n")
        n = 0
        while f.tell() < size:
            n += 1
            line("TurnBegin", {"user_input": [{"type": "text", "text": words(rng, 40)}]})
            for k in range(3):
                cid = f"tool_{n}x{k}Q8fPr6FleiRDnZTK6tEe5ONk"
                line("StepBegin", {"n": k + 1})
                line("ContentPart", {"type": "think", "think": words(rng, 60), "encrypted": None})
                line("ContentPart", {"type": "text", "text": words(rng, 30)})
                line("ToolCall", {"type": "function", "id": cid,
                                  "function": {"name": "Shell", "arguments": json.dumps(
                                      {"command": "cargo test " + words(rng, 5)})}, "extras": None})
                out = code(rng, rng.randint(20, 120))
                line("ToolResult", {"tool_call_id": cid, "return_value": {
                    "is_error": False, "output": out, "message": "Command executed successfully.",
                    "display": [], "extras": None}})
                line("StatusUpdate", {"context_usage": 0.21, "token_usage": {
                    "input_other": 544, "output": 216, "input_cache_read": 55808,
                    "input_cache_creation": 0}, "message_id": f"chatcmpl-{n}x{k}"})
            line("StepBegin", {"n": 4})
            line("ContentPart", {"type": "text", "text": words(rng, 200) + "\n\n```rust\n" + code(rng, 10) + "\n```\n"})
            line("TurnEnd", {})
def gen_aider(path, size, rng):
    """An Aider chat history (`.aider.chat.history.md`) as aider appends
    it: a chat start and its status banner now and then; each turn a
    typed input (`#### ` lines with aider's two-space break, sometimes
    several lines), the reply (prose, a SEARCH/REPLACE block in a fence),
    then the status lines (tokens, edit applied, commit)."""
    b = "  "
    with open(path, "w") as f:
        n = 0
        while f.tell() < size:
            if n % 200 == 0:
                f.write(f"\n# aider chat started at 2026-03-{1 + n // 200 % 28:02d} 09:15:07\n\n")
                f.write(f"> Aider v0.86.1{b}\n> Main model: anthropic/claude-sonnet-4 with diff edit format{b}\n"
                        f"> Weak model: anthropic/claude-haiku{b}\n> Git repo: .git with 42 files{b}\n"
                        f"> Repo-map: using 1024 tokens, auto refresh{b}\n\n")
            n += 1
            for _ in range(rng.choice([1, 1, 1, 3])):
                f.write(f"#### {words(rng, 20)}{b}\n")
            f.write("\n" + words(rng, 60) + "\n\n" + words(rng, 40) + "\n\nsrc/lib.rs\n```rust\n"
                    "<<<<<<< SEARCH\n" + code(rng, rng.randint(5, 40)) + "\n=======\n"
                    + code(rng, rng.randint(5, 40)) + "\n>>>>>>> REPLACE\n```\n\n" + words(rng, 30) + "\n\n")
            f.write(f"> Tokens: 9.8k sent, 1.2k received. Cost: $0.04 message, $0.{n % 100:02d} session.{b}\n"
                    f"> Applied edit to src/lib.rs{b}\n> Commit {n:07x} feat: {words(rng, 6)}{b}\n\n")

def lines_as_json(src, dst):
    """The floor's input for a format that is not JSON: each line of `src`
    as a JSON string, so the floor parses the same text as JSON."""
    with open(src) as f, open(dst, "w") as g:
        for line in f:
            g.write(json.dumps(line.rstrip("\n")) + "\n")

def run(cmd, stdout=subprocess.DEVNULL):
    """Run cmd, return its wall time and CPU time (user + system, all its
    threads) in seconds."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    _, err = p.communicate()
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{err.decode(errors='replace')}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return dt, cpu

def rss_mib(cmd):
    """Peak RSS of one run of cmd, measured with /usr/bin/time."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, check=True)
    return int(p.stderr.decode().strip().splitlines()[-1]) / 1024

def new_output(cmd):
    """Remove the file a command writes (`-o FILE`) before it runs, so that
    each run writes a new file, as a first export does. Writing over an
    earlier export costs more on some filesystems: ext4 (auto_da_alloc)
    starts writing back a file truncated to zero when it is closed, in the
    closing process."""
    if "-o" in cmd:
        path = cmd[cmd.index("-o") + 1]
        if os.path.exists(path):
            os.remove(path)

def best_times(cmds, repeat, over=()):
    """Best wall and best CPU time of each command over `repeat` rounds,
    interleaved so that load from other processes hits every command
    alike. Each writes a new output, except those whose index is in
    `over`, which write over the output of the command before them."""
    wall = [float("inf")] * len(cmds)
    cpu = [float("inf")] * len(cmds)
    for _ in range(repeat):
        for i, cmd in enumerate(cmds):
            if i not in over:
                new_output(cmd)
            w, c = run(cmd)
            wall[i], cpu[i] = min(wall[i], w), min(cpu[i], c)
    return wall, cpu

def instructions(cmd, work):
    """Instructions executed by cmd, counted by callgrind per thread:
    independent of other load on the machine. Returns (all threads, the
    busiest thread): kato's parse and write stages are two threads, so on
    two idle cores its wall-clock time follows the busiest one."""
    out = os.path.join(work, "callgrind.out")
    for f in glob.glob(out + "*"):
        os.remove(f)
    p = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                        f"--callgrind-out-file={out}"] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    per_thread = []
    for f in glob.glob(out + "*"):
        with open(f) as fh:
            for ln in fh:
                if ln.startswith(("summary:", "totals:")):
                    per_thread.append(int(ln.split()[1]))
                    break
        os.remove(f)
    if p.returncode != 0 or not per_thread:
        sys.exit(f"callgrind failed on {' '.join(cmd)}:\n{p.stderr[-2000:]}")
    return sum(per_thread), max(per_thread)

def instruction_table(a, files, variants, mb=10):
    """Ratios and redaction cost in instructions, on the first `mb` MiB of
    each session (callgrind is slow). Landlock cannot run under valgrind:
    these runs use `--sandbox best-effort`."""
    print(f"\ninstructions (callgrind, first {mb} MiB of each session; --sandbox best-effort;"
          f" busiest thread = the critical path on two idle cores)")
    print(f"{'case':<62} {'M instr':>9} {'x floor':>7} {'busiest':>9} {'x floor':>7}")
    worst = None
    for name, path in files.items():
        sample = os.path.join(a.work, "sample-" + os.path.basename(path))
        with open(path, "rb") as src, open(sample, "wb") as dst:
            dst.write(src.read(mb << 20).rsplit(b"\n", 1)[0] + b"\n")
        floor_input = sample
        if name == "aider":
            floor_input = sample + ".floor.jsonl"
            lines_as_json(sample, floor_input)
        floor, _ = instructions([a.floor, floor_input], a.work)
        print(f"{name + ': serde_json::Value parse (floor)':<62} {floor / 1e6:9.1f}")
        for vname, args in variants:
            n = {}
            for red in ("on", "off"):
                cmd = [a.kato, "--sandbox", "best-effort", "--config", a.conf[red], "export",
                       sample, *args, "-o", os.path.join(a.work, "out")]
                n[red], busiest = instructions(cmd, a.work)
                label = f"kato export {vname}" + (", redaction off" if red == "off" else "")
                print(f"{name + ': ' + label:<62} {n[red] / 1e6:9.1f} {floor / n[red]:7.2f}"
                      f" {busiest / 1e6:9.1f} {floor / busiest:7.2f}")
            cost = (n["on"] - n["off"]) / n["off"] * 100
            worst = cost if worst is None else max(worst, cost)
            print(f"{name + ': redaction cost, ' + vname:<62} {cost:+8.1f}%")
        sys.stdout.flush()
    print(f"redaction cost <= 25% (instructions): worst {worst:+.1f}% {'ok' if worst <= 25 else 'MISSED'}")

# Every session kind benched: the file name kato sees (the layout each
# provider recognises when a file is named directly) and its generator.
# One line per provider.
KINDS = {
    "claude": ("0890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl", gen_claude),
    "codex": ("rollout-2025-11-28T03-40-25-019ac88c-3f80-7990-a29a-d20399dcab74.jsonl", gen_codex),
    "gemini": ("session-2026-04-25T08-23-e435870b.jsonl", gen_gemini_jsonl),
    "copilot": ("d5b1506c-19d6-4e6a-818c-89a50c48bb34.jsonl", gen_copilot),
    "qwen": ("9a578cd0-ad2c-423c-8f19-95412a2d81af.jsonl", gen_qwen),
    "cursor": ("35a82dfe-d4ab-4238-8135-22c978781bca.jsonl", gen_cursor),
    "droid": ("052cb8d0-4616-488a-99fe-bfbbbe9429b3.jsonl", gen_droid),
    "kimi": ("wire.jsonl", gen_kimi),
    "aider": ("proj/.aider.chat.history.md", gen_aider),
    "opencode": ("opencode/opencode.db", gen_opencode),
}
# What kato is given for a kind whose file holds many sessions, and the
# floor binary that reads it (default: the file, parse_floor).
GIVEN = {"opencode": lambda path: path + "#ses_bench0000000000000000000"}

# Export targets, as ratios to the floor measured in the same run (wall
# clock; "cpu" compares CPU time): Claude and Codex at the floor in default
# and JSONL modes and 0.7x with thinking and tool calls, in default mode at
# most 1.5x the floor's CPU; every other JSON Lines agent 0.7x in default
# mode and 0.5x in every mode. Aider and OpenCode do not write JSON Lines:
# their floors (Aider's lines parsed as JSON strings, a bare SELECT of
# OpenCode's JSON) are shown for scale, with no speed target. Peak RSS at
# most 32 MiB for every agent.
TARGETS = {
    "first": {"markdown": 1.0, "jsonl": 1.0, "md --thinking --tool-calls": 0.7, "cpu": 1 / 1.5},
    "other": {"markdown": 0.7, "jsonl": 0.5, "md --thinking --tool-calls": 0.5},
    "none": {},
}
NOT_JSON_LINES = ("aider", "opencode")

def target_class(name):
    if name in ("claude", "codex"):
        return "first"
    return "none" if name in NOT_JSON_LINES else "other"

RSS_TARGET_MIB = 32

def summary_table(summary, modes):
    """One table: every agent and mode, kato's ratio to the floor of the
    same run, a '!' beside each figure that misses its target."""
    if not summary:
        return
    short = {"markdown": "markdown", "jsonl": "jsonl", "md --thinking --tool-calls": "full"}
    print("\nsummary, redaction on: kato MB/s / floor MB/s (wall); "
          "'!' marks a missed target")
    head = f"{'agent':<10} {'floor MB/s':>10}"
    for m in modes:
        head += f" {short[m]:>9}"
    head += f" {'md CPU':>7} {'RSS MiB':>8}"
    print(head)
    missed = 0
    for name, row in summary.items():
        t = TARGETS[target_class(name)]
        line = f"{name:<10} {row['floor']:10.0f}"
        rss = 0.0
        for m in modes:
            wall, _, r = row[m]
            rss = max(rss, r)
            bad = m in t and wall < t[m]
            missed += bad
            line += f" {wall:8.2f}{'!' if bad else ' '}"
        cpu = row["markdown"][1]
        bad = "cpu" in t and cpu < t["cpu"]
        missed += bad
        line += f" {cpu:6.2f}{'!' if bad else ' '}"
        bad = rss > RSS_TARGET_MIB
        missed += bad
        line += f" {rss:7.1f}{'!' if bad else ' '}"
        print(line)
    first, other = TARGETS["first"], TARGETS["other"]
    print(f"targets: claude, codex: markdown >= {first['markdown']}, jsonl >= {first['jsonl']}, "
          f"full >= {first['md --thinking --tool-calls']}, markdown CPU >= {first['cpu']:.2f} "
          f"(at most 1.5x the floor's CPU); other JSON Lines agents: markdown >= "
          f"{other['markdown']}, jsonl and full >= {other['jsonl']}; "
          f"{', '.join(NOT_JSON_LINES)} (not JSON Lines): no speed target; "
          f"peak RSS <= {RSS_TARGET_MIB} MiB for all. {missed} missed.")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--work", required=True)
    ap.add_argument("--kato", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--sqlite-floor", help="the floor for databases (examples/sqlite_floor)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--instructions", action="store_true",
                    help="also count instructions with callgrind (noise-free)")
    ap.add_argument("--no-adversarial", action="store_true",
                    help="skip the adversarial tool-input table")
    ap.add_argument("--only", action="append", choices=list(KINDS),
                    help="bench only this session kind (repeatable; default all)")
    a = ap.parse_args()
    rng = random.Random(7)
    size = a.size_mb << 20
    files = {k: os.path.join(a.work, name) for k, (name, _) in KINDS.items()}
    gens = {k: gen for k, (_, gen) in KINDS.items()}
    files = {k: v for k, v in files.items() if not a.only or k in a.only}
    floors = {}
    for name, path in files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        gens[name](path, size, rng)
        if name == "aider":
            floors[name] = path + ".floor.jsonl"
            lines_as_json(path, floors[name])
    # Redaction on (the default) and off, each through an explicit config
    # file; the sandbox runs in its default mode (enforce).
    conf = {}
    for name, enabled in (("on", "true"), ("off", "false")):
        conf[name] = os.path.join(a.work, f"redaction-{name}.toml")
        with open(conf[name], "w") as f:
            f.write(f"[redaction]\nenabled = {enabled}\n")
    a.conf = conf
    out = os.path.join(a.work, "out")
    kato = lambda red, *args: [a.kato, "--config", conf[red], "export", *args, "-o", out]
    variants = [("markdown", ()), ("jsonl", ("--format", "jsonl")),
                ("md --thinking --tool-calls", ("--thinking", "--tool-calls"))]
    worst = {"ratio": None, "cpu": None, "rss": 0.0, "cost": None, "cost_cpu": None}
    lo = lambda k, v: v if worst[k] is None else min(worst[k], v)
    hi = lambda k, v: v if worst[k] is None else max(worst[k], v)
    summary = {}
    print(f"{'case':<62} {'MB/s':>7} {'x floor':>7} {'CPU MB/s':>8} {'x floor':>7} {'RSS MiB':>7}")
    for name, path in files.items():
        mb = os.path.getsize(path) / (1 << 20)
        floor_case = ("serde_json::Value parse (floor)", [a.floor, floors.get(name, path)])
        if name == "opencode":
            floor_case = ("SELECT every data column, rusqlite (floor)", [a.sqlite_floor, path])
        cases = [("cat > /dev/null", ["cat", path]), floor_case]
        if name == "opencode":
            # For scale: the same rows with their JSON decoded, which any
            # export must do (not the target's floor).
            cases.append(("SELECT + serde_json::Value parse of each data column",
                          [a.sqlite_floor, path, "--parse"]))
            # The least a reader that must find fields in the JSON pays:
            # every byte of it scanned and checked, nothing kept.
            cases.append(("SELECT + IgnoredAny scan of each data column",
                          [a.sqlite_floor, path, "--skim"]))
        target = GIVEN.get(name, lambda p: p)(path)
        over = set()
        for vname, args in variants:
            cases.append((f"kato export {vname}", kato("on", target, *args)))
            cases.append((f"kato export {vname}, redaction off", kato("off", target, *args)))
            if vname == "jsonl":
                # For scale: the same export over the one just written.
                over.add(len(cases))
                cases.append((f"kato export {vname} over an earlier export",
                              kato("on", target, *args)))
        wall, cpu = best_times([c for _, c in cases], a.repeat, over)
        floor, floor_cpu = mb / wall[1], mb / cpu[1]
        by = {}
        for (label, cmd), w, c in zip(cases, wall, cpu):
            rss = rss_mib(cmd)
            mbps, cmbps = mb / w, mb / max(c, 1e-6)
            by[label] = (w, c)
            if label.startswith("kato") and not label.endswith("redaction off"):
                summary.setdefault(name, {"floor": floor})[label[len("kato export "):]] = (
                    mbps / floor, cmbps / floor_cpu, rss)
            r = rc = " " * 7
            if label.startswith(("kato", "SELECT +")):
                r, rc = f"{mbps / floor:7.2f}", f"{cmbps / floor_cpu:7.2f}"
            if label.startswith("kato"):
                if name not in NOT_JSON_LINES:
                    worst["ratio"] = lo("ratio", mbps / floor)
                    worst["cpu"] = lo("cpu", cmbps / floor_cpu)
                worst["rss"] = max(worst["rss"], rss)
            print(f"{name + ': ' + label:<62} {mbps:7.1f} {r} {cmbps:8.1f} {rc} {rss:7.1f}")
        for vname, _ in variants:
            (on, on_c), (off, off_c) = by[f"kato export {vname}"], by[f"kato export {vname}, redaction off"]
            cost, cost_c = (on - off) / off * 100, (on_c - off_c) / off_c * 100
            worst["cost"], worst["cost_cpu"] = hi("cost", cost), hi("cost_cpu", cost_c)
            print(f"{name + ': redaction cost, ' + vname:<62} {cost:+6.1f}% wall {cost_c:+6.1f}% CPU")
        sys.stdout.flush()
    ok = lambda b: "ok" if b else "MISSED"
    if worst["ratio"] is not None:
        print(f"\ntargets: export of JSON Lines >= 0.5x floor: worst {worst['ratio']:.2f}x wall "
              f"({worst['cpu']:.2f}x CPU) {ok(worst['ratio'] >= 0.5)}")
    print(f"targets: "
          f"peak RSS < 64 MiB: worst {worst['rss']:.1f} {ok(worst['rss'] < 64)}; "
          f"redaction cost <= 25%: worst {worst['cost']:+.1f}% wall "
          f"({worst['cost_cpu']:+.1f}% CPU) {ok(worst['cost'] <= 25)}")
    summary_table(summary, [v for v, _ in variants])
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
          f"(other processes make wall-clock figures noisy)")
    if not a.no_adversarial:
        adversarial_table(a)
    if a.instructions:
        instruction_table(a, files, variants)

if __name__ == "__main__":
    main()
