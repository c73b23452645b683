"""Write result files atomically: a temp file in the target folder, then `os.replace`.

A crash or an error never leaves a half-written file under the final name.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _atomic(path: Path, write: Callable[[str], None], suffix: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write `obj` as indented JSON (NaN/inf rejected: callers must store None instead)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, allow_nan=False)
            f.write("\n")
    return _atomic(path, write, ".json.tmp")


def save_figure_atomic(fig, path: Path, dpi: int) -> Path:
    """Save a matplotlib figure as PNG at `dpi` (no tight bbox: the pixel size is the figure's)."""
    return _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi), ".png.tmp")
