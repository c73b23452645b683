"""NIR graphs for the NIR tests, and an independent reference simulation of NIR's equations.

`simulate_nir` walks a NIR graph step by step with forward Euler, straight from the node
equations (nir/ir/neuron.py), with no knowledge of export.from_nir's folding of gains and
biases: it is the float model that from_nir's import must reproduce. Cycles are discretised the
way export.from_nir documents: a Delay node of at least one step (every channel) is causal on
its own (its output at step t is its input at t - k), and a cycle without one is broken by one
step (the node that closes it reads the previous step's value). `simulate_checkpoint` runs a
Checkpoint's float model (trainer.checkpoint semantics, recurrent synapses included) with plain
loops, independently of export.float_reference.
"""
from __future__ import annotations

import numpy as np


def _steps(node, dt: float) -> np.ndarray:
    return np.rint(np.asarray(node.delay, dtype=np.float64) / dt).astype(int)


def _width(node) -> int:
    for key in ("weight", "tau", "tau_mem", "r", "delay"):
        if hasattr(node, key):
            a = np.asarray(getattr(node, key))
            return int(a.shape[0]) if a.ndim else 1
    raise TypeError(f"no output width for {type(node).__name__}")


def simulate_nir(graph, x: np.ndarray, dt: float) -> dict:
    """x (N, T, C) -> {node name: (N, T, n) output of that node} (spikes for LIF/CubaLIF/IF,
    voltage for LI/CubaLI/I). Euler: v += dt/tau (v_leak - v + R I); CubaLIF updates its
    current first: i += dt/tau_syn (-i + w_in I), then v with R i. Cycles: module docstring."""
    import nir

    nodes, edges = graph.nodes, graph.edges
    pred = {k: [a for a, b in edges if b == k] for k in nodes}
    causal = {k for k, v in nodes.items() if isinstance(v, nir.Delay) and _steps(v, dt).min() >= 1}
    deps = {k: [] if k in causal else pred[k] for k in nodes}
    order, done, late = [], set(), set()  # late: (source, target) edges read one step late
    while len(order) < len(nodes):
        ready = [k for k in nodes if k not in done and all(p in done for p in deps[k])]
        if not ready:  # a cycle without a causal Delay: the first waiting node closes it
            k = next(k for k in nodes if k not in done)
            late |= {(p, k) for p in deps[k] if p not in done}
            ready = [k]
        for k in ready:
            order.append(k)
            done.add(k)
    N, T, _ = x.shape
    out = {k: [] for k in nodes}
    state: dict = {}
    # a late edge's value before step 0: what its source sends without input (an Affine: bias)
    prev = {k: np.zeros((N, _width(v))) + (v.bias if isinstance(v, nir.Affine) else 0)
            for k, v in nodes.items() if not isinstance(v, (nir.Input, nir.Output))}
    for t in range(T):
        val = {}
        for k in order:
            node = nodes[k]
            srcs = [prev[p] if (p, k) in late else val.get(p) for p in pred[k]]
            inp = sum(srcs) if pred[k] and k not in causal else None
            if isinstance(node, nir.Input):
                y = x[:, t]
            elif isinstance(node, nir.Affine):
                y = inp @ node.weight.T + node.bias
            elif isinstance(node, nir.Linear):
                y = inp @ node.weight.T
            elif isinstance(node, nir.Delay):
                steps = _steps(node, dt)
                hist = state.setdefault(k, [])
                if k not in causal:
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
        for k in causal:  # a causal Delay records its input once the step is computed
            state.setdefault(k, []).append(sum(val[p] for p in pred[k]))
        prev.update({k: v for k, v in val.items() if k in prev})
    return {k: np.stack(v, axis=1) for k, v in out.items() if v}


def simulate_checkpoint(ck, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Float model of a Checkpoint (trainer.checkpoint: CkptLayer, RecurrentFloat) on x
    (N, T, C), plain loops: I[t] = a * sum_ff w x[t - d] + b + sum_rec w s[t - 1 - d];
    i[t] = current_decay i[t-1] + I[t] - b and v[t] = decay v[t-1] + i[t] + b (du < 4095), else
    v[t] = decay v[t-1] + I[t]; spike v > threshold, v = 0. Returns (hidden spikes per layer
    (N, T, n), readout voltage (N, T, K))."""
    h = np.asarray(x, dtype=np.float64)
    N, T, _ = h.shape
    spikes = []
    for L in ck.layers:
        a, b = L.bn_affine()
        I_ff = np.zeros((N, T, L.n_out))
        for pre, post, d, w in zip(L.pre, L.post, L.delay, L.weight * a[L.post]):
            I_ff[:, d:, post] += w * h[:, :T - d, pre]
        R = L.recurrent
        v, cur = np.zeros((N, L.n_out)), np.zeros((N, L.n_out))
        out = np.zeros((N, T, L.n_out))
        for t in range(T):
            I_t = I_ff[:, t] + b
            if R is not None:
                for pre, post, d, w in zip(R.pre, R.post, R.delay, R.weight):
                    if t - 1 - d >= 0:
                        I_t[:, post] += w * out[:, t - 1 - d, pre]
            if L.du == 4095:
                v = L.decay * v + I_t
            else:
                cur = L.current_decay * cur + (I_t - b)
                v = L.decay * v + cur + b
            if L.spiking:
                s = v > L.threshold
                out[:, t] = s
                v = np.where(s, 0.0, v)
            else:
                out[:, t] = v
        if L.spiking:
            spikes.append(out.astype(np.uint8))
        h = out
    return spikes, h


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
