"""File I/O shared by every stage: atomic writes and content hashes.

Atomic: a temp file in the target folder, then `os.replace`.

A crash or an error never leaves a half-written file under the final name; the temp file is
removed on failure. Every stage of the project (trainer, export, lava_runtime, experiments)
writes its results through these functions.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call write(f) on a binary temp file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes_atomic(data: bytes, path: str | Path) -> Path:
    return write_atomic(path, lambda f: f.write(data))


def json_default(o: Any) -> Any:
    """numpy scalars and arrays, and paths, as plain JSON values."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def write_json_atomic(obj: Any, path: str | Path, *, indent: int = 2, sort_keys: bool = False,
                      allow_nan: bool = True) -> Path:
    """Write `obj` as JSON (numpy values converted), ending with a newline."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan,
                      default=json_default) + "\n"
    return write_bytes_atomic(text.encode("utf-8"), path)


def save_figure_atomic(fig, path: str | Path, dpi: int) -> Path:
    """Save a matplotlib figure as PNG at `dpi` (no tight bbox: the pixel size is the figure's)."""
    return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


def torch_save_atomic(obj: Any, path: str | Path) -> Path:
    import torch

    return write_atomic(path, lambda f: torch.save(obj, f))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_torch_file(path: str | Path, error: type[Exception] = ValueError, advice: str = "",
                    *, weights_only: bool = True) -> Any:
    """`torch.load(path, map_location="cpu")`; a file torch cannot read raises `error` with one
    line naming the file and the cause (empty, not a PyTorch file, truncated or damaged, or
    torch's own first line), followed by `advice` (what to do)."""
    import zipfile

    import torch

    path = Path(path)
    tail = f"; {advice}" if advice else ""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise error(f"{path} is empty (0 bytes){tail}")
    # torch.save writes a zip archive ("PK\x03\x04"); very old torch wrote a bare pickle (0x80)
    if head[:2] != b"PK" and head[:1] != b"\x80":
        raise error(f"{path} is not a PyTorch file (torch.save writes a zip archive){tail}")
    if head[:2] == b"PK" and not zipfile.is_zipfile(path):
        raise error(f"{path} is truncated or damaged (its zip archive has no end record: the "
                    f"write was interrupted or the copy is incomplete){tail}")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as e:  # noqa: BLE001 - any unpickling/zip error means the file is unusable
        first = (str(e).strip().splitlines() or [""])[0]
        raise error(f"{path} cannot be read by torch.load ({type(e).__name__}: {first}){tail}") \
            from None


def read_json_file(path: str | Path, error: type[Exception] = ValueError, advice: str = "") -> Any:
    """json.loads of a UTF-8 file; a file that is not valid JSON text raises `error` with one
    line naming the file and the position, followed by `advice` (what to do)."""
    path = Path(path)
    tail = f"; {advice}" if advice else ""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise error(f"{path} is not a JSON text file (byte {e.start} is not UTF-8){tail}") \
            from None
    except json.JSONDecodeError as e:
        raise error(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
                    f"{tail}") from None
