"""The README's first command: the seed's walkthrough, live, on two throwaway clusters.

Starts a local and a remote cluster on loopback (the remote with kwok nodes),
runs AK between them as node ``vk-ak-example``, deploys a sample workload and
prints both sides. Ctrl-C stops and removes everything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ak.testbed.akproc import AKProcess
from ak.testbed.cluster import Cluster, Testbed

NODE = "vk-ak-example"
NAMESPACE = "crossplane-system"


def _workload() -> list[dict[str, Any]]:
    selector = {"kubernetes.io/hostname": NODE}
    container = {"name": "crossplane", "image": "crossplane/crossplane:v0.13.0"}
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
                    "spec": {"nodeSelector": selector, "containers": [container]},
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
                        "containers": [
                            {"name": "install", "image": "crossplane/provider-gcp:v0.12.0"}
                        ],
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


def _settled(local: Cluster) -> bool:
    items = local.get_json(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    phases = sorted(p.get("status", {}).get("phase", "") for p in items)
    return phases == ["Running", "Running", "Succeeded"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__)
    parser.add_argument("--once", action="store_true", help="print the walkthrough and exit")
    args = parser.parse_args(argv)
    _say("Starting two throwaway clusters on loopback (local; remote with 3 kwok nodes)...")
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote", kwok_nodes=3)
        ak = AKProcess(local, remote, NODE)
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
            local.apply(_workload(), NAMESPACE)
            deadline = time.monotonic() + 60
            while not _settled(local) and time.monotonic() < deadline:
                time.sleep(0.5)
            _show(local, "local", "get", "nodes", "-o", "wide")
            _show(local, "local", "-n", NAMESPACE, "get", "po", "-o", "wide")
            _show(local, "local", "-n", NAMESPACE, "logs", "--tail", "1", "deployment/crossplane")
            selector = f"actual.vk/node-name={NODE},actual.vk/namespace={NAMESPACE}"
            _show(remote, "remote", "get", "namespace", "-l", selector)
            rns = remote.get_json("/api/v1/namespaces", {"labelSelector": selector})["items"]
            if rns:
                name = rns[0]["metadata"]["name"]
                _show(remote, "remote", "-n", name, "get", "po", "-o", "wide")
                _say("\nremote namespace labels: " + json.dumps(rns[0]["metadata"]["labels"]))
            if args.once:
                return 0 if _settled(local) and rns else 1
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
