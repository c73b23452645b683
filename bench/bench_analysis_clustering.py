"""Speed of the E/I clustering statistic (trainer.analysis.ei_clustering).

Prints (1) the full reference-sized case: a dense 40-input x 256-neuron layer with K = 25
(256,000 synapses), k = 8, 200 shuffles; (2) a ratio against a per-synapse baseline (distances
from each synapse to all synapses of its neuron, sorted; signs compared in a Python loop per
shuffle) on the same subset of neurons, measured in this run.

    .venv/bin/python bench/bench_analysis_clustering.py [--subset 4] [--shuffles 200]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from trainer.checkpoint import LayerSynapses
from trainer.analysis.ei_clustering import sign_clustering


def dense_layer(n_in: int, n_out: int, k_taps: int, seed: int = 0) -> LayerSynapses:
    post, pre, delay = (a.ravel() for a in np.meshgrid(np.arange(n_out), np.arange(n_in),
                                                       np.arange(k_taps), indexing="ij"))
    w = np.random.default_rng(seed).normal(size=post.size)
    return LayerSynapses("fc1", n_in, n_out, pre, post, delay, w)


def baseline(layer: LayerSynapses, k: int, n_shuffles: int, seed: int) -> tuple[float, np.ndarray]:
    """Per-synapse loops: the straightforward implementation of the same definition."""
    sign = np.sign(layer.weight)
    pairs = []
    for j in range(layer.n_out):
        idx = np.flatnonzero(layer.post == j)
        xy = np.column_stack([layer.pre[idx], layer.delay[idx]]).astype(float)
        for a in range(idx.size):
            d = np.hypot(*(xy - xy[a]).T)
            d[a] = np.inf
            r = np.sort(d)[min(k, idx.size - 1) - 1]
            pairs += [(idx[a], idx[b]) for b in np.flatnonzero(d <= r + 1e-9)]
    rng = np.random.default_rng(seed)
    observed = np.mean([sign[i] == sign[m] for i, m in pairs])
    null = np.empty(n_shuffles)
    for t in range(n_shuffles):
        s = sign.copy()
        for j in range(layer.n_out):
            idx = np.flatnonzero(layer.post == j)
            s[idx] = s[rng.permutation(idx)]
        null[t] = np.mean([s[i] == s[m] for i, m in pairs])
    return float(observed), null


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", type=int, default=4, help="neurons in the baseline comparison")
    ap.add_argument("--shuffles", type=int, default=200)
    args = ap.parse_args()

    full = dense_layer(40, 256, 25)
    t = time.perf_counter()
    res = sign_clustering(full, k=8, n_shuffles=args.shuffles)
    t_full = time.perf_counter() - t
    print(f"dense 40x256, K=25: {res.n_synapses} synapses, {res.n_pairs} pairs, "
          f"{args.shuffles} shuffles: {t_full:.2f} s (z = {res.z:.2f})")

    sub = dense_layer(40, args.subset, 25)
    t = time.perf_counter()
    fast = sign_clustering(sub, k=8, n_shuffles=args.shuffles)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    obs, _ = baseline(sub, 8, args.shuffles, 0)
    t_base = time.perf_counter() - t
    assert abs(obs - fast.observed) < 1e-12, (obs, fast.observed)
    print(f"subset {args.subset} neurons ({sub.pre.size} synapses): vectorised {t_fast:.3f} s, "
          f"per-synapse baseline {t_base:.2f} s, ratio {t_base / t_fast:.0f}x "
          f"(same observed fraction {obs:.4f})")


if __name__ == "__main__":
    main()
