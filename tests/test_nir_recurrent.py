"""NIR recurrence (issue 24 items 5, 7): a population's self-loop imported by export.from_nir as
the layer's recurrent synapses and written back by export.to_nir; graphs written by the
producers' own exporters (snnTorch RLeaky, Norse, Rockpool) checked against the producers' own
simulations; the timing of a loop's Delay; every other cycle refused naming a node on it."""
from __future__ import annotations

import filecmp
import json
import re

import numpy as np
import pytest
import torch

from deployed import netx_h5
from deployed.emulator import aligned, emulate
from export.errors import ExportError
from export.float_reference import simulate_float
from export.from_nir import export_nir, layers_digest, nir_to_checkpoint
from export.from_nir import main as from_nir_main
from export.to_lava import export_checkpoint
from export.to_nir import main as to_nir_main
from helpers.export_checkpoints import make_checkpoint, make_features, save_checkpoint
from helpers.nir_graphs import simulate_checkpoint, simulate_nir
from trainer.checkpoint import load_checkpoint

nir = pytest.importorskip("nir")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _lif(n, tau=8e-3, thr=1.0):
    return nir.LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, thr), v_reset=np.zeros(n))


def _li(n, tau=4e-3):
    return nir.LI(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n))


def loop_graph(loop: list, seed=1, C=5, H=8, K=3, thr=0.2):
    """Input -> w1 -> lif (+ self-loop lif -> *loop -> lif) -> w2 -> li -> Output; `loop` is
    [(name, node), ...] from the population back to it; dt = 1 ms, exact 12-bit decays."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([C])}),
             "w1": nir.Linear(weight=rng.normal(0.5, 0.8, (H, C))), "lif": _lif(H, thr=thr),
             "w2": nir.Linear(weight=rng.normal(0, 1, (K, H))), "li": _li(K),
             "output": nir.Output(output_type={"output": np.array([K])})}
    edges = [("input", "w1"), ("w1", "lif"), ("lif", "w2"), ("w2", "li"), ("li", "output")]
    prev = "lif"
    for name, node in loop:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    edges.append((prev, "lif"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def spiky_input(n=6, T=25, C=5, seed=2):
    rng = np.random.default_rng(seed)
    return (rng.random((n, T, C)) < 0.5) * rng.random((n, T, C)) * 3


# ---- timing: what a self-loop and its Delay mean -------------------------------------------

def test_self_loop_timing_and_delays_follow_nir_reference(tmp_path):
    """No Delay: the next step (d = 0); Delay(k dt) on the loop: k steps later (d = k - 1),
    per synapse (a per-neuron Delay after the weight), summed with a plain branch: the imported
    float model equals the step-by-step reference of NIR's equations spike for spike, and the
    recurrent synapses change the spikes (the test would see them ignored or mistimed)."""
    rng = np.random.default_rng(4)
    W = rng.normal(0, 0.5, (8, 8))
    x = spiky_input()
    plain = loop_graph([("wrec", nir.Linear(weight=W))])
    one = loop_graph([("d", nir.Delay(delay=np.full(8, 1e-3))), ("wrec", nir.Linear(weight=W))])
    post_d = rng.integers(1, 5, 8) * 1e-3
    mixed = loop_graph([("wrec", nir.Linear(weight=W)), ("dpost", nir.Delay(delay=post_d))])
    mixed.nodes["w0"] = nir.Linear(weight=rng.normal(0, 0.3, (8, 8)))
    mixed.edges += [("lif", "w0"), ("w0", "lif")]
    runs = {}
    for name, g in {"plain": plain, "one": one, "mixed": mixed}.items():
        nir.write(str(tmp_path / f"{name}.nir"), g)
        ck, info = nir_to_checkpoint(tmp_path / f"{name}.nir", dt_ms=1.0)
        R = ck.layers[0].recurrent
        ref = simulate_nir(g, x, 1e-3)
        spikes, v = simulate_checkpoint(ck, x)
        assert ref["lif"].sum() > 50
        assert np.array_equal(spikes[0], ref["lif"]), name
        np.testing.assert_allclose(v, ref["li"], rtol=1e-9, atol=1e-9)
        runs[name] = (R, spikes[0], info)
    assert set(runs["plain"][0].delay) == {0} and runs["plain"][0].pre.size == 64
    # Delay(1 dt) is the loop's whole latency: the same network as the plain loop
    assert np.array_equal(runs["one"][0].delay, runs["plain"][0].delay)
    assert np.array_equal(runs["one"][1], runs["plain"][1])
    R = runs["mixed"][0]
    assert set(R.delay) == {0} | set(np.rint(post_d / 1e-3).astype(int) - 1)
    assert sorted(runs["mixed"][2]["layers"][0]["recurrent"]["branches"]) == [["w0"],
                                                                             ["wrec", "dpost"]]
    # the recurrence is there and timed: without it, or one step later, the spikes differ
    no_rec, _ = nir_to_checkpoint(plain, dt_ms=1.0)
    no_rec.layers[0].recurrent = None
    assert not np.array_equal(simulate_checkpoint(no_rec, x)[0][0], runs["plain"][1])
    late, _ = nir_to_checkpoint(plain, dt_ms=1.0)
    late.layers[0].recurrent.delay += 1
    assert not np.array_equal(simulate_checkpoint(late, x)[0][0], runs["plain"][1])


@pytest.mark.parametrize("delay_steps, synapse", [(np.zeros(8), "0 to neuron"),
                                                  (np.array([2, 1, 0, 3, 1, 1, 2, 1]), "2 to")])
def test_self_loop_below_one_step_is_refused_naming_the_delay(tmp_path, delay_steps, synapse):
    """Delay(0), or a per-channel Delay with a zero, makes a loop without latency: refused with
    the Delay node, the synapse and what to do; the command writes nothing."""
    g = loop_graph([("dloop", nir.Delay(delay=delay_steps * 1e-3)),
                    ("wrec", nir.Linear(weight=np.ones((8, 8))))])
    nir.write(str(tmp_path / "g.nir"), g)
    with pytest.raises(ExportError, match=r"NIR node 'dloop': the self-loop of 'lif' through it "
                                          rf"has a total delay of 0 s \(0 steps.*from neuron "
                                          rf"{synapse}.*below one step.*at least dt"):
        nir_to_checkpoint(tmp_path / "g.nir", dt_ms=1.0)
    np.savez(tmp_path / "f.npz", x=spiky_input())
    out = tmp_path / "net.h5"
    assert from_nir_main([str(tmp_path / "g.nir"), "--dt-ms", "1", "--out", str(out),
                          "--features", str(tmp_path / "f.npz")]) == 2
    assert not out.exists()


# ---- other cycles --------------------------------------------------------------------------

def feedback_graph():
    """z_in -> z_w1 -> z_hid1 -> z_w2 -> z_hid2 -> a_w3 -> a_read -> a_out, with feedback
    z_hid2 -> z_fb -> z_hid1. The names put the downstream nodes (a_*) first in sorted order,
    which is what the importer named before (a node after the cycle, not on it)."""
    rng = np.random.default_rng(0)
    nodes = {"z_in": nir.Input(input_type={"input": np.array([4])}),
             "z_w1": nir.Linear(weight=rng.normal(size=(3, 4))), "z_hid1": _lif(3),
             "z_w2": nir.Linear(weight=rng.normal(size=(3, 3))), "z_hid2": _lif(3),
             "z_fb": nir.Linear(weight=rng.normal(size=(3, 3))),
             "a_w3": nir.Linear(weight=rng.normal(size=(2, 3))), "a_read": _li(2),
             "a_out": nir.Output(output_type={"output": np.array([2])})}
    edges = [("z_in", "z_w1"), ("z_w1", "z_hid1"), ("z_hid1", "z_w2"), ("z_w2", "z_hid2"),
             ("z_hid2", "z_fb"), ("z_fb", "z_hid1"), ("z_hid2", "a_w3"), ("a_w3", "a_read"),
             ("a_read", "a_out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def other_cycles():
    fb = feedback_graph()
    readout = loop_graph([])
    readout.edges = [e for e in readout.edges if e != ("lif", "lif")]
    readout.nodes["wr"] = nir.Linear(weight=np.ones((3, 3)))
    readout.edges += [("li", "wr"), ("wr", "li")]
    bare = loop_graph([])  # lif -> lif without a weight node
    through_read = loop_graph([])
    through_read.edges = [e for e in through_read.edges if e != ("lif", "lif")]
    through_read.nodes["wb"] = nir.Linear(weight=np.ones((8, 3)))
    through_read.edges += [("li", "wb"), ("wb", "lif")]
    return {
        "feedback": (fb, "z_hid1", {"z_hid1", "z_w2", "z_hid2", "z_fb"}, "lies on the cycle "
                     "z_hid1 -> z_w2 -> z_hid2 -> z_fb -> z_hid1, which is not a population's "
                     "self-loop"),
        "readout loop": (readout, "li", {"li", "wr"}, "the readout has a self-loop through "
                         "['wr']; only hidden (spiking) populations may be recurrent"),
        "no weight": (bare, "lif", {"lif"}, "lies on the cycle lif -> lif"),
        "through readout": (through_read, "lif", {"lif", "w2", "li", "wb"},
                            "lies on the cycle lif -> w2 -> li -> wb -> lif"),
    }


@pytest.mark.parametrize("case", list(other_cycles()))
def test_other_cycles_are_refused_naming_a_node_on_the_cycle(tmp_path, case):
    graph, node, cycle, why = other_cycles()[case]
    assert node in cycle
    nir.write(str(tmp_path / "g.nir"), graph)
    with pytest.raises(ExportError, match=f"^NIR node {node!r}: {re.escape(why)}"):
        nir_to_checkpoint(tmp_path / "g.nir", dt_ms=1.0)


# ---- ours -> NIR -> ours -------------------------------------------------------------------

def recurrent_checkpoint(seed=3) -> dict:
    """make_checkpoint (BatchNorm, feed-forward delays up to 8) with the checkpoint file's
    "recurrent" entry on both hidden layers: delays 0..5, some (post, pre) pairs with two
    delays, float32 weights, in the trainer's order (post, pre, delay)."""
    d = make_checkpoint(multi=4, max_delay=8, seed=seed)
    rng = np.random.default_rng(seed)
    for L in d["layers"]:
        o = torch.argsort((L["post"] * L["n_in"] + L["pre"]) * 1000 + L["delay"])
        for k in ("pre", "post", "delay", "weight"):
            L[k] = L[k][o]
    for L in d["layers"][:-1]:
        n = L["n_out"]
        post, pre = np.nonzero(rng.random((n, n)) < 0.3)
        delay = rng.integers(0, 6, post.size)
        extra = rng.choice(post.size, 5, replace=False)  # a second delay for 5 pairs
        post, pre = np.r_[post, post[extra]], np.r_[pre, pre[extra]]
        delay = np.r_[delay, (delay[extra] + 3) % 6]
        o = np.lexsort((delay, pre, post))
        L["recurrent"] = {"pre": torch.tensor(pre[o]), "post": torch.tensor(post[o]),
                          "delay": torch.tensor(delay[o]),
                          "weight": torch.tensor(rng.normal(0, 0.4, post.size)[o],
                                                 dtype=torch.float32)}
    return d


def test_round_trip_of_a_recurrent_checkpoint_is_byte_identical(tmp_path):
    """ours -> NIR -> ours on files (python -m export.to_nir, then export.from_nir): the same
    float network (recurrent synapses array for array, the digest the graph stores), the
    deployed file equals the one export.to_lava writes from the checkpoint byte for byte, and
    the graph holds d = 0 as a plain loop, d >= 1 as Delay((d + 1) dt)."""
    ck_path = save_checkpoint(recurrent_checkpoint(), tmp_path / "run")
    ck = load_checkpoint(ck_path)
    assert all(L.recurrent is not None for L in ck.layers[:-1])
    assert to_nir_main([str(ck_path.parent), "--out", str(tmp_path / "net.nir")]) == 0
    g = nir.read(str(tmp_path / "net.nir"))
    assert ("fc1.rec.w0", "fc1") in g.edges and ("fc1", "fc1.rec.w0") in g.edges
    assert float(g.nodes["fc1.rec.delay3"].delay[0]) == pytest.approx(0.04)  # d 3: 4 steps
    back, _ = nir_to_checkpoint(tmp_path / "net.nir")
    for a, b in zip(ck.layers[:-1], back.layers[:-1]):
        for k in ("pre", "post", "delay", "weight"):
            assert np.array_equal(getattr(a.recurrent, k), getattr(b.recurrent, k)), k
    assert back.layers[-1].recurrent is None
    stored = json.loads(g.metadata["delaysnn"])["layers_sha256"]
    assert layers_digest(back.layers) == stored
    x, _ = make_features()
    assert np.array_equal(simulate_checkpoint(back, x[:4])[0][1],
                          simulate_checkpoint(ck, x[:4])[0][1])

    direct, _ = export_checkpoint(ck_path, calibration=x, evaluation=False)
    via_nir, _ = export_nir(tmp_path / "net.nir", calibration=x, evaluation=False)
    assert via_nir.layers[0].recurrent is not None
    assert via_nir.layers[0].recurrent.n_synapses == ck.layers[0].recurrent.pre.size
    netx_h5.save(direct, tmp_path / "direct.h5")
    netx_h5.save(via_nir, tmp_path / "via_nir.h5")
    assert filecmp.cmp(tmp_path / "direct.h5", tmp_path / "via_nir.h5", shallow=False)
    # a changed recurrent weight is a different network: the provenance is no longer claimed
    back.layers[0].recurrent.weight[0] += 0.25
    assert layers_digest(back.layers) != stored


# ---- snnTorch: RLeaky written by export_to_nir -----------------------------------------------

def rleaky_net(C=6, H=10, K=3, all_to_all=True, seed=0):
    """Linear -> RLeaky -> Linear -> Synaptic readout (never spikes). RLeaky with
    reset_mechanism="zero" and reset_delay=False is the LIF snnTorch's exporter writes (v = 0
    right after the spike); beta, threshold (and V) per neuron, as its exporter needs."""
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    torch.manual_seed(seed)
    kw = dict(linear_features=H) if all_to_all else dict(all_to_all=False,
                                                         V=torch.linspace(-0.8, 0.6, H))
    net = torch.nn.Sequential(
        torch.nn.Linear(C, H),
        snn.RLeaky(beta=torch.full((H,), 0.875), threshold=torch.ones(H), init_hidden=True,
                   reset_mechanism="zero", reset_delay=False, **kw),
        torch.nn.Linear(H, K, bias=False),
        snn.Synaptic(alpha=torch.full((K,), 0.5), beta=torch.full((K,), 0.75),
                     threshold=torch.full((K,), 1e9), init_hidden=True, output=True,
                     reset_mechanism="none"))
    with torch.no_grad():
        net[0].weight.mul_(3)
        if all_to_all:
            net[1].recurrent.weight.normal_(0, 0.6)
    return net


def run_rleaky(net, x):
    """snnTorch's own simulation: (hidden spikes (N, T, H), readout mem (N, T, K))."""
    from snntorch import utils
    utils.reset(net)
    xt = torch.tensor(x, dtype=torch.float32)
    spk, mem = [], []
    with torch.no_grad():
        for t in range(xt.shape[1]):
            s1 = net[1](net[0](xt[:, t]))
            _, _, m = net[3](net[2](s1))
            spk.append(s1)
            mem.append(m)
    return torch.stack(spk, 1).numpy(), torch.stack(mem, 1).numpy()


@pytest.mark.parametrize("all_to_all", [True, False])
def test_snntorch_rleaky_imports_as_snntorch_simulates_it(tmp_path, all_to_all):
    """export_to_nir writes RLeaky as lif <-> w_rec (an Affine with bias, or a diagonal Linear
    for all_to_all=False): imported, the float model equals snnTorch's simulation spike for
    spike (the recurrent spike at t enters at t + 1: d = 0), readout voltage to float32."""
    from snntorch.export_nir import export_to_nir

    net = rleaky_net(all_to_all=all_to_all)
    nir.write(str(tmp_path / "r.nir"), export_to_nir(net, torch.zeros(6)))
    x = spiky_input(n=8, T=30, C=6, seed=0)
    ck, info = nir_to_checkpoint(tmp_path / "r.nir", dt_ms=0.1, lif_readout=True)
    R = ck.layers[0].recurrent
    assert info["layers"][0]["recurrent"]["branches"] == [["1.w_rec"]]
    assert set(R.delay) == {0} and R.pre.size == (100 if all_to_all else 10)
    spk, mem = run_rleaky(net, x)
    spikes, v = simulate_checkpoint(ck, x)
    assert spk.sum() > 100
    assert np.array_equal(spikes[0], spk.astype(np.uint8))
    np.testing.assert_allclose(v, mem, rtol=1e-4, atol=1e-4)
    fr = simulate_float(ck, x, keep_spikes=True)  # the float model export calibrates with
    assert np.array_equal(fr.spikes[0], spikes[0])
    np.testing.assert_allclose(fr.readout_v, v, rtol=1e-9, atol=1e-9)
    assert np.array_equal(simulate_nir(nir.read(str(tmp_path / "r.nir")), x, 1e-4)["1.lif"], spk)


def test_snntorch_rsynaptic_imports_as_a_recurrent_cubalif():
    """RSynaptic (export_to_nir: CubaLIF <-> w_rec) is imported with Lava's current decay and
    its recurrent synapses; it equals snnTorch's simulation until snnTorch's late reset acts:
    snnTorch 1.0.0 zeroes an RSynaptic's voltage the step after a spike (input included), and
    its reset_delay=False fails with init_hidden (README). So every step up to each sample's
    first spike agrees, and so does the next one for the neurons that did not spike, which is
    where the first recurrent input arrives (strong enough there to make some of them spike)."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(2)
    C, H = 6, 10
    net = torch.nn.Sequential(
        torch.nn.Linear(C, H, bias=False),
        snn.RSynaptic(alpha=torch.full((H,), 0.5), beta=torch.full((H,), 0.75),
                      threshold=torch.ones(H), linear_features=H, init_hidden=True,
                      reset_mechanism="zero"),
        torch.nn.Linear(H, 2, bias=False),
        snn.Synaptic(alpha=torch.full((2,), 0.5), beta=torch.full((2,), 0.75),
                     threshold=torch.full((2,), 1e9), init_hidden=True, output=True,
                     reset_mechanism="none"))
    with torch.no_grad():
        net[0].weight.uniform_(0, 0.12)  # weak input: the first spikes come from a few
        net[1].recurrent.weight.fill_(1.5)  # excitatory: a spike pushes the others over
        net[1].recurrent.bias.zero_()       # a bias into a current has no Loihi mapping
    ck, info = nir_to_checkpoint(export_to_nir(net, torch.zeros(C)), dt_ms=0.1,
                                 lif_readout=True)
    assert info["layers"][0]["type"] == "CubaLIF" and ck.layers[0].du == 2047
    assert ck.layers[0].recurrent.pre.size == H * H
    x = spiky_input(n=12, T=20, C=C, seed=7)
    spk, _ = run_rleaky(net, x)
    ours, _ = simulate_checkpoint(ck, x)
    no_rec, _ = nir_to_checkpoint(export_to_nir(net, torch.zeros(C)), dt_ms=0.1,
                                  lif_readout=True)
    no_rec.layers[0].recurrent = None
    alone, _ = simulate_checkpoint(no_rec, x)
    by_recurrence = 0
    for n in range(x.shape[0]):
        t0 = int(np.argmax(spk[n].any(1)))
        assert spk[n, t0].any() and t0 + 1 < x.shape[1]
        assert np.array_equal(ours[0][n, :t0 + 1], spk[n, :t0 + 1])
        quiet = spk[n, t0] == 0
        assert np.array_equal(ours[0][n, t0 + 1, quiet], spk[n, t0 + 1, quiet])
        by_recurrence += int(np.sum(ours[0][n, t0 + 1, quiet] != alone[0][n, t0 + 1, quiet]))
    assert by_recurrence > 5


def test_snntorch_rleaky_from_nir_to_the_emulator(tmp_path):
    """The imported recurrent network through export (quantize, profile check, file) into the
    bit-exact emulator: the recurrent layer is deployed and its spikes stay close to
    snnTorch's (the fixed point rounds weights and input)."""
    from snntorch.export_nir import export_to_nir

    net = rleaky_net()
    nir.write(str(tmp_path / "r.nir"), export_to_nir(net, torch.zeros(6)))
    x = spiky_input(n=16, T=30, C=6, seed=5)
    np.savez(tmp_path / "f.npz", x=x)
    out = tmp_path / "net.h5"
    assert from_nir_main([str(tmp_path / "r.nir"), "--dt-ms", "0.1", "--lif-readout",
                          "--features", str(tmp_path / "f.npz"), "--no-eval",
                          "--out", str(out)]) == 0
    dep = netx_h5.load(out)
    assert dep.layers[0].recurrent is not None and dep.layers[0].recurrent.n_synapses == 100
    _, spikes = aligned(emulate(dep, dep.input.encode(x)), dep)
    spk, _ = run_rleaky(net, x)
    assert spk.sum() > 200
    assert np.mean(spikes[0] != spk) < 0.05


def test_snntorch_subgraph_form_is_inlined():
    """snnTorch's RLeaky node as its extractor returns it (a subgraph input -> lif <-> w_rec ->
    output, before nirtorch flattens it) is read like the flattened graph."""
    pytest.importorskip("snntorch")
    from snntorch.export_nir import _extract_snntorch_module, export_to_nir

    net = rleaky_net()
    flat = export_to_nir(net, torch.zeros(6))
    nodes = {k: v for k, v in flat.nodes.items() if not k.startswith("1.")}
    nodes["1"] = _extract_snntorch_module(net[1])
    edges = [(a, b) for a, b in flat.edges if not (a.startswith("1.") and b.startswith("1."))]
    edges = [(a.split(".")[0], b.split(".")[0]) for a, b in edges]
    nested = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    a, _ = nir_to_checkpoint(nested, dt_ms=0.1, lif_readout=True)
    b, _ = nir_to_checkpoint(flat, dt_ms=0.1, lif_readout=True)
    assert layers_digest(a.layers) == layers_digest(b.layers)
    assert a.layers[0].name == "1.lif" and a.layers[0].recurrent.pre.size == 100


# ---- Norse ---------------------------------------------------------------------------------

def test_norse_export_matches_norse(tmp_path):
    """Norse's to_nir (LIFBoxCell -> LIF, LIBoxCell -> LI, Linear -> Affine): imported, equal
    to Norse's simulation. Norse 1.1.0 writes tau = dt / tau_mem_inv (norse issue 411), so the
    graph is exported with dt=1.0 (tau = 1 / tau_mem_inv, seconds) and imported with Norse's
    step; its default dt=0.001 gives taus 1000x too small, which the import refuses."""
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(0)
    C, H, K = 6, 10, 3
    m = nt.SequentialState(
        torch.nn.Linear(C, H),
        nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.full((H,), 125.0),
                                          v_th=torch.full((H,), 0.3), v_leak=torch.zeros(H),
                                          v_reset=torch.zeros(H))),
        torch.nn.Linear(H, K),
        nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=torch.full((K,), 250.0),
                                        v_leak=torch.zeros(K))))
    with torch.no_grad():
        m[0].weight.mul_(3)
    nir.write(str(tmp_path / "n.nir"), to_nir(m, torch.zeros(1, C), dt=1.0))
    x = spiky_input(n=8, T=30, C=C, seed=0)
    xt, st1, st3, spk, vs = torch.tensor(x, dtype=torch.float32), None, None, [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            z, st1 = m[1](m[0](xt[:, t]), st1)
            v, st3 = m[3](m[2](z), st3)
            spk.append(z)
            vs.append(v)
    spk, vs = torch.stack(spk, 1).numpy(), torch.stack(vs, 1).numpy()
    ck, _ = nir_to_checkpoint(tmp_path / "n.nir", dt_ms=1.0)
    spikes, v = simulate_checkpoint(ck, x)
    assert spk.sum() > 30
    assert np.array_equal(spikes[0], spk.astype(np.uint8))
    np.testing.assert_allclose(v, vs, rtol=1e-5, atol=1e-5)
    with pytest.raises(ExportError, match="NIR node '1': dt/tau = 125 is outside"):
        nir_to_checkpoint(to_nir(m, torch.zeros(1, C)), dt_ms=1.0)


def test_norse_reads_a_self_loop_as_the_next_step():
    """Norse's own reading of a recurrent NIR graph (norse.torch.from_nir: nirtorch's graph
    executor) runs the self-loop with one step of latency: its spikes equal the import's."""
    nt = pytest.importorskip("norse.torch")
    g = loop_graph([("wrec", nir.Linear(weight=np.random.default_rng(1).normal(0, 0.5, (8, 8))))])
    x = spiky_input()
    m = nt.from_nir(g, dt=1e-3)
    xt, state, spk = torch.tensor(x, dtype=torch.float32), None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = m(xt[:, t], state)
            spk.append(state.cache["lif"])
    spk = torch.stack(spk, 1).numpy()
    ck, _ = nir_to_checkpoint(g, dt_ms=1.0)
    spikes, _ = simulate_checkpoint(ck, x)
    assert spk.sum() > 50 and ck.layers[0].recurrent.pre.size == 64
    assert np.array_equal(spikes[0], spk.astype(np.uint8))


def test_norse_cannot_export_a_recurrent_cell():
    """Norse 1.1.0's to_nir has no mapping for its recurrent cells: it writes the node as None
    (README: Norse's recurrent networks do not reach NIR through its exporter); the import
    refuses that node by name."""
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir

    m = nt.SequentialState(torch.nn.Linear(3, 4), nt.LIFRecurrentCell(4, 4),
                           torch.nn.Linear(4, 2), nt.LIBoxCell())
    g = to_nir(m, torch.zeros(1, 3))
    assert g.nodes["1"] is None
    with pytest.raises(ExportError, match="NIR node '1': is empty .None.: the producer's exporter"):
        nir_to_checkpoint(g, dt_ms=1.0)


# ---- Rockpool ------------------------------------------------------------------------------

def test_rockpool_export_drops_recurrence_and_is_not_nir_euler():
    """Rockpool 3.1.0's to_nir writes LIFTorch as a CubaLIF without its recurrent weights (no
    cycle in the graph although the module has w_rec), with w_in = 1 and
    r = tau_mem exp(-dt/tau_mem) / dt. Read by NIR's equations (as this import, snnTorch and
    Norse read them) the synaptic current is about dt / tau_syn of Rockpool's, which integrates
    its input undivided and decays exponentially: the imported readout is that much smaller
    than Rockpool's own simulation (README, NIR section)."""
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    dt, C, H, K = 1e-3, 5, 6, 3
    torch.manual_seed(0)
    rec = Sequential(LinearTorch((C, H)), LIFTorch(H, has_rec=True, dt=dt))
    assert torch.any(rec[1].w_rec != 0)
    g = to_nir(rec)
    lif = next(k for k, v in g.nodes.items() if isinstance(v, nir.CubaLIF))
    assert [a for a, b in g.edges if b == lif] == ["0_LinearTorch"]  # no loop back
    assert nir_to_checkpoint(g, dt_ms=1.0, lif_readout=True)[0].layers[0].recurrent is None

    tau = 64 * dt  # Euler and exponential decays within 1e-4: the gain is what differs
    readout = Sequential(LinearTorch((C, K)),
                         LIFTorch(K, dt=dt, tau_mem=tau, tau_syn=tau, threshold=1e9))
    g = to_nir(readout)
    x = spiky_input(n=4, T=40, C=C, seed=3)
    with torch.no_grad():
        _, _, rec_dict = readout(torch.tensor(x, dtype=torch.float32), record=True)
    v_rockpool = rec_dict["1_LIFTorch"]["vmem"].numpy()
    ck, _ = nir_to_checkpoint(g, dt_ms=1.0, lif_readout=True)
    _, v = simulate_checkpoint(ck, x)
    ratio = np.abs(v).max() / np.abs(v_rockpool).max()
    assert ratio == pytest.approx(dt / tau, rel=0.05)
