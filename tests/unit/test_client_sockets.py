"""A request or watch cancelled during its TLS handshake closes its socket at once.

httpcore's trio backend closes the socket of a failed handshake, but not of a
cancelled one (trio.Cancelled is a BaseException): the socket stayed open until
the cyclic GC found it, which CI saw as a ResourceWarning in a later test. A
controller cancels watches all the time (dependencies no longer used, shutdown).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from ak.kube.client import KubeClient, path
from tests.unit.fixtures import offline_client


@asynccontextmanager
async def _silent_server() -> AsyncIterator[tuple[int, trio.MemoryReceiveChannel[bytes]]]:
    """Accepts TCP connections and never answers: every TLS handshake hangs.

    Reports, per connection, what it read once the client side went away."""
    send, receive = trio.open_memory_channel[bytes](10)

    async def serve(stream: trio.SocketStream) -> None:
        seen = b""
        async with stream:
            while chunk := await stream.receive_some(65536):
                seen += chunk
        await send.send(seen)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield port, receive
        nursery.cancel_scope.cancel()


async def _get(c: KubeClient) -> None:
    await c.get(path("pods"))


async def _watch(c: KubeClient) -> None:
    async with c.stream(path("pods"), {"watch": "1"}):
        pass


@pytest.mark.parametrize("call", [_get, _watch], ids=["request", "watch"])
async def test_cancelled_handshake_closes_the_socket(
    call: Callable[[KubeClient], Awaitable[None]],
) -> None:
    # Without the cyclic GC an unclosed socket stays open: the server sees no EOF.
    gc.disable()
    try:
        async with _silent_server() as (port, closed):
            client = offline_client("test", f"https://127.0.0.1:{port}")
            try:
                with trio.move_on_after(0.5) as scope:
                    await call(client)
                assert scope.cancelled_caught, "the handshake should have hung"
                with trio.fail_after(5):
                    hello = await closed.receive()
                # It was a TLS ClientHello, cut off: the socket was closed by AK, not the GC.
                assert hello[:1] == b"\x16"
            finally:
                await client.aclose()
    finally:
        gc.enable()
        gc.collect()  # anything left unclosed warns here, inside this test
