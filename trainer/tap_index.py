"""The sparse DCLS index (trainer.sparse_dcls), built by a compiled CPU loop.

trainer.sparse_dcls multiplies by time-unrolled CSR matrices with T * S * W entries (2.6 M for
the hidden layer of 40 -> 256 at sparsity 0.9 with W = 25 taps). Their index is rebuilt
whenever rewiring changes the connections (DEEP R does on most steps early in training) or a
synapse's window moves; with torch operations that takes ~10 int64 passes over the entries
(118 ms for that layer on 2 threads, more than its forward product). These loops write each
entry once, in the same order, so the index is the same integers and the products the same
floats bit for bit (tests/test_tap_index.py).

Layouts (trainer.sparse_dcls, "padded" input: K-1 zero steps in front, L = K-1+T steps):

    forward   row (o, t); entries: the slots i = s*W + r of the synapses s of post o (sorted by
              (post, pre)), r = 0..W-1; column pre_s*L + t + a_s + r; value index i.
              "kept" (the input used in place, (n_in, T, B)): only entries whose input step
              t + a_s + r - (K-1) >= 0, column pre_s*T + that step.
    backward  row (p, t); entries: synapses s' in (pre, post) order (perm), r' = 0..W-1;
              tap a_s + W-1-r' of s = perm[s']; column post_s*L + (K-1 - tap) + t; value
              index s*W + W-1-r'.

Built on first use with the compiled kernels of trainer.lif_kernel (the same compiler and
cache, and the same setting: ``lif_kernel`` "auto" uses it on CPU when it builds, "cpp"
requires it, "torch" uses the torch operations).
"""
from __future__ import annotations

import sys

import torch

from .lif_kernel import KERNELS, compile_extension

_NAME = "delaysnn_tap_index_v1"  # change with the source
_module = None
_error: str | None = None
_warned = False

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

// first synapse of each row neuron: synapses sorted by `row` (int64, values < n)
static std::vector<int64_t> starts(const int64_t* row, int64_t S, int64_t n) {
  std::vector<int64_t> st(n + 1, 0);
  for (int64_t s = 0; s < S; ++s) st[row[s] + 1]++;
  for (int64_t i = 0; i < n; ++i) st[i + 1] += st[i];
  return st;
}

// forward layout: {crow (n_out*T+1), col, value index}; see trainer/tap_index.py
std::vector<torch::Tensor> tap_index_fwd(torch::Tensor post, torch::Tensor pre, torch::Tensor a,
                                         int64_t n_out, int64_t K, int64_t T, int64_t W,
                                         bool kept) {
  TORCH_CHECK(post.is_contiguous() && pre.is_contiguous() && a.is_contiguous() &&
              post.scalar_type() == torch::kInt64 && pre.scalar_type() == torch::kInt64 &&
              a.scalar_type() == torch::kInt64, "tap_index_fwd: contiguous int64");
  const int64_t S = post.numel(), L = K - 1 + T;
  const int64_t* P = post.data_ptr<int64_t>();
  const int64_t* Q = pre.data_ptr<int64_t>();
  const int64_t* A = a.data_ptr<int64_t>();
  const std::vector<int64_t> st = starts(P, S, n_out);
  auto crow = torch::empty({n_out * T + 1}, post.options());
  int64_t* C = crow.data_ptr<int64_t>();
  C[0] = 0;
  at::parallel_for(0, n_out, 1, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o)
      for (int64_t t = 0; t < T; ++t) {
        int64_t len = (st[o + 1] - st[o]) * W;
        if (kept)  // taps r with t + a + r < K-1 read the padding: left out
          for (int64_t s = st[o]; s < st[o + 1]; ++s)
            len -= std::min<int64_t>(W, std::max<int64_t>(0, K - 1 - t - A[s]));
        C[o * T + t + 1] = len;
      }
  });
  for (int64_t i = 0; i < n_out * T; ++i) C[i + 1] += C[i];
  const int64_t nnz = C[n_out * T];
  auto col = torch::empty({nnz}, post.options());
  auto val = torch::empty({nnz}, post.options());
  int64_t* Cl = col.data_ptr<int64_t>();
  int64_t* V = val.data_ptr<int64_t>();
  at::parallel_for(0, n_out, 1, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o)
      for (int64_t t = 0; t < T; ++t) {
        int64_t k = C[o * T + t];
        for (int64_t s = st[o]; s < st[o + 1]; ++s)
          for (int64_t r = 0; r < W; ++r) {
            const int64_t tap = t + A[s] + r;
            if (kept) {
              if (tap < K - 1) continue;
              Cl[k] = Q[s] * T + tap - (K - 1);
            } else {
              Cl[k] = Q[s] * L + tap;
            }
            V[k++] = s * W + r;
          }
      }
  });
  return {crow, col, val};
}

// backward layout: {crow (n_in*T+1), col, value index}; perm: synapses in (pre, post) order
std::vector<torch::Tensor> tap_index_bwd(torch::Tensor post, torch::Tensor pre,
                                         torch::Tensor perm, torch::Tensor a, int64_t n_in,
                                         int64_t K, int64_t T, int64_t W) {
  TORCH_CHECK(post.is_contiguous() && pre.is_contiguous() && perm.is_contiguous() &&
              a.is_contiguous() && perm.scalar_type() == torch::kInt64,
              "tap_index_bwd: contiguous int64");
  const int64_t S = post.numel(), L = K - 1 + T;
  const int64_t* P = post.data_ptr<int64_t>();
  const int64_t* Q = pre.data_ptr<int64_t>();
  const int64_t* M = perm.data_ptr<int64_t>();
  const int64_t* A = a.data_ptr<int64_t>();
  std::vector<int64_t> row(S);
  for (int64_t i = 0; i < S; ++i) row[i] = Q[M[i]];
  const std::vector<int64_t> st = starts(row.data(), S, n_in);
  auto crow = torch::empty({n_in * T + 1}, post.options());
  int64_t* C = crow.data_ptr<int64_t>();
  C[0] = 0;
  for (int64_t p = 0; p < n_in; ++p)
    for (int64_t t = 0; t < T; ++t)
      C[p * T + t + 1] = C[p * T + t] + (st[p + 1] - st[p]) * W;
  const int64_t nnz = C[n_in * T];
  auto col = torch::empty({nnz}, post.options());
  auto val = torch::empty({nnz}, post.options());
  int64_t* Cl = col.data_ptr<int64_t>();
  int64_t* V = val.data_ptr<int64_t>();
  at::parallel_for(0, n_in, 1, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p)
      for (int64_t t = 0; t < T; ++t) {
        int64_t k = C[p * T + t];
        for (int64_t i = st[p]; i < st[p + 1]; ++i) {
          const int64_t s = M[i];
          for (int64_t r = 0; r < W; ++r) {
            const int64_t tap = A[s] + W - 1 - r;
            Cl[k] = P[s] * L + (K - 1 - tap) + t;
            V[k++] = s * W + W - 1 - r;
          }
        }
      }
  });
  return {crow, col, val};
}
"""


def _build():
    global _module, _error
    if _module is None and _error is None:
        _module, _error = compile_extension(_NAME, _SOURCE, ["tap_index_fwd", "tap_index_bwd"])
    return _module


def use_compiled(kernel: str, device: torch.device) -> bool:
    """Whether the index of a layer on `device` is built here under setting `kernel`
    (trainer.lif_kernel's setting). Raises ValueError for an unknown setting, RuntimeError for
    "cpp" where it cannot run."""
    global _warned
    if kernel not in KERNELS:
        raise ValueError(f"lif_kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "torch" or device.type != "cpu":
        if kernel == "cpp" and device.type != "cpu":
            raise RuntimeError(f"lif_kernel 'cpp' runs on CPU only, got {device}: use "
                               "lif_kernel 'auto' or 'torch'")
        return False
    if _build() is None:
        if kernel == "cpp":
            raise RuntimeError(f"lif_kernel 'cpp': the sparse DCLS index could not be built "
                               f"({_error}): install a C++ compiler and ninja, or use "
                               "lif_kernel 'torch'")
        if not _warned:
            _warned = True
            print(f"lif_kernel auto: the compiled sparse DCLS index is unavailable ({_error}); "
                  "torch operations build it instead (the same index, slower)",
                  file=sys.stderr, flush=True)
        return False
    return True


def forward_index(post, pre, a, n_out: int, K: int, T: int, W: int, kept: bool):
    """(crow, col, value index) of the forward layout (module docstring); int64 CPU."""
    assert _module is not None
    return tuple(_module.tap_index_fwd(post.contiguous(), pre.contiguous(), a.contiguous(),
                                       n_out, K, T, W, kept))


def backward_index(post, pre, perm, a, n_in: int, K: int, T: int, W: int):
    """(crow, col, value index) of the backward layout (module docstring); int64 CPU."""
    assert _module is not None
    return tuple(_module.tap_index_bwd(post.contiguous(), pre.contiguous(), perm.contiguous(),
                                       a.contiguous(), n_in, K, T, W))
