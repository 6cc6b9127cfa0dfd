"""HTTP/1.1 on one accepted connection, with h11: requests in, responses out.

Keep-alive request cycles, fixed and chunked (streamed, flushed per write)
responses, and hand-over of the raw transport after a ``101 Switching
Protocols`` for SPDY and WebSocket upgrades.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import h11
import trio

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
IDLE_TIMEOUT = 120  # between requests on a kept-alive connection
HEAD_TIMEOUT = 30  # from the first byte of a request to its end


class ConnectionDone(Exception):
    """The client went away or broke HTTP; stop serving this connection."""


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    http_version: str
    body: bytes = b""
    user: Any = None  # set by the server after authentication
    meta: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of a header, comma-separated lists split."""
        return [
            part.strip()
            for n, v in self.headers
            if n == name
            for part in v.split(",")
            if part.strip()
        ]

    @property
    def upgrade(self) -> str | None:
        """The protocol asked for by ``Connection: Upgrade`` + ``Upgrade: X``, lowercased."""
        if "upgrade" not in [c.lower() for c in self.header_values("connection")]:
            return None
        value = self.header("upgrade")
        return value.strip().lower() if value else None


def status_body(code: int, message: str, reason: str = "") -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    ).encode()


class HTTPConnection:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.taken_over = False
        self.status: int | None = None  # of the last response, for the access log

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            raise ConnectionDone("connection lost") from e
        self.h11.receive_data(bytes(data))

    async def next_request(self) -> Request | None:
        """The next request with its (small) body; None when the client is done."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        request: h11.Request | None = None
        body = bytearray()
        timeout = IDLE_TIMEOUT
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                await self._refuse(e.error_status_hint, str(e))
                return None
            if event is h11.NEED_DATA:
                with trio.move_on_after(timeout) as scope:
                    await self._receive()
                if scope.cancelled_caught:
                    return None
                continue
            if isinstance(event, h11.Request):
                request = event
                timeout = HEAD_TIMEOUT
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    await self._refuse(413, "request body too large")
                    return None
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                if request is None:
                    return None
                return Request(
                    method=request.method.decode("ascii", "replace"),
                    target=request.target.decode("ascii", "replace"),
                    headers=[
                        (n.decode("latin-1").lower(), v.decode("latin-1"))
                        for n, v in request.headers
                    ],
                    http_version=request.http_version.decode(),
                    body=bytes(body),
                )
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _refuse(self, code: int, message: str) -> None:
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with suppress(ConnectionDone):
                await self.respond(code, status_body(code, message), close=True)

    async def _send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                raise ConnectionDone("connection lost while writing") from e

    async def respond(
        self,
        code: int,
        body: bytes,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
        close: bool = False,
    ) -> None:
        self.status = code
        hdrs = [("content-type", content_type), ("content-length", str(len(body)))]
        hdrs += headers or []
        if close:
            hdrs.append(("connection", "close"))
        await self._send(h11.Response(status_code=code, headers=hdrs))
        if body:
            await self._send(h11.Data(data=body))
        await self._send(h11.EndOfMessage())

    async def respond_error(
        self,
        code: int,
        message: str,
        reason: str = "",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        await self.respond(code, status_body(code, message, reason), headers=headers)

    @asynccontextmanager
    async def streaming(
        self, code: int = 200, content_type: str = "text/plain"
    ) -> AsyncIterator[StreamingResponse]:
        """A chunked response; the body ends when the block exits. If the client
        disconnects meanwhile, the block is cancelled (and ``client_gone`` set)."""
        self.status = code
        await self._send(
            h11.Response(
                status_code=code,
                headers=[("content-type", content_type), ("transfer-encoding", "chunked")],
            )
        )
        response = StreamingResponse(self)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_client, nursery.cancel_scope, response)
            try:
                yield response
            finally:
                nursery.cancel_scope.cancel()
        if response.client_gone:
            raise ConnectionDone("client went away during a streamed response")
        await self._send(h11.EndOfMessage())

    async def _watch_client(self, scope: trio.CancelScope, response: StreamingResponse) -> None:
        """While streaming, the only thing the client may send is its goodbye
        (or one pipelined request head, kept for the next cycle: past MAX_HEAD
        the client is treated as gone rather than buffered)."""
        kept = 0
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            kept += len(data)
            if not data or kept > MAX_HEAD:
                response.client_gone = True
                scope.cancel()
                return
            self.h11.receive_data(bytes(data))  # a pipelined request waits for the next cycle

    async def switch_protocols(
        self, headers: list[tuple[str, str]]
    ) -> tuple[trio.abc.Stream, bytes]:
        """Answer 101 and give the raw transport plus any bytes already past the head."""
        self.status = 101
        await self._send(h11.InformationalResponse(status_code=101, headers=headers))
        self.taken_over = True
        trailing, _ = self.h11.trailing_data
        return self.stream, bytes(trailing)

    @property
    def reusable(self) -> bool:
        return (
            not self.taken_over
            and self.h11.our_state is h11.DONE
            and self.h11.their_state is h11.DONE
        )


class StreamingResponse:
    def __init__(self, conn: HTTPConnection) -> None:
        self.conn = conn
        self.client_gone = False

    async def send(self, data: bytes) -> None:
        if data:
            await self.conn._send(h11.Data(data=data))
