"""Output folders: all-or-nothing, on mount points and under read-only parents, no debris.

The mount cases use real tmpfs mounts (root bypasses permission bits, so a read-only
folder has to be a read-only file system); they need root and skip elsewhere (in CI,
which runs as root, a failed mount fails the test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import missing

from edge_gru.errors import EdgeGruError
from edge_gru.outdir import (
    MARKER,
    MARKER_TEXT,
    Terminated,
    check_output,
    is_mount_point,
    plan_output,
    staged_output,
)

REPO = Path(__file__).resolve().parent.parent
Mount = Callable[..., Path]


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (hidden ones included, the output marker left out), sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name != MARKER)


def previous_output(out: Path) -> Path:
    """An earlier edge_gru output folder: it carries the marker every output gets."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(MARKER_TEXT)
    return out


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """``mount(folder, "ro")`` mounts a 4 MB tmpfs on ``folder`` (``bind=src``: binds ``src``).

    Everything is unmounted after the test.
    """
    if os.geteuid() != 0:
        missing("mount tests need root (CI runs as root): read-only needs a real mount")
    done: list[Path] = []

    def do_mount(folder: Path, *options: str, bind: Path | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        opts = ",".join(("size=4m", *options))
        argv = (
            ["mount", "--bind", str(bind), str(folder)]
            if bind is not None
            else ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)]
        )
        run = subprocess.run(argv, capture_output=True, text=True)
        if run.returncode != 0:
            missing(f"cannot mount a tmpfs here: {run.stderr.strip()}")
        done.append(folder)
        return folder

    yield do_mount
    for folder in reversed(done):
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def remount_ro(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


# --- the ordinary case: a folder in a writable parent ---------------------------------


def test_new_output_appears_whole_and_leaves_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "build"
    check_output(out)
    assert tree(tmp_path) == []  # the check creates nothing, not even the parents
    with staged_output(out) as tmp:
        assert plan_output(out).mode == "rename" and tmp.parent == out.parent
        (tmp / "report.json").write_text("{}")
        assert not out.exists()  # nothing visible until the end
    assert tree(tmp_path) == ["a", "a/b", "a/b/build", "a/b/build/report.json"]
    assert oct(out.stat().st_mode & 0o777) == "0o755"


def test_failure_keeps_previous_output_and_removes_created_parents(tmp_path: Path) -> None:
    out = tmp_path / "build"
    previous_output(out)
    (out / "keep.txt").write_text("previous run")
    with pytest.raises(RuntimeError), staged_output(out) as tmp:
        (tmp / "half.txt").write_text("half-written")
        raise RuntimeError("stage crashed")
    assert tree(tmp_path) == ["build", "build/keep.txt"]
    with staged_output(out) as tmp:
        (tmp / "new.txt").write_text("complete")
    assert tree(tmp_path) == ["build", "build/new.txt"]
    deep = tmp_path / "x" / "y" / "out"
    with pytest.raises(RuntimeError), staged_output(deep):
        raise RuntimeError("failed before writing")
    assert tree(tmp_path) == ["build", "build/new.txt"]  # x/ and x/y/ were removed again


def test_symlinked_output_replaces_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    previous_output(real)
    (real / "old.txt").write_text("old")
    link = tmp_path / "link"
    link.symlink_to(real)
    with staged_output(link) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and tree(real) == ["new.txt"]


@pytest.mark.parametrize(
    ("make", "given", "message"),
    [
        (lambda d: (d / "file").write_text("x"), "file/sub", "file is not a directory"),
        (lambda d: (d / "file").write_text("x"), "file/a/b", "file is not a directory"),
        (lambda d: (d / "file").write_text("x"), "file", "exists and is not a directory"),
        (lambda d: (d / "repo" / ".git").mkdir(parents=True), "repo", "holds a .git"),
    ],
)
def test_bad_output_is_one_line_and_creates_nothing(
    tmp_path: Path, make: Callable[[Path], object], given: str, message: str
) -> None:
    make(tmp_path)
    before = tree(tmp_path)
    for attempt in (check_output, lambda p: staged_output(p).__enter__()):
        with pytest.raises(EdgeGruError, match=message) as caught:
            attempt(tmp_path / given)
        assert "\n" not in str(caught.value) and str(caught.value).startswith("--out ")
    assert tree(tmp_path) == before


def test_a_folder_edge_gru_did_not_write_is_refused(tmp_path: Path) -> None:
    """A run replaces --out whole: a user's own folder (or their inputs in it) is never wiped."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "model.keras").write_text("my model")
    with pytest.raises(
        EdgeGruError, match=r"holds files edge_gru did not write \(model.keras, notes.txt\)"
    ):
        check_output(mine)
    empty = tmp_path / "empty"
    empty.mkdir()
    check_output(empty)  # an empty folder is fine
    with staged_output(empty) as tmp:
        (tmp / "report.json").write_text("{}")
    assert (empty / MARKER).read_text() == MARKER_TEXT  # ... and is an output from now on
    check_output(empty)
    (empty / "data.npz").write_text("x")
    with pytest.raises(EdgeGruError, match="holds the input"):
        check_output(empty, (None, empty / "data.npz"))
    assert tree(tmp_path) == [
        "empty",
        "empty/data.npz",
        "empty/report.json",
        "mine",
        "mine/model.keras",
        "mine/notes.txt",
    ]


def test_working_folder_and_its_ancestors_are_refused(tmp_path: Path, monkeypatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for given in (".", "", str(tmp_path), "/"):
        with pytest.raises(EdgeGruError, match="current folder|file-system root"):
            check_output(Path(given))
    check_output(Path("build"))  # a folder inside it is fine


# --- mount points and read-only file systems (root) -------------------------------------


def test_mount_point_output_is_swapped_in_place(tmp_path: Path, mount: Mount) -> None:
    out = previous_output(mount(tmp_path / "volume"))
    (out / "old.txt").write_text("previous run")
    (out / "old_dir").mkdir()
    assert is_mount_point(out) and plan_output(out).mode == "swap"
    with pytest.raises(RuntimeError), staged_output(out) as tmp:
        assert tmp.parent == out  # staged on the mount's own file system
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert tree(out) == ["old.txt", "old_dir"]
    with staged_output(out) as tmp:
        (tmp / "report.json").write_text("{}")
        (tmp / "tflm").mkdir()
        (tmp / "tflm" / "model.h").write_text("//")
    assert tree(out) == ["report.json", "tflm", "tflm/model.h"]
    assert is_mount_point(out)  # still the same mount, not a folder renamed over it
    assert tree(tmp_path) == ["volume", *(f"volume/{p}" for p in tree(out))]


def test_bind_mount_on_the_same_file_system_is_seen(tmp_path: Path, mount: Mount) -> None:
    """os.path.ismount misses it (same device); /proc/self/mountinfo names it (escaped)."""
    source = tmp_path / "source"
    source.mkdir()
    out = mount(tmp_path / "my volume", bind=source)
    assert not os.path.ismount(out) and is_mount_point(out)
    assert plan_output(out).mode == "swap"
    with staged_output(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert tree(source) == ["new.txt"]


def test_undetected_mount_point_falls_back_to_swap(
    tmp_path: Path, mount: Mount, monkeypatch
) -> None:
    """If detection misses a mount (rename mode chosen), EBUSY at commit still succeeds."""
    import edge_gru.outdir as outdir

    out = previous_output(mount(tmp_path / "volume"))
    (out / "old.txt").write_text("previous run")
    monkeypatch.setattr(outdir, "is_mount_point", lambda _p: False)
    assert plan_output(out).mode == "rename"
    with staged_output(out) as tmp:
        assert tmp.parent == tmp_path
        (tmp / "new.txt").write_text("new")
    assert tree(out) == ["new.txt"] and tree(tmp_path) == ["volume", "volume/new.txt"]


def test_writable_output_under_read_only_parent(tmp_path: Path, mount: Mount) -> None:
    parent = mount(tmp_path / "ro")
    out = previous_output(mount(parent / "out"))
    (out / "old.txt").write_text("old")
    remount_ro(parent)
    with pytest.raises(OSError):
        (parent / "probe").write_text("x")  # the parent really is read-only
    check_output(out)
    with staged_output(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert tree(out) == ["new.txt"]
    with pytest.raises(EdgeGruError, match=r"cannot create --out .*: read-only file system"):
        check_output(parent / "other" / "out")


def test_read_only_output_fails_before_any_work(tmp_path: Path, mount: Mount) -> None:
    out = mount(tmp_path / "ro_out", "ro")
    with pytest.raises(EdgeGruError, match=r"is not writable: read-only file system$"):
        check_output(out)
    with pytest.raises(EdgeGruError, match="not writable"), staged_output(out):
        pytest.fail("the block must not run")
    assert tree(tmp_path) == ["ro_out"]


# --- signals: a stopped run leaves nothing behind --------------------------------------

CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from edge_gru.outdir import staged_output, Terminated
out = Path(sys.argv[1])
try:
    with staged_output(out) as tmp:
        (tmp / "half.txt").write_text("half")
        print(tmp, flush=True)
        time.sleep(60)
except Terminated as exc:
    print(f"terminated {{exc.exit_code}}", file=sys.stderr)
    sys.exit(exc.exit_code)
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
"""


def _stop_child(out: Path, signum: int) -> tuple[int, str, Path]:
    code = CHILD.format(repo=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    staged = Path(child.stdout.readline().strip())
    assert staged.is_dir(), child.stderr.read()
    child.send_signal(signum)
    _, err = child.communicate(timeout=30)
    return child.returncode, err.strip(), staged


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        (signal.SIGTERM, 143, "terminated 143"),
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGHUP, 129, "terminated 129"),
    ],
)
def test_signal_leaves_previous_output_and_no_debris(
    tmp_path: Path, signum: int, code: int, said: str
) -> None:
    out = tmp_path / "build"
    previous_output(out)
    (out / "keep.txt").write_text("previous")
    rc, err, staged = _stop_child(out, signum)
    assert (rc, err) == (code, said)
    assert staged.parent == tmp_path and not staged.exists()
    assert tree(tmp_path) == ["build", "build/keep.txt"]


def test_sigterm_on_mount_point_leaves_no_debris(tmp_path: Path, mount: Mount) -> None:
    out = previous_output(mount(tmp_path / "volume"))
    (out / "keep.txt").write_text("previous")
    rc, err, staged = _stop_child(out, signal.SIGTERM)
    assert (rc, err) == (143, "terminated 143") and staged.parent == out
    assert tree(out) == ["keep.txt"]


def test_terminated_is_a_keyboard_interrupt() -> None:
    exc = Terminated(signal.SIGTERM)
    assert isinstance(exc, KeyboardInterrupt) and exc.exit_code == 143
    assert str(exc) == "terminated by SIGTERM"
