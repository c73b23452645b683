"""Synthetic timing task (the default dataset: no files needed), deterministic from ``data_seed``.

Built so that delays are necessary: classes differ only in the relative timing of channel
groups, over spans longer than a short membrane time constant can bridge.

Channels (C = ``n_mels``, default 40) form G = min(4, C) groups of neighbouring channels
(4 groups of 10 at C = 40). Four time slots are spread evenly from 0 to round(0.24 T)
steps (T = ``time_steps``; slots 0, 8, 16, 24 at T = 100). Each class puts every group in its
own slot: ``o[c, g]`` is the slot of group g, and classes differ in which group takes which slot
(:func:`timing_patterns`; at G = 4 the 24 permutations of the slots). At G = 4 all classes thus
have the same events at the same spacing and only the order of the groups tells them apart;
any two groups are >= 8 steps apart, so a network whose neurons forget within a few steps
(tau = 2 steps) sees each group alone, while delays of 0..24 steps (K = 25) can line up every
class's groups on one neuron. (C = 2 or 3 channels give 2 or 3 groups and fewer patterns.)
Neurons with a long memory need no delays here: with the trainer's default tau = 10.05 steps,
the membrane itself bridges 8 steps, so use a short tau (the demo's 2 steps) to show delays.
A sample of class c has one Gaussian bump (sigma 1.5 steps) per group, centred at
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

import itertools

import numpy as np

from .dataset import SourceSplit
from .errors import DataError

NAME = "synthetic"
DESCRIPTION = ("generated timing task (default; no data_dir): classes differ only in relative "
               "channel timing")
OPTIONS = {"n_classes": 10, "n_train": 1000, "n_test": 200, "data_seed": 0}
VAL_STRATEGY = "random"
USES_N_MELS = True
SIGMA_STEPS = 1.0
JITTER_STEPS = 0.5
PEAK = 0.075
NOISE = 0.006
MAX_VALUE = 80 * 0.00099
MAX_GROUPS = 4
OFFSET_SPAN = 0.24     # slots lie in 0 .. round(OFFSET_SPAN * T) steps
N_SLOTS = 4            # evenly spread


def n_groups(n_channels: int) -> int:
    return min(MAX_GROUPS, n_channels)


def channel_groups(n_channels: int) -> np.ndarray:
    """Group index of every channel, int64 (n_channels,)."""
    return (np.arange(n_channels) * n_groups(n_channels)) // n_channels


def class_offsets(n_classes: int, n_channels: int, time_steps: int, data_seed: int) -> np.ndarray:
    """Offset of every (class, group) bump from the sample's start: int64 (n_classes, G), steps."""
    return _task(n_classes, n_channels, time_steps, data_seed)[0]


def slots(time_steps: int) -> np.ndarray:
    """Times (steps from the sample's start) a group's bump can take: int64 (4,), evenly spread
    over 0 .. round(0.24 T) (0, 8, 16, 24 at T = 100)."""
    span = int(round(OFFSET_SPAN * time_steps))
    return np.round(np.linspace(0, span, N_SLOTS)).astype(np.int64)


def timing_patterns(n_groups_: int, time_steps: int) -> np.ndarray:
    """Every assignment of the groups to distinct slots, one per relative pattern (shifted so that
    the earliest group is at 0), in lexicographic order: int64 (P, G)."""
    s = slots(time_steps)
    out = {tuple(int(v) - min(p) for v in p)
           for p in itertools.permutations(s.tolist(), n_groups_)}
    return np.array(sorted(out), dtype=np.int64).reshape(-1, n_groups_)


def _task(n_classes, n_channels, time_steps, data_seed):
    """(offsets int64 (n_classes, G), profile float (n_channels,)), see the module docstring."""
    rng = np.random.default_rng([data_seed, 0])
    patterns = timing_patterns(n_groups(n_channels), time_steps)
    if n_classes > len(patterns):
        raise DataError(f"synthetic: {n_channels} channels ({n_groups(n_channels)} groups) in "
                        f"{time_steps} steps give only {len(patterns)} timing patterns, fewer than "
                        f"n_classes={n_classes}; use fewer classes or >= 4 channels")
    offsets = patterns[rng.permutation(len(patterns))[:n_classes]]
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
        raise DataError(f"synthetic takes no data_dir (got {data_dir!r}); "
                        "it is generated from data_seed")
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
