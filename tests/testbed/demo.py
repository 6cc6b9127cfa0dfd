"""The README's first command: the seed's walkthrough, live, on two throwaway clusters.

Starts a local and a remote cluster on loopback (the remote with kwok nodes),
runs AK between them as node ``vk-ak-example``, deploys a sample workload and
prints both sides. Ctrl-C stops and removes everything.

Inside the testbed sandbox (``build/demo.sh`` makes one when it runs as root)
the remote cluster also gets a real node (kubelet + containerd), and the
workload runs there in real containers: "crossplane" is a controller that,
with plain in-cluster config, lists pods and writes a ConfigMap in the LOCAL
cluster as its own service account, and its log says what it read. Elsewhere
kwok runs it, with a one-line note saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tests.testbed import images, sandbox
from tests.testbed.akproc import AKProcess, real_node_args
from tests.testbed.cluster import Cluster
from tests.testbed.testbed import Testbed

NODE = "vk-ak-example"
REAL_NODE = "real-remote"
NAMESPACE = "crossplane-system"


def _rbac() -> list[dict[str, Any]]:
    rbac = "rbac.authorization.k8s.io"
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
    ]
    subject = {"kind": "ServiceAccount", "name": "crossplane", "namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "crossplane"}},
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": {"name": "crossplane"},
         "rules": rules},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": {"name": "crossplane"},
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "crossplane"},
         "subjects": [subject]},
    ]  # fmt: skip


def _workload(real: bool) -> list[dict[str, Any]]:
    selector = {"kubernetes.io/hostname": NODE}
    container: dict[str, Any] = {"name": "crossplane", "image": "crossplane/crossplane:v0.13.0"}
    install: dict[str, Any] = {"name": "install", "image": "crossplane/provider-gcp:v0.12.0"}
    pod: dict[str, Any] = {"nodeSelector": selector}
    if real:
        container = {"name": "crossplane", "image": images.CONTROLLER, "imagePullPolicy": "Never"}
        install = {
            "name": "install",
            "image": images.SHELL,
            "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo installing provider-gcp; sleep 1"],
        }
        pod = {**pod, "serviceAccountName": "crossplane", "terminationGracePeriodSeconds": 1}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "crossplane"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "crossplane"}},
                "template": {
                    "metadata": {"labels": {"app": "crossplane"}},
                    "spec": {**pod, "containers": [container]},
                },
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "provider-gcp"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeSelector": selector,
                        "restartPolicy": "Never",
                        "containers": [install],
                    }
                }
            },
        },
    ]


def _say(text: str) -> None:
    print(text, flush=True)


def _show(cluster: Cluster, label: str, *args: str) -> None:
    _say(f"\n$ kubectl --kubeconfig={label}.yaml {' '.join(args)}")
    out = cluster.kubectl(*args, check=False)
    _say((out.stdout + out.stderr).rstrip())


def _settled(local: Cluster, real: bool) -> bool:
    items = local.get_json(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    phases = sorted(p.get("status", {}).get("phase", "") for p in items)
    if phases != ["Running", "Running", "Succeeded"]:
        return False
    if not real:
        return True
    with local.http() as c:
        cm = c.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/controller-state")
    return cm.status_code == 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="print the walkthrough and exit")
    args = parser.parse_args(argv)
    real = sandbox.inside()
    if not real:
        why = sandbox.available() or "not started in the testbed sandbox (build/demo.sh does it)"
        _say(f"[demo] pods run on kwok, not in real containers: {why}")
    _say("Starting two throwaway clusters on loopback (local; remote with 3 kwok nodes)...")
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote", kwok_nodes=3)
        ak = AKProcess(local, remote, NODE)
        if real:
            node = remote.add_real_node(REAL_NODE)
            _say(f"The remote cluster has a real node too: {node.name} (kubelet + containerd)")
            ak = AKProcess(
                local, remote, NODE, node_ip=sandbox.HOST_IP, extra_args=real_node_args(local)
            )
        ak.start()
        try:
            deadline = time.monotonic() + 60
            while not ak.node_ready():
                if not ak.alive() or time.monotonic() > deadline:
                    _say(f"AK did not become Ready; its log: {ak.log}")
                    return 1
                time.sleep(0.3)
            _say(f"AK joined the local cluster as node {NODE} (log: {ak.log})")
            local.kubectl("create", "namespace", NAMESPACE)
            local.apply([*(_rbac() if real else []), *_workload(real)], NAMESPACE)
            deadline = time.monotonic() + 90
            while not _settled(local, real) and time.monotonic() < deadline:
                time.sleep(0.5)
            _show(local, "local", "get", "nodes", "-o", "wide")
            _show(local, "local", "-n", NAMESPACE, "get", "po", "-o", "wide")
            tail = "4" if real else "1"
            _show(local, "local", "-n", NAMESPACE, "logs", "--tail", tail, "deployment/crossplane")
            if real:
                jsonpath = "-o=jsonpath={.data}"
                _show(local, "local", "-n", NAMESPACE, "get", "cm", "controller-state", jsonpath)
            selector = f"actual.vk/node-name={NODE},actual.vk/namespace={NAMESPACE}"
            _show(remote, "remote", "get", "namespace", "-l", selector)
            rns = remote.get_json("/api/v1/namespaces", {"labelSelector": selector})["items"]
            if rns:
                name = rns[0]["metadata"]["name"]
                _show(remote, "remote", "-n", name, "get", "po", "-o", "wide")
                _say("\nremote namespace labels: " + json.dumps(rns[0]["metadata"]["labels"]))
            if args.once:
                return 0 if _settled(local, real) and rns else 1
            _say(
                f"\nTry it yourself:\n  export PATH={tb.tools.bin}:$PATH\n"
                f"  kubectl --kubeconfig={local.kubeconfig} get po -A -o wide\n"
                f"  kubectl --kubeconfig={remote.kubeconfig} get po -A -o wide\n"
                "Press Ctrl-C to stop and clean everything up."
            )
            while ak.alive():
                time.sleep(1)
            _say(f"AK exited; its log: {ak.log}")
            return 1
        except KeyboardInterrupt:
            _say("\nStopping...")
            return 0
        finally:
            ak.stop()


if __name__ == "__main__":
    sys.exit(main())
