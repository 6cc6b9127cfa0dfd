"""``ak doctor`` against real control planes: well set up, under-privileged, unreachable."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.testbed.akproc import LOCAL_STORAGE_RBAC, grant_local, grant_network_policy_reads
from tests.testbed.cluster import Cluster, kubeconfig_dict
from tests.testbed.procs import free_port
from tests.testbed.tools import REPO

pytestmark = pytest.mark.cluster

REMOTE_RBAC = REPO / "packaging" / "remote-rbac.yaml"


def doctor(
    local_kubeconfig: Path, remote_kubeconfig: Path, node: str, *extra: str
) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ak",
            "doctor",
            f"--node-name={node}",
            f"--local-kubeconfig={local_kubeconfig}",
            f"--remote-kubeconfig={remote_kubeconfig}",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.stderr == "", proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def line(lines: list[str], name: str) -> str:
    found = [entry for entry in lines if entry[2:].startswith(name)]
    assert found, f"no line {name!r} in:\n" + "\n".join(lines)
    return found[0]


def fix_after(lines: list[str], name: str) -> str:
    i = lines.index(line(lines, name))
    assert lines[i + 1].startswith("    fix: "), lines[i : i + 2]
    return lines[i + 1]


def node_kubeconfig(cluster: Cluster, node: str) -> Path:
    """A kubelet identity with the grants for the tenant's NetworkPolicies and storage."""
    grant_network_policy_reads(cluster, node)
    grant_local(cluster, node, LOCAL_STORAGE_RBAC)
    return cluster.node_kubeconfig(node)


def token_kubeconfig(cluster: Cluster, stem: str, token: str) -> Path:
    return cluster.write_kubeconfig(stem, None, token)


def test_node_identity_and_remote_admin_pass(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    node = f"ak-doc-{uuid.uuid4().hex[:5]}"
    rc, lines = doctor(node_kubeconfig(local_cluster, node), remote_cluster.kubeconfig, node)
    assert rc == 0, "\n".join(lines)
    assert lines[-1].startswith("all ") and lines[-1].endswith(" checks passed")
    # kwok runs no network plugin: enforcement cannot be told, which is said.
    enforcement = line(lines, "remote NetworkPolicy enforcement")
    assert enforcement.startswith("! ") and "cannot tell" in enforcement
    assert "enforces NetworkPolicy" in fix_after(lines, "remote NetworkPolicy enforcement")
    assert lines[-2] == "1 passed with a warning (!): read its fix line"
    checks = [
        entry
        for entry in lines[:-2]
        if not entry.startswith(("    fix: ", "! remote NetworkPolicy enforcement"))
    ]
    assert all(entry.startswith("✓ ") for entry in checks), "\n".join(lines)
    assert "only from this node's remote namespaces" in line(lines, "remote network isolation")
    assert "copied to the remote namespaces" in line(lines, "local NetworkPolicies")
    assert line(lines, "local can networkpolicies.networking.k8s.io").startswith("✓ ")
    assert line(lines, "local can persistentvolumes").startswith("✓ ")
    assert line(lines, "remote can persistentvolumeclaims").startswith("✓ ")
    assert f"accepted as system:node:{node}" in line(lines, "local credentials")
    assert "system:nodes" in line(lines, "local credentials")
    assert "v1." in line(lines, "local API server")
    assert line(lines, "local can secrets")  # granted through the Node authorizer
    assert "no node" in line(lines, "node name free")
    # Both clusters are on this host in the harness, so a loopback endpoint is fine.
    assert "127.0.0.1" in line(lines, "local API endpoint for remote pods")


def test_node_identity_without_the_network_policy_grant_is_told_how(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    node = f"ak-doc-{uuid.uuid4().hex[:5]}"
    kc = local_cluster.node_kubeconfig(node)
    rc, lines = doctor(kc, remote_cluster.kubeconfig, node)
    assert rc == 1
    for name in ("local can networkpolicies.networking.k8s.io", "local can namespaces"):
        assert line(lines, name).startswith("✗ "), name
        assert "local-network-policies.yaml" in fix_after(lines, name)
    for name in ("local can persistentvolumes", "local can storageclasses.storage.k8s.io"):
        assert line(lines, name).startswith("✗ "), name
        assert "local-storage.yaml" in fix_after(lines, name)
    # Switched off, nothing beyond the kubelet's is asked for, and that is said.
    rc, lines = doctor(kc, remote_cluster.kubeconfig, node, "--no-network-policies", "--no-storage")
    assert rc == 0, "\n".join(lines)
    assert line(lines, "local NetworkPolicies").startswith("! ")


def test_wrong_node_identity(local_cluster: Cluster, remote_cluster: Cluster) -> None:
    rc, lines = doctor(
        local_cluster.node_kubeconfig("some-other-node"), remote_cluster.kubeconfig, "ak-doc-x"
    )
    assert rc == 1
    assert line(lines, "local node identity").startswith("✗ ")
    assert "--node-name=some-other-node" in fix_after(lines, "local node identity")


def test_under_privileged_identities_fail_with_fixes(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    local_kc = local_cluster.user_kubeconfig("ak-doc-nobody")
    remote_kc = remote_cluster.user_kubeconfig("ak-doc-nobody")
    rc, lines = doctor(local_kc, remote_kc, "ak-doc-weak")
    assert rc == 1
    assert line(lines, "local API server").startswith("✓ ")
    assert line(lines, "local credentials").startswith("✓ ")
    assert "not a node identity" in line(lines, "local node identity")
    for name in ("local can nodes", "local can pods", "local can secrets", "remote can pods"):
        assert line(lines, name).startswith("✗ "), name
        assert "denied: " in line(lines, name)
    assert "remote-rbac.yaml" in fix_after(lines, "remote can namespaces")
    assert "node identity" in fix_after(lines, "local can nodes")
    assert lines[-1].endswith(" checks") and " failed, " in lines[-1]


def test_remote_rbac_manifest_is_enough_and_no_more(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    remote_cluster.kubectl("apply", "-f", str(REMOTE_RBAC))
    sa = "system:serviceaccount:actual-kubelets:actual-kubelets"
    token = remote_cluster.kubectl(
        "-n", "actual-kubelets", "create", "token", "actual-kubelets"
    ).stdout.strip()
    remote_kc = token_kubeconfig(remote_cluster, "ak-remote-sa", token)
    node = f"ak-doc-{uuid.uuid4().hex[:5]}"
    rc, lines = doctor(node_kubeconfig(local_cluster, node), remote_kc, node)
    assert rc == 0, "\n".join(lines)
    assert f"accepted as {sa}" in line(lines, "remote credentials")

    def can_i(*args: str) -> bool:
        proc = remote_cluster.kubectl("auth", "can-i", *args, f"--as={sa}", check=False)
        return proc.stdout.strip() == "yes"

    for allowed in (
        ("create", "namespaces"),
        ("delete", "pods", "-A"),
        ("create", "pods", "--subresource=exec", "-n", "any"),
        ("get", "pods", "--subresource=log", "-n", "any"),
        ("create", "pods", "--subresource=portforward", "-n", "any"),
        ("update", "secrets", "-n", "any"),
        ("watch", "configmaps", "-A"),
        ("update", "services", "-n", "any"),
        ("list", "events", "-A"),
        ("list", "nodes"),  # capacity "auto"
        ("create", "resourcequotas", "-n", "any"),  # the namespace template
        ("update", "networkpolicies.networking.k8s.io", "-n", "any"),  # isolation
    ):
        assert can_i(*allowed), allowed
    # `kubectl auth can-i VERB TYPE/NAME`: subresources need --subresource.
    for denied in (
        ("patch", "nodes"),
        ("get", "nodes", "--subresource=proxy"),
        ("create", "deployments", "-n", "any"),
        ("create", "clusterrolebindings"),
        ("create", "serviceaccounts", "--subresource=token", "-n", "any"),
        ("delete", "events", "-n", "any"),
        ("patch", "secrets", "-n", "any"),
        ("create", "pods", "--subresource=eviction", "-n", "any"),
        ("patch", "pods", "--subresource=status", "-n", "any"),
        ("*", "*"),
    ):
        assert not can_i(*denied), denied


def test_unreachable_server_skips_what_depends_on_it(
    local_cluster: Cluster, remote_cluster: Cluster, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.kubeconfig"
    cfg = kubeconfig_dict(
        f"https://127.0.0.1:{free_port()}", remote_cluster.ca.pair.cert, remote_cluster.admin
    )
    dead.write_text(json.dumps(cfg))
    rc, lines = doctor(local_cluster.node_kubeconfig("ak-doc-y"), dead, "ak-doc-y")
    assert rc == 1
    assert line(lines, "remote kubeconfig").startswith("✓ ")
    assert line(lines, "remote API server").startswith("✗ ")
    assert "network" in fix_after(lines, "remote API server")
    assert line(lines, "remote permissions").startswith("- ")
    assert " skipped " in lines[-1]
    rc, lines = doctor(local_cluster.node_kubeconfig("ak-doc-y"), tmp_path / "none", "ak-doc-y")
    assert rc == 1
    assert "no such file" in line(lines, "remote kubeconfig")


def test_local_endpoint_for_remote_pods(local_cluster: Cluster, remote_cluster: Cluster) -> None:
    node = f"ak-doc-{uuid.uuid4().hex[:5]}"
    local_kc = node_kubeconfig(local_cluster, node)
    rc, lines = doctor(
        local_kc,
        remote_cluster.kubeconfig,
        node,
        "--local-apiserver-host=127.0.0.1",
        f"--local-apiserver-port={local_cluster.port}",
    )
    assert rc == 0, "\n".join(lines)
    assert "from local.apiserverHost" in line(lines, "local API endpoint")
    rc, lines = doctor(
        local_kc,
        remote_cluster.kubeconfig,
        node,
        "--local-apiserver-host=127.0.0.1",
        f"--local-apiserver-port={free_port()}",
    )
    assert rc == 1
    assert "cannot connect" in line(lines, "local API endpoint")


def test_pod_address_range_must_be_this_hosts(
    local_cluster: Cluster, remote_cluster: Cluster
) -> None:
    """The sandbox owns 10.250.0.0/16 (as an operator would make it), not 10.251/16."""
    node = f"ak-doc-{uuid.uuid4().hex[:5]}"
    kc = node_kubeconfig(local_cluster, node)
    rc, lines = doctor(kc, remote_cluster.kubeconfig, node, "--pod-address-range=10.250.9.0/24")
    assert rc == 0, "\n".join(lines)
    assert "can listen" in line(lines, "pod addresses")
    rc, lines = doctor(kc, remote_cluster.kubeconfig, node, "--pod-address-range=10.251.0.0/24")
    assert rc == 1
    assert line(lines, "pod addresses").startswith("✗ ")
    assert "ip route add local 10.251.0.0/24 dev lo" in fix_after(lines, "pod addresses")


def test_bad_setting_is_one_line_and_exit_2(local_cluster: Cluster) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ak", "doctor", "--node-name=Not_Valid"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("ak: error: ") and proc.stderr.count("\n") == 1
