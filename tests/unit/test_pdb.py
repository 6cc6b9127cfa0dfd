"""Local PDB -> the absolute remote copy (ak/core/pdb.py)."""

import pytest

from ak.core.labels import LABEL_NAMESPACE, LABEL_NODE, LABEL_REPLICA
from ak.core.pdb import desired_healthy, pdb_needs_update, scaled, selects, to_remote_pdb
from ak.core.types import Obj


def budget(spec: Obj, expected: int | None = None) -> Obj:
    obj: Obj = {
        "metadata": {"name": "web", "namespace": "team", "uid": "u1", "labels": {"a": "b"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }
    if expected is not None:
        obj["status"] = {"expectedPods": expected}
    return obj


@pytest.mark.parametrize(
    ("value", "total", "want"),
    [
        (2, 10, 2),
        ("50%", 3, 2),
        ("34%", 3, 2),
        ("33%", 3, 1),
        ("1%", 7, 1),
        ("0%", 5, 0),
        ("100%", 4, 4),
    ],
)
def test_percentages_round_up_as_the_disruption_controller(
    value: int | str, total: int, want: int
) -> None:
    assert scaled(value, total) == want


@pytest.mark.parametrize(
    ("spec", "expected", "want"),
    [
        ({"minAvailable": 2}, 3, 2),
        ({"minAvailable": "50%"}, 3, 2),  # ceil(1.5)
        ({"minAvailable": "66%"}, 3, 2),  # ceil(1.98)
        ({"maxUnavailable": 1}, 3, 2),
        ({"maxUnavailable": "50%"}, 3, 1),  # 3 - ceil(1.5): unavailable rounds up
        ({"maxUnavailable": "10%"}, 5, 4),  # 5 - ceil(0.5)
        ({"maxUnavailable": 5}, 3, 0),  # never below zero
        ({}, 3, 0),
    ],
)
def test_desired_healthy(spec: Obj, expected: int, want: int) -> None:
    assert desired_healthy(spec, expected) == want


def test_copy_is_an_absolute_min_available_from_the_status() -> None:
    copy = to_remote_pdb(
        budget({"maxUnavailable": "34%", "unhealthyPodEvictionPolicy": "AlwaysAllow"}, 6),
        node_label="ak",
        remote_namespace="ak-team",
        pods_here=6,
    )
    assert copy["spec"] == {
        "minAvailable": 3,  # 6 - ceil(2.04)
        "selector": {"matchLabels": {"app": "web"}},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    meta = copy["metadata"]
    assert meta["namespace"] == "ak-team" and meta["name"] == "web"
    assert meta["labels"]["a"] == "b"
    assert meta["labels"][LABEL_NODE] == "ak" and meta["labels"][LABEL_NAMESPACE] == "team"
    assert LABEL_REPLICA in meta["labels"]
    assert "u1" in meta["annotations"].values()


def test_scaling_changes_the_copy_and_a_missing_status_never_loosens_it() -> None:
    def figure(expected: int | None, here: int) -> int:
        c = to_remote_pdb(
            budget({"minAvailable": "50%"}, expected),
            node_label="ak",
            remote_namespace="r",
            pods_here=here,
        )
        return int(c["spec"]["minAvailable"])

    assert figure(4, 4) == 2
    assert figure(10, 4) == 5  # scaled up: the status leads
    assert figure(None, 3) == 2  # no status yet: the node's own pods count


def test_needs_update_only_on_what_ak_sets() -> None:
    a = to_remote_pdb(
        budget({"minAvailable": 2}), node_label="ak", remote_namespace="r", pods_here=3
    )
    current = {
        **a,
        "metadata": {**a["metadata"], "resourceVersion": "7"},
        "status": {"disruptionsAllowed": 1},
    }
    assert not pdb_needs_update(a, current)
    b = to_remote_pdb(
        budget({"minAvailable": 3}), node_label="ak", remote_namespace="r", pods_here=3
    )
    assert pdb_needs_update(b, current)


def test_selects_as_policy_v1() -> None:
    pod = {"metadata": {"labels": {"app": "web"}}}
    assert selects(budget({}), pod)
    assert not selects(budget({}), {"metadata": {"labels": {"app": "db"}}})
    assert selects({"spec": {"selector": {}}}, pod)  # empty: every pod
    assert not selects({"spec": {}}, pod)  # none: no pod
