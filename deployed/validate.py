"""Checks run before any graph is built or any step is emulated.

Lava's fixed_pt models fail late and badly on bad input (a delay of 64 hangs a run; weights
outside 8 bits are silently clipped; int32 intermediates wrap). Everything is checked here first,
and every error says what is wrong and what to do.
"""
from __future__ import annotations

import numpy as np

from deployed import fixed_point as fp
from deployed.network import LAYER_STARTS, ConnectionLayer, DeployedNetwork

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
    arrays = {"pre": layer.pre, "post": layer.post, "delay": layer.delay, "weight": layer.weight}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.ndim != 1 or a.shape[0] != layer.pre.shape[0]:
            raise NetworkError(f"{where}: {name} must be 1-D with one entry per synapse "
                               f"({layer.pre.shape[0]}), got shape {a.shape}")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise NetworkError(f"{where}: {name} must be integers, got dtype {a.dtype}")
    if layer.n_synapses == 0:
        return
    if layer.pre.min() < 0 or layer.pre.max() >= layer.n_in:
        raise NetworkError(f"{where}: pre indices must lie in 0..{layer.n_in - 1}")
    if layer.post.min() < 0 or layer.post.max() >= layer.n_out:
        raise NetworkError(f"{where}: post indices must lie in 0..{layer.n_out - 1}")
    if layer.delay.min() < 0:
        raise NetworkError(f"{where}: delays must be >= 0 steps, got {int(layer.delay.min())}")
    key = (layer.post * layer.n_in + layer.pre) * (int(layer.delay.max()) + 1) + layer.delay
    if np.unique(key).size != key.size:
        raise NetworkError(f"{where}: duplicate synapses (same pre, post and delay); merge "
                           f"their weights before export")
    if not fixed:
        return
    if layer.max_delay > MAX_FIXED_DELAY:
        raise NetworkError(
            f"{where}: delay {layer.max_delay} exceeds {MAX_FIXED_DELAY} steps, the fixed_pt "
            f"(Loihi 2) limit; Lava would hang on it. Re-export with max_delay <= "
            f"{MAX_FIXED_DELAY} or use backend 'lava-float'")
    if not -32 <= layer.weight_exp <= 31:
        raise NetworkError(f"{where}: weight_exp {layer.weight_exp} out of range")
    if not 1 <= layer.num_weight_bits <= 8:
        raise NetworkError(f"{where}: num_weight_bits must be 1..8, got {layer.num_weight_bits}")
    for k, (w, _d) in enumerate(layer.slots()):
        applied = fp.lava_weights(w, layer.num_weight_bits)
        bad = applied != w
        if bad.any():
            j, i = np.argwhere(bad)[0]
            raise NetworkError(
                f"{where}, slot {k}: {int(bad.sum())} weights are not what Lava applies "
                f"(num_weight_bits={layer.num_weight_bits}, sign mode {fp.sign_mode(w)}); e.g. "
                f"weight[{j},{i}]={int(w[j, i])} becomes {int(applied[j, i])}. Export must "
                f"store weights already clipped and truncated")


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
    """Upper bound on |a_in| (weight units, after weight_exp) of any neuron in any step."""
    if layer.n_synapses == 0:
        return 0
    per_post = np.bincount(layer.post, weights=np.abs(layer.weight).astype(np.float64),
                           minlength=layer.n_out)
    total = int(per_post.max()) * int(max_payload)
    if layer.weight_exp >= 0:
        return total << layer.weight_exp
    return -((-total) >> -layer.weight_exp)  # ceil: floor of a negative sum rounds away


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
    can carry it over threshold.
    """
    for layer in net.layers[:-1]:
        nr = layer.neurons
        if nr.du != 4095:
            return False
        bias = fp.effective_bias(nr.bias_mant, nr.bias_exp)
        if fp.bias_can_fire(nr.vth, bias, nr.dv).any():
            return False
    return True
