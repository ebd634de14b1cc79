#!/usr/bin/env python3
"""ci/nix-parity.py — the Nix modules' units against the unit files (called
by ci/nix-check with the JSON of nix/units.nix evaluated by nix-instantiate).

  system    kato.service [Service] == nix/units.nix `hardening` plus the
            literal keys of services.kato in nix/module.nix (ExecStart,
            DynamicUser excepted).
  instances kato@.service instantiated for "ci" == `instanceService` for
            user ci: every directive, same values (paths compared as sets).
  user      kato-user.service == `userService` (home-manager) for %h, the
            hand-installed binary's bind excepted.
  wiring    module.nix builds instances with units.instanceService,
            home-manager.nix its unit with units.userService.

Usage: nix-parity.py UNITS-JSON  (run from the repository root)
"""
import json
import re
import shlex
import sys

sys.path.insert(0, "ci")
from importlib import import_module  # noqa: E402

service_section = import_module("unit-check").service_section


def norm(value):
    """A directive's values as systemd reads them: booleans as yes/no,
    numbers as text, each word unquoted."""
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, list):
        return [v for item in value for v in norm(item)]
    if value == "true":
        return ["yes"]
    if value == "false":
        return ["no"]
    return [" ".join(shlex.split(value)) if value else ""]


def unit_norm(unit, instance=None):
    out = {}
    for key, values in unit.items():
        vals = []
        for v in values:
            if instance:
                v = v.replace("%i", instance)
            vals.extend(norm(v))
        out[key] = vals
    return out


PATHS = {"BindReadOnlyPaths", "BindPaths"}


def compare(name, unit, nix, skip=()):
    bad = []
    for key in sorted(unit.keys() | nix.keys()):
        if key in skip:
            continue
        u, n = unit.get(key), nix.get(key)
        if n == [] and u is None:
            continue  # an empty list renders no line
        if key in PATHS and u is not None and n is not None:
            u, n = sorted(u), sorted(n)
        if u is None:
            bad.append(f"{name}: {key} in nix only: {n}")
        elif n is None:
            bad.append(f"{name}: {key} in the unit file only: {u}")
        elif u != n:
            bad.append(f"{name}: {key}: unit file {u} != nix {n}")
    return bad


def main():
    units = json.loads(open(sys.argv[1], encoding="utf-8").read())
    bad = []

    # system: hardening from units.nix + literal keys of module.nix's services.kato.
    text = open("nix/module.nix", encoding="utf-8").read()
    single = text[text.index("systemd.services.kato = {"):]
    module = {k: norm(v) for k, v in units["hardening"].items()}
    for m in re.finditer(r"^\s+([A-Z][A-Za-z]+) = \"([^\"$]*)\";\s*$", single, re.M):
        module.setdefault(m.group(1), norm(m.group(2)))
    system = unit_norm(service_section("systemd/kato.service"))
    skip = {"ExecStart", "DynamicUser"}
    bad += [b for b in compare("kato.service", system, module, skip) if "in nix only" not in b]
    n_system = len(system.keys() - skip)

    # instances: everything, paths as sets.
    template = unit_norm(service_section("systemd/kato@.service"), "ci")
    instance = {k: norm(v) for k, v in units["instance"].items()}
    bad += compare("kato@.service", template, instance)

    # user: everything but the bind of the hand-installed binary.
    user = unit_norm(service_section("systemd/kato-user.service"))
    user["BindReadOnlyPaths"] = [p for p in user["BindReadOnlyPaths"] if p != "%h/.local/bin/kato"]
    hm = {k: norm(v) for k, v in units["user"].items()}
    bad += compare("kato-user.service", user, hm, {"ExecStart"})

    if "units.instanceService" not in text:
        bad.append("nix/module.nix: instances are not built with units.instanceService")
    if "units.userService" not in open("nix/home-manager.nix", encoding="utf-8").read():
        bad.append("nix/home-manager.nix: the unit is not built with units.userService")

    if bad:
        print("Nix modules and unit files differ:", *bad, sep="\n  ", file=sys.stderr)
        return 1
    print(f"nix-parity: services.kato matches kato.service on {n_system} directives, "
          f"instances match kato@.service on {len(template)}, home-manager matches "
          f"kato-user.service on {len(user) - 1}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
