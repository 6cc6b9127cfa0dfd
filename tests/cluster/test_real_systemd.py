"""systemd/ak.service, unchanged, under a real systemd 252 as PID 1 of its own
namespaces (tests/testbed/systemd_host.py), running the static dist/ak between
the testbed clusters: READY, the sandbox, reload and restart, the watchdog
restarting a wedged AK, and AK's log in the journal. Figures are printed."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ak.core.names import remote_namespace
from tests.cluster.test_binary import ak_binary  # noqa: F401 - the fixture
from tests.cluster.util import Obj, phase, pod, wait_until
from tests.testbed import cgroups
from tests.testbed.cluster import Cluster
from tests.testbed.procs import free_port
from tests.testbed.systemd_host import SystemdHost, self_contained

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
UNIT = "ak.service"
# Where the unit may write: its state and runtime directories, its private /tmp
# and /var/tmp (PrivateTmp=yes). /var/lib/ak is /var/lib/private/ak (DynamicUser).
WRITABLE = {"/var/lib/ak", "/var/lib/private/ak", "/run/ak", "/tmp", "/var/tmp"}
# Places a service must never write, probed besides every mount point.
PROBES = (
    "/", "/etc", "/etc/ak", "/etc/systemd", "/usr", "/usr/local/bin", "/var", "/var/lib",
    "/var/log", "/var/lib/private", "/run", "/run/systemd", "/run/credentials/ak.service",
    "/root", "/home", "/opt", "/srv", "/boot", "/dev", "/dev/shm", "/run/lock", "/sys/fs/cgroup",
)  # fmt: skip


@dataclass
class Bastion:
    """AK installed as INSTALL.md says, on a host whose PID 1 is systemd."""

    host: SystemdHost
    local: Cluster
    remote: Cluster
    node_name: str
    namespace: str
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def remote_namespace(self) -> str:
        return remote_namespace(self.node_name, self.namespace)

    def show(self, *props: str) -> dict[str, str]:
        return self.host.show(UNIT, *props)

    def node_ready(self) -> bool:
        try:
            node = self.local.get_json(f"/api/v1/nodes/{self.node_name}")
        except Exception:
            return False
        conds = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def ak_processes(self) -> list[int]:
        """The unit's processes, outermost first: staticx's and PyInstaller's
        bootloaders, then AK's Python, the one without a child."""
        pids = self.host.cgroup_pids(UNIT)
        parents = {p: _ppid(p) for p in pids}
        chain = [p for p in pids if parents[p] not in pids]
        while len(chain) < len(pids):
            chain += [p for p in pids if parents[p] == chain[-1]]
        return chain

    def python_pid(self) -> int:
        chain = self.ak_processes()
        assert chain, f"no processes in {UNIT}: {self.show('ActiveState', 'SubState')}"
        return chain[-1]

    def remote_pod(self, name: str) -> Obj:
        return self.remote.get_json(f"/api/v1/namespaces/{self.remote_namespace}/pods/{name}")

    def run_pod(self, name: str) -> Obj:
        self.local.apply(pod(name, self.node_name), self.namespace)
        path = f"/api/v1/namespaces/{self.namespace}/pods/{name}"
        wait_until(f"pod {name} Running", lambda: phase(self.local.get_json(path)) == "Running")
        return self.remote_pod(name)

    def wait_active(self, timeout: float = 120) -> dict[str, str]:
        def active() -> dict[str, str] | None:
            s = self.show("ActiveState", "SubState", "MainPID", "NRestarts", "StatusText")
            return (
                s if s.get("ActiveState") == "active" and s.get("StatusText") == "ready" else None
            )

        return wait_until(f"{UNIT} active and ready", active, timeout, interval=0.1)


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rpartition(")")[2].split()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _config(node_name: str) -> str:
    """/etc/ak/ak.toml as systemd/ak.toml.example has it, for the testbed."""
    return f"""node-name = "{node_name}"
log-level = "info"
metrics-port = {free_port()}

[local]
kubeconfig = "/run/credentials/ak.service/local.kubeconfig"

[remote]
kubeconfig = "/run/credentials/ak.service/remote.kubeconfig"

[node]
internalIP = "127.0.0.1"
kubeletPort = {free_port()}

[kubelet]
# The CSR-issued serving certificate survives restarts in the state directory.
certDir = "/var/lib/ak"
"""


@pytest.fixture(scope="module")
def bastion(
    request: pytest.FixtureRequest,
    ak_binary: Path,  # noqa: F811 - the fixture imported above
    local_cluster: Cluster,
    remote_cluster: Cluster,
) -> Iterator[Bastion]:
    suffix = uuid.uuid4().hex[:5]
    node_name = f"ak-sd-{suffix}"
    files = {
        "ak/ak.toml": _config(node_name).encode(),
        # root:root 0600, as INSTALL.md installs them: only LoadCredential= reads them.
        "ak/local.kubeconfig": self_contained(local_cluster.node_kubeconfig(node_name)),
        "ak/remote.kubeconfig": self_contained(remote_cluster.kubeconfig),
        "systemd/system/ak.service": (REPO / "systemd" / "ak.service").read_bytes(),
    }
    host = SystemdHost(
        local_cluster.dir / f"systemd-{suffix}", files, {"/usr/local/bin/ak": ak_binary}
    )
    b = Bastion(host, local_cluster, remote_cluster, node_name, f"sd-{suffix}")
    local_cluster.kubectl("create", "namespace", b.namespace)
    try:
        host.start()
        for name in ("local.kubeconfig", "remote.kubeconfig"):
            host.enter("chmod", "0600", f"/etc/ak/{name}")
        t0 = time.monotonic()
        # Type=notify: `systemctl start` returns once AK has sent READY=1.
        done = host.systemctl("enable", "--now", UNIT, timeout=180)
        b.figures["enable --now to READY"] = f"{time.monotonic() - t0:.1f}s"
        assert done.returncode == 0, f"{done.stderr}\n{host.journal(UNIT)[-3000:]}"
        b.figures["systemd boot"] = f"{host.boot_seconds:.2f}s"
        yield b
    finally:
        try:
            journal = host.journal(UNIT) if host.pid else ""
            (host.dir / "ak-journal.log").write_text(journal)
        finally:
            left = host.stop()
            local_cluster.kubectl("delete", "namespace", b.namespace, "--wait=false", check=False)
            local_cluster.kubectl("delete", "node", node_name, "--wait=false", check=False)
        with_figures = ", ".join(f"{k} {v}" for k, v in b.figures.items())
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\n[systemd] {with_figures}", file=sys.stderr)
        assert left == [], f"cgroups left behind: {left}"
        assert not [h for h in cgroups.hierarchies().values() if (h / host.cgroup).exists()]


def test_ready_means_registered_and_a_pod_runs_remotely(bastion: Bastion) -> None:
    props = bastion.show("Type", "ActiveState", "SubState", "StatusText", "NRestarts", "Result")
    assert props == {
        "Type": "notify",
        "ActiveState": "active",
        "SubState": "running",
        "StatusText": "ready",
        "NRestarts": "0",
        "Result": "success",
    }
    # READY=1 comes only after the node is registered and synced: Ready already.
    assert bastion.node_ready()
    remote = bastion.run_pod("app")
    assert remote["metadata"]["labels"]["actual.vk/node-name"] == bastion.node_name
    chain = bastion.ak_processes()
    assert len(chain) == 3, f"staticx, PyInstaller and Python expected: {chain}"
    bastion.figures["RSS (AK's Python / whole unit)"] = (
        f"{_rss_mib(chain[-1]):.0f} / {sum(map(_rss_mib, chain)):.0f} MiB"
    )


def test_logs_are_in_the_journal(bastion: Bastion) -> None:
    journal = bastion.host.journal(UNIT)
    assert f"registered node {bastion.node_name}" in journal, journal[-2000:]
    assert "caches synced" in journal
    # systemd's own lines about the unit are there too.
    everything = bastion.host.enter("journalctl", "--no-pager", f"--unit={UNIT}").stdout
    assert re.search(r"Started ak\.service|Started Actual Kubelets", everything), everything[-2000:]


def _probe_writes(bastion: Bastion, paths: set[str]) -> set[str]:
    """The directories among ``paths`` that AK's dynamic user can create a file
    in, tried from inside the service's own mount namespace."""
    pid = bastion.python_pid()
    assert "\nUid:\t0" not in Path(f"/proc/{pid}/status").read_text(), "AK runs as root"
    script = (
        'for d in "$@"; do [ -d "$d" ] || continue; f="$d/.ak-write-probe.$$"; '
        'if touch "$f" 2>/dev/null; then rm -f "$f"; echo "$d"; fi; done'
    )
    done = bastion.host.as_service(pid, "sh", "-c", script, "probe", *sorted(paths))
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_sandbox_reads_credentials_and_writes_only_its_own_dirs(bastion: Bastion) -> None:
    pid = bastion.python_pid()
    mounts = set()
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        point = line.split(" ")[4]
        if "\\" not in point:  # escaped names (spaces) are none of ours
            mounts.add(point)
    writable = _probe_writes(bastion, mounts | set(PROBES) | WRITABLE)
    # /dev/mqueue is the service's own (PrivateIPC=yes: a fresh mqueue mount).
    assert writable <= WRITABLE | {"/dev/mqueue"}, writable
    # The probe can tell: the state and runtime directories and /tmp are writable.
    assert {"/var/lib/ak", "/run/ak", "/tmp"} <= writable, writable
    # The kubeconfigs: root-only in /etc/ak, readable through LoadCredential=.
    creds = bastion.host.as_service(
        pid, "head", "-c1", "/run/credentials/ak.service/local.kubeconfig"
    )
    assert creds.returncode == 0, creds.stderr
    direct = bastion.host.as_service(pid, "head", "-c1", "/etc/ak/local.kubeconfig")
    assert direct.returncode != 0 and "Permission denied" in direct.stderr, direct
    # systemd's own rating of the unit (lower is safer; 10 is unconfined).
    rating = bastion.host.enter("systemd-analyze", "security", "--no-pager", UNIT)
    score = re.search(r"Overall exposure level for \S+: (\S+ \S+)", rating.stdout)
    if score:
        bastion.figures["systemd-analyze security"] = score[1]


def test_reload_is_refused_and_restart_keeps_pods(bastion: Bastion) -> None:
    before = bastion.wait_active()
    uid = bastion.run_pod("keep")["metadata"]["uid"]
    # No ExecReload=: AK reads its configuration only at start.
    reload = bastion.host.systemctl("reload", UNIT)
    assert reload.returncode != 0
    assert "not applicable" in reload.stderr, reload.stderr
    assert bastion.show("MainPID", "ActiveState") == {
        "MainPID": before["MainPID"],
        "ActiveState": "active",
    }
    # The serving certificate, once its CSR is approved, lands in StateDirectory=.
    csr = re.search(r"requested a serving certificate: CSR (\S+)", bastion.host.journal(UNIT))
    assert csr, "AK did not request a serving certificate"
    bastion.local.kubectl("certificate", "approve", csr[1])

    def stored() -> list[str]:
        return bastion.host.enter("ls", "/var/lib/private/ak").stdout.split()

    wait_until("the certificate in /var/lib/ak", stored, timeout=60)
    t0 = time.monotonic()
    done = bastion.host.systemctl("restart", UNIT, timeout=180)
    assert done.returncode == 0, done.stderr
    bastion.figures["systemctl restart to READY"] = f"{time.monotonic() - t0:.1f}s"
    after = bastion.wait_active()
    assert after["MainPID"] != before["MainPID"]
    # A restart someone asked for is not a failure: NRestarts counts systemd's own
    # (and a start someone asked for resets it).
    assert after["NRestarts"] == "0"
    journal = bastion.host.journal(UNIT)
    assert "SIGTERM received; stopping" in journal, journal[-2000:]
    # The state directory survived the restart (a dynamic user may get a new
    # UID each start; systemd hands the directory over): no new CSR.
    restarted = journal.rpartition("SIGTERM received; stopping")[2]
    assert "serving certificate from /var/lib/ak/" in restarted, restarted[-2000:]
    assert "requested a serving certificate" not in restarted
    assert bastion.node_ready()
    assert bastion.remote_pod("keep")["metadata"]["uid"] == uid


def test_watchdog_restarts_a_wedged_ak(bastion: Bastion) -> None:
    before = bastion.wait_active()
    uid = bastion.run_pod("survivor")["metadata"]["uid"]
    python = bastion.python_pid()
    t0 = time.monotonic()
    # A wedged AK: alive, holding its sockets, doing nothing (no WATCHDOG=1).
    os.kill(python, signal.SIGSTOP)

    def restarted() -> dict[str, str] | None:
        s = bastion.show("NRestarts", "ActiveState", "StatusText", "MainPID")
        return s if int(s.get("NRestarts", 0)) > int(before["NRestarts"]) else None

    # WatchdogSec=30s, then SIGABRT, RestartSec=5s, then a fresh start.
    wait_until("systemd to restart AK", restarted, timeout=120, interval=0.2)
    killed_after = time.monotonic() - t0
    after = bastion.wait_active()
    back_after = time.monotonic() - t0
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert after["MainPID"] != before["MainPID"]
    assert not Path(f"/proc/{python}").exists() or _ppid(python) == 0
    wait_until("node Ready again", bastion.node_ready, timeout=60)
    # Nothing re-created: the remote pod is the one from before the wedge.
    assert bastion.remote_pod("survivor")["metadata"]["uid"] == uid
    everything = bastion.host.enter("journalctl", "--no-pager", f"--unit={UNIT}").stdout
    assert "Watchdog timeout" in everything, everything[-3000:]
    bastion.figures["SIGSTOP to restart (watchdog 30 s after the last ping, RestartSec 5 s)"] = (
        f"{killed_after:.1f}s"
    )
    bastion.figures["SIGSTOP to READY again"] = f"{back_after:.1f}s"


def test_a_configuration_error_is_not_restarted(bastion: Bastion) -> None:
    bastion.wait_active()
    # /etc/ak/ak.env (EnvironmentFile=-) with a bad value: exit status 2.
    bastion.host.enter("sh", "-c", "echo AK_LOG_LEVEL=loud > /etc/ak/ak.env")
    try:
        done = bastion.host.systemctl("restart", UNIT, timeout=120)
        assert done.returncode != 0
        failed = bastion.show("ActiveState", "Result", "ExecMainStatus")
        assert failed == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "2"}
        time.sleep(7)  # longer than RestartSec=5s: RestartPreventExitStatus=2 holds it down
        # (A start someone asked for resets NRestarts: it counts systemd's own since.)
        assert bastion.show("ActiveState", "NRestarts") == {
            "ActiveState": "failed",
            "NRestarts": "0",
        }
        journal = bastion.host.journal(UNIT)
        assert 'AK_LOG_LEVEL: "loud" is not one of' in journal, journal[-2000:]
    finally:
        bastion.host.enter("rm", "-f", "/etc/ak/ak.env")
        done = bastion.host.systemctl("restart", UNIT, timeout=180)
    assert done.returncode == 0, done.stderr
    bastion.wait_active()
    wait_until("node Ready again", bastion.node_ready, timeout=60)


def test_sighup_restarts_ak(bastion: Bastion) -> None:
    """AK has no SIGHUP handler, and a death by SIGHUP is clean for
    Restart=on-failure: RestartForceExitStatus=SIGHUP makes it a restart
    rather than an outage."""
    before = bastion.wait_active()
    bastion.host.systemctl("kill", "--signal=SIGHUP", UNIT)

    def restarted() -> dict[str, str] | None:
        s = bastion.show("NRestarts", "ActiveState", "MainPID")
        return s if int(s.get("NRestarts", 0)) > int(before["NRestarts"]) else None

    wait_until("systemd to restart AK after SIGHUP", restarted, timeout=60)
    after = bastion.wait_active()
    assert after["MainPID"] != before["MainPID"]
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    wait_until("node Ready again", bastion.node_ready, timeout=60)
