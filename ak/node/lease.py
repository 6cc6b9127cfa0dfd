"""The node's Lease on the local API server: its path, and what it says of the last heartbeat."""

from __future__ import annotations

import logging
from datetime import datetime

from ak.core.leader import last_heartbeat
from ak.core.node import NODE_LEASE_NAMESPACE
from ak.kube.client import KubeClient, path
from ak.kube.errors import KubeError, NotFound

log = logging.getLogger(__name__)


def node_lease_path(node_name: str) -> str:
    return path(
        "leases",
        namespace=NODE_LEASE_NAMESPACE,
        name=node_name,
        group_version="coordination.k8s.io/v1",
    )


async def read_last_heartbeat(local: KubeClient, node_name: str) -> datetime | None:
    """The Lease's last renewal; read before this process renews it, that is the
    previous AK's last heartbeat."""
    try:
        return last_heartbeat(await local.get(node_lease_path(node_name)))
    except NotFound:
        return None
    except KubeError as e:  # only costs Events mirrored twice: not worth failing start-up
        log.warning("reading the node Lease: %s", e)
        return None
