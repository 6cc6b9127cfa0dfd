"""The pod path, local ⇄ remote, against real control planes and kwok."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NAMESPACE, LABEL_NODE
from ak.core.node import DECLARED_FEATURES
from tests.cluster.util import deployment, events_for, phase, pod, pods, running, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]


def remote_pods(remote: Cluster, node: AKNode) -> list[Obj]:
    return pods(remote, node.remote_namespace)


def test_node_registers_ready_with_lease(ak_node: AKNode, local_cluster: Cluster) -> None:
    node = ak_node.ak.node()
    labels = node["metadata"]["labels"]
    assert labels["type"] == "virtual-kubelet"
    assert labels["kubernetes.io/hostname"] == ak_node.name
    status = node["status"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == ak_node.ak.kubelet_port
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert status["nodeInfo"]["kubeletVersion"].startswith("v")
    assert status["declaredFeatures"] == list(DECLARED_FEATURES)
    assert not any(
        t["key"] == "virtual-kubelet.io/provider" for t in node["spec"].get("taints", [])
    )
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{ak_node.name}"
    first = wait_until("the node lease", lambda: local_cluster.get_json(lease_path))
    assert first["spec"]["holderIdentity"] == ak_node.name
    assert first["spec"]["leaseDurationSeconds"] == 40
    renewed = wait_until(
        "a lease renewal",
        lambda: (
            (lease := local_cluster.get_json(lease_path))["spec"]["renewTime"]
            != first["spec"]["renewTime"]
            and lease
        ),
        timeout=25,
    )
    assert renewed["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


def test_deployment_runs_remotely_and_mirrors_status(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    local_cluster.apply(deployment("web", ak_node.name, 5), ns)
    local = wait_until(
        "5 Running local pods",
        lambda: r if len(r := running(pods(local_cluster, ns, "app=web"))) == 5 else None,
    )
    remote = {p["metadata"]["name"]: p for p in remote_pods(remote_cluster, ak_node)}
    assert set(remote) == {p["metadata"]["name"] for p in local}
    for lp in local:
        rp = remote[lp["metadata"]["name"]]
        assert rp["spec"]["nodeName"].startswith("kwok-node-")
        assert rp["metadata"]["labels"][LABEL_NODE] == ak_node.name
        assert rp["metadata"]["labels"][LABEL_NAMESPACE] == ns
        assert rp["metadata"]["annotations"][ANNOTATION_LOCAL_UID] == lp["metadata"]["uid"]
        assert rp["metadata"]["labels"]["app"] == "web"
        assert "nodeSelector" not in rp["spec"]
        assert lp["spec"]["nodeName"] == ak_node.name
        assert lp["status"]["podIP"] == rp["status"]["podIP"]
        assert lp["status"]["containerStatuses"][0]["ready"] is True
        scheduled = [c for c in lp["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert scheduled and scheduled[0]["status"] == "True"
    # The remote namespace follows the seed's scheme and carries its labels.
    rns = remote_cluster.get_json(f"/api/v1/namespaces/{ak_node.remote_namespace}")
    assert rns["metadata"]["labels"][LABEL_NODE] == ak_node.name
    assert rns["metadata"]["labels"][LABEL_NAMESPACE] == ns

    # Scale to zero: remote pods and the remote namespace go away, nothing stays Terminating.
    local_cluster.kubectl("-n", ns, "scale", "deployment/web", "--replicas=0")
    wait_until("local pods gone", lambda: not pods(local_cluster, ns, "app=web"))
    wait_until(
        "remote namespace gone",
        lambda: (
            remote_cluster.kubectl(
                "get", "namespace", ak_node.remote_namespace, check=False
            ).returncode
            != 0
        ),
        timeout=90,
    )


def test_label_and_image_updates_propagate(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("solo", ak_node.name), ns)
    wait_until("pod Running", lambda: running(pods(local_cluster, ns, "app=solo")))
    local_cluster.kubectl("-n", ns, "label", "pod/solo", "tier=gold")
    local_cluster.kubectl("-n", ns, "set", "image", "pod/solo", "c=registry.invalid/app:2")
    got = wait_until(
        "remote label and image",
        lambda: [
            p
            for p in remote_pods(remote_cluster, ak_node)
            if p["metadata"]["labels"].get("tier") == "gold"
            and p["spec"]["containers"][0]["image"] == "registry.invalid/app:2"
        ],
    )
    assert got[0]["metadata"]["name"] == "solo"


def test_pod_delete_leaves_nothing_terminating(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("victim", ak_node.name), ns)
    wait_until("pod Running", lambda: running(pods(local_cluster, ns, "app=victim")))
    local_cluster.kubectl("-n", ns, "delete", "pod", "victim", "--wait=false")
    wait_until("local pod gone", lambda: not pods(local_cluster, ns, "app=victim"), timeout=30)
    assert not [
        p for p in remote_pods(remote_cluster, ak_node) if p["metadata"]["name"] == "victim"
    ]


def test_remote_pod_loss_fails_local_pod_and_replica_set_replaces_it(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    local_cluster.apply(deployment("fragile", ak_node.name, 1), ns)
    first = wait_until("Running pod", lambda: running(pods(local_cluster, ns, "app=fragile")))[0]
    name = first["metadata"]["name"]
    remote_cluster.kubectl("-n", ak_node.remote_namespace, "delete", "pod", name, "--wait=false")
    failed = wait_until(
        "local pod Failed",
        lambda: [p for p in pods(local_cluster, ns, "app=fragile") if phase(p) == "Failed"],
    )
    assert failed[0]["metadata"]["name"] == name
    assert failed[0]["status"]["reason"] == "RemotePodMissing"
    replacement = wait_until(
        "a replacement Running",
        lambda: [
            p
            for p in running(pods(local_cluster, ns, "app=fragile"))
            if p["metadata"]["name"] != name
        ],
    )
    assert replacement[0]["spec"]["nodeName"] == ak_node.name


def test_job_pod_completes(ak_node: AKNode, local_cluster: Cluster) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("once", ak_node.name, restartPolicy="Never"), ns)
    done = wait_until(
        "pod Succeeded",
        lambda: [p for p in pods(local_cluster, ns, "app=once") if phase(p) == "Succeeded"],
    )
    state = done[0]["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["reason"] == "Completed"


def test_missing_secret_reported_then_pod_starts(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "later", "key": "pw"}}}]
    local_cluster.apply(
        pod("waiting", ak_node.name, containers=[{"name": "c", "image": "x", "env": env}]), ns
    )
    # An optional ConfigMap that is missing: the pod runs, and an Event says so.
    maybe = [{"name": "maybe", "configMap": {"name": "absent", "optional": True}}]
    local_cluster.apply(pod("fine", ak_node.name, volumes=maybe), ns)
    wait_until("the other pod Running", lambda: running(pods(local_cluster, ns, "app=fine")))
    told = wait_until(
        "an Event for the optional ConfigMap",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "fine")
            if e["reason"] == "OptionalConfigMapNotFound"
        ],
    )
    assert "'absent'" in told[0]["message"]
    stuck = wait_until(
        "a reason on the waiting pod",
        lambda: [p for p in pods(local_cluster, ns, "app=waiting") if p["status"].get("reason")],
    )
    assert stuck[0]["status"]["reason"] == "MandatorySecretNotFound"
    assert "later" in stuck[0]["status"]["message"]
    evs = wait_until(
        "a Warning event",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "waiting")
            if e["reason"] == "MandatorySecretNotFound"
        ],
    )
    assert evs[0]["type"] == "Warning"
    local_cluster.kubectl(
        "-n", ns, "create", "secret", "generic", "later", "--from-literal=pw=s3cret"
    )
    wait_until(
        "pod Running once the secret exists",
        lambda: running(pods(local_cluster, ns, "app=waiting")),
        90,
    )
    copy = remote_cluster.get_json(f"/api/v1/namespaces/{ak_node.remote_namespace}/secrets/later")
    assert copy["data"]["pw"] == "czNjcmV0"


def test_untranslatable_pod_gets_event_and_reason(ak_node: AKNode, local_cluster: Cluster) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("hostnet", ak_node.name, hostNetwork=True), ns)
    stuck = wait_until(
        "a reason on the pod",
        lambda: [p for p in pods(local_cluster, ns, "app=hostnet") if p["status"].get("reason")],
    )
    assert phase(stuck[0]) == "Pending"
    reason = stuck[0]["status"]["reason"]
    evs = wait_until(
        "a Warning event",
        lambda: [e for e in events_for(local_cluster, ns, "hostnet") if e["reason"] == reason],
    )
    assert evs[0]["type"] == "Warning"
    described = local_cluster.kubectl("-n", ns, "describe", "pod", "hostnet").stdout
    assert stuck[0]["status"]["reason"] in described


def test_dependencies_replicated_updated_and_collected(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "s-env", "--from-literal=a=1")
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "s-vol", "--from-literal=b=2")
    local_cluster.kubectl("-n", ns, "create", "configmap", "cm-from", "--from-literal=c=3")
    local_cluster.kubectl("-n", ns, "create", "configmap", "cm-proj", "--from-literal=d=4")
    container = {
        "name": "c",
        "image": "x",
        "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s-env", "key": "a"}}}],
        "envFrom": [{"configMapRef": {"name": "cm-from"}}],
    }
    volumes = [
        {"name": "v1", "secret": {"secretName": "s-vol"}},
        {"name": "v2", "projected": {"sources": [{"configMap": {"name": "cm-proj"}}]}},
    ]
    local_cluster.apply(pod("consumer", ak_node.name, containers=[container], volumes=volumes), ns)
    wait_until("pod Running", lambda: running(pods(local_cluster, ns, "app=consumer")))
    for kind, name in [
        ("secrets", "s-env"),
        ("secrets", "s-vol"),
        ("configmaps", "cm-from"),
        ("configmaps", "cm-proj"),
    ]:
        remote_cluster.get_json(f"/api/v1/namespaces/{rns}/{kind}/{name}")
    local_cluster.kubectl(
        "-n",
        ns,
        "patch",
        "configmap",
        "cm-proj",
        "--type=merge",
        "-p",
        json.dumps({"data": {"d": "changed"}}),
    )
    wait_until(
        "the change replicated",
        lambda: (
            remote_cluster.get_json(f"/api/v1/namespaces/{rns}/configmaps/cm-proj")["data"]["d"]
            == "changed"
        ),
        timeout=15,
    )
    local_cluster.kubectl("-n", ns, "delete", "pod", "consumer")
    wait_until(
        "the remote namespace and its copies gone",
        lambda: remote_cluster.kubectl("get", "namespace", rns, check=False).returncode != 0,
        timeout=90,
    )


def test_dotted_node_name_gets_a_valid_remote_namespace(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    import uuid

    from ak.core.names import node_label_value, remote_namespace
    from tests.conftest import wait_for_node_ready
    from tests.testbed.akproc import AKProcess

    name = f"ak.{uuid.uuid4().hex[:4]}.example.com"
    ns = f"d-{uuid.uuid4().hex[:4]}"
    ak = AKProcess(local_cluster, remote_cluster, name)
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak)
        local_cluster.apply(pod("dotted", name), ns)
        wait_until("pod Running", lambda: running(pods(local_cluster, ns)))
        rns = remote_namespace(name, ns)
        assert "." not in rns and len(rns) <= 63
        got = remote_cluster.get_json(f"/api/v1/namespaces/{rns}")
        assert got["metadata"]["labels"][LABEL_NODE] == node_label_value(name)
        assert running(pods(remote_cluster, rns))
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", name, "--wait=false", check=False)
