"""The dataset object every source returns, and the plain arrays a source produces."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

DT_MS = 10.0  # one time step = one 10 ms frame / bin, for every source


@dataclass
class SourceSplit:
    """One official split of a source before the validation carve.

    x: float32 (N, T, C); y: int64 (N,); meta: N dicts with at least "speaker" and "file".
    """

    x: np.ndarray
    y: np.ndarray
    meta: list[dict]
    class_names: list[str]

    def subset(self, idx: np.ndarray) -> "SourceSplit":
        idx = np.asarray(idx, dtype=np.int64)
        return SourceSplit(self.x[idx], self.y[idx], [self.meta[i] for i in idx],
                           list(self.class_names))


class FeatureDataset(Dataset):
    """Features for training: ``ds[i] -> (x_i (T, C) float32, y_i int64 scalar, meta_i dict)``.

    Attributes: x torch.float32 (N, T, C), T steps of ``dt_ms`` = 10 ms; y torch.int64 (N,);
    meta list of dicts (at least "speaker": str | None, "file": str | None); class_names;
    dt_ms; recipe (JSON-serialisable; ``trainer.data.dataset_from_recipe(recipe)`` rebuilds it).
    For batches use ``ds.x`` / ``ds.y`` (e.g. ``TensorDataset(ds.x, ds.y)``): PyTorch's default
    collate cannot batch the ``None`` values in ``meta``.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, meta: list[dict], class_names: list[str],
                 recipe: dict):
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
        self.meta = list(meta)
        self.class_names = list(class_names)
        self.dt_ms = DT_MS
        self.recipe = recipe
        assert self.x.ndim == 3 and len(self.x) == len(self.y) == len(self.meta)

    @property
    def n_channels(self) -> int:
        return int(self.x.shape[2])

    @property
    def time_steps(self) -> int:
        return int(self.x.shape[1])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i], self.meta[i]

    def __repr__(self) -> str:
        return (f"FeatureDataset({self.recipe.get('dataset')!r}, "
                f"split={self.recipe.get('split')!r}, N={len(self)}, T={self.time_steps}, "
                f"C={self.n_channels}, classes={len(self.class_names)})")
