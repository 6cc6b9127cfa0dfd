"""Claims provisioned on the remote cluster's storage (#29), against real control planes.

The remote testbed cluster has no provisioner: each test makes a remote
StorageClass of its own (``kubernetes.io/no-provisioner``, Immediate binding)
and static remote PersistentVolumes, which the remote volume controller binds
AK's remote claims to. AK makes the local class ``actual-kubelets-<class>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ak.core import storage
from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NODE, LABEL_VOLUME
from ak.core.names import remote_namespace
from tests.cluster.realutil import get_or_none
from tests.cluster.util import (
    claim_manifest,
    deployment,
    events_for,
    pod,
    pod_template,
    pods,
    running,
    wait_until,
)
from tests.conftest import NODE_IP, AKNode, node_running, wait_for_node_ready
from tests.testbed import workloads
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"


# -- the remote side -------------------------------------------------------------------


def remote_class(remote: Cluster, name: str, **extra: Any) -> None:
    remote.apply(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
            **extra,
        }
    )


def remote_volumes(remote: Cluster, class_name: str, count: int, size: str = "2Gi") -> None:
    remote.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"{class_name}-{i}"},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": class_name,
                    "hostPath": {"path": f"/tmp/{class_name}-{i}"},
                },
            }
            for i in range(count)
        ]
    )


@pytest.fixture
def remote_storage(remote_cluster: Cluster) -> Iterator[str]:
    """A remote class of this test's own with three static volumes."""
    name = f"st-{uuid.uuid4().hex[:5]}"
    remote_class(remote_cluster, name, allowVolumeExpansion=True)
    remote_volumes(remote_cluster, name, 3)
    yield name
    remote_cluster.kubectl("delete", "pv", "-l", "x!=y", "--wait=false", check=False, timeout=30)


# -- the local side --------------------------------------------------------------------


def statefulset(name: str, node: str, class_name: str, replicas: int = 1) -> Obj:
    container = {
        "name": "c",
        "image": "registry.invalid/db:1",
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    claim = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": class_name,
        "resources": {"requests": {"storage": "1Gi"}},
    }
    pod_spec = pod_template(node, {"app": name}, containers=[container])["spec"]
    return workloads.statefulset(name, replicas, pod_spec, {"data": claim})


def claim(cluster: Cluster, ns: str, name: str) -> Obj:
    return cluster.get_json(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}")


def bound_claim(cluster: Cluster, ns: str, name: str, timeout: float = 90) -> Obj:
    return wait_until(
        f"claim {ns}/{name} Bound",
        lambda: c if (c := claim(cluster, ns, name))["status"].get("phase") == "Bound" else None,
        timeout=timeout,
    )


def running_pod(cluster: Cluster, ns: str, name: str, timeout: float = 90) -> Obj:
    def probe() -> Obj | None:
        p = cluster.get_json(f"/api/v1/namespaces/{ns}/pods/{name}")
        ok = p.get("status", {}).get("phase") == "Running"
        return p if ok and not p["metadata"].get("deletionTimestamp") else None

    return wait_until(f"pod {ns}/{name} Running", probe, timeout=timeout)


def local_class(local: Cluster, remote_class_name: str) -> Obj:
    name = storage.local_class_name(remote_class_name)
    return wait_until(f"local StorageClass {name}", lambda: get_or_none(local, f"{CLASSES}/{name}"))


def scale(local: Cluster, ns: str, name: str, replicas: int) -> None:
    local.kubectl("scale", "-n", ns, f"statefulset/{name}", f"--replicas={replicas}")


def gone(cluster: Cluster, path: str, what: str, timeout: float = 60) -> None:
    wait_until(what, lambda: get_or_none(cluster, path) is None, timeout=timeout)


# -- tests -----------------------------------------------------------------------------


def test_statefulset_claim_is_provisioned_remotely_and_survives(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_storage: str
) -> None:
    """Bound locally with an honest volume; the same data after pod delete, SIGKILL +
    restart and scale to 0 and back; no second remote claim ever."""
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    klass = local_class(local_cluster, remote_storage)
    assert klass["provisioner"] == storage.PROVISIONER
    assert klass["volumeBindingMode"] == "WaitForFirstConsumer"
    assert klass["parameters"] == {storage.PARAM_REMOTE_CLASS: remote_storage}
    assert klass["allowVolumeExpansion"] is True
    local_cluster.apply(statefulset("db", ak_node.name, klass["metadata"]["name"]), ns)

    local_claim = bound_claim(local_cluster, ns, "data-db-0")
    pv = local_cluster.get_json(f"/api/v1/persistentvolumes/{local_claim['spec']['volumeName']}")
    remote_claim = bound_claim(remote_cluster, rns, "data-db-0")
    # The local volume is the remote one's: capacity (2Gi, not the 1Gi asked), modes, policy.
    assert pv["metadata"]["name"] == f"pvc-{local_claim['metadata']['uid']}"
    assert pv["spec"]["capacity"] == {"storage": "2Gi"}
    assert local_claim["status"]["capacity"] == {"storage": "2Gi"}
    assert pv["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["csi"]["driver"] == storage.PROVISIONER
    assert pv["spec"]["csi"]["volumeHandle"] == f"{rns}/data-db-0"
    terms = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == [ak_node.name]
    annotations = pv["metadata"]["annotations"]
    assert annotations[storage.ANNOTATION_REMOTE_NAMESPACE] == rns
    assert annotations[storage.ANNOTATION_REMOTE_VOLUME] == remote_claim["spec"]["volumeName"]
    # The remote claim is AK's, tied to the local claim's UID.
    assert remote_claim["metadata"]["labels"][LABEL_NODE] == ak_node.name
    assert remote_claim["metadata"]["labels"][LABEL_VOLUME] == "true"
    assert (
        remote_claim["metadata"]["annotations"][ANNOTATION_LOCAL_UID]
        == (local_claim["metadata"]["uid"])
    )
    assert remote_claim["spec"]["storageClassName"] == remote_storage
    running_pod(local_cluster, ns, "db-0")
    rpod = remote_cluster.get_json(f"/api/v1/namespaces/{rns}/pods/db-0")
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in rpod["spec"][
        "volumes"
    ]
    remote_volume = remote_claim["spec"]["volumeName"]

    def same_volume() -> None:
        now = bound_claim(remote_cluster, rns, "data-db-0")
        assert now["metadata"]["uid"] == remote_claim["metadata"]["uid"]
        assert now["spec"]["volumeName"] == remote_volume
        claims = remote_cluster.get_json(f"/api/v1/namespaces/{rns}/persistentvolumeclaims")
        assert [c["metadata"]["name"] for c in claims["items"]] == ["data-db-0"]

    local_cluster.kubectl("delete", "pod", "-n", ns, "db-0", "--wait=false")
    wait_until(
        "a new db-0",
        lambda: (
            local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/db-0")["metadata"]["uid"]
            != rpod["metadata"]["annotations"][ANNOTATION_LOCAL_UID]
        ),
    )
    running_pod(local_cluster, ns, "db-0")
    same_volume()

    ak_node.ak.kill()
    ak_node.ak.start()
    local_cluster.kubectl("delete", "pod", "-n", ns, "db-0", "--wait=false")
    running_pod(local_cluster, ns, "db-0")
    same_volume()

    scale(local_cluster, ns, "db", 0)
    gone(local_cluster, f"/api/v1/namespaces/{ns}/pods/db-0", "db-0 gone")
    # The remote namespace outlives its pods while it holds the claim (30 s linger).
    scale(local_cluster, ns, "db", 1)
    running_pod(local_cluster, ns, "db-0")
    same_volume()


def test_reclaim_delete_and_retain(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_storage: str
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    retain = f"{remote_storage}-r"
    remote_class(remote_cluster, retain, reclaimPolicy="Retain")
    remote_volumes(remote_cluster, retain, 1)
    local_cluster.apply(
        [
            statefulset(
                "del", ak_node.name, local_class(local_cluster, remote_storage)["metadata"]["name"]
            ),
            statefulset(
                "ret", ak_node.name, local_class(local_cluster, retain)["metadata"]["name"]
            ),
        ],
        ns,
    )
    deleted = bound_claim(local_cluster, ns, "data-del-0")
    kept = bound_claim(local_cluster, ns, "data-ret-0")
    running_pod(local_cluster, ns, "del-0")
    running_pod(local_cluster, ns, "ret-0")
    kept_pv = f"/api/v1/persistentvolumes/{kept['spec']['volumeName']}"
    assert local_cluster.get_json(kept_pv)["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    scale(local_cluster, ns, "del", 0)
    scale(local_cluster, ns, "ret", 0)
    gone(local_cluster, f"/api/v1/namespaces/{ns}/pods/del-0", "del-0 gone")
    gone(local_cluster, f"/api/v1/namespaces/{ns}/pods/ret-0", "ret-0 gone")
    local_cluster.kubectl("delete", "pvc", "-n", ns, "data-del-0", "data-ret-0", "--wait=false")

    # Delete: the remote claim goes once the local volume is released, then the volume.
    gone(
        remote_cluster,
        f"/api/v1/namespaces/{rns}/persistentvolumeclaims/data-del-0",
        "remote claim deleted",
    )
    gone(
        local_cluster,
        f"/api/v1/persistentvolumes/{deleted['spec']['volumeName']}",
        "local volume deleted",
    )
    # Retain: the local volume stays Released and says where the data is; nothing remote goes.
    released = wait_until(
        "the retained volume Released",
        lambda: (
            v if (v := local_cluster.get_json(kept_pv))["status"]["phase"] == "Released" else None
        ),
    )
    assert storage.remote_of(released) == (rns, "data-ret-0")
    remote = claim(remote_cluster, rns, "data-ret-0")
    assert remote["metadata"]["annotations"][ANNOTATION_LOCAL_UID] == kept["metadata"]["uid"]
    assert not remote["metadata"].get("deletionTimestamp")


def test_unknown_remote_class_is_told_and_deletable(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    name = f"actual-kubelets-nope-{uuid.uuid4().hex[:5]}"
    local_cluster.apply(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": storage.PROVISIONER,
            "volumeBindingMode": "WaitForFirstConsumer",
            "parameters": {storage.PARAM_REMOTE_CLASS: "nope"},
        }
    )
    local_cluster.apply(
        [
            claim_manifest("lost", name),
            pod(
                "user",
                ak_node.name,
                volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "lost"}}],
            ),
        ],
        ns,
    )
    failed = wait_until(
        "a ProvisioningFailed Event on the claim",
        lambda: events_for(local_cluster, ns, "lost", "ProvisioningFailed"),
    )
    assert failed[0]["type"] == "Warning"
    assert "no StorageClass 'nope'" in failed[0]["message"]
    assert claim(local_cluster, ns, "lost")["status"]["phase"] == "Pending"
    p = local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/user")
    assert p["status"]["phase"] == "Pending"
    local_cluster.kubectl("delete", "pod", "-n", ns, "user", "--wait=true", timeout=60)
    local_cluster.kubectl("delete", "pvc", "-n", ns, "lost", "--wait=true", timeout=60)
    local_cluster.kubectl("delete", "storageclass", name)


def test_an_immediate_binding_class_of_aks_is_told_on_the_claim(
    ak_node: AKNode, local_cluster: Cluster
) -> None:
    """A class of AK's written with Immediate binding (the API's default): no
    scheduler ever picks a node for its claims, so no AK would act and the
    claim would wait for ever; the claim says why instead."""
    ns = ak_node.namespace
    name = f"ak-immediate-{uuid.uuid4().hex[:5]}"
    local_cluster.apply(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": storage.PROVISIONER,
        }
    )
    local_cluster.apply(claim_manifest("at-once", name), ns)
    failed = wait_until(
        "a ProvisioningFailed Event on the claim",
        lambda: events_for(local_cluster, ns, "at-once", "ProvisioningFailed"),
    )
    assert failed[0]["type"] == "Warning"
    assert "volumeBindingMode: WaitForFirstConsumer" in failed[0]["message"], failed[0]
    local_cluster.kubectl("delete", "pvc", "-n", ns, "at-once", "--wait=true", timeout=60)
    local_cluster.kubectl("delete", "storageclass", name)


def test_expansion_follows_the_remote_claim(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_storage: str
) -> None:
    """A raised request resizes the remote claim; when the remote side grows (here its
    admin plays the remote resizer), the local claim and volume follow."""
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    klass = local_class(local_cluster, remote_storage)["metadata"]["name"]
    local_cluster.apply(statefulset("grow", ak_node.name, klass), ns)
    local_claim = bound_claim(local_cluster, ns, "data-grow-0")
    local_cluster.kubectl(
        "patch", "pvc", "-n", ns, "data-grow-0", "--type=merge",
        "-p", '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}',
    )  # fmt: skip
    remote = wait_until(
        "the remote claim's request raised",
        lambda: (
            c
            if (c := claim(remote_cluster, rns, "data-grow-0"))["spec"]["resources"]["requests"][
                "storage"
            ]
            == "3Gi"
            else None
        ),
    )
    # The remote resizer's part, by hand: the volume and the claim's status grow.
    remote_cluster.kubectl(
        "patch", "pv", remote["spec"]["volumeName"], "--type=merge",
        "-p", '{"spec":{"capacity":{"storage":"3Gi"}}}',
    )  # fmt: skip
    remote_cluster.kubectl(
        "patch", "pvc", "-n", rns, "data-grow-0", "--subresource=status", "--type=merge",
        "-p", '{"status":{"capacity":{"storage":"3Gi"}}}',
    )  # fmt: skip
    wait_until(
        "the local claim's capacity 3Gi",
        lambda: claim(local_cluster, ns, "data-grow-0")["status"]["capacity"]["storage"] == "3Gi",
    )
    pv = local_cluster.get_json(f"/api/v1/persistentvolumes/{local_claim['spec']['volumeName']}")
    assert pv["spec"]["capacity"] == {"storage": "3Gi"}


def test_two_nodes_keep_their_volumes_apart(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_storage: str
) -> None:
    """A claim is served by the node the scheduler picked, and only by it; its volume
    pins the claim's later pods to that node."""
    other = AKNode(
        AKProcess(local_cluster, remote_cluster, f"ak-{uuid.uuid4().hex[:5]}", node_ip=NODE_IP),
        ak_node.namespace,
    )
    with node_running_shared(other):
        klass = local_class(local_cluster, remote_storage)["metadata"]["name"]
        local_cluster.apply(
            [statefulset("one", ak_node.name, klass), statefulset("two", other.name, klass)],
            ak_node.namespace,
        )
        for name, node in (("data-one-0", ak_node), ("data-two-0", other)):
            local_claim = bound_claim(local_cluster, ak_node.namespace, name)
            assert local_claim["metadata"]["annotations"][storage.ANNOTATION_SELECTED_NODE] == (
                node.name
            )
            pv = local_cluster.get_json(
                f"/api/v1/persistentvolumes/{local_claim['spec']['volumeName']}"
            )
            assert pv["metadata"]["labels"][LABEL_NODE] == node.name
            rns = remote_namespace(node.name, ak_node.namespace)
            assert storage.remote_of(pv) == (rns, name)
            bound_claim(remote_cluster, rns, name)
        for node, absent in ((ak_node, "data-two-0"), (other, "data-one-0")):
            rns = remote_namespace(node.name, ak_node.namespace)
            assert (
                get_or_none(
                    remote_cluster, f"/api/v1/namespaces/{rns}/persistentvolumeclaims/{absent}"
                )
                is None
            )
        local_cluster.kubectl("delete", "statefulset", "-n", ak_node.namespace, "two")
        local_cluster.kubectl(
            "delete", "pvc", "-n", ak_node.namespace, "data-two-0", "--wait=false"
        )


@contextmanager
def node_running_shared(node: AKNode) -> Iterator[AKNode]:
    """A second AK node in a namespace that already exists, until the test ends."""
    node.ak.start()
    try:
        wait_for_node_ready(node.ak)
        yield node
    finally:
        node.ak.stop()
        node.ak.local.kubectl("delete", "node", node.name, "--wait=false", check=False)


@pytest.fixture
def remote_default(remote_cluster: Cluster, remote_storage: str) -> Iterator[str]:
    """``remote_storage`` as the remote cluster's default class, for this test."""
    annotate = ["annotate", "storageclass", remote_storage]
    remote_cluster.kubectl(*annotate, f"{storage.ANNOTATION_DEFAULT_CLASS}=true")
    yield remote_storage
    remote_cluster.kubectl(*annotate, f"{storage.ANNOTATION_DEFAULT_CLASS}-", check=False)


def test_ephemeral_volume_and_a_deployment_claim_in_the_default_class(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_default: str
) -> None:
    """Class actual-kubelets provisions in the remote default class; a generic
    ephemeral volume is the claim <pod>-<volume> on both sides."""
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    template = {
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage.DEFAULT_CLASS,
            "resources": {"requests": {"storage": "1Gi"}},
        }
    }
    local_cluster.apply(
        [
            pod(
                "scratchy",
                ak_node.name,
                volumes=[{"name": "scratch", "ephemeral": {"volumeClaimTemplate": template}}],
            ),
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "shared"},
                **template,
            },
            deployment(
                "app",
                ak_node.name,
                1,
                volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "shared"}}],
            ),
        ],
        ns,
    )
    running_pod(local_cluster, ns, "scratchy")
    ephemeral = bound_claim(local_cluster, ns, "scratchy-scratch")
    assert ephemeral["metadata"]["ownerReferences"][0]["name"] == "scratchy"
    remote = bound_claim(remote_cluster, rns, "scratchy-scratch")
    assert remote["spec"]["storageClassName"] == remote_default
    rpod = remote_cluster.get_json(f"/api/v1/namespaces/{rns}/pods/scratchy")
    assert rpod["spec"]["volumes"][0] == {
        "name": "scratch",
        "persistentVolumeClaim": {"claimName": "scratchy-scratch"},
    }
    bound_claim(local_cluster, ns, "shared")
    bound_claim(remote_cluster, rns, "shared")
    wait_until("the Deployment's pod Running", lambda: running(pods(local_cluster, ns, "app=app")))
    # The ephemeral claim goes with its pod, and (reclaim Delete) its remote claim.
    local_cluster.kubectl("delete", "pod", "-n", ns, "scratchy", "--wait=false")
    gone(
        remote_cluster,
        f"/api/v1/namespaces/{rns}/persistentvolumeclaims/scratchy-scratch",
        "the ephemeral remote claim deleted",
        timeout=90,
    )


def test_without_local_rights_the_node_runs_without_storage(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    node = AKNode(
        AKProcess(
            local_cluster,
            remote_cluster,
            f"ak-{uuid.uuid4().hex[:5]}",
            node_ip=NODE_IP,
            grant_storage=False,
        ),
        f"t-{uuid.uuid4().hex[:5]}",
    )
    with node_running(node):
        local_cluster.apply(pod("plain", node.name), node.namespace)
        running_pod(local_cluster, node.namespace, "plain")
        wait_until(
            "the warning in AK's log",
            lambda: "storage is off until the local cluster grants" in node.ak.log.read_text(),
        )


def test_data_survives_a_rolling_update_and_the_node_re_registered(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_storage: str
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    klass = local_class(local_cluster, remote_storage)["metadata"]["name"]
    local_cluster.apply(statefulset("db", ak_node.name, klass), ns)
    bound_claim(local_cluster, ns, "data-db-0")
    first = running_pod(local_cluster, ns, "db-0")
    remote = bound_claim(remote_cluster, rns, "data-db-0")

    seen = {first["metadata"]["uid"]}

    def same_claim_after(what: str) -> Obj:
        """A db-0 not seen before Running, on the same remote claim and volume."""
        now = wait_until(
            what,
            lambda: (
                p
                if (p := running_pod(local_cluster, ns, "db-0"))["metadata"]["uid"] not in seen
                else None
            ),
            timeout=180,
        )
        seen.add(now["metadata"]["uid"])
        again = bound_claim(remote_cluster, rns, "data-db-0")
        assert again["metadata"]["uid"] == remote["metadata"]["uid"]
        assert again["spec"]["volumeName"] == remote["spec"]["volumeName"]
        return now

    local_cluster.kubectl(
        "patch", "statefulset", "-n", ns, "db", "--type=merge",
        "-p", '{"spec":{"template":{"metadata":{"annotations":{"rev":"2"}}}}}',
    )  # fmt: skip
    same_claim_after("db-0 rolled")
    node_uid = ak_node.ak.node()["metadata"]["uid"]
    local_cluster.kubectl("delete", "node", ak_node.name)
    wait_until(
        "the node registered again",
        lambda: ak_node.ak.node()["metadata"]["uid"] != node_uid,
        timeout=90,
    )
    # Back before the pod garbage collector saw the pod orphaned: it runs on, and a
    # new one (deleted here) comes back to this node, pinned by the volume.
    local_cluster.kubectl("delete", "pod", "-n", ns, "db-0", "--wait=false")
    again = same_claim_after("db-0 back on the re-registered node")
    assert again["spec"]["nodeName"] == ak_node.name


def test_a_claim_on_a_local_volume_is_refused(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    """A claim bound to a volume only the local cluster has: the pod stays Pending,
    told why, and can be deleted."""
    ns = ak_node.namespace
    name = f"local-{uuid.uuid4().hex[:5]}"
    local_cluster.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": name},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "hostPath": {"path": f"/tmp/{name}"},
                    "claimRef": {"namespace": ns, "name": "here"},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "here", "namespace": ns},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "volumeName": name,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ]
    )
    bound_claim(local_cluster, ns, "here")
    local_cluster.apply(
        pod(
            "stuck",
            ak_node.name,
            volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "here"}}],
        ),
        ns,
    )
    refused = wait_until(
        "an UnsupportedVolume Event on the pod",
        lambda: [
            e for e in events_for(local_cluster, ns, "stuck") if e["reason"] == "UnsupportedVolume"
        ],
    )
    assert name in refused[0]["message"] and storage.DEFAULT_CLASS in refused[0]["message"]
    p = local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/stuck")
    assert p["status"]["phase"] == "Pending"
    assert (
        get_or_none(remote_cluster, f"/api/v1/namespaces/{ak_node.remote_namespace}/pods/stuck")
        is None
    )
    local_cluster.kubectl("delete", "pod", "-n", ns, "stuck", "--wait=true", timeout=60)
    local_cluster.kubectl("delete", "pvc", "-n", ns, "here", "--wait=true", timeout=60)
    local_cluster.kubectl("delete", "pv", name, "--wait=false")


def test_a_remote_quota_refusal_is_told_on_the_claim(
    local_cluster: Cluster, remote_cluster: Cluster, remote_storage: str, tmp_path: Any
) -> None:
    config = tmp_path / "quota.toml"
    config.write_text('[namespaces.resource_quota.hard]\n"requests.storage" = "1Mi"\n')
    suffix = uuid.uuid4().hex[:5]
    node = AKNode(
        AKProcess(
            local_cluster,
            remote_cluster,
            f"ak-{suffix}",
            node_ip=NODE_IP,
            extra_args=[f"--config={config}"],
        ),
        f"t-{suffix}",
    )
    with node_running(node):
        klass = local_class(local_cluster, remote_storage)["metadata"]["name"]
        local_cluster.apply(statefulset("big", node.name, klass), node.namespace)
        failed = wait_until(
            "a ProvisioningFailed Event on the claim",
            lambda: [
                e
                for e in events_for(local_cluster, node.namespace, "data-big-0")
                if e["reason"] == "ProvisioningFailed"
            ],
            timeout=90,
        )
        assert "exceeded quota" in failed[0]["message"], failed[0]["message"]
        assert claim(local_cluster, node.namespace, "data-big-0")["status"]["phase"] == "Pending"
        local_cluster.kubectl("delete", "statefulset", "-n", node.namespace, "big")
        local_cluster.kubectl(
            "delete", "pvc", "-n", node.namespace, "data-big-0", "--wait=true", timeout=60
        )


def test_a_remote_claim_deleted_behind_aks_back_is_told_not_replaced(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_storage: str
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    klass = local_class(local_cluster, remote_storage)["metadata"]["name"]
    local_cluster.apply(statefulset("db", ak_node.name, klass), ns)
    bound_claim(local_cluster, ns, "data-db-0")
    running_pod(local_cluster, ns, "db-0")
    scale(local_cluster, ns, "db", 0)
    gone(local_cluster, f"/api/v1/namespaces/{ns}/pods/db-0", "db-0 gone")
    remote_cluster.kubectl("delete", "pvc", "-n", rns, "data-db-0", "--wait=true", timeout=60)
    told = wait_until(
        "a RemoteClaimMissing Event on the claim",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "data-db-0")
            if e["reason"] == storage.REASON_REMOTE_CLAIM_MISSING
        ],
    )
    assert f"{rns}/data-db-0" in told[0]["message"]
    scale(local_cluster, ns, "db", 1)
    waiting = wait_until(
        "db-0 waiting for its remote claim",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "db-0")
            if e["reason"] == storage.REASON_WAITING
        ],
        timeout=90,
    )
    assert "data-db-0" in waiting[0]["message"]
    assert (
        get_or_none(remote_cluster, f"/api/v1/namespaces/{rns}/persistentvolumeclaims/data-db-0")
        is None
    )
    assert get_or_none(remote_cluster, f"/api/v1/namespaces/{rns}/pods/db-0") is None
