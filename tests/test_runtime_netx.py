"""lava-dl netx as an independent reader: an exported file (export.netx_h5.save) loaded by
lava.lib.dl.netx.hdf5.Network gives the same hidden spikes (and readout voltage) as this
runtime's Lava graph and the emulator on the same graded input."""
from __future__ import annotations

import dataclasses

import numpy as np

from export import netx_h5
from lava_runtime.emulator import emulate
from lava_runtime.graph import run_network
from lava_runtime.synthetic_net import random_network, random_payloads


def run_netx(path, payload, steps, message_bits, n_hidden):
    """One sample through netx (fixed_pt, fresh state): (readout v, [hidden spikes]) with rows
    = Lava steps 1..steps (row k = this runtime's window step k)."""
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    nx = Network(net_config=str(path), input_message_bits=message_bits)
    assert len(nx.layers) == n_hidden + 1
    data = np.zeros((payload.shape[1], steps), dtype=np.int32)
    data[:, :payload.shape[0]] = payload.T
    src = RingBuffer(data=data)
    src.s_out.connect(nx.inp)
    mons = []
    for i, layer in enumerate(nx.layers):
        m = Monitor()
        m.probe(layer.neuron.v if i == n_hidden else layer.neuron.s_out, steps)
        mons.append(m)
    try:
        nx.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        got = [next(iter(m.get_data().values())) for m in mons]
    finally:
        nx.stop()
    return got[-1]["v"], [g["s_out"] for g in got[:-1]]


def test_netx_reads_the_export_and_spikes_identically(tmp_path):
    # weight_exp -1 with even weights: netx stores W = w / 2 in -128..127 exactly
    net = random_network((10, 24, 4), time_steps=15, max_delay=62, density=0.4,
                         input_weight_exp=-1, hidden_weight_exp=-1, vth=3000, seed=51)
    ro = net.layers[-1]
    net.layers[-1] = dataclasses.replace(ro, neurons=dataclasses.replace(ro.neurons,
                                                                         vth=2 ** 17 - 1))
    assert netx_h5.netx_problems(net) == []
    path = tmp_path / "net.h5"
    assert netx_h5.save(net, path) == []
    p = random_payloads(net, 1, seed=52)
    window = net.input.time_steps + net.padding_steps()
    v_nx, s_nx = run_netx(path, p[0], window, net.input.num_message_bits, 1)
    mine = run_network(net, p, steps=window, timeout_s=120)
    emu = emulate(net, p, steps=window)
    assert mine.spikes[0].sum() > 10
    assert np.array_equal(s_nx[0].astype(np.uint8), mine.spikes[0][0])
    assert np.array_equal(s_nx[0].astype(np.uint8), emu.spikes[0][0])
    assert np.abs(mine.readout_v).max() < (2 ** 17 - 1) << 6  # netx's readout never spiked
    assert np.array_equal(v_nx.astype(np.int64), mine.readout_v[0])
