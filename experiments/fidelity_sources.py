"""Where a trained run's fixed point parts from its float model: the float model run with one
source of the fixed point's error at a time, each measured as accuracy and as agreement with the
float model and with the emulator (the fraction of recordings given the same class) on the
validation and test splits.

    python -m experiments.fidelity_sources runs/sweep_bound/no-delay_s0.9_seed1 \
        --json docs/results/fidelity_sources_no-delay_s0.9_seed1.json

An analysis of export.fidelity's limits, not part of the bound: it reads the test split. Every
variant but "emulator" runs in export.float_reference (float64 dynamics, integer delays):

- ``input payloads``: features rounded to the exported input payloads (payload / scale);
- ``deployed weights``: the exported integer weights and biases of every layer, scaled back to
  float currents (w_applied * 2^weight_exp / s, bias_mant / s; docs in export.quantize), and the
  payloads; what remains between it and ``emulator`` is the integer arithmetic of the neuron
  (truncated decays, floored sums);
- ``emulator``: the exported network in deployed.emulator (bit-exact to the Lava graph);
- ``emulator, neuron exponents``: the export with per-neuron weight exponents (export.quantize
  `neuron_exponents`, the bound's first remedy), in the emulator;
- ``weight noise e``: every folded weight times (1 + e * N(0, 1)), seeded: how much agreement
  any weight error of that relative size costs;
- ``grid b bits per layer``: folded weights rounded to a symmetric grid of 2^(b-1) - 1 levels
  per sign over the layer's largest |weight| (the export's 8-bit mixed-sign weights are the
  7-bit grid: Lava drops their lowest bit); ``per neuron``: the same grid over each
  postsynaptic neuron's largest |weight|, what one weight exponent per neuron would allow.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

from trainer.file_io import write_json_atomic

FORMAT = "delaysnn fidelity sources 1"
NOISE = (0.001, 0.01, 0.03)  # relative weight noise levels
GRIDS = ((7, False), (8, False), (10, False), (7, True), (8, True))  # (bits, per neuron)


def _folded(ck):
    """[wf (S,)] per layer: the weights with BatchNorm folded in."""
    return [L.weight * L.bn_affine()[0][L.post] for L in ck.layers]


def _with_weights(ck, weights, biases=None):
    """A copy of ck whose layers carry folded weights `weights` (and `biases`, default: the
    folded ones) and no BatchNorm."""
    ck2 = copy.deepcopy(ck)
    for i, (L, w) in enumerate(zip(ck2.layers, weights)):
        _, b = L.bn_affine()
        L.weight, L.bn = w, None
        L.bias = b if biases is None else biases[i]
    return ck2


def _grid(wf, post, n_out, bits, per_neuron):
    import numpy as np

    top = 2 ** (bits - 1) - 1
    if per_neuron:
        m = np.zeros(n_out)
        np.maximum.at(m, post, np.abs(wf))
        m = m[post]
    else:
        m = np.full(wf.shape, np.abs(wf).max(initial=0.0))
    g = np.where(m > 0, top / np.where(m > 0, m, 1.0), 0.0)
    return np.where(g > 0, np.round(wf * g) / np.where(g > 0, g, 1.0), 0.0)


def fidelity_sources(run, *, seed: int = 0, json_path=None, progress: bool = True) -> dict:
    """Measure every variant of the module docstring on RUN's val and test splits; return (and
    write) the record."""
    import numpy as np

    from deployed import fixed_point as fp
    from export.build_network import _recipe_data, export_loaded, fixed_point_predictions
    from export.float_reference import simulate_float
    from trainer.checkpoint import load_checkpoint, resolve_checkpoint_path

    if json_path is not None and not Path(json_path).parent.is_dir():
        raise ValueError(f"--json: folder {Path(json_path).parent} does not exist")
    ck = load_checkpoint(resolve_checkpoint_path(run))
    t0 = time.perf_counter()
    data = {s: _recipe_data(ck, s) for s in ("val", "test")}
    net, report = export_loaded(ck, "loihi2", provenance={}, source={}, evaluation=False)
    scales = [L["quantization"]["scale"] for L in report["layers"]]
    ref = {s: simulate_float(ck, x).predictions() for s, (x, _) in data.items()}
    emu = {s: fixed_point_predictions(net, x)[0] for s, (x, _) in data.items()}
    folded = _folded(ck)
    rows: list[dict] = []

    def add(name, what, predict):
        """One row; predict(split, features) -> classes."""
        row = {"variant": name, "what": what}
        for s, (x, y) in data.items():
            p = predict(s, x)
            row[s] = {"accuracy": float(np.mean(p == y)), "agreement": float(np.mean(p == ref[s])),
                      "agreement_with_emulator": float(np.mean(p == emu[s]))}
        rows.append(row)
        if progress:
            print(f"fidelity_sources: {name}: test accuracy {row['test']['accuracy']:.2%}, "
                  f"agreement with float {row['test']['agreement']:.2%}, with the emulator "
                  f"{row['test']['agreement_with_emulator']:.2%}", flush=True)

    def payload_x(x):
        return net.input.encode(x).astype(np.float64) / net.input.scale

    add("float", "the trained model (export.float_reference)", lambda s, x: ref[s])
    add("input payloads", "features rounded to the exported input payloads",
        lambda s, x: simulate_float(ck, payload_x(x)).predictions())
    # back to float currents: a_in = W 2^exp x payload, v = 2^ACT_SHIFT s v_float
    in_scale = [net.input.scale] + [1.0] * (len(net.layers) - 1)
    dep_w = [L.weight * 2.0 ** L.synapse_exp() / s * c
             for L, s, c in zip(net.layers, scales, in_scale)]
    dep_b = [fp.effective_bias(L.neurons.bias_mant, L.neurons.bias_exp) / 2.0 ** fp.ACT_SHIFT / s
             for L, s in zip(net.layers, scales)]
    ck_dep = _with_weights(ck, dep_w, dep_b)
    add("deployed weights", "the exported weights and biases and payloads, float dynamics",
        lambda s, x: simulate_float(ck_dep, payload_x(x)).predictions())
    add("emulator", "the exported network in the bit-exact emulator", lambda s, x: emu[s])
    net_ne, _ = export_loaded(ck, "loihi2", provenance={}, source={}, evaluation=False,
                              neuron_exponents=True)
    add("emulator, neuron exponents", "the export with per-neuron weight exponents "
        "(export.fidelity's first remedy) in the bit-exact emulator",
        lambda s, x: fixed_point_predictions(net_ne, x)[0])
    rng = np.random.default_rng(seed)
    for e in NOISE:
        noisy = _with_weights(ck, [w * (1 + e * rng.standard_normal(w.shape)) for w in folded])
        add(f"weight noise {e:g}", f"folded weights x (1 + {e:g} N(0,1)), seed {seed}",
            lambda s, x, c=noisy: simulate_float(c, x).predictions())
    for bits, per_neuron in GRIDS:
        gridded = _with_weights(ck, [_grid(w, L.post, L.n_out, bits, per_neuron)
                                     for w, L in zip(folded, ck.layers)])
        where = "each neuron's" if per_neuron else "the layer's"
        add(f"grid {bits} bits per {'neuron' if per_neuron else 'layer'}",
            f"folded weights on 2^{bits - 1} - 1 levels per sign over {where} largest |weight|",
            lambda s, x, c=gridded: simulate_float(c, x).predictions())
    out = {"format": FORMAT, "run": Path(run).name, "seed": seed,
           "samples": {s: int(len(y)) for s, (_, y) in data.items()},
           "layers": [{"name": L["name"], "sign_mode": L["quantization"]["sign_mode"],
                       "scale_limited_by": L["quantization"]["scale_limited_by"],
                       "weight_exp": L["quantization"]["weight_exp"],
                       "W_range": L["quantization"]["W_range"]} for L in report["layers"]],
           "variants": rows, "seconds": round(time.perf_counter() - t0, 1),
           "command": f"python -m experiments.fidelity_sources {Path(run).as_posix()}"
                      + (f" --json {Path(json_path).as_posix()}" if json_path else "")}
    if json_path is not None:
        write_json_atomic(out, Path(json_path))
    return out


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m experiments.fidelity_sources", __doc__)
    ap.add_argument("run", help="trained run folder (with checkpoint.pt) or checkpoint file")
    ap.add_argument("--seed", type=int, default=0, help="seed of the weight noise (default: 0)")
    ap.add_argument("--json", default=None, metavar="FILE.json",
                    help="write the record here (default: printed only)")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        fidelity_sources(a.run, seed=a.seed, json_path=a.json)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
