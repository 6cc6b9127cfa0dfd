"""The README's list of the files one pod's life runs, checked against AK running it.

AK runs under ``tests.testbed.pathtrace``, which notes every file of ``ak/`` whose
code the pod-sync task tree runs. One pod is created, runs and is deleted; the
files noted must be those the README lists, so the list cannot fall behind the
code (a new file on the path fails here until the README names it) nor claim
files the path no longer runs.
"""

from __future__ import annotations

import re
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.cluster.util import run_pod, wait_until
from tests.conftest import NODE_IP, AKNode, node_running
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster
from tests.testbed.tools import REPO

pytestmark = pytest.mark.cluster

SECTION = re.compile(r"<!-- pod-path -->(.*?)<!-- /pod-path -->", re.S)
MAYBE = re.compile(r"<!-- maybe -->(.*?)<!-- /maybe -->", re.S)
PATH = re.compile(r"`(ak/[\w/]+\.py)`")
SKELETON = {
    "ak/kube/informer.py",
    "ak/pods/controller.py",
    "ak/pods/remote.py",
    "ak/core/pods.py",
    "ak/core/status.py",
}


def readme_pod_path() -> tuple[set[str], set[str]]:
    """(the files listed, those of them run only when something goes wrong)."""
    section = SECTION.search((REPO / "README.md").read_text())
    assert section, "README.md has no <!-- pod-path --> section"
    maybe = MAYBE.search(section.group(1))
    assert maybe, "the pod-path section has no <!-- maybe --> part"
    return set(PATH.findall(section.group(1))), set(PATH.findall(maybe.group(1)))


def test_the_readme_names_every_file_a_pods_life_runs(
    local_cluster: Cluster, remote_cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "pod-path.txt"
    suffix = uuid.uuid4().hex[:5]
    ak = AKProcess(
        local_cluster,
        remote_cluster,
        f"ak-{suffix}",
        node_ip=NODE_IP,
        command=[sys.executable, "-m", "tests.testbed.pathtrace", str(out)],
    )
    with node_running(AKNode(ak, f"t-{suffix}")) as node:
        # A first pod warms every cache and watch, so the traced one is an ordinary pod.
        run_pod(local_cluster, node.namespace, node.ak.node_name, "warm")
        time.sleep(2)
        assert ak.proc is not None
        ak.proc.signal(signal.SIGUSR1)
        run_pod(local_cluster, node.namespace, node.ak.node_name, "traced")
        local_cluster.kubectl("-n", node.namespace, "delete", "pod", "traced", "--wait=true")
        ak.proc.signal(signal.SIGUSR2)
        wait_until("the trace", out.exists)  # written whole, then renamed into place
        ran = set(out.read_text().split())
    assert ran >= SKELETON, f"the trace missed the skeleton: {sorted(SKELETON - ran)}"
    listed, maybe = readme_pod_path()
    assert ran - listed == set(), f"on the pod path, not in the README: {sorted(ran - listed)}"
    missing = listed - maybe - ran
    assert missing == set(), f"in the README, not on the pod path: {sorted(missing)}"
