"""Helpers for real-cluster tests: waiting, workloads pinned to one AK node."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from tests.testbed.cluster import Cluster
from tests.testbed.tools import REPO

T = TypeVar("T")
Obj = dict[str, Any]


def wait_until(
    what: str, probe: Callable[[], T | None], timeout: float = 60, interval: float = 0.3
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        value: Any = None
        try:
            value = probe()
        except Exception as e:  # the object may not exist yet
            value, last = None, e
        if value:
            return cast(T, value)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})"
            )
        time.sleep(interval)


def build_output(script: str) -> str:
    """The last line ``build/<script>`` prints (what it built, or found cached
    by its inputs); its log goes to the test's captured stderr."""
    proc = subprocess.run(
        ["bash", str(REPO / "build" / script)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        timeout=1800,
    )
    assert proc.returncode == 0, f"build/{script} failed; see its output above"
    return proc.stdout.strip().splitlines()[-1]


def pod_template(node: str, labels: dict[str, str], **spec: Any) -> Obj:
    containers = spec.pop("containers", [{"name": "c", "image": "registry.invalid/app:1"}])
    return {
        "metadata": {"labels": labels},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "containers": containers,
            **spec,
        },
    }


def deployment(name: str, node: str, replicas: int, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(node, {"app": name}, **spec),
        },
    }


def budget(name: str, app: str, **spec: Any) -> Obj:
    """A PodDisruptionBudget for the pods labelled ``app``."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


def pod(name: str, node: str, **spec: Any) -> Obj:
    tpl = pod_template(node, {"app": name}, **spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **tpl["metadata"]},
        "spec": tpl["spec"],
    }


def pods(cluster: Cluster, namespace: str, selector: str = "") -> list[Obj]:
    params = {"labelSelector": selector} if selector else None
    items: list[Obj] = cluster.get_json(f"/api/v1/namespaces/{namespace}/pods", params)["items"]
    return items


def phase(p: Obj) -> str:
    return str(p.get("status", {}).get("phase", ""))


def running(items: list[Obj]) -> list[Obj]:
    return [
        p for p in items if phase(p) == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def run_pod(cluster: Cluster, namespace: str, node: str, name: str = "app") -> Obj:
    """Pod ``name`` pinned to ``node``, once it is Running."""
    cluster.apply(pod(name, node), namespace)

    def running_now() -> Obj | None:
        p = cluster.get_json(f"/api/v1/namespaces/{namespace}/pods/{name}")
        return p if phase(p) == "Running" else None

    return wait_until(f"pod {name} Running", running_now)


def events_for(cluster: Cluster, namespace: str, name: str, reason: str = "") -> list[Obj]:
    """The Events about object ``name`` (with ``reason`` only, when given)."""
    items: list[Obj] = cluster.get_json(
        f"/api/v1/namespaces/{namespace}/events",
        {"fieldSelector": f"involvedObject.name={name}"},
    )["items"]
    return [e for e in items if not reason or e.get("reason") == reason]


def claim_manifest(name: str, class_name: str, size: str = "1Gi") -> Obj:
    """A ReadWriteOnce PersistentVolumeClaim in ``class_name``."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": class_name,
            "resources": {"requests": {"storage": size}},
        },
    }
