"""Exponential backoff with jitter, for retries and task restarts."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    attempt: int = field(default=0, init=False)

    def next(self) -> float:
        """Seconds to wait before the next try; grows until ``reset``."""
        delay = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0
