"""The report of ``mnistlab judge check``: example images of every set first, then the numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnistlab.judge_check import JudgeCheck
from mnistlab.report.html import Report
from mnistlab.report.writers import write_csv, write_json


def write(result: JudgeCheck, judge_meta: dict[str, Any], out_dir: Path) -> Path:
    """Write report.html, metrics.json and check.csv into ``out_dir``; returns the report."""
    out_dir = Path(out_dir)
    rows = [r.__dict__ for r in result.rows]
    write_json(out_dir / "metrics.json", {"judge": _judge_info(judge_meta)} | result.as_dict())
    write_csv(out_dir / "check.csv", rows)
    verdict = "meets every target" if result.passed else "misses at least one target"
    rep = Report(
        "What the judge can tell apart",
        f"{result.judge_id}: {verdict}. {result.n} images per set (non-digits: up to 1,000), "
        f"seed {result.seed}.",
    )
    rep.section("The sets, as the judge sees them")
    names = list(result.examples)
    k = min(len(v) for v in result.examples.values())
    grid = np.concatenate([result.examples[name][:k] for name in names])
    by_name = {r.name: r for r in result.rows}
    labels = [
        f"{name}  (Q {by_name[name].quality:.2f}, N {by_name[name].novelty:.2f})" for name in names
    ]
    rep.image_grid(
        grid,
        ncols=k,
        row_labels=labels,
        caption="Each row: the first images of one set, with its mean quality (Q) and novelty (N).",
    )
    rep.section("Against the targets")
    rep.text(
        "Copies are training digits under a change that keeps them the same digit: novelty "
        "should call them copies. Fresh digits under the same changes have no source in the "
        "training set and should stay new. Non-digits should get low quality; **letters** are a "
        "kind the judge never saw in training."
    )
    shown = [
        {
            "set": r.name,
            "group": r.group,
            "quality": r.quality,
            "novelty": r.novelty,
            "near-copy rate": r.near_copy_rate,
            "target": r.target,
            "met": "" if r.passed is None else ("yes" if r.passed else "NO"),
        }
        for r in result.rows
    ]
    rep.table(shown, float_format="{:.3f}")
    rep.section("The judge")
    info = _judge_info(judge_meta)
    rep.table([{"key": k, "value": v} for k, v in info.items()])
    return rep.write(out_dir)


def _judge_info(meta: dict[str, Any]) -> dict[str, Any]:
    test = meta.get("test", {})
    return {
        "judge_id": meta.get("judge_id"),
        "version": meta.get("judge_version"),
        "model": meta.get("model"),
        "test accuracy": test.get("accuracy"),
        "command": meta.get("command", ""),
    }
