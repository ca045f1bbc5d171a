"""Generators: fitting on the 60,000 MNIST digits and sampling 10,000 images, beside the plain way.

Rows: fit time; ``sample_latents`` / KDE draw time (the generator's own work) and the decoder's
forward pass, separately; scikit-learn's ``KernelDensity.sample`` and ``GaussianMixture`` with
their default threads as the plain way; the judge's features at the scorer's batch size against
batches of 2,048; the held-out log-likelihood and the cross-validated bandwidth. Untrained
autoencoders stand in for trained ones: the timings do not depend on the weights.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity
from timing import best  # benchmarks/ is on the path: run.py or the file as a script

from mnistlab import data, models, store
from mnistlab import generators as gen

N = 10_000  # brief 000: 10,000 samples per generator and setting


def _once(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run() -> list[dict]:
    mnist = data.load()
    x, y = mnist.x_train, mnist.y_train
    torch.manual_seed(0)
    ae = models.get_model("ae", latent_dim=16)
    vae = models.get_model("vae", latent_dim=16)
    rows = []

    fit_s, pixel = _once(lambda: gen.PixelKDE(bandwidth=0.1).fit(x))
    sk = KernelDensity(bandwidth=0.1).fit(pixel.points_)
    rows.append(
        {
            "what": "PixelKDE sample 10,000",
            "fit_s": fit_s,
            "sample_s": best(lambda: pixel.sample(N, 0)),
            "sklearn_sample_s": best(lambda: sk.sample(N, random_state=0)),
        }
    )

    fit_s, pca = _once(lambda: gen.PCAKDE(n_components=50, bandwidth="scott").fit(x))
    rows.append(
        {
            "what": "PCAKDE(50) sample 10,000",
            "fit_s": fit_s,
            "sample_s": best(lambda: pca.sample(N, 0)),
        }
    )

    # The judge, 10,000 test digits: the batch the scorer uses against the 2,048 it used before.
    judge, _ = store.load_judge(mnist, progress=False)
    x_test = mnist.x_test[:N]
    ours = best(lambda: models.judge_outputs(judge, x_test))
    big = best(lambda: models.judge_outputs(judge, x_test, batch_size=2048))
    rows.append(
        {
            "what": f"judge features 10,000 (batch {models.JUDGE_BATCH} vs 2,048)",
            "ours_s": ours,
            "batch_2048_s": big,
            "speedup": big / ours,
        }
    )

    encode_s, z_ae = _once(lambda: gen.encode(ae, x))
    z_vae = gen.encode(vae, x)
    rows.append({"what": "encode 60,000 (ae, latent 16)", "s": encode_s})
    latent = [
        ("LatentKDE", gen.LatentKDE(ae, bandwidth="scott"), z_ae, None),
        ("LatentGMM(10, full)", gen.LatentGMM(ae), z_ae, None),
        ("ClassConditionalGaussian", gen.ClassConditionalGaussian(ae), z_ae, y),
        ("LatentGMM on VAE", gen.LatentGMM(vae), z_vae, None),
        ("VAEPrior", gen.VAEPrior(vae), z_vae, None),
    ]
    for label, g, z, labels in latent:
        fit_s, _ = _once(lambda g=g, z=z, labels=labels: g.fit_latents(z, labels))
        draw_s = best(lambda g=g: g.sample_latents(N, 0))
        total_s = best(lambda g=g: g.sample(N, 0), repeat=2)
        rows.append(
            {
                "what": f"{label} sample 10,000",
                "fit_latents_s": fit_s,
                "sample_latents_s": draw_s,
                "sample_with_decode_s": total_s,
            }
        )

    zf = z_ae.astype(np.float64)
    rows.append(
        {
            "what": "sklearn GaussianMixture(10) fit, default threads",
            "s": _once(lambda: GaussianMixture(10, random_state=0).fit(zf))[0],
        }
    )

    grid = gen.bandwidth_grid(pixel.points_)
    rows.append(
        {
            "what": "pixel held-out loglik, 1,000 test x 60,000 centres",
            "one_bandwidth_s": _once(lambda: gen.held_out_loglik(pixel, mnist.x_test))[0],
            "sweep_10_s": _once(lambda: gen.held_out_loglik_sweep(pixel, mnist.x_test, grid))[0],
        }
    )
    rows.append(
        {
            "what": "cv_bandwidth over 10 candidates (1,000 val x 48,000 centres)",
            "pixel_s": _once(lambda: gen.cv_bandwidth(x, None, 0))[0],
            "pca50_s": _once(lambda: gen.cv_bandwidth(pca.points_, None, 0))[0],
            "latent16_s": _once(lambda: gen.cv_bandwidth(z_ae, None, 0))[0],
        }
    )
    return rows


if __name__ == "__main__":
    torch.set_num_threads(2)
    for row in run():
        print(row)
