"""How the tenants' pods are kept apart on the remote network, as far as the API shows.

What AK writes (the default NetworkPolicy in each remote namespace, the
tenant's own policies) is visible; whether the remote network plugin
enforces NetworkPolicy is not: the API accepts NetworkPolicies whether or
not anything enforces them. The check names a known enforcer it finds
running in the usual namespaces, and otherwise says it cannot tell.
"""

from __future__ import annotations

from ak.doctor.checklist import Checklist, _short
from ak.kube.errors import KubeError

# Name prefixes of the agents of network plugins that enforce NetworkPolicy.
ENFORCERS = (
    "calico-node",
    "cilium",
    "kube-router",
    "antrea-agent",
    "weave-net",
    "canal",
    "kube-network-policies",
)
SYSTEM_NAMESPACES = ("kube-system", "calico-system", "cilium")

NO_ENFORCER_FIX = (
    "make sure the remote network plugin enforces NetworkPolicy (Calico, Cilium, kube-router, "
    "Antrea...): without it the isolation and the tenants' policies are decorative"
)


class IsolationChecks(Checklist):
    async def isolation(self) -> None:
        ns = self.config.namespaces
        pods = self.config.pods
        name = "remote network isolation"
        if not ns.isolation:
            self.add(
                name,
                True,
                "off ([namespaces.isolation] enabled = false): pods of other AK nodes on the "
                "remote cluster can reach this node's pods",
                "set [namespaces.isolation] enabled = true unless the remote cluster isolates "
                "tenants itself",
                warn=True,
            )
        else:
            detail = (
                "a NetworkPolicy in every remote namespace admits ingress only from this "
                "node's remote namespaces"
            )
            if ns.isolation_peers:
                detail += f" and {len(ns.isolation_peers)} peer(s) of [namespaces.isolation]"
            self.add(name, True, detail)
        tenant = "local NetworkPolicies"
        if pods.network_policies:
            where = "copied to the remote namespaces"
            if pods.address_range:
                where += ", their ingress rules enforced by AK at the pod addresses"
            self.add(tenant, True, where)
        else:
            self.add(
                tenant,
                True,
                "not reflected ([pods] networkPolicies = false): the tenant's policies do not "
                "hold for pods on this node",
                warn=True,
            )
        await self._enforcer()

    async def _enforcer(self) -> None:
        client = self.remote.client
        name = "remote NetworkPolicy enforcement"
        if client is None:
            self.add(name, None, "skipped")
            return
        found: list[str] = []
        problems: list[str] = []
        for namespace in SYSTEM_NAMESPACES:
            try:
                listed = await client.get(f"/api/v1/namespaces/{namespace}/pods", {"limit": "500"})
            except KubeError as e:
                problems.append(f"{namespace}: {_short(e)}")
                continue
            for pod in listed.get("items") or []:
                pod_name = pod["metadata"]["name"]
                for prefix in ENFORCERS:
                    if pod_name.startswith(prefix) and prefix not in found:
                        found.append(prefix)
        if found:
            self.add(
                name,
                True,
                f"{', '.join(found)} runs on the remote cluster (judged by name: the API does "
                "not show whether NetworkPolicy is enforced)",
            )
            return
        self.add(
            name,
            True,
            "cannot tell: the API does not show whether the remote network plugin enforces "
            "NetworkPolicy, and no known enforcer was found by name"
            + (f" ({'; '.join(problems)})" if problems else ""),
            NO_ENFORCER_FIX,
            warn=True,
        )
