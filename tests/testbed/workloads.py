"""Workload manifests the testbed's benchmarks and tests share."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def statefulset(
    name: str, replicas: int, pod_spec: Obj, claims: dict[str, Obj], **spec: Any
) -> Obj:
    """StatefulSet ``name`` of pods labelled ``app=<name>``, with a
    volumeClaimTemplate per entry of ``claims`` (volume name -> claim spec)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
            "volumeClaimTemplates": [
                {"metadata": {"name": n}, "spec": c} for n, c in claims.items()
            ],
            **spec,
        },
    }
