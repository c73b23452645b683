"""A trained network from config to Loihi 2 budget in one command: train -> (optional
quantization-aware fine-tuning) -> export -> Lava run of the whole test split (compared with
the emulator) -> budget, with one JSON of every figure.

    python -m experiments.showcase --config configs/fsdd-sparse.toml --out runs/showcase \
        --json docs/results/showcase.json

is a thin layer over :func:`showcase`, which calls ``trainer.train`` (``python -m trainer train
--config CONFIG --out OUT/train``; resumed when interrupted), ``export.qat.finetune`` when
``--qat-epochs`` > 0 (``python -m export.qat``) and ``lava_runtime.pipeline.deploy`` (export,
emulator, Lava on the whole test split compared with the emulator, budget).
Accuracies in the JSON are fractions of the test split; energies are the loihi2 profile's
estimates per sample (dynamic; static apart, see hw_profiles/loihi2.toml for the proxies).
The export holds a fidelity bound (``--max-loss``, default 0.5 points of float minus
fixed-point accuracy on the validation split, export.fidelity; ``none`` switches it off); the
JSON records emulator_val_accuracy, fixed_point_loss_val (points), qat_epochs (fine-tuning
epochs in the deployed weights: the best of ``--qat-epochs`` plus the bound's own),
synapses_zeroed (per layer) and max_loss_bound.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from export.fidelity import DEFAULT_MAX_LOSS, FIDELITY_KEYS, check_bound_options, parse_max_loss
from trainer.file_io import read_json_file, write_json_atomic


def _recurrent_summary(layers: list[dict], budget: dict) -> dict:
    """Keys of a network with recurrent layers (none for a feed-forward one): its recurrent
    synapses (part of "synapses"), their largest delay (steps) and their synaptic operations
    per sample (part of "synops_per_sample")."""
    rec = [L["recurrent"] for L in layers if "recurrent" in L]
    if not rec:
        return {}
    return {"recurrent_synapses": sum(r["synapses"] for r in rec),
            "recurrent_max_delay": max(r["delay"]["max"] for r in rec),
            "recurrent_synops_per_sample": budget.get("recurrent_synops_per_sample")}


def showcase(config: str | Path, out: str | Path, *, qat_epochs: int = 0, qat_lr: float = 3e-4,
             profile: str = "loihi2", json_path: str | Path | None = None,
             max_loss: float | None = DEFAULT_MAX_LOSS, progress: bool = True) -> dict:
    """Run the pipeline for CONFIG into OUT; return (and write) the summary dict."""
    import trainer
    from lava_runtime.budget.text import budget_json
    from lava_runtime.pipeline import deploy

    config, out = Path(config), Path(out)
    if not config.is_file():
        raise ValueError(f"config file {config} does not exist")
    if json_path is not None and not Path(json_path).parent.is_dir():
        raise ValueError(f"--json: folder {Path(json_path).parent} does not exist")
    if qat_epochs < 0:
        raise ValueError(f"--qat-epochs must be >= 0, got {qat_epochs}")
    check_bound_options(max_loss, 0)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run_dir = out / "train"
    if (run_dir / "metrics.json").is_file():
        metrics = read_json_file(run_dir / "metrics.json")
    else:
        metrics = trainer.train(config, out=run_dir, resume=(run_dir / "last.pt").is_file(),
                                progress=progress).metrics
    deployed_from = run_dir
    qat = None
    if qat_epochs > 0:
        from export.qat import finetune
        qat = finetune(run_dir, out / "qat", epochs=qat_epochs, lr=qat_lr, profile=profile,
                       progress=progress)
        deployed_from = out / "qat"
    d = deploy(deployed_from, profile, split="test", lava_limit=None, net_path=out / "net.h5",
               evaluation=None, eval_split="test", max_loss=max_loss, progress=progress)
    export_report, lava = d.export_report, d.lava
    assert lava is not None  # lava_limit=None: Lava runs the whole split
    write_json_atomic({"emulator": d.emulator, "lava": lava}, out / "run.json")
    write_json_atomic(budget_json(d.budgets), out / "budget.json", indent=1)
    b = d.budgets[0].to_json()
    dataset = metrics["dataset"]
    layers = export_report["layers"]
    summary = {
        "config": str(config), "dataset": dataset, "profile": profile,
        "method": metrics.get("method"), "sparsity": metrics.get("sparsity"),
        "epochs": metrics.get("epochs"), "train_seconds": metrics.get("seconds"),
        "lif_kernel": metrics.get("lif_kernel"),
        "qat": None if qat is None else {k: qat[k] for k in
                                         ("epochs", "lr", "best_epoch", "val_fixed_point")},
        "val_accuracy": metrics.get("val_accuracy"),
        "test_accuracy_float": export_report["accuracy"]["float"],
        "test_accuracy_float_as_trained": metrics.get("test_accuracy"),
        "emulator_accuracy": export_report["accuracy"]["quantized"],
        "lava_accuracy": lava["accuracy"],
        "lava_equals_emulator_fraction": lava["exact_match_fraction"],
        "n_test": lava["samples"],
        **{k: export_report[k] for k in FIDELITY_KEYS},
        "qat_epochs": (0 if qat is None else int(qat["best_epoch"])) + export_report["qat_epochs"],
        # every deployed synapse, recurrent ones included (the count the budget charges)
        "synapses": sum(L["synapses"] + L.get("recurrent", {}).get("synapses", 0)
                        for L in layers),
        **_recurrent_summary(layers, b),
        "hidden_neurons": sum(L["n_out"] for L in layers[:-1]),
        "steps_per_sample": b.get("steps"),
        "synops_per_sample": b.get("synops_per_sample"),
        "energy_per_sample_joules": b["energy_per_sample_joules"]["total"],
        "energy_breakdown_joules": b["energy_per_sample_joules"]["breakdown"],
        "static_energy_per_sample_joules": b.get("static_energy_per_sample_joules"),
        "lava_seconds": d.seconds["lava"],
        "seconds": time.perf_counter() - t0,
        "command": f"python -m experiments.showcase --config {config.as_posix()} --out RUN"
                   + (f" --qat-epochs {qat_epochs}" if qat_epochs else ""),
    }
    write_json_atomic(summary, out / "showcase.json")
    if json_path is not None:
        write_json_atomic(summary, Path(json_path))
    return summary


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m experiments.showcase", __doc__)
    ap.add_argument("--config", required=True,
                    help="trainer config, e.g. configs/fsdd-sparse.toml; required, no default")
    ap.add_argument("--out", required=True, metavar="DIR",
                    help="output folder (train/, qat/, net.h5, JSONs); required, no default")
    ap.add_argument("--qat-epochs", type=int, default=0,
                    help="quantization-aware fine-tuning epochs (export.qat); 0 = none")
    ap.add_argument("--qat-lr", type=float, default=3e-4,
                    help="Adam learning rate of the fine-tuning")
    ap.add_argument("--profile", default="loihi2",
                    help="hardware profile the network is exported and budgeted for")
    ap.add_argument("--json", default=None, metavar="FILE.json",
                    help="also write the summary here (default: only OUT/showcase.json)")
    ap.add_argument("--max-loss", type=parse_max_loss, default=DEFAULT_MAX_LOSS,
                    metavar="POINTS",
                    help="fidelity bound of the export: float minus fixed-point accuracy on "
                         f"the validation split, points; 'none' = no bound "
                         f"(default: {DEFAULT_MAX_LOSS})")
    ap.add_argument("--no-progress", dest="progress", action="store_false",
                    help="no progress bars (default: shown)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        s = showcase(a.config, a.out, qat_epochs=a.qat_epochs, qat_lr=a.qat_lr,
                     profile=a.profile, json_path=a.json, max_loss=a.max_loss,
                     progress=a.progress)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.out}: {s['synapses']} synapses, float {s['test_accuracy_float']:.2%}, emulator "
          f"{s['emulator_accuracy']:.2%}, Lava {s['lava_accuracy']:.2%} (identical to the "
          f"emulator on {s['lava_equals_emulator_fraction']:.0%} of samples), "
          f"{s['energy_per_sample_joules'] * 1e6:.2f} uJ dynamic per sample ({s['profile']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
