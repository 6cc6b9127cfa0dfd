"""Every test under tests/cluster needs real control planes: marked here, by
directory, so ``pytest -m "not cluster"`` (the fast path) can never start a
cluster because one file forgot its ``pytestmark``."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.cluster)
