"""The drift history as a picture: each method's score per window beside its threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from loop.drift.report import DriftReport
from loop.evaluation.curves import figure_bytes, pyplot


def render(reports: Sequence[DriftReport], fmt: Literal["png", "svg"] = "png") -> bytes:
    """One panel per method: the score (crossed windows in red) and the threshold (dashed)."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()

    methods = list(dict.fromkeys(r.method for report in reports for r in report.results))
    rows = max(1, len(methods))
    figure, axes = plt.subplots(rows, 1, figsize=(7, 1.9 * rows + 0.6), dpi=110, squeeze=False)
    try:
        for axis, method in zip(axes[:, 0], methods, strict=False):
            found = [
                (report.window, r)
                for report in reports
                for r in report.results
                if r.method == method
            ]
            xs = [w for w, _ in found]
            axis.plot(xs, [r.score for _, r in found], marker="o", markersize=3, label="score")
            axis.plot(xs, [r.threshold for _, r in found], linestyle="--", label="threshold")
            crossed = [(w, r.score) for w, r in found if r.crossed]
            if crossed:
                axis.scatter(*zip(*crossed, strict=True), color="red", zorder=3, label="drift")
            axis.set_ylabel(method, fontsize=8)
            axis.grid(alpha=0.3)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # windows are whole
            axis.legend(loc="upper left", fontsize=7)
        if not methods:
            axes[0, 0].text(0.5, 0.5, "no drift report yet", ha="center", va="center")
        axes[-1, 0].set_xlabel("window")
        figure.suptitle("drift per window (red: the score crossed its threshold)", fontsize=10)
        return figure_bytes(figure, fmt)
    finally:
        plt.close(figure)
