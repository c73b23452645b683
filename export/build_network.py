"""Steps 1-4 of the export for an in-memory checkpoint: structure check, calibration, quantization,
numeric check, report and accuracy (export.to_lava's docstring lists them; export.quantize the
fixed-point choices). `export_loaded` is what export.to_lava (a checkpoint file), export.from_nir
(a NIR graph), export.qat (each fine-tuning epoch) and export.fidelity (each candidate) call.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from deployed import netx_h5
from deployed.limits import check_numeric, check_structure, usage
from deployed.network import DeployedNetwork, InputEncoding
from export.errors import ExportError, ProfileViolation
from export.float_reference import FloatResult, simulate_float
from export.quantize import QuantSettings, choose_input_encoding, quantize
from export.report import NETX_WARNING, build_layer_summary
from trainer.checkpoint import Checkpoint

if TYPE_CHECKING:
    from hw_profiles import Profile


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


@dataclasses.dataclass
class PreparedExport:
    """What quantization needs before choosing scales: the profile, the quantization settings,
    the structure check's core mapping, the calibration features and their float simulation."""

    profile: Profile
    settings: QuantSettings
    mapping: Any  # deployed.limits.check_structure's core mapping (for usage)
    x_cal: np.ndarray  # (N, T, C) the calibration features used
    encoding: InputEncoding
    encoding_info: dict
    calib: FloatResult


def prepare_export(ck: Checkpoint, profile: str = "loihi2", *, num_message_bits: int = 8,
                   headroom: float = 2.0, calibration=None, max_calibration: int | None = 512,
                   cache_dir=None, netx_exact: bool = False) -> PreparedExport:
    """Steps 1-2 of the export (structure check, calibration and its float simulation), which
    every choice of scales shares; arguments as export_checkpoint."""
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
    return PreparedExport(prof, qs, mapping, x_cal, enc, enc_info, calib)


def export_loaded(ck: Checkpoint, profile: str = "loihi2", *, provenance: dict, source: dict,
                  num_message_bits: int = 8, headroom: float = 2.0, calibration=None,
                  evaluation=None, eval_split: str = "val", max_calibration: int | None = 512,
                  max_eval: int | None = None, cache_dir=None, progress: bool = False,
                  netx_exact: bool = False, scale_factors: tuple[float, ...] | None = None,
                  keep_zeroed: bool = False, neuron_exponents: bool = False,
                  prepared: PreparedExport | None = None,
                  reference: Checkpoint | None = None) -> tuple[DeployedNetwork, dict]:
    """Everything after reading: an in-memory Checkpoint (from a checkpoint file or from
    export.from_nir) -> (DeployedNetwork, report). `provenance` becomes the network's meta
    (plus "export_options"); `source` ({path, sha256, epoch, val_accuracy}) heads the report.
    scale_factors, keep_zeroed, neuron_exponents: export.quantize's options (export.fidelity's
    remedies; recorded in the meta's export_options when used). prepared: prepare_export's
    result for ck (then the calibration and quantization options are its own). reference: the
    float model the accuracy section compares with (default ck). Other arguments as
    export_checkpoint."""
    p = prepared or prepare_export(ck, profile, num_message_bits=num_message_bits,
                                   headroom=headroom, calibration=calibration,
                                   max_calibration=max_calibration, cache_dir=cache_dir,
                                   netx_exact=netx_exact)
    prof, mapping, x_cal, enc, enc_info, calib = (p.profile, p.mapping, p.x_cal, p.encoding,
                                                  p.encoding_info, p.calib)
    qs = dataclasses.replace(p.settings, scale_factors=scale_factors, keep_zeroed=keep_zeroed,
                             neuron_exponents=neuron_exponents)
    options: dict = {"num_message_bits": qs.num_message_bits, "headroom": qs.headroom,
                     "netx_exact": qs.netx_exact, "calibration_samples": int(len(x_cal))}
    if scale_factors is not None:
        options["scale_factors"] = [float(f) for f in scale_factors]
    if keep_zeroed:
        options["keep_zeroed"] = True
    if neuron_exponents:
        options["neuron_exponents"] = True
    meta = {**provenance, "export_options": options}
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
        report["accuracy"] = evaluate(reference or ck, net, x_ev, y_ev, data_name,
                                      progress=progress)
        if not report["accuracy"]["readout_check"]["ok"]:
            report["warnings"].append("the readout voltage exceeded vth << 6 on evaluation data: "
                                      "the readout would spike; raise --headroom")
    return net, report


def evaluate(ck: Checkpoint, net: DeployedNetwork, x: np.ndarray, y: np.ndarray | None,
             data_name: str, progress: bool = False) -> dict:
    """Float vs quantized predictions on (x, y): accuracies (when labels are given) and
    agreement. The quantized network runs in deployed.emulator for T + latency steps; its
    readout at window steps latency..latency+T-1 is the float model's steps 0..T-1."""
    fr = simulate_float(ck, x)
    q_pred, readout_check = fixed_point_predictions(net, x, progress)
    f_pred = fr.predictions()
    out = {"samples": int(len(x)), "data": data_name,
           "quantized_backend": "deployed.emulator (bit-exact fixed_pt, aligned per-layer "
                                "reset, T + latency steps)",
           "agreement_with_float": float(np.mean(q_pred == f_pred)),
           "readout_check": readout_check}
    if y is not None:
        out["float"] = float(np.mean(f_pred == y))
        out["quantized"] = float(np.mean(q_pred == y))
    else:
        out["float"] = out["quantized"] = float("nan")
    return out


def fixed_point_predictions(net: DeployedNetwork, x: np.ndarray, progress: bool = False
                            ) -> tuple[np.ndarray, dict]:
    """(class per sample of features x in deployed.emulator, readout check: the largest |v|
    of the readout against vth << 6, above which Lava's readout would spike)."""
    from deployed.emulator import emulate

    act = emulate(net, net.input.encode(x), progress=progress,
                  desc="accuracy check (fixed point, emulator)")
    limit = int(net.readout.neurons.vth) << 6
    max_v = int(np.abs(act.readout_v).max()) if act.readout_v.size else 0
    return act.predictions(net), {"max_abs_v": max_v, "limit": limit, "ok": max_v <= limit}
