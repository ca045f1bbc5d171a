"""The trainer: schedule, determinism, early stopping, checkpoints and resume, noise, the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mnistlab import cli, data, models, store, training
from mnistlab.errors import ModelFileError

FAST = {"epochs": 2, "batch_size": 64, "patience": 5}


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def write_idx_folder(folder: Path, ds: data.Dataset, gz: bool = True) -> Path:
    """Write ``ds`` as the four MNIST IDX files, the format ``data.load`` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {
        "train-images-idx3-ubyte": (0x803, ds.x_train),
        "train-labels-idx1-ubyte": (0x801, ds.y_train),
        "t10k-images-idx3-ubyte": (0x803, ds.x_test),
        "t10k-labels-idx1-ubyte": (0x801, ds.y_test),
    }
    for name, (magic, arr) in parts.items():
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
        raw = header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
        else:
            (folder / name).write_bytes(raw)
    return folder


@pytest.fixture(scope="module")
def small_dir(small, tmp_path_factory):
    return write_idx_folder(tmp_path_factory.mktemp("small-idx"), small)


# ---- schedule and config ----------------------------------------------------------------------


def test_onecycle_warms_up_then_decays_to_almost_zero():
    cfg = training.TrainConfig(lr=1e-2, schedule="onecycle")
    lrs = [training.lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-2 / 25)
    assert max(lrs) == pytest.approx(1e-2, rel=1e-3)
    assert np.argmax(lrs) == 25
    assert lrs[-1] < 1e-3 * 1e-2 * 2
    assert all(a >= b for a, b in zip(lrs[25:], lrs[26:], strict=False))
    cos = [training.lr_at(s, 10, dataclasses.replace(cfg, schedule="cosine")) for s in range(10)]
    assert cos[0] == 1e-2 and all(a > b for a, b in zip(cos, cos[1:], strict=False))


def test_train_config_is_frozen_and_checked():
    cfg = training.default_train_config("ae", seed=3)
    assert cfg.seed == 3 and cfg.epochs == models.train_defaults("ae")["epochs"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
    with pytest.raises(ValueError, match="schedule"):
        training.TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="recon_loss"):
        training.TrainConfig(recon_loss="l1")


def test_noise_is_the_data_modules_formula_on_tensors():
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    noisy = training._noisy(x, 0.5, torch.Generator().manual_seed(9))
    expected = (x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(9))).clamp(
        0, 1
    )
    assert torch.equal(noisy, expected)
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert training._noisy(x, 0.0, torch.Generator()) is x


# ---- fit ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(small):
    cfg = training.TrainConfig(**FAST, seed=1)
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)  # initialisation is part of the seeded run
        model = models.get_model("vae", latent_dim=4)
        training.fit(model, small, dataclasses.replace(cfg, seed=seed), progress=False)
        runs.append(model)
    assert _same_weights(runs[0], runs[1])
    assert not _same_weights(runs[0], runs[2])


@pytest.mark.slow
def test_fit_learns_and_reports_history_and_test_figures(small):
    torch.manual_seed(0)
    model = models.get_model("classifier")
    cfg = training.TrainConfig(epochs=4, batch_size=32, lr=3e-3, seed=0)
    result = training.fit(model, small, cfg, progress=False)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "images_per_s"} <= set(
        result.history[0]
    )
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.test["accuracy"] > 0.75  # 600 images, 4 epochs: far above chance
    assert not model.training


@pytest.mark.slow
def test_denoising_ae_is_scored_on_noisy_inputs(small):
    torch.manual_seed(0)
    cfg = training.TrainConfig(**FAST, seed=0)
    clean = training.fit(models.get_model("ae"), small, cfg, progress=False)
    torch.manual_seed(0)
    noisy_cfg = dataclasses.replace(cfg, noise_factor=0.7)
    noisy = training.fit(models.get_model("ae"), small, noisy_cfg, progress=False)
    assert set(noisy.test) >= {"mse", "bce", "psnr", "loss"}
    assert noisy.test["mse"] > clean.test["mse"]


@dataclasses.dataclass(frozen=True)
class _ConstConfig:
    width: int = 3


class _ConstantValLoss(nn.Module):
    """A model whose loss never improves in eval mode: early stopping must end the run."""

    model_name = "constant"
    config = _ConstConfig()

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def loss_terms(self, x_in, target, y, recon_loss="bce"):
        loss = (self.w**2).sum() if self.training else self.w.detach().sum() * 0 + 1.0
        return {"loss": loss}


def test_early_stopping_ends_after_patience_epochs_and_keeps_the_best(small):
    cfg = training.TrainConfig(epochs=10, batch_size=300, patience=2)
    result = training.fit(_ConstantValLoss(), small, cfg, progress=False)
    assert len(result.history) == 3  # epoch 1 is best; 2 and 3 do not improve
    assert result.stopped_early and result.best_epoch == 1


# ---- checkpoints and resume -------------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop_after(epoch: int):
    def callback(e: int, row: dict) -> None:
        if e == epoch:
            raise _Stop

    return callback


def _conv_layouts(model: nn.Module) -> set[str]:
    """How the model's convolution weights lie in memory: "channels_last" or "default"."""
    return {
        "default" if w.is_contiguous() else "channels_last"
        for w in model.parameters()
        if w.ndim == 4 and w.shape[1] > 1  # a one-channel kernel is both at once
    }


def test_the_judge_trains_in_channels_last_and_comes_back_in_the_default_layout(small, tmp_path):
    # Training-time layout only: the same seed gives the same weights, which safetensors can
    # write as they are, and an interrupted run leaves the model in the default layout too.
    cfg = training.TrainConfig(epochs=2, batch_size=64, seed=3)
    tiny = {"channels": (4, 8), "descriptor_channels": (4, 8), "queue_size": 128}
    runs, seen = [], []
    for _ in range(2):
        torch.manual_seed(3)
        judge = models.get_model("judge", **tiny)
        training.fit(
            judge, small, cfg, progress=False,
            on_epoch_end=lambda e, row, m=judge: seen.append(_conv_layouts(m)),
        )  # fmt: skip
        runs.append(judge)
        assert _conv_layouts(judge) == {"default"}
    assert seen == [{"channels_last"}] * 4
    assert _same_weights(runs[0], runs[1])
    loaded, _ = store.load_model(store.save_model(tmp_path / "judge.safetensors", runs[0]))
    assert _same_weights(loaded, runs[0])

    torch.manual_seed(3)
    judge = models.get_model("judge", **tiny)
    with pytest.raises(_Stop):
        training.fit(judge, small, cfg, progress=False, on_epoch_end=_stop_after(1))
    assert _conv_layouts(judge) == {"default"}
    # Other models are trained in the layout they were built in (their cached weights stay).
    ae = models.get_model("ae", latent_dim=2)
    training.fit(
        ae, small, dataclasses.replace(cfg, epochs=1), progress=False,
        on_epoch_end=lambda e, row: seen.append(_conv_layouts(ae)),
    )  # fmt: skip
    assert seen[-1] == {"default"}


@pytest.mark.slow
def test_interrupted_run_resumes_and_ends_with_the_uninterrupted_weights(small, tmp_path):
    cfg = training.TrainConfig(**{**FAST, "epochs": 3}, noise_factor=0.3, seed=5)
    torch.manual_seed(5)
    whole = models.get_model("vae", latent_dim=4)
    training.fit(whole, small, cfg, progress=False)

    ckpt = tmp_path / "run.ckpt.safetensors"
    torch.manual_seed(5)
    with pytest.raises(_Stop):
        training.fit(
            models.get_model("vae", latent_dim=4), small, cfg, checkpoint=ckpt,
            progress=False, on_epoch_end=_stop_after(1),
        )  # fmt: skip
    assert ckpt.is_file()
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file is left behind"

    fresh = models.get_model("vae", latent_dim=4)  # other initial weights: all must come from disk
    epochs_seen = []
    result = training.fit(
        fresh, small, cfg, checkpoint=ckpt, progress=False,
        on_epoch_end=lambda e, row: epochs_seen.append(e),
    )  # fmt: skip
    assert result.resumed_from == 1 and epochs_seen == [2, 3]
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    assert _same_weights(fresh, whole)


def test_run_killed_at_its_stopping_epoch_does_not_train_another(small, tmp_path):
    # Epoch 1 is best; with patience 2 an unbroken run stops after epoch 3. Killed right after
    # epoch 3's checkpoint, the resumed run must stop too, not train a 4th epoch.
    cfg = training.TrainConfig(epochs=10, batch_size=300, patience=2)
    ckpt = tmp_path / "run.ckpt.safetensors"
    with pytest.raises(_Stop):
        training.fit(
            _ConstantValLoss(), small, cfg, checkpoint=ckpt, progress=False,
            on_epoch_end=_stop_after(3),
        )  # fmt: skip
    epochs_seen = []
    result = training.fit(
        _ConstantValLoss(), small, cfg, checkpoint=ckpt, progress=False,
        on_epoch_end=lambda e, row: epochs_seen.append(e),
    )  # fmt: skip
    assert epochs_seen == [] and len(result.history) == 3 and result.best_epoch == 1


def test_no_validation_split_trains_on_every_image_and_keeps_the_last_epoch(small):
    few = small.subset(n_train=10, n_test=50)
    cfg = training.TrainConfig(epochs=3, batch_size=4, patience=1, val_fraction=0.0)
    result = training.fit(_ConstantValLoss(), few, cfg, progress=False)
    assert len(result.history) == 3 and result.best_epoch == 3 and not result.stopped_early
    assert not any(k.startswith("val_") for k in result.history[0])
    # 10 images at batch 4: 3 optimiser steps an epoch, so all 10 were trained on.
    torch.manual_seed(0)
    ae = models.get_model("ae", latent_dim=2)
    r = training.fit(ae, few, dataclasses.replace(cfg, epochs=1), progress=False)
    assert r.images_per_s > 0 and r.history[0]["train_loss"] > 0
    with pytest.raises(ValueError, match="val_fraction"):
        training.TrainConfig(val_fraction=1.0)


def test_checkpoint_of_another_config_or_corrupt_is_refused(small, tmp_path):
    cfg = training.TrainConfig(epochs=1, batch_size=300)
    ckpt = tmp_path / "c.ckpt.safetensors"
    training.fit(models.get_model("ae", latent_dim=2), small, cfg, checkpoint=ckpt, progress=False)
    with pytest.raises(ModelFileError, match="another model or config"):
        training.fit(
            models.get_model("ae", latent_dim=3), small, cfg, checkpoint=ckpt, progress=False
        )
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="cannot read checkpoint"):
        training.fit(
            models.get_model("ae", latent_dim=2), small, cfg, checkpoint=ckpt, progress=False
        )


# ---- the CLI -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_train_prints_figures_writes_out_and_uses_the_cache(small_dir, tmp_path, capsys):
    out = tmp_path / "ae.safetensors"
    argv = ["train", "ae", "--data", str(small_dir), "--epochs", "1", "--latent-dim", "3"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert "test MSE" in first and "PSNR" in first and "dB" in first
    model, meta = store.load_model(out)
    assert model.config.latent_dim == 3
    assert meta["command"].startswith("mnistlab train ae --latent-dim 3 --epochs 1 --seed 0")
    cached = Path(meta["data"]["source"])
    assert cached == small_dir
    # The same command again: from the cache, same figures, no training.
    t0 = time.perf_counter()
    assert cli.main(argv) == 0
    assert time.perf_counter() - t0 < 20
    again = capsys.readouterr().out
    assert "from the cache" in again
    figures = [line for line in again.splitlines() if line.startswith("test ")]
    assert figures and figures[0] in first.splitlines()


def test_cli_classifier_prints_accuracy_line(small_dir, capsys):
    assert cli.main(["train", "classifier", "--data", str(small_dir), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "%" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "gan"], "not one of ae, classifier, judge, sae, vae"),
        (["train", "classifier", "--latent-dim", "4"], "apply to ae, vae and sae only"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mnistlab: error:") and message in err and "\n" not in err


def test_cli_out_must_be_a_safetensors_file(tmp_path, capsys):
    # model.json would be both the weights and their JSON sidecar.
    assert cli.main(["train", "ae", "--out", str(tmp_path / "model.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out must name a .safetensors file" in err and "\n" not in err
    assert not list(tmp_path.iterdir())


def test_cli_unwritable_out_is_one_line_not_a_traceback(small_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["train", "classifier", "--data", str(small_dir), "--epochs", "1"]
    assert cli.main([*argv, "--out", str(blocker / "model.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistlab: error: ") and err.count("\n") == 1, err
    assert str(blocker) in err and "Traceback" not in err


def test_cli_missing_data_folder_is_one_line(tmp_path, capsys):
    assert cli.main(["train", "ae", "--data", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mnistlab: error: data folder not found") and "\n" not in err


@pytest.mark.slow
def test_killed_cli_run_resumes_from_its_last_checkpoint(small_dir, tmp_path):
    env = {**os.environ, "MNISTLAB_CACHE": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "mnistlab", "train", "ae", "--data", str(small_dir)]
    argv += ["--epochs", "4", "--seed", "4"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    models_dir = tmp_path / "cache" / "models"
    deadline = time.monotonic() + 120
    while not list(models_dir.glob("*.ckpt.safetensors")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(models_dir.glob("*.ckpt.safetensors")), "a checkpoint was written before the kill"
    assert not list(models_dir.glob("ae-*[0-9a-f].safetensors")), "the run did not finish"

    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "test MSE" in done.stdout
    assert "resumed from epoch" in done.stdout
    assert not list(models_dir.glob("*.ckpt.safetensors")), "the checkpoint is removed at the end"
