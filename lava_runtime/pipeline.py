"""One pipeline: trained run -> export -> emulate -> optional Lava -> budgets.

    d = deploy("runs/x", profile="loihi2", split="test", lava_limit=100)
    d.net, d.export_report, d.emulator, d.lava, d.budgets, d.activity

The split is emulated once (all samples); the Lava run is compared against that emulator
activity's first samples and the budgets read it too. The export holds a fidelity bound by
default (DEFAULT_MAX_LOSS = 0.5 points of float minus fixed-point accuracy on the validation
split; export.fidelity): above it, deploy repairs the network or raises ExportError saying so
with both accuracies; `max_loss=None` switches the bound off, `allow_loss=True` deploys the
best network found anyway (its export report says so). The demo, the report (stage by stage, with
its cache), the sweep and the showcase all go through these functions; `python -m export.to_lava`
and `python -m lava_runtime run|budget` run the same stages one at a time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deployed.activity import Activity, first, outputs_match
from deployed.network import DeployedNetwork
from export.fidelity import DEFAULT_MAX_LOSS, DEFAULT_QAT_EPOCHS


@dataclass
class Deployment:
    """What `deploy` produced: the network, its export report, the evaluated split's labels,
    the emulator activity and summaries, the Lava summary (None when skipped) and the budgets."""

    net: DeployedNetwork
    export_report: dict
    y: np.ndarray  # (N,) labels of the split
    activity: Activity  # emulator, every sample of the split
    emulator: dict
    lava: dict | None
    budgets: list  # lava_runtime.budget.estimate.Budget, one per profile
    seconds: dict  # wall seconds per stage: export, emulator, lava, budget


def network_dataset(net, dataset: str | None = None, net_path=None) -> str:
    """`dataset`, or when None the dataset `net` was trained on (net.meta["data_recipe"]
    ["dataset"], written at export). A network whose recipe names none (e.g. one imported from
    NIR with --features) needs the name: ValueError saying to pass --dataset."""
    if dataset is not None:
        return dataset
    name = (net.meta.get("data_recipe") or {}).get("dataset")
    if not name:
        from trainer.data import DATASETS

        raise ValueError(f"{net_path or 'the network'} does not record the dataset it was "
                         f"trained on; pass --dataset NAME ({', '.join(DATASETS)})")
    return str(name)


def load_features(net, dataset: str | None = None, split: str = "test", data_dir=None,
                  limit: int | None = None):
    """(x (N, T, C) float32 numpy, y (N,) int64) for `net`: trainer.data.load_dataset with the
    feature recipe stored at export (net.meta["data_recipe"]: seed, n_mels, options...) when it
    names the same dataset; otherwise with the network's channel and step counts. dataset:
    None = the one the network was trained on (network_dataset). Audio always goes through the
    network's own front end (recipe["frontend"]: Mel bands, frames and the sample rate it was
    trained at; other rates are resampled to it)."""
    from trainer.data import load_dataset, source_has_frontend

    dataset = network_dataset(net, dataset)
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


def _load_npy(path: Path, flag: str, what: str) -> np.ndarray:
    """np.load of a .npy file (no pickles), or ValueError in one line naming it."""
    if not path.is_file():
        raise ValueError(f"{flag} file {path} does not exist; pass {what} saved with numpy.save")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise ValueError(f"{flag} file {path} is not a .npy file (no NumPy header); save {what} "
                         "with numpy.save")
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        why = " ".join(str(e).split())
        raise ValueError(f"{flag} file {path} is not a .npy array ({why}); save {what} with "
                         "numpy.save") from None
    return a


def _integral(a: np.ndarray) -> np.ndarray | None:
    """`a` as int64 when every value is a whole number (bool, integer, or float like 1.0),
    else None."""
    if a.dtype == bool or np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) \
            and np.all(a == np.round(a)):
        return a.astype(np.int64)
    return None


def load_spikes(net, path, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Input spikes for `net` from EVENTS.npy (`--spikes`), and labels from LABELS.npy
    (`--labels`, optional): (payloads int64 (N, net.input.time_steps, C), labels int64 (N,) or
    None). They bypass InputEncoding.encode: the values are the payloads sent.

    EVENTS.npy: one (N, T, C) array (samples, steps, channels), C = net.input.n_channels,
    1 <= T <= net.input.time_steps (shorter samples get zero steps, silence, at the end;
    longer ones are refused: convert the network for T steps). Values are whole numbers
    (bool, integers, or floats such as 1.0; 0.5 is refused), binary 0/1 for a network whose
    input takes binary spikes (input message bits 0), else graded payloads 0..2^bits - 1.
    LABELS.npy: N whole numbers in 0..n_classes - 1. Anything else raises ValueError in one
    line naming the file, before any work."""
    path = Path(path)
    a = _load_npy(path, "--spikes", "an (N, T, C) array of input spikes")
    T, C = net.input.time_steps, net.input.n_channels
    bits = net.layers[0].input_message_bits
    where = f"--spikes file {path}"
    if a.ndim != 3:
        raise ValueError(f"{where} holds an array of shape {a.shape}; expected (N, T, C): "
                         f"samples, steps, channels")
    n, t, c = a.shape
    if n == 0 or t == 0:
        raise ValueError(f"{where} holds no {'samples' if n == 0 else 'steps'} (shape {a.shape})")
    if c != C:
        raise ValueError(f"{where} has {c} channels (shape {a.shape}); the network expects {C} "
                         f"input channels, so pass an (N, T, {C}) array")
    if t > T:
        raise ValueError(f"{where} has {t} steps per sample; the network runs {T} (convert it "
                         f"for {t}, e.g. python -m export.from_netx NET --time-steps {t}, or cut "
                         f"the samples)")
    p = _integral(a)
    if p is None:
        at = ""
        if np.issubdtype(a.dtype, np.floating):
            i, j, k = (int(v[0]) for v in np.nonzero(~np.isfinite(a) | (a != np.round(a))))
            at = f" that are not whole numbers (e.g. {a[i, j, k]} at sample {i}, step {j}, " \
                 f"channel {k})"
        raise ValueError(f"{where} holds {a.dtype} values{at}; input spikes are integer "
                         "payloads: 0/1 spikes or graded values")
    hi = 2 ** bits - 1 if bits > 0 else 1
    if p.min() < 0 or p.max() > hi:
        what = "binary spikes (0 or 1)" if bits == 0 else f"{bits}-bit payloads (0..{hi})"
        raise ValueError(f"{where} holds values {int(p.min())}..{int(p.max())}; the network's "
                         f"input takes {what}")
    y = None
    if labels is not None:
        lpath = Path(labels)
        lab = _load_npy(lpath, "--labels", "one class index per sample")
        yi = _integral(lab)
        k = len(net.class_names)
        if lab.shape != (n,):
            raise ValueError(f"--labels file {lpath} holds shape {lab.shape}; expected ({n},), "
                             f"one label per sample of {path}")
        if yi is None or yi.min() < 0 or yi.max() >= k:
            raise ValueError(f"--labels file {lpath} must hold class indices 0..{k - 1} (the "
                             f"network has {k} outputs)")
        y = yi
    if t < T:
        p = np.concatenate([p, np.zeros((n, T - t, c), dtype=np.int64)], axis=1)
    return p, y


def check_spikes_options(spikes, labels, dataset=None, data_dir=None, split=None) -> None:
    """--spikes replaces the dataset: refuse --dataset, --data-dir and --split with it, and
    --labels without it."""
    given = [f for f, v in (("--dataset", dataset), ("--data-dir", data_dir),
                            ("--split", split)) if v is not None]
    if spikes is not None and given:
        raise ValueError(f"--spikes gives the input samples, {' and '.join(given)} a "
                         "dataset's: pass one or the other")
    if labels is not None and spikes is None:
        raise ValueError("--labels goes with --spikes (a dataset brings its own labels)")


def check_limit(limit) -> None:
    """--limit: None or a positive integer."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"--limit must be a positive integer, got {limit!r}")


NET_FILE = "net.h5"  # the exported network inside a run, demo or showcase folder
REPORT_NET = Path("report") / NET_FILE  # where `lava_runtime report RUN` exports RUN


def check_net_path(net_path) -> Path:
    """An existing exported network file, or a folder that holds one as net.h5 (a run folder
    exported with `--out RUN/net.h5`, a demo or showcase folder): the file's path."""
    net_path = Path(net_path)
    if net_path.is_dir():
        if (net_path / NET_FILE).is_file():
            return net_path / NET_FILE
        hint = ""
        if (net_path / REPORT_NET).is_file():
            hint = f" (the report's export is {net_path / REPORT_NET}: pass that file)"
        elif (net_path / "checkpoint.pt").is_file():
            hint = (f" (a trained run: export it first, python -m export.to_lava {net_path} "
                    f"--out {net_path / NET_FILE})")
        raise ValueError(f"folder {net_path} holds no {NET_FILE}{hint}; pass an exported "
                         f"network file (NET.h5) or a folder holding {NET_FILE}")
    if not net_path.is_file():
        raise ValueError(f"network file {net_path} does not exist (export one with "
                         f"python -m export.to_lava; a folder holding {NET_FILE} also works)")
    return net_path


def emulator_stage(net, x: np.ndarray, y: np.ndarray, split: str = "test",
                   progress: bool = False) -> tuple[Activity, dict]:
    """Emulate every sample once; (activity, summary with accuracy and predictions)."""
    from deployed.emulator import emulate

    act = emulate(net, net.input.encode(x), progress=progress, desc=f"emulate {split} split")
    pred = act.predictions(net)
    n = act.n_samples
    return act, {"backend": "emulator", "split": split, "samples": n,
                 "accuracy": float(np.mean(pred == y)), "seconds": act.seconds,
                 "spikes_per_sample_per_layer": [c / n for c in act.spike_counts()],
                 "steps_per_sample": int(act.readout_v.shape[1]),
                 "predictions": pred.astype(int).tolist()}


def lava_stage(net, emulated: Activity, y: np.ndarray, n: int, split: str = "test",
               timeout_s: float | None = None, progress: bool = False) -> dict:
    """Run the first n samples in Lava (Loihi 2 simulator, fixed_pt) and compare spikes and
    voltages with the emulator's activity of the same samples."""
    from lava_runtime.lava_graph.graph import run_network

    act = run_network(net, emulated.input_payload[:n], "lava", timeout_s=timeout_s,
                      progress=progress)
    ref = first(emulated, n)
    pred, ref_pred = act.predictions(net), ref.predictions(net)
    return {"backend": "lava", "split": split, "samples": n,
            "accuracy": float(np.mean(pred == y[:n])),
            "emulator_accuracy_same_samples": float(np.mean(ref_pred == y[:n])),
            "exact_match_fraction": float(outputs_match(act, ref).mean()),
            "prediction_agreement": float(np.mean(pred == ref_pred)),
            "seconds": act.seconds,
            "steps_per_second": act.extra.get("steps_per_second"),
            "lava_startup_seconds": act.extra.get("lava_startup_seconds")}


def budget_stage(net, activity: Activity, profiles) -> list:
    """One Budget per profile (names or hw_profiles.Profile) from the recorded activity."""
    from hw_profiles import load_profile
    from lava_runtime.budget.estimate import compare

    return compare(net, activity, [load_profile(p) if isinstance(p, str) else p
                                   for p in profiles])


def deploy(run_dir, profile: str = "loihi2", *, split: str = "test", lava_limit: int | None = 0,
           budget_profiles=None, net_path=None, timeout_s: float | None = None,
           progress: bool = False, allow_unfinished: bool = False,
           max_loss: float | None = DEFAULT_MAX_LOSS, qat_epochs: int = DEFAULT_QAT_EPOCHS,
           allow_loss: bool = False, **export_options) -> Deployment:
    """Export the run (export.to_lava.export_checkpoint; `export_options` pass through, e.g.
    calibration or eval_split), save it to `net_path` when given, emulate `split` once, run its
    first `lava_limit` samples in Lava (0 = skip, None = all) and budget it on `budget_profiles`
    (default: the export profile). progress: one line per stage, and progress bars.
    allow_unfinished: deploy a training run that did not finish (no metrics.json) instead of
    raising ExportError (as export_checkpoint; the export report then says "finished": false).
    max_loss (points; None = no bound), qat_epochs, allow_loss: the fidelity bound of
    export_checkpoint (export.fidelity), measured on the run's validation split."""
    from deployed.netx_h5 import save
    from export.to_lava import export_checkpoint
    from trainer.data import dataset_from_recipe

    seconds: dict[str, float] = {}

    def timed(name, what, fn, *args):
        if progress:
            print(f"  {what}")
        t0 = time.perf_counter()
        out = fn(*args)
        seconds[name] = time.perf_counter() - t0
        return out

    checked = export_options.get("evaluation", False) is not False
    what = f"export to {profile}" + (
        f", checking its accuracy on the {export_options.get('eval_split', 'val')} split (float "
        "model and emulator)" if checked else "")
    net, report = timed("export", what, lambda: export_checkpoint(
        run_dir, profile, **{"evaluation": False, "progress": progress,
                             "allow_unfinished": allow_unfinished, "max_loss": max_loss,
                             "qat_epochs": qat_epochs, "allow_loss": allow_loss,
                             **export_options}))
    if net_path is not None:
        save(net, net_path)
    data = dataset_from_recipe(net.meta["data_recipe"], split)
    x, y = data.x.numpy(), data.y.numpy()
    act, emu = timed("emulator", f"emulate the {split} split ({len(y)} samples)",
                     emulator_stage, net, x, y, split, progress)
    n_lava = len(y) if lava_limit is None else min(lava_limit, len(y))
    lava = timed("lava", f"Lava (Loihi 2 simulator, fixed_pt): first {n_lava} samples, "
                 "compared with the emulator", lava_stage, net, act, y, n_lava, split,
                 timeout_s, progress) if n_lava else None
    profiles = budget_profiles or [profile]
    budgets = timed("budget", "budget on " + ", ".join(getattr(p, "name", p) for p in profiles),
                    budget_stage, net, act, profiles)
    return Deployment(net, report, y, act, emu, lava, budgets, seconds)
