"""``ak doctor``: check, from the same settings as ``ak run``, that AK can work.

One line per check, ``✓`` or ``✗`` (``-`` when skipped because an earlier
check failed), and under each failure one line telling how to fix it. Exit
status 0 only when every check passed, else 1; a bad setting is still the
CLI's one-line error with exit 2.

What is checked, on each cluster: the kubeconfig loads, the API server answers
``/version``, the credentials are accepted (SelfSubjectReview) and every
permission AK uses is granted (SelfSubjectAccessReview, one line per
resource). On the local cluster AK should hold a kubelet's identity
(``system:node:<node name>`` in ``system:nodes``), which the Node authorizer
and NodeRestriction limit to its own node; any other identity needs the
equivalent RBAC (the Helm chart's ClusterRole). Also: the node name (valid, the
label value and remote namespace names it gives, not taken by a real node),
the version skew between the clusters, the local API endpoint that remote
pods are given and, when AK already runs as the node, whether its kubelet
API serves (the node's ``KubeletAPIUnavailable`` condition).

The permission tables below are what AK's controllers call; the Helm chart's
ClusterRole and ``packaging/remote-rbac.yaml`` grant exactly these, and the
tests check that they stay in step.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit

import trio

from ak import __version__
from ak.config import Config
from ak.core import kubelet_status
from ak.core.names import node_label_value, remote_namespace
from ak.core.validation import is_dns_subdomain
from ak.errors import ConfigError
from ak.kube import config as kubeconfig
from ak.kube.client import KubeClient
from ak.kube.errors import ApiError, KubeError, NotFound, Unauthorized, Unreachable


@dataclass(frozen=True)
class Permission:
    """Verbs on one resource, as SelfSubjectAccessReview's resourceAttributes."""

    resource: str
    verbs: tuple[str, ...]
    group: str = ""
    subresource: str = ""
    namespace: str = ""  # "" = all namespaces (or cluster-scoped)
    # "{node}" stands for the node name: the Node authorizer answers for a node's
    # own objects (its Node and Lease, its pods by field selector) only.
    name: str = ""
    field_selector: str = ""
    # Granted to node identities only for objects bound to the node (the Node
    # authorizer's graph): a name-less review is denied, so it is not asked.
    node_graph: bool = False

    @property
    def title(self) -> str:
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        name = f"{name}.{self.group}" if self.group else name
        return f"{name} in {self.namespace}" if self.namespace else name


# What AK does on the LOCAL cluster: its node and lease, the pods bound to it and
# their status, the events it records, the Secrets/ConfigMaps/tokens those pods
# use, the Services that may select them, and what its kubelet API needs.
LOCAL_PERMISSIONS: tuple[Permission, ...] = (
    Permission("nodes", ("get", "create", "patch"), name="{node}"),
    Permission("nodes", ("patch",), subresource="status", name="{node}"),
    Permission(
        "leases",
        ("get", "create", "update", "patch"),
        group="coordination.k8s.io",
        namespace="kube-node-lease",
        name="{node}",
    ),
    Permission("pods", ("list", "watch"), field_selector="spec.nodeName={node}"),
    Permission("pods", ("delete",)),
    Permission("pods", ("patch",), subresource="status"),
    Permission("events", ("create", "patch")),
    Permission("secrets", ("get", "list", "watch"), node_graph=True),
    Permission("configmaps", ("get", "list", "watch"), node_graph=True),
    # Services selecting the node's pods are copied to the remote cluster.
    Permission("services", ("list", "watch")),
    # Tokens of the pods' ServiceAccounts, copied to the remote cluster.
    Permission("serviceaccounts", ("create",), subresource="token", node_graph=True),
    # The kubelet API: its serving certificate (a kubelet-serving CSR), and the
    # API server's calls to it checked by TokenReview and SubjectAccessReview.
    Permission("certificatesigningrequests", ("create", "get"), group="certificates.k8s.io"),
    Permission("tokenreviews", ("create",), group="authentication.k8s.io"),
    Permission("subjectaccessreviews", ("create",), group="authorization.k8s.io"),
)

# What AK does on the REMOTE cluster: one namespace per local namespace, the pods
# in them, copies of Secrets/ConfigMaps/Services, and the kubelet API's logs, exec,
# attach and port-forward (both verbs: WebSocket upgrades are GETs that newer
# API servers also authorize as create).
REMOTE_PERMISSIONS: tuple[Permission, ...] = (
    Permission("namespaces", ("get", "list", "watch", "create", "patch", "delete")),
    Permission("pods", ("get", "list", "watch", "create", "patch", "delete")),
    Permission("pods", ("get",), subresource="log"),
    # `kubectl debug` on a local pod adds its ephemeral container remotely.
    Permission("pods", ("patch",), subresource="ephemeralcontainers"),
    Permission("pods", ("get", "create"), subresource="exec"),
    Permission("pods", ("get", "create"), subresource="attach"),
    Permission("pods", ("get", "create"), subresource="portforward"),
    Permission("secrets", ("get", "list", "watch", "create", "update", "delete")),
    Permission("configmaps", ("get", "list", "watch", "create", "update", "delete")),
    Permission("services", ("get", "list", "watch", "create", "update", "delete")),
    Permission("events", ("get", "list", "watch")),
    # The namespace template's quota and limits.
    Permission("resourcequotas", ("get", "create", "update", "delete")),
    Permission("limitranges", ("get", "create", "update", "delete")),
    # Capacity "auto" sums the remote nodes' allocatable.
    Permission("nodes", ("get", "list", "watch")),
)

MAX_MINOR_SKEW = 3
REMOTE_RBAC_HINT = (
    "apply packaging/remote-rbac.yaml on the remote cluster and use its ServiceAccount's "
    "kubeconfig (see packaging/REMOTE-ACCESS.md)"
)


@dataclass
class Check:
    """One line of the report. ``ok`` None: skipped (an earlier check failed)."""

    name: str
    ok: bool | None
    detail: str = ""
    fix: str = ""


@dataclass
class Side:
    """What was learnt about one cluster so far."""

    label: str  # "local" | "remote"
    setting: str  # the config section, for fix hints
    client: KubeClient | None = None
    server: str = ""
    version: tuple[int, int] | None = None
    git_version: str = ""
    user: str | None = None
    groups: list[str] = field(default_factory=list)


class Doctor:
    """Runs every check; ``checks`` is the report in order."""

    def __init__(self, config: Config, *, timeout: float = 10) -> None:
        self.config = config
        self.timeout = timeout
        self.checks: list[Check] = []
        self.local = Side("local", "[local] kubeconfig / --local-kubeconfig")
        self.remote = Side("remote", "[remote] kubeconfig / --remote-kubeconfig")

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool | None, detail: str = "", fix: str = "") -> None:
        self.checks.append(Check(name, ok, detail, fix))

    async def run(self) -> list[Check]:
        try:
            self.node_name()
            for side in (self.local, self.remote):
                await self.connect(side)
            self.skew()
            await self.local_identity()
            await self.remote_identity()
            for side, perms in ((self.local, LOCAL_PERMISSIONS), (self.remote, REMOTE_PERMISSIONS)):
                await self.permissions(side, perms)
            await self.node_free()
            await self.local_endpoint()
        finally:
            with trio.CancelScope(shield=True):
                for side in (self.local, self.remote):
                    if side.client is not None:
                        await side.client.aclose()
        return self.checks

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
            else:
                fix = (
                    "give AK a node identity (system:node:<name> in system:nodes) or install the "
                    "Helm chart's ClusterRole for its ServiceAccount"
                )
            self.add(name, False, detail, fix)

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


def _short(e: BaseException) -> str:
    if isinstance(e, ApiError):
        return f"{e.status} {e.reason}: {e.message}"[:300]
    if isinstance(e, Unreachable):
        return e.reason[:300]  # without the "remote API server https://..." prefix
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]


def _minor(info: dict[str, Any]) -> tuple[int, int] | None:
    try:
        major = int(re.sub(r"\D", "", str(info.get("major", ""))))
        minor = int(re.sub(r"\D", "", str(info.get("minor", ""))))
    except ValueError:
        found = re.match(r"v(\d+)\.(\d+)", str(info.get("gitVersion", "")))
        return (int(found[1]), int(found[2])) if found else None
    return major, minor


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        mark = good if c.ok else bad if c.ok is False else "-"
        out.write(f"{mark} {c.name.ljust(width)}  {c.detail}".rstrip() + "\n")
        if c.ok is False and c.fix:
            out.write(f"    fix: {c.fix}\n")
    failed = sum(1 for c in checks if c.ok is False)
    skipped = sum(1 for c in checks if c.ok is None)
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
