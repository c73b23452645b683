"""Bring your lava-dl network, measured: a SLAYER network trained on a spike task, written by
lava-dl's export_hdf5, converted by export.from_netx, then run by this project's emulator, this
project's Lava graph and lava-dl's own netx.hdf5.Network in Lava on the same input spikes.

    OMP_NUM_THREADS=1 python -m experiments.lava_dl_example --out runs/lava_dl_example \
        --json docs/results/lava_dl_example.json

Task: the synthetic timing task (trainer.data "synthetic": classes differ only in the order in
which channel groups fire) turned into binary spikes, spike = feature >= `threshold`; train and
test splits from the data layer. Network (lava_runtime.lava_graph.slayer_train): SLAYER CUBA
Dense(C -> hidden, one learnable axonal delay per hidden neuron) -> Dense(hidden -> classes),
spiking output, trained `epochs` epochs of Adam on CPU. Then, on the first `samples` test
samples, with the commands a user runs (the same Python functions):
    python -m export.from_netx OUT/net.net --time-steps T --out OUT/net.h5 --json ...
    python -m lava_runtime run OUT/net.h5 --spikes OUT/events.npy --labels OUT/labels.npy \
        --backend emulator --compare lava --save-activity OUT/activity.npz
    python -m lava_runtime budget OUT/net.h5 --spikes OUT/events.npy --profile loihi2
    python -m lava_runtime report OUT/net.h5 --spikes OUT/events.npy --labels OUT/labels.npy
and lava-dl's netx in Lava (lava_runtime.lava_graph.netx_reference: a fresh netx network per
sample, Lava's stock models) for the same window of T + latency steps. Recorded: accuracy per
backend (SLAYER's float simulation too), spike agreement (fraction of samples whose output
spikes, and whose spikes in every layer, are identical to the emulator's), the loihi2 budget
(synaptic operations, energy), and wall seconds of each backend on the same samples. Seeded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULTS: dict[str, Any] = {
    "classes": 4, "channels": 16, "time_steps": 40, "hidden": 24, "epochs": 30, "n_train": 400,
    "n_test": 100, "threshold": 0.03, "max_init_delay": 10, "seed": 0, "samples": 100,
    "profile": "loihi2"}


def spike_task(classes: int, channels: int, time_steps: int, n_train: int, n_test: int,
               threshold: float, seed: int):
    """(x_train, y_train, x_test, y_test): the synthetic task's features thresholded into 0/1
    spikes (uint8 (N, T, C)), labels int64 (N,)."""
    from trainer.data import load_dataset

    opts: dict[str, Any] = {"n_classes": classes, "n_train": n_train, "n_test": n_test,
                            "data_seed": seed}
    out = []
    for split in ("train", "test"):
        ds = load_dataset("synthetic", split, n_mels=channels, time_steps=time_steps, seed=seed,
                          **opts)
        out += [(ds.x.numpy() >= threshold).astype(np.uint8), ds.y.numpy().astype(np.int64)]
    return tuple(out)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def example(out, json_path=None, *, classes: int = DEFAULTS["classes"],
            channels: int = DEFAULTS["channels"], time_steps: int = DEFAULTS["time_steps"],
            hidden: int = DEFAULTS["hidden"], epochs: int = DEFAULTS["epochs"],
            n_train: int = DEFAULTS["n_train"], n_test: int = DEFAULTS["n_test"],
            threshold: float = DEFAULTS["threshold"],
            max_init_delay: int = DEFAULTS["max_init_delay"], seed: int = DEFAULTS["seed"],
            samples: int = DEFAULTS["samples"], profile: str = DEFAULTS["profile"],
            command: str = "") -> dict:
    """Train, export, convert, run on every backend and budget (module docstring); write the
    files under `out` (a folder, created) and the record to `json_path`; return the record."""
    from deployed.activity import Activity
    from deployed.netx_h5 import load
    from export import from_netx
    from lava_runtime.budget.cli import run_budget
    from lava_runtime.lava_graph import slayer_train
    from lava_runtime.lava_graph.netx_reference import run_netx
    from lava_runtime.report.spikes import make_spikes_report
    from lava_runtime.run_cli import run
    from trainer.file_io import write_json_atomic

    load_before = os.getloadavg()[0]
    out = Path(out)
    if json_path is not None and not Path(json_path).parent.is_dir():
        raise ValueError(f"--json {json_path}: folder {Path(json_path).parent} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr, x_te, y_te = spike_task(classes, channels, time_steps, n_train, n_test,
                                        threshold, seed)
    x_te, y_te = x_te[:samples], y_te[:samples]
    events, labels = out / "events.npy", out / "labels.npy"
    np.save(events, x_te)
    np.save(labels, y_te)

    print(f"1. SLAYER: train {len(y_tr)} samples, {epochs} epochs (CPU)", flush=True)
    model = slayer_train.SlayerClassifier(channels, hidden, classes, max_init_delay, seed)
    history = slayer_train.train(model, x_tr, y_tr, epochs=epochs, seed=seed)
    float_acc = float(np.mean(slayer_train.predict(model, x_te) == y_te))
    netx_file, net_h5 = out / "net.net", out / "net.h5"
    model.export_hdf5(netx_file)

    print("2. python -m export.from_netx", flush=True)
    argv = [str(netx_file), "--time-steps", str(time_steps), "--out", str(net_h5), "--profile",
            profile, "--json", str(out / "import.json")]
    if from_netx.main(argv) != 0:
        raise RuntimeError("export.from_netx refused the network lava-dl wrote (see above)")
    net = load(net_h5)
    steps = time_steps + net.latency

    print(f"3. python -m lava_runtime run --spikes: emulator and Lava, {len(y_te)} samples",
          flush=True)
    activity = out / "activity.npz"
    rep = run(net_h5, spikes=events, labels=labels, backend="emulator", compare="lava",
              activity_path=activity, json_path=out / "run.json")
    emu = Activity.load(activity)

    print(f"4. lava-dl netx in Lava: {len(y_te)} samples, one fresh network each", flush=True)
    nx = run_netx(netx_file, x_te.astype(np.int64), steps, 0, progress=True)
    nx_pred = nx.spikes[-1].sum(axis=1).argmax(axis=1)  # as Activity.predictions
    same_out = np.all(nx.spikes[-1] == emu.spikes[-1], axis=(1, 2))
    same_all = same_out.copy()
    for a, b in zip(nx.spikes, emu.spikes):
        same_all &= np.all(a == b, axis=(1, 2))

    print(f"5. python -m lava_runtime budget --spikes --profile {profile}", flush=True)
    bud = run_budget(net_h5, profile=profile, spikes=events, json_path=out / "budget.json",
                     progress=False)[0]
    make_spikes_report(net_h5, events, labels, lava_limit=0, profile_set=profile,
                       progress=False)

    imp = json.loads((out / "import.json").read_text())
    record = {
        "format": "delaysnn-lava-dl-example", "version": 1, "command": command,
        "git_commit": _git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, OMP_NUM_THREADS "
                   f"{os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "load_avg_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "task": {"dataset": "synthetic", "classes": classes, "channels": channels,
                 "time_steps": time_steps, "threshold": threshold, "n_train": len(y_tr),
                 "samples": len(y_te), "seed": seed,
                 "input_spikes_per_sample": float(x_te.sum() / len(x_te))},
        "training": {"framework": "lava-dl SLAYER (CPU)", "epochs": epochs, "hidden": hidden,
                     "max_init_delay": max_init_delay,
                     "train_accuracy_last_epoch": history[-1]["train_accuracy"],
                     "seconds": sum(h["seconds"] for h in history)},
        "network": {"layers": [{k: L[k] for k in ("n_in", "n_out", "synapses", "max_delay",
                                                  "delay_layout", "num_weight_bits")}
                               for L in imp["layers"]],
                    "latency_steps": net.latency, "window_steps": steps,
                    "output": imp["output"], "warnings": imp["warnings"]},
        "accuracy": {"slayer_float": float_acc, "emulator": rep["accuracy"],
                     "lava": rep["compare"]["accuracy"],
                     "netx_lava": float(np.mean(nx_pred == y_te))},
        "agreement": {
            "netx_vs_emulator_output_spikes": float(same_out.mean()),
            "netx_vs_emulator_every_layer": float(same_all.mean()),
            "lava_vs_emulator_output_spikes": rep["compare"]["output_spike_agreement"],
            "lava_vs_emulator_exact": rep["compare"]["exact_match_fraction"],
            "definition": "fraction of samples whose spikes are identical on every step of the "
                          "window (output layer; every layer; 'exact': spikes and voltages)"},
        "budget": {"profile": bud.profile, "fits": not bud.refused,
                   "synops_per_sample": bud.synops_per_sample,
                   "spikes_per_sample": bud.spikes_per_sample,
                   "energy_per_sample_joules": bud.energy_total,
                   "static_energy_per_sample_joules": bud.static_energy_per_sample_joules,
                   "cores": bud.cores},
        "seconds": {"samples": len(y_te), "emulator": rep["seconds"],
                    "lava": rep["compare"]["seconds"], "netx_lava": nx.seconds,
                    "netx_lava_build_and_first_step": nx.startup_seconds,
                    "netx_lava_other_steps": nx.run_seconds},
    }
    if json_path is not None:
        write_json_atomic(record, Path(json_path), indent=1, sort_keys=True)
    return record


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    p = new_parser("python -m experiments.lava_dl_example", __doc__)
    p.add_argument("--out", default="runs/lava_dl_example", metavar="DIR",
                   help="folder for the lava-dl file, the converted network, the input spikes, "
                        "the activity, the budget and the report")
    p.add_argument("--json", default=None, metavar="FILE.json",
                   help="write the record here (default: not written)")
    for key, kind, what in (("classes", int, "classes of the synthetic task"),
                            ("channels", int, "input channels"),
                            ("time_steps", int, "steps per sample"),
                            ("hidden", int, "hidden neurons"),
                            ("epochs", int, "SLAYER training epochs"),
                            ("n_train", int, "training samples (validation carved out)"),
                            ("n_test", int, "test samples generated"),
                            ("threshold", float, "feature value at or above which a spike is "
                                                 "sent"),
                            ("max_init_delay", int, "initial axonal delays drawn in 0..this "
                                                    "(steps)"),
                            ("seed", int, "seed of data, initialisation and training"),
                            ("samples", int, "first test samples run on every backend"),
                            ("profile", str, "hardware profile of the conversion and budget")):
        p.add_argument("--" + key.replace("_", "-"), type=kind, default=DEFAULTS[key], help=what)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        r = example(a.out, a.json, classes=a.classes, channels=a.channels,
                    time_steps=a.time_steps, hidden=a.hidden, epochs=a.epochs,
                    n_train=a.n_train, n_test=a.n_test, threshold=a.threshold,
                    max_init_delay=a.max_init_delay, seed=a.seed, samples=a.samples,
                    profile=a.profile,
                    command="python -m experiments.lava_dl_example " + shlex.join(argv))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    acc, s = r["accuracy"], r["seconds"]
    print(f"accuracy: SLAYER float {acc['slayer_float']:.3f}, emulator {acc['emulator']:.3f}, "
          f"Lava {acc['lava']:.3f}, netx in Lava {acc['netx_lava']:.3f}; output spikes equal "
          f"to netx on {100 * r['agreement']['netx_vs_emulator_output_spikes']:.1f}% of "
          f"samples; emulator {s['emulator']:.2f} s, netx in Lava {s['netx_lava']:.1f} s; "
          f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
