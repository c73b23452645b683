"""Write a trained checkpoint as a NIR graph, per-synapse delays included.

    python -m export.to_nir RUN_DIR_OR_CHECKPOINT_OR_NET.h5 --out net.nir [--dt-ms 10]

is a thin layer over `to_nir(path, dt_ms) -> (nir.NIRGraph, info)` (`checkpoint_to_nir` or
`network_file_to_nir`) and `write_nir`.

Graph: Input -> per connection layer, one branch per delay value d present in the layer:
[Delay(d dt for every input channel)] -> Linear(W_d) (the branch of the smallest delay is an
Affine carrying the layer's bias), all converging on the layer's neuron node (NIR sums converging
edges) -> ... -> the readout -> Output. Node names: the layer name for the neurons,
"<layer>.delay<d>" and "<layer>.w<d>" for a branch. BatchNorm is folded into W and the bias.
A recurrent layer (CkptLayer.recurrent) adds a self-loop per recurrent delay d present:
neurons -> [Delay((d + 1) dt)] -> Linear(W_rec,d) -> the same neurons, without the Delay for
d = 0 (a spike at step t reaches the current at t + 1 + d; export.from_nir's docstring,
"Recurrence", says why a loop's Delay is its whole latency), named "<layer>.rec.delay<d>" and
"<layer>.rec.w<d>"; recurrent weights are not scaled by BatchNorm (they add after it).

Neurons (the inverse of export.from_nir's forward-Euler rule, so that importing gives the same
float network): hidden layers are LIF with tau = 4096 dt / dv, R = tau / dt (input gain
R dt / tau = 1), v_leak = 0, v_threshold = threshold, v_reset = 0; the readout is LI with the
same tau, R, v_leak; a layer with dv = 0 (no leak) is IF / I with R = 1 / dt.
Graph metadata: "dt" (seconds) and "delaysnn" (JSON: dt_ms, class_names, data_recipe, the
checkpoint's provenance and the digest of the float network, so export.from_nir rebuilds byte
for byte the deployed file that export.to_lava writes, and notices a graph changed since).
Synapses whose float weight is exactly 0 cannot be told apart from absent ones in a dense Linear
and are dropped (counted in info).

A deployed network file (an .h5 written by deployed.netx_h5: export.to_lava, export.from_netx)
goes out through `network_file_to_nir(path, dt_ms)` / `network_to_nir(net, dt_ms)` (the command
tells the inputs apart: an HDF5 file is a network, anything else a checkpoint): the float graph
of its fixed-point dynamics (export.nir_fixed_point: weights W 2^weight_exp, decays from du / dv,
thresholds, biases, in a_in units; LIF / CubaLIF / IF, a spiking output layer as a spiking
population), and in the "delaysnn" metadata, under "deployed", the network itself (every integer,
input encoding, class names, profile, layer_start, meta such as netx_source), because NIR's float
parameters cannot carry Lava's integer rounding rules; export.from_nir rebuilds that network
byte for byte when the float graph still matches it.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import h5py
import numpy as np

from deployed.network import DeployedNetwork
from export.errors import ExportError
from export.from_nir import META_KEY, _nir, layers_digest, nir_to_checkpoint
from export.nir_fixed_point import DEPLOYED_KEY, deployed_to_json, fixed_point_graph
from trainer.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from trainer.file_io import write_bytes_atomic

NIR_FORMAT = "delaysnn-nir"
DEFAULT_DT_MS = 10.0  # one step of this project's features


def checkpoint_to_nir(path, dt_ms: float | None = None):
    """Checkpoint (run folder or .pt) -> (nir.NIRGraph, info dict). dt_ms: time step of the
    network (default: the data recipe's dt_ms, else 10 ms)."""
    from export.to_lava import checkpoint_provenance
    from trainer.file_io import sha256_file

    ck_path = resolve_checkpoint_path(path)
    ck = load_checkpoint(ck_path)
    graph, info = checkpoint_graph(ck, dt_ms, checkpoint_provenance(ck, sha256_file(ck_path)))
    return graph, {"checkpoint": str(ck_path), **info}


def checkpoint_graph(ck: Checkpoint, dt_ms: float | None, provenance: dict):
    """An in-memory Checkpoint -> (nir.NIRGraph, info dict) (module docstring); `provenance`
    (export.to_lava.checkpoint_provenance) travels in the graph's metadata."""
    nir = _nir()
    if dt_ms is None:
        dt_ms = float(ck.data_recipe.get("dt_ms", DEFAULT_DT_MS))
    if not dt_ms > 0:
        raise ExportError(f"dt_ms must be > 0, got {dt_ms}")
    dt = dt_ms / 1000.0
    nodes = {"input": nir.Input(input_type={"input": np.array([ck.n_channels])})}
    edges, prev, dropped = [], "input", 0
    for L in ck.layers:
        a, b = L.bn_affine()
        wf = L.weight * a[L.post]
        dropped += int(np.sum(wf == 0))
        delays = np.unique(L.delay) if L.delay.size else np.zeros(1, np.int64)
        for i, d in enumerate(delays):
            W = np.zeros((L.n_out, L.n_in))
            sel = L.delay == d
            np.add.at(W, (L.post[sel], L.pre[sel]), wf[sel])
            w_name = f"{L.name}.w{int(d)}"
            if i == 0 and np.any(b != 0):
                nodes[w_name] = nir.Affine(weight=W, bias=b.astype(np.float64))
            else:
                nodes[w_name] = nir.Linear(weight=W)
            src = prev
            if d > 0:
                d_name = f"{L.name}.delay{int(d)}"
                nodes[d_name] = nir.Delay(delay=np.full(L.n_in, int(d) * dt))
                edges.append((prev, d_name))
                src = d_name
            edges += [(src, w_name), (w_name, L.name)]
        n = L.n_out
        if L.dv > 0:
            tau = np.full(n, dt * 4096 / L.dv)
            r, leak = tau / dt, np.zeros(n)
            nodes[L.name] = (nir.LIF(tau=tau, r=r, v_leak=leak, v_threshold=np.full(n, L.threshold),
                                     v_reset=np.zeros(n)) if L.spiking
                             else nir.LI(tau=tau, r=r, v_leak=leak))
        else:
            r = np.full(n, 1 / dt)
            nodes[L.name] = (nir.IF(r=r, v_threshold=np.full(n, L.threshold), v_reset=np.zeros(n))
                             if L.spiking else nir.I(r=r))
        dropped += _self_loop(nodes, edges, L, dt)
        prev = L.name
    nodes["output"] = nir.Output(output_type={"output": np.array([ck.layers[-1].n_out])})
    edges.append((prev, "output"))
    own = {"format": NIR_FORMAT, "version": 1, "dt_ms": dt_ms,
           "class_names": list(ck.class_names), "data_recipe": ck.data_recipe,
           "provenance": provenance}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt})
    # the digest of the float network export.from_nir reads back: it keeps the provenance only
    # while the graph still holds this network
    own["layers_sha256"] = layers_digest(nir_to_checkpoint(graph)[0].layers)
    graph.metadata[META_KEY] = json.dumps(own, sort_keys=True)
    rec = [L.recurrent for L in ck.layers if L.recurrent is not None]
    info = {"dt_ms": dt_ms, "layers": len(ck.layers), "nodes": len(nodes),
            "synapses": int(sum(L.pre.size for L in ck.layers)),
            "recurrent_synapses": int(sum(R.pre.size for R in rec)),
            "dropped_zero_weight_synapses": dropped}
    return graph, info


def _self_loop(nodes: dict, edges: list, L, dt: float) -> int:
    """Add layer L's recurrent synapses as self-loop branches (module docstring); returns the
    number of zero-weight recurrent synapses dropped."""
    nir = _nir()
    R = L.recurrent
    if R is None or not R.pre.size:
        return 0
    if not L.spiking:
        raise ExportError(f"layer {L.name!r} is the readout but has recurrent synapses; only "
                          "hidden (spiking) layers can be recurrent")
    n = L.n_out
    for d in np.unique(R.delay):
        sel = R.delay == d
        W = np.zeros((n, n))
        np.add.at(W, (R.post[sel], R.pre[sel]), R.weight[sel])
        w_name, src = f"{L.name}.rec.w{int(d)}", L.name
        nodes[w_name] = nir.Linear(weight=W)
        if d > 0:
            src = f"{L.name}.rec.delay{int(d)}"
            nodes[src] = nir.Delay(delay=np.full(n, (int(d) + 1) * dt))
            edges.append((L.name, src))
        edges += [(src, w_name), (w_name, L.name)]
    return int(np.sum(R.weight == 0))


# ---- a deployed network (fixed point) -------------------------------------------------------

def is_network_file(path) -> bool:
    """True for an HDF5 file (a deployed network, or a netx file not yet converted); False for a
    run folder or a checkpoint (.pt)."""
    p = Path(path)
    return p.is_file() and h5py.is_hdf5(p)


def network_dt_ms(net: DeployedNetwork, dt_ms: float | None) -> float:
    """dt_ms, else the data recipe's dt_ms recorded in the network's meta, else DEFAULT_DT_MS."""
    if dt_ms is None:
        recipe = net.meta.get("data_recipe") or {}
        dt_ms = float(recipe.get("dt_ms", DEFAULT_DT_MS))
    if not dt_ms > 0:
        raise ExportError(f"dt_ms must be > 0, got {dt_ms}")
    return float(dt_ms)


def network_to_nir(net: DeployedNetwork, dt_ms: float | None = None):
    """DeployedNetwork -> (nir.NIRGraph, info dict): the float graph of its fixed-point dynamics
    with the network itself in the metadata (module docstring). dt_ms: the step the float
    parameters are written for (default: the data recipe's recorded in net.meta, else 10 ms)."""
    dt_ms = network_dt_ms(net, dt_ms)
    graph = fixed_point_graph(net, dt_ms)
    own = {"format": NIR_FORMAT, "version": 1, "dt_ms": dt_ms,
           "class_names": list(net.class_names), DEPLOYED_KEY: deployed_to_json(net)}
    graph.metadata[META_KEY] = json.dumps(own, sort_keys=True, allow_nan=False)
    rec = [L.recurrent for L in net.layers if L.recurrent is not None]
    zero = sum(int(np.sum(L.weight == 0)) for L in net.layers)
    zero += sum(int(np.sum(R.weight == 0)) for R in rec)
    info = {"dt_ms": dt_ms, "layers": len(net.layers), "nodes": len(graph.nodes),
            "synapses": int(sum(L.n_synapses for L in net.layers)),
            "recurrent_synapses": int(sum(R.n_synapses for R in rec)),
            "dropped_zero_weight_synapses": zero, "fixed_point": True,
            "layer_start": net.layer_start}
    return graph, info


def network_file_to_nir(path, dt_ms: float | None = None):
    """A network file (deployed.netx_h5) -> (nir.NIRGraph, info dict), as network_to_nir."""
    from deployed import netx_h5

    p = Path(path)
    with h5py.File(p, "r") as f:
        netx_only = "delaysnn" not in f and "layer" in f
    if netx_only:
        raise ExportError(f"{p} is a lava-dl netx file without this project's 'delaysnn' "
                          "group; convert it first: python -m export.from_netx "
                          f"{p.name} --out net.h5")
    graph, info = network_to_nir(netx_h5.load(p), dt_ms)
    return graph, {"network": str(p), **info}


def to_nir(path, dt_ms: float | None = None):
    """A network file (HDF5) or a run folder / checkpoint -> (nir.NIRGraph, info dict)."""
    if is_network_file(path):
        return network_file_to_nir(path, dt_ms)
    return checkpoint_to_nir(path, dt_ms)


def write_nir(graph, out) -> Path:
    """nir.write to a temp file beside `out`, then rename (no half-written file)."""
    nir = _nir()
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"output folder {out.parent} does not exist")
    buf = io.BytesIO()          # h5py reads back while writing: a seekable in-memory file
    nir.write(buf, graph)
    write_bytes_atomic(buf.getvalue(), out)
    return out


def build_parser(prog: str = "python -m export.to_nir") -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser(prog, __doc__)
    ap.add_argument("checkpoint", help="run folder (with checkpoint.pt), checkpoint file, or "
                                       "network file NET.h5 (export.to_lava, export.from_netx; "
                                       "written with its exact fixed-point form)")
    ap.add_argument("--out", required=True, metavar="GRAPH.nir",
                    help="NIR file to write; required, no default")
    ap.add_argument("--dt-ms", type=float, default=None,
                    help=f"time step stored in the graph (default: the data recipe's, else "
                         f"{DEFAULT_DT_MS:g} ms)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        graph, info = to_nir(a.checkpoint, a.dt_ms)
        write_nir(graph, a.out)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rec = (f" + {info['recurrent_synapses']} recurrent" if info["recurrent_synapses"] else "")
    print(f"wrote {a.out}: {info['layers']} layers, {info['synapses']} synapses{rec}, "
          f"{info['nodes']} NIR nodes, dt {info['dt_ms']:g} ms"
          + (f"; {info['dropped_zero_weight_synapses']} zero-weight synapses dropped"
             if info["dropped_zero_weight_synapses"] else "")
          + (f"; exact fixed-point network (layer_start {info['layer_start']}) in the metadata"
             if info.get("fixed_point") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
