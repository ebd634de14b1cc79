"""Driver for ci/bench: generate sessions, time commands, report ratios."""
import argparse, json, os, random, resource, subprocess, sys, time

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

def best_times(cmds, repeat):
    """Best wall and best CPU time of each command over `repeat` rounds,
    interleaved so that load from other processes hits every command
    alike."""
    wall = [float("inf")] * len(cmds)
    cpu = [float("inf")] * len(cmds)
    for _ in range(repeat):
        for i, cmd in enumerate(cmds):
            w, c = run(cmd)
            wall[i], cpu[i] = min(wall[i], w), min(cpu[i], c)
    return wall, cpu

def instructions(cmd):
    """Instructions executed by cmd (all threads), counted by callgrind:
    independent of other load on the machine."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for ln in p.stderr.splitlines():
        if "Collected :" in ln:
            return int(ln.split(":")[-1])
    sys.exit(f"callgrind failed on {' '.join(cmd)}:\n{p.stderr[-2000:]}")

def instruction_table(a, files, variants, mb=10):
    """Ratios and redaction cost in instructions, on the first `mb` MiB of
    each session (callgrind is slow). Landlock cannot run under valgrind:
    these runs use `--sandbox best-effort`."""
    print(f"\ninstructions (callgrind, first {mb} MiB of each session; --sandbox best-effort)")
    print(f"{'case':<62} {'M instr':>9} {'x floor':>7}")
    worst = None
    for name, path in files.items():
        sample = os.path.join(a.work, "sample-" + os.path.basename(path))
        with open(path, "rb") as src, open(sample, "wb") as dst:
            dst.write(src.read(mb << 20).rsplit(b"\n", 1)[0] + b"\n")
        floor_input = sample
        if name == "aider":
            floor_input = sample + ".floor.jsonl"
            lines_as_json(sample, floor_input)
        floor = instructions([a.floor, floor_input])
        print(f"{name + ': serde_json::Value parse (floor)':<62} {floor / 1e6:9.1f}")
        for vname, args in variants:
            n = {}
            for red in ("on", "off"):
                cmd = [a.kato, "--sandbox", "best-effort", "--config", a.conf[red], "export",
                       sample, *args, "-o", os.path.join(a.work, "out")]
                n[red] = instructions(cmd)
                label = f"kato export {vname}" + (", redaction off" if red == "off" else "")
                print(f"{name + ': ' + label:<62} {n[red] / 1e6:9.1f} {floor / n[red]:7.2f}")
            cost = (n["on"] - n["off"]) / n["off"] * 100
            worst = cost if worst is None else max(worst, cost)
            print(f"{name + ': redaction cost, ' + vname:<62} {cost:+8.1f}%")
        sys.stdout.flush()
    print(f"redaction cost <= 25% (instructions): worst {worst:+.1f}% {'ok' if worst <= 25 else 'MISSED'}")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--work", required=True)
    ap.add_argument("--kato", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--instructions", action="store_true",
                    help="also count instructions with callgrind (noise-free)")
    ap.add_argument("--only", action="append", choices=["claude", "codex", "gemini", "aider"],
                    help="bench only this session kind (repeatable; default all)")
    a = ap.parse_args()
    rng = random.Random(7)
    size = a.size_mb << 20
    files = {"claude": os.path.join(a.work, "0890bead-0ab3-4ee9-98f8-585fd289cc1f.jsonl"),
             "codex": os.path.join(a.work, "rollout-2025-11-28T03-40-25-019ac88c-3f80-7990-a29a-d20399dcab74.jsonl"),
             "gemini": os.path.join(a.work, "session-2026-04-25T08-23-e435870b.jsonl"),
             "aider": os.path.join(a.work, "proj", ".aider.chat.history.md")}
    gens = {"claude": gen_claude, "codex": gen_codex, "gemini": gen_gemini_jsonl, "aider": gen_aider}
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
    print(f"{'case':<62} {'MB/s':>7} {'x floor':>7} {'CPU MB/s':>8} {'x floor':>7} {'RSS MiB':>7}")
    for name, path in files.items():
        mb = os.path.getsize(path) / (1 << 20)
        cases = [("cat > /dev/null", ["cat", path]),
                 ("serde_json::Value parse (floor)", [a.floor, floors.get(name, path)])]
        for vname, args in variants:
            cases.append((f"kato export {vname}", kato("on", path, *args)))
            cases.append((f"kato export {vname}, redaction off", kato("off", path, *args)))
        wall, cpu = best_times([c for _, c in cases], a.repeat)
        floor, floor_cpu = mb / wall[1], mb / cpu[1]
        by = {}
        for (label, cmd), w, c in zip(cases, wall, cpu):
            rss = rss_mib(cmd)
            mbps, cmbps = mb / w, mb / max(c, 1e-6)
            by[label] = (w, c)
            r = rc = " " * 7
            if label.startswith("kato"):
                r, rc = f"{mbps / floor:7.2f}", f"{cmbps / floor_cpu:7.2f}"
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
    print(f"\ntargets: export >= 0.5x floor: worst {worst['ratio']:.2f}x wall "
          f"({worst['cpu']:.2f}x CPU) {ok(worst['ratio'] >= 0.5)}; "
          f"peak RSS < 64 MiB: worst {worst['rss']:.1f} {ok(worst['rss'] < 64)}; "
          f"redaction cost <= 25%: worst {worst['cost']:+.1f}% wall "
          f"({worst['cost_cpu']:+.1f}% CPU) {ok(worst['cost'] <= 25)}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
          f"(other processes make wall-clock figures noisy)")
    adversarial_table(a)
    if a.instructions:
        instruction_table(a, files, variants)

if __name__ == "__main__":
    main()
