"""WebSocket over a trio stream with wsproto, for both ends AK plays.

* Server: the HTTP layer has already parsed and authorized the upgrade
  request; ``accept`` writes the 101 through h11 and hands the frames to
  wsproto's post-handshake ``Connection``.
* Client: ``connect`` has the remote cluster's HTTP engine open the
  connection and parse the 101, checks the handshake and hands the frames to
  wsproto's post-handshake ``Connection`` (exec, attach, port-forward
  towards the remote cluster).

One task receives, any number send (a lock keeps frames whole). Pings are
answered inside ``receive``. Nothing is read ahead of the receiver: the
transport is read only when ``receive`` has no whole message left, so a
relay that receives only as fast as it can pass messages on is bounded
(about one message, at most MAX_MESSAGE) without any protocol help.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import deque
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

import trio
import wsproto
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ak.wire.http1 import Engine, Refused

MAX_MESSAGE = 16 * 1024 * 1024
MAX_OWED = 256 * 1024  # unsent control replies (pongs) before the receiver waits for the sender
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketClosed(Exception):
    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"websocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


@dataclass
class Rejected(Exception):
    """The server answered the WebSocket handshake with an HTTP error."""

    status: int
    body: bytes

    def __str__(self) -> str:
        return f"websocket handshake refused: {self.status} {self.body[:300]!r}"


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


class WebSocket:
    def __init__(
        self,
        stream: trio.abc.Stream,
        conn: Connection,
        subprotocol: str | None,
    ) -> None:
        self.stream = stream
        self.conn = conn
        self.subprotocol = subprotocol or ""
        self._send_lock = trio.Lock()
        self._parts: list[bytes | str] = []
        self._size = 0
        self.closed: WebSocketClosed | None = None
        self._events: deque[wsproto.events.Event] = deque()
        self._owed = bytearray()  # control replies waiting for the writer

    async def _write(self, event: wsproto.events.Event) -> None:
        async with self._send_lock:
            await self._write_owed()
            try:
                data = self.conn.send(event)
            except LocalProtocolError as e:
                raise WebSocketClosed(1006, str(e)) from e
            await self._send_bytes(data)
            await self._write_owed()

    async def _send_bytes(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            raise WebSocketClosed(1006, "connection lost") from e

    async def _write_owed(self) -> None:
        while self._owed:
            data = bytes(self._owed)
            self._owed.clear()
            await self._send_bytes(data)

    async def _reply(self, event: wsproto.events.Event) -> None:
        """Answer a control frame without ever waiting for a blocked sender.

        A sender stuck in ``send_all`` (the peer is not reading) holds the lock;
        if the receiver waited for it to send a pong, nobody would read what the
        peer is trying to send us, and both ends would wait forever. So the
        reply is queued for the lock holder to send after its own write.
        """
        try:
            self._owed += self.conn.send(event)
        except LocalProtocolError:
            return
        if not self._send_lock.locked():
            async with self._send_lock:
                await self._write_owed()

    async def send(self, message: bytes | str) -> None:
        if self.closed is not None:
            raise self.closed
        if isinstance(message, str):
            await self._write(TextMessage(data=message))
        else:
            await self._write(BytesMessage(data=message))

    async def receive(self) -> bytes | str:
        """The next whole message; raises WebSocketClosed when the peer is done."""
        while True:
            if self.closed is not None:
                raise self.closed
            while self._events:
                message = await self._handle(self._events.popleft())
                if message is not None:
                    return message
            try:
                self._events.extend(self.conn.events())
            except RemoteProtocolError as e:
                self.closed = WebSocketClosed(1002, str(e))
                raise self.closed from e
            if not self._events:
                if len(self._owed) > MAX_OWED:
                    # A peer that pings and reads none of the answers is not
                    # read either: wait for the sender to write them.
                    async with self._send_lock:
                        await self._write_owed()
                await self._fill()

    async def _handle(self, event: wsproto.events.Event) -> bytes | str | None:
        if isinstance(event, Ping):
            await self._reply(event.response())
            return None
        if isinstance(event, CloseConnection):
            self.closed = WebSocketClosed(event.code, event.reason or "")
            with suppress(WebSocketClosed):
                await self._reply(event.response())
            raise self.closed
        if isinstance(event, Message):
            data = event.data
            self._parts.append(data)
            self._size += len(data)
            if self._size > MAX_MESSAGE:
                await self.close(1009, "message too big")
                raise WebSocketClosed(1009, "message too big")
            if event.message_finished:
                parts, self._parts, self._size = self._parts, [], 0
                if isinstance(event, TextMessage):
                    return "".join(p for p in parts if isinstance(p, str))
                return b"".join(p for p in parts if isinstance(p, bytes | bytearray))
        return None

    async def _fill(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            self.closed = WebSocketClosed(1006, "connection lost")
            raise self.closed from e
        if not data:
            self.closed = WebSocketClosed(1006, "connection closed without a close frame")
            raise self.closed
        self.conn.receive_data(bytes(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (if still possible) and close the transport."""
        if self.closed is None:
            self.closed = WebSocketClosed(code, reason)
            with trio.move_on_after(2) as scope:
                scope.shield = True
                with suppress(WebSocketClosed):
                    await self._write(CloseConnection(code=code, reason=reason))
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


def server_connection(trailing: bytes) -> Connection:
    conn = Connection(ConnectionType.SERVER)
    if trailing:
        conn.receive_data(trailing)
    return conn


async def connect(
    engine: Engine,
    target: str,
    *,
    subprotocols: list[str],
    headers: Mapping[str, str] | None = None,
    connect_timeout: float = 15,
) -> WebSocket:
    """Open a WebSocket to ``target`` (path and query) on ``engine``'s server.

    The engine connects, sends the handshake request and parses the 101; the
    handshake's checks (RFC 6455 4.1) are made here, then wsproto takes the
    frames, starting with any bytes read past the 101. Raises Rejected on an
    HTTP error, OSError (the engine's TransportError) when the server cannot
    be reached."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = {
        **(headers or {}),
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    if subprotocols:
        request["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
    try:
        up = await engine.upgrade("GET", target, request, timeout=connect_timeout)
    except Refused as e:
        raise Rejected(e.status, e.body) from None
    subprotocol = up.headers.get("sec-websocket-protocol") or None
    problem = ""
    if up.headers.get("upgrade", "").lower() != "websocket":
        problem = "the 101 does not upgrade to websocket"
    elif up.headers.get("sec-websocket-accept") != accept_key(key):
        problem = "wrong Sec-WebSocket-Accept"
    elif subprotocol is not None and subprotocol not in subprotocols:
        problem = f"subprotocol {subprotocol!r} was not offered"
    elif "sec-websocket-extensions" in up.headers:
        problem = "an extension was not offered"
    if problem:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(up.stream)
        raise Rejected(502, f"websocket handshake: {problem}".encode())
    conn = Connection(ConnectionType.CLIENT)
    if up.leftover:
        conn.receive_data(up.leftover)
    return WebSocket(up.stream, conn, subprotocol)
