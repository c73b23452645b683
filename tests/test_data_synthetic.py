"""The synthetic timing task: class information is in relative timing, not in channel energy."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainer.data import DataError, dataset_from_recipe, load_dataset
from trainer.data.synthetic import channel_groups, class_offsets


def nearest_centroid_accuracy(f_train, y_train, f_test, y_test) -> float:
    classes = np.unique(y_train)
    centroids = np.stack([f_train[y_train == c].mean(axis=0) for c in classes])
    d = ((f_test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return float((classes[d.argmin(axis=1)] == y_test).mean())


def group_onsets(x: np.ndarray) -> np.ndarray:
    """Centre of mass in time (steps) of each channel group's activity: (N, G)."""
    grp = channel_groups(x.shape[2])
    per_group = np.stack([x[:, :, grp == g].mean(axis=2) for g in range(grp.max() + 1)], axis=2)
    w = np.clip(per_group - 0.01, 0.0, None)            # above the noise floor
    t = np.arange(x.shape[1])[None, :, None]
    return (w * t).sum(axis=1) / w.sum(axis=1)


def test_defaults_shapes_range_and_determinism():
    tr = load_dataset()                       # synthetic is the default
    va = load_dataset(split="val")
    te = load_dataset(split="test")
    assert (len(tr), len(va), len(te)) == (900, 100, 200)
    assert tr.x.shape == (900, 100, 40) and tr.x.dtype == torch.float32 and tr.y.dtype == torch.int64
    assert float(tr.x.min()) >= 0.0 and float(tr.x.max()) <= 80 * 0.00099 + 1e-7
    assert float(tr.x.max()) > 0.06
    assert len(tr.class_names) == 10
    assert np.bincount(te.y.numpy()).tolist() == [20] * 10
    assert np.bincount(va.y.numpy()).tolist() == [10] * 10      # stratified carve
    again = dataset_from_recipe(json.loads(json.dumps(tr.recipe)))
    assert torch.equal(again.x, tr.x) and torch.equal(again.y, tr.y)
    other = load_dataset(data_seed=1)
    assert not torch.equal(other.x, tr.x)
    assert not torch.equal(load_dataset(seed=1).y, tr.y)            # seed moves the val carve only


def test_timing_carries_the_class_and_energy_does_not():
    tr = load_dataset(val_fraction=0.0)
    te = load_dataset(split="test")
    xtr, ytr, xte, yte = tr.x.numpy(), tr.y.numpy(), te.x.numpy(), te.y.numpy()
    # time-averaged features (per-channel energy): near chance (0.1)
    acc_energy = nearest_centroid_accuracy(xtr.mean(axis=1), ytr, xte.mean(axis=1), yte)
    # lags between channel groups (onset of group g minus onset of group 0): far above chance
    lag = lambda x: group_onsets(x)[:, 1:] - group_onsets(x)[:, :1]
    acc_lag = nearest_centroid_accuracy(lag(xtr), ytr, lag(xte), yte)
    assert acc_energy < 0.2, acc_energy
    assert acc_lag > 0.9, acc_lag
    # and the measured lags are the class offsets the generator used (within jitter)
    off = class_offsets(10, 40, 100, 0)
    measured = np.stack([lag(xtr)[ytr == c].mean(axis=0) for c in range(10)])
    np.testing.assert_allclose(measured, off[:, 1:] - off[:, :1], atol=0.6)


def test_sizes_channels_and_steps_are_options():
    ds = load_dataset("synthetic", "test", n_mels=30, time_steps=60, n_classes=12, n_test=48)
    assert ds.x.shape == (48, 60, 30) and len(ds.class_names) == 12
    assert ds.recipe["options"]["n_classes"] == 12 and ds.recipe["n_channels"] == 30


def test_groups_are_never_active_together():
    """Within a class every group has its own slot, >= 8 steps from the others (T = 100)."""
    off = class_offsets(10, 40, 100, 0)
    gaps = np.diff(np.sort(off, axis=1), axis=1)
    assert gaps.min() >= 8 and off.max() <= 24


def test_few_channels_still_give_four_groups_and_fewer_are_refused_clearly():
    # any C >= 4 channels: 4 groups, 24 orders of the slots
    assert len(load_dataset("synthetic", "test", n_mels=10, time_steps=30, n_classes=24, n_test=24)) == 24
    # 2 channels = 2 groups over 4 slots: 6 relative timings (+-8, +-16, +-24 steps)
    assert len(load_dataset("synthetic", "test", n_mels=2, n_classes=6, n_test=6)) == 6
    with pytest.raises(DataError, match=r"2 channels \(2 groups\) in 100 steps give only 6 timing "
                                        r"patterns, fewer than n_classes=7; use fewer classes"):
        load_dataset("synthetic", "test", n_mels=2, n_classes=7)
