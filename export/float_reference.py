"""The FLOAT model with integer delays, simulated straight from a checkpoint's synapse lists.

Semantics (docs/design.md section 2), per sample, per layer, per step t = 0..T-1:

    I[t] = a * sum_syn w * in[t - delay] + b      (a, b: folded BatchNorm; a = 1, b = 0 without)
    v[t] = decay * v[t-1] + I[t]                   (v[-1] = 0)
    layers with a synaptic current (CkptLayer.du < 4095, only from export.from_nir, Lava's u):
    i[t] = current_decay * i[t-1] + (I[t] - b);  v[t] = decay * v[t-1] + i[t] + b
    spike[t] = v[t] > threshold;  v[t] = 0 where spike      (hidden layers)
    recurrent layers (CkptLayer.recurrent): I[t] += sum_rec w * spike[t - 1 - delay] (after
    BatchNorm; spikes before step 0 are 0), inside the time loop
    readout: the same without spikes; prediction = argmax_c sum_t softmax(v_readout[t])_c

Inputs of the first layer are the float features (N, T, C), gated by the input event threshold
(deployed.network.InputEncoding); hidden layers receive 0/1 spikes.
Arithmetic is float64 (numpy + scipy.sparse), deterministic. Consumers: export calibration and
report, tests comparing float vs Lava accuracy, the demo.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from deployed.network import gate_events
from trainer.checkpoint import Checkpoint, RecurrentFloat, load_checkpoint


@dataclass
class LayerStats:
    """Ranges seen by one layer during a float simulation (float units)."""

    max_abs_current: float  # max |I[t]| (after BatchNorm), and of |i[t]| if there is a current
    min_v: float  # most negative membrane voltage
    max_v: float  # largest membrane voltage (before the spike reset)
    spike_rate: float  # spikes per neuron per step (0 for the readout)

    def to_dict(self) -> dict:
        return {"max_abs_current": self.max_abs_current, "min_v": self.min_v,
                "max_v": self.max_v, "spike_rate": self.spike_rate}


@dataclass
class FloatResult:
    readout_v: np.ndarray  # (N, T, n_classes) float64, readout voltage per step
    stats: list[LayerStats]
    spikes: list[np.ndarray] = field(default_factory=list)  # per hidden layer (N, T, n) uint8

    def scores(self) -> np.ndarray:
        """(N, n_classes): sum over steps of softmax(readout voltage)."""
        return softmax_scores(self.readout_v)

    def predictions(self) -> np.ndarray:
        return self.scores().argmax(axis=1)


def softmax_scores(v: np.ndarray) -> np.ndarray:
    """(N, T, C) voltages -> (N, C) sum over T of softmax over C."""
    v = v - v.max(axis=-1, keepdims=True)
    e = np.exp(v)
    return (e / e.sum(axis=-1, keepdims=True)).sum(axis=1)


def delay_matrices(pre: np.ndarray, post: np.ndarray, delay: np.ndarray, weight: np.ndarray,
                   n_in: int, n_out: int) -> list[tuple[int, sp.csr_matrix]]:
    """[(d, W_d)] with W_d (n_out, n_in) sparse: the synapses of delay d (duplicates summed)."""
    out = []
    for d in np.unique(delay):
        sel = delay == d
        W = sp.coo_matrix((weight[sel], (post[sel], pre[sel])), shape=(n_out, n_in)).tocsr()
        out.append((int(d), W))
    return out


def synaptic_input(x: np.ndarray, mats: list[tuple[int, sp.csr_matrix]], n_out: int) -> np.ndarray:
    """(N, T, n_in) inputs -> (N, T, n_out): sum_d W_d x[t - d] (zero before step 0)."""
    N, T, n_in = x.shape
    out = np.zeros((n_out, N, T))
    xt = np.ascontiguousarray(x.reshape(N * T, n_in).T, dtype=np.float64)
    for d, W in mats:
        if d >= T or W.nnz == 0:
            continue
        z = (W @ xt).reshape(n_out, N, T)
        out[:, :, d:] += z[:, :, :T - d]
    return out.transpose(1, 2, 0)


class RecurrentInput:
    """A layer's recurrent synapses as one sparse (n, L * n) matrix over a window of its last
    L = max delay + 1 spike steps (oldest first: spike[t - 1 - d] is block L - 1 - d), so each
    step costs one product over the recurrent synapses for all samples (duplicates summed)."""

    def __init__(self, rec: RecurrentFloat, n: int):
        self.L, self.n = int(rec.delay.max()) + 1 if rec.delay.size else 1, n
        cols = (self.L - 1 - rec.delay) * n + rec.pre
        self.M = sp.coo_matrix((rec.weight, (rec.post, cols)), shape=(n, self.L * n)).tocsr()

    def history(self, T: int, N: int) -> np.ndarray:
        """Spike history (L + T, n, N), zero before step 0: row L + t holds spike[t]."""
        return np.zeros((self.L + T, self.n, N))

    def current(self, hist: np.ndarray, t: int) -> np.ndarray:
        """(N, n) recurrent current at step t."""
        return np.asarray(self.M @ hist[t:t + self.L].reshape(self.L * self.n, -1)).T

    def store(self, hist: np.ndarray, t: int, spikes: np.ndarray) -> None:
        hist[self.L + t] = spikes.T


def _as_checkpoint(model) -> Checkpoint:
    if isinstance(model, Checkpoint):
        return model
    if isinstance(model, (str, Path)):
        return load_checkpoint(model)
    raise TypeError(f"expected a Checkpoint or a checkpoint path, got {type(model).__name__}")


def simulate_float(model: Checkpoint | str | Path, x, *, keep_spikes: bool = False,
                   batch_size: int = 128) -> FloatResult:
    """Run the float model on features x (N, T, C) (numpy or torch); see the module docstring."""
    ck = _as_checkpoint(model)
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != ck.n_channels:
        raise ValueError(f"features must be (N, T, {ck.n_channels}), got shape {x.shape}")
    x = gate_events(x, ck.input_threshold)
    prepared = []
    for L in ck.layers:
        a, b = L.bn_affine()
        wf = L.weight * a[L.post]
        prepared.append((L, delay_matrices(L.pre, L.post, L.delay, wf, L.n_in, L.n_out), b,
                         None if L.recurrent is None else RecurrentInput(L.recurrent, L.n_out)))
    n_layers = len(ck.layers)
    agg = [dict(cur=0.0, vmin=0.0, vmax=0.0, spikes=0.0, count=0) for _ in ck.layers]
    readouts: list[np.ndarray] = []
    spikes_all: list[list[np.ndarray]] = [[] for _ in range(n_layers - 1)]
    for start in range(0, x.shape[0], batch_size):
        h = x[start:start + batch_size]
        for li, (L, mats, b, rin) in enumerate(prepared):
            I = synaptic_input(h, mats, L.n_out) + b
            N, T, _ = I.shape
            v = np.zeros((N, L.n_out))
            rec = np.zeros((N, T, L.n_out))
            vmin, vmax = 0.0, 0.0
            cur, i_max = np.zeros((N, L.n_out)), 0.0
            hist = rin.history(T, N) if rin is not None else np.empty(0)
            for t in range(T):
                I_t = I[:, t]
                if rin is not None:
                    I_t = I_t + rin.current(hist, t)
                    i_max = max(i_max, float(np.abs(I_t).max()) if I_t.size else 0.0)
                if L.du == 4095:
                    v = L.decay * v + I_t
                else:  # synaptic current state (Lava u); the bias enters v, as in Lava
                    cur = L.current_decay * cur + (I_t - b)
                    i_max = max(i_max, float(np.abs(cur).max()) if cur.size else 0.0)
                    v = L.decay * v + cur + b
                vmin, vmax = min(vmin, float(v.min())), max(vmax, float(v.max()))
                if L.spiking:
                    s = v > L.threshold
                    rec[:, t] = s
                    v = np.where(s, 0.0, v)
                    if rin is not None:
                        rin.store(hist, t, s)
                else:
                    rec[:, t] = v
            st = agg[li]
            st["cur"] = max(st["cur"], i_max, float(np.abs(I).max()) if I.size else 0.0)
            st["vmin"], st["vmax"] = min(st["vmin"], vmin), max(st["vmax"], vmax)
            st["count"] += N * T * L.n_out
            if L.spiking:
                st["spikes"] += float(rec.sum())
                if keep_spikes:
                    spikes_all[li].append(rec.astype(np.uint8))
                h = rec
            else:
                readouts.append(rec)
    stats = [LayerStats(s["cur"], s["vmin"], s["vmax"],
                        s["spikes"] / s["count"] if s["count"] else 0.0) for s in agg]
    spikes = [np.concatenate(s) for s in spikes_all] if keep_spikes else []
    return FloatResult(np.concatenate(readouts), stats, spikes)
