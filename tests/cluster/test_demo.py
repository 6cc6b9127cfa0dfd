"""The README's first command works and shows the seed's walkthrough."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.cluster


def test_demo_once_shows_pods_on_both_sides() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ak.testbed.demo", "--once"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # The seed README's own example name: node vk-ak-example, namespace crossplane-system.
    assert "vk-ak-example-d05fe343c4951ecb   Active" in out.stdout
    assert out.stdout.count("vk-ak-example   <none>") == 3  # 3 local pods on the AK node
    assert "kwok-node-" in out.stdout
