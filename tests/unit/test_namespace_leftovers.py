"""A remote namespace whose pods are gone is not deleted while the garbage
collector is still deleting their identity Secrets: deleting it then kept it
Terminating for minutes, and the first pods of the next burst waited."""

from __future__ import annotations

from ak.core.names import remote_namespace
from ak.kube.registry import Informers
from ak.pods.remote import LEFTOVERS_RECHECK, PodSettings, RemoteCluster
from tests.unit.fixtures import offline_client

NODE = "vk"


async def test_an_unused_namespace_waits_for_its_leftovers() -> None:
    remote = offline_client("remote")
    held = {remote_namespace(NODE, "apps")}
    cluster = RemoteCluster(
        remote,
        PodSettings(node_name=NODE, node_label=NODE, extra_env=[]),
        informers=Informers(),
        leftovers=lambda rns: rns in held,
    )
    try:
        # No local or remote pods, but Secrets left: look again later, delete nothing.
        assert await cluster._sync_namespace("apps") == LEFTOVERS_RECHECK
        held.clear()
        # Empty now: the ordinary path (no namespace cached here: nothing to do).
        assert await cluster._sync_namespace("apps") is None
    finally:
        await remote.aclose()
