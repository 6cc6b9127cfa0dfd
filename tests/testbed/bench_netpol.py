"""Benchmark: what the tenant's NetworkPolicies cost (issue #25).

* ``check``: AK's own check per new connection to a pod address, in-process:
  ``netpol.admits`` over the namespace's policies (kept decoded by the
  controller), with 0 (the path without policies), 1, 10 and 100 policies in
  the pod's namespace; and, for comparison, decoding them from an informer's
  cache each time, as a first version did.
* ``translation``: a local policy change until AK's copy on the remote cluster
  shows it, and until the remote pod carries the label that makes the default
  isolation step aside (the last write AK makes before the network plugin's
  own reaction, which is the plugin's to measure). Real control planes, kwok
  remote, AK as a process; polled every 10 ms.

Prints a table and writes JSON; asserts nothing::

    python -m tests.testbed.sandbox -- .venv/bin/python -m tests.testbed.bench_netpol
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ak.core import netpol
from ak.core.labels import LABEL_INGRESS_COVERED
from ak.core.names import remote_namespace
from ak.kube.informer import Packing
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster
from tests.testbed.procs import wait_for
from tests.testbed.testbed import Testbed

Obj = dict[str, Any]
NP = "/apis/networking.k8s.io/v1"


def _policy(i: int) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"p{i}", "namespace": "web", "resourceVersion": str(i)},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web" if i % 2 else f"other-{i}"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"app": f"client-{i}"}}},
                        {"namespaceSelector": {"matchLabels": {"team": f"t{i}"}}},
                    ],
                    "ports": [{"port": 8000 + i}],
                }
            ],
        },
    }


def bench_check(rounds: int) -> dict[str, float]:
    """Microseconds per connection decided, by number of policies in the namespace."""
    pod = {
        "metadata": {"name": "web-1", "namespace": "web", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
    }
    peer = netpol.Peer("10.1.0.7", "web", {"app": "client"}, {"team": "x"})
    out: dict[str, float] = {}
    for count in (0, 1, 10, 100):
        policies = [_policy(i) for i in range(count)]
        packing = Packing()
        cache = [packing.pack(p) for p in policies]
        start = time.perf_counter()
        for _ in range(rounds):
            if policies:
                netpol.admits(policies, pod, 8080, peer)
        out[f"{count} policies"] = (time.perf_counter() - start) / rounds * 1e6
        start = time.perf_counter()
        for _ in range(rounds):
            decoded = [packing.unpack(p) for p in cache]
            if decoded:
                netpol.admits(decoded, pod, 8080, peer)
        out[f"{count} policies, decoded each time"] = (time.perf_counter() - start) / rounds * 1e6
    return out


def _remote_policy(remote: Cluster, rns: str, name: str) -> Obj | None:
    with remote.http() as c:
        r = c.get(f"{NP}/namespaces/{rns}/networkpolicies/{name}")
    return None if r.status_code == 404 else r.json()


def _until(probe: Any, timeout: float = 30) -> float:
    start = time.monotonic()
    while not probe():
        if time.monotonic() - start > timeout:
            raise TimeoutError("no change seen")
        time.sleep(0.01)
    return time.monotonic() - start


def bench_translation(tb: Testbed, changes: int) -> dict[str, list[float]]:
    local, remote = tb.cluster("local"), tb.cluster("remote", kwok_nodes=1)
    node, ns = f"ak-np-{uuid.uuid4().hex[:4]}", "bench-np"
    rns = remote_namespace(node, ns)
    local.kubectl("create", "namespace", ns)
    ak = AKProcess(local, remote, node).start()
    copies: list[float] = []
    labels: list[float] = []
    try:
        wait_for("node Ready", ak.node_ready, 60, [])
        local.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
            },
            ns,
        )
        wait_for("remote pod", lambda: _remote_pod(remote, rns) is not None, 60, [])
        collection = f"{NP}/namespaces/{ns}/networkpolicies"
        for i in range(changes):
            port = 9000 + i
            spec = {"podSelector": {}, "ingress": [{"ports": [{"port": port}]}]}
            with local.http() as c:
                start = time.monotonic()
                if i == 0:
                    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                            "metadata": {"name": "p"}, "spec": spec}  # fmt: skip
                    c.post(collection, json=body).raise_for_status()
                else:
                    c.patch(
                        f"{collection}/p",
                        content=json.dumps({"spec": spec}),
                        headers={"Content-Type": "application/merge-patch+json"},
                    ).raise_for_status()

            def shows(port: int = port) -> bool:
                copy = _remote_policy(remote, rns, "p")
                rules = (copy or {}).get("spec", {}).get("ingress") or [{}]
                return any(p.get("port") == port for p in rules[0].get("ports") or [])

            _until(shows)
            copies.append(time.monotonic() - start)
            if i == 0:
                _until(lambda: LABEL_INGRESS_COVERED in _labels(_remote_pod(remote, rns)))
                labels.append(time.monotonic() - start)
    finally:
        ak.stop()
    return {"copy": copies, "label": labels}


def _labels(obj: Obj | None) -> dict[str, str]:
    return dict((obj or {}).get("metadata", {}).get("labels") or {})


def _remote_pod(remote: Cluster, rns: str) -> Obj | None:
    with remote.http() as c:
        r = c.get(f"/api/v1/namespaces/{rns}/pods/web")
    return None if r.status_code == 404 else r.json()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench-netpol.json"))
    parser.add_argument("--check-only", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"check_us": bench_check(args.rounds)}
    print("AK's check per new connection (µs), by policies in the namespace:")
    for what, us in result["check_us"].items():
        print(f"  {what:>32}: {us:8.1f}")
    if not args.check_only:
        tb = Testbed()
        try:
            lat = bench_translation(tb, args.changes)
        finally:
            tb.close()
        result["translation_s"] = lat
        print("local policy change -> remote copy (s): "
              f"p50 {statistics.median(lat['copy']):.3f}, max {max(lat['copy']):.3f} "
              f"over {len(lat['copy'])}")  # fmt: skip
        if lat["label"]:
            print(f"new policy -> remote pod labelled covered (s): {lat['label'][0]:.3f}")
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
