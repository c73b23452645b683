"""Import a NIR graph (snnTorch, Norse, Rockpool, ... or `nir` itself) as this project's network,
then export it exactly as a checkpoint: quantize, profile check, netx HDF5, emulator, Lava, budget.

    python -m export.from_nir GRAPH.nir --dt-ms 0.1 --profile loihi2 --out net.h5 \
        (--features calib.npz | --dataset shd --data-dir DIR) [--lif-readout] [--json report.json]
    python -m export.from_nir GRAPH.nir --out net.h5   # a graph export.to_nir wrote from NET.h5

is a thin layer over `export_nir(path, dt_ms, profile, ...) -> (DeployedNetwork, report)`;
`nir_to_checkpoint(graph, dt_ms)` gives the in-memory intermediate (trainer.checkpoint.Checkpoint)
that export.to_lava.export_loaded turns into the deployed network.

A graph that export.to_nir wrote from a network file (.h5) carries the network itself in its
"delaysnn" metadata, under "deployed" (export.nir_fixed_point: every integer, the input encoding,
class names, profile, layer_start, meta), because NIR's float parameters cannot carry Lava's
integer rounding rules. `fixed_point_network` rebuilds that network, after checking that the
float graph is still the one those integers imply (same nodes, types and edges; parameters to
1e-6 relative, zeros exact), refusing otherwise in one line naming the node; export_nir and the
command then return / write it as it is, no quantization and no calibration features needed, and
deployed.netx_h5.save gives the bytes of the file it came from. A graph without that metadata is
imported by quantization as below.

Accepted graphs: one Input, one Output, and a chain of neuron populations. Each population
receives branches from the previous one (or the Input) of the form
[Delay] -> Linear | Affine -> [Delay]; branches that converge on one neuron node are summed, so
per-synapse delays are parallel Delay -> Linear branches. Neurons: LIF, CubaLIF, IF (hidden,
spiking), LI, CubaLI, I (the last population: the readout, whose voltage is read; with
lif_readout a final LIF / CubaLIF / IF is taken as the readout and its threshold ignored).
Subgraph nodes (a NIRGraph inside the graph, with one Input and one Output) are inlined first,
their nodes named "<subgraph>.<node>" as nirtorch names them.

Recurrence: a hidden population may also receive branches from itself, a self-loop
LIF | CubaLIF | IF -> [Delay] -> Linear | Affine -> [Delay] -> the same population (snnTorch's
RLeaky / RSynaptic export writes it without Delay; several branches sum as above). Its synapses
become the layer's recurrent synapses (trainer.checkpoint.RecurrentFloat: a spike at step t
reaches the current at step t + 1 + d, the one timing rule of docs/design.md section 8), with
d read so that the graph means what its producers simulate:
- a self-loop without a Delay node: the spike arrives at the next step, d = 0. NIR's
  continuous-time graph gives such a loop no latency, which no discrete-time simulator can run;
  every producer gives it one step (snnTorch's RLeaky: mem[t] = beta mem[t-1] + x[t] +
  W_rec spk[t-1]; nirtorch's graph executors, which Norse and Rockpool import with, feed a
  cycle the previous step's output), and so does Loihi 2.
- a self-loop through Delay nodes (summed along the branch, per synapse) of k dt states its
  latency: the spike arrives k steps later, d = k - 1, as a Delay on a feed-forward branch adds
  exactly k steps. k = 0 (a total below one step, which neither a discrete simulator nor
  Loihi 2 can run) is refused, naming the Delay node. export.to_nir writes d = 0 without a
  Delay node and d >= 1 as Delay((d + 1) dt).
Every other cycle (feedback from a later population to an earlier one, a loop through the
readout, a node feeding itself directly) is refused, naming a node on that cycle: the one
closest to the Input, where the feedback enters.

Refused, naming the node, before any file is written: those cycles, self-loops of a readout,
conv / pooling / flatten / other node types, skip connections, mismatched shapes, two weight
nodes in series, per-neuron differences this project's layers cannot hold (decay, threshold),
v_reset != 0, delays that are not whole steps, biases that NIR feeds into a synaptic current
(Loihi adds biases to v).

Discretisation: forward Euler with step dt (seconds; the rule snnTorch and Norse simulate
with), the current updated before the voltage as in snnTorch's Synaptic (a producer that updates
v from the previous step's current, such as Norse's CubaLIF, differs by one step there). This
project's neuron (docs/design.md section 2, Lava LIF) is v[t] = decay * v[t-1] + I[t],
I[t] = sum_syn w x[t - delay] + b, spike = v > threshold, then v = 0. Per NIR node (W, b: the
Affine / Linear weights and bias, x: presynaptic activity):

    LIF  tau dv/dt = (v_leak - v) + R (W x + b)
         -> decay = 1 - dt/tau;  w = (R dt/tau) W;  b_ours = (R dt/tau) b + (dt/tau) v_leak
    IF   dv/dt = R (W x + b)              -> decay = 1 (dv = 0);  w = R dt W;  b_ours = R dt b
    LI, I: as LIF, IF without threshold (readout)
    CubaLIF  tau_syn di/dt = -i + w_in (W x);  tau_mem dv/dt = (v_leak - v) + R i
         -> with i' = (R dt/tau_mem) i:  i'[t] = alpha i'[t-1] + g W x[t],
            v[t] = decay v[t-1] + i'[t] + (dt/tau_mem) v_leak,
            alpha = 1 - dt/tau_syn, decay = 1 - dt/tau_mem, g = (R dt/tau_mem)(w_in dt/tau_syn);
            Lava's u is i' (du = 4095 - 4096 alpha); CubaLI likewise without threshold.
    Delay  y(t) = x(t - delay) -> delay / dt steps, added to every synapse of the branch.
    Self-loop branch (W_rec): recurrent weights gain * W_rec (the same input gain as the
    feed-forward branches of that population; an Affine bias in the loop is a constant input,
    added to the bias), delays as under "Recurrence" above.

Every coefficient is exact (float64) except the decays, which Lava holds as 12-bit fractions:
dv = round(4096 dt/tau), decay = 1 - dv/4096, du = 4095 - round(4096 alpha); the report lists
each rounding. The input gains R dt/tau are computed as R / (tau/dt), so a graph written by
export.to_nir (R = tau/dt) gives gain exactly 1 and the same float network back.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np

from deployed.network import DeployedNetwork
from export.errors import ExportError
from export.nir_fixed_point import (
    DEPLOYED_KEY,
    check_fixed_point_graph,
    deployed_from_json,
    fixed_point_graph,
)
from trainer.checkpoint import Checkpoint, CkptLayer, RecurrentFloat

EXPORTER = "delaysnn export.from_nir 1"
META_KEY = "delaysnn"  # graph metadata written by export.to_nir (JSON text)
DELAY_TOLERANCE = 1e-3  # steps: a Delay must be this close to a whole number of steps

HIDDEN_TYPES = ("LIF", "CubaLIF", "IF")
READOUT_TYPES = ("LI", "CubaLI", "I")


def _nir():
    try:
        import nir
    except ModuleNotFoundError as e:  # pragma: no cover - nir is a project dependency
        raise ExportError("the `nir` package is needed to read NIR graphs: pip install nir") from e
    return nir


def _refuse(name: str, why: str) -> NoReturn:
    raise ExportError(f"NIR node {name!r}: {why}; nothing was written")


def _vec(name: str, what: str, value, n: int) -> np.ndarray:
    """A per-neuron / per-channel parameter as (n,) float64 (a scalar or size-1 array is
    broadcast)."""
    a = np.asarray(value, dtype=np.float64)
    if a.size == 1:
        return np.full(n, float(a.reshape(-1)[0]))
    if a.shape != (n,):
        _refuse(name, f"{what} has shape {a.shape}, expected ({n},)")
    if not np.all(np.isfinite(a)):
        _refuse(name, f"{what} contains NaN or inf")
    return a


def _size(name: str, node) -> int:
    """Number of neurons of a neuron node (from its first parameter)."""
    for key in ("tau", "tau_mem", "r"):
        if hasattr(node, key):
            a = np.asarray(getattr(node, key))
            if a.ndim > 1:
                _refuse(name, f"{key} has shape {a.shape}: only 1-D populations are supported")
            return int(a.size)
    _refuse(name, "has no size")  # pragma: no cover


def _uniform(name: str, what: str, a: np.ndarray) -> float:
    if a.size and np.ptp(a) > 1e-9 * max(1.0, float(np.abs(a).max())):
        _refuse(name, f"{what} differs across neurons ({a.min():.6g}..{a.max():.6g}); a layer of "
                      "this project shares one value")
    return float(a[0])


def _decay_12bit(name: str, what: str, rate: np.ndarray) -> tuple[int, np.ndarray]:
    """rate = dt/tau per neuron -> (d, exact decays) with d = round(4096 rate), 0..4095."""
    if np.any(rate < 0) or np.any(rate > 1):
        _refuse(name, f"dt/{what} = {rate.max():.4g} is outside [0, 1]: forward Euler needs "
                      f"dt <= {what}; pass the producer's time step (--dt-ms; snnTorch's "
                      "export assumes 0.1 ms)")
    d = np.rint(4096 * rate).astype(np.int64)
    if np.ptp(d) > 0:
        _refuse(name, f"{what} differs across neurons (12-bit decays {d.min()}..{d.max()}); a "
                      "layer of this project shares one decay")
    if d[0] > 4095:
        _refuse(name, f"dt/{what} = {rate[0]:.4g} rounds to a 12-bit decay of 4096 (no memory "
                      "at all), which Lava cannot hold; use a longer time constant")
    return int(d[0]), 1 - rate


def _neuron(name: str, node, dt: float, n: int, spiking: bool) -> dict:
    """Discretised parameters of one neuron node (module docstring):
    dv, du, gain (n,), leak_bias (n,), threshold, info."""
    kind = type(node).__name__
    p: dict = {"du": 4095, "threshold": 1.0}
    info: dict = {"node": name, "type": kind}
    if kind in ("LIF", "LI", "CubaLIF", "CubaLI"):
        tau = _vec(name, "tau", node.tau if hasattr(node, "tau") else node.tau_mem, n)
        if np.any(tau <= 0):
            _refuse(name, "time constants must be > 0")
        r = _vec(name, "r", node.r, n)
        p["dv"], exact = _decay_12bit(name, "tau", dt / tau)
        gain = r / (tau / dt)  # = R dt / tau (see the module docstring)
        p["leak_bias"] = (dt / tau) * _vec(name, "v_leak", node.v_leak, n)
        info.update(tau_s=float(tau[0]), decay_exact=float(exact[0]),
                    decay=1 - p["dv"] / 4096, dv=p["dv"])
    else:  # IF, I: dv/dt = R I
        r = _vec(name, "r", node.r, n)
        p["dv"] = 0
        gain = r / (1 / dt)  # = R dt
        p["leak_bias"] = np.zeros(n)
        info.update(decay_exact=1.0, decay=1.0, dv=0)
    if kind in ("CubaLIF", "CubaLI"):
        tau_syn = _vec(name, "tau_syn", node.tau_syn, n)
        if np.any(tau_syn <= 0):
            _refuse(name, "time constants must be > 0")
        rate = dt / tau_syn
        if np.any(rate > 1):
            _refuse(name, f"dt/tau_syn = {rate.max():.4g} > 1: forward Euler needs dt <= tau_syn; "
                          "pass the producer's time step (--dt-ms)")
        k = np.rint(4096 * rate).astype(np.int64)  # alpha = 1 - dt/tau_syn = 1 - k / 4096
        if np.ptp(k) > 0:
            _refuse(name, f"tau_syn differs across neurons (12-bit decays {k.min()}..{k.max()}); "
                          "a layer of this project shares one current decay")
        if k[0] == 0:
            _refuse(name, "tau_syn rounds to a current decay of 1 (no leak), which Lava's du "
                          "cannot hold; use a shorter tau_syn")
        alpha = 1 - rate
        p["du"] = int(k[0]) - 1  # Lava keeps (4095 - du) / 4096 of u per step
        gain = gain * _vec(name, "w_in", node.w_in, n) / (tau_syn / dt)
        info.update(tau_syn_s=float(tau_syn[0]), current_decay_exact=float(alpha[0]),
                    current_decay=(4095 - p["du"]) / 4096, du=p["du"])
    p["gain"] = gain
    if spiking:
        thr = _vec(name, "v_threshold", node.v_threshold, n)
        p["threshold"] = _uniform(name, "v_threshold", thr)
        if not p["threshold"] > 0:
            _refuse(name, f"v_threshold must be > 0, got {p['threshold']}")
        reset = _vec(name, "v_reset", node.v_reset, n)
        if np.any(reset != 0):
            _refuse(name, "v_reset must be 0: Loihi resets the voltage to 0 after a spike")
        info["threshold"] = p["threshold"]
    p["info"] = info
    return p


def _delay_steps(name: str, node, dt: float, n: int) -> np.ndarray:
    d = _vec(name, "delay", node.delay, n) / dt
    r = np.rint(d)
    if np.any(np.abs(d - r) > DELAY_TOLERANCE) or np.any(r < 0):
        i = int(np.argmax(np.abs(d - r)))
        _refuse(name, f"delay {d[i] * dt:.6g} s is {d[i]:.4f} steps of dt = {dt:.6g} s; delays "
                      "must be non-negative whole steps")
    return r.astype(np.int64)


def _branch(chain: list[str], nodes: dict, dt: float, n_in: int, n_out: int, neuron: str) -> dict:
    """One branch [Delay] -> Linear|Affine -> [Delay] as dense (n_out, n_in) weights and delays."""
    nir = _nir()
    pre_d, post_d = np.zeros(n_in, np.int64), np.zeros(n_out, np.int64)
    W = b = w_name = None
    for name in chain:
        node = nodes[name]
        if isinstance(node, (nir.Linear, nir.Affine)):
            if W is not None:
                _refuse(name, f"follows weight node {w_name!r} in series; merge them into one "
                              "Linear/Affine")
            W = np.asarray(node.weight, dtype=np.float64)
            if W.ndim != 2:
                _refuse(name, f"weight has shape {W.shape}; only 2-D (n_out, n_in) weights are "
                              "supported")
            if W.shape != (n_out, n_in):
                _refuse(name, f"weight has shape {W.shape} but connects {n_in} inputs to neuron "
                              f"node {neuron!r} with {n_out} neurons (expected ({n_out}, {n_in}))")
            if not np.all(np.isfinite(W)):
                _refuse(name, "weight contains NaN or inf")
            w_name = name
            if isinstance(node, nir.Affine):
                b = _vec(name, "bias", node.bias, n_out)
        else:  # Delay
            if W is None:
                pre_d += _delay_steps(name, node, dt, n_in)
            else:
                post_d += _delay_steps(name, node, dt, n_out)
    if W is None:
        _refuse(chain[-1], f"branch {chain} into {neuron!r} has no Linear/Affine weight")
    if b is not None and np.any(b != 0) and np.any(post_d != 0):
        _refuse(w_name, "an Affine bias followed by a Delay starts late, which a Loihi bias "  # type: ignore[arg-type]
                        "cannot do; put the Delay before the Affine")
    return {"W": W, "bias": b, "delay": pre_d[None, :] + post_d[:, None], "name": w_name}


def _flatten(nodes: dict, edges: list) -> tuple[dict, list]:
    """Inline subgraph nodes (a NIRGraph with one Input and one Output): inner nodes become
    "<subgraph>.<node>", and edges into / out of the subgraph go to the successors of its Input
    / come from the predecessors of its Output (recursively, as nirtorch flattens them)."""
    nir = _nir()
    flat: dict = {}
    inner_edges: list = []
    enter: dict[str, list[str]] = {}
    leave: dict[str, list[str]] = {}
    for name, node in nodes.items():
        if not isinstance(node, nir.NIRGraph):
            flat[name] = node
            continue
        sub_nodes, sub_edges = _flatten(dict(node.nodes), list(node.edges))
        ins = [k for k, v in sub_nodes.items() if isinstance(v, nir.Input)]
        outs = [k for k, v in sub_nodes.items() if isinstance(v, nir.Output)]
        if len(ins) != 1 or len(outs) != 1:
            _refuse(name, f"is a subgraph with inputs {ins} and outputs {outs}; only a subgraph "
                          "with one Input and one Output can be inlined")
        if (ins[0], outs[0]) in sub_edges:
            _refuse(name, "is a subgraph whose Input feeds its Output directly")
        for k, v in sub_nodes.items():
            if k not in (ins[0], outs[0]):
                full = f"{name}.{k}"
                if full in nodes or full in flat:
                    _refuse(name, f"inlining its node {k!r} gives the name {full!r}, which the "
                                  "graph already uses")
                flat[full] = v
        enter[name] = [f"{name}.{b}" for a, b in sub_edges if a == ins[0]]
        leave[name] = [f"{name}.{a}" for a, b in sub_edges if b == outs[0]]
        inner_edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in sub_edges
                        if ins[0] not in (a, b) and outs[0] not in (a, b)]
    out_edges = [(a2, b2) for a, b in edges for a2 in leave.get(a, [a])
                 for b2 in enter.get(b, [b])]
    return flat, out_edges + inner_edges


def _self_loops(nodes: dict, succ: dict, pred: dict, is_neuron) -> dict[str, list[list[str]]]:
    """{population: [chain, ...]}: branches of non-neuron nodes (each with one input and one
    output) that leave a neuron node and come back to it."""
    loops: dict[str, list[list[str]]] = {}
    for n in nodes:
        if not is_neuron(n):
            continue
        for start in succ[n]:
            chain, cur = [], start
            while (not is_neuron(cur) and len(succ[cur]) == 1 and len(pred[cur]) == 1
                   and cur not in chain):
                chain.append(cur)
                cur = succ[cur][0]
            if chain and cur == n:
                loops.setdefault(n, []).append(chain)
    return loops


def _refuse_other_cycles(nodes: dict, succ: dict, loops: dict, start: str) -> None:
    """Refuse any cycle left once the self-loops are taken out, naming the node of that cycle
    closest to `start` (the Input: where the feedback enters) and spelling the cycle out."""
    loop_edges = {(n, c[0]) for n, cs in loops.items() for c in cs}
    loop_edges |= {(a, b) for cs in loops.values() for c in cs for a, b in zip(c, c[1:])}
    loop_edges |= {(c[-1], n) for n, cs in loops.items() for c in cs}
    out = {k: [s for s in succ[k] if (k, s) not in loop_edges] for k in nodes}
    color = dict.fromkeys(nodes, 0)  # 0 new, 1 on the DFS path, 2 done
    cycle: list[str] = []
    for root in nodes:
        if color[root] or cycle:
            continue
        path, stack = [root], [iter(out[root])]
        color[root] = 1
        while stack and not cycle:
            nxt = next(stack[-1], None)
            if nxt is None:
                color[path.pop()] = 2
                stack.pop()
            elif color[nxt] == 1:
                cycle = path[path.index(nxt):]
            elif color[nxt] == 0:
                color[nxt] = 1
                path.append(nxt)
                stack.append(iter(out[nxt]))
    if not cycle:
        return
    dist, front = {start: 0}, [start]
    while front:  # breadth-first distance from the Input
        reached = []
        for k in front:
            for s in out[k]:
                if s not in dist:
                    dist[s] = dist[k] + 1
                    reached.append(s)
        front = reached
    first = min(range(len(cycle)), key=lambda i: (dist.get(cycle[i], len(nodes)), i))
    ring = cycle[first:] + cycle[:first]
    _refuse(ring[0], f"lies on the cycle {' -> '.join(ring + [ring[0]])}, which is not a "
                     "population's self-loop: only LIF | CubaLIF | IF -> [Delay] -> Linear | "
                     "Affine -> the same population is supported (no feedback to an earlier "
                     "population, no loop through the readout or without a weight node)")


def _merge(post: np.ndarray, pre: np.ndarray, delay: np.ndarray, w: np.ndarray, n_in: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synapses ordered by (post, pre, delay) as the trainer writes them; synapses with the
    same (post, pre, delay) (converging branches) summed; zero weights dropped."""
    post, pre = post.astype(np.int64), pre.astype(np.int64)
    delay = delay.astype(np.int64)
    key = (post * n_in + pre) * (int(delay.max(initial=0)) + 1) + delay
    uniq, inv = np.unique(key, return_inverse=True)
    if uniq.size != key.size:
        w = np.bincount(inv, weights=w, minlength=uniq.size)
        first = np.zeros(uniq.size, np.int64)
        first[inv[::-1]] = np.arange(key.size)[::-1]
        post, pre, delay = post[first], pre[first], delay[first]
    else:
        order = np.argsort(key, kind="stable")
        post, pre, delay, w = post[order], pre[order], delay[order], w[order]
    keep = w != 0
    return post[keep], pre[keep], delay[keep], w[keep]


def _synapses(parts: list[dict], gain: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Branches' dense weights -> synapse lists (post, pre, delay, gain * w), one per non-zero
    weight of each branch (not yet merged)."""
    post_l, pre_l, d_l, w_l = [], [], [], []
    for q in parts:
        post, pre = np.nonzero(q["W"])
        post_l.append(post)
        pre_l.append(pre)
        d_l.append(q["delay"][post, pre])
        w_l.append(gain[post] * q["W"][post, pre])
    return (np.concatenate(post_l), np.concatenate(pre_l), np.concatenate(d_l),
            np.concatenate(w_l))


def _recurrent_delays(chain: list[str], k: np.ndarray, W: np.ndarray, nodes: dict, dt: float,
                      target: str) -> np.ndarray:
    """A self-loop branch's Delay steps k (n, n) -> recurrent delays d (module docstring,
    "Recurrence"): no Delay node on the branch: d = 0; else d = k - 1, refused where k < 1."""
    nir = _nir()
    delay_nodes = [c for c in chain if isinstance(nodes[c], nir.Delay)]
    if not delay_nodes:
        return np.zeros_like(k)
    post, pre = np.nonzero(W)
    if post.size and k[post, pre].min() < 1:
        i = int(np.argmin(k[post, pre]))
        _refuse(delay_nodes[0], f"the self-loop of {target!r} through it has a total delay of "
                                f"{k[post[i], pre[i]] * dt:.6g} s ({k[post[i], pre[i]]} steps of "
                                f"dt = {dt:.6g} s) from neuron {pre[i]} to neuron {post[i]}, below "
                                "one step: a spike cannot return to its own population in the "
                                "step it is sent (on Loihi 2 it arrives the next step at the "
                                "earliest); make the loop's delay at least dt, or drop the Delay "
                                "node (a self-loop without Delay arrives the next step)")
    return k - 1


def layers_digest(layers) -> str:
    """sha256 of the float network of CkptLayers (synapses, weights, biases, neurons): equal
    digests mean the same float network."""
    import hashlib

    h = hashlib.sha256()
    for L in layers:
        h.update(json.dumps([L.name, L.n_in, L.n_out, L.dv, L.du, L.threshold, L.spiking,
                             L.bn is None]).encode())
        for a in (L.pre, L.post, L.delay):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        a, b = L.bn_affine()
        for arr in (L.weight, a, b):
            h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        R = getattr(L, "recurrent", None)
        if R is not None:  # only recurrent layers: feed-forward digests stay as they were
            h.update(b"recurrent")
            for a in (R.pre, R.post, R.delay):
                h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(R.weight, dtype=np.float64).tobytes())
    return h.hexdigest()


def fixed_point_network(graph_or_path, dt_ms: float | None = None) -> DeployedNetwork | None:
    """The DeployedNetwork a graph carries in its metadata (written by export.to_nir from a
    network file), after checking that its float graph is the one those integers imply
    (check_fixed_point_graph); None for a graph without that metadata (import by quantization).
    dt_ms as nir_to_checkpoint (default and check: the graph's own dt)."""
    graph, _ = read_graph(graph_or_path)
    md_dt, own = graph_metadata(graph)
    if DEPLOYED_KEY not in own:
        return None
    if md_dt is None and own.get("dt_ms"):
        md_dt = float(own["dt_ms"]) / 1000.0
    dt = _time_step(md_dt, dt_ms)
    net = deployed_from_json(own[DEPLOYED_KEY])
    check_fixed_point_graph(graph, fixed_point_graph(net, dt * 1000.0))
    return net


def read_graph(graph_or_path):
    """A nir.NIRGraph, or the path of a .nir file -> (graph, sha256 or None)."""
    nir = _nir()
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path, None
    p = Path(graph_or_path)
    if not p.is_file():
        raise ExportError(f"NIR file {p} does not exist")
    from trainer.file_io import sha256_file
    try:
        g = nir.read(str(p), type_check=False)  # shapes are checked here, per node
    except Exception as e:  # noqa: BLE001 - any reader failure is one clear error
        raise ExportError(f"{p}: cannot be read as a NIR graph ({type(e).__name__}: {e})") from e
    if not isinstance(g, nir.NIRGraph):
        raise ExportError(f"{p}: holds a single {type(g).__name__} node, not a NIR graph")
    return g, sha256_file(p)


def graph_metadata(graph) -> tuple[float | None, dict]:
    """(dt in seconds or None, the delaysnn metadata dict written by export.to_nir or {})."""
    md = graph.metadata if isinstance(graph.metadata, dict) else {}

    def plain(v):
        v = v.item() if isinstance(v, np.ndarray) and v.size == 1 else v
        v = v.item() if isinstance(v, np.generic) else v
        return v.decode() if isinstance(v, bytes) else v
    dt = md.get("dt")
    own = plain(md.get(META_KEY)) if META_KEY in md else None
    try:
        own = json.loads(own) if own else {}
    except (TypeError, ValueError) as e:
        raise ExportError(f"graph metadata {META_KEY!r} is not JSON ({e})") from e
    return (None if dt is None else float(plain(dt))), own


def _time_step(md_dt: float | None, dt_ms: float | None) -> float:
    """The step (seconds) to read a graph with: --dt-ms, else the graph's metadata 'dt'; both
    given and different, or neither, is an error."""
    if dt_ms is None and md_dt is None:
        raise ExportError("the NIR graph has no time step in its metadata ('dt'); pass the "
                          "producer's step with --dt-ms (snnTorch's export assumes 0.1 ms)")
    if dt_ms is not None and not dt_ms > 0:
        raise ExportError(f"--dt-ms must be > 0, got {dt_ms}")
    dt: float = md_dt if dt_ms is None else dt_ms / 1000.0  # type: ignore[assignment]
    if dt_ms is not None and md_dt is not None and abs(md_dt - dt) > 1e-9 * md_dt:
        raise ExportError(f"--dt-ms {dt_ms} differs from the graph's own dt "
                          f"{md_dt * 1000:g} ms; omit --dt-ms or pass {md_dt * 1000:g}")
    return dt


def nir_to_checkpoint(graph_or_path, dt_ms: float | None = None, *, lif_readout: bool = False,
                      class_names: list[str] | None = None, data_recipe: dict | None = None
                      ) -> tuple[Checkpoint, dict]:
    """NIR graph (or .nir path) -> (Checkpoint with float semantics, info dict).

    dt_ms: the time step (ms) to discretise with; None = the graph's metadata "dt" (seconds,
    written by export.to_nir); both given and different is an error. class_names / data_recipe
    default to the graph's delaysnn metadata (or class indices / {}). info holds dt, the
    per-layer decay roundings and the graph's delaysnn metadata. Raises ExportError naming the
    node for anything that cannot be mapped."""
    nir = _nir()
    graph, _ = read_graph(graph_or_path)
    md_dt, own = graph_metadata(graph)
    dt = _time_step(md_dt, dt_ms)
    nodes, edges = _flatten(dict(graph.nodes), list(graph.edges))
    neuron_types = tuple(getattr(nir, t) for t in HIDDEN_TYPES + READOUT_TYPES)
    for name, node in nodes.items():
        if node is None:
            _refuse(name, "is empty (None): the producer's exporter had no NIR mapping for that "
                          "module (Norse 1.1.0 writes its recurrent cells this way)")
        if not isinstance(node, (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.Delay)
                          + neuron_types):
            _refuse(name, f"{type(node).__name__} nodes are not supported (this importer maps "
                          "Linear/Affine/Delay branches into LIF, CubaLIF, IF, LI, CubaLI, I "
                          "neurons)")
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    pred: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise ExportError(f"NIR edge ({a!r}, {b!r}) names a node that does not exist")
        succ[a].append(b)
        pred[b].append(a)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError(f"the NIR graph must have one Input and one Output node, has inputs "
                          f"{inputs} and outputs {outputs}")

    def is_neuron(k):
        return isinstance(nodes[k], neuron_types)

    loops = _self_loops(nodes, succ, pred, is_neuron)
    _refuse_other_cycles(nodes, succ, loops, inputs[0])
    in_shape = np.asarray(nodes[inputs[0]].input_type["input"]).reshape(-1)
    if in_shape.size != 1 and int(np.prod(in_shape)) != int(in_shape.max()):
        _refuse(inputs[0], f"input shape {in_shape.tolist()} is not a 1-D channel vector")
    n_channels = int(np.prod(in_shape))

    out_name, pop, n_in = outputs[0], inputs[0], n_channels
    layers, infos, visited = [], [], {inputs[0], outputs[0]}
    while True:
        own_loop = {c[0] for c in loops.get(pop, [])}
        outs = [o for o in succ[pop] if o not in own_loop]
        if not outs:
            _refuse(pop, "leads nowhere: the chain must end at the Output node")
        if out_name in outs:
            if len(outs) > 1:
                _refuse(pop, f"feeds the Output and also {[o for o in outs if o != out_name]}; "
                             "only the last neuron population may feed the Output")
            if pop == inputs[0]:
                _refuse(out_name, "is fed by the Input directly: the graph has no neurons")
            break
        branches, target = [], None
        for o in outs:
            chain, cur = [], o  # type: ignore[var-annotated]
            while not is_neuron(cur):
                if cur == out_name:
                    _refuse(chain[-1] if chain else pop, "feeds the Output without a neuron "
                            "population; the last population must be a readout (LI)")
                if len(pred[cur]) != 1:
                    _refuse(cur, f"has several inputs {pred[cur]}; only neuron nodes may sum "
                                 "branches")
                if len(succ[cur]) != 1:
                    _refuse(cur, f"feeds several nodes {succ[cur]}; a Linear/Affine/Delay "
                                 "branch must lead to one neuron node")
                chain.append(cur)
                cur = succ[cur][0]
            if not chain:
                _refuse(cur, f"receives {pop!r} directly; a Linear or Affine node must connect "
                             "two populations")
            if target is not None and cur != target:
                _refuse(pop, f"feeds several neuron nodes ({target!r}, {cur!r}): skip "
                             "connections and parallel layers are not supported")
            target = cur
            branches.append(chain)
        assert target is not None  # outs is not empty
        rec_chains = loops.get(target, [])
        ends = sorted([c[-1] for c in branches] + [c[-1] for c in rec_chains])
        if sorted(pred[target]) != ends:
            extra = sorted(set(pred[target]) - set(ends))
            _refuse(target, f"also receives {extra}, which comes neither from {pop!r} nor from "
                            "its own self-loop: skip connections are not supported")
        n_out = _size(target, nodes[target])
        is_last = [s for s in succ[target] if s not in {c[0] for c in rec_chains}] == [out_name]
        kind = type(nodes[target]).__name__
        if not is_last and kind not in HIDDEN_TYPES:
            _refuse(target, f"{kind} does not spike; hidden populations must be LIF, CubaLIF or IF")
        spiking = not is_last
        if is_last and kind in HIDDEN_TYPES and not lif_readout:
            _refuse(target, f"the last population is a spiking {kind}, but this project reads the "
                            "readout's voltage; end the network with LI (or pass --lif-readout "
                            "to read this population's voltage and ignore its threshold)")
        if is_last and rec_chains:
            _refuse(target, f"the readout has a self-loop through {rec_chains[0]}; only hidden "
                            "(spiking) populations may be recurrent: the readout's voltage is "
                            "read and sends no spikes")
        prm = _neuron(target, nodes[target], dt, n_out, spiking)
        parts = [_branch(c, nodes, dt, n_in, n_out, target) for c in branches]
        rparts = [_branch(c, nodes, dt, n_out, n_out, target) for c in rec_chains]
        bias = sum((q["bias"] for q in parts + rparts if q["bias"] is not None), np.zeros(n_out))
        if prm["du"] != 4095 and np.any(bias != 0):
            _refuse(next(q["name"] for q in parts + rparts if q["bias"] is not None),
                    f"its bias feeds the synaptic current of {kind} {target!r}; Loihi adds biases "
                    "to the voltage, so this has no exact mapping (train without bias)")
        post, pre, delay, w = _merge(*_synapses(parts, prm["gain"]), n_in)
        b_total = prm["gain"] * bias + prm["leak_bias"]
        rec = None
        info = prm["info"]
        info.update(branches=[list(c) for c in branches], synapses=int(post.size),
                    max_delay=int(delay.max(initial=0)))
        if rec_chains:
            for c, q in zip(rec_chains, rparts):
                q["delay"] = _recurrent_delays(c, q["delay"], q["W"], nodes, dt, target)
            r_post, r_pre, r_delay, r_w = _merge(*_synapses(rparts, prm["gain"]), n_out)
            rec = RecurrentFloat(pre=r_pre, post=r_post, delay=r_delay, weight=r_w)
            info["recurrent"] = {"branches": [list(c) for c in rec_chains],
                                 "synapses": int(r_post.size),
                                 "max_delay": int(r_delay.max(initial=0))}
        layers.append(CkptLayer(
            name=target, n_in=n_in, n_out=n_out, pre=pre, post=post,
            delay=delay, weight=w, bn=None, decay=1 - prm["dv"] / 4096,
            dv=prm["dv"], threshold=prm["threshold"] if spiking else 1.0, spiking=spiking,
            bias=b_total if np.any(b_total != 0) else None, du=prm["du"], recurrent=rec))
        infos.append(info)
        visited.update([target] + [k for c in branches + rec_chains for k in c])
        pop, n_in = target, n_out
    unused = sorted(set(nodes) - visited)
    if unused:
        _refuse(unused[0], "is not on the chain from the Input to the Output")
    n_cls = layers[-1].n_out
    names = class_names if class_names is not None else own.get("class_names")
    names = [str(c) for c in names] if names else [str(c) for c in range(n_cls)]
    if len(names) != n_cls:
        raise ExportError(f"{len(names)} class names but the readout {layers[-1].name!r} has "
                          f"{n_cls} neurons")
    recipe = data_recipe if data_recipe is not None else own.get("data_recipe") or {}
    prov = own.get("provenance") or {}
    va = prov.get("checkpoint_val_accuracy")
    ck = Checkpoint(path=str(graph_or_path) if not isinstance(graph_or_path, nir.NIRGraph)
                    else "<NIRGraph>", layers=layers, class_names=names,
                    data_recipe=dict(recipe), config=dict(prov.get("config") or {}),
                    epoch=int(prov.get("checkpoint_epoch", -1)),
                    val_accuracy=None if va is None else float(va))
    return ck, {"dt_s": dt, "dt_ms": dt * 1000.0, "discretisation": "forward Euler",
                "layers": infos, "delaysnn_metadata": own}


def export_nir(path, dt_ms: float | None = None, profile: str = "loihi2", *,
               lif_readout: bool = False, class_names: list[str] | None = None,
               data_recipe: dict | None = None, calibration=None, evaluation=None,
               **export_kw) -> tuple[DeployedNetwork, dict]:
    """A .nir file -> (DeployedNetwork, report), as export.to_lava.export_checkpoint for a
    checkpoint. Calibration / evaluation features: passed in ((N, T, C) or (features, labels)),
    or rebuilt from `data_recipe` (default: the recipe export.to_nir stored in the graph).
    A graph written by export.to_nir carries its checkpoint's provenance and the digest of its
    float network: when the imported network still has that digest, the deployed network equals
    the one export.to_lava makes from that checkpoint, byte for byte; a graph changed since
    records the checkpoint as "derived_from".
    export_kw: num_message_bits, headroom, eval_split, max_calibration, max_eval, cache_dir,
    progress, netx_exact (as export_checkpoint).
    A graph export.to_nir wrote from a network file carries that fixed-point network
    (fixed_point_network): it is returned as it is, after the consistency check, with no
    quantization (calibration, evaluation and export_kw are not used; the report's not_used
    says so when calibration features were given);
    `profile` and `class_names` must then be the network's own."""
    from export.to_lava import export_loaded

    graph, sha = read_graph(path)
    net = fixed_point_network(graph, dt_ms)
    if net is not None:
        return net, _fixed_point_report(net, graph, sha, profile, class_names,
                                        unused=calibration is not None)
    ck, info = nir_to_checkpoint(graph, dt_ms, lif_readout=lif_readout,
                                 class_names=class_names, data_recipe=data_recipe)
    ck.path = "<NIRGraph>" if sha is None else str(path)
    if calibration is None and not ck.data_recipe:
        raise ExportError("no calibration features: pass --features FILE.npz or --dataset NAME "
                          "(the graph carries no data recipe)")
    own = info["delaysnn_metadata"]
    prov = own.get("provenance")
    if prov is not None and own.get("layers_sha256") != layers_digest(ck.layers):
        # written by export.to_nir, then changed: the checkpoint's provenance no longer holds
        prov = {"derived_from": prov}
    elif prov is not None:
        prov = dict(prov)
    if prov is None or "derived_from" in prov:
        prov = {"exporter": EXPORTER, "nir_sha256": sha, "config": ck.config,
                "data_recipe": ck.data_recipe,
                "nir_import": {k: info[k] for k in ("dt_ms", "discretisation", "layers")},
                **(prov or {})}
    source = {"path": ck.path, "sha256": sha, "epoch": ck.epoch,
              "val_accuracy": ck.val_accuracy}
    net, report = export_loaded(ck, profile, provenance=prov, source=source,
                                calibration=calibration, evaluation=evaluation, **export_kw)
    report["nir"] = {k: info[k] for k in ("dt_ms", "discretisation", "layers")}
    return net, report


def _fixed_point_report(net: DeployedNetwork, graph, sha, profile: str,
                        class_names: list[str] | None, unused: bool) -> dict:
    """The report of an exact import (export_nir); refuses a profile or class names other than
    the network's own."""
    from deployed.netx_h5 import netx_problems
    from hw_profiles import load_profile

    prof = load_profile(profile)
    if prof.name != net.profile_name:
        raise ExportError(f"the graph carries a fixed-point network for profile "
                          f"{net.profile_name!r}, not {prof.name!r}: pass --profile "
                          f"{net.profile_name} (to re-quantize for another profile, export the "
                          "checkpoint it came from)")
    if class_names is not None and list(class_names) != list(net.class_names):
        raise ExportError(f"class names {list(class_names)} differ from the fixed-point "
                          f"network's {net.class_names} in the graph's metadata; omit them")
    problems = netx_problems(net)
    _, own = graph_metadata(graph)
    return {"exact": True, "nir_sha256": sha, "dt_ms": own.get("dt_ms"),
            "nodes": len(graph.nodes), "layers": len(net.layers),
            "synapses": int(sum(L.n_synapses for L in net.layers)),
            "profile": {"name": net.profile_name, "version": net.profile_version},
            "layer_start": net.layer_start, "netx": {"complete": not problems,
                                                     "problems": problems},
            "not_used": ("calibration features (and quantization options): the "
                         "graph carries the fixed-point network") if unused else None}


def load_features(path) -> tuple[np.ndarray, np.ndarray | None]:
    """An .npz holding `x` (N, T, C) float features and optionally `y` (N,) labels."""
    p = Path(path)
    if not p.is_file():
        raise ExportError(f"features file {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as f:
            if "x" not in f:
                raise ExportError(f"{p} has no array 'x' (features (N, T, C)); it has "
                                  f"{sorted(f.files)}")
            return f["x"], (f["y"] if "y" in f else None)
    except (OSError, ValueError) as e:
        raise ExportError(f"{p}: cannot be read as .npz ({e})") from e


def build_parser(prog: str = "python -m export.from_nir") -> argparse.ArgumentParser:
    from delaysnn.options import add_deprecated, new_parser
    from export.to_lava import add_export_options

    ap = new_parser(prog, __doc__)
    ap.add_argument("graph", help="NIR file (.nir, written by nir.write)")
    ap.add_argument("--dt-ms", type=float, default=None,
                    help="time step (ms) used to discretise; default: the graph's metadata "
                         "'dt' (snnTorch's export assumes 0.1 ms)")
    ap.add_argument("--lif-readout", action="store_true",
                    help="take a final spiking LIF/CubaLIF/IF as the readout (voltage read, "
                         "threshold ignored)")
    ap.add_argument("--features", default=None, metavar="FILE.npz",
                    help=".npz with x (N, T, C) [and y]: calibration (and evaluation) features "
                         "(default: none; pass --features or --dataset)")
    ap.add_argument("--eval-features", default=None, metavar="FILE.npz",
                    help=".npz with x [and y] for the accuracy report (default: --features)")
    data = ap.add_argument("--dataset", default=None,
                           help="calibrate on this trainer.data dataset instead (shd, ssc, "
                                "fsdd, ...; default: none, pass --features or --dataset)")
    add_deprecated(ap, "--data", data)
    ap.add_argument("--data-dir", default=None,
                    help="data folder for --dataset (default: the data layer's default)")
    ap.add_argument("--time-steps", type=int, default=100, help="steps per sample for --dataset")
    ap.add_argument("--class-names", default=None,
                    help="comma-separated class names (default: the dataset's or the graph's, "
                         "else 0..n-1)")
    add_export_options(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    from deployed import netx_h5
    from export.report import format_report
    from export.to_lava import outputs_have_folders
    from trainer.file_io import write_json_atomic

    a = build_parser().parse_args(argv)
    out = Path(a.out)
    if not outputs_have_folders(out, a.json):
        return 2
    try:
        if a.features and a.dataset:
            raise ExportError("pass --features or --dataset, not both")
        kw = dict(num_message_bits=a.num_message_bits, headroom=a.headroom,
                  eval_split=a.eval_split, max_eval=a.max_eval,
                  max_calibration=a.max_calibration, progress=True, netx_exact=a.netx_exact)
        calibration = evaluation = recipe = None
        names = a.class_names.split(",") if a.class_names else None
        if a.features:
            calibration = load_features(a.features)
            evaluation = load_features(a.eval_features) if a.eval_features else calibration
            if evaluation[1] is None:
                evaluation = evaluation[0]  # type: ignore[assignment]
        elif a.dataset:
            from trainer.data import load_dataset
            ds = load_dataset(a.dataset, "train", a.data_dir, time_steps=a.time_steps)
            recipe, calibration = ds.recipe, (ds.x.numpy(), ds.y.numpy())
            names = names or list(ds.class_names)
        if a.no_eval:
            evaluation = False  # type: ignore[assignment]
        with warnings.catch_warnings():
            net, report = export_nir(a.graph, a.dt_ms, a.profile, lif_readout=a.lif_readout,
                                     class_names=names, data_recipe=recipe,
                                     calibration=calibration, evaluation=evaluation, **kw)
        netx_h5.save(net, out)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["output"] = str(out)
    if report.get("exact"):
        print(f"wrote {out}: the fixed-point network carried in the graph's metadata (exact, no "
              f"quantization; float graph checked against it): {report['layers']} layers, "
              f"{report['synapses']} synapses, profile {report['profile']['name']}, layer_start "
              f"{report['layer_start']}" + (f"; not used: {report['not_used']}"
                                            if report["not_used"] else ""))
        if a.json:
            write_json_atomic(report, Path(a.json), sort_keys=True)
        return 0
    print(format_report(report))
    print(f"NIR import: dt {report['nir']['dt_ms']:g} ms, {report['nir']['discretisation']}; "
          + "; ".join(f"{L['node']} ({L['type']}) decay {L['decay_exact']:.6g} -> "
                      f"{L['decay']:.6g}" for L in report["nir"]["layers"]))
    if a.json:
        write_json_atomic(report, Path(a.json), sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
