"""The build scripts inside the test sandbox: a missing product fails at once,
naming the command that builds it (issue #28: they tried to download modules
there, which reach no registry, and failed minutes later with DNS errors)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Each script and the variable that points its output somewhere empty.
SCRIPTS = {
    "tools.sh": "AK_TOOLS_DIR",
    "vk-e2e.sh": "AK_VK_E2E_DIR",
    "metrics-server.sh": "AK_METRICS_SERVER_DIR",
    "kube-router.sh": "AK_KUBE_ROUTER_DIR",
    "helm.sh": "AK_HELM_DIR",
    "local-path.sh": "AK_LOCAL_PATH_DIR",
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_missing_build_fails_fast_inside_the_sandbox(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "AK_SANDBOX": "192.0.2.1", SCRIPTS[script]: str(tmp_path / "out")}
    run = subprocess.run(
        ["bash", str(REPO / "build" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 3, run.stderr
    assert f"run `bash build/{script}`" in run.stderr
    assert "cannot be built inside the test sandbox" in run.stderr
    assert not (tmp_path / "out").exists()
