"""The ``mnistlab`` command: parses arguments, calls one library function per command, prints.

Each command group lives in ``mnistlab/commands/<group>.py`` as a ``typer.Typer`` sub-app; this
module mounts them and turns every ``MnistlabError`` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import inspect
import re
import signal
import sys
import threading

import typer

try:  # typer >= 0.24 vendors click; older typer depends on it
    import typer._click as click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    import click
    from click.exceptions import ClickException, UsageError

from mnistlab.errors import MnistlabError

app = typer.Typer(
    name="mnistlab",
    help="Generate handwritten digits with density models; measure how good and how new they are.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _mount() -> None:
    from mnistlab.commands import register_all

    register_all(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"mnistlab {version('mnistlab')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Generate handwritten digits with density models; measure how good and how new they are."""


def _tidy_help(command: click.Command) -> None:
    """No ``<bool>`` beside a flag in the help, ``--help`` included: a flag takes no value.
    And a command's help as paragraphs: Rich keeps a docstring's line breaks, which cut a
    command's row in its group's list mid-sentence (``mnistlab judge --help``)."""
    if command.help:
        command.help = _paragraphs(command.help)
    help_option = command.get_help_option(click.Context(command))  # made once, then cached
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


def _paragraphs(text: str) -> str:
    """text with each paragraph's lines joined by spaces; paragraphs stay apart."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(text))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


class _Terminated(BaseException):
    """SIGTERM (``timeout``, ``docker stop``, CI): unwinds like Ctrl-C, so nothing is left
    half-written."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    _mount()
    args = sys.argv[1:] if argv is None else list(argv)
    command = typer.main.get_command(app)
    _tidy_help(command)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _run(command, args, argv)
    except _Terminated:
        print("mnistlab: terminated", file=sys.stderr)
        return _exit(143, argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(command: click.Command, args: list[str], argv: list[str] | None) -> int:
    try:
        # With standalone_mode=False, click returns the exit code of typer.Exit (and of Ctrl-C,
        # which it turns into Exit(130)) instead of raising it.
        rv = command.main(args=args, prog_name="mnistlab", standalone_mode=False)
    except MnistlabError as exc:
        print(f"mnistlab: error: {exc}", file=sys.stderr)
        return _exit(2, argv)
    except OSError as exc:  # an unwritable --out, a full disk: the system's words, one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"mnistlab: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return _exit(2, argv)
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return _exit(130, argv)
    except typer.Exit as exc:
        return _exit(exc.exit_code, argv)
    except typer.Abort:
        print("mnistlab: aborted", file=sys.stderr)
        return _exit(1, argv)
    except UsageError as exc:  # a bad option or value, a missing argument: one line too
        command = exc.ctx.command_path if exc.ctx is not None else "mnistlab"
        message = " ".join(exc.format_message().split())
        print(f"mnistlab: error: {message} (see '{command} --help')", file=sys.stderr)
        return _exit(exc.exit_code, argv)
    except ClickException as exc:
        exc.show()
        return _exit(exc.exit_code, argv)
    code = rv if isinstance(rv, int) else 0
    if code == 130:
        print("mnistlab: interrupted", file=sys.stderr)
    return _exit(code, argv)


def _exit(code: int, argv: list[str] | None) -> int:
    # As a console script (argv None) leave with the code; from tests, return it.
    if argv is None:
        sys.exit(code)
    return code
