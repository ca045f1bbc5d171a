"""Devices: the CPU gives the same numbers as before; a GPU, where there is one, agrees with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnistlab import models, store
from mnistlab.cli import main
from mnistlab.errors import MnistlabError


@pytest.fixture(autouse=True)
def _back_to_cpu():
    yield
    models.set_device("cpu")


def test_auto_is_the_cpu_here_and_missing_devices_are_one_line(capsys):
    want = "cuda" if torch.cuda.is_available() else None
    assert models.resolve_device("cpu") == torch.device("cpu")
    if want is None:
        assert models.resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(MnistlabError, match="no CUDA GPU"):
            models.resolve_device("cuda")
        assert main(["train", "ae", "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no CUDA GPU" in err
    with pytest.raises(MnistlabError, match="unknown device 'tpu'"):
        models.resolve_device("tpu")


def test_loaded_models_go_to_the_chosen_device(mnist):
    models.set_device("cpu")
    judge, _ = store.load_judge(mnist)
    assert models.device_of(judge) == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_gpu_scores_agree_with_the_cpu(mnist):
    from mnistlab import metrics

    x = mnist.x_test[:2000]
    results = {}
    for dev in ("cpu", "cuda"):
        models.set_device(dev)
        judge, meta = store.load_judge(mnist)
        scorer = metrics.Scorer(judge, mnist, judge_id=meta["judge_id"] + dev, progress=False)
        results[dev] = scorer.score(x).as_dict()
    # Stated tolerance: GPU convolutions differ from the CPU's in the last bits (TF32 off or on),
    # which moves averages over 2,000 images by far less than 0.01.
    for key, value in results["cpu"].items():
        assert results["cuda"][key] == pytest.approx(value, abs=0.01), key
    assert np.isfinite(list(results["cuda"].values())).all()
