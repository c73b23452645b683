"""Compiled CPU kernels for the hidden layers' BatchNorm + LIF (and the readout's leaky
integrator, ``LIKernel``): the whole time loop in one pass.

The LIF's torch-op path runs ~10 small elementwise ops per time step (trainer.neurons
``_LIFSequence``), each one pass over a (B, N) slice, strided in the sparse paths' (N, T, B)
layout, and BatchNorm adds its own passes before it. These kernels do the same arithmetic per
element in one C++ loop over time, with the membrane in a small buffer, vectorised along the
innermost memory axis and split over torch's intra-op threads (OpenMP). Per step and element,
forward (trainer.neurons, equations there):

    u = v + I[t];  s = u > threshold;  slope = (alpha/2) / (1 + (pi/2 alpha (u - threshold))^2)
    w = decay * u;  v = w - w * s

and backward (g the gradient carried back through the membrane, times decay):

    x = g - g * s[t];  dI[t] = fma(dL/ds[t], slope[t], x);  g = decay * dI[t]

``LIFKernel`` (``lif_sequence(..., kernel=)``): the operations and their order are the torch
path's (``fma`` where ATen's vectorised addcmul contracts to one, as its AVX2 build does), so
the spikes are bit-identical to it and the gradients equal it up to float rounding
(bit-identical on the machine measured; tests/test_lif_kernel.py).

``BatchNormLIFKernel`` (``batchnorm_lif``, used by trainer.model in training mode): the batch
statistics in one float64 pass (``channel_sums``), then I[t] = fma(x[t], a, b) per neuron
inside the LIF loop, a = weight / sqrt(var + eps), b = bias - mean * a; its backward
accumulates BatchNorm's per-neuron sums while computing dI and applies BatchNorm's gradient in
one more pass (``affine_combine``). No normalised copy of the current is made, and neither
spikes nor slopes are kept for backward: it recomputes the membrane from the current, a block
of elements at a time in cache (``bn_lif_backward``), which reads two tensors from memory
instead of four, with the same floats as lif_backward on the kept ones; in (N, T, B) memory
with B <= 4096 a work item holds a whole neuron, and BatchNorm's gradient is applied there
too, in cache, instead of in affine_combine's extra pass (the same floats). Equal to
nn.BatchNorm1d + the LIF up to float rounding (its statistics are computed in another order).

Memory: the input seen as (P, T, Q), contiguous, with the state over Q: (N, T, B) memory gives
P = N, Q = B; (T, B, N) memory gives P = 1, Q = B * N; LIFKernel copies any other layout to
(T, B, N) and back (outputs and gradients come in the input's layout, as on the torch path).

Built on first use with torch.utils.cpp_extension (a C++ compiler, and ninja: the `ninja` PyPI
package is a dependency), cached by torch under TORCH_EXTENSIONS_DIR (default
~/.cache/torch_extensions), ~30 s once per machine. ``lif_kernel`` (trainer/defaults.toml):
"auto" uses them for float32 CPU tensors when they build, else the torch path, saying why once;
"cpp" requires them; "torch" never uses them. Speed: bench/train_speed.py
(docs/sparse_training.md).
"""
from __future__ import annotations

import os
import sys
import warnings

import torch

KERNELS = ("auto", "cpp", "torch")
_NAME = "delaysnn_lif_v10"  # change with the source, so a cached build of another one is not used
_CHUNK = 4096  # Q elements per work item (its state buffer: 16 KiB of float32)
_SUB = 512  # bn_lif_backward's block: T steps of its membrane (200 KiB at T = 100) stay in cache

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <vector>

// A work item's per-element sums (over its steps) into its float64 partial sums: one value per
// item when the item is one neuron (per_p), else one per channel, element q0 + q being channel
// (q0 + q) % n_ch (p1, p2: the item's n_ch slots)
template <typename S>
static inline void item_sums(const S* a1, const S* a2, int64_t n, int64_t q0, int64_t n_ch,
                             bool per_p, double* p1, double* p2) {
  if (per_p) {
    double t1 = 0.0, t2 = 0.0;
    for (int64_t q = 0; q < n; ++q) { t1 += (double)a1[q]; t2 += (double)a2[q]; }
    *p1 = t1;
    *p2 = t2;
  } else {
    for (int64_t q = 0; q < n; ++q) {
      p1[(q0 + q) % n_ch] += (double)a1[q];
      p2[(q0 + q) % n_ch] += (double)a2[q];
    }
  }
}

// The items' partial sums merged per channel, in item order (whatever the thread count)
static std::vector<torch::Tensor> merge_sums(const std::vector<double>& part1,
                                             const std::vector<double>& part2, int64_t items,
                                             int64_t nq, int64_t n_ch, bool per_p) {
  auto dopt = torch::TensorOptions().dtype(torch::kFloat64);
  auto sum1 = torch::zeros({n_ch}, dopt), sum2 = torch::zeros({n_ch}, dopt);
  double* r1 = sum1.data_ptr<double>();
  double* r2 = sum2.data_ptr<double>();
  for (int64_t item = 0; item < items; ++item) {
    if (per_p) {
      r1[item / nq] += part1[item];
      r2[item / nq] += part2[item];
    } else {
      for (int64_t ch = 0; ch < n_ch; ++ch) {
        r1[ch] += part1[item * n_ch + ch];
        r2[ch] += part2[item * n_ch + ch];
      }
    }
  }
  return {sum1, sum2};
}

// one step of n elements (trainer.neurons' arithmetic), compiled per variant
template <bool AFFINE, bool GRAD>
static inline void lif_step(const float* __restrict__ It, float* __restrict__ St,
                            float* __restrict__ Dt, float* __restrict__ v,
                            const float* __restrict__ av, const float* __restrict__ bv,
                            int64_t n, float thr, float c, float half, float decay) {
  for (int64_t q = 0; q < n; ++q) {
    const float cur = AFFINE ? std::fma(It[q], av[q], bv[q]) : It[q];
    const float u = v[q] + cur;
    const float s = u > thr ? 1.0f : 0.0f;
    St[q] = s;
    if (GRAD) {
      float d = (u - thr) * c;
      d = d * d;
      d = d + 1.0f;
      d = 1.0f / d;
      Dt[q] = d * half;
    }
    const float w = u * decay;
    v[q] = w - w * s;
  }
}

// x as (P, T, Q) contiguous float32; returns {spikes, slope (empty unless need_grad)}.
// With affine (a, b of n_ch channels): the current is fma(x, a[c], b[c]), c = p when
// n_ch == P ((N, T, B) memory), else c = q % n_ch ((T, B, N) memory).
std::vector<torch::Tensor> lif_forward(torch::Tensor x, int64_t P, int64_t T, int64_t Q,
                                       double decay_d, double thr_d, double alpha_d,
                                       bool need_grad, torch::Tensor a_t, torch::Tensor b_t) {
  TORCH_CHECK(x.is_contiguous() && x.scalar_type() == torch::kFloat32 && x.device().is_cpu(),
              "lif_forward: a contiguous float32 CPU tensor");
  TORCH_CHECK(x.numel() == P * T * Q, "lif_forward: shape");
  const bool affine = a_t.numel() > 0;
  const int64_t n_ch = a_t.numel();
  TORCH_CHECK(!affine || ((n_ch == P || Q % n_ch == 0) && b_t.numel() == n_ch &&
                          a_t.is_contiguous() && b_t.is_contiguous()), "lif_forward: affine");
  const bool per_p = affine && n_ch == P && P > 1;
  auto spikes = torch::empty_like(x);
  auto slope = need_grad ? torch::empty_like(x) : torch::empty({0}, x.options());
  const float decay = (float)decay_d, thr = (float)thr_d;
  const float c = (float)(M_PI / 2 * alpha_d), half = (float)(alpha_d / 2);
  const float* I = x.data_ptr<float>();
  const float* A = affine ? a_t.data_ptr<float>() : nullptr;
  const float* Bb = affine ? b_t.data_ptr<float>() : nullptr;
  float* S = spikes.data_ptr<float>();
  float* D = need_grad ? slope.data_ptr<float>() : nullptr;
  int64_t chunk = std::min<int64_t>(Q, CHUNK);
  if (affine && !per_p) chunk = std::max<int64_t>(n_ch, chunk / n_ch * n_ch);
  const int64_t nq = (Q + chunk - 1) / chunk;
  at::parallel_for(0, P * nq, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> vbuf(chunk), abuf(affine ? chunk : 0), bbuf(affine ? chunk : 0);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / nq, q0 = (item % nq) * chunk, n = std::min(chunk, Q - q0);
      float* __restrict__ v = vbuf.data();
      float* __restrict__ av = abuf.data();
      float* __restrict__ bv = bbuf.data();
      if (affine) {  // the chunk's per-element scale and shift
        for (int64_t q = 0; q < n; ++q) {
          const int64_t ch = per_p ? p : (q0 + q) % n_ch;
          av[q] = A[ch];
          bv[q] = Bb[ch];
        }
      }
      std::fill(v, v + n, 0.0f);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = (p * T + t) * Q + q0;
        const float* __restrict__ It = I + o;
        float* __restrict__ St = S + o;
        float* __restrict__ Dt = need_grad ? D + o : nullptr;
        if (affine && need_grad)
          lif_step<true, true>(It, St, Dt, v, av, bv, n, thr, c, half, decay);
        else if (affine)
          lif_step<true, false>(It, St, Dt, v, av, bv, n, thr, c, half, decay);
        else if (need_grad)
          lif_step<false, true>(It, St, Dt, v, av, bv, n, thr, c, half, decay);
        else
          lif_step<false, false>(It, St, Dt, v, av, bv, n, thr, c, half, decay);
      }
    }
  });
  return {spikes, slope};
}

// all (P, T, Q) contiguous float32; returns {dL/dI}, or with x_t (the affine's input) and
// n_ch > 0 also the per-channel sums {sum dL/dI, sum dL/dI * x} (float32 over the T steps of
// an element, float64 from there on, in a fixed order whatever the thread count).
std::vector<torch::Tensor> lif_backward(torch::Tensor grad, torch::Tensor spikes,
                                        torch::Tensor slope, int64_t P, int64_t T, int64_t Q,
                                        double decay_d, torch::Tensor x_t, int64_t n_ch) {
  TORCH_CHECK(grad.is_contiguous() && spikes.is_contiguous() && slope.is_contiguous(),
              "lif_backward: contiguous tensors");
  const bool sums = n_ch > 0;
  TORCH_CHECK(!sums || (x_t.is_contiguous() && x_t.numel() == grad.numel() &&
                        (n_ch == P || Q % n_ch == 0)), "lif_backward: sums");
  const bool per_p = sums && n_ch == P && P > 1;
  auto out = torch::empty_like(slope);
  const float decay = (float)decay_d;
  const float* G = grad.data_ptr<float>();
  const float* S = spikes.data_ptr<float>();
  const float* D = slope.data_ptr<float>();
  const float* X = sums ? x_t.data_ptr<float>() : nullptr;
  float* O = out.data_ptr<float>();
  int64_t chunk = std::min<int64_t>(Q, CHUNK);
  if (sums && !per_p) chunk = std::max<int64_t>(n_ch, chunk / n_ch * n_ch);
  const int64_t nq = (Q + chunk - 1) / chunk, items = P * nq;
  // per work item: its sums per element of the chunk (float64), reduced below in item order
  std::vector<double> part_g(sums ? items * (per_p ? 1 : n_ch) : 0, 0.0);
  std::vector<double> part_gx(part_g.size(), 0.0);
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> gbuf(chunk);
    std::vector<float> sg(sums ? chunk : 0), sgx(sums ? chunk : 0);  // over the T steps
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / nq, q0 = (item % nq) * chunk, n = std::min(chunk, Q - q0);
      float* __restrict__ g = gbuf.data();
      std::fill(g, g + n, 0.0f);
      if (sums) {
        std::fill(sg.begin(), sg.end(), 0.0f);
        std::fill(sgx.begin(), sgx.end(), 0.0f);
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = (p * T + t) * Q + q0;
        const float* __restrict__ Gt = G + o;
        const float* __restrict__ St = S + o;
        const float* __restrict__ Dt = D + o;
        float* __restrict__ Ot = O + o;
        for (int64_t q = 0; q < n; ++q) {
          const float xv = g[q] - g[q] * St[q];
          const float r = std::fma(Gt[q], Dt[q], xv);
          Ot[q] = r;
          g[q] = r * decay;
        }
        if (sums) {
          const float* __restrict__ Xt = X + o;
          float* __restrict__ a1 = sg.data();
          float* __restrict__ a2 = sgx.data();
          for (int64_t q = 0; q < n; ++q) {
            a1[q] += Ot[q];
            a2[q] += Ot[q] * Xt[q];
          }
        }
      }
      if (sums) {
        const int64_t slot = per_p ? item : item * n_ch;
        item_sums(sg.data(), sgx.data(), n, q0, n_ch, per_p, part_g.data() + slot,
                  part_gx.data() + slot);
      }
    }
  });
  if (!sums) return {out};
  auto s = merge_sums(part_g, part_gx, items, nq, n_ch, per_p);
  return {out, s[0], s[1]};
}

// d = fma(d, a, fma(x, k, m)) over n elements (affine_combine's arithmetic)
static inline void combine_block(float* __restrict__ d, const float* __restrict__ x, int64_t n,
                                 float a, float k, float m) {
  for (int64_t q = 0; q < n; ++q) d[q] = std::fma(d[q], a, std::fma(x[q], k, m));
}

// bn_lif_backward's steps: the membrane u of step t (lif_step<true, ...>'s arithmetic) ...
static inline void membrane_step(const float* __restrict__ It, float* __restrict__ ut,
                                 float* __restrict__ v, const float* __restrict__ av,
                                 const float* __restrict__ bv, int64_t n, float thr,
                                 float decay) {
  for (int64_t q = 0; q < n; ++q) {
    const float cur = std::fma(It[q], av[q], bv[q]);
    const float u = v[q] + cur;
    ut[q] = u;
    const float s = u > thr ? 1.0f : 0.0f;
    const float w = u * decay;
    v[q] = w - w * s;
  }
}

// ... and lif_backward's step with its spike and slope from u, and BatchNorm's sums
static inline void grad_step(const float* __restrict__ Gt, const float* __restrict__ Xt,
                             const float* __restrict__ ut, float* __restrict__ Ot,
                             float* __restrict__ g, float* __restrict__ a1,
                             float* __restrict__ a2, int64_t n, float thr, float c, float half,
                             float decay) {
  for (int64_t q = 0; q < n; ++q) {
    const float u = ut[q];
    const float st = u > thr ? 1.0f : 0.0f;
    float d = (u - thr) * c;
    d = d * d;
    d = d + 1.0f;
    d = 1.0f / d;
    const float dt = d * half;
    const float xv = g[q] - g[q] * st;
    const float r = std::fma(Gt[q], dt, xv);
    Ot[q] = r;
    g[q] = r * decay;
    a1[q] += r;
    a2[q] += r * Xt[q];
  }
}

// BatchNorm + LIF backward from the forward's input alone: per work item (as lif_backward's)
// the membrane u of every step is recomputed (lif_forward's arithmetic, in blocks of SUB
// elements kept in cache), then the backward loop runs on it; spikes and slope are not read
// from memory. Returns {dL/dI, sum dL/dI, sum dL/dI * x}, the same floats as lif_forward +
// lif_backward (the same operations in the same order).
//
// combine (per neuron, (N, T, B) memory with B <= CHUNK: one work item holds all of a
// neuron's elements, so its sums are complete there): BatchNorm's gradient is applied in the
// same item while its block is in cache, d = fma(d, a, fma(x, k, m)) with k, m computed from
// the sums in double exactly as BatchNormLIFKernel.backward computes them (then affine_combine
// is not run): the same floats, one pass over memory less.
std::vector<torch::Tensor> bn_lif_backward(torch::Tensor grad, torch::Tensor x_t,
                                           torch::Tensor a_t, torch::Tensor b_t, int64_t P,
                                           int64_t T, int64_t Q, double decay_d, double thr_d,
                                           double alpha_d, bool combine, torch::Tensor mean_t,
                                           torch::Tensor invstd_t, double n_per_ch) {
  TORCH_CHECK(grad.is_contiguous() && x_t.is_contiguous() && x_t.numel() == grad.numel() &&
              a_t.is_contiguous() && b_t.is_contiguous(), "bn_lif_backward: contiguous");
  const int64_t n_ch = a_t.numel();
  TORCH_CHECK(n_ch > 0 && b_t.numel() == n_ch && (n_ch == P || Q % n_ch == 0),
              "bn_lif_backward: channels");
  const bool per_p = n_ch == P && P > 1;
  auto out = torch::empty_like(x_t);
  const float decay = (float)decay_d, thr = (float)thr_d;
  const float c = (float)(M_PI / 2 * alpha_d), half = (float)(alpha_d / 2);
  const float* G = grad.data_ptr<float>();
  const float* X = x_t.data_ptr<float>();
  const float* A = a_t.data_ptr<float>();
  const float* Bb = b_t.data_ptr<float>();
  float* O = out.data_ptr<float>();
  int64_t chunk = std::min<int64_t>(Q, CHUNK);
  if (!per_p) chunk = std::max<int64_t>(n_ch, chunk / n_ch * n_ch);
  const int64_t nq = (Q + chunk - 1) / chunk, items = P * nq;
  TORCH_CHECK(!combine || (per_p && nq == 1 && mean_t.numel() == n_ch &&
                           invstd_t.numel() == n_ch), "bn_lif_backward: combine");
  const float* Mn = combine ? mean_t.data_ptr<float>() : nullptr;
  const float* Is = combine ? invstd_t.data_ptr<float>() : nullptr;
  std::vector<double> part_g(items * (per_p ? 1 : n_ch), 0.0);
  std::vector<double> part_gx(part_g.size(), 0.0);
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    const int64_t sub = std::min<int64_t>(chunk, SUB);
    std::vector<float> ubuf(T * sub), vbuf(sub), gbuf(sub), av(sub), bv(sub);
    std::vector<float> sg(chunk), sgx(chunk);  // over the T steps, per element of the chunk
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / nq, q0 = (item % nq) * chunk, n = std::min(chunk, Q - q0);
      std::fill(sg.begin(), sg.end(), 0.0f);
      std::fill(sgx.begin(), sgx.end(), 0.0f);
      for (int64_t j0 = 0; j0 < n; j0 += sub) {
        const int64_t m = std::min(sub, n - j0), qs = q0 + j0;
        float* __restrict__ v = vbuf.data();
        float* __restrict__ g = gbuf.data();
        for (int64_t q = 0; q < m; ++q) {
          const int64_t ch = per_p ? p : (qs + q) % n_ch;
          av[q] = A[ch];
          bv[q] = Bb[ch];
        }
        std::fill(v, v + m, 0.0f);
        for (int64_t t = 0; t < T; ++t)  // lif_step<true, ...>'s membrane
          membrane_step(X + (p * T + t) * Q + qs, ubuf.data() + t * sub, v, av.data(),
                        bv.data(), m, thr, decay);
        std::fill(g, g + m, 0.0f);
        float* __restrict__ a1 = sg.data() + j0;
        float* __restrict__ a2 = sgx.data() + j0;
        for (int64_t t = T - 1; t >= 0; --t) {  // lif_backward's loop, spikes and slope from u
          const int64_t o = (p * T + t) * Q + qs;
          grad_step(G + o, X + o, ubuf.data() + t * sub, O + o, g, a1, a2, m, thr, c, half,
                    decay);
        }
      }
      const int64_t slot = per_p ? item : item * n_ch;
      item_sums(sg.data(), sgx.data(), n, q0, n_ch, per_p, part_g.data() + slot,
                part_gx.data() + slot);
      if (combine) {  // BatchNormLIFKernel.backward's arithmetic, in its order
        const double S1 = 0.0 + part_g[item], S2 = 0.0 + part_gx[item];
        const double a64 = (double)A[p], m64 = (double)Mn[p], i64 = (double)Is[p];
        const double s_xhat = i64 * (S2 - m64 * S1);
        const double k64 = -a64 * i64 * s_xhat / n_per_ch;
        const double mm64 = -a64 * S1 / n_per_ch - k64 * m64;
        combine_block(O + p * T * Q, X + p * T * Q, T * Q, A[p], (float)k64, (float)mm64);
      }
    }
  });
  auto s = merge_sums(part_g, part_gx, items, nq, n_ch, per_p);
  return {out, s[0], s[1]};
}

// the readout's leaky integrator (trainer.neurons._LISequence's arithmetic) on (P, T, Q):
// forward r = v + I[t], out[t] = r, v = r * decay; backward r = g[t] + h, dI[t] = r,
// h = r * decay (h: decay times the gradient carried back)
torch::Tensor li_forward(torch::Tensor x, int64_t P, int64_t T, int64_t Q, double decay_d,
                         bool reverse) {
  TORCH_CHECK(x.is_contiguous() && x.scalar_type() == torch::kFloat32 && x.device().is_cpu() &&
              x.numel() == P * T * Q, "li_forward: a contiguous float32 CPU (P, T, Q) tensor");
  auto out = torch::empty_like(x);
  const float decay = (float)decay_d;
  const float* I = x.data_ptr<float>();
  float* O = out.data_ptr<float>();
  const int64_t chunk = std::min<int64_t>(Q, CHUNK), nq = (Q + chunk - 1) / chunk;
  at::parallel_for(0, P * nq, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> vbuf(chunk);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / nq, q0 = (item % nq) * chunk, n = std::min(chunk, Q - q0);
      float* __restrict__ v = vbuf.data();
      std::fill(v, v + n, 0.0f);
      for (int64_t k = 0; k < T; ++k) {
        const int64_t t = reverse ? T - 1 - k : k;
        const float* __restrict__ It = I + (p * T + t) * Q + q0;
        float* __restrict__ Ot = O + (p * T + t) * Q + q0;
        for (int64_t q = 0; q < n; ++q) {
          const float r = reverse ? It[q] + v[q] : v[q] + It[q];
          Ot[q] = r;
          v[q] = r * decay;
        }
      }
    }
  });
  return out;
}

// in place: d = fma(d, a[c], fma(x, k[c], m[c])) per element, channels as in lif_forward
void affine_combine(torch::Tensor d_t, torch::Tensor x_t, torch::Tensor a_t, torch::Tensor k_t,
                    torch::Tensor m_t, int64_t P, int64_t T, int64_t Q) {
  const int64_t n_ch = a_t.numel();
  const bool per_p = n_ch == P && P > 1;
  float* Dd = d_t.data_ptr<float>();
  const float* X = x_t.data_ptr<float>();
  const float* A = a_t.data_ptr<float>();
  const float* K = k_t.data_ptr<float>();
  const float* M = m_t.data_ptr<float>();
  const int64_t rows = P * T;
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* __restrict__ d = Dd + r * Q;
      const float* __restrict__ x = X + r * Q;
      if (per_p) {
        const int64_t ch = r / T;
        const float a = A[ch], k = K[ch], m = M[ch];
        for (int64_t q = 0; q < Q; ++q) d[q] = std::fma(d[q], a, std::fma(x[q], k, m));
      } else {
        for (int64_t q0 = 0; q0 < Q; q0 += n_ch) {
          for (int64_t ch = 0; ch < n_ch; ++ch)
            d[q0 + ch] = std::fma(d[q0 + ch], A[ch], std::fma(x[q0 + ch], K[ch], M[ch]));
        }
      }
    }
  });
}

// per-channel {sum x, sum x^2} (float64, fixed order whatever the thread count) of x
// (P, T, Q) contiguous float32, channels as in lif_forward
std::vector<torch::Tensor> channel_sums(torch::Tensor x, int64_t P, int64_t T, int64_t Q,
                                        int64_t n_ch) {
  TORCH_CHECK(x.is_contiguous() && x.scalar_type() == torch::kFloat32 &&
              (n_ch == P || Q % n_ch == 0), "channel_sums");
  const bool per_p = n_ch == P && P > 1;
  const float* X = x.data_ptr<float>();
  int64_t chunk = std::min<int64_t>(Q, CHUNK);
  if (!per_p) chunk = std::max<int64_t>(n_ch, chunk / n_ch * n_ch);
  const int64_t nq = (Q + chunk - 1) / chunk, items = P * nq;
  std::vector<double> part1(items * (per_p ? 1 : n_ch), 0.0), part2(part1.size(), 0.0);
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> s1(chunk), s2(chunk);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / nq, q0 = (item % nq) * chunk, n = std::min(chunk, Q - q0);
      std::fill(s1.begin(), s1.end(), 0.0);
      std::fill(s2.begin(), s2.end(), 0.0);
      double* __restrict__ a1 = s1.data();
      double* __restrict__ a2 = s2.data();
      for (int64_t t = 0; t < T; ++t) {
        const float* __restrict__ xt = X + (p * T + t) * Q + q0;
        for (int64_t q = 0; q < n; ++q) {
          const double v = (double)xt[q];
          a1[q] += v;
          a2[q] += v * v;
        }
      }
      const int64_t slot = per_p ? item : item * n_ch;
      item_sums(a1, a2, n, q0, n_ch, per_p, part1.data() + slot, part2.data() + slot);
    }
  });
  return merge_sums(part1, part2, items, nq, n_ch, per_p);
}
""".replace("CHUNK", str(_CHUNK)).replace("SUB", str(_SUB))

_NONE = torch.empty(0)  # "no tensor" for the kernels' optional arguments
_module = None
_error: str | None = None
_warned = False


def _build():
    """The compiled module (built or loaded from torch's cache once per process)."""
    global _module, _error
    if _module is None and _error is None:
        _module, _error = compile_extension(_NAME, _SOURCE, ["lif_forward", "lif_backward",
                                                             "bn_lif_backward", "affine_combine",
                                                             "channel_sums", "li_forward"])
    return _module


def compile_extension(name: str, source: str, functions: list[str]):
    """(module, None) or (None, why it did not build, one line): the C++ `source` built with
    torch.utils.cpp_extension.load_inline as `name` (change the name with the source, so a
    cached build of another source is not used), or loaded from torch's cache."""
    try:
        from torch.utils.cpp_extension import load_inline
        try:  # the `ninja` PyPI package: its binary need not be on PATH (a venv not activated)
            import ninja  # type: ignore[import-not-found]
            bin_dir = getattr(ninja, "BIN_DIR", None)
            if bin_dir and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
                os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
        _clear_stale_lock(name)
        flags = ["-O3", "-ffp-contract=off", "-fopenmp"]  # at::parallel_for is OpenMP
        if sys.platform.startswith("linux") or sys.platform == "darwin":
            flags.append("-march=native")  # built on the machine that runs it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = load_inline(name, cpp_sources=source, functions=functions,
                                 extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=False)
        return module, None
    except Exception as e:  # no compiler, no ninja, a failed build: the reason, once
        text = str(e).strip()
        return None, f"{type(e).__name__}: {text.splitlines()[-1] if text else ''}"


def _clear_stale_lock(name: str, stale_s: float = 120.0, wait_s: float = 180.0) -> None:
    """Before torch's build step: wait (at most wait_s) while another process holds the build
    lock, and remove a lock older than stale_s, left by a process killed while building (torch
    would wait for it forever; a real build holds it ~30 s)."""
    import glob
    import time

    from torch.utils.cpp_extension import _get_build_directory

    root = os.path.dirname(_get_build_directory(name, verbose=False))
    t0 = time.monotonic()
    while True:
        locks = glob.glob(os.path.join(root, name + "*", "lock"))
        if not locks:
            return
        for lock in locks:
            try:
                if time.time() - os.path.getmtime(lock) > stale_s:
                    os.remove(lock)
            except OSError:
                pass
        if time.monotonic() - t0 > wait_s:
            return
        time.sleep(1.0)


def unavailable_reason() -> str | None:
    """None when the kernel builds (building it if needed), else why not, in one line."""
    _build()
    return None if _module is not None else _error


def use_kernel(kernel: str, x: torch.Tensor) -> bool:
    """Whether ``lif_sequence`` runs the compiled kernel for x under setting ``kernel``.
    Raises ValueError for an unknown setting, RuntimeError for "cpp" where it cannot run."""
    global _warned
    if kernel not in KERNELS:
        raise ValueError(f"lif_kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "torch":
        return False
    fits = x.device.type == "cpu" and x.dtype == torch.float32
    if kernel == "cpp":
        if not fits:
            raise RuntimeError(f"lif_kernel 'cpp' runs float32 CPU tensors only, got {x.dtype} "
                               f"on {x.device}: use lif_kernel 'auto' or 'torch'")
        if _build() is None:
            raise RuntimeError(f"lif_kernel 'cpp' could not be built ({_error}): install a C++ "
                               "compiler and ninja, or use lif_kernel 'torch'")
        return True
    if not fits:
        return False  # "auto": CUDA and float64 run the torch path by design
    if _build() is None:
        if not _warned:
            _warned = True
            print(f"lif_kernel auto: the compiled LIF kernel is unavailable ({_error}); the torch "
                  "path runs instead (same results, slower)", file=sys.stderr, flush=True)
        return False
    return True


def used(kernel: str, device: torch.device | str) -> str:
    """What the hidden LIFs of a float32 model on `device` run under setting `kernel`: "cpp"
    (the compiled kernel) or "torch" (the torch ops), as recorded in metrics.json and bench
    JSON."""
    return "cpp" if use_kernel(kernel, torch.empty(0, device=device)) else "torch"


def _ptq(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], str]:
    """x (T, B, N) -> (its memory as a contiguous (P, T, Q) tensor, (P, T, Q), layout): "ntb"
    for (N, T, B) memory, "tbn" for (T, B, N) memory, "other" (copied to (T, B, N))."""
    T, B, N = x.shape
    ntb = x.permute(2, 0, 1)
    if ntb.is_contiguous():
        return ntb, (N, T, B), "ntb"
    return x.contiguous(), (1, T, B * N), "tbn" if x.is_contiguous() else "other"


def _dense_strides(x: torch.Tensor) -> tuple[int, ...]:
    """The strides of a dense tensor of x's shape whose axes are ordered in memory as x's are
    (what empty_like gives a permuted dense x), without allocating one."""
    order = sorted(range(x.dim()), key=lambda d: x.stride(d))
    strides, step = [0] * x.dim(), 1
    for d in order:
        strides[d], step = step, step * x.shape[d]
    return tuple(strides)


def _back(y: torch.Tensor, layout: str, stride: tuple[int, ...]) -> torch.Tensor:
    """A (P, T, Q) kernel output as a (T, B, N) tensor; "other": copied to the input's strides
    (a dense permuted layout, so its storage is the same size)."""
    if layout == "ntb":
        return y.permute(1, 2, 0)
    if layout == "other":
        return torch.empty_strided(y.shape, stride, dtype=y.dtype, device=y.device).copy_(y)
    return y


class LIFKernel(torch.autograd.Function):
    """``lif_sequence`` on the compiled kernel; input (T, B, N) float32 CPU, any layout."""

    @staticmethod
    def forward(ctx, current, decay, threshold, alpha):
        x, (P, T, Q), layout = _ptq(current)
        need_grad = ctx.needs_input_grad[0]
        spikes, slope = _module.lif_forward(x, P, T, Q, decay, threshold, alpha, need_grad,
                                            _NONE, _NONE)
        ctx.shape, ctx.layout, ctx.decay = (P, T, Q), layout, decay
        ctx.stride = _dense_strides(current) if layout == "other" else None
        ctx.save_for_backward(spikes, slope)
        return _back(spikes, layout, ctx.stride)

    @staticmethod
    def backward(ctx, grad_spikes):
        spikes, slope = ctx.saved_tensors
        P, T, Q = ctx.shape
        g = grad_spikes.permute(2, 0, 1) if ctx.layout == "ntb" else grad_spikes
        (grad,) = _module.lif_backward(g.contiguous(), spikes, slope, P, T, Q, ctx.decay,
                                       _NONE, 0)
        return _back(grad, ctx.layout, ctx.stride), None, None, None


class LIKernel(torch.autograd.Function):
    """``li_sequence`` on the compiled kernel (trainer.neurons._LISequence's operations in
    its order: the same floats); input (T, B, N) float32 CPU, any layout."""

    @staticmethod
    def forward(ctx, current, decay):
        x, (P, T, Q), layout = _ptq(current)
        ctx.shape, ctx.layout, ctx.decay = (P, T, Q), layout, decay
        ctx.stride = _dense_strides(current) if layout == "other" else None
        return _back(_module.li_forward(x, P, T, Q, decay, False), layout, ctx.stride)

    @staticmethod
    def backward(ctx, grad_v):
        P, T, Q = ctx.shape
        g = grad_v.permute(2, 0, 1) if ctx.layout == "ntb" else grad_v
        grad = _module.li_forward(g.contiguous(), P, T, Q, ctx.decay, True)
        return _back(grad, ctx.layout, ctx.stride), None


class BatchNormLIFKernel(torch.autograd.Function):
    """Training-mode BatchNorm folded into the kernel's LIF: spikes of
    LIF(a * x + b), a = weight * invstd, b = bias - mean * a per neuron (the batch statistics
    mean and invstd = 1 / sqrt(var + eps) are given, computed without gradient). Backward is
    BatchNorm's full gradient, with xhat = (x - mean) * invstd, dI the current's gradient and
    n = B * T values per neuron:

        dL/dbias = sum dI,   dL/dweight = sum dI * xhat,
        dL/dx = a * (dI - sum dI / n - xhat * sum(dI * xhat) / n)

    whose sums the backward kernel accumulates per neuron (float64) while it computes dI.
    current: (T, B, N) float32 CPU in (N, T, B) or (T, B, N) memory."""

    @staticmethod
    def forward(ctx, current, weight, bias, mean, invstd, decay, threshold, alpha):
        x, (P, T, Q), layout = _ptq(current)
        assert layout != "other"
        a = (weight.detach() * invstd).contiguous()
        b = (bias.detach() - mean * a).contiguous()
        spikes, _ = _module.lif_forward(x, P, T, Q, decay, threshold, alpha, False, a, b)
        ctx.shape, ctx.layout, ctx.lif = (P, T, Q), layout, (decay, threshold, alpha)
        ctx.save_for_backward(x, a, b, mean, invstd)   # backward recomputes the membrane
        return _back(spikes, layout, ())

    @staticmethod
    def backward(ctx, grad_spikes):
        x, a, b, mean, invstd = ctx.saved_tensors
        P, T, Q = ctx.shape
        n_ch = a.numel()
        g = grad_spikes.permute(2, 0, 1) if ctx.layout == "ntb" else grad_spikes
        n = x.numel() / n_ch
        combine = n_ch == P and P > 1 and Q <= _CHUNK   # in the kernel (bn_lif_backward)
        dI, s1, s2 = _module.bn_lif_backward(g.contiguous(), x, a, b, P, T, Q, *ctx.lif,
                                             combine, mean, invstd, n)
        m64, i64, a64 = mean.double(), invstd.double(), a.double()
        s_xhat = i64 * (s2 - m64 * s1)                       # sum dI * xhat
        if not combine:
            k = -a64 * i64 * s_xhat / n                      # dL/dx = a dI + k x + m
            m = -a64 * s1 / n - k * m64
            _module.affine_combine(dI, x, a, k.float().contiguous(), m.float().contiguous(),
                                   P, T, Q)
        return (_back(dI, ctx.layout, ()), s_xhat.float(), s1.float(), None, None, None, None,
                None)


def batchnorm_lif(norm: torch.nn.Module, lif: torch.nn.Module,
                  current: torch.Tensor) -> torch.Tensor | None:
    """BatchNorm `norm` then LIF `lif` on current (B, N, T) as one kernel pass, or None where
    that does not apply (then the caller runs them as usual): training mode with batch
    statistics and a momentum, not across DDP ranks, the compiled kernel for `lif.kernel`,
    (N, T, B) or (T, B, N) memory. Updates norm's running statistics as nn.BatchNorm1d does.
    Returns spikes (B, N, T) as trainer.neurons.LIF does."""
    if not (isinstance(norm, torch.nn.BatchNorm1d) and norm.training and norm.affine
            and norm.track_running_stats and norm.momentum is not None):
        return None
    if torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1:
        return None
    kernel = str(getattr(lif, "kernel", "torch"))
    if current.dim() != 3 or not use_kernel(kernel, current):
        return None
    assert _module is not None
    tbn = current.permute(2, 0, 1)  # trainer.neurons.time_major (not imported: it imports us)
    if tbn.shape[0] > 1 and tbn.stride(0) == 1:
        tbn = tbn.contiguous()
    x, shape, layout = _ptq(tbn)
    if layout == "other":
        return None
    P, T, Q = shape
    n_ch = current.shape[1]
    with torch.no_grad():  # batch statistics in float64 (one pass over x), used in float32
        s1, s2 = _module.channel_sums(x, P, T, Q, n_ch)
        n = x.numel() // n_ch
        mean64 = s1 / n
        var64 = (s2 / n - mean64 * mean64).clamp_min(0.0)
        mean, var = mean64.float(), var64.float()
        invstd = torch.rsqrt(var64 + norm.eps).float()
        norm.num_batches_tracked.add_(1)  # type: ignore[union-attr, operator]
        mom = norm.momentum
        norm.running_mean.mul_(1 - mom).add_(mom * mean)  # type: ignore[union-attr, operator]
        norm.running_var.mul_(1 - mom).add_(  # type: ignore[union-attr, operator]
            mom * var * (n / max(n - 1, 1)))
    spikes = BatchNormLIFKernel.apply(tbn, norm.weight, norm.bias, mean, invstd, lif.decay,
                                      lif.threshold, lif.alpha)
    return spikes.permute(1, 2, 0)
