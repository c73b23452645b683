"""export.float_reference against a naive per-synapse loop of docs/design.md section 2."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.checkpoint import checkpoint_from_dict
from trainer.checkpoint import CheckpointError
from export.float_reference import simulate_float
from helpers.export_checkpoints import make_checkpoint, make_features


def naive(ck, x):
    """One sample, one synapse at a time."""
    h = x
    for L in ck.layers:
        T = h.shape[0]
        I = np.zeros((T, L.n_out))
        for s in range(L.pre.size):
            for t in range(T):
                if t - L.delay[s] >= 0:
                    I[t, L.post[s]] += L.weight[s] * h[t - L.delay[s], L.pre[s]]
        if L.bn is not None:
            a = L.bn["weight"] / np.sqrt(L.bn["running_var"] + L.bn["eps"])
            I = a * (I - L.bn["running_mean"]) + L.bn["bias"]
        v = np.zeros(L.n_out)
        out = np.zeros((T, L.n_out))
        for t in range(T):
            v = L.decay * v + I[t]
            if L.spiking:
                s = v > L.threshold
                out[t] = s
                v[s] = 0
            else:
                out[t] = v
        h = out
    return h


def test_matches_naive_loop():
    ck = checkpoint_from_dict(make_checkpoint(sizes=(6, 9, 4), time_steps=12, multi=3, seed=2))
    x, _ = make_features(3, time_steps=12, channels=6, n_classes=4)
    res = simulate_float(ck, x, keep_spikes=True)
    assert res.spikes[0].sum() > 0
    for i in range(3):
        np.testing.assert_allclose(res.readout_v[i], naive(ck, x[i].astype(np.float64)),
                                   rtol=0, atol=1e-9)
    sc = res.scores()
    assert sc.shape == (3, 4) and np.allclose(sc.sum(axis=1), 12)
    assert np.array_equal(res.predictions(), sc.argmax(axis=1))


def test_rejects_bad_checkpoints():
    d = make_checkpoint()
    d["layers"][1]["n_in"] = 99
    with pytest.raises(CheckpointError, match=r"layer 1 \(fc2\): n_in=99 but the previous layer"):
        checkpoint_from_dict(d)
    d = make_checkpoint()
    d["layers"][-1]["neuron"]["spiking"] = True
    with pytest.raises(CheckpointError, match="readout and must be non-spiking"):
        checkpoint_from_dict(d)
    d = make_checkpoint()
    d["layers"][0]["neuron"]["decay"] = 0.5
    with pytest.raises(CheckpointError, match="decay = 1 - dv/4096"):
        checkpoint_from_dict(d)
    with pytest.raises(CheckpointError, match="not a delaysnn checkpoint"):
        checkpoint_from_dict({"format": "other"})
