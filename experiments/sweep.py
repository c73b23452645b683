"""Sweep: train every (method, sparsity, seed), export each best checkpoint to Lava (loihi2),
evaluate it with the bit-exact emulator, and tabulate and plot accuracy against connections.

    python -m experiments.sweep --out runs/sweep [--dataset fsdd] [--data-dir DIR]
        [--methods dcls structure structure-multi no-delay] [--sparsities 0 0.5 ...]
        [--seeds 0 1 2] [--epochs N] [--jobs J] [--device auto|cpu|cuda] [--set key=value ...]
        [--stage train|evaluate|summarize|all] [--docs docs/results.md]

is a thin layer over :func:`sweep` (same defaults). Layout of OUT:

- ``runs/{method}_s{sparsity}_seed{seed}/``: one trainer RUN_DIR per run (checkpoint.pt,
  last.pt, metrics.json, config.json) plus ``net.h5`` (the loihi2 export), ``sweep.lock``
  (held while the run trains) and, with --jobs > 1, the worker's ``sweep_spec.json`` and
  ``sweep_stderr.log``. A run with metrics.json is complete and skipped; a partial one is
  continued from last.pt (``resume=True``), so killing and restarting the sweep resumes where
  it stopped (at the last finished epoch; workers end with the sweep). A RUN_DIR holding
  another config (other epochs, other --set values) is an error before any work.
- ``results.json``: one entry per evaluated run (written atomically after each run; a run whose
  checkpoint is unchanged since its entry is not evaluated again).
- ``results.md``, ``accuracy_vs_connections.png``: mean and spread over seeds per
  (method, sparsity); ``sweep_log.json``: every invocation's command, stage, machine and seconds.

Stages ``train`` and ``evaluate`` import nothing from Lava (the emulator is plain numpy), so
they run on a machine without lava-nc; they do import ``trainer.data``, whose audio reader
imports soundfile at module level (trainer/data/audio_io.py). Summarize needs matplotlib (Agg).

Default epochs (DEFAULT_EPOCHS = 12), sized so that one seed of the 28 FSDD runs (4 methods x
7 sparsities; defaults.toml otherwise: 40 -> 256 -> 10, K = 25, 2430 training samples) takes
about two hours on this 2-core CPU machine. The timings below were measured when defaults.toml
had batch 64 (38 steps per epoch); the default is now batch 32 (76 smaller steps per epoch) and
has not been re-timed, so treat the hours as approximate. Measured with
``nice -n 5 python -m experiments.time_epochs`` (one epoch per run, sparsity 0 and 0.9) while
other jobs shared the 2 cores (1-minute load average 5.0-5.9), so wall seconds overstate an
idle machine; per epoch, trainer seconds (wall, loaded) -> CPU seconds of the process:

    method            s = 0            s = 0.9
    dcls              39.7 -> 27.4     50.2 -> 35.5
    structure         26.8 -> 18.3     23.9 -> 20.3
    structure-multi   26.3 -> 17.7     30.4 -> 20.2
    no-delay           8.2 ->  6.7      8.0 ->  7.7     mean CPU 19.2 s per epoch

(a 40-epoch dense dcls FSDD run with these defaults, on the same loaded machine, averaged 22 s
per epoch, i.e. about 13.5 s for the mean method at the ratios above). With CPU seconds as
wall seconds (an upper bound when torch uses both cores) plus 2 s validation per epoch, 10 s
per run for data, checkpoints and the test evaluation, and 2 s per run for the evaluate stage
(measured: export + emulator on 300 test samples + budget, 1.7-1.9 s):
28 x (12 x (19.2 + 2) + 10 + 2) s = 7460 s = 2.1 h (upper bound); at 13.5 s per epoch,
28 x (12 x 15.5 + 12) s = 5540 s = 1.5 h. ``estimate_hours()`` repeats this arithmetic.
The trainer's own default (40 epochs, batch 32) reached 97.67% test on dense dcls (README); 12
epochs is what two hours allow here. On a GPU, pass ``--epochs 40`` (and ``--seeds 0 1 2``)
where time allows.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from trainer.file_io import (read_json_file, sha256_file, write_bytes_atomic,
                             write_json_atomic)

METHODS = ("dcls", "structure", "structure-multi", "no-delay")
SPARSITIES = (0.0, 0.5, 0.75, 0.875, 0.9375, 0.96875, 0.984375)
DEFAULT_EPOCHS = 12
STAGES = ("train", "evaluate", "summarize", "all")
PROFILE = "loihi2"
RESULTS = "results.json"
RESULTS_MD = "results.md"
PLOT = "accuracy_vs_connections.png"
LOG = "sweep_log.json"
DOCS_PLOT = "sweep_accuracy_vs_connections.png"
RESULTS_FORMAT = "delaysnn-sweep-results"

# seconds per training epoch measured here (FSDD, 2 cores, load average 5-6), by
# (method, sparsity); see the module docstring and experiments.time_epochs
MEASURED_EPOCH_SECONDS: dict[tuple[str, float], float] = {
    ("dcls", 0.0): 27.4, ("dcls", 0.9): 35.5, ("structure", 0.0): 18.3, ("structure", 0.9): 20.3,
    ("structure-multi", 0.0): 17.7, ("structure-multi", 0.9): 20.2, ("no-delay", 0.0): 6.7,
    ("no-delay", 0.9): 7.7}   # CPU seconds per epoch (an upper bound of idle wall seconds)
RUN_OVERHEAD_SECONDS = 10.0   # data loading, checkpointing, test evaluation per run
VAL_SECONDS = 2.0             # validation per epoch
EVAL_SECONDS = 2.0            # export + emulator + budget per run (evaluate stage)


def estimate_hours(epochs: int = DEFAULT_EPOCHS, n_runs: int = len(METHODS) * len(SPARSITIES),
                   epoch_seconds: dict | None = None) -> float:
    """Hours for n_runs runs of ``epochs`` epochs from measured seconds per epoch (mean over the
    measured (method, sparsity) pairs) plus validation, per-run overhead and evaluation."""
    es = MEASURED_EPOCH_SECONDS if epoch_seconds is None else epoch_seconds
    if not es:
        raise ValueError("no measured epoch seconds")
    mean = sum(es.values()) / len(es)
    per_run = (mean + VAL_SECONDS) * epochs + RUN_OVERHEAD_SECONDS + EVAL_SECONDS
    return n_runs * per_run / 3600


# ----------------------------------------------------------------------------- plain helpers

def run_name(method: str, sparsity: float, seed: int) -> str:
    """RUN_DIR name of one run: ``{method}_s{sparsity}_seed{seed}`` (sparsity as repr(float))."""
    return f"{method}_s{float(sparsity)!r}_seed{int(seed)}"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- run specs

def run_specs(methods, sparsities, seeds, *, dataset: str, data_dir: str | None, epochs: int,
              device: str, sets: list[str] | None, data_options: dict | None = None) -> list[dict]:
    """One spec per run, seeds outermost (a whole seed finishes before the next starts), then
    sparsity, then method: {name, method, sparsity, seed, config (trainer overrides), sets}.
    Every config is resolved and validated here (ValueError), before any work."""
    from trainer.config import resolve_config
    from trainer.layers import METHODS as TRAINER_METHODS

    bad = [m for m in methods if m not in TRAINER_METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {', '.join(bad)}; choose from "
                         f"{', '.join(TRAINER_METHODS)}")
    for name, values in (("methods", methods), ("sparsities", sparsities), ("seeds", seeds)):
        if not values:
            raise ValueError(f"--{name} needs at least one value")
        if len(set(values)) != len(values):
            raise ValueError(f"--{name} lists a value twice: {list(values)}")
    for s in sparsities:
        if not (isinstance(s, (int, float)) and 0 <= s < 1):
            raise ValueError(f"sparsity must be in [0, 1), got {s!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be non-negative integers, got {seed!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    sets = list(sets or [])
    specs = []
    for seed in seeds:
        for s in sparsities:
            for m in methods:
                over = {"dataset": dataset, "method": m, "sparsity": float(s), "seed": int(seed),
                        "epochs": int(epochs), "device": device, "data_dir": data_dir or ""}
                if data_options is not None:
                    over["data_options"] = dict(data_options)
                cfg = resolve_config(None, over, sets)
                specs.append({"name": run_name(m, s, seed), "method": m, "sparsity": float(s),
                              "seed": int(seed), "overrides": over, "sets": sets,
                              "config": cfg})
    return specs


def run_state(run_dir: Path) -> str:
    """'complete' (metrics.json), 'partial' (config.json, last.pt or checkpoint.pt) or 'new'."""
    from trainer.checkpoint import CHECKPOINT, CONFIG, LAST, METRICS

    if (run_dir / METRICS).is_file():
        return "complete"
    if any((run_dir / f).exists() for f in (CONFIG, LAST, CHECKPOINT)):
        return "partial"
    return "new"


def check_existing(out: Path, specs: list[dict]) -> None:
    """Raise ValueError listing every RUN_DIR whose stored config differs from its spec."""
    from trainer.checkpoint import CONFIG
    from trainer.config import identity

    problems = []
    for sp in specs:
        path = out / "runs" / sp["name"] / CONFIG
        if not path.is_file():
            continue
        try:
            stored = json.loads(path.read_text())["config"]
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{path}: unreadable ({e})")
            continue
        a, b = identity(stored), identity(sp["config"])
        if a != b:
            diff = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                             if a.get(k) != b.get(k))
            problems.append(f"{path.parent.name}: {diff}")
    if problems:
        raise ValueError(f"{len(problems)} run folder(s) in {out / 'runs'} hold another config "
                         "(use another --out, delete those folders, or pass the same options): "
                         + "; ".join(problems))


# ----------------------------------------------------------------------------- train stage

class RunLocked(RuntimeError):
    """Another process holds the run's lock (it is training that run now)."""


LOCK = "sweep.lock"


def _lock_run(run_dir: Path):
    """Hold RUN_DIR/sweep.lock (flock, released when the process ends); RunLocked if taken."""
    import fcntl

    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLocked(f"{run_dir} is being trained by another process (it holds "
                        f"{run_dir / LOCK}); stop that sweep first") from None
    return fd


def train_one(spec: dict, run_dir: str, progress: bool = False) -> dict:
    """Train (or continue, resume=True, when RUN_DIR holds a partial run) one run into run_dir,
    holding its lock; {name, seconds, resumed}."""
    import trainer

    run_dir = Path(run_dir)
    fd = _lock_run(run_dir)
    try:
        resume = run_state(run_dir) == "partial"
        t0 = time.perf_counter()
        res = trainer.train(dict(spec["overrides"]), out=run_dir, resume=resume,
                            sets=spec["sets"], progress=progress)
        if not res.completed:
            raise RuntimeError(f"{spec['name']}: training stopped before its last epoch")
        return {"name": spec["name"], "seconds": time.perf_counter() - t0, "resumed": resume}
    finally:
        os.close(fd)


def _start_worker(spec: dict, run_dir: Path, threads: int):
    """Start ``python -m experiments.sweep_worker RUN_DIR`` (stdout shared, stderr appended to
    RUN_DIR/sweep_stderr.log); returns the Popen."""
    import subprocess

    from experiments.sweep_worker import SPEC

    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic({**{k: v for k, v in spec.items() if k != "config"}, "threads": threads},
                      run_dir / SPEC, sort_keys=True)
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(repo)] + ([env["PYTHONPATH"]]
                                                        if env.get("PYTHONPATH") else []))
    with open(run_dir / "sweep_stderr.log", "ab") as err:
        return subprocess.Popen([sys.executable, "-m", "experiments.sweep_worker",
                                 str(run_dir.resolve())], cwd=repo, env=env, stderr=err)


def _worker_failure(name: str, run_dir: Path, code: int) -> str:
    from experiments.sweep_worker import EXIT_LOCKED

    if code == EXIT_LOCKED:
        return f"{name}: being trained by another process (it holds {run_dir / LOCK})"
    log = run_dir / "sweep_stderr.log"
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    last = lines[-1] if lines else "no error output"
    return f"{name}: exit status {code}: {last} (see {log})"


def train_stage(out: Path, specs: list[dict], jobs: int = 1, progress: bool = True) -> dict:
    """Train every spec whose RUN_DIR is not complete; ``jobs`` runs at a time (jobs > 1: worker
    processes ``python -m experiments.sweep_worker``, each with torch threads =
    max(1, cores // jobs); they end with the sweep). Returns {"trained": [names],
    "skipped": [names], "seconds": wall}. A failing run does not stop the others;
    RuntimeError listing the failures is raised at the end."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    state = {sp["name"]: run_state(out / "runs" / sp["name"]) for sp in specs}
    todo = [sp for sp in specs if state[sp["name"]] != "complete"]
    skipped = [sp["name"] for sp in specs if state[sp["name"]] == "complete"]
    trained, failed = [], []
    threads = max(1, _cores() // jobs)
    bar = tqdm(total=len(todo), desc="train", unit="run", disable=not progress or not todo)
    if todo and jobs == 1:
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for sp in todo:
                bar.set_postfix_str(sp["name"])
                try:
                    trained.append(train_one(sp, str(out / "runs" / sp["name"]))["name"])
                except (ValueError, RuntimeError) as e:   # RunLocked, config and data errors
                    failed.append(f"{sp['name']}: {e}")
                bar.update(1)
        finally:
            torch.set_num_threads(before)
    elif todo:
        queue, running = list(todo), {}
        try:
            while queue or running:
                while queue and len(running) < jobs:
                    sp = queue.pop(0)
                    rd = out / "runs" / sp["name"]
                    running[sp["name"]] = (_start_worker(sp, rd, threads), rd)
                time.sleep(0.2)
                for name, (proc, rd) in list(running.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    del running[name]
                    if code == 0:
                        trained.append(name)
                    else:
                        failed.append(_worker_failure(name, rd, code))
                    bar.set_postfix_str(name)
                    bar.update(1)
        finally:
            for proc, _ in running.values():   # interrupted: stop the workers we started
                proc.terminate()
            for proc, _ in running.values():
                proc.wait()
    bar.close()
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(todo)} runs failed (the others are kept; "
                           "rerun the sweep to retry): " + "; ".join(failed))
    return {"trained": trained, "skipped": skipped, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- evaluate stage

def load_results(out: Path) -> dict:
    path = out / RESULTS
    if not path.is_file():
        return {"format": RESULTS_FORMAT, "version": 1, "profile": PROFILE, "runs": {}}
    try:
        res = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it to evaluate again") from None
    if res.get("format") != RESULTS_FORMAT or not isinstance(res.get("runs"), dict):
        raise ValueError(f"{path} is not a sweep results file; delete it or use another --out")
    return res


class _DataCache:
    """Feature sets rebuilt from data recipes, shared between runs with the same recipe."""

    def __init__(self, data_dir: str | None):
        self.data_dir = data_dir
        self._sets = {}

    def get(self, recipe: dict, split: str):
        from trainer.data import dataset_from_recipe

        r = dict(recipe)
        if self.data_dir:
            r["data_dir"] = str(self.data_dir)
        key = (json.dumps(r, sort_keys=True, default=str), split)
        if key not in self._sets:
            ds = dataset_from_recipe(r, split)
            self._sets[key] = (ds.x.numpy(), ds.y.numpy())
        return self._sets[key]


def evaluate_run(run_dir: Path, data: _DataCache, profile: str = PROFILE) -> dict:
    """Export RUN_DIR's best checkpoint to ``profile`` (saved as RUN_DIR/net.h5), run the test
    split through lava_runtime.emulator and estimate the budget on ``profile``.
    Returns the results entry (accuracies are fractions, connections are synapse counts)."""
    import numpy as np

    from export.checkpoint import load_checkpoint
    from export.netx_h5 import save
    from export.to_lava import export_checkpoint
    from hw_profiles import load_profile
    from lava_runtime.budget import estimate
    from lava_runtime.emulator import emulate
    from trainer.checkpoint import CHECKPOINT, METRICS

    t0 = time.perf_counter()
    metrics = json.loads((run_dir / METRICS).read_text())
    ck = load_checkpoint(run_dir / CHECKPOINT)
    x_train, _ = data.get(ck.data_recipe, "train")
    x_test, y_test = data.get(ck.data_recipe, "test")
    net, report = export_checkpoint(run_dir, profile, calibration=x_train, evaluation=False)
    save(net, run_dir / "net.h5")
    act = emulate(net, net.input.encode(x_test))
    pred = act.predictions(net)
    b = estimate(net, act, load_profile(profile))
    cfg = ck.config
    return {
        "method": cfg["method"], "sparsity": float(cfg["sparsity"]), "seed": int(cfg["seed"]),
        "epochs": int(cfg["epochs"]), "dataset": cfg["dataset"],
        "checkpoint_sha256": sha256_file(run_dir / CHECKPOINT),
        "best_epoch": metrics["best_epoch"], "val_accuracy": metrics["val_accuracy"],
        "test_accuracy": metrics["test_accuracy"],
        "test_accuracy_train_kernels": metrics["test_accuracy_train_kernels"],
        "emulator_accuracy": float(np.mean(pred == y_test)),
        "n_test": int(len(y_test)),
        "connections_per_layer": [int(c) for c in metrics["connections"]],
        "connections": int(sum(metrics["connections"])),
        "synops_per_sample": float(b.synops_per_sample),
        "spikes_per_sample": float(b.spikes_per_sample),
        "energy_per_sample_joules": None if b.energy_total is None else float(b.energy_total),
        "profile": profile, "refused": list(b.refused),
        "export_warnings": list(report["warnings"]),
        "train_seconds": float(metrics["seconds"]),
        "evaluate_seconds": time.perf_counter() - t0,
    }


def evaluate_stage(out: Path, specs: list[dict], data_dir: str | None = None,
                   progress: bool = True) -> dict:
    """Evaluate every complete run of ``specs`` not yet in OUT/results.json with the same
    checkpoint; results.json is rewritten (atomically) after each run.
    Returns {"evaluated": [names], "skipped": [names], "missing": [names not trained]}."""
    from tqdm import tqdm

    from trainer.checkpoint import CHECKPOINT

    res = load_results(out)
    done = [sp for sp in specs if run_state(out / "runs" / sp["name"]) == "complete"]
    missing = [sp["name"] for sp in specs if run_state(out / "runs" / sp["name"]) != "complete"]
    todo, skipped = [], []
    for sp in done:
        entry = res["runs"].get(sp["name"])
        ck = out / "runs" / sp["name"] / CHECKPOINT
        if entry is not None and entry.get("checkpoint_sha256") == sha256_file(ck):
            skipped.append(sp["name"])
        else:
            todo.append(sp)
    data = _DataCache(data_dir)
    evaluated, failed = [], []
    for sp in tqdm(todo, desc="evaluate", unit="run", disable=not progress or not todo):
        try:
            res["runs"][sp["name"]] = evaluate_run(out / "runs" / sp["name"], data)
        except ValueError as e:  # ExportError / ProfileViolation / DataError: reported at the end
            failed.append(f"{sp['name']}: {type(e).__name__}: {e}")
            continue
        write_json_atomic(res, out / RESULTS, sort_keys=True)
        evaluated.append(sp["name"])
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(todo)} evaluations failed (the others are in "
                           f"{out / RESULTS}): " + "; ".join(failed))
    return {"evaluated": evaluated, "skipped": skipped, "missing": missing}


# ----------------------------------------------------------------------------- summarize stage

def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof 1; None for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def aggregate(entries: list[dict]) -> list[dict]:
    """Rows per (method, sparsity), in METHODS order then sparsity: n_seeds, seeds and
    (mean, std) of test_accuracy, emulator_accuracy, connections, synops_per_sample."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for e in entries:
        groups.setdefault((e["method"], float(e["sparsity"])), []).append(e)
    order = {m: i for i, m in enumerate(METHODS)}
    rows = []
    for (m, s), es in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][0],
                                                              kv[0][1])):
        row = {"method": m, "sparsity": s, "n_seeds": len(es),
               "seeds": sorted(int(e["seed"]) for e in es),
               "n_test": sorted({int(e["n_test"]) for e in es})}
        for key in ("test_accuracy", "emulator_accuracy", "connections", "synops_per_sample"):
            row[key] = _mean_std([float(e[key]) for e in es])
        rows.append(row)
    return rows


def _fmt(ms: tuple[float, float | None], scale: float = 1.0, digits: int = 1) -> str:
    mean, std = ms
    s = f"{mean * scale:.{digits}f}"
    return s if std is None else f"{s} ± {std * scale:.{digits}f}"


def _fmt_count(ms: tuple[float, float | None]) -> str:
    mean, std = ms
    return f"{mean:,.0f}" if not std else f"{mean:,.0f} ± {std:,.0f}"


def results_table(rows: list[dict]) -> str:
    """Markdown table of the aggregated rows (accuracies in %, mean ± sample std over seeds)."""
    lines = ["| method | sparsity | seeds | test accuracy % (float, integer delays) | "
             "emulator accuracy % (loihi2 fixed point) | connections | synops/sample (loihi2) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['sparsity']:g} | {r['n_seeds']} | "
                     f"{_fmt(r['test_accuracy'], 100)} | {_fmt(r['emulator_accuracy'], 100)} | "
                     f"{_fmt_count(r['connections'])} | {_fmt_count(r['synops_per_sample'])} |")
    return "\n".join(lines)


def comparison_lines(rows: list[dict], baseline: str = "dcls",
                     contenders=("structure", "structure-multi"), top: int = 3) -> list[str]:
    """Plain statements comparing each contender's mean test accuracy (integer delays) with the
    baseline's at the ``top`` highest sparsities both have, then a one-line verdict each
    (contenders without any row are left out)."""
    by = {(r["method"], r["sparsity"]): r for r in rows}
    out = []
    for c in contenders:
        if not any(m == c for m, _ in by):
            continue
        common = sorted({s for (m, s) in by if m == c} & {s for (m, s) in by if m == baseline})
        common = common[-top:]
        if not common:
            out.append(f"No sparsity has both {c} and {baseline} results: no comparison.")
            continue
        wins = 0
        for s in reversed(common):
            a, b = by[(c, s)], by[(baseline, s)]
            ma, mb = a["test_accuracy"][0], b["test_accuracy"][0]
            verb = "beat" if ma > mb else ("tied with" if ma == mb else "did not beat")
            wins += ma > mb
            spread = [x for x in (a["test_accuracy"][1], b["test_accuracy"][1]) if x is not None]
            note = ""
            if spread and abs(ma - mb) <= max(spread):
                note = " (difference within one standard deviation)"
            out.append(f"{c} {verb} {baseline} at sparsity {s:g}: {100 * ma:.1f}% vs "
                       f"{100 * mb:.1f}% ({a['n_seeds']} vs {b['n_seeds']} seeds){note}.")
        if wins == len(common):
            verdict = "Yes"
        elif wins == 0:
            verdict = "No"
        else:
            verdict = "Mixed"
        out.append(f"**{verdict}: {c} beat {baseline} at {wins} of the {len(common)} highest "
                   f"sparsities ({', '.join(f'{s:g}' for s in common)}) on this data.**")
    return out


def matched_connection_lines(rows: list[dict], baseline: str = "dcls",
                             contenders=("structure-multi",), top: int = 3) -> list[str]:
    """Compare at (nearly) equal connection count, the claim's own terms. structure-multi's
    candidates span (pre, post, delay), K times dcls's (pre, post), so equal sparsity is not
    equal connections: each of the contender's ``top`` sparsest points is paired with the
    baseline point of nearest connection count (at most 2x apart; otherwise said so)."""
    out = []
    base = [r for r in rows if r["method"] == baseline]
    for c in contenders:
        mine = sorted((r for r in rows if r["method"] == c), key=lambda r: r["connections"][0])
        if not mine or not base:
            continue
        for r in mine[:top]:
            n = r["connections"][0]
            b = min(base, key=lambda q: abs(math.log(q["connections"][0] / n)))
            nb = b["connections"][0]
            if abs(math.log(nb / n)) > math.log(2):
                out.append(f"{c} with {n:,.0f} connections: no {baseline} run within 2x "
                           f"of that connection count.")
                continue
            ma, mb = r["test_accuracy"][0], b["test_accuracy"][0]
            verb = "beat" if ma > mb else ("tied with" if ma == mb else "did not beat")
            out.append(f"{c} with {n:,.0f} connections (sparsity {r['sparsity']:g}) {verb} "
                       f"{baseline} with {nb:,.0f} connections (sparsity {b['sparsity']:g}): "
                       f"{100 * ma:.1f}% vs {100 * mb:.1f}%.")
    return out


def caveat_line(rows: list[dict]) -> str:
    seeds = sorted({r["n_seeds"] for r in rows})
    n_test = sorted({n for r in rows for n in r["n_test"]})
    pts = ", ".join(f"{100 / n:.2f}" for n in n_test)
    return (f"Caveat: {'/'.join(map(str, seeds))} seed(s) per point; one test sample is {pts} "
            f"accuracy points ({'/'.join(map(str, n_test))} test samples), so differences of a "
            "point or two between methods are within run-to-run noise.")


def plot_accuracy_vs_connections(rows: list[dict], path: Path) -> None:
    """PNG: mean test accuracy (integer delays, %) against mean connections (log x), one line
    per method, error bars = standard deviation over seeds. Written atomically."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    methods += sorted({r["method"] for r in rows} - set(methods))
    for m in methods:
        rs = sorted((r for r in rows if r["method"] == m), key=lambda r: r["connections"][0])
        x = [r["connections"][0] for r in rs]
        y = [100 * r["test_accuracy"][0] for r in rs]
        err = [100 * (r["test_accuracy"][1] or 0.0) for r in rs]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=m)
    ax.set_xscale("log")
    ax.set_xlabel("connections (synapses, all layers)")
    ax.set_ylabel("test accuracy % (integer delays)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(buf.getvalue(), path)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _time_lines(out: Path, entries: list[dict]) -> list[str]:
    log = _read_log(out)
    lines = []
    train_calls = [c for c in log if c.get("stage") in ("train", "all") and c.get("train")]
    if train_calls:
        wall = sum(c["train"]["seconds"] for c in train_calls)
        machines = sorted({f"{c['machine']} ({c['device']})" for c in train_calls})
        lines.append(f"- Machine: {'; '.join(machines)}.")
        jobs = ", ".join(sorted({str(c["jobs"]) for c in train_calls}))
        lines.append(f"- Training stage wall time: {_hours(wall)} over {len(train_calls)} "
                     f"invocation(s) with --jobs {jobs}.")
    ts = sum(e["train_seconds"] for e in entries)
    es = sum(e["evaluate_seconds"] for e in entries)
    lines.append(f"- Sum over runs: training {_hours(ts)} (trainer epochs, excluding "
                 f"validation), evaluation {_hours(es)} (export + emulator + budget).")
    return lines


def summarize_stage(out: Path, specs: list[dict] | None = None, docs: Path | None = None,
                    command: str | None = None) -> dict:
    """Aggregate OUT/results.json (restricted to ``specs`` when given) into OUT/results.md and
    OUT/accuracy_vs_connections.png; with ``docs`` also write that markdown file (command,
    machine and time, epochs, table, plot copied beside it, comparison, caveat).
    Returns {"rows": [...], "comparison": [lines]}."""
    res = load_results(out)
    names = None if specs is None else {sp["name"] for sp in specs}
    entries = [e for n, e in sorted(res["runs"].items()) if names is None or n in names]
    if not entries:
        raise ValueError(f"{out / RESULTS} holds no evaluated runs"
                         + ("" if names is None else " of this sweep")
                         + "; run --stage train and --stage evaluate first")
    rows = aggregate(entries)
    table = results_table(rows)
    comp = comparison_lines(rows) + matched_connection_lines(rows)
    caveat = caveat_line(rows)
    plot_accuracy_vs_connections(rows, out / PLOT)
    epochs = sorted({e["epochs"] for e in entries})
    datasets = sorted({e["dataset"] for e in entries})
    bullets = [f"- {line}" for line in comp]
    md = "\n".join([f"# Sweep results ({', '.join(datasets)}, {'/'.join(map(str, epochs))} "
                    "epochs)", "", table, "", *bullets, "", caveat, "",
                    f"![accuracy vs connections]({PLOT})", ""])
    write_bytes_atomic(md.encode(), out / RESULTS_MD)
    if docs is not None:
        docs = Path(docs)
        plot_bytes = (out / PLOT).read_bytes()
        write_bytes_atomic(plot_bytes, docs.parent / DOCS_PLOT)
        log = _read_log(out)
        cmds = []
        for c in log:
            if c.get("stage") in ("train", "all", "evaluate") and c["command"] not in cmds:
                cmds.append(c["command"])
        if command and command not in cmds:
            cmds.append(command)
        doc = [
            f"# Results: learned delays on {', '.join(datasets)}, accuracy against connections",
            "",
            "Produced by `experiments/sweep.py` (train every method at every sparsity, export "
            f"the best checkpoint of each run to Lava for {PROFILE}, evaluate it with the "
            "bit-exact emulator, tabulate). Command(s), from the repository root:", "",
            "```", *cmds, "```", "",
            f"- Dataset: {', '.join(datasets)} (validation carved from the training split "
            "chooses each run's best epoch; the test split chooses nothing).",
            f"- Epochs per run: {', '.join(map(str, epochs))}; seeds: "
            f"{', '.join(str(s) for s in sorted({e['seed'] for e in entries}))}.",
            *_time_lines(out, entries), "",
            "Accuracy is on the test split: the float model with integer delays (trainer) and "
            f"the exported fixed-point network in `lava_runtime.emulator` ({PROFILE}); mean ± "
            "sample standard deviation over seeds (no ± with one seed). Synaptic operations "
            f"per sample are `lava_runtime.budget.estimate(...).synops_per_sample` on {PROFILE}.",
            "", table, "", f"![accuracy vs connections]({DOCS_PLOT})", "",
            "## Did structure learning beat DCLS at high sparsity?", "", *bullets, "", caveat,
            ""]
        write_bytes_atomic("\n".join(doc).encode(), docs)
    return {"rows": rows, "comparison": comp}


# ----------------------------------------------------------------------------- the sweep

def _machine(device: str) -> tuple[str, str]:
    dev = device
    try:
        import torch
        if device in ("auto", "cuda") or device.startswith("cuda:"):
            dev = (f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available()
                   else "cpu")
        tv = torch.__version__
    except Exception:  # noqa: BLE001 - only for the log line
        tv = "?"
    return f"{platform.machine()} {_cores()} cores, Python {platform.python_version()}, " \
           f"torch {tv}", dev


def _read_log(out: Path) -> list:
    """OUT/sweep_log.json ([] when absent); a corrupt one is a one-line ValueError."""
    path = out / LOG
    if not path.is_file():
        return []
    log = read_json_file(path, ValueError, "delete it (it only records past invocations)")
    if not isinstance(log, list):
        raise ValueError(f"{path} is not a sweep log (a JSON list); delete it")
    return log


def _append_log(out: Path, entry: dict) -> None:
    path = out / LOG
    log = _read_log(out)
    log.append(entry)
    write_json_atomic(log, path, sort_keys=True)


def sweep(out: str | Path = "runs/sweep", *, dataset: str = "fsdd", data_dir: str | None = None,
          methods=METHODS, sparsities=SPARSITIES, seeds=(0,), epochs: int = DEFAULT_EPOCHS,
          jobs: int = 1, device: str = "auto", sets: list[str] | None = None,
          stage: str = "all", docs: str | Path | None = None, data_options: dict | None = None,
          progress: bool = True, command: str | None = None) -> dict:
    """Run the sweep's ``stage`` (see the module docstring); everything is validated first.
    data_options: trainer data_options (per-source options, e.g. synthetic n_train).
    Returns {"train": ..., "evaluate": ..., "summarize": ...} for the stages run."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; choose another path")
    if docs is not None and not Path(docs).parent.is_dir():
        raise ValueError(f"--docs {docs}: folder {Path(docs).parent} does not exist")
    specs = run_specs(list(methods), list(sparsities), list(seeds), dataset=dataset,
                      data_dir=data_dir, epochs=epochs, device=device, sets=sets,
                      data_options=data_options)
    check_existing(out, specs)
    if out.is_dir():
        _read_log(out)  # a corrupt log fails now, not after the work
    if stage in ("train", "all"):
        _check_data(specs[0]["config"])
    out.mkdir(parents=True, exist_ok=True)
    machine, dev = _machine(device)
    entry = {"command": command or "experiments.sweep.sweep(...)", "stage": stage,
             "machine": machine, "device": dev, "jobs": jobs,
             "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    result = {}
    t0 = time.perf_counter()
    try:
        if stage in ("train", "all"):
            result["train"] = entry["train"] = train_stage(out, specs, jobs, progress)
        if stage in ("evaluate", "all"):
            t0 = time.perf_counter()
            result["evaluate"] = evaluate_stage(out, specs, data_dir, progress)
            entry["evaluate"] = {**result["evaluate"], "seconds": time.perf_counter() - t0}
    finally:
        if stage in ("train", "all") and "train" not in entry:  # interrupted or failed
            entry["train"] = {"seconds": time.perf_counter() - t0, "interrupted": True}
        elif stage in ("evaluate", "all") and "evaluate" not in entry:
            entry["evaluate"] = {"seconds": time.perf_counter() - t0, "interrupted": True}
        if stage != "summarize":
            _append_log(out, entry)
    if stage in ("summarize", "all"):
        result["summarize"] = summarize_stage(out, specs, None if docs is None else Path(docs),
                                              command)
    return result


def _check_data(cfg: dict) -> None:
    """Load the test and training splits once before any training: a missing data folder fails
    here, and the feature cache is filled before parallel workers would each compute it."""
    from trainer.data import load_dataset

    for split in ("test", "train"):
        load_dataset(cfg["dataset"], split, cfg["data_dir"] or None, seed=cfg["seed"],
                     n_mels=cfg["n_mels"], time_steps=cfg["time_steps"],
                     val_fraction=cfg["val_fraction"], **cfg["data_options"])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.sweep",
                                description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--out", default="runs/sweep", help="sweep folder (default runs/sweep)")
    p.add_argument("--dataset", default="fsdd", help="trainer.data name (default fsdd)")
    p.add_argument("--data-dir", default=None, help="the dataset's folder (default: its own)")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--sparsities", nargs="+", type=float, default=list(SPARSITIES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"epochs per run (default {DEFAULT_EPOCHS}: one seed of 28 FSDD runs in "
                        "about two hours on 2 CPU cores)")
    p.add_argument("--jobs", type=int, default=1, help="trainings at a time (default 1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any trainer config key (TOML value), repeatable")
    p.add_argument("--stage", default="all", choices=STAGES)
    p.add_argument("--docs", default=None, help="also write this markdown file (summarize)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = build_parser().parse_args(argv)
    command = "python -m experiments.sweep " + shlex.join(argv)
    try:
        r = sweep(a.out, dataset=a.dataset, data_dir=a.data_dir, methods=a.methods,
                  sparsities=a.sparsities, seeds=a.seeds, epochs=a.epochs, jobs=a.jobs,
                  device=a.device, sets=a.sets, stage=a.stage, docs=a.docs,
                  progress=a.progress, command=command)
    except ValueError as e:  # includes DataError, CheckpointError, ExportError
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # some runs failed; the others are kept
        print(f"error: {e}", file=sys.stderr)
        return 1
    if "train" in r:
        t = r["train"]
        print(f"train: {len(t['trained'])} trained, {len(t['skipped'])} already complete "
              f"({t['seconds']:.0f} s)")
    if "evaluate" in r:
        e = r["evaluate"]
        print(f"evaluate: {len(e['evaluated'])} evaluated, {len(e['skipped'])} unchanged, "
              f"{len(e['missing'])} not trained yet")
    if "summarize" in r:
        print(results_table(r["summarize"]["rows"]))
        print("\n".join(r["summarize"]["comparison"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
