"""AK's HTTP/1.1 client engine: every request AK makes to an API server.

One ``Engine`` per cluster: one pool of keep-alive connections (trio TCP +
TLS), and the one place that connects, names the server for TLS
(``server_hostname``: a kubeconfig's ``tls-server-name``), applies timeouts,
caps sizes and decides whether a request may be sent again. Three uses:

* ``request``: a request and its whole response: plain API calls, most of
  AK's CPU (six or so per pod);
* ``stream``: a response read piece by piece as the caller takes it (watches,
  logs), each receive bounded by the read timeout, each piece by
  ``http1_parse.PIECE`` decoded bytes;
* ``upgrade``: request head, 101, then the raw stream and the bytes already
  past the response head handed over (SPDY port-forwards, WebSockets).

Framing is llhttp's (``http1_parse``), not hand-written. llhttp through
httptools measured cheaper than the hand parser it replaced, and h11 several
times dearer (``python -m tests.testbed.bench_request``, docs/benchmarks.md).

Connection hygiene, since AK cancels requests all the time (a restarted task,
a shutdown): a connection goes back to the pool only when its response was
read whole, cleanly framed, with nothing after it, and the server did not ask
to close; anything else (an error, a timeout, a cancellation, a stream left
early) closes it. An idle connection that turns readable (the server closed
it, or wrote what nobody asked for) is dropped before reuse.

Retries: a request is sent again only when the server provably did not act
on it: a reused connection closed before a single byte of the response, and
an idempotent method (GET, HEAD, PUT, DELETE, OPTIONS). A POST or PATCH there
is an error: the server may have applied it before closing.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio

from ak.wire.http1_parse import (
    MAX_BODY,
    MAX_HEAD,
    CapExceeded,
    ConnectFailed,
    ProtocolError,
    ResponseReader,
    TimedOut,
    TransportError,
    size_text,
)

__all__ = [
    "CapExceeded",
    "ConnectFailed",
    "Engine",
    "ProtocolError",
    "Refused",
    "Response",
    "StreamResponse",
    "TimedOut",
    "TransportError",
    "Upgraded",
]

READ = 65536
IDLE_EXPIRY = 60.0  # seconds an idle connection is kept: below servers' idle timeouts
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
REFUSAL_BODY_WAIT = 2.0  # seconds to read why an upgrade was refused


@dataclass(frozen=True)
class Response:
    status_code: int
    headers: dict[str, str]  # lower-case names
    content: bytes  # decoded

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@dataclass(frozen=True)
class Upgraded:
    """A 101: the connection is the caller's now, in the new protocol."""

    stream: trio.abc.Stream
    headers: dict[str, str]
    leftover: bytes  # bytes of the new protocol read with the response head


class Refused(Exception):
    """An upgrade request answered with something other than 101."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(f"upgrade refused: {status} {body[:300]!r}")
        self.status = status
        self.headers = headers
        self.body = body


class _Unanswered(Exception):
    """The connection failed before a single byte of the response arrived."""


class _Conn:
    __slots__ = ("idle_since", "reader", "socket", "stream", "used")

    def __init__(
        self, stream: trio.abc.Stream, socket: trio.socket.SocketType, reader: ResponseReader
    ) -> None:
        self.stream = stream
        self.socket = socket
        self.reader = reader
        self.idle_since = 0.0
        self.used = False  # has carried a whole exchange before

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self.stream)

    def stale(self) -> bool:
        """The server closed (or wrote to) a connection that should be silent."""
        if trio.current_time() - self.idle_since > IDLE_EXPIRY:
            return True
        return self.socket.is_readable()


class StreamResponse:
    """A response whose body is read as the caller takes it (``Engine.stream``)."""

    def __init__(self, engine: Engine, conn: _Conn, read_timeout: float | None) -> None:
        self._engine = engine
        self._conn = conn
        self._read_timeout = read_timeout
        self.status_code = conn.reader.status
        self.headers = conn.reader.headers
        self.finished = False  # the body was read to its end

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """The decoded body, piece by piece; one receive at a time, only when
        the previous bytes were taken. (An iterator, not an async generator:
        one left early has nothing to finalise.)"""
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        reader = self._conn.reader
        while True:
            piece = reader.piece()
            if piece:
                return piece
            if reader.complete:
                if not self.finished:
                    reader.finish()
                    self.finished = True
                raise StopAsyncIteration
            data = await self._engine._receive(self._conn, self._read_timeout)
            if data:
                reader.feed(data)
            else:
                reader.eof()

    async def read(self) -> bytes:
        """The whole body, within the engine's body cap."""
        out = bytearray()
        async for piece in self:
            out += piece
            if len(out) > self._engine.max_body:
                raise CapExceeded(
                    f"response body over the {size_text(self._engine.max_body)} cap (decoded)"
                )
        return bytes(out)


class Engine:
    """HTTP/1.1 to one server, for any number of tasks; close with ``aclose``."""

    def __init__(
        self,
        server: str,
        ssl_context: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        max_idle: int = 8,
        connect_timeout: float = 10,
        max_head: int = MAX_HEAD,
        max_body: int = MAX_BODY,
    ) -> None:
        parts = urlsplit(server)
        self.tls = parts.scheme in ("https", "wss")
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if self.port == default else f"{host}:{self.port}"
        self.base_path = parts.path.rstrip("/")
        self.ssl_context = ssl_context
        # The certificate is checked against (and SNI names) this name.
        self.server_hostname = server_hostname or self.host
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.max_head = max_head
        self.max_body = max_body
        self._idle: list[_Conn] = []

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()

    # -- the three uses ---------------------------------------------------------------
    async def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: float = 30,  # noqa: ASYNC109 - the whole request's deadline, like httpx's
    ) -> Response:
        """One request and its whole response; TransportError if there was none."""
        head = self.head(method, target, headers, body)
        try:
            with trio.fail_after(timeout):
                conn = await self._open(method, head, body, None)
                reader = conn.reader
                reusable = False
                try:
                    await self._read_rest(conn)
                    content = reader.body()
                    reusable = reader.reusable
                finally:
                    await self._release(conn, reusable)
        except trio.TooSlowError:
            raise TimedOut(f"no response within {timeout:g} s") from None
        return Response(reader.status, reader.headers, content)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        *,
        read_timeout: float | None,
        body: bytes | None = None,
    ) -> AsyncIterator[StreamResponse]:
        """A response with its head read, its body left to read; ``read_timeout``
        bounds each receive (None: none, e.g. a log that is followed)."""
        head = self.head(method, target, headers, body)
        conn = await self._open(method, head, body, read_timeout, stream=True)
        resp = StreamResponse(self, conn, read_timeout)
        try:
            yield resp
        finally:
            await self._release(conn, resp.finished and conn.reader.reusable)

    async def upgrade(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        timeout: float = 15,  # noqa: ASYNC109 - connect and the 101 together
    ) -> Upgraded:
        """Send an upgrade request on a new connection; on 101 the connection
        is the caller's. Refused (with the body, read briefly) otherwise."""
        body = None if method in ("GET", "HEAD") else b""
        head = self.head(method, target, headers, body)
        try:
            with trio.fail_after(timeout):
                conn = await self._connect()
                try:
                    await self._exchange(conn, method, head, None, None, stream=False, upgrade=True)
                except _Unanswered:
                    raise ProtocolError("connection closed during the upgrade") from None
        except trio.TooSlowError:
            raise TimedOut(f"no answer to the upgrade within {timeout:g} s") from None
        reader = conn.reader
        if reader.upgraded is not None:
            return Upgraded(conn.stream, reader.headers, reader.upgraded)
        text = b""
        try:
            with trio.move_on_after(REFUSAL_BODY_WAIT):
                await self._read_rest(conn)
                text = reader.body()
        except TransportError:
            pass  # the status says enough
        finally:
            await conn.aclose()
        raise Refused(reader.status, reader.headers, text)

    # -- requests on connections -------------------------------------------------------
    def head(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> bytes:
        """A request head: Host and Content-Length added, nothing else."""
        lines = [f"{method} {self.base_path}{target} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        text = "\r\n".join(lines)
        if "\n" in text.replace("\r\n", ""):
            raise ValueError("a line break inside a request line or header")
        return (text + "\r\n\r\n").encode("latin-1")

    async def _open(
        self,
        method: str,
        head: bytes,
        body: bytes | None,
        read_timeout: float | None,
        *,
        stream: bool = False,
    ) -> _Conn:
        """A connection with the request sent and its response head read."""
        conn = await self._take()
        try:
            await self._exchange(conn, method, head, body, read_timeout, stream=stream)
            return conn
        except _Unanswered:
            if not conn.used:
                raise TransportError("connection closed by the server before responding") from None
            if method not in IDEMPOTENT:
                raise TransportError(
                    f"connection closed by the server before responding; {method} is not sent "
                    "again: the server may have acted on it"
                ) from None
        # A reused connection the server had closed: once more, on a new one.
        conn = await self._connect()
        try:
            await self._exchange(conn, method, head, body, read_timeout, stream=stream)
        except _Unanswered:
            raise TransportError("connection closed by the server before responding") from None
        return conn

    async def _exchange(
        self,
        conn: _Conn,
        method: str,
        head: bytes,
        body: bytes | None,
        read_timeout: float | None,
        *,
        stream: bool,
        upgrade: bool = False,
    ) -> None:
        """Send the request, read until its response head is in; on any failure
        (a cancellation too) the connection is closed."""
        reader = conn.reader
        reader.expect(method, stream=stream, upgrade=upgrade)
        try:
            try:
                await conn.stream.send_all(head + body if body else head)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
                raise _Unanswered() from e
            while not reader.head_done:
                data = await self._receive(conn, read_timeout)
                if data:
                    reader.feed(data)
                elif not reader.started:
                    raise _Unanswered()
                else:
                    reader.eof()
        except BaseException:
            await conn.aclose()
            raise

    async def _read_rest(self, conn: _Conn) -> None:
        """Receive until the response is complete (its body bounded by the cap)."""
        reader = conn.reader
        while not reader.complete:
            data = await self._receive(conn, None)
            if data:
                reader.feed(data)
            else:
                reader.eof()

    async def _receive(self, conn: _Conn, read_timeout: float | None) -> bytes | bytearray:
        try:
            if read_timeout is None:
                return await conn.stream.receive_some(READ)
            with trio.fail_after(read_timeout):
                return await conn.stream.receive_some(READ)
        except trio.TooSlowError:
            raise TimedOut(f"nothing received for {read_timeout:g} s") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            if not conn.reader.started:
                raise _Unanswered() from e
            raise TransportError(f"connection lost: {e}") from e

    # -- the pool ------------------------------------------------------------------------
    async def _take(self) -> _Conn:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely closed
            if conn.stale():
                await conn.aclose()
                continue
            return conn
        return await self._connect()

    async def _release(self, conn: _Conn, reusable: bool) -> None:
        if reusable and len(self._idle) < self.max_idle:
            conn.used = True
            conn.idle_since = trio.current_time()
            self._idle.append(conn)
        else:
            await conn.aclose()

    async def _connect(self) -> _Conn:
        reader = ResponseReader(max_head=self.max_head, max_body=self.max_body)
        try:
            with trio.fail_after(self.connect_timeout):
                tcp = await trio.open_tcp_stream(self.host, self.port)
                if not self.tls:
                    return _Conn(tcp, tcp.socket, reader)
                stream = trio.SSLStream(
                    tcp,
                    self.ssl_context,
                    server_hostname=self.server_hostname,
                    https_compatible=True,
                )
                try:
                    await stream.do_handshake()
                except BaseException:
                    # Cancelled too (a BaseException): the socket is closed now, not by the GC.
                    await trio.aclose_forcefully(stream)
                    raise
                return _Conn(stream, tcp.socket, reader)
        except trio.TooSlowError:
            raise TimedOut(f"connect timed out after {self.connect_timeout:g} s") from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as e:
            raise ConnectFailed(f"cannot connect: {e}") from e
