"""The report of ``mnistlab judge check``: example images of every set first, then the numbers."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import judge_check
from mnistlab.judge_check import JudgeCheck
from mnistlab.report import figures
from mnistlab.report.html import Report
from mnistlab.report.writers import write_csv, write_json


def write(result: JudgeCheck, judge_meta: dict[str, Any], out_dir: Path) -> Path:
    """Write report.html, metrics.json, check.csv and strength_sweep.csv into ``out_dir``; returns
    the report."""
    out_dir = Path(out_dir)
    rows = [r.__dict__ for r in result.rows]
    write_json(out_dir / "metrics.json", {"judge": _judge_info(judge_meta)} | result.as_dict())
    write_csv(out_dir / "check.csv", rows)
    # Always written, the header alone when the sweep was not run: a folder written into again
    # keeps no sweep of an earlier run beside this run's numbers.
    columns = [f.name for f in dataclasses.fields(judge_check.StrengthRow)]
    write_csv(out_dir / "strength_sweep.csv", [r.__dict__ for r in result.strength_sweep], columns)
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
        "training set and should stay new. Non-digits should get low quality; **letters** and "
        "typeset **symbols** are kinds the judge never saw in training. **Precision** (no "
        "target) is the share of a set's images that lie among the real test digits' features, "
        "as `mnistlab evaluate` counts it (inside the k-NN ball of one or more of them): about "
        "0.92 for training digits; low for "
        "what the features set apart from digits; n/a for sets made of test digits, which the "
        "reference holds (four kinds of non-digit are made from test digits too: made from "
        "training digits instead, they score within 0.02). Density is in check.csv and "
        "metrics.json."
    )
    if any(r.group == "copy, held out" for r in result.rows):
        rep.text(
            "**Held out** (`--held-out`): copies and fresh digits under changes that keep a digit "
            "the same digit, which the targets do not list and the judge was not tuned on (but "
            "for three: drawn smaller and squeezed, which one setting of tangent distance was "
            "made for, and pepper, which another was). They tell whether the judge recognises "
            "copies beyond the changes it was tuned to; the copies are held to the same "
            "targets. Their fresh digits are not among the images above."
        )
    shown = [
        {
            "set": r.name,
            "group": r.group,
            "quality": r.quality,
            "novelty": r.novelty,
            "near-copy rate": r.near_copy_rate,
            "precision": r.precision,
            "target": r.target,
            "met": "" if r.passed is None else ("yes" if r.passed else "NO"),
        }
        for r in result.rows
    ]
    rep.table(shown, float_format="{:.3f}")
    if result.strength_sweep:
        _strength_section(rep, result)
    rep.section("The judge")
    info = _judge_info(judge_meta)
    rep.table([{"key": k, "value": v} for k, v in info.items()])
    return rep.write(out_dir)


def _strength_section(rep: Report, result: JudgeCheck) -> None:
    """How strong a change the judge still sees through: each change's strengths shown on one
    training digit, then the near-copy rate of copies and of fresh digits at each strength."""
    rep.section("How strong a change it sees through")
    swept = result.swept()
    k = max(len(groups["copy"]) for groups in swept.values())
    blank = np.zeros((28, 28), dtype=np.float32)
    grid, labels, panels = [], [], {}
    for change, groups in swept.items():
        copies, unit = groups["copy"], groups["copy"][0].unit
        shown = list(result.strength_examples.get(change, []))[: len(copies)]
        grid += shown + [blank] * (k - len(shown))
        labels.append(f"{change}: {', '.join(f'{r.strength:g}' for r in copies)} {unit}")
        held = result.seen_up_to(change)
        seen = "not at the mildest" if held is None else f"seen up to {held:g}"
        panels[f"{change} ({seen})"] = (
            unit,
            {
                name: ([r.strength for r in groups[g]], [r.near_copy_rate for r in groups[g]])
                for g, name in (
                    ("copy", "copies of training digits"),
                    ("fresh", "fresh test digits"),
                )
            },
        )
    if result.strength_examples:
        rep.image_grid(
            np.stack(grid),
            ncols=k,
            row_labels=labels,
            caption="One training digit under each change, the same draw at every strength, "
            "from the mildest to the strongest.",
        )
    rep.figure(
        figures.panel_curves(
            panels,
            ylabel="near-copy rate",
            hline=(judge_check.COPY_RATE_MIN, "target for copies"),
            ylim=(-0.03, 1.03),
        ),
        caption=(
            "Near-copy rate against the strength of each change, "
            f"{judge_check.sweep_counts(result)}: copies of training digits should stay "
            "above the target, the same change of a fresh test digit near 0. Where the copies' "
            "curve falls, the changed digit has come as close to other writers' digits as to "
            "its source."
        ),
    )
    rep.table(
        [
            {
                "change": r.change,
                "strength": f"{r.strength:g} {r.unit}",
                "digits": r.group,
                "n": r.n,
                "quality": r.quality,
                "novelty": r.novelty,
                "near-copy rate": r.near_copy_rate,
            }
            for r in result.strength_sweep
        ],
        float_format="{:.3f}",
    )


def _judge_info(meta: dict[str, Any]) -> dict[str, Any]:
    test = meta.get("test", {})
    return {
        "judge_id": meta.get("judge_id"),
        "version": meta.get("judge_version"),
        "model": meta.get("model"),
        "test accuracy": test.get("accuracy"),
        "command": meta.get("command", ""),
    }
