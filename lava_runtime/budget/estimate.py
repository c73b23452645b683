"""Hardware budget of a deployed network from its recorded activity.

    from lava_runtime.budget.estimate import estimate, compare
    b = estimate(net, activity, load_profile("loihi2"))
    b.synops_per_sample, b.energy_per_sample_joules["total"], b.cores, b.to_json()

Counts (per sample = totals over the Activity's samples / N; over the Activity's window of
``steps`` = T + latency steps):
- synaptic operations: every input event (a hidden spike, or a nonzero graded payload for the
  first layer) times its fan-out over every (post, delay) synapse that exists (also synapses whose
  integer weight is 0: the hardware still processes them); a recurrent layer's spikes also times
  their recurrent fan-out (``recurrent_synops_per_sample``, part of ``synops_per_sample`` and of
  each layer's ``synops``);
- dense synaptic operations: every existing synapse (recurrent ones included), every step of
  the window;
- neuron updates: every neuron of every layer, every step;
- messages: a spike goes once to each core that holds one of its targets (the next layer's and,
  for a recurrent layer, its own layer's); a message to its own core is local, to another core
  cross-core; graded input comes from outside the cores (input).

Dynamic energy per sample by profile kind (J; ``energy_per_sample_joules``, a breakdown whose
parts sum to the total; activity-dependent terms only):
- ``neuromorphic``: synops * synop + neuron updates * neuron_update + local messages * spike_local
  + (cross-core + input messages) * spike_hop (one hop each: a lower bound);
- ``dense`` (the float model on a CPU/GPU): dense synops * synop + neuron updates * neuron_update;
- ``ann`` (the equivalent ANN, same synapses every step): dense synops * mac + one 64-bit SRAM
  read per two FP32 weights; the SNN's synops at ``ac`` are reported beside it, not in the total.
A figure the profile does not give is listed under ``not_counted`` with the reason; without a
synop and neuron-update (or mac) figure there is no total.

Static energy per sample is reported separately (``static_energy_per_sample_joules``, J) where the
profile gives ``static_power``: static_power * steps * time per step; otherwise None, and
``static_energy_note`` says why (it always says where the figure comes from).

Memory and cores are this project's own model (deployed.cores: weight + delay + index
bits per synapse, a 24-bit accumulator per delay slot per neuron, greedy core packing), not a
vendor compiler's mapping; ``memory_model`` says so in the JSON.

Time per step (neuromorphic, when the profile gives synop_time and neuron_update_time): cores work
in parallel, so each step takes the slowest core's synops * synop_time + neurons * neuron_update_
time, plus one spike hop and the barrier sync where given; averaged over samples and steps.

A profile whose limits the network breaks gets ``refused`` reasons instead of energy, time and
cores (counts and memory are still reported: they do not depend on the chip).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from deployed.activity import Activity
from deployed.cores import (
    LAVA_BIAS_MANT_BITS,
    LAVA_STATE_BITS,
    CoreMapping,
    delay_bits,
    index_bits,
    network_memory_bytes,
)
from deployed.limits import check_network, next_step
from deployed.network import DeployedNetwork
from hw_profiles import Profile
from lava_runtime.budget.units import format_si

FLOAT_BITS = 32  # float model weights and state (dense / ann profiles)
NEUROMORPHIC_MEMORY_MODEL = (
    "this project's model (deployed.cores), not a vendor compiler's mapping: "
    "weight + delay + post-index bits per synapse, u, v and bias per neuron, a 24-bit "
    "(state_bits) accumulator per delay slot per neuron, greedy core packing")
FLOAT_MEMORY_MODEL = ("this project's model: FP32 weight + delay + post-index bits per synapse, "
                      "FP32 state per neuron, an FP32 input history of max_delay + 1 steps")


@dataclass
class LayerBudget:
    """Per-sample counts for one connection layer."""

    name: str
    n_in: int
    n_out: int
    n_synapses: int
    max_delay: int  # steps
    input_events: float  # spikes (or nonzero payloads) arriving per sample
    synops: float
    dense_synops: float
    neuron_updates: float
    spikes_out: float  # 0 for a non-spiking readout
    messages_local: float | None = None
    messages_cross_core: float | None = None
    messages_input: float | None = None
    recurrent_synapses: int = 0  # among the layer's own neurons (0: feed-forward layer)
    recurrent_max_delay: int = 0  # steps
    recurrent_synops: float = 0.0  # the layer's spikes x their recurrent fan-out (in `synops`)


@dataclass
class Budget:
    """The budget of one network and activity on one profile (module docstring: what each
    figure counts). Per sample = averaged over the activity's samples; energies in J, times in
    s, memory in bytes; None where the profile gives no figure or the network does not fit
    (``refused`` then says why)."""

    profile: str
    profile_version: str
    kind: str
    n_samples: int
    steps: int  # window steps per sample
    layers: list[LayerBudget]
    synops_per_sample: float  # recurrent_synops_per_sample included
    dense_synops_per_sample: float
    neuron_updates_per_sample: float
    spikes_per_sample: float
    memory_bytes: dict[str, int]
    messages_per_sample: dict[str, float] | None = None
    cores: int | None = None
    chips: int | None = None
    core_usage: dict | None = None
    energy_per_sample_joules: dict | None = None  # dynamic energy only (see the module doc)
    static_energy_per_sample_joules: float | None = None
    static_energy_note: str = ""  # the formula and source, or why there is no figure
    time_per_step_seconds: float | None = None
    memory_model: str = ""  # memory and cores are this project's model, not a measurement
    refused: list[str] = field(default_factory=list)
    refused_fixes: list[str] = field(default_factory=list)  # what to do about each refusal
    refused_next: str = ""  # the refusal in one line: which export option, or another network
    sources: dict[str, str] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    recurrent_synops_per_sample: float = 0.0  # part of synops_per_sample

    @property
    def energy_total(self) -> float | None:
        e = self.energy_per_sample_joules
        return None if e is None else e["total"]

    def to_json(self) -> dict:
        """A JSON-serialisable dict (the CLI's --json output, one per profile)."""
        return asdict(self)


# ---------------------------------------------------------------------------- validation

def check_activity(net: DeployedNetwork, activity: Activity) -> None:
    """Raise ValueError when the Activity does not belong to this network."""
    n_spiking = net.n_spiking  # hidden layers, plus a spiking output layer
    if len(activity.spikes) != n_spiking:
        raise ValueError(f"activity has spikes for {len(activity.spikes)} layers, the network "
                         f"has {n_spiking} spiking layers "
                         f"({[l.name for l in net.layers[:n_spiking]]})")
    x = activity.input_payload
    n = activity.n_samples
    if x.ndim != 3 or x.shape[0] != n or x.shape[2] != net.layers[0].n_in:
        raise ValueError(f"activity input_payload has shape {x.shape}, expected "
                         f"({n}, T, {net.layers[0].n_in})")
    if np.any(x < 0):
        raise ValueError("activity input_payload has negative payloads")
    steps = activity.readout_v.shape[1]
    if x.shape[1] > steps:
        raise ValueError(f"input has {x.shape[1]} steps, more than the window of {steps}")
    for k, s in enumerate(activity.spikes):
        layer = net.layers[k]
        if s.shape != (n, steps, layer.n_out):
            raise ValueError(f"activity spikes[{k}] has shape {s.shape}, expected "
                             f"({n}, {steps}, {layer.n_out}) for layer {layer.name}")
    if activity.readout_v.shape[2] != net.readout.n_out:
        raise ValueError(f"activity readout_v has {activity.readout_v.shape[2]} neurons, the "
                         f"readout has {net.readout.n_out}")
    if n == 0:
        raise ValueError("activity holds no samples")


# ---------------------------------------------------------------------------- counting

def _events(net: DeployedNetwork, activity: Activity, k: int) -> np.ndarray:
    """(N, steps_k, n_in) 0/1 events arriving at layer k."""
    if k == 0:
        return (activity.input_payload != 0).astype(np.int64)
    return activity.spikes[k - 1].astype(np.int64)


def count_layers(net: DeployedNetwork, activity: Activity) -> list[LayerBudget]:
    """Profile-independent per-sample counts of every layer."""
    n, steps = activity.n_samples, int(activity.readout_v.shape[1])
    out = []
    for k, layer in enumerate(net.layers):
        per_pre = _events(net, activity, k).sum(axis=(0, 1))  # (n_in,)
        fanout = np.bincount(layer.pre, minlength=layer.n_in)
        spikes_out = float(activity.spikes[k].sum()) / n if k < net.n_spiking else 0.0
        rec = layer.recurrent
        n_rec = 0 if rec is None else rec.n_synapses
        rec_synops = 0.0
        if n_rec:
            assert rec is not None
            own = activity.spikes[k].sum(axis=(0, 1))  # (n_out,) spikes per neuron
            rec_synops = float(own @ np.bincount(rec.pre, minlength=layer.n_out)) / n
        out.append(LayerBudget(
            name=layer.name, n_in=layer.n_in, n_out=layer.n_out, n_synapses=layer.n_synapses,
            max_delay=layer.max_delay, input_events=float(per_pre.sum()) / n,
            synops=float(per_pre @ fanout) / n + rec_synops,
            dense_synops=float((layer.n_synapses + n_rec) * steps),
            neuron_updates=float(layer.n_out * steps), spikes_out=spikes_out,
            recurrent_synapses=n_rec, recurrent_max_delay=0 if rec is None else rec.max_delay,
            recurrent_synops=rec_synops))
    return out


def count_messages(net: DeployedNetwork, activity: Activity, mapping: CoreMapping,
                   layers: list[LayerBudget]) -> dict[str, float]:
    """Fill each LayerBudget's messages (per sample, by the layer that receives them)."""
    n, nc = activity.n_samples, mapping.n_cores
    tot = {"local": 0.0, "cross_core": 0.0, "input": 0.0}
    for k, layer in enumerate(net.layers):
        dest = np.zeros((layer.n_in, nc), dtype=bool)
        dest[layer.pre, mapping.core_of[k][layer.post]] = True
        per_pre = _events(net, activity, k).sum(axis=(0, 1)).astype(np.float64)
        n_dest = dest.sum(axis=1)
        lb = layers[k]
        if k == 0:
            lb.messages_input = float(per_pre @ n_dest) / n
            lb.messages_local = lb.messages_cross_core = 0.0
        else:
            src = mapping.core_of[k - 1]
            local = dest[np.arange(layer.n_in), src]
            lb.messages_local = float(per_pre @ local) / n
            lb.messages_cross_core = float(per_pre @ (n_dest - local)) / n
            lb.messages_input = 0.0
        rec = layer.recurrent
        if rec is not None and rec.n_synapses:  # the layer's spikes to its own cores
            own_core = mapping.core_of[k]
            rdest = np.zeros((layer.n_out, nc), dtype=bool)
            rdest[rec.pre, own_core[rec.post]] = True
            if k + 1 < len(net.layers):  # one message per core: those the next layer's
                nxt = net.layers[k + 1]  # synapses already reach count there
                rdest[nxt.pre, mapping.core_of[k + 1][nxt.post]] = False
            own = activity.spikes[k].sum(axis=(0, 1)).astype(np.float64)
            rlocal = rdest[np.arange(layer.n_out), own_core]
            lb.messages_local = (lb.messages_local or 0.0) + float(own @ rlocal) / n
            lb.messages_cross_core = ((lb.messages_cross_core or 0.0)
                                      + float(own @ (rdest.sum(axis=1) - rlocal)) / n)
        tot["local"] += lb.messages_local
        tot["cross_core"] += lb.messages_cross_core
        tot["input"] += lb.messages_input
    return tot


def mean_step_time(net: DeployedNetwork, activity: Activity, mapping: CoreMapping,
                   profile: Profile) -> float:
    """Seconds per step: mean over samples and steps of the slowest core's work (see module)."""
    steps, nc = int(activity.readout_v.shape[1]), mapping.n_cores
    t_syn = profile.timing["synop_time"].value
    t_nrn = profile.timing["neuron_update_time"].value
    work = np.zeros((activity.n_samples, steps, nc))
    for k, layer in enumerate(net.layers):
        per_core = np.zeros((layer.n_in, nc))
        np.add.at(per_core, (layer.pre, mapping.core_of[k][layer.post]), 1.0)
        ev = _events(net, activity, k).astype(np.float64)
        work[:, :ev.shape[1], :] += (ev @ per_core) * t_syn
        rec = layer.recurrent
        if rec is not None and rec.n_synapses:  # the layer's own spikes, on its own cores
            rcore = np.zeros((layer.n_out, nc))
            np.add.at(rcore, (rec.pre, mapping.core_of[k][rec.post]), 1.0)
            work += (activity.spikes[k].astype(np.float64) @ rcore) * t_syn
    work += np.asarray(mapping.neurons, dtype=np.float64) * t_nrn
    t = float(work.max(axis=2).mean())
    for key in ("spike_hop_time", "step_sync"):
        if key in profile.timing:
            t += profile.timing[key].value
    return t


def float_memory_bytes(net: DeployedNetwork, kind: str) -> dict[str, int]:
    """Memory of the float model (dense) or the equivalent ANN, bytes: FP32 weights stored with
    their delay and post index; FP32 state (u, v; an ANN keeps one activation); a history of the
    last max_delay + 1 inputs per layer (the float model's delay line; a recurrent layer also
    keeps its last max recurrent delay + 1 spike steps)."""
    syn = sum(l.n_synapses * (FLOAT_BITS + delay_bits(l) + index_bits(l)) for l in net.layers)
    per_neuron = (2 if kind == "dense" else 1) * FLOAT_BITS
    state = sum(l.n_out * per_neuron for l in net.layers)
    hist = sum((l.max_delay + 1) * l.n_in * FLOAT_BITS for l in net.layers)
    for l in net.layers:
        if l.recurrent is not None and l.recurrent.n_synapses:
            d = l.recurrent.max_delay
            syn += l.recurrent.n_synapses * (FLOAT_BITS + (math.ceil(math.log2(d + 1)) if d
                                                           else 0) + index_bits(l))
            hist += (d + 1) * l.n_out * FLOAT_BITS
    out = {"synapses": -(-syn // 8), "neuron_state": -(-state // 8),
           "delay_accumulators": -(-hist // 8)}
    out["total"] = sum(out.values())
    return out


# ---------------------------------------------------------------------------- estimate

def _why_missing(profile: Profile, key: str) -> str:
    return profile.unpublished.get(key, f"{profile.name} gives no {key} figure")


def estimate(net: DeployedNetwork, activity: Activity, profile: Profile) -> Budget:
    """The budget of `net` running `activity` on `profile` (see the module docstring)."""
    check_activity(net, activity)
    layers = count_layers(net, activity)
    n, steps = activity.n_samples, int(activity.readout_v.shape[1])
    assumptions: list[str] = []
    b = Budget(profile=profile.name, profile_version=profile.version, kind=profile.kind,
               n_samples=n, steps=steps, layers=layers,
               synops_per_sample=sum(l.synops for l in layers),
               recurrent_synops_per_sample=sum(l.recurrent_synops for l in layers),
               dense_synops_per_sample=sum(l.dense_synops for l in layers),
               neuron_updates_per_sample=sum(l.neuron_updates for l in layers),
               spikes_per_sample=sum(l.spikes_out for l in layers),
               memory_bytes={}, sources=profile.sources(), assumptions=assumptions)

    if profile.kind != "neuromorphic":
        b.memory_bytes = float_memory_bytes(net, profile.kind)
        b.memory_model = FLOAT_MEMORY_MODEL
        b.energy_per_sample_joules = _dense_energy(b, profile)
        b.static_energy_note = _why_missing(profile, "static_power")
        assumptions.append(f"{profile.kind} model: every existing synapse computed every step of "
                           f"the {steps}-step window; FP32 weights and state")
        return b

    state_bits = profile.limit("state_bits")
    bias_bits = profile.limit("bias_mant_bits")
    if state_bits is None or bias_bits is None:
        assumptions.append(f"{profile.name} gives no state_bits/bias_mant_bits: memory uses "
                           f"Lava's {LAVA_STATE_BITS}/{LAVA_BIAS_MANT_BITS} bits")
    state_bits = LAVA_STATE_BITS if state_bits is None else state_bits
    bias_bits = LAVA_BIAS_MANT_BITS if bias_bits is None else bias_bits
    b.memory_bytes = network_memory_bytes(net.layers, [L.num_weight_bits for L in net.layers],
                                          state_bits, bias_bits)
    b.memory_model = NEUROMORPHIC_MEMORY_MODEL

    violations, mapping = check_network(net, profile)
    b.refused = [str(v) for v in violations]
    b.refused_fixes = [v.fix for v in violations]
    b.refused_next = next_step(violations) if violations else ""
    if mapping is None:
        assumptions.append(f"{profile.name} gives no per-core limits: no core mapping, no "
                           "cross-core routing or time per step")
    if b.refused:
        b.static_energy_note = "the network does not fit this profile"
        return b
    if mapping is not None:
        b.cores, b.chips = mapping.n_cores, mapping.chips
        b.core_usage = {"neurons": mapping.neurons, "memory_bytes": mapping.memory_bytes,
                        "fan_in": mapping.fan_in, "fan_out": mapping.fan_out}
        b.messages_per_sample = count_messages(net, activity, mapping, layers)
        if "synop_time" in profile.timing and "neuron_update_time" in profile.timing:
            b.time_per_step_seconds = mean_step_time(net, activity, mapping, profile)
    b.energy_per_sample_joules = _neuromorphic_energy(b, profile)
    b.static_energy_per_sample_joules, b.static_energy_note = _static_energy(b, profile)
    return b


def _static_energy(b: Budget, p: Profile) -> tuple[float | None, str]:
    """(J per sample or None, note): static_power * steps * time per step."""
    if "static_power" not in p.energy:
        return None, _why_missing(p, "static_power")
    if b.time_per_step_seconds is None:
        return None, "static power needs a time per step, which this profile lacks"
    f = p.energy["static_power"]
    joules = f.value * b.steps * b.time_per_step_seconds
    return joules, (f"static_power {f.value:g} W x {b.steps} steps x "
                    f"{format_si(b.time_per_step_seconds, 's')} per step (estimated); "
                    f"{f.basis}: "
                    f"{f.source}")


def _neuromorphic_energy(b: Budget, p: Profile) -> dict:
    parts, missing = {}, {}
    e = p.energy
    for key, name, count in (("synop", "synaptic_ops", b.synops_per_sample),
                             ("neuron_update", "neuron_updates", b.neuron_updates_per_sample)):
        if key in e:
            parts[name] = count * e[key].value
        else:
            missing[name] = _why_missing(p, key)
    m = b.messages_per_sample
    if m is None:
        missing["routing"] = "no core mapping (the profile gives no per-core limits)"
    else:
        if "spike_local" in e:
            parts["routing_local"] = m["local"] * e["spike_local"].value
        else:
            missing["routing_local"] = _why_missing(p, "spike_local")
        if "spike_hop" in e:
            parts["routing_cross_core"] = (m["cross_core"] + m["input"]) * e["spike_hop"].value
        else:
            missing["routing_cross_core"] = _why_missing(p, "spike_hop")
    complete = "synaptic_ops" in parts and "neuron_updates" in parts
    return {"scope": "dynamic", "total": sum(parts.values()) if complete else None,
            "breakdown": parts, "not_counted": missing}


def _dense_energy(b: Budget, p: Profile) -> dict:
    parts, missing, extra = {}, {}, {}
    e = p.energy
    if p.kind == "dense":
        for key, name, count in (("synop", "synaptic_ops", b.dense_synops_per_sample),
                                 ("neuron_update", "neuron_updates",
                                  b.neuron_updates_per_sample)):
            if key in e:
                parts[name] = count * e[key].value
            else:
                missing[name] = _why_missing(p, key)
        complete = not missing
    else:  # ann
        if "mac" in e:
            parts["macs"] = b.dense_synops_per_sample * e["mac"].value
        else:
            missing["macs"] = _why_missing(p, "mac")
        if "sram_read" in e:
            parts["weight_reads"] = b.dense_synops_per_sample / 2 * e["sram_read"].value
        else:
            missing["weight_reads"] = _why_missing(p, "sram_read")
        missing["neuron_updates"] = "an activation per neuron per step has no figure here"
        if "ac" in e:
            extra["snn_synops_at_ac"] = b.synops_per_sample * e["ac"].value
        complete = "macs" in parts
    out = {"scope": "dynamic", "total": sum(parts.values()) if complete else None,
           "breakdown": parts, "not_counted": missing}
    out.update(extra)
    return out


def compare(net: DeployedNetwork, activity: Activity, profiles: list[Profile]) -> list[Budget]:
    """One Budget per profile, same network and activity."""
    return [estimate(net, activity, p) for p in profiles]
