"""One self-contained HTML page about a trained run (`python -m lava_runtime report RUN_DIR`).

    python -m lava_runtime report RUN_DIR [--out FILE.html] [--profiles all]
                                  [--limit 100] [--split test] [--profile loihi2]
    python -m lava_runtime report NET.h5 --spikes EVENTS.npy [--labels LABELS.npy] ...

With `--spikes` the report is about an exported network (one imported from lava-dl, say) on
given input spikes, not a training run: lava_runtime.report.spikes.make_spikes_report.

is a thin layer over :func:`make_report` (same defaults). RUN_DIR is a trainer run folder
(checkpoint.pt, metrics.json). A run that did not finish (trainer.run_status: no metrics.json)
is refused with the command that resumes it, unless `allow_unfinished` (--allow-unfinished):
its page then opens with a "did not finish" banner and reports the checkpoint's own epoch.

The page (default RUN_DIR/report.html) opens with a headline: accuracy of the float model,
the fixed-point emulator and Lava on the same samples (the first `lava_limit` of the split,
which Lava ran; all of them when Lava is skipped), dynamic energy per inference on the export
profile and the lowest among the profiles that fit, whether it fits and on how many cores,
synapses and sparsity. Then: accuracy at each stage (float with training kernels and integer
delays, by trainer.evaluate.predict; the integer network in the bit-exact emulator on every
sample of the split and in Lava on the first `lava_limit`, 0 skips it), with the fraction of
samples whose spikes and readout voltages equal the emulator's; the budget on every profile of
the set (the export profile is always included; refusals with their reasons); the receptive
fields and E/I clustering statistic of trainer.analyze; last, the run and its configuration.
Figures are PNGs embedded as base64 data URIs; CSS is inline; nothing is fetched.

Intermediate products go to RUN_DIR/report/ (net.h5, export.json, float.json, emulator.json,
lava.json, budget.json, budget.png, analysis/, report.json) and are reused on the next call when
the checkpoint, data and options they came from are unchanged (report.cache.StageCache). Every
file is written atomically. All arguments are checked before any work.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lava_runtime.report.cache import StageCache, read_json, sha256_arrays
from lava_runtime.report.profiles import parse_profile_set
from trainer.file_io import sha256_file, write_bytes_atomic, write_json_atomic

if TYPE_CHECKING:
    from hw_profiles import Profile
    from trainer.checkpoint import Checkpoint
    from trainer.run_status import RunStatus

DEFAULTS: dict[str, Any] = {"profile_set": "all", "lava_limit": 100, "split": "test",
                            "export_profile": "loihi2", "allow_unfinished": False}
SPLITS = ("train", "val", "test")
REPORT_DIR = "report"
HTML_NAME = "report.html"
STAGE_VERSION = 4  # bump when a stage's output format changes (invalidates cached stages)
N_STAGES = 6


@dataclass
class ReportInputs:
    """Everything make_report needs, checked (nothing written yet)."""

    run_dir: Path
    checkpoint_path: Path
    checkpoint: Checkpoint
    metrics: dict | None
    profiles: list[Profile]  # in the order given, the export profile first if not among them
    export_profile: Profile
    export_profile_spec: str
    out: Path
    split: str
    lava_limit: int
    timeout_s: float | None
    x: np.ndarray  # (N, T, C) float32 features of the split
    y: np.ndarray  # (N,) int64 labels
    status: RunStatus | None  # None: not a trainer run folder (no config/last/metrics file)
    allow_unfinished: bool


def check_inputs(run_dir, out=None, *, profile_set: str = DEFAULTS["profile_set"],
                 lava_limit: int = DEFAULTS["lava_limit"], split: str = DEFAULTS["split"],
                 export_profile: str = DEFAULTS["export_profile"],
                 timeout_s: float | None = None,
                 allow_unfinished: bool = DEFAULTS["allow_unfinished"]) -> ReportInputs:
    """Check every argument and load the checkpoint, metrics and data; write nothing.
    Raises ValueError (ProfileError, ExportError, DataError, CheckpointError are ValueErrors)
    naming the problem and what to do; an unfinished run without `allow_unfinished` too."""
    from hw_profiles import load_profile
    from trainer.checkpoint import CHECKPOINT as CHECKPOINT_NAME
    from trainer.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run folder {run_dir} does not exist; pass a folder written by "
                         f"`python -m trainer train --out RUN_DIR`")
    ckpt_path = run_dir / CHECKPOINT_NAME
    if not ckpt_path.is_file() and (run_dir / "train" / CHECKPOINT_NAME).is_file():
        raise ValueError(f"{run_dir} is a demo's output folder; its trained run is "
                         f"{run_dir / 'train'}: pass that")
    if not ckpt_path.is_file():
        raise ValueError(f"run folder {run_dir} has no {CHECKPOINT_NAME}; pass a folder written "
                         f"by `python -m trainer train` (training may not have finished)")
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if isinstance(lava_limit, bool) or not isinstance(lava_limit, int) or lava_limit < 0:
        raise ValueError(f"--limit must be an integer >= 0 (0 skips Lava), got "
                         f"{lava_limit!r}")
    if timeout_s is not None and not timeout_s > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {timeout_s!r}")
    out = run_dir / HTML_NAME if out is None else Path(out)
    if out.suffix.lower() != ".html":
        raise ValueError(f"--out {out} must end in .html")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name ending in .html")
    folder = run_dir / REPORT_DIR
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} exists and is not a folder; move it away (the report keeps "
                         f"its intermediate files there)")
    profiles = [load_profile(n) for n in parse_profile_set(profile_set)]
    exp_prof = load_profile(export_profile)
    if exp_prof.name not in [p.name for p in profiles]:
        profiles.insert(0, exp_prof)  # the headline's energy and fit are on the export profile
    if exp_prof.kind != "neuromorphic":
        raise ValueError(f"--profile {export_profile} is a {exp_prof.kind} profile; export "
                         f"needs a neuromorphic one (e.g. loihi2; --profiles sets the profiles "
                         f"the budget compares)")
    from trainer.run_status import run_status, training_run_dir

    status = run_status(run_dir) if training_run_dir(run_dir) is not None else None
    if status is not None and not status.finished and not allow_unfinished:
        raise ValueError(f"{status.message}; or pass --allow-unfinished to report on its "
                         f"checkpoint (epoch {status.checkpoint_epoch}) anyway")
    metrics = None
    mpath = run_dir / "metrics.json"
    if mpath.is_file():
        try:
            metrics = read_json(mpath)
        except (ValueError, OSError) as e:
            raise ValueError(f"{mpath} is not readable JSON ({e}); remove it (the float "
                             f"accuracies are then recomputed) or re-run training") from e
    ck = load_checkpoint(ckpt_path)
    from trainer.data import dataset_from_recipe

    try:
        ds = dataset_from_recipe(ck.data_recipe, split)
    except Exception as e:  # noqa: BLE001 - any data failure is one clear input error
        raise ValueError(f"cannot rebuild the {split!r} split from the checkpoint's data recipe "
                         f"({type(e).__name__}: {e}); check the data folder "
                         f"{ck.data_recipe.get('data_dir')!r}") from e
    x, y = ds.x.numpy(), ds.y.numpy()
    if len(y) == 0:
        raise ValueError(f"the {split!r} split of {ck.data_recipe.get('dataset')} is empty")
    return ReportInputs(run_dir, ckpt_path, ck, metrics, profiles, exp_prof, str(export_profile),
                        out, split, lava_limit, timeout_s, x, y, status, allow_unfinished)


class _Progress:
    def __init__(self, verbose: bool):
        self.verbose, self.i = verbose, 0

    def stage(self, name: str, reused: bool, detail: str = "") -> None:
        self.i += 1
        if self.verbose:
            what = "reused" if reused else "computing"
            print(f"[{self.i}/{N_STAGES}] {name}: {what}{' ' + detail if detail else ''}",
                  flush=True)


def make_report(run_dir, out=None, *, profile_set: str = DEFAULTS["profile_set"],
                lava_limit: int = DEFAULTS["lava_limit"], split: str = DEFAULTS["split"],
                export_profile: str = DEFAULTS["export_profile"],
                timeout_s: float | None = None,
                allow_unfinished: bool = DEFAULTS["allow_unfinished"],
                progress: bool = True) -> dict:
    """Compute (or reuse) every stage and write the HTML report; return the report data
    (also written to RUN_DIR/report/report.json), with "html" = the page's path.

    profile_set: "all" or comma-separated profile names / .toml paths for the budgets.
    lava_limit: first N samples of the split run through Lava (0 = skip Lava).
    split: train | val | test. export_profile: the profile the network is exported for (always
    budgeted too). timeout_s: bound on the Lava run (s; default:
    lava_graph.graph.default_timeout_s). allow_unfinished: report on a training run that did
    not finish (trainer.run_status) instead of refusing it; the page says so."""
    inp = check_inputs(run_dir, out, profile_set=profile_set, lava_limit=lava_limit,
                       split=split, export_profile=export_profile, timeout_s=timeout_s,
                       allow_unfinished=allow_unfinished)
    folder = inp.run_dir / REPORT_DIR
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        return _make_report(inp, folder, progress)
    except BaseException:
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a failure before the first product leaves no empty folder
        raise


def _make_report(inp: ReportInputs, folder: Path, progress: bool) -> dict:
    from deployed.netx_h5 import load, save
    from export.to_lava import export_checkpoint
    from lava_runtime.budget.text import plot_budgets
    from lava_runtime.pipeline import DEFAULT_MAX_LOSS, budget_stage, emulator_stage, lava_stage
    from lava_runtime.report.html import render_html
    from lava_runtime.report.page import build_page

    cache = StageCache(folder)
    if cache.problem and progress:
        print(f"note: {cache.problem}")
    prog = _Progress(progress)
    ck_sha = sha256_file(inp.checkpoint_path)
    data_sha = sha256_arrays(inp.x, inp.y)
    base = {"stage_version": STAGE_VERSION, "checkpoint_sha256": ck_sha}

    # 1. export
    key = {**base, "profile": inp.export_profile.name,
           "profile_sha256": sha256_file(inp.export_profile.path),  # type: ignore[arg-type]
           "finished": None if inp.status is None else inp.status.finished,
           "max_loss": DEFAULT_MAX_LOSS}
    fresh = cache.fresh("export", key)
    prog.stage("export", fresh, f"to {inp.export_profile.name} -> {folder / 'net.h5'}")
    if fresh:
        net = load(folder / "net.h5")
        export_report = read_json(folder / "export.json")
    else:
        net, export_report = export_checkpoint(inp.checkpoint_path,
                                               profile=inp.export_profile_spec,
                                               evaluation=False, progress=progress,
                                               allow_unfinished=inp.allow_unfinished,
                                               max_loss=DEFAULT_MAX_LOSS)
        save(net, folder / "net.h5")
        write_json_atomic(export_report, folder / "export.json")
        cache.record("export", key, ["net.h5", "export.json"])
    net_sha = sha256_file(folder / "net.h5")

    # 2. float model: predictions on every sample of the split (the headline compares stages
    # on the same samples)
    key = {**base, "split": inp.split, "data_sha256": data_sha}
    fresh = cache.fresh("float", key)
    prog.stage("float model", fresh, f"trainer.evaluate.predict on the {inp.split} split")
    if fresh:
        float_acc = read_json(folder / "float.json")
    else:
        float_acc = _float_predictions(inp)
        write_json_atomic(float_acc, folder / "float.json")
        cache.record("float", key, ["float.json"])

    # 3. emulator (all samples); its Activity is computed at most once, when a stage needs it
    activity = {}

    def emulator_activity():
        if "act" not in activity:
            activity["act"], activity["summary"] = emulator_stage(net, inp.x, inp.y, inp.split,
                                                                  progress)
        return activity["act"]

    key = {"stage_version": STAGE_VERSION, "net_sha256": net_sha, "split": inp.split,
           "data_sha256": data_sha}
    fresh = cache.fresh("emulator", key)
    prog.stage("emulator", fresh, f"{len(inp.y)} samples of the {inp.split} split")
    if fresh:
        emu = read_json(folder / "emulator.json")
    else:
        emulator_activity()
        emu = activity["summary"]
        write_json_atomic(emu, folder / "emulator.json")
        cache.record("emulator", key, ["emulator.json"])

    # 4. Lava
    lava = None
    if inp.lava_limit == 0:
        prog.stage("Lava", False, "skipped (--lava-limit 0)")
    else:
        n = min(inp.lava_limit, len(inp.y))
        key = {"stage_version": STAGE_VERSION, "net_sha256": net_sha, "split": inp.split,
               "data_sha256": data_sha, "samples": n, "backend": "lava", "fast_models": True}
        fresh = cache.fresh("lava", key)
        prog.stage("Lava", fresh, f"first {n} samples, Loihi 2 simulator (fixed_pt)")
        if fresh:
            lava = read_json(folder / "lava.json")
        else:
            lava = lava_stage(net, emulator_activity(), inp.y, n, inp.split, inp.timeout_s,
                              progress)
            write_json_atomic(lava, folder / "lava.json")
            cache.record("lava", key, ["lava.json"])

    # 5. budgets
    key = {"stage_version": STAGE_VERSION, "net_sha256": net_sha, "split": inp.split,
           "data_sha256": data_sha,
           "profiles": [[p.name, sha256_file(p.path)] for p in inp.profiles]}  # type: ignore[arg-type]
    fresh = cache.fresh("budget", key)
    prog.stage("budget", fresh, ", ".join(p.name for p in inp.profiles))
    if fresh:
        budgets = read_json(folder / "budget.json")["profiles"]
    else:
        objs = budget_stage(net, emulator_activity(), inp.profiles)
        budgets = []
        for b, p in zip(objs, inp.profiles):
            d = b.to_json()
            d["energy_basis"] = sorted({f.basis for f in p.energy.values()})
            budgets.append(d)
        write_json_atomic({"split": inp.split, "profiles": budgets}, folder / "budget.json")
        plot_budgets(objs, folder / "budget.png")
        cache.record("budget", key, ["budget.json", "budget.png"])

    # 6. E/I analysis (trainer.analyze)
    from trainer.analyze import (
        DEFAULT_K,
        DEFAULT_NEURONS,
        DEFAULT_SEED,
        DEFAULT_SHUFFLES,
        INIT_CHECKPOINT_NAME,
        analyze,
    )

    init = inp.run_dir / INIT_CHECKPOINT_NAME
    key = {**base, "before_sha256": sha256_file(init) if init.is_file() else None,
           "k": DEFAULT_K, "n_shuffles": DEFAULT_SHUFFLES, "seed": DEFAULT_SEED,
           "n_neurons": DEFAULT_NEURONS}
    fresh = cache.fresh("analysis", key)
    prog.stage("E/I analysis", fresh, f"trainer.analyze -> {folder / 'analysis'}")
    if fresh:
        analysis = read_json(folder / "analysis" / "analysis.json")
    else:
        analysis = analyze(inp.run_dir, folder / "analysis", progress=progress)
        files = ["analysis/analysis.json"] + [f"analysis/{f}" for f in _analysis_files(analysis)]
        cache.record("analysis", key, files)

    figures = {"budget": (folder / "budget.png").read_bytes()}
    for name in _analysis_files(analysis):
        figures[f"analysis/{name}"] = (folder / "analysis" / name).read_bytes()
    m = inp.metrics or {}
    st = inp.status
    data = {
        "run_dir": str(inp.run_dir), "checkpoint_sha256": ck_sha, "net_sha256": net_sha,
        "status": None if st is None else {
            "finished": st.finished, "checkpoint_epoch": st.checkpoint_epoch,
            "epochs_planned": st.epochs_planned, "message": st.message},
        "split": inp.split, "config": inp.checkpoint.config,
        "data_recipe": inp.checkpoint.data_recipe, "class_names": inp.checkpoint.class_names,
        "epoch": inp.checkpoint.epoch, "val_accuracy": inp.checkpoint.val_accuracy,
        "metrics": {k: v for k, v in m.items() if k != "history"},
        "export": export_report,
        "float": {k: v for k, v in float_acc.items() if not k.startswith("predictions")},
        "emulator": {k: v for k, v in emu.items() if k != "predictions"},
        "same_samples": same_samples(inp.y, float_acc, emu, lava, inp.split),
        "lava": lava, "lava_limit": inp.lava_limit, "budgets": budgets, "analysis": analysis,
    }
    page = build_page(data, figures)
    write_bytes_atomic(render_html(page).encode("utf-8"), inp.out)
    write_json_atomic({**data, "html": str(inp.out)}, folder / "report.json")
    if progress:
        print(f"wrote {inp.out} ({inp.out.stat().st_size / 1e3:.0f} kB, "
              f"{len(figures)} figures); intermediate files in {folder}")
    return {**data, "html": str(inp.out)}


def _float_predictions(inp: ReportInputs) -> dict:
    """The float model's class per sample of the split, with integer delays (what export
    deploys) and with the training kernels (the same unless dcls), and its accuracies."""
    import torch

    from trainer.checkpoint import load_checkpoint_dict
    from trainer.evaluate import has_train_kernels, model_from_checkpoint, predict

    ck = load_checkpoint_dict(inp.checkpoint_path)
    model = model_from_checkpoint(ck)
    x = torch.from_numpy(inp.x)
    hard = predict(model, x, hard=True).numpy()
    soft = predict(model, x, hard=False).numpy() if has_train_kernels(ck["config"]) else hard
    return {"source": "trainer.evaluate.predict", "split": inp.split, "n_samples": len(inp.y),
            "accuracy": float(np.mean(hard == inp.y)),
            "accuracy_train_kernels": float(np.mean(soft == inp.y)),
            "predictions": hard.astype(int).tolist(),
            "predictions_train_kernels": soft.astype(int).tolist()}


def same_samples(y: np.ndarray, float_acc: dict, emu: dict, lava: dict | None,
                 split: str) -> dict:
    """Accuracy (0..1) of every stage on the same samples: the first n of the split that Lava
    ran, or all of them when Lava was skipped."""
    n = len(y) if lava is None else lava["samples"]

    def acc(pred) -> float:
        return float(np.mean(np.asarray(pred[:n]) == y[:n]))

    return {"samples": n, "of": len(y), "split": split, "float": acc(float_acc["predictions"]),
            "float_train_kernels": acc(float_acc["predictions_train_kernels"]),
            "emulator": acc(emu["predictions"]),
            "lava": None if lava is None else lava["accuracy"]}


def _analysis_files(analysis: dict) -> list[str]:
    """PNG names (relative to the analysis folder) listed in analysis.json, in page order."""
    f = analysis["files"]
    names = []
    for layer, name in f["receptive_fields"].items():
        names.append(name)
        if layer in f.get("receptive_fields_before", {}):
            names.append(f["receptive_fields_before"][layer])
    names += [f["ei_clustering"], f["delay_histograms"], f["connections_per_delay"]]
    return names


def add_parser(subparsers) -> argparse.ArgumentParser:
    from delaysnn.options import HelpFormatter, add_deprecated, description

    p = subparsers.add_parser("report", help="one self-contained HTML page about a trained run",
                              description=description(__doc__), formatter_class=HelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR|NET",
                   help="trainer run folder (checkpoint.pt, metrics.json); with --spikes, an "
                        "exported network (NET.h5, or a folder holding net.h5)")
    p.add_argument("--out", default=None, metavar="FILE.html",
                   help=f"HTML file to write (default RUN_DIR/{HTML_NAME}; with --spikes "
                        "NET_report.html beside NET.h5)")
    profile = p.add_argument("--profile", default=None,
                             dest="export_profile", metavar="PROFILE",
                             help="hardware profile the network is exported for (default: "
                                  f"{DEFAULTS['export_profile']}; with --spikes, the profile "
                                  "whose energy heads the page, default the one NET was "
                                  "exported for)")
    profiles = p.add_argument("--profiles", default=DEFAULTS["profile_set"], dest="profile_set",
                              metavar="LIST",
                              help="profiles the budget compares: all or a comma-separated "
                                   "list, e.g. loihi2,gpu")
    limit = p.add_argument("--limit", type=int, default=DEFAULTS["lava_limit"], metavar="N",
                           dest="lava_limit",
                           help="first N samples run through Lava (0 skips Lava; the emulator "
                                "runs the whole split)")
    p.add_argument("--split", default=None, choices=list(SPLITS),
                   help=f"dataset split (default: {DEFAULTS['split']}; not with --spikes)")
    p.add_argument("--spikes", default=None, metavar="EVENTS.npy",
                   help="report on NET run on these input spikes instead of a training run: "
                        "an (N, T, C) array of 0/1 spikes or graded payloads, as `run "
                        "--spikes` (default: none, RUN_DIR is a training run)")
    p.add_argument("--labels", default=None, metavar="LABELS.npy",
                   help="class index per sample of --spikes (default: no labels: the page "
                        "shows how often Lava and the emulator agree instead of accuracy)")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="report on a training run that did not finish (no metrics.json): the "
                        "page says so and shows the checkpoint's epoch (default: refuse, "
                        "printing the command that resumes it)")
    p.add_argument("--timeout", type=float, default=None,
                   help="bound on the Lava run (s) (default: scales with the step count)")
    add_deprecated(p, "--export-profile", profile)
    add_deprecated(p, "--profile-set", profiles)
    add_deprecated(p, "--lava-limit", limit)
    p.set_defaults(func=main)
    return p


def report_options(args: argparse.Namespace) -> dict:
    """make_report's keyword arguments from the parsed command line (without --spikes): the
    options left out take make_report's defaults."""
    return {"profile_set": args.profile_set, "lava_limit": args.lava_limit,
            "split": args.split or DEFAULTS["split"],
            "export_profile": args.export_profile or DEFAULTS["export_profile"]}


def main(args: argparse.Namespace) -> int:
    if args.export_profile == "all":
        raise ValueError("--profile is the one profile the network is exported for; "
                         "--profiles all budgets it on every profile")
    t0 = time.perf_counter()
    if args.spikes is not None:
        from lava_runtime.report.spikes import make_spikes_report

        for flag, given in (("--split", args.split is not None),
                            ("--allow-unfinished", args.allow_unfinished)):
            if given:
                raise ValueError(f"{flag} is about a training run; with --spikes the report "
                                 "is about NET on the given spikes: leave it out")
        make_spikes_report(args.run_dir, args.spikes, args.labels, args.out,
                           profile_set=args.profile_set, lava_limit=args.lava_limit,
                           profile=args.export_profile, timeout_s=args.timeout)
    else:
        if args.labels is not None:
            raise ValueError("--labels goes with --spikes (a training run brings its own "
                             "labels)")
        make_report(args.run_dir, args.out, **report_options(args), timeout_s=args.timeout,
                    allow_unfinished=args.allow_unfinished)
    print(f"report done in {time.perf_counter() - t0:.0f} s")
    return 0
