"""All-or-nothing output folders that also work on mount points and under read-only parents.

A run writes everything into a hidden staging folder and only makes it the output at the
very end, so a failed, interrupted (Ctrl-C, SIGTERM, SIGHUP) or refused run leaves the
previous output untouched and no debris. Two ways to put the result in place, chosen
before anything is written (:func:`plan_output`):

``rename`` (the usual case: ``--out`` is missing, or an ordinary folder in a writable parent)
    Stage in the sibling ``PARENT/.NAME.partial-XXXX`` (same file system, so renames are
    atomic), then ``rename(out, .NAME.old-XXXX)`` + ``rename(partial, out)``: a reader sees
    the old folder or the new one, never a mix.
``swap`` (``--out`` is a mount point, e.g. a Docker volume or tmpfs, where renaming the
folder itself fails with EBUSY; or its parent is read-only while ``--out`` is writable)
    Stage inside the output, ``OUT/.edge_gru.partial-XXXX`` (the hidden name is the marker
    of an unfinished run), then move the old entries into ``OUT/.edge_gru.old-XXXX`` and
    the staged ones up into ``OUT``, one ``rename`` each; the parent is never written and
    the folder itself (its owner, mode and mount) stays.

The commit (a few renames) runs with SIGINT/SIGTERM/SIGHUP deferred by Python-level
handlers (which see the signal whichever thread the OS delivers it to): a signal arriving
then is acted on right after the output is complete.

Both ways replace the whole previous content of ``--out``; so that this never wipes
something precious, ``--out`` must be new, empty, or an earlier edge_gru output (marked by
the file :data:`MARKER` every output gets), must not hold the run's own inputs, and the
file-system root, the home folder, the working folder or one of its ancestors, and any
folder holding ``.git`` are refused.

:func:`check_output` runs the same checks without creating anything; a command calls it
before its long work (training, loading) so a bad ``--out`` fails in a second.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from .errors import EdgeGruError

SWAP_PREFIX = ".edge_gru"
MARKER = ".edge_gru_output"  # in every folder staged_output writes: safe to replace next time
MARKER_TEXT = "Written by edge_gru; the next run with --out here replaces this whole folder.\n"
# Signals a person or a supervisor uses to stop a run; each must leave no staging folder.
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as an exception so every ``finally`` and cleanup still runs.

    A :class:`KeyboardInterrupt` subclass: code that handles Ctrl-C handles it too, and
    ``except Exception`` in a stage cannot swallow it. ``exit_code`` is 128 + signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


@dataclass(frozen=True)
class OutputPlan:
    """How :func:`staged_output` will write ``out`` (absolute, symlinks resolved)."""

    out: Path
    mode: Literal["rename", "swap"]
    stage_in: Path  # the folder the staging folder is created in (out's parent, or out)
    missing_parents: tuple[Path, ...]  # folders to create first, outermost first


def _unwritable(folder: Path) -> str | None:
    """Why a process cannot create entries in ``folder``, or None when it can."""
    if os.access(folder, os.W_OK | os.X_OK):
        return None
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"


def _mount_points() -> set[str]:
    """Every mount point of this process (Linux ``/proc/self/mountinfo``, field 5)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(errors="surrogateescape").splitlines()
    except OSError:
        return set()
    # Spaces, tabs, newlines and backslashes are octal escapes there (\040 ...).
    unescape = re.compile(r"\\([0-7]{3})")
    return {
        unescape.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4])
        for line in lines
        if len(line.split()) > 4
    }


def is_mount_point(path: Path) -> bool:
    """True for a mount point, including a bind mount from the same file system."""
    return os.path.ismount(path) or str(path) in _mount_points()


def _refuse_precious(out: Path, shown: str) -> None:
    """Refuse folders whose whole content a run must never replace."""
    if out == Path(out.anchor):
        raise EdgeGruError(f"--out {shown} is the file-system root; choose an output folder")
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the working folder was deleted: nothing there to protect
        cwd = None
    if cwd is not None and (out == cwd or out in cwd.parents):
        raise EdgeGruError(
            f"--out {shown} would replace the current folder or one holding it; "
            "choose a dedicated output folder"
        )
    try:
        home = Path.home().resolve()
    except (KeyError, RuntimeError):  # no $HOME and no passwd entry
        home = None
    if out == home:
        raise EdgeGruError(f"--out {shown} is the home folder; choose a dedicated output folder")
    if (out / ".git").exists():
        raise EdgeGruError(f"--out {shown} holds a .git repository; it would be replaced whole")
    foreign = sorted(
        p.name for p in out.iterdir()
        if p.name != MARKER and not p.name.startswith(f"{SWAP_PREFIX}.")
    )
    if foreign and not (out / MARKER).is_file():
        shown_names = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise EdgeGruError(
            f"--out {shown} holds files edge_gru did not write ({shown_names}); a run "
            "replaces the whole folder: choose a new or empty folder"
        )


def _plan_missing(out: Path, shown: str) -> OutputPlan:
    """``out`` does not exist: its nearest existing ancestor must be a writable folder."""
    missing = [out]
    for ancestor in out.parents:
        if ancestor.is_dir():
            break
        missing.append(ancestor)
    else:  # pragma: no cover - the root always exists
        raise EdgeGruError(f"--out {shown}: no existing folder above it")
    reason = _unwritable(ancestor)
    if reason is not None:
        raise EdgeGruError(f"cannot create --out {shown} in {ancestor}: {reason}")
    parents = tuple(reversed(missing[1:]))
    return OutputPlan(out=out, mode="rename", stage_in=out.parent, missing_parents=parents)


def plan_output(out: Path) -> OutputPlan:
    """Decide how ``out`` will be written; raise :class:`EdgeGruError` (one line) if it cannot.

    Creates nothing. Checks, in order: each existing component above ``out`` is a folder;
    ``out`` is a folder if it exists; it is not a precious folder; and the place the
    staging folder goes (the parent, or ``out`` itself for the ``swap`` way) is writable.
    """
    shown = str(out)
    resolved = Path(os.path.abspath(out))
    # resolve() follows symlinks; a component that is a file stops it with ENOTDIR.
    try:
        resolved = resolved.resolve(strict=False)
    except OSError as exc:  # pragma: no cover - loops of symlinks
        raise EdgeGruError(f"--out {shown}: {exc.strerror or exc}") from exc
    for ancestor in reversed(resolved.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise EdgeGruError(f"--out {shown}: {ancestor} is not a directory")
    if not resolved.exists():
        return _plan_missing(resolved, shown)
    if not resolved.is_dir():
        raise EdgeGruError(f"--out {shown} exists and is not a directory")
    _refuse_precious(resolved, shown)
    parent = resolved.parent
    if not is_mount_point(resolved) and _unwritable(parent) is None:
        return OutputPlan(out=resolved, mode="rename", stage_in=parent, missing_parents=())
    reason = _unwritable(resolved)
    if reason is not None:
        raise EdgeGruError(f"--out {shown} is not writable: {reason}")
    return OutputPlan(out=resolved, mode="swap", stage_in=resolved, missing_parents=())


def check_output(out: Path, inputs: tuple[Path | None, ...] = ()) -> None:
    """Raise :class:`EdgeGruError` now if ``out`` cannot be written; creates nothing.

    ``inputs`` are the run's own files (model, data, recipe): none may lie inside ``out``,
    which the run replaces. Call it before training or loading so a bad ``--out`` costs a
    second, not a run.
    """
    plan = plan_output(Path(out))
    for item in inputs:
        if item is None:
            continue
        resolved = Path(os.path.abspath(item)).resolve(strict=False)
        if resolved == plan.out or plan.out in resolved.parents:
            raise EdgeGruError(
                f"--out {out} holds the input {item}; a run replaces the whole folder: "
                "choose another output folder"
            )


def _remove(path: Path) -> None:
    """Delete a staging or old folder; a second pass catches files a dying child just wrote."""
    for _ in range(2):
        if not os.path.lexists(path):
            return
        shutil.rmtree(path, ignore_errors=True)


class _DeferredSignals:
    """While active, stop signals are recorded instead of acted on.

    On a clean exit the first one is acted on afterwards if ``reraise`` (else dropped).
    """

    def __init__(self, reraise: bool) -> None:
        self.reraise = reraise
        self.pending: int | None = None
        self.saved: dict[int, Any] = {}

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        if self.pending is None:
            self.pending = signum

    def __enter__(self) -> _DeferredSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in _STOP_SIGNALS:
                previous = signal.getsignal(sig)
                if previous not in (signal.SIG_IGN, None):
                    self.saved[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self.saved.items():
            signal.signal(sig, previous)
        if self.reraise and self.pending is not None and exc[0] is None:
            _raise_for(self.pending, self.saved.get(self.pending))


def _raise_for(signum: int, handler: Any) -> None:
    """Act on a deferred signal as its handler would have."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL and signum == signal.SIGINT:
        raise KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        raise Terminated(signum)


@contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP (default: die on the spot) into :class:`Terminated` meanwhile."""
    saved: dict[int, Any] = {}

    def raise_terminated(signum: int, _frame: FrameType | None) -> None:
        raise Terminated(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in _STOP_SIGNALS:
            if sig != signal.SIGINT and signal.getsignal(sig) == signal.SIG_DFL:
                saved[sig] = signal.signal(sig, raise_terminated)
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def _move(src: Path, dst: Path) -> None:
    """``rename`` when on one file system (always, for the layouts above), else copy+delete."""
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(str(src), str(dst))


def _swap_contents(staged: Path, out: Path) -> None:
    """Replace the entries of ``out`` with those of ``staged``, undoing it all on an error."""
    old = Path(tempfile.mkdtemp(prefix=f"{SWAP_PREFIX}.old-", dir=out))
    done: list[tuple[Path, Path]] = []
    try:
        for entry in sorted(out.iterdir()):
            if entry not in (staged, old):
                _move(entry, old / entry.name)
                done.append((entry, old / entry.name))
        for entry in sorted(staged.iterdir()):
            _move(entry, out / entry.name)
            done.append((entry, out / entry.name))
    except OSError as exc:
        for src, dst in reversed(done):
            _move(dst, src)
        _remove(old)
        raise EdgeGruError(f"cannot put the output in place in {out}: {exc.strerror}") from exc
    _remove(staged)
    _remove(old)


def _commit_rename(staged: Path, out: Path) -> None:
    if not out.exists():
        staged.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    try:
        out.rename(old)
    except OSError as exc:
        # A mount point not listed in mountinfo (EBUSY), or a folder we may not move:
        # fall back to swapping the contents.
        if exc.errno not in (errno.EBUSY, errno.EPERM, errno.EACCES, errno.EXDEV):
            raise EdgeGruError(f"cannot replace --out {out}: {exc.strerror}") from exc
        _swap_contents_from_outside(staged, out)
        return
    try:
        staged.rename(out)
    except OSError as exc:
        old.rename(out)
        raise EdgeGruError(f"cannot rename the output into {out}: {exc.strerror}") from exc
    _remove(old)


def _swap_contents_from_outside(staged: Path, out: Path) -> None:
    """The ``swap`` commit for a staging folder beside ``out`` rather than inside it."""
    inner = Path(tempfile.mkdtemp(prefix=f"{SWAP_PREFIX}.partial-", dir=out))
    try:
        for entry in sorted(staged.iterdir()):
            _move(entry, inner / entry.name)
    except OSError as exc:
        _remove(inner)
        raise EdgeGruError(f"cannot put the output in place in {out}: {exc.strerror}") from exc
    _remove(staged)
    _swap_contents(inner, out)


def _make_parents(parents: tuple[Path, ...]) -> list[Path]:
    made = []
    for folder in parents:
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_made(made)
            raise EdgeGruError(f"cannot create {folder}: {exc.strerror}") from exc
        made.append(folder)
    return made


@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success its content becomes ``out``, else it vanishes.

    Raises :class:`EdgeGruError` (before yielding) when ``out`` cannot be written, with the
    messages of :func:`plan_output`. Inside the block SIGTERM/SIGHUP raise
    :class:`Terminated` (if their handler was the default), so stopping a run cleans up
    like Ctrl-C does; folders created above ``out`` for it are removed again on failure.
    """
    plan = plan_output(Path(out))
    made = _make_parents(plan.missing_parents)
    prefix = f".{plan.out.name}" if plan.mode == "rename" else SWAP_PREFIX
    try:
        staged = Path(tempfile.mkdtemp(prefix=f"{prefix}.partial-", dir=plan.stage_in))
        staged.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    except OSError as exc:
        _remove_made(made)
        raise EdgeGruError(f"cannot write --out {out} in {plan.stage_in}: {exc.strerror}") from exc
    with _terminate_as_exception():
        try:
            yield staged
            (staged / MARKER).write_text(MARKER_TEXT)
            with _DeferredSignals(reraise=True):
                if plan.mode == "rename":
                    _commit_rename(staged, plan.out)
                else:
                    _swap_contents(staged, plan.out)
        except BaseException:
            with _DeferredSignals(reraise=False):  # a second Ctrl-C must not stop the cleanup
                _remove(staged)
                _remove_made(made)
            raise


def _remove_made(made: list[Path]) -> None:
    """Remove the folders created above ``out`` (innermost first) if they are empty."""
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            return
