"""Lava fixed_pt arithmetic, written out once as plain numpy (int64) functions.

Every function reproduces one step of lava-nc 0.10.0's bit-accurate models exactly
(lava/utils/weightutils.py clip_weights, truncate_weights, determine_sign_mode;
lava/proc/dense/models.py PyDelayDenseModelBitAcc; lava/proc/lif/models.py
AbstractPyLifModelFixed; lava/lib/dl/netx/hdf5.py get_neuron_params). Export quantizes to these
rules, the emulator applies them (in exact float64 where faster), the limits checker tests against
them; tests/test_runtime_emulator.py checks them against Lava's own models.

The equations (per step, integers):
    w_applied = lava_weights(w, num_weight_bits)        # clip to 8 bits, drop low bits
    a_in      = sum(w_applied * payload) << weight_exp   # arithmetic >> when weight_exp < 0
    u = wrap24(trunc0(u * (4096 - (du + 1)) / 4096) + (a_in << 6))
    v = clip(trunc0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp), +/-(2^23 - 1))
    spike = v > vth << 6;  v = 0 where spike
netx reads du = iDecay - 1, dv = vDecay, vth = vThMant, bias_mant = `bias` with bias_exp = 6.

Units: weights in Lava weight units; `u`, `v` in Lava state units (a weight unit is 2**6 state
units); thresholds as the 17-bit mantissa `vth` (compared against `vth << 6`).
"""
from __future__ import annotations

import numpy as np

UV_BITS = 24
MAX_UV = 2 ** (UV_BITS - 1)  # 2**23: u wraps beyond it, v clips to +/-(MAX_UV - 1)
DECAY_SHIFT = 12  # du, dv are 12-bit fractions of 4096
ACT_SHIFT = 6  # a_in << 6 enters u
VTH_SHIFT = 6  # spike if v > vth << 6
INT32_MAX = 2 ** 31 - 1

LAVA_WEIGHT_BITS = 8  # clip width of Lava's Dense models
NETX_BIAS_EXP = 6  # netx always sets bias_exp = 6
NETX_MAX_DELAY = 62  # largest delay netx's DelayDense layers take

SIGN_MIXED, SIGN_EXCITATORY, SIGN_INHIBITORY = "mixed", "excitatory", "inhibitory"


def sign_mode(weights: np.ndarray) -> str:
    """Lava's determine_sign_mode for one weight matrix (one connection process)."""
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return SIGN_EXCITATORY
    if w.max() <= 0:
        return SIGN_INHIBITORY
    return SIGN_MIXED


def truncate_bits(mode: str, num_weight_bits: int) -> int:
    """Low bits Lava drops: 8 - num_weight_bits, plus 1 for mixed signs."""
    return LAVA_WEIGHT_BITS - int(num_weight_bits) + int(mode == SIGN_MIXED)


def lava_weights(weights: np.ndarray, num_weight_bits: int, mode: str | None = None
                 ) -> np.ndarray:
    """The weights a fixed_pt Dense/DelayDense/DelaySparse process actually applies.

    Lava clips to 8 bits (mixed: [-256, 255], excitatory: [0, 255], inhibitory: [-255, 0]), then
    truncates the low ``truncate_bits`` bits toward -inf (toward zero for an inhibitory matrix,
    which Lava negates around the shift). The sign mode is that of the whole matrix passed to the
    process unless given. Returns int64 of the same shape.
    """
    w = np.asarray(weights).astype(np.int64)
    mode = mode or sign_mode(w)
    mixed = int(mode == SIGN_MIXED)
    if mode == SIGN_INHIBITORY:
        w = -w
    w = np.clip(w, -256 * mixed, 255)
    k = truncate_bits(mode, num_weight_bits)
    w = (w >> k) << k
    if mode == SIGN_INHIBITORY:
        w = -w
    return w


def representable_range(mode: str, num_weight_bits: int) -> tuple[int, int]:
    """[lo, hi] of W = w_applied >> truncate_bits: the integers a synapse adds to a_in per
    payload unit when weight_exp = -truncate_bits."""
    top = 2 ** (LAVA_WEIGHT_BITS - truncate_bits(mode, num_weight_bits))
    if mode == SIGN_MIXED:
        return -top, top - 1
    if mode == SIGN_INHIBITORY:
        return -(top - 1), 0
    return 0, top - 1


def decay(x: np.ndarray, keep: int) -> np.ndarray:
    """x * keep / 4096 rounded toward zero (Lava: sign(x*keep) * (|x*keep| >> 12))."""
    p = x * keep
    return np.sign(p) * np.right_shift(np.abs(p), DECAY_SHIFT)


def lif_current(u: np.ndarray, a_in: np.ndarray, du: int) -> np.ndarray:
    """New current u: decay by (4096 - (du + 1)) / 4096, add a_in << 6, wrap once at 24 bits
    exactly as Lava does (x > 2**23 -> x - 2**24; x <= -2**23 -> x + 2**24)."""
    x = decay(u, 4096 - (du + 1)) + np.left_shift(a_in, ACT_SHIFT)
    w = np.where(x > MAX_UV, x - 2 * MAX_UV, x)
    return np.where(w <= -MAX_UV, x + 2 * MAX_UV, w)


def lif_voltage(v: np.ndarray, u: np.ndarray | np.integer, bias: np.ndarray,
                dv: int) -> np.ndarray:
    """New voltage before the spike test: decay by (4096 - dv) / 4096, add u and bias, clip to
    +/-(2**23 - 1)."""
    return np.clip(decay(v, 4096 - dv) + u + bias, -(MAX_UV - 1), MAX_UV - 1)


def effective_bias(bias_mant: np.ndarray, bias_exp: int) -> np.ndarray:
    """bias_mant << bias_exp (bias_exp is 0..7 here)."""
    return np.left_shift(np.asarray(bias_mant, dtype=np.int64), int(bias_exp))


def bias_can_fire(vth: int, bias: np.ndarray, dv: int) -> np.ndarray:
    """Per neuron: can a neuron with no input (u = 0) cross threshold from any v <= vth << 6?

    The update g(v) = clip(decay(v) + bias) is monotone in v, so a neuron at or below threshold
    stays there for ever iff g(vth << 6) <= vth << 6.
    """
    thr = np.int64(vth) << VTH_SHIFT
    g = lif_voltage(np.full(np.shape(bias), thr, dtype=np.int64), np.int64(0),
                    np.asarray(bias, dtype=np.int64), dv)
    return g > thr
