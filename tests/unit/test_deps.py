import base64

import pytest

from ak.core.deps import (
    Kind,
    Ref,
    copy_needs_replace,
    copy_needs_update,
    is_own_copy,
    missing_reason,
    optional_missing_reason,
    pod_dependencies,
    to_remote_copy,
)
from ak.core.labels import LABEL_POD_IDENTITY
from ak.core.types import Obj
from tests.unit.fixtures import NAMESPACE, NODE, REMOTE_NAMESPACE, deployment_pod


def pod_with(spec: Obj) -> Obj:
    return {"metadata": {"name": "p"}, "spec": spec}


def deps(spec: Obj) -> list[tuple[str, str, bool]]:
    return [(r.kind, r.name, r.optional) for r in pod_dependencies(pod_with(spec))]


def test_deployment_pod_dependencies() -> None:
    # kube-root-ca.crt from kube-api-access is excluded; pull secret optional
    assert pod_dependencies(deployment_pod()) == [
        Ref("Secret", "crossplane-certs", False),
        Ref("Secret", "registry-creds", True),
    ]
    assert [r.optional for r in pod_dependencies(deployment_pod())] == [False, True]


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ({"secret": {"secretName": "s"}}, ("Secret", "s", False)),
        ({"secret": {"secretName": "s", "optional": True}}, ("Secret", "s", True)),
        ({"configMap": {"name": "c"}}, ("ConfigMap", "c", False)),
        ({"configMap": {"name": "c", "optional": True}}, ("ConfigMap", "c", True)),
        ({"projected": {"sources": [{"secret": {"name": "s"}}]}}, ("Secret", "s", False)),
        (
            {"projected": {"sources": [{"configMap": {"name": "c", "optional": True}}]}},
            ("ConfigMap", "c", True),
        ),
        ({"csi": {"driver": "d", "nodePublishSecretRef": {"name": "s"}}}, ("Secret", "s", False)),
        ({"cephfs": {"monitors": [], "secretRef": {"name": "s"}}}, ("Secret", "s", False)),
        ({"flexVolume": {"driver": "d", "secretRef": {"name": "s"}}}, ("Secret", "s", False)),
        ({"rbd": {"image": "i", "secretRef": {"name": "s"}}}, ("Secret", "s", False)),
        ({"iscsi": {"iqn": "q", "secretRef": {"name": "s"}}}, ("Secret", "s", False)),
        ({"azureFile": {"secretName": "s", "shareName": "x"}}, ("Secret", "s", False)),
    ],
)
def test_volume_references(volume: Obj, expected: tuple[str, str, bool]) -> None:
    assert deps({"volumes": [{"name": "v", **volume}]}) == [expected]


def test_volumes_without_references() -> None:
    spec = {
        "volumes": [
            # The local CA reaches the remote pod through AK's replica, never a copy.
            {"name": "ca", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}},
            {"name": "ca2", "configMap": {"name": "kube-root-ca.crt"}},
            {"name": "a", "emptyDir": {}},
            {"name": "b", "downwardAPI": {"items": []}},
            {"name": "c", "csi": {"driver": "d"}},
            {"name": "d", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
        ]
    }
    assert deps(spec) == []


def test_projected_with_token_excludes_only_root_ca() -> None:
    sources = [
        {"serviceAccountToken": {"path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt"}},
        {"configMap": {"name": "other"}},
        {"secret": {"name": "s"}},
    ]
    assert deps({"volumes": [{"name": "v", "projected": {"sources": sources}}]}) == [
        ("ConfigMap", "other", False),
        ("Secret", "s", False),
    ]


@pytest.mark.parametrize("containers", ["containers", "initContainers"])
def test_env_and_env_from_references(containers: str) -> None:
    container = {
        "name": "c",
        "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
            {
                "name": "B",
                "valueFrom": {"configMapKeyRef": {"name": "c1", "key": "k", "optional": True}},
            },
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "D", "value": "plain"},
        ],
        "envFrom": [
            {"secretRef": {"name": "s2", "optional": True}},
            {"configMapRef": {"name": "c2"}, "prefix": "X_"},
        ],
    }
    assert deps({containers: [container]}) == [
        ("ConfigMap", "c1", True),
        ("ConfigMap", "c2", False),
        ("Secret", "s1", False),
        ("Secret", "s2", True),
    ]


def test_ephemeral_containers_are_dependencies() -> None:
    # `kubectl debug` containers run remotely too, so what they read is copied.
    container = {"name": "dbg", "envFrom": [{"secretRef": {"name": "s"}}]}
    assert deps({"ephemeralContainers": [container]}) == [("Secret", "s", False)]


def test_optional_only_if_every_reference_optional() -> None:
    spec = {
        "volumes": [
            {"name": "v", "secret": {"secretName": "s", "optional": True}},
            {"name": "w", "configMap": {"name": "c", "optional": True}},
        ],
        "containers": [
            {"name": "a", "envFrom": [{"secretRef": {"name": "s"}}]},
            {"name": "b", "envFrom": [{"configMapRef": {"name": "c", "optional": True}}]},
        ],
        "imagePullSecrets": [{"name": "s"}],
    }
    assert deps(spec) == [("ConfigMap", "c", True), ("Secret", "s", False)]


def test_same_name_different_kinds_are_distinct() -> None:
    spec = {
        "volumes": [
            {"name": "v", "secret": {"secretName": "x"}},
            {"name": "w", "configMap": {"name": "x"}},
        ]
    }
    assert deps(spec) == [("ConfigMap", "x", False), ("Secret", "x", False)]


def test_empty_names_ignored() -> None:
    assert deps({"imagePullSecrets": [{}], "volumes": [{"name": "v", "secret": {}}]}) == []


def test_ref_identity_is_kind_and_name() -> None:
    assert Ref("Secret", "a", True) == Ref("Secret", "a", False)
    assert len({Ref("Secret", "a", True), Ref("Secret", "a", False)}) == 1
    assert Ref("Secret", "a") != Ref("ConfigMap", "a")


# --- to_remote_copy ------------------------------------------------------------


def local_secret(**extra: object) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "crossplane-certs",
            "namespace": NAMESPACE,
            "uid": "secret-uid",
            "resourceVersion": "77",
            "labels": {"app": "crossplane"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
            "ownerReferences": [{"kind": "Deployment", "name": "x", "uid": "u"}],
            "managedFields": [{}],
        },
        "data": {"tls.crt": "Y2VydA=="},
        "type": "kubernetes.io/tls",
        **extra,
    }


def replicate(obj: Obj, kind: Kind | None = None) -> Obj:
    return to_remote_copy(
        obj,
        node_name=NODE,
        local_namespace=NAMESPACE,
        remote_namespace=REMOTE_NAMESPACE,
        kind=kind,
    )


def test_secret_copy() -> None:
    assert replicate(local_secret()) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "crossplane-certs",
            "namespace": REMOTE_NAMESPACE,
            "labels": {
                "app": "crossplane",
                "actual.vk/node-name": NODE,
                "actual.vk/namespace": NAMESPACE,
                "app.kubernetes.io/managed-by": "actual-kubelets",
                "actual.vk/replica": "true",
            },
            "annotations": {
                "actual.vk/source-uid": "secret-uid",
                "actual.vk/source-resource-version": "77",
            },
        },
        "data": {"tls.crt": "Y2VydA=="},
        "type": "kubernetes.io/tls",
    }


def test_config_map_copy_from_list_item_needs_kind() -> None:
    item = {
        "metadata": {"name": "cfg", "uid": "u", "resourceVersion": "1"},
        "data": {"a": "1"},
        "binaryData": {"b": "AA=="},
        "immutable": True,
    }
    with pytest.raises(ValueError, match="cannot replicate"):
        replicate(item)
    copy = replicate(item, kind="ConfigMap")
    assert copy["kind"] == "ConfigMap"
    assert copy["data"] == {"a": "1"}
    assert copy["binaryData"] == {"b": "AA=="}
    assert copy["immutable"] is True
    assert "type" not in copy


def test_service_account_token_secret_type_is_neutralised() -> None:
    copy = replicate(local_secret(type="kubernetes.io/service-account-token"))
    assert copy["type"] == "actual.vk/service-account-token"
    assert copy["metadata"]["annotations"]["actual.vk/source-type"] == (
        "kubernetes.io/service-account-token"
    )


def test_secret_type_defaults_to_opaque() -> None:
    secret = local_secret()
    del secret["type"]
    copy = replicate(secret)
    assert copy["type"] == "Opaque"
    assert "actual.vk/source-type" not in copy["metadata"]["annotations"]


def test_string_data_folded_into_data() -> None:
    copy = replicate(local_secret(stringData={"tls.crt": "new", "x": "ü"}))
    assert copy["data"] == {
        "tls.crt": base64.b64encode(b"new").decode(),
        "x": base64.b64encode("ü".encode()).decode(),
    }
    assert "stringData" not in copy


def test_ak_labels_win_on_copies() -> None:
    secret = local_secret()
    secret["metadata"]["labels"]["actual.vk/replica"] = "false"
    assert replicate(secret)["metadata"]["labels"]["actual.vk/replica"] == "true"


# --- copy_needs_update / copy_needs_replace -----------------------------------


def as_stored(obj: Obj) -> Obj:
    """What the remote API server returns for a created copy."""
    stored = replicate(obj)
    stored["metadata"].update(uid="r", resourceVersion="5", creationTimestamp="t")
    stored["metadata"]["annotations"]["remote-tool/seen"] = "1"
    return stored


def test_fresh_copy_needs_no_update() -> None:
    desired = replicate(local_secret())
    assert not copy_needs_update(desired, as_stored(local_secret()))
    assert not copy_needs_replace(desired, as_stored(local_secret()))


def test_data_change_needs_update() -> None:
    desired = replicate(local_secret(data={"tls.crt": "bmV3"}))
    current = as_stored(local_secret())
    assert copy_needs_update(desired, current)
    assert not copy_needs_replace(desired, current)


def test_label_removal_needs_update() -> None:
    secret = local_secret()
    current = as_stored(secret)
    del secret["metadata"]["labels"]["app"]
    assert copy_needs_update(replicate(secret), current)


def test_source_version_change_needs_update() -> None:
    secret = local_secret()
    current = as_stored(secret)
    secret["metadata"]["resourceVersion"] = "78"
    assert copy_needs_update(replicate(secret), current)


def test_empty_data_equals_absent_data() -> None:
    desired = replicate(local_secret(data={}))
    current = as_stored(local_secret(data={}))
    current["data"] = {}
    assert not copy_needs_update(desired, current)


def test_immutable_copy_must_be_replaced_when_content_changes() -> None:
    current = as_stored(local_secret(immutable=True))
    desired = replicate(local_secret(immutable=True, data={"tls.crt": "bmV3"}))
    assert copy_needs_update(desired, current)
    assert copy_needs_replace(desired, current)
    unlocked = replicate(local_secret(immutable=False))
    assert copy_needs_replace(unlocked, current)


def test_immutable_copy_metadata_change_is_an_update() -> None:
    secret = local_secret(immutable=True)
    current = as_stored(secret)
    secret["metadata"]["labels"]["new"] = "x"
    desired = replicate(secret)
    assert copy_needs_update(desired, current)
    assert not copy_needs_replace(desired, current)


def test_secret_type_change_must_be_replaced() -> None:
    current = as_stored(local_secret())
    desired = replicate(local_secret(type="Opaque"))
    assert copy_needs_replace(desired, current)


# --- existing remote objects: adopt or leave alone ----------------------------


def _existing(labels: dict[str, str]) -> Obj:
    return {"metadata": {"name": "creds", "namespace": REMOTE_NAMESPACE, "labels": labels}}


def test_aks_own_copy_and_the_original_aks_copy_are_adoptable() -> None:
    local = {"metadata": {"name": "creds", "namespace": NAMESPACE, "uid": "u"}, "data": {}}
    ours = to_remote_copy(
        local,
        node_name=NODE,
        local_namespace=NAMESPACE,
        remote_namespace=REMOTE_NAMESPACE,
        kind="Secret",
    )
    assert is_own_copy(ours, NODE, NAMESPACE)
    original = _existing({"actual.vk/node-name": NODE, "actual.vk/namespace": NAMESPACE})
    assert is_own_copy(original, NODE, NAMESPACE)


def test_other_objects_of_the_same_name_are_left_alone() -> None:
    assert not is_own_copy(_existing({}), NODE, NAMESPACE)
    other_node = _existing({"actual.vk/node-name": "other", "actual.vk/namespace": NAMESPACE})
    assert not is_own_copy(other_node, NODE, NAMESPACE)
    other_ns = _existing({"actual.vk/node-name": NODE, "actual.vk/namespace": "elsewhere"})
    assert not is_own_copy(other_ns, NODE, NAMESPACE)
    identity = _existing(
        {"actual.vk/node-name": NODE, "actual.vk/namespace": NAMESPACE, LABEL_POD_IDENTITY: "true"}
    )
    assert not is_own_copy(identity, NODE, NAMESPACE)


def test_missing_objects_get_virtual_kubelets_reasons() -> None:
    assert missing_reason(["ConfigMap"]) == "MandatoryConfigMapNotFound"
    assert missing_reason(["Secret"]) == "MandatorySecretNotFound"
    assert missing_reason(["ConfigMap", "Secret"]) == "MandatorySecretNotFound"
    assert optional_missing_reason("Secret") == "OptionalSecretNotFound"
    assert optional_missing_reason("ConfigMap") == "OptionalConfigMapNotFound"
