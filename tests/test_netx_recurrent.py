"""Recurrent layers in the network file (issue 24, docs/design.md section 8): the project's own
`delaysnn/layers/<i>/recurrent` group (version 2), netx's `dense_rec` form where netx computes
it exactly, proved by running `lava.lib.dl.netx.hdf5.Network` in Lava (stock models, sandboxed,
no reset: how lava-dl users run it) against the emulator on every step of every layer, and
export.from_netx reading dense_rec back; everywhere else the file says netx-incomplete and why.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from deployed import netx_h5
from deployed.emulator import emulate
from deployed.network import (
    LAYER_START_ZERO,
    ConnectionLayer,
    DeployedNetwork,
    InputEncoding,
    NeuronParams,
    RecurrentSynapses,
)
from deployed.synthetic import random_network, random_payloads
from export.from_netx import main as from_netx_main
from export.from_netx import netx_to_network
from lava_runtime.lava_graph import sandbox

T = 16


def _syn(rng, n_in, n_out, density, max_delay, lo, hi, share=None):
    """(pre, post, delay, weight) lists: even weights in lo..hi, delays 0..max_delay (or the
    delays of `share`, a (n_out, n_in) matrix, where given)."""
    mask = rng.random((n_out, n_in)) < density
    post, pre = np.nonzero(mask)
    w = 2 * rng.integers(lo // 2, hi // 2 + 1, post.size)
    w[w == 0] = 2
    d = (rng.integers(0, max_delay + 1, post.size) if share is None else share[post, pre])
    return pre.astype(np.int64), post.astype(np.int64), d.astype(np.int64), w.astype(np.int64)


def _layer(name, n_in, n_out, ff, rec, *, bits=0, vth=40, spiking=True):
    pre, post, d, w = ff
    r = None if rec is None else RecurrentSynapses(*rec, weight_exp=0, num_weight_bits=8)
    return ConnectionLayer(name=name, n_in=n_in, n_out=n_out, pre=pre, post=post, delay=d,
                           weight=w, weight_exp=0, num_weight_bits=8,
                           neurons=NeuronParams(n=n_out, du=3000, dv=500, vth=vth,
                                                bias_mant=np.zeros(n_out, np.int64),
                                                bias_exp=6, spiking=spiking),
                           input_message_bits=bits, recurrent=r)


def netx_exact_net(seed=0) -> DeployedNetwork:
    """6 (3-bit graded) -> 6 recurrent, delays shared by both parts, joint exponent 0 (case b)
    -> 8 recurrent without delays (case a) -> 4 spiking outputs; every layer from step 0."""
    rng = np.random.default_rng(seed)
    D = rng.integers(0, 7, (6, 6))
    l1 = _layer("rec_delays", 6, 6, _syn(rng, 6, 6, 0.8, 0, -60, 200, share=D),
                _syn(rng, 6, 6, 0.5, 0, -200, 160, share=D), bits=3, vth=80)
    l2 = _layer("rec_no_delay", 6, 8, _syn(rng, 6, 8, 0.7, 0, -40, 100),
                _syn(rng, 8, 8, 0.4, 0, -100, 80))
    l3 = _layer("out", 8, 4, _syn(rng, 8, 4, 0.8, 5, -40, 100), None)
    enc = InputEncoding(n_channels=6, time_steps=T, num_message_bits=3, scale=1.0)
    return DeployedNetwork(layers=[l1, l2, l3], input=enc, class_names=list("abcd"),
                           profile_name="loihi2", profile_version="1",
                           layer_start=LAYER_START_ZERO)


@pytest.fixture
def run_netx(monkeypatch):
    """netx (tests/helpers/netx_plain.py) in the sandbox: spikes per netx layer."""
    from helpers.netx_plain import WORKER, run_netx_plain
    tests_dir = str(Path(__file__).resolve().parent)

    def run(path, payload, steps, bits):
        with monkeypatch.context() as m:
            m.setenv("PYTHONPATH", os.pathsep.join(
                [tests_dir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                               if p]))
            m.setattr(sandbox, "WORKER_MODULE", WORKER)
            return run_netx_plain(path, payload, steps, bits, timeout_s=240)
    return run


def test_dense_rec_runs_in_netx_as_the_emulator(tmp_path, run_netx):
    """Both exact forms written as dense_rec; netx in Lava spikes as the emulator in every layer
    on every step; export.from_netx reads the file back into a network that emulates the same."""
    net = netx_exact_net()
    path = tmp_path / "rec.h5"
    assert netx_h5.save(net, path) == []
    with h5py.File(path) as f:
        types = [f[f"layer/{i}/type"][0].decode() for i in range(1, 4)]
        assert types == ["dense_rec", "dense_rec", "dense"]
        assert "delay" in f["layer/1"] and "delay" not in f["layer/2"]  # cases (b), (a)
        assert f["delaysnn"].attrs["version"] == 2 and f.attrs["netx_complete"]
    p = random_payloads(net, 1, density=0.5, seed=2)
    steps = T + net.padding_steps() + 10
    emu = emulate(net, p, steps=steps)
    ref = run_netx(path, p[0], steps, 3)
    assert len(ref) == 3
    for i, r in enumerate(ref):
        assert r.sum() > 15, f"layer {i} hardly spikes: the comparison would be weak"
        assert np.array_equal(r, emu.spikes[i][0]), f"layer {i}: netx != emulator"
    # without its recurrent synapses the network spikes differently (the test can fail)
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None)
                                          for L in net.layers])
    assert not np.array_equal(emulate(ff, p, steps=steps).spikes[1], emu.spikes[1])

    back, rep = netx_to_network(path, time_steps=T, input_message_bits=3)
    assert [s["type"] for s in back.meta["netx_source"]["layers"]] == [
        "input", "dense_rec", "dense_rec", "dense"]
    assert [s["recurrent_synapses"] for s in rep["layers"]] == [
        L.recurrent.n_synapses if L.recurrent else 0 for L in net.layers]
    assert back.layers[0].recurrent.weight_exp == 0  # netx passes none with a delay
    again = emulate(back, p, steps=steps)
    assert all(np.array_equal(a, b) for a, b in zip(again.spikes, emu.spikes))


def _not_exact_cases():
    rng = np.random.default_rng(5)
    base = netx_exact_net()
    out = {}
    # (b) needs one delay matrix: a pair with different feed-forward and recurrent delays
    n = base.layers[0]
    rec = n.recurrent
    both = np.flatnonzero([(p, q) in set(zip(n.pre.tolist(), n.post.tolist()))
                           for p, q in zip(rec.pre.tolist(), rec.post.tolist())])
    d = rec.delay.copy()
    d[both[0]] += 1
    out["different delays"] = (0, dataclasses.replace(rec, delay=d),
                               "different feed-forward and recurrent delays")
    # joint exponent not 0 with delays: small weights (netx would scale them up)
    small = netx_exact_net()
    for L in small.layers[:1]:
        L.weight = np.clip(L.weight, -60, 60) // 2 * 2
        L.weight[L.weight == 0] = 2
        L.recurrent.weight = np.clip(L.recurrent.weight, -60, 60) // 2 * 2
        L.recurrent.weight[L.recurrent.weight == 0] = 2
    out["joint exponent"] = (0, small.layers[0].recurrent, "joint weight exponent is -2",
                             small.layers[0].weight)
    # delays with n_in != n_out
    pre, post, dd, w = _syn(rng, 8, 8, 0.4, 3, -100, 80)
    out["n_in != n_out"] = (1, RecurrentSynapses(pre, post, dd, w, 0, 8), "needs n_in = n_out")
    # several synapses for a pair
    r = base.layers[1].recurrent
    out["multi"] = (1, dataclasses.replace(
        r, pre=np.r_[r.pre, r.pre[0]], post=np.r_[r.post, r.post[0]],
        delay=np.r_[r.delay, 3], weight=np.r_[r.weight, 4]), "several synapses")
    # a recurrent weight_exp finer than the weights (floored sums)
    out["floored"] = (1, dataclasses.replace(r, weight_exp=-2, weight=r.weight | 2),
                      "finer than the weights")
    return out


@pytest.mark.parametrize("case", sorted(_not_exact_cases()))
def test_not_netx_form_is_marked_incomplete_and_own_layout_exact(case, tmp_path):
    spec = _not_exact_cases()[case]
    li, rec, why = spec[:3]
    net = netx_exact_net()
    if len(spec) > 3:
        net.layers[li].weight = spec[3]
    net.layers[li].recurrent = rec
    path = tmp_path / "x.h5"
    problems = netx_h5.save(net, path)
    name = net.layers[li].name
    assert any(p.startswith(f"{name}: recurrent synapses not in netx's form") and why in p
               for p in problems), problems
    with h5py.File(path) as f:
        assert not f.attrs["netx_complete"]
        assert f[f"layer/{li + 1}/type"][0] == b"dense" and "weight_rec" not in f[f"layer/{li + 1}"]
    back = netx_h5.load(path)
    for a, b in zip(back.layers, net.layers):
        assert (a.recurrent is None) == (b.recurrent is None)
        if a.recurrent is not None:
            for key in ("pre", "post", "delay", "weight", "weight_exp", "num_weight_bits"):
                assert np.array_equal(getattr(a.recurrent, key), getattr(b.recurrent, key))
    p = random_payloads(net, 2, seed=1)
    e1, e2 = emulate(net, p), emulate(back, p)
    assert all(np.array_equal(x, y) for x, y in zip(e1.spikes, e2.spikes))


def test_recurrent_file_is_version_2_and_resaves_identically(tmp_path):
    net = random_network((5, 9, 3), time_steps=8, max_delay=5, density=0.5, seed=3,
                         recurrent_density=0.3, recurrent_max_delay=62, extra_delays=0.2)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    netx_h5.save(net, a)
    netx_h5.save(netx_h5.load(a), b)
    assert a.read_bytes() == b.read_bytes()
    with h5py.File(a) as f:
        assert f["delaysnn"].attrs["version"] == 2
        g = f["delaysnn/layers/0/recurrent"]
        assert g.attrs["weight_exp"] == 0 and g["delay"][()].max() <= 62
        assert "recurrent" not in f["delaysnn/layers/1"]
    # the same network without recurrence is version 1 again
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None)
                                          for L in net.layers])
    netx_h5.save(ff, b)
    with h5py.File(b) as f:
        assert f["delaysnn"].attrs["version"] == 1


def _write(path, W, W_rec, delay=None, n_in=None):
    with h5py.File(path, "w") as f:
        g = f.create_group("layer/0")
        g.create_dataset("type", (1,), "S10", [b"input"])
        g.create_dataset("shape", data=np.array([n_in or W.shape[1]]))
        g = f.create_group("layer/1")
        g.create_dataset("type", (1,), "S10", [b"dense_rec"])
        g.create_dataset("shape", data=np.array([W.shape[0]]))
        g.create_dataset("weight", data=W.astype(np.float32))
        if W_rec is not None:
            g.create_dataset("weight_rec", data=W_rec.astype(np.float32))
        if delay is not None:
            g.create_dataset("delay", data=np.asarray(delay, dtype=np.float32))
        for key, value in {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80,
                           "refDelay": 1, "gradedSpike": False}.items():
            g.create_dataset(f"neuron/{key}", data=value)


@pytest.mark.parametrize("delay", [None, "per post"])
def test_from_netx_dense_rec_holds_what_netx_builds(tmp_path, delay):
    """The processes netx builds for a dense_rec layer (without running them): both parts'
    weights as Lava applies them, the joint num_weight_bits, the exponent (none with a delay)
    and the one delay array."""
    from lava.lib.dl.netx.hdf5 import Network
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights
    rng = np.random.default_rng(11)
    W = rng.integers(-30, 31, (5, 5))
    W_rec = -rng.integers(0, 20, (5, 5)) * (rng.random((5, 5)) < 0.5)  # inhibitory part
    d = rng.integers(0, 9, 5) if delay else None
    path = tmp_path / "r.net"
    _write(path, W, W_rec, d)
    net, rep = netx_to_network(path, time_steps=6)
    L = net.layers[0]
    assert rep["layers"][0]["recurrent_synapses"] == int(np.count_nonzero(W_rec))
    nx = Network(net_config=str(path))
    block = nx.layers[0]
    for syn, ours, n_in in ((block.synapse, L.slots()[0], 5),
                            (block.synapse_rec, L.recurrent.slots(5)[0], 5)):
        w = syn.weights.init
        nwb = syn.proc_params["num_weight_bits"]
        mode = SignMode.INHIBITORY if w.max() <= 0 else (
            SignMode.EXCITATORY if w.min() >= 0 else SignMode.MIXED)
        applied = truncate_weights(clip_weights(w, mode, 8), mode, nwb)
        assert np.array_equal(applied, ours[0])
        assert syn.proc_params.get("weight_exp", 0) == (L.weight_exp if syn is block.synapse
                                                        else L.recurrent.weight_exp)
        if delay:
            assert np.array_equal(np.where(ours[0] != 0, syn.delays.init, 0), ours[1])
    assert (L.weight_exp == 0) == bool(delay)


@pytest.mark.parametrize("W_rec,delay,expected", [
    (None, None, "has no weight_rec matrix"),
    (np.ones((4, 3)), None, "weight_rec of shape (4, 3) does not fit its 4 neurons"),
    (np.ones((4, 4)), np.arange(3), "gives the recurrent weights the feed-forward delay array"),
])
def test_from_netx_refuses_bad_dense_rec(tmp_path, capsys, W_rec, delay, expected):
    path = tmp_path / "bad.net"
    _write(path, np.ones((4, 3)) * 8, W_rec, delay)
    out = tmp_path / "net.h5"
    assert from_netx_main([str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()
