"""The deployed network: the one object that export produces and every consumer reads.

Export (`export.to_lava`) builds it from a checkpoint; the Lava graph builder
(`lava_runtime.lava_graph.graph`), the bit-exact emulator (`deployed.emulator`) and the budget
estimator (`lava_runtime.budget`) all take it as is. `deployed.netx_h5` saves and loads it as
HDF5 that lava-dl's netx can also read.

Units and conventions (Lava fixed_pt semantics; the integer equations are written once, in
deployed.fixed_point):
- time is in steps (one step = 10 ms of audio);
- synapses are a list per connection layer: `pre`, `post`, `delay` (steps, 0..max), `weight`
  (integers exactly as Lava applies them, i.e. already truncated to the profile's precision);
  the sum of weight * payload over arriving spikes is shifted by `weight_exp` (left if > 0,
  arithmetic right if < 0), then enters the neuron as `a_in` (and `u += a_in << 6`);
- a (post, pre) pair may hold several synapses with different delays (`structure-multi`);
  `ConnectionLayer.slots()` splits them into matrices with at most one synapse per pair;
- a layer may give its neurons their own weight exponents (`neuron_exp`, export.fidelity's
  per-neuron exponent remedy): the synapses into neuron p are shifted by
  `weight_exp - neuron_exp[p]`; `ConnectionLayer.processes()` splits each slot by exponent,
  one Lava connection process (one weight_exp) per part;
- neurons are Lava LIF: du, dv 12-bit, vth 17-bit mantissa (spike if v > vth << 6),
  bias = bias_mant << bias_exp added to v every step;
- each connection layer adds one step of latency, so the network's output for input step t
  appears at step t + len(layers);
- `layer_start` says when each layer starts from u = v = 0 (`start_step`, the one place of that
  convention, docs/design.md section 8): "aligned" (checkpoints): layer i at window step i + 1;
  "zero" (networks imported from lava-dl netx): every layer at window step 0, as netx runs them;
- the last layer is the readout (non-spiking, its voltage read) or, in networks from netx, a
  spiking output layer (`neurons.spiking`; its spikes are recorded with the hidden layers').
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def gate_events(x, threshold: float):
    """``x`` with every value below ``threshold`` set to 0 (numpy array or torch tensor)."""
    if threshold <= 0:
        return x
    return x * (x >= threshold)


@dataclass
class InputEncoding:
    """How float features (N, T, C) become graded-spike payloads (integers).

    Input event threshold (the one rule, applied by the trained float model, the float
    reference, the emulator and Lava alike, all through features gated here):
        gated = feature if feature >= event_threshold else 0     (no event is sent)
    payload = clip(round(gated * scale), 0, 2**num_message_bits - 1)
    """

    n_channels: int
    time_steps: int  # T, steps per sample
    num_message_bits: int  # graded spike payload width (bits)
    scale: float  # payload units per feature unit
    event_threshold: float = 0.0  # feature units; 0 = every nonzero feature is an event

    def gate(self, x: np.ndarray) -> np.ndarray:
        """Float features with the events below ``event_threshold`` removed (set to 0)."""
        return gate_events(np.asarray(x, dtype=np.float64), self.event_threshold)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """(N, T, C) or (T, C) float features -> int64 payloads of the same shape."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.n_channels:
            raise ValueError(f"input has {x.shape[-1]} channels, the network expects "
                             f"{self.n_channels}")
        q = np.rint(self.gate(x) * self.scale)
        return np.clip(q, 0, 2 ** self.num_message_bits - 1).astype(np.int64)


@dataclass
class NeuronParams:
    """A population of Lava LIF neurons in fixed-point units."""

    n: int
    du: int  # current decay, 12 bit (4095 = no current memory)
    dv: int  # voltage decay, 12 bit
    vth: int  # threshold mantissa, 17 bit; spike if v > vth << 6
    bias_mant: np.ndarray  # (n,) int64, 13-bit signed
    bias_exp: int  # 3 bit
    spiking: bool  # False: readout, its voltage is read and it must never spike
    v_scale: float = 1.0  # float voltage of the trained model = v (Lava units) * v_scale


def connected_pairs(n_in: int, post: np.ndarray, pre: np.ndarray) -> int:
    """Number of distinct (post, pre) pairs among a layer's synapses (fewer than the synapses
    when some pair has several delays: the layer then has more than one slot)."""
    return int(np.unique(np.asarray(post) * int(n_in) + np.asarray(pre)).size)


@dataclass
class RecurrentSynapses:
    """A layer's synapses from its own neurons to its own neurons (R synapses).

    Timing (the one rule for every synapse, docs/design.md section 8): a spike emitted at window
    step t arrives over a synapse of delay d at step t + 1 + d, so the recurrent input at step k
    is `floor_shift(sum_rec weight * s[k - 1 - delay], weight_exp)` per (delay, post) group, added
    to the feed-forward input `a_in` of the same step."""

    pre: np.ndarray  # (R,) int64, index of the presynaptic neuron in this layer
    post: np.ndarray  # (R,) int64, index of the postsynaptic neuron in this layer
    delay: np.ndarray  # (R,) int64, steps (0..the profile's max_delay)
    weight: np.ndarray  # (R,) int64, as Lava applies them
    weight_exp: int  # own exponent: recurrent weights have their own scale
    num_weight_bits: int

    @property
    def n_synapses(self) -> int:
        return int(self.pre.shape[0])

    @property
    def max_delay(self) -> int:
        return int(self.delay.max()) if self.n_synapses else 0

    def slots(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(weight, delay) matrices (n, n) [post, pre] for a layer of n neurons, at most one
        synapse per (post, pre) pair each (ConnectionLayer.slots' rule): one Lava connection
        process per slot, each with its own sign mode."""
        return pair_slots(self.pre, self.post, self.delay, self.weight, n, n)


def pair_slots(pre: np.ndarray, post: np.ndarray, delay: np.ndarray, weight: np.ndarray,
               n_in: int, n_out: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synapse lists -> [(weight, delay)] matrices (n_out, n_in), slot r holding the r-th
    synapse (by delay) of every (post, pre) pair; at least one slot (all zero without synapses)."""
    pre, post = np.asarray(pre, dtype=np.int64), np.asarray(post, dtype=np.int64)
    delay, weight = np.asarray(delay), np.asarray(weight)
    order = np.lexsort((delay, pre, post))
    pair = post[order] * n_in + pre[order]
    # rank of each synapse within its (post, pre) pair
    first = np.ones(len(pair), dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(pair)), 0))
    rank = np.arange(len(pair)) - start
    out = []
    for r in range(int(rank.max()) + 1 if len(rank) else 1):
        w = np.zeros((n_out, n_in), dtype=np.int64)
        d = np.zeros((n_out, n_in), dtype=np.int64)
        sel = order[rank == r]
        w[post[sel], pre[sel]] = weight[sel]
        d[post[sel], pre[sel]] = delay[sel]
        out.append((w, d))
    return out


@dataclass
class ConnectionLayer:
    """One connection layer (synapses + its postsynaptic LIF population), with optional
    recurrent synapses among its own neurons (`recurrent`, None for a feed-forward layer)."""

    name: str
    n_in: int
    n_out: int
    pre: np.ndarray  # (S,) int64
    post: np.ndarray  # (S,) int64
    delay: np.ndarray  # (S,) int64, steps
    weight: np.ndarray  # (S,) int64, as Lava applies them
    weight_exp: int
    num_weight_bits: int
    neurons: NeuronParams
    input_message_bits: int  # presynaptic payload width: 0 = binary spikes, > 0 = graded
    recurrent: RecurrentSynapses | None = None  # self-connection (docs/design.md section 8)
    # (n_out,) int64 >= 0 or None (all 0): extra right shift of the synapses into each neuron
    neuron_exp: np.ndarray | None = None

    @property
    def n_synapses(self) -> int:
        return int(self.pre.shape[0])

    def synapse_exp(self) -> np.ndarray:
        """(S,) int64: the weight exponent each synapse is applied with."""
        if self.neuron_exp is None:
            return np.full(self.n_synapses, self.weight_exp, dtype=np.int64)
        return self.weight_exp - np.asarray(self.neuron_exp, dtype=np.int64)[self.post]

    def processes(self) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """One Lava connection process per (slot, weight exponent): (weight, delay, weight_exp),
        the slots of `slots()`, each split by the exponents of its postsynaptic neurons (rows
        of other exponents zeroed); without neuron_exp exactly `slots()` with `weight_exp`."""
        slots = self.slots()
        if self.neuron_exp is None:
            return [(w, d, self.weight_exp) for w, d in slots]
        ne = np.asarray(self.neuron_exp, dtype=np.int64)
        out = []
        for w, d in slots:
            rows = np.flatnonzero(np.any(w != 0, axis=1))
            for e in np.unique(ne[rows]) if len(rows) else ne[:1]:
                keep = (ne == e)[:, None]
                out.append((np.where(keep, w, 0), np.where(keep, d, 0), self.weight_exp - int(e)))
        return out

    @property
    def max_delay(self) -> int:
        return int(self.delay.max()) if self.n_synapses else 0

    def slots(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Split synapses into (weight, delay) matrices of shape (n_out, n_in), each holding at
        most one synapse per (post, pre) pair. Single-delay layers give exactly one slot."""
        return pair_slots(self.pre, self.post, self.delay, self.weight, self.n_in, self.n_out)


LAYER_START_ALIGNED = "aligned"  # layer i starts at window step i + 1 (the trained model's axis)
LAYER_START_ZERO = "zero"  # every layer starts at window step 0 (lava-dl netx without reset)
LAYER_STARTS = (LAYER_START_ALIGNED, LAYER_START_ZERO)


@dataclass
class DeployedNetwork:
    """A feed-forward chain: input encoding -> layers[0] -> ... -> layers[-1] (readout, or a
    spiking output layer)."""

    layers: list[ConnectionLayer]
    input: InputEncoding
    class_names: list[str]
    profile_name: str
    profile_version: str
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable provenance
    layer_start: str = LAYER_START_ALIGNED  # one of LAYER_STARTS (see start_step)

    def start_step(self, i: int) -> int:
        """Window step at which layer i (0-based) starts from u = v = 0: i + 1 ("aligned",
        its first possible input; what arrives earlier is dropped) or 0 ("zero"). The
        emulator, the Lava graph and emulator.aligned all read it here."""
        if self.layer_start == LAYER_START_ZERO:
            return 0
        if self.layer_start == LAYER_START_ALIGNED:
            return i + 1
        raise ValueError(f"layer_start must be one of {LAYER_STARTS}, got {self.layer_start!r}")

    @property
    def n_spiking(self) -> int:
        """Layers whose spikes a run records: the hidden layers, plus a spiking output layer."""
        return len(self.layers) - 1 + int(self.layers[-1].neurons.spiking)

    @property
    def latency(self) -> int:
        """Steps between an input step and the readout step it first affects (no delay)."""
        return len(self.layers)

    @property
    def readout(self) -> ConnectionLayer:
        return self.layers[-1]

    def padding_steps(self) -> int:
        """Zero steps to append to each sample so delay buffers drain between samples."""
        return sum(layer.max_delay + 1 for layer in self.layers)
