"""A small numpy simulation of the exported integer network (export's own accuracy check).

It follows Lava's fixed_pt arithmetic (see export.lava_rules) in int64 numpy, in "aligned" time:
every layer's step t is the trained model's step t, and each layer starts from u = v = 0 at its
first aligned step (in Lava: LIFReset with a per-layer reset offset, so the bias does not act
during the layers' latency steps). Synapses follow DelayDense: each delay slot's weighted sum is
shifted by weight_exp separately. The bit-exact reference emulator is lava_runtime.emulator;
this one exists so export can report the integer network's accuracy on its own, and it is tested
bit for bit against lava-dl netx on small networks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from export import lava_rules as lr
from export.deployed import DeployedNetwork
from export.float_reference import softmax_scores


@dataclass
class IntegerResult:
    readout_v: np.ndarray  # (N, T, n_classes) int64 Lava voltage, aligned with the float model
    spikes: list[np.ndarray]  # per hidden layer (N, T, n) uint8

    def scores(self, net: DeployedNetwork) -> np.ndarray:
        return softmax_scores(self.readout_v.astype(np.float64) * net.readout.neurons.v_scale)

    def predictions(self, net: DeployedNetwork) -> np.ndarray:
        return self.scores(net).argmax(axis=1)


def layer_a_in(layer, x: np.ndarray) -> np.ndarray:
    """(N, T, n_in) int payloads/spikes -> (N, T, n_out) int64 a_in (before the << 6)."""
    N, T, n_in = x.shape
    out = np.zeros((layer.n_out, N, T), dtype=np.int64)
    # integer products summed in float64: exact while |sums| < 2^53 (checked here)
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(layer.weight).sum())
    if bound >= 2 ** 53:
        raise ValueError(f"layer {layer.name}: synaptic sums could reach {bound:.3g} >= 2^53")
    xt = np.ascontiguousarray(x.reshape(N * T, n_in).T, dtype=np.float64)  # (n_in, N*T)
    for d in np.unique(layer.delay):
        d = int(d)
        if d >= T:
            continue
        sel = layer.delay == d
        Wt = sp.coo_matrix((layer.weight[sel].astype(np.float64),
                            (layer.post[sel], layer.pre[sel])), shape=(layer.n_out, n_in)).tocsr()
        z = np.rint(Wt @ xt).astype(np.int64).reshape(layer.n_out, N, T)
        out[:, :, d:] += lr.shift(z[:, :, :T - d], layer.weight_exp)
    return out.transpose(1, 2, 0)


def simulate_integer(net: DeployedNetwork, payloads: np.ndarray, *, state_bits: int = 24,
                     batch_size: int = 64) -> IntegerResult:
    """Run the DeployedNetwork on int payloads (N, T, C) (from net.input.encode)."""
    x = np.asarray(payloads, dtype=np.int64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != net.input.n_channels:
        raise ValueError(f"payloads must be (N, T, {net.input.n_channels}), got {x.shape}")
    parts = [_run(net, x[i:i + batch_size], state_bits) for i in range(0, len(x), batch_size)]
    return IntegerResult(np.concatenate([p.readout_v for p in parts]),
                         [np.concatenate([p.spikes[k] for p in parts])
                          for k in range(len(net.layers) - 1)])


def _run(net: DeployedNetwork, x: np.ndarray, state_bits: int) -> IntegerResult:
    vmax = 2 ** (state_bits - 1) - 1
    spikes, readout = [], None
    h = x
    for layer in net.layers:
        nrn = layer.neurons
        a_in = layer_a_in(layer, h)
        N, T, n = a_in.shape
        bias = lr.shift(nrn.bias_mant, nrn.bias_exp)
        vth = np.int64(nrn.vth) << lr.VTH_SHIFT
        u = np.zeros((N, n), dtype=np.int64)
        v = np.zeros((N, n), dtype=np.int64)
        rec = np.zeros((N, T, n), dtype=np.int64 if not nrn.spiking else np.uint8)
        for t in range(T):
            u = lr.wrap_u(lr.trunc_decay(u, nrn.du + 1)
                          + lr.int32_wrap(a_in[:, t] << lr.ACT_SHIFT), state_bits)
            v = np.clip(lr.trunc_decay(v, nrn.dv) + u + bias, -vmax, vmax)
            if nrn.spiking:
                s = v > vth
                rec[:, t] = s
                v = np.where(s, 0, v)
            else:
                rec[:, t] = v
        if nrn.spiking:
            spikes.append(rec)
            h = rec
        else:
            readout = rec
    return IntegerResult(readout, spikes)
