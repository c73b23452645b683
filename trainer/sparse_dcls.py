"""Sparse execution of a truncated DCLS layer: cost grows with synapses x kept taps.

Each synapse s = (post o, pre p) keeps W consecutive taps a_s..a_s+W-1 (trainer.dcls_taps),
tap j = delay K-1-j, with weights k[s, r] (r = 0..W-1, tap a_s + r):

    I[o, t, b] = sum_s sum_r k[s, r] * xp[p, t + a_s + r, b],

xp the input laid out (n_in, L, B), L = K-1+T, with K-1 zero steps in front. This is the
product of a sparse matrix A (n_out*T, n_in*L) with xp viewed as (n_in*L, B): row (o, t) of
A holds k[s, r] at column (p, t + a_s + r), one entry per (synapse, tap, step), T * S * W in
all. The delays are column shifts, so no delayed copy of the input is made, each product
reads rows of B floats, and consecutive rows (o, t), (o, t+1) read nearly the same input rows
(they stay in cache). An input already laid out (n_in, T, B) in memory (the LIF's spikes, 26 MB
at batch 256) is not copied: the entries on the zero steps add nothing, so they are left out
of the matrix multiplied, whose columns then index the input itself. Each row keeps its other
entries in the same order, so the sums are the padded product's, bit for bit
(tests/test_trainer_step_cost.py). Any other input (the features) is copied anyway, with the
zero steps in front.

  forward   I = A @ xp                      (CSR product, trainer.sparse_delay.csr_mm)
  backward  dL/dx = A^T @ dL/dI, built the same way: rows (p, t), columns (o, t + delay) of
            dL/dI laid out (n_out, L, B) with K-1 zero steps at the end;
            dL/dk[s, r] = sum over t of dL/dI[o, t] . xp[p, t + a_s + r]
                                              (torch.sparse.sampled_addmm, summed per slot)
  RigL      dL/dk at every candidate (post, pre, tap) only when asked for (CandidateGrad): it
            costs as much as a dense layer. With fewer outputs than inputs (the readout:
            10 x 256) ``candidate_grad_by_output`` shifts dL/dI instead of the input and reads
            the input once per group of delays, not once per delay (~3x faster for the
            readout); else trainer.sparse_delay.candidate_grad. The same sums in another order.

Work O(T * S * W * B) per product; memory O(T * S * W) for the index. ``TapPlan`` holds the
index of each entry's slot (s, r) and step t (rebuilt when the connections or W change) and
the columns (recomputed when a synapse's window moves; those without the padding once per
window change, when first asked for). On CPU (``build_tap_plan(..., compiled=True)``, the
layer's choice under lif_kernel's setting) trainer.tap_index builds the same integers in one
compiled pass per layout, when first asked for after the windows are set. The current comes
out laid out (n_out, T, B) in memory, as a (B, n_out, T) view, the structure path's layout
(trainer.sparse_delay), which BatchNorm and the LIF use in place. Device-agnostic torch
operations (CSR products on CPU and CUDA).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .sparse_delay import CandidateGrad, _csr_matrix, _pad_steps, candidate_grad, csr_mm


@dataclass
class _Layout:
    """One orientation of the time-unrolled CSR: rows (row neuron, t), each listing the slots
    (synapse, tap) of its row neuron, in the layout's slot order, at step t."""
    crow: torch.Tensor            # (n_rows*T + 1,)
    slot: torch.Tensor            # (nnz,) slot of each entry, in the layout's slot order
    step: torch.Tensor            # (nnz,) step t of each entry
    q: torch.Tensor               # (S*W,) flat (synapse, tap) weight index of each slot
    col_neuron: torch.Tensor      # (S*W,) column neuron of each slot
    col: torch.Tensor | None = None
    kept: tuple[torch.Tensor, ...] | None = None   # (crow, col, slot) without the padding
    values: torch.Tensor | None = None             # q[slot]: the weight index of each entry


def _without_padding(lay: _Layout, K: int, T: int) -> tuple[torch.Tensor, ...]:
    """(crow, col, slot) of the forward layout's entries on the input's own steps (padded step
    K-1 or later), columns (neuron, step) of the input laid out (n, T, B); computed once per
    window change."""
    if lay.kept is None:
        assert lay.col is not None
        L = K - 1 + T
        neuron = torch.div(lay.col, L, rounding_mode="floor")
        step = lay.col - neuron * L - (K - 1)
        keep = step >= 0
        counts = torch.zeros(len(keep) + 1, dtype=torch.int64, device=keep.device)
        counts[1:] = torch.cumsum(keep, 0)
        lay.kept = (counts[lay.crow], (neuron * T + step)[keep], lay.slot[keep])
    return lay.kept


@dataclass
class TapPlan:
    """Index of S synapses with W kept taps each, for inputs of T steps (module docstring).
    The (S, W) tap weights are in the order of the synapses given to ``build_tap_plan``.
    ``compiled``: the layouts are built by trainer.tap_index (the same integers) when first
    asked for after ``set_window_starts``; else fwd / bwd hold the torch-built layouts."""
    n_in: int
    n_out: int
    K: int
    T: int
    W: int
    S: int
    fwd: _Layout | None
    bwd: _Layout | None
    perm: torch.Tensor              # backward slot order: synapses sorted by (pre, post)
    a: torch.Tensor | None = None   # window starts the columns were built for
    compiled: bool = False
    post: torch.Tensor | None = None
    pre: torch.Tensor | None = None
    _index: dict = field(default_factory=dict)   # compiled layouts of the current starts

    @property
    def nnz(self) -> int:
        return self.T * self.S * self.W

    def forward_index(self, kept: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(crow, col, slot of each entry) of the forward layout: the padded input's, or with
        ``kept`` the entries on the input's own steps, columns of the input (n_in, T, B)."""
        if not self.compiled:
            assert self.fwd is not None
            if kept:
                return _without_padding(self.fwd, self.K, self.T)  # type: ignore[return-value]
            assert self.fwd.col is not None
            return self.fwd.crow, self.fwd.col, self.fwd.slot
        key = "kept" if kept else "padded"
        if key not in self._index:
            from .tap_index import forward_index
            self._index[key] = forward_index(self.post, self.pre, self.a, self.n_out, self.K,
                                             self.T, self.W, kept)
        return self._index[key]

    def backward_index(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(crow, col, flat (synapse, tap) weight index of each entry) of the backward layout."""
        if not self.compiled:
            assert self.bwd is not None and self.bwd.col is not None
            if self.bwd.values is None:
                self.bwd.values = self.bwd.q[self.bwd.slot]
            return self.bwd.crow, self.bwd.col, self.bwd.values
        if "bwd" not in self._index:
            from .tap_index import backward_index
            self._index["bwd"] = backward_index(self.post, self.pre, self.perm, self.a,
                                                self.n_in, self.K, self.T, self.W)
        return self._index["bwd"]


def _layout(row_neuron: torch.Tensor, col_neuron: torch.Tensor, q: torch.Tensor, n_rows: int,
            T: int, W: int) -> _Layout:
    """Layout of synapses sorted by ``row_neuron`` (one per synapse), W slots each."""
    dev = row_neuron.device
    per = torch.bincount(row_neuron, minlength=n_rows) * W            # slots per row neuron
    first = torch.cumsum(per, 0) - per
    t = torch.arange(T, device=dev)
    row_len = per.repeat_interleave(T)                                # row (n, t)
    crow = torch.zeros(n_rows * T + 1, dtype=torch.int64, device=dev)
    crow[1:] = torch.cumsum(row_len, 0)
    nnz = int(crow[-1])
    # entry e of row (n, t) is slot first[n] + (e - crow[n, t])
    offset = (crow[:-1].view(n_rows, T) - first.unsqueeze(1)).reshape(-1)
    slot = (torch.arange(nnz, device=dev)
            - offset.repeat_interleave(row_len, output_size=nnz))
    step = t.repeat(n_rows).repeat_interleave(row_len, output_size=nnz)
    return _Layout(crow, slot, step, q, col_neuron.repeat_interleave(W))


def build_tap_plan(post: torch.Tensor, pre: torch.Tensor, W: int, n_in: int, n_out: int,
                   K: int, T: int, compiled: bool = False) -> TapPlan:
    """TapPlan of synapses (post, pre) (int64, one device; sorted by (post, pre), as the
    layer's mask order), W taps each, T steps; columns are set by ``set_window_starts``.
    ``compiled``: the layouts come from trainer.tap_index (CPU; see TapPlan)."""
    post, pre = post.long(), pre.long()
    S = len(post)
    perm = torch.argsort(pre * n_out + post, stable=True)
    if compiled:
        return TapPlan(n_in, n_out, K, T, W, S, None, None, perm, compiled=True,
                       post=post.contiguous(), pre=pre.contiguous())
    dev = post.device
    r = torch.arange(W, device=dev)
    fwd = _layout(post, pre, torch.arange(S * W, device=dev), n_out, T, W)
    # backward slot (s', r') is tap W-1-r' of synapse perm[s']: delays ascend along a row
    q_b = (perm.unsqueeze(1) * W + (W - 1 - r)).reshape(-1)
    bwd = _layout(pre[perm], post[perm], q_b, n_in, T, W)
    return TapPlan(n_in, n_out, K, T, W, S, fwd, bwd, perm)


def set_window_starts(plan: TapPlan, a: torch.Tensor) -> None:
    """Column indices of both layouts for window starts a (int64 (S,)); skipped when a is
    the one they were built for."""
    if plan.a is not None and plan.a.shape == a.shape and torch.equal(plan.a, a):
        return
    if plan.compiled:
        plan.a, plan._index = a.to(torch.int64).contiguous().clone(), {}
        return
    assert plan.fwd is not None and plan.bwd is not None
    K, W, L = plan.K, plan.W, plan.K - 1 + plan.T
    tap = (a.unsqueeze(1) + torch.arange(W, device=a.device)).reshape(-1)    # a + r
    base_f = plan.fwd.col_neuron * L + tap                  # input step t + a + r
    plan.fwd.col = base_f[plan.fwd.slot] + plan.fwd.step
    plan.fwd.kept = None
    base_b = plan.bwd.col_neuron * L + (K - 1 - tap[plan.bwd.q])      # gradient step t + delay
    plan.bwd.col = base_b[plan.bwd.slot] + plan.bwd.step
    plan.a = a.clone()


class SparseTapFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, taps, plan: TapPlan, sink: CandidateGrad | None):
        B, n_in, T = x.shape
        K, L, n_out = plan.K, plan.K - 1 + T, plan.n_out
        xt = x.detach().permute(1, 2, 0)                  # (n_in, T, B)
        ctx.padded = not xt.is_contiguous() or not plan.S
        if ctx.padded:      # a copy is made anyway: with the zero steps in front
            xt = _pad_steps(xt, K - 1, 0)                 # (n_in, L, B)
        n_cols = n_in * (L if ctx.padded else T)  # in place: the padding's entries left out
        if plan.S:
            crow, col, slot = plan.forward_index(kept=not ctx.padded)
            A = _csr_matrix(crow, col, taps.detach().reshape(-1)[slot], (n_out * T, n_cols))
            out = csr_mm(A, xt.view(n_cols, B))
        else:
            out = xt.new_zeros(n_out * T, B)
        ctx.save_for_backward(taps, xt)
        ctx.plan, ctx.sink = plan, sink
        return out.view(n_out, T, B).permute(2, 0, 1)    # (B, n_out, T), memory (n_out, T, B)

    @staticmethod
    def backward(ctx, grad_out):
        taps, xt = ctx.saved_tensors
        plan, sink = ctx.plan, ctx.sink
        n_in, _, B = xt.shape
        T, K, n_out, L = plan.T, plan.K, plan.n_out, plan.K - 1 + plan.T
        gI = grad_out.permute(1, 2, 0).contiguous()                         # (n_out, T, B)
        grad_x = grad_taps = None
        if ctx.needs_input_grad[1]:
            grad_taps = torch.zeros_like(taps)
            if plan.S:
                crow, col, slot = plan.forward_index(kept=not ctx.padded)
                n_cols = xt.shape[0] * xt.shape[1]
                pattern = _csr_matrix(crow, col, gI.new_zeros(len(col)), (n_out * T, n_cols))
                vals = torch.sparse.sampled_addmm(pattern, gI.view(n_out * T, B),
                                                  xt.reshape(n_cols, B).t(), beta=0.0).values()
                grad_taps.view(-1).index_add_(0, slot, vals)
        if ctx.needs_input_grad[0]:
            if plan.S:
                gp = _pad_steps(gI, 0, K - 1)                               # (n_out, L, B)
                crow, col, index = plan.backward_index()
                vals = taps.detach().reshape(-1)[index]
                At = _csr_matrix(crow, col, vals, (n_in * T, n_out * L))
                gx = csr_mm(At, gp.view(n_out * L, B))
            else:
                gx = gI.new_zeros(n_in * T, B)
            grad_x = gx.view(n_in, T, B).permute(2, 0, 1)
        if sink is not None and sink.wanted:    # dL/dk at every (post, pre, tap j)
            if n_out < n_in:
                x = (xt[:, K - 1:] if ctx.padded else xt).view(n_in, T * B)
                sink.grad = candidate_grad_by_output(gI, x, K).flip(-1)
            else:
                xp = xt if ctx.padded else _pad_steps(xt, K - 1, 0)         # (n_in, L, B)
                sink.grad = candidate_grad(gI.view(n_out, T * B), xp, K, T).flip(-1)
        return grad_x, grad_taps, None, None


CANDIDATE_GROUP_BYTES = 64 << 20  # candidate_grad_by_output: shifted copies per product


def candidate_grad_by_output(gI: torch.Tensor, x: torch.Tensor, K: int) -> torch.Tensor:
    """dL/dw (n_out, n_in, K) at every (post, pre, delay d) from dL/dI gI (n_out, T, B) and the
    input x (n_in, T*B) (rows may be strided):

        dL/dw[o, p, d] = sum_{t,b} gI[o, t, b] x[p, t-d, b] = sum_{t,b} gI[o, t+d, b] x[p, t, b]

    Rows (o, d) of gI shifted by d steps (zeros past the end) for a group of delays, then one
    matrix product with x per group, groups as large as CANDIDATE_GROUP_BYTES allows: x is
    read once per group instead of once per delay. Equal to trainer.sparse_delay.candidate_grad
    up to float rounding (the sums run in another order)."""
    n_out, T, B = gI.shape
    n_in = x.shape[0]
    out = gI.new_empty(n_out, n_in, K)
    group = max(1, min(K, CANDIDATE_GROUP_BYTES // max(1, n_out * T * B * gI.element_size())))
    for d0 in range(0, K, group):
        ds = range(d0, min(K, d0 + group))
        shifted = gI.new_zeros(n_out, len(ds), T, B)
        for i, d in enumerate(ds):
            if d < T:
                shifted[:, i, :T - d] = gI[:, d:]
        c = shifted.view(n_out * len(ds), T * B) @ x.t()                  # (n_out*G, n_in)
        out[:, :, d0:d0 + len(ds)] = c.view(n_out, len(ds), n_in).permute(0, 2, 1)
    return out


def sparse_dcls(x: torch.Tensor, taps: torch.Tensor, plan: TapPlan,
                sink: CandidateGrad | None = None) -> torch.Tensor:
    """x (B, n_in, T), kept-tap weights ``taps`` (S, W) in plan order (window starts set with
    ``set_window_starts``) -> current (B, n_out, T), a view of memory laid out (n_out, T, B).
    ``sink`` receives dL/dk (n_out, n_in, K) by tap j when ``sink.wanted``."""
    if (x.dim() != 3 or x.shape[1] != plan.n_in or x.shape[2] != plan.T
            or taps.shape != (plan.S, plan.W)):
        raise ValueError(f"sparse_dcls: x {tuple(x.shape)} must be (B, {plan.n_in}, {plan.T}) "
                         f"and taps {tuple(taps.shape)} must be ({plan.S}, {plan.W})")
    if plan.S and plan.a is None:
        raise ValueError("sparse_dcls: call set_window_starts(plan, a) first")
    return SparseTapFn.apply(x, taps, plan, sink)
