"""One sweep point, end to end, where it runs (a Ray worker, or any process): train (or
continue) its run, export the best-validation checkpoint to Lava for loihi2, run the test split
through the bit-exact emulator, estimate the loihi2 budget, measure E/I clustering trained and
at initialisation, and return the point's record (the small JSON the sweep commits). The export
holds lava_runtime.pipeline.deploy's fidelity bound (export.fidelity.DEFAULT_MAX_LOSS points on
the validation split). A point that cannot be brought within it is still recorded, with the
best network found (allow_loss) and `within_max_loss_bound` false, so the sweep keeps its
training; the record copies the bound's keys: emulator_val_accuracy, fixed_point_loss_val
(float minus fixed point, points), qat_epochs, synapses_zeroed (per layer) and max_loss_bound.

The run folder ``RUNS/{point name}/`` holds the trainer's files (checkpoint.pt,
checkpoint_init.pt, last.pt, metrics.json, config.json), ``net.h5`` and ``trial.log`` (the
trial's stdout and stderr, tracebacks included). A folder with metrics.json is not trained
again; one with last.pt but no metrics.json is continued (``trainer.train(resume=True)``).
Nothing here imports Ray or Lava.
"""
from __future__ import annotations

import contextlib
import json
import platform
import socket
import time
import traceback
from pathlib import Path

POINT_FORMAT = "delaysnn-sweep-point"
POINT_VERSION = 1
PROFILE = "loihi2"
LOG = "trial.log"
NET = "net.h5"
BUDGET_KEYS = ("profile", "profile_version", "n_samples", "steps", "synops_per_sample",
               "dense_synops_per_sample", "neuron_updates_per_sample", "spikes_per_sample",
               "memory_bytes", "messages_per_sample", "cores", "chips",
               "energy_per_sample_joules", "time_per_step_seconds", "refused", "layers")


def load_record(path: Path) -> dict:
    """A point JSON (ValueError naming the file when unreadable or of another format)."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable JSON file ({e}); delete it to run that "
                         "point again") from None
    if not isinstance(rec, dict) or rec.get("format") != POINT_FORMAT:
        raise ValueError(f"{path} is not a sweep point file (format {POINT_FORMAT}); move it "
                         "out of the results folder")
    return rec


def run_state(run_dir: Path) -> str:
    """'complete' (metrics.json), 'partial' (config.json, last.pt or checkpoint.pt) or 'new'."""
    from trainer.checkpoint import CHECKPOINT, CONFIG, LAST, METRICS

    if (run_dir / METRICS).is_file():
        return "complete"
    if any((run_dir / f).exists() for f in (CONFIG, LAST, CHECKPOINT)):
        return "partial"
    return "new"


def ei_statistics(checkpoint: Path) -> list[dict]:
    """Per layer: trainer.analysis.ei_clustering.sign_clustering (k, shuffles and seed at
    their defaults) of one checkpoint, as JSON dicts with the layer name."""
    from trainer.analysis.ei_clustering import sign_clustering
    from trainer.checkpoint import load_checkpoint

    view = load_checkpoint(checkpoint)
    return [{"layer": layer.name, **sign_clustering(layer).to_json()} for layer in view.layers]


def unbounded_test_accuracy(run_dir: Path, profile: str, report: dict,
                            bounded_accuracy: float) -> dict:
    """The network as exported without the bound (export.fidelity step 0), on the test split:
    {"emulator_accuracy_as_exported", "fixed_point_loss_val_as_exported"} (fraction, points),
    so a point records the gap before and after the bound on the same checkpoint. When the
    bound changed nothing, the deployed network is that one and its accuracy is reused."""
    fid = report["fidelity"]
    loss_val = float(fid["tried"][0]["loss_points"])
    if not fid["changes_network"]:
        return {"emulator_accuracy_as_exported": bounded_accuracy,
                "fixed_point_loss_val_as_exported": loss_val}
    from export.build_network import _recipe_data, evaluate
    from export.to_lava import export_checkpoint
    from trainer.checkpoint import CHECKPOINT, load_checkpoint

    ck = load_checkpoint(run_dir / CHECKPOINT)
    net, _ = export_checkpoint(run_dir, profile, evaluation=False)
    x, y = _recipe_data(ck, "test")
    acc = evaluate(ck, net, x, y, "test split")["quantized"]
    return {"emulator_accuracy_as_exported": float(acc),
            "fixed_point_loss_val_as_exported": loss_val}


def evaluate_point(run_dir: Path, profile: str = PROFILE) -> dict:
    """Export, emulate, budget and analyse a complete run; the measured part of a record."""
    from export.fidelity import FIDELITY_KEYS
    from lava_runtime.pipeline import deploy
    from trainer.checkpoint import CHECKPOINT, INIT_CHECKPOINT, METRICS
    from trainer.file_io import sha256_file

    t0 = time.perf_counter()
    metrics = json.loads((run_dir / METRICS).read_text())
    d = deploy(run_dir, profile, split="test", net_path=run_dir / NET, allow_loss=True)
    budget = d.budgets[0].to_json()
    report = dict(d.export_report)
    report["checkpoint"] = {k: v for k, v in report["checkpoint"].items() if k != "path"}
    as_exported = unbounded_test_accuracy(run_dir, profile, report, d.emulator["accuracy"])
    trained = ei_statistics(run_dir / CHECKPOINT)
    init = (ei_statistics(run_dir / INIT_CHECKPOINT)
            if (run_dir / INIT_CHECKPOINT).is_file() else None)
    return {
        "best_epoch": int(metrics["best_epoch"]),
        "val_accuracy": float(metrics["val_accuracy"]),
        "val_accuracy_history": [float(h["val_accuracy"]) for h in metrics["history"]],
        "test_accuracy": float(metrics["test_accuracy"]),
        "test_accuracy_train_kernels": float(metrics["test_accuracy_train_kernels"]),
        "emulator_accuracy": d.emulator["accuracy"],
        "n_test": d.emulator["samples"],
        **{k: report[k] for k in FIDELITY_KEYS},
        "within_max_loss_bound": report["fidelity"]["within_bound"],
        **as_exported,
        "synapses_per_layer": [int(c) for c in metrics["connections"]],
        "synapses": int(sum(metrics["connections"])
                        + sum(metrics.get("recurrent_connections", []))),
        "synops_per_sample": float(budget["synops_per_sample"]),
        "energy_per_sample_joules": (None if budget["energy_per_sample_joules"] is None
                                     else float(budget["energy_per_sample_joules"]["total"])),
        "ei_z": {s["layer"]: s["z"] for s in trained},
        "ei_z_init": None if init is None else {s["layer"]: s["z"] for s in init},
        "analysis": {"trained": trained, "init": init},
        "export": report,
        "budget": {k: budget[k] for k in BUDGET_KEYS},
        "checkpoint_sha256": sha256_file(run_dir / CHECKPOINT),
        "train_seconds": float(metrics["seconds"]),
        # what the hidden LIFs ran (trainer.lif_kernel); runs made before it was recorded: None
        "lif_kernel": metrics.get("lif_kernel"),
        **({"recurrent_synapses_per_layer": [int(c) for c in metrics["recurrent_connections"]]}
           if "recurrent_connections" in metrics else {}),
        "evaluate_seconds": time.perf_counter() - t0,
    }


def run_point(point: dict, runs: str, threads: int = 1, meta: dict | None = None) -> dict:
    """Train (unless complete) and evaluate one point in ``runs/{point name}``; everything it
    prints goes to that folder's trial.log. Never raises for a failing point: returns
    {"name", "status": "ok" | "failed", "record" (ok) | "error" (failed: last line of the
    traceback), "log", "host", "seconds"}. ``meta`` (e.g. the code's git commit) is copied into
    the record."""
    import torch

    import trainer
    from trainer.config import identity

    t0 = time.perf_counter()
    run_dir = Path(runs) / point["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / LOG
    out = {"name": point["name"], "log": str(log), "host": socket.gethostname()}
    before = torch.get_num_threads()
    with open(log, "a", buffering=1) as f, contextlib.redirect_stdout(f), \
            contextlib.redirect_stderr(f):
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} point {point['name']} on "
              f"{out['host']}, {threads} thread(s)")
        try:
            torch.set_num_threads(max(1, int(threads)))
            state = run_state(run_dir)
            if state != "complete":
                res = trainer.train(dict(point["overrides"]), out=run_dir,
                                    resume=state == "partial", progress=False)
                if not res.completed:
                    raise RuntimeError("training stopped before its last epoch")
            measured = evaluate_point(run_dir)
        except Exception as e:  # noqa: BLE001 - every failure is reported with its log
            traceback.print_exc()
            msg = f"{type(e).__name__}: {e}".splitlines()[0]
            return {**out, "status": "failed", "error": msg,
                    "seconds": time.perf_counter() - t0}
        finally:
            torch.set_num_threads(before)
        print(f"--- done: test {measured['test_accuracy']:.2%}, emulator "
              f"{measured['emulator_accuracy']:.2%}")
    cfg = point["config"]
    record = {
        "format": POINT_FORMAT, "version": POINT_VERSION, "name": point["name"],
        "group": point["group"], "method": point["method"], "sparsity": point["sparsity"],
        "nominal_sparsity": point["nominal_sparsity"], "matched": point["matched"],
        "seed": point["seed"], "epochs": int(cfg["epochs"]), "dataset": cfg["dataset"],
        "profile": PROFILE, "resumed": state == "partial",
        **measured,
        **({"recurrent": True,
            "recurrent_synapses_per_layer": measured.pop("recurrent_synapses_per_layer")}
           if cfg.get("recurrent") else {}),
        "config": identity(cfg),
        "machine": f"{platform.machine()}, Python {platform.python_version()}, torch "
                   f"{torch.__version__}, {threads} thread(s)",
        "device": cfg["device"], **(meta or {}),
    }
    return {**out, "status": "ok", "record": record, "seconds": time.perf_counter() - t0}
