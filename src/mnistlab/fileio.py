"""Files written whole or not at all: atomic writes, output folders, locks on cache entries.

Every file mnistlab writes goes through ``atomic_write`` (or ``atomic_path`` for libraries that
want a path, such as ``np.savez`` and safetensors): a temporary file in the destination folder,
``os.replace`` into place, and the mode the user's umask gives a new file. A study's output folder
is an ``OutputFolder``: claimed before the work starts (create-exclusive, so two runs never share
one), filled in a hidden temporary folder beside it, and renamed into place only when complete.
``entry_lock`` serialises the training of one cache entry across processes (``filelock``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import filelock

from mnistlab.errors import MnistlabError

__all__ = [
    "OutputFolder",
    "atomic_path",
    "atomic_write",
    "check_writable_folder",
    "entry_lock",
    "new_file_mode",
]

_umask_lock = threading.Lock()


def new_file_mode(executable: bool = False) -> int:
    """The mode ``open()`` would give a new file (0o666 less the umask; 0o777 for folders)."""
    with _umask_lock:  # reading the umask means setting it: keep other threads out meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return (0o777 if executable else 0o666) & ~mask


def _cannot(path: Path, exc: OSError) -> MnistlabError:
    """One line: which path could not be written, and the system's reason (and its file)."""
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return MnistlabError(f"cannot write to {path}: {exc.strerror or exc}{where}")


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name, so the one-line error says where it happened."""
    if exc.filename:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends cleanly it becomes ``path``.

    The temporary file is removed if the block raises (Ctrl-C included). The file gets the mode
    the umask gives new files, whatever the writer used (``mkstemp`` and safetensors make it 600).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise _named(exc, path) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        raise _named(exc, path) from None
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], data: bytes | Callable[[Path], None]) -> Path:
    """Write ``data`` (bytes, or a function that writes a given path) to ``path`` atomically.

    The parent folders are created; a disk-full or permission error names ``path``.
    Returns ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if callable(data):
            data(tmp)
            with open(tmp, "rb+") as fh:  # on disk before the rename, as the bytes case below
                os.fsync(fh.fileno())
        else:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    return path


def check_writable_folder(folder: str | os.PathLike[str], what: str = "folder") -> Path:
    """Create ``folder`` if needed and prove it writable by writing a file there; else one line.

    Checks by trying, not with ``os.access``, which says yes to root on a read-only mount.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MnistlabError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise MnistlabError(f"{what} {folder} is not writable: {exc.strerror or exc}") from None
    return folder


def entry_lock(path: str | os.PathLike[str], timeout: float = -1) -> filelock.FileLock:
    """A lock file beside cache entry ``path``: one process trains it, the others wait and load.

    Hold it with ``with entry_lock(path): ...``; it is released when the process dies.
    """
    path = Path(path)
    return filelock.FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout)


# ---- output folders --------------------------------------------------------------------------

PART_MARK = ".part-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _part_prefix() -> str:
    """``.part-<host>-<pid>-``: a killed run's part-folder is swept only by a run on its host."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
    return f"{PART_MARK}{host}-{os.getpid()}-"


class OutputFolder:
    """A command's output folder, claimed at once and filled all at once.

    ``with OutputFolder(out, "generation") as tmp: write everything into tmp``. With ``out`` None
    the folder is ``runs/<YYYYmmdd-HHMMSS>-<name>``, claimed by creating it (a name already taken,
    by a run started in the same second, gets ``-2``, ``-3``...). A user's ``out`` that is a file or
    cannot be written fails before any work. The files go to a hidden part-folder inside the
    target (so a mount point, a symlink or ``.`` work, and nothing crosses a file system); when
    the block ends cleanly each of them replaces the entry of the same name in the target, and
    nothing else there is touched. If the block raises (Ctrl-C and SIGTERM included), the
    part-folder is removed and a folder this run created is removed again. Part-folders of killed
    runs on this host are removed by the next run into the same place.
    """

    def __init__(self, out: str | os.PathLike[str] | None, name: str, runs: str = "runs") -> None:
        self.given = out is not None
        self.path = Path(out) if out is not None else Path(runs)
        self.name = name
        self.tmp: Path | None = None
        self._claimed = False  # this run created self.path and removes it on failure

    def __enter__(self) -> Path:
        if self.given:
            self._check_given()
        else:
            self._claim_default()
        self._sweep_stale(self.path)
        try:
            self.tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=_part_prefix()))
            os.chmod(self.tmp, new_file_mode(executable=True))
        except OSError as exc:
            self._release()
            raise _cannot(self.path, exc) from None
        return self.tmp

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self._release()
            if isinstance(exc, OSError) and exc.filename and str(self.tmp) in str(exc.filename):
                # Name the file the user will look for, not the hidden part-folder.
                final = str(exc.filename).replace(str(self.tmp), str(self.path))
                raise type(exc)(exc.errno, exc.strerror or str(exc), final) from None
            return
        try:
            self._move_into_place()
        except OSError as err:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self._release()
            raise _named(err, self.path) from None

    def final(self, inner: str | os.PathLike[str]) -> Path:
        """Where a path inside the part-folder lands once it is moved into place."""
        assert self.tmp is not None
        return self.path / Path(inner).relative_to(self.tmp)

    # -- the steps --

    def _check_given(self) -> None:
        path = self.path
        for parent in (path, *path.parents):
            if parent.exists() and not parent.is_dir():
                what = "--out" if parent == path else "in --out's path,"
                raise MnistlabError(f"{what} {parent} is a file, not a folder")
            if parent.exists():
                break
        if path.is_dir():
            check_writable_folder(path, "--out")
            return
        try:
            path.mkdir(parents=True)
            self._claimed = True
        except FileExistsError:
            if not path.is_dir():
                raise MnistlabError(f"--out {path} is a file, not a folder") from None
        except OSError as exc:
            raise _cannot(path, exc) from None

    def _claim_default(self) -> None:
        runs = self.path
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            runs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _cannot(runs, exc) from None
        self._sweep_runs(runs)
        for i in range(1, 1000):
            candidate = runs / (f"{stamp}-{self.name}" + (f"-{i}" if i > 1 else ""))
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise _cannot(candidate, exc) from None
            self.path, self._claimed = candidate, True
            return
        raise MnistlabError(f"no free output folder name for {stamp}-{self.name} in {runs}")

    def _move_into_place(self) -> None:
        """Each entry of the part-folder replaces the entry of the same name in the target."""
        assert self.tmp is not None
        for entry in sorted(self.tmp.iterdir()):
            target = self.path / entry.name
            if entry.is_dir() and target.is_dir() and not target.is_symlink():
                # A folder (figures/) is swapped whole: rename the old one away, then remove it.
                old = Path(tempfile.mkdtemp(dir=self.path, prefix=_part_prefix() + "old-"))
                os.rename(target, old / entry.name)
                os.rename(entry, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(entry, target)
        self.tmp.rmdir()

    def _release(self) -> None:
        if self._claimed:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only if still empty

    @staticmethod
    def _sweep_stale(folder: Path) -> None:
        """Remove part-folders in ``folder`` left by runs on this host that were killed."""
        host_prefix = _part_prefix().rsplit("-", 2)[0] + "-"  # ".part-<host>-"
        try:
            entries = list(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            if not entry.name.startswith(host_prefix) or not entry.is_dir():
                continue
            pid = entry.name[len(host_prefix) :].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)

    @classmethod
    def _sweep_runs(cls, runs: Path) -> None:
        """In ``runs/``: sweep killed runs' part-folders, drop the folders they left empty."""
        try:
            folders = [f for f in runs.iterdir() if f.is_dir() and not f.is_symlink()]
        except OSError:
            return
        for folder in folders:
            try:
                had_parts = any(e.name.startswith(PART_MARK) for e in folder.iterdir())
            except OSError:
                continue
            if had_parts:
                cls._sweep_stale(folder)
                with contextlib.suppress(OSError):
                    folder.rmdir()  # empty now: a killed run's claimed name
