"""A small lava-dl network made the way lava-dl users make one: SLAYER CUBA Dense blocks trained
with BPTT on CPU, written by lava-dl's own `export_hdf5` (the netx file that
`python -m export.from_netx` converts). Used by experiments/lava_dl_example.py; it lives here
because this unit is the only one that imports Lava's packages (lava-dl included).

    model = SlayerClassifier(n_in=16, hidden=24, n_classes=4, max_init_delay=10, seed=0)
    history = train(model, x, y, epochs=30)      # x (N, T, C) 0/1 spikes, y (N,) classes
    predict(model, x)                            # (N,) classes: most output spikes
    model.export_hdf5("net.net")

Block 0 learns one axonal delay per hidden neuron (delay=True, started at random whole steps in
0..max_init_delay; lava-dl's export writes whole steps); block 1 is the spiking output layer.
Loss: slayer.loss.SpikeRate (the true class's neuron spikes on `true_rate` of the steps, the
others on `false_rate`); the class is the output neuron with most spikes (slayer.classifier.Rate).
"""
from __future__ import annotations

import time

import numpy as np
import torch

NEURON = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.1,
          "requires_grad": False}  # SLAYER CUBA parameters (threshold in weight units)


class SlayerClassifier(torch.nn.Module):
    """Dense(n_in -> hidden, learnable axonal delays) -> Dense(hidden -> n_classes), CUBA."""

    def __init__(self, n_in: int, hidden: int, n_classes: int, max_init_delay: int = 10,
                 seed: int = 0, neuron: dict | None = None):
        from lava.lib.dl import slayer

        super().__init__()
        torch.manual_seed(seed)
        params = dict(NEURON if neuron is None else neuron)
        first = slayer.block.cuba.Dense(params, n_in, hidden, weight_scale=2, weight_norm=True,
                                        delay=True)
        last = slayer.block.cuba.Dense(params, hidden, n_classes, weight_scale=2,
                                       weight_norm=True)
        self.blocks = torch.nn.ModuleList([first, last])
        self._chain = [first, last]  # the same modules, typed for the calls below
        self(torch.zeros(1, n_in, 4))  # the delay module sizes itself on the first call
        d = first.delay.delay
        rng = np.random.default_rng(seed)
        d.data = torch.tensor(rng.integers(0, max_init_delay + 1, d.shape[0]), dtype=d.dtype)

    def forward(self, x):
        """x (N, C, T) float spikes (SLAYER's layout) -> output spikes (N, n_classes, T)."""
        for b in self._chain:
            x = b(x)
        return x

    def export_hdf5(self, path) -> None:
        """lava-dl's export: layer/<i> written by each block's own export_hdf5."""
        import h5py

        with h5py.File(path, "w") as h:
            layer = h.create_group("layer")
            for i, b in enumerate(self._chain):
                b.export_hdf5(layer.create_group(f"{i}"))


def _layout(x: np.ndarray):
    """(N, T, C) numpy -> (N, C, T) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 2, 1)))


def predict(model: SlayerClassifier, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N,) classes of SLAYER's float simulation: the output neuron with most spikes."""
    from lava.lib.dl import slayer

    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(slayer.classifier.Rate.predict(model(_layout(x[i:i + batch]))).numpy())
    return np.concatenate(out).astype(np.int64)


def train(model: SlayerClassifier, x: np.ndarray, y: np.ndarray, epochs: int = 30,
          batch: int = 32, lr: float = 0.003, true_rate: float = 0.3, false_rate: float = 0.02,
          seed: int = 0) -> list[dict]:
    """Adam on slayer.loss.SpikeRate; returns per epoch {"epoch", "loss", "train_accuracy",
    "seconds"}."""
    from lava.lib.dl import slayer

    gen = torch.Generator().manual_seed(seed)
    loss_f = slayer.loss.SpikeRate(true_rate=true_rate, false_rate=false_rate,
                                   reduction="sum")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    X, Y = _layout(x), torch.from_numpy(np.asarray(y, np.int64))
    history = []
    for epoch in range(1, epochs + 1):
        t0, total, correct = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(Y), generator=gen).split(batch):
            out = model(X[idx])
            loss = loss_f(out, Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            correct += int((slayer.classifier.Rate.predict(out) == Y[idx]).sum())
        history.append({"epoch": epoch, "loss": total / len(Y),
                        "train_accuracy": correct / len(Y),
                        "seconds": time.perf_counter() - t0})
    return history
