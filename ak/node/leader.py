"""Leader election on the node Lease (see ak/core/leader.py for why that Lease)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import trio

from ak.core.leader import claimed, last_heartbeat, lease_state
from ak.core.types import Obj
from ak.kube.client import KubeClient
from ak.kube.errors import Conflict, KubeError, NotFound
from ak.node.lease import node_lease_path

log = logging.getLogger(__name__)

DURATION = 10  # a standby takes over at most this long (plus one retry) after the leader died
RENEW_EVERY = 2.0
RENEW_DEADLINE = 7.0  # a leader that could not renew for this long steps down first


class LeadershipLost(Exception):
    pass


class LeaderElector:
    def __init__(
        self, client: KubeClient, node_name: str, identity: str, node_uid: Callable[[], str]
    ) -> None:
        self.client = client
        self.node_name = node_name
        self.identity = identity
        self.node_uid = node_uid
        self.path = node_lease_path(node_name)
        # The previous holder's last heartbeat, seen when this replica took over.
        self.previous_heartbeat: datetime | None = None

    async def _try(self) -> bool:
        """One attempt to take or renew the lease; True when we hold it."""
        now = datetime.now(UTC)
        try:
            lease: Obj | None = await self.client.get(self.path)
        except NotFound:
            lease = None
        state = lease_state(lease, self.identity, now)
        if state == "held":
            return False
        if state == "free":
            self.previous_heartbeat = last_heartbeat(lease)
        body = claimed(
            lease,
            self.identity,
            node_name=self.node_name,
            node_uid=self.node_uid(),
            duration=DURATION,
            now=now,
        )
        try:
            if lease is None:
                await self.client.create(self.path.rsplit("/", 1)[0], body)
            else:
                await self.client.replace(self.path, body)
        except Conflict:
            return False  # someone else wrote first
        return True

    async def acquire(self) -> None:
        log.info("standing by for leadership of node %s as %s", self.node_name, self.identity)
        while True:
            try:
                if await self._try():
                    log.info("leading node %s as %s", self.node_name, self.identity)
                    return
            except KubeError as e:
                log.warning("leader election: %s", e)
            await trio.sleep(RENEW_EVERY)

    async def hold(self) -> None:
        """Renew until that fails for RENEW_DEADLINE or another replica took over."""
        last_ok = trio.current_time()
        while True:
            await trio.sleep(RENEW_EVERY)
            try:
                if await self._try():
                    last_ok = trio.current_time()
                    continue
                raise LeadershipLost(f"another replica leads node {self.node_name} now")
            except KubeError as e:
                log.warning("renewing leadership: %s", e)
            if trio.current_time() - last_ok > RENEW_DEADLINE:
                raise LeadershipLost(f"could not renew leadership for {RENEW_DEADLINE:.0f}s")
