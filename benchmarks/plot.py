"""The report's picture: requests per job against detection lag, one point per poll schedule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .scenarios.latency import LatencyRow

__all__ = ["latency_plot"]


def latency_plot(rows: Sequence[LatencyRow], path: Path) -> Path:
    """Draw scenario 2 (one panel per distribution) into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen here, and none wanted
    import matplotlib.pyplot as plt

    distributions = sorted({row.distribution for row in rows})
    figure, axes = plt.subplots(1, len(distributions), figsize=(6 * len(distributions), 4.8))
    panels = [axes] if len(distributions) == 1 else list(axes)
    for ax, distribution in zip(panels, distributions, strict=True):
        for row in (r for r in rows if r.distribution == distribution):
            ours = row.schedule.startswith("ours")
            polls, lag = row.polls_per_job[0], row.lag_p95[0] * 100
            ax.errorbar(
                polls,
                lag,
                xerr=[[polls - row.polls_per_job[1]], [row.polls_per_job[2] - polls]],
                yerr=[[lag - row.lag_p95[1] * 100], [row.lag_p95[2] * 100 - lag]],
                fmt="o" if ours else "s",
                color="tab:red" if ours else "tab:gray",
                markersize=8 if ours else 6,
                capsize=3,
            )
            ax.annotate(row.schedule, (polls, lag), textcoords="offset points", xytext=(6, 5))
        ax.axhline(5, color="tab:blue", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("polls per job (log scale)")
        ax.set_ylabel("detection lag p95, % of task run time")
        ax.set_title(f"{distribution} run times: fewer polls and lower lag is down-left")
        ax.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
