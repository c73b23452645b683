"""Recorded activity of one run of a DeployedNetwork (Lava backends or the emulator).

Every backend returns this, the budget estimator reads it. Times are window steps: each sample
is run for `steps = T + latency` steps of its own (padding for delay buffers excluded);
input step t (0..T-1) is sent at window step t. Layer i (0-based) starts from zero state at
window step net.start_step(i) (values before are 0): i + 1, its first input, for networks
exported from checkpoints, so its spikes at window step t + i + 1 are the trained model's
layer-i spikes at step t, and the readout voltage at window step t + latency is the trained
model's readout at step t (deployed.emulator.aligned cuts out that view); 0 for networks
imported from netx (docs/design.md section 8).

Predictions: argmax over classes of the summed softmax of the readout voltage (a non-spiking
readout, as trained), or of the output layer's spike counts over the whole window when the
output layer spikes (networks from netx; ties go to the lowest class index).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deployed.network import DeployedNetwork


@dataclass
class Activity:
    """Spikes and readout voltages of N samples on one backend (module docstring: time axes)."""

    input_payload: np.ndarray  # (N, T, C) int64 graded payloads sent
    spikes: list[np.ndarray]  # per spiking layer (the hidden ones, then a spiking output
    #                           layer): (N, steps, n) uint8 0/1
    readout_v: np.ndarray  # (N, steps, n_out) int64: the last layer's raw Lava voltage v (after
    #                        the spike reset for a spiking output; float64 for lava-float)
    backend: str
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.readout_v.shape[0])

    def scores(self, net: DeployedNetwork) -> np.ndarray:
        """(N, n_classes): sum over the T aligned steps of softmax(v * v_scale); for a spiking
        output layer, its spike count per class over the whole window (float64)."""
        if net.readout.neurons.spiking:
            return self.spikes[-1].sum(axis=1, dtype=np.int64).astype(np.float64)
        L, T = net.latency, net.input.time_steps
        v = self.readout_v[:, L:L + T, :].astype(np.float64) * net.readout.neurons.v_scale
        v = v - v.max(axis=-1, keepdims=True)
        e = np.exp(v)
        return (e / e.sum(axis=-1, keepdims=True)).sum(axis=1)

    def predictions(self, net: DeployedNetwork) -> np.ndarray:
        return self.scores(net).argmax(axis=1)

    def spike_counts(self) -> list[int]:
        """Total spikes per spiking layer over all samples."""
        return [int(s.sum()) for s in self.spikes]

    def save(self, path, net: DeployedNetwork | None = None) -> None:
        """Write to a .npz file atomically (temp file, then rename); `extra` is not kept.
        Arrays: input_payload, readout_v, spikes_0.. (one per spiking layer), backend, seconds;
        with `net` whose output layer spikes also output_spikes (N, steps, n_out) uint8, the
        output layer's spikes (the same as the last spikes_i) for readers that do not count
        layers; row k = window step k, so output_spikes[:, :T] is what a T-step run records."""
        path = Path(path)
        extra = {}
        if net is not None and net.readout.neurons.spiking:
            if len(self.spikes) != net.n_spiking:
                raise ValueError(f"activity holds {len(self.spikes)} spiking layers, the network "
                                 f"{net.n_spiking}: it was not recorded from this network")
            extra["output_spikes"] = self.spikes[-1]
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, input_payload=self.input_payload, readout_v=self.readout_v,
                                    backend=np.array(self.backend), seconds=np.array(self.seconds),
                                    **{f"spikes_{i}": s for i, s in enumerate(self.spikes)},
                                    **extra)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path) -> "Activity":
        """Read a file written by `save`; ValueError in one line when it is not one."""
        try:
            with np.load(path, allow_pickle=False) as z:
                n = sum(1 for k in z.files if k.startswith("spikes_"))
                return cls(input_payload=z["input_payload"], readout_v=z["readout_v"],
                           spikes=[z[f"spikes_{i}"] for i in range(n)],
                           backend=str(z["backend"]), seconds=float(z["seconds"]))
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"activity file {path} is not one written by Activity.save "
                             f"(`python -m lava_runtime run --save-activity`): {e}") from e


def outputs_match(a: Activity, b: Activity) -> np.ndarray:
    """(N,) bool: sample i has identical hidden spikes and readout voltage in both."""
    same = np.all(a.readout_v == b.readout_v, axis=(1, 2))
    for sa, sb in zip(a.spikes, b.spikes):
        same &= np.all(sa == sb, axis=(1, 2))
    return same


def output_spikes_match(a: Activity, b: Activity) -> np.ndarray:
    """(N,) bool: sample i has identical spikes of the last spiking layer (the output layer of
    a network whose output spikes) on every step in both."""
    return np.all(a.spikes[-1] == b.spikes[-1], axis=(1, 2))


def first(act: Activity, n: int) -> Activity:
    """The first n samples of an Activity."""
    return Activity(input_payload=act.input_payload[:n], spikes=[s[:n] for s in act.spikes],
                    readout_v=act.readout_v[:n], backend=act.backend)
