"""A deployed network out to NIR and back (export.to_nir on a network file, export.from_nir with
the "deployed" metadata; issue 25 item 4): a lava-dl SLAYER network converted by
export.from_netx comes back byte for byte and runs the same; the float graph states the
fixed-point dynamics (read without the metadata, it gives the same decays, weights, thresholds);
a graph changed after export is refused naming the node; recurrent and multi-delay networks,
every neuron kind."""
from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest

from deployed import netx_h5
from deployed.emulator import emulate
from deployed.network import LAYER_START_ZERO
from deployed.synthetic import random_network, random_payloads
from export.errors import ExportError
from export.from_netx import main as from_netx_main
from export.from_nir import export_nir, fixed_point_network, nir_to_checkpoint
from export.from_nir import main as from_nir_main
from export.to_nir import main as to_nir_main
from export.to_nir import network_file_to_nir, network_to_nir, write_nir

nir = pytest.importorskip("nir")

T = 20  # steps per sample


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """lava-dl's two-layer SLAYER network (delays, a norm's bias, spiking output), written by
    its export_hdf5, converted by export.from_netx (3-bit graded input), then written to NIR by
    the command: (folder, net.h5, net.nir)."""
    from helpers.slayer_nets import two_layer_net
    d = tmp_path_factory.mktemp("netx_nir")
    two_layer_net(d / "two.net")
    assert from_netx_main([str(d / "two.net"), "--out", str(d / "net.h5"), "--time-steps",
                           str(T), "--input-message-bits", "3"]) == 0
    assert to_nir_main([str(d / "net.h5"), "--out", str(d / "net.nir")]) == 0
    return d, d / "net.h5", d / "net.nir"


def test_slayer_network_to_nir_and_back_byte_identical(converted, capsys):
    d, h5, graph_file = converted
    out = d / "back.h5"
    assert from_nir_main([str(graph_file), "--out", str(out), "--json", str(d / "r.json")]) == 0
    assert out.read_bytes() == h5.read_bytes()
    assert "exact" in capsys.readouterr().out
    assert json.loads((d / "r.json").read_text())["exact"] is True

    net = netx_h5.load(h5)
    back, report = export_nir(graph_file)  # the Python API, no calibration needed
    assert back.layer_start == LAYER_START_ZERO and back.meta == net.meta
    assert back.meta["netx_source"]["layers"][1]["gradedSpike"] is True
    assert report["netx"]["complete"] and report["profile"]["name"] == "loihi2"
    p = random_payloads(net, 3, density=0.4, seed=2)
    a, b = emulate(net, p), emulate(back, p)
    assert sum(s.sum() for s in a.spikes) > 50
    assert all(np.array_equal(x, y) for x, y in zip(a.spikes, b.spikes))
    assert np.array_equal(a.readout_v, b.readout_v)


def test_float_graph_states_the_fixed_point_dynamics(converted):
    """Nodes: CubaLIF (SLAYER's CUBA neurons) with thresholds vth, a spiking output population
    feeding the Output; read without the metadata by export.from_nir's forward-Euler rules, the
    same du, dv, weights W 2^weight_exp (a_in units), thresholds and biases come out."""
    _, h5, graph_file = converted
    net = netx_h5.load(h5)
    g = nir.read(str(graph_file))
    assert ("dense1", "output") in g.edges
    for L in net.layers:
        node = g.nodes[L.name]
        assert isinstance(node, nir.CubaLIF)
        assert np.all(node.v_threshold == L.neurons.vth)
    g.metadata = {"dt": g.metadata["dt"]}  # import as any producer's graph: quantization
    assert fixed_point_network(g) is None
    ck, _ = nir_to_checkpoint(g, lif_readout=True)
    for L, C in zip(net.layers, ck.layers):
        nr = L.neurons
        assert (C.du, C.dv, C.n_in, C.n_out) == (nr.du, nr.dv, L.n_in, L.n_out)
        assert np.array_equal(C.delay, L.delay) and np.array_equal(C.pre, L.pre)
        np.testing.assert_allclose(C.weight, L.weight * 2.0 ** L.weight_exp, rtol=1e-12)
        bias = nr.bias_mant * 2.0 ** (nr.bias_exp - 6)
        np.testing.assert_allclose(C.bias if C.bias is not None else 0, bias, atol=1e-9)
    assert ck.layers[0].threshold == net.layers[0].neurons.vth


def _tamper_weight(g):
    g.nodes["dense1.w0"].weight[np.nonzero(g.nodes["dense1.w0"].weight)[0][0], :] *= 1.5


def _tamper_threshold(g):
    g.nodes["dense0"].v_threshold[3] += 1


def _tamper_metadata(g):
    own = json.loads(g.metadata["delaysnn"])
    own["deployed"]["layers"][0]["weight"][0] += 4
    g.metadata["delaysnn"] = json.dumps(own)


def _drop_edge(g):
    g.edges.remove(("dense0.delay1", "dense0.w1"))


TAMPER = {"weight": (_tamper_weight, "'dense1.w0'", "weight differs"),
          "threshold": (_tamper_threshold, "'dense0'", "v_threshold differs"),
          "metadata": (_tamper_metadata, "'dense0.w", "weight differs"),
          "edge": (_drop_edge, "'dense0.w1'", "is missing")}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_changed_graph_refused_naming_the_node(case, converted, tmp_path, capsys):
    tamper, node, why = TAMPER[case]
    g = nir.read(str(converted[2]))
    tamper(g)
    with pytest.raises(ExportError, match=why) as e:
        export_nir(g)
    assert node in str(e.value) and len(str(e.value).splitlines()) == 1
    write_nir(g, tmp_path / "bad.nir")
    out = tmp_path / "net.h5"
    assert from_nir_main([str(tmp_path / "bad.nir"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and node in err and "nothing was written" in err
    assert not out.exists()


def test_wrong_profile_time_step_or_class_names_refused(converted):
    graph_file = converted[2]
    with pytest.raises(ExportError, match="pass --profile loihi2"):
        export_nir(graph_file, profile="loihi1")
    with pytest.raises(ExportError, match="differs from the graph's own dt"):
        export_nir(graph_file, dt_ms=1.0)
    with pytest.raises(ExportError, match="class names"):
        export_nir(graph_file, class_names=["a", "b", "c", "d", "e", "f"])
    assert export_nir(graph_file, dt_ms=10.0)[0].layer_start == LAYER_START_ZERO


def test_recurrent_multi_delay_network_every_neuron_kind(tmp_path):
    """An exported-style network (aligned, voltage readout, graded input with weight_exp -6,
    several delays per (post, pre) pair, recurrent layers, biases), one hidden layer LIF
    (du 4095), one IF (dv 0), the readout CubaLI: to NIR and back byte for byte."""
    net = random_network((8, 12, 10, 4), time_steps=12, density=0.5, max_delay=6,
                         extra_delays=0.3, bias_max=40, seed=3, recurrent_density=0.3,
                         recurrent_max_delay=4, recurrent_weight_exp=-1)
    L1, L2, L3 = net.layers
    L2.neurons.dv = 0
    L3.neurons.du = 511
    net = dataclasses.replace(net, profile_name="loihi2")
    assert L1.recurrent is not None and len(L1.slots()) > 1
    netx_h5.save(net, tmp_path / "net.h5")
    graph, info = network_file_to_nir(tmp_path / "net.h5", dt_ms=1.0)
    kinds = [type(graph.nodes[L.name]).__name__ for L in net.layers]
    assert kinds == ["LIF", "IF", "CubaLI"]
    assert isinstance(graph.nodes["fc1.w0"], nir.Affine)  # the bias (du = 4095)
    assert ("fc1", "fc1.rec.w0") in graph.edges and "fc1.rec.delay3" in graph.nodes
    assert info["recurrent_synapses"] == L1.recurrent.n_synapses + L2.recurrent.n_synapses
    write_nir(graph, tmp_path / "net.nir")
    assert from_nir_main([str(tmp_path / "net.nir"), "--out", str(tmp_path / "back.h5")]) == 0
    assert (tmp_path / "back.h5").read_bytes() == (tmp_path / "net.h5").read_bytes()

    L2.neurons.du = 1000  # a current decay without voltage leak: no NIR neuron holds it
    with pytest.raises(ExportError, match="layer 'fc2'.*no NIR form"):
        network_to_nir(net)


def test_netx_file_or_missing_file_one_line_exit_2(tmp_path, capsys):
    raw = tmp_path / "raw.net"
    with h5py.File(raw, "w") as f:
        f.create_group("layer/0")
    for src, expected in ((raw, "convert it first: python -m export.from_netx"),
                          (tmp_path / "missing.h5", "does not exist")):
        assert to_nir_main([str(src), "--out", str(tmp_path / "g.nir")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.net"]
