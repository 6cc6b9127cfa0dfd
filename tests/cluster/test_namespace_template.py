"""Remote namespaces get the configured template: Pod Security labels, quota, limits."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ak.core.names import remote_namespace
from tests.cluster.util import events_for, pod, pods, running, wait_until
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

TEMPLATE = """
[namespaces]
labels = {{ "pod-security.kubernetes.io/enforce" = "baseline", "example.com/tier" = "{tier}" }}
[namespaces.resourceQuota.hard]
pods = "{pods}"
[namespaces.limitRange.defaultRequest]
cpu = "100m"
"""


def test_template_applied_kept_in_step_and_privileged_pods_refused(
    tmp_path: Path, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    config = tmp_path / "ak.toml"
    config.write_text(TEMPLATE.format(tier="gold", pods=5))
    name, ns = f"ak-ns-{uuid.uuid4().hex[:4]}", f"tpl-{uuid.uuid4().hex[:4]}"
    ak = AKProcess(local_cluster, remote_cluster, name, extra_args=[f"--config={config}"])
    rns = remote_namespace(name, ns)
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak)
        local_cluster.apply(pod("plain", name), ns)
        wait_until("plain pod Running", lambda: running(pods(local_cluster, ns, "app=plain")))
        labels = remote_cluster.get_json(f"/api/v1/namespaces/{rns}")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["example.com/tier"] == "gold"
        quota = remote_cluster.get_json(f"/api/v1/namespaces/{rns}/resourcequotas/actual-kubelets")
        assert quota["spec"]["hard"] == {"pods": "5"}
        remote_pod = remote_cluster.get_json(f"/api/v1/namespaces/{rns}/pods/plain")
        assert remote_pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "100m"

        privileged = [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        local_cluster.apply(pod("root", name, containers=privileged), ns)
        refused = wait_until(
            "a refusal Event",
            lambda: [e for e in events_for(local_cluster, ns, "root") if e["type"] == "Warning"],
        )
        assert "baseline" in refused[0]["message"] and "privileged" in refused[0]["message"]
        assert not [p for p in pods(remote_cluster, rns) if p["metadata"]["name"] == "root"]
        # Its container says so too, where `kubectl get`, `describe` and `wait` look.
        waiting = wait_until(
            "the refusal in the container's status",
            lambda: local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/root")["status"][
                "containerStatuses"
            ][0]["state"].get("waiting"),
        )
        assert waiting["reason"] == "ProviderCreateFailed"
        assert waiting["message"] == refused[0]["message"]

        # A changed template reaches existing namespaces after a restart.
        ak.stop()
        config.write_text(TEMPLATE.format(tier="silver", pods=7))
        ak.start()
        wait_until(
            "namespace relabelled",
            lambda: (
                remote_cluster.get_json(f"/api/v1/namespaces/{rns}")["metadata"]["labels"].get(
                    "example.com/tier"
                )
                == "silver"
            ),
            timeout=30,
        )
        wait_until(
            "quota updated",
            lambda: (
                remote_cluster.get_json(f"/api/v1/namespaces/{rns}/resourcequotas/actual-kubelets")[
                    "spec"
                ]["hard"]
                == {"pods": "7"}
            ),
        )
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", name, "--wait=false", check=False)
