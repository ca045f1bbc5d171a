"""What every study shares: its context, its verdicts' type, the metrics.json envelope, the run.

A study is a module with five names (see ``docs/ARCHITECTURE.md``):

- a frozen config dataclass with a ``quick`` field and ``for_quick(**overrides)``;
- ``run(config, context) -> Result``: numbers only (a dataclass with ``config``, ``data_source``,
  ``data_checksum``, ``judge`` and ``seconds`` beside its own fields), no prose, no files;
- ``verdicts(result) -> list[Verdict]``: pure, tested on made-up results;
- ``numbers(result) -> dict`` (the study's part of metrics.json) and ``tables(result) -> dict``
  (CSV name -> rows);
- ``report(result, verdicts) -> Report``: the page's layout.

``execute`` does the rest for all of them, in one order: claim the output folder, run, judge,
write metrics.json (one schema, ``SCHEMA``), the CSV tables and the page, all atomically.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

SCHEMA = "mnistlab.study/2"


@dataclass(frozen=True)
class Verdict:
    """One answer of a study: the question, its finding, the sentence with its numbers.

    ``finding`` is the categorical answer without numbers ("yes", "no", "AE latent + KDE"): runs
    over several seeds agree when their findings are equal. ``answer`` is what the report prints.
    """

    question: str
    finding: str
    answer: str


@dataclass
class Context:
    """What a study's ``run`` gets besides its config: the data, the judge, a logger.

    The data set and the judge are loaded on first use and kept, so a study that needs neither
    (or only the data) pays for nothing else.
    """

    study: str
    data_dir: str | Path | None = None
    progress: bool = True
    log: Callable[[str], None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.log = logger(self.study, self.progress)

    @cached_property
    def data(self) -> Any:
        from mnistlab import data as mdata

        return mdata.load(self.data_dir)

    @cached_property
    def judge_and_meta(self) -> tuple[Any, dict[str, Any]]:
        from mnistlab import store

        self.log("judge: loading")
        return store.load_judge(self.data, progress=self.progress)

    @property
    def judge(self) -> Any:
        return self.judge_and_meta[0]

    @property
    def judge_meta(self) -> dict[str, Any]:
        return self.judge_and_meta[1]


def logger(study: str, progress: bool) -> Callable[[str], None]:
    """A function that logs ``[study] message`` lines when ``progress`` is on, else nothing."""
    from mnistlab.progress import log as progress_log

    def log(message: str) -> None:
        if progress:
            progress_log(f"[{study}] {message}")

    return log


MODEL_KEYS = ("model", "config", "train_config", "test", "seed", "path", "train_seconds", "cached")


def model_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """The parts of a cached model's metadata that a report shows."""
    return {k: meta[k] for k in MODEL_KEYS if k in meta}


def model_history(meta: dict[str, Any]) -> list[dict[str, float]]:
    """The per-epoch training curve stored in a model's metadata (empty when there is none)."""
    for key in ("history", "train_history"):
        if isinstance(meta.get(key), list):
            return meta[key]
    train = meta.get("train") or meta.get("training") or {}
    return list(train.get("history", [])) if isinstance(train, dict) else []


def quick_config(cls: type, preset: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """``cls`` with the quick ``preset`` under the given overrides (None values ignored)."""
    base: dict[str, Any] = {"quick": True, **preset}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**base)


def envelope(study: str, result: Any, verdicts: list[Verdict], body: dict[str, Any]) -> dict:
    """metrics.json: the same head for every study, the study's own numbers under ``results``."""
    from mnistlab import __version__

    return {
        "schema": SCHEMA,
        "study": study,
        "mnistlab": __version__,
        "config": dataclasses.asdict(result.config),
        "data": {"source": result.data_source, "checksum": result.data_checksum},
        "judge": result.judge,
        "seconds": result.seconds,
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        "results": body,
    }


def answers(metrics: dict[str, Any]) -> dict[str, str]:
    """question -> answer of a metrics.json (this schema), for readers that want a lookup."""
    return {v["question"]: v["answer"] for v in metrics.get("verdicts", [])}


def page(
    title: str, what: str, result: Any, verdicts: list[Verdict], *, answers: bool = True
) -> Any:
    """A study's report page, begun: its title, the quick-mode banner, a subtitle that says what
    ran (``what``), the seed, the judge, the version and the time, then the answers (unless
    ``answers`` is False: a page that shows its headline first places them itself)."""
    from mnistlab import __version__
    from mnistlab.report import Report
    from mnistlab.report.html import QUICK_BANNER

    cfg = result.config
    rep = Report(
        title,
        banner=QUICK_BANNER if cfg.quick else "",
        subtitle=(
            f"{what}, seed {cfg.seed}{', quick mode' if cfg.quick else ''}. Judge: "
            f"{result.judge.get('judge_id', '?')}. mnistlab {__version__}, "
            f"{result.seconds:.0f} s."
        ),
    )
    if not answers:
        return rep
    rep.section("Answers")
    for v in verdicts:
        question = v.question if v.question[-1] in "?.:" else v.question + "."
        rep.text(f"**{question}** {v.answer}")
    return rep


@dataclass
class Outcome:
    """What ``execute`` returns: the result, its verdicts and where the report landed."""

    result: Any
    verdicts: list[Verdict]
    report: Path

    @property
    def folder(self) -> Path:
        return self.report.parent


def write_outputs(module: Any, study: str, result: Any, out_dir: Path) -> tuple[list, Path]:
    """Judge ``result`` and write metrics.json, the CSV tables and report.html into ``out_dir``."""
    from mnistlab.report import write_csv, write_json

    verdicts = module.verdicts(result)
    write_json(out_dir / "metrics.json", envelope(study, result, verdicts, module.numbers(result)))
    for name, rows in module.tables(result).items():
        write_csv(out_dir / f"{name}.csv", rows)
    page = module.report(result, verdicts)
    return verdicts, page.write(out_dir, save_figures=True)


def execute(
    study: str,
    config: Any,
    data_dir: str | Path | None = None,
    out: str | Path | None = None,
    *,
    progress: bool = True,
) -> Outcome:
    """Run ``study`` with ``config`` and write its outputs into ``out`` (default
    ``runs/<time>-<study>``), claimed before the work and filled atomically: a failed run leaves
    it as it was."""
    from mnistlab.fileio import OutputFolder
    from mnistlab.studies import module_of

    module = module_of(study)
    folder = OutputFolder(out, study)
    with folder as tmp:
        t0 = time.perf_counter()
        result = module.run(config, Context(study, data_dir, progress))
        if not getattr(result, "seconds", 0):
            result.seconds = time.perf_counter() - t0
        verdicts, page = write_outputs(module, study, result, Path(tmp))
    return Outcome(result, verdicts, folder.final(page))
