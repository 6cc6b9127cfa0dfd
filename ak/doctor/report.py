"""``Doctor``: every check in order, and the report ``ak doctor`` prints."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import trio

from ak.config import Config
from ak.doctor.checklist import Check
from ak.doctor.clusters import ClusterChecks
from ak.doctor.isolation import IsolationChecks
from ak.doctor.node import NodeChecks
from ak.doctor.permissions import (
    LOCAL_NETWORK_POLICY_PERMISSIONS,
    LOCAL_PEER_PERMISSIONS,
    LOCAL_PERMISSIONS,
    LOCAL_STORAGE_PERMISSIONS,
    REMOTE_PERMISSIONS,
    REMOTE_STORAGE_PERMISSIONS,
)


class Doctor(ClusterChecks, NodeChecks, IsolationChecks):
    """Runs every check; ``checks`` is the report in order."""

    async def run(self) -> list[Check]:
        try:
            self.node_name()
            self.pod_addresses()
            for side in (self.local, self.remote):
                await self.connect(side)
            self.skew()
            await self.local_identity()
            await self.remote_identity()
            local = LOCAL_PERMISSIONS
            if self.config.pods.network_policies:
                local += LOCAL_NETWORK_POLICY_PERMISSIONS
                if self.config.pods.address_range:
                    local += LOCAL_PEER_PERMISSIONS
            remote = REMOTE_PERMISSIONS
            if self.config.pods.storage:
                local += LOCAL_STORAGE_PERMISSIONS
                remote += REMOTE_STORAGE_PERMISSIONS
            for side, perms in ((self.local, local), (self.remote, remote)):
                await self.permissions(side, perms)
            await self.node_free()
            await self.local_endpoint()
            await self.isolation()
        finally:
            with trio.CancelScope(shield=True):
                for side in (self.local, self.remote):
                    if side.client is not None:
                        await side.client.aclose()
        return self.checks


def _marks(out: TextIO) -> tuple[str, str]:
    try:
        "✓✗".encode(out.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "OK  ", "FAIL"
    return "✓", "✗"


def report(checks: Sequence[Check], out: TextIO) -> None:
    good, bad = _marks(out)
    width = max((len(c.name) for c in checks), default=0)
    for c in checks:
        mark = ("!" if c.warn else good) if c.ok else bad if c.ok is False else "-"
        out.write(f"{mark} {c.name.ljust(width)}  {c.detail}".rstrip() + "\n")
        if (c.ok is False or c.warn) and c.fix:
            out.write(f"    fix: {c.fix}\n")
    failed = sum(1 for c in checks if c.ok is False)
    skipped = sum(1 for c in checks if c.ok is None)
    warned = sum(1 for c in checks if c.ok and c.warn)
    if warned:
        out.write(f"{warned} passed with a warning (!): read its fix line\n")
    if failed or skipped:
        out.write(f"{failed} failed, {skipped} skipped of {len(checks)} checks\n")
    else:
        out.write(f"all {len(checks)} checks passed\n")


async def diagnose(config: Config) -> list[Check]:
    return await Doctor(config).run()


def main(config: Config, out: TextIO | None = None) -> int:
    """``ak doctor``: print the report; 0 if every check passed, else 1."""
    stream = out or sys.stdout
    checks = trio.run(diagnose, config)
    report(checks, stream)
    stream.flush()
    return 0 if all(c.ok for c in checks) else 1
