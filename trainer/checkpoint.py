"""RUN_DIR files: checkpoint.pt (the export contract, docs/design.md section 2),
checkpoint_init.pt (the same at initialisation, for before/after analyses), last.pt (resume
state), metrics.json, config.json; all written atomically (temp file in the folder + os.replace).

`load_checkpoint` is the one reader of checkpoint.pt outside training: plain numpy synapse lists
(`Checkpoint`, `CkptLayer`), every field checked, no trainer class needed to use the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.file_io import load_torch_file

FORMAT, VERSION = "delaysnn-checkpoint", 1
RESUME_FORMAT = "delaysnn-resume"
CHECKPOINT, LAST, METRICS, CONFIG = "checkpoint.pt", "last.pt", "metrics.json", "config.json"
INIT_CHECKPOINT = "checkpoint_init.pt"  # same format, the network at initialisation (epoch 0)
# Config keys that give the kernel size K (number of delay taps, delays 0..K-1 steps), in the
# order they are looked up. "max_delay" follows the reference code (SNN-delays), where it is the
# kernel size, not the largest delay.
KERNEL_SIZE_KEYS = ("kernel_size", "K", "max_delay")


class CheckpointError(ValueError):
    """A RUN_DIR file is missing, corrupt or of another format (the message says what to do)."""


def build_checkpoint(model, cfg: dict, class_names, data_recipe: dict, epoch: int,
                     val_accuracy: float) -> dict:
    """The export contract as a plain dict (tensors on CPU)."""
    layers = []
    n_conn = len(model.connections)
    for i, conn in enumerate(model.connections):
        last = i == n_conn - 1
        syn = conn.synapses()
        bn = None
        if not last and isinstance(model.norms[i], torch.nn.BatchNorm1d):
            norm = model.norms[i]
            bn = {k: getattr(norm, k).detach().cpu().to(torch.float32).clone()
                  for k in ("weight", "bias", "running_mean", "running_var")}
            bn["eps"] = float(norm.eps)
        neuron = model.readout if last else model.lifs[i]
        layers.append({
            "name": "readout" if last else f"fc{i + 1}", "n_in": conn.n_in, "n_out": conn.n_out,
            **syn, "bn": bn,
            "neuron": {"decay": float(neuron.decay), "dv": int(neuron.dv),
                       "threshold": float(cfg["threshold"]), "spiking": not last}})
        if not last and getattr(model, "recurrent", None) is not None:
            layers[-1]["recurrent"] = model.recurrent[i].synapses()   # RecurrentFloat's keys
    return {
        "format": FORMAT, "version": VERSION, "config": dict(cfg),
        "class_names": list(class_names), "data_recipe": dict(data_recipe),
        "epoch": int(epoch), "val_accuracy": float(val_accuracy), "layers": layers,
        "model_state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }


def _load(path: Path, fmt: str, required: tuple[str, ...]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (train one with "
                              f"`python -m trainer train ... --out RUN_DIR`)")
    obj = load_torch_file(path, CheckpointError,
                          "pass a file written by python -m trainer train, or use another RUN_DIR")
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise CheckpointError(f"{path} is not a {fmt} file")
    if obj.get("version") != VERSION:
        raise CheckpointError(f"{path} has version {obj.get('version')!r}; this code reads "
                              f"version {VERSION}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise CheckpointError(f"{path} is incomplete (missing {', '.join(missing)}); delete it "
                              f"or use another RUN_DIR")
    return obj


def load_checkpoint_dict(path: Path) -> dict:
    """checkpoint.pt as saved (tensors, model_state): for rebuilding the trained model."""
    return _load(path, FORMAT, ("config", "class_names", "data_recipe", "epoch", "val_accuracy",
                                "layers", "model_state"))


def load_resume(path: Path) -> dict:
    return _load(path, RESUME_FORMAT, ("config", "epoch", "model_state", "optimizers",
                                       "schedulers", "history", "best", "seconds", "rng"))


@dataclass
class LayerSynapses:
    """One connection layer as flat synapse arrays (S synapses): pre, post int64 indices
    (0 <= pre < n_in, 0 <= post < n_out); delay int64 steps (>= 0); weight float64 (sign:
    excitatory + / inhibitory -)."""

    name: str
    n_in: int
    n_out: int
    pre: np.ndarray
    post: np.ndarray
    delay: np.ndarray
    weight: np.ndarray


@dataclass
class RecurrentFloat:
    """A hidden layer's recurrent synapses in float (R synapses among its own n_out neurons):
    pre, post int64 (< n_out), delay int64 steps, weight float64. A spike of neuron `pre` at step
    t adds `weight` to the current of `post` at step t + 1 + delay, after BatchNorm (BatchNorm
    normalises the feed-forward current only): I[t] = a * I_ff[t] + b + sum_rec w s[t - 1 - d].
    In checkpoint files: the layer dict's optional key "recurrent" = {"pre","post","delay",
    "weight"}; absent (old files, feed-forward layers) = None."""

    pre: np.ndarray
    post: np.ndarray
    delay: np.ndarray
    weight: np.ndarray


@dataclass
class CkptLayer(LayerSynapses):
    """One connection layer of a checkpoint with its BatchNorm and neuron (float semantics)."""

    bn: dict | None  # {"weight","bias","running_mean","running_var": (n_out,), "eps": float}
    decay: float  # v multiplier per step = 1 - dv/4096
    dv: int
    threshold: float
    spiking: bool
    # Not in checkpoint files (trainer layers have neither); export.from_nir sets them:
    bias: np.ndarray | None = None  # (n_out,) float64, added to I after BatchNorm
    du: int = 4095  # current decay (Lava du): i = (4095 - du)/4096 * i + I; 4095 = no memory
    recurrent: RecurrentFloat | None = None  # self-connection of a hidden layer (config recurrent)

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

    @property
    def kernel_size(self) -> int:
        """K, delay taps (delays 0..K-1): see `kernel_size_of`."""
        return kernel_size_of(self.config, self.layers, self.path)[0]

    @property
    def kernel_size_source(self) -> str:
        return kernel_size_of(self.config, self.layers, self.path)[1]


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run folder (holding checkpoint.pt) or a checkpoint file -> the file path."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
        if not p.is_file():
            raise CheckpointError(f"run folder {path} has no {CHECKPOINT}; pass a run folder "
                                  "written by `python -m trainer train` or a .pt file")
    elif not p.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return p


def _np(x: Any, dtype, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise CheckpointError(f"{what}: expected a numeric array, got {type(x).__name__}")
    return arr.astype(dtype)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read checkpoint.pt (a run folder or the file) into numpy synapse lists, checked; every
    problem is a CheckpointError naming the file, the layer and the field. The one reader of
    the file for export, the analysis and the report."""
    p = resolve_checkpoint_path(path)
    d = load_torch_file(p, CheckpointError,
                        "pass a checkpoint.pt written by python -m trainer train")
    return checkpoint_from_dict(d, str(p))


def checkpoint_from_dict(d: dict, path: str = "<dict>") -> Checkpoint:
    if not isinstance(d, dict) or d.get("format") != "delaysnn-checkpoint":
        raise CheckpointError(f"{path}: not a delaysnn checkpoint (field 'format' must be "
                          "'delaysnn-checkpoint')")
    if d.get("version") != 1:
        raise CheckpointError(f"{path}: checkpoint version {d.get('version')!r} is not supported "
                          "(this export reads version 1)")
    raw_layers = d.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise CheckpointError(f"{path}: 'layers' must be a non-empty list of connection layers")
    layers: list[CkptLayer] = []
    for i, L in enumerate(raw_layers):
        if not isinstance(L, dict):
            raise CheckpointError(f"{path}: layers[{i}] is a {type(L).__name__}, expected a dict")
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
            raise CheckpointError(f"{where}: missing field {e}") from e
        S = pre.shape[0]
        for arr, nm in ((pre, "pre"), (post, "post"), (delay, "delay"), (weight, "weight")):
            if arr.shape != (S,):
                raise CheckpointError(f"{where}: '{nm}' has shape {arr.shape}, "
                                      f"expected ({S},) like 'pre'")
        if S and (pre.min() < 0 or pre.max() >= n_in):
            raise CheckpointError(f"{where}: 'pre' indices must lie in [0, {n_in}), "
                              f"got [{pre.min()}, {pre.max()}]")
        if S and (post.min() < 0 or post.max() >= n_out):
            raise CheckpointError(f"{where}: 'post' indices must lie in [0, {n_out}), "
                              f"got [{post.min()}, {post.max()}]")
        if S and (np.any(delay != np.round(delay)) or delay.min() < 0):
            raise CheckpointError(f"{where}: delays must be non-negative integers (steps)")
        if not np.all(np.isfinite(weight)):
            raise CheckpointError(f"{where}: weights contain NaN or inf")
        if not 0 <= dv <= 4095 or abs(decay - (1 - dv / 4096)) > 1e-6:
            raise CheckpointError(f"{where}: neuron dv={dv} must be a 12-bit integer with "
                              f"decay = 1 - dv/4096 (got decay {decay})")
        if i > 0 and n_in != layers[-1].n_out:
            raise CheckpointError(f"{where}: n_in={n_in} but the previous layer has "
                              f"n_out={layers[-1].n_out}")
        last = i == len(raw_layers) - 1
        if last and spiking:
            raise CheckpointError(f"{where}: the last layer is the readout and must be non-spiking")
        if not last and not spiking:
            raise CheckpointError(f"{where}: hidden layers must be spiking (only the last layer "
                              "is a non-spiking readout)")
        if spiking and not threshold > 0:
            raise CheckpointError(f"{where}: spiking threshold must be > 0, got {threshold}")
        bn = L.get("bn")
        if bn is not None:
            try:
                bn = {k: _np(bn[k], np.float64, f"{where} bn.{k}")
                      for k in ("weight", "bias", "running_mean", "running_var")} | \
                     {"eps": float(bn["eps"])}
            except KeyError as e:
                raise CheckpointError(f"{where}: bn is missing field {e}") from e
            for k in ("weight", "bias", "running_mean", "running_var"):
                if bn[k].shape != (n_out,):
                    raise CheckpointError(f"{where}: bn.{k} has shape {bn[k].shape}, "
                                      f"expected ({n_out},)")
        rec = _recurrent(L.get("recurrent"), where, n_out, last)
        layers.append(CkptLayer(name, n_in, n_out, pre, post, delay.astype(np.int64), weight,
                                bn, decay, dv, threshold, spiking, recurrent=rec))
    names = [L.name for L in layers]
    if len(set(names)) != len(names):
        raise CheckpointError(f"{path}: layer names repeat: {names}")
    recipe = d.get("data_recipe") or {}
    nc = recipe.get("n_channels")
    if nc is not None and int(nc) != layers[0].n_in:
        raise CheckpointError(f"{path}: data_recipe.n_channels={nc} but the first layer has "
                          f"n_in={layers[0].n_in}")
    class_names = [str(c) for c in d.get("class_names") or []]
    if class_names and len(class_names) != layers[-1].n_out:
        raise CheckpointError(f"{path}: {len(class_names)} class_names but the readout has "
                          f"{layers[-1].n_out} neurons")
    if not class_names:
        class_names = [str(c) for c in range(layers[-1].n_out)]
    va = d.get("val_accuracy")
    return Checkpoint(path=path, layers=layers, class_names=class_names,
                      data_recipe=dict(recipe), config=dict(d.get("config") or {}),
                      epoch=int(d.get("epoch", -1)),
                      val_accuracy=None if va is None else float(va))


def _recurrent(rec, where: str, n_out: int, last: bool) -> RecurrentFloat | None:
    """A layer dict's optional "recurrent" entry -> RecurrentFloat (None when absent), checked
    like the feed-forward synapses."""
    if rec is None:
        return None
    if last:
        raise CheckpointError(f"{where}: the readout (last layer) cannot have recurrent synapses")
    if not isinstance(rec, dict):
        raise CheckpointError(f"{where}: 'recurrent' must be a dict of pre, post, delay, weight, "
                              f"got {type(rec).__name__}")
    try:
        pre = _np(rec["pre"], np.int64, f"{where} recurrent pre")
        post = _np(rec["post"], np.int64, f"{where} recurrent post")
        delay = _np(rec["delay"], np.float64, f"{where} recurrent delay")
        weight = _np(rec["weight"], np.float64, f"{where} recurrent weight")
    except KeyError as e:
        raise CheckpointError(f"{where}: recurrent is missing field {e}") from e
    R = pre.shape[0] if pre.ndim == 1 else -1
    for arr, nm in ((pre, "pre"), (post, "post"), (delay, "delay"), (weight, "weight")):
        if arr.ndim != 1 or arr.shape[0] != R:
            raise CheckpointError(f"{where}: recurrent '{nm}' has shape {arr.shape}, expected "
                                  f"one entry per recurrent synapse like 'pre'")
    if R and (min(pre.min(), post.min()) < 0 or max(pre.max(), post.max()) >= n_out):
        raise CheckpointError(f"{where}: recurrent 'pre' and 'post' must lie in [0, {n_out}) "
                              "(the layer's own neurons)")
    if R and (np.any(delay != np.round(delay)) or delay.min() < 0):
        raise CheckpointError(f"{where}: recurrent delays must be non-negative integers (steps)")
    if not np.all(np.isfinite(weight)):
        raise CheckpointError(f"{where}: recurrent weights contain NaN or inf")
    return RecurrentFloat(pre, post, delay.astype(np.int64), weight)


def kernel_size_of(config: dict[str, Any], layers: list, src) -> tuple[int, str]:
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
