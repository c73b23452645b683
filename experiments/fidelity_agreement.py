"""How often sweep points' deployed networks answer differently from their float models, and what
that does to a test-split gap: the noise under issue 26's test target.

    python -m experiments.fidelity_agreement --results docs/results/sweep_bound \
        --runs runs/sweep_bound --json docs/results/fidelity_agreement.json

For every point JSON of --results, its run folder (RUNS/{name}, or ``same_run_as``) holds the
trained checkpoint and the net.h5 the sweep deployed. On the validation and the test split, the
float model (export.float_reference: the checkpoint with integer delays) and the deployed
network (deployed.emulator, bit-exact to Lava) each give a class per recording. Per split:

    n, float_correct, fixed_correct,
    b = float right and fixed point wrong,  c = float wrong and fixed point right,
    disagree = recordings given different classes (b + c <= disagree),
    gap = 100 * (b - c) / n   (points: float minus fixed-point accuracy)

and ``p_test_over_1``: the chance that the test gap exceeds 1 point if the fixed point were no
worse than the float model, its b + c changed answers among right and wrong falling either way
with probability 1/2 (the exact sign-test tail, McNemar's test without approximation):
P(b - c > n / 100) with b ~ Binomial(b + c, 1/2). A point whose test gap exceeds 1 point with a
large p is within what chance gives at its disagreement count; the validation split, 300
recordings like the test split, cannot tell it from a faithful one.

An analysis, not part of the bound: it reads the test split. The JSON maps point name ->
{net_sha256, val: {...}, test: {...}, p_test_over_1} and is rewritten after each point; a point
held for the same net.h5 is skipped, so the command resumes.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from trainer.file_io import read_json_file, write_json_atomic

FORMAT = "delaysnn fidelity agreement 1"


def tail_over(d: int, threshold: float) -> float:
    """P(b - c > threshold) for b ~ Binomial(d, 1/2), c = d - b (exact)."""
    return sum(math.comb(d, b) for b in range(d + 1) if 2 * b - d > threshold + 1e-9) / 2 ** d


def split_counts(float_pred, fixed_pred, labels) -> dict:
    """The per-split counts of the module docstring, from three equal-length arrays."""
    import numpy as np

    f, q, y = (np.asarray(a) for a in (float_pred, fixed_pred, labels))
    fr, qr = f == y, q == y
    n = len(y)
    b, c = int(np.sum(fr & ~qr)), int(np.sum(~fr & qr))
    return {"n": n, "float_correct": int(fr.sum()), "fixed_correct": int(qr.sum()),
            "disagree": int(np.sum(f != q)), "b": b, "c": c,
            "gap_points": round(100 * (b - c) / n, 9)}


def fidelity_agreement(results, runs, json_path, *, progress: bool = True) -> dict:
    """Measure every point of ``results``; return (and write) the record. ValueError before any
    work when a run folder, checkpoint or net.h5 is missing."""
    from deployed.netx_h5 import load
    from experiments.point_runs import held_for, point_runs
    from export.build_network import _recipe_data, fixed_point_predictions
    from export.float_reference import simulate_float
    from trainer.checkpoint import load_checkpoint

    results, runs, json_path = Path(results), Path(runs), Path(json_path)
    todo = point_runs(results, runs, json_path, ("net.h5", "checkpoint.pt"))
    out: dict = (read_json_file(json_path) if json_path.is_file()
                 else {"format": FORMAT, "points": {}})
    out["command"] = (f"python -m experiments.fidelity_agreement --results {results.as_posix()} "
                      f"--runs {runs.as_posix()} --json {json_path.as_posix()}")
    for i, (p, folder) in enumerate(todo):
        net_path = folder / "net.h5"
        held, sha = held_for(out, p["name"], net_path)
        if held:
            continue
        t0 = time.perf_counter()
        ck = load_checkpoint(folder / "checkpoint.pt")
        net = load(net_path)
        rec: dict = {"net_sha256": sha}
        for split in ("val", "test"):
            x, y = _recipe_data(ck, split)
            rec[split] = split_counts(simulate_float(ck, x).predictions(),
                                      fixed_point_predictions(net, x)[0], y)
        t = rec["test"]
        if abs(t["fixed_correct"] / t["n"] - p["emulator_accuracy"]) > 1e-9:
            raise ValueError(f"{p['name']}: the emulator scores {t['fixed_correct'] / t['n']:.4f}"
                             f" on {net_path}, the point records {p['emulator_accuracy']:.4f}: "
                             "not the network the point deployed")
        rec["p_test_over_1"] = tail_over(t["b"] + t["c"], t["n"] / 100)
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        out["points"][p["name"]] = rec
        write_json_atomic(out, json_path)
        if progress:
            print(f"fidelity_agreement: {i + 1}/{len(todo)} {p['name']}: test gap "
                  f"{t['gap_points']:+.2f} points, {t['disagree']} of {t['n']} answers differ "
                  f"(val {rec['val']['disagree']}), p(gap > 1 by chance) "
                  f"{rec['p_test_over_1']:.2f}", flush=True)
    return out


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m experiments.fidelity_agreement", __doc__)
    ap.add_argument("--results", required=True, metavar="DIR", help="a folder of point JSONs")
    ap.add_argument("--runs", required=True, metavar="DIR",
                    help="the folder of the sweep's runs (checkpoint.pt and net.h5 per point)")
    ap.add_argument("--json", required=True, metavar="FILE.json",
                    help="the record, read and extended when it exists")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        fidelity_agreement(a.results, a.runs, a.json)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
