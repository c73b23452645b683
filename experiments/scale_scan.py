"""How far per-layer weight scales can close the float / fixed-point gap of one trained run: every
combination of per-layer scale factors (1 and the first ``--factors`` of
export.fidelity.SCALE_FACTORS) exported and run in the bit-exact emulator on a training subset,
the validation split and the test split, with accuracy and agreement with the float model.

    python -m experiments.scale_scan runs/sweep_bound/no-delay_s0.9_seed1 \
        --json docs/results/scale_scan_no_delay_s0.9_seed1.json

An analysis of the bound's first remedy (export.fidelity step 1), not part of it: it reads the
test split, which the bound never does. ``best_test_gap`` is the smallest test gap any scale
choice reaches (chosen by looking at the test split, so an optimistic floor), ``agreement``
the fraction of recordings on which the fixed point predicts the float model's class.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

from trainer.file_io import write_json_atomic

FORMAT = "delaysnn scale scan 1"


def scale_scan(run, *, factors: int = 4, train_samples: int = 900, seed: int = 0,
               json_path=None, progress: bool = True) -> dict:
    """Scan the per-layer scale factors of RUN (module docstring); return (and write) the
    record."""
    import numpy as np

    from export.build_network import (
        _recipe_data,
        export_loaded,
        fixed_point_predictions,
        prepare_export,
    )
    from export.fidelity import SCALE_FACTORS
    from export.float_reference import simulate_float
    from trainer.checkpoint import load_checkpoint, resolve_checkpoint_path

    if not 1 <= factors <= len(SCALE_FACTORS):
        raise ValueError(f"--factors must be 1..{len(SCALE_FACTORS)}, got {factors}")
    if json_path is not None and not Path(json_path).parent.is_dir():
        raise ValueError(f"--json: folder {Path(json_path).parent} does not exist")
    ck = load_checkpoint(resolve_checkpoint_path(run))
    t0 = time.perf_counter()
    data = {s: _recipe_data(ck, s) for s in ("train", "val", "test")}
    x, y = data["train"]
    pick = np.random.default_rng(seed).choice(len(y), min(train_samples, len(y)), replace=False)
    data["train"] = (x[pick], y[pick])
    flt = {s: simulate_float(ck, x).predictions() for s, (x, _) in data.items()}
    prepared = prepare_export(ck, "loihi2")
    levels = [1.0, *SCALE_FACTORS[:factors]]
    rows = []
    combos = list(itertools.product(levels, repeat=len(ck.layers)))
    for i, combo in enumerate(combos):
        f = None if all(v == 1.0 for v in combo) else tuple(combo)
        net, _ = export_loaded(ck, "loihi2", provenance={}, source={}, evaluation=False,
                               prepared=prepared, scale_factors=f)
        row: dict = {"scale_factors": list(combo)}
        for s, (xs, ys) in data.items():
            pred, check = fixed_point_predictions(net, xs)
            row[s] = {"accuracy": float(np.mean(pred == ys)),
                      "agreement": float(np.mean(pred == flt[s]))}
        row["readout_ok"] = bool(check["ok"])
        rows.append(row)
        if progress:
            print(f"scale_scan: {i + 1}/{len(combos)} {[round(v, 2) for v in combo]}: test "
                  f"{row['test']['accuracy']:.2%}, agreement {row['test']['agreement']:.2%}",
                  flush=True)
    float_acc = {s: float(np.mean(flt[s] == ys)) for s, (_, ys) in data.items()}
    ok = [r for r in rows if r["readout_ok"]]
    out = {"format": FORMAT, "run": Path(run).name, "train_samples": len(pick),
           "float_accuracy": float_acc, "candidates": rows,
           "as_exported_test_gap": 100 * (float_acc["test"] - rows[0]["test"]["accuracy"]),
           "best_test_gap": min(100 * (float_acc["test"] - r["test"]["accuracy"]) for r in ok),
           "max_test_agreement": max(r["test"]["agreement"] for r in ok),
           "max_train_agreement": max(r["train"]["agreement"] for r in ok),
           "seconds": round(time.perf_counter() - t0, 1),
           "command": f"python -m experiments.scale_scan {Path(run).as_posix()}"
                      + (f" --json {Path(json_path).as_posix()}" if json_path else "")}
    if json_path is not None:
        write_json_atomic(out, Path(json_path))
    return out


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m experiments.scale_scan", __doc__)
    ap.add_argument("run", help="trained run folder (with checkpoint.pt) or checkpoint file")
    ap.add_argument("--factors", type=int, default=4,
                    help="scale factors per layer besides 1, the first of "
                         "export.fidelity.SCALE_FACTORS (default: 4)")
    ap.add_argument("--train-samples", type=int, default=900,
                    help="training recordings drawn (seeded) for the agreement (default: 900)")
    ap.add_argument("--json", default=None, metavar="FILE.json",
                    help="write the record here (default: printed only)")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        r = scale_scan(a.run, factors=a.factors, train_samples=a.train_samples, json_path=a.json)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"scale_scan: test gap as exported {r['as_exported_test_gap']:.2f} points, best over "
          f"{len(r['candidates'])} scale choices {r['best_test_gap']:.2f}; agreement with float "
          f"at most {r['max_test_agreement']:.2%} (test), {r['max_train_agreement']:.2%} (train)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
