"""Hand-made checkpoints (docs/design.md section 2) for the export tests.

Faster than training and fully controlled: they build the edge cases (delay above the profile
limit, fan-in above the limit, several synapses per pair). Tests that need a trained network
train one (tests/test_export_trained.py, tests/test_runtime_stock_models.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def make_checkpoint(sizes=(12, 24, 16, 5), *, seed=0, density=0.6, max_delay=8, bn=True,
                    multi=0, time_steps=25, dv=(400, 300, 200), thresholds=(1.0, 0.8),
                    weight_scale=0.6) -> dict:
    """A random multi-layer checkpoint dict; `multi` extra synapses per layer reuse a
    (post, pre) pair with another delay (structure-multi)."""
    rng = np.random.default_rng(seed)
    layers = []
    n_layers = len(sizes) - 1
    for i in range(n_layers):
        n_in, n_out = sizes[i], sizes[i + 1]
        mask = rng.random((n_out, n_in)) < density
        post, pre = np.nonzero(mask)
        delay = rng.integers(0, max_delay + 1, size=post.size)
        if multi:
            pick = rng.choice(post.size, size=min(multi, post.size), replace=False)
            extra_d = (delay[pick] + 1 + rng.integers(0, 3, size=pick.size)) % (max_delay + 1)
            extra_d = np.where(extra_d == delay[pick], (extra_d + 1) % (max_delay + 1), extra_d)
            post = np.concatenate([post, post[pick]])
            pre = np.concatenate([pre, pre[pick]])
            delay = np.concatenate([delay, extra_d])
        w = rng.normal(0.15, 1.0, size=post.size) * weight_scale * 3 / np.sqrt(n_in * density)
        spiking = i < n_layers - 1
        d = dv[min(i, len(dv) - 1)]
        layer = {"name": f"fc{i + 1}", "n_in": n_in, "n_out": n_out,
                 "pre": torch.tensor(pre, dtype=torch.int64),
                 "post": torch.tensor(post, dtype=torch.int64),
                 "delay": torch.tensor(delay, dtype=torch.int64),
                 "weight": torch.tensor(w, dtype=torch.float32),
                 "bn": None,
                 "neuron": {"decay": 1 - d / 4096, "dv": int(d),
                            "threshold": float(thresholds[min(i, len(thresholds) - 1)])
                            if spiking else 1.0,
                            "spiking": spiking}}
        if bn:
            layer["bn"] = {"weight": torch.tensor(rng.uniform(0.7, 1.3, n_out), dtype=torch.float32),
                           "bias": torch.tensor(rng.normal(0.05, 0.05, n_out), dtype=torch.float32),
                           "running_mean": torch.tensor(rng.normal(0, 0.1, n_out), dtype=torch.float32),
                           "running_var": torch.tensor(rng.uniform(0.5, 1.5, n_out), dtype=torch.float32),
                           "eps": 1e-5}
        layers.append(layer)
    return {"format": "delaysnn-checkpoint", "version": 1,
            "config": {"method": "handmade", "seed": seed},
            "class_names": [f"c{k}" for k in range(sizes[-1])],
            "data_recipe": {"dataset": "handmade", "n_channels": sizes[0],
                            "time_steps": time_steps},
            "epoch": 0, "val_accuracy": 0.0, "layers": layers, "model_state": {}}


def save_checkpoint(ck: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "checkpoint.pt"
    torch.save(ck, path)
    return path


def make_features(n=16, time_steps=25, channels=12, *, seed=1, n_classes=5):
    """Non-negative features (N, T, C) with class-dependent channel bands, and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    x = rng.random((n, time_steps, channels)) * 0.5
    band = channels // n_classes or 1
    for i, c in enumerate(y):
        x[i, :, (c * band) % channels:(c * band) % channels + band] += 1.0
    return x.astype(np.float32), y.astype(np.int64)
