from decimal import Decimal

import pytest

from ak.core.capacity import auto_capacity, pod_requests
from ak.core.labels import LABEL_NODE
from ak.core.quantity import format_quantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", "0.1"),
        ("2", "2"),
        ("1Gi", str(2**30)),
        ("1.5k", "1500"),
        ("1e3", "1000"),
        ("250Mi", str(250 * 2**20)),
    ],
)
def test_parse_quantity(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


def test_format_quantity() -> None:
    assert format_quantity("cpu", Decimal("1.2345")) == "1234m"
    assert format_quantity("memory", Decimal("1024.9")) == "1024"
    assert format_quantity("pods", Decimal(-3)) == "0"


def node(name: str, cpu: str, mem: str, pods: str, *, ready: bool = True) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": name},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": mem, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(node_name: str, cpu: str, owner: str | None = None, phase: str = "Running") -> dict:  # type: ignore[type-arg]
    labels = {LABEL_NODE: owner} if owner else {}
    return {
        "metadata": {"name": "p", "labels": labels},
        "spec": {"nodeName": node_name, "containers": [{"resources": {"requests": {"cpu": cpu}}}]},
        "status": {"phase": phase},
    }


def test_auto_capacity_counts_ready_nodes_minus_other_tenants() -> None:
    nodes = [
        node("a", "4", "8Gi", "110"),
        node("b", "4", "8Gi", "110"),
        node("c", "64", "1Ti", "110", ready=False),
    ]
    pods = [
        pod("a", "1"),  # another tenant or a remote workload
        pod("b", "500m", owner="vk"),  # ours: not subtracted
        pod("b", "2", phase="Succeeded"),  # done: not counted
        pod("c", "8"),  # on a NotReady node: not counted
    ]
    cap = auto_capacity(nodes, pods, "vk", 1.0)
    assert cap == {"cpu": "7000m", "memory": str(16 * 2**30), "pods": "219"}
    half = auto_capacity(nodes, pods, "vk", 0.5)
    assert half["cpu"] == "3500m" and half["pods"] == "109"


def test_pod_requests_take_the_largest_init_container() -> None:
    p = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m"}}},
                {"resources": {"requests": {"cpu": "200m"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
            "overhead": {"cpu": "10m"},
        }
    }
    assert pod_requests(p) == {"cpu": Decimal("1.010"), "memory": Decimal(2**30)}


def test_pod_level_requests_stand_for_the_pods() -> None:
    p = {
        "spec": {
            "resources": {"requests": {"cpu": "2", "memory": "1Gi"}},
            "containers": [{"resources": {"requests": {"cpu": "100m", "example.com/gpu": "1"}}}],
            "overhead": {"cpu": "10m"},
        }
    }
    assert pod_requests(p) == {
        "cpu": Decimal("2.010"),
        "memory": Decimal(2**30),
        "example.com/gpu": Decimal(1),
    }


def test_auto_capacity_advertises_extended_resources_in_whole_units() -> None:
    gpu = node("g", "8", "32Gi", "110")
    gpu["status"]["allocatable"]["example.com/gpu"] = "3"
    other = pod("g", "1")
    other["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    cap = auto_capacity([gpu, node("a", "4", "8Gi", "110")], [other], "vk", 1.0)
    assert cap["example.com/gpu"] == "2"
    # A fraction of a GPU is no GPU: extended resources are whole numbers.
    assert auto_capacity([gpu], [], "vk", 0.5)["example.com/gpu"] == "1"
