import copy
from datetime import UTC, datetime, timedelta

import pytest

from ak.core.names import fnv1_64
from ak.core.node import (
    DECLARED_FEATURES,
    lease_object,
    node_is_ready,
    node_object,
    node_status_patch,
)
from ak.core.node_labels import invalid_node_labels
from ak.core.types import Obj

T0 = datetime(2026, 11, 22, 2, 0, 0, tzinfo=UTC)
T0_S = "2026-11-22T02:00:00Z"
ADDRESSES = [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "vk"}]


def make_node(*, now: datetime = T0, ready: bool = True, **overrides: object) -> Obj:
    args: dict[str, object] = {
        "name": "vk-ak-example",
        "labels": {"topology.kubernetes.io/zone": "z1"},
        "taint": True,
        "addresses": ADDRESSES,
        "kubelet_port": 10250,
        "version": "v1.35.7-ak.0.1.0",
        "capacity": {"cpu": "100", "memory": "1Ti", "pods": "1000"},
        "allocatable": {"cpu": "100", "memory": "1Ti", "pods": "1000"},
        "ready": ready,
        "ready_reason": "KubeletReady" if ready else "RemoteUnreachable",
        "ready_message": "kubelet is posting ready status" if ready else "remote API down",
        "now": now,
    }
    args.update(overrides)
    return node_object(**args)  # type: ignore[arg-type]


def test_node_object() -> None:
    node = make_node()
    assert node["apiVersion"] == "v1" and node["kind"] == "Node"
    assert node["metadata"] == {
        "name": "vk-ak-example",
        "labels": {
            "type": "virtual-kubelet",
            "kubernetes.io/hostname": "vk-ak-example",
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "topology.kubernetes.io/zone": "z1",
        },
    }
    assert node["spec"] == {
        "taints": [
            {
                "key": "virtual-kubelet.io/provider",
                "value": "actual-kubelets",
                "effect": "NoSchedule",
            }
        ]
    }
    status = node["status"]
    assert status["addresses"] == ADDRESSES
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert status["capacity"] == {"cpu": "100", "memory": "1Ti", "pods": "1000"}
    assert status["declaredFeatures"] == ["InPlacePodLevelResourcesVerticalScaling"]
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == "v1.35.7-ak.0.1.0"
    assert info["containerRuntimeVersion"] == "actual-kubelets://v1.35.7-ak.0.1.0"
    assert info["kubeProxyVersion"] == ""
    assert (info["operatingSystem"], info["architecture"]) == ("linux", "amd64")
    assert len(info["machineID"]) == 32
    assert info["systemUUID"].replace("-", "") == info["machineID"]
    assert [c["type"] for c in status["conditions"]] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    assert status["conditions"][3] == {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "kubelet is posting ready status",
        "lastHeartbeatTime": T0_S,
        "lastTransitionTime": T0_S,
    }
    assert all(c["status"] == "False" for c in status["conditions"][:3])


def test_node_identity_is_stable_and_per_name() -> None:
    a, b = make_node(), make_node(now=T0 + timedelta(hours=1))
    assert a["status"]["nodeInfo"] == b["status"]["nodeInfo"]
    other = make_node(name="vk-other")
    assert other["status"]["nodeInfo"]["machineID"] != a["status"]["nodeInfo"]["machineID"]


def test_node_without_taint_and_not_ready() -> None:
    node = make_node(taint=False, ready=False)
    assert node["spec"] == {}
    ready = node["status"]["conditions"][3]
    assert (ready["status"], ready["reason"]) == ("False", "RemoteUnreachable")


def test_node_is_ready_reads_the_ready_condition() -> None:
    assert node_is_ready(make_node(ready=True))
    assert not node_is_ready(make_node(ready=False))
    assert not node_is_ready({"metadata": {"name": "n"}})
    assert not node_is_ready({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})


def test_user_labels_override_defaults_and_set_node_info() -> None:
    node = make_node(labels={"kubernetes.io/arch": "arm64"})
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
    assert node["status"]["nodeInfo"]["architecture"] == "arm64"


def test_long_node_name_hostname_label_is_valid() -> None:
    name = "vk." + "a" * 70 + ".example.com"
    hostname = make_node(name=name)["metadata"]["labels"]["kubernetes.io/hostname"]
    assert hostname != name and len(hostname) <= 63


def test_hostname_label_over_63_characters_is_cut_and_hashed() -> None:
    # The rule the README states: up to 63 characters, the node name; beyond, its
    # first 46 characters trimmed to end alphanumeric, '-', and the 16-hex FNV-1
    # 64-bit hash of the full name (63 characters in all).
    def hostname(name: str) -> str:
        return str(make_node(name=name)["metadata"]["labels"]["kubernetes.io/hostname"])

    exactly = "vk-" + "a" * 60
    assert hostname(exactly) == exactly
    name = "vk." + "a" * 70 + ".example.com"
    assert hostname(name) == "vk." + "a" * 43 + f"-{fnv1_64(name.encode()):016x}"
    assert len(hostname(name)) == 63
    cut_at_a_dot = "b" * 45 + "." + "c" * 30
    assert hostname(cut_at_a_dot) == "b" * 45 + f"-{fnv1_64(cut_at_a_dot.encode()):016x}"


def test_node_object_rejects_reserved_labels() -> None:
    with pytest.raises(ValueError, match=r"node-role\.kubernetes\.io/worker"):
        make_node(labels={"node-role.kubernetes.io/worker": ""})


@pytest.mark.parametrize(
    "key",
    [
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "kubelet.kubernetes.io/anything",
        "node.kubernetes.io/anything",
        "foo.node.kubernetes.io/x",
        "example.com/team",
        "team",
        "notkubernetes.io/x",
    ],
)
def test_allowed_node_labels(key: str) -> None:
    assert invalid_node_labels({key: "v"}) == []


@pytest.mark.parametrize(
    "key",
    [
        "kubernetes.io/role",
        "node-role.kubernetes.io/worker",
        "node-restriction.kubernetes.io/x",
        "k8s.io/x",
        "foo.k8s.io/x",
        "topology.kubernetes.io/rack",
        "bad key",
        "-bad",
        "a/b/c",
    ],
)
def test_rejected_node_labels(key: str) -> None:
    assert invalid_node_labels({key: "v"}) == [key]


def test_invalid_label_value_rejected_and_sorted() -> None:
    labels = {"z": "bad value", "a": "-x", "ok": "fine"}
    assert invalid_node_labels(labels) == ["a", "z"]


# --- node_status_patch -----------------------------------------------------------


def stored(node: Obj) -> Obj:
    current = copy.deepcopy(node)
    current["metadata"]["uid"] = "node-uid"
    return current


def test_no_patch_when_only_heartbeat_and_fresh() -> None:
    current = stored(make_node())
    desired = make_node(now=T0 + timedelta(seconds=30))["status"]
    assert node_status_patch(current, desired, T0 + timedelta(seconds=30)) is None


def test_heartbeat_patch_when_old() -> None:
    current = stored(make_node())
    later = T0 + timedelta(seconds=60)
    desired = make_node(now=later)["status"]
    patch = node_status_patch(current, desired, later)
    assert patch is not None
    assert list(patch["status"]) == ["conditions"]
    for condition in patch["status"]["conditions"]:
        assert condition["lastHeartbeatTime"] == "2026-11-22T02:01:00Z"
        assert condition["lastTransitionTime"] == T0_S


def test_max_age_is_configurable() -> None:
    current = stored(make_node())
    later = T0 + timedelta(seconds=11)
    desired = make_node(now=later)["status"]
    assert node_status_patch(current, desired, later, max_age_seconds=10) is not None
    assert node_status_patch(current, desired, later, max_age_seconds=12) is None


def test_ready_flip_moves_transition_time() -> None:
    current = stored(make_node())
    later = T0 + timedelta(seconds=5)
    desired = make_node(now=later, ready=False)["status"]
    patch = node_status_patch(current, desired, later)
    assert patch is not None
    ready = next(c for c in patch["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["lastTransitionTime"] == "2026-11-22T02:00:05Z"
    memory = next(c for c in patch["status"]["conditions"] if c["type"] == "MemoryPressure")
    assert memory["lastTransitionTime"] == T0_S


def test_message_change_is_patched_at_once() -> None:
    current = stored(make_node())
    later = T0 + timedelta(seconds=1)
    desired = make_node(now=later, ready_message="still fine")["status"]
    assert node_status_patch(current, desired, later) is not None


def test_controller_set_unknown_is_overwritten() -> None:
    current = stored(make_node())
    ready = current["status"]["conditions"][3]
    ready.update(status="Unknown", reason="NodeStatusUnknown", lastTransitionTime="t1")
    later = T0 + timedelta(seconds=2)
    patch = node_status_patch(current, make_node(now=later)["status"], later)
    assert patch is not None
    new_ready = next(c for c in patch["status"]["conditions"] if c["type"] == "Ready")
    assert new_ready["status"] == "True"
    assert new_ready["lastTransitionTime"] == "2026-11-22T02:00:02Z"


def test_foreign_conditions_are_kept() -> None:
    current = stored(make_node())
    foreign = {"type": "KernelDeadlock", "status": "False", "reason": "KernelHasNoDeadlock"}
    current["status"]["conditions"].append(foreign)
    later = T0 + timedelta(minutes=5)
    patch = node_status_patch(current, make_node(now=later)["status"], later)
    assert patch is not None
    assert foreign in patch["status"]["conditions"]
    assert node_status_patch(current, make_node(now=later)["status"], T0) is None


def test_capacity_change_with_removed_resource() -> None:
    current = stored(make_node())
    current["status"]["capacity"]["nvidia.com/gpu"] = "4"
    later = T0 + timedelta(seconds=1)
    desired = make_node(now=later, capacity={"cpu": "200", "memory": "1Ti", "pods": "1000"})
    patch = node_status_patch(current, desired["status"], later)
    assert patch is not None
    assert patch["status"]["capacity"] == {"cpu": "200", "nvidia.com/gpu": None}
    assert "allocatable" not in patch["status"]


def test_address_change_replaces_list() -> None:
    current = stored(make_node())
    later = T0 + timedelta(seconds=1)
    addresses = [{"type": "InternalIP", "address": "10.0.0.6"}]
    patch = node_status_patch(current, make_node(now=later, addresses=addresses)["status"], later)
    assert patch is not None
    assert patch["status"]["addresses"] == addresses


def test_missing_heartbeat_forces_patch() -> None:
    current = stored(make_node())
    del current["status"]["conditions"][0]["lastHeartbeatTime"]
    patch = node_status_patch(current, make_node()["status"], T0)
    assert patch is not None


def test_declared_features_are_only_what_ak_does() -> None:
    """A node registered before AK declared anything gets its features; never
    ExtendWebSocketsToKubelet (the API server would then rely on it)."""
    assert "ExtendWebSocketsToKubelet" not in DECLARED_FEATURES
    current = stored(make_node())
    del current["status"]["declaredFeatures"]
    desired = make_node(now=T0 + timedelta(minutes=2))["status"]
    patch = node_status_patch(current, desired, T0 + timedelta(minutes=2))
    assert patch is not None
    assert patch["status"]["declaredFeatures"] == list(DECLARED_FEATURES)
    current["status"]["declaredFeatures"] = list(DECLARED_FEATURES)
    patch = node_status_patch(current, desired, T0 + timedelta(minutes=2))
    assert patch is not None and "declaredFeatures" not in patch["status"]


# --- lease ---------------------------------------------------------------------


def test_lease_object() -> None:
    now = datetime(2026, 11, 22, 2, 11, 44, 123456, tzinfo=UTC)
    assert lease_object("vk-ak-example", "node-uid", now=now) == {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": "vk-ak-example",
            "namespace": "kube-node-lease",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": "vk-ak-example", "uid": "node-uid"}
            ],
        },
        "spec": {
            "holderIdentity": "vk-ak-example",
            "leaseDurationSeconds": 40,
            "renewTime": "2026-11-22T02:11:44.123456Z",
        },
    }


def test_lease_duration_and_whole_second_micro_time() -> None:
    lease = lease_object("n", "u", duration_seconds=15, now=T0)
    assert lease["spec"]["leaseDurationSeconds"] == 15
    assert lease["spec"]["renewTime"] == "2026-11-22T02:00:00.000000Z"


def test_capacity_in_canonical_form_is_not_a_change() -> None:
    from datetime import UTC, datetime

    from ak.core.node import node_status_patch

    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    current = {"status": {"capacity": {"cpu": "64", "pods": "10k"}, "allocatable": {"cpu": "64"}}}
    desired = {"capacity": {"cpu": "64000m", "pods": "10000"}, "allocatable": {"cpu": "64000m"}}
    patch = node_status_patch(current, desired, now)
    assert (
        patch is not None
        and "capacity" not in patch["status"]
        and "allocatable" not in patch["status"]
    )
    changed = node_status_patch(
        current, {"capacity": {"cpu": "63"}, "allocatable": {"cpu": "64"}}, now
    )
    assert changed is not None and changed["status"]["capacity"] == {"cpu": "63", "pods": None}
