"""The resource label of AK's request metric, read off REST paths."""

import pytest

from ak.kube.client import path, resource_of


@pytest.mark.parametrize(
    ("request_path", "resource"),
    [
        (path("pods", namespace="a", name="b", subresource="status"), "pods/status"),
        (path("pods", namespace="a", name="b"), "pods"),
        (path("pods"), "pods"),
        (
            path("serviceaccounts", namespace="a", name="default", subresource="token"),
            "serviceaccounts/token",
        ),
        (path("namespaces", name="a"), "namespaces"),
        (path("namespaces"), "namespaces"),
        (
            path(
                "leases",
                namespace="kube-node-lease",
                name="n",
                group_version="coordination.k8s.io/v1",
            ),
            "leases",
        ),
        (path("nodes", name="n", subresource="status"), "nodes/status"),
        ("/api/v1/namespaces/a/events?fieldSelector=x", "events"),
        (path("namespaces", name="a", subresource="finalize"), "namespaces/finalize"),
        ("/version", "other"),
        ("/readyz", "other"),
    ],
)
def test_resource_of(request_path: str, resource: str) -> None:
    assert resource_of(request_path) == resource
