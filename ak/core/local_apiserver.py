"""Where remote pods reach the LOCAL API server, and the environment that says so.

The remote kubelet injects ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the
``KUBERNETES_PORT*`` family for the REMOTE ``kubernetes`` Service; in-cluster
clients would then talk to the wrong cluster. ``with_apiserver_env`` sets them
all to the local API server unless the pod opts out
(``ANNOTATION_LOCAL_APISERVER_ENV``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ak.core.codec import clone
from ak.core.labels import ANNOTATION_LOCAL_APISERVER_ENV
from ak.core.types import Obj

KUBERNETES_SERVICE_PORT = 443
"""The port of every cluster's ``kubernetes`` Service, so the one whose
``KUBERNETES_PORT_443_TCP*`` variables the remote kubelet injects."""

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Endpoint:
    """Where remote pods reach the LOCAL API server."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{_bracketed(self.host)}:{self.port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def local_endpoint(server: str, host: str | None, port: int | None) -> Endpoint:
    """The endpoint remote pods are told about.

    ``host``/``port`` are the configured ones (``local.apiserverHost``,
    ``local.apiserverPort``; None = not configured). Without a host, the
    local kubeconfig's server URL is used, its port unless one is
    configured; with a host and no port, 443.
    """
    if host:
        return Endpoint(host, port or 443)
    url = urlsplit(server)
    if not url.hostname:
        raise ValueError(f"cannot take an API host from {server!r}")
    default = 443 if url.scheme != "http" else 80
    return Endpoint(url.hostname, port or url.port or default)


def apiserver_env(endpoint: Endpoint) -> list[Obj]:
    """The variables a kubelet derives from the ``kubernetes`` Service, for ``endpoint``.

    The remote kubelet injects ``KUBERNETES_PORT_443_TCP*`` for the remote
    Service (always port 443); they are overridden to point at the local
    endpoint too, so no variable of the family names the remote cluster.
    """
    host, port = endpoint.host, str(endpoint.port)
    url = f"tcp://{_bracketed(endpoint.host)}:{endpoint.port}"
    pairs = [
        ("KUBERNETES_SERVICE_HOST", host),
        ("KUBERNETES_SERVICE_PORT", port),
        ("KUBERNETES_SERVICE_PORT_HTTPS", port),
        ("KUBERNETES_PORT", url),
    ]
    for service_port in dict.fromkeys((KUBERNETES_SERVICE_PORT, endpoint.port)):
        prefix = f"KUBERNETES_PORT_{service_port}_TCP"
        pairs += [
            (prefix, url),
            (f"{prefix}_PROTO", "tcp"),
            (f"{prefix}_PORT", port),
            (f"{prefix}_ADDR", host),
        ]
    return [{"name": name, "value": value} for name, value in pairs]


def wants_apiserver_env(local: Obj) -> bool:
    annotations: dict[str, str] = local.get("metadata", {}).get("annotations") or {}
    return annotations.get(ANNOTATION_LOCAL_APISERVER_ENV, "").strip().lower() != "false"


def with_apiserver_env(local: Obj, remote: Obj, endpoint: Endpoint) -> Obj:
    """``remote`` (the translated pod) with the local API endpoint in every container.

    A variable the container already sets (the pod author's, or AK's
    configured ``pods.env``) is kept. AK's go first so that later entries can
    use ``$(KUBERNETES_SERVICE_HOST)``.
    """
    result = clone(remote)
    if not wants_apiserver_env(local):
        return result
    family = apiserver_env(endpoint)
    for field in _CONTAINER_LISTS:
        for container in result.get("spec", {}).get(field) or []:
            env: list[Obj] = container.get("env") or []
            taken = {var["name"] for var in env}
            container["env"] = [v for v in family if v["name"] not in taken] + env
    return result
