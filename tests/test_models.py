"""The model zoo: registry, shapes, shared losses against reference formulas, numpy helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnistlab import models
from mnistlab.models import losses


def test_registry_lists_the_models_with_frozen_configs():
    assert models.list_models() == ["ae", "classifier", "judge", "sae", "vae"]
    for name in models.list_models():
        cfg = models.config_class(name)()
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.channels = (1,)
        model = models.get_model(name)
        assert model.model_name == name
        assert model.config == cfg


def test_get_model_rejects_unknown_names_and_fields():
    with pytest.raises(KeyError, match="unknown model 'gan'"):
        models.get_model("gan")
    with pytest.raises(TypeError):
        models.get_model("ae", no_such_field=3)
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("ae")(lambda config: None)


def test_config_overrides_reach_the_model():
    ae = models.get_model("ae", latent_dim=5)
    assert ae.config.latent_dim == 5
    assert ae.encode(torch.rand(3, 1, 28, 28)).shape == (3, 5)


@pytest.mark.parametrize("name", ["ae", "vae", "sae"])
def test_autoencoder_shapes_and_ranges(name):
    torch.manual_seed(0)
    model = models.get_model(name, latent_dim=7).eval()
    x = torch.rand(4, 1, 28, 28)
    z = model.encode(x)  # (4, 7)
    assert z.shape == (4, 7)
    out = model.decode(z)
    assert out.shape == (4, 1, 28, 28)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(model(x), out)


def test_classifier_logits_and_features():
    model = models.get_model("classifier").eval()
    x = torch.rand(5, 1, 28, 28)
    feats = model.features(x)
    assert feats.shape == (5, model.config.feature_dim)
    assert torch.allclose(model(x), model.head(feats))


def test_vae_posterior_and_prior_sampling_are_seeded():
    model = models.get_model("vae", latent_dim=3).eval()
    mu, logvar = model.posterior(torch.rand(2, 1, 28, 28))
    assert mu.shape == logvar.shape == (2, 3)
    a, b = model.sample_prior(6, 42), model.sample_prior(6, torch.Generator().manual_seed(42))
    assert a.shape == (6, 1, 28, 28)
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample_prior(6, 43))


def test_recon_losses_match_reference_formulas():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 28, 28, generator=g)
    target = torch.rand(3, 1, 28, 28, generator=g)
    p = torch.sigmoid(logits)
    bce_ref = F.binary_cross_entropy(p, target, reduction="none").flatten(1).sum(1)
    mse_ref = ((p - target) ** 2).flatten(1).sum(1)
    assert torch.allclose(losses.recon_per_image(logits, target, "bce"), bce_ref, rtol=1e-5)
    assert torch.allclose(losses.recon_per_image(logits, target, "mse"), mse_ref, rtol=1e-5)
    with pytest.raises(ValueError, match="recon_loss"):
        losses.recon_per_image(logits, target, "l1")


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(6), torch.ones(6))
    ref = torch.distributions.kl_divergence(q, p).sum(1)
    assert torch.allclose(losses.kl_per_image(mu, logvar), ref, rtol=1e-5)


def test_psnr_per_image_matches_its_definition():
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(3, 1, 28, 28, generator=g), torch.rand(3, 1, 28, 28, generator=g)
    ref = 10 * torch.log10(1.0 / ((a - b) ** 2).flatten(1).mean(1))
    assert torch.allclose(losses.psnr_per_image(a, b), ref, rtol=1e-5)


@pytest.mark.parametrize("name", ["ae", "vae", "sae", "classifier", "judge"])
def test_loss_terms_in_train_and_eval_mode(name):
    model = models.get_model(name)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    terms = model.loss_terms(x, x, y)
    assert terms["loss"].ndim == 0 and terms["loss"].requires_grad
    model.eval()
    with torch.inference_mode():
        terms = model.loss_terms(x, x, y)
    wanted = {"accuracy"} if name in ("classifier", "judge") else {"mse", "bce", "psnr"}
    if name == "sae":
        wanted |= {"accuracy", "ce", "recon"}
    assert wanted <= set(terms)


def test_supervised_autoencoder_adds_the_weighted_cross_entropy():
    torch.manual_seed(0)
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    terms = {}
    for w in (0.0, 2.0):
        torch.manual_seed(0)
        terms[w] = models.get_model("sae", latent_dim=4, label_weight=w).eval().loss_terms(x, x, y)
    assert torch.allclose(terms[0.0]["loss"], terms[0.0]["recon"])
    assert torch.allclose(terms[2.0]["loss"], terms[2.0]["recon"] + 2.0 * terms[2.0]["ce"])
    with pytest.raises(ValueError, match="label_weight"):
        models.get_model("sae", label_weight=-1.0)


@pytest.mark.parametrize("name", ["ae", "vae", "sae", "classifier", "judge"])
def test_one_optimiser_step_changes_every_weight_tensor(name, small):
    torch.manual_seed(0)
    model = models.get_model(name)
    before = {k: v.clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.tensor(small.x_train[:32]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(small.y_train[:32].astype(np.int64))
    model.loss_terms(x, x, y)["loss"].backward()
    opt.step()
    for k, v in model.named_parameters():
        assert not torch.equal(before[k], v), k


def test_encode_accepts_uint8_and_float_in_both_shapes(small):
    ae = models.get_model("ae", latent_dim=4)
    u8 = small.x_test[:10]  # (10, 28, 28) uint8
    z = models.encode(ae, u8)
    assert z.shape == (10, 4) and z.dtype == np.float32
    flat = (u8.reshape(10, 784) / 255.0).astype(np.float32)
    assert np.allclose(models.encode(ae, flat), z, atol=1e-6)
    assert ae.training, "helpers restore the model's train/eval flag"


def test_infer_does_not_depend_on_batch_size(small):
    ae = models.get_model("ae")
    z_big = models.encode(ae, small.x_test[:50], batch_size=2048)
    z_small = models.encode(ae, small.x_test[:50], batch_size=7)
    assert np.allclose(z_big, z_small, atol=1e-5)
    assert models.encode(ae, small.x_test[:0]).shape == (0, 16)


def test_decode_gives_images_in_unit_range():
    ae = models.get_model("ae", latent_dim=3)
    imgs = models.decode(ae, np.random.default_rng(0).standard_normal((9, 3)))
    assert imgs.shape == (9, 28, 28) and imgs.dtype == np.float32
    assert imgs.min() >= 0 and imgs.max() <= 1


def test_judge_outputs_are_probabilities_and_features(small):
    judge = models.get_model("classifier")
    probs, feats = models.judge_outputs(judge, small.x_test[:12])
    assert probs.shape == (12, 10) and feats.shape == (12, judge.config.feature_dim)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs >= 0).all()


def test_judge_outputs_give_unit_descriptors_beside_probabilities_and_features(small):
    torch.manual_seed(0)
    judge = models.get_model("judge")
    probs, feats, desc = models.judge_all(judge, small.x_test[:12])
    assert probs.shape == (12, 10) and feats.shape == (12, judge.config.feature_dim)
    assert desc.shape == (12, judge.config.descriptor_dim)
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, rtol=1e-5)
    # v1 has no descriptor: novelty is measured on its features.
    v1 = models.get_model("classifier")
    _, f1, d1 = models.judge_all(v1, small.x_test[:12])
    np.testing.assert_array_equal(f1, d1)


def test_judge_runs_in_channels_last_without_changing_the_judge_or_its_answers(mnist):
    """judge_all runs a channels-last copy (faster on the CPU): the shipped judge's outputs stay
    within float32 rounding of a plain forward pass, do not depend on the batch size beyond
    that rounding, and the judge itself is left as it was (train flag, contiguous weights for
    safetensors)."""
    from mnistlab import store

    judge, _ = store.load_judge(mnist, progress=False)
    judge.train()
    x = mnist.x_test[:300]
    probs, feats, desc = models.judge_all(judge, x)
    assert judge.training and all(p.is_contiguous() for p in judge.parameters())
    judge.eval()
    with torch.inference_mode():
        logits, f_ref, d_ref = judge.outputs(torch.tensor(x).float().div(255)[:, None])
    np.testing.assert_allclose(feats, f_ref.numpy(), atol=1e-4)
    np.testing.assert_allclose(desc, d_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), atol=1e-5)
    # Identical on the AMD EPYC of sessions 10-26; on an Intel Xeon (AVX-512, session 27) the
    # descriptor's convolutions round a short last batch differently: the descriptors of the
    # last 12 images moved by at most 1e-7 (``metrics.COPY_TOLERANCE`` absorbs such rounding).
    again = models.judge_all(judge, x, batch_size=32)
    for a, b in zip((probs, feats, desc), again, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_judge_training_loss_has_its_three_terms(small):
    torch.manual_seed(0)
    judge = models.get_model("judge")
    x = torch.tensor(small.x_train[:32]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(small.y_train[:32].astype(np.int64))
    terms = judge.loss_terms(x, x, y)
    cfg = judge.config
    expected = terms["ce"] + cfg.outlier_weight * terms["oe"] + cfg.contrast_weight * terms["nce"]
    assert torch.allclose(terms["loss"], expected)
    # Cross-entropy to the uniform distribution is at least log 10, reached at uniform outputs.
    assert float(terms["oe"]) >= np.log(10) - 1e-4
