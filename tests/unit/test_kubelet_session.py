"""The trio drivers over in-memory streams: SPDY session, WebSocket, HTTP connection."""

from __future__ import annotations

import trio
import trio.testing
import wsproto
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from ak.wire import spdy
from ak.wire.http1_server import HTTPConnection
from ak.wire.spdy_session import SpdySession, StreamReset
from ak.wire.websocket import MAX_OWED, WebSocket, WebSocketClosed


def _preface(event: spdy.Event) -> bool:
    return isinstance(event, spdy.Settings) or (
        isinstance(event, spdy.WindowUpdate) and event.stream_id == 0
    )


async def read_events(stream: trio.abc.Stream, conn: spdy.SpdyConnection) -> list[spdy.Event]:
    """The next events, less the session's preface (its windows, tested on their own)."""
    while True:
        conn.receive_data(bytes(await stream.receive_some(65536)))
        events = [e for e in conn.events() if not _preface(e)]
        if events:
            return events


async def test_spdy_session_accepts_streams_echoes_pings_and_closes() -> None:
    left, right = trio.testing.memory_stream_pair()
    client = spdy.SpdyConnection(client=True)
    hello = client.send(spdy.SynStream(1, (("streamtype", "stdin"),)))
    session = SpdySession(right, initial=hello)  # bytes that came with the upgrade request
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        stream = await session.incoming.receive()
        assert (stream.stream_id, stream.stream_type) == (1, "stdin")
        assert await read_events(left, client) == [spdy.SynReply(1)]

        await left.send_all(client.send(spdy.Data(1, b"abc")) + client.send(spdy.Ping(1)))
        assert await stream.receive_some() == b"abc"
        assert await read_events(left, client) == [spdy.Ping(1)]

        await stream.send_all(b"out")
        assert await read_events(left, client) == [spdy.Data(1, b"out")]
        await left.send_all(client.send(spdy.Data(1, b"", fin=True)))
        assert await stream.receive_some() == b""

        await session.aclose()
        events = await read_events(left, client)
        assert events[0] == spdy.RstStream(1, spdy.RstStatus.CANCEL)
        assert events[-1] == spdy.GoAway(1, spdy.GoAwayStatus.OK)
        nursery.cancel_scope.cancel()


async def test_spdy_stream_reset_by_peer_and_connection_loss() -> None:
    left, right = trio.testing.memory_stream_pair()
    client = spdy.SpdyConnection(client=True)
    session = SpdySession(right)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        await left.send_all(
            client.send(spdy.SynStream(1, (("streamtype", "data"),)))
            + client.send(spdy.SynStream(3, (("streamtype", "error"),)))
        )
        first = await session.incoming.receive()
        second = await session.incoming.receive()
        await left.send_all(client.send(spdy.RstStream(1)))
        try:
            await first.receive_some()
            raise AssertionError("reset expected")
        except StreamReset:
            pass
        await left.aclose()  # the client vanishes
        await session.closed.wait()
        try:
            await second.receive_some()
            raise AssertionError("reset expected")
        except StreamReset:
            pass
        nursery.cancel_scope.cancel()


async def test_spdy_protocol_error_sends_goaway() -> None:
    left, right = trio.testing.memory_stream_pair()
    session = SpdySession(right)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session.run)
        await left.send_all(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")  # SPDY/2 PING
        client = spdy.SpdyConnection(client=True)
        assert await read_events(left, client) == [spdy.GoAway(0, spdy.GoAwayStatus.PROTOCOL_ERROR)]
        await session.closed.wait()
        assert session.error is not None
        nursery.cancel_scope.cancel()


async def test_websocket_messages_pings_and_close() -> None:
    left, right = trio.testing.memory_stream_pair()
    peer = Connection(ConnectionType.CLIENT)
    ws = WebSocket(right, Connection(ConnectionType.SERVER), "v4.channel.k8s.io")

    async def peer_events() -> list[wsproto.events.Event]:
        peer.receive_data(bytes(await left.receive_some(65536)))
        return list(peer.events())

    # a fragmented message, a ping in between
    await left.send_all(
        peer.send(BytesMessage(data=b"\x01he", message_finished=False))
        + peer.send(Ping(payload=b"p"))
        + peer.send(BytesMessage(data=b"llo", message_finished=True))
        + peer.send(TextMessage(data="1aGk="))
    )
    assert await ws.receive() == b"\x01hello"
    assert await peer_events() == [Pong(payload=b"p")]
    assert await ws.receive() == "1aGk="
    await ws.send(b"\x02x")
    events = await peer_events()
    assert isinstance(events[0], BytesMessage) and events[0].data == b"\x02x"
    await left.send_all(peer.send(CloseConnection(code=1000)))
    try:
        await ws.receive()
        raise AssertionError("closed expected")
    except WebSocketClosed as e:
        assert e.code == 1000


async def test_websocket_peer_that_pings_and_reads_nothing_is_not_read_either() -> None:
    left, right = trio.testing.lockstep_stream_pair()
    peer = Connection(ConnectionType.CLIENT)
    ws = WebSocket(right, Connection(ConnectionType.SERVER), "v4.channel.k8s.io")
    batch = b"".join(peer.send(Ping(payload=b"p" * 100)) for _ in range(100))  # ~10 KB
    sent = 0
    async with trio.open_nursery() as nursery:

        async def flood() -> None:
            nonlocal sent
            for _ in range(200):
                await left.send_all(batch)
                sent += len(batch)

        async def sender_stuck() -> None:
            await ws.send(b"\x01" + b"x" * 65536)  # the peer never reads it

        async def receive() -> None:
            await ws.receive()

        nursery.start_soon(sender_stuck)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(receive)
        nursery.start_soon(flood)
        await trio.testing.wait_all_tasks_blocked()
        assert sent <= MAX_OWED + 2 * 65536 + len(batch)
        nursery.cancel_scope.cancel()


async def test_http_keep_alive_and_chunked_streaming() -> None:
    left, right = trio.testing.memory_stream_pair()
    conn = HTTPConnection(right)
    await left.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    request = await conn.next_request()
    assert request is not None and (request.method, request.target) == ("GET", "/healthz")
    await conn.respond(200, b"ok", "text/plain")
    assert (await left.receive_some(65536)).endswith(b"\r\n\r\nok")
    assert conn.reusable

    await left.send_all(b"GET /containerLogs/a/b/c?follow=true HTTP/1.1\r\nHost: x\r\n\r\n")
    request = await conn.next_request()
    assert request is not None
    async with conn.streaming() as out:
        await out.send(b"line 1\n")
        head = await left.receive_some(65536)
        assert b"transfer-encoding: chunked" in head.lower() and head.endswith(b"7\r\nline 1\n\r\n")
    assert await left.receive_some(65536) == b"0\r\n\r\n"


async def test_streaming_stops_when_the_client_leaves() -> None:
    left, right = trio.testing.memory_stream_pair()
    conn = HTTPConnection(right)
    await left.send_all(b"GET /containerLogs/a/b/c?follow=true HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await conn.next_request() is not None
    gone = False
    try:
        async with conn.streaming() as out:
            await out.send(b"x")
            await left.aclose()
            await trio.sleep_forever()  # a follow with nothing new: cancelled, not stuck
    except Exception as e:
        gone = type(e).__name__ == "ConnectionDone"
    assert gone


async def test_streaming_does_not_buffer_what_a_client_sends_meanwhile() -> None:
    """During a log stream the client may send a goodbye or a pipelined head;
    a client that keeps sending is dropped, not buffered."""
    left, right = trio.testing.memory_stream_pair()
    conn = HTTPConnection(right)
    await left.send_all(b"GET /containerLogs/a/b/c?follow=true HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await conn.next_request() is not None
    gone = False
    try:
        async with conn.streaming() as out:
            await out.send(b"x")
            for _ in range(100):  # 6.4 MB of junk
                await left.send_all(b"j" * 65536)
            await trio.testing.wait_all_tasks_blocked()
    except Exception as e:
        gone = type(e).__name__ == "ConnectionDone"
    assert gone


async def test_upgrade_hands_over_the_raw_stream() -> None:
    left, right = trio.testing.memory_stream_pair()
    conn = HTTPConnection(right)
    await left.send_all(
        b"POST /exec/a/b/c?command=ls&output=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
        b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
        b"Content-Length: 0\r\n\r\n\x80\x03\x00\x06"
    )
    request = await conn.next_request()
    assert request is not None and request.upgrade == "spdy/3.1"
    assert request.header_values("x-stream-protocol-version") == ["v4.channel.k8s.io"]
    stream, trailing = await conn.switch_protocols([("upgrade", "SPDY/3.1")])
    assert stream is right and trailing == b"\x80\x03\x00\x06"
    assert (await left.receive_some(65536)).startswith(b"HTTP/1.1 101 ")


async def test_spdy_client_session_opens_streams_against_a_server_session() -> None:
    """What the pod proxy does with the remote kubelet: our streams, their replies,
    bytes both ways, half-closes both ways, and a refused stream."""
    left, right = trio.testing.memory_stream_pair()
    client = SpdySession(left, client=True)
    server = SpdySession(right)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        nursery.start_soon(server.run)
        error = await client.open_stream((("streamtype", "error"), ("requestid", "1")))
        data = await client.open_stream((("streamtype", "data"), ("requestid", "1")))
        assert (error.stream_id, data.stream_id) == (1, 3)
        theirs = [await server.incoming.receive(), await server.incoming.receive()]
        assert [s.stream_type for s in theirs] == ["error", "data"]

        await data.send_all(b"request")
        await data.send_eof()
        assert await theirs[1].receive_some() == b"request"
        assert await theirs[1].receive_some() == b""  # our half-close arrived
        await theirs[1].send_all(b"answer")
        await theirs[1].send_eof()
        assert await data.receive_some() == b"answer"
        assert await data.receive_some() == b""
        assert data.stream_id not in client.streams  # both sides done: forgotten

        # The server accepts every stream, then resets one it does not want
        # (as spdystream and the kubelet do): the reset reaches our reader.
        refused = await client.open_stream((("streamtype", "bogus"),))
        await (await server.incoming.receive()).reset(spdy.RstStatus.REFUSED_STREAM)
        try:
            await refused.receive_some()
        except StreamReset:
            pass
        else:
            raise AssertionError("a reset stream must raise StreamReset")

        await server.aclose()
        with trio.fail_after(5):
            await client.closed.wait()
        try:
            await client.open_stream((("streamtype", "data"),))
        except StreamReset:
            pass
        else:
            raise AssertionError("no stream opens on an ended session")
        nursery.cancel_scope.cancel()


async def test_spdy_client_stream_refused_before_any_reply() -> None:
    left, right = trio.testing.memory_stream_pair()
    client = SpdySession(left, client=True)
    peer = spdy.SpdyConnection()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)

        async def refuse() -> None:
            (syn,) = await read_events(right, peer)
            assert isinstance(syn, spdy.SynStream)
            await right.send_all(
                peer.send(spdy.RstStream(syn.stream_id, spdy.RstStatus.REFUSED_STREAM))
            )

        nursery.start_soon(refuse)
        try:
            await client.open_stream((("streamtype", "data"),))
        except StreamReset as e:
            assert "refused" in str(e)
        else:
            raise AssertionError("a stream reset before its reply must not open")
        nursery.cancel_scope.cancel()
