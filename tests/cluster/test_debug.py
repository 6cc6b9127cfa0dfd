"""`kubectl debug` on a pod of the AK node: the ephemeral container runs remotely."""

from __future__ import annotations

import json

import pytest

from tests.cluster.util import events_for, run_pod, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def _running_app(node: AKNode, local: Cluster) -> tuple[str, str, str]:
    """Pod "app" Running on the node: its namespace and its local and remote paths."""
    ns = node.namespace
    local_path = f"/api/v1/namespaces/{ns}/pods/app"
    run_pod(local, ns, node.name)
    return ns, local_path, f"/api/v1/namespaces/{node.remote_namespace}/pods/app"


def test_kubectl_debug_runs_remotely_and_a_refusal_is_an_event(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, local_path, remote_path = _running_app(ak_node, local_cluster)

    def remote_ephemeral() -> dict[str, dict[str, object]]:
        spec = remote_cluster.get_json(remote_path)["spec"]
        return {c["name"]: c for c in spec.get("ephemeralContainers", [])}

    def debug(container: str, profile: str) -> None:
        local_cluster.kubectl(
            "-n", ns, "debug", "app", "--image=busybox:1", f"--container={container}",
            "--target=c", f"--profile={profile}",
        )  # fmt: skip

    uid = local_cluster.get_json(local_path)["metadata"]["uid"]

    # kubectl's "general" profile adds SYS_PTRACE: the remote namespace's
    # PodSecurity baseline refuses it, and the local pod's Events say so.
    debug("ptrace", "general")
    refused = wait_until(
        "an Event naming the refusal",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "app")
            if e["reason"] == "ProviderUpdateFailed" and "'ptrace'" in e["message"]
        ],
    )
    assert "PodSecurity" in refused[0]["message"]
    # ...and so does its status: it ended without running, with the remote's
    # message, so whatever waits for it (kubectl debug -it, kubectl wait) ends.
    ptrace = wait_until(
        "ptrace's status on the local pod",
        lambda: {
            s["name"]: s
            for s in local_cluster.get_json(local_path)["status"].get(
                "ephemeralContainerStatuses", []
            )
        }.get("ptrace"),
    )
    terminated = ptrace["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("StartError", 128)
    assert terminated["message"] == refused[0]["message"]
    assert not ptrace.get("containerID")
    logs = local_cluster.kubectl("-n", ns, "logs", "app", "-c", "ptrace", check=False)
    assert logs.returncode != 0 and "is terminated: StartError" in logs.stderr, logs.stderr
    assert "PodSecurity" in logs.stderr

    # The refused one does not hold back the next.
    debug("dbg", "baseline")
    added = wait_until("dbg on the remote pod", lambda: remote_ephemeral().get("dbg"))
    assert added["image"] == "busybox:1"
    assert added["targetContainerName"] == "c"
    env = {e["name"]: e.get("value") for e in added.get("env", [])}  # type: ignore[attr-defined]
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"  # the local API server, as for "c"
    assert "ptrace" not in remote_ephemeral()

    def ephemeral_statuses() -> dict[str, dict[str, object]]:
        status = local_cluster.get_json(local_path)["status"]
        return {s["name"]: s for s in status.get("ephemeralContainerStatuses", [])}

    dbg = wait_until("dbg's status on the local pod", lambda: ephemeral_statuses().get("dbg"))
    assert "running" in dbg["state"]  # type: ignore[operator]
    assert sorted(ephemeral_statuses()) == ["dbg", "ptrace"]
    logs = local_cluster.kubectl("-n", ns, "logs", "app", "-c", "dbg", check=False)
    assert logs.returncode == 0, logs.stderr
    # Nothing was re-created on either side, and the refusal was reported once.
    assert local_cluster.get_json(local_path)["metadata"]["uid"] == uid
    assert local_cluster.get_json(local_path)["status"]["phase"] == "Running"
    again = [e for e in events_for(local_cluster, ns, "app") if "'ptrace'" in e["message"]]
    assert len(again) == 1 and again[0].get("count", 1) == 1


def test_an_ephemeral_container_waits_for_the_secret_it_reads(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, _, remote_path = _running_app(ak_node, local_cluster)
    # What `kubectl debug` does, with an envFrom its flags cannot express.
    container = {
        "name": "envdbg",
        "image": "busybox:1",
        "envFrom": [{"secretRef": {"name": "later"}}],
    }
    local_cluster.kubectl(
        "-n", ns, "patch", "pod", "app", "--subresource=ephemeralcontainers",
        "--type=strategic", "-p", json.dumps({"spec": {"ephemeralContainers": [container]}}),
    )  # fmt: skip
    wait_until(
        "an Event saying what it waits for",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "app")
            if e["reason"] == "MandatorySecretNotFound" and "'later'" in e["message"]
        ],
    )
    remote_spec = remote_cluster.get_json(remote_path)["spec"]
    assert "ephemeralContainers" not in remote_spec  # not before its Secret is there
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "later", "--from-literal=k=v")
    added = wait_until(
        "envdbg on the remote pod once the Secret exists",
        lambda: remote_cluster.get_json(remote_path)["spec"].get("ephemeralContainers"),
    )
    assert [c["name"] for c in added] == ["envdbg"]
    copy = remote_cluster.get_json(f"/api/v1/namespaces/{ak_node.remote_namespace}/secrets/later")
    assert copy["data"] == {"k": "dg=="}
