"""Draws the scaling figures (cost per operation against stored items) for the docs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.scaling import SizePoint

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "docs" / "performance-scaling.png"


def draw(points: Sequence[SizePoint], path: Path = DEFAULT_PATH) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8.5, 4), dpi=110)
    items = [point.items for point in points]
    for name in points[0].seconds:
        axes.plot(items, [p.seconds[name] * 1e6 for p in points], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("items stored (embedded backend)")
    axes.set_ylabel("cost per call, or per event swept (µs)")
    axes.set_title("enrollkit embedded backend: cost per call against table size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # off the lines
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
