"""Recurrent layers in the emulator and the network checks (issue 24, docs/design.md section 8).

The reference is a slow loop written from the equations (one sample, one neuron and one synapse
group at a time, integer arithmetic of deployed.fixed_point): a spike at window step t over a
recurrent synapse of delay d reaches its target at t + 1 + d, summed per (slot, delay, post)
group, shifted by the recurrent weight_exp (floor), added to the same step's feed-forward a_in.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deployed import fixed_point as fp
from deployed.emulator import emulate
from deployed.network import DeployedNetwork, RecurrentSynapses
from deployed.synthetic import random_network, random_payloads
from deployed.validate import (
    NetworkError,
    drains_between_samples,
    max_input_current,
    validate_network,
)


def _shift(x: int, e: int) -> int:
    return x << e if e >= 0 else x >> -e  # Python >> on ints is floor, as Lava's int shift


def _group_sums(pre, post, delay, weight, num_weight_bits, n_in, n_out, slots):
    """[(slot, delay, post) -> [(pre, applied weight)]] per slot (Lava's per-process weights)."""
    groups: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    for s, (w, d) in enumerate(slots):
        w = fp.lava_weights(w, num_weight_bits)
        for j, i in zip(*np.nonzero(w)):
            groups.setdefault((s, int(d[j, i]), int(j)), []).append((int(i), int(w[j, i])))
    return groups


def reference(net: DeployedNetwork, payload: np.ndarray, steps: int):
    """One sample (T, C) -> (spikes per spiking layer (steps, n), last layer's v (steps, n))."""
    x = np.zeros((steps, net.input.n_channels), dtype=np.int64)
    x[:payload.shape[0]] = payload[:steps]
    spikes, v_last = [], None
    for li, L in enumerate(net.layers):
        ff = _group_sums(L.pre, L.post, L.delay, L.weight, L.num_weight_bits, L.n_in, L.n_out,
                         L.slots())
        rec = L.recurrent
        rg = {} if rec is None else _group_sums(rec.pre, rec.post, rec.delay, rec.weight,
                                                rec.num_weight_bits, L.n_out, L.n_out,
                                                rec.slots(L.n_out))
        nr = L.neurons
        bias = fp.effective_bias(nr.bias_mant, nr.bias_exp)
        u = np.zeros(L.n_out, dtype=np.int64)
        v = np.zeros(L.n_out, dtype=np.int64)
        s = np.zeros((steps, L.n_out), dtype=np.int64)
        vs = np.zeros((steps, L.n_out), dtype=np.int64)
        for k in range(net.start_step(li), steps):
            a = np.zeros(L.n_out, dtype=np.int64)
            for (_slot, d, j), syn in ff.items():
                if k - 1 - d >= 0:
                    a[j] += _shift(sum(w * int(x[k - 1 - d, i]) for i, w in syn), L.weight_exp)
            for (_slot, d, j), syn in rg.items():
                if k - 1 - d >= 0:
                    a[j] += _shift(sum(w * int(s[k - 1 - d, i]) for i, w in syn),
                                   rec.weight_exp)
            u = fp.lif_current(u, a, nr.du)
            v = fp.lif_voltage(v, u, bias, nr.dv)
            if nr.spiking:
                fire = v > (np.int64(nr.vth) << fp.VTH_SHIFT)
                s[k] = fire
                v[fire] = 0
            vs[k] = v
        spikes.append(s)
        x, v_last = s, vs
    return spikes[:net.n_spiking], v_last


def _net(seed, **kw) -> DeployedNetwork:
    args = dict(sizes=(6, 9, 7, 3), time_steps=16, density=0.5, max_delay=4,
                extra_delays=0.3, message_bits=3, input_weight_exp=-2, vth=60, dv=300,
                bias_max=40, recurrent_density=0.35, recurrent_max_delay=5,
                recurrent_weight_exp=-1, seed=seed)
    args.update(kw)
    return random_network(**args)


@pytest.mark.parametrize("seed,kw", [
    (0, {}),
    (1, {"recurrent_weight_exp": 1, "extra_delays": 0.0}),
    (2, {"recurrent_weight_exp": -3, "recurrent_max_delay": 9}),
    (3, {"layer_start": "zero"}),
])
def test_emulator_equals_slow_reference(seed, kw):
    """Spikes of every layer and the readout voltage, several samples at once, equal to the loop
    written from the equations (several recurrent slots, floors, both layer starts)."""
    start = kw.pop("layer_start", None)
    net = _net(seed, **kw)
    if start:
        net.layer_start = start
    assert all(L.recurrent is not None and L.recurrent.n_synapses for L in net.layers[:-1])
    assert max(len(L.recurrent.slots(L.n_out)) for L in net.layers[:-1]) > 1 or \
        kw.get("extra_delays") == 0.0
    p = random_payloads(net, 5, density=0.6, seed=seed)
    steps = net.input.time_steps + net.latency + 6
    act = emulate(net, p, steps=steps)
    rec_spikes = 0
    for n in range(p.shape[0]):
        ref_s, ref_v = reference(net, p[n], steps)
        for i, r in enumerate(ref_s):
            assert np.array_equal(act.spikes[i][n], r), f"sample {n} layer {i}"
        assert np.array_equal(act.readout_v[n], ref_v)
        rec_spikes += sum(int(r.sum()) for r in ref_s)
    assert rec_spikes > 40  # the layers do spike, so recurrence is exercised


def test_recurrence_changes_the_output():
    """The same network without its recurrent synapses gives other spikes (the test above
    would fail on an emulator that ignores `recurrent`)."""
    net = _net(0)
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None)
                                          for L in net.layers])
    p = random_payloads(net, 3, density=0.6, seed=0)
    a, b = emulate(net, p), emulate(ff, p)
    assert not np.array_equal(a.spikes[0], b.spikes[0])


def test_recurrent_delay_62_and_self_excitation():
    """One neuron excites itself over delay 62: one input spike makes it fire every 63 steps."""
    net = _net(0, sizes=(1, 1, 1), density=1.0, max_delay=0, extra_delays=0.0,
               recurrent_density=0.0, bias_max=0, input_weight_exp=0)
    L0 = net.layers[0]
    L0.weight[:] = 254
    L0.neurons.dv, L0.neurons.vth = 4095, 100
    L0.recurrent = RecurrentSynapses(pre=np.array([0]), post=np.array([0]),
                                     delay=np.array([62]), weight=np.array([254]),
                                     weight_exp=0, num_weight_bits=8)
    net.input.time_steps = 1
    p = np.ones((1, 1, 1), dtype=np.int64) * 7
    act = emulate(net, p, steps=200)
    assert np.flatnonzero(act.spikes[0][0, :, 0]).tolist() == [1, 64, 127, 190]


def test_sparse_recurrent_cost_follows_synapses():
    """A layer with a handful of recurrent synapses costs about what a feed-forward one does."""
    import time
    net = random_network((20, 200, 5), time_steps=60, density=0.05, max_delay=10, seed=4,
                         recurrent_density=0.0005, recurrent_max_delay=62)
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None)
                                          for L in net.layers])
    p = random_payloads(net, 64, seed=1)
    emulate(net, p[:2]), emulate(ff, p[:2])
    t0 = time.perf_counter()
    emulate(ff, p)
    t_ff = time.perf_counter() - t0
    t0 = time.perf_counter()
    emulate(net, p)
    t_rec = time.perf_counter() - t0
    assert t_rec < 4 * t_ff + 0.2, (t_rec, t_ff)


# ------------------------------------------------------------------ checks

def _bad(net, **changes):
    L = net.layers[0]
    L.recurrent = dataclasses.replace(L.recurrent, **changes)
    return net


@pytest.mark.parametrize("change,msg", [
    ({"post": np.array([0, 9])}, "recurrent synapses: post indices must lie in 0..8"),
    ({"pre": np.array([-1, 0])}, "recurrent synapses: pre indices must lie in 0..8"),
    ({"delay": np.array([64, 0])}, "recurrent synapses: delay 64 exceeds 63"),
    ({"weight": np.array([3, -2])}, "recurrent synapses, slot 0: 1 weights are not what Lava"),
    ({"delay": np.array([1, 1]), "pre": np.array([2, 2])}, "duplicate synapses"),
    ({"num_weight_bits": 9}, "num_weight_bits must be 1..8"),
])
def test_validate_refuses_bad_recurrent_synapses(change, msg):
    net = _net(0)
    two = {"pre": np.array([2, 3]), "post": np.array([1, 1]), "delay": np.array([1, 2]),
           "weight": np.array([-10, 4])}
    net = _bad(net, **(two | change))
    with pytest.raises(NetworkError, match=msg.replace("(", r"\(")):
        validate_network(net, "emulator")


def test_readout_cannot_be_recurrent_and_headroom_counts_recurrence():
    net = _net(0)
    net.layers[-1].recurrent = net.layers[0].recurrent
    with pytest.raises(NetworkError, match="non-spiking readout has no spikes to feed back"):
        validate_network(net, "emulator")
    net = _net(0)
    L = net.layers[0]
    base = dataclasses.replace(L, recurrent=None)
    assert max_input_current(L, 7) > max_input_current(base, 7)
    L.recurrent.weight_exp = 22  # recurrent input alone would overflow int32 a_in << 6
    with pytest.raises(NetworkError, match="overflows Lava's int32"):
        validate_network(net, "lava")


def test_recurrent_network_does_not_claim_to_drain():
    net = _net(0, bias_max=0)
    for L in net.layers[:-1]:
        L.neurons.du = 4095
    assert not drains_between_samples(net)
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None)
                                          for L in net.layers])
    assert drains_between_samples(ff)
