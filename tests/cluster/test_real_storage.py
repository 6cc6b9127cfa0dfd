"""PersistentVolumeClaims on the AK node, with their data on the remote cluster's storage (#29).

The remote cluster provisions for real (``remote_local_path``: rancher's
local-path-provisioner onto the remote real node's disk, its default class
``local-path``, and ``local-path-retain``); AK is the provisioner of its local
classes (``actual-kubelets`` for the remote default, ``actual-kubelets-<remote
class>``), making the remote claim of the same name in the pod's remote
namespace and a local placeholder volume pinned to the AK node. The pods run in
real containers on the remote real node, and every data check is by content:
through ``kubectl exec`` into the pod through AK, and on the remote node's disk
(the remote volume's hostPath, which this process sees too).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from ak.core import storage
from ak.core.names import node_label_value
from ak.pods.namespaces import LINGER
from tests.cluster.realutil import (
    container,
    exec_in,
    get_or_none,
    gone,
    local_pod,
    remote_pod,
    wait_running,
)
from tests.cluster.util import Obj, wait_until
from tests.conftest import AKNode, ClusterFactory, ak_on_real_node, wait_for_node_ready
from tests.testbed import workloads
from tests.testbed.cluster import Cluster
from tests.testbed.localpath import RETAIN_CLASS, STORAGE_CLASS, LocalPath

SIZE = "16Mi"
RETAIN = storage.local_class_name(RETAIN_CLASS)
# Each start of a container records itself; the first one writes the content.
SCRIPT = (
    '[ -f /data/file ] || echo "$TOKEN-$POD_NAME" > /data/file; '
    'echo "start $POD_NAME" >> /data/starts; exec sleep 3600'
)


# -- objects -----------------------------------------------------------------------------


def hostname(local: Cluster, node: AKNode) -> str:
    """The AK node's ``kubernetes.io/hostname``: what its volumes are pinned to."""
    labels = local.get_json(f"/api/v1/nodes/{node.name}")["metadata"]["labels"]
    return str(labels["kubernetes.io/hostname"])


def claim_spec(storage_class: str) -> Obj:
    return {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": SIZE}},
    }


def claim(name: str, storage_class: str = storage.DEFAULT_CLASS) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": claim_spec(storage_class),
    }


def pod_spec(node_hostname: str, token: str, volumes: list[Obj]) -> Obj:
    """Scheduled (no nodeName: a WaitForFirstConsumer claim waits for the
    scheduler's choice) onto the AK node; each volume mounted at /<volume name>,
    the first also at /data, where SCRIPT writes."""
    mounts = [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in volumes]
    mounts.append({"name": volumes[0]["name"], "mountPath": "/data"})
    env = [
        {"name": "TOKEN", "value": token},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    return {
        "nodeSelector": {"kubernetes.io/hostname": node_hostname},
        "terminationGracePeriodSeconds": 1,
        "containers": [container("c", "sh", "-c", SCRIPT, env=env, volumeMounts=mounts)],
        "volumes": volumes,
    }


def claim_volume(name: str, claim_name: str) -> Obj:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim_name}}


def statefulset(name: str, node_hostname: str, replicas: int, token: str) -> Obj:
    # The template's volume is the claim template's; SCRIPT writes to /data.
    spec = pod_spec(node_hostname, token, [{"name": "data"}])
    spec["volumes"] = []
    spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return workloads.statefulset(name, replicas, spec, {"data": claim_spec(storage.DEFAULT_CLASS)})


# -- reading what is where ----------------------------------------------------------------


def local_claim(local: Cluster, node: AKNode, name: str) -> Obj | None:
    return get_or_none(local, f"/api/v1/namespaces/{node.namespace}/persistentvolumeclaims/{name}")


def remote_claim(remote: Cluster, node: AKNode, name: str) -> Obj | None:
    path = f"/api/v1/namespaces/{node.remote_namespace}/persistentvolumeclaims/{name}"
    return get_or_none(remote, path)


def bound(get: Callable[[], Obj | None], what: str, timeout: float = 120) -> Obj:
    def probe() -> Obj | None:
        c = get()
        return c if c and c.get("status", {}).get("phase") == "Bound" else None

    return wait_until(f"{what} Bound", probe, timeout)


def volume(cluster: Cluster, name: str) -> Obj:
    return cluster.get_json(f"/api/v1/persistentvolumes/{name}")


def remote_dir(remote: Cluster, node: AKNode, name: str) -> Path:
    """Where the remote volume of claim ``name`` keeps its files, on the real node's disk."""
    rc = bound(lambda: remote_claim(remote, node, name), f"remote claim {name}")
    return LocalPath.volume_dir(volume(remote, rc["spec"]["volumeName"]))


def read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def exec_cat(local: Cluster, node: AKNode, pod: str, path: str) -> str:
    done = exec_in(local, node, pod, "cat", path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_provisioned(
    local: Cluster, remote: Cluster, node: AKNode, name: str, *, reclaim: str, remote_class: str
) -> tuple[Obj, Obj, Obj]:
    """Local claim ``name`` Bound to AK's local volume standing for the remote
    claim of that name, Bound in ``remote_class``: (local PV, remote claim, remote PV)."""
    lc = bound(lambda: local_claim(local, node, name), f"local claim {name}")
    lpv = volume(local, lc["spec"]["volumeName"])
    rc = bound(lambda: remote_claim(remote, node, name), f"remote claim {name}")
    rpv = volume(remote, rc["spec"]["volumeName"])
    assert lpv["metadata"]["name"] == f"pvc-{lc['metadata']['uid']}"
    annotations = lpv["metadata"]["annotations"]
    assert annotations[storage.ANNOTATION_PROVISIONED_BY] == storage.PROVISIONER
    assert annotations[storage.ANNOTATION_REMOTE_NAMESPACE] == node.remote_namespace
    assert annotations[storage.ANNOTATION_REMOTE_CLAIM] == name
    assert storage.is_own_claim(rc, node_label_value(node.name), node.namespace)
    assert storage.made_for(rc) == lc["metadata"]["uid"]
    assert rc["spec"]["storageClassName"] == remote_class
    # What the local volume says is the remote volume's.
    wait_until(
        f"local volume of {name} naming the remote volume",
        lambda: (
            volume(local, lpv["metadata"]["name"])["metadata"]["annotations"].get(
                storage.ANNOTATION_REMOTE_VOLUME
            )
            == rpv["metadata"]["name"]
        ),
        30,
    )
    lpv = volume(local, lpv["metadata"]["name"])
    assert lpv["spec"]["capacity"] == rpv["spec"]["capacity"]
    assert lpv["spec"]["accessModes"] == rpv["spec"]["accessModes"]
    assert lpv["spec"]["persistentVolumeReclaimPolicy"] == reclaim
    assert rpv["spec"]["persistentVolumeReclaimPolicy"] == reclaim
    terms = lpv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    want = {"key": "kubernetes.io/hostname", "operator": "In", "values": [hostname(local, node)]}
    assert terms == [{"matchExpressions": [want]}]
    return lpv, rc, rpv


def restarted(local: Cluster, node: AKNode, name: str, old_uid: str, timeout: float = 180) -> Obj:
    """Pod ``name`` Running and Ready again, as a new pod (not ``old_uid``)."""

    def new() -> Obj | None:
        p = local_pod(local, node, name)
        return p if p["metadata"]["uid"] != old_uid else None

    wait_until(f"a new pod {name}", new, timeout)
    return wait_running(local, node, name, timeout)


def local_classes(local: Cluster) -> dict[str, Obj]:
    items = local.get_json("/apis/storage.k8s.io/v1/storageclasses")["items"]
    return {c["metadata"]["name"]: c for c in items}


# -- the tests ------------------------------------------------------------------------------


def test_ak_offers_a_local_class_per_remote_class(
    ak_real: AKNode, local_cluster: Cluster, remote_local_path: LocalPath
) -> None:
    want = {storage.DEFAULT_CLASS, storage.local_class_name(STORAGE_CLASS), RETAIN}

    def offered() -> dict[str, Obj] | None:
        classes = local_classes(local_cluster)
        return classes if want <= set(classes) else None

    classes = wait_until("AK's local StorageClasses", offered, 60)
    for name in want:
        c = classes[name]
        assert c["provisioner"] == storage.PROVISIONER
        assert c["volumeBindingMode"] == "WaitForFirstConsumer"
    assert classes[RETAIN]["reclaimPolicy"] == "Retain"
    assert classes[RETAIN]["parameters"] == {storage.PARAM_REMOTE_CLASS: RETAIN_CLASS}


def test_statefulset_keeps_its_data_across_deletion_scaling_and_ak_crash(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_local_path: LocalPath
) -> None:
    local, remote, node = local_cluster, remote_cluster, ak_real
    token = uuid.uuid4().hex
    local.apply(statefulset("web", hostname(local, node), 2, token), node.namespace)
    pods = {n: wait_running(local, node, n, 240) for n in ("web-0", "web-1")}

    remote_volumes: dict[str, str] = {}
    remote_claims: dict[str, str] = {}
    for n in pods:
        _, rc, rpv = check_provisioned(
            local, remote, node, f"data-{n}", reclaim="Delete", remote_class=STORAGE_CLASS
        )
        remote_volumes[n] = rpv["metadata"]["name"]
        remote_claims[n] = rc["metadata"]["uid"]
        # The remote pod mounts the remote claim of the same name.
        volumes = remote_pod(remote, node, n)["spec"]["volumes"]
        assert claim_volume("data", f"data-{n}") in volumes
        # What the container wrote: through AK, and on the remote node's disk.
        assert exec_cat(local, node, n, "/data/file") == f"{token}-{n}\n"
        assert read(remote_dir(remote, node, f"data-{n}") / "file") == f"{token}-{n}\n"
    web0 = remote_dir(remote, node, "data-web-0")

    def same_data(starts: int) -> None:
        for n in pods:
            assert exec_cat(local, node, n, "/data/file") == f"{token}-{n}\n"
            rc = remote_claim(remote, node, f"data-{n}")
            assert rc is not None
            assert rc["metadata"]["uid"] == remote_claims[n]
            assert rc["spec"]["volumeName"] == remote_volumes[n]
        assert read(web0 / "starts") == "start web-0\n" * starts

    # 1. kubectl delete pod web-0: its successor mounts the same data.
    local.kubectl("-n", node.namespace, "delete", "pod", "web-0", "--wait=false")
    restarted(local, node, "web-0", pods["web-0"]["metadata"]["uid"])
    same_data(starts=2)

    # 2. Scaled to 0 the claims stay, local and remote, past the time AK lets an
    # emptied remote namespace linger before deleting it.
    local.kubectl("-n", node.namespace, "scale", "statefulset", "web", "--replicas=0")
    for n in pods:
        path = f"/api/v1/namespaces/{node.namespace}/pods/{n}"
        wait_until(f"local pod {n} gone", partial(gone, local, path), 120)
        path = f"/api/v1/namespaces/{node.remote_namespace}/pods/{n}"
        wait_until(f"remote pod {n} gone", partial(gone, remote, path), 120)
    time.sleep(LINGER + 10)
    assert get_or_none(remote, f"/api/v1/namespaces/{node.remote_namespace}") is not None
    for n in pods:
        kept = remote_claim(remote, node, f"data-{n}")
        assert kept is not None and kept["metadata"]["uid"] == remote_claims[n]
        assert bound(partial(local_claim, local, node, f"data-{n}"), f"data-{n}")
    assert read(web0 / "file") == f"{token}-web-0\n"

    # 3. ...and scaled back, the same data is there.
    local.kubectl("-n", node.namespace, "scale", "statefulset", "web", "--replicas=2")
    pods = {n: wait_running(local, node, n, 240) for n in pods}
    same_data(starts=3)

    # 4. AK SIGKILLed and started again: nothing is provisioned twice, and a
    # pod made after the restart still finds its data.
    node.ak.kill()
    node.ak.start()
    wait_for_node_ready(node.ak)
    local.kubectl("-n", node.namespace, "delete", "pod", "web-0", "--wait=false")
    restarted(local, node, "web-0", pods["web-0"]["metadata"]["uid"])
    same_data(starts=4)
    claims = remote.get_json(f"/api/v1/namespaces/{node.remote_namespace}/persistentvolumeclaims")[
        "items"
    ]
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-web-0", "data-web-1"]


@contextmanager
def held(cluster: Cluster, resource: str, condition: str) -> Iterator[None]:
    """Creating ``resource`` objects for which CEL ``condition`` holds is refused
    by the API server (a ValidatingAdmissionPolicy), until the block ends: a
    point AK's work stops at, deterministically. Active once a probe object
    (which the condition is widened to) is refused in a server-side dry run."""
    name = f"hold-{uuid.uuid4().hex[:6]}"
    probe = f"{name}-probe"
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
              "resources": [resource]}]  # fmt: skip
    cluster.apply(
        [
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {"resourceRules": rules},
                    "validations": [
                        {
                            "expression": f"!({condition} || object.metadata.name == '{probe}')",
                            "message": "held by the test",
                        }
                    ],
                },
            },
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name},
                "spec": {"policyName": name, "validationActions": ["Deny"]},
            },
        ]
    )
    obj: Obj = {"apiVersion": "v1", "metadata": {"name": probe}}
    if resource == "pods":
        obj |= {"kind": "Pod", "spec": {"containers": [container("c", "true")]}}
        obj["metadata"]["namespace"] = "default"
    else:
        spec = {"capacity": {"storage": "1Mi"}, "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/nonexistent"}}  # fmt: skip
        obj |= {"kind": "PersistentVolume", "spec": spec}

    def refused() -> bool:
        done = cluster.kubectl(
            "create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False
        )
        return done.returncode != 0 and "held by the test" in done.stderr

    try:
        wait_until(f"the hold on {resource} active", refused, 60)
        yield
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", name, check=False)
        cluster.kubectl("delete", "validatingadmissionpolicy", name, check=False)
        wait_until(f"the hold on {resource} lifted", lambda: not refused(), 60)


@pytest.mark.parametrize("window", ["remote claim made", "local volume made"])
def test_ak_killed_mid_provisioning_provisions_once(
    window: str,
    ak_real: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    remote_local_path: LocalPath,
) -> None:
    """SIGKILL AK between two steps of provisioning: after it made the remote
    claim and before the local volume (its creation held), or after the local
    volume and before the remote pod (held). Started again, it finishes, with
    one remote claim, one local volume, and the pod's data where it should be."""
    local, remote, node = local_cluster, remote_cluster, ak_real
    token = uuid.uuid4().hex
    if window == "remote claim made":
        hold = held(
            local, "persistentvolumes", f"request.userInfo.username == 'system:node:{node.name}'"
        )
    else:
        hold = held(remote, "pods", f"request.namespace == '{node.remote_namespace}'")
    volume_path = ""

    def state() -> dict[str, bool]:
        return {
            "remote claim": remote_claim(remote, node, "data") is not None,
            "local volume": bool(volume_path) and get_or_none(local, volume_path) is not None,
            "remote pod": get_or_none(
                remote, f"/api/v1/namespaces/{node.remote_namespace}/pods/app"
            )
            is not None,
        }

    with hold:
        local.apply(claim("data"), node.namespace)
        lc = local_claim(local, node, "data")
        assert lc is not None
        volume_path = f"/api/v1/persistentvolumes/pvc-{lc['metadata']['uid']}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app"},
            "spec": pod_spec(hostname(local, node), token, [claim_volume("vol", "data")]),
        }
        local.apply(pod, node.namespace)
        want = {
            "remote claim made": {"remote claim": True, "local volume": False, "remote pod": False},
            "local volume made": {"remote claim": True, "local volume": True, "remote pod": False},
        }[window]
        wait_until(f"AK held at {window!r}", lambda: state() == want, 120)
        time.sleep(2)  # AK retries what was refused, and is held again
        node.ak.kill()
        assert state() == want
    node.ak.start()
    wait_for_node_ready(node.ak)
    wait_running(local, node, "app", 180)
    check_provisioned(local, remote, node, "data", reclaim="Delete", remote_class=STORAGE_CLASS)
    assert exec_cat(local, node, "app", "/data/file") == f"{token}-app\n"
    assert read(remote_dir(remote, node, "data") / "file") == f"{token}-app\n"
    claims = remote.get_json(f"/api/v1/namespaces/{node.remote_namespace}/persistentvolumeclaims")[
        "items"
    ]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    mine = [
        v
        for v in local.get_json("/api/v1/persistentvolumes")["items"]
        if (v["spec"].get("claimRef") or {}).get("namespace") == node.namespace
    ]
    assert [v["metadata"]["name"] for v in mine] == [volume_path.rsplit("/", 1)[1]]


def test_reclaim_delete_removes_the_remote_claim_and_retain_keeps_it(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_local_path: LocalPath
) -> None:
    local, remote, node = local_cluster, remote_cluster, ak_real
    token = uuid.uuid4().hex
    local.apply([claim("gone"), claim("kept", RETAIN)], node.namespace)
    volumes = [claim_volume("gone", "gone"), claim_volume("kept", "kept")]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app"},
        "spec": pod_spec(hostname(local, node), token, volumes),
    }
    local.apply(pod, node.namespace)
    wait_running(local, node, "app", 180)
    assert exec_in(local, node, "app", "sh", "-c", 'echo "$TOKEN" > /kept/file').returncode == 0
    gone_pv, _, gone_rpv = check_provisioned(
        local, remote, node, "gone", reclaim="Delete", remote_class=STORAGE_CLASS
    )
    kept_pv, kept_rc, _ = check_provisioned(
        local, remote, node, "kept", reclaim="Retain", remote_class=RETAIN_CLASS
    )
    gone_dir = remote_dir(remote, node, "gone")
    kept_dir = remote_dir(remote, node, "kept")
    assert read(gone_dir / "file") == f"{token}-app\n"
    assert read(kept_dir / "file") == f"{token}\n"

    local.kubectl("-n", node.namespace, "delete", "pod", "app", "--wait=true", timeout=120)
    local.kubectl("-n", node.namespace, "delete", "pvc", "gone", "kept", "--wait=true", timeout=120)

    # Delete: local volume, remote claim, remote volume and its directory go.
    wait_until(
        "the local volume of 'gone' deleted",
        lambda: gone(local, f"/api/v1/persistentvolumes/{gone_pv['metadata']['name']}"),
        120,
    )
    wait_until(
        "the remote claim 'gone' deleted", lambda: remote_claim(remote, node, "gone") is None, 60
    )
    wait_until(
        "the remote volume of 'gone' deleted",
        lambda: gone(remote, f"/api/v1/persistentvolumes/{gone_rpv['metadata']['name']}"),
        120,
    )
    assert not gone_dir.exists()

    # Retain: the local volume stays Released, naming the remote claim, which
    # keeps the data.
    def released() -> Obj | None:
        v = get_or_none(local, f"/api/v1/persistentvolumes/{kept_pv['metadata']['name']}")
        return v if v and v["status"]["phase"] == "Released" else None

    kept_pv = wait_until("the local volume of 'kept' Released", released, 60)
    assert kept_pv["metadata"]["annotations"][storage.ANNOTATION_REMOTE_CLAIM] == "kept"
    time.sleep(5)  # AK had time to act on the release, if it wrongly would
    rc = remote_claim(remote, node, "kept")
    assert rc is not None and rc["metadata"]["uid"] == kept_rc["metadata"]["uid"]
    assert read(kept_dir / "file") == f"{token}\n"


def test_generic_ephemeral_volume(
    ak_real: AKNode, local_cluster: Cluster, remote_cluster: Cluster, remote_local_path: LocalPath
) -> None:
    local, remote, node = local_cluster, remote_cluster, ak_real
    token = uuid.uuid4().hex
    ephemeral = {
        "name": "scratch",
        "ephemeral": {"volumeClaimTemplate": {"spec": claim_spec(storage.DEFAULT_CLASS)}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "eph"},
        "spec": pod_spec(hostname(local, node), token, [ephemeral]),
    }
    local.apply(pod, node.namespace)
    p = wait_running(local, node, "eph", 180)
    name = storage.ephemeral_claim_name("eph", "scratch")
    lpv, _, rpv = check_provisioned(
        local, remote, node, name, reclaim="Delete", remote_class=STORAGE_CLASS
    )
    lc = local_claim(local, node, name)
    assert lc is not None
    assert [o["uid"] for o in lc["metadata"]["ownerReferences"]] == [p["metadata"]["uid"]]
    # The remote pod names the claim AK provisioned; no second claim is made remotely.
    assert claim_volume("scratch", name) in remote_pod(remote, node, "eph")["spec"]["volumes"]
    assert exec_cat(local, node, "eph", "/data/file") == f"{token}-eph\n"
    directory = remote_dir(remote, node, name)
    assert read(directory / "file") == f"{token}-eph\n"

    # The pod's deletion takes its claim (garbage collection), and reclaim
    # Delete the remote claim and the data.
    local.kubectl("-n", node.namespace, "delete", "pod", "eph", "--wait=true", timeout=120)
    wait_until("the local claim collected", lambda: local_claim(local, node, name) is None, 120)
    wait_until("the remote claim deleted", lambda: remote_claim(remote, node, name) is None, 120)
    wait_until(
        "the remote volume deleted",
        lambda: gone(remote, f"/api/v1/persistentvolumes/{rpv['metadata']['name']}"),
        120,
    )
    assert not directory.exists()
    assert gone(local, f"/api/v1/persistentvolumes/{lpv['metadata']['name']}")


def test_two_local_clusters_on_one_remote(
    ak_real: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    remote_local_path: LocalPath,
    cluster_factory: ClusterFactory,
) -> None:
    """Claims of the same name from two local clusters, each with its AK node
    on the same remote cluster: two remote claims, each pod with its own data."""
    other = cluster_factory("local-b")
    with ak_on_real_node(other, remote_cluster, "r") as node_b:
        tokens = {}
        for cluster, node in ((local_cluster, ak_real), (other, node_b)):
            tokens[node.name] = uuid.uuid4().hex
            cluster.apply(claim("data"), node.namespace)
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "app"},
                "spec": pod_spec(
                    hostname(cluster, node), tokens[node.name], [claim_volume("vol", "data")]
                ),
            }
            cluster.apply(pod, node.namespace)
        dirs = set()
        for cluster, node in ((local_cluster, ak_real), (other, node_b)):
            wait_running(cluster, node, "app", 180)
            check_provisioned(
                cluster, remote_cluster, node, "data", reclaim="Delete", remote_class=STORAGE_CLASS
            )
            assert exec_cat(cluster, node, "app", "/data/file") == f"{tokens[node.name]}-app\n"
            d = remote_dir(remote_cluster, node, "data")
            assert read(d / "file") == f"{tokens[node.name]}-app\n"
            dirs.add(d)
        assert len(dirs) == 2
        assert ak_real.remote_namespace != node_b.remote_namespace
