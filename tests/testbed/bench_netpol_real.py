"""Benchmark: the tenant's NetworkPolicies on a real enforcing node (issue #25).

One server pod and one client pod on the AK node, in real containers on a
remote real node where kube-router's network-policy controller enforces
(``tests.testbed.kuberouter``); AK with pod addresses (``--pod-address-range``).

* ``enforced``: a local policy change until it holds on the remote pod
  network: a local deny-all ingress on the server made or deleted, until the
  client pod's connections to the server's remote IP flip (refused / served).
  The client loops ``webhook get`` and logs each flip with the node's
  ``/proc/uptime`` (10 ms steps: busybox ``date`` has no sub-second field), the
  same clock as this process's ``CLOCK_BOOTTIME``; so the figure is AK's copy
  plus kube-router's sync plus one probe round.
* ``check``: HTTP requests each on a new connection from this host to the
  server's LOCAL pod address (AK accepts, checks the tenant's ingress
  policies, port-forwards): with no policy in the namespace, then with a
  policy selecting the server (an ipBlock admitting this host) plus
  ``--policies`` - 1 selecting other pods, then with none again; same run, so
  the difference is AK's check (and its reading of the policies) end to end.

Prints a table and writes JSON; asserts nothing. In the testbed sandbox::

    python -m tests.testbed.sandbox -- .venv/bin/python -m tests.testbed.bench_netpol_real
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ak.core.names import remote_namespace
from tests.testbed import images, sandbox
from tests.testbed.akproc import AKProcess, real_node_args
from tests.testbed.bench_reach import NS, PORT, _ready_ips, _server, new_connections
from tests.testbed.cluster import Cluster
from tests.testbed.procs import wait_for
from tests.testbed.testbed import Testbed

Obj = dict[str, Any]
PLACEMENT = "netpol"
RANGE = "10.250.201.0/24"
NP = "/apis/networking.k8s.io/v1"

# Logs a line only when the outcome flips, so the log stays short.
CLIENT = """prev=
while true; do
  if /bin/webhook get http://$SERVER/ >/dev/null 2>&1; then r=ok; else r=no; fi
  if [ "$r" != "$prev" ]; then echo "$r $(cut -d' ' -f1 /proc/uptime)"; prev=$r; fi
done
"""


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _client(local: Cluster, node: str, server_ip: str) -> None:
    local.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "client", "labels": {"app": "client"}},
            "spec": {
                "nodeName": node,
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "c",
                        "image": images.WEBHOOK,
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", CLIENT],
                        "env": [{"name": "SERVER", "value": f"{server_ip}:{PORT}"}],
                    }
                ],
            },
        },
        NS,
    )


def _flips(remote: Cluster, rns: str) -> list[tuple[str, float]]:
    with remote.http() as c:
        r = c.get(f"/api/v1/namespaces/{rns}/pods/client/log")
    if r.status_code != 200:
        return []
    out = []
    for line in r.text.splitlines():
        word, _, at = line.partition(" ")
        try:
            out.append((word, float(at)))
        except ValueError:
            continue
    return out


def _deny(name: str = "deny") -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
    }


def bench_enforced(local: Cluster, remote: Cluster, rns: str, changes: int) -> list[float]:
    """Seconds from each local change (deny made / deleted) to the client's flip."""

    def served() -> bool:
        flips = _flips(remote, rns)
        return bool(flips) and flips[-1][0] == "ok"

    wait_for("the client served", served, 120)
    collection = f"{NP}/namespaces/{NS}/networkpolicies"
    out: list[float] = []
    for i in range(changes):
        want = "no" if i % 2 == 0 else "ok"
        seen = len(_flips(remote, rns))
        with local.http() as c:
            start = _boottime()
            if want == "no":
                c.post(collection, json=_deny()).raise_for_status()
            else:
                c.delete(f"{collection}/deny").raise_for_status()

        def flipped(want: str = want, seen: int = seen) -> bool:
            return any(w == want for w, _ in _flips(remote, rns)[seen:])

        wait_for(f"the client {'refused' if want == 'no' else 'served'}", flipped, 120)
        at = next(t for w, t in _flips(remote, rns)[seen:] if w == want)
        out.append(at - start)
    return out


def _allow_and_others(count: int) -> list[Obj]:
    allow = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-host"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
        },
    }
    others = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": f"other-{i}"},
            "spec": {
                "podSelector": {"matchLabels": {"app": f"other-{i}"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "x"}}}]}],
            },
        }
        for i in range(count - 1)
    ]
    return [allow, *others]


def _served(address: str) -> bool:
    try:
        new_connections(address, 1)
    except (OSError, RuntimeError):
        return False
    return True


def bench_check(local: Cluster, address: str, n: int, policies: int) -> dict[str, Any]:
    local.kubectl("delete", "networkpolicy", "--all", "-n", NS)
    wait_for("served without policies", lambda: _served(address), 60)
    out: dict[str, Any] = {"none": new_connections(address, n)}
    local.apply(_allow_and_others(policies), NS)
    wait_for("served with the policies", lambda: _served(address), 60)
    out[f"{policies} policies"] = new_connections(address, n)
    local.kubectl("delete", "networkpolicy", "--all", "-n", NS)
    wait_for("served without them", lambda: _served(address), 60)
    out["none again"] = new_connections(address, n)
    return out


def run(changes: int, n: int, policies: int) -> dict[str, Any]:
    with Testbed() as tb:
        local = tb.cluster("local")
        remote = tb.cluster("remote")
        remote.add_real_node("np-bench", placement=PLACEMENT, network_policy=True)
        args = [*real_node_args(local, PLACEMENT), f"--pod-address-range={RANGE}"]
        ak = AKProcess(local, remote, "ak-npb", node_ip=sandbox.HOST_IP, extra_args=args)
        ak.start()
        try:
            wait_for("AK's node Ready", ak.node_ready, 120, [ak.proc] if ak.proc else [])
            _server(local, ak.node_name)
            rns = remote_namespace(ak.node_name, NS)
            server_ip, address = _ready_ips(local, rns, remote)
            _client(local, ak.node_name, server_ip)
            return {
                "enforced_s": bench_enforced(local, remote, rns, changes),
                "new_connection": bench_check(local, address, n, policies),
            }
        finally:
            ak.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=6, help="policy changes timed")
    parser.add_argument("--requests", type=int, default=200, help="new connections per measure")
    parser.add_argument("--policies", type=int, default=10, help="policies in the namespace")
    parser.add_argument("--json", type=Path, default=Path("bench-netpol-real.json"))
    args = parser.parse_args(argv)
    if not sandbox.inside():
        print(
            "run inside the testbed sandbox: python -m tests.testbed.sandbox -- ...",
            file=sys.stderr,
        )
        return 2
    r = run(args.changes, args.requests, args.policies)
    args.json.write_text(json.dumps(r, indent=2))
    lat = r["enforced_s"]
    made, deleted = lat[0::2], lat[1::2]
    print(f"local policy change -> enforced by kube-router on the remote node (s): "
          f"p50 {statistics.median(lat):.2f}, max {max(lat):.2f} over {len(lat)}; "
          f"deny-all made p50 {statistics.median(made):.2f}, "
          f"deleted p50 {statistics.median(deleted or [0.0]):.2f}")  # fmt: skip
    print("new connection to the pod's local address (AK's check on the path):")
    for what, m in r["new_connection"].items():
        print(f"  {what:>12}: p50 {m['p50_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms, "
              f"{m['requests_per_s']:.0f} req/s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
