"""Training speed: our trainer against the plain way, and time to the quality targets.

The plain way is the loop most tutorials write: a DataLoader over a TensorDataset of float images,
shuffled, the same model, optimiser and loss. Both process the same number of images; the ratio is
measured in the same run. Then the default settings of the judge and of the 16-d autoencoder are
trained on the bundled MNIST, the test figure measured after every epoch, and the training time
(evaluation excluded) to reach the issue's target is reported.

    .venv/bin/python benchmarks/train_bench.py [--quick]

Never imported by the test suite.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from mnistlab import data, models, training

TARGETS = {"classifier": ("accuracy", 0.993, 180.0), "ae": ("mse", 0.010, 120.0)}


def _throughput(name: str, ds: data.Dataset, n_images: int, seed: int = 0) -> dict[str, Any]:
    """Images/s of one pass over ``n_images`` training images: ours vs a DataLoader loop."""
    cfg = training.default_train_config(name, seed=seed)
    x_u8 = torch.from_numpy(np.array(ds.x_train[:n_images]))  # (n, 28, 28) uint8
    y = torch.from_numpy(ds.y_train[:n_images].astype(np.int64))

    torch.manual_seed(seed)
    model = models.get_model(name)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    training.train_one_epoch(model, opt, x_u8, y, cfg, gen, 0, 10**6, progress=False)
    ours = n_images / (time.perf_counter() - t0)

    torch.manual_seed(seed)
    model = models.get_model(name)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    x_f = torch.from_numpy(data.to_float(ds.x_train[:n_images]))  # (n, 1, 28, 28) float32
    loader = DataLoader(TensorDataset(x_f, y), batch_size=cfg.batch_size, shuffle=True)
    model.train()
    t0 = time.perf_counter()
    for xb, yb in loader:
        loss = model.loss_terms(xb, xb, yb, cfg.recon_loss)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    plain = n_images / (time.perf_counter() - t0)
    return {
        "figure": f"{name} training throughput",
        "images": n_images,
        "ours_images_per_s": round(ours),
        "plain_images_per_s": round(plain),
        "ratio": round(ours / plain, 2),
    }


def _time_to_target(name: str, ds: data.Dataset, seed: int = 0) -> dict[str, Any]:
    """Train the default setting; after each epoch measure the test figure (not timed)."""
    metric, target, budget = TARGETS[name]
    cfg = training.default_train_config(name, seed=seed)
    torch.manual_seed(seed)
    model = models.get_model(name)
    x_te = torch.from_numpy(np.array(ds.x_test))
    y_te = torch.from_numpy(ds.y_test.astype(np.int64))
    curve: list[tuple[int, float, float]] = []  # (epoch, training seconds so far, test figure)
    trained = 0.0

    def after_epoch(epoch: int, row: dict[str, float]) -> None:
        nonlocal trained
        trained += row["seconds"]
        figure = training.evaluate(model, x_te, y_te, cfg)[metric]
        curve.append((epoch, trained, figure))
        print(f"  {name} epoch {epoch}: {trained:.0f} s, test {metric} {figure:.4f}", flush=True)

    result = training.fit(model, ds, cfg, progress=False, on_epoch_end=after_epoch)
    better = (lambda v: v >= target) if metric == "accuracy" else (lambda v: v <= target)
    hit = next(((e, s) for e, s, v in curve if better(v)), None)
    return {
        "figure": f"{name} time to test {metric} {'>=' if metric == 'accuracy' else '<='} {target}",
        "epochs_to_target": hit[0] if hit else None,
        "seconds_to_target": round(hit[1], 1) if hit else None,
        "budget_s": budget,
        "met": bool(hit and hit[1] <= budget),
        "final_test": round(result.test[metric], 5),
        "images_per_s": round(np.mean([r["images_per_s"] for r in result.history])),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """All figures as a list of dicts (one per line of the printed table)."""
    torch.set_num_threads(2)
    ds = data.load()
    n = 10_000 if quick else 30_000
    rows = [_throughput("classifier", ds, n), _throughput("ae", ds, n)]
    if not quick:
        rows += [_time_to_target("classifier", ds), _time_to_target("ae", ds)]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="throughput only, fewer images")
    args = parser.parse_args()
    for row in run(quick=args.quick):
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
