"""The testbed's own cgroups: a subtree under this process's cgroup, in every
hierarchy, that a real node or a systemd host takes as the root of its cgroup
namespace, and its removal once their processes are dead."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

CGROUP_PREFIX = "ak-node-"


def hierarchies() -> dict[str, Path]:
    """Mount point of each cgroup hierarchy -> this process's cgroup in it."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    out: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fstype, _, options = post.split(" ")[:3]
        mount = pre.split(" ")[4]
        if fstype == "cgroup2":
            out[mount] = Path(mount) / own.get("", "/").lstrip("/")
        elif fstype == "cgroup":
            opts = [o for o in options.split(",") if o not in ("rw", "ro")]
            key = next((k for k in own if k and set(k.split(",")) <= set(opts)), None)
            if key is not None:
                out[mount] = Path(mount) / own[key].lstrip("/")
    return out


def _remove_tree(path: Path, timeout: float = 20) -> bool:
    """rmdir a cgroup bottom-up, waiting for its dying tasks; True if gone."""
    deadline = time.monotonic() + timeout
    while path.exists():
        try:
            dirs = sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        except OSError:
            # A cgroup vanished mid-walk (the node's runtime removed a container's
            # while we listed them): walk again.
            dirs = []
        for d in [*dirs, path]:
            with contextlib.suppress(OSError):
                d.rmdir()
        if not path.exists() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return not path.exists()


def remove_cgroup(name: str) -> list[Path]:
    """Remove cgroup ``name`` (made by ``cgroup_commands``) from every
    hierarchy, once its tasks are dead; the paths that could not be removed."""
    return [own / name for own in hierarchies().values() if not _remove_tree(own / name)]


def remove_stale_cgroups() -> list[Path]:
    """Remove node cgroups left by an interrupted run (no task left in them)."""
    left = []
    for parent in hierarchies().values():
        with contextlib.suppress(OSError):
            for d in parent.glob(f"{CGROUP_PREFIX}*"):
                procs = list(d.rglob("cgroup.procs"))
                if all(not p.read_text().strip() for p in procs) and not _remove_tree(d, 2):
                    left.append(d)
    return left


def cgroup_commands(name: str) -> tuple[list[str], list[str]]:
    """Shell lines that make cgroup ``name`` (under this process's own, in every
    hierarchy) the root of a cgroup namespace: the first join it (run before
    ``unshare --cgroup``), the second remount the hierarchies inside, where
    the namespace shows that cgroup as ``/``."""
    own_paths = hierarchies()
    joins = []
    for own in own_paths.values():
        path = own / name
        path.mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):
            if (own / f).exists():
                (path / f).write_text((own / f).read_text())
        joins.append(f"echo $$ > {path}/cgroup.procs")
    mounts = ["mount -t tmpfs -o mode=755 ak-cgroup /sys/fs/cgroup"]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fstype, _, options = post.split(" ")[:3]
        mount = pre.split(" ")[4]
        if mount not in own_paths:
            continue
        mounts.append(f"mkdir -p {mount}")
        if fstype == "cgroup2":
            mounts.append(f"mount -t cgroup2 cgroup2 {mount}")
        else:
            opts = ",".join(o for o in options.split(",") if o not in ("rw", "ro"))
            if "name=" in opts and not any(c in opts for c in ("cpu", "memory")):
                opts = "none," + opts
            mounts.append(f"mount -t cgroup -o {opts} cgroup {mount}")
    return joins, mounts


def start_script(joins: list[str], namespaces: str, holder: Path) -> str:
    """``start.sh``: join the cgroup (``joins``, from ``cgroup_commands``), then run
    ``holder`` as PID 1 of new ``namespaces`` (``unshare`` flags, ``--cgroup``
    among them), so that the cgroup joined is the root of its cgroup namespace."""
    unshare = f"exec unshare {namespaces} --fork --kill-child --mount-proc --propagation private"
    return "\n".join(["#!/bin/sh", "set -eu", *joins, f"{unshare} /bin/sh {holder}"]) + "\n"
