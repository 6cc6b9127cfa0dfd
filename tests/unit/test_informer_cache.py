"""The informer cache keeps objects deflated against the first one it saw (ak/kube/informer.py)."""

from __future__ import annotations

import copy

from ak.core import codec
from ak.core.types import Obj
from ak.kube.informer import Informer, Packing
from tests.unit.fixtures import deployment_pod, offline_client


def _pod(i: int) -> Obj:
    pod = copy.deepcopy(deployment_pod())
    pod["metadata"]["name"] = f"web-{i}"
    pod["metadata"]["uid"] = f"00000000-0000-0000-0000-{i:012d}"
    pod["metadata"]["resourceVersion"] = str(100 + i)
    pod["metadata"].pop("managedFields", None)  # never cached
    return pod


def test_packed_objects_come_back_exactly_and_small() -> None:
    packing = Packing()
    pods = [_pod(i) for i in range(20)]
    packed = [packing.pack(p) for p in pods]
    assert [packing.unpack(p) for p in packed] == pods
    assert [rv for rv, _ in packed] == [p["metadata"]["resourceVersion"] for p in pods]
    # The rest resemble the first: a tenth of their JSON, or far less.
    for pod, (_, data) in zip(pods[1:], packed[1:], strict=True):
        assert len(data) * 10 < len(codec.dumps(pod)), (len(data), len(codec.dumps(pod)))


def test_an_unlike_object_still_round_trips() -> None:
    packing = Packing()
    packing.pack(_pod(0))
    other: Obj = {"kind": "Secret", "metadata": {"name": "s", "resourceVersion": "1"}, "data": {}}
    assert packing.unpack(packing.pack(other)) == other


async def test_the_cache_hands_out_fresh_copies() -> None:
    client = offline_client("local")
    try:
        seen: list[tuple[Obj | None, Obj | None]] = []
        informer = Informer(client, "/api/v1/pods", handler=lambda o, n: seen.append((o, n)))
        informer._apply({"type": "ADDED", "object": _pod(1)})
        informer._apply({"type": "ADDED", "object": _pod(2)})
        ns = _pod(2)["metadata"]["namespace"]
        got = informer.get(ns, "web-2")
        assert got == _pod(2)
        assert got is not None
        got["metadata"]["name"] = "changed"
        assert informer.get(ns, "web-2") == _pod(2)
        changed = _pod(2)
        changed["metadata"]["resourceVersion"] = "999"
        informer._apply({"type": "MODIFIED", "object": changed})
        assert seen[-1] == (_pod(2), changed)
    finally:
        await client.aclose()
