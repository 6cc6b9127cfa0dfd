"""Which permission a kubelet API request needs: the kubelet's own mapping.

A kubelet in webhook mode asks the API server (SubjectAccessReview) whether
the caller may ``<verb>`` the ``nodes/<subresource>`` of this node
(pkg/kubelet/server/auth.go). The verb follows the HTTP method; the
subresource follows the path. With fine-grained kubelet authorization
(KubeletFineGrainedAuthz, on since 1.33) ``/pods``, ``/healthz`` and
``/configz`` first try their own subresource and fall back to ``proxy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}

# (path prefix, subresources to try in order). Prefixes match the path itself
# or anything below it, never a longer name ("/statsx" is not "/stats").
_BY_PATH: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/stats", ("stats",)),
    ("/metrics", ("metrics",)),
    ("/logs", ("log",)),
    ("/spec", ("spec",)),
    ("/checkpoint", ("checkpoint",)),
    ("/pods", ("pods", "proxy")),
    ("/healthz", ("healthz", "proxy")),
    ("/configz", ("configz", "proxy")),
)


@dataclass(frozen=True)
class NodeAttributes:
    """``resourceAttributes`` of a SubjectAccessReview on this node."""

    verb: str
    subresource: str
    name: str

    def review_spec(self) -> dict[str, str]:
        return {
            "verb": self.verb,
            "resource": "nodes",
            "subresource": self.subresource,
            "name": self.name,
            "group": "",
            "version": "v1",
        }


def verb_for(method: str) -> str:
    return _VERBS.get(method.upper(), "*")


def subresources_for(path: str) -> tuple[str, ...]:
    path = urlsplit(path).path
    for prefix, subresources in _BY_PATH:
        if path == prefix or path.startswith(prefix + "/"):
            return subresources
    return ("proxy",)


def required(method: str, target: str, node_name: str) -> list[NodeAttributes]:
    """The permissions that would each allow the request, most specific first."""
    verb = verb_for(method)
    return [NodeAttributes(verb, sub, node_name) for sub in subresources_for(target)]
