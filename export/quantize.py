"""Fold BatchNorm, quantize a checkpoint to Lava fixed point, and build the DeployedNetwork.

Per connection layer l, with folded float weights wf = w * a[post] and bias b (BatchNorm), and
the layer's input in payload units (layer 0: payload = feature * input.scale; later layers:
spike = 1), every synapse's contribution to a_in is the integer W = round(s_l * wf / in_scale):

    a_in = sum W * payload          (exact in Lava: weight = W << k, weight_exp = -k, where k is
                                     the number of low bits Lava truncates; netx stores W itself)

When the other limits leave the weights less than half their range (the graded-input layer:
payload x weight x fan-in against a 17-bit threshold), the weights are scaled up by 2^j and
weight_exp becomes -(k + j): a_in = floor(sum (W << k) * payload / 2^(k+j)) per delay slot, so
weights keep full precision and only the sum is floored. netx cannot express that exponent (it
derives it from the stored weights): such a layer is written to netx rounded and the file is
marked netx-incomplete. `netx_exact=True` keeps weight_exp = -k everywhere instead.
    v (Lava) = 64 * s_l * v (float), vth = s_l * threshold (made an exact integer by choosing
    s_l = floor(threshold * s_max) / threshold), bias_mant = round(s_l * b), bias_exp = 6,
    du = 4095 (u = a_in << 6, no current memory), dv from the checkpoint (du from the layer when
    export.from_nir maps a synaptic current; its range |i| is then part of the a_in range).

s_l (a_in units per float current unit) is the largest value allowed by every range limit:
weights within Lava's representable range (symmetric, without the mixed range's lowest level,
when a layer has several synapses per (post, pre) pair: each of its slots is a Lava process
with its own sign mode); |a_in| <= 2^(state_bits - 7) so u = a_in << 6 never
wraps; |v| within the clip of +/-(2^23 - 1) for negative voltages; bias mantissa 13-bit signed;
vth 17-bit; for the readout, |v| <= vth_max << 6 so it never spikes. The ranges of a_in and v
are measured by a float simulation over calibration features and multiplied by `headroom`.

Recurrent synapses (CkptLayer.recurrent, float current per spike added after BatchNorm) get
their own scale in the layer's a_in units, their input being a spike of 1: W_r = round(s_l *
w_r * 2^j_r) with their own sign mode, truncation k_r and exponent weight_exp_r = -(k_r + j_r),
j_r the shift that puts their largest weight at the top of their range (negative, a left shift,
when they are large next to s_l; never below -(7 + k_r), Loihi's largest exponent 7; with
`netx_exact` never above 0). They do not limit s_l; their current is part of the measured a_in
range (export.float_reference).

Three options change that choice (export.fidelity uses them when the fixed point loses accuracy;
all default to off, which is the rule above):
- `neuron_exponents`: each neuron p gets its own extra right shift e_p >= 0 (ConnectionLayer
  .neuron_exp), the largest that keeps its largest |weight| within the range:
      e_p = floor(log2(qhi / (s_l 2^j max_p |wf|))),  W = round(wf s_l 2^(j + e_p) / in_scale)
  capped so that weight_exp - e_p >= -8. A neuron whose weights are all small next to the
  layer's largest gets up to 2^e_p times finer levels; its synapses are applied with
  weight_exp - e_p, one Lava connection process per exponent (ConnectionLayer.processes), the
  a_in sum of each (delay, post) group floored once as with j. Nothing clips, a_in and v keep
  their ranges, the structure and the synapse count are unchanged; the range is symmetric
  (each process has its own sign mode). netx has one exponent per layer: such a file is
  netx-incomplete (netx weights rounded).
- `scale_factors[l]` = f >= 1 multiplies s_l, up to the limits that cannot be exceeded without
  changing arithmetic on the calibration set: vth in 17 bits, and the measured a_in and v ranges
  *without* headroom. Weights (and biases) beyond their range then clip at its end (counted as
  `synapses_clipped`, `bias_clipped`): the largest weights saturate, every other weight gets f
  times finer levels. The extra shift j (hence weight_exp) follows from the new s_l as above.
- `keep_zeroed`: a synapse whose trained weight is nonzero but whose W rounds to 0 keeps the
  smallest nonzero level, W = sign(wf) (`synapses_kept_at_smallest_level`): the weights of those
  synapses change (up to half a level), the structure does not. Off, such synapses stay in the
  file with weight 0 (`synapses_quantized_to_zero`): the deployed network then has fewer
  effective synapses than the synapse count the budgets use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deployed import fixed_point as fp
from deployed.network import (
    ConnectionLayer,
    DeployedNetwork,
    InputEncoding,
    NeuronParams,
    RecurrentSynapses,
    connected_pairs,
)
from export.errors import ExportError
from export.float_reference import FloatResult
from trainer.checkpoint import Checkpoint, RecurrentFloat

# Loihi's weight exponent is a signed 4-bit field (-8..7); export never goes below -8.
MIN_WEIGHT_EXP_ABS = 8
MAX_WEIGHT_EXP = 7

# Lava's own widths, used when a profile does not set the corresponding limit.
LAVA_BITS = {"weight_bits": 8, "du_bits": 12, "dv_bits": 12, "vth_bits": 17,
             "bias_mant_bits": 13, "bias_exp_bits": 3, "state_bits": 24}


@dataclass
class QuantSettings:
    """Bit widths and options used by quantization (bits; headroom is a factor >= 1)."""

    weight_bits: int = 8
    vth_bits: int = 17
    bias_mant_bits: int = 13
    state_bits: int = 24
    num_message_bits: int = 8
    headroom: float = 2.0
    netx_exact: bool = False  # True: weight_exp only as netx can express it (-truncate bits)
    scale_factors: tuple[float, ...] | None = None  # per layer, >= 1 (None: all 1)
    keep_zeroed: bool = False  # W that rounds to 0 keeps the smallest level with its sign
    neuron_exponents: bool = False  # one extra weight exponent per neuron (module docstring)

    @classmethod
    def from_profile(cls, profile, num_message_bits: int = 8, headroom: float = 2.0,
                     netx_exact: bool = False) -> "QuantSettings":
        def lim(key):
            v = profile.limit(key) if profile is not None else None
            return LAVA_BITS[key] if v is None else int(v)
        return cls(weight_bits=min(lim("weight_bits"), fp.LAVA_WEIGHT_BITS),
                   vth_bits=lim("vth_bits"), bias_mant_bits=lim("bias_mant_bits"),
                   state_bits=lim("state_bits"), num_message_bits=num_message_bits,
                   headroom=headroom, netx_exact=netx_exact)


def choose_input_encoding(ck: Checkpoint, x_cal: np.ndarray, num_message_bits: int
                          ) -> tuple[InputEncoding, dict]:
    """Scale so the calibration set's largest feature maps to the top payload value."""
    if not 1 <= num_message_bits <= 24:
        raise ExportError(f"num_message_bits must be in 1..24 (Lava's graded spikes), "
                          f"got {num_message_bits}")
    x_max = float(np.max(x_cal))
    if not x_max > 0:
        raise ExportError("calibration features have no positive value: graded-spike payloads "
                          "are non-negative, so such features cannot be encoded")
    top = 2 ** num_message_bits - 1
    enc = InputEncoding(n_channels=ck.n_channels, time_steps=int(x_cal.shape[1]),
                        num_message_bits=num_message_bits, scale=top / x_max,
                        event_threshold=ck.input_threshold)
    neg = float(np.mean(x_cal < 0))
    info = {"feature_max": x_max, "scale": enc.scale, "num_message_bits": num_message_bits,
            "event_threshold": enc.event_threshold,
            "events_per_sample": float(np.count_nonzero(enc.encode(x_cal)) / len(x_cal)),
            "fraction_negative_features_clipped": neg,
            "rms_encoding_error": float(np.sqrt(np.mean(
                (enc.encode(x_cal) / enc.scale - x_cal) ** 2)))}
    return enc, info


def quantize(ck: Checkpoint, enc: InputEncoding, calib: FloatResult, qs: QuantSettings,
             profile_name: str, profile_version: str, meta: dict | None = None
             ) -> tuple[DeployedNetwork, list[dict]]:
    """Checkpoint + calibration ranges -> (DeployedNetwork, per-layer quantization info)."""
    a_limit = 2 ** (qs.state_bits - 1 - fp.ACT_SHIFT)  # |a_in| bound so a_in << 6 never wraps
    v_limit = 2 ** (qs.state_bits - 1) - 1
    vth_max = 2 ** qs.vth_bits - 1
    b_lo, b_hi = -(2 ** (qs.bias_mant_bits - 1)), 2 ** (qs.bias_mant_bits - 1) - 1
    if qs.neuron_exponents and qs.netx_exact:
        raise ExportError("neuron_exponents and netx_exact exclude each other: netx has one "
                          "weight exponent per layer")
    if qs.scale_factors is not None and len(qs.scale_factors) != len(ck.layers):
        raise ExportError(f"scale_factors needs one factor per layer ({len(ck.layers)}), got "
                          f"{len(qs.scale_factors)}")
    layers, infos = [], []
    for li, L in enumerate(ck.layers):
        st = calib.stats[li]
        in_scale = enc.scale if li == 0 else 1.0
        input_bits = enc.num_message_bits if li == 0 else 0
        a, b = L.bn_affine()
        wp = L.weight * a[L.post] / in_scale  # float current per payload unit
        mode = fp.sign_mode(wp)
        k = fp.truncate_bits(mode, qs.weight_bits)
        qlo, qhi = fp.representable_range(mode, qs.weight_bits)
        if mode == fp.SIGN_MIXED and (qs.neuron_exponents or
                                      connected_pairs(L.n_in, L.post, L.pre) < L.post.size):
            # each slot (ConnectionLayer.slots) is its own Lava process with its own sign mode:
            # a slot of only negative weights is inhibitory, clipped at -255, so the mixed
            # range's lowest level (-2^8 applied) would change there; a symmetric range is
            # exact in every mode (its values are multiples of the mixed truncation step).
            # The same holds for the per-exponent processes of neuron_exponents.
            qlo = -qhi
        cons: dict[str, float] = {}
        pos, neg = (wp.max() if wp.size else 0.0), (-wp.min() if wp.size else 0.0)
        if pos > 0:
            cons["weight_range"] = qhi / pos
        if neg > 0:
            cons["weight_range"] = min(cons.get("weight_range", math.inf), -qlo / neg)
        if st.max_abs_current > 0:
            cons["a_in_range"] = a_limit / (qs.headroom * st.max_abs_current)
        bpos, bneg = float(max(b.max(), 0)), float(max(-b.min(), 0))
        if bpos > 0:
            cons["bias_range"] = b_hi / bpos
        if bneg > 0:
            cons["bias_range"] = min(cons.get("bias_range", math.inf), -b_lo / bneg)
        if L.spiking:
            cons["vth_range"] = vth_max / L.threshold
            if st.min_v < 0:
                cons["negative_v_range"] = v_limit / (64 * qs.headroom * -st.min_v)
        else:
            vabs = max(st.max_v, -st.min_v)
            if vabs > 0:
                cons["readout_v_below_vth"] = vth_max / (qs.headroom * vabs)
        binding = min(cons, key=cons.__getitem__) if cons else "none"
        s_max = cons[binding] if cons else 1.0
        factor = 1.0 if qs.scale_factors is None else float(qs.scale_factors[li])
        if factor != 1.0:
            binding, s_max = _scaled(cons, s_max, factor, qs.headroom)
        if L.spiking:
            vth = int(math.floor(L.threshold * s_max))
            if vth < 1:
                raise ExportError(f"layer {L.name}: no integer threshold fits (threshold "
                                  f"{L.threshold} x scale {s_max:.3g} < 1; limited by "
                                  f"{binding}); the float ranges are too wide for "
                                  f"{qs.state_bits}-bit state")
            s = vth / L.threshold
        else:
            vth, s = vth_max, s_max
        # extra right shift j when the weights would use less than half their range (typical
        # for the graded-input layer): full weight precision, the sum floored once per slot
        j = 0
        if not qs.netx_exact and "weight_range" in cons and cons["weight_range"] > s:
            j = max(0, min(int(math.floor(math.log2(cons["weight_range"] / s))),
                           MIN_WEIGHT_EXP_ABS - k))
        gain = np.full(wp.shape, s * 2.0 ** j)  # W per unit of wp, per synapse
        neuron_exp = None
        if qs.neuron_exponents:
            neuron_exp = _neuron_exponents(wp, L.post, L.n_out, s * 2.0 ** j, qhi,
                                           MIN_WEIGHT_EXP_ABS - k - j)
            gain = gain * 2.0 ** neuron_exp[L.post]
            if not neuron_exp.any():
                neuron_exp = None  # no neuron gained a level: the layer as without the option
        W_round = np.rint(wp * gain)
        W = np.clip(W_round, qlo, qhi).astype(np.int64)
        zeroed = (W == 0) & (wp != 0)
        kept = int(zeroed.sum()) if qs.keep_zeroed else 0
        if qs.keep_zeroed:
            W[zeroed] = np.sign(wp[zeroed]).astype(np.int64)
        w_applied = W << k
        assert np.array_equal(fp.lava_weights(w_applied, qs.weight_bits), w_applied)
        bias_f = np.rint(b * s)
        bias_mant = np.clip(bias_f, b_lo, b_hi).astype(np.int64)
        neurons = NeuronParams(n=L.n_out, du=int(L.du), dv=int(L.dv), vth=int(vth),
                               bias_mant=bias_mant, bias_exp=fp.NETX_BIAS_EXP,
                               spiking=L.spiking, v_scale=1.0 / (64.0 * s))
        rec, rec_info = (None, None) if L.recurrent is None else \
            _recurrent(L.recurrent, L.n_out, s, qs)
        layers.append(ConnectionLayer(
            name=L.name, n_in=L.n_in, n_out=L.n_out, pre=L.pre.copy(), post=L.post.copy(),
            delay=L.delay.copy(), weight=w_applied, weight_exp=-(k + j),
            num_weight_bits=qs.weight_bits, neurons=neurons, input_message_bits=input_bits,
            recurrent=rec, neuron_exp=neuron_exp))
        err = W / gain - wp
        wmax = max(pos, neg)
        infos.append({
            "layer": L.name, "sign_mode": mode, "scale": s, "scale_limited_by": binding,
            "scale_limits": {key: float(v) for key, v in sorted(cons.items())},
            "weight_exp": -(k + j), "extra_shift": j,
            "W_range": [int(W.min()) if W.size else 0, int(W.max()) if W.size else 0],
            "W_representable": [qlo, qhi],
            "weight_levels_used_fraction":
                float(np.abs(W).max() / max(qhi, -qlo)) if W.size else 0.0,
            "weight_rms_error_rel": float(np.sqrt(np.mean(err ** 2)) / wmax) if wmax > 0 else 0.0,
            "weight_max_error_rel": float(np.abs(err).max() / wmax) if wmax > 0 else 0.0,
            "synapses_quantized_to_zero": int(np.sum((W == 0) & (wp != 0))),
            "synapses_kept_at_smallest_level": kept,
            "synapses_clipped": int(np.sum((W_round < qlo) | (W_round > qhi))),
            "scale_factor": factor,
            "bias_clipped": int(np.sum(bias_f != bias_mant)),
            "vth": int(vth), "threshold_float": L.threshold if L.spiking else None,
            "v_scale": neurons.v_scale,
            "calibration": st.to_dict(),
        })
        if rec_info is not None:  # only for recurrent layers: feed-forward infos unchanged
            infos[-1]["recurrent"] = rec_info
        if neuron_exp is not None:  # only with neuron_exponents: other infos unchanged
            infos[-1]["neuron_exp"] = neuron_exp.tolist()
            infos[-1]["connection_processes"] = len(layers[-1].processes())
    net = DeployedNetwork(layers=layers, input=enc, class_names=list(ck.class_names),
                          profile_name=profile_name, profile_version=profile_version,
                          meta=dict(meta or {}))
    return net, infos


def _neuron_exponents(wp: np.ndarray, post: np.ndarray, n_out: int, gain: float, qhi: int,
                      cap: int) -> np.ndarray:
    """(n_out,) int64: e_p = floor(log2(qhi / (gain * max_p |wp|))) in 0..cap (0 for a neuron
    without weights), so that round(wp * gain * 2^e_p) stays within qhi."""
    m = np.zeros(n_out)
    np.maximum.at(m, post, np.abs(wp))
    e = np.zeros(n_out, dtype=np.int64)
    has = m > 0
    if cap > 0 and has.any():
        e[has] = np.clip(np.floor(np.log2(qhi / (gain * m[has]))), 0, cap).astype(np.int64)
        # float rounding at a power of two: step back where the largest weight would exceed
        over = has & (np.rint(m * gain * 2.0 ** e) > qhi) & (e > 0)
        e[over] -= 1
    return e


def _recurrent(R: RecurrentFloat, n: int, s: float, qs: QuantSettings
               ) -> tuple[RecurrentSynapses, dict]:
    """A layer's recurrent synapses at the layer's scale s (a_in units per float current unit;
    input: a spike of 1) with their own sign mode and exponent (module docstring)."""
    wr = np.asarray(R.weight, dtype=np.float64)
    mode = fp.sign_mode(wr)
    k = fp.truncate_bits(mode, qs.weight_bits)
    qlo, qhi = fp.representable_range(mode, qs.weight_bits)
    if mode == fp.SIGN_MIXED and connected_pairs(n, R.post, R.pre) < R.post.size:
        qlo = -qhi  # several slots, each its own sign mode (as for feed-forward synapses)
    pos, neg = (wr.max() if wr.size else 0.0), (-wr.min() if wr.size else 0.0)
    fit = min(qhi / pos if pos > 0 else math.inf, -qlo / neg if neg > 0 else math.inf)
    j = 0
    if math.isfinite(fit):
        j = min(int(math.floor(math.log2(fit / s))), MIN_WEIGHT_EXP_ABS - k)
        j = max(j, -(MAX_WEIGHT_EXP + k))
        if qs.netx_exact:
            j = min(j, 0)
    W_round = np.rint(wr * s * 2.0 ** j)
    W = np.clip(W_round, qlo, qhi).astype(np.int64)
    zeroed = (W == 0) & (wr != 0)
    kept = int(zeroed.sum()) if qs.keep_zeroed else 0
    if qs.keep_zeroed:
        W[zeroed] = np.sign(wr[zeroed]).astype(np.int64)
    w_applied = W << k
    err = W / (s * 2.0 ** j) - wr
    wmax = max(pos, neg)
    syn = RecurrentSynapses(pre=R.pre.astype(np.int64), post=R.post.astype(np.int64),
                            delay=R.delay.astype(np.int64), weight=w_applied,
                            weight_exp=-(k + j), num_weight_bits=qs.weight_bits)
    info = {"synapses": syn.n_synapses, "max_delay": syn.max_delay, "sign_mode": mode,
            "weight_exp": syn.weight_exp, "extra_shift": j,
            "W_range": [int(W.min()) if W.size else 0, int(W.max()) if W.size else 0],
            "W_representable": [qlo, qhi],
            "weight_rms_error_rel": float(np.sqrt(np.mean(err ** 2)) / wmax) if wmax > 0 else 0.0,
            "weight_max_error_rel": float(np.abs(err).max() / wmax) if wmax > 0 else 0.0,
            "synapses_quantized_to_zero": int(np.sum((W == 0) & (wr != 0))),
            "synapses_kept_at_smallest_level": kept,
            "synapses_clipped": int(np.sum((W_round < qlo) | (W_round > qhi)))}
    return syn, info


# limits a scale factor may not pass: vth's width, and the measured ranges (headroom removed)
_MEASURED = ("a_in_range", "negative_v_range", "readout_v_below_vth")


def _scaled(cons: dict[str, float], s_max: float, factor: float, headroom: float
            ) -> tuple[str, float]:
    """(binding limit, scale) for `factor` x the layer's scale s_max: capped by vth_range and by
    the measured a_in / v ranges without headroom; weight and bias ranges may be exceeded."""
    if not factor >= 1:
        raise ExportError(f"scale factors must be >= 1, got {factor}")
    caps = {key: cons[key] * (headroom if key in _MEASURED else 1.0)
            for key in ("vth_range", *_MEASURED) if key in cons}
    target = factor * s_max
    cap = min(caps, key=caps.__getitem__) if caps else None
    if cap is not None and caps[cap] < target:
        return f"{cap} without headroom", max(s_max, caps[cap])
    return f"scale factor {factor:g}", target
