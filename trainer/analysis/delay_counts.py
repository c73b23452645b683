"""Connections per delay (steps), split by the sign of the weight."""
from __future__ import annotations

from typing import Any

import numpy as np

from trainer.checkpoint import LayerSynapses


def connections_per_delay(layer: LayerSynapses, kernel_size: int) -> dict[str, Any]:
    """Counts of synapses at each delay 0..K-1 (steps), over the checkpoint's synapse list.

    Returns {"total", "excitatory" (w > 0), "inhibitory" (w < 0), "zero_weight" (w == 0)}:
    int lists of length K (total = the sum of the other three), plus "mean_abs_weight" per
    delay (None where no synapse has that delay).
    """
    if layer.delay.size and int(layer.delay.max()) >= kernel_size:
        raise ValueError(f"layer {layer.name!r} has delay {int(layer.delay.max())} >= "
                         f"kernel size {kernel_size}")
    d, w = layer.delay, layer.weight

    def count(mask: np.ndarray) -> list[int]:
        return np.bincount(d[mask], minlength=kernel_size).astype(int).tolist()

    total = np.bincount(d, minlength=kernel_size)
    abs_sum = np.bincount(d, weights=np.abs(w), minlength=kernel_size)
    mean_abs = [float(a / n) if n else None for a, n in zip(abs_sum, total)]
    return {"total": total.astype(int).tolist(), "excitatory": count(w > 0),
            "inhibitory": count(w < 0), "zero_weight": count(w == 0),
            "mean_abs_weight": mean_abs}
