"""Real dynamic provisioning for a testbed cluster: rancher's local-path-provisioner.

kind's default StorageClass, built from the Go module proxy by
``build/local-path.sh``, set up as its manifest (``deploy/local-path-storage.yaml``
of v0.0.30) sets it up, except that it runs as a process in the sandbox instead
of a Deployment: an identity of its own (a client certificate of the cluster's
CA) with the RBAC the manifest grants its ServiceAccount, the ConfigMap
``local-path-config`` (config.json, helperPod.yaml, the setup and teardown
scripts) in ``local-path-storage``, and the StorageClasses:

* ``local-path``: the cluster's default class, WaitForFirstConsumer, reclaim Delete;
* ``local-path-retain``: the same with reclaim Retain.

A claim of either class, once a pod on a real node uses it, gets a hostPath PV
pinned to that node (``kubernetes.io/hostname``), whose directory the provisioner
makes by running a helper pod (the setup script: ``mkdir -m 0777``) on that node;
deleting a PV of reclaim Delete runs the teardown helper (``rm -rf``). The
helper pods run the testbed's busybox image with ``imagePullPolicy: Never`` and
no priority class (the stock one pulls busybox and asks for
system-node-critical). Only the real nodes given have a path in ``nodePathMap``:
a claim on a kwok node fails with the provisioner's "config doesn't contain
node" event instead of a fake volume.

A real node's ``/var/lib`` is a tmpfs of its own mount namespace, so each
node's volumes live under the run's root instead (``<cluster dir>/local-path/<node>``),
which the node and the test process see alike: a test reads what a container
wrote straight from the PV's ``hostPath``.

Out of a cluster the provisioner cannot copy a helper pod's log into its own
("unable to retrieve in cluster config" in its log): harmless, the helper's
outcome is its phase.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.testbed import images
from tests.testbed.cluster import Cluster
from tests.testbed.procs import Proc, wait_for
from tests.testbed.realnode import RealNode
from tests.testbed.tools import build_output

ENV = "AK_LOCAL_PATH"
NAME = "local-path-provisioner"
NAMESPACE = "local-path-storage"
USER = "system:local-path-provisioner"
# The ServiceAccount of the helper pods (the manifest's, which the provisioner also runs as there).
SERVICE_ACCOUNT = "local-path-provisioner-service-account"
CONFIGMAP = "local-path-config"
PROVISIONER = "rancher.io/local-path"
STORAGE_CLASS = "local-path"
RETAIN_CLASS = "local-path-retain"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
# Logged (klog) once its informers synced and its workers run.
STARTED = "Started provisioner controller"

# The manifest's scripts, as the helper pod runs them (VOL_DIR is the volume's directory).
SETUP = '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n'
TEARDOWN = '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n'


class LocalPathUnavailable(RuntimeError):
    pass


def find_binary() -> Path:
    """The provisioner as ``build/local-path.sh`` builds it (or finds it cached);
    ``$AK_LOCAL_PATH`` names the binary and skips the script."""
    return Path(build_output("local-path.sh", ENV))


def config(paths: dict[str, Path]) -> dict[str, Any]:
    """config.json: each node's one volume directory; no default for other nodes."""
    return {"nodePathMap": [{"node": n, "paths": [str(p)]} for n, p in sorted(paths.items())]}


def helper_pod() -> dict[str, Any]:
    """helperPod.yaml (JSON is YAML): the manifest's, on the testbed's busybox image."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "containers": [
                {"name": "helper-pod", "image": images.SHELL, "imagePullPolicy": "Never"}
            ],
        },
    }


def storage_class(name: str, reclaim: str, *, default: bool) -> dict[str, Any]:
    annotations = {DEFAULT_CLASS: "true"} if default else {}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": annotations},
        "provisioner": PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": reclaim,
    }


def configmap_data(paths: dict[str, Path]) -> dict[str, str]:
    """``local-path-config``: what the provisioner reads and the helper pods run."""
    return {
        "config.json": json.dumps(config(paths), indent=2),
        "helperPod.yaml": json.dumps(helper_pod(), indent=2),
        "setup": SETUP,
        "teardown": TEARDOWN,
    }


def manifests(paths: dict[str, Path]) -> list[dict[str, Any]]:
    """What ``deploy/local-path-storage.yaml`` creates, but the Deployment, for
    ``USER`` instead of its ServiceAccount (which the helper pods still use)."""
    user = [{"kind": "User", "name": USER, "apiGroup": "rbac.authorization.k8s.io"}]
    rbac = "rbac.authorization.k8s.io/v1"
    role = {"apiGroup": "rbac.authorization.k8s.io", "name": NAME}
    read = ["get", "list", "watch"]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
        },
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods"],
                    "verbs": [*read, "create", "patch", "update", "delete"],
                }
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "roleRef": {**role, "kind": "Role"},
            "subjects": user,
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": NAME},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "persistentvolumeclaims", "configmaps", "pods"],
                    "verbs": read,
                },
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": read},
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumes"],
                    "verbs": [*read, "create", "patch", "update", "delete"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read},
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": NAME},
            "roleRef": {**role, "kind": "ClusterRole"},
            "subjects": user,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
            "data": configmap_data(paths),
        },
        storage_class(STORAGE_CLASS, "Delete", default=True),
        storage_class(RETAIN_CLASS, "Retain", default=False),
    ]


class LocalPath:
    """The provisioner for ``nodes`` (real nodes of ``cluster``); ``start``/``stop``
    or a context manager. ``paths[node]`` is where that node's volumes go."""

    def __init__(
        self, cluster: Cluster, nodes: Sequence[RealNode], binary: Path | None = None
    ) -> None:
        if not nodes:
            raise LocalPathUnavailable("local-path-provisioner needs a real node to put volumes on")
        self.cluster = cluster
        self.binary = binary or find_binary()
        self.dir = cluster.dir / "local-path"
        self.paths = {n.name: self.dir / n.name for n in nodes}
        self.log = cluster.logs / "local-path-provisioner.log"
        self.proc: Proc | None = None

    def argv(self) -> list[str]:
        # The files it reads are the ConfigMap's, as its Deployment mounts them;
        # it rereads config.json every 30 s.
        return [
            str(self.binary),
            "--debug",
            "start",
            f"--config={self.dir / 'config' / 'config.json'}",
            f"--helper-pod-file={self.dir / 'config' / 'helperPod.yaml'}",
            f"--kubeconfig={self.cluster.user_kubeconfig(USER)}",
            f"--namespace={NAMESPACE}",
            f"--provisioner-name={PROVISIONER}",
            f"--configmap-name={CONFIGMAP}",
            f"--service-account-name={SERVICE_ACCOUNT}",
            f"--helper-image={images.SHELL}",
        ]

    def start(self, timeout: float = 60) -> LocalPath:
        files = self.dir / "config"
        files.mkdir(parents=True, exist_ok=True)
        for key, text in configmap_data(self.paths).items():
            (files / key).write_text(text)
        for p in self.paths.values():
            p.mkdir(parents=True, exist_ok=True)
        self.cluster.apply(manifests(self.paths))
        self.proc = Proc(NAME, self.argv(), self.log)
        try:
            wait_for(
                "local-path-provisioner started",
                lambda: STARTED in self.log.read_text(errors="replace"),
                timeout,
                [self.proc],
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop it and remove its StorageClasses: a default class that nothing
        serves would leave every later claim without a class Pending."""
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        self.cluster.kubectl(
            "delete", "storageclass", STORAGE_CLASS, RETAIN_CLASS, "--ignore-not-found", check=False
        )

    def __enter__(self) -> LocalPath:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def volume_dir(pv: dict[str, Any]) -> Path:
        """Where a PV it provisioned keeps its files (the node's and this process's view)."""
        return Path(pv["spec"]["hostPath"]["path"])

    def describe(self) -> str:
        return f"local-path-provisioner: log {self.log}, volumes under {self.dir}"
