"""Recurrent layers in the Lava graph (ConnectionLayer.recurrent, docs/design.md section 8).

Lava runs (sandboxed worker, this runtime's fast models, lanes) against a plain integer
reference written here from deployed.fixed_point, step by step (rule: a spike at window step t
over a recurrent synapse of delay d reaches a_in at t + 1 + d, shifted by the recurrent
weight_exp per connection process, (delay, post) group), and against deployed.emulator.
Lava's stock delay models: exact where the network provably falls silent in time, refused (and
shown to differ) where recurrence keeps it busy."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_runtime_lava import assert_same, clean_afterwards  # noqa: F401

from deployed import fixed_point as fp
from deployed.emulator import emulate
from deployed.network import DeployedNetwork, RecurrentSynapses
from deployed.synthetic import random_network, random_payloads
from deployed.validate import NetworkError
from lava_runtime.lava_graph import graph
from lava_runtime.lava_graph.graph import recurrent_slots, run_network
from lava_runtime.lava_graph.lanes import bytes_per_lane

TIMEOUT_S = 150


# ------------------------------------------------------------------ networks and reference

def signed_recurrent(rng: np.random.Generator, n: int, *, n_syn: int, max_delay: int,
                     extra: float, excitatory: float, weight_exp: int) -> RecurrentSynapses:
    """n_syn (pre, post) pairs among n neurons (autapses allowed), delays 0..max_delay (one
    synapse at max_delay), `extra` of the pairs with a second synapse at another delay (a second
    connection process); weights even, |w| in 2..254 (what Lava applies in every sign mode),
    positive with probability `excitatory`."""
    pair = rng.choice(n * n, size=n_syn, replace=False)
    post, pre = pair // n, pair % n
    delay = rng.integers(0, max_delay + 1, size=n_syn)
    delay[0] = max_delay
    idx = rng.choice(n_syn, size=int(round(extra * n_syn)), replace=False)
    post = np.concatenate([post, post[idx]])
    pre = np.concatenate([pre, pre[idx]])
    delay = np.concatenate([delay, (delay[idx] + rng.integers(1, max_delay + 1, idx.size))
                            % (max_delay + 1)])
    mag = 2 * rng.integers(1, 128, size=post.size)
    sign = np.where(rng.random(post.size) < excitatory, 1, -1)
    return RecurrentSynapses(pre=pre.astype(np.int64), post=post.astype(np.int64),
                             delay=delay.astype(np.int64), weight=(sign * mag).astype(np.int64),
                             weight_exp=weight_exp, num_weight_bits=8)


def with_recurrent(net: DeployedNetwork, i: int, rec: RecurrentSynapses | None
                   ) -> DeployedNetwork:
    layers = list(net.layers)
    layers[i] = dataclasses.replace(layers[i], recurrent=rec)
    return dataclasses.replace(net, layers=layers)


def recurrent_net(seed: int = 5) -> DeployedNetwork:
    """10 -> 14 -> 12 -> 4, feed-forward delays up to 40 with several slots; layer 0 mostly
    excitatory recurrence (it keeps itself busy after the input ends), weight_exp -1 (floors of
    mixed-sign group sums); layer 1 mostly inhibitory, weight_exp 0; recurrent delays up to 62,
    several recurrent slots each."""
    net = random_network((10, 14, 12, 4), time_steps=10, max_delay=40, extra_delays=0.3,
                         density=0.4, dv=300, vth=150, bias_max=200, seed=seed)
    rng = np.random.default_rng(seed)
    net = with_recurrent(net, 0, signed_recurrent(rng, 14, n_syn=40, max_delay=62, extra=0.3,
                                                  excitatory=0.8, weight_exp=-1))
    return with_recurrent(net, 1, signed_recurrent(rng, 12, n_syn=36, max_delay=62, extra=0.3,
                                                   excitatory=0.3, weight_exp=0))


def _slots(pre, post, delay, weight, n_out, n_in):
    """(w, d) matrices, each with at most one synapse per (post, pre) pair: a pair's synapses in
    order of delay go to slots 0, 1, ... (one Lava connection process per slot)."""
    by_pair: dict = {}
    for a, b, d, w in sorted(zip(post.tolist(), pre.tolist(), delay.tolist(), weight.tolist())):
        by_pair.setdefault((a, b), []).append((d, w))
    out = []
    for r in range(max((len(v) for v in by_pair.values()), default=0)):
        w_m = np.zeros((n_out, n_in), dtype=np.int64)
        d_m = np.zeros((n_out, n_in), dtype=np.int64)
        for (a, b), syn in by_pair.items():
            if r < len(syn):
                d_m[a, b], w_m[a, b] = syn[r]
        out.append((w_m, d_m))
    return out


def _by_delay(slots, num_weight_bits):
    """Per slot, per delay: the weight matrix Lava applies (clip + truncate per slot)."""
    out = []
    for w, d in slots:
        w = fp.lava_weights(w, num_weight_bits)
        out += [(int(dd), np.where((d == dd) & (w != 0), w, 0)) for dd in np.unique(d[w != 0])]
    return out


def _shift(a: np.ndarray, exp: int) -> np.ndarray:
    return np.left_shift(a, exp) if exp >= 0 else np.right_shift(a, -exp)


def reference(net: DeployedNetwork, payloads: np.ndarray, steps: int):
    """Integer (int64) simulation of the Lava fixed_pt graph of `net`, one window per sample:
    (spikes per spiking layer (N, steps, n), last layer's v (N, steps, n_out))."""
    n, T, C = payloads.shape
    x = np.zeros((n, steps, C), dtype=np.int64)
    x[:, :T] = payloads
    spikes, v_out = [], None
    for li, layer in enumerate(net.layers):
        nr = layer.neurons
        ff = _by_delay(_slots(layer.pre, layer.post, layer.delay, layer.weight, layer.n_out,
                              layer.n_in), layer.num_weight_bits)
        a_ff = np.zeros((n, steps, layer.n_out), dtype=np.int64)
        for dd, w in ff:
            if dd < steps - 1:
                a_ff[:, 1 + dd:] += _shift(x[:, :steps - 1 - dd] @ w.T, layer.weight_exp)
        rec, exp_r = [], 0
        if layer.recurrent is not None:
            r = layer.recurrent
            rec = _by_delay(_slots(r.pre, r.post, r.delay, r.weight, layer.n_out, layer.n_out),
                            r.num_weight_bits)
            exp_r = r.weight_exp
        start = net.start_step(li)
        s = np.zeros((n, steps, layer.n_out), dtype=np.int64)
        v_rec = np.zeros((n, steps, layer.n_out), dtype=np.int64)
        u = np.zeros((n, layer.n_out), dtype=np.int64)
        v = np.zeros((n, layer.n_out), dtype=np.int64)
        bias = fp.effective_bias(nr.bias_mant, nr.bias_exp)
        thr = np.int64(nr.vth) << fp.VTH_SHIFT
        for k in range(start, steps):
            a = a_ff[:, k].copy()
            for dd, w in rec:
                if k - 1 - dd >= start:
                    a += _shift(s[:, k - 1 - dd] @ w.T, exp_r)
            u = fp.lif_current(u, a, nr.du)
            v = fp.lif_voltage(v, u, bias, nr.dv)
            if nr.spiking:
                fired = v > thr
                v[fired] = 0
                s[:, k] = fired
            v_rec[:, k] = v
        if nr.spiking:
            spikes.append(s.astype(np.uint8))
        if li == len(net.layers) - 1:
            v_out = v_rec
        x = s
    return spikes, v_out


def assert_equals_reference(act, ref):
    spikes, v = ref
    assert len(act.spikes) == len(spikes)
    for a, b in zip(act.spikes, spikes):
        assert a.shape == b.shape and np.array_equal(a, b)
    assert act.readout_v.shape == v.shape and np.array_equal(act.readout_v, v)


# ------------------------------------------------------------------ without Lava

def test_recurrent_slots_split_pairs_with_several_delays():
    net = recurrent_net()
    layer = net.layers[0]
    rec = layer.recurrent
    slots = recurrent_slots(layer)
    assert len(slots) >= 2  # pairs with two delays: two connection processes
    ref = _slots(rec.pre, rec.post, rec.delay, rec.weight, layer.n_out, layer.n_out)
    assert len(slots) == len(ref)
    for (w, d), (w2, d2) in zip(slots, ref):
        assert np.array_equal(w, w2) and np.array_equal(np.where(w != 0, d, 0), d2)
    assert sum(int((w != 0).sum()) for w, _ in slots) == rec.n_synapses
    assert recurrent_slots(net.layers[2]) == []
    assert bytes_per_lane(net) > bytes_per_lane(with_recurrent(
        with_recurrent(net, 0, None), 1, None)) + 2 * 14 * 63 * 3 * 8


def test_reference_recurrence_acts_and_outlives_the_input():
    """The test network is one where recurrence matters: without it the outputs differ, and
    layer 0 keeps spiking after its last possible feed-forward input (so each window's buffer
    drop matters)."""
    net = recurrent_net()
    p = random_payloads(net, 4, seed=6)
    window = net.input.time_steps + net.padding_steps()
    spikes, v = reference(net, p, window)
    plain_spikes, plain_v = reference(with_recurrent(with_recurrent(net, 0, None), 1, None),
                                      p, window)
    assert not np.array_equal(v, plain_v)
    assert not np.array_equal(spikes[1], plain_spikes[1])
    last_ff = net.input.time_steps + net.layers[0].max_delay  # last feed-forward arrival
    assert spikes[0][:, last_ff + 1:].sum(axis=(1, 2)).min() > 20
    assert min(s.sum() for s in spikes[1]) > 10


# ------------------------------------------------------------------ Lava runs

def test_recurrent_lava_equals_reference_with_lanes(clean_afterwards):
    """Two recurrent hidden layers (excitatory and inhibitory, weight_exp -1 and 0, delays up to
    62, several recurrent slots), biases: every window step of 5 samples, run in 3 lanes
    (rounds 3 + 2), equals the integer reference and the emulator."""
    net = recurrent_net()
    p = random_payloads(net, 5, seed=7)
    window = net.input.time_steps + net.padding_steps()
    ref = reference(net, p, window)
    three = run_network(net, p, lanes=3, steps=window, timeout_s=TIMEOUT_S)
    n_rec = len(recurrent_slots(net.layers[0])) + len(recurrent_slots(net.layers[1]))
    n_ff = sum(len(layer.slots()) for layer in net.layers)
    assert three.extra["n_processes"] == 1 + 3 + n_ff + n_rec + 2 + 1  # source, LIFs, recorders
    assert three.extra["lanes"] == 3 and three.extra["total_steps"] == 2 * window
    assert_equals_reference(three, ref)
    assert len({s.tobytes() for s in ref[0][0]}) == 5  # samples differ: no lane mix-up hides
    assert_same(three, emulate(net, p, steps=window))


def test_recurrent_spiking_output_zero_start_and_float(clean_afterwards):
    """layer_start "zero" (netx's convention: every layer from window step 0, so the recurrent
    buffers drop at the window's first step) with a recurrent spiking output layer and neurons
    whose bias fires alone, in one lane (DelayDense/DelaySparse themselves); and the lava-float
    backend on a recurrent net, in 2 lanes, equals a float reference."""
    net = recurrent_net(seed=8)
    rng = np.random.default_rng(8)
    out = net.layers[2]
    out = dataclasses.replace(out, neurons=dataclasses.replace(out.neurons, spiking=True, vth=60),
                              recurrent=signed_recurrent(rng, 4, n_syn=8, max_delay=30,
                                                         extra=0.25, excitatory=0.5,
                                                         weight_exp=-2))
    nr = net.layers[1].neurons
    bias = nr.bias_mant.copy()
    bias[:3] = 4000  # > vth << 6: fires without input, through the padding into the next window
    layers = [net.layers[0], dataclasses.replace(net.layers[1], neurons=dataclasses.replace(
        nr, bias_mant=bias)), out]
    net = dataclasses.replace(net, layers=layers, layer_start="zero")
    p = random_payloads(net, 3, seed=9)
    window = net.input.time_steps + net.padding_steps()
    ref = reference(net, p, window)
    assert len(ref[0]) == 3 and ref[0][2].sum() > 10 and ref[0][0][:, 0].sum() == 0
    act = run_network(net, p, lanes=1, steps=window, timeout_s=TIMEOUT_S)  # Lava's own ports
    assert_equals_reference(act, ref)
    assert_same(act, emulate(net, p, steps=window))

    fnet = recurrent_net(seed=10)
    fp_ = random_payloads(fnet, 2, seed=11)
    fwin = fnet.input.time_steps + fnet.padding_steps()
    fl = run_network(fnet, fp_, backend="lava-float", lanes=2, steps=fwin, timeout_s=TIMEOUT_S)
    f_spikes, f_v = float_reference(fnet, fp_, fwin)
    for a, b in zip(fl.spikes, f_spikes):
        assert np.array_equal(a, b)
    assert fl.spikes[0].sum() > 50
    np.testing.assert_allclose(fl.readout_v, f_v, rtol=1e-9, atol=1e-6)


def float_reference(net: DeployedNetwork, payloads: np.ndarray, steps: int):
    """Lava's floating_pt LIF and delay models on this graph, in float64 (voltage units of
    fixed_pt: weight * 2**weight_exp * 64), with recurrence."""
    n, T, C = payloads.shape
    x = np.zeros((n, steps, C))
    x[:, :T] = payloads
    spikes, v_out = [], None
    for li, layer in enumerate(net.layers):
        nr = layer.neurons
        fpp = graph.float_layer_params(layer)
        a_ff = np.zeros((n, steps, layer.n_out))
        for pre, post, d, w in zip(layer.pre, layer.post, layer.delay, layer.weight):
            if d < steps - 1:
                a_ff[:, 1 + d:, post] += w * fpp["w_scale"] * x[:, :steps - 1 - d, pre]
        r = layer.recurrent
        start = net.start_step(li)
        s = np.zeros((n, steps, layer.n_out))
        vr = np.zeros((n, steps, layer.n_out))
        u = np.zeros((n, layer.n_out))
        v = np.zeros((n, layer.n_out))
        for k in range(start, steps):
            a = a_ff[:, k].copy()
            if r is not None:
                src = k - 1 - r.delay
                ok = src >= start
                np.add.at(a, (slice(None), r.post[ok]),
                          r.weight[ok] * 2.0 ** r.weight_exp * 64.0 * s[:, src[ok], r.pre[ok]])
            u = u * (1 - fpp["du"]) + a
            v = v * (1 - fpp["dv"]) + u + fpp["bias"]
            if nr.spiking:
                fired = v > fpp["vth"]
                v[fired] = 0
                s[:, k] = fired
            vr[:, k] = v
        if nr.spiking:
            spikes.append(s.astype(np.uint8))
        v_out = vr
        x = s
    return spikes, v_out


def small_net(seed: int, excitatory: float, rec_delay: int) -> DeployedNetwork:
    """8 -> 12 -> 3, short delays (Lava's stock models are slow), bias that never fires alone,
    du = 4095; layer 0 recurrent (delays up to rec_delay, two slots)."""
    net = random_network((8, 12, 3), time_steps=8, max_delay=6, extra_delays=0.3,
                         density=0.5, dv=300, vth=100, bias_max=30, seed=seed)
    rng = np.random.default_rng(seed)
    rec = signed_recurrent(rng, 12, n_syn=30, max_delay=rec_delay, extra=0.3, excitatory=excitatory,
                           weight_exp=0)
    return with_recurrent(net, 0, rec)


def test_stock_models_run_inhibitory_recurrence_and_refuse_excitatory(clean_afterwards,
                                                                       monkeypatch):
    """Lava's stock DelayDense/DelaySparse run a recurrent layer exactly where it falls silent
    before the next sample (only inhibitory recurrence, within the padding): stock = fast =
    reference. With excitatory recurrence the layer stays busy through the padding and the stock
    models cannot drop their buffers: refused, naming the layer; forced through anyway, sample
    0 matches and a later sample does not."""
    net = small_net(12, excitatory=0.0, rec_delay=5)  # inhibitory only: falls silent in time
    assert graph.stock_models_problem(net) is None
    p = random_payloads(net, 3, seed=13)
    window = net.input.time_steps + net.padding_steps()
    ref = reference(net, p, window)
    plain = reference(with_recurrent(net, 0, None), p, window)
    assert not np.array_equal(ref[0][0], plain[0][0])  # the recurrence acts
    stock = run_network(net, p, fast_models=False, steps=window, timeout_s=TIMEOUT_S)
    assert_equals_reference(stock, ref)
    assert_same(stock, emulate(net, p, steps=window))
    assert stock.extra["fast_models"] is False

    busy = small_net(15, excitatory=0.9, rec_delay=8)  # spikes on through the padding
    p = random_payloads(busy, 2, seed=14)
    with pytest.raises(NetworkError, match=r"layer 0 \('fc1'\) has \d+ excitatory recurrent "
                                           r"synapses.*use fast_models=True"):
        run_network(busy, p, fast_models=False)
    window = busy.input.time_steps + busy.padding_steps()
    ref = reference(busy, p, window)
    monkeypatch.setattr(graph, "stock_models_problem", lambda net: None)
    forced = run_network(busy, p, fast_models=False, steps=window, timeout_s=TIMEOUT_S)
    last_ff = busy.input.time_steps + busy.layers[0].max_delay  # last feed-forward arrival
    assert ref[0][0][:, last_ff + 1:].sum(axis=(1, 2)).min() > 20  # busy in the padding
    assert np.array_equal(forced.spikes[0][0], ref[0][0][0])  # sample 0: nothing before it
    assert np.array_equal(forced.readout_v[0], ref[1][0])
    assert not np.array_equal(forced.spikes[0][1], ref[0][0][1])  # sample 1: sample 0's tail
    assert not np.array_equal(forced.readout_v[1], ref[1][1])


def test_stock_models_refuse_recurrence_arriving_after_the_next_reset():
    """Inhibitory recurrence whose last spike could arrive after the next window's reset step
    (delay 62 on the last hidden layer, little padding behind it) is refused with the steps."""
    net = random_network((6, 8, 3), time_steps=5, max_delay=2, density=0.5, bias_max=10,
                         seed=3)
    rng = np.random.default_rng(3)
    net = with_recurrent(net, 0, signed_recurrent(rng, 8, n_syn=10, max_delay=62, extra=0.0,
                                                  excitatory=0.0, weight_exp=0))
    with pytest.raises(NetworkError, match=r"layer 0 \('fc1'\) can emit a recurrent spike at "
                                           r"window step \d+ that arrives 63 steps later, after "
                                           r"the next window's reset step \d+"):
        run_network(net, random_payloads(net, 2), fast_models=False)
