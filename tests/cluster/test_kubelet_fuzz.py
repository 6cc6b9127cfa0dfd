"""Malformed input against AK's kubelet listener: no crash, no leaked socket, flat memory.

Over 10,000 inputs from hypothesis, each on its own TLS connection to the real
AK process: HTTP request heads, query strings on real routes, SPDY frames after
a genuine upgrade, WebSocket frames after a genuine handshake. Authenticated
inputs use the API server's own kubelet client certificate, so they get past
authentication and authorization into the protocol code.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import ssl
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cluster.util import pod, pods, running, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )


class Target:
    def __init__(self, port: int, cert: tuple[Path, Path], pod_path: str) -> None:
        self.port = port
        self.pod_path = pod_path  # "<namespace>/<pod>/<container>"
        self.anonymous = self._context(None)
        self.admin = self._context(cert)
        self.sent = 0

    @staticmethod
    def _context(cert: tuple[Path, Path] | None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        return ctx

    def send(self, data: bytes, *, authenticated: bool = True) -> None:
        """Send ``data`` and hang up. Every 25th input also waits briefly for an
        answer, so responses are exercised without a wait on every input."""
        self.sent += 1
        ctx = self.admin if authenticated else self.anonymous
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw) as tls:
                    tls.sendall(data)
                    if self.sent % 25 == 0:
                        tls.settimeout(0.2)
                        with contextlib.suppress(TimeoutError, ssl.SSLError, OSError):
                            while tls.recv(65536):
                                pass
            except (ssl.SSLError, OSError):
                pass  # AK closing on garbage is fine; AK dying is not (checked after)


def head(target: str, extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: ak\r\n{extra}\r\n".encode()


# kwok runs exec commands on this host: `true` exits at once, so thousands of fuzz
# upgrades leave no process behind waiting on stdin.
def spdy_upgrade(t: Target) -> bytes:
    return (
        f"POST /exec/{t.pod_path}?command=true&input=1&output=1&tty=0 HTTP/1.1\r\nHost: ak\r\n"
        "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def ws_upgrade(t: Target) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /exec/{t.pod_path}?command=true&input=1&output=1 HTTP/1.1\r\nHost: ak\r\n"
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    ).encode()


spdy_frames = st.lists(
    st.one_of(
        st.binary(max_size=64),
        # Control frames (version 3, any type/flags/length) with random payloads.
        st.tuples(st.integers(0, 15), st.integers(0, 255), st.binary(max_size=48)).map(
            lambda t: bytes([0x80, 0x03, 0x00, t[0], t[1]]) + len(t[2]).to_bytes(3, "big") + t[2]
        ),
        # Data frames on random streams, sometimes lying about their length.
        st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**24 - 1), st.binary(max_size=32)).map(
            lambda t: t[0].to_bytes(4, "big") + b"\x00" + t[1].to_bytes(3, "big") + t[2]
        ),
    ),
    max_size=6,
).map(b"".join)

ws_frames = st.lists(
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)).map(
        lambda t: bytes([t[0], t[1]]) + t[2]
    ),
    max_size=6,
).map(b"".join)

header_line = st.tuples(
    st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), max_size=20
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
).map(lambda t: f"{t[0]}: {t[1]}\r\n")

query = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=80)


def run_fuzz(t: Target) -> None:
    @fuzz(3000)
    @given(st.binary(max_size=300), st.booleans())
    def raw_heads(data: bytes, authenticated: bool) -> None:
        t.send(data + b"\r\n\r\n", authenticated=authenticated)

    @fuzz(2000)
    @given(
        st.sampled_from(
            ["/containerLogs", "/exec", "/attach", "/portForward", "/stats/summary", "/pods"]
        ),
        query,
        st.lists(header_line, max_size=4),
    )
    def routes(route: str, q: str, headers: list[str]) -> None:
        t.send(head(f"{route}/{t.pod_path}?{q}", "".join(headers)))

    @fuzz(3000)
    @given(spdy_frames)
    def spdy(frames: bytes) -> None:
        t.send(spdy_upgrade(t) + frames)

    @fuzz(2500)
    @given(ws_frames)
    def websocket(frames: bytes) -> None:
        t.send(ws_upgrade(t) + frames)

    raw_heads()
    routes()
    spdy()
    websocket()


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_ten_thousand_malformed_inputs(ak_node: AKNode, local_cluster: Cluster) -> None:
    ns = ak_node.namespace
    local_cluster.apply(pod("target", ak_node.name), ns)
    wait_until("target Running", lambda: running(pods(local_cluster, ns)))
    assert ak_node.ak.proc is not None
    pid = ak_node.ak.proc.pid
    cert = local_cluster.kubelet_client
    t = Target(ak_node.ak.kubelet_port, (cert.cert, cert.key), f"{ns}/target/c")
    t.send(head(f"/containerLogs/{ns}/target/c"))  # warm up caches before the baseline
    time.sleep(2)
    fd0, rss0 = fds(pid), rss_mb(pid)
    run_fuzz(t)
    assert t.sent >= 10_000
    assert ak_node.ak.alive(), "AK died under fuzzing"

    # Everything AK opened for the fuzz connections goes away again.
    wait_until("sockets released", lambda: fds(pid) <= fd0 + 5, timeout=60)
    growth = rss_mb(pid) - rss0
    print(f"{t.sent} inputs; fds {fd0} -> {fds(pid)}; RSS {rss0:.0f} MB -> +{growth:.1f} MB")
    assert growth < 40, f"RSS grew by {growth:.0f} MB"
    # And it still serves real requests.
    got = local_cluster.kubectl("-n", ns, "get", "pods", "target", "-o", "jsonpath={.status.phase}")
    assert got.stdout == "Running"
