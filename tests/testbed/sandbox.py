"""Run a command inside a network + mount + PID namespace of its own.

    python -m tests.testbed.sandbox -- pytest ...

Real kubelets refuse a loopback node address, and test servers may listen only
on loopback or inside namespaces the run made itself. So the test run, the demo
and the benchmark run here: a fresh network namespace whose ``lo`` also carries
``HOST_IP`` (TEST-NET-1, never routed anywhere) and the real nodes' addresses;
a private mount namespace, so the nodes' mounts never reach the machine; a PID
namespace whose init is this module, so when the command ends (or this process
is killed) every process started inside, kubelets, containerd shims and
containers included, dies with it.

Inside, ``AK_SANDBOX`` names the host address; ``tests.testbed.realnode`` refuses to
start a node outside a sandbox. Without root or ``unshare`` the command runs
as it is, with a one-line note on stderr, and real nodes are unavailable.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from tests.testbed.procs import die_with_parent

HOST_IP = "192.0.2.1"
# Local pod addresses (``--pod-address-range``) are all addresses of the
# sandbox's own host, as an operator makes them on AK's host.
POD_ADDRESSES = "10.250.0.0/16"
ENV = "AK_SANDBOX"


def available() -> str | None:
    """None if a sandbox can be made here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("unshare", "ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def inside() -> bool:
    return os.environ.get(ENV) == HOST_IP


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def _init(argv: list[str]) -> int:
    """PID 1 of the sandbox: set up the network, run the command, reap orphans."""
    _run(["ip", "link", "set", "lo", "up"])
    _run(["ip", "addr", "add", f"{HOST_IP}/32", "dev", "lo"])
    _run(["ip", "route", "add", "local", POD_ADDRESSES, "dev", "lo"])
    # Pods reach the API servers (on 127.0.0.1) through a DNAT of HOST_IP; a
    # routed packet may only be sent to 127/8 with route_localnet. Per network
    # namespace: the machine's own setting is untouched.
    with open("/proc/sys/net/ipv4/conf/all/route_localnet", "w") as f:
        f.write("1")
    dnat = ["-d", HOST_IP, "-p", "tcp", "-j", "DNAT", "--to-destination", "127.0.0.1"]
    _run(["iptables", "-t", "nat", "-A", "PREROUTING", *dnat])
    env = {**os.environ, ENV: HOST_IP}
    child = subprocess.Popen(argv, env=env)

    def forward(sig: int, _frame: object) -> None:
        child.send_signal(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if pid == child.pid:
            return os.waitstatus_to_exitcode(status)


def main(args: list[str]) -> int:
    if args and args[0] == "--init":
        return _init(args[2:] if args[1:2] == ["--"] else args[1:])
    argv = args[1:] if args[:1] == ["--"] else args
    if not argv:
        print("usage: python -m tests.testbed.sandbox -- COMMAND...", file=sys.stderr)
        return 2
    if inside():
        os.execvp(argv[0], argv)
    why = available()
    if why is not None:
        print(f"[sandbox] {why}: running without one (no real nodes)", file=sys.stderr)
        os.execvp(argv[0], argv)
    unshare = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    inner = [sys.executable, "-m", "tests.testbed.sandbox", "--init", "--", *argv]
    # If this process is killed, unshare dies too, and with it (--kill-child)
    # the sandbox's init and so every process inside.
    child = subprocess.Popen(
        [*unshare, "--propagation", "private", "--", *inner],
        preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads here
    )
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    code = child.wait()
    # Everything inside is dead now (its PID namespace ended); cgroups are the
    # one thing of a real node that lives outside the namespaces: remove them.
    from tests.testbed.cgroups import remove_stale_cgroups

    left = remove_stale_cgroups()
    if left:
        print(f"[sandbox] cgroups left behind: {', '.join(map(str, left))}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
