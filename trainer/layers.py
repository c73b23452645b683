"""Connection layers with per-synapse delays (steps), input (B, n_in, T) -> current (B, n_out, T).

One class, four ways to hold delays (``method``):
  dcls             learnable real positions per (post, pre) via the dcls package's Gaussian
                   kernels (``Dcls1d``); ``hard=True`` rounds them to integer delays, one-hot.
  structure        one frozen random integer delay per (post, pre); structure is learned.
  structure-multi  candidates are (post, pre, delay) triples: a pair may hold several delays.
  no-delay         every delay is 0.
Weights: with sparsity 0 (and no Dale's principle) a plain signed weight per candidate;
otherwise a magnitude ``theta >= 0`` per candidate, a fixed ``sign`` and a boolean ``mask`` of
existing connections (DEEP R), rewired by trainer.rewiring. Unconnected entries of theta are 0,
so the weight ``sign * theta`` is exact and the gradient at unconnected entries (RigL's regrowth
score) flows through autograd.

Delay convention: ``I[t] = sum_syn w * x[t - delay]``; a causal conv1d with left padding K-1
puts delay d at kernel tap K-1-d. For DCLS, tap = round(P) + K//2, so delay = (K-1) - tap.

Two execution paths, same result (float rounding aside):
  dense kernel   build the (n_out, n_in, K) kernel and run conv1d (a matmul for no-delay);
                 cost ~ n_out * n_in * K per sample step, whatever the sparsity.
  sparse         trainer.sparse_delay: cost ~ connections per sample step. Used for the sparse
                 (sparsity > 0) structure, structure-multi and no-delay layers whose kernel
                 density ``connections / (n_out * n_in * K)`` (K = 1 for no-delay) is at most
                 ``sparse_max_density``: the crossover where both paths cost the same, measured
                 with bench/sparse_crossover.py (trainer/defaults.toml gives the figures; the
                 model passes sparse_max_density, or sparse_max_density_no_delay for no-delay).
                 RigL's candidate gradient is then computed only when asked for
                 (``want_candidate_grad``).
DCLS kernels (``dcls_path``):
  dense          (the trainer's issue-27-before behaviour) the dcls package's Gaussian
                 kernels over all K taps, conv1d, whatever the sparsity.
  auto           each synapse's Gaussian only on the taps where it is not negligible
                 (trainer.dcls_taps: the rule, its bound and why it is safe). A sparse layer
                 whose tap density ``connections * W / (n_out * n_in * K)`` (W kept taps per
                 synapse, shrinking with sigma) is at most ``dcls_max_density`` runs on
                 trainer.sparse_dcls; otherwise, and for dense layers, the truncated kernels
                 run as a dense convolution (trainer.delay_conv). Same result either way.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dcls_taps import gaussian, width, window, window_mask, window_starts, window_taps
from .delay_conv import delay_conv
from .sparse_dcls import TapPlan, build_tap_plan, set_window_starts, sparse_dcls
from .sparse_delay import CandidateGrad, build_plan, sparse_delay
from .tap_index import use_compiled

METHODS = ("dcls", "structure", "structure-multi", "no-delay")
DCLS_PATHS = ("auto", "dense")


def n_connections(n_candidates: int, sparsity: float) -> int:
    """Number of connections a layer keeps: round((1 - sparsity) * candidates), at least 1."""
    return max(1, int(round((1.0 - sparsity) * n_candidates)))


def dcls_integer_delay(position: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """A DCLS Gaussian's integer delay (steps, int64): its position rounded to the nearest tap
    (taps 0..K-1, position 0 = the centre tap), tap k meaning delay K-1-k."""
    tap = (torch.round(position) + kernel_size // 2).long().clamp(0, kernel_size - 1)
    return (kernel_size - 1) - tap


def initial_mask(shape: tuple[int, ...], sparsity: float, generator: torch.Generator | None
                 ) -> tuple[torch.Tensor, int]:
    """(mask of `shape`, connections kept): n_connections of the candidates drawn uniformly
    from `generator` (one randperm), or every candidate when sparsity is 0 (no draw)."""
    n_cand = math.prod(shape)
    if sparsity <= 0:
        return torch.ones(shape, dtype=torch.bool), n_cand
    n_keep = n_connections(n_cand, sparsity)
    order = torch.randperm(n_cand, generator=generator)
    mask = torch.zeros(n_cand, dtype=torch.bool)
    mask[order[:n_keep]] = True
    return mask.view(shape), n_keep


class DelayConnection(nn.Module):
    """One connection layer with synaptic delays: input spikes (B, n_in, T) -> current
    (B, n_out, T), ``I[t] = sum_syn w * x[t - delay]`` (delays in steps, 0..kernel_size-1).

    ``method`` chooses how delays are held (module docstring); ``sparsity`` the fraction of
    candidates without a connection (rewired by trainer.rewiring); ``dale`` fixes each
    presynaptic neuron's sign; ``sparse_max_density`` the density up to which the sparse path runs.
    ``dcls_path`` and ``dcls_max_density``: how DCLS kernels run (module docstring; the
    trainer's config default is "auto", this constructor's "dense", the earlier behaviour).
    ``index_kernel``: the lif_kernel setting that builds the sparse DCLS index (trainer.tap_index).
    ``synapses()`` lists the existing (pre, post, delay, weight) for the checkpoint."""
    mask: torch.Tensor  # buffers (register_buffer); sign and delay only for some methods
    sign: torch.Tensor
    delay: torch.Tensor

    def __init__(self, n_in: int, n_out: int, kernel_size: int, method: str, sparsity: float,
                 generator: torch.Generator, dale: bool = False, sparse_max_density: float = 0.0,
                 dcls_path: str = "dense", dcls_max_density: float = 0.0,
                 index_kernel: str = "auto"):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if dcls_path not in DCLS_PATHS:
            raise ValueError(f"unknown dcls_path {dcls_path!r}; choose one of "
                             f"{', '.join(DCLS_PATHS)}")
        self.dcls_path, self.dcls_max_density = dcls_path, float(dcls_max_density)
        self.index_kernel = index_kernel    # lif_kernel's setting: who builds the DCLS index
        self.n_in, self.n_out, self.K = int(n_in), int(n_out), int(kernel_size)
        self.method, self.sparsity, self.dale = method, float(sparsity), bool(dale)
        self.sparse = self.sparsity > 0
        self.signed = not (self.sparse or self.dale)
        K = self.K
        shape = (n_out, n_in, K) if method == "structure-multi" else (n_out, n_in)

        mask, n_keep = initial_mask(shape, self.sparsity, generator)
        # initial |w| < 1/sqrt(fan_in), fan_in = existing synapses per postsynaptic neuron (for
        # structure-multi including the K delays of a pair; a per-pair fan-in trains faster in
        # 6 FSDD epochs but rewires less: docs/sparse_training.md, structure_multi_init.json)
        fan_in = max(1.0, n_keep / n_out)
        bound = 1.0 / math.sqrt(fan_in)
        init = (torch.rand(shape, generator=generator) * 2 - 1) * bound
        if self.signed:
            self.weight = nn.Parameter(init)
        else:
            if self.dale:
                pre_sign = torch.where(torch.rand(n_in, generator=generator) < 0.5, -1.0, 1.0)
                sign = pre_sign.view(1, n_in, *([1] * (len(shape) - 2))).expand(shape).clone()
            else:
                sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
            self.register_buffer("sign", sign)
            self.theta = nn.Parameter(init.abs() * mask)
        self.register_buffer("mask", mask)
        taps = 1 if method == "no-delay" else K
        self.kernel_density = n_keep / (n_out * n_in * taps)
        # Adam moves every weight by about lr, so a neuron's current moves by about lr x its
        # fan-in: the trainer's lr is meant for one synapse per (pre, post) pair, and a layer with
        # more (structure-multi below sparsity 1 - 1/K) gets lr / (synapses per pair)
        # (docs/sparse_training.md, "structure-multi learning rate")
        self.lr_scale = 1.0 / max(1.0, n_keep / (n_out * n_in))
        self._sparse_static = (self.sparse and method != "dcls"
                               and self.kernel_density <= float(sparse_max_density))
        self._plan_key, self._plan, self._plan_mask = None, None, None
        self._tap_key: tuple | None = None
        self._tap_plan: tuple[torch.Tensor, TapPlan] | None = None
        self._tap_mask: torch.Tensor | None = None
        self._sink = CandidateGrad()

        if method == "dcls":
            from DCLS.construct.modules import Dcls1d
            self.dcls = Dcls1d(n_in, n_out, kernel_count=1, dilated_kernel_size=K, bias=False,
                               version="gauss")
            self.dcls.weight = None          # the weight lives here (signed or theta/sign)
            self.dcls.SIG.requires_grad_(False)  # set by the sigma schedule, not learned
            lo, hi = self.position_limits()
            with torch.no_grad():
                self.dcls.P.copy_(torch.rand(self.dcls.P.shape, generator=generator)
                                  * (hi - lo) + lo)
                self.dcls.SIG.fill_(K / 2)
        elif method == "structure":
            self.register_buffer("delay", torch.randint(0, K, shape, generator=generator))
        # structure-multi: candidate index [.., .., d] is delay d; no-delay: delay 0

    # ---- delays -------------------------------------------------------------------------
    def position_limits(self) -> tuple[int, int]:
        """DCLS position range so that the tap round(P) + K//2 stays in 0..K-1."""
        return -(self.K // 2), self.K - 1 - self.K // 2

    def clamp_positions(self) -> None:
        if self.method == "dcls":
            lo, hi = self.position_limits()
            with torch.no_grad():
                self.dcls.P.clamp_(lo, hi)

    def set_sigma(self, sigma: float) -> None:
        """Set the DCLS Gaussian width parameter (the kernel uses |sigma| + 0.27 taps)."""
        if self.method == "dcls":
            with torch.no_grad():
                self.dcls.SIG.fill_(float(sigma))

    @property
    def sparse_path(self) -> bool:
        """Whether the next training forward runs on a sparse path (trainer.sparse_delay, or
        trainer.sparse_dcls for a sparse dcls layer with dcls_path "auto" whose tap density,
        which follows sigma, is at most dcls_max_density)."""
        if self.method == "dcls":
            return (self.sparse and self.dcls_path == "auto"
                    and self.dcls_tap_density() <= self.dcls_max_density)
        return self._sparse_static

    def dcls_window(self) -> tuple[int, float]:
        """(W, R): kept taps per synapse and their half-width (taps) at the layer's current
        sigma (trainer.dcls_taps.window; dcls_path "auto")."""
        return window(float(width(self.dcls.SIG.detach()).max()), self.K)

    def dcls_tap_density(self) -> float:
        """connections * W / (n_out * n_in * K): the share of the dense kernel's entries that
        the truncated kernels keep."""
        return self.connections() * self.dcls_window()[0] / (self.n_out * self.n_in * self.K)

    def _dcls_gaussians(self) -> torch.Tensor:
        """Normalised truncated Gaussians of every (post, pre) pair, (n_out, n_in, K)."""
        W, R = self.dcls_window()
        center = self.dcls.P[0, :, :, 0] + self.K // 2
        g = gaussian(center, width(self.dcls.SIG[0, :, :, 0]), self.K)
        if W < self.K:
            g = g * window_mask(window_starts(center, R, W, self.K), W, self.K)
        return g

    def integer_delays(self) -> torch.Tensor:
        """Integer delay (steps) of each (post, pre) pair, int64 (n_out, n_in); for
        structure-multi the delays are the last candidate index, so this is not defined."""
        if self.method == "dcls":
            return dcls_integer_delay(self.dcls.P.detach()[0, :, :, 0], self.K)
        if self.method == "structure":
            return self.delay
        if self.method == "no-delay":
            return torch.zeros(self.n_out, self.n_in, dtype=torch.int64, device=self.mask.device)
        raise ValueError("structure-multi has no single delay per pair")

    # ---- weights ------------------------------------------------------------------------
    def effective_weight(self) -> torch.Tensor:
        """Signed weight of every candidate (zero where unconnected)."""
        return self.weight if self.signed else self.sign * self.theta

    def dcls_weight_bound(self) -> float:
        """Largest |weight| of the layer (a scale for tolerances)."""
        return float(self.effective_weight().detach().abs().max())

    def l1(self) -> torch.Tensor:
        """sum |w| over existing connections."""
        if self.signed:
            return self.weight.abs().sum()
        return (self.theta * self.mask).sum()

    def connections(self) -> int:
        return int(self.mask.sum())

    def kernel(self, hard: bool) -> torch.Tensor:
        """Conv1d kernel (n_out, n_in, K) for left padding K-1 (K = 1 for no-delay)."""
        w = self.effective_weight()
        if self.method == "structure-multi":
            return w.flip(-1)
        if self.method == "no-delay":
            return w.unsqueeze(-1)
        if self.method == "dcls" and not hard:
            if self.dcls_path == "auto":
                return w.unsqueeze(-1) * self._dcls_gaussians()
            return self.dcls.DCK(w.unsqueeze(-1), self.dcls.P, self.dcls.SIG)
        tap = (self.K - 1) - self.integer_delays()
        k = torch.zeros(self.n_out, self.n_in, self.K, dtype=w.dtype, device=w.device)
        return k.scatter(2, tap.unsqueeze(-1), w.unsqueeze(-1))

    # ---- sparse path --------------------------------------------------------------------
    def _synapse_index(self) -> tuple[torch.Tensor, ...]:
        """(flat candidate index, post, pre, delay) of the existing synapses, in mask order."""
        nz = torch.nonzero(self.mask.view(-1)).view(-1)
        if self.method == "structure-multi":
            post, pre, delay = nz // (self.n_in * self.K), nz // self.K % self.n_in, nz % self.K
        else:
            post, pre = nz // self.n_in, nz % self.n_in
            delay = self.delay.view(-1)[nz] if self.method == "structure" else torch.zeros_like(nz)
        return nz, post, pre, delay

    def plan(self):
        """(flat candidate index, SynapsePlan) of the current connections. Rebuilt only when
        the mask's content changed (rewiring writes the mask in place every step, mostly
        without changing it: the version counter says when to compare) or when the mask or
        the delays were replaced or moved."""
        delay = getattr(self, "delay", None)
        tensors = (id(self.mask), self.mask.data_ptr(), self.mask.device,
                   None if delay is None else (delay._version, delay.data_ptr()))
        key = (tensors, self.mask._version)
        if self._plan_key != key:
            if not (self._plan_key is not None and self._plan_key[0] == tensors
                    and torch.equal(self._plan_mask, self.mask)):
                nz, post, pre, delay = self._synapse_index()
                taps = 1 if self.method == "no-delay" else self.K
                self._plan = (nz, build_plan(post, pre, delay, self.n_in, self.n_out, taps))
                self._plan_mask = self.mask.clone()
            self._plan_key = key
        return self._plan

    def dcls_plan(self, T: int, W: int) -> tuple[torch.Tensor, TapPlan]:
        """(flat candidate index, TapPlan) of the current connections with W taps each, for
        inputs of T steps; rebuilt when the mask's content, W or T changed."""
        tensors = (id(self.mask), self.mask.data_ptr(), self.mask.device)
        key = (tensors, self.mask._version, T, W)
        if self._tap_key != key or self._tap_plan is None:
            old, kept = self._tap_key, self._tap_mask
            if not (old is not None and old[0] == tensors and old[2:] == (T, W)
                    and kept is not None and torch.equal(kept, self.mask)):
                nz = torch.nonzero(self.mask.view(-1)).view(-1)
                post, pre = nz // self.n_in, nz % self.n_in
                compiled = use_compiled(self.index_kernel, self.mask.device)
                self._tap_plan = (nz, build_tap_plan(post, pre, W, self.n_in, self.n_out,
                                                     self.K, T, compiled=compiled))
                self._tap_mask = self.mask.clone()
            self._tap_key = key
        assert self._tap_plan is not None
        return self._tap_plan

    def _dcls_sparse_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Truncated DCLS on trainer.sparse_dcls: kept taps of the existing synapses only."""
        W, R = self.dcls_window()
        nz, plan = self.dcls_plan(x.shape[2], W)
        center = self.dcls.P.reshape(-1)[nz] + self.K // 2
        a = window_starts(center, R, W, self.K)
        set_window_starts(plan, a)
        w = self.sign.reshape(-1)[nz] * self.theta.reshape(-1)[nz]
        taps = w.unsqueeze(1) * window_taps(center, width(self.dcls.SIG.reshape(-1)[nz]),
                                            self.K, a, W)
        return sparse_dcls(x, taps, plan, self._sink)

    def want_candidate_grad(self, wanted: bool) -> None:
        """Ask the next backward pass of the sparse path for dL/dtheta at every candidate."""
        self._sink.wanted, self._sink.grad = bool(wanted), None

    def candidate_grad(self) -> torch.Tensor:
        """dL/dtheta at every candidate (theta's shape) from the last backward pass: theta.grad
        on the dense path, the sparse path's dedicated computation (want_candidate_grad)
        otherwise. On the sparse path it holds the loss through this layer's current only
        (the L1 term acts on existing connections, never on candidates for regrowth)."""
        if not self.sparse_path:
            return self.theta.grad.detach().clone()  # type: ignore[union-attr]
        g = self._sink.grad
        if g is None:
            raise RuntimeError("candidate_grad: call want_candidate_grad(True) before backward")
        if self.method == "dcls":     # dL/dk by tap through each candidate's Gaussian
            with torch.no_grad():
                g = (g * self._dcls_gaussians()).sum(-1)
        elif self.method == "structure":
            g = g.gather(2, self.delay.unsqueeze(-1)).squeeze(-1)
        elif self.method == "no-delay":
            g = g[..., 0]
        self._sink.grad = None
        return self.sign * g

    def forward(self, x: torch.Tensor, hard: bool = False) -> torch.Tensor:
        if self.method == "dcls":
            if not hard and self.sparse_path:
                return self._dcls_sparse_forward(x)
            if self.dcls_path == "auto":
                return delay_conv(x, self.kernel(hard))
        elif self.sparse_path:
            nz, plan = self.plan()
            w = (self.sign.view(-1)[nz] * self.theta.view(-1)[nz])
            return sparse_delay(x, w, plan, self._sink)
        k = self.kernel(hard)
        if k.shape[-1] == 1:
            return torch.matmul(k[..., 0], x)
        return F.conv1d(F.pad(x, (k.shape[-1] - 1, 0)), k)

    # ---- export -------------------------------------------------------------------------
    @torch.no_grad()
    def synapses(self) -> dict:
        """Existing synapses with integer delays: pre, post, delay (int64), weight (float32),
        sorted by (post, pre, delay)."""
        w = self.effective_weight().detach()
        mask = self.mask
        if self.method == "structure-multi":
            post, pre, delay = torch.nonzero(mask, as_tuple=True)
            weight = w[post, pre, delay]
        else:
            post, pre = torch.nonzero(mask, as_tuple=True)
            delay = self.integer_delays()[post, pre]
            weight = w[post, pre]
        key = (post * self.n_in + pre) * self.K + delay
        order = torch.argsort(key)
        return {"pre": pre[order].cpu().to(torch.int64), "post": post[order].cpu().to(torch.int64),
                "delay": delay[order].cpu().to(torch.int64),
                "weight": weight[order].cpu().to(torch.float32).contiguous()}
