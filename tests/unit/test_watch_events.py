"""Watch responses split into events however the bytes arrive."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import httpx
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from ak.kube.informer import watch_events


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def _events(chunks: list[bytes]) -> list[object]:
    async def collect() -> list[object]:
        resp = httpx.Response(200, stream=_Chunks(chunks))
        return [e async for e in watch_events(resp)]

    return trio.run(collect)


EVENTS = [
    {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "1"}}},
    {"type": "MODIFIED", "object": {"metadata": {"name": "ü", "labels": {"x": "y\nz"}}}},
    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
]
WIRE = b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(WIRE)]
    chunks = [WIRE[a:b] for a, b in itertools.pairwise(points)]
    assert _events(chunks) == EVENTS


def test_blank_lines_are_skipped() -> None:
    assert _events([b"\n", WIRE[: len(WIRE) // 2], WIRE[len(WIRE) // 2 :], b"\r\n"]) == EVENTS


def test_a_fragment_cut_off_at_the_end_is_not_an_event() -> None:
    assert _events([WIRE, b'{"type":"ADDED","obj']) == EVENTS
