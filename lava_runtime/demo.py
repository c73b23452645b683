"""The main job, end to end: train -> export -> Lava run -> budget, on the embedded synthetic set.

`make demo` runs `python -m lava_runtime demo --out runs/demo`; a notebook calls
`lava_runtime.demo.demo(out="runs/demo")` with the same defaults. Everything it writes lands in
OUT: `train/` (run folder: checkpoint.pt, metrics.json), `net.h5` (the deployed network),
`export.json`, `run.json`, `budget.json`, `budget.png` and `summary.json`.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from trainer.file_io import write_json_atomic

DEFAULTS = {
    "method": "structure",  # delays by structure: frozen random delays, DEEP R + RigL rewiring
    "sparsity": 0.75,  # 3 of 4 candidate synapses absent: DelaySparse layers
    "epochs": 12,
    "seed": 0,
    "hidden": 128,  # hidden LIF neurons
    "profile": "loihi2",
}
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
         profile: str = DEFAULTS["profile"], lava_limit: int | None = None) -> dict:
    """Run the whole pipeline; return (and write OUT/summary.json) the summary.

    lava_limit: samples of the test split run through Lava (None = all; the emulator always runs
    all of them)."""
    import trainer
    from export.netx_h5 import save
    from export.to_lava import export_checkpoint
    from hw_profiles import load_profile
    from lava_runtime.budget_cli import budget_json, run_budget
    from lava_runtime.run_cli import evaluate, load_features

    load_profile(profile)  # unknown profile: fail before any work
    out = Path(out)
    _prepare(out)
    t0 = time.perf_counter()
    timings = {}

    print(f"[1/4] train: synthetic set, method {method}, sparsity {sparsity}, {epochs} epochs")
    res = trainer.train({"dataset": "synthetic", "method": method, "sparsity": sparsity,
                         "epochs": epochs, "seed": seed, "hidden": [hidden]},
                        out=out / "train")
    m = res.metrics
    timings["train_s"] = time.perf_counter() - t0

    print(f"[2/4] export to {profile}")
    t = time.perf_counter()
    net, report = export_checkpoint(out / "train", profile=profile)
    net_path = out / "net.h5"
    save(net, net_path)
    write_json_atomic(report, out / "export.json")
    timings["export_s"] = time.perf_counter() - t

    print("[3/4] run the test split: emulator, then Lava (Loihi 2 simulator, fixed_pt)")
    x, y = load_features(net, "synthetic", "test")  # the recipe stored at export
    payloads = net.input.encode(x)
    emu = evaluate(net, payloads, y, backend="emulator", progress=False)
    n_lava = len(y) if lava_limit is None else min(lava_limit, len(y))
    lava = evaluate(net, payloads[:n_lava], y[:n_lava], backend="lava", compare="emulator",
                    progress=True)
    write_json_atomic({"emulator": emu, "lava": lava}, out / "run.json")

    print(f"[4/4] budget on {profile}")
    budgets = run_budget(net_path, profile=profile, dataset="synthetic", split="test",
                         json_path=out / "budget.json", plot_path=out / "budget.png",
                         progress=False)
    b = budget_json(budgets)

    summary = {
        "out": str(out), "method": method, "sparsity": sparsity, "epochs": epochs, "seed": seed,
        "connections": m.get("connections"),
        "accuracy": {
            "float_train_kernels": m.get("test_accuracy_train_kernels"),
            "float_integer_delays": m.get("test_accuracy"),
            "emulator": emu["accuracy"],
            "lava": lava["accuracy"],
            "lava_samples": n_lava,
            "lava_equals_emulator_fraction": lava["compare"]["exact_match_fraction"],
        },
        "spikes_per_sample_per_layer": emu["spikes_per_sample_per_layer"],
        "seconds": {**timings, "emulator_s": emu["seconds"], "lava_s": lava["seconds"],
                    "total_s": time.perf_counter() - t0},
        "budget": b,
    }
    write_json_atomic(summary, out / SUMMARY)
    print(format_summary(summary))
    return summary


def format_summary(s: dict) -> str:
    a, sec = s["accuracy"], s["seconds"]

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = [
        "",
        f"demo summary ({s['method']}, sparsity {s['sparsity']}, {s['epochs']} epochs) -> {s['out']}",
        f"  accuracy  float (train kernels) {pct(a['float_train_kernels'])}   "
        f"float (integer delays) {pct(a['float_integer_delays'])}   "
        f"emulator {pct(a['emulator'])}   Lava {pct(a['lava'])} ({a['lava_samples']} samples)",
        f"  Lava == emulator (spikes and voltages) on {pct(a['lava_equals_emulator_fraction'])} "
        f"of samples",
        "  spikes per sample per hidden layer: "
        + ", ".join(f"{v:.1f}" for v in s["spikes_per_sample_per_layer"]),
        f"  seconds   train {sec['train_s']:.0f}   export {sec['export_s']:.1f}   "
        f"emulator {sec['emulator_s']:.2f}   Lava {sec['lava_s']:.1f}   total {sec['total_s']:.0f}",
    ]
    return "\n".join(lines)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="train -> export -> Lava -> budget on the synthetic set",
                              description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--method", default=DEFAULTS["method"])
    p.add_argument("--sparsity", type=float, default=DEFAULTS["sparsity"])
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"])
    p.add_argument("--profile", default=DEFAULTS["profile"])
    p.add_argument("--lava-limit", type=int, default=None,
                   help="test samples run through Lava (default: all)")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    demo(args.out, method=args.method, sparsity=args.sparsity, epochs=args.epochs,
         seed=args.seed, hidden=args.hidden, profile=args.profile, lava_limit=args.lava_limit)
    return 0
