"""Real Lava runs (in the sandboxed worker) against the emulator; process hygiene.

Each Lava run costs ~2-4 s (worker start, compile); networks and sample counts are small."""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from deployed import fixed_point as fp
from lava_runtime.lava_graph import sandbox
from deployed.emulator import emulate
from lava_runtime.lava_graph.graph import loihi2_available, run_network
from lava_runtime.lava_graph.sandbox import LavaRunError, LavaTimeoutError
from deployed.synthetic import random_network, random_payloads
from deployed.validate import NetworkError, drains_between_samples
from helpers.shm_hygiene import leaked_shm, shm_entries


def child_pids() -> set[int]:
    me = str(os.getpid())
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                out.add(int(entry))
    return out


@pytest.fixture
def clean_afterwards():
    """Asserts that the test leaves no child process, worker group or shared memory."""
    kids, shm, mp_kids = child_pids(), shm_entries(), set(multiprocessing.active_children())
    yield
    time.sleep(0.1)
    assert child_pids() == kids
    # the sandbox's segments (dsnn<pid>x...); another job's on this machine do not count
    assert leaked_shm(shm, only_prefix="dsnn") == set()
    assert set(multiprocessing.active_children()) == mp_kids


def assert_same(a, b):
    assert len(a.spikes) == len(b.spikes)
    for x, y in zip(a.spikes, b.spikes):
        assert x.shape == y.shape and np.array_equal(x, y)
    assert a.readout_v.shape == b.readout_v.shape
    assert np.array_equal(a.readout_v, b.readout_v)


def test_lava_matches_emulator_multi_slot_sparse_and_dense(clean_afterwards):
    """Random net: delays up to 62, several synapses per pair (several connection processes
    summed into one LIF), a sparse and a dense layer, graded input, bias that fires on its own
    (so the fast models' buffer clearing between samples matters)."""
    net = random_network((16, 24, 5), time_steps=12, max_delay=62, extra_delays=0.4,
                         density=0.3, bias_max=600, dv=0, seed=11)
    dense = random_network((24, 5), time_steps=12, density=0.8, max_delay=30, seed=12)
    net.layers[1] = dataclasses.replace(dense.layers[0], name="out", input_message_bits=0,
                                        weight_exp=0)
    assert not drains_between_samples(net)
    assert len(net.layers[0].slots()) > 1
    p = random_payloads(net, 3, seed=13)
    window = net.input.time_steps + net.padding_steps()
    lava = run_network(net, p, backend="lava", timeout_s=120, steps=window)
    emu = emulate(net, p, steps=window)
    assert lava.backend == "lava" and lava.extra["n_processes"] == 1 + len(
        net.layers[0].slots()) + len(net.layers[1].slots()) + 2 + 2
    assert emu.spike_counts()[0] > 50
    assert_same(lava, emu)
    with pytest.raises(NetworkError, match="use fast_models=True"):
        run_network(net, p, fast_models=False)


def biased_net(seed=61):
    """12 -> 20 -> 16 -> 4, delays up to 62, several slots per layer, graded input, per-neuron
    biases, and in both hidden layers neurons whose bias alone crosses threshold every step:
    they spike before their layer's reset step and during the padding, which the next layer
    must never see."""
    net = random_network((12, 20, 16, 4), time_steps=10, max_delay=62, extra_delays=0.4,
                         density=0.35, bias_max=2000, dv=300, vth=40, seed=seed)
    rng = np.random.default_rng(seed)
    for i in (0, 1):
        nr = net.layers[i].neurons
        b = nr.bias_mant.copy()
        b[rng.choice(nr.n, size=4, replace=False)] = 4000  # > vth << 6 = 2560: fires alone
        net.layers[i] = dataclasses.replace(net.layers[i],
                                            neurons=dataclasses.replace(nr, bias_mant=b))
    ro = net.layers[2]
    net.layers[2] = dataclasses.replace(ro, neurons=dataclasses.replace(
        ro.neurons, bias_mant=rng.integers(-300, 300, size=ro.n_out)))
    return net


def test_lava_matches_emulator_with_biases_that_fire_alone(clean_afterwards):
    """Each layer resets at its own first input step (window step i + 1) and the delay buffers
    drop what the presynaptic layer emitted before its reset: Lava equals the emulator over the
    whole window of every sample, although bias-driven spikes run through the pre-roll and
    padding steps of each window (the samples after the first start from that state)."""
    net = biased_net()
    for layer in net.layers[:2]:
        nr = layer.neurons
        assert fp.bias_can_fire(nr.vth, fp.effective_bias(nr.bias_mant, nr.bias_exp),
                                nr.dv).sum() >= 4
        assert len(layer.slots()) > 1 and layer.max_delay == 62
    p = random_payloads(net, 3, seed=62)
    window = net.input.time_steps + net.padding_steps()
    lava = run_network(net, p, backend="lava", timeout_s=180, steps=window)
    emu = emulate(net, p, steps=window)
    assert_same(lava, emu)
    # outputs before each layer's reset step are recorded as 0; after it, the layers are busy
    for i, s in enumerate(emu.spikes):
        assert not s[:, :i + 1].any() and s[:, i + 1:].sum(axis=(1, 2)).min() > 20
    assert not emu.readout_v[:, :3].any() and np.all(emu.readout_v[:, 3] != 0)
    with pytest.raises(NetworkError, match=r"stock delay models, which cannot drop their "
                                           r"buffers, spikes a layer emits before its reset "
                                           r"step.*use fast_models=True"):
        run_network(net, p, fast_models=False)


def test_stock_and_fast_models_identical(clean_afterwards):
    net = random_network((10, 16, 4), time_steps=10, max_delay=20, extra_delays=0.2,
                         density=0.4, bias_max=30, seed=21)
    assert drains_between_samples(net)
    p = random_payloads(net, 3, seed=22)
    fast = run_network(net, p, fast_models=True, timeout_s=120)
    stock = run_network(net, p, fast_models=False, timeout_s=120)
    assert_same(fast, stock)
    # the run's shared memory carried the sandbox prefix (so the cleanup check above is real)
    assert fast.extra["shm_segments"] > 0 and stock.extra["shm_segments"] > 0
    assert_same(fast, emulate(net, p))
    assert fast.spike_counts()[0] > 0
    assert fast.readout_v.shape == (3, 10 + 2, 4)
    assert np.array_equal(fast.predictions(net), emulate(net, p).predictions(net))


def float_reference(net, p, steps):
    """numpy float64 version of Lava's floating_pt models for this graph: layer i starts from
    u = v = 0 at window step i + 1, its outputs before are 0."""
    from lava_runtime.lava_graph.graph import float_layer_params
    n, T, C = p.shape
    x = np.zeros((n, steps, C))
    x[:, :T] = p
    out = []
    for li, layer in enumerate(net.layers):
        fpp = float_layer_params(layer)
        a = np.zeros((n, steps, layer.n_out))
        for pre, post, d, w in zip(layer.pre, layer.post, layer.delay, layer.weight):
            if d >= steps - 1:
                continue
            a[:, 1 + d:, post] += w * fpp["w_scale"] * x[:, :steps - 1 - d, pre]
        u = np.zeros((n, layer.n_out))
        v = np.zeros((n, layer.n_out))
        y = np.zeros((n, steps, layer.n_out))
        for k in range(li + 1, steps):
            u = u * (1 - fpp["du"]) + a[:, k]
            v = v * (1 - fpp["dv"]) + u + fpp["bias"]
            if layer.neurons.spiking:
                s = v > fpp["vth"]
                v[s] = 0
                y[:, k] = s
            else:
                y[:, k] = v
        out.append(y)
        x = y
    return out


def test_lava_float_backend(clean_afterwards):
    net = random_network((8, 12, 3), time_steps=10, max_delay=70, density=0.5, bias_max=300,
                         seed=31)
    p = random_payloads(net, 2, seed=32)
    with pytest.raises(NetworkError, match="exceeds 63 steps"):
        run_network(net, p, backend="lava")  # refused up front for fixed_pt
    steps = 10 + net.padding_steps()  # the whole window: delays > 63 act
    assert net.layers[0].max_delay > 63
    a = run_network(net, p, backend="lava-float", timeout_s=120, steps=steps)
    ref = float_reference(net, p, steps)
    assert a.backend == "lava-float" and a.readout_v.dtype == np.float64
    assert np.array_equal(a.spikes[0], ref[0].astype(np.uint8)) and a.spikes[0].sum() > 0
    np.testing.assert_allclose(a.readout_v, ref[1], rtol=1e-9, atol=1e-6)


@pytest.fixture
def fault(monkeypatch):
    """Run Lava jobs with tests/helpers/lava_fault's worker: the real graph plus a process that
    fails on purpose (set its kind and step with the returned function)."""
    from helpers.lava_fault.worker import FAULT_ENV

    tests_dir = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [tests_dir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setattr(sandbox, "WORKER_MODULE", "helpers.lava_fault.worker")
    return lambda kind, step: monkeypatch.setenv(FAULT_ENV, f"{kind}:{step}")


def test_failing_run_raises_and_cleans_up(clean_afterwards, fault):
    net = random_network((6, 8, 3), time_steps=5, max_delay=3, seed=41)
    p = random_payloads(net, 2)
    fault("raise", 3)
    with pytest.raises(LavaRunError, match="fault injected at step 3") as err:
        run_network(net, p, timeout_s=120)
    assert not isinstance(err.value, LavaTimeoutError)
    assert not sandbox.group_members(err.value.pid)


def test_hanging_run_times_out_and_cleans_up(clean_afterwards, fault):
    net = random_network((6, 8, 3), time_steps=5, max_delay=3, seed=42)
    p = random_payloads(net, 2)
    fault("hang", 2)
    t0 = time.monotonic()
    with pytest.raises(LavaTimeoutError, match="exceeded its timeout of 8 s") as err:
        run_network(net, p, timeout_s=8)
    assert time.monotonic() - t0 < 8 + 10
    assert not sandbox.group_members(err.value.pid)


def test_loihi2_backend_needs_lava_loihi():
    if loihi2_available():
        pytest.skip("lava-loihi is installed here; the refusal cannot be observed")
    net = random_network((4, 5, 2), time_steps=3, max_delay=2, seed=1)
    with pytest.raises(RuntimeError, match="lava-loihi package.*not installed here"):
        run_network(net, random_payloads(net, 1), backend="loihi2")


def test_bad_arguments_refused_before_any_work(clean_afterwards):
    net = random_network((4, 5, 2), time_steps=3, max_delay=2, seed=1)
    p = random_payloads(net, 1)
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        run_network(net, p, backend="cuda")
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        run_network(net, p, timeout_s=0)
    window = net.input.time_steps + net.padding_steps()
    with pytest.raises(ValueError, match=rf"steps must be in 1\.\.{window} "):
        run_network(net, p, steps=99)
