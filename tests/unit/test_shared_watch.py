"""One remote watch per collection, read through labelled views (ak/kube/shared.py)."""

from __future__ import annotations

from typing import Any

from ak.core.labels import (
    LABEL_MANAGED_BY,
    LABEL_NODE,
    LABEL_POD_IDENTITY,
    LABEL_REPLICA,
    MANAGED_BY_VALUE,
    POD_IDENTITY_VALUE,
    REPLICA_VALUE,
)
from ak.core.local_apiserver import Endpoint
from ak.core.namespaces import Template, quota_object, spec_differs
from ak.core.serviceaccount import without_values
from ak.deps.controller import DependencyController
from ak.kube.registry import Informers
from ak.tokens.controller import TokenController, TokenSettings
from tests.unit.fixtures import offline_client

Obj = dict[str, Any]


def secret(name: str, labels: dict[str, str], rv: str = "1") -> Obj:
    return {
        "kind": "Secret",
        "metadata": {"namespace": "r", "name": name, "labels": labels, "resourceVersion": rv},
        "data": {"token": "c2VjcmV0"},
    }


async def test_views_see_only_their_labels_and_the_transform_only_theirs() -> None:
    client = offline_client("remote")
    try:
        informers = Informers()
        watch = informers.shared(client, "/api/v1/secrets", "n=x", "remote secrets")
        assert informers.shared(client, "/api/v1/secrets", "n=x", "again") is watch
        # Another AK's registry (another node in one process) has its own.
        assert Informers().shared(client, "/api/v1/secrets", "n=x", "remote secrets") is not watch
        seen: dict[str, list[tuple[Obj | None, Obj | None]]] = {"id": [], "copy": []}
        ids = watch.view(
            {"n": "x", "id": "1"},
            lambda o, n: seen["id"].append((o, n)),
            transform=without_values,
        )
        copies = watch.view({"n": "x", "copy": "1"}, lambda o, n: seen["copy"].append((o, n)))
        apply = watch.informer._apply
        apply({"type": "ADDED", "object": secret("a", {"n": "x", "id": "1"})})
        apply({"type": "ADDED", "object": secret("b", {"n": "x", "copy": "1"})})
        assert ids.get("r", "a") is not None and ids.get("r", "b") is None
        assert copies.get("r", "b") is not None and copies.get("r", "a") is None
        assert ids.get("r", "a")["data"] == {"token": ""}  # type: ignore[index]
        assert copies.get("r", "b")["data"] == {"token": "c2VjcmV0"}  # type: ignore[index]
        assert (ids.size(), copies.size()) == (1, 1)
        assert [o["metadata"]["name"] for o in copies.values()] == ["b"]
        # A label change out of a view is a deletion for that view.
        apply({"type": "MODIFIED", "object": secret("b", {"n": "x"}, rv="2")})
        assert seen["copy"][-1][1] is None and copies.size() == 0
        assert len(seen["id"]) == 1
    finally:
        await client.aclose()


async def test_identity_secrets_and_secret_copies_share_one_watch() -> None:
    remote, local = offline_client("remote"), offline_client("local")
    try:
        informers = Informers()
        deps = DependencyController(local, remote, "vk", "vk", informers=informers)
        tokens = TokenController(
            local,
            remote,
            TokenSettings("vk", "vk", Endpoint("10.0.0.1", 443)),
            informers=informers,
            twin=lambda key: None,
        )
        assert tokens.identities.shared is deps.copies["Secret"].shared
        assert tokens.root_ca.replicas.shared is deps.copies["ConfigMap"].shared
        assert tokens.identities.shared.informer.selectors == {"labelSelector": f"{LABEL_NODE}=vk"}
        assert deps.copies["Secret"].labels == {LABEL_NODE: "vk", LABEL_REPLICA: REPLICA_VALUE}
        assert tokens.identities.labels[LABEL_POD_IDENTITY] == POD_IDENTITY_VALUE
    finally:
        await remote.aclose()
        await local.aclose()


def test_quotas_carry_the_node_label_and_old_ones_are_rewritten() -> None:
    q = quota_object("r", Template(quota={"pods": "5"}), "vk")
    assert q is not None and q["metadata"]["labels"][LABEL_NODE] == "vk"
    old = {**q, "metadata": {"labels": {LABEL_MANAGED_BY: MANAGED_BY_VALUE}}}  # an older AK's
    assert spec_differs(q, old)
    assert not spec_differs(q, q)
