from datetime import UTC, datetime, timedelta

from ak.core.leader import claimed, last_heartbeat, lease_state

NOW = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)


def lease(holder: str, renewed: datetime, duration: int = 10) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": "vk", "namespace": "kube-node-lease", "resourceVersion": "42"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def test_states() -> None:
    assert lease_state(None, "vk/a", NOW) == "free"
    assert lease_state(lease("vk/a", NOW), "vk/a", NOW) == "mine"
    assert lease_state(lease("vk/b", NOW - timedelta(seconds=5)), "vk/a", NOW) == "held"
    assert lease_state(lease("vk/b", NOW - timedelta(seconds=11)), "vk/a", NOW) == "free"
    # A kubelet-style lease (holder = node name) from an AK without HA: taken over once stale.
    assert lease_state(lease("vk", NOW - timedelta(seconds=41), 40), "vk/a", NOW) == "free"


def test_claim_keeps_resource_version_and_counts_transitions() -> None:
    body = claimed(
        lease("vk/b", NOW - timedelta(seconds=20)),
        "vk/a",
        node_name="vk",
        node_uid="uid-1",
        duration=10,
        now=NOW,
    )
    assert body["metadata"]["resourceVersion"] == "42"
    assert body["spec"]["holderIdentity"] == "vk/a"
    assert body["spec"]["leaseTransitions"] == 1
    assert body["spec"]["renewTime"] == "2026-11-22T03:00:00.000000Z"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    renewed = claimed(
        body, "vk/a", node_name="vk", node_uid="uid-1", duration=10, now=NOW + timedelta(seconds=2)
    )
    assert renewed["spec"]["leaseTransitions"] == 1
    assert renewed["spec"]["renewTime"] == "2026-11-22T03:00:02.000000Z"


def test_claim_of_a_new_lease_without_node_has_no_owner() -> None:
    body = claimed(None, "vk/a", node_name="vk", node_uid="", duration=10, now=NOW)
    assert "ownerReferences" not in body["metadata"]
    assert body["spec"]["holderIdentity"] == "vk/a"
    assert body["spec"]["acquireTime"] == "2026-11-22T03:00:00.000000Z"


def test_last_heartbeat_is_the_renew_time() -> None:
    assert last_heartbeat(lease("vk", NOW - timedelta(seconds=3))) == NOW - timedelta(seconds=3)
    assert last_heartbeat(None) is None
    assert last_heartbeat({"spec": {"acquireTime": "2026-11-22T03:00:00.000000Z"}}) == NOW
    assert last_heartbeat({"spec": {"renewTime": "not a time"}}) is None
