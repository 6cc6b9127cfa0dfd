"""The container image (build/image.sh): valid, reproducible, and AK runs a pod from it
with a read-only root as user 65532, the way a pod with the Helm chart runs it."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ak import __version__
from ak.core.names import remote_namespace
from tests.cluster.util import build_output, pod, pods, running, wait_until
from tests.conftest import wait_for_node_ready
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster
from tests.testbed.tools import REPO

pytestmark = pytest.mark.cluster

LAYOUT = REPO / "dist" / "oci"
ARCHIVE = REPO / "dist" / f"ak-image-{__version__}.tar"


@pytest.fixture(scope="module")
def image_digest() -> str:
    digest = build_output("image.sh")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest
    return digest


def skopeo(*args: str) -> Any:
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_image_is_valid_and_exported(image_digest: str) -> None:
    ref = f"oci:{LAYOUT}:{__version__}"
    info = skopeo("inspect", ref)
    assert info["Digest"] == image_digest
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert len(info["Layers"]) == 1
    config = skopeo("inspect", "--config", ref)["config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/ak", "run"]
    assert "TMPDIR=/tmp" in config["Env"]
    # `docker load` reads manifest.json: the image's name and its one layer.
    with tarfile.open(ARCHIVE) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        (loaded,) = json.load(member)
    assert loaded["RepoTags"] == [f"docker.io/library/ak:{__version__}"]
    assert len(loaded["Layers"]) == 1
    assert skopeo("inspect", f"docker-archive:{ARCHIVE}")["Env"] == info["Env"]


def test_image_is_reproducible(image_digest: str, tmp_path: Path) -> None:
    binary = REPO / "dist" / "ak"
    digests = set()
    for attempt in ("a", "b"):
        out = subprocess.run(
            [
                "/usr/bin/python3",
                str(REPO / "build" / "oci.py"),
                f"--binary={binary}",
                f"--out={tmp_path / attempt}",
                f"--tag={__version__}",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={"SOURCE_DATE_EPOCH": "0"},
        )
        digests.add(out.stdout.strip())
    assert digests == {image_digest}
    blobs = sorted(p.name for p in (tmp_path / "a" / "blobs" / "sha256").iterdir())
    assert blobs == sorted(p.name for p in (LAYOUT / "blobs" / "sha256").iterdir())


def inline_kubeconfig(source: Path, target: Path) -> None:
    """A self-contained copy (certificates inline): all the container gets is this file."""
    config = json.loads(source.read_text())
    for entry in config["clusters"]:
        ca = entry["cluster"].pop("certificate-authority")
        entry["cluster"]["certificate-authority-data"] = _b64(Path(ca))
    for entry in config["users"]:
        user = entry["user"]
        for key in ("client-certificate", "client-key"):
            if key in user:
                user[f"{key}-data"] = _b64(Path(user.pop(key)))
    target.write_text(json.dumps(config))
    target.chmod(0o644)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def rootfs(image_digest: str, tmp_path: Path) -> Iterator[Path]:
    """The image unpacked by umoci, plus the mount points a runtime would add."""
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{LAYOUT}:{__version__}", str(bundle)],
        check=True,
        capture_output=True,
    )
    root = bundle / "rootfs"
    for mount_point in ("proc", "etc/ak"):
        (root / mount_point).mkdir(parents=True, exist_ok=True)
    yield root


def container_command(root: Path, config_dir: Path) -> list[str]:
    """Run /ak like a container runtime with the chart's securityContext: the image as
    a read-only root, /proc, an emptyDir-like tmpfs on /tmp, the kubeconfigs read-only,
    user and group 65532, no capabilities. Arguments go to the image's /ak."""
    script = f"""
set -e
R={root}
mount --bind "$R" "$R"
mount --bind /proc "$R/proc"
mount --bind {config_dir} "$R/etc/ak"
mount -o remount,bind,ro "$R/etc/ak"
mount -o remount,bind,ro "$R"
mount -t tmpfs -o mode=1777,size=256m tmpfs "$R/tmp"
exec chroot --userspec=65532:65532 "$R" /ak "$@"
"""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "ak-container"]


def test_image_runs_a_pod_read_only_as_nonroot(
    rootfs: Path, local_cluster: Cluster, remote_cluster: Cluster, tmp_path: Path
) -> None:
    node = f"ak-img-{uuid.uuid4().hex[:5]}"
    ns = f"img-{uuid.uuid4().hex[:5]}"
    config_dir = tmp_path / "etc-ak"
    config_dir.mkdir()
    config_dir.chmod(0o755)
    inline_kubeconfig(local_cluster.node_kubeconfig(node), config_dir / "local.kubeconfig")
    inline_kubeconfig(remote_cluster.kubeconfig, config_dir / "remote.kubeconfig")

    probe = subprocess.run(
        [*container_command(rootfs, config_dir), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == f"ak {__version__}"

    ak = AKProcess(
        local_cluster, remote_cluster, node, command=container_command(rootfs, config_dir)
    )
    ak.local_kubeconfig = Path("/etc/ak/local.kubeconfig")
    ak.remote_kubeconfig = Path("/etc/ak/remote.kubeconfig")
    local_cluster.kubectl("create", "namespace", ns)
    ak.start()
    try:
        wait_for_node_ready(ak, timeout=60)
        local_cluster.apply(pod("hello", node), ns)
        wait_until(
            "the pod Running through the image",
            lambda: running(pods(local_cluster, ns, "app=hello")),
        )
        remote = pods(remote_cluster, remote_namespace(node, ns), "app=hello")
        assert [p["status"]["phase"] for p in remote] == ["Running"]
        # Nothing was written to the image's root.
        assert sorted(p.name for p in rootfs.iterdir()) == ["ak", "etc", "proc", "tmp"]
        assert list((rootfs / "tmp").iterdir()) == []
    finally:
        ak.stop()
        local_cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        local_cluster.kubectl("delete", "node", node, "--wait=false", check=False)
