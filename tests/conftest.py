"""Shared fixtures: small real MNIST slices and a private cache folder for every test session."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

# Two cores on the CI machines: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Trained models and decoded data go to a fresh folder, never to the user's cache."""
    folder = tmp_path_factory.mktemp("mnistlab-cache")
    old = os.environ.get("MNISTLAB_CACHE")
    os.environ["MNISTLAB_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("MNISTLAB_CACHE", None)
    else:
        os.environ["MNISTLAB_CACHE"] = old


@pytest.fixture(scope="session")
def mnist():
    """The whole bundled MNIST (60,000 + 10,000 images)."""
    from mnistlab import data

    return data.load()


@pytest.fixture(scope="session")
def small(mnist):
    """A few hundred real digits: 600 training and 200 test images from the bundled MNIST."""
    return mnist.subset(n_train=600, n_test=200)


@pytest.fixture
def rng():
    """A fresh seeded generator per test: a test's data never depends on which tests ran first."""
    return np.random.default_rng(0)


@pytest.fixture
def quick_study(tmp_path):
    """Run ``mnistlab study NAME --quick`` through the CLI into a fresh folder; check that it
    wrote its page and a metrics.json of the common schema; return (folder, metrics)."""
    import json

    from mnistlab import cli
    from mnistlab.studies import scaffold

    def run(name: str, *args: str) -> tuple:
        out = tmp_path / name
        assert cli.main(["study", name, "--quick", "--out", str(out), "--no-progress", *args]) == 0
        assert (out / "report.html").is_file()
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["schema"] == scaffold.SCHEMA and metrics["study"] == name
        assert metrics["config"]["quick"] is True
        return out, metrics

    return run
