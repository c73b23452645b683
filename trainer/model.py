"""The network: input -> hidden LIF layer(s) -> leaky-integrator readout, all feed-forward,
every connection with per-synapse delays (trainer.layers.DelayConnection).

Input x (B, T, C) float; output: readout membrane (B, n_classes, T). Loss and prediction use
``sum_t softmax(v[:, :, t])`` (``class_scores``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .distributed import GlobalBatchNorm1d
from .layers import DelayConnection
from .lif_kernel import batchnorm_lif
from .neurons import LI, LIF
from .recurrent import RecurrentConnection, recurrent_kernel_size, split_sparsity


class _GradLikeInput(torch.autograd.Function):
    """Identity whose backward hands the gradient over in the forward tensor's memory layout:
    the LIF gives it back in its own (time-major) layout, on which BatchNorm's backward is
    several times slower."""

    @staticmethod
    def forward(ctx, x):
        ctx.layout = (x.shape, x.stride())
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        shape, stride = ctx.layout
        if grad.stride() == stride:
            return grad
        return torch.empty_strided(shape, stride, dtype=grad.dtype,
                                   device=grad.device).copy_(grad)


def _normalise(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm over (B, N, T); a tensor laid out (N, T, B) in memory (the sparse paths'
    output) is normalised as its (1, N, T*B) view, one laid out (T, B, N) (trainer.delay_conv's
    output side) as its (T*B, N) view: the same statistics over B*T values per neuron,
    without a transposed copy."""
    if isinstance(norm, nn.Identity):
        return x
    B, N, T = x.shape
    ntb = x.permute(1, 2, 0)
    if ntb.is_contiguous():
        return norm(ntb.view(1, N, T * B)).view(N, T, B).permute(2, 0, 1)
    tbn = x.permute(2, 0, 1)
    if tbn.is_contiguous() and T * B > 1:
        return norm(tbn.reshape(T * B, N)).view(T, B, N).permute(1, 2, 0)
    return norm(x)


def _setting(cfg: dict, key: str):
    """cfg[key], or its default (trainer/defaults.toml) for configs written before the key
    existed (old checkpoints)."""
    if key in cfg:
        return cfg[key]
    from .config import load_defaults
    return load_defaults()[key]


def _max_density(cfg: dict) -> float:
    """The layers' sparse-path crossover density (trainer/defaults.toml)."""
    key = "sparse_max_density_no_delay" if cfg["method"] == "no-delay" else "sparse_max_density"
    return float(_setting(cfg, key))


def _pre_sign(conn: nn.Module) -> torch.Tensor:
    """The sign (n_in,) a Dale connection layer gives each presynaptic neuron."""
    sign: torch.Tensor = conn.sign  # type: ignore[assignment]
    return sign.reshape(sign.shape[0], sign.shape[1], -1)[0, :, 0]


class DelaySNN(nn.Module):
    """The trained network: features (B, T, n_in) -> readout membrane (B, n_classes, T).

    Per hidden layer: DelayConnection -> BatchNorm (optional) -> LIF (trainer.neurons, equations
    there) -> dropout; the readout is a DelayConnection into a leaky integrator. ``cfg`` is a
    resolved trainer config (trainer/defaults.toml: hidden sizes, kernel_size K in steps, method,
    sparsity, tau in steps, threshold, surrogate_alpha, dropout, batchnorm, dale, seed,
    dcls_path and the sparse paths' crossover densities). With ``recurrent`` every hidden
    layer also feeds its own spikes back (trainer.recurrent.RecurrentConnection, inside the
    LIF's time loop; drawn from the seed after the feed-forward layers, so those start the
    same); without it the feed-forward path is untouched."""

    def __init__(self, n_in: int, n_classes: int, cfg: dict):
        super().__init__()
        gen = torch.Generator().manual_seed(int(cfg["seed"]))
        sizes = [n_in, *cfg["hidden"], n_classes]
        density = _max_density(cfg)
        sparsity, rec_sparsity = split_sparsity(cfg, n_in, n_classes)
        self.connections = nn.ModuleList(
            DelayConnection(a, b, cfg["kernel_size"], cfg["method"], sparsity, gen,
                            dale=cfg["dale"], sparse_max_density=density,
                            dcls_path=_setting(cfg, "dcls_path"),
                            dcls_max_density=float(_setting(cfg, "sparse_max_density_dcls")),
                            index_kernel=_setting(cfg, "lif_kernel"))
            for a, b in zip(sizes[:-1], sizes[1:]))
        n_hidden = len(cfg["hidden"])
        self.norms = nn.ModuleList(
            GlobalBatchNorm1d(h) if cfg["batchnorm"] else nn.Identity() for h in cfg["hidden"])
        self.lifs = nn.ModuleList(
            LIF(cfg["tau"], cfg["threshold"], cfg["surrogate_alpha"], _setting(cfg, "lif_kernel"))
            for _ in range(n_hidden))
        self.readout = LI(cfg["tau"], _setting(cfg, "lif_kernel"))
        self.dropout = float(cfg["dropout"])
        self.input_threshold = float(cfg.get("input_threshold", 0.0))
        self.recurrent: nn.ModuleList | None = None
        if cfg.get("recurrent", False):
            signs = [_pre_sign(c) if cfg["dale"] else None
                     for c in self.connections[1:]]      # Dale: a neuron's outgoing sign
            self.recurrent = nn.ModuleList(
                RecurrentConnection(h, recurrent_kernel_size(cfg), cfg["method"], s, gen,
                                    pre_sign=sign)
                for h, sign, s in zip(cfg["hidden"], signs, rec_sparsity))

    def forward(self, x: torch.Tensor, hard: bool = False,
                dropout_masks: list[torch.Tensor] | None = None,
                return_spikes: bool = False):
        """x (B, T, C) -> readout membrane (B, n_classes, T); with ``return_spikes`` also the
        hidden spike trains, one (B, N, T) tensor per hidden layer (for spike_penalty).

        hard: integer delays and one-hot kernels (evaluation/export semantics).
        Inputs below ``input_threshold`` are dropped first (deployed.network.InputEncoding).
        dropout_masks: one (B, N) mask per hidden layer (already scaled by 1/(1-p)), applied
        at every step; None = no dropout.
        """
        if self.input_threshold > 0:   # the input event rule of deployed.network.InputEncoding
            x = x * (x >= self.input_threshold)
        h = x.transpose(1, 2)
        spikes = []
        for i, (conn, norm, lif) in enumerate(zip(self.connections, self.norms, self.lifs)):
            if self.recurrent is not None:
                h = self.recurrent[i](_GradLikeInput.apply(_normalise(norm, conn(h, hard=hard))),
                                      lif, hard=hard, mask=None if dropout_masks is None
                                      else dropout_masks[i])
            else:
                cur = conn(h, hard=hard)
                fused = batchnorm_lif(norm, lif, cur)  # one compiled pass where it applies
                h = fused if fused is not None else lif(_GradLikeInput.apply(_normalise(norm, cur)))
            spikes.append(h)
            if dropout_masks is not None:
                h = h * dropout_masks[i].unsqueeze(-1)
        v = self.readout(self.connections[-1](h, hard=hard))
        return (v, spikes) if return_spikes else v

    def dropout_masks(self, batch: int, generator: torch.Generator, device) -> list | None:
        """Draw one (batch, N) mask per hidden layer from ``generator`` (CPU), or None."""
        if self.dropout <= 0:
            return None
        keep = 1.0 - self.dropout
        return [((torch.rand(batch, lif_n, generator=generator) < keep).float() / keep).to(device)  # type: ignore[call-overload]
                for lif_n in (c.n_out for c in self.connections[:-1])]

    def set_sigma(self, sigma: float) -> None:
        for c in self.connections:
            c.set_sigma(sigma)  # type: ignore[operator]

    def set_recurrent_sigma(self, sigma: float) -> None:
        """The recurrent DCLS width parameter (its own schedule: trainer.train.sigma_at with
        the recurrent kernel size)."""
        for r in self.recurrent or []:
            r.set_sigma(sigma)  # type: ignore[operator]

    def synapse_layers(self) -> list:
        """Every module holding synapses: the connection layers, then the recurrent ones."""
        return [*self.connections, *(self.recurrent or [])]

    def positions(self) -> list:
        """The DCLS positions (their own optimiser): feed-forward, then recurrent."""
        return ([c.dcls.P for c in self.connections if c.method == "dcls"]  # type: ignore[union-attr]
                + [r.P for r in self.recurrent or [] if r.method == "dcls"])

    def clamp_positions(self) -> None:
        for c in self.synapse_layers():
            c.clamp_positions()

    def l1(self) -> torch.Tensor:
        return sum(c.l1() for c in self.synapse_layers())  # type: ignore[return-value]

    def connection_counts(self) -> list[int]:
        return [c.connections() for c in self.connections]  # type: ignore[operator]

    def recurrent_connection_counts(self) -> list[int]:
        """Recurrent synapses per hidden layer ([] without recurrence)."""
        return [r.connections() for r in self.recurrent or []]  # type: ignore[operator]


def spike_penalty(spikes: list[torch.Tensor], target: float) -> torch.Tensor:
    """Spike-count regulariser, per sample (B,): ``sum_l relu(r_l - target)^2`` where r_l is
    hidden layer l's firing rate (spikes per neuron per step) on that sample; rates at or
    below ``target`` cost nothing. Gradients flow through the surrogate of each spike."""
    return sum(torch.relu(s.mean(dim=(1, 2)) - target) ** 2 for s in spikes)  # type: ignore[return-value]


def class_scores(v: torch.Tensor) -> torch.Tensor:
    """Readout membrane (B, n_classes, T) -> sum over time of softmax over classes (B, n)."""
    return F.softmax(v, dim=1).sum(dim=2)


def loss_fn(v: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the summed softmax (as the reference)."""
    return F.cross_entropy(class_scores(v), y, reduction=reduction)
