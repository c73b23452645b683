"""A compiled CPU kernel for ``trainer.neurons.lif_sequence``: the whole time loop in one pass.

The LIF's torch-op path runs ~10 small elementwise ops per time step (trainer.neurons
``_LIFSequence``), each one pass over a (B, N) slice, strided in the sparse paths' (N, T, B)
layout. This kernel does the same arithmetic per element in one C++ loop over time, with the
membrane in a small buffer, vectorised along the innermost memory axis and split over torch's
intra-op threads. Per step and element, forward (trainer.neurons, equations there):

    u = v + I[t];  s = u > threshold;  slope = (alpha/2) / (1 + (pi/2 alpha (u - threshold))^2)
    w = decay * u;  v = w - w * s

and backward (g the gradient carried back through the membrane, times decay):

    x = g - g * s[t];  dI[t] = fma(dL/ds[t], slope[t], x);  g = decay * dI[t]

The operations and their order are the torch path's (``fma`` where ATen's vectorised addcmul
contracts to one, as its AVX2 build does), so the spikes are bit-identical to it and the
gradients equal it up to float rounding (bit-identical on the machines measured;
tests/test_lif_kernel.py). Memory: the input seen as (P, T, Q), contiguous, with the state over
Q: (N, T, B) memory gives P = N, Q = B; (T, B, N) memory gives P = 1, Q = B * N; any other
layout is copied to (T, B, N) first.

Built on first use with torch.utils.cpp_extension (a C++ compiler, and ninja: the `ninja` PyPI
package is a dependency), cached by torch under TORCH_EXTENSIONS_DIR (default
~/.cache/torch_extensions), ~30 s once per machine. ``lif_kernel`` (trainer/defaults.toml):
"auto" uses it for float32 CPU tensors when it builds, else the torch path, saying why once;
"cpp" requires it; "torch" never uses it. Speed: bench/train_speed.py (docs/sparse_training.md).
"""
from __future__ import annotations

import os
import sys
import warnings

import torch

KERNELS = ("auto", "cpp", "torch")
_NAME = "delaysnn_lif_v2"  # change with the source, so a cached build of another one is not used
_CHUNK = 4096  # Q elements per work item (its state buffer: 16 KiB of float32)

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <vector>

// x as (P, T, Q) contiguous float32; returns {spikes, slope (empty unless need_grad)}
std::vector<torch::Tensor> lif_forward(torch::Tensor x, int64_t P, int64_t T, int64_t Q,
                                       double decay_d, double thr_d, double alpha_d,
                                       bool need_grad) {
  TORCH_CHECK(x.is_contiguous() && x.scalar_type() == torch::kFloat32 && x.device().is_cpu(),
              "lif_forward: a contiguous float32 CPU tensor");
  TORCH_CHECK(x.numel() == P * T * Q, "lif_forward: shape");
  auto spikes = torch::empty_like(x);
  auto slope = need_grad ? torch::empty_like(x) : torch::empty({0}, x.options());
  const float decay = (float)decay_d, thr = (float)thr_d;
  const float c = (float)(M_PI / 2 * alpha_d), half = (float)(alpha_d / 2);
  const float* I = x.data_ptr<float>();
  float* S = spikes.data_ptr<float>();
  float* D = need_grad ? slope.data_ptr<float>() : nullptr;
  const int64_t chunk = std::min<int64_t>(Q, CHUNK), nq = (Q + chunk - 1) / chunk;
  at::parallel_for(0, P * nq, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> vbuf(chunk);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / nq, q0 = (item % nq) * chunk, n = std::min(chunk, Q - q0);
      float* __restrict__ v = vbuf.data();
      std::fill(v, v + n, 0.0f);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = (p * T + t) * Q + q0;
        const float* __restrict__ It = I + o;
        float* __restrict__ St = S + o;
        if (need_grad) {
          float* __restrict__ Dt = D + o;
          for (int64_t q = 0; q < n; ++q) {
            const float u = v[q] + It[q];
            const float s = u > thr ? 1.0f : 0.0f;
            St[q] = s;
            float d = (u - thr) * c;
            d = d * d;
            d = d + 1.0f;
            d = 1.0f / d;
            Dt[q] = d * half;
            const float w = u * decay;
            v[q] = w - w * s;
          }
        } else {
          for (int64_t q = 0; q < n; ++q) {
            const float u = v[q] + It[q];
            const float s = u > thr ? 1.0f : 0.0f;
            St[q] = s;
            const float w = u * decay;
            v[q] = w - w * s;
          }
        }
      }
    }
  });
  return {spikes, slope};
}

// all (P, T, Q) contiguous float32; returns dL/dI
torch::Tensor lif_backward(torch::Tensor grad, torch::Tensor spikes, torch::Tensor slope,
                           int64_t P, int64_t T, int64_t Q, double decay_d) {
  TORCH_CHECK(grad.is_contiguous() && spikes.is_contiguous() && slope.is_contiguous(),
              "lif_backward: contiguous tensors");
  auto out = torch::empty_like(slope);
  const float decay = (float)decay_d;
  const float* G = grad.data_ptr<float>();
  const float* S = spikes.data_ptr<float>();
  const float* D = slope.data_ptr<float>();
  float* O = out.data_ptr<float>();
  const int64_t chunk = std::min<int64_t>(Q, CHUNK), nq = (Q + chunk - 1) / chunk;
  at::parallel_for(0, P * nq, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> gbuf(chunk);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / nq, q0 = (item % nq) * chunk, n = std::min(chunk, Q - q0);
      float* __restrict__ g = gbuf.data();
      std::fill(g, g + n, 0.0f);
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = (p * T + t) * Q + q0;
        const float* __restrict__ Gt = G + o;
        const float* __restrict__ St = S + o;
        const float* __restrict__ Dt = D + o;
        float* __restrict__ Ot = O + o;
        for (int64_t q = 0; q < n; ++q) {
          const float x = g[q] - g[q] * St[q];
          const float r = std::fma(Gt[q], Dt[q], x);
          Ot[q] = r;
          g[q] = r * decay;
        }
      }
    }
  });
  return out;
}
""".replace("CHUNK", str(_CHUNK))

_module = None
_error: str | None = None
_warned = False


def _build():
    """The compiled module (built or loaded from torch's cache once per process)."""
    global _module, _error
    if _module is not None or _error is not None:
        return _module
    try:
        from torch.utils.cpp_extension import load_inline
        try:  # the `ninja` PyPI package: its binary need not be on PATH (a venv not activated)
            import ninja  # type: ignore[import-not-found]
            bin_dir = getattr(ninja, "BIN_DIR", None)
            if bin_dir and bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
                os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
        _clear_stale_lock()
        flags = ["-O3", "-ffp-contract=off", "-fopenmp"]  # at::parallel_for is OpenMP
        if sys.platform.startswith("linux") or sys.platform == "darwin":
            flags.append("-march=native")  # built on the machine that runs it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _module = load_inline(_NAME, cpp_sources=_SOURCE,
                                  functions=["lif_forward", "lif_backward"],
                                  extra_cflags=flags, extra_ldflags=["-fopenmp"],
                                  verbose=False)
    except Exception as e:  # no compiler, no ninja, a failed build: the reason, once
        _error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    return _module


def _clear_stale_lock(max_age_s: float = 600.0) -> None:
    """Remove a build lock left by a process killed while building (torch would wait for it
    forever); a real build holds it for ~30 s."""
    import glob
    import time

    from torch.utils.cpp_extension import _get_build_directory

    root = os.path.dirname(_get_build_directory(_NAME, verbose=False))
    for lock in glob.glob(os.path.join(root, _NAME + "*", "lock")):
        try:
            if time.time() - os.path.getmtime(lock) > max_age_s:
                os.remove(lock)
        except OSError:
            pass


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
        spikes, slope = _module.lif_forward(x, P, T, Q, decay, threshold, alpha, need_grad)
        ctx.shape, ctx.layout, ctx.decay = (P, T, Q), layout, decay
        ctx.stride = torch.empty_like(current).stride() if layout == "other" else None
        ctx.save_for_backward(spikes, slope)
        return _back(spikes, layout, ctx.stride)

    @staticmethod
    def backward(ctx, grad_spikes):
        spikes, slope = ctx.saved_tensors
        P, T, Q = ctx.shape
        g = grad_spikes.permute(2, 0, 1) if ctx.layout == "ntb" else grad_spikes
        grad = _module.lif_backward(g.contiguous(), spikes, slope, P, T, Q, ctx.decay)
        return _back(grad, ctx.layout, ctx.stride), None, None, None
