"""Local addresses for pods on the AK node: where the local cluster reaches them.

A remote pod's IP lives on the remote cluster's network, which the local
cluster cannot route to (AK's only network requirement is that each cluster
reaches the other's API server). With a pod address range configured
(``pods.address_range``), every pod on the AK node gets one address of that
range as its local ``status.podIP``, and AK listens on it: each connection to
one of the pod's ports is carried to the remote pod through the remote API
server (a port-forward stream). The local endpoint controllers then put that
address into the endpoints of every Service selecting the pod, with its
readiness, so the local API server (webhooks, conversion, aggregated APIs)
and local clients reach AK pods the way they reach any pod.

So the local ``status.podIP`` is honest in the sense the field promises
("routable within the cluster"): it is where the pod is reached from the
local cluster. The remote pod's own IP is what the remote cluster shows.

Addresses are picked from the pod's UID, so a restarted AK or a second
replica agrees on them, and kept for the pod's life: the local status already
holds it, and a restarted AK takes it from there.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from ak.core.services import selector, selects
from ak.core.types import Obj

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MIN_ADDRESSES = 4


def parse_range(text: str) -> Network:
    """A pod address range; ValueError with the reason if it cannot be one."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a network in CIDR notation ({e})") from None
    if net.is_loopback or net.is_link_local or net.is_multicast or net.is_unspecified:
        # The API server refuses such endpoint addresses (EndpointSlice validation).
        raise ValueError(f"{text} is loopback, link-local or multicast: endpoints cannot use it")
    if net.num_addresses < MIN_ADDRESSES:
        raise ValueError(f"{text} holds fewer than {MIN_ADDRESSES} addresses")
    return net


def _usable(net: Network) -> tuple[int, int]:
    """First usable address (as an int) and how many there are: not the network
    address nor, for IPv4, the broadcast address."""
    first = int(net.network_address) + 1
    count = net.num_addresses - (2 if net.version == 4 else 1)
    return first, count


def in_range(address: str | None, net: Network) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    first, count = _usable(net)
    return ip.version == net.version and first <= int(ip) < first + count


def allocate(uid: str, net: Network, used: set[str]) -> str | None:
    """The address for a pod: its UID's place in the range, or the next free
    one after it; None when the range is full."""
    first, count = _usable(net)
    start = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") % count
    for step in range(count):
        candidate = str(ipaddress.ip_address(first + (start + step) % count))
        if candidate not in used:
            return candidate
    return None


def with_address(status: Obj, address: str) -> Obj:
    """The local status with the pod's local address in place of the remote
    pod's IP. A pod without an IP yet (no sandbox) gets none: its endpoints
    would lead nowhere."""
    if not status.get("podIP"):
        return status
    return {**status, "podIP": address, "podIPs": [{"ip": address}]}


def _tcp(port: Obj) -> bool:
    return (port.get("protocol") or "TCP") == "TCP"


def container_ports(pod: Obj) -> dict[str, int]:
    """The pod's declared TCP container ports by name (unnamed ones under "")."""
    spec: dict[str, Any] = pod.get("spec") or {}
    out: dict[str, int] = {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for p in c.get("ports") or []:
            if _tcp(p) and isinstance(p.get("containerPort"), int):
                out.setdefault(p.get("name") or f"#{p['containerPort']}", p["containerPort"])
    return out


def proxied_ports(pod: Obj, services: list[Obj]) -> frozenset[int]:
    """The TCP ports AK listens on for a pod: every declared container port,
    and the target port of every TCP port of every Service selecting it
    (Services often target ports a container does not declare). A named
    target port resolves through the pod's own port names, as the endpoint
    controllers resolve it."""
    named = container_ports(pod)
    ports = set(named.values())
    for service in services:
        if not selects(selector(service), pod):
            continue
        for p in (service.get("spec") or {}).get("ports") or []:
            if not _tcp(p):
                continue
            target = p.get("targetPort", p.get("port"))
            if isinstance(target, int):
                ports.add(target)
            elif isinstance(target, str) and target in named:
                ports.add(named[target])
    return frozenset(port for port in ports if 0 < port < 65536)
