#!/usr/bin/env python3
"""CycloneDX 1.5 JSON SBOM of kato's crate graph, from `cargo metadata`.

Reads `cargo metadata --locked --format-version 1 --filter-platform <target>`
on stdin and writes the SBOM on stdout. No network access, no plugin.

Contents:
- every crate reachable from the root package through normal and build
  dependencies for the target (dev-dependencies are left out);
- per crate: name, version, purl `pkg:cargo/name@version`, licence (SPDX
  expression from Cargo.toml), the crate archive's SHA-256 from Cargo.lock;
- scope `required` for crates linked into the binary, `excluded` for crates
  that only run at build time (build scripts' dependencies, proc-macros and
  what they pull in);
- the dependency graph (`dependencies`: ref -> dependsOn).

Output is deterministic: sorted keys and lists, timestamp from
SOURCE_DATE_EPOCH, serial number derived from the binary's hash.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import uuid

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


def load_lock_checksums(path):
    """(name, version, source) -> sha256 from Cargo.lock."""
    with open(path, "rb") as fh:
        text = fh.read().decode("utf-8")
    try:
        import tomllib

        packages = tomllib.loads(text).get("package", [])
    except ModuleNotFoundError:  # Python < 3.11: the lockfile format is simple
        packages = []
        for block in text.split("[[package]]")[1:]:
            fields = dict(re.findall(r'^(\w+) = "([^"]*)"$', block, re.M))
            packages.append(fields)
    out = {}
    for p in packages:
        if "checksum" in p:
            out[(p["name"], p["version"], p.get("source"))] = p["checksum"]
    return out


def purl(pkg):
    base = "pkg:cargo/{}@{}".format(pkg["name"], pkg["version"])
    source = pkg.get("source")
    if source is None or source == CRATES_IO:
        return base
    if source.startswith("registry+") or source.startswith("sparse+"):
        url = source.split("+", 1)[1]
        return base + "?repository_url=" + url
    if source.startswith("git+"):
        return base + "?vcs_url=" + source
    return base


def licenses(pkg):
    lic = pkg.get("license")
    if lic:
        # Old manifests write "MIT/Apache-2.0" for "MIT OR Apache-2.0".
        expr = " OR ".join(part.strip() for part in lic.split("/"))
        return [{"expression": expr}]
    if pkg.get("license_file"):
        return [{"license": {"name": "LicenseRef-see-license-file"}}]
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lockfile", required=True)
    ap.add_argument("--binary", required=True, help="built binary, hashed into metadata")
    ap.add_argument("--target", required=True)
    args = ap.parse_args()

    meta = json.load(sys.stdin)
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    if root is None:
        sys.exit("sbom.py: cargo metadata has no root package")
    checksums = load_lock_checksums(args.lockfile)

    def is_proc_macro(pid):
        return any("proc-macro" in t["kind"] for t in pkgs[pid]["targets"])

    def edges(pid, kinds):
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] in kinds for k in dep["dep_kinds"]):
                yield dep["pkg"]

    # Everything built for the target (normal + build edges, no dev edges).
    built, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in built:
            continue
        built.add(pid)
        stack.extend(edges(pid, (None, "build")))

    # What ends up linked in: normal edges only, never into a proc-macro.
    linked, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in linked:
            continue
        linked.add(pid)
        stack.extend(d for d in edges(pid, (None,)) if not is_proc_macro(d))

    with open(args.binary, "rb") as fh:
        bin_sha = hashlib.sha256(fh.read()).hexdigest()

    def component(pid, kind):
        p = pkgs[pid]
        c = {
            "type": kind,
            "bom-ref": purl(p),
            "name": p["name"],
            "version": p["version"],
            "purl": purl(p),
        }
        if p.get("description"):
            c["description"] = " ".join(p["description"].split())
        lic = licenses(p)
        if lic:
            c["licenses"] = lic
        sha = checksums.get((p["name"], p["version"], p.get("source")))
        if sha:
            c["hashes"] = [{"alg": "SHA-256", "content": sha}]
        refs = []
        if p.get("repository"):
            refs.append({"type": "vcs", "url": p["repository"]})
        if p.get("source") == CRATES_IO:
            refs.append(
                {
                    "type": "distribution",
                    "url": "https://crates.io/crates/{}/{}".format(p["name"], p["version"]),
                }
            )
        if refs:
            c["externalReferences"] = refs
        return c

    root_c = component(root, "application")
    root_c["hashes"] = [{"alg": "SHA-256", "content": bin_sha}]
    root_c["properties"] = [{"name": "cargo:target", "value": args.target}]

    components = []
    for pid in sorted(built - {root}, key=lambda i: (pkgs[i]["name"], pkgs[i]["version"], i)):
        c = component(pid, "library")
        c["scope"] = "required" if pid in linked else "excluded"
        components.append(c)

    dependencies = []
    for pid in sorted(built, key=lambda i: purl(pkgs[i])):
        deps = sorted({purl(pkgs[d]) for d in edges(pid, (None, "build")) if d in built})
        dependencies.append({"ref": purl(pkgs[pid]), "dependsOn": deps})

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    serial = uuid.uuid5(uuid.NAMESPACE_URL, "{}#sha256={}".format(purl(pkgs[root]), bin_sha))

    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": "urn:uuid:{}".format(serial),
        "version": 1,
        "metadata": {
            "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "kato ci/sbom.py",
                        "description": "generated from cargo metadata --locked",
                    }
                ]
            },
            "component": root_c,
        },
        "components": components,
        "dependencies": dependencies,
    }
    json.dump(bom, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
