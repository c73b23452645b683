"""Per-neuron weight exponents (export.quantize `neuron_exponents`, ConnectionLayer.neuron_exp):
each neuron's synapses shifted by their own exponent, one Lava connection process per exponent.
Quantizer, emulator, Lava, netx file, NIR metadata and the fidelity bound's use of it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deployed import fixed_point as fp
from deployed import netx_h5
from deployed.emulator import emulate, synaptic_input
from deployed.network import ConnectionLayer, NeuronParams
from deployed.validate import NetworkError, validate_network
from export.errors import ExportError
from export.fidelity import export_with_bound
from export.float_reference import simulate_float
from export.nir_fixed_point import deployed_from_json, deployed_to_json
from export.quantize import QuantSettings, choose_input_encoding, quantize
from tests.helpers.export_checkpoints import make_checkpoint, make_features
from trainer.checkpoint import checkpoint_from_dict

BIG = 16  # weights into fc1 neurons 0 and 1 are this much larger than the others'


def big_neurons_case(seed=0, n=48):
    """A handmade checkpoint whose fc1 neurons 0 and 1 get weights 16x larger than the others:
    on the layer's grid every other neuron has a few levels; float features x (n samples)."""
    ck_dict = make_checkpoint(bn=False, seed=seed)
    L = ck_dict["layers"][0]
    L["weight"][L["post"] < 2] *= BIG
    x, _ = make_features(n=n)
    return checkpoint_from_dict(ck_dict), x.astype(np.float64)


def quantized(ck, x, **opts):
    enc, _ = choose_input_encoding(ck, x, 8)
    return quantize(ck, enc, simulate_float(ck, x), QuantSettings(**opts), "loihi2", "1")


def test_each_neuron_gets_the_exponent_that_fills_its_range_and_nothing_else_changes():
    ck, x = big_neurons_case()
    plain, info = quantized(ck, x)
    net, ninfo = quantized(ck, x, neuron_exponents=True)
    L0, N0 = plain.layers[0], net.layers[0]
    e = N0.neuron_exp
    assert e is not None and e.shape == (N0.n_out,) and e.min() >= 0
    assert e[:2].min() == 0 and np.all(e[2:] >= 2)  # the other neurons gained levels
    assert ninfo[0]["neuron_exp"] == e.tolist()
    # structure, delays, neurons and the layer scale are the plain export's
    for key in ("pre", "post", "delay"):
        assert np.array_equal(getattr(L0, key), getattr(N0, key))
    assert (N0.neurons.vth, N0.neurons.dv) == (L0.neurons.vth, L0.neurons.dv)
    assert np.array_equal(N0.neurons.bias_mant, L0.neurons.bias_mant)
    assert ninfo[0]["scale"] == info[0]["scale"]
    assert N0.weight_exp == L0.weight_exp and ninfo[0]["synapses_clipped"] == 0
    # every neuron with weights uses the top half of its range (W = weight >> k)
    k = fp.truncate_bits(ninfo[0]["sign_mode"], 8)
    qhi = ninfo[0]["W_representable"][1]
    top = np.zeros(N0.n_out)
    np.maximum.at(top, N0.post, np.abs(N0.weight >> k))
    has = np.bincount(N0.post, minlength=N0.n_out) > 0
    cap = 8 + N0.weight_exp  # Loihi's exponents go down to -8
    assert np.all(top[has] <= qhi) and np.all(((top > qhi // 2) | (e == cap))[has])
    assert np.sum(e == cap) < N0.n_out // 2
    # finer: the weights as applied, back in float units, are closer to the trained ones
    assert ninfo[0]["weight_rms_error_rel"] < info[0]["weight_rms_error_rel"] / 2
    assert ninfo[0]["synapses_quantized_to_zero"] < info[0]["synapses_quantized_to_zero"]
    # one connection process per (slot, exponent); together they hold every synapse once
    procs = N0.processes()
    assert len(procs) == ninfo[0]["connection_processes"] == len(np.unique(e[has]))
    assert np.array_equal(sum(w for w, _, _ in procs), N0.slots()[0][0])
    for w, _, exp in procs:
        rows = np.flatnonzero(np.any(w != 0, axis=1))
        assert np.all(N0.weight_exp - e[rows] == exp)
        assert np.array_equal(fp.lava_weights(w, 8), w)  # Lava keeps every weight
    validate_network(net, "emulator")
    with pytest.raises(ExportError, match="netx_exact"):
        quantized(ck, x, neuron_exponents=True, netx_exact=True)


def test_without_the_option_layers_have_no_neuron_exponents():
    ck, x = big_neurons_case()
    plain, info = quantized(ck, x)
    assert all(L.neuron_exp is None for L in plain.layers)
    assert all("neuron_exp" not in q for q in info)
    L = plain.layers[0]
    assert [(w.tolist(), d.tolist(), e) for w, d, e in L.processes()] == [
        (w.tolist(), d.tolist(), L.weight_exp) for w, d in L.slots()]


def test_the_emulator_shifts_each_neurons_sum_by_its_own_exponent():
    """Two neurons, the same integer weights, exponents -1 and -3: each (delay, post) group's
    sum is floored after its own shift."""
    pre, post = np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
    delay, weight = np.zeros(4, np.int64), np.array([6, -2, 6, -2])
    nr = NeuronParams(n=2, du=4095, dv=0, vth=1000, bias_mant=np.zeros(2, np.int64),
                      bias_exp=6, spiking=True)
    layer = ConnectionLayer(name="l", n_in=2, n_out=2, pre=pre, post=post, delay=delay,
                            weight=weight, weight_exp=-1, num_weight_bits=8, neurons=nr,
                            input_message_bits=8, neuron_exp=np.array([0, 2]))
    x = np.zeros((2, 3, 1))
    x[:, 0, 0] = [3, 2]  # sum = 6*3 - 2*2 = 14
    a = synaptic_input(layer, x)
    assert a[1, :, 0].tolist() == [7, 1]  # floor(14 / 2), floor(14 / 8)
    bad = dataclasses.replace(layer, neuron_exp=np.array([0, -1]))
    with pytest.raises(NetworkError, match="neuron_exp must be >= 0"):
        validate_network_of(bad)


def validate_network_of(layer):
    from deployed.network import DeployedNetwork, InputEncoding

    readout = ConnectionLayer(
        name="out", n_in=layer.n_out, n_out=1, pre=np.array([0]), post=np.array([0]),
        delay=np.array([0]), weight=np.array([2]), weight_exp=0, num_weight_bits=8,
        neurons=NeuronParams(n=1, du=4095, dv=0, vth=1000, bias_mant=np.zeros(1, np.int64),
                             bias_exp=6, spiking=False), input_message_bits=0)
    net = DeployedNetwork(layers=[layer, readout],
                          input=InputEncoding(n_channels=layer.n_in, time_steps=3,
                                              num_message_bits=8, scale=1.0),
                          class_names=["a"], profile_name="loihi2", profile_version="1")
    validate_network(net, "emulator")


def test_lava_runs_neuron_exponents_as_the_emulator(tmp_path):
    from lava_runtime.lava_graph.graph import run_network

    ck, x = big_neurons_case()
    net, _ = quantized(ck, x, neuron_exponents=True)
    p = net.input.encode(x[:3])
    window = net.input.time_steps + net.padding_steps()
    lava = run_network(net, p, backend="lava", timeout_s=180, steps=window)
    emu = emulate(net, p, steps=window)
    n_proc = sum(len(L.processes()) for L in net.layers)
    assert n_proc > len(net.layers)  # more processes than layers: the exponents split fc1
    assert lava.extra["n_processes"] == 1 + n_proc + 2 * len(net.layers) - 1 + 1
    assert emu.spike_counts()[0] > 0
    for a, b in zip(lava.spikes, emu.spikes):
        assert np.array_equal(a, b)
    assert np.array_equal(lava.readout_v, emu.readout_v)


def test_the_file_keeps_neuron_exponents_and_says_netx_is_approximate(tmp_path):
    ck, x = big_neurons_case()
    plain, _ = quantized(ck, x)
    net, _ = quantized(ck, x, neuron_exponents=True)
    assert netx_h5.file_version(plain) == 1 and netx_h5.file_version(net) == 3
    problems = netx_h5.save(net, tmp_path / "n.h5")
    assert any("per-neuron weight exponents" in p for p in problems)
    back = netx_h5.load(tmp_path / "n.h5")
    assert np.array_equal(back.layers[0].neuron_exp, net.layers[0].neuron_exp)
    p = net.input.encode(x[:4])
    assert np.array_equal(emulate(back, p).readout_v, emulate(net, p).readout_v)
    # the NIR metadata round trip too; a network without exponents writes no key
    again = deployed_from_json(deployed_to_json(net))
    assert np.array_equal(again.layers[0].neuron_exp, net.layers[0].neuron_exp)
    assert again.layers[1].neuron_exp is None or np.array_equal(
        again.layers[1].neuron_exp, net.layers[1].neuron_exp)
    assert all("neuron_exp" not in L for L in deployed_to_json(plain)["layers"])
    # a NIR file: its float graph (weights w 2^(weight_exp - neuron_exp)) passes the import's
    # check against the integers it carries, and the network read back is the same
    from export.from_nir import fixed_point_network
    from export.to_nir import network_to_nir, write_nir

    graph, _ = network_to_nir(net)
    write_nir(graph, tmp_path / "n.nir")
    nir_net = fixed_point_network(tmp_path / "n.nir")
    assert nir_net is not None
    assert np.array_equal(nir_net.layers[0].neuron_exp, net.layers[0].neuron_exp)
    assert np.array_equal(emulate(nir_net, p).readout_v, emulate(net, p).readout_v)


def test_the_bound_repairs_a_network_with_neuron_exponents_first():
    """Labels = the float model's classes, so the float scores 100%: the plain export loses
    more than the bound, the per-neuron exponents alone bring it within."""
    ck, x = big_neurons_case()
    y = simulate_float(ck, x).predictions()
    net, rep = export_with_bound(ck, provenance={}, source={}, validation=(x, y),
                                 calibration=x, evaluation=False, max_loss=0.5, qat_epochs=0)
    f = rep["fidelity"]
    assert [c["step"] for c in f["tried"]] == ["as exported", "neuron exponents"]
    assert f["tried"][0]["loss_points"] > 0.5 >= f["tried"][1]["loss_points"]
    assert f["within_bound"] and f["step"] == "neuron exponents" and f["neuron_exponents"]
    assert net.layers[0].neuron_exp is not None and f["tried"][1]["neuron_exponents"]
    assert any("per-neuron weight exponents" in c for c in f["changes"])
    assert net.meta["export_options"]["neuron_exponents"] is True
    assert not net.meta["netx_complete"]
    # with netx_exact the remedy is not tried
    _, rep2 = export_with_bound(ck, provenance={}, source={}, validation=(x, y), calibration=x,
                                evaluation=False, max_loss=0.5, qat_epochs=0, allow_loss=True,
                                netx_exact=True)
    assert "neuron exponents" not in [c["step"] for c in rep2["fidelity"]["tried"]]


def test_fine_tuning_trains_through_each_neurons_grid():
    """export.qat's grid for a layer with neuron exponents is per synapse, and rounding the
    folded weights on it gives the exported integers."""
    import torch

    from export.build_network import export_loaded
    from export.qat import fake_quant, grids_from_report

    ck, x = big_neurons_case()
    net, rep = export_loaded(ck, provenance={}, source={}, calibration=x, evaluation=False,
                             max_calibration=None, neuron_exponents=True)
    grids = grids_from_report(rep, net.input.scale, [L.post for L in ck.layers])
    L, N0, g = ck.layers[0], net.layers[0], grids[0]
    assert isinstance(g.weight_gain, torch.Tensor) and g.weight_gain.shape == (N0.n_synapses,)
    a, _ = L.bn_affine()
    wf = torch.tensor(L.weight * a[L.post], dtype=torch.float32)
    W = torch.round(fake_quant(wf, g.weight_gain, g.w_lo, g.w_hi) * g.weight_gain)
    k = fp.truncate_bits(rep["layers"][0]["quantization"]["sign_mode"], 8)
    assert np.array_equal(W.numpy().astype(np.int64), N0.weight >> k)
    with pytest.raises(ValueError, match="posts"):
        grids_from_report(rep, net.input.scale)
