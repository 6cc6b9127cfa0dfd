"""``ak run`` ends with exit 0 on SIGTERM, also while it retries a cluster it cannot reach
at start (systemd and the kubelet stop it with SIGTERM; a death by signal reads as a crash)."""

from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ak import cli
from tests.cluster.util import wait_until
from tests.testbed.procs import Proc, free_port

RETRY = "registering node vk-stop: "


def unreachable_kubeconfig(path: Path) -> Path:
    """A kubeconfig whose server is a loopback port nothing listens on."""
    cluster = {"server": f"https://127.0.0.1:{free_port()}", "insecure-skip-tls-verify": True}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_sigterm_while_retrying_an_unreachable_cluster_exits_0(tmp_path: Path) -> None:
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig")
    log = tmp_path / "ak.log"
    ak = Proc(
        "ak",
        [
            sys.executable,
            "-m",
            "ak",
            "run",
            "--node-name=vk-stop",
            f"--local-kubeconfig={kubeconfig}",
            f"--remote-kubeconfig={kubeconfig}",
            f"--kubelet-port={free_port()}",
            "--metrics-port=0",
        ],
        log,
    )
    try:
        wait_until("AK retrying its registration", lambda: RETRY in log.read_text())
        ak.signal(signal.SIGTERM)
        assert ak.popen.wait(30) == 0, log.read_text()
    finally:
        ak.stop()
    text = log.read_text()
    assert "SIGTERM received; stopping" in text
    assert "Traceback" not in text


def test_sigterm_while_ak_run_loads_stops_it_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Loading ak.run takes half a second, before trio can listen for SIGTERM.
    real_import = importlib.import_module

    def import_then_sigterm(name: str) -> Any:
        module = real_import(name)
        os.kill(os.getpid(), signal.SIGTERM)
        return module

    monkeypatch.setattr(importlib, "import_module", import_then_sigterm)
    # Should the CLI not take it, SIGTERM lands here instead of killing pytest.
    missed: list[int] = []

    def test_handler(signum: int, _frame: object) -> None:
        missed.append(signum)

    before = signal.signal(signal.SIGTERM, test_handler)
    thresholds = gc.get_threshold()
    root, ak_logger = logging.getLogger(), logging.getLogger("ak")
    handlers, levels = list(root.handlers), (root.level, ak_logger.level)
    try:
        # The kubeconfigs are never read: AK stops before connecting.
        rc = cli.main(["run", "--node-name=vk", "--local-kubeconfig=/nonexistent"])
    finally:
        assert signal.signal(signal.SIGTERM, before) == test_handler  # restored
        gc.set_threshold(*thresholds)
        root.handlers[:] = handlers
        root.setLevel(levels[0])
        ak_logger.setLevel(levels[1])
    assert (rc, missed) == (0, [])
    assert "SIGTERM received while starting; stopping" in capsys.readouterr().err
