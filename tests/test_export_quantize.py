"""Quantization follows Lava's fixed-point rules exactly (checked with Lava's own utilities)."""
from __future__ import annotations

import numpy as np
import pytest
from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights

from deployed import fixed_point as fp
from trainer.checkpoint import checkpoint_from_dict
from export.float_reference import simulate_float
from export.quantize import QuantSettings, choose_input_encoding, quantize
from helpers.export_checkpoints import make_checkpoint, make_features
from deployed.emulator import aligned, emulate

MODES = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY,
         "inhibitory": SignMode.INHIBITORY}


def lava_applied(w, nwb):
    mode = determine_sign_mode(w)
    return truncate_weights(clip_weights(w, mode, num_bits=8), mode, nwb)


@pytest.mark.parametrize("nwb", [8, 6, 3])
@pytest.mark.parametrize("kind", ["mixed", "excitatory", "inhibitory"])
def test_weight_rule_equals_lava(nwb, kind):
    rng = np.random.default_rng(nwb)
    w = rng.integers(-400, 400, size=(30, 20))
    if kind == "excitatory":
        w = np.abs(w)
    elif kind == "inhibitory":
        w = -np.abs(w) - 1
    assert fp.sign_mode(w) == kind
    assert np.array_equal(fp.lava_weights(w, nwb), lava_applied(w, nwb))


def test_documented_examples():
    w = np.array([-11, 13, 255, -300, 0])
    assert fp.lava_weights(w, 8).tolist() == [-12, 12, 254, -256, 0]
    assert fp.representable_range("mixed", 8) == (-128, 127)
    assert fp.representable_range("excitatory", 8) == (0, 255)


@pytest.fixture(scope="module")
def exported():
    ck = checkpoint_from_dict(make_checkpoint(seed=3))
    x, y = make_features(48, seed=4)
    fr = simulate_float(ck, x)
    enc, _ = choose_input_encoding(ck, x, 8)
    net, infos = quantize(ck, enc, fr, QuantSettings(), "loihi2", "1")
    return ck, x, y, fr, enc, net, infos


def test_exported_weights_are_lava_fixed_points(exported):
    ck, x, y, fr, enc, net, infos = exported
    for L in net.layers:
        for w, _ in L.slots():
            assert np.array_equal(lava_applied(w, L.num_weight_bits), w)
        # mixed signs, 8 bits: even integers in [-256, 254], shifted back by weight_exp <= -1
        assert L.weight_exp <= -1
        assert L.weight.min() >= -256 and L.weight.max() <= 254 and np.all(L.weight % 2 == 0)


def test_neuron_parameters(exported):
    ck, x, y, fr, enc, net, infos = exported
    for L, C, q in zip(net.layers, ck.layers, infos):
        n = L.neurons
        assert n.du == 4095 and n.dv == C.dv and n.bias_exp == 6
        assert np.all(np.abs(n.bias_mant) < 2 ** 12)
        if C.spiking:
            # the scale makes the float threshold an exact integer vth
            assert n.vth == pytest.approx(C.threshold * q["scale"], abs=1e-9)
            assert 0 < n.vth < 2 ** 17
        else:
            assert n.vth == 2 ** 17 - 1 and not n.spiking
        assert n.v_scale == pytest.approx(1 / (64 * q["scale"]))
    # the input scale maps the largest calibration feature to the top payload
    assert enc.encode(x).max() == 255 and enc.scale == pytest.approx(255 / x.max())


def test_integer_network_matches_dequantized_float(exported):
    """The integer network computes what the float model with the quantized weights does:
    a one-layer (readout only) net, so no threshold decision amplifies rounding."""
    ck = checkpoint_from_dict(make_checkpoint(sizes=(12, 5), seed=5))
    x, _ = make_features(16, seed=6)
    fr = simulate_float(ck, x)
    enc, _ = choose_input_encoding(ck, x, 8)
    net, infos = quantize(ck, enc, fr, QuantSettings(), "loihi2", "1")
    L, C, s = net.layers[0], ck.layers[0], infos[0]["scale"]
    a, b = C.bn_affine()
    deq = C.__class__(**{**C.__dict__,
                         "weight": L.weight * 2.0 ** L.weight_exp / s * enc.scale / a[C.post]})
    fr_q = simulate_float(ck.__class__(**{**ck.__dict__, "layers": [deq]}),
                          enc.encode(x) / enc.scale)
    v_int = aligned(emulate(net, enc.encode(x)), net)[0] * net.readout.neurons.v_scale
    # the only differences left: bias rounding (< 0.5 a_in unit per step) and decay truncation
    assert np.abs(v_int - fr_q.readout_v).max() < 40 / s
    assert np.abs(v_int - fr.readout_v).max() > np.abs(v_int - fr_q.readout_v).max()


def test_quantized_classifies_like_float(exported):
    ck, x, y, fr, enc, net, infos = exported
    q = emulate(net, enc.encode(x)).predictions(net)
    assert np.mean(q == fr.predictions()) >= 0.85


def test_graded_layer_extra_shift_keeps_weight_precision():
    """Small features make the graded-input layer threshold-limited: the default export then
    shifts weight_exp below -1 (full weight range, netx marked approximate), which beats the
    netx-exact export's weight error."""
    from deployed.netx_h5 import netx_problems
    ck = checkpoint_from_dict(make_checkpoint(seed=9))
    x, _ = make_features(24, seed=10)
    x = x * 0.02
    fr = simulate_float(ck, x)
    enc, _ = choose_input_encoding(ck, x, 8)
    fine, qf = quantize(ck, enc, fr, QuantSettings(), "loihi2", "1")
    exact, qe = quantize(ck, enc, fr, QuantSettings(netx_exact=True), "loihi2", "1")
    assert qe[0]["weight_levels_used_fraction"] < 0.5 and exact.layers[0].weight_exp == -1
    assert fine.layers[0].weight_exp < -1 and qf[0]["weight_levels_used_fraction"] > 0.5
    assert qf[0]["weight_rms_error_rel"] < qe[0]["weight_rms_error_rel"] / 2
    assert [p.split(":")[0] for p in netx_problems(fine)] == ["fc1"] and netx_problems(exact) == []
    # the finer layer follows the float model at least as well
    agree = [np.mean(emulate(n, enc.encode(x)).predictions(n) == fr.predictions())
             for n in (fine, exact)]
    assert agree[0] >= agree[1]


def test_a_slot_of_only_negative_weights_keeps_its_most_negative_weight():
    """Several synapses per (post, pre) pair split a layer into slots, each its own Lava process
    with its own sign mode: a slot holding only negative weights is inhibitory, where Lava clips
    at -255, so a mixed layer must not use the level -256 there (a structure-multi sweep export
    failed on it)."""
    d = make_checkpoint(seed=5, multi=1, bn=False, weight_scale=0.05)  # vth large: s ~ s_max
    L1 = d["layers"][1]                      # binary input spikes: the weight range binds
    w, post, pre = L1["weight"], L1["post"], L1["pre"]
    pair = (post == post[-1]) & (pre == pre[-1])   # the extra synapse and its pair's first
    assert int(pair.sum()) == 2
    w[pair] = -2 * float(w.abs().max())      # slot 1 then holds one weight, the most negative
    ck = checkpoint_from_dict(d)
    x, _ = make_features(48, seed=4)
    enc, _ = choose_input_encoding(ck, x, 8)
    net, infos = quantize(ck, enc, simulate_float(ck, x), QuantSettings(), "loihi2", "1")
    slots = net.layers[1].slots()
    assert len(slots) == 2 and fp.sign_mode(slots[1][0]) == "inhibitory"
    assert infos[1]["scale_limited_by"] == "weight_range"
    for L in net.layers:
        for s, _ in L.slots():
            assert np.array_equal(lava_applied(s, L.num_weight_bits), s)
    assert slots[1][0].min() == -254          # the lowest level, -127 << 1
    assert infos[1]["W_representable"] == [-127, 127]
