"""Accuracy of a trained network: integer delays with one-hot kernels (what export deploys)
and, where they exist, the training-time Gaussian kernels."""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import CHECKPOINT, load_checkpoint_dict
from .model import DelaySNN, class_scores

EVAL_BATCH = 256


@torch.no_grad()
def predict(model: DelaySNN, x: torch.Tensor, hard: bool, device=None,
            batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Predicted class per sample (argmax of the summed softmax), int64 (N,), on CPU."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    out = [class_scores(model(x[i:i + batch_size].to(device), hard=hard)).argmax(1).cpu()
           for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def accuracy(model: DelaySNN, x: torch.Tensor, y: torch.Tensor, hard: bool, device=None) -> float:
    """Fraction of samples classified correctly (0..1)."""
    if len(y) == 0:
        raise ValueError("cannot compute an accuracy on an empty split")
    return float((predict(model, x, hard, device) == y.cpu()).float().mean())


def model_from_checkpoint(ckpt: dict, device="cpu") -> DelaySNN:
    """Rebuild the network a checkpoint dict describes and load its weights."""
    cfg, recipe = ckpt["config"], ckpt["data_recipe"]
    model = DelaySNN(int(recipe["n_channels"]), len(ckpt["class_names"]), cfg)
    model.load_state_dict(ckpt["model_state"])
    return model.to(device).eval()


def has_train_kernels(cfg: dict) -> bool:
    """Whether training used kernels that differ from the deployed integer-delay ones."""
    return cfg["method"] == "dcls"


def evaluate(run_dir: str | Path, split: str = "test", data_dir: str | Path | None = None,
             device: str = "cpu") -> dict:
    """Accuracies of RUN_DIR/checkpoint.pt on ``split`` (train, val or test):
    {"split", "accuracy" (integer delays, hard kernels), "accuracy_train_kernels", "epoch",
    "n_samples"}. data_dir overrides the dataset folder stored in the checkpoint."""
    from trainer.data import dataset_from_recipe
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; use train, val or test")
    ckpt = load_checkpoint_dict(Path(run_dir) / CHECKPOINT)
    recipe = dict(ckpt["data_recipe"])
    if data_dir is not None:
        recipe["data_dir"] = str(data_dir)
    ds = dataset_from_recipe(recipe, split)
    model = model_from_checkpoint(ckpt, device)
    hard = accuracy(model, ds.x, ds.y, hard=True)
    soft = accuracy(model, ds.x, ds.y, hard=False) if has_train_kernels(ckpt["config"]) else hard
    return {"split": split, "accuracy": hard, "accuracy_train_kernels": soft,
            "epoch": ckpt["epoch"], "n_samples": len(ds)}
