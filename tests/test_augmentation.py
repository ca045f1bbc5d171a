"""The augmentation study: few-shot subsets, diversity measures, generators, end to end."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from mnistlab.errors import DataError
from mnistlab.studies import augmentation as aug


@pytest.mark.parametrize("n", [10, 100])
def test_few_shot_subset_has_exactly_n_images_of_the_digit(mnist, n):
    idx = aug.few_shot_indices(mnist.y_train, 3, n, seed=0)
    assert len(idx) == n and len(np.unique(idx)) == n
    assert (mnist.y_train[idx] == 3).all()
    np.testing.assert_array_equal(idx, aug.few_shot_indices(mnist.y_train, 3, n, seed=0))
    assert not np.array_equal(idx, aug.few_shot_indices(mnist.y_train, 3, n, seed=1))


def test_few_shot_subset_all_and_too_many(small):
    every = aug.few_shot_indices(small.y_train, 8, None, seed=0)
    assert len(every) == int((small.y_train == 8).sum())
    with pytest.raises(DataError, match="digit 8"):
        aug.few_shot_indices(small.y_train, 8, len(every) + 1, seed=0)


def test_too_many_shots_is_one_clear_line(capsys):
    from mnistlab import cli

    rc = cli.main(["study", "augmentation", "--shots", "100000", "--no-progress", "--out", "x"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("mnistlab: error:") and "100000" in err and "\n" not in err


def _vendi_slow(f: np.ndarray) -> float:
    """The definition, written out: eigenvalues of K / n with K the cosine similarities."""
    u = f / np.linalg.norm(f, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(u @ u.T / len(f))
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def test_vendi_score_of_identical_and_orthogonal_points(rng):
    v = rng.normal(size=16)
    assert aug.vendi_score(np.tile(v, (50, 1))) == pytest.approx(1.0, abs=1e-9)
    assert aug.vendi_score(np.eye(7) * 3.0) == pytest.approx(7.0, rel=1e-9)
    # Both branches (n < D and n > D) agree with the definition.
    for n in (5, 80):
        f = np.abs(rng.normal(size=(n, 20)))
        assert aug.vendi_score(f) == pytest.approx(_vendi_slow(f), rel=1e-9)


def test_mean_pairwise_distance_matches_scipy(rng):
    f = rng.normal(size=(40, 9))
    assert aug.mean_pairwise_distance(f) == pytest.approx(pdist(f).mean(), rel=1e-9)


def test_generators_are_seeded_and_perturbation_grows(rng):
    z = rng.normal(size=(10, 8)).astype(np.float32)
    a, b = aug.sample_gaussian(z, 100, seed=0), aug.sample_gaussian(z, 100, seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (100, 8)
    zp, src = aug.perturb(z, 0.0, 30, seed=1)
    np.testing.assert_allclose(zp, z[src])
    # Same seed, same directions: the displacement grows linearly with the scale.
    far1, src1 = aug.perturb(z, 1.0, 200, seed=1)
    far4, src4 = aug.perturb(z, 4.0, 200, seed=1)
    np.testing.assert_array_equal(src1, src4)
    np.testing.assert_allclose(far4 - z[src4], 4 * (far1 - z[src1]), rtol=1e-4, atol=1e-5)
    assert np.linalg.norm(far1 - z[src1], axis=1).mean() > 0


def test_breaking_point_interpolates():
    assert aug.breaking_point([0, 1, 2], [1.0, 0.9, 0.7]) is None
    assert aug.breaking_point([0, 1, 2], [1.0, 0.6, 0.4]) == pytest.approx(1.5)
    assert aug.breaking_point([0, 1], [0.2, 0.1]) == 0.0


def test_perturbation_sweep_goes_on_until_recognition_breaks():
    seen = []

    def measure(i, s):
        seen.append((i, s))
        return {"scale": s, "recognised": 1.0 if s < 20 else 0.2}

    rows = aug.perturbation_sweep((0.0, 1.0, 4.0), measure)
    # 4 is still recognised: 8, 16 and 32 follow, and recognition breaks between 16 and 32.
    assert [r["scale"] for r in rows] == [0.0, 1.0, 4.0, 8.0, 16.0, 32.0]
    assert seen == list(enumerate([0.0, 1.0, 4.0, 8.0, 16.0, 32.0]))
    brk = aug.breaking_point([r["scale"] for r in rows], [r["recognised"] for r in rows])
    assert 16 < brk < 32
    # Never broken: the sweep stops at the cap; broken within the grid: no extra scale.
    always = aug.perturbation_sweep((0.0, 1.0), lambda i, s: {"scale": s, "recognised": 1.0})
    assert always[-1]["scale"] == aug.MAX_SCALE
    early = aug.perturbation_sweep((0.0, 1.0, 2.0), lambda i, s: {"scale": s, "recognised": 0.0})
    assert [r["scale"] for r in early] == [0.0, 1.0, 2.0]


@pytest.mark.slow
@pytest.mark.browser
def test_quick_study_end_to_end(tmp_path):
    from mnistlab import cli

    out = tmp_path / "augmentation"
    rc = cli.main(["study", "augmentation", "--quick", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert (out / "report.html").is_file()
    m = json.loads((out / "metrics.json").read_text())
    settings = {s["N"]: s for s in m["settings"]}
    assert sorted(settings) == ["10", "100"]
    for s in settings.values():
        assert s["n_train"] == int(s["N"])
        g = s["gaussian"]
        assert 0 <= g["recognised"] <= 1 and 1 <= g["vendi"] <= g["n"]
        assert 0 <= g["novelty"] < 1
        assert 0.02 < g["ink"] < 0.5  # decoded digits: strokes on a dark ground
        # Trained on all N images: no validation split, so no validation loss.
        assert s["history"] and not any("val_loss" in h for h in s["history"])
        last = s["perturbation"][-1]
        assert last["recognised"] < 0.5 or last["scale"] == aug.MAX_SCALE
    # Ten images are memorised: their codes decode to recognisable digits, and pushed far
    # enough the latents stop making the digit.
    rec = [r["recognised"] for r in settings["10"]["perturbation"]]
    assert rec[0] >= 0.8 and rec[-1] < rec[0]
    runs = m["classifier"]["runs"]
    assert {r["arm"] for r in runs} == {"real only", "real + synthetic"}
    assert all(0.1 < r["accuracy"] <= 1 for r in runs)
    assert any("augmentation help" in q for q in m["verdicts"])
    assert "Are the synthetic digits new?" in m["verdicts"]

    # `make test` installs Chromium; a browser that is missing or will not start is a failure,
    # as in the generation study's report test, never a skip.
    from mnistlab.report import browser

    check = browser.check(out / "report.html")
    assert check.console_errors == [] and check.page_errors == []
    assert check.figures >= 4 and check.rendered == check.figures, check.problems


def test_study_all_links_the_four_reports(tmp_path, monkeypatch):
    """`study all` runs each study into its subfolder and links them from index.html.

    The studies themselves are replaced by stand-ins here: each one's --quick run is tested in its
    own file, and running all four would take minutes.
    """
    import importlib
    from types import SimpleNamespace

    from mnistlab import cli

    seen = []
    for name in ("generation", "latent", "denoising", "augmentation"):
        module = importlib.import_module(f"mnistlab.studies.{name}")

        def run(config, data_dir=None, *, progress=True, name=name):
            seen.append((name, config.quick, config.seed))
            return SimpleNamespace(seconds=1.0, verdicts={"q": f"{name} says yes. More."})

        def write(result, out_dir):
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "report.html").write_text("<html></html>")
            return out_dir / "report.html"

        monkeypatch.setattr(module, "run", run)
        monkeypatch.setattr(module, "write", write)
    out = tmp_path / "all"
    assert cli.main(["study", "all", "--quick", "--seed", "4", "--out", str(out)]) == 0
    assert [s[0] for s in seen] == ["generation", "latent", "denoising", "augmentation"]
    assert all(quick and seed == 4 for _, quick, seed in seen)
    index = (out / "index.html").read_text()
    for name in ("generation", "latent", "denoising", "augmentation"):
        assert f'href="{name}/report.html"' in index and (out / name / "report.html").is_file()
    assert "denoising says yes." in index


def _set(recognised=0.9, novelty=0.5, ink=0.13):
    return aug.SetScores(
        n=100, recognised=recognised, p_digit=recognised, diversity=5.0, vendi=2.0,
        novelty=novelty, nn_distance=5.0, ink=ink,
    )  # fmt: skip


def _shot(perturbation, breaking=None):
    return aug.ShotResult(
        digit=8, shots=10, n_train=10, model={}, history=[], steps_per_epoch=1,
        training_set=_set(), gaussian=_set(novelty=0.45), perturbation=perturbation,
        breaking_scale=breaking, breaking_distance=None if breaking is None else 10.0,
        latent_spread=4.0, gaussian_grid=np.zeros((1, 28, 28)),
        train_grid=np.zeros((1, 28, 28)), path_images=np.zeros((3, 1, 28, 28)),
        path_p_digit=np.zeros((3, 1)),
    )  # fmt: skip


def test_task5_verdict_does_not_call_blobs_digits():
    def row(scale, recognised, ink):
        return {"scale": scale, "latent_distance": 5.0 * scale} | dataclasses.asdict(
            _set(recognised=recognised, novelty=0.1 if scale == 0 else 0.6, ink=ink)
        )

    config = aug.AugmentationConfig(digits=(8,), shots=(10,), classifier_shots=(10,))
    for last_ink, says in [(0.45, "saturated blobs"), (0.14, "draws it from any code")]:
        result = aug.AugmentationResult(
            config=config, data_source="made up", data_checksum="", judge={},
            real={8: _set(ink=0.13)},
            shots=[_shot([row(0.0, 1.0, 0.13), row(128.0, 0.7, last_ink)])],
            classifier=[], verdicts={}, seconds=0.0,
        )  # fmt: skip
        v = aug.verdicts(result)
        task5 = v[
            "How far must the latents be pushed before the judge stops recognising the digit?"
        ]
        assert says in task5 and "128 sigma" in task5
        assert v["Are the synthetic digits new?"].startswith("Yes")
