"""A SPDY/3.1 session on a trio stream: the codec in ak.wire.spdy, driven.

The reader task turns frames into per-stream byte buffers; new streams arrive
on ``incoming``; every write goes through one lock so compressed header
blocks reach the wire in the order they were compressed. Streams the peer
opens are accepted with an empty SYN_REPLY, as spdystream does; the handler
decides afterwards whether to use or reset them. As a client
(``client=True``), ``open_stream`` opens streams of our own and waits for
their SYN_REPLY, as spdystream's CreateStream does.

Bounded both ways. Receiving: a stream buffers at most its window
(``WINDOW``); the window goes back to the peer (WINDOW_UPDATE) only as the
stream's consumer reads, so a peer that keeps windows stops there; one that
does not (spdystream) finds the reader waiting for the consumer instead, not
reading the transport, so TCP stops it, as spdystream itself stops its own
peers. Sending: ``send_all`` waits for the peer's window when the peer keeps
windows, and for the transport in any case. Frames the session owes the
peer (SYN_REPLY, PING echoes, refusals, WINDOW_UPDATEs) are written by a
flusher task, so neither the reader nor a consumer ever waits for the
transport to write them.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from contextlib import suppress

import trio
from trio.lowlevel import ParkingLot

from ak.wire import spdy

log = logging.getLogger(__name__)

WINDOW = 128 * 1024  # per stream: what a peer may send ahead of our reader
SESSION_WINDOW = 1024 * 1024  # all streams together, for a peer that keeps windows
MAX_DATA_FRAME = 64 * 1024  # what one DATA frame of ours carries at most
MAX_OWED = 256 * 1024  # owed frames (PING echoes...) before the reader waits for the flusher


class StreamReset(Exception):
    """The stream was reset (by the peer, by us, or because the session ended)."""


class SpdyStream:
    def __init__(self, session: SpdySession, stream_id: int, headers: spdy.Headers) -> None:
        self.session = session
        self.stream_id = stream_id
        self.headers = headers
        self._chunks: deque[bytes] = deque()
        self.buffered = 0  # bytes received, not yet read by the consumer
        self._eof = False  # the peer half-closed, or the stream ended
        self._readable = ParkingLot()  # the consumer, waiting for bytes
        self._room = ParkingLot()  # the reader, waiting for the consumer to read
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
        """Next chunk from the peer; b"" once it half-closed; StreamReset if reset.

        Reading is what opens the peer's window again."""
        while not self._chunks and not self._eof:
            await self._readable.park()
        if not self._chunks:
            await trio.lowlevel.checkpoint()
            if self.reset_status is not None:
                raise StreamReset(f"stream {self.stream_id} reset ({self.reset_status})")
            return b""
        data = self._chunks.popleft()
        self._taken(len(data))
        await trio.lowlevel.checkpoint()
        return data

    def _taken(self, n: int) -> None:
        self.buffered -= n
        self._room.unpark_all()
        self.session._consumed(self.stream_id, n)

    async def send_all(self, data: bytes) -> None:
        """Send ``data``, as fast as the peer's window and the transport allow."""
        if data:
            await self.session._send_data(self, data)

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
            # Nobody will read what is left: the session window gets it back.
            while self._chunks:
                self._taken(len(self._chunks.popleft()))
            with suppress(StreamReset):
                await self.session.send(spdy.RstStream(self.stream_id, status))

    # called by the session's reader
    async def _on_data(self, data: bytes, fin: bool) -> None:
        if data:
            # Past its window the stream takes nothing more until its consumer
            # reads: a peer that keeps windows never gets here; one that does
            # not waits, with every other stream of the session, on TCP.
            while self.buffered and self.buffered + len(data) > self.session.window:
                if self._eof:
                    break
                self.session.stalled = True
                try:
                    await self._room.park()
                finally:
                    self.session.stalled = False
            if self._eof:  # reset meanwhile: nobody will read it
                self.session._consumed(self.stream_id, len(data))
            else:
                self._chunks.append(data)
                self.buffered += len(data)
                self._readable.unpark_all()
        if fin:
            self.remote_closed = True
            self._end_input()
            self._forget_if_done()

    def _end_input(self) -> None:
        self._eof = True
        self._readable.unpark_all()
        self._room.unpark_all()

    def _on_reset(self, status: int) -> None:
        if self.reset_status is None:
            self.reset_status = status
            self.local_closed = self.remote_closed = True
            self._end_input()
            self.session._window_opened.unpark_all()
        self.replied.set()  # nobody waits for a reply that will not come


class SpdySession:
    def __init__(
        self,
        transport: trio.abc.Stream,
        initial: bytes = b"",
        *,
        client: bool = False,
        window: int = WINDOW,
        session_window: int = SESSION_WINDOW,
    ) -> None:
        self.transport = transport
        self.window = window
        self.conn = spdy.SpdyConnection(client=client, window=window, session_window=session_window)
        if initial:
            self.conn.receive_data(initial)
        self._lock = trio.Lock()
        # Frames owed to the peer, for the next writer or the flusher; the
        # preface (our windows) goes first.
        self._owed = bytearray(self.conn.preface())
        self._owed_lot = ParkingLot()  # the flusher, waiting for owed frames
        self._owed_drained = ParkingLot()  # the reader, waiting for the flusher
        self._window_opened = ParkingLot()  # senders, waiting for the peer's window
        self.streams: dict[int, SpdyStream] = {}
        # Unbounded in count only: each stream is a few hundred bytes until its
        # handler takes it, and the peer opens them one SYN_STREAM at a time.
        self._incoming_send, self.incoming = trio.open_memory_channel[SpdyStream](math.inf)
        self.closed = trio.Event()
        self.error: str | None = None
        # The reader waits for a stream's consumer (a peer that ignores windows
        # sent past one): nothing else on this session moves meanwhile.
        self.stalled = False

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

    async def _send_data(self, stream: SpdyStream, data: bytes) -> None:
        view = memoryview(data)
        while view:
            async with self._lock:
                await self._write_owed()
                n = self.conn.send_window(stream.stream_id)
                if n > 0:
                    chunk = bytes(view[: min(n, MAX_DATA_FRAME)])
                    try:
                        out = self.conn.send(spdy.Data(stream.stream_id, chunk))
                    except spdy.LocalProtocolError as e:
                        raise StreamReset(str(e)) from e
                    await self._write(out)
                    view = view[len(chunk) :]
                    continue
            if stream.reset_status is not None or not self.conn.is_open(stream.stream_id):
                raise StreamReset(f"stream {stream.stream_id} is closed")
            # No checkpoint since the window was read: no update can slip past.
            await self._window_opened.park()

    def _consumed(self, stream_id: int, n: int) -> None:
        if not self.closed.is_set():
            self.conn.consumed(stream_id, n)
            self._flush()

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
        self._owed_drained.unpark_all()

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            await self.transport.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
            self._end("connection lost while writing")
            raise StreamReset("connection lost") from e

    def _flush(self) -> None:
        """Hand what the codec queued to the flusher; never waits.

        Neither the reader nor a consumer waits for a writer stuck in
        ``send_all``: while the reader waited, nobody would read the peer,
        which may be exactly what the writer is waiting for.
        """
        self._owed += self.conn.data_to_send()
        if self._owed:
            self._owed_lot.unpark_all()

    async def _flusher(self) -> None:
        with suppress(StreamReset):
            while True:
                while not self._owed:
                    await self._owed_lot.park()
                async with self._lock:
                    await self._write_owed()

    async def run(self) -> None:
        """Read frames until the peer closes or breaks the protocol."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._flusher)
                await self._read()
                nursery.cancel_scope.cancel()
        finally:
            self._end(self.error or "connection closed")

    async def _read(self) -> None:
        try:
            await self._process()  # bytes that came with the upgrade request
            while not self.closed.is_set():
                # A peer that makes us answer (PINGs) and does not read the
                # answers is not read either.
                while len(self._owed) > MAX_OWED and not self.closed.is_set():
                    await self._owed_drained.park()
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
            self._owed += self.conn.data_to_send()  # the GOAWAY the codec queued
            with suppress(StreamReset), trio.move_on_after(5):
                async with self._lock:
                    await self._write_owed()

    async def _process(self) -> None:
        for event in self.conn.events():
            if isinstance(event, spdy.SynStream):
                stream = SpdyStream(self, event.stream_id, event.headers)
                self.streams[event.stream_id] = stream
                if event.fin:
                    await stream._on_data(b"", True)
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
                        await s._on_data(b"", True)
            elif isinstance(event, spdy.Data):
                s = self.streams.get(event.stream_id)
                if s is not None:
                    self._flush()  # what came before must not wait for this stream's room
                    await s._on_data(event.data, event.fin)
                else:
                    self.conn.consumed(event.stream_id, len(event.data))
            elif isinstance(event, spdy.HeadersFrame):
                s = self.streams.get(event.stream_id)
                if s is not None and event.fin:
                    await s._on_data(b"", True)
            elif isinstance(event, spdy.RstStream):
                s = self.streams.pop(event.stream_id, None)
                if s is not None:
                    s._on_reset(event.status)
            elif isinstance(event, spdy.WindowUpdate | spdy.Settings):
                self._window_opened.unpark_all()
            elif isinstance(event, spdy.GoAway):
                log.debug("SPDY peer sent GOAWAY (status %d)", event.status)
            elif isinstance(event, spdy.ConnectionClosed):
                break
        self._flush()  # PING echoes, refusals, WINDOW_UPDATEs

    def _end(self, why: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self._owed_drained.unpark_all()
        for s in self.streams.values():
            s._on_reset(spdy.RstStatus.CANCEL)
        self._window_opened.unpark_all()
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
