"""Collect the headline figures of finished training runs into one small JSON (for docs/results).

    python -m experiments.collect_runs RUN_DIR... --label LABEL --command "CMD" --json OUT.json

Each RUN_DIR must hold the trainer's metrics.json; per run it keeps method, sparsity, seed,
epochs, best (validation-selected) epoch, validation and test accuracy, training seconds
(metrics.json ``seconds``: wall time of the training epochs, validation excluded) and the mean
seconds per epoch, and, where ``python -m trainer.analyze RUN_DIR`` wrote
RUN_DIR/analysis/analysis.json, each layer's E/I clustering z trained and at initialisation.
``--label`` names the group (e.g. the code version), ``--command`` records
how the runs were made. An existing OUT.json keeps its other labels.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

KEYS = ("method", "sparsity", "seed", "epochs", "best_epoch", "val_accuracy", "test_accuracy",
        "seconds", "connections")


def collect(run_dirs: list[Path]) -> list[dict]:
    """One dict per run (KEYS plus seconds_per_epoch, and ei_z where analysed) from
    RUN_DIR/metrics.json."""
    rows = []
    for d in run_dirs:
        m = json.loads((d / "metrics.json").read_text())
        row = {k: m[k] for k in KEYS}
        row["seconds_per_epoch"] = round(m["seconds"] / len(m["history"]), 2)
        analysis = d / "analysis" / "analysis.json"
        if analysis.is_file():
            layers = json.loads(analysis.read_text())["layers"]
            row["ei_z"] = {la["name"]: {"trained": la["trained"]["z"],
                                        "init": (la.get("before") or {}).get("z")}
                           for la in layers}
        rows.append(row)
    return rows


def record_runs(argv, prog: str, description: str, summarize, need=("metrics.json",)) -> dict:
    """The shared command line: RUN_DIR... --label --command [--note] --json OUT.json. Checks
    that every run holds the files in `need`, writes OUT[label] = {command, note, runs:
    [summarize(run_dir), ...]} (other labels kept) and returns that entry with its "label"."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("run_dirs", nargs="+", type=Path)
    p.add_argument("--label", required=True)
    p.add_argument("--command", required=True, help="the command that trained the runs")
    p.add_argument("--note", default="", help="anything a reader needs (machine load, code)")
    p.add_argument("--json", required=True, type=Path)
    a = p.parse_args(argv)
    missing = [f"{d}/{f}" for d in a.run_dirs for f in need if not (d / f).is_file()]
    if missing:
        p.error(f"missing {', '.join(missing)}: pass finished trainer runs")
    if not a.json.parent.is_dir():
        p.error(f"--json: folder {a.json.parent} does not exist")
    doc = json.loads(a.json.read_text()) if a.json.is_file() else {}
    doc[a.label] = {"command": a.command, "note": a.note,
                    "runs": [summarize(d) for d in a.run_dirs]}
    from trainer.file_io import write_json_atomic
    write_json_atomic(doc, a.json, sort_keys=True)
    return {**doc[a.label], "label": a.label}


def main(argv=None) -> int:
    entry = record_runs(argv, "python -m experiments.collect_runs", __doc__.splitlines()[0],
                        lambda d: collect([d])[0])
    for r in entry["runs"]:
        print(f"{entry['label']}: seed {r['seed']} test {r['test_accuracy']:.2%} val "
              f"{r['val_accuracy']:.2%} (epoch {r['best_epoch']}) {r['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
