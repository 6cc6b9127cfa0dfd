"""/pods, /runningpods/, /stats/summary and /metrics/resource from the caches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ak.core.labels import ANNOTATION_LOCAL_UID, LABEL_NAMESPACE
from ak.core.names import remote_namespace
from ak.kubelet import podviews

NODE = "vk-1"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STATS_TIME = datetime(2026, 11, 22, 11, 59, 59, tzinfo=UTC).timestamp()


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


def _metrics(exposition: bytes) -> dict[str, Metric]:
    text = exposition.decode()
    assert text.endswith("\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # The parser drops a counter's "_total" from the family name; the kubelet's
    # names keep it, on the HELP and TYPE lines as on the samples.
    return {f.name + ("_total" if f.type == "counter" else ""): f for f in families.values()}


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
    summary, _ = podviews.summary(
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
    families = _metrics(podviews.resource_metrics(summary, True))
    assert families["pod_cpu_usage_seconds_total"].samples == [
        Sample("pod_cpu_usage_seconds_total", {"namespace": "ns", "pod": "a"}, 2.0, STATS_TIME)
    ]
    # The container's stats have no time: when its values held is unknown, so
    # they are left out rather than stamped with the scrape's time.
    assert "container_memory_working_set_bytes" not in families
    assert "container_cpu_usage_seconds_total" not in families
    assert families["container_start_time_seconds"].samples == [
        Sample(
            "container_start_time_seconds",
            {"container": "c", "namespace": "ns", "pod": name},
            datetime(2026, 11, 22, 11, 0, tzinfo=UTC).timestamp(),
            None,  # the kubelet gives a start time no timestamp
        )
        for name in ("a", "b")
    ]
    # The node's samples carry the time its pods' values were measured, not
    # the scrape's.
    assert families["node_memory_working_set_bytes"].samples == [
        Sample("node_memory_working_set_bytes", {}, 100.0, STATS_TIME)
    ]
    assert families["node_cpu_usage_seconds_total"].samples == [
        Sample("node_cpu_usage_seconds_total", {}, 2.0, STATS_TIME)
    ]
    assert families["scrape_error"].samples == [Sample("scrape_error", {}, 1.0, None)]


def test_resource_metrics_are_the_kubelets() -> None:
    """Names, types, HELP text and labels of the kubelet's /metrics/resource."""
    stats = {"usageCoreNanoSeconds": 1_500_000_000, "time": "2026-11-22T11:59:59Z"}
    memory = {"workingSetBytes": 4096, "time": "2026-11-22T11:59:59Z"}
    summary = {
        "node": {"cpu": stats, "memory": memory},
        "pods": [
            {
                "podRef": {"name": "p", "namespace": "ns", "uid": "u"},
                "cpu": stats,
                "memory": memory,
                "containers": [{"name": "c", "cpu": stats, "memory": memory}],
            }
        ],
    }
    text = podviews.resource_metrics(summary, False).decode()
    families = _metrics(text.encode())
    container, pod = ["container", "namespace", "pod"], ["namespace", "pod"]
    want = {
        "container_cpu_usage_seconds_total": (
            "counter",
            "Cumulative cpu time consumed by the container in core-seconds",
            container,
        ),
        "container_memory_working_set_bytes": (
            "gauge",
            "Current working set of the container in bytes",
            container,
        ),
        "node_cpu_usage_seconds_total": (
            "counter",
            "Cumulative cpu time consumed by the node in core-seconds",
            [],
        ),
        "node_memory_working_set_bytes": ("gauge", "Current working set of the node in bytes", []),
        "pod_cpu_usage_seconds_total": (
            "counter",
            "Cumulative cpu time consumed by the pod in core-seconds",
            pod,
        ),
        "pod_memory_working_set_bytes": ("gauge", "Current working set of the pod in bytes", pod),
        "scrape_error": (
            "gauge",
            "1 if there was an error while getting container metrics, 0 otherwise",
            [],
        ),
    }
    assert sorted(families) == sorted(want)
    for name, (kind, help_text, labels) in want.items():
        family = families[name]
        assert (family.type, family.documentation) == (kind, f"[STABLE] {help_text}")
        assert f"# HELP {name} [STABLE] {help_text}\n# TYPE {name} {kind}\n" in text
        (sample,) = family.samples
        assert sample.name == name
        assert sorted(sample.labels) == labels
        if name != "scrape_error":
            assert sample.timestamp == STATS_TIME
    assert families["container_cpu_usage_seconds_total"].samples[0].value == 1.5
    assert families["pod_memory_working_set_bytes"].samples[0].value == 4096
    # Nothing of AK's own process (its metrics port has those).
    assert "process_" not in text and "python_" not in text and "ak_" not in text


def test_resource_metrics_label_values_are_escaped() -> None:
    summary = {
        "node": {},
        "pods": [
            {
                "podRef": {"name": "p", "namespace": "ns", "uid": "u"},
                "containers": [
                    {
                        "name": 'we"ird\\\n',
                        "memory": {"workingSetBytes": 1, "time": "2026-11-22T11:59:59Z"},
                    }
                ],
            }
        ],
    }
    families = _metrics(podviews.resource_metrics(summary, False))
    (sample,) = families["container_memory_working_set_bytes"].samples
    assert sample.labels["container"] == 'we"ird\\\n'


def test_empty_node_metrics() -> None:
    summary, _ = podviews.summary(NODE, NOW, NOW, [], {})
    assert summary["pods"] == []
    exposition = podviews.resource_metrics(summary, False)
    # Families without samples are left out, as the kubelet leaves them out.
    assert list(_metrics(exposition)) == ["scrape_error"]
    assert _metrics(exposition)["scrape_error"].samples == [Sample("scrape_error", {}, 0.0, None)]


def test_logs_of_a_container_that_never_ran_say_why() -> None:
    terminated = {"exitCode": 128, "reason": "StartError", "message": "remote cluster refused it"}
    local = {
        "metadata": {"name": "app", "namespace": "ns"},
        "status": {
            "containerStatuses": [
                {"name": "c", "containerID": "containerd://1", "state": {"running": {}}}
            ],
            "ephemeralContainerStatuses": [
                {"name": "dbg", "state": {"terminated": terminated}},
                {"name": "ran", "state": {"terminated": {**terminated, "containerID": "cri://2"}}},
            ],
        },
    }
    assert podviews.never_ran(local, "dbg") == (
        'container "dbg" in pod "app" is terminated: StartError: remote cluster refused it'
    )
    # Those that ran, and those it knows nothing of, are the remote's to answer.
    for name in ("c", "ran", "other"):
        assert podviews.never_ran(local, name) is None
