"""Recurrent synapses of a hidden layer (config ``recurrent``) and the LIF time loop they feed.

The timing rule (docs/design.md section 8, the same in the emulator and Lava): a spike neuron
``pre`` emits at step t reaches neuron ``post`` over a recurrent synapse of delay d (steps,
0..Kr-1, Kr = ``recurrent_kernel_size``) at step t + 1 + d. Per step t, per hidden layer:

    I[t] = BN(I_ff)[t] + sum_rec w * s_pre[t - 1 - d]    (the recurrent current after BatchNorm)
    v = decay * v + I[t];  spike = v > threshold;  v = 0 where spike    (trainer.neurons)

so the recurrent current runs inside the LIF's time loop. ``RecurrentConnection`` holds the
synapses by ``method``, as trainer.layers does for feed-forward ones:
  dcls             a learnable real position per (post, pre) pair, a Gaussian over the Kr delay
                   taps (the dcls package's "gauss" kernel: centre P + Kr//2, width |sigma| +
                   0.27 taps), sharpened by the trainer's sigma schedule; ``hard=True`` rounds
                   the position to an integer delay (tap round(P) + Kr//2, delay Kr-1-tap), as
                   trainer.layers does for the feed-forward positions;
  structure        one frozen random delay per (post, pre), structure learned by rewiring;
  structure-multi  candidates (post, pre, delay): a pair may hold several delays;
  no-delay         every recurrent delay is 0 (Kr = 1).
Weights as in trainer.layers: signed at sparsity 0 without Dale; otherwise magnitudes
``theta >= 0`` with a fixed sign and a ``mask`` that trainer.rewiring rewires (DEEP R + RigL,
exact counts). With Dale, a neuron's recurrent synapses take the sign of its outgoing
feed-forward ones.

Two execution paths, same result (float rounding aside), both over a buffer of the layer's last
Kr spike steps (the ring buffer: row t + Kr holds s[t]; a step reads rows t..t+Kr-1):
  dense   the (n, Kr * n) kernel times the buffer window, one matmul per step: n * n * Kr
          multiply-adds per sample step;
  sparse  a CSR matrix with one entry per synapse times the window, per step: cost ~ synapses
          per sample step. Used for sparse structure, structure-multi and no-delay layers whose
          density synapses / (n * n * Kr) is at most ``sparse_max_density``
          (RECURRENT_SPARSE_MAX_DENSITY), and for dcls layers (sparse or not) while their kept
          Gaussian taps (synapses * W, W shrinking with sigma as in the feed-forward layers'
          trainer.dcls_taps rule) are at most that share of the dense kernel.
Backward is hand-written (BPTT through the surrogate, the reset detached as trainer.neurons):
``recurrent_lif_reference`` is the plain-autograd loop it is tested against.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .dcls_taps import width, window, window_starts, window_taps
from .layers import dcls_integer_delay, initial_mask, n_connections
from .sparse_delay import CandidateGrad, _csr_matrix, _rows, build_plan, candidate_grad

# Crossover density of the sparse path (bench/train_speed.py --recurrent-crossover,
# docs/results/train_speed_recurrent.json: at 256 neurons, Kr = 25, batch 32, the sparse loop was
# faster up to density 0.1, even at 0.2, twice as slow at 0.4).
RECURRENT_SPARSE_MAX_DENSITY = 0.1
SIGMA_OFFSET = 0.27    # the dcls package's Gaussian width is |sigma| + 0.27 taps
NORM_EPS = 1e-7        # and its normaliser sum_j g_j + 1e-7
# A CSR-sampled dot product (torch.sparse.sampled_addmm) costs about this many multiply-adds
# of a dense matrix product on CPU (torch profiler of both weight-gradient forms, 256 neurons,
# Kr = 25, batch 32, T = 100: sampled_addmm ran at about 1/30 of the dense product's
# multiply-adds per second): the sparse path's weight gradient takes the dense product of
# the rows it needs when that is cheaper.
SAMPLED_DOT_COST = 32


def recurrent_taps(method: str, kernel_size: int) -> int:
    """Recurrent delay taps Kr of a method: 1 for no-delay, else ``kernel_size``."""
    return 1 if method == "no-delay" else int(kernel_size)


def candidate_count(method: str, n: int, kernel_size: int) -> int:
    """Recurrent candidates of a hidden layer of n neurons: (post, pre) pairs, times Kr for
    structure-multi."""
    return n * n * (recurrent_taps(method, kernel_size) if method == "structure-multi" else 1)


def gaussian_taps(center: torch.Tensor, sigma: torch.Tensor, K: int) -> torch.Tensor:
    """The dcls package's normalised Gaussian over K taps: g_j / (sum_i g_i + 1e-7) with
    g_j = exp(-((j - center) / (|sigma| + 0.27))^2 / 2); center (...) -> (..., K)."""
    j = torch.arange(K, dtype=center.dtype, device=center.device)
    s = sigma.abs() + SIGMA_OFFSET
    g = torch.exp(-0.5 * ((j - center.unsqueeze(-1)) / s) ** 2)
    return g / (g.sum(-1, keepdim=True) + NORM_EPS)


# ---- the time loop ----------------------------------------------------------------------------
class SparseIndex:
    """Index structures of R existing recurrent synapses (pre, post, delay) among n neurons
    with K taps, rebuilt when the synapses change. Window layout: rows t..t+K-1 of the spike
    buffer (T+K, n, B) read as one (K * n, B) matrix, entry (K-1-d) * n + pre = s_pre[t-1-d];
    forward: CSR (n, K * n) with one entry per synapse at [post, (K-1-d) * n + pre]; backward:
    CSR (n, K * n) at [pre, d * n + post] on the window of future gradients (gu[t+1+d] at
    d * n + post); weight gradient: trainer.sparse_delay's plan of the same synapses, read
    as a feed-forward delay layer whose input at step t is s[t-1]."""

    def __init__(self, pre: torch.Tensor, post: torch.Tensor, delay: torch.Tensor, n: int,
                 K: int):
        self.n, self.K, self.nnz = n, K, int(pre.numel())
        self.fwd = _csr_layout(post, (K - 1 - delay) * n + pre, n)
        self.bwd = _csr_layout(pre, delay * n + post, n)
        self.plan = build_plan(post, pre, delay, n, n, K)
        self.post, self.plan_keys = post, pre * K + (K - 1 - delay)   # rows of plan.in_rows

    def matrix(self, which: tuple, w: torch.Tensor) -> torch.Tensor:
        crow, col, perm = which
        return _csr_matrix(crow, col, w[perm].contiguous(), (self.n, self.K * self.n))


def _csr_layout(rows: torch.Tensor, cols: torch.Tensor, n_rows: int) -> tuple:
    """(crow, col, perm) of a CSR matrix with one entry per (row, col) pair, sorted by row then
    column; perm[j] is the position of entry j in the input order."""
    perm = torch.argsort(rows * (int(cols.max()) + 1 if cols.numel() else 1) + cols)
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_rows), 0)
    return crow, cols[perm], perm


def _neuron_major(x: torch.Tensor, steps: int) -> torch.Tensor:
    """First ``steps`` rows of a time-major (T', n, B) buffer as contiguous (n, steps, B)."""
    return x[:steps].permute(1, 0, 2).contiguous()


class _RecurrentLIF(torch.autograd.Function):
    """LIF over a sequence with recurrent input from its own spikes (module docstring).

    current (T, n, B) contiguous; weight: the dense kernel (n, K * n) (entry [post, k * n + pre]
    is delay K-1-k) or the R synapse weights of ``index`` (SparseIndex); mask (n, B) dropout
    mask on the spikes the synapses carry, or None. Returns spikes (T, n, B)."""

    @staticmethod
    def forward(ctx, current, weight, index, mask, K, decay, threshold, alpha, sink):
        T, n, B = current.shape
        need_grad = any(ctx.needs_input_grad[:2])
        k_decay, k_thr, k_c, k_one, k_half = (
            torch.tensor(val, dtype=current.dtype, device=current.device)
            for val in (decay, threshold, math.pi / 2 * alpha, 1.0, alpha / 2))
        with torch.no_grad():
            w = weight.detach()
            A = w if index is None else index.matrix(index.fwd, w)
            buf = torch.zeros(T + K, n, B, dtype=current.dtype, device=current.device)
            spikes = torch.empty_like(current)
            slope = torch.empty_like(current) if need_grad else None
            u = torch.empty(n, B, dtype=current.dtype, device=current.device)
            v = torch.zeros(n, B, dtype=current.dtype, device=current.device)
            for t in range(T):
                win = buf[t:t + K].view(K * n, B)               # s[t-1-d] at (K-1-d) * n + j
                torch.add(v, current[t], out=u)
                if index is None:
                    u.addmm_(A, win)
                elif index.nnz:
                    u.add_(torch.sparse.mm(A, win))
                s = spikes[t]
                torch.gt(u, k_thr, out=s)
                if need_grad:                                   # as trainer.neurons
                    d = slope[t]
                    torch.sub(u, k_thr, out=d)
                    d.mul_(k_c)
                    d.mul_(d)
                    d.add_(k_one)
                    d.reciprocal_()
                    d.mul_(k_half)
                torch.mul(u, k_decay, out=v)
                torch.addcmul(v, v, s, value=-1, out=v)
                if mask is None:
                    buf[t + K].copy_(s)
                else:
                    torch.mul(s, mask, out=buf[t + K])
        ctx.save_for_backward(spikes, slope, buf, w, mask)
        ctx.index, ctx.K, ctx.k_decay, ctx.sink = index, K, k_decay, sink
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        spikes, slope, buf, w, mask = ctx.saved_tensors
        index, K, k_decay, sink = ctx.index, ctx.K, ctx.k_decay, ctx.sink
        T, n, B = spikes.shape
        grad_spikes = grad_spikes.contiguous()
        G = torch.zeros(T + K, n, B, dtype=slope.dtype, device=slope.device)  # gu[t] at row t
        if index is None:   # M[pre, d * n + post] = W_d[post, pre] = w[post, (K-1-d) * n + pre]
            M = w.view(n, K, n).flip(1).permute(2, 1, 0).reshape(n, K * n)
        else:
            M = index.matrix(index.bwd, w)
        gs = torch.empty(n, B, dtype=slope.dtype, device=slope.device)
        carry = torch.zeros(n, B, dtype=slope.dtype, device=slope.device)  # decay * gu[t+1]
        for t in range(T - 1, -1, -1):
            fut = G[t + 1:t + 1 + K].view(K * n, B)            # gu[t+1+d] at d * n + post
            if index is None:
                torch.mm(M, fut, out=gs)
            elif index.nnz:
                gs.copy_(torch.sparse.mm(M, fut))
            else:
                gs.zero_()
            if mask is not None:
                gs.mul_(mask)
            gs.add_(grad_spikes[t])
            g = G[t]
            torch.addcmul(carry, carry, spikes[t], value=-1, out=g)    # the reset is detached
            g.addcmul_(gs, slope[t])
            torch.mul(g, k_decay, out=carry)
        grad_w = None
        want_dense = index is None and ctx.needs_input_grad[1] or (
            index is not None and sink is not None and sink.wanted)
        if want_dense or (index is not None and ctx.needs_input_grad[1]):
            gI = _neuron_major(G, T).view(n, T * B)            # as a feed-forward layer's
            xp = _neuron_major(buf, T + K - 1)                 # dL/dI and input s[t-1]
        if want_dense:                                         # (n, n, K) by delay
            dense = candidate_grad(gI, xp, K, T)
            if index is None:
                grad_w = dense.flip(-1).permute(0, 2, 1).reshape(n, K * n)
            else:
                sink.grad = dense
        if index is not None and ctx.needs_input_grad[1]:
            grad_w = _synapse_grad(gI, xp, index, T)
        return G[:T], grad_w, None, None, None, None, None, None, None


def _synapse_grad(gI: torch.Tensor, xp: torch.Tensor, index: SparseIndex, T: int
                  ) -> torch.Tensor:
    """dL/dw of the synapses of ``index`` (its order): one dot product per synapse over (t, b),
    CSR-sampled as trainer.sparse_delay does for a feed-forward layer; or, where that costs
    more (synapses x SAMPLED_DOT_COST > n x distinct input rows), the dense product of dL/dI
    with the input rows the synapses read, sampled afterwards."""
    plan = index.plan
    if not plan.nnz:
        return gI.new_zeros(0)
    G_in = _rows(xp, plan.in_rows, plan.K, T)
    if plan.nnz * SAMPLED_DOT_COST > plan.n_out * len(plan.in_rows):
        full = gI @ G_in.t()                                  # (n, distinct input rows)
        u = torch.searchsorted(plan.in_rows, index.plan_keys)
        return full[index.post, u]
    pattern = _csr_matrix(plan.fwd_crow, plan.fwd_col, gI.new_zeros(plan.nnz),
                          (plan.n_out, len(plan.in_rows)))
    vals = torch.sparse.sampled_addmm(pattern, gI, G_in.t(), beta=0.0).values()
    grad = torch.empty_like(vals)
    grad[plan.fwd_perm] = vals
    return grad


def recurrent_lif(current: torch.Tensor, weight: torch.Tensor, K: int, decay: float,
                  threshold: float, alpha: float, index: SparseIndex | None = None,
                  mask: torch.Tensor | None = None,
                  sink: CandidateGrad | None = None) -> torch.Tensor:
    """current (B, n, T) -> spikes (B, n, T) of a LIF layer whose spikes also feed back over
    recurrent synapses (module docstring): ``weight`` the dense kernel (n, K * n) (index None)
    or the synapse weights (R,) of ``index``; ``mask`` (B, n) dropout mask of the spikes the
    synapses carry; ``sink`` receives the dense gradient (n, n, K), by delay, on the sparse path
    when ``sink.wanted`` (RigL's candidate score). Spikes are laid out (T, n, B) in memory."""
    cur = current.permute(2, 1, 0).contiguous()
    m = None if mask is None else mask.t().contiguous()
    s = _RecurrentLIF.apply(cur, weight, index, m, int(K), float(decay), float(threshold),
                            float(alpha), sink)
    return s.permute(2, 1, 0)


def recurrent_lif_reference(current: torch.Tensor, kernel: torch.Tensor, decay: float,
                            threshold: float, alpha: float = 5.0,
                            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Plain-autograd loop through trainer.neurons.lif_step: current (T, B, n), kernel
    (n_post, n_pre, K) indexed by delay (kernel[..., d] acts on s[t - 1 - d]). Slow; the
    reference ``recurrent_lif`` is tested against."""
    from .neurons import lif_step
    T, B, n = current.shape
    K = kernel.shape[-1]
    v = torch.zeros_like(current[0])
    past: list[torch.Tensor] = []          # spikes the synapses carry, newest last
    out = []
    for t in range(T):
        rec = torch.zeros_like(current[0])
        for d in range(min(K, len(past))):
            rec = rec + past[-1 - d] @ kernel[:, :, d].t()
        v, s = lif_step(v, current[t] + rec, decay, threshold, alpha)
        out.append(s)
        past.append(s if mask is None else s * mask)
    return torch.stack(out)


# ---- the module -------------------------------------------------------------------------------
class RecurrentConnection(nn.Module):
    """A hidden layer's recurrent synapses among its own ``n`` neurons, with delays 0..Kr-1
    (``kernel_size``; 1 for no-delay), held by ``method`` (module docstring). ``sparsity``: the
    fraction of recurrent candidates without a synapse (rewired by trainer.rewiring with exact
    counts); ``pre_sign`` (n,) fixes each neuron's sign (Dale) or None.
    ``forward(current, lif, hard, mask)`` runs the layer's LIF with this recurrence;
    ``synapses()`` lists (pre, post, delay, weight) for the checkpoint."""
    mask: torch.Tensor
    sign: torch.Tensor
    delay: torch.Tensor
    sigma: torch.Tensor

    def __init__(self, n: int, kernel_size: int, method: str, sparsity: float,
                 generator: torch.Generator, pre_sign: torch.Tensor | None = None,
                 sparse_max_density: float = RECURRENT_SPARSE_MAX_DENSITY):
        super().__init__()
        self.n, self.method = int(n), method
        self.K = recurrent_taps(method, kernel_size)
        self.sparsity, self.dale = float(sparsity), pre_sign is not None
        self.sparse = self.sparsity > 0
        self.signed = not (self.sparse or self.dale)
        n, K = self.n, self.K
        shape = (n, n, K) if method == "structure-multi" else (n, n)
        mask, n_keep = initial_mask(shape, self.sparsity, generator)
        bound = 1.0 / math.sqrt(max(1.0, n_keep / n))     # as trainer.layers: 1/sqrt(fan-in)
        init = (torch.rand(shape, generator=generator) * 2 - 1) * bound
        if self.signed:
            self.weight = nn.Parameter(init)
        else:
            if pre_sign is not None:
                sign = pre_sign.view(1, n, *([1] * (len(shape) - 2))).expand(shape).clone()
            else:
                sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
            self.register_buffer("sign", sign)
            self.theta = nn.Parameter(init.abs() * mask)
        self.register_buffer("mask", mask)
        self.kernel_density = n_keep / (n * n * K)
        self.lr_scale = 1.0 / max(1.0, n_keep / (n * n))
        self.sparse_max_density = float(sparse_max_density)
        self._plan_key: tuple | None = None
        self._plan: tuple | None = None
        self._plan_mask: torch.Tensor | None = None
        self._sink = CandidateGrad()
        if method == "dcls":
            lo, hi = self.position_limits()
            self.P = nn.Parameter(torch.rand(shape, generator=generator) * (hi - lo) + lo)
            self.register_buffer("sigma", torch.tensor(K / 2))
        elif method == "structure":
            self.register_buffer("delay", torch.randint(0, K, shape, generator=generator))

    @property
    def sparse_path(self) -> bool:
        """Whether the next training forward runs on the sparse path: a sparse layer of
        structure, structure-multi or no-delay whose density synapses / (n * n * K) is at most
        ``sparse_max_density``; a dcls layer (sparse or not) whose kept Gaussian taps
        (synapses * W, trainer.dcls_taps.window at its sigma) are at most that share of the
        dense kernel's n * n * K."""
        if self.method == "dcls":
            return self.tap_density(self.dcls_window()[0]) <= self.sparse_max_density
        return self.sparse and self.kernel_density <= self.sparse_max_density

    def tap_density(self, taps: int) -> float:
        """synapses * taps / (n * n * K)."""
        return self.connections() * taps / (self.n * self.n * self.K)

    def dcls_window(self) -> tuple[int, float]:
        """(W, R): Gaussian taps kept per synapse and their half-width at the layer's sigma
        (the feed-forward layers' truncation rule, trainer.dcls_taps)."""
        return window(float(width(self.sigma)), self.K)

    # ---- delays ---------------------------------------------------------------------------
    def position_limits(self) -> tuple[int, int]:
        """DCLS position range so that the tap round(P) + K//2 stays in 0..K-1."""
        return -(self.K // 2), self.K - 1 - self.K // 2

    def clamp_positions(self) -> None:
        if self.method == "dcls":
            lo, hi = self.position_limits()
            with torch.no_grad():
                self.P.clamp_(lo, hi)

    def set_sigma(self, sigma: float) -> None:
        """DCLS Gaussian width parameter (the kernel uses |sigma| + 0.27 taps)."""
        if self.method == "dcls":
            self.sigma.fill_(float(sigma))

    def integer_delays(self) -> torch.Tensor:
        """Integer delay (steps) per (post, pre) pair, int64 (n, n); not for structure-multi."""
        if self.method == "dcls":
            return dcls_integer_delay(self.P.detach(), self.K)
        if self.method == "structure":
            return self.delay
        if self.method == "no-delay":
            return torch.zeros(self.n, self.n, dtype=torch.int64, device=self.mask.device)
        raise ValueError("structure-multi has no single delay per pair")

    # ---- weights --------------------------------------------------------------------------
    def effective_weight(self) -> torch.Tensor:
        """Signed weight of every candidate (zero where unconnected)."""
        return self.weight if self.signed else self.sign * self.theta

    def l1(self) -> torch.Tensor:
        """sum |w| over existing synapses."""
        if self.signed:
            return self.weight.abs().sum()
        return (self.theta * self.mask).sum()

    def connections(self) -> int:
        return int(self.mask.sum())

    def kernel(self, hard: bool) -> torch.Tensor:
        """Kernel (n_post, n_pre, K) by tap: tap k acts on s[t - 1 - (K-1-k)] (the
        feed-forward layers' conv convention, delay K-1-tap)."""
        w = self.effective_weight()
        if self.method == "structure-multi":
            return w.flip(-1)
        if self.method == "no-delay":
            return w.unsqueeze(-1)
        if self.method == "dcls" and not hard:
            return w.unsqueeze(-1) * gaussian_taps(self.P + self.K // 2, self.sigma, self.K)
        tap = (self.K - 1) - self.integer_delays()
        k = torch.zeros(self.n, self.n, self.K, dtype=w.dtype, device=w.device)
        return k.scatter(2, tap.unsqueeze(-1), w.unsqueeze(-1))

    # ---- sparse path ----------------------------------------------------------------------
    def plan(self) -> tuple[torch.Tensor, SparseIndex]:
        """(flat candidate index, SparseIndex) of the existing synapses (for dcls: of the
        existing pairs, each at delay 0, for their indices); rebuilt only when the mask's
        content changed (as trainer.layers.DelayConnection.plan)."""
        tensors = (id(self.mask), self.mask.data_ptr(), self.mask.device)
        key = (tensors, self.mask._version)
        if self._plan_key != key:
            if not (self._plan_key is not None and self._plan_key[0] == tensors
                    and torch.equal(self._plan_mask, self.mask)):  # type: ignore[arg-type]
                nz = torch.nonzero(self.mask.view(-1)).view(-1)
                if self.method == "structure-multi":
                    post, pre, delay = nz // (self.n * self.K), nz // self.K % self.n, nz % self.K
                else:
                    post, pre = nz // self.n, nz % self.n
                    delay = (self.delay.reshape(-1)[nz] if self.method == "structure"
                             else torch.zeros_like(nz))
                self._plan = (nz, SparseIndex(pre, post, delay, self.n, self.K))
                self._plan_mask = self.mask.clone()
            self._plan_key = key
        return self._plan  # type: ignore[return-value]

    def want_candidate_grad(self, wanted: bool) -> None:
        """Ask the next backward pass of the sparse path for dL/dtheta at every candidate."""
        self._sink.wanted, self._sink.grad = bool(wanted), None

    def candidate_grad(self) -> torch.Tensor:
        """dL/dtheta at every candidate (theta's shape) from the last backward pass (as
        trainer.layers.DelayConnection.candidate_grad)."""
        if not self.sparse_path:
            return self.theta.grad.detach().clone()  # type: ignore[union-attr]
        g = self._sink.grad
        if g is None:
            raise RuntimeError("candidate_grad: call want_candidate_grad(True) before backward")
        if self.method == "dcls":      # dL/dk by tap through each candidate's whole Gaussian
            with torch.no_grad():
                gauss = gaussian_taps(self.P + self.K // 2, self.sigma, self.K)
                g = (g.flip(-1) * gauss).sum(-1)
        elif self.method == "structure":
            g = g.gather(2, self.delay.unsqueeze(-1)).squeeze(-1)
        elif self.method == "no-delay":
            g = g[..., 0]
        self._sink.grad = None
        return self.sign * g

    # ---- the layer's time loop ------------------------------------------------------------
    def forward(self, current: torch.Tensor, lif, hard: bool = False,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """current (B, n, T) after BatchNorm -> spikes (B, n, T) of ``lif`` (trainer.neurons.LIF:
        decay, threshold, alpha) with this recurrence; ``mask`` (B, n) the layer's dropout
        mask (the recurrent synapses carry the dropped-out spikes, as the next layer does)."""
        if self.method == "dcls":
            taps = 1 if hard else self.dcls_window()[0]
            if self.tap_density(taps) <= self.sparse_max_density:
                w, index = self._dcls_entries(hard)
                return recurrent_lif(current, w, self.K, lif.decay, lif.threshold, lif.alpha,
                                     index, mask, self._sink)
        elif self.sparse_path:
            nz, index = self.plan()
            w = self.sign.view(-1)[nz] * self.theta.view(-1)[nz]
            return recurrent_lif(current, w, self.K, lif.decay, lif.threshold, lif.alpha, index,
                                 mask, self._sink)
        k = self.kernel(hard)                                      # (post, pre, tap)
        w = k.permute(0, 2, 1).reshape(self.n, self.K * self.n)
        return recurrent_lif(current, w, self.K, lif.decay, lif.threshold, lif.alpha, None, mask)

    def _dcls_entries(self, hard: bool) -> tuple[torch.Tensor, SparseIndex]:
        """dcls on the sparse path: every existing pair at its rounded delay (hard), or at the
        W kept taps of its Gaussian (training; the taps left out hold < 2^-24 of its weight,
        trainer.dcls_taps), with their weights (differentiable to the weight and P)."""
        nz, _ = self.plan()
        n, K = self.n, self.K
        post, pre = nz // n, nz % n
        w = self.effective_weight().reshape(-1)[nz]
        if hard:
            delay = self.integer_delays().reshape(-1)[nz]
            return w, SparseIndex(pre, post, delay, n, K)
        W, R = self.dcls_window()
        center = self.P.reshape(-1)[nz] + K // 2
        a = window_starts(center, R, W, K)
        taps = a.unsqueeze(1) + torch.arange(W, device=a.device)
        vals = w.unsqueeze(1) * window_taps(center, width(self.sigma).expand_as(center), K, a, W)
        index = SparseIndex(pre.repeat_interleave(W), post.repeat_interleave(W),
                            (K - 1 - taps).reshape(-1), n, K)
        return vals.reshape(-1), index

    # ---- export ---------------------------------------------------------------------------
    @torch.no_grad()
    def synapses(self) -> dict:
        """Existing synapses with integer delays: pre, post, delay (int64), weight (float32),
        sorted by (post, pre, delay); dcls at its rounded delays (trainer.checkpoint)."""
        w = self.effective_weight().detach()
        if self.method == "structure-multi":
            post, pre, delay = torch.nonzero(self.mask, as_tuple=True)
            weight = w[post, pre, delay]
        else:
            post, pre = torch.nonzero(self.mask, as_tuple=True)
            delay = self.integer_delays()[post, pre]
            weight = w[post, pre]
        order = torch.argsort((post * self.n + pre) * self.K + delay)
        return {"pre": pre[order].cpu().to(torch.int64), "post": post[order].cpu().to(torch.int64),
                "delay": delay[order].cpu().to(torch.int64),
                "weight": weight[order].cpu().to(torch.float32).contiguous()}


# ---- how the synapse count splits -------------------------------------------------------------
def synapse_counts(cfg: dict, n_in: int, n_classes: int, sparsity: float) -> dict:
    """{"feed_forward": [per connection layer], "recurrent": [per hidden layer, or empty]}:
    the synapses a network of this config keeps at ``sparsity`` (every candidate set keeps
    round((1 - sparsity) * candidates), at least 1: trainer.layers.n_connections)."""
    sizes = [n_in, *cfg["hidden"], n_classes]
    K = cfg["kernel_size"]
    per_pair = K if cfg["method"] == "structure-multi" else 1
    ff = [n_connections(a * b * per_pair, sparsity) for a, b in zip(sizes[:-1], sizes[1:])]
    rec = []
    if cfg.get("recurrent", False):
        Kr = recurrent_kernel_size(cfg)
        rec = [n_connections(candidate_count(cfg["method"], h, Kr), sparsity)
               for h in cfg["hidden"]]
    return {"feed_forward": ff, "recurrent": rec}


def recurrent_kernel_size(cfg: dict) -> int:
    """Recurrent delay taps from the config: recurrent_kernel_size, 0 = kernel_size."""
    k = int(cfg.get("recurrent_kernel_size", 0))
    return k if k > 0 else int(cfg["kernel_size"])


def split_sparsity(cfg: dict, n_in: int, n_classes: int) -> tuple[float, list[float]]:
    """(sparsity of the feed-forward layers, [sparsity of each hidden layer's recurrent set]).

    By default every candidate set keeps (1 - ``sparsity``) of itself: the recurrent synapses
    come on top of the feed-forward ones. With ``recurrent_equal_synapses`` the network keeps
    exactly as many synapses in all as the feed-forward network alone at ``sparsity``: one
    sparsity S' >= sparsity for every set, the smallest at which the total is not above that
    count (bisection on the exact counts), and the first recurrent set takes the rounding
    remainder (at most a few synapses; its own sparsity then differs from S' by that much).
    ValueError when even one synapse per set is too many."""
    s = float(cfg["sparsity"])
    if not cfg.get("recurrent", False):
        return s, []
    n_hidden = len(cfg["hidden"])
    if not cfg.get("recurrent_equal_synapses", False):
        return s, [s] * n_hidden
    target = sum(synapse_counts({**cfg, "recurrent": False}, n_in, n_classes, s)["feed_forward"])

    def total(x: float) -> int:
        c = synapse_counts(cfg, n_in, n_classes, x)
        return sum(c["feed_forward"]) + sum(c["recurrent"])

    lo, hi = s, 1.0 - 1e-12    # total(lo) > target (the recurrent sets add synapses)
    if total(hi) > target:
        raise ValueError(f"recurrent_equal_synapses: the feed-forward network keeps only "
                         f"{target} synapses at sparsity {s}, fewer than one per feed-forward "
                         f"and recurrent set; lower the sparsity")
    while True:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if total(mid) > target else (lo, mid)
    rec = [hi] * n_hidden
    left = target - total(hi)
    if left:
        Kr = recurrent_kernel_size(cfg)
        c0 = candidate_count(cfg["method"], cfg["hidden"][0], Kr)
        r0 = synapse_counts(cfg, n_in, n_classes, hi)["recurrent"][0] + left
        rec[0] = 1.0 - r0 / c0
        if r0 > c0 or n_connections(c0, rec[0]) != r0:
            raise ValueError(f"recurrent_equal_synapses: cannot place {left} remaining "
                             f"synapse(s) in the first recurrent set ({c0} candidates); "
                             f"choose another sparsity")
    return hi, rec
