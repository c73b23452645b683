"""Spiking Heidelberg Digits: ``shd_train.h5`` / ``shd_test.h5`` binned to 10 ms steps.

HDF5 keys used: ``spikes/times`` (ragged float, seconds), ``spikes/units`` (ragged int, channel
0..699), ``labels`` (int, 0-9 english, 10-19 german) and ``extra/speaker`` (int).
Binning: a spike at time t (s) on unit u adds 1.0 to step ``floor(round(t * 1e6) / 10000)``
(time rounded to whole microseconds first, so t = 0.03 s lands in step 3, not 2) and channel
``u // pool``; spikes at or after ``time_steps * 10 ms`` are dropped (crop). Option ``pool``
(default 1: 700 channels; 5: 140 channels, as Hammouamri et al.) must divide 700.
``n_mels`` does not apply (leave it at 40). Class names as rawhd ("english-0" .. "german-9").
Validation: whole training speakers held out (strategy "speakers").
Meta per sample: speaker (str of extra/speaker), file ("shd_train.h5#<index>").
Getting the files: :func:`trainer.data.download.fetch_shd` (or place them by hand).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .audio_folder import require_dir
from .dataset import DT_MS, SourceSplit
from .errors import DataError
from .feature_cache import cache_key, file_fingerprints, load_or_compute
from .rawhd import CLASS_NAMES

NAME = "shd"
DESCRIPTION = ("Spiking Heidelberg Digits HDF5 (shd_train.h5 / shd_test.h5), 700 channels "
               "(pool option), 20 classes")
OPTIONS = {"pool": 1}
VAL_STRATEGY = "speakers"
USES_N_MELS = False
N_UNITS = 700
REQUIRED_KEYS = ("spikes/times", "spikes/units", "labels", "extra/speaker")


def bin_spikes(times: np.ndarray, units: np.ndarray, time_steps: int, pool: int,
               n_units: int = N_UNITS) -> np.ndarray:
    """Spike counts float32 (time_steps, n_units // pool) of one sample (module docstring)."""
    times = np.asarray(times, dtype=np.float64)
    units = np.asarray(units, dtype=np.int64)
    us_per_step = int(round(DT_MS * 1000))
    step = np.rint(times * 1e6).astype(np.int64) // us_per_step
    n_ch = n_units // pool
    keep = (step >= 0) & (step < time_steps)
    flat = step[keep] * n_ch + units[keep] // pool
    counts = np.bincount(flat, minlength=time_steps * n_ch)
    return counts.astype(np.float32).reshape(time_steps, n_ch)


def read_checked(path: Path, kind: str = "SHD", n_classes: int = len(CLASS_NAMES),
                 required=REQUIRED_KEYS
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(times, units, labels, speakers) of an SHD-layout file (SHD, SSC), after checking keys,
    counts and ranges; speakers is None when the file has no extra/speaker (allowed only when
    `required` does not list it)."""
    try:
        f = h5py.File(path, "r")
    except Exception as exc:
        raise DataError(f"cannot open {kind} file {path} as HDF5: {exc}") from exc
    with f:
        for key in required:
            if key not in f:
                raise DataError(f"{kind} file {path} has no '{key}' dataset "
                                f"(needs {', '.join(required)})")
        times, units = f["spikes/times"][:], f["spikes/units"][:]
        labels = np.asarray(f["labels"][:])
        speakers = np.asarray(f["extra/speaker"][:]) if "extra/speaker" in f else None
    n = len(times)
    if len(labels) != n:
        raise DataError(f"{kind} file {path}: {len(labels)} labels but {n} samples in spikes/times")
    if len(units) != n:
        raise DataError(f"{kind} file {path}: {len(units)} samples in spikes/units "
                        f"but {n} in spikes/times")
    if speakers is not None and len(speakers) != n:
        raise DataError(f"{kind} file {path}: {len(speakers)} entries in extra/speaker "
                        f"but {n} samples")
    if n == 0:
        raise DataError(f"{kind} file {path} holds no samples")
    for i in range(n):
        if len(times[i]) != len(units[i]):
            raise DataError(f"{kind} file {path}: sample {i} has {len(times[i])} spike times but "
                            f"{len(units[i])} units")
        if len(units[i]) and (units[i].min() < 0 or units[i].max() >= N_UNITS):
            raise DataError(f"{kind} file {path}: sample {i} has a unit outside 0..{N_UNITS - 1}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DataError(f"{kind} file {path}: labels must be in 0..{n_classes - 1}, "
                        f"got {labels.min()}..{labels.max()}")
    return times, units, labels.astype(np.int64), speakers


def check_pool(pool) -> int:
    if (isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1
            or N_UNITS % pool):
        raise DataError(f"pool must be a positive divisor of {N_UNITS} (e.g. 1, 5, 10), "
                        f"got {pool!r}")
    return int(pool)


def binned_split(path: Path, name: str, split: str, times, units, labels, speakers, *,
                 time_steps: int, pool: int, cache_dir) -> tuple[np.ndarray, list[dict]]:
    """Binned features (N, time_steps, 700 // pool) (cached) and meta of one SHD-layout file."""
    key = cache_key({"kind": f"{name}-bins", "time_steps": time_steps, "pool": pool,
                     "dt_ms": DT_MS}, file_fingerprints([path]))

    def compute() -> np.ndarray:
        out = np.empty((len(labels), time_steps, N_UNITS // pool), dtype=np.float32)
        for i in tqdm(range(len(labels)), desc=f"{name}-{split} bins", unit="sample", leave=False):
            out[i] = bin_spikes(times[i], units[i], time_steps, pool)
        return out

    x = load_or_compute(cache_dir, f"{name}-{split}", key, compute)
    meta = [{"speaker": None if speakers is None else str(int(speakers[i])),
             "file": f"{path.name}#{i}"} for i in range(len(labels))]
    return x, meta


def load_split(data_dir, split: str, *, n_mels: int, time_steps: int, cache_dir,
               pool=1) -> SourceSplit:
    if n_mels != 40:
        raise DataError(f"n_mels={n_mels} does not apply to shd (700 cochlea channels); "
                        f"use the pool option to reduce channels")
    pool = check_pool(pool)
    if data_dir is None:
        raise DataError("shd needs data_dir (--data-dir): the folder holding shd_train.h5 and "
                        "shd_test.h5 (see trainer.data.download.fetch_shd)")
    folder = require_dir(Path(data_dir), "SHD",
                         "pass the folder holding shd_train.h5 / shd_test.h5")
    path = folder / f"shd_{split}.h5"
    if not path.is_file():
        raise DataError(f"SHD file missing: {path}; place shd_{split}.h5 there (unzipped from "
                        f"shd_{split}.h5.zip) or call trainer.data.download.fetch_shd")
    times, units, labels, speakers = read_checked(path)
    x, meta = binned_split(path, NAME, split, times, units, labels, speakers, time_steps=time_steps,
                           pool=pool, cache_dir=cache_dir)
    return SourceSplit(x, labels, meta, list(CLASS_NAMES))
