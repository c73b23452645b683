"""Emulator and fixed-point functions against Lava's own fixed_pt model classes, run in-process
step by step (no Lava runtime: fast), plus timing/latency, batching and validation errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from deployed.network import ConnectionLayer, DeployedNetwork, InputEncoding, NeuronParams
from deployed import fixed_point as fp
from deployed.emulator import emulate, lif_run, synaptic_input
from deployed.synthetic import random_layer, random_network, random_payloads
from deployed.validate import NetworkError, validate_network


class FakeIn:
    """Stands in for a PyInPort: returns the prepared vectors in order."""

    def __init__(self, rows):
        self.rows, self.k = rows, 0

    def recv(self):
        self.k += 1
        return self.rows[self.k - 1]


class FakeOut:
    def __init__(self):
        self.sent = []

    def send(self, x):
        self.sent.append(np.array(x))


# ------------------------------------------------------------------ weights

@pytest.mark.parametrize("bits", [8, 6, 3])
@pytest.mark.parametrize("kind", ["mixed", "excitatory", "inhibitory"])
def test_lava_weights_match_weightutils(bits, kind):
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights
    rng = np.random.default_rng(bits)
    w = rng.integers(-300, 300, size=(30, 20))
    if kind == "excitatory":
        w = np.abs(w)
    elif kind == "inhibitory":
        w = -np.abs(w)
    mode = determine_sign_mode(w)
    ref = truncate_weights(clip_weights(w, mode, num_bits=8), mode, bits)
    assert fp.sign_mode(w) == kind
    assert np.array_equal(fp.lava_weights(w, bits), ref)
    # the measured facts of lava.md: -11 -> -12, 13 -> 12, 255 -> 254 (8 bits, mixed)
    assert fp.lava_weights(np.array([-11, 13, 255, -300]), 8).tolist() == [-12, 12, 254, -256]


def test_decay_rounds_toward_zero():
    x = np.array([1000, -1000, 4097, -4097, 0])
    assert fp.decay(x, 2048).tolist() == [500, -500, 2048, -2048, 0]
    assert fp.decay(np.array([3, -3]), 4095).tolist() == [2, -2]


# ------------------------------------------------------------------ LIF vs Lava's model class

def lava_lif(du, dv, vth, bias, bias_exp, a_in):
    """Lava's PyLifModelBitAcc stepped in-process on a_in (K, n) int32: (spikes, v) (K, n)."""
    from lava.proc.lif.models import PyLifModelBitAcc
    n = a_in.shape[1]
    m = PyLifModelBitAcc({})
    m.u = np.zeros(n, np.int32)
    m.v = np.zeros(n, np.int32)
    m.du, m.dv, m.vth = du, dv, vth
    m.bias_mant = bias.astype(np.int16)
    m.bias_exp = np.full(n, bias_exp, np.int16)
    m.a_in, m.s_out = FakeIn(list(a_in.astype(np.int32))), FakeOut()
    vs = []
    for k in range(a_in.shape[0]):
        m.time_step = k + 1
        m.run_spk()
        vs.append(m.v.copy())
    return np.array(m.s_out.sent).astype(np.uint8), np.array(vs)


def neurons(n, du, dv, vth, bias, bias_exp=0, spiking=True):
    return NeuronParams(n=n, du=du, dv=dv, vth=vth, bias_mant=bias, bias_exp=bias_exp,
                        spiking=spiking)


def layer_with(nr):
    return ConnectionLayer(name="x", n_in=1, n_out=nr.n, pre=np.zeros(0, np.int64),
                           post=np.zeros(0, np.int64), delay=np.zeros(0, np.int64),
                           weight=np.zeros(0, np.int64), weight_exp=0, num_weight_bits=8,
                           neurons=nr, input_message_bits=0)


@pytest.mark.parametrize("du,dv,vth,bias_exp", [(4095, 408, 300, 0), (100, 0, 5000, 3),
                                                (0, 4095, 0, 1), (2048, 17, 131071, 7)])
def test_lif_matches_lava_bit_accurate_model(du, dv, vth, bias_exp):
    rng = np.random.default_rng(du + dv)
    n, steps = 64, 60
    # includes inputs large enough to wrap u (|a_in << 6| > 2**23) and clip v
    a_in = rng.integers(-2 ** 18, 2 ** 18, size=(steps, n))
    a_in[rng.random((steps, n)) < 0.5] = rng.integers(-400, 400, size=1)[0]
    bias = rng.integers(-4096, 4096, size=n)
    s_ref, v_ref = lava_lif(du, dv, vth, bias, bias_exp, a_in)
    layer = layer_with(neurons(n, du, dv, vth, bias, bias_exp))
    # emulator layout (K, n, N) with one sample
    s = lif_run(layer, a_in[:, :, None].astype(np.float64))[:, :, 0]
    assert s_ref.sum() > 0 and np.array_equal(s, s_ref)
    readout = layer_with(neurons(n, du, dv, vth, bias, bias_exp, spiking=False))
    v = lif_run(readout, a_in[:, :, None].astype(np.float64))[:, :, 0]
    assert np.abs(v).max() == 2 ** 23 - 1  # the clip was reached
    # the readout has no threshold: compare with Lava's v where Lava did not spike yet
    first = np.argmax(s_ref.any(axis=1)) if s_ref.any() else steps
    assert np.array_equal(v[:first], v_ref[:first])
    # the integer rule written once in deployed.fixed_point gives the same spikes
    u, vi, s_int = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros_like(s_ref)
    b = fp.effective_bias(bias, bias_exp)
    for k in range(steps):
        u = fp.lif_current(u, a_in[k].astype(np.int64), du)
        vi = fp.lif_voltage(vi, u, b, dv)
        s_int[k] = vi > (vth << fp.VTH_SHIFT)
        vi[s_int[k].astype(bool)] = 0
    assert np.array_equal(s_int, s_ref)


# ------------------------------------------------------------------ delay connections

def lava_delay_model(layer, w, d, x, cls):
    """Lava's stock (or this runtime's fast) delay model on x (K, n_in); returns a_out (K, n)."""
    m = cls({"weight_exp": layer.weight_exp, "num_weight_bits": layer.num_weight_bits})
    sparse = "Sparse" in cls.__name__
    m.weights = sp.csr_matrix(w.astype(np.int32)) if sparse else w.astype(np.int32)
    m.delays = sp.csr_matrix(d.astype(np.int32)) if sparse else d.astype(np.int32)
    m.a_buff = np.zeros((w.shape[0], int(d[w != 0].max()) + 1), np.int32)
    m.num_message_bits = np.array([layer.input_message_bits])
    m.s_in, m.a_out = FakeIn(list(x.astype(np.int32))), FakeOut()
    for k in range(x.shape[0]):
        m.time_step = k + 1
        m.run_spk()
    return np.array(m.a_out.sent).astype(np.int64)


@pytest.mark.parametrize("graded,weight_exp", [(True, -6), (True, 2), (False, 0), (False, -3)])
def test_synaptic_input_matches_lava_delay_models(graded, weight_exp):
    from lava.proc.dense.models import PyDelayDenseModelBitAcc
    from lava.proc.sparse.models import PyDelaySparseModelBitAcc

    from lava_runtime.lava_graph.procs.fast_models import FastDelayDenseFixed, FastDelaySparseFixed
    rng = np.random.default_rng(7 + weight_exp)
    layer = random_layer(rng, "l", 24, 32, density=0.3, max_delay=62, extra_delays=0.5,
                         input_message_bits=8 if graded else 0, weight_exp=weight_exp)
    steps = 80
    x = (rng.integers(0, 256, size=(steps, 24)) if graded
         else (rng.random((steps, 24)) < 0.3).astype(np.int64))
    slots = layer.slots()
    assert len(slots) > 1  # several connection processes into one LIF
    lava_sum = 0
    for w, d in slots:
        outs = [lava_delay_model(layer, w, d, x, cls) for cls in
                (PyDelayDenseModelBitAcc, PyDelaySparseModelBitAcc, FastDelayDenseFixed,
                 FastDelaySparseFixed)]
        for o in outs[1:]:
            assert np.array_equal(o, outs[0])
        lava_sum = lava_sum + outs[0]
    mine = synaptic_input(layer, x.T[:, :, None].astype(np.float32))[:, :, 0]
    assert np.abs(lava_sum).max() > 0
    assert np.array_equal(mine, lava_sum)


def test_fast_float_models_match_stock_float():
    from lava.proc.dense.models import PyDelayDenseModelFloat
    from lava.proc.sparse.models import PyDelaySparseModelFloat

    from lava_runtime.lava_graph.procs.fast_models import FastDelayDenseFloat, FastDelaySparseFloat
    rng = np.random.default_rng(3)
    w = np.where(rng.random((16, 10)) < 0.4, rng.normal(size=(16, 10)), 0.0)
    d = np.where(w != 0, rng.integers(0, 70, size=w.shape), 0)  # float: no 63 limit
    x = rng.random((90, 10)) * 3
    outs = []
    for cls in (PyDelayDenseModelFloat, PyDelaySparseModelFloat, FastDelayDenseFloat,
                FastDelaySparseFloat):
        m = cls({})
        sparse = "Sparse" in cls.__name__
        m.weights = sp.csr_matrix(w) if sparse else w
        m.delays = sp.csr_matrix(d) if sparse else d
        m.a_buff = np.zeros((16, int(d.max()) + 1))
        m.num_message_bits = np.array([8])
        m.s_in, m.a_out = FakeIn(list(x)), FakeOut()
        for k in range(90):
            m.time_step = k + 1
            m.run_spk()
        outs.append(np.array(m.a_out.sent, dtype=np.float64))
    assert np.abs(outs[0]).max() > 0
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], rtol=1e-12, atol=1e-9)


# ------------------------------------------------------------------ whole-network emulation

def chain_net(delay0=3, delay1=5, T=6):
    """1 input -> 1 hidden -> 1 readout, one synapse each: exact timing is easy to predict."""
    def lay(name, spiking, d, w, mb, vth):
        return ConnectionLayer(
            name=name, n_in=1, n_out=1, pre=np.array([0]), post=np.array([0]),
            delay=np.array([d]), weight=np.array([w]), weight_exp=0, num_weight_bits=8,
            neurons=neurons(1, 4095, 0, vth, np.zeros(1, np.int64), spiking=spiking),
            input_message_bits=mb)
    layers = [lay("h", True, delay0, 100, 4, 50), lay("o", False, delay1, 10, 0, 131071)]
    return DeployedNetwork(layers=layers,
                           input=InputEncoding(n_channels=1, time_steps=T, num_message_bits=4,
                                               scale=1.0),
                           class_names=["a"], profile_name="t", profile_version="0")


def test_latency_and_delays_are_exact():
    net = chain_net()
    p = np.zeros((1, 6, 1), np.int64)
    p[0, 2, 0] = 1  # one payload at input step 2
    a = emulate(net, p, steps=20)
    # hidden: 100 * 1 << 6 = 6400 > 50 << 6 = 3200 -> spike when the input arrives:
    # step 2 + latency 1 + delay 3 = 6
    assert np.flatnonzero(a.spikes[0][0, :, 0]).tolist() == [6]
    # readout: the spike (step 6) arrives at 6 + 1 + 5 = 12 and stays (dv = 0, no leak)
    v = a.readout_v[0, :, 0]
    assert np.flatnonzero(v).tolist()[0] == 12 and v[12] == 10 * 64 and v[19] == 10 * 64
    assert a.readout_v.shape == (1, 20, 1) and a.readout_v.dtype == np.int64
    # default window: T + latency steps
    assert emulate(net, p).readout_v.shape == (1, 6 + 2, 1)


def test_batch_equals_one_by_one_and_fresh_state():
    net = random_network((12, 20, 4), time_steps=15, max_delay=10, extra_delays=0.3,
                         bias_max=300, seed=4)
    p = random_payloads(net, 5, seed=5)
    batch = emulate(net, p, steps=30)
    assert batch.spike_counts()[0] > 0
    for i in range(5):
        one = emulate(net, p[i:i + 1], steps=30)
        assert np.array_equal(one.spikes[0][0], batch.spikes[0][i])
        assert np.array_equal(one.readout_v[0], batch.readout_v[i])
    assert batch.backend == "emulator" and batch.input_payload.dtype == np.int64
    assert batch.scores(net).shape == (5, 4)


def test_validation_errors():
    net = random_network((6, 8, 3), time_steps=5, max_delay=4, seed=1)
    p = random_payloads(net, 2)
    bad = dataclasses.replace(net.layers[0], delay=net.layers[0].delay + 60)
    with pytest.raises(NetworkError, match=r"delay 64 exceeds 63 steps.*hang"):
        emulate(dataclasses.replace(net, layers=[bad, net.layers[1]]), p)
    odd = dataclasses.replace(net.layers[0], weight=net.layers[0].weight + 1)
    with pytest.raises(NetworkError, match="not what Lava applies"):
        validate_network(dataclasses.replace(net, layers=[odd, net.layers[1]]))
    with pytest.raises(ValueError, match=r"payloads must have shape \(N, 5, 6\)"):
        emulate(net, p[:, :4])
    with pytest.raises(ValueError, match=r"payloads must lie in 0\.\.255"):
        emulate(net, p + 300)
    with pytest.raises(ValueError, match="payloads must be integers"):
        emulate(net, p.astype(float))
    hid = dataclasses.replace(net.layers[0], neurons=dataclasses.replace(
        net.layers[0].neurons, spiking=False))
    with pytest.raises(NetworkError, match="hidden layer and must be spiking"):
        emulate(dataclasses.replace(net, layers=[hid, net.layers[1]]), p)
    big = dataclasses.replace(net.layers[0], weight_exp=12)
    with pytest.raises(NetworkError, match="overflows Lava's int32"):
        emulate(dataclasses.replace(net, layers=[big, net.layers[1]]), p)
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        validate_network(net, "gpu")
