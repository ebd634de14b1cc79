#!/usr/bin/env python3
"""ci/unit-check.py SYSTEM-UNIT TEMPLATE-UNIT — the per-user template
against the system unit (called by ci/systemd-check).

1. Hardening parity: every [Service] directive of kato.service appears in
   kato@.service with the same values, except the keys that say who kato
   runs as and where its files are (IDENTITY).
2. The template runs as the instance's user (User=%i) with no capability.
3. Isolation between instances: every path the template binds or creates
   names the instance with %i and no other specifier (%h is the manager's
   home in a system unit, %u its user); provider roots are read-only and lie
   under /home/<instance>; writable binds lie under /home/<instance> too;
   and no path of kato@ci appears in kato@other.
4. With --fleet DROPIN (systemd/kato-fleet.conf): the drop-in resets the
   export binds and binds a folder whose path carries the host (%H) and the
   user (%i) onto a path under /home/%i, so no two (host, user) pairs share
   a folder.
5. With --doctor DOCTOR.json TEMPLATE (`kato doctor --json` run with the
   environment kato@ci gets: HOME=/home/ci and the four *_DIRECTORY
   variables, no configuration file): what kato reads lies within the
   template's read-only binds, what it writes within its writable binds and
   its own directories, and every writable bind is one of kato's export
   roots — the unit makes nothing else writable.
"""
import json
import re
import shlex
import sys

# Keys that differ by design: identity, directories, paths, log name.
IDENTITY = {
    "ExecStart", "DynamicUser", "User", "SyslogIdentifier",
    "ConfigurationDirectory", "StateDirectory", "RuntimeDirectory", "LogsDirectory",
    "BindReadOnlyPaths", "BindPaths",
}
PATH_KEYS = ["ConfigurationDirectory", "StateDirectory", "RuntimeDirectory", "LogsDirectory",
             "BindReadOnlyPaths", "BindPaths"]


def service_section(path):
    """[Service] directives: key -> list of raw values, in order."""
    out, section = {}, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]":
                key, _, value = line.partition("=")
                out.setdefault(key, []).append(value)
    return out


def words(value):
    """The space-separated words of a path directive, quotes removed."""
    return shlex.split(value)


def expand(word, instance):
    return word.replace("%i", instance)


def bound_paths(unit, key, instance):
    """Sources (and targets) of a Bind*Paths= key, '-' stripped, expanded."""
    paths = []
    for value in unit.get(key, []):
        for word in words(value):
            word = word.lstrip("-")
            for part in word.split(":"):
                if part and part not in ("rbind", "norbind"):
                    paths.append(expand(part, instance))
    return paths


def check_fleet(path):
    dropin = service_section(path)
    binds = dropin.get("BindPaths", [])
    bad = []
    if not binds or binds[0] != "":
        bad.append(f"{path}: must reset BindPaths= first (an empty BindPaths=)")
    seen = {}
    for value in binds[1:]:
        for word in words(value):
            src, _, dst = word.lstrip("-").partition(":")
            if "%H" not in src or "%i" not in src:
                bad.append(f"{path}: {src} must carry both %H and %i")
            if not dst.startswith("/home/%i/"):
                bad.append(f"{path}: {word}: the target must lie under /home/%i")
            for host in ("hosta", "hostb"):
                for user in ("ci", "other"):
                    seen.setdefault(src.replace("%H", host).replace("%i", user), set()).add((host, user))
    bad += [f"{path}: {p} shared by {sorted(who)}" for p, who in seen.items() if len(who) > 1]
    if bad:
        print(*bad, sep="\n  ", file=sys.stderr)
        return 1
    print(f"unit-check: {path}: per-host, per-user export folders ({len(seen)} for 2 hosts x 2 users)",
          file=sys.stderr)
    return 0


def under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def check_doctor(doctor_path, template_path):
    with open(doctor_path, encoding="utf-8") as f:
        doctor = json.load(f)
    stage = next(s for s in doctor["policy"]["stages"] if s["stage"] == "process")
    template = service_section(template_path)
    ro = bound_paths(template, "BindReadOnlyPaths", "ci")
    rw = [w.lstrip("-").split(":")[-1].replace("%i", "ci")
          for v in template.get("BindPaths", []) for w in words(v)]
    dirs = [f"{base}/{v.replace('%i', 'ci')}" for key, base in
            (("StateDirectory", "/var/lib"), ("RuntimeDirectory", "/run"), ("LogsDirectory", "/var/log"))
            for v in template.get(key, [])]
    bad = [f"kato reads {p}, which kato@ci does not bind" for p in stage["read"] if not under(p, ro)]
    writes = stage["create_in"] + stage["write_files"] + stage["write_trees"]
    bad += [f"kato writes {p}, which kato@ci does not make writable" for p in writes if not under(p, rw + dirs)]
    bad += [f"kato@ci makes {p} writable, which is none of kato's export roots"
            for p in rw if p not in stage["create_in"]]
    if bad:
        print(f"{template_path} against kato doctor:", *bad, sep="\n  ", file=sys.stderr)
        return 1
    print(f"unit-check: kato doctor as kato@ci: {len(stage['read'])} read roots, {len(writes)} write roots, "
          f"all within the unit's binds; the only writable bind is the export root", file=sys.stderr)
    return 0


def main():
    if sys.argv[1] == "--fleet":
        return check_fleet(sys.argv[2])
    if sys.argv[1] == "--doctor":
        return check_doctor(sys.argv[2], sys.argv[3])
    system_path, template_path = sys.argv[1], sys.argv[2]
    system, template = service_section(system_path), service_section(template_path)
    bad = []

    for key, values in sorted(system.items()):
        if key in IDENTITY:
            continue
        if key not in template:
            bad.append(f"{key}: in kato.service, missing from kato@.service")
        elif template[key] != values:
            bad.append(f"{key}: kato.service {values} != kato@.service {template[key]}")
    for key in sorted(template.keys() - system.keys() - IDENTITY):
        bad.append(f"{key}: in kato@.service only (add it to kato.service too, or explain)")

    if template.get("User") != ["%i"]:
        bad.append(f"User= must be %i, is {template.get('User')}")
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        if template.get(key) != [""]:
            bad.append(f"{key}= must be empty, is {template.get(key)}")
    if "DynamicUser" in template:
        bad.append("DynamicUser= has no place in a per-user instance")

    # Specifiers: %i only, in every path the unit binds or creates.
    for key in PATH_KEYS:
        for value in template.get(key, []):
            for spec in re.findall(r"%.", value):
                if spec != "%i":
                    bad.append(f"{key}={value}: specifier {spec} (only %i names the user)")
            if "%i" not in value:
                bad.append(f"{key}={value}: does not name the instance (%i)")

    instances = ("ci", "other")
    seen = {}
    for name in instances:
        home = f"/home/{name}/"
        paths = set()
        for key in ("BindReadOnlyPaths", "BindPaths"):
            for p in bound_paths(template, key, name):
                if not p.startswith(home):
                    bad.append(f"kato@{name}: {key} {p} is outside {home}")
                paths.add(p)
        for key in PATH_KEYS[:4]:
            for value in template.get(key, []):
                for word in words(value):
                    paths.add(f"{key}:{expand(word, name)}")
        seen[name] = paths
    shared = seen["ci"] & seen["other"]
    for p in sorted(shared):
        bad.append(f"{p}: in both kato@ci and kato@other")
    if not bound_paths(template, "BindReadOnlyPaths", "ci"):
        bad.append("no provider root is bound (BindReadOnlyPaths=)")

    if bad:
        print("kato@.service:", *bad, sep="\n  ", file=sys.stderr)
        return 1
    n = len([k for k in system if k not in IDENTITY])
    print(f"unit-check: kato@.service matches kato.service on {n} directives; "
          f"{len(seen['ci'])} paths per instance, none shared", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
