"""Check a network against a hardware profile's limits; list every violation.

Two parts: `check_structure` (delays, fan-in/out, per-core memory, cores, network size; needs only
synapse lists, so it runs on the checkpoint before any quantization work) and `check_numeric`
(bit widths of the quantized DeployedNetwork). A limit the profile does not set is not checked.

Core mapping: lava_runtime.core_mapping.map_to_cores (the same greedy mapping and memory model
the budget estimator uses), run on a skeleton network built from the synapse lists.
"""
from __future__ import annotations

import numpy as np

from export import lava_rules as lr
from export.deployed import ConnectionLayer, DeployedNetwork, InputEncoding, NeuronParams
from export.errors import Violation
from lava_runtime.core_mapping import map_to_cores


def _lim(profile, key):
    return profile.limit(key) if profile is not None else None


def skeleton_network(layers, weight_bits: int = 8) -> DeployedNetwork:
    """A DeployedNetwork with the synapse lists of `layers` (zero weights, placeholder neurons),
    enough for the core mapping before anything is quantized."""
    out = []
    for L in layers:
        nr = NeuronParams(n=L.n_out, du=4095, dv=0, vth=0,
                          bias_mant=np.zeros(L.n_out, dtype=np.int64), bias_exp=0,
                          spiking=True)
        out.append(ConnectionLayer(name=L.name, n_in=L.n_in, n_out=L.n_out, pre=L.pre,
                                   post=L.post, delay=L.delay,
                                   weight=np.zeros(L.pre.shape, dtype=np.int64), weight_exp=0,
                                   num_weight_bits=weight_bits, neurons=nr, input_message_bits=0))
    enc = InputEncoding(n_channels=layers[0].n_in, time_steps=1, num_message_bits=0, scale=1.0)
    return DeployedNetwork(out, enc, [], "", "")


def check_structure(layers, profile, *, num_message_bits: int = 8, weight_bits: int = 8
                    ) -> tuple[list[Violation], dict]:
    """Delays, graded-spike width, network size, fan-in/out, core memory, cores and chips.
    `layers` need name, n_in, n_out, pre, post, delay (checkpoint layers or ConnectionLayers).
    Returns (violations, usage) with usage = cores, chips and per-layer core figures."""
    viol: list[Violation] = []
    max_delay = _lim(profile, "max_delay")
    no_delays = _lim(profile, "supports_delays") is False
    if no_delays:
        max_delay = 0
    for L in layers:
        d = int(L.delay.max()) if L.delay.size else 0
        if max_delay is not None and d > max_delay:
            n_over = int(np.sum(L.delay > max_delay))
            why = ("the profile has no synaptic delays" if no_delays
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
    net = skeleton_network(layers, weight_bits)
    m = map_to_cores(net, neurons_per_core=_lim(profile, "neurons_per_core"),
                     memory_bytes_per_core=_lim(profile, "synapse_memory_bytes_per_core"),
                     max_fan_in=_lim(profile, "max_fan_in"),
                     max_fan_out=_lim(profile, "max_fan_out"),
                     cores_per_chip=_lim(profile, "cores_per_chip"),
                     max_chips=_lim(profile, "max_chips"),
                     state_bits=_lim(profile, "state_bits") or 24,
                     bias_mant_bits=_lim(profile, "bias_mant_bits") or 13)
    per_layer = []
    for L, cores in zip(layers, m.core_of):
        cs = np.unique(cores)
        fi = max((m.fan_in[c] for c in cs), default=0)
        fo = max((m.fan_out[c] for c in cs), default=0)
        mb = max((m.memory_bytes[c] for c in cs), default=0)
        per_layer.append({"layer": L.name, "cores": int(cs.size), "max_core_fan_in": fi,
                          "max_core_fan_out": fo, "max_core_bytes": mb})
        for key, value, what in (("max_fan_in", fi, "input axons of one core"),
                                 ("max_fan_out", fo, "output axons of one core"),
                                 ("synapse_memory_bytes_per_core", mb,
                                  "bytes of one core: synapses, neuron state, delay slots")):
            lim = _lim(profile, key)
            if lim is not None and value > lim:
                viol.append(Violation(L.name, key, value, lim, what))
    cpc, chips = _lim(profile, "cores_per_chip"), _lim(profile, "max_chips")
    if cpc is not None and chips is not None and m.n_cores > cpc * chips:
        viol.append(Violation("network", "cores_per_chip", m.n_cores, cpc * chips,
                              f"{m.n_cores} cores need {m.chips} chips of {cpc} cores; "
                              f"max_chips is {chips}"))
    usage = {"cores": m.n_cores, "chips": m.chips, "layers": per_layer,
             "mapping": "lava_runtime.core_mapping.map_to_cores"}
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
