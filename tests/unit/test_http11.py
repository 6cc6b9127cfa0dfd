"""AK's HTTP/1.1 client (``ak/kube/http11.py``) against scripted HTTP peers on
loopback: framing (Content-Length, chunked, gzip, read to close), keep-alive
reuse, stale connections, timeouts and cancellation. Against a real API server
it runs in every cluster test (it carries all of AK's requests)."""

from __future__ import annotations

import gzip
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from ak.kube.http11 import Pool, TransportError


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
    answer: Callable[[int, int], bytes | None], close_after: bool = False
) -> AsyncIterator[tuple[Peer, Pool]]:
    p = Peer(answer, close_after)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, p.serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        pool = Pool(f"http://127.0.0.1:{port}", ssl.create_default_context(), max_idle=4)
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
    async with peer(lambda c, r: head if r == 0 else ok()) as (p, pool):
        resp = await pool.request("HEAD", "/x", {}, None, 5)
        assert (resp.status_code, resp.content) == (200, b"")
        assert await get(pool) == b'{"ok":true}'  # the connection stayed in step
        assert p.connections == 1


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
        with pytest.raises(TransportError, match=r"not an HTTP/1\.x response"):
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
