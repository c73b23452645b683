"""Lanes (lava_runtime.lava_graph.lanes): L samples side by side in the same Lava processes give, sample
for sample, exactly the outputs of a one-lane run and of the emulator; the lane count is chosen
from the network size and memory, and refused where it cannot work."""
from __future__ import annotations

import numpy as np
import pytest

from deployed.emulator import emulate
from lava_runtime.lava_graph.graph import lane_payloads, run_network
from lava_runtime.lava_graph.lanes import (bytes_per_lane, check_lanes, choose_lanes, resolve_lanes,
                                samples_done)
from deployed.synthetic import random_network, random_payloads
from test_runtime_lava import assert_same, biased_net, clean_afterwards, float_reference  # noqa: F401


def test_lanes_fixed_pt_equal_one_lane_and_emulator(clean_afterwards, capsys):
    """Three layers, delays up to 62, several connection processes per layer, graded input,
    neurons whose bias alone fires (so every window starts from a busy state); 7 samples in
    3 lanes (rounds of 3, 3 and 1). Every window step of every sample equals the one-lane run
    and the emulator."""
    net = biased_net()
    assert max(layer.max_delay for layer in net.layers) == 62
    p = random_payloads(net, 7, seed=64)
    window = net.input.time_steps + net.padding_steps()
    emu = emulate(net, p, steps=window)
    one = run_network(net, p, lanes=1, steps=window, timeout_s=180)
    three = run_network(net, p, lanes=3, steps=window, timeout_s=180, progress=True)
    assert (one.extra["lanes"], three.extra["lanes"]) == (1, 3)
    assert one.extra["total_steps"] == 7 * window and three.extra["total_steps"] == 3 * window
    assert_same(one, emu)
    assert_same(three, emu)
    # the samples differ from each other, so a lane or round mix-up could not go unseen
    assert len({s.tobytes() for s in emu.spikes[1]}) == 7
    assert min(s.sum() for s in emu.spikes[1]) > 20
    # the progress bar counts samples
    err = capsys.readouterr().err
    assert "/7 [" in err and "sample/s" in err and "3 lanes" in err


def test_lanes_float_equal_one_lane(clean_afterwards):
    """floating_pt (delays beyond the fixed_pt limit): 5 samples in 2 lanes equal one lane
    exactly and follow Lava's float LIF equations."""
    net = random_network((8, 12, 3), time_steps=10, max_delay=70, density=0.5, bias_max=300,
                         seed=31)
    p = random_payloads(net, 5, seed=33)
    window = 10 + net.padding_steps()
    one = run_network(net, p, backend="lava-float", lanes=1, steps=window, timeout_s=120)
    two = run_network(net, p, backend="lava-float", lanes=2, steps=window, timeout_s=120)
    assert two.extra["lanes"] == 2 and two.extra["total_steps"] == 3 * window
    assert_same(one, two)
    ref = float_reference(net, p, window)
    assert np.array_equal(two.spikes[0], ref[0].astype(np.uint8)) and two.spikes[0].sum() > 0
    np.testing.assert_allclose(two.readout_v, ref[1], rtol=1e-9, atol=1e-6)


def test_automatic_lanes_run_all_samples_in_few_rounds(clean_afterwards):
    net = random_network((10, 16, 4), time_steps=8, max_delay=20, density=0.4, bias_max=30,
                         seed=21)
    p = random_payloads(net, 9, seed=22)
    act = run_network(net, p, timeout_s=120)
    assert act.extra["lanes"] == 9 and act.extra["total_steps"] == 8 + net.padding_steps()
    assert_same(act, emulate(net, p))


def test_lane_payload_layout():
    p = np.arange(5 * 2 * 3).reshape(5, 2, 3)  # (N, T, C)
    lp = lane_payloads(p, 2)
    assert lp.shape == (3, 2, 2, 3) and lp.dtype == np.int32  # (rounds, T, lanes, C)
    for i in range(5):
        assert np.array_equal(lp[i // 2, :, i % 2], p[i])
    assert not lp[2, :, 1].any()  # the last round's idle lane gets zeros


def test_choose_lanes_from_memory_and_sample_count():
    net = random_network((40, 64, 10), time_steps=20, max_delay=24, seed=1)
    per_lane = bytes_per_lane(net)
    assert per_lane > 64 * 25 * 8  # at least the delay ring of the hidden layer
    # memory for 10 lanes: 25 samples go in 3 rounds, evened out to 9 lanes
    assert choose_lanes(net, 25, memory_bytes=10 * per_lane) == 9
    assert choose_lanes(net, 20, memory_bytes=10 * per_lane) == 10
    assert choose_lanes(net, 3, memory_bytes=10 * per_lane) == 3  # never more than N
    assert choose_lanes(net, 25, memory_bytes=per_lane // 2) == 1  # always at least one
    assert choose_lanes(net, 1000, memory_bytes=10 ** 12, max_lanes=100) == 100
    assert choose_lanes(net, 1001, memory_bytes=10 ** 12, max_lanes=100) == 91  # 11 rounds of 91
    bigger = random_network((40, 256, 10), time_steps=20, max_delay=62, seed=1)
    assert bytes_per_lane(bigger) > 2 * per_lane
    assert 1 <= choose_lanes(net, 300) <= 256  # the machine's own memory


def test_lanes_refused_where_they_cannot_work():
    net = random_network((4, 5, 2), time_steps=3, max_delay=2, seed=1)
    p = random_payloads(net, 3)
    for bad in (0, -2, 2.5, True, "4"):
        with pytest.raises(ValueError, match="lanes must be a positive integer"):
            check_lanes(bad)
    with pytest.raises(ValueError, match=r"stock delay models \(--stock-models\) run one lane"):
        run_network(net, p, fast_models=False, lanes=2)
    with pytest.raises(ValueError, match="lanes must be a positive integer"):
        run_network(net, p, backend="emulator", lanes=0)
    with pytest.raises(ValueError, match="Loihi 2 hardware does not execute"):
        check_lanes(2, backend="loihi2")
    # automatic: one lane for stock models and hardware, never more lanes than samples
    assert resolve_lanes(net, 50, None, fast_models=False) == 1
    assert resolve_lanes(net, 50, None, backend="loihi2") == 1
    assert resolve_lanes(net, 3, 8) == 3
    assert resolve_lanes(net, 50, 1, fast_models=False) == 1


def test_samples_done_counts_finished_windows():
    assert samples_done(0, 10, 4, 7) == 0
    assert samples_done(9, 10, 4, 7) == 0
    assert samples_done(10, 10, 4, 7) == 4
    assert samples_done(20, 10, 4, 7) == 7
