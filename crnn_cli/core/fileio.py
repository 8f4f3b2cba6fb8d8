"""Atomic file output: a crash or a full disk never leaves a half-written file in place of a good one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from crnn_cli.core.errors import CrnnError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed over ``target``.

    On any error the temporary file is removed and ``target`` is untouched. The temporary name keeps
    the target's suffix (tools such as ONNX and OpenVINO pick formats and side files by it).
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise CrnnError(f"cannot write {target}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise CrnnError(f"cannot write {target}: folder {parent} is not writable")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.",
            suffix=".tmp" + (suffix if suffix is not None else target.suffix),
            dir=parent,
        )
    except OSError as exc:  # permission refused past os.access, no space or inodes left
        raise CrnnError(f"cannot write {target}: {exc.strerror or exc}; the previous file is intact") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a model file should get normal permissions
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CrnnError(f"cannot write {target}: {exc.strerror or exc}; the previous file is intact") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
