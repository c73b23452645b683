"""Real FSDD recordings through the RawHD front end, encoded as graded spikes, through the Lava
graph and the emulator: identical hidden spikes and readout voltages on every sample."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deployed.emulator import emulate
from lava_runtime.lava_graph.graph import run_network
from deployed.synthetic import random_network

FILES = ["0_george_0.wav", "3_jackson_1.wav", "7_lucas_2.wav", "9_yweweler_4.wav"]


@pytest.mark.fsdd
def test_fsdd_recordings_lava_equals_emulator(fsdd_dir):
    from trainer.data.audio_io import read_audio
    from trainer.data.frontend import features

    x = np.stack([features(*read_audio(fsdd_dir / f)) for f in FILES])  # (4, 100, 40)
    assert x.shape == (4, 100, 40) and x.max() > 0
    net = random_network((40, 64, 10), time_steps=100, density=0.1, max_delay=24,
                         extra_delays=0.2, vth=150, bias_max=40, seed=61)
    net = dataclasses.replace(net, input=dataclasses.replace(net.input,
                                                             scale=255 / float(x.max())))
    p = net.input.encode(x)
    assert p.max() == 255 and (p > 0).mean() > 0.3  # real graded input, mostly non-zero
    lava = run_network(net, p, timeout_s=180)
    emu = emulate(net, p)
    counts = emu.spikes[0].sum(axis=(1, 2))
    assert (counts > 0).all()  # every recording makes the hidden layer spike
    assert np.array_equal(lava.spikes[0], emu.spikes[0])
    assert np.array_equal(lava.readout_v, emu.readout_v)
    assert np.array_equal(lava.predictions(net), emu.predictions(net))
