"""Carving the validation set out of a training split, deterministically from a seed.

Three strategies (the source picks one):

- ``"takes"`` (FSDD: every speaker is also in the test set): per speaker, hold out
  ``round(fraction * n_takes)`` of that speaker's take indices (the same takes for every digit,
  so classes and speakers stay balanced);
- ``"speakers"`` (Heidelberg Digits, SHD): hold out ``max(1, round(fraction * n_speakers))``
  whole speakers (needs >= 2 speakers);
- ``"random"`` (folder, synthetic; no speakers): per class, hold out ``round(fraction * n_c)``
  samples.

``held_speakers`` (FSDD's ``val_speaker``: nested validation for leave-one-speaker-out) replaces
the strategy: validation = every sample of those speakers, whatever the fraction.
Samples whose meta has ``"train_only": True`` (synthetic voices added to a real training set)
are never held out: validation is carved from the other samples alone.

``round`` is round-half-up. Returns (train indices, val indices), both sorted int64.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataError

STRATEGIES = ("takes", "speakers", "random")


def _round(v: float) -> int:
    return int(math.floor(v + 0.5))


def carve_validation(y: np.ndarray, meta: list[dict], strategy: str, fraction: float,
                     seed: int, held_speakers: list[str] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) for the given strategy; see the module docstring."""
    n = len(y)
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    fixed = np.array([bool(m.get("train_only")) for m in meta], dtype=bool)
    if held_speakers is not None:
        have = {m["speaker"] for m, f in zip(meta, fixed) if not f}
        missing = sorted(set(held_speakers) - have)
        if missing:
            raise DataError(f"validation speaker(s) {missing} are not in the training split; "
                            f"its speakers: {', '.join(sorted(have))}")
        is_val = np.array([m["speaker"] in held_speakers for m in meta], dtype=bool) & ~fixed
        return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)
    if fixed.any():
        rest = np.flatnonzero(~fixed)
        _, val = carve_validation(np.asarray(y)[rest], [meta[i] for i in rest], strategy,
                                  fraction, seed)
        is_val = np.zeros(n, dtype=bool)
        is_val[rest[val]] = True
        return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)
    rng = np.random.default_rng(seed)
    is_val = np.zeros(n, dtype=bool)
    if strategy == "takes":
        speakers = sorted({m["speaker"] for m in meta})
        for spk in speakers:
            takes = sorted({m["take"] for m in meta if m["speaker"] == spk})
            k = _round(fraction * len(takes))
            chosen = set(rng.choice(takes, size=k, replace=False).tolist()) if k else set()
            for i, m in enumerate(meta):
                if m["speaker"] == spk and m["take"] in chosen:
                    is_val[i] = True
    elif strategy == "speakers":
        speakers = sorted({m["speaker"] for m in meta})
        if len(speakers) < 2:
            raise DataError(f"cannot carve a validation set by speaker: the training split has "
                            f"{len(speakers)} speaker(s); pass val_fraction=0")
        k = min(max(1, _round(fraction * len(speakers))), len(speakers) - 1)
        held = set(rng.permutation(speakers)[:k].tolist())
        is_val = np.array([m["speaker"] in held for m in meta], dtype=bool)
    elif strategy == "random":
        y = np.asarray(y)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            k = _round(fraction * len(idx))
            is_val[rng.permutation(idx)[:k]] = True
    else:
        raise DataError(f"unknown validation strategy {strategy!r}; known: {list(STRATEGIES)}")
    return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)
