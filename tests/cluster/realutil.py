"""Helpers for tests whose pods run in real containers (``ak_real``)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from tests.cluster.util import Obj, phase, wait_until
from tests.conftest import AKNode
from tests.testbed import images
from tests.testbed.cluster import Cluster

# kubectl speaks WebSocket to the API server by default (1.30+); these turn it
# back to SPDY, so both protocols reach AK's kubelet port.
SPDY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
WEBSOCKET = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "true"}


def container(name: str, *command: str, image: str = images.SHELL, **extra: Any) -> Obj:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": list(command),
        **extra,
    }


def shell_pod(node: AKNode, name: str, script: str, **spec: Any) -> Obj:
    containers = spec.pop("containers", None) or [container("c", "sh", "-c", script)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeName": node.name,
            "terminationGracePeriodSeconds": spec.pop("terminationGracePeriodSeconds", 5),
            "containers": containers,
            **spec,
        },
    }


def get_or_none(cluster: Cluster, path: str) -> Obj | None:
    """The object at ``path``, or None if there is none (404)."""
    with cluster.http() as c:
        r = c.get(path)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    out: Obj = r.json()
    return out


def gone(cluster: Cluster, path: str) -> bool:
    return get_or_none(cluster, path) is None


def local_pod(local: Cluster, node: AKNode, name: str) -> Obj:
    return local.get_json(f"/api/v1/namespaces/{node.namespace}/pods/{name}")


def remote_pod(remote: Cluster, node: AKNode, name: str) -> Obj:
    return remote.get_json(f"/api/v1/namespaces/{node.remote_namespace}/pods/{name}")


def wait_running(local: Cluster, node: AKNode, name: str, timeout: float = 90) -> Obj:
    def running() -> Obj | None:
        p = local_pod(local, node, name)
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
        return p if phase(p) == "Running" and ready else None

    return wait_until(f"pod {name} Running and Ready", running, timeout)


def run(local: Cluster, node: AKNode, pod: Obj, timeout: float = 90) -> Obj:
    local.apply(pod, node.namespace)
    return wait_running(local, node, pod["metadata"]["name"], timeout)


def kubectl(
    cluster: Cluster,
    *args: str,
    env: dict[str, str] | None = None,
    input: str | bytes | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    argv = [cluster.tools("kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args]
    data = input.encode() if isinstance(input, str) else input
    done = subprocess.run(
        argv,
        input=data,
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )


def exec_in(
    local: Cluster, node: AKNode, pod: str, *command: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return kubectl(local, "-n", node.namespace, "exec", pod, "--", *command, **kw)
