"""The checks of each cluster: its kubeconfig, API server, version, credentials
and permissions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import trio

from ak import __version__
from ak.doctor.checklist import Checklist, Side, _short
from ak.doctor.permissions import (
    LOCAL_NETWORK_POLICY_HINT,
    LOCAL_NETWORK_POLICY_PERMISSIONS,
    LOCAL_PEER_PERMISSIONS,
    LOCAL_STORAGE_HINT,
    LOCAL_STORAGE_PERMISSIONS,
    REMOTE_RBAC_HINT,
    Permission,
)
from ak.errors import ConfigError
from ak.kube import config as kubeconfig
from ak.kube.client import KubeClient
from ak.kube.errors import ApiError, KubeError, NotFound, Unauthorized

MAX_MINOR_SKEW = 3


class ClusterChecks(Checklist):
    """What each cluster answers: it must be reachable, accept AK and allow what AK does."""

    # -- connection, version, credentials ----------------------------------------------
    async def connect(self, side: Side) -> None:
        settings = self.config.local if side.label == "local" else self.config.remote
        what = f"{side.label} kubeconfig"
        try:
            conf = await trio.to_thread.run_sync(
                kubeconfig.load, settings.kubeconfig, settings.context
            )
        except ConfigError as e:
            fix = f"point {side.setting} at a readable kubeconfig"
            if settings.kubeconfig is None:
                fix = f"not running in a pod: set {side.setting}"
            self.add(what, False, str(e), fix)
            self.add(f"{side.label} API server", None, "skipped")
            return
        self.add(what, True, conf.source)
        side.server = conf.server
        side.client = KubeClient(
            conf, name=side.label, qps=0, user_agent=f"actual-kubelets/{__version__} doctor"
        )
        try:
            info = await side.client.request("GET", "/version", timeout=self.timeout)
        except KubeError as e:
            fix = f"check the server address and network path, or the CA in {side.setting}"
            if isinstance(e, ApiError):
                fix = f"the server answered {e.status}: check the URL in {side.setting}"
            self.add(f"{side.label} API server", False, f"{conf.server}: {_short(e)}", fix)
            await side.client.aclose()
            side.client = None
            return
        side.git_version = str(info.get("gitVersion", "?"))
        side.version = _minor(info)
        self.add(f"{side.label} API server", True, f"{conf.server} answers, {side.git_version}")

    def skew(self) -> None:
        lv, rv = self.local.version, self.remote.version
        if lv is None or rv is None:
            return
        diff = abs(lv[1] - rv[1]) if lv[0] == rv[0] else 99
        detail = f"local {self.local.git_version}, remote {self.remote.git_version}"
        self.add(
            "version skew",
            diff <= MAX_MINOR_SKEW,
            detail,
            f"keep the clusters within {MAX_MINOR_SKEW} minor versions: pod fields one side "
            "knows may be dropped or refused by the other",
        )

    async def whoami(self, side: Side) -> bool:
        """SelfSubjectReview: who the API server takes us for. False if refused."""
        assert side.client is not None
        name = f"{side.label} credentials"
        try:
            review = await side.client.create(
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
        except Unauthorized as e:
            self.add(name, False, _short(e), f"renew the token or certificate in {side.setting}")
            return False
        except NotFound:  # API servers before 1.28: no SelfSubjectReview
            self.add(name, True, "accepted (identity unknown: API server older than 1.28)")
            return True
        except KubeError as e:
            self.add(name, False, _short(e), f"check {side.setting}")
            return False
        info = review.get("status", {}).get("userInfo", {})
        side.user = str(info.get("username", ""))
        side.groups = [str(g) for g in info.get("groups") or []]
        shown = ", ".join(g for g in side.groups if g != "system:authenticated")
        self.add(name, True, f"accepted as {side.user}" + (f" ({shown})" if shown else ""))
        return True

    async def local_identity(self) -> None:
        side = self.local
        if side.client is None:
            return
        if not await self.whoami(side):
            side.client = None  # nothing else can pass; the permission lines are skipped
            return
        node = self.config.node.name
        user = side.user
        if user is None:
            return
        if user.startswith("system:node:"):
            own = user == f"system:node:{node}" and "system:nodes" in side.groups
            self.add(
                "local node identity",
                own,
                f"{user}" + ("" if own else f" is not node {node}'s identity"),
                f"issue a client certificate with CN=system:node:{node}, O=system:nodes, "
                f"or run with --node-name={user.removeprefix('system:node:')}",
            )
        else:
            self.add(
                "local node identity",
                True,
                f"{user} is not a node identity: needs the equivalent RBAC (checked below); "
                "the Helm chart's ClusterRole grants it",
            )

    async def remote_identity(self) -> None:
        side = self.remote
        if side.client is not None and not await self.whoami(side):
            side.client = None

    # -- permissions ------------------------------------------------------------------
    async def permissions(self, side: Side, perms: Sequence[Permission]) -> None:
        client = side.client
        if client is None:
            self.add(f"{side.label} permissions", None, "skipped")
            return
        is_node = (side.user or "").startswith("system:node:")
        node = self.config.node.name
        results: dict[tuple[int, str], bool | str] = {}

        async def review(i: int, perm: Permission, verb: str) -> None:
            attrs: dict[str, Any] = {"verb": verb, "resource": perm.resource, "group": perm.group}
            if perm.subresource:
                attrs["subresource"] = perm.subresource
            if perm.namespace:
                attrs["namespace"] = perm.namespace
            if perm.name:
                attrs["name"] = perm.name.format(node=node)
            spec: dict[str, Any] = {"resourceAttributes": attrs}
            if perm.field_selector:
                selector = perm.field_selector.format(node=node)
                attrs["fieldSelector"] = {"rawSelector": selector}
            body = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": spec,
            }
            try:
                answer = await client.create(
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body
                )
            except KubeError as e:
                results[(i, verb)] = _short(e)
                return
            results[(i, verb)] = bool(answer.get("status", {}).get("allowed"))

        async with trio.open_nursery() as nursery:
            for i, perm in enumerate(perms):
                if perm.node_graph and is_node:
                    continue
                for verb in perm.verbs:
                    nursery.start_soon(review, i, perm, verb)

        for i, perm in enumerate(perms):
            name = f"{side.label} can {perm.title}"
            if perm.node_graph and is_node:
                self.add(name, True, "the Node authorizer grants those of pods bound to the node")
                continue
            errors = {str(results[(i, v)]) for v in perm.verbs if isinstance(results[(i, v)], str)}
            denied = [v for v in perm.verbs if results[(i, v)] is not True]
            if not denied:
                self.add(name, True, ", ".join(perm.verbs))
                continue
            detail = "denied: " + ", ".join(denied) + (f" ({errors.pop()})" if errors else "")
            if side.label == "remote":
                fix = REMOTE_RBAC_HINT
            elif perm in LOCAL_NETWORK_POLICY_PERMISSIONS + LOCAL_PEER_PERMISSIONS:
                fix = LOCAL_NETWORK_POLICY_HINT
            elif perm in LOCAL_STORAGE_PERMISSIONS:
                fix = LOCAL_STORAGE_HINT
            else:
                fix = (
                    "give AK a node identity (system:node:<name> in system:nodes) or install the "
                    "Helm chart's ClusterRole for its ServiceAccount"
                )
            self.add(name, False, detail, fix)


def _minor(info: dict[str, Any]) -> tuple[int, int] | None:
    try:
        major = int(re.sub(r"\D", "", str(info.get("major", ""))))
        minor = int(re.sub(r"\D", "", str(info.get("minor", ""))))
    except ValueError:
        found = re.match(r"v(\d+)\.(\d+)", str(info.get("gitVersion", "")))
        return (int(found[1]), int(found[2])) if found else None
    return major, minor
