"""The study scaffold's page and quick presets, on a made-up study."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from mnistlab.studies import scaffold
from mnistlab.studies.scaffold import Verdict


@dataclass(frozen=True)
class ToyConfig(scaffold.Quick):
    size: int = 100
    seed: int = 0
    quick: bool = False
    QUICK: ClassVar[dict[str, Any]] = {"size": 10}


def _result(**config: Any) -> SimpleNamespace:
    return SimpleNamespace(
        config=ToyConfig(**config), judge={"judge_id": "made-up"}, seconds=1.0, rows=[1, 2]
    )


VERDICTS = [Verdict("Is it small?", "yes", "Yes, 10 items.")]


def _toy_page(answers_after_first: bool) -> scaffold.Page:
    page = scaffold.Page("mnistlab: a toy study")

    @page.subtitle
    def _what(result: Any) -> str:
        return f"Toy study of {result.config.size} items"

    @page.section("First")
    def _first(rep: Any, result: Any) -> None:
        rep.text("first body")

    if answers_after_first:

        @page.answers("What we found")
        def _answers(rep: Any, verdicts: list[Verdict]) -> None:
            rep.text(" / ".join(v.answer for v in verdicts))

    @page.section("Second", level=3)
    def _second(rep: Any, result: Any) -> None:
        rep.text("second body")

    @page.csv("rows")
    def _rows(result: Any) -> list[dict[str, Any]]:
        return [{"i": i} for i in result.rows]

    return page


def _headings(html: str) -> list[str]:
    return re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html)


@pytest.mark.parametrize("placed", [False, True])
def test_a_page_renders_its_sections_in_declaration_order(placed):
    page = _toy_page(answers_after_first=placed)
    html = page.render(_result(), VERDICTS).to_html()
    expected = ["First", "What we found", "Second"] if placed else ["Answers", "First", "Second"]
    assert [h for h in _headings(html) if h in {"Answers", "What we found", "First", "Second"}] == (
        expected
    )
    assert "Toy study of 100 items" in html and "Yes, 10 items." in html
    assert html.index("first body") < html.index("second body")
    assert page.tables(_result()) == {"rows": [{"i": 1}, {"i": 2}]}


def test_quick_presets_sit_under_the_overrides():
    assert ToyConfig.for_quick() == ToyConfig(size=10, quick=True)
    assert ToyConfig.for_quick(size=3, seed=None) == ToyConfig(size=3, quick=True)
    assert ToyConfig.for_quick(seed=4).seed == 4


def test_models_table_lists_each_models_test_figures():
    rows = []
    rep = SimpleNamespace(table=lambda r, caption, float_format: rows.extend(r))
    scaffold.models_table(
        rep,
        {"ae": {"test": {"mse": 0.01}}, "judge": {}},
        "caption",
        extra={"ae": {"train s": 3.0}},
    )
    assert rows == [{"model": "ae", "test mse": 0.01, "train s": 3.0}, {"model": "judge"}]
    assert list(rows[0]) == ["model", "test mse", "train s"]


def test_a_study_can_be_seen_through_the_earlier_judge(capsys):
    from mnistlab import store
    from mnistlab.cli import main
    from mnistlab.commands import options

    assert set(options.JUDGES) == set(store.JUDGES)
    context = scaffold.Context("denoising", judge_version="v1", progress=False)
    assert context.judge_meta["judge_version"] == "v1"
    assert context.judge_meta["judge_id"].startswith("classifier-mnist-")
    assert scaffold.Context("denoising", progress=False).judge_meta["judge_version"] == "v2"
    # An unknown judge is a usage error before any work.
    assert main(["study", "denoising", "--judge", "v9"]) == 2
    assert "expected one of v1, v2, got 'v9'" in capsys.readouterr().err


def test_evaluate_takes_a_uint8_array_and_a_float_tensor_alike(mnist):
    import numpy as np
    import torch

    import mnistlab

    digits = mnist.x_test[:60]  # uint8 (60, 28, 28); the bundled MNIST and its shipped judge
    as_uint8 = mnistlab.evaluate(digits)
    as_tensor = mnistlab.evaluate(torch.from_numpy(digits.astype(np.float32) / 255))
    assert as_uint8["n"] == as_tensor["n"] == 60
    for key in ("quality", "novelty", "fid", "precision", "recall", "near_copy_rate"):
        assert as_tensor[key] == pytest.approx(as_uint8[key], abs=1e-6), key
    # Real test digits: sure of their class and, against the training digits, new.
    assert as_uint8["quality"] > 0.8 and as_uint8["near_copy_rate"] < 0.2
