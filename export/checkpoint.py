"""Read and validate a trainer checkpoint (docs/design.md section 2) into plain numpy data.

Nothing here imports trainer code: a checkpoint is a dict of tensors and Python values.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.errors import ExportError

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class CkptLayer:
    """One connection layer of a checkpoint, as numpy arrays (float semantics)."""

    name: str
    n_in: int
    n_out: int
    pre: np.ndarray  # (S,) int64
    post: np.ndarray  # (S,) int64
    delay: np.ndarray  # (S,) int64, steps
    weight: np.ndarray  # (S,) float64
    bn: dict | None  # {"weight","bias","running_mean","running_var": (n_out,), "eps": float}
    decay: float  # v multiplier per step = 1 - dv/4096
    dv: int
    threshold: float
    spiking: bool
    # Not in checkpoint files (trainer layers have neither); export.from_nir sets them:
    bias: np.ndarray | None = None  # (n_out,) float64, added to I after BatchNorm
    du: int = 4095  # current decay (Lava du): i = (4095 - du)/4096 * i + I; 4095 = no memory

    @property
    def current_decay(self) -> float:
        """Synaptic current multiplier per step, (4095 - du) / 4096 (0: no current state)."""
        return (4095 - self.du) / 4096

    def bn_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b), each (n_out,) float64: BatchNorm (eval mode) and `bias` as I -> a * I + b."""
        if self.bn is None:
            a, b = np.ones(self.n_out), np.zeros(self.n_out)
        else:
            a = self.bn["weight"] / np.sqrt(self.bn["running_var"] + self.bn["eps"])
            b = self.bn["bias"] - self.bn["running_mean"] * a
        if self.bias is not None:
            b = b + self.bias
        return a, b


@dataclass
class Checkpoint:
    path: str
    layers: list[CkptLayer]
    class_names: list[str]
    data_recipe: dict
    config: dict
    epoch: int
    val_accuracy: float | None

    @property
    def n_channels(self) -> int:
        return self.layers[0].n_in

    @property
    def input_threshold(self) -> float:
        """Input event threshold (feature units, deployed.network.InputEncoding); 0 = none."""
        return float(self.config.get("input_threshold", 0.0))

    @property
    def time_steps(self) -> int | None:
        t = self.data_recipe.get("time_steps")
        return int(t) if t is not None else None


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run folder (holding checkpoint.pt) or a checkpoint file -> the file path."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
        if not p.is_file():
            raise ExportError(f"run folder {path} has no {CHECKPOINT_NAME}; "
                              "pass a run folder written by `python -m trainer train` or a .pt file")
    elif not p.is_file():
        raise ExportError(f"checkpoint {path} does not exist")
    return p


def _np(x: Any, dtype, what: str) -> np.ndarray:
    try:
        import torch
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a project dependency
        pass
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ExportError(f"{what}: expected a numeric array, got {type(x).__name__}")
    return arr.astype(dtype)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and check a checkpoint; every problem is an ExportError naming the field."""
    from trainer.file_io import load_torch_file

    p = resolve_checkpoint_path(path)
    d = load_torch_file(p, ExportError, "pass a checkpoint.pt written by python -m trainer train")
    return checkpoint_from_dict(d, str(p))


def checkpoint_from_dict(d: dict, path: str = "<dict>") -> Checkpoint:
    if not isinstance(d, dict) or d.get("format") != "delaysnn-checkpoint":
        raise ExportError(f"{path}: not a delaysnn checkpoint (field 'format' must be "
                          "'delaysnn-checkpoint')")
    if d.get("version") != 1:
        raise ExportError(f"{path}: checkpoint version {d.get('version')!r} is not supported "
                          "(this export reads version 1)")
    raw_layers = d.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ExportError(f"{path}: 'layers' must be a non-empty list of connection layers")
    layers = []
    for i, L in enumerate(raw_layers):
        name = str(L.get("name", f"layer{i}"))
        where = f"{path}: layer {i} ({name})"
        try:
            n_in, n_out = int(L["n_in"]), int(L["n_out"])
            pre = _np(L["pre"], np.int64, f"{where} pre")
            post = _np(L["post"], np.int64, f"{where} post")
            delay = _np(L["delay"], np.float64, f"{where} delay")
            weight = _np(L["weight"], np.float64, f"{where} weight")
            nrn = L["neuron"]
            decay, dv = float(nrn["decay"]), int(nrn["dv"])
            threshold, spiking = float(nrn["threshold"]), bool(nrn["spiking"])
        except KeyError as e:
            raise ExportError(f"{where}: missing field {e}") from e
        S = pre.shape[0]
        for arr, nm in ((pre, "pre"), (post, "post"), (delay, "delay"), (weight, "weight")):
            if arr.shape != (S,):
                raise ExportError(f"{where}: '{nm}' has shape {arr.shape}, expected ({S},) like 'pre'")
        if S and (pre.min() < 0 or pre.max() >= n_in):
            raise ExportError(f"{where}: 'pre' indices must lie in [0, {n_in}), "
                              f"got [{pre.min()}, {pre.max()}]")
        if S and (post.min() < 0 or post.max() >= n_out):
            raise ExportError(f"{where}: 'post' indices must lie in [0, {n_out}), "
                              f"got [{post.min()}, {post.max()}]")
        if S and (np.any(delay != np.round(delay)) or delay.min() < 0):
            raise ExportError(f"{where}: delays must be non-negative integers (steps)")
        if not np.all(np.isfinite(weight)):
            raise ExportError(f"{where}: weights contain NaN or inf")
        if not 0 <= dv <= 4095 or abs(decay - (1 - dv / 4096)) > 1e-6:
            raise ExportError(f"{where}: neuron dv={dv} must be a 12-bit integer with "
                              f"decay = 1 - dv/4096 (got decay {decay})")
        if i > 0 and n_in != layers[-1].n_out:
            raise ExportError(f"{where}: n_in={n_in} but the previous layer has "
                              f"n_out={layers[-1].n_out}")
        last = i == len(raw_layers) - 1
        if last and spiking:
            raise ExportError(f"{where}: the last layer is the readout and must be non-spiking")
        if not last and not spiking:
            raise ExportError(f"{where}: hidden layers must be spiking (only the last layer "
                              "is a non-spiking readout)")
        if spiking and not threshold > 0:
            raise ExportError(f"{where}: spiking threshold must be > 0, got {threshold}")
        bn = L.get("bn")
        if bn is not None:
            try:
                bn = {k: _np(bn[k], np.float64, f"{where} bn.{k}")
                      for k in ("weight", "bias", "running_mean", "running_var")} | \
                     {"eps": float(bn["eps"])}
            except KeyError as e:
                raise ExportError(f"{where}: bn is missing field {e}") from e
            for k in ("weight", "bias", "running_mean", "running_var"):
                if bn[k].shape != (n_out,):
                    raise ExportError(f"{where}: bn.{k} has shape {bn[k].shape}, "
                                      f"expected ({n_out},)")
        layers.append(CkptLayer(name, n_in, n_out, pre, post, delay.astype(np.int64), weight,
                                bn, decay, dv, threshold, spiking))
    recipe = d.get("data_recipe") or {}
    nc = recipe.get("n_channels")
    if nc is not None and int(nc) != layers[0].n_in:
        raise ExportError(f"{path}: data_recipe.n_channels={nc} but the first layer has "
                          f"n_in={layers[0].n_in}")
    class_names = [str(c) for c in d.get("class_names") or []]
    if class_names and len(class_names) != layers[-1].n_out:
        raise ExportError(f"{path}: {len(class_names)} class_names but the readout has "
                          f"{layers[-1].n_out} neurons")
    if not class_names:
        class_names = [str(c) for c in range(layers[-1].n_out)]
    va = d.get("val_accuracy")
    return Checkpoint(path=path, layers=layers, class_names=class_names,
                      data_recipe=dict(recipe), config=dict(d.get("config") or {}),
                      epoch=int(d.get("epoch", -1)),
                      val_accuracy=None if va is None else float(va))
