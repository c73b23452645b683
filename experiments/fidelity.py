"""The fidelity bound on one trained run, before and after: float minus fixed-point accuracy
(points) on the validation and the test split, for the export without a bound and with it.

    python -m experiments.fidelity runs/sweep/no-delay_s0.9_seed1 \
        --point docs/results/sweep/no-delay_s0.9_seed1.json --json docs/results/fidelity_demo.json

is a thin layer over :func:`fidelity_demo`. Both exports are export.to_lava.export_checkpoint
(profile loihi2); the bounded one is export.fidelity.export_with_bound with `allow_loss` (so a
bound that still fails is recorded, not refused), which reads the training and validation
splits only. The test split is read here afterwards, to report the gap on unseen data. The
float model is the trained checkpoint (export.float_reference, integer delays), the fixed point
is deployed.emulator (bit-exact to the Lava graph). `--point` (a sweep point JSON of the same
run) adds the committed record's figures and whether its checkpoint is this one (SHA-256).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from export.fidelity import (
    DEFAULT_MAX_LOSS,
    DEFAULT_QAT_EPOCHS,
    DEFAULT_QAT_LR,
    check_bound_options,
)
from trainer.file_io import read_json_file, write_json_atomic

FORMAT = "delaysnn fidelity demo 1"


def _gap(acc: dict) -> dict:
    return {"samples": acc["samples"], "float": acc["float"], "fixed_point": acc["quantized"],
            "loss_points": round(100 * (acc["float"] - acc["quantized"]), 6)}


def fidelity_demo(run: str | Path, *, max_loss: float = DEFAULT_MAX_LOSS,
                  qat_epochs: int = DEFAULT_QAT_EPOCHS, qat_lr: float = DEFAULT_QAT_LR,
                  profile: str = "loihi2", point: str | Path | None = None,
                  json_path: str | Path | None = None, progress: bool = True) -> dict:
    """Export RUN without and with the bound `max_loss` (points); return (and write to
    json_path) both exports' float and fixed-point accuracy on validation and test, what the
    bound changed and the fine-tuning it ran."""
    from export.build_network import _recipe_data, evaluate
    from export.to_lava import export_checkpoint
    from trainer.checkpoint import load_checkpoint, resolve_checkpoint_path
    from trainer.file_io import sha256_file

    check_bound_options(max_loss, qat_epochs)
    if max_loss is None:
        raise ValueError("--max-loss: the demo compares with a bound; give points >= 0")
    if json_path is not None and not Path(json_path).parent.is_dir():
        raise ValueError(f"--json: folder {Path(json_path).parent} does not exist")
    committed = None if point is None else read_json_file(Path(point))
    ck_path = resolve_checkpoint_path(run)
    ck = load_checkpoint(ck_path)
    sha = sha256_file(ck_path)
    t0 = time.perf_counter()
    plain_net, plain = export_checkpoint(run, profile, evaluation=False)
    bound_net, bound = export_checkpoint(run, profile, evaluation=False, max_loss=max_loss,
                                         qat_epochs=qat_epochs, qat_lr=qat_lr,
                                         allow_loss=True, progress=progress)
    export_s = time.perf_counter() - t0
    splits = {s: _recipe_data(ck, s) for s in ("val", "test")}  # test: read only from here on
    out: dict = {"format": FORMAT, "run": Path(run).name, "checkpoint_sha256": sha,
                 "profile": profile, "max_loss_bound": max_loss, "qat_epochs_budget": qat_epochs,
                 "qat_lr": qat_lr}
    for name, net, rep in (("without_bound", plain_net, plain), ("with_bound", bound_net, bound)):
        out[name] = {s: _gap(evaluate(ck, net, x, y, f"{s} split")) for s, (x, y) in splits.items()}
        out[name]["synapses_zeroed"] = rep["synapses_zeroed"]
    f = bound["fidelity"]
    out["with_bound"].update({
        "within_bound": f["within_bound"], "step": f["step"], "changes": f["changes"],
        "qat_epochs": bound["qat_epochs"], "scale_factors": f["scale_factors"],
        "keep_zeroed": f["keep_zeroed"], "neuron_exponents": f["neuron_exponents"],
        "qat_history": None if not f["qat"] or "history" not in f["qat"] else
        [{k: h[k] for k in ("epoch", "val_fixed_point")} for h in f["qat"]["history"]],
        "candidates": [{k: c[k] for k in ("step", "neuron_exponents", "scale_factors",
                                          "keep_zeroed", "qat_epochs", "loss_points")}
                       for c in f["tried"]]})
    if committed is not None:
        out["committed_point"] = {
            "file": Path(point).name,  # type: ignore[arg-type]
            "same_checkpoint": committed.get("checkpoint_sha256") == sha,
            **{k: committed.get(k) for k in ("test_accuracy", "emulator_accuracy", "n_test")}}
    out["seconds"] = {"exports": round(export_s, 1),
                      "total": round(time.perf_counter() - t0, 1)}
    run_arg = Path(run).as_posix() if not Path(run).is_absolute() else "RUN"
    out["command"] = (f"python -m experiments.fidelity {run_arg}"
                      + (f" --point {Path(point).as_posix()}" if point is not None else "")
                      + f" --max-loss {max_loss:g} --qat-epochs {qat_epochs}"
                      + (f" --qat-lr {qat_lr:g}" if qat_lr != DEFAULT_QAT_LR else ""))
    if json_path is not None:
        write_json_atomic(out, Path(json_path))
    return out


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser
    from export.fidelity import parse_max_loss

    ap = new_parser("python -m experiments.fidelity", __doc__)
    ap.add_argument("run", help="trained run folder (with checkpoint.pt) or checkpoint file")
    ap.add_argument("--max-loss", type=parse_max_loss, default=DEFAULT_MAX_LOSS,
                    metavar="POINTS",
                    help=f"the bound, points on validation (default: {DEFAULT_MAX_LOSS})")
    ap.add_argument("--qat-epochs", type=int, default=DEFAULT_QAT_EPOCHS,
                    help=f"most fine-tuning epochs the bound may spend "
                         f"(default: {DEFAULT_QAT_EPOCHS})")
    ap.add_argument("--qat-lr", type=float, default=DEFAULT_QAT_LR,
                    help=f"learning rate of that fine-tuning (default: {DEFAULT_QAT_LR})")
    ap.add_argument("--profile", default="loihi2",
                    help="hardware profile of both exports (default: loihi2)")
    ap.add_argument("--point", default=None, metavar="POINT.json",
                    help="the run's sweep point JSON, to compare with (default: none)")
    ap.add_argument("--json", default=None, metavar="FILE.json",
                    help="write the result here (default: printed only)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        r = fidelity_demo(a.run, max_loss=a.max_loss, qat_epochs=a.qat_epochs, qat_lr=a.qat_lr,
                          profile=a.profile, point=a.point, json_path=a.json)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name in ("without_bound", "with_bound"):
        g = r[name]
        print(f"{name.replace('_', ' ')}: validation {g['val']['float']:.2%} -> "
              f"{g['val']['fixed_point']:.2%} ({g['val']['loss_points']:+.2f} points lost), "
              f"test {g['test']['float']:.2%} -> {g['test']['fixed_point']:.2%} "
              f"({g['test']['loss_points']:+.2f}), synapses zeroed {g['synapses_zeroed']}")
    w = r["with_bound"]
    print(f"bound {r['max_loss_bound']:g}: {'within' if w['within_bound'] else 'NOT within'} "
          f"({w['step']}); " + "; ".join(w["changes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
