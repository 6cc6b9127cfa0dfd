"""The remote pod's LOCAL identity: volumes, identity Secret, CA replica."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ak.core.pod_env import pinned_fields
from ak.core.pods import to_remote_pod
from ak.core.root_ca import is_root_ca_replica, root_ca_needs_update, root_ca_replica
from ak.core.serviceaccount import (
    PodIdentity,
    TokenSpec,
    identity_record,
    identity_secret,
    identity_secret_name,
    is_identity_secret,
    pod_identity,
    rewrite_volumes,
    without_values,
)
from ak.core.types import Obj
from ak.core.validation import is_dns_subdomain
from tests.unit.fixtures import NAMESPACE, NODE, POD_UID, REMOTE_NAMESPACE, deployment_pod

POD = "crossplane-684d498858-frd4t"
SECRET = f"ak-identity-{POD}"
CA = "ak-local-kube-root-ca.crt"
ISSUED = datetime(2026, 11, 22, 1, 0, 5, 250000, tzinfo=UTC)


def translate(pod: Obj) -> Obj:
    return to_remote_pod(pod, node_name=NODE, remote_namespace=REMOTE_NAMESPACE, extra_env=[])


def token_source(path: str = "token", audience: str | None = None, exp: int | None = 3607) -> Obj:
    source: Obj = {"path": path}
    if audience is not None:
        source["audience"] = audience
    if exp is not None:
        source["expirationSeconds"] = exp
    return {"serviceAccountToken": source}


def field_item(path: str, field: str, **extra: Any) -> Obj:
    return {"path": path, "fieldRef": {"apiVersion": "v1", "fieldPath": field}, **extra}


def pod_with_volumes(*volumes: Obj) -> Obj:
    local = deployment_pod()
    local["spec"]["volumes"] = list(volumes)
    return local


# --- names -------------------------------------------------------------------


def test_identity_secret_name_is_prefixed_pod_name() -> None:
    assert identity_secret_name(POD) == SECRET


def test_long_pod_names_are_cut_with_a_hash() -> None:
    a = "a" * 200 + "." + "b" * 51  # 252: a valid pod name, too long with the prefix
    b = a[:-1] + "c"
    na, nb = identity_secret_name(a), identity_secret_name(b)
    assert len(na) == 253 and is_dns_subdomain(na) and na.startswith("ak-identity-aaa")
    assert na != nb
    # A cut right after a dot must not leave ".-" behind.
    dotted = "a" * 223 + "." + "b" * 29
    assert is_dns_subdomain(identity_secret_name(dotted))


# --- what a pod needs -----------------------------------------------------------


def test_default_api_access_volume_needs() -> None:
    identity = pod_identity(deployment_pod())
    assert identity == PodIdentity(
        tokens=(TokenSpec("token-0", "", 3607),), fields=("metadata.namespace",), root_ca=True
    )
    assert identity.needs_secret
    assert identity.secret_keys == {"token-0", "metadata.namespace"}


def test_token_request_is_bound_to_the_pod() -> None:
    assert TokenSpec("token-1", "vault", 600).request(POD, POD_UID) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": ["vault"],
            "expirationSeconds": 600,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": POD, "uid": POD_UID},
        },
    }
    assert TokenSpec("token-0", "", 3607).request(POD, POD_UID)["spec"]["audiences"] == []


def test_pod_without_service_account_token_needs_nothing() -> None:
    local = pod_with_volumes({"name": "certs", "secret": {"secretName": "x"}})
    local["spec"]["automountServiceAccountToken"] = False
    assert pod_identity(local) == PodIdentity()
    assert not pod_identity(local).needs_secret
    assert rewrite_volumes(local["spec"]["volumes"], local) == local["spec"]["volumes"]


def test_pod_without_volumes() -> None:
    local = deployment_pod()
    del local["spec"]["volumes"]
    assert pod_identity(local) == PodIdentity()
    assert "volumes" not in translate(local)["spec"]


# --- the rewritten volumes -------------------------------------------------------------


def test_api_access_volume_rewritten() -> None:
    local = deployment_pod()
    volumes = rewrite_volumes(local["spec"]["volumes"], local)
    assert volumes[0] == local["spec"]["volumes"][0]
    assert volumes[1] == {
        "name": "kube-api-access-x7k2p",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"secret": {"name": SECRET, "items": [{"key": "token-0", "path": "token"}]}},
                {"configMap": {"name": CA, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "secret": {
                        "name": SECRET,
                        "items": [{"key": "metadata.namespace", "path": "namespace"}],
                    }
                },
            ],
        },
    }


def test_custom_projected_volume_mixing_sources() -> None:
    local = pod_with_volumes(
        {
            "name": "mixed",
            "projected": {
                "defaultMode": 288,
                "sources": [
                    {"secret": {"name": "app", "items": [{"key": "k", "path": "k"}]}},
                    {"configMap": {"name": "settings"}},
                    token_source("vault/token", audience="vault", exp=600),
                    {
                        "downwardAPI": {
                            "items": [
                                field_item("labels", "metadata.labels"),
                                field_item("uid", "metadata.uid", mode=256),
                                field_item("name", "metadata.name"),
                            ]
                        }
                    },
                    token_source("api-token", exp=None),
                ],
            },
        },
        {"name": "again", "projected": {"sources": [token_source("t", audience="vault", exp=600)]}},
    )
    identity = pod_identity(local)
    assert identity.tokens == (TokenSpec("token-0", "vault", 600), TokenSpec("token-1", "", 3600))
    assert identity.fields == ("metadata.uid",)
    assert not identity.root_ca
    mixed, again = rewrite_volumes(local["spec"]["volumes"], local)
    assert mixed["projected"] == {
        "defaultMode": 288,
        "sources": [
            {"secret": {"name": "app", "items": [{"key": "k", "path": "k"}]}},
            {"configMap": {"name": "settings"}},
            {"secret": {"name": SECRET, "items": [{"key": "token-0", "path": "vault/token"}]}},
            {
                "secret": {
                    "name": SECRET,
                    "items": [{"key": "metadata.uid", "path": "uid", "mode": 256}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        field_item("labels", "metadata.labels"),
                        field_item("name", "metadata.name"),
                    ]
                }
            },
            {"secret": {"name": SECRET, "items": [{"key": "token-1", "path": "api-token"}]}},
        ],
    }
    # The same audience and lifetime is one token, read by both volumes.
    assert again["projected"]["sources"] == [
        {"secret": {"name": SECRET, "items": [{"key": "token-0", "path": "t"}]}}
    ]


def test_downward_api_volume_with_namespace_becomes_projected() -> None:
    local = pod_with_volumes(
        {
            "name": "info",
            "downwardAPI": {
                "defaultMode": 292,
                "items": [
                    field_item("ns", "metadata.namespace"),
                    field_item("labels", "metadata.labels"),
                    {
                        "path": "cpu",
                        "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"},
                    },
                ],
            },
        }
    )
    assert pod_identity(local).fields == ("metadata.namespace",)
    (info,) = rewrite_volumes(local["spec"]["volumes"], local)
    assert info == {
        "name": "info",
        "projected": {
            "defaultMode": 292,
            "sources": [
                {
                    "secret": {
                        "name": SECRET,
                        "items": [{"key": "metadata.namespace", "path": "ns"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            field_item("labels", "metadata.labels"),
                            {
                                "path": "cpu",
                                "resourceFieldRef": {
                                    "containerName": "c",
                                    "resource": "limits.cpu",
                                },
                            },
                        ]
                    }
                },
            ],
        },
    }


def test_downward_api_volume_without_pinned_fields_is_unchanged() -> None:
    volume = {"name": "info", "downwardAPI": {"items": [field_item("labels", "metadata.labels")]}}
    local = pod_with_volumes(volume)
    assert rewrite_volumes([volume], local) == [volume]
    assert not pod_identity(local).needs_secret


def test_downward_api_volume_with_only_pinned_fields() -> None:
    volume = {"name": "info", "downwardAPI": {"items": [field_item("uid", "metadata.uid")]}}
    local = pod_with_volumes(volume)
    assert rewrite_volumes([volume], local) == [
        {
            "name": "info",
            "projected": {
                "sources": [
                    {"secret": {"name": SECRET, "items": [{"key": "metadata.uid", "path": "uid"}]}}
                ]
            },
        }
    ]


def test_every_kube_root_ca_reference_reads_the_replica() -> None:
    local = pod_with_volumes(
        {"name": "ca", "configMap": {"name": "kube-root-ca.crt", "defaultMode": 420}},
        {"name": "p", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}},
    )
    ca_ref = {"valueFrom": {"configMapKeyRef": {"name": "kube-root-ca.crt", "key": "ca.crt"}}}
    other_ref = {"valueFrom": {"configMapKeyRef": {"name": "app", "key": "x"}}}
    local["spec"]["initContainers"] = [
        {"name": "init", "image": "busybox", "env": [{"name": "CA", **ca_ref}]}
    ]
    local["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "kube-root-ca.crt"}, "prefix": "CA_"},
        {"secretRef": {"name": "kube-root-ca.crt"}},
    ]
    local["spec"]["containers"][0]["env"] = [{"name": "X", **other_ref}]
    assert pod_identity(local) == PodIdentity(root_ca=True)
    spec = translate(local)["spec"]
    assert spec["volumes"] == [
        {"name": "ca", "configMap": {"name": CA, "defaultMode": 420}},
        {"name": "p", "projected": {"sources": [{"configMap": {"name": CA}}]}},
    ]
    assert spec["initContainers"][0]["env"] == [
        {"name": "CA", "valueFrom": {"configMapKeyRef": {"name": CA, "key": "ca.crt"}}}
    ]
    container = spec["containers"][0]
    assert container["envFrom"] == [
        {"configMapRef": {"name": CA}, "prefix": "CA_"},
        {"secretRef": {"name": "kube-root-ca.crt"}},  # a Secret of that name is just a Secret
    ]
    assert container["env"] == [{"name": "X", **other_ref}]


@pytest.mark.parametrize("where", ["env", "envFrom"])
def test_root_ca_needed_for_env_references_alone(where: str) -> None:
    local = pod_with_volumes()
    container = local["spec"]["containers"][0]
    if where == "env":
        container["env"] = [
            {
                "name": "CA",
                "valueFrom": {"configMapKeyRef": {"name": "kube-root-ca.crt", "key": "ca.crt"}},
            }
        ]
    else:
        container["envFrom"] = [{"configMapRef": {"name": "kube-root-ca.crt"}}]
    assert pod_identity(local) == PodIdentity(root_ca=True)


def test_remote_pod_has_no_remote_credentials() -> None:
    spec = translate(deployment_pod())["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec and "serviceAccount" not in spec
    for volume in spec["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            assert "serviceAccountToken" not in source
            assert source.get("configMap", {}).get("name") != "kube-root-ca.crt"


def test_remote_only_fields_stay_field_refs() -> None:
    local = deployment_pod()
    refs = ["status.podIP", "status.hostIP", "status.podIPs", "metadata.name", "metadata.labels"]
    local["spec"]["containers"][0]["env"] = [
        {"name": f"V{i}", "valueFrom": {"fieldRef": {"fieldPath": ref}}}
        for i, ref in enumerate(refs)
    ]
    env = translate(local)["spec"]["containers"][0]["env"]
    assert env == local["spec"]["containers"][0]["env"]


def test_rewrite_does_not_mutate_the_local_pod() -> None:
    local = deployment_pod()
    local["spec"]["volumes"].append(
        {"name": "info", "downwardAPI": {"items": [field_item("ns", "metadata.namespace")]}}
    )
    before = copy.deepcopy(local)
    rewrite_volumes(local["spec"]["volumes"], local)
    translate(local)
    assert local == before


# A property: whatever the volumes, no remote source reads the remote cluster's
# identity, and every item read from the identity Secret is one it has.
_FIELDS = ["metadata.namespace", "metadata.uid", "metadata.name", "metadata.labels"]
_sources = st.one_of(
    st.builds(
        token_source,
        st.sampled_from(["token", "a/b"]),
        st.sampled_from([None, "", "vault", "sts"]),
        st.sampled_from([None, 600, 3607]),
    ),
    st.builds(
        lambda name: {"configMap": {"name": name}}, st.sampled_from(["kube-root-ca.crt", "cfg"])
    ),
    st.builds(
        lambda fields: {
            "downwardAPI": {"items": [field_item(f"f{i}", f) for i, f in enumerate(fields)]}
        },
        st.lists(st.sampled_from(_FIELDS), max_size=3),
    ),
    st.just({"secret": {"name": "app"}}),
)
_volumes = st.lists(
    st.one_of(
        st.builds(lambda s: {"projected": {"sources": s}}, st.lists(_sources, max_size=4)),
        st.builds(
            lambda fields: {
                "downwardAPI": {"items": [field_item(f"f{i}", f) for i, f in enumerate(fields)]}
            },
            st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=3),
        ),
        st.just({"configMap": {"name": "kube-root-ca.crt"}}),
        st.just({"emptyDir": {}}),
    ),
    max_size=4,
)


@given(_volumes)
def test_rewritten_volumes_read_only_local_identity(volumes: list[Obj]) -> None:
    volumes = [{"name": f"v{i}", **v} for i, v in enumerate(volumes)]
    local = pod_with_volumes(*volumes)
    identity = pod_identity(local)
    rewritten = rewrite_volumes(volumes, local)
    assert [v["name"] for v in rewritten] == [v["name"] for v in volumes]
    read: set[str] = set()
    for volume in rewritten:
        sources = volume.get("projected", {}).get("sources", [])
        singles = [{"configMap": volume["configMap"]}] if "configMap" in volume else []
        if "downwardAPI" in volume:
            singles.append({"downwardAPI": volume["downwardAPI"]})
        for source in sources + singles:
            assert "serviceAccountToken" not in source
            assert source.get("configMap", {}).get("name") != "kube-root-ca.crt"
            for item in source.get("downwardAPI", {}).get("items", []):
                assert item["fieldRef"]["fieldPath"] not in ("metadata.namespace", "metadata.uid")
            if source.get("secret", {}).get("name") == SECRET:
                read |= {item["key"] for item in source["secret"]["items"]}
    assert read == identity.secret_keys
    assert identity.root_ca == any("kube-root-ca.crt" in repr(v) for v in volumes)


# --- the identity Secret ------------------------------------------------------------------


def test_identity_secret() -> None:
    local = deployment_pod()
    identity = pod_identity(local)
    secret = identity_secret(
        local,
        identity,
        tokens={"token-0": "header.payload.sig"},
        issued_at=ISSUED,
        ttl=3607,
        node_name=NODE,
        remote_namespace=REMOTE_NAMESPACE,
    )
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": SECRET,
            "namespace": REMOTE_NAMESPACE,
            "labels": {
                "actual.vk/node-name": NODE,
                "actual.vk/namespace": NAMESPACE,
                "app.kubernetes.io/managed-by": "actual-kubelets",
                "actual.vk/pod-identity": "true",
            },
            "annotations": {
                "actual.vk/pod-name": POD,
                "actual.vk/local-uid": POD_UID,
                "actual.vk/tokens-issued-at": "2026-11-22T01:00:05.250000Z",
                "actual.vk/tokens-ttl-seconds": "3607",
            },
        },
        "data": {
            "token-0": base64.b64encode(b"header.payload.sig").decode(),
            "metadata.namespace": base64.b64encode(NAMESPACE.encode()).decode(),
        },
    }
    assert is_identity_secret(secret)
    assert "actual.vk/replica" not in secret["metadata"]["labels"]


def test_identity_secret_needs_every_token() -> None:
    local = deployment_pod()
    with pytest.raises(ValueError, match="token-0"):
        identity_secret(
            local,
            pod_identity(local),
            tokens={},
            issued_at=ISSUED,
            ttl=3607,
            node_name=NODE,
            remote_namespace=REMOTE_NAMESPACE,
        )


def _identity_secret(local: Obj, identity: PodIdentity, *, token: str, ttl: int) -> Obj:
    return identity_secret(
        local,
        identity,
        tokens={"token-0": token},
        issued_at=ISSUED,
        ttl=ttl,
        node_name=NODE,
        remote_namespace=REMOTE_NAMESPACE,
    )


def test_identity_record_round_trip_and_serves() -> None:
    local = deployment_pod()
    identity = pod_identity(local)
    secret = _identity_secret(local, identity, token="t", ttl=600)
    record = identity_record(secret)
    assert record is not None
    assert (record.pod_name, record.uid, record.issued_at, record.ttl) == (
        POD,
        POD_UID,
        ISSUED,
        600,
    )
    assert record.serves(local, identity)
    other = deployment_pod()
    other["metadata"]["uid"] = "another-incarnation"
    assert not record.serves(other, identity)
    more = PodIdentity((*identity.tokens, TokenSpec("token-1", "vault", 600)), identity.fields)
    assert not record.serves(local, more)


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {"actual.vk/tokens-issued-at": "yesterday", "actual.vk/tokens-ttl-seconds": "600"},
        {"actual.vk/tokens-issued-at": "2026-11-22T01:00:05Z", "actual.vk/tokens-ttl-seconds": "x"},
    ],
)
def test_identity_record_of_mangled_secret_is_none(annotations: dict[str, str]) -> None:
    meta = {
        "annotations": {"actual.vk/pod-name": POD, "actual.vk/local-uid": POD_UID, **annotations}
    }
    assert identity_record({"metadata": meta, "data": {}}) is None


# --- the CA replica -------------------------------------------------------------------------


def local_root_ca(pem: str = "-----BEGIN CERTIFICATE-----\nMII...\n") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "kube-root-ca.crt",
            "namespace": NAMESPACE,
            "uid": "ca-uid",
            "resourceVersion": "17",
            "annotations": {"kubernetes.io/description": "Contains a CA bundle..."},
        },
        "data": {"ca.crt": pem},
    }


def test_root_ca_replica() -> None:
    replica = root_ca_replica(
        local_root_ca(),
        node_name=NODE,
        local_namespace=NAMESPACE,
        remote_namespace=REMOTE_NAMESPACE,
    )
    assert replica == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CA,
            "namespace": REMOTE_NAMESPACE,
            "labels": {
                "actual.vk/node-name": NODE,
                "actual.vk/namespace": NAMESPACE,
                "app.kubernetes.io/managed-by": "actual-kubelets",
                "actual.vk/local-root-ca": "true",
            },
            "annotations": {
                "actual.vk/source-uid": "ca-uid",
                "actual.vk/source-resource-version": "17",
            },
        },
        "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMII...\n"},
    }
    assert is_root_ca_replica(replica)
    current = copy.deepcopy(replica)
    current["metadata"]["annotations"]["someone/else"] = "x"
    current["metadata"]["annotations"]["actual.vk/source-resource-version"] = "16"
    assert not root_ca_needs_update(replica, current)
    rotated = root_ca_replica(
        local_root_ca("-----BEGIN CERTIFICATE-----\nNEW\n"),
        node_name=NODE,
        local_namespace=NAMESPACE,
        remote_namespace=REMOTE_NAMESPACE,
    )
    assert root_ca_needs_update(rotated, current)
    current["metadata"]["labels"].pop("actual.vk/local-root-ca")
    assert root_ca_needs_update(replica, current)


def test_cached_identity_secret_keeps_keys_and_record_but_no_token() -> None:
    local = deployment_pod()
    identity = pod_identity(local)
    secret = _identity_secret(local, identity, token="header.payload.sig", ttl=3607)
    record = identity_record(secret)
    view = without_values(copy.deepcopy(secret))
    assert view["data"] == {"token-0": "", "metadata.namespace": ""}
    assert "header" not in repr(view) and base64.b64encode(b"header").decode() not in repr(view)
    assert identity_record(view) == record
    assert record is not None and record.serves(local, identity)
    assert is_identity_secret(view) and view["metadata"] == secret["metadata"]


def test_the_token_controllers_slim_pod_writes_the_same_identity() -> None:
    # The token controller keeps only a pod's essentials for its lifetime; they
    # must carry every field an identity Secret or a TokenRequest is made from.
    from ak.tokens.identity import essentials

    local = deployment_pod()
    local["status"] = {"phase": "Running", "podIP": "10.0.0.9"}
    slim = essentials(local)
    identity = pod_identity(local)
    assert pinned_fields(slim) == pinned_fields(local)
    assert _identity_secret(slim, identity, token="t", ttl=600) == _identity_secret(
        local, identity, token="t", ttl=600
    )
    spec = identity.tokens[0]
    meta, slim_meta = local["metadata"], slim["metadata"]
    assert spec.request(slim_meta["name"], slim_meta["uid"]) == spec.request(
        meta["name"], meta["uid"]
    )
    assert slim["status"] == {"phase": "Running"}
