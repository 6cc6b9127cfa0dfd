"""Streams AK relays are bounded end to end: a slow reader does not make AK buffer.

A pod on the remote real node sends far more than AK may hold; the reader
takes one MiB, pauses, then reads the rest. Meanwhile AK's resident memory
(VmRSS of its Python process) is sampled: its peak may exceed its idle figure,
taken after a warm-up through the same path, by a few MiB, never by anything
like the payload. The bytes must arrive whole and in order (SHA-256).

Paths: port-forward through the local API server (kubectl -> local API
server -> AK's kubelet API over SPDY -> remote API server over WebSocket ->
kubelet -> pod); a pod address (client -> AK's listener -> a SPDY stream of
the pod's port-forward session to the remote API server); ``logs -f``; and
a port-forward upload to a pod that reads only after a pause.
Figures (idle, peak, throughput of the fast part) are printed (-s).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.cluster.realutil import exec_in, kubectl, run, shell_pod
from tests.cluster.test_kubelet_api import Background
from tests.cluster.util import wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

MiB = 1 << 20
SEQ = 30_000_000  # `seq 1 SEQ`: 258,888,897 bytes
# Seconds the reader stops after its first MiB; AK_BACKPRESSURE_PAUSE=0 makes
# these tests throughput benchmarks of the three paths.
PAUSE = float(os.environ.get("AK_BACKPRESSURE_PAUSE", "10"))
BOUND = 16 * MiB  # what AK's RSS may grow by, whatever the payload
SERVER = f"exec nc -ll -p 8080 -e seq 1 {SEQ}"  # a new `seq` per connection


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@contextmanager
def _peak_rss(pid: int) -> Iterator[list[int]]:
    """[peak] of ``pid``'s RSS, sampled every 20 ms while the block runs."""
    peak = [_rss(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss(pid))

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield peak
    finally:
        done.set()
        t.join()
        peak[0] = max(peak[0], _rss(pid))


def _seq_digest(n: int) -> tuple[int, str]:
    out = subprocess.run(
        f"seq 1 {n} | tee >(wc -c >&2) | sha256sum",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stderr.strip()), out.stdout.split()[0]


def _read_slowly(
    read: Callable[[int], bytes], total: int, meanwhile: Callable[[], None]
) -> tuple[str, int, float]:
    """(sha256, bytes, seconds of the fast part): one MiB, a pause (during
    which ``meanwhile`` runs), then the rest as fast as it comes, up to
    ``total`` bytes or the end."""
    digest = hashlib.sha256()
    got = 0
    started = 0.0
    while got < total:
        if got >= MiB and not started:
            paused = time.monotonic()
            meanwhile()
            time.sleep(max(0.0, PAUSE - (time.monotonic() - paused)))
            started = time.monotonic()
        chunk = read(min(65536, total - got))
        if not chunk:
            break
        digest.update(chunk)
        got += len(chunk)
    return digest.hexdigest(), got, time.monotonic() - started


def _check(
    what: str,
    ak: AKNode,
    read: Callable[[int], bytes],
    size: int,
    want: str,
    *,
    meanwhile: Callable[[], None] = lambda: None,
) -> None:
    pid = ak.ak.pid
    idle = _rss(pid)
    with _peak_rss(pid) as peak:
        digest, got, seconds = _read_slowly(read, size, meanwhile)
    growth = peak[0] - idle
    print(
        f"\n{what}: {got / MiB:.0f} MiB; AK RSS idle {idle / MiB:.1f} MiB, "
        f"peak {peak[0] / MiB:.1f} MiB (+{growth / MiB:.1f}); "
        f"after the pause {(got - MiB) / MiB / seconds:.1f} MiB/s"
    )
    assert got == size, f"{what}: {got} of {size} bytes"
    assert digest == want, f"{what}: bytes lost or reordered"
    assert growth < BOUND, f"{what}: AK grew by {growth / MiB:.0f} MiB for {size / MiB:.0f} MiB"


def _recv_exactly(sock: socket.socket, n: int) -> None:
    while n > 0:
        chunk = sock.recv(min(n, 65536))
        assert chunk
        n -= len(chunk)


def _source(local: Cluster, node: AKNode) -> str:
    pod = shell_pod(node, "source", SERVER)
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    run(local, node, pod)
    return "source"


def test_port_forward_download_read_slowly(ak_real: AKNode, local_cluster: Cluster) -> None:
    size, want = _seq_digest(SEQ)
    _source(local_cluster, ak_real)
    argv = ["-n", ak_real.namespace, "port-forward", "pod/source", ":8080"]
    with Background(local_cluster, *argv) as fwd:
        line = wait_until(
            "port-forward listening",
            lambda: next((x for x in fwd.text() if x.startswith("Forwarding from 127")), None),
            30,
        )
        port = int(line.split("->")[0].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=60) as warm:
            _recv_exactly(warm, 8 * MiB)  # every code path of the relay has run once
        time.sleep(1)
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            _check("port-forward", ak_real, sock.recv, size, want)


def test_pod_address_download_read_slowly(
    ak_real_addressed: AKNode, local_cluster: Cluster
) -> None:
    size, want = _seq_digest(SEQ)
    node = ak_real_addressed
    _source(local_cluster, node)
    address = wait_until(
        "the pod's local address",
        lambda: (
            local_cluster.get_json(f"/api/v1/namespaces/{node.namespace}/pods/source")
            .get("status", {})
            .get("podIP")
        ),
        60,
    )

    def connect() -> socket.socket:
        return wait_until(
            "the pod address accepting",
            lambda: _try_connect(address, 8080),
            60,
        )

    with connect() as warm:
        _recv_exactly(warm, 8 * MiB)
    time.sleep(1)

    def another_connection() -> None:
        # The kubelet ignores SPDY windows, so the paused reader's session
        # soon waits for it, and moves nothing else: a new connection must
        # not queue behind it (it gets a session of its own).
        time.sleep(min(3, PAUSE))
        with connect() as other:
            _recv_exactly(other, MiB)

    with connect() as sock:
        _check("pod address", node, sock.recv, size, want, meanwhile=another_connection)


def _try_connect(address: str, port: int) -> socket.socket | None:
    try:
        return socket.create_connection((address, port), timeout=60)
    except OSError:
        return None


LOG_LINES = 8000  # lines of 1,000 bytes: under the real node's 10 MiB log rotation
LOG_SCRIPT = (
    "while [ ! -e /tmp/go ]; do sleep 0.1; done; "
    f"seq 1 {LOG_LINES} | while read i; do printf '%08d %0990d\\n' $i 0; done; "
    "exec sleep 3600"
)


def test_logs_follow_of_a_fast_writer_read_slowly(ak_real: AKNode, local_cluster: Cluster) -> None:
    expected = b"".join(b"%08d %s\n" % (i, b"0" * 990) for i in range(1, LOG_LINES + 1))
    run(local_cluster, ak_real, shell_pod(ak_real, "chatty", LOG_SCRIPT))
    ns = ak_real.namespace
    assert kubectl(local_cluster, "-n", ns, "logs", "chatty").returncode == 0  # warm-up
    argv = [
        local_cluster.tools("kubectl"),
        f"--kubeconfig={local_cluster.kubeconfig}",
        "-n",
        ns,
        "logs",
        "-f",
        "chatty",
    ]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, bufsize=0) as follow:
        assert follow.stdout is not None
        time.sleep(2)  # following: kubectl -> local API server -> AK -> remote
        exec_in(local_cluster, ak_real, "chatty", "touch", "/tmp/go")
        try:
            _check(
                "logs -f",
                ak_real,
                follow.stdout.read,
                len(expected),
                hashlib.sha256(expected).hexdigest(),
            )
        finally:
            follow.terminate()
            follow.wait(10)


def _sink_script(size: int) -> str:
    """Port 8081 digests 8 MiB at once (the warm-up); 8080 sleeps PAUSE seconds
    before it reads ``size`` bytes; each answers with their SHA-256."""
    return (
        f"nc -ll -p 8081 -e sh -c 'head -c {8 * MiB} | sha256sum' & "
        f"exec nc -ll -p 8080 -e sh -c 'sleep {int(PAUSE)}; head -c {size} | sha256sum'"
    )


def _send_seq(sock: socket.socket, n: int) -> None:
    with subprocess.Popen(["seq", "1", str(n)], stdout=subprocess.PIPE) as seq:
        assert seq.stdout is not None
        while chunk := seq.stdout.read(65536):
            sock.sendall(chunk)


def _answer(sock: socket.socket) -> str:
    out = b""
    while b"\n" not in out:
        chunk = sock.recv(4096)
        assert chunk, f"no digest, only {out!r}"
        out += chunk
    return out.split()[0].decode()


def test_port_forward_upload_to_a_slow_reader(ak_real: AKNode, local_cluster: Cluster) -> None:
    """The other way: the client sends as fast as it can, the pod reads only
    after a pause. AK receives the client's bytes on a SPDY stream from the
    local API server, which ignores SPDY windows."""
    size, want = _seq_digest(SEQ)
    run(local_cluster, ak_real, shell_pod(ak_real, "sink", _sink_script(size)))
    argv = ["-n", ak_real.namespace, "port-forward", "pod/sink", ":8080", ":8081"]
    with Background(local_cluster, *argv) as fwd:

        def ports() -> list[int] | None:
            found = [x for x in fwd.text() if x.startswith("Forwarding from 127")]
            return [int(x.split("->")[0].rsplit(":", 1)[1]) for x in found] or None

        wait_until("port-forward listening", lambda: (p := ports()) and len(p) == 2 and p, 30)
        big, small = ports() or []
        with socket.create_connection(("127.0.0.1", small), timeout=60) as warm:
            warm.sendall(bytes(8 * MiB))
            assert _answer(warm) == hashlib.sha256(bytes(8 * MiB)).hexdigest()
        time.sleep(1)
        pid = ak_real.ak.pid
        idle = _rss(pid)
        with socket.create_connection(("127.0.0.1", big), timeout=120) as sock:
            started = time.monotonic()
            with _peak_rss(pid) as peak:
                _send_seq(sock, SEQ)
                digest = _answer(sock)
            seconds = time.monotonic() - started
    growth = peak[0] - idle
    print(
        f"\nport-forward upload: {size / MiB:.0f} MiB; AK RSS idle {idle / MiB:.1f} MiB, "
        f"peak {peak[0] / MiB:.1f} MiB (+{growth / MiB:.1f}); "
        f"{size / MiB / max(0.001, seconds - PAUSE):.1f} MiB/s once the pod reads"
    )
    assert digest == want, "bytes lost or reordered"
    assert growth < BOUND, f"AK grew by {growth / MiB:.0f} MiB for {size / MiB:.0f} MiB"
