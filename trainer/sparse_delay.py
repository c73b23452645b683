"""Sparse execution of a delay layer: cost grows with the existing synapses, not the candidates.

Synapses are (post, pre, delay) triples with weight w:
``I[b, post, t] = sum w * x[b, pre, t-delay]``.
The input is laid out as (n_in, K-1+T, B) with K-1 zero steps in front, so that the delayed
signal of one presynaptic neuron, ``x[pre, t - d]`` for all (t, b), is one contiguous row of
T*B floats starting at step K-1-d (a view of the buffer, no copy per delay). Then:

  forward   the U distinct (pre, delay) rows the synapses use are gathered into G (U, T*B), and
            I (n_out, T*B) = W (n_out, U) @ G with W a CSR matrix holding one entry per synapse;
  backward  dL/dx: the same with roles swapped: the distinct (post, delay) rows of dL/dI (zero
            steps appended at the end, so a row starting at step d is dL/dI[post, t + d]) times
            a CSR (n_in, U') matrix; dL/dw: one dot product per synapse, the CSR-sampled product
            (torch.sparse.sampled_addmm) of dL/dI and G.
Work and memory: O(synapses * T * B) plus O((n_in + n_out) * (T + K) * B) for the buffers.

RigL's regrowth score needs dL/dw at every candidate, connected or not; that costs as much as a
dense layer, so it is only computed when asked for (``CandidateGrad.wanted``, set on regrowth
steps): ``dL/dw[post, pre, d] = sum_{t,b} dL/dI[post, t, b] * x[pre, t - d, b]``, one dense
matrix product per delay. Device-agnostic torch operations (CSR products on CPU and CUDA).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch


@dataclass
class SynapsePlan:
    """Index structures for a fixed set of synapses (rebuilt when the connections change).

    post, pre, delay: int64 (nnz,), in the order of the layer's weight vector;
    K: number of delay taps (delays 0..K-1 steps); n_in, n_out: layer sizes.
    """
    n_in: int
    n_out: int
    K: int
    nnz: int
    in_rows: torch.Tensor      # (U,) distinct pre*K + (K-1-delay): rows of the input unfold
    fwd_crow: torch.Tensor     # CSR (n_out, U): row pointers
    fwd_col: torch.Tensor      # column (index into in_rows) of each entry
    fwd_perm: torch.Tensor     # synapse index of each CSR entry
    g_rows: torch.Tensor       # (U',) distinct post*K + delay: rows of the dL/dI unfold
    bwd_crow: torch.Tensor     # CSR (n_in, U'): row pointers
    bwd_col: torch.Tensor
    bwd_perm: torch.Tensor


def _csr(rows: torch.Tensor, keys: torch.Tensor, n_rows: int):
    """Distinct keys, and a CSR layout with one entry per (row, key): (distinct keys, crow,
    col, perm) where perm[j] is the input position of CSR entry j (sorted by row, then col)."""
    uniq, col = torch.unique(keys, return_inverse=True)
    perm = torch.argsort(rows * len(uniq) + col)
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n_rows), 0)
    return uniq, crow, col[perm], perm


def build_plan(post: torch.Tensor, pre: torch.Tensor, delay: torch.Tensor, n_in: int, n_out: int,
               K: int) -> SynapsePlan:
    """SynapsePlan of synapses (post, pre, delay) (int64, one device); each triple at most once."""
    post, pre, delay = post.long(), pre.long(), delay.long()
    in_rows, fwd_crow, fwd_col, fwd_perm = _csr(post, pre * K + (K - 1 - delay), n_out)
    g_rows, bwd_crow, bwd_col, bwd_perm = _csr(pre, post * K + delay, n_in)
    return SynapsePlan(n_in, n_out, K, len(post), in_rows, fwd_crow, fwd_col, fwd_perm,
                       g_rows, bwd_crow, bwd_col, bwd_perm)


def _pad_steps(x: torch.Tensor, front: int, back: int) -> torch.Tensor:
    """(n, T, B) -> contiguous (n, front+T+back, B) with zero steps around x (as F.pad, with one
    write of the buffer instead of a fill and a copy)."""
    n, T, B = x.shape
    out = x.new_empty(n, front + T + back, B)
    out[:, :front].zero_()
    out[:, front + T:].zero_()
    out[:, front:front + T].copy_(x)
    return out


def _unfold(buf: torch.Tensor, K: int, T: int) -> torch.Tensor:
    """(n, K-1+T, B) contiguous -> view (n, K, T*B) with [i, j] = buf[i, j:j+T] flattened."""
    n, _, B = buf.shape
    return buf.view(n, -1).unfold(1, T * B, B)


def _rows(buf: torch.Tensor, rows: torch.Tensor, K: int, T: int) -> torch.Tensor:
    """Gather rows (flat index i*K + j) of the unfold of buf: (len(rows), T*B)."""
    return _unfold(buf, K, T)[rows // K, rows % K]


class CandidateGrad:
    """Receives dL/dw at every candidate (n_out, n_in, K) on backward passes where ``wanted``."""

    def __init__(self):
        self.wanted = False
        self.grad: torch.Tensor | None = None


def _csr_matrix(crow, col, values, shape):
    with warnings.catch_warnings():     # torch's one-time "CSR support is in beta" notice
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def csr_mm(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """A (CSR, m x k) @ X (dense, k x n) -> a new dense (m, n). On CPU the product is written
    straight into an uninitialised result (addmm with beta 0 never reads it): torch.sparse.mm
    zero-fills a result and copies the product into it, two extra passes over m x n floats
    that cost several times the product itself for the hidden layer's (T*256, B) currents.
    The same values (tests/test_trainer_sparse_path.py); other devices use torch.sparse.mm."""
    if X.device.type != "cpu":
        return torch.sparse.mm(A, X)
    out = X.new_empty(A.shape[0], X.shape[1])
    return torch.addmm(out, A, X, beta=0, out=out)


class SparseDelayFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, plan: SynapsePlan, sink: CandidateGrad | None):
        B, n_in, T = x.shape
        K = plan.K
        xp = _pad_steps(x.detach().permute(1, 2, 0), K - 1, 0)     # (n_in, K-1+T, B)
        G = _rows(xp, plan.in_rows, K, T)
        W = _csr_matrix(plan.fwd_crow, plan.fwd_col, w.detach()[plan.fwd_perm].contiguous(),
                        (plan.n_out, len(plan.in_rows)))
        out = csr_mm(W, G) if plan.nnz else G.new_zeros(plan.n_out, T * B)
        ctx.save_for_backward(w, G, xp)
        ctx.plan, ctx.sink, ctx.shape = plan, sink, (B, n_in, T)
        return out.view(plan.n_out, T, B).permute(2, 0, 1)  # (B, n_out, T), memory (n_out, T, B)

    @staticmethod
    def backward(ctx, grad_out):
        w, G, xp = ctx.saved_tensors
        plan, sink = ctx.plan, ctx.sink
        B, n_in, T = ctx.shape
        K = plan.K
        gI = grad_out.permute(1, 2, 0).contiguous().view(plan.n_out, T * B)
        grad_x = grad_w = None
        if ctx.needs_input_grad[1]:
            pattern = _csr_matrix(plan.fwd_crow, plan.fwd_col,
                                  gI.new_zeros(plan.nnz), (plan.n_out, len(plan.in_rows)))
            vals = torch.sparse.sampled_addmm(pattern, gI, G.t(), beta=0.0).values()
            grad_w = torch.empty_like(vals)
            grad_w[plan.fwd_perm] = vals
        if ctx.needs_input_grad[0]:
            gp = _pad_steps(gI.view(plan.n_out, T, B), 0, K - 1)
            Gg = _rows(gp, plan.g_rows, K, T)
            Wt = _csr_matrix(plan.bwd_crow, plan.bwd_col, w.detach()[plan.bwd_perm].contiguous(),
                             (n_in, len(plan.g_rows)))
            gx = csr_mm(Wt, Gg) if plan.nnz else Gg.new_zeros(n_in, T * B)
            grad_x = gx.view(n_in, T, B).permute(2, 0, 1)
        if sink is not None and sink.wanted:
            sink.grad = candidate_grad(gI, xp, K, T)
        return grad_x, grad_w, None, None


def candidate_grad(gI: torch.Tensor, xp: torch.Tensor, K: int, T: int) -> torch.Tensor:
    """Dense dL/dw (n_out, n_in, K) at every (post, pre, delay): gI (n_out, T*B), xp the
    front-padded input (n_in, K-1+T, B). Costs as much as a dense layer's weight gradient."""
    U = _unfold(xp, K, T)                               # (n_in, K, T*B); tap j = delay K-1-j
    return torch.stack([gI @ U[:, K - 1 - d].t() for d in range(K)], dim=-1)


def sparse_delay(x: torch.Tensor, w: torch.Tensor, plan: SynapsePlan,
                 sink: CandidateGrad | None = None) -> torch.Tensor:
    """x (B, n_in, T), synapse weights w (nnz,) in plan order -> current (B, n_out, T), a view
    of memory laid out (n_out, T, B) (what the LIF and BatchNorm of trainer.model use in place)."""
    if x.dim() != 3 or x.shape[1] != plan.n_in or w.shape != (plan.nnz,):
        raise ValueError(f"sparse_delay: x {tuple(x.shape)} must be (B, {plan.n_in}, T) and w "
                         f"{tuple(w.shape)} must be ({plan.nnz},)")
    return SparseDelayFn.apply(x, w, plan, sink)
