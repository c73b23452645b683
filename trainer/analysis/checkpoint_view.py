"""Read a checkpoint (docs/design.md section 2) into plain numpy synapse lists.

Only the documented dict format is used: `torch.load(path, weights_only=False)` of a dict with
`"format": "delaysnn-checkpoint"`, `"version": 1`, `"config"` and `"layers"` (each with
`name, n_in, n_out, pre, post, delay, weight`). No trainer class is imported. Every problem is
reported as `CheckpointError` naming the file, the layer and what to do, before any analysis runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "delaysnn-checkpoint"
VERSION = 1
# Config keys that give the kernel size K (number of delay taps, delays 0..K-1 steps), in the
# order they are looked up. "max_delay" follows the reference code (SNN-delays), where it is the
# kernel size, not the largest delay.
KERNEL_SIZE_KEYS = ("kernel_size", "K", "max_delay")


class CheckpointError(ValueError):
    """The checkpoint is missing, unreadable or does not follow docs/design.md section 2."""


@dataclass
class LayerSynapses:
    """One connection layer as flat synapse arrays (S synapses).

    pre, post: int64 indices (0 <= pre < n_in, 0 <= post < n_out); delay: int64 steps (>= 0);
    weight: float64 (the checkpoint's float weight, sign = excitatory (+) / inhibitory (-)).
    """

    name: str
    n_in: int
    n_out: int
    pre: np.ndarray
    post: np.ndarray
    delay: np.ndarray
    weight: np.ndarray


@dataclass
class CheckpointView:
    """The parts of a checkpoint the analysis reads."""

    path: Path
    layers: list[LayerSynapses]
    kernel_size: int  # K: delays are 0..K-1 steps
    kernel_size_source: str  # where K came from (a config key, or "max delay + 1")
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None


def _as_numpy(value: Any, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise CheckpointError(f"{what} must be a 1-D array, got shape {arr.shape}")
    return arr


def _int_array(value: Any, what: str) -> np.ndarray:
    arr = _as_numpy(value, what)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise CheckpointError(f"{what} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _layer(raw: Any, index: int, src: Path) -> LayerSynapses:
    where = f"{src}: layers[{index}]"
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where} is a {type(raw).__name__}, expected a dict")
    missing = [k for k in ("name", "n_in", "n_out", "pre", "post", "delay", "weight")
               if k not in raw]
    if missing:
        raise CheckpointError(f"{where} lacks {missing}; see docs/design.md section 2")
    where = f"{src}: layer {raw['name']!r}"
    n_in, n_out = int(raw["n_in"]), int(raw["n_out"])
    if n_in < 1 or n_out < 1:
        raise CheckpointError(f"{where} has n_in={n_in}, n_out={n_out}; both must be >= 1")
    pre = _int_array(raw["pre"], f"{where} 'pre'")
    post = _int_array(raw["post"], f"{where} 'post'")
    delay = _int_array(raw["delay"], f"{where} 'delay'")
    weight = _as_numpy(raw["weight"], f"{where} 'weight'").astype(np.float64)
    sizes = {len(pre), len(post), len(delay), len(weight)}
    if len(sizes) != 1:
        raise CheckpointError(f"{where}: pre/post/delay/weight lengths differ "
                              f"({len(pre)}, {len(post)}, {len(delay)}, {len(weight)})")
    if pre.size:
        if pre.min() < 0 or pre.max() >= n_in:
            raise CheckpointError(f"{where}: 'pre' out of range 0..{n_in - 1} "
                                  f"(min {pre.min()}, max {pre.max()})")
        if post.min() < 0 or post.max() >= n_out:
            raise CheckpointError(f"{where}: 'post' out of range 0..{n_out - 1} "
                                  f"(min {post.min()}, max {post.max()})")
        if delay.min() < 0:
            raise CheckpointError(f"{where}: negative delay {delay.min()} (delays are steps >= 0)")
        if not np.all(np.isfinite(weight)):
            raise CheckpointError(f"{where}: non-finite weights (NaN or inf); the run diverged")
    return LayerSynapses(str(raw["name"]), n_in, n_out, pre, post, delay, weight)


def kernel_size_of(config: dict[str, Any], layers: list[LayerSynapses], src: Path) -> tuple[int, str]:
    """K (delay taps) from the config (`KERNEL_SIZE_KEYS`, first found) else max delay + 1.

    Raises CheckpointError if some synapse's delay does not fit 0..K-1.
    """
    max_delay = max((int(l.delay.max()) for l in layers if l.delay.size), default=0)
    for key in KERNEL_SIZE_KEYS:
        if key in config and config[key] is not None:
            try:
                k = int(config[key])
            except (TypeError, ValueError):
                raise CheckpointError(f"{src}: config[{key!r}] = {config[key]!r} is not an "
                                      "integer kernel size") from None
            if k < 1:
                raise CheckpointError(f"{src}: config[{key!r}] = {k} must be >= 1")
            if max_delay >= k:
                raise CheckpointError(
                    f"{src}: a synapse has delay {max_delay} steps but config[{key!r}] = {k} "
                    f"allows only 0..{k - 1}; the checkpoint is inconsistent")
            return k, f"config[{key!r}]"
    return max_delay + 1, "max delay + 1 (no kernel size in config)"


def load_checkpoint(path: str | Path) -> CheckpointView:
    """Load and validate `path`; raise CheckpointError with the reason if it is not usable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (train one with "
                              "`python -m trainer train ... --out RUN_DIR`)")
    from trainer.file_io import load_torch_file  # local: importing this module stays cheap

    ckpt = load_torch_file(path, CheckpointError,
                           "pass a checkpoint.pt written by python -m trainer train",
                           weights_only=False)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} holds a {type(ckpt).__name__}, expected the checkpoint "
                              "dict of docs/design.md section 2")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format is {ckpt.get('format')!r}, expected {FORMAT!r}")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: version {ckpt.get('version')!r} is not supported "
                              f"(this analysis reads version {VERSION})")
    raw_layers = ckpt.get("layers")
    if not isinstance(raw_layers, (list, tuple)) or not raw_layers:
        raise CheckpointError(f"{path}: 'layers' must be a non-empty list")
    layers = [_layer(raw, i, path) for i, raw in enumerate(raw_layers)]
    names = [l.name for l in layers]
    if len(set(names)) != len(names):
        raise CheckpointError(f"{path}: layer names repeat: {names}")
    config = ckpt.get("config") or {}
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' is a {type(config).__name__}, expected a dict")
    k, k_source = kernel_size_of(config, layers, path)
    epoch = ckpt.get("epoch")
    return CheckpointView(path, layers, k, k_source, dict(config),
                          int(epoch) if epoch is not None else None)
