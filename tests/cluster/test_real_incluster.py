"""What a container under AK sees and does, in real containers on the remote real node.

The seed's headline: a controller scheduled to the AK node runs remotely and,
with plain in-cluster config and no flags, manages the LOCAL cluster as its own
service account. Then every file and variable a pod reads, and a Secret change
reaching a running container.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from tests.cluster.realutil import (
    container,
    exec_in,
    get_or_none,
    kubectl,
    local_pod,
    remote_pod,
    run,
)
from tests.cluster.util import Obj, pods, wait_until
from tests.conftest import AKNode
from tests.testbed import images, realnode, sandbox
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _claims(token: str) -> Obj:
    body = token.split(".")[1]
    out: Obj = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return out


def _controller_rbac(local: Cluster, ns: str) -> None:
    local.apply(
        [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ctl"}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "ctl"},
                "rules": [
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "verbs": ["get", "list", "create", "update", "patch"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "ctl"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ctl"},
                "subjects": [{"kind": "ServiceAccount", "name": "ctl", "namespace": ns}],
            },
        ],
        ns,
    )


def test_controller_manages_the_local_cluster(
    ak_real: AKNode,
    local_cluster: Cluster,
    remote_cluster: Cluster,
    remote_real_node: realnode.RealNode,
) -> None:
    ns = ak_real.namespace
    _controller_rbac(local_cluster, ns)
    local_cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ctl"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "ctl"}},
                "template": {
                    "metadata": {"labels": {"app": "ctl"}},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/hostname": ak_real.name},
                        "serviceAccountName": "ctl",
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            container(
                                "ctl",
                                "/bin/controller",
                                image=images.CONTROLLER,
                                env=[{"name": "INTERVAL", "value": "2"}],
                            )
                        ],
                    },
                },
            },
        },
        ns,
    )

    def state() -> Obj | None:
        return get_or_none(local_cluster, f"/api/v1/namespaces/{ns}/configmaps/controller-state")

    cm = wait_until("the controller's ConfigMap in the LOCAL cluster", state, 120)
    (pod,) = pods(local_cluster, ns, "app=ctl")
    name = pod["metadata"]["name"]
    # It ran in the remote container (its hostname is the pod's) and listed LOCAL pods.
    assert cm["data"]["host"] == name
    assert f"pod/{name}" in cm["data"]["pods"].split()
    assert remote_pod(remote_cluster, ak_real, name)["spec"]["nodeName"] == remote_real_node.name
    assert "controller-state" not in json.dumps(
        remote_cluster.get_json(f"/api/v1/namespaces/{ak_real.remote_namespace}/configmaps")
    )

    logs = kubectl(local_cluster, "-n", ns, "logs", name).stdout
    assert f"via {sandbox.HOST_IP}:{local_cluster.port}" in logs, logs
    assert f"as system:serviceaccount:{ns}:ctl" in logs, logs
    # Its Role grants no Secrets: the LOCAL API server refuses it.
    assert "secrets: forbidden" in logs and "secrets: allowed" not in logs, logs
    # The CA it verified the LOCAL API server with is the local cluster's.
    ca = exec_in(local_cluster, ak_real, name, "cat", f"{SA_DIR}/ca.crt").stdout
    assert ca.strip() == local_cluster.ca.pair.cert.read_text().strip()
    # Its rounds go on: the ConfigMap keeps being rewritten from the remote side.
    first = int(cm["data"]["round"])
    wait_until("another round", lambda: int((state() or cm)["data"]["round"]) > first, 30)


def test_the_token_file_is_the_one_ak_refreshes(ak_real: AKNode, local_cluster: Cluster) -> None:
    ak_real.ak.stop()
    ak_real.ak.extra_args.append("--token-max-age=10")
    ak_real.ak.start()
    ns = ak_real.namespace
    _controller_rbac(local_cluster, ns)
    spec: dict[str, Any] = {"serviceAccountName": "ctl", "terminationGracePeriodSeconds": 1}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "tok"},
        "spec": {
            "nodeName": ak_real.name,
            "containers": [container("c", "/bin/controller", image=images.CONTROLLER)],
            **spec,
        },
    }
    run(local_cluster, ak_real, pod)

    def token() -> str:
        return exec_in(local_cluster, ak_real, "tok", "cat", f"{SA_DIR}/token").stdout

    first = token()
    claims = _claims(first)
    assert claims["sub"] == f"system:serviceaccount:{ns}:ctl"
    assert (
        claims["kubernetes.io"]["pod"]["uid"]
        == local_pod(local_cluster, ak_real, "tok")["metadata"]["uid"]
    )
    t0 = time.monotonic()

    def refreshed() -> str | None:
        now = token()
        return now if now and now != first else None

    second = wait_until("a refreshed token in the container's file", refreshed, 90)
    waited = time.monotonic() - t0
    assert _claims(second)["iat"] > claims["iat"], waited
    # The new token is good: the controller still works as itself with it.
    who = exec_in(local_cluster, ak_real, "tok", "kubectl", "auth", "whoami", "-o", "json")
    assert json.loads(who.stdout)["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{ns}:ctl"
    ), who.stderr


def test_what_the_container_sees(ak_real: AKNode, local_cluster: Cluster) -> None:
    ns = ak_real.namespace
    local_cluster.kubectl("-n", ns, "create", "secret", "generic", "s", "--from-literal=user=alice")
    local_cluster.kubectl(
        "-n", ns, "create", "configmap", "cm", "--from-literal=color=blue", "--from-literal=size=9"
    )
    field = {"name": "metadata.name", "namespace": "metadata.namespace", "uid": "metadata.uid"}
    env = [
        {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "s", "key": "user"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "color"}}},
        *(
            {"name": f"POD_{k.upper()}", "valueFrom": {"fieldRef": {"fieldPath": v}}}
            for k, v in field.items()
        ),
    ]
    env_from = [
        {"prefix": "CM_", "configMapRef": {"name": "cm"}},
        {"prefix": "S_", "secretRef": {"name": "s"}},
    ]
    projected = {
        "sources": [
            {"secret": {"name": "s", "items": [{"key": "user", "path": "user"}]}},
            {"configMap": {"name": "cm", "items": [{"key": "color", "path": "color"}]}},
            {
                "downwardAPI": {
                    "items": [{"path": k, "fieldRef": {"fieldPath": v}} for k, v in field.items()]
                }
            },
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        ]
    }
    mounts = [
        {"name": "sec", "mountPath": "/etc/sec"},
        {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "mix", "mountPath": "/etc/mix"},
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sees"},
        "spec": {
            "nodeName": ak_real.name,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                container("c", "sleep", "3600", env=env, envFrom=env_from, volumeMounts=mounts)
            ],
            "volumes": [
                {"name": "sec", "secret": {"secretName": "s"}},
                {"name": "cfg", "configMap": {"name": "cm"}},
                {"name": "mix", "projected": projected},
            ],
        },
    }
    local = run(local_cluster, ak_real, pod)
    uid = local["metadata"]["uid"]

    def read(path: str) -> str:
        done = exec_in(local_cluster, ak_real, "sees", "cat", path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert read("/etc/sec/user") == "alice"
    assert (read("/etc/cfg/color"), read("/etc/cfg/size")) == ("blue", "9")
    assert (read("/etc/mix/user"), read("/etc/mix/color")) == ("alice", "blue")
    # The downward API names the LOCAL pod, not the remote one.
    assert (read("/etc/mix/name"), read("/etc/mix/namespace"), read("/etc/mix/uid")) == (
        "sees",
        ns,
        uid,
    )
    token = _claims(read("/etc/mix/token"))
    assert token["sub"] == f"system:serviceaccount:{ns}:default"
    assert token["iss"] == local_cluster.server
    assert read(f"{SA_DIR}/namespace") == ns
    assert read(f"{SA_DIR}/ca.crt").strip() == local_cluster.ca.pair.cert.read_text().strip()
    assert _claims(read(f"{SA_DIR}/token"))["kubernetes.io"]["pod"]["uid"] == uid

    printed = exec_in(local_cluster, ak_real, "sees", "env").stdout.splitlines()
    seen = dict(line.split("=", 1) for line in printed if "=" in line)
    assert seen["USER_NAME"] == "alice" and seen["COLOR"] == "blue"
    assert (seen["POD_NAME"], seen["POD_NAMESPACE"], seen["POD_UID"]) == ("sees", ns, uid)
    assert (seen["CM_color"], seen["CM_size"], seen["S_user"]) == ("blue", "9", "alice")
    assert seen["KUBERNETES_SERVICE_HOST"] == sandbox.HOST_IP
    assert seen["KUBERNETES_SERVICE_PORT"] == str(local_cluster.port)

    # A Secret changed locally reaches the file inside the running container.
    local_cluster.kubectl(
        "-n", ns, "patch", "secret", "s", "-p", json.dumps({"stringData": {"user": "bob"}})
    )
    wait_until("the new Secret value in the container", lambda: read("/etc/sec/user") == "bob", 120)
    wait_until("... and in the projected volume", lambda: read("/etc/mix/user") == "bob", 60)
