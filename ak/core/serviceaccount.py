"""A remotely running pod keeps its LOCAL identity: tokens, CA, namespace, API endpoint.

Since Kubernetes 1.24 every pod gets a projected ``kube-api-access-*``
volume: a ``serviceAccountToken`` source, the ``kube-root-ca.crt``
ConfigMap and the ``metadata.namespace`` downward-API field. Passed through
unchanged, the REMOTE kubelet would fill it with a remote token, the remote
CA and the remote namespace name, and the pod would talk to the wrong
cluster. This module rewrites the remote pod so that every one of these
reads an object AK keeps in the remote namespace:

* each ``serviceAccountToken`` source becomes a ``secret`` source reading
  ``token-<n>`` (one key per distinct audience and expiration) of the pod's
  identity Secret (``identity_secret_name``) at the same path; the file mode
  is the volume's ``defaultMode``, as for the token itself;
* every reference to ``kube-root-ca.crt`` (projected and ``configMap``
  volumes, ``configMapKeyRef``, ``envFrom``) reads ``ROOT_CA_REPLICA``
  instead, a copy of the LOCAL CA bundle under a name the remote cluster's
  root-CA publisher never touches;
* downward-API volume items whose value differs remotely (``pinned_fields``:
  ``metadata.namespace`` and ``metadata.uid`` are the ones a volume may name)
  read the identity Secret, whose keys are the field paths. ``metadata.name``
  is the same on both sides and stays a downward-API item, as do labels,
  annotations and resource fields. A plain ``downwardAPI`` volume with such an
  item becomes a ``projected`` volume with the same ``defaultMode``.

Which tokens to request and which fields to store is ``pod_identity``; the
Secret itself is ``identity_secret``. The CA replica ConfigMap is made in
``root_ca``; the local API server in the environment
(``KUBERNETES_SERVICE_HOST`` & co.) by ``local_apiserver``; env ``fieldRef``s
are pinned by ``pod_env``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ak.core.codec import clone
from ak.core.labels import (
    ANNOTATION_LOCAL_UID,
    ANNOTATION_POD_NAME,
    ANNOTATION_TOKENS_ISSUED_AT,
    ANNOTATION_TOKENS_TTL,
    LABEL_POD_IDENTITY,
    POD_IDENTITY_VALUE,
    ownership_labels,
)
from ak.core.names import fnv1_64, node_label_value
from ak.core.pod_env import pinned_fields
from ak.core.root_ca import KUBE_ROOT_CA, rewrite_root_ca_ref
from ak.core.timefmt import format_micro_time, parse_time
from ak.core.types import Obj
from ak.core.validation import DNS_SUBDOMAIN_MAX

IDENTITY_SECRET_PREFIX = "ak-identity-"
DEFAULT_TOKEN_EXPIRATION = 3600
"""What the API server defaults a projected token's ``expirationSeconds`` to."""

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_HASH_HEX = 16


# --- names -------------------------------------------------------------------


def owner_reference(pod: Obj) -> Obj:
    """An ownerReference to ``pod`` (a remote pod as the API server returned it)."""
    meta = pod["metadata"]
    return {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}


def identity_secret_name(pod_name: str) -> str:
    """``ak-identity-<pod name>``; over-long names are cut and end in a hash.

    A pod name is a DNS subdomain of up to 253 characters, so the prefix may
    push it over the limit; the hash of the full name keeps cut names apart.
    """
    name = IDENTITY_SECRET_PREFIX + pod_name
    if len(name) <= DNS_SUBDOMAIN_MAX:
        return name
    digest = f"{fnv1_64(pod_name.encode()):0{_HASH_HEX}x}"
    head = name[: DNS_SUBDOMAIN_MAX - 1 - _HASH_HEX].rstrip(".-")
    return f"{head}-{digest}"


# --- what a pod needs ----------------------------------------------------------


@dataclass(frozen=True)
class TokenSpec:
    """One token to request: a distinct (audience, expirationSeconds) of the pod."""

    key: str  # key in the identity Secret
    audience: str  # "" = the API server's own audiences
    expiration_seconds: int

    def request(self, pod_name: str, pod_uid: str) -> Obj:
        """The TokenRequest, bound to the local pod as a kubelet binds it."""
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [self.audience] if self.audience else [],
                "expirationSeconds": self.expiration_seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod_name,
                    "uid": pod_uid,
                },
            },
        }


@dataclass(frozen=True)
class PodIdentity:
    """What the remote pod reads from the LOCAL cluster, through AK's objects."""

    tokens: tuple[TokenSpec, ...] = ()
    fields: tuple[str, ...] = ()  # pinned field paths read from the identity Secret
    root_ca: bool = False  # reads ROOT_CA_REPLICA

    @property
    def needs_secret(self) -> bool:
        return bool(self.tokens or self.fields)

    @property
    def secret_keys(self) -> frozenset[str]:
        return frozenset(t.key for t in self.tokens) | frozenset(self.fields)


def _token_id(source: Obj) -> tuple[str, int]:
    return (
        source.get("audience") or "",
        int(source.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION),
    )


def _projected_sources(volumes: list[Obj]) -> list[Obj]:
    return [s for v in volumes for s in (v.get("projected") or {}).get("sources") or []]


def _token_keys(volumes: list[Obj]) -> dict[tuple[str, int], str]:
    keys: dict[tuple[str, int], str] = {}
    for source in _projected_sources(volumes):
        if "serviceAccountToken" in source:
            token = _token_id(source["serviceAccountToken"])
            keys.setdefault(token, f"token-{len(keys)}")
    return keys


def _field_path(item: Obj) -> str | None:
    path = (item.get("fieldRef") or {}).get("fieldPath")
    return path if isinstance(path, str) else None


def _downward_items(volumes: list[Obj]) -> list[Obj]:
    items: list[Obj] = []
    for volume in volumes:
        items += (volume.get("downwardAPI") or {}).get("items") or []
    for source in _projected_sources(volumes):
        items += (source.get("downwardAPI") or {}).get("items") or []
    return items


def _reads_root_ca(spec: Obj) -> bool:
    volumes: list[Obj] = spec.get("volumes") or []
    for volume in volumes:
        if (volume.get("configMap") or {}).get("name") == KUBE_ROOT_CA:
            return True
    for source in _projected_sources(volumes):
        if (source.get("configMap") or {}).get("name") == KUBE_ROOT_CA:
            return True
    for field in _CONTAINER_LISTS:
        for container in spec.get(field) or []:
            for var in container.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("configMapKeyRef") or {}
                if ref.get("name") == KUBE_ROOT_CA:
                    return True
            for source in container.get("envFrom") or []:
                if (source.get("configMapRef") or {}).get("name") == KUBE_ROOT_CA:
                    return True
    return False


def pod_identity(local: Obj) -> PodIdentity:
    """The tokens, pinned fields and CA the remote twin of ``local`` reads."""
    spec: dict[str, Any] = local.get("spec") or {}
    volumes: list[Obj] = spec.get("volumes") or []
    keys = _token_keys(volumes)
    tokens = tuple(TokenSpec(key, aud, exp) for (aud, exp), key in keys.items())
    pinned = pinned_fields(local)
    fields = dict.fromkeys(
        p for item in _downward_items(volumes) if (p := _field_path(item)) in pinned
    )
    return PodIdentity(tokens, tuple(fields), _reads_root_ca(spec))


# --- the remote pod's volumes ------------------------------------------------------


def _secret_item(key: str, item: Obj) -> Obj:
    out: Obj = {"key": key, "path": item["path"]}
    if "mode" in item:
        out["mode"] = item["mode"]
    return out


def _rewrite_downward(
    downward: Obj, pinned: dict[str, str], secret: str
) -> tuple[list[Obj], list[Obj]]:
    """(identity-Secret items, downward-API items left as they are)."""
    local_items: list[Obj] = []
    kept: list[Obj] = []
    for item in downward.get("items") or []:
        path = _field_path(item)
        if path is not None and path in pinned:
            local_items.append(_secret_item(path, item))
        else:
            kept.append(clone(item))
    return local_items, kept


def _rewrite_source(
    source: Obj, keys: dict[tuple[str, int], str], pinned: dict[str, str], secret: str
) -> list[Obj]:
    if token := source.get("serviceAccountToken"):
        item = {"key": keys[_token_id(token)], "path": token.get("path", "token")}
        return [{"secret": {"name": secret, "items": [item]}}]
    result = clone(source)
    if "configMap" in result:
        result["configMap"] = rewrite_root_ca_ref(result["configMap"])
        return [result]
    if downward := source.get("downwardAPI"):
        local_items, kept = _rewrite_downward(downward, pinned, secret)
        if not local_items:
            return [result]
        out: list[Obj] = [{"secret": {"name": secret, "items": local_items}}]
        if kept:
            result["downwardAPI"]["items"] = kept
            out.append(result)
        return out
    return [result]


def _rewrite_volume(
    volume: Obj, keys: dict[tuple[str, int], str], pinned: dict[str, str], secret: str
) -> Obj:
    result = clone(volume)
    if projected := volume.get("projected"):
        result["projected"]["sources"] = [
            out
            for source in projected.get("sources") or []
            for out in _rewrite_source(source, keys, pinned, secret)
        ]
    elif downward := volume.get("downwardAPI"):
        sources = _rewrite_source({"downwardAPI": downward}, keys, pinned, secret)
        if "secret" in sources[0]:
            for source in sources:
                source.get("downwardAPI", {}).pop("defaultMode", None)
            del result["downwardAPI"]
            result["projected"] = {"sources": sources}
            if "defaultMode" in downward:
                result["projected"]["defaultMode"] = downward["defaultMode"]
    elif "configMap" in volume:
        result["configMap"] = rewrite_root_ca_ref(volume["configMap"])
    return result


def rewrite_volumes(volumes: list[Obj], local: Obj) -> list[Obj]:
    """``volumes`` of ``local`` as the remote pod must have them (a deep copy)."""
    keys = _token_keys(volumes)
    pinned = pinned_fields(local)
    secret = identity_secret_name(local["metadata"]["name"])
    return [_rewrite_volume(v, keys, pinned, secret) for v in volumes]


# --- the identity Secret ------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def identity_secret(
    local: Obj,
    identity: PodIdentity,
    *,
    tokens: dict[str, str],
    issued_at: datetime,
    ttl: int,
    node_name: str,
    remote_namespace: str,
) -> Obj:
    """The pod's identity Secret: ``tokens`` (key -> token) and pinned fields.

    Its type is Opaque, which no remote controller acts on.
    """
    meta: dict[str, Any] = local["metadata"]
    missing = {t.key for t in identity.tokens} - tokens.keys()
    if missing:
        raise ValueError(f"no token for {sorted(missing)}")
    pinned = pinned_fields(local)
    data = {key: _b64(value) for key, value in sorted(tokens.items())}
    data.update({path: _b64(pinned[path]) for path in identity.fields})
    labels = {
        **ownership_labels(node_label_value(node_name), meta["namespace"]),
        LABEL_POD_IDENTITY: POD_IDENTITY_VALUE,
    }
    annotations = {
        ANNOTATION_POD_NAME: meta["name"],
        ANNOTATION_LOCAL_UID: meta.get("uid", ""),
        ANNOTATION_TOKENS_ISSUED_AT: format_micro_time(issued_at),
        ANNOTATION_TOKENS_TTL: str(ttl),
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": identity_secret_name(meta["name"]),
            "namespace": remote_namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "data": data,
    }


@dataclass(frozen=True)
class IdentityRecord:
    """What an existing identity Secret says about itself."""

    pod_name: str
    uid: str
    issued_at: datetime
    ttl: int
    keys: frozenset[str]

    def serves(self, local: Obj, identity: PodIdentity) -> bool:
        """Whether it was made for this incarnation of the pod and has every key."""
        return self.uid == local["metadata"].get("uid") and identity.secret_keys <= self.keys


def identity_record(secret: Obj) -> IdentityRecord | None:
    """Parse an identity Secret's annotations; None if they are missing or mangled."""
    annotations: dict[str, str] = secret.get("metadata", {}).get("annotations") or {}
    try:
        issued_at = parse_time(annotations[ANNOTATION_TOKENS_ISSUED_AT])
        ttl = int(annotations[ANNOTATION_TOKENS_TTL])
        return IdentityRecord(
            pod_name=annotations[ANNOTATION_POD_NAME],
            uid=annotations[ANNOTATION_LOCAL_UID],
            issued_at=issued_at,
            ttl=ttl,
            keys=frozenset(secret.get("data") or {}),
        )
    except (KeyError, ValueError):
        return None


def without_values(secret: Obj) -> Obj:
    """An identity Secret as AK caches it: its keys, not the tokens behind them.
    Nothing reads the values back (``identity_record`` needs only the keys),
    and at thousands of pods they are the larger half of the cached bytes."""
    data = secret.get("data")
    if data:
        secret["data"] = dict.fromkeys(data, "")
    return secret


def is_identity_secret(obj: Obj) -> bool:
    labels: dict[str, str] = obj.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_POD_IDENTITY) == POD_IDENTITY_VALUE
