"""The Kubernetes binaries a testbed cluster runs, as ``build/tools.sh`` builds them."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class ToolsMissing(RuntimeError):
    pass


def build_output(script: str, env: str) -> str:
    """The last line ``build/<script>`` prints (what it built, or found cached by
    its inputs), remembered in ``$<env>``, which, when set, skips the script."""
    out = os.environ.get(env)
    if not out:
        path = REPO / "build" / script
        done = subprocess.run(["bash", str(path)], stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            raise ToolsMissing(f"bash {path} exited {done.returncode}; see its output")
        out = done.stdout.strip().splitlines()[-1]
        os.environ[env] = out
    return out


@dataclass(frozen=True)
class Tools:
    bin: Path

    def __call__(self, name: str) -> str:
        return str(self.bin / name)

    @classmethod
    def find(cls) -> Tools:
        """The built binaries; builds them (or finds the cache) through build/tools.sh."""
        env_dir = os.environ.get("AK_TOOLS_BIN")
        if env_dir:
            return cls(Path(env_dir))
        script = REPO / "build" / "tools.sh"
        proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            raise ToolsMissing(
                f"building the Kubernetes test binaries failed (bash {script} exited "
                f"{proc.returncode}); see its output above"
            )
        path = Path(proc.stdout.strip().splitlines()[-1])
        os.environ["AK_TOOLS_BIN"] = str(path)
        return cls(path)
