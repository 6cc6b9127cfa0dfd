from datetime import datetime
from typing import Any

from ak.core.event_mirror import (
    mirror_patch,
    mirrored_event,
    mirrored_event_name,
    worth_mirroring,
)

LOCAL: dict[str, Any] = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "local-uid"}}
REMOTE: dict[str, Any] = {
    "metadata": {"name": "web-1.17a", "namespace": "n-abc", "uid": "remote-uid-1"},
    "involvedObject": {
        "kind": "Pod",
        "name": "web-1",
        "namespace": "n-abc",
        "fieldPath": "spec.containers{c}",
    },
    "reason": "BackOff",
    "message": 'Back-off pulling image "x"',
    "type": "Warning",
    "count": 7,
    "firstTimestamp": "2026-11-22T02:00:00Z",
    "lastTimestamp": "2026-11-22T02:05:00Z",
    "source": {"component": "kubelet", "host": "remote-node-3"},
}


def test_mirrored_event_points_at_the_local_pod_and_keeps_the_story() -> None:
    ev = mirrored_event(REMOTE, LOCAL, "vk")
    assert ev["metadata"]["namespace"] == "shop"
    assert ev["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-1",
        "namespace": "shop",
        "uid": "local-uid",
        "fieldPath": "spec.containers{c}",
    }
    assert (ev["reason"], ev["type"], ev["count"]) == ("BackOff", "Warning", 7)
    assert ev["message"] == 'Back-off pulling image "x" (on the remote cluster)'
    assert ev["source"] == {"component": "kubelet (remote)", "host": "vk"}
    assert ev["lastTimestamp"] == "2026-11-22T02:05:00Z"


def test_name_is_stable_per_remote_event_and_distinct_across_events() -> None:
    a = mirrored_event(REMOTE, LOCAL, "vk")["metadata"]["name"]
    again = mirrored_event({**REMOTE, "count": 8}, LOCAL, "vk")["metadata"]["name"]
    other = mirrored_event(
        {**REMOTE, "metadata": {**REMOTE["metadata"], "uid": "remote-uid-2"}}, LOCAL, "vk"
    )
    assert a == again != other["metadata"]["name"]
    assert a.startswith("web-1.ak")


def test_long_pod_names_keep_a_valid_event_name() -> None:
    name = mirrored_event_name("p" * 253, "uid")
    assert len(name) <= 253 and name.endswith(mirrored_event_name("p", "uid").split(".", 1)[1])


def test_events_series_and_event_time_are_understood() -> None:
    new_style = {
        "metadata": {"name": "e", "uid": "u", "creationTimestamp": "2026-11-22T01:00:00Z"},
        "involvedObject": {"kind": "Pod", "name": "web-1"},
        "reason": "Pulled",
        "eventTime": "2026-11-22T01:00:01.000000Z",
        "series": {"count": 3},
        "reportingComponent": "kubelet",
    }
    ev = mirrored_event(new_style, LOCAL, "vk")
    assert ev["count"] == 3 and ev["type"] == "Normal"
    assert ev["firstTimestamp"] == "2026-11-22T01:00:01.000000Z"
    assert mirror_patch(ev) == {
        "count": 3,
        "lastTimestamp": ev["lastTimestamp"],
        "message": ev["message"],
    }


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_after_a_restart_only_news_is_mirrored_again() -> None:
    started = _at("2026-11-22T02:10:00Z")
    last = REMOTE["lastTimestamp"]  # 02:05:00
    # First start (no Lease yet): anything younger than MAX_AGE is news.
    assert worth_mirroring(REMOTE, started, None)
    # The previous AK heartbeat at 02:08: it mirrored this Event itself.
    assert not worth_mirroring(REMOTE, started, _at("2026-11-22T02:08:00Z"))
    # It died before the Event (last heartbeat 02:04): written now.
    assert worth_mirroring(REMOTE, started, _at("2026-11-22T02:04:00Z"))
    # Within the slack of its last heartbeat: may not have been written; again.
    assert worth_mirroring(REMOTE, started, _at("2026-11-22T02:05:05Z"))
    # Older than MAX_AGE at start-up: history, whatever the Lease says.
    assert not worth_mirroring(REMOTE, _at("2026-11-22T02:15:01Z"), None)
    assert last == "2026-11-22T02:05:00Z"


def test_events_without_a_readable_time_are_mirrored() -> None:
    started = _at("2026-11-22T02:10:00Z")
    beat = _at("2026-11-22T02:09:00Z")
    assert worth_mirroring({**REMOTE, "lastTimestamp": None}, started, beat)
    assert worth_mirroring({**REMOTE, "lastTimestamp": "yesterday"}, started, beat)
    series = {**REMOTE, "lastTimestamp": None, "eventTime": "2026-11-22T02:09:30.000000Z"}
    assert worth_mirroring(series, started, beat)


def test_the_remote_schedulers_assignment_is_not_mirrored() -> None:
    started = _at("2026-11-22T02:06:00Z")
    scheduled = {**REMOTE, "reason": "Scheduled", "type": "Normal"}
    assert not worth_mirroring(scheduled, started, None)
    assert worth_mirroring({**REMOTE, "reason": "Pulled"}, started, None)
