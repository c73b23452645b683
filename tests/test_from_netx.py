"""export.from_netx: networks written by lava-dl are converted to the DeployedNetwork that computes
exactly what lava-dl's netx runs in Lava.

The reference is lava-dl itself: networks built and trained a few steps with its SLAYER blocks
(tests/helpers/slayer_nets.py, CPU), written by its export_hdf5, then run by
`lava.lib.dl.netx.hdf5.Network` in Lava (Loihi2SimCfg, fixed_pt, stock models, no reset: how
lava-dl users run it; tests/helpers/netx_plain.py, sandboxed with a timeout) and by this project's
emulator and Lava graph on the same input: the spikes of every layer must be identical on every
step. Hand-written files check every delay layout and neuron field against the processes netx
builds (without running them), and every refusal.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from deployed import netx_h5
from deployed import netx_rules as nr
from deployed.emulator import emulate
from deployed.network import LAYER_START_ALIGNED, LAYER_START_ZERO
from export.errors import ExportError
from export.from_netx import main, netx_to_network
from lava_runtime.lava_graph import sandbox
from lava_runtime.lava_graph.graph import run_network

T = 20  # steps per sample


@pytest.fixture(scope="module")
def slayer_files(tmp_path_factory):
    """The two lava-dl networks of the issue, trained and written by lava-dl."""
    from helpers.slayer_nets import dense_delay_net, two_layer_net
    d = tmp_path_factory.mktemp("slayer")
    dense_delay_net(d / "dense.net")
    two_layer_net(d / "two.net")
    return {"dense": d / "dense.net", "two": d / "two.net"}


@pytest.fixture
def run_netx(monkeypatch):
    """run_netx(path, payload (T, C), steps, input_message_bits) -> netx spikes per layer, run in
    the sandbox with tests/helpers/netx_plain.py's worker (only for that call)."""
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


def _payloads(net, bits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (1, net.input.time_steps, net.input.n_channels)
    events = rng.random(shape) < 0.35
    return (events * (rng.integers(1, 2 ** bits, shape) if bits else 1)).astype(np.int64)


def _same_as_netx(net, path, bits, run_netx, seed):
    """netx, this project's Lava graph and its emulator on one sample: spikes per layer."""
    p = _payloads(net, bits, seed)
    steps = net.input.time_steps + net.padding_steps()
    ref = run_netx(path, p[0], steps, bits)
    emu = emulate(net, p, steps=steps)
    lava = run_network(net, p, steps=steps, timeout_s=240)
    assert len(ref) == len(net.layers) == net.n_spiking == len(emu.spikes) == len(lava.spikes)
    for i, r in enumerate(ref):
        assert r.sum() > 20, f"layer {i} hardly spikes: the comparison would be weak"
        assert np.array_equal(r, emu.spikes[i][0]), f"layer {i}: emulator != netx"
        assert np.array_equal(r, lava.spikes[i][0]), f"layer {i}: Lava graph != netx"
    assert np.array_equal(emu.readout_v, lava.readout_v)
    return p, emu


def test_slayer_dense_with_delays_spikes_as_netx(slayer_files, run_netx):
    """slayer.block.cuba.Dense(delay=True): axonal delays, read by netx per post neuron."""
    net, rep = netx_to_network(slayer_files["dense"], time_steps=T)
    L = net.layers[0]
    assert rep["layers"][0]["delay_layout"] == "per post neuron" and L.max_delay >= 4
    assert net.layer_start == LAYER_START_ZERO and L.neurons.spiking
    assert rep["netx"] == {"complete": True, "problems": []}
    _same_as_netx(net, slayer_files["dense"], 0, run_netx, seed=3)


def test_slayer_two_layers_bias_graded_spikes_as_netx(slayer_files, run_netx, tmp_path):
    """Dense -> Dense with a norm's bias and graded_spike=True, 3-bit graded input: equal to netx
    on every step; written and read back, the same network; run as "aligned" it would differ."""
    net, rep = netx_to_network(slayer_files["two"], time_steps=T, input_message_bits=3)
    assert np.count_nonzero(net.layers[1].neurons.bias_mant) > 0
    assert [s["gradedSpike"] for s in net.meta["netx_source"]["layers"]] == [False, True]
    assert any("gradedSpike" in w for w in rep["warnings"])
    p, emu = _same_as_netx(net, slayer_files["two"], 3, run_netx, seed=4)

    out = tmp_path / "net.h5"
    assert netx_h5.save(net, out) == []
    with h5py.File(out) as f:
        assert f["delaysnn"].attrs["version"] == 2
        assert f["delaysnn"].attrs["layer_start"] == LAYER_START_ZERO
    back = netx_h5.load(out)
    assert back.layer_start == LAYER_START_ZERO and back.layers[-1].neurons.spiking
    again = emulate(back, p, steps=emu.readout_v.shape[1])
    assert all(np.array_equal(a, b) for a, b in zip(again.spikes, emu.spikes))

    # the latency convention matters: started per layer (checkpoints' rule), biases act later
    aligned = dataclasses.replace(net, layer_start=LAYER_START_ALIGNED)
    other = emulate(aligned, p, steps=emu.readout_v.shape[1])
    assert not all(np.array_equal(a, b) for a, b in zip(other.spikes, emu.spikes))


def test_budget_on_every_profile(slayer_files):
    from hw_profiles import list_profiles, load_profile
    from lava_runtime.budget.estimate import compare
    net, _ = netx_to_network(slayer_files["two"], time_steps=T)
    act = emulate(net, _payloads(net, 0, 5))
    budgets = {b.profile: b for b in compare(net, act, [load_profile(p)
                                                        for p in list_profiles()])}
    assert set(budgets) == set(list_profiles())
    out_spikes = act.spikes[-1].sum() / act.n_samples
    for b in budgets.values():
        assert b.synops_per_sample > 0 and b.layers[-1].spikes_out == out_spikes
    assert not budgets["loihi2"].refused and budgets["loihi2"].energy_total > 0
    assert any("max_delay" in r for r in budgets["xylo-audio2"].refused)  # no delays there


# ------------------------------------------------------------------ hand-written netx files

def _write_netx(path, layers, input_shape=None):
    """A netx file in lava-dl's layout: layer/<i>/type (S10), shape, weight, delay, bias,
    neuron/ (type, iDecay, vDecay, vThMant, refDelay, gradedSpike)."""
    with h5py.File(path, "w") as f:
        lay = f.create_group("layer")
        i0 = 0
        if input_shape is not None:
            g = lay.create_group("0")
            g.create_dataset("type", (1,), "S10", [b"input"])
            g.create_dataset("shape", data=np.array(input_shape))
            i0 = 1
        for i, spec in enumerate(layers):
            g = lay.create_group(str(i + i0))
            g.create_dataset("type", (1,), "S10", [spec.get("type", "dense").encode()])
            W = np.asarray(spec["weight"])
            g.create_dataset("shape", data=np.array([W.shape[0]]))
            g.create_dataset("weight", data=W.astype(np.float32))
            for key in ("delay", "bias"):
                if key in spec:
                    g.create_dataset(key, data=np.asarray(spec[key], dtype=np.float32))
            neuron = {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80,
                      "refDelay": 1, "gradedSpike": False, **spec.get("neuron", {})}
            for key, value in neuron.items():
                g.create_dataset(f"neuron/{key}", data=value)


def _even(rng, shape, lo=-100, hi=100):
    return 2 * rng.integers(lo // 2, hi // 2 + 1, shape)


def test_every_delay_layout_and_neuron_field_as_netx_builds_them(tmp_path):
    """Per input, per synapse, scalar and per-post delays (n_in = n_out: netx takes per post),
    LOIHI neurons, biases, an excitatory and an inhibitory matrix: our layers hold what netx's
    processes get (weights, delays, weight_exp, num_weight_bits, du, dv, vth, bias)."""
    from lava.lib.dl.netx.hdf5 import Network
    rng = np.random.default_rng(7)
    specs = [
        {"weight": _even(rng, (9, 6)), "delay": rng.integers(0, 9, 6)},  # per input
        {"weight": _even(rng, (9, 9), 0, 60), "delay": rng.integers(0, 5, 9),  # n_in = n_out
         "bias": rng.integers(-30, 30, 9), "neuron": {"type": "LOIHI", "iDecay": 4096}},
        {"weight": -rng.integers(1, 40, (7, 9)), "delay": rng.integers(0, 62, (7, 9))},
        {"weight": _even(rng, (5, 7)), "delay": 3, "neuron": {"vDecay": 0, "vThMant": 300}},
        {"weight": _even(rng, (4, 5))},  # no delay: netx uses Dense
    ]
    path = tmp_path / "hand.net"
    _write_netx(path, specs, input_shape=[6])
    net, rep = netx_to_network(path, time_steps=8)
    assert [s["delay_layout"] for s in rep["layers"]] == [
        "per input", "per post neuron", "per synapse", "scalar", "none"]
    nx = Network(net_config=str(path))
    assert len(nx.layers) == len(net.layers)
    for L, block in zip(net.layers, nx.layers):
        syn, lif = block.synapse, block.neuron
        (w, d), = L.slots()
        assert np.array_equal(syn.weights.init, w), L.name  # netx keeps W = 0 synapses at 0
        assert syn.proc_params["weight_exp"] == L.weight_exp
        assert syn.proc_params["num_weight_bits"] == L.num_weight_bits
        if hasattr(syn, "delays"):
            assert np.array_equal(np.where(w != 0, syn.delays.init, 0), d), L.name
        else:
            assert not d.any()
        n = L.neurons
        assert (lif.du.init, lif.dv.init, lif.vth.init) == (n.du, n.dv, n.vth)
        assert np.array_equal(np.broadcast_to(lif.bias_mant.init, (n.n,)), n.bias_mant)
        assert lif.bias_exp.init == n.bias_exp == 6
    act = emulate(net, _payloads(net, 0, 1))
    assert act.spikes[0].sum() > 0


def test_weight_rule_is_netx_optimize_weight_bits():
    from lava.lib.dl.netx.utils import optimize_weight_bits
    rng = np.random.default_rng(0)
    cases = [_even(rng, (5, 6), -256, 254), rng.integers(-7, 9, (4, 4)), rng.integers(0, 3, (3, 5)),
             -rng.integers(1, 256, (3, 3)), 4 * rng.integers(-8, 8, (6, 2)), np.array([[0, -4]]),
             rng.integers(1, 255, (2, 2))]
    for W in cases:
        w, bits, exp = nr.weight_rule(W)
        w_nx, bits_nx, exp_nx, _ = optimize_weight_bits(W.copy())
        assert (bits, exp) == (bits_nx, exp_nx) and np.array_equal(w, w_nx)


def test_affine_readout_never_spikes(tmp_path):
    """SLAYER's Affine output (vThMant = 2**18 - 1, never crossed) becomes a voltage readout."""
    rng = np.random.default_rng(2)
    path = tmp_path / "affine.net"
    _write_netx(path, [{"weight": _even(rng, (8, 5)), "delay": rng.integers(0, 3, 8)},
                       {"weight": _even(rng, (3, 8)), "neuron": {"vThMant": (1 << 18) - 1}}])
    net, rep = netx_to_network(path, time_steps=10)
    assert not net.readout.neurons.spiking and net.readout.neurons.vth == 2 ** 17 - 1
    assert net.n_spiking == 1 and rep["output"].startswith("voltage")
    act = emulate(net, _payloads(net, 0, 3))
    assert len(act.spikes) == 1 and np.abs(act.readout_v).max() > 0


# ------------------------------------------------------------------ command line, bad input

def test_command_and_delaysnn_subcommand(slayer_files, tmp_path, capsys):
    import json

    from delaysnn.cli import main as delaysnn_main
    out, js = tmp_path / "net.h5", tmp_path / "export.json"
    assert main([str(slayer_files["dense"]), "--out", str(out), "--json", str(js),
                 "--time-steps", "12"]) == 0
    rep = json.loads(js.read_text())
    assert rep["profile"]["name"] == "loihi2" and rep["layer_start"] == "zero"
    assert netx_h5.load(out).input.time_steps == 12
    out2 = tmp_path / "net2.h5"
    assert delaysnn_main(["from-netx", str(slayer_files["dense"]), "--out", str(out2),
                          "--time-steps", "12"]) == 0
    assert out2.read_bytes() == out.read_bytes()  # deterministic bytes
    assert f"wrote {out2}" in capsys.readouterr().out


def _truncated(src, dst):
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[:len(data) // 2])


def _not_netx(src, dst):
    with h5py.File(dst, "w") as f:
        f.create_dataset("x", data=np.arange(3))


def _not_hdf5(src, dst):
    Path(dst).write_text("layer 0: dense\n")


def _edit(fn):
    def make(src, dst):
        shutil.copy(src, dst)
        with h5py.File(dst, "r+") as f:
            fn(f)
    return make


def _set(f, key, value):
    del f[key]
    f[key] = value


def _block(kind):
    def fn(f):
        del f["layer/1/type"]
        f["layer/1"].create_dataset("type", (1,), "S10", [kind.encode()])
    return fn


BAD = {
    "truncated": (_truncated, "is a truncated HDF5 file"),
    "not_netx": (_not_netx, "is HDF5 but not a netx network"),
    "not_hdf5": (_not_hdf5, "is not an HDF5 file"),
    "conv": (_edit(_block("conv")), "layer 1 (conv) is not supported: convolution"),
    "pool": (_edit(_block("pool")), "layer 1 (pool) is not supported"),
    "dense_rec_without_weight_rec": (_edit(_block("dense_rec")),
                                     "layer 1 (dense_rec) has no weight_rec matrix"),
    "sigma_delta": (_edit(lambda f: _set(f, "layer/1/neuron/type", b"SDNN")),
                    "layer 1 (dense) has neuron type 'SDNN' (sigma-delta)"),
    "delay_over_62": (_edit(lambda f: _set(f, "layer/0/delay", np.full(16, 63.0))),
                      "max delay 63 steps exceeds 62, which netx clamps"),
    "message_bits": (_edit(lambda f: f.create_dataset("layer/0/neuron/messageBits", data=3)),
                     "'messageBits' are not supported"),
    "ref_delay": (_edit(lambda f: _set(f, "layer/0/neuron/refDelay", 2)), "refDelay 2"),
    "i_decay_0": (_edit(lambda f: _set(f, "layer/0/neuron/iDecay", 0)), "iDecay 0"),
    "fractional_delay": (_edit(lambda f: _set(f, "layer/1/delay", np.full(6, 1.5))),
                         "delays must be whole steps"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_one_line_exit_2_nothing_written(case, slayer_files, tmp_path, capsys):
    make, expected = BAD[case]
    bad = tmp_path / "bad.net"
    make(slayer_files["two"], bad)
    out, js = tmp_path / "net.h5", tmp_path / "export.json"
    assert main([str(bad), "--out", str(out), "--json", str(js)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and expected in err, err
    assert not out.exists() and not js.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.net"]  # no temp file left


def test_delay_over_the_profile_limit(slayer_files, tmp_path, capsys):
    """Delays netx takes (<= 62) but the profile does not (xylo-audio2: none at all)."""
    out = tmp_path / "net.h5"
    assert main([str(slayer_files["two"]), "--out", str(out), "--profile", "xylo-audio2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "max_delay" in err and "xylo-audio2" in err
    assert not out.exists()
    with pytest.raises(ExportError, match="does not exist"):
        netx_to_network(tmp_path / "missing.net")


def test_networks_without_the_new_fields_keep_file_version_1(tmp_path):
    """An exported (aligned, readout) network is written as before: version 1, no layer_start,
    re-saved byte for byte; the same network with layer_start "zero" is version 2 and reads
    back as such."""
    from deployed.synthetic import random_network
    net = random_network((6, 10, 3), time_steps=8, max_delay=5, density=0.5, seed=9)
    a, b, z = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "z.h5"
    netx_h5.save(net, a)
    netx_h5.save(netx_h5.load(a), b)
    assert a.read_bytes() == b.read_bytes()
    with h5py.File(a) as f:
        assert f["delaysnn"].attrs["version"] == 1 and "layer_start" not in f["delaysnn"].attrs
    netx_h5.save(dataclasses.replace(net, layer_start=LAYER_START_ZERO), z)
    with h5py.File(z) as f:
        assert f["delaysnn"].attrs["version"] == 2
    assert netx_h5.load(z).layer_start == LAYER_START_ZERO
