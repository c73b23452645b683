"""Run sweep points' deployed networks in Lava: test accuracy through this project's Lava graph
(Loihi2SimCfg, fixed_pt) and how often Lava equals the emulator, per point.

    python -m experiments.lava_points --results docs/results/sweep_recurrent \
        --runs runs/sweep_recurrent --json docs/results/sweep_recurrent_lava.json

Each point JSON of ``--results`` names a run folder ``RUNS/{name}/`` holding the ``net.h5`` the
sweep deployed (experiments.sweep_trial), or the folder of the point it shares its run with
(``same_run_as``: the sweep trains such twins once). Its network is checked against the point (the
emulator accuracy must be the point's ``emulator_accuracy``: same file, same data), then run
in Lava on the whole test split with the emulator beside it (lava_runtime.run_cli.run with
compare="emulator"). The JSON maps point name -> {lava_accuracy, emulator_accuracy,
lava_equals_emulator_fraction, n_test, seconds, net_sha256} and is rewritten after each point;
a point it already holds for the same net.h5 (sha256) is skipped, so the command resumes, and a
point whose network was exported again since (or held without a sha256) runs again.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

from trainer.file_io import read_json_file, write_json_atomic

FORMAT = "delaysnn lava points 1"


def lava_points(results, runs, json_path, *, groups: list[str] | None = None,
                timeout_s: float = 3600.0, progress: bool = True) -> dict:
    """Run every point of ``results`` (optionally only ``groups``) in Lava; return (and write)
    the per-point record. ValueError before any work when a folder or net.h5 is missing."""
    from experiments.point_runs import held_for, point_runs
    from lava_runtime.run_cli import run

    results, runs, json_path = Path(results), Path(runs), Path(json_path)
    todo = point_runs(results, runs, json_path, ("net.h5",), groups)
    out = read_json_file(json_path) if json_path.is_file() else {
        "format": FORMAT, "results": results.as_posix(), "points": {}}
    out["command"] = (f"python -m experiments.lava_points --results {results.as_posix()} "
                      f"--runs {runs.as_posix()} --json {json_path.as_posix()}"
                      + (f" --groups {' '.join(groups)}" if groups else ""))
    for i, (p, folder) in enumerate(todo):
        held, sha = held_for(out, p["name"], folder / "net.h5")
        if held:
            continue    # this very file was run; another (re-exported) one runs again
        if progress:
            print(f"lava_points: {i + 1}/{len(todo)} {p['name']}", flush=True)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            r = run(folder / "net.h5", split="test", backend="lava",
                    compare="emulator", timeout_s=timeout_s)
        emu = r["compare"]["accuracy"]
        if abs(emu - p["emulator_accuracy"]) > 1e-9:
            raise ValueError(f"{p['name']}: the emulator scores {emu:.4f} on "
                             f"{folder / 'net.h5'}, the point records "
                             f"{p['emulator_accuracy']:.4f}: not the network the point "
                             "deployed")
        out["points"][p["name"]] = {
            "lava_accuracy": r["accuracy"], "emulator_accuracy": emu,
            "lava_equals_emulator_fraction": r["compare"]["exact_match_fraction"],
            "n_test": r["samples"], "seconds": round(time.perf_counter() - t0, 1),
            "net_sha256": sha}
        write_json_atomic(out, json_path)
        if progress:
            q = out["points"][p["name"]]
            print(f"lava_points: {p['name']}: Lava {q['lava_accuracy']:.2%}, emulator "
                  f"{emu:.2%}, equal on {q['lava_equals_emulator_fraction']:.1%}", flush=True)
    return out


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m experiments.lava_points", __doc__)
    ap.add_argument("--results", required=True, metavar="DIR",
                    help="folder of sweep point JSONs (required, no default)")
    ap.add_argument("--runs", required=True, metavar="DIR",
                    help="folder of their run folders, each with net.h5 (required, no default)")
    ap.add_argument("--json", required=True, metavar="FILE.json",
                    help="per-point record, rewritten after each point (required, no default)")
    ap.add_argument("--groups", nargs="+", default=None,
                    help="only points of these groups (default: every point)")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds one point's Lava run may take (default: 3600)")
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        lava_points(a.results, a.runs, a.json, groups=a.groups, timeout_s=a.timeout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
