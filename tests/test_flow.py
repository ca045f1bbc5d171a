"""The latent flow: it learns where codes lie, class by class, reproducibly; `mnistlab sample`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnistlab import flow, generators, models
from mnistlab.cli import main
from mnistlab.errors import ModelFileError


@pytest.fixture(scope="module")
def blobs():
    """Two classes of 4-d points around (+3, 0, 0, 0) and (-3, 0, 0, 0)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    centres = np.array([[3.0, 0, 0, 0], [-3.0, 0, 0, 0]], np.float32)
    z = centres[y] + 0.3 * rng.standard_normal((4000, 4), dtype=np.float32)
    return z.astype(np.float32), y


SMALL = flow.FlowConfig(latent_dim=4, hidden=64, epochs=15, batch_size=256, lr=3e-3)


def test_a_flow_carries_noise_to_the_class_asked_for(blobs):
    z, y = blobs
    net, losses = flow.train(z, y, SMALL)
    assert losses[-1] < 0.6 * losses[0]
    rng = np.random.default_rng(1)
    for label, sign in ((0, 1), (1, -1)):
        out = flow.integrate(net, np.full(500, label), rng, guidance=1.0, steps=20)
        assert np.mean(np.sign(out[:, 0]) == sign) > 0.97  # on the right side
        assert abs(np.mean(out[:, 0]) - 3 * sign) < 0.5
    mixed = flow.integrate(net, y[:1000], rng, guidance=2.0)
    assert np.mean(np.sign(mixed[:, 0]) == np.where(y[:1000] == 0, 1, -1)) > 0.97


def test_the_same_seed_gives_the_same_network_and_files_round_trip(blobs, tmp_path):
    z, y = blobs
    cfg = flow.FlowConfig(latent_dim=4, hidden=32, epochs=2, batch_size=512)
    a, _ = flow.train(z, y, cfg)
    b, _ = flow.train(z, y, cfg)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert np.array_equal(va.numpy(), vb.numpy()), k
    path = flow.save(tmp_path / "f.safetensors", a, {"losses": [1.0]})
    c, meta = flow.load(path)
    assert meta["losses"] == [1.0]
    assert np.array_equal(
        flow.integrate(a, y[:50], np.random.default_rng(3)),
        flow.integrate(c, y[:50], np.random.default_rng(3)),
    )
    side = path.with_suffix(".json")
    side.write_text(json.dumps(json.loads(side.read_text()) | {"weights_sha256": "0" * 64}))
    with pytest.raises(ModelFileError, match="SHA-256"):
        flow.load(path)


def test_latent_flow_generator_contract(small, monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path))
    ae = models.get_model("ae", latent_dim=4)
    fl = generators.LatentFlow(ae, hidden=32, epochs=2).fit(small.x_train, small.y_train)
    imgs = fl.sample(30, random_state=0)
    assert imgs.shape == (30, 28, 28) and imgs.dtype == np.float32
    assert np.array_equal(imgs, fl.sample(30, random_state=0))
    eights, labels = fl.sample_with_labels(12, 0, digit=8)
    assert (labels == 8).all() and eights.shape == (12, 28, 28)
    stronger = fl.with_guidance(3.0)
    assert stronger.velocity_ is fl.velocity_ and stronger.setting() == "w=3"
    with pytest.raises(ValueError, match="labels"):
        generators.LatentFlow(ae).fit(small.x_train)
    # Fitted again on the same codes: loaded from the cache, not trained.
    again = generators.LatentFlow(ae, hidden=32, epochs=2).fit(small.x_train, small.y_train)
    assert again.train_seconds_ == fl.train_seconds_
    assert len(list((tmp_path / "flows").glob("flow-*.safetensors"))) == 1
    assert repr(fl).startswith("LatentFlow(") and "Conv2d" not in repr(fl)


def test_sample_command_writes_npy_and_pngs(capsys, tmp_path, small):
    from mnistlab import datasource

    folder = tmp_path / "data"
    datasource.write_idx_folder(
        folder,
        {
            "train-images": small.x_train,
            "train-labels": small.y_train,
            "test-images": small.x_test,
            "test-labels": small.y_test,
        },
    )
    out = tmp_path / "s.npy"
    argv = ["sample", "pixel-kde", "--n", "25", "--data", str(folder), "--quiet"]
    assert main([*argv, "--setting", "0.1", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (25, 28, 28) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    short = [a if a != "--n" else "-n" for a in argv]  # the short form users type
    assert main([*short, "--out", str(tmp_path / "pngs")]) == 0
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 25
    capsys.readouterr()
    for bad, message in [
        (["--digit", "3"], "cannot make one digit on demand"),
        (["--setting", "-1"], "positive number"),
        (["--out", str(tmp_path / "x.txt")], "FILE.npy or a folder"),
    ]:
        args = [*argv, *bad]
        if "--out" not in bad:
            args += ["--out", str(tmp_path / "y.npy")]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "y.npy").exists()
