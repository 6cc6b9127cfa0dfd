"""The files users install: the systemd unit and example config, the remote RBAC
manifest, and the reproducible OCI writer (build/oci.py)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from ak.cli import main
from ak.config import load_config
from ak.core import storage
from ak.doctor import (
    LOCAL_NETWORK_POLICY_PERMISSIONS,
    LOCAL_PEER_PERMISSIONS,
    LOCAL_STORAGE_PERMISSIONS,
    REMOTE_PERMISSIONS,
    REMOTE_STORAGE_PERMISSIONS,
    Permission,
)

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "ak.service"
EXAMPLE = REPO / "systemd" / "ak.toml.example"
REMOTE_RBAC = REPO / "packaging" / "remote-rbac.yaml"
LOCAL_NETPOL_RBAC = REPO / "packaging" / "local-network-policies.yaml"
LOCAL_STORAGE_RBAC = REPO / "packaging" / "local-storage.yaml"
CONFINEMENT = REPO / "packaging" / "remote-confinement.yaml"


def unit_directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_unit_has_what_issue_and_notify_protocol_need() -> None:
    d = unit_directives()
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["all"]  # AK's Python is a child of the bootloaders
    assert d["WatchdogSec"] == ["30s"]
    assert d["Restart"] == ["on-failure"]
    assert d["RestartPreventExitStatus"] == ["2"]  # ak's exit status for a config error
    assert d["DynamicUser"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["StateDirectory"] == ["ak"] and d["RuntimeDirectory"] == ["ak"]
    assert d["EnvironmentFile"] == ["-/etc/ak/ak.env"]
    assert d["ExecStart"] == ["/usr/local/bin/ak run --config /etc/ak/ak.toml"]
    assert d["CapabilityBoundingSet"] == [""]
    assert "AF_UNIX" in d["RestrictAddressFamilies"][0]  # the notify socket
    # Both found under a real systemd (tests/cluster/test_real_systemd.py).
    assert d["ReadOnlyPaths"] == ["-/run/lock -/dev/shm"]
    assert d["RestartForceExitStatus"] == ["SIGHUP"]


def test_unit_verifies(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # verify checks that ExecStart's binary exists: point it at one that does.
    unit = tmp_path / "ak.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/ak", "/bin/true"))
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    security = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    last = (security.stdout.strip().splitlines() or [""])[-1]
    # "→ Overall exposure level for ak.service: 1.6 OK 🙂"
    assert "Overall exposure level" in last and (" OK " in last or "SAFE" in last), last


def test_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--config", str(EXAMPLE)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["node.name"]["value"] == "vk-ak-example"
    assert report["local.apiserver_host"]["value"] == "10.0.0.1"
    assert report["remote.kubeconfig"]["value"] == "/run/credentials/ak.service/remote.kubeconfig"
    config = load_config({"config": str(EXAMPLE)}, {})
    assert config.node.allocatable == {"cpu": "100", "memory": "512Gi", "pods": "1000"}
    assert dict(config.pods.env)["HTTP_PROXY"].startswith("http://")
    assert config.kubelet.cert_dir == "/var/lib/ak"  # the unit's StateDirectory=ak
    # The kubeconfig paths are the unit's LoadCredential= names.
    creds = {v.split(":")[0] for v in unit_directives()["LoadCredential"]}
    for path in (config.local.kubeconfig, config.remote.kubeconfig):
        assert path is not None and path.startswith("/run/credentials/ak.service/")
        assert path.rpartition("/")[2] in creds


def _granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _wanted(perms: Sequence[Permission]) -> set[tuple[str, str, str]]:
    return {
        (p.group, f"{p.resource}/{p.subresource}" if p.subresource else p.resource, verb)
        for p in perms
        for verb in p.verbs
    }


def test_remote_rbac_is_exactly_what_doctor_checks() -> None:
    docs = list(yaml.safe_load_all(REMOTE_RBAC.read_text()))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert _granted(role) == _wanted(REMOTE_PERMISSIONS + REMOTE_STORAGE_PERMISSIONS)
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    (sa,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "actual-kubelets"}
    ]


def test_local_network_policy_rbac_is_exactly_what_doctor_checks() -> None:
    docs = list(yaml.safe_load_all(LOCAL_NETPOL_RBAC.read_text()))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert _granted(role) == _wanted(LOCAL_NETWORK_POLICY_PERMISSIONS + LOCAL_PEER_PERMISSIONS)
    assert {verb for _, _, verb in _granted(role)} <= {"get", "list", "watch"}  # read-only
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:node:NODE_NAME"}
    ]


def test_local_storage_rbac_is_exactly_what_doctor_checks() -> None:
    docs = list(yaml.safe_load_all(LOCAL_STORAGE_RBAC.read_text()))
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert _granted(role) == _wanted(LOCAL_STORAGE_PERMISSIONS)
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:node:NODE_NAME"}
    ]
    (klass,) = [d for d in docs if d["kind"] == "StorageClass"]
    assert klass == storage.local_class(storage.DEFAULT_CLASS, None)


def test_confinement_covers_every_resource_ak_writes_remotely() -> None:
    """Every remote resource AK may write is one the confinement policy confines
    (reads and the pods' streaming subresources aside)."""
    (policy,) = [
        d
        for d in yaml.safe_load_all(CONFINEMENT.read_text())
        if d["kind"] == "ValidatingAdmissionPolicy"
    ]
    confined = {
        (group, resource)
        for rule in policy["spec"]["matchConstraints"]["resourceRules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    writes = {"create", "update", "patch", "delete"}
    written = {
        (p.group, p.resource)
        for p in REMOTE_PERMISSIONS + REMOTE_STORAGE_PERMISSIONS
        if not p.subresource and writes & set(p.verbs)
    }
    assert written <= confined, written - confined
    assert ("networking.k8s.io", "networkpolicies") in confined
    assert ("policy", "poddisruptionbudgets") in confined


# --- build/oci.py --------------------------------------------------------------


def oci_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ak_build_oci", REPO / "build" / "oci.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


def blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_oci_layout_is_reproducible_and_well_formed(tmp_path: Path) -> None:
    oci = oci_module()
    binary = tmp_path / "ak"
    binary.write_bytes(b"\x7fELF not really" * 1000)
    first = oci.build(binary, tmp_path / "one", "1.2.3")
    binary.touch()  # a new mtime must not matter
    second = oci.build(binary, tmp_path / "two", "1.2.3")
    assert first == second
    for name in ("index.json", "oci-layout"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    binary.write_bytes(b"another binary")
    assert oci.build(binary, tmp_path / "three", "1.2.3") != first
    assert oci.build(binary, tmp_path / "four", "1.2.4") != oci.build(
        binary, tmp_path / "five", "1.2.3"
    )

    layout = tmp_path / "one"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == first
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1.2.3"
    manifest = json.loads(blob(layout, first))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["/ak", "run"]
    assert config["config"]["Env"] == ["TMPDIR=/tmp"]
    (layer_desc,) = manifest["layers"]
    layer = blob(layout, layer_desc["digest"])
    assert layer[4:8] == b"\0\0\0\0"  # gzip MTIME field: none recorded
    tar_bytes = gzip.decompress(layer)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names) == ["ak", "etc", "etc/group", "etc/passwd", "tmp"]
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
        modes = {m.name: m.mode for m in members}
        assert modes["ak"] == 0o755 and modes["tmp"] == 0o1777
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and b"nonroot:x:65532:65532" in passwd.read()


def test_wheel_builds_outside_the_tree_and_leaves_the_tests_out(tmp_path: Path) -> None:
    # setuptools built in-tree and left build/lib/ in our build/ scripts folder
    # after `pip install .` (issue #28); the wheel ships the product alone, not
    # the tests beside it nor their harness (tests/testbed).
    src = tmp_path / "src"
    for package in ("ak", "tests"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    (src / "build").mkdir()
    out = tmp_path / "wheel"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert list((src / "build").iterdir()) == []
    assert not (src / "ak.egg-info").exists()
    [wheel] = out.glob("actual_kubelets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ak/run.py" in names
    assert [n for n in names if not n.startswith(("ak/", "actual_kubelets-"))] == []
