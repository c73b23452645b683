"""Quantization-aware fine-tuning: train a checkpoint through the export's own fixed point.

    python -m export.qat RUN_DIR --out RUN_QAT [--epochs 5] [--lr 3e-4] [--profile loihi2]
        [--objective distill|labels]

is a thin layer over :func:`finetune`. The export (export.quantize) maps each layer's folded
float weights ``wf = w * a[post]`` (BatchNorm ``a*I + b`` folded) and biases ``b`` to integers
on grids fixed by the layer's scale ``s``, extra shift ``j`` and input scale ``in_scale``
(``enc.scale`` for the first layer, 1 for spikes), and the input to graded payloads:

    W = clip(round(wf * g), lo, hi) with g = s * 2^j / in_scale,    bias_mant = round(b * s)
    payload = clip(round(gate(x) * enc.scale), 0, 2^bits - 1)

Fine-tuning trains ``wf`` and ``b`` with those roundings in the forward pass and a
straight-through estimator (identity gradient, zero outside the clip range) in the backward
pass; delays, structure and neuron parameters stay fixed. The objective (``objective``):

    distill (default):  L = mean over samples and steps t of KL(p_float(t) || p_q(t)),
                        p(t) = softmax over classes of the readout membrane at step t,
    labels:             L = trainer.model.loss_fn (the training loss, on the labels),

p_float from the trained float model (frozen, unquantized input), p_q from the network being
fine-tuned through the fixed point. Distillation trains the deployed network to answer as the
trained one does, which is what the fidelity bound asks (export.fidelity); on the labels the
fine-tuning drifted away from the trained model on the sweep's hardest points (float validation
accuracy fell in the first epoch, and no epoch beat epoch 0). Every epoch starts by quantizing
the current network with the export's code (export.build_network.export_loaded: same
calibration, same scales) and measuring it on the validation split in the bit-exact emulator:
its accuracy and its agreement with the trained float model's predictions. With a ``target``
(the fidelity bound's), the first epoch whose fixed-point accuracy reaches it is kept and the
fine-tuning stops; otherwise the epoch kept (epoch 0 = the network as trained) is the one with
the highest agreement (distill) or accuracy (labels), then the higher accuracy, then the
earliest. It is written to ``OUT/checkpoint.pt`` in the checkpoint
format of docs/design.md section 2: weights folded, each bias held by an identity BatchNorm
(weight 1, mean 0, var 1, eps 0), ``qat`` provenance and per-epoch history added, no
``model_state`` (it is an export-stage checkpoint: export, run and budget it; trainer.evaluate
does not read it). The test split is never used.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from export.build_network import export_loaded
from export.errors import ExportError
from export.quantize import LAVA_BITS
from trainer.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from trainer.file_io import sha256_file, torch_save_atomic, write_json_atomic
from trainer.model import loss_fn
from trainer.neurons import li_sequence, lif_sequence

QAT_FORMAT = "delaysnn export.qat 1"
OBJECTIVES = ("distill", "labels")


def distill_loss(v: torch.Tensor, v_float: torch.Tensor) -> torch.Tensor:
    """Mean over samples and steps of KL(softmax(v_float[:, :, t]) || softmax(v[:, :, t])),
    readout membranes (B, n_classes, T) of the fine-tuned and the trained float network."""
    lt = F.log_softmax(v_float, dim=1)
    return (lt.exp() * (lt - F.log_softmax(v, dim=1))).sum(1).mean()


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def fake_quant(x: torch.Tensor, gain: float | torch.Tensor, lo: float, hi: float
               ) -> torch.Tensor:
    """clip(round(x * gain), lo, hi) / gain, with a straight-through gradient inside the clip
    (gain: one number, or one per element of x)."""
    return torch.clamp(_RoundSTE.apply(x * gain), lo, hi) / gain


@dataclasses.dataclass
class LayerGrid:
    """One layer's fixed-point grid for an epoch (see the module docstring)."""

    weight_gain: float | torch.Tensor  # g = s * 2^j / in_scale: W per unit of folded float
                                       # weight; per synapse (S,) with neuron exponents
    w_lo: int
    w_hi: int
    bias_gain: float        # s: bias mantissa per float bias unit (bias_exp = 6 folds into v)
    b_lo: int
    b_hi: int


def grids_from_report(report: dict, input_scale: float, posts=None) -> list[LayerGrid]:
    """Per-layer grids from export_loaded's report (its quantization section). posts: each
    layer's synapse post indices, needed for a layer with neuron exponents (its gain is then
    g * 2^neuron_exp[post] per synapse)."""
    out = []
    for i, L in enumerate(report["layers"]):
        q = L["quantization"]
        in_scale = input_scale if i == 0 else 1.0
        lo, hi = q["W_representable"]
        bits = LAVA_BITS["bias_mant_bits"]
        gain: float | torch.Tensor = q["scale"] * 2 ** q["extra_shift"] / in_scale
        if q.get("neuron_exp") is not None:
            if posts is None:
                raise ValueError("a layer with neuron exponents needs its synapses' posts")
            e = torch.as_tensor(np.asarray(q["neuron_exp"])[posts[i]], dtype=torch.float32)
            gain = gain * torch.pow(2.0, e)
        out.append(LayerGrid(gain, lo, hi, q["scale"], -(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    return out


class CheckpointNet(torch.nn.Module):
    """The checkpoint's float network over its synapse lists (BatchNorm folded), trainable
    weights and biases; ``forward(x, grids, input_scale)`` runs it through the fixed-point
    grids (None: plain float). Semantics: export.float_reference (the float model)."""

    def __init__(self, ck: Checkpoint):
        super().__init__()
        for L in ck.layers:
            if L.du != 4095:
                raise ExportError(f"layer {L.name}: export.qat supports neurons without current "
                                  f"memory (du = 4095) only, got du = {L.du}")
            if L.recurrent is not None:  # not modelled here: refuse rather than drop it
                raise ExportError(f"layer {L.name}: export.qat does not fine-tune recurrent "
                                  "layers; export with --qat-epochs 0")
        self.ck = ck
        folded = [L.bn_affine() for L in ck.layers]
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.tensor(L.weight * a[L.post], dtype=torch.float32))
            for L, (a, _) in zip(ck.layers, folded))
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.tensor(b, dtype=torch.float32),
                               requires_grad=L.bn is not None or L.bias is not None)
            for L, (_, b) in zip(ck.layers, folded))
        # kernel tap of each synapse for a causal conv with left padding K - 1 (K = max delay + 1)
        self.taps = [int(L.delay.max(initial=0)) + 1 for L in ck.layers]
        self.index = [(torch.as_tensor(L.post), torch.as_tensor(L.pre),
                       torch.as_tensor(K - 1 - L.delay)) for L, K in zip(ck.layers, self.taps)]

    def forward(self, x: torch.Tensor, grids: list[LayerGrid] | None, input_scale: float,
                input_top: int, input_threshold: float) -> torch.Tensor:
        """x (B, T, C) features -> readout membrane (B, n_classes, T)."""
        if input_threshold > 0:
            x = x * (x >= input_threshold)
        if grids is not None:
            x = fake_quant(x, input_scale, 0, input_top)
        h = x.transpose(1, 2)
        for li, (L, w, b, (post, pre, tap), K) in enumerate(
                zip(self.ck.layers, self.weights, self.biases, self.index, self.taps)):
            if grids is not None:
                gr = grids[li]
                w = fake_quant(w, gr.weight_gain, gr.w_lo, gr.w_hi)
                b = fake_quant(b, gr.bias_gain, gr.b_lo, gr.b_hi)
            kernel = torch.zeros(L.n_out, L.n_in, K, dtype=w.dtype).index_put(
                (post, pre, tap), w, accumulate=True)
            current = F.conv1d(F.pad(h, (K - 1, 0)), kernel) + b[None, :, None]
            seq = current.permute(2, 0, 1).contiguous()
            if L.spiking:
                h = lif_sequence(seq, L.decay, L.threshold).permute(1, 2, 0)
            else:
                return li_sequence(seq, L.decay).permute(1, 2, 0)
        raise ExportError("the checkpoint has no readout layer")

    def to_checkpoint(self) -> Checkpoint:
        """The current weights as a Checkpoint: folded weights, biases in identity BatchNorms."""
        layers = []
        for L, w, b in zip(self.ck.layers, self.weights, self.biases):
            n = L.n_out
            bn = {"weight": np.ones(n), "bias": b.detach().double().numpy(),
                  "running_mean": np.zeros(n), "running_var": np.ones(n), "eps": 0.0}
            layers.append(dataclasses.replace(L, weight=w.detach().double().numpy(), bn=bn,
                                              bias=None))
        return dataclasses.replace(self.ck, layers=layers)


def checkpoint_dict(ck: Checkpoint, qat: dict) -> dict:
    """A checkpoint file's dict (docs/design.md section 2) of an in-memory Checkpoint."""
    t = torch.as_tensor
    layers = [{"name": L.name, "n_in": L.n_in, "n_out": L.n_out, "pre": t(L.pre),
               "post": t(L.post), "delay": t(L.delay), "weight": t(L.weight, dtype=torch.float32),
               "bn": {"weight": t(L.bn["weight"], dtype=torch.float32),  # type: ignore[index]
                      "bias": t(L.bn["bias"], dtype=torch.float32),  # type: ignore[index]
                      "running_mean": t(L.bn["running_mean"], dtype=torch.float32),  # type: ignore[index]
                      "running_var": t(L.bn["running_var"], dtype=torch.float32),  # type: ignore[index]
                      "eps": float(L.bn["eps"])},  # type: ignore[index]
               "neuron": {"decay": L.decay, "dv": L.dv, "threshold": L.threshold,
                          "spiking": L.spiking}} for L in ck.layers]
    return {"format": "delaysnn-checkpoint", "version": 1, "config": ck.config,
            "class_names": list(ck.class_names), "data_recipe": ck.data_recipe,
            "epoch": ck.epoch, "val_accuracy": ck.val_accuracy, "layers": layers, "qat": qat}


def _fixed_point(ck: Checkpoint, profile: str, num_message_bits: int, x_cal, x_val, y_val,
                 headroom: float = 2.0, netx_exact: bool = False,
                 scale_factors: tuple[float, ...] | None = None, keep_zeroed: bool = False,
                 neuron_exponents: bool = False):
    """Export ck exactly as export.to_lava does (with export.quantize's options); (grids, input
    scale, fixed-point val predictions, float val accuracy)."""
    from export.build_network import fixed_point_predictions
    from export.float_reference import simulate_float

    net, report = export_loaded(ck, profile, provenance={}, source={},
                                num_message_bits=num_message_bits, calibration=x_cal,
                                evaluation=False, max_calibration=None,
                                headroom=headroom, netx_exact=netx_exact,
                                scale_factors=scale_factors, keep_zeroed=keep_zeroed,
                                neuron_exponents=neuron_exponents)
    scale = report["input_encoding"]["scale"]
    q_pred, _ = fixed_point_predictions(net, x_val)
    f_acc = float(np.mean(simulate_float(ck, x_val).predictions() == y_val))
    return grids_from_report(report, scale, [L.post for L in ck.layers]), scale, q_pred, f_acc


def finetune(run: str | Path, out: str | Path, *, epochs: int = 5, lr: float = 3e-4,
             batch_size: int = 32, profile: str = "loihi2", num_message_bits: int = 8,
             max_calibration: int = 512, seed: int = 0, progress: bool = True,
             objective: str = "distill") -> dict:
    """Fine-tune RUN's checkpoint through the fixed point; write OUT/checkpoint.pt and
    OUT/qat.json; return the summary (per epoch: fixed-point and float validation accuracy,
    agreement with the trained model)."""
    from trainer.data import dataset_from_recipe

    check_options(epochs, lr, batch_size)
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"output folder {out.parent} does not exist")
    ck_path = resolve_checkpoint_path(run)
    ck = load_checkpoint(ck_path)
    try:
        train = dataset_from_recipe(ck.data_recipe, "train")
        val = dataset_from_recipe(ck.data_recipe, "val")
    except Exception as e:  # noqa: BLE001 - any data failure is one clear error
        raise ExportError(f"cannot rebuild the train/val features from {ck_path}'s data recipe "
                          f"({type(e).__name__}: {e})") from e
    x_tr, y_tr = train.x, train.y
    cal_idx = np.unique(np.linspace(0, len(x_tr) - 1, min(max_calibration, len(x_tr)))
                        .round().astype(np.int64))
    x_cal = x_tr.numpy()[cal_idx].astype(np.float64)
    x_val, y_val = val.x.numpy().astype(np.float64), val.y.numpy()
    ck_best, summary = finetune_loaded(ck, x_tr, y_tr, x_cal, x_val, y_val, epochs=epochs, lr=lr,
                                       batch_size=batch_size, profile=profile,
                                       num_message_bits=num_message_bits, seed=seed,
                                       progress=progress, objective=objective)
    summary = {"format": QAT_FORMAT, "source": {"path": str(ck_path),
                                                "sha256": sha256_file(ck_path)}, **summary}
    out.mkdir(exist_ok=True)
    torch_save_atomic(checkpoint_dict(ck_best, summary), out / "checkpoint.pt")
    write_json_atomic(summary, out / "qat.json")
    return summary


def check_options(epochs: int, lr: float, batch_size: int) -> None:
    """ExportError unless epochs >= 1, lr > 0 and batch_size >= 1."""
    if epochs < 1 or lr <= 0 or batch_size < 1:
        raise ExportError(f"need epochs >= 1, lr > 0 and batch_size >= 1, got {epochs}, {lr}, "
                          f"{batch_size}")


def finetune_loaded(ck: Checkpoint, x_tr, y_tr, x_cal: np.ndarray, x_val: np.ndarray,
                    y_val: np.ndarray, *, epochs: int = 5, lr: float = 3e-4,
                    batch_size: int = 32, profile: str = "loihi2", num_message_bits: int = 8,
                    headroom: float = 2.0, netx_exact: bool = False,
                    scale_factors: tuple[float, ...] | None = None, keep_zeroed: bool = False,
                    neuron_exponents: bool = False, seed: int = 0,
                    target: float | None = None, progress: bool = True,
                    objective: str = "distill") -> tuple[Checkpoint, dict]:
    """The fine-tuning of an in-memory checkpoint: training features x_tr (N, T, C) and labels,
    calibration features (used as given), validation features and labels (select the epoch).
    headroom ... neuron_exponents: the export options whose fixed point it trains through (the
    grids follow the scales; a kept synapse is trained as rounding to 0, measured as kept).
    target: the fixed-point validation accuracy (a fraction) at which the fine-tuning stops
    and keeps that epoch (None: every epoch runs); objective: "distill" or "labels" (module
    docstring). Returns (kept checkpoint, summary: profile, options, objective, epochs,
    epochs_run, best_epoch, val_fixed_point, val_agreement, history, seconds)."""
    from export.float_reference import simulate_float

    check_options(epochs, lr, batch_size)
    if objective not in OBJECTIVES:
        raise ExportError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    x_tr = torch.as_tensor(np.asarray(x_tr, dtype=np.float32))
    y_tr = torch.as_tensor(np.asarray(y_tr, dtype=np.int64))
    top = 2 ** num_message_bits - 1
    th = ck.input_threshold

    net = CheckpointNet(ck)
    teacher = None
    if objective == "distill":  # the trained float model, frozen
        teacher = CheckpointNet(ck)
        for p in teacher.parameters():
            p.requires_grad_(False)
    f0_val = simulate_float(ck, x_val).predictions()   # what the trained model answers
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    best: tuple | None = None
    t0 = time.perf_counter()
    for epoch in range(epochs + 1):
        current = net.to_checkpoint()
        grids, scale, q_pred, f_acc = _fixed_point(current, profile, num_message_bits, x_cal,
                                                   x_val, y_val, headroom, netx_exact,
                                                   scale_factors, keep_zeroed, neuron_exponents)
        q_acc = float(np.mean(q_pred == y_val))
        agree = float(np.mean(q_pred == f0_val))
        history.append({"epoch": epoch, "val_fixed_point": q_acc, "val_float": f_acc,
                        "val_agreement": agree})
        if progress:
            print(f"qat epoch {epoch}/{epochs}: validation fixed point {q_acc:.2%}, float "
                  f"{f_acc:.2%}, agreement with the trained model {agree:.2%}", flush=True)
        meets = target is None or q_acc >= target
        rank = (meets, agree, q_acc) if objective == "distill" else (meets, q_acc)
        if best is None or rank > best[0]:
            best = (rank, epoch, current, q_acc, agree)
        if epoch == epochs or (target is not None and q_acc >= target):
            break
        order = torch.randperm(len(x_tr), generator=gen)
        for k in range(math.ceil(len(x_tr) / batch_size)):
            idx = order[k * batch_size:(k + 1) * batch_size]
            v = net(x_tr[idx], grids, scale, top, th)
            if teacher is not None:
                with torch.no_grad():
                    v_float = teacher(x_tr[idx], None, scale, top, th)
                loss = distill_loss(v, v_float)
            else:
                loss = loss_fn(v, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    assert best is not None
    _, e_best, ck_best, q_best, a_best = best
    summary = {"profile": profile, "num_message_bits": num_message_bits, "objective": objective,
               "epochs": epochs, "epochs_run": history[-1]["epoch"], "lr": lr,
               "batch_size": batch_size, "seed": seed, "best_epoch": e_best,
               "val_fixed_point": q_best, "val_agreement": a_best,
               "history": history, "seconds": time.perf_counter() - t0}
    return ck_best, summary


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m export.qat", __doc__)
    ap.add_argument("run", help="run folder (with checkpoint.pt) or checkpoint file")
    ap.add_argument("--out", required=True, metavar="DIR",
                    help="folder for the fine-tuned checkpoint.pt; required, no default")
    ap.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs")
    ap.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    ap.add_argument("--batch-size", type=int, default=32, help="samples per batch")
    ap.add_argument("--profile", default="loihi2", help="hardware profile name or .toml path")
    ap.add_argument("--num-message-bits", type=int, default=8, help="graded input payload bits")
    ap.add_argument("--seed", type=int, default=0, help="seed of the batch order")
    ap.add_argument("--objective", choices=OBJECTIVES, default="distill",
                    help="distill: match the trained float model's outputs (default); labels: "
                         "the training loss")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        s = finetune(a.run, a.out, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size,
                     profile=a.profile, num_message_bits=a.num_message_bits, seed=a.seed,
                     objective=a.objective)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    h0 = s["history"][0]
    print(f"{a.out}/checkpoint.pt: epoch {s['best_epoch']} of {s['epochs']}, validation fixed "
          f"point {s['val_fixed_point']:.2%} (before: {h0['val_fixed_point']:.2%}, float "
          f"{h0['val_float']:.2%}), agreement with the trained model {s['val_agreement']:.2%} "
          f"(before: {h0['val_agreement']:.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
