"""Recorded activity of one run of a DeployedNetwork (Lava backends or the emulator).

Every backend returns this, the budget estimator reads it. Times are window steps: each sample
is run for `steps = T + latency` steps of its own (padding for delay buffers excluded);
input step t (0..T-1) is sent at window step t. Hidden layer i (0-based) starts from zero state
at window step i + 1 (its first input; values before are 0), so its spikes at window step
t + i + 1 are the trained model's layer-i spikes at step t, and the readout voltage at window
step t + latency is the trained model's readout at step t (deployed.emulator.aligned cuts
out that view).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from deployed.network import DeployedNetwork


@dataclass
class Activity:
    input_payload: np.ndarray  # (N, T, C) int64 graded payloads sent
    spikes: list[np.ndarray]  # per spiking (hidden) layer: (N, steps, n) uint8 0/1
    readout_v: np.ndarray  # (N, steps, n_classes) int64, raw Lava voltage v (float64 for the
    #                        lava-float backend, in the same units)
    backend: str
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.readout_v.shape[0])

    def scores(self, net: DeployedNetwork) -> np.ndarray:
        """(N, n_classes): sum over the T aligned steps of softmax(v * v_scale)."""
        L, T = net.latency, net.input.time_steps
        v = self.readout_v[:, L:L + T, :].astype(np.float64) * net.readout.neurons.v_scale
        v = v - v.max(axis=-1, keepdims=True)
        e = np.exp(v)
        return (e / e.sum(axis=-1, keepdims=True)).sum(axis=1)

    def predictions(self, net: DeployedNetwork) -> np.ndarray:
        return self.scores(net).argmax(axis=1)

    def spike_counts(self) -> list[int]:
        """Total spikes per hidden layer over all samples."""
        return [int(s.sum()) for s in self.spikes]
