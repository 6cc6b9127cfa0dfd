"""A SPDY/3.1 session on a trio stream: the codec in ak.kubelet.spdy, driven.

The reader task turns frames into per-stream byte queues; new streams arrive
on ``incoming``; every write goes through one lock so compressed header
blocks reach the wire in the order they were compressed. Streams the peer
opens are accepted with an empty SYN_REPLY, as spdystream does; the handler
decides afterwards whether to use or reset them. As a client
(``client=True``), ``open_stream`` opens streams of our own and waits for
their SYN_REPLY, as spdystream's CreateStream does.
"""

from __future__ import annotations

import logging
import math
from contextlib import suppress

import trio

from ak.kubelet import spdy

log = logging.getLogger(__name__)


class StreamReset(Exception):
    """The stream was reset (by the peer, by us, or because the session ended)."""


class SpdyStream:
    def __init__(self, session: SpdySession, stream_id: int, headers: spdy.Headers) -> None:
        self.session = session
        self.stream_id = stream_id
        self.headers = headers
        self._send, self._recv = trio.open_memory_channel[bytes](math.inf)
        self.reset_status: int | None = None
        self.local_closed = False
        self.remote_closed = False
        self.replied = trio.Event()  # our own streams: the peer's SYN_REPLY came

    def header(self, name: str) -> str | None:
        return spdy.header(self.headers, name)

    @property
    def stream_type(self) -> str | None:
        return self.header("streamtype")

    async def receive_some(self) -> bytes:
        """Next chunk from the peer; b"" once it half-closed; StreamReset if reset."""
        try:
            data = await self._recv.receive()
        except trio.EndOfChannel:
            if self.reset_status is not None:
                raise StreamReset(f"stream {self.stream_id} reset ({self.reset_status})") from None
            return b""
        return data

    async def send_all(self, data: bytes) -> None:
        if data:
            await self.session.send(spdy.Data(self.stream_id, data))

    async def send_eof(self) -> None:
        if not self.local_closed:
            self.local_closed = True
            await self.session.send(spdy.Data(self.stream_id, b"", fin=True))
            self._forget_if_done()

    def _forget_if_done(self) -> None:
        if self.local_closed and self.remote_closed:
            self.session.streams.pop(self.stream_id, None)

    async def reset(self, status: int = spdy.RstStatus.CANCEL) -> None:
        if self.reset_status is None:
            self._on_reset(status)
            with suppress(StreamReset):
                await self.session.send(spdy.RstStream(self.stream_id, status))

    # called by the session's reader
    def _on_data(self, data: bytes, fin: bool) -> None:
        if data:
            self._send.send_nowait(data)
        if fin:
            self.remote_closed = True
            self._send.close()
            self._forget_if_done()

    def _on_reset(self, status: int) -> None:
        if self.reset_status is None:
            self.reset_status = status
            self.local_closed = self.remote_closed = True
            self._send.close()
        self.replied.set()  # nobody waits for a reply that will not come


class SpdySession:
    def __init__(
        self, transport: trio.abc.Stream, initial: bytes = b"", *, client: bool = False
    ) -> None:
        self.transport = transport
        self.conn = spdy.SpdyConnection(client=client)
        if initial:
            self.conn.receive_data(initial)
        self._lock = trio.Lock()
        self._owed = bytearray()  # frames the reader produced, for the next writer
        self.streams: dict[int, SpdyStream] = {}
        self._incoming_send, self.incoming = trio.open_memory_channel[SpdyStream](math.inf)
        self.closed = trio.Event()
        self.error: str | None = None

    async def send(self, event: spdy.Event) -> None:
        async with self._lock:
            # What the reader queued was compressed earlier: it goes first.
            await self._write_owed()
            try:
                data = self.conn.send(event)
            except spdy.LocalProtocolError as e:
                raise StreamReset(str(e)) from e
            await self._write(data)
            await self._write_owed()

    async def open_stream(self, headers: spdy.Headers) -> SpdyStream:
        """A stream of ours, once the peer accepted it; StreamReset if it refused."""
        (stream,) = await self.open_streams([headers])
        return stream

    async def open_streams(self, headers: list[spdy.Headers]) -> list[SpdyStream]:
        """Streams of ours, opened together (one round trip for all of their
        replies), once the peer accepted each; StreamReset if it refused one."""
        streams: list[SpdyStream] = []
        async with self._lock:
            if self.closed.is_set():
                raise StreamReset("session closed")
            await self._write_owed()
            data = bytearray()
            try:
                for h in headers:
                    stream_id = self.conn.next_stream_id()
                    data += self.conn.send(spdy.SynStream(stream_id, h))
                    stream = SpdyStream(self, stream_id, h)
                    self.streams[stream_id] = stream
                    streams.append(stream)
            except spdy.LocalProtocolError as e:
                raise StreamReset(str(e)) from e
            finally:
                # Header blocks share one compression context: what was
                # compressed must reach the peer, even if a later stream failed.
                await self._write(bytes(data))
        for stream in streams:
            await stream.replied.wait()
        for stream in streams:
            if stream.reset_status is not None:
                raise StreamReset(f"stream {stream.stream_id} refused ({stream.reset_status})")
        return streams

    async def _write_owed(self) -> None:
        while self._owed:
            data = bytes(self._owed)
            self._owed.clear()
            await self._write(data)

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            await self.transport.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            self._end("connection lost while writing")
            raise StreamReset("connection lost") from e

    async def _flush(self) -> None:
        """Send what the reader queued, unless a writer holds the lock: it will.

        The reader never waits for a writer stuck in ``send_all``: while it
        waited, nobody would read the peer, which may be exactly what the
        writer is waiting for.
        """
        self._owed += self.conn.data_to_send()
        if self._owed and not self._lock.locked():
            async with self._lock:
                await self._write_owed()

    async def run(self) -> None:
        """Read frames until the peer closes or breaks the protocol."""
        try:
            await self._process()  # bytes that came with the upgrade request
            while not self.closed.is_set():
                try:
                    data = await self.transport.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                self.conn.receive_data(bytes(data))
                await self._process()
                if not data:
                    break
        except spdy.ProtocolError as e:
            log.info("SPDY protocol error from peer: %s", e)
            self.error = str(e)
            with suppress(StreamReset):
                await self._flush()  # the GOAWAY the codec queued
        finally:
            self._end(self.error or "connection closed")

    async def _process(self) -> None:
        for event in self.conn.events():
            if isinstance(event, spdy.SynStream):
                stream = SpdyStream(self, event.stream_id, event.headers)
                self.streams[event.stream_id] = stream
                if event.fin:
                    stream._on_data(b"", True)
                try:
                    self._owed += self.conn.send(spdy.SynReply(event.stream_id))
                except spdy.LocalProtocolError:
                    continue
                self._incoming_send.send_nowait(stream)
            elif isinstance(event, spdy.SynReply):
                s = self.streams.get(event.stream_id)
                if s is not None:
                    s.replied.set()
                    if event.fin:
                        s._on_data(b"", True)
            elif isinstance(event, spdy.Data):
                s = self.streams.get(event.stream_id)
                if s is not None:
                    s._on_data(event.data, event.fin)
            elif isinstance(event, spdy.HeadersFrame):
                s = self.streams.get(event.stream_id)
                if s is not None and event.fin:
                    s._on_data(b"", True)
            elif isinstance(event, spdy.RstStream):
                s = self.streams.pop(event.stream_id, None)
                if s is not None:
                    s._on_reset(event.status)
            elif isinstance(event, spdy.GoAway):
                log.debug("SPDY peer sent GOAWAY (status %d)", event.status)
            elif isinstance(event, spdy.ConnectionClosed):
                break
        await self._flush()  # PING echoes, refusals

    def _end(self, why: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in self.streams.values():
            s._on_reset(spdy.RstStatus.CANCEL)
        self._incoming_send.close()
        log.debug("SPDY session ended: %s", why)

    async def aclose(self) -> None:
        """Reset what is still open, say GOAWAY, close the transport (apimachinery's Close)."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            if not self.closed.is_set():
                for sid, s in list(self.streams.items()):
                    if self.conn.is_open(sid):
                        await s.reset()
                try:
                    async with self._lock:
                        await self._write(self.conn.goaway())
                except (StreamReset, spdy.LocalProtocolError):
                    pass
            self._end("closed by us")
            await self.transport.aclose()
