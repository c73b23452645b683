"""Sweep: every point (group, sparsity, seed) of a committed grid (experiments/fsdd.toml),
trained and evaluated as Ray tasks, one small JSON per point; a report built from those JSONs.

    python -m experiments.sweep run [--config experiments/fsdd.toml]
        [--results runs/sweep_results] [--runs runs/sweep] [--address ADDR]
        [--device cpu|cuda] [--cpus-per-trial 1] [--num-cpus N] [--epochs N]
        [--groups G ...] [--sparsities S ...] [--seeds N ...] [--lif-kernel auto|cpp|torch]
        [--dry-run] [--no-progress]
    python -m experiments.sweep report [--results runs/sweep_results] [--epochs N]
        [--config experiments/fsdd.toml] [--docs runs/sweep_report/results.md] [--readme README.md]

are thin layers over :func:`run` and :func:`experiments.sweep_report.report` (same defaults;
the committed results are made with ``--results docs/results/sweep --docs docs/results.md``).

``run``: Ray runs the points (experiments.sweep_trial.run_point), densest first. Without
``--address`` it starts Ray on this machine (``ray.init``, ``--num-cpus`` default: all cores)
with one trial per ``--cpus-per-trial`` cores (torch threads = that many), or one per GPU with
``--device cuda``. With ``--address`` (``auto`` or ``HOST:6379`` of a running cluster, see
``ray start``) the same tasks run on the cluster: the code travels with the tasks (Ray
``py_modules``), while the Python environment, the data folder and ``--runs`` (the trainer's run
folders) must exist on every node; a head with token authentication is used with this machine's
token, and a cluster that cannot be used is an error within seconds
(:mod:`experiments.sweep_cluster`). A point whose JSON is in ``--results`` is done and skipped, so
an interrupted sweep resumes by running the same command (a partly trained run continues from
its last.pt); a failing point is reported with its log (``RUNS/{point}/trial.log``) and does not
stop the others. A JSON or run folder made with another config (other epochs, other trainer
keys) is an error before any work. Points of different groups with the same trainer config (e.g.
structure-multi at 0.98 and structure-multi-matched at nominal 0.5, both 1 - 0.5 / 25) are
trained once: the others get a copy of its record under their own name, group and nominal
sparsity, with ``same_run_as`` naming the point that trained.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from experiments.sweep_cluster import prepare as prepare_cluster
from experiments.sweep_config import DEFAULT_CONFIG, DEFAULT_RESULTS, load_grid, plan
from experiments.sweep_report import add_report_arguments, report
from experiments.sweep_trial import LOG, load_record, run_point
from trainer.file_io import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
# every top-level package of the checkout: shipped to a cluster's nodes with each task
PACKAGES = ("delaysnn", "deployed", "experiments", "export", "hw_profiles", "lava_runtime",
            "trainer")
DEFAULT_RUNS = "runs/sweep"
DEVICES = ("cpu", "cuda")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def git_state() -> dict:
    """{"git_commit": HEAD or None, "git_dirty": uncommitted changes to tracked files}."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, timeout=30,
                               check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": head, "git_dirty": dirty}


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Start Ray on this machine (``num_cpus`` default: all cores) or connect to the cluster at
    ``address`` (token authentication and a check within seconds first:
    :func:`experiments.sweep_cluster.prepare`, ValueError of one line when it fails). Local
    workers import this checkout (PYTHONPATH); on a cluster the packages travel as Ray
    py_modules. Worker BLAS/OpenMP pools get 1 thread (torch threads are set per trial)."""
    import ray

    env_vars = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if address is None:
        path = os.environ.get("PYTHONPATH")
        env_vars["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([path] if path else []))
        runtime_env: dict = {"env_vars": env_vars}
        # "local": always a new instance, never a cluster found on this machine
        ray.init(address="local", num_cpus=num_cpus or cores(), include_dashboard=False,
                 log_to_driver=False, runtime_env=runtime_env)
    else:
        runtime_env = {"env_vars": env_vars,
                       "py_modules": [str(REPO / p) for p in PACKAGES],
                       "excludes": ["__pycache__", "*.pyc"]}
        ray.init(address=prepare_cluster(address), log_to_driver=False,
                 runtime_env=runtime_env)


def _diff(a: dict, b: dict) -> str:
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                     if a.get(k) != b.get(k))


def check_existing(points: list[dict], results: Path, runs: Path) -> tuple[list[dict], list[str]]:
    """Split points into (to do, done names); ValueError listing every point JSON or run folder
    whose stored trainer config differs from the point's."""
    from trainer.checkpoint import CONFIG
    from trainer.config import identity

    todo, done, problems = [], [], []
    for p in points:
        want = identity(p["config"])
        path = results / f"{p['name']}.json"
        if path.is_file():
            have = load_record(path).get("config", {})
            if have != want:
                problems.append(f"{path.name}: {_diff(have, want)}")
            else:
                done.append(p["name"])
            continue
        cfg_path = runs / p["name"] / CONFIG
        if cfg_path.is_file():
            try:
                have = identity(json.loads(cfg_path.read_text())["config"])
            except (ValueError, KeyError, TypeError) as e:
                problems.append(f"{cfg_path}: unreadable ({e})")
                continue
            if have != want:
                problems.append(f"{cfg_path.parent}: {_diff(have, want)}")
                continue
        todo.append(p)
    if problems:
        raise ValueError(f"{len(problems)} result file(s) or run folder(s) hold another config "
                         "(delete them, or use other --results/--runs folders): "
                         + "; ".join(problems))
    return todo, done


def config_key(cfg: dict) -> str:
    """A point's trainer config (its identity) as a string: equal keys, one training."""
    from trainer.config import identity

    return json.dumps(identity(cfg), sort_keys=True)


def twin_record(record: dict, point: dict) -> dict:
    """``point``'s record from the record of another point with the same trainer config: the
    measured part shared, its own name, group and nominal sparsity, and ``same_run_as``."""
    return {**record, "name": point["name"], "group": point["group"],
            "nominal_sparsity": point["nominal_sparsity"], "matched": point["matched"],
            "same_run_as": record.get("same_run_as", record["name"])}


def split_twins(todo: list[dict], results: Path) -> tuple[list[dict], dict[str, list[dict]],
                                                           list[tuple[dict, dict]]]:
    """Split the points to do into (points to train, {trained point's name: points that copy its
    record}, [(point, record) ready now from a point JSON already in ``results``])."""
    done: dict[str, dict] = {}
    for path in sorted(results.glob("*.json")) if results.is_dir() else []:
        rec = load_record(path)
        if "config" in rec:
            done.setdefault(config_key(rec["config"]), rec)    # identity() is idempotent
    train: list[dict] = []
    twins: dict[str, list[dict]] = {}
    ready: list[tuple[dict, dict]] = []
    first: dict[str, str] = {}
    for p in todo:
        key = config_key(p["config"])
        if key in done:
            ready.append((p, twin_record(done[key], p)))
        elif key in first:
            twins.setdefault(first[key], []).append(p)
        else:
            first[key] = p["name"]
            train.append(p)
    return train, twins, ready


def check_data(points: list[dict]) -> None:
    """Load the train and test splits once per distinct data recipe before any training: a
    missing data folder fails here, and the feature cache is filled before trials read it."""
    from trainer.data import load_dataset

    seen = set()
    for p in points:
        c = p["config"]
        key = json.dumps([c["dataset"], c["data_dir"], c["n_mels"], c["time_steps"],
                          c["val_fraction"], c["data_options"]], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        for split in ("test", "train"):
            load_dataset(c["dataset"], split, c["data_dir"] or None, seed=c["seed"],
                         n_mels=c["n_mels"], time_steps=c["time_steps"],
                         val_fraction=c["val_fraction"], **c["data_options"])


def run_points(points: list[dict], results: Path, runs: Path, *, device: str = "cpu",
               cpus_per_trial: int = 1, meta: dict | None = None, progress: bool = True,
               twins: dict[str, list[dict]] | None = None) -> tuple[list[str], list[dict]]:
    """Submit every point as a Ray task (Ray must be initialised) and write each finished
    point's record to ``results/{name}.json`` (atomically) as it arrives, and the records of
    its ``twins`` (points with the same trainer config, see :func:`split_twins`).
    Returns (names done, failures [{name, error, log, host}]). On an interrupt the pending
    tasks are cancelled."""
    import ray
    from tqdm import tqdm

    task = ray.remote(run_point).options(num_cpus=cpus_per_trial,
                                         num_gpus=1 if device == "cuda" else 0, max_retries=0)
    runs_arg = str(runs.resolve()) if not runs.is_absolute() else str(runs)
    pending = {task.remote(p, runs_arg, cpus_per_trial, meta): p for p in points}
    done, failed = [], []
    # drawn on update (not on the postfix); the last point is drawn once, by close()
    bar = tqdm(total=len(points), desc="sweep", unit="point", disable=not progress)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=5.0)
            for ref in ready:
                p = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayError as e:   # the worker died (killed, out of memory)
                    out = {"name": p["name"], "status": "failed", "host": "?",
                           "error": f"{type(e).__name__}: {str(e).splitlines()[0]}",
                           "log": str(Path(runs_arg) / p["name"] / LOG)}
                copies = (twins or {}).get(p["name"], [])
                if out["status"] == "ok":
                    r = out["record"]
                    for q, rec in [(p, r)] + [(q, twin_record(r, q)) for q in copies]:
                        write_json_atomic(rec, results / f"{q['name']}.json", sort_keys=True,
                                          allow_nan=False)
                        done.append(q["name"])
                    msg = (f"done {p['name']}: test {r['test_accuracy']:.1%}, emulator "
                           f"{r['emulator_accuracy']:.1%} ({out['seconds']:.0f} s)"
                           + "".join(f"; same run: {q['name']}" for q in copies))
                else:
                    for q in [p] + copies:
                        error = out["error"] if q is p else f"same run as {p['name']}, which " \
                            f"failed: {out['error']}"
                        failed.append({"name": q["name"], "error": error, "log": out["log"],
                                       "host": out["host"]})
                    msg = (f"FAILED {p['name']}: {out['error']} (log: {out['host']}:"
                           f"{out['log']})")
                if progress:
                    tqdm.write(msg)
                else:                       # no bar (logs): still one line per point
                    print(msg, flush=True)
                bar.set_postfix_str(f"{len(failed)} failed", refresh=False)
                if pending or ref is not ready[-1]:
                    bar.update(1)
                else:
                    bar.n = bar.total
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return done, failed


def run(config: str | Path = DEFAULT_CONFIG, *, results: str | Path = DEFAULT_RESULTS,
        runs: str | Path = DEFAULT_RUNS, address: str | None = None, device: str = "cpu",
        cpus_per_trial: int = 1, num_cpus: int | None = None, epochs: int | None = None,
        groups: list[str] | None = None, sparsities: list[float] | None = None,
        seeds: list[int] | None = None, dry_run: bool = False, progress: bool = True,
        command: str | None = None, lif_kernel: str | None = None) -> dict:
    """Run the points of ``config`` that have no JSON in ``results`` yet (see the module
    docstring). ``groups``/``sparsities``/``seeds`` restrict the grid; ``epochs`` replaces its
    epoch count (short trial runs: use another ``results`` folder); ``lif_kernel`` sets the
    trainer's (None: its default; it changes training by float rounding only, and is not part of
    a point's identity: "torch" reproduces points trained before the compiled kernels, bit for
    bit). Everything is checked before
    Ray starts. Uses Ray as it is when already initialised (and leaves it running), else starts
    it (and shuts it down). Returns {"points", "done" (this call), "skipped" (JSON present),
    "failed" [{name, error, log, host}], "skipped_groups" [messages], "same_run_as" {point:
    the point whose training it shares}, "seconds"}."""
    t0 = time.perf_counter()
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    for name, v in (("cpus_per_trial", cpus_per_trial), ("num_cpus", num_cpus)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    results, runs = Path(results), Path(runs)
    for what, path in (("--results", results), ("--runs", runs)):
        if path.exists() and not path.is_dir():
            raise ValueError(f"{what} {path} exists and is not a folder; choose another path")
    grid = load_grid(config)
    points, skipped_groups = plan(grid, device=device, threads=cpus_per_trial, epochs=epochs,
                                  groups=groups, sparsities=sparsities, seeds=seeds,
                                  lif_kernel=lif_kernel)
    todo, skipped = check_existing(points, results, runs)
    train, twins, ready = split_twins(todo, results)
    done: list[str] = []
    out = {"points": [p["name"] for p in points], "todo": [p["name"] for p in todo],
           "done": done, "skipped": skipped, "failed": [], "skipped_groups": skipped_groups,
           "same_run_as": {q["name"]: p for p, qs in twins.items() for q in qs}
           | {p["name"]: rec["same_run_as"] for p, rec in ready},
           "seconds": 0.0}
    if dry_run:
        out["seconds"] = time.perf_counter() - t0
        return out
    for p, rec in ready:
        write_json_atomic(rec, results / f"{p['name']}.json", sort_keys=True, allow_nan=False)
        done.append(p["name"])
    if not train:
        out["seconds"] = time.perf_counter() - t0
        return out
    if address is None:
        check_data(train)
    import ray

    meta = {**git_state(), "command": command or "experiments.sweep.run(...)"}
    started = not ray.is_initialized()
    if started:
        try:
            init_ray(address, num_cpus)    # a cluster that cannot be used: ValueError, at once
        except (ConnectionError, RuntimeError) as e:   # Ray refused after that check
            raise ValueError(f"cannot start or reach Ray"
                             f"{'' if address is None else ' at ' + address}: "
                             f"{str(e).strip().splitlines()[0]}") from None
    results.mkdir(parents=True, exist_ok=True)
    try:
        have = ray.cluster_resources()
        need = ("GPU", 1) if device == "cuda" else ("CPU", cpus_per_trial)
        if have.get(need[0], 0) < need[1]:
            raise ValueError(f"the Ray cluster has {have.get(need[0], 0):g} {need[0]}(s); a "
                             f"trial needs {need[1]} (--device {device}, --cpus-per-trial "
                             f"{cpus_per_trial})")
        trained, out["failed"] = run_points(train, results, runs, device=device,
                                            cpus_per_trial=cpus_per_trial, meta=meta,
                                            progress=progress, twins=twins)
        done += trained
    finally:
        if started:
            ray.shutdown()
    out["seconds"] = time.perf_counter() - t0
    return out


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import HelpFormatter, new_parser

    p = new_parser("python -m experiments.sweep", __doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the points that have no JSON yet (Ray)",
                       description="Train and evaluate every point of the grid that has no "
                                   "JSON yet, as Ray tasks (here or on a cluster).",
                       formatter_class=HelpFormatter)
    r.add_argument("--config", default=DEFAULT_CONFIG, help="the grid (TOML)")
    r.add_argument("--results", default=DEFAULT_RESULTS,
                   help="folder of point JSONs (the committed ones: docs/results/sweep)")
    r.add_argument("--runs", default=DEFAULT_RUNS,
                   help="trainer run folders, on every node")
    r.add_argument("--address", default=None,
                   help="Ray cluster address (auto or HOST:PORT; a token-authenticated head "
                        "needs its token in ~/.ray/auth_token or RAY_AUTH_TOKEN here); default: "
                        "start Ray here")
    r.add_argument("--device", default="cpu", choices=DEVICES,
                   help="cpu: one trial per --cpus-per-trial cores; cuda: one per GPU")
    r.add_argument("--lif-kernel", choices=("auto", "cpp", "torch"), default=None,
                   help="the trainer's lif_kernel for every point (default: its own, auto); "
                        "torch reproduces points trained before the compiled kernels")
    r.add_argument("--cpus-per-trial", type=int, default=1,
                   help="cores (and torch threads) per trial")
    r.add_argument("--num-cpus", type=int, default=None,
                   help="cores Ray may use on this machine (default: all; not with --address)")
    r.add_argument("--epochs", type=int, default=None,
                   help="replace the config's epochs for short trial runs; use another "
                        "--results (default: the config's)")
    r.add_argument("--groups", nargs="+", default=None,
                   help="only these groups (default: every group of the config)")
    r.add_argument("--sparsities", nargs="+", type=float, default=None,
                   help="only these sparsities of the config (default: all)")
    r.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="only these seeds (default: the config's)")
    r.add_argument("--dry-run", action="store_true", help="list the points and what is done")
    r.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar: one line per finished point, for logs (default: "
                        "a progress bar)")
    add_report_arguments(sub.add_parser("report", help="docs page, plots and README block "
                                                       "from the point JSONs",
                                        description="The docs page, its plots and the README "
                                                    "block, made from the point JSONs.",
                                        formatter_class=HelpFormatter))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    a = build_parser().parse_args(argv)
    command = "python -m experiments.sweep " + shlex.join(argv)
    try:
        if a.cmd == "report":
            r = report(a.results, a.docs, config=a.config, readme=a.readme, epochs=a.epochs,
                       bound_results=a.bound_results, agreement=a.agreement)
            print(r["summary"])
            return 0
        if a.num_cpus is not None and a.address is not None:
            raise ValueError("--num-cpus is for a Ray started here; a cluster (--address) "
                             "has its own")
        r = run(a.config, results=a.results, runs=a.runs, address=a.address, device=a.device,
                cpus_per_trial=a.cpus_per_trial, num_cpus=a.num_cpus, epochs=a.epochs,
                groups=a.groups, sparsities=a.sparsities, seeds=a.seeds, dry_run=a.dry_run,
                progress=a.progress, command=command, lif_kernel=a.lif_kernel)
    except ValueError as e:  # bad input, before any work (DataError, CheckpointError included)
        print(f"error: {e}", file=sys.stderr)
        return 2
    for msg in r["skipped_groups"]:
        print(msg)
    if a.dry_run:
        done = set(r["skipped"])
        for name in r["points"]:
            twin = r["same_run_as"].get(name)
            print(f"{'done' if name in done else 'todo'}  {name}"
                  + (f" (same run as {twin})" if twin else ""))
    print(f"{len(r['points'])} points: {len(r['skipped'])} already done, {len(r['done'])} run "
          f"now, {len(r['failed'])} failed ({r['seconds']:.0f} s)")
    for f in r["failed"]:
        print(f"failed: {f['name']}: {f['error']} (log: {f['host']}:{f['log']})",
              file=sys.stderr)
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
