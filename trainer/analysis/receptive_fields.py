"""Signed receptive fields in (input channel, delay) space.

The receptive field of postsynaptic neuron j is the (n_in, K) array
`rf[c, d] = sum of the weights of j's synapses with pre = c and delay = d` (float, the
checkpoint's weight units; delays in steps). Positive = excitatory, negative = inhibitory.
"""
from __future__ import annotations

import numpy as np

from trainer.checkpoint import LayerSynapses


def merged_sites(layer: LayerSynapses) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Synapses merged per (post, pre, delay) site: (post, pre, delay, summed weight).

    Several synapses at one site act as one (their weights add); the result is sorted by
    (post, pre, delay). Sites whose summed weight is exactly 0 are kept here (callers decide).
    """
    if layer.pre.size == 0:
        e = np.zeros(0, np.int64)
        return e, e, e, np.zeros(0)
    k = int(layer.delay.max()) + 1
    key = (layer.post * layer.n_in + layer.pre) * k + layer.delay
    uniq, inverse = np.unique(key, return_inverse=True)
    w = np.bincount(inverse, weights=layer.weight, minlength=uniq.size)
    post, rest = np.divmod(uniq, layer.n_in * k)
    pre, delay = np.divmod(rest, k)
    return post, pre, delay, w


def receptive_fields(layer: LayerSynapses, kernel_size: int,
                     neurons: np.ndarray | list[int] | None = None) -> np.ndarray:
    """(len(neurons), n_in, K) float64 signed receptive fields (all neurons if None)."""
    neurons = np.arange(layer.n_out) if neurons is None else np.asarray(neurons, np.int64)
    if layer.delay.size and int(layer.delay.max()) >= kernel_size:
        raise ValueError(f"layer {layer.name!r} has delay {int(layer.delay.max())} >= "
                         f"kernel size {kernel_size}")
    slot = np.full(layer.n_out, -1, np.int64)
    slot[neurons] = np.arange(neurons.size)
    keep = slot[layer.post] >= 0
    flat = (slot[layer.post[keep]] * layer.n_in + layer.pre[keep]) * kernel_size + layer.delay[keep]
    rf = np.bincount(flat, weights=layer.weight[keep],
                     minlength=neurons.size * layer.n_in * kernel_size)
    return rf.reshape(neurons.size, layer.n_in, kernel_size)


def total_abs_weight(layer: LayerSynapses) -> np.ndarray:
    """(n_out,) sum of |weight| over each neuron's synapses."""
    return np.bincount(layer.post, weights=np.abs(layer.weight), minlength=layer.n_out)


def most_active_neurons(layer: LayerSynapses, n: int) -> np.ndarray:
    """Up to `n` neuron indices ranked by total |weight| (descending; ties: lower index first).

    "Most active" is a weight proxy (no input data is run): neurons whose total |weight| is 0
    are never chosen.
    """
    if n < 1:
        raise ValueError(f"number of neurons to show must be >= 1, got {n}")
    score = total_abs_weight(layer)
    order = np.lexsort((np.arange(layer.n_out), -score))
    order = order[score[order] > 0]
    return order[:n]
