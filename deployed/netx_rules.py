"""lava-dl 0.6.0 netx's own arithmetic, written out: how `lava.lib.dl.netx.hdf5.Network` turns a
dense layer of a netx HDF5 file into Lava processes (lava/lib/dl/netx/hdf5.py `create_dense`,
`get_neuron_params`; lava/lib/dl/netx/utils.py `optimize_weight_bits`).

export.from_netx uses it to build the DeployedNetwork netx would run. Where netx would change
what the file says (clip weights, clamp delays) these functions raise ValueError instead.

Units: weights W as stored in the file, integers each synapse adds to a_in per payload unit;
netx gives Lava w = W << s with weight_exp = -s (so a_in = sum(w x) >> s = sum(W x)), choosing s
and num_weight_bits from the whole matrix. Delays in steps.
"""
from __future__ import annotations

import numpy as np

from deployed import fixed_point as fp

NETX_MAX_DELAY = fp.NETX_MAX_DELAY  # netx clamps larger delays to 62 (with a warning)
NETX_BIAS_EXP = fp.NETX_BIAS_EXP  # netx gives every LIF bias_exp = 6


def weight_rule(W: np.ndarray) -> tuple[np.ndarray, int, int]:
    """netx's optimize_weight_bits on an integer matrix W (n_out, n_in): returns (w, num_weight_
    bits, weight_exp) as netx hands them to Lava's Dense / DelayDense, w = W << -weight_exp
    (int64). The choice is netx's, decision for decision (sign mode, scale, trailing zero bits).
    Raises ValueError where netx would clip the weights (it prints a warning and clips) or cannot
    choose a scale (all weights zero, or weights too large for a non-negative shift)."""
    W = np.asarray(W)
    if W.size == 0 or not np.any(W):
        raise ValueError("all weights are zero (netx cannot choose a weight exponent)")
    hi, lo = int(W.max()), int(W.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):
        raise ValueError(f"weights {lo}..{hi} have mixed signs beyond -256..254: netx would clip "
                         "them")
    with np.errstate(divide="ignore"):
        if hi < 0:  # inhibitory
            is_signed, scale = 0, -256 / np.float64(lo)
        elif lo >= 0:  # excitatory
            is_signed, scale = 0, 255 / np.float64(hi)
        else:  # mixed
            is_signed = 1
            scale = np.min([127 / np.float64(hi), -128 / np.float64(lo)])
    scale_bits = int(np.floor(np.log2(scale))) + is_signed
    if scale_bits < 0:
        raise ValueError(f"weights {lo}..{hi} exceed the 8-bit range netx shifts into (it would "
                         "need a negative shift)")
    n = 8
    Wf = W.astype(np.float64)
    while n > 0 and np.sum(np.abs(Wf / 2 ** n - np.round(Wf / 2 ** n))) != 0:
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    w = np.left_shift(W.astype(np.int64), scale_bits)
    return w, int(num_weight_bits), -scale_bits


def broadcast_delay(delay: np.ndarray, n_out: int, n_in: int) -> tuple[np.ndarray, str]:
    """A file's `delay` as netx applies it: (n_out, n_in) int64 and its layout name. A scalar is
    every synapse's; a vector of n_out is per post neuron (tried first, as netx does, also when
    n_in = n_out); of n_in per input; a matrix per synapse. Raises ValueError for delays that
    are negative, not whole steps, above NETX_MAX_DELAY (netx would clamp them) or of a shape
    netx rejects."""
    d = np.asarray(delay, dtype=np.float64)
    if d.size and not np.all(np.isfinite(d)):
        raise ValueError("delays contain NaN or inf")
    if d.size and (d.min() < 0 or np.any(d != np.floor(d))):
        raise ValueError(f"delays must be whole steps >= 0, got values such as "
                         f"{d[(d < 0) | (d != np.floor(d))].ravel()[0]:g}")
    if d.size and d.max() > NETX_MAX_DELAY:
        raise ValueError(f"max delay {int(d.max())} steps exceeds {NETX_MAX_DELAY}, which netx "
                         f"clamps to {NETX_MAX_DELAY} with a warning")
    d = d.astype(np.int64)
    if d.ndim == 0:
        return np.full((n_out, n_in), int(d), dtype=np.int64), "scalar"
    if d.ndim == 1 and d.size == n_out:
        return np.repeat(d.reshape(-1, 1), n_in, axis=1), "per post neuron"
    if d.ndim == 1 and d.size == n_in:
        return np.repeat(d.reshape(1, -1), n_out, axis=0), "per input"
    if d.shape == (n_out, n_in):
        return d, "per synapse"
    raise ValueError(f"delay of shape {d.shape} fits neither the {n_out} neurons nor the "
                     f"{n_in} inputs nor the ({n_out}, {n_in}) weights")


def neuron_fields(i_decay: int, v_decay: int, v_th_mant: int) -> tuple[int, int, int]:
    """netx's CUBA / LOIHI neuron -> Lava LIF (du, dv, vth): du = iDecay - 1 (Lava adds 1 back),
    dv = vDecay, vth = vThMant (spike if v > vth << 6). Raises ValueError for values Lava's
    12-bit du / dv fields cannot hold (iDecay 0 would be du = -1, vDecay 4096)."""
    if not 1 <= i_decay <= 4096:
        raise ValueError(f"iDecay {i_decay} is outside 1..4096 (Lava's du = iDecay - 1 must be a "
                         "12-bit field; iDecay 0, a current that never decays, has no du)")
    if not 0 <= v_decay <= 4095:
        raise ValueError(f"vDecay {v_decay} is outside 0..4095 (Lava's 12-bit dv)")
    if v_th_mant < 0:
        raise ValueError(f"vThMant {v_th_mant} is negative")
    return i_decay - 1, v_decay, v_th_mant


def threshold_unreachable(v_th_mant: int) -> bool:
    """True when v can never exceed vThMant << 6 (|v| <= 2**23 - 1): such a layer never spikes
    (SLAYER's Affine block writes vThMant = 2**18 - 1 for a voltage readout)."""
    return (int(v_th_mant) << fp.VTH_SHIFT) >= fp.MAX_UV - 1
