"""Run an exported HDF5 file through lava-dl netx (an independent reader of the format)."""
from __future__ import annotations

import numpy as np


def run_netx(path, payload, steps, message_bits, n_hidden, reset_interval=None):
    """One sample through netx (fixed_pt, fresh state). netx resets layer i at Lava step
    (reset_offset + 1 + i) mod reset_interval; with reset_offset = 1 that is window step i + 1,
    this runtime's per-layer start (reset_interval defaults to `steps`).
    payload: (T, C) graded input. Returns (readout v (steps, n), [hidden spikes (steps, n)]),
    row k = window step k."""
    from lava.lib.dl.netx.hdf5 import Network
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    nx = Network(net_config=str(path), input_message_bits=message_bits,
                 reset_interval=reset_interval or steps, reset_offset=1)
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
