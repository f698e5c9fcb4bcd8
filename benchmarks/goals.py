"""How the benchmark prints a figure next to the goal it is measured against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    """``figure`` must be at least ``minimum`` or at most ``maximum``."""

    text: str
    minimum: float | None = None
    maximum: float | None = None

    def met(self, figure: float) -> bool:
        if self.minimum is not None and figure < self.minimum:
            return False
        return self.maximum is None or figure <= self.maximum

    def verdict(self, figure: float) -> str:
        return f"goal {self.text}: {'met' if self.met(figure) else 'NOT MET'}"


def within(low: float, high: float, text: str) -> Goal:
    return Goal(text, minimum=low, maximum=high)


def micros(seconds: float) -> str:
    """A per-operation cost in a readable unit."""
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.1f} us"
