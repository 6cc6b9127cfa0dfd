"""On the remote cluster, each AK identity is confined to its own namespaces (a
ValidatingAdmissionPolicy shipped in packaging/remote-confinement.yaml)."""

from __future__ import annotations

import json
import ssl
import uuid
from pathlib import Path

import httpx
import pytest

from ak.core.names import remote_namespace, remote_namespace_object
from tests.cluster.util import pod, pods, running, wait_until
from tests.conftest import ClusterFactory, wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster

pytestmark = pytest.mark.cluster

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"


def identity(remote: Cluster, node: str) -> Path:
    """A kubeconfig for the ServiceAccount actual-kubelets/<node>, bound to AK's ClusterRole."""
    remote.kubectl("-n", "actual-kubelets", "create", "serviceaccount", node)
    remote.kubectl(
        "create",
        "clusterrolebinding",
        f"ak-{node}",
        "--clusterrole=actual-kubelets-remote",
        f"--serviceaccount=actual-kubelets:{node}",
    )
    return remote.write_kubeconfig(f"sa-{node}", None, token=token(remote, node))


def token(remote: Cluster, node: str) -> str:
    """A token of the ServiceAccount actual-kubelets/<node>."""
    with remote.http() as c:
        r = c.post(
            f"/api/v1/namespaces/actual-kubelets/serviceaccounts/{node}/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        r.raise_for_status()
    value: str = r.json()["status"]["token"]
    return value


def patch_as(remote: Cluster, bearer: str, path: str, body: object) -> httpx.Response:
    """PATCH as AK does (kubectl would GET the subresource first, which AK may not)."""
    ctx = ssl.create_default_context(cafile=str(remote.ca.pair.cert))
    headers = {
        "Authorization": f"Bearer {bearer}",
        "Content-Type": "application/strategic-merge-patch+json",
    }
    with httpx.Client(base_url=remote.server, verify=ctx, headers=headers) as c:
        return c.patch(path, content=json.dumps(body))


def kubectl_as(
    remote: Cluster, kc: Path, *args: str, body: dict[str, object] | None = None
) -> tuple[int, str]:
    out = remote.kubectl(
        *args, kubeconfig=kc, check=False, input=json.dumps(body) if body else None
    )
    return out.returncode, out.stdout + out.stderr


def test_ak_identities_cannot_touch_each_other(
    cluster_factory: ClusterFactory, local_cluster: Cluster
) -> None:
    remote = cluster_factory("remote-confined", kwok_nodes=1)
    remote.kubectl("apply", "-f", str(PACKAGING / "remote-rbac.yaml"))
    remote.kubectl("apply", "-f", str(PACKAGING / "remote-confinement.yaml"))
    one, two = (f"ak-conf-{t}-{uuid.uuid4().hex[:4]}" for t in ("a", "b"))
    kc_one, kc_two = identity(remote, one), identity(remote, two)

    # The policy takes effect once the API server has loaded it.
    wait_until(
        "the policy enforced",
        lambda: "denied" in kubectl_as(remote, kc_one, "-n", "default", "create", "cm", "probe")[1],
        30,
    )
    # AK-2 owns a namespace with a secret in it.
    ns_two = remote_namespace_object(two, "shop")
    assert kubectl_as(remote, kc_two, "create", "-f", "-", body=ns_two)[0] == 0
    rns_two = remote_namespace(two, "shop")
    assert (
        kubectl_as(
            remote, kc_two, "-n", rns_two, "create", "secret", "generic", "s", "--from-literal=a=b"
        )[0]
        == 0
    )

    victim = {"name": "v", "image": "x", "resources": {"requests": {"cpu": "100m"}}}
    body: dict[str, object] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "v"}}
    # Never scheduled, so nothing but the policy can refuse its resize.
    body["spec"] = {"containers": [victim], "nodeSelector": {"nowhere": "true"}}
    assert kubectl_as(remote, kc_two, "-n", rns_two, "create", "-f", "-", body=body)[0] == 0
    debug = {"spec": {"ephemeralContainers": [{"name": "d", "image": "x"}]}}
    resize = {"spec": {"containers": [{"name": "v", "resources": {"requests": {"cpu": "200m"}}}]}}

    # AK-1 can do none of this to AK-2's namespace, nor work outside AK namespaces.
    denied = [
        kubectl_as(
            remote, kc_one, "-n", rns_two, "create", "secret", "generic", "x", "--from-literal=a=b"
        ),
        kubectl_as(remote, kc_one, "-n", rns_two, "delete", "secret", "s"),
        kubectl_as(remote, kc_one, "-n", rns_two, "label", "secret", "s", "x=y"),
        kubectl_as(remote, kc_one, "delete", "namespace", rns_two),
        kubectl_as(
            remote,
            kc_one,
            "label",
            "namespace",
            rns_two,
            "--overwrite",
            f"actual.vk/node-name={one}",
        ),
        kubectl_as(remote, kc_one, "create", "-f", "-", body=remote_namespace_object(two, "other")),
        kubectl_as(remote, kc_one, "-n", "default", "create", "configmap", "c"),
        # Nor loosen AK-2's tenants' disruption budgets.
        kubectl_as(
            remote,
            kc_one,
            "-n",
            rns_two,
            "create",
            "pdb",
            "p",
            "--selector=a=b",
            "--min-available=0",
        ),
        kubectl_as(
            remote,
            kc_two,
            "label",
            "namespace",
            rns_two,
            "--overwrite",
            f"actual.vk/node-name={one}",
        ),
    ]
    for code, text in denied:
        assert code != 0 and ("denied" in text or "forbidden" in text.lower()), text
    # Nor to AK-2's pods through their subresources: `kubectl debug`, an in-place resize.
    bearer = token(remote, one)
    for subresource, patch in (("ephemeralcontainers", debug), ("resize", resize)):
        r = patch_as(remote, bearer, f"/api/v1/namespaces/{rns_two}/pods/v/{subresource}", patch)
        assert r.status_code == 403 and "may only act in namespaces labelled" in r.text, r.text
    assert (
        "ephemeralContainers" not in remote.get_json(f"/api/v1/namespaces/{rns_two}/pods/v")["spec"]
    )
    assert remote.get_json(f"/api/v1/namespaces/{rns_two}/secrets/s")["metadata"]["name"] == "s"
    labels = remote.get_json(f"/api/v1/namespaces/{rns_two}")["metadata"]["labels"]
    assert labels["actual.vk/node-name"] == two

    # AK-1 itself runs fine with its confined identity.
    ns = f"conf-{uuid.uuid4().hex[:4]}"
    local_cluster.kubectl("create", "namespace", ns)
    ak = AKProcess(local_cluster, remote, one, remote_kubeconfig=kc_one)
    ak.start()
    try:
        wait_for_node_ready(ak)
        local_cluster.kubectl("-n", ns, "create", "secret", "generic", "dep", "--from-literal=k=v")
        container = {"name": "c", "image": "x", "envFrom": [{"secretRef": {"name": "dep"}}]}
        local_cluster.apply(pod("confined", one, containers=[container]), ns)
        wait_until("pod Running under confinement", lambda: running(pods(local_cluster, ns)), 60)
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", one, "--wait=false", check=False)
