"""The report that the checks add to, and what they learn on the way."""

from __future__ import annotations

from dataclasses import dataclass, field

from ak.config import Config
from ak.kube.client import KubeClient
from ak.kube.errors import ApiError, Unreachable


@dataclass
class Check:
    """One line of the report. ``ok`` None: skipped (an earlier check failed)."""

    name: str
    ok: bool | None
    detail: str = ""
    fix: str = ""
    # Passed, but something could not be told: shown with "!" and its fix line.
    warn: bool = False


@dataclass
class Side:
    """What was learnt about one cluster so far."""

    label: str  # "local" | "remote"
    setting: str  # the config section, for fix hints
    client: KubeClient | None = None
    server: str = ""
    version: tuple[int, int] | None = None
    git_version: str = ""
    user: str | None = None
    groups: list[str] = field(default_factory=list)


class Checklist:
    """The report so far, in order, and each cluster's ``Side``."""

    def __init__(self, config: Config, *, timeout: float = 10) -> None:
        self.config = config
        self.timeout = timeout
        self.checks: list[Check] = []
        self.local = Side("local", "[local] kubeconfig / --local-kubeconfig")
        self.remote = Side("remote", "[remote] kubeconfig / --remote-kubeconfig")

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(
        self, name: str, ok: bool | None, detail: str = "", fix: str = "", *, warn: bool = False
    ) -> None:
        self.checks.append(Check(name, ok, detail, fix, warn))


def _short(e: BaseException) -> str:
    if isinstance(e, ApiError):
        return f"{e.status} {e.reason}: {e.message}"[:300]
    if isinstance(e, Unreachable):
        return e.reason[:300]  # without the "remote API server https://..." prefix
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]
