"""The fidelity bound at export: what is deployed is what was trained.

    python -m export.to_lava RUN --out net.h5 --max-loss 0.5 [--qat-epochs 5] [--allow-loss]

is a thin layer over :func:`export_with_bound` (through export.to_lava.export_checkpoint).
The loss is measured in accuracy points on the validation split (never the test split):

    loss = 100 * (float accuracy - fixed-point accuracy)

float: the trained checkpoint in export.float_reference (integer delays, the model the export
quantizes); fixed point: the exported network in deployed.emulator (bit-exact to the Lava
graph). Every candidate below is measured that way, on the whole validation split, and the
first one within `max_loss` is exported; the float reference stays the trained checkpoint.

0. As exported (export.to_lava's rule, export.quantize). Within the bound, nothing else runs
   and the deployed file is byte for byte the export without a bound.
1. Per-neuron weight exponents (export.quantize `neuron_exponents`): each neuron's synapses
   get the extra right shift that puts its own largest weight at the top of the range, one
   Lava connection process per exponent. Changes: the weights of neurons whose weights are
   small next to the layer's largest get up to 2^e finer levels; nothing clips, the structure
   and synapse count are unchanged; more connection processes, and the netx part of the file
   is approximate (netx has one exponent per layer; our own part is exact). Skipped with
   netx_exact. Kept for the steps below when it raises the fixed-point accuracy.
   Why it comes first: on the sweep's sparse networks nearly all of the float / fixed-point
   disagreement is the weight grid, and mostly its coarseness for neurons whose weights are
   small next to the layer's largest (experiments.fidelity_sources).
2. Per-layer scale search (export.quantize `scale_factors`): layer by layer, the scale s_l is
   multiplied by f in SCALE_FACTORS (capped at vth's 17 bits and at the calibration set's
   measured a_in / v ranges without headroom); the best f per layer is kept when it raises the
   fixed-point accuracy. Changes: every weight of the layer gets f times finer levels, the
   largest ones clip at the range end (`synapses_clipped`), weight_exp follows; the structure
   is unchanged. A candidate whose readout would spike on validation (readout check) is
   rejected.
3. Keep zeroed synapses (export.quantize `keep_zeroed`): a synapse whose weight rounds to 0
   keeps the smallest nonzero level with its sign. Changes the weights of those N synapses
   (by less than one level); keeps the structure.
4. Quantization-aware fine-tuning (export.qat.finetune_loaded) on the training split for up to
   `qat_epochs` epochs through the fixed point of the best cheap candidate (its exponents,
   scale factors and kept synapses), objective "distill" first (the fixed-point network is
   trained to give the trained float model's per-step class probabilities), then, if the
   bound still fails, "labels" (the training loss). Each epoch is measured on validation and
   the fine-tuning stops at the first epoch within the bound; if none is, the epoch that agrees
   most with the trained model's validation predictions (distill) or the most accurate one
   (labels) is kept. If still above the bound, steps 1-3 run on the fine-tuned checkpoint.
   Changes: every weight and bias (folded BatchNorm); structure, delays and neurons
   unchanged.

If no candidate is within the bound, FidelityError says so in one line with both accuracies;
with `allow_loss` the best candidate (highest fixed-point validation accuracy, the earliest on
ties) is exported instead, with that line as a warning. A network that differs from step 0
records how in its meta ("fidelity", and "qat" after fine-tuning). The report gets a
"fidelity" section and the keys emulator_val_accuracy, fixed_point_loss_val (points),
qat_epochs (fine-tuning epochs in the deployed weights, 0 when none), synapses_zeroed (per
layer: nonzero trained weights deployed as 0) and max_loss_bound (points; None: no bound).
lava_runtime.pipeline.deploy applies DEFAULT_MAX_LOSS unless given max_loss=None.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from export.errors import ExportError

if TYPE_CHECKING:
    from deployed.network import DeployedNetwork
    from export.build_network import PreparedExport
    from trainer.checkpoint import Checkpoint

DEFAULT_MAX_LOSS = 0.5  # points: lava_runtime.pipeline.deploy's bound (the export CLI: none)
DEFAULT_QAT_EPOCHS = 5  # most fine-tuning epochs the bound may spend
DEFAULT_QAT_LR = 3e-4  # Adam learning rate of that fine-tuning (export.qat's default)
# tried per layer, in this order: 2^(k/4), k = 1..8 (1.19 .. 4)
SCALE_FACTORS = tuple(2 ** (k / 4) for k in range(1, 9))
_EPS = 1e-9  # points: tolerance of the bound comparison
# fine-tuning objectives tried in turn (export.qat): distillation first (it trains the deployed
# network to answer as the trained one), the training loss on the labels second
QAT_OBJECTIVES = ("distill", "labels")
# the keys every sweep point and showcase JSON copies from the export report
FIDELITY_KEYS = ("emulator_val_accuracy", "fixed_point_loss_val", "qat_epochs",
                 "synapses_zeroed", "max_loss_bound")


class FidelityError(ExportError):
    """The fixed-point network stays above the bound after every remedy (one line)."""


def parse_max_loss(text: str) -> float | None:
    """--max-loss: points >= 0, or "none" (no bound)."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected points >= 0 or 'none', got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected points >= 0 or 'none', got {text!r}")
    return value


def check_bound_options(max_loss, qat_epochs) -> None:
    """ExportError unless max_loss is None or finite points >= 0 and qat_epochs an int >= 0."""
    if max_loss is not None and (isinstance(max_loss, bool)
                                 or not isinstance(max_loss, (int, float))
                                 or not math.isfinite(max_loss) or max_loss < 0):
        raise ExportError(f"max_loss must be points >= 0 (or None: no bound), got {max_loss!r}")
    if isinstance(qat_epochs, bool) or not isinstance(qat_epochs, int) or qat_epochs < 0:
        raise ExportError(f"qat_epochs must be an integer >= 0, got {qat_epochs!r}")


def zeroed_per_layer(report: dict) -> list[int]:
    """Synapses per layer whose nonzero trained weight is deployed as 0 (export report)."""
    return [int(L["quantization"]["synapses_quantized_to_zero"]) for L in report["layers"]]


def unbounded_keys(report: dict, on_val: bool) -> dict:
    """The fidelity keys of an export without a bound: measured from its accuracy section when
    that is the whole validation split (on_val), else None."""
    acc = report.get("accuracy") if on_val else None
    q = f = None
    if acc is not None and acc["quantized"] == acc["quantized"]:  # labels given (not NaN)
        q, f = acc["quantized"], acc["float"]
    return {"max_loss_bound": None, "qat_epochs": 0, "synapses_zeroed": zeroed_per_layer(report),
            "emulator_val_accuracy": q,
            "fixed_point_loss_val": None if q is None else round(100 * (f - q), 9)}


@dataclasses.dataclass
class Candidate:
    """One network the bound measured."""

    step: str  # "as exported", "neuron exponents", "scale search", "keep zeroed", "qat", ...
    ck: Checkpoint
    prepared: PreparedExport
    scale_factors: tuple[float, ...] | None
    keep_zeroed: bool
    qat_epochs: int
    net: DeployedNetwork
    report: dict
    correct: int = 0
    readout_ok: bool = True
    neuron_exponents: bool = False
    qat: dict | None = None  # the fine-tuning summary of a fine-tuned candidate

    def summary(self, n: int, float_correct: int) -> dict:
        q = [L["quantization"] for L in self.report["layers"]]
        return {"step": self.step,
                "scale_factors": None if self.scale_factors is None else list(self.scale_factors),
                "keep_zeroed": self.keep_zeroed, "neuron_exponents": self.neuron_exponents,
                "qat_epochs": self.qat_epochs,
                "val_fixed_point": self.correct / n,
                "loss_points": round(100 * (float_correct - self.correct) / n, 9),
                "readout_ok": self.readout_ok,
                "synapses_zeroed": [int(x["synapses_quantized_to_zero"]) for x in q],
                "synapses_kept_at_smallest_level":
                    sum(int(x.get("synapses_kept_at_smallest_level", 0)) for x in q),
                "synapses_clipped": sum(int(x.get("synapses_clipped", 0)) for x in q)}


def export_with_bound(ck: Checkpoint, profile: str = "loihi2", *, provenance: dict,
                      source: dict, max_loss: float = DEFAULT_MAX_LOSS,
                      qat_epochs: int = DEFAULT_QAT_EPOCHS, qat_lr: float = DEFAULT_QAT_LR,
                      allow_loss: bool = False, validation=None, training=None,
                      num_message_bits: int = 8, headroom: float = 2.0, calibration=None,
                      evaluation=None, eval_split: str = "val",
                      max_calibration: int | None = 512, max_eval: int | None = None,
                      cache_dir=None, progress: bool = False, netx_exact: bool = False,
                      neuron_exponents: bool = False) -> tuple[DeployedNetwork, dict]:
    """export.build_network.export_loaded under the bound `max_loss` (points, see the module
    docstring): (network, report with its "fidelity" section and keys). validation:
    (features, labels) for the bound, None = the checkpoint recipe's val split (the whole
    split; max_eval only limits the accuracy section); training: (features, labels) for the
    fine-tuning, None = the recipe's train split, read only when fine-tuning runs. Other
    arguments as export_loaded (neuron_exponents: the export as exported already has them, and
    step 1 is skipped). Raises FidelityError when the bound fails without allow_loss
    (nothing is returned, so nothing is written)."""
    from export.build_network import _as_xy, _recipe_data, export_loaded, prepare_export
    from export.float_reference import simulate_float

    check_bound_options(max_loss, qat_epochs)
    if max_loss is None:
        raise ExportError("export_with_bound needs a bound; use export_loaded for none")
    t0 = time.perf_counter()
    if validation is None:
        x_val, y_val = _recipe_data(ck, "val", cache_dir)
        val_name = f"{ck.data_recipe.get('dataset', '?')} val split"
    else:
        x_val, y_val = _as_xy(validation, "validation", ck.n_channels)
        val_name = "validation data passed in"
    if y_val is None:
        raise ExportError("the fidelity bound needs validation labels: pass (features, labels)")
    n = len(y_val)
    opts: dict[str, Any] = {"num_message_bits": num_message_bits, "headroom": headroom,
                            "netx_exact": netx_exact}
    p0 = prepare_export(ck, profile, calibration=calibration, max_calibration=max_calibration,
                        cache_dir=cache_dir, **opts)
    float_correct = int(np.sum(simulate_float(ck, x_val).predictions() == y_val))
    tried: list[Candidate] = []

    def loss(c: Candidate) -> float:
        return 100 * (float_correct - c.correct) / n

    def within(c: Candidate) -> bool:  # a remedy must keep the readout from spiking
        return (c.readout_ok or c.step == "as exported") and loss(c) <= max_loss + _EPS

    def measure(step, ck_, p, factors=None, keep=False, qat_n=0, seen=None, neuron=False):
        """Quantize; None when its grid repeats one in `seen`; else emulate validation."""
        from export.build_network import fixed_point_predictions

        net, rep = export_loaded(ck_, profile, provenance={}, source={}, evaluation=False,
                                 prepared=p, scale_factors=factors, keep_zeroed=keep,
                                 neuron_exponents=neuron, **opts)
        if seen is not None:
            key = grid_key(net, keep)
            if key in seen:
                return None
            seen.add(key)
        c = Candidate(step, ck_, p, factors, keep, qat_n, net, rep, neuron_exponents=neuron)
        pred, check = fixed_point_predictions(net, x_val)
        c.correct, c.readout_ok = int(np.sum(pred == y_val)), bool(check["ok"])
        tried.append(c)
        if progress:
            print(f"fidelity: {step}"
                  + (f" x{[round(f, 2) for f in factors]}" if factors else "")
                  + f": validation fixed point {c.correct / n:.2%}, float "
                  f"{float_correct / n:.2%}, loss {loss(c):.2f} points (bound {max_loss:g})"
                  + ("" if c.readout_ok else ", readout would spike: rejected"), flush=True)
        return c

    def better(c: Candidate | None, best: Candidate) -> bool:
        return c is not None and c.readout_ok and c.correct > best.correct

    def cheap(start: Candidate, prefix: str) -> tuple[Candidate, bool]:
        """Steps 1-3 from `start`: (best candidate, whether it is within the bound)."""
        best = start
        seen = {grid_key(start.net, start.keep_zeroed)}
        if not netx_exact and not start.neuron_exponents:
            c = measure(prefix + "neuron exponents", start.ck, start.prepared,
                        start.scale_factors, start.keep_zeroed, start.qat_epochs, seen, True)
            if c is not None and within(c):
                return c, True
            if better(c, best):
                best = c  # type: ignore[assignment]
        neuron = best.neuron_exponents
        for li in range(len(ck.layers)):
            layer_best = best
            for f in SCALE_FACTORS:
                factors = list(best.scale_factors or [1.0] * len(ck.layers))
                factors[li] = f
                c = measure(prefix + "scale search", start.ck, start.prepared, tuple(factors),
                            False, start.qat_epochs, seen, neuron)
                if c is not None and within(c):
                    return c, True
                if better(c, layer_best):
                    layer_best = c  # type: ignore[assignment]
            best = layer_best
        if sum(zeroed_per_layer(best.report)):
            c = measure(prefix + "keep zeroed", start.ck, start.prepared, best.scale_factors,
                        True, start.qat_epochs, neuron=neuron)
            if within(c):
                return c, True
            if better(c, best):
                best = c
        return best, False

    first = measure("as exported", ck, p0, neuron=neuron_exponents)
    final, ok = first, within(first)
    qat: dict | None = None  # the last fine-tuning's summary (what ran, for the messages)
    if not ok:
        final, ok = cheap(first, "")
    start = final  # the best cheap candidate: the grid every fine-tuning trains through
    for objective in QAT_OBJECTIVES if qat_epochs > 0 else ():
        if ok:
            break
        ck_q, qat = _fine_tune(ck, p0, x_val, y_val, training, profile, qat_epochs, qat_lr,
                               (float_correct - max_loss * n / 100) / n - _EPS,
                               {**opts, "scale_factors": start.scale_factors,
                                "keep_zeroed": start.keep_zeroed,
                                "neuron_exponents": start.neuron_exponents}, cache_dir,
                               progress, objective)
        if ck_q is None:
            continue
        assert qat is not None
        p_q = prepare_export(ck_q, profile, calibration=p0.x_cal, max_calibration=None, **opts)
        c = measure("qat", ck_q, p_q, start.scale_factors, start.keep_zeroed,
                    int(qat["best_epoch"]), neuron=start.neuron_exponents)
        c.qat = qat
        ok = within(c)
        if not ok:
            c, ok = cheap(c, "qat + ")
            c.qat = qat
        if ok or better(c, final):
            final = c
    if final.qat is not None:
        qat = final.qat
    fa, qa = float_correct / n, final.correct / n
    line = (f"the fixed-point network loses {loss(final):.2f} points on the validation split "
            f"({n} samples: float {fa:.2%}, fixed point {qa:.2%}), above the bound of "
            f"{max_loss:g} after {_what_ran(qat_epochs, qat)}")
    if not ok and not allow_loss:
        raise FidelityError(f"{line}; nothing was written: pass --allow-loss (allow_loss=True) "
                            "to write the best network found, or raise --max-loss or "
                            "--qat-epochs")
    prov = dict(provenance)
    changes = _changes(final, n, float_correct)
    if final is not first:
        prov["fidelity"] = {"max_loss_points": max_loss, "step": final.step,
                            "changes": changes}
        if final.qat_epochs:
            prov["qat"] = {k: qat[k] for k in ("objective", "epochs_run",  # type: ignore[index]
                                               "best_epoch", "lr", "val_fixed_point",
                                               "val_agreement")}
    net, report = export_loaded(final.ck, profile, provenance=prov, source=source,
                                evaluation=evaluation, eval_split=eval_split, max_eval=max_eval,
                                cache_dir=cache_dir, progress=progress, prepared=final.prepared,
                                scale_factors=final.scale_factors,
                                keep_zeroed=final.keep_zeroed,
                                neuron_exponents=final.neuron_exponents, reference=ck, **opts)
    chosen = final.summary(n, float_correct)
    report["fidelity"] = {
        "max_loss_points": max_loss, "split": "val", "data": val_name, "samples": n,
        "float_val_accuracy": fa, "fixed_point_val_accuracy": qa,
        "loss_points": chosen["loss_points"], "within_bound": ok, "step": final.step,
        "changes_network": final is not first, "changes": changes,
        "scale_factors": chosen["scale_factors"], "keep_zeroed": final.keep_zeroed,
        "neuron_exponents": final.neuron_exponents,
        "synapses_kept_at_smallest_level": chosen["synapses_kept_at_smallest_level"],
        "synapses_clipped": chosen["synapses_clipped"], "qat": qat,
        "tried": [c.summary(n, float_correct) for c in tried],
        "seconds": time.perf_counter() - t0}
    report.update({"max_loss_bound": max_loss, "qat_epochs": final.qat_epochs,
                   "synapses_zeroed": zeroed_per_layer(report), "emulator_val_accuracy": qa,
                   "fixed_point_loss_val": chosen["loss_points"]})
    if not ok:
        report["warnings"].append(f"{line}; written anyway (allow_loss)")
    return net, report


def _fine_tune(ck, p0, x_val, y_val, training, profile, epochs, lr, target, opts, cache_dir,
               progress, objective="distill"):
    """Step 3: (fine-tuned checkpoint or None when epoch 0 stayed best or it cannot run, the
    fine-tuning's summary or {"not_run": why}). opts: export_loaded's quantization options."""
    from export.build_network import _as_xy, _recipe_data
    from export.qat import finetune_loaded

    try:
        if training is None:
            x_tr, y_tr = _recipe_data(ck, "train", cache_dir)
        else:
            x_tr, y_tr = _as_xy(training, "training", ck.n_channels)
        if y_tr is None:
            raise ExportError("the fine-tuning needs training labels: pass (features, labels)")
        ck_q, summary = finetune_loaded(ck, x_tr, y_tr, p0.x_cal, x_val, y_val, epochs=epochs,
                                        lr=lr, profile=profile, target=target,
                                        progress=progress, objective=objective, **opts)
    except ExportError as e:  # e.g. neurons with current memory, no training data
        return None, {"not_run": str(e).splitlines()[0]}
    summary = {k: summary[k] for k in ("objective", "epochs", "epochs_run", "best_epoch", "lr",
                                       "seed", "val_fixed_point", "val_agreement", "history",
                                       "seconds")}
    return (ck_q if summary["best_epoch"] > 0 else None), summary


def grid_key(net: DeployedNetwork, keep: bool) -> tuple:
    """What makes two candidates' weight grids the same: the layer scales, the per-neuron
    exponents and whether zeroed synapses are kept."""
    return (tuple(net.meta["layer_scales"]), keep,
            tuple(None if L.neuron_exp is None else tuple(L.neuron_exp.tolist())
                  for L in net.layers))


_CHEAP = "per-neuron exponents, per-layer scales and keeping zeroed synapses"


def _what_ran(qat_epochs: int, qat: dict | None) -> str:
    if qat_epochs == 0:
        return f"{_CHEAP} (no fine-tuning: --qat-epochs 0)"
    if qat is None:
        return _CHEAP
    if "not_run" in qat:
        return f"{_CHEAP}; fine-tuning could not run: {qat['not_run']}"
    return (f"{_CHEAP} and {qat['epochs_run']} fine-tuning epoch(s) (best: epoch "
            f"{qat['best_epoch']})")


def _changes(c: Candidate, n: int, float_correct: int) -> list[str]:
    """What the chosen candidate changes against the export without a bound, in words."""
    s = c.summary(n, float_correct)
    out = []
    if c.qat_epochs:
        out.append(f"weights and biases fine-tuned for {c.qat_epochs} epoch(s) through the "
                   "fixed point (export.qat): every weight may change; structure, delays and "
                   "neurons unchanged")
    if c.neuron_exponents:
        n_exp = [0 if L.neuron_exp is None else int(np.count_nonzero(L.neuron_exp))
                 for L in c.net.layers]
        out.append(f"per-neuron weight exponents: {n_exp} neuron(s) per layer get finer weight "
                   "levels (one Lava connection process per exponent; nothing clips, structure "
                   "unchanged; the netx part of the file is approximate)")
    if c.scale_factors is not None:
        out.append(f"per-layer scales x{[round(f, 3) for f in c.scale_factors]}: finer weight "
                   f"levels, {s['synapses_clipped']} weight(s) clip at the range end; "
                   "structure unchanged")
    if c.keep_zeroed:
        out.append(f"{s['synapses_kept_at_smallest_level']} synapse(s) that round to zero keep "
                   "the smallest nonzero level with their sign: their weights change, the "
                   "structure is kept")
    return out or ["none: the network is the export without a bound"]
