"""Dense delay convolution ``I[o, t] = sum_{p, j} k[o, p, j] * x[p, t - (K-1-j)]`` (causal,
left padding K-1), by whichever of two formulations moves less data.

  input side   conv1d (torch's own kernel): for layers with at least as many outputs as
               inputs (40 -> 256); its work is implicit im2col of the n_in inputs.
  output side  one GEMM of every step's input with all K taps, then K shifted adds:
               Y[(t, b), (j, o)] = sum_p x[t, b, p] k[o, p, j], then
               I[t, b, o] = sum_j Y[t - d_j, b, j, o] (d_j = K-1-j). For layers with fewer
               outputs than inputs (the readout, 256 -> 10), whose n_out * K columns are
               few: torch's conv1d backward for that shape is several times slower than
               these three GEMMs (docs/sparse_training.md, "Dense DCLS").
The output side works in time-major memory: x laid out (T, B, n_in) (the LIF's output) is
read in place, and the current comes out laid out (T, B, n_out), the layout the LIF and the
leaky integrator use. Both give the same result up to float rounding; CPU and CUDA alike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """(B, n, T) -> contiguous (T, B, n) (no copy when x is laid out so already)."""
    return x.permute(2, 0, 1).contiguous()


class OutputSideConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel):
        B, n_in, T = x.shape
        n_out, _, K = kernel.shape
        X = _time_major(x).view(T * B, n_in)
        Kc = kernel.permute(1, 2, 0).reshape(n_in, K * n_out)            # columns (j, o)
        Y = (X @ Kc).view(T, B, K, n_out)
        out = Y.new_zeros(T, B, n_out)
        for j in range(K):
            d = K - 1 - j
            if d < T:
                out[d:] += Y[:T - d, :, j]
        ctx.save_for_backward(X, Kc)
        ctx.dims = (B, n_in, T, n_out, K)
        return out.permute(1, 2, 0)                                       # (B, n_out, T)

    @staticmethod
    def backward(ctx, grad):
        X, Kc = ctx.saved_tensors
        B, n_in, T, n_out, K = ctx.dims
        g = _time_major(grad)                                             # (T, B, n_out)
        gY = g.new_empty(T, B, K, n_out)
        for j in range(K):
            d = K - 1 - j
            if d < T:
                gY[:T - d, :, j] = g[d:]
            gY[max(T - d, 0):, :, j] = 0
        gY2 = gY.view(T * B, K * n_out)
        grad_x = grad_k = None
        if ctx.needs_input_grad[0]:
            grad_x = (gY2 @ Kc.t()).view(T, B, n_in).permute(1, 2, 0)
        if ctx.needs_input_grad[1]:
            grad_k = (X.t() @ gY2).view(n_in, K, n_out).permute(2, 0, 1)
        return grad_x, grad_k


def uses_output_side(n_in: int, n_out: int) -> bool:
    """The output-side formulation for layers with fewer outputs than inputs."""
    return n_out < n_in


def delay_conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """x (B, n_in, T), kernel (n_out, n_in, K) -> current (B, n_out, T)."""
    n_out, n_in, K = kernel.shape
    if x.dim() != 3 or x.shape[1] != n_in:
        raise ValueError(f"delay_conv: x {tuple(x.shape)} must be (B, {n_in}, T)")
    if uses_output_side(n_in, n_out):
        return OutputSideConv.apply(x, kernel)
    return F.conv1d(F.pad(x, (K - 1, 0)), kernel)
