"""Backoff for transient failures: capped exponential with full jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transaction is re-sent after a transient failure.

    ``attempts`` counts the first try. Delays are drawn from
    ``[0, min(max_delay, base_delay * 2**n)]`` (full jitter), which spreads racing
    writers apart instead of having them collide again in lockstep.
    """

    attempts: int = 8
    base_delay: float = 0.02
    max_delay: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, retry_number: int) -> float:
        cap = min(self.max_delay, self.base_delay * (2**retry_number))
        return self.rng.uniform(0, cap)


NO_RETRY = RetryPolicy(attempts=1)
