"""Measure seconds per training epoch of each method at a few sparsities (to size the sweep).

    python -m experiments.time_epochs --dataset fsdd --sparsities 0 0.9 [--epochs 1] [--json F]

Each (method, sparsity) trains ``epochs`` epochs (default 1) into a temporary folder with the
sweep's config and prints the trainer's own per-epoch training seconds (``history[i].seconds``,
excluding validation) and the wall seconds of the whole run (data loading, validation, the
test evaluation included), and the CPU seconds of this process over the whole run (user +
system, all threads): on a loaded shared machine wall seconds overstate what an idle machine
gives, while CPU seconds bound it (idle wall lies between cpu / threads and cpu). The machine
load (1-minute load average) is printed beside each line, since it changes the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from trainer.layers import METHODS


def time_epochs(dataset: str = "fsdd", methods=METHODS, sparsities=(0.0, 0.9), epochs: int = 1,
                data_dir: str | None = None, sets: list[str] | None = None,
                device: str = "cpu") -> list[dict]:
    """[{method, sparsity, epoch_seconds: [s per epoch], wall_seconds, cpu_seconds,
    load_avg: [1-minute load before, after]}, ...]."""
    import trainer

    rows = []
    for method in methods:
        for s in sparsities:
            with tempfile.TemporaryDirectory() as tmp:
                load0 = os.getloadavg()[0]
                t0 = time.perf_counter()
                r0 = resource.getrusage(resource.RUSAGE_SELF)
                res = trainer.train({"dataset": dataset, "method": method, "sparsity": float(s),
                                     "epochs": epochs, "device": device,
                                     "data_dir": data_dir or ""},
                                    out=Path(tmp) / "run", sets=sets, progress=False)
                wall = time.perf_counter() - t0
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            load1 = os.getloadavg()[0]
            row = {"method": method, "sparsity": float(s),
                   "epoch_seconds": [h["seconds"] for h in res.metrics["history"]],  # type: ignore[index]
                   "wall_seconds": wall, "cpu_seconds": cpu, "load_avg": [load0, load1]}
            per_epoch = ", ".join(f"{x:.1f}" for x in row["epoch_seconds"])
            print(f"{method:16s} s={s:<8g} epoch s {per_epoch}  wall {wall:.1f} s  "
                  f"cpu {cpu:.1f} s  load {load0:.1f}->{load1:.1f}", flush=True)
            rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.time_epochs",
                                description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fsdd")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--sparsities", nargs="+", type=float, default=[0.0, 0.9])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    rows = time_epochs(a.dataset, a.methods, a.sparsities, a.epochs, a.data_dir, a.sets, a.device)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
