"""A remote API server reached by another address than its certificate names
(an SSH tunnel from a bastion host): kubeconfig's tls-server-name is honoured
for requests, watches and the exec WebSocket alike, as kubectl honours it."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ak.kube.client import KubeClient
from ak.kube.config import load_kubeconfig
from ak.kube.errors import Unreachable
from tests.cluster.util import run_pod
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

# 127.0.0.2 is loopback but not in the serving certificate; this name is.
NAME = "kubernetes.default.svc"


class Tunnel:
    """A TCP relay from 127.0.0.2 to an API server, as `ssh -L` would be."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.2", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for s in self.open:
            s.close()


@pytest.fixture(scope="module")
def tunnel(remote_cluster: Cluster) -> Iterator[Tunnel]:
    t = Tunnel(("127.0.0.1", urlsplit(remote_cluster.server).port or 443))
    yield t
    t.close()


def _tunnelled(tunnel: Tunnel, cluster: Cluster, directory: Path, server_name: str | None) -> Path:
    doc = json.loads(cluster.kubeconfig.read_text())
    entry = doc["clusters"][0]["cluster"]
    entry["server"] = f"https://127.0.0.2:{tunnel.port}"
    if server_name:
        entry["tls-server-name"] = server_name
    path = directory / f"tunnel-{server_name or 'none'}.kubeconfig"
    path.write_text(json.dumps(doc))
    return path


async def _version(kubeconfig: Path) -> str:
    client = KubeClient(load_kubeconfig(str(kubeconfig)), name="test")
    try:
        return str((await client.get("/version"))["gitVersion"])
    finally:
        await client.aclose()


async def test_the_name_is_needed_and_enough(
    tunnel: Tunnel, remote_cluster: Cluster, tmp_path: Path
) -> None:
    with pytest.raises(Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
        await _version(_tunnelled(tunnel, remote_cluster, tmp_path, None))
    assert (await _version(_tunnelled(tunnel, remote_cluster, tmp_path, NAME))).startswith("v")


def test_pods_and_exec_through_the_tunnel(
    tunnel: Tunnel, local_cluster: Cluster, remote_cluster: Cluster, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:5]
    ns = f"tls-{suffix}"
    ak = AKProcess(
        local_cluster,
        remote_cluster,
        f"ak-tls-{suffix}",
        remote_kubeconfig=_tunnelled(tunnel, remote_cluster, tmp_path, NAME),
    )
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak)
        run_pod(local_cluster, ns, ak.node_name)
        out = local_cluster.kubectl("-n", ns, "exec", "app", "--", "echo", "hi", check=False)
        assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", ak.node_name, "--wait=false", check=False)
