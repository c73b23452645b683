"""Evaluate an exported network on a dataset split with one backend (`python -m lava_runtime run`).

Prints accuracy, sample count, spikes per hidden layer and seconds; `--compare BACKEND` also
runs a second backend on the same payloads and reports the fraction of samples whose outputs
(hidden spike trains and readout voltages) match exactly.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from trainer.file_io import write_json_atomic

import numpy as np

from lava_runtime.lanes import check_lanes
from deployed.validate import BACKENDS


def load_features(net, dataset: str, split: str = "test", data_dir=None,
                  limit: int | None = None):
    """(x (N, T, C) float32 numpy, y (N,) int64) for `net`: trainer.data.load_dataset with the
    feature recipe stored at export (net.meta["data_recipe"]: seed, n_mels, options...) when it
    names the same dataset; otherwise with the network's channel and step counts. Audio always
    goes through the network's own front end (recipe["frontend"]: Mel bands, frames and the
    sample rate it was trained at; other rates are resampled to it)."""
    from trainer.data import load_dataset, source_has_frontend

    recipe = net.meta.get("data_recipe") or {}
    kwargs = {"n_mels": net.input.n_channels, "time_steps": net.input.time_steps,
              "seed": int(recipe.get("seed", 0))}
    if recipe.get("frontend") and source_has_frontend(dataset):
        kwargs["frontend"] = recipe["frontend"]
    if recipe.get("dataset") == dataset:
        kwargs.update(n_mels=recipe.get("n_mels", kwargs["n_mels"]),
                      time_steps=recipe.get("time_steps", kwargs["time_steps"]),
                      **({"val_fraction": recipe["val_fraction"]} if "val_fraction" in recipe
                         else {}), **recipe.get("options", {}))
        if data_dir is None:
            data_dir = recipe.get("data_dir")
    ds = load_dataset(dataset, split, data_dir, **kwargs)
    x, y = ds.x.numpy(), ds.y.numpy()
    if x.shape[1:] != (net.input.time_steps, net.input.n_channels):
        raise ValueError(f"dataset {dataset} gives samples of shape {x.shape[1:]}, the network "
                         f"expects ({net.input.time_steps}, {net.input.n_channels})")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def outputs_match(a, b) -> np.ndarray:
    """(N,) bool: sample i has identical hidden spikes and readout voltage in both."""
    same = np.all(a.readout_v == b.readout_v, axis=(1, 2))
    for sa, sb in zip(a.spikes, b.spikes):
        same &= np.all(sa == sb, axis=(1, 2))
    return same


def evaluate(net, payloads: np.ndarray, labels: np.ndarray, backend: str = "lava",
             compare: str | None = None, timeout_s: float | None = None,
             fast_models: bool = True, progress: bool = True,
             lanes: int | None = None) -> dict:
    """Run `net` on payloads with `backend` (and `compare`); return the report dict.
    lanes: samples per Lava step (graph.run_network; None = automatic)."""
    from lava_runtime.graph import run_network

    act = run_network(net, payloads, backend, timeout_s=timeout_s, fast_models=fast_models,
                      lanes=lanes, progress=progress)
    pred = act.predictions(net)
    n = int(payloads.shape[0])
    report = {"backend": backend, "samples": n,
              "accuracy": float(np.mean(pred == labels)),
              "spikes_per_layer": act.spike_counts(),
              "spikes_per_sample_per_layer": [c / n for c in act.spike_counts()],
              "seconds": act.seconds}
    if "steps_per_second" in act.extra:
        for key in ("lanes", "steps_per_second", "samples_per_second", "lava_run_seconds",
                    "lava_startup_seconds", "total_steps"):
            report[key] = act.extra[key]
    if compare is not None:
        other = run_network(net, payloads, compare, timeout_s=timeout_s,
                            fast_models=fast_models, lanes=lanes, progress=progress)
        same = outputs_match(act, other)
        report["compare"] = {
            "backend": compare, "seconds": other.seconds,
            "accuracy": float(np.mean(other.predictions(net) == labels)),
            "exact_match_fraction": float(same.mean()),
            "prediction_agreement": float(np.mean(other.predictions(net) == pred))}
    return report


def format_report(r: dict) -> str:
    lines = [f"backend {r['backend']}: accuracy {100 * r['accuracy']:.2f}% on {r['samples']} "
             f"samples, {r['seconds']:.1f} s"]
    if "steps_per_second" in r:
        lines.append(f"  Lava: {r['lanes']} lane{'s' if r['lanes'] > 1 else ''}, "
                     f"{r['total_steps']} steps in {r['lava_run_seconds']:.1f} s "
                     f"({r['steps_per_second']:.0f} steps/s, {r['samples_per_second']:.1f} "
                     f"samples/s) after {r['lava_startup_seconds']:.1f} s start-up")
    for i, (c, s) in enumerate(zip(r["spikes_per_layer"], r["spikes_per_sample_per_layer"])):
        lines.append(f"  hidden layer {i}: {c} spikes ({s:.1f} per sample)")
    if "compare" in r:
        c = r["compare"]
        lines.append(f"compare with {c['backend']}: accuracy {100 * c['accuracy']:.2f}%, "
                     f"{c['seconds']:.1f} s; outputs identical on "
                     f"{100 * c['exact_match_fraction']:.1f}% of samples, predictions agree on "
                     f"{100 * c['prediction_agreement']:.1f}%")
    return "\n".join(lines)


def check_limit(limit) -> None:
    """--limit: None or a positive integer."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"--limit must be a positive integer, got {limit!r}")


def check_net_path(net_path) -> Path:
    """An existing exported network file."""
    net_path = Path(net_path)
    if not net_path.is_file():
        raise ValueError(f"network file {net_path} does not exist (export one with "
                         f"python -m export.to_lava)")
    return net_path


def run(net_path, dataset: str = "synthetic", data_dir=None, split: str = "test",
        backend: str = "lava", limit: int | None = None, json_path=None,
        compare: str | None = None, timeout_s: float | None = None,
        fast_models: bool = True, lanes: int | None = None) -> dict:
    """Load NET.h5 (deployed.netx_h5), evaluate it and print (and optionally save) the report.
    lanes: samples per Lava step (None = automatic, lava_runtime.lanes). Every argument is
    checked before any work."""
    if backend not in BACKENDS or (compare is not None and compare not in BACKENDS):
        raise ValueError(f"backends are {', '.join(BACKENDS)}; got {backend!r}"
                         + (f" and {compare!r}" if compare else ""))
    check_limit(limit)
    for b in (backend, compare):
        if b is not None and b != "emulator":
            check_lanes(lanes, fast_models, b)
    if json_path is not None:
        json_path = Path(json_path)
        if json_path.suffix != ".json" or not json_path.parent.is_dir():
            raise ValueError(f"--json must be a .json file in an existing folder, got "
                             f"{json_path}")
    net_path = check_net_path(net_path)
    from deployed.netx_h5 import load

    net = load(net_path)
    x, y = load_features(net, dataset, split, data_dir, limit)
    report = evaluate(net, net.input.encode(x), y, backend, compare, timeout_s, fast_models,
                      lanes=lanes)
    report.update(network=str(net_path), dataset=dataset, split=split)
    print(format_report(report))
    if json_path is not None:
        write_json_atomic(report, json_path)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", help="exported network (.h5 written by deployed.netx_h5)")
    p.add_argument("--dataset", default="synthetic", help="dataset name (trainer.data)")
    p.add_argument("--data-dir", default=None, help="dataset folder")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--backend", default="lava", choices=list(BACKENDS),
                   help="lava: Lava's Loihi 2 CPU simulator (Loihi2SimCfg, fixed_pt, "
                        "bit-accurate) with this project's ProcessModels (default); lava-float: "
                        "the same in floating_pt; emulator: this project's vectorised "
                        "bit-exact emulator, no Lava; loihi2: Loihi2HwCfg with Intel's "
                        "lava-loihi. UNTESTED: never run on a chip by this project; expect to "
                        "add Lava's embedded I/O adapters between the Python source, recorders "
                        "and readout and the on-chip processes (docs/design.md, section 4)")
    p.add_argument("--compare", default=None, choices=list(BACKENDS),
                   help="also run this backend and report the exact-match fraction")
    p.add_argument("--limit", type=int, default=None, help="use the first N samples")
    p.add_argument("--timeout", type=float, default=None,
                   help="bound on each Lava run (s); default scales with the step count")
    p.add_argument("--stock-models", action="store_true",
                   help="use Lava's stock DelayDense/DelaySparse models (slow; one lane; only "
                        "for networks whose hidden neurons cannot spike without input)")
    p.add_argument("--lanes", type=int, default=None,
                   help="samples run side by side per Lava step (default: chosen from the "
                        "network size and memory; 1 with --stock-models)")
    p.add_argument("--json", default=None, help="write the report as JSON to this file")


def main(args: argparse.Namespace) -> int:
    run(args.net, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
        backend=args.backend, limit=args.limit, json_path=args.json, compare=args.compare,
        timeout_s=args.timeout, fast_models=not args.stock_models, lanes=args.lanes)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="evaluate a network with a backend (Lava, emulator)",
                              description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=main)
    return p
