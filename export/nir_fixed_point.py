"""A deployed network (fixed point) as a NIR graph and back, exactly: the float graph of its
dynamics (`fixed_point_graph`), the network itself as JSON for the graph's metadata
(`deployed_to_json` / `deployed_from_json`) and the check that a graph still says what those
integers do (`check_fixed_point_graph`). export.to_nir writes with it (`network_to_nir`),
export.from_nir reads with it (`fixed_point_network`).

The float graph states deployed.fixed_point's equations in a_in units (one unit = what an integer
weight of 1 adds to a_in per payload unit; u and v divided by 2^6), dt the step in seconds, with
export.to_nir's branches, node names and self-loops ("<layer>", "<layer>.delay<d>",
"<layer>.w<d>", "<layer>.rec.delay<d>", "<layer>.rec.w<d>"):
    weights   w * 2^weight_exp (into neuron p: 2^(weight_exp - neuron_exp[p])) per delay
              branch [Delay(d dt)] -> Linear (recurrent: their own weight_exp, a self-loop
              [Delay((d + 1) dt)] -> Linear, no Delay for d = 0);
    neurons   du = 4095 (no current memory): LIF / LI with tau = 4096 dt / dv, R = tau / dt (input
              gain exactly 1), the bias (bias_mant << bias_exp) / 2^6 as the first branch's Affine
              bias; dv = 0: IF / I with R = 1 / dt. du < 4095: CubaLIF / CubaLI with
              tau_syn = 4096 dt / (du + 1), tau_mem = 4096 dt / dv, w_in = tau_syn / dt,
              R = tau_mem / dt (gain exactly 1), the bias as v_leak = bias tau_mem / dt (NIR feeds
              an Affine bias into the synaptic current; Loihi adds it to v). dv = 0 with
              du < 4095 has no NIR form (CubaLIF needs a finite tau_mem): refused, naming the layer;
    threshold v_threshold = vth (spike if v > vth << 6), v_reset = 0; a spiking output layer is a
              spiking population (LIF / CubaLIF / IF) feeding the Output, a readout an LI kind;
    input     the payloads the network receives (its InputEncoding maps features to them).
These are export.from_nir's forward-Euler equations read backwards, so a graph imported without
the metadata quantizes to nearly this network. Nearly: NIR's float parameters cannot carry Lava's
integer rules (u, v decays truncated toward zero, a_in floored after a negative weight_exp per
(delay, post) group, the 24-bit wrap of u and clip of v), nor the input encoding, layer_start,
profile or provenance; so the metadata holds the network itself, and export.from_nir rebuilds it
from there when the float graph is still the one its integers imply (FLOAT_RTOL), giving the same
bytes from deployed.netx_h5.save.
"""
from __future__ import annotations

from typing import NoReturn

import numpy as np

from deployed.network import DeployedNetwork
from export.errors import ExportError

META_KEY = "delaysnn"  # the graph metadata entry (JSON text), as export.from_nir.META_KEY
DEPLOYED_KEY = "deployed"  # in it: the exact fixed-point network (deployed_to_json)
FLOAT_RTOL = 1e-6  # a graph's floats against those its integers imply (float32 storage passes)
JSON_FORMAT = "delaysnn-deployed-json"


def _nir():
    import nir
    return nir


def _refuse(name: str, why: str) -> NoReturn:
    raise ExportError(f"NIR node {name!r}: {why}; nothing was written")


def _population(L, dt: float):
    """The NIR neuron node of layer L's fixed-point neurons (module docstring) and the bias (a_in
    units, (n,)) its first branch must carry as an Affine bias (None: carried as v_leak)."""
    nir = _nir()
    nr, n = L.neurons, L.n_out
    bias = np.asarray(nr.bias_mant, dtype=np.float64) * 2.0 ** (nr.bias_exp - 6)
    thr, zero = np.full(n, float(nr.vth)), np.zeros(n)
    if nr.du == 4095:  # no current memory: u = a_in << 6, the bias enters with the weights
        if nr.dv > 0:
            tau = np.full(n, dt * 4096 / nr.dv)
            r = tau / dt
            node = (nir.LIF(tau=tau, r=r, v_leak=zero, v_threshold=thr, v_reset=zero)
                    if nr.spiking else nir.LI(tau=tau, r=r, v_leak=zero))
        else:
            r = np.full(n, 1 / dt)
            node = (nir.IF(r=r, v_threshold=thr, v_reset=zero) if nr.spiking else nir.I(r=r))
        return node, bias
    if nr.dv == 0:
        raise ExportError(f"layer {L.name!r} has a current decay (du = {nr.du}) and no voltage "
                          "leak (dv = 0): NIR's CubaLIF needs a finite tau_mem, so this neuron "
                          "has no NIR form")
    tau_mem, tau_syn = np.full(n, dt * 4096 / nr.dv), np.full(n, dt * 4096 / (nr.du + 1))
    r, w_in, leak = tau_mem / dt, tau_syn / dt, bias * (tau_mem / dt)
    node = (nir.CubaLIF(tau_mem=tau_mem, tau_syn=tau_syn, r=r, v_leak=leak, w_in=w_in,
                        v_threshold=thr, v_reset=zero) if nr.spiking
            else nir.CubaLI(tau_mem=tau_mem, tau_syn=tau_syn, r=r, v_leak=leak, w_in=w_in))
    return node, None


def fixed_point_graph(net: DeployedNetwork, dt_ms: float):
    """The float NIR graph of a DeployedNetwork's fixed-point dynamics (module docstring), with
    metadata {"dt": seconds} only. export.from_nir rebuilds it from a graph's "deployed"
    metadata to check that the float graph still says what the integers do."""
    nir = _nir()
    dt = dt_ms / 1000.0
    nodes = {"input": nir.Input(input_type={"input": np.array([net.input.n_channels])})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for L in net.layers:
        if L.name in ("input", "output"):
            raise ExportError(f"layer {L.name!r}: NIR uses that name for its own node")
        neuron, bias = _population(L, dt)
        wf = np.asarray(L.weight, dtype=np.float64) * 2.0 ** L.synapse_exp()
        delays = np.unique(L.delay) if L.n_synapses else np.zeros(1, np.int64)
        for k, d in enumerate(delays):
            W = np.zeros((L.n_out, L.n_in))
            sel = L.delay == d
            np.add.at(W, (L.post[sel], L.pre[sel]), wf[sel])
            w_name = f"{L.name}.w{int(d)}"
            if k == 0 and bias is not None and np.any(bias != 0):
                nodes[w_name] = nir.Affine(weight=W, bias=bias)
            else:
                nodes[w_name] = nir.Linear(weight=W)
            src = prev
            if d > 0:
                src = f"{L.name}.delay{int(d)}"
                nodes[src] = nir.Delay(delay=np.full(L.n_in, int(d) * dt))
                edges.append((prev, src))
            edges += [(src, w_name), (w_name, L.name)]
        nodes[L.name] = neuron
        R = L.recurrent
        if R is not None and R.n_synapses:
            if not L.neurons.spiking:
                raise ExportError(f"layer {L.name!r} is the readout but has recurrent synapses; "
                                  "only spiking layers can be recurrent")
            rf = np.asarray(R.weight, dtype=np.float64) * 2.0 ** R.weight_exp
            for d in np.unique(R.delay):
                sel = R.delay == d
                W = np.zeros((L.n_out, L.n_out))
                np.add.at(W, (R.post[sel], R.pre[sel]), rf[sel])
                w_name, src = f"{L.name}.rec.w{int(d)}", L.name
                nodes[w_name] = nir.Linear(weight=W)
                if d > 0:
                    src = f"{L.name}.rec.delay{int(d)}"
                    nodes[src] = nir.Delay(delay=np.full(L.n_out, (int(d) + 1) * dt))
                    edges.append((L.name, src))
                edges += [(src, w_name), (w_name, L.name)]
        prev = L.name
    nodes["output"] = nir.Output(output_type={"output": np.array([net.layers[-1].n_out])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt})


_ARRAYS = ("pre", "post", "delay", "weight")


def deployed_to_json(net: DeployedNetwork) -> dict:
    """A DeployedNetwork as plain JSON values, every integer and float exactly (floats as
    Python's repr, which reads back to the same float64): what export.to_nir stores in a
    graph's metadata under "deployed"; deployed_from_json reads it back."""
    def arrays(obj) -> dict:
        return {k: np.asarray(getattr(obj, k), dtype=np.int64).tolist() for k in _ARRAYS}

    layers = []
    for L in net.layers:
        nr = L.neurons
        layers.append({
            "name": L.name, "n_in": int(L.n_in), "n_out": int(L.n_out),
            "weight_exp": int(L.weight_exp), "num_weight_bits": int(L.num_weight_bits),
            "input_message_bits": int(L.input_message_bits), **arrays(L),
            "neuron": {"n": int(nr.n), "du": int(nr.du), "dv": int(nr.dv), "vth": int(nr.vth),
                       "bias_mant": np.asarray(nr.bias_mant, dtype=np.int64).tolist(),
                       "bias_exp": int(nr.bias_exp), "spiking": bool(nr.spiking),
                       "v_scale": float(nr.v_scale)},
            "recurrent": None if L.recurrent is None else {
                "weight_exp": int(L.recurrent.weight_exp),
                "num_weight_bits": int(L.recurrent.num_weight_bits), **arrays(L.recurrent)}})
        if L.neuron_exp is not None:  # only when set: other graphs' metadata is unchanged
            layers[-1]["neuron_exp"] = np.asarray(L.neuron_exp, dtype=np.int64).tolist()
    e = net.input
    return {"format": JSON_FORMAT, "version": 1,
            "input": {"n_channels": int(e.n_channels), "time_steps": int(e.time_steps),
                      "num_message_bits": int(e.num_message_bits), "scale": float(e.scale),
                      "event_threshold": float(e.event_threshold)},
            "layers": layers, "class_names": list(net.class_names),
            "profile_name": net.profile_name, "profile_version": net.profile_version,
            "meta": net.meta, "layer_start": net.layer_start}


def deployed_from_json(d: dict) -> DeployedNetwork:
    """deployed_to_json's inverse; ExportError in one line if the metadata is damaged."""
    from deployed.network import (
        LAYER_STARTS,
        ConnectionLayer,
        InputEncoding,
        NeuronParams,
        RecurrentSynapses,
    )

    def arrays(g: dict) -> dict:
        return {k: np.asarray(g[k], dtype=np.int64).reshape(-1) for k in _ARRAYS}

    try:
        if d.get("format") != JSON_FORMAT or d.get("version") != 1:
            raise ValueError(f"format {d.get('format')!r} version {d.get('version')!r}")
        layers = []
        for g in d["layers"]:
            n = g["neuron"]
            nr = NeuronParams(n=int(n["n"]), du=int(n["du"]), dv=int(n["dv"]),
                              vth=int(n["vth"]),
                              bias_mant=np.asarray(n["bias_mant"], dtype=np.int64).reshape(-1),
                              bias_exp=int(n["bias_exp"]), spiking=bool(n["spiking"]),
                              v_scale=float(n["v_scale"]))
            r = g["recurrent"]
            rec = None if r is None else RecurrentSynapses(
                **arrays(r), weight_exp=int(r["weight_exp"]),
                num_weight_bits=int(r["num_weight_bits"]))
            layers.append(ConnectionLayer(
                name=str(g["name"]), n_in=int(g["n_in"]), n_out=int(g["n_out"]), **arrays(g),
                weight_exp=int(g["weight_exp"]), num_weight_bits=int(g["num_weight_bits"]),
                neurons=nr, input_message_bits=int(g["input_message_bits"]), recurrent=rec,
                neuron_exp=(None if g.get("neuron_exp") is None
                            else np.asarray(g["neuron_exp"], dtype=np.int64).reshape(-1))))
        e = d["input"]
        enc = InputEncoding(n_channels=int(e["n_channels"]), time_steps=int(e["time_steps"]),
                            num_message_bits=int(e["num_message_bits"]), scale=float(e["scale"]),
                            event_threshold=float(e["event_threshold"]))
        if d["layer_start"] not in LAYER_STARTS or not layers:
            raise ValueError(f"layer_start {d['layer_start']!r}, {len(layers)} layers")
        return DeployedNetwork(layers=layers, input=enc,
                               class_names=[str(c) for c in d["class_names"]],
                               profile_name=str(d["profile_name"]),
                               profile_version=str(d["profile_version"]), meta=dict(d["meta"]),
                               layer_start=str(d["layer_start"]))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        why = " ".join(str(e).split())
        raise ExportError(f"graph metadata {META_KEY!r}: its {DEPLOYED_KEY!r} network is damaged "
                          f"({type(e).__name__}: {why}); re-export with python -m export.to_nir"
                          ) from None


def _same_values(a, b) -> bool:
    """Equal shapes and values: arrays to FLOAT_RTOL (zeros exactly), dicts per key."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b)
                and all(_same_values(a[k], b[k]) for k in a))
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=FLOAT_RTOL, atol=0.0))


def check_fixed_point_graph(graph, expected) -> None:
    """Refuse `graph` (ExportError naming the node) unless it has `expected`'s nodes, node types,
    edges and parameters (FLOAT_RTOL): the float graph export.to_nir writes for the network in
    its metadata (export.to_nir.fixed_point_graph)."""
    nodes, want = dict(graph.nodes), dict(expected.nodes)
    why = "the float graph no longer matches the fixed-point network in its metadata"
    for name in want:
        if name not in nodes:
            _refuse(name, f"is missing: {why} (export.to_nir wrote it)")
    for name, node in nodes.items():
        if name not in want:
            _refuse(name, f"is not in the fixed-point network of the graph's metadata; {why}")
        ref = want[name]
        if type(node).__name__ != type(ref).__name__:
            _refuse(name, f"is a {type(node).__name__}, the metadata's network implies a "
                          f"{type(ref).__name__}; {why}")
        got, exp = node.to_dict(), ref.to_dict()
        for key in sorted(set(exp) - {"metadata", "type"}):
            if key not in got or not _same_values(got[key], exp[key]):
                _refuse(name, f"{key} differs from what the metadata's integers imply; {why}")
    have, need = set(map(tuple, graph.edges)), set(map(tuple, expected.edges))
    for a, b in sorted(have ^ need):
        _refuse(b, f"the edge {a!r} -> {b!r} is {'added' if (a, b) in have else 'missing'}; "
                   f"{why}")
