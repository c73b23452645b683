"""Lava's fixed-point rules (lava-nc 0.10.0), written out so export can follow them exactly.

Sources read: lava/utils/weightutils.py (clip_weights, truncate_weights, determine_sign_mode),
lava/proc/dense/models.py (PyDenseModelBitAcc, PyDelayDenseModelBitAcc),
lava/proc/lif/models.py (AbstractPyLifModelFixed, PyLifModelBitAcc),
lava/lib/dl/netx/utils.py (optimize_weight_bits) and netx/hdf5.py (get_neuron_params).

- Dense/DelayDense first clip weights to 8 bits (mixed signs: [-256, 255]; one sign: [0, 255]
  or [-255, 0]), then drop the low `8 - num_weight_bits + mixed` bits with an arithmetic shift
  (`(w >> k) << k`, i.e. toward -inf); the accumulated sum is shifted by weight_exp (left if
  > 0, arithmetic right if < 0). DelayDense shifts each delay slot's sum separately.
- LIF: u = wrap24(trunc0(u * (4096 - (du + 1)) / 4096) + (a_in << 6)),
  v = clip(trunc0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp), +/-(2^23 - 1)),
  spike if v > vth << 6. With du = 4095 the current keeps no memory: u = a_in << 6.
- netx reads du = iDecay - 1, dv = vDecay, vth = vThMant, bias_mant = layer `bias` with
  bias_exp = 6, and derives weight_exp / num_weight_bits from the stored weights W so that the
  synapse delivers exactly sum(W * payload) to a_in (for W within [-128, 127] with mixed signs).
"""
from __future__ import annotations

import numpy as np

LAVA_WEIGHT_BITS = 8  # clip width used by Lava's Dense models
DECAY_BITS = 12  # du, dv are 12-bit; decay unity 4096
VTH_SHIFT = 6  # threshold and a_in are MSB-aligned by 6 bits
ACT_SHIFT = 6
NETX_BIAS_EXP = 6  # netx always sets bias_exp = 6
NETX_MAX_DELAY = 62


def sign_mode(weights: np.ndarray) -> str:
    """'excitatory' (all >= 0), 'inhibitory' (all <= 0, some < 0) or 'mixed', as Lava decides."""
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


def truncate_bits(mode: str, num_weight_bits: int) -> int:
    """Low bits Lava drops: 8 - num_weight_bits, plus 1 for mixed signs."""
    return LAVA_WEIGHT_BITS - num_weight_bits + (1 if mode == "mixed" else 0)


def apply_weight_rule(weights: np.ndarray, num_weight_bits: int, mode: str | None = None
                      ) -> np.ndarray:
    """Integer weights -> the weights Lava's fixed_pt Dense/DelayDense actually apply."""
    w = np.asarray(weights, dtype=np.int64).copy()
    mode = mode or sign_mode(w)
    neg = mode == "inhibitory"
    if neg:
        w = -w
    lo = -(2 ** LAVA_WEIGHT_BITS) if mode == "mixed" else 0
    w = np.clip(w, lo, 2 ** LAVA_WEIGHT_BITS - 1)
    k = truncate_bits(mode, num_weight_bits)
    w = (w >> k) << k
    return -w if neg else w


def representable_range(mode: str, num_weight_bits: int) -> tuple[int, int]:
    """[lo, hi] of W = w_applied >> truncate_bits: the integers a synapse adds to a_in per
    payload unit when weight_exp = -truncate_bits."""
    k = truncate_bits(mode, num_weight_bits)
    top = 2 ** (LAVA_WEIGHT_BITS - k)
    if mode == "mixed":
        return -top, top - 1
    if mode == "inhibitory":
        return -(top - 1), 0
    return 0, top - 1


def shift(x: np.ndarray, exp: int) -> np.ndarray:
    """Lava's weight_exp shift of an accumulated sum (arithmetic right shift if exp < 0)."""
    x = np.asarray(x, dtype=np.int64)
    return np.left_shift(x, exp) if exp > 0 else np.right_shift(x, -exp)


def trunc_decay(x: np.ndarray, d: int) -> np.ndarray:
    """x * (4096 - d) >> 12 with rounding toward zero, as Lava's LIF decays u and v."""
    p = np.asarray(x, dtype=np.int64) * (2 ** DECAY_BITS - d)
    return np.sign(p) * (np.abs(p) >> DECAY_BITS)


def wrap_u(x: np.ndarray, state_bits: int = 24) -> np.ndarray:
    """Lava's one-step wrap of the current u into (-2^23, 2^23]."""
    m = 2 ** (state_bits - 1)
    w = np.where(x > m, x - 2 * m, x)
    return np.where(w <= -m, x + 2 * m, w)


def int32_wrap(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32 (Lava shifts a_in << 6 in int32)."""
    return ((np.asarray(x, dtype=np.int64) + 2 ** 31) % 2 ** 32) - 2 ** 31
