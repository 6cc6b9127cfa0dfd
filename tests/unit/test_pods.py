import copy
import json
from typing import Any

import pytest

from ak.core.errors import TranslationError
from ak.core.labels import ANNOTATION_LOCAL_UID, ANNOTATION_PROPAGATED_KEYS, LABEL_NODE
from ak.core.pods import (
    new_ephemeral_containers,
    remote_pod_patch,
    rewrite_volumes,
    to_remote_pod,
)
from ak.core.types import Obj
from tests.unit.fixtures import NODE, POD_UID, REMOTE_NAMESPACE, deployment_pod

EXTRA_ENV = [
    {"name": "KUBERNETES_SERVICE_HOST", "value": "10.0.0.1"},
    {"name": "KUBERNETES_SERVICE_PORT", "value": "443"},
]


def translate(pod: Obj, extra_env: list[Obj] | None = None) -> Obj:
    return to_remote_pod(
        pod,
        node_name=NODE,
        remote_namespace=REMOTE_NAMESPACE,
        extra_env=EXTRA_ENV if extra_env is None else extra_env,
    )


def test_deployment_pod_translates_to_allow_listed_pod() -> None:
    local = deployment_pod()
    assert translate(local) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "crossplane-684d498858-frd4t",
            "namespace": REMOTE_NAMESPACE,
            "labels": {
                "app": "crossplane",
                "pod-template-hash": "684d498858",
                "actual.vk/node-name": NODE,
                "actual.vk/namespace": "crossplane-system",
                "app.kubernetes.io/managed-by": "actual-kubelets",
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "actual.vk/local-uid": POD_UID,
                "actual.vk/propagated-keys": (
                    '{"annotations":["prometheus.io/scrape"],"labels":["app","pod-template-hash"]}'
                ),
            },
        },
        "spec": {
            "volumes": rewrite_volumes(local["spec"]["volumes"], local),
            "containers": [
                {
                    "name": "crossplane",
                    "image": "crossplane/crossplane:v0.13.0",
                    "args": ["core", "start"],
                    "env": [
                        {"name": "KUBERNETES_SERVICE_HOST", "value": "10.0.0.1"},
                        {"name": "KUBERNETES_SERVICE_PORT", "value": "443"},
                        {"name": "POD_NAMESPACE", "value": "crossplane-system"},
                        {"name": "LEADER_ELECTION", "value": "true"},
                    ],
                    "resources": {"limits": {"cpu": "100m", "memory": "512Mi"}},
                    "volumeMounts": local["spec"]["containers"][0]["volumeMounts"],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {"runAsUser": 65532, "runAsNonRoot": True},
            "imagePullSecrets": [{"name": "registry-creds"}],
            "enableServiceLinks": True,
            "automountServiceAccountToken": False,
        },
    }


def test_translation_does_not_mutate_or_alias_local() -> None:
    local = deployment_pod()
    remote = translate(local)
    assert local == deployment_pod()
    remote["spec"]["volumes"][0]["name"] = "changed"
    remote["spec"]["containers"][0]["args"].append("x")
    assert local == deployment_pod()


@pytest.mark.parametrize(
    "field",
    [
        "nodeName",
        "nodeSelector",
        "affinity",
        "tolerations",
        "topologySpreadConstraints",
        "priority",
        "priorityClassName",
        "schedulerName",
        "preemptionPolicy",
        "runtimeClassName",
        "overhead",
        "readinessGates",
        "serviceAccountName",
        "serviceAccount",
        "ephemeralContainers",
        "schedulingGates",
        "someFutureField",
    ],
)
def test_dropped_spec_fields(field: str) -> None:
    local = deployment_pod()
    local["spec"][field] = local["spec"].get(field, {"x": "y"})
    assert field not in translate(local)["spec"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("activeDeadlineSeconds", 600),
        ("dnsConfig", {"nameservers": ["1.1.1.1"]}),
        ("hostAliases", [{"ip": "10.1.1.1", "hostnames": ["db"]}]),
        ("hostname", "web-0"),
        ("subdomain", "web"),
        ("setHostnameAsFQDN", True),
        ("shareProcessNamespace", True),
        ("os", {"name": "linux"}),
        ("hostUsers", False),
        ("resources", {"limits": {"cpu": "1"}}),
    ],
)
def test_copied_spec_fields(field: str, value: Any) -> None:
    local = deployment_pod()
    local["spec"][field] = value
    assert translate(local)["spec"][field] == value


def test_metadata_is_allow_listed() -> None:
    local = deployment_pod()
    local["metadata"]["finalizers"] = ["example.com/x"]
    local["metadata"]["deletionTimestamp"] = "2026-11-22T02:00:00Z"
    assert set(translate(local)["metadata"]) == {"name", "namespace", "labels", "annotations"}


def test_ak_labels_override_local_ones() -> None:
    local = deployment_pod()
    local["metadata"]["labels"][LABEL_NODE] = "someone-else"
    local["metadata"]["annotations"][ANNOTATION_LOCAL_UID] = "forged"
    remote = translate(local)
    assert remote["metadata"]["labels"][LABEL_NODE] == NODE
    assert remote["metadata"]["annotations"][ANNOTATION_LOCAL_UID] == POD_UID
    keys = json.loads(remote["metadata"]["annotations"][ANNOTATION_PROPAGATED_KEYS])
    assert LABEL_NODE not in keys["labels"]
    assert ANNOTATION_LOCAL_UID not in keys["annotations"]


def test_pod_without_labels_or_annotations() -> None:
    local = deployment_pod()
    del local["metadata"]["labels"], local["metadata"]["annotations"]
    meta = translate(local)["metadata"]
    assert meta["annotations"][ANNOTATION_PROPAGATED_KEYS] == '{"annotations":[],"labels":[]}'
    assert set(meta["labels"]) == {
        "actual.vk/node-name",
        "actual.vk/namespace",
        "app.kubernetes.io/managed-by",
    }


def test_user_env_wins_over_extra_env_and_order_is_extra_first() -> None:
    local = deployment_pod()
    local["spec"]["containers"][0]["env"] = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "user.example"},
        {"name": "URL", "value": "https://$(KUBERNETES_SERVICE_PORT)"},
    ]
    env = translate(local)["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "KUBERNETES_SERVICE_PORT", "value": "443"},
        {"name": "KUBERNETES_SERVICE_HOST", "value": "user.example"},
        {"name": "URL", "value": "https://$(KUBERNETES_SERVICE_PORT)"},
    ]


def test_extra_env_duplicates_first_wins() -> None:
    local = deployment_pod()
    local["spec"]["containers"][0].pop("env")
    extra = [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
    assert translate(local, extra)["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]


def test_no_env_key_when_nothing_to_inject() -> None:
    local = deployment_pod()
    local["spec"]["containers"][0].pop("env")
    assert "env" not in translate(local, [])["spec"]["containers"][0]


def test_extra_env_reaches_init_containers() -> None:
    local = deployment_pod()
    local["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    remote = translate(local)
    assert remote["spec"]["initContainers"] == [
        {"name": "init", "image": "busybox", "env": EXTRA_ENV}
    ]


def test_downward_env_pinned_to_local_identity() -> None:
    local = deployment_pod()

    def ref(path: str) -> Obj:
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    local["spec"]["containers"][0]["env"] = [
        {"name": "NS", **ref("metadata.namespace")},
        {"name": "UID", **ref("metadata.uid")},
        {"name": "NODE", **ref("spec.nodeName")},
        {"name": "SA", **ref("spec.serviceAccountName")},
        {"name": "IP", **ref("status.podIP")},
        {"name": "NAME", **ref("metadata.name")},
    ]
    env = translate(local, [])["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "NS", "value": "crossplane-system"},
        {"name": "UID", "value": POD_UID},
        {"name": "NODE", "value": NODE},
        {"name": "SA", "value": "crossplane"},
        {"name": "IP", **ref("status.podIP")},
        {"name": "NAME", **ref("metadata.name")},
    ]


def test_service_account_defaults_to_default_for_pinning() -> None:
    local = deployment_pod()
    del local["spec"]["serviceAccountName"], local["spec"]["serviceAccount"]
    local["spec"]["containers"][0]["env"] = [
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}
    ]
    env = translate(local, [])["spec"]["containers"][0]["env"]
    assert env == [{"name": "SA", "value": "default"}]


def test_rewrite_volumes_is_a_copy() -> None:
    local = deployment_pod()
    volumes = local["spec"]["volumes"]
    result = rewrite_volumes(volumes, local)
    assert result[0] == volumes[0]  # a plain Secret volume is unchanged
    assert result is not volumes and result[0] is not volumes[0]
    assert local == deployment_pod()


def test_api_access_volume_reads_local_identity() -> None:
    # Details in test_serviceaccount; here: the translation applies them.
    remote = translate(deployment_pod())
    sources = remote["spec"]["volumes"][1]["projected"]["sources"]
    assert [next(iter(s)) for s in sources] == ["secret", "configMap", "secret"]
    assert sources[1]["configMap"]["name"] == "ak-local-kube-root-ca.crt"


@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces_rejected(field: str) -> None:
    local = deployment_pod()
    local["spec"][field] = True
    with pytest.raises(TranslationError) as err:
        translate(local)
    assert err.value.reason == "UnsupportedHostNamespace"
    assert field in err.value.message


def test_host_namespace_false_is_fine() -> None:
    local = deployment_pod()
    local["spec"]["hostNetwork"] = False
    assert "hostNetwork" not in translate(local)["spec"]


@pytest.mark.parametrize(
    "source",
    [{"hostPath": {"path": "/var/log"}}, {"persistentVolumeClaim": {"claimName": "data"}}],
)
def test_unsupported_volumes_rejected(source: Obj) -> None:
    local = deployment_pod()
    local["spec"]["volumes"].append({"name": "data", **source})
    with pytest.raises(TranslationError) as err:
        translate(local)
    assert err.value.reason == "UnsupportedVolume"
    assert 'volume "data"' in err.value.message


def test_resource_claims_rejected() -> None:
    local = deployment_pod()
    local["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimName": "gpu"}]
    with pytest.raises(TranslationError) as err:
        translate(local)
    assert err.value.reason == "UnsupportedResourceClaim"


def test_supported_volume_kinds_pass() -> None:
    local = deployment_pod()
    local["spec"]["volumes"] += [
        {"name": "tmp", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
    ]
    assert len(translate(local)["spec"]["volumes"]) == 5


# --- remote_pod_patch -------------------------------------------------------


def as_created(local: Obj) -> Obj:
    """The remote pod as the remote API server returns it after creation."""
    remote = translate(local)
    remote["metadata"]["uid"] = "remote-uid"
    remote["metadata"]["annotations"]["cni.projectcalico.org/podIP"] = "10.16.1.9/32"
    remote["metadata"]["labels"]["remote-added"] = "yes"
    remote["spec"]["nodeName"] = "gke-remote-1"
    remote["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    remote["spec"]["tolerations"] = [{"key": "node.kubernetes.io/not-ready"}]
    return remote


def patch_for(local: Obj, remote: Obj) -> Obj | None:
    return remote_pod_patch(local, remote, translate(local))


def test_no_patch_when_nothing_changed() -> None:
    local = deployment_pod()
    assert patch_for(local, as_created(local)) is None


def test_label_and_annotation_changes_and_removals() -> None:
    local = deployment_pod()
    remote = as_created(local)
    local["metadata"]["labels"]["app"] = "crossplane-v2"
    del local["metadata"]["labels"]["pod-template-hash"]
    local["metadata"]["annotations"] = {"new": "1"}
    assert patch_for(local, remote) == {
        "metadata": {
            "labels": {"app": "crossplane-v2", "pod-template-hash": None},
            "annotations": {
                "new": "1",
                "prometheus.io/scrape": None,
                ANNOTATION_PROPAGATED_KEYS: '{"annotations":["new"],"labels":["app"]}',
            },
        }
    }


def test_remote_side_keys_are_never_removed() -> None:
    local = deployment_pod()
    remote = as_created(local)
    local["metadata"]["labels"] = {}
    local["metadata"]["annotations"] = {}
    patch = patch_for(local, remote)
    assert patch is not None
    assert "remote-added" not in patch["metadata"]["labels"]
    assert "cni.projectcalico.org/podIP" not in patch["metadata"]["annotations"]


def test_without_propagation_record_nothing_is_removed() -> None:
    local = deployment_pod()
    remote = as_created(local)
    del remote["metadata"]["annotations"][ANNOTATION_PROPAGATED_KEYS]
    local["metadata"]["labels"] = {}
    patch = patch_for(local, remote)
    assert patch == {
        "metadata": {
            "annotations": {
                ANNOTATION_PROPAGATED_KEYS: '{"annotations":["prometheus.io/scrape"],"labels":[]}'
            }
        }
    }


def test_malformed_propagation_record_is_ignored() -> None:
    local = deployment_pod()
    remote = as_created(local)
    remote["metadata"]["annotations"][ANNOTATION_PROPAGATED_KEYS] = "[not json"
    local["metadata"]["labels"] = {}
    patch = patch_for(local, remote)
    assert patch is not None
    assert "labels" not in patch["metadata"]


def test_ak_labels_are_never_touched() -> None:
    local = deployment_pod()
    remote = as_created(local)
    remote["metadata"]["labels"][LABEL_NODE] = "tampered"
    del remote["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert patch_for(local, remote) is None


def test_image_change_sends_full_remote_container_list() -> None:
    local = deployment_pod()
    remote = as_created(local)
    remote["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    local["spec"]["containers"][0]["image"] = "crossplane/crossplane:v0.14.0"
    expected = copy.deepcopy(remote["spec"]["containers"])
    expected[0]["image"] = "crossplane/crossplane:v0.14.0"
    assert patch_for(local, remote) == {"spec": {"containers": expected}}


def test_init_container_image_change() -> None:
    local = deployment_pod()
    local["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1"}]
    remote = as_created(local)
    local["spec"]["initContainers"][0]["image"] = "busybox:2"
    patch = patch_for(local, remote)
    assert patch is not None
    assert patch["spec"]["initContainers"][0]["image"] == "busybox:2"
    assert "containers" not in patch["spec"]


def test_other_spec_changes_are_not_propagated() -> None:
    local = deployment_pod()
    remote = as_created(local)
    local["spec"]["containers"][0]["args"] = ["other"]
    local["spec"]["terminationGracePeriodSeconds"] = 5
    local["spec"]["restartPolicy"] = "Never"
    assert patch_for(local, remote) is None


def test_active_deadline_set_and_not_removed() -> None:
    local = deployment_pod()
    remote = as_created(local)
    local["spec"]["activeDeadlineSeconds"] = 100
    assert patch_for(local, remote) == {"spec": {"activeDeadlineSeconds": 100}}
    remote["spec"]["activeDeadlineSeconds"] = 100
    del local["spec"]["activeDeadlineSeconds"]
    assert patch_for(local, remote) is None


def test_new_ephemeral_containers_are_translated_and_only_the_missing_ones() -> None:
    local = deployment_pod()
    local["spec"]["ephemeralContainers"] = [
        {"name": "old", "image": "busybox"},
        {"name": "dbg", "image": "busybox", "targetContainerName": "crossplane",
         "env": [{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]},
    ]  # fmt: skip
    remote = {"spec": {"ephemeralContainers": [{"name": "old", "image": "busybox"}]}}
    added = new_ephemeral_containers(local, remote, EXTRA_ENV)
    assert [c["name"] for c in added] == ["dbg"]
    assert added[0]["targetContainerName"] == "crossplane"
    # Like every container: AK's env first, the downward API pinned to the local pod.
    assert added[0]["env"] == [*EXTRA_ENV, {"name": "NS", "value": "crossplane-system"}]
    assert "env" not in local["spec"]["ephemeralContainers"][0]  # local untouched
    both = {"spec": {"ephemeralContainers": [*added, {"name": "old"}]}}
    assert new_ephemeral_containers(local, both, EXTRA_ENV) == []
    assert new_ephemeral_containers(deployment_pod(), {"spec": {}}, EXTRA_ENV) == []
