"""The checks of the node itself: its name, whether the name is free, its
kubelet API, and the local API endpoint that remote pods are given."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import trio

from ak.core import kubelet_status
from ak.core.names import node_label_value, remote_namespace
from ak.core.pod_addresses import parse_range
from ak.core.validation import is_dns_subdomain
from ak.doctor.checklist import Checklist, _short
from ak.kube.errors import KubeError, NotFound


class NodeChecks(Checklist):
    """What AK's node will be: a valid free name, a serving kubelet API, a reachable endpoint."""

    # -- node name ------------------------------------------------------------------
    def node_name(self) -> None:
        name = self.config.node.name
        if not is_dns_subdomain(name):  # load_config refuses these; kept for direct callers
            self.add("node name", False, repr(name), "use a DNS subdomain: a-z, 0-9, '-', '.'")
            return
        label = node_label_value(name)
        example = remote_namespace(name, "default")
        detail = f"{name}: remote namespace for 'default' is {example}"
        if label != name:
            detail += f"; label value {label} (longer than 63 characters)"
        self.add("node name", True, detail)

    # -- pod addresses --------------------------------------------------------------
    def pod_addresses(self) -> None:
        """With a pod address range, AK listens on its addresses: AK's host must own them."""
        text = self.config.pods.address_range
        if not text:
            return
        net = parse_range(text)
        probe = str(next(net.hosts()))
        family = socket.AF_INET6 if net.version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((probe, 0))
        except OSError as e:
            self.add(
                "pod addresses",
                False,
                f"cannot listen on {probe} of {net}: {e.strerror or e}",
                f"make the range local on this host (ip route add local {net} dev lo) "
                "and route it here from the local cluster",
            )
            return
        self.add("pod addresses", True, f"{net}: this host can listen on its addresses")

    # -- the node name is free, the endpoint remote pods use -------------------------------
    async def node_free(self) -> None:
        client = self.local.client
        if client is None:
            return
        name = self.config.node.name
        try:
            node = await client.get(f"/api/v1/nodes/{name}")
        except NotFound:
            self.add("node name free", True, f"no node {name} yet; AK will register it")
            return
        except KubeError as e:
            self.add("node name free", False, _short(e), "see the permission lines above")
            return
        labels = node.get("metadata", {}).get("labels") or {}
        ours = labels.get("type") == "virtual-kubelet"
        self.add(
            "node name free",
            ours,
            f"node {name} exists" + (" (registered by AK before)" if ours else ", not AK's"),
            "a real node has this name: choose another --node-name",
        )
        if ours:
            self.kubelet_api(node)

    def kubelet_api(self, node: dict[str, Any]) -> None:
        """What the running AK says of its kubelet port (``ak.core.kubelet_status``)."""
        name = "kubelet API"
        conditions = node.get("status", {}).get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        status = kubelet_status.status_of(node)
        if ready.get("status") == "Unknown" or status is None:
            # AK stopped (the node lifecycle controller marked Ready Unknown), or an
            # AK from before the condition: nothing current to go by.
            self.add(name, True, "not reported by a running AK: not checked")
        elif status.unavailable:
            fix = "see AK's log (kubelet-api task) for the cause"
            if status.reason == kubelet_status.CERTIFICATE_PENDING:
                fix = "approve the CSR named above (kubectl certificate approve <name>)"
            self.add(name, False, f"{status.reason}: {status.message}", fix)
        else:
            self.add(name, True, f"{status.reason}: {status.message}")

    async def local_endpoint(self) -> None:
        local = self.config.local
        if local.apiserver_host:
            host, port = local.apiserver_host, local.apiserver_port
            origin = "local.apiserverHost"
        elif local.kubeconfig is None:
            self.add(
                "local API endpoint for remote pods",
                False,
                "in-cluster: the local cluster's Service address is unreachable from remote pods",
                "set local.apiserverHost (--local-apiserver-host) to an address of the local API "
                "server that the remote cluster's pods can reach",
            )
            return
        elif self.local.server:
            url = urlsplit(self.local.server)
            host, port = url.hostname or "", url.port or 443
            origin = "the local kubeconfig"
        else:
            return  # the kubeconfig failed: already reported
        name = "local API endpoint for remote pods"
        where = f"{host}:{port} (from {origin})"
        remote_host = urlsplit(self.remote.server).hostname or "" if self.remote.server else ""
        if _loopback(host) and not _loopback(remote_host):
            self.add(
                name,
                False,
                f"{where} is a loopback address: remote pods cannot reach it",
                "set local.apiserverHost (--local-apiserver-host) to a routable address",
            )
            return
        try:
            with trio.fail_after(self.timeout):
                stream = await trio.open_tcp_stream(host, port)
            await stream.aclose()
        except (OSError, trio.TooSlowError) as e:
            self.add(
                name,
                False,
                f"{where}: cannot connect from here ({_short(e) or 'timed out'})",
                "set local.apiserverHost to an address of the local API server that the remote "
                "cluster's pods can reach",
            )
            return
        self.add(name, True, f"{where}; reachable from here (remote pods need a route to it too)")


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
