"""Every file rebuild writes for someone else to read is written whole or not at all.

A temp file in the same directory (same file system, so the rename is atomic), flushed to disk,
then renamed over the target: a reader (a batch's ansible-playbook, the boot server, the crisis
cell's spreadsheet, a rerun after a crash) sees the old file or the new one, never half of one.
On any error the temp file is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

# Files rebuild writes hold no secret unless said otherwise (secrets pass 0o600).
PUBLIC = 0o644
PRIVATE = 0o600


@contextmanager
def _temp_beside(path: Path, permissions: int, **open_args: Any) -> Iterator[tuple[IO[Any], Path]]:
    """A temp file next to `path` with `permissions` (set explicitly, not from the umask: reading the
    umask means changing it, which races other threads), synced on a clean exit, removed on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    tmp = Path(name)
    try:
        os.fchmod(fd, permissions)
        with os.fdopen(fd, **open_args) as handle:
            yield handle, tmp
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def staged_text(
    path: Path, *, mode: int = PUBLIC, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[str]]:
    """Write `path` through the yielded handle: renamed over `path` on a clean exit only."""
    with _temp_beside(path, mode, mode="w", encoding=encoding, newline=newline) as (handle, tmp):
        yield handle
    _rename(tmp, path)


def write_text(path: Path, text: str, *, mode: int = PUBLIC) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with staged_text(path, mode=mode) as handle:
        handle.write(text)


def write_bytes(path: Path, data: bytes, *, mode: int = PUBLIC) -> None:
    """Write `data` to `path` atomically."""
    with _temp_beside(path, mode, mode="wb") as (handle, tmp):
        handle.write(data)
    _rename(tmp, path)


def write_temp(path: Path, text: str, *, mode: int = PUBLIC) -> Path:
    """Stage `text` (UTF-8) in a temp file next to `path` and return it, for a caller that must
    write several files before renaming any (all or nothing across files): it then renames it
    with `os.replace(tmp, path)` or removes it."""
    with _temp_beside(path, mode, mode="w", encoding="utf-8") as (handle, tmp):
        handle.write(text)
    return tmp


def remove(path: Path) -> bool:
    """Delete `path` whole (unlink is atomic) and durably: the directory entry's removal is synced,
    so after a power cut the file is gone or still whole, never half of it. False when it was not
    there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _rename(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
