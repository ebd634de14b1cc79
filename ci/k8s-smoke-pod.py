#!/usr/bin/env python3
"""ci/k8s-smoke-pod.py RENDERED.json POD WORKDIR KATO-IMAGE WORKSPACE-IMAGE SCRIPT
— turn a rendered sidecar base into a pod `podman kube play` can run
(called by ci/k8s-check). Prints the ConfigMap and the pod as JSON
documents (YAML is a superset of JSON).

What changes, and why (nothing about kato's container is weakened):
  - Deployment -> bare Pod named POD, restartPolicy Never: the workspace
    container runs SCRIPT and exits.
  - The native sidecar (an init container with restartPolicy: Always) moves
    to `containers`: podman 4 runs init containers to completion first and
    does not know sidecars; alongside the workspace is what a 1.29+ kubelet
    does with it.
  - PVCs become hostPath folders, so the test reads the results from the
    host: workspace-home is WORKDIR/home, any other claim WORKDIR/pvc/<claim>
    (mode 0777, like a fresh shared export). recursiveReadOnly is dropped
    (podman ignores it; readOnly stays).
  - subPath and subPathExpr become hostPath mounts of that subfolder, as the
    kubelet does (podman 4 ignores subPath on hostPath volumes and would
    mount the whole volume writable). subPathExpr is expanded from the
    container's env, the downward API standing in as metadata.name = POD,
    metadata.namespace = default, spec.nodeName = smoke-node; a missing
    subfolder is created, as the kubelet does. Env fieldRefs become those
    values too (podman 4 knows few of them).
  - An emptyDir becomes a hostPath folder, mode 0777 as the kubelet makes
    it (podman 4 would make a root-owned named volume).
  - Volumes get POD as a prefix. (podman keeps the ConfigMap as a named
    volume; the test removes it afterwards.)
  - Images: the image ci/container-test built, and a small test image with a
    shell for the workspace.
Every other field (securityContext, uid, mount paths, read-only flags) is
kept.
"""
import json
import os
import re
import sys

rendered, pod_name, workdir, kato_image, ws_image, script = sys.argv[1:7]
docs = json.load(open(rendered, encoding="utf-8"))["items"]
deploy = next(d for d in docs if d["kind"] == "Deployment")
config = next(d for d in docs if d["kind"] == "ConfigMap")
spec = deploy["spec"]["template"]["spec"]
FIELDS = {"metadata.name": pod_name, "metadata.namespace": "default", "spec.nodeName": "smoke-node"}


def mkdir(path, mode):
    if not os.path.isdir(path):
        os.makedirs(path)
        os.chmod(path, mode)


sidecars = [c for c in spec.pop("initContainers", []) if c.get("restartPolicy") == "Always"]
for c in sidecars:
    del c["restartPolicy"]
    c["image"] = kato_image
    for m in c.get("volumeMounts", []):
        m.pop("recursiveReadOnly", None)
for c in spec["containers"]:
    c["image"] = ws_image
    c["command"] = ["/bin/sh", "-c", script]
spec["containers"] = sidecars + spec["containers"]
spec["restartPolicy"] = "Never"

paths = {}
for v in spec["volumes"]:
    if "persistentVolumeClaim" in v:
        claim = v.pop("persistentVolumeClaim")["claimName"]
        path = os.path.join(workdir, "home" if claim == "workspace-home" else f"pvc/{claim}")
        mkdir(path, 0o777)
        v["hostPath"] = {"path": path, "type": "Directory"}
    if "emptyDir" in v:
        path = os.path.join(workdir, "emptydir", v["name"])
        mkdir(path, 0o777)
        del v["emptyDir"]
        v["hostPath"] = {"path": path, "type": "Directory"}
    if "hostPath" in v:
        paths[v["name"]] = v["hostPath"]["path"]

extra = []
prefix = pod_name + "-"
for c in spec["containers"]:
    env = {}
    for e in c.get("env", []):
        field = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field:
            # podman 4 knows few fieldRefs: the value the kubelet would set.
            del e["valueFrom"]
            e["value"] = FIELDS[field]
        env[e["name"]] = e.get("value", "")
    for i, m in enumerate(c.get("volumeMounts", [])):
        sub = m.pop("subPath", None)
        expr = m.pop("subPathExpr", None)
        if expr is not None:
            sub = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda g: env[g.group(1)], expr)
        if sub is not None:
            if m["name"] not in paths:
                sys.exit(f"subPath on {m['name']}: only hostPath volumes are translated")
            base = paths[m["name"]]
            mkdir(os.path.join(base, sub), os.stat(base).st_mode & 0o7777)
            name = f"{m['name']}-{c['name']}-{i}"
            extra.append({"name": name, "hostPath": {"path": os.path.join(base, sub), "type": "Directory"}})
            m["name"] = name
        m["name"] = prefix + m["name"]
spec["volumes"] += extra
for v in spec["volumes"]:
    v["name"] = prefix + v["name"]

pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": pod_name, "labels": deploy["spec"]["template"]["metadata"]["labels"]},
    "spec": spec,
}
print(json.dumps(config))
print("---")
print(json.dumps(pod))
