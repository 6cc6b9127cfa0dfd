"""The ``ak`` command: exit codes, one-line errors, and what reaches the provider."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ak import __version__, cli
from ak.config import Config, LocalSettings, NodeSettings, RemoteSettings
from ak.errors import ConfigError


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No AK_* variables from the machine running the tests; logging restored after."""
    for name in [n for n in os.environ if n.startswith("AK_")]:
        monkeypatch.delenv(name)
    root, ak_logger = logging.getLogger(), logging.getLogger("ak")
    handlers, levels = list(root.handlers), (root.level, ak_logger.level)
    yield
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    ak_logger.setLevel(levels[1])


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    calls: list[Config] = []

    def fake(config: Config) -> int:
        calls.append(config)
        return 0

    monkeypatch.setattr(cli, "_run_provider", fake)
    return calls


def stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out == f"ak {__version__}\n"
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"ak {__version__}\n"


def test_run_happy_path(provider: list[Config], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AK_REMOTE_KUBECONFIG", "/etc/ak/remote.yaml")
    argv = ["run", "--node-name", "vk-ak-example", "--local-apiserver-host", "10.0.0.1"]
    argv += ["--kubelet-port", "10251", "--taint", "--log-level", "warning"]
    assert cli.main(argv) == 0
    assert provider == [
        Config(
            node=NodeSettings(name="vk-ak-example", taint=True, kubelet_port=10251),
            local=LocalSettings(apiserver_host="10.0.0.1"),
            remote=RemoteSettings(kubeconfig="/etc/ak/remote.yaml"),
            log_level="warning",
        )
    ]
    assert provider[0].source["remote.kubeconfig"] == "env AK_REMOTE_KUBECONFIG"
    assert provider[0].source["node.taint"] == "flag --taint"


def test_run_returns_the_provider_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_run_provider", lambda config: 3)
    assert cli.main(["run", "--node-name", "vk"]) == 3


def test_no_taint_overrides_the_file(provider: list[Config], tmp_path: Path) -> None:
    path = tmp_path / "ak.toml"
    path.write_text('node-name = "vk"\n[node]\ntaint = true\n')
    assert cli.main(["run", "--config", str(path), "--no-taint"]) == 0
    assert provider[0].node.taint is False


def test_bad_flag_is_one_line(provider: list[Config], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--node-name", "vk", "--bogus"]) == 2
    assert stderr_lines(capsys) == [
        "ak: error: unrecognized arguments: --bogus (see ak run --help)"
    ]
    assert provider == []


def test_missing_flag_value_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--node-name"]) == 2
    assert stderr_lines(capsys) == [
        "ak: error: argument --node-name: expected one argument (see ak run --help)"
    ]


def test_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    (line,) = stderr_lines(capsys)
    assert line.startswith("ak: error: the following arguments are required")
    assert line.endswith("(see ak --help)")


def test_abbreviated_flags_are_refused(
    provider: list[Config], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--node", "vk"]) == 2
    assert stderr_lines(capsys) == [
        "ak: error: unrecognized arguments: --node vk (see ak run --help)"
    ]
    assert provider == []


def test_config_error_is_one_line(
    provider: list[Config], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AK_KUBELET_PORT", "abc")
    assert cli.main(["run", "--node-name", "vk"]) == 2
    assert stderr_lines(capsys) == [
        'ak: error: AK_KUBELET_PORT: "abc" is not a port number (1-65535)'
    ]
    assert provider == []


def test_missing_node_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run"]) == 2
    (line,) = stderr_lines(capsys)
    assert line == "ak: error: " + (
        "no node name: pass --node-name, set AK_NODE_NAME or node-name in the config file"
    )


def test_provider_config_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(config: Config) -> int:
        # As trio's nursery would deliver it from a task.
        raise ExceptionGroup("tasks", [ConfigError("kubeconfig /x: no such file\nmore")])

    monkeypatch.setattr(cli, "_run_provider", fail)
    assert cli.main(["run", "--node-name", "vk"]) == 2
    assert (
        capsys.readouterr().err.splitlines()[-1] == "ak: error: kubeconfig /x: no such file; more"
    )


def test_other_errors_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(config: Config) -> int:
        raise RuntimeError("bug")

    monkeypatch.setattr(cli, "_run_provider", fail)
    with pytest.raises(RuntimeError, match="bug"):
        cli.main(["run", "--node-name", "vk"])


def test_keyboard_interrupt_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(config: Config) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_provider", interrupted)
    assert cli.main(["run", "--node-name", "vk", "--log-level", "error"]) == 130
    assert capsys.readouterr().err == ""


def test_config_command_prints_values_and_sources(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "ak.toml"
    path.write_text('node-name = "from-file"\n[local]\nqps = 7\n')
    monkeypatch.setenv("AK_CONFIG", str(path))
    monkeypatch.setenv("AK_LOCAL_BURST", "9")
    assert cli.main(["config", "--remote-qps", "1.5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["node.name"] == {"value": "from-file", "source": f"file {path} node-name"}
    assert report["local.qps"] == {"value": 7.0, "source": f"file {path} [local] qps"}
    assert report["local.burst"] == {"value": 9, "source": "env AK_LOCAL_BURST"}
    assert report["remote.qps"] == {"value": 1.5, "source": "flag --remote-qps"}
    assert report["metrics_port"] == {"value": 10256, "source": "default"}
    assert report["pods.env"] == {"value": [], "source": "default"}


def test_help_lists_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for name in ("AK_NODE_NAME", "AK_LOCAL_APISERVER_HOST", "AK_TAINT", "AK_CONFIG"):
        assert name in out
    assert "--no-taint" in out


def test_text_log_format(provider: list[Config], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--node-name", "vk"]) == 0
    logging.getLogger("ak.node").info("hello %s", "there")
    line = stderr_lines(capsys)[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO ak\.node: hello there", line)


def test_json_log_format(provider: list[Config], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--node-name", "vk", "--log-format", "json"]) == 0
    logging.getLogger("ak.pods").warning("slow %d", 3, extra={"pod": "ns/p"})
    record = json.loads(stderr_lines(capsys)[-1])
    assert record["level"] == "warning"
    assert record["logger"] == "ak.pods"
    assert record["msg"] == "slow 3"
    assert record["pod"] == "ns/p"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])


def test_log_level_applies_to_ak_but_libraries_stay_quiet(
    provider: list[Config], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--node-name", "vk", "--log-level", "debug"]) == 0
    logging.getLogger("ak.node").debug("ak detail")
    logging.getLogger("httpx").info("HTTP Request: GET /")
    err = capsys.readouterr().err
    assert "ak detail" in err
    assert "HTTP Request" not in err


def test_python_dash_m() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ak", "version"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, f"ak {__version__}\n")


def test_a_kubeconfig_that_is_a_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ak",
            "run",
            "--node-name=vk",
            f"--local-kubeconfig={tmp_path}",
            f"--remote-kubeconfig={tmp_path}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (
        2,
        f"ak: error: kubeconfig {tmp_path}: is a directory, not a file\n",
    )
