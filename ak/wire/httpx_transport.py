"""httpx's client API over AK's HTTP/1.1 engine (``ak.wire.http1``).

httpx is the project's client API (the design card's): where a call is not on
the per-pod hot path it can keep httpx's requests, responses and error tree
while every byte goes through the engine's one pool, TLS settings, timeouts
and caps. ``KubeClient.stream`` (watches, logs) is built on it. Plain API
requests call the engine directly: they are most of AK's CPU, and httpx's
request and response objects cost more per request than the engine itself
(``python -m tests.testbed.bench_request``, docs/benchmarks.md).

The engine serves one server: a request's scheme and host are the engine's,
only its path and query are used (a base URL's path is the engine's server
path, which the engine adds itself). The body handed to httpx is decoded
already, so Content-Encoding and Content-Length are left out of its headers
when the engine undid an encoding. Timeouts: httpx's ``read`` bounds each
receive of the head and body; connect and caps are the engine's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx

from ak.wire.http1 import (
    ConnectFailed,
    Engine,
    ProtocolError,
    StreamResponse,
    TimedOut,
    TransportError,
)


def httpx_error(e: TransportError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception a caller of httpx expects for an engine failure."""
    kind: type[httpx.TransportError]
    if isinstance(e, ConnectFailed):
        kind = httpx.ConnectError
    elif isinstance(e, TimedOut):
        kind = httpx.ConnectTimeout if "connect" in str(e) else httpx.ReadTimeout
    elif isinstance(e, ProtocolError):
        kind = httpx.RemoteProtocolError
    else:
        kind = httpx.ReadError
    return kind(str(e), request=request)


class _Body(httpx.AsyncByteStream):
    def __init__(self, resp: StreamResponse, stack: AsyncExitStack, request: httpx.Request) -> None:
        self._resp = resp
        self._stack = stack
        self._request = request

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._resp.__anext__()
        except TransportError as e:
            raise httpx_error(e, self._request) from e

    async def aclose(self) -> None:
        await self._stack.aclose()


class EngineTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose requests all go through ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding")
        }
        body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        base = self.engine.base_path
        if base and target.startswith(base + "/"):
            target = target[len(base) :]  # the engine puts its server's path back
        stack = AsyncExitStack()
        try:
            resp = await stack.enter_async_context(
                self.engine.stream(
                    request.method,
                    target,
                    headers,
                    read_timeout=timeouts.get("read"),
                    body=body if body or request.method in ("POST", "PUT", "PATCH") else None,
                )
            )
        except TransportError as e:
            await stack.aclose()
            raise httpx_error(e, request) from e
        except BaseException:
            await stack.aclose()
            raise
        out = resp.headers
        if out.get("content-encoding", "identity").lower() != "identity":
            out = {k: v for k, v in out.items() if k not in ("content-encoding", "content-length")}
        return httpx.Response(
            resp.status_code,
            headers=list(out.items()),
            stream=_Body(resp, stack, request),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    async def aclose(self) -> None:
        await self.engine.aclose()
