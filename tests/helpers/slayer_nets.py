"""Small networks built and trained with lava-dl's SLAYER on CPU, written with its own
export_hdf5 (the netx format), for tests/test_from_netx.py.

`dense_delay_net`: one slayer.block.cuba.Dense with delay=True (learnable axonal delays, one per
output neuron). `two_layer_net`: two such blocks, the second with a MeanOnlyBatchNorm (its mean
becomes the netx `bias`) and graded_spike=True. Both train a few Adam steps on random spike
trains (slayer's CPU path: its axon delay and spike functions fall back to torch ops off CUDA),
get integer delays spread over 0..max_delay, and are written by lava-dl's block export_hdf5."""
from __future__ import annotations

import h5py
import numpy as np
import torch


class _Chain(torch.nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x

    def export_hdf5(self, path) -> None:
        """lava-dl's own export: layer/<i> written by each block's export_hdf5."""
        with h5py.File(path, "w") as h:
            layer = h.create_group("layer")
            for i, b in enumerate(self.blocks):
                b.export_hdf5(layer.create_group(f"{i}"))


def _train(net, n_in: int, seed: int, steps: int = 3, T: int = 24) -> None:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(4, n_in, T, generator=g) < 0.3).float()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        y = net(x)
        loss = (y.mean() - 0.2) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()


def _set_delays(block, max_delay: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = block.delay.delay
    d.data = torch.tensor(rng.integers(0, max_delay + 1, d.shape[0]), dtype=d.dtype)


def dense_delay_net(path, n_in: int = 10, n_out: int = 12, max_delay: int = 6, seed: int = 0):
    """One CUBA Dense block with axonal delays, trained a few steps, written to `path`."""
    from lava.lib.dl import slayer
    torch.manual_seed(seed)
    params = {"threshold": 0.6, "current_decay": 0.25, "voltage_decay": 0.05}
    net = _Chain([slayer.block.cuba.Dense(params, n_in, n_out, weight_scale=3, delay=True)])
    net(torch.zeros(1, n_in, 4))  # the delay module sizes itself on the first call
    _set_delays(net.blocks[0], max_delay, seed)
    _train(net, n_in, seed)
    net.export_hdf5(path)
    return net


def two_layer_net(path, n_in: int = 10, n_hidden: int = 16, n_out: int = 6,
                  max_delay: int = 5, seed: int = 1):
    """Dense (delays) -> Dense (delays, bias from a MeanOnlyBatchNorm, graded spikes)."""
    from lava.lib.dl import slayer
    torch.manual_seed(seed)
    hidden = {"threshold": 0.5, "current_decay": 0.3, "voltage_decay": 0.05}
    out = {**hidden, "graded_spike": True, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}
    net = _Chain([slayer.block.cuba.Dense(hidden, n_in, n_hidden, weight_scale=3, delay=True),
                  slayer.block.cuba.Dense(out, n_hidden, n_out, weight_scale=3, delay=True)])
    net(torch.zeros(1, n_in, 4))
    for k, b in enumerate(net.blocks):
        _set_delays(b, max_delay, seed + k)
    _train(net, n_in, seed)
    net.export_hdf5(path)
    return net
