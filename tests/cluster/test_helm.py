"""The Helm chart: lint, the seed's install command, what it renders, and the RBAC it
gives AK, installed into the local harness cluster and checked with can-i and doctor."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ak.config import load_config
from ak.doctor import (
    LOCAL_NETWORK_POLICY_PERMISSIONS,
    LOCAL_PEER_PERMISSIONS,
    LOCAL_PERMISSIONS,
    LOCAL_STORAGE_PERMISSIONS,
)
from ak.kube.config import load_kubeconfig
from tests.cluster.util import build_output
from tests.testbed.cluster import Cluster
from tests.testbed.tools import REPO

pytestmark = pytest.mark.cluster

CHART = REPO / "packaging" / "helm" / "actual-kubelets"
CI_VALUES = CHART / "ci" / "test-values.yaml"
Obj = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> str:
    return build_output("helm.sh")


def run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, check=False)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def render(helm: str, release: str, namespace: str, *args: str) -> list[Obj]:
    out = run_helm(helm, "template", release, str(CHART), "--namespace", namespace, *args)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(objs: list[Obj]) -> dict[str, list[Obj]]:
    kinds: dict[str, list[Obj]] = {}
    for obj in objs:
        kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def ak_toml(objs: list[Obj], tmp_path: Path) -> Path:
    (cm,) = by_kind(objs)["ConfigMap"]
    path = tmp_path / "ak.toml"
    path.write_text(cm["data"]["ak.toml"])
    return path


def test_lint(helm: str) -> None:
    out = run_helm(helm, "lint", "--strict", str(CHART), "-f", str(CI_VALUES))
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout
    missing = run_helm(helm, "template", "x", str(CHART), check=False)
    assert missing.returncode != 0
    assert "is required" in missing.stderr
    bad = run_helm(
        helm,
        "template",
        "x",
        str(CHART),
        "-f",
        str(CI_VALUES),
        "--set",
        "logLevel=loud",
        check=False,
    )
    assert bad.returncode != 0 and "logLevel" in bad.stderr


def test_seed_install_command(helm: str, local_cluster: Cluster, tmp_path: Path) -> None:
    """The seed README's `helm install` flags render a working configuration."""
    ca = local_cluster.ca.pair.cert
    objs = render(
        helm,
        "example",
        "kube-system",
        "--set",
        "local.apiserverHost=10.0.0.1",
        "--set",
        "remote.apiserverHost=127.0.0.1",
        "--set",
        "remote.token=verysecuretoken",
        "--set-file",
        f"remote.caData={ca}",
    )
    kinds = by_kind(objs)
    (secret,) = kinds["Secret"]
    kubeconfig = tmp_path / "remote.yaml"
    kubeconfig.write_bytes(base64.b64decode(secret["data"]["kubeconfig"]))
    loaded = load_kubeconfig(str(kubeconfig))
    assert loaded.server == "https://127.0.0.1"
    assert loaded.token() == "verysecuretoken"
    config = load_config({"config": str(ak_toml(objs, tmp_path))}, {})
    assert config.node.name == "vk-ak-example"  # the seed's node name for release "example"
    assert config.local.apiserver_host == "10.0.0.1"
    assert config.local.kubeconfig is None  # in-cluster, as the ServiceAccount
    assert config.remote.kubeconfig == "/etc/ak/remote/kubeconfig"


def test_rendered_objects(helm: str, tmp_path: Path) -> None:
    objs = render(
        helm,
        "r1",
        "ak",
        "-f",
        str(CI_VALUES),
        "--set",
        "nodeName=vk-custom",
        "--set",
        "taint.enabled=true",
        "--set",
        "node.labels.zone=remote",
        "--set",
        "node.resources.allocatable.cpu=8",
        "--set",
        "pods.env.HTTP_PROXY=http://proxy:3128",
        "--set",
        "image.repository=registry.example/ak",
    )
    kinds = by_kind(objs)
    assert sorted(kinds) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "Role",
        "RoleBinding",
        "Secret",
        "ServiceAccount",
    ]
    (deploy,) = kinds["Deployment"]
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["automountServiceAccountToken"] is True
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/ak:0.1.0"
    assert container["args"] == ["--config=/etc/ak/ak.toml"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "TMPDIR", "value": "/tmp"} in container["env"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"] == {"sizeLimit": "256Mi"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["virtual-kubelet"]
    config = load_config({"config": str(ak_toml(objs, tmp_path))}, {})
    assert config.node.name == "vk-custom"
    assert config.node.taint is True
    assert config.node.labels == {"zone": "remote"}
    assert config.node.allocatable["cpu"] == "8"
    assert config.pods.env == (("HTTP_PROXY", "http://proxy:3128"),)
    assert config.log_format == "json"
    (secret,) = kinds["Secret"]
    remote = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    cluster = remote["clusters"][0]["cluster"]
    assert cluster["server"] == "https://192.0.2.2:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]).startswith(b"-----BEGIN")


def test_placement_allow_list_reaches_the_config(helm: str, tmp_path: Path) -> None:
    values = tmp_path / "allowed.yaml"
    values.write_text(
        "pods:\n  placement:\n    allowed:\n"
        "      nodeLabels: {gpu.example.com/model: [a100, h100], zone: []}\n"
        "      tolerations: {nvidia.com/gpu: []}\n"
    )
    objs = render(helm, "r4", "ak", "-f", str(CI_VALUES), "-f", str(values))
    config = load_config({"config": str(ak_toml(objs, tmp_path))}, {})
    assert config.pods.allowed_node_labels == {
        "gpu.example.com/model": ("a100", "h100"),
        "zone": (),
    }
    assert config.pods.allowed_tolerations == {"nvidia.com/gpu": ()}


def test_node_identity_mode(helm: str, tmp_path: Path) -> None:
    node_kubeconfig = tmp_path / "node.kubeconfig"
    node_kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    objs = render(
        helm, "r2", "ak", "-f", str(CI_VALUES), "--set-file", f"local.kubeconfig={node_kubeconfig}"
    )
    kinds = by_kind(objs)
    # No kubelet permission is granted; only what a kubelet may not do (the
    # read-only NetworkPolicy reads, storage), to the node's own identity.
    assert "Role" not in kinds
    granted = set().union(*(rbac_triples(role["rules"]) for role in kinds["ClusterRole"]))
    assert granted == {
        (p.group, f"{p.resource}/{p.subresource}" if p.subresource else p.resource, verb)
        for p in LOCAL_NETWORK_POLICY_PERMISSIONS + LOCAL_STORAGE_PERMISSIONS
        for verb in p.verbs
    }
    for binding in kinds["ClusterRoleBinding"]:
        assert binding["subjects"] == [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": "system:node:vk-ak-r2",
            }
        ]
    config = load_config({"config": str(ak_toml(objs, tmp_path))}, {})
    assert config.pods.network_policies is True and config.namespaces.isolation is True
    assert sorted(s["metadata"]["name"] for s in kinds["Secret"]) == [
        "r2-actual-kubelets-local",
        "r2-actual-kubelets-remote",
    ]
    pod = kinds["Deployment"][0]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    config = load_config({"config": str(ak_toml(objs, tmp_path))}, {})
    assert config.local.kubeconfig == "/etc/ak/local/kubeconfig"


def rbac_triples(rules: list[Obj]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_chart_rbac_mirrors_doctor(helm: str) -> None:
    kinds = by_kind(render(helm, "r3", "ak", "-f", str(CI_VALUES)))
    granted = rbac_triples(kinds["ClusterRole"][0]["rules"]) | rbac_triples(
        kinds["Role"][0]["rules"]
    )
    wanted = {
        (p.group, f"{p.resource}/{p.subresource}" if p.subresource else p.resource, verb)
        for p in LOCAL_PERMISSIONS
        + LOCAL_NETWORK_POLICY_PERMISSIONS
        + LOCAL_PEER_PERMISSIONS
        + LOCAL_STORAGE_PERMISSIONS
        for verb in p.verbs
    }
    assert granted == wanted


@pytest.fixture
def installed(helm: str, local_cluster: Cluster) -> Iterator[tuple[str, str, str]]:
    """The chart's objects applied to the local cluster in a fresh namespace."""
    suffix = uuid.uuid4().hex[:5]
    ns, release = f"ak-helm-{suffix}", f"h{suffix}"
    objs = render(helm, release, ns, "-f", str(CI_VALUES))
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": objs})
    local_cluster.kubectl("create", "namespace", ns)
    # The API server accepts every object as rendered (admission, schema, RBAC escalation).
    local_cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=body)
    local_cluster.kubectl("apply", "-f", "-", input=body)
    try:
        yield ns, f"{release}-actual-kubelets", f"vk-ak-{release}"
    finally:
        local_cluster.kubectl("delete", "-f", "-", "--wait=false", input=body, check=False)
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_installed_rbac_is_least_privilege(
    installed: tuple[str, str, str], local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    ns, sa, node = installed
    who = f"--as=system:serviceaccount:{ns}:{sa}"

    def can_i(*args: str) -> bool:
        out = local_cluster.kubectl("auth", "can-i", *args, who, check=False)
        return out.stdout.strip() == "yes"

    for allowed in (
        ("create", "nodes"),
        ("get", f"nodes/{node}"),
        ("patch", f"nodes/{node}"),
        ("patch", f"nodes/{node}", "--subresource=status"),
        ("create", "leases", "-n", "kube-node-lease"),
        ("update", f"leases/{node}", "-n", "kube-node-lease"),
        ("watch", "pods", "-A"),
        ("delete", "pods", "-n", "any"),
        ("patch", "pods", "--subresource=status", "-n", "any"),
        ("create", "events", "-n", "any"),
        ("get", "secrets", "-n", "any"),
        ("list", "configmaps", "-A"),
        ("create", "serviceaccounts", "--subresource=token", "-n", "any"),
    ):
        assert can_i(*allowed), allowed
    # `kubectl auth can-i VERB TYPE/NAME`: subresources need --subresource.
    for denied in (
        ("list", "nodes"),
        ("update", f"nodes/{node}", "--subresource=status"),
        ("create", "pods", "--subresource=eviction", "-n", "any"),
        ("patch", "nodes/some-real-node"),
        ("delete", f"nodes/{node}"),
        ("update", "leases/some-real-node", "-n", "kube-node-lease"),
        ("create", "leases", "-n", "default"),
        ("create", "pods", "-n", "any"),
        ("update", "pods", "-n", "any"),
        ("create", "secrets", "-n", "any"),
        ("create", "deployments", "-n", "any"),
        ("create", "clusterrolebindings"),
        ("*", "*"),
    ):
        assert not can_i(*denied), denied

    # And ak doctor, as that ServiceAccount, finds everything AK needs.
    token = local_cluster.kubectl("-n", ns, "create", "token", sa).stdout.strip()
    local_kc = local_cluster.write_kubeconfig(f"sa-{ns}", None, token)
    doctor = subprocess.run(
        [
            sys.executable,
            "-m",
            "ak",
            "doctor",
            f"--node-name={node}",
            f"--local-kubeconfig={local_kc}",
            f"--remote-kubeconfig={remote_cluster.kubeconfig}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "is not a node identity" in doctor.stdout
