"""Command groups of the ``mnistlab`` CLI, one module each."""

from __future__ import annotations

import importlib

import typer

# (module, name of the sub-app or command function, how it is mounted)
_GROUPS = [
    "data_cmd",
    "train_cmd",
    "evaluate_cmd",
    "judge_cmd",
    "sample_cmd",
    "study_cmd",
    "sweep_cmd",
]


def register_all(app: typer.Typer) -> None:
    """Mount every command group that exists; each module exposes ``register(app)``."""
    if getattr(app, "_mnistlab_mounted", False):
        return
    for name in _GROUPS:
        try:
            module = importlib.import_module(f"mnistlab.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mnistlab.commands.{name}":
                continue  # not written yet
            raise
        module.register(app)
    app._mnistlab_mounted = True  # type: ignore[attr-defined]
