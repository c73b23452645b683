"""NIR graphs for the NIR tests, and an independent reference simulation of NIR's equations.

`simulate_nir` walks any feed-forward NIR graph step by step with forward Euler, straight from
the node equations (nir/ir/neuron.py), with no knowledge of export.from_nir's folding of gains
and biases: it is the float model that from_nir's import must reproduce.
"""
from __future__ import annotations

import numpy as np


def simulate_nir(graph, x: np.ndarray, dt: float) -> dict:
    """x (N, T, C) -> {node name: (N, T, n) output of that node} (spikes for LIF/CubaLIF/IF,
    voltage for LI/CubaLI/I). Euler: v += dt/tau (v_leak - v + R I); CubaLIF updates its
    current first: i += dt/tau_syn (-i + w_in I), then v with R i."""
    import nir

    nodes, edges = graph.nodes, graph.edges
    pred = {k: [a for a, b in edges if b == k] for k in nodes}
    order, done = [], set()
    while len(order) < len(nodes):
        for k in nodes:
            if k not in done and all(p in done for p in pred[k]):
                order.append(k)
                done.add(k)
    N, T, _ = x.shape
    out = {k: [] for k in nodes}
    state: dict = {}
    for t in range(T):
        val = {}
        for k in order:
            node = nodes[k]
            inp = sum(val[p] for p in pred[k]) if pred[k] else None
            if isinstance(node, nir.Input):
                y = x[:, t]
            elif isinstance(node, nir.Affine):
                y = inp @ node.weight.T + node.bias
            elif isinstance(node, nir.Linear):
                y = inp @ node.weight.T
            elif isinstance(node, nir.Delay):
                steps = np.rint(np.asarray(node.delay) / dt).astype(int)
                hist = state.setdefault(k, [])
                hist.append(inp)
                y = np.stack([hist[t - s][:, c] if t - s >= 0 else np.zeros(N)
                              for c, s in enumerate(steps)], axis=1)
            elif isinstance(node, (nir.LIF, nir.LI)):
                v = state.get(k, np.zeros_like(inp))
                v = v + dt / node.tau * (node.v_leak - v + node.r * inp)
                if isinstance(node, nir.LIF):
                    z = (v > node.v_threshold).astype(np.float64)
                    v = np.where(z > 0, node.v_reset, v)
                    y = z
                else:
                    y = v
                state[k] = v
            elif isinstance(node, (nir.CubaLIF, nir.CubaLI)):
                i, v = state.get(k, (np.zeros_like(inp), np.zeros_like(inp)))
                i = i + dt / node.tau_syn * (-i + node.w_in * inp)
                v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i)
                if isinstance(node, nir.CubaLIF):
                    z = (v > node.v_threshold).astype(np.float64)
                    v = np.where(z > 0, node.v_reset, v)
                    y = z
                else:
                    y = v
                state[k] = (i, v)
            elif isinstance(node, nir.Output):
                y = inp
            else:
                raise TypeError(f"reference simulation has no rule for {type(node).__name__}")
            val[k] = y
            out[k].append(y)
    return {k: np.stack(v, axis=1) for k, v in out.items() if v}


def delay_graph(seed=0, n_in=6, n_hidden=10, n_out=3, dt=1e-3):
    """Input -> three branches (no delay; Delay 2 steps -> Linear; Linear -> Delay per output
    neuron) -> LIF (v_leak != 0) -> Affine -> LI -> Output. Time constants give decays that
    are exact 12-bit fractions (dt/tau = 1/8 and 1/4), so float spikes match exactly."""
    import nir

    rng = np.random.default_rng(seed)
    W = [rng.normal(0.4, 0.6, (n_hidden, n_in)) for _ in range(3)]
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "w0": nir.Linear(weight=W[0]),
        "d2": nir.Delay(delay=np.full(n_in, 2 * dt)),
        "w2": nir.Linear(weight=W[1]),
        "w_post": nir.Linear(weight=W[2]),
        "d_post": nir.Delay(delay=dt * rng.integers(0, 4, n_hidden).astype(np.float64)),
        "lif": nir.LIF(tau=np.full(n_hidden, 8 * dt), r=np.full(n_hidden, 1.5),
                       v_leak=np.full(n_hidden, 0.2), v_threshold=np.full(n_hidden, 1.0),
                       v_reset=np.zeros(n_hidden)),
        "fc_out": nir.Affine(weight=rng.normal(0, 1.0, (n_out, n_hidden)),
                             bias=rng.normal(0, 0.1, n_out)),
        "readout": nir.LI(tau=np.full(n_out, 4 * dt), r=np.full(n_out, 2.0),
                          v_leak=np.zeros(n_out)),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("input", "w0"), ("w0", "lif"), ("input", "d2"), ("d2", "w2"), ("w2", "lif"),
             ("input", "w_post"), ("w_post", "d_post"), ("d_post", "lif"),
             ("lif", "fc_out"), ("fc_out", "readout"), ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)
