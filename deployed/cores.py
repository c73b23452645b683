"""Memory of a network's synapse lists and a greedy mapping of its neurons onto cores.

Takes plain per-layer synapse lists (anything with name, n_in, n_out, pre, post, delay: a
ConnectionLayer or a checkpoint layer) and per-layer weight bits, so it runs before quantization.
deployed.limits compares the figures with a profile's limits; the budget reports them.

Memory model (bits, per postsynaptic neuron j of connection layer k; a per-core sum):
- synapses: each synapse into j stores its weight (``num_weight_bits``), its delay
  (``ceil(log2(max_delay_k + 1))`` bits, 0 without delays) and the index of j within its layer
  (``ceil(log2(n_out_k))`` bits, at least 1);
- neuron state: u and v (``state_bits`` each) and bias_mant (``bias_mant_bits``);
- delay accumulators: a per-synapse delay needs one dendritic accumulator slot per delay value per
  neuron: ``(max_delay_k + 1) * state_bits`` for each neuron of layer k (Lava's DelayDense holds
  a (n_out, max_delay + 1) buffer; without delays one slot remains, the next step's input);
- recurrent synapses (``layer.recurrent``, among the layer's own neurons) cost like the others:
  weight (their own ``num_weight_bits`` where set), delay (``ceil(log2(max recurrent delay +
  1))`` bits) and post index bits each, and the accumulators cover max(feed-forward, recurrent)
  delay + 1 slots.

Mapping: neurons are placed in order (layer 0's, then layer 1's, ...) on the current core while
it stays within ``neurons_per_core``, ``memory_bytes_per_core`` and ``max_fan_in`` (distinct
presynaptic axons: (source layer, neuron) pairs; a recurrent layer's own neurons are input axons
of its cores too); otherwise a new core starts. A neuron that alone breaks a limit still gets a
core of its own (deployed.limits reports that core). Consecutive layers may share a core. Output
axons per core count, per neuron, the distinct cores its spikes go to (the next layer's and, for
a recurrent layer, its own).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Lava fixed_pt formats (lava.md), used when a profile does not give its own.
LAVA_STATE_BITS = 24
LAVA_BIAS_MANT_BITS = 13


def max_delay(layer) -> int:
    """Largest delay of the layer's synapses in steps (0 without synapses)."""
    return int(layer.delay.max()) if layer.delay.size else 0


def recurrent_of(layer):
    """The layer's recurrent synapses (anything with pre, post, delay), or None."""
    rec = getattr(layer, "recurrent", None)
    return rec if rec is not None and len(rec.pre) else None


def max_recurrent_delay(layer) -> int:
    """Largest recurrent delay in steps (0 without recurrent synapses)."""
    rec = recurrent_of(layer)
    return int(np.max(rec.delay)) if rec is not None else 0


def _bits_for(d: int) -> int:
    return math.ceil(math.log2(d + 1)) if d > 0 else 0


def delay_bits(layer) -> int:
    """Bits to store one synapse's delay in this layer (0 when every delay is 0)."""
    return _bits_for(max_delay(layer))


def index_bits(layer) -> int:
    """Bits to name a postsynaptic neuron of this layer."""
    return max(1, math.ceil(math.log2(max(layer.n_out, 2))))


@dataclass
class LayerMemory:
    """Per-neuron memory of one connection layer, in bits (arrays of shape (n_out,))."""

    synapse_bits: np.ndarray
    state_bits: np.ndarray
    accumulator_bits: np.ndarray

    @property
    def total_bits(self) -> np.ndarray:
        return self.synapse_bits + self.state_bits + self.accumulator_bits


def layer_memory(layer, weight_bits: int, state_bits: int = LAVA_STATE_BITS,
                 bias_mant_bits: int = LAVA_BIAS_MANT_BITS) -> LayerMemory:
    """Bits per postsynaptic neuron (see the module docstring for the model)."""
    per_syn = weight_bits + delay_bits(layer) + index_bits(layer)
    n_syn = np.bincount(layer.post, minlength=layer.n_out).astype(np.int64)
    n = layer.n_out
    syn_bits = n_syn * per_syn
    rec = recurrent_of(layer)
    if rec is not None:
        rec_bits = (getattr(rec, "num_weight_bits", weight_bits)
                    + _bits_for(max_recurrent_delay(layer)) + index_bits(layer))
        syn_bits = syn_bits + np.bincount(rec.post, minlength=n).astype(np.int64) * rec_bits
    slots = max(max_delay(layer), max_recurrent_delay(layer)) + 1
    return LayerMemory(
        synapse_bits=syn_bits,
        state_bits=np.full(n, 2 * state_bits + bias_mant_bits, dtype=np.int64),
        accumulator_bits=np.full(n, slots * state_bits, dtype=np.int64))


def network_memory_bytes(layers, weight_bits, state_bits: int = LAVA_STATE_BITS,
                         bias_mant_bits: int = LAVA_BIAS_MANT_BITS) -> dict[str, int]:
    """Whole-network memory in bytes: synapses, neuron_state, delay_accumulators, total.
    ``weight_bits``: per layer."""
    mems = [layer_memory(layer, b, state_bits, bias_mant_bits)
            for layer, b in zip(layers, weight_bits)]
    out = {
        "synapses": sum(int(m.synapse_bits.sum()) for m in mems),
        "neuron_state": sum(int(m.state_bits.sum()) for m in mems),
        "delay_accumulators": sum(int(m.accumulator_bits.sum()) for m in mems),
    }
    out = {k: -(-v // 8) for k, v in out.items()}  # bits -> bytes, rounded up
    out["total"] = sum(out.values())
    return out


@dataclass
class CoreMapping:
    """Where each neuron sits, and per-core usage."""

    core_of: list[np.ndarray]  # per connection layer: (n_out,) int64 core index
    n_cores: int
    neurons: list[int]  # per core
    memory_bytes: list[int]  # per core (synapses + state + accumulators)
    fan_in: list[int]  # per core: distinct input axons
    fan_out: list[int]  # per core: output axons (neuron, destination core) pairs
    chips: int | None  # None without cores_per_chip


def map_to_cores(layers, weight_bits, neurons_per_core: int | None = None,
                 memory_bytes_per_core: int | None = None, max_fan_in: int | None = None,
                 cores_per_chip: int | None = None, state_bits: int = LAVA_STATE_BITS,
                 bias_mant_bits: int = LAVA_BIAS_MANT_BITS) -> CoreMapping:
    """Greedy in-order mapping under per-core limits (None = no limit; ``weight_bits`` per
    layer); see the module docstring."""
    mem_cap = None if memory_bytes_per_core is None else 8 * memory_bytes_per_core
    core_of: list[np.ndarray] = []
    neurons: list[int] = []
    mem_bits: list[int] = []
    axons: list[set] = []

    for k, (layer, bits) in enumerate(zip(layers, weight_bits)):
        mem = layer_memory(layer, bits, state_bits, bias_mant_bits).total_bits
        # input axons: (k, pre) for layer k's input, (k + 1, pre) for its own neurons (the axons
        # layer k + 1 reads too)
        rec = recurrent_of(layer)
        post = np.asarray(layer.post) if rec is None else np.r_[layer.post, rec.post]
        axon = (np.c_[np.full(len(layer.pre), k), layer.pre] if rec is None else
                np.r_[np.c_[np.full(len(layer.pre), k), layer.pre],
                      np.c_[np.full(len(rec.pre), k + 1), rec.pre]])
        order = np.argsort(post, kind="stable")
        bounds = np.searchsorted(post[order], np.arange(layer.n_out + 1))
        axons_sorted = axon[order]
        cores = np.empty(layer.n_out, dtype=np.int64)
        for j in range(layer.n_out):
            need_axons = {(int(a), int(p)) for a, p in axons_sorted[bounds[j]:bounds[j + 1]]}
            need = int(mem[j])
            c = len(neurons) - 1
            if not (neurons
                    and (neurons_per_core is None or neurons[c] + 1 <= neurons_per_core)
                    and (mem_cap is None or mem_bits[c] + need <= mem_cap)
                    and (max_fan_in is None or len(axons[c] | need_axons) <= max_fan_in)):
                neurons.append(0)
                mem_bits.append(0)
                axons.append(set())
                c += 1
            neurons[c] += 1
            mem_bits[c] += need
            axons[c] |= need_axons
            cores[j] = c
        core_of.append(cores)

    n_cores = len(neurons)
    fan_out_arr = np.zeros(n_cores, dtype=np.int64)
    for k in range(len(layers)):  # the neurons of layer k: to layer k + 1 and to their own
        pairs = []  # (neuron, destination core)
        if k + 1 < len(layers):
            nxt = layers[k + 1]
            pairs.append(nxt.pre * n_cores + core_of[k + 1][nxt.post])
        rec = recurrent_of(layers[k])
        if rec is not None:
            pairs.append(np.asarray(rec.pre) * n_cores + core_of[k][np.asarray(rec.post)])
        if pairs:
            dst = np.unique(np.concatenate(pairs))
            np.add.at(fan_out_arr, core_of[k][dst // n_cores], 1)
    return CoreMapping(core_of=core_of, n_cores=n_cores, neurons=neurons,
                       memory_bytes=[-(-b // 8) for b in mem_bits],
                       fan_in=[len(a) for a in axons], fan_out=[int(x) for x in fan_out_arr],
                       chips=None if cores_per_chip is None else -(-n_cores // cores_per_chip))
