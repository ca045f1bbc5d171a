"""The latent flow (issue 11): training on 60,000 codes and sampling 10,000 digits, beside the
10-component GMM on the same codes, in the same run.

An untrained autoencoder of the flow's shape (``FLOW_AE``) stands in for the flow's trained one
(the timings do not depend on its weights; the flow itself is trained for real). ``FLOW_EPOCHS``
epochs are timed and the study's ``flow_epochs`` extrapolated from them, so `make bench` stays
short; the full training time is the generation study's own figure (its report and
metrics.json: flow.train_seconds).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from mnistlab import data, flow, models
from mnistlab import generators as gen
from mnistlab.catalog import FLOW_AE
from mnistlab.studies import generation

N = 10_000
FLOW_EPOCHS = 2
STUDY_EPOCHS = generation.GenerationConfig.flow_epochs


def run() -> list[dict]:
    mnist = data.load()
    torch.manual_seed(0)
    ae = models.get_model("ae", **FLOW_AE)
    z = gen.encode(ae, mnist.x_train)  # (60000, FLOW_AE's latent_dim)
    zs = ((z - z.mean(0)) / (z.std(0) + 1e-6)).astype(np.float32)
    y = mnist.y_train.astype(np.int64)

    t0 = time.perf_counter()
    net, _ = flow.train(zs, y, flow.FlowConfig(latent_dim=zs.shape[1], epochs=FLOW_EPOCHS))
    per_epoch = (time.perf_counter() - t0) / FLOW_EPOCHS
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, N)
    t0 = time.perf_counter()
    codes = flow.integrate(net, labels, rng, guidance=1.0, steps=20)
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    flow.integrate(net, labels, rng, guidance=1.5, steps=20)
    guided_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    models.decode(ae, codes)
    decode_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    gmm = gen.LatentGMM(ae, n_components=10, random_state=0).fit_latents(z)
    gmm_fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gmm.sample_latents(N, 0)
    gmm_sample_s = time.perf_counter() - t0
    return [
        {
            "what": f"flow training on 60,000 codes ({zs.shape[1]}-d), per epoch",
            "epoch_s": per_epoch,
            f"study_{STUDY_EPOCHS}_epochs_s": per_epoch * STUDY_EPOCHS,
            "gmm_10_fit_s": gmm_fit_s,
            "ratio": per_epoch * STUDY_EPOCHS / gmm_fit_s,
        },
        {
            "what": "10,000 codes from the flow (20 Heun steps), then decoded",
            "w1_s": plain_s,
            "w1.5_s": guided_s,
            "decode_s": decode_s,
            "gmm_10_sample_s": gmm_sample_s,
            "target_30s_met": guided_s + decode_s <= 30,
        },
    ]
