"""Run ``ak`` noting which of its files the pod path runs (the README's pod-path list).

    python -m tests.testbed.pathtrace OUT run --node-name=... (ak's own arguments)

Every Python call made by a task under the supervisor's ``pod-sync`` task (the
pod controller, its informers and workers, the provider and its preparers, and
whatever follows the pod topics) is noted by file, for files of the ``ak``
package. SIGUSR1 forgets what was noted (start-up, the first sync); SIGUSR2
writes the sorted paths, relative to the repository, to OUT.

A profile hook slows AK several times over: for one pod's path, not for load.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import trio

import ak
from ak.cli import main as ak_main

AK_DIR = str(Path(ak.__file__).parent) + "/"
REPO = Path(ak.__file__).parent.parent
ROOT_TASK = "pod-sync"


class PathTrace:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: set[str] = set()
        # Task -> whether it descends from the pod-sync task. Tasks are kept
        # alive by this map; a trace lasts one pod's life, so that is bounded.
        self._under: dict[Any, bool] = {}

    def _in_pod_path(self) -> bool:
        try:
            task = trio.lowlevel.current_task()
        except RuntimeError:  # outside trio.run: start-up
            return False
        seen = self._under.get(task)
        if seen is None:
            seen = False
            t: trio.lowlevel.Task | None = task
            while t is not None:
                if t.name == ROOT_TASK:
                    seen = True
                    break
                nursery = t.parent_nursery
                t = nursery.parent_task if nursery is not None else None
            self._under[task] = seen
        return seen

    def hook(self, frame: FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        filename = frame.f_code.co_filename
        if filename.startswith(AK_DIR) and filename not in self.files and self._in_pod_path():
            self.files.add(filename)

    def reset(self, *_: object) -> None:
        self.files.clear()

    def dump(self, *_: object) -> None:
        rel = sorted(str(Path(f).relative_to(REPO)) for f in self.files)
        # Whole or not at all: the reader takes the file as soon as it exists.
        partial = self.out.with_suffix(".partial")
        partial.write_text("".join(f"{p}\n" for p in rel))
        partial.replace(self.out)


def main(argv: list[str]) -> int:
    trace = PathTrace(Path(argv[0]))
    # Plain handlers: trio only installs its own for the signals it is asked to receive.
    signal.signal(signal.SIGUSR1, trace.reset)
    signal.signal(signal.SIGUSR2, trace.dump)
    sys.setprofile(trace.hook)
    return ak_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
