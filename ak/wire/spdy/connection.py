"""The SPDY/3.1 connection: which frame is allowed when, per-stream and GOAWAY
bookkeeping, and the stateful zlib contexts of the header blocks.

Bytes in -> events out (``receive_data``, ``events``), events in -> bytes out
(``send``); frames the protocol answers by itself are queued for
``data_to_send``. The frame layouts themselves are in ``frames``, the window
arithmetic in ``flow``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from ak.wire.spdy.dictionary import SPDY3_DICTIONARY
from ak.wire.spdy.flow import (
    DEFAULT_WINDOW,
    MAX_WINDOW,
    SETTINGS_INITIAL_WINDOW_SIZE,
    FlowControlError,
    RecvWindow,
    SendWindow,
)
from ak.wire.spdy.frames import (
    FLAG_FIN,
    FLAG_SETTINGS_CLEAR,
    FLAG_UNIDIRECTIONAL,
    MAX_FRAME_LENGTH,
    MAX_HEADER_BYTES,
    MAX_STREAM_ID,
    VERSION,
    ConnectionClosed,
    Data,
    Event,
    FrameType,
    GoAway,
    GoAwayStatus,
    Headers,
    HeadersFrame,
    LocalProtocolError,
    Ping,
    ProtocolError,
    RstStatus,
    RstStream,
    Settings,
    SynReply,
    SynStream,
    WindowUpdate,
    control_frame,
    data_frames,
    decode_header_block,
    encode_header_block,
)

# --- per-stream state -----------------------------------------------------------


@dataclass
class _Stream:
    recv: RecvWindow
    send: SendWindow
    local_closed: bool = False  # we sent FIN (or the stream is unidirectional from the peer)
    remote_closed: bool = False  # the peer sent FIN
    replied: bool = False  # SYN_REPLY sent (peer streams) or received (our streams)


@dataclass
class _State:
    streams: dict[int, _Stream] = field(default_factory=dict)
    last_peer_stream: int = 0
    last_local_stream: int = 0
    reset: set[int] = field(default_factory=set)  # streams we reset; late DATA is dropped


class SpdyConnection:
    """One SPDY/3.1 session, server side by default (client streams are odd).

    ``window``: each stream's receive window, ``session_window`` the
    session's; ``preface()`` announces both to the peer.
    """

    def __init__(
        self,
        *,
        client: bool = False,
        window: int = DEFAULT_WINDOW,
        session_window: int = DEFAULT_WINDOW,
    ) -> None:
        if not (0 < window <= MAX_WINDOW and DEFAULT_WINDOW <= session_window <= MAX_WINDOW):
            raise LocalProtocolError("window sizes out of range")
        self.client = client
        self.window = window
        self.session_window = session_window  # ours, once ``preface()`` announced it
        self._session_recv = RecvWindow()
        self._session_send = SendWindow()
        self._initial_send = DEFAULT_WINDOW  # the peer's stream window (its SETTINGS)
        # Whether the peer keeps SPDY/3.1 windows: it said so with SETTINGS or a
        # WINDOW_UPDATE. spdystream does neither and paces us through TCP, so
        # until then its windows are counted but not waited for.
        self.peer_keeps_windows = False
        self.peer_overran = False  # the peer sent past a window we gave it
        self._buffer = bytearray()
        self._out = bytearray()
        self._state = _State()
        self._compress = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION,
            zlib.DEFLATED,
            15,
            8,
            zlib.Z_DEFAULT_STRATEGY,
            zdict=SPDY3_DICTIONARY,
        )
        self._decompress = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
        self._eof = False
        self._eof_reported = False
        self._failed: ProtocolError | None = None
        self.goaway_sent = False
        self.goaway_received = False
        self._next_ping = 1 if client else 2

    # -- parity --------------------------------------------------------------------
    def _is_local_id(self, stream_id: int) -> bool:
        return stream_id % 2 == (1 if self.client else 0)

    @property
    def open_streams(self) -> list[int]:
        return sorted(self._state.streams)

    def is_open(self, stream_id: int) -> bool:
        return stream_id in self._state.streams

    # -- receiving -------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if self._eof:
            if data:
                raise LocalProtocolError("data received after EOF")
            return
        if not data:
            self._eof = True
        else:
            self._buffer += data

    def events(self) -> Iterator[Event]:
        """Parse every complete frame buffered so far."""
        if self._failed is not None:
            raise self._failed
        while True:
            event = self._next_frame()
            if event is None:
                break
            if not isinstance(event, _Skip):
                yield event
        if self._eof and not self._eof_reported:
            self._eof_reported = True
            yield ConnectionClosed()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _fail(self, message: str, status: GoAwayStatus = GoAwayStatus.PROTOCOL_ERROR) -> NoReturn:
        if not self.goaway_sent:
            self._out += self._goaway_bytes(self._state.last_peer_stream, status)
            self.goaway_sent = True
        self._failed = ProtocolError(message, status)
        raise self._failed

    def _next_frame(self) -> Event | _Skip | None:
        buf = self._buffer
        if len(buf) < 8:
            return None
        word, flags_len = struct.unpack_from(">II", buf, 0)
        flags, length = flags_len >> 24, flags_len & MAX_FRAME_LENGTH
        if len(buf) < 8 + length:
            return None
        payload = bytes(buf[8 : 8 + length])
        del buf[: 8 + length]
        if word & 0x80000000:
            version, ftype = (word >> 16) & 0x7FFF, word & 0xFFFF
            if version != VERSION:
                self._fail(f"control frame of SPDY version {version}, expected {VERSION}")
            return self._control(ftype, flags, payload)
        return self._data(word & MAX_STREAM_ID, flags, payload)

    def _headers(self, block: bytes) -> Headers:
        try:
            raw = self._decompress.decompress(block, MAX_HEADER_BYTES)
        except zlib.error as e:
            self._fail(f"header block does not decompress: {e}")
        if self._decompress.unconsumed_tail:
            self._fail("header block larger than 1 MiB")
        try:
            return decode_header_block(raw)
        except ProtocolError as e:
            self._fail(str(e))

    def _control(self, ftype: int, flags: int, p: bytes) -> Event | _Skip:
        st = self._state
        if ftype == FrameType.SYN_STREAM:
            if len(p) < 10:
                self._fail("SYN_STREAM shorter than 10 bytes")
            sid, assoc, prio, slot = struct.unpack_from(">IIBB", p, 0)
            sid &= MAX_STREAM_ID
            headers = self._headers(p[10:])
            if sid == 0 or self._is_local_id(sid):
                self._fail(f"SYN_STREAM with stream id {sid} of the wrong parity")
            if sid <= st.last_peer_stream:
                self._queue_rst(sid, RstStatus.PROTOCOL_ERROR)
                return _SKIP
            if self.goaway_sent:
                st.last_peer_stream = sid
                self._queue_rst(sid, RstStatus.REFUSED_STREAM)
                return _SKIP
            st.last_peer_stream = sid
            fin, uni = bool(flags & FLAG_FIN), bool(flags & FLAG_UNIDIRECTIONAL)
            st.streams[sid] = self._new_stream(local_closed=uni, remote_closed=fin)
            self._forget_if_done(sid)
            return SynStream(sid, headers, assoc & MAX_STREAM_ID, prio >> 5, slot, fin, uni)
        if ftype == FrameType.SYN_REPLY:
            if len(p) < 4:
                self._fail("SYN_REPLY shorter than 4 bytes")
            sid = struct.unpack_from(">I", p, 0)[0] & MAX_STREAM_ID
            headers = self._headers(p[4:])
            stream = st.streams.get(sid)
            if stream is None or not self._is_local_id(sid):
                if sid not in st.reset:
                    self._queue_rst(sid, RstStatus.INVALID_STREAM)
                return _SKIP
            if stream.replied:
                self._queue_rst(sid, RstStatus.STREAM_IN_USE)
                self._drop(sid)
                return _SKIP
            stream.replied = True
            fin = bool(flags & FLAG_FIN)
            if fin:
                stream.remote_closed = True
                self._forget_if_done(sid)
            return SynReply(sid, headers, fin)
        if ftype == FrameType.RST_STREAM:
            if len(p) != 8:
                self._fail("RST_STREAM is not 8 bytes")
            sid, status = struct.unpack(">II", p)
            sid &= MAX_STREAM_ID
            st.streams.pop(sid, None)
            return RstStream(sid, status)
        if ftype == FrameType.SETTINGS:
            if len(p) < 4:
                self._fail("SETTINGS shorter than 4 bytes")
            (count,) = struct.unpack_from(">I", p, 0)
            if len(p) != 4 + 8 * count:
                self._fail("SETTINGS length does not match its entry count")
            entries = []
            for i in range(count):
                flags_id, value = struct.unpack_from(">II", p, 4 + 8 * i)
                entries.append((flags_id >> 24, flags_id & 0xFFFFFF, value))
                if flags_id & 0xFFFFFF == SETTINGS_INITIAL_WINDOW_SIZE:
                    self._peer_initial_window(value)
            self.peer_keeps_windows = True
            return Settings(tuple(entries), bool(flags & FLAG_SETTINGS_CLEAR))
        if ftype == FrameType.PING:
            if len(p) != 4:
                self._fail("PING is not 4 bytes")
            (ping_id,) = struct.unpack(">I", p)
            if not self._is_local_id(ping_id):
                # The peer's ping: echo it. Ours coming back is just reported.
                self._out += control_frame(FrameType.PING, 0, p)
            return Ping(ping_id)
        if ftype == FrameType.GOAWAY:
            if len(p) != 8:
                self._fail("GOAWAY is not 8 bytes")
            last, status = struct.unpack(">II", p)
            self.goaway_received = True
            return GoAway(last & MAX_STREAM_ID, status)
        if ftype == FrameType.HEADERS:
            if len(p) < 4:
                self._fail("HEADERS shorter than 4 bytes")
            sid = struct.unpack_from(">I", p, 0)[0] & MAX_STREAM_ID
            headers = self._headers(p[4:])
            stream = st.streams.get(sid)
            if stream is None or stream.remote_closed:
                if sid not in st.reset:
                    self._queue_rst(sid, RstStatus.INVALID_STREAM)
                return _SKIP
            fin = bool(flags & FLAG_FIN)
            if fin:
                stream.remote_closed = True
                self._forget_if_done(sid)
            return HeadersFrame(sid, headers, fin)
        if ftype == FrameType.WINDOW_UPDATE:
            if len(p) != 8:
                self._fail("WINDOW_UPDATE is not 8 bytes")
            sid, delta = struct.unpack(">II", p)
            sid, delta = sid & MAX_STREAM_ID, delta & 0x7FFFFFFF
            self.peer_keeps_windows = True
            if sid == 0:
                try:
                    self._session_send.update(delta)
                except FlowControlError as e:
                    self._fail(f"session {e}")
            elif (stream := st.streams.get(sid)) is not None:
                try:
                    stream.send.update(delta)
                except FlowControlError:
                    # SPDY/3.1 2.6.8: the stream ends; the caller hears of it
                    # as of a reset.
                    self._queue_rst(sid, RstStatus.FLOW_CONTROL_ERROR)
                    self._drop(sid)
                    return RstStream(sid, RstStatus.FLOW_CONTROL_ERROR)
            return WindowUpdate(sid, delta)
        return _SKIP  # unknown control frames are ignored (SPDY/3 section 2.2.1)

    def _data(self, sid: int, flags: int, payload: bytes) -> Event | _Skip:
        st = self._state
        stream = st.streams.get(sid)
        # Every DATA frame counts against the session window; what nobody
        # will read is given back at once.
        if not self._session_recv.received(len(payload)):
            self.peer_overran = True
        if stream is None or stream.remote_closed:
            self._give_back(len(payload))
            if stream is not None:
                self._queue_rst(sid, RstStatus.STREAM_ALREADY_CLOSED)
                self._drop(sid)
            elif sid not in st.reset:
                self._queue_rst(sid, RstStatus.INVALID_STREAM)
            return _SKIP
        if not stream.recv.received(len(payload)):
            self.peer_overran = True
        fin = bool(flags & FLAG_FIN)
        if fin:
            stream.remote_closed = True
            self._forget_if_done(sid)
        return Data(sid, payload, fin)

    def _new_stream(self, *, local_closed: bool, remote_closed: bool) -> _Stream:
        return _Stream(
            RecvWindow(self.window, self.window),
            SendWindow(self._initial_send),
            local_closed=local_closed,
            remote_closed=remote_closed,
        )

    def _peer_initial_window(self, value: int) -> None:
        if value > MAX_WINDOW:
            self._fail("SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
        delta, self._initial_send = value - self._initial_send, value
        for sid, stream in list(self._state.streams.items()):
            try:
                stream.send.update(delta)
            except FlowControlError:
                self._queue_rst(sid, RstStatus.FLOW_CONTROL_ERROR)
                self._drop(sid)

    # -- flow control ------------------------------------------------------------------
    def preface(self) -> bytes:
        """What to send first: our stream window (SETTINGS, which also tells the
        peer we keep windows) and, if larger than the default, the session's."""
        out = self.send(Settings(((0, SETTINGS_INITIAL_WINDOW_SIZE, self.window),)))
        extra = self.session_window - self._session_recv.size
        if extra > 0:
            self._session_recv.size += extra
            self._session_recv.available += extra
            out += self.send(WindowUpdate(0, extra))
        return out

    def send_window(self, stream_id: int) -> int:
        """How many DATA bytes may go on ``stream_id`` now (0: wait for a
        WINDOW_UPDATE). Unlimited while the peer has not shown it keeps windows."""
        stream = self._state.streams.get(stream_id)
        if stream is None:
            return 0
        if not self.peer_keeps_windows:
            return MAX_WINDOW
        return max(0, min(stream.send.available, self._session_send.available))

    def consumed(self, stream_id: int, n: int) -> None:
        """Our consumer read ``n`` bytes of ``stream_id`` (or dropped them, the
        stream being gone): queue the WINDOW_UPDATEs they earn."""
        stream = self._state.streams.get(stream_id)
        if stream is not None and not stream.remote_closed:
            delta = stream.recv.consumed(n)
            if delta:
                self._out += self.send(WindowUpdate(stream_id, delta))
        self._give_back(n)

    def _give_back(self, n: int) -> None:
        """``n`` bytes of the session window, read or dropped."""
        delta = self._session_recv.consumed(n)
        if delta:
            self._out += self.send(WindowUpdate(0, delta))

    def _queue_rst(self, sid: int, status: RstStatus) -> None:
        self._out += control_frame(FrameType.RST_STREAM, 0, struct.pack(">II", sid, status))
        self._state.reset.add(sid)

    def _drop(self, sid: int) -> None:
        self._state.streams.pop(sid, None)
        self._state.reset.add(sid)

    def _forget_if_done(self, sid: int) -> None:
        s = self._state.streams.get(sid)
        if s is not None and s.local_closed and s.remote_closed:
            del self._state.streams[sid]

    # -- sending -----------------------------------------------------------------------
    def next_stream_id(self) -> int:
        last = self._state.last_local_stream
        return last + 2 if last else (1 if self.client else 2)

    def next_ping_id(self) -> int:
        ping_id = self._next_ping
        self._next_ping += 2
        return ping_id

    def _compress_headers(self, headers: Sequence[tuple[str, str]]) -> bytes:
        raw = encode_header_block(headers)
        return self._compress.compress(raw) + self._compress.flush(zlib.Z_SYNC_FLUSH)

    def send(self, event: Event) -> bytes:
        """The bytes for ``event``; raises LocalProtocolError if it is not allowed now."""
        st = self._state
        if isinstance(event, Data):
            stream = self._sendable(event.stream_id)
            if not stream.replied and not self._is_local_id(event.stream_id):
                raise LocalProtocolError(f"DATA on stream {event.stream_id} before SYN_REPLY")
            n = len(event.data)
            if n > self.send_window(event.stream_id):
                raise LocalProtocolError(f"DATA on stream {event.stream_id} beyond its window")
            stream.send.sent(n)
            self._session_send.sent(n)
            out = data_frames(event.stream_id, event.data, event.fin)
            if event.fin:
                stream.local_closed = True
                self._forget_if_done(event.stream_id)
            return out
        if isinstance(event, SynReply):
            stream = self._sendable(event.stream_id)
            if self._is_local_id(event.stream_id) or stream.replied:
                raise LocalProtocolError(f"SYN_REPLY not allowed on stream {event.stream_id}")
            stream.replied = True
            block = self._compress_headers(event.headers)
            if event.fin:
                stream.local_closed = True
                self._forget_if_done(event.stream_id)
            payload = struct.pack(">I", event.stream_id) + block
            return control_frame(FrameType.SYN_REPLY, FLAG_FIN if event.fin else 0, payload)
        if isinstance(event, SynStream):
            sid = event.stream_id
            if not self._is_local_id(sid) or sid <= st.last_local_stream or sid > MAX_STREAM_ID:
                raise LocalProtocolError(f"stream id {sid} is not ours or not increasing")
            if self.goaway_sent or self.goaway_received:
                raise LocalProtocolError("no new streams after GOAWAY")
            st.last_local_stream = sid
            st.streams[sid] = self._new_stream(
                local_closed=event.fin, remote_closed=event.unidirectional
            )
            self._forget_if_done(sid)
            block = self._compress_headers(event.headers)
            flags = (FLAG_FIN if event.fin else 0) | (
                FLAG_UNIDIRECTIONAL if event.unidirectional else 0
            )
            payload = (
                struct.pack(
                    ">IIBB", sid, event.associated_id, (event.priority & 7) << 5, event.slot
                )
                + block
            )
            return control_frame(FrameType.SYN_STREAM, flags, payload)
        if isinstance(event, HeadersFrame):
            stream = self._sendable(event.stream_id)
            block = self._compress_headers(event.headers)
            if event.fin:
                stream.local_closed = True
                self._forget_if_done(event.stream_id)
            payload = struct.pack(">I", event.stream_id) + block
            return control_frame(FrameType.HEADERS, FLAG_FIN if event.fin else 0, payload)
        if isinstance(event, RstStream):
            st.streams.pop(event.stream_id, None)
            st.reset.add(event.stream_id)
            return control_frame(
                FrameType.RST_STREAM, 0, struct.pack(">II", event.stream_id, event.status)
            )
        if isinstance(event, Ping):
            return control_frame(FrameType.PING, 0, struct.pack(">I", event.ping_id))
        if isinstance(event, GoAway):
            self.goaway_sent = True
            return self._goaway_bytes(event.last_good_stream_id, event.status)
        if isinstance(event, Settings):
            body = struct.pack(">I", len(event.entries)) + b"".join(
                struct.pack(">II", (f << 24) | (i & 0xFFFFFF), v) for f, i, v in event.entries
            )
            return control_frame(
                FrameType.SETTINGS, FLAG_SETTINGS_CLEAR if event.clear else 0, body
            )
        if isinstance(event, WindowUpdate):
            if not 0 < event.delta <= MAX_WINDOW:
                raise LocalProtocolError(f"WINDOW_UPDATE delta {event.delta} out of range")
            return control_frame(
                FrameType.WINDOW_UPDATE, 0, struct.pack(">II", event.stream_id, event.delta)
            )
        raise LocalProtocolError(f"cannot send {event!r}")

    def goaway(self, status: GoAwayStatus = GoAwayStatus.OK) -> bytes:
        """GOAWAY naming the last stream the peer opened."""
        return self.send(GoAway(self._state.last_peer_stream, status))

    def _goaway_bytes(self, last: int, status: int) -> bytes:
        return control_frame(FrameType.GOAWAY, 0, struct.pack(">II", last, status))

    def _sendable(self, sid: int) -> _Stream:
        stream = self._state.streams.get(sid)
        if stream is None:
            raise LocalProtocolError(f"stream {sid} is not open")
        if stream.local_closed:
            raise LocalProtocolError(f"stream {sid} is already half-closed by us")
        return stream


class _Skip:
    """A frame fully handled inside the codec (refused, answered or ignored)."""


_SKIP = _Skip()
