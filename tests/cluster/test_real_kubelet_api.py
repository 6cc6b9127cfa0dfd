"""kubectl logs, exec, attach, cp, run and port-forward through AK, against real processes.

kwok runs exec commands on the host and loses exit codes and end-of-stdin, and
serves canned log lines; here every stream ends in a real container on the
remote real node, over both SPDY and WebSocket from kubectl.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable

import httpx
import pytest

from tests.cluster.realutil import (
    SPDY,
    WEBSOCKET,
    container,
    exec_in,
    gone,
    kubectl,
    local_pod,
    run,
    shell_pod,
)
from tests.cluster.test_kubelet_api import Background
from tests.cluster.util import Obj, wait_until
from tests.conftest import AKNode
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

PROTOCOLS = pytest.mark.parametrize("protocol", [SPDY, WEBSOCKET], ids=["spdy", "websocket"])


def _sleeper(local: Cluster, node: AKNode, name: str = "box") -> str:
    run(local, node, shell_pod(node, name, "exec sleep 3600"))
    return name


Step = tuple[bytes, Callable[[int], None]]


def _winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _controlling_tty() -> None:
    # kubectl learns of a resize by SIGWINCH, which only a session's
    # controlling terminal sends: make the pty that.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def in_pty(
    cluster: Cluster,
    args: list[str],
    *,
    steps: list[Step],
    size: tuple[int, int],
    env: dict[str, str],
    timeout: float = 60,
) -> tuple[int, str]:
    """kubectl under a pseudo-terminal of ``size`` (rows, cols). Each step waits
    for its marker in the output (after the previous step's) and then acts on
    the pty's master side: types, or resizes."""
    master, slave = pty.openpty()
    _winsize(slave, *size)
    argv = [cluster.tools("kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args]
    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, **env},
        preexec_fn=_controlling_tty,  # noqa: PLW1509 - tests fork from one thread
    )
    os.close(slave)
    out = b""
    seen = 0
    todo = list(steps)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if todo and todo[0][0] in out[seen:]:
            marker, act = todo.pop(0)
            seen = out.index(marker, seen) + len(marker)
            act(master)
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait(10)
    return code, out.decode(errors="replace")


def _type(keys: bytes) -> Callable[[int], None]:
    def act(fd: int) -> None:
        os.write(fd, keys)

    return act


@PROTOCOLS
def test_exec_exit_code_stdin_and_end_of_input(
    ak_real: AKNode, local_cluster: Cluster, protocol: dict[str, str]
) -> None:
    name = _sleeper(local_cluster, ak_real)
    done = exec_in(local_cluster, ak_real, name, "sh", "-c", "exit 3", env=protocol)
    assert done.returncode == 3, done.stderr
    payload = os.urandom(1 << 20)
    args = ["-n", ak_real.namespace, "exec", "-i", name, "--", "wc", "-c"]
    counted = kubectl(local_cluster, *args, input=payload, env=protocol)
    assert (counted.returncode, counted.stdout.strip()) == (0, str(1 << 20)), counted.stderr
    # The bytes arrive intact, not just their count.
    args = ["-n", ak_real.namespace, "exec", "-i", name, "--", "sha256sum"]
    summed = kubectl(local_cluster, *args, input=payload, env=protocol)
    import hashlib

    assert summed.stdout.split()[0] == hashlib.sha256(payload).hexdigest(), summed.stderr


@PROTOCOLS
def test_exec_with_a_tty_and_its_size(
    ak_real: AKNode, local_cluster: Cluster, protocol: dict[str, str]
) -> None:
    name = _sleeper(local_cluster, ak_real)
    args = ["-n", ak_real.namespace, "exec", "-it", name, "--", "sh"]

    def resize_then_ask(fd: int) -> None:
        _winsize(fd, 40, 100)
        time.sleep(0.5)  # kubectl sends the new size as it sees SIGWINCH
        os.write(fd, b"stty size; exit 7\r")

    steps: list[Step] = [
        (b"# ", _type(b"stty size; tty\r")),
        (b"/dev/pts/", resize_then_ask),
    ]
    code, out = in_pty(local_cluster, args, steps=steps, size=(33, 121), env=protocol)
    # The size at start, then the size after a resize, as the container's tty saw them.
    assert "33 121" in out, out
    assert "40 100" in out, out
    assert code == 7, out


def test_attach_and_run_interactive(ak_real: AKNode, local_cluster: Cluster) -> None:
    ns = ak_real.namespace
    script = 'echo ready; while read l; do echo "got $l"; done; echo "stdin closed"'
    pod = shell_pod(
        ak_real,
        "att",
        script,
        containers=[container("c", "sh", "-c", script, stdin=True, stdinOnce=True)],
        restartPolicy="Never",
    )
    run(local_cluster, ak_real, pod)
    attached = kubectl(local_cluster, "-n", ns, "attach", "-i", "att", input="one\ntwo\n")
    assert "got one\ngot two\nstdin closed" in attached.stdout, attached.stdout + attached.stderr
    assert attached.returncode == 0, attached.stderr

    overrides = json.dumps({"spec": {"nodeName": ak_real.name}})
    ran = kubectl(
        local_cluster,
        "-n",
        ns,
        "run",
        "once",
        "--image=ak-testbed.local/shell:1",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--rm",
        "-i",
        f"--overrides={overrides}",
        "--",
        "sh",
        "-c",
        'read l; echo "hello $l"',
        input="there\n",
    )
    assert "hello there" in ran.stdout, ran.stdout + ran.stderr
    assert ran.returncode == 0, ran.stderr
    wait_until(
        "kubectl run --rm deleted its pod",
        lambda: gone(local_cluster, f"/api/v1/namespaces/{ns}/pods/once"),
        60,
    )


def test_kubectl_cp_both_ways(ak_real: AKNode, local_cluster: Cluster, tmp_path: object) -> None:
    from pathlib import Path

    tmp = Path(str(tmp_path))
    name = _sleeper(local_cluster, ak_real)
    ns = ak_real.namespace
    src = tmp / "up.bin"
    src.write_bytes(os.urandom(300_000))
    up = kubectl(local_cluster, "-n", ns, "cp", str(src), f"{name}:/tmp/up.bin")
    assert up.returncode == 0, up.stderr
    size = exec_in(local_cluster, ak_real, name, "wc", "-c", "/tmp/up.bin").stdout.split()[0]
    assert size == "300000"
    back = tmp / "down.bin"
    down = kubectl(local_cluster, "-n", ns, "cp", f"{name}:/tmp/up.bin", str(back))
    assert down.returncode == 0, down.stderr
    assert back.read_bytes() == src.read_bytes()


def test_logs_follow_a_long_running_process(ak_real: AKNode, local_cluster: Cluster) -> None:
    script = "i=1; while [ $i -le 90 ]; do echo line $i; i=$((i+1)); sleep 1; done"
    pod = shell_pod(ak_real, "talker", script, restartPolicy="Never")
    run(local_cluster, ak_real, pod)
    t0 = time.monotonic()
    followed = kubectl(local_cluster, "-n", ak_real.namespace, "logs", "-f", "talker", timeout=180)
    took = time.monotonic() - t0
    assert followed.returncode == 0, followed.stderr
    lines = followed.stdout.splitlines()
    assert lines == [f"line {i}" for i in range(1, 91)], (took, lines[-3:])
    assert took > 60, took  # it followed, past the 60 s bound of non-follow reads


def test_logs_previous_after_a_real_restart(ak_real: AKNode, local_cluster: Cluster) -> None:
    script = (
        "n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /d/n; "
        'echo "run $n"; [ $n -ge 2 ] && exec sleep 3600; exit 1'
    )
    pod = shell_pod(
        ak_real,
        "again",
        script,
        containers=[
            container("c", "sh", "-c", script, volumeMounts=[{"name": "d", "mountPath": "/d"}])
        ],
        volumes=[{"name": "d", "emptyDir": {}}],
    )
    local_cluster.apply(pod, ak_real.namespace)

    def restarted() -> Obj | None:
        statuses = local_pod(local_cluster, ak_real, "again")["status"]["containerStatuses"]
        return statuses[0] if statuses[0]["restartCount"] and statuses[0]["ready"] else None

    status = wait_until("the container restarted once and running", restarted, 90)
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    ns = ak_real.namespace
    now = kubectl(local_cluster, "-n", ns, "logs", "again")
    before = kubectl(local_cluster, "-n", ns, "logs", "again", "--previous")
    assert (now.stdout, before.stdout) == ("run 2\n", "run 1\n"), now.stderr + before.stderr
    stamped = kubectl(local_cluster, "-n", ns, "logs", "again", "--timestamps")
    assert stamped.stdout.split(" ", 1)[1] == "run 2\n"


@PROTOCOLS
def test_port_forward_to_a_real_server(
    ak_real: AKNode, local_cluster: Cluster, protocol: dict[str, str]
) -> None:
    run(local_cluster, ak_real, shell_pod(ak_real, "web", "exec httpd -f -p 8080 -h /var/www"))
    argv = ["-n", ak_real.namespace, "port-forward", "pod/web", ":8080"]
    old = dict(os.environ)
    os.environ.update(protocol)
    try:
        with Background(local_cluster, *argv) as fwd:
            line = wait_until(
                "port-forward listening",
                lambda: next((x for x in fwd.text() if x.startswith("Forwarding from 127")), None),
                30,
            )
            port = int(line.split("->")[0].rsplit(":", 1)[1])
            for _ in range(3):
                r = httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=10)
                assert r.status_code == 200
                assert r.text == "hello from a real container\n"
            big = httpx.get(f"http://127.0.0.1:{port}/missing", timeout=10)
            assert big.status_code == 404
    finally:
        os.environ.clear()
        os.environ.update(old)
