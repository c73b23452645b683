"""Evaluate an exported network on a dataset split with one backend (`python -m lava_runtime run`).

Prints accuracy, sample count, spikes per hidden layer and seconds; `--compare BACKEND` also
runs a second backend on the same payloads and reports the fraction of samples whose outputs
(hidden spike trains and readout voltages) match exactly.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from deployed.activity import outputs_match
from deployed.validate import BACKENDS
from lava_runtime.lava_graph.lanes import check_lanes
from lava_runtime.pipeline import check_limit, check_net_path, load_features, network_dataset
from trainer.file_io import write_json_atomic


def evaluate(net, payloads: np.ndarray, labels: np.ndarray, backend: str = "lava",
             compare: str | None = None, timeout_s: float | None = None,
             fast_models: bool = True, progress: bool = True,
             lanes: int | None = None, activity_path=None) -> dict:
    """Run `net` on payloads with `backend` (and `compare`); return the report dict.
    lanes: samples per Lava step (graph.run_network; None = automatic); activity_path: save
    the backend's Activity there."""
    from lava_runtime.lava_graph.graph import run_network

    act = run_network(net, payloads, backend, timeout_s=timeout_s, fast_models=fast_models,
                      lanes=lanes, progress=progress)
    if activity_path is not None:
        act.save(activity_path)
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


def run(net_path, dataset: str | None = None, data_dir=None, split: str = "test",
        backend: str = "lava", limit: int | None = None, json_path=None,
        compare: str | None = None, timeout_s: float | None = None,
        fast_models: bool = True, lanes: int | None = None, activity_path=None) -> dict:
    """Load NET.h5 (deployed.netx_h5; or a folder holding net.h5), evaluate it and print (and
    optionally save) the report. dataset: None = the dataset the network was trained on (its
    data recipe; an error asks for one when the file records none). limit: the first N samples
    (None = all). lanes: samples per Lava step (None = automatic, lava_graph.lanes).
    activity_path: also save the backend's Activity (.npz) for `python -m lava_runtime budget
    --activity`. Every argument is checked before any work."""
    if backend not in BACKENDS or (compare is not None and compare not in BACKENDS):
        raise ValueError(f"backends are {', '.join(BACKENDS)}; got {backend!r}"
                         + (f" and {compare!r}" if compare else ""))
    check_limit(limit)
    for b in (backend, compare):
        if b is not None and b != "emulator":
            check_lanes(lanes, fast_models, b)
    for path, suffix, flag in ((json_path, ".json", "--json"),
                               (activity_path, ".npz", "--save-activity")):
        if path is not None and (Path(path).suffix != suffix or not Path(path).parent.is_dir()):
            raise ValueError(f"{flag} must be a {suffix} file in an existing folder, got {path}")
    net_path = check_net_path(net_path)
    from deployed.netx_h5 import load

    net = load(net_path)
    dataset = network_dataset(net, dataset, net_path)
    x, y = load_features(net, dataset, split, data_dir, limit)
    report = evaluate(net, net.input.encode(x), y, backend, compare, timeout_s, fast_models,
                      lanes=lanes, activity_path=activity_path)
    report.update(network=str(net_path), dataset=dataset, split=split)
    print(format_report(report))
    if json_path is not None:
        write_json_atomic(report, json_path)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("net", metavar="NET",
                   help="exported network (.h5 written by deployed.netx_h5), or a folder "
                        "holding net.h5")
    p.add_argument("--dataset", default=None,
                   help="dataset name (trainer.data; default: the one the network was trained "
                        "on, from its data recipe)")
    p.add_argument("--data-dir", default=None,
                   help="dataset folder (default: the recipe's folder for the training "
                        "dataset, else the data layer's default)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"],
                   help="dataset split")
    p.add_argument("--backend", default="lava", choices=list(BACKENDS),
                   help="lava: Lava's Loihi 2 CPU simulator (Loihi2SimCfg, fixed_pt, "
                        "bit-accurate) with this project's ProcessModels (default); lava-float: "
                        "the same in floating_pt; emulator: this project's vectorised "
                        "bit-exact emulator, no Lava; loihi2: Loihi2HwCfg with Intel's "
                        "lava-loihi. UNTESTED: never run on a chip by this project; expect to "
                        "add Lava's embedded I/O adapters between the Python source, recorders "
                        "and readout and the on-chip processes (docs/design.md, section 4)")
    p.add_argument("--compare", default=None, choices=list(BACKENDS),
                   help="also run this backend and report the exact-match fraction "
                        "(default: no comparison)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use the first N samples (default: the whole split)")
    p.add_argument("--timeout", type=float, default=None,
                   help="bound on each Lava run (s) (default: scales with the step count)")
    p.add_argument("--stock-models", action="store_true",
                   help="use Lava's stock DelayDense/DelaySparse models (slow; one lane; only "
                        "for networks whose hidden neurons cannot spike without input)")
    p.add_argument("--lanes", type=int, default=None,
                   help="samples run side by side per Lava step (default: chosen from the "
                        "network size and memory; 1 with --stock-models)")
    p.add_argument("--json", default=None, metavar="FILE.json",
                   help="write the report as JSON to this file (default: not written)")
    p.add_argument("--save-activity", default=None, metavar="FILE.npz",
                   help="save the backend's spikes and voltages for "
                        "`python -m lava_runtime budget NET --activity FILE` (default: not "
                        "saved)")


def main(args: argparse.Namespace) -> int:
    run(args.net, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
        backend=args.backend, limit=args.limit, json_path=args.json, compare=args.compare,
        timeout_s=args.timeout, fast_models=not args.stock_models, lanes=args.lanes,
        activity_path=args.save_activity)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    from delaysnn.options import HelpFormatter, description

    p = subparsers.add_parser("run", help="evaluate a network with a backend (Lava, emulator)",
                              description=description(__doc__), formatter_class=HelpFormatter)
    add_arguments(p)
    p.set_defaults(func=main)
    return p
