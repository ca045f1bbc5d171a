"""``mnistlab sweep``: one study over several seeds (and data sets), as Dask tasks, with spreads.

Each (data set, seed) is an independent task: ``scaffold.execute`` of the study into
``OUT/runs/<data>/seed-<n>/``, written atomically, so a task that dies leaves nothing and Dask's
retry starts it again, and a rerun of the same sweep into the same ``--out`` reuses every run
that finished (its metrics.json holds the same config). The tasks run on a ``LocalCluster``
sized to the machine, or on any Dask scheduler (``--scheduler tcp://HOST:8786``, e.g. one
started by dask-jobqueue on SLURM or by dask-kubernetes). Two workers never train the same cached
model at once: ``store`` locks each cache entry. Then ``aggregate`` reads the runs' metrics.json
and gives every number its mean, standard deviation and 95% interval, and every verdict the
count of runs that found the same; ``report`` lays them out.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistlab import spread
from mnistlab.errors import MnistlabError

SCHEMA = "mnistlab.sweep/1"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
MAX_SEEDS = 1000


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0-4' -> (0, 1, 2, 3, 4); '0,2,7-8' -> (0, 2, 7, 8); in order, without repeats."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"expected seeds like 0-4 or 0,2,5, got {text!r}")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"the range {part!r} runs backwards")
        if b - a >= MAX_SEEDS or len(seeds) + b - a >= MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS} seeds, got {text!r}")
        seeds.extend(s for s in range(a, b + 1) if s not in seeds)
    return tuple(seeds)


@dataclass(frozen=True)
class Task:
    """One run of a sweep: the study with one seed on one data set."""

    study: str
    seed: int
    data: str | None  # None: the bundled MNIST
    label: str  # the data set's name in the output folder and the tables
    quick: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()
    threads: int = 1  # torch's, BLAS's and OpenMP's threads in the worker
    device: str = "cpu"

    @property
    def folder(self) -> str:
        return f"runs/{self.label}/seed-{self.seed}"


def data_label(data: str | os.PathLike[str] | None, taken: Iterable[str] = ()) -> str:
    """A folder-safe name for a data set: 'mnist' for the bundled one, else the folder's name."""
    base = "mnist" if data is None else Path(data).resolve().name or "data"
    base = "".join(c if c.isalnum() or c in "-_." else "_" for c in base)
    label, i = base, 2
    while label in set(taken):
        label, i = f"{base}-{i}", i + 1
    return label


def _expected_config(task: Task) -> dict[str, Any]:
    import dataclasses

    from mnistlab.studies import config_for

    _, config = config_for(task.study, quick=task.quick, seed=task.seed, **dict(task.overrides))
    return json.loads(json.dumps(dataclasses.asdict(config), default=list))


def finished(task: Task, root: Path) -> bool:
    """Whether ``root`` already holds this task's run with the same config, its metrics computed
    the way today's code computes them (reused, not redone): a run scored before a change to
    the metrics (``metrics.CALIBRATION_FORMAT``) is not averaged with runs scored after it."""
    from mnistlab.metrics import CALIBRATION_FORMAT

    path = root / task.folder / "metrics.json"
    try:
        with path.open() as f:
            done = json.load(f)
    except (OSError, ValueError):
        return False
    same_metrics = done.get("metrics_format") == CALIBRATION_FORMAT
    return same_metrics and done.get("config") == _expected_config(task)


# glibc's malloc returns large freed blocks to the system at once and raises its mmap threshold as
# a program frees large blocks, so that big temporaries are soon reused from the heap; a process
# started with MALLOC_TRIM_THRESHOLD_ set (Dask's nanny sets 65536, distributed's
# nanny.pre-spawn-environ) never raises it: every array above 128 KB is mapped afresh, its pages
# faulted and zeroed on first touch. One generation setting's scoring measured 13 s with the
# variable against 7 s without (this project's 2-core AMD EPYC), which made the sweep's study
# runs about 1.8x slower than the same study run directly. mallopt (man 3 mallopt) sets what the
# dynamic rule would reach: a 32 MB mmap threshold (glibc's maximum on 64-bit) and twice that
# for trimming.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20


def keep_freed_memory() -> bool:
    """Undo MALLOC_TRIM_THRESHOLD_ in this process (see above); whether it was undone. A no-op
    where the variable is not set, off Linux, or where the C library has no ``mallopt``."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim = mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD)
    return mmap == trim == 1  # mallopt returns 1 on success


def run_task(task: Task, root: str) -> str:
    """Run one task into ``root`` (a Dask task: plain arguments, a path back); its metrics.json."""
    import torch
    from threadpoolctl import threadpool_limits

    from mnistlab import models
    from mnistlab.studies import config_for
    from mnistlab.studies.scaffold import execute

    out = Path(root) / task.folder
    if finished(task, Path(root)):
        return str(out / "metrics.json")
    threads = max(1, task.threads)
    # Dask's nanny starts each worker with OMP/MKL/OPENBLAS_NUM_THREADS=1 (distributed's
    # nanny.pre-spawn-environ), which left NumPy and SciPy (the KDEs' and k-NN's arithmetic,
    # FID's eigendecompositions) and scikit-learn's OpenMP loops on one core whatever the task's
    # share: the variables for libraries loaded from here on, threadpoolctl for those loaded.
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)
    keep_freed_memory()
    models.set_device(task.device)
    _, config = config_for(task.study, quick=task.quick, seed=task.seed, **dict(task.overrides))
    with threadpool_limits(limits=threads):
        execute(task.study, config, task.data, out, progress=False)
    return str(out / "metrics.json")


def plan(
    study: str,
    seeds: Sequence[int],
    data: Sequence[str | os.PathLike[str] | None] = (None,),
    *,
    quick: bool = False,
    workers: int = 1,
    device: str = "cpu",
    **overrides: Any,
) -> list[Task]:
    """The sweep's tasks, data set by data set, seed by seed; each with its share of the cores."""
    from mnistlab.studies import config_for

    if not seeds:
        raise MnistlabError("a sweep needs at least one seed")
    config_for(study, quick=quick, **overrides)  # an unknown study or setting fails here
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    labels: list[str] = []
    for d in data:
        labels.append(data_label(d, labels))
    given = tuple(sorted((k, v) for k, v in overrides.items() if v is not None))
    return [
        Task(study, int(s), None if d is None else str(d), lab, quick, given, threads, device)
        for d, lab in zip(data, labels, strict=True)
        for s in seeds
    ]


# ---- running the tasks ------------------------------------------------------------------------


def default_workers(n_tasks: int) -> int:
    """One worker per core, no more than there are tasks."""
    return max(1, min(n_tasks, os.cpu_count() or 1))


def _client(scheduler: str | None, workers: int):
    """A Dask client: on ``scheduler``, else on a new LocalCluster of ``workers`` processes bound
    to 127.0.0.1, one thread each (torch uses the cores), without the web dashboard."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except OSError as e:
            raise MnistlabError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster


def run_tasks(
    tasks: Sequence[Task],
    root: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    on_done: Callable[[Task, float], None] | None = None,
) -> list[Path]:
    """Run ``tasks`` on Dask (finished ones are skipped); their metrics.json paths, in order.

    A task that raises is retried ``retries`` times (a worker that dies too); then the sweep
    fails naming it. The runs that finished stay, and the next run of the sweep reuses them.
    """
    from dask.distributed import as_completed

    todo = [t for t in tasks if not finished(t, root)]
    if todo:
        client, cluster = _client(scheduler, workers or default_workers(len(todo)))
        try:
            t0 = time.perf_counter()
            futures = {
                client.submit(
                    run_task,
                    t,
                    str(root),
                    key=f"mnistlab-{t.study}-{t.label}-{t.seed}-{id(t)}",
                    retries=retries,
                    pure=False,
                ): t
                for t in todo
            }
            for future in as_completed(futures):
                task = futures[future]
                if future.status == "error":
                    raise MnistlabError(
                        f"{task.study} seed {task.seed} on {task.label} failed after {retries} "
                        f"retries: {future.exception()}"
                    )
                if on_done:
                    on_done(task, time.perf_counter() - t0)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return [root / t.folder / "metrics.json" for t in tasks]


# ---- aggregating the runs ---------------------------------------------------------------------


def numeric_leaves(obj: Any, path: str = "") -> Iterable[tuple[str, float]]:
    """(path, value) for every number under obj: dict keys joined by '/', list items by index.
    A run's own bootstrap intervals (``ci`` keys) are left out: the sweep gives its own spread."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "ci":
                continue
            yield from numeric_leaves(v, f"{path}/{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from numeric_leaves(v, f"{path}/{i}")
    elif isinstance(obj, bool):
        return
    elif isinstance(obj, int | float) and obj is not None:
        yield path, float(obj)


@dataclass
class Sweep:
    """The aggregate of a sweep's runs of one study on one data set."""

    study: str
    label: str
    seeds: list[int]
    runs: list[dict[str, Any]] = field(repr=False)  # each run's metrics.json
    numbers: dict[str, dict[str, float]] = field(default_factory=dict)  # path -> summarise()
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    headline: list[dict[str, Any]] = field(default_factory=list)  # rows with per-run values


def aggregate(study: str, label: str, runs: Sequence[dict[str, Any]]) -> Sweep:
    """Mean, sd and 95% interval of every number of ``runs`` (metrics.json of one study), and for
    every question how many runs found the same answer."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for path, v in numeric_leaves(run.get("results", {})):
            values.setdefault(path, []).append(v)
        values.setdefault("seconds", []).append(float(run.get("seconds", math.nan)))
    numbers = {p: spread.summarise(v) for p, v in values.items() if len(v) == len(runs)}
    sweep = Sweep(study, label, [int(r["config"]["seed"]) for r in runs], list(runs), numbers)
    sweep.verdicts = verdict_agreement(runs)
    sweep.headline = headline(study, runs)
    return sweep


def verdict_agreement(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each question (in the first run's order): the findings and how many runs gave each."""
    questions: dict[str, Counter] = {}
    for run in runs:
        for v in run.get("verdicts", []):
            questions.setdefault(v["question"], Counter())[v["finding"]] += 1
    rows = []
    for q, counts in questions.items():
        top, n_top = counts.most_common(1)[0]
        rows.append(
            {
                "question": q,
                "finding": top,
                "runs_agreeing": n_top,
                "runs": len(runs),
                "findings": dict(counts),
                "holds": n_top == len(runs),
            }
        )
    return rows


def headline(study: str, runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The study's headline rows across runs: {label columns..., column: [value per run]}.

    A study module may define ``headline(results) -> list[dict]`` (rows of one run, the first
    key naming the row); otherwise the top-level numbers of ``results`` form one row.
    """
    from mnistlab.studies import module_of

    module = module_of(study)
    one = getattr(module, "headline", None) or _top_numbers
    merged: dict[str, dict[str, Any]] = {}
    for run in runs:
        for row in one(run.get("results", {})):
            name_key = next(iter(row))
            entry = merged.setdefault(str(row[name_key]), {name_key: row[name_key]})
            for k, v in row.items():
                if k != name_key and isinstance(v, int | float) and not isinstance(v, bool):
                    entry.setdefault(k, []).append(float(v))
    return list(merged.values())


def _top_numbers(results: dict[str, Any]) -> list[dict[str, Any]]:
    row: dict[str, Any] = {"run": "all"}
    row.update({k: v for k, v in results.items() if isinstance(v, int | float)})
    return [row]


def headline_table(sweep: Sweep) -> list[dict[str, Any]]:
    """The headline rows as 'mean ± sd' cells (with the 95% interval beside each mean)."""
    table = []
    for row in sweep.headline:
        out: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, list):
                s = spread.summarise(v)
                out[k] = _pm(s)
            else:
                out[k] = v
        table.append(out)
    return table


def _pm(s: dict[str, float]) -> str:
    if s["n"] == 0:
        return "n/a"
    digits = 3 if abs(s["mean"]) < 10 else 1
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


# ---- the whole sweep ---------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    sweeps: list[Sweep]
    report: Path
    seconds: float


def run_sweep(
    study: str,
    seeds: Sequence[int],
    data: Sequence[str | os.PathLike[str] | None] = (None,),
    out: str | os.PathLike[str] | None = None,
    *,
    quick: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    **overrides: Any,
) -> SweepOutcome:
    """Run ``study`` once per seed and data set on Dask and write the sweep's report into
    ``out`` (default ``runs/<time>-sweep-<study>``): runs/ with every run, then report.html,
    metrics.json and spread.csv beside it."""
    from mnistlab.fileio import OutputFolder
    from mnistlab.progress import log

    t0 = time.perf_counter()
    n_workers = workers or default_workers(len(seeds) * len(data))
    tasks = plan(study, seeds, data, quick=quick, workers=n_workers, device=device, **overrides)
    folder = OutputFolder(out, f"sweep-{study}")
    with folder as tmp:
        root = folder.path

        def done(task: Task, seconds: float) -> None:
            if progress:
                log(f"[sweep] {task.label} seed {task.seed} done ({seconds:.0f} s)")

        try:
            paths = run_tasks(tasks, root, scheduler=scheduler, workers=n_workers, on_done=done)
        except MnistlabError as e:
            kept = sum(finished(t, root) for t in tasks)
            if kept:
                raise MnistlabError(
                    f"{e} ({kept} finished runs are kept in {root}: the same command with "
                    f"--out {root} reuses them)"
                ) from None
            raise
        runs = [json.loads(p.read_text()) for p in paths]
        sweeps = [
            aggregate(
                study, label, [r for r, t in zip(runs, tasks, strict=True) if t.label == label]
            )
            for label in dict.fromkeys(t.label for t in tasks)
        ]
        seconds = time.perf_counter() - t0
        page = write_outputs(sweeps, Path(tmp), seconds=seconds, quick=quick)
    return SweepOutcome(sweeps, folder.final(page), seconds)


def to_json(sweeps: Sequence[Sweep], seconds: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "study": sweeps[0].study,
        "seconds": seconds,
        "level": spread.LEVEL,
        "data": [
            {
                "label": s.label,
                "seeds": s.seeds,
                "numbers": s.numbers,
                "verdicts": s.verdicts,
                "headline": s.headline,
            }
            for s in sweeps
        ],
    }


def spread_rows(sweeps: Sequence[Sweep]) -> list[dict[str, Any]]:
    return [{"data": s.label, "number": p, **v} for s in sweeps for p, v in s.numbers.items()]


def write_outputs(sweeps: Sequence[Sweep], out: Path, *, seconds: float, quick: bool) -> Path:
    """metrics.json, spread.csv and report.html of the sweep into ``out``."""
    from mnistlab.report import write_csv, write_json
    from mnistlab.report.sweep_report import report

    write_json(out / "metrics.json", to_json(sweeps, seconds))
    write_csv(out / "spread.csv", spread_rows(sweeps))
    return report(sweeps, seconds=seconds, quick=quick).write(out, save_figures=True)
