"""NIR in and out (export.from_nir, export.to_nir): real producers (snnTorch's export, `nir`
itself with delays) checked against their own float simulation, the round trip
ours -> NIR -> ours byte for byte, and every refusal naming its node before any file is written."""
from __future__ import annotations

import filecmp
import re
import json

import numpy as np
import pytest
import torch

from deployed import netx_h5
from export.errors import ExportError
from export.float_reference import simulate_float
from export.from_nir import export_nir, main as from_nir_main, nir_to_checkpoint
from export.to_lava import export_checkpoint
from export.to_nir import main as to_nir_main
from deployed.emulator import aligned, emulate
from helpers.export_checkpoints import make_checkpoint, make_features, save_checkpoint
from helpers.nir_graphs import delay_graph, simulate_nir

nir = pytest.importorskip("nir")


def sorted_checkpoint(**kw) -> dict:
    """make_checkpoint with synapses in the trainer's order (post, pre, delay)."""
    ck = make_checkpoint(**kw)
    for L in ck["layers"]:
        o = torch.argsort((L["post"] * L["n_in"] + L["pre"]) * 1000 + L["delay"])
        for k in ("pre", "post", "delay", "weight"):
            L[k] = L[k][o]
    return ck


# ---- ours -> NIR -> ours -------------------------------------------------------------------

def test_round_trip_gives_the_byte_identical_deployed_file(tmp_path):
    """BatchNorm, several delays per (post, pre) pair, delays up to 8 steps: the deployed file
    from the NIR graph equals the one export.to_lava writes from the checkpoint."""
    ck_path = save_checkpoint(sorted_checkpoint(multi=6, max_delay=8), tmp_path / "run")
    x, y = make_features()
    assert to_nir_main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "net.nir")]) == 2
    assert not (tmp_path / "net.nir").exists()
    assert to_nir_main([str(ck_path.parent), "--out", str(tmp_path / "net.nir")]) == 0
    g = nir.read(str(tmp_path / "net.nir"))
    assert float(g.metadata["dt"]) == 0.01
    delays = sorted({int(round(float(n.delay[0]) / 0.01)) for n in g.nodes.values()
                     if isinstance(n, nir.Delay)})
    assert delays == list(range(1, 9))
    assert isinstance(g.nodes["fc1"], nir.LIF) and isinstance(g.nodes["fc3"], nir.LI)

    direct, _ = export_checkpoint(ck_path, calibration=x, evaluation=False)
    via_nir, report = export_nir(tmp_path / "net.nir", calibration=x, evaluation=(x, y))
    netx_h5.save(direct, tmp_path / "direct.h5")
    netx_h5.save(via_nir, tmp_path / "via_nir.h5")
    assert filecmp.cmp(tmp_path / "direct.h5", tmp_path / "via_nir.h5", shallow=False)
    assert [L["dv"] for L in report["nir"]["layers"]] == [400, 300, 200]

    # a graph changed after export.to_nir no longer claims to be the checkpoint's network
    g.nodes["fc2.w0"].weight[0, 0] += 0.5
    nir.write(str(tmp_path / "edited.nir"), g)
    edited, _ = export_nir(tmp_path / "edited.nir", calibration=x, evaluation=False)
    assert edited.meta["exporter"] == "delaysnn export.from_nir 1"
    assert edited.meta["derived_from"]["checkpoint_sha256"] == direct.meta["checkpoint_sha256"]


# ---- a graph built with `nir` directly, with delays ------------------------------------------

def test_nir_graph_with_delays_matches_reference_and_quantizes(tmp_path):
    """Delay -> Linear, Linear -> Delay and plain branches summed into a LIF with v_leak, an
    Affine into an LI readout: from_nir's float model equals the Euler simulation of NIR's own
    equations (spikes exactly: the decays are exact 12-bit fractions), and the quantized
    network (bit-exact emulator) agrees with it on the predicted class."""
    graph = delay_graph()
    nir.write(str(tmp_path / "g.nir"), graph)
    rng = np.random.default_rng(3)
    x = (rng.random((24, 30, 6)) < 0.3).astype(np.float64) * rng.random((24, 30, 6)) * 2
    ref = simulate_nir(graph, x, dt=1e-3)
    ck, info = nir_to_checkpoint(tmp_path / "g.nir", dt_ms=1.0)
    assert [L["decay_exact"] for L in info["layers"]] == [L["decay"] for L in info["layers"]]
    post_d = np.rint(graph.nodes["d_post"].delay / 1e-3).astype(int)
    assert set(ck.layers[0].delay) == {0, 2} | set(post_d)
    # branches that give a (post, pre) pair the same delay are summed into one synapse
    assert ck.layers[0].pre.size == 3 * 60 - 6 * int(np.isin(post_d, [0, 2]).sum())
    assert ck.layers[0].bias is not None  # v_leak: (dt/tau) v_leak per step
    fr = simulate_float(ck, x, keep_spikes=True)
    assert ref["lif"].sum() > 100
    assert np.array_equal(fr.spikes[0], ref["lif"])
    np.testing.assert_allclose(fr.readout_v, ref["readout"], rtol=1e-9, atol=1e-9)

    net, report = export_nir(tmp_path / "g.nir", dt_ms=1.0, calibration=x, evaluation=x)
    act = emulate(net, net.input.encode(x))
    _, spikes = aligned(act, net)
    # hidden spikes differ only where input encoding / weight rounding moves v across threshold
    assert np.mean(spikes[0] != ref["lif"]) < 0.02
    # the class is the float model's wherever its top-two score margin exceeds 10% of the steps
    # (an untrained random network: a few samples are near ties)
    scores = fr.scores()
    top2 = np.sort(scores, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 0.1 * x.shape[1]
    assert clear.sum() >= 8
    assert np.array_equal(act.predictions(net)[clear], scores.argmax(1)[clear])
    assert report["accuracy"]["agreement_with_float"] >= 0.8


def test_hidden_cubalif_maps_to_lava_current_decay(tmp_path):
    """A hidden CubaLIF (w_in, R, v_leak) becomes Lava's u with du from tau_syn: the float model
    equals NIR's equations exactly (decays 1/2 and 3/4 are exact), and the emulator runs it."""
    rng = np.random.default_rng(8)
    dt, n = 1e-3, 12
    cuba = nir.CubaLIF(tau_syn=np.full(n, 2 * dt), tau_mem=np.full(n, 4 * dt), r=np.full(n, 2.0),
                       v_leak=np.full(n, 0.1), v_threshold=np.ones(n), v_reset=np.zeros(n),
                       w_in=np.full(n, 1.5))
    g = _chain(("w1", nir.Linear(weight=rng.normal(0.3, 0.5, (n, 5)))), ("cuba", cuba),
               ("w2", nir.Linear(weight=rng.normal(0, 1, (3, n)))),
               ("out", nir.LI(tau=np.full(3, 8 * dt), r=np.ones(3), v_leak=np.zeros(3))),
               n_in=5, n_out=3)
    x = rng.random((16, 25, 5)) * (rng.random((16, 25, 5)) < 0.4)
    ck, info = nir_to_checkpoint(g, dt_ms=1.0)
    assert ck.layers[0].du == 2047 and ck.layers[0].current_decay == 0.5
    assert ck.layers[0].dv == 1024
    fr = simulate_float(ck, x, keep_spikes=True)
    ref = simulate_nir(g, x, dt)
    assert ref["cuba"].sum() > 50 and np.array_equal(fr.spikes[0], ref["cuba"])
    np.testing.assert_allclose(fr.readout_v, ref["out"], rtol=1e-9, atol=1e-9)
    nir.write(str(tmp_path / "g.nir"), g)
    net, report = export_nir(tmp_path / "g.nir", dt_ms=1.0, calibration=x, evaluation=x)
    assert net.layers[0].neurons.du == 2047
    _, spikes = aligned(emulate(net, net.input.encode(x)), net)
    assert np.mean(spikes[0] != ref["cuba"]) < 0.02


# ---- snnTorch: export_to_nir of a trained network --------------------------------------------

def train_snntorch(x, y, n_hidden=12, steps=15, seed=0):
    """Linear -> Leaky (reset to zero, as NIR's LIF) -> Linear -> Synaptic readout (no reset,
    never reaches its threshold): a few Adam steps on the mean readout voltage."""
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    torch.manual_seed(seed)
    C, K = x.shape[2], int(y.max()) + 1
    net = torch.nn.Sequential(
        torch.nn.Linear(C, n_hidden),
        snn.Leaky(beta=torch.full((n_hidden,), 0.875), threshold=torch.ones(n_hidden),
                  init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(n_hidden, K, bias=False),
        snn.Synaptic(alpha=torch.full((K,), 0.5), beta=torch.full((K,), 0.75),
                     threshold=torch.full((K,), 1e9), init_hidden=True, output=True,
                     reset_mechanism="none"))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(steps):
        _, mem = run_snntorch(net, xt)
        loss = torch.nn.functional.cross_entropy(mem.mean(1), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def run_snntorch(net, xt):
    """(hidden spikes (N, T, H), readout mem (N, T, K)) from snnTorch's own simulation."""
    from snntorch import utils
    utils.reset(net)
    spk, mem = [], []
    for t in range(xt.shape[1]):
        s1 = net[1](net[0](xt[:, t]))
        _, _, m = net[3](net[2](s1))
        spk.append(s1)
        mem.append(m)
    return torch.stack(spk, 1), torch.stack(mem, 1)


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated")
def test_snntorch_trained_network_from_nir_to_lava_and_budget(tmp_path):
    from hw_profiles import load_profile
    from lava_runtime.budget.estimate import estimate
    from lava_runtime.lava_graph.graph import run_network
    from snntorch.export_nir import export_to_nir

    x, y = make_features(n=24, time_steps=12, channels=8, n_classes=3)
    net = train_snntorch(x, y)
    graph = export_to_nir(net, torch.zeros(x.shape[2]))
    nir.write(str(tmp_path / "snn.nir"), graph)
    np.savez(tmp_path / "feat.npz", x=x, y=y)
    out = tmp_path / "net.h5"
    args = [str(tmp_path / "snn.nir"), "--dt-ms", "0.1", "--out", str(out),
            "--features", str(tmp_path / "feat.npz"), "--json", str(tmp_path / "r.json")]
    assert from_nir_main(args) == 2 and not out.exists()  # a final Synaptic needs the flag
    assert from_nir_main(args + ["--lif-readout"]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert [L["type"] for L in rep["nir"]["layers"]] == ["LIF", "CubaLIF"]
    assert rep["nir"]["layers"][1]["du"] == 2047  # alpha 0.5 = (4095 - du) / 4096

    # the imported float model is snnTorch's: same hidden spikes, same readout voltage
    ck, _ = nir_to_checkpoint(tmp_path / "snn.nir", dt_ms=0.1, lif_readout=True)
    fr = simulate_float(ck, x, keep_spikes=True)
    with torch.no_grad():
        spk, mem = run_snntorch(net, torch.tensor(x, dtype=torch.float32))
    assert spk.sum() > 20
    assert np.array_equal(fr.spikes[0], spk.numpy().astype(np.uint8))
    np.testing.assert_allclose(fr.readout_v, mem.numpy(), rtol=1e-4, atol=1e-4)
    assert rep["accuracy"]["agreement_with_float"] >= 0.9

    # Lava (fixed_pt, fast models: the readout has a current) equals the emulator; budget
    dep = netx_h5.load(out)
    p = dep.input.encode(x[:3])
    lava = run_network(dep, p, backend="lava", timeout_s=180, fast_models=True)
    emu = emulate(dep, p)
    assert np.array_equal(lava.readout_v, emu.readout_v)
    assert all(np.array_equal(a, b) for a, b in zip(lava.spikes, emu.spikes))
    b = estimate(dep, lava, load_profile("loihi2"))
    assert b.synops_per_sample > 0 and b.spikes_per_sample > 0


# ---- refusals ------------------------------------------------------------------------------

def _lif(n, **kw):
    p = dict(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
             v_reset=np.zeros(n))
    p.update(kw)
    return nir.LIF(**p)


def _li(n):
    return nir.LI(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n))


def _chain(*mid, n_in=4, n_out=2, metadata=None):
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, prev = [], "input"
    for name, node in mid:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array([n_out])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata or {}, type_check=False)


def _w(o, i):
    return nir.Linear(weight=np.ones((o, i)))


def refusal_cases():
    rec = _chain(("w1", _w(3, 4)), ("hid", _lif(3)), ("w2", _w(2, 3)), ("out", _li(2)))
    rec.nodes["wfb"] = _w(3, 2)  # feedback from the readout (self-loops: test_nir_recurrent.py)
    rec.edges += [("out", "wfb"), ("wfb", "hid")]
    sub = _chain(("w1", _w(3, 4)), ("rleaky", nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}), "lif": _lif(3),
               "output": nir.Output(output_type={"output": np.array([3])}),
               "spare": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "lif"), ("lif", "output"), ("lif", "spare")])), ("w2", _w(2, 3)),
        ("out", _li(2)))
    conv = _chain(("conv", nir.Conv1d(input_shape=4, weight=np.ones((3, 1, 2)), stride=1,
                                      padding=0, dilation=1, groups=1, bias=np.zeros(3))),
                  ("hid", _lif(3)), ("w2", _w(2, 3)), ("out", _li(2)))
    return {
        "feedback": (rec, "hid", "lies on the cycle hid -> w2 -> out -> wfb -> hid"),
        "subgraph": (sub, "rleaky", "only a subgraph with one Input and one Output"),
        "conv": (conv, "conv", "Conv1d nodes are not supported"),
        "shape": (_chain(("w1", _w(3, 5)), ("hid", _lif(3)), ("w2", _w(2, 3)), ("out", _li(2))),
                  "w1", "expected (3, 4)"),
        "hidden LI": (_chain(("w1", _w(3, 4)), ("hid", _li(3)), ("w2", _w(2, 3)),
                             ("out", _li(2))), "hid", "hidden populations must be"),
        "v_reset": (_chain(("w1", _w(3, 4)), ("hid", _lif(3, v_reset=np.full(3, -0.5))),
                           ("w2", _w(2, 3)), ("out", _li(2))), "hid", "v_reset must be 0"),
        "delay": (_chain(("d", nir.Delay(delay=np.full(4, 0.0015))), ("w1", _w(3, 4)),
                         ("hid", _lif(3)), ("w2", _w(2, 3)), ("out", _li(2))), "d",
                  "1.5000 steps"),
        "tau": (_chain(("w1", _w(3, 4)), ("hid", _lif(3, tau=np.array([0.01, 0.01, 0.02]))),
                       ("w2", _w(2, 3)), ("out", _li(2))), "hid", "tau differs"),
        "spiking readout": (_chain(("w1", _w(3, 4)), ("hid", _lif(3)), ("w2", _w(2, 3)),
                                   ("out", _lif(2))), "out", "--lif-readout"),
        "cuba bias": (_chain(("w1", _w(3, 4)), ("hid", _lif(3)),
                             ("a2", nir.Affine(weight=np.ones((2, 3)), bias=np.ones(2))),
                             ("out", nir.CubaLI(tau_syn=np.full(2, 0.02), tau_mem=np.full(2, 0.01),
                                                r=np.ones(2), v_leak=np.zeros(2)))),
                      "a2", "synaptic current"),
        "no neuron": (_chain(("w1", _w(2, 4)), n_out=2), "w1", "without a neuron"),
    }


@pytest.mark.parametrize("case", list(refusal_cases()))
def test_refusals_name_the_node_and_write_nothing(tmp_path, case):
    graph, node, why = refusal_cases()[case]
    nir.write(str(tmp_path / "g.nir"), graph)
    x = np.ones((2, 5, 4))
    np.savez(tmp_path / "f.npz", x=x)
    with pytest.raises(ExportError, match=f"NIR node {node!r}.*{re.escape(why)}"):
        nir_to_checkpoint(tmp_path / "g.nir", dt_ms=1.0)
    out = tmp_path / "net.h5"
    assert from_nir_main([str(tmp_path / "g.nir"), "--dt-ms", "1", "--out", str(out),
                          "--features", str(tmp_path / "f.npz")]) == 2
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["f.npz", "g.nir"]


def test_time_step_comes_from_the_graph_or_the_command(tmp_path):
    g = _chain(("w1", _w(3, 4)), ("hid", _lif(3)), ("w2", _w(2, 3)), ("out", _li(2)))
    with pytest.raises(ExportError, match="no time step.*--dt-ms"):
        nir_to_checkpoint(g)
    with pytest.raises(ExportError, match="dt/tau = 2 is outside"):
        nir_to_checkpoint(g, dt_ms=20)
    g.metadata = {"dt": 0.001}
    assert nir_to_checkpoint(g)[1]["dt_ms"] == 1.0
    with pytest.raises(ExportError, match="differs from the graph's own dt 1 ms"):
        nir_to_checkpoint(g, dt_ms=10)
    # forward Euler: decay = 1 - dt/tau rounded to 12 bits, the input gain R dt/tau in w
    ck, info = nir_to_checkpoint(g, dt_ms=1.0)
    assert ck.layers[0].dv == round(4096 * 0.1) and info["layers"][0]["decay_exact"] == 0.9
    np.testing.assert_allclose(ck.layers[0].weight, 0.1)


def test_command_calibrates_on_a_dataset_and_reports(tmp_path):
    """`python -m export.from_nir G --dataset synthetic`: calibration on the training split, the
    accuracy report on the validation split, class names from the dataset."""
    rng = np.random.default_rng(5)
    g = _chain(("w1", nir.Linear(weight=rng.normal(0.05, 0.3, (16, 40)))), ("hid", _lif(16)),
               ("w2", nir.Linear(weight=rng.normal(0, 1, (10, 16)))), ("out", _li(10)),
               n_in=40, n_out=10)
    nir.write(str(tmp_path / "g.nir"), g)
    out = tmp_path / "net.h5"
    assert from_nir_main([str(tmp_path / "g.nir"), "--dt-ms", "1", "--dataset", "synthetic",
                          "--time-steps", "30", "--max-calibration", "40", "--max-eval", "20",
                          "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["accuracy"]["samples"] == 20 and "synthetic val" in rep["accuracy"]["data"]
    net = netx_h5.load(out)
    assert net.meta["exporter"] == "delaysnn export.from_nir 1"
    assert net.meta["data_recipe"]["dataset"] == "synthetic" and net.input.time_steps == 30
    assert len(net.class_names) == 10 and net.layers[0].neurons.dv == 410  # 1 - 1ms/10ms
