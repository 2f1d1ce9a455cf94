"""All-or-nothing output folders: build in a sibling temp folder, rename into place at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EdgeGruError


@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """Yield a temp folder beside ``out``; on success it replaces ``out``, on any error it vanishes.

    The temp folder is a sibling so the final rename stays on one file system.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgeGruError(f"--out {out} exists and is not a folder")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    except OSError as exc:
        raise EdgeGruError(f"cannot create output folder in {parent}: {exc.strerror}") from exc
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
        old.rmdir()
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
