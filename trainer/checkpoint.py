"""RUN_DIR files: checkpoint.pt (the export contract, docs/design.md section 2),
checkpoint_init.pt (the same at initialisation, for before/after analyses), last.pt (resume
state), metrics.json, config.json; all written atomically (temp file in the folder + os.replace).
"""
from __future__ import annotations

from pathlib import Path

import torch

from trainer.file_io import load_torch_file

FORMAT, VERSION = "delaysnn-checkpoint", 1
RESUME_FORMAT = "delaysnn-resume"
CHECKPOINT, LAST, METRICS, CONFIG = "checkpoint.pt", "last.pt", "metrics.json", "config.json"
INIT_CHECKPOINT = "checkpoint_init.pt"  # same format, the network at initialisation (epoch 0)


class CheckpointError(ValueError):
    """A RUN_DIR file is missing, corrupt or of another format."""


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
    return {
        "format": FORMAT, "version": VERSION, "config": dict(cfg),
        "class_names": list(class_names), "data_recipe": dict(data_recipe),
        "epoch": int(epoch), "val_accuracy": float(val_accuracy), "layers": layers,
        "model_state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }


def _load(path: Path, fmt: str, required: tuple[str, ...]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    obj = load_torch_file(path, CheckpointError, "delete it or use another RUN_DIR")
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


def load_checkpoint(path: Path) -> dict:
    return _load(path, FORMAT, ("config", "class_names", "data_recipe", "epoch", "val_accuracy",
                                "layers", "model_state"))


def load_resume(path: Path) -> dict:
    return _load(path, RESUME_FORMAT, ("config", "epoch", "model_state", "optimizers",
                                       "schedulers", "history", "best", "seconds", "rng"))
