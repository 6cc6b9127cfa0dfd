"""In-cluster config under the tenant's own egress policies, on the enforcing node.

A controller on the AK node talks to its LOCAL API server from the remote side
(``KUBERNETES_SERVICE_HOST`` is AK's ``local.apiserverHost``). A local egress
policy that admits only DNS and the local API server (the local ``kubernetes``
Service's address, port 443) must still let it do that remotely: AK's copy adds
the endpoint remote pods are given. A deny-all egress stops it.

The testbed's pods reach the API servers through a DNAT of the sandbox's
192.0.2.1 to 127.0.0.1 (``tests.testbed.sandbox``). kube-router judges egress in
the filter table, after that DNAT, so it would see 127.0.0.1 and the copied
``ipBlock`` 192.0.2.1/32 could never match: a real remote reaches the local API
server at a routed address, unrewritten. So for the enforcing node's pods this
test makes it so: their packets to 192.0.2.1:<local port> skip the DNAT
(``ACCEPT`` in nat PREROUTING) and a relay listening on 192.0.2.1 itself hands
the bytes (TLS untouched) to the API server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.cluster.realutil import container, get_or_none, kubectl, shell_pod
from tests.cluster.test_real_incluster import _controller_rbac
from tests.cluster.util import Obj, wait_until
from tests.conftest import AKNode
from tests.testbed import images, realnode, sandbox
from tests.testbed.cluster import Cluster


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _relay(conn: socket.socket, port: int) -> None:
    with conn:
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            return
        with upstream:
            upstream.settimeout(None)
            back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
            back.start()
            _pipe(conn, upstream)
            back.join()


def _serve(listener: socket.socket, port: int) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed: the fixture is done
        threading.Thread(target=_relay, args=(conn, port), daemon=True).start()


@pytest.fixture
def routed_local_apiserver(
    local_cluster: Cluster, remote_netpol_node: realnode.RealNode
) -> Iterator[None]:
    """The local API server at 192.0.2.1:<its port>, unrewritten, for the enforcing node's pods."""
    port = local_cluster.port
    skip = ["-s", remote_netpol_node.pod_cidr, "-d", sandbox.HOST_IP, "-p", "tcp"]
    skip += ["--dport", str(port), "-j", "ACCEPT"]
    listener = socket.create_server((sandbox.HOST_IP, port))
    threading.Thread(target=_serve, args=(listener, port), daemon=True).start()
    subprocess.run(["iptables", "-t", "nat", "-I", "PREROUTING", "1", *skip], check=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-t", "nat", "-D", "PREROUTING", *skip], check=False)
        listener.close()


def _egress(name: str, egress: list[Obj] | None) -> Obj:
    spec: Obj = {"podSelector": {}, "policyTypes": ["Egress"]}
    if egress is not None:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def test_in_cluster_config_under_the_tenants_egress_policies(
    ak_netpol: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    routed_local_apiserver: None,
) -> None:
    node = ak_netpol
    ns, rns = node.namespace, node.remote_namespace
    _controller_rbac(local_cluster, ns)
    controller = container(
        "ctl", "/bin/controller", image=images.CONTROLLER, env=[{"name": "INTERVAL", "value": "1"}]
    )
    pod = shell_pod(node, "ctl", "", containers=[controller], serviceAccountName="ctl")
    pod["spec"]["terminationGracePeriodSeconds"] = 1

    def rounds() -> int:
        cm = get_or_none(local_cluster, f"/api/v1/namespaces/{ns}/configmaps/controller-state")
        return int(cm["data"]["round"]) if cm else 0

    def advances() -> None:
        first = rounds()
        wait_until(
            "the controller's rounds reach the LOCAL API server", lambda: rounds() > first, 90
        )

    def refused() -> None:
        def said() -> bool:
            logs = kubectl(local_cluster, "-n", ns, "logs", "ctl", "--tail=20", timeout=30).stdout
            listed = [ln for ln in logs.splitlines() if ln.startswith("controller: pods:")]
            return bool(listed) and "pod/" not in listed[-1]

        wait_until("the controller cut off from the LOCAL API server", said, 120, 1)

    local_cluster.apply(pod, ns)
    advances()
    cm = get_or_none(local_cluster, f"/api/v1/namespaces/{ns}/configmaps/controller-state")
    assert cm is not None and "pod/ctl" in cm["data"]["pods"].split()

    # Deny-all egress (local) holds remotely: cut off.
    local_cluster.apply(_egress("deny-egress", None), ns)
    refused()

    # Only DNS and the local API server as the local cluster knows it: the copy
    # admits the endpoint remote pods are given, so the controller is back.
    kubernetes = local_cluster.get_json("/api/v1/namespaces/default/services/kubernetes")
    api = {
        "to": [{"ipBlock": {"cidr": f"{kubernetes['spec']['clusterIP']}/32"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    dns = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    local_cluster.apply(_egress("dns-and-api", [dns, api]), ns)
    copy = wait_until(
        "the allow policy's remote copy",
        lambda: get_or_none(
            remote_cluster,
            f"/apis/networking.k8s.io/v1/namespaces/{rns}/networkpolicies/dns-and-api",
        ),
        60,
    )
    endpoint = {"ipBlock": {"cidr": f"{sandbox.HOST_IP}/32"}}
    assert any(endpoint in r.get("to", []) for r in copy["spec"]["egress"]), copy
    advances()
    cm = get_or_none(local_cluster, f"/api/v1/namespaces/{ns}/configmaps/controller-state")
    assert cm is not None and "pod/ctl" in cm["data"]["pods"].split()

    # The allow gone, deny-all alone again.
    local_cluster.kubectl("delete", "networkpolicy", "dns-and-api", "-n", ns)
    refused()
