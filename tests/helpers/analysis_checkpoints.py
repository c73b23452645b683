"""Hand-built checkpoints (docs/design.md section 2) for the analysis tests.

`clustered`: each neuron's signs follow a smooth random field over (channel, delay), so
excitatory and inhibitory synapses form spatio-temporal blobs; `random`: the same positions and
magnitudes with independent random signs (what an initialisation looks like).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

K = 25


def sparse_layer(name: str, n_in: int, n_out: int, density: float, signs: str,
                 rng: np.random.Generator) -> dict:
    """One layer with round(density * n_in * K) distinct (pre, delay) sites per neuron."""
    per = int(round(density * n_in * K))
    pre, post, delay, weight = [], [], [], []
    for j in range(n_out):
        cells = rng.choice(n_in * K, size=per, replace=False)
        c, d = np.divmod(cells, K)
        mag = rng.uniform(0.05, 1.0, per)
        if signs == "clustered":
            ph = rng.uniform(0, 2 * np.pi, 2)
            field = np.sin(2 * np.pi * c / 16 + ph[0]) + np.sin(2 * np.pi * d / 12 + ph[1])
            s = np.where(field >= 0, 1.0, -1.0)
        elif signs == "random":
            s = rng.choice([-1.0, 1.0], size=per)
        else:
            raise ValueError(signs)
        pre.append(c); post.append(np.full(per, j)); delay.append(d); weight.append(s * mag)
    cat = np.concatenate
    return {"name": name, "n_in": n_in, "n_out": n_out,
            "pre": torch.from_numpy(cat(pre).astype(np.int64)),
            "post": torch.from_numpy(cat(post).astype(np.int64)),
            "delay": torch.from_numpy(cat(delay).astype(np.int64)),
            "weight": torch.from_numpy(cat(weight).astype(np.float32)),
            "bn": None, "neuron": {"decay": 1 - 410 / 4096, "dv": 410, "threshold": 1.0,
                                   "spiking": name != "readout"}}


def checkpoint(signs: str, seed: int = 0, n_in: int = 40, hidden: int = 32, n_out: int = 5,
               density: float = 0.1, epoch: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    return {"format": "delaysnn-checkpoint", "version": 1,
            "config": {"kernel_size": K, "method": "structure", "sparsity": 1 - density},
            "class_names": [str(i) for i in range(n_out)], "data_recipe": {}, "epoch": epoch,
            "val_accuracy": 0.0,
            "layers": [sparse_layer("fc1", n_in, hidden, density, signs, rng),
                       sparse_layer("readout", hidden, n_out, density, signs, rng)],
            "model_state": {}}


def write_run(run_dir: Path, trained: str = "clustered", init: str | None = "random") -> Path:
    """RUN_DIR with checkpoint.pt (`trained` signs) and checkpoint_init.pt (`init`, if given)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint(trained, seed=1), run_dir / "checkpoint.pt")
    if init is not None:
        torch.save(checkpoint(init, seed=2, epoch=0), run_dir / "checkpoint_init.pt")
    return run_dir
