"""What every study shares: its context, its verdicts' type, the metrics.json envelope, the run.

A study is a module with five names (see ``docs/ARCHITECTURE.md``):

- a frozen config dataclass with a ``quick`` field and ``for_quick(**overrides)``;
- ``run(config, context) -> Result``: numbers only (a dataclass with ``config``, ``data_source``,
  ``data_checksum``, ``judge`` and ``seconds`` beside its own fields), no prose, no files;
- ``verdicts(result) -> list[Verdict]``: pure, tested on made-up results;
- ``numbers(result) -> dict`` (the study's part of metrics.json) and ``tables(result) -> dict``
  (CSV name -> rows);
- ``report(result, verdicts) -> Report``: the page's layout, usually ``PAGE.render`` of a
  ``Page`` whose sections the module declares in reading order with ``@PAGE.section``.

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
from typing import Any, ClassVar

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
    judge_version: str = "v2"  # "v1": the judge of earlier results, for comparisons
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

        self.log(f"judge {self.judge_version}: loading")
        return store.load_judge(self.data, version=self.judge_version, progress=self.progress)

    @property
    def judge(self) -> Any:
        return self.judge_and_meta[0]

    @property
    def judge_meta(self) -> dict[str, Any]:
        return self.judge_and_meta[1]

    @cached_property
    def other_judge(self) -> tuple[Any, dict[str, Any]] | None:
        """(model, meta) of the other judge (v1 beside a v2 run, v2 beside v1), for the reports'
        side-by-side rows; None where it is not shipped (any data set but the bundled MNIST,
        where it would have to be trained first)."""
        from mnistlab import store

        other = "v1" if self.judge_version == "v2" else "v2"
        if not (self.data.is_mnist and store.judge_path(other).is_file()):
            self.log("the other judge is shipped for the bundled MNIST only: no side by side")
            return None
        self.log(f"judge {other}: loading, to score the headline rows again")
        return store.load_judge(self.data, version=other, progress=self.progress)

    @property
    def other_judge_id(self) -> dict[str, Any] | None:
        """{"judge_version", "judge_id"} of ``other_judge`` for a result, or None."""
        if self.other_judge is None:
            return None
        return {k: self.other_judge[1][k] for k in ("judge_version", "judge_id")}


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


class Quick:
    """What every study's config shares: ``for_quick(**overrides)``, the config of ``--quick``
    (``quick=True`` and the class's ``QUICK`` preset, under the overrides that are not None)."""

    QUICK: ClassVar[dict[str, Any]] = {}

    @classmethod
    def for_quick(cls, **overrides: Any) -> Any:
        base: dict[str, Any] = {"quick": True, **cls.QUICK}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def envelope(study: str, result: Any, verdicts: list[Verdict], body: dict[str, Any]) -> dict:
    """metrics.json: the same head for every study, the study's own numbers under ``results``.
    ``metrics_format`` names how the metrics were computed (``metrics.CALIBRATION_FORMAT``): a
    sweep reuses a finished run only when it matches."""
    from mnistlab import __version__
    from mnistlab.metrics import CALIBRATION_FORMAT

    return {
        "schema": SCHEMA,
        "study": study,
        "mnistlab": __version__,
        "metrics_format": CALIBRATION_FORMAT,
        "config": dataclasses.asdict(result.config),
        "data": {"source": result.data_source, "checksum": result.data_checksum},
        "judge": result.judge,
        "seconds": result.seconds,
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        "results": body,
    }


def findings(verdicts: list[Verdict]) -> dict[str, str]:
    """question -> finding of a study's verdicts: what runs over several seeds compare."""
    return {v.question: v.finding for v in verdicts}


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


class Page:
    """A study's report page and the CSV tables beside it, declared where their code is.

    ``Page(title)``; ``@PAGE.subtitle`` marks the function that says, from the result, what
    ran. Sections, in the order the module declares them, each opened with its heading::

        PAGE = scaffold.Page("mnistlab: denoising digits")
        report, tables = PAGE.render, PAGE.tables

        @PAGE.subtitle
        def _what(result: DenoisingResult) -> str: ...

        @PAGE.section("Every noise level")
        def _levels_section(rep: Report, result: DenoisingResult) -> None: ...

        @PAGE.csv("levels")
        def level_rows(result: DenoisingResult) -> list[dict[str, Any]]: ...

    The answers open the page unless the module places them with ``@PAGE.answers(heading)`` (a
    function of ``(rep, verdicts)``), as the generation study does after its headline.
    ``PAGE.render`` is the study's ``report`` and ``PAGE.tables`` its ``tables``.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.what: Callable[[Any], str] = lambda result: type(result).__name__
        self.steps: list[tuple[str, int, Callable[[Any, Any, list[Verdict]], None]]] = []
        self.table_rows: dict[str, Callable[[Any], list[dict[str, Any]]]] = {}
        self.places_answers = False

    def subtitle(self, fn: Callable[[Any], str]) -> Callable[[Any], str]:
        self.what = fn
        return fn

    def section(self, heading: str, level: int = 2) -> Callable:
        def add(fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
            self.steps.append((heading, level, lambda rep, result, verdicts: fn(rep, result)))
            return fn

        return add

    def answers(self, heading: str) -> Callable:
        def add(fn: Callable[[Any, list[Verdict]], None]) -> Callable:
            self.steps.append((heading, 2, lambda rep, result, verdicts: fn(rep, verdicts)))
            self.places_answers = True
            return fn

        return add

    def csv(self, stem: str) -> Callable:
        def add(fn: Callable[[Any], list[dict[str, Any]]]) -> Callable:
            self.table_rows[stem] = fn
            return fn

        return add

    def render(self, result: Any, verdicts: list[Verdict]) -> Any:
        """The page: its head (``page``), then every section under its heading."""
        rep = page(self.title, self.what(result), result, verdicts, answers=not self.places_answers)
        for heading, level, step in self.steps:
            rep.section(heading, level=level)
            step(rep, result, verdicts)
        return rep

    def tables(self, result: Any) -> dict[str, list[dict[str, Any]]]:
        """CSV file stem -> rows, in the order the module declares them."""
        return {stem: rows(result) for stem, rows in self.table_rows.items()}


def judges_table(rep: Any, rows: list[dict[str, Any]], caption: Callable[[], str]) -> None:
    """A report's "old judge beside the new" table (``rows`` from the study's ``judge_rows``), or
    the sentence that says why there is none (``caption`` is called only with rows to show)."""
    if not rows:
        rep.text("Not compared: the other judge is shipped for the bundled MNIST only.")
        return
    rep.table(rows, caption=caption())


def models_table(
    rep: Any,
    models: dict[Any, dict[str, Any]],
    caption: str,
    *,
    key: str = "model",
    extra: dict[Any, dict[str, Any]] | None = None,
    float_format: str = "{:.3f}",
) -> None:
    """A table of models (name -> metadata) with their ``test`` figures, plus ``extra`` columns
    per name (timings, a noise level)."""
    rows = [
        {
            key: name,
            **{f"test {k}": v for k, v in (meta.get("test") or {}).items()},
            **(extra or {}).get(name, {}),
        }
        for name, meta in models.items()
    ]
    rep.table(rows, caption=caption, float_format=float_format)


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
    judge: str = "v2",
) -> Outcome:
    """Run ``study`` with ``config`` and write its outputs into ``out`` (default
    ``runs/<time>-<study>``), claimed before the work and filled atomically: a failed run leaves
    it as it was. ``judge``: "v2", or "v1" to see a study through the earlier judge's eyes."""
    from mnistlab import store
    from mnistlab.fileio import OutputFolder
    from mnistlab.studies import module_of

    module = module_of(study)
    store.check_judge_version(judge)
    folder = OutputFolder(out, study)
    with folder as tmp:
        t0 = time.perf_counter()
        result = module.run(config, Context(study, data_dir, progress, judge))
        if not getattr(result, "seconds", 0):
            result.seconds = time.perf_counter() - t0
        verdicts, page = write_outputs(module, study, result, Path(tmp))
    return Outcome(result, verdicts, folder.final(page))
