"""The seed's quick start, literally: `helm install` on a local cluster whose real
node runs AK's image (imported, no registry); AK registers its node from a pod,
its serving CSR is approved as NOTES.txt says, and a Deployment scheduled to it
runs in real containers on the remote real node, with logs and exec through
AK-in-a-pod. Then the pod's hardening as the real kubelet enforced it, an
upgrade that keeps the remote pods, and an uninstall."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from ak import __version__
from ak.core.x509names import identity
from tests.cluster.realutil import container, kubectl
from tests.cluster.test_helm import CHART, helm  # noqa: F401 - the helm fixture
from tests.cluster.util import Obj, phase, pods, wait_until
from tests.testbed import realnode, sandbox
from tests.testbed.cluster import Cluster
from tests.testbed.tools import REPO

pytestmark = pytest.mark.cluster

ARCHIVE = REPO / "dist" / f"ak-image-{__version__}.tar"
ON_REAL_NODE = {
    "nodeSelector": {realnode.LABEL: "true"},
    "tolerations": [dict(realnode.TOLERATION)],
}


@pytest.fixture(scope="module")
def ak_image() -> Path:
    built = subprocess.run(["bash", str(REPO / "build" / "image.sh")], check=False, timeout=1800)
    assert built.returncode == 0, "build/image.sh failed; see its output above"
    return ARCHIVE


@pytest.fixture(scope="module")
def local_real_node(local_cluster: Cluster, ak_image: Path) -> Iterator[realnode.RealNode]:
    node = local_cluster.add_real_node("real-local")
    node.import_image(ak_image)
    yield node
    node.stop()
    local_cluster.real_nodes.remove(node)
    local_cluster.kubectl("delete", "node", node.name, "--wait=false", check=False)


def _remote_token(remote: Cluster) -> tuple[str, str]:
    """A token and CA for AK's remote identity, made as packaging/REMOTE-ACCESS.md says."""
    remote.kubectl("apply", "-f", str(REPO / "packaging" / "remote-rbac.yaml"))

    def secret() -> Obj | None:
        s = remote.get_json("/api/v1/namespaces/actual-kubelets/secrets/actual-kubelets-token")
        return s if s.get("data", {}).get("token") else None

    data = wait_until("the remote token Secret filled in", secret, 60)["data"]
    return base64.b64decode(data["token"]).decode(), base64.b64decode(data["ca.crt"]).decode()


def _helm(helm_bin: str, local: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [helm_bin, f"--kubeconfig={local.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _approve_serving_csr(local: Cluster, node: str) -> None:
    """NOTES.txt step 3: find the CSR naming system:node:<node> and approve it."""

    def pending() -> str | None:
        out = local.kubectl(
            "get",
            "csr",
            "--field-selector",
            "spec.signerName=kubernetes.io/kubelet-serving",
            "-o",
            "json",
        )
        for csr in json.loads(out.stdout)["items"]:
            pem = base64.b64decode(csr["spec"]["request"])
            # Other tests' nodes may have names past the 64-character CN bound.
            cn, _ = identity(x509.load_pem_x509_csr(pem))
            if cn == f"system:node:{node}" and not csr.get("status", {}).get("conditions"):
                name: str = csr["metadata"]["name"]
                return name
        return None

    name = wait_until(f"a kubelet-serving CSR from {node}", pending, 90)
    local.kubectl("certificate", "approve", name)


def _ak_processes() -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == [b"/ak", b"run"]:
            found.append(int(proc.name))
    return _with_descendants(found)


def _with_descendants(pids: list[int]) -> list[int]:
    """The static binary runs AK's Python below two bootloaders (staticx, then
    PyInstaller's), whose command lines differ: take the whole process tree."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            parents[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = list(pids)
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


def _status_field(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _root_mount_options(pid: int) -> list[str]:
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[5].split(",")
    raise AssertionError(f"no root mount for {pid}")


def _pod_kubeconfig(local: Cluster, node: str, path: Path) -> Path:
    """A kubelet identity for AK-in-a-pod: certificates inline, and the API server
    by the address pods reach it at (127.0.0.1 would be the pod's own)."""
    doc = json.loads(local.node_kubeconfig(node).read_text())
    cluster = doc["clusters"][0]["cluster"]
    cluster["server"] = f"https://{sandbox.HOST_IP}:{local.port}"
    ca = Path(cluster.pop("certificate-authority")).read_bytes()
    cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    user = doc["users"][0]["user"]
    for key in ("client-certificate", "client-key"):
        user[f"{key}-data"] = base64.b64encode(Path(user.pop(key)).read_bytes()).decode()
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("identity", ["serviceaccount", "kubelet"])
def test_seed_quick_start_on_a_real_node(
    identity: str,
    *,
    helm: str,  # noqa: F811 - the fixture imported above
    local_cluster: Cluster,
    remote_cluster: Cluster,
    local_real_node: realnode.RealNode,
    remote_real_node: realnode.RealNode,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = f"q{uuid.uuid4().hex[:5]}"
    node = f"vk-ak-{release}"
    system_ns = f"ak-{release}"
    token, ca = _remote_token(remote_cluster)
    ca_file = local_cluster.dir / f"remote-ca-{release}.crt"
    ca_file.write_text(ca)
    remote_placement = {
        "nodeSelector": {realnode.LABEL: "true"},
        "tolerations": [{"key": realnode.LABEL, "operator": "Exists", "effect": "NoSchedule"}],
    }
    values = [
        # The seed's four values...
        "--set", f"local.apiserverHost={sandbox.HOST_IP}",
        "--set", f"remote.apiserverHost={sandbox.HOST_IP}:{remote_cluster.port}",
        "--set", f"remote.token={token}",
        "--set-file", f"remote.caData={ca_file}",
        # ...and what this testbed needs: the local API server's port as remote
        # pods reach it, the imported image, AK's pod on the real node, and AK's
        # pods on the remote real node.
        "--set", f"local.apiserverPort={local_cluster.port}",
        "--set", "image.repository=ak", "--set", "image.pullPolicy=Never",
        "--set-json", f"nodeSelector={json.dumps(ON_REAL_NODE['nodeSelector'])}",
        "--set-json", f"tolerations={json.dumps(ON_REAL_NODE['tolerations'])}",
        "--set-json", f"pods.placement={json.dumps(remote_placement)}",
    ]  # fmt: skip
    if identity == "kubelet":
        # The least-privilege path: a kubelet identity; the only ClusterRole is
        # the read-only one for the tenant's NetworkPolicies.
        kubeconfig = _pod_kubeconfig(local_cluster, node, local_cluster.dir / f"{release}.kc")
        values += ["--set-file", f"local.kubeconfig={kubeconfig}"]
    t0 = time.monotonic()
    installed = _helm(
        helm,
        local_cluster,
        "install",
        release,
        str(CHART),
        "--namespace",
        system_ns,
        "--create-namespace",
        *values,
    )

    def ak_pod() -> Obj | None:
        # Ready, not only Running: /readyz answers once AK is synced. A pod only
        # Running may still be unpacking its binary, and a SIGTERM then is lost
        # by the bootloader (no Python to forward it to yet).
        found = [
            p
            for p in pods(local_cluster, system_ns)
            if phase(p) == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        ]
        return found[0] if found else None

    pod = wait_until("AK's pod Ready on the real local node", ak_pod, 120)
    assert pod["spec"]["nodeName"] == local_real_node.name
    _approve_serving_csr(local_cluster, node)

    def node_ready() -> bool:
        n = local_cluster.get_json(f"/api/v1/nodes/{node}")
        return any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
        )

    wait_until(f"node {node} Ready", node_ready, 120)
    ready_after = time.monotonic() - t0
    roles = local_cluster.kubectl(
        "get", "clusterrole", "-l", f"app.kubernetes.io/instance={release}", "-o", "name"
    ).stdout.split()
    if identity == "kubelet":
        # The node identity's two grants beyond a kubelet's: NetworkPolicy reads and storage.
        assert sorted(r.rsplit("-", 1)[-1] for r in roles) == ["policies", "storage"], roles
        assert any(r.endswith("-network-policies") for r in roles), roles
    else:
        assert len(roles) == 1, roles

    # A Deployment scheduled to the virtual node runs in the remote real node's containers.
    ns = f"app-{release}"
    local_cluster.kubectl("create", "namespace", ns)
    local_cluster.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "hello"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "hello"}},
                "template": {
                    "metadata": {"labels": {"app": "hello"}},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/hostname": node},
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            container("c", "sh", "-c", "echo hello through AK-in-a-pod; sleep 3600")
                        ],
                    },
                },
            },
        },
        ns,
    )

    def hello() -> Obj | None:
        found = [p for p in pods(local_cluster, ns, "app=hello") if phase(p) == "Running"]
        return found[0] if found else None

    app = wait_until("the Deployment's pod Running", hello, 120)
    name, uid = app["metadata"]["name"], app["metadata"]["uid"]
    remote_ns = json.loads(
        remote_cluster.kubectl(
            "get", "ns", "-l", f"actual.vk/node-name={node},actual.vk/namespace={ns}", "-o", "json"
        ).stdout
    )["items"][0]["metadata"]["name"]
    remote = remote_cluster.get_json(f"/api/v1/namespaces/{remote_ns}/pods/{name}")
    assert remote["spec"]["nodeName"] == remote_real_node.name

    # AK reads the approved CSR's certificate within 2 s, then serves its port.
    def served() -> subprocess.CompletedProcess[str] | None:
        out = kubectl(local_cluster, "-n", ns, "logs", name)
        return out if out.returncode == 0 else None

    logs = wait_until("kubectl logs through AK-in-a-pod", served, 30)
    assert logs.stdout == "hello through AK-in-a-pod\n", logs.stderr
    done = kubectl(local_cluster, "-n", ns, "exec", name, "--", "sh", "-c", "echo in; exit 4")
    assert (done.returncode, done.stdout) == (4, "in\n"), done.stderr

    # The pod's hardening, as the real kubelet and runc applied it.
    pids = _ak_processes()
    assert pids, "no /ak run process on the real node"
    for pid in pids:
        assert _status_field(pid, "Uid").split()[:2] == ["65532", "65532"]
        assert int(_status_field(pid, "CapEff"), 16) == 0
        assert int(_status_field(pid, "CapBnd"), 16) == 0
        assert "ro" in _root_mount_options(pid)
    rss = sum(int(_status_field(pid, "VmRSS").split()[0]) for pid in pids) / 1024
    ak_container = pod["spec"]["containers"][0]
    assert ak_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert ak_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert ak_pod() is not None  # still Ready: /readyz answered the kubelet

    # An upgrade that changes a value rolls AK, and the running pod is kept.
    old_ak = pod["metadata"]["uid"]
    _helm(
        helm,
        local_cluster,
        "upgrade",
        release,
        str(CHART),
        "--namespace",
        system_ns,
        *values,
        "--set",
        "logLevel=debug",
    )
    new = wait_until(
        "a new AK pod Ready",
        lambda: (p := ak_pod()) is not None and p["metadata"]["uid"] != old_ak and p,
        120,
    )
    assert new
    wait_until(f"node {node} Ready again", node_ready, 120)
    after = remote_cluster.get_json(f"/api/v1/namespaces/{remote_ns}/pods/{name}")
    assert after["metadata"]["uid"] == remote["metadata"]["uid"]  # not re-created
    assert local_cluster.get_json(f"/api/v1/namespaces/{ns}/pods/{name}")["metadata"]["uid"] == uid

    # Uninstall: none of the chart's objects remain; the node and its lease are
    # the kubelet's, removed as NOTES.txt says.
    assert f"kubectl delete node {node}" in installed.stdout, installed.stdout
    remove_remote = f"kubectl delete namespace -l actual.vk/node-name={node}"
    assert remove_remote in installed.stdout, installed.stdout
    t_stop = time.monotonic()
    _helm(helm, local_cluster, "uninstall", release, "--namespace", system_ns, "--wait")
    wait_until("AK's pod gone", lambda: not pods(local_cluster, system_ns), 60)
    stopped_after = time.monotonic() - t_stop
    assert stopped_after < 20, stopped_after  # SIGTERM ends AK; no 30 s grace period out
    leftovers = local_cluster.kubectl(
        "get", "all,cm,secret,sa,role,rolebinding", "-n", system_ns, "-l",
        f"app.kubernetes.io/instance={release}", "-o", "name",
    ).stdout.split()  # fmt: skip
    assert leftovers == []
    cluster_wide = local_cluster.kubectl(
        "get", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}",
        "-o", "name",
    ).stdout.split()  # fmt: skip
    assert cluster_wide == []
    # ...and what NOTES.txt says to run removes the rest, on both sides.
    local_cluster.kubectl("delete", "node", node)
    remote_cluster.kubectl("delete", "namespace", "-l", f"actual.vk/node-name={node}")
    assert remote_cluster.kubectl("get", "ns", "-l", f"actual.vk/node-name={node}",
                                  "-o", "name").stdout == ""  # fmt: skip
    with capsys.disabled():
        print(
            f"\n[helm {identity}] install to node Ready {ready_after:.1f}s; AK pod RSS "
            f"{rss:.0f} MiB; image {ARCHIVE.stat().st_size / 2**20:.1f} MiB",
            file=sys.stderr,
        )
