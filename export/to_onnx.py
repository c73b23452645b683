"""Export the FLOAT model with integer delays as ONNX and check it with onnxruntime.

    python -m export.to_onnx RUN_DIR_OR_CHECKPOINT --out model.onnx

The graph is explicit: per connection layer a causal Conv1d over time whose kernel is one-hot
in the delay (kernel[post, pre, D - d] = weight of the synapse pre->post with delay d, D = the
layer's max delay; BatchNorm folded into kernel and bias), then the LIF recurrence unrolled over
the T steps (v = decay * v + I[t]; spike = v > threshold; v = 0 where spike; the readout keeps
v). Input "features" (N, T, C) float32; output "readout_v" (N, T, n_classes). The torch module is
rebuilt from the checkpoint's synapse lists (no trainer classes), and onnxruntime's output is
compared with it on seeded random features: the export fails (ExportError, nothing written) when
the largest |onnxruntime - torch| difference exceeds `tolerance` x max(1, largest |readout v|)
(default DEFAULT_TOLERANCE = 1e-4; `--tolerance`).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from export.errors import ExportError
from trainer.checkpoint import Checkpoint, load_checkpoint

DEFAULT_TOLERANCE = 1e-4  # relative to max(1, largest |readout v|); float32 rounding is ~1e-6


class DelayLIFNet(torch.nn.Module):
    """The checkpoint's float model: delay convolutions + unrolled LIF (see module doc)."""

    def __init__(self, ck: Checkpoint, time_steps: int):
        super().__init__()
        self.time_steps = int(time_steps)
        self.decay, self.threshold, self.spiking, self.pad = [], [], [], []
        for i, L in enumerate(ck.layers):
            a, b = L.bn_affine()
            D = int(L.delay.max()) if L.delay.size else 0
            k = np.zeros((L.n_out, L.n_in, D + 1), dtype=np.float64)
            np.add.at(k, (L.post, L.pre, D - L.delay), L.weight * a[L.post])
            conv = torch.nn.Conv1d(L.n_in, L.n_out, D + 1, bias=True)
            with torch.no_grad():
                conv.weight.copy_(torch.tensor(k, dtype=torch.float32))
                conv.bias.copy_(torch.tensor(b, dtype=torch.float32))  # type: ignore[union-attr]
            self.add_module(f"conv{i}", conv)
            self.pad.append(D)
            self.decay.append(float(L.decay))
            self.threshold.append(float(L.threshold))
            self.spiking.append(bool(L.spiking))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = features.transpose(1, 2)  # (N, C, T)
        for i in range(len(self.pad)):
            conv = getattr(self, f"conv{i}")
            cur = conv(torch.nn.functional.pad(h, (self.pad[i], 0)))  # (N, n_out, T)
            v = torch.zeros_like(cur[:, :, 0])
            outs = []
            for t in range(self.time_steps):
                v = self.decay[i] * v + cur[:, :, t]
                if self.spiking[i]:
                    s = (v > self.threshold[i]).to(v.dtype)
                    outs.append(s)
                    v = v * (1.0 - s)
                else:
                    outs.append(v)
            h = torch.stack(outs, dim=2)
        return h.transpose(1, 2)  # (N, T, n_classes) readout voltage


def export_onnx(path: str | Path, out: str | Path, *, time_steps: int | None = None,
                n_check: int = 4, seed: int = 0,
                tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Write the ONNX file (atomically) and return {"max_abs_diff", "n_nodes", ...}.

    Raises ExportError, writing nothing, when onnxruntime's readout voltage differs from torch's
    by more than `tolerance` x max(1, largest |readout v|) on `n_check` seeded random inputs."""
    import onnxruntime as ort

    if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise ExportError(f"tolerance must be a number >= 0, got {tolerance!r}")
    if isinstance(n_check, bool) or not isinstance(n_check, int) or n_check < 1:
        raise ExportError(f"n_check must be a positive integer, got {n_check!r}")
    ck = load_checkpoint(path)
    rec = [L.name for L in ck.layers if L.recurrent is not None]
    if rec:  # DelayLIFNet has no recurrent current: refuse rather than drop it
        raise ExportError(f"layer {rec[0]} is recurrent; export.to_onnx writes feed-forward "
                          "networks only (export.to_lava deploys recurrent ones)")
    T = time_steps or ck.time_steps
    if not T:
        raise ExportError("the checkpoint's data_recipe has no time_steps; pass time_steps")
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"output folder {out.parent} does not exist")
    model = DelayLIFNet(ck, T).eval()
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.random((n_check, T, ck.n_channels)), dtype=torch.float32)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # constant-folding notes of the exporter
            torch.onnx.export(model, (x,), tmp, input_names=["features"],
                              output_names=["readout_v"], opset_version=17, dynamo=False,
                              dynamic_axes={"features": {0: "batch"}, "readout_v": {0: "batch"}})
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = sess.run(["readout_v"], {"features": x.numpy()})[0]
        with torch.no_grad():
            ref = model(x).numpy()
        diff, vmax = float(np.abs(got - ref).max()), float(np.abs(ref).max())
        bound = tolerance * max(1.0, vmax)
        if not diff <= bound:
            raise ExportError(
                f"onnxruntime and torch disagree on {out.name}: max abs difference {diff:.3g} "
                f"(readout |v| up to {vmax:.3g}) exceeds the tolerance {tolerance:g} x "
                f"max(1, |v|) = {bound:.3g}; nothing was written (raise --tolerance only if "
                f"the difference is float rounding)")
        import onnx
        n_nodes = len(onnx.load(tmp).graph.node)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {"out": str(out), "time_steps": T, "samples_checked": n_check,
            "max_abs_diff": diff, "max_abs_readout_v": vmax, "tolerance": tolerance,
            "n_nodes": n_nodes}


def build_parser() -> argparse.ArgumentParser:
    from delaysnn.options import new_parser

    ap = new_parser("python -m export.to_onnx", __doc__)
    ap.add_argument("checkpoint", help="run folder (with checkpoint.pt) or checkpoint file")
    ap.add_argument("--out", required=True, metavar="MODEL.onnx",
                    help="ONNX file to write; required, no default")
    ap.add_argument("--time-steps", type=int, default=None,
                    help="steps to unroll (default: the checkpoint's time_steps)")
    ap.add_argument("--n-check", type=int, default=4, help="random samples for the ORT check")
    ap.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                    help="fail (write nothing) when |onnxruntime - torch| exceeds this x "
                         f"max(1, largest |readout v|) (default {DEFAULT_TOLERANCE:g})")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        r = export_onnx(a.checkpoint, a.out, time_steps=a.time_steps, n_check=a.n_check,
                        tolerance=a.tolerance)
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {r['out']} ({r['n_nodes']} nodes, T = {r['time_steps']}); onnxruntime vs "
          f"torch on {r['samples_checked']} random samples: max abs difference "
          f"{r['max_abs_diff']:.3g} (readout |v| up to {r['max_abs_readout_v']:.3g}; "
          f"tolerance {r['tolerance']:g} x max(1, |v|))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
