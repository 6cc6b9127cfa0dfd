"""The README's first command works and shows the seed's walkthrough."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.testbed import demo, sandbox
from tests.testbed.tools import REPO

pytestmark = pytest.mark.cluster


def test_demo_once_shows_pods_on_both_sides() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.testbed.demo", "--once"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=os.environ.copy(),
        cwd=REPO,  # `-m` looks in the working directory first: this repository's tests
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # The seed README's own example name: node vk-ak-example, namespace crossplane-system.
    assert "vk-ak-example-d05fe343c4951ecb   Active" in out.stdout
    if not sandbox.inside():
        assert out.stdout.count("vk-ak-example   <none>") == 3  # 3 local pods on the AK node
        assert "[demo] pods run on kwok" in out.stdout
        assert "kwok-node-" in out.stdout
        return
    # In the sandbox (build/test.sh runs the tests there) the pods run in real
    # containers on the remote real node, and the controller's log shows what it
    # read from the LOCAL cluster as its own service account.
    assert "[demo] pods run on kwok" not in out.stdout
    assert out.stdout.count(f"   {demo.REAL_NODE}   <none>") == 3, out.stdout  # remote pods
    assert "as system:serviceaccount:crossplane-system:crossplane" in out.stdout
    assert "controller: pods: pod/crossplane-" in out.stdout
    assert '"host":"crossplane-' in out.stdout  # the ConfigMap it wrote, read back locally
