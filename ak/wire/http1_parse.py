"""HTTP/1.1 responses read from a connection's bytes, without I/O (sans-io).

llhttp (through httptools) does the framing, strictly: status line, headers,
Content-Length, chunked encoding and keep-alive as RFC 9112 has them; it
refuses ``Content-Length: -3`` or ``+3``, a chunk size ``0x3``, two lengths,
a length beside chunked encoding, bare LF line ends. What a client needs
around it is here: caps on the head and the body (the decoded body included),
gzip decoding that never inflates more than asked for, 1xx answers skipped,
HEAD, bodies that run to the close, upgrades, and the verdict on whether the
connection may carry another request: only when the response was whole, the
server did not ask to close (an HTTP/1.0 answer without keep-alive closes)
and nothing came after it.

One ``ResponseReader`` per connection: llhttp's state runs across the
responses of a keep-alive connection, so a byte past a response is seen as
the start of another one (``surplus``) rather than lost.
"""

from __future__ import annotations

import zlib
from collections import deque

import httptools

KiB = 1024
MiB = 1024 * KiB
MAX_HEAD = 64 * KiB
# A LIST page of 500 objects is a few MB; etcd keeps an object under 1.5 MiB.
MAX_BODY = 128 * MiB
PIECE = 64 * KiB  # the most a body hands out at once, decoded


class TransportError(OSError):
    """No whole response: connect, TLS, I/O, framing, a timeout or a cap.

    An OSError, like the socket errors it mostly comes from, so code that
    catches connection failures catches this too."""


class ConnectFailed(TransportError):
    """No connection (TCP or TLS) to the server."""


class TimedOut(TransportError):
    """A connect, a read or the whole request took longer than allowed."""


class ProtocolError(TransportError):
    """The bytes are not a well-framed HTTP/1.1 response."""


class CapExceeded(ProtocolError):
    """A response is larger than a cap allows."""


def size_text(n: int) -> str:
    if n % MiB == 0:
        return f"{n // MiB} MiB"
    if n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} bytes"


class Decoder:
    """A gzip body inflated piece by piece, at most ``limit`` bytes a call: a
    small answer that inflates to gigabytes is only ever inflated as far as
    the reader asks."""

    def __init__(self, encoding: str) -> None:
        if encoding.strip().lower() not in ("gzip", "x-gzip"):
            raise ProtocolError(f"unsupported Content-Encoding {encoding!r}")
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending: deque[bytes] = deque()
        self._full = False  # the last call filled its limit: zlib may hold more

    def push(self, data: bytes) -> None:
        self._pending.append(data)

    def pull(self, limit: int) -> bytes:
        """Up to ``limit`` decoded bytes; b"" when everything pushed so far is out."""
        while self._pending or self._full:
            data = self._pending.popleft() if self._pending else b""
            try:
                out = self._z.decompress(data, limit)
            except zlib.error as e:
                raise ProtocolError(f"bad gzip body: {e}") from e
            if self._z.unconsumed_tail:
                self._pending.appendleft(self._z.unconsumed_tail)
            if self._z.unused_data:
                raise ProtocolError("bad gzip body: data after its end")
            self._full = len(out) == limit
            if out:
                return out
        return b""

    def finish(self) -> None:
        """The body ended: it must not have ended inside the gzip stream."""
        if not self._z.eof:
            raise ProtocolError("bad gzip body: cut short")


class ResponseReader:
    """The responses on one connection, fed its bytes; one request at a time."""

    def __init__(self, *, max_head: int = MAX_HEAD, max_body: int = MAX_BODY) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self.max_head = max_head
        self.max_body = max_body
        self.expect("GET")

    def expect(self, method: str, *, stream: bool = False, upgrade: bool = False) -> None:
        """Get ready for the response to a request about to be sent.

        ``stream``: the body has no size cap (a watch runs for minutes); it is
        read as the caller takes it, so what is held stays small anyway."""
        self.bodyless = method == "HEAD"
        self.upgrade = upgrade
        self.stream = stream
        self.status = 0
        self.headers: dict[str, str] = {}
        self.started = False  # a byte of the response arrived
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.surplus = False  # bytes after the response: a desynchronised connection
        self.upgraded: bytes | None = None  # after a 101: the bytes past its head
        self.decoder: Decoder | None = None  # None: identity, the pieces as they came
        self._pieces: deque[bytes] = deque()
        self._sink = self.headers  # where on_header writes (not the answer's after it)
        self._informational = False
        self._fed_for_head = 0
        self._head_size = 0
        self._raw_body = 0
        self._error: TransportError | None = None

    @property
    def reusable(self) -> bool:
        # A HEAD answer's Content-Length describes a body that is not sent: llhttp
        # (httptools cannot tell it to skip one) would wait for it, so no reuse.
        return (
            self.complete
            and self.keep_alive
            and not self.surplus
            and not self.bodyless
            and self.upgraded is None
        )

    def feed(self, data: bytes | bytearray) -> None:
        """Bytes from the connection (not empty: see ``eof``)."""
        self.started = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as e:
            if self.complete:
                self.surplus = True  # whatever follows a whole response is not ours
                return
            if isinstance(e, httptools.HttpParserError):
                raise self._error or ProtocolError(f"malformed response: {e}") from None
            if not self.upgrade:
                raise ProtocolError("101 Switching Protocols to a request that asked none") from e
            self.upgraded = bytes(data[int(e.args[0]) :])
            self.head_done = self.complete = True
            return
        if self._error is not None:
            raise self._error
        if not self.head_done:
            self._fed_for_head += len(data)
            if self._fed_for_head > self.max_head:
                raise self._head_cap()

    def eof(self) -> None:
        """The server closed the connection (call only once something arrived)."""
        if self.complete:
            return
        framed = "content-length" in self.headers or "chunked" in self.headers.get(
            "transfer-encoding", ""
        )
        if self.head_done and not framed and not self.bodyless:
            # No length at all: the body ran to the close (RFC 9112 6.3, rule 8).
            self.complete = True
            self.keep_alive = False
            return
        raise ProtocolError("connection closed in the middle of a response")

    def piece(self) -> bytes:
        """The next decoded piece of the body received so far (b"" if none yet)."""
        if self.decoder is not None:
            return self.decoder.pull(PIECE)
        return self._pieces.popleft() if self._pieces else b""

    def finish(self) -> None:
        """The body was read to its end: a gzip body must have ended too."""
        if self.decoder is not None:
            self.decoder.finish()

    def body(self) -> bytes:
        """The whole decoded body of a complete response, within ``max_body``."""
        if self.decoder is None:
            # The raw size was capped as it came in (on_body).
            pieces = self._pieces
            if len(pieces) == 1:
                return pieces.popleft()
            out = b"".join(pieces)
            pieces.clear()
            return out
        buf = bytearray()
        while piece := self.decoder.pull(PIECE):
            buf += piece
            if len(buf) > self.max_body:
                raise CapExceeded(
                    f"response body over the {size_text(self.max_body)} cap (decoded)"
                )
        self.decoder.finish()
        return bytes(buf)

    def _head_cap(self) -> CapExceeded:
        return CapExceeded(f"response head over the {size_text(self.max_head)} cap")

    # -- llhttp's callbacks (an exception raised here would lose its type inside
    # httptools: it is kept in _error and raised by feed) ---------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            self.surplus = True
            self._sink = {}  # the headers of what follows are nobody's

    def on_header(self, name: bytes, value: bytes) -> None:
        # The size is checked once the head is in (and, while it comes, by feed).
        self._head_size += len(name) + len(value) + 4
        key = name.decode("latin-1").lower()
        sink = self._sink
        if key in sink:
            sink[key] = f"{sink[key]}, {value.decode('latin-1')}"
        else:
            sink[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        if self._head_size > self.max_head:
            self._error = self._head_cap()
            raise self._error
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._informational = True  # 100 Continue and the like: the answer follows
            return
        self.status = status
        self.head_done = True
        encoding = self.headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            try:
                self.decoder = Decoder(encoding)
            except ProtocolError as e:
                self._error = e
                raise
        if self.bodyless:
            self.complete = True

    def on_body(self, data: bytes) -> None:
        if self.complete or self._informational:
            return
        self._raw_body += len(data)
        if not self.stream and self._raw_body > self.max_body:
            self._error = CapExceeded(f"response body over the {size_text(self.max_body)} cap")
            raise self._error
        if self.decoder is None:
            self._pieces.append(data)
        else:
            self.decoder.push(data)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            self.headers = self._sink = {}
            self._head_size = self._fed_for_head = 0
            return
        if self.complete or self.status == 101:
            return  # a 101 ends in HttpParserUpgrade, raised to ``feed``
        self.keep_alive = self._parser.should_keep_alive()
        self.complete = True
