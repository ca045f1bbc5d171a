"""``mnistlab data verify | info | download``: check, describe and fetch MNIST-format data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mnistlab import datasource
from mnistlab.errors import DataError

app = typer.Typer(help="Check, describe and download MNIST-format data.", no_args_is_help=True)

DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Folder of the four IDX files (default: the bundled MNIST)."),
]


def register(root: typer.Typer) -> None:
    """Mount the ``data`` group on the ``mnistlab`` app."""
    root.add_typer(app, name="data")


_VERIFY_HELP = (
    "Compare each file's decompressed SHA-256 with the official MNIST checksums, one line per "
    "file (OK or MISMATCH). Exit 0 when all four match. A folder that is a valid MNIST-format data "
    "set but not the official MNIST (another data set, or a damaged copy that still parses) is "
    "reported as such and exits 2, unless --allow-other is given. A folder that cannot be read as "
    "a data set always exits 2. Checksums are cached by path, inode, size, mtime and ctime; "
    "--no-cache reads and hashes every file again."
)


@app.command(help=_VERIFY_HELP)
def verify(
    data: DataOption = None,
    allow_other: Annotated[
        bool,
        typer.Option(
            "--allow-other",
            help="Exit 0 for a valid MNIST-format data set that is not the official MNIST.",
        ),
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Hash every file again; trust no cached verdict.")
    ] = False,
) -> None:
    """Check a folder against the official MNIST checksums (see ``_VERIFY_HELP``)."""
    result = datasource.verify(data, use_cache=not no_cache)
    for check in result.files:
        status = "OK" if check.ok else "MISMATCH"
        typer.echo(f"{status:<9} {check.path.name}  sha256 {check.sha256}")
    if result.is_mnist:
        typer.echo(f"{result.folder}: all 4 files match the official MNIST")
        return
    n_bad = sum(not c.ok for c in result.files)
    head = f"{result.folder}: {n_bad} of 4 files differ from the official MNIST checksums"
    if not result.is_valid:
        raise DataError(f"{head}, and it is not a usable data set: {result.problem}")
    verdict = f"{head}; it is a valid MNIST-format data set, but not the official MNIST"
    if allow_other:
        typer.echo(verdict)
        return
    raise DataError(f"{verdict} (--allow-other accepts it)")


@app.command()
def info(
    data: DataOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Counts per split and per class, image size, pixel statistics, checksum."""
    facts = datasource.info(data)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    train, test = facts["splits"]["train"], facts["splits"]["test"]
    rows, cols = facts["image_size"]
    lines = [
        f"data set        {facts['source']} ({facts['name']})",
        f"official MNIST  {'yes' if facts['is_mnist'] else 'no'}",
        f"checksum        {facts['checksum']}",
        f"image size      {rows}x{cols}",
        f"{'':15} {'train':>9} {'test':>9}",
        f"{'images':15} {train['count']:>9} {test['count']:>9}",
    ]
    for digit in map(str, range(10)):
        a, b = train["per_class"][digit], test["per_class"][digit]
        lines.append(f"{'  digit ' + digit:15} {a:>9} {b:>9}")
    lines.append("pixels, 0-1 scale")
    for key in ("mean", "std", "min", "max", "zero_share"):
        a, b = train["pixels"][key], test["pixels"][key]
        lines.append(f"{'  ' + key.replace('_', ' '):15} {a:>9.4f} {b:>9.4f}")
    typer.echo("\n".join(lines))


_DOWNLOAD_HELP = (
    "Download the official MNIST files into DEST from the public mirrors (tried in order, with "
    "retries) or from OpenML. Files already in DEST and valid are kept. Each file goes to a "
    "temporary name and is moved into place only once its decompressed SHA-256 matches, so "
    "nothing is left half-written."
)


@app.command(help=_DOWNLOAD_HELP)
def download(
    dest: Annotated[Path, typer.Argument(help="Folder to put the four .gz files in.")],
    source: Annotated[
        str, typer.Option("--source", help="'mirrors' (the public MNIST mirrors) or 'openml'.")
    ] = "mirrors",
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            "--base-url",
            help="A mirror to try instead of the usual ones (repeat for several, tried in order).",
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", min=1, max=100, help="Attempts per mirror.")
    ] = 3,
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline", min=1.0, max=86_400.0, help="Seconds for the whole download, all tries."
        ),
    ] = datasource.DEADLINE,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Fetch the official MNIST into ``dest`` (see ``_DOWNLOAD_HELP``)."""
    fetched = datasource.download(
        dest,
        source=source,
        base_urls=base_url,
        retries=retries,
        deadline=deadline,
        progress=progress,
    )
    for item in fetched:
        where = f" from {item.url}" if item.url else ""
        typer.echo(f"{item.action:<10} {item.path}{where}")
    typer.echo(f"{dest}: the official MNIST, ready for --data {dest}")
