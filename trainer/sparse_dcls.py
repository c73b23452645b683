"""Sparse execution of a truncated DCLS layer: cost grows with synapses x kept taps.

Each synapse s = (post o, pre p) keeps W consecutive taps a_s..a_s+W-1 (trainer.dcls_taps),
tap j = delay K-1-j, with weights k[s, r] (r = 0..W-1, tap a_s + r):

    I[t, o, b] = sum_s sum_r k[s, r] * xp[t + a_s + r, p, b],

xp the input laid out time-major (L, n_in, B), L = K-1+T, with K-1 zero steps in front. This
is the product of a sparse matrix A (T*n_out, L*n_in) with xp viewed as (L*n_in, B): row
(t, o) of A holds k[s, r] at column (t + a_s + r, p), one entry per (step, synapse, tap),
T * S * W in all. The delays are column shifts, so no delayed copy of the input is made and
each product reads rows of B floats; and every step's rows have the same entries shifted by
n_in columns, so the index is one broadcast add of the S * W per-synapse columns.

  forward   I = A @ xp                                    (torch.sparse.mm, CSR)
  backward  dL/dx = A^T @ dL/dI, built the same way: rows (t, p), columns (t + delay, o) of
            dL/dI laid out (L, n_out, B) with K-1 zero steps at the end;
            dL/dk[s, r] = sum over t of dL/dI[t, o] . xp[t + a_s + r, p]
                                                         (torch.sparse.sampled_addmm, sum over t)
  RigL      dL/dk at every candidate (post, pre, tap) only when asked for (CandidateGrad), by
            trainer.sparse_delay.candidate_grad: it costs as much as a dense layer.

Work O(T * S * W * B) per product; memory O(T * S * W) for the index. ``TapPlan`` holds the
per-synapse part (rebuilt when the connections or W change) and the columns (recomputed when
a synapse's window moves, S * W work plus the broadcast). The current comes out laid out
(T, n_out, B) in memory, as a (B, n_out, T) view; BatchNorm (trainer.model) and the LIF
(trainer.neurons) use that layout in place. Device-agnostic torch operations (CSR products
on CPU and CUDA).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .sparse_delay import CandidateGrad, _csr_matrix, candidate_grad


@dataclass
class _Layout:
    """One orientation of the time-unrolled CSR: rows (t, row neuron)."""
    row_neuron: torch.Tensor      # (S*W,) row neuron of each slot (synapse-major, tap-minor)
    col_neuron: torch.Tensor      # (S*W,) column neuron of each slot
    n_rows: int                   # row neurons
    n_cols: int                   # column neurons
    order: torch.Tensor | None = None   # slots sorted by (row neuron, column)
    crow: torch.Tensor | None = None
    col: torch.Tensor | None = None


@dataclass
class TapPlan:
    """Index of S synapses with W kept taps each, for inputs of T steps (module docstring).

    post, pre: int64 (S,) in the order of the (S, W) tap weights."""
    n_in: int
    n_out: int
    K: int
    T: int
    W: int
    S: int
    fwd: _Layout
    bwd: _Layout
    a: torch.Tensor | None = None   # window starts the columns were built for

    @property
    def nnz(self) -> int:
        return self.T * self.S * self.W


def build_tap_plan(post: torch.Tensor, pre: torch.Tensor, W: int, n_in: int, n_out: int,
                   K: int, T: int) -> TapPlan:
    """TapPlan of synapses (post, pre) (int64, one device), W taps each, T steps; columns
    are set by ``set_window_starts``."""
    post, pre = post.long().repeat_interleave(W), pre.long().repeat_interleave(W)
    return TapPlan(n_in, n_out, K, T, W, len(post) // W if W else 0,
                   _Layout(post, pre, n_out, n_in), _Layout(pre, post, n_in, n_out))


def _set_columns(lay: _Layout, shift: torch.Tensor, L: int, T: int) -> None:
    """Sort the slots by (row neuron, column) for column offsets ``shift`` (steps, (S*W,))
    and build crow and col of the T-step layout."""
    dev = shift.device
    base = shift * lay.n_cols + lay.col_neuron               # column at step 0
    lay.order = torch.argsort(lay.row_neuron * (L * lay.n_cols) + base)
    n = len(base)
    per_row = torch.bincount(lay.row_neuron, minlength=lay.n_rows)
    first = torch.cumsum(per_row, 0) - per_row
    t = torch.arange(T, device=dev)
    crow = torch.empty(T * lay.n_rows + 1, dtype=torch.int64, device=dev)
    crow[:-1] = (t.unsqueeze(1) * n + first).reshape(-1)
    crow[-1] = T * n
    lay.crow = crow
    lay.col = (t.unsqueeze(1) * lay.n_cols + base[lay.order]).reshape(-1)


def set_window_starts(plan: TapPlan, a: torch.Tensor) -> None:
    """Columns of both layouts for window starts a (int64 (S,)); skipped when a is the one
    they were built for."""
    if plan.a is not None and plan.a.shape == a.shape and torch.equal(plan.a, a):
        return
    K, W, L = plan.K, plan.W, plan.K - 1 + plan.T
    tap = (a.unsqueeze(1) + torch.arange(W, device=a.device)).reshape(-1)   # a + r
    _set_columns(plan.fwd, tap, L, plan.T)                   # input step t + tap
    _set_columns(plan.bwd, K - 1 - tap, L, plan.T)           # gradient step t + delay
    plan.a = a.clone()


def _time_major_padded(x: torch.Tensor, front: int, back: int) -> torch.Tensor:
    """(B, n, T) -> contiguous (front + T + back, n, B) with zero steps around x."""
    B, n, T = x.shape
    out = x.new_empty(front + T + back, n, B)
    out[:front].zero_()
    out[front + T:].zero_()
    out[front:front + T].copy_(x.permute(2, 1, 0))
    return out


class SparseTapFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, taps, plan: TapPlan, sink: CandidateGrad | None):
        B, n_in, T = x.shape
        K, L, n_out = plan.K, plan.K - 1 + T, plan.n_out
        xp = _time_major_padded(x.detach(), K - 1, 0)                      # (L, n_in, B)
        if plan.S:
            vals = taps.detach().reshape(-1)[plan.fwd.order].repeat(T)
            A = _csr_matrix(plan.fwd.crow, plan.fwd.col, vals, (T * n_out, L * n_in))
            out = torch.sparse.mm(A, xp.view(L * n_in, B))
        else:
            out = xp.new_zeros(T * n_out, B)
        ctx.save_for_backward(taps, xp)
        ctx.plan, ctx.sink = plan, sink
        return out.view(T, n_out, B).permute(2, 1, 0)    # (B, n_out, T), memory (T, n_out, B)

    @staticmethod
    def backward(ctx, grad_out):
        taps, xp = ctx.saved_tensors
        plan, sink = ctx.plan, ctx.sink
        L, n_in, B = xp.shape
        T, K, n_out = plan.T, plan.K, plan.n_out
        gI = grad_out.permute(2, 1, 0).contiguous()                         # (T, n_out, B)
        grad_x = grad_taps = None
        if ctx.needs_input_grad[1]:
            grad_taps = torch.zeros_like(taps)
            if plan.S:
                pattern = _csr_matrix(plan.fwd.crow, plan.fwd.col, gI.new_zeros(plan.nnz),
                                      (T * n_out, L * n_in))
                vals = torch.sparse.sampled_addmm(pattern, gI.view(T * n_out, B),
                                                  xp.view(L * n_in, B).t(), beta=0.0).values()
                grad_taps.view(-1)[plan.fwd.order] = vals.view(T, -1).sum(0)
        if ctx.needs_input_grad[0]:
            if plan.S:
                gp = gI.new_empty(L, n_out, B)
                gp[:T].copy_(gI)
                gp[T:].zero_()
                vals = taps.detach().reshape(-1)[plan.bwd.order].repeat(T)
                At = _csr_matrix(plan.bwd.crow, plan.bwd.col, vals, (T * n_in, L * n_out))
                gx = torch.sparse.mm(At, gp.view(L * n_out, B))
            else:
                gx = gI.new_zeros(T * n_in, B)
            grad_x = gx.view(T, n_in, B).permute(2, 1, 0)
        if sink is not None and sink.wanted:    # dL/dk at every (post, pre, tap j)
            g2 = gI.permute(1, 0, 2).reshape(n_out, T * B)
            x2 = xp.permute(1, 0, 2).contiguous()                           # (n_in, L, B)
            sink.grad = candidate_grad(g2, x2, K, T).flip(-1)
        return grad_x, grad_taps, None, None


def sparse_dcls(x: torch.Tensor, taps: torch.Tensor, plan: TapPlan,
                sink: CandidateGrad | None = None) -> torch.Tensor:
    """x (B, n_in, T), kept-tap weights ``taps`` (S, W) in plan order (window starts set with
    ``set_window_starts``) -> current (B, n_out, T), a view of memory laid out (T, n_out, B).
    ``sink`` receives dL/dk (n_out, n_in, K) by tap j when ``sink.wanted``."""
    if (x.dim() != 3 or x.shape[1] != plan.n_in or x.shape[2] != plan.T
            or taps.shape != (plan.S, plan.W)):
        raise ValueError(f"sparse_dcls: x {tuple(x.shape)} must be (B, {plan.n_in}, {plan.T}) "
                         f"and taps {tuple(taps.shape)} must be ({plan.S}, {plan.W})")
    if plan.S and plan.fwd.col is None:
        raise ValueError("sparse_dcls: call set_window_starts(plan, a) first")
    return SparseTapFn.apply(x, taps, plan, sink)
