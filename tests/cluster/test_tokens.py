"""Remote pods talk to the LOCAL API server: bound tokens, local CA, namespace, env."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ak.core.timefmt import parse_time
from tests.cluster.util import events_for, pod, pods, running, wait_until
from tests.conftest import AKNode, wait_for_node_ready
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

Obj = dict[str, Any]
CA_REPLICA = "ak-local-kube-root-ca.crt"
ISSUED_AT = "actual.vk/tokens-issued-at"


# --- helpers ---------------------------------------------------------------------


def b64decode(value: str) -> str:
    return base64.b64decode(value).decode()


def jwt_claims(token: str) -> Obj:
    payload = token.split(".")[1]
    claims: Obj = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def remote_get(remote: Cluster, node: AKNode, kind: str, name: str) -> Obj:
    return remote.get_json(f"/api/v1/namespaces/{node.remote_namespace}/{kind}/{name}")


def remote_gone(remote: Cluster, node: AKNode, kind: str, name: str) -> bool:
    with remote.http() as c:
        r = c.get(f"/api/v1/namespaces/{node.remote_namespace}/{kind}/{name}")
        return r.status_code == 404


def identity(remote: Cluster, node: AKNode, pod_name: str) -> Obj:
    return remote_get(remote, node, "secrets", f"ak-identity-{pod_name}")


def run_pod(local: Cluster, node: AKNode, name: str, **spec: Any) -> Obj:
    annotations = spec.pop("annotations", None)
    manifest = pod(name, node.name, **spec)
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    local.apply(manifest, node.namespace)
    found: list[Obj] = wait_until(
        f"pod {name} Running", lambda: running(pods(local, node.namespace, f"app={name}"))
    )
    return found[0]


def volume_sources(remote_pod: Obj, prefix: str) -> list[Obj]:
    (volume,) = [v for v in remote_pod["spec"]["volumes"] if v["name"].startswith(prefix)]
    sources: list[Obj] = volume["projected"]["sources"]
    return sources


def reader_account(local: Cluster, ns: str) -> None:
    """A ServiceAccount that may list pods in its own namespace, nothing else."""
    local.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "pod-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
            },
        ],
        ns,
    )


class InClusterClient:
    """kubectl as a remote pod's in-cluster config would use it: only the pod's
    KUBERNETES_SERVICE_HOST/PORT, the CA file and the token file, no other credentials."""

    def __init__(self, cluster: Cluster, env: dict[str, str], ca: Path, token: str) -> None:
        self.cluster = cluster
        self.server = f"https://{env['KUBERNETES_SERVICE_HOST']}:{env['KUBERNETES_SERVICE_PORT']}"
        self.ca = ca
        self.token = token
        self.anon = cluster.write_kubeconfig("anon", None)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(
            f"--server={self.server}",
            f"--certificate-authority={self.ca}",
            f"--token={self.token}",
            *args,
            kubeconfig=self.anon,
            check=False,
        )


def whoami(cluster: Cluster, token: str) -> subprocess.CompletedProcess[str]:
    anon = cluster.write_kubeconfig("anon", None)
    return cluster.kubectl(
        "auth", "whoami", f"--token={token}", "-o", "json", kubeconfig=anon, check=False
    )


def container_env(remote_pod: Obj, index: int = 0) -> dict[str, str]:
    env: list[Obj] = remote_pod["spec"]["containers"][index].get("env", [])
    return {v["name"]: v["value"] for v in env if "value" in v}


# --- tests -------------------------------------------------------------------------


def test_remote_pod_uses_local_token_ca_namespace_and_endpoint(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster, tmp_path: Path
) -> None:
    ns = ak_node.namespace
    reader_account(local_cluster, ns)
    env = [
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    local = run_pod(
        local_cluster,
        ak_node,
        "api",
        serviceAccountName="reader",
        containers=[{"name": "c", "image": "registry.invalid/app:1", "env": env}],
    )
    remote = remote_get(remote_cluster, ak_node, "pods", "api")
    secret_name = "ak-identity-api"

    # The default kube-api-access volume reads AK's objects, never the remote's.
    assert volume_sources(remote, "kube-api-access-") == [
        {"secret": {"name": secret_name, "items": [{"key": "token-0", "path": "token"}]}},
        {"configMap": {"name": CA_REPLICA, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {
            "secret": {
                "name": secret_name,
                "items": [{"key": "metadata.namespace", "path": "namespace"}],
            }
        },
    ]
    assert remote["spec"]["automountServiceAccountToken"] is False
    for volume in remote["spec"]["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            assert "serviceAccountToken" not in source
            assert source.get("configMap", {}).get("name") != "kube-root-ca.crt"

    # The environment names the LOCAL API server and namespace; status fields stay remote.
    env_values = container_env(remote)
    assert env_values["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env_values["KUBERNETES_SERVICE_PORT"] == str(local_cluster.port)
    assert env_values["KUBERNETES_PORT"] == f"tcp://127.0.0.1:{local_cluster.port}"
    assert env_values["KUBERNETES_PORT_443_TCP_PORT"] == str(local_cluster.port)
    assert env_values["MY_NS"] == ns
    ip_ref = next(v for v in remote["spec"]["containers"][0]["env"] if v["name"] == "MY_IP")
    assert ip_ref["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"

    # What the remote kubelet mounts: a local token, the local CA, the local namespace.
    secret = identity(remote_cluster, ak_node, "api")
    assert secret["type"] == "Opaque"
    # Owned by the remote pod: the remote garbage collector deletes it with the pod.
    owner = {"apiVersion": "v1", "kind": "Pod", "name": "api", "uid": remote["metadata"]["uid"]}
    assert secret["metadata"]["ownerReferences"] == [owner]
    token = b64decode(secret["data"]["token-0"])
    assert b64decode(secret["data"]["metadata.namespace"]) == ns
    claims = jwt_claims(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "api", "uid": local["metadata"]["uid"]}
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "reader"
    replica = remote_get(remote_cluster, ak_node, "configmaps", CA_REPLICA)
    local_ca = local_cluster.get_json(f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt")
    assert replica["data"]["ca.crt"] == local_ca["data"]["ca.crt"]
    assert replica["data"]["ca.crt"].strip() == local_cluster.ca.pair.cert.read_text().strip()
    remote_ca = remote_get(remote_cluster, ak_node, "configmaps", "kube-root-ca.crt")
    assert remote_ca["data"]["ca.crt"] != replica["data"]["ca.crt"]  # untouched

    # With exactly those, in-cluster config reaches the local API server as the pod.
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(replica["data"]["ca.crt"])
    kubectl = InClusterClient(local_cluster, env_values, ca_file, token)
    me = kubectl("auth", "whoami", "-o", "json")
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{ns}:reader"
    )
    listed = kubectl("-n", ns, "get", "pods", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert "pod/api" in listed.stdout.split()
    denied = kubectl("-n", "default", "get", "pods")
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    # The remote API server does not know the token.
    rejected = whoami(remote_cluster, token)
    assert rejected.returncode != 0 and "Unauthorized" in rejected.stderr

    # Gone with the pod: the identity Secret, and the token's validity.
    local_cluster.kubectl("-n", ns, "delete", "pod", "api", "--wait=false")
    wait_until(
        "the identity Secret deleted",
        lambda: remote_gone(remote_cluster, ak_node, "secrets", secret_name),
        timeout=30,
    )
    wait_until("the token refused", lambda: kubectl("auth", "whoami").returncode != 0, timeout=30)
    assert token not in ak_node.ak.log.read_text()


def test_custom_projected_token_with_audience_and_lifetime(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    volume: Obj = {
        "name": "vault",
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": "vault",
                        "expirationSeconds": 600,
                        "path": "vault-token",
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "uid",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"},
                            },
                            {
                                "path": "labels",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"},
                            },
                        ]
                    }
                },
            ]
        },
    }
    container = {
        "name": "c",
        "image": "registry.invalid/app:1",
        "volumeMounts": [{"name": "vault", "mountPath": "/var/run/vault"}],
    }
    local = run_pod(local_cluster, ak_node, "custom", volumes=[volume], containers=[container])
    uid = local["metadata"]["uid"]
    remote = remote_get(remote_cluster, ak_node, "pods", "custom")
    secret_name = "ak-identity-custom"
    # The custom volume comes first in the pod, so its token is token-0.
    assert volume_sources(remote, "vault") == [
        {"secret": {"name": secret_name, "items": [{"key": "token-0", "path": "vault-token"}]}},
        {"secret": {"name": secret_name, "items": [{"key": "metadata.uid", "path": "uid"}]}},
        {"downwardAPI": {"items": [volume["projected"]["sources"][1]["downwardAPI"]["items"][1]]}},
    ]
    assert volume_sources(remote, "kube-api-access-")[0]["secret"]["items"] == [
        {"key": "token-1", "path": "token"}
    ]

    secret = identity(remote_cluster, ak_node, "custom")
    assert b64decode(secret["data"]["metadata.uid"]) == uid
    vault = jwt_claims(b64decode(secret["data"]["token-0"]))
    assert vault["aud"] == ["vault"]
    assert vault["exp"] - vault["iat"] == 600
    assert vault["kubernetes.io"]["pod"]["uid"] == uid
    # The default 3607 s token is extended by the API server, and AK knows it
    # counts as 3607 s: the Secret records the shortest granted lifetime.
    api = jwt_claims(b64decode(secret["data"]["token-1"]))
    assert api["exp"] - api["iat"] > 3607
    assert api["kubernetes.io"]["warnafter"] - api["iat"] == 3607
    assert secret["metadata"]["annotations"]["actual.vk/tokens-ttl-seconds"] == "600"
    # A token for another audience is no API credential.
    assert whoami(local_cluster, b64decode(secret["data"]["token-0"])).returncode != 0
    assert whoami(local_cluster, b64decode(secret["data"]["token-1"])).returncode == 0


def test_opt_out_of_local_apiserver_env(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    run_pod(
        local_cluster,
        ak_node,
        "optout",
        annotations={"actual.vk/local-apiserver-env": "false"},
    )
    remote = remote_get(remote_cluster, ak_node, "pods", "optout")
    assert not any(name.startswith("KUBERNETES_") for name in container_env(remote)), remote[
        "spec"
    ]["containers"][0].get("env")
    # The files still come from the local cluster.
    assert volume_sources(remote, "kube-api-access-")[0]["secret"]["name"] == "ak-identity-optout"


def test_tokens_refreshed_before_expiry_and_adopted_after_restart(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    run_pod(local_cluster, ak_node, "steady")
    first = identity(remote_cluster, ak_node, "steady")

    # A restart requests nothing: the Secret says when its tokens were issued.
    ak_node.ak.stop()
    ak_node.ak.start()
    wait_for_node_ready(ak_node.ak)
    wait_until(
        "the restarted AK adopting the tokens",
        lambda: (
            f"tokens of pod {ns}/steady adopted"
            in ak_node.ak.log.read_text().split("===== start 2")[-1]
        ),
    )
    assert identity(remote_cluster, ak_node, "steady")["data"] == first["data"]

    # With a 15 s maximum age (the kubelet's is 24 h) the refresh comes while we watch.
    ak_node.ak.stop()
    ak_node.ak.extra_args.append("--token-max-age=15")
    ak_node.ak.start()
    wait_for_node_ready(ak_node.ak)
    remote_uid = remote_get(remote_cluster, ak_node, "pods", "steady")["metadata"]["uid"]
    seen = [first]

    def refreshed() -> bool:
        current = identity(remote_cluster, ak_node, "steady")
        if current["data"]["token-0"] != seen[-1]["data"]["token-0"]:
            seen.append(current)
        return len(seen) >= 3

    wait_until("two refreshes", refreshed, timeout=60, interval=0.5)
    issued = [parse_time(s["metadata"]["annotations"][ISSUED_AT]) for s in seen]
    # Each comes 13.5-15 s (max age less a tenth as jitter) after the one before; the
    # first depends on how long the restarts took.
    gap = (issued[2] - issued[1]).total_seconds()
    assert 13 <= gap <= 16, issued
    tokens = [b64decode(s["data"]["token-0"]) for s in seen]
    assert len(set(tokens)) == 3
    for token in tokens:  # old tokens stay valid until they expire
        assert whoami(local_cluster, token).returncode == 0
    # The pod ran on, untouched, reading the refreshed Secret.
    assert remote_get(remote_cluster, ak_node, "pods", "steady")["metadata"]["uid"] == remote_uid
    log = ak_node.ak.log.read_text()
    assert not any(token in log for token in tokens)


def test_remote_objects_are_kept(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    run_pod(local_cluster, ak_node, "ca-user")
    token = identity(remote_cluster, ak_node, "ca-user")["data"]["token-0"]
    remote_cluster.kubectl(
        "-n", ak_node.remote_namespace, "delete", "secret", "ak-identity-ca-user"
    )
    wait_until(
        "the identity Secret written again",
        lambda: identity(remote_cluster, ak_node, "ca-user")["data"]["token-0"] != token,
        timeout=15,
    )
    replica = remote_get(remote_cluster, ak_node, "configmaps", CA_REPLICA)
    remote_cluster.kubectl(
        "-n",
        ak_node.remote_namespace,
        "patch",
        "configmap",
        CA_REPLICA,
        "--type=merge",
        "-p",
        json.dumps({"data": {"ca.crt": "tampered"}}),
    )
    wait_until(
        "the replica restored",
        lambda: (
            remote_get(remote_cluster, ak_node, "configmaps", CA_REPLICA)["data"] == replica["data"]
        ),
        timeout=15,
    )
    remote_cluster.kubectl("-n", ak_node.remote_namespace, "delete", "configmap", CA_REPLICA)
    wait_until(
        "the replica re-created",
        lambda: (
            remote_get(remote_cluster, ak_node, "configmaps", CA_REPLICA)["data"] == replica["data"]
        ),
        timeout=15,
    )


def test_legacy_token_secret_replicated_with_inert_type(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns = ak_node.namespace
    local_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "legacy",
                "annotations": {"kubernetes.io/service-account.name": "default"},
            },
            "type": "kubernetes.io/service-account-token",
        },
        ns,
    )
    source = wait_until(
        "the local token controller filling the Secret",
        lambda: (
            (s := local_cluster.get_json(f"/api/v1/namespaces/{ns}/secrets/legacy"))
            .get("data", {})
            .get("token")
            and s
        ),
    )
    run_pod(
        local_cluster,
        ak_node,
        "legacy-user",
        volumes=[{"name": "legacy", "secret": {"secretName": "legacy"}}],
    )
    copy = remote_get(remote_cluster, ak_node, "secrets", "legacy")
    assert copy["type"] == "actual.vk/service-account-token"
    assert copy["metadata"]["annotations"]["actual.vk/source-type"] == (
        "kubernetes.io/service-account-token"
    )
    assert copy["data"]["token"] == source["data"]["token"]
    assert b64decode(copy["data"]["namespace"]) == ns
    # The remote token controller leaves it alone: no remote token appears in it.
    assert remote_get(remote_cluster, ak_node, "secrets", "legacy")["data"] == copy["data"]


def test_leftovers_removed_after_restart(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    run_pod(local_cluster, ak_node, "keeper")  # keeps the remote namespace alive
    run_pod(local_cluster, ak_node, "left")
    ak_node.ak.stop()
    local_cluster.kubectl("-n", ns, "delete", "pod", "left", "--grace-period=0", "--force")
    # An identity Secret whose pod was never created (AK died in between).
    ghost = identity(remote_cluster, ak_node, "keeper")
    ghost["metadata"] = {
        "name": "ak-identity-ghost",
        "labels": ghost["metadata"]["labels"],
        "annotations": {**ghost["metadata"]["annotations"], "actual.vk/pod-name": "ghost"},
    }
    remote_cluster.apply(ghost, rns)
    ak_node.ak.start()
    wait_for_node_ready(ak_node.ak)
    wait_until(
        "the deleted pod's Secret removed",
        lambda: remote_gone(remote_cluster, ak_node, "secrets", "ak-identity-left"),
        timeout=30,
    )
    wait_until(
        "the unclaimed Secret removed",
        lambda: remote_gone(remote_cluster, ak_node, "secrets", "ak-identity-ghost"),
        timeout=90,
    )
    assert not remote_gone(remote_cluster, ak_node, "secrets", "ak-identity-keeper")


def test_someone_elses_secret_in_the_identitys_place_is_reported(
    ak_node: AKNode, local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, rns = ak_node.namespace, ak_node.remote_namespace
    run_pod(local_cluster, ak_node, "first")  # the remote namespace exists
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "ak-identity-squatted"},
        "stringData": {"token-0": "not AK's"},
    }
    remote_cluster.apply(foreign, rns)
    local_cluster.apply(pod("squatted", ak_node.name), ns)
    warned = wait_until(
        "a PodIdentityFailed Warning",
        lambda: [
            e
            for e in events_for(local_cluster, ns, "squatted")
            if e["reason"] == "PodIdentityFailed"
        ],
    )
    assert "not made by AK" in warned[0]["message"]
    # Never overwritten.
    kept = remote_get(remote_cluster, ak_node, "secrets", "ak-identity-squatted")
    assert b64decode(kept["data"]["token-0"]) == "not AK's"
