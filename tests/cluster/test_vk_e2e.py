"""virtual-kubelet's own provider e2e suite, run against AK as a conformance check.

The suite (``github.com/virtual-kubelet/virtual-kubelet/test/e2e``) is built from
the Go module proxy by build/vk-e2e.sh, with the small Go test main in
build/go/vk-e2e that holds the list of its tests that cannot apply to AK. Here
AK joins the session's local cluster as a node, as it does on a bastion host,
and the suite drives it through the local admin kubeconfig in a namespace of
its own. Every test must pass except those on the list, and the list must be
the one docs/vk-e2e.md explains.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cluster.util import build_output
from tests.conftest import AKNode, node_running
from tests.testbed import sandbox
from tests.testbed.akproc import AKProcess
from tests.testbed.cluster import Cluster
from tests.testbed.tools import REPO

pytestmark = pytest.mark.cluster

DOC = REPO / "docs" / "vk-e2e.md"
# A subtest's verdict in `go test -v` output: "    --- PASS: TestEndToEnd/TestGetPods (0.80s)".
VERDICT = re.compile(r"^\s*--- (PASS|FAIL|SKIP): TestEndToEnd/(\w+) \(([\d.]+)s\)$", re.M)


@pytest.fixture(scope="session")
def vk_e2e() -> Path:
    """The compiled suite (cached by its inputs: instant once build/setup.sh has run)."""
    return Path(build_output("vk-e2e.sh"))


def suite_tests(binary: Path) -> dict[str, str]:
    """Every test of the suite and, for those skipped for AK, why (else "")."""
    out = subprocess.run(
        [str(binary), "-list"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    pairs = (line.split("\t", 1) for line in out.splitlines() if line)
    return {name: reason for name, reason in pairs}


def documented_skips() -> set[str]:
    """Tests docs/vk-e2e.md's table marks as skipped: rows "| `TestX` | skipped | why |"."""
    rows = re.findall(r"^\|\s*`(Test\w+)`\s*\|\s*(\w+)", DOC.read_text(), re.M)
    return {name for name, outcome in rows if outcome.lower() == "skipped"}


@dataclass
class SuiteRun:
    verdicts: dict[str, tuple[str, float]]
    output: str
    seconds: float


@pytest.fixture
def vk_node(local_cluster: Cluster, remote_cluster: Cluster) -> Iterator[AKNode]:
    """AK as a node whose address the local API server's node proxy accepts,
    with a fresh namespace for the suite's pods.

    The suite reads /pods and /runningpods/ through ``nodes/<node>/proxy``, which
    kube-apiserver refuses for a loopback node address: AK advertises the
    sandbox's host address (tests/testbed/sandbox.py), where build/test.sh runs
    the tests."""
    assert sandbox.inside(), (
        "the VK e2e suite needs the test sandbox (a non-loopback node address for the "
        "API server's node proxy): run it through build/test.sh as root"
    )
    suffix = uuid.uuid4().hex[:5]
    ak = AKProcess(local_cluster, remote_cluster, f"vk-e2e-{suffix}", node_ip=sandbox.HOST_IP)
    with node_running(AKNode(ak, f"vk-e2e-{suffix}")) as node:
        yield node


def run_suite(binary: Path, local: Cluster, node: str, namespace: str) -> SuiteRun:
    t0 = time.monotonic()
    done = subprocess.run(
        [
            str(binary),
            "-test.v",
            "-test.count=1",
            "-test.timeout=20m",
            f"-kubeconfig={local.kubeconfig}",
            f"-node-name={node}",
            f"-namespace={namespace}",
            "-watch-timeout=2m",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    output = done.stdout + done.stderr
    verdicts = {m[1]: (m[0], float(m[2])) for m in VERDICT.findall(output)}
    return SuiteRun(verdicts, output, time.monotonic() - t0)


def test_skips_are_documented(vk_e2e: Path) -> None:
    tests = suite_tests(vk_e2e)
    skipped = {name for name, reason in tests.items() if reason}
    assert skipped == documented_skips(), (
        f"build/go/vk-e2e skips {sorted(skipped)}; docs/vk-e2e.md documents "
        f"{sorted(documented_skips())} as skipped"
    )
    # The doc covers the whole suite, so a test added upstream is noticed there too.
    text = DOC.read_text()
    assert [n for n in tests if f"`{n}`" not in text] == []


def test_virtual_kubelet_e2e_suite(vk_e2e: Path, vk_node: AKNode) -> None:
    result = run_suite(vk_e2e, vk_node.ak.local, vk_node.name, vk_node.namespace)
    tests = suite_tests(vk_e2e)
    expected = {name: "SKIP" if reason else "PASS" for name, reason in tests.items()}
    got = {name: verdict for name, (verdict, _) in result.verdicts.items()}
    print(f"\nVK e2e suite against AK node {vk_node.name}: {result.seconds:.1f}s")
    for name in sorted(tests):
        verdict, secs = result.verdicts.get(name, ("missing", 0.0))
        print(f"  {verdict:7} {name} ({secs:.1f}s)")
    assert got == expected, result.output
    for name, reason in tests.items():
        if reason:  # the reason is in the output beside the suite's bare skip
            assert f"vk-e2e: {name} skipped for AK:" in result.output
