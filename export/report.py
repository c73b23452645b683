"""The export report: per-layer quantization, delays, connections, profile check, accuracy.

`build_layer_summary` and `format_report` are pure functions over plain data; the report itself
is a JSON-serialisable dict assembled by export.to_lava.export_checkpoint.
"""
from __future__ import annotations

import numpy as np

from deployed.network import ConnectionLayer, connected_pairs


def delay_summary(delay: np.ndarray) -> dict:
    """Delay histogram (count per delay value 0..max, steps) and its summary."""
    if delay.size == 0:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0, "fraction_zero": 0.0,
                "histogram": []}
    return {"min": int(delay.min()), "max": int(delay.max()), "mean": float(delay.mean()),
            "median": float(np.median(delay)), "fraction_zero": float(np.mean(delay == 0)),
            "histogram": np.bincount(delay).astype(int).tolist()}


def build_layer_summary(layer: ConnectionLayer, quant: dict) -> dict:
    pairs = connected_pairs(layer.n_in, layer.post, layer.pre)
    return {"name": layer.name, "n_in": layer.n_in, "n_out": layer.n_out,
            "synapses": layer.n_synapses, "connected_pairs": int(pairs),
            "density": pairs / (layer.n_in * layer.n_out),
            "slots": len(layer.slots()), "spiking": layer.neurons.spiking,
            "input_message_bits": layer.input_message_bits,
            "neuron": {"du": layer.neurons.du, "dv": layer.neurons.dv, "vth": layer.neurons.vth,
                       "bias_exp": layer.neurons.bias_exp,
                       "bias_mant_range": [int(layer.neurons.bias_mant.min()),
                                           int(layer.neurons.bias_mant.max())]},
            "delay": delay_summary(layer.delay), "quantization": quant,
            **({} if layer.recurrent is None else {"recurrent": {
                "synapses": layer.recurrent.n_synapses,
                "slots": len(layer.recurrent.slots(layer.n_out)),
                "delay": delay_summary(layer.recurrent.delay)}})}


def _hist_line(h: list[int], width: int = 40) -> str:
    if not h:
        return "(no synapses)"
    bars = " .:-=+*#%@"
    # compress to at most `width` bins
    n = len(h)
    k = -(-n // width)
    bins = [sum(h[i:i + k]) for i in range(0, n, k)]
    top = max(bins) or 1
    return "".join(bars[min(9, int(round(9 * b / top)))] for b in bins) + f"  (0..{n - 1} steps" + \
        (f", {k} per char)" if k > 1 else ")")


# report["warnings"] entry of an export whose netx layers are approximate; format_report
# prints it in the netx section, with what it means and what to do
NETX_WARNING = ("lava-dl's netx would read an approximation of this network (netx.problems); "
                "this project's Lava graph, emulator and budget read the file's exact delaysnn "
                "group")


def _pct(x) -> str:
    return "-" if x is None or x != x else f"{100 * x:.2f}%"


def netx_lines(r: dict) -> list[str]:
    """The netx section: whether lava-dl's netx reads the file exactly, whether that matters,
    and --netx-exact where it would remove the weight exponents netx cannot express."""
    nx = r["netx"]
    if nx["complete"]:
        return ["netx layers: exact (lava-dl's netx reads the same network)"]
    out = ["netx layers: approximate for lava-dl's netx; exact for this project's Lava graph, "
           "emulator and budget (they read the file's delaysnn group)"]
    out += [f"  {p}" for p in nx["problems"]]
    shifted = [(L["name"], L["quantization"].get("extra_shift", 0)) for L in r["layers"]
               if L["quantization"].get("extra_shift", 0) > 0]
    if shifted:
        cost = ", ".join(f"{name}'s weight step {2 ** j}x coarser" for name, j in shifted)
        out.append(f"  this matters only for loading the file with lava-dl's netx; for that, "
                   f"export with --netx-exact ({cost}; compare both exports' accuracy)")
    else:
        out.append("  this matters only for loading the file with lava-dl's netx")
    return out


def fidelity_lines(r: dict) -> list[str]:
    """Text lines of an export report's structure (zeroed synapses) and fidelity sections."""
    out = []
    zeroed = r.get("synapses_zeroed")
    if zeroed is not None:
        total = sum(L["synapses"] for L in r["layers"])
        if sum(zeroed):
            per = ", ".join(f"{L['name']} {z} of {L['synapses']}"
                            for L, z in zip(r["layers"], zeroed))
            out.append(f"structure: {sum(zeroed)} synapse(s) with a nonzero trained weight are "
                       f"deployed with weight 0 ({per}); they stay in the file and in the "
                       f"budgets' synapse count ({total}), {total - sum(zeroed)} act")
        else:
            out.append(f"structure: every trained synapse keeps a nonzero weight ({total})")
    f = r.get("fidelity")
    if f:
        out.append(f"fidelity bound {f['max_loss_points']:g} points on {f['samples']} samples "
                   f"({f['data']}): float {f['float_val_accuracy']:.2%}, fixed point "
                   f"{f['fixed_point_val_accuracy']:.2%}, loss {f['loss_points']:.2f} points: "
                   + ("within" if f["within_bound"] else "ABOVE THE BOUND")
                   + f" ({f['step']}, {len(f['tried'])} candidate(s) measured)")
        out += [f"  change: {c}" for c in f["changes"]] if f["changes_network"] else []
    return out


def format_report(r: dict) -> str:
    """Human-readable text of an export report dict."""
    out = []
    ck, prof = r["checkpoint"], r["profile"]
    out.append(f"export of {ck['path']}" + (f" (epoch {ck['epoch']}, val accuracy "
                                            f"{_pct(ck['val_accuracy'])})"
                                            if ck["epoch"] >= 0 else ""))
    out.append(f"profile {prof['name']} v{prof['version']}; latency {r['latency_steps']} steps, "
               f"run T + latency = {r['steps_per_sample']} steps per sample")
    enc = r["input_encoding"]
    out.append(f"input: {enc['num_message_bits']}-bit graded spikes, scale {enc['scale']:.4g} "
               f"payload/feature (feature max {enc['feature_max']:.4g}), rms encoding error "
               f"{enc['rms_encoding_error']:.3g}, negative features clipped "
               f"{100 * enc['fraction_negative_features_clipped']:.2f}%")
    out.append("")
    out.append(f"{'layer':<8}{'in':>6}{'out':>6}{'synapses':>10}{'pairs':>9}{'slots':>6}"
               f"{'w_exp':>6}{'W used':>8}{'rms err':>9}{'max err':>9}{'->0':>5}  scale limited by")
    for L in r["layers"]:
        q = L["quantization"]
        out.append(f"{L['name']:<8}{L['n_in']:>6}{L['n_out']:>6}{L['synapses']:>10}"
                   f"{L['connected_pairs']:>9}{L['slots']:>6}{q['weight_exp']:>6}"
                   f"{100 * q['weight_levels_used_fraction']:>7.0f}%"
                   f"{100 * q['weight_rms_error_rel']:>8.2f}%"
                   f"{100 * q['weight_max_error_rel']:>8.2f}%"
                   f"{q['synapses_quantized_to_zero']:>5}  {q['scale_limited_by']}")
    out.append("  (errors relative to the layer's largest |weight|; W used = largest |W| / range)")
    out.append("")
    out.append("delays (steps):")
    for L in r["layers"]:
        d = L["delay"]
        out.append(f"  {L['name']:<8} min {d['min']} max {d['max']} mean {d['mean']:.2f} median "
                   f"{d['median']:.1f} zero {100 * d['fraction_zero']:.0f}%  "
                   f"{_hist_line(d['histogram'])}")
    for L in r["layers"]:  # recurrent layers only (issue 24)
        if "recurrent" not in L:
            continue
        rec, q = L["recurrent"], L["quantization"].get("recurrent", {})
        d = rec["delay"]
        out.append(f"  {L['name']:<8} recurrent: {rec['synapses']} synapses in {rec['slots']} "
                   f"slot(s), weight_exp {q.get('weight_exp', '-')}, ->0 "
                   f"{q.get('synapses_quantized_to_zero', '-')}; delays min {d['min']} max "
                   f"{d['max']} mean {d['mean']:.2f}  {_hist_line(d['histogram'])}")
    out.append("")
    pc = r["profile_check"]
    u = pc["usage"]
    out.append(f"profile check: {'PASS' if not pc['violations'] else 'FAIL'}; {u['cores']} cores"
               + (f", {u['chips']} chip(s)" if u.get("chips") is not None else ""))
    for L in u["layers"]:
        out.append(f"  {L['layer']:<8} cores {L['cores']}, max core fan-in {L['max_core_fan_in']}, "
                   f"fan-out {L['max_core_fan_out']}, memory {L['max_core_bytes']} bytes")
    for v in pc["violations"]:
        out.append(f"  VIOLATION {v['layer']}: {v['key']} = {v['value']} > {v['limit']} "
                   f"{v['detail']}")
    out += netx_lines(r)
    out.append("")
    acc = r.get("accuracy")
    if acc:
        out.append(f"accuracy on {acc['samples']} samples ({acc['data']}):")
        out.append(f"  float model, integer delays (export.float_reference): "
                   f"{_pct(acc['float'])}")
        out.append(f"  quantized network ({acc['quantized_backend']}): "
                   f"{_pct(acc['quantized'])}; same class as float on "
                   f"{100 * acc['agreement_with_float']:.1f}%")
        rc = acc.get("readout_check")
        if rc:
            out.append(f"  readout voltage: max |v| {rc['max_abs_v']} of vth<<6 = {rc['limit']} "
                       f"({'never spikes' if rc['ok'] else 'WOULD SPIKE'})")
    out += fidelity_lines(r)
    for w in r.get("warnings", []):
        if w != NETX_WARNING:  # said in the netx section
            out.append(f"WARNING: {w}")
    return "\n".join(out)
