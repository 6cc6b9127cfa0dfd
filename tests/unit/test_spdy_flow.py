"""SPDY/3.1 flow control: the window arithmetic (pure) and a bounded session (trio).

Backpressure is a property of memory, not of time: each session test lets a
fast sender run against a reader that does not read until every task is
blocked, then checks how much was sent and buffered, then reads it all and
checks it arrived whole and in order.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
import trio
import trio.testing

from ak.wire import spdy
from ak.wire.spdy.flow import DEFAULT_WINDOW, MAX_WINDOW, RecvWindow
from ak.wire.spdy_session import MAX_OWED, SpdySession, SpdyStream, StreamReset


def feed(conn: spdy.SpdyConnection, data: bytes) -> list[spdy.Event]:
    conn.receive_data(data)
    return list(conn.events())


def window_updates(data: bytes) -> list[tuple[int, int]]:
    """(stream, delta) of every WINDOW_UPDATE in ``data`` (nothing else expected)."""
    out = []
    while data:
        word, flags_len = struct.unpack_from(">II", data)
        length = flags_len & 0xFFFFFF
        assert word == 0x80000000 | (3 << 16) | spdy.FrameType.WINDOW_UPDATE, data
        out.append(struct.unpack_from(">II", data, 8))
        data = data[8 + length :]
    return out


def opened(
    window: int = DEFAULT_WINDOW, peer_window: int | None = None
) -> tuple[spdy.SpdyConnection, spdy.SpdyConnection, int]:
    """A client and a server with stream 1 open and replied; the server
    announced ``peer_window`` (SETTINGS) if given."""
    client = spdy.SpdyConnection(client=True)
    server = spdy.SpdyConnection(window=window)
    feed(server, client.send(spdy.SynStream(1)))
    reply = server.send(spdy.SynReply(1))
    if peer_window is not None:
        reply = server.send(spdy.Settings(((0, 7, peer_window),))) + reply
    feed(client, reply)
    return client, server, 1


# --- the arithmetic ------------------------------------------------------------------


def test_recv_window_gives_back_only_what_was_read_half_a_window_at_a_time() -> None:
    w = RecvWindow(1000, 1000)
    assert w.received(700)
    assert w.consumed(400) == 0  # under half the window owed: no update yet
    assert w.consumed(100) == 500
    assert (w.available, w.owed) == (800, 0)
    assert not w.received(900)  # past the window: the peer overran it


def test_consumed_bytes_earn_stream_and_session_updates() -> None:
    client, server, sid = opened(window=1000)
    events = feed(server, client.send(spdy.Data(sid, b"x" * 800)))
    assert events == [spdy.Data(sid, b"x" * 800)]
    assert server.data_to_send() == b""  # received is not read: nothing given back
    server.consumed(sid, 499)
    assert server.data_to_send() == b""
    server.consumed(sid, 301)
    assert window_updates(server.data_to_send()) == [(sid, 800)]
    # The session window (64 KiB) is given back once half of it is read.
    feed(server, client.send(spdy.Data(sid, b"y" * 40000)))
    server.consumed(sid, 40000)
    assert window_updates(server.data_to_send()) == [(sid, 40000), (0, 40800)]
    assert server.peer_overran  # 40000 bytes on a 1000-byte window, as spdystream would


def test_data_nobody_will_read_goes_back_to_the_session_window() -> None:
    client, server, sid = opened()
    feed(server, client.send(spdy.Data(sid, b"a", fin=True)))
    raw = struct.pack(">II", sid, 40000) + b"z" * 40000  # DATA after FIN
    assert feed(server, raw) == []
    out = server.data_to_send()
    update, rst = out[:16], out[16:]
    assert window_updates(update) == [(0, 40000)]
    assert struct.unpack(">II", rst[8:]) == (sid, spdy.RstStatus.STREAM_ALREADY_CLOSED)


def test_peer_window_is_kept_once_the_peer_announced_it() -> None:
    client, server, sid = opened(peer_window=1000)
    assert client.peer_keeps_windows
    assert client.send_window(sid) == 1000
    client.send(spdy.Data(sid, b"a" * 600))
    assert client.send_window(sid) == 400
    with pytest.raises(spdy.LocalProtocolError):
        client.send(spdy.Data(sid, b"b" * 401))
    feed(client, server.send(spdy.WindowUpdate(sid, 600)))
    assert client.send_window(sid) == 1000
    # A new initial window moves open streams by the difference, even below zero.
    feed(client, server.send(spdy.Settings(((0, 7, 100),))))
    assert client.send_window(sid) == 100


def test_session_window_caps_every_stream() -> None:
    client, server, sid = opened(peer_window=MAX_WINDOW)
    assert client.send_window(sid) == DEFAULT_WINDOW  # the session's, until updated
    client.send(spdy.Data(sid, b"a" * DEFAULT_WINDOW))
    assert client.send_window(sid) == 0
    feed(client, server.send(spdy.WindowUpdate(0, 10)))
    assert client.send_window(sid) == 10


def test_a_peer_that_never_speaks_of_windows_is_not_waited_for() -> None:
    """spdystream: no SETTINGS, no WINDOW_UPDATE, and it ignores ours; it paces
    us through TCP, so waiting for a window it will never open would hang."""
    client, _, sid = opened()
    assert not client.peer_keeps_windows
    client.send(spdy.Data(sid, b"a" * (4 * DEFAULT_WINDOW)))
    assert client.send_window(sid) == MAX_WINDOW


def test_window_overflow_resets_the_stream_or_ends_the_session() -> None:
    client, server, sid = opened(peer_window=MAX_WINDOW)
    events = feed(client, server.send(spdy.WindowUpdate(sid, 1)))
    assert events == [spdy.RstStream(sid, spdy.RstStatus.FLOW_CONTROL_ERROR)]
    assert not client.is_open(sid)
    assert struct.unpack(">II", client.data_to_send()[8:]) == (
        sid,
        spdy.RstStatus.FLOW_CONTROL_ERROR,
    )
    with pytest.raises(spdy.ProtocolError):
        feed(client, server.send(spdy.WindowUpdate(0, MAX_WINDOW)))


def test_preface_announces_both_windows() -> None:
    server = spdy.SpdyConnection(window=4096, session_window=1 << 20)
    client = spdy.SpdyConnection(client=True)
    assert feed(client, server.preface()) == [
        spdy.Settings(((0, 7, 4096),)),
        spdy.WindowUpdate(0, (1 << 20) - DEFAULT_WINDOW),
    ]
    assert client.peer_keeps_windows


# --- a bounded session -----------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 16 * 1024  # 4 MiB, every byte's place visible


async def _read_all(stream: SpdyStream) -> bytes:
    out = bytearray()
    while chunk := await stream.receive_some():
        out += chunk
    return bytes(out)


async def test_sender_stops_after_the_window_of_a_reader_that_does_not_read() -> None:
    """AK at both ends (windows kept both ways), over an unbounded in-memory
    pipe: only the window can stop the sender."""
    left, right = trio.testing.memory_stream_pair()
    window = 64 * 1024
    client = SpdySession(left, client=True, window=window, session_window=4 * window)
    server = SpdySession(right, window=window, session_window=4 * window)
    sent = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        nursery.start_soon(server.run)
        ours = await client.open_stream((("streamtype", "data"),))
        theirs = await server.incoming.receive()

        async def send() -> None:
            nonlocal sent
            for i in range(0, len(PAYLOAD), 16384):
                await theirs.send_all(PAYLOAD[i : i + 16384])
                sent += 16384
            await theirs.send_eof()

        nursery.start_soon(send)
        await trio.testing.wait_all_tasks_blocked()
        assert sent <= window  # blocked: the window is spent and nobody reads
        assert ours.buffered <= window
        assert hashlib.sha256(await _read_all(ours)).digest() == hashlib.sha256(PAYLOAD).digest()
        assert sent == len(PAYLOAD)
        nursery.cancel_scope.cancel()


async def test_a_peer_that_ignores_windows_is_stopped_by_not_reading_it() -> None:
    """spdystream sends regardless of our windows: the session stops reading
    the transport while a stream is full, so the peer blocks on TCP (here a
    lockstep pipe, which blocks the writer until every byte is read)."""
    left, right = trio.testing.lockstep_stream_pair()
    window = 64 * 1024
    session = SpdySession(right, window=window)
    peer = spdy.SpdyConnection(client=True)
    frame = 16384
    sent = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)

        async def drain() -> None:  # the peer reads what we write, as spdystream does
            while await left.receive_some(65536):
                pass

        async def send() -> None:
            nonlocal sent
            await left.send_all(peer.send(spdy.SynStream(1, (("streamtype", "data"),))))
            for i in range(0, len(PAYLOAD), frame):
                await left.send_all(peer.send(spdy.Data(1, PAYLOAD[i : i + frame])))
                sent += frame
            await left.send_all(peer.send(spdy.Data(1, b"", fin=True)))

        nursery.start_soon(drain)
        nursery.start_soon(send)
        stream = await session.incoming.receive()
        await trio.testing.wait_all_tasks_blocked()
        assert stream.buffered <= window
        # The window, the frame the reader holds, and the one in the pipe.
        assert sent <= window + 2 * frame
        assert session.conn.peer_overran  # it did not stop at the window: TCP stopped it
        assert session.stalled  # what a caller looks at before adding streams to it
        data = await _read_all(stream)
        assert not session.stalled
        assert hashlib.sha256(data).digest() == hashlib.sha256(PAYLOAD).digest()
        assert sent == len(PAYLOAD)
        nursery.cancel_scope.cancel()


async def test_a_reset_stream_frees_a_blocked_reader_and_sender() -> None:
    left, right = trio.testing.memory_stream_pair()
    client = SpdySession(left, client=True, window=1024)
    server = SpdySession(right, window=1024)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        nursery.start_soon(server.run)
        ours = await client.open_stream((("streamtype", "data"),))
        other = await client.open_stream((("streamtype", "data"),))
        theirs = await server.incoming.receive()
        theirs_other = await server.incoming.receive()
        failed: list[Exception] = []

        async def send() -> None:
            try:
                await theirs.send_all(b"x" * 100_000)
            except StreamReset as e:
                failed.append(e)

        nursery.start_soon(send)
        await trio.testing.wait_all_tasks_blocked()
        await ours.reset()  # the reader will never read: the sender must not wait forever
        await trio.testing.wait_all_tasks_blocked()
        assert failed
        # The session is still good for the other stream.
        await theirs_other.send_all(b"still here")
        assert await other.receive_some() == b"still here"
        nursery.cancel_scope.cancel()


async def test_a_peer_that_floods_pings_and_reads_nothing_is_not_read_either() -> None:
    left, right = trio.testing.lockstep_stream_pair()
    session = SpdySession(right)
    peer = spdy.SpdyConnection(client=True)
    batch = b"".join(peer.send(spdy.Ping(2 * i + 1)) for i in range(1000))  # 12 KB
    sent = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)

        async def flood() -> None:
            nonlocal sent
            for _ in range(200):
                await left.send_all(batch)
                sent += len(batch)

        nursery.start_soon(flood)
        await trio.testing.wait_all_tasks_blocked()
        # Echoes are as long as pings: what the session holds is what it read.
        assert sent <= MAX_OWED + 2 * 65536 + len(batch)
        nursery.cancel_scope.cancel()
