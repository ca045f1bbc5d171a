"""The command line as a new user meets it: --version, clean help, quiet runs, quick mode said."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np

from mnistlab import progress
from mnistlab.cli import main
from mnistlab.report.html import QUICK_BANNER, Report


def test_every_command_starts_without_the_libraries_only_some_need(small):
    # scikit-learn (with scipy.stats) and torchmetrics take ~3.5 s to import on 2 cores, which
    # every command paid at start (`evaluate` of 10,000 samples 10-12 s -> 7-8 s with judge v1);
    # only fitting a generator and the reconstruction metrics need them. Mounting the commands
    # (all that --help and --version do) imports no torch either (~2 s).
    heavy = "('sklearn', 'scipy.stats', 'torchmetrics', 'torch')"
    for imports, expected in (("cli; cli._mount()", "[]"), ("metrics, store", "['torch']")):
        code = (
            f"import sys; from mnistlab import {imports}; "
            f"print(sorted(m for m in {heavy} if m in sys.modules))"
        )
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == expected, imports
    # ... and the commands that need them still find them.
    from mnistlab import catalog, metrics

    x = np.random.default_rng(0).uniform(0, 1, (4, 28, 28)).astype(np.float32)
    assert metrics.psnr(x, x).min() == metrics.PSNR_CAP and metrics.ssim(x, x).min() > 0.999
    assert catalog.fitted("pixel-kde", small, 0.5).sample(3, random_state=0).shape[0] == 3


def test_version_and_help_without_bool_metavars(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("mnistlab ")
    for argv in (
        ["--help"],
        ["evaluate", "--help"],
        ["study", "generation", "--help"],
        ["train", "--help"],
    ):
        assert main(argv) == 0
        out = capsys.readouterr().out
        lines = [line for line in out.splitlines() if "--json" in line or "--quick" in line]
        lines += [line for line in out.splitlines() if "--retrain" in line or "--help" in line]
        assert lines, out
        assert all("<bool>" not in line for line in lines), lines


def test_study_quick_runs_the_generation_study_quickly(monkeypatch):
    from mnistlab.commands import study_cmd

    calls = []
    monkeypatch.setattr(study_cmd, "run_command", lambda name, **kw: calls.append((name, kw)))
    assert main(["study", "--quick", "--seed", "3"]) == 0
    assert calls == [("generation", {"data": None, "out": None, "quick": True, "seed": 3})]


def test_a_quick_report_says_so_before_anything_else(tmp_path):
    rep = Report("A study", "subtitle", banner=QUICK_BANNER)
    rep.section("Results")
    html = rep.to_html()
    assert "class='banner'" in html and html.index("Quick mode") < html.index("Results")
    assert "Quick mode" not in Report("A study").to_html()


def test_without_a_terminal_each_stage_is_one_line_and_no_bar(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert progress.mode() == "lines"
    outer = progress.bar(total=3, desc="generators")
    for _ in range(3):
        for _ in progress.bar(range(50), desc="sample features", inner=True):
            pass
        outer.update(1)
    outer.close()
    assert err.getvalue() == "generators ...\n"
    err.truncate(0)
    progress.bar(total=3, desc="silent", enabled=False).close()
    assert err.getvalue() == ""


def test_evaluate_quiet_writes_nothing_to_stderr(capsys, tmp_path, mnist):
    np.save(tmp_path / "s.npy", mnist.x_test[:20])
    assert main(["evaluate", str(tmp_path / "s.npy"), "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("{")


def test_no_help_text_is_eaten_as_markup():
    # Typer renders help with Rich, which drops a "[default: ...]" it takes for a style tag:
    # `sweep --workers` once read "LocalCluster workers ." in --help.
    import typer
    from rich.markup import render

    from mnistlab.cli import _mount, app

    _mount()

    def walk(command):
        yield command
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    texts = []
    for command in walk(typer.main.get_command(app)):
        texts += [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    assert len(texts) > 60
    eaten = [t for t in texts if render(t).plain != t]
    assert not eaten, eaten


def test_a_commands_row_in_its_groups_help_is_one_paragraph(capsys, monkeypatch):
    # `mnistlab judge --help` once listed "check" over three rows, broken where its docstring's
    # line ended: "... keep them the same digit," / "fresh digits under ...".
    monkeypatch.setenv("COLUMNS", "400")
    for argv, row in (
        (["judge", "--help"], "the same digit, fresh digits under the same changes"),
        (["--help"], "mean, standard deviation and 95% interval"),
    ):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert any(row in line for line in out.splitlines()), out
