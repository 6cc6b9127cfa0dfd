"""The import contracts in pyproject.toml name every part of AK: a package added
later and left out of them would escape the rule that keeps ak/core pure."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _parts() -> set[str]:
    ak = ROOT / "ak"
    packages = {f"ak.{p.name}" for p in ak.iterdir() if (p / "__init__.py").exists()}
    modules = {f"ak.{p.stem}" for p in ak.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return packages | modules


def _contracts() -> dict[str, dict[str, list[str]]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def test_the_core_may_import_no_other_part_of_ak() -> None:
    forbidden = set(_contracts()["ak.core is pure"]["forbidden_modules"])
    assert _parts() - {"ak.core"} <= forbidden


def test_the_wire_protocols_import_no_other_part_of_ak() -> None:
    forbidden = set(_contracts()["ak.wire depends on no other part of AK"]["forbidden_modules"])
    assert _parts() - {"ak.wire"} <= forbidden


def test_nothing_shipped_imports_the_tests_or_their_harness() -> None:
    # The whole product against the whole of tests/ (the harness is tests.testbed):
    # no part of AK, present or added later, is left out.
    contract = _contracts()["the product does not import the tests or their harness"]
    assert contract["source_modules"] == ["ak"]
    assert contract["forbidden_modules"] == ["tests"]
