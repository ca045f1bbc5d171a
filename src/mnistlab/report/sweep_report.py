"""The page of ``mnistlab sweep``: the headline numbers with their spread across seeds, shown
first as points with error bars, then as a table; then, for every question of the study, how
many runs gave the same answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mnistlab import spread
from mnistlab.report.html import QUICK_BANNER, Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mnistlab.sweep import Sweep

MAX_PANELS = 6


def errorbar_panels(sweep: Sweep, columns: Sequence[str] | None = None) -> Figure:
    """One panel per headline column: every run as a dot, the mean with its 95% interval as a
    bar, one line per headline row."""
    from matplotlib.figure import Figure

    rows = sweep.headline
    name_key = next(iter(rows[0]))
    numeric = [k for k in rows[0] if isinstance(rows[0][k], list)]
    cols = list(columns or numeric)[:MAX_PANELS]
    fig = Figure(figsize=(3.2 * len(cols), 0.45 * len(rows) + 1.4), layout="constrained")
    axes = fig.subplots(1, len(cols), sharey=True, squeeze=False)[0]
    ys = np.arange(len(rows))[::-1]
    for ax, col in zip(axes, cols, strict=False):
        for y, row in zip(ys, rows, strict=True):
            values = [v for v in row.get(col, []) if np.isfinite(v)]
            if not values:
                continue
            s = spread.summarise(values)
            ax.plot(values, [y] * len(values), "o", color="#999", ms=3, zorder=1)
            if s["n"] > 1:
                ax.errorbar(
                    s["mean"],
                    y,
                    xerr=[[s["mean"] - s["lo"]], [s["hi"] - s["mean"]]],
                    fmt="D",
                    color="#1f5fa8",
                    ms=5,
                    capsize=3,
                    zorder=2,
                )
            else:
                ax.plot(s["mean"], y, "D", color="#1f5fa8", ms=5, zorder=2)
        ax.set_title(col.replace("_", " "), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys, [str(r[name_key]) for r in rows], fontsize=9)
    return fig


def report(sweeps: Sequence[Sweep], *, seconds: float, quick: bool) -> Report:
    """The sweep's page: per data set, the headline spread (figure, table) and the answers."""
    from mnistlab.studies import STUDIES

    first = sweeps[0]
    entry = STUDIES[first.study]
    seeds = ", ".join(str(s) for s in first.seeds)
    page = Report(
        f"mnistlab sweep: {entry.title}",
        subtitle=(
            f"{len(first.seeds)} runs a data set (seeds {seeds}) on "
            f"{', '.join(s.label for s in sweeps)}; {seconds:.0f} s in all. Every number is the "
            f"mean over the runs, ± its standard deviation; the bars are 95% intervals of the "
            f"mean (Student's t). Each run's own report is under runs/."
        ),
        banner=QUICK_BANNER if quick else "",
    )
    for sweep in sweeps:
        _data_set(page, sweep, several=len(sweeps) > 1)
    page.section("Every number")
    page.text(
        "`spread.csv` holds every number of every run's metrics.json with its n, mean, standard "
        "deviation and 95% interval; `metrics.json` the same with the answers' counts."
    )
    return page


def _data_set(page: Report, sweep: Sweep, *, several: bool) -> None:
    where = f" on {sweep.label}" if several else ""
    page.section(f"Headline numbers{where}")
    if sweep.headline and any(isinstance(v, list) for v in sweep.headline[0].values()):
        page.figure(
            errorbar_panels(sweep),
            caption="Each grey dot is one run; the blue diamond is the mean, its bar the 95% "
            "interval of the mean over the runs.",
            alt="headline numbers with error bars",
        )
    from mnistlab.sweep import headline_table

    page.table(headline_table(sweep), caption="Mean ± standard deviation over the runs.")
    page.section(f"Do the answers hold across seeds?{where}")
    rows = [
        {
            "question": v["question"],
            "answer of most runs": v["finding"],
            "runs that agree": f"{v['runs_agreeing']} of {v['runs']}",
            "other answers": ", ".join(
                f"{k} ({n})" for k, n in v["findings"].items() if k != v["finding"]
            ),
        }
        for v in sweep.verdicts
    ]
    page.table(rows, caption="Each run's answer to each of the study's questions, counted.")
    held = sum(v["holds"] for v in sweep.verdicts)
    page.text(
        f"{held} of {len(sweep.verdicts)} answers are the same in every run"
        + (
            "; the others change with the seed and should be read as unsettled."
            if held < len(sweep.verdicts)
            else "."
        )
    )


def verdict_lines(sweep: Sweep) -> list[str]:
    """The answers' agreement as terminal lines."""
    return [
        f"{v['question']} {v['finding']} ({v['runs_agreeing']} of {v['runs']} runs)"
        for v in sweep.verdicts
    ]


def headline_lines(sweep: Sweep) -> list[str]:
    """The headline table as terminal lines."""
    from mnistlab.sweep import headline_table

    table = headline_table(sweep)
    if not table:
        return []
    cols = list(table[0])
    widths = {c: max(len(str(c)), *(len(str(r.get(c, ""))) for r in table)) for c in cols}
    lines = ["  ".join(f"{c:<{widths[c]}}" for c in cols)]
    lines += ["  ".join(f"{r.get(c, '')!s:<{widths[c]}}" for c in cols) for r in table]
    return lines
