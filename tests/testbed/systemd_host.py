"""A real systemd as PID 1 of namespaces of its own: a bastion host for ``ak.service``.

Runs only inside ``tests.testbed.sandbox``. The machine's PID 1 is not systemd (and
must not be touched), so ``SystemdHost`` boots Debian's ``/lib/systemd/systemd``
as PID 1 of a fresh PID + mount + cgroup + UTS + IPC namespace that shares the
sandbox's network (the testbed API servers are on its 127.0.0.1). Its mount
tree is assembled so that nothing it writes reaches the machine:

* the cgroup hierarchies are remounted with ``ak-node-systemd-*`` (under this
  process's own cgroup) as their root, as ``cgroups`` does for real nodes, so
  systemd's slices and AK's service cgroup live there and ``stop`` removes
  them (the sandbox's stale-cgroup sweep knows the prefix too);
* ``/run`` and ``/tmp`` are tmpfs; ``/etc``, ``/var`` and ``/usr/local`` are
  overlays whose upper layers are in the run's directory, so ``/etc/ak``,
  ``/var/lib/private/ak`` and ``/usr/local/bin/ak`` (the binary, bind-mounted)
  exist only in here;
* the unit search path is replaced: ``/usr/lib/systemd/system`` holds only the
  targets and journald units a boot needs, ``/etc/systemd`` only
  ``ak.service`` and a volatile journal, the generators directory is empty. So
  none of the machine's enabled services (containerd, postgresql...) start,
  and no fstab or swap unit is generated;
* ``/sys`` and ``/proc/sys`` are read-only, as in any container: systemd
  skips udev and sysctls instead of changing the machine's.

``systemctl`` and ``journalctl`` run in its namespaces through ``nsenter``
(systemctl talks to PID 1 over ``/run/systemd/private``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from tests.testbed import cgroups, sandbox
from tests.testbed.procs import Proc, wait_for

SYSTEMD = Path("/lib/systemd/systemd")
UNIT_DIR = Path("/usr/lib/systemd/system")
# A boot's skeleton: the targets that units' default dependencies name, the
# halt path and journald. Nothing from the machine's *.wants directories.
BOOT_UNITS = (
    "basic.target", "sysinit.target", "sockets.target", "paths.target", "timers.target",
    "slices.target", "local-fs.target", "local-fs-pre.target", "swap.target",
    "network.target", "network-pre.target", "network-online.target", "multi-user.target",
    "shutdown.target", "final.target", "umount.target", "exit.target", "halt.target",
    "poweroff.target", "reboot.target", "rescue.target", "emergency.target",
    "systemd-exit.service", "systemd-halt.service", "systemd-poweroff.service",
    "systemd-reboot.service", "systemd-journald.service", "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
)  # fmt: skip
WANTS = {
    "sysinit.target.wants": ("systemd-journald.service",),
    "sockets.target.wants": ("systemd-journald.socket", "systemd-journald-dev-log.socket"),
}
OVERLAYS = ("/etc", "/var", "/usr/local")


class SystemdUnavailable(RuntimeError):
    pass


def _layer(top: str) -> str:
    """The staging name of an overlaid directory: /usr/local -> usr-local."""
    return top.strip("/").replace("/", "-")


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def self_contained(kubeconfig: Path) -> bytes:
    """``kubeconfig`` with the files it names embedded as ``*-data``: the
    service reads it through ``LoadCredential=`` and cannot see the files."""
    config = json.loads(kubeconfig.read_text())
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in config.get(section, []):
            body = entry[key]
            for field in ("certificate-authority", "client-certificate", "client-key"):
                if field in body:
                    data = Path(body.pop(field)).read_bytes()
                    body[f"{field}-data"] = base64.b64encode(data).decode()
    return json.dumps(config).encode()


class SystemdHost:
    """systemd as PID 1 of its own namespaces; ``files`` are placed under the
    host's ``/etc`` (e.g. ``{"ak/ak.toml": ..., "systemd/system/ak.service": ...}``),
    ``binaries`` bind-mounted at their paths (``{"/usr/local/bin/ak": dist/ak}``)."""

    def __init__(self, directory: Path, files: dict[str, bytes], binaries: dict[str, Path]) -> None:
        if not sandbox.inside():
            raise SystemdUnavailable(
                "systemd runs only inside the testbed sandbox (build/test.sh makes it)"
            )
        if not SYSTEMD.exists():
            raise SystemdUnavailable(f"{SYSTEMD} is not installed (apt-get install systemd)")
        self.dir = directory
        self.files = files
        self.binaries = binaries
        self.cgroup = f"{cgroups.CGROUP_PREFIX}systemd-{uuid.uuid4().hex[:6]}"
        self.proc: Proc | None = None
        self.pid = 0  # systemd's PID as this process sees it
        self.boot_seconds = 0.0

    # -- the root file system ------------------------------------------------
    def _stage(self) -> None:
        d = self.dir
        units = d / "units"
        units.mkdir(parents=True)
        for name in BOOT_UNITS:
            shutil.copy2(UNIT_DIR / name, units / name)
        for wants, names in WANTS.items():
            (units / wants).mkdir()
            for name in names:
                (units / wants / name).symlink_to(f"../{name}")
        (units / "default.target").symlink_to("multi-user.target")
        (d / "generators").mkdir()
        (d / "console").touch()
        etc_systemd = d / "etc-systemd"
        (etc_systemd / "system").mkdir(parents=True)
        # The journal in /run (our tmpfs); nothing of the machine's kernel log.
        (etc_systemd / "journald.conf").write_text("[Journal]\nStorage=volatile\nReadKMsg=no\n")
        for top in OVERLAYS:
            (d / f"{_layer(top)}-upper").mkdir()
            (d / f"{_layer(top)}-work").mkdir()
        for rel, data in self.files.items():
            if rel.startswith("systemd/"):
                target = etc_systemd / rel.removeprefix("systemd/")
            else:
                target = d / "etc-upper" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for path in self.binaries:
            top = next(t for t in OVERLAYS if path.startswith(t + "/"))
            stub = d / f"{_layer(top)}-upper" / path.removeprefix(top + "/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.touch()  # the mount point of the bind below

    def _write_scripts(self) -> None:
        d = self.dir
        joins, cgroup_mounts = cgroups.cgroup_commands(self.cgroup)
        overlays = []
        for top in OVERLAYS:
            key = _layer(top)
            overlays.append(
                f"mount -t overlay ak-{key} -o lowerdir={top},upperdir={d}/{key}-upper,"
                f"workdir={d}/{key}-work {top}"
            )
        binds = [f"mount --bind {src} {dst}" for dst, src in self.binaries.items()]
        holder = f"""#!/bin/sh
# PID 1 of the namespaces until it execs systemd: assemble the mount tree.
set -eu
mount -o remount,bind,ro /sys
{chr(10).join(cgroup_mounts)}
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
{chr(10).join(overlays)}
mount --bind {d}/etc-systemd /etc/systemd
mount --bind {d}/units {UNIT_DIR}
mount --bind {d}/generators /usr/lib/systemd/system-generators
{chr(10).join(binds)}
mount -t tmpfs -o mode=755 ak-run /run
# systemd writes to the console when a service asks for it: a file, not the machine's.
mount --bind {d}/console /dev/console
mount -t tmpfs -o mode=1777 ak-tmp /tmp
# Shared propagation inside, as a container manager sets it up (systemd marks /
# shared itself only outside containers): LoadCredential=, PrivateTmp= & co. mount
# in a child namespace and move the result into this one. The sandbox's mounts
# stay private, so nothing propagates out.
mount --make-rshared /
# PID 1 logs to the journal, as on a host (to stdout, this log, until journald is up).
exec env -i container=ak-test PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
  {SYSTEMD} --log-target=journal --log-level=info --show-status=no
"""
        (d / "holder.sh").write_text(holder)
        namespaces = "--cgroup --mount --pid --uts --ipc"
        (d / "start.sh").write_text(cgroups.start_script(joins, namespaces, d / "holder.sh"))

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float = 60) -> SystemdHost:
        t0 = time.monotonic()
        try:
            self._stage()
            self._write_scripts()
            self.proc = Proc("systemd", ["/bin/sh", str(self.dir / "start.sh")], self.log)
            wait_for("systemd's PID", self._find_pid, 10, [self.proc])
            wait_for("systemd to finish booting", self._booted, timeout, [self.proc])
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - t0
        return self

    @property
    def log(self) -> Path:
        return self.dir / "systemd.log"

    def _find_pid(self) -> bool:
        """systemd is the child of ``unshare`` (the Proc's own process)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError):
            kids = children.read_text().split()
            if kids and Path(f"/proc/{kids[0]}/exe").resolve() == SYSTEMD.resolve():
                self.pid = int(kids[0])
                return True
        return False

    def _booted(self) -> bool:
        state = self.systemctl("is-system-running").stdout.strip()
        # "degraded" is a booted system with a failed unit; say which.
        if state == "degraded":
            failed = self.systemctl("--failed", "--no-legend").stdout
            raise SystemdUnavailable(f"systemd booted degraded: {failed}; log {self.log}")
        return state == "running"

    def stop(self) -> list[Path]:
        """Stop every service, then end the namespaces; the cgroups not removed."""
        if self.proc is not None:
            if self.pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.systemctl("stop", "--", "*.service", timeout=40)
            # unshare's SIGKILL of systemd ends the PID namespace and every process in it.
            self.proc.stop(timeout=5)
            self.proc = None
        left = cgroups.remove_cgroup(self.cgroup)
        for top in OVERLAYS:
            shutil.rmtree(self.dir / f"{_layer(top)}-upper", ignore_errors=True)
            shutil.rmtree(self.dir / f"{_layer(top)}-work", ignore_errors=True)
        return left

    # -- driving it ----------------------------------------------------------
    def enter(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in systemd's mount, PID, cgroup, UTS and IPC namespaces."""
        if not self.pid:
            raise SystemdUnavailable("systemd is not running")
        ns = ["nsenter", f"--target={self.pid}", "--mount", "--pid", "--cgroup", "--uts", "--ipc"]
        return _run([*ns, "--", *argv], timeout)

    def as_service(self, pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as a service's process ``pid`` (as this process numbers
        it) sees the system: in its mount namespace, as its user and group,
        with no supplementary groups and no capabilities."""
        ids = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid"):
                ids[key] = value.split()[0]
        user = ["setpriv", f"--reuid={ids['Uid']}", f"--regid={ids['Gid']}", "--clear-groups"]
        user += ["--inh-caps=-all", "--bounding-set=-all"]
        return _run(["nsenter", f"--target={pid}", "--mount", "--", *user, *argv])

    def systemctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.enter("systemctl", "--no-pager", *args, timeout=timeout)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        done = self.systemctl("show", unit, *(f"--property={p}" for p in props))
        return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)

    def journal(self, unit: str) -> str:
        done = self.enter("journalctl", "--no-pager", "--output=cat", f"--unit={unit}")
        return done.stdout

    def cgroup_pids(self, unit: str) -> list[int]:
        """The processes of ``unit`` as this process numbers them: from the
        name=systemd hierarchy (cgroup v1 and hybrid), else the unified one."""
        own = cgroups.hierarchies()
        mount = "/sys/fs/cgroup/systemd" if "/sys/fs/cgroup/systemd" in own else "/sys/fs/cgroup"
        procs = own[mount] / self.cgroup / "system.slice" / unit / "cgroup.procs"
        try:
            return [int(p) for p in procs.read_text().split()]
        except OSError:
            return []

    def describe(self) -> str:
        return f"systemd host {self.dir}: systemd's own log {self.log}"
