"""Recurrent layers from checkpoint to deployed network (issue 24): the checkpoint's optional
"recurrent" key, the float reference with recurrence (against a slow loop written from the
equations), quantization of recurrent weights at their own scale and exponent, the profile
check (recurrent delays above max_delay refused naming the layer), cores and memory, and the
budget's recurrent synaptic operations."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers.budget_nets import activity, layer, network
from helpers.export_checkpoints import make_checkpoint, make_features

from deployed import netx_h5
from deployed.cores import layer_memory, map_to_cores
from deployed.emulator import emulate
from deployed.limits import check_structure
from deployed.network import RecurrentSynapses
from deployed.validate import validate_network
from export.build_network import export_loaded
from export.errors import ProfileViolation
from export.float_reference import simulate_float
from hw_profiles import load_profile
from lava_runtime.budget.estimate import estimate
from trainer.checkpoint import CheckpointError, checkpoint_from_dict


def recurrent_checkpoint(seed=0, max_rec_delay=6, density=0.3, scale=0.5, **kw) -> dict:
    """make_checkpoint's network with recurrent synapses on every hidden layer (torch tensors,
    as the trainer writes them)."""
    d = make_checkpoint(seed=seed, **kw)
    rng = np.random.default_rng([seed, 7])
    for L in d["layers"][:-1]:
        n = L["n_out"]
        post, pre = np.nonzero(rng.random((n, n)) < density)
        L["recurrent"] = {
            "pre": torch.tensor(pre), "post": torch.tensor(post),
            "delay": torch.tensor(rng.integers(0, max_rec_delay + 1, post.size)),
            "weight": torch.tensor(rng.normal(0.0, scale, post.size), dtype=torch.float32)}
    return d


def test_checkpoint_reads_the_recurrent_key_and_old_files_have_none():
    ck = checkpoint_from_dict(recurrent_checkpoint())
    assert all(L.recurrent is not None and L.recurrent.pre.size for L in ck.layers[:-1])
    assert ck.layers[-1].recurrent is None
    R = ck.layers[0].recurrent
    assert R.delay.dtype == np.int64 and R.weight.dtype == np.float64
    assert all(L.recurrent is None for L in checkpoint_from_dict(make_checkpoint()).layers)


@pytest.mark.parametrize("edit,msg", [
    (lambda d: d["layers"][-1].__setitem__("recurrent", d["layers"][0]["recurrent"]),
     "the readout (last layer) cannot have recurrent synapses"),
    (lambda d: d["layers"][0]["recurrent"].__setitem__("post", torch.tensor([99])),
     "recurrent 'post' has shape"),
    (lambda d: d["layers"][0]["recurrent"].update(post=d["layers"][0]["recurrent"]["post"] + 50),
     "recurrent 'pre' and 'post' must lie in [0, 24)"),
    (lambda d: d["layers"][0]["recurrent"].update(
        delay=d["layers"][0]["recurrent"]["delay"].double() + 0.5),
     "recurrent delays must be non-negative integers"),
    (lambda d: d["layers"][0]["recurrent"].pop("weight"), "recurrent is missing field 'weight'"),
    (lambda d: d["layers"][0].__setitem__("recurrent", [1, 2]), "'recurrent' must be a dict"),
])
def test_bad_recurrent_key_is_refused_naming_the_layer(edit, msg):
    d = recurrent_checkpoint()
    edit(d)
    with pytest.raises(CheckpointError, match=r"layer \d+ \(fc\d\)") as e:
        checkpoint_from_dict(d)
    assert msg in str(e.value)


def slow_float(ck, x):
    """The float model from the equations, one sample / neuron / synapse at a time: readout v."""
    out = []
    for xs in x:
        h = xs.astype(np.float64)
        T = h.shape[0]
        for L in ck.layers:
            a, b = L.bn_affine()
            s = np.zeros((T, L.n_out))
            v = np.zeros(L.n_out)
            for t in range(T):
                I = b.copy()
                for p, q, d, w in zip(L.pre, L.post, L.delay, L.weight):
                    if t - d >= 0:
                        I[q] += a[q] * w * h[t - d, p]
                if L.recurrent is not None:
                    R = L.recurrent
                    for p, q, d, w in zip(R.pre, R.post, R.delay, R.weight):
                        if t - 1 - d >= 0:
                            I[q] += w * s[t - 1 - d, p]
                v = L.decay * v + I
                if L.spiking:
                    fire = v > L.threshold
                    s[t] = fire
                    v[fire] = 0.0
                else:
                    s[t] = v
            h = s
        out.append(h)
    return np.array(out)


def test_float_reference_equals_the_equations():
    ck = checkpoint_from_dict(recurrent_checkpoint(sizes=(5, 7, 6, 3), time_steps=14,
                                                   max_delay=3, density=0.3))
    x, _ = make_features(4, time_steps=14, channels=5, n_classes=3)
    fr = simulate_float(ck, x, keep_spikes=True, batch_size=3)
    ref = slow_float(ck, x)
    assert np.allclose(fr.readout_v, ref, atol=1e-9)
    assert fr.spikes[0].sum() > 10
    ff = dataclasses.replace(ck, layers=[dataclasses.replace(L, recurrent=None)
                                         for L in ck.layers])
    assert not np.allclose(simulate_float(ff, x).readout_v, ref)


def test_export_quantizes_recurrent_weights_at_their_own_scale(tmp_path):
    """The exported network keeps every recurrent synapse with its own exponent and sign mode;
    it predicts as the float model does; written as version 2 and read back identical."""
    ck = checkpoint_from_dict(recurrent_checkpoint(seed=3, scale=0.25))
    x, y = make_features(48, seed=4)
    net, rep = export_loaded(ck, "loihi2", provenance={}, source={}, calibration=x,
                             evaluation=(x, y))
    validate_network(net, "lava")
    for L, C, q in zip(net.layers, ck.layers, rep["layers"]):
        if C.recurrent is None:
            assert L.recurrent is None and "recurrent" not in q["quantization"]
            continue
        R = L.recurrent
        assert np.array_equal(R.pre, C.recurrent.pre) and np.array_equal(R.delay, C.recurrent.delay)
        info = q["quantization"]["recurrent"]
        assert R.weight_exp == info["weight_exp"] and info["synapses"] == R.n_synapses
        # own scale: integers W = w << -exp per spike approximate s * w_float
        scale = q["quantization"]["scale"]
        eff = R.weight * 2.0 ** R.weight_exp
        big = np.abs(C.recurrent.weight) > 0.3 * np.abs(C.recurrent.weight).max()
        rel = np.abs(eff[big] / (scale * C.recurrent.weight[big]) - 1)
        assert rel.max() < 0.05, rel.max()
    acc = rep["accuracy"]
    assert acc["agreement_with_float"] >= 0.9, acc
    path = tmp_path / "net.h5"
    netx_h5.save(net, path)
    back = netx_h5.load(path)
    p = net.input.encode(x[:8])
    assert np.array_equal(emulate(back, p).readout_v, emulate(net, p).readout_v)
    # the recurrent synapses matter for the fixed-point network too
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None)
                                          for L in net.layers])
    assert not np.array_equal(emulate(ff, p).spikes[0], emulate(net, p).spikes[0])


def test_recurrent_delay_over_the_profile_limit_is_refused_naming_the_layer():
    ck = checkpoint_from_dict(recurrent_checkpoint(max_rec_delay=70))
    x, _ = make_features(8)
    with pytest.raises(ProfileViolation) as e:
        export_loaded(ck, "loihi2", provenance={}, source={}, calibration=x, evaluation=False)
    v = [v for v in e.value.violations if v.key == "max_delay"]
    assert {x.layer for x in v} == {"fc1", "fc2"}
    assert all(x.detail.startswith("recurrent synapses") and x.limit == 62 for x in v)
    assert "recurrent_kernel_size=63" in v[0].fix
    # feed-forward delays within the limit, the same layers without recurrence: accepted
    ok, _ = check_structure([dataclasses.replace(L, recurrent=None) for L in ck.layers],
                            load_profile("loihi2"))
    assert not ok


def _rec_layer():
    """4 -> 3 spiking, recurrent 0 -> 1 (delay 5), 2 -> 1 (delay 0), 1 -> 2 (delay 2)."""
    L = layer("fc1", 4, 3, [(0, 0, 0, 10), (1, 1, 1, 12), (3, 2, 0, 8)], message_bits=4)
    L.recurrent = RecurrentSynapses(pre=np.array([0, 2, 1]), post=np.array([1, 1, 2]),
                                    delay=np.array([5, 0, 2]), weight=np.array([8, -16, 24]),
                                    weight_exp=0, num_weight_bits=6)
    return L


def test_cores_count_recurrent_memory_axons_and_fan_out():
    L = _rec_layer()
    ff = dataclasses.replace(L, recurrent=None)
    m, m0 = layer_memory(L, 8), layer_memory(ff, 8)
    # neuron 1 gets 2 recurrent synapses of 6 weight + 3 delay (max 5) + 2 index bits
    assert (m.synapse_bits - m0.synapse_bits).tolist() == [0, 2 * 11, 11]
    assert (m.accumulator_bits / m0.accumulator_bits).tolist() == [3.0] * 3  # 6 slots, not 2
    out = layer("out", 3, 2, [(0, 0, 0, 4), (1, 1, 0, 4)], spiking=False)
    one = map_to_cores([L, out], [8, 8], neurons_per_core=1)
    # neuron 1's core reads input axon 1 and its own layer's neurons 0 and 2
    assert one.fan_in[1] == 3
    # neuron 1 (core 1) feeds readout neuron 1 (core 4) and neuron 2 (core 2): fan-out 2
    assert one.fan_out[1] == 2
    plain = map_to_cores([ff, out], [8, 8], neurons_per_core=1)
    assert plain.fan_in[1] == 1 and plain.fan_out[1] == 1


def test_budget_counts_recurrent_synops_in_the_total():
    L = _rec_layer()
    out = layer("out", 3, 2, [(0, 0, 0, 4), (1, 1, 0, 4)], spiking=False)
    net = network([L, out], n_channels=4, time_steps=4)
    payload = np.zeros((2, 4, 4))
    spikes = np.zeros((2, 6, 3))
    spikes[0, 2, 0] = spikes[0, 3, 2] = spikes[1, 4, 0] = spikes[1, 4, 1] = 1
    act = activity(net, payload, [spikes])
    b = estimate(net, act, load_profile("loihi2"))
    # per sample: neuron 0 spikes 2x (fan-out 1), neuron 2 once (1), neuron 1 once (1) / 2
    assert b.recurrent_synops_per_sample == pytest.approx(2.0)
    assert b.layers[0].recurrent_synops == pytest.approx(2.0)
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None), out])
    b0 = estimate(ff, act, load_profile("loihi2"))
    assert b.synops_per_sample == pytest.approx(b0.synops_per_sample + 2.0)
    assert b.dense_synops_per_sample == b0.dense_synops_per_sample + 3 * 6
    assert b.to_json()["recurrent_synops_per_sample"] == pytest.approx(2.0)
    assert b.memory_bytes["synapses"] > b0.memory_bytes["synapses"]
    assert not b.refused and b.messages_per_sample is not None
    total = sum(b.messages_per_sample.values())
    assert total > sum(b0.messages_per_sample.values())


def test_reports_show_recurrent_synapses(tmp_path):
    """Export report (dict and text) and the HTML report's per-layer budget table carry the
    recurrent synapses, their delays and synops; feed-forward networks keep their columns."""
    from export.report import format_report
    from lava_runtime.budget.text import format_layers
    from lava_runtime.report.page import budget_section
    ck = checkpoint_from_dict(recurrent_checkpoint(seed=3, scale=0.25))
    x, y = make_features(16, seed=4)
    net, rep = export_loaded(ck, "loihi2", provenance={}, source={"path": "ck.pt", "epoch": 1,
                                                                    "val_accuracy": 0.5},
                             calibration=x, evaluation=(x, y))
    assert rep["layers"][0]["recurrent"]["synapses"] == net.layers[0].recurrent.n_synapses
    assert "recurrent" not in rep["layers"][-1]
    text = format_report(rep)
    assert f"fc1      recurrent: {net.layers[0].recurrent.n_synapses} synapses" in text
    b = estimate(net, emulate(net, net.input.encode(x)), load_profile("loihi2"))
    assert b.recurrent_synops_per_sample > 0
    assert "rec synops" in format_layers(b)
    data = {"budgets": [dict(b.to_json(), energy_basis=[])], "split": "test"}
    table = budget_section(data, {"budget": b""})["tables"][0]
    assert table["header"][-3:] == ["recurrent synapses", "recurrent max delay (steps)",
                                    "recurrent synaptic ops (in synaptic ops)"]
    assert table["rows"][0][-3] == net.layers[0].recurrent.n_synapses
    ff = dataclasses.replace(net, layers=[dataclasses.replace(L, recurrent=None)
                                          for L in net.layers])
    b0 = estimate(ff, emulate(ff, ff.input.encode(x)), load_profile("loihi2"))
    t0 = budget_section({"budgets": [dict(b0.to_json(), energy_basis=[])], "split": "test"},
                        {"budget": b""})["tables"][0]
    assert "recurrent synapses" not in t0["header"] and "rec synops" not in format_layers(b0)


def test_onnx_and_qat_refuse_recurrent_checkpoints(tmp_path):
    """Neither models the recurrent current: each refuses in one line instead of dropping it."""
    from helpers.export_checkpoints import save_checkpoint

    from export.errors import ExportError
    from export.qat import CheckpointNet
    from export.to_onnx import export_onnx
    d = recurrent_checkpoint()
    path = save_checkpoint(d, tmp_path / "run")
    with pytest.raises(ExportError, match=r"layer fc1 is recurrent; export.to_onnx writes"):
        export_onnx(path, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ExportError, match=r"layer fc1: export.qat does not fine-tune recurrent"):
        CheckpointNet(checkpoint_from_dict(d))


@pytest.mark.parametrize("method", ["dcls", "structure", "structure-multi", "no-delay"])
def test_float_reference_equals_the_trainer_on_its_checkpoint(method):
    """The trainer's recurrent model (hard delays, float64) and export.float_reference on the
    checkpoint the trainer writes give the same readout, recurrent synapses included."""
    from trainer.checkpoint import build_checkpoint
    from trainer.config import resolve_config
    from trainer.model import DelaySNN
    cfg = resolve_config(overrides=dict(
        hidden=[12, 10], kernel_size=4, recurrent=True, recurrent_kernel_size=6, dropout=0.0,
        tau=3.0, threshold=0.5, seed=1, method=method,
        sparsity=0.0 if method == "dcls" else 0.5))
    torch.manual_seed(0)
    model = DelaySNN(5, 3, cfg).double().eval()
    ck = checkpoint_from_dict(build_checkpoint(model, cfg, ["a", "b", "c"],
                                               {"n_channels": 5, "time_steps": 20}, 1, 0.5))
    assert all(L.recurrent is not None and L.recurrent.pre.size for L in ck.layers[:-1])
    x = np.random.default_rng(0).random((6, 20, 5)) * 2
    with torch.no_grad():
        v, spikes = model(torch.tensor(x), hard=True, return_spikes=True)
    fr = simulate_float(ck, x, keep_spikes=True)
    assert np.allclose(fr.readout_v, v.numpy().transpose(0, 2, 1), rtol=0, atol=1e-12)
    assert all(s.sum() > 20 for s in fr.spikes)
    ff = dataclasses.replace(ck, layers=[dataclasses.replace(L, recurrent=None)
                                         for L in ck.layers])
    assert not np.array_equal(simulate_float(ff, x, keep_spikes=True).spikes[0], fr.spikes[0])
