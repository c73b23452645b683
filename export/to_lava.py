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
Nothing is written unless every check passes. Steps 1-4 for an in-memory checkpoint are
export.build_network.export_loaded.

--max-loss POINTS (export_checkpoint(max_loss=...); default: no bound, the export above) bounds
the float minus fixed-point accuracy on the validation split: above it, export.fidelity tries
per-layer scales, then keeping synapses that round to zero, then quantization-aware
fine-tuning for up to --qat-epochs epochs; if the bound still fails, the export says so with
both accuracies and exits 2 without writing, unless --allow-loss (it then writes the best
network found). lava_runtime.pipeline.deploy uses a bound of 0.5 points by default.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from deployed import netx_h5
from deployed.network import DeployedNetwork
from export.build_network import export_loaded
from export.errors import ExportError
from export.fidelity import (
    DEFAULT_QAT_EPOCHS,
    DEFAULT_QAT_LR,
    check_bound_options,
    parse_max_loss,
)
from export.report import format_report
from trainer.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from trainer.file_io import sha256_file, write_json_atomic

EXPORTER = "delaysnn export.to_lava 1"


def export_checkpoint(path: str | Path, profile: str = "loihi2", *, num_message_bits: int = 8,
                      headroom: float = 2.0, calibration=None, evaluation=None,
                      eval_split: str = "val", max_calibration: int | None = 512,
                      max_eval: int | None = None, cache_dir=None, progress: bool = False,
                      netx_exact: bool = False, neuron_exponents: bool = False,
                      allow_unfinished: bool = False, max_loss: float | None = None,
                      qat_epochs: int = DEFAULT_QAT_EPOCHS, qat_lr: float = DEFAULT_QAT_LR,
                      allow_loss: bool = False, validation=None,
                      training=None) -> tuple[DeployedNetwork, dict]:
    """Checkpoint (run folder or .pt) -> (DeployedNetwork, report dict).

    calibration / evaluation: features (N, T, C) or (features, labels); None = rebuild the
    training / `eval_split` split from the checkpoint's data recipe (evaluation=False skips the
    accuracy section). netx_exact: restrict weight_exp to what netx can express (see
    export.quantize), at the cost of weight precision in the graded-input layer.
    neuron_exponents: give every neuron its own weight exponent from the start (export.quantize;
    the bound's first remedy made the rule; the netx part of the file is then approximate).
    allow_unfinished: export a training run that did not finish (no metrics.json,
    trainer.run_status) instead of raising ExportError; the report's "checkpoint" records
    "finished" (None: not a training run folder) and a warning.
    max_loss: the fidelity bound in accuracy points (float minus fixed point on the validation
    split); None = no bound (this export as it always was). qat_epochs, qat_lr, allow_loss,
    validation ((features, labels); None = the recipe's val split) and training (for the
    fine-tuning; None = the recipe's train split): export.fidelity.export_with_bound.
    Raises ProfileViolation (listing every violation) or ExportError (also when the bound fails
    without allow_loss: export.fidelity.FidelityError)."""
    check_bound_options(max_loss, qat_epochs)
    run_state = training_state(path, allow_unfinished)
    ck_path = resolve_checkpoint_path(path)
    ck = load_checkpoint(ck_path)
    sha = sha256_file(ck_path)
    provenance = checkpoint_provenance(ck, sha)
    source = {"path": str(ck_path), "sha256": sha, "epoch": ck.epoch,
              "val_accuracy": ck.val_accuracy, "finished": run_state["finished"],
              "epochs_planned": run_state["epochs_planned"]}
    options = dict(provenance=provenance, source=source, num_message_bits=num_message_bits,
                   headroom=headroom, calibration=calibration, evaluation=evaluation,
                   eval_split=eval_split, max_calibration=max_calibration, max_eval=max_eval,
                   cache_dir=cache_dir, progress=progress, netx_exact=netx_exact,
                   neuron_exponents=neuron_exponents)
    if max_loss is None:
        net, report = export_loaded(ck, profile, **options)  # type: ignore[arg-type]
        from export.fidelity import unbounded_keys
        report.update(unbounded_keys(report, on_val=evaluation is None and eval_split == "val"
                                     and max_eval is None))
    else:
        from export.fidelity import export_with_bound
        net, report = export_with_bound(ck, profile, max_loss=max_loss, qat_epochs=qat_epochs,
                                        qat_lr=qat_lr, allow_loss=allow_loss,
                                        validation=validation,
                                        training=training, **options)  # type: ignore[arg-type]
    if run_state["finished"] is False:
        report["warnings"].append(f"{run_state['message']}; exported anyway (allow_unfinished)")
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
    ap.add_argument("--max-loss", type=parse_max_loss, default=None, metavar="POINTS",
                    help="fidelity bound: float minus fixed-point accuracy on the validation "
                         "split, in points; above it, try per-neuron weight exponents, "
                         "per-layer scales, keeping zeroed synapses, then QAT (export.fidelity) "
                         "(default: none, no bound; lava_runtime's deploy uses 0.5)")
    ap.add_argument("--neuron-exponents", action="store_true",
                    help="give every neuron its own weight exponent (finer weights for neurons "
                         "whose weights are small next to the layer's largest; one Lava "
                         "connection process per exponent; the netx part of the file is then "
                         "approximate) (default: only when the bound needs it)")
    ap.add_argument("--qat-epochs", type=int, default=DEFAULT_QAT_EPOCHS,
                    help="most quantization-aware fine-tuning epochs the bound may spend "
                         f"(default: {DEFAULT_QAT_EPOCHS}; 0 = cheap remedies only)")
    ap.add_argument("--qat-lr", type=float, default=DEFAULT_QAT_LR,
                    help=f"Adam learning rate of that fine-tuning (default: {DEFAULT_QAT_LR})")
    ap.add_argument("--allow-loss", action="store_true",
                    help="when the bound still fails, write the best network found instead "
                         "of exiting 2 (default: refuse)")
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
                progress=True, netx_exact=a.netx_exact, neuron_exponents=a.neuron_exponents,
                allow_unfinished=a.allow_unfinished,
                max_loss=a.max_loss, qat_epochs=a.qat_epochs, qat_lr=a.qat_lr,
                allow_loss=a.allow_loss)
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
