"""Synthetic timing task (the default dataset: no files needed), deterministic from ``data_seed``.

Channels (C = ``n_mels``, default 40) form G = max(2, C // 5) groups of neighbouring channels.
Each class c has a fixed integer offset ``o[c, g]`` in 0 .. round(0.2 T) steps for every group
(T = ``time_steps``; 0..20 steps at T = 100, so delays of 0..24 steps can line every class up).
A sample of class c has one Gaussian bump (sigma 2 steps) per group, centred at
``s + o[c, g] + jitter``: s, the sample's start, is uniform in round(0.1 T) .. round(0.6 T),
jitter ~ N(0, 1 step) per group. Bump height 0.075 * a * p: a ~ U(0.7, 1.0) per group and sample,
p ~ U(0.6, 1.0) a fixed per-channel profile shared by all classes. Plus uniform noise in
[0, 0.006), clipped to [0, 0.0792] like the Mel features. Every class puts the same energy on
every channel: the time-averaged features carry (almost) no class information; only the
relative timing between channel groups does.

Sizes: ``n_train`` (default 1000, the validation set is carved from it at random per class by
``seed``) and ``n_test`` (default 200), classes balanced, ``n_classes`` default 10.
Independent random streams: task (offsets, profile) = default_rng([data_seed, 0]); train
samples [data_seed, 1]; test samples [data_seed, 2].
Meta per sample: speaker None, file None. Not cached (generating the defaults takes < 1 s).
"""
from __future__ import annotations

import numpy as np

from .dataset import SourceSplit
from .errors import DataError

NAME = "synthetic"
DESCRIPTION = "generated timing task (default; no data_dir): classes differ only in relative channel timing"
OPTIONS = {"n_classes": 10, "n_train": 1000, "n_test": 200, "data_seed": 0}
VAL_STRATEGY = "random"
USES_N_MELS = True
SIGMA_STEPS = 2.0
JITTER_STEPS = 1.0
PEAK = 0.075
NOISE = 0.006
MAX_VALUE = 80 * 0.00099


def n_groups(n_channels: int) -> int:
    return max(2, n_channels // 5)


def channel_groups(n_channels: int) -> np.ndarray:
    """Group index of every channel, int64 (n_channels,)."""
    return (np.arange(n_channels) * n_groups(n_channels)) // n_channels


def class_offsets(n_classes: int, n_channels: int, time_steps: int, data_seed: int) -> np.ndarray:
    """Offset of every (class, group) bump from the sample's start: int64 (n_classes, G), in steps."""
    return _task(n_classes, n_channels, time_steps, data_seed)[0]


def _task(n_classes, n_channels, time_steps, data_seed):
    rng = np.random.default_rng([data_seed, 0])
    max_off = int(round(0.2 * time_steps))
    offsets = rng.integers(0, max_off + 1, size=(n_classes, n_groups(n_channels)))
    profile = rng.uniform(0.6, 1.0, size=n_channels)
    return offsets, profile


def generate(n: int, n_classes: int, n_channels: int, time_steps: int, data_seed: int,
             stream: int) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (n, time_steps, n_channels), y int64 (n,)) from random stream ``stream``."""
    offsets, profile = _task(n_classes, n_channels, time_steps, data_seed)
    rng = np.random.default_rng([data_seed, stream])
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    g = n_groups(n_channels)
    start = rng.integers(int(round(0.1 * time_steps)), int(round(0.6 * time_steps)) + 1, size=n)
    centre = start[:, None] + offsets[y] + rng.normal(0.0, JITTER_STEPS, size=(n, g))   # (n, G)
    amp = rng.uniform(0.7, 1.0, size=(n, g))
    t = np.arange(time_steps)
    bump = np.exp(-0.5 * ((t[None, None, :] - centre[:, :, None]) / SIGMA_STEPS) ** 2)  # (n, G, T)
    grp = channel_groups(n_channels)
    x = PEAK * (amp[:, grp, None] * profile[None, :, None]) * bump[:, grp, :]          # (n, C, T)
    x = x.transpose(0, 2, 1) + rng.uniform(0.0, NOISE, size=(n, time_steps, n_channels))
    return np.clip(x, 0.0, MAX_VALUE).astype(np.float32), y


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise DataError(f"{name} must be an integer >= {lo}, got {v!r}")


def load_split(data_dir, split: str, *, n_mels: int, time_steps: int, cache_dir,
               n_classes=10, n_train=1000, n_test=200, data_seed=0) -> SourceSplit:
    if data_dir is not None:
        raise DataError(f"synthetic takes no data_dir (got {data_dir!r}); it is generated from data_seed")
    _check_int("n_classes", n_classes, 2)
    _check_int("n_train", n_train, n_classes)
    _check_int("n_test", n_test, 1)
    _check_int("data_seed", data_seed, 0)
    _check_int("n_mels (channels)", n_mels, 2)
    _check_int("time_steps", time_steps, 30)
    n, stream = (n_train, 1) if split == "train" else (n_test, 2)
    x, y = generate(n, n_classes, n_mels, time_steps, data_seed, stream)
    meta = [{"speaker": None, "file": None} for _ in range(n)]
    return SourceSplit(x, y, meta, [f"pattern-{c}" for c in range(n_classes)])
