"""/pods, /runningpods/, /stats/summary and /metrics/resource from the caches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.kubelet import podviews

NODE = "vk-1"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def remote_pod(ns: str, name: str, running: bool = True, node: str = "kwok-0") -> dict[str, Any]:
    state = {"running": {"startedAt": "2026-11-22T11:00:00Z"}} if running else {"waiting": {}}
    return {
        "metadata": {
            "name": name,
            "namespace": remote_namespace(NODE, ns),
            "labels": {LABEL_NAMESPACE: ns},
            "annotations": {ANNOTATION_LOCAL_UID: f"uid-{name}"},
        },
        "spec": {"nodeName": node},
        "status": {
            "startTime": "2026-11-22T11:00:00Z",
            "containerStatuses": [{"name": "c", "image": "img", "state": state}],
        },
    }


def test_pod_list_is_sorted() -> None:
    pods = [
        {"metadata": {"namespace": "b", "name": "x"}},
        {"metadata": {"namespace": "a", "name": "y"}},
    ]
    listed = podviews.pod_list(pods)
    assert listed["kind"] == "PodList"
    assert [p["metadata"]["namespace"] for p in listed["items"]] == ["a", "b"]


def test_running_pods_use_local_names_and_skip_strangers() -> None:
    stranger = remote_pod("ns", "other")
    stranger["metadata"]["namespace"] = "someone-else"
    items = podviews.running_pods(
        NODE, [remote_pod("ns", "a"), remote_pod("ns", "b", running=False), stranger]
    )["items"]
    assert [
        (p["metadata"]["namespace"], p["metadata"]["name"], p["metadata"]["uid"]) for p in items
    ] == [("ns", "a", "uid-a")]
    assert items[0]["spec"]["containers"] == [{"name": "c", "image": "img"}]


def test_summary_renames_remote_stats_and_sums_the_node() -> None:
    pods = [remote_pod("ns", "a"), remote_pod("ns", "b", node="kwok-1")]
    remote_a = {
        "podRef": {"name": "a", "namespace": remote_namespace(NODE, "ns"), "uid": "remote-uid"},
        "cpu": {
            "time": "2026-11-22T11:59:59Z",
            "usageNanoCores": 5,
            "usageCoreNanoSeconds": 2_000_000_000,
        },
        "memory": {"time": "2026-11-22T11:59:59Z", "workingSetBytes": 100, "usageBytes": 120},
        "containers": [
            {
                "name": "c",
                "startTime": "2026-11-22T11:00:00Z",
                "cpu": {"usageCoreNanoSeconds": 1_000_000_000},
                "memory": {"workingSetBytes": 90},
            }
        ],
    }
    summary = podviews.summary(
        NODE, NOW, NOW, pods, {"kwok-0": {"pods": [remote_a]}, "kwok-1": None}
    )
    assert summary["node"]["nodeName"] == NODE
    assert summary["node"]["cpu"]["usageNanoCores"] == 5
    assert summary["node"]["memory"]["workingSetBytes"] == 100
    a, b = summary["pods"]
    assert a["podRef"] == {"name": "a", "namespace": "ns", "uid": "uid-a"}
    assert a["cpu"]["usageNanoCores"] == 5
    # no stats for b: an entry all the same, without usage
    assert b == {
        "podRef": {"name": "b", "namespace": "ns", "uid": "uid-b"},
        "containers": [{"name": "c", "startTime": "2026-11-22T11:00:00Z"}],
        "startTime": "2026-11-22T11:00:00Z",
    }
    text = podviews.resource_metrics(summary, True, NOW)
    assert 'pod_cpu_usage_seconds_total{namespace="ns",pod="a"} 2 ' in text
    assert 'container_memory_working_set_bytes{container="c",namespace="ns",pod="a"} 90 ' in text
    assert "node_memory_working_set_bytes 100 " in text
    assert "scrape_error 1" in text
    assert "# TYPE pod_cpu_usage_seconds_total counter" in text
    assert text.endswith("\n")


def test_empty_node_metrics() -> None:
    summary = podviews.summary(NODE, NOW, NOW, [], {})
    assert summary["pods"] == []
    assert podviews.resource_metrics(summary, False, NOW).splitlines()[-1] == "scrape_error 0"
