#!/usr/bin/env python3
"""ci/k8s-smoke-pod.py RENDERED.json HOME-DIR KATO-IMAGE WORKSPACE-IMAGE SCRIPT
— turn the rendered sidecar base into a pod `podman kube play` can run
(called by ci/k8s-check). Prints the pod and its ConfigMap as JSON lines
(YAML is a superset of JSON).

What changes, and why (nothing about kato's container is weakened):
  - Deployment -> bare Pod named kato-k8s-smoke, restartPolicy Never: the
    workspace container runs a script and exits.
  - The native sidecar (an init container with restartPolicy: Always) moves
    to `containers`: podman 4 runs init containers to completion first and
    does not know sidecars; alongside the workspace is what a 1.29+ kubelet
    does with it.
  - The home PVC becomes a hostPath folder, so the test reads the results
    from the host; recursiveReadOnly is dropped (podman ignores it; readOnly
    stays).
  - A mount with subPath becomes a hostPath mount of that subfolder (what
    the kubelet does; podman 4 ignores subPath on hostPath volumes and would
    mount the whole home writable).
  - An emptyDir becomes a hostPath folder beside the home, mode 0777 as the
    kubelet makes it (podman 4 would make a root-owned named volume).
  - Volumes get the pod's name as a prefix. (podman keeps the ConfigMap as
    a named volume; the test removes it afterwards.)
  - Images: the image ci/container-test built, and a small test image with a
    shell for the workspace.
Every other field (securityContext, uid, mounts, subPaths) is kept.
"""
import json
import os
import sys

rendered, home, kato_image, ws_image, script = sys.argv[1:6]
docs = json.load(open(rendered, encoding="utf-8"))["items"]
deploy = next(d for d in docs if d["kind"] == "Deployment")
config = next(d for d in docs if d["kind"] == "ConfigMap")
spec = deploy["spec"]["template"]["spec"]

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
PREFIX = "kato-k8s-smoke-"
hostpaths = set()
for v in spec["volumes"]:
    if "persistentVolumeClaim" in v:
        del v["persistentVolumeClaim"]
        v["hostPath"] = {"path": home, "type": "Directory"}
    if "emptyDir" in v:
        path = os.path.join(os.path.dirname(home), "emptydir", v["name"])
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
        del v["emptyDir"]
        v["hostPath"] = {"path": path, "type": "Directory"}
    if "hostPath" in v:
        hostpaths.add(v["name"])
extra = []
for c in spec["containers"]:
    for i, m in enumerate(c.get("volumeMounts", [])):
        sub = m.pop("subPath", None)
        if sub is not None:
            if m["name"] not in hostpaths:
                sys.exit(f"subPath on {m['name']}: only hostPath volumes are translated")
            base = next(v for v in spec["volumes"] if v["name"] == m["name"])["hostPath"]["path"]
            name = f"{m['name']}-{c['name']}-{i}"
            extra.append({"name": name, "hostPath": {"path": f"{base}/{sub}", "type": "Directory"}})
            m["name"] = name
        m["name"] = PREFIX + m["name"]
spec["volumes"] += extra
for v in spec["volumes"]:
    v["name"] = PREFIX + v["name"]

pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "kato-k8s-smoke", "labels": deploy["spec"]["template"]["metadata"]["labels"]},
    "spec": spec,
}
print(json.dumps(config))
print("---")
print(json.dumps(pod))
