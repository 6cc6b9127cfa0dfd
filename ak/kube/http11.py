"""Plain API requests over HTTP/1.1 keep-alive connections, without httpx.

Six requests a pod are most of AK's CPU, and httpx -> httpcore -> h11 spent
~1-2 ms of it per request where Python's own ``http.client`` spends ~0.25-0.7
(``python -m ak.testbed.bench_request``). API servers need little of HTTP:
a request is one write (head and body together), a response is a status
line, headers and a body sized by Content-Length or chunked encoding. So this
client writes requests itself and parses responses itself, over trio's TLS
streams, with a small LIFO pool of idle connections. Watches and log streams,
which hold a connection for minutes, stay on httpx (``KubeClient.stream``).

Connection hygiene, since AK cancels requests all the time (a restarted task,
a shutdown): a connection is returned to the pool only after a whole response
was read and neither side asked to close it; anything else (an error, a
timeout, a cancellation mid-request) closes it. An idle connection the server
closed in the meantime is noticed before reuse (it reads as readable); if a
reused connection still fails before a single byte of the response arrived,
the request is sent once more on a new connection: the server closed it
without reading the request, so nothing was done twice.
"""

from __future__ import annotations

import ssl
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio

MAX_HEAD = 64 * 1024
READ = 65536
IDLE_EXPIRY = 60.0  # seconds an idle connection is kept: below servers' idle timeouts


class TransportError(Exception):
    """The request did not get a whole response (connect, TLS, I/O, protocol, timeout)."""


@dataclass(frozen=True)
class Response:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class _Conn:
    def __init__(self, stream: trio.abc.Stream, socket: trio.socket.SocketType) -> None:
        self.stream = stream
        self.socket = socket
        self.buf = bytearray()
        self.idle_since = 0.0
        self.used = False  # has carried a request before
        self.started = False  # a byte of the current response has arrived

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self.stream)

    def stale(self) -> bool:
        """The server closed (or wrote to) a connection that should be silent."""
        if trio.current_time() - self.idle_since > IDLE_EXPIRY:
            return True
        return self.socket.is_readable()

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(READ)
        if not data:
            return False
        self.started = True
        self.buf += data
        return True

    async def read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            at = self.buf.find(marker)
            if at >= 0:
                out = bytes(self.buf[:at])
                del self.buf[: at + len(marker)]
                return out
            if len(self.buf) > limit:
                raise TransportError("response head too long")
            if not await self._fill():
                if self.started:
                    raise TransportError("connection closed in the middle of a response")
                raise _Closed()

    async def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not await self._fill():
                raise TransportError("connection closed in the middle of a response")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_to_end(self) -> bytes:
        while await self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


class _Closed(TransportError):
    """The server closed the connection before a single byte of the response."""

    def __init__(self) -> None:
        super().__init__("connection closed by the server before responding")


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (lower-case names) of a response head without its CRLFCRLF."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise TransportError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    try:
        status = int(parts[1])
    except ValueError:
        raise TransportError(f"bad status line {lines[0][:80]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise TransportError(f"bad header line {line[:80]!r}")
        key = name.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return status, headers


class Pool:
    """Keep-alive connections to one server, for one request at a time each."""

    def __init__(
        self,
        server: str,
        ssl_context: ssl.SSLContext,
        *,
        server_hostname: str | None = None,
        max_idle: int = 8,
        connect_timeout: float = 10,
    ) -> None:
        parts = urlsplit(server)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.tls else 80)
        default = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if self.port == default else f"{host}:{self.port}"
        self.base_path = parts.path.rstrip("/")
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname or self.host
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self._idle: list[_Conn] = []

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,  # noqa: ASYNC109 - the whole request's deadline, like httpx's
    ) -> Response:
        """One request and its whole response; TransportError if there was none."""
        head = self._head(method, target, headers, body)
        try:
            with trio.fail_after(timeout):
                conn = await self._take()
                bodyless = method == "HEAD"
                try:
                    return await self._exchange(conn, head, body, bodyless)
                except _Closed:
                    if not conn.used:
                        raise
                # A reused connection the server had closed: once more, on a new one.
                return await self._exchange(await self._connect(), head, body, bodyless)
        except trio.TooSlowError:
            raise TransportError(f"no response within {timeout:g} s") from None

    def _head(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
        lines = [f"{method} {self.base_path}{target} HTTP/1.1", f"Host: {self.authority}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _take(self) -> _Conn:
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely closed
            if conn.stale():
                await conn.aclose()
                continue
            return conn
        return await self._connect()

    async def _connect(self) -> _Conn:
        try:
            with trio.fail_after(self.connect_timeout):
                tcp = await trio.open_tcp_stream(self.host, self.port)
                if not self.tls:
                    return _Conn(tcp, tcp.socket)
                stream = trio.SSLStream(
                    tcp,
                    self.ssl_context,
                    server_hostname=self.server_hostname,
                    https_compatible=True,
                )
                try:
                    await stream.do_handshake()
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
                return _Conn(stream, tcp.socket)
        except trio.TooSlowError:
            raise TransportError(f"connect timed out after {self.connect_timeout:g} s") from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as e:
            raise TransportError(f"cannot connect: {e}") from e

    async def _exchange(
        self, conn: _Conn, head: bytes, body: bytes | None, bodyless: bool
    ) -> Response:
        reusable = False
        conn.started = False
        try:
            try:
                await conn.stream.send_all(head + body if body else head)
                status, headers, content, reusable = await self._response(conn, bodyless)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
                if not conn.started:
                    raise _Closed() from e
                raise TransportError(f"connection lost: {e}") from e
        finally:
            if reusable and len(self._idle) < self.max_idle:
                conn.used = True
                conn.idle_since = trio.current_time()
                self._idle.append(conn)
            else:
                await conn.aclose()
        return Response(status, headers, content)

    async def _response(
        self, conn: _Conn, bodyless: bool
    ) -> tuple[int, dict[str, str], bytes, bool]:
        while True:
            status, headers = parse_head(await conn.read_until(b"\r\n\r\n", MAX_HEAD))
            if not 100 <= status < 200:
                break  # 1xx (none expected: AK sends no Expect) are skipped
        framing = headers.get("transfer-encoding", "").lower()
        if bodyless or status in (204, 304):
            content = b""  # a HEAD answer's Content-Length describes a body not sent
        elif "chunked" in framing:
            content = await self._chunked(conn)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise TransportError("bad Content-Length") from None
            content = await conn.read_exactly(length)
        else:
            content = await conn.read_to_end()
            headers["connection"] = "close"
        if headers.get("content-encoding", "").lower() == "gzip":
            try:
                content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
            except zlib.error as e:
                raise TransportError(f"bad gzip body: {e}") from e
        reusable = "close" not in headers.get("connection", "").lower()
        return status, headers, content, reusable

    async def _chunked(self, conn: _Conn) -> bytes:
        out = bytearray()
        while True:
            line = await conn.read_until(b"\r\n", MAX_HEAD)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise TransportError(f"bad chunk size {line[:40]!r}") from None
            if size == 0:
                while await conn.read_until(b"\r\n", MAX_HEAD):
                    pass  # trailers, up to the empty line
                return bytes(out)
            out += await conn.read_exactly(size)
            if await conn.read_exactly(2) != b"\r\n":
                raise TransportError("chunk not followed by CRLF")
