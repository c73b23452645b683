"""Random DeployedNetworks and payloads for tests and benchmarks (no training needed).

Weights are even integers in [-256, 254] (what Lava applies with 8 bits, mixed sign), delays
0..max_delay steps, a fraction of (post, pre) pairs connected, optionally several delays per
pair (several Lava connection processes into one LIF). Hidden layers may be recurrent
(`recurrent_density` > 0): the same kind of synapses among a layer's own neurons, drawn from
their own generator so the feed-forward part is the same network as without them.
"""
from __future__ import annotations

import numpy as np

from deployed.network import (
    ConnectionLayer,
    DeployedNetwork,
    InputEncoding,
    NeuronParams,
    RecurrentSynapses,
)


def random_layer(rng: np.random.Generator, name: str, n_in: int, n_out: int, *,
                 density: float, max_delay: int, extra_delays: float = 0.0,
                 spiking: bool = True, input_message_bits: int = 0, weight_exp: int = 0,
                 du: int = 4095, dv: int = 408, vth: int = 200, bias_max: int = 0,
                 weight_scale: int = 256) -> ConnectionLayer:
    """One layer: `density` of (post, pre) pairs connected, plus `extra_delays` of the connected
    pairs given a second synapse with another delay. bias_mant uniform in [-bias_max, bias_max]."""
    n_pairs = max(1, int(round(density * n_in * n_out)))
    pair = rng.choice(n_in * n_out, size=n_pairs, replace=False)
    post, pre = pair // n_in, pair % n_in
    delay = rng.integers(0, max_delay + 1, size=n_pairs)
    n_extra = int(round(extra_delays * n_pairs))
    if n_extra and max_delay > 0:
        idx = rng.choice(n_pairs, size=n_extra, replace=False)
        shift = rng.integers(1, max_delay + 1, size=n_extra)
        post = np.concatenate([post, post[idx]])
        pre = np.concatenate([pre, pre[idx]])
        delay = np.concatenate([delay, (delay[idx] + shift) % (max_delay + 1)])
    half = max(1, weight_scale // 2)
    weight = 2 * rng.integers(-half, half, size=post.shape[0])
    weight[weight == 0] = 2
    bias = rng.integers(-bias_max, bias_max + 1, size=n_out) if bias_max else np.zeros(n_out)
    neurons = NeuronParams(n=n_out, du=du, dv=dv, vth=vth, bias_mant=bias.astype(np.int64),
                           bias_exp=0, spiking=spiking, v_scale=1.0 / (vth * 64))
    return ConnectionLayer(name=name, n_in=n_in, n_out=n_out, pre=pre.astype(np.int64),
                           post=post.astype(np.int64), delay=delay.astype(np.int64),
                           weight=weight.astype(np.int64), weight_exp=weight_exp,
                           num_weight_bits=8, neurons=neurons,
                           input_message_bits=input_message_bits)


def random_recurrent(rng: np.random.Generator, n: int, *, density: float, max_delay: int,
                     extra_delays: float = 0.0, weight_exp: int = 0,
                     weight_scale: int = 256) -> RecurrentSynapses:
    """Recurrent synapses among n neurons, drawn as random_layer draws its synapses (self
    connections pre = post included)."""
    a = random_layer(rng, "rec", n, n, density=density, max_delay=max_delay,
                     extra_delays=extra_delays, weight_scale=weight_scale)
    return RecurrentSynapses(pre=a.pre, post=a.post, delay=a.delay, weight=a.weight,
                             weight_exp=weight_exp, num_weight_bits=8)


def random_network(sizes=(40, 64, 10), *, time_steps: int = 20, density: float = 0.1,
                   max_delay: int = 24, extra_delays: float = 0.0, message_bits: int = 8,
                   input_weight_exp: int = -6, hidden_weight_exp: int = 0, dv: int = 408,
                   vth: int = 200, bias_max: int = 0, seed: int = 0,
                   recurrent_density: float = 0.0, recurrent_max_delay: int | None = None,
                   recurrent_weight_exp: int = 0) -> DeployedNetwork:
    """A network sizes[0] -> ... -> sizes[-1] (last = non-spiking readout); with
    recurrent_density > 0 every hidden layer also has recurrent synapses (delays up to
    recurrent_max_delay, default max_delay; extra delays as the feed-forward ones)."""
    rng = np.random.default_rng(seed)
    rec_rng = np.random.default_rng([seed, 1])
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(random_layer(
            rng, f"fc{i + 1}", a, b, density=density, max_delay=max_delay,
            extra_delays=extra_delays, spiking=not last,
            input_message_bits=message_bits if i == 0 else 0,
            weight_exp=input_weight_exp if i == 0 else hidden_weight_exp,
            dv=dv, vth=vth, bias_max=0 if last else bias_max))
        if recurrent_density > 0 and not last:
            layers[-1].recurrent = random_recurrent(
                rec_rng, b, density=recurrent_density,
                max_delay=max_delay if recurrent_max_delay is None else recurrent_max_delay,
                extra_delays=extra_delays, weight_exp=recurrent_weight_exp)
    enc = InputEncoding(n_channels=sizes[0], time_steps=time_steps,
                        num_message_bits=message_bits, scale=float(2 ** message_bits - 1))
    return DeployedNetwork(layers=layers, input=enc,
                           class_names=[str(c) for c in range(sizes[-1])],
                           profile_name="synthetic", profile_version="0",
                           meta={"generator": "deployed.synthetic", "seed": seed})


def random_payloads(net: DeployedNetwork, n: int, *, density: float = 0.5,
                    seed: int = 0) -> np.ndarray:
    """(n, T, C) int64 graded payloads: `density` of entries nonzero, uniform in range."""
    rng = np.random.default_rng(seed)
    mb = net.input.num_message_bits
    hi = 2 ** mb - 1 if mb > 0 else 1
    shape = (n, net.input.time_steps, net.input.n_channels)
    p = rng.integers(1, hi + 1, size=shape)
    return np.where(rng.random(shape) < density, p, 0).astype(np.int64)
