"""``mnistlab sample GENERATOR``: digits on demand, as a .npy array or a folder of PNGs."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from mnistlab.catalog import CATALOG
from mnistlab.commands import options

_HELP = (
    "Write N new digits from a generator, fitted on the data set's training digits (its "
    "autoencoder trained once, then cached). GENERATOR is one of: "
    + "; ".join(
        f"{e.name} ({e.label}{', --setting ' + e.setting if e.setting else ''}"
        f"{', --digit' if e.conditional else ''})"
        for e in CATALOG.values()
    )
    + ". --out FILE.npy writes one float32 array (N, 28, 28) in [0, 1]; --out DIR writes "
    "DIR/00000.png ... (28x28 grey)."
)


def register(app: typer.Typer) -> None:
    app.command("sample", help=_HELP)(sample)


def sample(
    generator: Annotated[str, typer.Argument(help="One of: " + ", ".join(CATALOG) + ".")],
    out: Annotated[Path, typer.Option("--out", help="FILE.npy or a folder for PNG files.")],
    n: Annotated[
        int, typer.Option("--n", "-n", min=1, max=options.SAMPLES_MAX, help="How many digits.")
    ] = 100,
    setting: Annotated[
        str | None,
        typer.Option("--setting", help="The generator's hyperparameter (see above)."),
    ] = None,
    digit: Annotated[
        int | None,
        typer.Option("--digit", min=0, max=9, help="Only this digit (flow, ae-class-gaussians)."),
    ] = None,
    seed: options.Seed = 0,
    data_dir: options.Data = None,
    device: options.Device = "auto",
    progress: options.Progress = True,
) -> None:
    from mnistlab import catalog, data
    from mnistlab.errors import MnistlabError
    from mnistlab.fileio import OutputFolder, atomic_write, check_writable_folder

    options.use_device(device)
    entry = catalog.entry(generator)
    if digit is not None and not entry.conditional:
        conditional = ", ".join(e.name for e in CATALOG.values() if e.conditional)
        raise MnistlabError(f"{generator} cannot make one digit on demand; {conditional} can")
    as_array = out.suffix.lower() == ".npy"
    if as_array:
        if out.is_dir():
            raise MnistlabError(f"--out {out} is a folder; name a .npy file or a new folder")
        check_writable_folder(out.parent, "--out folder")
    elif out.suffix:
        raise MnistlabError(f"--out must be FILE.npy or a folder, got {str(out)!r}")
    # A folder is claimed before the work and filled all at once; a .npy is written atomically.
    folder = contextlib.nullcontext() if as_array else OutputFolder(out, "samples")
    with folder as tmp:
        dataset = data.load(data_dir)
        model = catalog.fitted(
            generator, dataset, setting, seed=seed, progress=progress, digit=digit
        )
        kwargs = {} if digit is None else {"digit": digit}
        images = model.sample(n, seed, **kwargs)
        if as_array:
            atomic_write(out, lambda tmp_path: _save_npy(tmp_path, images))
        else:
            _save_pngs(tmp, images)
    what = f"digits, all {digit}s," if digit is not None else "digits"
    typer.echo(f"{n} {what} from {entry.label} ({model.setting() or 'default'}): {out}")


def _save_npy(path: Path, images: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would add .npy to a name
        np.save(fh, images.astype(np.float32))


def _save_pngs(folder: Path, images: np.ndarray) -> None:
    from PIL import Image

    from mnistlab.images import to_uint8

    for i, img in enumerate(to_uint8(images)):
        Image.fromarray(img).save(folder / f"{i:05d}.png")
