"""AK's HTTP/1.1 engine (``ak/wire/http1.py``) against scripted HTTP peers on
loopback: framing (Content-Length, chunked, gzip, read to close), keep-alive
reuse, stale connections, timeouts and cancellation, size caps, retries,
streams and upgrades. Against a real API server it runs in every cluster test
(it carries all of AK's requests).

The tests under "Found" reproduce the findings of issue #26 against the
hand-written parser this engine replaced (``ak/kube/http11.py``): each failed
there."""

from __future__ import annotations

import gzip
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import httpx
import pytest
import trio

from ak.wire.http1 import Engine as Pool
from ak.wire.http1 import Refused, TransportError
from ak.wire.http1_parse import MAX_BODY, MAX_HEAD
from ak.wire.httpx_transport import EngineTransport


class Peer:
    """A loopback server; ``answer(conn_index, request_index)`` gives the bytes
    to send for each request (None: close without answering)."""

    def __init__(self, answer: Callable[[int, int], bytes | None], close_after: bool) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = 0
        self.both_closed = trio.Event()

    async def serve(self, stream: trio.SocketStream) -> None:
        index = self.connections
        self.connections += 1
        buf = b""
        served = 0
        async with stream:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await stream.receive_some(65536)
                    if not data:
                        self.closed_by_client += 1
                        if self.closed_by_client == 2:
                            self.both_closed.set()
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += await stream.receive_some(65536)
                self.requests.append(head + b"\r\n\r\n" + buf[:length])
                buf = buf[length:]
                out = self.answer(index, served)
                served += 1
                if out is None:
                    return
                await stream.send_all(out)
                if self.close_after:
                    return


@asynccontextmanager
async def peer(
    answer: Callable[[int, int], bytes | None],
    close_after: bool = False,
    max_head: int = MAX_HEAD,
    max_body: int = MAX_BODY,
) -> AsyncIterator[tuple[Peer, Pool]]:
    p = Peer(answer, close_after)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, p.serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        pool = Pool(
            f"http://127.0.0.1:{port}",
            ssl.create_default_context(),
            max_idle=4,
            max_head=max_head,
            max_body=max_body,
        )
        try:
            yield p, pool
        finally:
            await pool.aclose()
            nursery.cancel_scope.cancel()


def ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def get(pool: Pool, timeout: float = 5) -> bytes:  # noqa: ASYNC109
    resp = await pool.request("GET", "/api/v1/pods", {"Accept": "application/json"}, None, timeout)
    assert resp.status_code == 200
    return resp.content


async def test_requests_share_a_keep_alive_connection() -> None:
    async with peer(lambda c, r: ok(f'{{"n":{r}}}'.encode())) as (p, pool):
        assert [await get(pool) for _ in range(3)] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        assert p.connections == 1
        resp = await pool.request("PATCH", "/x", {}, b'{"a":1}', 5)
        assert resp.status_code == 200
        assert p.requests[-1].startswith(b"PATCH /x HTTP/1.1\r\n")
        assert b"Content-Length: 7\r\n" in p.requests[-1]
        assert p.requests[-1].endswith(b'\r\n\r\n{"a":1}')


async def test_head_answers_have_no_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    async with peer(lambda c, r: head if c == 0 else ok()) as (p, pool):
        resp = await pool.request("HEAD", "/x", {}, None, 5)
        assert (resp.status_code, resp.content) == (200, b"")
        # llhttp cannot be told to skip the body a HEAD answer announces: not reused.
        assert await get(pool) == b'{"ok":true}'
        assert p.connections == 2


async def test_chunked_gzip_and_trailers() -> None:
    body = b'{"items":[' + b",".join(b'{"i":%d}' % i for i in range(5000)) + b"]}"
    packed = gzip.compress(body)
    chunks = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(packed[i : i + 1000]), packed[i : i + 1000])
        for i in range(0, len(packed), 1000)
    )
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
        + chunks
        + b"0\r\nX-Trailer: t\r\n\r\n"
    )
    async with peer(lambda c, r: answer) as (p, pool):
        assert await get(pool) == body
        assert await get(pool) == body  # the trailer was consumed: the connection is clean
        assert p.connections == 1


async def test_connection_close_and_unframed_bodies_are_not_reused() -> None:
    def answer(c: int, r: int) -> bytes | None:
        return ok(extra="Connection: close\r\n")

    async with peer(answer) as (p, pool):
        await get(pool)
        await get(pool)
        assert p.connections == 2

    # No length at all: the body runs to the close.
    unframed = b"HTTP/1.1 200 OK\r\n\r\nuntil-eof"
    async with peer(lambda c, r: unframed, close_after=True) as (p, pool):
        assert await get(pool) == b"until-eof"
        assert await get(pool) == b"until-eof"
        assert p.connections == 2


async def test_a_reused_connection_the_server_dropped_is_retried_once() -> None:
    # Connection 0 answers its first request and drops the second without a
    # word (a server's idle close racing our write); connection 1 answers.
    def answer(c: int, r: int) -> bytes | None:
        return None if (c, r) == (0, 1) else ok(b'{"c":%d}' % c)

    async with peer(answer) as (p, pool):
        assert await get(pool) == b'{"c":0}'
        assert await get(pool) == b'{"c":1}'
        assert p.connections == 2


async def test_a_new_connection_dropped_is_an_error_not_a_loop() -> None:
    async with peer(lambda c, r: None) as (p, pool):
        with pytest.raises(TransportError, match="before responding"):
            await get(pool)
        assert p.connections == 1


async def test_truncated_and_malformed_responses() -> None:
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    async with peer(lambda c, r: short, close_after=True) as (_, pool):
        with pytest.raises(TransportError, match="in the middle of a response"):
            await get(pool)
        assert pool._idle == []
    async with peer(lambda c, r: b"SPDY/3 nonsense\r\n\r\n") as (_, pool):
        with pytest.raises(TransportError, match="malformed response"):
            await get(pool)


async def test_timeout_and_cancellation_close_the_connection() -> None:
    async with peer(lambda c, r: b"") as (p, pool):  # reads, never answers
        with pytest.raises(TransportError, match=r"no response within 0\.2 s"):
            await get(pool, timeout=0.2)
        with trio.move_on_after(0.2):
            await get(pool)
        with trio.fail_after(5):
            await p.both_closed.wait()
        assert pool._idle == []
        assert p.connections == 2


async def test_unreachable_server() -> None:
    with trio.socket.socket() as s:
        await s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        pool = Pool(f"http://127.0.0.1:{port}", ssl.create_default_context())
        with pytest.raises(TransportError, match="cannot connect"):
            await get(pool)


# -- Found (issue #26): each of these failed on the hand-written parser ----------------


async def test_a_negative_content_length_is_refused_and_the_connection_dropped() -> None:
    # The hand parser read 3 bytes and pooled the connection with "def" unread:
    # the next request read it as the start of its answer.
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabcdef"
    async with peer(lambda c, r: bad if (c, r) == (0, 0) else ok()) as (p, pool):
        with pytest.raises(TransportError, match="Content-Length"):
            await get(pool)
        assert await get(pool) == b'{"ok":true}'
        assert p.connections == 2


async def test_surplus_bytes_after_a_response_are_not_read_as_the_next_one() -> None:
    def answer(c: int, r: int) -> bytes:
        body = b'{"c":%d,"r":%d}' % (c, r)
        # One write: the answer, then bytes no request asked for.
        return ok(body) + ok(b'{"forged":true}') if (c, r) == (0, 0) else ok(body)

    async with peer(answer) as (p, pool):
        assert await get(pool) == b'{"c":0,"r":0}'
        assert await get(pool) == b'{"c":1,"r":0}'  # a new connection, not the forged answer
        assert p.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    ],
    ids=["plus-length", "0x-chunk-size"],
)
async def test_lengths_outside_the_grammar_are_refused(answer: bytes) -> None:
    async with peer(lambda c, r: answer) as (_, pool):
        with pytest.raises(TransportError, match="malformed response"):
            await get(pool)
        assert pool._idle == []


async def test_an_http10_answer_without_keep_alive_closes_the_connection() -> None:
    http10 = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    async with peer(lambda c, r: http10) as (p, pool):
        assert await get(pool) == b"{}"
        assert await get(pool) == b"{}"
        assert p.connections == 2  # the hand parser kept it alive: 1


async def test_a_gzip_answer_inflating_past_the_body_cap_is_refused() -> None:
    cap = 1024 * 1024
    bomb = gzip.compress(b"\0" * (4 * cap))  # 4 KiB on the wire
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(bomb),
        bomb,
    )
    fits = gzip.compress(b"\0" * cap)
    at_cap = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(fits),
        fits,
    )
    async with peer(lambda c, r: answer if c == 0 else at_cap, max_body=cap) as (_, pool):
        with pytest.raises(TransportError, match=r"over the 1 MiB cap \(decoded\)"):
            await get(pool)
        assert len(await get(pool)) == cap  # exactly the cap is fine


async def test_a_body_over_the_cap_on_the_wire_is_refused() -> None:
    big = ok(b"x" * 5000)
    async with peer(lambda c, r: big, max_body=4096) as (_, pool):
        with pytest.raises(TransportError, match="over the 4 KiB cap"):
            await get(pool)


async def test_a_head_over_the_cap_is_refused() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: %s\r\n" % (b"p" * 3000) * 3
    async with peer(lambda c, r: head + b"Content-Length: 0\r\n\r\n", max_head=4096) as (_, pool):
        with pytest.raises(TransportError, match="response head over the 4 KiB cap"):
            await get(pool)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_writes_are_not_sent_again_when_a_reused_connection_closes(method: str) -> None:
    # Connection 0 answers a GET, then takes the write and closes without a
    # word: it may have applied it. The hand client sent it again on a new one.
    def answer(c: int, r: int) -> bytes | None:
        return None if (c, r) == (0, 1) else ok()

    async with peer(answer) as (p, pool):
        await get(pool)
        with pytest.raises(TransportError, match=f"{method} is not sent again"):
            await pool.request(method, "/x", {}, b"{}", 5)
        assert [r.split(b" ", 1)[0] for r in p.requests] == [b"GET", method.encode()]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_idempotent_writes_are_sent_again_on_a_new_connection(method: str) -> None:
    def answer(c: int, r: int) -> bytes | None:
        return None if (c, r) == (0, 1) else ok()

    async with peer(answer) as (p, pool):
        await get(pool)
        resp = await pool.request(method, "/x", {}, b"{}", 5)
        assert resp.status_code == 200
        assert p.connections == 2


# -- streams and upgrades ------------------------------------------------------------


async def test_a_stream_is_read_piece_by_piece_and_pooled_when_whole() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"6\r\nline%d\n\r\n" % i for i in range(3)
    )
    answers = [chunked + b"0\r\n\r\n", ok()]
    async with peer(lambda c, r: answers[r]) as (p, pool):
        async with pool.stream("GET", "/w", {}, read_timeout=5) as resp:
            assert resp.status_code == 200
            assert (
                b"".join([piece async for piece in resp.iter_bytes()]) == b"line0\nline1\nline2\n"
            )
        assert await get(pool) == b'{"ok":true}'
        assert p.connections == 1


async def test_a_stream_left_early_or_stalled_closes_its_connection() -> None:
    endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    async with peer(lambda c, r: endless) as (p, pool):
        async with pool.stream("GET", "/w", {}, read_timeout=0.2) as resp:
            with pytest.raises(TransportError, match=r"nothing received for 0\.2 s"):
                async for _ in resp.iter_bytes():
                    pass
        async with pool.stream("GET", "/w", {}, read_timeout=5) as resp:
            async for _ in resp.iter_bytes():
                break
        with trio.fail_after(5):
            await p.both_closed.wait()
        assert pool._idle == []


async def test_a_gzip_stream_inflates_a_bounded_piece_at_a_time() -> None:
    data = b"\0" * (8 * 1024 * 1024)
    packed = gzip.compress(data)
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
        len(packed),
        packed,
    )
    async with (
        peer(lambda c, r: answer) as (_, pool),
        pool.stream("GET", "/logs", {}, read_timeout=5) as resp,
    ):
        sizes = [len(piece) async for piece in resp.iter_bytes()]
    assert sum(sizes) == len(data)
    assert max(sizes) <= 64 * 1024


async def test_an_upgrade_hands_over_the_stream_and_the_bytes_past_the_101() -> None:
    switched = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nFRAME"
    async with peer(lambda c, r: switched) as (p, pool):
        up = await pool.upgrade("POST", "/pf", {"Connection": "Upgrade", "Upgrade": "x"})
        try:
            assert up.leftover == b"FRAME"
            assert up.headers["upgrade"] == "x"
        finally:
            await up.stream.aclose()
        assert p.requests[0].startswith(b"POST /pf HTTP/1.1\r\n")
        assert b"Content-Length: 0\r\n" in p.requests[0]


async def test_a_refused_upgrade_says_why() -> None:
    body = b'{"message":"pods \\"x\\" is forbidden"}'
    no = b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    async with peer(lambda c, r: no) as (_, pool):
        with pytest.raises(Refused) as refused:
            await pool.upgrade("GET", "/exec", {"Connection": "Upgrade", "Upgrade": "websocket"})
        assert (refused.value.status, refused.value.body) == (403, body)


async def test_a_101_nobody_asked_for_is_an_error() -> None:
    switched = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"
    async with peer(lambda c, r: switched) as (_, pool):
        with pytest.raises(TransportError, match="101"):
            await get(pool)


async def test_httpx_over_the_engine_gets_decoded_bodies_and_httpx_errors() -> None:
    body = b'{"kind":"Status"}' * 100
    packed = gzip.compress(body)
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(packed), packed),
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ]
    async with peer(lambda c, r: answers[r]) as (p, pool):
        client = httpx.AsyncClient(base_url="http://ignored", transport=EngineTransport(pool))
        async with client.stream("GET", "/api/v1/pods?watch=1") as resp:
            assert await resp.aread() == body
            assert "content-encoding" not in resp.headers  # decoded by the engine
        with pytest.raises(httpx.RemoteProtocolError, match="Content-Length"):
            await client.get("/api/v1/pods")
        assert p.connections == 1  # the stream read whole went back to the pool
        await client.aclose()
