"""Evaluate an exported network on a dataset split, or on given input spikes, with one backend
(`python -m lava_runtime run`).

Prints accuracy, sample count, spikes per layer and seconds; `--compare BACKEND` also
runs a second backend on the same payloads and reports the fraction of samples whose outputs
(hidden spike trains and readout voltages) match exactly. `--spikes EVENTS.npy` (an (N, T, C)
array of input spikes, lava_runtime.pipeline.load_spikes) replaces the dataset; without
`--labels` there is no accuracy, and `--compare` reports how often the backends agree.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from deployed.activity import output_spikes_match, outputs_match
from deployed.validate import BACKENDS
from lava_runtime.lava_graph.lanes import check_lanes
from lava_runtime.pipeline import (
    check_limit,
    check_net_path,
    check_spikes_options,
    load_features,
    load_spikes,
    network_dataset,
)
from trainer.file_io import write_json_atomic


def _accuracy(pred: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float(np.mean(pred == labels))


def evaluate(net, payloads: np.ndarray, labels: np.ndarray | None, backend: str = "lava",
             compare: str | None = None, timeout_s: float | None = None,
             fast_models: bool = True, progress: bool = True,
             lanes: int | None = None, activity_path=None) -> dict:
    """Run `net` on payloads with `backend` (and `compare`); return the report dict.
    labels: (N,) class indices, or None (no accuracy: null in the report). lanes: samples per
    Lava step (graph.run_network; None = automatic); activity_path: save the backend's
    Activity there (with `output_spikes` when the output layer spikes)."""
    from lava_runtime.lava_graph.graph import run_network

    act = run_network(net, payloads, backend, timeout_s=timeout_s, fast_models=fast_models,
                      lanes=lanes, progress=progress)
    if activity_path is not None:
        act.save(activity_path, net=net)
    pred = act.predictions(net)
    n = int(payloads.shape[0])
    report: dict[str, Any] = {"backend": backend, "samples": n,
              "accuracy": _accuracy(pred, labels),
              "output": "spikes" if net.readout.neurons.spiking else "voltage",
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
            "accuracy": _accuracy(other.predictions(net), labels),
            "exact_match_fraction": float(same.mean()),
            "prediction_agreement": float(np.mean(other.predictions(net) == pred))}
        if net.readout.neurons.spiking:
            report["compare"]["output_spike_agreement"] = float(
                output_spikes_match(act, other).mean())
    return report


def _acc_text(acc: float | None) -> str:
    return "no labels" if acc is None else f"accuracy {100 * acc:.2f}%"


def format_report(r: dict) -> str:
    lines = [f"backend {r['backend']}: {_acc_text(r['accuracy'])} on {r['samples']} "
             f"samples, {r['seconds']:.1f} s"]
    if "steps_per_second" in r:
        lines.append(f"  Lava: {r['lanes']} lane{'s' if r['lanes'] > 1 else ''}, "
                     f"{r['total_steps']} steps in {r['lava_run_seconds']:.1f} s "
                     f"({r['steps_per_second']:.0f} steps/s, {r['samples_per_second']:.1f} "
                     f"samples/s) after {r['lava_startup_seconds']:.1f} s start-up")
    counts = list(zip(r["spikes_per_layer"], r["spikes_per_sample_per_layer"]))
    for i, (c, s) in enumerate(counts):
        what = "output layer" if r.get("output") == "spikes" and i == len(counts) - 1 \
            else f"hidden layer {i}"
        lines.append(f"  {what}: {c} spikes ({s:.1f} per sample)")
    if "compare" in r:
        c = r["compare"]
        lines.append(f"compare with {c['backend']}: {_acc_text(c['accuracy'])}, "
                     f"{c['seconds']:.1f} s; outputs identical on "
                     f"{100 * c['exact_match_fraction']:.1f}% of samples"
                     + (f", output spikes on {100 * c['output_spike_agreement']:.1f}%"
                        if "output_spike_agreement" in c else "")
                     + f", predictions agree on {100 * c['prediction_agreement']:.1f}%")
    return "\n".join(lines)


def run(net_path, dataset: str | None = None, data_dir=None, split: str | None = None,
        backend: str = "lava", limit: int | None = None, json_path=None,
        compare: str | None = None, timeout_s: float | None = None,
        fast_models: bool = True, lanes: int | None = None, activity_path=None,
        spikes=None, labels=None) -> dict:
    """Load NET.h5 (deployed.netx_h5; or a folder holding net.h5), evaluate it and print (and
    optionally save) the report. split: None = test. dataset: None = the dataset the network
    was trained on (its data recipe; an error asks for one when the file records none).
    limit: the first N samples (None = all). lanes: samples per Lava step (None = automatic,
    lava_graph.lanes). activity_path: also save the backend's Activity (.npz) for
    `python -m lava_runtime budget --activity`. spikes: EVENTS.npy, (N, T, C) input spikes
    instead of a dataset (not with dataset, data_dir or split; pipeline.load_spikes); labels:
    LABELS.npy for them (optional; without, the report's accuracy is null). Every argument is
    checked before any work."""
    if backend not in BACKENDS or (compare is not None and compare not in BACKENDS):
        raise ValueError(f"backends are {', '.join(BACKENDS)}; got {backend!r}"
                         + (f" and {compare!r}" if compare else ""))
    check_limit(limit)
    check_spikes_options(spikes, labels, dataset, data_dir, split)
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
    if spikes is not None:
        payloads, y = load_spikes(net, spikes, labels)
        if limit is not None:
            payloads, y = payloads[:limit], None if y is None else y[:limit]
        source = {"spikes": str(spikes), "labels": None if labels is None else str(labels)}
    else:
        dataset, split = network_dataset(net, dataset, net_path), split or "test"
        x, y = load_features(net, dataset, split, data_dir, limit)
        payloads = net.input.encode(x)
        source = {"dataset": dataset, "split": split}
    report = evaluate(net, payloads, y, backend, compare, timeout_s, fast_models,
                      lanes=lanes, activity_path=activity_path)
    report.update(network=str(net_path), **source)
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
    p.add_argument("--spikes", default=None, metavar="EVENTS.npy",
                   help="run on these input spikes instead of a dataset: an (N, T, C) array "
                        "of 0/1 spikes or graded payloads within the input's message bits, "
                        "C the network's input channels, T at most its steps per sample "
                        "(shorter samples end in silence) (default: use the dataset)")
    p.add_argument("--labels", default=None, metavar="LABELS.npy",
                   help="class index per sample of --spikes, (N,) integers (default: no "
                        "labels: no accuracy; --compare reports how often the backends agree)")
    p.add_argument("--data-dir", default=None,
                   help="dataset folder (default: the recipe's folder for the training "
                        "dataset, else the data layer's default)")
    p.add_argument("--split", default=None, choices=["train", "val", "test"],
                   help="dataset split (default: test; not with --spikes)")
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
                        "`python -m lava_runtime budget NET --activity FILE` (and, when the "
                        "output layer spikes, its spikes as output_spikes (N, steps, C_out); "
                        "docs/design.md section 4) (default: not saved)")


def main(args: argparse.Namespace) -> int:
    run(args.net, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
        backend=args.backend, limit=args.limit, json_path=args.json, compare=args.compare,
        timeout_s=args.timeout, fast_models=not args.stock_models, lanes=args.lanes,
        activity_path=args.save_activity, spikes=args.spikes, labels=args.labels)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    from delaysnn.options import HelpFormatter, description

    p = subparsers.add_parser("run", help="evaluate a network with a backend (Lava, emulator)",
                              description=description(__doc__), formatter_class=HelpFormatter)
    add_arguments(p)
    p.set_defaults(func=main)
    return p
