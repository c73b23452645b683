"""The main job, end to end: train -> export -> Lava run -> budget, on the embedded synthetic set.

`make demo` runs `python -m lava_runtime demo --out runs/demo`; a notebook calls
`lava_runtime.demo.demo(out="runs/demo")` with the same defaults. It trains the deployed method
and a `no-delay` baseline of the same size for the same epochs (the synthetic set's classes
differ only in the order of channel groups >= 8 steps apart, which neurons with tau = 2 steps
cannot bridge without delays), prints both test accuracies side by side, then exports the
deployed network, runs it in the emulator and Lava and budgets it. It ends by printing the next
commands (report, budget, training on real FSDD audio) with paths that work.
Everything it writes lands in OUT: `train/` (run folder: checkpoint.pt, metrics.json),
`baseline/` (the no-delay run folder), `net.h5` (the deployed network), `export.json`,
`run.json`, `budget.json`, `budget.png` and `summary.json`; `--json FILE` also writes the summary
(accuracies, seconds, load average) to FILE, e.g. docs/results/demo.json.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from trainer.file_io import write_json_atomic

DEFAULTS: dict[str, Any] = {
    "method": "structure",  # delays by structure: frozen random delays, DEEP R + RigL rewiring
    "sparsity": 0.75,  # 3 of 4 candidate synapses absent: DelaySparse layers
    "epochs": 12,  # for the deployed method and the no-delay baseline alike
    "seed": 0,
    "hidden": 128,  # hidden LIF neurons
    "tau": 2.0,  # membrane time constant (steps) of every neuron: forgets within a few steps
    "num_threads": 1,  # torch CPU threads for training: one suits this tiny network (torch's
    # default, one per core, oversubscribes a shared machine) and fixes the float summation order
    "profile": "loihi2",
}
BASELINE = "no-delay"
SUMMARY = "summary.json"


def _prepare(out: Path) -> None:
    """OUT must be new, empty, or an earlier demo's output (which is replaced)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; choose another path")
    if out.is_dir() and any(out.iterdir()):
        if not (out / SUMMARY).is_file() and not (out / "train").is_dir():
            raise ValueError(f"--out {out} holds files that are not an earlier demo's; "
                             f"choose an empty or new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def demo(out: str | Path = "runs/demo", *, method: str = DEFAULTS["method"],
         sparsity: float = DEFAULTS["sparsity"], epochs: int = DEFAULTS["epochs"],
         seed: int = DEFAULTS["seed"], hidden: int = DEFAULTS["hidden"],
         tau: float = DEFAULTS["tau"], num_threads: int = DEFAULTS["num_threads"],
         profile: str = DEFAULTS["profile"],
         lava_limit: int | None = None, json_path: str | Path | None = None) -> dict:
    """Run the whole pipeline; return (and write OUT/summary.json) the summary.

    tau: membrane time constant (steps) of both networks; num_threads: torch CPU threads for
    training (0 = torch's default). lava_limit: samples of the test split run through Lava
    (None = all; the emulator always runs all of them). json_path: also write the summary there
    (a .json file; its folder must exist)."""
    import trainer
    from hw_profiles import load_profile
    from lava_runtime.budget.text import budget_json, plot_budgets
    from lava_runtime.budget.text import format_summary as format_budget
    from lava_runtime.pipeline import deploy
    from trainer.config import resolve_config
    from trainer.evaluate import has_train_kernels

    load_profile(profile)  # unknown profile: fail before any work
    if method == BASELINE:
        raise ValueError(f"--method {BASELINE} is the baseline the demo compares against; "
                         f"choose a method with delays (dcls, structure, structure-multi)")
    config = {"dataset": "synthetic", "method": method, "sparsity": sparsity, "epochs": epochs,
              "seed": seed, "hidden": [hidden], "tau": tau, "num_threads": num_threads}
    baseline_config = {**config, "method": BASELINE, "sparsity": 0.0}
    resolve_config(None, config, None)  # bad values: fail before any work
    if lava_limit is not None and (isinstance(lava_limit, bool) or not isinstance(lava_limit, int)
                                   or lava_limit < 1):
        raise ValueError(f"--limit must be a positive integer, got {lava_limit!r}")
    if json_path is not None:
        json_path = Path(json_path)
        if json_path.suffix != ".json" or not json_path.parent.is_dir():
            raise ValueError(f"--json {json_path} must be a .json file in an existing folder")
    out = Path(out)
    _prepare(out)
    load_1min = os.getloadavg()[0]
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    timings = {}

    print(f"[1/3] train: synthetic set, method {method}, sparsity {sparsity}, {epochs} epochs, "
          f"tau {tau} steps")
    res = trainer.train(config, out=out / "train")
    m = res.metrics
    timings["train_s"] = time.perf_counter() - t0

    print(f"[2/3] train the baseline: method {BASELINE}, same size, {epochs} epochs")
    t = time.perf_counter()
    mb = trainer.train(baseline_config, out=out / "baseline").metrics
    timings["baseline_train_s"] = time.perf_counter() - t

    print(f"[3/3] deploy: export to {profile}, emulate the test split, run it in Lava, budget")
    d = deploy(out / "train", profile, split="test", lava_limit=lava_limit,
               net_path=out / "net.h5", evaluation=None, progress=True)
    write_json_atomic(d.export_report, out / "export.json")
    write_json_atomic({"emulator": d.emulator, "lava": d.lava}, out / "run.json")
    emu, lava, b = d.emulator, d.lava, budget_json(d.budgets)
    write_json_atomic(b, out / "budget.json", indent=1)
    plot_budgets(d.budgets, out / "budget.png")
    print(format_budget(d.budgets[0]))
    assert m is not None and mb is not None and lava is not None  # full runs; Lava always runs
    timings["export_s"] = d.seconds["export"]
    net_path = out / "net.h5"

    summary = {
        "out": str(out), "method": method, "sparsity": sparsity, "epochs": epochs, "seed": seed,
        "hidden": hidden, "tau": tau, "connections": m.get("connections"),
        "baseline": {"method": BASELINE, "sparsity": 0.0, "epochs": epochs,
                     "connections": mb.get("connections"), "test_accuracy": mb["test_accuracy"]},
        "delay_gain_points": round(100 * (m["test_accuracy"] - mb["test_accuracy"]), 2),
        "accuracy": {
            # the training kernels differ from the deployed integer delays only for dcls
            "float_train_kernels": (m.get("test_accuracy_train_kernels")
                                    if has_train_kernels(config) else None),
            "float_integer_delays": m.get("test_accuracy"),
            "emulator": emu["accuracy"],
            "lava": lava["accuracy"],
            "lava_samples": lava["samples"],
            "lava_equals_emulator_fraction": lava["exact_match_fraction"],
        },
        "spikes_per_sample_per_layer": emu["spikes_per_sample_per_layer"],
        "seconds": {**timings, "emulator_s": d.seconds["emulator"], "lava_s": d.seconds["lava"],
                    "total_s": time.perf_counter() - t0},
        # CPU seconds (user + system) of this process and its finished children (the Lava
        # worker): on a busy machine, a better guide than wall time to a quiet machine's time
        "cpu_s": round(_cpu_seconds() - cpu0, 1),
        "machine": {"cpu_count": os.cpu_count(), "training_threads": num_threads,
                    "load_average_1min_at_start": round(load_1min, 2),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "budget": b,
        "next_commands": next_commands(out, net_path),
    }
    write_json_atomic(summary, out / SUMMARY)
    if json_path is not None:
        write_json_atomic(summary, json_path)
    print(format_summary(summary))
    return summary


def _cpu_seconds() -> float:
    import resource
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _python() -> str:
    """How to call this environment's Python from the current folder: `.venv/bin/python` when
    that is the running interpreter's environment, else `python`."""
    venv = Path(".venv")
    if venv.is_dir() and Path(sys.prefix).resolve() == venv.resolve():
        return ".venv/bin/python"
    return "python"


def next_commands(out: Path, net_path: Path) -> list[str]:
    """The commands a user would type next, with this demo's paths: the HTML report of the
    trained run, the budget on every profile, and training on the real FSDD recordings (the
    dense DCLS network with the front end and augmentation that won for unheard voices:
    configs/fsdd-dense-voices.toml, README "New voices")."""
    py, q = _python(), shlex.quote
    return [
        f"{py} -m lava_runtime report {q(str(out / 'train'))}",
        f"{py} -m lava_runtime budget {q(str(net_path))} --profile all",
        f"{py} -m trainer train --config configs/fsdd-dense-voices.toml --out runs/fsdd_dcls",
    ]


def format_summary(s: dict) -> str:
    a, sec = s["accuracy"], s["seconds"]

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    bl = s["baseline"]
    lines = [
        "",
        f"demo summary ({s['method']}, sparsity {s['sparsity']}, {s['epochs']} epochs, "
        f"tau {s['tau']} steps) -> {s['out']}",
        f"  what delays buy (test accuracy, same size and epochs):  {s['method']} "
        f"{pct(a['float_integer_delays'])}   {bl['method']} {pct(bl['test_accuracy'])}   "
        f"({s['delay_gain_points']:+.1f} points)",
        f"  accuracy  float (train kernels) {pct(a['float_train_kernels'])}   "
        f"float (integer delays) {pct(a['float_integer_delays'])}   "
        f"emulator {pct(a['emulator'])}   Lava {pct(a['lava'])} ({a['lava_samples']} samples)",
        f"  Lava == emulator (spikes and voltages) on {pct(a['lava_equals_emulator_fraction'])} "
        f"of samples",
        "  spikes per sample per hidden layer: "
        + ", ".join(f"{v:.1f}" for v in s["spikes_per_sample_per_layer"]),
        f"  seconds   train {sec['train_s']:.0f}   baseline {sec['baseline_train_s']:.0f}   "
        f"export {sec['export_s']:.1f}   emulator {sec['emulator_s']:.2f}   "
        f"Lava {sec['lava_s']:.1f}   total {sec['total_s']:.0f} (CPU {s['cpu_s']:.0f})",
        "",
        "next:",
        f"  {s['next_commands'][0]}   # HTML page: every stage, all budgets, receptive fields",
        f"  {s['next_commands'][1]}",
        f"  {s['next_commands'][2]}   "
        "# real audio (FSDD v1.0.10 is downloaded if no copy is found)",
    ]
    return "\n".join(lines)


def add_parser(subparsers) -> argparse.ArgumentParser:
    from delaysnn.options import HelpFormatter, add_deprecated, description

    p = subparsers.add_parser("demo", help="train -> export -> Lava -> budget on the synthetic set",
                              description=description(__doc__), formatter_class=HelpFormatter)
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="output folder, replaced when it holds an earlier demo")
    p.add_argument("--method", default=DEFAULTS["method"],
                   help="how delays are learned: dcls, structure or structure-multi")
    p.add_argument("--sparsity", type=float, default=DEFAULTS["sparsity"],
                   help="fraction of absent connections, 0 <= S < 1")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"],
                   help="training epochs of the network and of its no-delay baseline")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="training seed")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"],
                   help="hidden LIF neurons")
    p.add_argument("--tau", type=float, default=DEFAULTS["tau"],
                   help="membrane time constant in steps")
    p.add_argument("--num-threads", type=int, default=DEFAULTS["num_threads"],
                   help="torch CPU threads for training (0 = torch's default)")
    p.add_argument("--profile", default=DEFAULTS["profile"],
                   help="hardware profile the network is exported and budgeted for")
    limit = p.add_argument("--limit", type=int, default=None, dest="lava_limit", metavar="N",
                           help="test samples run through Lava (default: all; the emulator "
                                "always runs all)")
    add_deprecated(p, "--lava-limit", limit)
    p.add_argument("--json", default=None, metavar="FILE.json",
                   help="also write the summary to this file, e.g. docs/results/demo.json "
                        "(default: only OUT/summary.json)")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    demo(args.out, method=args.method, sparsity=args.sparsity, epochs=args.epochs,
         seed=args.seed, hidden=args.hidden, tau=args.tau, num_threads=args.num_threads,
         profile=args.profile, lava_limit=args.lava_limit, json_path=args.json)
    return 0
