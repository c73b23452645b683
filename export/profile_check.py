"""Check a network against a hardware profile's limits; list every violation.

Two parts: `check_structure` (delays, fan-in/out, per-core memory, cores, network size; needs only
synapse lists, so it runs on the checkpoint before any quantization work) and `check_numeric`
(bit widths of the quantized DeployedNetwork). A limit the profile does not set is not checked.

Core mapping (an estimate, documented so its numbers can be judged): each layer's neurons are
packed greedily, in index order, into cores of that layer only; a core takes the next neuron
while it stays within neurons_per_core, max_fan_in (distinct presynaptic neurons = input axons)
and synapse_memory_bytes_per_core. Memory charged per core: every synapse ceil-packed at
(weight_bits + delay_bits) bits, delay_bits = bits of the layer's max delay; per neuron u and v
(2 x state_bits) plus one dendritic accumulator (state_bits) per delay slot 0..max delay of its
synapses. Output axons of a core = sum over its neurons of the distinct destination cores of
the next layer that hold one of its targets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from export import lava_rules as lr
from export.errors import Violation


@dataclass
class LayerMapping:
    name: str
    cores: int
    core_of_neuron: np.ndarray  # (n_out,) int64
    max_fan_in: int  # largest core fan-in (input axons)
    max_core_bytes: int
    max_fan_out: int = 0  # largest core fan-out (output axons), filled by the next layer
    synapse_bits: int = 0

    def to_dict(self) -> dict:
        return {"layer": self.name, "cores": self.cores, "max_core_fan_in": self.max_fan_in,
                "max_core_fan_out": self.max_fan_out, "max_core_bytes": self.max_core_bytes,
                "synapse_bits": self.synapse_bits}


def _lim(profile, key):
    return profile.limit(key) if profile is not None else None


def map_layer(name, n_in, n_out, pre, post, delay, profile, weight_bits=8) -> tuple[LayerMapping, list[Violation]]:
    """Greedy core packing of one layer (see the module docstring)."""
    state_bits = _lim(profile, "state_bits") or 24
    npc = _lim(profile, "neurons_per_core") or math.inf
    mem = _lim(profile, "synapse_memory_bytes_per_core") or math.inf
    fin = _lim(profile, "max_fan_in") or math.inf
    dmax = int(delay.max()) if delay.size else 0
    dbits = int(dmax).bit_length()
    syn_bits = weight_bits + dbits
    order = np.argsort(post, kind="stable")
    starts = np.searchsorted(post[order], np.arange(n_out + 1))
    core_of = np.zeros(n_out, dtype=np.int64)
    viol: list[Violation] = []
    worst_fan, worst_bytes = 0, 0
    core, count, syn, nbits = 0, 0, 0, 0
    mask = np.zeros(n_in, dtype=bool)
    best_fan, best_bytes = 0, 0

    def core_bytes(s, nb):
        return math.ceil(s * syn_bits / 8) + math.ceil(nb / 8)

    for j in range(n_out):
        idx = order[starts[j]:starts[j + 1]]
        mine = np.zeros(n_in, dtype=bool)
        mine[pre[idx]] = True
        d_j = int(delay[idx].max()) if idx.size else 0
        n_bits_j = 2 * state_bits + (d_j + 1) * state_bits * (dmax > 0)
        alone_fan = int(mine.sum())
        alone_bytes = core_bytes(idx.size, n_bits_j)
        worst_fan, worst_bytes = max(worst_fan, alone_fan), max(worst_bytes, alone_bytes)
        if count:
            fan = int((mask | mine).sum())
            byt = core_bytes(syn + idx.size, nbits + n_bits_j)
            if count + 1 > npc or fan > fin or byt > mem:
                core += 1
                count, syn, nbits = 0, 0, 0
                mask[:] = False
        mask |= mine
        count, syn, nbits = count + 1, syn + idx.size, nbits + n_bits_j
        best_fan = max(best_fan, int(mask.sum()))
        best_bytes = max(best_bytes, core_bytes(syn, nbits))
        core_of[j] = core
    if worst_fan > fin:
        viol.append(Violation(name, "max_fan_in", worst_fan, fin,
                              "a single neuron has more distinct inputs than a core has input axons"))
    if worst_bytes > mem:
        viol.append(Violation(name, "synapse_memory_bytes_per_core", worst_bytes, mem,
                              "a single neuron's synapses and delay accumulators do not fit one core"))
    m = LayerMapping(name, core + 1 if n_out else 0, core_of, best_fan, best_bytes,
                     synapse_bits=syn_bits)
    return m, viol


def fan_out(src_map: LayerMapping, n_src: int, pre, post, dst_map: LayerMapping) -> int:
    """Largest number of output axons of any core of the source layer."""
    if pre.size == 0:
        return 0
    pairs = np.unique(np.stack([pre, dst_map.core_of_neuron[post]], axis=1), axis=0)
    per_neuron = np.bincount(pairs[:, 0], minlength=n_src)
    per_core = np.bincount(src_map.core_of_neuron, weights=per_neuron,
                           minlength=src_map.cores)
    return int(per_core.max()) if per_core.size else 0


def check_structure(layers, profile, *, num_message_bits: int = 8, weight_bits: int = 8
                    ) -> tuple[list[Violation], dict]:
    """Delays, network size, fan-in/out, core memory, cores and chips. `layers` need
    name, n_in, n_out, pre, post, delay (checkpoint layers or ConnectionLayers)."""
    viol: list[Violation] = []
    max_delay = _lim(profile, "max_delay")
    if _lim(profile, "supports_delays") is False:
        max_delay = 0
    for L in layers:
        d = int(L.delay.max()) if L.delay.size else 0
        if max_delay is not None and d > max_delay:
            n_over = int(np.sum(L.delay > max_delay))
            why = ("the profile has no synaptic delays" if _lim(profile, "supports_delays") is False
                   else f"{n_over} synapse(s) above the limit")
            viol.append(Violation(L.name, "max_delay", d, max_delay, why))
    gsb = _lim(profile, "graded_spike_bits")
    if gsb is not None and num_message_bits > gsb:
        viol.append(Violation("input", "graded_spike_bits", num_message_bits, gsb,
                              "input features enter as graded spikes of this many bits"))
    for key, value in (("max_inputs", layers[0].n_in), ("max_outputs", layers[-1].n_out),
                       ("max_hidden_neurons", sum(L.n_out for L in layers[:-1]))):
        lim = _lim(profile, key)
        if lim is not None and value > lim:
            viol.append(Violation("network", key, value, lim))
    maps = []
    for L in layers:
        m, v = map_layer(L.name, L.n_in, L.n_out, L.pre, L.post, L.delay, profile, weight_bits)
        maps.append(m)
        viol += v
    fout = _lim(profile, "max_fan_out")
    for i in range(len(layers) - 1):
        nxt = layers[i + 1]
        maps[i].max_fan_out = fan_out(maps[i], layers[i].n_out, nxt.pre, nxt.post, maps[i + 1])
        if fout is not None and maps[i].max_fan_out > fout:
            viol.append(Violation(layers[i].name, "max_fan_out", maps[i].max_fan_out, fout,
                                  "output axons of one core to the next layer's cores"))
    cores = sum(m.cores for m in maps)
    cpc, chips = _lim(profile, "cores_per_chip"), _lim(profile, "max_chips")
    chips_needed = math.ceil(cores / cpc) if cpc else None
    if cpc is not None and chips is not None and cores > cpc * chips:
        viol.append(Violation("network", "cores_per_chip", cores, cpc * chips,
                              f"{cores} cores need {chips_needed} chips of {cpc} cores; "
                              f"max_chips is {chips}"))
    usage = {"cores": cores, "chips": chips_needed, "layers": [m.to_dict() for m in maps]}
    return viol, usage


def check_numeric(net, profile) -> list[Violation]:
    """Bit widths of the quantized network against the profile (and Lava's rules)."""
    viol: list[Violation] = []

    def bits_check(layer, key, value, limit_bits, signed=False):
        if limit_bits is None:
            return
        hi = 2 ** (limit_bits - 1) - 1 if signed else 2 ** limit_bits - 1
        lo = -(2 ** (limit_bits - 1)) if signed else 0
        if value > hi or value < lo:
            viol.append(Violation(layer, key, int(value), hi if value > hi else lo,
                                  f"{'signed ' if signed else ''}{limit_bits}-bit field"))

    for L in net.layers:
        wb = _lim(profile, "weight_bits")
        if wb is not None and L.num_weight_bits > wb:
            viol.append(Violation(L.name, "weight_bits", L.num_weight_bits, wb))
        applied = lr.apply_weight_rule(L.weight, L.num_weight_bits)
        if not np.array_equal(applied, L.weight):
            bad = int(np.sum(applied != L.weight))
            viol.append(Violation(L.name, "weight_bits", bad, 0,
                                  "synapse weights that Lava's clip/truncate would change"))
        n = L.neurons
        bits_check(L.name, "du_bits", n.du, _lim(profile, "du_bits"))
        bits_check(L.name, "dv_bits", n.dv, _lim(profile, "dv_bits"))
        bits_check(L.name, "vth_bits", n.vth, _lim(profile, "vth_bits"))
        bits_check(L.name, "bias_exp_bits", n.bias_exp, _lim(profile, "bias_exp_bits"))
        if n.bias_mant.size:
            for val in (int(n.bias_mant.max()), int(n.bias_mant.min())):
                bits_check(L.name, "bias_mant_bits", val, _lim(profile, "bias_mant_bits"),
                           signed=True)
    return viol
