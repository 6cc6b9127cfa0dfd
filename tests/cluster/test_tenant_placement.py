"""A pod's own remote placement, within the operator's allow-list, and an extended
resource (a fake GPU on a kwok node) advertised by auto capacity and passed through."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ak.core.names import remote_namespace
from ak.core.tenant_placement import ANNOTATION
from tests.cluster.util import events_for, pod, pods, running, wait_until
from tests.conftest import ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

GPU = "example.com/gpu"
MODEL = "gpu.example.com/model"
CONFIG = f"""
[pods.placement.allowed]
nodeLabels = {{ "{MODEL}" = ["a100"] }}
"""


def _asking(name: str, node: str, request: dict[str, object], gpus: int = 0) -> dict[str, object]:
    resources = {"limits": {GPU: str(gpus)}} if gpus else {}
    manifest = pod(name, node, containers=[{"name": "c", "image": "x", "resources": resources}])
    manifest["metadata"]["annotations"] = {ANNOTATION: json.dumps(request)}
    return manifest


def test_a_gpu_pod_lands_where_it_asked_and_a_refused_request_says_why(
    tmp_path: Path, cluster_factory: ClusterFactory, local_cluster: Cluster
) -> None:
    remote = cluster_factory("remote-gpu", kwok_nodes=2)
    # kwok-node-1 becomes a GPU node: a label a tenant may target, two fake GPUs.
    remote.kubectl("label", "node", "kwok-node-1", f"{MODEL}=a100")
    gpus = json.dumps({"status": {"capacity": {GPU: "2"}, "allocatable": {GPU: "2"}}})
    remote.kubectl(
        "patch", "node", "kwok-node-1", "--subresource=status", "--type=merge", "-p", gpus
    )

    config = tmp_path / "ak.toml"
    config.write_text(CONFIG)
    name, ns = f"ak-gpu-{uuid.uuid4().hex[:4]}", f"gpu-{uuid.uuid4().hex[:4]}"
    rns = remote_namespace(name, ns)
    ak = AKProcess(
        local_cluster, remote, name, extra_args=[f"--config={config}", "--auto-capacity"]
    )
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak)
        wait_until(
            "the node advertises the remote GPUs",
            lambda: ak.node()["status"]["allocatable"].get(GPU) == "2",
            30,
        )

        local_cluster.apply(_asking("trainer", name, {"nodeSelector": {MODEL: "a100"}}, gpus=1), ns)
        wait_until("trainer Running", lambda: running(pods(local_cluster, ns, "app=trainer")))
        remote_pod = remote.get_json(f"/api/v1/namespaces/{rns}/pods/trainer")
        assert remote_pod["spec"]["nodeName"] == "kwok-node-1"
        assert remote_pod["spec"]["nodeSelector"] == {MODEL: "a100"}
        assert remote_pod["spec"]["containers"][0]["resources"]["requests"][GPU] == "1"

        # A label the operator does not allow: never created remotely, and the pod says why.
        local_cluster.apply(_asking("rogue", name, {"nodeSelector": {"type": "kwok"}}), ns)
        refused = wait_until(
            "a refusal Event",
            lambda: [e for e in events_for(local_cluster, ns, "rogue") if e["type"] == "Warning"],
        )
        assert refused[0]["reason"] == "RemotePlacementNotAllowed"
        assert "'type', which the operator does not allow" in refused[0]["message"]
        waiting = wait_until(
            "the refusal in the container's status",
            lambda: (
                local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/rogue")["status"]
                .get("containerStatuses", [{}])[0]
                .get("state", {})
                .get("waiting")
            ),
        )
        assert waiting["reason"] == "RemotePlacementNotAllowed"
        local = local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/rogue")
        assert local["status"]["phase"] == "Pending"
        assert not [p for p in pods(remote, rns) if p["metadata"]["name"] == "rogue"]

        # A remote quota of one GPU per namespace: the node advertises the GPU in
        # use plus none left, not the remote nodes' 2, and the local scheduler
        # keeps a second GPU pod off the node.
        ak.stop()
        config.write_text(CONFIG + f'[namespaces.resourceQuota.hard]\n"requests.{GPU}" = "1"\n')
        ak.start()
        wait_until(
            "the node advertises what the quota allows",
            lambda: ak.node()["status"]["allocatable"].get(GPU) == "1",
            60,
        )
        local_cluster.apply(_asking("second", name, {"nodeSelector": {MODEL: "a100"}}, gpus=1), ns)
        unscheduled = wait_until(
            "the scheduler keeps the second GPU pod off",
            lambda: [
                e
                for e in events_for(local_cluster, ns, "second")
                if e["reason"] == "FailedScheduling"
            ],
        )
        assert f"Insufficient {GPU}" in unscheduled[0]["message"]
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "node", name, "--wait=false", check=False)
