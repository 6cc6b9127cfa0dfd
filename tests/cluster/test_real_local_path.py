"""The testbed's dynamic provisioning, on the remote cluster directly (no AK).

rancher's local-path-provisioner (``tests.testbed.localpath``, the ``remote_local_path``
fixture) provisions claims for pods on the remote real node: what AK's volumes
stand on (tests/cluster/test_real_storage.py). Here a claim's data is written by
one real container, read back by another after the first is gone, and checked by
content on the node's disk; reclaim Delete removes the directory with the claim,
Retain keeps both volume and data.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.realutil import container, get_or_none, gone, kubectl
from tests.cluster.util import Obj, phase, wait_until
from tests.testbed import realnode
from tests.testbed.cluster import Cluster
from tests.testbed.localpath import RETAIN_CLASS, STORAGE_CLASS, LocalPath

SIZE = "16Mi"


@pytest.fixture
def namespace(remote_cluster: Cluster) -> Iterator[str]:
    ns = f"lp-{uuid.uuid4().hex[:5]}"
    remote_cluster.kubectl("create", "namespace", ns)
    yield ns
    remote_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def claim(name: str, storage_class: str | None = None) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": SIZE}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": spec,
    }


def claim_pod(node: realnode.RealNode, name: str, claim_name: str, script: str, **env: str) -> Obj:
    """A pod on ``node`` (through the scheduler, which a WaitForFirstConsumer
    claim waits for) running ``script`` with the claim at /data."""
    c = container(
        "c",
        "sh",
        "-c",
        script,
        env=[{"name": k, "value": v} for k, v in env.items()],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node.name},
            "tolerations": [realnode.TOLERATION],
            "terminationGracePeriodSeconds": 1,
            "containers": [c],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
        },
    }


def run_pod(remote: Cluster, ns: str, pod: Obj, timeout: float = 120) -> Obj:
    remote.apply(pod, ns)
    path = f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}"

    def running() -> Obj | None:
        p = remote.get_json(path)
        assert phase(p) not in ("Failed", "Succeeded"), p.get("status")
        return p if phase(p) == "Running" else None

    return wait_until(f"pod {ns}/{pod['metadata']['name']} Running", running, timeout)


def write(remote: Cluster, ns: str, node: realnode.RealNode, claim_name: str) -> str:
    """Pod ``writer`` running on ``node``, having written something unique to
    ``/data/file`` on the claim: what it wrote (a line)."""
    content = f"written-by-writer-{uuid.uuid4().hex}"
    script = 'echo "$CONTENT" > /data/file && exec sleep 3600'
    run_pod(remote, ns, claim_pod(node, "writer", claim_name, script, CONTENT=content))
    return content


def delete_pod(remote: Cluster, ns: str, name: str) -> None:
    remote.kubectl("-n", ns, "delete", "pod", name, "--wait=true", timeout=90)


def bound_volume(remote: Cluster, ns: str, name: str) -> Obj:
    pvc = remote.get_json(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}")
    assert pvc["status"]["phase"] == "Bound", pvc["status"]
    return remote.get_json(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")


def test_a_claim_keeps_its_data_across_pods_and_goes_with_the_claim(
    remote_cluster: Cluster,
    remote_real_node: realnode.RealNode,
    remote_local_path: LocalPath,
    namespace: str,
) -> None:
    remote, ns = remote_cluster, namespace
    # No class named: the remote's default (local-path) is filled in.
    remote.apply(claim("data"), ns)
    pvc = remote.get_json(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data")
    assert pvc["spec"]["storageClassName"] == STORAGE_CLASS
    # WaitForFirstConsumer: nothing is provisioned before a pod uses it.
    assert pvc["status"]["phase"] == "Pending"
    volumes = remote.get_json("/api/v1/persistentvolumes")["items"]
    assert all(v["spec"].get("claimRef", {}).get("namespace") != ns for v in volumes)

    content = write(remote, ns, remote_real_node, "data")
    pv = bound_volume(remote, ns, "data")
    spec = pv["spec"]
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["capacity"]["storage"] == SIZE
    assert spec["accessModes"] == ["ReadWriteOnce"]
    assert spec["storageClassName"] == STORAGE_CLASS
    terms = spec["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["real-remote"]}
            ]
        }
    ]
    directory = remote_local_path.volume_dir(pv)
    assert directory.parent == remote_local_path.paths[remote_real_node.name]
    # What the container wrote, on the node's disk.
    assert (directory / "file").read_text() == content + "\n"

    delete_pod(remote, ns, "writer")
    reader = claim_pod(
        remote_real_node,
        "reader",
        "data",
        'cat /data/file && echo "$MORE" >> /data/file && exec sleep 3600',
        MORE="appended-by-reader",
    )
    run_pod(remote, ns, reader)

    def reader_log() -> str:
        return kubectl(remote, "-n", ns, "logs", "reader").stdout.strip()

    assert wait_until("the reader's log", reader_log, 30) == content
    assert bound_volume(remote, ns, "data")["metadata"]["name"] == pv["metadata"]["name"]
    seen = kubectl(remote, "-n", ns, "exec", "reader", "--", "cat", "/data/file")
    assert seen.stdout == f"{content}\nappended-by-reader\n", seen.stderr

    # Reclaim Delete: the claim's deletion takes the volume and its directory.
    delete_pod(remote, ns, "reader")
    remote.kubectl("-n", ns, "delete", "pvc", "data", "--wait=true", timeout=60)
    pv_path = f"/api/v1/persistentvolumes/{pv['metadata']['name']}"
    wait_until("the PV deleted", lambda: gone(remote, pv_path), 120)
    assert not directory.exists()
    assert remote_local_path.paths[remote_real_node.name].is_dir()


def test_reclaim_retain_keeps_the_volume_and_its_data(
    remote_cluster: Cluster,
    remote_real_node: realnode.RealNode,
    remote_local_path: LocalPath,
    namespace: str,
) -> None:
    remote, ns = remote_cluster, namespace
    remote.apply(claim("kept", RETAIN_CLASS), ns)
    content = write(remote, ns, remote_real_node, "kept")
    pv = bound_volume(remote, ns, "kept")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    directory: Path = remote_local_path.volume_dir(pv)

    delete_pod(remote, ns, "writer")
    remote.kubectl("-n", ns, "delete", "pvc", "kept", "--wait=true", timeout=60)
    pv_path = f"/api/v1/persistentvolumes/{pv['metadata']['name']}"

    def released() -> Obj | None:
        got = get_or_none(remote, pv_path)
        return got if got and got["status"]["phase"] == "Released" else None

    wait_until("the PV Released", released, 60)
    assert (directory / "file").read_text() == content + "\n"
    # Retained volumes are the operator's to remove.
    remote.kubectl("delete", "pv", pv["metadata"]["name"], "--wait=true")
    shutil.rmtree(directory)
