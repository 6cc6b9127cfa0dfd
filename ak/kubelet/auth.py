"""Who is calling, and may they: a kubelet's webhook authentication and authorization.

* Client certificates: TLS already verified the chain against the local
  cluster's client CA; the subject's CN is the user, its O entries the groups.
* Bearer tokens: a TokenReview on the local API server.
* No credentials: refused (anonymous access is off, as it should be on a port
  that can exec into pods).
* Authorization: a SubjectAccessReview per (user, verb, nodes/<subresource>).

Answers are cached briefly, like the kubelet's webhook caches (authentication
2 min; authorization 5 min allowed, 30 s denied), so a busy ``kubectl logs``
loop costs the API server nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import trio
from cryptography import x509

from ak.core.x509names import identity
from ak.kube.client import KubeClient
from ak.kube.errors import KubeError
from ak.kubelet import authz
from ak.kubelet.routes import HTTPProblem

log = logging.getLogger(__name__)

AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def review_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out


def user_from_certificate(der: bytes) -> User:
    """The identity a verified client certificate carries (as the x509 authenticator)."""
    name, groups = identity(x509.load_der_x509_certificate(der))
    if not name:
        raise HTTPProblem(401, "Unauthorized: client certificate without a common name")
    return User(name, groups=(*groups, AUTHENTICATED))


class _TTLCache:
    def __init__(self) -> None:
        self._items: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._items.get(key)
        if hit is None:
            return None
        if hit[0] < trio.current_time():
            del self._items[key]
            return None
        return hit[1]

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if len(self._items) > 10_000:  # bound memory under a flood of distinct keys
            now = trio.current_time()
            self._items = {k: v for k, v in self._items.items() if v[0] >= now}
            if len(self._items) > 10_000:
                self._items.clear()
        self._items[key] = (trio.current_time() + ttl, value)


_DENIED = object()


class Authenticator:
    def __init__(self, local: KubeClient, *, ttl: float = 120, negative_ttl: float = 10) -> None:
        self.local = local
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._cache = _TTLCache()

    async def authenticate(self, peer_cert: bytes | None, authorization: str | None) -> User:
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                user = await self._token(token.strip())
                if user is not None:
                    return user
                raise HTTPProblem(401, "Unauthorized")
        if peer_cert:
            return user_from_certificate(peer_cert)
        raise HTTPProblem(401, "Unauthorized")

    async def _token(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return None if cached is _DENIED else cached
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        try:
            review = await self.local.create("/apis/authentication.k8s.io/v1/tokenreviews", body)
        except KubeError as e:
            log.warning("kubelet API: TokenReview failed: %s", e)
            return None  # not cached: the next request asks again
        status = review.get("status") or {}
        if not status.get("authenticated"):
            self._cache.put(key, _DENIED, self.negative_ttl)
            return None
        info = status.get("user") or {}
        user = User(
            str(info.get("username", "")),
            str(info.get("uid", "")),
            tuple(info.get("groups") or ()),
            tuple(sorted((k, tuple(v)) for k, v in (info.get("extra") or {}).items())),
        )
        self._cache.put(key, user, self.ttl)
        return user


class Authorizer:
    def __init__(
        self,
        local: KubeClient,
        node_name: str,
        *,
        allowed_ttl: float = 300,
        denied_ttl: float = 30,
    ) -> None:
        self.local = local
        self.node_name = node_name
        self.allowed_ttl = allowed_ttl
        self.denied_ttl = denied_ttl
        self._cache = _TTLCache()

    async def authorize(self, user: User, method: str, target: str) -> None:
        """Return if any of the request's permissions is granted; raise 403/500 otherwise."""
        wanted = authz.required(method, target, self.node_name)
        for attrs in wanted:
            if await self._allowed(user, attrs):
                return
        subresources = ",".join(a.subresource for a in wanted)
        raise HTTPProblem(
            403,
            f"Forbidden (user={user.name}, verb={wanted[0].verb}, resource=nodes, "
            f"subresource(s)=[{subresources}])",
        )

    async def _allowed(self, user: User, attrs: authz.NodeAttributes) -> bool:
        key = (user, attrs)
        cached = self._cache.get(key)
        if cached is not None:
            return bool(cached)
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {**user.review_fields(), "resourceAttributes": attrs.review_spec()},
        }
        try:
            review = await self.local.create(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews", body
            )
        except KubeError as e:
            log.warning("kubelet API: SubjectAccessReview failed: %s", e)
            raise HTTPProblem(
                500,
                f"Authorization error (user={user.name}, verb={attrs.verb}, resource=nodes, "
                f"subresource={attrs.subresource})",
            ) from e
        allowed = bool((review.get("status") or {}).get("allowed"))
        self._cache.put(key, allowed, self.allowed_ttl if allowed else self.denied_ttl)
        return allowed
