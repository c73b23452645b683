"""The one check of a network against a hardware profile's limits; every violation listed.

Export calls it twice (`check_structure` on the checkpoint's synapse lists before quantizing,
`check_numeric` on the quantized network) and the budget once (`check_network`), so a network the
exporter writes is never refused by the budget for a limit it was exported under, and the reasons
read the same. A limit the profile does not set is not checked; each violation cites the
profile's source for the limit.

Per-core limits (neurons, bytes, fan-in, fan-out per core; cores per chip and chips) are checked
on deployed.cores.map_to_cores's greedy mapping. Recurrent synapses count everywhere feed-forward
ones do; `max_delay` applies to their delays too (the violation names the layer, its detail
begins with "recurrent synapses"). Each violation also says what to do next
(`fix`, beginning with one of FIX_KINDS; `fix_option` when an export option removes it), and
`next_step` sums a refusal up in one line.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deployed import fixed_point as fp
from deployed.cores import (
    LAVA_BIAS_MANT_BITS,
    LAVA_STATE_BITS,
    CoreMapping,
    map_to_cores,
    recurrent_of,
)

PER_CORE = ("neurons_per_core", "synapse_memory_bytes_per_core", "max_fan_in")


@dataclass(frozen=True)
class Violation:
    """One way a network breaks a hardware limit."""

    layer: str  # layer name, or "network" / "input" / "core N" for whole-network limits
    key: str  # the profile limit key, e.g. "max_delay"
    value: float  # what the network needs
    limit: float  # what the profile allows
    detail: str = ""
    source: str = ""  # where the profile's figure comes from
    fix: str = ""  # the next step (FIX_KINDS): an export option, another network or profile
    fix_option: str = ""  # the export option that removes it ("" = no option does)

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        cite = f" [source: {self.source}]" if self.source else ""
        return f"{self.layer}: {self.key} = {self.value} exceeds limit {self.limit}{extra}{cite}"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "key": self.key, "value": self.value,
                "limit": self.limit, "detail": self.detail, "source": self.source,
                "fix": self.fix, "fix_option": self.fix_option}


# how a violation's `fix` begins: an export option removes it, or it needs another network
# (retrained: the trainer options named) or another profile
FIX_KINDS = ("export option", "another network", "another profile")
_PER_CORE_FIX = ("another network: fewer synapses per neuron (a higher --sparsity) or fewer "
                 "neurons, or a profile with larger cores or more chips")


def _fix(v: Violation, profile) -> tuple[str, str]:
    """(fix sentence, export option or "") for one violation of `profile`."""
    name = getattr(profile, "name", "this profile")
    lim = int(v.limit) if float(v.limit).is_integer() else v.limit
    if v.key == "graded_spike_bits":
        if v.limit >= 1:
            opt = f"--num-message-bits {lim}"
            return f"export option: {opt} (input features as {lim}-bit graded spikes)", opt
        return (f"another profile: {name} takes binary spikes only and this exporter sends the "
                "input features as graded spikes (e.g. loihi2 takes them)"), ""
    if v.key == "max_delay" and v.detail.startswith(RECURRENT):
        return (f"another network: retrain with --set recurrent_kernel_size={lim + 1} "
                f"(recurrent delays 0..{lim}), or a profile with longer delays"
                if v.limit else "another network: one without recurrent delays (no-delay), or "
                "a profile with delays"), ""
    if v.key == "max_delay" and v.limit == 0:
        return ("another network: one without synaptic delays (train with --method no-delay), "
                "or a profile with delays"), ""
    if v.key == "max_delay":
        return (f"another network: retrain with --kernel-size {lim + 1} (delays 0..{lim}), or "
                f"a profile with longer delays"), ""
    if v.key == "max_inputs":
        return (f"another network: at most {lim} input channels (audio: retrain with --set "
                f"n_mels={lim}), or another profile"), ""
    if v.key == "max_outputs":
        return f"another network: at most {lim} classes, or another profile", ""
    if v.key == "max_hidden_neurons":
        return (f"another network: at most {lim} hidden neurons in all (e.g. --set "
                f"hidden=[{lim}]), or another profile"), ""
    if v.key in ("max_fan_in", "max_fan_out", "synapse_memory_bytes_per_core", "max_chips"):
        return _PER_CORE_FIX, ""
    if v.key == "weight_bits" and v.limit == 0:  # check_numeric: weights off Lava's rule
        return ("another network file: export again (these weights were not written by this "
                "project's exporter, which follows Lava's rule)"), ""
    field = v.key.removesuffix("_bits")
    return (f"another profile with a wider {field} field than {name}'s, or another network "
            f"whose {field} fits"), ""


RECURRENT = "recurrent synapses"  # how a recurrent delay violation's detail begins


def _with_fixes(viol: list[Violation], profile) -> list[Violation]:
    return [replace(v, fix=f, fix_option=o) for v in viol for f, o in [_fix(v, profile)]]


def next_step(viol: list[Violation]) -> str:
    """One line after a refusal: which export options fix it, or that it needs another
    network or profile."""
    options = sorted({v.fix_option for v in viol if v.fix_option})
    rest = sum(1 for v in viol if not v.fix_option)
    if options and not rest:
        return f"next: export again with {' '.join(options)}"
    if options:
        return (f"next: {' '.join(options)} fixes {len(viol) - rest} of these; the other "
                f"{rest} need another network or profile (see each)")
    return ("next: no export option fixes these; each needs another network or profile "
            "(see each)")


def _lim(profile, key):
    return profile.limit(key) if profile is not None else None


def _violation(profile, layer, key, value, limit, detail="") -> Violation:
    source = profile.limits[key].source if profile is not None and key in profile.limits else ""
    return Violation(layer, key, value, limit, detail, source)


def _per_layer(weight_bits, layers) -> list[int]:
    return [weight_bits] * len(layers) if isinstance(weight_bits, int) else list(weight_bits)


def map_for_profile(layers, weight_bits, profile) -> CoreMapping | None:
    """The core mapping under the profile's per-core limits; None when it sets none."""
    npc, mem, fan_in = (_lim(profile, k) for k in PER_CORE)
    if npc is None and mem is None and fan_in is None:
        return None
    return map_to_cores(layers, _per_layer(weight_bits, layers), npc, mem, fan_in,
                        cores_per_chip=_lim(profile, "cores_per_chip"),
                        state_bits=_lim(profile, "state_bits") or LAVA_STATE_BITS,
                        bias_mant_bits=_lim(profile, "bias_mant_bits") or LAVA_BIAS_MANT_BITS)


def check_structure(layers, profile, *, num_message_bits: int = 8, weight_bits=8
                    ) -> tuple[list[Violation], CoreMapping | None]:
    """Delays, graded-spike width, weight width, network size, per-core figures, chips.
    `layers` need name, n_in, n_out, pre, post, delay (checkpoint layers or ConnectionLayers);
    `weight_bits` is one width or one per layer. Returns (violations, core mapping or None)."""
    viol: list[Violation] = []

    def over(layer, key, value, detail=""):
        lim = _lim(profile, key)
        if lim is not None and value > lim:
            viol.append(_violation(profile, layer, key, value, lim, detail))

    no_delays = _lim(profile, "supports_delays") is False
    for L in layers:
        rec = recurrent_of(L)
        for delays, what in ((L.delay, ""), (np.asarray(rec.delay) if rec is not None else None,
                                             f"{RECURRENT}: ")):
            if delays is None:
                continue
            d = int(delays.max()) if delays.size else 0
            if no_delays and d > 0:
                viol.append(Violation(L.name, "max_delay", d, 0,
                                      f"{what}the profile has no synaptic delays",
                                      _violation(profile, "", "supports_delays", 0, 0).source))
            elif not no_delays:
                n_over = int(np.sum(delays > (_lim(profile, "max_delay") or 0)))
                over(L.name, "max_delay", d, f"{what}{n_over} synapse(s) above the limit")
    over("input", "graded_spike_bits", num_message_bits,
         "input features enter as graded spikes of this many bits")
    for L, bits in zip(layers, _per_layer(weight_bits, layers)):
        over(L.name, "weight_bits", bits)
    for key, value in (("max_inputs", layers[0].n_in), ("max_outputs", layers[-1].n_out),
                       ("max_hidden_neurons", sum(L.n_out for L in layers[:-1]))):
        over("network", key, value)
    m = map_for_profile(layers, weight_bits, profile)
    if m is None:
        return _with_fixes(viol, profile), None
    for row in usage(layers, m)["layers"]:
        over(row["layer"], "max_fan_in", row["max_core_fan_in"], "input axons of one core")
        over(row["layer"], "synapse_memory_bytes_per_core", row["max_core_bytes"],
             "bytes of one core: synapses, neuron state, delay slots")
    for c, f in enumerate(m.fan_out):
        over(f"core {c}", "max_fan_out", f, "output axons of one core")
    cpc, chips = _lim(profile, "cores_per_chip"), _lim(profile, "max_chips")
    if cpc is not None and chips is not None and m.n_cores > cpc * chips:
        viol.append(_violation(profile, "network", "max_chips", m.chips, chips,
                               f"{m.n_cores} cores need {m.chips} chips of {cpc} cores"))
    return _with_fixes(viol, profile), m


def usage(layers, m: CoreMapping | None) -> dict:
    """Cores, chips and per-layer core figures of a mapping (export's report)."""
    if m is None:
        return {"cores": None, "chips": None, "layers": [], "mapping": "no per-core limits"}
    per_layer = []
    for L, cores in zip(layers, m.core_of):
        cs = np.unique(cores)
        per_layer.append({"layer": L.name, "cores": int(cs.size),
                          "max_core_fan_in": max((m.fan_in[c] for c in cs), default=0),
                          "max_core_fan_out": max((m.fan_out[c] for c in cs), default=0),
                          "max_core_bytes": max((m.memory_bytes[c] for c in cs), default=0)})
    return {"cores": m.n_cores, "chips": m.chips, "layers": per_layer,
            "mapping": "deployed.cores.map_to_cores"}


def check_numeric(net, profile) -> list[Violation]:
    """Bit widths of the quantized network against the profile (and Lava's weight rule)."""
    viol: list[Violation] = []

    def bits_check(layer, key, value, signed=False):
        limit_bits = _lim(profile, key)
        if limit_bits is None:
            return
        hi = 2 ** (limit_bits - 1) - 1 if signed else 2 ** limit_bits - 1
        lo = -(2 ** (limit_bits - 1)) if signed else 0
        if value > hi or value < lo:
            viol.append(_violation(profile, layer, key, int(value), hi if value > hi else lo,
                                   f"{'signed ' if signed else ''}{limit_bits}-bit field"))

    for L in net.layers:
        applied = fp.lava_weights(L.weight, L.num_weight_bits)
        if not np.array_equal(applied, L.weight):
            bad = int(np.sum(applied != L.weight))
            viol.append(Violation(L.name, "weight_bits", bad, 0,
                                  "synapse weights that Lava's clip/truncate would change"))
        rec = recurrent_of(L)
        if rec is not None:
            bad = sum(int(np.sum(fp.lava_weights(w, rec.num_weight_bits) != w))
                      for w, _d in rec.slots(L.n_out))
            if bad:
                viol.append(Violation(L.name, "weight_bits", bad, 0,
                                      f"{RECURRENT}: weights that Lava's clip/truncate would "
                                      "change"))
        n = L.neurons
        for key, value in (("du_bits", n.du), ("dv_bits", n.dv), ("vth_bits", n.vth),
                           ("bias_exp_bits", n.bias_exp)):
            bits_check(L.name, key, value)
        if n.bias_mant.size:
            for val in (int(n.bias_mant.max()), int(n.bias_mant.min())):
                bits_check(L.name, "bias_mant_bits", val, signed=True)
    return _with_fixes(viol, profile)


def check_network(net, profile) -> tuple[list[Violation], CoreMapping | None]:
    """Every limit for a quantized DeployedNetwork (the budget's check)."""
    viol, m = check_structure(net.layers, profile,
                              num_message_bits=net.layers[0].input_message_bits,
                              weight_bits=[L.num_weight_bits for L in net.layers])
    return viol + check_numeric(net, profile), m
