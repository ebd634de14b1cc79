#!/usr/bin/env python3
"""ci/k8s-policy.py BASE RENDERED.json — kato's own policy over a rendered
kustomize base (called by ci/k8s-check). Fails when a security field is
missing or weakened.

Every pod template (both bases):
  - no service-account token, no host network/PID/IPC;
  - seccomp RuntimeDefault, runAsNonRoot (pod or container level) and, on
    every container, allowPrivilegeEscalation false, capabilities drop ALL
    with nothing added, not privileged (PodSecurity "restricted" for the
    containers);
  - the kato container: readOnlyRootFilesystem, a non-root uid, requests
    and limits for cpu and memory, the configuration mounted read-only,
    every mount of the home data read-only except the export and state
    folders.
sidecar:
  - kato is a native sidecar (an init container, restartPolicy Always) with
    the workspace's uid and gid; the home volume is a PVC, mounted into
    kato read-only with recursiveReadOnly, plus exactly two writable
    subPaths (the export root and the state); no hostPath volume at all.
daemonset:
  - the namespace is labelled PodSecurity "privileged" (hostPath needs it)
    and a deny-all NetworkPolicy (Ingress and Egress, no rules, every pod)
    is in it; every hostPath but the state and exports is read-only; the
    export mount carries the node name (subPathExpr with $(NODE_NAME) from
    the downward API spec.nodeName).
"""
import copy
import json
import sys

bad = []


def need(cond, msg):
    if not cond:
        bad.append(msg)


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def containers(spec):
    return [("init", c) for c in spec.get("initContainers", [])] + [("main", c) for c in spec.get("containers", [])]


def check_restricted(where, spec):
    psc = spec.get("securityContext", {})
    need(spec.get("automountServiceAccountToken") is False, f"{where}: automountServiceAccountToken must be false")
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        need(not spec.get(k), f"{where}: {k} must not be set")
    for kind, c in containers(spec):
        n = f"{where}/{c['name']}"
        sc = c.get("securityContext", {})
        seccomp = get(sc, "seccompProfile", "type") or get(psc, "seccompProfile", "type")
        need(seccomp == "RuntimeDefault", f"{n}: seccompProfile must be RuntimeDefault, is {seccomp}")
        nonroot = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        need(nonroot is True, f"{n}: runAsNonRoot must be true")
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        need(isinstance(uid, int) and uid > 0, f"{n}: runAsUser must be a non-zero uid, is {uid}")
        need(sc.get("allowPrivilegeEscalation") is False, f"{n}: allowPrivilegeEscalation must be false")
        need(get(sc, "capabilities", "drop") == ["ALL"], f"{n}: capabilities.drop must be [ALL]")
        need(not get(sc, "capabilities", "add"), f"{n}: capabilities.add must be empty")
        need(not sc.get("privileged"), f"{n}: privileged must not be set")
        need(sc.get("procMount") in (None, "Default"), f"{n}: procMount must be Default")


def kato_container(spec):
    for kind, c in containers(spec):
        if c["name"] == "kato":
            return kind, c
    bad.append("no container named kato")
    return None, {}


def check_kato(where, spec, writable_ok):
    kind, c = kato_container(spec)
    n = f"{where}/kato"
    sc = c.get("securityContext", {})
    need(sc.get("readOnlyRootFilesystem") is True, f"{n}: readOnlyRootFilesystem must be true")
    for section in ("requests", "limits"):
        for res in ("cpu", "memory"):
            need(get(c, "resources", section, res), f"{n}: resources.{section}.{res} missing")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        ro = m.get("readOnly") is True
        if "configMap" in v or "secret" in v:
            need(ro, f"{n}: {m['mountPath']} (configuration) must be readOnly")
        elif "emptyDir" in v:
            need(get(v, "emptyDir", "sizeLimit"), f"{n}: emptyDir {m['name']} needs a sizeLimit")
        elif not ro:
            need(m["mountPath"] in writable_ok,
                 f"{n}: {m['mountPath']} is writable; only {sorted(writable_ok)} may be")
    return kind, c


def check(base, objs):
    bad.clear()
    if base in ("sidecar", "fleet"):
        deploys = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "Pod")]
        need(len(deploys) == 1, f"sidecar: expected one workload, got {len(deploys)}")
        for d in deploys:
            spec = get(d, "spec", "template", "spec") or d["spec"]
            where = f"{d['kind']}/{d['metadata']['name']}"
            check_restricted(where, spec)
            export_root = "/home/coder/kato-exports" if base == "sidecar" else "/var/lib/kato-exports"
            kind, kato = check_kato(where, spec, {export_root, "/var/lib/kato"})
            need(kind == "init" and kato.get("restartPolicy") == "Always",
                 f"{where}: kato must be a native sidecar (initContainers, restartPolicy Always)")
            psc = spec.get("securityContext", {})
            uids = {(c.get("securityContext", {}).get("runAsUser", psc.get("runAsUser")),
                     c.get("securityContext", {}).get("runAsGroup", psc.get("runAsGroup")))
                    for _, c in containers(spec)}
            need(len(uids) == 1, f"{where}: kato and the workspace must share uid and gid, got {sorted(uids)}")
            vols = {v["name"]: v for v in spec.get("volumes", [])}
            need(not any("hostPath" in v for v in vols.values()), f"{where}: no hostPath volume in a workspace pod")
            home = [m for m in kato.get("volumeMounts", []) if "persistentVolumeClaim" in vols.get(m["name"], {})]
            whole = [m for m in home if "subPath" not in m and "subPathExpr" not in m]
            need(len(whole) == 1, f"{where}: kato must mount the home volume once without subPath, got {len(whole)}")
            for m in whole:
                need(m.get("readOnly") is True and m.get("recursiveReadOnly") in ("IfPossible", "Enabled"),
                     f"{where}: kato's home mount must be readOnly with recursiveReadOnly")
            subs = sorted(m.get("subPath", "") for m in home
                          if m not in whole and m["name"] in {w["name"] for w in whole})
            want = [".local/state/kato", "kato-exports"] if base == "sidecar" else [".local/state/kato"]
            need(subs == want, f"{where}: kato's writable home subPaths must be {want}, got {subs}")
            if base == "fleet":
                # Both containers: the export root is the pod's own folder
                # of a shared volume.
                for _, c in containers(spec):
                    exp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == export_root]
                    env = {e["name"]: e for e in c.get("env", [])}
                    need(len(exp) == 1 and "$(POD_NAME)" in exp[0].get("subPathExpr", "")
                         and "subPath" not in exp[0],
                         f"{where}/{c['name']}: the export root must be subPathExpr $(POD_NAME) of the shared volume")
                    need(get(env.get("POD_NAME", {}), "valueFrom", "fieldRef", "fieldPath") == "metadata.name",
                         f"{where}/{c['name']}: POD_NAME must come from the downward API (metadata.name)")
                    if exp:
                        v = vols.get(exp[0]["name"], {})
                        need(get(v, "persistentVolumeClaim", "claimName") == "kato-fleet-exports",
                             f"{where}/{c['name']}: the export root must be on the shared volume")
    elif base == "daemonset":
        ns = [o for o in objs if o["kind"] == "Namespace"]
        need(len(ns) == 1 and get(ns[0], "metadata", "labels", "pod-security.kubernetes.io/enforce") == "privileged",
             "daemonset: the namespace must be labelled pod-security.kubernetes.io/enforce: privileged")
        pols = [o for o in objs if o["kind"] == "NetworkPolicy"]
        deny = [p for p in pols if get(p, "spec", "podSelector") == {}
                and sorted(get(p, "spec", "policyTypes") or []) == ["Egress", "Ingress"]
                and not get(p, "spec", "ingress") and not get(p, "spec", "egress")]
        need(deny, "daemonset: a deny-all NetworkPolicy (podSelector {}, Ingress and Egress, no rules) is missing")
        sets = [o for o in objs if o["kind"] == "DaemonSet"]
        need(len(sets) == 1, f"daemonset: expected one DaemonSet, got {len(sets)}")
        for d in sets:
            spec = d["spec"]["template"]["spec"]
            where = f"DaemonSet/{d['metadata']['name']}"
            need(d["metadata"].get("namespace") == (ns[0]["metadata"]["name"] if ns else None),
                 f"{where}: not in the privileged namespace")
            for p in pols:
                need(p["metadata"].get("namespace") == d["metadata"].get("namespace"),
                     f"NetworkPolicy/{p['metadata']['name']}: not in the DaemonSet's namespace")
            check_restricted(where, spec)
            _, kato = check_kato(where, spec, {"/var/lib/kato", "/var/lib/kato-exports"})
            env = {e["name"]: e for e in kato.get("env", [])}
            need(get(env.get("NODE_NAME", {}), "valueFrom", "fieldRef", "fieldPath") == "spec.nodeName",
                 f"{where}: NODE_NAME must come from the downward API (spec.nodeName)")
            exp = [m for m in kato.get("volumeMounts", []) if m["mountPath"] == "/var/lib/kato-exports"]
            need(exp and "$(NODE_NAME)" in exp[0].get("subPathExpr", ""),
                 f"{where}: the export mount must carry the node name (subPathExpr: $(NODE_NAME))")
            vols = {v["name"]: v for v in spec.get("volumes", [])}
            for m in kato.get("volumeMounts", []):
                if "hostPath" in vols.get(m["name"], {}) and m["mountPath"] not in ("/var/lib/kato", "/var/lib/kato-exports"):
                    need(m.get("readOnly") is True and m.get("recursiveReadOnly") in ("IfPossible", "Enabled"),
                         f"{where}: hostPath {m['mountPath']} must be readOnly with recursiveReadOnly")
    else:
        sys.exit(f"unknown base {base}")
    return list(bad)


def pod_spec(objs):
    w = next(o for o in objs if o["kind"] in ("Deployment", "DaemonSet"))
    return w["spec"]["template"]["spec"]


def kato_of(objs):
    spec = pod_spec(objs)
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "kato")


def sc(objs):
    return kato_of(objs)["securityContext"]


def home_mount(objs):
    return next(m for m in kato_of(objs)["volumeMounts"] if m["mountPath"] in ("/home/coder", "/home"))


# Weakenings the policy must catch: (what, function that changes the objects).
COMMON = [
    ("root file system writable", lambda o: sc(o).update(readOnlyRootFilesystem=False)),
    ("privilege escalation", lambda o: sc(o).update(allowPrivilegeEscalation=True)),
    ("a capability added", lambda o: sc(o)["capabilities"].update(add=["DAC_READ_SEARCH"])),
    ("capabilities not dropped", lambda o: sc(o).pop("capabilities")),
    ("privileged", lambda o: sc(o).update(privileged=True)),
    ("seccomp unconfined", lambda o: (sc(o).pop("seccompProfile"),
                                      pod_spec(o)["securityContext"].update(seccompProfile={"type": "Unconfined"}))),
    ("runs as root", lambda o: sc(o).update(runAsNonRoot=False, runAsUser=0)),
    ("service-account token", lambda o: pod_spec(o).pop("automountServiceAccountToken")),
    ("host network", lambda o: pod_spec(o).update(hostNetwork=True)),
    ("no memory limit", lambda o: kato_of(o)["resources"]["limits"].pop("memory")),
    ("home writable", lambda o: home_mount(o).pop("readOnly")),
    ("home not recursively read-only", lambda o: home_mount(o).pop("recursiveReadOnly")),
    ("configuration writable", lambda o: next(m for m in kato_of(o)["volumeMounts"]
                                              if m["mountPath"] == "/etc/kato").pop("readOnly")),
]
MUTANTS = {
    "sidecar": COMMON + [
        ("not a native sidecar", lambda o: kato_of(o).pop("restartPolicy")),
        ("another uid than the workspace", lambda o: sc(o).update(runAsUser=1001)),
        ("a hostPath volume", lambda o: pod_spec(o)["volumes"].append({"name": "x", "hostPath": {"path": "/"}})),
        ("another writable subPath", lambda o: kato_of(o)["volumeMounts"].append(
            {"name": "home", "mountPath": "/home/coder/.ssh", "subPath": ".ssh"})),
    ],
    "fleet": COMMON + [
        ("exports without the pod name", lambda o: next(m for m in kato_of(o)["volumeMounts"]
                                                        if m["mountPath"] == "/var/lib/kato-exports")
         .pop("subPathExpr")),
        ("the workspace sees another export folder",
         lambda o: next(m for m in pod_spec(o)["containers"][0]["volumeMounts"]
                        if m["mountPath"] == "/var/lib/kato-exports").update(subPathExpr="shared")),
        ("kato writes into the home", lambda o: kato_of(o)["volumeMounts"].append(
            {"name": "home", "mountPath": "/home/coder/kato-exports", "subPath": "kato-exports"})),
    ],
    "daemonset": COMMON + [
        ("namespace not privileged", lambda o: next(x for x in o if x["kind"] == "Namespace")["metadata"]["labels"]
         .update({"pod-security.kubernetes.io/enforce": "baseline"})),
        ("egress allowed", lambda o: next(x for x in o if x["kind"] == "NetworkPolicy")["spec"]
         .update(egress=[{}])),
        ("no NetworkPolicy", lambda o: o.remove(next(x for x in o if x["kind"] == "NetworkPolicy"))),
        ("exports without the node name", lambda o: next(m for m in kato_of(o)["volumeMounts"]
                                                         if m["mountPath"] == "/var/lib/kato-exports")
         .pop("subPathExpr")),
    ],
}


def main():
    base, path = sys.argv[1], sys.argv[2]
    objs = json.load(open(path, encoding="utf-8"))["items"]
    found = check(base, objs)
    if found:
        print(f"k8s-policy {base}:", *found, sep="\n  ", file=sys.stderr)
        return 1
    # The policy itself: every weakening must be caught.
    missed = []
    for what, mutate in MUTANTS[base]:
        mutant = copy.deepcopy(objs)
        mutate(mutant)
        if not check(base, mutant):
            missed.append(what)
    if missed:
        print(f"k8s-policy {base}: the policy lets these through:", *missed, sep="\n  ", file=sys.stderr)
        return 1
    print(f"k8s-policy {base}: {len(objs)} objects, every security field in place; "
          f"{len(MUTANTS[base])} weakened variants all rejected", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
