"""The report of ``mnistlab evaluate --report DIR``: someone else's samples on the study's page.

What a study shows a generator, for digits from any tool: a sample grid first, each sample beside
its nearest training digit, the quality-novelty plot beside the real-data references, then the
metric table with the real-data rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.metrics import Scorer, Scores
from mnistlab.report import figures
from mnistlab.report.html import Report
from mnistlab.report.writers import write_json

SHOWN = 40  # samples in the grid and pairs in the nearest-training-digit panel


def write(
    scores: Scores,
    samples: np.ndarray,
    scorer: Scorer,
    out_dir: Path,
    *,
    source: str = "",
    note: str | None = None,
) -> Path:
    """Write report.html and metrics.json into ``out_dir``; returns the report's path. note: a
    caveat on these samples (``metrics.sample_note``), shown under the numbers."""
    out_dir = Path(out_dir)
    real = scorer.calibration_summary()
    write_json(
        out_dir / "metrics.json",
        {
            "samples": source,
            "judge_id": scorer.judge_id,
            "scores": scores.as_dict(),
            "real": real,
            "note": note,
        },
    )
    rep = Report(
        "How good and how new are these digits?",
        f"{scores.n:,} samples from {source or 'an array'}, scored by the judge "
        f"{scorer.judge_id} against {scorer.data.source}.",
    )
    rep.section("The samples")
    rep.image_grid(samples[:SHOWN], ncols=10, caption=f"The first {min(SHOWN, len(samples))}.")
    rep.section("Each beside its nearest training digit")
    per = scores.per_image
    order = np.argsort(per["novelty"])[: SHOWN // 2]  # the least new first: copies show here
    rep.figure(
        figures.pairs_with_neighbours(
            samples[order],
            scorer.data.x_train[per["nn_index"][order]],
            values=per["novelty"][order],
            value_format="N {:.2f}",
        ),
        caption="The least novel samples (novelty N) beside the training digit nearest to each: "
        "a pair that looks the same is a copy.",
    )
    rep.section("Quality against novelty")
    rep.figure(
        _quality_novelty(scores, real),
        caption="Real digits set the bar: fresh test digits are as good and as new as digits get. "
        "(A static figure: plotly's 4.8 MB would buy nothing for a handful of points.)",
    )
    rep.section("The numbers")
    rows: list[dict[str, Any]] = [{"images": "these samples"} | _shown(scores.as_dict())]
    rows += [{"images": f"real: {name}"} | _shown(row) for name, row in real.items()]
    rep.table(rows, float_format="{:.3f}")
    rep.text(
        "Quality: how sure the judge is of one class (1 sure, 0 not a digit). Novelty: 0 a copy of "
        "a training digit, 0.5 as new as a fresh digit from another writer, 1 beyond. FID, "
        "precision, recall, density and coverage compare the samples with the real test digits "
        "(without the few real digits' neighbourhoods that reach the point where the judge puts "
        "what is not a digit)."
    )
    if note is not None:
        rep.text(note)
    return rep.write(out_dir)


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "quality", "novelty", "fid", "precision", "recall", "near_copy_rate")
    return {k: row.get(k) for k in keys}


def _quality_novelty(scores: Scores, real: dict[str, dict[str, float]]) -> figures.Figure:
    fig = figures.Figure(figsize=(5.5, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for name, row in real.items():
        ax.scatter(row["novelty"], row["quality"], marker="*", s=160, color="0.55")
        ax.annotate(f"real: {name}", (row["novelty"], row["quality"]), textcoords="offset points",
                    xytext=(6, -10), fontsize=8, color="0.35")  # fmt: skip
    ax.scatter(scores.novelty, scores.quality, s=80, color=figures.PALETTE[3], zorder=3)
    ax.annotate("these samples", (scores.novelty, scores.quality), textcoords="offset points",
                xytext=(6, 4), fontsize=9, color=figures.PALETTE[3])  # fmt: skip
    ax.set_xlim(-0.02, 1.02)
    lowest = min([scores.quality, *(row["quality"] for row in real.values())])
    ax.set_ylim(max(0.0, lowest - 0.15), 1.01)
    ax.set_xlabel("novelty (0 copy, 0.5 like a fresh digit)")
    ax.set_ylabel("quality")
    ax.grid(alpha=0.3)
    return fig
