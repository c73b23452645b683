"""Hand-built DeployedNetworks and Activities for the budget tests (exact known counts)."""
from __future__ import annotations

import numpy as np

from deployed.network import ConnectionLayer, DeployedNetwork, InputEncoding, NeuronParams
from deployed.activity import Activity


def layer(name, n_in, n_out, syn, *, spiking=True, message_bits=0, weight_bits=8):
    """syn: list of (pre, post, delay, weight)."""
    a = np.asarray(syn, dtype=np.int64).reshape(-1, 4)
    return ConnectionLayer(
        name=name, n_in=n_in, n_out=n_out, pre=a[:, 0], post=a[:, 1], delay=a[:, 2],
        weight=a[:, 3], weight_exp=0, num_weight_bits=weight_bits,
        neurons=NeuronParams(n=n_out, du=4095, dv=0, vth=10,
                             bias_mant=np.zeros(n_out, dtype=np.int64), bias_exp=0,
                             spiking=spiking),
        input_message_bits=message_bits)


def network(layers, n_channels, time_steps=10, message_bits=4):
    return DeployedNetwork(
        layers=layers, input=InputEncoding(n_channels=n_channels, time_steps=time_steps,
                                           num_message_bits=message_bits, scale=1.0),
        class_names=[str(i) for i in range(layers[-1].n_out)], profile_name="loihi2",
        profile_version="1")


def activity(net, payload, spikes):
    """payload (N, T, C); spikes: list of (N, steps, n) per hidden layer."""
    payload = np.asarray(payload, dtype=np.int64)
    n = payload.shape[0]
    steps = payload.shape[1] + net.latency
    spikes = [np.asarray(s, dtype=np.uint8) for s in spikes]
    return Activity(input_payload=payload, spikes=spikes,
                    readout_v=np.zeros((n, steps, net.readout.n_out), dtype=np.int64),
                    backend="hand")


def small_net(delay_scale=1):
    """3 inputs -> 4 hidden -> 2 readout; layer fc1 has a multi-delay pair (0 -> 1)."""
    fc1 = layer("fc1", 3, 4, [(0, 0, 0, 10), (0, 1, 3 * delay_scale, 12),
                              (0, 1, 5 * delay_scale, -8), (2, 3, 1, 20), (1, 2, 0, 6)],
                message_bits=4)
    out = layer("out", 4, 2, [(1, 0, 0, 4), (1, 1, 2 * delay_scale, -4), (3, 0, 0, 8),
                              (2, 1, 1, 2)], spiking=False)
    return network([fc1, out], n_channels=3)
