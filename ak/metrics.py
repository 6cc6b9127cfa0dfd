"""AK's Prometheus metrics (documented in docs/metrics.md).

One registry per process; the I/O shell updates these, the pure core never does.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from ak import __version__

# The *_created series double the output for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60)

API_REQUESTS = Counter(
    "ak_api_requests_total",
    "Requests to an API server, by cluster (local/remote), verb, resource and HTTP code "
    "(0 = no answer).",
    ["cluster", "verb", "resource", "code"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "ak_api_request_duration_seconds",
    "Latency of non-streaming API requests.",
    ["cluster", "verb"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
WATCH_RESTARTS = Counter(
    "ak_watch_restarts_total",
    "Watches that ended and were re-opened, by informer.",
    ["informer"],
    registry=REGISTRY,
)
RELISTS = Counter(
    "ak_relists_total",
    "Full LISTs (start-up, 410 Gone, errors), by informer.",
    ["informer"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "ak_workqueue_depth", "Keys waiting in a work queue.", ["queue"], registry=REGISTRY
)
SYNCS = Counter(
    "ak_sync_total",
    "Work-queue syncs, by queue and result (ok, retry: an expected race, tried again soon, "
    "error: an API error or a pod AK cannot run yet, bug: an unexpected exception in AK, "
    "logged with its traceback).",
    ["queue", "result"],
    registry=REGISTRY,
)
CREATE_LATENCY = Histogram(
    "ak_pod_create_latency_seconds",
    "From a local pod bound to the node being seen to its remote pod created.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
STATUS_LATENCY = Histogram(
    "ak_pod_status_latency_seconds",
    "From a remote pod change being seen to the local pod status written.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
REPLICATED = Gauge(
    "ak_replicated_objects",
    "Secrets, ConfigMaps, Services and NetworkPolicies copied to the remote cluster.",
    ["kind"],
    registry=REGISTRY,
)
TASK_RESTARTS = Counter(
    "ak_task_restarts_total",
    "Supervised tasks restarted after failing.",
    ["task"],
    registry=REGISTRY,
)
TOKENS_WRITTEN = Counter(
    "ak_tokens_written_total",
    "Pod identity Secrets written with fresh service-account tokens, by kind (new/refresh).",
    ["kind"],
    registry=REGISTRY,
)
EVENTS_MIRRORED = Counter(
    "ak_events_mirrored_total",
    "Remote pod Events mirrored onto local pods, by result (ok/dropped/error).",
    ["result"],
    registry=REGISTRY,
)
PROXIED = Counter(
    "ak_pod_proxy_connections_total",
    "Connections to pods' local addresses, by result: forwarded (a port-forward to the "
    "remote pod opened), refused (the remote API server would not open one), failed (of "
    "the forwarded, those the remote kubelet could not connect to the pod's port), denied (a "
    "NetworkPolicy of the pod's namespace does not admit the peer; AK enforces them there).",
    ["result"],
    registry=REGISTRY,
)
PODS = Gauge("ak_pods", "Pods in AK's caches, by cluster.", ["cluster"], registry=REGISTRY)
BUILD_INFO = Gauge(
    "ak_build_info",
    "Always 1; labels say which AK runs.",
    ["version", "python"],
    registry=REGISTRY,
)
BUILD_INFO.labels(__version__, platform.python_version()).set(1)
