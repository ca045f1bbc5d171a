"""Saved models (safetensors + JSON), the cache of trained models, the judge."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch

from mnistlab import models, store, training
from mnistlab.errors import ModelFileError


@pytest.fixture
def saved_ae(tmp_path):
    torch.manual_seed(0)
    model = models.get_model("ae", latent_dim=6)
    path = store.save_model(tmp_path / "ae.safetensors", model, {"seed": 0, "test": {"mse": 0.1}})
    return model, path


@pytest.mark.parametrize("name", ["ae", "vae", "classifier", "judge"])
def test_save_then_load_gives_the_same_outputs(name, small, tmp_path):
    torch.manual_seed(1)
    model = models.get_model(name).eval()
    with torch.no_grad():  # move BatchNorm's running stats away from their initial values
        model.train()
        model.loss_terms(
            torch.rand(16, 1, 28, 28), torch.rand(16, 1, 28, 28), torch.zeros(16).long()
        )
        model.eval()
    path = store.save_model(tmp_path / f"{name}.safetensors", model, {"seed": 1})
    loaded, meta = store.load_model(path)
    assert meta["model"] == name and meta["seed"] == 1
    assert not loaded.training
    if name in ("classifier", "judge"):
        a, b = models.judge_all(model, small.x_test), models.judge_all(loaded, small.x_test)
        assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    else:
        assert np.array_equal(
            models.encode(model, small.x_test), models.encode(loaded, small.x_test)
        )


def test_sidecar_json_records_config_checksum_and_versions(saved_ae):
    model, path = saved_ae
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config"]["latent_dim"] == 6 and meta["model"] == "ae"
    assert meta["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {"torch", "numpy", "safetensors", "python", "mnistlab"} <= set(meta["versions"])
    assert meta["test"] == {"mse": 0.1}
    assert not list(path.parent.glob(".*tmp*"))


def test_missing_files_are_a_model_file_error(saved_ae, tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        store.load_model(tmp_path / "none.safetensors")
    _, path = saved_ae
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelFileError, match="ae.json"):
        store.load_model(path)


def test_corrupt_weights_are_a_model_file_error(saved_ae):
    _, path = saved_ae
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="corrupt"):
        store.load_model(path)


def test_unreadable_weights_without_checksum_are_a_model_file_error(saved_ae):
    _, path = saved_ae
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    del meta["weights_sha256"]
    side.write_text(json.dumps(meta))
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="cannot read weights"):
        store.load_model(path)


def test_broken_json_is_a_model_file_error(saved_ae):
    _, path = saved_ae
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not a mnistlab model description"):
        store.load_model(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latent_dim": 9}, "weights do not fit"),
        ({"depth": 3}, "config does not fit"),
    ],
)
def test_a_config_that_does_not_fit_is_a_model_file_error(saved_ae, change, message):
    _, path = saved_ae
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["config"] |= change
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=message) as info:
        store.load_model(path)
    assert "\n" not in str(info.value)


def test_unknown_model_name_is_a_model_file_error(saved_ae):
    _, path = saved_ae
    side = path.with_suffix(".json")
    side.write_text(json.dumps(json.loads(side.read_text()) | {"model": "gan"}))
    with pytest.raises(ModelFileError, match="unknown model 'gan'"):
        store.load_model(path)


@pytest.mark.slow
def test_get_trained_caches_by_config_seed_and_data(small):
    cfg = training.TrainConfig(epochs=1, batch_size=128, seed=0)
    model, meta = store.get_trained("ae", small, {"latent_dim": 2}, cfg, progress=False)
    assert meta["cached"] is False and meta["data"]["checksum"] == small.checksum
    assert meta["seed"] == 0 and len(meta["history"]) == 1 and "mse" in meta["test"]
    path = store.cache_path("ae", small, models.config_class("ae")(latent_dim=2), cfg)
    assert meta["path"] == str(path)
    stamp = path.stat().st_mtime_ns

    again, meta2 = store.get_trained("ae", small, {"latent_dim": 2}, cfg, progress=False)
    assert meta2["cached"] is True and path.stat().st_mtime_ns == stamp
    assert np.array_equal(models.encode(model, small.x_test), models.encode(again, small.x_test))

    other_seed = training.TrainConfig(epochs=1, batch_size=128, seed=1)
    assert store.cache_path("ae", small, again.config, other_seed) != path
    assert store.cache_path("ae", small.subset(500, 100), again.config, cfg) != path

    _, meta3 = store.get_trained("ae", small, {"latent_dim": 2}, cfg, retrain=True, progress=False)
    assert meta3["cached"] is False


def test_the_seed_fixes_the_initial_weights_whatever_ran_before(small):
    # Two trainings with the same (config, data, seed), with the global RNG disturbed in between:
    # a cached model must be a function of its key alone.
    tiny = small.subset(n_train=120, n_test=50)
    cfg = training.TrainConfig(epochs=1, batch_size=64, seed=3)
    a, _ = store.get_trained("ae", tiny, {"latent_dim": 2}, cfg, progress=False)
    torch.rand(1000)
    b, _ = store.get_trained("ae", tiny, {"latent_dim": 2}, cfg, retrain=True, progress=False)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    other = dataclasses.replace(cfg, seed=4)
    c, _ = store.get_trained("ae", tiny, {"latent_dim": 2}, other, progress=False)
    assert not torch.equal(c.state_dict()["encoder.0.weight"], sa["encoder.0.weight"])


def test_a_failed_write_is_a_model_file_error_and_leaves_nothing(saved_ae, tmp_path, monkeypatch):
    from safetensors import SafetensorError

    model, _ = saved_ae

    def full_disk(tensors, filename, metadata=None):
        raise SafetensorError("No space left on device (os error 28)")

    monkeypatch.setattr(store, "save_file", full_disk)
    with pytest.raises(ModelFileError, match="cannot write .*No space left"):
        store.save_model(tmp_path / "out" / "m.safetensors", model)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_config_of_another_model_is_refused(small):
    from mnistlab.models.autoencoder import SAEConfig

    with pytest.raises(TypeError, match="ae takes a AEConfig, not SAEConfig"):
        store.get_trained("ae", small, SAEConfig(), progress=False)


@pytest.mark.slow
def test_judge_for_another_data_set_is_trained_once_and_cached(small):
    judge, meta = store.load_judge(small, progress=False)
    assert meta["judge_id"] == f"judge-{small.name}-{meta['weights_sha256'][:12]}"
    assert meta["model"] == "judge" and meta["judge_version"] == "v2"
    _, meta2 = store.load_judge(small, progress=False)
    assert meta2["cached"] is True and meta2["judge_id"] == meta["judge_id"]
    probs, feats = models.judge_outputs(judge, small.x_test)
    assert (probs.argmax(1) == small.y_test).mean() > 0.8


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_shipped_judges_are_the_ones_their_metadata_describe(mnist, version):
    judge, meta = store.load_judge(mnist, version=version, progress=False)
    path = store.judge_path(version)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    name = {"v1": "classifier", "v2": "judge"}[version]
    assert meta["weights_sha256"] == digest
    assert meta["judge_id"] == f"{name}-mnist-{digest[:12]}"
    assert meta["data"]["checksum"] == mnist.checksum
    assert meta["command"].startswith(f"mnistlab train {name}")
    assert meta["command"].endswith(f"--out src/mnistlab/judge/{path.name}")
    assert path.stat().st_size < 2_000_000
    probs, _ = models.judge_outputs(judge, mnist.x_test)
    accuracy = float((probs.argmax(1) == mnist.y_test).mean())
    assert accuracy >= 0.993
    assert accuracy == pytest.approx(meta["test"]["accuracy"], abs=1e-4)


def test_every_default_uses_the_new_judge(mnist):
    assert store.DEFAULT_JUDGE == "v2"
    _, meta = store.load_judge(mnist, progress=False)
    assert meta["model"] == "judge"
    with pytest.raises(ModelFileError, match="unknown judge 'v3'"):
        store.load_judge(mnist, version="v3")
