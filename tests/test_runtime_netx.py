"""lava-dl netx as an independent reader: an exported file (deployed.netx_h5.save) loaded by
lava.lib.dl.netx.hdf5.Network gives the same hidden spikes (and readout voltage) as this
runtime's Lava graph and the emulator on the same graded input.

netx is loaded with reset_interval = the window and reset_offset = 1: netx then resets layer i
at Lava step (reset_offset + 1 + i) mod W, i.e. window step i + 1, exactly this runtime's
per-layer reset (lava/lib/dl/netx/hdf5.py: `reset_offset + 1`, then `+= 1` per layer). What netx
cannot do is drop its delay buffers: spikes a layer emits before its own reset step (bias alone
crossing threshold, or the previous sample's tail) reach the next layer. It equals this runtime
when no hidden neuron can fire from its bias alone (validate.drains_between_samples), and
differs otherwise (tested below).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from deployed import netx_h5
from deployed import fixed_point as fp
from deployed.emulator import emulate
from lava_runtime.lava_graph.graph import run_network
from deployed.synthetic import random_network, random_payloads
from deployed.validate import drains_between_samples
from helpers.netx_runner import run_netx


def netx_net(bias_mant_max, strong=0, seed=51):
    """10 -> 24 -> 16 -> 4, delays up to 62, graded input; netx-expressible: weight_exp -1 with
    even weights (netx stores W = w / 2 in -128..127), bias_exp 6 (netx's), biases up to
    `bias_mant_max`, a readout that never reaches its threshold. `strong` neurons of layer 0 get a bias that fires alone every
    step."""
    net = random_network((10, 24, 16, 4), time_steps=15, max_delay=62, density=0.4,
                         input_weight_exp=-1, hidden_weight_exp=-1, vth=3000, seed=seed)
    rng = np.random.default_rng(seed)
    layers = []
    for i, L in enumerate(net.layers):
        nr = dataclasses.replace(L.neurons, vth=(3000, 150, 2 ** 17 - 1)[i])
        # |bias| < vth / 10: with dv = 408 a bias alone settles below threshold
        bmax = min(bias_mant_max, nr.vth // 20)
        b = rng.integers(-bmax, bmax + 1, size=nr.n)
        if i == 0 and strong:
            b[:strong] = 4000  # 4000 << 6 > vth << 6 = 192000: spikes every step
        nr = dataclasses.replace(nr, bias_mant=b, bias_exp=6)
        layers.append(dataclasses.replace(L, neurons=nr))
    return dataclasses.replace(net, layers=layers)


def test_netx_reads_the_export_and_spikes_identically(tmp_path):
    net = netx_net(bias_mant_max=100)
    assert drains_between_samples(net)  # no hidden neuron fires from its bias alone
    assert netx_h5.netx_problems(net) == []
    path = tmp_path / "net.h5"
    assert netx_h5.save(net, path) == []
    p = random_payloads(net, 1, seed=52)
    window = net.input.time_steps + net.padding_steps()
    v_nx, s_nx = run_netx(path, p[0], window, net.input.num_message_bits, 2)
    mine = run_network(net, p, steps=window, timeout_s=120)
    emu = emulate(net, p, steps=window)
    for i in range(2):
        assert mine.spikes[i].sum() > 10
        # rows before layer i's reset (window step i + 1) are recorded as 0 by this runtime
        assert not s_nx[i][:i + 1].any()
        assert np.array_equal(s_nx[i].astype(np.uint8), mine.spikes[i][0])
        assert np.array_equal(s_nx[i].astype(np.uint8), emu.spikes[i][0])
    assert np.abs(mine.readout_v).max() < (2 ** 17 - 1) << 6  # netx's readout never spiked
    assert np.array_equal(v_nx[3:].astype(np.int64), mine.readout_v[0, 3:])


def test_netx_cannot_drop_spikes_from_before_a_reset(tmp_path):
    """Layer 0 neurons that fire from bias alone spike at window step 0, before layer 0's reset
    at step 1: this runtime's delay buffers drop those spikes, netx's reach layer 1."""
    net = netx_net(bias_mant_max=100, strong=3)
    nr = net.layers[0].neurons
    assert fp.bias_can_fire(nr.vth, fp.effective_bias(nr.bias_mant, nr.bias_exp),
                            nr.dv).sum() == 3
    path = tmp_path / "net.h5"
    assert netx_h5.save(net, path) == []
    p = random_payloads(net, 1, seed=52)
    window = net.input.time_steps + net.padding_steps()
    v_nx, s_nx = run_netx(path, p[0], window, net.input.num_message_bits, 2)
    emu = emulate(net, p, steps=window)
    assert s_nx[0][0, :3].all()  # the pre-reset spikes netx keeps in its buffers
    assert np.array_equal(s_nx[0][1:].astype(np.uint8), emu.spikes[0][0, 1:])  # layer 0 agrees
    assert not np.array_equal(s_nx[1][2:].astype(np.uint8), emu.spikes[1][0, 2:])
