"""Export a trained checkpoint to Lava: fold BatchNorm, quantize, check the hardware profile,
write netx HDF5, report.

    python -m export.to_lava RUN_DIR_OR_CHECKPOINT --profile loihi2 --out net.h5 [--json REPORT]

is a thin layer over `export_checkpoint(path, profile="loihi2") -> (DeployedNetwork, report)`
and `deployed.netx_h5.save`. Steps (see export.quantize for the fixed-point choices):
1. read the checkpoint; check its structure against the profile (delays, graded-spike width,
   fan-in/out, core memory, cores): any violation raises ProfileViolation listing all of them;
2. calibration features (the training set, from the checkpoint's data recipe, or passed in):
   input scale so the largest feature maps to the top payload; a float simulation gives the
   current and voltage ranges that fix each layer's scale;
3. quantize, then check the bit widths against the profile (again ProfileViolation);
4. accuracy on evaluation data: the float model (export.float_reference) and the integer
   network (deployed.emulator, bit-exact to the Lava graph; every layer runs on the float
   model's aligned time axis from zero state, see its module docstring).
Nothing is written unless every check passes.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from deployed import netx_h5
from deployed.limits import check_numeric, check_structure, usage
from deployed.network import DeployedNetwork
from export.errors import ExportError, ProfileViolation
from export.float_reference import simulate_float
from export.quantize import QuantSettings, choose_input_encoding, quantize
from export.report import NETX_WARNING, build_layer_summary, format_report
from trainer.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from trainer.file_io import sha256_file, write_json_atomic

EXPORTER = "delaysnn export.to_lava 1"


def _subsample(n: int, k: int | None) -> np.ndarray:
    """k evenly spaced indices of range(n) (all when k is None or >= n), deterministic."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def _recipe_data(ck: Checkpoint, split: str, cache_dir=None):
    try:
        from trainer.data import dataset_from_recipe
        ds = dataset_from_recipe(ck.data_recipe, split, cache_dir=cache_dir)
    except Exception as e:  # noqa: BLE001 - any data failure becomes one clear export error
        raise ExportError(f"cannot rebuild the {split!r} features from the checkpoint's "
                          f"data_recipe ({type(e).__name__}: {e}); pass calibration/evaluation "
                          "data explicitly or fix the data folder") from e
    return ds.x.numpy(), ds.y.numpy()


def _as_xy(data, what: str, n_channels: int):
    if isinstance(data, tuple):
        x, y = data
    else:
        x, y = data, None
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    if y is not None:
        y = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
    if x.ndim != 3 or x.shape[-1] != n_channels or x.shape[0] == 0:
        raise ExportError(f"{what} features must be (N > 0, T, {n_channels}), got {x.shape}")
    return x.astype(np.float64), y


def export_checkpoint(path: str | Path, profile: str = "loihi2", *, num_message_bits: int = 8,
                      headroom: float = 2.0, calibration=None, evaluation=None,
                      eval_split: str = "val", max_calibration: int | None = 512,
                      max_eval: int | None = None, cache_dir=None, progress: bool = False,
                      netx_exact: bool = False,
                      allow_unfinished: bool = False) -> tuple[DeployedNetwork, dict]:
    """Checkpoint (run folder or .pt) -> (DeployedNetwork, report dict).

    calibration / evaluation: features (N, T, C) or (features, labels); None = rebuild the
    training / `eval_split` split from the checkpoint's data recipe (evaluation=False skips the
    accuracy section). netx_exact: restrict weight_exp to what netx can express (see
    export.quantize), at the cost of weight precision in the graded-input layer.
    allow_unfinished: export a training run that did not finish (no metrics.json,
    trainer.run_status) instead of raising ExportError; the report's "checkpoint" records
    "finished" (None: not a training run folder) and a warning. Raises ProfileViolation
    (listing every violation) or ExportError."""
    training = training_state(path, allow_unfinished)
    ck_path = resolve_checkpoint_path(path)
    ck = load_checkpoint(ck_path)
    sha = sha256_file(ck_path)
    provenance = checkpoint_provenance(ck, sha)
    source = {"path": str(ck_path), "sha256": sha, "epoch": ck.epoch,
              "val_accuracy": ck.val_accuracy, "finished": training["finished"],
              "epochs_planned": training["epochs_planned"]}
    net, report = export_loaded(ck, profile, provenance=provenance, source=source,
                                num_message_bits=num_message_bits, headroom=headroom,
                                calibration=calibration, evaluation=evaluation,
                                eval_split=eval_split, max_calibration=max_calibration,
                                max_eval=max_eval, cache_dir=cache_dir, progress=progress,
                                netx_exact=netx_exact)
    if training["finished"] is False:
        report["warnings"].append(f"{training['message']}; exported anyway (allow_unfinished)")
    return net, report


def training_state(path: str | Path, allow_unfinished: bool = False) -> dict:
    """{"finished", "epochs_planned", "message"} of the training run `path` is or belongs to
    (all None when it is no training run folder, e.g. export.qat's output). An unfinished run
    raises ExportError saying how to resume it, unless `allow_unfinished`."""
    from trainer.run_status import run_status, training_run_dir

    run = training_run_dir(path)
    if run is None:
        return {"finished": None, "epochs_planned": None, "message": None}
    st = run_status(run)
    if not st.finished and not allow_unfinished:
        raise ExportError(f"{st.message}; or pass --allow-unfinished to export its checkpoint "
                          f"(epoch {st.checkpoint_epoch}) anyway")
    return {"finished": st.finished, "epochs_planned": st.epochs_planned, "message": st.message}


def checkpoint_provenance(ck: Checkpoint, sha256: str) -> dict:
    """The deployed network's meta for a checkpoint (before export options are added)."""
    return {"exporter": EXPORTER, "checkpoint_sha256": sha256,
            "checkpoint_epoch": ck.epoch, "checkpoint_val_accuracy": ck.val_accuracy,
            "config": ck.config, "data_recipe": ck.data_recipe}


def export_loaded(ck: Checkpoint, profile: str = "loihi2", *, provenance: dict, source: dict,
                  num_message_bits: int = 8, headroom: float = 2.0, calibration=None,
                  evaluation=None, eval_split: str = "val", max_calibration: int | None = 512,
                  max_eval: int | None = None, cache_dir=None, progress: bool = False,
                  netx_exact: bool = False) -> tuple[DeployedNetwork, dict]:
    """Everything after reading: an in-memory Checkpoint (from a checkpoint file or from
    export.from_nir) -> (DeployedNetwork, report). `provenance` becomes the network's meta
    (plus "export_options"); `source` ({path, sha256, epoch, val_accuracy}) heads the report.
    Other arguments as export_checkpoint."""
    from hw_profiles import load_profile

    prof = load_profile(profile)
    if headroom < 1:
        raise ExportError(f"headroom must be >= 1 (a safety factor on measured ranges), "
                          f"got {headroom}")
    qs = QuantSettings.from_profile(prof, num_message_bits, headroom, netx_exact)

    viol, mapping = check_structure(ck.layers, prof, num_message_bits=num_message_bits,
                                    weight_bits=qs.weight_bits)
    if viol:
        raise ProfileViolation(prof.name, viol)

    if calibration is None:
        x_cal, _ = _recipe_data(ck, "train", cache_dir)
    else:
        x_cal, _ = _as_xy(calibration, "calibration", ck.n_channels)
    x_cal = x_cal[_subsample(len(x_cal), max_calibration)]
    if ck.time_steps is not None and x_cal.shape[1] != ck.time_steps:
        raise ExportError(f"calibration features have {x_cal.shape[1]} steps but the checkpoint "
                          f"was trained on {ck.time_steps}")
    enc, enc_info = choose_input_encoding(ck, x_cal, num_message_bits)
    calib = simulate_float(ck, x_cal)
    meta = {**provenance,
            "export_options": {"num_message_bits": num_message_bits, "headroom": headroom,
                               "netx_exact": netx_exact,
                               "calibration_samples": int(len(x_cal))}}
    net, qinfo = quantize(ck, enc, calib, qs, prof.name, prof.version, meta)
    num_viol = check_numeric(net, prof)
    if num_viol:
        raise ProfileViolation(prof.name, num_viol)
    # readout: by construction |v| <= vth_max / headroom on the calibration set; check it
    r_info = qinfo[-1]
    r_lim = max(abs(r_info["calibration"]["max_v"]), abs(r_info["calibration"]["min_v"]))
    if r_lim * r_info["scale"] > net.readout.neurons.vth:
        raise ExportError("internal: readout voltage range exceeds vth after scaling")
    net.meta["layer_scales"] = [q["scale"] for q in qinfo]
    problems = netx_h5.netx_problems(net)
    net.meta["netx_complete"] = not problems

    report: dict = {
        "checkpoint": dict(source),
        "profile": {"name": prof.name, "version": prof.version},
        "latency_steps": net.latency,
        "steps_per_sample": enc.time_steps + net.latency,
        "input_encoding": enc_info,
        "layers": [build_layer_summary(L, q) for L, q in zip(net.layers, qinfo)],
        "profile_check": {"violations": [], "usage": usage(ck.layers, mapping)},
        "netx": {"complete": not problems, "problems": problems},
        "warnings": [],
    }
    if problems:
        report["warnings"].append(NETX_WARNING)
    if enc_info["fraction_negative_features_clipped"] > 0:
        report["warnings"].append(
            f"{100 * enc_info['fraction_negative_features_clipped']:.2f}% of calibration "
            "features are negative and become payload 0")
    if evaluation is not False:
        if evaluation is None:
            x_ev, y_ev = _recipe_data(ck, eval_split, cache_dir)
            data_name = f"{ck.data_recipe.get('dataset', '?')} {eval_split} split"
        else:
            x_ev, y_ev = _as_xy(evaluation, "evaluation", ck.n_channels)
            data_name = "evaluation data passed in"
        idx = _subsample(len(x_ev), max_eval)
        x_ev = x_ev[idx]
        y_ev = None if y_ev is None else y_ev[idx]
        report["accuracy"] = evaluate(ck, net, x_ev, y_ev, data_name, progress=progress)
        if not report["accuracy"]["readout_check"]["ok"]:
            report["warnings"].append("the readout voltage exceeded vth << 6 on evaluation data: "
                                      "the readout would spike; raise --headroom")
    return net, report


def evaluate(ck: Checkpoint, net: DeployedNetwork, x: np.ndarray, y: np.ndarray | None,
             data_name: str, progress: bool = False) -> dict:
    """Float vs quantized predictions on (x, y): accuracies (when labels are given) and
    agreement. The quantized network runs in deployed.emulator for T + latency steps; its
    readout at window steps latency..latency+T-1 is the float model's steps 0..T-1."""
    from deployed.emulator import emulate

    fr = simulate_float(ck, x)
    pay = net.input.encode(x)
    act = emulate(net, pay, progress=progress)
    q_pred = act.predictions(net)
    f_pred = fr.predictions()
    limit = int(net.readout.neurons.vth) << 6
    max_v = int(np.abs(act.readout_v).max()) if act.readout_v.size else 0
    out = {"samples": int(len(x)), "data": data_name,
           "quantized_backend": "deployed.emulator (bit-exact fixed_pt, aligned per-layer "
                                "reset, T + latency steps)",
           "agreement_with_float": float(np.mean(q_pred == f_pred)),
           "readout_check": {"max_abs_v": max_v, "limit": limit, "ok": max_v <= limit}}
    if y is not None:
        out["float"] = float(np.mean(f_pred == y))
        out["quantized"] = float(np.mean(q_pred == y))
    else:
        out["float"] = out["quantized"] = float("nan")
    return out


def add_export_options(ap: argparse.ArgumentParser) -> None:
    """The options every export command shares (to_lava, from_nir)."""
    ap.add_argument("--profile", default="loihi2", help="hardware profile name or .toml path")
    ap.add_argument("--out", required=True, metavar="NET.h5",
                    help="HDF5 file to write (netx + delaysnn groups); required, no default")
    ap.add_argument("--json", default=None, metavar="FILE.json",
                    help="also write the report as JSON here (default: not written)")
    ap.add_argument("--num-message-bits", type=int, default=8, help="graded input payload bits")
    ap.add_argument("--headroom", type=float, default=2.0,
                    help="safety factor on measured current/voltage ranges")
    ap.add_argument("--eval-split", default="val", help="split for the accuracy report")
    ap.add_argument("--max-eval", type=int, default=None,
                    help="evaluate on at most N samples (default: the whole split)")
    ap.add_argument("--max-calibration", type=int, default=512,
                    help="calibrate on at most N training samples")
    ap.add_argument("--no-eval", action="store_true", help="skip the accuracy section")
    ap.add_argument("--netx-exact", action="store_true",
                    help="only weight exponents netx can express, so lava-dl's netx reads the "
                         "file exactly (less weight precision in the graded-input layer); "
                         "this project's Lava graph and emulator are exact either way")


def outputs_have_folders(*paths) -> bool:
    """True when every given output path (None = not asked for) lies in an existing folder;
    otherwise print the one-line error for the first that does not."""
    for p in (Path(p) for p in paths if p):
        if not p.parent.is_dir():
            print(f"error: output folder {p.parent} does not exist", file=sys.stderr)
            return False
    return True


def build_parser(prog: str = "python -m export.to_lava") -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser(prog, __doc__)
    ap.add_argument("checkpoint", help="run folder (with checkpoint.pt) or checkpoint file")
    add_export_options(ap)
    ap.add_argument("--allow-unfinished", action="store_true",
                    help="export a training run that did not finish (no metrics.json) instead "
                         "of refusing it; the report records finished: false (default: refuse)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    out = Path(a.out)
    if not outputs_have_folders(out, a.json):
        return 2
    try:
        with warnings.catch_warnings():
            net, report = export_checkpoint(
                a.checkpoint, a.profile, num_message_bits=a.num_message_bits,
                headroom=a.headroom, evaluation=False if a.no_eval else None,
                eval_split=a.eval_split, max_eval=a.max_eval, max_calibration=a.max_calibration,
                progress=True, netx_exact=a.netx_exact, allow_unfinished=a.allow_unfinished)
        netx_h5.save(net, out)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report["output"] = str(out)
    print(format_report(report))
    if a.json:
        write_json_atomic(report, Path(a.json), sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
