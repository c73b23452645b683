"""On-disk cache of computed features, one ``.npz`` per (source split, recipe, input files).

The key is a SHA-256 of the recipe and of every input file's (absolute path, size in bytes,
mtime in ns): touching, replacing or adding a file, or changing any parameter, gives a new key.
Files are written atomically (temp file in the same folder, then ``os.replace``), so an
interrupted run never leaves a half-written cache entry.
Default folder: ``$DELAYSNN_CACHE`` if set, else ``~/.cache/delaysnn``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$DELAYSNN_CACHE`` or ``~/.cache/delaysnn``."""
    env = os.environ.get("DELAYSNN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "delaysnn"


def file_fingerprints(paths: Iterable[Path]) -> list[list]:
    """[[absolute path, size in bytes, mtime in ns], ...] in the given order."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    return out


def cache_key(recipe: dict, fingerprints: list[list]) -> str:
    """Hex SHA-256 of the JSON of (cache format, recipe, file fingerprints)."""
    blob = json.dumps({"format": CACHE_FORMAT, "recipe": recipe, "files": fingerprints},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(cache_dir: Path, stem: str, key: str) -> Path:
    return Path(cache_dir) / f"{stem}-{key[:24]}.npz"


def load_or_compute(cache_dir: Path | str | None, stem: str, key: str,
                    compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the cached array for ``key`` or ``compute()`` it and store it atomically.

    A cache file that cannot be read or holds another key is recomputed (with a warning).
    """
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    path = cache_path(cache_dir, stem, key)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return z["x"]
            warnings.warn(f"feature cache {path} holds another key; recomputing")
        except Exception as exc:  # corrupt / truncated cache entry
            warnings.warn(f"feature cache {path} unreadable ({exc}); recomputing")
    x = compute()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=cache_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x=x, key=np.array(key))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return x
