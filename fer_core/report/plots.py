"""Report figures beyond the calibration plots: per-seed scores of the student families."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fer_core.calibrate.plots import new_figure, save_png


def family_strip_plot(rows: pd.DataFrame, metric: str, path: str | Path, order: list[str] | None = None) -> Path:
    """One column per family: each seed's ``metric`` as a dot, the mean as a bar."""
    fams = order or list(dict.fromkeys(rows["family"]))
    fig = new_figure((1.6 + 1.3 * len(fams), 4.0))
    ax = fig.add_subplot()
    for i, fam in enumerate(fams):
        v = rows.loc[rows["family"] == fam, metric].to_numpy()
        ax.bar(i, v.mean(), color="#cfd8e3", width=0.6)
        ax.scatter([i] * len(v), v, color="#1f4e79", zorder=3, s=18)
    ax.set_xticks(range(len(fams)), fams, rotation=20, ha="right")
    ax.set_ylabel(metric)
    lo = rows[metric].min()
    ax.set_ylim(max(0.0, lo - 0.05), min(1.0, rows[metric].max() + 0.03))
    ax.set_title(f"Students: last-epoch test {metric} per seed")
    return save_png(fig, path)
