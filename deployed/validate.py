"""Checks run before any graph is built or any step is emulated.

Lava's fixed_pt models fail late and badly on bad input (a delay of 64 hangs a run; weights
outside 8 bits are silently clipped; int32 intermediates wrap). Everything is checked here first,
and every error says what is wrong and what to do.
"""
from __future__ import annotations

import numpy as np

from deployed import fixed_point as fp
from deployed.network import LAYER_STARTS, ConnectionLayer, DeployedNetwork, RecurrentSynapses

MAX_FIXED_DELAY = 63  # Loihi 2 / Lava fixed_pt: 6-bit delays (a larger one hangs a Lava run)
MAX_MESSAGE_BITS = 24  # graded spike payload width in Lava's models
FIXED_BACKENDS = ("lava", "loihi2", "emulator")
BACKENDS = ("lava", "lava-float", "loihi2", "emulator")


class NetworkError(ValueError):
    """The network cannot be run as given (message says what and how to fix it)."""


def validate_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def validate_network(net: DeployedNetwork, backend: str = "lava") -> None:
    """Raise NetworkError if `net` cannot run exactly on `backend`."""
    validate_backend(backend)
    if not net.layers:
        raise NetworkError("the network has no layers")
    if net.layer_start not in LAYER_STARTS:
        raise NetworkError(f"layer_start must be one of {', '.join(LAYER_STARTS)}, got "
                           f"{net.layer_start!r}")
    fixed = backend in FIXED_BACKENDS
    n_prev = net.input.n_channels
    for i, layer in enumerate(net.layers):
        where = f"layer {i} ({layer.name!r})"
        if layer.n_in != n_prev:
            raise NetworkError(f"{where} has n_in={layer.n_in} but its input has {n_prev} "
                               f"neurons")
        n_prev = layer.n_out
        _check_synapses(layer, where, fixed)
        _check_neurons(layer, where, last=i == len(net.layers) - 1)
        if layer.recurrent is not None:
            _check_recurrent(layer, where, fixed)
        if i == 0:
            if layer.input_message_bits != net.input.num_message_bits:
                raise NetworkError(
                    f"{where}: input_message_bits={layer.input_message_bits} differs from "
                    f"net.input.num_message_bits={net.input.num_message_bits}")
            if not 0 <= layer.input_message_bits <= MAX_MESSAGE_BITS:
                raise NetworkError(f"{where}: input_message_bits must be 0..{MAX_MESSAGE_BITS}, "
                                   f"got {layer.input_message_bits}")
        elif layer.input_message_bits != 0:
            raise NetworkError(f"{where} is fed by LIF spikes (binary) but has "
                               f"input_message_bits={layer.input_message_bits}; set it to 0")
    if fixed:
        check_int32_headroom(net)


def _check_synapses(layer: ConnectionLayer, where: str, fixed: bool) -> None:
    _check_lists({"pre": layer.pre, "post": layer.post, "delay": layer.delay,
                  "weight": layer.weight}, where, layer.n_in, layer.n_out)
    ne = layer.neuron_exp
    if ne is not None:
        ne = np.asarray(ne)
        if ne.shape != (layer.n_out,) or (ne.size and not np.issubdtype(ne.dtype, np.integer)):
            raise NetworkError(f"{where}: neuron_exp must be {layer.n_out} integers (one per "
                               f"neuron) or None, got {ne.dtype} {ne.shape}")
        if ne.size and ne.min() < 0:
            raise NetworkError(f"{where}: neuron_exp must be >= 0 (an extra right shift), got "
                               f"{int(ne.min())}")
    if layer.n_synapses == 0 or not fixed:
        return
    _check_fixed(where, layer.max_delay, layer.num_weight_bits, layer.processes())


def _check_lists(arrays: dict, where: str, n_in: int, n_out: int) -> None:
    """pre, post, delay, weight: 1-D integer lists of one length, indices in range, delays
    >= 0, no two synapses with the same (pre, post, delay)."""
    S = np.asarray(arrays["pre"]).shape[0] if np.ndim(arrays["pre"]) else -1
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.ndim != 1 or a.shape[0] != S:
            raise NetworkError(f"{where}: {name} must be 1-D with one entry per synapse "
                               f"({max(S, 0)}), got shape {a.shape}")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise NetworkError(f"{where}: {name} must be integers, got dtype {a.dtype}")
    if S == 0:
        return
    pre, post, delay = (np.asarray(arrays[k]) for k in ("pre", "post", "delay"))
    if pre.min() < 0 or pre.max() >= n_in:
        raise NetworkError(f"{where}: pre indices must lie in 0..{n_in - 1}")
    if post.min() < 0 or post.max() >= n_out:
        raise NetworkError(f"{where}: post indices must lie in 0..{n_out - 1}")
    if delay.min() < 0:
        raise NetworkError(f"{where}: delays must be >= 0 steps, got {int(delay.min())}")
    key = (post * n_in + pre) * (int(delay.max()) + 1) + delay
    if np.unique(key).size != key.size:
        raise NetworkError(f"{where}: duplicate synapses (same pre, post and delay); merge "
                           f"their weights before export")


def _check_fixed(where: str, max_delay: int, num_weight_bits: int,
                 processes: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
    """Delays, num_weight_bits, and the weight_exp and weights as Lava applies them of every
    connection process (weight, delay, weight_exp)."""
    if max_delay > MAX_FIXED_DELAY:
        raise NetworkError(
            f"{where}: delay {max_delay} exceeds {MAX_FIXED_DELAY} steps, the fixed_pt "
            f"(Loihi 2) limit; Lava would hang on it. Re-export with max_delay <= "
            f"{MAX_FIXED_DELAY} or use backend 'lava-float'")
    for _w, _d, weight_exp in processes:
        if not -32 <= weight_exp <= 31:
            raise NetworkError(f"{where}: weight_exp {weight_exp} out of range")
    if not 1 <= num_weight_bits <= 8:
        raise NetworkError(f"{where}: num_weight_bits must be 1..8, got {num_weight_bits}")
    for k, (w, _d, _e) in enumerate(processes):
        applied = fp.lava_weights(w, num_weight_bits)
        bad = applied != w
        if bad.any():
            j, i = np.argwhere(bad)[0]
            raise NetworkError(
                f"{where}, slot {k}: {int(bad.sum())} weights are not what Lava applies "
                f"(num_weight_bits={num_weight_bits}, sign mode {fp.sign_mode(w)}); e.g. "
                f"weight[{j},{i}]={int(w[j, i])} becomes {int(applied[j, i])}. Export must "
                f"store weights already clipped and truncated")


def _check_recurrent(layer: ConnectionLayer, where: str, fixed: bool) -> None:
    """A layer's recurrent synapses (its own neurons to its own neurons, binary spikes)."""
    rec = layer.recurrent
    assert rec is not None
    where = f"{where}, recurrent synapses"
    if not isinstance(rec, RecurrentSynapses):
        raise NetworkError(f"{where}: expected deployed.network.RecurrentSynapses, got "
                           f"{type(rec).__name__}")
    if not layer.neurons.spiking:
        raise NetworkError(f"{where}: a non-spiking readout has no spikes to feed back; only "
                           f"spiking layers may be recurrent (set recurrent=None)")
    n = layer.n_out
    _check_lists({"pre": rec.pre, "post": rec.post, "delay": rec.delay, "weight": rec.weight},
                 where, n, n)
    if rec.n_synapses == 0 or not fixed:
        return
    _check_fixed(where, rec.max_delay, rec.num_weight_bits,
                 [(w, d, rec.weight_exp) for w, d in rec.slots(n)])


def _check_neurons(layer: ConnectionLayer, where: str, last: bool) -> None:
    nr = layer.neurons
    if nr.n != layer.n_out:
        raise NetworkError(f"{where}: neurons.n={nr.n} but n_out={layer.n_out}")
    # the last layer is a readout (non-spiking) or a spiking output layer; hidden layers spike
    if not last and not nr.spiking:
        raise NetworkError(f"{where} is a hidden layer and must be spiking (spiking=True)")
    for name, val, lo, hi in (("du", nr.du, 0, 4095), ("dv", nr.dv, 0, 4095),
                              ("vth", nr.vth, 0, 2 ** 17 - 1), ("bias_exp", nr.bias_exp, 0, 7)):
        if int(val) != val or not lo <= int(val) <= hi:
            raise NetworkError(f"{where}: {name}={val} must be an integer in {lo}..{hi}")
    b = np.asarray(nr.bias_mant)
    if b.shape != (nr.n,) or (b.size and not np.issubdtype(b.dtype, np.integer)):
        raise NetworkError(f"{where}: bias_mant must be {nr.n} integers, got {b.dtype} {b.shape}")
    if b.size and (b.min() < -4096 or b.max() > 4095):
        raise NetworkError(f"{where}: bias_mant must be 13-bit signed (-4096..4095), got "
                           f"{int(b.min())}..{int(b.max())}")


def max_input_current(layer: ConnectionLayer, max_payload: int) -> int:
    """Upper bound on |a_in| (weight units, after weight_exp) of any neuron in any step: the
    feed-forward input (payloads up to max_payload) plus the recurrent input (spikes of 1)."""
    rec = layer.recurrent
    return (_max_current(layer.post, layer.weight, layer.n_out, layer.synapse_exp(),
                         max_payload)
            + (0 if rec is None else
               _max_current(rec.post, rec.weight, layer.n_out, rec.weight_exp, 1)))


def max_recurrent_current(layer: ConnectionLayer) -> int:
    """Upper bound on |recurrent a_in| of any neuron in any step (0 without recurrence)."""
    rec = layer.recurrent
    return 0 if rec is None else _max_current(rec.post, rec.weight, layer.n_out,
                                              rec.weight_exp, 1)


def _max_current(post: np.ndarray, weight: np.ndarray, n_out: int, weight_exp,
                 max_payload: int) -> int:
    """weight_exp: one int, or one per synapse (the same for every synapse of a post)."""
    if np.asarray(post).size == 0:
        return 0
    exps = np.unique(weight_exp)
    if exps.size > 1:  # per neuron: the largest bound over the neurons of each exponent
        e_syn = np.asarray(weight_exp)
        return max(_max_current(post[e_syn == e], weight[e_syn == e], n_out, int(e),
                                max_payload) for e in exps)
    weight_exp = int(exps[0])
    per_post = np.bincount(post, weights=np.abs(weight).astype(np.float64), minlength=n_out)
    total = int(per_post.max()) * int(max_payload)
    if weight_exp >= 0:
        return total << weight_exp
    return -((-total) >> -weight_exp)  # ceil: floor of a negative sum rounds away


def check_int32_headroom(net: DeployedNetwork) -> None:
    """Refuse networks where Lava's int32 intermediates could wrap (results would then depend on
    which model ran). Bounds are worst case over any input the encoding allows."""
    for i, layer in enumerate(net.layers):
        mb = layer.input_message_bits
        smax = (2 ** mb - 1) if mb > 0 else 1
        where = f"layer {i} ({layer.name!r})"
        if 256 * smax > fp.INT32_MAX:
            raise NetworkError(f"{where}: weight x payload can exceed int32 (payload up to "
                               f"{smax}); use at most 22 message bits")
        a = max_input_current(layer, smax)
        act = a << fp.ACT_SHIFT
        keep = (4095 - layer.neurons.du) / 4096.0
        # u after Lava's single 24-bit wrap stays within max(2**23, f*U + act - 2**24)
        u_bound = fp.MAX_UV if act <= 2 * fp.MAX_UV else max(
            fp.MAX_UV, (act - 2 * fp.MAX_UV) / max(1e-12, 1.0 - keep))
        x_bound = keep * u_bound + act
        bias = int(np.abs(fp.effective_bias(layer.neurons.bias_mant,
                                             layer.neurons.bias_exp)).max(initial=0))
        if x_bound >= fp.INT32_MAX or fp.MAX_UV + u_bound + bias >= fp.INT32_MAX:
            raise NetworkError(
                f"{where}: synaptic input can reach {a} weight units per step, which overflows "
                f"Lava's int32 arithmetic (a_in << 6 must stay below 2**31); lower weight_exp "
                f"or the input scale")


def validate_payloads(net: DeployedNetwork, payloads: np.ndarray) -> np.ndarray:
    """Return payloads as int64 (N, T, C) or raise ValueError saying what is wrong."""
    p = np.asarray(payloads)
    if p.ndim == 2:
        p = p[None]
    T, C = net.input.time_steps, net.input.n_channels
    if p.ndim != 3 or p.shape[1:] != (T, C):
        raise ValueError(f"payloads must have shape (N, {T}, {C}) (samples, steps, channels), "
                         f"got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("payloads hold no samples")
    if not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"payloads must be integers (net.input.encode gives them), got "
                         f"{p.dtype}")
    mb = net.layers[0].input_message_bits
    hi = 2 ** mb - 1 if mb > 0 else 1
    if p.min() < 0 or p.max() > hi:
        raise ValueError(f"payloads must lie in 0..{hi} ({mb} message bits), got "
                         f"{int(p.min())}..{int(p.max())}")
    return p.astype(np.int64)


def drains_between_samples(net: DeployedNetwork) -> bool:
    """True when no hidden neuron can spike without input, so that (a) the network goes silent
    after its input ends and net.padding_steps() of zero input empty every delay buffer, and
    (b) no layer spikes before its reset step (window step i + 1, lava_runtime.lava_graph.graph).
    Needed by Lava's stock delay models, which cannot drop their buffers: a spike emitted before
    a layer's reset would otherwise reach the next layer.

    Holds iff every hidden layer has du = 4095 (no current memory) and no neuron's bias alone
    can carry it over threshold, and no layer is recurrent (recurrent synapses can keep a layer
    spiking, or hold input in their delay buffers, after the input ends).
    """
    if any(layer.recurrent is not None and layer.recurrent.n_synapses
           for layer in net.layers):
        return False
    for layer in net.layers[:-1]:
        nr = layer.neurons
        if nr.du != 4095:
            return False
        bias = fp.effective_bias(nr.bias_mant, nr.bias_exp)
        if fp.bias_can_fire(nr.vth, bias, nr.dv).any():
            return False
    return True
