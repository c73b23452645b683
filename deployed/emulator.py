"""Bit-exact emulator of the Lava fixed_pt graph (lava_runtime.lava_graph.graph), batched.

Time is in window steps k (input step t is sent at k = t). Each connection layer adds one step
of latency, so layer i (0-based) first receives input at window step i + 1. Layer i starts from
u = v = 0 at window step s_i = net.start_step(i) (the Lava graph resets it at that step) and its
outputs before it are 0: s_i = i + 1 for "aligned" networks (checkpoints: the trained model's
time axis, docs/design.md section 2: layer i's window step t + i + 1 is the float model's step
t, and its bias starts acting at its step 0, not earlier), s_i = 0 for "zero" networks (imported
from lava-dl netx, which runs every layer from its first step; docs/design.md section 8).
Per layer i and window step k >= s_i (int64 arithmetic):

    a_in[k] = sum over processes s, delays d of  shift(W_s,d @ x[k - 1 - d], weight_exp_s)
    u = wrap24(trunc(u * (4096 - du - 1) / 4096) + (a_in << 6))
    v = clip24(trunc(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp))
    spike = v > vth << 6;  v[spike] = 0           (readout: no spike test, v recorded;
                                                   a spiking output layer: both recorded)

x is the previous layer's output (the payloads for layer 0), 0 before that layer's start step,
which is what the Lava graph delivers: each connection process drops its delay buffer at the
step its presynaptic layer starts. W_s,d holds the weights of slot s (one Lava connection
process) with delay d, as Lava applies them (clip + truncate per slot,
fixed_point.lava_weights); the shift is applied per slot, delay and source step, as Lava's delay
models do.

A recurrent layer (ConnectionLayer.recurrent) adds, inside the per-step loop, the input its
own spikes send back over its recurrent synapses (same timing rule, binary spikes):

    a_in[k] += sum over recurrent slots s, delays d of  shift(R_s,d @ spike[k - 1 - d], rec_exp)

read from a ring buffer of the layer's last max recurrent delay + 1 spike steps (its spikes
before its start step are 0), floored per (slot, delay, post) group as Lava's delay models do;
one sparse product over the recurrent synapses and one over the groups per step, for all samples
of a chunk at once.

Synaptic sums are exact integer sums done as float64 matrix products (every partial sum is
validated to stay below 2**31).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from deployed import fixed_point as fp
from deployed.activity import Activity
from deployed.network import ConnectionLayer, DeployedNetwork
from deployed.validate import max_input_current, validate_network, validate_payloads

_CHUNK_ELEMS = 2 ** 22  # samples go in chunks of at most this many (step x row) elements: cache


def _synapse_groups(layer: ConnectionLayer, max_payload: int) -> list[dict]:
    """Per connection process (ConnectionLayer.processes: a slot, or the part of a slot with
    one weight exponent): a sparse (G, n_in) float64 matrix whose row g holds the Lava-applied
    weights of the synapses of group g, a group being the synapses of one (delay, post) pair,
    which Lava sums before the weight_exp shift. Rows are sorted by delay, so each delay is a
    contiguous block. The matrix is float32 when every group sum is below 2**24 for payloads up
    to max_payload (float32 is then exact and twice as fast)."""
    out = []
    for w, d, exp in layer.processes():
        w = fp.lava_weights(w, layer.num_weight_bits)
        post, pre = np.nonzero(w)
        delay = d[post, pre]
        g_key, row = np.unique(delay * layer.n_out + post, return_inverse=True)
        wv = w[post, pre]
        bound = np.bincount(row, weights=np.abs(wv) * float(max_payload)).max(initial=0)
        dtype = np.float32 if bound < 2 ** 24 else np.float64
        # weights pre-scaled by 2**weight_exp: exact (a power of two), so a group's sum is
        # already sum(w * x) * 2**weight_exp and only the floor of a right shift remains
        mat = sp.csr_matrix(((wv * 2.0 ** exp).astype(dtype), (row, pre)),
                            shape=(len(g_key), layer.n_in))
        g_delay, g_post = g_key // layer.n_out, g_key % layer.n_out
        bounds = np.flatnonzero(np.diff(g_delay, prepend=-1, append=-1))
        blocks = [(int(g_delay[lo]), lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        out.append({"mat": mat, "post": g_post, "blocks": blocks, "floor": exp < 0})
    return out


def synaptic_input(layer: ConnectionLayer, x: np.ndarray, groups=None) -> np.ndarray:
    """a_in that `layer`'s LIF receives, as (K, n_out, N) float holding exact integers, for
    presynaptic activity x (n_in, K, N) (payloads or 0/1 spikes; x[:, k] is sent at window
    step k). Layouts keep every inner loop contiguous over samples.

    Sums are float64 products of integers below 2**31 (validated), hence exact; the weight_exp
    shift is an exact power-of-two scaling followed by floor (= arithmetic right shift)."""
    n_in, steps, n = x.shape
    if groups is None:
        mb = layer.input_message_bits
        groups = _synapse_groups(layer, 2 ** mb - 1 if mb else 1)
    # float32 accumulation is exact when every neuron's input stays below 2**24 (the bound
    # counts one extra unit per synapse for the floors of negative sums)
    mb = layer.input_message_bits
    bound = max_input_current(layer, 2 ** mb - 1 if mb else 1) + layer.n_synapses
    a_in: np.ndarray = np.zeros((steps, layer.n_out, n),
                                dtype=np.float32 if bound < 2 ** 24 else np.float64)
    x2 = x.reshape(n_in, steps * n)
    for g in groups:
        if g["mat"].shape[0] == 0:
            continue
        xf = x2 if x2.dtype == g["mat"].dtype else x2.astype(g["mat"].dtype)
        acc = np.asarray(g["mat"] @ xf)
        if g["floor"]:
            np.floor(acc, out=acc)
        acc = acc.reshape(-1, steps, n)
        for delay, lo, hi in g["blocks"]:
            span = steps - 1 - delay  # source steps whose arrival k + 1 + d is in the window
            if span > 0:
                a_in[1 + delay:, g["post"][lo:hi], :] += acc[lo:hi, :span, :].transpose(1, 0, 2)
    return a_in


class _Recurrence:
    """A layer's recurrent synapses, ready for the per-step loop: `rows` (R nonzero synapses
    as one sparse (G, L * n) matrix over the ring's window, G = (slot, delay, post) groups,
    weights pre-scaled by 2**weight_exp) and `to_post` (n, G) summing floored groups per post.
    The ring holds the last L = max delay + 1 spike steps, oldest first: spike[k - 1 - d] is
    row L - 1 - d of the window read at step k."""

    def __init__(self, layer: ConnectionLayer):
        rec = layer.recurrent
        assert rec is not None
        n = layer.n_out
        self.L = rec.max_delay + 1
        self.shift_floor = rec.weight_exp < 0
        keys, cols, vals = [], [], []
        for slot, (w, d) in enumerate(rec.slots(n)):
            w = fp.lava_weights(w, rec.num_weight_bits)
            post, pre = np.nonzero(w)
            keys.append((slot * self.L + d[post, pre]) * n + post)
            cols.append((self.L - 1 - d[post, pre]) * n + pre)
            vals.append(w[post, pre] * 2.0 ** rec.weight_exp)
        key = np.concatenate(keys)
        g_key, row = np.unique(key, return_inverse=True)
        self.rows = sp.csr_matrix((np.concatenate(vals), (row, np.concatenate(cols))),
                                  shape=(len(g_key), self.L * n))
        self.to_post = sp.csr_matrix((np.ones(len(g_key)), (g_key % n, np.arange(len(g_key)))),
                                     shape=(n, len(g_key)))

    def ring(self, n: int, samples: int) -> np.ndarray:
        """An empty ring, doubled so the window is always one contiguous slice."""
        return np.zeros((2 * self.L, n, samples))

    def input(self, ring: np.ndarray, k: int) -> np.ndarray:
        """Recurrent a_in (n, N) at step k from the spikes of steps k - L .. k - 1."""
        lo = k % self.L
        window = ring[lo:lo + self.L].reshape(-1, ring.shape[2])
        acc = np.asarray(self.rows @ window)
        if self.shift_floor:
            np.floor(acc, out=acc)
        return np.asarray(self.to_post @ acc)

    def store(self, ring: np.ndarray, k: int, spikes: np.ndarray) -> None:
        """Keep the spikes of step k (read back at steps k + 1 .. k + L)."""
        ring[k % self.L] = spikes
        ring[k % self.L + self.L] = spikes


def lif_run(layer: ConnectionLayer, a_in: np.ndarray, start: int = 0, *,
            with_v: bool = False):
    """Run the layer's LIF population over a_in (K, n, N) from u = v = 0 at step `start`
    (a_in before it is ignored, outputs before it are 0), adding the layer's recurrent input
    (module docstring) at each step when it has recurrent synapses. Returns spikes (K, n, N)
    uint8 for a spiking layer, or the voltage v (K, n, N) int64 for the readout; with_v
    (spiking layers): (spikes, v after the spike reset, as Lava's v).

    float64 arithmetic is exact here (|v * keep| < 2**36) and trunc() rounds toward zero as
    Lava's sign * (|x| >> 12) does; see fixed_point for the integer form."""
    nr = layer.neurons
    steps, width, n = a_in.shape
    u = np.zeros((width, n))
    v = np.zeros((width, n))
    bias = fp.effective_bias(nr.bias_mant, nr.bias_exp).astype(np.float64)[:, None]
    thr = float(np.int64(nr.vth) << fp.VTH_SHIFT)
    keep_u = (4096 - (nr.du + 1)) / 4096.0
    keep_v = (4096 - nr.dv) / 4096.0
    m, lim = float(fp.MAX_UV), float(fp.MAX_UV - 1)
    act_scale = float(2 ** fp.ACT_SHIFT)
    out = np.zeros((steps, width, n), dtype=np.uint8 if nr.spiking else np.int64)
    v_out = np.zeros((steps, width, n), dtype=np.int64) if with_v and nr.spiking else None
    tmp = np.empty((width, n))
    rec = (_Recurrence(layer) if layer.recurrent is not None and layer.recurrent.n_synapses
           else None)
    ring = rec.ring(width, n) if rec is not None else np.empty(0)
    for k in range(max(0, start), steps):
        a_k = a_in[k]
        if rec is not None:
            a_k = a_k + rec.input(ring, k)  # float64: exact integers
        # u = wrap24(trunc(u * keep_u) + (a_in << 6)), Lava's single wrap
        if keep_u:
            np.multiply(u, keep_u, out=u)
            np.trunc(u, out=u)
            u += a_k * act_scale
        else:
            np.multiply(a_k, act_scale, out=u)
        if np.abs(u).max(initial=0) >= m:
            x = u.copy()
            u = np.where(x > m, x - 2 * m, x)
            u = np.where(u <= -m, x + 2 * m, u)
        # v = clip(trunc(v * keep_v) + u + bias)
        np.multiply(v, keep_v, out=v)
        np.trunc(v, out=v)
        v += u
        v += bias
        np.clip(v, -lim, lim, out=v)
        if nr.spiking:
            np.greater(v, thr, out=tmp)
            out[k] = tmp
            v[tmp.astype(bool)] = 0
            if rec is not None:
                rec.store(ring, k, tmp)
            if v_out is not None:
                v_out[k] = v
        else:
            out[k] = v
    return out if v_out is None else (out, v_out)


def emulate(net: DeployedNetwork, payloads: np.ndarray, steps: int | None = None,
            *, progress: bool = False, desc: str = "emulate") -> Activity:
    """Emulate Lava's fixed_pt run of `net` on payloads (N, T, C) int64.

    steps: window steps recorded per sample (default T + latency, the Activity convention).
    progress: a progress bar labelled `desc` (delaysnn.terminal.progress_bar).
    Returns an Activity with backend "emulator" (spikes per spiking layer: the hidden ones, and
    the output layer when it spikes; the last layer's voltage), in window steps; layer i's values
    before window step net.start_step(i) are 0 (see the module docstring, and aligned() for the
    trained model's time axis).
    """
    validate_network(net, "emulator")
    payloads = validate_payloads(net, payloads)
    n, T, _ = payloads.shape
    steps = T + net.latency if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    groups = [_synapse_groups(layer, 2 ** layer.input_message_bits - 1
                              if layer.input_message_bits else 1) for layer in net.layers]
    widest = max([net.input.n_channels] + [max(layer.n_out, *(g["mat"].shape[0] for g in gs))
                                           for layer, gs in zip(net.layers, groups)])
    chunk = max(1, _CHUNK_ELEMS // (steps * widest))
    spikes = [np.zeros((n, steps, layer.n_out), dtype=np.uint8)
              for layer in net.layers[:net.n_spiking]]
    readout_v = np.zeros((n, steps, net.readout.n_out), dtype=np.int64)
    starts = range(0, n, chunk)
    if progress:
        from delaysnn.terminal import progress_bar
        starts = progress_bar(starts, desc=desc, unit="chunk")
    for lo in starts:
        hi = min(n, lo + chunk)
        x = np.zeros((net.input.n_channels, steps, hi - lo), dtype=np.float32)
        x[:, :min(T, steps)] = payloads[lo:hi, :steps].transpose(2, 1, 0)
        last = len(net.layers) - 1
        for li, layer in enumerate(net.layers):
            a_in = synaptic_input(layer, x, groups[li])
            if li == last:
                out = lif_run(layer, a_in, net.start_step(li), with_v=True)
                if layer.neurons.spiking:
                    out, v = out
                    spikes[li][lo:hi] = out.transpose(2, 0, 1)
                    out = v
                readout_v[lo:hi] = out.transpose(2, 0, 1)
            else:
                out = lif_run(layer, a_in, net.start_step(li))
                spikes[li][lo:hi] = out.transpose(2, 0, 1)
                x = np.ascontiguousarray(out.transpose(1, 0, 2), dtype=np.float32)
    return Activity(input_payload=payloads, spikes=spikes, readout_v=readout_v,
                    backend="emulator", seconds=time.perf_counter() - t0,
                    extra={"steps": steps})


def aligned(activity: Activity, net: DeployedNetwork) -> tuple[np.ndarray, list[np.ndarray]]:
    """The trained model's time axis (steps t = 0..T-1) cut out of an Activity's window steps:
    (readout_v (N, T, n_classes), [spikes of spiking layer i (N, T, n_i)]), where layer i's
    step t is window step t + net.start_step(i) (t + i + 1 for "aligned" networks). Raises
    ValueError if the activity is too short."""
    T = net.input.time_steps
    need = T + net.latency
    if activity.readout_v.shape[1] < need:
        raise ValueError(f"the activity holds {activity.readout_v.shape[1]} window steps per "
                         f"sample; the aligned view needs T + latency = {need}")
    spikes = [s[:, net.start_step(i):net.start_step(i) + T] for i, s in enumerate(activity.spikes)]
    L = net.start_step(len(net.layers) - 1)
    return activity.readout_v[:, L:L + T], spikes
