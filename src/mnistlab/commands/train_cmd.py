"""``mnistlab train {judge,classifier,ae,vae,sae}``: train a model (or take it from the cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mnistlab.commands import options
from mnistlab.errors import MnistlabError

RECON_FIGURES = (("mse", "MSE", "{:.5f}"), ("bce", "BCE", "{:.5f}"), ("psnr", "PSNR", "{:.2f} dB"))


def format_test(name: str, test: dict[str, float]) -> str:
    """One line of final test figures: accuracy for the classifier, MSE/BCE/PSNR otherwise
    (and the code head's accuracy for the supervised autoencoder)."""
    if name in ("classifier", "judge"):
        return f"test accuracy {100 * test['accuracy']:.2f}%"
    shown = [f"{label} {fmt.format(test[k])}" for k, label, fmt in RECON_FIGURES if k in test]
    if "accuracy" in test:
        shown.append(f"head accuracy {100 * test['accuracy']:.2f}%")
    return "test " + ", ".join(shown)


def check_out_file(out: Path) -> None:
    """Refuse an ``--out`` that could not take the weights and their JSON sidecar, before the
    training rather than after it."""
    from mnistlab import store
    from mnistlab.fileio import check_writable_folder

    if out.suffix != ".safetensors":
        # The JSON sidecar takes the same name with .json: any other suffix could clash with it.
        raise MnistlabError(f"--out must name a .safetensors file, got {str(out)!r}")
    for path in (out, store.sidecar(out)):
        if path.is_dir():
            raise MnistlabError(f"--out: {path} is a folder; the model needs a file there")
    check_writable_folder(out.parent, "--out folder")


def train(
    model: Annotated[
        str,
        typer.Argument(
            help="judge, classifier, ae (autoencoder), vae or sae (supervised autoencoder)."
        ),
    ],
    latent_dim: Annotated[
        int | None,
        typer.Option(
            "--latent-dim", min=1, max=options.LATENT_MAX, help="Latent size (ae, vae, sae)."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            max=options.EPOCHS_MAX,
            help="Training epochs (default: the model's own).",
        ),
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option(
            "--noise",
            min=0.0,
            max=options.NOISE_MAX,
            help="Train as a denoiser: the noise factor of its inputs (ae, vae, sae).",
        ),
    ] = None,
    seed: options.Seed = 0,
    data_dir: options.Data = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Also write the model to FILE (.safetensors, its .json beside it)."
        ),
    ] = None,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train even if a cached model exists.")
    ] = False,
    device: options.Device = "auto",
    progress: options.Progress = True,
) -> None:
    """Train a model on the data set (cached by config, data and seed) and print test figures."""
    options.use_device(device)
    from mnistlab import data, models, store, training

    if model not in models.list_models():
        raise MnistlabError(
            f"unknown model {model!r}: not one of {', '.join(models.list_models())}"
        )
    recon = model not in ("classifier", "judge")
    if not recon and (latent_dim is not None or noise is not None):
        raise MnistlabError("--latent-dim and --noise apply to ae, vae and sae only")
    if out is not None:
        check_out_file(out)
    dataset = data.load(data_dir)
    model_config: dict[str, Any] = {"latent_dim": latent_dim} if latent_dim is not None else {}
    overrides: dict[str, Any] = {"seed": seed}
    if epochs is not None:
        overrides["epochs"] = epochs
    if noise is not None:
        overrides["noise_factor"] = noise
    train_config = training.default_train_config(model, **overrides)
    net, meta = store.get_trained(
        model, dataset, model_config, train_config, retrain=retrain, progress=progress
    )

    cmd = ["mnistlab", "train", model]
    if latent_dim is not None:
        cmd += ["--latent-dim", str(latent_dim)]
    cmd += ["--epochs", str(train_config.epochs)]
    if noise is not None:
        cmd += ["--noise", str(noise)]
    cmd += ["--seed", str(seed)]
    if data_dir is not None:
        cmd += ["--data", str(data_dir)]
    where = meta.pop("path")
    cached, resumed = meta.pop("cached", False), meta.pop("resumed_from", 0)
    if out is not None:
        cmd += ["--out", str(out)]
        meta["command"] = " ".join(cmd)
        where = str(store.save_model(out, net, meta))

    epochs_run = len(meta["history"])
    seconds = sum(row["seconds"] for row in meta["history"])
    how = "from the cache" if cached else f"resumed from epoch {resumed}" if resumed else "trained"
    typer.echo(
        f"{model} on {dataset.name} (seed {seed}), {how}: {epochs_run} epochs, "
        f"best {meta['best_epoch']}, {seconds:.0f} s of training"
    )
    typer.echo(format_test(model, meta["test"]))
    typer.echo(f"model: {where}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
